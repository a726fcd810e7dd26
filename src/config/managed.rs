//! One `[[torrent]]` entry of `torrents.toml`: a torrent btorrent manages, where it came from, and for
//! torrents the watch folder made, the record of the watched entry ([`WatchSource`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// Set on torrents the watch folder made or added: the watch folder's ledger entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchSource>,
}

/// The watch folder's record of where a torrent came from and how that entry looked when it was
/// turned into a torrent, so a restart recognises it unchanged without hashing it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

fn default_state() -> String {
    "stopped".into()
}

impl ManagedTorrent {
    pub fn hash(&self) -> Option<InfoHash> {
        InfoHash::from_hex(&self.info_hash)
    }
}
