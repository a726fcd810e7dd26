//! What Transmission 4.1 (rpc-version 18) added, spoken as its clients speak it (JSON-RPC 2.0):
//! `sequential_download` as the session's default for added torrents and per torrent;
//! `sequential_download_from_piece` at add and later, checked against the torrent's pieces, read
//! from the engine, kept in torrents.toml and across a restart; `preferred_transports`; a
//! torrent's `wanted` as booleans.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::rpc_jsonrpc::{call, post};
use crate::support::rpc::{Client, RpcDaemon};

/// A torrent of `len` random bytes in `dir/name/d.bin`, 16 KiB pieces, as `torrent_add`'s
/// `metainfo`; the metainfo too.
fn torrent_of(dir: &std::path::Path, name: &str, len: usize) -> (btorrent::Metainfo, String) {
    let folder = dir.join(name);
    crate::support::write_random(&folder.join("d.bin"), len, len as u64);
    let meta = crate::support::torrent(&folder.join("d.bin"), 16 * 1024, vec![]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
    (meta, b64)
}

fn order(c: &mut Client, hash: &str) -> Value {
    let t = call(
        c,
        "torrent_get",
        json!({"ids": [hash], "fields": ["sequential_download", "sequential_download_from_piece", "wanted"]}),
    );
    t["torrents"][0].clone()
}

/// The `error_string` of a call that must be refused.
fn refused(c: &mut Client, method: &str, params: Value) -> String {
    let (_, v) = post(
        c,
        json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}),
    );
    assert_eq!(v["error"]["code"], -32602, "{method}: {v}");
    v["error"]["data"]["error_string"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn pieces_in_order_from_a_chosen_piece_are_set_at_add_later_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let s = call(
        &mut c,
        "session_get",
        json!({"fields": ["sequential_download", "preferred_transports", "tcp_enabled"]}),
    );
    assert_eq!(
        s,
        json!({"sequential_download": false, "preferred_transports": ["tcp", "utp"], "tcp_enabled": true})
    );

    // Added in order from piece 5 of 10.
    let (first, b64) = torrent_of(dir.path(), "first", 160 * 1024);
    let hash = first.info_hash.to_hex();
    let past = refused(
        &mut c,
        "torrent_add",
        json!({"metainfo": b64, "download_dir": dir.path().join("first"),
               "sequential_download": true, "sequential_download_from_piece": 10}),
    );
    assert!(
        past.contains("10 is past the pieces of d.bin (it has 10"),
        "{past}"
    );
    call(
        &mut c,
        "torrent_add",
        json!({"metainfo": b64, "download_dir": dir.path().join("first"),
               "sequential_download": true, "sequential_download_from_piece": 5}),
    );
    assert_eq!(
        order(&mut c, &hash),
        json!({"sequential_download": true, "sequential_download_from_piece": 5, "wanted": [true]})
    );
    // Changed later; a piece past the last, or not a piece index, changes nothing.
    for bad in [json!(10), json!(-1), json!("3")] {
        let why = refused(
            &mut c,
            "torrent_set",
            json!({"ids": [hash], "sequential_download_from_piece": bad}),
        );
        assert!(why.contains("sequential_download_from_piece"), "{why}");
    }
    call(
        &mut c,
        "torrent_set",
        json!({"ids": [hash], "sequential_download_from_piece": 7}),
    );
    assert_eq!(order(&mut c, &hash)["sequential_download_from_piece"], 7);
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    let files = &cfg.find(&first.info_hash).unwrap().files;
    assert_eq!((files.sequential, files.sequential_from), (true, 7));

    // The session's default: torrents added without saying are in order; one can say otherwise.
    call(
        &mut c,
        "session_set",
        json!({"sequential_download": true, "preferred_transports": ["utp", "tcp"]}),
    );
    let (second, b64) = torrent_of(dir.path(), "second", 64 * 1024);
    call(
        &mut c,
        "torrent_add",
        json!({"metainfo": b64, "download_dir": dir.path().join("second")}),
    );
    let (third, b64) = torrent_of(dir.path(), "third", 48 * 1024);
    call(
        &mut c,
        "torrent_add",
        json!({"metainfo": b64, "download_dir": dir.path().join("third"),
               "sequential_download": false}),
    );
    let in_order = |c: &mut Client, m: &btorrent::Metainfo| {
        order(c, &m.info_hash.to_hex())["sequential_download"].clone()
    };
    assert_eq!(in_order(&mut c, &second), true);
    assert_eq!(in_order(&mut c, &third), false);

    // The transports: uTP first now (the older key agrees; the keys new in 4.1 are snake_case in
    // the older form of the RPC too); TCP cannot be left out.
    let s = c.ok(
        "session-get",
        json!({"fields": ["utp-enabled", "preferred_transports", "sequential_download"]}),
    );
    assert_eq!(
        s,
        json!({"utp-enabled": true, "preferred_transports": ["utp", "tcp"], "sequential_download": true})
    );
    // Asked by the spelling btorrent took before 4.1, answered under it.
    let s = c.ok("session-get", json!({"fields": ["preferred-transports"]}));
    assert_eq!(s, json!({"preferred-transports": ["utp", "tcp"]}));
    let why = refused(
        &mut c,
        "session_set",
        json!({"preferred_transports": ["utp"]}),
    );
    assert!(why.contains("TCP cannot be left out"), "{why}");
    let why = refused(
        &mut c,
        "session_set",
        json!({"preferred_transports": ["tcp", "quic"]}),
    );
    assert!(why.contains("must list \"tcp\" and \"utp\""), "{why}");
    call(
        &mut c,
        "session_set",
        json!({"preferred_transports": ["tcp"]}),
    );
    let s = call(
        &mut c,
        "session_get",
        json!({"fields": ["utp_enabled", "preferred_transports"]}),
    );
    assert_eq!(
        s,
        json!({"utp_enabled": false, "preferred_transports": ["tcp"]})
    );

    // All of it kept across a restart.
    let d = d.restart();
    let mut c = d.client();
    assert_eq!(
        order(&mut c, &hash),
        json!({"sequential_download": true, "sequential_download_from_piece": 7, "wanted": [true]})
    );
    let s = call(
        &mut c,
        "session_get",
        json!({"fields": ["sequential_download", "preferred_transports"]}),
    );
    assert_eq!(
        s,
        json!({"sequential_download": true, "preferred_transports": ["tcp"]})
    );
}
