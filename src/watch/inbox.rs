//! Wake-ups for the watch folder's thread. File events (a `notify` watcher) and requests (rescan,
//! stop) land in an [`Inbox`]: an event only names the top-level entry it touched, and the thread
//! decides what to look at. The inbox is bounded by the number of distinct entry names.
//!
//! A content change to the entry being hashed also raises that hash's cancel flag, so a copy that
//! resumes after a pause longer than the quiet period stops the hashing at once instead of after it.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use parking_lot::{Condvar, Mutex};

#[derive(Default)]
struct Mail {
    /// Entries touched since the thread last looked.
    dirty: HashSet<String>,
    /// Look at everything (events were lost, the folder itself changed, or someone asked).
    full: bool,
    /// The folder itself was removed or replaced: the file-event watch must be set up again.
    rearm: bool,
    stop: bool,
    /// The entry being hashed and its cancel flag.
    hashing: Option<(String, Arc<AtomicBool>)>,
}

impl Mail {
    fn has_news(&self) -> bool {
        self.stop || self.full || !self.dirty.is_empty()
    }
}

/// What the thread takes out of the inbox for one pass.
pub struct News {
    pub dirty: HashSet<String>,
    pub full: bool,
    pub rearm: bool,
}

#[derive(Default)]
pub struct Inbox {
    mail: Mutex<Mail>,
    cv: Condvar,
}

impl Inbox {
    /// Notes that entry `name` changed; `content` is false for changes that cannot alter the data
    /// (metadata, a file closed after writing).
    pub fn touch(&self, name: String, content: bool) {
        let mut m = self.mail.lock();
        if content {
            if let Some((n, cancel)) = &m.hashing {
                if *n == name {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
        }
        m.dirty.insert(name);
        self.cv.notify_one();
    }

    /// Asks for a pass over every entry.
    pub fn rescan(&self, rearm: bool) {
        let mut m = self.mail.lock();
        m.full = true;
        m.rearm |= rearm;
        self.cv.notify_one();
    }

    /// Asks the thread to finish, stopping a hash in progress.
    pub fn stop(&self) {
        let mut m = self.mail.lock();
        m.stop = true;
        if let Some((_, cancel)) = &m.hashing {
            cancel.store(true, Ordering::Relaxed);
        }
        self.cv.notify_all();
    }

    pub fn stopping(&self) -> bool {
        self.mail.lock().stop
    }

    /// Registers the hash in progress (or none), whose flag a change to that entry raises.
    pub fn set_hashing(&self, h: Option<(String, Arc<AtomicBool>)>) {
        let mut m = self.mail.lock();
        if m.stop {
            if let Some((_, cancel)) = &h {
                cancel.store(true, Ordering::Relaxed);
            }
        }
        m.hashing = h;
    }

    /// Waits until there is news or `deadline` passes; returns whether there is news.
    pub fn wait_until(&self, deadline: Instant) -> bool {
        let mut m = self.mail.lock();
        while !m.has_news() {
            if self.cv.wait_until(&mut m, deadline).timed_out() {
                break;
            }
        }
        m.has_news()
    }

    /// Sleeps for `d` unless asked to stop (lets a burst of events gather into one pass).
    pub fn settle(&self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut m = self.mail.lock();
        while !m.stop {
            if self.cv.wait_until(&mut m, deadline).timed_out() {
                break;
            }
        }
    }

    pub fn take(&self) -> News {
        let mut m = self.mail.lock();
        News {
            dirty: std::mem::take(&mut m.dirty),
            full: std::mem::take(&mut m.full),
            rearm: std::mem::take(&mut m.rearm),
        }
    }
}

/// The file-event watch on the folder; dropping it stops the events.
pub struct FileEvents {
    _watcher: RecommendedWatcher,
    /// Device and inode of the folder watched, to notice it was replaced.
    pub identity: (u64, u64),
}

/// Device and inode of `dir`.
pub fn identity(dir: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

/// Watches `dir` (absolute) recursively, feeding `inbox`.
pub fn watch_events(dir: &Path, inbox: Arc<Inbox>) -> notify::Result<FileEvents> {
    let root: PathBuf = dir.to_path_buf();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let ev = match res {
            Ok(ev) => ev,
            Err(_) => return inbox.rescan(false),
        };
        if ev.need_rescan() {
            inbox.rescan(false);
        }
        use notify::EventKind as K;
        let content = match ev.kind {
            K::Access(AccessKind::Open(_) | AccessKind::Read) => return,
            K::Access(AccessKind::Close(notify::event::AccessMode::Write)) => false,
            K::Access(_) => return,
            K::Modify(ModifyKind::Metadata(_)) => false,
            _ => true,
        };
        for p in &ev.paths {
            let Ok(rel) = p.strip_prefix(&root) else {
                continue;
            };
            match rel.components().next() {
                Some(Component::Normal(n)) => {
                    inbox.touch(n.to_string_lossy().into_owned(), content)
                }
                None => inbox.rescan(true),
                _ => {}
            }
        }
    })?;
    watcher.watch(dir, RecursiveMode::Recursive)?;
    Ok(FileEvents {
        _watcher: watcher,
        identity: identity(dir).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_top_level_entries_and_cancel_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("folder")).unwrap();
        let inbox = Arc::new(Inbox::default());
        let _events = watch_events(&root, inbox.clone()).unwrap();
        let cancel = Arc::new(AtomicBool::new(false));
        inbox.set_hashing(Some(("folder".into(), cancel.clone())));
        std::fs::write(root.join("folder/deep.bin"), b"data").unwrap();
        std::fs::write(root.join("top.bin"), b"data").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = HashSet::new();
        while !(seen.contains("folder") && seen.contains("top.bin")) {
            assert!(inbox.wait_until(deadline), "no file events within 10 s");
            seen.extend(inbox.take().dirty);
        }
        assert!(cancel.load(Ordering::Relaxed));
        inbox.set_hashing(None);
        inbox.stop();
        assert!(inbox.wait_until(Instant::now()));
        assert!(inbox.stopping());
    }
}
