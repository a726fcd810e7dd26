//! Local service discovery (BEP 14): the session's node that finds peers on the local network
//! without a tracker or the DHT. It multicasts a `BT-SEARCH` message ([`btorrent_proto::lsd`]) for
//! each running public torrent, at its start and every [`ANNOUNCE_EVERY`] after (never twice within
//! [`MIN_GAP`]; each announce is sent [`SENDS`] times, [`RESEND_AFTER`] apart, as a datagram on a
//! busy or wireless LAN is easily lost and the next announce is minutes away), on every interface
//! that takes multicast (only the listen address's own when the session listens on one; looked at
//! again every [`RESCAN`], so a network that comes up after the session is joined, and announced
//! to, then); and it hears the others' messages on the group, adding their sender (its
//! address, the port it names) to the dial list of the torrents we run by those info-hashes.
//!
//! Both of BEP 14's groups: IPv4's `239.192.152.143:6771`, and IPv6's `[ff15::efc0:988f]:6771`
//! when the session listens on `::` (which takes both families) or on an IPv6 address (then alone,
//! on that address's interface). A sender heard over IPv6 is dialled at the address it sent from,
//! a link-local one with its interface.
//!
//! One task ([`LsdNode::run`]) does both, with one socket per family bound to the group's port
//! (shared with the other clients of the machine: `SO_REUSEADDR`, every socket of the group gets
//! each message; the sockets and the interfaces per family are `multicast`'s). Our own messages
//! come back and are told apart by a cookie drawn at start. Torrents are registered by
//! `spawn_for` when their announces start (a hybrid under both its info-hashes) and dropped when
//! their run token is cancelled (paused, stopped, removed); private torrents (BEP 27) are never
//! registered. A magnet link's metadata fetch
//! registers its info-hash too ([`LsdNode::seek`]): announced the same way (a peer that has the
//! torrent dials us, and the session hands that connection to the fetch), with the peers heard sent
//! to the fetch. Nothing here holds a torrent's core lock beyond `add_known`; lock order:
//! `torrents` before `sent`; `interfaces` alone; `fresh` alone.
//!
//! The node can be switched off and on again while the session runs ([`LsdNode::switch`]): off,
//! it leaves the groups everywhere, sends nothing and ignores what still arrives; torrents stay
//! registered. On, it joins the groups again and every registered info-hash is due (within
//! [`MIN_GAP`] of its last announce). `on` is read and written under `interfaces` where the
//! group is joined or left, so a rescan racing a switch-off cannot leave the group joined.

mod multicast;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::known::Source;
use super::torrent::Torrent;
use btorrent_proto::lsd::{self, MAX_MESSAGE};
use btorrent_proto::types::InfoHash;
use multicast::{group_socket, Scope, Via};

/// How often a torrent is announced on the local network.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(5 * 60);
/// The least time between two announces of one torrent (BEP 14 asks for no more than one a
/// minute).
pub const MIN_GAP: Duration = Duration::from_secs(60);
/// How many times one announce is sent.
pub const SENDS: u8 = 3;
/// The time between two sends of one announce.
pub const RESEND_AFTER: Duration = Duration::from_secs(2);
/// How often the interfaces are looked at again (a network that came up, or went away).
pub const RESCAN: Duration = Duration::from_secs(15);
/// How often the node looks for announces due.
const TICK: Duration = Duration::from_millis(500);

/// Who hears the peers found for a registered info-hash.
enum Target {
    /// A torrent we run: they become its dial candidates.
    Torrent(Weak<Torrent>),
    /// A metadata fetch: they are sent to it (dropped when it is not keeping up).
    Seeker(mpsc::Sender<SocketAddr>),
}

impl Target {
    fn gone(&self) -> bool {
        match self {
            Target::Torrent(t) => t.strong_count() == 0,
            Target::Seeker(tx) => tx.is_closed(),
        }
    }
}

/// A registered info-hash.
struct Entry {
    target: Target,
    run: CancellationToken,
    /// When it is next sent.
    next: Instant,
    /// The sends left of the current announce (1..=[`SENDS`]).
    sends_left: u8,
}

impl Entry {
    /// Records a send at `now` and sets the next one: the announce's next send, or, when this was
    /// its last, the next announce's first, `every` later. True when this was an announce's first
    /// send.
    fn sent(&mut self, now: Instant, every: Duration) -> bool {
        let first = self.sends_left == SENDS;
        self.sends_left -= 1;
        if self.sends_left == 0 {
            self.sends_left = SENDS;
            self.next = now + every;
        } else {
            self.next = now + RESEND_AFTER;
        }
        first
    }
}

/// The session's local service discovery node.
pub struct LsdNode {
    /// Bound to the group's port, one socket per family the scope takes (IPv6's absent on a
    /// machine without it).
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    scope: Scope,
    /// Where messages are sent from (and the groups are joined on): looked at again every
    /// [`RESCAN`].
    interfaces: Mutex<Vec<Via>>,
    /// The port our peer listens on, named in our messages.
    port: std::sync::atomic::AtomicU16,
    cookie: String,
    torrents: Mutex<HashMap<InfoHash, Entry>>,
    /// When each info-hash was last announced (kept across a pause, for [`MIN_GAP`]).
    sent: Mutex<HashMap<InfoHash, Instant>>,
    /// Switched on (see the module doc).
    on: AtomicBool,
    /// Interfaces joined since the node started, each told of every registered info-hash at once
    /// ([`SENDS`] times), whatever [`MIN_GAP`] says: that network has heard nothing yet.
    fresh: Mutex<Vec<Fresh>>,
}

/// An interface newly joined: its sends left, and when the next is due.
struct Fresh {
    via: Via,
    sends_left: u8,
    next: Instant,
}

impl LsdNode {
    /// Binds the groups' port and joins the groups on the interfaces to use: `listen`'s address
    /// when it is a specific one (over its family), else every interface that takes multicast,
    /// over IPv4 and, when the session listens on `::`, over IPv6 too (none yet is no error: a
    /// machine whose network comes up after the session is found once it does). An error when no
    /// socket of the families wanted can be made.
    pub fn start(listen: SocketAddr) -> std::io::Result<Arc<LsdNode>> {
        let scope = match listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => Scope::Every { ipv6: false },
            IpAddr::V6(ip) if ip.is_unspecified() => Scope::Every { ipv6: true },
            IpAddr::V4(ip) => Scope::V4(ip),
            IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
                Some(v4) => Scope::V4(v4),
                None => Scope::V6(ip),
            },
        };
        let (want_v4, want_v6) = match scope {
            Scope::Every { ipv6 } => (true, ipv6),
            Scope::V4(_) => (true, false),
            Scope::V6(_) => (false, true),
        };
        let v4 = want_v4.then(|| group_socket(false)).transpose()?;
        let v6 = match want_v6.then(|| group_socket(true)).transpose() {
            Ok(s) => s,
            // Without IPv6 here, IPv4 alone when it is wanted too.
            Err(e) if v4.is_some() => {
                tracing::info!("local discovery over IPv6 off: {e}");
                None
            }
            Err(e) => return Err(e),
        };
        let node = Arc::new(LsdNode {
            v4,
            v6,
            scope,
            interfaces: Mutex::new(Vec::new()),
            port: listen.port().into(),
            cookie: format!("{:08x}", rand::random::<u32>()),
            torrents: Mutex::new(HashMap::new()),
            sent: Mutex::new(HashMap::new()),
            on: AtomicBool::new(true),
            fresh: Mutex::new(Vec::new()),
        });
        // Nothing is registered yet: the torrents' first announces go out on these.
        node.rescan();
        Ok(node)
    }

    /// The interfaces the node sends on now: IPv4 addresses, and interface names over IPv6.
    pub fn interfaces(&self) -> Vec<String> {
        self.interfaces.lock().iter().map(Via::to_string).collect()
    }

    /// Names `port` in our messages from now on, and announces every registered info-hash again
    /// as soon as [`MIN_GAP`] lets it (the peer moved to that port).
    pub fn set_port(&self, port: u16) {
        self.port.store(port, Ordering::Relaxed);
        self.all_due();
    }

    /// Whether the node is switched on.
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Switches the node off (it leaves the groups; nothing is sent or heard) or on again (it
    /// joins the groups and announces every registered info-hash as soon as [`MIN_GAP`] lets it).
    pub fn switch(&self, on: bool) {
        if on {
            if !self.on.swap(true, Ordering::Relaxed) {
                self.rescan();
                self.fresh.lock().clear();
                self.all_due();
                tracing::info!("local discovery switched on");
            }
            return;
        }
        let mut joined = self.interfaces.lock();
        if self.on.swap(false, Ordering::Relaxed) {
            for via in joined.drain(..) {
                if let Some(s) = self.socket_of(&via) {
                    via.leave(s);
                }
            }
            tracing::info!("local discovery switched off");
        }
    }

    /// The interfaces to use now (see [`LsdNode::start`]).
    fn wanted(&self) -> Vec<Via> {
        let mut out = Vec::new();
        if self.v4.is_some() {
            match self.scope {
                Scope::V4(ip) => out.push(Via::V4(ip)),
                _ => out.extend(
                    super::interfaces::ipv4()
                        .into_iter()
                        .filter(|i| i.multicast)
                        .map(|i| Via::V4(i.ip)),
                ),
            }
        }
        if self.v6.is_some() {
            for i in super::interfaces::ipv6() {
                let ours = match self.scope {
                    Scope::V6(ip) => i.ip == ip,
                    _ => i.multicast,
                };
                let via = Via::V6 {
                    index: i.index,
                    name: i.name,
                };
                if ours && !out.contains(&via) {
                    out.push(via);
                }
            }
        }
        out
    }

    /// The socket of `via`'s family (none when the node does not take that family).
    fn socket_of(&self, via: &Via) -> Option<&UdpSocket> {
        match via {
            Via::V4(_) => self.v4.as_ref(),
            Via::V6 { .. } => self.v6.as_ref(),
        }
    }

    /// Joins the groups on the interfaces to use that it is not joined on yet, and forgets those
    /// that are gone. The interfaces it joined are returned.
    fn rescan(&self) -> Vec<Via> {
        let wanted = self.wanted();
        let mut joined = self.interfaces.lock();
        if !self.is_on() {
            return Vec::new();
        }
        let mut new = Vec::new();
        joined.retain(|via| {
            let keep = wanted.contains(via);
            if !keep {
                if let Some(s) = self.socket_of(via) {
                    via.leave(s);
                }
                tracing::info!("local discovery: {via} is gone");
            }
            keep
        });
        for via in wanted {
            if joined.contains(&via) {
                continue;
            }
            match self.socket_of(&via).map_or(Ok(()), |s| via.join(s)) {
                // "In use": still joined there from before the address went away and came back.
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
                Err(e) => {
                    tracing::debug!("local discovery: cannot join the group on {via}: {e}");
                    continue;
                }
            }
            tracing::info!("local discovery: on {via}");
            joined.push(via.clone());
            new.push(via);
        }
        new
    }

    /// Every registered info-hash due again (a new network hears nothing before), within
    /// [`MIN_GAP`] of its last announce.
    fn all_due(&self) {
        let now = Instant::now();
        let mut all = self.torrents.lock();
        let sent = self.sent.lock();
        for (ih, e) in all.iter_mut() {
            let earliest = sent.get(ih).map_or(now, |&last| (last + MIN_GAP).max(now));
            if e.next > earliest {
                e.next = earliest;
                e.sends_left = SENDS;
            }
        }
    }

    /// Announces `t` from now on (at once, unless it was announced less than [`MIN_GAP`] ago),
    /// until `run` is cancelled: under each of its info-hashes (a hybrid's two swarms).
    fn register(&self, t: &Arc<Torrent>, run: CancellationToken) {
        for ih in t.meta.swarm_ids() {
            let entry = self.entry(ih, Target::Torrent(Arc::downgrade(t)), run.clone());
            self.torrents.lock().insert(ih, entry);
        }
    }

    /// Announces `ih` (a torrent whose metadata is being fetched) until `run` is cancelled or the
    /// receiver dropped, and sends it the peers heard for it. A torrent of `ih` registered later
    /// takes its place; one running already keeps it (the channel is then closed at once).
    pub fn seek(&self, ih: InfoHash, run: CancellationToken) -> mpsc::Receiver<SocketAddr> {
        let (tx, rx) = mpsc::channel(64);
        let mut all = self.torrents.lock();
        let running = all
            .get(&ih)
            .is_some_and(|e| matches!(e.target, Target::Torrent(_)) && !e.run.is_cancelled());
        if !running {
            let entry = self.entry(ih, Target::Seeker(tx), run);
            all.insert(ih, entry);
        }
        rx
    }

    /// A new entry for `ih`, due at once unless it was announced less than [`MIN_GAP`] ago.
    fn entry(&self, ih: InfoHash, target: Target, run: CancellationToken) -> Entry {
        let soon = Instant::now();
        let next = match self.sent.lock().get(&ih) {
            Some(&last) => (last + MIN_GAP).max(soon),
            None => soon,
        };
        Entry {
            target,
            run,
            next,
            sends_left: SENDS,
        }
    }

    /// Announces what is due and hears the group, until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rescan = tokio::time::interval_at(Instant::now() + RESCAN, RESCAN);
        rescan.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut buf4, mut buf6) = (vec![0u8; MAX_MESSAGE + 1], vec![0u8; MAX_MESSAGE + 1]);
        loop {
            let r = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {
                    self.announce_due().await;
                    continue;
                }
                _ = rescan.tick() => {
                    let now = Instant::now();
                    self.fresh.lock().extend(self.rescan().into_iter().map(|via| Fresh {
                        via,
                        sends_left: SENDS,
                        next: now,
                    }));
                    continue;
                }
                r = hear(&self.v4, &mut buf4) => r.map(|(n, from)| (&buf4[..n], from)),
                r = hear(&self.v6, &mut buf6) => r.map(|(n, from)| (&buf6[..n], from)),
            };
            match r {
                Ok((bytes, from)) => self.heard(bytes, from),
                Err(e) => {
                    tracing::debug!("local discovery: receive failed: {e}");
                    tokio::time::sleep(TICK).await;
                }
            }
        }
    }

    /// Sends a message for each registered torrent whose time has come (dropping those whose run
    /// ended) on every interface, and for every registered torrent on the interfaces newly joined
    /// whose send is due.
    async fn announce_due(&self) {
        let interfaces = self.interfaces.lock().clone();
        if interfaces.is_empty() {
            // Nowhere to send (or switched off): what is due stays due until an interface comes.
            return;
        }
        let now = Instant::now();
        let (due, every): (Vec<InfoHash>, Vec<InfoHash>) = {
            let mut all = self.torrents.lock();
            all.retain(|_, e| !e.run.is_cancelled() && !e.target.gone());
            let mut sent = self.sent.lock();
            let due = all
                .iter_mut()
                .filter(|(_, e)| e.next <= now)
                .map(|(ih, e)| {
                    let spread = ANNOUNCE_EVERY.mul_f64(1.0 + rand::random::<f64>() / 4.0);
                    if e.sent(now, spread) {
                        sent.insert(*ih, now);
                    }
                    *ih
                })
                .collect();
            (due, all.keys().copied().collect())
        };
        let fresh: Vec<Via> = {
            let mut fresh = self.fresh.lock();
            fresh.retain(|f| interfaces.contains(&f.via));
            let out = fresh
                .iter_mut()
                .filter(|f| f.next <= now)
                .map(|f| {
                    f.sends_left -= 1;
                    f.next = now + RESEND_AFTER;
                    f.via.clone()
                })
                .collect();
            fresh.retain(|f| f.sends_left > 0);
            out
        };
        for ih in &due {
            for via in &interfaces {
                self.send(ih, via).await;
            }
        }
        for via in &fresh {
            for ih in every.iter().filter(|ih| !due.contains(ih)) {
                self.send(ih, via).await;
            }
        }
    }

    /// Sends the message announcing `ih` to the group of `via`'s family, out of that interface.
    async fn send(&self, ih: &InfoHash, via: &Via) {
        let Some(socket) = self.socket_of(via) else {
            return;
        };
        if let Err(e) = via.send_from(socket) {
            tracing::debug!("local discovery: cannot send on {via}: {e}");
            return;
        }
        let to = via.group();
        let msg = lsd::search(to, self.port.load(Ordering::Relaxed), ih, &self.cookie);
        match socket.send_to(&msg, to).await {
            Ok(_) => {
                tracing::debug!(info_hash = %ih, from = %via, "announced on the local network")
            }
            Err(e) => tracing::debug!("local discovery: send on {via} failed: {e}"),
        }
    }

    /// A datagram from the group: its sender becomes a dial candidate of the torrents it names that
    /// we run.
    fn heard(&self, bytes: &[u8], from: SocketAddr) {
        if !self.is_on() {
            // Still delivered while another socket of the machine is in the group.
            return;
        }
        let search = match lsd::parse(bytes) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(%from, "local discovery: {e}");
                return;
            }
        };
        if search.cookie.as_deref() == Some(self.cookie.as_str()) {
            return;
        }
        // A link-local sender keeps its interface (its scope), without which it cannot be dialled.
        let peer = match from {
            SocketAddr::V6(v6) => SocketAddr::V6(std::net::SocketAddrV6::new(
                *v6.ip(),
                search.port,
                0,
                v6.scope_id(),
            )),
            SocketAddr::V4(_) => SocketAddr::new(from.ip(), search.port),
        };
        let found: Vec<(InfoHash, Arc<Torrent>)> = {
            let all = self.torrents.lock();
            let mut found = Vec::new();
            for (ih, e) in search
                .info_hashes
                .iter()
                .filter_map(|ih| Some((ih, all.get(ih)?)))
            {
                if e.run.is_cancelled() {
                    continue;
                }
                match &e.target {
                    Target::Torrent(t) => found.extend(t.upgrade().map(|t| (*ih, t))),
                    Target::Seeker(tx) => {
                        tracing::debug!(info_hash = %ih, %peer, "peer found on the local network");
                        let _ = tx.try_send(peer);
                    }
                }
            }
            found
        };
        for (ih, t) in found {
            tracing::debug!(torrent = %t.meta.info.name, %peer, "peer found on the local network");
            t.add_known_in(ih, [peer], Source::Lsd);
        }
    }
}

/// A datagram from `socket` (never, when there is none).
async fn hear(socket: &Option<UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Registers a running public torrent with the session's node, if it runs one (see the module
/// docs).
pub(crate) fn spawn_for(t: &Arc<Torrent>, run: CancellationToken) {
    if t.meta.info.private {
        return;
    }
    if let Some(node) = &t.ctx.lsd {
        node.register(t, run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announce_is_sent_three_times_two_seconds_apart_then_waits_for_the_next() {
        let start = Instant::now();
        let mut e = Entry {
            target: Target::Torrent(Weak::new()),
            run: CancellationToken::new(),
            next: start,
            sends_left: SENDS,
        };
        let (mut at, mut sends) = (Vec::new(), Vec::new());
        for _ in 0..2 * SENDS {
            at.push(e.next - start);
            sends.push(e.sent(e.next, ANNOUNCE_EVERY));
        }
        let (two, every) = (RESEND_AFTER, ANNOUNCE_EVERY);
        let four = two * 2;
        assert_eq!(
            at,
            [
                Duration::ZERO,
                two,
                four,
                four + every,
                four + every + two,
                four + every + four
            ]
        );
        assert_eq!(sends, [true, false, false, true, false, false]);
    }
}
