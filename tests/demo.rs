//! `btorrent demo`: the whole program on loopback in one process, as the README's quick start runs it.

mod support;

use std::process::Command;
use std::time::Duration;

fn demo(args: &[&str], tmp: &std::path::Path) -> support::Output {
    support::run(
        Command::new(env!("CARGO_BIN_EXE_btorrent"))
            .arg("demo")
            .args(args)
            .current_dir(tmp)
            .env("TMPDIR", tmp)
            .env_remove("BTORRENT_CONFIG"),
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
