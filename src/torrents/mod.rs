//! The one live model of the managed torrents: [`Torrents`] owns torrents.toml in memory and the
//! running peer session of this process.
//!
//! - It reads the file once when opened, and again only when the file changed on disk: the one
//!   watcher ([`Torrents::follow`], a `stat` every [`LOOK_EVERY`]) or a caller that wants the disk's
//!   word now ([`Torrents::refresh`], a `stat`) notices a new file and re-reads it; every reader in
//!   between gets the copy in memory ([`Torrents::config`]), with no file access at all. A file
//!   whose stamp (inode, size, modification time) was taken within 2 s (`RACY`) of its modification
//!   time is also compared by its bytes until that passes: an edit in place of the same size within
//!   one tick of the file system's clock leaves the stamp as it was (such an edit, right after a
//!   save of the daemon's, was missed).
//! - It is the only writer: [`Torrents::update`] takes this process's writer lock and the file lock
//!   that other btorrent processes take too, re-reads the file if another process changed it, applies
//!   the change and saves atomically, comments kept (see [`crate::config`]); a change that leaves
//!   the text as it was writes nothing (a record of what a hand edit set, made after the user edited
//!   the file again, would have put the older text back). Changes from two
//!   processes, or two services on one file, never overwrite each other; nor does a save made
//!   while an editor rewrites the file in place overwrite the editor's text (an emptied file is
//!   given a moment to be written again before it is read as empty: `Inner::reread`), nor one
//!   saved while the change is written (a last look just before the replacement sees it, and the
//!   change is made again on the edited file).
//! - It says when the list changed ([`Torrents::subscribe`]): the shell and the daemon start what a
//!   one-shot command registered, the private tracker allows what the file lists.
//! - It holds the running peer session ([`Torrents::session`]), started by [`crate::services::PeerSlot`],
//!   and the membership lock ([`Torrents::membership`]) that makes "remove from the session and
//!   update torrents.toml" (and "register and add") one step against a sync that starts what the
//!   file lists.
//!
//! - It tells hand edits of a torrent's entry (its `state`, own limits, group, files, `data`) from its
//!   own saves ([`Torrents::take_edits`], [`edits`]): what changed in a version of the file it
//!   read (not one it saved) is noted, the latest per torrent, until the owner of the session
//!   applies it; a save of its own that says otherwise drops the note (the later word wins).
//!
//! - It holds the settings lock ([`Torrents::settings_lock`]): whoever applies `[settings]` to the
//!   running session and writes them holds it, so a look at the file never puts back in force
//!   what another is replacing.
//!
//! Lock order (outermost first): `settings` (async, held while settings are applied and written),
//! then `membership` (async, held across a removal or a sync), then `writer`
//! (this process's writers, one at a time), then the file lock `.torrents.toml.lock` (other
//! processes), then `current` (held only to copy or swap an `Arc`) and `edits` (held only to
//! note or take edits; never both at once), then the session's own locks.
//! The session slot (`session`) is taken by itself, never while `writer` is held.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _, Result};
use parking_lot::{Mutex, RwLock};

use crate::config::Config;
use crate::engine::Session;
use crate::types::InfoHash;

pub mod edits;
use edits::{EntryEdit, HandEdits};

/// How often the watcher looks at torrents.toml (a `stat`; the file is read only when it changed).
pub const LOOK_EVERY: Duration = Duration::from_millis(250);

/// How long a save waits for another process's save before giving up with an error.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// Saves one [`Torrents::update`] makes at most: each but the last is given up for a hand edit
/// saved meanwhile, and the change made again on it.
const SAVE_TRIES: u32 = 4;

/// How long an emptied file is given to be written again before it is taken as empty
/// ([`Inner::reread`]).
const SETTLE_WAIT: Duration = Duration::from_millis(300);

/// The managed torrents of one torrents.toml, and the peer session running them. Cheap to clone;
/// clones share everything.
#[derive(Clone)]
pub struct Torrents {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Torrents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Torrents")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    lock_path: PathBuf,
    current: RwLock<Loaded>,
    writer: Mutex<()>,
    membership: tokio::sync::Mutex<()>,
    /// See [`Torrents::settings_lock`].
    settings: tokio::sync::Mutex<()>,
    /// Counts the changes seen (reloads and saves); receivers wake on each.
    changed: tokio::sync::watch::Sender<u64>,
    /// How many times the file was read (for tests: readers must not read it).
    loads: AtomicU64,
    /// Whether the first read happened (it happens on first use, not on open).
    loaded: AtomicBool,
    following: AtomicBool,
    /// Held while a session starts or stops: callers wait for the outcome.
    session: tokio::sync::Mutex<Option<Session>>,
    /// The running session, readable without waiting (set once started, cleared on shutdown).
    running: Mutex<Option<Session>>,
    /// The download queue's memory ([`crate::queue`]), and whether a task keeps it here.
    queue: crate::queue::TorrentQueue,
    /// See [`Torrents::take_edits`].
    edits: Mutex<HandEdits>,
}

/// The file as last read or written, and the stamp of the file it came from.
struct Loaded {
    config: Result<Arc<Config>, Arc<anyhow::Error>>,
    stamp: Option<Stamp>,
    /// A digest of the bytes it came from, and whether its stamp is *racy*: taken so soon after
    /// the file's modification time that a write in the same clock tick, of the same length, would
    /// leave the stamp as it is (file times move in ticks of the kernel's coarse clock). While it
    /// is, an equal stamp is checked against the bytes ([`Inner::changed_on_disk`]).
    digest: Option<u64>,
    racy: AtomicBool,
}

impl Loaded {
    /// `config`, which came from or went to bytes of `digest`, in the file whose stamp was then
    /// `stamp`.
    fn new(
        config: Result<Arc<Config>, Arc<anyhow::Error>>,
        stamp: Option<Stamp>,
        digest: Option<u64>,
    ) -> Loaded {
        Loaded {
            racy: AtomicBool::new(racy(&stamp)),
            digest,
            config,
            stamp,
        }
    }
}

/// A stamp this close to its file's modification time may not tell two writes apart.
const RACY: Duration = Duration::from_secs(2);

/// Whether `stamp`'s modification time is within [`RACY`] of now (or ahead of it).
fn racy(stamp: &Option<Stamp>) -> bool {
    stamp.is_some_and(|s| {
        let (secs, nanos) = s.mtime;
        let mtime = u64::try_from(secs).ok().map(|secs| {
            std::time::UNIX_EPOCH + Duration::new(secs, u32::try_from(nanos).unwrap_or(0))
        });
        mtime.is_none_or(|m| m.elapsed().map_or(true, |age| age < RACY))
    })
}

/// A digest of the file's bytes (`None`: not a regular file, or not one torrents.toml can be).
fn digest(path: &Path) -> Option<u64> {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    crate::config::read_bounded(path)
        .ok()
        .map(|text| digest_of(text.as_bytes()))
}

fn digest_of(bytes: &[u8]) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// What tells one version of the file from another: an atomic save is a new inode, an edit in place
/// changes the size or the modification time (or, within a clock tick, the bytes alone: see
/// [`Loaded::racy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
    })
}

impl Torrents {
    /// The service for `path`, read on first use (a missing file means the defaults). A file that
    /// cannot be read or parsed is kept as its error: every [`Torrents::config`] returns it until the
    /// file is fixed.
    pub fn open(path: &Path) -> Torrents {
        let lock_path = path.with_file_name(format!(
            ".{}.lock",
            path.file_name()
                .map_or("torrents.toml".into(), |n| n.to_string_lossy())
        ));
        let inner = Arc::new(Inner {
            path: path.to_path_buf(),
            lock_path,
            current: RwLock::new(Loaded {
                config: Err(Arc::new(anyhow!("not read yet"))),
                stamp: None,
                digest: None,
                racy: AtomicBool::new(false),
            }),
            writer: Mutex::new(()),
            membership: Default::default(),
            settings: Default::default(),
            changed: tokio::sync::watch::Sender::new(0),
            loads: AtomicU64::new(0),
            loaded: AtomicBool::new(false),
            following: AtomicBool::new(false),
            session: Default::default(),
            running: Default::default(),
            queue: Default::default(),
            edits: Default::default(),
        });
        Torrents { inner }
    }

    /// The download queue of this process's torrents ([`crate::queue`]).
    pub fn queue(&self) -> &crate::queue::TorrentQueue {
        &self.inner.queue
    }

    /// The torrents.toml this service owns.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The file as last read or saved (memory only), or why it cannot be read.
    pub fn config(&self) -> Result<Arc<Config>> {
        self.inner.ensure_loaded();
        self.inner
            .current
            .read()
            .config
            .clone()
            .map_err(|e| anyhow!("{e:#}"))
    }

    /// Re-reads the file if it changed on disk since it was last read or saved (one `stat` when it
    /// did not); true when it did. Then [`Torrents::config`] is what the disk says.
    pub fn refresh(&self) -> bool {
        let inner = &self.inner;
        inner.ensure_loaded();
        if !inner.changed_on_disk() {
            return false;
        }
        let _w = inner.writer.lock();
        if !inner.changed_on_disk() {
            return false;
        }
        inner.install(inner.reread(), true);
        inner.changed.send_modify(|n| *n += 1);
        true
    }

    /// Reads the file again now, whatever its stamp says, and wakes whoever follows the list
    /// ([`Torrents::subscribe`]): what the daemon does on SIGHUP, so a hand edit applies at once.
    pub fn reload(&self) {
        let inner = &self.inner;
        inner.ensure_loaded();
        let _w = inner.writer.lock();
        inner.install(inner.reread(), true);
        inner.changed.send_modify(|n| *n += 1);
    }

    /// [`Torrents::refresh`], then [`Torrents::config`]: for a command that must see what another
    /// process wrote a moment ago.
    pub fn fresh(&self) -> Result<Arc<Config>> {
        self.refresh();
        self.config()
    }

    /// Runs `f` on the current list under the file lock and saves the result atomically (comments
    /// and formatting kept). The file is re-read first if another process changed it, so no change
    /// is lost. Nothing is saved when `f` fails.
    ///
    /// Other btorrent processes wait for the file lock; an editor does not. A hand edit saved while
    /// this one is written (between the first look and the replacement, the flush to disk most of
    /// it) is seen by a second look just before the replacement: then `f` runs again on the
    /// edited file (4 times at most, `SAVE_TRIES`, the last one written whatever happened
    /// meanwhile).
    pub fn update<T>(&self, mut f: impl FnMut(&mut Config) -> Result<T>) -> Result<T> {
        let inner = &self.inner;
        inner.ensure_loaded();
        let _w = inner.writer.lock();
        let _file = inner.lock_file()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if inner.changed_on_disk() {
                inner.install(inner.reread(), true);
                inner.changed.send_modify(|n| *n += 1);
            }
            let mut cfg = (*self.config()?).clone();
            let out = f(&mut cfg)?;
            let text = cfg.text()?;
            let digest = digest_of(text.as_bytes());
            // Nothing to change (a record of what the file already says): no write, so no moment
            // in which a hand edit made meanwhile would be replaced by the same old text.
            if cfg.existed() && inner.current.read().digest == Some(digest) {
                return Ok(out);
            }
            let last = attempt >= SAVE_TRIES;
            if !cfg.write_text_unless(&text, || !last && inner.changed_on_disk())? {
                continue;
            }
            // The stamp after the save: should someone write in place in between, the stamp is
            // theirs (racy, so new) and the digest ours, and the next look reads their version.
            let saved = Loaded::new(Ok(Arc::new(cfg)), stamp(&inner.path), Some(digest));
            inner.install(saved, false);
            inner.changed.send_modify(|n| *n += 1);
            return Ok(out);
        }
    }

    /// The torrents whose entry someone else changed in the file since this process last knew it
    /// (a hand edit, say): its `state`, its own limits, its bandwidth group, its choice of files,
    /// its data folder, the latest of each;
    /// each edit is returned once ([`edits`]). The owner of the session applies them
    /// ([`crate::services::PeerSlot::sync_managed`]): a torrent set `paused` pauses, one set
    /// `stopped` stops, one set `downloading` or `seeding` resumes; limits, group and files apply
    /// as `b-limit` and `t.set_wanted` apply them; a new `data` as `b-move --find` does (the files
    /// looked for there and checked). New entries are not edits (the sync starts them).
    pub fn take_edits(&self) -> Vec<(InfoHash, EntryEdit)> {
        self.inner.edits.lock().take()
    }

    /// Forgets a hand edit of torrent `ih`'s `data` not applied yet: a command moves its data, or
    /// points it at another folder, now. Else the edit, older, would be applied after it and
    /// send the torrent back (a command's own record, read here as someone else's, say, when a
    /// one-shot `b-move` follows another before the owner applied the first one's).
    pub fn supersede_data_edit(&self, ih: &InfoHash) {
        self.inner.edits.lock().supersede_data(ih);
    }

    /// Wakes on every change of the list: a save by this service, or a new file on disk seen by
    /// the watcher or a [`Torrents::refresh`].
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changed.subscribe()
    }

    /// The wake-ups of a task that looks at the torrents every `every` and as soon as the list
    /// changes ([`Looks::next`]).
    pub fn looks(&self, every: Duration) -> Looks {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Looks {
            tick,
            listed: self.subscribe(),
        }
    }

    /// Starts the one watcher of the file (once per service; later calls do nothing). It runs until
    /// the service is dropped or the runtime stops. Call within a tokio runtime.
    pub fn follow(&self) {
        if self.inner.following.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOOK_EVERY).await;
                let Some(inner) = weak.upgrade() else { return };
                let t = Torrents { inner };
                if tokio::task::spawn_blocking(move || t.refresh())
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }

    /// How many times the file was read since the service opened it.
    pub fn loads(&self) -> u64 {
        self.inner.loads.load(Ordering::Relaxed)
    }

    /// Held while the set of managed torrents changes in the session and torrents.toml together (a
    /// removal, an add that registers, and a sync that adds what the file lists): a sync never sees a
    /// torrent gone from the session but still in the file, nor one registered but not yet added with
    /// its own options. Outermost lock (see the module's lock order).
    pub async fn membership(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.membership.lock().await
    }

    /// Held by whoever applies `[settings]` to the running session and writes them (the RPC's
    /// `session-set`, the task that applies hand edits, the alternative limits' schedule, a
    /// script's `speed_set`): each reads the file, applies and writes in one hold, so the task
    /// applying hand edits never puts back in force the limits a `session-set` is replacing.
    /// Outermost lock; `lock().await` in async code, `blocking_lock()` on a blocking thread.
    pub fn settings_lock(&self) -> &tokio::sync::Mutex<()> {
        &self.inner.settings
    }

    /// The running session, if any. A session being started is waited for (and is absent only if
    /// its start fails): "starting" is never mistaken for "none".
    pub async fn session(&self) -> Option<Session> {
        self.inner.session.lock().await.clone()
    }

    /// The session if one runs now, without waiting (for the prompt and other quick looks).
    pub fn current_session(&self) -> Option<Session> {
        self.inner.running.lock().clone()
    }

    /// The session slot, held while a session starts or stops; `publish` makes the outcome visible
    /// to [`Torrents::current_session`].
    pub(crate) async fn session_slot(&self) -> SessionSlot<'_> {
        SessionSlot {
            slot: self.inner.session.lock().await,
            running: &self.inner.running,
        }
    }
}

/// The session slot held (see [`Torrents::session_slot`]).
pub(crate) struct SessionSlot<'a> {
    pub slot: tokio::sync::MutexGuard<'a, Option<Session>>,
    running: &'a Mutex<Option<Session>>,
}

impl SessionSlot<'_> {
    /// Sets (or clears) the session for both the waiting and the quick readers.
    pub fn set(&mut self, s: Option<Session>) -> Option<Session> {
        *self.running.lock() = s.clone();
        std::mem::replace(&mut *self.slot, s)
    }
}

impl Inner {
    /// The first read of the file, once.
    fn ensure_loaded(&self) {
        if self.loaded.load(Ordering::Acquire) {
            return;
        }
        let _w = self.writer.lock();
        if !self.loaded.load(Ordering::Acquire) {
            self.install(self.read_file(), false);
            self.loaded.store(true, Ordering::Release);
        }
    }

    /// Makes `l` the current version (the writer lock held): read from disk after another writer
    /// changed it (`by_hand`), or first read or saved here.
    fn install(&self, l: Loaded, by_hand: bool) {
        if let Ok(cfg) = &l.config {
            self.edits.lock().take_in(cfg, by_hand);
        }
        *self.current.write() = l;
    }

    /// Reads the file again after another writer changed it. An editor that saves in place
    /// truncates the file, then writes it: read in between, it is empty, every entry would seem
    /// gone, and a save made from that read would forget them all (the editor's text then going to
    /// the file our save replaced). So a file found empty where the last read was not is read again
    /// until it is not, for at most [`SETTLE_WAIT`]; still empty then, it is taken as it is.
    fn reread(&self) -> Loaded {
        let had_text = self
            .current
            .read()
            .stamp
            .as_ref()
            .is_some_and(|s| s.len > 0);
        let end = Instant::now() + SETTLE_WAIT;
        loop {
            let l = self.read_file();
            let emptied = had_text && l.stamp.as_ref().is_some_and(|s| s.len == 0);
            if !emptied || Instant::now() >= end {
                return l;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn read_file(&self) -> Loaded {
        self.loads.fetch_add(1, Ordering::Relaxed);
        // The stamp, then the digest, then the parse: each of the same version as the one before
        // or a later one, so a write in between reads as a change at the next look, never as none.
        let stamp = stamp(&self.path);
        let digest = digest(&self.path);
        let config = Config::load(&self.path).map(Arc::new).map_err(Arc::new);
        Loaded::new(config, stamp, digest)
    }

    /// Whether the file on disk may not be the version last read or saved: its stamp differs, or,
    /// the stamp being racy, its bytes do. A racy stamp whose bytes agree once it is no longer racy
    /// is trusted from then on (one `stat` a call again).
    /// The file is read outside the lock; the copy's racy mark is cleared only if the copy is still
    /// the one whose bytes were compared.
    fn changed_on_disk(&self) -> bool {
        let now = stamp(&self.path);
        let known = {
            let cur = self.current.read();
            if cur.stamp != now {
                return true;
            }
            if !cur.racy.load(Ordering::Relaxed) {
                return false;
            }
            cur.digest
        };
        if digest(&self.path) != known {
            return true;
        }
        if !racy(&now) {
            let cur = self.current.read();
            if cur.stamp == now && cur.digest == known {
                cur.racy.store(false, Ordering::Relaxed);
            }
        }
        false
    }

    /// The advisory lock every btorrent process takes to save the file, waited for at most
    /// [`LOCK_WAIT`] (released when the returned file closes).
    fn lock_file(&self) -> Result<std::fs::File> {
        let lock_path = &self.lock_path;
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let lock = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match lock.try_lock() {
                Ok(()) => return Ok(lock),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                    "{} stayed locked by another btorrent for {} s",
                    lock_path.display(),
                    LOCK_WAIT.as_secs()
                ),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// For the tests of what records a torrent's state: a service on a new torrents.toml in `dir`
/// listing one torrent, `share`, of `ih` in `state`.
#[cfg(test)]
pub(crate) fn with_one_entry(dir: &Path, ih: InfoHash, state: &str) -> Torrents {
    let torrents = Torrents::open(&dir.join("torrents.toml"));
    let entry = crate::config::ManagedTorrent::new(
        "share",
        &ih,
        "torrents/share.torrent",
        "output",
        state,
        crate::config::Origin::Created,
    );
    torrents
        .update(|cfg| {
            cfg.upsert(entry.clone());
            Ok(())
        })
        .unwrap();
    torrents
}

/// A background task's wake-ups ([`Torrents::looks`]): a period, and every change of the list.
pub struct Looks {
    tick: tokio::time::Interval,
    listed: tokio::sync::watch::Receiver<u64>,
}

impl Looks {
    /// Waits for the next look: the period came round, or the list changed. False once the
    /// service is gone (nothing will change any more).
    pub async fn next(&mut self) -> bool {
        tokio::select! {
            _ = self.tick.tick() => true,
            r = self.listed.changed() => r.is_ok(),
        }
    }
}
