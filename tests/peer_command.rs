//! `b-peer` and the tracker primitives (`announce`, `peers`, `scrape`) against a `btorrent tracker`
//! process on 127.0.0.1.

mod support;

use support::cli::{ok, run, tracker_process};

#[test]
fn b_peer_lists_what_was_announced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("torrents.toml"),
        "[settings]\nlisten_port = 7123\n",
    )
    .unwrap();
    let (_tracker, url) = tracker_process(dir.path());

    let empty = ok(dir.path(), &["peer", &url]);
    assert!(empty.contains("no active peers"), "{empty}");

    std::fs::write(dir.path().join("data.bin"), vec![5u8; 50_000]).unwrap();
    ok(dir.path(), &["create", "data.bin", &url]);
    std::fs::write(
        dir.path().join("hello.rhai"),
        "let r = announce(\"torrents/data.bin.torrent\", \"started\");\nprint(r.complete);\nlet s = scrape(\"torrents/data.bin.torrent\");\nprint(s.complete);\n",
    )
    .unwrap();
    // Registered by b-create as seeding, so it announces left=0: one seeder.
    assert_eq!(ok(dir.path(), &["run", "hello.rhai"]), "1\n1\n");

    let table = ok(dir.path(), &["peer", &url]);
    assert!(table.contains("127.0.0.1:7123"), "{table}");
    assert!(table.contains("-BT0100-"), "{table}");
    assert!(table.contains("data.bin"), "{table}");
    assert!(table.contains("seed"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["peer", &url, "--json"])).unwrap();
    assert_eq!(json[0]["port"], 7123);
    let filtered = ok(dir.path(), &["peer", &url, "--torrent", "data.bin"]);
    assert!(filtered.contains("127.0.0.1:7123"), "{filtered}");

    let err = run(dir.path(), &["peer", "http://127.0.0.1:1/announce"]);
    assert!(!err.status.success());
    let msg = String::from_utf8_lossy(&err.stderr);
    assert!(
        msg.contains("b-peer") && msg.contains("127.0.0.1:1"),
        "{msg}"
    );
}
