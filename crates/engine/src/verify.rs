//! Disk jobs for received pieces: hash each whole piece from memory on the blocking pool; if the hash
//! matches, hand it to the torrent's disk writer, which writes it and reports to the picker. A bad
//! piece never reaches the disk. A hybrid torrent's piece is checked against its v2 merkle root too
//! (when its layers came with it): a piece the two hashes disagree on fails the torrent.
//!
//! Hashing batches pieces: completed pieces wait in the torrent's [`HashQueue`], and one blocking job
//! at a time per torrent drains it, hashing up to [`LANES`] whole pieces at once with
//! [`Sha1Lanes`] (about 2.5 times one stream's speed per core). When fewer are queued it waits up to
//! [`BATCH_WAIT`] for more; at transfer speeds where hashing costs anything, the batch fills well
//! before that. A batch holds at most half the torrent's buffer budget, so waiting never starves the
//! picker of buffers. The queue's mutex is a leaf lock: nothing else is taken while it is held.
//!
//! Disk writers ([`Writers`]): a few threads for the whole session, started on their first write. Each
//! torrent is given one of them when it is added (in turn), and all its pieces are written there, in
//! order: the kernel serialises writes to one file anyway (the inode lock), and several threads
//! writing one torrent at once only spin on that lock. So one downloading torrent has a writer of its
//! own as before, and 1,000 idle torrents cost no thread at all.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use sha1::{Digest, Sha1};

use super::picker::{HashVerdict, PeerKey};
use super::piece_buf::PieceBuf;
use super::torrent::{Core, Torrent};
use btorrent_proto::multi_sha1::{lanes_fit, Sha1Lanes, LANES};

/// How long a batch waits for more pieces before it is hashed as it is.
pub const BATCH_WAIT: Duration = Duration::from_millis(20);

/// A received piece waiting to be hashed.
struct HashJob {
    index: u32,
    buf: PieceBuf,
    contributors: Vec<PeerKey>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<HashJob>,
    /// A blocking job is draining the queue.
    draining: bool,
}

/// A torrent's completed pieces waiting to be hashed.
#[derive(Default)]
pub(crate) struct HashQueue {
    inner: Mutex<Queue>,
    more: Condvar,
}

/// A verified piece waiting to be written.
pub(crate) struct WriteJob {
    t: Arc<Torrent>,
    index: u32,
    buf: PieceBuf,
    contributors: Vec<PeerKey>,
}

/// Disk writer threads of a session.
pub(crate) const WRITERS: usize = 4;

/// The session's disk writer threads (see the module docs): [`WRITERS`] lanes, each a thread started
/// on its first job; the threads end when the session and its torrents are gone.
#[derive(Default)]
pub(crate) struct Writers {
    lanes: [OnceLock<mpsc::Sender<WriteJob>>; WRITERS],
    next: AtomicUsize,
}

impl Writers {
    /// The lane of a new torrent: each in turn.
    pub fn assign(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % WRITERS
    }

    /// Queues `job` on `lane`, starting its thread on first use.
    fn send(&self, lane: usize, job: WriteJob) -> Result<(), mpsc::SendError<WriteJob>> {
        self.lanes[lane % WRITERS]
            .get_or_init(|| writer_thread(lane))
            .send(job)
    }
}

/// Starts a disk writer thread; it ends when the returned sender is dropped (with the session).
fn writer_thread(lane: usize) -> mpsc::Sender<WriteJob> {
    let (tx, rx) = mpsc::channel::<WriteJob>();
    let spawned = std::thread::Builder::new()
        .name(format!("bt-write {lane}"))
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                let len = job.t.geo.piece_len(job.index) as usize;
                let written = job.t.storage.write_piece(job.index, &job.buf[..len]);
                finish(&job.t, job.index, true, written, job.buf, &job.contributors);
                job.t.disk_job_finished();
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start a disk writer thread: {e}");
    }
    tx
}

/// Hashes piece `index` off the network tasks, then queues it for writing if it is good.
pub(crate) fn spawn(t: Arc<Torrent>, index: u32, buf: PieceBuf, contributors: Vec<PeerKey>) {
    t.disk_job_started();
    let start = {
        let mut q = t.hashq.inner.lock();
        q.jobs.push_back(HashJob {
            index,
            buf,
            contributors,
        });
        !std::mem::replace(&mut q.draining, true)
    };
    if start {
        tokio::task::spawn_blocking(move || drain(&t));
    } else {
        t.hashq.more.notify_one();
    }
}

/// Pieces hashed together: as many as the lanes, within half the buffer budget.
fn batch_size(t: &Torrent) -> usize {
    let budget = t.ctx.cfg.max_buffer_bytes / t.geo.piece_length.max(1) / 2;
    LANES.min(budget as usize).max(1)
}

/// Hashes queued pieces in batches until the queue is empty.
fn drain(t: &Arc<Torrent>) {
    let max = batch_size(t);
    loop {
        let batch: Vec<HashJob> = {
            let mut q = t.hashq.inner.lock();
            let deadline = Instant::now() + BATCH_WAIT;
            while !q.jobs.is_empty()
                && q.jobs.len() < max
                && !t.hashq.more.wait_until(&mut q, deadline).timed_out()
            {}
            if q.jobs.is_empty() {
                q.draining = false;
                return;
            }
            let n = q.jobs.len().min(max);
            q.jobs.drain(..n).collect()
        };
        let good = verdicts(t, &batch);
        for (job, good) in batch.into_iter().zip(good) {
            let v2 = t
                .meta
                .info
                .v2_side_matches(job.index as usize, data(t, &job));
            if v2.is_some_and(|v2| v2 != good) {
                inconsistent(t, job);
                continue;
            }
            check_and_queue(t, job, good);
        }
    }
}

fn data<'a>(t: &Torrent, j: &'a HashJob) -> &'a [u8] {
    &j.buf[..t.geo.piece_len(j.index) as usize]
}

/// Whether each piece of `batch` has its hash: SHA-1 in lanes ([`hash_batch`]), or a v2 torrent's
/// merkle roots one piece at a time.
fn verdicts(t: &Torrent, batch: &[HashJob]) -> Vec<bool> {
    let info = &t.meta.info;
    if info.v2.is_some() {
        return batch
            .iter()
            .map(|j| info.piece_matches(j.index as usize, data(t, j)))
            .collect();
    }
    hash_batch(t, batch)
        .iter()
        .zip(batch)
        .map(|(digest, j)| info.pieces.get(j.index as usize) == Some(digest))
        .collect()
}

/// The SHA-1 of each piece of `batch`: whole pieces in lockstep, others (the short last one) alone.
fn hash_batch(t: &Torrent, batch: &[HashJob]) -> Vec<[u8; 20]> {
    let plen = t.geo.piece_length;
    let mut whole: Vec<usize> = (0..batch.len())
        .filter(|&k| t.geo.piece_len(batch[k].index) == plen && lanes_fit(plen, plen as usize))
        .collect();
    if whole.len() < 2 {
        whole.clear();
    }
    let mut out = vec![[0u8; 20]; batch.len()];
    if !whole.is_empty() {
        // Unused lanes repeat the last piece: the lanes cost the same whether or not they are used.
        let mut lanes = Sha1Lanes::new();
        lanes.update(std::array::from_fn(|l| {
            data(t, &batch[whole[l.min(whole.len() - 1)]])
        }));
        let digests = lanes.finalize();
        for (l, &k) in whole.iter().enumerate() {
            out[k] = digests[l];
        }
    }
    for k in (0..batch.len()).filter(|k| !whole.contains(k)) {
        out[k] = Sha1::digest(data(t, &batch[k])).into();
    }
    out
}

/// Writes a piece whose hash matched (through the torrent's disk writer); reports a bad one.
fn check_and_queue(t: &Arc<Torrent>, job: HashJob, good: bool) {
    let HashJob {
        index,
        buf,
        contributors,
    } = job;
    if !good {
        finish(t, index, false, Ok(()), buf, &contributors);
        t.disk_job_finished();
        return;
    }
    let job = WriteJob {
        t: t.clone(),
        index,
        buf,
        contributors,
    };
    let sent = t.ctx.writers.send(t.writer_lane, job);
    if let Err(mpsc::SendError(job)) = sent {
        let e = std::io::Error::other("the disk writer thread is gone");
        finish(t, index, true, Err(e), job.buf, &job.contributors);
        t.disk_job_finished();
    }
}

/// A piece of a hybrid torrent whose two hashes disagree: the torrent fails, nothing is written and
/// no peer is blamed (the piece may be exactly what one of the two swarms calls it).
fn inconsistent(t: &Arc<Torrent>, job: HashJob) {
    t.core.lock().picker.on_write_failed(job.index, job.buf);
    t.fail(crate::EngineError::InconsistentHybrid {
        name: t.meta.info.name.clone(),
        index: job.index,
    });
    t.disk_job_finished();
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
        // The disk's fault, not the peers': no strike, no suspect piece.
        t.core.lock().picker.on_write_failed(index, buf);
        t.fail(crate::EngineError::WritePiece {
            index,
            dir: t.storage.data_dir(),
            error: std::sync::Arc::new(e),
        });
        return;
    }
    // A good piece's buffer is kept for the uploads that follow (the hot copy); the picker recycles
    // the one that makes way for it.
    let buf = if ok {
        super::disk_check::mark_written(t, index);
        t.hot.keep(index, buf, t.geo.piece_len(index) as usize)
    } else {
        Some(buf)
    };
    let mut c = t.core.lock();
    let verdict = c.picker.on_hash_done(index, ok, buf, contributors);
    match verdict {
        HashVerdict::Good => {
            let c = super::partial_files::piece_had(t, c, index);
            announce_have(t, c, index)
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

/// After piece `index` became `Have` in the picker (under `c`): logs it for the peers to announce,
/// and completes the download when it was the last one. Releases the lock.
pub(crate) fn announce_have(t: &Torrent, mut c: MutexGuard<'_, Core>, index: u32) {
    c.have_log.push(index);
    c.resume_dirty = true;
    let n = c.have_log.len();
    let complete = c.picker.is_done();
    if complete && c.lifecycle.completed() {
        c.completion_pending = true;
    }
    drop(c);
    t.have_tx.send_replace(n);
    if complete {
        t.wake.notify_one();
    }
}
