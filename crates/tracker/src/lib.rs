//! The BitTorrent tracker, HTTP and UDP (BEP 15, see `udp`): `GET /announce` (BEP 3, compact peers of BEP 23, `peers6` of BEP 7),
//! `GET /scrape` (BEP 48), `GET /get_peers` (JSON listing of active peers), `GET /` (HTML status page)
//! and `GET /stats` (JSON counters).
//!
//! Layout, one concern per file:
//! - `query`: raw query-string decoding (`info_hash` and `peer_id` are raw bytes);
//! - `client_addr`: which IP a peer is listed under (`::ffff:` mapping, trusted proxies, `ip=`);
//! - `store`: the sharded swarm store, its caps and expiry; `swarm`: one torrent's peers, their
//!   counts (a dual-stack peer counted once), the index of a large swarm, the peers handed out;
//! - `announce`, `scrape`, `get_peers`, `status`: one handler each;
//! - `reply`: bencoded, JSON and HTML responses;
//! - `conns`: the open connections, their caps (in all and per address) and who makes room;
//! - `server`: the accept loop (keep-alive, header timeout, graceful shutdown);
//! - `udp`: the UDP side, sharing the store with HTTP (stateless connection ids, no amplification);
//! - `sockets`: binding HTTP and UDP on one port, `[::]` taking both families.
//!
//! Every malformed request to `/announce` or `/scrape` is answered with a bencoded `failure reason`
//! and HTTP 200, never a panic or a 500. Request handlers never log and never hold more than one
//! shard lock; see `store` for the concurrency rules.
//!
//! # Memory bounds (defaults of [`TrackerConfig`])
//! | what | cap | cost at the cap |
//! | --- | --- | --- |
//! | torrents (swarms) | `max_swarms` = 100,000 | about 40 MB if each holds one peer |
//! | peers, all swarms | `max_peers` = 500,000 | about 90 MB (measured: 500,000 peers in 10,000 swarms) |
//! | peers in one swarm | `max_peers_per_swarm` = 100,000 | |
//! | connections | `max_connections` = 2,048, `max_connections_per_ip` = 64 | at most 16 KiB of request buffer each |
//! | request head | 16 KiB (hyper answers 431 beyond); query 8 KiB (`failure reason` beyond) | |
//! | hashes per scrape | `max_scrape_hashes` = 64 (UDP: BEP 15's 74 per packet) | |
//! | UDP | no per-client state; one 2 KiB buffer per worker | |
//! | `/get_peers` listing | `get_peers_limit` = 10,000 endpoints, pages of `get_peers_page` = 500 (at most `get_peers_max_page` = 2,000) | one snapshot of the listing, rebuilt by one request at a time |
//!
//! An announce that would pass a cap gets a `failure reason` naming it; nothing already tracked is
//! evicted to make room, so a flood of random info-hashes cannot push real swarms out. Idle peers
//! expire after `peer_timeout`, idle keep-alive connections after `header_timeout`. Connections are the
//! exception: at a connection cap the longest-idle connection (slow head or kept alive) is closed so
//! that a new client is served at once.
//! Measured with `benches/tracker.sh`: 100,000 peers in 10,000 swarms take about 20 MiB of RSS in all.

mod announce;
pub mod client_addr;
mod conns;
mod get_peers;
mod query;
mod reply;
mod scrape;
mod server;
pub mod sockets;
mod status;
mod store;
mod swarm;
mod udp;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Response;
use axum::routing::get;
use axum::Router;

pub use client_addr::IpParamPolicy;
pub use status::TrackerStats;

use btorrent_proto::types::InfoHash;
use store::{Caps, Store};

/// Tracker settings. `Default` gives a tracker fit for a group of machines or a public LAN tracker.
#[derive(Debug, Clone)]
pub struct TrackerConfig {
    /// Regular re-announce interval told to clients (default 10 min; at most [`MAX_INTERVAL`]).
    pub interval: Duration,
    /// Shortest re-announce interval told to clients (default 1 min).
    pub min_interval: Duration,
    /// A peer not heard from for this long is dropped (default 25 min). It must exceed `interval`;
    /// a shorter value is raised to twice the interval, a longer one than twice [`MAX_INTERVAL`]
    /// lowered to it.
    pub peer_timeout: Duration,
    /// Peers returned when the client does not say (or says `numwant=0`) (default 50).
    pub numwant_default: u32,
    /// Most peers returned in one reply (default 200).
    pub numwant_max: u32,
    /// Torrents tracked at once (default 100,000).
    pub max_swarms: usize,
    /// Peers tracked at once over all torrents (default 500,000).
    pub max_peers: usize,
    /// Peers tracked in one torrent (default 100,000).
    pub max_peers_per_swarm: usize,
    /// Info-hashes in one scrape (default 64).
    pub max_scrape_hashes: usize,
    /// Longest query string accepted, in bytes (default 8 KiB).
    pub max_query_len: usize,
    /// Most endpoints in the `/get_peers` listing, all pages together (default 10,000).
    pub get_peers_limit: usize,
    /// Endpoints in a `/get_peers` page when the request does not say (default 500).
    pub get_peers_page: usize,
    /// Most endpoints in one `/get_peers` page (default 2,000).
    pub get_peers_max_page: usize,
    /// Simultaneous HTTP connections (default 2,048). When full, the connection idle for longest
    /// (still sending its request head, or kept alive between requests) is closed for a new one;
    /// only when all are mid-request do new ones wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Simultaneous HTTP connections from one TCP peer address (default 64); past it the address's
    /// longest-idle connection is closed for the new one, or the new one when all are mid-request.
    /// `trusted_proxies` do not change this: behind a reverse proxy every client arrives from the
    /// proxy's address, so raise the cap to what the proxy may open.
    pub max_connections_per_ip: usize,
    /// Time allowed to send a request head, and the longest a kept-alive connection may sit idle
    /// (default 30 s).
    pub header_timeout: Duration,
    /// Only info-hashes passed to [`Tracker::allow`] are tracked; others get a `failure reason`.
    pub private: bool,
    /// Proxies whose `X-Forwarded-For` header is believed (exact addresses).
    pub trusted_proxies: Vec<IpAddr>,
    /// When the `ip=` announce parameter is believed.
    pub ip_param: IpParamPolicy,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval: Duration::from_secs(600),
            min_interval: Duration::from_secs(60),
            peer_timeout: Duration::from_secs(1500),
            numwant_default: 50,
            numwant_max: 200,
            max_swarms: 100_000,
            max_peers: 500_000,
            max_peers_per_swarm: 100_000,
            max_scrape_hashes: 64,
            max_query_len: 8 << 10,
            get_peers_limit: 10_000,
            get_peers_page: 500,
            get_peers_max_page: 2000,
            max_connections: 2048,
            max_connections_per_ip: 64,
            header_timeout: Duration::from_secs(30),
            private: false,
            trusted_proxies: Vec::new(),
            ip_param: IpParamPolicy::default(),
        }
    }
}

/// A running tracker's shared state. Cloning is cheap: clones share the swarms.
#[derive(Clone)]
pub struct Tracker {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: TrackerConfig,
    store: Store,
    conns: Arc<conns::Conns>,
    listings: get_peers::Listings,
    epoch: Instant,
    /// Requests answered with a `failure reason` (counted off the success path only).
    failures: AtomicU64,
    udp: udp::UdpState,
}

/// The longest re-announce interval a tracker tells its clients: a day. A longer one asked for is
/// this one (the store keeps times in seconds of a `u32`, and a peer is kept for twice it).
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);

impl Tracker {
    pub fn new(mut cfg: TrackerConfig) -> Self {
        cfg.interval = cfg.interval.min(MAX_INTERVAL);
        if cfg.peer_timeout <= cfg.interval {
            cfg.peer_timeout = cfg.interval * 2;
        }
        cfg.peer_timeout = cfg.peer_timeout.min(MAX_INTERVAL * 2);
        cfg.min_interval = cfg.min_interval.min(cfg.interval);
        cfg.numwant_max = cfg.numwant_max.max(1);
        cfg.numwant_default = cfg.numwant_default.clamp(1, cfg.numwant_max);
        let caps = Caps {
            max_swarms: cfg.max_swarms,
            max_peers: cfg.max_peers,
            max_peers_per_swarm: cfg.max_peers_per_swarm,
        };
        let store = Store::new(caps, cfg.private);
        let conns = Arc::new(conns::Conns::new(
            cfg.max_connections,
            cfg.max_connections_per_ip,
        ));
        Tracker {
            inner: Arc::new(Inner {
                cfg,
                store,
                conns,
                listings: Default::default(),
                epoch: Instant::now(),
                failures: AtomicU64::new(0),
                udp: Default::default(),
            }),
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.inner.cfg
    }

    /// Private mode: track this info-hash (no effect on what an open tracker does).
    pub fn allow(&self, info_hash: InfoHash) {
        self.inner.store.allow(info_hash);
    }

    /// Private mode: stop tracking this info-hash and forget its peers.
    pub fn disallow(&self, info_hash: InfoHash) {
        self.inner.store.disallow(info_hash);
    }

    /// Drops peers silent for longer than `peer_timeout` and empty swarms; returns the peers dropped.
    /// [`serve`](Self::serve) runs this periodically; call it yourself when serving through
    /// [`router`](Self::router) (see [`spawn_expiry`](Self::spawn_expiry)).
    pub fn expire_now(&self) -> usize {
        let timeout = self.inner.cfg.peer_timeout.as_secs().max(1) as u32;
        let cutoff = self.now_secs().saturating_sub(timeout);
        self.inner.store.expire(cutoff)
    }

    /// Runs [`expire_now`](Self::expire_now) every quarter of `peer_timeout` (between 0.25 s and 60 s)
    /// until the handle is aborted or dropped with the runtime.
    pub fn spawn_expiry(&self) -> tokio::task::JoinHandle<()> {
        let period = (self.inner.cfg.peer_timeout / 4)
            .clamp(Duration::from_millis(250), Duration::from_secs(60));
        let tracker = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                tracker.expire_now();
            }
        })
    }

    /// Counters for the status page, `/stats` and the shell.
    pub fn stats(&self) -> TrackerStats {
        status::collect(self)
    }

    /// The routes, for embedding in another axum application. Serve it with
    /// `into_make_service_with_connect_info::<SocketAddr>()` (the peer address is needed) and run
    /// [`spawn_expiry`](Self::spawn_expiry) beside it.
    pub fn router(self) -> Router {
        Router::new()
            .route("/announce", get(announce_route))
            .route("/scrape", get(scrape_route))
            .route("/get_peers", get(get_peers_route))
            .route("/stats", get(stats_route))
            .route("/metrics", get(metrics_route))
            .route("/", get(status_route))
            .fallback(|| async { reply::not_found() })
            .with_state(self)
    }

    /// Serves HTTP on `listener` until `shutdown` completes, with keep-alive, the connection caps and
    /// header timeout of the config, and periodic expiry. In-flight requests finish (for up to 5 s)
    /// before it returns.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let expiry = self.spawn_expiry();
        let conns = self.inner.conns.clone();
        let header_timeout = self.inner.cfg.header_timeout;
        let result = server::run(self.router(), listener, shutdown, conns, header_timeout).await;
        expiry.abort();
        result
    }

    /// Seconds since the tracker started (the store's clock).
    fn now_secs(&self) -> u32 {
        self.inner.epoch.elapsed().as_secs().min(u32::MAX as u64) as u32
    }

    fn count_failure(&self) {
        self.inner.failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// The connecting address, from [`ConnectInfo`] set by [`Tracker::serve`] or by axum's
/// `into_make_service_with_connect_info`.
fn remote_addr(req: &Request) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| *a)
}

fn raw_query(req: &Request) -> &[u8] {
    req.uri().query().unwrap_or("").as_bytes()
}

async fn announce_route(State(t): State<Tracker>, req: Request) -> Response<Body> {
    announce::handle(&t, remote_addr(&req), req.headers(), raw_query(&req))
}

async fn scrape_route(State(t): State<Tracker>, req: Request) -> Response<Body> {
    scrape::handle(&t, raw_query(&req))
}

async fn get_peers_route(State(t): State<Tracker>, req: Request) -> Response<Body> {
    get_peers::handle(t, raw_query(&req)).await
}

async fn stats_route(State(t): State<Tracker>) -> Response<Body> {
    status::stats_json(&t)
}

async fn metrics_route(State(t): State<Tracker>) -> Response<Body> {
    let mut w = btorrent_proto::prometheus::Writer::new();
    t.stats().write_metrics(&mut w);
    Response::builder()
        .header("content-type", btorrent_proto::prometheus::CONTENT_TYPE)
        .body(Body::from(w.finish()))
        .expect("a valid response")
}

async fn status_route(State(t): State<Tracker>) -> Response<Body> {
    status::page(&t)
}
