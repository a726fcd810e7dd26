//! Disk jobs for received pieces: hash the whole piece from memory on the blocking pool; if the hash
//! matches, hand it to the torrent's writer thread, which writes it and reports to the picker. A bad
//! piece never reaches the disk.
//!
//! One writer thread per torrent: the kernel serialises writes to one file anyway (the inode lock),
//! and several threads writing at once only spin on that lock. Hashing stays parallel.

use std::sync::mpsc;
use std::sync::Arc;

use sha1::{Digest, Sha1};

use super::picker::{HashVerdict, PeerKey};
use super::piece_buf::PieceBuf;
use super::torrent::Torrent;
use super::TorrentState;

/// A verified piece waiting to be written.
pub(crate) struct WriteJob {
    t: Arc<Torrent>,
    index: u32,
    buf: PieceBuf,
    contributors: Vec<PeerKey>,
}

/// Starts a torrent's writer thread; it ends when the returned sender is dropped (with the torrent).
pub(crate) fn writer_thread(name: &str) -> mpsc::Sender<WriteJob> {
    let (tx, rx) = mpsc::channel::<WriteJob>();
    let spawned = std::thread::Builder::new()
        .name(format!(
            "bt-write {}",
            name.chars().take(20).collect::<String>()
        ))
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                let len = job.t.geo.piece_len(job.index) as usize;
                let written = job.t.storage.write_piece(job.index, &job.buf[..len]);
                finish(&job.t, job.index, true, written, job.buf, &job.contributors);
                job.t.disk_job_finished();
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start a writer thread: {e}");
    }
    tx
}

/// Hashes piece `index` off the network tasks, then queues it for writing if it is good.
pub(crate) fn spawn(t: Arc<Torrent>, index: u32, buf: PieceBuf, contributors: Vec<PeerKey>) {
    t.disk_job_started();
    tokio::task::spawn_blocking(move || {
        let len = t.geo.piece_len(index) as usize;
        let ok = Sha1::digest(&buf[..len]).as_slice() == t.meta.info.pieces[index as usize];
        if !ok {
            finish(&t, index, false, Ok(()), buf, &contributors);
            t.disk_job_finished();
            return;
        }
        let job = WriteJob {
            t: t.clone(),
            index,
            buf,
            contributors,
        };
        // The sender's lock is released before `finish` takes the core lock (see the lock order).
        let sent = t.writer.lock().send(job);
        if let Err(mpsc::SendError(job)) = sent {
            let e = std::io::Error::other("the writer thread is gone");
            finish(&t, index, true, Err(e), job.buf, &job.contributors);
            t.disk_job_finished();
        }
    });
}

fn finish(
    t: &Arc<Torrent>,
    index: u32,
    ok: bool,
    written: std::io::Result<()>,
    buf: PieceBuf,
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
