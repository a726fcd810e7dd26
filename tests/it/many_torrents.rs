//! Many small torrents in one session (the daemon with 1,000 of them, scaled down): a start whose resume
//! data vouches for everything hashes nothing, the threads do not grow with the torrents, announces
//! take turns (the `stopped` ones of a shutdown too, within its grace), and the open files of all
//! torrents stay within the session's bound.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::tracker::http_double_timed;
use crate::support::*;
use btorrent::engine::{AddOptions, Session, SessionConfig, TorrentHandle, TorrentState};
use btorrent::Metainfo;

/// `n` one-piece files of 1 KiB in `dir`, and their torrents (announcing to `trackers`).
fn small_torrents(dir: &Path, n: usize, trackers: Vec<String>) -> Vec<Metainfo> {
    (0..n)
        .map(|i| {
            let path = dir.join(format!("f{i:04}"));
            write_random(&path, 1024, i as u64);
            torrent(&path, 16 << 10, trackers.clone())
        })
        .collect()
}

async fn add_all(s: &Session, metas: &[Metainfo], dir: &Path) -> Vec<TorrentHandle> {
    let mut v = Vec::new();
    for m in metas {
        v.push(s.add(m.clone(), opts(dir, vec![])).await.unwrap());
    }
    v
}

async fn wait_seeding(hs: &[TorrentHandle]) {
    wait_until("every torrent seeding", Duration::from_secs(60), || {
        hs.iter().all(|h| h.stats().state == TorrentState::Seeding)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_data_that_vouches_for_everything_starts_200_torrents_without_hashing() {
    let dir = tempfile::tempdir().unwrap();
    let metas = small_torrents(dir.path(), 200, vec![]);
    let cfg = SessionConfig {
        resume_dir: Some(dir.path().join("resume")),
        ..Default::default()
    };
    // First start: no resume data, every piece is hashed.
    let s = session_with(cfg.clone()).await;
    let hs = add_all(&s, &metas, dir.path()).await;
    wait_seeding(&hs).await;
    assert!(hs.iter().all(|h| h.stats().pieces_checked == 1));
    s.shutdown(Duration::from_secs(10)).await;

    // Again: seeding as soon as added, and not one piece hashed.
    let s = session_with(cfg).await;
    let hs = add_all(&s, &metas, dir.path()).await;
    for h in &hs {
        let st = h.stats();
        assert_eq!(st.state, TorrentState::Seeding, "{}", h.name());
        assert_eq!(st.pieces_checked, 0, "{} was hashed", h.name());
    }
    s.shutdown(Duration::from_secs(10)).await;
}

/// Threads of this process named `prefix...` (a test's own runtime, the engine's disk writers).
fn threads_named(prefixes: &[&str]) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("comm")).ok())
        .filter(|name| prefixes.iter().any(|p| name.starts_with(p)))
        .count()
}

#[test]
fn the_threads_do_not_grow_with_the_torrents() {
    // A runtime of its own, so its threads (workers, blocking pool, and the threads those start) can
    // be told from those of the tests running beside this one.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bt-many-rt")
        .enable_all()
        .build()
        .unwrap();
    let ours = || threads_named(&["bt-many-rt", "bt-write"]);
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let metas = small_torrents(dir.path(), 200, vec![]);
        let s = session().await;
        let first = add_all(&s, &metas[..10], dir.path()).await;
        wait_seeding(&first).await;
        let with_10 = ours();
        let rest = add_all(&s, &metas[10..], dir.path()).await;
        wait_seeding(&rest).await;
        let with_200 = ours();
        // A thread per torrent would be 200 more. What does grow is the blocking pool, by how many
        // blocking jobs (data checks, resume saves) overlap at once, which a loaded machine raises
        // (5 threads with 10 torrents and 15 with 200 were seen with a core kept busy): bounded,
        // whatever the count of torrents.
        assert!(
            with_200 <= 32,
            "{with_10} threads with 10 torrents, {with_200} with 200"
        );
        s.shutdown(Duration::from_secs(10)).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torrents_starting_together_announce_in_turn() {
    let (base, seen) = http_double_timed(|_| (200, b"d8:intervali1800e5:peers0:e".to_vec())).await;
    let dir = tempfile::tempdir().unwrap();
    let n = 30;
    let metas = small_torrents(dir.path(), n, vec![format!("{base}/announce")]);
    let spacing = Duration::from_millis(20);
    let s = session_with(SessionConfig {
        announce_spacing: spacing,
        ..Default::default()
    })
    .await;
    let start = Instant::now();
    for m in &metas {
        let o = AddOptions {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        s.add(m.clone(), o).await.unwrap();
    }
    let bound = spacing * n as u32 + Duration::from_secs(10);
    wait_until("every torrent's first announce", bound, || {
        arrivals(&seen.lock().unwrap(), None).len() == n
    })
    .await;
    let times = arrivals(&seen.lock().unwrap(), None);
    let spread = times[n - 1] - times[0];
    // In turn: n announces at least `spacing` apart (less some timer slack), not all at once.
    assert!(
        spread >= spacing.mul_f64((n - 1) as f64 * 0.8),
        "{n} announces within {spread:?}"
    );
    assert!(times[n - 1] - start <= bound);
    s.shutdown(Duration::from_secs(5)).await;
}

/// When each torrent's announce with `event` reached the tracker double (its first such), sorted.
fn arrivals(seen: &[(Instant, String)], event: Option<&str>) -> Vec<Instant> {
    let mut first: HashMap<String, Instant> = HashMap::new();
    for (at, line) in seen {
        if event.is_some_and(|e| !line.contains(&format!("event={e}"))) {
            continue;
        }
        let hash = line.split("info_hash=").nth(1).unwrap_or("");
        let hash = hash.split('&').next().unwrap_or("").to_string();
        first.entry(hash).or_insert(*at);
    }
    let mut times: Vec<Instant> = first.into_values().collect();
    times.sort();
    times
}

/// `n` torrents announcing to a tracker double, started with `spacing` and seeding; their `started`
/// announces all answered. Returns the session and what the double saw.
async fn announced_torrents(
    dir: &Path,
    n: usize,
    spacing: Duration,
) -> (
    Session,
    std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
) {
    let (base, seen) = http_double_timed(|_| (200, b"d8:intervali1800e5:peers0:e".to_vec())).await;
    let metas = small_torrents(dir, n, vec![format!("{base}/announce")]);
    let s = session_with(SessionConfig {
        announce_spacing: spacing,
        ..Default::default()
    })
    .await;
    let mut hs = Vec::new();
    for m in &metas {
        let o = AddOptions {
            data_dir: dir.to_path_buf(),
            ..Default::default()
        };
        hs.push(s.add(m.clone(), o).await.unwrap());
    }
    let bound = spacing * n as u32 + Duration::from_secs(20);
    wait_until("every torrent's started announce answered", bound, || {
        hs.iter()
            .all(|h| h.tracker_status().iter().all(|(_, st)| st.answered > 0))
    })
    .await;
    (s, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torrents_stopping_together_announce_stopped_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let (n, spacing) = (30, Duration::from_millis(20));
    let (s, seen) = announced_torrents(dir.path(), n, spacing).await;
    let start = Instant::now();
    s.shutdown(Duration::from_secs(5)).await;
    let took = start.elapsed();
    let times = arrivals(&seen.lock().unwrap(), Some("stopped"));
    assert_eq!(times.len(), n, "every torrent said it stopped");
    let spread = times[n - 1] - times[0];
    // In turn: n announces at least `spacing` apart (less some timer slack), not all at once.
    assert!(
        spread >= spacing.mul_f64((n - 1) as f64 * 0.8),
        "{n} stopped announces within {spread:?}"
    );
    assert!(took <= Duration::from_secs(5), "the shutdown took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_announces_squeeze_into_half_the_grace() {
    // Turns of 100 ms would take 2.9 s for 30 torrents: a shutdown with a grace of 1 s spreads them
    // over half a second instead, and every one still goes.
    let dir = tempfile::tempdir().unwrap();
    let (n, spacing) = (30, Duration::from_millis(100));
    let (s, seen) = announced_torrents(dir.path(), n, spacing).await;
    let grace = Duration::from_secs(1);
    let start = Instant::now();
    s.shutdown(grace).await;
    let took = start.elapsed();
    let times = arrivals(&seen.lock().unwrap(), Some("stopped"));
    assert_eq!(times.len(), n, "every torrent said it stopped");
    let spread = times[n - 1] - times[0];
    let squeezed = grace / 2 / n as u32;
    assert!(
        spread >= squeezed.mul_f64((n - 1) as f64 * 0.8) && spread <= grace,
        "{n} stopped announces within {spread:?}"
    );
    // Within the grace and the teardown after it (slower on a busy machine), still short of the
    // 2.9 s that turns at their own pace would take.
    assert!(
        took <= grace + Duration::from_millis(1500),
        "the shutdown took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_files_stay_within_the_bound_while_serving_many_torrents() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    std::fs::create_dir_all(&src).unwrap();
    let metas = small_torrents(&src, 40, vec![]);
    let bound = 8;
    let cfg = SessionConfig {
        max_open_files: bound,
        ..Default::default()
    };
    let seeder = session_with(cfg.clone()).await;
    let seeds = add_all(&seeder, &metas, &src).await;
    wait_seeding(&seeds).await;
    let leecher = session_with(cfg).await;
    let mut hs = Vec::new();
    for m in &metas {
        let o = opts(&dst, vec![seeder.listen_addr()]);
        hs.push(leecher.add(m.clone(), o).await.unwrap());
    }
    let (mut most_seeder, mut most_leecher) = (0, 0);
    wait_until("every download complete", Duration::from_secs(60), || {
        most_seeder = most_seeder.max(seeder.open_files());
        most_leecher = most_leecher.max(leecher.open_files());
        hs.iter().all(|h| h.stats().state == TorrentState::Seeding)
    })
    .await;
    assert!(
        (1..=bound).contains(&most_seeder) && (1..=bound).contains(&most_leecher),
        "at most {most_seeder} files open serving, {most_leecher} downloading (bound {bound})"
    );
    assert_same_tree(&src, &dst);
    leecher.shutdown(Duration::from_secs(5)).await;
    seeder.shutdown(Duration::from_secs(5)).await;
}
