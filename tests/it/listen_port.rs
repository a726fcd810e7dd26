//! The peer port moved while the session runs (`Session::set_listen_port`): the old port no
//! longer takes connections, the new one does over TCP and uTP, a connection made before goes on,
//! and a port that is taken changes nothing.

use std::net::SocketAddr;
use std::time::Duration;

use btorrent::engine::{SessionConfig, Utp};

use crate::support::data::write_random;
use crate::support::engine::{init_logs, leecher_with, seeder, torrent, wait_complete};
use crate::support::wait::wait_until;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_port_moves_while_the_session_runs() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 2 << 20, 41);
    let meta = torrent(&src.path().join("d.bin"), 64 << 10, vec![]);
    let (s, _h) = seeder(&meta, src.path()).await;
    let old = s.listen_addr();
    assert_eq!(s.utp_port(), Some(old.port()));

    // A leecher connected before the move keeps its connection (it is slowed so it is still
    // downloading then).
    let early_dst = tempfile::tempdir().unwrap();
    let slow = SessionConfig {
        download_limit: Some(512 << 10),
        ..Default::default()
    };
    let (_early, early) = leecher_with(slow, &meta, early_dst.path(), vec![old]).await;
    wait_until(
        "the early leecher to connect",
        Duration::from_secs(20),
        || early.stats().peers == 1,
    )
    .await;

    let new = s.set_listen_port(0).await.unwrap();
    assert_ne!(new, old.port());
    assert_eq!(s.listen_addr(), SocketAddr::new(old.ip(), new));
    assert_eq!(s.utp_port(), Some(new));
    // The old port is closed once its accept loop has ended.
    wait_until(
        "the old port to refuse connections",
        Duration::from_secs(10),
        || std::net::TcpStream::connect_timeout(&old, Duration::from_secs(1)).is_err(),
    )
    .await;
    wait_complete(&early, 60).await;

    // The new port takes leechers over TCP and over uTP (slowed, so the connection is seen).
    for utp in [Utp::Off, Utp::Prefer] {
        let dst = tempfile::tempdir().unwrap();
        let cfg = SessionConfig {
            utp,
            download_limit: Some(1 << 20),
            ..Default::default()
        };
        let (_l, h) = leecher_with(cfg, &meta, dst.path(), vec![s.listen_addr()]).await;
        wait_until("the leecher to connect", Duration::from_secs(20), || {
            !h.peers().is_empty()
        })
        .await;
        assert_eq!(h.peers()[0].utp, utp == Utp::Prefer, "{utp:?}");
        wait_complete(&h, 30).await;
    }

    // A port that is taken: an error, and the session stays where it is.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let e = s.set_listen_port(port).await.unwrap_err();
    assert!(e.to_string().contains(&port.to_string()), "{e}");
    assert_eq!(s.listen_addr().port(), new);
    // The same port again is no change.
    assert_eq!(s.set_listen_port(new).await.unwrap(), new);
}
