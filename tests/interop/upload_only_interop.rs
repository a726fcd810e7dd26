//! BEP 21's `upload_only` with libtorrent, which sends it in its extension handshake and, when it
//! changes, as a message of its own: a libtorrent partial seed (one file of two) parts from our seed
//! (neither wants anything of the other), shows as upload only to a btorrent leecher it serves, which
//! parts from it once it has taken all it has, and tells another so the moment it wants the other
//! file; the four then complete.

use std::path::Path;
use std::time::Duration;

use crate::support::clients::libtorrent;
use crate::support::*;
use btorrent::engine::{AddOptions, SessionConfig, TorrentHandle, TorrentLimits};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_partial_seed_says_upload_only_and_when_it_wants_again() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    const PIECE: u64 = 16 * 1024;
    // Whole pieces each: wanting a.bin alone wants no piece of b.bin.
    write_random(&src.join("pack/a.bin"), (8 * PIECE) as usize, 81);
    write_random(&src.join("pack/b.bin"), (8 * PIECE) as usize, 82);
    let meta = torrent(&src.join("pack"), PIECE, vec![]);
    // No super-seeding: it would show libtorrent a few pieces at a time.
    let plain = || SessionConfig {
        super_seed: Some(false),
        ..Default::default()
    };
    let (seeder, s) = seeder_with(plain(), &meta, &src).await;

    // libtorrent fetches a.bin alone from our seed (a magnet link naming it).
    let link = format!(
        "magnet:?xt=urn:btih:{}&dn=pack&x.pe={}",
        meta.info_hash.to_hex(),
        seeder.listen_addr()
    );
    let out = work.path().join("lt");
    let trigger = work.path().join("want-all");
    let lt_port = free_port();
    let mut lt = Proc::spawn_logged(
        libtorrent("leech", Path::new(&link), &out, lt_port)
            .env("LT_FILES", "1,0")
            .env("LT_WANT_ALL", &trigger),
        work.path().join("lt.log"),
    );
    lt.wait_until(60, "libtorrent to have a.bin", |p| {
        p.log_text().contains("FINISHED")
    })
    .await;
    assert_eq!(
        std::fs::read(out.join("pack/a.bin")).unwrap(),
        std::fs::read(src.join("pack/a.bin")).unwrap()
    );
    // A partial seed and a seed: nothing to trade, they part.
    wait_until(
        "our seed and libtorrent to part",
        Duration::from_secs(30),
        || s.peers().is_empty(),
    )
    .await;
    s.pause();

    // A btorrent leecher wanting both files takes a.bin from libtorrent, which says it is upload
    // only; having all of it that it wants, and nothing else to get, it parts from libtorrent.
    let lt_addr = std::net::SocketAddr::from(([127, 0, 0, 1], lt_port));
    let dst = work.path().join("dst");
    let leecher = session().await;
    let l = leecher
        .add(meta.clone(), opts(&dst, vec![lt_addr]))
        .await
        .unwrap();
    // The connection to libtorrent (the leechers may meet each other too, by its PEX).
    let lt_as_seen = |l: &TorrentHandle, up: bool| {
        l.peers()
            .iter()
            .any(|p| p.addr == lt_addr && p.upload_only == up && !p.seed)
    };
    wait_until(
        "the leecher to take a.bin and part from libtorrent",
        Duration::from_secs(60),
        || l.stats().pieces_have == 8 && l.peers().iter().all(|p| p.addr != lt_addr),
    )
    .await;

    // A second leecher, slowed by its own download limit, sees libtorrent upload only while it
    // takes a.bin; then libtorrent wants b.bin too and says so.
    let dst2 = work.path().join("dst2");
    let leecher2 = session().await;
    let l2 = leecher2
        .add(
            meta.clone(),
            AddOptions {
                limits: TorrentLimits {
                    download: Some(PIECE / 2),
                    ..TorrentLimits::default()
                },
                ..opts(&dst2, vec![lt_addr])
            },
        )
        .await
        .unwrap();
    wait_until(
        "libtorrent to serve the second leecher, upload only",
        Duration::from_secs(60),
        || lt_as_seen(&l2, true),
    )
    .await;
    std::fs::write(&trigger, b"").unwrap();
    wait_until(
        "libtorrent to say it wants pieces again",
        Duration::from_secs(30),
        || lt_as_seen(&l2, false),
    )
    .await;
    // It says so on the wire before its log line is written: wait for the line, don't race it.
    lt.wait_until(30, "libtorrent to log that it wants every file", |p| {
        p.log_text().contains("WANTS ALL")
    })
    .await;
    l2.set_limits(TorrentLimits::default());

    // Our seed back: all complete.
    s.resume();
    l.add_peers(vec![seeder.listen_addr()]);
    l2.add_peers(vec![seeder.listen_addr()]);
    wait_complete(&l, 60).await;
    wait_complete(&l2, 60).await;
    assert_same_tree(&src, &dst);
    assert_same_tree(&src, &dst2);
    lt.wait_until(60, "libtorrent to complete", |p| {
        p.log_text().contains("DONE")
    })
    .await;
    lt.kill();
    leecher2.shutdown(Duration::from_secs(2)).await;
    leecher.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}
