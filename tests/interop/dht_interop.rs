//! A torrent with no tracker crossing a loopback Mainline DHT both ways between btorrent and
//! python3-libtorrent: neither side is given the other's address, and no tracker runs.
//!
//! The DHT: a few nodes of the `mainline` crate on 127.0.0.1 and one libtorrent node alone. The
//! mainline nodes ignore libtorrent's queries (they parse only 4-byte transaction ids, libtorrent sends
//! 2), so libtorrent clients store and find announces in the libtorrent node; btorrent (whose queries
//! every node answers) joins through all of them and so meets libtorrent's announces there, and puts
//! its own in the libtorrent node too.

use std::path::Path;
use std::time::Duration;

use crate::support::clients::libtorrent_dht;
use crate::support::dht::{session_config, testnet};
use crate::support::{
    assert_same_tree, free_port, init_logs, session_with, wait_complete, write_random, Proc,
};
use btorrent::engine::AddOptions;
use btorrent::metainfo::{create_torrent, CreateOptions};
use btorrent::Metainfo;

/// The loopback DHT: the testnet (kept alive by the caller), a libtorrent node, and every address.
fn dht(work: &Path) -> (mainline::Testnet, Proc, Vec<String>) {
    let net = testnet(5);
    let port = free_port();
    let folder = work.join("lt-node");
    std::fs::create_dir_all(&folder).unwrap();
    let node = Proc::spawn_logged(
        &mut libtorrent_dht("node", Path::new("-"), &folder, port, &net.bootstrap),
        work.join("lt-node.log"),
    );
    let mut all = net.bootstrap.clone();
    all.push(format!("127.0.0.1:{port}"));
    (net, node, all)
}

/// Data, a trackerless torrent of it and its .torrent file in `work`.
fn setup(work: &Path) -> (std::path::PathBuf, Metainfo, std::path::PathBuf) {
    let src = work.join("src");
    write_random(&src.join("payload.bin"), 3 * 1024 * 1024 + 17, 90);
    let opts = CreateOptions {
        piece_length: Some(256 * 1024),
        ..Default::default()
    };
    let meta = create_torrent(&src.join("payload.bin"), &opts, &|_, _| {}).unwrap();
    assert!(meta.trackers().is_empty());
    let file = work.join("t.torrent");
    std::fs::write(&file, meta.as_bytes()).unwrap();
    (src, meta, file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_seeds_to_libtorrent_over_the_dht() {
    init_logs();
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_path_buf();
    let (_net, _node, nodes) = tokio::task::spawn_blocking(move || dht(&w)).await.unwrap();
    let (src, meta, file) = setup(work.path());
    let s = session_with(session_config(&nodes)).await;
    let h = s
        .add(
            meta.clone(),
            AddOptions {
                data_dir: src.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_complete(&h, 30).await;
    let out = work.path().join("lt");
    std::fs::create_dir_all(&out).unwrap();
    let mut p = Proc::spawn_logged(
        &mut libtorrent_dht("leech", &file, &out, free_port(), &nodes),
        work.path().join("lt.log"),
    );
    p.wait_until(120, "libtorrent's download over the DHT", |p| {
        p.exited().is_some_and(|st| {
            assert!(
                st.success(),
                "libtorrent failed ({st}); log:\n{}",
                p.log_text()
            );
            true
        })
    })
    .await;
    assert_same_tree(&src, &out);
    assert!(h.stats().uploaded > 0);
    s.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_seeds_to_btorrent_over_the_dht() {
    init_logs();
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_path_buf();
    let (_net, _node, nodes) = tokio::task::spawn_blocking(move || dht(&w)).await.unwrap();
    let (src, meta, file) = setup(work.path());
    let _p = Proc::spawn_logged(
        &mut libtorrent_dht("seed", &file, &src, free_port(), &nodes),
        work.path().join("lt.log"),
    );
    let out = work.path().join("ours");
    let s = session_with(session_config(&nodes)).await;
    let h = s
        .add(
            meta.clone(),
            AddOptions {
                data_dir: out.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    wait_complete(&h, 120).await;
    assert_same_tree(&src, &out);
    assert!(h.stats().downloaded >= meta.info.total_length);
    s.shutdown(Duration::from_secs(2)).await;
}
