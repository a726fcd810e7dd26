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

pub use add::{add, keep_torrent_file, load_source, Adding, Handoff, REMOTE_METADATA_TIMEOUT};
pub use data::{move_to, record_data_dir, relocate, remove, rename_path, Deleted};
pub use files::{choose_files, record_file_choice, OrderChange};
pub use settings::{live_trackers, set_goals, set_group, set_labels, set_limits, set_trackers};
pub use state::{
    dequeue, enqueue, finish, pause, pause_as, queue_move, resume, resume_as, resume_now,
    QueueMove, QUEUED,
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
    mut f: impl FnMut(&mut ManagedTorrent) -> Result<()>,
) -> Result<()> {
    torrents.update(|cfg| {
        let e = cfg
            .find_mut(ih)
            .ok_or_else(|| anyhow!("{name} is not a managed torrent any more"))?;
        f(e)
    })
}

/// [`update_entry`] for what a hand edit of the entry's `state` to `edited` set off (`None`: a
/// command, always recorded): `f` runs only while the entry still says `edited`. A user who
/// edited the state again meanwhile (paused, then stopped at once) keeps the newer edit, which
/// the next look at the file applies; recording the older one's outcome would undo it.
pub fn update_entry_as(
    torrents: &Torrents,
    ih: &InfoHash,
    name: &str,
    edited: Option<&str>,
    mut f: impl FnMut(&mut ManagedTorrent) -> Result<()>,
) -> Result<()> {
    update_entry(torrents, ih, name, |e| match edited {
        Some(state) if e.state != state => Ok(()),
        _ => f(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a hand edit set off is recorded only while the entry still says that edit: an edit
    /// made again meanwhile is kept; a command's record always goes in.
    #[test]
    fn a_newer_hand_edit_of_the_state_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let ih = InfoHash([7; 20]);
        let torrents = crate::torrents::with_one_entry(dir.path(), ih, "stopped");
        let state = || torrents.fresh().unwrap().find(&ih).unwrap().state.clone();
        // The user wrote "paused", then "stopped" before the pause was recorded.
        let record_pause = |e: &mut ManagedTorrent| {
            e.state = "paused".into();
            Ok(())
        };
        update_entry_as(&torrents, &ih, "share", Some("paused"), record_pause).unwrap();
        assert_eq!(state(), "stopped");
        // The file still says what the edit wrote: recorded.
        update_entry(&torrents, &ih, "share", |e| {
            e.state = "paused".into();
            Ok(())
        })
        .unwrap();
        let record_seeding = |e: &mut ManagedTorrent| {
            e.state = "seeding".into();
            Ok(())
        };
        update_entry_as(&torrents, &ih, "share", Some("paused"), record_seeding).unwrap();
        assert_eq!(state(), "seeding");
        // A command records whatever the entry says.
        update_entry_as(&torrents, &ih, "share", None, record_pause).unwrap();
        assert_eq!(state(), "paused");
    }
}
