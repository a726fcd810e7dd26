//! When to talk to a tracker next: exponential back-off with jitter, and the per-tracker announce
//! schedule that the engine keeps for each torrent.
//!
//! [`Backoff`] is the bare delay sequence (first, 2x, 4x, ... capped, each spread by +-20 % so that many
//! torrents restarted together do not hit a tracker in lock step). [`AnnounceSchedule`] wraps it with
//! what a tracker said: the regular `interval`, the `min interval` that bounds extra announces (when a
//! torrent is short of peers), and a floor so that a hostile or broken `interval` of 0 cannot make us
//! announce in a tight loop.
//!
//! Typical engine loop:
//! ```no_run
//! # async fn demo(client: btorrent::announce::TrackerClient, url: &str,
//! #               req: btorrent::announce::AnnounceRequest) {
//! use btorrent::announce::AnnounceSchedule;
//! let mut schedule = AnnounceSchedule::new();
//! loop {
//!     let wait = match client.announce(url, &req).await {
//!         Ok(resp) => schedule.succeeded(&resp),
//!         Err(err) => schedule.failed(&err),
//!     };
//!     tokio::time::sleep(wait).await; // or until an event / "short of peers" and schedule.may_announce_early()
//! }
//! # }
//! ```

use std::time::{Duration, Instant};

use rand::Rng;

use super::{AnnounceResponse, TrackerError};

/// An exponential delay sequence: `first`, `2 * first`, ... up to `max`, each with +-20 % jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max: max.max(first),
            attempt: 0,
        }
    }

    /// The delay before the next attempt; each call doubles the base delay until `max`.
    pub fn next_delay(&mut self) -> Duration {
        let base = self
            .first
            .saturating_mul(1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let factor = rand::thread_rng().gen_range(0.8..=1.2);
        base.mul_f64(factor).min(self.max)
    }

    /// Delays handed out since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Re-announce timing for one torrent at one tracker.
#[derive(Debug, Clone)]
pub struct AnnounceSchedule {
    /// Never wait less than this between announces, whatever the tracker says (default 10 s).
    pub floor: Duration,
    interval: Duration,
    min_interval: Duration,
    last_success: Option<Instant>,
    failures: Backoff,
}

impl Default for AnnounceSchedule {
    fn default() -> Self {
        Self::new()
    }
}

impl AnnounceSchedule {
    /// Back-off after failures runs 15 s, 30 s, 1 min, ... up to 30 min.
    pub fn new() -> Self {
        AnnounceSchedule {
            floor: Duration::from_secs(10),
            interval: Duration::from_secs(1800),
            min_interval: Duration::from_secs(60),
            last_success: None,
            failures: Backoff::new(Duration::from_secs(15), Duration::from_secs(1800)),
        }
    }

    /// Records a successful announce and returns the wait before the next regular one (the tracker's
    /// `interval`, at least the floor).
    pub fn succeeded(&mut self, resp: &AnnounceResponse) -> Duration {
        self.failures.reset();
        self.last_success = Some(Instant::now());
        self.interval = resp.interval.max(self.floor);
        self.min_interval = resp
            .min_interval
            .unwrap_or(self.interval / 4)
            .clamp(self.floor, self.interval);
        self.interval
    }

    /// Records a failed announce and returns the wait before trying again.
    pub fn failed(&mut self, _err: &TrackerError) -> Duration {
        self.failures
            .next_delay()
            .max(self.floor.min(self.failures.first))
    }

    /// Failed announces in a row.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures.attempts()
    }

    /// Whether an extra announce (say, the torrent is short of peers) may go out now without breaking
    /// the tracker's `min interval`.
    pub fn may_announce_early(&self) -> bool {
        self.last_success
            .is_none_or(|t| t.elapsed() >= self.min_interval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(interval: u64, min: Option<u64>) -> AnnounceResponse {
        AnnounceResponse {
            interval: Duration::from_secs(interval),
            min_interval: min.map(Duration::from_secs),
            complete: None,
            incomplete: None,
            peers: vec![],
            warning: None,
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_max() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        let d: Vec<f64> = (0..8).map(|_| b.next_delay().as_secs_f64()).collect();
        assert!((0.8..=1.2).contains(&d[0]), "{d:?}");
        assert!((1.6..=2.4).contains(&d[1]), "{d:?}");
        assert!((3.2..=4.8).contains(&d[2]), "{d:?}");
        assert!(d[5..].iter().all(|&x| (8.0..=10.0).contains(&x)), "{d:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1200));
    }

    #[test]
    fn schedule_honours_interval_and_floor() {
        let mut s = AnnounceSchedule::new();
        assert!(s.may_announce_early());
        assert_eq!(s.succeeded(&resp(300, Some(60))), Duration::from_secs(300));
        assert!(!s.may_announce_early(), "min interval not yet passed");
        assert_eq!(s.succeeded(&resp(0, Some(0))), Duration::from_secs(10));
        let e = TrackerError::Failure("x".into());
        let first = s.failed(&e);
        let second = s.failed(&e);
        assert!(first >= Duration::from_secs(10) && first <= Duration::from_secs(18));
        assert!(second > first || second >= Duration::from_secs(24));
        assert_eq!(s.consecutive_failures(), 2);
        s.succeeded(&resp(60, None));
        assert_eq!(s.consecutive_failures(), 0);
    }
}
