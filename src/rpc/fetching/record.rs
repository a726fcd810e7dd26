//! What is kept of a magnet link being fetched: `<torrents_dir>/adding/<info-hash>.json` (the
//! link, the `torrent-add` request, when it was added, what `torrent-set` asked meanwhile), so a
//! daemon that restarts goes on fetching.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::super::torrents::bool_arg;
use crate::types::InfoHash;

/// The folder of `torrents_dir` that records the entries.
pub const ADDING_DIR: &str = "adding";

/// What an entry's file keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    pub(super) link: String,
    /// The `torrent-add` request's arguments but `filename`, its `download-dir` made absolute,
    /// and `paused` as the user last set it (`torrent-stop`, `torrent-start`).
    pub(super) request: Map<String, Value>,
    /// When it was added, in Unix seconds.
    pub(super) added: i64,
    /// What `torrent-set` asked of it meanwhile (later keys over earlier ones), applied once it
    /// runs.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub(super) set: Map<String, Value>,
}

impl Record {
    pub(super) fn paused(&self) -> bool {
        bool_arg(&self.request, "paused").unwrap_or(false)
    }

    pub(super) fn save(&self, file: &Path) -> anyhow::Result<()> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = serde_json::to_vec_pretty(self).expect("a record is JSON");
        crate::fsutil::write_atomic(file, &text)
            .with_context(|| format!("cannot write {}", file.display()))
    }
}

/// Where the entry of `ih` is recorded.
pub(super) fn record_file(torrents_dir: &Path, ih: &InfoHash) -> PathBuf {
    torrents_dir
        .join(ADDING_DIR)
        .join(format!("{}.json", ih.to_hex()))
}
