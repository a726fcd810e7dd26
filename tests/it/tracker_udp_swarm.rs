//! `udp://` trackers end to end: a torrent whose only tracker is the embedded tracker's UDP side
//! downloads from a seeder (peers meet through UDP announces alone); a UDP tracker that refuses gets
//! the back-off and the once-per-streak warning of any other; and the script primitives `announce()`
//! and `scrape()` speak UDP to a `btorrent tracker` process, which answers UDP on its HTTP port.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::cli::{ok, tracker_process};
use crate::support::logs::Logs;
use crate::support::*;
use btorrent::announce::AnnounceResponse;
use btorrent::engine::{AddOptions, SessionConfig};
use btorrent::services::RunningTracker;
use btorrent::udp_tracker::{Request, Response};

/// A UDP tracker double: answers connects, and announces with no peers while `up`, else with an
/// error packet. Returns its announce URL and the count of announces it got.
async fn udp_double(up: Arc<AtomicBool>) -> (String, Arc<AtomicUsize>) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let url = format!("udp://{}/announce", sock.local_addr().unwrap());
    let announces = Arc::new(AtomicUsize::new(0));
    let count = announces.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((len, from)) = sock.recv_from(&mut buf).await {
            let reply = match Request::decode(&buf[..len]) {
                Ok(Request::Connect { transaction_id }) => Response::Connect {
                    transaction_id,
                    connection_id: 42,
                },
                Ok(Request::Announce { transaction_id, .. }) => {
                    count.fetch_add(1, Ordering::SeqCst);
                    if up.load(Ordering::SeqCst) {
                        Response::Announce {
                            transaction_id,
                            reply: AnnounceResponse {
                                interval: Duration::from_secs(60),
                                min_interval: None,
                                complete: Some(1),
                                incomplete: Some(0),
                                downloaded: None,
                                downloaders: None,
                                peers: vec![],
                                warning: None,
                            },
                        }
                    } else {
                        Response::Error {
                            transaction_id,
                            message: "down for maintenance".into(),
                        }
                    }
                }
                _ => continue,
            };
            let mut out = Vec::new();
            reply.encode(false, &mut out);
            let _ = sock.send_to(&out, from).await;
        }
    });
    (url, announces)
}

/// The back-off and warning rules of `tracker_backoff.rs`, over UDP: one warning when the tracker
/// starts refusing, retries spaced by the back-off and quiet, one word when it answers again.
#[tokio::test]
async fn a_refusing_udp_tracker_backs_off_and_warns_once_per_streak() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let up = Arc::new(AtomicBool::new(false));
    let (url, announces) = udp_double(up.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("f.bin"), 100_000, 8);
    let meta = torrent(&dir.path().join("f.bin"), 32 * 1024, vec![url.clone()]);
    let s = session_with(SessionConfig {
        tracker_backoff: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let start = std::time::Instant::now();
    let _h = s
        .add(
            meta,
            AddOptions {
                data_dir: dir.path().to_path_buf(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_until("4 refused announces", Duration::from_secs(20), || {
        announces.load(Ordering::SeqCst) >= 4
    })
    .await;
    // 200 ms, 400 ms, 800 ms (each +-20 %) between them: not before 1.1 s.
    assert!(
        start.elapsed() >= Duration::from_millis(1100),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(logs.count("announce failed"), 1, "one warning per streak");
    assert_eq!(logs.count("down for maintenance"), 1);
    up.store(true, Ordering::SeqCst);
    wait_until("the recovery warning", Duration::from_secs(20), || {
        logs.count("answers again") == 1
    })
    .await;
    assert_eq!(logs.count("announce failed"), 1);
    s.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_with_a_udp_tracker_downloads_through_the_embedded_tracker() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tracker.toml");
    std::fs::write(&cfg, "[settings]\n").unwrap();
    let running = RunningTracker::start(&cfg, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let (src, dst) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_random(&src.path().join("u.bin"), 1 << 20, 31);
    let url = format!("udp://127.0.0.1:{}/announce", running.addr.port());
    let meta = torrent(&src.path().join("u.bin"), 32 * 1024, vec![url]);
    let via_tracker = |d: &std::path::Path| AddOptions {
        data_dir: d.to_path_buf(),
        ..Default::default()
    };
    let seeder = session().await;
    let s = seeder
        .add(meta.clone(), via_tracker(src.path()))
        .await
        .unwrap();
    wait_complete(&s, 30).await;
    let leecher = session().await;
    let l = leecher
        .add(meta.clone(), via_tracker(dst.path()))
        .await
        .unwrap();
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
    let stats = running.tracker.stats();
    assert!(stats.udp_announces >= 2, "{stats:?}");
    assert_eq!(stats.failures, 0, "{stats:?}");
    running.stop().await;
}

#[test]
fn script_announce_and_scrape_speak_udp_to_a_tracker_process() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("torrents.toml"),
        "[settings]\nlisten_port = 7124\n",
    )
    .unwrap();
    let (_tracker, http_url) = tracker_process(dir.path());
    let url = http_url.replace("http://", "udp://");
    std::fs::write(dir.path().join("data.bin"), vec![6u8; 40_000]).unwrap();
    ok(dir.path(), &["create", "data.bin", &url]);
    std::fs::write(
        dir.path().join("u.rhai"),
        "let r = announce(\"torrents/data.bin.torrent\", \"started\");\nprint(r.complete);\nlet s = scrape(\"torrents/data.bin.torrent\");\nprint(s.complete);\n",
    )
    .unwrap();
    assert_eq!(ok(dir.path(), &["run", "u.rhai"]), "1\n1\n");
    // The HTTP listing shows the peer the UDP announce recorded.
    let table = ok(dir.path(), &["peer", &http_url]);
    assert!(table.contains("127.0.0.1:7124"), "{table}");
}
