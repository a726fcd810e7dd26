//! A connection's sending side: the queue the reader task fills ([`OutQueue`]) and the sender task that
//! drains it.
//!
//! Control messages are encoded straight into `OutInner::ctrl`; upload requests wait in
//! `OutInner::uploads` (at most our advertised `reqq`). The sender task takes the control bytes (swapping
//! buffers, no copy) and a batch of requests, reads the batch's blocks on the blocking pool into one
//! data buffer: from the torrent's copies of the pieces it verified last ([`super::hot`]) when it has
//! them, else from disk, one read per run of blocks that follow each other in the torrent's byte
//! stream (a peer asks for a piece's blocks in order), after checking each piece of the batch against
//! its hash ([`super::disk_check`]: blocks of a piece that fails are not sent), and sends control
//! bytes, piece headers and
//! blocks with vectored writes. Data and header buffers are reused: after the first batch the sender task
//! allocates and zeroes nothing.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::peer_stream::PeerWriter;
use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::peer::PeerShared;
use super::torrent::Torrent;
use btorrent_proto::wire::message::{encode, piece_header};
use btorrent_proto::wire::{BlockRef, Message, BLOCK_SIZE};

/// Blocks read from disk per blocking job (512 KiB).
const UPLOAD_BATCH: usize = 32;

/// Blocks taken per batch under an upload limit of `rate` bytes a second (`None`: unlimited):
/// [`UPLOAD_BATCH`], or what a tenth of a second at the rate carries (one block at least). A
/// batch is one grant of the limiters, which may run into debt: capped so, a limited torrent's
/// bytes go out a block or a few at a time rather than half a MiB at once and then nothing for
/// seconds (at 150 kB/s, a 512 KiB grant was 3.5 s of the limit in one burst).
fn batch_blocks(rate: Option<u64>) -> usize {
    rate.map_or(UPLOAD_BATCH, |r| {
        usize::try_from(r / 10 / u64::from(BLOCK_SIZE))
            .unwrap_or(UPLOAD_BATCH)
            .clamp(1, UPLOAD_BATCH)
    })
}

pub(crate) struct OutInner {
    pub ctrl: BytesMut,
    pub uploads: VecDeque<BlockRef>,
    pub last_write: Instant,
}

pub(crate) struct OutQueue {
    pub inner: Mutex<OutInner>,
    pub notify: Notify,
    /// The peer speaks the fast extension (a request we will not serve gets a `reject`).
    pub fast: bool,
}

impl OutQueue {
    pub fn new(fast: bool) -> Self {
        OutQueue {
            fast,
            inner: Mutex::new(OutInner {
                ctrl: BytesMut::with_capacity(4096),
                uploads: VecDeque::new(),
                last_write: Instant::now(),
            }),
            notify: Notify::new(),
        }
    }

    /// Queues a control message (sent by the next wake-up of the sender task).
    pub fn push(&self, msg: &Message) {
        encode(msg, &mut self.inner.lock().ctrl);
    }

    pub fn flush(&self) {
        self.notify.notify_one();
    }
}

/// Where block `b` starts in the torrent's byte stream.
fn stream_offset(t: &Torrent, b: &BlockRef) -> u64 {
    b.index as u64 * t.geo.piece_length + b.begin as u64
}

/// Checks the pieces of `batch` against their hashes ([`super::disk_check`]) and takes the blocks of
/// bad ones (withdrawn) out of it into `refused`; then reads the rest into `data`, one block after
/// another, with one read per run of blocks that are contiguous in the torrent. `data` only ever
/// grows (zeroed once, then reused).
pub(crate) fn fill(
    t: &Torrent,
    data: &mut Vec<u8>,
    batch: &mut Vec<BlockRef>,
    refused: &mut Vec<BlockRef>,
) -> std::io::Result<u64> {
    let mut pieces: Vec<u32> = batch.iter().map(|b| b.index).collect();
    pieces.sort_unstable();
    pieces.dedup();
    let bad = super::disk_check::verify_for_upload(t, &pieces);
    if !bad.is_empty() {
        refused.extend(batch.iter().filter(|b| bad.contains(&b.index)));
        batch.retain(|b| !bad.contains(&b.index));
    }
    let total: usize = batch.iter().map(|b| b.length as usize).sum();
    if data.len() < total {
        data.resize(total, 0);
    }
    // Blocks of pieces verified lately come from their copies in memory ([`super::hot`]); the rest
    // from disk, one read per run of blocks that follow each other in the torrent.
    let (mut at, mut i) = (0, 0);
    let hot = |b: &BlockRef, dst: &mut [u8]| t.hot.read(b.index, b.begin as usize, dst);
    while i < batch.len() {
        let len = batch[i].length as usize;
        if hot(&batch[i], &mut data[at..at + len]) {
            at += len;
            i += 1;
            continue;
        }
        let start = stream_offset(t, &batch[i]);
        let mut run = len;
        let mut j = i + 1;
        while j < batch.len() && stream_offset(t, &batch[j]) == start + run as u64 {
            run += batch[j].length as usize;
            j += 1;
        }
        t.storage.read(start, &mut data[at..at + run])?;
        at += run;
        i = j;
    }
    Ok(total as u64)
}

/// Sends `ctrl`, then each block of `batch` (its bytes one after another in `data`) behind its header.
async fn send(
    wr: &mut PeerWriter,
    ctrl: &[u8],
    batch: &[BlockRef],
    headers: &mut Vec<[u8; 13]>,
    data: &[u8],
) -> std::io::Result<()> {
    headers.clear();
    headers.extend(
        batch
            .iter()
            .map(|b| piece_header(b.index, b.begin, b.length)),
    );
    let mut slices = Vec::with_capacity(1 + 2 * batch.len());
    slices.push(IoSlice::new(ctrl));
    let mut at = 0;
    for (b, h) in batch.iter().zip(headers.iter()) {
        let len = b.length as usize;
        slices.push(IoSlice::new(h));
        slices.push(IoSlice::new(&data[at..at + len]));
        at += len;
    }
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = wr.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    // An encrypted stream may hold the last bytes taken (see `peer_stream`); a plain one holds none.
    wr.flush().await
}

/// Runs until the connection closes (`conn` cancelled) or a write fails; then cancels `conn`.
pub(crate) async fn run(
    t: Arc<Torrent>,
    sh: Arc<PeerShared>,
    out: Arc<OutQueue>,
    mut wr: PeerWriter,
    conn: CancellationToken,
) {
    let r: anyhow::Result<()> = async {
        let mut ctrl = BytesMut::with_capacity(4096);
        let mut data: Vec<u8> = Vec::new();
        let mut headers: Vec<[u8; 13]> = Vec::with_capacity(UPLOAD_BATCH);
        let mut batch: Vec<BlockRef> = Vec::with_capacity(UPLOAD_BATCH);
        let mut refused: Vec<BlockRef> = Vec::new();
        loop {
            let cap = batch_blocks(t.limits.upload_rate(&t.ctx));
            {
                let mut q = out.inner.lock();
                std::mem::swap(&mut ctrl, &mut q.ctrl);
                let n = q.uploads.len().min(cap);
                batch.extend(q.uploads.drain(..n));
            }
            if ctrl.is_empty() && batch.is_empty() {
                tokio::select! {
                    _ = out.notify.notified() => continue,
                    _ = conn.cancelled() => return Ok(()),
                }
            }
            if !batch.is_empty() {
                let n: u64 = batch.iter().map(|b| b.length as u64).sum();
                tokio::select! {
                    _ = t.limits.upload_turn(&t.ctx, n) => {}
                    _ = conn.cancelled() => return Ok(()),
                }
                let t2 = t.clone();
                t.disk_job_started();
                let job = tokio::task::spawn_blocking(move || {
                    let r = fill(&t2, &mut data, &mut batch, &mut refused);
                    (data, batch, refused, r)
                })
                .await;
                t.disk_job_finished();
                let r;
                (data, batch, refused, r) = job?;
                let n = r.map_err(|e| anyhow::anyhow!("reading data to upload: {e}"))?;
                // Blocks of a piece withdrawn just now: its connection drops the rest (disk_check).
                if out.fast {
                    for b in refused.drain(..) {
                        encode(&Message::Reject(b), &mut ctrl);
                    }
                }
                refused.clear();
                sh.uploaded.fetch_add(n, Ordering::Relaxed);
                t.uploaded.fetch_add(n, Ordering::Relaxed);
            }
            tokio::select! {
                r = send(&mut wr, &ctrl, &batch, &mut headers, &data) => r?,
                _ = conn.cancelled() => return Ok(()),
            }
            ctrl.clear();
            batch.clear();
            out.inner.lock().last_write = Instant::now();
        }
    }
    .await;
    if let Err(e) = r {
        tracing::debug!(peer = %sh.addr, "send side closed: {e}");
    }
    let _ = wr.shutdown().await;
    conn.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limited_torrent_takes_a_tenth_of_a_second_of_its_rate_per_batch() {
        assert_eq!(batch_blocks(None), UPLOAD_BATCH);
        assert_eq!(batch_blocks(Some(150_000)), 1, "15 kB: one block");
        assert_eq!(batch_blocks(Some(1_000)), 1, "never none");
        assert_eq!(batch_blocks(Some(1_000_000)), 6);
        assert_eq!(batch_blocks(Some(100_000_000)), UPLOAD_BATCH);
    }
}
