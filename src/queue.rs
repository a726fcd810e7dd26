//! The download and seeding queues, Transmission's way. With `download_queue` on, at most
//! `download_queue_size` torrents download at once; with `seed_queue` on, at most
//! `seed_queue_size` complete torrents seed at once. The others wait their turn, recorded `queued`
//! in torrents.toml and paused in the engine (a waiting torrent's data is still checked: one found
//! complete waits in the seeding queue, or seeds at once when that queue is off). Both queues
//! have one order, the order of torrents.toml's entries: `queue-move-*` reorders them
//! ([`crate::actions::queue_move`]), and a new torrent joins at the end. A torrent stands in the
//! queue of its [`Direction`]: the download queue while something it wants is missing, the seeding
//! queue once it has everything.
//!
//! One task ([`spawn`], started with the services) looks every [`LOOK_EVERY`], and as soon as a
//! torrent is added, completes or goes, at every torrent that runs or waits, in queue order
//! ([`TorrentQueue::plan`]), each queue on its own:
//!
//! - a torrent the queue has let in keeps its place while it runs (lowering the size stops
//!   nothing); one that moved no byte (downloaded by a download, uploaded by a seed) for
//!   `queue_stalled_minutes` goes on but no longer holds a place, so the next one starts;
//! - a torrent that runs without its queue's leave (one a hand edit of torrents.toml makes
//!   `downloading`) is let in while there is a place, else queued; a daemon or shell that starts
//!   lets its first downloads and seeds, up to each size, run again and records the rest `queued`
//!   before adding them ([`hold_surplus`]);
//! - a download the queue let in that completes goes on seeding, as in Transmission: it takes a
//!   seeding place, past the size if none is free (then no waiting seed starts until the seeds
//!   are below the size again);
//! - then, while there is a place, the first waiting torrent starts;
//! - a torrent started with `torrent-start-now` ([`TorrentQueue::force`]) runs outside the queues
//!   and takes no place, until it stops running;
//! - with a queue off, every torrent waiting in it starts.
//!
//! Who changes what: a torrent added or resumed while a task keeps its queue is recorded `queued`
//! and added or left paused ([`crate::actions::add`], [`crate::actions::resume`]), so it contacts
//! no peer before its turn; this task starts waiting torrents ([`crate::actions::dequeue`]) and
//! queues those that started without it ([`crate::actions::enqueue`]); a one-shot command
//! that resumes a torrent the shell or daemon runs records it `queued` there and leaves it paused,
//! for that process's queue to start; a user's pause takes a torrent out of the queue (`paused`).
//! Each change re-reads the entry under torrents.toml's lock, so a pause made while the task
//! looked is never undone.

use std::collections::{HashMap, HashSet};
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

/// Which queue a torrent stands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Something it wants is missing: the download queue.
    Download,
    /// It has everything it wants: the seeding queue.
    Seed,
}

impl Direction {
    const BOTH: [Direction; 2] = [Direction::Download, Direction::Seed];

    /// The queue's name, as messages say it.
    pub fn queue_name(self) -> &'static str {
        match self {
            Direction::Download => "the download queue",
            Direction::Seed => "the seeding queue",
        }
    }

    /// Where a torrent of `stats` stands: seeding, or checked with nothing it wants left, is the
    /// seeding queue's; downloading, or checked with something left, the download queue's. `None`
    /// while its data check has not ended: it may turn out either.
    pub fn of(stats: &TorrentStats) -> Option<Direction> {
        match stats.state {
            TorrentState::Seeding => Some(Direction::Seed),
            TorrentState::Downloading => Some(Direction::Download),
            TorrentState::Checking => None,
            _ if !stats.checked => None,
            _ if stats.bytes_left == 0 => Some(Direction::Seed),
            _ => Some(Direction::Download),
        }
    }
}

/// A torrent that runs or waits, as the queues see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub info_hash: InfoHash,
    /// torrents.toml says `queued`.
    pub queued: bool,
    /// Its engine state.
    pub state: TorrentState,
    /// The queue it stands in; `None` for a waiting torrent whose data check has not ended (no
    /// queue starts it before it is known to be a download or a seed).
    pub direction: Option<Direction>,
    /// Bytes it moved in this run, in its direction: downloaded by a download, uploaded by a seed.
    pub moved: u64,
}

impl Candidate {
    /// The torrent in queue terms, if a queue has a say over it: an entry `downloading`, `seeding`
    /// (or `queued`) that runs in the session, or any entry whose torrent downloads or seeds.
    pub fn of(entry: &ManagedTorrent, stats: &TorrentStats) -> Option<Candidate> {
        let info_hash = entry.hash()?;
        let queued = entry.state == QUEUED;
        let checking_to_run = stats.state == TorrentState::Checking
            && (entry.state == "downloading" || entry.state == "seeding");
        let concerned = queued
            || matches!(
                stats.state,
                TorrentState::Downloading | TorrentState::Seeding
            )
            || checking_to_run;
        // A check before it runs takes a place in the queue it will most likely be in.
        let direction = match stats.state {
            TorrentState::Checking if entry.state == "seeding" => Some(Direction::Seed),
            TorrentState::Checking if !queued => Some(Direction::Download),
            _ => Direction::of(stats),
        };
        concerned.then(|| Candidate {
            info_hash,
            queued,
            state: stats.state.clone(),
            direction,
            moved: match direction {
                Some(Direction::Seed) => stats.uploaded,
                _ => stats.downloaded,
            },
        })
    }

    /// Downloading, seeding, or checking before it runs: what takes a place.
    fn runs(&self) -> bool {
        matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding | TorrentState::Checking
        )
    }

    /// Moving bytes, rather than checking: what can stall.
    fn transfers(&self) -> bool {
        matches!(
            self.state,
            TorrentState::Downloading | TorrentState::Seeding
        )
    }
}

/// What a queue does to one torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Stop it and record it `queued` in this queue.
    Queue(Direction, InfoHash),
    /// Start it: its turn came in this queue.
    Start(Direction, InfoHash),
}

/// The queues' rules of the moment, from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// How many may download at once; `None`: the download queue is off.
    pub downloads: Option<usize>,
    /// How many may seed at once; `None`: the seeding queue is off.
    pub seeds: Option<usize>,
    /// How long a torrent may move nothing and still hold its place; `None`: however long.
    pub stalled_after: Option<Duration>,
}

impl Rules {
    pub fn of(settings: &Settings) -> Rules {
        Rules {
            downloads: settings.download_queue_limit(),
            seeds: settings.seed_queue_limit(),
            stalled_after: settings.queue_stalled_after(),
        }
    }

    /// The size of `direction`'s queue; `None` while it is off.
    pub fn size(&self, direction: Direction) -> Option<usize> {
        match direction {
            Direction::Download => self.downloads,
            Direction::Seed => self.seeds,
        }
    }
}

/// A torrent a queue let in: its counter when last seen, and since when it has not moved.
#[derive(Debug, Clone, Copy)]
struct Place {
    moved: u64,
    moved_at: Instant,
}

/// The torrents one queue let in.
type Places = HashMap<InfoHash, Place>;

#[derive(Debug, Default)]
struct QueueState {
    /// A task ([`spawn`]) keeps the queues.
    kept: bool,
    /// Let in by the download queue.
    downloads: Places,
    /// Let in by the seeding queue.
    seeds: Places,
    /// Started outside the queues, and when: kept while it runs, and for [`FORCE_GRACE`] after it
    /// was forced (it may not have started yet).
    forced: HashMap<InfoHash, Instant>,
}

/// How long a forced torrent counts as forced before it is seen running.
const FORCE_GRACE: Duration = Duration::from_secs(10);

/// The queues' memory: which torrents each let in (and how they move), and which were started
/// outside them. Cheap to clone; clones share it.
#[derive(Debug, Clone, Default)]
pub struct TorrentQueue {
    state: Arc<Mutex<QueueState>>,
}

impl TorrentQueue {
    /// Whether torrents of `direction` go through their queue now: a task keeps the queues (the
    /// shell or daemon's) and `settings` turn that one on. A one-shot command's process keeps
    /// none.
    pub fn holds(&self, settings: &Settings, direction: Direction) -> bool {
        Rules::of(settings).size(direction).is_some() && self.state.lock().kept
    }

    /// Whether a torrent added now waits in a queue (recorded `queued`, added paused): while the
    /// seeding queue is held, or the download queue for one to download. A download may turn out
    /// complete once checked, so it waits for the check whichever queue is held.
    pub fn holds_new(&self, settings: &Settings, downloads: bool) -> bool {
        self.holds(settings, Direction::Seed)
            || (downloads && self.holds(settings, Direction::Download))
    }

    /// `ih` runs outside the queues (`torrent-start-now`) until it stops running.
    pub fn force(&self, ih: InfoHash) {
        self.state.lock().forced.insert(ih, Instant::now());
    }

    /// What to do now, given every torrent that runs or waits, in queue order (see the module doc
    /// for the rules): the download queue's steps, then the seeding queue's.
    pub fn plan(&self, torrents: &[Candidate], rules: Rules, now: Instant) -> Vec<Step> {
        let mut st = self.state.lock();
        let QueueState {
            downloads,
            seeds,
            forced,
            ..
        } = &mut *st;
        forced.retain(|ih, at| {
            now.saturating_duration_since(*at) < FORCE_GRACE
                || torrents.iter().any(|c| c.info_hash == *ih && c.runs())
        });
        let mut steps = Vec::new();
        // Downloads the queue let in, as last seen: one of them that now seeds has just completed.
        let were_downloading: HashSet<InfoHash> = downloads.keys().copied().collect();
        let none = HashSet::new();
        for direction in Direction::BOTH {
            let places = match direction {
                Direction::Download => &mut *downloads,
                Direction::Seed => &mut *seeds,
            };
            let line = Line {
                direction,
                size: rules.size(direction),
                stalled_after: rules.stalled_after,
                forced,
                carried: match direction {
                    Direction::Download => &none,
                    Direction::Seed => &were_downloading,
                },
                now,
            };
            let mine: Vec<&Candidate> = torrents
                .iter()
                .filter(|c| c.direction == Some(direction))
                .collect();
            *places = line.plan(&mine, places, &mut steps);
        }
        steps
    }
}

/// One queue's look.
struct Line<'a> {
    direction: Direction,
    size: Option<usize>,
    stalled_after: Option<Duration>,
    forced: &'a HashMap<InfoHash, Instant>,
    /// Torrents that come into this queue running and go on running, a place or not (a download
    /// that just completed, in the seeding queue): they take a place, past the size if need be.
    carried: &'a HashSet<InfoHash>,
    now: Instant,
}

impl Line<'_> {
    /// The steps for `torrents` (this queue's, in queue order), given the places it had; returns
    /// the places it has now.
    fn plan(&self, torrents: &[&Candidate], had: &Places, steps: &mut Vec<Step>) -> Places {
        let mut kept = Places::new();
        let mut taken = 0;
        for c in torrents.iter().filter(|c| c.runs() && !c.queued) {
            let Some(p) = had.get(&c.info_hash) else {
                continue;
            };
            let mut p = *p;
            if p.moved != c.moved {
                p = Place {
                    moved: c.moved,
                    moved_at: self.now,
                };
            }
            let stalled = c.transfers()
                && self
                    .stalled_after
                    .is_some_and(|d| self.now.duration_since(p.moved_at) >= d);
            if !stalled && !self.forced.contains_key(&c.info_hash) {
                taken += 1;
            }
            kept.insert(c.info_hash, p);
        }
        let has_place = |taken: usize| self.size.is_none_or(|n| taken < n);
        let fresh = |c: &Candidate| Place {
            moved: c.moved,
            moved_at: self.now,
        };
        let undecided = |c: &Candidate, kept: &Places| {
            !kept.contains_key(&c.info_hash) && !self.forced.contains_key(&c.info_hash)
        };
        // Torrents that run without the queue's leave (added, resumed, completed, or every one of
        // a daemon that just started) first: what ran keeps running where there is a place.
        for c in torrents.iter().filter(|c| c.runs()) {
            if !undecided(c, &kept) {
                continue;
            }
            if has_place(taken) || self.carried.contains(&c.info_hash) {
                kept.insert(c.info_hash, fresh(c));
                taken += 1;
            } else {
                steps.push(Step::Queue(self.direction, c.info_hash));
            }
        }
        // Then the waiting ones, in queue order.
        for c in torrents
            .iter()
            .filter(|c| c.queued && c.state == TorrentState::Paused)
        {
            if undecided(c, &kept) && has_place(taken) {
                steps.push(Step::Start(self.direction, c.info_hash));
                kept.insert(c.info_hash, fresh(c));
                taken += 1;
            }
        }
        kept
    }
}

/// The one word for a running torrent's state, as front ends show it: the engine's, but `queued`
/// for a torrent a queue paused (torrents.toml says `queued`).
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

/// Before a shell or daemon adds its torrents: with a queue on, the entries past its size, in
/// queue order, are recorded `queued` (`downloading` ones past the download queue's, `seeding`
/// ones past the seeding queue's; the first ones run on, as they did before the restart). They
/// are then added paused and contact no tracker or peer before their turn, rather than starting
/// and being held a moment later. Returns the names queued.
pub fn hold_surplus(cfg: &mut crate::config::Config) -> Vec<String> {
    let rules = Rules::of(&cfg.settings);
    let mut held = Vec::new();
    for (state, direction) in [
        ("downloading", Direction::Download),
        ("seeding", Direction::Seed),
    ] {
        let Some(size) = rules.size(direction) else {
            continue;
        };
        for e in cfg
            .torrents
            .iter_mut()
            .filter(|e| e.state == state)
            .skip(size)
        {
            e.state = QUEUED.into();
            held.push(e.name.clone());
        }
    }
    held
}

/// Starts the one task that keeps the queues of every torrent `peer`'s session runs; it runs until
/// aborted or the runtime stops.
pub fn spawn(peer: PeerSlot, bus: EventBus) -> JoinHandle<()> {
    /// Marks the queue kept for as long as the task lives (dropped with it when aborted).
    struct Keeping(TorrentQueue);
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
            Step::Queue(d, ih) => actions::enqueue(peer.torrents(), peer, &ih, &name(&ih))
                .map(|q| q.then(|| format!("{}: queued: {} is full", name(&ih), d.queue_name())))
                .map_err(|e| (d, e)),
            Step::Start(d, ih) => actions::dequeue(peer.torrents(), peer, &ih, &name(&ih))
                .map(|s| s.then(|| format!("{}: started from {}", name(&ih), d.queue_name())))
                .map_err(|e| (d, e)),
        };
        match done {
            Ok(Some(what)) => tracing::info!("{what}"),
            Ok(None) => {}
            Err((d, e)) => tracing::warn!("{}: {e:#}", d.queue_name()),
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
            direction: Some(match state {
                Seeding => Seed,
                _ => Download,
            }),
            state,
            moved: 0,
        }
    }

    /// A complete torrent waiting in the seeding queue.
    fn waiting_seed(n: u8) -> Candidate {
        Candidate {
            direction: Some(Seed),
            ..c(n, true, Paused)
        }
    }

    fn rules(downloads: Option<usize>) -> Rules {
        Rules {
            downloads,
            seeds: None,
            stalled_after: Some(Duration::from_secs(60)),
        }
    }

    fn seed_rules(seeds: Option<usize>) -> Rules {
        Rules {
            seeds,
            ..rules(None)
        }
    }

    use Direction::{Download, Seed};
    use TorrentState::{Checking, Downloading, Paused, Seeding};

    #[test]
    fn newcomers_are_let_in_in_queue_order_while_there_is_a_place() {
        let q = TorrentQueue::default();
        let now = Instant::now();
        let all = [
            c(1, false, Downloading),
            c(2, false, Checking),
            c(3, false, Downloading),
        ];
        assert_eq!(
            q.plan(&all, rules(Some(2)), now),
            [Step::Queue(Download, ih(3))],
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
        assert_eq!(
            q.plan(&all[1..], rules(Some(1)), now),
            [Step::Start(Download, ih(3))]
        );
    }

    #[test]
    fn waiting_torrents_start_in_queue_order_and_all_start_without_a_queue() {
        let q = TorrentQueue::default();
        let now = Instant::now();
        let all = [c(5, true, Paused), c(4, true, Paused), c(6, true, Paused)];
        assert_eq!(
            q.plan(&all, rules(Some(2)), now),
            [Step::Start(Download, ih(5)), Step::Start(Download, ih(4))]
        );
        let q = TorrentQueue::default();
        assert_eq!(
            q.plan(&all, rules(None), now),
            [
                Step::Start(Download, ih(5)),
                Step::Start(Download, ih(4)),
                Step::Start(Download, ih(6))
            ]
        );
        // A waiting torrent found complete starts (to seed) without taking a place.
        let q = TorrentQueue::default();
        let all = [
            c(1, false, Downloading),
            waiting_seed(7),
            c(8, true, Paused),
        ];
        assert_eq!(
            q.plan(&all, rules(Some(1)), now),
            [Step::Start(Seed, ih(7))]
        );
    }

    #[test]
    fn a_stalled_download_frees_its_place_and_a_forced_one_takes_none() {
        let q = TorrentQueue::default();
        let t0 = Instant::now();
        let mut one = c(1, false, Downloading);
        let all = [one.clone(), c(2, true, Paused)];
        assert!(q.plan(&all, rules(Some(1)), t0).is_empty());
        // Moving, it holds its place past the stall time.
        one.moved = 100;
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
            [Step::Start(Download, ih(2))]
        );
        // Forced: downloads beside a full queue without being queued or taking a place.
        let q = TorrentQueue::default();
        q.force(ih(9));
        let all = [c(9, false, Downloading), c(1, false, Downloading)];
        assert!(q.plan(&all, rules(Some(1)), t0).is_empty());
        // Once it stops downloading (after the grace a forced start has to begin) it is an
        // ordinary torrent again.
        let later = t0 + FORCE_GRACE + Duration::from_secs(1);
        assert!(q.plan(&all[1..], rules(Some(1)), later).is_empty());
        assert_eq!(
            q.plan(&all, rules(Some(1)), later),
            [Step::Queue(Download, ih(9))]
        );
    }

    #[test]
    fn the_seeding_queue_lets_seeds_in_on_its_own_and_a_completed_download_seeds_on() {
        let q = TorrentQueue::default();
        let t0 = Instant::now();
        // Two places: the first two seeds run, the third is queued; a waiting one waits.
        let all = [
            c(1, false, Seeding),
            c(2, false, Seeding),
            c(3, false, Seeding),
            waiting_seed(4),
        ];
        assert_eq!(
            q.plan(&all, seed_rules(Some(2)), t0),
            [Step::Queue(Seed, ih(3))]
        );
        // A full seeding queue holds no download back, and a full download queue no seed.
        let all = [
            c(1, false, Seeding),
            c(2, false, Seeding),
            c(5, false, Downloading),
            waiting_seed(3),
            waiting_seed(4),
        ];
        let both = Rules {
            downloads: Some(1),
            ..seed_rules(Some(2))
        };
        assert!(q.plan(&all, both, t0).is_empty());
        // The download completes: it goes on seeding, past the seeding queue's size, and its
        // download place frees; with the seeds over the size, no waiting seed starts.
        let mut all = all.to_vec();
        all[2] = c(5, false, Seeding);
        all.push(c(6, true, Paused));
        assert_eq!(q.plan(&all, both, t0), [Step::Start(Download, ih(6))]);
        *all.last_mut().unwrap() = c(6, false, Downloading);
        assert!(q.plan(&all, both, t0).is_empty());
        // A seed that starts without the queue's leave (not a completed download) is queued.
        all.push(c(7, false, Seeding));
        assert_eq!(q.plan(&all, both, t0), [Step::Queue(Seed, ih(7))]);
        // A seed that uploads keeps its place; one that uploaded nothing for the stall time gives
        // it up (and goes on), and the first waiting seed starts.
        let mut one = c(1, false, Seeding);
        one.moved = 10;
        let all = [one, c(2, false, Seeding), waiting_seed(3), waiting_seed(4)];
        assert!(q
            .plan(&all, seed_rules(Some(2)), t0 + Duration::from_secs(30))
            .is_empty());
        assert_eq!(
            q.plan(&all, seed_rules(Some(2)), t0 + Duration::from_secs(61)),
            [Step::Start(Seed, ih(3))]
        );
        // One whose data check has not ended waits whatever the places: it may be either.
        let unchecked = Candidate {
            direction: None,
            ..c(9, true, Paused)
        };
        assert!(TorrentQueue::default()
            .plan(&[unchecked], rules(None), t0)
            .is_empty());
        // The seeding queue off: every waiting seed starts.
        let mut all = all.to_vec();
        all[2] = c(3, false, Seeding);
        assert_eq!(
            q.plan(&all, seed_rules(None), t0 + Duration::from_secs(62)),
            [Step::Start(Seed, ih(4))]
        );
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
