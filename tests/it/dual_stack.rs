//! A peer listening on `::` (both IPv4 and IPv6 on one socket): it takes IPv4 and IPv6 peers over
//! TCP and uTP and sees each IPv4 peer at its own address (never an IPv4-mapped IPv6 one, which
//! the per-address limit would count apart from the host's other connections and peer exchange
//! would hand on as an IPv6 peer), and it dials IPv4 peers over TCP and uTP from its IPv6 socket;
//! it announces to a tracker named by a host name over both families, so it is listed under both
//! of its addresses (BEP 7).

use std::net::SocketAddr;
use std::time::Duration;

use btorrent::announce::{AnnounceEvent, AnnounceRequest, TrackerClient};
use btorrent::engine::{AddOptions, SessionConfig, Utp};
use btorrent::tracker::TrackerConfig;

use crate::support::data::write_random;
use crate::support::engine::{
    init_logs, opts, session_with, torrent, transfer_looking_via, wait_complete,
};
use crate::support::tracker::TestTracker;
use crate::support::wait::wait_until_async;

fn on(listen: &str, utp: Utp) -> SessionConfig {
    SessionConfig {
        listen: listen.parse().unwrap(),
        utp,
        ..Default::default()
    }
}

fn at(ip: &str) -> impl Fn(SocketAddr) -> SocketAddr + '_ {
    move |a| SocketAddr::new(ip.parse().unwrap(), a.port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_peer_takes_ipv4_and_ipv6_peers_at_their_own_addresses() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 512 << 10, 91);
    let meta = torrent(&src.path().join("d.bin"), 32 << 10, vec![]);
    for (leecher, dial, utp) in [
        (on("127.0.0.1:0", Utp::Off), "127.0.0.1", false),
        (on("[::1]:0", Utp::Off), "::1", false),
        (on("127.0.0.1:0", Utp::Prefer), "127.0.0.1", true),
        (on("[::1]:0", Utp::Prefer), "::1", true),
    ] {
        let (seen, _) = transfer_looking_via(
            &meta,
            src.path(),
            on("[::]:0", Utp::Allow),
            leecher,
            at(dial),
            |p| (p.addr.ip(), p.utp),
        )
        .await;
        assert_eq!(seen, (dial.parse().unwrap(), utp), "dialed from {dial}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_peer_dials_ipv4_peers_over_tcp_and_utp() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 512 << 10, 92);
    let meta = torrent(&src.path().join("d.bin"), 32 << 10, vec![]);
    for utp in [Utp::Off, Utp::Prefer] {
        let (_, seen) = transfer_looking_via(
            &meta,
            src.path(),
            on("127.0.0.1:0", Utp::Allow),
            on("[::]:0", utp),
            |a| a,
            |p| (p.addr.ip(), p.utp),
        )
        .await;
        let v4: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(seen, (v4, utp == Utp::Prefer), "{utp:?}");
    }
}

/// The addresses `tracker` lists for the torrent `ih`.
async fn listed(tracker: &TestTracker, ih: btorrent::InfoHash) -> Vec<SocketAddr> {
    let peers = TrackerClient::new()
        .get_peers(&tracker.base(), Some(ih))
        .await
        .unwrap_or_default();
    let mut out: Vec<SocketAddr> = peers
        .iter()
        .map(|p| SocketAddr::new(p.ip, p.port))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_peer_is_listed_by_a_named_tracker_at_both_its_addresses() {
    init_logs();
    let (v4, _v6) = TestTracker::start_on_both_loopbacks(TrackerConfig::default()).await;
    let url = format!("http://localhost:{}/announce", v4.addr.port());
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 256 << 10, 93);
    let meta = torrent(&src.path().join("d.bin"), 32 << 10, vec![url]);
    let ih = meta.info_hash;
    let from_torrent = |dir: &std::path::Path| AddOptions {
        trackers: None,
        ..opts(dir, vec![])
    };

    // Listening on `::`, it announces over IPv4 and over IPv6: the tracker lists it twice.
    let seed_s = session_with(on("[::]:0", Utp::Off)).await;
    let seed_h = seed_s
        .add(meta.clone(), from_torrent(src.path()))
        .await
        .unwrap();
    wait_complete(&seed_h, 30).await;
    let port = seed_s.listen_addr().port();
    let both = vec![
        SocketAddr::new("127.0.0.1".parse().unwrap(), port),
        SocketAddr::new("::1".parse().unwrap(), port),
    ];
    wait_until_async(
        "the tracker lists the seed at 127.0.0.1 and at [::1]",
        Duration::from_secs(30),
        || async { listed(&v4, ih).await == both },
    )
    .await;

    // A peer on [::1] alone reaches the tracker over IPv6, and the seed over IPv6 (its dials of
    // 127.0.0.1 leave from [::1] and fail): listed only under its IPv4 address, the seed would
    // stay out of its reach.
    let dst = tempfile::tempdir().unwrap();
    let leech_s = session_with(on("[::1]:0", Utp::Off)).await;
    let leech_h = leech_s
        .add(meta.clone(), from_torrent(dst.path()))
        .await
        .unwrap();
    wait_complete(&leech_h, 60).await;
    assert_eq!(
        std::fs::read(src.path().join("d.bin")).unwrap(),
        std::fs::read(dst.path().join("d.bin")).unwrap()
    );
    let leech_at = SocketAddr::new("::1".parse().unwrap(), leech_s.listen_addr().port());
    assert!(listed(&v4, ih).await.contains(&leech_at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dual_stack_announce_succeeds_over_either_family_alone() {
    init_logs();
    let request = |port: u16| AnnounceRequest {
        info_hash: btorrent::InfoHash([7; 20]),
        peer_id: btorrent::PeerId([port as u8; 20]),
        port,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: Some(AnnounceEvent::Started),
        numwant: None,
        key: None,
        ip: None,
    };
    let dual = TrackerClient::for_listen("::".parse().unwrap());
    let v4_only = TrackerClient::for_listen("0.0.0.0".parse().unwrap());
    for bind in ["127.0.0.1:0", "[::1]:0"] {
        let tracker = TestTracker::start_on(bind, TrackerConfig::default()).await;
        let url = format!("http://localhost:{}/announce", tracker.addr.port());
        let other = dual.announce(&url, &request(1000)).await.unwrap();
        assert!(other.peers.is_empty(), "{bind}: {:?}", other.peers);
        let answer = dual.announce(&url, &request(2000)).await.unwrap();
        let first = SocketAddr::new(tracker.addr.ip(), 1000);
        assert_eq!(answer.peers, [first], "{bind}");
        // Listening on 0.0.0.0, only over IPv4.
        let v4 = v4_only.announce(&url, &request(3000)).await;
        match tracker.addr {
            SocketAddr::V4(_) => assert_eq!(v4.unwrap().complete, Some(3)),
            SocketAddr::V6(_) => {
                let err = v4.unwrap_err();
                assert!(err.to_string().contains("refused"), "{err}");
            }
        }
        tracker.stop().await;
    }

    // A port a router forwards to ours is told over IPv4; over IPv6, no NAT between, our own;
    // over HTTP and over UDP (BEP 15) alike.
    let (v4, _v6) = TestTracker::start_on_both_loopbacks(TrackerConfig::default()).await;
    let at = |a: &str| a.parse::<SocketAddr>().unwrap();
    let both = [at("127.0.0.1:40123"), at("[::1]:6881")];
    for (scheme, ih) in [("http", [7; 20]), ("udp", [8; 20])] {
        let url = format!("{scheme}://localhost:{}/announce", v4.addr.port());
        let req = AnnounceRequest {
            info_hash: btorrent::InfoHash(ih),
            ..request(40123)
        };
        dual.announce_listening(&url, &req, 6881).await.unwrap();
        // The answer over IPv6 is waited for a moment only; the tracker hears it all the same.
        wait_until_async(
            &format!("the tracker to list 127.0.0.1:40123 and [::1]:6881 ({scheme})"),
            Duration::from_secs(30),
            || async { listed(&v4, btorrent::InfoHash(ih)).await == both },
        )
        .await;
    }
    // Another peer's announce over UDP hears the first at both addresses (the answer over IPv6
    // may come after the moment waited for it on a busy machine: asked again, then).
    let url = format!("udp://localhost:{}/announce", v4.addr.port());
    let req = AnnounceRequest {
        info_hash: btorrent::InfoHash([8; 20]),
        ..request(5000)
    };
    wait_until_async(
        "a UDP announce to hear the peer at both addresses",
        Duration::from_secs(30),
        || async {
            let answer = dual.announce_listening(&url, &req, 5000).await.unwrap();
            let mut peers = answer.peers;
            peers.sort();
            peers == both
        },
    )
    .await;
}
