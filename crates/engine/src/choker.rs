//! Who we upload to: tit-for-tat with an optimistic unchoke.
//!
//! Every 10 s (and at once when a peer becomes interested or leaves) the torrent task ranks the
//! interested peers: while downloading, by how fast they send to us (reciprocation); while seeding, by
//! how fast we upload to them, so the fastest takers are served and the rest rotate through the
//! optimistic slot. The top `slots` are unchoked, plus one optimistic unchoke, rotated every 30 s. Ties
//! keep the peers that are unchoked already, so a recomputation does not churn.
//!
//! The optimistic unchoke goes to the interested peer furthest behind: the fewest pieces, as far as
//! we know (what it told us, or what we sent it if that is more; ties at random). A new peer has
//! nothing yet and comes first, as in every client; so does a peer the others left behind. Tit-for-tat
//! starves such a peer: once it holds only pieces everyone has, nobody's reciprocation picks it, and a
//! random optimistic pick (one chance in the number of choked peers per uploader, every 30 s) left a
//! leecher of a 24-host swarm choked by all for ten seconds while the rest finished. The slot moves on
//! early, at a recomputation, once its peer has caught up: when another is further behind than it by
//! more than `catch_up` pieces.

use rand::seq::SliceRandom;

use super::picker::PeerKey;

#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub key: PeerKey,
    pub interested: bool,
    /// The rate that earns a slot (from them while downloading, to them while seeding), bytes/s.
    pub rate: u64,
    /// The pieces it holds, as far as we know.
    pub pieces: u32,
    pub unchoked: bool,
}

/// Returns the peers to unchoke and the optimistic one among them. `rotate`: the optimistic slot's
/// time is up; `catch_up`: how far (pieces) another peer must be behind the optimistic one for the
/// slot to move before that.
pub fn choose(
    cands: &[Candidate],
    slots: usize,
    optimistic: Option<PeerKey>,
    rotate: bool,
    catch_up: u32,
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
    let pool: Vec<&Candidate> = ranked
        .iter()
        .copied()
        .filter(|c| !regular.contains(&c.key))
        .collect();
    let furthest_behind = pool.iter().map(|c| c.pieces).min();
    let current = optimistic.and_then(|k| pool.iter().find(|c| c.key == k));
    let optimistic = match (current, furthest_behind) {
        (Some(c), Some(min)) if !rotate && c.pieces <= min.saturating_add(catch_up) => Some(c.key),
        (_, Some(min)) => {
            let behind: Vec<&&Candidate> = pool.iter().filter(|c| c.pieces == min).collect();
            behind.choose(&mut rand::thread_rng()).map(|c| c.key)
        }
        (_, None) => None,
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
            pieces: 10,
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
        let (un, opt) = choose(&cands, 2, None, true, 5);
        assert_eq!(&un[..2], &[2, 4]);
        let opt = opt.unwrap();
        assert!([1, 5, 6].contains(&opt));
        assert_eq!(un.len(), 3);
        assert!(!un.contains(&3), "not interested");
        // Without rotation the optimistic peer stays.
        let (_, again) = choose(&cands, 2, Some(opt), false, 5);
        assert_eq!(again, Some(opt));
    }

    #[test]
    fn ties_keep_current_unchokes_and_fill_free_slots() {
        let cands = vec![
            c(1, true, 0, false),
            c(2, true, 0, true),
            c(3, true, 0, false),
        ];
        let (un, _) = choose(&cands, 1, None, false, 5);
        assert_eq!(un[0], 2);
        assert_eq!(un.len(), 2);
        let (un, opt) = choose(&[c(7, true, 0, false)], 4, None, false, 5);
        assert_eq!((un, opt), (vec![7], None));
    }

    #[test]
    fn the_optimistic_slot_goes_to_the_peer_furthest_behind_and_moves_once_it_caught_up() {
        let with = |key, pieces| Candidate {
            pieces,
            ..c(key, true, 0, false)
        };
        // Two regular slots to the fastest; of the rest, the one with the fewest pieces.
        let mut cands = vec![
            Candidate {
                rate: 900,
                ..with(1, 300)
            },
            Candidate {
                rate: 800,
                ..with(2, 300)
            },
            with(3, 200),
            with(4, 40),
            with(5, 120),
        ];
        let (un, opt) = choose(&cands, 2, None, false, 20);
        assert_eq!(opt, Some(4));
        assert_eq!(un, vec![1, 2, 4]);
        // It gains pieces but is still within `catch_up` of the furthest behind: it keeps the slot.
        cands[3].pieces = 130;
        let (_, opt) = choose(&cands, 2, Some(4), false, 20);
        assert_eq!(opt, Some(4));
        // Further ahead than that: the slot moves to the peer now furthest behind.
        cands[3].pieces = 190;
        let (_, opt) = choose(&cands, 2, Some(4), false, 20);
        assert_eq!(opt, Some(5));
        // A new peer (nothing yet) comes first at a rotation.
        cands.push(with(6, 0));
        let (_, opt) = choose(&cands, 2, Some(5), true, 20);
        assert_eq!(opt, Some(6));
        // Ties are broken at random: over many draws both peers furthest behind get the slot.
        let tied = [with(7, 3), with(8, 3), with(9, 50)];
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.insert(choose(&tied, 0, None, true, 20).1.unwrap());
        }
        assert_eq!(seen, [7, 8].into_iter().collect());
    }
}
