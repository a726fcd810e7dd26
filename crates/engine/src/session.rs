//! The session: the listener, the set of torrents, the event sink.
//!
//! Incoming connections: the listener task (TCP) and the uTP task (on the UDP port of the same
//! number, [`super::transport`]) accept, and a short task per connection reads the handshake, plain or encrypted ([`super::peer_stream`], within a timeout), finds the torrent by info-hash, answers with our handshake and hands the
//! socket to that torrent. Unknown info-hashes and torrents that do not transfer (paused, checking,
//! failed) are refused by closing.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::peer::HANDSHAKE_TIMEOUT;
use super::torrent::TorrentHandle;
use super::transport::RawStream;
use super::{AddOptions, EngineError, Event, Result, SessionConfig};
use btorrent_proto::magnet::Magnet;
use btorrent_proto::metainfo::Metainfo;
use btorrent_proto::types::{InfoHash, PeerId};
use btorrent_proto::wire::handshake::{write_handshake, Handshake};

/// What every torrent of a session shares.
pub(crate) struct SessionCtx {
    pub cfg: SessionConfig,
    pub peer_id: PeerId,
    /// Where peers reach us: the TCP listener and the uTP socket ([`super::listen`]).
    pub listening: super::listen::Listening,
    pub events: super::EventSink,
    pub shutdown: CancellationToken,
    pub upload_limit: Option<super::bandwidth::SharedLimiter>,
    pub download_limit: Option<super::bandwidth::SharedLimiter>,
    /// The bandwidth groups ([`super::groups`]).
    pub groups: super::groups::Groups,
    /// The trackers public torrents announce to besides their own, in tiers
    /// ([`Session::set_default_trackers`]); read under a torrent's core lock, never held across
    /// one.
    pub default_trackers: RwLock<Vec<Vec<String>>>,
    pub tracker: crate::announce::TrackerClient,
    /// Sent as `key` in every announce of this session.
    pub announce_key: u32,
    /// The session's DHT node, when `cfg.dht` asks for one.
    pub dht: Option<Arc<super::dht::DhtNode>>,
    /// The session's local service discovery node, when `cfg.lsd` asks for one and it could start.
    pub lsd: Option<Arc<super::lsd::LsdNode>>,
    /// The addresses peers report seeing us at ([`super::seen_as`]).
    pub seen_as: super::seen_as::SeenAs,
    /// The session's port forwarding, unless it listens on loopback ([`super::portmap`]).
    pub portmap: Option<Arc<super::portmap::PortMapper>>,
    /// The task of `portmap`, awaited at shutdown (it deletes the mappings).
    portmap_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Other ports of this machine forwarded with the peer port ([`super::SessionConfig::forward_also`]).
    forward_also: Vec<u16>,
    /// The disk writer threads every torrent shares.
    pub writers: super::verify::Writers,
    /// The budget of every torrent's hot piece copies (see [`super::hot`]).
    pub hot_budget: Arc<super::hot::HotBudget>,
    /// Data checks hashing at once (each uses every core already), and resume files being saved at
    /// once (each ends with an fsync): 1,000 torrents starting or stopping together do not take
    /// hundreds of blocking threads.
    pub checks: tokio::sync::Semaphore,
    pub saves: tokio::sync::Semaphore,
    /// When the next announce of the session may start (see [`SessionCtx::announce_turn`]).
    announce_next: Mutex<tokio::time::Instant>,
    /// The open files of every torrent, within `cfg.max_open_files`.
    pub files: Arc<super::storage::FileCache>,
    /// The addresses no peer connection is made to or taken from ([`super::ip_filter`]). Locked
    /// alone, or inside a torrent's core lock (a peer registering), never around one.
    pub ip_filter: parking_lot::RwLock<Arc<super::ip_filter::IpFilter>>,
    /// One permit per open peer socket, within the session's budget ([`super::fd_budget`]).
    pub connections: super::fd_budget::SocketBudget,
    /// Most peers per torrent in force (`cfg.max_peers_per_torrent` at the start;
    /// [`Session::set_max_peers_per_torrent`]).
    max_peers_per_torrent: std::sync::atomic::AtomicUsize,
    /// Peer exchange (BEP 11) in force (`cfg.pex` at the start; [`Session::set_pex`]).
    pex: std::sync::atomic::AtomicBool,
    /// When the session started: the phase of its torrents' once-a-second timers.
    epoch: tokio::time::Instant,
    /// The metadata fetches under way, and the peers of recent ones ([`crate::metadata::registry`]).
    fetches: crate::metadata::registry::Registry,
    /// The encryption policy in force (`cfg.encryption` at the start; [`Session::set_encryption`]).
    encryption: Mutex<super::Encryption>,
    /// The uTP policy in force (`cfg.utp` at the start; [`Session::set_utp`]).
    utp: Mutex<super::Utp>,
    /// Partial naming in force (`cfg.rename_partial_files` at the start;
    /// [`Session::set_rename_partial_files`]).
    rename_partial_files: std::sync::atomic::AtomicBool,
}

/// How long a shutdown leaves the uTP socket open after its connections were dropped.
const UTP_LINGER: Duration = Duration::from_millis(200);

/// The spacing of `calls` `stopped` announces of a shutdown within `grace`: the session's
/// `announce_spacing`, unless that would take more than half the grace, in which case they spread
/// over that half (the other half is left for the last one to be answered): 1,000 torrents leaving
/// reach their trackers over two seconds, not in one burst, and a shutdown still ends within its
/// grace.
pub(crate) fn stop_spacing(announce_spacing: Duration, grace: Duration, calls: usize) -> Duration {
    let calls = u32::try_from(calls.max(1)).unwrap_or(u32::MAX);
    announce_spacing.min(grace / 2 / calls)
}

/// Has the torrents announce on the DHT again when the port seen from outside changes (the
/// router forwards the peer port from another number, or stops): their next announces are far
/// off. Ends when the session shuts down.
async fn tell_dht_the_public_port(
    ctx: std::sync::Weak<SessionCtx>,
    mut forwarded: tokio::sync::watch::Receiver<Vec<super::portmap::Forwarded>>,
    dht: Arc<super::dht::DhtNode>,
    shutdown: CancellationToken,
) {
    let mut told = ctx.upgrade().map(|c| c.public_port());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = forwarded.changed() => if r.is_err() { return },
        }
        let Some(c) = ctx.upgrade() else { return };
        let now = Some(c.public_port());
        if now != told {
            told = now;
            dht.announce_again();
        }
    }
}

/// Data checks of a session hashing at once.
const CHECKS_AT_ONCE: usize = 2;
/// Resume files of a session being saved at once.
const SAVES_AT_ONCE: usize = 8;

impl SessionCtx {
    /// The session's DHT node while it runs (`None` without one, or switched off).
    pub(crate) fn running_dht(&self) -> Option<&Arc<super::dht::DhtNode>> {
        self.dht.as_ref().filter(|d| d.is_on())
    }

    /// The address really bound (its port is the one announced), as it is now.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listening.addr()
    }

    /// The peer port as seen from outside the home router: the one the gateway forwards to ours
    /// when it is another number ([`super::portmap::PortMapper::outside_port`]), else ours. Told
    /// to the DHT, and to trackers beyond the local network ([`SessionCtx::port_for_tracker`]).
    pub fn public_port(&self) -> u16 {
        let port = self.listen_addr().port();
        self.outside_port().unwrap_or(port)
    }

    /// The port outside that the gateway forwards to our peer port, when it is another number.
    pub fn outside_port(&self) -> Option<u16> {
        let port = self.listen_addr().port();
        self.portmap
            .as_ref()
            .and_then(|m| m.outside_port(super::portmap::Protocol::Tcp, port))
    }

    /// The peer port to tell the tracker at `url`: the one seen from outside
    /// ([`SessionCtx::public_port`]) unless the tracker is on a local network
    /// ([`crate::announce::on_local_network`]), which reaches us at our own. The tracker's host
    /// is looked up only when the two differ.
    pub async fn port_for_tracker(&self, url: &str) -> u16 {
        let port = self.listen_addr().port();
        match self.outside_port() {
            Some(outside) if !crate::announce::on_local_network(url).await => outside,
            _ => port,
        }
    }

    /// Most peers per torrent in force.
    pub fn max_peers_per_torrent(&self) -> usize {
        self.max_peers_per_torrent
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether peer exchange is in force.
    pub fn pex(&self) -> bool {
        self.pex.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The next multiple of `period` since the session started, strictly after now. Torrents' periodic
    /// timers fire on these instants, so 1,000 idle torrents wake the runtime once a second together
    /// rather than 1,000 times at scattered instants (the wake-ups, not the work, were most of their
    /// idle CPU).
    pub fn next_tick(&self, period: Duration) -> tokio::time::Instant {
        let since = self.epoch.elapsed().as_nanos() / period.as_nanos().max(1);
        let n = u32::try_from(since + 1).unwrap_or(u32::MAX);
        self.epoch + period * n
    }

    /// Waits for this announce's turn: announces of the session start at least
    /// `cfg.announce_spacing` apart, so 1,000 torrents starting together reach their trackers over a
    /// couple of seconds rather than in one burst of connections. A lone announce goes at once.
    pub async fn announce_turn(&self) {
        self.announce_turn_every(self.cfg.announce_spacing).await;
    }

    /// [`SessionCtx::announce_turn`] with turns `spacing` apart (the `stopped` announces of a
    /// shutdown, see [`stop_spacing`]).
    pub async fn announce_turn_every(&self, spacing: Duration) {
        let at = {
            let mut next = self.announce_next.lock();
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + spacing;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// The encryption policy of the connections made and taken from now on.
    pub fn encryption(&self) -> super::Encryption {
        *self.encryption.lock()
    }

    /// The uTP policy of the connections made and taken from now on.
    pub fn utp(&self) -> super::Utp {
        *self.utp.lock()
    }

    /// Whether files not complete yet are named `<name>.part` now.
    pub fn rename_partial_files(&self) -> bool {
        self.rename_partial_files
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The ports port forwarding asks the gateway for ([`super::portmap::session_ports`]).
    fn forwarded_ports(&self) -> Vec<super::portmap::Wanted> {
        let utp = self.utp() != super::Utp::Off && self.listening.utp().is_some();
        let dht = self.running_dht().map(|d| d.port());
        super::portmap::session_ports(self.listen_addr(), utp, dht, &self.forward_also)
    }

    /// How to dial a peer now, for an address known to want encryption first, and over the
    /// transport `learned` for it (see [`super::Utp::dial_over`]).
    pub fn dial(
        &self,
        encrypt_first: bool,
        learned: Option<super::transport::Transport>,
    ) -> crate::peer_stream::Dial {
        let utp = self.utp();
        let utp_node = self.listening.utp();
        crate::peer_stream::Dial {
            local: self.listen_addr(),
            encryption: self.encryption(),
            encrypt_first,
            utp,
            transport: utp.dial_over(learned, utp_node.is_some()),
            utp_node,
            timeout: HANDSHAKE_TIMEOUT,
        }
    }

    /// Our handshake for `meta`'s torrent, naming it by `swarm`, one of its [`Metainfo::swarm_ids`]
    /// (a hybrid is dialed and answered in its v2 swarm too): the DHT bit set only when a public
    /// torrent may use it.
    pub fn handshake(&self, meta: &Metainfo, swarm: InfoHash) -> Handshake {
        Handshake::ours(swarm, self.peer_id)
            .with_dht(self.running_dht().is_some() && !meta.info.private)
    }
}

struct Inner {
    ctx: Arc<SessionCtx>,
    torrents: Mutex<HashMap<InfoHash, TorrentHandle>>,
}

/// A running BitTorrent session. Cheap to clone; call [`Session::shutdown`] to stop it.
#[derive(Clone)]
pub struct Session(Arc<Inner>);

impl Session {
    /// What its torrents share.
    pub(crate) fn ctx(&self) -> &SessionCtx {
        &self.0.ctx
    }

    /// Binds the listener and starts accepting peers.
    pub async fn start(cfg: SessionConfig) -> Result<Session> {
        let shutdown = CancellationToken::new();
        let (listening, listener) = super::listen::Listening::bind(cfg.listen, &shutdown).await?;
        let listen_addr = listening.addr();
        let dht = match &cfg.dht {
            Some(d) => Some(
                super::dht::DhtNode::start(d.clone(), listen_addr, cfg.resume_dir.as_deref())
                    .await?,
            ),
            None => None,
        };
        let lsd = if cfg.lsd && !listen_addr.ip().is_loopback() {
            match super::lsd::LsdNode::start(listen_addr) {
                Ok(node) => {
                    tracing::info!(interfaces = ?node.interfaces(), "local service discovery on");
                    Some(node)
                }
                Err(e) => {
                    tracing::info!("local service discovery off: {e}");
                    None
                }
            }
        } else {
            None
        };
        let portmap = (!listen_addr.ip().is_loopback()).then(|| {
            super::portmap::PortMapper::new(
                cfg.port_forwarding,
                cfg.port_forwarding_gateway,
                listen_addr.ip(),
            )
        });
        let max_connections = cfg
            .max_connections
            .unwrap_or_else(|| super::fd_budget::for_this_process(cfg.max_open_files));
        let ctx = Arc::new(SessionCtx {
            peer_id: cfg.peer_id.unwrap_or_else(PeerId::generate),
            listening,
            events: cfg.events.clone(),
            shutdown,
            // Always there, so the limits can be set while the session runs (0 = unlimited).
            upload_limit: Some(super::bandwidth::SharedLimiter::new(
                cfg.upload_limit.unwrap_or(0),
            )),
            download_limit: Some(super::bandwidth::SharedLimiter::new(
                cfg.download_limit.unwrap_or(0),
            )),
            // Announces leave from the address we listen on, when it is a specific one, and over
            // both families when we listen on both.
            tracker: crate::announce::TrackerClient::for_listen(listen_addr.ip()),
            announce_key: rand::random(),
            dht,
            lsd,
            seen_as: Default::default(),
            portmap,
            forward_also: cfg.forward_also.clone(),
            portmap_task: Mutex::new(None),
            writers: Default::default(),
            hot_budget: super::hot::HotBudget::new(cfg.hot_piece_bytes),
            checks: tokio::sync::Semaphore::new(CHECKS_AT_ONCE),
            saves: tokio::sync::Semaphore::new(SAVES_AT_ONCE),
            announce_next: Mutex::new(tokio::time::Instant::now()),
            files: super::storage::FileCache::new(cfg.max_open_files),
            ip_filter: Default::default(),
            connections: super::fd_budget::SocketBudget::new(max_connections),
            max_peers_per_torrent: cfg.max_peers_per_torrent.max(1).into(),
            pex: cfg.pex.into(),
            epoch: tokio::time::Instant::now(),
            fetches: Default::default(),
            encryption: Mutex::new(cfg.encryption),
            utp: Mutex::new(cfg.utp),
            rename_partial_files: std::sync::atomic::AtomicBool::new(cfg.rename_partial_files),
            groups: Default::default(),
            default_trackers: RwLock::new(cfg.default_trackers.clone()),
            cfg,
        });
        for (name, limits) in &ctx.cfg.bandwidth_groups {
            ctx.groups.set(name, limits);
        }
        let session = Session(Arc::new(Inner {
            ctx,
            torrents: Mutex::new(HashMap::new()),
        }));
        session.0.ctx.listening.accept(&session, listener);
        if let Some(d) = &session.0.ctx.dht {
            tokio::spawn(d.clone().save_loop(session.0.ctx.shutdown.clone()));
        }
        if let Some(l) = &session.0.ctx.lsd {
            tokio::spawn(l.clone().run(session.0.ctx.shutdown.clone()));
        }
        if let Some(m) = &session.0.ctx.portmap {
            let ctx = Arc::downgrade(&session.0.ctx);
            let ports = move || ctx.upgrade().map_or_else(Vec::new, |c| c.forwarded_ports());
            let task = tokio::spawn(m.clone().run(ports, session.0.ctx.shutdown.clone()));
            *session.0.ctx.portmap_task.lock() = Some(task);
            if let Some(d) = &session.0.ctx.dht {
                tokio::spawn(tell_dht_the_public_port(
                    Arc::downgrade(&session.0.ctx),
                    m.forwarded(),
                    d.clone(),
                    session.0.ctx.shutdown.clone(),
                ));
            }
        }
        tracing::info!(%listen_addr, "listening for peers");
        Ok(session)
    }

    /// The address really bound (its port changes with [`Session::set_listen_port`]).
    pub fn listen_addr(&self) -> SocketAddr {
        self.0.ctx.listen_addr()
    }

    pub fn peer_id(&self) -> PeerId {
        self.0.ctx.peer_id
    }

    /// Puts `filter` in force for every torrent (an empty one blocks nothing): from now on no
    /// connection is made to or taken from an address it blocks, and the connected peers it blocks
    /// are let go. Returns how many were.
    pub fn set_ip_filter(&self, filter: super::ip_filter::IpFilter) -> usize {
        let filter = Arc::new(filter);
        *self.0.ctx.ip_filter.write() = filter.clone();
        let mut closed = 0;
        for t in self.torrents() {
            let c = t.0.core.lock();
            for p in c.peers.values().filter(|p| filter.blocks(p.addr.ip())) {
                p.close("blocked by the IP filter");
                closed += 1;
            }
        }
        closed
    }

    /// The IP filter in force.
    pub fn ip_filter(&self) -> Arc<super::ip_filter::IpFilter> {
        self.0.ctx.ip_filter.read().clone()
    }

    /// Most peer sockets the session keeps at once ([`SessionConfig::max_connections`], or the
    /// budget the open-file limit gave).
    pub fn max_connections(&self) -> usize {
        self.0.ctx.connections.max()
    }

    /// Changes the socket budget while the session runs (at least one): a lower one cuts no
    /// connection, but none is made or taken until the session is under it.
    pub fn set_max_connections(&self, n: usize) {
        self.0.ctx.connections.resize(n);
    }

    /// Peer sockets open now: dials under way, incoming connections being handshaken, peers.
    pub fn connections(&self) -> usize {
        self.0.ctx.connections.in_use()
    }

    /// Most peers per torrent in force.
    pub fn max_peers_per_torrent(&self) -> usize {
        self.0.ctx.max_peers_per_torrent()
    }

    /// Changes the most peers per torrent (at least one) while the session runs: a torrent over it
    /// keeps its peers, and dials or takes none until it is under it.
    pub fn set_max_peers_per_torrent(&self, n: usize) {
        self.0
            .ctx
            .max_peers_per_torrent
            .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether peer exchange (BEP 11) is in force.
    pub fn pex(&self) -> bool {
        self.0.ctx.pex()
    }

    /// Switches peer exchange while the session runs: off, no peer list is sent or taken on any
    /// connection (and new ones do not offer it); on, connections made from now on offer it.
    pub fn set_pex(&self, on: bool) {
        self.0
            .ctx
            .pex
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether files not complete yet are named `<name>.part` ([`super::partial_files`]).
    pub fn rename_partial_files(&self) -> bool {
        self.0.ctx.rename_partial_files()
    }

    /// Switches partial naming while the session runs: files created from now on follow it, and
    /// switched off, the files under their partial names take their own at once (on the blocking
    /// pool; this returns when it is done; a torrent still checking its data, when its check ends).
    /// Switched on, no file on disk is renamed.
    pub async fn set_rename_partial_files(&self, on: bool) {
        self.0
            .ctx
            .rename_partial_files
            .store(on, std::sync::atomic::Ordering::Relaxed);
        let torrents = self.torrents();
        let job = tokio::task::spawn_blocking(move || {
            for t in torrents {
                t.0.storage.set_partial_naming(on);
                let checking =
                    t.0.core.lock().lifecycle.phase() == Some(super::lifecycle::Phase::Checking);
                if !checking {
                    super::partial_files::name_all(&t.0);
                }
            }
        });
        if let Err(e) = job.await {
            tracing::warn!("renaming files for their state failed: {e}");
        }
    }

    /// Files the session's torrents hold open now (at most [`SessionConfig::max_open_files`]).
    pub fn open_files(&self) -> usize {
        self.0.ctx.files.len()
    }

    /// Looks up peers of `info_hash` on the DHT (a torrent not added yet, such as a magnet link's):
    /// addresses arrive as found, each once, and the channel closes when the lookup ends (within
    /// 90 s). `None` without a DHT.
    pub fn dht_peers(
        &self,
        info_hash: InfoHash,
    ) -> Option<tokio::sync::mpsc::Receiver<SocketAddr>> {
        self.0.ctx.running_dht().map(|d| d.lookup(info_hash))
    }

    /// Peers of `info_hash` on the DHT, looked up again and again until the receiver is dropped:
    /// at once, then [`crate::dht::SEEK_FIRST_PAUSE`] after each lookup ends, the pause doubling
    /// up to [`crate::dht::SEEK_MAX_PAUSE`]. For a magnet link's metadata, whose peers may
    /// announce after the first look; an address comes again with each lookup that finds it.
    /// `None` when the session runs no DHT.
    pub fn dht_seek(&self, info_hash: InfoHash) -> Option<tokio::sync::mpsc::Receiver<SocketAddr>> {
        self.0.ctx.running_dht().map(|d| d.seek(info_hash))
    }

    /// Publishes `info_hash` in the DHT under the ed25519 key whose seed is `secret` (and `salt`),
    /// at sequence number `seq`: a mutable torrent (BEP 46), which the key's mutable link then
    /// resolves to ([`crate::mutable_torrent`]).
    pub async fn publish_mutable(
        &self,
        secret: &[u8; 32],
        salt: Option<&[u8]>,
        info_hash: InfoHash,
        seq: i64,
    ) -> Result<()> {
        let dht = self.0.ctx.dht.as_ref().ok_or(EngineError::NoDht)?;
        dht.put_pointer(secret, salt, info_hash, seq).await
    }

    /// What the mutable link `link` points at now (`None`: nothing found in the DHT).
    pub async fn resolve_mutable(
        &self,
        link: &btorrent_proto::mutable_link::MutableLink,
    ) -> Result<Option<super::mutable_torrent::Resolved>> {
        let dht = self.0.ctx.dht.as_ref().ok_or(EngineError::NoDht)?;
        dht.get_pointer(
            &link.public_key,
            link.salt.as_deref(),
            super::mutable_torrent::RESOLVE_TIMEOUT,
        )
        .await
    }

    /// Whether the session's DHT node runs.
    pub fn dht_on(&self) -> bool {
        self.0.ctx.running_dht().is_some()
    }

    /// Switches the DHT node off (its routing table saved; the torrents' announces and lookups
    /// wait) or on again (they announce and look up at once). `Ok(false)`: the session started
    /// without a node, so there is none to switch (switching off is then already done).
    pub async fn set_dht(&self, on: bool) -> Result<bool> {
        let Some(d) = &self.0.ctx.dht else {
            return Ok(!on);
        };
        if on {
            d.switch_on().await?;
        } else if d.is_on() {
            d.switch_off().await;
            tracing::info!("DHT node switched off");
        }
        Ok(true)
    }

    /// Whether local service discovery runs (a node, switched on).
    pub fn lsd_on(&self) -> bool {
        self.0.ctx.lsd.as_ref().is_some_and(|l| l.is_on())
    }

    /// Whether the session has a local service discovery node to switch (it started with `lsd`
    /// on a listen address that is not loopback).
    pub fn has_lsd(&self) -> bool {
        self.0.ctx.lsd.is_some()
    }

    /// Switches local service discovery off or on again ([`super::lsd::LsdNode::switch`]). False
    /// when asked to switch it on in a session that started without a node (`lsd` off, or a
    /// loopback listen address), which has none to switch.
    pub fn set_lsd(&self, on: bool) -> bool {
        match &self.0.ctx.lsd {
            Some(l) => {
                l.switch(on);
                true
            }
            None => !on,
        }
    }

    /// Port forwarding as it stands (off for a session that listens on loopback), with where the
    /// session listens and the addresses peers report seeing it at.
    pub fn port_forwarding(&self) -> super::PortForwarding {
        let mut status = self
            .0
            .ctx
            .portmap
            .as_ref()
            .map_or_else(super::PortForwarding::off, |m| m.status());
        status.listen = Some(self.listen_addr());
        status.seen_as = self.0.ctx.seen_as.tally();
        status
    }

    /// Whether port forwarding is switched on.
    pub fn port_forwarding_on(&self) -> bool {
        self.0.ctx.portmap.as_ref().is_some_and(|m| m.is_on())
    }

    /// Switches port forwarding on (the ports are mapped at once) or off (the mappings are
    /// deleted). False when asked to switch it on in a session that listens on loopback.
    pub fn set_port_forwarding(&self, on: bool) -> bool {
        match &self.0.ctx.portmap {
            Some(m) => {
                m.switch(on);
                true
            }
            None => !on,
        }
    }

    /// Nodes known and lookups in flight; `None` without a DHT, or with it switched off.
    pub async fn dht_stats(&self) -> Option<super::DhtStats> {
        match self.0.ctx.running_dht() {
            Some(d) => Some(d.stats().await),
            None => None,
        }
    }

    /// The session's (upload, download) limits in bytes per second; `None` = unlimited.
    pub fn limits(&self) -> (Option<u64>, Option<u64>) {
        let get = |l: &Option<super::bandwidth::SharedLimiter>| l.as_ref().and_then(|l| l.rate());
        (
            get(&self.0.ctx.upload_limit),
            get(&self.0.ctx.download_limit),
        )
    }

    /// Changes the session's limits (`None` = unlimited) while it runs.
    pub fn set_limits(&self, upload: Option<u64>, download: Option<u64>) {
        if let Some(l) = &self.0.ctx.upload_limit {
            l.set_rate(upload);
        }
        if let Some(l) = &self.0.ctx.download_limit {
            l.set_rate(download);
        }
    }

    /// The encryption policy of new connections ([`super::peer_stream`]).
    pub fn encryption(&self) -> super::Encryption {
        self.0.ctx.encryption()
    }

    /// Changes the encryption policy while the session runs: connections made or taken from now
    /// on follow it; those open stay as they are.
    pub fn set_encryption(&self, e: super::Encryption) {
        *self.0.ctx.encryption.lock() = e;
    }

    /// The uTP policy of new connections ([`super::transport`]).
    pub fn utp(&self) -> super::Utp {
        self.0.ctx.utp()
    }

    /// Changes the uTP policy while the session runs (connections open stay as they are).
    pub fn set_utp(&self, u: super::Utp) {
        *self.0.ctx.utp.lock() = u;
    }

    /// The UDP port uTP connections are taken on, if it could be bound (the listen port's number).
    pub fn utp_port(&self) -> Option<u16> {
        self.0
            .ctx
            .listening
            .utp()
            .map(|_| self.0.ctx.listen_addr().port())
    }

    /// Adds a torrent: checks the data in `opts.data_dir`, then downloads what is missing and seeds.
    pub async fn add(&self, meta: Metainfo, opts: AddOptions) -> Result<TorrentHandle> {
        let ih = meta.info_hash;
        if self.0.ctx.shutdown.is_cancelled() {
            return Err(EngineError::ShuttingDown);
        }
        let trackers = opts.trackers.clone().unwrap_or_else(|| meta.trackers());
        if let Some(files) = &opts.files {
            super::selection::check_len(&meta.info, files)?;
        }
        if let Some(paths) = &opts.file_paths {
            super::storage::check_paths(&meta.info, paths).map_err(|why| EngineError::BadPath {
                name: meta.info.name.clone(),
                why,
            })?;
        }
        let handle = {
            let mut map = self.0.torrents.lock();
            if map.contains_key(&ih) {
                return Err(EngineError::AlreadyAdded {
                    name: meta.info.name.clone(),
                    info_hash: ih,
                });
            }
            let h = TorrentHandle::new(meta, &opts, trackers, self.0.ctx.clone());
            map.insert(ih, h.clone());
            h
        };
        handle.0.add_known(opts.peers, super::known::Source::User);
        if let Some(peers) = self.0.ctx.fetches.take_peers(&ih) {
            handle.0.add_known(peers, super::known::Source::Incoming);
        }
        self.0.ctx.events.publish(Event::Added {
            info_hash: ih,
            name: handle.name().to_string(),
            data_dir: handle.0.storage.data_dir(),
        });
        // The quick part of the check (sizes, mtimes, resume data) happens before `add` returns, so
        // a torrent whose resume data vouches for every piece is already seeding; pieces that need
        // hashing are checked in the background (state `Checking`).
        let t = handle.0.clone();
        let survey = tokio::task::spawn_blocking(move || super::resume::survey(&t))
            .await
            .map_err(EngineError::task)?;
        let rest = if survey.to_check.is_empty() {
            super::torrent_task::apply_check(&handle.0, &survey.have, !survey.current);
            None
        } else {
            Some(survey)
        };
        tokio::spawn(super::torrent_task::run(handle.0.clone(), rest));
        Ok(handle)
    }

    pub fn get(&self, ih: &InfoHash) -> Option<TorrentHandle> {
        self.0.torrents.lock().get(ih).cloned()
    }

    /// The torrent in the swarm `ih`: the one of that info-hash, or the hybrid whose v2 swarm it is
    /// ([`Metainfo::second_info_hash`]).
    pub fn in_swarm(&self, ih: &InfoHash) -> Option<TorrentHandle> {
        let torrents = self.0.torrents.lock();
        torrents.get(ih).cloned().or_else(|| {
            torrents
                .values()
                .find(|h| h.0.meta.second_info_hash().as_ref() == Some(ih))
                .cloned()
        })
    }

    pub fn torrents(&self) -> Vec<TorrentHandle> {
        let mut v: Vec<_> = self.0.torrents.lock().values().cloned().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }

    /// A receiver of the session's own event channel ([`crate::EventSink::own`], the default);
    /// `None` when the session publishes into a front end's channel (subscribe to that instead).
    pub fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        self.0.ctx.events.subscribe()
    }

    /// Fetches the metadata of a magnet link from its `x.pe` peers, its trackers, `extra`, the local
    /// network (when the session runs local service discovery) and the peers that connect to us for
    /// it (see [`crate::metadata`]), and makes it a .torrent with the link's trackers. The peers that
    /// offered it are the first peers of the torrent [`Session::add`]ed next by its info-hash.
    /// `progress` hears how it goes; `timeout` bounds it.
    pub async fn fetch_metadata(
        &self,
        magnet: &Magnet,
        extra: Option<mpsc::Receiver<SocketAddr>>,
        timeout: Option<Duration>,
        progress: impl Fn(&crate::metadata::FetchProgress) + Send,
        cancel: CancellationToken,
    ) -> Result<Metainfo> {
        let ctx = &self.0.ctx;
        let ih = magnet.info_hash;
        let listed = ctx.fetches.listed(magnet);
        let asked = listed.asked();
        let progress = move |p: &crate::metadata::FetchProgress| {
            listed.update(p);
            progress(p)
        };
        let cfg = crate::metadata::FetchConfig {
            peer_id: ctx.peer_id,
            local: ctx.listen_addr(),
            tracker: ctx.tracker.clone(),
            announce_key: Some(ctx.announce_key),
            announce_ip: ctx.cfg.announce_ip,
            timeout,
            asked,
            session: ctx.clone(),
        };
        // Ends the local announces and the hand-over of incoming peers with the fetch.
        let fetching = cancel.child_token();
        let _done = fetching.clone().drop_guard();
        let mut extra: Vec<_> = extra.into_iter().collect();
        if let Some(lsd) = &ctx.lsd {
            extra.push(lsd.seek(ih, fetching.clone()));
        }
        let sources = crate::metadata::FetchSources {
            peers: crate::metadata::resolve_peers(&magnet.peers).await,
            trackers: magnet.trackers.clone(),
            extra,
            // A second fetch of the same info-hash at once leaves incoming peers to the first.
            incoming: ctx.fetches.take_incoming(ih),
        };
        let fetched = tokio::select! {
            r = crate::metadata::fetch(cfg, ih, sources, progress, fetching.clone()) => r,
            _ = ctx.shutdown.cancelled() => Err(EngineError::ShuttingDown),
        }?;
        let unusable = |e: btorrent_proto::metainfo::MetainfoError| {
            EngineError::MetadataUnusable(e.to_string())
        };
        if let Some(full) = magnet.info_hash_v2 {
            if btorrent_proto::metainfo::v2::sha256(&fetched.info) != full {
                return Err(EngineError::MetadataUnusable(
                    "the info dictionary is not the one the link's btmh names".into(),
                ));
            }
        }
        // A v2 torrent's piece layers come from the peers that gave its dictionary (BEP 52).
        let layers = match btorrent_proto::metainfo::layers_needed(&fetched.info)
            .map_err(unusable)?
        {
            None => None,
            Some(needed) => {
                let asked = crate::metadata::layers::fetch_for(ctx, &fetched, &needed, &fetching);
                tokio::select! {
                    r = asked => r,
                    _ = ctx.shutdown.cancelled() => Err(EngineError::ShuttingDown),
                }?
            }
        };
        let bytes = magnet.torrent_bytes(&fetched.info, layers.as_deref());
        let meta = Metainfo::from_bytes(&bytes).map_err(unusable)?;
        // A hybrid fetched by its v2 swarm is added by its v1 info-hash.
        ctx.fetches.keep_peers(meta.info_hash, fetched.peers);
        Ok(meta)
    }

    /// Asks the trackers of the metadata fetches of `ih` for peers now, or as soon as their
    /// `min interval` allows; whether a fetch of `ih` is under way.
    pub fn reannounce_fetch(&self, ih: &InfoHash) -> bool {
        self.0.ctx.fetches.reannounce(ih)
    }

    /// The trackers every public torrent announces to besides its own, in tiers: running
    /// torrents follow at once (a new one is announced to, `started`; one taken off is no longer).
    /// Refused, changing nothing, when one is not shaped like a tracker URL.
    pub fn set_default_trackers(&self, tiers: Vec<Vec<String>>) -> Result<()> {
        let mut kept: Vec<Vec<String>> = Vec::with_capacity(tiers.len());
        let mut seen: Vec<String> = Vec::new();
        for tier in tiers {
            let mut urls = Vec::with_capacity(tier.len());
            for u in tier {
                let u = u.trim().to_string();
                btorrent_proto::metainfo::check_tracker_url(&u).map_err(|e| {
                    EngineError::BadTracker {
                        name: "the default trackers".into(),
                        why: e.to_string(),
                    }
                })?;
                if !seen.contains(&u) {
                    seen.push(u.clone());
                    urls.push(u);
                }
            }
            if !urls.is_empty() {
                kept.push(urls);
            }
        }
        *self.0.ctx.default_trackers.write() = kept;
        let torrents: Vec<TorrentHandle> = self.0.torrents.lock().values().cloned().collect();
        for h in torrents {
            h.follow_default_trackers();
        }
        Ok(())
    }

    /// The trackers every public torrent announces to besides its own, in tiers.
    pub fn default_trackers(&self) -> Vec<Vec<String>> {
        self.0.ctx.default_trackers.read().clone()
    }

    /// The metadata fetches under way ([`Session::fetch_metadata`]), the oldest first.
    pub fn fetching(&self) -> Vec<crate::metadata::MetadataFetch> {
        self.0.ctx.fetches.list()
    }

    /// Stops a torrent (announcing `stopped`) and forgets it; its data stays on disk.
    pub async fn remove(&self, ih: &InfoHash) -> Result<()> {
        let h = self
            .0
            .torrents
            .lock()
            .remove(ih)
            .ok_or(EngineError::NotFound { info_hash: *ih })?;
        h.stop(Duration::from_secs(5), self.0.ctx.cfg.announce_spacing)
            .await;
        self.0.ctx.events.publish(Event::Removed {
            info_hash: *ih,
            name: h.name().to_string(),
        });
        Ok(())
    }

    /// Resolves once [`Session::shutdown`] has stopped the session.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.0.ctx.shutdown.clone().cancelled_owned()
    }

    /// Stops every torrent (saving resume data, announcing `stopped` within `grace`) and the listener.
    /// The `stopped` announces take turns like the start's (`announce_spacing` apart), spread over at
    /// most half the grace.
    pub async fn shutdown(&self, grace: Duration) {
        let all: Vec<TorrentHandle> = self.0.torrents.lock().drain().map(|(_, h)| h).collect();
        let ctx = &self.0.ctx;
        let calls = all.iter().map(|h| h.0.stopped_announces()).sum();
        let spacing = stop_spacing(ctx.cfg.announce_spacing, grace, calls);
        // Turns still booked by announces of the stopping torrents are void: theirs start now.
        *ctx.announce_next.lock() = tokio::time::Instant::now();
        let utp_peers = all.iter().any(|h| h.peers().iter().any(|p| p.utp));
        futures::future::join_all(all.iter().map(|h| h.stop(grace, spacing))).await;
        self.0.ctx.shutdown.cancel();
        // Closing the uTP sockets ends their tasks at once: the FINs of the uTP connections just
        // dropped get a moment to leave first (else their peers hold them until a timeout).
        if utp_peers {
            tokio::time::sleep(UTP_LINGER.min(grace)).await;
        }
        ctx.listening.close_utp();
        if let Some(d) = &self.0.ctx.dht {
            d.stop().await;
        }
        // The mappings are deleted by the task as it ends (within its own bound).
        let task = ctx.portmap_task.lock().take();
        if let Some(task) = task {
            let bound = super::portmap::RELEASE_TIMEOUT + Duration::from_secs(1);
            let _ = tokio::time::timeout(bound, task).await;
        }
    }
}

/// An incoming connection past the IP filter and within the session's socket budget goes on to
/// [`incoming`] in a task of its own; any other is closed at once.
pub(crate) fn admit(session: &Session, stream: RawStream, addr: SocketAddr) {
    // A socket on `::` takes IPv4 peers too, as IPv4-mapped IPv6 addresses: each is known by its
    // own IPv4 address from here on (the per-address limit, the peer lists, PEX's `added`).
    let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
    if session.0.ctx.ip_filter.read().blocks(addr.ip()) {
        tracing::debug!(peer = %addr, "incoming connection refused: blocked by the IP filter");
        return;
    }
    let Ok(permit) = session.0.ctx.connections.try_take() else {
        tracing::debug!(peer = %addr, "incoming connection refused: at the session's connection limit");
        return;
    };
    let s = session.clone();
    tokio::spawn(async move {
        if let Err(e) = incoming(s, stream, addr, permit).await {
            tracing::debug!(peer = %addr, "incoming connection refused: {e}");
        }
    });
}

/// A peer that connected: its handshake read, it goes to the torrent it names (by either info-hash
/// of a hybrid, answered with the one it named), or to the metadata fetch of that info-hash;
/// `socket` (of the session's budget) is held as long as it is.
async fn incoming(
    session: Session,
    raw: RawStream,
    addr: SocketAddr,
    socket: tokio::sync::OwnedSemaphorePermit,
) -> anyhow::Result<()> {
    let policy = session.0.ctx.encryption();
    let torrents = || {
        let mut all: Vec<InfoHash> = (session.0.torrents.lock().values())
            .flat_map(|h| h.0.meta.swarm_ids())
            .collect();
        all.extend(session.0.ctx.fetches.info_hashes());
        all
    };
    let (mut stream, theirs) =
        super::peer_stream::accept(raw, policy, torrents, HANDSHAKE_TIMEOUT).await?;
    let Some(h) = session.in_swarm(&theirs.info_hash) else {
        let fetch = session.0.ctx.fetches.incoming_for(&theirs.info_hash);
        let Some(fetch) = fetch else {
            anyhow::bail!("unknown torrent {}", theirs.info_hash);
        };
        let ih = theirs.info_hash;
        let peer = crate::metadata::Incoming {
            addr,
            stream,
            theirs,
            socket,
        };
        if fetch.try_send(peer).is_err() {
            anyhow::bail!("the metadata fetch of {ih} takes no more peers");
        }
        return Ok(());
    };
    let _socket = socket;
    let run = {
        let c = h.0.core.lock();
        if !c.lifecycle.transfers() {
            anyhow::bail!("torrent is {}", c.lifecycle.report());
        }
        c.run.clone()
    };
    let ours = session.0.ctx.handshake(&h.0.meta, theirs.info_hash);
    write_handshake(&mut stream, &ours, HANDSHAKE_TIMEOUT).await?;
    super::peer::serve(h.0.clone(), stream, theirs, addr, None, run).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_announces_keep_the_spacing_within_half_the_grace() {
        let ms = Duration::from_millis;
        assert_eq!(stop_spacing(ms(2), Duration::from_secs(10), 1000), ms(2));
        assert_eq!(stop_spacing(ms(2), Duration::from_secs(1), 1000), ms(1) / 2);
        assert_eq!(stop_spacing(ms(2), Duration::from_secs(1), 0), ms(2));
    }

    #[tokio::test]
    async fn periodic_timers_fire_in_the_session_s_phase() {
        let s = Session::start(SessionConfig::default()).await.unwrap();
        let ctx = &s.0.ctx;
        let period = Duration::from_millis(300);
        for _ in 0..3 {
            let now = tokio::time::Instant::now();
            let at = ctx.next_tick(period);
            assert!(at > now && at <= now + period, "{:?}", at - now);
            assert_eq!((at - ctx.epoch).as_nanos() % period.as_nanos(), 0);
            tokio::time::sleep(Duration::from_millis(130)).await;
        }
        s.shutdown(Duration::from_secs(1)).await;
    }
}
