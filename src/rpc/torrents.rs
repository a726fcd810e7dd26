//! The torrent methods: `torrent-add`, `-start`/`-start-now`, `-stop`, `-verify`, `-reannounce`,
//! `-remove`, `-set`, `-set-location`, and `queue-move-*`. Each acts through [`crate::actions`], as
//! the shell's commands do, so torrents.toml records every change.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::fields::select;
use super::session::limit_arg;
use super::{Outcome, Rpc};
use crate::actions;
use crate::engine::FilePriority;
use crate::metainfo::Metainfo;

pub(super) fn bool_arg(args: &Map<String, Value>, key: &str) -> Result<bool, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        // Some clients send 0/1.
        Some(Value::Number(n)) => Ok(n.as_i64() != Some(0)),
        Some(v) => Err(format!("{key} must be true or false, not {v}")),
    }
}

/// A `torrent-add`'s `paused`: as the request says, else as `start-added-torrents` does.
pub(super) fn paused_arg(
    args: &Map<String, Value>,
    settings: &crate::config::Settings,
) -> Result<bool, String> {
    match args.get("paused") {
        None | Some(Value::Null) => Ok(!settings.start_added_torrents),
        Some(_) => bool_arg(args, "paused"),
    }
}

pub(super) fn str_arg<'a>(
    args: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(format!("{key} must be a string, not {v}")),
    }
}

/// `labels`: a list of strings, checked as a torrent keeps them (`None` when absent).
pub(super) fn labels_arg(args: &Map<String, Value>) -> Result<Option<Vec<String>>, String> {
    let list = match args.get("labels") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(list)) => list,
        Some(v) => return Err(format!("labels must be a list of strings, not {v}")),
    };
    let words = list
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| format!("labels must be a list of strings; {v} is not one"))
        })
        .collect::<Result<Vec<&str>, String>>()?;
    crate::config::checked_labels(words).map(Some)
}

pub(super) fn added(key: &str, id: i64, name: &str, hash: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        key.into(),
        json!({"id": id, "name": name, "hashString": hash}),
    );
    m
}

/// The id the RPC gives the torrent `ih` (assigning one if it is new).
async fn id_of(rpc: &Arc<Rpc>, ih: &crate::InfoHash) -> i64 {
    let torrents = rpc
        .peer
        .get()
        .await
        .map(|s| s.torrents())
        .unwrap_or_default();
    rpc.ids
        .refresh(torrents)
        .into_iter()
        .find(|(_, h, _)| h.info_hash() == *ih)
        .map_or(0, |(id, _, _)| id)
}

/// `torrent-add`: `metainfo` (a base64 .torrent) or `filename` (a path, URL or magnet link, read
/// by [`actions::load_source`]), into `download-dir` (default `output_dir`), `paused` if asked,
/// with `labels`, its own `peer-limit` and its `bandwidthPriority` if given. A magnet link is answered at once: its metadata
/// is fetched in the background ([`super::fetching`]).
pub async fn add(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    let labels = labels_arg(args).map_err(|e| format!("torrent-add: {e}"))?;
    order_arg(args).map_err(|e| format!("torrent-add: {e}"))?;
    peer_limit_arg(args, "torrent-add")?;
    super::priority_arg(args).map_err(|e| format!("torrent-add: {e}"))?;
    let (meta, src, magnet_files): (Metainfo, Option<PathBuf>, _) =
        match (str_arg(args, "metainfo")?, str_arg(args, "filename")?) {
            (Some(b64), _) => {
                let clean: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(clean.as_bytes())
                    .map_err(|e| format!("metainfo is not base64: {e}"))?;
                let meta = Metainfo::from_bytes(&bytes)
                    .map_err(|e| format!("metainfo is not a valid .torrent: {e}"))?;
                (meta, None, None)
            }
            (None, Some(link)) if crate::source::is_magnet_link(link.trim()) => {
                // A mutable link (BEP 46) is added as the magnet of the torrent it points at now.
                let session = rpc
                    .peer
                    .get_or_start()
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                // It follows the link's next versions once added.
                let resolved = crate::source::resolve_mutable(&session, link.trim())
                    .await
                    .map_err(|e| format!("torrent-add: {e:#}"))?;
                let Some(r) = resolved else {
                    return super::fetching::add(rpc, link.trim(), args, None).await;
                };
                let follow = crate::config::Following {
                    link: link.trim().to_string(),
                    seq: r.seq,
                };
                return super::fetching::add(rpc, &r.magnet, args, Some(follow)).await;
            }
            (None, Some(source)) => {
                let session = rpc
                    .peer
                    .get_or_start()
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                let cfg = rpc.peer.torrents().config().map_err(|e| format!("{e:#}"))?;
                let opened = actions::load_source(source, &session, cfg.torrents_dir())
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                (opened.meta, opened.path, opened.files)
            }
            (None, None) => return Err("torrent-add needs \"filename\" or \"metainfo\"".into()),
        };
    let added = Added {
        src: src.as_deref(),
        files: file_choice(&meta, magnet_files, args)?,
        labels,
        follow: None,
    };
    add_torrent(rpc, meta, added, args).await
}

/// What `torrent-add` found besides the metadata and the request's own arguments.
pub(super) struct Added<'a> {
    /// Its .torrent file, if any.
    pub(super) src: Option<&'a Path>,
    /// The [`file_choice`].
    pub(super) files: Option<Vec<FilePriority>>,
    pub(super) labels: Option<Vec<String>>,
    /// The mutable link (BEP 46) it came from, to follow.
    pub(super) follow: Option<crate::config::Following>,
}

/// The files a new torrent downloads: as the request's `files-wanted`, `files-unwanted` and
/// `priority-*` choose, else as a magnet link's `so` chose (`magnet_files`), else every file.
pub(super) fn file_choice(
    meta: &Metainfo,
    magnet_files: Option<Vec<FilePriority>>,
    args: &Map<String, Value>,
) -> Result<Option<Vec<FilePriority>>, String> {
    if !super::any_key(args, &super::files::KEYS) {
        return Ok(magnet_files);
    }
    let mut p = vec![FilePriority::Normal; meta.info.files.len()];
    for (f, x) in super::files::changes(&meta.info, &p.clone(), args)
        .map_err(|e| format!("torrent-add {e}"))?
    {
        p[f] = x;
    }
    Ok(Some(p))
}

/// `download-dir` of a `torrent-add` request (default `output_dir`), made absolute; refused when
/// it names something other than a folder.
pub(super) fn download_dir(
    args: &Map<String, Value>,
    cfg: &crate::config::Config,
) -> Result<PathBuf, String> {
    let data_dir = match str_arg(args, "download-dir")? {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => cfg.output_dir(),
    };
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
    if data_dir.exists() && !data_dir.is_dir() {
        return Err(format!(
            "download-dir {} is not a folder",
            data_dir.display()
        ));
    }
    Ok(data_dir)
}

/// The rest of `torrent-add` once the metadata is at hand.
pub(super) async fn add_torrent(
    rpc: &Arc<Rpc>,
    meta: Metainfo,
    added_with: Added<'_>,
    args: &Map<String, Value>,
) -> Outcome {
    let Added {
        src,
        files,
        labels,
        follow,
    } = added_with;
    let cfg = rpc.peer.torrents().config().map_err(|e| format!("{e:#}"))?;
    let session = rpc
        .peer
        .get_or_start()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let ih = meta.info_hash;
    if session.get(&ih).is_some() {
        let id = id_of(rpc, &ih).await;
        return Ok(added(
            "torrent-duplicate",
            id,
            &meta.info.name,
            &ih.to_hex(),
        ));
    }
    // A magnet link's start piece is checked here, once its pieces are known.
    let order = order_arg(args).map_err(|e| format!("torrent-add: {e}"))?;
    check_sequential_from(&order, &meta.info).map_err(|e| format!("torrent-add: {e}"))?;
    // Kept in the incomplete folder until complete, when that is on.
    let (data_dir, complete_dir) =
        crate::incomplete::placement(&cfg, &meta.info, &download_dir(args, &cfg)?);
    let name = meta.info.name.clone();
    let adding = actions::Adding {
        meta,
        src,
        data_dir,
        complete_dir,
        paused: paused_arg(args, &cfg.settings)?,
        seeding: false,
        register: true,
        peers: Vec::new(),
        trackers: None,
        files,
        sequential: order.sequential.unwrap_or(cfg.settings.sequential_download),
        sequential_from: order.sequential_from.unwrap_or(0),
        labels,
        follow,
        watch: None,
        local_files: Vec::new(),
    };
    actions::add(rpc.peer.torrents(), &session, adding)
        .await
        .map_err(|e| format!("{e:#}"))?;
    // Its magnet link, if one is still fetching its metadata, has nothing left to do.
    rpc.fetching.added(&ih);
    let max_peers = peer_limit_arg(args, "torrent-add")?;
    let priority = super::priority_arg(args).map_err(|e| format!("torrent-add: {e}"))?;
    if max_peers.is_some() || priority.is_some() {
        let limits = crate::engine::TorrentLimits {
            max_peers,
            priority: priority.unwrap_or_default(),
            ..Default::default()
        };
        actions::set_limits(rpc.peer.torrents(), &rpc.peer, &ih, &name, limits)
            .map_err(|e| format!("torrent-add: {e:#}"))?;
    }
    let id = id_of(rpc, &ih).await;
    Ok(added("torrent-added", id, &name, &ih.to_hex()))
}

/// What `torrent-start`, `-stop` and `-remove` do to a magnet still fetching its metadata.
#[derive(Clone, Copy)]
enum ToFetch {
    Start,
    Stop,
    Remove,
}

/// Does `what` to each magnet still fetching its metadata that `ids` names.
async fn each_fetching(
    rpc: &Arc<Rpc>,
    args: &Map<String, Value>,
    what: ToFetch,
) -> Result<(), String> {
    for (_, ih) in super::fetching::select(rpc, args).await? {
        match what {
            ToFetch::Start => rpc.fetching.start(rpc, &ih),
            ToFetch::Stop => rpc.fetching.stop(&ih),
            ToFetch::Remove => rpc.fetching.remove(rpc, &ih),
        }
    }
    Ok(())
}

/// Runs `f` on every torrent `ids` names; the failures, if any, become the result.
async fn each<F, Fut>(rpc: &Arc<Rpc>, args: &Map<String, Value>, f: F) -> Outcome
where
    F: Fn(crate::InfoHash, String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut errors = Vec::new();
    for (_, h, _) in select(rpc, args).await? {
        if let Err(e) = f(h.info_hash(), h.name().to_string()).await {
            errors.push(format!("{e:#}"));
        }
    }
    if errors.is_empty() {
        Ok(Map::new())
    } else {
        Err(errors.join("; "))
    }
}

/// `torrent-start`: each torrent resumes, through its queue when that is on (a download waits in
/// the download queue, `status` 3, a complete torrent in the seeding queue, `status` 5, until it
/// has a place).
pub async fn start(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    each_fetching(rpc, args, ToFetch::Start).await?;
    each(rpc, args, |ih, name| async move {
        actions::resume(rpc.peer.torrents(), &rpc.peer, &ih, &name)
    })
    .await
}

/// `torrent-start-now`: each torrent resumes at once, outside the queues (it takes no place
/// there) until it stops running.
pub async fn start_now(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    each_fetching(rpc, args, ToFetch::Start).await?;
    each(rpc, args, |ih, name| async move {
        rpc.peer.queue().force(ih);
        actions::resume_now(rpc.peer.torrents(), &rpc.peer, &ih, &name)
    })
    .await
}

pub async fn stop(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    each_fetching(rpc, args, ToFetch::Stop).await?;
    each(rpc, args, |ih, name| async move {
        actions::pause(rpc.peer.torrents(), &rpc.peer, &ih, &name)
    })
    .await
}

/// `torrent-verify`: the check runs in the background (as Transmission's does); its progress shows
/// in `status` and `recheckProgress`, and bad pieces are fetched again.
pub async fn verify(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    use crate::script::live::LiveTorrents as _;
    each(rpc, args, |ih, name| async move {
        let check = rpc.peer.check(ih);
        tokio::spawn(async move {
            if let Err(e) = check.await {
                tracing::warn!("{name}: verify failed: {e:#}");
            }
        });
        Ok(())
    })
    .await
}

/// `torrent-reannounce`: each tracker is asked for peers at once, or as soon as its `min interval`
/// allows; those of a magnet still fetching its metadata too.
pub async fn reannounce(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    let fetching = super::fetching::select(rpc, args).await?;
    if let Some(session) = rpc.peer.get().await {
        for (_, ih) in &fetching {
            session.reannounce_fetch(ih);
        }
    }
    for (_, h, _) in select(rpc, args).await? {
        h.reannounce();
    }
    Ok(Map::new())
}

/// `torrent-remove`, with `delete-local-data` deleting the torrent's own files (nothing else).
pub async fn remove(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    let delete = bool_arg(args, "delete-local-data")?;
    // Nothing of a magnet still fetching is on disk but its record.
    each_fetching(rpc, args, ToFetch::Remove).await?;
    each(rpc, args, |ih, name| async move {
        actions::remove(rpc.peer.torrents(), &rpc.peer, ih, &name, delete)
            .await
            .map(|_| ())
    })
    .await
}

/// `torrent-set`'s and `torrent-add`'s key for a torrent's own most peers
/// (`transmission-remote -t ID -pr N`).
const PEER_LIMIT: &str = "peer-limit";

/// A request's `peer-limit`, if it has one (`method` names the request in the error).
fn peer_limit_arg(args: &Map<String, Value>, method: &str) -> Result<Option<usize>, String> {
    super::peers_arg(args, PEER_LIMIT).map_err(|e| format!("{method}: {e}"))
}

/// The key for fetching pieces in order (Transmission 4.1, rpc-version 18), in `torrent-add`,
/// `-set` and `-get`, and in `session-get`/`-set` (the default of added torrents).
pub const SEQUENTIAL: &str = "sequential_download";
/// The piece that order starts at (`torrent-add`, `-set`, `-get`).
pub const SEQUENTIAL_FROM: &str = "sequential_download_from_piece";

/// A request's change of the order of new pieces: `sequential_download` (true or false) and
/// `sequential_download_from_piece` (a piece index; checked against a torrent's pieces by
/// [`check_sequential_from`]).
pub(super) fn order_arg(args: &Map<String, Value>) -> Result<actions::OrderChange, String> {
    let sequential = super::switch_arg(args, SEQUENTIAL)?;
    let sequential_from = match args.get(SEQUENTIAL_FROM) {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .ok_or_else(|| {
                    format!("{SEQUENTIAL_FROM} must be a piece index, 0 or more, not {v}")
                })?,
        ),
    };
    Ok(actions::OrderChange {
        sequential,
        sequential_from,
    })
}

/// Refuses an `order` starting past the pieces of `info`.
pub(super) fn check_sequential_from(
    order: &actions::OrderChange,
    info: &crate::metainfo::Info,
) -> Result<(), String> {
    match order.sequential_from {
        Some(p) if p as usize >= info.piece_count() => Err(format!(
            "{SEQUENTIAL_FROM} {p} is past the pieces of {} (it has {}, from 0)",
            info.name,
            info.piece_count()
        )),
        _ => Ok(()),
    }
}

/// `torrent-set`: file selection ([`super::files`]), `sequential_download` (pieces in order, for
/// playing a file while it downloads) and `sequential_download_from_piece` (where that order
/// starts: a player seeking), `peer-limit` (its own most peers; a lower one cuts no
/// connection), `bandwidthPriority` (-1, 0, 1: its turn under the session's limits), the speed limits (`uploadLimit`/
/// `uploadLimited`, `downloadLimit`/`downloadLimited` in kB/s, `honorsSessionLimits`), the
/// seeding goals ([`super::goals`]), the trackers ([`super::trackers`]), `labels` (replacing
/// the torrent's; `[]` clears them), `group` (its bandwidth group, [`super::groups`]; `""`: none) and `queuePosition` (the place in the queues), applied at once and kept in torrents.toml. Every other key is
/// refused by name, and every value is checked before anything changes (an empty request succeeds).
pub async fn set(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    // First: it waits for a magnet's torrent being added, which `selected` then includes.
    let fetching = super::fetching::select(rpc, args).await?;
    let selected = select(rpc, args).await?;
    let keys: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "ids" && !super::files::KEYS.contains(k))
        .collect();
    let limits = [
        "downloadLimit",
        "downloadLimited",
        "uploadLimit",
        "uploadLimited",
        "honorsSessionLimits",
        PEER_LIMIT,
        super::BANDWIDTH_PRIORITY,
    ];
    let unsupported: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| {
            !limits.contains(k)
                && !super::goals::TORRENT_KEYS.contains(k)
                && !super::trackers::KEYS.contains(k)
                && *k != "labels"
                && *k != super::groups::GROUP
                && *k != "queuePosition"
                && *k != SEQUENTIAL
                && *k != SEQUENTIAL_FROM
        })
        .collect();
    if !unsupported.is_empty() {
        return Err(format!(
            "torrent-set: not supported: {}",
            unsupported.join(", ")
        ));
    }
    let honors = match args.get("honorsSessionLimits") {
        None | Some(Value::Null) => None,
        Some(_) => Some(bool_arg(args, "honorsSessionLimits")?),
    };
    let peer_limit = peer_limit_arg(args, "torrent-set")?;
    let priority = super::priority_arg(args).map_err(|e| format!("torrent-set: {e}"))?;
    let order = order_arg(args).map_err(|e| format!("torrent-set: {e}"))?;
    let sets_limits = keys.iter().any(|k| limits.contains(k));
    let sets_goals = super::any_key(args, &super::goals::TORRENT_KEYS);
    let sets_trackers = super::any_key(args, &super::trackers::KEYS);
    let labels = labels_arg(args).map_err(|e| format!("torrent-set: {e}"))?;
    let group = super::groups::torrent_arg(args)?;
    let place = match args.get("queuePosition") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            format!("torrent-set: queuePosition must be a place in the queue, 0 or more, not {v}")
        })? as usize),
    };
    if !fetching.is_empty() {
        // Checked now, applied once each runs (file keys: against its files, then).
        super::goals::torrent_set(args, Default::default())?;
        limit_arg(args, "uploadLimit", "uploadLimited", None)?;
        limit_arg(args, "downloadLimit", "downloadLimited", None)?;
        for (_, ih) in &fetching {
            if super::any_key(args, &super::trackers::KEYS) {
                // Tracker ids count the link's trackers, as the torrent made of it will.
                let urls = rpc.fetching.trackers(ih);
                let tiers = urls.iter().map(|u| vec![u.clone()]).collect();
                super::trackers::edited(args, &urls, tiers)
                    .map_err(|e| format!("torrent-set: {e}"))?;
            }
        }
    }
    let cfg = rpc.peer.torrents().config().map_err(|e| format!("{e:#}"))?;
    // Every value is checked before any torrent changes.
    let mut changes = Vec::with_capacity(selected.len());
    for (_, h, _) in &selected {
        let entry = cfg.find(&h.info_hash());
        let goals = match entry {
            Some(e) => super::goals::torrent_set(args, e.goals)?,
            None if sets_goals => {
                return Err(format!(
                    "torrent-set: {} is not a managed torrent: it has no seeding goals to keep",
                    h.name()
                ))
            }
            None => Default::default(),
        };
        if entry.is_none() && (labels.is_some() || place.is_some()) {
            return Err(format!(
                "torrent-set: {} is not a managed torrent: it has no entry to keep labels or a queue place in",
                h.name()
            ));
        }
        let trackers = match entry {
            _ if !sets_trackers => None,
            Some(e) => {
                let meta = crate::metainfo::Metainfo::load(&cfg.resolve(&e.file))
                    .map_err(|e| format!("torrent-set: {e}"))?;
                let tiers = super::trackers::edited(args, &h.trackers(), meta.tracker_tiers())
                    .map_err(|e| format!("torrent-set: {e}"))?;
                Some(tiers)
            }
            None => {
                return Err(format!(
                "torrent-set: {} is not a managed torrent: it has no .torrent to keep trackers in",
                h.name()
            ))
            }
        };
        let now: Vec<FilePriority> = h.files().iter().map(|f| f.priority).collect();
        let files = super::files::changes(&h.meta().info, &now, args)
            .map_err(|e| format!("torrent-set {e}"))?;
        check_sequential_from(&order, &h.meta().info).map_err(|e| format!("torrent-set: {e}"))?;
        let old = h.limits();
        let new = crate::engine::TorrentLimits {
            upload: limit_arg(args, "uploadLimit", "uploadLimited", old.upload)?,
            download: limit_arg(args, "downloadLimit", "downloadLimited", old.download)?,
            honors_session_limits: honors.unwrap_or(old.honors_session_limits),
            max_peers: peer_limit.or(old.max_peers),
            priority: priority.unwrap_or(old.priority),
        };
        changes.push((
            h.info_hash(),
            h.name().to_string(),
            files,
            new,
            goals,
            trackers,
        ));
    }
    let torrents = rpc.peer.torrents();
    let mut errors = Vec::new();
    for (_, ih) in fetching {
        if let Err(e) = rpc.fetching.set_later(&ih, args) {
            errors.push(e);
        }
    }
    if let Some(place) = place {
        let chosen: Vec<crate::InfoHash> = changes.iter().map(|c| c.0).collect();
        if let Err(e) = actions::queue_move(torrents, &chosen, actions::QueueMove::To(place)) {
            errors.push(format!("{e:#}"));
        }
    }
    for (ih, name, files, new, goals, trackers) in changes {
        if let Some(tiers) = trackers {
            if let Err(e) = actions::set_trackers(torrents, &rpc.peer, &ih, &name, &tiers) {
                errors.push(format!("{e:#}"));
            }
        }
        if !files.is_empty() || order != actions::OrderChange::default() {
            let chosen = actions::choose_files(torrents, &rpc.peer, &ih, &name, &files, order);
            if let Err(e) = chosen {
                errors.push(format!("{e:#}"));
            }
        }
        if sets_limits {
            if let Err(e) = actions::set_limits(torrents, &rpc.peer, &ih, &name, new) {
                errors.push(format!("{e:#}"));
            }
        }
        if sets_goals {
            if let Err(e) = actions::set_goals(torrents, &ih, &name, goals) {
                errors.push(format!("{e:#}"));
            }
        }
        if let Some(labels) = &labels {
            if let Err(e) = actions::set_labels(torrents, &ih, &name, labels) {
                errors.push(format!("{e:#}"));
            }
        }
        if let Some(group) = &group {
            let set = actions::set_group(torrents, &rpc.peer, &ih, &name, group.as_deref());
            if let Err(e) = set {
                errors.push(format!("{e:#}"));
            }
        }
    }
    if errors.is_empty() {
        Ok(Map::new())
    } else {
        Err(errors.join("; "))
    }
}

/// `torrent-set-location`: with `move` true the data moves and the torrent goes on from there;
/// without, the torrent is pointed at `location`, where its files already are, and checks them.
pub async fn set_location(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    let Some(location) = str_arg(args, "location")? else {
        return Err("torrent-set-location needs \"location\", a folder".into());
    };
    let dir = Path::new(location);
    // A magnet still fetching its metadata has nothing on disk: it will download there.
    let folder = std::path::absolute(dir).map_err(|e| format!("location {location}: {e}"))?;
    for (_, ih) in super::fetching::select(rpc, args).await? {
        rpc.fetching.set_folder(&ih, &folder)?;
    }
    if bool_arg(args, "move")? {
        each(rpc, args, |ih, name| async move {
            actions::move_to(rpc.peer.torrents(), &rpc.peer, ih, &name, dir).await
        })
        .await
    } else {
        each(rpc, args, |ih, name| async move {
            actions::relocate(rpc.peer.torrents(), &rpc.peer, ih, &name, dir)
                .await
                .map(drop)
        })
        .await
    }
}

/// `torrent-rename-path`: one torrent's file or folder (`path`, relative to its data folder, as its
/// `files` name them) renamed to `name` in the same folder, on disk and for the torrent; the reply
/// names what was renamed and the torrent's id, as Transmission's does.
pub async fn rename_path(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    let (Some(path), Some(name)) = (str_arg(args, "path")?, str_arg(args, "name")?) else {
        return Err(
            "torrent-rename-path needs \"path\" (a file or folder of the torrent) and \"name\""
                .into(),
        );
    };
    if args.get("ids").is_none_or(Value::is_null) {
        return Err("torrent-rename-path renames in one torrent: give its id in \"ids\"".into());
    }
    let fetching = super::fetching::select(rpc, args).await?;
    if let Some((_, ih)) = fetching.first() {
        let name = rpc.fetching.field(ih, "name", 0).unwrap_or_default();
        return Err(format!(
            "torrent-rename-path: {} has no files yet (its metadata is still being fetched)",
            name.as_str().unwrap_or("the magnet link")
        ));
    }
    let mut chosen = super::fields::select(rpc, args).await?;
    if chosen.len() != 1 {
        return Err(format!(
            "torrent-rename-path renames in one torrent; the ids name {}",
            chosen.len()
        ));
    }
    let (id, h, _) = chosen.pop().expect("one");
    actions::rename_path(
        rpc.peer.torrents(),
        &rpc.peer,
        h.info_hash(),
        h.name(),
        Path::new(path),
        name,
    )
    .await
    .map_err(|e| format!("{e:#}"))?;
    let mut out = Map::new();
    out.insert("path".into(), json!(path));
    out.insert("name".into(), json!(name));
    out.insert("id".into(), json!(id));
    Ok(out)
}

/// `queue-move-top`, `-up`, `-down`, `-bottom`: the torrents `ids` names move in the download
/// queue, which is torrents.toml's order ([`actions::queue_move`]); `queuePosition` shows where
/// each is.
pub async fn queue_move(rpc: &Arc<Rpc>, method: &str, args: &Map<String, Value>) -> Outcome {
    let to = match method {
        "queue-move-top" => actions::QueueMove::Top,
        "queue-move-up" => actions::QueueMove::Up,
        "queue-move-down" => actions::QueueMove::Down,
        "queue-move-bottom" => actions::QueueMove::Bottom,
        _ => return Err(format!("method name not recognized: {method}")),
    };
    if args.get("ids").is_none_or(Value::is_null) {
        return Err(format!("{method} needs \"ids\": the torrents to move"));
    }
    let chosen: Vec<crate::InfoHash> = select(rpc, args)
        .await?
        .iter()
        .map(|(_, h, _)| h.info_hash())
        .collect();
    actions::queue_move(rpc.peer.torrents(), &chosen, to).map_err(|e| format!("{e:#}"))?;
    Ok(Map::new())
}
