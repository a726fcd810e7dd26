//! uTP (BEP 29) between sessions on loopback: a download over it (plain and encrypted), TCP on the
//! retry when a peer has uTP off, a peer whose TCP port hangs up reached over uTP on the retry and
//! over uTP at once the next time, and the daemon's `utp` setting through the RPC.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use btorrent::engine::{Encryption, SessionConfig, Utp};
use btorrent::metainfo::Metainfo;

use serde_json::json;

use crate::support::data::write_random;
use crate::support::engine::{
    init_logs, leecher_with, seeder_with, torrent, transfer_looking, wait_complete,
};
use crate::support::rpc::{parse_metrics, poll, request, torrent_get, RpcDaemon};
use crate::support::wait::wait_until;

fn with(utp: Utp, encryption: Encryption) -> SessionConfig {
    SessionConfig {
        utp,
        encryption,
        ..Default::default()
    }
}

/// Seeds `meta` under `seeder` and downloads it under `leecher`; for each end, whether its
/// connection is uTP and whether it is encrypted.
async fn transfer(
    meta: &Metainfo,
    src: &std::path::Path,
    seeder: SessionConfig,
    leecher: SessionConfig,
) -> [(bool, bool); 2] {
    let (s, l) = transfer_looking(meta, src, seeder, leecher, |p| (p.utp, p.encrypted)).await;
    [s, l]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_over_utp_is_complete_and_identical_plain_or_encrypted() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    // Many pieces, and more in flight than one uTP window.
    write_random(&src.path().join("d.bin"), 4 << 20, 81);
    let meta = torrent(&src.path().join("d.bin"), 64 << 10, vec![]);
    for enc in [Encryption::Allow, Encryption::Require] {
        let encrypted = enc == Encryption::Require;
        let ends = transfer(
            &meta,
            src.path(),
            with(Utp::Allow, enc),
            with(Utp::Prefer, enc),
        )
        .await;
        assert_eq!(ends, [(true, encrypted); 2], "{enc:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_utp_off_is_reached_over_tcp_by_one_that_prefers_utp() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 512 << 10, 82);
    let meta = torrent(&src.path().join("d.bin"), 32 << 10, vec![]);
    let ends = transfer(
        &meta,
        src.path(),
        with(Utp::Off, Encryption::Allow),
        with(Utp::Prefer, Encryption::Allow),
    )
    .await;
    assert_eq!(ends, [(false, false); 2]);
    // Off set while the session runs counts the same.
    let (seed_s, _h) = seeder_with(with(Utp::Allow, Encryption::Allow), &meta, src.path()).await;
    seed_s.set_utp(Utp::Off);
    assert_eq!(seed_s.utp(), Utp::Off);
    let dst = tempfile::tempdir().unwrap();
    let (_l, h) = leecher_with(
        with(Utp::Prefer, Encryption::Allow),
        &meta,
        dst.path(),
        vec![seed_s.listen_addr()],
    )
    .await;
    wait_complete(&h, 60).await;
    let p = h.peers();
    assert!(p.iter().all(|p| !p.utp), "{p:?}");
}

/// A stand-in for a peer that takes uTP only: its TCP port (of the same number) accepts and
/// hangs up at once, counting; its UDP port relays datagrams to and from the seed's uTP socket.
struct UtpOnly {
    addr: SocketAddr,
    tcp_accepts: Arc<AtomicUsize>,
}

impl UtpOnly {
    async fn to(seed: SocketAddr) -> UtpOnly {
        let (udp, tcp) = loop {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = udp.local_addr().unwrap().port();
            // The TCP port of that number may be someone else's: another pair then.
            if let Ok(tcp) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let tcp_accepts = Arc::new(AtomicUsize::new(0));
        let count = tcp_accepts.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = tcp.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(s);
            }
        });
        tokio::spawn(async move {
            let mut client: Option<SocketAddr> = None;
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = udp.recv_from(&mut buf).await {
                let to = if from == seed {
                    match client {
                        Some(c) => c,
                        None => continue,
                    }
                } else {
                    client = Some(from);
                    seed
                };
                let _ = udp.send_to(&buf[..n], to).await;
            }
        });
        UtpOnly { addr, tcp_accepts }
    }

    fn tcp_accepts(&self) -> usize {
        self.tcp_accepts.load(Ordering::SeqCst)
    }
}

/// Under the default policy, a peer whose TCP port hangs up (plain and encrypted) is reached over
/// uTP on the retry, and dialed over uTP at once the next time: no TCP connection then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_reached_only_over_utp_is_dialed_over_it_first_the_next_time() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 1 << 20, 83);
    let meta = torrent(&src.path().join("d.bin"), 32 << 10, vec![]);
    let (seed_s, _seed_h) = seeder_with(SessionConfig::default(), &meta, src.path()).await;
    // The seed never dials the leecher (on 127.0.0.2) back: every connection is the leecher's,
    // through the stand-in (whose datagrams to the seed come from 127.0.0.1).
    seed_s.set_ip_filter(btorrent::engine::ip_filter::IpFilter::parse("127.0.0.2\n").filter);
    let peer = UtpOnly::to(seed_s.listen_addr()).await;
    let dst = tempfile::tempdir().unwrap();
    let slow = SessionConfig {
        listen: "127.0.0.2:0".parse().unwrap(),
        download_limit: Some(64 << 10),
        ..SessionConfig::default()
    };
    let (_l, h) = leecher_with(slow, &meta, dst.path(), vec![peer.addr]).await;
    let connected = || h.peers().len() == 1;
    wait_until("the first connection", Duration::from_secs(30), connected).await;
    assert!(h.peers()[0].utp, "{:?}", h.peers());
    assert_eq!(
        peer.tcp_accepts(),
        2,
        "TCP hung up on twice (plain, encrypted), then uTP on the retry"
    );
    // A pause ends the connection; the dial after the resume goes over uTP at once.
    h.pause();
    wait_until("the connection to end", Duration::from_secs(30), || {
        h.peers().is_empty()
    })
    .await;
    h.resume();
    wait_until("the second connection", Duration::from_secs(60), connected).await;
    assert!(h.peers()[0].utp);
    assert_eq!(peer.tcp_accepts(), 2, "uTP first the second time");
}

/// Whether a session preferring uTP, dialing the daemon's peer port for `meta`, connects over uTP;
/// the daemon's RPC (`isUTP`, the `T` flag) and `/metrics` (`btorrent_peers_utp`) say the same
/// while it is connected.
fn dials_in_over_utp(d: &RpcDaemon, port: u16, meta: &Metainfo) -> bool {
    let mut c = d.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (s, h) = rt.block_on(async {
        // Slow, so the connection lasts while the daemon is asked about it.
        let slow = SessionConfig {
            download_limit: Some(8 << 10),
            ..with(Utp::Prefer, Encryption::Allow)
        };
        let (s, h) = leecher_with(slow, meta, dst.path(), vec![addr]).await;
        wait_until(
            "a connection to the daemon",
            Duration::from_secs(30),
            || h.peers().len() == 1,
        )
        .await;
        (s, h)
    });
    let utp = h.peers()[0].utp;
    // Ours by its port: our uTP socket's (the listen port's number), or a TCP one.
    let ours = |p: &serde_json::Value| {
        p["port"] == s.listen_addr().port() || (!utp && p["isUTP"] == false)
    };
    let p = poll("the daemon to list our connection", 30, || {
        let t = torrent_get(&mut c, json!([meta.info_hash.to_hex()]), &["peers"]).pop()?;
        t["peers"].as_array()?.iter().find(|p| ours(p)).cloned()
    });
    assert_eq!(p["isUTP"], utp, "{p}");
    assert_eq!(p["flagStr"].as_str().unwrap().contains('T'), utp, "{p}");
    // (Polled: a connection of an earlier session may take a moment to be seen closed.)
    let want = if utp { 1.0 } else { 0.0 };
    poll("/metrics to count our connection", 30, || {
        let m = parse_metrics(&request(d.port, "GET", "/metrics", &[], b"").body);
        (m["btorrent_peers_utp"] == want).then_some(())
    });
    rt.block_on(s.shutdown(Duration::from_secs(2)));
    utp
}

/// torrents.toml's `utp` is the daemon's; the RPC's `session-get` says `utp-enabled` and
/// `session-set` changes it at once (kept in torrents.toml, `prefer` kept when turned on); a bad
/// value is refused and changes nothing.
#[test]
fn the_daemon_follows_its_utp_setting_and_the_rpc_changes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "utp = \"prefer\"");
    let mut c = d.client();
    let (meta, port) = c.add_seeding(dir.path(), 84);
    assert!(dials_in_over_utp(&d, port, &meta));
    let load = || btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    let get = |c: &mut crate::support::rpc::Client| {
        c.ok("session-get", json!({"fields": ["utp-enabled"]}))["utp-enabled"].clone()
    };
    assert_eq!(get(&mut c), true);
    let v = c.call("session-set", json!({"utp-enabled": "yes"}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("must be true or false"),
        "{v}"
    );
    assert_eq!(load().settings.utp, Utp::Prefer);
    c.ok("session-set", json!({"utp-enabled": true}));
    assert_eq!(load().settings.utp, Utp::Prefer, "on keeps prefer");
    c.ok("session-set", json!({"utp-enabled": false}));
    assert_eq!(load().settings.utp, Utp::Off);
    assert_eq!(get(&mut c), false);
    assert!(!dials_in_over_utp(&d, port, &meta), "uTP taken while off");
    c.ok("session-set", json!({"utp-enabled": true}));
    assert_eq!(load().settings.utp, Utp::Allow);
}
