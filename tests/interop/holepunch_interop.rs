//! Holepunch (BEP 55) with libtorrent, on either end of an introduction ([`NattedPair`]: two hosts
//! behind home routers' NATs, a relay between them):
//! - python3-libtorrent behind one NAT, a btorrent seed behind the other, a btorrent relay:
//!   libtorrent learns the seed from the relay's peer exchange (flagged as taking introductions),
//!   cannot dial it, asks the relay for a rendezvous, takes the relay's `connect` and downloads from
//!   the seed over uTP;
//! - two btorrents behind the NATs, libtorrent the relay: its peer exchange names the seed to the
//!   downloader, which asks it for a rendezvous; libtorrent's `connect`s bring the two together.
//!
//! Skipped, saying why, where the namespaces or nftables are not to be had.

use std::time::Duration;

use crate::support::clients::LT_CLIENT;
use crate::support::netns::{met_over_utp, Family, NattedPair, Relay, Side, TwoHosts};
use crate::support::Proc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent, root, iproute2 and nftables"]
async fn libtorrent_behind_a_nat_is_introduced_to_a_btorrent_seed_behind_another() {
    let Some(hosts) = NattedPair::make_or_skip() else {
        return;
    };
    let seeded = hosts.relay_and_seed_on_b(Family::V4, 4 << 20).await;
    let a_dir = seeded.a_dir();

    // libtorrent on A, over uTP alone (the holepunch's transport; libtorrent asks for an
    // introduction after a failed uTP dial only when it may not dial over TCP).
    let mut lt = TwoHosts::exec(&hosts.a, "/usr/bin/python3");
    lt.arg(LT_CLIENT)
        .arg("leech")
        .arg(a_dir.join("photos.torrent"))
        .arg(a_dir)
        // Not the relay's port: when the two dial each other at once, libtorrent keeps the
        // connection the side with the lower port opened, as btorrent does, but picks at random
        // between equal ports, and the two could drop one each (the pair then dials again and
        // again; once, on a loaded machine, no introduction got through in 170 s).
        .arg("6882")
        .env("LT_INTERFACE", NattedPair::HOST_A)
        .env("LT_PEERS", "1")
        .env("LT_UTP", "only")
        .env("LT_CONNECT", NattedPair::relay_for(Family::V4, Side::A));
    let mut leech = Proc::spawn_logged(&mut lt, a_dir.join("lt.log"));
    let status = leech.wait_exit(Duration::from_secs(170)).await;
    let logs = || {
        format!(
            "libtorrent:\n{}\nrelay:\n{}\nB:\n{}",
            leech.log_text(),
            seeded.relay.log_text(),
            seeded.b.log_text()
        )
    };
    assert!(status.success(), "libtorrent's download failed: {}", logs());
    let downloaded = std::fs::read(a_dir.join("photos.bin")).unwrap();
    assert!(
        downloaded == seeded.data,
        "libtorrent's bytes differ from B's"
    );
    assert!(
        seeded.relay.log_text().contains("holepunch: introduced"),
        "{}",
        logs()
    );
    assert!(
        met_over_utp(
            &seeded.b.log_text(),
            &NattedPair::seen_as(Family::V4, Side::A)
        ),
        "{}",
        logs()
    );
    drop(seeded);
    drop(hosts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent, root, iproute2 and nftables"]
async fn btorrents_behind_nats_are_introduced_by_a_libtorrent_relay() {
    let Some(hosts) = NattedPair::make_or_skip() else {
        return;
    };
    hosts
        .a_is_introduced_to_b(Relay::Libtorrent, Family::V4)
        .await;
}
