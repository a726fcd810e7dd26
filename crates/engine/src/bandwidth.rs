//! The session's speed limits, shared by every torrent and served by bandwidth priority
//! (Transmission's `bandwidthPriority`): while the session's limit is what holds traffic back, a
//! high-priority torrent's bytes go before a normal one's, and a normal one's before a low one's.
//! Without a session limit, or under it, priority changes nothing.
//!
//! A [`SharedLimiter`] is a token bucket (the rate, a burst of a tenth of a second and at least
//! 64 KiB) whose callers wait for their turn ([`SharedLimiter::acquire`]) instead of being handed a
//! delay: a turn can then go to a higher class that asked later.
//!
//! Invariants, all under the one lock of `State`:
//! - Bytes are granted only while `tokens >= 0`; a grant of `n` takes `n` (the bucket may go into
//!   debt, which the next caller waits out), so over any stretch no more than the rate times the
//!   time plus one burst and one grant go through.
//! - `waiting[class]` holds exactly the callers of that class that were refused a turn and still
//!   wait: a caller enters it at its first refusal and leaves it when granted or dropped (its
//!   its `Place`'s `Drop`), so a cancelled transfer blocks nobody.
//! - Within a class, the earliest ticket goes first. A class is served only while no higher
//!   class has a waiter, except that a starved class gets one turn whenever it has gone
//!   unserved for `STARVED_TURN_EVERY` times what its grant takes at the rate: a low torrent
//!   keeps about a twentieth of the rate, enough for its peers not to give up on it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A torrent's bandwidth priority.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Low, Priority::Normal, Priority::High];

    fn class(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
        }
    }

    /// Reads `low`, `normal` or `high`.
    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// A starved class waits this many times what its grant takes at the rate between its turns.
const STARVED_TURN_EVERY: u32 = 20;

fn burst_of(rate: u64) -> f64 {
    (rate as f64 / 10.0).max(64.0 * 1024.0)
}

/// A session-wide token bucket served by priority; see the module doc.
#[derive(Debug)]
pub struct SharedLimiter {
    /// Bytes per second as in `state`, readable without the lock (0 = unlimited): an unlimited
    /// limiter costs a caller one atomic load.
    rate: AtomicU64,
    state: parking_lot::Mutex<State>,
}

#[derive(Debug)]
struct State {
    rate: u64,
    tokens: f64,
    refilled: Instant,
    next_ticket: u64,
    /// Per class: ticket -> bytes asked, of the callers waiting for a turn.
    waiting: [BTreeMap<u64, u64>; 3],
    /// Per class: when it was last granted a turn.
    served: [Option<Instant>; 3],
}

impl State {
    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate as f64).min(burst_of(self.rate));
        self.refilled = now;
    }

    /// Whether a class has gone unserved long enough to be served past higher classes.
    fn starved(&self, class: usize, n: u64, now: Instant) -> bool {
        let every = Duration::from_secs_f64(n as f64 / self.rate as f64) * STARVED_TURN_EVERY;
        self.served[class].is_none_or(|at| now.saturating_duration_since(at) >= every)
    }

    /// Grants `n` bytes to the caller holding `ticket` (none yet: a newcomer) of `class` if it is
    /// its turn; otherwise how long it should sleep before asking again.
    fn turn(
        &mut self,
        class: usize,
        ticket: Option<u64>,
        n: u64,
        now: Instant,
    ) -> Option<Duration> {
        let ahead = match ticket {
            Some(t) => self.waiting[class].range(..t).count(),
            None => self.waiting[class].len(),
        };
        let higher: usize = self.waiting[class + 1..].iter().map(BTreeMap::len).sum();
        let rate = self.rate as f64;
        let debt = Duration::from_secs_f64((-self.tokens).max(0.0) / rate);
        if ahead > 0 {
            // Roughly when those ahead will have gone.
            let queued: u64 = self.waiting[class].values().take(ahead).sum();
            return Some(debt + Duration::from_secs_f64(queued as f64 / rate));
        }
        if higher > 0 && !(ticket.is_some() && self.starved(class, n, now)) {
            let queued: u64 = self.waiting[class + 1..]
                .iter()
                .flat_map(BTreeMap::values)
                .sum();
            return Some(
                (debt + Duration::from_secs_f64(queued as f64 / rate))
                    .max(Duration::from_millis(1)),
            );
        }
        // A starved lower class has the next turn: its head is waiting for these tokens.
        let starved_below = (0..class).find_map(|lower| {
            let (_, &head) = self.waiting[lower].first_key_value()?;
            self.starved(lower, head, now).then_some(head)
        });
        if let Some(head) = starved_below {
            return Some(
                (debt + Duration::from_secs_f64(head as f64 / rate)).max(Duration::from_millis(1)),
            );
        }
        if self.tokens < 0.0 {
            return Some(debt);
        }
        self.tokens -= n as f64;
        self.served[class] = Some(now);
        None
    }
}

/// A caller's place in its class's queue, given up however the wait ends.
struct Place<'a> {
    limiter: &'a SharedLimiter,
    class: usize,
    ticket: Option<u64>,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.ticket {
            self.limiter.state.lock().waiting[self.class].remove(&t);
        }
    }
}

impl SharedLimiter {
    /// A limiter of `bytes_per_sec` (0 = unlimited).
    pub fn new(bytes_per_sec: u64) -> Self {
        SharedLimiter {
            rate: AtomicU64::new(bytes_per_sec),
            state: parking_lot::Mutex::new(State {
                rate: bytes_per_sec,
                tokens: burst_of(bytes_per_sec),
                refilled: Instant::now(),
                next_ticket: 0,
                waiting: Default::default(),
                served: [None; 3],
            }),
        }
    }

    /// The rate in bytes per second; `None` when unlimited.
    pub fn rate(&self) -> Option<u64> {
        Some(self.rate.load(Ordering::Relaxed)).filter(|&r| r > 0)
    }

    /// Changes the rate (`None` or 0: unlimited) from now on; callers waiting ask again at their
    /// next wake-up.
    pub fn set_rate(&self, bytes_per_sec: Option<u64>) {
        let mut s = self.state.lock();
        s.refill(Instant::now());
        s.rate = bytes_per_sec.unwrap_or(0);
        s.tokens = s.tokens.min(burst_of(s.rate));
        self.rate.store(s.rate, Ordering::Relaxed);
    }

    /// Waits for the turn to move `n` bytes at `priority`, and takes them from the bucket.
    pub async fn acquire(&self, n: u64, priority: Priority) {
        if self.rate.load(Ordering::Relaxed) == 0 {
            return;
        }
        let class = priority.class();
        let mut place = Place {
            limiter: self,
            class,
            ticket: None,
        };
        loop {
            let wait = {
                let mut s = self.state.lock();
                if s.rate == 0 {
                    return; // `place` leaves the queue once `s` is released
                }
                let now = Instant::now();
                s.refill(now);
                match s.turn(class, place.ticket, n, now) {
                    None => {
                        if let Some(t) = place.ticket.take() {
                            s.waiting[class].remove(&t);
                        }
                        return;
                    }
                    Some(wait) => {
                        if place.ticket.is_none() {
                            let t = s.next_ticket;
                            s.next_ticket += 1;
                            s.waiting[class].insert(t, n);
                            place.ticket = Some(t);
                        }
                        wait
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Runs one caller per priority given, each asking for `chunk` bytes again and again, for
    /// `secs` (paused tokio time: deterministic); returns the bytes each moved by then.
    async fn share(
        limiter: Arc<SharedLimiter>,
        who: &[Priority],
        chunk: u64,
        secs: u64,
    ) -> Vec<u64> {
        let until = Instant::now() + Duration::from_secs(secs);
        let tasks: Vec<_> = who
            .iter()
            .map(|&p| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    let mut moved = 0;
                    loop {
                        l.acquire(chunk, p).await;
                        if Instant::now() > until {
                            break;
                        }
                        moved += chunk;
                    }
                    moved
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    const RATE: u64 = 1 << 20;
    const CHUNK: u64 = 16 << 10;

    #[tokio::test(start_paused = true)]
    async fn callers_of_one_priority_share_the_rate_evenly_and_never_pass_it() {
        let l = Arc::new(SharedLimiter::new(RATE));
        let moved = share(l, &[Priority::Normal; 4], CHUNK, 10).await;
        let total: u64 = moved.iter().sum();
        // Ten seconds at the rate, one burst and one grant (the bucket's debt) at most.
        assert!(total <= 10 * RATE + RATE / 10 + CHUNK, "{moved:?}");
        assert!(total >= 10 * RATE - 4 * CHUNK, "{moved:?}");
        // The first caller alone had the initial burst.
        for m in &moved {
            assert!(
                m.abs_diff(total / 4) <= RATE / 10 + 2 * CHUNK,
                "uneven: {moved:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_higher_priority_goes_first_and_a_starved_one_keeps_a_trickle() {
        let l = Arc::new(SharedLimiter::new(RATE));
        let moved = share(
            l,
            &[Priority::Low, Priority::High, Priority::Low, Priority::High],
            CHUNK,
            10,
        )
        .await;
        let (low, high) = (moved[0] + moved[2], moved[1] + moved[3]);
        assert!(low + high <= 10 * RATE + RATE / 10 + CHUNK, "{moved:?}");
        // A starved class gets a turn every 20 grants' time: about a twentieth of the rate.
        assert!((RATE / 4..=RATE).contains(&low), "low: {moved:?}");
        assert!(high >= 9 * RATE, "high: {moved:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn alone_a_low_priority_has_the_whole_rate_and_unlimited_is_free() {
        let l = Arc::new(SharedLimiter::new(RATE));
        let moved = share(l.clone(), &[Priority::Low, Priority::Low], CHUNK, 5).await;
        assert!(
            moved.iter().sum::<u64>() >= 5 * RATE - 2 * CHUNK,
            "{moved:?}"
        );

        l.set_rate(None);
        assert_eq!(l.rate(), None);
        let start = Instant::now();
        for _ in 0..1000 {
            l.acquire(1 << 20, Priority::Low).await;
        }
        assert_eq!(Instant::now(), start, "an unlimited limiter never waits");
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_given_up_while_waiting_blocks_nobody() {
        let l = Arc::new(SharedLimiter::new(RATE));
        // Serve the low class and leave the bucket in debt, then leave a high-priority caller
        // waiting and drop it.
        l.acquire(RATE / 2, Priority::Low).await;
        let high = {
            let l = l.clone();
            tokio::spawn(async move { l.acquire(CHUNK, Priority::High).await })
        };
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(l.state.lock().waiting[Priority::High.class()].len(), 1);
        high.abort();
        let _ = high.await;
        assert!(l.state.lock().waiting.iter().all(BTreeMap::is_empty));
        // The low caller waits out the debt alone (0.4 s), not its class's starvation (had the
        // high caller stayed in the queue: 20 times half a second after its last turn).
        let start = Instant::now();
        l.acquire(CHUNK, Priority::Low).await;
        let waited = Instant::now() - start;
        assert!(waited <= Duration::from_millis(600), "{waited:?}");
    }
}
