//! Transfer rates: an exponentially smoothed bytes-per-second figure fed with a running byte total.

use std::time::{Duration, Instant};

/// Smoothed rate over roughly the last `window`.
#[derive(Debug, Clone)]
pub struct Rate {
    last_total: u64,
    last_at: Instant,
    rate: f64,
    window: Duration,
}

impl Rate {
    pub fn new(window: Duration) -> Self {
        Rate {
            last_total: 0,
            last_at: Instant::now(),
            rate: 0.0,
            window,
        }
    }

    /// Feeds the current running total; returns the smoothed rate in bytes/s.
    pub fn update(&mut self, total: u64, now: Instant) -> u64 {
        let dt = now.saturating_duration_since(self.last_at).as_secs_f64();
        if dt >= 0.05 {
            let inst = total.saturating_sub(self.last_total) as f64 / dt;
            let alpha = (dt / self.window.as_secs_f64()).min(1.0);
            self.rate += alpha * (inst - self.rate);
            self.last_total = total;
            self.last_at = now;
        }
        self.rate.max(0.0) as u64
    }

    pub fn get(&self) -> u64 {
        self.rate.max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_to_steady_rate() {
        let mut r = Rate::new(Duration::from_secs(3));
        let t0 = Instant::now();
        let mut v = 0;
        for s in 1..=30u64 {
            v = r.update(s * 1000, t0 + Duration::from_secs(s));
        }
        assert!((990..=1000).contains(&v), "{v}");
        for s in 31..=60u64 {
            v = r.update(30_000, t0 + Duration::from_secs(s));
        }
        assert!(v < 10, "{v}");
    }
}

/// A token bucket shared by the connections of a session or of one torrent: callers reserve bytes and wait the delay
/// it returns. Bursts are limited to a tenth of a second of traffic (at least 64 KiB). The rate can
/// be changed while it is in use; 0 means unlimited (no wait).
#[derive(Debug)]
pub struct Limiter {
    /// (bytes per second, 0 = unlimited; tokens; last refill).
    state: parking_lot::Mutex<(u64, f64, Instant)>,
    /// The rate as in `state`, readable without the lock: an unlimited bucket costs callers one
    /// atomic load.
    rate: std::sync::atomic::AtomicU64,
}

fn burst_of(rate: u64) -> f64 {
    (rate as f64 / 10.0).max(64.0 * 1024.0)
}

impl Limiter {
    pub fn new(bytes_per_sec: u64) -> Self {
        Limiter {
            state: parking_lot::Mutex::new((
                bytes_per_sec,
                burst_of(bytes_per_sec),
                Instant::now(),
            )),
            rate: std::sync::atomic::AtomicU64::new(bytes_per_sec),
        }
    }

    /// The rate in bytes per second; `None` when unlimited.
    pub fn rate(&self) -> Option<u64> {
        let r = self.rate.load(std::sync::atomic::Ordering::Relaxed);
        (r > 0).then_some(r)
    }

    /// Changes the rate (`None` or 0: unlimited) from now on.
    pub fn set_rate(&self, bytes_per_sec: Option<u64>) {
        let mut s = self.state.lock();
        s.0 = bytes_per_sec.unwrap_or(0);
        s.1 = s.1.min(burst_of(s.0));
        s.2 = Instant::now();
        self.rate.store(s.0, std::sync::atomic::Ordering::Relaxed);
    }

    /// Takes `n` bytes from the bucket; returns how long to wait before sending them.
    pub fn reserve(&self, n: u64) -> Duration {
        if self.rate.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            return Duration::ZERO;
        }
        let mut s = self.state.lock();
        if s.0 == 0 {
            return Duration::ZERO;
        }
        let rate = s.0 as f64;
        let now = Instant::now();
        let refill = now.saturating_duration_since(s.2).as_secs_f64() * rate;
        s.1 = (s.1 + refill).min(burst_of(s.0)) - n as f64;
        s.2 = now;
        if s.1 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.1 / rate)
        }
    }
}

#[cfg(test)]
mod limiter_tests {
    use super::*;

    #[test]
    fn delays_past_the_burst() {
        let l = Limiter::new(1 << 20);
        assert_eq!(l.reserve(64 * 1024), Duration::ZERO);
        let d = l.reserve(512 * 1024);
        assert!(
            d > Duration::from_millis(400) && d < Duration::from_millis(600),
            "{d:?}"
        );
    }

    #[test]
    fn the_rate_changes_while_in_use_and_zero_is_unlimited() {
        let l = Limiter::new(0);
        assert_eq!(l.rate(), None);
        assert_eq!(l.reserve(100 << 20), Duration::ZERO);
        l.set_rate(Some(1 << 20));
        assert_eq!(l.rate(), Some(1 << 20));
        assert!(l.reserve(2 << 20) > Duration::from_millis(1500));
        l.set_rate(None);
        assert_eq!(l.reserve(100 << 20), Duration::ZERO);
    }
}
