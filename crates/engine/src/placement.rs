//! Where a torrent's files are, changed while it runs: moving the data to another folder
//! ([`TorrentHandle::move_to`]), pointing the torrent at a folder its files were put in by other
//! means ([`TorrentHandle::relocate`]), and renaming a file or folder of it
//! ([`TorrentHandle::rename_path`]).
//!
//! Each holds the files the same way: after the check made when the torrent was added, it pauses
//! the torrent and sets `Core::moving` (one change at a time; a second is refused with
//! [`EngineError::MoveUnderWay`]), waits until no disk job runs, changes the storage, and on its end
//! (done, failed or dropped) resumes the torrent or leaves it paused, as `Core::moving` says by
//! then: a `pause()` or `resume()` asked meanwhile changes only that. A move or relocation done
//! says so ([`Event::Moved`](super::Event::Moved)), after the resume data records the new folder.

use std::path::PathBuf;
use std::sync::Arc;

use super::storage::Storage;
use super::torrent::TorrentHandle;
use super::{EngineError, Result};

/// What a torrent does once the move of its data ends ([`Core::moving`](super::torrent::Core::moving)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterMove {
    Resume,
    StayPaused,
}

impl TorrentHandle {
    /// Moves the data to `new_data_dir` and goes on from there. Connections are closed during the move
    /// and re-made after it; a pause or resume asked meanwhile takes effect when it ends (see
    /// `Core::moving`). Waits for the check made when the torrent was added to end first (a failed
    /// torrent's data moves too); fails at once if another move of this torrent is under way.
    pub async fn move_to(&self, new_data_dir: PathBuf) -> Result<()> {
        let dest = new_data_dir.clone();
        let r = self.on_files_held(move |s| s.move_to(&dest)).await?;
        if let Err(e) = r {
            return Err(EngineError::Move {
                name: self.name().to_string(),
                to: new_data_dir,
                error: Arc::new(e),
            });
        }
        super::resume::save(&self.0).await;
        self.moved(new_data_dir, "its files moved there".into());
        Ok(())
    }

    /// Says the data folder changed to `data_dir`.
    fn moved(&self, data_dir: PathBuf, message: String) {
        self.0.emit(super::Event::Moved {
            info_hash: self.info_hash(),
            name: self.name().to_string(),
            data_dir,
            message,
        });
    }

    /// Renames `path` (a file of the torrent or a folder holding some, below the data folder, as
    /// [`TorrentStats::files`](super::TorrentStats::files) lists them) to `name` in the same folder:
    /// on disk, if it is there yet, and for the torrent, which reads and writes it there from now on.
    /// The info dictionary, and so the info-hash and what peers see, stay as they were. Connections
    /// are closed meanwhile, as for [`move_to`](Self::move_to), under the same rules. Refused,
    /// changing nothing, when `path` is none of the torrent's, `name` is not a plain file name, or
    /// the new path is taken. Returns every file's path after the rename.
    pub async fn rename_path(&self, path: PathBuf, name: String) -> Result<Vec<PathBuf>> {
        let r = self.on_files_held(move |s| s.rename(&path, &name)).await?;
        if let Err(e) = r {
            return Err(EngineError::BadPath {
                name: self.name().to_string(),
                why: e.to_string(),
            });
        }
        super::resume::save(&self.0).await;
        Ok(self.0.storage.paths())
    }

    /// Points the torrent at `data_dir` without moving anything (its files were put there by other
    /// means, or are to be downloaded there) and checks what is there: pieces we had that are not
    /// there are withdrawn and downloaded again, good ones we lacked are taken. Connections are closed
    /// meanwhile, as for [`move_to`](Self::move_to), under the same rules. A torrent the disk failed
    /// (its data gone from where it was, say) is taken up again afterwards, as a
    /// [`resume`](Self::resume) would; fails if it failed otherwise, or is removed.
    pub async fn relocate(&self, data_dir: PathBuf) -> Result<super::CheckReport> {
        let failed = self.wait_checked_or_disk_failed().await?;
        let report = {
            let _hold = self.hold_for_move()?;
            self.0.wait_disk_idle().await;
            self.0.storage.set_data_dir(data_dir.clone());
            let report = self.recheck().await?;
            super::resume::save(&self.0).await;
            let found = format!(
                "pointed there, {} of {} pieces found",
                report.good, report.pieces_total
            );
            self.moved(data_dir, found);
            report
        };
        if failed {
            self.recover_and_say();
        }
        Ok(report)
    }

    /// Runs `job` on the storage (on the blocking pool) with the files held as for a move: after the
    /// check made when the torrent was added (a failed torrent's files too), with its transfers
    /// paused and no disk job running; the torrent goes on as `Core::moving` says once it is done.
    async fn on_files_held<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Storage) -> T + Send + 'static,
    ) -> Result<T> {
        match self.wait_checked().await {
            Ok(()) | Err(EngineError::TorrentFailed { .. }) => {}
            Err(e) => return Err(e),
        }
        let _hold = self.hold_for_move()?;
        self.0.wait_disk_idle().await;
        let t = self.0.clone();
        tokio::task::spawn_blocking(move || job(&t.storage))
            .await
            .map_err(EngineError::task)
    }

    /// Starts a change of the data folder: pauses the torrent and sets `Core::moving`; the change
    /// ends when the returned guard drops (done, failed or the future dropped), so the torrent is
    /// never left held. Fails if another change is under way.
    fn hold_for_move(&self) -> Result<MoveHold<'_>> {
        {
            let mut c = self.0.core.lock();
            if c.moving.is_some() {
                return Err(EngineError::MoveUnderWay {
                    name: self.name().to_string(),
                });
            }
            c.moving = Some(if c.lifecycle.is_paused() {
                AfterMove::StayPaused
            } else {
                AfterMove::Resume
            });
        }
        let hold = MoveHold(self);
        self.stop_transfers();
        Ok(hold)
    }
}

/// Ends a move of the data when dropped: clears `Core::moving` and resumes the torrent if that
/// is what it says.
struct MoveHold<'a>(&'a TorrentHandle);

impl Drop for MoveHold<'_> {
    fn drop(&mut self) {
        self.0
            .restart_transfers_if(|c| c.moving.take() == Some(AfterMove::Resume));
    }
}
