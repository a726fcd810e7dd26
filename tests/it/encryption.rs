//! Message stream encryption (MSE) between sessions on loopback: downloads over RC4 streams, every
//! policy meeting the ones it can (a session that allows encryption reaches one that requires it),
//! the metadata of a magnet link fetched over an encrypted connection, and the refusals: a plain
//! handshake to a session that requires encryption, an encrypted one to a session that has it off.

use std::time::Duration;

use btorrent::engine::{Encryption, Session, SessionConfig};
use btorrent::magnet::Magnet;
use btorrent::metainfo::Metainfo;
use btorrent::wire::handshake::{read_handshake, write_handshake, Handshake};
use btorrent::wire::mse::{self, Methods};
use btorrent::PeerId;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::support::data::write_random;
use crate::support::engine::{
    init_logs, leecher_with, seeder_with, torrent, transfer_looking, wait_complete,
};
use crate::support::wait::wait_until;

fn with(encryption: Encryption) -> SessionConfig {
    SessionConfig {
        encryption,
        ..Default::default()
    }
}

/// Seeds `meta` with one policy and downloads it with another; whether each end's connection is
/// encrypted.
async fn transfer(
    meta: &Metainfo,
    src: &std::path::Path,
    seeder_policy: Encryption,
    leecher_policy: Encryption,
) -> (bool, bool) {
    let (s, l) = (with(seeder_policy), with(leecher_policy));
    transfer_looking(meta, src, s, l, |p| p.encrypted).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_between_sessions_that_require_encryption_is_encrypted_both_ways() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    // Many pieces and more than one encrypted write's worth at a time.
    write_random(&src.path().join("d.bin"), 6 << 20, 71);
    let meta = torrent(&src.path().join("d.bin"), 64 << 10, vec![]);
    let (seeder_end, leecher_end) =
        transfer(&meta, src.path(), Encryption::Require, Encryption::Require).await;
    assert!(seeder_end && leecher_end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_policy_reaches_a_peer_that_requires_encryption_or_has_it_off_when_it_can() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 512 << 10, 72);
    let meta = torrent(&src.path().join("d.bin"), 32 << 10, vec![]);
    use Encryption::*;
    // (seeder, leecher that dials it, encrypted?)
    for (seeder, leecher, encrypted) in [
        // The default dials plain, is hung up on, and comes back encrypted.
        (Require, Allow, true),
        (Allow, Require, true),
        // Preferring encryption, it falls back to a plain connection with a peer that has it off.
        (Off, Prefer, false),
        (Prefer, Allow, false),
        (Allow, Allow, false),
    ] {
        let (a, b) = transfer(&meta, src.path(), seeder, leecher).await;
        assert_eq!(
            (a, b),
            (encrypted, encrypted),
            "{seeder:?} seeding, {leecher:?} leeching"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_link_is_fetched_and_downloaded_over_encrypted_connections() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 1 << 20, 73);
    let meta = torrent(&src.path().join("d.bin"), 64 << 10, vec![]);
    let (seed_s, _seed_h) = seeder_with(with(Encryption::Require), &meta, src.path()).await;
    let leech_s = Session::start(with(Encryption::Require)).await.unwrap();
    let link = format!(
        "magnet:?xt=urn:btih:{}&x.pe={}",
        meta.info_hash.to_hex(),
        seed_s.listen_addr()
    );
    let fetched = leech_s
        .fetch_metadata(
            &Magnet::parse(&link).unwrap(),
            None,
            Some(Duration::from_secs(30)),
            |_: &btorrent::engine::metadata::FetchProgress| {},
            CancellationToken::new(),
        )
        .await
        .expect("the metadata over an encrypted connection");
    assert_eq!(fetched.info_hash, meta.info_hash);
    let dst = tempfile::tempdir().unwrap();
    let opts = crate::support::engine::opts(dst.path(), vec![seed_s.listen_addr()]);
    let h = leech_s.add(fetched, opts).await.unwrap();
    wait_complete(&h, 60).await;
    assert!(h.peers().iter().all(|p| p.encrypted));
}

#[tokio::test]
async fn a_session_requiring_encryption_hangs_up_on_a_plain_handshake_and_one_with_it_off_on_an_encrypted_one(
) {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 64 << 10, 74);
    let meta = torrent(&src.path().join("d.bin"), 16 << 10, vec![]);
    let t = Duration::from_secs(10);
    let ours = Handshake::ours(meta.info_hash, PeerId::generate());

    let (requiring, _h) = seeder_with(with(Encryption::Require), &meta, src.path()).await;
    let mut s = TcpStream::connect(requiring.listen_addr()).await.unwrap();
    write_handshake(&mut s, &ours, t).await.unwrap();
    let r = read_handshake(&mut s, t).await;
    assert!(r.is_err(), "a plain handshake answered: {r:?}");
    // The same session answers the encrypted handshake, with the torrent's.
    let mut s = TcpStream::connect(requiring.listen_addr()).await.unwrap();
    let e = mse::initiate(&mut s, &meta.info_hash, Methods::BOTH, &ours.to_bytes(), t)
        .await
        .unwrap();
    assert_eq!(
        e.crypto,
        mse::Crypto::Rc4,
        "RC4 selected where it is required"
    );

    let (off, _h) = seeder_with(with(Encryption::Off), &meta, src.path()).await;
    let mut s = TcpStream::connect(off.listen_addr()).await.unwrap();
    let r = mse::initiate(&mut s, &meta.info_hash, Methods::BOTH, &ours.to_bytes(), t).await;
    assert!(
        r.is_err(),
        "an encrypted handshake answered with encryption off"
    );
    // And an encrypted handshake for a torrent the session does not have is refused.
    let mut s = TcpStream::connect(requiring.listen_addr()).await.unwrap();
    let other = btorrent::InfoHash([9; 20]);
    let r = mse::initiate(&mut s, &other, Methods::BOTH, &ours.to_bytes(), t).await;
    assert!(r.is_err(), "an unknown torrent answered");
}

/// Answers a plain handshake (blocking, for the daemon tests): true if the peer at `port` sends
/// its own back.
fn answers_plain(port: u16, ih: btorrent::InfoHash) -> bool {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&Handshake::ours(ih, PeerId::generate()).to_bytes())
        .unwrap();
    let mut back = [0u8; 68];
    s.read_exact(&mut back).is_ok() && back[0] == 19
}

/// torrents.toml's `encryption` is the daemon's policy; the RPC's `session-get` names it as
/// Transmission does and `session-set` changes it at once (kept in torrents.toml); a bad value is
/// refused and changes nothing; a hand edit of the file is in force within seconds.
#[test]
fn the_daemon_follows_its_encryption_setting_and_the_rpc_changes_it() {
    use crate::support::rpc::{poll, RpcDaemon};
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "encryption = \"require\"");
    let mut c = d.client();
    let (meta, port) = c.add_seeding(dir.path(), 75);
    let s = c.ok("session-get", json!({"fields": ["encryption"]}));
    assert_eq!(s["encryption"], "required");
    assert!(
        !answers_plain(port, meta.info_hash),
        "plain answered while required"
    );

    let v = c.call("session-set", json!({"encryption": "sometimes"}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("must be required, preferred or tolerated"),
        "{v}"
    );
    let load = || btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert_eq!(load().settings.encryption, Encryption::Require);

    c.ok("session-set", json!({"encryption": "tolerated"}));
    assert_eq!(load().settings.encryption, Encryption::Allow);
    let s = c.ok("session-get", json!({"fields": ["encryption"]}));
    assert_eq!(s["encryption"], "tolerated");
    assert!(
        answers_plain(port, meta.info_hash),
        "plain refused once tolerated"
    );

    // A hand edit of torrents.toml counts too, within seconds.
    crate::live_settings::edit_setting(dir.path(), "encryption", Some("require".into()));
    poll("the edited policy to be in force", 30, || {
        (!answers_plain(port, meta.info_hash)).then_some(())
    });
}

/// The one-shot questions of scripts (`bitfield`, `download_piece`) reach a peer that requires
/// encryption: plain first, then encrypted on a second connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_questions_reach_a_peer_that_requires_encryption() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    let data = write_random(&src.path().join("d.bin"), 100 << 10, 76);
    let meta = torrent(&src.path().join("d.bin"), 32 << 10, vec![]);
    // Not super-seeding (it would offer no piece before the peer's own are known).
    let cfg = SessionConfig {
        super_seed: Some(false),
        ..with(Encryption::Require)
    };
    let (s, _h) = seeder_with(cfg, &meta, src.path()).await;
    let probe = btorrent::engine::probe::fetch_bitfield(s.listen_addr(), &meta, PeerId::generate())
        .await
        .unwrap();
    assert!(probe.is_full(), "{probe:?}");
    let piece =
        btorrent::engine::probe::download_piece(s.listen_addr(), &meta, 3, PeerId::generate())
            .await
            .unwrap();
    assert_eq!(piece, data[96 << 10..]);
}

/// A relay to `to` that counts the connections made through it; `cut` ends every one open.
struct Relay {
    addr: std::net::SocketAddr,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    pipes: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn to(to: std::net::SocketAddr) -> Relay {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let pipes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, p) = (count.clone(), pipes.clone());
        tokio::spawn(async move {
            while let Ok((mut a, _)) = l.accept().await {
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                p.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut b) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                    }
                }));
            }
        });
        Relay { addr, count, pipes }
    }

    fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn cut(&self) {
        for p in self.pipes.lock().unwrap().drain(..) {
            p.abort();
        }
    }
}

/// With the default policy, an address that took only the encrypted handshake is dialed with it
/// first the next time: one connection, not a plain one hung up on and then a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_needed_encryption_is_dialed_encrypted_first_the_next_time() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 1 << 20, 77);
    let meta = torrent(&src.path().join("d.bin"), 32 << 10, vec![]);
    let (seed_s, _seed_h) = seeder_with(with(Encryption::Require), &meta, src.path()).await;
    // The seed never dials the leecher (on 127.0.0.2) back: every connection is the leecher's,
    // through the relay (whose connections to the seed come from 127.0.0.1).
    seed_s.set_ip_filter(btorrent::engine::ip_filter::IpFilter::parse("127.0.0.2\n").filter);
    let relay = Relay::to(seed_s.listen_addr()).await;
    let dst = tempfile::tempdir().unwrap();
    // Slow: the download outlasts both connections.
    let slow = SessionConfig {
        listen: "127.0.0.2:0".parse().unwrap(),
        download_limit: Some(64 << 10),
        ..with(Encryption::Allow)
    };
    let (_l, h) = leecher_with(slow, &meta, dst.path(), vec![relay.addr]).await;
    let connected = || h.peers().len() == 1;
    wait_until("the first connection", Duration::from_secs(30), connected).await;
    assert_eq!(
        relay.count(),
        2,
        "a plain dial hung up on, then an encrypted one"
    );
    assert!(h.peers()[0].encrypted);
    relay.cut();
    wait_until("the connection to end", Duration::from_secs(30), || {
        h.peers().is_empty()
    })
    .await;
    wait_until("the second connection", Duration::from_secs(60), connected).await;
    assert_eq!(relay.count(), 3, "encrypted at once the second time");
}
