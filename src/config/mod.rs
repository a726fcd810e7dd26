//! `torrents.toml`: the settings and the list of managed torrents.
//!
//! The file is read with serde into [`Settings`] and [`ManagedTorrent`]s and written back through
//! `toml_edit`, so a user's comments, key order and formatting survive every save. Relative paths in the
//! file are relative to the folder that holds it. A missing file means the defaults.
//!
//! [`Config`] is one version of the file. The running program reads and changes it only through the
//! one service that owns it, [`crate::torrents::Torrents`]: it loads the file once, serialises every
//! writer (this process's and others', through an advisory lock on a side file), and reloads when the
//! file changes on disk.
//!
//! - `settings`: the `[settings]` table;
//! - `managed`: the `[[torrent]]` entries, with the watch folder's record of where each came from;
//! - `document`: writing a change back into the user's document.

mod document;
mod managed;
mod settings;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context as _, Result};
use serde::Deserialize;
use toml_edit::DocumentMut;

pub use managed::{
    checked_labels, EntryLimits, FileChoice, Following, GoalMode, ManagedTorrent, Origin,
    Publication, RenamedFile, SeedGoals, WatchSource, MAX_LABELS, MAX_LABEL_CHARS, MAX_PEER_LIMIT,
};
pub use settings::{forget_tracker_bound, is_ratio, note_tracker_bound};
pub use settings::{
    ByteRate, DefaultTracker, GroupSettings, Settings, DEFAULT_DOWNLOAD_QUEUE_SIZE,
    DEFAULT_FOLLOW_INTERVAL, DEFAULT_QUEUE_STALLED_MINUTES, DEFAULT_SEED_QUEUE_SIZE,
    DEFAULT_TRACKER_BIND,
};

use crate::fsutil::write_atomic_unless;
use crate::types::InfoHash;

/// The file's two tables; any other key at the top is a mistake said at load (`[[torrents]]` for
/// `[[torrent]]` read as no torrents at all).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileShape {
    settings: Option<Settings>,
    #[serde(default)]
    torrent: Vec<ManagedTorrent>,
}

/// The file read for the keys of its entries alone ([`managed::EntryKeys`]).
#[derive(Deserialize)]
#[allow(dead_code)] // Read for its keys alone.
struct EntryKeysShape {
    #[serde(default)]
    torrent: Vec<managed::EntryKeys>,
}

/// `torrents.toml` in memory, with the document it came from.
#[derive(Debug, Clone)]
pub struct Config {
    path: PathBuf,
    base: PathBuf,
    pub settings: Settings,
    pub torrents: Vec<ManagedTorrent>,
    doc: DocumentMut,
    /// Whether the file existed when read (a new file gets every setting written out).
    existed: bool,
}

/// Largest torrents.toml read: far more than thousands of torrents need, and a device or pipe that
/// never ends is refused rather than read into memory.
const MAX_CONFIG_BYTES: u64 = 64 << 20;

pub(crate) fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "too large (more than 64 MiB)",
        ));
    }
    Ok(text)
}

/// One line saying where a mistake in the file is: `torrents.toml: line 3 (listen_port = "abc"): ...`.
fn toml_error(
    path: &Path,
    text: &str,
    message: &str,
    span: Option<std::ops::Range<usize>>,
) -> anyhow::Error {
    let message = unknown_key_said_shortly(&message.trim().replace('\n', " "));
    let start = span.map(|s| s.start.min(text.len()));
    let Some(start) = start.filter(|&i| text.is_char_boundary(i)) else {
        return anyhow::anyhow!("{}: {message}", path.display());
    };
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let line: String = line.chars().take(60).collect();
    anyhow::anyhow!("{}: line {line_no} ({line}): {message}", path.display())
}

/// serde's "unknown field `x`, expected one of `a`, `b`, ..." (seventy names for a mistyped
/// setting) said as "unknown key `x`, did you mean `listen_port`? (expected ...)": the name it
/// was probably meant to be first, and the whole list only when it is short.
fn unknown_key_said_shortly(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_string();
    };
    let Some((typed, expected)) = rest.split_once("`, expected ") else {
        return message.to_string();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let hint = match btorrent_proto::text::nearest(typed, known.iter().copied(), 3) {
        Some(k) => format!(", did you mean `{k}`?"),
        None => String::new(),
    };
    let list = if known.len() <= 8 {
        format!(" (expected {expected})")
    } else if known.contains(&"listen_port") {
        " (b-settings lists every setting)".to_string()
    } else {
        String::new()
    };
    format!("unknown key `{typed}`{hint}{list}")
}

/// The current time as RFC 3339, seconds precision, UTC.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

impl Config {
    /// Reads `path`; a missing file gives the defaults (and is created on the first save).
    pub fn load(path: &Path) -> Result<Config> {
        let base = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let (text, existed) = match read_bounded(path) {
            Ok(t) => (t, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), false),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let doc: DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| toml_error(path, &text, e.message(), e.span()))?;
        let shape: FileShape =
            toml::from_str(&text).map_err(|e| toml_error(path, &text, e.message(), e.span()))?;
        toml::from_str::<EntryKeysShape>(&text)
            .map_err(|e| toml_error(path, &text, e.message(), e.span()))?;
        let mut settings = Settings::default();
        if let Some(s) = shape.settings {
            settings = s;
        }
        let mut seen = std::collections::HashSet::new();
        for t in &shape.torrent {
            if t.hash().is_none() {
                bail!(
                    "{}: torrent {:?} has an invalid info_hash {:?}",
                    path.display(),
                    t.name,
                    t.info_hash
                );
            }
            if !seen.insert(t.info_hash.to_ascii_lowercase()) {
                bail!(
                    "{}: torrent {} is listed twice",
                    path.display(),
                    t.info_hash
                );
            }
        }
        Ok(Config {
            path: path.to_path_buf(),
            base,
            settings,
            torrents: shape.torrent,
            doc,
            existed,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file existed when read, or has been written since.
    pub fn existed(&self) -> bool {
        self.existed
    }

    /// The folder relative paths in the file are relative to.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }

    /// A path from the file made absolute (relative to the file's folder).
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p == Path::new(".") {
            return self.base.clone();
        }
        if p.is_absolute() || self.base == Path::new(".") {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// A path to store in the file: relative to the file's folder when it lies below it.
    pub fn relativize(&self, p: &Path) -> PathBuf {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let base = std::path::absolute(&self.base).unwrap_or_else(|_| self.base.clone());
        match abs.strip_prefix(&base) {
            Ok(rel) if rel.as_os_str().is_empty() => PathBuf::from("."),
            Ok(rel) => rel.to_path_buf(),
            _ => abs,
        }
    }

    pub fn output_dir(&self) -> PathBuf {
        self.resolve(&self.settings.output_dir)
    }
    /// The incomplete folder as set (`incomplete` beside this file when unset), on or not.
    pub fn incomplete_dir(&self) -> PathBuf {
        self.resolve(
            self.settings
                .incomplete_dir
                .as_deref()
                .unwrap_or(Path::new("incomplete")),
        )
    }
    /// The incomplete folder while downloads go through it ([`crate::incomplete`]).
    pub fn incomplete_folder(&self) -> Option<PathBuf> {
        let on = self
            .settings
            .incomplete_dir_enabled
            .unwrap_or(self.settings.incomplete_dir.is_some());
        on.then(|| self.incomplete_dir())
    }
    pub fn torrents_dir(&self) -> PathBuf {
        self.resolve(&self.settings.torrents_dir)
    }
    pub fn watch_dir(&self) -> PathBuf {
        self.resolve(&self.settings.watch_dir)
    }
    pub fn scripts_dir(&self) -> PathBuf {
        self.resolve(&self.settings.scripts_dir)
    }

    pub fn find(&self, ih: &InfoHash) -> Option<&ManagedTorrent> {
        self.torrents.iter().find(|t| t.hash().as_ref() == Some(ih))
    }

    pub fn find_mut(&mut self, ih: &InfoHash) -> Option<&mut ManagedTorrent> {
        self.torrents
            .iter_mut()
            .find(|t| t.hash().as_ref() == Some(ih))
    }

    /// Adds `t`, or replaces the entry with the same info-hash (keeping its `added` time, meta,
    /// labels, watch record, limits and goals when `t` has none, and its renamed files when `t` is in the
    /// same folder and renames none).
    pub fn upsert(&mut self, mut t: ManagedTorrent) {
        t.info_hash = t.info_hash.to_ascii_lowercase();
        t.file = self.relativize(&t.file);
        t.data = self.relativize(&t.data);
        t.complete_dir = t.complete_dir.map(|d| self.relativize(&d));
        if let Some(w) = &mut t.watch {
            w.entry = self.relativize(&w.entry);
        }
        match self
            .torrents
            .iter_mut()
            .find(|x| x.info_hash == t.info_hash)
        {
            Some(old) => {
                if t.added.is_empty() {
                    t.added = std::mem::take(&mut old.added);
                }
                if t.meta.is_empty() {
                    t.meta = std::mem::take(&mut old.meta);
                }
                if t.labels.is_empty() {
                    t.labels = std::mem::take(&mut old.labels);
                }
                if t.watch.is_none() {
                    t.watch = old.watch.take();
                }
                if t.limits == EntryLimits::default() {
                    t.limits = old.limits;
                }
                if t.goals.is_default() {
                    t.goals = old.goals;
                }
                // Files renamed in that folder stay renamed; in another folder they are the
                // torrent's own names again.
                if t.files.renamed.is_empty() && t.data == old.data {
                    t.files.renamed = std::mem::take(&mut old.files.renamed);
                }
                *old = t;
            }
            None => {
                if t.added.is_empty() {
                    t.added = now_rfc3339();
                }
                self.torrents.push(t);
            }
        }
    }

    /// Removes the entry for `ih`; returns it if there was one.
    pub fn remove(&mut self, ih: &InfoHash) -> Option<ManagedTorrent> {
        let i = self
            .torrents
            .iter()
            .position(|t| t.hash().as_ref() == Some(ih))?;
        Some(self.torrents.remove(i))
    }

    /// Writes the settings and the torrent list into the document, keeping everything else as it was,
    /// and replaces the file atomically.
    pub fn save(&mut self) -> Result<()> {
        self.save_text().map(drop)
    }

    /// [`Config::save`], returning the text written.
    pub fn save_text(&mut self) -> Result<String> {
        let text = self.text()?;
        self.write_text(&text)?;
        Ok(text)
    }

    /// The file's text with the settings and the torrent list written into the document, as a
    /// save would write it.
    pub fn text(&mut self) -> Result<String> {
        self.sync_settings()?;
        self.sync_torrents()?;
        Ok(self.doc.to_string())
    }

    /// Replaces the file atomically with `text` (what [`Config::text`] gave).
    pub fn write_text(&mut self, text: &str) -> Result<()> {
        self.write_text_unless(text, || false).map(|_| ())
    }

    /// [`Config::write_text`], unless `changed()` says just before the file is replaced that
    /// someone else changed it meanwhile (see [`write_atomic_unless`]): then `false`, nothing
    /// written.
    pub fn write_text_unless(
        &mut self,
        text: &str,
        changed: impl FnOnce() -> bool,
    ) -> Result<bool> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let written = write_atomic_unless(&self.path, text.as_bytes(), changed)
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        self.existed |= written;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::torrents::Torrents;

    /// The file as it is on disk now (these tests look at what a save wrote).
    fn load(path: &Path) -> Result<Config> {
        Config::load(path)
    }

    fn entry(hash: u8, name: &str) -> ManagedTorrent {
        ManagedTorrent::new(
            name,
            &InfoHash([hash; 20]),
            format!("torrents/{name}.torrent"),
            "output",
            "seeding",
            Origin::Created,
        )
    }

    #[test]
    fn missing_file_means_defaults_and_first_save_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        let mut cfg = load(&path).unwrap();
        assert_eq!(cfg.settings, Settings::default());
        cfg.save().unwrap();
        let again = load(&path).unwrap();
        assert_eq!(again.settings, Settings::default());
        assert_eq!(cfg.output_dir(), dir.path().join("output"));
    }

    /// A table or key the file has no place for is an error naming it and its line, not a file read
    /// as empty: `[[torrents]]` for `[[torrent]]` listed no torrent at all, silently.
    #[test]
    fn a_top_level_key_of_no_meaning_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        for text in [
            "[settings]\nlisten_port = 7000\n\n[[torrents]]\nname = \"x\"\n",
            "[settings]\nlisten_port = 7000\n[setting]\nport = 1\n",
            "torrents = 5\n",
        ] {
            std::fs::write(&path, text).unwrap();
            let e = format!("{:#}", load(&path).unwrap_err());
            assert!(e.contains("unknown key"), "{e}");
            assert!(e.contains("(expected `settings` or `torrent`)"), "{e}");
        }
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains("line 1 (torrents = 5)"), "{e}");
        assert!(e.contains("did you mean `torrent`?"), "{e}");
        // A mistyped setting: the one it was meant to be, not the seventy there are.
        std::fs::write(&path, "[settings]\nlisten_prot = 7000\n").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(
            e.ends_with(
                "line 2 (listen_prot = 7000): unknown key `listen_prot`, did you mean \
                 `listen_port`? (b-settings lists every setting)"
            ),
            "{e}"
        );
        std::fs::write(&path, "[settings]\nzzzzzzzz = 1\n").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(
            e.ends_with("unknown key `zzzzzzzz` (b-settings lists every setting)"),
            "{e}"
        );
    }

    /// A misspelt key in a torrent's entry (a hand edit) is refused at its line, with the key it
    /// was meant to be; the entry as btorrent writes it, every key there, loads.
    #[test]
    fn a_misspelt_key_of_an_entry_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        let mut cfg = load(&path).unwrap();
        cfg.upsert(entry(1, "a"));
        cfg.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("state = ", "stat = ")).unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(
            e.contains("(stat = \"seeding\"): unknown key `stat`, did you mean `state`?"),
            "{e}"
        );
        assert!(e.ends_with('?'), "no list of the 25 keys: {e}");
        // In a table of the entry, as a hand edit of the files chosen would write it.
        std::fs::write(&path, format!("{text}\n[torrent.files]\nskipp = [1]\n")).unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(
            e.contains("(skipp = [1]): unknown key `skipp`, did you mean `skip`?"),
            "{e}"
        );
    }

    #[test]
    fn every_key_an_entry_writes_is_one_it_may_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        let mut cfg = load(&path).unwrap();
        // Every field named (a new one fails to compile here until it is given a value, and
        // then this load until `EntryKeys` has it).
        let full = ManagedTorrent {
            name: "full".into(),
            info_hash: InfoHash([3; 20]).to_hex(),
            file: "torrents/full.torrent".into(),
            data: "output".into(),
            complete_dir: Some("done".into()),
            state: "paused".into(),
            added: now_rfc3339(),
            origin: Origin::Watch,
            meta: [("k".to_string(), toml::Value::Integer(1))].into(),
            labels: vec!["tv".into()],
            group: Some("backup".into()),
            watch: Some(WatchSource {
                entry: "watch/full".into(),
                size: 1,
                files: 1,
                changed: now_rfc3339(),
            }),
            publish: Some(Publication {
                key: "k".into(),
                salt: Some("s".into()),
                seq: 1,
            }),
            follow: Some(Following {
                link: "magnet:?xs=urn:btpk:00".into(),
                seq: 1,
            }),
            limits: EntryLimits {
                upload_limit: Some(ByteRate(1)),
                download_limit: Some(ByteRate(1)),
                honors_session_limits: false,
                max_peers: Some(5),
                bandwidth_priority: crate::engine::Priority::High,
            },
            files: FileChoice {
                skip: vec![1],
                sequential: true,
                ..Default::default()
            },
            goals: SeedGoals {
                seed_ratio_mode: GoalMode::Single,
                seed_ratio_limit: Some(1.5),
                seed_idle_mode: GoalMode::Single,
                seed_idle_minutes: Some(9),
                finished: true,
            },
        };
        cfg.upsert(full.clone());
        cfg.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("finished = true") && text.contains("max_peers = 5"),
            "{text}"
        );
        let back = load(&path).unwrap().torrents.remove(0);
        assert_eq!(
            (
                back.goals,
                back.limits,
                back.files,
                back.publish,
                back.follow
            ),
            (
                full.goals,
                full.limits,
                full.files,
                full.publish,
                full.follow
            )
        );
        assert_eq!(
            (back.meta, back.labels, back.group),
            (full.meta, full.labels, full.group)
        );
    }

    #[test]
    fn omitted_tracker_bind_means_no_tracker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "[settings]\nlisten_port = 7000\n").unwrap();
        let cfg = load(&path).unwrap();
        assert_eq!(cfg.settings.tracker_bind, None);
        assert_eq!(cfg.settings.listen_port, 7000);
        assert_eq!(cfg.settings.output_dir, PathBuf::from("output"));
    }

    #[test]
    fn bandwidth_groups_are_written_inline_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        std::fs::write(&path, "[settings]\n# speeds\nlisten_port = 7002\n").unwrap();
        let backup = GroupSettings {
            upload_limit: Some(ByteRate(100_000)),
            download_limit: None,
            honors_session_limits: false,
        };
        Torrents::update(&Torrents::open(&path), |cfg| {
            let groups = &mut cfg.settings.bandwidth_groups;
            groups.insert("backup".into(), backup);
            groups.insert("media files".into(), GroupSettings::default());
            cfg.upsert(ManagedTorrent {
                group: Some("backup".into()),
                ..entry(3, "c")
            });
            Ok(())
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# speeds\nlisten_port = 7002\n"), "{text}");
        assert!(text.contains("bandwidth_groups = {"), "{text}");
        assert!(text.contains("group = \"backup\""), "{text}");
        let cfg = load(&path).unwrap();
        assert_eq!(cfg.settings.bandwidth_groups["backup"], backup);
        let limits = cfg.settings.group_limits();
        assert_eq!(limits[0].0, "backup");
        assert_eq!(limits[0].1.upload, Some(100_000));
        assert!(limits[1].1.honors_session_limits);
        assert_eq!(cfg.torrents[0].group.as_deref(), Some("backup"));
        // A group with a key it does not know is refused, the key named.
        std::fs::write(&path, "[settings]\nbandwidth_groups = { a = { up = 1 } }\n").unwrap();
        let err = format!("{:#}", load(&path).unwrap_err());
        assert!(err.contains("up"), "{err}");
    }

    #[test]
    fn saves_keep_comments_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        let original = "# my btorrent setup\n[settings]\n# where downloads go\noutput_dir = \"dl\"   # keep\nlisten_port = 7001\n\n# first torrent\n[[torrent]]\nname = \"a\"\ninfo_hash = \"0101010101010101010101010101010101010101\"\nfile = \"torrents/a.torrent\"\ndata = \"dl\"\nstate = \"seeding\"\nadded = \"2026-01-01T00:00:00Z\"\norigin = \"created\"\n";
        std::fs::write(&path, original).unwrap();
        Torrents::update(&Torrents::open(&path), |cfg| {
            cfg.upsert(entry(2, "b"));
            cfg.find_mut(&InfoHash([1; 20])).unwrap().state = "paused".into();
            Ok(())
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# my btorrent setup\n[settings]\n# where downloads go\noutput_dir = \"dl\"   # keep\n"), "{text}");
        assert!(
            text.contains("# first torrent\n[[torrent]]\nname = \"a\""),
            "{text}"
        );
        assert!(text.contains("state = \"paused\""));
        let cfg = load(&path).unwrap();
        assert_eq!(cfg.torrents.len(), 2);
        assert_eq!(cfg.torrents[1].name, "b");
        assert!(!cfg.torrents[1].added.is_empty());
        Torrents::update(&Torrents::open(&path), |cfg| {
            cfg.remove(&InfoHash([1; 20])).unwrap();
            Ok(())
        })
        .unwrap();
        let cfg = load(&path).unwrap();
        assert_eq!(cfg.torrents.len(), 1);
        assert_eq!(cfg.settings.output_dir, PathBuf::from("dl"));
    }

    /// A reorder of entries read from the file (`queue-move`) is what the next save writes, each
    /// entry with its own `[torrent.files]` table and its comments.
    #[test]
    fn a_reorder_of_entries_read_from_the_file_is_saved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        let entry_text = |n: u8, name: &str| {
            format!(
                "# {name} here\n[[torrent]]\nname = \"{name}\"\ninfo_hash = \"{}\"\nfile = \"t/{name}.torrent\"\ndata = \"dl\"\nstate = \"seeding\"\nadded = \"2026-01-01T00:00:00Z\"\norigin = \"created\"\n[torrent.files]\nskip = [{n}]\n\n",
                InfoHash([n; 20]).to_hex()
            )
        };
        let original = format!(
            "[settings]\nlisten_port = 7001\n\n{}{}{}",
            entry_text(1, "a"),
            entry_text(2, "b"),
            entry_text(3, "c")
        );
        std::fs::write(&path, original).unwrap();
        Torrents::update(&Torrents::open(&path), |cfg| {
            cfg.torrents.rotate_right(1);
            Ok(())
        })
        .unwrap();
        let cfg = load(&path).unwrap();
        let names: Vec<_> = cfg.torrents.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["c", "a", "b"]);
        for t in &cfg.torrents {
            let skip = t.files.priorities(4).unwrap();
            let n = t.hash().unwrap().0[0] as usize;
            assert_eq!(skip[n], crate::engine::FilePriority::Skip, "{}", t.name);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("[settings]\nlisten_port = 7001\n"),
            "{text}"
        );
        assert!(
            text.contains("# c here\n[[torrent]]\nname = \"c\""),
            "{text}"
        );
    }

    #[test]
    fn bad_files_give_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "[settings]\nlisten_prot = 1\n").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("listen_prot"), "{err}");
        std::fs::write(
            &path,
            "[[torrent]]\nname=\"x\"\ninfo_hash=\"zz\"\nfile=\"a\"\ndata=\"b\"\n",
        )
        .unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("invalid info_hash"), "{err}");
    }

    #[test]
    fn meta_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        Torrents::update(&Torrents::open(&path), |cfg| {
            let mut t = entry(3, "c");
            t.meta.insert("moved".into(), toml::Value::Boolean(true));
            cfg.upsert(t);
            Ok(())
        })
        .unwrap();
        let cfg = load(&path).unwrap();
        assert_eq!(
            cfg.torrents[0].meta.get("moved"),
            Some(&toml::Value::Boolean(true))
        );
    }

    #[test]
    fn watch_record_round_trips_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let w = WatchSource {
            entry: dir.path().join("watch/Holiday photos"),
            size: 1234,
            files: 3,
            changed: "2026-01-01T00:00:00.123456789Z".into(),
        };
        Torrents::update(&Torrents::open(&path), |cfg| {
            let mut t = entry(4, "Holiday photos");
            t.origin = Origin::Watch;
            t.watch = Some(w.clone());
            cfg.upsert(t);
            cfg.upsert(entry(5, "other"));
            Ok(())
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("watch = { entry = \"watch/Holiday photos\", size = 1234"),
            "{text}"
        );
        let cfg = load(&path).unwrap();
        let got = cfg.torrents[0].watch.clone().unwrap();
        assert_eq!(got.entry, PathBuf::from("watch/Holiday photos"));
        assert_eq!(cfg.resolve(&got.entry), w.entry);
        assert_eq!(
            (got.size, got.files, got.changed),
            (w.size, w.files, w.changed)
        );
        assert_eq!(cfg.torrents[1].watch, None);
        // A script re-registering the torrent does not drop the watch record.
        Torrents::update(&Torrents::open(&path), |cfg| {
            let mut t = entry(4, "Holiday photos");
            t.state = "paused".into();
            cfg.upsert(t);
            Ok(())
        })
        .unwrap();
        let cfg = load(&path).unwrap();
        assert!(cfg.torrents[0].watch.is_some());
        assert_eq!(cfg.torrents[0].state, "paused");
    }
}
