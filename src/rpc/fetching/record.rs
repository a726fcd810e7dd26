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
    /// The mutable link (BEP 46) `link` was resolved from, which the torrent follows once added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) follow: Option<crate::config::Following>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_followed_link_is_kept_and_older_records_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = record_file(dir.path(), &InfoHash([7; 20]));
        let record = Record {
            link: "magnet:?xt=urn:btih:0707070707070707070707070707070707070707".into(),
            request: Map::new(),
            added: 1,
            set: Map::new(),
            follow: Some(crate::config::Following {
                link: format!("magnet:?xs=urn:btpk:{}", "ab".repeat(32)),
                seq: 9,
            }),
        };
        record.save(&file).unwrap();
        let back: Record = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(back.follow, record.follow);
        // Written before links were followed: no `follow` at all.
        let old = r#"{"link": "magnet:?xt=urn:btih:0707070707070707070707070707070707070707",
            "request": {}, "added": 1}"#;
        let old: Record = serde_json::from_str(old).unwrap();
        assert_eq!(old.follow, None);
    }
}
