//! The peer engine: downloads and uploads torrents over the peer wire protocol.
//!
//! # Public API (what the CLI, the script host, the shell and the watch folder call)
//!
//! - [`Session::start`]`(SessionConfig)` binds the listener (`cfg.listen`, port 0 = ephemeral) and
//!   returns a cheap-to-clone [`Session`]. [`Session::listen_addr`] is the address really bound; it is
//!   the port announced to trackers.
//! - [`Session::add`]`(Metainfo, AddOptions)` checks the data already in `opts.data_dir`, then
//!   downloads what is missing and seeds. Before it returns, the quick part of the check is done (file
//!   sizes, mtimes, resume data): if that vouches for every piece, or there is no data yet, the handle
//!   is already `Seeding` or `Downloading`; pieces that need hashing are checked in the background
//!   (state `Checking`). `data_dir` is the folder that holds the torrent's file or top folder, like
//!   aria2's `--dir`.
//! - Files already on this machine ([`local_data`]): a wanted file of a v2 or hybrid torrent
//!   missing from its folder is copied from another torrent of the session holding the same
//!   content (its `pieces root`), or moved from [`AddOptions::local_files`] (a previous
//!   version's, whose files the new version dropped are removed), before the check;
//!   [`Event::FoundLocally`] says so.
//! - Choosing files ([`selection`]): [`AddOptions::files`], [`TorrentHandle::files`],
//!   [`TorrentHandle::set_file_priorities`], [`TorrentHandle::set_sequential`].
//!   With [`SessionConfig::rename_partial_files`] a file a download creates is `<name>.part`
//!   until complete ([`partial_files`]; [`Session::set_rename_partial_files`] while it runs).
//! - [`Session::get`], [`Session::torrents`], [`Session::remove`] (stops, announces `stopped`, keeps the
//!   data), [`Session::shutdown`] (the same for every torrent, within a grace period).
//! - Every [`Event`] goes into the session's one [`EventSink`] ([`SessionConfig::events`], see
//!   [`events`]): by default a channel of its own ([`Session::subscribe`]), or the front end's channel
//!   (the app's event bus) with nothing in between. The engine never waits on a subscriber (a slow
//!   one misses events: `RecvError::Lagged`).
//! - [`TorrentHandle`]: `info_hash`, `name`, `meta`, `stats` ([`TorrentStats`], the one snapshot
//!   of a torrent: serde-serializable, with its files, limits and clock ([`clock`]: when it
//!   started, moved data and completed, how long it downloaded and seeded over every run);
//!   progress and completion are its methods), `peers`
//!   ([`PeerInfo`]), `pause`, `resume`,
//!   `move_to` (moves the data and keeps seeding from there), `wait_complete`, `add_peers`, `check`
//!   (hashes every piece on disk again, ignoring resume data; see [`disk_check`]), `limits` and
//!   `set_limits` (the torrent's own speed limits, on top of the session's, its bandwidth
//!   priority, by which the session's limits serve it ([`bandwidth`]), and its own most peers; see
//!   [`limits`]).
//! - While the session runs: [`Session::set_listen_port`] (the peer port, its listener and uTP
//!   socket moved), [`Session::set_max_connections`] (its socket budget, [`fd_budget`]),
//!   [`Session::set_max_peers_per_torrent`] and [`Session::set_pex`] (peer exchange, [`ext`]); a
//!   lower limit closes no connection, it lets no new one in until the count is under it.
//! - [`Session::dht_peers`] looks up peers of an info-hash on the DHT (for a torrent not added yet),
//!   [`Session::dht_seek`] again and again while its receiver lives (a magnet's metadata);
//!   [`Session::dht_stats`] says how the node does. Torrents use the DHT by themselves ([`dht`]).
//!   [`Session::publish_mutable`] and [`Session::resolve_mutable`] keep and read mutable torrents'
//!   pointers there (BEP 46, [`mutable_torrent`]).
//! - With [`SessionConfig::lsd`], public torrents are announced on the local network and find
//!   peers there (local service discovery, BEP 14: [`lsd`], on the interfaces of [`interfaces`]).
//! - With [`SessionConfig::port_forwarding`], the gateway is asked to forward the peer port
//!   ([`portmap`]: NAT-PMP, then UPnP IGD); [`Session::port_forwarding`] says how it stands,
//!   with the addresses peers report seeing us at ([`seen_as`]). A port forwarded from another
//!   number outside is the one the DHT and trackers beyond the local network are told.
//! - Peers are ranked by canonical peer priority (BEP 40, [`peer_priority`]): of addresses equal
//!   otherwise, the best ranked is dialed first, and a newcomer to a full torrent takes the slot of
//!   its lowest ranked peer when it ranks higher, so a swarm larger than its members' limits agrees
//!   on which connections to keep.
//! - [`SessionConfig::encryption`] ([`Encryption`]; [`Session::set_encryption`] while it runs): which
//!   connections are made and taken plain, which under message stream encryption
//!   ([`peer_stream`]: the stream every connection reads and writes through).
//! - [`SessionConfig::utp`] ([`Utp`]; [`Session::set_utp`]): when connections ride uTP (BEP 29) on
//!   the listen port's UDP number rather than TCP ([`transport`]).
//! - [`probe::fetch_bitfield`] and [`probe::download_piece`]: one-shot questions to one peer.
//! - [`Session::fetch_metadata`]`(magnet, extra, ...)`: a magnet link's info dictionary from its
//!   `x.pe` peers, its trackers, `extra` (a channel of addresses, e.g. from a DHT lookup), the
//!   local network and peers that connect to us for it, checked against the info-hash
//!   ([`metadata`]); for a v2 torrent (BEP 52) also its piece layers, asked of those peers. Every
//!   torrent serves its own dictionary to peers ([`ext`]) (a v2 one its piece layers too, answering
//!   hash requests; a hybrid that came without them derives them from its data once complete and
//!   says so, [`Event::LayersDerived`]), and exchanges peers with them (PEX) unless it is private; two of its peers
//!   behind NATs that cannot dial each other are introduced through a third ([`holepunch`], BEP
//!   55). A hybrid torrent is
//!   in two swarms, its v1 and its v2 info-hash
//!   ([`Metainfo::swarm_ids`](btorrent_proto::metainfo::Metainfo::swarm_ids)): announced under
//!   both, a peer naming either taken ([`Session::in_swarm`]), a peer dialed in the swarm it was
//!   heard of in.
//!
//! # Errors
//!
//! Every public call returns [`Result`]`<_, `[`EngineError`]`>` ([`error`]): a variant per thing a
//! caller can act on, e.g. [`EngineError::AlreadyAdded`] and [`EngineError::NotFound`] (by
//! info-hash), [`EngineError::ShuttingDown`], [`EngineError::Move`] (the path and the
//! [`std::io::Error`]), the probes' [`EngineError::Connect`] and [`EngineError::Handshake`]. A torrent
//! that fails (a disk that refuses a write: [`EngineError::WritePiece`]) keeps that first failure in
//! its lifecycle; [`TorrentHandle::wait_complete`] and [`TorrentHandle::check`] then return
//! [`EngineError::TorrentFailed`] with it as the cause, and front ends see its message in
//! [`TorrentState::Error`] and [`Event::Error`]. A failure of the disk
//! ([`EngineError::is_recoverable`]: a write refused, or [`EngineError::DataMissing`], its data
//! gone from its folder, which is not downloaded again unasked) lasts until a
//! [`TorrentHandle::resume`] or [`TorrentHandle::relocate`] takes the torrent up again, once its
//! user has seen to the disk. Messages are one line; an error is cheap to clone.
//! Per-connection code (`conn`, `peer`, `ext`, `sender`, the metadata peer task, an incoming
//! handshake) keeps `anyhow` inside: those errors end the connection and are logged.
//!
//! # Structure and invariants
//!
//! ```text
//!  Session ── listener task (accepts, reads the handshake, plain or encrypted, hands the stream
//!     │        to its torrent)
//!     │        shared by its torrents: disk writer threads (4, started on first use), the open-file
//!     │        cache (bounded), announce turns, turns for data checks and resume saves
//!     └── Torrent (Arc) ── torrent task: check data, connect, choke, save resume, announce
//!            ├── core: Mutex<Core>   picker (piece states, blocks, buffers) · peer registry ·
//!            │                        known addresses · have log · state
//!            ├── storage             files, positioned I/O (handles in the session's cache)
//!            └── per peer: reader task (protocol, requests) + sender task (send queue, uploads)
//!                 disk work: hashing (batched: one job per torrent drains its hash queue) and
//!                 reading blocks to upload (each piece hashed from disk first, unless recently
//!                 verified) on the blocking pool, writing verified pieces on the session's disk
//!                 writer the torrent was given (one per torrent, so its writes stay in order)
//! ```
//!
//! - **Threads** do not grow with the torrents: a torrent has tasks, not threads. The session's
//!   disk writers are a fixed few; data checks (2 at once) and resume saves (8 at once) wait for a
//!   turn, so a start or stop of 1,000 torrents keeps the blocking pool small; a start whose resume
//!   data vouches for every piece hashes nothing and saves nothing. A torrent's once-a-second
//!   timers (the loop's rates and dialing, the announce tasks' looks) fire in the session's phase,
//!   so idle torrents wake the runtime together.
//! - **Lock order**: `Torrent::core` first; under it a peer's small mutexes (`PeerShared::cmds`,
//!   `client`, `listen`, `OutQueue::inner`), `Torrent::rates` and the storage's data-folder lock and
//!   the session's file cache may be taken, one at a time (among them the storage's `names`, which
//!   opening and renaming a file holds, never together with the core lock: a rename under way
//!   delays a reader of the paths by one rename at most): none of these is held while another lock is taken. The
//!   session's torrent map, the disk writers' channels, the announce turn, the hash queue
//!   (`Torrent::hashq`), the verified marks (`Torrent::upload_marks`) and the hot piece copies
//!   (`Torrent::hot`, held for the copy of one upload batch) are never held with any other lock (a completed piece leaves the core lock before it enters the hash
//!   queue). No lock is ever held across an `.await` or a disk read/write; the core lock is held for
//!   bookkeeping and the copy of one 16 KiB block.
//! - **Uploads from memory** (the `hot` module): the disk writer keeps each piece it wrote, its buffer
//!   handed over rather than copied (16 MiB per torrent, `SessionConfig::hot_piece_bytes` for the
//!   session; the buffer of the copy it replaces goes back to the picker), and a piece written in this
//!   session carries a verified mark ([`disk_check`]); so the requests that follow our `have`s are
//!   answered without reading the piece back or hashing it again.
//! - **Super-seeding** ([`superseed`]): a connection that registered while it was on is told of
//!   pieces only through its offers and is served only the pieces it was offered, until it falls back
//!   to announcing the rest; its offers are chosen under the core lock, and sent after it is dropped.
//! - **Piece states** live in the [`picker`] and change only under the core lock: `Missing → InFlight`
//!   (a peer task picks it), `InFlight → Hashing` (the last block arrived; the buffer moves to the
//!   torrent's hash queue), `Hashing → Have` or back to `Missing` (the job reports); and `Missing → Have` for
//!   the pieces the data check finds on disk; `Have → Missing` when a piece read from disk fails its
//!   hash ([`disk_check`]: withdrawn). A piece is written to disk only after its hash matched (SHA-1,
//!   or a v2 torrent's merkle root), so a bad piece never reaches the disk; a piece is sent only from
//!   data that matched its hash within
//!   `upload_verify_ttl` with its files unchanged since, so a piece rotten on disk is never uploaded
//!   once it is due for a hash (the start-up check does not count: every piece is hashed on its first
//!   upload).
//! - **Bounded**: piece buffers (in flight + hashing) by `SessionConfig::max_buffer_bytes`; requests to
//!   a peer by its adaptive window (at most its `reqq` and [`conn::MAX_WINDOW`]); requests from a peer
//!   by our advertised `reqq`; messages by the codec's limit; connections by `max_peers_per_torrent` and `max_peers_per_ip`;
//!   super-seeding's state by the piece count, a peer's open offers by [`superseed::offer_limit`];
//!   addresses to dial by [`known::MAX_KNOWN`] and [`known::MAX_WAITING`], dials in flight by
//!   `torrent_task::MAX_HALF_OPEN`; the event channel by its capacity; open files of all torrents by
//!   `max_open_files` ([`file_cache`]).
//! - **Announces** of the session start `announce_spacing` apart (2 ms): 1,000 torrents starting
//!   together reach their trackers over about two seconds, not in one burst; so do the `stopped`
//!   announces of a shutdown, closer together if that would take more than half its grace.

pub mod announce;
mod announcer;
pub mod bandwidth;
pub mod choker;
pub mod clock;
pub mod conn;
mod derived_layers;
pub mod dht;
pub mod disk_check;
pub mod error;
pub mod events;
pub mod ext;
pub mod fd_budget;
pub mod file_cache;
pub mod groups;
pub mod holepunch;
mod hot;
pub mod interfaces;
pub mod ip_filter;
pub mod known;
mod lifecycle;
pub mod limits;
mod listen;
pub mod local_data;
pub mod lsd;
pub mod metadata;
pub mod mutable_torrent;
pub mod partial_files;
pub mod peer;
pub mod peer_priority;
pub mod peer_stream;
pub mod picker;
pub mod piece_buf;
mod placement;
pub mod portmap;
pub mod probe;
pub mod rate;
pub mod resume;
pub mod seen_as;
pub mod selection;
mod sender;
pub mod session;
mod stats;
pub mod storage;
pub mod superseed;
pub mod torrent;
mod torrent_task;
pub mod transport;
pub(crate) mod verify;
pub mod web_seed;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use btorrent_proto::types::{InfoHash, PeerId};

pub use bandwidth::Priority;
pub use clock::TorrentTimes;
pub use dht::{DhtConfig, DhtStats};
pub use disk_check::CheckReport;
pub use error::{EngineError, Result};
pub use events::EventSink;
pub use groups::GroupLimits;
pub use limits::TorrentLimits;
pub use local_data::{LocalFile, Take};
pub use metadata::MetadataFetch;
pub use peer_stream::Encryption;
pub use portmap::{ForwardState, PortForwarding};
pub use selection::{FilePriority, FileStatus};
pub use session::Session;
pub use stats::{TorrentState, TorrentStats};
pub use torrent::TorrentHandle;
pub use transport::Utp;
pub use web_seed::WebSeedStatus;

/// Session settings. `Default` listens on 127.0.0.1 with an ephemeral port.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Address to listen on and to dial from (its IP; port 0 = any). Port 0 = ephemeral.
    pub listen: SocketAddr,
    /// Our peer id; `None` generates one.
    pub peer_id: Option<PeerId>,
    /// Where resume data is kept (`<info-hash>.resume`); `None` = no resume files (data is re-checked).
    pub resume_dir: Option<PathBuf>,
    pub max_peers_per_torrent: usize,
    /// Most connections per torrent from one IP address (each port of a host counts against it).
    pub max_peers_per_ip: usize,
    /// A peer connected this long that neither wants our pieces nor has any we want gives its slot to
    /// a newcomer when the torrent has no other room.
    pub idle_peer_grace: Duration,
    /// IP sent to trackers in `ip=`; `None` lets the tracker use the connection's address.
    pub announce_ip: Option<IpAddr>,
    /// Regular upload slots per torrent (8; one optimistic slot comes on top). More slots spread an
    /// uplink over more downlinks, which keeps a swarm on equal links busier: with 4, 12 leechers of
    /// `benches/fleet.sh` took 11.1-14.7 s, with 8 10.6-10.7 s.
    pub upload_slots: usize,
    /// Most bytes of piece buffers per torrent (pieces in flight or being hashed).
    pub max_buffer_bytes: u64,
    /// Most bytes of the session's copies of just-verified pieces, which serve the uploads that
    /// follow our `have`s from memory (see the `hot` module; at most 16 MiB per torrent).
    pub hot_piece_bytes: u64,
    /// How often resume data is saved while it changes.
    pub resume_interval: Duration,
    /// Upload limit for the whole session, bytes per second (`None` = unlimited).
    pub upload_limit: Option<u64>,
    /// Download limit for the whole session, bytes per second (`None` = unlimited): connections stop
    /// reading from their sockets while over it, so peers are slowed by TCP itself.
    pub download_limit: Option<u64>,
    /// Write verified pieces past the page cache (direct I/O) where the file system allows it; see
    /// [`storage`]. Saves the copy into the page cache, and keeps a download from filling it.
    pub direct_writes: bool,
    /// First wait after a failed announce; it doubles after each failure in a row, up to 30 min, and
    /// a success resets it (15 s; tests shorten it).
    pub tracker_backoff: Duration,
    /// A piece read from disk for upload is hashed first; it is not hashed again for this long while
    /// its files keep their size and mtime (15 min). See [`disk_check`].
    pub upload_verify_ttl: Duration,
    /// The Mainline DHT node of the session (see [`dht`]); `None` = no DHT. Its routing table is
    /// saved in `resume_dir`.
    pub dht: Option<DhtConfig>,
    /// Local service discovery ([`lsd`], BEP 14): public torrents announced on the local network
    /// and peers found there. Off by default; never on a session that listens on loopback (nothing
    /// outside the machine could reach it).
    pub lsd: bool,
    /// Super-seeding ([`superseed`], BEP 16) for complete torrents: `None` (the default) = on while
    /// no other seed is known; `Some(true)`/`Some(false)` forces it on/off. A torrent's
    /// [`AddOptions::super_seed`] overrides it.
    pub super_seed: Option<bool>,
    /// Announces of the session start at least this far apart (2 ms): torrents starting together
    /// announce in turn, not in one burst; a lone announce is not delayed.
    pub announce_spacing: Duration,
    /// Most files held open by all the session's torrents together (256); files are opened when a
    /// piece is read or written and the least recently used is closed past the bound.
    pub max_open_files: usize,
    /// Most peer sockets of the session at once, over every torrent: dials under way, incoming
    /// connections being handshaken and connected peers ([`fd_budget`]). `None` = what the
    /// process's open-file limit leaves after `max_open_files` and a reserve, up to 4,096.
    pub max_connections: Option<usize>,
    /// Where the session's [`Event`]s go ([`events`]): a channel of its own by default, heard through
    /// [`Session::subscribe`]; the app gives its event bus.
    pub events: EventSink,
    /// Message stream encryption ([`peer_stream`]): which connections are made and taken.
    pub encryption: Encryption,
    /// uTP ([`transport`]): taken on the UDP port of the listen port's number, dialed on the retry
    /// after a TCP dial failed (`Allow`), first (`Prefer`), or never (`Off`).
    pub utp: Utp,
    /// Peer exchange ([`ext`], BEP 11) on public torrents (on by default).
    pub pex: bool,
    /// Port forwarding on the gateway ([`portmap`]: NAT-PMP, then UPnP IGD); off by default,
    /// never tried by a session that listens on loopback. [`Session::set_port_forwarding`]
    /// switches it while the session runs.
    pub port_forwarding: bool,
    /// The gateway to ask; `None`: the default route's (NAT-PMP) and SSDP's multicast (UPnP).
    pub port_forwarding_gateway: Option<std::net::Ipv4Addr>,
    /// Other ports of this machine to forward (and open over IPv6) with the peer port, TCP and
    /// UDP each: the embedded tracker's, say. Empty by default.
    pub forward_also: Vec<u16>,
    /// Files a download creates are named `<name>.part` until complete ([`partial_files`]); off by
    /// default.
    /// [`Session::set_rename_partial_files`] switches it while the session runs.
    pub rename_partial_files: bool,
    /// Bandwidth groups and their limits at the start ([`Session::set_group_limits`] changes
    /// them while the session runs; see [`groups`]).
    pub bandwidth_groups: Vec<(String, GroupLimits)>,
    /// Trackers every public torrent announces to besides its own, in tiers (Transmission's
    /// `default-trackers`; [`Session::set_default_trackers`] changes them while it runs).
    pub default_trackers: Vec<Vec<String>>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            peer_id: None,
            resume_dir: None,
            max_peers_per_torrent: 50,
            max_peers_per_ip: 10,
            idle_peer_grace: Duration::from_secs(20),
            announce_ip: None,
            upload_slots: 8,
            max_buffer_bytes: 24 << 20,
            hot_piece_bytes: 64 << 20,
            resume_interval: Duration::from_secs(10),
            upload_limit: None,
            download_limit: None,
            direct_writes: true,
            tracker_backoff: crate::announce::FAILURE_BACKOFF_FIRST,
            upload_verify_ttl: Duration::from_secs(15 * 60),
            dht: None,
            lsd: false,
            super_seed: None,
            announce_spacing: Duration::from_millis(2),
            max_open_files: 256,
            max_connections: None,
            events: EventSink::default(),
            encryption: Encryption::default(),
            utp: Utp::default(),
            pex: true,
            port_forwarding: false,
            port_forwarding_gateway: None,
            forward_also: Vec::new(),
            rename_partial_files: false,
            bandwidth_groups: Vec::new(),
            default_trackers: Vec::new(),
        }
    }
}

/// How to add a torrent.
#[derive(Debug, Clone, Default)]
pub struct AddOptions {
    /// The folder holding the torrent's file (single-file) or top folder (multi-file).
    pub data_dir: PathBuf,
    /// Check the data but do not connect to anyone until `resume()`.
    pub paused: bool,
    /// Peers to dial besides those the trackers return.
    pub peers: Vec<SocketAddr>,
    /// Tracker URLs to use instead of the torrent's own (`Some(vec![])` = no tracker).
    pub trackers: Option<Vec<String>>,
    /// Super-seeding for this torrent (`None` = the session's [`SessionConfig::super_seed`]).
    pub super_seed: Option<bool>,
    /// Each file's priority, in the torrent's order (`None` = every file `Normal`); see
    /// [`selection`]. Changed later with [`TorrentHandle::set_file_priorities`].
    pub files: Option<Vec<FilePriority>>,
    /// Fetch pieces in order (streaming) rather than rarest first.
    pub sequential: bool,
    /// The piece that order starts at ([`TorrentHandle::set_sequential_from`]; 0: the first, and
    /// so is one past the last).
    pub sequential_from: u32,
    /// The torrent's own speed limits (default: none, and the session's apply).
    pub limits: TorrentLimits,
    /// The bandwidth group it is in (see [`groups`]; made unlimited if the session has none of
    /// that name).
    pub group: Option<String>,
    /// Each file's path below `data_dir`, in the torrent's order, where files were renamed
    /// ([`TorrentHandle::rename_path`]; `None` = the torrent's own paths).
    pub file_paths: Option<Vec<PathBuf>>,
    /// Files on this machine to take the torrent's missing files from, besides the session's other
    /// torrents' (see [`local_data`]): a previous version's, say.
    pub local_files: Vec<LocalFile>,
}

/// What one tracker of a torrent last answered, as the torrent's announce task saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrackerStatus {
    /// When the last announce was sent, and when its answer (or failure) came.
    pub last_start: Option<std::time::SystemTime>,
    pub last_done: Option<std::time::SystemTime>,
    /// Whether that answer was a success, and what it said: `Success` or the error.
    pub last_ok: bool,
    pub last_result: String,
    /// Peers in the last successful answer, and the swarm's counts when it gave them.
    pub last_peers: usize,
    pub seeders: Option<u64>,
    pub leechers: Option<u64>,
    /// The downloads it has seen completed, and the leechers still downloading (partial seeds
    /// left out, BEP 21), when it says.
    pub downloaded: Option<u64>,
    pub downloaders: Option<u64>,
    /// When the next announce is due.
    pub next: Option<std::time::SystemTime>,
    /// Successful announces to it in this run.
    pub answered: u64,
}

/// One connected peer of a torrent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PeerInfo {
    /// The address of the connection (for a peer that dialed us, its outgoing port).
    pub addr: SocketAddr,
    /// The client name it gave in its extension handshake.
    pub client: Option<String>,
    /// We dialed it.
    pub outgoing: bool,
    /// The connection is RC4-encrypted (message stream encryption).
    #[serde(default)]
    pub encrypted: bool,
    /// The connection is uTP (not TCP).
    #[serde(default)]
    pub utp: bool,
    /// Where we learned the address we dialed (`Incoming` when it dialed us).
    #[serde(default)]
    pub source: known::Source,
    /// Payload bytes received from it and sent to it on this connection.
    pub downloaded: u64,
    pub uploaded: u64,
    pub down_rate: u64,
    pub up_rate: u64,
    /// It has every piece.
    pub seed: bool,
    /// It wants nothing more (BEP 21 `upload_only`): a seed, or a partial seed with every piece of
    /// the files it wants.
    #[serde(default)]
    pub upload_only: bool,
    /// The pieces it has, and what share of the torrent's pieces that is (0.0-1.0).
    pub pieces: u32,
    pub progress: f64,
    /// We choke it / it chokes us; we are interested in its pieces / it in ours.
    pub am_choking: bool,
    pub peer_choking: bool,
    pub am_interested: bool,
    pub peer_interested: bool,
    /// It holds the choker's optimistic unchoke.
    pub optimistic: bool,
    /// Our block requests it has not answered yet.
    pub requests: u32,
    /// The peer id it gave in its handshake.
    #[serde(default)]
    pub peer_id: [u8; 20],
}

impl PeerInfo {
    /// The connection's state in the letters BitTorrent clients show (Transmission's `flagStr`):
    /// `O` optimistic unchoke; `D` we download from it (interested, unchoked), `d` we would (it
    /// chokes us); `U` we upload to it, `u` we would (we choke it); `K` it unchokes us but we want
    /// nothing of it; `?` we unchoke it but it wants nothing of us; `E` the connection is encrypted;
    /// `T` it is uTP; `I` it dialed us.
    pub fn flags(&self) -> String {
        let mut f = String::new();
        let mut put = |on: bool, c: char| {
            if on {
                f.push(c);
            }
        };
        put(self.optimistic, 'O');
        put(self.am_interested && !self.peer_choking, 'D');
        put(self.am_interested && self.peer_choking, 'd');
        put(self.peer_interested && !self.am_choking, 'U');
        put(self.peer_interested && self.am_choking, 'u');
        put(!self.am_interested && !self.peer_choking, 'K');
        put(!self.peer_interested && !self.am_choking, '?');
        put(self.encrypted, 'E');
        put(self.utp, 'T');
        put(!self.outgoing, 'I');
        f
    }
}

/// What the engine tells its front ends, through the [`EventSink`] its session was given. Each
/// event names its torrent (the name as the torrent says it); those that mark where the data is
/// (added, completed, seeding) carry the folder that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Added {
        info_hash: InfoHash,
        name: String,
        data_dir: PathBuf,
    },
    /// A download reached 100% (never sent for data that was complete when added).
    Completed {
        info_hash: InfoHash,
        name: String,
        data_dir: PathBuf,
    },
    /// The torrent is seeding: after `Completed`, or after the check found every piece.
    Seeding {
        info_hash: InfoHash,
        name: String,
        data_dir: PathBuf,
    },
    Error {
        info_hash: InfoHash,
        name: String,
        message: String,
    },
    Removed {
        info_hash: InfoHash,
        name: String,
    },
    /// The torrent was paused ([`TorrentHandle::pause`]): it stopped transferring and told its
    /// trackers. Not sent for a move's own pause, nor for a torrent added paused.
    Paused {
        info_hash: InfoHash,
        name: String,
    },
    /// A paused torrent was resumed ([`TorrentHandle::resume`]); during a move, it resumes once the
    /// files are in place.
    Resumed {
        info_hash: InfoHash,
        name: String,
    },
    /// The torrent's data folder changed to `data_dir`: its files were moved there
    /// ([`TorrentHandle::move_to`]), or it was pointed there and checked what it found
    /// ([`TorrentHandle::relocate`]); `message` says which, and what the check found.
    Moved {
        info_hash: InfoHash,
        name: String,
        data_dir: PathBuf,
        message: String,
    },
    PeerBanned {
        info_hash: InfoHash,
        name: String,
        addr: SocketAddr,
        reason: String,
    },
    /// Something wrong that the torrent works around: a piece withdrawn because its data on disk failed
    /// its hash, a file longer than the torrent says.
    Warning {
        info_hash: InfoHash,
        name: String,
        message: String,
    },
    /// Files the torrent lacked were found on this machine (see [`local_data`]) and copied or moved
    /// into its folder `data_dir`, or files of the version before that it dropped were removed,
    /// before its check; `message` says how many and how.
    FoundLocally {
        info_hash: InfoHash,
        name: String,
        data_dir: PathBuf,
        message: String,
    },
    /// A hybrid torrent that came without its piece layers derived them from its data once complete
    /// (see `derived_layers`): `piece_layers` is the bencoded value of the .torrent's `piece layers`
    /// key ([`set_piece_layers`](btorrent_proto::metainfo::set_piece_layers) writes it in).
    LayersDerived {
        info_hash: InfoHash,
        name: String,
        piece_layers: std::sync::Arc<Vec<u8>>,
    },
}

impl Event {
    /// The torrent the event is about.
    pub fn info_hash(&self) -> InfoHash {
        match self {
            Event::Added { info_hash, .. }
            | Event::Completed { info_hash, .. }
            | Event::Seeding { info_hash, .. }
            | Event::Error { info_hash, .. }
            | Event::Removed { info_hash, .. }
            | Event::Paused { info_hash, .. }
            | Event::Resumed { info_hash, .. }
            | Event::Moved { info_hash, .. }
            | Event::FoundLocally { info_hash, .. }
            | Event::PeerBanned { info_hash, .. }
            | Event::Warning { info_hash, .. }
            | Event::LayersDerived { info_hash, .. } => *info_hash,
        }
    }

    /// The torrent's name.
    pub fn name(&self) -> &str {
        match self {
            Event::Added { name, .. }
            | Event::Completed { name, .. }
            | Event::Seeding { name, .. }
            | Event::Error { name, .. }
            | Event::Removed { name, .. }
            | Event::Paused { name, .. }
            | Event::Resumed { name, .. }
            | Event::Moved { name, .. }
            | Event::FoundLocally { name, .. }
            | Event::PeerBanned { name, .. }
            | Event::Warning { name, .. }
            | Event::LayersDerived { name, .. } => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PeerInfo;

    fn peer(am_choking: bool, peer_choking: bool, am_int: bool, peer_int: bool) -> PeerInfo {
        PeerInfo {
            addr: "127.0.0.1:6881".parse().unwrap(),
            client: None,
            outgoing: true,
            encrypted: false,
            utp: false,
            source: Default::default(),
            downloaded: 0,
            uploaded: 0,
            down_rate: 0,
            up_rate: 0,
            seed: false,
            upload_only: false,
            pieces: 0,
            progress: 0.0,
            peer_id: [0; 20],
            am_choking,
            peer_choking,
            am_interested: am_int,
            peer_interested: peer_int,
            optimistic: false,
            requests: 0,
        }
    }

    #[test]
    fn flags_spell_the_choke_and_interest_states() {
        assert_eq!(peer(false, false, true, true).flags(), "DU");
        assert_eq!(peer(true, true, true, true).flags(), "du");
        assert_eq!(peer(true, false, false, false).flags(), "K");
        assert_eq!(peer(false, true, false, false).flags(), "?");
        assert_eq!(peer(true, true, false, false).flags(), "");
        let mut p = peer(false, true, false, true);
        p.optimistic = true;
        p.outgoing = false;
        assert_eq!(p.flags(), "OUI");
        p.encrypted = true;
        assert_eq!(p.flags(), "OUEI");
        p.utp = true;
        assert_eq!(p.flags(), "OUETI");
    }
}
