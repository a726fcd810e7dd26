//! Disk jobs for received pieces: hash the whole piece from memory on the blocking pool, write it only
//! if the hash matches, then report to the picker. A bad piece never reaches the disk.

use std::sync::Arc;

use sha1::{Digest, Sha1};

use super::picker::{HashVerdict, PeerKey};
use super::torrent::Torrent;
use super::TorrentState;

/// Hashes and (if good) writes piece `index`, off the network tasks.
pub(crate) fn spawn(t: Arc<Torrent>, index: u32, buf: Vec<u8>, contributors: Vec<PeerKey>) {
    t.disk_job_started();
    tokio::task::spawn_blocking(move || {
        let len = t.geo.piece_len(index) as usize;
        let ok = Sha1::digest(&buf[..len]).as_slice() == t.meta.info.pieces[index as usize];
        let written = if ok {
            t.storage.write_piece(index, &buf[..len])
        } else {
            Ok(())
        };
        finish(&t, index, ok, written, buf, &contributors);
        t.disk_job_finished();
    });
}

fn finish(
    t: &Arc<Torrent>,
    index: u32,
    ok: bool,
    written: std::io::Result<()>,
    buf: Vec<u8>,
    contributors: &[PeerKey],
) {
    if let Err(e) = written {
        t.core.lock().picker.on_hash_done(index, false, buf, &[]);
        let path = t.storage.data_dir();
        t.fail(format!(
            "cannot write piece {index} under {}: {e}",
            path.display()
        ));
        return;
    }
    let mut c = t.core.lock();
    let verdict = c.picker.on_hash_done(index, ok, buf, contributors);
    match verdict {
        HashVerdict::Good => {
            c.have_log.push(index);
            c.resume_dirty = true;
            let n = c.have_log.len();
            let complete = c.picker.is_complete();
            if complete && c.state == TorrentState::Downloading {
                c.state = TorrentState::Seeding;
                c.completion_pending = true;
            }
            drop(c);
            t.have_tx.send_replace(n);
            if complete {
                t.wake.notify_one();
            }
        }
        HashVerdict::BadFrom(key) => {
            drop(c);
            super::peer::strike(t, key);
        }
        HashVerdict::BadMixed => {
            tracing::warn!(
                piece = index,
                "piece from several peers failed its hash check"
            );
        }
    }
}
