//! One script type for a torrent: `start`/`seed` return the same `TorrentHandle` that `torrent(name)`
//! gives, so the handle's getters and actions work on what `seed` returned, and `wait`, `follow` and
//! `cancel` work on a handle from `torrent(name)` — in this process, and in the daemon a one-shot
//! command hands its torrent to.

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::cli::{bin, run};
use crate::support::{random_bytes, Proc};
use btorrent::config::Config;

/// A folder with its own torrents.toml (ephemeral peer port on 127.0.0.1, a tracker nobody answers
/// on) and `f.torrent` for the 60 kB `f.bin` in it.
fn node(root: &Path) -> PathBuf {
    let dir = root.join("n");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("torrents.toml"),
        "[settings]\nlisten_port = 0\nlisten_ip = \"127.0.0.1\"\ntracker_url = \"http://127.0.0.1:1/announce\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("f.bin"), random_bytes(60_000, 11)).unwrap();
    // Made by hand, so that it is not registered (`create` would register it).
    let meta = crate::support::torrent(&dir.join("f.bin"), 16 * 1024, vec![]);
    std::fs::write(dir.join("f.torrent"), meta.as_bytes()).unwrap();
    dir
}

fn state_of(dir: &Path) -> String {
    let cfg = Config::load(&dir.join("torrents.toml")).unwrap();
    cfg.torrents[0].state.clone()
}

/// Runs `script` as a one-shot command of its own (`btorrent s`, from scripts/b-s.rhai, which asks
/// the shell or daemon owning torrents.toml, if one runs); returns its exit code, stdout and stderr.
fn run_script(dir: &Path, script: &str) -> (Option<i32>, String, String) {
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    std::fs::write(dir.join("scripts/b-s.rhai"), script).unwrap();
    let out = run(dir, &["s"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn what_seed_returns_is_the_torrent_handle_with_its_getters_and_actions() {
    let root = tempfile::tempdir().unwrap();
    let dir = node(root.path());
    let (code, out, err) = run_script(
        &dir,
        "let t = seed(\"f.torrent\", \".\");\n\
         print(type_of(t));\n\
         t.upload_limit = 50000;\n\
         print(`${t.upload_limit} ${torrent(\"f.bin\").upload_limit}`);\n\
         print(t.wait(10));\n\
         print(`${t.state} ${t.progress} ${t.running} ${t.stats.state}`);\n\
         t.pause();\n\
         print(`${t.state} ${torrent(\"f.bin\").state}`);\n\
         t.resume();\n\
         print(`${t.state} ${t.error}`);\n\
         let waited = 0;\n\
         while t.seconds_seeding < 2 && waited < 300 { sleep(100); waited += 1; }\n\
         print(`${t.seconds_seeding >= 2} ${t.seconds_downloading} ${t.stats.seconds_seeding >= 2}`);\n",
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        out,
        "TorrentHandle\n50000 50000\ntrue\nseeding 1.0 true seeding\npaused paused\nseeding \ntrue 0 true\n"
    );
    let cfg = Config::load(&dir.join("torrents.toml")).unwrap();
    assert_eq!(cfg.torrents[0].limits.engine().upload, Some(50000));
}

#[test]
fn a_torrent_started_elsewhere_in_the_process_is_waited_on_followed_and_cancelled_by_name() {
    let root = tempfile::tempdir().unwrap();
    let dir = node(root.path());
    let (code, out, err) = run_script(
        &dir,
        "seed(\"f.torrent\", \".\");\n\
         let t = torrent(\"f.bin\");\n\
         print(t.wait(10));\n\
         print(t.follow().state);\n\
         t.cancel();\n\
         print(`${t.state} ${t.running}`);\n\
         t.cancel();\n\
         print(\"cancelled twice\");\n\
         t.wait(1);\n",
    );
    assert_eq!(
        out, "true\nseeding\nstopped false\ncancelled twice\n",
        "{err}"
    );
    // Waiting on a torrent that runs nowhere is a clear one-line error.
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("wait: f.bin is not running (stopped)"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // Cancelled, not forgotten: the entry stays, marked stopped.
    assert_eq!(state_of(&dir), "stopped");
}

/// Starts `btorrent daemon` in `dir` and waits until its control socket answers.
fn daemon(dir: &Path) -> Proc {
    let mut p = Proc::spawn_logged(bin().arg("daemon").current_dir(dir), dir.join("daemon.log"));
    let sock = dir.join(".btorrent/control.sock");
    let start = Instant::now();
    while UnixStream::connect(&sock).is_err() {
        assert!(p.exited().is_none(), "the daemon ended: {}", p.log_text());
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the daemon never listened: {}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

#[test]
fn a_handle_of_a_torrent_handed_to_the_daemon_acts_there() {
    let root = tempfile::tempdir().unwrap();
    let dir = node(root.path());
    let d = daemon(&dir);
    // The one-shot `seed` hands the torrent to the daemon; the handle it returns sets the daemon's
    // limit and waits on the daemon's transfer.
    let (code, out, err) = run_script(
        &dir,
        "let t = seed(\"f.torrent\", \".\");\n\
         t.upload_limit = 40000;\n\
         print(`${t.upload_limit} ${t.wait(20)} ${t.state}`);\n",
    );
    assert_eq!(code, Some(0), "{out}{err}\n{}", d.log_text());
    assert_eq!(out, "40000 true seeding\n");
    // The daemon runs it still, after the one-shot command ended.
    let (_, out, err) = run_script(
        &dir,
        "let t = torrent(\"f.bin\");\nprint(`${t.running} ${t.upload_limit} ${t.wait(1)}`);\n",
    );
    assert_eq!(out, "true 40000 true\n", "{err}");
    // A later one-shot command cancels it by name: the daemon stops it and marks it stopped.
    let (code, out, err) = run_script(
        &dir,
        "let t = torrent(\"f.bin\");\nt.cancel();\nprint(`${t.state} ${t.running}`);\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "stopped false\n");
    assert_eq!(state_of(&dir), "stopped");
}
