//! `btorrent check` (the bundled `b-check`): a forced re-check that ignores resume data, one-shot on a
//! torrent that runs nowhere and through the control socket of a daemon that seeds it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::cli::{bin, ok};
use crate::support::{rot_byte, write_tree, Proc};

fn settings(dir: &Path) {
    std::fs::write(
        dir.join("torrents.toml"),
        "[settings]\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\n",
    )
    .unwrap();
}

/// A managed torrent "share" of one 300 kB file in 16 KiB pieces, its resume data saying complete.
fn share(root: &Path) {
    settings(root);
    write_tree(root, &[("share/a.bin", 300_000)]);
    ok(
        root,
        &[
            "create",
            "share",
            "http://127.0.0.1:1/announce",
            "--piece-length",
            "16K",
        ],
    );
}

#[test]
fn one_shot_check_finds_a_flipped_byte_and_appended_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    share(root);
    ok(root, &["pause", "share"]);
    let out = ok(root, &["check", "share"]);
    assert!(out.contains("share: 19 of 19 pieces good, 0 bad"), "{out}");

    rot_byte(&root.join("share/a.bin"), 5 * 16384 + 77);
    let out = ok(root, &["check", "share"]);
    assert!(
        out.contains("share: 18 of 19 pieces good, 1 bad\n"),
        "{out}"
    );
    assert!(
        out.contains("bad pieces (downloaded again when it runs): [5]"),
        "{out}"
    );

    // The check saved what it found: piece 5 is missing now. Bytes appended are reported.
    let mut f = std::fs::File::options()
        .append(true)
        .open(root.join("share/a.bin"))
        .unwrap();
    std::io::Write::write_all(&mut f, &[1; 333]).unwrap();
    drop(f);
    let out = ok(root, &["check", "share"]);
    assert!(
        out.contains("share: 18 of 19 pieces good, 0 bad, 1 missing"),
        "{out}"
    );
    assert!(
        out.contains("a.bin: 333 bytes longer than the torrent says"),
        "{out}"
    );
    // Checking changed nothing that torrents.toml records.
    let cfg = btorrent::config::Config::load(&root.join("torrents.toml")).unwrap();
    assert_eq!(cfg.torrents[0].state, "paused");
    let missing = crate::support::cli::run(root, &["check", "nothing-like-it"]);
    assert!(!missing.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_through_the_daemon_withdraws_the_rotten_piece() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    share(root);
    let d = Proc::spawn_logged(
        bin().arg("daemon").current_dir(root).stdin(Stdio::null()),
        root.join("daemon.log"),
    );
    let shown = || -> serde_json::Value {
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&ok(root, &["show", "--json"])).unwrap();
        list.into_iter().find(|t| t["name"] == "share").unwrap()
    };
    let start = Instant::now();
    while !(shown()["running"] == true && shown()["state"] == "seeding") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the daemon never seeded: {}\n{}",
            shown(),
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    rot_byte(&root.join("share/a.bin"), 11 * 16384);
    let out = ok(root, &["check", "share"]);
    assert!(out.contains("share: 18 of 19 pieces good, 1 bad"), "{out}");
    assert!(
        out.contains("bad pieces (being downloaded again): [11]"),
        "{out}"
    );
    let t = shown();
    assert_eq!(t["state"], "downloading", "{t}");
    assert_eq!(t["pieces_withdrawn"], 1, "{t}");
}
