//! Finding a torrent's files on this machine before fetching them (BEP 38's aim, by content): a
//! file of a v2 or hybrid torrent is named by its `pieces root`, the SHA-256 merkle root of its
//! bytes whatever the piece length, so a file of another torrent with the same root holds exactly
//! what this one needs. When a torrent is added, each wanted file that is not on disk under either
//! of its names is looked for among
//! - the files of the session's other torrents (copied: they stay where their torrent seeds them),
//!   public ones only: a private torrent's data stays in its swarm, whoever made a torrent naming
//!   its roots,
//! - the files the caller offers in [`AddOptions::local_files`](crate::AddOptions::local_files),
//!   such as the previous version's of a followed mutable link (moved when marked
//!   [`LocalFile::movable`]: a file the new version renamed or put in another folder follows
//!   there, as it did where it was published, rather than being fetched again).
//!
//! A candidate is hashed before it is used (its root must come out as the torrent's), so a file
//! changed since its torrent checked it, or offered wrongly, is never taken; it is then copied or
//! moved to the file's place (under its partial name while partial naming gives it one), keeping
//! its modification time. The torrent's check that follows hashes the placed file against the
//! torrent itself, as any data found in its folder. Nothing is ever written over: a file with
//! anything at its path is left to the check, and a candidate at a path of the torrent being added
//! is never moved away.
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
    /// It may be moved rather than copied: no torrent keeps it where it is (a previous version's
    /// file that the new version does not have at that path).
    pub movable: bool,
}

/// One file of the torrent being added and the candidates for it, best first.
#[derive(Debug)]
pub(crate) struct Wanted {
    to: PathBuf,
    candidates: Vec<LocalFile>,
}

/// What placing found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Placed {
    pub copied: usize,
    pub moved: usize,
    pub bytes: u64,
}

impl Placed {
    /// How the event says it.
    pub(crate) fn describe(&self) -> String {
        let files = self.copied + self.moved;
        let mut s = format!(
            "{files} file{} ({} bytes) found on this machine, not fetched:",
            if files == 1 { "" } else { "s" },
            self.bytes
        );
        if self.copied > 0 {
            s += &format!(" {} copied", self.copied);
        }
        if self.moved > 0 {
            s += &format!(
                "{} {} moved",
                if self.copied > 0 { "," } else { "" },
                self.moved
            );
        }
        s
    }
}

impl TorrentHandle {
    /// Its files that have a `pieces root` (v2 and hybrid torrents), where they are now, as
    /// [`LocalFile`]s another torrent may take (`movable` as asked); none for a private torrent.
    /// Files not on disk are included: the taker looks.
    pub fn local_files(&self, movable: bool) -> Vec<LocalFile> {
        self.local_files_of(movable, |_| true)
    }

    /// [`Self::local_files`] with a root `pick` takes, of a public torrent: a private torrent's
    /// data stays in its swarm (a torrent anyone made with one of its roots must not carry it
    /// out).
    fn local_files_of(&self, movable: bool, pick: impl Fn(&Hash256) -> bool) -> Vec<LocalFile> {
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
                    movable,
                })
            })
            .collect()
    }
}

/// The wanted files of `t` missing on disk that a file of `offered` (first) or of the torrents
/// `others` may fill (blocking: looks at the paths, reads nothing). A torrent whose files are
/// all there, or that has no roots, costs a look at its own paths only.
pub(crate) fn plan(
    t: &Torrent,
    offered: Vec<LocalFile>,
    others: impl FnOnce() -> Vec<TorrentHandle>,
) -> Vec<Wanted> {
    let roots = t.meta.info.file_roots();
    if roots.iter().all(Option::is_none) {
        return Vec::new();
    }
    let wanted: Vec<bool> = t.core.lock().files.iter().map(|p| p.wanted()).collect();
    let missing: Vec<(usize, Hash256)> = roots
        .into_iter()
        .enumerate()
        .filter_map(|(i, root)| Some((i, root?)))
        .filter(|&(i, _)| wanted.get(i).copied().unwrap_or(true))
        .filter(|&(i, _)| {
            t.storage
                .both_names(i)
                .is_some_and(|names| names.iter().all(|p| std::fs::symlink_metadata(p).is_err()))
        })
        .collect();
    if missing.is_empty() {
        return Vec::new();
    }
    let needed: HashSet<Hash256> = missing.iter().map(|&(_, r)| r).collect();
    let mut by_root: HashMap<Hash256, Vec<LocalFile>> = HashMap::new();
    let from_others = others()
        .into_iter()
        .flat_map(|h| h.local_files_of(false, |r| needed.contains(r)));
    for f in offered.into_iter().chain(from_others) {
        if needed.contains(&f.root) {
            by_root.entry(f.root).or_default().push(f);
        }
    }
    // Every path of this torrent, under either name: never a source to move away.
    let own: HashSet<PathBuf> = (0..t.meta.info.files.len())
        .filter_map(|i| t.storage.both_names(i))
        .flatten()
        .collect();
    let mut out = Vec::new();
    for (i, root) in missing {
        let (Some(found), Ok(to)) = (by_root.get(&root), t.storage.file_path(i)) else {
            continue;
        };
        let length = t.meta.info.files[i].length;
        let candidates: Vec<LocalFile> = found
            .iter()
            .filter(|f| f.length == length && f.path != to)
            .filter(|f| {
                std::fs::symlink_metadata(&f.path).is_ok_and(|m| m.is_file() && m.len() == f.length)
            })
            .map(|f| LocalFile {
                movable: f.movable && !own.contains(&f.path),
                ..f.clone()
            })
            .collect();
        if !candidates.is_empty() {
            out.push(Wanted { to, candidates });
        }
    }
    out
}

/// Places what `plan` found (blocking: hashes each candidate used, then copies or moves it). A
/// candidate that does not hash to its root, or cannot be read or placed, is passed over for the
/// next. A movable candidate wanted by several files is copied to all but the last, moved there.
pub(crate) fn place(t: &Torrent, plan: Vec<Wanted>) -> Placed {
    let piece_length = t.meta.info.piece_length;
    let name = &t.meta.info.name;
    // Each candidate hashed at most once: whether it held its root.
    let mut sound: HashMap<PathBuf, bool> = HashMap::new();
    let mut uses: HashMap<PathBuf, usize> = HashMap::new();
    for w in &plan {
        for c in &w.candidates {
            *uses.entry(c.path.clone()).or_default() += 1;
        }
    }
    let mut placed = Placed::default();
    for w in plan {
        if t.life.is_cancelled() {
            break;
        }
        for c in &w.candidates {
            *uses.get_mut(&c.path).expect("counted") -= 1;
        }
        for c in w.candidates {
            let ok = *sound.entry(c.path.clone()).or_insert_with(|| {
                hash_file(&c.path, c.length, piece_length, None, &|_| {})
                    .is_ok_and(|h| h.root == c.root)
            });
            if !ok || !c.path.exists() {
                continue;
            }
            let last_use = uses.get(&c.path) == Some(&0);
            let r = if c.movable && last_use {
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
    placed
}
