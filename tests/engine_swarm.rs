//! btorrent to btorrent over 127.0.0.1: whole swarms of in-process sessions.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_one_leecher() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("data.bin"), 5 * 1024 * 1024 + 123, 1);
    let meta = torrent(&src.path().join("data.bin"), 64 * 1024, vec![]);

    let seeder = session().await;
    let s = seeder
        .add(meta.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
    wait_complete(&s, 30).await;
    let leecher = session().await;
    let l = leecher
        .add(meta.clone(), opts(dst.path(), vec![seeder.listen_addr()]))
        .await
        .unwrap();
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
    let st = l.stats();
    assert_eq!(st.pieces_have, st.pieces_total);
    assert!(st.downloaded >= meta.info.total_length);
    leecher.shutdown(std::time::Duration::from_secs(2)).await;
    seeder.shutdown(std::time::Duration::from_secs(2)).await;
}

use std::net::SocketAddr;
use std::time::Duration;

use btorrent::engine::{Event, SessionConfig, TorrentState};
use btorrent::wire::handshake::{read_handshake, write_handshake, Handshake};
use btorrent::wire::{Bitfield, Geometry, Message, PeerCodec};
use btorrent::{Metainfo, PeerId};
use futures::{SinkExt, StreamExt};

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
        let s = session_with(limited(4 << 20)).await;
        let h = s.add(meta.clone(), opts(src.path(), vec![])).await.unwrap();
        wait_complete(&h, 30).await;
        seeders.push((s, h));
    }
    let addrs: Vec<SocketAddr> = seeders.iter().map(|(s, _)| s.listen_addr()).collect();
    let leecher = session().await;
    let l = leecher
        .add(meta.clone(), opts(dst.path(), addrs))
        .await
        .unwrap();
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
    let sum: u64 = seeders.iter().map(|(_, h)| h.stats().uploaded).sum();
    assert!(sum >= total && sum <= total + total / 5, "sum {sum}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_seeder_five_leechers_trade_among_themselves() {
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 4 * 1024 * 1024, 3);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    // The seeder alone could feed them all only in 10 s: trading is what makes it quick.
    let seeder = session_with(limited(2 << 20)).await;
    let s = seeder
        .add(meta.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
    wait_complete(&s, 30).await;
    let mut leechers = Vec::new();
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let sess = session().await;
        let h = sess
            .add(meta.clone(), opts(dir.path(), vec![seeder.listen_addr()]))
            .await
            .unwrap();
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
    let seeder = session().await;
    let s = seeder
        .add(meta.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
    wait_complete(&s, 30).await;
    let leecher = session().await;
    let l = leecher
        .add(meta.clone(), opts(dst.path(), vec![seeder.listen_addr()]))
        .await
        .unwrap();
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
}

/// A fake peer that claims every piece and answers every request with garbage.
async fn corrupt_seeder(meta: Metainfo) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let meta = meta.clone();
            tokio::spawn(async move {
                let t = Duration::from_secs(5);
                let Ok(theirs) = read_handshake(&mut s, t).await else {
                    return;
                };
                let ours = Handshake::ours(meta.info_hash, PeerId::generate());
                if write_handshake(&mut s, &ours, t).await.is_err() {
                    return;
                }
                let geo = Geometry::from_info(&meta.info);
                let mut f =
                    tokio_util::codec::Framed::new(s, PeerCodec::new(geo, theirs.supports_fast()));
                let all = Message::Bitfield(Bitfield::full(meta.info.piece_count()));
                if f.send(all).await.is_err() {
                    return;
                }
                while let Some(Ok(msg)) = f.next().await {
                    let reply = match msg {
                        Message::Interested => Message::Unchoke,
                        Message::Request(b) => Message::Piece {
                            index: b.index,
                            begin: b.begin,
                            data: vec![0xab; b.length as usize].into(),
                        },
                        _ => continue,
                    };
                    if f.send(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_peer_is_banned_and_an_honest_one_finishes() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 2 * 1024 * 1024, 4);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let bad = corrupt_seeder(meta.clone()).await;
    let honest = session_with(limited(4 << 20)).await;
    let h = honest
        .add(meta.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
    wait_complete(&h, 30).await;

    let leecher = session().await;
    let mut events = leecher.subscribe();
    let l = leecher
        .add(
            meta.clone(),
            opts(dst.path(), vec![bad, honest.listen_addr()]),
        )
        .await
        .unwrap();
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
    let mut banned = None;
    while let Ok(e) = events.try_recv() {
        if let Event::PeerBanned { addr, .. } = e {
            banned = Some(addr);
        }
    }
    assert_eq!(banned, Some(bad), "the corrupt peer was not banned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeder_vanishes_mid_transfer_and_a_later_one_finishes() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 4 * 1024 * 1024, 5);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let first = session_with(limited(2 << 20)).await;
    let a = first
        .add(meta.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
    wait_complete(&a, 30).await;

    let leecher = session().await;
    let mut events = leecher.subscribe();
    let l = leecher
        .add(meta.clone(), opts(dst.path(), vec![first.listen_addr()]))
        .await
        .unwrap();
    let total = meta.info.piece_count();
    wait_until(30, "a quarter of the pieces", || {
        l.stats().pieces_have >= total / 4
    })
    .await;
    first.shutdown(Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let st = l.stats();
    assert!(st.pieces_have < total, "finished before the seeder left");
    assert_eq!(st.peers, 0);

    let second = session().await;
    second
        .add(meta.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
    l.add_peers(vec![second.listen_addr()]);
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
    let mut completed = false;
    while let Ok(e) = events.try_recv() {
        completed |= matches!(e, Event::Completed { .. });
    }
    assert!(completed);
    assert_eq!(l.stats().state, TorrentState::Seeding);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_without_fetching_again() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let resume = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 4 * 1024 * 1024, 6);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let seeder = session_with(limited(4 << 20)).await;
    seeder
        .add(meta.clone(), opts(src.path(), vec![]))
        .await
        .unwrap();
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
    wait_until(30, "half the pieces", || l.stats().pieces_have >= total / 2).await;
    first.shutdown(Duration::from_secs(2)).await;
    let had = l.stats().bytes_verified;

    let second = session_with(cfg()).await;
    let mut events = second.subscribe();
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
    let kinds: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert!(kinds.iter().any(|e| matches!(e, Event::Completed { .. })));

    // Complete data: a third start seeds at once and never claims a download completed.
    second.shutdown(Duration::from_secs(2)).await;
    let third = session_with(cfg()).await;
    let mut events = third.subscribe();
    let l3 = third
        .add(meta.clone(), opts(dst.path(), vec![]))
        .await
        .unwrap();
    wait_complete(&l3, 10).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let kinds: Vec<Event> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert!(kinds.iter().any(|e| matches!(e, Event::Seeding { .. })));
    assert!(!kinds.iter().any(|e| matches!(e, Event::Completed { .. })));
    assert_eq!(l3.stats().downloaded, 0);
}
