//! Tracker announces for one torrent: one task per tracker URL, alive as long as the torrent's current
//! run (a pause ends them; resuming starts them again).
//!
//! Each task announces `started`, then re-announces on the tracker's interval; `completed` goes out as
//! soon as the download completes; an early announce goes out when the torrent is short of peers (and
//! the tracker's `min interval` allows). Every peer a tracker returns is dialed: some clients never dial
//! loopback peers themselves, so we must call them. `stopped` is sent by [`announce_stopped`] when the
//! torrent is paused (the next run's `started` waits for it: `Torrent::leaving`), removed (unless a
//! pause said it already) or the session shuts down, in turns too (at a shutdown, spread over at
//! most half its grace: [`crate::session::stop_spacing`]).
//!
//! A hybrid torrent announces each time in both its swarms (the v1 and the v2 info-hash), as one
//! call: the v1 answer drives the schedule.
//!
//! Announces take turns across the session ([`crate::session::SessionCtx::announce_turn`]): 1,000
//! torrents starting at once reach their trackers a couple of milliseconds apart.
//!
//! A public torrent announces to the session's default trackers too ([`Torrent::announce_list`],
//! [`crate::Session::set_default_trackers`]), which are not its own (its `trackers` leave them out).
//! A running torrent's trackers can change ([`TorrentHandle::set_trackers`]): a tracker taken off has
//! its task cancelled (each task has a token of its own, a child of the run's), a new one gets a
//! task that announces `started` at once.
//!
//! Failures back off (15 s, 30 s, ... 30 min; `SessionConfig::tracker_backoff` is the first step), and
//! every announce path waits for it: no early announce and no event goes to a failing tracker before
//! the back-off says so, and the quick retries inside one call are for a tracker that was answering.
//! The warning is logged once per failure streak, and once more when the tracker answers again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use super::torrent::{Torrent, TorrentHandle};
use super::{EngineError, Result};
use crate::announce::{
    shown_url, AnnounceEvent, AnnounceRequest, AnnounceResponse, AnnounceSchedule, RetryPolicy,
    TrackerClient, TrackerError,
};

/// `urls` grouped as `tiers` group them (each tracker once, in the first tier naming it; a tier
/// keeps its place), those no tier names each in a tier of its own at the end; no empty tier.
pub(crate) fn regroup(tiers: &[Vec<String>], urls: &[String]) -> Vec<Vec<String>> {
    let mut placed = std::collections::HashSet::new();
    let mut out: Vec<Vec<String>> = tiers
        .iter()
        .map(|tier| {
            tier.iter()
                .map(|u| u.trim().to_string())
                .filter(|u| urls.contains(u) && placed.insert(u.clone()))
                .collect()
        })
        .collect();
    out.extend(
        urls.iter()
            .filter(|u| placed.insert((*u).clone()))
            .map(|u| vec![u.clone()]),
    );
    out.retain(|t| !t.is_empty());
    out
}

/// Fewer connected peers than this (while downloading, or none at all while seeding) is "short".
const SHORT_OF_PEERS: usize = 5;
/// A tracker silent this long gets a warning while the announce goes on waiting (its timeouts and
/// retries take up to about 90 s over HTTP, 105 s over UDP: 15 + 30 + 60 s).
pub const SLOW_TRACKER: Duration = Duration::from_secs(15);
/// How often a task looks at the peer count between regular announces: in the session's phase (all
/// torrents' tasks together), and also the moment the schedule allows an announce (see [`look_at`]).
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// The announce of `t` telling a tracker `event` and that we take peers at `port` (as that
/// tracker is to be told: [`crate::session::SessionCtx::port_for_tracker`]). A regular announce of
/// a partial seed (every wanted piece had, some skipped) says `paused`, as BEP 21 asks of every one
/// of its announces but `started` and `stopped`: the tracker then counts it among the leechers
/// but not the downloaders.
fn request(t: &Torrent, event: Option<AnnounceEvent>, port: u16) -> AnnounceRequest {
    let event = match event {
        None if t.core.lock().picker.is_partial_seed() => Some(AnnounceEvent::Paused),
        e => e,
    };
    let st = t.stats();
    AnnounceRequest {
        info_hash: t.info_hash(),
        peer_id: t.ctx.peer_id,
        port,
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
    if c.picker.is_done() {
        c.peers.is_empty()
    } else {
        c.peers.len() < SHORT_OF_PEERS
    }
}

/// Starts the announce tasks of the torrent's current run (trackers, and the DHT for a public
/// torrent) unless they run already, or the torrent does not transfer (paused, still checking its
/// data, failed). Decided and recorded in one hold of the lock: the torrent loop starting and a
/// `resume()` at the same moment start them once (see the lifecycle in [`super::torrent`]).
pub(crate) fn start_if_due(t: &Arc<Torrent>) {
    // The list and the tasks' tokens are read and made in one hold of the core lock, as
    // `set_trackers` changes them: each tracker gets one task, and a tracker taken off meanwhile
    // has its task cancelled even before it starts.
    let (run, tasks) = {
        let mut c = t.core.lock();
        if c.announcing || !c.lifecycle.transfers() {
            return;
        }
        c.announcing = true;
        let run = c.run.clone();
        c.tracker_tasks = tracker_tokens(&t.announce_list(), &run);
        (run, c.tracker_tasks.clone())
    };
    for (url, task) in tasks {
        tokio::spawn(tracker_task(t.clone(), url, task));
    }
    super::lsd::spawn_for(t, run.clone());
    super::web_seed::spawn_for(t, run.clone());
    super::dht::spawn_for(t, run);
}

impl TorrentHandle {
    /// Announces to `urls` from now on (each once, in order): a running torrent stops the announce
    /// tasks of the trackers taken off and starts one for each new tracker, which announces
    /// `started` at once; the trackers kept go on as they were. Refused, changing nothing, when
    /// something is not shaped like a tracker URL (`scheme://host...`).
    /// Each tracker kept stays in its tier, a new one is a tier of its own.
    pub fn set_trackers(&self, urls: Vec<String>) -> Result<()> {
        self.announce_to(urls, self.tracker_tiers())
    }

    /// [`TorrentHandle::set_trackers`] with the trackers in `tiers` (BEP 12), in their order.
    pub fn set_tracker_tiers(&self, tiers: Vec<Vec<String>>) -> Result<()> {
        let urls = tiers.iter().flatten().cloned().collect();
        self.announce_to(urls, tiers)
    }

    /// Announces to `urls`, grouped as `tiers` group them ([`regroup`]).
    fn announce_to(&self, urls: Vec<String>, tiers: Vec<Vec<String>>) -> Result<()> {
        let mut list: Vec<String> = Vec::with_capacity(urls.len());
        for u in urls {
            let u = u.trim().to_string();
            btorrent_proto::metainfo::check_tracker_url(&u).map_err(|e| {
                EngineError::BadTracker {
                    name: self.name().to_string(),
                    why: e.to_string(),
                }
            })?;
            if !list.contains(&u) {
                list.push(u);
            }
        }
        let tiers = regroup(&tiers, &list);
        let added = {
            let mut c = self.0.core.lock();
            *self.0.trackers.write() = list;
            *self.0.tracker_tiers.write() = tiers;
            retask(&self.0, &mut c)
        };
        for (url, task) in added {
            tokio::spawn(tracker_task(self.0.clone(), url, task));
        }
        Ok(())
    }

    /// The session's default trackers changed: the tasks follow them (a public torrent's).
    pub(crate) fn follow_default_trackers(&self) {
        let added = retask(&self.0, &mut self.0.core.lock());
        for (url, task) in added {
            tokio::spawn(tracker_task(self.0.clone(), url, task));
        }
    }
}

impl Torrent {
    /// The URLs it announces to: its own trackers, then those of the session's default trackers
    /// (Transmission's `default-trackers`) it lacks, when it is public (never a private one's,
    /// BEP 27).
    pub(crate) fn announce_list(&self) -> Vec<String> {
        let mut list = self.trackers.read().clone();
        if !self.meta.info.private {
            for url in self.ctx.default_trackers.read().iter().flatten() {
                if !list.contains(url) {
                    list.push(url.clone());
                }
            }
        }
        list
    }
}

/// Makes the tracker tasks of `c` those of `t`'s announce list (in one hold of the core lock,
/// `c`): the task of a tracker no longer in it is cancelled, and while the torrent announces a
/// tracker without a live task gets one, returned to be spawned (it announces `started` at
/// once). A tracker kept goes on as it was; calling it again changes nothing.
fn retask(t: &Torrent, c: &mut super::torrent::Core) -> Vec<(String, CancellationToken)> {
    let want = t.announce_list();
    c.tracker_tasks.retain(|url, task| {
        let keep = want.contains(url);
        if !keep {
            task.cancel();
        }
        keep
    });
    if !c.announcing {
        return Vec::new();
    }
    let missing: Vec<String> = want
        .into_iter()
        .filter(|u| c.tracker_tasks.get(u).is_none_or(|t| t.is_cancelled()))
        .collect();
    let tasks = tracker_tokens(&missing, &c.run);
    c.tracker_tasks.extend(tasks.clone());
    tasks.into_iter().collect()
}

/// A task token per tracker in `urls`, children of `run` (see `Core::tracker_tasks`).
pub(crate) fn tracker_tokens(
    urls: &[String],
    run: &CancellationToken,
) -> std::collections::HashMap<String, CancellationToken> {
    urls.iter()
        .map(|u| (u.clone(), run.child_token()))
        .collect()
}

async fn tracker_task(t: Arc<Torrent>, url: String, run: CancellationToken) {
    let mut schedule = AnnounceSchedule::with_backoff(t.ctx.cfg.tracker_backoff);
    let mut event = Some(AnnounceEvent::Started);
    let mut done = t.done_rx();
    let mut completed_sent = done.borrow().is_some();
    // A pause's `stopped` still on its way goes first.
    tokio::select! {
        _ = run.cancelled() => return,
        left = t.leaving.lock() => drop(left),
    }
    loop {
        tokio::select! {
            _ = run.cancelled() => return,
            _ = t.ctx.announce_turn() => {}
        }
        let served_port = (t.ctx.listening.moves(), t.ctx.outside_port());
        let req = request(&t, event, t.ctx.port_for_tracker(&url).await);
        let client = t.ctx.tracker.clone().with_retry(schedule.retry_policy());
        t.note_tracker(&url, |s| s.last_start = Some(SystemTime::now()));
        let served_asks = t.announce_asked.load(Ordering::Relaxed);
        let call = in_each_swarm(&t, &client, &url, &req, t.ctx.listen_addr().port());
        tokio::pin!(call);
        let slow = tokio::time::sleep(SLOW_TRACKER);
        tokio::pin!(slow);
        // A tracker already failing was warned about; one that answered before gets a word.
        let mut warned = schedule.is_failing();
        let r = loop {
            tokio::select! {
                _ = run.cancelled() => return,
                r = &mut call => break r,
                _ = &mut slow, if !warned => {
                    warned = true;
                    tracing::warn!(
                        torrent = %t.meta.info.name,
                        "tracker {} has not answered for {} s (still waiting)",
                        shown_url(&url),
                        SLOW_TRACKER.as_secs()
                    );
                }
            }
        };
        match r {
            Ok(resp) => {
                if schedule.is_failing() {
                    tracing::warn!("tracker {} answers again", shown_url(&url));
                }
                if let Some(w) = &resp.warning {
                    tracing::info!(tracker = %url, "warning: {w}");
                }
                let peers = resp.peers.iter().copied();
                t.add_known_in(t.info_hash(), peers, super::known::Source::Tracker);
                event = None;
                t.announced.fetch_add(1, Ordering::Relaxed);
                let next = schedule.succeeded(&resp);
                t.note_tracker(&url, |s| {
                    let now = SystemTime::now();
                    (s.last_done, s.next, s.last_ok) = (Some(now), Some(now + next), true);
                    s.last_result = "Success".into();
                    (s.last_peers, s.seeders, s.leechers) =
                        (resp.peers.len(), resp.complete, resp.incomplete);
                    (s.downloaded, s.downloaders) = (resp.downloaded, resp.downloaders);
                    s.answered += 1;
                });
            }
            Err(e) => {
                // Once per failure streak; the retries are quiet until the tracker answers again.
                if schedule.is_failing() {
                    tracing::debug!(torrent = %t.meta.info.name, "announce failed again: {e}");
                } else {
                    tracing::warn!(
                        torrent = %t.meta.info.name,
                        "announce failed: {e} (retrying with back-off; said again when it answers)"
                    );
                }
                let next = schedule.failed(&e);
                t.note_tracker(&url, |s| {
                    let now = SystemTime::now();
                    (s.last_done, s.next, s.last_ok) = (Some(now), Some(now + next), false);
                    s.last_result = btorrent_proto::text::shown(e.to_string().as_bytes(), 300);
                });
            }
        }
        // Wait for the next regular announce, or for a reason to announce sooner that the schedule
        // allows: `completed` to report (held back only by a failing tracker's back-off), or too few
        // peers (held back by the tracker's `min interval` too).
        loop {
            tokio::select! {
                _ = run.cancelled() => return,
                _ = tokio::time::sleep_until(look_at(&t, &schedule)) => {}
                r = done.changed(), if !completed_sent => {
                    if r.is_err() {
                        return;
                    }
                    // `completed` is for every piece: a torrent done with the files it wants is not.
                    let full = t.core.lock().picker.is_complete();
                    if full && matches!(*done.borrow(), Some(Ok(()))) {
                        completed_sent = true;
                        if t.downloaded.load(Ordering::Relaxed) > 0 && event.is_none() {
                            event = Some(AnnounceEvent::Completed);
                        }
                    }
                }
            }
            let now = Instant::now();
            let report = event == Some(AnnounceEvent::Completed) && !schedule.is_failing();
            let asked = t.announce_asked.load(Ordering::Relaxed) != served_asks;
            let early = event.is_none() && (asked || short_of_peers(&t));
            // The peer port moved, or the one the gateway forwards to it: the tracker is told at
            // once.
            let moved = (t.ctx.listening.moves(), t.ctx.outside_port()) != served_port;
            if report || moved || schedule.should_announce_at(now, early) {
                break;
            }
        }
    }
}

/// Announces `req` to `url` in each swarm the torrent is in ([`Metainfo::swarm_ids`]: a hybrid is
/// in its v1 and its v2 swarm, at once): the answer for the first, the torrent's `info_hash`, is
/// the tracker's (its interval, its counts, its failure); the peers of the other join the known
/// ones, its failure is only logged.
///
/// [`Metainfo::swarm_ids`]: btorrent_proto::metainfo::Metainfo::swarm_ids
async fn in_each_swarm(
    t: &Torrent,
    client: &TrackerClient,
    url: &str,
    req: &AnnounceRequest,
    listen_port: u16,
) -> std::result::Result<AnnounceResponse, TrackerError> {
    let first = client.announce_listening(url, req, listen_port);
    let Some(second) = t.meta.second_info_hash() else {
        return first.await;
    };
    let other = AnnounceRequest {
        info_hash: second,
        ..req.clone()
    };
    let (r, r2) = tokio::join!(first, client.announce_listening(url, &other, listen_port));
    match r2 {
        Ok(resp) => t.add_known_in(
            second,
            resp.peers.iter().copied(),
            super::known::Source::Tracker,
        ),
        Err(e) => tracing::debug!(
            torrent = %t.meta.info.name,
            "announce of the v2 swarm to {} failed: {e}",
            shown_url(url)
        ),
    }
    r
}

/// When the task looks again: the session's next tick ([`crate::session::SessionCtx::next_tick`],
/// shared by every torrent, so idle ones wake the runtime together), or sooner the moment the
/// schedule allows an announce (its `min interval` ends, the regular one is due), so an early
/// announce goes exactly when the tracker allows it.
fn look_at(t: &Torrent, schedule: &AnnounceSchedule) -> tokio::time::Instant {
    let tick = t.ctx.next_tick(LOOK_EVERY);
    let now = Instant::now();
    match schedule.next_change_after(now) {
        Some(at) if tokio::time::Instant::from_std(at) < tick => tokio::time::Instant::from_std(at),
        _ => tick,
    }
}

/// Tells every tracker we are leaving (one attempt each, once one announce succeeded), each in its
/// turn of the session's announces, `spacing` apart ([`crate::session::SessionCtx::announce_turn_every`]).
pub(crate) async fn announce_stopped(t: &Arc<Torrent>, spacing: Duration) {
    if t.stopped_announces() == 0 {
        return;
    }
    let client = t.ctx.tracker.clone().with_retry(RetryPolicy::none());
    let urls = t.announce_list();
    let calls = urls.iter().map(|url| {
        let client = client.clone();
        async move {
            let port = t.ctx.port_for_tracker(url).await;
            let req = request(t, Some(AnnounceEvent::Stopped), port);
            t.ctx.announce_turn_every(spacing).await;
            let listen_port = t.ctx.listen_addr().port();
            if let Err(e) = in_each_swarm(t, &client, url, &req, listen_port).await {
                tracing::debug!("stopped announce failed: {e}");
            }
        }
    });
    futures::future::join_all(calls).await;
}

#[cfg(test)]
mod tests {
    use super::regroup;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn trackers_keep_their_tiers_and_new_ones_get_their_own() {
        let tiers = vec![v(&["a", "b"]), v(&["c"]), v(&["d"])];
        assert_eq!(
            regroup(&tiers, &v(&["b", "a", "d"])),
            vec![v(&["a", "b"]), v(&["d"])]
        );
        assert_eq!(
            regroup(&tiers, &v(&["c", "e", "a"])),
            vec![v(&["a"]), v(&["c"]), v(&["e"])]
        );
        // A tracker named in two tiers counts in the first.
        let twice = vec![v(&["a"]), v(&["a", "b"])];
        assert_eq!(regroup(&twice, &v(&["a", "b"])), vec![v(&["a"]), v(&["b"])]);
        assert!(regroup(&tiers, &[]).is_empty());
    }
}
