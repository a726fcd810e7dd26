//! Real BitTorrent programs using btorrent's tracker (started in-process on an ephemeral loopback
//! port), and btorrent's tracker client against opentracker. Each test needs a Debian package and is
//! ignored by default; CI installs the packages and runs ignored tests too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::clients::{aria2, libtorrent, wait_for_seeder, OpenTracker};
use crate::support::tracker::TestTracker;
use crate::support::*;
use btorrent::announce::{AnnounceEvent, AnnounceRequest, TrackerClient, TrackerError};
use btorrent::tracker::TrackerConfig;
use btorrent::{InfoHash, PeerId};

/// A pseudo-random file of `len` bytes in `dir/src`, and a torrent for it announcing to `announce`.
fn make_torrent(dir: &Path, announce: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let file = dir.join("src/payload.bin");
    let data = write_random(&file, len, 1);
    let meta = torrent(&file, 64 << 10, vec![announce.to_string()]);
    let torrent = dir.join("payload.torrent");
    std::fs::write(&torrent, meta.as_bytes()).unwrap();
    (torrent, data)
}

/// Seeds with `seeder`, leeches with `leecher`, both finding each other only through our tracker.
async fn transfer(
    seeder: impl FnOnce(&Path, u16, &Path) -> Command,
    leecher: impl FnOnce(&Path, u16, &Path) -> Command,
) {
    transfer_via(false, seeder, leecher).await
}

/// [`transfer`] with the torrent's tracker URL `http://` or, with `udp`, `udp://` (the tracker then
/// answers both on one port, and must have seen UDP announces).
pub(crate) async fn transfer_via(
    udp: bool,
    seeder: impl FnOnce(&Path, u16, &Path) -> Command,
    leecher: impl FnOnce(&Path, u16, &Path) -> Command,
) {
    let t = TestTracker::start_with_udp("127.0.0.1:0", TrackerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = if udp { t.udp_url() } else { t.announce_url() };
    let (torrent, data) = make_torrent(dir.path(), &url, 3 << 20);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (seed_port, leech_port) = (free_port(), free_port());
    let mut seed = Proc::spawn_logged(
        &mut seeder(&dir.path().join("src"), seed_port, &torrent),
        dir.path().join("seed.log"),
    );
    wait_for_seeder(&t.base(), None, seed_port, &mut seed).await;
    let mut leech = Proc::spawn_logged(
        &mut leecher(&out, leech_port, &torrent),
        dir.path().join("leech.log"),
    );
    let status = leech.wait_exit(Duration::from_secs(120)).await;
    assert!(
        status.success(),
        "leecher failed ({status}); leech log:\n{}\nseed log:\n{}",
        leech.log_text(),
        seed.log_text()
    );
    let got = std::fs::read(out.join("payload.bin")).unwrap();
    assert!(got == data, "downloaded data differs from the source");
    let stats = t.tracker.stats();
    assert!(stats.announces >= 2, "{stats:?}");
    if udp {
        assert!(stats.udp_announces >= 2, "{stats:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn two_aria2c_find_each_other_through_our_tracker() {
    transfer(
        |data, port, tor| aria2(data, port, tor, true),
        |out, port, tor| aria2(out, port, tor, false),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent and aria2"]
async fn libtorrent_seeds_to_aria2c_through_our_tracker() {
    transfer(
        |data, port, tor| libtorrent("seed", tor, data, port),
        |out, port, tor| aria2(out, port, tor, false),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent and aria2"]
async fn aria2c_seeds_to_libtorrent_through_our_tracker() {
    transfer(
        |data, port, tor| aria2(data, port, tor, true),
        |out, port, tor| libtorrent("leech", tor, out, port),
    )
    .await;
}

#[tokio::test]
#[ignore = "needs opentracker"]
async fn our_client_works_against_opentracker() {
    let hash = InfoHash(*b"btorrent-client-test");
    let ot = OpenTracker::start(&[hash]).await;
    let url = ot.announce_url();
    against_opentracker(&ot, &url, hash).await;
}

/// The announce/scrape/refusal checks of [`our_client_works_against_opentracker`] at `url` (HTTP or
/// UDP) of `ot`, which serves `hash` only.
pub(crate) async fn against_opentracker(ot: &OpenTracker, url: &str, hash: InfoHash) {
    let url = url.to_string();
    let client = TrackerClient::new();
    let req = |port: u16, left: u64, event| AnnounceRequest {
        info_hash: hash,
        peer_id: PeerId::generate(),
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event,
        numwant: Some(50),
        key: Some(0x1234),
        ip: None,
    };
    let (seed_port, leech_port) = (free_port(), free_port());
    let first = client
        .announce(&url, &req(seed_port, 0, Some(AnnounceEvent::Started)))
        .await
        .unwrap();
    assert!(first.interval > Duration::ZERO);
    let second = client
        .announce(&url, &req(leech_port, 1000, Some(AnnounceEvent::Started)))
        .await
        .unwrap();
    let seeder: SocketAddr = ([127, 0, 0, 1], seed_port).into();
    assert!(second.peers.contains(&seeder), "{second:?}");
    assert_eq!((second.complete, second.incomplete), (Some(1), Some(1)));
    let scrape = client.scrape(&url, &[hash]).await.unwrap();
    assert_eq!(scrape[&hash].complete, 1);
    assert_eq!(scrape[&hash].incomplete, 1);
    client
        .announce(&url, &req(leech_port, 0, Some(AnnounceEvent::Completed)))
        .await
        .unwrap();
    let scrape = client.scrape(&url, &[hash]).await.unwrap();
    assert_eq!(scrape[&hash].complete, 2);
    assert_eq!(scrape[&hash].downloaded, 1);
    // A torrent not on its whitelist: opentracker's failure reason comes through as such.
    let mut other = req(seed_port, 0, None);
    other.info_hash = InfoHash([7; 20]);
    let err = client.announce(&url, &other).await.unwrap_err();
    // Over UDP opentracker answers it with a bare 8-byte announce header: a malformed reply, refused
    // at once (not retried as if the tracker were down).
    let refused = if url.starts_with("udp:") {
        matches!(&err, TrackerError::BadResponse(r) if r.contains("too short"))
    } else {
        matches!(&err, TrackerError::Failure(r) if r.contains("not authorized"))
    };
    assert!(refused, "{err}; opentracker log:\n{}", ot.proc.log_text());
}
