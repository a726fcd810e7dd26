//! torrents.toml with every number at the edge of what it can hold: the daemon starts with its
//! tracker, watch folder and RPC, seeds, takes a dropped file in, and nothing in it panics (times
//! past what the clock can add, peer counts that overflowed a product, a socket budget past what
//! a semaphore holds did).

use serde_json::json;

use crate::support::rpc::{poll, torrent_get, RpcDaemon};

const HUGE: &str = "9223372036854775807";

#[test]
fn a_daemon_of_the_largest_numbers_runs_and_nothing_panics() {
    let dir = tempfile::tempdir().unwrap();
    let settings: String = [
        "tracker_interval",
        "watch_quiet_secs",
        "watch_rescan_secs",
        "script_max_operations",
        "max_peers",
        "max_peers_per_ip",
        "max_connections",
        "follow_interval",
        "seed_idle_minutes",
        "queue_stalled_minutes",
        "upload_limit",
        "download_limit",
    ]
    .iter()
    .map(|key| format!("{key} = {HUGE}\n"))
    .collect();
    let extra = format!(
        "tracker_bind = \"127.0.0.1:0\"\nwatch_dir = \"watch\"\nseed_ratio_limit = 1e308\n\
         download_queue_size = 4294967295\n{settings}"
    );
    let d = RpcDaemon::start(dir.path(), &extra);
    let mut c = d.client();
    c.add_seeding(dir.path(), 62);
    // The watch folder's quiet period is a day now, so a drop is noticed, not yet taken in; its
    // pass over the folder runs.
    std::fs::create_dir_all(dir.path().join("watch")).unwrap();
    std::fs::write(dir.path().join("watch/dropped.bin"), vec![7u8; 100_000]).unwrap();
    let session = c.ok("session-get", json!({"fields": ["peer-limit-global"]}));
    assert!(session["peer-limit-global"].as_u64().unwrap() > 0);
    poll("the daemon to run a while", 30, || {
        let log = d.proc.log_text();
        assert!(!log.contains("panicked"), "{log}");
        (torrent_get(&mut c, json!(null), &["status"])[0]["status"] == 6 && log.contains("watch"))
            .then_some(())
    });
    let log = d.proc.log_text();
    assert!(!log.contains("panicked"), "{log}");
}
