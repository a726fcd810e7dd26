//! The swarm store: every torrent the tracker knows and the peers announcing it, in memory.
//!
//! # Concurrency
//! The store is split into [`SHARDS`] shards by a keyed hash of the info-hash; each shard is one
//! `parking_lot::Mutex` over its swarms, its part of the private-mode allow list and its request
//! counters. An announce or a scrape of one torrent locks exactly one shard for a few microseconds and
//! never does I/O, allocation-heavy work or logging under it. Whole-store readers (stats, status page,
//! `/get_peers`, expiry) lock one shard at a time, never two: there is no lock order to get wrong.
//!
//! # Invariants
//! Each swarm keeps its own ([`crate::swarm`]). The store keeps `swarm_count` and `peer_count`
//! equal to the swarms and entries it holds (see Bounds), and no swarm without peers: one is
//! removed at once (after a `stopped`, or when the announce that would have created it is refused)
//! or at the next expiry sweep; the `completed` count of a removed swarm is forgotten with it.
//!
//! # Bounds
//! `swarm_count` and `peer_count` are exact totals kept with atomic add-then-check, so the caps
//! (`max_swarms`, `max_peers`, `max_peers_per_swarm`) hold even under concurrent announces. A peer is an
//! 80-byte entry plus vector slack, and in swarms large enough to be indexed two index entries.
//! Measured (400,000 peers, release build, resident memory): 185 bytes a peer in swarms of 1,000,
//! and 290 a peer in swarms of 10, the swarm's own share included.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::{Mutex, MutexGuard};

use btorrent_proto::types::{InfoHash, PeerId};

use crate::swarm::{Counts, Family, Peer, Swarm};

/// Number of shards: enough that a handful of cores rarely meet on one lock.
pub(crate) const SHARDS: usize = 64;

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
                if up.completed && swarm.peers[i].left != 0 {
                    swarm.completed += 1;
                }
                swarm.update_at(i, |p| {
                    p.id = up.id;
                    p.left = up.left;
                    p.uploaded = up.uploaded;
                    p.downloaded = up.downloaded;
                    p.last_seen = up.now;
                    p.partial = partial;
                });
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
        swarm.sample(&up.addr, &up.id, want, only, out);
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
                dropped += swarm.expire(cutoff);
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

    /// A `stopped` announce from 127.0.0.1:`port`; the counts after it.
    fn stop(s: &Store, ih: &InfoHash, port: u16) -> Counts {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        s.stop(&mut s.shard_of(ih), *ih, &addr).unwrap()
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
        assert!(swarm.assert_invariants(), "indexed");
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
        let c = stop(&s, &ih, 2);
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
        let asker_id = PeerId([3; 20]);
        let mut out = Vec::new();
        shard.swarms[&ih].sample(&asker, &asker_id, 100, Family::Any, &mut out);
        assert_eq!(out.len(), 9);
        assert!(out.iter().all(|(a, _)| *a != asker));
        out.clear();
        shard.swarms[&ih].sample(&asker, &asker_id, 4, Family::Any, &mut out);
        assert_eq!(out.len(), 4);
        // A dual-stack client is not handed its own other endpoint.
        let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 3));
        out.clear();
        shard.swarms[&ih].sample(&v6, &asker_id, 100, Family::Any, &mut out);
        assert!(out.iter().all(|(_, id)| *id != asker_id), "{out:?}");
        assert_eq!(out.len(), 9);
    }

    #[test]
    fn a_dual_stack_peer_is_counted_once() {
        let s = Store::new(caps(), false);
        let ih = InfoHash([1; 20]);
        let v6 = |port, left| Update {
            addr: SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
            ..up(port, left, 0)
        };
        announce(&s, 1, up(1, 0, 0)).unwrap();
        // Peer 2 over IPv4, then over IPv6 with the same id: one leecher, two endpoints.
        assert_eq!(announce(&s, 1, up(2, 5, 0)), Ok((1, 1, 0)));
        assert_eq!(announce(&s, 1, v6(2, 5)), Ok((1, 1, 0)));
        assert_eq!(s.peer_count(), 3);
        // The same peer id on another port is another client (one sending a fixed id).
        let fixed_id = Update {
            id: PeerId([2; 20]),
            ..up(9, 5, 0)
        };
        assert_eq!(announce(&s, 1, fixed_id), Ok((1, 2, 0)));
        stop(&s, &ih, 9);
        // It completes over one family first: a seeder at once, never also a leecher.
        assert_eq!(announce(&s, 1, v6(2, 0)), Ok((2, 0, 0)));
        assert_eq!(announce(&s, 1, up(2, 0, 0)), Ok((2, 0, 0)));
        // Stopping over one family leaves it a seeder by its other endpoint.
        let c = stop(&s, &ih, 2);
        assert_eq!((c.seeders, c.leechers), (2, 0));
        let shard = s.shard_of(&ih);
        assert_eq!(shard.swarms[&ih].counted_by_peer(), (2, 2, 0));
        assert!(!shard.swarms[&ih].assert_invariants());
        // The scrape's and the status page's counts are the same.
        assert_eq!(shard.swarms[&ih].counts().seeders, 2);
    }

    /// Random announces, stops and expiry sweeps over a few ids and endpoints, through the
    /// indexed size and back: after each, the counts are those of a recount by peer id, and the
    /// indexes and entry counters match the entries.
    #[test]
    fn counts_by_peer_id_stay_exact_under_any_sequence() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let s = Store::new(
            Caps {
                max_swarms: 4,
                max_peers: 1000,
                max_peers_per_swarm: 200,
            },
            false,
        );
        let ih = InfoHash([1; 20]);
        let mut indexed = 0;
        for step in 0..20_000u32 {
            // Endpoints: a pool that passes the index threshold when most are in.
            let port = rng.gen_range(1..=40u16);
            let addr = match rng.gen_range(0..5) {
                0..=1 => SocketAddr::from(([127, 0, 0, 1], port)),
                // Another host with a client sending the same fixed peer id.
                2 => SocketAddr::from(([127, 0, 0, 2], port)),
                _ => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
            };
            let now = step / 100;
            // Phases of growth past the index threshold and of shrinking below it.
            let stops = if (step / 1_000) % 2 == 0 { 18 } else { 55 };
            match rng.gen_range(0..100) {
                r if r < 98 - stops => {
                    let u = Update {
                        addr,
                        // Mostly the endpoint's own client; now and then another id.
                        id: PeerId([(port % 30) as u8 + u8::from(rng.gen_bool(0.05)); 20]),
                        left: if rng.gen_bool(0.4) { 0 } else { 5 },
                        uploaded: 0,
                        downloaded: 0,
                        now,
                        completed: false,
                        paused: rng.gen_bool(0.3),
                    };
                    let mut out = Vec::new();
                    let _ = s.announce(&mut s.shard_of(&ih), ih, u, 0, Family::Any, &mut out);
                }
                r if r < 98 => {
                    let _ = s.stop(&mut s.shard_of(&ih), ih, &addr);
                }
                _ => {
                    s.expire(now.saturating_sub(rng.gen_range(0..3)));
                }
            }
            let shard = s.shard_of(&ih);
            let Some(swarm) = shard.swarms.get(&ih) else {
                continue;
            };
            let c = swarm.counts();
            let (peers, seeders, partial) = swarm.counted_by_peer();
            assert_eq!(
                (
                    c.seeders + c.leechers,
                    c.seeders,
                    c.leechers - c.downloaders
                ),
                (peers, seeders, partial),
                "step {step}"
            );
            if swarm.assert_invariants() {
                indexed += 1;
            }
        }
        // Both ways of finding a peer's other entries were taken, many times.
        assert!(
            (1_000..19_000).contains(&indexed),
            "{indexed} steps indexed"
        );
    }
}
