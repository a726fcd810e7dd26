//! The downloader is killed with SIGKILL half way; after a restart it resumes from what reached the
//! disk and fetches about the missing half only.
//!
//! The downloader runs in a child process: this test binary itself, re-run on the `crash_child` test
//! with its parameters in an environment variable (the child test does nothing without it).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;
use btorrent::engine::{AddOptions, Session, SessionConfig};
use btorrent::Metainfo;

const CHILD_ENV: &str = "BTORRENT_CRASH_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('\n').collect();
    let meta = Metainfo::load(&PathBuf::from(parts[0])).unwrap();
    let cfg = SessionConfig {
        resume_dir: Some(PathBuf::from(parts[2])),
        ..Default::default()
    };
    let session = Session::start(cfg).await.unwrap();
    let h = session
        .add(
            meta,
            AddOptions {
                data_dir: PathBuf::from(parts[1]),
                peers: vec![parts[3].parse().unwrap()],
                trackers: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Report progress until killed (bounded: the parent kills it long before).
    for _ in 0..3000 {
        println!("have {}", h.stats().pieces_have);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_half_way_then_resume_fetches_only_the_rest() {
    let src = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (dst, resume) = (work.path().join("dl"), work.path().join("resume"));
    write_random(&src.path().join("d.bin"), 16 * 1024 * 1024, 7);
    let meta = torrent(&src.path().join("d.bin"), 64 * 1024, vec![]);
    let tfile = work.path().join("d.torrent");
    std::fs::write(&tfile, meta.as_bytes()).unwrap();
    let limited = SessionConfig {
        upload_limit: Some(8 << 20),
        ..Default::default()
    };
    let (seeder, _) = seeder_with(limited, &meta, src.path()).await;

    let spec = format!(
        "{}\n{}\n{}\n{}",
        tfile.display(),
        dst.display(),
        resume.display(),
        seeder.listen_addr()
    );
    // The child is this test binary running only `crash_child`, named by its path in the binary.
    let child_test = match module_path!().split_once("::") {
        Some((_, module)) => format!("{module}::crash_child"),
        None => "crash_child".to_string(),
    };
    let mut child = Proc::spawn(
        Command::new(std::env::current_exe().unwrap())
            .args([&child_test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, spec)
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let total = meta.info.piece_count();
    let stdout = child.child.stdout.take().unwrap();
    let reported = tokio::task::spawn_blocking(move || {
        let mut last = 0usize;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("have ").and_then(|n| n.parse().ok()) {
                last = n;
                if last >= total / 2 {
                    break;
                }
            }
        }
        last
    });
    let reported = tokio::time::timeout(Duration::from_secs(60), reported)
        .await
        .expect("the child reached half way")
        .unwrap();
    child.kill(); // SIGKILL
    assert!(reported >= total / 2 && reported < total, "{reported}");

    let again = session_with(SessionConfig {
        resume_dir: Some(resume.clone()),
        ..Default::default()
    })
    .await;
    let l = again
        .add(meta.clone(), opts(&dst, vec![seeder.listen_addr()]))
        .await
        .unwrap();
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), &dst);
    let fetched = l.stats().downloaded;
    let missing = meta.info.total_length - reported as u64 * meta.info.piece_length;
    assert!(
        fetched <= missing + meta.info.total_length / 10,
        "fetched {fetched} bytes after the restart; {missing} were missing at the kill"
    );
    again.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}
