//! Peers that find each other only through btorrent's tracker, and a tracker that restarts (losing
//! every swarm) in the middle of a transfer: the transfer goes on, and a peer that arrives after the
//! restart still finds the others once they re-announce.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::tracker::TestTracker;
use crate::support::*;
use btorrent::engine::{AddOptions, SessionConfig};
use btorrent::tracker::TrackerConfig;

/// Announces every 10 s (at most every 5 s): peers find a restarted tracker again quickly.
async fn start_tracker(bind: SocketAddr) -> TestTracker {
    let cfg = TrackerConfig {
        interval: Duration::from_secs(10),
        min_interval: Duration::from_secs(5),
        ..Default::default()
    };
    TestTracker::start_on(bind, cfg).await
}

fn via_tracker(dir: &std::path::Path) -> AddOptions {
    AddOptions {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_restart_mid_transfer_and_the_swarm_carries_on() {
    init_logs();
    let tracker = start_tracker("127.0.0.1:0".parse().unwrap()).await;
    let addr = tracker.addr;
    let src = tempfile::tempdir().unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_random(&src.path().join("d.bin"), 6 * 1024 * 1024, 21);
    let meta = torrent(
        &src.path().join("d.bin"),
        32 * 1024,
        vec![format!("http://{addr}/announce")],
    );
    let seeder = session_with(SessionConfig {
        upload_limit: Some(2 << 20),
        ..Default::default()
    })
    .await;
    let s = seeder
        .add(meta.clone(), via_tracker(src.path()))
        .await
        .unwrap();
    wait_complete(&s, 30).await;
    let first = session().await;
    let l1 = first
        .add(meta.clone(), via_tracker(d1.path()))
        .await
        .unwrap();
    let total = meta.info.piece_count();
    wait_until("a fifth of the pieces", Duration::from_secs(30), || {
        l1.stats().pieces_have >= total / 5
    })
    .await;

    // The tracker goes away (with every swarm it knew) and comes back empty on the same port.
    tracker.stop().await;
    assert!(
        l1.stats().pieces_have < total,
        "finished before the restart"
    );
    let again = start_tracker(addr).await;
    assert_eq!(again.addr, addr);

    wait_complete(&l1, 60).await;
    assert_same_tree(src.path(), d1.path());

    // A newcomer knows only the tracker; the others re-announce to the new one and meet it.
    let second = session().await;
    let l2 = second
        .add(meta.clone(), via_tracker(d2.path()))
        .await
        .unwrap();
    wait_complete(&l2, 90).await;
    assert_same_tree(src.path(), d2.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_on_other_addresses_of_the_host_meet_through_the_tracker() {
    // A host with several addresses: each peer listens on one of them and must announce from it,
    // or the tracker hands out an address where nobody listens.
    let tracker = start_tracker("127.0.0.1:0".parse().unwrap()).await;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 1 << 20, 22);
    let meta = torrent(
        &src.path().join("d.bin"),
        32 * 1024,
        vec![format!("http://{}/announce", tracker.addr)],
    );
    let on = |ip: &str| SessionConfig {
        listen: format!("{ip}:0").parse().unwrap(),
        ..Default::default()
    };
    let seeder = session_with(on("127.0.0.3")).await;
    let s = seeder
        .add(meta.clone(), via_tracker(src.path()))
        .await
        .unwrap();
    wait_complete(&s, 30).await;
    let leecher = session_with(on("127.0.0.4")).await;
    let l = leecher
        .add(meta.clone(), via_tracker(dst.path()))
        .await
        .unwrap();
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
}
