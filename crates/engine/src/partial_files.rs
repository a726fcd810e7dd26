//! Files named `<name>.part` until they are complete (Transmission's `rename-partial-files`,
//! [`SessionConfig::rename_partial_files`](super::SessionConfig::rename_partial_files)): which files
//! are complete, and when their names are brought in line with that. The storage keeps the names
//! and does the renames ([`Storage::name_files`](super::storage::Storage::name_files)); this module
//! says when:
//!
//! - after a data check (the torrent's first, a re-check, a relocation): every file takes the name
//!   its state calls for;
//! - when a verified piece is written: the files it completes take their own names before its
//!   `have` is logged, so the torrent's completion, and whatever follows it (a move to the complete
//!   folder, the program run for completed downloads), finds them under those names; at the same
//!   moment those the torrent records a modification time for take it (`FileEntry::mtime`: a
//!   complete file is written no more, so the time stays);
//! - when the session's setting changes ([`Session::set_rename_partial_files`](super::Session::set_rename_partial_files)).
//!
//! A file is complete when every piece it overlaps is had; a zero-length file always is. Only
//! files created by a download take the partial name: a file under its own name keeps it whatever
//! its state (the user's files seeded where they are, one that a withdrawn piece made incomplete
//! again, those written while the setting was off). Renames happen outside the core lock.

use super::picker::PieceState;
use super::torrent::{Core, Torrent};
use btorrent_proto::wire::Bitfield;
use parking_lot::MutexGuard;

/// Whether every piece file `f` overlaps is set in `have` (a zero-length file overlaps none).
fn complete(t: &Torrent, have: &Bitfield, f: usize) -> bool {
    have.all_in(t.meta.info.file_pieces(f))
}

/// Names every file of `t` for its state now (after a check, or a change of the setting).
/// Blocking: call it off the async tasks or where a few renames are acceptable.
pub(crate) fn name_all(t: &Torrent) {
    let have = t.core.lock().picker.have().clone();
    let files = 0..t.meta.info.files.len();
    let renamed = t.storage.name_files(files, |f| complete(t, &have, f));
    if renamed > 0 {
        tracing::debug!(torrent = %t.meta.info.name, renamed, "files named for their state");
    }
}

/// After piece `index` became `Have` (under `c`): gives the files under partial names it completed
/// their own, and those it completed that the torrent records a time for that time
/// ([`Storage::give_times`](super::storage::Storage::give_times)), leaving the lock for the renames
/// and times and taking it again (only then). Returns the guard, held.
pub(crate) fn piece_had<'a>(
    t: &'a Torrent,
    c: MutexGuard<'a, Core>,
    index: u32,
) -> MutexGuard<'a, Core> {
    debug_assert_eq!(c.picker.state(index), PieceState::Have);
    let done: Vec<usize> = t
        .storage
        .files_of_piece(index)
        .filter(|&f| {
            let timed = t.meta.info.files[f].mtime.is_some();
            (timed || t.storage.is_partial(f)) && complete(t, c.picker.have(), f)
        })
        .collect();
    if done.is_empty() {
        return c;
    }
    drop(c);
    t.storage.name_files(done.iter().copied(), |_| true);
    t.storage.give_times(done);
    t.core.lock()
}
