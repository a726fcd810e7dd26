//! `udp://` trackers end to end: a torrent whose only tracker is the embedded tracker's UDP side
//! downloads from a seeder (peers meet through UDP announces alone), and the script primitives
//! `announce()` and `scrape()` speak UDP to a `btorrent tracker` process, which answers UDP on its
//! HTTP port.

use crate::support::cli::{ok, tracker_process};
use crate::support::*;
use btorrent::engine::AddOptions;
use btorrent::services::RunningTracker;

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
