//! Peers that find each other only through btorrent's tracker, and a tracker that restarts (losing
//! every swarm) in the middle of a transfer: the transfer goes on, and a peer that arrives after the
//! restart still finds the others once they re-announce.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use btorrent::engine::{AddOptions, SessionConfig};
use btorrent::tracker::{Tracker, TrackerConfig};
use common::*;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

async fn start_tracker(bind: SocketAddr) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let cfg = TrackerConfig {
        interval: Duration::from_secs(10),
        min_interval: Duration::from_secs(5),
        ..Default::default()
    };
    let task = tokio::spawn(async move {
        let _ = Tracker::new(cfg)
            .serve(listener, async move {
                let _ = rx.await;
            })
            .await;
    });
    (addr, tx, task)
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
    let (addr, stop, task) = start_tracker("127.0.0.1:0".parse().unwrap()).await;
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
    wait_until(30, "a fifth of the pieces", || {
        l1.stats().pieces_have >= total / 5
    })
    .await;

    // The tracker goes away (with every swarm it knew) and comes back empty on the same port.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("tracker stopped")
        .unwrap();
    assert!(
        l1.stats().pieces_have < total,
        "finished before the restart"
    );
    let (again, _stop2, _task2) = start_tracker(addr).await;
    assert_eq!(again, addr);

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
