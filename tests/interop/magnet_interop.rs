//! Magnet links and peer exchange with real clients on 127.0.0.1: btorrent fetches the metadata (BEP 9)
//! and then the data from libtorrent, aria2c and qBittorrent seeders given only a magnet link (`x.pe`
//! or the tracker; from libtorrent a v2 link too, its piece layers asked by BEP 52 hash requests); aria2c and libtorrent download a btorrent seed from a magnet link alone (libtorrent
//! a v2 one too, its piece layers asked of us); libtorrent
//! sends us `ut_pex` and reads ours (a leecher that knows only one peer learns the others).

use std::net::SocketAddr;
use std::time::Duration;

use crate::engine_interop::{qbt_complete, seed_with_btorrent, we_seed, Setup};
use crate::support::clients::{aria2, libtorrent, qbittorrent, Qbt};
use crate::support::*;
use btorrent::engine::{AddOptions, Session, SessionConfig};
use btorrent::magnet::Magnet;
use tokio_util::sync::CancellationToken;

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn link(setup: &Setup, peer: Option<SocketAddr>, tracker: bool) -> String {
    let mut l = format!(
        "magnet:?xt=urn:btih:{}&dn={}",
        setup.meta.info_hash.to_hex(),
        setup.meta.info.name
    );
    if let Some(p) = peer {
        l.push_str(&format!("&x.pe={p}"));
    }
    if tracker {
        l.push_str(&format!("&tr={}", setup.announce));
    }
    l
}

/// btorrent given only `link`: fetches the metadata, checks it is the torrent's (with its piece
/// layers when it has a v2 side: asked of the seeder), downloads the data.
async fn fetch_and_download(setup: &Setup, link: &str, peer: Option<SocketAddr>, p: &mut Proc) {
    let s = session().await;
    let m = Magnet::parse(link).unwrap();
    let fetched = tokio::select! {
        r = s.fetch_metadata(&m, None, Some(Duration::from_secs(90)), |_| {}, CancellationToken::new()) => r,
        _ = async { p.wait_until(90, "the seeder to stay up", |p| p.exited().is_some()).await } => {
            panic!("the seeder exited; log:\n{}", p.log_text())
        }
    }
    .unwrap_or_else(|e| panic!("metadata: {e:#}; seeder log:\n{}", p.log_text()));
    assert_eq!(fetched.info_bytes(), setup.meta.info_bytes());
    assert_eq!(fetched.info.merkle(), setup.meta.info.merkle());
    let out = setup.dir("ours");
    let h = s
        .add(
            fetched,
            AddOptions {
                data_dir: out.clone(),
                peers: peer.into_iter().collect(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_complete(&h, 120).await;
    assert_same_tree(&setup.src, &out);
    s.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_fetches_a_magnet_from_a_libtorrent_seeder() {
    fetches_by_btih_from_a_libtorrent_seed(Setup::new(true).await).await;
}

/// libtorrent seeds `setup`'s torrent; btorrent, given its `btih` link naming the seeder, fetches
/// and downloads it.
async fn fetches_by_btih_from_a_libtorrent_seed(setup: Setup) {
    let port = free_port();
    let mut p = setup.spawn(
        &mut libtorrent("seed", &setup.torrent_file, &setup.src, port),
        "lt.log",
    );
    setup.wait_seeder(port, &mut p).await;
    let l = link(&setup, Some(loopback(port)), false);
    fetch_and_download(&setup, &l, Some(loopback(port)), &mut p).await;
}

/// The multi-file setup as a v2 torrent, one file at least of several pieces (its layer must be
/// asked for when the dictionary comes by a magnet link).
async fn v2_setup() -> Setup {
    let setup = Setup::made(true, btorrent::metainfo::Format::V2).await;
    let v2 = setup.meta.info.v2.as_ref().unwrap();
    assert!(v2.files.iter().any(|f| f.piece_count > 1));
    setup
}

/// A v2 torrent's `urn:btmh:` link: btorrent fetches the info dictionary from libtorrent, then the
/// piece layers (BEP 52 hash requests, libtorrent answering), and downloads the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_fetches_a_v2_magnet_and_its_piece_layers_from_a_libtorrent_seeder() {
    let setup = v2_setup().await;
    let port = free_port();
    let mut p = setup.spawn(
        &mut libtorrent("seed", &setup.torrent_file, &setup.src, port),
        "lt.log",
    );
    setup.wait_seeder(port, &mut p).await;
    let l = format!("{}&x.pe={}", setup.meta.magnet(), loopback(port));
    assert!(l.starts_with("magnet:?xt=urn:btmh:1220"), "{l}");
    fetch_and_download(&setup, &l, Some(loopback(port)), &mut p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn btorrent_fetches_a_magnet_from_an_aria2c_seeder() {
    let setup = Setup::new(true).await;
    let port = free_port();
    let mut p = setup.spawn(
        &mut aria2(&setup.src, port, &setup.torrent_file, true),
        "aria2.log",
    );
    setup.wait_seeder(port, &mut p).await;
    let l = link(&setup, Some(loopback(port)), false);
    fetch_and_download(&setup, &l, Some(loopback(port)), &mut p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs qbittorrent-nox and curl"]
async fn btorrent_fetches_a_magnet_from_a_qbittorrent_seeder_through_the_tracker() {
    let setup = Setup::new(false).await;
    let port = free_port();
    let web = free_port();
    let mut p = setup.spawn(&mut qbittorrent(setup.work.path(), port, web), "qbt.log");
    let api = Qbt::connect(web, &mut p).await;
    api.add(&setup.torrent_file, &setup.src);
    setup.wait_seeder(port, &mut p).await;
    let l = link(&setup, None, true);
    fetch_and_download(&setup, &l, None, &mut p).await;
    let _ = qbt_complete;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn aria2c_downloads_a_btorrent_seed_from_a_magnet_link() {
    let setup = Setup::new(true).await;
    let (_s, h) = seed_with_btorrent(&setup).await;
    let out = setup.dir("aria2");
    let l = link(&setup, None, true);
    let p = setup.spawn(
        &mut aria2(&out, free_port(), std::path::Path::new(&l), false),
        "aria2.log",
    );
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_downloads_a_btorrent_seed_from_a_magnet_link() {
    let setup = Setup::new(true).await;
    let (s, h) = seed_with_btorrent(&setup).await;
    let out = setup.dir("lt");
    let l = link(&setup, Some(s.listen_addr()), false);
    let p = setup.spawn(
        &mut libtorrent("leech", std::path::Path::new(&l), &out, free_port()),
        "lt.log",
    );
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
}

/// A v2 torrent's magnet link (`urn:btmh:`): libtorrent fetches the info dictionary from btorrent,
/// then its piece layers (BEP 52 hash requests, answered from ours), and downloads the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_downloads_a_btorrent_v2_seed_from_its_btmh_magnet_link() {
    let setup = v2_setup().await;
    let (s, h) = seed_with_btorrent(&setup).await;
    let out = setup.dir("lt");
    let l = format!("{}&x.pe={}", setup.meta.magnet(), s.listen_addr());
    assert!(l.starts_with("magnet:?xt=urn:btmh:1220"), "{l}");
    let p = setup.spawn(
        &mut libtorrent("leech", std::path::Path::new(&l), &out, free_port()),
        "lt.log",
    );
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
}

/// A hybrid torrent's link naming only its `btmh` and the tracker: the peer is found in the v2
/// swarm (the seed announces there too), the dictionary fetched from it (by the v2 info-hash), and
/// the torrent joins the v1 swarm by its SHA-1.
fn v2_swarm_link(setup: &Setup) -> String {
    let full = hex::encode(setup.meta.info_hash_v2.unwrap());
    format!("magnet:?xt=urn:btmh:1220{full}&tr={}", setup.announce)
}

/// libtorrent seeds a hybrid torrent: btorrent, given only its v2 swarm (`btmh`) and the tracker,
/// finds libtorrent there, gets the dictionary and downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_finds_a_libtorrent_hybrid_seed_by_its_v2_swarm_alone() {
    let setup = Setup::made(true, btorrent::metainfo::Format::Hybrid).await;
    let port = free_port();
    let mut p = setup.spawn(
        &mut libtorrent("seed", &setup.torrent_file, &setup.src, port),
        "lt.log",
    );
    setup.wait_seeder(port, &mut p).await;
    fetch_and_download(&setup, &v2_swarm_link(&setup), None, &mut p).await;
}

/// libtorrent seeds a hybrid torrent: btorrent, given its v1 hash (`btih`) and the seeder, gets
/// the dictionary, then the piece layers in the v2 swarm (libtorrent answers hash requests only
/// there), and downloads, checking both hashes of each piece.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_fetches_a_libtorrent_hybrid_by_its_v1_hash_and_its_piece_layers() {
    let setup = Setup::made(true, btorrent::metainfo::Format::Hybrid).await;
    assert!(setup.meta.info.merkle().is_some());
    fetches_by_btih_from_a_libtorrent_seed(setup).await;
}

/// btorrent seeds a hybrid torrent: libtorrent, given only its v2 swarm (`btmh`) and the tracker,
/// finds btorrent there (btorrent announces both info-hashes and answers a handshake naming the v2
/// one), gets the dictionary and downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_finds_a_btorrent_hybrid_seed_by_its_v2_swarm_alone() {
    let setup = Setup::made(true, btorrent::metainfo::Format::Hybrid).await;
    let (_s, h) = seed_with_btorrent(&setup).await;
    let out = setup.dir("lt");
    let l = v2_swarm_link(&setup);
    let p = setup.spawn(
        &mut libtorrent("leech", std::path::Path::new(&l), &out, free_port()),
        "lt.log",
    );
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
}

/// btorrent seeds a hybrid torrent it has without its piece layers (its .torrent came from a `btih`
/// fetch whose peers gave none): it derives them from its data, and libtorrent, given only the v2
/// swarm and the tracker, asks for them by hash requests, downloads, and holds the very layers the
/// torrent was made with. (libtorrent would also hash them from the data it downloaded; that the
/// derived layers are served is shown by `magnet::a_hybrid_fetched_by_its_v1_hash_asks_for_its_piece_layers`,
/// where btorrent is the one asking. Here: answers libtorrent takes without a complaint.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_gets_the_piece_layers_a_btorrent_hybrid_seed_derived() {
    let mut setup = Setup::made(true, btorrent::metainfo::Format::Hybrid).await;
    let layers = setup.meta.info.merkle().cloned().unwrap();
    assert!(layers.files.iter().any(|f| f.piece_count > 1));
    let bare = crate::support::engine::bare(&setup.meta);
    let tracked =
        btorrent::metainfo::set_tracker_tiers(&bare, &[vec![setup.announce.clone()]]).unwrap();
    setup.meta = btorrent::Metainfo::from_bytes(&tracked).unwrap();
    assert!(setup.meta.info.merkle().is_none());
    let s = session().await;
    let mut events = s.subscribe().unwrap();
    let h = s
        .add(
            setup.meta.clone(),
            AddOptions {
                data_dir: setup.src.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    events_until(&mut events, 30, "the derived layers", |e| {
        matches!(e, btorrent::engine::Event::LayersDerived { .. })
    })
    .await;
    let out = setup.dir("lt");
    // Outside the setup's folder, which goes with it.
    let kept = tempfile::tempdir().unwrap();
    let saved = kept.path().join("lt-saved.torrent");
    let l = v2_swarm_link(&setup);
    let mut lt = libtorrent("leech", std::path::Path::new(&l), &out, free_port());
    lt.env("LT_SAVE_TORRENT", &saved);
    let p = Proc::spawn_logged(&mut lt, kept.path().join("lt.log"));
    let log = kept.path().join("lt.log");
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
    // What libtorrent holds: the layers it was given, checked against each file's root.
    let held = btorrent::Metainfo::load(&saved)
        .unwrap_or_else(|e| panic!("{e}: {}", std::fs::read_to_string(&log).unwrap_or_default()));
    assert_eq!(held.info.merkle(), Some(&layers));
}

/// A btorrent seeder slow enough that leechers stay connected while PEX goes round.
async fn slow_seeder(setup: &Setup) -> Session {
    let s = session_with(SessionConfig {
        upload_limit: Some(300_000),
        ..Default::default()
    })
    .await;
    let h = s
        .add(
            setup.meta.clone(),
            AddOptions {
                data_dir: setup.src.clone(),
                trackers: Some(vec![]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_complete(&h, 30).await;
    s
}

/// A bare peer of `setup`'s torrent connected to `seed` that listens on a port of its own (given as
/// `p` in its extension handshake) and speaks no PEX: only someone told of it by the seeder's PEX can
/// dial it. Returns a flag raised when a peer of the torrent dials that port.
async fn listening_bystander(
    setup: &Setup,
    seed: SocketAddr,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use btorrent::wire::extension::{ExtHandshake, OurExt};
    use btorrent::wire::handshake::{initiate, read_handshake, Handshake};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ih = setup.meta.info_hash;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let dialed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = dialed.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            if let Ok(h) = read_handshake(&mut s, Duration::from_secs(5)).await {
                if h.info_hash == ih {
                    flag.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    });
    let mut s = tokio::net::TcpStream::connect(seed).await.unwrap();
    let ours = Handshake::ours(ih, btorrent::PeerId::generate());
    initiate(&mut s, &ours, Duration::from_secs(5))
        .await
        .unwrap();
    let hs = ExtHandshake::ours(OurExt {
        listen_port: port,
        metadata_size: None,
        pex: false,
        holepunch: false,
        upload_only: false,
        prefers_encryption: false,
        your_ip: None,
    });
    let mut frame = ((hs.len() + 2) as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&[20, 0]);
    frame.extend_from_slice(&hs);
    s.write_all(&frame).await.unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while s.read(&mut buf).await.is_ok_and(|n| n > 0) {}
    });
    dialed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_reads_our_pex() {
    // libtorrent knows only our seeder (x.pe); our seeder's PEX tells it of a bystander, which only
    // PEX can reveal: libtorrent dials it.
    let setup = Setup::new(false).await;
    let seed = slow_seeder(&setup).await;
    let dialed = listening_bystander(&setup, seed.listen_addr()).await;
    let seed_handle = seed.get(&setup.meta.info_hash).unwrap();
    wait_until(
        "the bystander is connected",
        Duration::from_secs(10),
        || !seed_handle.peers().is_empty(),
    )
    .await;
    let out = setup.dir("lt");
    let l = link(&setup, Some(seed.listen_addr()), false);
    let mut p = setup.spawn(
        &mut libtorrent("leech", std::path::Path::new(&l), &out, free_port()),
        "lt.log",
    );
    p.wait_until(
        60,
        "libtorrent to dial the bystander it learnt of by PEX",
        |_| dialed.load(std::sync::atomic::Ordering::Relaxed),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_sends_us_pex() {
    // Our leecher knows only libtorrent; libtorrent tells it of our seeder.
    let setup = Setup::new(false).await;
    let seed = slow_seeder(&setup).await;
    let lt_port = free_port();
    let out = setup.dir("lt");
    let l = link(&setup, Some(seed.listen_addr()), false);
    let mut p = setup.spawn(
        &mut libtorrent("leech", std::path::Path::new(&l), &out, lt_port),
        "lt.log",
    );
    let seed_handle = seed.get(&setup.meta.info_hash).unwrap();
    p.wait_until(60, "libtorrent connected to our seeder", |_| {
        !seed_handle.peers().is_empty()
    })
    .await;
    let d = setup.dir("b");
    let (_b, hb) = leecher(&setup.meta, &d, vec![loopback(lt_port)]).await;
    p.wait_until(
        60,
        "our leecher to reach our seeder through libtorrent's PEX",
        |_| {
            hb.peers().iter().any(|x| {
                x.client
                    .as_deref()
                    .is_some_and(|c| c.starts_with("btorrent"))
            })
        },
    )
    .await;
}
