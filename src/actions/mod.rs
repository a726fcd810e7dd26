//! What is done to a managed torrent, whoever asks: the shell's commands (through the script
//! primitives, `script::prims`) and the RPC ([`crate::rpc`]) call these same functions, so
//! the running session and torrents.toml change together and the same way.
//!
//! - [`pause`], [`resume`]: the running torrent, and its `state` in torrents.toml; [`finish`]: a
//!   pause by a seeding goal, which marks the entry `finished`;
//! - [`set_goals`]: its seeding goals, recorded (the [`crate::goals`] task enforces them);
//! - [`remove`]: stops it, optionally deletes its own files, and drops its entry;
//! - [`move_to`]: moves its data (running or not) and records the new folder; [`relocate`]: records
//!   a folder its data was moved to by other means (a running torrent checks it);
//! - [`choose_files`]: file priorities and sequential mode, running and in torrents.toml;
//!   [`rename_path`]: a file or folder of it renamed, on disk and in torrents.toml;
//! - [`set_limits`]: its own speed limits, applied at once and recorded; [`set_trackers`]: its
//!   trackers, written into its .torrent and followed at once;
//! - [`add()`]: registers a torrent in torrents.toml (its .torrent kept in `torrents_dir`) and adds it
//!   to the session.
//!
//! One file for each kind of change: `state` (pause, resume, the queues, finish), `settings`
//! (limits, group, goals, labels, trackers), `data` (remove, move, relocate, rename), `files`
//! (priorities and order) and `add` (adding, the hand-off of a one-shot command, loading what a
//! user names); [`update_entry`], which they share, is here.

mod add;
mod data;
mod files;
mod settings;
mod state;

pub use add::{
    add, keep_torrent_file, load_source, Adding, Handoff, MAX_TORRENT_DOWNLOAD,
    REMOTE_METADATA_TIMEOUT,
};
pub use data::{move_to, relocate, remove, rename_path, Deleted};
pub use files::{choose_files, OrderChange};
pub use settings::{live_trackers, set_goals, set_group, set_labels, set_limits, set_trackers};
pub use state::{
    dequeue, enqueue, finish, pause, queue_move, resume, resume_now, QueueMove, QUEUED,
};

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _, Result};

use crate::config::{Config, FileChoice, ManagedTorrent, Origin, SeedGoals};
use crate::engine::storage::Storage;
use crate::engine::{AddOptions, CheckReport, FilePriority, Session, TorrentHandle, TorrentLimits};
use crate::metainfo::Metainfo;
use crate::script::live::{AfterRemove, LiveTorrents};
use crate::torrents::Torrents;
use crate::types::InfoHash;

/// Changes the torrents.toml entry of `ih` under the file lock.
pub fn update_entry(
    torrents: &Torrents,
    ih: &InfoHash,
    name: &str,
    f: impl FnOnce(&mut ManagedTorrent) -> Result<()>,
) -> Result<()> {
    torrents.update(|cfg| {
        let e = cfg
            .find_mut(ih)
            .ok_or_else(|| anyhow!("{name} is not a managed torrent any more"))?;
        f(e)
    })
}
