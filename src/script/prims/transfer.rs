//! Peer primitives: `start(torrent[, opts])`, `seed(torrent, data_dir[, opts])`, `bitfield(peer,
//! torrent)`, `download_piece(peer, torrent, index)`, and the `Job` they return: a transfer running in
//! this process's peer session, with `name`, `info_hash`, `state`, `progress`, `stats` and the actions
//! `wait([secs])`, `follow([keep_seeding[, stall_secs]])` (progress display) and `cancel()`.
//!
//! `start` and `seed` take `up_limit`/`down_limit` in `opts` (bytes per second or a size such as
//! `"500K"`): the torrent's own speed limits, as `t.upload_limit`/`t.download_limit` set them.
//!
//! Each probe (`bitfield`, `download_piece`) is its own short connection with a fresh peer id, so a
//! peer still closing the previous probe's connection does not take the next one for a duplicate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Array, Blob, Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use super::runner::{Owned, Runner};
use crate::engine::{probe, TorrentState, TorrentStats};
use crate::metainfo::Metainfo;
use crate::script::host::{cancelled_error, HostContext, Opts};
use crate::script::live::{live_stats, AfterRemove, LiveStats};
use crate::types::PeerId;
use crate::units::human_bytes;

/// A torrent running in this process's peer session.
#[derive(Clone)]
pub struct Job {
    pub run: Runner,
    ctx: Arc<HostContext>,
}

/// Done over the wanted bytes (every byte unless files are skipped).
fn progress_of(s: &TorrentStats) -> f64 {
    if s.bytes_wanted == 0 {
        1.0
    } else {
        (s.bytes_wanted - s.bytes_left) as f64 / s.bytes_wanted as f64
    }
}

/// Every wanted piece verified.
fn is_complete(s: &TorrentStats) -> bool {
    s.pieces_have == s.pieces_total || (s.bytes_left == 0 && s.state == TorrentState::Seeding)
}

/// One torrent's live numbers as a map (what `stats` returns).
pub(crate) fn stats_map(name: &str, ih: &str, s: &TorrentStats) -> Map {
    live_map(ih, &live_stats(name, s))
}

/// Live numbers as a map, wherever they come from (this process, or the shell or daemon that owns
/// torrents.toml): what `stats` returns and `torrents()` merges in.
pub(crate) fn live_map(ih: &str, s: &LiveStats) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), s.name.clone().into());
    m.insert("info_hash".into(), ih.to_string().into());
    match s.state.split_once(": ") {
        Some(("error", e)) => {
            m.insert("state".into(), "error".into());
            m.insert("error".into(), e.to_string().into());
        }
        _ => {
            m.insert("state".into(), s.state.clone().into());
        }
    }
    m.insert("progress".into(), s.progress.into());
    m.insert("pieces_have".into(), (s.pieces_have as i64).into());
    m.insert("pieces_total".into(), (s.pieces_total as i64).into());
    m.insert("size".into(), (s.size as i64).into());
    m.insert("wanted".into(), (s.wanted as i64).into());
    m.insert("sequential".into(), s.sequential.into());
    m.insert("verified".into(), (s.verified as i64).into());
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
    m.insert("save_path".into(), s.data_dir.display().to_string().into());
    m
}

/// A job's state: the engine's, or `removed` once its torrent left the session.
fn job_state(h: &Runner) -> String {
    if h.is_removed() {
        "removed".into()
    } else {
        state_name(&h.stats().state)
    }
}

fn state_name(s: &TorrentState) -> String {
    match s {
        TorrentState::Error(_) => "error".into(),
        other => other.to_string(),
    }
}

impl Job {
    fn stats(&self) -> TorrentStats {
        self.run.stats()
    }

    fn stats_map(&self) -> Map {
        let mut m = stats_map(
            self.run.name(),
            &self.run.info_hash().to_hex(),
            &self.stats(),
        );
        m.insert("state".into(), job_state(&self.run).into());
        m
    }

    /// Waits until every piece is verified on disk; `timeout` bounds the wait (returns false then).
    fn wait(&self, timeout: Option<Duration>) -> Result<bool, Box<EvalAltResult>> {
        let fut = self.run.wait_complete();
        let r = match timeout {
            // The timer is made inside the runtime (a tokio timer cannot be created outside one).
            Some(t) => match self
                .ctx
                .block_on(async move { tokio::time::timeout(t, fut).await })?
            {
                Ok(r) => r,
                Err(_) => return Ok(false),
            },
            None => self.ctx.block_on(fut)?,
        };
        r.map(|_| true)
            .or_else(|e| fail("wait", format!("{}: {e:#}", self.run.name())))
    }

    /// Shows progress until the download completes (then, with `keep_seeding`, seeding figures until
    /// Ctrl-C) and returns a summary. Ctrl-C before completion stops watching, not the transfer: in
    /// the shell the summary then has `interrupted` set (the download goes on in the background);
    /// elsewhere it is the command's cancellation.
    /// With `stall`, a download that verifies nothing new for that long is an error (the transfer
    /// itself goes on, as after Ctrl-C; what it has is kept for a later start).
    fn follow(
        &self,
        keep_seeding: bool,
        stall: Option<Duration>,
    ) -> Result<Map, Box<EvalAltResult>> {
        let started = Instant::now();
        let first = self.stats();
        let mut last_gain = (first.bytes_verified, Instant::now());
        let bar = self.ctx.progress.then(|| {
            let b = indicatif::ProgressBar::new(first.bytes_wanted);
            // The name takes at most 20 columns, the status line what is left.
            b.set_style(super::progress_style(
                "{prefix} {bar} {percent:>3}% {wide_msg}",
                60,
                25,
            ));
            let name = self.run.name();
            b.set_prefix(match name.char_indices().nth(19) {
                Some((i, _)) if name.chars().count() > 20 => format!("{}…", &name[..i]),
                _ => name.to_string(),
            });
            b.enable_steady_tick(Duration::from_millis(250));
            crate::terminal::ShownBar::new(b)
        });
        let mut last_line = Instant::now();
        let mut completed_at: Option<Instant> = None;
        let outcome = loop {
            let s = self.stats();
            if let TorrentState::Error(e) = &s.state {
                break Err(format!("{}: {e}", self.run.name()));
            }
            if self.run.is_removed() {
                // Removed (or cancelled) meanwhile: nothing more to follow.
                if completed_at.is_none() && !is_complete(&s) {
                    break Err(format!(
                        "{} was removed before it completed",
                        self.run.name()
                    ));
                }
                break Ok(s);
            }
            let done = is_complete(&s) && s.state != TorrentState::Checking;
            if s.bytes_verified != last_gain.0 || s.state == TorrentState::Checking {
                last_gain = (s.bytes_verified, Instant::now());
            }
            if let Some(limit) = stall.filter(|_| !done) {
                if last_gain.1.elapsed() >= limit {
                    break Err(format!(
                        "{}: nothing new verified for {} s ({} peers, {:.1}% done); \
                         what is verified stays for the next start",
                        self.run.name(),
                        limit.as_secs_f64(),
                        s.peers,
                        progress_of(&s) * 100.0
                    ));
                }
            }
            if done && completed_at.is_none() {
                completed_at = Some(Instant::now());
                if !keep_seeding {
                    break Ok(s);
                }
            }
            let msg = status_line(&s);
            match &bar {
                Some(b) => {
                    b.set_length(s.bytes_wanted);
                    b.set_position(s.bytes_wanted - s.bytes_left);
                    b.set_message(msg);
                }
                None if last_line.elapsed() >= Duration::from_secs(10) => {
                    self.ctx.print(&format!(
                        "{} {:.1}% {msg}",
                        self.run.name(),
                        progress_of(&s) * 100.0
                    ));
                    last_line = Instant::now();
                }
                None => {}
            }
            if self.ctx.cancelled() {
                if done {
                    // Ctrl-C is how seeding ends: the rest of the script goes on.
                    self.ctx
                        .cancel
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    break Ok(s);
                }
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                if self.ctx.in_shell() {
                    // The shell's session outlives the command: the download goes on, and the
                    // summary says it was only the watching that stopped.
                    self.ctx
                        .cancel
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    let mut summary = self.stats_map();
                    summary.insert("interrupted".into(), true.into());
                    return Ok(summary);
                }
                return Err(cancelled_error());
            }
            if let Err(e) = self.ctx.check_time_limit() {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                return Err(e);
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        let s = outcome.or_else(|e| fail("follow", e))?;
        let mut summary = self.stats_map();
        summary.insert("interrupted".into(), false.into());
        let secs = completed_at
            .map_or(started.elapsed(), |t| t - started)
            .as_secs_f64()
            .max(0.001);
        summary.insert("seconds".into(), secs.into());
        // Nothing came from the network: the data was all there (found by the check on start).
        summary.insert("already_complete".into(), (s.downloaded == 0).into());
        summary.insert(
            "average_rate".into(),
            ((s.downloaded as f64 / secs) as i64).into(),
        );
        Ok(summary)
    }
}

fn status_line(s: &TorrentStats) -> String {
    let eta = if s.down_rate > 0 && s.bytes_left > 0 {
        let secs = s.bytes_left / s.down_rate.max(1);
        format!(
            " eta {}",
            humantime::format_duration(Duration::from_secs(secs))
        )
    } else {
        String::new()
    };
    format!(
        "{} down {}/s up {}/s peers {}{eta}",
        state_name(&s.state),
        human_bytes(s.down_rate),
        human_bytes(s.up_rate),
        s.peers
    )
}

fn parse_peer(func: &str, peer: &str) -> Result<SocketAddr, Box<EvalAltResult>> {
    peer.parse().or_else(|_| {
        fail(
            func,
            format!("{peer:?} is not a peer address like 127.0.0.1:6881"),
        )
    })
}

fn load_meta(func: &str, torrent: &str) -> Result<Metainfo, Box<EvalAltResult>> {
    crate::source::load_file(Path::new(torrent)).or_else(|e| fail(func, format!("{e:#}")))
}

/// The folder a torrent's data goes in must be a folder (a download makes it when missing); a seed's
/// must also hold at least one of the torrent's files, so a mistyped folder is not mistaken for data to
/// fetch from scratch.
fn check_data_dir(
    func: &str,
    meta: &Metainfo,
    dir: &Path,
    seeding: bool,
) -> Result<(), Box<EvalAltResult>> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return fail(func, format!("{shown} is not a folder")),
        Ok(_) => {}
        Err(_) if seeding => return fail(func, format!("{shown}: no such folder")),
        Err(_) => return Ok(()),
    }
    let mut files = meta.info.files.iter().filter(|f| !f.padding);
    if seeding && !files.any(|f| dir.join(&f.path).is_file()) {
        let top = meta.info.files.first().map(|f| {
            f.path
                .components()
                .next()
                .map_or(f.path.clone(), |c| PathBuf::from(c.as_os_str()))
        });
        return fail(
            func,
            format!(
                "no data of {} in {shown} (expected {})",
                meta.info.name,
                dir.join(top.unwrap_or_default()).display()
            ),
        );
    }
    Ok(())
}

/// Adds the torrent (see [`add_torrent`]), then applies the `up_limit`/`down_limit` options (bytes
/// per second or a size such as `"500K"`) as its own speed limits, wherever it runs.
fn add(
    ctx: &Arc<HostContext>,
    func: &'static str,
    torrent: &str,
    data_dir: Option<String>,
    opts: &Map,
    seeding: bool,
) -> Result<Job, Box<EvalAltResult>> {
    let limit = |key: &str| match opts.get(key) {
        Some(v) => super::handles::rate_arg(func, v).map(Some),
        None => Ok(None),
    };
    let (up, down) = (limit("up_limit")?, limit("down_limit")?);
    let job = add_torrent(ctx, func, torrent, data_dir, opts, seeding)?;
    if up.is_some() || down.is_some() {
        let (ih, name) = (job.run.info_hash(), job.run.name().to_string());
        super::handles::set_limits(ctx, &ih, &name, func, |l| {
            l.upload = up.unwrap_or(l.upload);
            l.download = down.unwrap_or(l.download);
        })?;
    }
    Ok(job)
}

fn add_torrent(
    ctx: &Arc<HostContext>,
    func: &'static str,
    torrent: &str,
    data_dir: Option<String>,
    opts: &Map,
    seeding: bool,
) -> Result<Job, Box<EvalAltResult>> {
    let o = Opts { func, map: opts };
    o.check(&[
        "output",
        "peers",
        "trackers",
        "paused",
        "register",
        "only",
        "sequential",
        "up_limit",
        "down_limit",
    ])?;
    let only = match opts.get("only").filter(|v| !v.is_unit()) {
        Some(v) => super::files::only_globs(func, v)?,
        None => Vec::new(),
    };
    let sequential = o.bool("sequential")?;
    let mut peers = Vec::new();
    if let Some(list) = opts.get("peers").filter(|v| !v.is_unit()) {
        let list = list
            .clone()
            .into_array()
            .or_else(|_| fail(func, "`peers` must be an array of addresses"))?;
        for p in list {
            peers.push(parse_peer(func, &p.to_string())?);
        }
    }
    let trackers = match opts.get("trackers").filter(|v| !v.is_unit()) {
        Some(list) => {
            let list = list
                .clone()
                .into_array()
                .or_else(|_| fail(func, "`trackers` must be an array of URLs"))?;
            let mut urls = Vec::with_capacity(list.len());
            for t in list {
                let url = t.to_string();
                crate::metainfo::check_tracker_url(&url).or_else(|e| fail(func, e))?;
                urls.push(url);
            }
            Some(urls)
        }
        None => None,
    };
    let register = match opts.get("register").filter(|v| !v.is_unit()) {
        None => true,
        Some(_) => o.bool("register")?,
    };
    let paused = o.bool("paused")?;
    let output = o.string("output")?;
    // Every option is checked before a magnet link's metadata is fetched.
    if let Ok(m) = btorrent_proto::magnet::Magnet::parse(torrent) {
        // Already running: no need to fetch its metadata again.
        if let Some(h) = ctx.session()?.get(&m.info_hash) {
            return Ok(Job {
                run: Runner::Here(h),
                ctx: ctx.clone(),
            });
        }
    }
    let opened = super::torrent_file::open_source(ctx, func, torrent, true, peers.clone())?;
    let meta = opened.meta;
    let source_file = opened.path.unwrap_or_else(|| PathBuf::from(torrent));
    let cfg = ctx.config()?;
    let data_dir = match data_dir.or(output) {
        Some(d) => PathBuf::from(d),
        None => cfg.output_dir(),
    };
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
    check_data_dir(func, &meta, &data_dir, seeding)?;
    let files = if only.is_empty() {
        None
    } else {
        Some(super::files::only(func, &meta.info, &only)?)
    };
    let here = ctx
        .peer
        .current()
        .is_some_and(|s| s.get(&meta.info_hash).is_some());
    if register && !here {
        // A shell or daemon owning torrents.toml runs it: one process per torrent.
        let handoff = crate::actions::Handoff {
            torrent: std::path::absolute(&source_file).unwrap_or_else(|_| source_file.clone()),
            data_dir: data_dir.clone(),
            paused,
            seeding,
            peers: peers.clone(),
            trackers: trackers.clone(),
            files: files.clone(),
            sequential,
        };
        let handed = ctx
            .block_on(ctx.live.hand_to_owner(handoff))?
            .or_else(|e| fail(func, format!("{e:#}")))?;
        if handed {
            let owned = Owned::new(meta.info_hash, meta.info.name.clone(), ctx.live.clone());
            return Ok(Job {
                run: Runner::Owner(Arc::new(owned)),
                ctx: ctx.clone(),
            });
        }
    }
    let session = ctx.session()?;
    if let Some(h) = session.get(&meta.info_hash) {
        return Ok(Job {
            run: Runner::Here(h),
            ctx: ctx.clone(),
        });
    }
    let adding = crate::actions::Adding {
        meta,
        src: Some(&source_file),
        data_dir,
        paused,
        seeding,
        register,
        peers,
        trackers,
        files,
        sequential,
    };
    let handle = ctx
        .block_on(crate::actions::add(ctx.torrents(), &session, adding))?
        .or_else(|e| fail(func, format!("{e:#}")))?;
    Ok(Job {
        run: Runner::Here(handle),
        ctx: ctx.clone(),
    })
}

fn register_type(engine: &mut Engine) {
    engine.register_type_with_name::<Job>("Job");
    engine.register_get("name", |t: &mut Job| t.run.name().to_string());
    engine.register_get("info_hash", |t: &mut Job| t.run.info_hash().to_hex());
    engine.register_get("state", |t: &mut Job| job_state(&t.run));
    engine.register_get("progress", |t: &mut Job| progress_of(&t.stats()));
    engine.register_get("size", |t: &mut Job| t.stats().bytes_total as i64);
    engine.register_get("down_rate", |t: &mut Job| t.stats().down_rate as i64);
    engine.register_get("up_rate", |t: &mut Job| t.stats().up_rate as i64);
    engine.register_get("downloaded", |t: &mut Job| t.stats().downloaded as i64);
    engine.register_get("uploaded", |t: &mut Job| t.stats().uploaded as i64);
    engine.register_get("peers", |t: &mut Job| t.stats().peers as i64);
    engine.register_get("save_path", |t: &mut Job| {
        t.stats().data_dir.display().to_string()
    });
    engine.register_get("stats", |t: &mut Job| t.stats_map());
    engine.register_fn("to_string", |t: &mut Job| {
        format!("Job({} {})", t.run.name(), t.run.info_hash())
    });
    engine.register_fn("wait", |t: &mut Job| t.wait(None));
    engine.register_fn("wait", |t: &mut Job, secs: Dynamic| {
        t.wait(Some(super::timers::seconds("wait", &secs)?))
    });
    engine.register_fn("follow", |t: &mut Job| t.follow(false, None));
    engine.register_fn("follow", |t: &mut Job, keep_seeding: bool| {
        t.follow(keep_seeding, None)
    });
    engine.register_fn(
        "follow",
        |t: &mut Job, keep_seeding: bool, stall_secs: Dynamic| {
            let stall = super::timers::seconds("follow", &stall_secs)?;
            t.follow(keep_seeding, Some(stall))
        },
    );
    engine.register_fn("cancel", |t: &mut Job| -> Result<(), Box<EvalAltResult>> {
        let ih = t.run.info_hash();
        // Whoever runs it stops it and marks it `stopped` in one step. Cancelling a job already
        // cancelled (or removed otherwise) changes nothing.
        let stopped = match &t.run {
            Runner::Owner(_) => t
                .ctx
                .block_on(t.ctx.live.remove(ih, AfterRemove::MarkStopped))?,
            Runner::Here(_) => t
                .ctx
                .block_on(t.ctx.peer.remove_managed(ih, AfterRemove::MarkStopped))?,
        };
        stopped
            .map(|_| ())
            .or_else(|e| fail("cancel", format!("{e:#}")))
    });
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    register_type(engine);
    let c = ctx.clone();
    engine.register_fn("start", move |torrent: &str| {
        add(&c, "start", torrent, None, &Map::new(), false)
    });
    let c = ctx.clone();
    engine.register_fn("start", move |torrent: &str, opts: Map| {
        add(&c, "start", torrent, None, &opts, false)
    });
    let c = ctx.clone();
    engine.register_fn("seed", move |torrent: &str, data_dir: &str| {
        add(
            &c,
            "seed",
            torrent,
            Some(data_dir.to_string()),
            &Map::new(),
            true,
        )
    });
    let c = ctx.clone();
    engine.register_fn("seed", move |torrent: &str, data_dir: &str, opts: Map| {
        add(&c, "seed", torrent, Some(data_dir.to_string()), &opts, true)
    });
    let c = ctx.clone();
    engine.register_fn(
        "bitfield",
        move |peer: &str, torrent: &str| -> Result<Map, Box<EvalAltResult>> {
            let addr = parse_peer("bitfield", peer)?;
            let meta = load_meta("bitfield", torrent)?;
            let bf = c
                .block_on(probe::fetch_bitfield(addr, &meta, PeerId::generate()))?
                .or_else(|e| fail("bitfield", format!("{peer}: {e:#}")))?;
            let n = meta.info.piece_count();
            let bits: Array = (0..n).map(|i| Dynamic::from(bf.get(i))).collect();
            let have = (0..n).filter(|&i| bf.get(i)).count();
            let mut m = Map::new();
            m.insert("total".into(), (n as i64).into());
            m.insert("have".into(), (have as i64).into());
            m.insert("complete".into(), (have == n).into());
            m.insert("bits".into(), bits.into());
            Ok(m)
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "download_piece",
        move |peer: &str, torrent: &str, index: i64| -> Result<Blob, Box<EvalAltResult>> {
            let addr = parse_peer("download_piece", peer)?;
            let meta = load_meta("download_piece", torrent)?;
            let index = u32::try_from(index)
                .or_else(|_| fail("download_piece", format!("bad piece index {index}")))?;
            c.block_on(probe::download_piece(
                addr,
                &meta,
                index,
                PeerId::generate(),
            ))?
            .or_else(|e| fail("download_piece", format!("{e:#}")))
        },
    );
}
