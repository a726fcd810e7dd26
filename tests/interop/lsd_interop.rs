//! Local service discovery (BEP 14) both ways between btorrent and python3-libtorrent, on two hosts
//! of one LAN ([`crate::support::netns`]): a torrent with no tracker, no DHT and no peer given, so
//! only their multicast announces can bring them together.
//!
//! libtorrent seeds on A and `btorrent start` on B downloads, having heard libtorrent's announce
//! (its log names A), and again from a magnet link alone; then `btorrent seed` on B and a libtorrent leecher on A, which hears
//! btorrent's announce (its `lsd_peer` alert names B) and downloads. Skipped, saying why, where
//! namespaces cannot be made.

use std::time::Duration;

use crate::support::clients::LT_CLIENT;
use crate::support::netns::{TwoHosts, A_IP, B_IP};
use crate::support::{assert_same_tree, write_random, Proc};
use btorrent::metainfo::{create_torrent, CreateOptions};

/// python3-libtorrent in namespace `ns` on `ip`, local service discovery on.
fn libtorrent_lsd(
    ns: &str,
    ip: &str,
    mode: &str,
    torrent: &std::path::Path,
    folder: &std::path::Path,
) -> std::process::Command {
    let mut c = TwoHosts::exec(ns, "/usr/bin/python3");
    c.arg(LT_CLIENT)
        .arg(mode)
        .arg(torrent)
        .arg(folder)
        .arg("6881")
        .env("LT_INTERFACE", ip)
        .env("LT_LSD", "1");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent, root and iproute2"]
async fn btorrent_and_libtorrent_find_each_other_by_local_discovery() {
    let Some(hosts) = TwoHosts::make_or_skip() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    write_random(&src.join("album.bin"), 2 * 1024 * 1024 + 5, 93);
    let meta = create_torrent(
        &src.join("album.bin"),
        &CreateOptions {
            piece_length: Some(32 * 1024),
            ..Default::default()
        },
        &|_, _| {},
    )
    .unwrap();
    assert!(meta.trackers().is_empty());
    let file = work.path().join("album.torrent");
    std::fs::write(&file, meta.as_bytes()).unwrap();

    // libtorrent seeds on A; btorrent on B hears it.
    let mut seed = Proc::spawn_logged(
        &mut libtorrent_lsd(&hosts.a, A_IP, "seed", &file, &src),
        work.path().join("lt-seed.log"),
    );
    seed.wait_until(30, "libtorrent to start", |p| {
        p.log_text().contains("READY")
    })
    .await;
    let b_dir = work.path().join("b");
    std::fs::create_dir_all(&b_dir).unwrap();
    let got = hosts.start_on_b(
        &b_dir,
        file.to_str().unwrap(),
        "warn,btorrent_engine::lsd=debug",
        || seed.log_text(),
    );
    assert!(
        got.stderr
            .lines()
            .any(|l| l.contains("peer found on the local network") && l.contains(A_IP)),
        "btorrent did not hear libtorrent's announce:\n{}",
        got.stderr
    );
    assert_same_tree(&src, &b_dir.join("output"));

    // A magnet link alone on B (no tracker, no x.pe, no DHT): its metadata and data from A too.
    let m_dir = work.path().join("m");
    std::fs::create_dir_all(&m_dir).unwrap();
    let magnet = format!("magnet:?xt=urn:btih:{}", meta.info_hash.to_hex());
    hosts.start_on_b(&m_dir, &magnet, "warn", || seed.log_text());
    assert_same_tree(&src, &m_dir.join("output"));
    seed.kill();

    // btorrent seeds on B; a libtorrent leecher on A hears it.
    let a_dir = work.path().join("a");
    std::fs::create_dir_all(&a_dir).unwrap();
    let mut leech = Proc::spawn_logged(
        &mut libtorrent_lsd(&hosts.a, A_IP, "leech", &file, &a_dir),
        work.path().join("lt-leech.log"),
    );
    leech
        .wait_until(30, "libtorrent to start", |p| {
            p.log_text().contains("READY")
        })
        .await;
    let mut seeder = Proc::spawn_logged(
        &mut TwoHosts::btorrent(
            &hosts.b,
            &b_dir,
            &["seed", file.to_str().unwrap(), "-d", "output"],
        ),
        work.path().join("bt-seed.log"),
    );
    let heard_b = |log: &str| {
        log.lines()
            .any(|l| l.contains("local service discovery") && l.contains(B_IP))
    };
    leech
        .wait_until(90, "libtorrent to download from btorrent", |p| {
            p.log_text().contains("DONE")
        })
        .await;
    // The announce may reach libtorrent after the download (btorrent may have dialed it first,
    // having heard its announce): the leecher stays, so wait for the alert too.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !heard_b(&leech.log_text()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let heard = leech.log_text();
    assert!(
        heard_b(&heard),
        "libtorrent did not hear btorrent's announce:\n{heard}\nbtorrent:\n{}",
        seeder.log_text()
    );
    assert_same_tree(&src, &a_dir);
    seeder.kill();
    drop(hosts);
}
