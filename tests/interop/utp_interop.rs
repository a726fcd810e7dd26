//! uTP (BEP 29) with libtorrent set to make and take uTP connections only (TCP off both ways), each
//! way: since it never connects over TCP, each download that completes went over uTP. btorrent runs
//! its default policy (`allow`: TCP dialed first, uTP when TCP is hung up on; uTP taken).

use std::time::Duration;

use crate::engine_interop::{leech_with_btorrent, seed_with_btorrent, we_seed, Setup};
use crate::support::clients::libtorrent;
use crate::support::*;
use btorrent::engine::Encryption;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_seeds_to_libtorrent_over_utp() {
    let setup = Setup::new(true).await;
    let out = setup.dir("theirs");
    let (_s, h) = seed_with_btorrent(&setup).await;
    let mut cmd = libtorrent_utp_only("leech", &setup.torrent_file, &out, free_port());
    let p = setup.spawn(&mut cmd, "theirs.log");
    // Watched while the download runs: the seed lists its peer as uTP.
    let seen_utp = {
        let h = h.clone();
        tokio::spawn(async move {
            let end = tokio::time::Instant::now() + Duration::from_secs(120);
            while tokio::time::Instant::now() < end {
                if h.peers().iter().any(|p| p.utp) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            false
        })
    };
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
    leech_with_btorrent(&setup, Encryption::Allow).await;
}
