//! Tracker announces for one torrent: one task per tracker URL, alive as long as the torrent's current
//! run (a pause ends them; resuming starts them again).
//!
//! Each task announces `started`, then re-announces on the tracker's interval; `completed` goes out as
//! soon as the download completes; an early announce goes out when the torrent is short of peers (and
//! the tracker's `min interval` allows). Every peer a tracker returns is dialed: some clients never dial
//! loopback peers themselves, so we must call them. `stopped` is sent by [`announce_stopped`] when the
//! torrent is removed or the session shuts down. Failures back off (15 s, 30 s, ... 30 min).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::torrent::Torrent;
use crate::announce::{AnnounceEvent, AnnounceRequest, AnnounceSchedule};

/// Fewer connected peers than this (while downloading, or none at all while seeding) is "short".
const SHORT_OF_PEERS: usize = 5;
/// How often a task looks at the peer count between regular announces.
const LOOK_EVERY: Duration = Duration::from_secs(1);

fn request(t: &Torrent, event: Option<AnnounceEvent>) -> AnnounceRequest {
    let st = t.stats();
    AnnounceRequest {
        info_hash: t.info_hash(),
        peer_id: t.ctx.peer_id,
        port: t.ctx.listen_addr.port(),
        uploaded: st.uploaded,
        downloaded: st.downloaded,
        left: st.bytes_total - st.bytes_verified,
        event,
        numwant: if event == Some(AnnounceEvent::Stopped) {
            Some(0)
        } else {
            None
        },
        key: Some(t.ctx.announce_key),
        ip: t.ctx.cfg.announce_ip,
    }
}

fn short_of_peers(t: &Torrent) -> bool {
    let c = t.core.lock();
    if c.picker.is_complete() {
        c.peers.is_empty()
    } else {
        c.peers.len() < SHORT_OF_PEERS
    }
}

/// Starts the announce tasks of the torrent's current run.
pub(crate) fn start(t: &Arc<Torrent>, run: CancellationToken) {
    for url in &t.trackers {
        tokio::spawn(tracker_task(t.clone(), url.clone(), run.clone()));
    }
}

async fn tracker_task(t: Arc<Torrent>, url: String, run: CancellationToken) {
    let mut schedule = AnnounceSchedule::new();
    let mut event = Some(AnnounceEvent::Started);
    let mut done = t.done_rx();
    let mut completed_sent = done.borrow().is_some();
    loop {
        let req = request(&t, event);
        let r = tokio::select! {
            _ = run.cancelled() => return,
            r = t.ctx.tracker.announce(&url, &req) => r,
        };
        let mut wait = match r {
            Ok(resp) => {
                if let Some(w) = &resp.warning {
                    tracing::info!(tracker = %url, "warning: {w}");
                }
                t.add_known(resp.peers.iter().copied());
                event = None;
                t.announced.fetch_add(1, Ordering::Relaxed);
                schedule.succeeded(&resp)
            }
            Err(e) => {
                tracing::warn!(torrent = %t.meta.info.name, "announce failed: {e}");
                schedule.failed(&e)
            }
        };
        // Wait for the next regular announce, or for a reason to announce sooner.
        while !wait.is_zero() {
            let step = wait.min(LOOK_EVERY);
            tokio::select! {
                _ = run.cancelled() => return,
                _ = tokio::time::sleep(step) => wait -= step,
                r = done.changed(), if !completed_sent => {
                    if r.is_err() {
                        return;
                    }
                    if matches!(*done.borrow(), Some(Ok(()))) {
                        completed_sent = true;
                        if t.downloaded.load(Ordering::Relaxed) > 0 && event.is_none() {
                            event = Some(AnnounceEvent::Completed);
                        }
                        break;
                    }
                }
            }
            if event.is_none() && short_of_peers(&t) && schedule.may_announce_early() {
                break;
            }
        }
    }
}

/// Tells every tracker we are leaving (one attempt each, concurrently).
pub(crate) async fn announce_stopped(t: &Arc<Torrent>) {
    if t.announced.load(Ordering::Relaxed) == 0 {
        return;
    }
    let req = request(t, Some(AnnounceEvent::Stopped));
    let calls = t.trackers.iter().map(|url| {
        let req = req.clone();
        async move {
            if let Err(e) = t.ctx.tracker.announce(url, &req).await {
                tracing::debug!("stopped announce failed: {e}");
            }
        }
    });
    futures::future::join_all(calls).await;
}
