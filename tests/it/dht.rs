//! The Mainline DHT on a local testnet (a few `mainline` nodes on 127.0.0.1): a trackerless torrent
//! found and downloaded over it, the routing table saved and reused, private torrents never announced,
//! the BEP 5 `port` message, and junk UDP (mutated KRPC, random bytes) sent to our node.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::dht::{session_config, testnet};
use crate::support::{random_bytes, session_with, wait_complete, wait_until_async, write_random};
use btorrent::engine::{AddOptions, Session, SessionConfig};
use btorrent::metainfo::{create_torrent, CreateOptions};
use btorrent::types::InfoHash;
use btorrent::Metainfo;

/// A torrent of `path` with no tracker, public or private.
fn trackerless(path: &std::path::Path, private: bool) -> Metainfo {
    let opts = CreateOptions {
        piece_length: Some(64 * 1024),
        private,
        ..Default::default()
    };
    create_torrent(path, &opts, &|_, _| {}).unwrap()
}

fn add_opts(dir: &std::path::Path) -> AddOptions {
    AddOptions {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

/// A session on the testnet seeding `meta` from `dir`, its data check done.
async fn dht_seeder(
    net: &mainline::Testnet,
    meta: &Metainfo,
    dir: &std::path::Path,
) -> (Session, btorrent::engine::TorrentHandle) {
    let seeder = session_with(session_config(&net.bootstrap)).await;
    let seeding = seeder.add(meta.clone(), add_opts(dir)).await.unwrap();
    wait_complete(&seeding, 30).await;
    (seeder, seeding)
}

/// Peers a lookup on one of the testnet's own nodes finds for `ih` (the whole lookup, at most 30 s).
async fn testnet_lookup(net: &mainline::Testnet, ih: InfoHash) -> HashSet<SocketAddr> {
    use futures::StreamExt;
    let node = net.nodes[0].clone().as_async();
    let mut found = node.get_peers(mainline::Id::from(ih.0));
    let mut out = HashSet::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(batch) = found.next().await {
            out.extend(batch.into_iter().map(SocketAddr::V4));
        }
    })
    .await;
    out
}

/// Waits until a session's own DHT lookup for `ih` returns `want`.
async fn session_finds(s: &Session, ih: InfoHash, want: SocketAddr, within: Duration) {
    wait_until_async(&format!("a DHT lookup to find {want}"), within, || async {
        let mut rx = s.dht_peers(ih).expect("the session runs a DHT");
        while let Ok(Some(a)) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            if a == want {
                return true;
            }
        }
        false
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trackerless_torrent_found_over_the_dht_and_routing_table_reused() {
    crate::support::init_logs();
    let net = tokio::task::spawn_blocking(|| testnet(5)).await.unwrap();
    let src = tempfile::tempdir().unwrap();
    let data = write_random(&src.path().join("movie.bin"), 1 << 20, 71);
    let meta = trackerless(&src.path().join("movie.bin"), false);
    assert!(meta.trackers().is_empty());

    let (seeder, _seeding) = dht_seeder(&net, &meta, src.path()).await;
    let st = seeder.dht_stats().await.expect("a DHT node");
    // The peer port's UDP number is uTP's; the DHT takes another (the next one, when free).
    let peer_port = seeder.listen_addr().port();
    assert_eq!(seeder.utp_port(), Some(peer_port));
    assert_ne!(st.port, peer_port, "the DHT on uTP's port");

    // The leecher is given no peer and the torrent names no tracker: only the DHT can help.
    let dst = tempfile::tempdir().unwrap();
    let resume = tempfile::tempdir().unwrap();
    let leecher = session_with(SessionConfig {
        resume_dir: Some(resume.path().to_path_buf()),
        ..session_config(&net.bootstrap)
    })
    .await;
    let started = Instant::now();
    let h = leecher
        .add(meta.clone(), add_opts(dst.path()))
        .await
        .unwrap();
    wait_complete(&h, 60).await;
    eprintln!(
        "found over the DHT and downloaded in {:?}",
        started.elapsed()
    );
    assert_eq!(std::fs::read(dst.path().join("movie.bin")).unwrap(), data);
    let st = leecher.dht_stats().await.unwrap();
    assert!(st.nodes >= 1, "{st:?}");

    // The routing table is saved beside the resume data...
    leecher.shutdown(Duration::from_secs(5)).await;
    let saved = std::fs::read_to_string(resume.path().join("dht.nodes")).unwrap();
    let nodes: Vec<SocketAddr> = saved.lines().map(|l| l.parse().unwrap()).collect();
    assert!(
        nodes.iter().any(|n| net.bootstrap.contains(&n.to_string())),
        "{saved}"
    );
    // ...and a session with no bootstrap node at all joins the DHT through it.
    let again = session_with(SessionConfig {
        resume_dir: Some(resume.path().to_path_buf()),
        ..session_config(&[])
    })
    .await;
    session_finds(
        &again,
        meta.info_hash,
        seeder.listen_addr(),
        Duration::from_secs(30),
    )
    .await;
    // Without the saved table the same settings know nobody.
    let alone = session_with(session_config(&[])).await;
    assert!(alone.dht_peers(meta.info_hash).is_some());
    assert_eq!(alone.dht_stats().await.unwrap().nodes, 0);
    for s in [again, alone, seeder] {
        s.shutdown(Duration::from_secs(5)).await;
    }
}

/// A hybrid torrent is announced on the DHT in both its swarms: a lookup of its v2 info-hash (a v2
/// client's, from a `btmh` link) finds the seed as one of its v1 info-hash does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_is_announced_on_the_dht_in_both_its_swarms() {
    let net = tokio::task::spawn_blocking(|| testnet(5)).await.unwrap();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("h/a.bin"), 100_000, 72);
    let opts = CreateOptions {
        piece_length: Some(16384),
        hybrid: true,
        ..Default::default()
    };
    let meta = create_torrent(&src.path().join("h"), &opts, &|_, _| {}).unwrap();
    let (seeder, _seeding) = dht_seeder(&net, &meta, src.path()).await;
    let want = seeder.listen_addr().port();
    for ih in meta.swarm_ids() {
        wait_until_async(
            "the seed in the swarm's lookup",
            Duration::from_secs(60),
            || async {
                testnet_lookup(&net, ih)
                    .await
                    .iter()
                    .any(|a| a.port() == want)
            },
        )
        .await;
    }
    seeder.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_torrents_never_reach_the_dht() {
    crate::support::init_logs();
    let net = tokio::task::spawn_blocking(|| testnet(4)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("public.bin"), 200_000, 1);
    write_random(&dir.path().join("private.bin"), 200_000, 2);
    let public = trackerless(&dir.path().join("public.bin"), false);
    let private = trackerless(&dir.path().join("private.bin"), true);
    let s = session_with(session_config(&net.bootstrap)).await;
    for m in [&public, &private] {
        let h = s.add(m.clone(), add_opts(dir.path())).await.unwrap();
        wait_complete(&h, 30).await;
    }
    // Both torrents started together: once the public one is announced, the private one would be too.
    let me = s.listen_addr();
    wait_until_async(
        "the public torrent on the DHT",
        Duration::from_secs(30),
        || async { testnet_lookup(&net, public.info_hash).await.contains(&me) },
    )
    .await;
    let found = testnet_lookup(&net, private.info_hash).await;
    assert!(
        found.is_empty(),
        "a private torrent was announced: {found:?}"
    );
    // A peer of the private torrent is not offered the DHT either (no DHT bit in our handshake).
    let (reserved, _) = raw_peer(me, private.info_hash, true).await;
    assert_eq!(reserved[7] & 0x01, 0);
    s.shutdown(Duration::from_secs(5)).await;
}

/// A magnet link with nothing but the info-hash: its metadata can only come through the DHT, which
/// `source::open` asks when no other source is given; the torrent then downloads over the DHT too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_magnet_link_is_opened_and_downloaded_over_the_dht() {
    crate::support::init_logs();
    let net = tokio::task::spawn_blocking(|| testnet(5)).await.unwrap();
    let src = tempfile::tempdir().unwrap();
    let data = write_random(&src.path().join("album.bin"), 600_000, 73);
    let meta = trackerless(&src.path().join("album.bin"), false);
    let (seeder, _seeding) = dht_seeder(&net, &meta, src.path()).await;
    let me = seeder.listen_addr();
    wait_until_async("the seed on the DHT", Duration::from_secs(30), || async {
        testnet_lookup(&net, meta.info_hash).await.contains(&me)
    })
    .await;

    let leecher = session_with(session_config(&net.bootstrap)).await;
    let saved = tempfile::tempdir().unwrap();
    let link = format!("magnet:?xt=urn:btih:{}", meta.info_hash.to_hex());
    let how = btorrent::source::Open {
        session: &leecher,
        save_to: Some(saved.path().to_path_buf()),
        peers: Vec::new(),
        extra: None,
        timeout: Duration::from_secs(60),
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    let opened = btorrent::source::open(&link, Some(how), |_| {})
        .await
        .expect("metadata over the DHT");
    assert_eq!(opened.meta.info_hash, meta.info_hash);
    assert!(opened.path.as_ref().is_some_and(|p| p.exists()));
    let dst = tempfile::tempdir().unwrap();
    let h = leecher
        .add(opened.meta, add_opts(dst.path()))
        .await
        .unwrap();
    wait_complete(&h, 60).await;
    assert_eq!(std::fs::read(dst.path().join("album.bin")).unwrap(), data);
    leecher.shutdown(Duration::from_secs(5)).await;
    seeder.shutdown(Duration::from_secs(5)).await;
}

/// A bare magnet link opened before anyone has announced its torrent: the first DHT lookup finds
/// nobody, and the fetch goes on looking (rather than ending with "no peer"); once a seeder starts
/// and announces, a later lookup finds it and the metadata comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_fetch_keeps_looking_on_the_dht_until_a_seeder_announces() {
    crate::support::init_logs();
    let net = tokio::task::spawn_blocking(|| testnet(5)).await.unwrap();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("late.bin"), 200_000, 74);
    let meta = trackerless(&src.path().join("late.bin"), false);
    let leecher = session_with(session_config(&net.bootstrap)).await;
    let link = format!("magnet:?xt=urn:btih:{}", meta.info_hash.to_hex());
    let fetch = {
        let leecher = leecher.clone();
        tokio::spawn(async move {
            let how = btorrent::source::Open {
                session: &leecher,
                save_to: None,
                peers: Vec::new(),
                extra: None,
                timeout: Duration::from_secs(120),
                cancel: tokio_util::sync::CancellationToken::new(),
            };
            btorrent::source::open(&link, Some(how), |_| {}).await
        })
    };
    // A second lookup started: the first ended (with nobody) and the fetch is still on.
    wait_until_async("a second DHT lookup", Duration::from_secs(60), || async {
        leecher
            .dht_stats()
            .await
            .is_some_and(|s| s.lookups_started >= 2)
    })
    .await;
    assert!(!fetch.is_finished(), "the fetch gave up after one lookup");
    let (seeder, _seeding) = dht_seeder(&net, &meta, src.path()).await;
    let opened = tokio::time::timeout(Duration::from_secs(150), fetch)
        .await
        .expect("the fetch ends within its timeout")
        .unwrap()
        .expect("metadata once the seeder announced");
    assert_eq!(opened.meta.info_hash, meta.info_hash);
    leecher.shutdown(Duration::from_secs(5)).await;
    seeder.shutdown(Duration::from_secs(5)).await;
}

/// Connects to `addr` for `ih` (offering the DHT or not); returns the reserved bytes of the reply and
/// the stream, handshake done.
async fn raw_peer(addr: SocketAddr, ih: InfoHash, dht: bool) -> ([u8; 8], tokio::net::TcpStream) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    let mut reserved = [0u8; 8];
    reserved[5] = 0x10;
    reserved[7] = 0x04 | u8::from(dht);
    hs.extend_from_slice(&reserved);
    hs.extend_from_slice(&ih.0);
    // Each raw peer an id of its own (a second connection with the same id would be refused).
    hs.extend_from_slice(b"-XX0001-");
    hs.extend_from_slice(&random_bytes(12, rand_seed()));
    s.write_all(&hs).await.unwrap();
    let mut reply = [0u8; 68];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut reply))
        .await
        .expect("a handshake in time")
        .unwrap();
    (reply[20..28].try_into().unwrap(), s)
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Reads messages until the extension handshake (id 20) and returns every (id, payload) up to it.
async fn messages_until_extended(s: &mut tokio::net::TcpStream) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let len = s.read_u32().await.unwrap() as usize;
            if len == 0 {
                continue;
            }
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).await.unwrap();
            let id = body[0];
            out.push((id, body[1..].to_vec()));
            if id == 20 {
                return;
            }
        }
    })
    .await
    .expect("the extension handshake in time");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_message_to_dht_peers_and_their_nodes_kept_for_the_next_start() {
    crate::support::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let resume = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("f.bin"), 100_000, 3);
    let meta = trackerless(&dir.path().join("f.bin"), false);
    // No bootstrap node: the port message does not need a working DHT.
    let s = session_with(SessionConfig {
        resume_dir: Some(resume.path().to_path_buf()),
        ..session_config(&[])
    })
    .await;
    let h = s.add(meta.clone(), add_opts(dir.path())).await.unwrap();
    wait_complete(&h, 30).await;
    let port = s.dht_stats().await.unwrap().port;

    let (reserved, mut peer) = raw_peer(s.listen_addr(), meta.info_hash, true).await;
    assert_eq!(reserved[7] & 0x01, 0x01, "our handshake offers the DHT");
    let msgs = messages_until_extended(&mut peer).await;
    assert!(
        msgs.contains(&(9, port.to_be_bytes().to_vec())),
        "no port message: {msgs:?}"
    );
    // The peer tells us its own DHT port (4242), then says it is interested: the unchoke that answers
    // shows both were read, in order.
    peer.write_all(&[0, 0, 0, 3, 9, 0x10, 0x92, 0, 0, 0, 1, 2])
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let len = peer.read_u32().await.unwrap() as usize;
            let mut body = vec![0u8; len];
            peer.read_exact(&mut body).await.unwrap();
            if body.first() == Some(&1) {
                return;
            }
        }
    })
    .await
    .expect("an unchoke in time");

    // A peer without the DHT bit gets no port message.
    let (_, mut plain) = raw_peer(s.listen_addr(), meta.info_hash, false).await;
    let msgs = messages_until_extended(&mut plain).await;
    assert!(msgs.iter().all(|(id, _)| *id != 9), "{msgs:?}");

    // The node it named is saved with the routing table.
    s.shutdown(Duration::from_secs(5)).await;
    let saved = std::fs::read_to_string(resume.path().join("dht.nodes")).unwrap();
    assert!(saved.lines().any(|l| l == "127.0.0.1:4242"), "{saved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_udp_to_our_dht_port_does_not_stop_the_node() {
    crate::support::init_logs();
    let net = tokio::task::spawn_blocking(|| testnet(4)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("a.bin"), 100_000, 4);
    write_random(&dir.path().join("b.bin"), 100_000, 5);
    let a = trackerless(&dir.path().join("a.bin"), false);
    let b = trackerless(&dir.path().join("b.bin"), false);
    let s = session_with(session_config(&net.bootstrap)).await;
    let h = s.add(a.clone(), add_opts(dir.path())).await.unwrap();
    wait_complete(&h, 30).await;
    let port = s.dht_stats().await.unwrap().port;

    // Random datagrams of every size, broken bencode, and KRPC messages with wrong fields.
    let junk = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let krpc: [&[u8]; 9] = [
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        b"d1:ad2:id3:abc9:info_hash3:xyze1:q9:get_peers1:t2:aa1:y1:qe",
        b"d1:rd2:id20:abcdefghij01234567895:nodes7:garbagee1:t2:zz1:y1:re",
        b"d1:rd2:id20:abcdefghij01234567896:valuesli1ei2eee1:t2:\x00\x011:y1:re",
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti-1e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
        b"d1:y1:q1:q9:find_node1:t99999:",
        b"i99999999999999999999999999e",
        b"l",
    ];
    // The KRPC messages above mutated (the .torrent fuzz test's mutator), then random bytes.
    let seeds: Vec<Vec<u8>> = krpc.iter().map(|m| m.to_vec()).collect();
    let mut packets = seeds.clone();
    let mutants = std::sync::Mutex::new(Vec::new());
    crate::metainfo_fuzz::mutation_run(&seeds, 1_500, 5, |m| {
        mutants.lock().unwrap().push(m.to_vec());
        true
    });
    packets.extend(mutants.into_inner().unwrap());
    packets.extend((0..500usize).map(|i| random_bytes(i * 3 % 1_500, i as u64)));
    for pkt in &packets {
        let _ = junk.send_to(pkt, to).await;
    }
    eprintln!("{} junk datagrams sent", packets.len());

    // The node still answers the session and still announces: a torrent added now is found.
    assert!(s.dht_stats().await.is_some());
    s.add(b.clone(), add_opts(dir.path())).await.unwrap();
    let me = s.listen_addr();
    wait_until_async(
        "the torrent added after the junk on the DHT",
        Duration::from_secs(30),
        || async { testnet_lookup(&net, b.info_hash).await.contains(&me) },
    )
    .await;
    s.shutdown(Duration::from_secs(5)).await;
}

/// The DHT switched off while the session runs (the RPC's `dht-enabled`): no lookups and no
/// statistics, and the torrents' announces fail; switched on again, they announce at once, not when
/// their backed-off timers (a minute here) would have. A session that started without a node has
/// none to switch on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dht_switched_off_and_on_again_announces_at_once() {
    crate::support::init_logs();
    let net = tokio::task::spawn_blocking(|| testnet(5)).await.unwrap();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("show.bin"), 256 * 1024, 72);
    // A tracker that only notes it was asked: its task starts with the DHT task, so once it is
    // asked, the DHT task has tried its first announce (and failed: the node is off).
    let tracker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/announce", tracker.local_addr().unwrap());
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = asked.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = tracker.accept().await {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let opts = CreateOptions {
        piece_length: Some(64 * 1024),
        trackers: vec![url],
        ..Default::default()
    };
    let meta = create_torrent(&src.path().join("show.bin"), &opts, &|_, _| {}).unwrap();
    let slow_retry = btorrent::engine::DhtConfig {
        retry: Duration::from_secs(60),
        ..crate::support::dht::dht_config(&net.bootstrap)
    };
    let seeder = session_with(SessionConfig {
        dht: Some(slow_retry),
        ..Default::default()
    })
    .await;
    assert!(seeder.dht_on());
    assert!(seeder.set_dht(false).await.unwrap());
    assert!(!seeder.dht_on());
    assert!(seeder.dht_stats().await.is_none());
    assert!(seeder.dht_peers(meta.info_hash).is_none());
    // Added while the node is off: its first announce fails, the next try is a minute away.
    let seeding = seeder
        .add(meta.clone(), add_opts(src.path()))
        .await
        .unwrap();
    wait_complete(&seeding, 30).await;
    crate::support::wait_until(
        "the torrent's announces to start",
        Duration::from_secs(30),
        || asked.load(std::sync::atomic::Ordering::Relaxed),
    )
    .await;

    let switched = Instant::now();
    assert!(seeder.set_dht(true).await.unwrap());
    assert!(seeder.dht_on() && seeder.dht_stats().await.is_some());
    let finder = session_with(session_config(&net.bootstrap)).await;
    session_finds(
        &finder,
        meta.info_hash,
        seeder.listen_addr(),
        Duration::from_secs(40),
    )
    .await;
    assert!(
        switched.elapsed() < Duration::from_secs(55),
        "found only after {:?}: the announce waited for its timer",
        switched.elapsed()
    );

    let without = session_with(SessionConfig::default()).await;
    assert!(
        !without.set_dht(true).await.unwrap(),
        "no node to switch on"
    );
    assert!(without.set_dht(false).await.unwrap());
    for s in [finder, without, seeder] {
        s.shutdown(Duration::from_secs(5)).await;
    }
}
