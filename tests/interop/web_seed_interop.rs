//! Web seeds (BEP 19) across clients: a torrent made by `btorrent create --web-seed`, with no tracker
//! and no peer, downloads in libtorrent and in aria2c from the web server alone, so the `url-list`
//! we write is the one other clients read. (Our own downloads from web seeds are tested in
//! `tests/it/web_seed.rs`.)

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::cli::ok;
use crate::support::clients::{aria2, libtorrent};
use crate::support::web_server::WebServer;
use crate::support::{assert_same_tree, free_port, run, write_random, Proc};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent and aria2"]
async fn libtorrent_and_aria2c_download_our_web_seeded_torrent_from_the_server_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p);
    // The server's root holds the folder the torrent is made of.
    let root = path("www");
    write_random(&root.join("album/one.bin"), 300_000, 11);
    write_random(&root.join("album/two words.bin"), 123_457, 12);
    let web = WebServer::start(root.clone()).await;
    let args = [
        "create",
        "www/album",
        "--no-tracker",
        "--web-seed",
        &web.url,
    ];
    ok(dir.path(), &args);
    let torrent = path("torrents/album.torrent");

    let lt_dir = path("lt");
    std::fs::create_dir_all(&lt_dir).unwrap();
    let mut lt = Proc::spawn_logged(
        &mut libtorrent("leech", &torrent, &lt_dir, free_port()),
        path("lt.log"),
    );
    let status = lt.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "libtorrent: {status}\n{}", lt.log_text());
    assert_same_tree(&root.join("album"), &lt_dir.join("album"));
    let asked = web.served.requests.load(Ordering::SeqCst);
    assert!(asked > 0);

    let a_dir = path("aria");
    let out = run(
        &mut aria2(&a_dir, free_port(), &torrent, false),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "aria2c: {}\n{}",
        out.stdout,
        out.stderr
    );
    assert_same_tree(&root.join("album"), &a_dir.join("album"));
    assert!(web.served.requests.load(Ordering::SeqCst) > asked);
}
