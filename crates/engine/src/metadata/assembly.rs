//! The info dictionary being put together from pieces several peers send, and who may be asked for
//! which piece.
//!
//! Pieces are asked of every peer that offers `ut_metadata` with the same `metadata_size` as the
//! first one asked, in parallel, [`PER_PEER`] at a time each. When every piece is in, the whole is
//! hashed: if it matches the info-hash, the fetch is done. If not, the peers that sent pieces are to
//! blame: a lone sender is dropped; several become suspects. Suspects are asked only when no other peer
//! is ready, and then one at a time for the whole dictionary (a "solo" round), so a liar among them is
//! found and dropped, and an honest suspect delivers. Every failed round drops a peer or turns several
//! into suspects, so the fetch cannot loop without end on liars.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use sha1::{Digest, Sha1};

use btorrent_proto::types::InfoHash;
use btorrent_proto::wire::ut_metadata::{piece_count, piece_len};

/// Metadata requests in flight per peer.
pub const PER_PEER: usize = 4;

#[derive(Debug, Default)]
pub(crate) struct Assembly {
    /// The size of the dictionary being assembled (`None` between rounds).
    size: Option<u64>,
    pieces: Vec<Option<(Vec<u8>, SocketAddr)>>,
    /// Who has each piece requested.
    asked: HashMap<u32, SocketAddr>,
    suspects: HashSet<SocketAddr>,
    /// The suspect a solo round takes the whole dictionary from.
    solo: Option<SocketAddr>,
    /// Peers with a `ut_metadata` id and a size, and the size each gave.
    ready: HashMap<SocketAddr, u64>,
    pub dropped: HashSet<SocketAddr>,
    pub done: Option<Vec<u8>>,
}

/// What became of a piece that arrived.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Stored (or not needed any more).
    Stored,
    /// The last piece: the dictionary matched the info-hash.
    Done,
    /// The last piece: the dictionary did not match; these peers were dropped.
    Bad { dropped: Vec<SocketAddr> },
}

impl Assembly {
    pub fn peer_ready(&mut self, a: SocketAddr, size: u64) {
        self.ready.insert(a, size);
    }

    /// A peer left: what it was asked goes back to the others.
    pub fn peer_gone(&mut self, a: SocketAddr) {
        self.ready.remove(&a);
        self.asked.retain(|_, p| *p != a);
        if self.solo == Some(a) {
            self.solo = None;
            self.reset();
        }
    }

    pub fn drop_peer(&mut self, a: SocketAddr) {
        self.dropped.insert(a);
        self.peer_gone(a);
    }

    /// Peers that gave us a size (and are still connected).
    pub fn ready_peers(&self) -> usize {
        self.ready.len()
    }

    /// Pieces `a` is asked for and has not sent.
    pub fn in_flight(&self, a: SocketAddr) -> usize {
        self.asked.values().filter(|p| **p == a).count()
    }

    pub fn progress(&self) -> (usize, usize) {
        let have = self.pieces.iter().filter(|p| p.is_some()).count();
        (have, self.pieces.len())
    }

    fn reset(&mut self) {
        self.size = None;
        self.pieces.clear();
        self.asked.clear();
    }

    /// Whether `a` may be asked now (see the module docs).
    fn may_ask(&self, a: SocketAddr) -> bool {
        let Some(&size) = self.ready.get(&a) else {
            return false;
        };
        if self.done.is_some() || self.size.is_some_and(|s| s != size) {
            return false;
        }
        if let Some(solo) = self.solo {
            return solo == a;
        }
        if !self.suspects.contains(&a) {
            return true;
        }
        // A suspect only when no one else is ready, and alone.
        !self
            .ready
            .keys()
            .any(|p| !self.suspects.contains(p) && self.size.is_none_or(|s| self.ready[p] == s))
    }

    /// Pieces to ask `a` for now (at most [`PER_PEER`] in flight), marked asked.
    pub fn next_requests(&mut self, a: SocketAddr) -> Vec<u32> {
        if !self.may_ask(a) {
            return Vec::new();
        }
        if self.size.is_none() {
            let size = self.ready[&a];
            self.size = Some(size);
            self.pieces = vec![None; piece_count(size) as usize];
            if self.suspects.contains(&a) {
                self.solo = Some(a);
            }
        }
        let in_flight = self.in_flight(a);
        let mut out = Vec::new();
        for i in 0..self.pieces.len() as u32 {
            if in_flight + out.len() >= PER_PEER {
                break;
            }
            if self.pieces[i as usize].is_none() && !self.asked.contains_key(&i) {
                self.asked.insert(i, a);
                out.push(i);
            }
        }
        out
    }

    /// `a` rejected piece `i`: someone else may be asked.
    pub fn rejected(&mut self, a: SocketAddr, i: u32) {
        if self.asked.get(&i) == Some(&a) {
            self.asked.remove(&i);
        }
    }

    /// Piece `i` of a dictionary of `size` bytes arrived from `a`.
    pub fn piece(
        &mut self,
        info_hash: InfoHash,
        a: SocketAddr,
        i: u32,
        size: u64,
        data: &[u8],
    ) -> Outcome {
        if self.done.is_some()
            || self.size != Some(size)
            || self.asked.get(&i) != Some(&a)
            || piece_len(size, i) != data.len()
        {
            return Outcome::Stored;
        }
        self.asked.remove(&i);
        self.pieces[i as usize] = Some((data.to_vec(), a));
        if self.pieces.iter().any(|p| p.is_none()) {
            return Outcome::Stored;
        }
        let mut whole = Vec::with_capacity(size as usize);
        let mut senders = HashSet::new();
        for (d, from) in self.pieces.iter().flatten() {
            whole.extend_from_slice(d);
            senders.insert(*from);
        }
        // A v1 info-hash is the dictionary's SHA-1; a v2 one its SHA-256 cut to 20 bytes (BEP 52).
        if Sha1::digest(&whole).as_slice() == info_hash.0
            || btorrent_proto::metainfo::v2::sha256(&whole)[..20] == info_hash.0
        {
            self.done = Some(whole);
            return Outcome::Done;
        }
        self.reset();
        let was_solo = self.solo.take().is_some();
        let senders: Vec<SocketAddr> = senders.into_iter().collect();
        if senders.len() == 1 || was_solo {
            for s in &senders {
                self.drop_peer(*s);
            }
            Outcome::Bad { dropped: senders }
        } else {
            self.suspects.extend(senders);
            Outcome::Bad {
                dropped: Vec::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use btorrent_proto::wire::ut_metadata::METADATA_PIECE;

    fn addr(i: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], i))
    }

    #[test]
    fn a_liar_among_honest_peers_is_found() {
        let good = vec![5u8; 3 * METADATA_PIECE + 10];
        let ih = InfoHash(Sha1::digest(&good).into());
        let size = good.len() as u64;
        let mut a = Assembly::default();
        let (honest, liar) = (addr(1), addr(2));
        a.peer_ready(honest, size);
        a.peer_ready(liar, size);
        let send = |a: &mut Assembly, from: SocketAddr, lie: bool| -> Option<Outcome> {
            let mut last = None;
            a.next_requests(from);
            let mut mine: Vec<u32> = a
                .asked
                .iter()
                .filter(|(_, p)| **p == from)
                .map(|(i, _)| *i)
                .collect();
            mine.sort();
            for i in mine {
                let len = piece_len(size, i);
                let start = i as usize * METADATA_PIECE;
                let mut d = good[start..start + len].to_vec();
                if lie {
                    d[0] ^= 1;
                }
                last = Some(a.piece(ih, from, i, size, &d));
            }
            last
        };
        // Both contribute: the round fails, both become suspects.
        let _ = a.next_requests(honest);
        for i in 0..2 {
            a.rejected(honest, i);
        }
        assert_eq!(send(&mut a, liar, true), Some(Outcome::Stored));
        let r = send(&mut a, honest, false);
        assert_eq!(r, Some(Outcome::Bad { dropped: vec![] }));
        // Solo round from the liar: dropped. Then the honest one alone delivers.
        assert_eq!(
            send(&mut a, liar, true),
            Some(Outcome::Bad {
                dropped: vec![liar]
            })
        );
        assert!(a.next_requests(liar).is_empty());
        assert_eq!(send(&mut a, honest, false), Some(Outcome::Done));
        assert_eq!(a.done.as_deref(), Some(&good[..]));
    }
}
