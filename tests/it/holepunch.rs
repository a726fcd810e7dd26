//! Two machines behind NATs meet through a peer they both reach (BEP 55, `ut_holepunch`): five
//! network namespaces, made and removed by the test ([`NattedPair`]): host A and host B, each
//! behind a home router that masquerades it and lets nothing in unasked, and a relay on the open
//! network between the routers. Neither host can dial the other; both dial the relay.
//! Skipped, saying why, where the namespaces or nftables are not to be had.

use std::time::Duration;

use crate::support::netns::{NattedPair, TwoHosts};
use crate::support::*;

/// B seeds, A downloads, and the relay (which downloads too, a trickle: 2 KB/s) is the only peer
/// each was given. The relay's peer exchange names B to A; A's dial to B is dropped by B's router,
/// so A asks the relay for a rendezvous, the relay tells both to connect, and their uTP dials,
/// crossing, open both routers: A downloads the file from B, over uTP, in far less time than the
/// relay could have passed it on (without the introduction, A's download does not end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_behind_nats_are_introduced_by_a_peer_both_reach() {
    let Some(hosts) = NattedPair::make_or_skip() else {
        return;
    };
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let [relay_dir, a_dir, b_dir] = dirs.each_ref().map(|d| d.path());
    let data = write_random(&b_dir.join("output/photos.bin"), 4 << 20, 55);
    // B takes no peer exchange: it never learns A's address but from the relay's introduction, so
    // it never dials A on its own (two peers that keep dialing each other over uTP may open their
    // routers by chance; the introduction is what makes it happen when only one knows the other).
    std::fs::write(b_dir.join("torrents.toml"), "[settings]\npex = false\n").unwrap();
    run_ok(
        &mut TwoHosts::btorrent(
            &hosts.b,
            b_dir,
            &["create", "output/photos.bin", "--no-tracker"],
        ),
        Duration::from_secs(30),
    );
    let torrent = b_dir.join("torrents/photos.bin.torrent");
    for dir in [relay_dir, a_dir] {
        std::fs::copy(&torrent, dir.join("photos.torrent")).unwrap();
    }
    let log = "btorrent_engine::holepunch=debug,btorrent_engine::peer=debug,btorrent_engine=info";

    let relay = Proc::spawn_logged(
        TwoHosts::btorrent(
            &hosts.relay,
            relay_dir,
            &["start", "photos.torrent", "--seed", "--down-limit", "2K"],
        )
        .env("RUST_LOG", log),
        relay_dir.join("relay.log"),
    );
    // B dials the relay (it can: the relay is on the open network) and seeds.
    let relay_for_b = format!("{}:6881", NattedPair::RELAY_FOR_B);
    let b = Proc::spawn_logged(
        TwoHosts::btorrent(
            &hosts.b,
            b_dir,
            &[
                "start",
                "torrents/photos.bin.torrent",
                "--seed",
                "--peer",
                &relay_for_b,
            ],
        )
        .env("RUST_LOG", log),
        b_dir.join("b.log"),
    );
    // The relay's first peer exchange to A must name B: A starts once B is the relay's peer.
    let b_seen = format!("peer={}:", NattedPair::PUBLIC_B);
    wait_until_async(
        "B to connect to the relay",
        Duration::from_secs(30),
        || async {
            relay
                .log_text()
                .lines()
                .any(|l| l.contains(&b_seen) && l.contains("connected (incoming"))
        },
    )
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
        .env("RUST_LOG", log),
        Duration::from_secs(120),
    );
    let logs = || {
        format!(
            "A:\n{}\n{}\nrelay:\n{}\nB:\n{}",
            got.stdout,
            got.stderr,
            relay.log_text(),
            b.log_text()
        )
    };
    assert!(got.status.success(), "A's download failed: {}", logs());
    let downloaded = std::fs::read(a_dir.join("output/photos.bin")).unwrap();
    assert!(downloaded == data, "A's bytes differ from B's");
    // A asked, the relay introduced, and A and B met over uTP (B's router lets in nothing else).
    assert!(
        got.stderr.contains("holepunch: asking for a rendezvous"),
        "{}",
        logs()
    );
    assert!(
        relay.log_text().contains("holepunch: introduced"),
        "{}",
        logs()
    );
    let a_seen = format!("peer={}:", NattedPair::PUBLIC_A);
    let met = |log: &str, other: &str| {
        log.lines()
            .any(|l| l.contains(other) && l.contains("connected (") && l.contains("uTP)"))
    };
    assert!(
        met(&got.stderr, &b_seen) && met(&b.log_text(), &a_seen),
        "{}",
        logs()
    );
    drop((relay, b));
    drop(hosts);
}
