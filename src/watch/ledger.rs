//! The ledger: what each watch-folder entry became, so an entry is turned into a torrent once and a
//! restart does not hash it again.
//!
//! It lives in torrents.toml, on the torrent's own `[[torrent]]` entry: `origin = "watch"` and
//! `watch = { entry = "watch/Holiday", size = .., files = .., changed = ".." }`, the entry's fingerprint
//! when it was hashed. Keeping it there rather than in a file beside it means one locked, atomic
//! [`Torrents::update`](crate::torrents::Torrents::update) registers the torrent and records the entry together: no crash can leave one
//! without the other, the embedded tracker's private mode sees the torrent at once, and `b-show` reads
//! where a torrent came from without a second file.
//!
//! Rules (applied by [`record`] under the config lock, so several processes agree):
//! - one record per entry; an entry whose content changed is re-hashed and its record replaced;
//! - deduplicated by info-hash: an entry whose torrent is already managed (by another record, or made
//!   by `b-create`) is refused, never registered twice;
//! - the .torrent written for an entry goes to the torrents folder as `<name>.torrent` (or
//!   `<name>.<hash prefix>.torrent` when that name holds a different torrent); an existing file with the
//!   same info-hash is reused, so re-hashing after a crash writes nothing new.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::scan::Fingerprint;
use crate::config::{Config, FileChoice, ManagedTorrent, Origin, WatchSource};
use crate::engine::FilePriority;
use crate::fsutil::write_atomic;
use crate::metainfo::Metainfo;
use crate::types::InfoHash;

/// One ledger record, paths resolved.
#[derive(Debug, Clone)]
pub struct Record {
    pub info_hash: InfoHash,
    /// The torrent's name.
    pub name: String,
    /// The .torrent file.
    pub file: PathBuf,
    /// The folder the data is seeded from or downloaded into.
    pub data: PathBuf,
    pub source: WatchSource,
}

impl Record {
    /// Whether the entry still looks as it did when it was hashed.
    pub fn matches(&self, fp: &Fingerprint) -> bool {
        self.source.size == fp.size
            && self.source.files == fp.files
            && self.source.changed == fp.changed_rfc3339()
    }
}

/// The records of the entries of one watch folder, by entry name.
#[derive(Debug, Default)]
pub struct Ledger {
    by_entry: HashMap<String, Record>,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The name of `entry` if it lies directly in `watch_dir`.
fn entry_name(cfg: &Config, entry: &Path, watch_dir: &Path) -> Option<String> {
    let abs = absolute(&cfg.resolve(entry));
    if abs.parent()? != watch_dir {
        return None;
    }
    abs.file_name()?.to_str().map(str::to_string)
}

impl Ledger {
    /// The records of `cfg` whose entry lies in `watch_dir` (absolute). Records of another folder (the
    /// watch folder was moved in the settings) are left alone.
    pub fn read(cfg: &Config, watch_dir: &Path) -> Ledger {
        let mut by_entry = HashMap::new();
        for t in &cfg.torrents {
            let (Some(w), Some(ih)) = (&t.watch, t.hash()) else {
                continue;
            };
            let Some(name) = entry_name(cfg, &w.entry, watch_dir) else {
                continue;
            };
            by_entry.insert(
                name,
                Record {
                    info_hash: ih,
                    name: t.name.clone(),
                    file: cfg.resolve(&t.file),
                    data: cfg.resolve(&t.data),
                    source: w.clone(),
                },
            );
        }
        Ledger { by_entry }
    }

    pub fn get(&self, entry: &str) -> Option<&Record> {
        self.by_entry.get(entry)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Record)> {
        self.by_entry.iter()
    }

    pub fn len(&self) -> usize {
        self.by_entry.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_entry.is_empty()
    }
}

/// A ready entry turned into a torrent, to be recorded.
pub struct NewShare<'a> {
    /// The entry's absolute path in the watch folder.
    pub entry: &'a Path,
    pub meta: &'a Metainfo,
    /// The entry's fingerprint when it was hashed (or read, for a .torrent).
    pub fp: Fingerprint,
    /// Where the data is: the entry's folder for data, the output folder for a download.
    pub data_dir: &'a Path,
    pub torrents_dir: &'a Path,
    /// A dropped .torrent (downloading) rather than data (seeding).
    pub download: bool,
    /// Each file's priority (a magnet link's `so`); `None`: every file wanted.
    pub files: Option<&'a [FilePriority]>,
    /// A queue this process keeps may apply to it ([`crate::queue`]): it is recorded `queued`,
    /// added paused, and started by the queue when it has a place.
    pub queued: bool,
    /// The mutable link (BEP 46) a dropped link was resolved from: recorded with the torrent,
    /// which then follows it ([`crate::following`]).
    pub follow: Option<&'a crate::config::Following>,
}

/// What [`record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new torrent was registered.
    New { file: PathBuf },
    /// The entry's record already named this torrent; its fingerprint was refreshed.
    Kept { file: PathBuf },
    /// The entry's content changed: its old torrent was replaced by this one.
    Replaced { file: PathBuf, old: InfoHash },
}

/// Records `s` in `cfg` (call it inside [`Torrents::update`](crate::torrents::Torrents::update)). Errors are one-line reasons to report.
pub fn record(cfg: &mut Config, s: &NewShare) -> Result<Recorded, String> {
    let ih = s.meta.info_hash;
    let entry = absolute(s.entry);
    // Stored entries are always written relativized, so comparing in that form needs no path
    // resolution per torrent.
    let stored = cfg.relativize(&entry);
    let existing = cfg
        .torrents
        .iter()
        .find(|t| t.watch.as_ref().is_some_and(|w| w.entry == stored))
        .cloned();
    if let Some(other) = cfg.find(&ih) {
        if existing.as_ref().and_then(ManagedTorrent::hash) != Some(ih) {
            let from = match &other.watch {
                Some(w) => format!("watch entry {}", cfg.resolve(&w.entry).display()),
                None => format!(
                    "{} torrent with data in {}",
                    origin_name(other.origin),
                    cfg.resolve(&other.data).display()
                ),
            };
            return Err(format!(
                "already shared as {} ({ih}), the {from}",
                other.name
            ));
        }
    }
    let source = WatchSource {
        entry: entry.clone(),
        size: s.fp.size,
        files: s.fp.files,
        changed: s.fp.changed_rfc3339(),
    };
    if let Some(old) = existing.as_ref().filter(|t| t.hash() == Some(ih)) {
        let file = cfg.resolve(&old.file);
        let record = WatchSource {
            entry: stored,
            ..source
        };
        cfg.find_mut(&ih).expect("found above").watch = Some(record);
        return Ok(Recorded::Kept { file });
    }
    let file = write_torrent(s.torrents_dir, s.meta)?;
    let replaced = existing.and_then(|t| t.hash());
    if let Some(old) = replaced {
        cfg.remove(&old);
    }
    let mut files = FileChoice::default();
    if let Some(p) = s.files {
        files.record(p);
    }
    // A download waits, paused, when added torrents do not start (`start_added_torrents`);
    // dropped data is always shared, through the seeding queue when one is kept.
    let state = match s.download {
        true if !cfg.settings.start_added_torrents => "paused",
        _ if s.queued => crate::actions::QUEUED,
        false => "seeding",
        true => "downloading",
    };
    // A download is kept in the incomplete folder until complete, when that is on.
    let (data_dir, complete_dir) = match s.download {
        true => crate::incomplete::placement(cfg, &s.meta.info, s.data_dir),
        false => (s.data_dir.to_path_buf(), None),
    };
    cfg.upsert(ManagedTorrent {
        watch: Some(source),
        files,
        complete_dir,
        follow: s.follow.cloned(),
        ..ManagedTorrent::new(
            s.meta.info.name.clone(),
            &ih,
            file.clone(),
            data_dir,
            state,
            Origin::Watch,
        )
    });
    Ok(match replaced {
        Some(old) => Recorded::Replaced { file, old },
        None => Recorded::New { file },
    })
}

fn origin_name(o: Origin) -> &'static str {
    match o {
        Origin::Created => "created",
        Origin::Watch => "watch",
        Origin::Added => "added",
    }
}

/// Removes the record of the entry at `entry` (absolute) if it still names `ih`; returns whether it did.
pub fn forget(cfg: &mut Config, entry: &Path, ih: &InfoHash) -> bool {
    let stored = cfg.relativize(&absolute(entry));
    let ours = cfg
        .find(ih)
        .is_some_and(|t| t.watch.as_ref().is_some_and(|w| w.entry == stored));
    ours && cfg.remove(ih).is_some()
}

/// Writes `meta` into `dir` under a free name, or finds the file already holding it.
fn write_torrent(dir: &Path, meta: &Metainfo) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = &meta.info.name;
    let hex = meta.info_hash.to_hex();
    for file_name in [
        format!("{name}.torrent"),
        format!("{name}.{}.torrent", &hex[..8]),
    ] {
        let path = dir.join(file_name);
        if std::fs::symlink_metadata(&path).is_ok() {
            match Metainfo::load(&path) {
                Ok(m) if m.info_hash == meta.info_hash => return Ok(path),
                _ => continue,
            }
        }
        write_atomic(&path, meta.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        return Ok(path);
    }
    Err(format!(
        "{} already holds other torrents named {name}",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metainfo::{create_torrent, CreateOptions};
    use crate::torrents::Torrents;

    fn fp(size: u64) -> Fingerprint {
        Fingerprint {
            size,
            files: 1,
            newest_ns: 1_700_000_000_123_456_789,
        }
    }

    fn torrent_of(path: &Path) -> Metainfo {
        create_torrent(path, &CreateOptions::default(), &|_, _| {}).unwrap()
    }

    /// A dropped .torrent is recorded to download into the incomplete folder, with its own folder
    /// to move to, while that folder is on; dropped data is seeded where it is.
    #[test]
    fn a_dropped_download_waits_in_the_incomplete_folder() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let service = Torrents::open(&base.join("torrents.toml"));
        let (watch, output) = (base.join("watch"), base.join("output"));
        std::fs::create_dir_all(&watch).unwrap();
        let entry = watch.join("b.bin");
        std::fs::write(&entry, b"bytes").unwrap();
        let meta = torrent_of(&entry);
        let recorded = Torrents::update(&service, |cfg| {
            cfg.settings.incomplete_dir = Some("partial".into());
            Ok(record(
                cfg,
                &NewShare {
                    entry: &watch.join("b.bin.torrent"),
                    meta: &meta,
                    fp: fp(5),
                    data_dir: &output,
                    torrents_dir: &base.join("torrents"),
                    download: true,
                    files: None,
                    queued: false,
                    follow: None,
                },
            ))
        })
        .unwrap();
        assert!(matches!(recorded, Ok(Recorded::New { .. })), "{recorded:?}");
        let cfg = service.config().unwrap();
        let t = &cfg.torrents[0];
        assert_eq!(cfg.resolve(&t.data), base.join("partial"));
        assert_eq!(
            t.complete_dir.as_deref().map(|d| cfg.resolve(d)),
            Some(output)
        );
    }

    #[test]
    fn records_once_dedupes_and_replaces_changed_entries() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let cfg_path = base.join("torrents.toml");
        let service = Torrents::open(&cfg_path);
        let watch = base.join("watch");
        let torrents = base.join("torrents");
        std::fs::create_dir_all(&watch).unwrap();
        let entry = watch.join("a.bin");
        std::fs::write(&entry, b"first").unwrap();
        let m1 = torrent_of(&entry);
        let share = |meta: &Metainfo, size| {
            Torrents::update(&service, |cfg| {
                Ok(record(
                    cfg,
                    &NewShare {
                        entry: &entry,
                        meta,
                        fp: fp(size),
                        data_dir: &watch,
                        torrents_dir: &torrents,
                        download: false,
                        files: None,
                        queued: false,
                        follow: None,
                    },
                ))
            })
            .unwrap()
        };
        let file = torrents.join("a.bin.torrent");
        assert_eq!(share(&m1, 5), Ok(Recorded::New { file: file.clone() }));
        // The same torrent again (a restart that re-hashed): kept, nothing new written.
        assert_eq!(share(&m1, 5), Ok(Recorded::Kept { file: file.clone() }));
        let cfg = service.config().unwrap();
        assert_eq!(cfg.torrents.len(), 1);
        let t = &cfg.torrents[0];
        assert_eq!((t.origin, t.state.as_str()), (Origin::Watch, "seeding"));
        assert_eq!(
            t.watch.as_ref().unwrap().entry,
            PathBuf::from("watch/a.bin")
        );
        let ledger = Ledger::read(&cfg, &watch);
        let rec = ledger.get("a.bin").unwrap();
        assert!(rec.matches(&fp(5)) && !rec.matches(&fp(6)));
        assert_eq!(rec.data, watch);
        assert!(Ledger::read(&cfg, &base.join("elsewhere")).is_empty());

        // The content changed: the record is replaced, the new .torrent takes a free name.
        std::fs::write(&entry, b"second!").unwrap();
        let m2 = torrent_of(&entry);
        let hex = m2.info_hash.to_hex();
        let file2 = torrents.join(format!("a.bin.{}.torrent", &hex[..8]));
        assert_eq!(
            share(&m2, 7),
            Ok(Recorded::Replaced {
                file: file2.clone(),
                old: m1.info_hash
            })
        );
        assert_eq!(Metainfo::load(&file2).unwrap().info_hash, m2.info_hash);
        let cfg = service.config().unwrap();
        assert_eq!(cfg.torrents.len(), 1);
        assert_eq!(cfg.torrents[0].hash(), Some(m2.info_hash));

        // Another entry with the same info-hash is refused.
        let other = base.join("other/a.bin");
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        let err = Torrents::update(&service, |cfg| {
            Ok(record(
                cfg,
                &NewShare {
                    entry: &other,
                    meta: &m2,
                    fp: fp(7),
                    data_dir: &watch,
                    torrents_dir: &torrents,
                    download: false,
                    files: None,
                    queued: false,
                    follow: None,
                },
            ))
        })
        .unwrap()
        .unwrap_err();
        assert!(err.contains("already shared as a.bin"), "{err}");

        // Forgetting needs the right entry and hash.
        Torrents::update(&service, |cfg| {
            assert!(!forget(cfg, &other, &m2.info_hash));
            assert!(!forget(cfg, &entry, &m1.info_hash));
            assert!(forget(cfg, &entry, &m2.info_hash));
            Ok(())
        })
        .unwrap();
        assert!(service.config().unwrap().torrents.is_empty());
    }
}
