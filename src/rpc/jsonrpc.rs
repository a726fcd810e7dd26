//! JSON-RPC 2.0 with snake_case names: the RPC of Transmission 4.1 and later (its web client, and
//! clients written for `rpc-version-semver` 6). A request `{"jsonrpc": "2.0", "method":
//! "torrent_get", "params": {...}, "id": 1}` is answered `{"jsonrpc": "2.0", "result": {...},
//! "id": 1}`, or with `"error": {"code", "message", "data": {"error_string"}}` in place of
//! `result`; a batch (an array of requests) gets an array of answers; a notification (no `id`)
//! is carried out and gets none (HTTP 204 when nothing is left to answer), as the JSON-RPC
//! specification says.
//!
//! The methods speak the older names (Transmission 3 and 4.0's kebab-case and camelCase, which
//! the requests without `jsonrpc` keep using), so a request is translated into them and its
//! answer back:
//!
//! - the method: `torrent_get` is `torrent-get` (every method is kebab-case there);
//! - the top-level `params` keys: camelCase in `torrent-get` and `torrent-set`, kebab-case in the
//!   other methods, but for the keys [`KEBAB_IN_TORRENT_METHODS`] and [`CAMEL_ELSEWHERE`] that
//!   went the other way, and those new in 4.1 ([`SNAKE_IN_BOTH`]), snake_case there too;
//!   `cache_size_mib` is `cache-size-mb`;
//! - the names listed in `fields` (`torrent-get`, `session-get`), as the keys;
//! - values: `ids` `"recently_active"` is `"recently-active"`, `encryption` `"allowed"` is
//!   `"tolerated"`; a torrent's `wanted` is an array of booleans here, of 0 and 1 there;
//! - every key of the answer, at every depth, made snake_case (`isUTP` is `is_utp`,
//!   `peer-limit-global` is `peer_limit_global`), and the header row of a `table` answer too.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::Rpc;

/// The request is not valid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// The request is not a JSON-RPC 2.0 request object.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The method refused its parameters (the reason in `data.error_string`).
pub const INVALID_PARAMS: i64 = -32602;

/// Keys of `torrent-get` and `torrent-set` that kept kebab-case among their camelCase ones.
pub const KEBAB_IN_TORRENT_METHODS: [&str; 8] = [
    "peer-limit",
    "files-wanted",
    "files-unwanted",
    "priority-high",
    "priority-low",
    "priority-normal",
    "file-count",
    "primary-mime-type",
];

/// Keys of the other methods that were camelCase among their kebab-case ones.
pub const CAMEL_ELSEWHERE: [&str; 4] = [
    "honorsSessionLimits",
    "seedRatioLimit",
    "seedRatioLimited",
    "bandwidthPriority",
];

/// Keys that came with Transmission 4.1 (rpc-version 18) and later (4.2's `webseeds_ex`):
/// snake_case in both forms of the RPC, as Transmission itself names them in the older form too.
pub const SNAKE_IN_BOTH: [&str; 11] = [
    "sequential_download",
    "sequential_download_from_piece",
    "preferred_transports",
    "ip_protocol",
    "begin_piece",
    "end_piece",
    "downloader_count",
    "peer_id",
    "bytes_to_client",
    "bytes_to_peer",
    "webseeds_ex",
];

/// Whether a request body (already parsed) is JSON-RPC 2.0: an object with a `jsonrpc` member,
/// or a batch.
pub fn is_jsonrpc(body: &Value) -> bool {
    match body {
        Value::Object(m) => m.contains_key("jsonrpc"),
        Value::Array(_) => true,
        _ => false,
    }
}

/// The answer to a JSON-RPC body: one answer, an array of them, or `None` when every request was
/// a notification.
pub async fn answer(rpc: &Arc<Rpc>, body: &Value, local: std::net::SocketAddr) -> Option<Value> {
    match body {
        Value::Array(batch) if batch.is_empty() => Some(error(
            Value::Null,
            INVALID_REQUEST,
            "Invalid Request",
            "a batch holds one request or more",
        )),
        Value::Array(batch) => {
            let mut out = Vec::with_capacity(batch.len());
            for req in batch {
                out.extend(one(rpc, req, local).await);
            }
            (!out.is_empty()).then_some(Value::Array(out))
        }
        req => one(rpc, req, local).await,
    }
}

/// The error answer for a body that is not JSON at all.
pub fn parse_error(why: &str) -> Value {
    error(Value::Null, PARSE_ERROR, "Parse error", why)
}

/// One request: carried out, answered unless it is a notification.
async fn one(rpc: &Arc<Rpc>, req: &Value, local: std::net::SocketAddr) -> Option<Value> {
    let invalid = |id: Value, why: &str| Some(error(id, INVALID_REQUEST, "Invalid Request", why));
    let Some(req) = req.as_object() else {
        return invalid(Value::Null, "a request must be an object");
    };
    let id = req.get("id").cloned();
    if let Some(bad) = id
        .as_ref()
        .filter(|v| !(v.is_string() || v.is_number() || v.is_null()))
    {
        return invalid(
            Value::Null,
            &format!("id must be a string, a number or null, not {bad}"),
        );
    }
    let answer_id = id.clone().unwrap_or(Value::Null);
    if req.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(answer_id, "jsonrpc must be \"2.0\"");
    }
    let Some(method) = req.get("method").and_then(Value::as_str) else {
        return invalid(answer_id, "method must be a string");
    };
    let empty = Map::new();
    let params = match req.get("params") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(p)) => p,
        Some(other) => {
            let why = format!("params must be an object, not {other}");
            return id.map(|id| error(id, INVALID_PARAMS, "Invalid params", &why));
        }
    };
    let legacy = method.replace('_', "-");
    let args = legacy_params(&legacy, params);
    let outcome = rpc.call(&legacy, &args, local).await;
    let id = id?;
    Some(match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "result": snake_result(result), "id": id}),
        Err(e) if e.starts_with(super::UNKNOWN_METHOD) => {
            error(id, METHOD_NOT_FOUND, "Method not found", &e)
        }
        Err(e) => error(id, INVALID_PARAMS, "Invalid params", &e),
    })
}

/// An error answer. `data` carries the reason as `error_string`, and as `errorString` too, which
/// Transmission 4.1's web client reads.
fn error(id: Value, code: i64, message: &str, why: &str) -> Value {
    json!({
        "jsonrpc": "2.0",
        "error": {
            "code": code,
            "message": message,
            "data": {"error_string": why, "errorString": why},
        },
        "id": id,
    })
}

/// Whether `method` (its older name) spells its keys in camelCase.
fn camel_method(method: &str) -> bool {
    matches!(method, "torrent-get" | "torrent-set")
}

/// The older name of snake_case `key` in `method`'s parameters.
pub fn legacy_key(method: &str, key: &str) -> String {
    if key == "cache_size_mib" {
        return "cache-size-mb".into();
    }
    if !key.contains('_') || SNAKE_IN_BOTH.contains(&key) {
        return key.into();
    }
    let (kebab, camel) = (kebab_of(key), camel_of(key));
    if camel_method(method) {
        if KEBAB_IN_TORRENT_METHODS.contains(&kebab.as_str()) {
            kebab
        } else {
            camel
        }
    } else if CAMEL_ELSEWHERE.contains(&camel.as_str()) {
        camel
    } else {
        kebab
    }
}

/// `method`'s parameters under their older names, with the values that changed spelling.
fn legacy_params(method: &str, params: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::with_capacity(params.len());
    for (key, value) in params {
        let value = match (key.as_str(), value) {
            ("fields", Value::Array(names)) => Value::Array(
                names
                    .iter()
                    .map(|n| match n.as_str() {
                        Some(s) => Value::from(legacy_key(method, s)),
                        None => n.clone(),
                    })
                    .collect(),
            ),
            ("ids", Value::String(s)) => Value::from(s.replace('_', "-")),
            ("encryption", Value::String(s)) if s == "allowed" => Value::from("tolerated"),
            _ => value.clone(),
        };
        out.insert(legacy_key(method, key), value);
    }
    out
}

/// `download_dir` as `downloadDir`.
fn camel_of(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `download_dir` as `download-dir`.
fn kebab_of(snake: &str) -> String {
    snake.replace('_', "-")
}

/// An older name made snake_case: `peer-limit-global` is `peer_limit_global`, `percentDone`
/// `percent_done`, `isUTP` `is_utp` (a run of capitals is one word), `cache-size-mb`
/// `cache_size_mib`.
pub fn snake_of(name: &str) -> String {
    if name == "cache-size-mb" {
        return "cache_size_mib".into();
    }
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c == '-' {
            out.push('_');
        } else if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let after_word = prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
            let ends_acronym = prev.is_some_and(|p| p.is_ascii_uppercase()) && next_lower;
            if after_word || ends_acronym {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A method's answer with every key made snake_case, and the values that changed spelling.
fn snake_result(result: Map<String, Value>) -> Value {
    let mut v = snake_keys(Value::Object(result));
    if let Some(m) = v.as_object_mut() {
        if m.get("encryption").and_then(Value::as_str) == Some("tolerated") {
            m.insert("encryption".into(), "allowed".into());
        }
        if let Some(Value::Array(rows)) = m.get_mut("torrents") {
            // A `table` answer: its first row names the fields.
            let mut wanted_column = None;
            if let Some(Value::Array(header)) = rows.first_mut() {
                for (i, name) in header.iter_mut().enumerate() {
                    if let Some(s) = name.as_str() {
                        if s == "wanted" {
                            wanted_column = Some(i);
                        }
                        *name = Value::from(snake_of(s));
                    }
                }
            }
            for row in rows.iter_mut() {
                let wanted = match (row, wanted_column) {
                    (Value::Object(t), _) => t.get_mut("wanted"),
                    (Value::Array(cells), Some(i)) => cells.get_mut(i),
                    _ => None,
                };
                if let Some(Value::Array(flags)) = wanted {
                    for f in flags.iter_mut().filter(|f| f.is_number()) {
                        *f = Value::from(f.as_i64() != Some(0));
                    }
                }
            }
        }
    }
    v
}

/// `v` with the keys of every object in it made snake_case.
fn snake_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (snake_of(&k), snake_keys(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(snake_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_names_are_made_snake_case() {
        for (old, new) in [
            ("percentDone", "percent_done"),
            ("peer-limit-global", "peer_limit_global"),
            ("isUTP", "is_utp"),
            ("fromDht", "from_dht"),
            ("hashString", "hash_string"),
            ("rpc-version-semver", "rpc_version_semver"),
            ("cache-size-mb", "cache_size_mib"),
            ("id", "id"),
            ("webseedsSendingToUs", "webseeds_sending_to_us"),
            ("lastAnnounceTimedOut", "last_announce_timed_out"),
        ] {
            assert_eq!(snake_of(old), new, "{old}");
        }
    }

    #[test]
    fn parameters_take_the_spelling_of_their_method() {
        for (method, key, old) in [
            ("torrent-get", "download_dir", "downloadDir"),
            ("torrent-add", "download_dir", "download-dir"),
            ("session-set", "download_dir", "download-dir"),
            ("torrent-set", "peer_limit", "peer-limit"),
            ("torrent-set", "files_unwanted", "files-unwanted"),
            ("torrent-set", "upload_limited", "uploadLimited"),
            ("torrent-set", "bandwidth_priority", "bandwidthPriority"),
            ("torrent-add", "bandwidth_priority", "bandwidthPriority"),
            ("session-set", "seed_ratio_limit", "seedRatioLimit"),
            (
                "session-set",
                "speed_limit_down_enabled",
                "speed-limit-down-enabled",
            ),
            ("session-set", "cache_size_mib", "cache-size-mb"),
            ("session-set", "sequential_download", "sequential_download"),
            (
                "torrent-set",
                "sequential_download_from_piece",
                "sequential_download_from_piece",
            ),
            (
                "session-set",
                "preferred_transports",
                "preferred_transports",
            ),
            ("port-test", "ip_protocol", "ip_protocol"),
            ("torrent-remove", "delete_local_data", "delete-local-data"),
            ("torrent-set-location", "move", "move"),
        ] {
            assert_eq!(legacy_key(method, key), old, "{method} {key}");
        }
        let p = legacy_params(
            "torrent-get",
            json!({"ids": "recently_active", "fields": ["id", "percent_done", "file_count"]})
                .as_object()
                .unwrap(),
        );
        assert_eq!(p["ids"], "recently-active");
        assert_eq!(p["fields"], json!(["id", "percentDone", "file-count"]));
        let p = legacy_params(
            "session-set",
            json!({"encryption": "allowed"}).as_object().unwrap(),
        );
        assert_eq!(p["encryption"], "tolerated");
    }

    #[test]
    fn answers_are_snake_case_at_every_depth() {
        let table =
            json!({"torrents": [["id", "percentDone", "wanted"], [1, 0.5, [1, 0]]], "removed": []});
        let v = snake_result(table.as_object().unwrap().clone());
        assert_eq!(
            v,
            json!({"torrents": [["id", "percent_done", "wanted"], [1, 0.5, [true, false]]], "removed": []})
        );
        let objects = json!({"torrents": [{"peersFrom": {"fromDht": 1}, "peers": [{"isUTP": true}], "wanted": [0, 1]}]});
        let v = snake_result(objects.as_object().unwrap().clone());
        assert_eq!(
            v,
            json!({"torrents": [{"peers_from": {"from_dht": 1}, "peers": [{"is_utp": true}], "wanted": [false, true]}]})
        );
        let s = snake_result(
            json!({"encryption": "tolerated", "units": {"speed-units": ["kB/s"]}})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(
            s,
            json!({"encryption": "allowed", "units": {"speed_units": ["kB/s"]}})
        );
    }
}
