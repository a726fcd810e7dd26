//! A .torrent named by its `http://` URL, as a download page links it: `btorrent info` and
//! `btorrent start` fetch it (bounded in size and time), `start` keeps it in torrents_dir and
//! registers it like any other; the RPC's `torrent-add` takes one in `filename`. A URL that gives
//! no torrent is one clear line, and nothing is written.

use serde_json::json;

use crate::support::cli::{downloaded, loopback_home, ok, run};
use crate::support::data::write_random;
use crate::support::engine::{seeder, torrent};
use crate::support::rpc::{poll, torrent_get, RpcDaemon};
use crate::support::web_server::WebServer;

#[test]
fn a_torrent_named_by_its_url_is_fetched_kept_and_downloaded() {
    let root = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let data_dir = root.path().join("seed");
    let content = write_random(&data_dir.join("movie.bin"), 300_000, 23);
    let meta = torrent(&data_dir.join("movie.bin"), 16384, vec![]);
    let (seed, _h) = rt.block_on(seeder(&meta, &data_dir));
    // The download page: the .torrent, and a file that is not one.
    let site = root.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("movie.torrent"), meta.as_bytes()).unwrap();
    std::fs::write(site.join("index.html"), "<html>not a torrent</html>").unwrap();
    let web = rt.block_on(WebServer::start(site));
    let url = format!("{}movie.torrent", web.url);

    let leech = loopback_home(&root.path().join("leech"));
    let info = ok(&leech, &["info", &url]);
    assert!(info.contains(&meta.info_hash.to_hex()), "{info}");
    assert!(
        !leech.join("torrents").exists(),
        "info keeps nothing: {info}"
    );
    let peer = seed.listen_addr().to_string();
    let out = run(&leech, &["start", &url, "-o", "dl", "--peer", &peer]);
    let said = downloaded(&out);
    let line = format!("movie.bin: fetched from {url}, saved as ");
    assert!(
        said.lines()
            .any(|l| l.starts_with(&line) && l.ends_with("torrents/movie.bin.torrent")),
        "{said}"
    );
    assert_eq!(std::fs::read(leech.join("dl/movie.bin")).unwrap(), content);
    let saved = leech.join("torrents/movie.bin.torrent");
    assert_eq!(std::fs::read(&saved).unwrap(), meta.as_bytes());
    let cfg = btorrent::config::Config::load(&leech.join("torrents.toml")).unwrap();
    assert_eq!(cfg.torrents.len(), 1);
    assert_eq!(cfg.torrents[0].info_hash, meta.info_hash.to_hex());
    assert_eq!(cfg.resolve(&cfg.torrents[0].file), saved);

    // What gives no torrent: one line each, and nothing more in torrents.toml.
    let listing = std::fs::read_to_string(leech.join("torrents.toml")).unwrap();
    for (bad, says) in [
        (format!("{}gone.torrent", web.url), "HTTP 404"),
        (
            format!("{}index.html", web.url),
            "index.html: not a valid .torrent",
        ),
        ("http://127.0.0.1:1/x.torrent".to_string(), "cannot fetch"),
    ] {
        let out = run(&leech, &["start", &bad, "-o", "dl2"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{bad}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    let out = run(&leech, &["edit", &url, "http://10.0.0.1/announce"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("edit takes a .torrent file here"), "{err}");
    assert_eq!(
        std::fs::read_to_string(leech.join("torrents.toml")).unwrap(),
        listing
    );
    assert!(!leech.join("dl2").exists());

    // The RPC takes one in `filename`, as Transmission does.
    let home = root.path().join("daemon");
    std::fs::create_dir_all(&home).unwrap();
    let d = RpcDaemon::start(&home, "");
    let mut c = d.client();
    let into = home.join("dl");
    let added = c.ok(
        "torrent-add",
        json!({"filename": url, "download-dir": into, "paused": true}),
    );
    assert_eq!(
        added["torrent-added"]["hashString"],
        meta.info_hash.to_hex()
    );
    let got = poll("the torrent listed", 30, || {
        let t = torrent_get(&mut c, json!(null), &["hashString", "name"]);
        (!t.is_empty()).then_some(t)
    });
    assert_eq!(got[0]["name"], "movie.bin");
    let v = c.call(
        "torrent-add",
        json!({"filename": format!("{}index.html", web.url)}),
    );
    assert!(v["result"].as_str().unwrap().contains("not bencode"), "{v}");
}
