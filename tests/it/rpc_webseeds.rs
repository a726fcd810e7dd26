//! Transmission 4.2's `webseeds_ex` (in both forms of the RPC): each web seed of a torrent, whether
//! it sends now and at what rate, from the engine, for a daemon downloading from its web seed alone.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::rpc_jsonrpc::call;
use crate::support::rpc::RpcDaemon;
use crate::support::web_server::WebServer;

#[test]
fn webseeds_ex_shows_each_web_seed_sending_and_its_rate() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let size = 3 * btorrent::engine::web_seed::BATCH_BYTES + 12_345;
    crate::support::write_random(&served.join("big.bin"), size, 44);
    // The server runs on a runtime of its own, beside the daemon (a process).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let web = rt.block_on(WebServer::start(served.clone()));
    // Each answer held back: the daemon sees the seed sending for a while.
    web.served.delay_ms.store(400, Ordering::SeqCst);
    let opts = btorrent::metainfo::CreateOptions {
        piece_length: Some(64 * 1024),
        web_seeds: vec![web.url.clone()],
        ..Default::default()
    };
    let meta =
        btorrent::metainfo::create_torrent(&served.join("big.bin"), &opts, &|_, _| {}).unwrap();
    let hash = meta.info_hash.to_hex();

    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
    let into = dir.path().join("into");
    call(
        &mut c,
        "torrent_add",
        json!({"metainfo": b64, "download_dir": into.to_string_lossy()}),
    );
    let get = |c: &mut crate::support::rpc::Client| -> Value {
        let t = call(
            c,
            "torrent_get",
            json!({"ids": [hash], "fields": ["webseeds_ex", "webseeds", "percent_done", "webseeds_sending_to_us"]}),
        );
        t["torrents"][0].clone()
    };
    let start = Instant::now();
    let sending = loop {
        let t = get(&mut c);
        let w = &t["webseeds_ex"][0];
        if w["is_downloading"] == true && w["download_bytes_per_second"].as_u64() > Some(0) {
            break t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never sending: {t}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sending["webseeds"], json!([web.url]), "{sending}");
    assert_eq!(
        sending["webseeds_ex"][0]["url"],
        json!(web.url),
        "{sending}"
    );
    assert_eq!(sending["webseeds_sending_to_us"], 1, "{sending}");

    // Done: not sending any more.
    web.served.delay_ms.store(0, Ordering::SeqCst);
    let start = Instant::now();
    loop {
        let t = get(&mut c);
        if t["percent_done"] == 1.0 {
            assert_eq!(t["webseeds_ex"][0]["is_downloading"], false, "{t}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never done: {t}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The older form names it the same.
    let legacy = c.ok(
        "torrent-get",
        json!({"ids": [hash], "fields": ["webseeds_ex"]}),
    );
    let w = &legacy["torrents"][0]["webseeds_ex"][0];
    assert_eq!(
        (&w["url"], &w["is_downloading"]),
        (&json!(web.url), &json!(false)),
        "{legacy}"
    );
    assert!(w["download_bytes_per_second"].is_u64(), "{legacy}");
    assert_eq!(
        std::fs::read(into.join("big.bin")).unwrap(),
        std::fs::read(served.join("big.bin")).unwrap()
    );
}
