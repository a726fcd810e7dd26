//! Magnet links (BEP 9): the link parsed, the info dictionary served and fetched between two sessions
//! on loopback (from `x.pe` peers, from a tracker), hostile metadata peers, the serving side's limits,
//! a 10,000-file dictionary fetched from one peer (time printed), and `btorrent start 'magnet:...'`
//! one-shot from end to end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use btorrent::bencode::Writer;
use btorrent::engine::metadata::FetchProgress;
use btorrent::engine::Session;
use btorrent::magnet::{Magnet, MagnetError};
use btorrent::metainfo::Metainfo;
use btorrent::wire::extension::{ExtHandshake, OurExt, UT_METADATA_ID};
use btorrent::wire::handshake::{initiate, Handshake};
use btorrent::wire::ut_metadata::{data_for, MetadataMsg};
use btorrent::PeerId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::support::cli::{downloaded, loopback_home, ok, run};
use crate::support::data::write_random;
use crate::support::engine::{init_logs, seeder, session, torrent};
use crate::support::tracker::TestTracker;

fn magnet_for(meta: &Metainfo, peers: &[SocketAddr], trackers: &[String]) -> Magnet {
    let mut link = format!("magnet:?xt=urn:btih:{}&dn=x", meta.info_hash.to_hex());
    for p in peers {
        link.push_str(&format!("&x.pe={p}"));
    }
    for t in trackers {
        link.push_str(&format!("&tr={t}"));
    }
    Magnet::parse(&link).unwrap()
}

/// `meta`, fetched by `s`, added with no tracker and no peer given (the peers the fetch found are
/// its first ones) downloads whole: the same tree as `src`.
async fn downloads_from_the_fetchs_peers(s: &Session, meta: Metainfo, src: &std::path::Path) {
    let dst = tempfile::tempdir().unwrap();
    let h = s
        .add(meta, crate::support::engine::opts(dst.path(), vec![]))
        .await
        .unwrap();
    crate::support::engine::wait_complete(&h, 60).await;
    crate::support::assert_same_tree(src, dst.path());
}

async fn fetch(s: &Session, m: &Magnet, secs: u64) -> btorrent::engine::Result<Metainfo> {
    s.fetch_metadata(
        m,
        None,
        Some(Duration::from_secs(secs)),
        |_: &FetchProgress| {},
        CancellationToken::new(),
    )
    .await
}

#[test]
fn magnet_links_parse_and_bad_ones_say_why() {
    let hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
    let m = Magnet::parse(&format!(
        "magnet:?xt=urn:btih:{}&dn=My+File%21&tr=http%3A%2F%2Ft1%2Fannounce&tr=udp://t2:80\
         &x.pe=127.0.0.1:6881&x.pe=[::1]:51413&x.pe=example.org:1&tr=udp://t2:80&foo=bar",
        hex.to_uppercase()
    ))
    .unwrap();
    assert_eq!(m.info_hash.to_hex(), hex);
    assert_eq!(m.name.as_deref(), Some("My File!"));
    assert_eq!(m.trackers, vec!["http://t1/announce", "udp://t2:80"]);
    assert_eq!(
        m.peers,
        vec!["127.0.0.1:6881", "[::1]:51413", "example.org:1"]
    );
    let b32 = Magnet::parse("magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK").unwrap();
    assert_eq!(b32.info_hash.to_hex(), hex);
    // A v2 `xt` beside the v1 one is skipped.
    let hybrid = format!("magnet:?xt=urn:btmh:1220abcd&xt=urn:btih:{hex}");
    assert_eq!(Magnet::parse(&hybrid).unwrap().info_hash.to_hex(), hex);

    let err = |s: &str| Magnet::parse(s).unwrap_err();
    assert_eq!(err("http://x/"), MagnetError::NotMagnet);
    assert_eq!(err("magnet:?dn=x"), MagnetError::NoInfoHash);
    assert!(matches!(
        err("magnet:?xt=urn:btih:abc"),
        MagnetError::BadInfoHash(_)
    ));
    assert!(matches!(
        err(&format!("magnet:?xt=urn:btih:{}", "g".repeat(40))),
        MagnetError::BadInfoHash(_)
    ));
    assert!(matches!(
        err("magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1"),
        MagnetError::BadInfoHash(_)
    ));
    // A v2 link: `btmh` alone names the swarm by the SHA-256 cut to 20 bytes; beside a `btih`
    // (a hybrid's link) the `btih` names the swarm and the `btmh` is kept to check the dictionary;
    // a `btmh` that is not a whole SHA-256 is refused.
    let full = "ab".repeat(32);
    let v2 = Magnet::parse(&format!("magnet:?xt=urn:btmh:1220{full}")).unwrap();
    assert_eq!(v2.info_hash.to_hex(), "ab".repeat(20));
    assert_eq!(v2.info_hash_v2, Some([0xab; 32]));
    let hybrid = format!("magnet:?xt=urn:btmh:1220{full}&xt=urn:btih:{hex}");
    let hybrid = Magnet::parse(&hybrid).unwrap();
    assert_eq!(
        (hybrid.info_hash.to_hex(), hybrid.info_hash_v2),
        (hex.to_string(), Some([0xab; 32]))
    );
    for bad in [
        "urn:btmh:1220abcd",
        "urn:btmh:1120{full}",
        "urn:btmh:{full}",
    ] {
        let link = format!("magnet:?xt={}", bad.replace("{full}", &full));
        assert!(matches!(err(&link), MagnetError::BadInfoHash(_)), "{link}");
    }
    assert!(matches!(
        err(&format!("magnet:?xt=urn:btih:{hex}&x.pe=nohost")),
        MagnetError::BadPeer(_)
    ));
    assert!(matches!(
        err(&format!("magnet:?xt=urn:btih:{hex}&x.pe=h:0")),
        MagnetError::BadPeer(_)
    ));
    assert!(matches!(
        err(&format!("magnet:?xt=urn:btih:{hex}&dn=%ff")),
        MagnetError::BadEncoding(_)
    ));
    assert_eq!(
        err(&format!("magnet:?xt=urn:btih:{hex}&{}", "a".repeat(70_000))),
        MagnetError::TooLong
    );
    for e in [err("magnet:?"), err("magnet:?xt=urn:btih:\x1b[2J")] {
        let text = e.to_string();
        assert!(!text.contains('\n') && !text.contains('\x1b'), "{text:?}");
    }
}

#[tokio::test]
async fn metadata_crosses_between_two_sessions_from_x_pe_and_from_a_tracker() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let tracker = TestTracker::start(Default::default()).await;
    std::fs::create_dir_all(dir.path().join("share")).unwrap();
    for i in 0..40 {
        write_random(
            &dir.path().join(format!("share/f{i}.bin")),
            5_000 + i,
            i as u64,
        );
    }
    let meta = torrent(
        &dir.path().join("share"),
        16384,
        vec![tracker.announce_url()],
    );
    let s = crate::support::engine::session_with(Default::default()).await;
    let opts = btorrent::engine::AddOptions {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let h = s.add(meta.clone(), opts).await.unwrap();
    crate::support::engine::wait_complete(&h, 30).await;

    let fetcher = session().await;
    let by_peer = fetch(&fetcher, &magnet_for(&meta, &[s.listen_addr()], &[]), 30)
        .await
        .unwrap();
    assert_eq!(by_peer.info_hash, meta.info_hash);
    assert_eq!(by_peer.info_bytes(), meta.info_bytes());

    // The tracker knows the seed once its first announce is in.
    crate::support::wait::wait_until("the seed's announce", Duration::from_secs(30), || {
        tracker.tracker.stats().seeders == 1
    })
    .await;
    let by_tracker = fetch(
        &fetcher,
        &magnet_for(&meta, &[], &[tracker.announce_url()]),
        30,
    )
    .await
    .unwrap();
    assert_eq!(by_tracker.info_bytes(), meta.info_bytes());
    assert_eq!(by_tracker.trackers(), vec![tracker.announce_url()]);

    // A peer source plugged in from outside (what a DHT lookup gives).
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(s.listen_addr()).await.unwrap();
    let m = magnet_for(&meta, &[], &[]);
    let by_channel = fetcher
        .fetch_metadata(
            &m,
            Some(rx),
            Some(Duration::from_secs(30)),
            |_| {},
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(by_channel.info_hash, meta.info_hash);

    // Nobody to ask: a clear error, at once.
    let e = fetch(&fetcher, &m, 30).await.unwrap_err().to_string();
    assert!(e.contains("no peer to fetch the metadata from"), "{e}");
}

/// A v2 torrent's magnet link (`urn:btmh:`): the info dictionary comes from the seed (checked against
/// the SHA-256), then the piece layers it lacks (BEP 52 hash requests, each answer checked against its
/// file's root), and the torrent so made downloads whole. A link whose SHA-256 differs past the 20
/// bytes the swarm is named by gets nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_magnet_brings_the_dictionary_then_the_piece_layers_then_the_data() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    let top = src.path().join("v2share");
    write_random(&top.join("big.bin"), 700 * 16384 - 5, 71);
    write_random(&top.join("mid.bin"), 50_000, 72);
    write_random(&top.join("tiny.txt"), 10, 73);
    let opts = btorrent::metainfo::CreateOptions {
        piece_length: Some(16384),
        v2: true,
        ..Default::default()
    };
    let meta = btorrent::metainfo::create_torrent(&top, &opts, &|_, _| {}).unwrap();
    let (seed, _h) = seeder(&meta, src.path()).await;
    let link = format!("{}&x.pe={}", meta.magnet(), seed.listen_addr());
    let m = Magnet::parse(&link).unwrap();
    assert_eq!(m.info_hash, meta.info_hash);

    let fetcher = session().await;
    let got = fetch(&fetcher, &m, 60).await.unwrap();
    assert_eq!(got.info_bytes(), meta.info_bytes());
    assert_eq!(got.info.v2, meta.info.v2);
    assert!(got.as_bytes().windows(12).any(|w| w == b"piece layers"));

    let dst = tempfile::tempdir().unwrap();
    let h = fetcher
        .add(
            got,
            crate::support::engine::opts(dst.path(), vec![seed.listen_addr()]),
        )
        .await
        .unwrap();
    crate::support::engine::wait_complete(&h, 60).await;
    crate::support::assert_same_tree(src.path(), dst.path());

    let mut wrong = m.clone();
    wrong.info_hash_v2.as_mut().unwrap()[31] ^= 1;
    let e = fetch(&session().await, &wrong, 30)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("not the one the link's btmh names"), "{e}");
}

/// A hybrid torrent is in two swarms: its seed announces to its tracker under both info-hashes, so
/// a link naming only its `btmh` (as a v2 client's would) finds the seed through the tracker, gets
/// the dictionary from it (the seed takes a handshake naming its v2 swarm and answers in kind), and
/// the torrent so made, known by its v1 info-hash, downloads whole from the peer of that fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_is_found_and_fetched_by_its_v2_swarm_alone() {
    init_logs();
    let tracker = TestTracker::start(Default::default()).await;
    let url = tracker.announce_url();
    let src = tempfile::tempdir().unwrap();
    let top = src.path().join("hyshare");
    write_random(&top.join("big.bin"), 100 * 16384 + 3, 81);
    write_random(&top.join("small.bin"), 5000, 82);
    let opts = btorrent::metainfo::CreateOptions {
        piece_length: Some(16384),
        hybrid: true,
        trackers: vec![url.clone()],
        ..Default::default()
    };
    let meta = btorrent::metainfo::create_torrent(&top, &opts, &|_, _| {}).unwrap();
    let seed = crate::support::engine::session_with(Default::default()).await;
    let add = btorrent::engine::AddOptions {
        data_dir: src.path().to_path_buf(),
        ..Default::default()
    };
    let s = seed.add(meta.clone(), add).await.unwrap();
    crate::support::engine::wait_complete(&s, 30).await;
    let v2 = meta.second_info_hash().unwrap();
    let client = btorrent::announce::TrackerClient::new();
    crate::support::wait::wait_until_async(
        "the tracker to count the seed in both swarms",
        Duration::from_secs(30),
        || async {
            let Ok(st) = client.scrape(&url, &[meta.info_hash, v2]).await else {
                return false;
            };
            [meta.info_hash, v2]
                .iter()
                .all(|ih| st.get(ih).is_some_and(|s| s.complete == 1))
        },
    )
    .await;

    let full = hex::encode(meta.info_hash_v2.unwrap());
    let m = Magnet::parse(&format!("magnet:?xt=urn:btmh:1220{full}&tr={url}")).unwrap();
    assert_eq!((m.info_hash, m.info_hash_v2), (v2, meta.info_hash_v2));
    let fetcher = session().await;
    let got = fetch(&fetcher, &m, 60).await.unwrap();
    assert_eq!(got.info_bytes(), meta.info_bytes());
    assert_eq!(got.info_hash, meta.info_hash);
    assert_eq!(
        got.info.merkle(),
        meta.info.merkle(),
        "the seed's piece layers"
    );
    downloads_from_the_fetchs_peers(&fetcher, got, src.path()).await;
    seed.shutdown(Duration::from_secs(2)).await;
}

/// A hybrid fetched by its v1 hash (a `btih` link, as most are) asks the peers that gave the
/// dictionary for its piece layers in its v2 swarm, and has them: its v2 side is checked and its v2
/// peers' hash requests answered. A seed whose .torrent lacked them derives them from its data, and
/// so does a peer that downloaded without them, once complete: both answer as if the layers had
/// come with the torrent. From a peer that has none and cannot derive them (its data is not what
/// the v2 side describes, which it says) a fetch goes on without them, by SHA-1, and downloads all
/// the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_fetched_by_its_v1_hash_asks_for_its_piece_layers() {
    use crate::support::engine::{bare, events_until, hybrid, opts, two_sided_hybrid};
    use btorrent::engine::Event;
    init_logs();
    let src = tempfile::tempdir().unwrap();
    let top = src.path().join("hylayers");
    write_random(&top.join("big.bin"), 100 * 16384 + 3, 83);
    write_random(&top.join("small.bin"), 5000, 84);
    let meta = hybrid(&top, 16384);
    assert!(meta.info.merkle().is_some());
    // The same torrent without its layers (as a btih fetch from peers that have none makes it).
    let unlayered_meta = bare(&meta);
    let derived = |e: &Event| matches!(e, Event::LayersDerived { .. });

    let layered = session().await;
    let h = layered
        .add(meta.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
    crate::support::engine::wait_complete(&h, 30).await;
    let unlayered = session().await;
    let mut events = unlayered.subscribe().unwrap();
    unlayered
        .add(unlayered_meta.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
    let seen = events_until(&mut events, 30, "the seed's derived layers", derived).await;
    let Some(Event::LayersDerived { piece_layers, .. }) = seen.last() else {
        unreachable!()
    };
    let whole = btorrent::metainfo::set_piece_layers(&unlayered_meta, piece_layers).unwrap();
    let whole = Metainfo::from_bytes(&whole).unwrap();
    assert_eq!(
        whole.info.merkle(),
        meta.info.merkle(),
        "the layers it was made with"
    );
    // A peer that downloads the torrent without its layers (from the layered seed: it asks for no
    // hashes while it runs) derives them once complete.
    let dst = tempfile::tempdir().unwrap();
    let leecher = session().await;
    let mut events = leecher.subscribe().unwrap();
    let l = leecher
        .add(
            unlayered_meta.clone(),
            opts(dst.path(), vec![layered.listen_addr()]),
        )
        .await
        .unwrap();
    crate::support::engine::wait_complete(&l, 60).await;
    events_until(&mut events, 30, "the leecher's derived layers", derived).await;

    for (seed, how) in [
        (&layered, "came with it"),
        (&unlayered, "derived by a seed"),
        (&leecher, "derived after a download"),
    ] {
        let m = magnet_for(&meta, &[seed.listen_addr()], &[]);
        assert_eq!(m.info_hash_v2, None);
        let fetcher = session().await;
        let got = fetch(&fetcher, &m, 60).await.unwrap();
        assert_eq!(got.info_bytes(), meta.info_bytes());
        assert_eq!(got.info.merkle(), meta.info.merkle(), "layers that {how}");
        downloads_from_the_fetchs_peers(&fetcher, got, src.path()).await;
        fetcher.shutdown(Duration::from_secs(2)).await;
    }

    // None to be had: the seed's data passes the v1 hashes of a torrent whose v2 side describes
    // other data.
    let other = tempfile::tempdir().unwrap();
    let other_top = other.path().join("hylayers");
    write_random(&other_top.join("big.bin"), 100 * 16384 + 3, 85);
    write_random(&other_top.join("small.bin"), 5000, 86);
    let two_sided = bare(&two_sided_hybrid(&top, &other_top, 16384));
    let mismatched = session().await;
    let mut events = mismatched.subscribe().unwrap();
    mismatched
        .add(two_sided.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
    let seen = events_until(&mut events, 30, "the seed's warning", |e| {
        matches!(e, Event::Warning { .. } | Event::LayersDerived { .. })
    })
    .await;
    match seen.last() {
        Some(Event::Warning { message, .. }) => {
            assert!(message.contains("does not give its v2 root"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let m = magnet_for(&two_sided, &[mismatched.listen_addr()], &[]);
    let fetcher = session().await;
    let got = fetch(&fetcher, &m, 60).await.unwrap();
    assert_eq!(got.info.merkle(), None);
    downloads_from_the_fetchs_peers(&fetcher, got, src.path()).await;
    for s in [fetcher, layered, unlayered, leecher, mismatched] {
        s.shutdown(Duration::from_secs(2)).await;
    }
}

/// A magnet fetched through a tracker that knows nobody yet: the fetch asks it again soon (as soon as
/// the tracker allows, not only at the regular 30 s pace), so a seed announcing a moment later is
/// found well within the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracker_that_knows_no_peer_yet_is_asked_again_soon() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    // A tracker that allows an announce every 2 s (its `min interval` is honoured).
    let tracker = TestTracker::start(btorrent::tracker::TrackerConfig {
        min_interval: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    write_random(&dir.path().join("late.bin"), 40_000, 7);
    let meta = torrent(
        &dir.path().join("late.bin"),
        16384,
        vec![tracker.announce_url()],
    );
    let fetcher = session().await;
    let m = magnet_for(&meta, &[], &[tracker.announce_url()]);
    let fetching = {
        let fetcher = fetcher.clone();
        tokio::spawn(async move { fetch(&fetcher, &m, 25).await })
    };
    // The fetch has announced (and heard of nobody) before the seed exists.
    crate::support::wait::wait_until("the fetch's announce", Duration::from_secs(20), || {
        tracker.tracker.stats().leechers == 1
    })
    .await;
    // A seed that announces to the tracker.
    let seed = crate::support::engine::session_with(Default::default()).await;
    let opts = btorrent::engine::AddOptions {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    seed.add(meta.clone(), opts).await.unwrap();
    let got = fetching.await.unwrap().unwrap();
    assert_eq!(got.info_bytes(), meta.info_bytes());
}

/// `torrent-reannounce` of a magnet still fetching: its trackers are asked again at once, not at
/// the fetch's regular pace (every 30 s while a tracker names peers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_asks_its_trackers_again_when_told_to() {
    init_logs();
    // The one peer the tracker names listens nowhere: the metadata never comes.
    let nowhere: std::net::SocketAddrV4 =
        format!("127.0.0.1:{}", crate::support::process::free_port())
            .parse()
            .unwrap();
    let (base, seen) = crate::support::tracker::http_double_naming(&[nowhere]).await;
    let url = format!("{base}/announce");
    let fetcher = session().await;
    let hash = "5eed00005eed00005eed00005eed00005eed0000";
    let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{hash}&tr={url}")).unwrap();
    let ih = m.info_hash;
    let cancel = CancellationToken::new();
    let fetching = {
        let (fetcher, cancel) = (fetcher.clone(), cancel.clone());
        tokio::spawn(async move {
            let quiet = |_: &FetchProgress| {};
            fetcher.fetch_metadata(&m, None, None, quiet, cancel).await
        })
    };
    let announces = || seen.lock().unwrap().len();
    crate::support::wait::wait_until("the fetch's announce", Duration::from_secs(20), || {
        announces() == 1
    })
    .await;
    assert!(!fetcher.reannounce_fetch(&btorrent::InfoHash([1; 20])));
    assert!(fetcher.reannounce_fetch(&ih));
    crate::support::wait::wait_until(
        "the announce asked for (the next regular one is 30 s away)",
        Duration::from_secs(20),
        || announces() == 2,
    )
    .await;
    cancel.cancel();
    assert!(fetching.await.unwrap().is_err());
    assert!(!fetcher.reannounce_fetch(&ih), "the fetch is over");
}

/// A peer that connects to us for the info-hash of a fetch under way is handed to that fetch (what a
/// LAN peer does on hearing our local announce): the metadata comes from a seed that only dialed
/// us. The peers the metadata came from are then the torrent's first peers: added with no tracker
/// and no peer given, it knows the seed (paused, so it cannot have dialed) and downloads from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_connects_during_a_fetch_gives_the_metadata_and_becomes_a_peer() {
    use crate::support::engine::{opts, wait_complete};
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("dialed.bin"), 300_000, 8);
    let meta = torrent(&dir.path().join("dialed.bin"), 16384, vec![]);
    let (seed, sh) = seeder(&meta, dir.path()).await;
    let fetcher = session().await;
    // No source but a channel kept open: only a peer that connects can bring the metadata.
    let (_keep_open, rx) = tokio::sync::mpsc::channel(1);
    let m = magnet_for(&meta, &[], &[]);
    let t = Some(Duration::from_secs(30));
    let fetching = fetcher.fetch_metadata(&m, Some(rx), t, |_| {}, CancellationToken::new());
    // `join!` polls the fetch first: it is registered with the session before the seed dials.
    let (got, ()) = tokio::join!(fetching, async {
        sh.add_peers(vec![fetcher.listen_addr()])
    });
    let got = got.unwrap();
    assert_eq!(got.info_bytes(), meta.info_bytes());
    assert!(got.trackers().is_empty());

    sh.pause();
    let into = tempfile::tempdir().unwrap();
    let h = fetcher.add(got, opts(into.path(), vec![])).await.unwrap();
    assert_eq!(h.known_peers().0, 1, "the seed the metadata came from");
    sh.resume();
    wait_complete(&h, 30).await;
    drop(seed);
}

/// A metadata fetch is held to what the session allows its peer connections: an address the IP
/// filter blocks is not dialed (the error says so), and a dial takes one of the session's budget of
/// sockets; with none left the address waits, and is dialed once one is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_fetches_keep_to_the_ip_filter_and_the_socket_budget() {
    use crate::support::engine::{opts, seeder_with, session_with, squatters, wait_complete};
    use btorrent::engine::ip_filter::IpFilter;
    use btorrent::engine::SessionConfig;
    use std::sync::atomic::Ordering;
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("a.bin"), 40_000, 1);
    write_random(&dir.path().join("b.bin"), 40_000, 2);
    let a = torrent(&dir.path().join("a.bin"), 16384, vec![]);
    let b = torrent(&dir.path().join("b.bin"), 16384, vec![]);
    let on = |ip: &str, max_connections| SessionConfig {
        listen: format!("{ip}:0").parse().unwrap(),
        max_connections,
        ..Default::default()
    };
    let (seed, _) = seeder_with(on("127.0.0.3", None), &a, dir.path()).await;
    let link = magnet_for(&a, &[seed.listen_addr()], &[]);

    let fetcher = session_with(on("127.0.0.2", Some(1))).await;
    fetcher.set_ip_filter(IpFilter::parse("127.0.0.3\n").filter);
    let e = fetch(&fetcher, &link, 30).await.unwrap_err().to_string();
    assert!(
        e.contains("127.0.0.3") && e.contains("blocked by the IP filter"),
        "{e}"
    );
    fetcher.set_ip_filter(IpFilter::default());

    // The budget's one socket is held by a peer of a torrent the fetcher seeds.
    let held_torrent = fetcher
        .add(b.clone(), opts(dir.path(), vec![]))
        .await
        .unwrap();
    wait_complete(&held_torrent, 30).await;
    let held = squatters(
        &b,
        fetcher.listen_addr(),
        &["127.0.0.5".parse().unwrap()],
        1,
    )
    .await;
    assert_eq!(held.load(Ordering::SeqCst), 1);
    let seen = Arc::new(parking_lot::Mutex::new(FetchProgress::default()));
    let fetching = {
        let (fetcher, link, seen) = (fetcher.clone(), link.clone(), seen.clone());
        tokio::spawn(async move {
            let note = move |p: &FetchProgress| *seen.lock() = *p;
            let timeout = Some(Duration::from_secs(60));
            let cancel = CancellationToken::new();
            fetcher
                .fetch_metadata(&link, None, timeout, note, cancel)
                .await
        })
    };
    crate::support::wait::wait_until(
        "the fetch to know the seed and wait for a socket",
        Duration::from_secs(30),
        || {
            let p = *seen.lock();
            p.known == 1 && p.connecting == 0
        },
    )
    .await;
    assert_eq!(
        seed.torrents()[0].stats().peers,
        0,
        "the seed was not dialed"
    );
    // The other torrent goes, and its peer's socket with it: the fetch dials and finishes.
    fetcher.remove(&b.info_hash).await.unwrap();
    let got = fetching.await.unwrap().unwrap();
    assert_eq!(got.info_bytes(), a.info_bytes());
}

/// How a hostile metadata peer behaves.
#[derive(Clone, Copy)]
enum Liar {
    /// Sends pieces of a dictionary that does not hash to the info-hash.
    WrongDict,
    /// Announces a metadata_size of 1 GiB.
    Oversize,
    /// Answers requests with messages that do not decode.
    Garbage,
}

async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let n = s.read_u32().await? as usize;
    let mut b = vec![0; n];
    s.read_exact(&mut b).await?;
    Ok(b)
}

async fn send_ext(s: &mut TcpStream, id: u8, payload: &[u8]) {
    let mut b = ((payload.len() + 2) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(&[20, id]);
    b.extend_from_slice(payload);
    let _ = s.write_all(&b).await;
}

async fn liar(meta: &Metainfo, how: Liar) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let ih = meta.info_hash;
    let mut fake = meta.info_bytes().to_vec();
    let n = fake.len();
    fake[n / 2] ^= 0x55;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let fake = fake.clone();
            tokio::spawn(async move {
                let hs = btorrent::wire::handshake::read_handshake(&mut s, Duration::from_secs(5))
                    .await?;
                assert_eq!(hs.info_hash, ih);
                let ours = Handshake::ours(ih, PeerId::generate());
                btorrent::wire::handshake::write_handshake(&mut s, &ours, Duration::from_secs(5))
                    .await?;
                let size = match how {
                    Liar::Oversize => 1 << 30,
                    _ => fake.len() as u64,
                };
                let mut w = Writer::default();
                w.begin_dict()
                    .bytes(b"m")
                    .begin_dict()
                    .key_int(b"ut_metadata", 9)
                    .end();
                w.key_int(b"metadata_size", size).end();
                send_ext(&mut s, 0, &w.buf).await;
                loop {
                    let f = read_frame(&mut s).await?;

                    if f.len() < 2 || f[0] != 20 || f[1] != 9 {
                        continue;
                    }
                    let Ok(MetadataMsg::Request { piece }) = MetadataMsg::parse(&f[2..], None)
                    else {
                        continue;
                    };
                    match how {
                        Liar::Garbage => {
                            send_ext(
                                &mut s,
                                UT_METADATA_ID,
                                b"d8:msg_typei1e5:piecei0e10:total_sizei5eexx",
                            )
                            .await
                        }
                        _ => {
                            send_ext(&mut s, UT_METADATA_ID, &data_for(&fake, piece).unwrap()).await
                        }
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), anyhow::Error>(())
            });
        }
    });
    addr
}

#[tokio::test]
async fn hostile_metadata_peers_are_dropped_and_the_honest_one_delivers() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    // A dictionary of many metadata pieces, so liars and the honest peer share them; the honest peer
    // serves it while it has none of the data.
    let meta = ten_thousand_files();
    assert!(meta.info_bytes().len() > 10 * 16384);
    let honest = session().await;
    let opts = crate::support::engine::opts(dir.path(), vec![]);
    honest.add(meta.clone(), opts).await.unwrap();
    let mut peers = vec![];
    for how in [
        Liar::WrongDict,
        Liar::Oversize,
        Liar::Garbage,
        Liar::WrongDict,
    ] {
        peers.push(liar(&meta, how).await);
    }
    peers.push(honest.listen_addr());
    let fetcher = session().await;
    let logs = crate::support::logs::Logs::default();
    let guard = logs.capture();
    let got = fetch(&fetcher, &magnet_for(&meta, &peers, &[]), 60)
        .await
        .unwrap();
    drop(guard);
    assert_eq!(got.info_bytes(), meta.info_bytes());
    // Each kind of lie is one clear warning line.
    for what in [
        "metadata_size of 0 or over 16 MiB",
        "bad ut_metadata message",
    ] {
        assert_eq!(logs.count(what), 1, "{what}");
    }
    assert!(logs.count("does not match the info-hash") >= 1);

    // Only liars: the fetch ends with why.
    let e = fetch(&fetcher, &magnet_for(&meta, &peers[..3], &[]), 60)
        .await
        .unwrap_err();
    assert!(
        matches!(e, btorrent::engine::EngineError::MetadataNotFound(_)),
        "{e:?}"
    );
    let e = format!("{e:#}");
    assert!(e.contains("no peer gave the metadata"), "{e}");
    // The seeder is still fine and serving.
    assert!(fetch(
        &fetcher,
        &magnet_for(&meta, &[honest.listen_addr()], &[]),
        30
    )
    .await
    .is_ok());
}

/// A magnet's only peer closes the first connection (busy for a moment, a handshake dropped): the
/// fetch dials it again, a couple of seconds later, and gets the metadata, where it used to wait
/// out its whole timeout with nobody left to ask.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_dropped_the_first_dial_is_dialed_again() {
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("d.bin"), 100_000, 61);
    let meta = torrent(&dir.path().join("d.bin"), 16384, vec![]);
    let (seed, _h) = seeder(&meta, dir.path()).await;
    // In front of the seed: the first connection closed at once, the next ones passed through.
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let at = front.local_addr().unwrap();
    let behind = seed.listen_addr();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = front.accept().await {
            if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
                drop(s);
                continue;
            }
            tokio::spawn(async move {
                if let Ok(mut b) = TcpStream::connect(behind).await {
                    let _ = tokio::io::copy_bidirectional(&mut s, &mut b).await;
                }
            });
        }
    });
    let fetcher = session().await;
    let got = fetch(&fetcher, &magnet_for(&meta, &[at], &[]), 60)
        .await
        .unwrap();
    assert_eq!(got.info_bytes(), meta.info_bytes());
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

/// Connects to `addr` as a bare peer that offers ut_metadata; returns the stream and the peer's
/// extension handshake.
async fn bare_peer(addr: SocketAddr, meta: &Metainfo) -> (TcpStream, ExtHandshake) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let ours = Handshake::ours(meta.info_hash, PeerId::generate());
    initiate(&mut s, &ours, Duration::from_secs(5))
        .await
        .unwrap();
    send_ext(&mut s, 0, &ExtHandshake::ours(OurExt::default())).await;
    loop {
        let f = read_frame(&mut s).await.unwrap();
        if f.len() >= 2 && f[0] == 20 && f[1] == 0 {
            return (s, ExtHandshake::parse(&f[2..]).unwrap());
        }
    }
}

/// The next ut_metadata message sent to us (by our id).
async fn next_metadata(s: &mut TcpStream) -> Vec<u8> {
    loop {
        let f = tokio::time::timeout(Duration::from_secs(10), read_frame(s))
            .await
            .expect("an answer")
            .unwrap();
        if f.len() >= 2 && f[0] == 20 && f[1] == UT_METADATA_ID {
            return f[2..].to_vec();
        }
    }
}

#[tokio::test]
async fn the_serving_side_rejects_out_of_range_and_too_many_requests() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.bin");
    write_random(&path, 1 << 20, 3);
    let meta = torrent(&path, 16384, vec![]);
    let (s, _h) = seeder(&meta, dir.path()).await;
    let (mut c, theirs) = bare_peer(s.listen_addr(), &meta).await;
    let size = meta.info_bytes().len() as u64;
    assert_eq!(theirs.metadata_size, Some(size));
    let their_id = theirs.ids.ut_metadata.unwrap();
    assert!(
        theirs.ids.ut_pex.is_some(),
        "a public torrent offers ut_pex"
    );
    let pieces = btorrent::wire::ut_metadata::piece_count(size);
    let req = |piece| MetadataMsg::Request { piece }.encode();
    send_ext(&mut c, their_id, &req(pieces)).await;
    assert_eq!(
        MetadataMsg::parse(&next_metadata(&mut c).await, None).unwrap(),
        MetadataMsg::Reject { piece: pieces }
    );
    let budget = btorrent::engine::ext::metadata_request_budget(size as usize);
    let mut data = 0;
    let mut rejects = 0;
    for _ in 0..budget + 5 {
        send_ext(&mut c, their_id, &req(0)).await;
        match MetadataMsg::parse(&next_metadata(&mut c).await, Some(size)).unwrap() {
            MetadataMsg::Data { data: d, .. } => {
                assert_eq!(d, &meta.info_bytes()[..d.len()]);
                data += 1
            }
            MetadataMsg::Reject { .. } => rejects += 1,
            other => panic!("{other:?}"),
        }
    }
    // The out-of-range request counted too.
    assert_eq!((data, rejects), (budget - 1, 6));
    // Garbage ends the connection, not the seeder.
    send_ext(&mut c, their_id, b"not bencode").await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while read_frame(&mut c).await.is_ok() {}
    })
    .await;
    assert!(closed.is_ok(), "the connection was closed");
    let (_c2, again) = bare_peer(s.listen_addr(), &meta).await;
    assert_eq!(again.metadata_size, Some(size));
}

/// A .torrent of 10,000 files (no data needed: a session serves the dictionary of a torrent it is
/// still downloading).
fn ten_thousand_files() -> Metainfo {
    let mut w = Writer::default();
    w.begin_dict().bytes(b"info").begin_dict();
    w.bytes(b"files").begin_list();
    for i in 0..10_000 {
        w.begin_dict().key_int(b"length", 100_000);
        w.bytes(b"path").begin_list();
        w.bytes(format!("dir{}", i / 100).as_bytes());
        w.bytes(format!("file number {i}.dat").as_bytes()).end();
        w.end();
    }
    w.end();
    w.bytes(b"name").bytes(b"ten thousand");
    let total: u64 = 10_000 * 100_000;
    let plen: u64 = 1 << 20;
    w.key_int(b"piece length", plen);
    let pieces = total.div_ceil(plen) as usize;
    w.bytes(b"pieces").bytes(&vec![0xab; 20 * pieces]);
    w.end().end();
    Metainfo::from_bytes(&w.buf).unwrap()
}

#[tokio::test]
async fn a_ten_thousand_file_dictionary_comes_from_one_peer_quickly() {
    let meta = ten_thousand_files();
    let dir = tempfile::tempdir().unwrap();
    let s = session().await;
    let opts = crate::support::engine::opts(dir.path(), vec![]);
    s.add(meta.clone(), opts).await.unwrap();
    let fetcher = session().await;
    let m = magnet_for(&meta, &[s.listen_addr()], &[]);
    let started = Instant::now();
    let got = fetch(&fetcher, &m, 60).await.unwrap();
    let took = started.elapsed();
    assert_eq!(got.info.files.len(), 10_000);
    println!(
        "metadata of 10,000 files ({} KiB) fetched from one peer on loopback in {:.0} ms",
        meta.info_bytes().len() / 1024,
        took.as_secs_f64() * 1000.0
    );
}

#[test]
fn btorrent_start_takes_a_magnet_link_and_keeps_the_torrent() {
    let root = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data_dir = root.path().join("seed");
    std::fs::create_dir_all(&data_dir).unwrap();
    let content = write_random(&data_dir.join("movie.bin"), 2_000_000, 11);
    let meta = torrent(&data_dir.join("movie.bin"), 65536, vec![]);
    let (seed, _h) = rt.block_on(seeder(&meta, &data_dir));
    let leech = loopback_home(&root.path().join("leech"));
    let link = format!(
        "magnet:?xt=urn:btih:{}&dn=movie.bin&x.pe={}",
        meta.info_hash.to_hex(),
        seed.listen_addr()
    );
    let out = run(&leech, &["start", &link, "-o", "dl"]);
    let stdout = downloaded(&out);
    // Progress is printed when the number of peers answering changes; a fetch this quick may end
    // before a line says one answers, so only the first line and the result are certain.
    assert!(stdout.contains("fetching metadata from "), "{stdout}");
    assert!(stdout.contains("fetched and checked"), "{stdout}");
    assert_eq!(std::fs::read(leech.join("dl/movie.bin")).unwrap(), content);
    let saved = leech.join("torrents/movie.bin.torrent");
    assert_eq!(
        Metainfo::load(&saved).unwrap().info_bytes(),
        meta.info_bytes()
    );
    let cfg = btorrent::config::Config::load(&leech.join("torrents.toml")).unwrap();
    assert_eq!(cfg.torrents.len(), 1);
    assert_eq!(cfg.torrents[0].info_hash, meta.info_hash.to_hex());
    // b-info fetches the metadata first too; a bad link is one clear line.
    let info = ok(&leech, &["info", &link]);
    assert!(
        info.contains(&meta.info_hash.to_hex()) && info.contains("movie.bin"),
        "{info}"
    );
    // Options are checked before any metadata is fetched.
    let dead = format!("magnet:?xt=urn:btih:{}&x.pe=127.0.0.1:1", "ab".repeat(20));
    let bad = run(&leech, &["start", &dead, "--peer", "nowhere"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("not a peer address"),
        "{err}"
    );
    let bad = run(&leech, &["start", "magnet:?xt=urn:btih:zz"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("is not an info-hash (urn:btih:"), "{err}");
    // --stall bounds the wait for the metadata too: a link whose one peer never answers (dialed
    // again and again) gives up after 2 s, not after the 300 s fetches otherwise wait.
    let began = Instant::now();
    let bad = run(&leech, &["start", &dead, "--stall", "2"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("no metadata after 2 s"),
        "{err}"
    );
    assert!(began.elapsed() < Duration::from_secs(30), "{err}");
    drop(Arc::new(()));
}
