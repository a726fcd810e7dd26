//! Peers that find each other only through btorrent's tracker, and a tracker that restarts (losing
//! every swarm) in the middle of a transfer: the transfer goes on, and a peer that arrives after the
//! restart still finds the others once they re-announce; a running torrent's trackers changed;
//! the session's default trackers; a partial seed (BEP 21) told apart from the downloaders.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::tracker::TestTracker;
use crate::support::*;
use btorrent::engine::{AddOptions, SessionConfig};
use btorrent::tracker::TrackerConfig;

/// Announces every 10 s (at most every 5 s): peers find a restarted tracker again quickly.
async fn start_tracker(bind: SocketAddr) -> TestTracker {
    let cfg = TrackerConfig {
        interval: Duration::from_secs(10),
        min_interval: Duration::from_secs(5),
        ..Default::default()
    };
    TestTracker::start_on(bind, cfg).await
}

fn via_tracker(dir: &std::path::Path) -> AddOptions {
    AddOptions {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

/// A session of its own running `meta` from (or into) `dir`, finding peers through the torrent's
/// trackers alone.
async fn through_the_tracker(
    meta: &btorrent::Metainfo,
    dir: &std::path::Path,
) -> (btorrent::engine::Session, btorrent::engine::TorrentHandle) {
    let s = session().await;
    let h = s.add(meta.clone(), via_tracker(dir)).await.unwrap();
    (s, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracker_restart_mid_transfer_and_the_swarm_carries_on() {
    init_logs();
    let tracker = start_tracker("127.0.0.1:0".parse().unwrap()).await;
    let addr = tracker.addr;
    let src = tempfile::tempdir().unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_random(&src.path().join("d.bin"), 6 * 1024 * 1024, 21);
    let meta = torrent(
        &src.path().join("d.bin"),
        32 * 1024,
        vec![format!("http://{addr}/announce")],
    );
    let seeder = session_with(SessionConfig {
        upload_limit: Some(2 << 20),
        ..Default::default()
    })
    .await;
    let s = seeder
        .add(meta.clone(), via_tracker(src.path()))
        .await
        .unwrap();
    wait_complete(&s, 30).await;
    let (_first, l1) = through_the_tracker(&meta, d1.path()).await;
    let total = meta.info.piece_count();
    wait_until("a fifth of the pieces", Duration::from_secs(30), || {
        l1.stats().pieces_have >= total / 5
    })
    .await;

    // The tracker goes away (with every swarm it knew) and comes back empty on the same port.
    tracker.stop().await;
    assert!(
        l1.stats().pieces_have < total,
        "finished before the restart"
    );
    let again = start_tracker(addr).await;
    assert_eq!(again.addr, addr);

    wait_complete(&l1, 60).await;
    assert_same_tree(src.path(), d1.path());

    // A newcomer knows only the tracker; the others re-announce to the new one and meet it.
    let (_second, l2) = through_the_tracker(&meta, d2.path()).await;
    wait_complete(&l2, 90).await;
    assert_same_tree(src.path(), d2.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_on_other_addresses_of_the_host_meet_through_the_tracker() {
    // A host with several addresses: each peer listens on one of them and must announce from it,
    // or the tracker hands out an address where nobody listens.
    let tracker = start_tracker("127.0.0.1:0".parse().unwrap()).await;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 1 << 20, 22);
    let meta = torrent(
        &src.path().join("d.bin"),
        32 * 1024,
        vec![format!("http://{}/announce", tracker.addr)],
    );
    let on = |ip: &str| SessionConfig {
        listen: format!("{ip}:0").parse().unwrap(),
        ..Default::default()
    };
    let seeder = session_with(on("127.0.0.3")).await;
    let s = seeder
        .add(meta.clone(), via_tracker(src.path()))
        .await
        .unwrap();
    wait_complete(&s, 30).await;
    let leecher = session_with(on("127.0.0.4")).await;
    let l = leecher
        .add(meta.clone(), via_tracker(dst.path()))
        .await
        .unwrap();
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
}

/// `set_trackers` on a running torrent: a tracker added announces `started` at once, one kept goes
/// on as it was (no second `started`), one taken off and put back starts again; a paused torrent
/// announces to its new list when resumed; a list with something not shaped like a URL is refused,
/// changing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trackers_changed_while_running_announce_from_then_on() {
    use crate::support::tracker::http_double;
    let reply = |_: &str| (200, b"d8:intervali1800e5:peers0:e".to_vec());
    let (a, seen_a) = http_double(reply).await;
    let (b, seen_b) = http_double(reply).await;
    let (c, seen_c) = http_double(reply).await;
    let (a, b, c) = (
        format!("{a}/announce"),
        format!("{b}/announce"),
        format!("{c}/announce"),
    );
    let started = |seen: &std::sync::Arc<std::sync::Mutex<Vec<String>>>| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("event=started"))
            .count()
    };
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("t.bin"), 50_000, 61);
    let meta = torrent(&dir.path().join("t.bin"), 16 * 1024, vec![a.clone()]);
    let s = session().await;
    let h = add_announcing(&s, meta, dir.path(), &a).await;
    let secs = Duration::from_secs(20);
    wait_until("a's started", secs, || started(&seen_a) == 1).await;

    h.set_trackers(vec![b.clone(), a.clone()]).unwrap();
    wait_until("b's started", secs, || started(&seen_b) == 1).await;
    assert_eq!(started(&seen_a), 1, "a kept its task");
    assert_eq!(h.trackers(), [b.clone(), a.clone()]);

    h.set_trackers(vec![b.clone()]).unwrap();
    h.set_trackers(vec![b.clone(), a.clone(), b.clone()])
        .unwrap();
    wait_until("a's second started", secs, || started(&seen_a) == 2).await;
    assert_eq!(started(&seen_b), 1, "b kept its task");
    let listed: Vec<String> = h.tracker_status().into_iter().map(|(u, _)| u).collect();
    assert_eq!(listed, [b.clone(), a.clone()]);

    let bad = h.set_trackers(vec![c.clone(), "not a url".into()]);
    assert!(
        matches!(bad, Err(btorrent::engine::EngineError::BadTracker { .. })),
        "{bad:?}"
    );
    assert_eq!(h.trackers(), [b.clone(), a.clone()]);

    h.pause();
    h.set_trackers(vec![c.clone()]).unwrap();
    assert_eq!(started(&seen_c), 0, "a paused torrent announces nothing");
    h.resume();
    wait_until("c's started on resume", secs, || started(&seen_c) == 1).await;
    s.shutdown(Duration::from_secs(2)).await;
}

/// The session's default trackers: a public torrent announces to them besides its own (they show
/// in its tracker status, not among its trackers), a private one never; changed while running,
/// a new one is announced to at once and one taken off is dropped; a list with something not
/// shaped like a URL is refused, changing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_torrents_announce_to_the_default_trackers_too() {
    use crate::support::tracker::http_double;
    let reply = |_: &str| (200, b"d8:intervali1800e5:peers0:e".to_vec());
    let (own, seen_own) = http_double(reply).await;
    let (d1, seen_d1) = http_double(reply).await;
    let (d2, seen_d2) = http_double(reply).await;
    let (own, d1, d2) = (
        format!("{own}/announce"),
        format!("{d1}/announce"),
        format!("{d2}/announce"),
    );
    let started = |seen: &std::sync::Arc<std::sync::Mutex<Vec<String>>>, ih: &str| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("event=started") && l.contains(ih))
            .count()
    };
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("pub.bin"), 50_000, 62);
    write_random(&dir.path().join("priv.bin"), 50_000, 63);
    let public = torrent(&dir.path().join("pub.bin"), 16 * 1024, vec![own.clone()]);
    let private = btorrent::metainfo::create_torrent(
        &dir.path().join("priv.bin"),
        &btorrent::metainfo::CreateOptions {
            piece_length: Some(16 * 1024),
            trackers: vec![own.clone()],
            private: true,
            ..Default::default()
        },
        &|_, _| {},
    )
    .unwrap();
    let pct = |ih: btorrent::InfoHash| btorrent::announce::encode(&ih.0);
    let (pub_ih, priv_ih) = (pct(public.info_hash), pct(private.info_hash));
    let s = session_with(SessionConfig {
        default_trackers: vec![vec![d1.clone()], vec![own.clone()]],
        ..Default::default()
    })
    .await;
    let from_torrent = AddOptions {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let hp = s.add(public, from_torrent.clone()).await.unwrap();
    let hx = s.add(private, from_torrent).await.unwrap();
    let secs = Duration::from_secs(20);
    wait_until("the announces", secs, || {
        started(&seen_own, &pub_ih) == 1
            && started(&seen_own, &priv_ih) == 1
            && started(&seen_d1, &pub_ih) == 1
    })
    .await;
    assert_eq!(hp.trackers(), [own.as_str()], "the default is not its own");
    let listed = |h: &btorrent::engine::TorrentHandle| -> Vec<String> {
        h.tracker_status().into_iter().map(|(u, _)| u).collect()
    };
    assert_eq!(listed(&hp), [own.clone(), d1.clone()]);
    assert_eq!(listed(&hx), [own.as_str()]);

    s.set_default_trackers(vec![vec![d2.clone()]]).unwrap();
    wait_until("d2's started", secs, || started(&seen_d2, &pub_ih) == 1).await;
    assert_eq!(listed(&hp), [own.clone(), d2.clone()]);
    assert_eq!(s.default_trackers(), [vec![d2.clone()]]);
    let bad = s.set_default_trackers(vec![vec!["not a url".into()]]);
    assert!(
        matches!(bad, Err(btorrent::engine::EngineError::BadTracker { .. })),
        "{bad:?}"
    );
    assert_eq!(s.default_trackers(), [vec![d2.clone()]]);
    // Nothing for the private torrent, and one task per tracker.
    assert_eq!(started(&seen_d1, &priv_ih) + started(&seen_d2, &priv_ih), 0);
    assert_eq!(started(&seen_own, &pub_ih), 1);
    s.shutdown(Duration::from_secs(2)).await;
}

/// A connection says where its address came from: the leecher dialed an address the tracker gave
/// (`Tracker`), and the seed, dialed, says `Incoming`. (A slow download: the connection is looked
/// at while it lasts.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_says_where_its_address_came_from() {
    use btorrent::engine::known::Source;
    let tracker = start_tracker("127.0.0.1:0".parse().unwrap()).await;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 512 << 10, 23);
    let meta = torrent(
        &src.path().join("d.bin"),
        32 * 1024,
        vec![format!("http://{}/announce", tracker.addr)],
    );
    let seeder = session().await;
    let s = seeder
        .add(meta.clone(), via_tracker(src.path()))
        .await
        .unwrap();
    wait_complete(&s, 30).await;
    let slow = SessionConfig {
        download_limit: Some(256 << 10),
        ..Default::default()
    };
    let leecher = session_with(slow).await;
    let l = leecher
        .add(meta.clone(), via_tracker(dst.path()))
        .await
        .unwrap();
    let one = |h: &btorrent::engine::TorrentHandle| h.peers().len() == 1;
    wait_until(
        "both ends list the connection",
        Duration::from_secs(30),
        || one(&s) && one(&l),
    )
    .await;
    let (seed_end, leech_end) = (&s.peers()[0], &l.peers()[0]);
    // Whoever dialed got the address from the tracker; the other end was dialed.
    for (dialer, dialed) in [(leech_end, seed_end), (seed_end, leech_end)] {
        if dialer.outgoing {
            assert_eq!(dialer.source, Source::Tracker, "{dialer:?}");
            assert_eq!(dialed.source, Source::Incoming, "{dialed:?}");
        }
    }
    assert!(leech_end.outgoing || seed_end.outgoing);
    wait_complete(&l, 60).await;
}

/// BEP 21: a torrent done with the files it wants, another skipped, is a partial seed. Its regular
/// announces say `paused`, and btorrent's tracker counts it among the leechers but not the
/// downloaders, in its announce replies (which the torrent's tracker status shows) and in scrapes.
/// Wanting the skipped file again, it downloads, then seeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_seed_is_a_leecher_but_not_a_downloader() {
    use btorrent::engine::FilePriority;
    let tracker = start_tracker("127.0.0.1:0".parse().unwrap()).await;
    let url = format!("http://{}/announce", tracker.addr);
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    // Whole pieces each: skipping b leaves no piece of it wanted.
    write_random(&src.path().join("pack/a.bin"), 256 * 1024, 31);
    write_random(&src.path().join("pack/b.bin"), 256 * 1024, 32);
    let meta = torrent(&src.path().join("pack"), 32 * 1024, vec![url.clone()]);
    let (seeder, s) = through_the_tracker(&meta, src.path()).await;
    wait_complete(&s, 30).await;
    let leecher = session().await;
    let opts = AddOptions {
        files: Some(vec![FilePriority::Normal, FilePriority::Skip]),
        ..via_tracker(dst.path())
    };
    let l = leecher.add(meta.clone(), opts).await.unwrap();
    wait_until("a.bin", Duration::from_secs(30), || {
        let st = l.stats();
        st.bytes_left == 0 && st.pieces_have > 0
    })
    .await;
    assert!(!dst.path().join("pack/b.bin").exists());
    // The next regular announce (due at once, or when the tracker's `min interval` allows).
    l.reannounce();
    let counts = |h: &btorrent::engine::TorrentHandle| {
        let st = h.tracker_status().pop().unwrap().1;
        (st.seeders, st.leechers, st.downloaders)
    };
    wait_until(
        "the tracker to count a partial seed",
        Duration::from_secs(30),
        || counts(&l) == (Some(1), Some(1), Some(0)),
    )
    .await;
    let client = btorrent::announce::TrackerClient::new();
    let scraped = client.scrape(&url, &[meta.info_hash]).await.unwrap();
    let st = scraped[&meta.info_hash];
    assert_eq!(
        (st.complete, st.incomplete, st.downloaders),
        (1, 1, Some(0)),
        "{st:?}"
    );

    // Wanting b again, it downloads it and seeds.
    l.set_file_priorities(&[(1, FilePriority::Normal)]).unwrap();
    wait_complete(&l, 30).await;
    assert_same_tree(src.path(), dst.path());
    l.reannounce();
    wait_until(
        "the tracker to count two seeds",
        Duration::from_secs(30),
        || counts(&l) == (Some(2), Some(0), Some(0)),
    )
    .await;
    leecher.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}

/// A hybrid torrent dials each peer in the swarm it was heard of in: a peer the tracker lists only
/// under the torrent's v2 info-hash (as a v2 client fetching the metadata from a `btmh` link is) is
/// dialed with that hash, the one it answers to; a peer of the v1 swarm with the v1 hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_dials_each_peer_in_the_swarm_it_was_heard_of_in() {
    use crate::support::tracker::announce_request;
    use btorrent::announce::{AnnounceEvent, TrackerClient};
    use btorrent::wire::handshake::read_handshake;

    let tracker = TestTracker::start(TrackerConfig::default()).await;
    let url = tracker.announce_url();
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("h/a.bin"), 40_000, 91);
    let opts = btorrent::metainfo::CreateOptions {
        piece_length: Some(16384),
        hybrid: true,
        trackers: vec![url.clone()],
        ..Default::default()
    };
    let meta =
        btorrent::metainfo::create_torrent(&src.path().join("h"), &opts, &|_, _| {}).unwrap();
    let v2 = meta.second_info_hash().unwrap();
    // Two bare peers, each announced in one swarm only.
    let mut listeners = Vec::new();
    for ih in [meta.info_hash, v2] {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let req = announce_request(ih, port, 0, Some(AnnounceEvent::Started));
        TrackerClient::new().announce(&url, &req).await.unwrap();
        listeners.push((ih, l));
    }
    let dst = tempfile::tempdir().unwrap();
    let s = session_with(SessionConfig::default()).await;
    let add = AddOptions {
        data_dir: dst.path().to_path_buf(),
        ..Default::default()
    };
    s.add(meta.clone(), add).await.unwrap();
    for (ih, l) in listeners {
        let (mut sock, _) = tokio::time::timeout(Duration::from_secs(30), l.accept())
            .await
            .expect("dialed within 30 s")
            .unwrap();
        let theirs = read_handshake(&mut sock, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(
            theirs.info_hash, ih,
            "dialed in the swarm it was heard of in"
        );
    }
    s.shutdown(Duration::from_secs(2)).await;
}
