//! A seeder whose tracker fails: every announce path (the regular one, the early one of a torrent short
//! of peers, the quick retries inside one call) waits for one back-off, and the failure is logged once
//! per streak and once more when the tracker answers again. The back-off base is shortened
//! (`SessionConfig::tracker_backoff`) so the test takes seconds, not minutes.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::logs::Logs;
use crate::support::tracker::http_double;
use crate::support::*;
use btorrent::engine::{AddOptions, Session, SessionConfig, TorrentHandle};

/// A regular answer: re-announce in a minute, early (short of peers) after 10 s.
const ANSWER: &[u8] = b"d8:intervali60e12:min intervali10e5:peers0:e";

/// A tracker double answering HTTP `status` (500 until told otherwise), noting when each request came.
async fn tracker(status: Arc<AtomicU16>) -> (String, Arc<Mutex<Vec<Instant>>>) {
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    let (base, _) = http_double(move |_| {
        t.lock().unwrap().push(Instant::now());
        match status.load(Ordering::SeqCst) {
            200 => (200, ANSWER.to_vec()),
            s => (s, b"internal error".to_vec()),
        }
    })
    .await;
    (format!("{base}/announce"), times)
}

/// A session seeding a small file through the tracker at `url` (no peers: always short of them).
async fn seeding(url: &str, backoff: Duration) -> (tempfile::TempDir, Session, TorrentHandle) {
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("f.bin"), 100_000, 7);
    let meta = torrent(&dir.path().join("f.bin"), 32 * 1024, vec![url.to_string()]);
    let s = session_with(SessionConfig {
        tracker_backoff: backoff,
        ..Default::default()
    })
    .await;
    let h = s
        .add(
            meta,
            AddOptions {
                data_dir: dir.path().to_path_buf(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    (dir, s, h)
}

/// "At most 8 announces in 100 s" with the back-off base at 15 s, scaled: base 1.5 s, window 10 s.
/// The tracker answers the first announce, then fails: from then on the seeder, short of peers, would
/// announce early as soon as the tracker's `min interval` (10 s) has passed. The wait ends as soon as
/// the answer is known: a request after the window, or a 9th inside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_asks_a_failing_tracker_at_most_8_times_in_100_scaled_seconds() {
    init_logs();
    let status = Arc::new(AtomicU16::new(200));
    let (url, times) = tracker(status.clone()).await;
    let window = Duration::from_millis(10_000);
    let (_dir, s, _h) = seeding(&url, Duration::from_millis(1500)).await;
    wait_until("the first announce", Duration::from_secs(10), || {
        !times.lock().unwrap().is_empty()
    })
    .await;
    status.store(500, Ordering::SeqCst);
    // The requests since the first failing one: how many in the window, and whether one came after.
    let failing = || {
        let t = times.lock().unwrap();
        let first = *t.get(1)?;
        let inside = t[1..].iter().filter(|&&x| x - first <= window).count();
        Some((inside, t.len() - 1 > inside))
    };
    wait_until(
        "a request after the window, or a 9th in it",
        Duration::from_secs(60),
        || failing().is_some_and(|(inside, after)| after || inside > 8),
    )
    .await;
    let (inside, _) = failing().unwrap();
    let gaps: Vec<_> = {
        let t = times.lock().unwrap();
        t.windows(2).map(|w| w[1] - w[0]).collect()
    };
    eprintln!("{inside} requests in the first 10 s of failures; gaps {gaps:?}");
    assert!(
        inside <= 8,
        "{inside} requests in the window; gaps {gaps:?}"
    );
    assert!(
        inside >= 4,
        "it kept trying: {inside} requests; gaps {gaps:?}"
    );
    s.shutdown(Duration::from_secs(5)).await;
}

/// One warning when the tracker starts failing, none for the retries, one when it answers again.
#[tokio::test]
async fn a_failure_streak_warns_once_and_the_recovery_once() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let status = Arc::new(AtomicU16::new(500));
    let (url, times) = tracker(status.clone()).await;
    let (_dir, s, _h) = seeding(&url, Duration::from_millis(200)).await;
    // The first call (3 quick tries) and two retries after it.
    wait_until("5 failed requests", Duration::from_secs(20), || {
        times.lock().unwrap().len() >= 5
    })
    .await;
    assert_eq!(logs.count("announce failed"), 1, "one warning per streak");
    status.store(200, Ordering::SeqCst);
    wait_until("the recovery warning", Duration::from_secs(20), || {
        logs.count("answers again") == 1
    })
    .await;
    assert_eq!(logs.count("announce failed"), 1);
    assert!(
        logs.count(&format!("tracker {url} answers again")) == 1,
        "{}",
        String::from_utf8_lossy(&logs.0.lock().unwrap())
    );
    s.shutdown(Duration::from_secs(5)).await;
}
