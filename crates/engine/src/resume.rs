//! Resume data and the start-up check of existing data.
//!
//! The resume file (`<resume_dir>/<info-hash>.resume`, JSON) lists the verified pieces and, for every
//! file, the size and modification time it had when the list was taken. It is saved (atomically)
//! every `resume_interval` while pieces arrive, on completion, on move, pause and stop, and at least
//! every [`super::clock::KEEP_EVERY`] while the torrent runs. It also keeps the torrent's clock
//! ([`super::clock::Kept`]: when its download completed, how long it downloaded and seeded).
//!
//! On add, a piece is trusted without reading it only if the resume file lists it and every file it
//! touches still has the recorded size and mtime. Any other piece whose files are all present and long
//! enough is hash-checked, in parallel on every core and several pieces at once per core
//! ([`btorrent_proto::multi_sha1`]); a hybrid's against its v2 hash as well when it has its piece
//! layers, and a piece whose two hashes disagree fails the torrent. So after a crash (SIGKILL) the
//! files written since the last save have a newer mtime and their pieces are re-checked: every
//! piece that reached the disk is kept, and only pieces that were in flight are lost. A piece is only ever listed after it was
//! written, so the file never claims data that is not on disk.

use std::convert::Infallible;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::storage::FileStamp;
use super::torrent::Torrent;
use btorrent_proto::metainfo::v2::{BlockHasher, PieceHash};
use btorrent_proto::multi_sha1::{digest_chunked, digest_lanes_chunked, lanes_fit, CHUNK, LANES};
use btorrent_proto::wire::Bitfield;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct ResumeFile {
    info_hash: String,
    /// The bitfield of verified pieces, hex.
    pieces: String,
    files: Vec<Option<FileStamp>>,
    /// The torrent's clock ([`super::clock`]); absent in files written before it was kept.
    #[serde(default)]
    clock: super::clock::Kept,
    /// The folder the list is of (absolute); absent in files written before it was kept.
    #[serde(default)]
    data_dir: Option<PathBuf>,
}

fn path(t: &Torrent) -> Option<PathBuf> {
    let dir = t.ctx.cfg.resume_dir.as_ref()?;
    Some(file_in(dir, &t.info_hash()))
}

/// The resume file of torrent `ih` in the folder `dir`.
pub fn file_in(dir: &std::path::Path, ih: &btorrent_proto::types::InfoHash) -> PathBuf {
    dir.join(format!("{}.resume", ih.to_hex()))
}

fn load(t: &Torrent) -> Option<ResumeFile> {
    let bytes = std::fs::read(path(t)?).ok()?;
    let r: ResumeFile = serde_json::from_slice(&bytes).ok()?;
    (r.info_hash == t.info_hash().to_hex() && r.files.len() == t.meta.info.files.len()).then_some(r)
}

/// The verified pieces and file stamps a resume file lists.
fn pieces_of(t: &Torrent, r: ResumeFile) -> Option<(Bitfield, Vec<Option<FileStamp>>)> {
    let raw = hex::decode(&r.pieces).ok()?;
    let bits = Bitfield::from_bytes(&raw, t.geo.piece_count as usize).ok()?;
    Some((bits, r.files))
}

/// The torrent's data folder, absolute (as resume files name it).
fn absolute_data_dir(t: &Torrent) -> PathBuf {
    let dir = t.storage.data_dir();
    std::path::absolute(&dir).unwrap_or(dir)
}

/// Whether the data the resume file `r` speaks of is gone: it lists pieces had in the folder the
/// torrent is in now, and none of the torrent's files is there (see [`EngineError::DataMissing`]).
///
/// [`EngineError::DataMissing`]: crate::EngineError::DataMissing
fn gone(t: &Torrent, r: &ResumeFile) -> bool {
    r.data_dir.as_deref() == Some(absolute_data_dir(t).as_path())
        && r.pieces.bytes().any(|b| b != b'0')
        && t.storage.none_present()
}

/// What is known about the data on disk without reading it: the pieces the resume file vouches for,
/// and the pieces that must be hash-checked (their files are present and long enough).
pub(crate) struct Survey {
    pub have: Bitfield,
    pub to_check: Vec<u32>,
    /// Files longer than the torrent says (already reported): path in the torrent, bytes too many.
    pub oversized: Vec<(PathBuf, u64)>,
    /// The resume file already says all this (its pieces and file stamps are the ones found): it
    /// need not be saved again.
    pub current: bool,
    /// The data the resume file lists is gone from the torrent's folder: the torrent is to fail
    /// ([`EngineError::DataMissing`](crate::EngineError::DataMissing)), not download it all again
    /// unasked.
    pub gone: bool,
}

/// Looks at file sizes, mtimes and the resume file (blocking, but reads no piece data). Files
/// longer than the torrent says are reported. The torrent's clock takes up what the file kept:
/// call it once, when the torrent is added.
pub(crate) fn survey(t: &Torrent) -> Survey {
    let resume = load(t);
    if let Some(r) = &resume {
        t.core.lock().clock.restore(r.clock);
    }
    let gone = resume.as_ref().is_some_and(|r| gone(t, r));
    Survey {
        gone,
        ..survey_with(t, resume.and_then(|r| pieces_of(t, r)))
    }
}

/// [`survey`] again, for a torrent that runs already (its clock is not taken from the file).
pub(crate) fn survey_again(t: &Torrent) -> Survey {
    survey_with(t, load(t).and_then(|r| pieces_of(t, r)))
}

/// Every piece whose files are on disk, to hash, with no resume data trusted (a forced re-check).
pub(crate) fn survey_all(t: &Torrent) -> Survey {
    survey_with(t, None)
}

fn survey_with(t: &Torrent, resume: Option<(Bitfield, Vec<Option<FileStamp>>)>) -> Survey {
    let n = t.geo.piece_count as usize;
    let stamps = t.storage.stamps();
    let oversized = super::disk_check::report_oversized(t, &stamps);
    let mut have = Bitfield::new(n);
    let mut to_check = Vec::new();
    for i in 0..n as u32 {
        if !t.storage.piece_on_disk(i, &stamps) {
            continue;
        }
        let trusted = resume.as_ref().is_some_and(|(bits, files)| {
            bits.get(i as usize)
                && t.storage
                    .files_of_piece(i)
                    .all(|f| files[f].is_some() && files[f] == stamps[f])
        });
        if trusted {
            have.set(i as usize);
        } else {
            to_check.push(i);
        }
    }
    let current = to_check.is_empty()
        && resume
            .as_ref()
            .is_some_and(|(bits, files)| *bits == have && *files == stamps);
    Survey {
        have,
        to_check,
        oversized,
        current,
        gone: false,
    }
}

/// Hash-checks the pieces the survey could not vouch for, in parallel on every core (blocking).
///
/// Workers claim [`LANES`] pieces of the list at a time and hash them together
/// ([`digest_lanes_chunked`]: about 2.5 times one stream's speed per core with the SHA extensions) when
/// all are whole pieces; otherwise (the short last piece, the end of the list, piece lengths that do
/// not split into 64-byte blocks) one by one. Pieces are read in chunks of at most [`CHUNK`] bytes, so a
/// worker holds `LANES` chunks whatever the piece length. A piece that cannot be read is not had.
pub(crate) fn hash_check(t: &Torrent, survey: Survey) -> Bitfield {
    let Survey { have, to_check, .. } = survey;
    if to_check.is_empty() {
        return have;
    }
    t.pieces_checked
        .fetch_add(to_check.len() as u64, Ordering::Relaxed);
    tracing::info!(
        torrent = %t.meta.info.name,
        pieces = to_check.len(),
        "checking existing data"
    );
    let groups = to_check.len().div_ceil(LANES);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(groups);
    let chunk = CHUNK.min(t.geo.piece_length as usize);
    let next = AtomicUsize::new(0);
    let found = Mutex::new(have);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut bufs: [Vec<u8>; LANES] = std::array::from_fn(|_| vec![0u8; chunk]);
                loop {
                    let first = next.fetch_add(1, Ordering::Relaxed) * LANES;
                    let Some(group) = to_check.get(first..(first + LANES).min(to_check.len()))
                    else {
                        return;
                    };
                    for i in verified(t, group, &mut bufs) {
                        found.lock().set(i as usize);
                    }
                }
            });
        }
    });
    found.into_inner()
}

/// The pieces of `group` whose data on disk has the torrent's hash: its SHA-1, and for a hybrid
/// with its piece layers its v2 hash as well (both from one read of the piece). A hybrid piece that
/// has the one and not the other fails the torrent (its two swarms would call different bytes that
/// piece) and is not had.
pub(crate) fn verified(t: &Torrent, group: &[u32], bufs: &mut [Vec<u8>; LANES]) -> Vec<u32> {
    let Some(layers) = t.meta.info.hybrid.as_ref().and_then(|h| h.layers.as_ref()) else {
        return verified_by_own_hash(t, group, bufs);
    };
    group
        .iter()
        .copied()
        .filter(|&i| {
            let (v1, v2) = hybrid_piece_matches(t, i, &layers.pieces[i as usize], &mut bufs[0]);
            if v1 && !v2 {
                t.fail(crate::EngineError::InconsistentHybrid {
                    name: t.meta.info.name.clone(),
                    index: i,
                });
            }
            v1 && v2
        })
        .collect()
}

/// Whether hybrid piece `i` on disk has its SHA-1 and its merkle root `v2` (the piece's file data,
/// without the padding after it), read once in chunks of `buf`'s length; neither when unreadable.
fn hybrid_piece_matches(t: &Torrent, i: u32, v2: &PieceHash, buf: &mut [u8]) -> (bool, bool) {
    let start = i as u64 * t.geo.piece_length;
    let data_len = u64::from(v2.data_len);
    let mut leaves = BlockHasher::default();
    let sha1 = digest_chunked(t.geo.piece_len(i), buf, |at, chunk| {
        t.storage.read(start + at, chunk)?;
        let data = data_len.saturating_sub(at).min(chunk.len() as u64) as usize;
        leaves.update(&chunk[..data]);
        Ok::<_, io::Error>(())
    });
    match sha1 {
        Ok(d) => (
            d == t.meta.info.pieces[i as usize],
            v2.matches_leaves(&leaves.finish()),
        ),
        Err(_) => (false, false),
    }
}

/// Whether piece `i` on disk has the merkle root `piece`, read in chunks of `buf`'s length.
fn has_merkle_root(t: &Torrent, i: u32, piece: &PieceHash, buf: &mut [u8]) -> bool {
    let (len, start) = (u64::from(piece.data_len), i as u64 * t.geo.piece_length);
    let mut h = BlockHasher::default();
    let mut at = 0;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        let chunk = &mut buf[..n];
        if t.storage.read(start + at, chunk).is_err() {
            return false;
        }
        h.update(chunk);
        at += chunk.len() as u64;
    }
    piece.matches_leaves(&h.finish())
}

/// [`verified`] by the torrent's own piece hashes: SHA-1, or a v2 torrent's merkle roots.
fn verified_by_own_hash(t: &Torrent, group: &[u32], bufs: &mut [Vec<u8>; LANES]) -> Vec<u32> {
    let plen = t.geo.piece_length;
    let expected = |i: u32| &t.meta.info.pieces[i as usize];
    let read = |i: u32, at: u64, chunk: &mut [u8]| t.storage.read(i as u64 * plen + at, chunk);
    if let Some(v2) = &t.meta.info.v2 {
        return group
            .iter()
            .copied()
            .filter(|&i| has_merkle_root(t, i, &v2.pieces[i as usize], &mut bufs[0]))
            .collect();
    }
    let whole = |i: &u32| t.geo.piece_len(*i) == plen;
    if let Ok(lanes) = <[u32; LANES]>::try_from(group) {
        if lanes_fit(plen, bufs[0].len()) && lanes.iter().all(whole) {
            let mut unreadable = [false; LANES];
            let Ok(digests) = digest_lanes_chunked(plen, bufs, |k, at, chunk| {
                unreadable[k] = unreadable[k] || read(lanes[k], at, chunk).is_err();
                Ok::<_, Infallible>(())
            });
            return (0..LANES)
                .filter(|&k| !unreadable[k] && &digests[k] == expected(lanes[k]))
                .map(|k| lanes[k])
                .collect();
        }
    }
    group
        .iter()
        .copied()
        .filter(|&i| {
            let len = t.geo.piece_len(i);
            digest_chunked(len, &mut bufs[0], |at, chunk| read(i, at, chunk))
                .is_ok_and(|d| &d == expected(i))
        })
        .collect()
}

/// Saves the resume file now (no-op without a resume folder).
pub(crate) async fn save(t: &Arc<Torrent>) {
    save_with(t, true).await
}

/// [`save`] for a torrent removed from its session: the file no longer says which folder its list
/// is of, so a later add of the same torrent does not take data deleted meanwhile for data gone
/// missing (see [`Survey::gone`]), while its pieces and stamps still spare a re-add the hashing of
/// data that is still there.
pub(crate) async fn save_removed(t: &Arc<Torrent>) {
    save_with(t, false).await
}

async fn save_with(t: &Arc<Torrent>, placed: bool) {
    let Some(file) = path(t) else { return };
    let (bits, clock) = {
        let mut c = t.core.lock();
        c.resume_dirty = false;
        (c.picker.have().clone(), c.clock.kept())
    };
    let t2 = t.clone();
    let Ok(_turn) = t.ctx.saves.acquire().await else {
        return;
    };
    let r = tokio::task::spawn_blocking(move || {
        let data = ResumeFile {
            info_hash: t2.info_hash().to_hex(),
            pieces: hex::encode(bits.as_bytes()),
            files: t2.storage.stamps(),
            clock,
            data_dir: placed.then(|| absolute_data_dir(&t2)),
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_vec(&data).map_err(io::Error::other)?;
        btorrent_proto::fs::write_atomic(&file, &json)
    })
    .await;
    if let Ok(Err(e)) = r {
        tracing::warn!(torrent = %t.meta.info.name, "cannot save resume data: {e}");
    }
}

/// A session holding `meta` paused, its data in `dir`, talking to nobody (for tests).
#[cfg(test)]
pub(crate) async fn paused(
    meta: btorrent_proto::metainfo::Metainfo,
    dir: &std::path::Path,
) -> (crate::Session, crate::TorrentHandle) {
    let session = crate::Session::start(crate::SessionConfig::default())
        .await
        .unwrap();
    let add = crate::AddOptions {
        data_dir: dir.to_path_buf(),
        paused: true,
        trackers: Some(vec![]),
        ..Default::default()
    };
    let h = session.add(meta, add).await.unwrap();
    (session, h)
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use rand::{RngCore, SeedableRng};

    use super::*;
    use btorrent_proto::metainfo::{create_torrent, CreateOptions};

    /// Writes `lens` pseudo-random files `f0`, `f1`, ... under `top`.
    fn write_files(top: &Path, lens: &[u64]) {
        std::fs::create_dir_all(top).unwrap();
        for (i, &len) in lens.iter().enumerate() {
            let mut data = vec![0u8; len as usize];
            rand::rngs::StdRng::seed_from_u64(i as u64).fill_bytes(&mut data);
            std::fs::write(top.join(format!("f{i}")), data).unwrap();
        }
    }

    /// Flips one byte at `offset` of the files taken as one stream.
    fn damage(top: &Path, lens: &[u64], offset: u64) {
        let mut at = offset;
        for (i, &len) in lens.iter().enumerate() {
            if at < len {
                let path = top.join(format!("f{i}"));
                let mut data = std::fs::read(&path).unwrap();
                data[at as usize] ^= 0x5a;
                std::fs::write(&path, data).unwrap();
                return;
            }
            at -= len;
        }
        panic!("offset {offset} is past the end");
    }

    fn ones(b: &Bitfield) -> Vec<usize> {
        b.ones().collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_recheck_finds_exactly_the_damaged_pieces() {
        // Whole pieces hashed four at a time in one chunk (16 KiB) and in two (256 KiB), and one by one.
        for plen in [16u64 << 10, 256 << 10] {
            let dir = tempfile::tempdir().unwrap();
            let top = dir.path().join("set");
            // Nine pieces: f0 ends inside piece 5, f1 inside piece 6, the last piece is short.
            let lens = [5 * plen + 1000, plen * 3 / 2, 2 * plen + 7];
            write_files(&top, &lens);
            let opts = CreateOptions {
                piece_length: Some(plen),
                ..Default::default()
            };
            let meta = create_torrent(&top, &opts, &|_, _| {}).unwrap();
            assert_eq!(meta.info.piece_count(), 9);
            // In the first group of four, across the f0/f1 boundary, and in the short last piece.
            for offset in [plen + 10, 5 * plen + 1500, 8 * plen + 3] {
                damage(&top, &lens, offset);
            }
            let (session, h) = paused(meta, dir.path()).await;
            let t = &h.0;

            let all = survey(t);
            assert_eq!(
                all.to_check,
                (0..9).collect::<Vec<u32>>(),
                "nothing vouched for"
            );
            assert_eq!(ones(&hash_check(t, all)), [0, 2, 3, 4, 6, 7], "{plen}");

            // Any order and any subset: [7, 0, 5, 2] hashed together, then 8 and 1 one by one.
            let some = Survey {
                have: Bitfield::new(9),
                to_check: vec![7, 0, 5, 2, 8, 1],
                oversized: Vec::new(),
                current: false,
                gone: false,
            };
            assert_eq!(ones(&hash_check(t, some)), [0, 2, 7], "{plen}");

            // A file cut short after the survey: its pieces cannot be read and are not had.
            let survey = survey(t);
            std::fs::File::options()
                .write(true)
                .open(top.join("f2"))
                .unwrap()
                .set_len(0)
                .unwrap();
            assert_eq!(ones(&hash_check(t, survey)), [0, 2, 3, 4], "{plen}");
            session.shutdown(Duration::from_secs(2)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_v2_recheck_finds_exactly_the_damaged_pieces() {
        let plen = 16u64 << 10;
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("set");
        // v2 puts each file on a piece boundary: f0 in pieces 0-2, f1 in 3, f2 in 4.
        let lens = [2 * plen + 1000, plen / 2, plen];
        write_files(&top, &lens);
        let opts = CreateOptions {
            piece_length: Some(plen),
            v2: true,
            ..Default::default()
        };
        let meta = create_torrent(&top, &opts, &|_, _| {}).unwrap();
        assert_eq!(meta.info.piece_count(), 5);
        // In f0's middle piece and in f2.
        for offset in [plen + 10, 2 * plen + 1000 + plen / 2 + 3] {
            damage(&top, &lens, offset);
        }
        let (session, h) = paused(meta, dir.path()).await;
        let t = &h.0;
        assert_eq!(ones(&hash_check(t, survey(t))), [0, 2, 3]);
        let survey = survey(t);
        std::fs::File::options()
            .write(true)
            .open(top.join("f1"))
            .unwrap()
            .set_len(10)
            .unwrap();
        assert_eq!(ones(&hash_check(t, survey)), [0, 2]);
        session.shutdown(Duration::from_secs(2)).await;
    }
}
