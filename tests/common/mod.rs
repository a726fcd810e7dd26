//! Helpers shared by the engine tests: data, torrents, sessions on 127.0.0.1, bounded waits.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use btorrent::engine::{AddOptions, Session, SessionConfig, TorrentHandle};
use btorrent::metainfo::{create_torrent, CreateOptions};
use btorrent::Metainfo;
use rand::{RngCore, SeedableRng};

/// Writes `len` pseudo-random bytes (seeded) to `path`, creating folders.
pub fn write_random(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &data).unwrap();
    data
}

/// A torrent of the file or folder at `path` with the given piece length and trackers.
pub fn torrent(path: &Path, piece_length: u64, trackers: Vec<String>) -> Metainfo {
    let opts = CreateOptions {
        piece_length: Some(piece_length),
        trackers,
        ..Default::default()
    };
    create_torrent(path, &opts, &|_, _| {}).unwrap()
}

pub async fn session() -> Session {
    Session::start(SessionConfig::default()).await.unwrap()
}

pub async fn session_with(cfg: SessionConfig) -> Session {
    Session::start(cfg).await.unwrap()
}

pub fn opts(dir: &Path, peers: Vec<std::net::SocketAddr>) -> AddOptions {
    AddOptions {
        data_dir: dir.to_path_buf(),
        peers,
        trackers: Some(vec![]),
        ..Default::default()
    }
}

pub async fn wait_complete(h: &TorrentHandle, secs: u64) {
    match tokio::time::timeout(Duration::from_secs(secs), h.wait_complete()).await {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("{} did not complete in {secs} s: {:?}", h.name(), h.stats()),
    }
}

/// Waits until `f` holds, polling; panics after `secs`.
pub async fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every file under `a` exists under `b` with the same bytes, and nothing more.
pub fn assert_same_tree(a: &Path, b: &Path) {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    walk(a, a, &mut fa);
    walk(b, b, &mut fb);
    fa.sort();
    fb.sort();
    assert_eq!(fa, fb, "file lists differ");
    for f in fa {
        let (x, y) = (
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)).unwrap(),
        );
        assert!(x == y, "{} differs", f.display());
    }
}

/// Logs to stderr when `RUST_LOG` is set (e.g. `RUST_LOG=btorrent=debug`).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}
