//! `b-peer` and the tracker primitives (`announce`, `peers`, `scrape`) against a `btorrent tracker`
//! process on 127.0.0.1.

use std::process::Stdio;

use crate::support::cli::{bin, ok, run, tracker_process};
use crate::support::Proc;

#[test]
fn announce_with_listen_port_0_gives_the_port_actually_listened_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("torrents.toml"),
        "[settings]\nlisten_port = 0\nlisten_ip = \"127.0.0.1\"\n",
    )
    .unwrap();
    let (_tracker, url) = tracker_process(dir.path());
    std::fs::write(dir.path().join("data.bin"), vec![5u8; 30_000]).unwrap();
    ok(dir.path(), &["create", "data.bin", &url]);
    // No session yet: one is started, so the tracker gets a port that was really listened on.
    std::fs::write(
        dir.path().join("a.rhai"),
        "let r = announce(\"torrents/data.bin.torrent\", \"started\");\nprint(r.complete);\n",
    )
    .unwrap();
    assert_eq!(ok(dir.path(), &["run", "a.rhai"]), "1\n");
    let json: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["peer", &url, "--json"])).unwrap();
    let port = json[0]["port"].as_u64().unwrap();
    assert_ne!(port, 0, "{json}");
    // With a session running, the announce speaks for it: its port and peer id.
    std::fs::write(
        dir.path().join("b.rhai"),
        format!(
            "seed(\"torrents/data.bin.torrent\", \".\");\nannounce(\"torrents/data.bin.torrent\", \"none\");\nfor p in peers(\"{url}\") {{ print(p.port); }}\n"
        ),
    )
    .unwrap();
    let ports = ok(dir.path(), &["run", "b.rhai"]);
    let ports: Vec<&str> = ports.lines().collect();
    assert_eq!(
        ports.len(),
        2,
        "the first run's peer and this one: {ports:?}"
    );
}

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
        "let r = announce(\"torrents/data.bin.torrent\", \"started\");\nprint(`${r.complete} ${r.downloaders}`);\nlet s = scrape(\"torrents/data.bin.torrent\");\nprint(`${s.complete} ${s.downloaders}`);\n",
    )
    .unwrap();
    // Registered by b-create as seeding, so it announces left=0: one seeder, nobody downloading.
    assert_eq!(ok(dir.path(), &["run", "hello.rhai"]), "1 0\n1 0\n");

    let table = ok(dir.path(), &["peer", &url]);
    assert!(table.contains("127.0.0.1:7123"), "{table}");
    assert!(table.contains("-BT0100-"), "{table}");
    assert!(table.contains("data.bin"), "{table}");
    assert!(table.contains("seed"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(dir.path(), &["peer", &url, "--json"])).unwrap();
    assert_eq!(json[0]["port"], 7123);
    // The torrents column lists names separated by commas, nothing before the first.
    assert!(table.contains("┆ data.bin "), "{table}");
    std::fs::write(dir.path().join("more.bin"), vec![6u8; 20_000]).unwrap();
    ok(dir.path(), &["create", "more.bin", &url]);
    std::fs::write(
        dir.path().join("more.rhai"),
        "announce(\"torrents/more.bin.torrent\", \"started\");\n",
    )
    .unwrap();
    ok(dir.path(), &["run", "more.rhai"]);
    let table = ok(dir.path(), &["peer", &url]);
    assert!(
        table.contains("┆ data.bin, more.bin ") || table.contains("┆ more.bin, data.bin "),
        "{table}"
    );
    let filtered = ok(dir.path(), &["peer", &url, "--torrent", "data.bin"]);
    assert!(filtered.contains("127.0.0.1:7123"), "{filtered}");
    // A torrent this machine does not manage has no name here: counted, not shown as a bare hash.
    std::fs::write(
        dir.path().join("forget.rhai"),
        "unregister(\"more.bin\");\n",
    )
    .unwrap();
    ok(dir.path(), &["run", "forget.rhai"]);
    let table = ok(dir.path(), &["peer", &url]);
    assert!(table.contains("┆ data.bin +1 not managed here "), "{table}");

    let err = run(dir.path(), &["peer", "http://127.0.0.1:1/announce"]);
    assert!(!err.status.success());
    let msg = String::from_utf8_lossy(&err.stderr);
    assert!(
        msg.contains("b-peer") && msg.contains("127.0.0.1:1"),
        "{msg}"
    );
}

/// A tracker that accepts connections and never answers.
fn silent_tracker() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/announce", l.local_addr().unwrap());
    (l, url)
}

#[test]
fn a_tracker_that_never_answers_fails_each_call_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("torrents.toml"),
        "[settings]\nlisten_port = 7124\n",
    )
    .unwrap();
    let (_listener, url) = silent_tracker();
    std::fs::write(dir.path().join("data.bin"), vec![5u8; 50_000]).unwrap();
    ok(dir.path(), &["create", "data.bin", &url, "-o", "t.torrent"]);
    let calls = [
        (
            "announce.rhai",
            "announce(\"t.torrent\", \"started\");".to_string(),
        ),
        ("scrape.rhai", "scrape(\"t.torrent\");".to_string()),
        ("peers.rhai", format!("peers(\"{url}\");")),
    ];
    let started = std::time::Instant::now();
    let children: Vec<_> = calls
        .iter()
        .map(|(file, src)| {
            std::fs::write(dir.path().join(file), src).unwrap();
            let p = Proc::spawn(
                bin()
                    .args(["run", file])
                    .current_dir(dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped()),
            );
            (file, p)
        })
        .collect();
    for (file, mut child) in children {
        let status = loop {
            if let Some(s) = child.exited() {
                break s;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(25),
                "{file} still waits for the silent tracker"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(child.child.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(1), "{file}: {err}");
        assert!(err.contains("timed out"), "{file}: {err}");
        assert_eq!(err.lines().count(), 1, "{file}: {err}");
    }
}
