//! The Transmission RPC given values of every JSON kind where it reads an argument: every key
//! `session-get` names, to `session-set`; every key of `torrent-set`, `torrent-add` and the other
//! torrent methods, with `ids` of every kind too. Each request gets an answer (`success`, or a
//! reason of one short line), the daemon keeps answering, the torrent it seeds is never lost, and
//! what it wrote to torrents.toml starts it again.

use serde_json::{json, Map, Value};

use crate::support::rpc::{torrent_get, Client, RpcDaemon};

/// A value of each JSON kind, and the edges of numbers and text.
fn values() -> Vec<Value> {
    vec![
        json!(null),
        json!(true),
        json!(false),
        json!(-1),
        json!(0),
        json!(1),
        json!(65536),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e300),
        json!(-0.5),
        json!(""),
        json!("x"),
        json!("-1"),
        json!("sub/dir"),
        json!("\u{1b}[2J\n"),
        json!("é".repeat(5000)),
        json!([]),
        json!([1, "a", null, -7]),
        json!({}),
        json!({"a": [[[{}]]]}),
    ]
}

/// Calls `method` with `args`: the answer is `success` or one short line saying why not.
fn answered(c: &mut Client, method: &str, args: Value) -> bool {
    let shown = args.to_string();
    // Shown with a failure: a request that gets no answer at all fails in the client.
    let short: String = shown.chars().take(200).collect();
    eprintln!("{method} {short}");
    let reply = c.call(method, args);
    let result = reply["result"]
        .as_str()
        .unwrap_or_else(|| panic!("{method} {shown}: no result: {reply}"));
    if result == "success" {
        return true;
    }
    assert!(
        result.chars().count() <= 1001 && !result.chars().any(char::is_control),
        "{method} {shown}: not one short line: {result:?}"
    );
    false
}

fn with(base: &Value, key: &str, value: &Value) -> Value {
    let mut args: Map<String, Value> = base.as_object().cloned().unwrap_or_default();
    args.insert(key.to_string(), value.clone());
    Value::Object(args)
}

const TORRENT_SET_KEYS: [&str; 27] = [
    "bandwidthPriority",
    "downloadLimit",
    "downloadLimited",
    "files-wanted",
    "files-unwanted",
    "group",
    "honorsSessionLimits",
    "labels",
    "location",
    "peer-limit",
    "priority-high",
    "priority-low",
    "priority-normal",
    "queuePosition",
    "seedIdleLimit",
    "seedIdleMode",
    "seedRatioLimit",
    "seedRatioMode",
    "sequential_download",
    "sequential_download_from_piece",
    "trackerAdd",
    "trackerList",
    "trackerRemove",
    "trackerReplace",
    "uploadLimit",
    "uploadLimited",
    "ids",
];

const TORRENT_ADD_KEYS: [&str; 14] = [
    "cookies",
    "download-dir",
    "filename",
    "metainfo",
    "paused",
    "peer-limit",
    "bandwidthPriority",
    "files-wanted",
    "files-unwanted",
    "priority-high",
    "priority-low",
    "priority-normal",
    "labels",
    "sequential_download",
];

/// Methods that take `ids` (and nothing they could lose data by).
const BY_IDS: [&str; 9] = [
    "torrent-start",
    "torrent-start-now",
    "torrent-stop",
    "torrent-verify",
    "torrent-reannounce",
    "queue-move-top",
    "queue-move-up",
    "queue-move-down",
    "queue-move-bottom",
];

#[test]
fn every_argument_of_every_kind_gets_an_answer_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (meta, _) = c.add_seeding(dir.path(), 61);
    let hash = meta.info_hash.to_hex();
    let one = json!({"ids": [1]});
    let mut calls = 0;
    let mut accepted = 0;
    // Each request from another loopback address: the RPC limits each address's rate.
    let mut call = |c: &mut Client, method: &str, args: Value| {
        c.source = Some(std::net::Ipv4Addr::new(127, 0, 1, 1 + (calls % 250) as u8));
        calls += 1;
        accepted += usize::from(answered(c, method, args));
    };

    let session = c.ok("session-get", json!({}));
    let session_keys: Vec<String> = session.as_object().unwrap().keys().cloned().collect();
    assert!(session_keys.len() > 40, "{session_keys:?}");
    for key in &session_keys {
        for v in values() {
            call(&mut c, "session-set", with(&json!({}), key, &v));
        }
    }
    for key in TORRENT_SET_KEYS {
        for v in values() {
            call(&mut c, "torrent-set", with(&one, key, &v));
        }
    }
    // A magnet link of a torrent nobody has: added by the first request whose other argument is
    // taken, a duplicate after that.
    let magnet = json!({"filename": format!("magnet:?xt=urn:btih:{}", "5a".repeat(20))});
    for key in TORRENT_ADD_KEYS {
        for v in values() {
            call(&mut c, "torrent-add", with(&magnet, key, &v));
        }
    }
    for v in values() {
        for method in BY_IDS {
            call(&mut c, method, json!({"ids": v}));
        }
        call(&mut c, "torrent-get", json!({"ids": v, "fields": ["id"]}));
        call(&mut c, "torrent-get", json!({"fields": v}));
        call(
            &mut c,
            "torrent-get",
            json!({"fields": ["id"], "format": v}),
        );
        call(
            &mut c,
            "torrent-rename-path",
            json!({"ids": [1], "path": v, "name": "y"}),
        );
        call(
            &mut c,
            "torrent-rename-path",
            json!({"ids": [1], "path": "s.bin", "name": v}),
        );
        call(
            &mut c,
            "torrent-set-location",
            json!({"ids": v, "location": "moved"}),
        );
        call(&mut c, "group-set", json!({"name": v}));
        call(&mut c, "group-set", json!({"name": "g", "uploadLimit": v}));
        call(&mut c, "group-get", json!({"group": v}));
        call(&mut c, "free-space", json!({"path": v}));
    }
    // `ids` that name no torrent (none, not all of them), with a switch that is not one.
    for v in [
        json!("x"),
        json!(-1),
        json!(0),
        json!(65536),
        json!([]),
        json!({}),
        json!([65536]),
    ] {
        call(
            &mut c,
            "torrent-remove",
            json!({"ids": v, "delete-local-data": "yes"}),
        );
    }
    for escape in ["../s.bin", "/etc/passwd", "..", "a/../../b"] {
        call(
            &mut c,
            "torrent-rename-path",
            json!({"ids": [1], "path": "s.bin", "name": escape}),
        );
    }
    eprintln!("{calls} requests, {accepted} accepted");
    assert!(accepted > 0 && accepted < calls, "{accepted} of {calls}");

    // Still answering, still holding the torrent; what it wrote starts it again.
    let held = |c: &mut Client| {
        let all = torrent_get(c, json!(null), &["hashString"]);
        all.iter().any(|t| t["hashString"] == hash.as_str())
    };
    assert!(held(&mut c), "the seeded torrent is gone");
    let d = d.restart();
    let mut c = d.client();
    assert!(held(&mut c), "the seeded torrent is gone after a restart");
}
