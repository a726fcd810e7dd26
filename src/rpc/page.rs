//! Our own web page at `/` on `rpc_bind`: one HTML file, one script and one style sheet compiled
//! into the binary (no build step, nothing fetched from elsewhere). The script lists, adds, pauses,
//! resumes and removes torrents and chooses files through `POST /transmission/rpc` (so the session-id
//! handshake guards every change), and reads `GET /page/status` for what the RPC does not carry: the
//! embedded tracker's counters. Every route here passes the guard's whitelist, rate and password.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Response};
use serde_json::json;

use super::server::{refused, Conn};
use super::Rpc;

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/page.js");
const STYLE: &str = include_str!("page/page.css");

/// Only our own files may run, load or frame the page.
const POLICY: &str =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

fn file(
    rpc: &Rpc,
    remote: SocketAddr,
    headers: &HeaderMap,
    ctype: &str,
    body: &'static str,
) -> Response<Body> {
    if let Err(r) = rpc.guard.check(remote.ip(), headers, false) {
        return refused(r, &rpc.guard.session_id);
    }
    Response::builder()
        .header(header::CONTENT_TYPE, ctype)
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::CONTENT_SECURITY_POLICY, POLICY)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .body(Body::from(body))
        .expect("a valid response")
}

/// The page's files: path, content type, body.
pub const FILES: [(&str, &str, &str); 3] = [
    ("/", "text/html; charset=utf-8", INDEX),
    ("/page.js", "text/javascript; charset=utf-8", SCRIPT),
    ("/page.css", "text/css; charset=utf-8", STYLE),
];

/// The handler of one of [`FILES`].
pub fn serve(ctype: &'static str, body: &'static str) -> axum::routing::MethodRouter<Arc<Rpc>> {
    axum::routing::get(
        move |State(rpc): State<Arc<Rpc>>,
              ConnectInfo(conn): ConnectInfo<Conn>,
              headers: HeaderMap| async move { file(&rpc, conn.remote, &headers, ctype, body) },
    )
}

/// `GET /page/status`: `{"tracker": <the embedded tracker's counters, or null>}`. Read-only, so no
/// session id is asked for; other sites cannot read it (no CORS headers).
pub async fn status(
    State(rpc): State<Arc<Rpc>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
) -> Response<Body> {
    if let Err(r) = rpc.guard.check(conn.remote.ip(), &headers, false) {
        return refused(r, &rpc.guard.session_id);
    }
    let tracker = rpc.tracker.as_ref().map(|t| t.stats());
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(json!({ "tracker": tracker }).to_string()))
        .expect("a valid response")
}
