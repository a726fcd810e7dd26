//! Resume data and the start-up check of existing data.
//!
//! The resume file (`<resume_dir>/<info-hash>.resume`, JSON) lists the verified pieces and, for every
//! file, the size and modification time it had when the list was taken. It is saved (atomically)
//! every `resume_interval` while pieces arrive, on completion, on move, pause and stop.
//!
//! On add, a piece is trusted without reading it only if the resume file lists it and every file it
//! touches still has the recorded size and mtime. Any other piece whose files are all present and long
//! enough is hash-checked, in parallel, on every core. So after a crash (SIGKILL) the files written
//! since the last save have a newer mtime and their pieces are re-checked: every piece that reached the
//! disk is kept, and only pieces that were in flight are lost. A piece is only ever listed after it was
//! written, so the file never claims data that is not on disk.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::storage::FileStamp;
use super::torrent::Torrent;
use crate::wire::Bitfield;

#[derive(Serialize, Deserialize)]
struct ResumeFile {
    info_hash: String,
    /// The bitfield of verified pieces, hex.
    pieces: String,
    files: Vec<Option<FileStamp>>,
}

fn path(t: &Torrent) -> Option<PathBuf> {
    let dir = t.ctx.cfg.resume_dir.as_ref()?;
    Some(dir.join(format!("{}.resume", t.info_hash().to_hex())))
}

fn load(t: &Torrent) -> Option<(Bitfield, Vec<Option<FileStamp>>)> {
    let bytes = std::fs::read(path(t)?).ok()?;
    let r: ResumeFile = serde_json::from_slice(&bytes).ok()?;
    if r.info_hash != t.info_hash().to_hex() || r.files.len() != t.meta.info.files.len() {
        return None;
    }
    let raw = hex::decode(&r.pieces).ok()?;
    let bits = Bitfield::from_bytes(&raw, t.geo.piece_count as usize).ok()?;
    Some((bits, r.files))
}

/// Finds the pieces already on disk (blocking: run it on the blocking pool).
pub(crate) fn check(t: &Torrent) -> io::Result<Bitfield> {
    let n = t.geo.piece_count as usize;
    let stamps = t.storage.stamps();
    let resume = load(t);
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
    if to_check.is_empty() {
        return Ok(have);
    }
    tracing::info!(
        torrent = %t.meta.info.name,
        pieces = to_check.len(),
        "checking existing data"
    );
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(to_check.len());
    let next = AtomicUsize::new(0);
    let found = Mutex::new(have);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = vec![0u8; t.geo.piece_length as usize];
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = to_check.get(k) else { return };
                    let len = t.geo.piece_len(i) as usize;
                    let offset = i as u64 * t.geo.piece_length;
                    if t.storage.read(offset, &mut buf[..len]).is_ok()
                        && Sha1::digest(&buf[..len]).as_slice() == t.meta.info.pieces[i as usize]
                    {
                        found.lock().set(i as usize);
                    }
                }
            });
        }
    });
    Ok(found.into_inner())
}

/// Saves the resume file now (no-op without a resume folder).
pub(crate) async fn save(t: &Arc<Torrent>) {
    let Some(file) = path(t) else { return };
    let bits = {
        let mut c = t.core.lock();
        c.resume_dirty = false;
        c.picker.have().clone()
    };
    let t2 = t.clone();
    let r = tokio::task::spawn_blocking(move || {
        let data = ResumeFile {
            info_hash: t2.info_hash().to_hex(),
            pieces: hex::encode(bits.as_bytes()),
            files: t2.storage.stamps(),
        };
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let json = serde_json::to_vec(&data).map_err(io::Error::other)?;
        crate::fsutil::write_atomic(&file, &json)
    })
    .await;
    if let Ok(Err(e)) = r {
        tracing::warn!(torrent = %t.meta.info.name, "cannot save resume data: {e}");
    }
}
