//! `default-trackers` over the RPC (rpc-version 17): set as text (a blank line between tiers),
//! read back, kept in torrents.toml, announced to at once by a running public torrent (its
//! `trackerStats` list it, its `trackerList` does not), refused when a line is no tracker URL.

use serde_json::json;

use crate::support::engine::runtime;
use crate::support::rpc::{poll, torrent_get, RpcDaemon};
use crate::support::tracker::http_double;

#[test]
fn default_trackers_are_set_kept_and_announced_to() {
    let rt = runtime();
    let reply = |_: &str| (200, b"d8:intervali1800e5:peers0:e".to_vec());
    let (base, seen) = rt.block_on(http_double(reply));
    let url = format!("{base}/announce");
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (meta, _) = c.add_seeding(dir.path(), 23);
    let hash = meta.info_hash.to_hex();
    let get = |c: &mut crate::support::rpc::Client| {
        c.ok("session-get", json!({"fields": ["default-trackers"]}))["default-trackers"].clone()
    };
    assert_eq!(get(&mut c), json!(""));

    let text = format!("{url}\n\nudp://127.0.0.1:9/announce\n");
    c.ok("session-set", json!({"default-trackers": text}));
    assert_eq!(
        get(&mut c),
        json!(format!("{url}\n\nudp://127.0.0.1:9/announce"))
    );
    let ih = format!(
        "info_hash={}",
        btorrent::announce::encode(&meta.info_hash.0)
    );
    let started = || {
        let lines = seen.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.contains("event=started") && l.contains(&ih))
            .count()
    };
    poll("the announce to the default tracker", 30, || {
        (started() == 1).then_some(())
    });
    let t = torrent_get(&mut c, json!(hash), &["trackerStats", "trackerList"])
        .pop()
        .unwrap();
    let stats: Vec<&str> = t["trackerStats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["announce"].as_str().unwrap())
        .collect();
    assert_eq!(stats, [url.as_str(), "udp://127.0.0.1:9/announce"]);
    assert_eq!(
        t["trackerList"], "",
        "the defaults are not the torrent's own"
    );

    // Kept, and again in force after a restart.
    let text = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert!(text.contains("default_trackers = [["), "{text}");
    let d = d.restart();
    let mut c = d.client();
    assert_eq!(
        get(&mut c),
        json!(format!("{url}\n\nudp://127.0.0.1:9/announce"))
    );
    poll("the announce after the restart", 30, || {
        (started() == 2).then_some(())
    });

    // A line that is no tracker URL: refused, nothing changed.
    let v = c.call("session-set", json!({"default-trackers": "not a url"}));
    assert!(
        v["result"].as_str().unwrap().contains("not a tracker URL"),
        "{v}"
    );
    c.ok("session-set", json!({"default-trackers": ""}));
    assert_eq!(get(&mut c), json!(""));
    let text = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert!(!text.contains("default_trackers"), "{text}");
    drop(rt);
}
