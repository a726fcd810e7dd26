//! The RPC's HTTP server: `POST /transmission/rpc` (JSON requests, the guard's checks, a body cap)
//! `GET /metrics` and our page (`/`), on `rpc_bind`, from the daemon's or the shell's start until their shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::guard::{self, Guard, SESSION_HEADER, VERSION_HEADER};
use super::{fields, jsonrpc, Rpc};
use crate::services::PeerSlot;
use crate::tracker::Tracker;

/// Largest request body read; a `torrent-add` with a base64 .torrent is the largest request.
pub const MAX_BODY: usize = 16 << 20;

/// The running RPC server; dropping it stops serving at once, [`RpcServer::stop`] lets the replies
/// under way go out first.
pub struct RpcServer {
    pub addr: SocketAddr,
    pub rpc: Arc<Rpc>,
    task: JoinHandle<()>,
    stopper: RpcStopper,
}

/// Stops an [`RpcServer`] from wherever (the shell's signal task holds one): no new request is
/// read, the ones under way are answered.
#[derive(Clone)]
pub struct RpcStopper {
    stopping: CancellationToken,
    /// Cancelled once the server task has ended.
    served: CancellationToken,
    /// Cancelled once the session statistics are written a last time ([`super::totals`]).
    saved: CancellationToken,
}

impl RpcStopper {
    /// Stops serving and waits, within `grace`, until the replies under way (a `session-close`'s,
    /// say) have gone out.
    pub async fn stop(&self, grace: std::time::Duration) {
        self.stopping.cancel();
        let both = async {
            self.served.cancelled().await;
            self.saved.cancelled().await;
        };
        let _ = tokio::time::timeout(grace, both).await;
    }
}

impl Drop for RpcServer {
    fn drop(&mut self) {
        // The magnets' fetches end too.
        self.stopper.stopping.cancel();
        self.task.abort();
    }
}

impl RpcServer {
    /// Listens on `rpc_bind` of `config_path` and serves. A plain-text `rpc_password` is written back
    /// as its salted hash first. Call within the tokio runtime.
    pub async fn start(
        config_path: &Path,
        peer: PeerSlot,
        tracker: Option<Tracker>,
    ) -> Result<Option<RpcServer>> {
        let mut cfg = peer.torrents().config()?;
        let Some(bind) = cfg.settings.rpc_bind.clone() else {
            return Ok(None);
        };
        let bind: SocketAddr = bind
            .parse()
            .with_context(|| format!("rpc_bind {bind:?} is not an address like 127.0.0.1:9091"))?;
        let whitelist = guard::whitelist(cfg.settings.rpc_whitelist.as_deref())?;
        if cfg
            .settings
            .rpc_password
            .as_deref()
            .is_some_and(|p| !super::password::is_hashed(p))
        {
            // Saving the file writes the password back as its salted hash.
            peer.torrents()
                .update(|_| Ok(()))
                .context("cannot store rpc_password as a salted hash")?;
            cfg = peer.torrents().config()?;
        }
        let credentials = match (&cfg.settings.rpc_username, &cfg.settings.rpc_password) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            (None, None) => None,
            _ => anyhow::bail!("rpc_username and rpc_password go together: set both or neither"),
        };
        let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| {
            format!(
                "the RPC cannot listen on {bind} (rpc_bind in {})",
                config_path.display()
            )
        })?;
        let addr = listener.local_addr()?;
        let stopper = RpcStopper {
            stopping: CancellationToken::new(),
            served: CancellationToken::new(),
            saved: CancellationToken::new(),
        };
        let rpc = Arc::new(Rpc {
            config_path: config_path.to_path_buf(),
            peer,
            tracker,
            ids: fields::Ids::default(),
            fetching: super::fetching::Fetching::new(stopper.stopping.child_token()),
            started: Instant::now(),
            totals: super::totals::Totals::open(super::totals::file_for(config_path)),
            guard: Guard::new(whitelist, credentials),
            web_dir: cfg.settings.rpc_web_dir.as_deref().map(|d| cfg.resolve(d)),
            close: CancellationToken::new(),
        });
        super::fetching::resume(&rpc, &cfg.torrents_dir());
        super::totals::spawn_saver(rpc.clone(), stopper.stopping.clone(), stopper.saved.clone());
        let app = router(rpc.clone());
        let stopped = stopper.stopping.clone().cancelled_owned();
        let served = stopper.served.clone().drop_guard();
        let task = tokio::spawn(async move {
            let _served = served;
            let serve = axum::serve(listener, app.into_make_service_with_connect_info::<Conn>())
                .with_graceful_shutdown(stopped);
            if let Err(e) = serve.await {
                tracing::error!("the RPC server stopped: {e}");
            }
        });
        Ok(Some(RpcServer {
            addr,
            rpc,
            task,
            stopper,
        }))
    }

    /// Cancelled when a client asks the session to close (`session-close`); whoever runs the server
    /// then closes as on SIGTERM.
    pub fn close_requested(&self) -> CancellationToken {
        self.rpc.close.clone()
    }

    /// What stops it from elsewhere.
    pub fn stopper(&self) -> RpcStopper {
        self.stopper.clone()
    }

    /// Stops serving: the requests under way (a `session-close`, say) get their replies, within
    /// `grace`; then the connections are dropped.
    pub async fn stop(self, grace: std::time::Duration) {
        self.stopper.stop(grace).await;
    }

    /// The URL clients post to.
    pub fn url(&self) -> String {
        format!("http://{}/transmission/rpc", self.addr)
    }
}

/// Both ends of a connection: the client's address (for the guard) and the one it reached.
#[derive(Debug, Clone, Copy)]
pub struct Conn {
    pub remote: SocketAddr,
    pub local: SocketAddr,
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Conn
{
    fn connect_info(s: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Conn {
        let remote = *s.remote_addr();
        Conn {
            remote,
            local: s.io().local_addr().unwrap_or(remote),
        }
    }
}

fn router(rpc: Arc<Rpc>) -> Router {
    let mut r = Router::new();
    for (path, ctype, body) in super::page::FILES {
        r = r.route(path, super::page::serve(ctype, body));
    }
    r.route("/transmission/web", get(web_redirect))
        .route("/transmission/web/", get(web_route))
        .route("/transmission/web/{*rest}", get(web_route))
        .route("/transmission/rpc", post(rpc_route).get(rpc_get_route))
        // transmission-remote posts to the address with a trailing slash.
        .route("/transmission/rpc/", post(rpc_route).get(rpc_get_route))
        .route("/metrics", get(metrics_route))
        .route("/page/status", get(super::page::status))
        .with_state(rpc)
}

pub(super) fn refused(r: guard::Refusal, session_id: &str) -> Response<Body> {
    let mut resp = Response::builder()
        .status(r.status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8");
    match r.status {
        StatusCode::CONFLICT => {
            resp = resp
                .header(SESSION_HEADER, session_id)
                .header(VERSION_HEADER, super::session::RPC_VERSION_SEMVER)
                // A web page elsewhere may read both (when a proxy lets it ask at all).
                .header(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    format!("{SESSION_HEADER}, {VERSION_HEADER}"),
                )
        }
        StatusCode::UNAUTHORIZED => {
            resp = resp.header(header::WWW_AUTHENTICATE, "Basic realm=\"btorrent\"")
        }
        _ => {}
    }
    resp.body(Body::from(format!("{}\n", r.reason)))
        .expect("a valid response")
}

fn json_reply(status: StatusCode, v: &Value, session_id: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            SESSION_HEADER,
            HeaderValue::from_str(session_id).expect("hex"),
        )
        .body(Body::from(v.to_string()))
        .expect("a valid response")
}

/// A GET only learns the session id (as Transmission's clients expect from any first request).
async fn rpc_get_route(
    State(rpc): State<Arc<Rpc>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
) -> Response<Body> {
    match rpc.guard.check(conn.remote.ip(), &headers, true) {
        Err(r) => refused(r, &rpc.guard.session_id),
        Ok(()) => json_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"result": "POST a JSON request to this address"}),
            &rpc.guard.session_id,
        ),
    }
}

async fn rpc_route(
    State(rpc): State<Arc<Rpc>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    if let Err(r) = rpc.guard.check(conn.remote.ip(), &headers, true) {
        return refused(r, &rpc.guard.session_id);
    }
    let sid = rpc.guard.session_id.clone();
    let bytes: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return json_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                &json!({"result": format!("request body larger than {} bytes", MAX_BODY)}),
                &sid,
            )
        }
    };
    match answer(&rpc, &bytes, conn.local).await {
        Some((status, reply)) => json_reply(status, &reply, &sid),
        // JSON-RPC notifications only: nothing to answer.
        None => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header(SESSION_HEADER, HeaderValue::from_str(&sid).expect("hex"))
            .body(Body::empty())
            .expect("a valid response"),
    }
}

/// The reply to one request body: for Transmission's own format, `result`, `arguments` and the
/// request's `tag`; for JSON-RPC 2.0, what [`jsonrpc::answer`] says (`None`: notifications only).
async fn answer(rpc: &Arc<Rpc>, body: &[u8], local: SocketAddr) -> Option<(StatusCode, Value)> {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) if body.windows(9).any(|w| w == b"\"jsonrpc\"") => {
            return Some((StatusCode::OK, jsonrpc::parse_error(&e.to_string())))
        }
        Err(e) => {
            return Some((
                StatusCode::BAD_REQUEST,
                json!({"result": format!("request is not JSON: {e}")}),
            ))
        }
    };
    if jsonrpc::is_jsonrpc(&req) {
        return jsonrpc::answer(rpc, &req, local)
            .await
            .map(|v| (StatusCode::OK, v));
    }
    let Some(req) = req.as_object() else {
        return Some((
            StatusCode::BAD_REQUEST,
            json!({"result": "request must be a JSON object with a \"method\""}),
        ));
    };
    let tag = req.get("tag").cloned();
    let empty = Map::new();
    let outcome = match (req.get("method"), req.get("arguments")) {
        (Some(Value::String(m)), None | Some(Value::Null)) => rpc.call(m, &empty, local).await,
        (Some(Value::String(m)), Some(Value::Object(a))) => rpc.call(m, a, local).await,
        (Some(Value::String(_)), Some(_)) => Err("\"arguments\" must be an object".into()),
        _ => Err("no method given: \"method\" must be a string".into()),
    };
    let mut reply = Map::new();
    match outcome {
        Ok(args) => {
            reply.insert("result".into(), "success".into());
            reply.insert("arguments".into(), Value::Object(args));
        }
        Err(e) => {
            reply.insert("result".into(), e.into());
            reply.insert("arguments".into(), Value::Object(Map::new()));
        }
    }
    if let Some(t) = tag {
        reply.insert("tag".into(), t);
    }
    Some((StatusCode::OK, Value::Object(reply)))
}

async fn metrics_route(
    State(rpc): State<Arc<Rpc>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
) -> Response<Body> {
    if let Err(r) = rpc.guard.check(conn.remote.ip(), &headers, false) {
        return refused(r, &rpc.guard.session_id);
    }
    Response::builder()
        .header(header::CONTENT_TYPE, crate::prometheus::CONTENT_TYPE)
        .body(Body::from(super::metrics::render(&rpc)))
        .expect("a valid response")
}

async fn web_redirect() -> Response<Body> {
    Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header(header::LOCATION, "/transmission/web/")
        .body(Body::empty())
        .expect("a valid response")
}

async fn web_route(
    State(rpc): State<Arc<Rpc>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response<Body> {
    if let Err(r) = rpc.guard.check(conn.remote.ip(), &headers, false) {
        return refused(r, &rpc.guard.session_id);
    }
    let Some(dir) = &rpc.web_dir else {
        return refused(
            guard::Refusal {
                status: StatusCode::NOT_FOUND,
                reason: "no web client here: set rpc_web_dir in torrents.toml".into(),
            },
            &rpc.guard.session_id,
        );
    };
    let rel = uri.path().strip_prefix("/transmission/web").unwrap_or("");
    super::web::serve(dir, rel).await
}
