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
//! # async fn demo(client: btorrent_engine::announce::TrackerClient, url: &str,
//! #               req: btorrent_engine::announce::AnnounceRequest) {
//! use btorrent_engine::announce::AnnounceSchedule;
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

use super::{AnnounceResponse, RetryPolicy, TrackerError};

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

/// Back-off after failed announces starts here by default, doubling after each failure ...
pub const FAILURE_BACKOFF_FIRST: Duration = Duration::from_secs(15);
/// ... up to this.
pub const FAILURE_BACKOFF_MAX: Duration = Duration::from_secs(1800);

/// Re-announce timing for one torrent at one tracker.
///
/// One rule holds for every announce: while the tracker is failing (from a failed announce until the
/// next success), nothing goes out before the back-off delay has passed, neither the extra announce of
/// a torrent short of peers nor an event. Times are passed in (`*_at`), so the schedule can be run on a
/// simulated clock; the plain methods use the real one.
#[derive(Debug, Clone)]
pub struct AnnounceSchedule {
    /// Never wait less than this between announces, whatever the tracker says (default 10 s).
    pub floor: Duration,
    interval: Duration,
    min_interval: Duration,
    last_success: Option<Instant>,
    /// When the next regular announce (or retry after a failure) is due; `None` = now.
    next: Option<Instant>,
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
        Self::with_backoff(FAILURE_BACKOFF_FIRST)
    }

    /// Back-off after failures runs `first`, twice that, ... up to 30 min (tests use a short `first`).
    pub fn with_backoff(first: Duration) -> Self {
        AnnounceSchedule {
            floor: Duration::from_secs(10),
            interval: Duration::from_secs(1800),
            min_interval: Duration::from_secs(60),
            last_success: None,
            next: None,
            failures: Backoff::new(first, FAILURE_BACKOFF_MAX),
        }
    }

    /// Records a successful announce and returns the wait before the next regular one (the tracker's
    /// `interval`, at least the floor).
    pub fn succeeded(&mut self, resp: &AnnounceResponse) -> Duration {
        self.succeeded_at(resp, Instant::now())
    }

    /// [`succeeded`](Self::succeeded) at the time `now`.
    pub fn succeeded_at(&mut self, resp: &AnnounceResponse, now: Instant) -> Duration {
        self.failures.reset();
        self.last_success = Some(now);
        self.interval = resp.interval.max(self.floor);
        self.min_interval = resp
            .min_interval
            .unwrap_or(self.interval / 4)
            .clamp(self.floor, self.interval);
        self.next = Some(now + self.interval);
        self.interval
    }

    /// Records a failed announce and returns the wait before trying again.
    pub fn failed(&mut self, err: &TrackerError) -> Duration {
        self.failed_at(err, Instant::now())
    }

    /// [`failed`](Self::failed) at the time `now`.
    pub fn failed_at(&mut self, _err: &TrackerError, now: Instant) -> Duration {
        let wait = self
            .failures
            .next_delay()
            .max(self.floor.min(self.failures.first));
        self.next = Some(now + wait);
        wait
    }

    /// The last announce failed (and none has succeeded since): the tracker is in back-off.
    pub fn is_failing(&self) -> bool {
        self.failures.attempts() > 0
    }

    /// Whether an extra announce (say, the torrent is short of peers) may go out now without breaking
    /// the tracker's `min interval` or the back-off of a failing tracker.
    pub fn may_announce_early(&self) -> bool {
        self.may_announce_early_at(Instant::now())
    }

    /// [`may_announce_early`](Self::may_announce_early) at the time `now`.
    pub fn may_announce_early_at(&self, now: Instant) -> bool {
        if self.is_failing() {
            return self.is_due_at(now);
        }
        self.last_success
            .is_none_or(|t| now.saturating_duration_since(t) >= self.min_interval)
    }

    /// The first instant after `now` at which [`should_announce_at`](Self::should_announce_at) may
    /// change its answer: the next regular announce, or the end of the `min interval` (`None`: both
    /// passed, or nothing known yet).
    pub fn next_change_after(&self, now: Instant) -> Option<Instant> {
        let early = if self.is_failing() {
            None
        } else {
            self.last_success.map(|t| t + self.min_interval)
        };
        [self.next, early]
            .into_iter()
            .flatten()
            .filter(|&t| t > now)
            .min()
    }

    /// Whether the next regular announce (or the retry of a failed one) is due at `now`.
    pub fn is_due_at(&self, now: Instant) -> bool {
        self.next.is_none_or(|t| now >= t)
    }

    /// The retries inside one announce call: a tracker that just failed is not asked again at once
    /// (its back-off decides); a healthy one gets the quick retries of [`RetryPolicy::default`] for
    /// a passing blip.
    pub fn retry_policy(&self) -> RetryPolicy {
        if self.is_failing() {
            RetryPolicy::none()
        } else {
            RetryPolicy::default()
        }
    }

    /// Whether to announce at `now`: the regular announce is due, or `early` (an event to report, the
    /// torrent short of peers) and [`may_announce_early_at`](Self::may_announce_early_at).
    pub fn should_announce_at(&self, now: Instant, early: bool) -> bool {
        self.is_due_at(now) || (early && self.may_announce_early_at(now))
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
            downloaded: None,
            downloaders: None,
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
        assert_eq!(s.failures.attempts(), 2);
        s.succeeded(&resp(60, None));
        assert_eq!(s.failures.attempts(), 0);
    }

    /// A torrent always short of peers, its tracker always failing, looked at every second for 100 s
    /// of simulated time: the back-off holds for the early announce too, and with the quick retries
    /// only on the first failure the tracker sees at most 8 requests.
    #[test]
    fn a_failing_tracker_is_asked_at_most_8_times_in_100_s() {
        let e = TrackerError::Http {
            url: "http://t/announce".into(),
            status: 500,
        };
        for _ in 0..50 {
            let t0 = Instant::now();
            let mut s = AnnounceSchedule::new();
            let (mut calls, mut requests) = (0, 0);
            for sec in 0..=100 {
                let now = t0 + Duration::from_secs(sec);
                if s.should_announce_at(now, true) {
                    calls += 1;
                    requests += s.retry_policy().attempts;
                    s.failed_at(&e, now);
                }
            }
            assert!((3..=4).contains(&calls), "{calls} announces");
            assert!(requests <= 8, "{requests} requests in 100 s");
        }
    }

    #[test]
    fn the_next_change_is_the_end_of_min_interval_then_the_regular_announce() {
        let t0 = Instant::now();
        let mut s = AnnounceSchedule::new();
        assert_eq!(s.next_change_after(t0), None);
        s.succeeded_at(&resp(300, Some(30)), t0);
        let secs = |n| t0 + Duration::from_secs(n);
        assert_eq!(s.next_change_after(t0), Some(secs(30)));
        assert_eq!(s.next_change_after(secs(30)), Some(secs(300)));
        assert_eq!(s.next_change_after(secs(300)), None);
    }

    #[test]
    fn early_announces_wait_for_min_interval_then_go() {
        let t0 = Instant::now();
        let mut s = AnnounceSchedule::new();
        s.succeeded_at(&resp(300, Some(30)), t0);
        assert!(!s.should_announce_at(t0 + Duration::from_secs(29), true));
        assert!(s.should_announce_at(t0 + Duration::from_secs(30), true));
        assert!(!s.should_announce_at(t0 + Duration::from_secs(299), false));
        assert!(s.should_announce_at(t0 + Duration::from_secs(300), false));
        // A failure, then a success: the back-off is gone and the retries are back.
        let e = TrackerError::Failure("x".into());
        s.failed_at(&e, t0);
        assert!(s.is_failing() && s.retry_policy().attempts == 1);
        assert!(!s.should_announce_at(t0 + Duration::from_secs(11), true));
        s.succeeded_at(&resp(300, Some(30)), t0);
        assert!(!s.is_failing() && s.retry_policy().attempts > 1);
    }
}
