//! Bounded waits: poll a condition until it holds, and fail the test naming what was awaited when the
//! deadline passes.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `done` every 20 ms until it holds; panics naming `what` after `within`.
pub async fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !done() {
        assert!(
            Instant::now() < end,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`wait_until`] for a condition that has to be awaited (asking a tracker, ...): polls every 200 ms.
pub async fn wait_until_async<F, Fut>(what: &str, within: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = Instant::now() + within;
    while !done().await {
        assert!(
            Instant::now() < end,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
