//! `torrent-get`: the torrent ids (stable while the RPC server runs), the `ids` argument, and every
//! field Transmission 3.00 defines (and Transmission 4's `file-count`, `percentComplete`,
//! `primary-mime-type`, and 4.1's `sequential_download` and `sequential_download_from_piece`,
//! also answered by their earlier names `sequentialDownload` and `sequentialDownloadFromPiece`),
//! computed from the engine's live state and
//! torrents.toml.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{Outcome, Rpc};
use crate::config::{Config, ManagedTorrent};
use crate::engine::{TorrentHandle, TorrentState, TorrentStats};
use crate::types::InfoHash;

/// How long a torrent counts as recently active after its last transfer, and a removal as recent.
const RECENT: Duration = Duration::from_secs(60);

/// Torrent ids: each torrent gets the next number the first time the RPC sees it, and keeps it
/// until the server stops.
#[derive(Default)]
pub struct Ids {
    inner: parking_lot::Mutex<IdTable>,
}

#[derive(Default)]
struct IdTable {
    by_hash: HashMap<InfoHash, i64>,
    next: i64,
    /// Torrents seen at the last look, to notice removals.
    present: HashMap<InfoHash, i64>,
    removed: Vec<(i64, Instant)>,
    active: HashMap<InfoHash, Instant>,
    /// What each torrent looked like at the last look (status, pieces, peers): a change counts as
    /// activity, so a client polling `recently-active` sees a pause made elsewhere.
    looks: HashMap<InfoHash, Look>,
}

impl IdTable {
    fn id_for(&mut self, ih: &InfoHash) -> i64 {
        if let Some(&id) = self.by_hash.get(ih) {
            return id;
        }
        self.next += 1;
        self.by_hash.insert(*ih, self.next);
        self.next
    }
}

/// What a torrent looks like to a client: status, pieces, peers.
type Look = (i64, usize, usize);

fn look_of(s: &TorrentStats) -> Look {
    (status_code(&s.state), s.pieces_have, s.peers)
}

/// A torrent is active when it moves data, checks it, or looks different from the last look.
fn is_activity(before: Option<Look>, s: &TorrentStats) -> bool {
    before != Some(look_of(s))
        || s.down_rate > 0
        || s.up_rate > 0
        || s.state == TorrentState::Checking
}

pub use crate::engine::clock::unix_now;

impl Ids {
    /// The session's torrents with their ids, in id order; also records what changed since the
    /// last look (removals, activity, completion).
    pub fn refresh(&self, torrents: Vec<TorrentHandle>) -> Vec<(i64, TorrentHandle, TorrentStats)> {
        let mut t = self.inner.lock();
        let mut sorted: Vec<(TorrentHandle, TorrentStats)> = torrents
            .into_iter()
            .map(|h| {
                let s = h.stats();
                (h, s)
            })
            .collect();
        sorted.sort_by_key(|(h, _)| h.info_hash());
        let mut out = Vec::with_capacity(sorted.len());
        let mut present = HashMap::new();
        let now = Instant::now();
        for (h, s) in sorted {
            let ih = h.info_hash();
            let id = t.id_for(&ih);
            let look = look_of(&s);
            let before = t.looks.insert(ih, look);
            if is_activity(before, &s) {
                t.active.insert(ih, now);
            }
            present.insert(ih, id);
            out.push((id, h, s));
        }
        let gone: Vec<i64> = t
            .present
            .iter()
            .filter(|(ih, _)| !present.contains_key(*ih))
            .map(|(_, &id)| id)
            .collect();
        t.removed.extend(gone.into_iter().map(|id| (id, now)));
        t.removed.retain(|(_, at)| now.duration_since(*at) < RECENT);
        t.looks.retain(|ih, _| present.contains_key(ih));
        t.present = present;
        out.sort_by_key(|(id, _, _)| *id);
        out
    }

    /// The id of `ih`, given now if it has none (a torrent the RPC lists before it runs).
    pub fn id_for(&self, ih: &InfoHash) -> i64 {
        self.inner.lock().id_for(ih)
    }

    /// Records that the torrent `id`, which never ran, was removed (`recently-active` reports it).
    pub fn removed(&self, id: i64) {
        self.inner.lock().removed.push((id, Instant::now()));
    }

    fn recently_active(&self, ih: &InfoHash) -> bool {
        self.inner
            .lock()
            .active
            .get(ih)
            .is_some_and(|at| at.elapsed() < RECENT)
    }

    fn recently_removed(&self) -> Vec<i64> {
        self.inner
            .lock()
            .removed
            .iter()
            .map(|(id, _)| *id)
            .collect()
    }
}

/// What an `ids` argument names: absent = all; a number; a list of numbers and info-hash strings
/// (an empty one names none, as Transmission reads it: a client whose selection came out empty
/// acts on nothing, never on every torrent); or `"recently-active"`.
pub enum Which {
    All,
    RecentlyActive,
    These(Vec<Value>),
}

impl Which {
    pub fn of(args: &Map<String, Value>) -> Result<Which, String> {
        match args.get("ids") {
            None | Some(Value::Null) => Ok(Which::All),
            Some(Value::String(s)) if s == "recently-active" => Ok(Which::RecentlyActive),
            Some(Value::Array(list)) => {
                if let Some(bad) = list.iter().find(|v| !v.is_number() && !v.is_string()) {
                    return Err(format!("ids: {bad} is neither a torrent id nor an info-hash"));
                }
                Ok(Which::These(list.clone()))
            }
            Some(v @ (Value::Number(_) | Value::String(_))) => Ok(Which::These(vec![v.clone()])),
            Some(other) => Err(format!(
                "ids must be a number, a list of ids and info-hashes, or \"recently-active\", not {other}"
            )),
        }
    }

    /// Whether it names the torrent `id` with info-hash `ih` (`active`: recently active).
    pub fn names(&self, id: i64, ih: &InfoHash, active: impl FnOnce() -> bool) -> bool {
        match self {
            Which::All => true,
            Which::RecentlyActive => active(),
            Which::These(list) => list.iter().any(|v| match v {
                Value::Number(n) => n.as_i64() == Some(id),
                Value::String(s) => {
                    s.eq_ignore_ascii_case(&ih.to_hex()) || s.parse::<i64>().ok() == Some(id)
                }
                _ => false,
            }),
        }
    }
}

/// The running torrents an `ids` argument names ([`Which`]); magnets still being fetched are
/// [`super::fetching`]'s.
pub async fn select(
    rpc: &Arc<Rpc>,
    args: &Map<String, Value>,
) -> Result<Vec<(i64, TorrentHandle, TorrentStats)>, String> {
    let which = Which::of(args)?;
    let torrents = match rpc.peer.get().await {
        Some(s) => s.torrents(),
        None => Vec::new(),
    };
    let all = rpc.ids.refresh(torrents);
    Ok(all
        .into_iter()
        .filter(|(id, h, _)| {
            let ih = h.info_hash();
            which.names(*id, &ih, || rpc.ids.recently_active(&ih))
        })
        .collect())
}

/// `torrent-get`.
pub async fn torrent_get(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    let Some(Value::Array(fields)) = args.get("fields") else {
        return Err("torrent-get needs \"fields\", a list of field names".into());
    };
    let fields: Vec<&str> = fields.iter().filter_map(Value::as_str).collect();
    let table = match args.get("format").and_then(Value::as_str) {
        None | Some("objects") => false,
        Some("table") => true,
        Some(other) => {
            return Err(format!(
                "format must be \"objects\" or \"table\", not {other:?}"
            ))
        }
    };
    // First: it waits for a magnet's torrent being added, which `selected` then includes.
    let fetching = super::fetching::select(rpc, args).await?;
    let selected = select(rpc, args).await?;
    // What torrents.toml says now (one `stat`), so a one-shot command's change shows at once.
    let cfg = rpc.peer.torrents().fresh().ok();
    let ctx = FieldCtx {
        cfg: cfg.as_deref(),
    };
    // Each managed torrent's entry and place in the queue, found once per request rather than by a
    // scan of the list for every field of every torrent.
    let listed: HashMap<InfoHash, (usize, &ManagedTorrent)> = ctx
        .cfg
        .map(|c| {
            c.torrents
                .iter()
                .enumerate()
                .filter_map(|(i, e)| Some((e.hash()?, (i, e))))
                .collect()
        })
        .unwrap_or_default();
    let mut rows = Vec::with_capacity(selected.len() + fetching.len());
    for (id, h, s) in &selected {
        let t = One {
            id: *id,
            h,
            s,
            have: h.have(),
            listed: listed.get(&h.info_hash()).copied(),
        };
        let mut m = Map::new();
        for f in &fields {
            if let Some(v) = ctx.field(&t, f) {
                m.insert((*f).to_string(), v);
            }
        }
        rows.push((*id, m));
    }
    // Magnets still fetching their metadata, in their place by id.
    let managed = cfg.as_ref().map_or(0, |c| c.torrents.len()) as i64;
    for (id, ih) in fetching {
        let mut m = Map::new();
        for f in &fields {
            if let Some(v) = rpc.fetching.field(&ih, f, managed + id - 1) {
                m.insert((*f).to_string(), v);
            }
        }
        rows.push((id, m));
    }
    rows.sort_by_key(|(id, _)| *id);
    let rows = rows.into_iter().map(|(_, m)| m);
    let mut out = Map::new();
    let torrents = if table {
        let mut t = vec![json!(fields)];
        t.extend(rows.map(|m| {
            Value::Array(
                fields
                    .iter()
                    .map(|f| m.get(*f).cloned().unwrap_or(Value::Null))
                    .collect(),
            )
        }));
        t
    } else {
        rows.map(Value::Object).collect()
    };
    out.insert("torrents".into(), Value::Array(torrents));
    if args.get("ids").and_then(Value::as_str) == Some("recently-active") {
        out.insert("removed".into(), json!(rpc.ids.recently_removed()));
    }
    Ok(out)
}

struct FieldCtx<'a> {
    cfg: Option<&'a Config>,
}

struct One<'a> {
    id: i64,
    h: &'a TorrentHandle,
    s: &'a TorrentStats,
    have: crate::wire::Bitfield,
    /// Its place in torrents.toml (the queue's order) and its entry, when managed.
    listed: Option<(usize, &'a ManagedTorrent)>,
}

impl<'a> One<'a> {
    fn entry(&self) -> Option<&'a ManagedTorrent> {
        self.listed.map(|(_, e)| e)
    }

    /// When it was added (Unix seconds; 0 when not known).
    fn added_date(&self) -> i64 {
        unix(
            self.entry()
                .and_then(|e| humantime::parse_rfc3339_weak(&e.added).ok()),
        )
    }

    /// Transmission's status: the engine's, but 3 (waiting to download) or 5 (waiting to seed)
    /// for a torrent paused by a queue ([`crate::queue`]), and 4 (downloading) for one complete
    /// whose data has still to move out of the incomplete folder ([`crate::incomplete`]), unless
    /// its user paused it.
    fn status(&self) -> i64 {
        match self.entry() {
            Some(e)
                if e.complete_dir.is_some()
                    && e.state != "paused"
                    && self.s.bytes_left == 0
                    && !matches!(self.s.state, TorrentState::Error(_)) =>
            {
                status_code(&TorrentState::Downloading)
            }
            Some(e)
                if e.state == crate::actions::QUEUED && self.s.state == TorrentState::Paused =>
            {
                match crate::queue::Direction::of(self.s) {
                    Some(crate::queue::Direction::Seed) => SEED_WAIT_STATUS,
                    // Not yet checked: waiting to download until it is known to be complete.
                    _ => DOWNLOAD_WAIT_STATUS,
                }
            }
            _ => status_code(&self.s.state),
        }
    }
}

/// Transmission's status of a torrent waiting in the download queue.
pub const DOWNLOAD_WAIT_STATUS: i64 = 3;
/// Transmission's status of a torrent waiting in the seeding queue.
pub const SEED_WAIT_STATUS: i64 = 5;

/// Transmission's status codes of the engine's states: 0 stopped, 2 checking, 4 downloading,
/// 6 seeding (3 and 5, waiting in a queue, come from torrents.toml; btorrent has no 1, waiting to
/// check: checks run at once, bounded by the disk's own queue).
pub fn status_code(s: &TorrentState) -> i64 {
    match s {
        TorrentState::Paused | TorrentState::Error(_) => 0,
        TorrentState::Checking => 2,
        TorrentState::Downloading => 4,
        TorrentState::Seeding => 6,
    }
}

/// A time as Transmission sends it: Unix seconds, 0 for never.
fn unix(t: Option<SystemTime>) -> i64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

/// The scrape URL of an announce URL (BEP 48's convention), or "" when it has none.
fn scrape_of(url: &str) -> String {
    match url.rfind("/announce") {
        Some(i) => format!("{}/scrape{}", &url[..i], &url[i + "/announce".len()..]),
        None => String::new(),
    }
}

/// The tier of `url` among `tiers` (its position `fallback` when no tier names it).
fn tier_of(tiers: &[Vec<String>], url: &str, fallback: usize) -> usize {
    tiers
        .iter()
        .position(|tier| tier.iter().any(|u| u == url))
        .unwrap_or(fallback)
}

/// One `trackerStats` entry from what the torrent's announce task recorded.
fn tracker_stat(
    id: usize,
    tier: usize,
    url: &str,
    st: &crate::engine::TrackerStatus,
    s: &TorrentStats,
) -> Value {
    // Transmission's states: 0 inactive, 1 waiting, 2 queued, 3 announcing now.
    let announcing = st.last_start.is_some() && st.last_start > st.last_done;
    let state = match s.state {
        TorrentState::Paused | TorrentState::Error(_) => 0,
        _ if announcing => 3,
        _ => 1,
    };
    let count = |c: Option<u64>| c.map_or(-1, |c| c as i64);
    json!({
        "announce": url, "id": id, "tier": tier, "host": host_of(url), "scrape": scrape_of(url),
        "sitename": sitename(url),
        "announceState": state, "scrapeState": 0, "isBackup": false,
        "hasAnnounced": st.last_done.is_some(),
        "lastAnnounceStartTime": unix(st.last_start),
        "lastAnnounceTime": unix(st.last_done),
        "lastAnnounceSucceeded": st.last_ok,
        "lastAnnounceTimedOut": !st.last_ok && st.last_result.contains("timed out"),
        "lastAnnounceResult": st.last_result,
        "lastAnnouncePeerCount": st.last_peers,
        "nextAnnounceTime": if state == 0 { 0 } else { unix(st.next) },
        "seederCount": count(st.seeders), "leecherCount": count(st.leechers),
        "downloadCount": count(st.downloaded),
        // Those leechers still downloading (BEP 21; rpc-version 18), from trackers that count them.
        "downloader_count": count(st.downloaders),
        // btorrent does not scrape: the counts come with the announces.
        "hasScraped": false, "lastScrapeResult": "", "lastScrapeStartTime": 0,
        "lastScrapeSucceeded": false, "lastScrapeTime": 0, "lastScrapeTimedOut": false,
        "nextScrapeTime": 0,
    })
}

/// A tracker's site name (Transmission 4's `sitename`): the first label of its registrable domain
/// (`tracker.example.co.uk` is `example`), an IP address as it is. Transmission asks the public
/// suffix list; two labels are taken here, three when the second-level label under a two-letter
/// country code is one of the common public ones (`co`, `com`, `org`, `net`, `ac`, `gov`, `edu`...).
pub fn sitename(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let hostport = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_string();
    }
    let host = hostport.split(':').next().unwrap_or(hostport);
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    const SECOND_LEVEL: [&str; 12] = [
        "co", "com", "org", "net", "ac", "gov", "edu", "ne", "or", "go", "ltd", "plc",
    ];
    let labels: Vec<&str> = host.split('.').collect();
    let n = labels.len();
    let public = match labels.as_slice() {
        [.., second, cc] if n >= 3 && cc.len() == 2 && SECOND_LEVEL.contains(second) => 2,
        _ if n >= 2 => 1,
        _ => 0,
    };
    labels[n - 1 - public].to_string()
}

/// One web seed as `webseeds_ex` lists it.
pub(crate) fn webseed_ex(url: &str, downloading: bool, rate: u64) -> Value {
    json!({"url": url, "is_downloading": downloading, "download_bytes_per_second": rate})
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split(['/', '?']).next().unwrap_or(rest);
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    format!("{scheme}://{hostport}")
}

impl FieldCtx<'_> {
    /// The torrent's place in the queues: its entry's in torrents.toml; after every
    /// managed torrent, by id, for one that is not managed.
    fn queue_position(&self, t: &One) -> i64 {
        match t.listed {
            Some((i, _)) => i as i64,
            None => self.cfg.map_or(0, |c| c.torrents.len()) as i64 + t.id - 1,
        }
    }

    fn field(&self, t: &One, f: &str) -> Option<Value> {
        let (h, s) = (t.h, t.s);
        let meta = h.meta();
        let ih = h.info_hash();
        // Over the wanted files, as Transmission counts them.
        let left = s.bytes_left;
        // A field asked by an earlier spelling is read as its name now (and answered as asked).
        let v = match super::spelled_now(f) {
            "id" => json!(t.id),
            "hashString" => json!(ih.to_hex()),
            // As torrents.toml lists it: its top folder's name, once that was renamed.
            "name" => json!(t.entry().map_or(h.name(), |e| e.name.as_str())),
            "totalSize" => json!(s.bytes_total),
            "sizeWhenDone" => json!(s.bytes_wanted),
            "leftUntilDone" => json!(left),
            "desiredAvailable" => json!(h.desired_available()),
            "availability" => json!(h.availability()),
            "haveValid" => json!(s.bytes_verified),
            "haveUnchecked" | "corruptEver" => json!(0),
            "percentDone" => json!(s.progress()),
            "metadataPercentComplete" => json!(1.0),
            "recheckProgress" => json!(s.check_progress()),
            "rateDownload" => json!(s.down_rate),
            "rateUpload" => json!(s.up_rate),
            "downloadedEver" => json!(s.downloaded),
            "uploadedEver" => json!(s.uploaded),
            "uploadRatio" => json!(if s.downloaded > 0 {
                s.uploaded as f64 / s.downloaded as f64
            } else if s.bytes_total > 0 {
                s.uploaded as f64 / s.bytes_total as f64
            } else {
                -1.0
            }),
            "eta" => json!(match left.checked_div(s.down_rate) {
                _ if left == 0 => -1,
                None => -2,
                Some(secs) => secs as i64,
            }),
            "etaIdle" => json!(-1),
            "status" => json!(t.status()),
            "error" => json!(if matches!(s.state, TorrentState::Error(_)) {
                3
            } else {
                0
            }),
            "errorString" => json!(match &s.state {
                TorrentState::Error(e) => e.clone(),
                _ => String::new(),
            }),
            "isStalled" => json!(
                s.state == TorrentState::Downloading && s.peers == 0 && s.web_seeds_sending == 0
            ),
            "isPrivate" => json!(meta.info.private),
            "peersConnected" => json!(s.peers),
            "peersGettingFromUs" => json!(h.peers().iter().filter(|p| p.up_rate > 0).count()),
            "peersSendingToUs" => json!(h.peers().iter().filter(|p| p.down_rate > 0).count()),
            "webseedsSendingToUs" => json!(s.web_seeds_sending),
            "peer-limit" | "maxConnectedPeers" => {
                json!(h.limits().max_peers.unwrap_or_else(|| self.cfg.map_or_else(
                    || crate::config::Settings::default().max_peers_per_torrent(),
                    |c| c.settings.max_peers_per_torrent()
                )))
            }
            "peersFrom" => peers_from(&h.peers()),
            "peers" => Value::Array(
                h.peers()
                    .iter()
                    .map(|p| {
                        json!({
                            "address": p.addr.ip().to_string(),
                            "port": p.addr.port(),
                            "clientName": p.client.clone().unwrap_or_default(),
                            "clientIsChoked": p.peer_choking,
                            "clientIsInterested": p.am_interested,
                            "flagStr": p.flags(),
                            "isDownloadingFrom": p.down_rate > 0,
                            "isEncrypted": p.encrypted,
                            "isIncoming": !p.outgoing,
                            "isUploadingTo": p.up_rate > 0,
                            "isUTP": p.utp,
                            "peerIsChoked": p.am_choking,
                            "peerIsInterested": p.peer_interested,
                            "progress": p.progress,
                            "rateToClient": p.down_rate,
                            "rateToPeer": p.up_rate,
                            // Transmission 4.1's, named alike in both forms of the RPC.
                            "peer_id": base64::engine::general_purpose::STANDARD.encode(p.peer_id),
                            "bytes_to_client": p.downloaded,
                            "bytes_to_peer": p.uploaded,
                        })
                    })
                    .collect(),
            ),
            "file-count" | "fileCount" => json!(super::files::count(&meta.info)),
            "primary-mime-type" => json!(super::files::primary_mime_type(&meta.info)),
            "percentComplete" => json!(if s.bytes_total == 0 {
                1.0
            } else {
                s.bytes_verified as f64 / s.bytes_total as f64
            }),
            "sequential_download" => json!(s.sequential),
            "sequential_download_from_piece" => json!(s.sequential_from),
            "pieceCount" => json!(meta.info.piece_count()),
            "pieceSize" => json!(meta.info.piece_length),
            "pieces" => json!(base64::engine::general_purpose::STANDARD.encode(t.have.as_bytes())),
            "files" | "fileStats" | "wanted" | "priorities" => {
                super::files::field(f, &h.files(), &meta.info)?
            }
            "trackerList" => json!(super::trackers::list_text(&h.tracker_tiers())),
            "trackers" => {
                let tiers = h.tracker_tiers();
                Value::Array(h.trackers().iter().enumerate().map(|(i, u)| json!({
                    "announce": u, "id": i, "scrape": scrape_of(u), "tier": tier_of(&tiers, u, i),
                    "sitename": sitename(u),
                })).collect())
            }
            "trackerStats" => {
                let tiers = h.tracker_tiers();
                Value::Array(
                    h.tracker_status()
                        .iter()
                        .enumerate()
                        .map(|(i, (u, st))| tracker_stat(i, tier_of(&tiers, u, i), u, st, s))
                        .collect(),
                )
            }
            "webseeds" => json!(meta.web_seeds),
            // Transmission 4.2's: what each web seed is doing.
            "webseeds_ex" => Value::Array(
                h.web_seeds()
                    .iter()
                    .map(|w| webseed_ex(&w.url, w.downloading, w.down_rate))
                    .collect(),
            ),
            "comment" => json!(meta.comment.clone().unwrap_or_default()),
            "creator" => json!(meta.created_by.clone().unwrap_or_default()),
            "dateCreated" => json!(meta.creation_date.unwrap_or(0)),
            "magnetLink" => json!(meta.magnet()),
            // Its own folder, also while it waits in the incomplete folder (`crate::incomplete`).
            "downloadDir" => {
                let pending = t
                    .entry()
                    .and_then(|e| Some(self.cfg?.resolve(e.complete_dir.as_ref()?)));
                let dir = pending.unwrap_or_else(|| s.data_dir.clone());
                json!(std::path::absolute(&dir)
                    .unwrap_or(dir)
                    .display()
                    .to_string())
            }
            "torrentFile" => json!(t
                .entry()
                .and_then(|e| self.cfg.map(|c| c.resolve(&e.file).display().to_string()))
                .unwrap_or_default()),
            "addedDate" => json!(t.added_date()),
            // A torrent removed and added again keeps the resume data of before (its data is not
            // hashed again), and with it the date it completed then: dated by the add instead.
            "doneDate" => json!(match s.times.done {
                0 => 0,
                done => done.max(t.added_date()),
            }),
            "startDate" => json!(s.times.started),
            "activityDate" => json!(s.times.active),
            "secondsDownloading" => json!(s.times.seconds_downloading),
            "secondsSeeding" => json!(s.times.seconds_seeding),
            "editDate" | "manualAnnounceTime" => json!(0),
            "queuePosition" => json!(self.queue_position(t)),
            super::BANDWIDTH_PRIORITY => json!(super::priority_number(h.limits().priority)),
            "labels" => json!(t.entry().map(|e| e.labels.clone()).unwrap_or_default()),
            super::groups::GROUP => json!(h.group().unwrap_or_default()),
            "honorsSessionLimits" => json!(h.limits().honors_session_limits),
            "downloadLimit" => json!(super::session::kbps(h.limits().download)),
            "uploadLimit" => json!(super::session::kbps(h.limits().upload)),
            "downloadLimited" => json!(h.limits().download.is_some()),
            "uploadLimited" => json!(h.limits().upload.is_some()),
            "seedRatioLimit" | "seedRatioMode" | "seedIdleLimit" | "seedIdleMode"
            | "isFinished" => super::goals::field(f, t.entry(), status_code(&s.state) == 0)?,
            _ => return None,
        };
        Some(v)
    }
}

/// `peersFrom`: the connected peers by where we learned of them, in Transmission's names (`cache`
/// for addresses given by hand or by a magnet link's `x.pe`; `lpd` for local service discovery;
/// `ltep` is never counted: a peer's extension handshake names only the peer itself).
pub fn peers_from(peers: &[crate::engine::PeerInfo]) -> Value {
    use crate::engine::known::Source;
    let count = |s: Source| peers.iter().filter(|p| p.source == s).count();
    json!({
        "fromCache": count(Source::User),
        "fromDht": count(Source::Dht),
        "fromIncoming": count(Source::Incoming),
        "fromLpd": count(Source::Lsd),
        "fromLtep": 0,
        "fromPex": count(Source::Pex),
        "fromTracker": count(Source::Tracker),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trackers_site_name_is_its_registrable_domain_without_the_suffix() {
        for (url, site) in [
            ("http://tracker.example.org:6969/announce", "example"),
            ("https://www.example.co.uk/announce?passkey=a.b", "example"),
            ("udp://open.demo.com.au:1337", "demo"),
            ("http://tracker.example.de/announce", "example"),
            ("http://NAS.Local./announce", "nas"),
            ("http://localhost:6969/announce", "localhost"),
            ("http://10.0.0.2:6969/announce", "10.0.0.2"),
            ("http://[fd00::2]:6969/announce", "fd00::2"),
            ("http://user:pw@t.example.net/announce", "example"),
        ] {
            assert_eq!(sitename(url), site, "{url}");
        }
    }

    #[test]
    fn a_change_of_state_counts_as_activity() {
        let idle = TorrentStats {
            state: TorrentState::Seeding,
            pieces_have: 4,
            pieces_total: 4,
            bytes_verified: 100,
            bytes_total: 100,
            downloaded: 0,
            uploaded: 0,
            down_rate: 0,
            up_rate: 0,
            peers: 0,
            seeds: 0,
            data_dir: "d".into(),
            pieces_withdrawn: 0,
            pieces_checked: 0,
            super_seeding: false,
            bytes_wanted: 100,
            bytes_left: 0,
            sequential: false,
            ..Default::default()
        };
        let seen = Some(look_of(&idle));
        assert!(!is_activity(seen, &idle), "idle and unchanged");
        assert!(is_activity(None, &idle), "first seen");
        let paused = TorrentStats {
            state: TorrentState::Paused,
            ..idle.clone()
        };
        assert!(is_activity(seen, &paused), "paused elsewhere");
        let uploading = TorrentStats {
            up_rate: 5,
            ..idle.clone()
        };
        assert!(is_activity(seen, &uploading));
    }

    #[test]
    fn scrape_urls_follow_the_announce_convention() {
        assert_eq!(scrape_of("http://t:1/announce"), "http://t:1/scrape");
        assert_eq!(
            scrape_of("http://t:1/x/announce.php?k=1"),
            "http://t:1/x/scrape.php?k=1"
        );
        assert_eq!(scrape_of("udp://t:80"), "");
    }

    #[test]
    fn trackers_are_shown_by_scheme_and_host() {
        assert_eq!(
            host_of("http://t.example:6969/announce?x=1"),
            "http://t.example:6969"
        );
        assert_eq!(host_of("udp://t:80"), "udp://t:80");
    }
}
