//! Super-seeding (BEP 16) over 127.0.0.1: a lone seed spreads distinct pieces, so the swarm holds the
//! whole torrent after about one copy uploaded and finishes without the seed; it still serves a lone
//! leecher; it steps back when another seed shows up, and for a leecher that wants none of the
//! pieces it was offered (it skips their files).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::fake_peer::pieces_told;
use crate::support::*;
use btorrent::engine::{AddOptions, FilePriority, SessionConfig};
use btorrent::wire::Bitfield;

fn seed_cfg(super_seed: Option<bool>, upload_limit: u64) -> SessionConfig {
    SessionConfig {
        super_seed,
        upload_limit: Some(upload_limit),
        ..Default::default()
    }
}

/// One limited seeder, four leechers that know each other (each dials the seeder and those before
/// it). Returns what the seeder had uploaded when every piece was first held by some leecher; then
/// removes the seeder and checks that the leechers complete on their own.
async fn swarm_without_the_seed(super_seed: Option<bool>) -> (u64, u64) {
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 96 * 32 * 1024, 21);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let (seeder, s) = seeder_with(seed_cfg(super_seed, 2 << 20), &meta, src.path()).await;
    assert_eq!(s.stats().super_seeding, super_seed != Some(false));
    let mut leechers = Vec::new();
    let mut addrs: Vec<SocketAddr> = vec![seeder.listen_addr()];
    for _ in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let (sess, h) = leecher(&meta, dir.path(), addrs.clone()).await;
        addrs.push(sess.listen_addr());
        leechers.push((sess, h, dir));
    }
    let n = meta.info.piece_count();
    let end = Instant::now() + Duration::from_secs(60);
    let uploaded = loop {
        let mut union = Bitfield::new(n);
        for (_, h, _) in &leechers {
            h.have().ones().for_each(|i| {
                union.set(i);
            });
        }
        if union.is_full() {
            break s.stats().uploaded;
        }
        assert!(Instant::now() < end, "the leechers never held every piece");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    seeder.remove(&meta.info_hash).await.unwrap();
    for (_, h, dir) in &leechers {
        wait_complete(h, 60).await;
        assert_same_tree(src.path(), dir.path());
    }
    for (sess, _, _) in leechers {
        sess.shutdown(Duration::from_secs(2)).await;
    }
    seeder.shutdown(Duration::from_secs(2)).await;
    (uploaded, meta.info.total_length)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swarm_holds_every_piece_after_about_one_copy_and_finishes_without_the_seed() {
    let (up, total) = swarm_without_the_seed(None).await;
    eprintln!(
        "seeder uploaded {:.3}x the file when the leechers first held every piece",
        up as f64 / total as f64
    );
    assert!(
        up * 100 <= total * 115,
        "the seeder uploaded {up} bytes ({:.2}x the file) before the leechers held every piece",
        up as f64 / total as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_super_seeder_serves_a_lone_leecher_to_completion() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 40 * 16 * 1024 + 77, 22);
    let meta = torrent(&src.path().join("d.bin"), 16 * 1024, vec![]);
    let cfg = SessionConfig {
        super_seed: Some(true),
        ..Default::default()
    };
    let (seeder, s) = seeder_with(cfg, &meta, src.path()).await;
    assert!(s.stats().super_seeding);
    // A lone prober is offered a few pieces at a time (an eighth of the torrent at most).
    let told = pieces_told(&meta, seeder.listen_addr()).await;
    assert!(told <= meta.info.piece_count() / 8, "told of {told} pieces");
    let (leecher, l) = leecher(&meta, dst.path(), vec![seeder.listen_addr()]).await;
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());
    leecher.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leecher_that_declines_its_offers_is_shown_every_piece() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    // 40 pieces before the wanted file, which takes 2: the offers (an eighth of the torrent at
    // most, to a lone leecher) are almost surely pieces it skips, and it says nothing to them.
    write_tree(
        src.path(),
        &[
            ("set/big.bin", 40 * 16 * 1024),
            ("set/small.bin", 2 * 16 * 1024),
        ],
    );
    let meta = torrent(&src.path().join("set"), 16 * 1024, vec![]);
    let cfg = SessionConfig {
        super_seed: Some(true),
        ..Default::default()
    };
    let (seeder, s) = seeder_with(cfg, &meta, src.path()).await;
    assert!(s.stats().super_seeding);
    let leecher = session().await;
    let add = AddOptions {
        files: Some(vec![FilePriority::Skip, FilePriority::Normal]),
        ..opts(dst.path(), vec![seeder.listen_addr()])
    };
    let l = leecher.add(meta.clone(), add).await.unwrap();
    // Without the rule it would wait at zero for as long as the seed super-seeds.
    wait_complete(&l, 60).await;
    assert_eq!(
        std::fs::read(dst.path().join("set/small.bin")).unwrap(),
        std::fs::read(src.path().join("set/small.bin")).unwrap()
    );
    assert!(l.stats().downloaded < 8 * 16 * 1024, "{:?}", l.stats());
    leecher.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_second_seed_it_seeds_as_usual() {
    let src = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 64 * 16 * 1024, 23);
    let meta = torrent(&src.path().join("d.bin"), 16 * 1024, vec![]);
    let (a, ha) = seeder(&meta, src.path()).await;
    assert!(ha.stats().super_seeding);
    let told = pieces_told(&meta, a.listen_addr()).await;
    assert!(told <= meta.info.piece_count() / 8, "told of {told} pieces");
    // A seed that does not super-seed shows every piece (one that did would hide them like `a`).
    let b = session_with(SessionConfig {
        super_seed: Some(false),
        ..Default::default()
    })
    .await;
    let _hb = b
        .add(meta.clone(), opts(src.path(), vec![a.listen_addr()]))
        .await
        .unwrap();
    wait_until(
        "the first seed to see the second",
        Duration::from_secs(20),
        || !ha.stats().super_seeding,
    )
    .await;
    assert_eq!(
        pieces_told(&meta, a.listen_addr()).await,
        meta.info.piece_count(),
        "a new peer is told of every piece"
    );
    b.shutdown(Duration::from_secs(2)).await;
    a.shutdown(Duration::from_secs(2)).await;
}
