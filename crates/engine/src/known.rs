//! The addresses a torrent may dial, and in which order: a bounded list, so a tracker that returns
//! thousands of junk addresses can neither grow memory without end nor hide the honest peers.
//!
//! - At most [`MAX_KNOWN`] addresses are tracked in full (state, failures, when to try next). More go
//!   to a waiting room of at most [`MAX_WAITING`] bare addresses; when that is full too, a newcomer
//!   takes the place of a random one, so no position in a flood is sure to be dropped.
//! - Room is made by evicting first the addresses that never answered and failed: every failed dial
//!   of such an address hands its place to a waiting one. Addresses that worked once stay.
//! - Dial order (`KnownPeers::picks`): addresses that worked before first, then the fewest failures,
//!   the sources taken in turn (given by the user, learnt from a peer that dialed us, from a tracker,
//!   from the DHT, from a peer's exchange (PEX))
//!   so one flooded source cannot starve the others. Within each, the best ranked by canonical peer
//!   priority (BEP 40, [`crate::peer_priority`]: the peers a swarm agrees we should connect to) and
//!   one at random in turn: a tracker can neither put the honest peers last by the order of its list
//!   nor bury them under made-up addresses that outrank them.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::Rng;

/// An address to dial and its place in the order, best first: (never answered, failures), rank
/// (canonical peer priority, highest first), the address.
type DialKey = ((bool, u32), std::cmp::Reverse<u32>, SocketAddr);

/// Addresses tracked in full per torrent.
pub const MAX_KNOWN: usize = 2_000;
/// Addresses waiting for a place among the known ones, per torrent.
pub const MAX_WAITING: usize = 8_192;

/// Where an address came from; for a connection ([`crate::PeerInfo::source`]), where the address we
/// dialed came from, or `Incoming` when the peer dialed us.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Given by the user (`--peer`, `add_peers`, a magnet link's `x.pe`).
    #[default]
    User,
    /// A peer that dialed us, or the listen address a connected peer told us.
    Incoming,
    /// A tracker's reply.
    Tracker,
    /// A DHT lookup.
    Dht,
    /// A connected peer's peer exchange (BEP 11 `ut_pex`).
    Pex,
    /// Local service discovery (BEP 14): a peer on the local network.
    Lsd,
}

/// Where a known address stands.
#[derive(Debug, Clone)]
pub(crate) struct KnownPeer {
    pub connected: bool,
    pub connecting: bool,
    pub failures: u32,
    pub next_try: Instant,
    /// It wanted nothing more when we last saw it: it had every piece, or said `upload_only`
    /// (BEP 21, a partial seed). See [`KnownPeer::of_use`].
    pub wants_nothing: bool,
    /// It wanted nothing and had nothing we wanted when we parted (a partial seed we had taken
    /// all we want of): the picker's [`wants_generation`] then. Not dialed again until that moves.
    ///
    /// [`wants_generation`]: crate::picker::Picker::wants_generation
    pub offered_nothing: Option<u32>,
    /// It completed a handshake with us at least once.
    pub answered: bool,
    pub source: Source,
    /// Dial it with the encrypted handshake first: it took only that last time, or a peer's PEX
    /// said it prefers encryption (see [`crate::peer_stream`]).
    pub encrypt_first: bool,
    /// The transport to dial it over: the one that worked last, or the other one after a dial
    /// failed; `None`: the policy's (see [`crate::transport`]).
    pub over: Option<crate::transport::Transport>,
    /// Heard of only in the torrent's second swarm (a hybrid's v2 one,
    /// [`Metainfo::second_info_hash`]): dialed by that info-hash, the one a peer that knows the
    /// torrent only by its `btmh` (a v2 client fetching its metadata) answers to.
    ///
    /// [`Metainfo::second_info_hash`]: btorrent_proto::metainfo::Metainfo::second_info_hash
    pub second_swarm: bool,
    /// The connected peer whose exchange named this address as speaking `ut_holepunch`: the one
    /// asked to introduce us when a dial fails (see [`crate::holepunch`]).
    pub introducer: Option<crate::picker::PeerKey>,
    /// When we last asked for an introduction to it.
    pub rendezvous_at: Option<Instant>,
    /// Dials left that a relay's `connect` asked for: over uTP, at once (a failed one is followed
    /// by the next punch, not by a rendezvous).
    pub punches: u8,
}

impl Source {
    /// Its name, as `b-show --peers` shows it.
    pub fn name(self) -> &'static str {
        match self {
            Source::User => "user",
            Source::Incoming => "incoming",
            Source::Tracker => "tracker",
            Source::Dht => "dht",
            Source::Pex => "pex",
            Source::Lsd => "lsd",
        }
    }
}

impl KnownPeer {
    /// An address never tried: free to dial now.
    pub(crate) fn new(source: Source) -> Self {
        KnownPeer {
            connected: false,
            connecting: false,
            failures: 0,
            next_try: Instant::now(),
            wants_nothing: false,
            offered_nothing: None,
            answered: false,
            source,
            encrypt_first: false,
            over: None,
            second_swarm: false,
            introducer: None,
            rendezvous_at: None,
            punches: 0,
        }
    }

    /// Worth dialing for a torrent that wants nothing more (`we_done`) or does, its wants at
    /// generation `wants`: one that wanted nothing either is of no use to a torrent that wants
    /// nothing, nor one that had nothing we want to us while we want no more than we did then.
    pub(crate) fn of_use(&self, we_done: bool, wants: u32) -> bool {
        if we_done {
            !self.wants_nothing
        } else {
            self.offered_nothing != Some(wants)
        }
    }

    /// Never answered and not in use: the first to make room.
    fn evictable(&self) -> bool {
        !self.answered && !self.connected && !self.connecting && self.failures > 0
    }
}

/// The dial list of one torrent (see the module docs).
pub(crate) struct KnownPeers {
    map: HashMap<SocketAddr, KnownPeer>,
    /// Addresses waiting for a place, and the same as a set to keep them unique.
    waiting: Vec<(SocketAddr, Source)>,
    waiting_set: HashSet<SocketAddr>,
    /// Addresses that failed without ever answering, most recent last (may hold stale entries: each
    /// is checked again when used).
    failed: Vec<SocketAddr>,
    cap: usize,
    waiting_cap: usize,
}

impl Default for KnownPeers {
    fn default() -> Self {
        Self::with_caps(MAX_KNOWN, MAX_WAITING)
    }
}

impl KnownPeers {
    pub(crate) fn with_caps(cap: usize, waiting_cap: usize) -> Self {
        KnownPeers {
            map: HashMap::new(),
            waiting: Vec::new(),
            waiting_set: HashSet::new(),
            failed: Vec::new(),
            cap: cap.max(1),
            waiting_cap,
        }
    }

    /// Addresses tracked in full.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Addresses waiting for a place.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn get(&self, a: &SocketAddr) -> Option<&KnownPeer> {
        self.map.get(a)
    }

    pub fn get_mut(&mut self, a: &SocketAddr) -> Option<&mut KnownPeer> {
        self.map.get_mut(a)
    }

    /// Makes every address due for a dial now, its failures forgotten: the torrent goes back to
    /// transferring (a resume, a recovery, a file wanted again).
    pub fn all_due(&mut self) {
        let now = Instant::now();
        for k in self.map.values_mut() {
            k.next_try = now;
            k.failures = 0;
        }
    }

    /// Dials in progress.
    pub fn connecting(&self) -> usize {
        self.map.values().filter(|k| k.connecting).count()
    }

    /// Adds a dial candidate. An address given by the user is taken even over the cap (it evicts
    /// the worst one instead of waiting).
    pub fn add(&mut self, a: SocketAddr, source: Source) {
        if let Some(k) = self.map.get_mut(&a) {
            if source == Source::User {
                k.source = Source::User;
            }
            return;
        }
        if self.map.len() < self.cap || self.evict_failed() {
            self.map.insert(a, KnownPeer::new(source));
            return;
        }
        if source == Source::User && self.evict_any() {
            self.map.insert(a, KnownPeer::new(source));
            return;
        }
        if self.waiting_set.contains(&a) || self.waiting_cap == 0 {
            return;
        }
        if self.waiting.len() < self.waiting_cap {
            self.waiting.push((a, source));
        } else {
            let i = rand::thread_rng().gen_range(0..self.waiting.len());
            let (old, _) = std::mem::replace(&mut self.waiting[i], (a, source));
            self.waiting_set.remove(&old);
        }
        self.waiting_set.insert(a);
    }

    /// The entry for an address a connected peer listens on (created if need be): connected now.
    pub fn note_connected(&mut self, a: SocketAddr) {
        self.add(a, Source::Incoming);
        if let Some(k) = self.map.get_mut(&a) {
            k.connected = true;
            k.answered = true;
        }
    }

    /// A dial to `a` failed: it waits `backoff` before the next try, or, if it never answered and
    /// others wait for a place, gives its place to one of them.
    pub fn dial_failed(&mut self, a: SocketAddr, backoff: impl FnOnce(u32) -> Duration) {
        let Some(k) = self.map.get_mut(&a) else {
            return;
        };
        k.connecting = false;
        k.failures += 1;
        k.next_try = Instant::now() + backoff(k.failures);
        if k.evictable() {
            if k.failures == 1 {
                self.failed.push(a);
            }
            if self.failed.len() > 2 * self.cap {
                let map = &self.map;
                self.failed
                    .retain(|a| map.get(a).is_some_and(KnownPeer::evictable));
            }
            if !self.waiting.is_empty() && self.evict_failed() {
                self.promote();
            }
        }
    }

    /// A dial to `a` picked but not made (no socket was left in the session's budget): it may be
    /// picked again at once, with no failure counted.
    pub fn not_dialed(&mut self, a: SocketAddr) {
        if let Some(k) = self.map.get_mut(&a) {
            k.connecting = false;
        }
    }

    /// Forgets `a` (ourselves, or banned).
    pub fn remove(&mut self, a: &SocketAddr) {
        self.map.remove(a);
        self.promote();
    }

    /// Forgets every address of `ip` (banned), waiting ones included.
    pub fn remove_ip(&mut self, ip: IpAddr) {
        self.map.retain(|a, _| a.ip() != ip);
        self.waiting.retain(|(a, _)| a.ip() != ip);
        self.waiting_set.retain(|a| a.ip() != ip);
        while self.map.len() < self.cap && self.promote() {}
    }

    /// Moves a random waiting address into the list if there is room. False if none moved.
    fn promote(&mut self) -> bool {
        if self.map.len() >= self.cap || self.waiting.is_empty() {
            return false;
        }
        let i = rand::thread_rng().gen_range(0..self.waiting.len());
        let (a, source) = self.waiting.swap_remove(i);
        self.waiting_set.remove(&a);
        self.map.entry(a).or_insert_with(|| KnownPeer::new(source));
        true
    }

    /// Drops the most recently failed address that never answered. False if there is none.
    fn evict_failed(&mut self) -> bool {
        while let Some(a) = self.failed.pop() {
            if self.map.get(&a).is_some_and(KnownPeer::evictable) {
                self.map.remove(&a);
                return true;
            }
        }
        false
    }

    /// Drops the address least worth keeping that is not in use: never answered, most failures.
    fn evict_any(&mut self) -> bool {
        let worst = self
            .map
            .iter()
            .filter(|(_, k)| !k.connected && !k.connecting && k.source != Source::User)
            .max_by_key(|(_, k)| (!k.answered, k.failures))
            .map(|(a, _)| *a);
        worst.is_some_and(|a| self.map.remove(&a).is_some())
    }

    /// Up to `n` addresses to dial now, in dial order (module docs), each marked `connecting`.
    /// `usable` says whether an address may be dialed at all (not banned, not one that wants nothing when we want nothing: `KnownPeer::of_use`);
    /// `rank` is its canonical priority with us (BEP 40, [`crate::peer_priority`]).
    pub fn picks(
        &mut self,
        n: usize,
        now: Instant,
        usable: impl Fn(&SocketAddr, &KnownPeer) -> bool,
        mut rank: impl FnMut(&SocketAddr) -> u32,
    ) -> Vec<SocketAddr> {
        if n == 0 {
            return Vec::new();
        }
        let mut rng = rand::thread_rng();
        // Each source's addresses, best first: worked before, fewest failures, best ranked.
        let mut by_source: [Vec<DialKey>; 6] = Default::default();
        for (a, k) in &self.map {
            if k.connected || k.connecting || k.next_try > now || !usable(a, k) {
                continue;
            }
            let s = match k.source {
                Source::User => 0,
                Source::Incoming => 1,
                Source::Lsd => 2,
                Source::Tracker => 3,
                Source::Dht => 4,
                Source::Pex => 5,
            };
            by_source[s].push(((!k.answered, k.failures), std::cmp::Reverse(rank(a)), *a));
        }
        for v in &mut by_source {
            v.sort_unstable();
        }
        let mut drawn = [0usize; 6];
        let mut out = Vec::new();
        'fill: loop {
            let mut any = false;
            for (v, drawn) in by_source.iter_mut().zip(&mut drawn) {
                if out.len() >= n {
                    break 'fill;
                }
                let Some(&(head, _, _)) = v.first() else {
                    continue;
                };
                // Every other draw is at random among the addresses as good as the best but for
                // their rank: the rank is the addresses' own, so a list padded with made-up
                // addresses that outrank the real ones cannot keep those from being dialed.
                let at = if *drawn % 2 == 0 {
                    0
                } else {
                    rng.gen_range(0..v.partition_point(|x| x.0 == head))
                };
                *drawn += 1;
                out.push(v.remove(at).2);
                any = true;
            }
            if !any {
                break;
            }
        }
        // Addresses that worked before come first whatever their source.
        out.sort_by_key(|a| !self.map[a].answered);
        for a in &out {
            if let Some(k) = self.map.get_mut(a) {
                k.connecting = true;
            }
        }
        out
    }

    /// Whether some address could be dialed now.
    pub fn any_dialable(
        &self,
        now: Instant,
        usable: impl Fn(&SocketAddr, &KnownPeer) -> bool,
    ) -> bool {
        self.map
            .iter()
            .any(|(a, k)| !k.connected && !k.connecting && k.next_try <= now && usable(a, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u32) -> SocketAddr {
        SocketAddr::from((std::net::Ipv4Addr::from(0x0a00_0000 + i), 6881))
    }

    #[test]
    fn a_peer_that_had_nothing_we_want_waits_until_we_want_more() {
        let mut k = KnownPeer::new(Source::Tracker);
        assert!(k.of_use(false, 7) && k.of_use(true, 7));
        // A partial seed we took all we want of, our wants at generation 7.
        k.wants_nothing = true;
        k.offered_nothing = Some(7);
        assert!(
            !k.of_use(false, 7),
            "dialed though we want no more than then"
        );
        assert!(k.of_use(false, 8), "not dialed though we want more");
        assert!(!k.of_use(true, 8), "dialed though neither wants anything");
        // A seed that left while we were downloading: of use until we are done.
        k.offered_nothing = None;
        assert!(k.of_use(false, 7) && !k.of_use(true, 7));
    }

    #[test]
    fn a_flood_stays_bounded_and_failed_addresses_make_room() {
        let mut k = KnownPeers::with_caps(100, 300);
        for i in 0..10_000 {
            k.add(addr(i), Source::Tracker);
        }
        assert_eq!((k.len(), k.waiting()), (100, 300));
        // Each failure of an address that never answered hands its place to a waiting one.
        let picks = k.picks(100, Instant::now(), |_, _| true, |_| 0);
        assert_eq!(picks.len(), 100);
        for a in picks {
            k.dial_failed(a, |_| Duration::from_secs(60));
        }
        assert_eq!((k.len(), k.waiting()), (100, 200));
        assert_eq!(k.picks(1000, Instant::now(), |_, _| true, |_| 0).len(), 100);
    }

    #[test]
    fn worked_before_first_and_sources_taken_in_turn() {
        let mut k = KnownPeers::with_caps(1000, 0);
        for i in 0..500 {
            k.add(addr(i), Source::Tracker);
        }
        k.add(addr(900), Source::User);
        k.note_connected(addr(901));
        k.get_mut(&addr(901)).unwrap().connected = false;
        let picks = k.picks(3, Instant::now(), |_, _| true, |_| 0);
        assert_eq!(picks[0], addr(901), "worked before: first");
        assert!(
            picks.contains(&addr(900)),
            "the user's address is not behind 500 others"
        );
        // A user's address gets in even when the list is full of untried ones.
        let mut full = KnownPeers::with_caps(10, 0);
        for i in 0..10 {
            full.add(addr(i), Source::Tracker);
        }
        full.add(addr(77), Source::User);
        assert!(full.get_mut(&addr(77)).is_some());
        assert_eq!(full.len(), 10);
    }

    #[test]
    fn the_best_ranked_first_and_every_other_pick_at_random() {
        let mut k = KnownPeers::with_caps(1000, 0);
        for i in 0..100 {
            k.add(addr(i), Source::Tracker);
        }
        // Ranked by their number: addr(99) best.
        let rank = |a: &SocketAddr| match a.ip() {
            IpAddr::V4(v4) => u32::from(v4) - 0x0a00_0000,
            IpAddr::V6(_) => 0,
        };
        let picks = k.picks(10, Instant::now(), |_, _| true, rank);
        assert_eq!(picks.len(), 10);
        let ranks: Vec<u32> = picks.iter().map(rank).collect();
        // Even draws: the best ranked left, in order.
        let firsts: Vec<u32> = ranks.iter().step_by(2).copied().collect();
        let mut sorted = firsts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(firsts, sorted, "{ranks:?}");
        assert_eq!(firsts[0], 99, "{ranks:?}");
        // Odd draws: at random among the rest, so over a few tries not always the next best.
        let mut random_seen = false;
        for _ in 0..20 {
            let mut k = KnownPeers::with_caps(1000, 0);
            for i in 0..100 {
                k.add(addr(i), Source::Tracker);
            }
            let p = k.picks(2, Instant::now(), |_, _| true, rank);
            random_seen |= rank(&p[1]) != 98;
        }
        assert!(random_seen, "the second pick was always the next best");
        // Fewer failures still come before a better rank.
        let mut k = KnownPeers::with_caps(1000, 0);
        k.add(addr(1), Source::Tracker);
        k.add(addr(50), Source::Tracker);
        k.get_mut(&addr(50)).unwrap().failures = 1;
        let p = k.picks(1, Instant::now(), |_, _| true, rank);
        assert_eq!(p, [addr(1)]);
    }

    #[test]
    fn a_pex_flood_does_not_starve_the_tracker() {
        let mut k = KnownPeers::with_caps(1000, 0);
        for i in 0..999 {
            k.add(addr(i), Source::Pex);
        }
        k.add(addr(1500), Source::Tracker);
        let picks = k.picks(2, Instant::now(), |_, _| true, |_| 0);
        assert!(picks.contains(&addr(1500)), "{picks:?}");
        for i in 5000..6000 {
            k.add(addr(i), Source::Pex);
        }
        assert_eq!(
            (k.len(), k.waiting()),
            (1000, 0),
            "bounded like every source"
        );
    }
}
