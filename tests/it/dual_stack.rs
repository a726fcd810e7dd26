//! A peer listening on `::` (both IPv4 and IPv6 on one socket): it takes IPv4 and IPv6 peers over
//! TCP and uTP and sees each IPv4 peer at its own address (never an IPv4-mapped IPv6 one, which
//! the per-address limit would count apart from the host's other connections and peer exchange
//! would hand on as an IPv6 peer), and it dials IPv4 peers over TCP and uTP from its IPv6 socket.

use std::net::SocketAddr;

use btorrent::engine::{SessionConfig, Utp};

use crate::support::data::write_random;
use crate::support::engine::{init_logs, torrent, transfer_looking_via};

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
