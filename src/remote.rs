//! Another machine's Transmission RPC, as a client: any call ([`call`]; scripts' `rpc`), a
//! torrent handed to that machine ([`push`]: its .torrent sent as `torrent-add` with the metainfo),
//! which adds it and downloads it from this machine and the rest of the swarm, and a torrent that
//! machine has found by name ([`find`]: its magnet link with that machine as a peer, what `b-pull`
//! downloads). The other side is a
//! btorrent daemon with `rpc_bind`, a transmission-daemon, or anything else that speaks the RPC.
//!
//! The client side of the RPC's rules: the first request goes without a session id, a 409 answer
//! gives one (`X-Transmission-Session-Id`) and the request is made again with it; a user name and
//! password in the URL (`http://me:secret@nas:9091`) go as HTTP basic auth, never in the request
//! line; a URL without a path means the RPC's own, `/transmission/rpc`. Each request is bounded in
//! time and its answer in size.

use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use serde_json::{json, Value};

/// The RPC's path when the URL names none.
pub const DEFAULT_RPC_PATH: &str = "/transmission/rpc";

/// Most bytes of an answer read (a `torrent-add` answer is a few hundred bytes; a `torrent-get`
/// of every field of thousands of torrents, megabytes).
const MAX_ANSWER: usize = 64 << 20;

/// Session-id handshakes tried before giving up (a server that keeps answering 409).
const ATTEMPTS: usize = 3;

/// What to ask of the other side beside the torrent.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Added paused there.
    pub paused: bool,
    /// The folder it downloads into there (`download-dir`); `None`: its own default.
    pub download_dir: Option<String>,
    /// Labels to file it under there (RPC `labels`).
    pub labels: Vec<String>,
}

/// What the other side said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The URL asked, without its credentials.
    pub url: String,
    /// False when it had the torrent already (`torrent-duplicate`).
    pub added: bool,
    /// Its id there, its name and its info-hash as it says them.
    pub id: Option<i64>,
    pub name: String,
    pub info_hash: String,
}

/// The RPC address `url` names: `http://` or `https://` only, the RPC's own path when it names
/// none. Returns the URL to ask (without credentials) and the credentials it held, if any.
pub fn rpc_url(url: &str) -> Result<(reqwest::Url, Option<(String, String)>)> {
    let with_scheme = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let mut u = reqwest::Url::parse(&with_scheme)
        .with_context(|| format!("{url} is not an RPC address (e.g. http://host:9091)"))?;
    if !matches!(u.scheme(), "http" | "https") {
        bail!("{url}: the RPC is reached over http:// or https://");
    }
    if u.host_str().is_none_or(str::is_empty) {
        bail!("{url} names no host");
    }
    let credentials = (!u.username().is_empty()).then(|| {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        (decode(u.username()), decode(u.password().unwrap_or("")))
    });
    // Cannot fail for an http(s) URL with a host.
    let _ = u.set_username("");
    let _ = u.set_password(None);
    if u.path() == "/" || u.path().is_empty() {
        u.set_path(DEFAULT_RPC_PATH);
    }
    Ok((u, credentials))
}

/// Calls `method` with `arguments` on the RPC at `url`, each request bounded by `timeout`;
/// returns the URL asked (without credentials) and the answer's `arguments`. An answer whose
/// `result` is not `success` is an error with the server's words.
pub async fn call(
    url: &str,
    method: &str,
    arguments: Value,
    timeout: Duration,
) -> Result<(String, Value)> {
    let (u, credentials) = rpc_url(url)?;
    let shown = u.to_string();
    let body = json!({ "method": method, "arguments": arguments }).to_string();
    let client = reqwest::Client::builder().timeout(timeout).build()?;
    let mut session_id: Option<String> = None;
    for _ in 0..ATTEMPTS {
        let mut req = client
            .post(u.clone())
            .header("Content-Type", "application/json")
            .body(body.clone());
        if let Some(id) = &session_id {
            req = req.header("X-Transmission-Session-Id", id);
        }
        if let Some((user, pass)) = &credentials {
            req = req.basic_auth(user, Some(pass));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach the RPC at {shown}: {}", why(&e)))?;
        match resp.status().as_u16() {
            409 => {
                let id = resp
                    .headers()
                    .get("X-Transmission-Session-Id")
                    .and_then(|v| v.to_str().ok())
                    .with_context(|| format!("{shown} answered 409 without a session id"))?;
                session_id = Some(id.to_string());
                continue;
            }
            401 => match credentials {
                None => bail!(
                    "the RPC at {shown} asks for a user name and password: give them in the URL (http://user:password@host:port)"
                ),
                Some(_) => bail!("the RPC at {shown} refused that user name and password"),
            },
            403 => bail!("the RPC at {shown} refuses this machine (its whitelist)"),
            s if !(200..300).contains(&s) => bail!("the RPC at {shown} answered HTTP {s}"),
            _ => {}
        }
        let answer = read_bounded(resp)
            .await
            .with_context(|| format!("reading the answer of {shown}"))?;
        let arguments = answer_arguments(&shown, method, &answer)?;
        return Ok((shown, arguments));
    }
    bail!("the RPC at {shown} kept asking for a new session id")
}

/// Sends `metainfo` (a whole .torrent) to the RPC at `url` as `torrent-add`, each request bounded
/// by `timeout`.
pub async fn push(
    url: &str,
    metainfo: &[u8],
    opts: &PushOptions,
    timeout: Duration,
) -> Result<Pushed> {
    let mut arguments = json!({
        "metainfo": base64::engine::general_purpose::STANDARD.encode(metainfo),
        "paused": opts.paused,
    });
    if let Some(dir) = &opts.download_dir {
        arguments["download-dir"] = json!(dir);
    }
    if !opts.labels.is_empty() {
        arguments["labels"] = json!(opts.labels);
    }
    let (shown, answer) = call(url, "torrent-add", arguments, timeout)
        .await
        .map_err(|e| e.context("the torrent was not added there"))?;
    pushed(&shown, &answer)
}

/// A torrent another machine has, found by [`find`].
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The URL asked, without its credentials.
    pub url: String,
    pub name: String,
    pub info_hash: String,
    /// How much of it that machine has, 0 to 1.
    pub percent_done: f64,
    /// Its magnet link there, with that machine's peer address added (`x.pe`: the RPC's host and
    /// its `peer-port`), so the metadata and the data come from it at once, tracker or not.
    pub magnet: String,
}

/// The torrent named `key` (its name, or its info-hash or at least 6 digits of it) on the machine
/// whose RPC is at `url`: `torrent-get` for its magnet link, `session-get` for its peer port.
pub async fn find(url: &str, key: &str, timeout: Duration) -> Result<Found> {
    let fields = ["name", "hashString", "magnetLink", "percentDone"];
    let (shown, listed) = call(url, "torrent-get", json!({ "fields": fields }), timeout).await?;
    let (_, session) = call(
        url,
        "session-get",
        json!({ "fields": ["peer-port"] }),
        timeout,
    )
    .await?;
    let (u, _) = rpc_url(url)?;
    // An IPv6 address comes bracketed, as `x.pe` wants it.
    let host = u
        .host_str()
        .with_context(|| format!("{url} names no host"))?;
    let port = session["peer-port"]
        .as_u64()
        .filter(|p| (1..=65535).contains(p))
        .with_context(|| format!("{shown} did not say its peer port"))?;
    let torrents = listed["torrents"].as_array().cloned().unwrap_or_default();
    found(&shown, key, &torrents, &format!("{host}:{port}"))
}

/// A torrent's name as another machine says it, made fit to print (its control characters
/// escaped).
fn shown_name(name: &str) -> String {
    btorrent_proto::text::escape_controls(name).into_owned()
}

/// The one torrent of `torrents` (a `torrent-get` answer's) that `key` names, with `peer` added to
/// its magnet link.
fn found(url: &str, key: &str, torrents: &[Value], peer: &str) -> Result<Found> {
    let lower = key.to_ascii_lowercase();
    let hash_of = |t: &Value| t["hashString"].as_str().unwrap_or_default().to_string();
    let name_of = |t: &Value| t["name"].as_str().unwrap_or_default().to_string();
    let by_name: Vec<&Value> = torrents.iter().filter(|t| name_of(t) == key).collect();
    let hits = if by_name.is_empty() && lower.len() >= 6 {
        torrents
            .iter()
            .filter(|t| hash_of(t).starts_with(&lower))
            .collect()
    } else {
        by_name
    };
    let t = match hits.as_slice() {
        [one] => *one,
        [] => {
            let mut names: Vec<String> = torrents.iter().map(|t| shown_name(&name_of(t))).collect();
            names.sort();
            let shown = names.len().min(10);
            let more = if names.len() > shown { ", ..." } else { "" };
            let has = if names.is_empty() {
                "no torrent at all".to_string()
            } else {
                format!("{}{more}", names[..shown].join(", "))
            };
            bail!("{url} has no torrent named {key:?} (it has {has})")
        }
        many => bail!(
            "{key:?} names {} torrents at {url}; give the info-hash",
            many.len()
        ),
    };
    let info_hash = hash_of(t);
    let name = shown_name(&name_of(t));
    let link = t["magnetLink"]
        .as_str()
        .filter(|l| l.starts_with("magnet:?"))
        .map(str::to_string)
        .unwrap_or_else(|| format!("magnet:?xt=urn:btih:{info_hash}"));
    let peer_enc = percent_encoding::utf8_percent_encode(peer, percent_encoding::NON_ALPHANUMERIC);
    Ok(Found {
        url: url.to_string(),
        name,
        info_hash,
        percent_done: t["percentDone"].as_f64().unwrap_or(0.0),
        magnet: format!("{link}&x.pe={peer_enc}"),
    })
}

/// What went wrong with a request, in a few words: the innermost cause (`Connection refused`,
/// `failed to lookup address ...`), not reqwest's whole chain, which names the URL again.
fn why(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer in time".into();
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

/// The body of `resp`, refused past [`MAX_ANSWER`] bytes.
async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER {
            bail!("larger than {MAX_ANSWER} bytes");
        }
    }
    Ok(body)
}

/// The `arguments` of an answer of `url` to `method`: an error with the server's words when its
/// `result` is not `success`.
fn answer_arguments(url: &str, method: &str, answer: &[u8]) -> Result<Value> {
    let v: Value = serde_json::from_slice(answer)
        .with_context(|| format!("{url} did not answer in JSON: is it a Transmission RPC?"))?;
    let result = v["result"].as_str().unwrap_or("no result");
    if result != "success" {
        // The server's words, on one line that only prints.
        let said = btorrent_proto::text::shown(result.as_bytes(), 300);
        bail!("{url} refused {method}: {said}");
    }
    Ok(v.get("arguments").cloned().unwrap_or_else(|| json!({})))
}

/// What the `arguments` of a `torrent-add` answer from `url` say: the torrent added, or there
/// already.
fn pushed(url: &str, arguments: &Value) -> Result<Pushed> {
    let (added, t) = match (
        arguments.get("torrent-added"),
        arguments.get("torrent-duplicate"),
    ) {
        (Some(t), _) => (true, t),
        (None, Some(t)) => (false, t),
        (None, None) => bail!("{url} said success but named no torrent"),
    };
    Ok(Pushed {
        url: url.to_string(),
        added,
        id: t["id"].as_i64(),
        name: shown_name(t["name"].as_str().unwrap_or_default()),
        info_hash: t["hashString"].as_str().unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_take_the_rpc_path_and_keep_credentials_apart() {
        let (u, c) = rpc_url("nas:9091").unwrap();
        assert_eq!(u.as_str(), "http://nas:9091/transmission/rpc");
        assert_eq!(c, None);
        let (u, c) = rpc_url("http://me:p%40ss@10.0.0.2:9091/").unwrap();
        assert_eq!(u.as_str(), "http://10.0.0.2:9091/transmission/rpc");
        assert_eq!(c, Some(("me".into(), "p@ss".into())));
        let (u, _) = rpc_url("https://box/custom/rpc").unwrap();
        assert_eq!(u.as_str(), "https://box/custom/rpc");
        for bad in ["ftp://host/", "http://", "not a url at all:xx"] {
            assert!(rpc_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_torrent_there_is_found_by_name_or_hash_and_its_link_names_that_machine() {
        let torrents = [
            json!({"name": "share", "hashString": "aa11bb22cc33dd44ee55ff6600778899aabbccdd",
                   "magnetLink": "magnet:?xt=urn:btih:aa11bb22cc33dd44ee55ff6600778899aabbccdd&dn=share",
                   "percentDone": 1.0}),
            json!({"name": "twice", "hashString": "ab".repeat(20), "percentDone": 0.5}),
            json!({"name": "twice", "hashString": "cd".repeat(20), "percentDone": 0.5}),
        ];
        let f = found("u", "share", &torrents, "10.0.0.2:51413").unwrap();
        assert_eq!(
            f.magnet,
            "magnet:?xt=urn:btih:aa11bb22cc33dd44ee55ff6600778899aabbccdd&dn=share&x.pe=10%2E0%2E0%2E2%3A51413"
        );
        let m = btorrent_proto::magnet::Magnet::parse(&f.magnet).unwrap();
        assert_eq!(m.peers, ["10.0.0.2:51413"]);
        // By info-hash (6 digits at least, any case); a link made when the server gives none.
        let f = found("u", "ABABAB", &torrents, "[::1]:6881").unwrap();
        assert_eq!(f.info_hash, "ab".repeat(20));
        assert!(f
            .magnet
            .starts_with(&format!("magnet:?xt=urn:btih:{}&x.pe=", "ab".repeat(20))));
        let m = btorrent_proto::magnet::Magnet::parse(&f.magnet).unwrap();
        assert_eq!(m.peers, ["[::1]:6881"]);
        let e = found("u", "twice", &torrents, "h:1")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "\"twice\" names 2 torrents at u; give the info-hash");
        let e = found("u", "nope", &torrents, "h:1")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "u has no torrent named \"nope\" (it has share, twice, twice)"
        );
        let e = found("u", "nope", &[], "h:1").unwrap_err().to_string();
        assert_eq!(
            e,
            "u has no torrent named \"nope\" (it has no torrent at all)"
        );
    }

    #[test]
    fn answers_say_added_there_already_or_why_not() {
        let answer = |raw: &[u8]| answer_arguments("u", "torrent-add", raw);
        let ok = br#"{"result":"success","arguments":{"torrent-added":{"id":3,"name":"share","hashString":"ab"}}}"#;
        let p = pushed("u", &answer(ok).unwrap()).unwrap();
        assert_eq!((p.added, p.id, p.name.as_str()), (true, Some(3), "share"));
        let dup = br#"{"result":"success","arguments":{"torrent-duplicate":{"id":1,"name":"share","hashString":"ab"}}}"#;
        assert!(!pushed("u", &answer(dup).unwrap()).unwrap().added);
        let refused = br#"{"result":"invalid or corrupt torrent file","arguments":{}}"#;
        let e = answer(refused).unwrap_err().to_string();
        assert_eq!(e, "u refused torrent-add: invalid or corrupt torrent file");
        assert!(answer(b"<html>").is_err());
        let none = answer(br#"{"result":"success","arguments":{}}"#).unwrap();
        assert!(pushed("u", &none).is_err());
        assert_eq!(answer(br#"{"result":"success"}"#).unwrap(), json!({}));
    }

    #[test]
    fn what_another_machine_says_prints_on_one_line() {
        let answer = |raw: &[u8]| answer_arguments("u", "torrent-add", raw);
        let refused = br#"{"result":"no\n\u001b[2Jway","arguments":{}}"#;
        let e = answer(refused).unwrap_err().to_string();
        assert!(!e.chars().any(char::is_control), "{e:?}");
        let named = br#"{"result":"success","arguments":{"torrent-added":{"id":3,"name":"a\nb","hashString":"ab"}}}"#;
        assert_eq!(pushed("u", &answer(named).unwrap()).unwrap().name, "a\\nb");
        let torrents = [json!({"name": "x\u{1b}[2J", "hashString": "ab".repeat(20)})];
        assert_eq!(
            found("u", "x\u{1b}[2J", &torrents, "h:1").unwrap().name,
            "x\\u{1b}[2J"
        );
        let e = found("u", "nope", &torrents, "h:1")
            .unwrap_err()
            .to_string();
        assert!(!e.chars().any(char::is_control), "{e:?}");
    }
}
