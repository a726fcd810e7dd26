//! The Transmission-compatible remote control: `POST /transmission/rpc` speaking Transmission's RPC
//! (3.00's, with 4.x's additions, and 4.1's JSON-RPC 2.0 form: so `transmission-remote`,
//! Transmission's web clients and the *arr download-client settings drive btorrent), our own page
//! at `/`, and `GET /metrics` in the Prometheus text format, served on `rpc_bind`.
//!
//! - [`server`]: the HTTP side (routes, body and rate caps, start and stop);
//! - [`jsonrpc`]: Transmission 4.1's JSON-RPC 2.0 and snake_case names, translated to and from
//!   the older ones the methods speak;
//! - [`guard`]: whitelist, basic authentication and the session-id (CSRF) handshake;
//! - [`password`]: the RPC password as torrents.toml keeps it;
//! - [`session`]: `session-get/set`, `session-stats`, `free-space`;
//! - [`port_test`]: `port-test`, dialling our own peer port;
//! - [`torrents`]: the torrent methods (`torrent-add/start/stop/verify/reannounce/remove/set`,
//!   `-set-location`, `-rename-path`) and `queue-move-*`;
//! - [`fetching`]: magnet links added and waiting for their metadata (listed, paused, removed,
//!   recorded across restarts);
//! - [`fields`]: `torrent-get`'s fields computed from the engine's live state, and the torrent ids;
//! - [`files`]: choosing files (`torrent-set`/`torrent-add` keys, `torrent-get` file fields);
//! - [`goals`]: seeding goals (`torrent-set`/`session-set` keys, their `-get` fields);
//! - [`groups`]: bandwidth groups (`group-get`, `group-set`, a torrent's `group`);
//! - [`alt_speed`]: the alternative speed limits' and their schedule's `session-get`/`session-set` fields;
//! - [`blocklist`]: the blocklist's `session-get`/`session-set` fields and `blocklist-update`;
//! - [`hooks`]: the programs run on torrent events, `session-get`/`session-set`'s `script-torrent-*`;
//! - [`queue`]: the download and seeding queues' `session-get`/`session-set` fields;
//! - [`trackers`]: editing trackers (`torrent-set`'s `trackerList`, `trackerAdd`, `trackerRemove`,
//!   `trackerReplace`);
//! - [`metrics`]: what `/metrics` reports;
//! - [`page`]: our own page at `/` (torrents, adding, pausing, removing, files, the tracker);
//! - [`web`]: a Transmission web client's files (`rpc_web_dir`) at `/transmission/web/`.
//!
//! Actions go through the same functions the shell's commands use ([`crate::actions`]), so
//! torrents.toml stays the one record of what is managed.

pub mod alt_speed;
pub mod blocklist;
pub mod fetching;
pub mod fields;
pub mod files;
pub mod goals;
pub mod groups;
pub mod guard;
pub mod hooks;
pub mod jsonrpc;
pub mod metrics;
pub mod page;
pub mod password;
pub mod port_test;
pub mod queue;
pub mod server;
pub mod session;
pub mod torrent_metrics;
pub mod torrents;
pub mod totals;
pub mod trackers;
pub mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

use crate::engine::Priority;
use crate::services::PeerSlot;
use crate::tracker::Tracker;

pub use server::RpcServer;

/// What every method can reach.
pub struct Rpc {
    pub config_path: PathBuf,
    pub peer: PeerSlot,
    /// The embedded tracker, for `/metrics`.
    pub tracker: Option<Tracker>,
    pub ids: fields::Ids,
    /// Magnet links added whose metadata is being fetched.
    pub fetching: fetching::Fetching,
    pub started: Instant,
    /// `session-stats`' figures, kept across runs.
    pub totals: totals::Totals,
    pub guard: guard::Guard,
    /// `rpc_web_dir`, resolved.
    pub web_dir: Option<PathBuf>,
    /// Cancelled by `session-close`: the daemon or shell serving the RPC closes, as on SIGTERM.
    pub close: tokio_util::sync::CancellationToken,
}

/// A method's outcome: its `arguments`, or the `result` string saying what went wrong.
pub type Outcome = Result<Map<String, Value>, String>;

/// Whether a request's `args` name any of `keys` (a method's group of settings: its goals, its
/// queue, its trackers...).
pub fn any_key(args: &Map<String, Value>, keys: &[&str]) -> bool {
    keys.iter().any(|k| args.contains_key(*k))
}

/// A request's switch `key`: `None` when it is absent (or null); anything but `true` or `false` is
/// refused by name.
pub fn switch_arg(args: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(format!("{key} must be true or false, not {v}")),
    }
}

/// A request's count of peers `key` (a peer limit): `None` when it is absent (or null); anything
/// but a whole number from 1 to [`MAX_PEER_LIMIT`](crate::config::MAX_PEER_LIMIT) is refused by
/// name.
pub fn peers_arg(args: &Map<String, Value>, key: &str) -> Result<Option<usize>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n @ 1..=crate::config::MAX_PEER_LIMIT) => Ok(Some(n as usize)),
            _ => Err(format!(
                "{key} must be a whole number of peers, 1 to {}, not {v}",
                crate::config::MAX_PEER_LIMIT
            )),
        },
    }
}

/// How [`Rpc::call`] refuses a method it does not have (the start of its message).
pub const UNKNOWN_METHOD: &str = "method name not recognized";

/// Transmission's `bandwidthPriority` key (`transmission-remote -Bh`, `-Bn`, `-Bl`).
pub const BANDWIDTH_PRIORITY: &str = "bandwidthPriority";

/// A request's `bandwidthPriority`: `None` when it is absent (or null); anything but -1 (low),
/// 0 (normal) or 1 (high) is refused by name.
pub fn priority_arg(args: &Map<String, Value>) -> Result<Option<Priority>, String> {
    match args.get(BANDWIDTH_PRIORITY) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(-1) => Ok(Some(Priority::Low)),
            Some(0) => Ok(Some(Priority::Normal)),
            Some(1) => Ok(Some(Priority::High)),
            _ => Err(format!(
                "{BANDWIDTH_PRIORITY} must be -1 (low), 0 (normal) or 1 (high), not {v}"
            )),
        },
    }
}

/// A bandwidth priority as Transmission numbers it.
pub fn priority_number(p: Priority) -> i64 {
    match p {
        Priority::Low => -1,
        Priority::Normal => 0,
        Priority::High => 1,
    }
}

/// Longest reason a refused request is answered with: a value it echoes is cut (an ellipsis
/// marks the cut), and control characters are replaced, so a client shows it on one line.
pub const MAX_REASON_CHARS: usize = 1000;

impl Rpc {
    /// Answers one request's `method` with its `arguments`; a refusal is one line of at most
    /// [`MAX_REASON_CHARS`].
    /// `local` is the address the request came in on (where `port-test` dials our peer port).
    pub async fn call(
        self: &Arc<Self>,
        method: &str,
        args: &Map<String, Value>,
        local: std::net::SocketAddr,
    ) -> Outcome {
        self.dispatch(method, args, local)
            .await
            .map_err(|why| btorrent_proto::text::shown(why.as_bytes(), MAX_REASON_CHARS))
    }

    async fn dispatch(
        self: &Arc<Self>,
        method: &str,
        args: &Map<String, Value>,
        local: std::net::SocketAddr,
    ) -> Outcome {
        let args = &earlier_spellings(args);
        match method {
            "session-get" => session::get(self, args).await,
            "session-set" => session::set(self, args).await,
            "session-stats" => session::stats(self).await,
            "free-space" => session::free_space(args),
            "port-test" => port_test::answer(self, args, local.ip()).await,
            "session-close" => {
                tracing::info!("session-close over the RPC: closing");
                self.close.cancel();
                Ok(Map::new())
            }
            "blocklist-update" => blocklist::update(self).await,
            "torrent-get" => fields::torrent_get(self, args).await,
            "torrent-add" => torrents::add(self, args).await,
            "torrent-start" => torrents::start(self, args).await,
            "torrent-start-now" => torrents::start_now(self, args).await,
            "torrent-stop" => torrents::stop(self, args).await,
            "torrent-verify" => torrents::verify(self, args).await,
            "torrent-reannounce" => torrents::reannounce(self, args).await,
            "torrent-remove" => torrents::remove(self, args).await,
            "torrent-set" => torrents::set(self, args).await,
            "torrent-set-location" => torrents::set_location(self, args).await,
            "torrent-rename-path" => torrents::rename_path(self, args).await,
            "group-get" => groups::get(self, args),
            "group-set" => groups::set(self, args).await,
            m if m.starts_with("queue-move-") => torrents::queue_move(self, m, args).await,
            "" => Err("no method given".into()),
            other => Err(format!("{UNKNOWN_METHOD}: {other}")),
        }
    }
}

/// Spellings of keys new in Transmission 4.1 that btorrent took before 4.1 settled on snake_case,
/// and the names now used.
const EARLIER_SPELLINGS: [(&str, &str); 4] = [
    ("sequentialDownload", "sequential_download"),
    (
        "sequentialDownloadFromPiece",
        "sequential_download_from_piece",
    ),
    ("ipProtocol", "ip_protocol"),
    ("preferred-transports", "preferred_transports"),
];

/// The name `key` has now, when it is one of [`EARLIER_SPELLINGS`]; else `key`.
pub(crate) fn spelled_now(key: &str) -> &str {
    EARLIER_SPELLINGS
        .iter()
        .find(|(old, _)| *old == key)
        .map_or(key, |(_, new)| new)
}

/// `args` with [`EARLIER_SPELLINGS`] under their names now (a request, or one kept by a magnet
/// link's entry from before). `torrent-get` answers a field under the name it was asked by.
pub(crate) fn earlier_spellings(
    args: &Map<String, Value>,
) -> std::borrow::Cow<'_, Map<String, Value>> {
    if !EARLIER_SPELLINGS
        .iter()
        .any(|(old, _)| args.contains_key(*old))
    {
        return std::borrow::Cow::Borrowed(args);
    }
    let mut out = args.clone();
    for (old, new) in EARLIER_SPELLINGS {
        if let Some(v) = out.remove(old) {
            out.entry(new).or_insert(v);
        }
    }
    std::borrow::Cow::Owned(out)
}
