//! `lt_donthave` (BEP 54) with libtorrent, which offers it: a btorrent seed whose data rots on disk
//! tells a libtorrent leecher the piece is gone (libtorrent's view of our pieces loses it) and stays
//! connected to it.

use std::path::Path;

use crate::support::clients::libtorrent;
use crate::support::*;
use btorrent::engine::SessionConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_hears_that_a_rotten_piece_is_gone() {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    const PIECE: u64 = 16 * 1024;
    const PIECES: u64 = 64;
    write_random(&src.join("rot.bin"), (PIECE * PIECES) as usize, 77);
    let meta = torrent(&src.join("rot.bin"), PIECE, vec![]);
    // Slow enough that libtorrent is still downloading when the piece rots, and no super-seeding
    // (which shows a leecher our pieces a few at a time).
    let cfg = SessionConfig {
        upload_limit: Some(32 * 1024),
        super_seed: Some(false),
        ..Default::default()
    };
    let (s, h) = seeder_with(cfg, &meta, &src).await;

    // libtorrent, told of us by a magnet link, fetches the metadata from us and downloads.
    let link = format!(
        "magnet:?xt=urn:btih:{}&dn=rot.bin&x.pe={}",
        meta.info_hash.to_hex(),
        s.listen_addr()
    );
    let out = work.path().join("lt");
    let mut p = Proc::spawn_logged(
        libtorrent("leech", Path::new(&link), &out, free_port()).env("LT_PEERS", "1"),
        work.path().join("lt.log"),
    );
    let all = format!("HAS {PIECES}/{PIECES}");
    p.wait_until(60, "libtorrent to see every piece of ours", |p| {
        p.log_text().contains(&all)
    })
    .await;

    // libtorrent's connection to us, by its address as we see it.
    let before: Vec<_> = h.peers().iter().map(|p| p.addr).collect();
    assert_eq!(before.len(), 1, "{before:?}");
    rot_byte(&src.join("rot.bin"), 40 * PIECE + 7);
    let report = h.check().await.unwrap();
    assert_eq!(report.bad, vec![40]);
    let one_less = format!("HAS {}/{PIECES}", PIECES - 1);
    p.wait_until(30, "libtorrent to hear the piece is gone", |p| {
        p.log_text().contains(&one_less)
    })
    .await;
    // Told on the same connection: not dropped and dialled again (which is how a peer without
    // lt_donthave learns it).
    let log = p.log_text();
    assert!(
        !log.contains("GONE"),
        "libtorrent lost its connection:\n{log}"
    );
    let after: Vec<_> = h.peers().iter().map(|p| p.addr).collect();
    assert_eq!(after, before, "the same connection:\n{log}");
    p.kill();
}
