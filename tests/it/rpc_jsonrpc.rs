//! Transmission 4.1's RPC: JSON-RPC 2.0 with snake_case names, as its web client sends it (the
//! requests below are shaped like those of its `remote.js`), answered with `result` or `error`,
//! batches and notifications; and what 4.x's web clients need of `session-get` (a version whose
//! part in parentheses is hexadecimal) and of the trackers (`trackerList`).

use serde_json::{json, Value};

use crate::support::rpc::{torrent_get, Client, RpcDaemon};

/// Posts a JSON-RPC body; the HTTP status and the parsed answer (`Null` for an empty body).
pub(crate) fn post(c: &mut Client, body: Value) -> (u16, Value) {
    let r = c.post_raw(body.to_string().as_bytes());
    let v = if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    };
    (r.status, v)
}

/// Calls `method` with `params` (id `webui`, as the web client numbers its requests); the
/// `result`, which must be there.
pub(crate) fn call(c: &mut Client, method: &str, params: Value) -> Value {
    let (status, v) = post(
        c,
        json!({"jsonrpc": "2.0", "method": method, "params": params, "id": "webui"}),
    );
    assert_eq!(status, 200, "{method}: {v}");
    assert_eq!(
        (&v["jsonrpc"], &v["id"]),
        (&json!("2.0"), &json!("webui")),
        "{v}"
    );
    assert!(v.get("error").is_none(), "{method}: {v}");
    v["result"].clone()
}

#[test]
fn json_rpc_requests_in_snake_case_are_answered_in_kind() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (meta, _) = c.add_seeding(dir.path(), 5);

    // session_get: every key snake_case; the version as 4.x's web clients parse it.
    let s = call(&mut c, "session_get", json!({}));
    for key in [
        "peer_port",
        "download_dir",
        "rpc_version",
        "speed_limit_down_enabled",
        "alt_speed_enabled",
    ] {
        assert!(s.get(key).is_some(), "{key} missing: {s}");
    }
    assert!(
        s.get("peer-port").is_none() && s.get("downloadDir").is_none(),
        "{s}"
    );
    assert_eq!(
        s["encryption"], "allowed",
        "tolerated is called allowed now"
    );
    assert_eq!(
        (&s["rpc_version"], &s["rpc_version_semver"]),
        (&json!(19), &json!("6.0.1")),
        "{s}"
    );
    let version = s["version"].as_str().unwrap();
    let (number, rest) = version.split_once(" (").unwrap();
    let build = rest.split_once(')').unwrap().0;
    assert!(
        number == "3.00" && !build.is_empty() && build.chars().all(|c| c.is_ascii_hexdigit()),
        "{version}"
    );
    let some = call(
        &mut c,
        "session_get",
        json!({"fields": ["peer_port", "cache_size_mib"]}),
    );
    assert_eq!(
        some.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["cache_size_mib", "peer_port"]
    );

    // torrent_get as the web client asks it: `table`, `recently_active`.
    let t = call(
        &mut c,
        "torrent_get",
        json!({"fields": ["id", "hash_string", "percent_done", "download_dir", "peers_from", "file_count"],
               "format": "table", "ids": "recently_active"}),
    );
    let rows = t["torrents"].as_array().unwrap();
    assert_eq!(
        rows[0],
        json!([
            "id",
            "hash_string",
            "percent_done",
            "download_dir",
            "peers_from",
            "file_count"
        ]),
        "{t}"
    );
    let row = rows[1].as_array().unwrap();
    assert_eq!(row[1], meta.info_hash.to_hex(), "{t}");
    assert_eq!(row[2], 1.0, "{t}");
    assert!(row[4].get("from_tracker").is_some(), "{t}");
    assert!(t.get("removed").is_some(), "{t}");
    let objects = call(
        &mut c,
        "torrent_get",
        json!({"fields": ["id", "upload_limit", "upload_limited", "tracker_stats", "files"]}),
    );
    let one = &objects["torrents"][0];
    assert_eq!(one["upload_limited"], false, "{objects}");
    let file = &one["files"][0];
    assert_eq!(
        (
            &file["bytes_completed"],
            &file["begin_piece"],
            &file["end_piece"]
        ),
        (&json!(64 * 1024), &json!(0), &json!(4)),
        "{objects}"
    );

    // torrent_set in snake_case: kept, and seen through the old names too.
    call(
        &mut c,
        "torrent_set",
        json!({"ids": [meta.info_hash.to_hex()], "upload_limit": 40, "upload_limited": true,
               "peer_limit": 9, "bandwidth_priority": 1}),
    );
    let old = torrent_get(
        &mut c,
        json!([meta.info_hash.to_hex()]),
        &[
            "uploadLimit",
            "uploadLimited",
            "maxConnectedPeers",
            "bandwidthPriority",
        ],
    );
    assert_eq!(
        (
            &old[0]["uploadLimit"],
            &old[0]["uploadLimited"],
            &old[0]["bandwidthPriority"]
        ),
        (&json!(40), &json!(true), &json!(1)),
        "{old:?}"
    );
    // session_set: the speed limit, in snake_case.
    call(
        &mut c,
        "session_set",
        json!({"speed_limit_down": 300, "speed_limit_down_enabled": true}),
    );
    let s = c.ok(
        "session-get",
        json!({"fields": ["speed-limit-down", "speed-limit-down-enabled"]}),
    );
    assert_eq!(s["speed-limit-down"], 300, "{s}");

    // Errors: an unknown method, refused parameters, a request that is not JSON-RPC 2.0.
    let (_, v) = post(
        &mut c,
        json!({"jsonrpc": "2.0", "method": "no_such_thing", "id": 3}),
    );
    assert_eq!(
        (v["error"]["code"].as_i64(), &v["id"]),
        (Some(-32601), &json!(3)),
        "{v}"
    );
    let (_, v) = post(
        &mut c,
        json!({"jsonrpc": "2.0", "method": "torrent_set", "params": {"ids": [1], "bandwidth_priority": 5}, "id": 4}),
    );
    assert_eq!(v["error"]["code"], -32602, "{v}");
    assert!(
        v["error"]["data"]["error_string"]
            .as_str()
            .unwrap()
            .contains("bandwidthPriority must be -1"),
        "{v}"
    );
    let (_, v) = post(
        &mut c,
        json!({"jsonrpc": "1.0", "method": "session_get", "id": 5}),
    );
    assert_eq!(
        (v["error"]["code"].as_i64(), &v["id"]),
        (Some(-32600), &json!(5)),
        "{v}"
    );
    let r = c.post_raw(br#"{"jsonrpc": "2.0", "method": "#);
    assert_eq!(r.json()["error"]["code"], -32700, "{r:?}");

    // A batch: one answer per request, in order, none for the notification (which is carried
    // out); a batch of notifications alone is answered with nothing at all.
    let (status, v) = post(
        &mut c,
        json!([
            {"jsonrpc": "2.0", "method": "session_stats", "id": 1},
            {"jsonrpc": "2.0", "method": "torrent_stop", "params": {"ids": [meta.info_hash.to_hex()]}},
            {"jsonrpc": "2.0", "method": "free_space", "params": {"path": dir.path()}, "id": 2},
        ]),
    );
    assert_eq!(status, 200);
    let answers = v.as_array().unwrap();
    assert_eq!(answers.len(), 2, "{v}");
    assert!(
        answers[0]["result"].get("active_torrent_count").is_some(),
        "{v}"
    );
    assert!(answers[1]["result"].get("size_bytes").is_some(), "{v}");
    let stopped = torrent_get(&mut c, json!([meta.info_hash.to_hex()]), &["status"]);
    assert_eq!(stopped[0]["status"], 0, "the notification stopped it");
    let (status, v) = post(
        &mut c,
        json!([{"jsonrpc": "2.0", "method": "torrent_start", "params": {"ids": [meta.info_hash.to_hex()]}}]),
    );
    assert_eq!((status, v), (204, Value::Null));
    let (_, v) = post(&mut c, json!([]));
    assert_eq!(v["error"]["code"], -32600, "{v}");

    // torrent_add and torrent_remove as the web client sends them: `download_dir`, and
    // `delete_local_data`, which delete the data added.
    use base64::Engine as _;
    let other = dir.path().join("other");
    crate::support::write_random(&other.join("o.bin"), 40_000, 9);
    let second = crate::support::torrent(&other.join("o.bin"), 16 * 1024, vec![]);
    let added = call(
        &mut c,
        "torrent_add",
        json!({"metainfo": base64::engine::general_purpose::STANDARD.encode(second.as_bytes()),
               "download_dir": other, "paused": false}),
    );
    assert_eq!(
        added["torrent_added"]["hash_string"],
        second.info_hash.to_hex(),
        "{added}"
    );
    crate::support::rpc::poll("the second torrent to seed", 30, || {
        let t = torrent_get(&mut c, json!([second.info_hash.to_hex()]), &["status"]);
        (t[0]["status"] == 6).then_some(())
    });
    call(
        &mut c,
        "torrent_remove",
        json!({"ids": [second.info_hash.to_hex()], "delete_local_data": true}),
    );
    crate::support::rpc::poll("the data deleted", 30, || {
        (!other.join("o.bin").exists()).then_some(())
    });

    // The older requests are answered as before.
    let v = c.call("session-get", json!({"fields": ["peer-port"]}));
    assert!(v["arguments"].get("peer-port").is_some(), "{v}");
}

/// `trackerList`: the trackers as text, one announce URL per line and a blank line between tiers,
/// read and replaced (Transmission 4's way, beside 3.00's `trackerAdd`/`Remove`/`Replace`).
#[test]
fn the_tracker_list_is_read_and_replaced_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (meta, _) = c.add_seeding(dir.path(), 6);
    let id = json!([meta.info_hash.to_hex()]);
    let list =
        "http://127.0.0.1:9/announce\nhttp://127.0.0.1:10/announce\n\nudp://127.0.0.1:11/announce";
    c.ok("torrent-set", json!({"ids": id, "trackerList": list}));
    let t = torrent_get(&mut c, id.clone(), &["trackerList", "trackers"]);
    assert_eq!(t[0]["trackerList"], list, "{t:?}");
    let tiers: Vec<_> = t[0]["trackers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tier"].as_i64().unwrap())
        .collect();
    assert_eq!(tiers, [0, 0, 1]);
    // Kept in the .torrent, so a restart keeps them.
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    let file = cfg.resolve(&cfg.find(&meta.info_hash).unwrap().file);
    let kept = btorrent::Metainfo::load(&file).unwrap();
    assert_eq!(kept.tracker_tiers().len(), 2);
    assert_eq!(kept.info_hash, meta.info_hash, "the info-hash stays");
    // In snake_case over JSON-RPC too.
    let v = call(
        &mut c,
        "torrent_get",
        json!({"ids": id, "fields": ["tracker_list"]}),
    );
    assert_eq!(v["torrents"][0]["tracker_list"], list, "{v}");
    let v = c.call(
        "torrent-set",
        json!({"ids": id, "trackerList": "http://a/announce", "trackerAdd": ["http://b/announce"]}),
    );
    assert!(v["result"].as_str().unwrap().contains("whole list"), "{v}");
    c.ok("torrent-set", json!({"ids": id, "trackerList": ""}));
    let t = torrent_get(&mut c, id, &["trackerList"]);
    assert_eq!(t[0]["trackerList"], "", "{t:?}");
}
