//! Another machine's Transmission RPC, as a client: any call ([`call`]; scripts' `rpc`), and a
//! torrent handed to that machine ([`push`]: its .torrent sent as `torrent-add` with the metainfo),
//! which adds it and downloads it from this machine and the rest of the swarm. The other side is a
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
        bail!("{url} refused {method}: {result}");
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
        name: t["name"].as_str().unwrap_or_default().to_string(),
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
}
