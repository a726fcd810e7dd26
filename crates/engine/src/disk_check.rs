//! Data on disk that stops matching its hashes while the torrent runs (a flipped bit, a file edited
//! behind our back with its mtime put back): this module owns finding it and taking it back.
//!
//! - **Hash on read for upload.** Before the sender task sends blocks of a piece, the piece is hashed
//!   whole from disk (`verify_for_upload`, on the blocking pool with the blocks' read), unless it
//!   carries a fresh *verified mark*: one taken less than `SessionConfig::upload_verify_ttl` ago while
//!   every file the piece touches still has the size and mtime it had then (or the ones our own last
//!   write gave it). So a piece is hashed once per TTL however many blocks and peers read it, and a
//!   file changed on disk loses its marks at once. A piece downloaded in this session is marked when
//!   the disk writer has written it (`mark_written`: hashed good in memory, then written), so a
//!   leecher does not read back and hash again what it passes on to the swarm. The start-up check
//!   sets no mark: the first upload of each piece found on disk hashes it. Two connections reading the same unmarked piece at the same moment may
//!   both hash it; nothing worse.
//! - **Withdrawal** (`withdraw`): a piece that fails goes back to `Missing` in the picker, leaves our
//!   `have` bitfield (and the resume data), is counted in `TorrentStats::pieces_withdrawn` and
//!   reported by a [`Event::Warning`] naming the piece and its files; a seeding torrent goes back to
//!   `Downloading` and fetches it again. Each connection is told (`peer::Cmds::withdrawn`): it drops
//!   the queued requests for the piece, rejecting them to a peer with the fast extension. A peer
//!   that speaks `lt_donthave` (BEP 54, the wire's one "un-have") is sent it and stays. Without it
//!   a peer keeps believing we have the piece, so one that lacks it and may ask for it (it is interested in us, or has no fast extension, so its requests could only go
//!   unanswered) is disconnected: a reject does not stop a peer that believes we have the piece from
//!   asking again at once, in a loop. When it reconnects it gets our current bitfield. Peers that have
//!   the piece keep their connection (we may fetch it from them).
//! - **Data gone** (every file of the torrent missing when a read for upload fails: a disk
//!   unmounted, the folder moved): the torrent fails with `EngineError::DataMissing` instead of
//!   withdrawing piece after piece and downloading it all again into the empty place; a resume or
//!   a relocation takes it up.
//! - **Re-check** (`recheck`, [`TorrentHandle::check`](super::TorrentHandle::check)): hashes every piece on disk, ignoring resume
//!   data and marks, withdraws the bad pieces we had, takes the good ones we lacked, and reports files
//!   longer than the torrent says.
//!
//! The marks' mutex and the buffer pool's are leaf locks.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::storage::FileStamp;
use super::torrent::Torrent;
use super::Event;
use btorrent_proto::multi_sha1::{CHUNK, LANES};

/// A piece hashed good from disk, and what its files looked like just before.
struct Mark {
    at: Instant,
    stamps: Vec<(usize, Option<FileStamp>)>,
}

type HashBufs = Box<[Vec<u8>; LANES]>;

/// The verified marks of a torrent's pieces, and hash buffers to reuse.
pub(crate) struct UploadMarks {
    marks: Mutex<Vec<Option<Mark>>>,
    bufs: Mutex<Vec<HashBufs>>,
    ttl: Duration,
}

impl UploadMarks {
    pub fn new(pieces: usize, ttl: Duration) -> Self {
        UploadMarks {
            marks: Mutex::new((0..pieces).map(|_| None).collect()),
            bufs: Mutex::new(Vec::new()),
            ttl,
        }
    }

    pub(crate) fn clear(&self, index: u32) {
        self.marks.lock()[index as usize] = None;
    }
}

/// The stamps of the files piece `index` touches, now.
fn stamps_of(t: &Torrent, index: u32) -> Vec<(usize, Option<FileStamp>)> {
    t.storage
        .files_of_piece(index)
        .map(|f| (f, t.storage.stamp(f)))
        .collect()
}

/// Whether piece `index` has a fresh verified mark whose files are unchanged.
fn marked(t: &Torrent, index: u32) -> bool {
    let stamps = {
        let marks = t.upload_marks.marks.lock();
        match &marks[index as usize] {
            Some(m) if m.at.elapsed() < t.upload_marks.ttl => m.stamps.clone(),
            _ => return false,
        }
    };
    stamps
        .iter()
        .all(|&(f, then)| t.storage.stamp_explained(f, then, t.storage.stamp(f)))
}

/// Hashes `pieces` from disk (whole pieces in lockstep where it can); returns the good ones and marks
/// them verified with the stamps their files had before the read.
fn hash_and_mark(t: &Torrent, pieces: &[u32]) -> Vec<u32> {
    let before: Vec<_> = pieces.iter().map(|&i| stamps_of(t, i)).collect();
    let mut bufs = t.upload_marks.bufs.lock().pop().unwrap_or_else(|| {
        let chunk = CHUNK.min(t.geo.piece_length as usize);
        Box::new(std::array::from_fn(|_| vec![0u8; chunk]))
    });
    let mut good = Vec::new();
    for group in pieces.chunks(LANES) {
        good.extend(super::resume::verified(t, group, &mut bufs));
    }
    t.upload_marks.bufs.lock().push(bufs);
    let now = Instant::now();
    let mut marks = t.upload_marks.marks.lock();
    for (&i, stamps) in pieces.iter().zip(before) {
        marks[i as usize] = good.contains(&i).then_some(Mark { at: now, stamps });
    }
    good
}

/// Marks piece `index` verified now: its data was hashed good in memory and has just been written
/// (by the disk writer, after the write), so its first upload need not read it back to hash it again.
pub(crate) fn mark_written(t: &Torrent, index: u32) {
    let stamps = stamps_of(t, index);
    t.upload_marks.marks.lock()[index as usize] = Some(Mark {
        at: Instant::now(),
        stamps,
    });
}

/// Makes sure the `pieces` about to be uploaded still match their hashes (blocking): hashes those
/// without a fresh mark and withdraws the bad ones, which it returns (their blocks must not be sent).
pub(crate) fn verify_for_upload(t: &Torrent, pieces: &[u32]) -> Vec<u32> {
    let unmarked: Vec<u32> = pieces.iter().copied().filter(|&i| !marked(t, i)).collect();
    if unmarked.is_empty() {
        return Vec::new();
    }
    let good = hash_and_mark(t, &unmarked);
    let bad: Vec<u32> = unmarked.into_iter().filter(|i| !good.contains(i)).collect();
    if !bad.is_empty() && t.storage.none_present() {
        // Not bad data: no data at all (a disk unmounted, the folder moved). Withdrawing would
        // have the torrent download it all again into the empty place.
        t.fail(crate::EngineError::DataMissing {
            path: t.storage.top_path(),
        });
        return bad;
    }
    for &i in &bad {
        withdraw(t, i, "read for upload");
    }
    bad
}

/// Takes back piece `index`, whose data on disk failed its hash (see the module docs). `when` says
/// how it was found. Returns false when we did not have the piece.
pub(crate) fn withdraw(t: &Torrent, index: u32, when: &str) -> bool {
    t.upload_marks.clear(index);
    t.hot.forget(index);
    let peers = {
        let mut c = t.core.lock();
        if !c.picker.withdraw(index) {
            return false;
        }
        if c.lifecycle.reopened() {
            t.repairing.store(true, Ordering::Relaxed);
        }
        c.resume_dirty = true;
        let peers: Vec<_> = c.peers.values().cloned().collect();
        for p in &peers {
            p.cmds.lock().withdrawn.push(index);
        }
        peers
    };
    t.pieces_withdrawn.fetch_add(1, Ordering::Relaxed);
    for p in &peers {
        p.notify.notify_one();
    }
    t.not_complete();
    let files: Vec<String> = t
        .storage
        .files_of_piece(index)
        .map(|f| t.meta.info.files[f].path.display().to_string())
        .collect();
    let message = format!(
        "piece {index} ({}) failed its hash check when {when}: withdrawn, downloading it again",
        files.join(", ")
    );
    tracing::warn!(torrent = %t.meta.info.name, "{message}");
    t.emit(Event::Warning {
        info_hash: t.info_hash(),
        name: t.meta.info.name.clone(),
        message,
    });
    t.wake.notify_one();
    true
}

/// What a re-check found.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckReport {
    pub pieces_total: usize,
    /// Pieces whose data on disk matches their hash.
    pub good: usize,
    /// Pieces we had whose data no longer matches: withdrawn, to be downloaded again.
    pub bad: Vec<u32>,
    /// Pieces found good that we did not have (now had).
    pub recovered: usize,
    /// Pieces neither good nor withdrawn: we lacked them and still do (to download).
    pub missing: usize,
    /// Files longer than the torrent says: path in the torrent, bytes too many.
    pub oversized: Vec<(PathBuf, u64)>,
}

/// Warns about files longer than the torrent says (the torrent goes on with the bytes it lists).
pub(crate) fn report_oversized(t: &Torrent, stamps: &[Option<FileStamp>]) -> Vec<(PathBuf, u64)> {
    let long: Vec<(PathBuf, u64)> = t
        .meta
        .info
        .files
        .iter()
        .zip(stamps)
        .filter_map(|(f, st)| {
            let extra = st.as_ref()?.len.checked_sub(f.length).filter(|&x| x > 0)?;
            Some((f.path.clone(), extra))
        })
        .collect();
    for (path, extra) in &long {
        let message = format!(
            "{} is {extra} bytes longer than the torrent says (bytes appended?); the extra bytes are \
             ignored",
            path.display()
        );
        tracing::warn!(torrent = %t.meta.info.name, "{message}");
        t.emit(Event::Warning {
            info_hash: t.info_hash(),
            name: t.meta.info.name.clone(),
            message,
        });
    }
    long
}

/// Hashes every piece on disk, ignoring resume data and marks (blocking), and acts on the result.
pub(crate) fn recheck(t: &Torrent) -> CheckReport {
    recheck_with(t, super::resume::survey_all(t))
}

/// [`recheck`] of what `survey` leaves to hash, the pieces it vouches for taken as good (blocking).
/// Only the pieces hashed now are marked verified.
pub(crate) fn recheck_with(t: &Torrent, mut survey: super::resume::Survey) -> CheckReport {
    let oversized = std::mem::take(&mut survey.oversized);
    let had = t.core.lock().picker.have().clone();
    let hashed: Vec<(u32, _)> = survey
        .to_check
        .iter()
        .map(|&i| (i, stamps_of(t, i)))
        .collect();
    let good = super::resume::hash_check(t, survey);
    let mut report = CheckReport {
        pieces_total: good.len(),
        good: good.count(),
        oversized,
        ..Default::default()
    };
    let now = Instant::now();
    {
        let mut marks = t.upload_marks.marks.lock();
        for (i, mark) in marks.iter_mut().enumerate() {
            if !good.get(i) {
                *mark = None;
            }
        }
        for (i, stamps) in hashed {
            if good.get(i as usize) {
                marks[i as usize] = Some(Mark { at: now, stamps });
            }
        }
    }
    for i in 0..good.len() {
        let index = i as u32;
        if had.get(i) && !good.get(i) {
            if withdraw(t, index, "re-checked") {
                report.bad.push(index);
            }
        } else if !had.get(i) && good.get(i) && adopt(t, index) {
            report.recovered += 1;
        }
    }
    report.missing = report.pieces_total - report.good - report.bad.len();
    super::partial_files::name_all(t);
    report
}

/// Takes a piece a re-check found good on disk while we lacked it (and nobody is fetching it).
fn adopt(t: &Torrent, index: u32) -> bool {
    let mut c = t.core.lock();
    if c.picker.state(index) != super::picker::PieceState::Missing {
        return false;
    }
    c.picker.mark_have(index);
    super::verify::announce_have(t, c, index);
    true
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::{AddOptions, Session, SessionConfig};
    use btorrent_proto::metainfo::{create_torrent, CreateOptions};

    /// Flips a byte of `path` at `at` and sets its mtime to `mtime`.
    fn flip(path: &std::path::Path, at: usize, mtime: SystemTime) {
        let mut data = std::fs::read(path).unwrap();
        data[at] ^= 1;
        std::fs::write(path, data).unwrap();
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(mtime).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_mark_spares_the_hash_until_the_file_changes_behind_our_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        let data: Vec<u8> = (0..4 * 16384u32).map(|i| (i * 31 / 7) as u8).collect();
        std::fs::write(&file, &data).unwrap();
        let opts = CreateOptions {
            piece_length: Some(16384),
            ..Default::default()
        };
        let meta = create_torrent(&file, &opts, &|_, _| {}).unwrap();
        let session = Session::start(SessionConfig::default()).await.unwrap();
        let add = AddOptions {
            data_dir: dir.path().to_path_buf(),
            paused: true,
            trackers: Some(vec![]),
            ..Default::default()
        };
        let h = session.add(meta, add).await.unwrap();
        h.check().await.unwrap();
        let t = h.0.clone();
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();

        // Marked by the check: a byte flipped with the mtime put back goes unseen (within the TTL).
        flip(&file, 10, mtime);
        assert!(verify_for_upload(&t, &[0, 1]).is_empty());
        // Our own write changes the mtime: the marks hold.
        t.storage
            .write_piece(2, &data[2 * 16384..3 * 16384])
            .unwrap();
        assert!(verify_for_upload(&t, &[0]).is_empty());
        // Someone else's change (an mtime not ours): the pieces are hashed again; 0 is good (its byte
        // flipped back), 1 is withdrawn.
        flip(&file, 10, mtime - Duration::from_secs(3600));
        flip(&file, 10 + 16384, mtime - Duration::from_secs(3600));
        assert_eq!(verify_for_upload(&t, &[0, 1, 3]), vec![1]);
        assert!(!t.core.lock().picker.have().get(1));
        assert_eq!(t.pieces_withdrawn.load(Ordering::Relaxed), 1);
        // Without a mark, every read hashes: the rot of piece 3 is found at once.
        flip(&file, 3 * 16384, mtime - Duration::from_secs(3600));
        t.upload_marks.clear(3);
        assert_eq!(verify_for_upload(&t, &[3]), vec![3]);
        session.shutdown(Duration::from_secs(2)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_downloaded_piece_is_marked_once_written_and_uploaded_from_memory() {
        use btorrent_proto::wire::Bitfield;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let data: Vec<u8> = (0..4 * 16384u32).map(|i| (i * 13 / 5) as u8).collect();
        std::fs::write(src.join("f"), &data).unwrap();
        let opts = CreateOptions {
            piece_length: Some(16384),
            ..Default::default()
        };
        let meta = create_torrent(&src.join("f"), &opts, &|_, _| {}).unwrap();
        let dl = dir.path().join("dl");
        let (session, h) = crate::resume::paused(meta, &dl).await;
        let t = h.0.clone();
        // Piece 1 arrives whole from a peer that has only it, and goes through the hash and the write.
        let mut only1 = Bitfield::new(4);
        only1.set(1);
        let (index, buf, contributors) = {
            let mut c = t.core.lock();
            c.picker.add_availability(&only1);
            let mut out = Vec::new();
            assert_eq!(c.picker.pick(7, &only1, 0, 1, &mut out), 1);
            let block = &data[16384..2 * 16384];
            match c.picker.on_block(7, out[0], block) {
                crate::picker::BlockResult::Complete {
                    index,
                    buf,
                    contributors,
                    ..
                } => (index, buf, contributors),
                other => panic!("one block completes the piece: {other:?}"),
            }
        };
        assert_eq!(index, 1);
        crate::verify::spawn(t.clone(), index, buf, contributors);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !t.core.lock().picker.have().get(1) {
            assert!(Instant::now() < deadline, "piece 1 was not written");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Its data rots with the mtime put back: the mark from the write spares the hash (no
        // read-back), as a mark from a disk hash would.
        let file = dl.join("f");
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        flip(&file, 16384 + 10, mtime);
        assert!(verify_for_upload(&t, &[1]).is_empty());
        // And its upload is served from the copy kept in memory (the bytes as verified), not from
        // the disk.
        let (mut out, mut refused) = (Vec::new(), Vec::new());
        let mut batch = vec![btorrent_proto::wire::BlockRef {
            index: 1,
            begin: 0,
            length: 16384,
        }];
        crate::sender::fill(&t, &mut out, &mut batch, &mut refused).unwrap();
        assert!(refused.is_empty());
        assert!(
            out[..16384] == data[16384..2 * 16384],
            "served from the hot copy"
        );
        // Without the mark the same read hashes the piece and finds the rot.
        t.upload_marks.clear(1);
        assert_eq!(verify_for_upload(&t, &[1]), vec![1]);
        session.shutdown(Duration::from_secs(2)).await;
    }
}
