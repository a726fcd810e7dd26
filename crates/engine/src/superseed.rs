//! Super-seeding (BEP 16): how a lone seed spreads distinct pieces instead of uploading the same ones
//! again and again.
//!
//! A connection that starts while super-seeding is on (see [`SuperSeed::active`]) is not sent our
//! bitfield. It is told (`have`) of at most [`OFFERS_PER_PEER`] pieces at a time (more, see
//! [`offer_limit`], while it is the only peer lacking pieces: nobody could pass them on), each chosen among the
//! pieces given out the fewest times (never given first, then pieces already seen in the swarm, then
//! the rarest among the peers). An offer is used up once the piece shows up at any peer after it was
//! made (another peer announces it: the peer passed it on; or the peer itself completed it), and the
//! peer is then offered another. Requests for pieces we did not offer that peer are refused (a
//! `reject` with the fast extension, ignored without): never a disconnect.
//!
//! It ends, connection by connection, as soon as it is of no more use: once every piece has been seen
//! at some peer, once the swarm has another seed (a peer showed every piece; unless forced on), or a
//! peer is a seed itself. A peer's `upload_only` does not count: a partial seed (BEP 21) says it too. It also ends for a peer that *declines* its
//! offers: not interested [`DECLINE_AFTER`] after the last one while it still lacks an offered piece.
//! Such a peer wants only some of the torrent (files it skipped, a magnet link's `so`), so offers
//! of pieces it does not want would hold it at zero forever; it is shown every piece instead. A super-seeding connection does not say
//! `upload_only` (libtorrent drops such a peer while it wants nothing of it, as between two offers), so
//! two seeds that both super-seed do not recognise each other: each offers the other a piece or two
//! that it never takes. The connection then announces the pieces the peer was not told of, and seeds
//! as usual from then on.
//!
//! State and invariants: [`SuperSeed`] lives in the torrent's `Core` (changed only under the core
//! lock); its size is fixed by the piece count (two counters and a bitfield). Each connection's
//! [`Offers`] belong to its reader task (a bitfield of the pieces offered to it and at most
//! [`OFFERS_PER_PEER`] open offers). Messages are queued after the core lock is dropped.

use std::time::{Duration, Instant};

use btorrent_proto::wire::Bitfield;
use rand::Rng;

use super::picker::Picker;

/// Open offers per peer: one to download, one queued so its pipe does not run dry between pieces.
pub const OFFERS_PER_PEER: usize = 2;
/// A peer that is the only one lacking pieces has nobody to pass them to: it may hold this many bytes
/// of open offers (at most an eighth of the torrent), so a fast link is not held to two pieces per
/// round trip.
pub const LONE_OFFER_BYTES: u64 = 32 << 20;

/// How many open offers a peer may hold while `leechers` connected peers (it included) lack pieces.
pub fn offer_limit(leechers: usize, piece_length: u64, pieces: usize) -> usize {
    if leechers > 1 {
        return OFFERS_PER_PEER;
    }
    let by_bytes = (LONE_OFFER_BYTES / piece_length.max(1)) as usize;
    by_bytes.min(pieces / 8).max(OFFERS_PER_PEER)
}

/// A peer still not interested this long after its last offer, while it lacks an offered piece,
/// declines them (see the module doc): a peer that wants a piece says so within a round trip.
pub const DECLINE_AFTER: Duration = Duration::from_secs(3);

/// The torrent's side of super-seeding.
pub struct SuperSeed {
    /// `None`: on while we are the only seed known; `Some(on)`: forced.
    mode: Option<bool>,
    /// Times each piece was offered.
    given: Vec<u16>,
    /// `have`s (and bitfield bits) received for each piece, from any peer; only grows.
    seen: Vec<u32>,
    /// Pieces some peer was seen to hold.
    in_swarm: Bitfield,
    /// A peer showed every piece.
    other_seed: bool,
}

impl SuperSeed {
    pub fn new(pieces: usize, mode: Option<bool>) -> Self {
        SuperSeed {
            mode,
            given: vec![0; pieces],
            seen: vec![0; pieces],
            in_swarm: Bitfield::new(pieces),
            other_seed: false,
        }
    }

    /// Whether a connection should super-seed now, for a torrent that is `complete` or not.
    pub fn active(&self, complete: bool) -> bool {
        let wanted = match self.mode {
            Some(on) => on,
            None => !self.other_seed,
        };
        wanted && complete && !self.in_swarm.is_full()
    }

    /// A peer announced piece `i` (a `have`, or a bit of its bitfield).
    pub fn note_have(&mut self, i: usize) {
        self.seen[i] = self.seen[i].saturating_add(1);
        self.in_swarm.set(i);
    }

    /// A peer has every piece.
    pub fn note_seed(&mut self) {
        self.other_seed = true;
    }

    pub fn seen(&self, i: u32) -> u32 {
        self.seen[i as usize]
    }

    /// Chooses the next piece to offer a peer that has `has` and was offered `offered` already:
    /// fewest times given, then (among pieces given before) those already in the swarm, then the
    /// rarest; ties broken by a random start. Counts it as given.
    pub fn choose(&mut self, has: &Bitfield, offered: &Bitfield, picker: &Picker) -> Option<u32> {
        let n = self.given.len();
        if n == 0 {
            return None;
        }
        let ours = picker.have();
        let start = rand::thread_rng().gen_range(0..n);
        let mut best: Option<(usize, (u16, bool, u16))> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if !ours.get(i) || has.get(i) || offered.get(i) {
                continue;
            }
            let g = self.given[i];
            let key = (
                g,
                g > 0 && !self.in_swarm.get(i),
                picker.availability(i as u32),
            );
            if best.is_none_or(|(_, b)| key < b) {
                best = Some((i, key));
                if key == (0, false, 0) {
                    break;
                }
            }
        }
        let (i, _) = best?;
        self.given[i] = self.given[i].saturating_add(1);
        Some(i as u32)
    }
}

/// One connection's side: what it was offered, and the offers still open (piece, `seen` count
/// when offered; at most [`offer_limit`] at the last refill, so at most the torrent's eighth).
pub struct Offers {
    pub offered: Bitfield,
    pub open: Vec<(u32, u32)>,
    /// When the last offer was made.
    last_offer: Option<Instant>,
}

impl Offers {
    pub fn new(pieces: usize) -> Self {
        Offers {
            offered: Bitfield::new(pieces),
            open: Vec::new(),
            last_offer: None,
        }
    }

    /// Whether the peer declines its offers at `now`: it is not `interested`, lacks (`has`) a piece
    /// still offered, and the last offer went out [`DECLINE_AFTER`] ago or more.
    pub fn declined(&self, has: &Bitfield, interested: bool, now: Instant) -> bool {
        !interested
            && self.open.iter().any(|&(p, _)| !has.get(p as usize))
            && self
                .last_offer
                .is_some_and(|at| now.saturating_duration_since(at) >= DECLINE_AFTER)
    }

    /// Closes the offers used up (the piece was seen at a peer since, or the peer has it), then
    /// makes new ones up to `limit` ([`offer_limit`]); returns the pieces to announce.
    pub fn refill(
        &mut self,
        has: &Bitfield,
        limit: usize,
        ss: &mut SuperSeed,
        picker: &Picker,
    ) -> Vec<u32> {
        self.open
            .retain(|&(p, at)| ss.seen(p) == at && !has.get(p as usize));
        let mut new = Vec::new();
        while self.open.len() < limit {
            let Some(p) = ss.choose(has, &self.offered, picker) else {
                break;
            };
            self.offered.set(p as usize);
            self.open.push((p, ss.seen(p)));
            new.push(p);
        }
        if !new.is_empty() {
            self.last_offer = Some(Instant::now());
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use btorrent_proto::wire::Geometry;

    fn seeding_picker(n: u32) -> Picker {
        let geo = Geometry::new(n as usize, 16384, n as u64 * 16384);
        let mut p = Picker::new(geo, 1 << 20);
        for i in 0..n {
            p.mark_have(i);
        }
        p
    }

    #[test]
    fn offers_distinct_pieces_until_each_was_given() {
        let picker = seeding_picker(8);
        let mut ss = SuperSeed::new(8, None);
        let mut peers: Vec<Offers> = (0..4).map(|_| Offers::new(8)).collect();
        let none = Bitfield::new(8);
        let mut all = Vec::new();
        for o in &mut peers {
            all.extend(o.refill(&none, 2, &mut ss, &picker));
        }
        all.sort_unstable();
        assert_eq!(all, (0..8).collect::<Vec<_>>());
        // Nothing is used up until the pieces show up somewhere.
        assert!(peers[0].refill(&none, 2, &mut ss, &picker).is_empty());
        let p = peers[0].open[0].0;
        ss.note_have(p as usize);
        let next = peers[0].refill(&none, 2, &mut ss, &picker);
        assert_eq!(next.len(), 1);
        assert!(ss.active(true));
        for i in 0..8 {
            ss.note_have(i);
        }
        assert!(!ss.active(true), "every piece is out: super-seeding ends");
    }

    #[test]
    fn a_peer_not_interested_in_its_offers_declines_them() {
        let picker = seeding_picker(8);
        let mut ss = SuperSeed::new(8, None);
        let mut o = Offers::new(8);
        let none = Bitfield::new(8);
        let now = Instant::now();
        assert!(
            !o.declined(&none, false, now + DECLINE_AFTER),
            "no offer yet"
        );
        let given = o.refill(&none, 2, &mut ss, &picker);
        let later = Instant::now() + DECLINE_AFTER;
        assert!(
            !o.declined(&none, false, now),
            "not yet: it may say so within a round trip"
        );
        assert!(!o.declined(&none, true, later), "interested: it wants them");
        assert!(o.declined(&none, false, later));
        // Holding every offered piece (it took them, its `have`s not yet seen) is not declining.
        let mut took = Bitfield::new(8);
        for p in given {
            took.set(p as usize);
        }
        assert!(!o.declined(&took, false, later));
    }

    #[test]
    fn another_seed_ends_it_unless_forced() {
        let mut auto = SuperSeed::new(4, None);
        let mut forced = SuperSeed::new(4, Some(true));
        assert!(auto.active(true) && !auto.active(false));
        auto.note_seed();
        forced.note_seed();
        assert!(!auto.active(true));
        assert!(forced.active(true));
        assert!(!SuperSeed::new(4, Some(false)).active(true));
    }

    #[test]
    fn a_lone_leecher_gets_a_deeper_pipe() {
        assert_eq!(offer_limit(2, 1 << 20, 1000), OFFERS_PER_PEER);
        assert_eq!(offer_limit(1, 1 << 20, 1000), 32);
        assert_eq!(offer_limit(1, 16 << 10, 96), 12);
        assert_eq!(offer_limit(1, 16 << 10, 8), OFFERS_PER_PEER);
    }
}
