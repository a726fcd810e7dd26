//! The open files of a session's torrents: one cache for all of them, bounded
//! (`SessionConfig::max_open_files`). Files are opened on demand by [`crate::storage::Storage`] and
//! kept here under (storage id, file index); past the bound the least recently used is closed (a read
//! or write still holding its `Arc<File>` finishes first). The mutex is a leaf lock, held only to look
//! up, insert or drop handles, never across a read or write.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

/// Open files of many storages (a session's torrents), at most `max` of them.
pub struct FileCache {
    inner: Mutex<CacheInner>,
    max: usize,
    /// Ids handed to the storages that use the cache.
    next_id: AtomicU64,
}

#[derive(Default)]
struct CacheInner {
    /// By (storage id, file index): the handles and when they were last used.
    open: HashMap<(u64, usize), (Handle, u64)>,
    clock: u64,
}

impl FileCache {
    /// A cache holding at most `max` files open (at least 1).
    pub fn new(max: usize) -> Arc<FileCache> {
        Arc::new(FileCache {
            inner: Mutex::new(CacheInner::default()),
            max: max.max(1),
            next_id: AtomicU64::new(0),
        })
    }

    /// A new storage's id: its files are kept under it.
    pub(crate) fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Files open now.
    pub fn len(&self) -> usize {
        self.inner.lock().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The handle of `key`, marked as just used, if open (and writable when `write`).
    pub(crate) fn get(&self, key: (u64, usize), write: bool) -> Option<Arc<File>> {
        let mut c = self.inner.lock();
        c.clock += 1;
        let now = c.clock;
        let (h, used) = c.open.get_mut(&key)?;
        *used = now;
        (h.writable || !write).then(|| h.file.clone())
    }

    /// The direct-write handle of `key`, if one is open.
    pub(crate) fn get_direct(&self, key: (u64, usize)) -> Option<Arc<File>> {
        self.inner.lock().open.get(&key)?.0.direct.clone()
    }

    /// Keeps `file` as `key`'s handle, closing the least recently used file when the cache is full.
    pub(crate) fn insert(&self, key: (u64, usize), file: Arc<File>, writable: bool) {
        let mut c = self.inner.lock();
        c.clock += 1;
        let now = c.clock;
        if c.open.len() >= self.max && !c.open.contains_key(&key) {
            if let Some(old) = c
                .open
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k)
            {
                c.open.remove(&old);
            }
        }
        let direct = None;
        c.open.insert(
            key,
            (
                Handle {
                    file,
                    writable,
                    direct,
                },
                now,
            ),
        );
    }

    pub(crate) fn set_direct(&self, key: (u64, usize), file: Arc<File>) {
        if let Some((h, _)) = self.inner.lock().open.get_mut(&key) {
            h.direct = Some(file);
        }
    }

    /// Closes every file of storage `id`.
    pub(crate) fn close(&self, id: u64) {
        self.inner.lock().open.retain(|(s, _), _| *s != id);
    }
}

/// The open handles of one file.
struct Handle {
    file: Arc<File>,
    writable: bool,
    /// Opened for direct writes, once one was wanted.
    direct: Option<Arc<File>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_file_is_closed_past_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, name).unwrap();
            Arc::new(File::open(path).unwrap())
        };
        let cache = FileCache::new(2);
        let (a, b) = (cache.new_id(), cache.new_id());
        cache.insert((a, 0), open("a0"), false);
        cache.insert((b, 0), open("b0"), true);
        // (a, 0) used again: (b, 0) is now the least recently used.
        assert!(cache.get((a, 0), false).is_some());
        assert!(cache.get((a, 0), true).is_none(), "opened read-only");
        cache.insert((a, 1), open("a1"), false);
        assert_eq!(cache.len(), 2);
        assert!(cache.get((b, 0), false).is_none());
        assert!(cache.get((a, 0), false).is_some() && cache.get((a, 1), false).is_some());
        cache.close(a);
        assert!(cache.is_empty());
    }
}
