//! btorrent to btorrent over 127.0.0.1: whole swarms of in-process sessions.

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::*;
use btorrent::engine::{Event, SessionConfig, TorrentState};
use btorrent::wire::handshake::{read_handshake, write_handshake, Handshake};
use btorrent::{Metainfo, PeerId};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_one_leecher() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("data.bin"), 5 * 1024 * 1024 + 123, 1);
    let meta = torrent(&src.path().join("data.bin"), 64 * 1024, vec![]);

    let (seeder, _) = seeder(&meta, src.path()).await;
    let (leecher, l) = leecher(&meta, dst.path(), vec![seeder.listen_addr()]).await;
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
    let st = l.stats();
    assert_eq!(st.pieces_have, st.pieces_total);
    assert!(st.downloaded >= meta.info.total_length);
    leecher.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}

fn limited(bytes_per_sec: u64) -> SessionConfig {
    SessionConfig {
        upload_limit: Some(bytes_per_sec),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_seeders_one_leecher_all_contribute() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 6 * 1024 * 1024, 2);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let mut seeders = Vec::new();
    for _ in 0..3 {
        seeders.push(seeder_with(limited(4 << 20), &meta, src.path()).await);
    }
    let addrs: Vec<SocketAddr> = seeders.iter().map(|(s, _)| s.listen_addr()).collect();
    let (_leecher, l) = leecher(&meta, dst.path(), addrs).await;
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
    let total = meta.info.total_length;
    for (s, h) in &seeders {
        let up = h.stats().uploaded;
        assert!(
            up >= total / 20,
            "seeder {} sent only {up} of {total}",
            s.listen_addr()
        );
    }
    // Endgame duplicates only what is still outstanding, one block at a time: at most 2% redundant.
    let sum: u64 = seeders.iter().map(|(_, h)| h.stats().uploaded).sum();
    let received = l.stats().downloaded;
    assert!(
        sum >= total && received <= total + total / 50,
        "seeders sent {sum}, leecher received {received}, of {total}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_five_leechers_trade_among_themselves() {
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 4 * 1024 * 1024, 3);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    // The seeder alone could feed them all only in 10 s: trading is what makes it quick.
    let (seeder, s) = seeder_with(limited(2 << 20), &meta, src.path()).await;
    let mut leechers = Vec::new();
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let (sess, h) = leecher(&meta, dir.path(), vec![seeder.listen_addr()]).await;
        leechers.push((sess, h, dir));
    }
    let addrs: Vec<SocketAddr> = leechers.iter().map(|(s, _, _)| s.listen_addr()).collect();
    for (_, h, _) in &leechers {
        h.add_peers(addrs.clone());
    }
    for (_, h, dir) in &leechers {
        wait_complete(h, 90).await;
        assert_same_tree(src.path(), dir.path());
    }
    let traded: u64 = leechers.iter().map(|(_, h, _)| h.stats().uploaded).sum();
    let from_seed = s.stats().uploaded;
    assert!(
        traded > meta.info.total_length,
        "leechers sent each other only {traded} bytes (seeder sent {from_seed})"
    );
    assert!(from_seed < 5 * meta.info.total_length);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_file_with_odd_sizes_is_byte_identical() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let top = src.path().join("album");
    std::fs::create_dir_all(top.join("empty-dir-sibling")).unwrap();
    std::fs::write(top.join("empty.txt"), b"").unwrap();
    std::fs::write(top.join("empty-dir-sibling/zero"), b"").unwrap();
    let sizes = [1usize, 100, 16383, 16384, 16385, 70_000, 3, 250_001];
    for (i, n) in sizes.iter().enumerate() {
        write_random(
            &top.join(format!("sub{}/f{i}.bin", i % 3)),
            *n,
            10 + i as u64,
        );
    }
    let meta = torrent(&top, 32 * 1024, vec![]);
    assert!(
        !meta.info.total_length.is_multiple_of(32 * 1024),
        "last piece is short"
    );
    let (seeder, _) = seeder(&meta, src.path()).await;
    let (_leecher, l) = leecher(&meta, dst.path(), vec![seeder.listen_addr()]).await;
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
}

/// A fake peer on 127.0.0.1 that claims every piece and does `act` with our requests.
async fn fake_seeder(meta: &Metainfo, act: fake_peer::Act) -> SocketAddr {
    let ip = "127.0.0.1".parse().unwrap();
    fake_peer::fake_peer(meta, Default::default(), ip, act)
        .await
        .addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_peer_is_banned_and_an_honest_one_finishes() {
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 2 * 1024 * 1024, 4);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    corrupt_and_honest_seeders(&meta, src.path()).await;
}

/// A leecher offered `meta` by a peer that sends garbage and by an honest seed of the data in `src`
/// (on another address: bans are by address) finishes byte-identical and bans the corrupt one.
async fn corrupt_and_honest_seeders(meta: &Metainfo, src: &std::path::Path) {
    let dst = tempfile::tempdir().unwrap();
    let bad = fake_seeder(meta, fake_peer::Act::Corrupt).await;
    // Bans are by address: the honest peer has another one.
    let cfg = SessionConfig {
        listen: "127.0.0.2:0".parse().unwrap(),
        ..limited(4 << 20)
    };
    let (honest, _) = seeder_with(cfg, meta, src).await;

    let leecher = session().await;
    let mut events = leecher.subscribe().unwrap();
    let l = leecher
        .add(
            meta.clone(),
            opts(dst.path(), vec![bad, honest.listen_addr()]),
        )
        .await
        .unwrap();
    wait_complete(&l, 60).await;
    assert_same_tree(src, dst.path());
    let seen = events_until(&mut events, 30, "the corrupt peer's ban", |e| {
        matches!(e, Event::PeerBanned { .. })
    })
    .await;
    let Some(Event::PeerBanned { addr, .. }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(*addr, bad, "the corrupt peer was not banned");
}

/// A BitTorrent v2 torrent (BEP 52): odd-sized files, each on a piece boundary, arrive byte-identical,
/// every piece checked against its merkle root; a peer sending garbage is banned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_torrent_arrives_whole_and_a_corrupt_peer_is_banned() {
    let src = tempfile::tempdir().unwrap();
    let top = src.path().join("v2set");
    std::fs::create_dir_all(&top).unwrap();
    std::fs::write(top.join("empty.txt"), b"").unwrap();
    for (i, n) in [1usize, 16383, 16384, 70_000, 250_001, 600_000]
        .iter()
        .enumerate()
    {
        write_random(&top.join(format!("d{}/f{i}", i % 2)), *n, 30 + i as u64);
    }
    let create = btorrent::metainfo::CreateOptions {
        piece_length: Some(32 * 1024),
        v2: true,
        ..Default::default()
    };
    let meta = btorrent::metainfo::create_torrent(&top, &create, &|_, _| {}).unwrap();
    assert!(meta.info.v2.is_some());
    assert!(meta.info.files.iter().any(|f| f.padding));
    corrupt_and_honest_seeders(&meta, src.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeder_vanishes_mid_transfer_and_a_later_one_finishes() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 4 * 1024 * 1024, 5);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    // Slow enough (8 s for the whole) that a busy machine still sees it leave mid-transfer.
    let (first, _) = seeder_with(limited(512 << 10), &meta, src.path()).await;

    let leecher = session().await;
    let mut events = leecher.subscribe().unwrap();
    let l = leecher
        .add(meta.clone(), opts(dst.path(), vec![first.listen_addr()]))
        .await
        .unwrap();
    let total = meta.info.piece_count();
    wait_until("a quarter of the pieces", Duration::from_secs(30), || {
        l.stats().pieces_have >= total / 4
    })
    .await;
    first.shutdown(Duration::from_secs(1)).await;
    wait_until(
        "the seeder's connection to close",
        Duration::from_secs(30),
        || l.stats().peers == 0,
    )
    .await;
    let st = l.stats();
    assert!(st.pieces_have < total, "finished before the seeder left");

    let second = session().await;
    second
        .add(meta.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
    l.add_peers(vec![second.listen_addr()]);
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
    events_until(&mut events, 30, "the completed event", |e| {
        matches!(e, Event::Completed { .. })
    })
    .await;
    assert_eq!(l.stats().state, TorrentState::Seeding);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_without_fetching_again() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let resume = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 4 * 1024 * 1024, 6);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let (seeder, s) = seeder_with(limited(1 << 20), &meta, src.path()).await;
    let cfg = || SessionConfig {
        resume_dir: Some(resume.path().to_path_buf()),
        ..Default::default()
    };
    let first = session_with(cfg()).await;
    let l = first
        .add(meta.clone(), opts(dst.path(), vec![seeder.listen_addr()]))
        .await
        .unwrap();
    let total = meta.info.piece_count();
    wait_until("half the pieces", Duration::from_secs(30), || {
        l.stats().pieces_have >= total / 2
    })
    .await;
    // The seeder stops serving, so the first run cannot finish however late this line runs.
    s.pause();
    first.shutdown(Duration::from_secs(2)).await;
    let had = l.stats().bytes_verified;
    assert!(
        had < meta.info.total_length,
        "the first run finished; nothing left to resume"
    );
    s.resume();

    let second = session_with(cfg()).await;
    let mut events = second.subscribe().unwrap();
    let l2 = second
        .add(meta.clone(), opts(dst.path(), vec![seeder.listen_addr()]))
        .await
        .unwrap();
    wait_complete(&l2, 60).await;
    assert_same_tree(src.path(), dst.path());
    let fetched = l2.stats().downloaded;
    let missing = meta.info.total_length - had;
    assert!(
        fetched <= missing + missing / 10 + 512 * 1024,
        "fetched {fetched} bytes again, only {missing} were missing"
    );
    events_until(&mut events, 30, "the completed event", |e| {
        matches!(e, Event::Completed { .. })
    })
    .await;

    // Complete data: a third start seeds at once and never claims a download completed.
    second.shutdown(Duration::from_secs(2)).await;
    let third = session_with(cfg()).await;
    let mut events = third.subscribe().unwrap();
    let l3 = third
        .add(meta.clone(), opts(dst.path(), vec![]))
        .await
        .unwrap();
    wait_complete(&l3, 10).await;
    // The engine announces completion before seeding: everything up to seeding shows no completion.
    let kinds = events_until(&mut events, 30, "the seeding event", |e| {
        matches!(e, Event::Seeding { .. })
    })
    .await;
    assert!(!kinds.iter().any(|e| matches!(e, Event::Completed { .. })));
    assert_eq!(l3.stats().downloaded, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_fetches_a_bitfield_and_one_verified_piece() {
    use btorrent::engine::probe::{download_piece, fetch_bitfield};
    let src = tempfile::tempdir().unwrap();
    let data = write_random(&src.path().join("d.bin"), 300_000, 8);
    let meta = torrent(&src.path().join("d.bin"), 64 * 1024, vec![]);
    // Not super-seeding: it shows every piece (a super-seed offers a prober one or two).
    let cfg = SessionConfig {
        super_seed: Some(false),
        ..Default::default()
    };
    let (seeder, _) = seeder_with(cfg, &meta, src.path()).await;
    let addr = seeder.listen_addr();
    let bf = fetch_bitfield(addr, &meta, PeerId::generate())
        .await
        .unwrap();
    assert!(bf.is_full() && bf.len() == 5);
    let last = download_piece(addr, &meta, 4, PeerId::generate())
        .await
        .unwrap();
    assert_eq!(last, &data[4 * 65536..]);
    let first = download_piece(addr, &meta, 0, PeerId::generate())
        .await
        .unwrap();
    assert_eq!(first, &data[..65536]);
    let err = download_piece(addr, &meta, 5, PeerId::generate())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    // A peer with nothing: an empty bitfield, and a clear refusal for a piece.
    let empty_dir = tempfile::tempdir().unwrap();
    let (leecher, lh) = leecher(&meta, empty_dir.path(), vec![]).await;
    wait_until("the leecher's data check", Duration::from_secs(30), || {
        lh.stats().state == TorrentState::Downloading
    })
    .await;
    let bf = fetch_bitfield(leecher.listen_addr(), &meta, PeerId::generate())
        .await
        .unwrap();
    assert!(bf.none());
    assert!(
        download_piece(leecher.listen_addr(), &meta, 0, PeerId::generate())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_move_keep_seeding_from_the_new_place() {
    let src = tempfile::tempdir().unwrap();
    let moved = tempfile::tempdir().unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_random(&src.path().join("top/a.bin"), 700_000, 9);
    write_random(&src.path().join("top/sub/b.bin"), 123_456, 10);
    let meta = torrent(&src.path().join("top"), 32 * 1024, vec![]);
    let original = tempfile::tempdir().unwrap();
    copy_tree(src.path(), original.path());

    let (seeder, s) = seeder(&meta, src.path()).await;
    s.pause();
    assert_eq!(s.stats().state, TorrentState::Paused);
    let (_leecher, l) = leecher(&meta, d1.path(), vec![seeder.listen_addr()]).await;
    let refused =
        btorrent::engine::probe::fetch_bitfield(seeder.listen_addr(), &meta, PeerId::generate())
            .await;
    assert!(refused.is_err(), "a paused torrent serves nobody");
    assert_eq!(l.stats().pieces_have, 0, "a paused torrent serves nobody");
    s.resume();
    l.add_peers(vec![seeder.listen_addr()]);
    wait_complete(&l, 60).await;
    assert_same_tree(original.path(), d1.path());

    s.move_to(moved.path().to_path_buf()).await.unwrap();
    assert!(!src.path().join("top").exists());
    assert_eq!(s.stats().data_dir, moved.path());
    assert_same_tree(original.path(), moved.path());
    let (_other, o) = leecher(&meta, d2.path(), vec![seeder.listen_addr()]).await;
    wait_complete(&o, 60).await;
    assert_same_tree(original.path(), d2.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listens_and_dials_from_the_chosen_address() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 400_000, 11);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let on = |ip: [u8; 4], upload_limit| SessionConfig {
        listen: SocketAddr::from((ip, 0)),
        upload_limit,
        ..Default::default()
    };
    // Slow enough that the connection is still up when we look at it.
    let (seeder, s) = seeder_with(on([127, 0, 0, 2], Some(100_000)), &meta, src.path()).await;
    assert_eq!(seeder.listen_addr().ip().to_string(), "127.0.0.2");
    let peers = vec![seeder.listen_addr()];
    let (_leecher, l) = leecher_with(on([127, 0, 0, 3], None), &meta, dst.path(), peers).await;
    // Each side lists the other once its handshakes are through, not necessarily at the same moment.
    let (mut seen, mut theirs) = (None, None);
    wait_until(
        "both sides to list the connection",
        Duration::from_secs(30),
        || {
            seen = seen
                .take()
                .or_else(|| s.peers().first().map(|p| p.addr.ip().to_string()));
            theirs = theirs.take().or_else(|| {
                l.peers()
                    .into_iter()
                    .find(|p| p.client.as_deref().is_some_and(|c| !c.is_empty()))
            });
            seen.is_some() && theirs.is_some()
        },
    )
    .await;
    assert_eq!(
        seen.as_deref(),
        Some("127.0.0.3"),
        "dialed from the chosen address"
    );
    let theirs = theirs.unwrap();
    assert_eq!(theirs.addr, seeder.listen_addr());
    assert!(theirs
        .client
        .as_deref()
        .unwrap_or("")
        .starts_with("btorrent"));
    wait_complete(&l, 30).await;
    assert_same_tree(src.path(), dst.path());
}

/// A fake peer that speaks correctly up to the handshake, then sends `hostile`; returns whether our
/// side closed the connection afterwards.
async fn leecher_drops_peer_that_sends(meta: &Metainfo, hostile: Vec<u8>, wait: Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (leecher, l) = leecher(meta, dir.path(), vec![addr]).await;
    let (mut s, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let t = Duration::from_secs(5);
    read_handshake(&mut s, t).await.unwrap();
    let ours = Handshake::ours(meta.info_hash, PeerId::generate());
    write_handshake(&mut s, &ours, t).await.unwrap();
    s.write_all(&hostile).await.unwrap();
    // Our side must hang up: read until EOF (whatever it sent before).
    let mut buf = vec![0u8; 65536];
    let closed = tokio::time::timeout(wait, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false);
    assert_eq!(l.stats().state, TorrentState::Downloading);
    leecher.shutdown(Duration::from_secs(1)).await;
    closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_dropped_cleanly() {
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 100_000, 12);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let msg = |id: u8, body: &[u8]| {
        let mut v = ((body.len() + 1) as u32).to_be_bytes().to_vec();
        v.push(id);
        v.extend_from_slice(body);
        v
    };
    let piece = |index: u32, begin: u32, len: usize| {
        let mut b = index.to_be_bytes().to_vec();
        b.extend(begin.to_be_bytes());
        b.extend(vec![0u8; len]);
        msg(7, &b)
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a piece nobody asked for",
            [msg(5, &[0xf0]), piece(0, 0, 16384)].concat(),
        ),
        ("a 4 GiB length prefix", vec![0xff, 0xff, 0xff, 0xff, 7]),
        ("a bitfield of the wrong length", msg(5, &[0xf0, 0])),
        ("a bitfield with spare bits set", msg(5, &[0xff])),
        ("a have out of range", msg(4, &9u32.to_be_bytes())),
        (
            "a request over 16 KiB",
            msg(6, &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 1]),
        ),
    ];
    // A well-behaved peer (a bitfield, then a keep-alive) stays connected.
    let fine = [msg(5, &[0xe0]), vec![0, 0, 0, 0]].concat();
    let secs = Duration::from_secs(2);
    assert!(!leecher_drops_peer_that_sends(&meta, fine, secs).await);
    for (what, bytes) in cases {
        let secs = Duration::from_secs(10);
        assert!(
            leecher_drops_peer_that_sends(&meta, bytes, secs).await,
            "kept a peer that sent {what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_a_silent_peer_swallows_go_to_another() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 2 * 1024 * 1024, 13);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let silent = fake_seeder(&meta, fake_peer::Act::Silent).await;
    let (honest, _) = seeder_with(limited(4 << 20), &meta, src.path()).await;
    let (_leecher, l) = leecher(&meta, dst.path(), vec![silent, honest.listen_addr()]).await;
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_that_refuses_writes_fails_the_torrent_once() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("data.bin"), 2 * 1024 * 1024, 9);
    let meta = torrent(&src.path().join("data.bin"), 32 * 1024, vec![]);
    let seeder = session().await;
    let s = seeder
        .add(meta.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
    wait_complete(&s, 30).await;
    // Where the file goes there is a folder: every piece write fails.
    std::fs::create_dir_all(dst.path().join("data.bin/in-the-way")).unwrap();
    let leecher = session().await;
    let mut events = leecher.subscribe().unwrap();
    let l = leecher
        .add(meta.clone(), opts(dst.path(), vec![seeder.listen_addr()]))
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), l.wait_complete())
        .await
        .expect("the failure ends the wait");
    assert!(err.is_err(), "{:?}", l.stats());
    // Pieces that were on their way fail too; the torrent reports the first failure only. Stopping
    // the session waits for its disk jobs, so every failure there was to report is on the bus.
    leecher.shutdown(Duration::from_secs(10)).await;
    let mut errors = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let Event::Error { message, .. } = ev {
            errors.push(message);
        }
    }
    assert_eq!(errors.len(), 1, "{errors:#?}");
    match l.stats().state {
        TorrentState::Error(m) => assert_eq!(m, errors[0]),
        other => panic!("state {other:?}"),
    }
    seeder.shutdown(Duration::from_secs(2)).await;
}

/// A torrent the disk stopped is taken up by a resume once its user has seen to the disk: it
/// fetches what it lacks and the data arrives whole; while the disk still refuses, the resume
/// fails it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_takes_up_a_torrent_the_disk_stopped_once_the_disk_takes_writes() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let top = src.path().join("pair");
    write_random(&top.join("a.bin"), 512 * 1024, 21);
    write_random(&top.join("b.bin"), 1024 * 1024, 22);
    let meta = torrent(&top, 32 * 1024, vec![]);
    let name = meta.info.name.clone();
    let (seeder, _) = seeder(&meta, src.path()).await;
    // A folder where the second file goes: the pieces of the first are written, those of the
    // second are refused.
    let blocked = dst.path().join(&name).join("b.bin");
    std::fs::create_dir_all(blocked.join("in-the-way")).unwrap();
    let leecher = session().await;
    let l = leecher
        .add(meta.clone(), opts(dst.path(), vec![seeder.listen_addr()]))
        .await
        .unwrap();
    let failed =
        |l: &btorrent::engine::TorrentHandle| matches!(l.stats().state, TorrentState::Error(_));
    let first = tokio::time::timeout(Duration::from_secs(60), l.wait_complete())
        .await
        .expect("the failure ends the wait");
    assert!(first.is_err() && failed(&l), "{:?}", l.stats());
    // Resumed with the folder still in the way: it fails again.
    l.resume();
    let again = tokio::time::timeout(Duration::from_secs(60), l.wait_complete())
        .await
        .expect("the second failure ends the wait");
    assert!(again.is_err() && failed(&l), "{:?}", l.stats());
    // The user takes the folder away; the resume fetches the rest.
    std::fs::remove_dir_all(&blocked).unwrap();
    l.resume();
    assert!(!failed(&l), "{:?}", l.stats());
    wait_complete(&l, 60).await;
    assert_eq!(l.stats().state, TorrentState::Seeding);
    assert_same_tree(&top, &dst.path().join(&name));
    leecher.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_limit_from_the_settings_slows_the_leecher_and_the_data_arrives_whole() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 3 << 20, 21);
    let meta = torrent(&src.path().join("d.bin"), 64 * 1024, vec![]);
    let (seeder, _s) = seeder(&meta, src.path()).await;
    std::fs::write(
        dst.path().join("torrents.toml"),
        "[settings]\ndht = false\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\ndownload_limit = \"1M\"\n",
    )
    .unwrap();
    let cfg = btorrent::config::Config::load(&dst.path().join("torrents.toml")).unwrap();
    let leecher = btorrent::services::start_session(&cfg, &Default::default())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let h = leecher
        .add(
            meta.clone(),
            opts(&dst.path().join("out"), vec![seeder.listen_addr()]),
        )
        .await
        .unwrap();
    wait_complete(&h, 60).await;
    // 3 MiB at 1 MiB/s, less the limiter's burst of 100 KiB: no less than 2.9 s, whatever the machine.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(2500), "took only {took:?}");
    assert_same_tree(src.path(), &dst.path().join("out"));
}

/// A leecher on 127.0.0.2 (another address than the squatters') downloads from `seeder` into `dst`.
async fn honest_leecher_finishes(
    meta: &Metainfo,
    seeder: SocketAddr,
    src: &std::path::Path,
    dst: &std::path::Path,
) {
    let cfg = SessionConfig {
        listen: "127.0.0.2:0".parse().unwrap(),
        ..Default::default()
    };
    let (_l, l) = leecher_with(cfg, meta, dst, vec![seeder]).await;
    wait_complete(&l, 30).await;
    assert_same_tree(src, dst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squatters_from_one_address_leave_room_for_an_honest_peer() {
    use std::sync::atomic::Ordering;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 1 << 20, 31);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let (seeder, s) = seeder(&meta, src.path()).await;
    let cap = SessionConfig::default().max_peers_per_ip;
    let from = ["127.0.0.1".parse().unwrap()];
    let open = squatters(&meta, seeder.listen_addr(), &from, 60).await;
    wait_until(
        "the seeder to close all but the per-address cap",
        Duration::from_secs(30),
        || open.load(Ordering::SeqCst) <= cap,
    )
    .await;
    assert!(s.stats().peers <= cap, "{:?}", s.stats());
    // An honest peer on another address gets in at once and finishes.
    honest_leecher_finishes(&meta, seeder.listen_addr(), src.path(), dst.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_peers_give_their_slots_to_newcomers() {
    use std::sync::atomic::Ordering;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 1 << 20, 32);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let full = 8;
    let cfg = SessionConfig {
        max_peers_per_torrent: full,
        idle_peer_grace: Duration::ZERO,
        ..Default::default()
    };
    let (seeder, s) = seeder_with(cfg, &meta, src.path()).await;
    // Every slot taken, each from an address of its own (no per-address cap applies).
    let from: Vec<std::net::IpAddr> = (10..10 + full as u8)
        .map(|i| std::net::IpAddr::from([127, 0, 0, i]))
        .collect();
    let open = squatters(&meta, seeder.listen_addr(), &from, full).await;
    wait_until("every slot taken", Duration::from_secs(30), || {
        s.stats().peers == full
    })
    .await;
    assert_eq!(open.load(Ordering::SeqCst), full);
    honest_leecher_finishes(&meta, seeder.listen_addr(), src.path(), dst.path()).await;
    wait_until(
        "a squatter to lose its slot",
        Duration::from_secs(30),
        || open.load(Ordering::SeqCst) < full,
    )
    .await;
    assert!(s.stats().peers <= full);
}

/// A full torrent keeps the peers of higher canonical priority (BEP 40): a newcomer that ranks
/// below every peer connected is turned away, one that ranks above the lowest takes its slot.
/// Every peer here is busy (an idle grace of an hour), so only the rank decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_torrent_keeps_the_peers_of_higher_canonical_priority() {
    use btorrent::engine::peer_priority::priority;
    use std::sync::atomic::Ordering;
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 256 * 1024, 34);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let cfg = SessionConfig {
        max_peers_per_torrent: 2,
        idle_peer_grace: Duration::from_secs(3600),
        ..Default::default()
    };
    let (seeder, s) = seeder_with(cfg, &meta, src.path()).await;
    let at = seeder.listen_addr();
    // Addresses of loopback ranked by their priority with the seeder's (ports do not count
    // between different addresses).
    let mut ips: Vec<(u32, std::net::IpAddr)> = (1..=40)
        .map(|i| {
            let ip = std::net::IpAddr::from([127, 0, 4, i]);
            (priority(at, SocketAddr::new(ip, 1)), ip)
        })
        .collect();
    ips.sort_unstable();
    let (lowest, low, high, highest) = (ips[0].1, ips[10].1, ips[20].1, ips[39].1);

    let low = squatters(&meta, at, &[low], 1).await;
    let high = squatters(&meta, at, &[high], 1).await;
    wait_until("two peers", Duration::from_secs(30), || {
        s.stats().peers == 2
    })
    .await;
    // Ranked below both: turned away, the two kept.
    let lowest = squatters(&meta, at, &[lowest], 1).await;
    wait_until(
        "the lowest ranked newcomer turned away",
        Duration::from_secs(30),
        || lowest.load(Ordering::SeqCst) == 0,
    )
    .await;
    assert_eq!(
        (low.load(Ordering::SeqCst), high.load(Ordering::SeqCst)),
        (1, 1)
    );
    // Ranked above both: it takes the lower one's slot.
    let highest = squatters(&meta, at, &[highest], 1).await;
    wait_until(
        "the lower ranked peer replaced",
        Duration::from_secs(30),
        || low.load(Ordering::SeqCst) == 0,
    )
    .await;
    assert_eq!(
        (high.load(Ordering::SeqCst), highest.load(Ordering::SeqCst)),
        (1, 1)
    );
    wait_until("two peers again", Duration::from_secs(30), || {
        s.stats().peers == 2
    })
    .await;
}

/// The peer limits change while the session runs (the RPC's `peer-limit-per-torrent`,
/// `peer-limit-global` and a torrent's own `peer-limit`): a torrent takes peers up to its new limit,
/// a raised one lets more in, its own limit stands in for the session's, and a socket budget
/// lowered below the sockets open cuts none of them but lets no new one in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_limits_change_while_the_session_runs() {
    use std::sync::atomic::Ordering;
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 256 * 1024, 33);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let (seeder, s) = seeder(&meta, src.path()).await;
    let ips = |from: u8, n: u8| -> Vec<std::net::IpAddr> {
        (from..from + n)
            .map(|i| std::net::IpAddr::from([127, 0, 2, i]))
            .collect()
    };
    seeder.set_max_peers_per_torrent(2);
    assert_eq!(seeder.max_peers_per_torrent(), 2);
    let first = squatters(&meta, seeder.listen_addr(), &ips(1, 4), 4).await;
    wait_until(
        "two peers, the others let go",
        Duration::from_secs(30),
        || s.stats().peers == 2 && first.load(Ordering::SeqCst) == 2,
    )
    .await;

    seeder.set_max_peers_per_torrent(5);
    let more = squatters(&meta, seeder.listen_addr(), &ips(11, 3), 3).await;
    wait_until("five peers", Duration::from_secs(30), || {
        s.stats().peers == 5 && more.load(Ordering::SeqCst) == 3
    })
    .await;
    assert_eq!(seeder.connections(), 5);

    // The torrent's own limit stands in for the session's.
    s.set_limits(btorrent::engine::TorrentLimits {
        max_peers: Some(6),
        ..s.limits()
    });
    let sixth = squatters(&meta, seeder.listen_addr(), &ips(31, 1), 1).await;
    wait_until("six peers", Duration::from_secs(30), || {
        s.stats().peers == 6 && sixth.load(Ordering::SeqCst) == 1
    })
    .await;

    seeder.set_max_connections(3);
    assert_eq!(seeder.max_connections(), 3);
    let late = squatters(&meta, seeder.listen_addr(), &ips(21, 2), 2).await;
    assert_eq!(
        late.load(Ordering::SeqCst),
        0,
        "let in past the socket budget"
    );
    assert_eq!(s.stats().peers, 6, "a lower budget cut a connection");
    assert_eq!(seeder.connections(), 6);
}

/// The session's budget of peer sockets (`max_connections`, see the engine's `fd_budget`) holds over
/// every torrent: past it, incoming connections are closed at once and nothing is dialed; and its
/// permits come back as sockets close, so a leecher with a budget of one socket still downloads from
/// two seeders, one connection at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_keeps_within_its_budget_of_peer_sockets() {
    use std::sync::atomic::Ordering;
    let src = tempfile::tempdir().unwrap();
    let budget = 4;
    let seeders = session_with(SessionConfig {
        max_connections: Some(budget),
        ..Default::default()
    })
    .await;
    assert_eq!(seeders.max_connections(), budget);
    let mut metas = Vec::new();
    let mut handles = Vec::new();
    for (i, name) in ["a.bin", "b.bin"].iter().enumerate() {
        write_random(&src.path().join(name), 256 * 1024, 40 + i as u64);
        let meta = torrent(&src.path().join(name), 32 * 1024, vec![]);
        let h = seeders
            .add(meta.clone(), opts(src.path(), vec![]))
            .await
            .unwrap();
        wait_complete(&h, 30).await;
        metas.push(meta);
        handles.push(h);
    }
    // Three squatters on each torrent, each from an address of its own: four get in.
    let mut open = Vec::new();
    for (k, meta) in metas.iter().enumerate() {
        let from: Vec<std::net::IpAddr> = (0..3u8)
            .map(|i| std::net::IpAddr::from([127, 0, 1, 10 * k as u8 + i + 1]))
            .collect();
        open.push(squatters(meta, seeders.listen_addr(), &from, 3).await);
    }
    let held = || open.iter().map(|o| o.load(Ordering::SeqCst)).sum::<usize>();
    wait_until(
        "the squatters to hold the budget",
        Duration::from_secs(30),
        || handles.iter().map(|h| h.stats().peers).sum::<usize>() == budget,
    )
    .await;
    assert_eq!(held(), budget, "only the budget's worth were answered");
    assert_eq!(seeders.connections(), budget);

    // A leecher with a budget of one socket, and two seeders of the first torrent (sessions of
    // their own, on other addresses).
    let dst = tempfile::tempdir().unwrap();
    let (other, _) = seeder_with(
        SessionConfig {
            listen: "127.0.0.3:0".parse().unwrap(),
            ..Default::default()
        },
        &metas[0],
        src.path(),
    )
    .await;
    let (third, _) = seeder_with(
        SessionConfig {
            listen: "127.0.0.4:0".parse().unwrap(),
            ..Default::default()
        },
        &metas[0],
        src.path(),
    )
    .await;
    let (leecher, l) = leecher_with(
        SessionConfig {
            listen: "127.0.0.2:0".parse().unwrap(),
            max_connections: Some(1),
            ..Default::default()
        },
        &metas[0],
        dst.path(),
        vec![other.listen_addr(), third.listen_addr()],
    )
    .await;
    let watch = {
        let leecher = leecher.clone();
        tokio::spawn(async move {
            let mut most = 0;
            loop {
                most = most.max(leecher.connections());
                tokio::time::sleep(Duration::from_millis(5)).await;
                if most > 1 {
                    return most;
                }
            }
        })
    };
    wait_complete(&l, 30).await;
    assert!(!watch.is_finished(), "the leecher went past its one socket");
    watch.abort();
    assert!(leecher.connections() <= 1);
    assert_eq!(
        std::fs::read(dst.path().join("a.bin")).unwrap(),
        std::fs::read(src.path().join("a.bin")).unwrap()
    );
}

/// The session's IP filter (a blocklist): a blocked address is never dialed (the download comes
/// from the other seeder only), and putting a filter in force lets go of the connected peers it
/// blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ip_filter_keeps_blocked_addresses_out() {
    use btorrent::engine::ip_filter::IpFilter;
    use std::sync::atomic::Ordering;
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("f.bin"), 512 * 1024, 77);
    let meta = torrent(&src.path().join("f.bin"), 32 * 1024, vec![]);
    let on = |ip: &str| SessionConfig {
        listen: format!("{ip}:0").parse().unwrap(),
        ..Default::default()
    };
    let (blocked, blocked_h) = seeder_with(on("127.0.0.3"), &meta, src.path()).await;
    let (open, open_h) = seeder_with(on("127.0.0.4"), &meta, src.path()).await;
    let leecher = session_with(on("127.0.0.2")).await;
    leecher.set_ip_filter(IpFilter::parse("blocked seeder:127.0.0.3-127.0.0.3\n").filter);
    let l = leecher
        .add(
            meta.clone(),
            opts(dst.path(), vec![blocked.listen_addr(), open.listen_addr()]),
        )
        .await
        .unwrap();
    wait_complete(&l, 30).await;
    assert_eq!(
        blocked_h.stats().uploaded,
        0,
        "the blocked seeder sent nothing"
    );
    assert!(open_h.stats().uploaded >= meta.info.total_length);

    // A peer connected from 127.0.0.5, then blocked: it is let go at once.
    leecher.shutdown(Duration::from_secs(2)).await;
    wait_until("the leecher to be gone", Duration::from_secs(30), || {
        open_h.stats().peers == 0
    })
    .await;
    let held = squatters(
        &meta,
        open.listen_addr(),
        &["127.0.0.5".parse().unwrap()],
        1,
    )
    .await;
    assert_eq!(held.load(Ordering::SeqCst), 1);
    wait_until("the peer to be registered", Duration::from_secs(30), || {
        open_h.stats().peers == 1
    })
    .await;
    let closed = open.set_ip_filter(IpFilter::parse("127.0.0.5\n").filter);
    assert_eq!(closed, 1);
    wait_until(
        "the blocked peer to be let go",
        Duration::from_secs(30),
        || held.load(Ordering::SeqCst) == 0,
    )
    .await;
    // And it cannot come back.
    let again = squatters(
        &meta,
        open.listen_addr(),
        &["127.0.0.5".parse().unwrap()],
        1,
    )
    .await;
    assert_eq!(again.load(Ordering::SeqCst), 0);
    assert_eq!(open.ip_filter().len(), 1);
}

/// A hybrid torrent whose v1 and v2 sides describe different data (its `pieces` of one content, its
/// trees of another: the two swarms would trade different bytes as the same piece): the check of the
/// data at start fails it with the reason, and so does the first piece that arrives, nothing
/// written, the seed (which has it without its layers, by SHA-1 alone) not banned; the consistent
/// hybrid of the same content downloads whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_whose_two_hashes_disagree_fails_with_the_reason() {
    let src = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let len = 5 * 16384 + 100;
    write_random(&src.path().join("h.bin"), len, 93);
    write_random(&other.path().join("h.bin"), len, 94);
    use crate::support::engine::{bare, hybrid, two_sided_hybrid};
    let good = hybrid(&src.path().join("h.bin"), 16384);
    // The other content's torrent, its v1 `pieces` replaced by those of ours.
    let mixed = two_sided_hybrid(
        &src.path().join("h.bin"),
        &other.path().join("h.bin"),
        16384,
    );
    // The same without its layers (as a `btih` link's dictionary from a peer that has none): SHA-1
    // alone vouches for the seed's data.
    let mixed_bare = bare(&mixed);

    // Holding the whole data, the check at start finds the two hashes disagree (on every piece:
    // the one named is whichever a checking thread saw first).
    let seed = crate::support::engine::session().await;
    let s = seed
        .add(
            mixed.clone(),
            crate::support::engine::opts(src.path(), vec![]),
        )
        .await
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(30), s.wait_complete()).await;
    assert!(done.expect("the check ends").is_err());
    match s.stats().state {
        TorrentState::Error(m) => assert!(m.contains("v1 and v2 hashes disagree on piece"), "{m}"),
        other => panic!("state {other:?}"),
    }
    assert_eq!(s.stats().pieces_have, 0);
    seed.shutdown(Duration::from_secs(2)).await;

    for (meta, consistent) in [(&mixed, false), (&good, true)] {
        let seeds = if consistent { meta } else { &mixed_bare };
        let (seed, s) = seeder(seeds, src.path()).await;
        let dst = tempfile::tempdir().unwrap();
        let (leecher, l) = leecher(meta, dst.path(), vec![seed.listen_addr()]).await;
        let done = tokio::time::timeout(Duration::from_secs(60), l.wait_complete())
            .await
            .expect("the download ends");
        if consistent {
            done.unwrap();
            assert_same_tree(src.path(), dst.path());
        } else {
            assert!(done.is_err());
            match l.stats().state {
                TorrentState::Error(m) => {
                    assert!(m.contains("v1 and v2 hashes disagree on piece"), "{m}")
                }
                other => panic!("state {other:?}"),
            }
            assert_eq!(l.stats().pieces_have, 0);
            // Nothing written: the file, if made at all, holds no byte of the data.
            let on_disk = std::fs::read(dst.path().join("h.bin")).unwrap_or_default();
            assert!(on_disk.iter().all(|&b| b == 0), "data written");
            assert!(s.stats().uploaded > 0);
        }
        leecher.shutdown(Duration::from_secs(2)).await;
        seed.shutdown(Duration::from_secs(2)).await;
    }
}

/// BEP 52: a v2 seed answers a hash request for a file's piece layer (as libtorrent asks when it
/// came by a magnet link) with hashes that tie to the file's root, refuses what its layers cannot
/// answer, and a v1 seed refuses every hash request; the connection goes on either way. A hybrid
/// seed, dialed by its v2 info-hash, answers in that swarm and from its layers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_seed_answers_hash_requests_from_its_piece_layers() {
    use btorrent::metainfo::v2::{check_hashes, HashRange};
    use btorrent::wire::Message;
    use futures::SinkExt;

    let src = tempfile::tempdir().unwrap();
    let top = src.path().join("v2");
    write_random(&top.join("forty-pieces"), 40 * 16384 - 7, 61);
    write_random(&top.join("small"), 100, 62);
    let opts = |v2, hybrid| btorrent::metainfo::CreateOptions {
        piece_length: Some(16384),
        v2,
        hybrid,
        ..Default::default()
    };
    let made = |o| btorrent::metainfo::create_torrent(&top, &o, &|_, _| {}).unwrap();
    let v2 = made(opts(true, false));
    let v1 = made(opts(false, false));
    let hybrid = made(opts(false, true));
    let root = v2.info.v2.as_ref().unwrap().files[0].root;
    // 40 pieces of one block: 64 leaves, 6 layers; the whole layer with no uncle, as libtorrent asks.
    let whole = HashRange {
        root,
        base: 0,
        index: 0,
        length: 64,
        proof_layers: 5,
    };
    let unaligned = HashRange { index: 2, ..whole };
    let by_v2 = hybrid.second_info_hash().unwrap();
    for (meta, swarm, asks) in [
        (&v2, v2.info_hash, vec![(whole, true), (unaligned, false)]),
        (&v1, v1.info_hash, vec![(whole, false)]),
        (&hybrid, by_v2, vec![(whole, true), (unaligned, false)]),
    ] {
        let (seed, _h) = seeder(meta, src.path()).await;
        let mut f = fake_peer::handshaken_as(meta, swarm, seed.listen_addr()).await;
        for (r, answered) in asks {
            f.send(Message::HashRequest(r)).await.unwrap();
            loop {
                match fake_peer::next_message(&mut f).await {
                    Message::Hashes { range, hashes } => {
                        assert!(answered, "answered {range:?}");
                        assert_eq!(range, r);
                        let hashes: Vec<[u8; 32]> = hashes
                            .chunks_exact(32)
                            .map(|c| c.try_into().unwrap())
                            .collect();
                        let layer = check_hashes(&r, 6, &hashes).expect("ties to the root");
                        for (i, h) in layer.iter().enumerate().take(40) {
                            assert_eq!(*h, v2.info.v2.as_ref().unwrap().pieces[i].root);
                        }
                        break;
                    }
                    Message::HashReject(range) => {
                        assert!(!answered, "refused {range:?}");
                        assert_eq!(range, r);
                        break;
                    }
                    _ => {}
                }
            }
        }
        seed.shutdown(Duration::from_secs(2)).await;
    }
}
