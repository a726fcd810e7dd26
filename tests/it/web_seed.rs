//! Web seeds (BEP 19): a torrent whose `url-list` names an HTTP server holding its files downloads
//! from that server with no peer at all: a folder torrent from a folder URL (file names with spaces,
//! a subfolder), a one-file torrent from the file's own URL. A server that sends corrupted bytes
//! costs nothing but time: its pieces fail the hash check, it is dropped, and the peers finish.

use std::sync::atomic::Ordering;

use btorrent::metainfo::{create_torrent, CreateOptions, Metainfo};

use crate::support::engine::{opts, seeder, session, torrent, wait_complete};
use crate::support::web_server::WebServer;
use crate::support::{assert_same_tree, write_random};

fn with_web_seed(path: &std::path::Path, url: &str) -> Metainfo {
    with_web_seed_in(path, url, 16384)
}

fn with_web_seed_in(path: &std::path::Path, url: &str, piece_length: u64) -> Metainfo {
    let o = CreateOptions {
        piece_length: Some(piece_length),
        web_seeds: vec![url.to_string()],
        ..Default::default()
    };
    create_torrent(path, &o, &|_, _| {}).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_downloads_from_its_web_seed_alone() {
    let root = tempfile::tempdir().unwrap();
    write_random(&root.path().join("album/one.bin"), 100_000, 1);
    write_random(&root.path().join("album/two words.bin"), 70_000, 2);
    write_random(&root.path().join("album/sub/three #3.bin"), 50_003, 3);
    write_random(&root.path().join("files/single.bin"), 90_001, 4);
    let web = WebServer::start(root.path().to_path_buf()).await;
    let leecher = session().await;

    // A folder: the URL of the folder that holds it.
    let album = with_web_seed(&root.path().join("album"), &web.url);
    assert_eq!(album.web_seeds, vec![web.url.clone()]);
    let into = tempfile::tempdir().unwrap();
    let h = leecher.add(album, opts(into.path(), vec![])).await.unwrap();
    wait_complete(&h, 30).await;
    assert_same_tree(&root.path().join("album"), &into.path().join("album"));

    // One file: the file's own URL (its name there need not be the torrent's).
    let file_url = format!("{}files/single.bin", web.url);
    let single = with_web_seed(&root.path().join("files/single.bin"), &file_url);
    let into = tempfile::tempdir().unwrap();
    // Answers held back a moment: the torrent counts the web seed sending meanwhile.
    web.served.delay_ms.store(300, Ordering::SeqCst);
    let h = leecher
        .add(single, opts(into.path(), vec![]))
        .await
        .unwrap();
    crate::support::wait::wait_until(
        "the web seed to count as sending",
        std::time::Duration::from_secs(10),
        || h.stats().web_seeds_sending == 1,
    )
    .await;
    let seen = h.web_seeds();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].url, file_url);
    assert!(seen[0].downloading && seen[0].error.is_none(), "{seen:?}");
    web.served.delay_ms.store(0, Ordering::SeqCst);
    wait_complete(&h, 30).await;
    assert_eq!(h.stats().web_seeds_sending, 0);
    // Every byte came from it (the only source), and it is idle now.
    let seen = h.web_seeds();
    assert_eq!(seen[0].downloaded, 90_001, "{seen:?}");
    assert!(!seen[0].downloading && !seen[0].dropped, "{seen:?}");
    assert_eq!(
        std::fs::read(into.path().join("single.bin")).unwrap(),
        std::fs::read(root.path().join("files/single.bin")).unwrap()
    );
    assert!(web.served.requests.load(Ordering::SeqCst) >= 2);
}

// On this thread's runtime, so the engine's warnings are captured here.
#[tokio::test]
async fn a_web_seed_sending_corrupted_bytes_is_dropped_and_the_peers_finish() {
    let logs = crate::support::logs::Logs::default();
    let _capture = logs.capture();
    let root = tempfile::tempdir().unwrap();
    write_random(&root.path().join("data.bin"), 400_000, 5);
    let web = WebServer::start(root.path().to_path_buf()).await;
    web.served.corrupt.store(true, Ordering::SeqCst);
    let meta = with_web_seed(&root.path().join("data.bin"), &web.url);
    let (seed, _sh) = seeder(&meta, root.path()).await;
    let leecher = session().await;
    let into = tempfile::tempdir().unwrap();
    // The web seed runs before the peer is dialed: its first pieces are the bad ones.
    let h = leecher.add(meta, opts(into.path(), vec![])).await.unwrap();
    crate::support::wait::wait_until(
        "the corrupt web seed to be asked",
        std::time::Duration::from_secs(10),
        || web.served.requests.load(Ordering::SeqCst) > 0,
    )
    .await;
    crate::support::wait::wait_until(
        "the corrupt web seed to be dropped",
        std::time::Duration::from_secs(10),
        || logs.count("web seed dropped") == 1,
    )
    .await;
    let seen = h.web_seeds();
    assert!(seen[0].dropped && !seen[0].downloading, "{seen:?}");
    assert!(
        seen[0]
            .error
            .as_deref()
            .unwrap()
            .contains("failed the hash check"),
        "{seen:?}"
    );
    h.add_peers(vec![seed.listen_addr()]);
    wait_complete(&h, 30).await;
    assert_eq!(
        std::fs::read(into.path().join("data.bin")).unwrap(),
        std::fs::read(root.path().join("data.bin")).unwrap()
    );
}

/// A web seed's connection is one of the session's peer sockets: with the only one held by another
/// torrent's peer, the web seed asks nothing; once that peer goes, it downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_seed_waits_for_a_socket_of_the_sessions_budget() {
    use crate::support::engine::{session_with, squatters, torrent};
    use btorrent::engine::SessionConfig;
    let root = tempfile::tempdir().unwrap();
    write_random(&root.path().join("held.bin"), 50_000, 6);
    write_random(&root.path().join("web.bin"), 80_000, 7);
    let web = WebServer::start(root.path().to_path_buf()).await;
    let s = session_with(SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_connections: Some(1),
        ..Default::default()
    })
    .await;
    // Another torrent, seeding; a peer of it holds the session's one socket.
    let held = torrent(&root.path().join("held.bin"), 16384, vec![]);
    let hh = s
        .add(held.clone(), opts(root.path(), vec![]))
        .await
        .unwrap();
    wait_complete(&hh, 30).await;
    let localhost = ["127.0.0.1".parse().unwrap()];
    let open = squatters(&held, s.listen_addr(), &localhost, 1).await;
    assert_eq!(open.load(Ordering::SeqCst), 1);
    assert_eq!(s.connections(), 1);

    let meta = with_web_seed(&root.path().join("web.bin"), &web.url);
    let into = tempfile::tempdir().unwrap();
    let h = s.add(meta, opts(into.path(), vec![])).await.unwrap();
    crate::support::wait::wait_until(
        "the torrent to download",
        std::time::Duration::from_secs(10),
        || h.stats().state == btorrent::engine::TorrentState::Downloading,
    )
    .await;
    // A moment for a web seed that would not wait to ask (it asks at once).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(web.served.requests.load(Ordering::SeqCst), 0);

    // The squatter is let go (the seeding torrent closes its peers when paused): the socket is free.
    hh.pause();
    wait_complete(&h, 30).await;
    assert!(web.served.requests.load(Ordering::SeqCst) > 0);
}

/// A server that answers `Range` requests with other bytes than asked cannot serve pieces: one that
/// sends the whole file (no range support) and one that sends another range are each dropped at
/// their first answer (no retries, no new round), and the peer finishes.
#[tokio::test]
async fn a_web_seed_that_answers_other_ranges_is_dropped_at_once() {
    let logs = crate::support::logs::Logs::default();
    let _capture = logs.capture();
    let root = tempfile::tempdir().unwrap();
    // Larger than a round: no request can be for the whole file (which a server without ranges
    // answers rightly).
    let size = btorrent::engine::web_seed::BATCH_BYTES + 100_000;
    write_random(&root.path().join("whole.bin"), size, 9);
    let meta = torrent(&root.path().join("whole.bin"), 16384, vec![]);
    let (seed, _sh) = seeder(&meta, root.path()).await;
    let leecher = session().await;
    for (flag, why) in [
        ("ignore", "does not answer Range requests"),
        ("shift", "for a request of bytes"),
    ] {
        let web = WebServer::start(root.path().to_path_buf()).await;
        let switch = match flag {
            "ignore" => &web.served.ignore_range,
            _ => &web.served.shift_range,
        };
        switch.store(true, Ordering::SeqCst);
        let meta = with_web_seed(&root.path().join("whole.bin"), &web.url);
        let into = tempfile::tempdir().unwrap();
        let h = leecher.add(meta, opts(into.path(), vec![])).await.unwrap();
        crate::support::wait::wait_until(
            &format!("the web seed ({flag}) to be dropped"),
            std::time::Duration::from_secs(10),
            || logs.count(why) == 1,
        )
        .await;
        let seen = h.web_seeds();
        assert!(seen[0].dropped, "{flag}: {seen:?}");
        assert!(seen[0].error.as_deref().unwrap().contains(why), "{seen:?}");
        h.add_peers(vec![seed.listen_addr()]);
        wait_complete(&h, 30).await;
        // The two rounds asked at once (each one range), and nothing after the first answer.
        let asked = web.served.requests.load(Ordering::SeqCst);
        assert!(
            asked <= btorrent::engine::web_seed::IN_FLIGHT,
            "{flag}: {asked} requests"
        );
        leecher.remove(&h.info_hash()).await.unwrap();
    }
}

/// A server is asked for the next round while the last one's answer is on its way (two requests
/// at once, never more), so a server far away is not idle a round trip between rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_seed_has_two_requests_in_flight() {
    crate::support::engine::init_logs();
    let root = tempfile::tempdir().unwrap();
    // Three rounds' worth (4 MiB each) of 1 MiB pieces: a few ranges a round.
    write_random(&root.path().join("big.bin"), 12 << 20, 10);
    let web = WebServer::start(root.path().to_path_buf()).await;
    // Each answer held back, as a far server's would be.
    web.served.delay_ms.store(200, Ordering::SeqCst);
    let meta = with_web_seed_in(&root.path().join("big.bin"), &web.url, 1 << 20);
    let leecher = session().await;
    let into = tempfile::tempdir().unwrap();
    let h = leecher.add(meta, opts(into.path(), vec![])).await.unwrap();
    wait_complete(&h, 60).await;
    assert_eq!(
        std::fs::read(into.path().join("big.bin")).unwrap(),
        std::fs::read(root.path().join("big.bin")).unwrap()
    );
    assert_eq!(web.served.most_in_flight.load(Ordering::SeqCst), 2);
}

/// A round asks for a run of adjacent pieces in one range request, not a request per piece: a
/// server far away costs a round trip per round, not per piece.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_is_one_range_over_adjacent_pieces() {
    let root = tempfile::tempdir().unwrap();
    // 32 pieces of 64 KiB, half a round (4 MiB).
    write_random(&root.path().join("run.bin"), 2 << 20, 11);
    let web = WebServer::start(root.path().to_path_buf()).await;
    let meta = with_web_seed_in(&root.path().join("run.bin"), &web.url, 64 << 10);
    let leecher = session().await;
    let into = tempfile::tempdir().unwrap();
    let h = leecher.add(meta, opts(into.path(), vec![])).await.unwrap();
    wait_complete(&h, 30).await;
    assert_eq!(
        std::fs::read(into.path().join("run.bin")).unwrap(),
        std::fs::read(root.path().join("run.bin")).unwrap()
    );
    // The first round covers the whole file (one stretch of missing pieces, within a round's
    // 4 MiB); a request per piece would be 32.
    let requests = web.served.requests.load(Ordering::SeqCst);
    assert_eq!(requests, 1, "{requests} range requests for 32 pieces");
}

/// A magnet link's `ws=` names a web seed: the torrent made of the link and its fetched metadata
/// keeps it, and downloads from it with the peer that gave the metadata gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_links_web_seed_serves_the_download() {
    let root = tempfile::tempdir().unwrap();
    write_random(&root.path().join("clip.bin"), 300_000, 12);
    let meta = torrent(&root.path().join("clip.bin"), 16384, vec![]);
    assert!(meta.web_seeds.is_empty());
    let (seed, _h) = seeder(&meta, root.path()).await;
    let web = WebServer::start(root.path().to_path_buf()).await;
    let link = format!(
        "magnet:?xt=urn:btih:{}&x.pe={}&ws={}",
        meta.info_hash.to_hex(),
        seed.listen_addr(),
        web.url
    );
    let magnet = btorrent::magnet::Magnet::parse(&link).unwrap();
    let leecher = session().await;
    let fetched = leecher
        .fetch_metadata(
            &magnet,
            None,
            Some(std::time::Duration::from_secs(30)),
            |_| {},
            tokio_util::sync::CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(fetched.web_seeds, vec![web.url.clone()]);
    assert!(
        fetched.magnet().contains("&ws=http"),
        "{}",
        fetched.magnet()
    );
    seed.shutdown(std::time::Duration::from_secs(2)).await;
    let into = tempfile::tempdir().unwrap();
    let h = leecher
        .add(fetched, opts(into.path(), vec![]))
        .await
        .unwrap();
    wait_complete(&h, 30).await;
    assert_eq!(
        std::fs::read(into.path().join("clip.bin")).unwrap(),
        std::fs::read(root.path().join("clip.bin")).unwrap()
    );
    assert!(web.served.requests.load(Ordering::SeqCst) > 0);
}
