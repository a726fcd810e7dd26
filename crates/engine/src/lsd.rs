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
//! One task ([`LsdNode::run`]) does both, with one socket bound to the group's port (shared with the
//! other clients of the machine: `SO_REUSEADDR`, every socket of the group gets each message). Our own
//! messages come back and are told apart by a cookie drawn at start. Torrents are registered by
//! `spawn_for` when their announces start and dropped when their run token is cancelled (paused,
//! stopped, removed); private torrents (BEP 27) are never registered. A magnet link's metadata fetch
//! registers its info-hash too ([`LsdNode::seek`]): announced the same way (a peer that has the
//! torrent dials us, and the session hands that connection to the fetch), with the peers heard sent
//! to the fetch. Nothing here holds a torrent's core lock beyond `add_known`; lock order:
//! `torrents` before `sent`; `interfaces` alone.
//!
//! The node can be switched off and on again while the session runs ([`LsdNode::switch`]): off,
//! it leaves the group everywhere, sends nothing and ignores what still arrives; torrents stay
//! registered. On, it joins the group again and every registered info-hash is due (within
//! [`MIN_GAP`] of its last announce). `on` is read and written under `interfaces` where the
//! group is joined or left, so a rescan racing a switch-off cannot leave the group joined.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
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
use btorrent_proto::lsd::{self, GROUP_V4, MAX_MESSAGE};
use btorrent_proto::types::InfoHash;

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
    socket: UdpSocket,
    /// The one interface to use when the session listens on a specific IPv4 address.
    only: Option<Ipv4Addr>,
    /// Where messages are sent from (and the group is joined on): looked at again every
    /// [`RESCAN`].
    interfaces: Mutex<Vec<Ipv4Addr>>,
    /// The port our peer listens on, named in our messages.
    port: std::sync::atomic::AtomicU16,
    cookie: String,
    torrents: Mutex<HashMap<InfoHash, Entry>>,
    /// When each info-hash was last announced (kept across a pause, for [`MIN_GAP`]).
    sent: Mutex<HashMap<InfoHash, Instant>>,
    /// Switched on (see the module doc).
    on: AtomicBool,
}

impl LsdNode {
    /// Binds the group's port and joins the group on the interfaces to use: `listen`'s address
    /// when it is a specific IPv4 one, else every interface that takes multicast (none yet is no
    /// error: a machine whose network comes up after the session is found once it does). An error
    /// when the session listens on a specific IPv6 address, or the socket cannot be made.
    pub fn start(listen: SocketAddr) -> std::io::Result<Arc<LsdNode>> {
        use socket2::{Domain, Protocol, Socket, Type};
        let only = match listen.ip() {
            IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
            IpAddr::V6(ip) if !ip.is_unspecified() => {
                return Err(std::io::Error::other(
                    "the session listens on an IPv6 address (local discovery is IPv4 only)",
                ))
            }
            _ => None,
        };
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, GROUP_V4.port())).into())?;
        s.set_multicast_ttl_v4(1)?;
        s.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(s.into())?;
        let node = Arc::new(LsdNode {
            socket,
            only,
            interfaces: Mutex::new(Vec::new()),
            port: listen.port().into(),
            cookie: format!("{:08x}", rand::random::<u32>()),
            torrents: Mutex::new(HashMap::new()),
            sent: Mutex::new(HashMap::new()),
            on: AtomicBool::new(true),
        });
        node.rescan();
        Ok(node)
    }

    /// The interfaces the node sends on now.
    pub fn interfaces(&self) -> Vec<Ipv4Addr> {
        self.interfaces.lock().clone()
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

    /// Switches the node off (it leaves the group; nothing is sent or heard) or on again (it joins
    /// the group and announces every registered info-hash as soon as [`MIN_GAP`] lets it).
    pub fn switch(&self, on: bool) {
        if on {
            if !self.on.swap(true, Ordering::Relaxed) {
                self.rescan();
                self.all_due();
                tracing::info!("local discovery switched on");
            }
            return;
        }
        let sock = socket2::SockRef::from(&self.socket);
        let mut joined = self.interfaces.lock();
        if self.on.swap(false, Ordering::Relaxed) {
            for ip in joined.drain(..) {
                let _ = sock.leave_multicast_v4(GROUP_V4.ip(), &ip);
            }
            tracing::info!("local discovery switched off");
        }
    }

    /// Joins the group on the interfaces to use that it is not joined on yet, and forgets those
    /// that are gone. True when it joined one.
    fn rescan(&self) -> bool {
        let wanted: Vec<Ipv4Addr> = match self.only {
            Some(ip) => vec![ip],
            None => super::interfaces::ipv4()
                .into_iter()
                .filter(|i| i.multicast)
                .map(|i| i.ip)
                .collect(),
        };
        let sock = socket2::SockRef::from(&self.socket);
        let mut joined = self.interfaces.lock();
        if !self.is_on() {
            return false;
        }
        let mut new = false;
        joined.retain(|ip| {
            let keep = wanted.contains(ip);
            if !keep {
                // The address is gone (with its interface, the kernel has left the group already).
                let _ = sock.leave_multicast_v4(GROUP_V4.ip(), ip);
                tracing::info!("local discovery: {ip} is gone");
            }
            keep
        });
        for ip in wanted {
            if joined.contains(&ip) {
                continue;
            }
            match sock.join_multicast_v4(GROUP_V4.ip(), &ip) {
                // "In use": still joined there from before the address went away and came back.
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
                Err(e) => {
                    tracing::debug!("local discovery: cannot join the group on {ip}: {e}");
                    continue;
                }
            }
            tracing::info!("local discovery: on {ip}");
            joined.push(ip);
            new = true;
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
    /// until `run` is cancelled.
    fn register(&self, t: &Arc<Torrent>, run: CancellationToken) {
        let ih = t.info_hash();
        let entry = self.entry(ih, Target::Torrent(Arc::downgrade(t)), run);
        self.torrents.lock().insert(ih, entry);
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
        let mut buf = vec![0u8; MAX_MESSAGE + 1];
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => self.announce_due().await,
                _ = rescan.tick() => if self.rescan() {
                    self.all_due();
                },
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.heard(&buf[..n], from),
                    Err(e) => {
                        tracing::debug!("local discovery: receive failed: {e}");
                        tokio::time::sleep(TICK).await;
                    }
                },
            }
        }
    }

    /// Sends a message for each registered torrent whose time has come (dropping those whose run
    /// ended).
    async fn announce_due(&self) {
        let interfaces = self.interfaces();
        if interfaces.is_empty() {
            // Nowhere to send (or switched off): what is due stays due until an interface comes.
            return;
        }
        let now = Instant::now();
        let due: Vec<InfoHash> = {
            let mut all = self.torrents.lock();
            all.retain(|_, e| !e.run.is_cancelled() && !e.target.gone());
            let mut sent = self.sent.lock();
            all.iter_mut()
                .filter(|(_, e)| e.next <= now)
                .map(|(ih, e)| {
                    let spread = ANNOUNCE_EVERY.mul_f64(1.0 + rand::random::<f64>() / 4.0);
                    if e.sent(now, spread) {
                        sent.insert(*ih, now);
                    }
                    *ih
                })
                .collect()
        };
        let to = SocketAddr::V4(GROUP_V4);
        for ih in due {
            let msg = lsd::search(self.port.load(Ordering::Relaxed), &ih, &self.cookie);
            for ip in &interfaces {
                let sock = socket2::SockRef::from(&self.socket);
                if let Err(e) = sock.set_multicast_if_v4(ip) {
                    tracing::debug!("local discovery: cannot send on {ip}: {e}");
                    continue;
                }
                match self.socket.send_to(&msg, to).await {
                    Ok(_) => {
                        tracing::debug!(info_hash = %ih, from = %ip, "announced on the local network")
                    }
                    Err(e) => tracing::debug!("local discovery: send on {ip} failed: {e}"),
                }
            }
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
        let peer = SocketAddr::new(from.ip(), search.port);
        let found: Vec<Arc<Torrent>> = {
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
                    Target::Torrent(t) => found.extend(t.upgrade()),
                    Target::Seeker(tx) => {
                        tracing::debug!(info_hash = %ih, %peer, "peer found on the local network");
                        let _ = tx.try_send(peer);
                    }
                }
            }
            found
        };
        for t in found {
            tracing::debug!(torrent = %t.meta.info.name, %peer, "peer found on the local network");
            t.add_known([peer], Source::Lsd);
        }
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
