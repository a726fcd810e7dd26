//! Torrent handles: the one script type for a torrent, `TorrentHandle`. `start` and `seed` return
//! one for the torrent they add, `torrent(name_or_hash)` gives one for any managed torrent (or one
//! running here), and event handlers get one as `ev.torrent`. A handle is only the info-hash: every
//! getter and action looks at the torrent as it is now, wherever it runs ([`super::runner`]), so
//! two handles of one torrent always agree.
//!
//! Getters read the running engine when the torrent runs in this process (or in the shell or daemon
//! that owns torrents.toml, for a one-shot command), else torrents.toml:
//! `name`, `info_hash`, `state` (below), `error` (what a failed torrent says, else `()`), `running`,
//! `progress` (0.0-1.0 over the wanted bytes, `()` when not running), `size`,
//! `down_rate`, `up_rate`, `downloaded`, `uploaded`, `ratio` (uploaded / size, this process),
//! `peers`, `seeds`, `connections` (the peers connected now, a map each: [`peer_map`]),
//! `tracker_status` (its trackers and what each last answered, a map each: [`tracker_map`]),
//! `pieces_withdrawn` (pieces whose data on disk failed its hash, fetched again),
//! `super_seeding` (offering its pieces one at a time as the only seed, BEP 16),
//! `seconds_downloading`, `seconds_seeding` (over every run, kept in its resume file; `()` when
//! not running), `upload_limit`, `download_limit` (its own speed limits in bytes per second, `()` = none) and
//! `honors_session_limits` (whether the session's limits bound it too), `max_peers` (its own most
//! peers, `()` = the session's `max_peers`), `bandwidth_priority` (`"high"`, `"normal"` or `"low"`:
//! its turn under the session's limits), all five also settable, and `own_limits` (those five in
//! words, `""` when it has none of its own):
//! `t.upload_limit = "500K"` (a number of bytes per second or a size; 0 or `()` lifts it) applies
//! at once and is kept in torrents.toml, `seed_ratio` (its own ratio goal: a number, `"unlimited"`,
//! or `()` for the session's `seed_ratio_limit`; settable, kept in torrents.toml; see
//! [`crate::goals`]),
//! `save_path` (the folder holding its data), `file` (the .torrent), `stats` (every figure in one
//! map, as `torrents()` gives them), `meta` and `labels` (settable; [`super::meta`]).
//!
//! `state` has one meaning for every handle: while the torrent runs, the engine's word for it
//! (`checking`, `downloading`, `seeding`, `paused` or `error`), or `queued` while the download
//! or seeding queue holds it ([`crate::queue`]; `queue_position` and `queue_move` are in
//! [`super::queue`]); when it runs nowhere, the state
//! torrents.toml records (`stopped` after `cancel()`, ...); `removed` once torrents.toml no longer
//! has it either.
//!
//! Actions: `pause()` (keeps it in the session, connected to nobody, figures live; recorded
//! `paused`), `resume()`, `cancel()` (stops the transfer wherever it runs, announcing `stopped`, and
//! marks it `stopped` in torrents.toml so nothing starts it again by itself; the entry and the
//! data stay; a torrent running nowhere is left as it is, so cancelling twice is
//! the same as once), `remove()` (stops it the same way and forgets the torrent: no longer managed;
//! data stays), `remove(#{ delete_data: true })` (the same, then deletes the torrent's own files and
//! the folders they leave empty, nothing else), `move_to(dir)` (moves the data and goes on seeding
//! from there; a torrent not running here just has its files moved), `find_data(dir)` (its files were
//! moved to `dir` by other means: it is pointed there, moving nothing, and checks them; see
//! [`actions`]), `rename_path(path, name)` (a file or folder of it renamed on disk, running or not;
//! returns every file's path). Each records the change in torrents.toml. `check()` hashes the data again, ignoring resume data, and reports (see
//! [`actions`]). `wait` and `follow` wait on its transfer ([`super::follow`]); `files`,
//! `set_wanted`, `set_priority` and `sequential` choose its files ([`super::files`]).

mod actions;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use super::registry::lookup;
use crate::config::{Config, GoalMode, ManagedTorrent};
use crate::engine::TorrentStats;
use crate::engine::{Priority, TorrentLimits};
use crate::metainfo::Metainfo;
use crate::script::host::{HostContext, Opts};
use crate::script::live::AfterRemove;
use crate::types::InfoHash;

/// One torrent, by info-hash. Cheap to clone; every getter looks at the current state.
#[derive(Debug, Clone)]
pub struct Handle {
    pub info_hash: InfoHash,
    /// The name when the handle was made (kept for messages once the torrent is gone).
    pub name: String,
}

/// What one getter call sees: the engine's figures and the torrents.toml entry, either may be absent.
struct View {
    live: Option<TorrentStats>,
    entry: Option<ManagedTorrent>,
    cfg: Option<std::sync::Arc<Config>>,
}

fn view(ctx: &HostContext, h: &Handle) -> View {
    let live = ctx.live.stats(&h.info_hash);
    if live.is_none() {
        // A removal here takes the torrent out of the session, then records it in torrents.toml,
        // both under the membership lock: once that is free the two agree. What another process
        // (the owner of torrents.toml) wrote a moment ago is read too.
        let _ = ctx.block_on(async { drop(ctx.torrents().membership().await) });
        ctx.torrents().refresh();
    }
    let cfg = ctx.torrents().config().ok();
    let entry = cfg.as_ref().and_then(|c| c.find(&h.info_hash).cloned());
    View { live, entry, cfg }
}

impl View {
    fn state(&self) -> String {
        match (&self.live, &self.entry) {
            (Some(l), e) => {
                crate::queue::state_word(&l.state, e.as_ref().map(|e| e.state.as_str())).into()
            }
            (None, Some(e)) => e.state.clone(),
            (None, None) => "removed".into(),
        }
    }

    fn save_path(&self) -> Option<PathBuf> {
        match (&self.live, &self.entry, &self.cfg) {
            (Some(l), _, _) => Some(l.data_dir.clone()),
            (None, Some(e), Some(cfg)) => Some(cfg.resolve(&e.data)),
            _ => None,
        }
    }

    fn file(&self) -> Option<PathBuf> {
        match (&self.entry, &self.cfg) {
            (Some(e), Some(cfg)) => Some(cfg.resolve(&e.file)),
            _ => None,
        }
    }

    /// The torrent's own speed limits: the engine's when it runs, else torrents.toml's.
    fn limits(&self) -> TorrentLimits {
        match (&self.live, &self.entry) {
            (Some(l), _) => l.limits,
            (None, Some(e)) => e.limits.engine(),
            (None, None) => TorrentLimits::default(),
        }
    }

    fn size(&self) -> Option<u64> {
        if let Some(l) = &self.live {
            return Some(l.bytes_total);
        }
        Metainfo::load(&self.file()?)
            .ok()
            .map(|m| m.info.total_length)
    }
}

/// The torrent's `state` (see the module's doc).
pub(super) fn state(ctx: &HostContext, h: &Handle) -> String {
    view(ctx, h).state()
}

/// Seconds until a download completes at its rate now (`None` when it is not downloading or
/// receives nothing), as Transmission's `eta`.
fn eta(s: &TorrentStats) -> Option<u64> {
    if !s.is_downloading() || s.bytes_left == 0 {
        return None;
    }
    s.bytes_left.checked_div(s.down_rate)
}

/// One torrent's live figures as a map: what `t.stats` returns and `torrents()` merges in.
pub(super) fn stats_map(ih: &str, s: &TorrentStats) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), s.name.clone().into());
    m.insert("info_hash".into(), ih.to_string().into());
    m.insert("state".into(), s.state.word().into());
    if let Some(e) = s.state.error() {
        m.insert("error".into(), e.to_string().into());
    }
    m.insert("progress".into(), s.progress().into());
    m.insert("pieces_have".into(), (s.pieces_have as i64).into());
    m.insert("pieces_total".into(), (s.pieces_total as i64).into());
    m.insert("size".into(), (s.bytes_total as i64).into());
    m.insert("wanted".into(), (s.bytes_wanted as i64).into());
    m.insert("left".into(), (s.bytes_left as i64).into());
    m.insert(
        "eta".into(),
        eta(s).map_or(Dynamic::UNIT, |secs| (secs as i64).into()),
    );
    m.insert("sequential".into(), s.sequential.into());
    m.insert("verified".into(), (s.bytes_verified as i64).into());
    m.insert("downloaded".into(), (s.downloaded as i64).into());
    m.insert("uploaded".into(), (s.uploaded as i64).into());
    m.insert("down_rate".into(), (s.down_rate as i64).into());
    m.insert("up_rate".into(), (s.up_rate as i64).into());
    m.insert("peers".into(), (s.peers as i64).into());
    m.insert("seeds".into(), (s.seeds as i64).into());
    m.insert(
        "pieces_withdrawn".into(),
        (s.pieces_withdrawn as i64).into(),
    );
    m.insert("super_seeding".into(), s.super_seeding.into());
    m.insert(
        "seconds_downloading".into(),
        (s.times.seconds_downloading as i64).into(),
    );
    m.insert(
        "seconds_seeding".into(),
        (s.times.seconds_seeding as i64).into(),
    );
    m.insert("save_path".into(), s.data_dir.display().to_string().into());
    m
}

/// One tracker of a running torrent as a map (`t.tracker_status`): `url`, `announced` (it has
/// answered or failed at least once in this run), `ok` and `result` (the last answer: `Success`, or
/// why it failed), `peers` (how many the last answer gave), `seeders`, `leechers`, `downloaded`
/// and `downloaders` (the swarm's counts as it gave them, BEP 21's `downloaders` leaving partial
/// seeds out; `()` when it did not say), `last_secs` (since the last answer) and `next_secs`
/// (until the next announce), `()` when there is none.
pub(super) fn tracker_map(url: &str, st: &crate::engine::TrackerStatus) -> Map {
    use std::time::SystemTime;
    let mut m = Map::new();
    let count = |n: Option<u64>| n.map_or(Dynamic::UNIT, |n| Dynamic::from(n as i64));
    let now = SystemTime::now();
    let since = |t: Option<SystemTime>| {
        t.and_then(|t| now.duration_since(t).ok())
            .map_or(Dynamic::UNIT, |d| Dynamic::from(d.as_secs() as i64))
    };
    let until = |t: Option<SystemTime>| {
        t.map_or(Dynamic::UNIT, |t| {
            Dynamic::from(t.duration_since(now).unwrap_or_default().as_secs() as i64)
        })
    };
    m.insert("url".into(), url.into());
    m.insert("announced".into(), st.last_done.is_some().into());
    m.insert("ok".into(), st.last_ok.into());
    m.insert("result".into(), st.last_result.clone().into());
    m.insert("peers".into(), (st.last_peers as i64).into());
    m.insert("seeders".into(), count(st.seeders));
    m.insert("leechers".into(), count(st.leechers));
    m.insert("downloaded".into(), count(st.downloaded));
    m.insert("downloaders".into(), count(st.downloaders));
    m.insert("last_secs".into(), since(st.last_done));
    m.insert("next_secs".into(), until(st.next));
    m
}

/// One web seed of a running torrent as a map (`t.web_seed_status`): `url`, `downloading` (a
/// request to it is under way), `down_rate`, `downloaded` (bytes, this session), `error` (why its
/// last request failed, or why it was dropped; `()` when none) and `dropped` (not asked again until
/// the torrent is started again).
pub(super) fn web_seed_map(w: &crate::engine::WebSeedStatus) -> Map {
    let mut m = Map::new();
    m.insert("url".into(), w.url.clone().into());
    m.insert("downloading".into(), w.downloading.into());
    m.insert("down_rate".into(), (w.down_rate as i64).into());
    m.insert("downloaded".into(), (w.downloaded as i64).into());
    m.insert(
        "error".into(),
        w.error.clone().map_or(Dynamic::UNIT, Dynamic::from),
    );
    m.insert("dropped".into(), w.dropped.into());
    m
}

/// One connected peer as a map (`t.connections`): `address` ("ip:port"), `client` (its name, or
/// `()`), `incoming`, `source` (where we learned its address: `tracker`, `dht`, `pex`, `lsd`,
/// `user`, or `incoming` when it dialed us), `encrypted`, `utp`, `seed`, `upload_only` (it wants
/// nothing more: a seed or a partial seed), `pieces` and `progress` (their share of the torrent),
/// `downloaded`, `uploaded` (bytes on this connection), `down_rate`, `up_rate`, `choked` (it chokes us), `choking` (we choke
/// it), `interested` (we want its pieces), `peer_interested`, `optimistic`, `requests` (ours it has
/// not answered) and `flags` (the same as letters, see [`crate::engine::PeerInfo::flags`]).
pub(super) fn peer_map(p: &crate::engine::PeerInfo) -> Map {
    let mut m = Map::new();
    let int = |n: u64| Dynamic::from(n as i64);
    m.insert("address".into(), p.addr.to_string().into());
    m.insert(
        "client".into(),
        p.client.clone().map_or(Dynamic::UNIT, Dynamic::from),
    );
    m.insert("incoming".into(), (!p.outgoing).into());
    m.insert("source".into(), p.source.name().into());
    m.insert("encrypted".into(), p.encrypted.into());
    m.insert("utp".into(), p.utp.into());
    m.insert("seed".into(), p.seed.into());
    m.insert("upload_only".into(), p.upload_only.into());
    m.insert("pieces".into(), int(p.pieces.into()));
    m.insert("progress".into(), p.progress.into());
    m.insert("downloaded".into(), int(p.downloaded));
    m.insert("uploaded".into(), int(p.uploaded));
    m.insert("down_rate".into(), int(p.down_rate));
    m.insert("up_rate".into(), int(p.up_rate));
    m.insert("choked".into(), p.peer_choking.into());
    m.insert("choking".into(), p.am_choking.into());
    m.insert("interested".into(), p.am_interested.into());
    m.insert("peer_interested".into(), p.peer_interested.into());
    m.insert("optimistic".into(), p.optimistic.into());
    m.insert("requests".into(), int(p.requests.into()));
    m.insert("flags".into(), p.flags().into());
    m
}

/// `t.stats`: the live figures (or `seen`, the last ones a caller saw, once the torrent no longer
/// runs) with the handle's `state`; just `name`, `info_hash` and `state` when there are none.
pub(super) fn figures(ctx: &HostContext, h: &Handle, seen: Option<&TorrentStats>) -> Map {
    let v = view(ctx, h);
    let ih = h.info_hash.to_hex();
    let mut m = match v.live.as_ref().or(seen) {
        Some(s) => stats_map(&ih, s),
        None => {
            let mut m = Map::new();
            m.insert("name".into(), h.name.clone().into());
            m.insert("info_hash".into(), ih.into());
            m
        }
    };
    m.insert("state".into(), v.state().into());
    m
}

/// A path for scripts: absolute, so it means the same wherever the script uses it.
fn path_value(p: Option<PathBuf>) -> Dynamic {
    p.map_or(Dynamic::UNIT, |p| {
        let p = std::path::absolute(&p).unwrap_or(p);
        p.display().to_string().into()
    })
}

/// What a torrent has of its own, in words (`""` when nothing): "up 500.00 KiB/s, at most 9
/// peers, high bandwidth priority".
fn own_limits(l: &TorrentLimits) -> String {
    let rate = |r: u64| format!("{}/s", crate::units::human_bytes(r));
    let mut own = Vec::new();
    own.extend(l.upload.map(|r| format!("up {}", rate(r))));
    own.extend(l.download.map(|r| format!("down {}", rate(r))));
    if !l.honors_session_limits {
        own.push("the session's limits do not apply".to_string());
    }
    own.extend(l.max_peers.map(|n| format!("at most {n} peers")));
    if l.priority != Priority::Normal {
        own.push(format!("{} bandwidth priority", l.priority.name()));
    }
    own.join(", ")
}

/// A bandwidth priority as scripts write it: `"high"`, `"normal"` or `"low"`.
pub(super) fn priority_arg(func: &str, v: &Dynamic) -> Result<Priority, Box<EvalAltResult>> {
    match v
        .clone()
        .into_string()
        .ok()
        .and_then(|s| Priority::parse(&s))
    {
        Some(p) => Ok(p),
        None => fail(func, format!("{v} is not \"high\", \"normal\" or \"low\"")),
    }
}

/// A speed limit from a script: bytes per second as a number or a size such as `"500K"`; 0 or `()`
/// is unlimited (`None`).
pub(super) fn rate_arg(func: &str, v: &Dynamic) -> Result<Option<u64>, Box<EvalAltResult>> {
    let n = if v.is_unit() {
        0
    } else if let Ok(i) = v.as_int() {
        i
    } else if v.is_string() {
        crate::units::parse_size(&v.to_string()).or_else(|e| fail(func, e))?
    } else {
        return fail(
            func,
            format!(
                "a rate is bytes per second (a number or a size such as \"500K\"), not a {}",
                v.type_name()
            ),
        );
    };
    if n < 0 {
        return fail(func, format!("{n} is not a rate (negative)"));
    }
    Ok((n > 0).then_some(n as u64))
}

/// Changes one of the torrent's own speed limits, where it runs and in torrents.toml.
pub(super) fn set_limits(
    ctx: &HostContext,
    ih: &InfoHash,
    name: &str,
    func: &str,
    change: impl FnOnce(&mut TorrentLimits),
) -> Result<(), Box<EvalAltResult>> {
    let mut limits = view(
        ctx,
        &Handle {
            info_hash: *ih,
            name: name.to_string(),
        },
    )
    .limits();
    change(&mut limits);
    crate::actions::set_limits(ctx.torrents(), ctx.live.as_ref(), ih, name, limits)
        .or_else(|e| fail(func, format!("{e:#}")))
}

/// `t.seed_ratio = r`: a number of 0 or more (the torrent's own goal), `"unlimited"`, or `()` (the
/// session's goal), recorded in torrents.toml.
fn set_seed_ratio(ctx: &HostContext, h: &Handle, r: &Dynamic) -> Result<(), Box<EvalAltResult>> {
    let number = r
        .as_float()
        .ok()
        .or_else(|| r.as_int().ok().map(|i| i as f64));
    let (mode, limit) = match number {
        _ if r.is_unit() => (GoalMode::Global, None),
        Some(x) if x.is_finite() && x >= 0.0 => (GoalMode::Single, Some(x)),
        None if r.is_string() && r.to_string() == "unlimited" => (GoalMode::Unlimited, None),
        _ => {
            return fail(
                "seed_ratio",
                format!("a ratio goal is a number of 0 or more, \"unlimited\" or (), not {r}"),
            )
        }
    };
    let old = ctx
        .torrents()
        .config()
        .ok()
        .and_then(|c| c.find(&h.info_hash).map(|e| e.goals))
        .unwrap_or_default();
    let goals = crate::config::SeedGoals {
        seed_ratio_mode: mode,
        seed_ratio_limit: limit.or(old.seed_ratio_limit),
        ..old
    };
    crate::actions::set_goals(ctx.torrents(), &h.info_hash, &h.name, goals)
        .or_else(|e| fail("seed_ratio", format!("{e:#}")))
}

/// `torrent(name_or_hash)`: a managed torrent, or one running here.
fn find(ctx: &Arc<HostContext>, key: &str) -> Result<Handle, Box<EvalAltResult>> {
    let cfg = ctx.config()?;
    match lookup(&cfg, key) {
        Ok(t) => {
            let ih = t.hash().expect("validated on load");
            Ok(Handle {
                info_hash: ih,
                name: t.name.clone(),
            })
        }
        Err(not_managed) => {
            let k = key.to_ascii_lowercase();
            let live: Vec<_> = ctx
                .live
                .all()
                .into_iter()
                .filter(|(ih, s)| s.name == key || (k.len() >= 6 && ih.to_hex().starts_with(&k)))
                .collect();
            match live.as_slice() {
                [(ih, s)] => Ok(Handle {
                    info_hash: *ih,
                    name: s.name.clone(),
                }),
                _ => fail("torrent", not_managed),
            }
        }
    }
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    engine.register_type_with_name::<Handle>("TorrentHandle");
    let c = ctx.clone();
    engine.register_fn("torrent", move |key: &str| find(&c, key));
    engine.register_fn("to_string", |h: &mut Handle| {
        format!("TorrentHandle({} {})", h.name, h.info_hash)
    });
    engine.register_get("info_hash", |h: &mut Handle| h.info_hash.to_hex());

    macro_rules! getter {
        ($name:literal, |$h:ident, $v:ident| $body:expr) => {{
            let c = ctx.clone();
            engine.register_get($name, move |$h: &mut Handle| -> Dynamic {
                let $v = view(&c, $h);
                $body
            });
        }};
    }
    // The name torrents.toml lists it under (its top folder's, once renamed), else the torrent's.
    getter!("name", |h, v| v
        .entry
        .map(|e| e.name)
        .or(v.live.map(|l| l.name))
        .unwrap_or_else(|| h.name.clone())
        .into());
    getter!("state", |_h, v| v.state().into());
    getter!("error", |_h, v| v
        .live
        .and_then(|l| l.state.error().map(str::to_string))
        .map_or(Dynamic::UNIT, Dynamic::from));
    let c = ctx.clone();
    engine.register_get("stats", move |h: &mut Handle| figures(&c, h, None));
    getter!("running", |_h, v| v.live.is_some().into());
    getter!("progress", |_h, v| v
        .live
        .map_or(Dynamic::UNIT, |l| l.progress().into()));
    getter!("size", |_h, v| v
        .size()
        .map_or(Dynamic::UNIT, |s| (s as i64).into()));
    getter!("down_rate", |_h, v| v
        .live
        .map_or(0, |l| l.down_rate as i64)
        .into());
    getter!("up_rate", |_h, v| v
        .live
        .map_or(0, |l| l.up_rate as i64)
        .into());
    getter!("downloaded", |_h, v| v
        .live
        .map_or(0, |l| l.downloaded as i64)
        .into());
    getter!("uploaded", |_h, v| v
        .live
        .map_or(0, |l| l.uploaded as i64)
        .into());
    getter!("ratio", |_h, v| match &v.live {
        Some(l) if l.bytes_total > 0 => (l.uploaded as f64 / l.bytes_total as f64).into(),
        _ => 0.0.into(),
    });
    getter!("peers", |_h, v| v.live.map_or(0, |l| l.peers as i64).into());
    getter!("seeds", |_h, v| v.live.map_or(0, |l| l.seeds as i64).into());
    let c = ctx.clone();
    engine.register_get("connections", move |h: &mut Handle| -> Dynamic {
        let c = c.live.connections(&h.info_hash).unwrap_or_default();
        let list: rhai::Array = c.peers.iter().map(|p| peer_map(p).into()).collect();
        list.into()
    });
    let c = ctx.clone();
    engine.register_get("web_seed_status", move |h: &mut Handle| -> Dynamic {
        let c = c.live.connections(&h.info_hash).unwrap_or_default();
        let list: rhai::Array = c.web_seeds.iter().map(|w| web_seed_map(w).into()).collect();
        list.into()
    });
    let c = ctx.clone();
    engine.register_get("tracker_status", move |h: &mut Handle| -> Dynamic {
        let trackers = c.live.trackers(&h.info_hash).unwrap_or_default();
        let list: rhai::Array = trackers
            .iter()
            .map(|(url, st)| tracker_map(url, st).into())
            .collect();
        list.into()
    });
    getter!("pieces_withdrawn", |_h, v| v
        .live
        .map_or(0, |l| l.pieces_withdrawn as i64)
        .into());
    getter!("super_seeding", |_h, v| v
        .live
        .is_some_and(|l| l.super_seeding)
        .into());
    let seconds = |s: Option<u64>| s.map_or(Dynamic::UNIT, |s| (s as i64).into());
    getter!("seconds_downloading", |_h, v| seconds(
        v.live.as_ref().map(|l| l.times.seconds_downloading)
    ));
    getter!("seconds_seeding", |_h, v| seconds(
        v.live.as_ref().map(|l| l.times.seconds_seeding)
    ));
    let rate = |r: Option<u64>| r.map_or(Dynamic::UNIT, |r| (r as i64).into());
    getter!("upload_limit", |_h, v| rate(v.limits().upload));
    getter!("download_limit", |_h, v| rate(v.limits().download));
    getter!("honors_session_limits", |_h, v| v
        .limits()
        .honors_session_limits
        .into());
    let c = ctx.clone();
    engine.register_set("upload_limit", move |h: &mut Handle, r: Dynamic| {
        let r = rate_arg("upload_limit", &r)?;
        set_limits(&c, &h.info_hash, &h.name, "upload_limit", |l| l.upload = r)
    });
    let c = ctx.clone();
    engine.register_set("download_limit", move |h: &mut Handle, r: Dynamic| {
        let r = rate_arg("download_limit", &r)?;
        set_limits(&c, &h.info_hash, &h.name, "download_limit", |l| {
            l.download = r
        })
    });
    let c = ctx.clone();
    engine.register_set("honors_session_limits", move |h: &mut Handle, b: bool| {
        set_limits(&c, &h.info_hash, &h.name, "honors_session_limits", |l| {
            l.honors_session_limits = b
        })
    });
    getter!("max_peers", |_h, v| v
        .limits()
        .max_peers
        .map_or(Dynamic::UNIT, |n| (n as i64).into()));
    let c = ctx.clone();
    engine.register_set("max_peers", move |h: &mut Handle, n: Dynamic| {
        let n = if n.is_unit() {
            None
        } else {
            const MAX: i64 = crate::config::MAX_PEER_LIMIT as i64;
            match n.as_int() {
                Ok(n @ 1..=MAX) => Some(n as usize),
                _ => {
                    return fail(
                        "max_peers",
                        format!("{n} is not a number of peers, 1 to {MAX}, nor ()"),
                    )
                }
            }
        };
        set_limits(&c, &h.info_hash, &h.name, "max_peers", |l| l.max_peers = n)
    });
    getter!("bandwidth_priority", |_h, v| v
        .limits()
        .priority
        .name()
        .into());
    getter!("own_limits", |_h, v| own_limits(&v.limits()).into());
    let c = ctx.clone();
    engine.register_set("bandwidth_priority", move |h: &mut Handle, p: Dynamic| {
        let p = priority_arg("bandwidth_priority", &p)?;
        set_limits(&c, &h.info_hash, &h.name, "bandwidth_priority", |l| {
            l.priority = p
        })
    });
    getter!("seed_ratio", |_h, v| {
        let g = v.entry.map(|e| e.goals).unwrap_or_default();
        match g.seed_ratio_mode {
            GoalMode::Global => Dynamic::UNIT,
            GoalMode::Single => g.seed_ratio_limit.map_or(Dynamic::UNIT, Dynamic::from),
            GoalMode::Unlimited => "unlimited".into(),
        }
    });
    let c = ctx.clone();
    engine.register_set("seed_ratio", move |h: &mut Handle, r: Dynamic| {
        set_seed_ratio(&c, h, &r)
    });
    getter!("save_path", |_h, v| path_value(v.save_path()));
    getter!("file", |_h, v| path_value(v.file()));

    actions::register(engine, ctx);
}
