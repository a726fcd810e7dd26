//! The `[settings]` table of `torrents.toml`: fixed keys (an unknown key is an error, so a typo never
//! passes silently) and their defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::lan::LanAddress;

/// The `[settings]` table. Keys are fixed so scripts and tests can rely on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Default tracker for `b-create`; absent means this machine's embedded tracker at its LAN address
    /// (see [`Settings::default_tracker`]), `""` means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracker_url: Option<String>,
    /// Address of the embedded tracker; absent means none runs (the default applies only when the
    /// file itself is missing or has no `[settings]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracker_bind: Option<String>,
    /// Only track info-hashes registered here (private mode of the embedded tracker).
    pub tracker_private: bool,
    /// Seconds between announces the embedded tracker asks for.
    pub tracker_interval: u64,
    /// Peer wire port.
    pub listen_port: u16,
    /// Address the peer listens on and dials from: `::` (the default) takes IPv6 and IPv4
    /// peers on one socket (IPv4 alone on a machine without IPv6), `0.0.0.0` IPv4 alone.
    pub listen_ip: String,
    pub output_dir: PathBuf,
    pub torrents_dir: PathBuf,
    pub watch_dir: PathBuf,
    pub scripts_dir: PathBuf,
    /// Seconds a watched entry must stay unchanged before it is hashed.
    pub watch_quiet_secs: u64,
    /// What kind of torrent the watch folder and `b-create` make: `v1` (the default, every client
    /// reads it), `v2` (BEP 52 alone) or `hybrid` (both in one).
    #[serde(default, skip_serializing_if = "is_default_format")]
    pub torrent_format: crate::metainfo::Format,
    /// The watch folder and `b-create` record each file's modification time in what they make,
    /// given to the files where they are downloaded (`b-create --mtime` for one torrent).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub torrent_mtime: bool,
    /// Seconds between full rescans of the watch folder.
    pub watch_rescan_secs: u64,
    /// Operations one script run (or one event handler call) may take before it is stopped.
    pub script_max_operations: u64,
    /// Upload limit of the peer (all torrents together); absent or 0 = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_limit: Option<ByteRate>,
    /// Download limit of the peer (all torrents together); absent or 0 = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_limit: Option<ByteRate>,
    /// The alternative speed limits (Transmission's "turtle mode"): while `alt_speed` is true they
    /// hold instead of `upload_limit` and `download_limit`; absent or 0 = unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_upload_limit: Option<ByteRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_download_limit: Option<ByteRate>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alt_speed: bool,
    /// Bandwidth groups (Transmission's `group-get`/`group-set`), by name: speed limits shared
    /// by the torrents whose entry names the group (`group = "backup"`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub bandwidth_groups: std::collections::BTreeMap<String, GroupSettings>,
    /// Trackers every public torrent announces to besides its own, in tiers (Transmission's
    /// `default-trackers`): `[["udp://a:1337/announce"], ["http://b/announce"]]`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "tracker_tiers"
    )]
    pub default_trackers: Vec<Vec<String>>,
    /// The alternative limits' schedule ([`crate::alt_speed`]): with it on, `alt_speed` follows
    /// `alt_speed_begin` to `alt_speed_end` (local `"HH:MM"`, absent = 09:00 and 17:00) on
    /// `alt_speed_days` (`"all"`, absent; `"weekdays"`, `"weekend"`, `"mon,wed,fri"`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub alt_speed_time: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_speed_begin: Option<crate::alt_speed::TimeOfDay>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_speed_end: Option<crate::alt_speed::TimeOfDay>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt_speed_days: Option<crate::alt_speed::Days>,
    /// Most connections per torrent; absent = the engine's default (50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_peers: Option<usize>,
    /// Most connections per torrent from one IP address; absent = the engine's default (10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_peers_per_ip: Option<usize>,
    /// Put the lists of the `blocklists/` folder in force ([`crate::blocklist`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocklist: bool,
    /// A list to download into that folder (`blocklist-update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocklist_url: Option<String>,
    /// Most peer connections of the session at once, over every torrent (dials, handshakes,
    /// peers); absent = what the open-file limit leaves, up to 4,096 (see the engine's `fd_budget`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Super-seeding (BEP 16) of complete torrents: absent = on while this peer is the only seed
    /// known; `true`/`false` forces it on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub super_seed: Option<bool>,
    /// Write verified pieces past the page cache (direct I/O, where the file system allows it):
    /// absent = on, which spends the least CPU and leaves the page cache to other programs; `false`
    /// lets the page cache take the writes, which finishes a download sooner where the disk is
    /// slower than the network (the kernel writes the data out afterwards). Taken at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct_writes: Option<bool>,
    /// Run a Mainline DHT node (BEP 5) for public torrents.
    pub dht: bool,
    /// Local service discovery (BEP 14): public torrents announced on the local network, peers
    /// found there ([`crate::engine::lsd`]).
    pub lsd: bool,
    /// Peer exchange (BEP 11) on public torrents: peers learn of each other's peers (on by
    /// default; applied at once).
    #[serde(skip_serializing_if = "is_true")]
    pub pex: bool,
    /// Files a download creates are named `<name>.part` until they are complete
    /// ([`crate::engine::partial_files`]), so other programs looking at the folder see which files
    /// are whole. On by default, as in Transmission; applied at once (switched off, the partial
    /// files take their own names).
    #[serde(skip_serializing_if = "is_true")]
    pub rename_partial_files: bool,
    /// Port forwarding: the router is asked to forward the peer port from outside (NAT-PMP, then
    /// UPnP IGD; [`crate::engine::portmap`]), so peers beyond the NAT can dial in. On by default,
    /// as in Transmission; applied at once; never while `listen_ip` is loopback.
    #[serde(skip_serializing_if = "is_true")]
    pub port_forwarding: bool,
    /// The router to ask, an IPv4 address; absent: the default route's gateway (NAT-PMP) and
    /// whoever answers UPnP's multicast search. Taken at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forwarding_gateway: Option<String>,
    /// The embedded tracker's port is forwarded with the peer port (TCP for HTTP, UDP for BEP 15;
    /// and opened in the IPv6 firewall), so machines outside can announce to it: a tracker at
    /// home for machines elsewhere. Off by default (qBittorrent's "port forwarding for embedded
    /// tracker"); only with `port_forwarding` on, a `tracker_bind` off loopback with a port of its
    /// own. Taken at start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tracker_port_forwarding: bool,
    /// Torrents added over the RPC without `paused`, and .torrent files and magnet links dropped in
    /// the watch folder, start at once (on by default; Transmission's `start-added-torrents`).
    /// Off, they are added paused.
    #[serde(skip_serializing_if = "is_true")]
    pub start_added_torrents: bool,
    /// Torrents added over the RPC fetch their pieces in order unless the request says otherwise
    /// (off by default; Transmission's `sequential_download`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sequential_download: bool,
    /// Message stream encryption of peer connections: `off`, `allow` (the default: plain first,
    /// encrypted with peers that require it), `prefer` or `require` ([`crate::engine::Encryption`]).
    #[serde(default, skip_serializing_if = "is_default_encryption")]
    pub encryption: crate::engine::Encryption,
    /// uTP (BEP 29) on the listen port's UDP number: `allow` (the default: taken, and dialed on
    /// the retry after a TCP dial failed), `prefer` (dialed first) or `off` ([`crate::engine::Utp`]).
    #[serde(default, skip_serializing_if = "is_default_utp")]
    pub utp: crate::engine::Utp,
    /// UDP port of the DHT node; absent = the number after the peer listen port's (whose UDP
    /// port is uTP's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dht_port: Option<u16>,
    /// `host:port` of the nodes to join the DHT through; absent = the well-known public routers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dht_bootstrap: Option<Vec<String>>,
    /// Seconds between two looks at the mutable links torrents were started from (BEP 46), for a
    /// newer torrent to start ([`crate::following`]); absent = [`DEFAULT_FOLLOW_INTERVAL`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_interval: Option<u64>,
    /// A followed link's new version removes the files of the version before that it dropped,
    /// each once found unchanged (v2 and hybrid torrents; see [`crate::engine::local_data`]);
    /// absent = true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_removes: Option<bool>,
    /// Address of the Transmission-compatible RPC server (`POST /transmission/rpc`, `/metrics`);
    /// absent = none runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_bind: Option<String>,
    /// With `rpc_password`: the RPC asks for HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_username: Option<String>,
    /// Plain text as the user writes it, or the salted hash btorrent writes back in its place
    /// (see [`crate::rpc::password`]); either is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_password: Option<String>,
    /// Client addresses or CIDR blocks allowed to use the RPC; absent = loopback only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_whitelist: Option<Vec<String>>,
    /// A Transmission web client's folder, served at `/transmission/web/` on `rpc_bind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_web_dir: Option<PathBuf>,
    /// Seeding goal of the torrents that follow the session's (`global` mode): a complete torrent
    /// stops once it uploaded this many times its size; absent = no ratio goal.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "ratio_goal"
    )]
    pub seed_ratio_limit: Option<f64>,
    /// Seeding goal in minutes: a complete torrent in `global` mode stops after uploading nothing
    /// for this long; absent = no idle goal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_idle_minutes: Option<u64>,
    /// The download queue ([`crate::queue`]): with it on, at most `download_queue_size` torrents
    /// download at once and the others wait their turn, `queued`, in torrents.toml's order.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub download_queue: bool,
    /// How many torrents download at once while the queue is on; absent = 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_queue_size: Option<u32>,
    /// The seeding queue ([`crate::queue`]): with it on, at most `seed_queue_size` complete
    /// torrents seed at once and the others wait their turn, `queued`, in torrents.toml's order.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seed_queue: bool,
    /// How many torrents seed at once while the seeding queue is on; absent = 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_queue_size: Option<u32>,
    /// The incomplete folder ([`crate::incomplete`]; Transmission's `incomplete-dir`): torrents
    /// added through the RPC or the watch folder download here and move to their own folder once
    /// complete; absent = `incomplete` beside torrents.toml, when switched on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_dir: Option<PathBuf>,
    /// Whether downloads go through the incomplete folder; absent = while `incomplete_dir` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_dir_enabled: Option<bool>,
    /// A program run when a torrent is added ([`crate::hooks`]; Transmission's
    /// `script-torrent-added`); absent = none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torrent_added_program: Option<PathBuf>,
    /// `false`: `torrent_added_program` is kept but not run; absent = run when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torrent_added_program_enabled: Option<bool>,
    /// A program run when a torrent completes its download (Transmission's `script-torrent-done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torrent_done_program: Option<PathBuf>,
    /// `false`: `torrent_done_program` is kept but not run; absent = run when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torrent_done_program_enabled: Option<bool>,
    /// A program run when a seeding goal stops a torrent (Transmission's
    /// `script-torrent-done-seeding`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torrent_done_seeding_program: Option<PathBuf>,
    /// `false`: `torrent_done_seeding_program` is kept but not run; absent = run when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torrent_done_seeding_program_enabled: Option<bool>,
    /// Minutes without a byte moved (downloaded by a download, uploaded by a seed) after which a
    /// torrent no longer holds its place in its queue (it goes on, and the next one starts);
    /// absent = 30, 0 = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_stalled_minutes: Option<u64>,
}

/// How many torrents download at once while the queue is on, when `download_queue_size` is absent.
pub const DEFAULT_DOWNLOAD_QUEUE_SIZE: u32 = 5;
/// How many torrents seed at once while the seeding queue is on, when `seed_queue_size` is absent.
pub const DEFAULT_SEED_QUEUE_SIZE: u32 = 10;
/// Minutes without progress before a queued download stops holding its place, when
/// `queue_stalled_minutes` is absent.
pub const DEFAULT_QUEUE_STALLED_MINUTES: u64 = 30;

/// The embedded tracker listens on every interface, IPv6 and IPv4, so other machines of the LAN
/// reach it (IPv4 alone on a machine without IPv6).
pub const DEFAULT_TRACKER_BIND: &str = "[::]:6969";

/// The tracker written into new torrents when none is named, and how it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultTracker {
    /// The announce URL; empty for none.
    pub url: String,
    /// The address chosen, when `tracker_url` is not set.
    pub chosen: Option<LanAddress>,
}

/// Where the embedded trackers of this process listen whose `tracker_bind` left the port to the
/// system (port 0): the `tracker_bind` asked for and the address bound, while each runs, newest
/// last. An announce URL naming port 0 would lead nowhere.
static TRACKERS_BOUND: std::sync::Mutex<Vec<(SocketAddr, SocketAddr)>> =
    std::sync::Mutex::new(Vec::new());

/// Notes that an embedded tracker bound `bound` for `asked`, a `tracker_bind` with port 0 (any
/// other names its own port and is not noted); [`forget_tracker_bound`] at its end.
pub fn note_tracker_bound(asked: SocketAddr, bound: SocketAddr) {
    if asked.port() == 0 {
        let mut noted = TRACKERS_BOUND.lock().unwrap_or_else(|e| e.into_inner());
        noted.push((asked, bound));
    }
}

/// The end of a tracker [`note_tracker_bound`] noted.
pub fn forget_tracker_bound(asked: SocketAddr, bound: SocketAddr) {
    let mut noted = TRACKERS_BOUND.lock().unwrap_or_else(|e| e.into_inner());
    noted.retain(|n| *n != (asked, bound));
}

fn tracker_bound_for(asked: SocketAddr) -> Option<SocketAddr> {
    let noted = TRACKERS_BOUND.lock().unwrap_or_else(|e| e.into_inner());
    noted
        .iter()
        .rev()
        .find(|(a, _)| *a == asked)
        .map(|(_, b)| *b)
}

impl Settings {
    /// `tracker_url` as set; when it is not set, the embedded tracker's announce URL as other machines
    /// reach it: this machine's LAN address (or `tracker_bind`'s own address, if it names one) and
    /// `tracker_bind`'s port (6969 without one). A `tracker_bind` with port 0 names the port the
    /// embedded tracker of this process bound for it; in a process that runs no such tracker there
    /// is no port to name, and so no default tracker (`""`).
    pub fn default_tracker(&self) -> DefaultTracker {
        if let Some(url) = &self.tracker_url {
            return DefaultTracker {
                url: url.trim().to_string(),
                chosen: None,
            };
        }
        let mut bind = self
            .tracker_bind
            .as_deref()
            .and_then(|b| b.parse::<SocketAddr>().ok())
            .unwrap_or_else(|| DEFAULT_TRACKER_BIND.parse().expect("a socket address"));
        if bind.port() == 0 {
            match tracker_bound_for(bind) {
                Some(bound) => bind.set_port(bound.port()),
                None => {
                    return DefaultTracker {
                        url: String::new(),
                        chosen: None,
                    }
                }
            }
        }
        let (url, addr) = crate::lan::announce_url(bind);
        DefaultTracker {
            url,
            chosen: Some(addr),
        }
    }
}

/// Set to `off` (or `0`, `false`) in the environment, it turns the DHT off whatever torrents.toml
/// says (a sandbox or a CI machine that must not reach the public DHT).
pub const DHT_ENV: &str = "BTORRENT_DHT";
/// Seconds between two looks at followed mutable links when `follow_interval` is not set.
pub const DEFAULT_FOLLOW_INTERVAL: u64 = 600;
/// The same for local service discovery (tests that must not find each other's peers).
pub const LSD_ENV: &str = "BTORRENT_LSD";
/// The same for port forwarding (a machine whose router must not be asked).
pub const PORT_FORWARDING_ENV: &str = "BTORRENT_PORT_FORWARDING";

fn is_true(b: &bool) -> bool {
    *b
}

fn is_default_format(f: &crate::metainfo::Format) -> bool {
    *f == crate::metainfo::Format::default()
}

fn is_default_encryption(e: &crate::engine::Encryption) -> bool {
    *e == crate::engine::Encryption::default()
}

fn is_default_utp(u: &crate::engine::Utp) -> bool {
    *u == crate::engine::Utp::default()
}

/// Whether the environment variable `name` says `off` (or `0`, `false`).
fn env_off(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "off" | "0" | "false"
        )
    })
}

impl Settings {
    /// How many torrents may download at once: `None` while the queue is off.
    pub fn download_queue_limit(&self) -> Option<usize> {
        self.download_queue.then(|| {
            self.download_queue_size
                .unwrap_or(DEFAULT_DOWNLOAD_QUEUE_SIZE) as usize
        })
    }

    /// How many torrents may seed at once: `None` while the seeding queue is off.
    pub fn seed_queue_limit(&self) -> Option<usize> {
        self.seed_queue
            .then(|| self.seed_queue_size.unwrap_or(DEFAULT_SEED_QUEUE_SIZE) as usize)
    }

    /// How long a torrent may move nothing before it stops holding a place in its queue; `None`:
    /// it holds it however long.
    pub fn queue_stalled_after(&self) -> Option<std::time::Duration> {
        match self
            .queue_stalled_minutes
            .unwrap_or(DEFAULT_QUEUE_STALLED_MINUTES)
        {
            0 => None,
            m => Some(std::time::Duration::from_secs(m.saturating_mul(60))),
        }
    }

    /// The alternative limits' schedule as set, on or off (09:00 to 17:00 every day unless set).
    pub fn alt_speed_times(&self) -> crate::alt_speed::Schedule {
        use crate::alt_speed::{Days, TimeOfDay};
        crate::alt_speed::Schedule {
            begin: self.alt_speed_begin.unwrap_or(TimeOfDay(9 * 60)),
            end: self.alt_speed_end.unwrap_or(TimeOfDay(17 * 60)),
            days: self.alt_speed_days.unwrap_or(Days::ALL),
        }
    }

    /// The schedule that sets `alt_speed`, while `alt_speed_time` is on.
    pub fn alt_speed_schedule(&self) -> Option<crate::alt_speed::Schedule> {
        self.alt_speed_time.then(|| self.alt_speed_times())
    }

    /// The session's speed limits in force, bytes per second (`None` = unlimited), upload first: the
    /// alternative ones while `alt_speed` is on.
    pub fn session_limits(&self) -> (Option<u64>, Option<u64>) {
        let (up, down) = if self.alt_speed {
            (self.alt_upload_limit, self.alt_download_limit)
        } else {
            (self.upload_limit, self.download_limit)
        };
        (up.and_then(ByteRate::limit), down.and_then(ByteRate::limit))
    }

    /// Most connections per torrent: `max_peers`, else the engine's default.
    pub fn max_peers_per_torrent(&self) -> usize {
        self.max_peers
            .unwrap_or(crate::engine::SessionConfig::default().max_peers_per_torrent)
            .max(1)
    }

    /// Local service discovery for the peer session: `lsd`, unless `BTORRENT_LSD` turns it off.
    pub fn lsd_enabled(&self) -> bool {
        self.lsd && !env_off(LSD_ENV)
    }

    /// Port forwarding for the peer session: `port_forwarding`, unless `BTORRENT_PORT_FORWARDING`
    /// turns it off.
    pub fn port_forwarding_enabled(&self) -> bool {
        self.port_forwarding && !env_off(PORT_FORWARDING_ENV)
    }

    /// The embedded tracker's port to forward with the peer port, when `tracker_port_forwarding`
    /// asks for it and `tracker_bind` is an address off loopback with a port of its own.
    pub fn tracker_forwarded_port(&self) -> Option<u16> {
        let bind: SocketAddr = self.tracker_bind.as_deref()?.parse().ok()?;
        (self.tracker_port_forwarding && !bind.ip().is_loopback() && bind.port() != 0)
            .then_some(bind.port())
    }

    /// `port_forwarding_gateway` read; an entry that is not an IPv4 address is an error.
    pub fn port_forwarding_gateway_ip(&self) -> Result<Option<std::net::Ipv4Addr>, String> {
        self.port_forwarding_gateway
            .as_deref()
            .map(|g| {
                g.trim()
                    .parse()
                    .map_err(|_| format!("port_forwarding_gateway {g:?} is not an IPv4 address"))
            })
            .transpose()
    }

    /// The DHT settings for the peer session; `None` when `dht` is off (here or by `BTORRENT_DHT`). An
    /// entry of `dht_bootstrap` that is not `host:port` is an error.
    pub fn dht_config(&self) -> Result<Option<crate::engine::DhtConfig>, String> {
        if !self.dht || env_off(DHT_ENV) {
            return Ok(None);
        }
        let mut d = crate::engine::DhtConfig {
            port: self.dht_port,
            ..Default::default()
        };
        if let Some(list) = &self.dht_bootstrap {
            for entry in list {
                let ok = entry
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if !ok {
                    return Err(format!("dht_bootstrap entry {entry:?} is not host:port"));
                }
            }
            d.bootstrap = list.clone();
        }
        Ok(Some(d))
    }
}

/// One bandwidth group of `[settings]`' `bandwidth_groups`: its limits (absent or 0 = unlimited)
/// and whether the session's limits bind its torrents too (absent = true).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_limit: Option<ByteRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_limit: Option<ByteRate>,
    #[serde(default = "honoured", skip_serializing_if = "is_honoured")]
    pub honors_session_limits: bool,
}

/// Whether `r` can be a seeding goal's ratio: a finite number of 0 or more. A negative one would
/// stop every torrent at once, NaN none ever.
pub fn is_ratio(r: f64) -> bool {
    r.is_finite() && r >= 0.0
}

/// A seeding goal's ratio (`seed_ratio_limit`, the session's or a torrent's): [`is_ratio`].
pub(super) fn ratio_goal<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let ratio = Option::<f64>::deserialize(d)?;
    match ratio {
        Some(r) if !is_ratio(r) => Err(serde::de::Error::custom(format!(
            "{r} is not a ratio: a number of 0 or more (1.5: once it uploaded one and a half times its size)"
        ))),
        _ => Ok(ratio),
    }
}

/// `default_trackers`: tiers of tracker URLs, each checked (an empty tier dropped).
fn tracker_tiers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Vec<String>>, D::Error> {
    let tiers = Vec::<Vec<String>>::deserialize(d)?;
    let mut kept = Vec::with_capacity(tiers.len());
    for tier in tiers {
        let mut urls = Vec::with_capacity(tier.len());
        for url in tier.iter().map(|u| u.trim()) {
            btorrent_proto::metainfo::check_tracker_url(url).map_err(|e| {
                serde::de::Error::custom(format!("{url:?} is not a tracker URL: {e}"))
            })?;
            urls.push(url.to_string());
        }
        if !urls.is_empty() {
            kept.push(urls);
        }
    }
    Ok(kept)
}

fn honoured() -> bool {
    true
}

fn is_honoured(b: &bool) -> bool {
    *b
}

impl Default for GroupSettings {
    fn default() -> Self {
        GroupSettings::from(crate::engine::GroupLimits::default())
    }
}

impl GroupSettings {
    /// The engine's limits of the group.
    pub fn engine(&self) -> crate::engine::GroupLimits {
        crate::engine::GroupLimits {
            upload: self.upload_limit.and_then(ByteRate::limit),
            download: self.download_limit.and_then(ByteRate::limit),
            honors_session_limits: self.honors_session_limits,
        }
    }
}

impl From<crate::engine::GroupLimits> for GroupSettings {
    fn from(l: crate::engine::GroupLimits) -> Self {
        GroupSettings {
            upload_limit: l.upload.map(ByteRate),
            download_limit: l.download.map(ByteRate),
            honors_session_limits: l.honors_session_limits,
        }
    }
}

impl Settings {
    /// The bandwidth groups' limits, by name, as the engine takes them.
    pub fn group_limits(&self) -> Vec<(String, crate::engine::GroupLimits)> {
        self.bandwidth_groups
            .iter()
            .map(|(name, g)| (name.clone(), g.engine()))
            .collect()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tracker_url: None,
            tracker_bind: Some(DEFAULT_TRACKER_BIND.into()),
            tracker_private: false,
            tracker_interval: 300,
            listen_port: 6881,
            listen_ip: "::".into(),
            output_dir: "output".into(),
            torrents_dir: "torrents".into(),
            watch_dir: "watch".into(),
            scripts_dir: "scripts".into(),
            watch_quiet_secs: 3,
            torrent_format: Default::default(),
            torrent_mtime: false,
            watch_rescan_secs: 30,
            script_max_operations: 20_000_000,
            upload_limit: None,
            download_limit: None,
            alt_upload_limit: None,
            alt_download_limit: None,
            bandwidth_groups: Default::default(),
            default_trackers: Vec::new(),
            alt_speed: false,
            alt_speed_time: false,
            alt_speed_begin: None,
            alt_speed_end: None,
            alt_speed_days: None,
            max_peers: None,
            max_peers_per_ip: None,
            max_connections: None,
            blocklist: false,
            blocklist_url: None,
            super_seed: None,
            direct_writes: None,
            dht: true,
            lsd: true,
            pex: true,
            rename_partial_files: true,
            port_forwarding: true,
            port_forwarding_gateway: None,
            tracker_port_forwarding: false,
            start_added_torrents: true,
            sequential_download: false,
            encryption: crate::engine::Encryption::default(),
            utp: crate::engine::Utp::default(),
            dht_port: None,
            dht_bootstrap: None,
            follow_interval: None,
            follow_removes: None,
            rpc_bind: None,
            rpc_username: None,
            rpc_password: None,
            rpc_whitelist: None,
            rpc_web_dir: None,
            seed_ratio_limit: None,
            seed_idle_minutes: None,
            download_queue: false,
            download_queue_size: None,
            seed_queue: false,
            seed_queue_size: None,
            incomplete_dir: None,
            incomplete_dir_enabled: None,
            torrent_added_program: None,
            torrent_added_program_enabled: None,
            torrent_done_program: None,
            torrent_done_program_enabled: None,
            torrent_done_seeding_program: None,
            torrent_done_seeding_program_enabled: None,
            queue_stalled_minutes: None,
        }
    }
}

/// A rate in bytes per second, written as a number (`1048576`) or a size in binary units (`"1M"`,
/// `"512K"`, `"10MiB"`). Zero means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRate(pub u64);

impl ByteRate {
    /// The limit in bytes per second; `None` for zero (unlimited).
    pub fn limit(self) -> Option<u64> {
        (self.0 > 0).then_some(self.0)
    }
}

impl Serialize for ByteRate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ByteRate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ByteRate;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes per second: a number or a size such as \"10M\" or \"512K\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteRate, E> {
                u64::try_from(v)
                    .map(ByteRate)
                    .map_err(|_| E::custom(format!("{v} is not a rate (negative)")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteRate, E> {
                Ok(ByteRate(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteRate, E> {
                crate::units::parse_size(v)
                    .map(|n| ByteRate(n as u64))
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<Settings, String> {
        toml::from_str::<Settings>(toml_text).map_err(|e| e.to_string())
    }

    #[test]
    fn default_trackers_are_tiers_of_tracker_urls() {
        let s = parse(
            "default_trackers = [[\" udp://a.example:1337/announce \"], [], [\"http://b/announce\"]]\n",
        )
        .unwrap();
        assert_eq!(
            s.default_trackers,
            [
                vec!["udp://a.example:1337/announce".to_string()],
                vec!["http://b/announce".to_string()]
            ]
        );
        let e = parse("default_trackers = [[\"not a url\"]]\n").unwrap_err();
        assert!(e.contains("\"not a url\" is not a tracker URL"), "{e}");
        assert!(parse("default_trackers = \"http://b/announce\"\n").is_err());
    }

    #[test]
    fn a_ratio_goal_is_a_number_of_0_or_more() {
        assert_eq!(
            parse("seed_ratio_limit = 1.5\n").unwrap().seed_ratio_limit,
            Some(1.5)
        );
        assert_eq!(
            parse("seed_ratio_limit = 0\n").unwrap().seed_ratio_limit,
            Some(0.0)
        );
        assert_eq!(parse("").unwrap().seed_ratio_limit, None);
        for bad in ["-5", "-0.1", "nan", "inf"] {
            let e = parse(&format!("seed_ratio_limit = {bad}\n")).unwrap_err();
            assert!(e.contains("is not a ratio"), "{bad}: {e}");
        }
    }

    #[test]
    fn rates_are_numbers_or_sizes_and_zero_is_unlimited() {
        let s = parse("upload_limit = \"512K\"\ndownload_limit = 1048576\n").unwrap();
        assert_eq!(s.upload_limit, Some(ByteRate(512 << 10)));
        assert_eq!(s.download_limit.and_then(ByteRate::limit), Some(1 << 20));
        let s = parse("upload_limit = 0\n").unwrap();
        assert_eq!(s.upload_limit.and_then(ByteRate::limit), None);
        assert_eq!(Settings::default().download_limit, None);
        let e = parse("download_limit = \"fast\"\n").unwrap_err();
        assert!(e.contains("not a size"), "{e}");
        let e = parse("upload_limit = -5\n").unwrap_err();
        assert!(e.contains("negative"), "{e}");
    }

    #[test]
    fn encryption_allowed_by_default_named_in_lowercase_and_a_bad_name_refused() {
        use crate::engine::Encryption;
        assert_eq!(Settings::default().encryption, Encryption::Allow);
        assert_eq!(
            parse("encryption = \"require\"\n").unwrap().encryption,
            Encryption::Require
        );
        assert_eq!(
            parse("encryption = \"off\"\n").unwrap().encryption,
            Encryption::Off
        );
        let e = parse("encryption = \"sometimes\"\n").unwrap_err();
        assert!(
            e.contains("expected one of `off`, `allow`, `prefer`, `require`"),
            "{e}"
        );
        // The default is not written back into torrents.toml; another value is.
        let text = toml::to_string(&Settings::default()).unwrap();
        assert!(!text.contains("encryption"), "{text}");
        let prefer = Settings {
            encryption: Encryption::Prefer,
            ..Default::default()
        };
        assert!(toml::to_string(&prefer)
            .unwrap()
            .contains("encryption = \"prefer\""));
    }

    #[test]
    fn torrent_format_v1_by_default_named_in_lowercase_and_a_bad_name_refused() {
        use crate::metainfo::Format;
        assert_eq!(Settings::default().torrent_format, Format::V1);
        for (name, f) in [("v2", Format::V2), ("hybrid", Format::Hybrid)] {
            let text = format!("torrent_format = \"{name}\"\n");
            assert_eq!(parse(&text).unwrap().torrent_format, f);
            let s = Settings {
                torrent_format: f,
                ..Default::default()
            };
            assert!(toml::to_string(&s).unwrap().contains(&text));
        }
        let e = parse("torrent_format = \"v3\"\n").unwrap_err();
        assert!(e.contains("expected one of `v1`, `v2`, `hybrid`"), "{e}");
        let text = toml::to_string(&Settings::default()).unwrap();
        assert!(!text.contains("torrent_format"), "{text}");
    }

    #[test]
    fn utp_allowed_by_default_and_written_back_only_when_changed() {
        use crate::engine::Utp;
        assert_eq!(Settings::default().utp, Utp::Allow);
        assert_eq!(parse("utp = \"prefer\"\n").unwrap().utp, Utp::Prefer);
        assert_eq!(parse("utp = \"off\"\n").unwrap().utp, Utp::Off);
        let e = parse("utp = \"maybe\"\n").unwrap_err();
        assert!(
            e.contains("expected one of `off`, `allow`, `prefer`"),
            "{e}"
        );
        let text = toml::to_string(&Settings::default()).unwrap();
        assert!(!text.lines().any(|l| l.starts_with("utp")), "{text}");
        let off = Settings {
            utp: Utp::Off,
            ..Default::default()
        };
        assert!(toml::to_string(&off).unwrap().contains("utp = \"off\""));
    }

    #[test]
    fn dht_on_by_default_with_the_public_routers_and_bootstrap_entries_checked() {
        let d = Settings::default();
        assert!(d.dht);
        if std::env::var_os(DHT_ENV).is_none() {
            let c = d.dht_config().unwrap().unwrap();
            assert_eq!(c.port, None);
            assert!(c
                .bootstrap
                .contains(&"router.bittorrent.com:6881".to_string()));
        }
        let s = parse("dht = false\n").unwrap();
        assert_eq!(s.dht_config().unwrap().map(|_| ()), None);
        let s =
            parse("dht_port = 7000\ndht_bootstrap = [\"10.0.0.1:6881\", \"node.example:25401\"]\n")
                .unwrap();
        if let Some(c) = s.dht_config().unwrap() {
            assert_eq!(c.port, Some(7000));
            assert_eq!(c.bootstrap.len(), 2);
        }
        let e = parse("dht_bootstrap = [\"router.example\"]\n")
            .unwrap()
            .dht_config()
            .unwrap_err();
        assert_eq!(e, "dht_bootstrap entry \"router.example\" is not host:port");
    }

    #[test]
    fn tracker_url_as_set_or_the_lan_address_of_the_embedded_tracker() {
        let lan = crate::lan::lan_address();
        let d = Settings::default().default_tracker();
        assert_eq!(d.url, format!("http://{}:6969/announce", lan.ip));
        assert_eq!(d.chosen, Some(lan.clone()));
        let s = parse("tracker_bind = \"0.0.0.0:7070\"\n").unwrap();
        assert_eq!(
            s.default_tracker().url,
            format!("http://{}:7070/announce", lan.ip)
        );
        let s = parse("tracker_bind = \"127.0.0.1:6969\"\n").unwrap();
        assert_eq!(s.default_tracker().url, "http://127.0.0.1:6969/announce");
        let s = parse("tracker_url = \"http://t:1/announce\"\n").unwrap();
        let d = s.default_tracker();
        assert_eq!((d.url.as_str(), d.chosen), ("http://t:1/announce", None));
        assert_eq!(
            parse("tracker_url = \"\"\n").unwrap().default_tracker().url,
            ""
        );
    }

    /// `tracker_bind` with port 0: the port the embedded tracker bound, while it runs; none when
    /// no tracker of this process bound for it (an announce URL with port 0 leads nowhere).
    #[test]
    fn a_tracker_bound_on_any_port_is_announced_on_the_port_it_got() {
        let s = parse("tracker_bind = \"127.0.0.7:0\"\n").unwrap();
        let asked: SocketAddr = "127.0.0.7:0".parse().unwrap();
        assert_eq!(s.default_tracker().url, "");
        let bound: SocketAddr = "127.0.0.7:41234".parse().unwrap();
        note_tracker_bound(asked, bound);
        assert_eq!(s.default_tracker().url, "http://127.0.0.7:41234/announce");
        // Another address's tracker is not this one's, and its end leaves this one.
        let other = parse("tracker_bind = \"127.0.0.8:0\"\n").unwrap();
        assert_eq!(other.default_tracker().url, "");
        let (other_asked, other_bound) = (
            "127.0.0.8:0".parse().unwrap(),
            "127.0.0.8:5".parse().unwrap(),
        );
        note_tracker_bound(other_asked, other_bound);
        forget_tracker_bound(other_asked, other_bound);
        assert_eq!(s.default_tracker().url, "http://127.0.0.7:41234/announce");
        forget_tracker_bound(asked, bound);
        assert_eq!(s.default_tracker().url, "");
    }
}
