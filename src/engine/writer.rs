//! A connection's sending side: the queue the reader task fills ([`OutQueue`]) and the writer task that
//! drains it.
//!
//! Control messages are encoded straight into `OutInner::ctrl`; upload requests wait in
//! `OutInner::uploads` (at most our advertised `reqq`). The writer takes a batch of requests, reads
//! their blocks from disk on the blocking pool directly into its send buffer after each 13-byte piece
//! header (no copy beyond the kernel's), and writes the buffer out. The send buffer is reused.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::peer::PeerShared;
use super::torrent::Torrent;
use crate::wire::message::{encode, put_piece_header};
use crate::wire::{BlockRef, Message};

/// Blocks read from disk per blocking job (512 KiB).
const UPLOAD_BATCH: usize = 32;

pub(crate) struct OutInner {
    pub ctrl: BytesMut,
    pub uploads: VecDeque<BlockRef>,
    pub last_write: Instant,
}

pub(crate) struct OutQueue {
    pub inner: Mutex<OutInner>,
    pub notify: Notify,
}

impl OutQueue {
    pub fn new() -> Self {
        OutQueue {
            inner: Mutex::new(OutInner {
                ctrl: BytesMut::with_capacity(4096),
                uploads: VecDeque::new(),
                last_write: Instant::now(),
            }),
            notify: Notify::new(),
        }
    }

    /// Queues a control message (sent by the next wake-up of the writer).
    pub fn push(&self, msg: &Message) {
        encode(msg, &mut self.inner.lock().ctrl);
    }

    pub fn flush(&self) {
        self.notify.notify_one();
    }
}

fn fill(t: &Torrent, buf: &mut BytesMut, batch: &[BlockRef]) -> std::io::Result<u64> {
    let mut bytes = 0;
    for b in batch {
        put_piece_header(buf, b.index, b.begin, b.length);
        let at = buf.len();
        buf.resize(at + b.length as usize, 0);
        t.storage.read_block(b.index, b.begin, &mut buf[at..])?;
        bytes += b.length as u64;
    }
    Ok(bytes)
}

/// Runs until the connection closes (`conn` cancelled) or a write fails; then cancels `conn`.
pub(crate) async fn run(
    t: Arc<Torrent>,
    sh: Arc<PeerShared>,
    out: Arc<OutQueue>,
    mut wr: OwnedWriteHalf,
    conn: CancellationToken,
) {
    let r: anyhow::Result<()> = async {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        loop {
            let batch: Vec<BlockRef> = {
                let mut q = out.inner.lock();
                buf.extend_from_slice(&q.ctrl);
                q.ctrl.clear();
                let n = q.uploads.len().min(UPLOAD_BATCH);
                q.uploads.drain(..n).collect()
            };
            if buf.is_empty() && batch.is_empty() {
                tokio::select! {
                    _ = out.notify.notified() => continue,
                    _ = conn.cancelled() => return Ok(()),
                }
            }
            if !batch.is_empty() {
                if let Some(limit) = &t.ctx.upload_limit {
                    let n: u64 = batch.iter().map(|b| b.length as u64).sum();
                    let wait = limit.reserve(n);
                    if !wait.is_zero() {
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = conn.cancelled() => return Ok(()),
                        }
                    }
                }
                let t2 = t.clone();
                t.disk_job_started();
                let job = tokio::task::spawn_blocking(move || {
                    let r = fill(&t2, &mut buf, &batch);
                    (buf, r)
                })
                .await;
                t.disk_job_finished();
                let (b, r) = job?;
                buf = b;
                let n = r.map_err(|e| anyhow::anyhow!("reading data to upload: {e}"))?;
                sh.uploaded.fetch_add(n, Ordering::Relaxed);
                t.uploaded.fetch_add(n, Ordering::Relaxed);
            }
            tokio::select! {
                r = wr.write_all(&buf) => r?,
                _ = conn.cancelled() => return Ok(()),
            }
            buf.clear();
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
