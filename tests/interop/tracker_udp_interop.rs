//! UDP trackers (BEP 15) with real programs: btorrent's client against opentracker's UDP side (it
//! answers UDP on its HTTP port), and aria2c, libtorrent and transmission swarming through btorrent's
//! tracker over `udp://` only. Ignored by default like every interop test; CI installs the packages.

use std::path::Path;
use std::process::Command;

use crate::support::clients::{aria2, libtorrent, transmission, OpenTracker};
use crate::tracker_interop::{against_opentracker, transfer_via};
use btorrent::InfoHash;

/// aria2c speaks UDP to trackers only with its IPv4 DHT on (the two share a socket): on, on a port of
/// its own, with no node to bootstrap from, so peers still meet through the tracker alone.
fn aria2_udp(dir: &Path, port: u16, torrent: &Path, seed: bool) -> Command {
    let mut cmd = aria2(dir, port, torrent, seed);
    cmd.args([
        "--enable-dht=true".to_string(),
        format!("--dht-listen-port={}", crate::support::free_port()),
        format!(
            "--dht-file-path={}",
            dir.join(format!("dht-{port}.dat")).display()
        ),
    ]);
    cmd
}

#[tokio::test]
#[ignore = "needs opentracker"]
async fn our_client_works_against_opentracker_over_udp() {
    let hash = InfoHash(*b"btorrent-udp-client!");
    let ot = OpenTracker::start(&[hash]).await;
    let url = format!("udp://127.0.0.1:{}/announce", ot.port);
    against_opentracker(&ot, &url, hash).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent and aria2"]
async fn libtorrent_seeds_to_aria2c_through_our_udp_tracker() {
    transfer_via(
        true,
        |data, port, tor| libtorrent("seed", tor, data, port),
        |out, port, tor| aria2_udp(out, port, tor, false),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent and aria2"]
async fn aria2c_seeds_to_libtorrent_through_our_udp_tracker() {
    transfer_via(
        true,
        |data, port, tor| aria2_udp(data, port, tor, true),
        |out, port, tor| libtorrent("leech", tor, out, port),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs transmission-cli and python3-libtorrent"]
async fn transmission_seeds_to_libtorrent_through_our_udp_tracker() {
    transfer_via(
        true,
        |data, port, tor| transmission(data.parent().unwrap(), tor, data, port).0,
        |out, port, tor| libtorrent("leech", tor, out, port),
    )
    .await;
}
