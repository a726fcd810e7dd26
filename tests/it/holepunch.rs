//! Two machines behind NATs meet through a peer they both reach (BEP 55, `ut_holepunch`): five
//! network namespaces, made and removed by the test ([`NattedPair`]): host A and host B, each
//! behind a home router that masquerades it and lets nothing in unasked, and a relay on the open
//! network between the routers. Neither host can dial the other; both dial the relay.
//! Skipped, saying why, where the namespaces or nftables are not to be had.

use std::time::Duration;

use crate::support::netns::{met_over_utp, NattedPair, TwoHosts, HOLEPUNCH_LOG};
use crate::support::*;

/// B seeds, A downloads, and the relay (which downloads a trickle) is the only peer each was
/// given. The relay's peer exchange names B to A; A's dial to B is dropped by B's router, so A
/// asks the relay for a rendezvous, the relay tells both to connect, and their uTP dials, crossing,
/// open both routers: A downloads the file from B, over uTP, in far less time than the relay could
/// have passed it on (without the introduction, A's download does not end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_behind_nats_are_introduced_by_a_peer_both_reach() {
    let Some(hosts) = NattedPair::make_or_skip() else {
        return;
    };
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let [relay_dir, a_dir, b_dir] = dirs.each_ref().map(|d| d.path());
    let seeded = hosts
        .relay_and_seed_on_b(relay_dir, b_dir, a_dir, 4 << 20)
        .await;

    let relay_for_a = format!("{}:6881", NattedPair::RELAY_FOR_A);
    let got = process::run(
        TwoHosts::btorrent(
            &hosts.a,
            a_dir,
            &[
                "start",
                "photos.torrent",
                "--peer",
                &relay_for_a,
                "--stall",
                "60",
            ],
        )
        .env("RUST_LOG", HOLEPUNCH_LOG),
        Duration::from_secs(120),
    );
    let logs = || {
        format!(
            "A:\n{}\n{}\nrelay:\n{}\nB:\n{}",
            got.stdout,
            got.stderr,
            seeded.relay.log_text(),
            seeded.b.log_text()
        )
    };
    assert!(got.status.success(), "A's download failed: {}", logs());
    let downloaded = std::fs::read(a_dir.join("output/photos.bin")).unwrap();
    assert!(downloaded == seeded.data, "A's bytes differ from B's");
    // A asked, the relay introduced, and A and B met over uTP (B's router lets in nothing else).
    assert!(
        got.stderr.contains("holepunch: asking for a rendezvous"),
        "{}",
        logs()
    );
    assert!(
        seeded.relay.log_text().contains("holepunch: introduced"),
        "{}",
        logs()
    );
    assert!(
        met_over_utp(&got.stderr, NattedPair::PUBLIC_B)
            && met_over_utp(&seeded.b.log_text(), NattedPair::PUBLIC_A),
        "{}",
        logs()
    );
    drop(seeded);
    drop(hosts);
}
