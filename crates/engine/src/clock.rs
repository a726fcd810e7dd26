//! A torrent's clock: when it last started, when it last moved payload, when its download
//! completed, and how long it has downloaded and seeded over its whole life (Transmission's
//! `startDate`, `activityDate`, `doneDate`, `secondsDownloading`, `secondsSeeding`).
//!
//! The torrent task ticks it once a second (`Clock::tick`) with what the torrent is doing;
//! `finish_download` stamps the completion (`Clock::completed`). It lives in the torrent's core
//! (read and changed under the core lock). The lifetime sums and the completion time are kept in
//! the resume file ([`Kept`]) and restored when the torrent is added, so they survive restarts; a
//! running torrent's file is saved at least every [`KEEP_EVERY`], which bounds what a crash loses.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A running torrent's resume file is saved at least this often (each torrent waits up to half as
/// long again, so torrents started together spread their saves), for its clock.
pub const KEEP_EVERY: Duration = Duration::from_secs(600);

/// The longest gap between two ticks that counts in full: a tick skipped under load counts, a task
/// that stalled does not add its stall.
const MAX_STEP: Duration = Duration::from_secs(5);

/// What front ends show of the clock: times in Unix seconds (0 = never), sums in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TorrentTimes {
    /// When it last began to download or seed, in this run.
    pub started: i64,
    /// When it last sent or received payload, in this run.
    pub active: i64,
    /// When its download last completed (kept across runs). Data found complete by a check that
    /// had no such date (a torrent made from local files, one completed before the date was
    /// kept) is dated by that check, as Transmission dates it; 0 while it has never been complete.
    pub done: i64,
    /// Time spent downloading and seeding, over every run.
    pub seconds_downloading: u64,
    pub seconds_seeding: u64,
}

/// The part of the clock the resume file keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Kept {
    pub done: i64,
    pub seconds_downloading: u64,
    pub seconds_seeding: u64,
}

/// What the torrent does between two ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Doing {
    Downloading,
    Seeding,
    /// Paused, checking, failed.
    Nothing,
}

#[derive(Debug)]
pub(crate) struct Clock {
    started: i64,
    active: i64,
    done: i64,
    downloading: Duration,
    seeding: Duration,
    /// The last tick: when, and what the torrent was doing then.
    last: Option<(Instant, Doing)>,
    /// Payload bytes moved (both ways) by the last tick.
    moved: u64,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new(Kept::default())
    }
}

impl Clock {
    pub fn new(kept: Kept) -> Clock {
        Clock {
            started: 0,
            active: 0,
            done: kept.done,
            downloading: Duration::from_secs(kept.seconds_downloading),
            seeding: Duration::from_secs(kept.seconds_seeding),
            last: None,
            moved: 0,
        }
    }

    /// Takes up what the resume file kept, adding what this run counted before it was read.
    pub fn restore(&mut self, kept: Kept) {
        self.downloading += Duration::from_secs(kept.seconds_downloading);
        self.seeding += Duration::from_secs(kept.seconds_seeding);
        if self.done == 0 {
            self.done = kept.done;
        }
    }

    /// One tick at `now` (`unix`: the same instant in Unix seconds): the torrent is `doing` this,
    /// and has moved `moved` payload bytes in all. Time counts while it keeps doing the same thing.
    pub fn tick(&mut self, now: Instant, unix: i64, doing: Doing, moved: u64) {
        match self.last {
            Some((at, before)) if before == doing => {
                let step = now.saturating_duration_since(at).min(MAX_STEP);
                match doing {
                    Doing::Downloading => self.downloading += step,
                    Doing::Seeding => self.seeding += step,
                    Doing::Nothing => {}
                }
            }
            // Began (resumed, or done checking) since the last tick.
            Some((_, Doing::Nothing)) | None if doing != Doing::Nothing => self.started = unix,
            _ => {}
        }
        if moved != self.moved {
            self.moved = moved;
            self.active = unix;
        }
        self.last = Some((now, doing));
    }

    /// The download completed at `unix`.
    pub fn completed(&mut self, unix: i64) {
        self.done = unix;
    }

    /// A check found the data complete at `unix`: dated then unless it has a date. Whether it
    /// had none.
    pub fn found_complete(&mut self, unix: i64) -> bool {
        let undated = self.done == 0;
        if undated {
            self.done = unix;
        }
        undated
    }

    pub fn times(&self) -> TorrentTimes {
        TorrentTimes {
            started: self.started,
            active: self.active,
            done: self.done,
            seconds_downloading: self.downloading.as_secs(),
            seconds_seeding: self.seeding.as_secs(),
        }
    }

    pub fn kept(&self) -> Kept {
        Kept {
            done: self.done,
            seconds_downloading: self.downloading.as_secs(),
            seconds_seeding: self.seeding.as_secs(),
        }
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_counts_while_the_torrent_keeps_doing_the_same_thing() {
        let mut c = Clock::new(Kept {
            done: 0,
            seconds_downloading: 100,
            seconds_seeding: 7,
        });
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        c.tick(at(0), 1000, Doing::Nothing, 0);
        assert_eq!(c.times().started, 0, "paused: not started");
        c.tick(at(1), 1001, Doing::Downloading, 0);
        assert_eq!(c.times().started, 1001);
        c.tick(at(2), 1002, Doing::Downloading, 500);
        c.tick(at(3), 1003, Doing::Downloading, 500);
        let t = c.times();
        assert_eq!((t.seconds_downloading, t.active), (102, 1002));
        // A stall of a minute counts five seconds; a change of what it does counts nothing.
        c.tick(at(63), 1063, Doing::Downloading, 500);
        c.tick(at(64), 1064, Doing::Seeding, 500);
        c.completed(1064);
        c.tick(at(66), 1066, Doing::Seeding, 900);
        let t = c.times();
        assert_eq!(
            (t.seconds_downloading, t.seconds_seeding, t.done, t.active),
            (107, 9, 1064, 1066)
        );
        // Paused, then resumed: a new start, and the pause does not count.
        c.tick(at(67), 1067, Doing::Nothing, 900);
        c.tick(at(500), 1500, Doing::Seeding, 900);
        c.tick(at(501), 1501, Doing::Seeding, 900);
        let t = c.times();
        assert_eq!((t.started, t.seconds_seeding), (1500, 10));
        assert_eq!(
            c.kept(),
            Kept {
                done: 1064,
                seconds_downloading: 107,
                seconds_seeding: 10
            }
        );
        // What a resume file kept adds to what was counted before it was read.
        let mut late = Clock::default();
        late.tick(at(0), 1, Doing::Seeding, 0);
        late.tick(at(2), 3, Doing::Seeding, 0);
        late.restore(c.kept());
        assert_eq!(late.times().seconds_seeding, 12);
        assert_eq!(late.times().done, 1064);
    }
}
