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
