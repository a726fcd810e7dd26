//! What is done to a managed torrent, whoever asks: the shell's commands (through the script
//! primitives, `script::prims`) and the RPC ([`crate::rpc`]) call these same functions, so
//! the running session and torrents.toml change together and the same way.
//!
//! - [`pause`], [`resume`]: the running torrent, and its `state` in torrents.toml; [`finish`]: a
//!   pause by a seeding goal, which marks the entry `finished`;
//! - [`set_goals`]: its seeding goals, recorded (the [`crate::goals`] task enforces them);
//! - [`remove`]: stops it, optionally deletes its own files, and drops its entry;
//! - [`move_to`]: moves its data (running or not) and records the new folder; [`relocate`]: records
//!   a folder its data was moved to by other means (a running torrent checks it);
//! - [`choose_files`]: file priorities and sequential mode, running and in torrents.toml;
//!   [`rename_path`]: a file or folder of it renamed, on disk and in torrents.toml;
//! - [`set_limits`]: its own speed limits, applied at once and recorded; [`set_trackers`]: its
//!   trackers, written into its .torrent and followed at once;
//! - [`add`]: registers a torrent in torrents.toml (its .torrent kept in `torrents_dir`) and adds it
//!   to the session.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};

use crate::config::{Config, FileChoice, ManagedTorrent, Origin, SeedGoals};
use crate::engine::storage::Storage;
use crate::engine::{AddOptions, CheckReport, FilePriority, Session, TorrentHandle, TorrentLimits};
use crate::metainfo::Metainfo;
use crate::script::live::{AfterRemove, LiveTorrents};
use crate::torrents::Torrents;
use crate::types::InfoHash;

/// Changes the torrents.toml entry of `ih` under the file lock.
pub fn update_entry(
    torrents: &Torrents,
    ih: &InfoHash,
    name: &str,
    f: impl FnOnce(&mut ManagedTorrent) -> Result<()>,
) -> Result<()> {
    torrents.update(|cfg| {
        let e = cfg
            .find_mut(ih)
            .ok_or_else(|| anyhow!("{name} is not a managed torrent any more"))?;
        f(e)
    })
}

/// Changes the torrent's own speed limits where it runs (here or in the owner of torrents.toml) and
/// records them.
pub fn set_limits(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
    limits: TorrentLimits,
) -> Result<()> {
    let running = live.set_limits(ih, limits);
    torrents.update(|cfg| match cfg.find_mut(ih) {
        Some(e) => {
            e.limits = limits.into();
            Ok(())
        }
        // A torrent run without being managed (`register: false`) has nothing to record.
        None if running => Ok(()),
        None => bail!("{name} is neither running nor a managed torrent"),
    })
}

/// Puts the torrent in the bandwidth group `group` (or in none) where it runs and records it; a
/// group not in the settings yet is added to them, unlimited.
pub fn set_group(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
    group: Option<&str>,
) -> Result<()> {
    let running = live.set_group(ih, group);
    torrents.update(|cfg| {
        // A group first named here is kept (unlimited) with the others, as the session keeps it.
        if let Some(g) = group {
            let groups = &mut cfg.settings.bandwidth_groups;
            groups.entry(g.to_string()).or_default();
        }
        match cfg.find_mut(ih) {
            Some(e) => {
                e.group = group.map(str::to_string);
                Ok(())
            }
            None if running => Ok(()),
            None => bail!("{name} is neither running nor a managed torrent"),
        }
    })
}

/// Stops the torrent's transfers (if it runs here) and records `paused`.
pub fn pause(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<()> {
    live.pause(ih);
    update_entry(torrents, ih, name, |e| {
        e.state = "paused".into();
        Ok(())
    })
}

/// Puts a torrent in its queue ([`crate::queue`]): recorded `queued`, its transfers stopped until
/// the queue starts it. Nothing happens to a torrent that is no longer `downloading` or `seeding`
/// in torrents.toml (paused or removed since the queue looked); true when it was queued.
pub fn enqueue(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<bool> {
    let queued = torrents
        .update(|cfg| match cfg.find_mut(ih) {
            Some(e) if e.state == "downloading" || e.state == "seeding" => {
                e.state = QUEUED.into();
                Ok(true)
            }
            _ => Ok(false),
        })
        .with_context(|| format!("{name}: cannot queue it"))?;
    if queued {
        live.pause(ih);
    }
    Ok(queued)
}

/// Starts a torrent that waited in its queue ([`resume_now`]), unless it left the queue
/// since the queue looked (paused, removed); true when it was started.
pub fn dequeue(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<bool> {
    let waiting = torrents
        .fresh()?
        .find(ih)
        .is_some_and(|e| e.state == QUEUED);
    if waiting {
        resume_now(torrents, live, ih, name)?;
    }
    Ok(waiting)
}

/// Where `queue-move-*` (or `torrent-set`'s `queuePosition`) moves torrents in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMove {
    Top,
    Up,
    Down,
    Bottom,
    /// To this place (0 is the top; past the end is the bottom).
    To(usize),
}

/// Moves the managed torrents `chosen` in the queue, which is the order of torrents.toml's entries:
/// to the top or bottom (keeping their order among themselves), or one place up or down (a run of
/// chosen torrents moves as one). Torrents that are not managed have no place and are left out.
pub fn queue_move(torrents: &Torrents, chosen: &[InfoHash], to: QueueMove) -> Result<()> {
    torrents.update(|cfg| {
        let picked: Vec<bool> = cfg
            .torrents
            .iter()
            .map(|t| t.hash().is_some_and(|ih| chosen.contains(&ih)))
            .collect();
        crate::queue::reorder(&mut cfg.torrents, &picked, to);
        Ok(())
    })
}

/// The state torrents.toml records for a torrent waiting in the download or the seeding queue.
pub const QUEUED: &str = "queued";

/// A [`pause`] because a seeding goal was reached: the entry also says `finished` (until resumed).
/// The entry is recorded before the transfers stop, so whoever sees the torrent stopped (the RPC's
/// `status`) also sees why (`isFinished`).
pub fn finish(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<()> {
    let recorded = update_entry(torrents, ih, name, |e| {
        e.state = "paused".into();
        e.goals.finished = true;
        Ok(())
    });
    live.pause(ih);
    recorded
}

/// Records the torrent's seeding goals (what `finished` says is kept).
pub fn set_goals(torrents: &Torrents, ih: &InfoHash, name: &str, goals: SeedGoals) -> Result<()> {
    update_entry(torrents, ih, name, |e| {
        e.goals = SeedGoals {
            finished: e.goals.finished,
            ..goals
        };
        Ok(())
    })
}

/// Gives the torrent `labels` (replacing those it had), checked by [`crate::config::checked_labels`],
/// and records them; the labels they came to are returned.
pub fn set_labels<S: AsRef<str>>(
    torrents: &Torrents,
    ih: &InfoHash,
    name: &str,
    labels: impl IntoIterator<Item = S>,
) -> Result<Vec<String>> {
    let labels = crate::config::checked_labels(labels).map_err(|e| anyhow!("{name}: {e}"))?;
    update_entry(torrents, ih, name, |e| {
        e.labels = labels.clone();
        Ok(())
    })?;
    Ok(labels)
}

/// Resumes the torrent (if it runs here) and records `seeding` or `downloading`; while the queue of
/// its direction (the download queue for a download, the seeding queue for a complete torrent)
/// applies to it, it goes through that queue instead: recorded `queued`, it starts when the queue
/// gives it a place ([`crate::queue`]), at once if one is free. A queue applies while this process
/// keeps it, and to a torrent that runs in the shell or daemon owning torrents.toml (which keeps
/// it) when a one-shot command resumes it there.
pub fn resume(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<()> {
    use crate::queue::Direction;
    let settings = &torrents.config()?.settings;
    let runs_here = torrents
        .current_session()
        .is_some_and(|s| s.get(ih).is_some());
    let applies = |d| {
        torrents.queue().holds(settings, d)
            || (crate::queue::Rules::of(settings).size(d).is_some() && !runs_here)
    };
    // One whose data check has not ended may be either.
    let queue_applies = live.stats(ih).is_some_and(|s| match Direction::of(&s) {
        Some(d) => applies(d),
        None => applies(Direction::Download) || applies(Direction::Seed),
    });
    if queue_applies {
        return update_entry(torrents, ih, name, |e| {
            e.goals.finished = false;
            e.state = QUEUED.into();
            Ok(())
        });
    }
    resume_now(torrents, live, ih, name)
}

/// Resumes the torrent (if it runs here) whatever the queues say (a queue starting it,
/// `torrent-start-now`), and records `seeding` or `downloading`.
pub fn resume_now(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<()> {
    let running = live.resume(ih);
    let now = live.stats(ih);
    update_entry(torrents, ih, name, |e| {
        e.goals.finished = false;
        e.state = match (running, now) {
            (true, Some(s)) if s.progress() >= 1.0 => "seeding".into(),
            (true, Some(_)) => "downloading".into(),
            _ if e.origin == Origin::Added => "downloading".into(),
            _ => "seeding".into(),
        };
        Ok(())
    })
}

/// What [`remove`] deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub files: usize,
    pub bytes: u64,
    /// The folder the files were in.
    pub data: PathBuf,
}

/// Stops the torrent (announcing `stopped`), forgets it, and drops its entry; with `delete_data`,
/// then deletes the files the torrent lists and the folders they leave empty (nothing else), and its
/// resume data.
pub async fn remove(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: InfoHash,
    name: &str,
    delete_data: bool,
) -> Result<Option<Deleted>> {
    // What to delete is known before anything stops: a torrent whose .torrent cannot be read is not
    // removed half-way.
    let doomed = if delete_data {
        let cfg = torrents.config()?;
        let entry = cfg.find(&ih);
        let dir = match (live.stats(&ih), entry) {
            (Some(l), _) => Some(l.data_dir),
            (None, Some(e)) => Some(cfg.resolve(&e.data)),
            _ => None,
        };
        let (Some(e), Some(dir)) = (entry, dir) else {
            bail!("cannot delete the data of {name}: its .torrent is not known");
        };
        let meta = Metainfo::load(&cfg.resolve(&e.file)).map_err(|e| anyhow!("{e}"))?;
        let resume = crate::engine::resume::file_in(&crate::services::resume_dir(&cfg), &ih);
        Some((storage_of(e, &meta, dir)?, resume))
    } else {
        None
    };
    live.remove(ih, AfterRemove::Forget).await?;
    let mut out = None;
    if let Some((storage, resume)) = doomed {
        let dir = storage.data_dir();
        let (files, bytes) = storage
            .delete_files()
            .with_context(|| format!("cannot delete the data of {name} in {}", dir.display()))?;
        let _ = std::fs::remove_file(resume);
        let data = std::path::absolute(&dir).unwrap_or(dir);
        out = Some(Deleted { files, bytes, data });
    }
    torrents.update(|cfg| {
        cfg.remove(&ih);
        Ok(())
    })?;
    Ok(out)
}

/// Moves the torrent's data into `dir` (made if missing) and records it; a running torrent goes on
/// from there, one not running here just has its files moved.
pub async fn move_to(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: InfoHash,
    name: &str,
    dir: &Path,
) -> Result<()> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if !live.move_to(ih, dir.clone()).await? {
        let cfg = torrents.config()?;
        let Some(e) = cfg.find(&ih) else {
            bail!("{name} is not a managed torrent");
        };
        let meta = Metainfo::load(&cfg.resolve(&e.file)).map_err(|e| anyhow!("{e}"))?;
        let storage = storage_of(e, &meta, cfg.resolve(&e.data))?;
        storage
            .move_to(&dir)
            .with_context(|| format!("cannot move {name} to {}", dir.display()))?;
    }
    // The data is where it was asked to be: no move to its own folder is pending any more.
    update_entry(torrents, &ih, name, |e| {
        e.data = dir;
        e.complete_dir = None;
        Ok(())
    })
}

/// The data of a managed torrent that does not run here, in `dir`, its renamed files where they were
/// renamed to.
fn storage_of(e: &ManagedTorrent, meta: &Metainfo, dir: PathBuf) -> Result<Storage> {
    let storage = Storage::new(meta.info.clone(), dir);
    if let Some(paths) = e.files.paths(&meta.info) {
        storage
            .set_paths(paths)
            .with_context(|| format!("the renamed files of {} in torrents.toml", e.name))?;
    }
    Ok(storage)
}

/// Renames `path` (a file of the torrent or a folder holding some, as its file list gives them)
/// to `new_name` in the same folder, on disk and for the torrent (see
/// [`crate::engine::TorrentHandle::rename_path`]), running or not, and records it. Returns every
/// file's path after the rename.
pub async fn rename_path(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: InfoHash,
    name: &str,
    path: &Path,
    new_name: &str,
) -> Result<Vec<PathBuf>> {
    let cfg = torrents.config()?;
    let Some(e) = cfg.find(&ih) else {
        bail!("{name} is not a managed torrent");
    };
    let meta = Metainfo::load(&cfg.resolve(&e.file)).map_err(|e| anyhow!("{e}"))?;
    let paths = match live
        .rename_path(ih, path.to_path_buf(), new_name.to_string())
        .await?
    {
        Some(paths) => paths,
        None => {
            let storage = storage_of(e, &meta, cfg.resolve(&e.data))?;
            storage
                .rename(path, new_name)
                .with_context(|| format!("cannot rename {} of {name}", path.display()))?;
            storage.paths()
        }
    };
    update_entry(torrents, &ih, name, |e| {
        e.files.record_paths(&meta.info, &paths);
        // Its top folder (or its one file) renamed: the torrent is listed under the new name, as
        // Transmission lists it.
        if path == Path::new(&meta.info.name) {
            e.name = new_name.to_string();
        }
        Ok(())
    })?;
    Ok(paths)
}

/// Writes `tiers` (BEP 12) as the trackers of the managed torrent's .torrent (its `info`, so its
/// info-hash, unchanged) and has the running torrent announce to them from now on.
pub fn set_trackers(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
    tiers: &[Vec<String>],
) -> Result<()> {
    let cfg = torrents.config()?;
    let Some(e) = cfg.find(ih) else {
        bail!("{name} is not a managed torrent");
    };
    let file = cfg.resolve(&e.file);
    let meta = Metainfo::load(&file).map_err(|e| anyhow!("{e}"))?;
    let bytes = crate::metainfo::set_tracker_tiers(&meta, tiers).map_err(|e| anyhow!("{e}"))?;
    crate::fsutil::write_atomic(&file, &bytes)
        .with_context(|| format!("cannot write {}", file.display()))?;
    let written = Metainfo::from_bytes(&bytes).map_err(|e| anyhow!("{e}"))?;
    live_trackers(live, &written)
}

/// After a managed torrent's .torrent changed its trackers (`meta` is what it holds now): the
/// running torrent announces to them.
pub fn live_trackers(live: &dyn LiveTorrents, meta: &Metainfo) -> Result<()> {
    live.set_trackers(&meta.info_hash, meta.tracker_tiers())?;
    Ok(())
}

/// Points the torrent at `dir` (made if missing), where its files were put by other means, and
/// records it; nothing is moved. A running torrent checks the data there and goes on from it (what
/// is not there is downloaded again); `None` when it is not running here (its next start finds the
/// files there).
pub async fn relocate(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: InfoHash,
    name: &str,
    dir: &Path,
) -> Result<Option<CheckReport>> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if torrents.config()?.find(&ih).is_none() {
        bail!("{name} is not a managed torrent");
    }
    let report = live.relocate(ih, dir.clone()).await?;
    update_entry(torrents, &ih, name, |e| {
        e.data = dir;
        e.complete_dir = None;
        Ok(())
    })?;
    Ok(report)
}

/// Keeps the .torrent with the managed ones: a copy in `torrents_dir` unless it is already there
/// (`src`, where it came from, if any, is used when the copy cannot be made).
pub fn keep_torrent_file(cfg: &Config, src: Option<&Path>, meta: &Metainfo) -> Result<PathBuf> {
    let dir = cfg.torrents_dir();
    let dest = dir.join(format!("{}.torrent", meta.info.name));
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    if src.is_some_and(|s| same(s, &dest)) {
        return Ok(dest);
    }
    let fallback = |e: anyhow::Error| src.map(Path::to_path_buf).ok_or(e);
    match Metainfo::load(&dest) {
        Ok(existing) if existing.info_hash == meta.info_hash => Ok(dest),
        Ok(_) if src.is_some() => Ok(src.expect("checked").to_path_buf()),
        Ok(_) => {
            let other = dir.join(format!("{}.torrent", meta.info_hash.to_hex()));
            match crate::fsutil::write_atomic(&other, meta.as_bytes()) {
                Ok(()) => Ok(other),
                Err(e) => fallback(anyhow!("cannot write {}: {e}", other.display())),
            }
        }
        Err(_) => {
            let copied = std::fs::create_dir_all(&dir)
                .and_then(|_| crate::fsutil::write_atomic(&dest, meta.as_bytes()));
            match copied {
                Ok(()) => Ok(dest),
                Err(e) => fallback(anyhow!("cannot write {}: {e}", dest.display())),
            }
        }
    }
}

/// A torrent a one-shot command hands to the shell or daemon that owns torrents.toml (the control
/// socket's `add`), so that one process runs it. Paths are absolute.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Handoff {
    /// The .torrent file.
    pub torrent: PathBuf,
    pub data_dir: PathBuf,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub seeding: bool,
    #[serde(default)]
    pub peers: Vec<std::net::SocketAddr>,
    #[serde(default)]
    pub trackers: Option<Vec<String>>,
    /// Each file's priority (`None`: every file wanted).
    #[serde(default)]
    pub files: Option<Vec<FilePriority>>,
    #[serde(default)]
    pub sequential: bool,
    /// The mutable link it was started from, to follow.
    #[serde(default)]
    pub follow: Option<crate::config::Following>,
}

impl Handoff {
    /// Registers and adds the torrent in `session` (the owner's side of the hand-off).
    pub async fn add_in(self, torrents: &Torrents, session: &Session) -> Result<TorrentHandle> {
        let meta = crate::source::load_file(&self.torrent)?;
        let adding = Adding {
            meta,
            src: Some(&self.torrent),
            data_dir: self.data_dir.clone(),
            paused: self.paused,
            seeding: self.seeding,
            register: true,
            peers: self.peers.clone(),
            trackers: self.trackers.clone(),
            files: self.files.clone(),
            sequential: self.sequential,
            sequential_from: 0,
            labels: None,
            complete_dir: None,
            follow: self.follow.clone(),
            watch: None,
        };
        add(torrents, session, adding).await
    }
}

/// How [`add`] adds a torrent.
pub struct Adding<'a> {
    pub meta: Metainfo,
    /// The .torrent file it came from, if it came from one.
    pub src: Option<&'a Path>,
    pub data_dir: PathBuf,
    pub paused: bool,
    /// Recorded as `seeding` rather than `downloading` (the data is said to be there).
    pub seeding: bool,
    /// Written in torrents.toml (a probe or a test may run a torrent without managing it).
    pub register: bool,
    pub peers: Vec<std::net::SocketAddr>,
    pub trackers: Option<Vec<String>>,
    /// Each file's priority (`None`: every file wanted); recorded in torrents.toml.
    pub files: Option<Vec<FilePriority>>,
    /// Fetch pieces in order, from piece `sequential_from` (see
    /// [`crate::engine::TorrentHandle::set_sequential_from`]); recorded in torrents.toml.
    pub sequential: bool,
    pub sequential_from: u32,
    /// Its labels (checked), recorded with the entry before the torrent is added, so whoever sees
    /// it added (a program run for it, a handler) sees them; `None` keeps those it had.
    pub labels: Option<Vec<String>>,
    /// Where the data moves once complete, when `data_dir` is the incomplete folder
    /// ([`crate::incomplete::placement`]).
    pub complete_dir: Option<PathBuf>,
    /// The mutable link (BEP 46) it was started from, recorded to be followed
    /// ([`crate::following`]); `None` keeps what the entry had.
    pub follow: Option<crate::config::Following>,
    /// The watch-folder entry it stands for (taken over from the version before it, when a
    /// followed link moves); `None` keeps what the entry had.
    pub watch: Option<crate::config::WatchSource>,
}

/// Registers the torrent (unless `register` is off) and adds it to `session`; a torrent the
/// session already runs is returned as it is. Both happen under the membership lock, so a sync of
/// the session with torrents.toml cannot start it in between (without this add's options).
pub async fn add(torrents: &Torrents, session: &Session, a: Adding<'_>) -> Result<TorrentHandle> {
    let _set = torrents.membership().await;
    if let Some(h) = session.get(&a.meta.info_hash) {
        return Ok(h);
    }
    // A torrent managed before keeps its own speed limits.
    let mut limits = crate::engine::TorrentLimits::default();
    let mut group = None;
    let mut file_paths = None;
    // While this process keeps a queue that may apply, a torrent waits its turn there (checked,
    // no peer contacted); the queue starts it at once if it has a place. A download may turn out
    // complete once checked, so while either queue is kept it waits for the check: the queue then
    // starts it, or holds it in the seeding queue, before it has told anyone of itself.
    let queued = a.register && !a.paused && {
        let settings = &torrents.config()?.settings;
        torrents.queue().holds_new(settings, !a.seeding)
    };
    if a.register {
        let cfg = torrents.config()?;
        let file = keep_torrent_file(&cfg, a.src, &a.meta)?;
        let state = if a.paused {
            "paused"
        } else if queued {
            QUEUED
        } else if a.seeding {
            "seeding"
        } else {
            "downloading"
        };
        let (meta, data_dir) = (&a.meta, &a.data_dir);
        let mut files = FileChoice {
            sequential: a.sequential,
            sequential_from: a.sequential_from,
            ..Default::default()
        };
        if let Some(p) = &a.files {
            files.record(p);
        }
        torrents.update(|cfg| {
            let origin = cfg
                .find(&meta.info_hash)
                .map_or(Origin::Added, |t| t.origin);
            cfg.upsert(ManagedTorrent {
                files,
                complete_dir: a.complete_dir.clone(),
                ..ManagedTorrent::new(
                    meta.info.name.clone(),
                    &meta.info_hash,
                    file,
                    data_dir.clone(),
                    state,
                    origin,
                )
            });
            if let Some(t) = cfg.find_mut(&meta.info_hash) {
                if let Some(l) = &a.labels {
                    t.labels = l.clone();
                }
                if let Some(f) = &a.follow {
                    t.follow = Some(f.clone());
                }
                if let Some(w) = &a.watch {
                    t.origin = Origin::Watch;
                    t.watch = Some(w.clone());
                }
                limits = t.limits.engine();
                group = t.group.clone();
                file_paths = t.files.paths(&meta.info);
            }
            Ok(())
        })?;
    }
    let opts = AddOptions {
        data_dir: a.data_dir,
        paused: a.paused || queued,
        peers: a.peers,
        trackers: a.trackers,
        super_seed: None,
        files: a.files,
        sequential: a.sequential,
        sequential_from: a.sequential_from,
        limits,
        group,
        file_paths,
    };
    Ok(session.add(a.meta, opts).await?)
}

/// A change of the order in which a torrent fetches new pieces; `None` leaves that part as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderChange {
    /// Sequential mode on or off.
    #[serde(default)]
    pub sequential: Option<bool>,
    /// The piece sequential mode starts at.
    #[serde(default)]
    pub sequential_from: Option<u32>,
}

impl OrderChange {
    /// Sequential mode on or off, the start left as it is.
    pub fn sequential(on: Option<bool>) -> OrderChange {
        OrderChange {
            sequential: on,
            sequential_from: None,
        }
    }
}

/// Changes the priority of some files (by index) and, as `order` says, the order of new pieces,
/// in the running torrent and in torrents.toml. An index past the torrent's files, or a piece
/// past its pieces, is refused.
pub fn choose_files(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
    changes: &[(usize, FilePriority)],
    order: OrderChange,
) -> Result<()> {
    torrents.update(|cfg| {
        let file = cfg
            .find(ih)
            .ok_or_else(|| anyhow!("{name} is not a managed torrent any more"))?
            .file
            .clone();
        let info = crate::source::load_file(&cfg.resolve(&file))?.info;
        let n = info.files.len();
        if let Some((bad, _)) = changes.iter().find(|(f, _)| *f >= n) {
            bail!("{name} has no file {bad} (it has {n}, from 0)");
        }
        let pieces = info.piece_count();
        if let Some(bad) = order.sequential_from.filter(|&p| p as usize >= pieces) {
            bail!("{name} has no piece {bad} to start from (it has {pieces}, from 0)");
        }
        live.choose_files(ih, changes.to_vec(), order)?;
        let e = cfg.find_mut(ih).expect("found above");
        let mut p = e
            .files
            .priorities(n)
            .unwrap_or_else(|| vec![FilePriority::Normal; n]);
        for &(f, x) in changes {
            p[f] = x;
        }
        e.files.record(&p);
        if let Some(s) = order.sequential {
            e.files.sequential = s;
        }
        if let Some(p) = order.sequential_from {
            e.files.sequential_from = p;
        }
        Ok(())
    })
}

/// Largest .torrent fetched from a URL.
pub const MAX_TORRENT_DOWNLOAD: usize = 16 << 20;

/// How long a remote `torrent-add` of a magnet link waits for its metadata.
pub const REMOTE_METADATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The torrent a user names: a .torrent path, an `http(s)://` URL of one, or a magnet link whose
/// metadata `session` fetches (from the link's peers and trackers and the DHT) and saves in
/// `torrents_dir`. Returns the .torrent file too when there is one.
pub async fn load_source(
    source: &str,
    session: &Session,
    torrents_dir: PathBuf,
) -> Result<crate::source::Opened> {
    let s = source.trim();
    if crate::source::is_magnet_link(s) {
        let how = crate::source::Open {
            session,
            save_to: Some(torrents_dir),
            peers: Vec::new(),
            extra: None,
            timeout: REMOTE_METADATA_TIMEOUT,
            cancel: tokio_util::sync::CancellationToken::new(),
        };
        return crate::source::open(s, Some(how), |_| {}).await;
    }
    if s.starts_with("http://") || s.starts_with("https://") {
        let timeout = std::time::Duration::from_secs(30);
        let body = crate::http_fetch::get(s, MAX_TORRENT_DOWNLOAD, timeout).await?;
        let meta = Metainfo::from_bytes(&body).map_err(|e| anyhow!("{s}: {e}"))?;
        return Ok(crate::source::Opened {
            meta,
            path: None,
            from_magnet: false,
            files: None,
            mutable: None,
        });
    }
    crate::source::open(s, None, |_| {}).await
}
