//! Choosing files: each file of a torrent has a [`FilePriority`] (skip, low, normal, high), and the
//! picker works on pieces, so this module turns the files' priorities into the pieces' and the
//! pieces we hold back into bytes per file.
//!
//! - A piece's priority is the highest of the files it touches (padding and zero-length files touch
//!   none): a piece that straddles a skipped file and a wanted one is fetched whole, and its bytes of
//!   the skipped file are written there. Such a file is *sparse*: it holds only those boundary bytes
//!   (a hole elsewhere), and a skipped file no wanted piece touches is never created. Nothing is kept
//!   in a side file: the data check finds the boundary pieces where they are after a restart.
//! - "Done" is every wanted piece verified (Transmission's `percentDone`, over its `sizeWhenDone`):
//!   a torrent done with what is wanted is in state `Seeding` (it seeds what it has) and sends
//!   `Completed`/`Seeding` events, whatever it skipped. Wanting a file again puts it back in
//!   `Downloading`.
//! - [`TorrentHandle::files`], [`TorrentHandle::set_file_priorities`] and
//!   [`TorrentHandle::set_sequential`] live here.
//! - The selection is not saved by the engine: the front end passes it in
//!   [`crate::AddOptions::files`] (the app keeps it in torrents.toml).

use std::path::PathBuf;

use btorrent_proto::metainfo::Info;
use btorrent_proto::wire::Bitfield;

use super::torrent::{Torrent, TorrentHandle};

/// How much a file is wanted. The order is the picker's: `High` pieces first, `Skip` never.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum FilePriority {
    /// Not wanted: none of its pieces is fetched unless a wanted file shares it.
    Skip,
    Low,
    #[default]
    Normal,
    High,
}

impl FilePriority {
    /// The name scripts and the RPC use: `skip`, `low`, `normal`, `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            FilePriority::Skip => "skip",
            FilePriority::Low => "low",
            FilePriority::Normal => "normal",
            FilePriority::High => "high",
        }
    }

    /// Parses [`FilePriority::as_str`]'s names.
    pub fn parse(s: &str) -> Option<FilePriority> {
        Some(match s {
            "skip" => FilePriority::Skip,
            "low" => FilePriority::Low,
            "normal" => FilePriority::Normal,
            "high" => FilePriority::High,
            _ => return None,
        })
    }

    pub fn wanted(self) -> bool {
        self != FilePriority::Skip
    }

    /// The picker's rank: 0 = not wanted, 3 = high.
    pub(crate) fn rank(self) -> u8 {
        self as u8
    }
}

impl std::fmt::Display for FilePriority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file of a torrent as the engine sees it now (part of [`super::TorrentStats`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStatus {
    /// Path in the torrent (`name/a/b` for a multi-file torrent).
    pub path: std::path::PathBuf,
    pub length: u64,
    /// Bytes of it in verified pieces.
    pub done: u64,
    pub priority: FilePriority,
    /// A BEP 47 padding file (never written; always skipped).
    #[serde(default)]
    pub padding: bool,
}

/// Every file of `info` with its path on disk below the data folder (`paths`: the torrent's, or
/// what it was renamed to), its priority and the bytes of it in the pieces `have` holds.
pub(crate) fn file_list(
    info: &Info,
    paths: Vec<PathBuf>,
    priorities: &[FilePriority],
    have: &Bitfield,
) -> Vec<FileStatus> {
    paths
        .into_iter()
        .enumerate()
        .map(|(f, path)| FileStatus {
            path,
            length: info.files[f].length,
            done: file_done(info, f, have),
            priority: priorities[f],
            padding: info.files[f].padding,
        })
        .collect()
}

/// Each piece's rank ([`FilePriority::rank`]): the highest of the files it touches.
pub(crate) fn piece_ranks(info: &Info, files: &[FilePriority]) -> Vec<u8> {
    let mut ranks = vec![0u8; info.piece_count()];
    for (f, p) in files.iter().enumerate() {
        if info.files[f].padding {
            continue;
        }
        for r in &mut ranks[info.file_pieces(f)] {
            *r = (*r).max(p.rank());
        }
    }
    ranks
}

/// Bytes of file `f` inside the pieces set in `have`.
pub(crate) fn file_done(info: &Info, f: usize, have: &Bitfield) -> u64 {
    let e = &info.files[f];
    let (start, end) = (e.offset, e.offset + e.length);
    info.file_pieces(f)
        .filter(|&i| have.get(i))
        .map(|i| {
            let ps = i as u64 * info.piece_length;
            let pe = ps + info.piece_len(i);
            end.min(pe) - start.max(ps)
        })
        .sum()
}

/// Checks a selection given for a torrent: one priority per file.
pub(crate) fn check_len(info: &Info, files: &[FilePriority]) -> crate::Result<()> {
    if files.len() != info.files.len() {
        return Err(crate::EngineError::SelectionLength {
            name: info.name.clone(),
            files: info.files.len(),
            given: files.len(),
        });
    }
    Ok(())
}

impl TorrentHandle {
    /// Every file with its priority and the bytes of it verified, in the torrent's order.
    pub fn files(&self) -> Vec<FileStatus> {
        let c = self.0.core.lock();
        file_list(
            &self.0.meta.info,
            self.0.storage.paths(),
            &c.files,
            c.picker.have(),
        )
    }

    /// Changes the priority of files (by index) while the torrent runs: pieces of newly skipped
    /// files are no longer started, newly wanted ones are fetched. A torrent done with what it wanted
    /// goes back to `Downloading` when a file it lacks is wanted again, and one left with only
    /// skipped pieces to fetch is done (`Completed`, `Seeding`).
    pub fn set_file_priorities(&self, changes: &[(usize, FilePriority)]) -> crate::Result<()> {
        let n = self.0.meta.info.files.len();
        if let Some(&(bad, _)) = changes.iter().find(|(f, _)| *f >= n) {
            return Err(crate::EngineError::NoSuchFile {
                name: self.name().to_string(),
                index: bad,
                files: n,
            });
        }
        let mut c = self.0.core.lock();
        for &(f, p) in changes {
            c.files[f] = p;
        }
        let ranks = piece_ranks(&self.0.meta.info, &c.files);
        c.picker.set_ranks(ranks);
        let done = c.picker.is_done();
        let reopened = !done && c.lifecycle.reopened();
        if reopened {
            c.completion_pending = false;
            c.known.all_due();
        } else if done && c.lifecycle.completed() {
            c.completion_pending = true;
        }
        drop(c);
        if reopened {
            self.0.not_complete();
        }
        // Every connection looks at its interest and requests again.
        self.0.have_tx.send_modify(|_| {});
        self.0.wake.notify_one();
        Ok(())
    }

    /// Fetches new pieces in order (for streaming) rather than rarest first; settable while it runs.
    pub fn set_sequential(&self, on: bool) {
        self.0.core.lock().picker.set_sequential(on);
        self.0.have_tx.send_modify(|_| {});
    }

    /// Starts the sequence of sequential mode at piece `from`: the pieces from it to the last
    /// first, then those before it (kept while sequential mode is off). A piece past the
    /// torrent's is refused.
    pub fn set_sequential_from(&self, from: u32) -> crate::Result<()> {
        let pieces = self.0.meta.info.piece_count() as u32;
        if from >= pieces {
            return Err(crate::EngineError::NoSuchPiece {
                name: self.0.meta.info.name.clone(),
                index: from,
                pieces,
            });
        }
        self.0.core.lock().picker.set_sequential_from(from);
        self.0.have_tx.send_modify(|_| {});
        Ok(())
    }
}

/// Creates the zero-length files that are wanted (they hold no piece, so no write creates them).
pub(crate) fn create_wanted_empty_files(t: &Torrent) -> std::io::Result<()> {
    let files = t.core.lock().files.clone();
    t.storage.create_empty_files(|f| files[f].wanted())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(lens: &[u64], plen: u64) -> Info {
        let files = lens
            .iter()
            .enumerate()
            .map(|(i, &len)| (format!("t/f{i}").into(), len, false));
        Info::laid_out("t", plen, files)
    }

    #[test]
    fn a_straddling_piece_takes_the_highest_priority() {
        use FilePriority::*;
        // f0: pieces 0-1 (ends inside 1), f1: inside 1, f2 empty, f3: pieces 1-3.
        let i = info(&[150, 20, 0, 230], 100);
        assert_eq!(piece_ranks(&i, &[Skip, Skip, High, Low]), [0, 1, 1, 1]);
        assert_eq!(piece_ranks(&i, &[High, Skip, Skip, Skip]), [3, 3, 0, 0]);
        let mut have = Bitfield::new(4);
        have.set(1);
        have.set(3);
        assert_eq!(
            (0..4).map(|f| file_done(&i, f, &have)).collect::<Vec<_>>(),
            [50, 20, 0, 30 + 100]
        );
    }
}
