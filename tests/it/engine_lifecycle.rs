//! A torrent's lifecycle under races: a `resume()` landing while the torrent loop starts (right after
//! the data check) starts the announce tasks once, not twice.

use std::time::Duration;

use crate::support::tracker::http_double;
use crate::support::*;
use btorrent::engine::{AddOptions, SessionConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_racing_the_loop_start_announces_started_once() {
    const TORRENTS: usize = 12;
    let (base, seen) = http_double(|_| (200, b"d8:intervali1800e5:peers0:e".to_vec())).await;
    let url = format!("{base}/announce");
    let state = tempfile::tempdir().unwrap();
    let s = session_with(SessionConfig {
        // Saving resume data after the check is where the loop start used to leave room for a race.
        resume_dir: Some(state.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let dirs: Vec<_> = (0..TORRENTS)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    for (i, dir) in dirs.iter().enumerate() {
        let path = dir.path().join("f.bin");
        // Big enough that the check is still running when `add` returns.
        write_random(&path, 2 << 20, i as u64);
        let meta = engine::torrent(&path, 256 * 1024, vec![url.clone()]);
        let h = s
            .add(
                meta,
                AddOptions {
                    data_dir: dir.path().to_path_buf(),
                    trackers: Some(vec![url.clone()]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        // Paused while checking; resumed the moment the check is done, as the loop starts.
        h.pause();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while h.stats().pieces_have < h.stats().pieces_total {
            assert!(
                std::time::Instant::now() < deadline,
                "the check never ended"
            );
            tokio::task::yield_now().await;
        }
        h.resume();
    }
    let started = || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("event=started"))
            .count()
    };
    wait_until(
        "every torrent announced started",
        Duration::from_secs(20),
        || started() >= TORRENTS,
    )
    .await;
    // A second announce task per torrent would send its own `started` right away.
    let end = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < end {
        assert_eq!(
            started(),
            TORRENTS,
            "a torrent started its announce tasks twice"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
