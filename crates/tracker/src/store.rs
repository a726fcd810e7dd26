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
//! - A swarm with no peers is removed at once (after a `stopped`, or when the announce that would have
//!   created it is refused) or at the next expiry sweep; the `completed` count of a removed swarm is
//!   forgotten with it.
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
    fn position(&self, addr: &SocketAddr) -> Option<usize> {
        match &self.index {
            Some(ix) => ix.by_addr.get(addr).map(|&i| i as usize),
            None => self.peers.iter().position(|p| p.addr == *addr),
        }
    }

    fn push(&mut self, peer: Peer) {
        self.count_in(&peer, None);
        if let Some(ix) = &mut self.index {
            ix.by_addr.insert(peer.addr, self.peers.len() as u32);
        }
        self.peers.push(peer);
        if self.index.is_none() && self.peers.len() > INDEX_THRESHOLD {
            self.rebuild_index();
        }
    }

    fn remove_at(&mut self, i: usize) -> Peer {
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
    fn update_at(&mut self, i: usize, change: impl FnOnce(&mut Peer)) {
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
                let before = swarm.peers.len();
                swarm.peers.retain(|p| p.last_seen >= cutoff);
                if swarm.peers.len() != before {
                    dropped += before - swarm.peers.len();
                    swarm.recount();
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

    /// (peers, seeders, partial seeds) counting each peer id and port once: a seeder when any of
    /// its entries seeds, else a partial seed when any is one.
    fn by_id(swarm: &Swarm) -> (usize, usize, usize) {
        let mut ids: HashMap<Who, (bool, bool)> = HashMap::new();
        for p in &swarm.peers {
            let e = ids.entry(who(p)).or_default();
            e.0 |= p.left == 0;
            e.1 |= p.partial;
        }
        let seeders = ids.values().filter(|(seeds, _)| *seeds).count();
        let partial = ids.values().filter(|(seeds, part)| !seeds && *part).count();
        (ids.len(), seeders, partial)
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
        assert!(shard.swarms[&ih].twins.is_none());
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
            let (peers, seeders, partial) = by_id(swarm);
            assert_eq!(
                (
                    c.seeders + c.leechers,
                    c.seeders,
                    c.leechers - c.downloaders
                ),
                (peers, seeders, partial),
                "step {step}"
            );
            assert_eq!(
                swarm.seeders,
                swarm.peers.iter().filter(|p| p.left == 0).count()
            );
            if let Some(ix) = &swarm.index {
                assert_eq!(ix.by_addr.len(), swarm.peers.len(), "step {step}");
                for (i, p) in swarm.peers.iter().enumerate() {
                    assert_eq!(ix.by_addr.get(&p.addr), Some(&(i as u32)));
                }
                let mut want: HashMap<u32, u32> = HashMap::new();
                for p in &swarm.peers {
                    *want.entry(who_key(&who(p))).or_insert(0) += 1;
                }
                assert_eq!(ix.by_who, want, "step {step}");
                indexed += 1;
            }
            assert_eq!(swarm.twins.is_some(), peers < swarm.peers.len());
        }
        // Both ways of finding a peer's other entries were taken, many times.
        assert!(
            (1_000..19_000).contains(&indexed),
            "{indexed} steps indexed"
        );
    }
}
