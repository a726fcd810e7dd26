//! The peer commands end to end, as separate processes on 127.0.0.1: `btorrent tracker`,
//! `btorrent seed`, `btorrent start`, and the `bitfield` / `download_piece` primitives.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::cli::{bin, downloaded, loopback_home, ok, run, tracker_process};
use crate::support::{random_bytes, Proc};
use btorrent::Metainfo;

/// A folder with its own torrents.toml: ephemeral peer port on 127.0.0.1, the given tracker.
fn node(root: &Path, name: &str, tracker_url: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("torrents.toml"),
        format!(
            "[settings]\nlisten_port = 0\nlisten_ip = \"127.0.0.1\"\ntracker_url = \"{tracker_url}\"\n"
        ),
    )
    .unwrap();
    dir
}

/// Starts `btorrent tracker` on an ephemeral port and returns it with its announce URL.
fn tracker(root: &Path) -> (Proc, String) {
    tracker_process(&node(root, "tracker", "http://unused/announce"))
}

/// Starts `btorrent seed` (with `extra` arguments) and waits until the tracker lists a seeder for
/// the torrent.
fn seeder(
    dir: &Path,
    torrent: &str,
    data: &str,
    extra: &[&str],
    tracker_url: &str,
    ih: &str,
) -> Proc {
    let p = Proc::spawn(
        bin()
            .args(["seed", torrent, "--data", data])
            .args(extra)
            .current_dir(dir)
            .stdout(Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(dir, &["peer", tracker_url, "--json"]);
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains(ih) && text.contains("\"left\": 0") {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "the seeder never announced: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn start_downloads_through_the_tracker_and_exits_zero() {
    let root = tempfile::tempdir().unwrap();
    let (_tracker, url) = tracker(root.path());
    let seed_dir = node(root.path(), "seed", &url);
    let leech_dir = node(root.path(), "leech", &url);
    std::fs::create_dir_all(seed_dir.join("share/docs")).unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("share/big.bin", random_bytes(3_000_001, 1)),
        ("share/docs/small.txt", b"tiny".to_vec()),
        ("share/docs/empty", Vec::new()),
    ];
    for (p, bytes) in &files {
        std::fs::write(seed_dir.join(p), bytes).unwrap();
    }
    ok(&seed_dir, &["create", "share", "--piece-length", "64K"]);
    let torrent = seed_dir.join("torrents/share.torrent");
    let meta = Metainfo::load(&torrent).unwrap();
    let ih = meta.info_hash.to_hex();
    // Seeded with an upload limit and bandwidth priority of its own, which torrents.toml keeps.
    let _seed = seeder(
        &seed_dir,
        "torrents/share.torrent",
        ".",
        &["--up-limit", "4M", "--priority", "high"],
        &url,
        &ih,
    );
    let kept = || {
        let l = btorrent::config::Config::load(&seed_dir.join("torrents.toml"))
            .unwrap()
            .find(&meta.info_hash)
            .unwrap()
            .limits
            .engine();
        (l.upload, l.priority)
    };
    let want = (Some(4 << 20), btorrent::engine::Priority::High);
    let deadline = Instant::now() + Duration::from_secs(30);
    while kept() != want {
        assert!(Instant::now() < deadline, "torrents.toml kept {:?}", kept());
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = run(
        &leech_dir,
        &["start", torrent.to_str().unwrap(), "--output", "dl"],
    );
    downloaded(&out);
    for (p, bytes) in &files {
        assert_eq!(
            &std::fs::read(leech_dir.join("dl").join(p)).unwrap(),
            bytes,
            "{p}"
        );
    }
    let cfg = btorrent::config::Config::load(&leech_dir.join("torrents.toml")).unwrap();
    assert_eq!(cfg.torrents.len(), 1);
    assert_eq!(cfg.torrents[0].state, "seeding");
    assert!(leech_dir.join("torrents/share.torrent").exists());

    // Starting it again finds the data complete and exits at once.
    let again = ok(&leech_dir, &["start", "torrents/share.torrent", "-o", "dl"]);
    assert!(again.contains("already complete"), "{again}");

    // Half the big file lost: only that half is fetched, and the summary says so.
    let big = leech_dir.join("dl/share/big.bin");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(1_500_000)
        .unwrap();
    let again = ok(&leech_dir, &["start", "torrents/share.torrent", "-o", "dl"]);
    assert_eq!(std::fs::read(&big).unwrap(), files[0].1);
    let line = again.lines().last().unwrap();
    assert!(line.contains("downloaded and verified"), "{again}");
    assert!(line.contains("already there"), "{again}");
    assert!(
        !line.contains(&format!(
            "share: {} downloaded",
            btorrent::units::human_bytes(meta.info.total_length)
        )),
        "not all of it was downloaded: {again}"
    );
}

#[test]
fn probe_primitives_fetch_bitfield_and_one_piece() {
    let root = tempfile::tempdir().unwrap();
    let (_tracker, url) = tracker(root.path());
    let seed_dir = node(root.path(), "seed", &url);
    // A super-seeding seed shows a prober only the pieces it offers it (see engine_superseed).
    let toml = seed_dir.join("torrents.toml");
    let settings = std::fs::read_to_string(&toml).unwrap() + "super_seed = false\n";
    std::fs::write(&toml, settings).unwrap();
    let data = random_bytes(200_000, 7);
    std::fs::write(seed_dir.join("f.bin"), &data).unwrap();
    ok(&seed_dir, &["create", "f.bin", "--piece-length", "16K"]);
    let meta = Metainfo::load(&seed_dir.join("torrents/f.bin.torrent")).unwrap();
    let _seed = seeder(
        &seed_dir,
        "torrents/f.bin.torrent",
        ".",
        &[],
        &url,
        &meta.info_hash.to_hex(),
    );
    let listing = ok(&seed_dir, &["peer", &url, "--json"]);
    let peers: serde_json::Value = serde_json::from_str(&listing).unwrap();
    let addr = format!("127.0.0.1:{}", peers[0]["port"]);
    std::fs::write(
        seed_dir.join("probe.rhai"),
        format!(
            "let bf = bitfield(\"{addr}\", \"torrents/f.bin.torrent\");\n\
             print(`${{bf.have}}/${{bf.total}} ${{bf.complete}}`);\n\
             let p = download_piece(\"{addr}\", \"torrents/f.bin.torrent\", 12);\n\
             print(p.len());\n\
             print(p[0]);\n"
        ),
    )
    .unwrap();
    let out = ok(&seed_dir, &["run", "probe.rhai"]);
    let piece12 = &data[12 * 16384..];
    assert_eq!(
        out,
        format!("13/13 true\n{}\n{}\n", piece12.len(), piece12[0])
    );
    std::fs::write(
        seed_dir.join("bad.rhai"),
        format!("download_piece(\"{addr}\", \"torrents/f.bin.torrent\", 99);\n"),
    )
    .unwrap();
    let out = run(&seed_dir, &["run", "bad.rhai"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("piece 99 does not exist"), "{err}");
}

#[test]
fn start_with_bad_input_fails_clearly() {
    let root = tempfile::tempdir().unwrap();
    let dir = node(root.path(), "n", "http://127.0.0.1:1/announce");
    std::fs::write(dir.join("junk.torrent"), b"d4:infoi1ee").unwrap();
    for (args, want) in [
        (vec!["start", "junk.torrent"], "not a valid .torrent"),
        (vec!["start", "missing.torrent"], "missing.torrent"),
        (
            vec!["seed", "junk.torrent", "--data", "."],
            "not a valid .torrent",
        ),
    ] {
        let out = run(&dir, &args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(err.lines().count() <= 2, "{err}");
    }
    assert!(!dir.join("output").exists(), "nothing written");
}

#[test]
fn start_with_stall_gives_up_when_nothing_arrives() {
    let root = tempfile::tempdir().unwrap();
    // The tracker refuses connections and no peer is given: nothing can arrive.
    let dir = node(root.path(), "n", "http://127.0.0.1:1/announce");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/a.bin"), random_bytes(100_000, 5)).unwrap();
    ok(&dir, &["create", "src/a.bin", "-o", "a.torrent"]);
    // Where resume data goes there is a file: saving it fails, with a warning.
    std::fs::write(dir.join(".btorrent"), b"in the way").unwrap();
    let started = Instant::now();
    let out = run(&dir, &["start", "a.torrent", "--stall", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("a.bin: nothing new verified for 1 s (0 peers, 0.0% done)"),
        "{err}"
    );
    assert!(err.lines().count() <= 3, "{err}");
    // A warning is one plain line, not a timestamped log record with a module path.
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: a.bin: cannot save resume data: ")),
        "{err}"
    );
    assert!(
        err.lines()
            .all(|l| l.starts_with("warning: ") || l.starts_with("btorrent: ")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    // A bad value is refused before anything starts.
    let out = run(&dir, &["start", "a.torrent", "--stall", "soon"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--stall"));
}

#[test]
fn a_disk_that_refuses_writes_is_reported_once() {
    let root = tempfile::tempdir().unwrap();
    let (_tracker, url) = tracker(root.path());
    let seed_dir = node(root.path(), "seed", &url);
    let leech_dir = node(root.path(), "leech", &url);
    std::fs::write(seed_dir.join("d.bin"), random_bytes(1 << 20, 7)).unwrap();
    ok(&seed_dir, &["create", "d.bin", "--piece-length", "32K"]);
    let torrent = seed_dir.join("torrents/d.bin.torrent");
    let ih = Metainfo::load(&torrent).unwrap().info_hash.to_hex();
    let _seed = seeder(&seed_dir, "torrents/d.bin.torrent", ".", &[], &url, &ih);
    // Where the file goes there is a folder: every piece write fails.
    std::fs::create_dir_all(leech_dir.join("dl/d.bin/in-the-way")).unwrap();
    let out = run(
        &leech_dir,
        &["start", torrent.to_str().unwrap(), "-o", "dl"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert_eq!(err.lines().count(), 1, "one line says it: {err}");
    assert!(err.starts_with("btorrent: b-start: "), "{err}");
}

#[test]
fn job_wait_with_a_timeout_and_live_torrent_figures() {
    let root = tempfile::tempdir().unwrap();
    let dir = node(root.path(), "n", "http://127.0.0.1:1/announce");
    std::fs::write(dir.join("a.bin"), random_bytes(100_000, 3)).unwrap();
    ok(&dir, &["create", "a.bin"]);
    std::fs::write(
        dir.join("s.rhai"),
        "let j = seed(\"torrents/a.bin.torrent\", \".\");\n\
         print(j.wait(10));\n\
         print(j.wait(0.5));\n\
         for t in torrents() { print(`${t.name} ${t.running} ${t.progress}`); }\n",
    )
    .unwrap();
    assert_eq!(ok(&dir, &["run", "s.rhai"]), "true\ntrue\na.bin true 1.0\n");
}

#[test]
fn job_wait_takes_any_number_and_refuses_what_is_not_a_time() {
    let root = tempfile::tempdir().unwrap();
    let dir = node(root.path(), "n", "http://127.0.0.1:1/announce");
    std::fs::write(dir.join("a.bin"), random_bytes(50_000, 4)).unwrap();
    ok(&dir, &["create", "a.bin"]);
    // Far too long a timeout is no timeout: the seeded torrent is complete, so the wait ends at once.
    std::fs::write(
        dir.join("long.rhai"),
        "let j = seed(\"torrents/a.bin.torrent\", \".\");\n\
         print(j.wait(1e300));\n\
         print(j.wait(9223372036854775807));\n",
    )
    .unwrap();
    assert_eq!(ok(&dir, &["run", "long.rhai"]), "true\ntrue\n");
    for bad in ["1.0 / 0.0", "-1", "-0.5", "\"soon\""] {
        std::fs::write(
            dir.join("bad.rhai"),
            format!("let j = seed(\"torrents/a.bin.torrent\", \".\");\nj.wait({bad});\n"),
        )
        .unwrap();
        let out = run(&dir, &["run", "bad.rhai"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "wait({bad}): {err}");
        assert!(!err.contains("panicked"), "wait({bad}): {err}");
        assert!(err.contains("wait: "), "wait({bad}): {err}");
        assert_eq!(err.lines().count(), 1, "wait({bad}): {err}");
    }
}

#[test]
fn seed_needs_the_data_and_start_needs_a_folder() {
    let root = tempfile::tempdir().unwrap();
    let dir = node(root.path(), "n", "http://127.0.0.1:1/announce");
    std::fs::create_dir_all(dir.join("share")).unwrap();
    std::fs::write(dir.join("share/a.bin"), random_bytes(40_000, 5)).unwrap();
    std::fs::write(dir.join("share/b.bin"), random_bytes(10_000, 6)).unwrap();
    ok(&dir, &["create", "share", "-o", "share.torrent"]);
    loopback_home(&dir);
    std::fs::write(dir.join("afile"), b"not a folder").unwrap();
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    for (args, want) in [
        (
            vec!["seed", "share.torrent", "-d", "nowhere"],
            "nowhere: no such folder",
        ),
        (
            vec!["seed", "share.torrent", "-d", "afile"],
            "afile is not a folder",
        ),
        (
            vec!["seed", "share.torrent", "-d", "empty"],
            "no data of share in",
        ),
        (
            vec!["start", "share.torrent", "-o", "afile"],
            "afile is not a folder",
        ),
    ] {
        // Bounded: before these were refused, a seed of no data waited for Ctrl-C.
        let out = crate::support::run(bin().args(&args).current_dir(&dir), Duration::from_secs(20));
        let err = out.stderr;
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    assert!(!dir.join("nowhere").exists(), "no folder made");
    assert_eq!(std::fs::read(dir.join("afile")).unwrap(), b"not a folder");
    assert_eq!(std::fs::read_dir(dir.join("empty")).unwrap().count(), 0);
    let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
    assert!(cfg.torrents.is_empty(), "nothing registered");

    // Part of the data is enough: the rest is fetched (here it stays missing, there is no peer).
    std::fs::create_dir_all(dir.join("part/share")).unwrap();
    std::fs::write(dir.join("part/share/b.bin"), random_bytes(10_000, 6)).unwrap();
    std::fs::write(
        dir.join("part.rhai"),
        "let j = seed(\"share.torrent\", \"part\");\nprint(j.wait(0.2));\n",
    )
    .unwrap();
    assert_eq!(ok(&dir, &["run", "part.rhai"]), "false\n");
}

#[test]
fn start_options_are_checked_before_anything_starts() {
    let root = tempfile::tempdir().unwrap();
    let dir = node(root.path(), "n", "http://127.0.0.1:1/announce");
    std::fs::write(dir.join("f.bin"), random_bytes(30_000, 8)).unwrap();
    ok(&dir, &["create", "f.bin", "-o", "f.torrent"]);
    loopback_home(&dir);
    for (opts, want) in [
        (
            "#{ trackers: [\"bogus\"], output: \"o\" }",
            "start: \"bogus\" is not a tracker URL",
        ),
        (
            "#{ register: \"yes\", output: \"o\" }",
            "start: `register` must be true or false",
        ),
    ] {
        std::fs::write(
            dir.join("s.rhai"),
            format!("start(\"f.torrent\", {opts});\n"),
        )
        .unwrap();
        let out = run(&dir, &["run", "s.rhai"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{opts}: {err}");
        assert!(err.contains(want), "{opts}: {err}");
        assert_eq!(err.lines().count(), 1, "{opts}: {err}");
    }
    assert!(!dir.join("o").exists());
    let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
    assert!(cfg.torrents.is_empty(), "nothing registered");
    // Cancelling twice is the same as once.
    std::fs::write(
        dir.join("c.rhai"),
        "let j = seed(\"f.torrent\", \".\");\nj.cancel();\nj.cancel();\nprint(\"ok\");\n",
    )
    .unwrap();
    assert_eq!(ok(&dir, &["run", "c.rhai"]), "ok\n");
}

#[test]
fn following_a_job_ends_when_its_torrent_is_removed() {
    let root = tempfile::tempdir().unwrap();
    let dir = node(root.path(), "n", "http://127.0.0.1:1/announce");
    std::fs::write(dir.join("f.bin"), random_bytes(40_000, 9)).unwrap();
    ok(&dir, &["create", "f.bin", "-o", "f.torrent"]);
    std::fs::write(
        dir.join("t.rhai"),
        "let j = seed(\"f.torrent\", \".\");\n\
         after(1, || torrent(\"f.bin\").remove());\n\
         let s = j.follow(true);\n\
         print(`followed until ${s.state}`);\n\
         print(j.state);\n",
    )
    .unwrap();
    let out = crate::support::run(
        bin().args(["run", "t.rhai"]).current_dir(&dir),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.ends_with("followed until removed\nremoved\n"),
        "{}",
        out.stdout
    );
}
