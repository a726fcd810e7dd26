//! What every torrent of a session shares (`SessionCtx`): the settings in force, where peers reach
//! us, the DHT and local discovery nodes, the tracker client, speed limits and groups, the budgets of
//! sockets, open files, data checks and saves, and the spacing of announces.

use super::*;

/// What every torrent of a session shares.
pub(crate) struct SessionCtx {
    pub cfg: SessionConfig,
    pub peer_id: PeerId,
    /// Where peers reach us: the TCP listener and the uTP socket ([`crate::listen`]).
    pub listening: crate::listen::Listening,
    pub events: crate::EventSink,
    pub shutdown: CancellationToken,
    pub upload_limit: Option<crate::bandwidth::SharedLimiter>,
    pub download_limit: Option<crate::bandwidth::SharedLimiter>,
    /// The bandwidth groups ([`crate::groups`]).
    pub groups: crate::groups::Groups,
    /// The trackers public torrents announce to besides their own, in tiers
    /// ([`Session::set_default_trackers`]); read under a torrent's core lock, never held across
    /// one.
    pub default_trackers: RwLock<Vec<Vec<String>>>,
    pub tracker: crate::announce::TrackerClient,
    /// Sent as `key` in every announce of this session.
    pub announce_key: u32,
    /// The session's DHT node, when `cfg.dht` asks for one.
    pub dht: Option<Arc<crate::dht::DhtNode>>,
    /// The session's local service discovery node, when `cfg.lsd` asks for one and it could start.
    pub lsd: Option<Arc<crate::lsd::LsdNode>>,
    /// The addresses peers report seeing us at ([`crate::seen_as`]).
    pub seen_as: crate::seen_as::SeenAs,
    /// Our address as each peer sees it, for canonical peer priority ([`crate::peer_priority`]).
    pub vantage: crate::peer_priority::Vantage,
    /// The session's port forwarding, unless it listens on loopback ([`crate::portmap`]).
    pub portmap: Option<Arc<crate::portmap::PortMapper>>,
    /// The task of `portmap`, awaited at shutdown (it deletes the mappings).
    pub(super) portmap_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Other ports of this machine forwarded with the peer port ([`crate::SessionConfig::forward_also`]).
    pub(super) forward_also: Vec<u16>,
    /// The disk writer threads every torrent shares.
    pub writers: crate::verify::Writers,
    /// The budget of every torrent's hot piece copies (see [`crate::hot`]).
    pub hot_budget: Arc<crate::hot::HotBudget>,
    /// Data checks hashing at once (each uses every core already), and resume files being saved at
    /// once (each ends with an fsync): 1,000 torrents starting or stopping together do not take
    /// hundreds of blocking threads.
    pub checks: tokio::sync::Semaphore,
    pub saves: tokio::sync::Semaphore,
    /// When the next announce of the session may start (see [`SessionCtx::announce_turn`]).
    pub(super) announce_next: Mutex<tokio::time::Instant>,
    /// The open files of every torrent, within `cfg.max_open_files`.
    pub files: Arc<crate::storage::FileCache>,
    /// The addresses no peer connection is made to or taken from ([`crate::ip_filter`]). Locked
    /// alone, or inside a torrent's core lock (a peer registering), never around one.
    pub ip_filter: parking_lot::RwLock<Arc<crate::ip_filter::IpFilter>>,
    /// One permit per open peer socket, within the session's budget ([`crate::fd_budget`]).
    pub connections: crate::fd_budget::SocketBudget,
    /// Most peers per torrent in force (`cfg.max_peers_per_torrent` at the start;
    /// [`Session::set_max_peers_per_torrent`]).
    pub(super) max_peers_per_torrent: std::sync::atomic::AtomicUsize,
    /// Peer exchange (BEP 11) in force (`cfg.pex` at the start; [`Session::set_pex`]).
    pub(super) pex: std::sync::atomic::AtomicBool,
    /// When the session started: the phase of its torrents' once-a-second timers.
    pub(super) epoch: tokio::time::Instant,
    /// The metadata fetches under way, and the peers of recent ones ([`crate::metadata::registry`]).
    pub(super) fetches: crate::metadata::registry::Registry,
    /// The encryption policy in force (`cfg.encryption` at the start; [`Session::set_encryption`]).
    pub(super) encryption: Mutex<crate::Encryption>,
    /// The uTP policy in force (`cfg.utp` at the start; [`Session::set_utp`]).
    pub(super) utp: Mutex<crate::Utp>,
    /// Partial naming in force (`cfg.rename_partial_files` at the start;
    /// [`Session::set_rename_partial_files`]).
    pub(super) rename_partial_files: std::sync::atomic::AtomicBool,
}

/// The spacing of `calls` `stopped` announces of a shutdown within `grace`: the session's
/// `announce_spacing`, unless that would take more than half the grace, in which case they spread
/// over that half (the other half is left for the last one to be answered): 1,000 torrents leaving
/// reach their trackers over two seconds, not in one burst, and a shutdown still ends within its
/// grace.
pub(crate) fn stop_spacing(announce_spacing: Duration, grace: Duration, calls: usize) -> Duration {
    let calls = u32::try_from(calls.max(1)).unwrap_or(u32::MAX);
    announce_spacing.min(grace / 2 / calls)
}

impl SessionCtx {
    /// The session's DHT node while it runs (`None` without one, or switched off).
    pub(crate) fn running_dht(&self) -> Option<&Arc<crate::dht::DhtNode>> {
        self.dht.as_ref().filter(|d| d.is_on())
    }

    /// The address really bound (its port is the one announced), as it is now.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listening.addr()
    }

    /// Ranks peers by canonical priority (BEP 40) with us, as each sees us
    /// ([`crate::peer_priority::Ranker`]); made for one decision and dropped.
    pub fn ranker(&self) -> crate::peer_priority::Ranker<'_> {
        crate::peer_priority::Ranker::new(
            &self.vantage,
            &self.seen_as,
            self.listen_addr(),
            self.public_port(),
        )
    }

    /// The peer port as seen from outside the home router: the one the gateway forwards to ours
    /// when it is another number ([`crate::portmap::PortMapper::outside_port`]), else ours. Told
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
            .and_then(|m| m.outside_port(crate::portmap::Protocol::Tcp, port))
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
    pub fn encryption(&self) -> crate::Encryption {
        *self.encryption.lock()
    }

    /// The uTP policy of the connections made and taken from now on.
    pub fn utp(&self) -> crate::Utp {
        *self.utp.lock()
    }

    /// Whether files not complete yet are named `<name>.part` now.
    pub fn rename_partial_files(&self) -> bool {
        self.rename_partial_files
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The ports port forwarding asks the gateway for ([`crate::portmap::session_ports`]).
    pub(super) fn forwarded_ports(&self) -> Vec<crate::portmap::Wanted> {
        let utp = self.utp() != crate::Utp::Off && self.listening.utp().is_some();
        let dht = self.running_dht().map(|d| d.port());
        crate::portmap::session_ports(self.listen_addr(), utp, dht, &self.forward_also)
    }

    /// How to dial a peer now, for an address known to want encryption first, and over the
    /// transport `learned` for it (see [`crate::Utp::dial_over`]).
    pub fn dial(
        &self,
        encrypt_first: bool,
        learned: Option<crate::transport::Transport>,
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
