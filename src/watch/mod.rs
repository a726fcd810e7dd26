//! The watch folder: drop a file or folder into `watch_dir` and, once its copy has finished, it is
//! hashed, its .torrent written into `torrents_dir`, registered in torrents.toml and seeded where it
//! lies; drop a `.torrent` and it is downloaded into `output_dir`, likewise a `.magnet` file or a `.txt`
//! file of magnet links (one per line, each an entry of its own, its metadata fetched first). No
//! command is typed.
//!
//! The folder says what is shared: while an entry is in it, it is shared; take it out and its torrent
//! stops and leaves the ledger (the data of a download stays in the output folder, and the .torrent
//! written for an entry stays in the torrents folder). The user's dropped files are never written,
//! moved or deleted.
//!
//! Parts:
//! - [`scan`]: which top-level entries are candidates, their fingerprint, the readiness rule;
//! - [`ledger`]: what each entry became, kept on its `[[torrent]]` entry in torrents.toml;
//! - [`actions`]: hashing an entry, reading a dropped .torrent, and the [`Sharing`] trait through
//!   which the watcher asks the peer engine to seed, download or stop;
//! - `inbox` and `worker`: the thread that waits for file events (`notify`, which only wake it),
//!   readiness deadlines and the periodic rescan (the fallback where events do not arrive, such as
//!   network mounts, and what finds entries present at start), and makes passes over the folder.
//!
//! The work is blocking (walking trees, hashing, the config file lock), so it runs on one dedicated
//! thread that calls [`Sharing`] through the runtime handle. Hashing itself uses every core.

pub mod actions;
mod inbox;
pub mod ledger;
pub mod scan;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

pub use actions::Sharing;

use crate::events::EventBus;
use crate::torrents::Torrents;

/// The longest quiet period and time between passes torrents.toml can ask for: a day (a longer
/// one is a day; a time past what the clock can add would stop the watcher).
pub const MAX_WAIT_SECS: u64 = 86_400;

/// What the watcher needs to know, usually taken from torrents.toml ([`WatchConfig::new`]).
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// torrents.toml, where the ledger lives: read and changed through the process's service.
    pub torrents: Torrents,
    pub watch_dir: PathBuf,
    pub torrents_dir: PathBuf,
    pub output_dir: PathBuf,
    /// How long an entry must stay unchanged before it is hashed.
    pub quiet: Duration,
    /// Time between full passes over the folder.
    pub rescan: Duration,
    /// Trackers written into the torrents made from dropped data.
    pub trackers: Vec<String>,
    /// What kind of torrent it makes (`torrent_format`).
    pub format: crate::metainfo::Format,
    /// Record each file's modification time (`torrent_mtime`).
    pub mtime: bool,
    /// Listen for file events; without them only readiness checks and rescans find changes.
    pub file_events: bool,
}

impl WatchConfig {
    /// The settings of `torrents`' file: folders resolved, `watch_quiet_secs`, `watch_rescan_secs`,
    /// `torrent_format`, `torrent_mtime`, the default tracker (`tracker_url`, or this machine's embedded tracker at
    /// its LAN address).
    pub fn new(torrents: &Torrents) -> Result<WatchConfig> {
        let cfg = torrents.config()?;
        let s = &cfg.settings;
        let url = s.default_tracker().url;
        Ok(WatchConfig {
            torrents: torrents.clone(),
            watch_dir: cfg.watch_dir(),
            torrents_dir: cfg.torrents_dir(),
            output_dir: cfg.output_dir(),
            quiet: Duration::from_secs(s.watch_quiet_secs.min(MAX_WAIT_SECS)),
            rescan: Duration::from_secs(s.watch_rescan_secs.clamp(1, MAX_WAIT_SECS)),
            trackers: if url.is_empty() {
                Vec::new()
            } else {
                vec![url]
            },
            format: s.torrent_format,
            mtime: s.torrent_mtime,
            file_events: true,
        })
    }
}

/// What the watcher has done so far, for front ends and tests. Published after every pass and when a
/// hash starts or ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchStatus {
    /// Passes over the folder, and how many of them looked at every entry.
    pub passes: u64,
    pub full_passes: u64,
    /// Hashes started (a hash stopped because its entry changed counts too).
    pub hashed: u64,
    /// Hashes abandoned at once because their entry changed while it was being hashed.
    pub abandoned: u64,
    /// The entry being hashed now.
    pub hashing: Option<String>,
    /// Entries waiting to settle.
    pub pending: usize,
    /// Entries of this folder in the ledger.
    pub shared: usize,
    /// Entries reported as not shareable (until they change).
    pub rejected: usize,
    /// Whether file events arrive (otherwise only the rescans find changes).
    pub file_events: bool,
}

/// The running watch folder. Dropping it stops the thread (after the step in progress); the torrents
/// it started keep running in the engine.
pub struct Watcher {
    inbox: Arc<inbox::Inbox>,
    status: tokio::sync::watch::Receiver<WatchStatus>,
    done: Option<tokio::sync::oneshot::Receiver<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// `p` made absolute with every existing part of it resolved (symbolic links included), so it
/// compares with canonical paths even before it exists.
fn canonical_lenient(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = cur.canonicalize() {
            return rest.iter().rev().fold(c, |acc, part| acc.join(part));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return abs,
        }
    }
}

impl Watcher {
    /// Starts watching; must be called inside a tokio runtime (which [`Sharing`] calls run on).
    /// Fails if the watch folder is, or lies inside, the torrents or output folder.
    pub fn start(
        mut cfg: WatchConfig,
        sharing: Arc<dyn Sharing>,
        bus: EventBus,
    ) -> Result<Watcher> {
        let rt = tokio::runtime::Handle::try_current()
            .context("the watch folder needs a tokio runtime")?;
        cfg.watch_dir = canonical_lenient(&cfg.watch_dir);
        cfg.torrents_dir = canonical_lenient(&cfg.torrents_dir);
        cfg.output_dir = canonical_lenient(&cfg.output_dir);
        for (what, own) in [("torrents", &cfg.torrents_dir), ("output", &cfg.output_dir)] {
            if cfg.watch_dir.starts_with(own) {
                bail!(
                    "the watch folder {} must not be the {what} folder or lie inside it",
                    cfg.watch_dir.display()
                );
            }
        }
        std::fs::create_dir_all(&cfg.watch_dir)
            .with_context(|| format!("cannot create {}", cfg.watch_dir.display()))?;
        let protected = vec![
            canonical_lenient(cfg.torrents.path()),
            cfg.torrents_dir.clone(),
            cfg.output_dir.clone(),
        ];
        let inbox = Arc::new(inbox::Inbox::default());
        let (status_tx, status) = tokio::sync::watch::channel(WatchStatus::default());
        let (done_tx, done) = tokio::sync::oneshot::channel();
        let worker =
            worker::Worker::new(cfg, sharing, bus, rt, inbox.clone(), status_tx, protected);
        let thread = std::thread::Builder::new()
            .name("btorrent-watch".into())
            .spawn(move || {
                worker.run();
                let _ = done_tx.send(());
            })
            .context("cannot start the watch folder thread")?;
        Ok(Watcher {
            inbox,
            status,
            done: Some(done),
            thread: Some(thread),
        })
    }

    pub fn status(&self) -> WatchStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every new status (after each pass).
    pub fn status_updates(&self) -> tokio::sync::watch::Receiver<WatchStatus> {
        self.status.clone()
    }

    /// Asks for a pass over every entry now.
    pub fn rescan(&self) {
        self.inbox.rescan(false);
    }

    /// Stops the thread, waiting at most `grace` for the step in progress (a hash is cancelled).
    pub async fn stop(mut self, grace: Duration) {
        self.inbox.stop();
        if let Some(done) = self.done.take() {
            if tokio::time::timeout(grace, done).await.is_ok() {
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.inbox.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_canonical_paths_resolve_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(&real, real.join("link")).unwrap();
        assert_eq!(
            canonical_lenient(&real.join("link/not/yet")),
            real.join("not/yet")
        );
    }
}
