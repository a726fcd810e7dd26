//! One `[[torrent]]` entry of `torrents.toml`: a torrent btorrent manages, where it came from, and for
//! torrents the watch folder made, the record of the watched entry ([`WatchSource`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ByteRate;
use crate::engine::{FilePriority, Priority, TorrentLimits};
use crate::types::InfoHash;

/// Where a managed torrent came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Made here with `b-create`.
    Created,
    /// Made by the watch folder from a dropped file or folder.
    Watch,
    /// An existing .torrent added to download.
    #[default]
    Added,
}

/// One `[[torrent]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedTorrent {
    pub name: String,
    pub info_hash: String,
    /// The .torrent file.
    pub file: PathBuf,
    /// The folder that holds the torrent's file or top folder.
    pub data: PathBuf,
    /// Where the data moves once complete: set while a download is kept in the incomplete folder
    /// (`data`; see [`crate::incomplete`]), cleared by the move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete_dir: Option<PathBuf>,
    /// `downloading`, `seeding`, `paused`, `complete`, `stopped` or `error`.
    #[serde(default = "default_state")]
    pub state: String,
    /// RFC 3339 time it was added.
    #[serde(default)]
    pub added: String,
    #[serde(default)]
    pub origin: Origin,
    /// Script-owned values kept with the torrent (`t.meta` in rhai).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, toml::Value>,
    /// The words the user files the torrent under (Transmission's `labels`), as
    /// [`checked_labels`] leaves them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The bandwidth group it is in (Transmission's `group`; its limits are the settings'
    /// `bandwidth_groups`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Set on torrents the watch folder made or added: the watch folder's ledger entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchSource>,
    /// A mutable link (BEP 46) points at this torrent (`[torrent.publish]`): published again
    /// while a shell or daemon runs, before DHT nodes forget it ([`crate::publishing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Publication>,
    /// It was started from a mutable link (`[torrent.follow]`), which a shell or daemon keeps
    /// following: a newer torrent under the link is started into the same folder
    /// ([`crate::following`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow: Option<Following>,
    /// The torrent's own speed limits (`upload_limit`, `download_limit`, `honors_session_limits`).
    #[serde(flatten)]
    pub limits: EntryLimits,
    /// The files chosen and sequential mode (`[torrent.files]`; absent = every file wanted).
    #[serde(default, skip_serializing_if = "FileChoice::is_default")]
    pub files: FileChoice,
    /// The torrent's seeding goals (`seed_ratio_mode`, `seed_ratio_limit`, `seed_idle_mode`,
    /// `seed_idle_minutes`; absent = the session's) and whether a goal stopped it (`finished`).
    #[serde(flatten)]
    pub goals: SeedGoals,
}

/// The keys a `[[torrent]]` entry may hold: those of [`ManagedTorrent`], with its limits' and
/// goals' flattened in (which is why serde cannot refuse the others there). The file is read once
/// more through this at load, every other key refused, so a misspelt key of a hand edit (`stat =
/// "paused"`) is an error at its line, not a word nobody reads. A key added to the entry is added
/// here (`every_key_an_entry_writes_is_one_it_may_hold` checks).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(dead_code)] // Read for its keys alone.
#[derive(Default)]
pub(super) struct EntryKeys {
    name: serde::de::IgnoredAny,
    info_hash: serde::de::IgnoredAny,
    file: serde::de::IgnoredAny,
    data: serde::de::IgnoredAny,
    complete_dir: serde::de::IgnoredAny,
    state: serde::de::IgnoredAny,
    added: serde::de::IgnoredAny,
    origin: serde::de::IgnoredAny,
    meta: serde::de::IgnoredAny,
    labels: serde::de::IgnoredAny,
    group: serde::de::IgnoredAny,
    watch: serde::de::IgnoredAny,
    publish: serde::de::IgnoredAny,
    follow: serde::de::IgnoredAny,
    files: serde::de::IgnoredAny,
    upload_limit: serde::de::IgnoredAny,
    download_limit: serde::de::IgnoredAny,
    honors_session_limits: serde::de::IgnoredAny,
    max_peers: serde::de::IgnoredAny,
    bandwidth_priority: serde::de::IgnoredAny,
    seed_ratio_mode: serde::de::IgnoredAny,
    seed_ratio_limit: serde::de::IgnoredAny,
    seed_idle_mode: serde::de::IgnoredAny,
    seed_idle_minutes: serde::de::IgnoredAny,
    finished: serde::de::IgnoredAny,
}

/// Which seeding goal applies to a torrent, as Transmission's modes: the session's (`global`), the
/// torrent's own (`single`), or none (`unlimited`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GoalMode {
    #[default]
    Global,
    Single,
    Unlimited,
}

impl GoalMode {
    fn is_global(&self) -> bool {
        *self == GoalMode::Global
    }

    /// Transmission's number for the mode: 0 global, 1 single, 2 unlimited.
    pub fn code(self) -> i64 {
        match self {
            GoalMode::Global => 0,
            GoalMode::Single => 1,
            GoalMode::Unlimited => 2,
        }
    }

    /// The mode of Transmission's number; `None` for anything but 0, 1, 2.
    pub fn from_code(n: i64) -> Option<GoalMode> {
        [GoalMode::Global, GoalMode::Single, GoalMode::Unlimited]
            .into_iter()
            .find(|m| m.code() == n)
    }
}

/// A torrent's own seeding goals as torrents.toml keeps them: each written only when it is not the
/// default (the session's goal), and `finished = true` once a goal stopped the torrent (cleared when
/// it is resumed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedGoals {
    #[serde(default, skip_serializing_if = "GoalMode::is_global")]
    pub seed_ratio_mode: GoalMode,
    /// Upload/download ratio at which the torrent stops, in `single` mode.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::settings::ratio_goal"
    )]
    pub seed_ratio_limit: Option<f64>,
    #[serde(default, skip_serializing_if = "GoalMode::is_global")]
    pub seed_idle_mode: GoalMode,
    /// Minutes without upload after which the torrent stops, in `single` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_idle_minutes: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finished: bool,
}

impl SeedGoals {
    pub fn is_default(&self) -> bool {
        *self == SeedGoals::default()
    }

    /// The ratio goal in force: the torrent's own, the session's `session` or none, by mode.
    pub fn ratio(&self, session: Option<f64>) -> Option<f64> {
        match self.seed_ratio_mode {
            GoalMode::Global => session,
            GoalMode::Single => self.seed_ratio_limit,
            GoalMode::Unlimited => None,
        }
    }

    /// The idle goal in force, in minutes: the torrent's own, the session's or none, by mode.
    pub fn idle_minutes(&self, session: Option<u64>) -> Option<u64> {
        match self.seed_idle_mode {
            GoalMode::Global => session,
            GoalMode::Single => self.seed_idle_minutes,
            GoalMode::Unlimited => None,
        }
    }
}

/// What torrents.toml keeps of a torrent's files: the indices (from 0, in the torrent's order) of the
/// files skipped and of those of low or high priority (the others are normal), whether pieces are
/// fetched in order and the piece that order starts at, and the files renamed
/// (`torrent-rename-path`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileChoice {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub low: Vec<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub high: Vec<usize>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sequential: bool,
    /// The piece sequential mode starts at (then it wraps round to the first).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sequential_from: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed: Vec<RenamedFile>,
}

/// A file whose path below the data folder is not the torrent's: `renamed = [{ file = 0, path =
/// "photos/beach.jpg" }]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenamedFile {
    pub file: usize,
    pub path: PathBuf,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl FileChoice {
    pub fn is_default(&self) -> bool {
        *self == FileChoice::default()
    }

    /// The priority of each of `n` files; `None` when every file is normal. Indices past `n` are
    /// ignored.
    pub fn priorities(&self, n: usize) -> Option<Vec<FilePriority>> {
        if self.skip.is_empty() && self.low.is_empty() && self.high.is_empty() {
            return None;
        }
        let mut p = vec![FilePriority::Normal; n];
        for (list, prio) in [
            (&self.skip, FilePriority::Skip),
            (&self.low, FilePriority::Low),
            (&self.high, FilePriority::High),
        ] {
            for &i in list.iter().filter(|&&i| i < n) {
                p[i] = prio;
            }
        }
        Some(p)
    }

    /// Every file's path below the data folder, the renamed ones as recorded; `None` when none is
    /// renamed. Records of indices past the torrent's files are ignored.
    pub fn paths(&self, info: &crate::metainfo::Info) -> Option<Vec<PathBuf>> {
        if self.renamed.is_empty() {
            return None;
        }
        let mut p: Vec<PathBuf> = info.files.iter().map(|f| f.path.clone()).collect();
        for r in &self.renamed {
            if let Some(slot) = p.get_mut(r.file) {
                *slot = r.path.clone();
            }
        }
        Some(p)
    }

    /// Records `paths` (one per file): those that are not the torrent's own.
    pub fn record_paths(&mut self, info: &crate::metainfo::Info, paths: &[PathBuf]) {
        self.renamed = info
            .files
            .iter()
            .zip(paths)
            .enumerate()
            .filter(|(_, (f, p))| f.path != **p)
            .map(|(file, (_, p))| RenamedFile {
                file,
                path: p.clone(),
            })
            .collect();
    }

    /// Records `p` (one priority per file).
    pub fn record(&mut self, p: &[FilePriority]) {
        let with = |x: FilePriority| (0..p.len()).filter(|&i| p[i] == x).collect();
        self.skip = with(FilePriority::Skip);
        self.low = with(FilePriority::Low);
        self.high = with(FilePriority::High);
    }
}

/// A managed torrent's own speed limits as torrents.toml keeps them: each limit a number of bytes
/// per second or a size such as `"500K"` (absent or 0 = unlimited), `honors_session_limits =
/// false` when the session's `upload_limit`/`download_limit` do not apply to it, its own most peers,
/// and `bandwidth_priority = "high"` or `"low"` (absent = normal) for its turn under the session's
/// limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_limit: Option<ByteRate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_limit: Option<ByteRate>,
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub honors_session_limits: bool,
    /// Most peers of this torrent; absent = the session's `max_peers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_peers: Option<usize>,
    #[serde(default, skip_serializing_if = "is_normal")]
    pub bandwidth_priority: Priority,
}

fn is_normal(p: &Priority) -> bool {
    *p == Priority::Normal
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

impl Default for EntryLimits {
    fn default() -> Self {
        EntryLimits::from(TorrentLimits::default())
    }
}

impl From<TorrentLimits> for EntryLimits {
    fn from(l: TorrentLimits) -> Self {
        EntryLimits {
            upload_limit: l.upload.filter(|&r| r > 0).map(ByteRate),
            download_limit: l.download.filter(|&r| r > 0).map(ByteRate),
            honors_session_limits: l.honors_session_limits,
            max_peers: l.max_peers.filter(|&n| n > 0),
            bandwidth_priority: l.priority,
        }
    }
}

impl EntryLimits {
    /// The limits as the engine takes them.
    pub fn engine(self) -> TorrentLimits {
        TorrentLimits {
            upload: self.upload_limit.and_then(ByteRate::limit),
            download: self.download_limit.and_then(ByteRate::limit),
            honors_session_limits: self.honors_session_limits,
            max_peers: self.max_peers.filter(|&n| n > 0),
            priority: self.bandwidth_priority,
        }
    }
}

/// A torrent's publication under a mutable link (BEP 46): the signing key's name (`keys/<key>.key`),
/// the salt, and the sequence number it was published at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publication {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    pub seq: i64,
}

/// The mutable link (BEP 46) a torrent was started from, and the sequence number of the
/// publication that pointed at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Following {
    pub link: String,
    pub seq: i64,
}

/// The watch folder's record of where a torrent came from and how that entry looked when it was
/// turned into a torrent, so a restart recognises it unchanged without hashing it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSource {
    /// The file, folder or .torrent in the watch folder (relative to this file's folder when below it).
    pub entry: PathBuf,
    /// Total bytes of the entry's files.
    pub size: u64,
    /// Number of files (a single file counts one).
    pub files: u64,
    /// Newest modification or status-change time in the entry, RFC 3339 with nanoseconds.
    pub changed: String,
}

/// How many labels one torrent may have, and how long one may be (in characters).
pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_CHARS: usize = 128;

/// The largest peer limit a torrent may be given (by the RPC, a script, `b-limit`): Transmission's
/// too, whose limits are 16-bit.
pub const MAX_PEER_LIMIT: u64 = 65_535;

/// `labels` as a torrent keeps them: each trimmed, none empty, none with a comma (Transmission's
/// clients join labels with commas) or a control character, none longer than [`MAX_LABEL_CHARS`],
/// at most [`MAX_LABELS`]; a label given twice is kept once, in the order first given.
pub fn checked_labels<S: AsRef<str>>(
    labels: impl IntoIterator<Item = S>,
) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for l in labels {
        let l = l.as_ref().trim();
        if l.is_empty() {
            return Err("a label cannot be empty".into());
        }
        if l.contains(',') {
            return Err(format!("label {l:?}: a label cannot hold a comma"));
        }
        if l.chars().any(char::is_control) {
            return Err(format!(
                "label {l:?}: a label cannot hold a control character"
            ));
        }
        if l.chars().count() > MAX_LABEL_CHARS {
            return Err(format!(
                "label {:?}...: a label is at most {MAX_LABEL_CHARS} characters",
                l.chars().take(20).collect::<String>()
            ));
        }
        if !out.iter().any(|x| x == l) {
            out.push(l.to_string());
        }
        if out.len() > MAX_LABELS {
            return Err(format!("a torrent has at most {MAX_LABELS} labels"));
        }
    }
    Ok(out)
}

fn default_state() -> String {
    "stopped".into()
}

impl ManagedTorrent {
    /// An entry that says only what the torrent is, where its files are and what it is doing;
    /// everything else is as for a torrent just registered (no meta, labels, watch record, file
    /// choice, limits or goals; `added` is set when it is upserted).
    pub fn new(
        name: impl Into<String>,
        info_hash: &InfoHash,
        file: impl Into<PathBuf>,
        data: impl Into<PathBuf>,
        state: impl Into<String>,
        origin: Origin,
    ) -> ManagedTorrent {
        ManagedTorrent {
            name: name.into(),
            info_hash: info_hash.to_hex(),
            file: file.into(),
            data: data.into(),
            complete_dir: None,
            state: state.into(),
            added: String::new(),
            origin,
            meta: BTreeMap::new(),
            labels: Vec::new(),
            group: None,
            watch: None,
            publish: None,
            follow: None,
            files: FileChoice::default(),
            limits: EntryLimits::default(),
            goals: SeedGoals::default(),
        }
    }

    pub fn hash(&self) -> Option<InfoHash> {
        InfoHash::from_hex(&self.info_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_kept_once_and_refused_when_malformed() {
        assert_eq!(
            checked_labels([" tv", "hd ", "tv", "été 2026"]).unwrap(),
            ["tv", "hd", "été 2026"]
        );
        assert!(checked_labels(Vec::<String>::new()).unwrap().is_empty());
        for (bad, why) in [
            (vec!["a,b".to_string()], "comma"),
            (vec![" ".into()], "empty"),
            (vec!["a\tb".into()], "control"),
            (vec!["é".repeat(MAX_LABEL_CHARS + 1)], "at most"),
            ((0..=MAX_LABELS).map(|i| i.to_string()).collect(), "at most"),
        ] {
            let e = checked_labels(&bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        assert_eq!(
            checked_labels(["é".repeat(MAX_LABEL_CHARS)]).unwrap()[0]
                .chars()
                .count(),
            MAX_LABEL_CHARS
        );
    }

    #[test]
    fn labels_persist_and_survive_re_registering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let ih = "cd".repeat(20);
        std::fs::write(
            &path,
            format!(
                "[[torrent]]\nname = \"x\"\ninfo_hash = \"{ih}\"\nfile = \"x.torrent\"\ndata = \"out\"\n\
                 labels = [\"tv\", \"hd\"]\n"
            ),
        )
        .unwrap();
        let service = crate::torrents::Torrents::open(&path);
        assert_eq!(service.config().unwrap().torrents[0].labels, ["tv", "hd"]);
        service
            .update(|cfg| {
                let mut t = cfg.torrents[0].clone();
                t.labels.clear();
                t.state = "paused".into();
                cfg.upsert(t);
                Ok(())
            })
            .unwrap();
        assert_eq!(service.config().unwrap().torrents[0].labels, ["tv", "hd"]);
        service
            .update(|cfg| {
                cfg.torrents[0].labels.clear();
                Ok(())
            })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("labels"), "{text}");
    }

    #[test]
    fn limits_load_persist_and_leave_the_file_when_lifted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let ih = "ab".repeat(20);
        std::fs::write(
            &path,
            format!(
                "[[torrent]]\nname = \"x\"\ninfo_hash = \"{ih}\"\nfile = \"x.torrent\"\ndata = \"out\"\n\
                 download_limit = \"500K\"\nupload_limit = 30000\nhonors_session_limits = false\nmax_peers = 12\n\
                 bandwidth_priority = \"high\"\n"
            ),
        )
        .unwrap();
        let service = crate::torrents::Torrents::open(&path);
        let cfg = service.config().unwrap();
        let want = TorrentLimits {
            upload: Some(30_000),
            download: Some(500 * 1024),
            honors_session_limits: false,
            max_peers: Some(12),
            priority: Priority::High,
        };
        assert_eq!(cfg.torrents[0].limits.engine(), want);
        // Re-registering the torrent (an entry without limits) keeps them.
        service
            .update(|cfg| {
                let mut t = cfg.torrents[0].clone();
                t.limits = EntryLimits::default();
                t.state = "paused".into();
                cfg.upsert(t);
                Ok(())
            })
            .unwrap();
        let cfg = crate::torrents::Torrents::open(&path).config().unwrap();
        assert_eq!(cfg.torrents[0].limits.engine(), want);
        service
            .update(|cfg| {
                cfg.torrents[0].limits = TorrentLimits {
                    upload: Some(0),
                    ..TorrentLimits::default()
                }
                .into();
                Ok(())
            })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("_limit"), "{text}");
        assert!(!text.contains("priority"), "{text}");
        let cfg = crate::torrents::Torrents::open(&path).config().unwrap();
        assert_eq!(cfg.torrents[0].limits.engine(), TorrentLimits::default());
    }

    #[test]
    fn seed_goals_load_and_are_written_only_when_not_the_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        let ih = "cd".repeat(20);
        let entry = format!(
            "[[torrent]]\nname = \"x\"\ninfo_hash = \"{ih}\"\nfile = \"x.torrent\"\ndata = \"out\"\n"
        );
        std::fs::write(
            &path,
            format!("{entry}seed_ratio_mode = \"single\"\nseed_ratio_limit = 0.5\nseed_idle_mode = \"unlimited\"\nfinished = true\n"),
        )
        .unwrap();
        let service = crate::torrents::Torrents::open(&path);
        let g = service.config().unwrap().torrents[0].goals;
        assert_eq!(g.ratio(Some(2.0)), Some(0.5));
        assert_eq!(g.idle_minutes(Some(3)), None);
        assert!(g.finished);
        assert_eq!(SeedGoals::default().ratio(Some(2.0)), Some(2.0));
        service
            .update(|cfg| {
                cfg.torrents[0].goals = SeedGoals::default();
                Ok(())
            })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("seed_") && !text.contains("finished"),
            "{text}"
        );
        std::fs::write(&path, format!("{entry}seed_ratio_mode = \"sometimes\"\n")).unwrap();
        let e = crate::torrents::Torrents::open(&path).config().unwrap_err();
        assert!(format!("{e:#}").contains("sometimes"), "{e:#}");
    }
}
