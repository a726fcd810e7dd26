//! uTP (BEP 29) with libtorrent set to make and take uTP connections only (TCP off both ways), each
//! way: since it never connects over TCP, each download that completes went over uTP. btorrent runs
//! its default policy (`allow`: TCP dialed first, uTP when TCP is hung up on; uTP taken).
//!
//! And with Transmission (its own uTP, libutp, the reference implementation), each way: it never
//! dials a 127.x peer, so btorrent dials it, preferring uTP (`prefer`), and the data goes over the
//! uTP connection listed.

use std::time::Duration;

use crate::engine_interop::{we_seed, Setup};
use crate::support::clients::{libtorrent, transmission};
use crate::support::*;
use btorrent::engine::{SessionConfig, TorrentHandle, Utp};

fn libtorrent_utp_only(
    mode: &str,
    torrent: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
) -> std::process::Command {
    let mut cmd = libtorrent(mode, torrent, dir, port);
    cmd.env("LT_UTP", "only");
    cmd
}

/// Polls `h` until it lists a uTP peer (true) or `secs` pass (false).
fn lists_utp_peer(h: &TorrentHandle, secs: u64) -> tokio::task::JoinHandle<bool> {
    let h = h.clone();
    tokio::spawn(async move {
        let end = tokio::time::Instant::now() + Duration::from_secs(secs);
        while tokio::time::Instant::now() < end {
            if h.peers().iter().any(|p| p.utp) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_seeds_to_libtorrent_over_utp() {
    let setup = Setup::new(true).await;
    let out = setup.dir("theirs");
    let (_s, h) = crate::engine_interop::seed_with_btorrent(&setup).await;
    let mut cmd = libtorrent_utp_only("leech", &setup.torrent_file, &out, free_port());
    let p = setup.spawn(&mut cmd, "theirs.log");
    let seen_utp = lists_utp_peer(&h, 120);
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
    assert!(seen_utp.await.unwrap(), "no uTP peer listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_seeds_to_btorrent_over_utp() {
    let setup = Setup::new(false).await;
    let port = free_port();
    let mut p = setup.spawn(
        &mut libtorrent_utp_only("seed", &setup.torrent_file, &setup.src, port),
        "theirs.log",
    );
    setup.wait_seeder(port, &mut p).await;
    let out = setup.dir("ours");
    let (s, h) = setup.ours(&out).await;
    let seen_utp = lists_utp_peer(&h, 120);
    wait_complete(&h, 120).await;
    assert_same_tree(&setup.src, &out);
    assert!(seen_utp.await.unwrap(), "no uTP peer listed");
    s.shutdown(Duration::from_secs(2)).await;
}

/// transmission-cli as the loopback tests run it, with uTP on.
fn transmission_utp(
    work: &std::path::Path,
    torrent: &std::path::Path,
    folder: &std::path::Path,
    port: u16,
) -> (std::process::Command, std::path::PathBuf) {
    let (cmd, done) = transmission(work, torrent, folder, port);
    let settings = work.join(format!("tr-{port}/settings.json"));
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&settings).unwrap()).unwrap();
    v["utp-enabled"] = true.into();
    std::fs::write(&settings, v.to_string()).unwrap();
    (cmd, done)
}

/// btorrent preferring uTP.
fn prefer_utp() -> SessionConfig {
    SessionConfig {
        utp: Utp::Prefer,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs transmission-cli"]
async fn btorrent_seeds_to_transmission_over_utp() {
    let setup = Setup::new(false).await;
    let out = setup.dir("theirs");
    let work = setup.work.path().to_path_buf();
    let (mut cmd, done) = transmission_utp(&work, &setup.torrent_file, &out, free_port());
    let mut p = setup.spawn(&mut cmd, "theirs.log");
    setup.wait_announced(&mut p, "transmission").await;
    let (_s, h) = setup.ours_with(prefer_utp(), &setup.src).await;
    let seen_utp = lists_utp_peer(&h, 120);
    we_seed(setup, p, out, Some(done)).await;
    assert!(h.stats().uploaded > 0);
    assert!(seen_utp.await.unwrap(), "no uTP peer listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs transmission-cli"]
async fn transmission_seeds_to_btorrent_over_utp() {
    let setup = Setup::new(true).await;
    let port = free_port();
    let work = setup.work.path().to_path_buf();
    let (mut cmd, _) = transmission_utp(&work, &setup.torrent_file, &setup.src, port);
    let mut p = setup.spawn(&mut cmd, "theirs.log");
    setup.wait_seeder(port, &mut p).await;
    let out = setup.dir("ours");
    let (s, h) = setup.ours_with(prefer_utp(), &out).await;
    let seen_utp = lists_utp_peer(&h, 120);
    wait_complete(&h, 120).await;
    assert_same_tree(&setup.src, &out);
    assert!(seen_utp.await.unwrap(), "no uTP peer listed");
    s.shutdown(Duration::from_secs(2)).await;
}
