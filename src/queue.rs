//! The download queue, Transmission's way. With `download_queue` on, at most
//! `download_queue_size` torrents download at once; the others wait their turn, recorded `queued`
//! in torrents.toml and paused in the engine (a waiting torrent's data is still checked, so one
//! found complete seeds at once instead of waiting). The queue's order is the order of
//! torrents.toml's entries: `queue-move-*` reorders them ([`crate::actions::queue_move`]), and a
//! new torrent joins at the end.
//!
//! One task ([`spawn`], started with the services) looks every [`LOOK_EVERY`], and as soon as a
//! torrent is added, completes or goes, at every torrent that downloads or waits, in queue order
//! ([`DownloadQueue::plan`]):
//!
//! - a torrent the queue has let in keeps its place while it downloads (lowering the size stops
//!   nothing); one that moved no byte for `queue_stalled_minutes` goes on downloading but no longer
//!   holds a place, so the next one starts;
//! - a torrent that downloads without the queue's leave (one a hand edit of torrents.toml makes
//!   `downloading`) is let in while there is a place, else queued; a daemon or shell that starts lets its first downloads, up to the size, download
//!   again and records the rest `queued` before adding them ([`hold_surplus`]);
//! - then, while there is a place, the first waiting torrent starts;
//! - a waiting torrent whose data turned out complete starts (it seeds);
//! - a torrent started with `torrent-start-now` ([`DownloadQueue::force`]) downloads outside the
//!   queue and takes no place, until it stops downloading;
//! - with the queue off, every waiting torrent starts.
//!
//! Who changes what: a torrent added or resumed while a task keeps the queue is recorded `queued`
//! and added or left paused ([`crate::actions::add`], [`crate::actions::resume`]), so it contacts
//! no peer before its turn; this task starts waiting torrents ([`crate::actions::dequeue`]) and
//! queues downloads that started without it ([`crate::actions::enqueue`]); a one-shot command
//! that resumes a download the shell or daemon runs records it `queued` there and leaves it paused,
//! for that process's queue to start; a user's pause takes a torrent
//! out of the queue (`paused`). Each change re-reads the entry under torrents.toml's lock, so a
//! pause made while the task looked is never undone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::actions::{self, QueueMove, QUEUED};
use crate::config::{ManagedTorrent, Settings};
use crate::engine::{TorrentState, TorrentStats};
use crate::events::{Event, EventBus};
use crate::services::PeerSlot;
use crate::types::InfoHash;

/// How often the queue looks at the torrents when nothing wakes it sooner.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

/// A torrent that downloads or waits, as the queue sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub info_hash: InfoHash,
    /// torrents.toml says `queued`.
    pub queued: bool,
    /// Its engine state.
    pub state: TorrentState,
    /// Nothing it wants is missing (every wanted piece verified).
    pub complete: bool,
    /// Bytes downloaded in this run.
    pub downloaded: u64,
}

impl Candidate {
    /// The torrent in queue terms, if the queue has a say over it: an entry `downloading` (or
    /// `queued`) that runs in the session, or any entry whose torrent downloads.
    pub fn of(entry: &ManagedTorrent, stats: &TorrentStats) -> Option<Candidate> {
        let info_hash = entry.hash()?;
        let queued = entry.state == QUEUED;
        let concerned = queued
            || stats.state == TorrentState::Downloading
            || (entry.state == "downloading" && stats.state == TorrentState::Checking);
        concerned.then(|| Candidate {
            info_hash,
            queued,
            state: stats.state.clone(),
            // Pieces count as missing until verified, so nothing left means checked and complete.
            complete: stats.bytes_left == 0,
            downloaded: stats.downloaded,
        })
    }

    /// Downloading, or checking before it downloads: what takes a place.
    fn runs(&self) -> bool {
        matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Checking
        )
    }
}

/// What the queue does to one torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Stop it and record it `queued`.
    Queue(InfoHash),
    /// Start it: its turn came, or it has nothing to download.
    Start(InfoHash),
}

/// The queue's rules of the moment, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// How many may download at once; `None`: the queue is off.
    pub size: Option<usize>,
    /// How long a download may move nothing and still hold its place; `None`: however long.
    pub stalled_after: Option<Duration>,
}

impl Rules {
    pub fn of(settings: &Settings) -> Rules {
        Rules {
            size: settings.download_queue_limit(),
            stalled_after: settings.queue_stalled_after(),
        }
    }
}

/// A download the queue let in: its counter when last seen, and since when it has not moved.
#[derive(Debug, Clone, Copy)]
struct Place {
    downloaded: u64,
    moved_at: Instant,
}

#[derive(Debug, Default)]
struct QueueState {
    /// A task ([`spawn`]) keeps this queue.
    kept: bool,
    admitted: HashMap<InfoHash, Place>,
    /// Started outside the queue, and when: kept while it runs, and for [`FORCE_GRACE`] after it
    /// was forced (it may not have started yet).
    forced: HashMap<InfoHash, Instant>,
}

/// How long a forced torrent counts as forced before it is seen downloading.
const FORCE_GRACE: Duration = Duration::from_secs(10);

/// The queue's memory: which downloads it let in (and how they move), and which were started
/// outside it. Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct DownloadQueue {
    state: Arc<Mutex<QueueState>>,
}

impl DownloadQueue {
    /// Whether downloads go through this queue now: a task keeps it (the shell or daemon's) and
    /// `settings` turn it on. A one-shot command's process keeps none.
    pub fn holds_downloads(&self, settings: &Settings) -> bool {
        settings.download_queue && self.state.lock().kept
    }

    /// `ih` downloads outside the queue (`torrent-start-now`) until it stops downloading.
    pub fn force(&self, ih: InfoHash) {
        self.state.lock().forced.insert(ih, Instant::now());
    }

    /// What to do now, given every torrent that downloads or waits, in queue order (see the module
    /// doc for the rules).
    pub fn plan(&self, torrents: &[Candidate], rules: Rules, now: Instant) -> Vec<Step> {
        let mut st = self.state.lock();
        let QueueState {
            admitted, forced, ..
        } = &mut *st;
        forced.retain(|ih, at| {
            now.saturating_duration_since(*at) < FORCE_GRACE
                || torrents.iter().any(|c| c.info_hash == *ih && c.runs())
        });
        let mut steps = Vec::new();
        let mut kept = HashMap::new();
        let mut taken = 0;
        for c in torrents.iter().filter(|c| c.runs() && !c.queued) {
            let Some(p) = admitted.get(&c.info_hash) else {
                continue;
            };
            let mut p = *p;
            if p.downloaded != c.downloaded {
                p = Place {
                    downloaded: c.downloaded,
                    moved_at: now,
                };
            }
            let stalled = c.state == TorrentState::Downloading
                && rules
                    .stalled_after
                    .is_some_and(|d| now.duration_since(p.moved_at) >= d);
            if !stalled && !forced.contains_key(&c.info_hash) {
                taken += 1;
            }
            kept.insert(c.info_hash, p);
        }
        let has_place = |taken: usize| rules.size.is_none_or(|n| taken < n);
        let fresh = |c: &Candidate| Place {
            downloaded: c.downloaded,
            moved_at: now,
        };
        let undecided = |c: &&Candidate, kept: &HashMap<InfoHash, Place>| {
            !kept.contains_key(&c.info_hash) && !forced.contains_key(&c.info_hash)
        };
        // Downloads started without the queue's leave (added, resumed, or every download of a
        // daemon that just started) first: what ran keeps running where there is a place.
        for c in torrents.iter().filter(|c| c.runs()) {
            if !undecided(&c, &kept) {
                continue;
            }
            if has_place(taken) {
                kept.insert(c.info_hash, fresh(c));
                taken += 1;
            } else {
                steps.push(Step::Queue(c.info_hash));
            }
        }
        // Then the waiting ones, in queue order.
        for c in torrents
            .iter()
            .filter(|c| c.queued && c.state == TorrentState::Paused)
        {
            if !undecided(&c, &kept) {
                continue;
            }
            if c.complete {
                steps.push(Step::Start(c.info_hash));
            } else if has_place(taken) {
                steps.push(Step::Start(c.info_hash));
                kept.insert(c.info_hash, fresh(c));
                taken += 1;
            }
        }
        *admitted = kept;
        steps
    }
}

/// The one word for a running torrent's state, as front ends show it: the engine's, but `queued`
/// for a torrent the download queue paused (torrents.toml says `queued`).
pub fn state_word<'a>(engine: &'a TorrentState, entry_state: Option<&str>) -> &'a str {
    match (engine, entry_state) {
        (TorrentState::Paused, Some(QUEUED)) => QUEUED,
        _ => engine.word(),
    }
}

/// Reorders `entries` for `queue-move-*`: those `picked` (same length) go to the top or bottom in
/// their own order, or one place up or down (a run of picked entries moving as one), or to a
/// given place (the first picked there, the others after it, in their order).
pub fn reorder<T>(entries: &mut Vec<T>, picked: &[bool], to: QueueMove) {
    debug_assert_eq!(entries.len(), picked.len());
    let mut tagged: Vec<(bool, T)> = picked.iter().copied().zip(entries.drain(..)).collect();
    match to {
        QueueMove::Top => tagged.sort_by_key(|(p, _)| !*p),
        QueueMove::Bottom => tagged.sort_by_key(|(p, _)| *p),
        QueueMove::Up => {
            for i in 1..tagged.len() {
                if tagged[i].0 && !tagged[i - 1].0 {
                    tagged.swap(i - 1, i);
                }
            }
        }
        QueueMove::Down => {
            for i in (0..tagged.len().saturating_sub(1)).rev() {
                if tagged[i].0 && !tagged[i + 1].0 {
                    tagged.swap(i, i + 1);
                }
            }
        }
        QueueMove::To(place) => {
            let (moved, mut rest): (Vec<_>, Vec<_>) = tagged.into_iter().partition(|(p, _)| *p);
            let at = place.min(rest.len());
            rest.splice(at..at, moved);
            tagged = rest;
        }
    }
    entries.extend(tagged.into_iter().map(|(_, t)| t));
}

/// Before a shell or daemon adds its torrents: with the queue on, the `downloading` entries past
/// its size, in queue order, are recorded `queued` (the first ones keep downloading, as they did
/// before the restart). They are then added paused and contact no tracker or peer before their
/// turn, rather than starting and being held a moment later. Returns the names queued.
pub fn hold_surplus(cfg: &mut crate::config::Config) -> Vec<String> {
    let Some(size) = cfg.settings.download_queue_limit() else {
        return Vec::new();
    };
    cfg.torrents
        .iter_mut()
        .filter(|e| e.state == "downloading")
        .skip(size)
        .map(|e| {
            e.state = QUEUED.into();
            e.name.clone()
        })
        .collect()
}

/// Starts the one task that keeps the queue of every torrent `peer`'s session runs; it runs until
/// aborted or the runtime stops.
pub fn spawn(peer: PeerSlot, bus: EventBus) -> JoinHandle<()> {
    /// Marks the queue kept for as long as the task lives (dropped with it when aborted).
    struct Keeping(DownloadQueue);
    impl Drop for Keeping {
        fn drop(&mut self) {
            self.0.state.lock().kept = false;
        }
    }
    let queue = peer.queue().clone();
    queue.state.lock().kept = true;
    let keeping = Keeping(queue);
    tokio::spawn(async move {
        let _keeping = keeping;
        run(peer, bus).await
    })
}

async fn run(peer: PeerSlot, bus: EventBus) {
    let mut events = bus.subscribe();
    let mut looks = peer.torrents().looks(LOOK_EVERY);
    loop {
        tokio::select! {
            alive = looks.next() => if !alive { return },
            ev = events.recv() => match ev {
                Ok(Event::Engine(
                    crate::engine::Event::Added { .. }
                    | crate::engine::Event::Completed { .. }
                    | crate::engine::Event::Removed { .. },
                )) => {}
                Ok(_) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        }
        let p = peer.clone();
        if tokio::task::spawn_blocking(move || look(&p)).await.is_err() {
            return;
        }
    }
}

/// One look: the plan for the torrents as they are now, carried out.
fn look(peer: &PeerSlot) {
    let (Some(session), Ok(cfg)) = (peer.current(), peer.torrents().config()) else {
        return;
    };
    let torrents: Vec<Candidate> = cfg
        .torrents
        .iter()
        .filter_map(|e| {
            let h = session.get(&e.hash()?)?;
            Candidate::of(e, &h.stats())
        })
        .collect();
    let name = |ih: &InfoHash| cfg.find(ih).map_or(String::new(), |e| e.name.clone());
    for step in peer
        .queue()
        .plan(&torrents, Rules::of(&cfg.settings), Instant::now())
    {
        let done = match step {
            Step::Queue(ih) => actions::enqueue(peer.torrents(), peer, &ih, &name(&ih))
                .map(|q| q.then(|| format!("{}: queued: the download queue is full", name(&ih)))),
            Step::Start(ih) => actions::dequeue(peer.torrents(), peer, &ih, &name(&ih))
                .map(|s| s.then(|| format!("{}: started from the download queue", name(&ih)))),
        };
        match done {
            Ok(Some(what)) => tracing::info!("{what}"),
            Ok(None) => {}
            Err(e) => tracing::warn!("the download queue: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ih(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    fn c(n: u8, queued: bool, state: TorrentState) -> Candidate {
        Candidate {
            info_hash: ih(n),
            queued,
            state,
            complete: false,
            downloaded: 0,
        }
    }

    fn rules(size: Option<usize>) -> Rules {
        Rules {
            size,
            stalled_after: Some(Duration::from_secs(60)),
        }
    }

    use TorrentState::{Checking, Downloading, Paused};

    #[test]
    fn newcomers_are_let_in_in_queue_order_while_there_is_a_place() {
        let q = DownloadQueue::default();
        let now = Instant::now();
        let all = [
            c(1, false, Downloading),
            c(2, false, Checking),
            c(3, false, Downloading),
        ];
        assert_eq!(
            q.plan(&all, rules(Some(2)), now),
            [Step::Queue(ih(3))],
            "the third has no place"
        );
        // Queued, it waits; the two let in keep their places.
        let all = [
            c(1, false, Downloading),
            c(2, false, Downloading),
            c(3, true, Paused),
        ];
        assert!(q.plan(&all, rules(Some(2)), now).is_empty());
        // A lower size stops nothing; one that finishes frees a place only once below the size.
        assert!(q.plan(&all, rules(Some(1)), now).is_empty());
        let all = [c(2, false, Downloading), c(3, true, Paused)];
        assert!(q.plan(&all, rules(Some(1)), now).is_empty());
        assert_eq!(q.plan(&all[1..], rules(Some(1)), now), [Step::Start(ih(3))]);
    }

    #[test]
    fn waiting_torrents_start_in_queue_order_and_all_start_without_a_queue() {
        let q = DownloadQueue::default();
        let now = Instant::now();
        let all = [c(5, true, Paused), c(4, true, Paused), c(6, true, Paused)];
        assert_eq!(
            q.plan(&all, rules(Some(2)), now),
            [Step::Start(ih(5)), Step::Start(ih(4))]
        );
        let q = DownloadQueue::default();
        assert_eq!(
            q.plan(&all, rules(None), now),
            [Step::Start(ih(5)), Step::Start(ih(4)), Step::Start(ih(6))]
        );
        // A waiting torrent found complete starts (to seed) without taking a place.
        let q = DownloadQueue::default();
        let mut done = c(7, true, Paused);
        done.complete = true;
        let all = [c(1, false, Downloading), done, c(8, true, Paused)];
        assert_eq!(q.plan(&all, rules(Some(1)), now), [Step::Start(ih(7))]);
    }

    #[test]
    fn a_stalled_download_frees_its_place_and_a_forced_one_takes_none() {
        let q = DownloadQueue::default();
        let t0 = Instant::now();
        let mut one = c(1, false, Downloading);
        let all = [one.clone(), c(2, true, Paused)];
        assert!(q.plan(&all, rules(Some(1)), t0).is_empty());
        // Moving, it holds its place past the stall time.
        one.downloaded = 100;
        let all = [one.clone(), c(2, true, Paused)];
        assert!(q
            .plan(&all, rules(Some(1)), t0 + Duration::from_secs(50))
            .is_empty());
        assert!(q
            .plan(&all, rules(Some(1)), t0 + Duration::from_secs(100))
            .is_empty());
        // Still for 60 s: the next one starts, and the stalled one goes on.
        assert_eq!(
            q.plan(&all, rules(Some(1)), t0 + Duration::from_secs(111)),
            [Step::Start(ih(2))]
        );
        // Forced: downloads beside a full queue without being queued or taking a place.
        let q = DownloadQueue::default();
        q.force(ih(9));
        let all = [c(9, false, Downloading), c(1, false, Downloading)];
        assert!(q.plan(&all, rules(Some(1)), t0).is_empty());
        // Once it stops downloading (after the grace a forced start has to begin) it is an
        // ordinary torrent again.
        let later = t0 + FORCE_GRACE + Duration::from_secs(1);
        assert!(q.plan(&all[1..], rules(Some(1)), later).is_empty());
        assert_eq!(q.plan(&all, rules(Some(1)), later), [Step::Queue(ih(9))]);
    }

    #[test]
    fn queue_moves_keep_the_picked_torrents_order() {
        let moved = |to: QueueMove, picked: [bool; 5]| {
            let mut v = vec!['a', 'b', 'c', 'd', 'e'];
            reorder(&mut v, &picked, to);
            v.into_iter().collect::<String>()
        };
        let p = [false, true, false, true, false];
        assert_eq!(moved(QueueMove::Top, p), "bdace");
        assert_eq!(moved(QueueMove::Bottom, p), "acebd");
        assert_eq!(moved(QueueMove::Up, p), "badce");
        assert_eq!(moved(QueueMove::Down, p), "acbed");
        assert_eq!(moved(QueueMove::To(0), p), "bdace");
        assert_eq!(moved(QueueMove::To(2), p), "acbde");
        assert_eq!(moved(QueueMove::To(9), p), "acebd");
        let run = [false, false, true, true, false];
        assert_eq!(moved(QueueMove::Up, run), "acdbe");
        assert_eq!(moved(QueueMove::Down, run), "abecd");
        assert_eq!(
            moved(QueueMove::Up, [true, false, false, false, false]),
            "abcde"
        );
        assert_eq!(
            moved(QueueMove::Down, [false, false, false, false, true]),
            "abcde"
        );
    }
}
