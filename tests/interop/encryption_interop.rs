//! Message stream encryption with real clients, each set to make and take encrypted connections
//! only (libtorrent `forced` with RC4, `transmission-cli -er`, aria2c `--bt-require-crypto` with
//! `arc4`, qBittorrent's "Require encryption"), both ways: since such a client never connects a peer that cannot encrypt, each download
//! that completes went over MSE. btorrent runs its default policy (`allow`: a plain dial is hung up
//! on, and it dials again encrypted; encrypted connections taken) or `require`.

use std::time::Duration;

use crate::engine_interop::{qbt_complete, seed_with_btorrent, we_seed, Setup};
use crate::support::clients::{
    aria2, libtorrent, qbittorrent_encrypting, transmission_encrypting, wait_listed, Qbt,
};
use crate::support::*;
use btorrent::engine::{Encryption, SessionConfig};

/// btorrent downloads the setup's torrent with `encryption` and checks what it got; every peer it
/// still lists is encrypted when it requires encryption.
async fn leech_with_btorrent(setup: &Setup, encryption: Encryption) {
    let out = setup.dir("ours");
    let cfg = SessionConfig {
        encryption,
        ..Default::default()
    };
    let (s, h) = setup.ours_with(cfg, &out).await;
    wait_complete(&h, 120).await;
    assert_same_tree(&setup.src, &out);
    if encryption == Encryption::Require {
        assert!(h.peers().iter().all(|p| p.encrypted), "{:?}", h.peers());
    }
    s.shutdown(Duration::from_secs(2)).await;
}

fn aria2_requiring_encryption(
    dir: &std::path::Path,
    port: u16,
    torrent: &std::path::Path,
    seed: bool,
) -> std::process::Command {
    let mut cmd = aria2(dir, port, torrent, seed);
    cmd.args(["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_seeds_to_libtorrent_that_requires_encryption() {
    let setup = Setup::new(false).await;
    let (_s, h) = seed_with_btorrent(&setup).await;
    let out = setup.dir("lt");
    let p = setup.spawn(
        libtorrent("leech", &setup.torrent_file, &out, free_port()).env("LT_ENC", "forced"),
        "lt.log",
    );
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_that_requires_encryption_seeds_to_btorrent_that_requires_it() {
    let setup = Setup::new(true).await;
    let port = free_port();
    let mut p = setup.spawn(
        libtorrent("seed", &setup.torrent_file, &setup.src, port).env("LT_ENC", "forced"),
        "lt.log",
    );
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup, Encryption::Require).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs transmission-cli"]
async fn btorrent_seeds_to_transmission_that_requires_encryption() {
    // Transmission never dials 127.x peers: our seeder dials it, plain first, then encrypted.
    let setup = Setup::new(false).await;
    let out = setup.dir("tr");
    let (mut cmd, done) = transmission_encrypting(
        setup.work.path(),
        &setup.torrent_file,
        &out,
        free_port(),
        true,
    );
    let mut p = setup.spawn(&mut cmd, "tr.log");
    let hash = Some(setup.meta.info_hash);
    wait_listed(
        &setup.announce,
        hash,
        &mut p,
        "transmission to announce",
        |_| true,
    )
    .await;
    let (_s, h) = seed_with_btorrent(&setup).await;
    we_seed(setup, p, out, Some(done)).await;
    assert!(h.stats().uploaded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs transmission-cli"]
async fn transmission_that_requires_encryption_seeds_to_btorrent() {
    let setup = Setup::new(false).await;
    let port = free_port();
    let (mut cmd, _) = transmission_encrypting(
        setup.work.path(),
        &setup.torrent_file,
        &setup.src,
        port,
        true,
    );
    let mut p = setup.spawn(&mut cmd, "tr.log");
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup, Encryption::Allow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn btorrent_seeds_to_aria2c_that_requires_encryption() {
    let setup = Setup::new(true).await;
    let (_s, h) = seed_with_btorrent(&setup).await;
    let out = setup.dir("aria2");
    let p = setup.spawn(
        &mut aria2_requiring_encryption(&out, free_port(), &setup.torrent_file, false),
        "aria2.log",
    );
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn aria2c_that_requires_encryption_seeds_to_btorrent_that_prefers_it() {
    let setup = Setup::new(false).await;
    let port = free_port();
    let mut p = setup.spawn(
        &mut aria2_requiring_encryption(&setup.src, port, &setup.torrent_file, true),
        "aria2.log",
    );
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup, Encryption::Prefer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs qbittorrent-nox and curl"]
async fn btorrent_seeds_to_qbittorrent_that_requires_encryption() {
    let setup = Setup::new(true).await;
    let (_s, h) = seed_with_btorrent(&setup).await;
    let out = setup.dir("qbt");
    let web = free_port();
    let mut p = setup.spawn(
        &mut qbittorrent_encrypting(setup.work.path(), free_port(), web, true),
        "qbt.log",
    );
    let api = Qbt::connect(web, &mut p).await;
    api.add(&setup.torrent_file, &out);
    qbt_complete(&api, &setup, &mut p).await;
    assert_same_tree(&setup.src, &out);
    assert!(h.stats().uploaded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs qbittorrent-nox and curl"]
async fn qbittorrent_that_requires_encryption_seeds_to_btorrent() {
    let setup = Setup::new(false).await;
    let port = free_port();
    let web = free_port();
    let mut p = setup.spawn(
        &mut qbittorrent_encrypting(setup.work.path(), port, web, true),
        "qbt.log",
    );
    let api = Qbt::connect(web, &mut p).await;
    api.add(&setup.torrent_file, &setup.src);
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup, Encryption::Allow).await;
}
