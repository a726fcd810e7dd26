//! What the watch folder holds and whether each entry has settled.
//!
//! - [`list`]: the top-level entries that are candidates. Hidden and partial names (`.name`, `*.part`,
//!   `*.!qB`, `*.crdownload`, ...) are not; nor is an entry that holds btorrent's own files (the
//!   config file, the torrents or output folder), so a watch folder set to `.` cannot share those.
//! - [`probe`]: an entry's [`Fingerprint`]: total size, file count and newest modification or
//!   status-change time over the entry and everything below it. Reading never changes it; a copy, a
//!   rename, a chmod or an edit does.
//! - [`Settling`]: the readiness rule. An entry is ready once the same probe result has been seen for
//!   the quiet period. A probe error is a result like any other, so an entry that stays unreadable
//!   settles too (and is then reported once), while one that fails because a copy is moving files
//!   around keeps changing and keeps waiting.

use std::collections::HashSet;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::metainfo::create::is_hidden_or_partial;

/// What a candidate is: data to share or a .torrent to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A file or folder to hash and seed in place.
    Data,
    /// A `.torrent` file to download into the output folder.
    Torrent,
    /// A magnet link in a `.magnet` file, or in a `.txt` file whose first line is a magnet link: its
    /// metadata is fetched, then it is downloaded into the output folder like a `.torrent`. A file of
    /// several links is several entries (see [`Listed::line`]).
    Magnet,
}

impl EntryKind {
    /// Downloaded into the output folder (rather than seeded where it lies).
    pub fn downloads(self) -> bool {
        self != EntryKind::Data
    }
}

/// One top-level entry of the watch folder worth looking at.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The file's name; for the second and later links of a magnet file `<name>#<n>` (n from 2).
    pub name: String,
    /// The file or folder.
    pub path: PathBuf,
    pub kind: EntryKind,
    /// Which magnet link of the file (0 for the first, and for every other kind).
    pub line: usize,
}

impl Listed {
    /// The path the ledger records the entry under: the file's, or for a later link of a magnet file
    /// the file's with `#<n>` appended (no such file exists: it names the link).
    pub fn entry(&self) -> PathBuf {
        self.path.with_file_name(&self.name)
    }
}

/// Most magnet links taken from one file.
pub const MAX_MAGNET_LINES: usize = 100;
/// Most bytes read from a magnet file.
pub const MAX_MAGNET_FILE: u64 = 64 * 1024;

/// The magnet links of a file, one per line (blank lines skipped, at most [`MAX_MAGNET_LINES`]); a
/// line that is not a magnet link ends the list.
pub fn magnet_lines(path: &Path) -> std::io::Result<Vec<String>> {
    use std::io::Read;
    let mut raw = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_MAGNET_FILE)
        .read_to_end(&mut raw)?;
    Ok(String::from_utf8_lossy(&raw)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take_while(|l| btorrent_proto::magnet::is_magnet(l))
        .take(MAX_MAGNET_LINES)
        .map(str::to_string)
        .collect())
}

/// The folder's candidates, and the names that cannot be candidates but deserve a report.
#[derive(Debug, Default)]
pub struct Listing {
    /// Sorted by name.
    pub entries: Vec<Listed>,
    /// Names other clients could not store (not UTF-8), with the reason.
    pub unusable: Vec<(OsString, String)>,
}

impl Listing {
    pub fn contains(&self, name: &str) -> bool {
        self.entries
            .binary_search_by(|e| e.name.as_str().cmp(name))
            .is_ok()
    }
}

/// Whether `name` (a top-level entry) is a `.torrent` file name.
fn is_torrent_name(name: &str) -> bool {
    name.len() > 8 && name[name.len() - 8..].eq_ignore_ascii_case(".torrent")
}

/// Whether the file `name` at `path` holds magnet links: a `.magnet` file, or a small `.txt` file
/// whose first non-blank line is one.
fn is_magnet_file(name: &str, path: &Path) -> bool {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".magnet") {
        return true;
    }
    if !lower.ends_with(".txt") {
        return false;
    }
    magnet_lines(path).is_ok_and(|l| !l.is_empty())
}

/// Lists the candidates in `dir`, sorted by name. `protected` are canonical paths of btorrent's own
/// files and folders: an entry that is or contains one of them is skipped. Fails only when the folder
/// itself cannot be read, so a caller never mistakes a read error for an empty folder.
pub fn list(dir: &Path, protected: &[PathBuf]) -> std::io::Result<Listing> {
    let mut out = Listing::default();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let os_name = e.file_name();
        let Some(name) = os_name.to_str() else {
            out.unusable.push((
                os_name.clone(),
                "the name is not valid UTF-8, which other clients cannot store".into(),
            ));
            continue;
        };
        if is_hidden_or_partial(name) {
            continue;
        }
        let path = e.path();
        if !protected.is_empty() {
            if let Ok(canon) = path.canonicalize() {
                if protected.iter().any(|p| p.starts_with(&canon)) {
                    continue;
                }
            }
        }
        let is_file = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
        let kind = if is_file && is_torrent_name(name) {
            EntryKind::Torrent
        } else if is_file && is_magnet_file(name, &path) {
            EntryKind::Magnet
        } else {
            EntryKind::Data
        };
        if kind == EntryKind::Magnet {
            let links = magnet_lines(&path).map_or(1, |l| l.len().max(1));
            for line in 0..links {
                out.entries.push(Listed {
                    name: match line {
                        0 => name.to_string(),
                        n => format!("{name}#{}", n + 1),
                    },
                    path: path.clone(),
                    kind,
                    line,
                });
            }
            continue;
        }
        out.entries.push(Listed {
            name: name.to_string(),
            path,
            kind,
            line: 0,
        });
    }
    out.entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// How an entry looks on disk, cheaply: no file content is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// Total bytes of its files.
    pub size: u64,
    /// Number of files (a single file counts one).
    pub files: u64,
    /// Newest modification or status-change time of the entry, its folders and its files,
    /// in nanoseconds since the Unix epoch.
    pub newest_ns: i128,
}

impl Fingerprint {
    /// `newest_ns` as RFC 3339 with nanoseconds (how the ledger stores it).
    pub fn changed_rfc3339(&self) -> String {
        let ns = self.newest_ns.clamp(0, u64::MAX as i128) as u64;
        let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(ns);
        humantime::format_rfc3339_nanos(t).to_string()
    }

    /// Whether there is anything to share yet (a folder just created for a copy holds nothing).
    pub fn has_data(&self) -> bool {
        self.size > 0
    }
}

/// A probe's outcome: the fingerprint, or why the entry could not be read (a stable message, so two
/// probes of an entry that stays unreadable compare equal).
pub type Probe = Result<Fingerprint, String>;

fn changed_ns(m: &std::fs::Metadata) -> i128 {
    let mtime = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
    let ctime = m.ctime() as i128 * 1_000_000_000 + m.ctime_nsec() as i128;
    mtime.max(ctime)
}

fn describe(path: &Path, e: &std::io::Error) -> String {
    format!("cannot read {}: {e}", path.display())
}

/// Fingerprints the entry at `path`, following a top-level symbolic link and symbolic links to files
/// below it (as torrent creation does), not symbolic links to folders.
pub fn probe(path: &Path) -> Probe {
    let meta = std::fs::metadata(path).map_err(|e| describe(path, &e))?;
    let mut fp = Fingerprint {
        size: 0,
        files: 0,
        newest_ns: changed_ns(&meta),
    };
    if meta.is_file() {
        fp.size = meta.len();
        fp.files = 1;
        return Ok(fp);
    }
    if !meta.is_dir() {
        return Err(format!(
            "{} is neither a regular file nor a folder",
            path.display()
        ));
    }
    let mut stack = vec![path.to_path_buf()];
    let mut seen_dirs = HashSet::new();
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| describe(&dir, &e))?;
        for e in entries {
            let e = e.map_err(|e| describe(&dir, &e))?;
            let p = e.path();
            let ft = e.file_type().map_err(|e| describe(&p, &e))?;
            if ft.is_dir() {
                let m = e.metadata().map_err(|e| describe(&p, &e))?;
                fp.newest_ns = fp.newest_ns.max(changed_ns(&m));
                if seen_dirs.insert((m.dev(), m.ino())) {
                    stack.push(p);
                }
                continue;
            }
            let m = std::fs::metadata(&p).map_err(|e| describe(&p, &e))?;
            if m.is_file() {
                fp.size += m.len();
                fp.files += 1;
                fp.newest_ns = fp.newest_ns.max(changed_ns(&m));
                if ft.is_symlink() {
                    let l = e.metadata().map_err(|e| describe(&p, &e))?;
                    fp.newest_ns = fp.newest_ns.max(changed_ns(&l));
                }
            }
        }
    }
    Ok(fp)
}

/// An entry waiting to settle: the last probe result and since when it has been the same.
#[derive(Debug, Clone)]
pub struct Settling {
    pub probe: Probe,
    pub since: Instant,
}

impl Settling {
    pub fn new(probe: Probe, now: Instant) -> Settling {
        Settling { probe, since: now }
    }

    /// Records a fresh probe taken at `now`; a different result restarts the quiet period.
    /// Returns whether the result changed.
    pub fn observe(&mut self, probe: Probe, now: Instant) -> bool {
        if probe == self.probe {
            return false;
        }
        self.probe = probe;
        self.since = now;
        true
    }

    /// Whether the entry could ever become ready as it is: an empty folder waits for data without a
    /// deadline (a new file in it is a change that restarts the clock).
    pub fn waits_for_data(&self) -> bool {
        matches!(&self.probe, Ok(fp) if !fp.has_data())
    }

    /// When the entry becomes due for its readiness check, if it can become ready.
    pub fn due_at(&self, quiet: Duration) -> Option<Instant> {
        (!self.waits_for_data()).then_some(self.since + quiet)
    }

    /// Whether the result has held for `quiet` at `now`.
    pub fn is_ready(&self, now: Instant, quiet: Duration) -> bool {
        self.due_at(quiet).is_some_and(|due| now >= due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_candidates_and_skips_hidden_partial_and_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "a.bin",
            ".hidden",
            "b.part",
            "c.!qB",
            "d.crdownload",
            "x.TORRENT",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        std::fs::create_dir(d.join("folder")).unwrap();
        std::fs::create_dir(d.join("folder.torrent")).unwrap();
        std::fs::create_dir_all(d.join("own/torrents")).unwrap();
        let protected = vec![d.join("own/torrents").canonicalize().unwrap()];
        let l = list(d, &protected).unwrap();
        let got: Vec<(&str, EntryKind)> = l
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("a.bin", EntryKind::Data),
                ("folder", EntryKind::Data),
                ("folder.torrent", EntryKind::Data),
                ("x.TORRENT", EntryKind::Torrent),
            ]
        );
        assert!(l.contains("folder") && !l.contains("b.part") && !l.contains("zzz"));
        assert!(list(&d.join("missing"), &[]).is_err());
    }

    #[test]
    fn magnet_files_are_one_entry_per_link_and_other_text_is_data() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let link = |c: char| format!("magnet:?xt=urn:btih:{}", c.to_string().repeat(40));
        std::fs::write(d.join("one.magnet"), link('a')).unwrap();
        std::fs::write(d.join("empty.magnet"), b"").unwrap();
        let two = format!("\n{}\n\n{}\n", link('b'), link('c'));
        std::fs::write(d.join("links.txt"), two).unwrap();
        std::fs::write(d.join("notes.txt"), b"shopping list\n").unwrap();
        let l = list(d, &[]).unwrap();
        let got: Vec<(&str, EntryKind, usize)> = l
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.line))
            .collect();
        assert_eq!(
            got,
            [
                ("empty.magnet", EntryKind::Magnet, 0),
                ("links.txt", EntryKind::Magnet, 0),
                ("links.txt#2", EntryKind::Magnet, 1),
                ("notes.txt", EntryKind::Data, 0),
                ("one.magnet", EntryKind::Magnet, 0),
            ]
        );
        assert_eq!(l.entries[2].entry(), d.join("links.txt#2"));
        assert_eq!(
            crate::watch::actions::read_magnet(&d.join("links.txt"), 1).unwrap(),
            link('c')
        );
        let e = crate::watch::actions::read_magnet(&d.join("empty.magnet"), 0).unwrap_err();
        assert!(e.to_string().contains("holds no magnet link"), "{e}");
        // A mutable link (BEP 46) is taken as it is (resolved when its metadata is fetched).
        let mutable = format!("magnet:?xs=urn:btpk:{}", "ab".repeat(32));
        std::fs::write(d.join("feed.magnet"), format!("{mutable}\n")).unwrap();
        assert_eq!(
            crate::watch::actions::read_magnet(&d.join("feed.magnet"), 0).unwrap(),
            mutable
        );
        std::fs::write(d.join("bad.magnet"), "magnet:?xs=urn:btpk:abcd\n").unwrap();
        let e = crate::watch::actions::read_magnet(&d.join("bad.magnet"), 0).unwrap_err();
        assert!(e.to_string().contains("64 hex digits"), "{e}");
    }

    #[test]
    fn fingerprint_sees_growth_new_files_and_renames() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        std::fs::create_dir_all(top.join("sub")).unwrap();
        std::fs::write(top.join("sub/a"), b"12345").unwrap();
        let first = probe(&top).unwrap();
        assert_eq!((first.size, first.files), (5, 1));
        assert_eq!(probe(&top).unwrap(), first, "reading changes nothing");
        std::fs::write(top.join("b"), b"xyz").unwrap();
        let second = probe(&top).unwrap();
        assert_eq!((second.size, second.files), (8, 2));
        std::thread::sleep(Duration::from_millis(20));
        std::fs::rename(top.join("b"), top.join("c")).unwrap();
        let third = probe(&top).unwrap();
        assert_eq!((third.size, third.files), (8, 2));
        assert!(third.newest_ns > second.newest_ns, "a rename is a change");
        assert!(third.changed_rfc3339().ends_with('Z'));
        let single = probe(&top.join("c")).unwrap();
        assert_eq!((single.size, single.files), (3, 1));
    }

    #[test]
    fn unreadable_entries_give_the_same_error_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        std::fs::create_dir(&top).unwrap();
        std::os::unix::fs::symlink(dir.path().join("nowhere"), top.join("dangling")).unwrap();
        let a = probe(&top).unwrap_err();
        assert!(a.contains("dangling"), "{a}");
        assert_eq!(probe(&top).unwrap_err(), a);
    }

    #[test]
    fn settling_needs_the_same_result_for_the_quiet_period() {
        let quiet = Duration::from_secs(3);
        let t0 = Instant::now();
        let fp = |size| {
            Ok(Fingerprint {
                size,
                files: 1,
                newest_ns: 1,
            })
        };
        let mut s = Settling::new(fp(10), t0);
        assert!(!s.is_ready(t0 + Duration::from_secs(2), quiet));
        assert!(s.observe(fp(20), t0 + Duration::from_secs(2)));
        assert!(!s.is_ready(t0 + Duration::from_secs(4), quiet));
        assert!(!s.observe(fp(20), t0 + Duration::from_secs(5)));
        assert!(s.is_ready(t0 + Duration::from_secs(5), quiet));
        let mut empty = Settling::new(fp(0), t0);
        assert_eq!(empty.due_at(quiet), None);
        assert!(!empty.is_ready(t0 + Duration::from_secs(60), quiet));
        empty.observe(Err("cannot read".into()), t0);
        assert!(empty.is_ready(t0 + quiet, quiet));
    }
}
