//! `btorrent demo`: the whole program on loopback in one process, as the README's quick start runs it.

use std::process::Command;
use std::time::Duration;

use crate::support::cli::bin;
use crate::support::Proc;

fn demo(args: &[&str], tmp: &std::path::Path) -> crate::support::Output {
    crate::support::run(
        bin()
            .arg("demo")
            .args(args)
            .current_dir(tmp)
            .env("TMPDIR", tmp),
        Duration::from_secs(120),
    )
}

#[test]
fn demo_shares_a_sample_on_loopback_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let out = demo(&["--size", "1M"], tmp.path());
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    for want in [
        "tracker      http://127.0.0.1:",
        "seeder       peer on 127.0.0.1:",
        "downloader   peer on 127.0.0.1:",
        "is byte-identical to the original",
        "uploaded     1.00 MiB by the seeder, 1.00 MiB received by the downloader",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "the temporary folder is removed"
    );
}

#[test]
fn demo_sizes_must_be_positive_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["0", "-1", "lots", "99999999999T"] {
        let out = demo(&[&format!("--size={bad}")], tmp.path());
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", out.stderr);
        assert!(out.stderr.contains("--size"), "{bad}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{bad}: {}", out.stderr);
    }
}

#[test]
fn demo_in_a_kept_folder_downloads_again_on_a_second_run() {
    let tmp = tempfile::tempdir().unwrap();
    for run in 0..2 {
        let out = demo(&["--size", "512K", "--dir", "kept"], tmp.path());
        assert!(
            out.status.success(),
            "run {run}: {}{}",
            out.stdout,
            out.stderr
        );
        assert!(
            out.stdout
                .contains("uploaded     512.00 KiB by the seeder, 512.00 KiB received"),
            "run {run} moved the data over the network: {}",
            out.stdout
        );
        assert!(out.stdout.contains("files kept in kept"), "{}", out.stdout);
    }
    assert!(tmp.path().join("kept/downloader/sample.bin").exists());
}

/// Ctrl-C or SIGTERM at any moment ends the demo with its temporary files removed (they are twice the
/// sample's size).
#[test]
fn demo_interrupted_removes_its_temporary_files() {
    for (sig, after_ms) in [("-INT", 300), ("-TERM", 300), ("-INT", 1500)] {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = Proc::spawn(
            bin()
                .args(["demo", "--size", "4G"])
                .current_dir(tmp.path())
                .env("TMPDIR", tmp.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped()),
        );
        // Wait until the sample is being written, then a little more.
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while !std::fs::read_dir(tmp.path())
            .unwrap()
            .any(|e| e.unwrap().path().join("seeder/sample.bin").exists())
        {
            assert!(std::time::Instant::now() < end, "the demo never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(after_ms));
        let pid = p.child.id().to_string();
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
        let end = std::time::Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = p.exited() {
                break s;
            }
            assert!(std::time::Instant::now() < end, "{sig}: the demo goes on");
            std::thread::sleep(Duration::from_millis(20));
        };
        let err = std::io::read_to_string(p.child.stderr.take().unwrap()).unwrap();
        assert_eq!(status.code(), Some(130), "{sig}: {err}");
        assert!(err.contains("interrupted"), "{sig}: {err}");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{sig}: left behind {left:?}");
    }
}
