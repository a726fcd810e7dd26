//! Our own page at `/` on `rpc_bind`: its three files come from the binary behind the RPC's guard
//! (whitelist 403, basic auth 401), changes go through the RPC's session-id handshake (409), the
//! fields its script asks torrent-get for all exist, and `/page/status` carries the embedded
//! tracker's counters. The page itself is driven in Chromium in tests/interop/page_interop.rs.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::rpc::{managed_state, poll, request, torrent_get, RpcDaemon};
use crate::support::{self, write_random};

const FILES: [(&str, &str); 3] = [
    ("/", "text/html"),
    ("/page.js", "text/javascript"),
    ("/page.css", "text/css"),
];

/// The `FIELDS` list of the page's script.
fn page_fields() -> Vec<String> {
    let js = include_str!("../../src/rpc/page/page.js");
    let list = js
        .split_once("const FIELDS = [")
        .and_then(|(_, rest)| rest.split_once("];"))
        .expect("FIELDS in page.js")
        .0;
    list.split(',')
        .map(|f| f.trim().trim_matches('\'').to_string())
        .filter(|f| !f.is_empty())
        .collect()
}

#[test]
fn the_page_is_served_from_the_binary_behind_the_guard() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(
        dir.path(),
        "rpc_username = \"alice\"\nrpc_password = \"s3cret\"\n",
    );
    let auth = d.client().with_auth("alice", "s3cret").auth.unwrap();
    // Without credentials every part of the page is refused, asking for basic auth.
    for (path, _) in FILES.iter().chain(&[("/page/status", "")]) {
        let r = request(d.port, "GET", path, &[], b"");
        assert_eq!(r.status, 401, "{path}: {r:?}");
        assert!(r.header("WWW-Authenticate").is_some(), "{path}: {r:?}");
    }
    // With them: the files, each with its type, our policy, and nothing loaded from elsewhere.
    for (path, ctype) in FILES {
        let r = request(d.port, "GET", path, &[("Authorization", &auth)], b"");
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert!(
            r.header("content-type").unwrap().starts_with(ctype),
            "{r:?}"
        );
        assert!(
            r.header("content-security-policy")
                .is_some_and(|p| p.starts_with("default-src 'self'")),
            "{path}: {r:?}"
        );
        assert!(
            !r.body.contains("http://") && !r.body.contains("https://"),
            "{path}"
        );
    }
    let page = request(d.port, "GET", "/", &[("Authorization", &auth)], b"").body;
    assert!(page.contains("src=\"/page.js\"") && page.contains("href=\"/page.css\""));
    assert!(
        page.contains("<h2 id=\"keys-h\">Keys</h2>"),
        "the keys are documented"
    );
    // No tracker runs here.
    let r = request(
        d.port,
        "GET",
        "/page/status",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json(), json!({"tracker": null}));
    // The page changes nothing by itself: a post there is not a route, and the RPC it posts to
    // wants the session id even with the password (what keeps other sites' pages out).
    let r = request(d.port, "POST", "/", &[("Authorization", &auth)], b"{}");
    assert_eq!(r.status, 405, "{r:?}");
    let stop = br#"{"method":"torrent-stop","arguments":{}}"#;
    let r = request(
        d.port,
        "POST",
        "/transmission/rpc",
        &[("Authorization", &auth)],
        stop,
    );
    assert_eq!(r.status, 409, "{r:?}");
    assert!(r.header("X-Transmission-Session-Id").is_some());
    drop(d);

    // An address left out of the whitelist gets none of it.
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "rpc_whitelist = [\"10.0.0.0/8\"]\n");
    for (path, _) in FILES.iter().chain(&[("/page/status", "")]) {
        let r = request(d.port, "GET", path, &[], b"");
        assert_eq!(r.status, 403, "{path}: {r:?}");
        assert!(
            r.body.contains("127.0.0.1 is not in rpc_whitelist"),
            "{r:?}"
        );
    }
}

#[test]
fn the_pages_fields_exist_and_its_status_carries_the_trackers_counters() {
    let dir = tempfile::tempdir().unwrap();
    let tport = support::free_port();
    let d = RpcDaemon::start(
        dir.path(),
        &format!("tracker_bind = \"127.0.0.1:{tport}\"\n"),
    );
    let mut c = d.client();
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    write_random(&seed.join("t.bin"), 40_000, 4);
    let meta = support::torrent(
        &seed.join("t.bin"),
        16 * 1024,
        vec![format!("http://127.0.0.1:{tport}/announce")],
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
    c.ok(
        "torrent-add",
        json!({"metainfo": b64, "download-dir": seed}),
    );
    let hash = meta.info_hash.to_hex();
    poll("the torrent to seed", 30, || {
        (managed_state(dir.path(), &hash).as_deref() == Some("seeding")).then_some(())
    });

    // Every field the page shows is one torrent-get gives.
    let fields = page_fields();
    assert!(
        fields.len() >= 10 && fields.contains(&"percentDone".to_string()),
        "{fields:?}"
    );
    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    let t = torrent_get(&mut c, json!(null), &refs).pop().unwrap();
    for f in &fields {
        assert!(t.get(f).is_some(), "torrent-get has no {f}: {t}");
    }
    assert_eq!(t["hashString"], hash.as_str());

    // /page/status: the embedded tracker's counters, our announce among them.
    let st: Value = poll("the tracker to count our announce", 30, || {
        let r = request(d.port, "GET", "/page/status", &[], b"");
        assert_eq!(r.status, 200, "{r:?}");
        let v = r.json()["tracker"].clone();
        (v["seeders"] == 1).then_some(v)
    });
    assert_eq!(st["swarms"], 1, "{st}");
    assert!(st["announces"].as_u64().unwrap() >= 1, "{st}");
    assert_eq!(st["failures"], 0, "{st}");
}
