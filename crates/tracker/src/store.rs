//! The swarm store: every torrent the tracker knows and the peers announcing it, in memory.
//!
//! # Concurrency
//! The store is split into [`SHARDS`] shards by a keyed hash of the info-hash; each shard is one
//! `parking_lot::Mutex` over its swarms, its part of the private-mode allow list and its request
//! counters. An announce or a scrape of one torrent locks exactly one shard for a few microseconds and
//! never does I/O, allocation-heavy work or logging under it. Whole-store readers (stats, status page,
//! `/get_peers`, expiry) lock one shard at a time, never two: there is no lock order to get wrong.
//!
//! # Invariants (per swarm, kept by every method that changes a swarm)
//! - A peer is keyed by its endpoint (IP, port) with `::ffff:a.b.c.d` already mapped to IPv4, so a
//!   client cannot replace another's entry by reusing its peer id.
//! - `seeders` is the number of peers whose `left` is 0.
//! - `partial_seeds` is the number of peers whose `partial` is set; `partial` is set only while
//!   `left` is not 0 and the peer's last announce said `event=paused` (BEP 21: a peer that wants
//!   nothing more, having skipped files, says so in every announce).
//! - `index`, when present, maps each endpoint to its position in `peers`. A swarm gets one when it
//!   grows past `INDEX_THRESHOLD` peers and drops it when an expiry sweep leaves it at or below that
//!   size (one that shrank through `stopped` announces keeps it until then, still exact); a swarm
//!   without one is searched linearly.
//! - A swarm with no peers is removed at once (after a `stopped`, or when the announce that would have
//!   created it is refused) or at the next expiry sweep; the `completed` count of a removed swarm is
//!   forgotten with it.
//!
//! # Bounds
//! `swarm_count` and `peer_count` are exact totals kept with atomic add-then-check, so the caps
//! (`max_swarms`, `max_peers`, `max_peers_per_swarm`) hold even under concurrent announces. A peer is an
//! 80-byte entry plus vector slack, and in swarms large enough to be indexed an index entry: about 110
//! bytes in small swarms and 180 in large ones, measured; a swarm adds about 100 bytes.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard};
use rand::Rng;

use btorrent_proto::types::{InfoHash, PeerId};

/// Number of shards: enough that a handful of cores rarely meet on one lock.
pub(crate) const SHARDS: usize = 64;

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

/// One torrent's peers.
#[derive(Debug, Default)]
pub(crate) struct Swarm {
    pub peers: Vec<Peer>,
    index: Option<HashMap<SocketAddr, u32>>,
    pub seeders: usize,
    /// Peers that are not seeders and want nothing more (BEP 21).
    pub partial_seeds: usize,
    /// `completed` events counted while the swarm existed.
    pub completed: u64,
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

impl Swarm {
    fn position(&self, addr: &SocketAddr) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.get(addr).map(|&i| i as usize),
            None => self.peers.iter().position(|p| p.addr == *addr),
        }
    }

    fn push(&mut self, peer: Peer) {
        if peer.left == 0 {
            self.seeders += 1;
        }
        self.partial_seeds += usize::from(peer.partial);
        if let Some(ix) = &mut self.index {
            ix.insert(peer.addr, self.peers.len() as u32);
        }
        self.peers.push(peer);
        if self.index.is_none() && self.peers.len() > INDEX_THRESHOLD {
            self.rebuild_index();
        }
    }

    fn remove_at(&mut self, i: usize) -> Peer {
        let peer = self.peers.swap_remove(i);
        if peer.left == 0 {
            self.seeders -= 1;
        }
        self.partial_seeds -= usize::from(peer.partial);
        if let Some(ix) = &mut self.index {
            ix.remove(&peer.addr);
            if let Some(moved) = self.peers.get(i) {
                ix.insert(moved.addr, i as u32);
            }
        }
        peer
    }

    fn rebuild_index(&mut self) {
        self.index = (self.peers.len() > INDEX_THRESHOLD).then(|| {
            self.peers
                .iter()
                .enumerate()
                .map(|(i, p)| (p.addr, i as u32))
                .collect()
        });
    }

    pub fn leechers(&self) -> usize {
        self.peers.len() - self.seeders
    }

    pub fn counts(&self) -> Counts {
        Counts {
            seeders: self.seeders,
            leechers: self.leechers(),
            completed: self.completed,
            downloaders: self.leechers() - self.partial_seeds,
        }
    }

    /// Up to `want` peers other than `asker` (of one family when `only` says so), starting at a random
    /// place so that every peer gets handed out in turn.
    pub fn sample(
        &self,
        asker: &SocketAddr,
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
            if p.addr != *asker && only.admits(&p.addr) {
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

/// What an announce did to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotAllowed,
    TooManySwarms,
    TooManyPeers,
    SwarmFull,
}

/// One shard's state, behind its mutex.
#[derive(Default)]
pub(crate) struct Shard {
    pub swarms: HashMap<InfoHash, Swarm>,
    pub allowed: HashSet<InfoHash>,
    pub announces: u64,
    pub scrapes: u64,
}

#[repr(align(128))]
struct Padded(Mutex<Shard>);

/// Caps on what the store holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    pub max_swarms: usize,
    pub max_peers: usize,
    pub max_peers_per_swarm: usize,
}

pub(crate) struct Store {
    shards: Box<[Padded]>,
    hasher: std::collections::hash_map::RandomState,
    swarm_count: AtomicUsize,
    peer_count: AtomicUsize,
    /// Bumped by every announce, expiry sweep that dropped peers and disallow: readers that cache a
    /// view of the store (the `/get_peers` snapshot) know whether it is still current.
    changes: AtomicU64,
    caps: Caps,
    private: bool,
}

/// The fields of an announce the store keeps.
pub(crate) struct Update {
    pub addr: SocketAddr,
    pub id: PeerId,
    pub left: u64,
    pub uploaded: u64,
    pub downloaded: u64,
    pub now: u32,
    pub completed: bool,
    /// The announce said `event=paused` (BEP 21).
    pub paused: bool,
}

impl Store {
    pub fn new(caps: Caps, private: bool) -> Self {
        Store {
            shards: (0..SHARDS).map(|_| Padded(Mutex::default())).collect(),
            hasher: Default::default(),
            swarm_count: AtomicUsize::new(0),
            peer_count: AtomicUsize::new(0),
            changes: AtomicU64::new(0),
            caps,
            private,
        }
    }

    pub fn shard_of(&self, h: &InfoHash) -> MutexGuard<'_, Shard> {
        let i = self.hasher.hash_one(h) as usize % SHARDS;
        self.shards[i].0.lock()
    }

    /// Each shard in turn, for whole-store readers; the guard is dropped before the next is taken.
    pub fn for_each_shard(&self, mut f: impl FnMut(&mut Shard)) {
        for s in self.shards.iter() {
            f(&mut s.0.lock());
        }
    }

    #[cfg(test)]
    pub fn swarm_count(&self) -> usize {
        self.swarm_count.load(Ordering::Relaxed)
    }

    pub fn peer_count(&self) -> usize {
        self.peer_count.load(Ordering::Relaxed)
    }

    /// How many times the store has changed (see `changes`).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    fn reserve(counter: &AtomicUsize, max: usize) -> bool {
        if counter.fetch_add(1, Ordering::Relaxed) >= max {
            counter.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Records an announce (not `stopped`) and fills `out` with up to `want` other peers. Returns the
    /// swarm's counts after the update.
    pub fn announce(
        &self,
        shard: &mut Shard,
        info_hash: InfoHash,
        up: Update,
        want: usize,
        only: Family,
        out: &mut Vec<(SocketAddr, PeerId)>,
    ) -> Result<Counts, Refusal> {
        if self.private && !shard.allowed.contains(&info_hash) {
            return Err(Refusal::NotAllowed);
        }
        shard.announces += 1;
        self.changed();
        let partial = up.paused && up.left != 0;
        let swarm = match shard.swarms.get_mut(&info_hash) {
            Some(s) => s,
            None => {
                if !Self::reserve(&self.swarm_count, self.caps.max_swarms) {
                    return Err(Refusal::TooManySwarms);
                }
                shard.swarms.entry(info_hash).or_default()
            }
        };
        match swarm.position(&up.addr) {
            Some(i) => {
                let p = &mut swarm.peers[i];
                let was_seeder = p.left == 0;
                if up.completed && !was_seeder {
                    swarm.completed += 1;
                }
                p.id = up.id;
                p.left = up.left;
                p.uploaded = up.uploaded;
                p.downloaded = up.downloaded;
                p.last_seen = up.now;
                match (was_seeder, up.left == 0) {
                    (false, true) => swarm.seeders += 1,
                    (true, false) => swarm.seeders -= 1,
                    _ => {}
                }
                match (p.partial, partial) {
                    (false, true) => swarm.partial_seeds += 1,
                    (true, false) => swarm.partial_seeds -= 1,
                    _ => {}
                }
                p.partial = partial;
            }
            None => {
                let refusal = if swarm.peers.len() >= self.caps.max_peers_per_swarm {
                    Some(Refusal::SwarmFull)
                } else if !Self::reserve(&self.peer_count, self.caps.max_peers) {
                    Some(Refusal::TooManyPeers)
                } else {
                    None
                };
                if let Some(r) = refusal {
                    if swarm.peers.is_empty() {
                        shard.swarms.remove(&info_hash);
                        self.swarm_count.fetch_sub(1, Ordering::Relaxed);
                    }
                    return Err(r);
                }
                if up.completed {
                    swarm.completed += 1;
                }
                swarm.push(Peer {
                    addr: up.addr,
                    id: up.id,
                    left: up.left,
                    uploaded: up.uploaded,
                    downloaded: up.downloaded,
                    last_seen: up.now,
                    partial,
                });
            }
        }
        swarm.sample(&up.addr, want, only, out);
        Ok(swarm.counts())
    }

    /// Removes the peer at `addr` (a `stopped` announce) and the swarm if it is left empty. Returns the
    /// swarm's counts afterwards.
    pub fn stop(
        &self,
        shard: &mut Shard,
        info_hash: InfoHash,
        addr: &SocketAddr,
    ) -> Result<Counts, Refusal> {
        if self.private && !shard.allowed.contains(&info_hash) {
            return Err(Refusal::NotAllowed);
        }
        shard.announces += 1;
        self.changed();
        let Some(swarm) = shard.swarms.get_mut(&info_hash) else {
            return Ok(Counts::default());
        };
        if let Some(i) = swarm.position(addr) {
            swarm.remove_at(i);
            self.peer_count.fetch_sub(1, Ordering::Relaxed);
        }
        let counts = swarm.counts();
        if swarm.peers.is_empty() {
            shard.swarms.remove(&info_hash);
            self.swarm_count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(counts)
    }

    /// Drops peers not seen since `cutoff` (seconds since the epoch) and swarms left empty. Returns the
    /// number of peers dropped.
    pub fn expire(&self, cutoff: u32) -> usize {
        let mut dropped = 0;
        let mut dropped_swarms = 0;
        self.for_each_shard(|shard| {
            shard.swarms.retain(|_, swarm| {
                let before = swarm.peers.len();
                swarm.peers.retain(|p| p.last_seen >= cutoff);
                if swarm.peers.len() != before {
                    dropped += before - swarm.peers.len();
                    swarm.seeders = swarm.peers.iter().filter(|p| p.left == 0).count();
                    swarm.partial_seeds = swarm.peers.iter().filter(|p| p.partial).count();
                    swarm.rebuild_index();
                    if swarm.peers.capacity() > 2 * swarm.peers.len() + 16 {
                        swarm.peers.shrink_to_fit();
                    }
                }
                let keep = !swarm.peers.is_empty();
                dropped_swarms += usize::from(!keep);
                keep
            });
        });
        if dropped > 0 {
            self.changed();
        }
        self.peer_count.fetch_sub(dropped, Ordering::Relaxed);
        self.swarm_count
            .fetch_sub(dropped_swarms, Ordering::Relaxed);
        dropped
    }

    /// Private mode: start tracking `h`.
    pub fn allow(&self, h: InfoHash) {
        self.shard_of(&h).allowed.insert(h);
    }

    /// Private mode: stop tracking `h` and forget its peers.
    pub fn disallow(&self, h: InfoHash) {
        let mut shard = self.shard_of(&h);
        shard.allowed.remove(&h);
        if let Some(swarm) = shard.swarms.remove(&h) {
            self.changed();
            self.peer_count
                .fetch_sub(swarm.peers.len(), Ordering::Relaxed);
            self.swarm_count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Whether `h` may be tracked (always, unless the store is private).
    pub fn is_allowed(&self, shard: &Shard, h: &InfoHash) -> bool {
        !self.private || shard.allowed.contains(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Caps {
        Caps {
            max_swarms: 3,
            max_peers: 100,
            max_peers_per_swarm: 40,
        }
    }

    fn up(port: u16, left: u64, now: u32) -> Update {
        Update {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            id: PeerId([port as u8; 20]),
            left,
            uploaded: 0,
            downloaded: 0,
            now,
            completed: false,
            paused: false,
        }
    }

    /// (seeders, leechers, completed) after the announce.
    fn announce(s: &Store, h: u8, u: Update) -> Result<(usize, usize, u64), Refusal> {
        let ih = InfoHash([h; 20]);
        let mut out = Vec::new();
        s.announce(&mut s.shard_of(&ih), ih, u, 50, Family::Any, &mut out)
            .map(|c| (c.seeders, c.leechers, c.completed))
    }

    #[test]
    fn index_stays_consistent_across_growth_and_removal() {
        let s = Store::new(caps(), false);
        let ih = InfoHash([1; 20]);
        for port in 1..=40 {
            announce(&s, 1, up(port, port as u64 % 2, 0)).unwrap();
        }
        assert_eq!(s.peer_count(), 40);
        assert_eq!(announce(&s, 1, up(41, 0, 0)), Err(Refusal::SwarmFull));
        for port in (1..=40).step_by(3) {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            s.stop(&mut s.shard_of(&ih), ih, &addr).unwrap();
        }
        let shard = s.shard_of(&ih);
        let swarm = &shard.swarms[&ih];
        for (i, p) in swarm.peers.iter().enumerate() {
            assert_eq!(swarm.position(&p.addr), Some(i));
        }
        assert_eq!(
            swarm.seeders,
            swarm.peers.iter().filter(|p| p.left == 0).count()
        );
        assert_eq!(s.peer_count(), swarm.peers.len());
    }

    #[test]
    fn caps_and_expiry_keep_counts_exact() {
        let s = Store::new(caps(), false);
        for h in 0..3 {
            announce(&s, h, up(1, 0, 10)).unwrap();
        }
        assert_eq!(announce(&s, 9, up(1, 0, 10)), Err(Refusal::TooManySwarms));
        assert_eq!(s.swarm_count(), 3);
        announce(&s, 0, up(2, 5, 20)).unwrap();
        assert_eq!(s.expire(15), 3);
        assert_eq!((s.swarm_count(), s.peer_count()), (1, 1));
        assert_eq!(announce(&s, 0, up(2, 0, 30)), Ok((1, 0, 0)));
    }

    #[test]
    fn completed_counts_once_per_leecher() {
        let s = Store::new(caps(), false);
        let mut u = up(1, 5, 0);
        announce(&s, 1, u).unwrap();
        u = up(1, 0, 0);
        u.completed = true;
        assert_eq!(announce(&s, 1, u), Ok((1, 0, 1)));
        u = up(1, 0, 0);
        u.completed = true;
        assert_eq!(
            announce(&s, 1, u),
            Ok((1, 0, 1)),
            "a seeder repeating completed"
        );
    }

    #[test]
    fn partial_seeds_are_leechers_but_not_downloaders() {
        let s = Store::new(caps(), false);
        let ih = InfoHash([1; 20]);
        let counts = |u: Update| {
            let mut out = Vec::new();
            s.announce(&mut s.shard_of(&ih), ih, u, 50, Family::Any, &mut out)
                .unwrap()
        };
        let paused = |port, left| Update {
            paused: true,
            ..up(port, left, 0)
        };
        counts(up(1, 0, 0));
        counts(up(2, 5, 0));
        let c = counts(paused(3, 5));
        assert_eq!((c.seeders, c.leechers, c.downloaders), (1, 2, 1));
        // A paused seeder is a seeder; a partial seed that wants more again downloads.
        let c = counts(paused(4, 0));
        assert_eq!((c.seeders, c.leechers, c.downloaders), (2, 2, 1));
        let c = counts(up(3, 5, 0));
        assert_eq!((c.seeders, c.leechers, c.downloaders), (2, 2, 2));
        counts(paused(3, 5));
        // Leaving or expiring keeps the count exact.
        let c = s
            .stop(
                &mut s.shard_of(&ih),
                ih,
                &SocketAddr::from(([127, 0, 0, 1], 2)),
            )
            .unwrap();
        assert_eq!((c.leechers, c.downloaders), (1, 0));
        counts(up(5, 5, 10));
        assert_eq!(s.expire(5), 3);
        let shard = s.shard_of(&ih);
        let c = shard.swarms[&ih].counts();
        assert_eq!((c.seeders, c.leechers, c.downloaders), (0, 1, 1));
    }

    #[test]
    fn sample_skips_the_asker_and_honours_want() {
        let s = Store::new(caps(), false);
        for port in 1..=10 {
            announce(&s, 1, up(port, 1, 0)).unwrap();
        }
        let ih = InfoHash([1; 20]);
        let shard = s.shard_of(&ih);
        let asker = SocketAddr::from(([127, 0, 0, 1], 3));
        let mut out = Vec::new();
        shard.swarms[&ih].sample(&asker, 100, Family::Any, &mut out);
        assert_eq!(out.len(), 9);
        assert!(out.iter().all(|(a, _)| *a != asker));
        out.clear();
        shard.swarms[&ih].sample(&asker, 4, Family::Any, &mut out);
        assert_eq!(out.len(), 4);
    }
}
