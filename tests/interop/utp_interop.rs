//! uTP (BEP 29) with libtorrent set to make and take uTP connections only (TCP off both ways), each
//! way: since it never connects over TCP, each download that completes went over uTP. btorrent runs
//! its default policy (`allow`: TCP dialed first, uTP when TCP is hung up on; uTP taken).

use std::time::Duration;

use crate::engine_interop::{seed_with_btorrent, we_seed, Setup};
use crate::support::clients::libtorrent;
use crate::support::*;
use btorrent::engine::TorrentHandle;

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
    let (_s, h) = seed_with_btorrent(&setup).await;
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
