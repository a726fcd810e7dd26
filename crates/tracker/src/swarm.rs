//! One torrent's peers in the tracker ([`Swarm`]): the entries, their counts, the index of a large
//! swarm, the peers announced over both families counted once, and the peers handed out. The
//! store ([`crate::store`]) keeps one per torrent, behind its shard's lock.
//!
//! # Invariants (kept by every method that changes a swarm)
//! - An entry is keyed by its endpoint (IP, port) with `::ffff:a.b.c.d` already mapped to IPv4, so
//!   a client cannot replace another's entry by reusing its peer id.
//! - `seeders` is the number of entries whose `left` is 0.
//! - `partial_seeds` is the number of entries whose `partial` is set; `partial` is set only while
//!   `left` is not 0 and the entry's last announce said `event=paused` (BEP 21: a peer that wants
//!   nothing more, having skipped files, says so in every announce).
//! - `index`, when present, maps each endpoint to its position in `peers`, and `ids` each
//!   [`Who`] to the number of entries carrying it. A swarm gets both when it grows past `INDEX_THRESHOLD`
//!   entries and drops them when an expiry sweep leaves it at or below that size (one that shrank
//!   through `stopped` announces keeps them until then, still exact); a swarm without them is
//!   searched linearly.
//! - Entries with one peer id and one port ([`Who`]) are one peer: a dual-stack client announces
//!   over IPv4 and IPv6 (BEP 7), and each endpoint is an entry (both are handed out), but the
//!   counts that announces and scrapes report count the peer once. (The port is part of it so
//!   that clients that all send one fixed peer id stay apart unless they also listen on one
//!   port.) `twins` holds, for each `Who` carried by two entries or more, how many there are and
//!   how many seed or are partial seeds; `overcount` is the sum over `twins` of how much the entry
//!   counters count each of those peers too often (see [`Twin::overcount`]). [`Swarm::counts`]
//!   subtracts it.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;

use rand::Rng;

use btorrent_proto::types::PeerId;

/// Swarms up to this size are searched linearly; larger ones keep an endpoint index.
const INDEX_THRESHOLD: usize = 24;

/// One peer in one swarm.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub id: PeerId,
    pub left: u64,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Seconds since the store's epoch at the last announce.
    pub last_seen: u32,
    /// A partial seed (see the invariants).
    pub partial: bool,
}

/// Who an entry is: its peer id and the port it listens on, the same over both families.
type Who = (PeerId, u16);

fn who(p: &Peer) -> Who {
    (p.id, p.addr.port())
}

/// One torrent's peers.
#[derive(Debug, Default)]
pub(crate) struct Swarm {
    /// One entry per endpoint.
    pub peers: Vec<Peer>,
    /// In swarms past `INDEX_THRESHOLD` entries.
    index: Option<Box<Index>>,
    /// Entries that seed.
    seeders: usize,
    /// Entries that are not seeders and want nothing more (BEP 21).
    partial_seeds: usize,
    /// While some peer has two entries or more (see the invariants).
    twins: Option<Box<Twins>>,
    /// `completed` events counted while the swarm existed.
    pub completed: u64,
}

/// A large swarm's indexes.
#[derive(Debug, Default)]
struct Index {
    /// Each entry's position in `peers`, by endpoint.
    by_addr: HashMap<SocketAddr, u32>,
    /// The number of entries per [`who_key`] of their [`Who`]: a key shared by two entries
    /// says they may be one peer's (a scan decides), one alone says the entry is a peer's only.
    by_who: HashMap<u32, u32>,
}

/// A 32-bit key of a [`Who`] under a hash keyed at random per process, so that peers cannot pick
/// ids that meet. Two peers may share a key; the count in [`Index::by_who`] only spares the scan
/// for an entry whose key nobody else has.
fn who_key(w: &Who) -> u32 {
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(Default::default).hash_one(w) as u32
}

/// The peers with two entries or more, and how much they make the entry counters overcount.
#[derive(Debug, Default)]
struct Twins {
    by_who: HashMap<Who, Twin>,
    /// The sum of [`Twin::overcount`] over `by_who`.
    overcount: Overcount,
}

/// The entries of one [`Who`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Twin {
    entries: u32,
    seeding: u32,
    partial: u32,
}

/// How much the entry counters count the peers behind `twins` too often.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Overcount {
    entries: usize,
    seeders: usize,
    partial: usize,
}

impl Twin {
    fn of(p: &Peer) -> Twin {
        Twin {
            entries: 1,
            seeding: u32::from(p.left == 0),
            partial: u32::from(p.partial),
        }
    }

    /// The peer is one entry, a seeder when any of its entries seeds, else a partial seed when
    /// any is one: what its entries add to the entry counters beyond that.
    fn overcount(&self) -> Overcount {
        let seeds = self.seeding > 0;
        Overcount {
            entries: self.entries as usize - 1,
            seeders: self.seeding as usize - usize::from(seeds),
            partial: self.partial as usize - usize::from(!seeds && self.partial > 0),
        }
    }
}

/// A swarm's counts, as announces and scrapes report them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub seeders: usize,
    /// Every peer that is not a seeder, partial seeds included (BEP 3's `incomplete`).
    pub leechers: usize,
    pub completed: u64,
    /// The leechers that still download: not partial seeds (BEP 21's `downloaders`).
    pub downloaders: usize,
}

impl Overcount {
    fn add(&mut self, o: Overcount) {
        self.entries += o.entries;
        self.seeders += o.seeders;
        self.partial += o.partial;
    }

    fn sub(&mut self, o: Overcount) {
        self.entries -= o.entries;
        self.seeders -= o.seeders;
        self.partial -= o.partial;
    }
}

impl Twins {
    /// Puts `twin` (the entries of `me`, now) in place of what was known of them.
    fn set(&mut self, me: Who, twin: Twin) {
        if let Some(old) = self.by_who.get(&me) {
            self.overcount.sub(old.overcount());
        }
        if twin.entries > 1 {
            self.overcount.add(twin.overcount());
            self.by_who.insert(me, twin);
        } else {
            self.by_who.remove(&me);
        }
    }
}

impl Swarm {
    /// The entry of endpoint `addr`.
    pub(crate) fn position(&self, addr: &SocketAddr) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.by_addr.get(addr).map(|&i| i as usize),
            None => self.peers.iter().position(|p| p.addr == *addr),
        }
    }

    /// Adds an entry (its endpoint not in the swarm yet).
    pub(crate) fn push(&mut self, peer: Peer) {
        self.count_in(&peer, None);
        if let Some(ix) = &mut self.index {
            ix.by_addr.insert(peer.addr, self.peers.len() as u32);
        }
        self.peers.push(peer);
        if self.index.is_none() && self.peers.len() > INDEX_THRESHOLD {
            self.rebuild_index();
        }
    }

    /// Takes out the entry at `i`.
    pub(crate) fn remove_at(&mut self, i: usize) -> Peer {
        let peer = self.peers.swap_remove(i);
        self.count_out(&peer);
        if let Some(ix) = &mut self.index {
            ix.by_addr.remove(&peer.addr);
            if let Some(moved) = self.peers.get(i) {
                ix.by_addr.insert(moved.addr, i as u32);
            }
        }
        peer
    }

    /// The entries of `me`, but the one at `at`.
    fn others(&self, me: Who, at: Option<usize>) -> impl Iterator<Item = &Peer> {
        self.peers
            .iter()
            .enumerate()
            .filter(move |(i, p)| Some(*i) != at && who(p) == me)
            .map(|(_, p)| p)
    }

    /// Counts `peer`, an entry about to be in `peers`: not there yet, or at `at`, which still
    /// holds what it was and is passed over.
    fn count_in(&mut self, peer: &Peer, at: Option<usize>) {
        self.seeders += usize::from(peer.left == 0);
        self.partial_seeds += usize::from(peer.partial);
        let me = who(peer);
        if let Some(ix) = &mut self.index {
            let n = ix.by_who.entry(who_key(&me)).or_insert(0);
            *n += 1;
            if *n == 1 {
                // Nobody else has its key: the peer's only entry.
                return;
            }
        }
        let known = self.twins.as_ref().and_then(|t| t.by_who.get(&me)).copied();
        let before = match known {
            Some(t) => t,
            None => match self.others(me, at).next() {
                // The one entry that was the peer's alone so far.
                Some(p) => Twin::of(p),
                None => return,
            },
        };
        let grown = Twin {
            entries: before.entries + 1,
            seeding: before.seeding + u32::from(peer.left == 0),
            partial: before.partial + u32::from(peer.partial),
        };
        self.twins.get_or_insert_default().set(me, grown);
    }

    /// Stops counting `peer`, an entry no longer in `peers` (or about to change).
    fn count_out(&mut self, peer: &Peer) {
        self.seeders -= usize::from(peer.left == 0);
        self.partial_seeds -= usize::from(peer.partial);
        let me = who(peer);
        if let Some(ix) = &mut self.index {
            let key = who_key(&me);
            if let Some(n) = ix.by_who.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    ix.by_who.remove(&key);
                }
            }
        }
        let Some(twins) = &mut self.twins else {
            return;
        };
        let Some(before) = twins.by_who.get(&me).copied() else {
            return;
        };
        let shrunk = Twin {
            entries: before.entries - 1,
            seeding: before.seeding - u32::from(peer.left == 0),
            partial: before.partial - u32::from(peer.partial),
        };
        twins.set(me, shrunk);
        if twins.by_who.is_empty() {
            self.twins = None;
        }
    }

    /// Changes the entry at `i` as `change` does, keeping the counters and `twins` true.
    pub(crate) fn update_at(&mut self, i: usize, change: impl FnOnce(&mut Peer)) {
        let before = self.peers[i].clone();
        let mut after = before.clone();
        change(&mut after);
        let counted = |p: &Peer| (p.id, p.left == 0, p.partial);
        if counted(&before) != counted(&after) {
            // Out as it was, in as it is.
            self.count_out(&before);
            self.count_in(&after, Some(i));
        }
        self.peers[i] = after;
    }

    /// Drops the entries not seen since `cutoff` (seconds since the store's epoch), recounting
    /// what is left; returns how many were dropped.
    pub(crate) fn expire(&mut self, cutoff: u32) -> usize {
        let before = self.peers.len();
        self.peers.retain(|p| p.last_seen >= cutoff);
        let dropped = before - self.peers.len();
        if dropped > 0 {
            self.recount();
            if self.peers.capacity() > 2 * self.peers.len() + 16 {
                self.peers.shrink_to_fit();
            }
        }
        dropped
    }

    /// Recounts everything from `peers` (after an expiry sweep dropped entries).
    fn recount(&mut self) {
        self.seeders = self.peers.iter().filter(|p| p.left == 0).count();
        self.partial_seeds = self.peers.iter().filter(|p| p.partial).count();
        let mut all: HashMap<Who, Twin> = HashMap::new();
        for p in &self.peers {
            let t = all.entry(who(p)).or_default();
            t.entries += 1;
            t.seeding += u32::from(p.left == 0);
            t.partial += u32::from(p.partial);
        }
        let mut twins = Twins::default();
        for (me, t) in all.into_iter().filter(|(_, t)| t.entries > 1) {
            twins.set(me, t);
        }
        self.twins = (!twins.by_who.is_empty()).then(|| Box::new(twins));
        self.index = None;
        self.rebuild_index();
    }

    /// Builds the indexes when the swarm is past `INDEX_THRESHOLD` entries and has none.
    fn rebuild_index(&mut self) {
        if self.peers.len() <= INDEX_THRESHOLD {
            self.index = None;
            return;
        }
        if self.index.is_some() {
            return;
        }
        let mut ix = Index {
            by_addr: HashMap::with_capacity(self.peers.len()),
            by_who: HashMap::with_capacity(self.peers.len()),
        };
        for (i, p) in self.peers.iter().enumerate() {
            ix.by_addr.insert(p.addr, i as u32);
            *ix.by_who.entry(who_key(&who(p))).or_insert(0) += 1;
        }
        self.index = Some(Box::new(ix));
    }

    /// The swarm's peers (the entries of one [`Who`] counted once), as announces and scrapes
    /// report them.
    pub fn counts(&self) -> Counts {
        let over = self.twins.as_ref().map(|t| t.overcount).unwrap_or_default();
        let peers = self.peers.len() - over.entries;
        let seeders = self.seeders - over.seeders;
        let partial = self.partial_seeds - over.partial;
        Counts {
            seeders,
            leechers: peers - seeders,
            completed: self.completed,
            downloaders: peers - seeders - partial,
        }
    }

    /// Up to `want` peers other than `asker` (its endpoint and, for a dual-stack client, its
    /// endpoint in the other family: the same peer id `asker_id` and port), of one family when
    /// `only` says so, starting at a random place so that every peer gets handed out in turn.
    pub fn sample(
        &self,
        asker: &SocketAddr,
        asker_id: &PeerId,
        want: usize,
        only: Family,
        out: &mut Vec<(SocketAddr, PeerId)>,
    ) {
        let n = self.peers.len();
        if n == 0 || want == 0 {
            return;
        }
        let start = rand::thread_rng().gen_range(0..n);
        for k in 0..n {
            let p = &self.peers[(start + k) % n];
            let itself = p.addr == *asker
                || (p.id == *asker_id
                    && p.addr.port() == asker.port()
                    && p.addr.is_ipv4() != asker.is_ipv4());
            if !itself && only.admits(&p.addr) {
                out.push((p.addr, p.id));
                if out.len() == want {
                    break;
                }
            }
        }
    }
}

/// Which peers an announce reply can carry: HTTP replies carry both families, a UDP reply only the
/// family of the socket it goes out on (BEP 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Any,
    V4,
    V6,
}

impl Family {
    fn admits(self, addr: &SocketAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => addr.is_ipv4(),
            Family::V6 => addr.is_ipv6(),
        }
    }
}

#[cfg(test)]
impl Swarm {
    /// (peers, seeders, partial seeds) counted from the entries themselves, each peer id and port
    /// once: a seeder when any of its entries seeds, else a partial seed when any is one.
    pub(crate) fn counted_by_peer(&self) -> (usize, usize, usize) {
        let mut ids: HashMap<Who, (bool, bool)> = HashMap::new();
        for p in &self.peers {
            let e = ids.entry(who(p)).or_default();
            e.0 |= p.left == 0;
            e.1 |= p.partial;
        }
        let seeders = ids.values().filter(|(seeds, _)| *seeds).count();
        let partial = ids.values().filter(|(seeds, part)| !seeds && *part).count();
        (ids.len(), seeders, partial)
    }

    /// Panics unless the invariants of the module doc hold, checked against the entries
    /// themselves. Returns whether the swarm is indexed.
    pub(crate) fn assert_invariants(&self) -> bool {
        assert_eq!(
            self.seeders,
            self.peers.iter().filter(|p| p.left == 0).count()
        );
        assert_eq!(
            self.partial_seeds,
            self.peers.iter().filter(|p| p.partial).count()
        );
        for (i, p) in self.peers.iter().enumerate() {
            assert_eq!(self.position(&p.addr), Some(i));
        }
        let (peers, _, _) = self.counted_by_peer();
        assert_eq!(self.twins.is_some(), peers < self.peers.len());
        let Some(ix) = &self.index else {
            return false;
        };
        assert_eq!(ix.by_addr.len(), self.peers.len());
        for (i, p) in self.peers.iter().enumerate() {
            assert_eq!(ix.by_addr.get(&p.addr), Some(&(i as u32)));
        }
        let mut want: HashMap<u32, u32> = HashMap::new();
        for p in &self.peers {
            *want.entry(who_key(&who(p))).or_insert(0) += 1;
        }
        assert_eq!(ix.by_who, want);
        true
    }
}
