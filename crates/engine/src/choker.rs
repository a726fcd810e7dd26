//! Who we upload to: tit-for-tat with an optimistic unchoke.
//!
//! Every 10 s (and at once when a peer becomes interested or leaves) the torrent task ranks the
//! interested peers: while downloading, by how fast they send to us (reciprocation); while seeding, by
//! how fast we upload to them, so the fastest takers are served and the rest rotate through the
//! optimistic slot. The top `slots` are unchoked, plus one optimistic unchoke: a random other interested
//! peer (a newly connected one is three times as likely), rotated every 30 s. Ties keep the peers that
//! are unchoked already, so a recomputation does not churn.

use rand::Rng;

use super::picker::PeerKey;

#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub key: PeerKey,
    pub interested: bool,
    /// The rate that earns a slot (from them while downloading, to them while seeding), bytes/s.
    pub rate: u64,
    /// Connected less than a minute ago.
    pub new: bool,
    pub unchoked: bool,
}

/// Returns the peers to unchoke and the optimistic one among them.
pub fn choose(
    cands: &[Candidate],
    slots: usize,
    optimistic: Option<PeerKey>,
    rotate: bool,
) -> (Vec<PeerKey>, Option<PeerKey>) {
    let mut ranked: Vec<&Candidate> = cands.iter().filter(|c| c.interested).collect();
    ranked.sort_by(|a, b| {
        b.rate
            .cmp(&a.rate)
            .then(b.unchoked.cmp(&a.unchoked))
            .then(a.key.cmp(&b.key))
    });
    // Keep the optimistic peer out of the ranking unless it earned a slot on its rate.
    let mut regular: Vec<PeerKey> = Vec::new();
    for c in &ranked {
        if regular.len() >= slots {
            break;
        }
        if Some(c.key) == optimistic && !rotate && c.rate == 0 {
            continue;
        }
        regular.push(c.key);
    }
    let still_valid =
        optimistic.filter(|k| !regular.contains(k) && ranked.iter().any(|c| c.key == *k));
    let optimistic = match still_valid {
        Some(k) if !rotate => Some(k),
        _ => {
            let pool: Vec<&&Candidate> = ranked
                .iter()
                .filter(|c| !regular.contains(&c.key))
                .collect();
            let total: usize = pool.iter().map(|c| if c.new { 3 } else { 1 }).sum();
            if total == 0 {
                None
            } else {
                let mut pick = rand::thread_rng().gen_range(0..total);
                pool.iter()
                    .find(|c| {
                        let w = if c.new { 3 } else { 1 };
                        if pick < w {
                            true
                        } else {
                            pick -= w;
                            false
                        }
                    })
                    .map(|c| c.key)
            }
        }
    };
    let mut unchoke = regular;
    unchoke.extend(optimistic);
    (unchoke, optimistic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(key: PeerKey, interested: bool, rate: u64, unchoked: bool) -> Candidate {
        Candidate {
            key,
            interested,
            rate,
            new: false,
            unchoked,
        }
    }

    #[test]
    fn fastest_interested_get_slots_plus_one_optimistic() {
        let cands = vec![
            c(1, true, 100, false),
            c(2, true, 500, false),
            c(3, false, 900, true),
            c(4, true, 300, false),
            c(5, true, 0, false),
            c(6, true, 0, false),
        ];
        let (un, opt) = choose(&cands, 2, None, true);
        assert_eq!(&un[..2], &[2, 4]);
        let opt = opt.unwrap();
        assert!([1, 5, 6].contains(&opt));
        assert_eq!(un.len(), 3);
        assert!(!un.contains(&3), "not interested");
        // Without rotation the optimistic peer stays.
        let (_, again) = choose(&cands, 2, Some(opt), false);
        assert_eq!(again, Some(opt));
    }

    #[test]
    fn ties_keep_current_unchokes_and_fill_free_slots() {
        let cands = vec![
            c(1, true, 0, false),
            c(2, true, 0, true),
            c(3, true, 0, false),
        ];
        let (un, _) = choose(&cands, 1, None, false);
        assert_eq!(un[0], 2);
        assert_eq!(un.len(), 2);
        let (un, opt) = choose(&[c(7, true, 0, false)], 4, None, false);
        assert_eq!((un, opt), (vec![7], None));
    }
}
