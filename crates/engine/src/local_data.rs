//! Finding a torrent's files on this machine before fetching them (BEP 38's aim, by content): a
//! file of a v2 or hybrid torrent is named by its `pieces root`, the SHA-256 merkle root of its
//! bytes whatever the piece length, so a file of another torrent with the same root holds exactly
//! what this one needs. When a torrent is added, each wanted file that is not on disk under either
//! of its names is looked for among
//! - the files of the session's other torrents (copied: they stay where their torrent seeds them),
//!   public ones only: a private torrent's data stays in its swarm, whoever made a torrent naming
//!   its roots,
//! - the files the caller offers in [`AddOptions::local_files`](crate::AddOptions::local_files),
//!   such as the previous version's of a followed mutable link, each with how it may be taken
//!   ([`Take`]): a file the new version renamed or put in another folder is moved there, as it
//!   was where it was published, rather than fetched again; one it dropped is removed, as its
//!   publisher removed it, when it is found unchanged ([`Take::MoveOrRemove`]), and so are the
//!   folders that leaves empty.
//!
//! A candidate is hashed before it is used or removed (its root must come out as it was said), so
//! a file changed since its torrent checked it, or offered wrongly, is never taken nor removed; it is then copied or
//! moved to the file's place (under its partial name while partial naming gives it one), keeping
//! its modification time. The torrent's check that follows hashes the placed file against the
//! torrent itself, as any data found in its folder. Nothing is ever written over: a file with
//! anything at its path is left to the check, and a candidate at a path of the torrent being added
//! is never moved away nor removed.
//!
//! v1 files have no root of their own (their pieces straddle files), so only v2 and hybrid
//! torrents are served; [`Event::FoundLocally`](crate::Event::FoundLocally) says what was found.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use btorrent_proto::metainfo::v2::{hash_file, Hash256};

use super::torrent::{Torrent, TorrentHandle};

/// A file on this machine whose content its v2 `pieces root` names, offered to a torrent being
/// added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub path: PathBuf,
    pub length: u64,
    pub root: Hash256,
    pub take: Take,
}

/// How a torrent being added may take a [`LocalFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// Copied: it stays where it is (another torrent's file).
    Copy,
    /// Moved where it is wanted: nothing keeps it where it is (a previous version's file).
    Move,
    /// Moved where it is wanted, else removed once found unchanged: a previous version's file,
    /// which the new version dropped when it wants it nowhere.
    MoveOrRemove,
}

/// One file of the torrent being added and the candidates for it, best first.
#[derive(Debug)]
pub(crate) struct Wanted {
    to: PathBuf,
    candidates: Vec<LocalFile>,
}

/// What `plan` found to do.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    wanted: Vec<Wanted>,
    /// [`Take::MoveOrRemove`] files: removed if no file takes them.
    dropped: Vec<LocalFile>,
}

impl Plan {
    pub(crate) fn is_empty(&self) -> bool {
        self.wanted.is_empty() && self.dropped.is_empty()
    }
}

/// What placing did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Placed {
    pub copied: usize,
    pub moved: usize,
    pub bytes: u64,
    /// Files a new version dropped, removed.
    pub removed: usize,
}

impl Placed {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Placed::default()
    }

    /// How the event says it.
    pub(crate) fn describe(&self) -> String {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let files = self.copied + self.moved;
        let mut parts = Vec::new();
        if files > 0 {
            let mut s = format!(
                "{files} file{} ({} bytes) found on this machine, not fetched:",
                plural(files),
                self.bytes
            );
            let how: Vec<String> = [(self.copied, "copied"), (self.moved, "moved")]
                .into_iter()
                .filter(|&(n, _)| n > 0)
                .map(|(n, how)| format!("{n} {how}"))
                .collect();
            s += &format!(" {}", how.join(", "));
            parts.push(s);
        }
        if self.removed > 0 {
            parts.push(format!(
                "{} file{} the version before had and this one dropped removed",
                self.removed,
                plural(self.removed)
            ));
        }
        parts.join("; ")
    }
}

impl TorrentHandle {
    /// Its files that have a `pieces root` (v2 and hybrid torrents), where they are now, as
    /// [`LocalFile`]s another torrent may take as `take` says; none for a private torrent.
    /// Files not on disk are included: the taker looks.
    pub fn local_files(&self, take: Take) -> Vec<LocalFile> {
        self.local_files_of(take, |_| true)
    }

    /// [`Self::local_files`] with a root `pick` takes, of a public torrent: a private torrent's
    /// data stays in its swarm (a torrent anyone made with one of its roots must not carry it
    /// out).
    fn local_files_of(&self, take: Take, pick: impl Fn(&Hash256) -> bool) -> Vec<LocalFile> {
        let t = &self.0;
        if t.meta.info.private {
            return Vec::new();
        }
        t.meta
            .info
            .file_roots()
            .into_iter()
            .enumerate()
            .filter_map(|(i, root)| {
                let root = root.filter(|r| pick(r))?;
                Some(LocalFile {
                    path: t.storage.file_path(i).ok()?,
                    length: t.meta.info.files[i].length,
                    root,
                    take,
                })
            })
            .collect()
    }
}

/// The wanted files of `t` missing on disk that a file of `offered` (first) or of the torrents
/// `others` may fill, and the offered files to remove if none takes them (blocking: looks at the
/// paths, reads nothing). A torrent whose files are all there, or that has no roots, costs a look
/// at its own paths only.
pub(crate) fn plan(
    t: &Torrent,
    offered: Vec<LocalFile>,
    others: impl FnOnce() -> Vec<TorrentHandle>,
) -> Plan {
    let roots = t.meta.info.file_roots();
    if roots.iter().all(Option::is_none) {
        return Plan::default();
    }
    // Each file of this torrent on disk now, under either name, by inode (one look at each path);
    // `None` for a file without names (padding).
    let on_disk: Vec<Option<Vec<(u64, u64)>>> = (0..t.meta.info.files.len())
        .map(|i| {
            t.storage
                .both_names(i)
                .map(|names| names.iter().filter_map(|p| inode(p)).collect())
        })
        .collect();
    // Whatever path names them (relative or not, through a link): never a source to move away or
    // remove.
    let own: HashSet<(u64, u64)> = on_disk.iter().flatten().flatten().copied().collect();
    let is_there = |f: &LocalFile| {
        std::fs::symlink_metadata(&f.path).is_ok_and(|m| m.is_file() && m.len() == f.length)
    };
    let offered: Vec<LocalFile> = offered
        .into_iter()
        .map(|f| LocalFile {
            take: if inode(&f.path).is_some_and(|n| own.contains(&n)) {
                Take::Copy
            } else {
                f.take
            },
            ..f
        })
        .collect();
    let dropped = offered
        .iter()
        .filter(|f| f.take == Take::MoveOrRemove && is_there(f))
        .cloned()
        .collect();
    let wanted: Vec<bool> = t.core.lock().files.iter().map(|p| p.wanted()).collect();
    let missing: Vec<(usize, Hash256)> = roots
        .into_iter()
        .enumerate()
        .filter_map(|(i, root)| Some((i, root?)))
        .filter(|&(i, _)| wanted.get(i).copied().unwrap_or(true))
        .filter(|&(i, _)| on_disk[i].as_ref().is_some_and(Vec::is_empty))
        .collect();
    if missing.is_empty() {
        return Plan {
            wanted: Vec::new(),
            dropped,
        };
    }
    let needed: HashSet<Hash256> = missing.iter().map(|&(_, r)| r).collect();
    let mut by_root: HashMap<Hash256, Vec<LocalFile>> = HashMap::new();
    let from_others = others()
        .into_iter()
        .flat_map(|h| h.local_files_of(Take::Copy, |r| needed.contains(r)));
    for f in offered.into_iter().chain(from_others) {
        if needed.contains(&f.root) {
            by_root.entry(f.root).or_default().push(f);
        }
    }
    let mut wanted = Vec::new();
    for (i, root) in missing {
        let (Some(found), Ok(to)) = (by_root.get(&root), t.storage.file_path(i)) else {
            continue;
        };
        let length = t.meta.info.files[i].length;
        let candidates: Vec<LocalFile> = found
            .iter()
            .filter(|f| f.length == length && f.path != to && is_there(f))
            .cloned()
            .collect();
        if !candidates.is_empty() {
            wanted.push(Wanted { to, candidates });
        }
    }
    Plan { wanted, dropped }
}

/// Does what `plan` found (blocking: hashes each candidate used, then copies or moves it; then
/// hashes and removes the dropped files no file took). A candidate that does not hash to its root,
/// or cannot be read or placed, is passed over for the next. A movable candidate wanted by several
/// files is copied to all but the last, moved there.
pub(crate) fn place(t: &Torrent, plan: Plan) -> Placed {
    let piece_length = t.meta.info.piece_length;
    let name = &t.meta.info.name;
    // Each candidate hashed at most once: whether it held its root.
    let mut sound: HashMap<PathBuf, bool> = HashMap::new();
    let mut holds_root = |f: &LocalFile| {
        *sound.entry(f.path.clone()).or_insert_with(|| {
            hash_file(&f.path, f.length, piece_length, None, &|_| {})
                .is_ok_and(|h| h.root == f.root)
        })
    };
    let mut uses: HashMap<PathBuf, usize> = HashMap::new();
    for w in &plan.wanted {
        for c in &w.candidates {
            *uses.entry(c.path.clone()).or_default() += 1;
        }
    }
    let mut placed = Placed::default();
    // Folders that files left: removed if that leaves them empty.
    let mut left = Vec::new();
    for w in plan.wanted {
        if t.life.is_cancelled() {
            return placed;
        }
        for c in &w.candidates {
            *uses.get_mut(&c.path).expect("counted") -= 1;
        }
        for c in w.candidates {
            if !holds_root(&c) || !c.path.exists() {
                continue;
            }
            let last_use = uses.get(&c.path) == Some(&0);
            let r = if c.take != Take::Copy && last_use {
                super::storage::move_file(&c.path, &w.to).map(|()| true)
            } else {
                super::storage::copy_file(&c.path, &w.to).map(|()| false)
            };
            match r {
                Ok(moved) => {
                    tracing::debug!(
                        "{name}: {} {} from {}",
                        if moved { "moved" } else { "copied" },
                        w.to.display(),
                        c.path.display()
                    );
                    if moved {
                        placed.moved += 1;
                        left.push(c.path.clone());
                    } else {
                        placed.copied += 1;
                    }
                    placed.bytes += c.length;
                    break;
                }
                Err(e) => tracing::debug!(
                    "{name}: {} not placed from {}: {e}",
                    w.to.display(),
                    c.path.display()
                ),
            }
        }
    }
    for f in plan.dropped {
        if t.life.is_cancelled() {
            return placed;
        }
        // Still there (no file took it) and as it was: its publisher removed it.
        if !f.path.exists() || !holds_root(&f) {
            continue;
        }
        match std::fs::remove_file(&f.path) {
            Ok(()) => {
                tracing::debug!(
                    "{name}: removed {}, dropped by this version",
                    f.path.display()
                );
                placed.removed += 1;
                left.push(f.path);
            }
            Err(e) => tracing::debug!("{name}: {} not removed: {e}", f.path.display()),
        }
    }
    remove_emptied_folders(&t.storage.data_dir(), &left);
    placed
}

/// The device and inode of the file at `path` (not following a last link).
fn inode(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Removes the folders below `data_dir` that held `files` and are empty now, deepest first (each
/// path taken as it really is, links resolved, so two spellings of one folder agree).
fn remove_emptied_folders(data_dir: &std::path::Path, files: &[PathBuf]) {
    let Ok(data_dir) = std::fs::canonicalize(data_dir) else {
        return;
    };
    let held: HashSet<PathBuf> = files
        .iter()
        .filter_map(|f| std::fs::canonicalize(f.parent()?).ok())
        .collect();
    let mut dirs: Vec<&std::path::Path> = held
        .iter()
        .flat_map(|d| d.ancestors())
        .filter(|d| d.starts_with(&data_dir) && *d != data_dir)
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.dedup();
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}
