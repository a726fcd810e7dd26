//! Fetching a torrent's info dictionary from peers (BEP 9, `ut_metadata`), for magnet links.
//!
//! [`fetch`] takes an info-hash and three sources of peer addresses: a list (a magnet's `x.pe`), trackers
//! (announced to by info-hash with the session's tracker client, again every [`REANNOUNCE`] until
//! done; sooner, from [`EMPTY_REANNOUNCE`], while a tracker knows no peer), and any others as
//! channels ([`FetchSources::extra`]: a DHT lookup, local service discovery). It dials up
//! to [`MAX_FETCH_PEERS`] of them at once, and talks to as many peers that connect to us for the
//! info-hash (the session hands them over, `Incoming`), none the session's IP filter blocks and each with a socket
//! of the session's budget ([`crate::fd_budget`]); each speaks just enough of the protocol to ask for pieces
//! (`peer`), and the pieces come together in an `assembly::Assembly`, which hashes the whole against
//! the info-hash before anything uses it (a peer that sends a bad dictionary is dropped and the fetch
//! goes on with the others). A `metadata_size` of 0 or over 16 MiB is refused. A v1 info-hash is the
//! dictionary's SHA-1, a v2 one (BEP 52) its SHA-256 cut to 20 bytes; a v2 torrent's piece layers,
//! which the dictionary does not hold, are asked of the peers that gave it afterwards (`layers`).
//!
//! A dialed address that fails (the connection refused or closed in the handshake, no answer in
//! time, nothing to give yet) is dialed again after a wait that doubles, [`MAX_DIALS`] times in
//! all: a magnet whose only peer was busy for a moment still gets its metadata.
//!
//! Progress (how many peers answered with a size, pieces in) goes to a callback. The fetch ends with
//! the dictionary (and where the peers that offered it take connections: the torrent's first peers), when cancelled, after [`FetchConfig::timeout`], or as soon as every peer failed and no
//! source can bring more (no trackers, the channel closed), with the reason the last one failed.

pub(crate) mod assembly;
pub(crate) mod layers;
mod peer;
pub(crate) mod registry;

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::announce::{AnnounceEvent, AnnounceRequest, TrackerClient};
use crate::EngineError;
use assembly::Assembly;
use btorrent_proto::types::{InfoHash, PeerId};

/// Peers dialed at once.
pub const MAX_FETCH_PEERS: usize = 16;
/// Addresses remembered (dialed or waiting) per fetch.
pub const MAX_FETCH_ADDRS: usize = 2_000;
/// Dials of one address that may fail before it is given up: a peer that closed the handshake,
/// timed out or had nothing yet is dialed again, after [`redial_after`] (a peer that sent what no
/// honest peer sends, or cannot send metadata at all, is given up at once).
pub const MAX_DIALS: u32 = 6;

/// How long after its `failures`-th failed dial an address is dialed again: 2 s, doubled each time
/// (2 + 4 + 8 + 16 + 32 s for the five waits [`MAX_DIALS`] allows).
pub fn redial_after(failures: u32) -> Duration {
    Duration::from_secs(2u64 << failures.saturating_sub(1).min(10))
}

/// Trackers are asked again this often while the fetch goes on.
pub const REANNOUNCE: Duration = Duration::from_secs(30);

/// The first wait before asking again a tracker that knew no peer (then doubled up to
/// [`REANNOUNCE`]; never sooner than the tracker's `min interval`).
pub const EMPTY_REANNOUNCE: Duration = Duration::from_secs(2);

/// Who we are to the peers and trackers of a fetch.
#[derive(Clone)]
pub struct FetchConfig {
    pub peer_id: PeerId,
    /// Connections leave from its IP (unless unspecified); its port is the one announced.
    pub local: SocketAddr,
    pub tracker: TrackerClient,
    pub announce_key: Option<u32>,
    pub announce_ip: Option<std::net::IpAddr>,
    /// Give up after this long (`None`: only when cancelled or out of sources).
    pub timeout: Option<Duration>,
    /// Changes when the trackers are to be asked again at once (or as soon as their
    /// `min interval` allows): `torrent-reannounce` of a magnet still fetching.
    pub asked: watch::Receiver<()>,
    /// The session whose IP filter and budget of peer sockets the fetch's dials obey: a blocked
    /// address is not dialed, and each dial holds one of the budget's sockets while it lasts.
    pub(crate) session: Arc<crate::session::SessionCtx>,
}

/// Where peer addresses come from.
#[derive(Default)]
pub struct FetchSources {
    pub peers: Vec<SocketAddr>,
    pub trackers: Vec<String>,
    /// More addresses as they are found (a DHT lookup, local service discovery); the fetch ends
    /// when it has the metadata, not when these close.
    pub extra: Vec<mpsc::Receiver<SocketAddr>>,
    /// Peers that connected to us for the info-hash.
    pub(crate) incoming: Option<mpsc::Receiver<Incoming>>,
}

/// A peer that connected to us for a fetch's info-hash, its handshake read (ours not yet sent), with
/// the socket of the session's budget it holds.
pub(crate) struct Incoming {
    pub addr: SocketAddr,
    pub stream: crate::peer_stream::PeerStream,
    pub theirs: btorrent_proto::wire::handshake::Handshake,
    pub socket: tokio::sync::OwnedSemaphorePermit,
}

/// What a fetch brings.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The info dictionary's exact bytes, checked against the info-hash.
    pub info: Vec<u8>,
    /// Where the peers that offered it take connections.
    pub peers: Vec<SocketAddr>,
}

/// How a fetch is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct FetchProgress {
    /// Peers that offered the metadata (gave a size) and are connected.
    pub peers: usize,
    /// Connections being made or talking.
    pub connecting: usize,
    /// Addresses heard of so far.
    pub known: usize,
    pub pieces_have: usize,
    pub pieces_total: usize,
}

/// A metadata fetch under way in a session, as [`crate::Session::fetching`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MetadataFetch {
    /// In hex.
    pub info_hash: String,
    /// The link's `dn`, if it has one.
    pub name: Option<String>,
    /// When the fetch began, in seconds since the Unix epoch.
    pub started: u64,
    pub progress: FetchProgress,
}

impl std::fmt::Display for FetchProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.peers == 1 { "" } else { "s" };
        write!(f, "fetching metadata from {} peer{s}", self.peers)?;
        if self.pieces_total > 0 {
            write!(f, " ({}/{} pieces)", self.pieces_have, self.pieces_total)?;
        }
        if self.peers == 0 {
            write!(f, " ({} known, {} connecting)", self.known, self.connecting)?;
        }
        Ok(())
    }
}

/// What the peer tasks of one fetch share.
pub(crate) struct Shared {
    info_hash: InfoHash,
    peer_id: PeerId,
    local: SocketAddr,
    /// The session: how its connections are made (its encryption and uTP policies, its uTP socket).
    session: Arc<crate::session::SessionCtx>,
    state: Mutex<Assembly>,
    /// Bumped whenever the assembly changes, so peers waiting for work look again.
    version: watch::Sender<u64>,
    done: CancellationToken,
    /// Where the peers that offered the metadata take connections (at most [`MAX_FETCH_ADDRS`]).
    offered: Mutex<Vec<SocketAddr>>,
}

impl Shared {
    fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    fn offered(&self, listen: SocketAddr) {
        let mut all = self.offered.lock();
        if all.len() < MAX_FETCH_ADDRS && !all.contains(&listen) {
            all.push(listen);
        }
    }
}

/// Announces to `url` by info-hash until `stop`, sending the peers it returns to `tx`.
async fn announce_loop(
    cfg: FetchConfig,
    info_hash: InfoHash,
    url: String,
    tx: mpsc::Sender<SocketAddr>,
    stop: CancellationToken,
) {
    let mut asked = cfg.asked.clone();
    let mut req = AnnounceRequest {
        info_hash,
        peer_id: cfg.peer_id,
        port: cfg.local.port(),
        uploaded: 0,
        downloaded: 0,
        // Unknown before the metadata: anything but 0 (a seed).
        left: 1,
        event: Some(AnnounceEvent::Started),
        numwant: Some(50),
        key: cfg.announce_key,
        ip: cfg.announce_ip,
    };
    // The wait after an answer with no peers: doubled each time, up to [`REANNOUNCE`].
    let mut empty_wait = EMPTY_REANNOUNCE;
    loop {
        // Told the port outside as a torrent's announces are (`port_for_tracker`).
        req.port = cfg.session.port_for_tracker(&url).await;
        let listen_port = cfg.local.port();
        let asked_at = tokio::time::Instant::now();
        let mut floor = Duration::ZERO;
        let wait = tokio::select! {
            _ = stop.cancelled() => return,
            r = cfg.tracker.announce_listening(&url, &req, listen_port) => match r {
                Ok(resp) => {
                    tracing::debug!(tracker = %url, peers = resp.peers.len(), "announce for metadata");
                    // `started` once; the next announces are regular ones.
                    req.event = None;
                    let got_none = resp.peers.is_empty();
                    for p in resp.peers {
                        if tx.send(p).await.is_err() {
                            return;
                        }
                    }
                    floor = resp.min_interval.unwrap_or_default();
                    if got_none {
                        // Nobody yet (a swarm just starting): ask again soon, within what the
                        // tracker allows, backing off to the regular pace.
                        let soon = empty_wait;
                        empty_wait = (empty_wait * 2).min(REANNOUNCE);
                        resp.min_interval.map_or(soon, |m| m.max(soon))
                    } else {
                        resp.min_interval.unwrap_or(REANNOUNCE).max(REANNOUNCE)
                    }
                }
                Err(e) => {
                    tracing::info!(tracker = %crate::announce::shown_url(&url), "announce for metadata failed: {e}");
                    REANNOUNCE
                }
            },
        };
        asked.mark_unchanged();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            // Asked again: at once, or once the tracker's `min interval` has passed.
            Ok(()) = asked.changed() => tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep_until(asked_at + floor) => {}
            },
        }
    }
}

/// One channel of the addresses all of `sources` send; it closes when they all have (or the
/// receiver is dropped).
fn merged(sources: Vec<mpsc::Receiver<SocketAddr>>) -> Option<mpsc::Receiver<SocketAddr>> {
    if sources.is_empty() {
        return None;
    }
    let (tx, rx) = mpsc::channel(64);
    for mut source in sources {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let a = tokio::select! {
                    _ = tx.closed() => return,
                    a = source.recv() => a,
                };
                match a {
                    Some(a) if tx.send(a).await.is_ok() => {}
                    _ => return,
                }
            }
        });
    }
    Some(rx)
}

/// Fetches the info dictionary of `info_hash` (see the module docs).
pub async fn fetch(
    cfg: FetchConfig,
    info_hash: InfoHash,
    sources: FetchSources,
    progress: impl Fn(&FetchProgress) + Send,
    cancel: CancellationToken,
) -> crate::Result<Fetched> {
    let sh = Arc::new(Shared {
        info_hash,
        peer_id: cfg.peer_id,
        local: cfg.local,
        session: cfg.session.clone(),
        state: Mutex::new(Assembly::default()),
        version: watch::channel(0).0,
        done: cancel.child_token(),
        offered: Mutex::new(Vec::new()),
    });
    // Whether the fetch ends or is dropped half-way (Ctrl-C), the announce loops stop with it.
    let _stop_all = sh.done.clone().drop_guard();
    let (tx, mut from_trackers) = mpsc::channel::<SocketAddr>(256);
    let have_trackers = !sources.trackers.is_empty();
    for url in sources.trackers {
        tokio::spawn(announce_loop(
            cfg.clone(),
            info_hash,
            url,
            tx.clone(),
            sh.done.clone(),
        ));
    }
    drop(tx);
    let mut extra = merged(sources.extra);
    let mut incoming = sources.incoming;
    let mut seen: HashSet<SocketAddr> = HashSet::new();
    let mut queue: VecDeque<SocketAddr> = VecDeque::new();
    // Addresses whose dial failed, with their failures, and when each is dialed again.
    let mut failures: std::collections::HashMap<SocketAddr, u32> = Default::default();
    let mut redials: Vec<(tokio::time::Instant, SocketAddr)> = Vec::new();
    let add = |a: SocketAddr, seen: &mut HashSet<SocketAddr>, q: &mut VecDeque<SocketAddr>| {
        if a.port() != 0 && a != cfg.local && seen.len() < MAX_FETCH_ADDRS && seen.insert(a) {
            q.push_back(a);
        }
    };
    for a in sources.peers {
        add(a, &mut seen, &mut queue);
    }
    let mut tasks: JoinSet<(SocketAddr, anyhow::Result<()>)> = JoinSet::new();
    let mut changed = sh.version.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let deadline = cfg.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut last_error: Option<String> = None;
    let mut failed = 0usize;
    let mut shown = FetchProgress::default();
    let result = loop {
        let now = tokio::time::Instant::now();
        redials.retain(|&(at, a)| {
            if at <= now {
                queue.push_back(a);
            }
            at > now
        });
        while tasks.len() < MAX_FETCH_PEERS {
            let Some(a) = queue.pop_front() else { break };
            if cfg.session.ip_filter.read().blocks(a.ip()) {
                tracing::debug!(peer = %a, "metadata: not dialed, blocked by the IP filter");
                failed += 1;
                last_error = Some(format!("{a}: blocked by the IP filter"));
                continue;
            }
            // None left in the session's budget: the address waits for one (the next tick).
            let Ok(socket) = cfg.session.connections.try_take() else {
                queue.push_front(a);
                break;
            };
            let sh = sh.clone();
            tasks.spawn(async move {
                let _socket = socket;
                (a, peer::dial(sh, a).await)
            });
        }
        let now = {
            let st = sh.state.lock();
            let (have, total) = st.progress();
            FetchProgress {
                peers: st.ready_peers(),
                connecting: tasks.len(),
                known: seen.len(),
                pieces_have: have,
                pieces_total: total,
            }
        };
        if now != shown {
            shown = now;
            progress(&now);
        }
        if let Some(info) = sh.state.lock().done.take() {
            let peers = std::mem::take(&mut *sh.offered.lock());
            break Ok(Fetched { info, peers });
        }
        if tasks.is_empty()
            && queue.is_empty()
            && redials.is_empty()
            && from_trackers.is_closed()
            && extra.is_none()
            && !have_trackers
        {
            break Err(EngineError::MetadataNotFound(match &last_error {
                Some(e) => format!("no peer gave the metadata ({failed} tried; the last: {e})"),
                None => {
                    "no peer to fetch the metadata from (no x.pe, tracker or other source)".into()
                }
            }));
        }
        tokio::select! {
            _ = cancel.cancelled() => break Err(EngineError::Cancelled),
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                break Err(EngineError::MetadataNotFound(format!(
                    "no metadata after {} s ({} peers heard of, {failed} failed{})",
                    cfg.timeout.unwrap_or_default().as_secs(),
                    seen.len(),
                    last_error.as_deref().map(|e| format!("; the last: {e}")).unwrap_or_default()
                )));
            }
            _ = sh.done.cancelled() => {}
            Some(r) = tasks.join_next() => {
                if let Ok((a, Err(e))) = r {
                    if e.is::<peer::Hostile>() {
                        tracing::warn!(peer = %a, "metadata peer dropped: {e:#}");
                    } else {
                        tracing::debug!(peer = %a, "metadata: {e:#}");
                    }
                    sh.state.lock().peer_gone(a);
                    sh.changed();
                    failed += 1;
                    last_error = Some(format!("{a}: {e:#}"));
                    // An address we dialed (not a peer that dialed us, from a port of its own)
                    // that may do better another time.
                    let given_up = e.is::<peer::Hostile>() || e.is::<peer::Unable>();
                    if seen.contains(&a) && !given_up {
                        let n = failures.entry(a).or_default();
                        *n += 1;
                        if *n < MAX_DIALS {
                            let at = tokio::time::Instant::now() + redial_after(*n);
                            redials.push((at, a));
                        }
                    }
                }
            }
            Some(a) = from_trackers.recv() => add(a, &mut seen, &mut queue),
            r = async { extra.as_mut().expect("guarded").recv().await }, if extra.is_some() => match r {
                Some(a) => add(a, &mut seen, &mut queue),
                None => extra = None,
            },
            r = async { incoming.as_mut().expect("guarded").recv().await }, if incoming.is_some() => match r {
                // Up to as many again as are dialed at once; more are turned away.
                Some(i) if tasks.len() < 2 * MAX_FETCH_PEERS => {
                    let (sh, a) = (sh.clone(), i.addr);
                    tracing::debug!(peer = %a, "metadata: a peer connected");
                    tasks.spawn(async move { (a, peer::accept(sh, i).await) });
                }
                Some(i) => tracing::debug!(peer = %i.addr, "metadata: a peer connected, turned away (enough peers)"),
                None => incoming = None,
            },
            _ = changed.changed() => {}
            _ = tick.tick() => {}
        }
    };
    sh.done.cancel();
    tasks.abort_all();
    result
}

/// The addresses of `host:port` peers (a magnet's `x.pe`): IPs as they are, names looked up. Those
/// that do not resolve are left out with a log line.
pub async fn resolve_peers(peers: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for p in peers {
        if let Ok(a) = p.parse::<SocketAddr>() {
            out.push(a);
            continue;
        }
        match tokio::time::timeout(Duration::from_secs(10), tokio::net::lookup_host(p)).await {
            Ok(Ok(addrs)) => out.extend(addrs.take(4)),
            _ => tracing::warn!("magnet peer {p}: cannot resolve it"),
        }
    }
    out
}
