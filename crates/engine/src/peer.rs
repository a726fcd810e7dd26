//! One peer connection's life: dialing (from our listen IP), registration with the torrent (self,
//! banned, duplicate, per-address and too-many checks), the hand-over to [`super::conn`], the clean-up
//! when it ends, and banning an address that keeps sending bad pieces (by IP: strikes are counted per
//! address and outlive connections, so a liar that comes back from another port with another peer id
//! is refused).
//!
//! Slots cannot be squatted: one IP address holds at most `max_peers_per_ip` connections of a
//! torrent, and when a torrent is full a peer that has held its slot for `idle_peer_grace` while
//! neither side wanted anything of the other makes room for a newcomer (`evict_idle`). Otherwise a
//! newcomer that ranks higher than the lowest ranked peer by canonical peer priority (BEP 40,
//! [`crate::peer_priority`]) takes that one's slot (`replace_lower_ranked`): the rank is a function
//! of the two addresses both ends compute alike, which a squatter cannot raise without holding
//! addresses near ours, and a peer the user named is never replaced.
//!
//! `PeerShared` is the part of a connection other tasks touch: the choker sets `am_choking`, other
//! peer tasks queue endgame cancels, the torrent closes it. They wake the connection's reader task
//! through `PeerShared::notify`.
//!
//! Errors here are `anyhow` and stay inside the engine: they end the connection and are logged;
//! nothing public returns them (see [`crate::error`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::net::{TcpSocket, TcpStream};

use super::peer_stream::{open, PeerStream};
use super::Encryption;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::picker::PeerKey;
use super::torrent::Torrent;
use super::torrent_task::backoff;
use super::Event;
use btorrent_proto::types::PeerId;
use btorrent_proto::wire::handshake::Handshake;
use btorrent_proto::wire::{Bitfield, BlockRef};

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TCP connect may take. Short: among thousands of addresses that never answer (a junk
/// tracker reply), each try must free its place quickly for the next.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Bad pieces (each wholly from one address) before that address is banned.
pub const BAN_STRIKES: u32 = 2;
/// Peers that left and are remembered for `strike`.
pub const DEPARTED: usize = 64;

#[derive(Default)]
pub(crate) struct Cmds {
    pub cancels: Vec<BlockRef>,
    pub close: Option<String>,
    /// Pieces we withdrew (bad on disk): requests for them are dropped (see `disk_check`).
    pub withdrawn: Vec<u32>,
    /// `ut_holepunch` messages to send it (see [`super::holepunch`]).
    pub holepunch: Vec<btorrent_proto::wire::ut_holepunch::HolepunchMsg>,
}

/// The part of a connection other tasks may touch.
pub(crate) struct PeerShared {
    pub key: PeerKey,
    pub addr: SocketAddr,
    pub peer_id: PeerId,
    pub connected_at: Instant,
    /// We dialed it (rather than it dialing us).
    pub outgoing: bool,
    /// The stream is RC4-encrypted (MSE, see [`super::peer_stream`]).
    pub encrypted: bool,
    /// The connection is uTP (see [`super::transport`]).
    pub utp: bool,
    /// Where the address we dialed came from (`Incoming` when it dialed us).
    pub source: super::known::Source,
    pub client: Mutex<Option<String>>,
    /// The address it listens on, when it told us (BEP 10 `p`).
    pub listen: Mutex<Option<SocketAddr>>,
    pub downloaded: AtomicU64,
    pub uploaded: AtomicU64,
    pub(crate) peer_interested: AtomicBool,
    /// It has pieces we lack (we told it `interested`).
    pub(crate) am_interested: AtomicBool,
    pub(crate) am_choking: AtomicBool,
    /// It chokes us (its last word was `choke`, or it has not unchoked us yet).
    pub(crate) peer_choking: AtomicBool,
    /// The choker gave it the optimistic slot.
    pub(crate) optimistic: AtomicBool,
    pub(crate) seed: AtomicBool,
    /// It wants nothing more (BEP 21 `upload_only`): a seed or a partial seed.
    pub(crate) upload_only: AtomicBool,
    /// It offered `ut_holepunch` (BEP 55) in its extension handshake.
    pub(crate) holepunch: AtomicBool,
    /// The pieces it has (the reader's count of its bitfield) and our requests waiting on it: figures
    /// for [`super::PeerInfo`], kept by the reader.
    pub(crate) pieces: AtomicU32,
    pub(crate) requests: AtomicU32,
    pub(crate) down_rate: AtomicU64,
    pub(crate) up_rate: AtomicU64,
    pub(crate) cmds: Mutex<Cmds>,
    pub(crate) notify: Notify,
}

impl PeerShared {
    pub fn peer_interested(&self) -> bool {
        self.peer_interested.load(Ordering::Relaxed)
    }
    pub fn am_choking(&self) -> bool {
        self.am_choking.load(Ordering::Relaxed)
    }
    pub fn is_seed(&self) -> bool {
        self.seed.load(Ordering::Relaxed)
    }
    pub fn down_rate(&self) -> u64 {
        self.down_rate.load(Ordering::Relaxed)
    }
    pub fn up_rate(&self) -> u64 {
        self.up_rate.load(Ordering::Relaxed)
    }
    pub fn pieces(&self) -> u32 {
        self.pieces.load(Ordering::Relaxed)
    }

    /// The choker's decision; the reader sends `choke`/`unchoke` if it changed.
    pub fn set_choking(&self, choke: bool) {
        if self.am_choking.swap(choke, Ordering::Relaxed) != choke {
            self.notify.notify_one();
        }
    }

    pub fn close(&self, reason: impl Into<String>) {
        self.cmds.lock().close.get_or_insert_with(|| reason.into());
        self.notify.notify_one();
    }

    pub fn cancel(&self, b: BlockRef) {
        self.cmds.lock().cancels.push(b);
        self.notify.notify_one();
    }
}

/// Connects to `addr` (from our listen IP when one is set) and runs the connection.
/// Dials `addr` and serves the connection to its end; `_socket` is its permit of the session's
/// budget of peer sockets, held as long as the socket is open.
pub(crate) async fn dial(
    t: Arc<Torrent>,
    addr: SocketAddr,
    run: CancellationToken,
    _socket: tokio::sync::OwnedSemaphorePermit,
) {
    let hs = tokio::select! {
        _ = run.cancelled() => Err(anyhow::anyhow!("stopped")),
        r = connect(&t, addr) => r,
    };
    match hs {
        Ok((stream, theirs)) => serve(t, stream, theirs, addr, Some(addr), run).await,
        Err(e) => {
            tracing::debug!(peer = %addr, "dial failed: {e}");
            t.core.lock().known.dial_failed(addr, backoff);
            super::holepunch::after_failed_dial(&t, addr, &run);
            // Its place in the dial list is free: the next address is dialed at once.
            t.wake.notify_one();
        }
    }
}

/// Dials `addr` and handshakes, the encrypted handshake first if the address is known to want it,
/// naming the swarm it was heard of in; what worked is remembered for the next dial.
async fn connect(t: &Torrent, addr: SocketAddr) -> anyhow::Result<(PeerStream, Handshake)> {
    let (encrypt_first, learned, second_swarm) = t
        .core
        .lock()
        .known
        .get_mut(&addr)
        .map_or((false, None, false), |k| {
            (k.encrypt_first, k.over, k.second_swarm)
        });
    let swarm = match t.meta.second_info_hash() {
        Some(ih) if second_swarm => ih,
        _ => t.meta.info_hash,
    };
    let ours = t.ctx.handshake(&t.meta, swarm);
    let dial = t.ctx.dial(encrypt_first, learned);
    let r = open(&dial, addr, &ours).await;
    if let Some(k) = t.core.lock().known.get_mut(&addr) {
        if let (Ok(o), Encryption::Allow) = (&r, dial.encryption) {
            k.encrypt_first = o.encrypted_handshake;
        }
        if let Some(next) = dial.learn(r.is_ok()) {
            k.over = Some(next);
        }
    }
    let o = r?;
    Ok((o.stream, o.theirs))
}

/// Opens a TCP connection to `addr`, bound to `local`'s IP unless it is unspecified.
pub(crate) async fn connect_from(local: SocketAddr, addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if !local.ip().is_unspecified() && local.is_ipv4() == addr.is_ipv4() {
        sock.bind(SocketAddr::new(local.ip(), 0))?;
    }
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, sock.connect(addr))
        .await
        .map_err(|_| anyhow::anyhow!("connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Registers a handshaken connection with its torrent and runs it to the end.
/// `known` is the address to account the connection to in the dial list (outgoing connections).
pub(crate) async fn serve(
    t: Arc<Torrent>,
    stream: PeerStream,
    hs: Handshake,
    addr: SocketAddr,
    known: Option<SocketAddr>,
    run: CancellationToken,
) {
    let registered = register(&t, &hs, addr, known, stream.encrypted(), stream.utp());
    let (sh, have, cursor, super_seed) = match registered {
        Ok(r) => {
            let transport = if stream.utp() { "uTP" } else { "TCP" };
            let way = if known.is_some() {
                "dialed"
            } else {
                "incoming"
            };
            tracing::debug!(peer = %addr, "connected ({way}, {transport})");
            r
        }
        Err(why) => {
            tracing::debug!(peer = %addr, "refused: {why}");
            let mut c = t.core.lock();
            if let Some(k) = known.and_then(|a| c.known.get_mut(&a)) {
                k.connecting = false;
                k.next_try = Instant::now() + Duration::from_secs(60);
            }
            return;
        }
    };
    let mut conn = super::conn::Conn::new(t.clone(), sh.clone(), hs, have, cursor, super_seed);
    let result = conn.run(stream, run.child_token()).await;
    match &result {
        Ok(()) => tracing::debug!(peer = %addr, "closed"),
        Err(e) => tracing::debug!(peer = %addr, "closed: {e}"),
    }
    // Leave: give back every outstanding request, forget the peer's pieces.
    let mut c = t.core.lock();
    for (b, _) in conn.requests.drain(..) {
        c.picker.release(sh.key, b);
    }
    c.picker.remove_availability(&conn.has);
    c.peers.remove(&sh.key);
    if c.departed.len() >= DEPARTED {
        c.departed.pop_front();
    }
    c.departed.push_back((sh.key, sh.addr));
    let lasted = sh.connected_at.elapsed() > Duration::from_secs(30);
    let offered_nothing = (conn.peer_upload_only && !c.picker.interesting(&conn.has))
        .then(|| c.picker.wants_generation());
    let mut addrs: Vec<SocketAddr> = known
        .iter()
        .chain(conn.listen_addr.iter())
        .copied()
        .collect();
    addrs.dedup();
    // A connection that replaced this one (both sides dialed) keeps the addresses marked connected.
    if c.peers.values().any(|p| p.peer_id == sh.peer_id) {
        addrs.clear();
    }
    for a in &addrs {
        if let Some(k) = c.known.get_mut(a) {
            k.connected = false;
            k.connecting = false;
            k.answered = true;
            // Not dialed while we want nothing more either, nor while we want no more than we did
            // if it had nothing of that (`KnownPeer::of_use`).
            k.wants_nothing = conn.has.is_full() || conn.peer_upload_only;
            k.offered_nothing = offered_nothing;
            k.failures = if lasted || conn.got_piece {
                0
            } else {
                k.failures + 1
            };
            k.next_try = Instant::now() + backoff(k.failures);
        }
    }
    c.choke_soon = true;
    drop(c);
    t.wake.notify_one();
}

/// Two connections with one peer (the same peer id), the older registered, the newer handshaken:
/// which to keep. Both sides may dial each other at once, and each must keep the same connection,
/// or each drops the one the other kept and neither is left (and both dial again, and again).
///
/// The rule is libtorrent's (`peer_list::new_connection`), so that we agree with it and with every
/// client built on it: the side with the lower listen port keeps the connection it opened. Each end
/// compares the same two ports: its own (where the other's connection came in) and the other's
/// (where its own connection went). Where the ports are equal libtorrent picks at random; we keep
/// the connection opened by the side with the lower peer id, which agrees at least between two of us.
/// Two connections the same way round (a peer dialing in twice) keep the older.
struct Duplicate {
    new_outgoing: bool,
    old_outgoing: bool,
    our_port: u16,
    their_port: u16,
    our_id: PeerId,
    their_id: PeerId,
}

impl Duplicate {
    fn keep_new(&self) -> bool {
        if self.new_outgoing == self.old_outgoing {
            return false;
        }
        let we_open = match self.our_port.cmp(&self.their_port) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => self.our_id < self.their_id,
        };
        // The kept connection is the one we opened exactly when we are the side that keeps its own.
        self.new_outgoing == we_open
    }
}

fn register(
    t: &Torrent,
    hs: &Handshake,
    addr: SocketAddr,
    known: Option<SocketAddr>,
    encrypted: bool,
    utp: bool,
) -> Result<(Arc<PeerShared>, Bitfield, usize, bool), &'static str> {
    let mut ranker = t.ctx.ranker();
    let mut c = t.core.lock();
    if hs.peer_id == t.ctx.peer_id {
        if let Some(a) = known {
            c.known.remove(&a);
            c.own_addrs.insert(a);
        }
        return Err("connected to ourselves");
    }
    if c.lifecycle.is_paused() || t.life.is_cancelled() {
        return Err("torrent is paused");
    }
    if !c.lifecycle.transfers() {
        return Err("torrent is not ready (checking its data, or failed)");
    }
    if c.banned_ids.contains(&hs.peer_id) || c.banned_ips.contains(&addr.ip()) {
        return Err("banned");
    }
    if t.ctx.ip_filter.read().blocks(addr.ip()) {
        return Err("blocked by the IP filter");
    }
    let outgoing = known.is_some();
    if let Some(old) = c.peers.values().find(|p| p.peer_id == hs.peer_id) {
        let pair = Duplicate {
            new_outgoing: outgoing,
            old_outgoing: old.outgoing,
            our_port: t.ctx.listen_addr().port(),
            // The port of the connection we opened: the one the peer listens on.
            their_port: if outgoing {
                addr.port()
            } else {
                old.addr.port()
            },
            our_id: t.ctx.peer_id,
            their_id: hs.peer_id,
        };
        if !pair.keep_new() {
            return Err("already connected to this peer");
        }
        old.close("replaced by the connection both ends keep of two between them");
    }
    let same_ip = c
        .peers
        .values()
        .filter(|p| p.addr.ip() == addr.ip())
        .count();
    if same_ip >= t.ctx.cfg.max_peers_per_ip {
        return Err("too many connections from this address");
    }
    if c.peers.len() >= t.limits.max_peers(&t.ctx)
        && !evict_idle(&mut c.peers, t.ctx.cfg.idle_peer_grace)
        && !replace_lower_ranked(&mut c.peers, addr, &mut ranker)
    {
        return Err("too many peers");
    }
    let source = known
        .and_then(|a| c.known.get_mut(&a))
        .map_or(super::known::Source::Incoming, |k| k.source);
    let key = c.next_key;
    c.next_key += 1;
    let sh = Arc::new(PeerShared {
        key,
        addr,
        peer_id: hs.peer_id,
        connected_at: Instant::now(),
        outgoing,
        encrypted,
        utp,
        source,
        client: Mutex::new(None),
        listen: Mutex::new(None),
        downloaded: AtomicU64::new(0),
        uploaded: AtomicU64::new(0),
        peer_interested: AtomicBool::new(false),
        am_interested: AtomicBool::new(false),
        am_choking: AtomicBool::new(true),
        peer_choking: AtomicBool::new(true),
        optimistic: AtomicBool::new(false),
        seed: AtomicBool::new(false),
        upload_only: AtomicBool::new(false),
        holepunch: AtomicBool::new(false),
        pieces: AtomicU32::new(0),
        requests: AtomicU32::new(0),
        down_rate: AtomicU64::new(0),
        up_rate: AtomicU64::new(0),
        cmds: Mutex::new(Cmds::default()),
        notify: Notify::new(),
    });
    c.peers.insert(key, sh.clone());
    if let Some(k) = known.and_then(|a| c.known.get_mut(&a)) {
        k.connecting = false;
        k.connected = true;
        k.answered = true;
    }
    let super_seed = c.superseed.active(c.picker.is_complete());
    Ok((sh, c.picker.have().clone(), c.have_log.len(), super_seed))
}

/// Makes room for `newcomer` in a full torrent when it ranks higher (canonical peer priority,
/// BEP 40) than the lowest ranked peer connected: that one is closed and taken out of `peers` at
/// once. Both ends rank a pair alike, so the swarm's full members agree on whom to keep and settle
/// instead of replacing each other in turn. A peer the user named is never replaced. False when
/// the newcomer ranks lowest.
pub(crate) fn replace_lower_ranked(
    peers: &mut std::collections::HashMap<PeerKey, Arc<PeerShared>>,
    newcomer: SocketAddr,
    ranker: &mut crate::peer_priority::Ranker<'_>,
) -> bool {
    let ours = ranker.rank(newcomer);
    let Some((rank, key)) = peers
        .values()
        .filter(|p| p.source != super::known::Source::User)
        .map(|p| (ranker.rank(p.addr), p.key))
        .min()
    else {
        return false;
    };
    if rank >= ours {
        return false;
    }
    if let Some(p) = peers.remove(&key) {
        tracing::debug!(peer = %p.addr, newcomer = %newcomer, "replaced by a peer of higher priority (BEP 40)");
        p.close(
            "the torrent is full and a peer of higher canonical priority (BEP 40) takes its slot",
        );
    }
    true
}

/// Whether a peer only holds a slot: connected for at least `grace`, it wants none of our pieces and
/// has none we want.
fn idle(p: &PeerShared, grace: Duration) -> bool {
    p.connected_at.elapsed() >= grace
        && !p.peer_interested.load(Ordering::Relaxed)
        && !p.am_interested.load(Ordering::Relaxed)
}

/// Makes room for a newcomer: closes the longest-connected [`idle`] peer and takes it out of `peers`
/// at once (its task finishes the clean-up). False if every peer is of use.
pub(crate) fn evict_idle(
    peers: &mut std::collections::HashMap<PeerKey, Arc<PeerShared>>,
    grace: Duration,
) -> bool {
    let Some(key) = peers
        .values()
        .filter(|p| idle(p, grace))
        .min_by_key(|p| p.connected_at)
        .map(|p| p.key)
    else {
        return false;
    };
    if let Some(p) = peers.remove(&key) {
        tracing::debug!(peer = %p.addr, "idle: its slot goes to a newcomer");
        p.close("neither side wants anything; the slot goes to a newcomer");
    }
    true
}

/// Counts a bad piece against the address of `key` (connected, or among the last [`DEPARTED`] to
/// leave) and bans the address after [`BAN_STRIKES`]: every connection from it is closed and refused
/// from then on, whatever port or peer id it comes with.
pub(crate) fn strike(t: &Torrent, key: PeerKey) {
    let mut c = t.core.lock();
    let peer = c.peers.get(&key).cloned();
    let Some(addr) = peer
        .as_ref()
        .map(|p| p.addr)
        .or_else(|| c.departed.iter().find(|(k, _)| *k == key).map(|(_, a)| *a))
    else {
        return;
    };
    let ip = addr.ip();
    let strikes = {
        let n = c.strikes.entry(ip).or_insert(0);
        *n += 1;
        *n
    };
    tracing::warn!(peer = %addr, strikes, "sent a piece that failed its hash check");
    if strikes < BAN_STRIKES || !c.banned_ips.insert(ip) {
        return;
    }
    if let Some(p) = &peer {
        c.banned_ids.insert(p.peer_id);
    }
    c.known.remove_ip(ip);
    let from_there: Vec<Arc<PeerShared>> = c
        .peers
        .values()
        .filter(|p| p.addr.ip() == ip)
        .cloned()
        .collect();
    drop(c);
    let reason = format!("its address sent {strikes} pieces that failed the hash check");
    for p in from_there {
        p.close(reason.clone());
    }
    t.emit(Event::PeerBanned {
        info_hash: t.info_hash(),
        name: t.meta.info.name.clone(),
        addr,
        reason,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(new_outgoing: bool, our_port: u16, their_port: u16, our_id: u8) -> Duplicate {
        let id = |b: u8| PeerId([b; 20]);
        Duplicate {
            new_outgoing,
            old_outgoing: !new_outgoing,
            our_port,
            their_port,
            our_id: id(our_id),
            their_id: id(5),
        }
    }

    #[test]
    fn two_ends_of_a_crossed_dial_keep_the_same_connection() {
        // Ends X (port 6881, id 1) and Y (port 7000, id 9) dial each other: X's connection
        // is outgoing at X and incoming at Y. Whichever registered first, both keep X's, the lower
        // port's; and with the ports swapped, both keep Y's.
        for (x_port, y_port, kept_is_xs) in [(6881, 7000, true), (7000, 6881, false)] {
            for xs_first in [true, false] {
                // At X the new connection is X's own when Y's came first.
                let x = Duplicate {
                    new_outgoing: !xs_first,
                    old_outgoing: xs_first,
                    our_port: x_port,
                    their_port: y_port,
                    our_id: PeerId([1; 20]),
                    their_id: PeerId([9; 20]),
                };
                let y = Duplicate {
                    new_outgoing: xs_first,
                    old_outgoing: !xs_first,
                    our_port: y_port,
                    their_port: x_port,
                    our_id: PeerId([9; 20]),
                    their_id: PeerId([1; 20]),
                };
                // At both ends X's connection is the old one exactly when it came first.
                let x_keeps_xs = x.keep_new() != xs_first;
                let y_keeps_xs = y.keep_new() != xs_first;
                assert_eq!(x_keeps_xs, kept_is_xs, "{x_port} {y_port} {xs_first}");
                assert_eq!(y_keeps_xs, kept_is_xs, "{x_port} {y_port} {xs_first}");
            }
        }
    }

    #[test]
    fn the_lower_port_keeps_its_dial_whatever_the_peer_ids() {
        // Ours is lower: keep a new outgoing, refuse a new incoming, for either order of ids.
        for our_id in [1, 9] {
            assert!(pair(true, 6881, 6882, our_id).keep_new());
            assert!(!pair(false, 6881, 6882, our_id).keep_new());
            assert!(!pair(true, 6882, 6881, our_id).keep_new());
            assert!(pair(false, 6882, 6881, our_id).keep_new());
        }
    }

    #[test]
    fn equal_ports_fall_back_to_the_lower_peer_id_and_same_way_round_keeps_the_older() {
        assert!(pair(true, 6881, 6881, 1).keep_new());
        assert!(!pair(false, 6881, 6881, 1).keep_new());
        assert!(!pair(true, 6881, 6881, 9).keep_new());
        assert!(pair(false, 6881, 6881, 9).keep_new());
        for outgoing in [true, false] {
            let mut p = pair(outgoing, 6881, 7000, 1);
            p.old_outgoing = outgoing;
            assert!(!p.keep_new());
        }
    }
}
