//! The tracker client: announce (BEP 3, compact peers of BEP 23, `peers6` of BEP 7), scrape (BEP 48)
//! and the `/get_peers` listing of btorrent's own tracker, over one keep-alive HTTP client; `udp://`
//! trackers (BEP 15) through the same calls, the URL's scheme choosing the transport (see `udp`).
//!
//! - `info_hash` and `peer_id` are raw bytes: every byte outside `A-Z a-z 0-9 - . _ ~` is
//!   percent-encoded, so any tracker decodes the same 20 bytes.
//! - Replies are untrusted: bodies are capped, bencode is validated before it is read, peers with port 0
//!   or a host name instead of an address are dropped, `::ffff:a.b.c.d` becomes `a.b.c.d`.
//! - A `failure reason` becomes [`TrackerError::Failure`] with the tracker's text.
//! - At most [`MAX_REDIRECTS`] redirects are followed; more (a loop) is an error not retried at once.
//! - Transport errors (refused, reset, timed out) and HTTP 5xx are retried a few times with a short
//!   back-off inside one call ([`RetryPolicy`]); the longer schedule between announces, including
//!   back-off after failures, is [`AnnounceSchedule`].
//! - Error text names the tracker by scheme, host, port and path only: a passkey in the query never
//!   reaches a log.

pub mod family;
mod response;
mod schedule;
mod udp;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use reqwest::Url;

pub use btorrent_proto::listing::{client_name, PeerList, PeerListing, PeerTorrent};
pub use response::{parse_announce, parse_scrape, MAX_TEXT};
pub use schedule::{AnnounceSchedule, Backoff, FAILURE_BACKOFF_FIRST, FAILURE_BACKOFF_MAX};

pub use btorrent_proto::tracker::{AnnounceEvent, AnnounceRequest, AnnounceResponse, ScrapeStats};
use btorrent_proto::types::InfoHash;
pub use family::Family;

/// Bytes left as they are in a query value or a URL path part (RFC 3986 unreserved); everything
/// else is `%XX`.
pub(crate) const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Largest announce or scrape reply read (a reply with 50 peers is about 400 bytes).
const MAX_REPLY: usize = 2 << 20;
/// Largest `/get_peers` listing read, all pages together.
const MAX_LISTING: usize = 64 << 20;
/// Redirects followed per request: a redirect loop costs at most 5 requests per call (it is not
/// retried within the call).
pub const MAX_REDIRECTS: usize = 4;
/// Info-hashes per scrape request; more are split over several requests.
const SCRAPE_BATCH: usize = 32;

/// Why a tracker call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TrackerError {
    #[error("invalid tracker URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{0}:// trackers are not supported (only http://, https:// and udp://)")]
    UnsupportedScheme(String),
    #[error("could not reach tracker {url}: {detail}")]
    Transport {
        url: String,
        detail: String,
        timed_out: bool,
    },
    /// The tracker cannot be reached over the family the client keeps to: its name has no address
    /// of it, or this machine no route there ([`family`]). Not retried within the call.
    #[error("could not reach tracker {url}: {detail}")]
    NoAddress { url: String, detail: String },
    #[error("tracker {url} answered HTTP {status}")]
    Http { url: String, status: u16 },
    #[error("tracker refused: {0}")]
    Failure(String),
    #[error("tracker sent an invalid reply: {0}")]
    BadResponse(String),
    #[error("tracker {0} has no scrape address (its announce path does not end in `announce`)")]
    NoScrape(String),
}

impl TrackerError {
    /// Worth trying again soon: the tracker could not be reached or had a server-side error. A
    /// `failure reason` or a malformed reply is not retried at once.
    pub fn is_transient(&self) -> bool {
        match self {
            TrackerError::Transport { .. } => true,
            TrackerError::Http { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// The tracker cannot be reached over the family asked for: the other family answers.
    pub fn is_no_address(&self) -> bool {
        matches!(self, TrackerError::NoAddress { .. })
    }
}

/// Immediate retries inside one call: up to `attempts` tries in all, waiting `first_delay`, then twice
/// that, ... at most `max_delay` between them. Only [`TrackerError::is_transient`] errors are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// One try, no retry (e.g. the `stopped` announce when closing).
    pub fn none() -> Self {
        RetryPolicy {
            attempts: 1,
            first_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }
}

impl Default for RetryPolicy {
    /// Three tries, 0.5 s then 1 s apart (each +-20 %).
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(4),
        }
    }
}

/// A tracker client for `http://`, `https://` and `udp://` trackers. Cloning is cheap and clones share
/// one connection pool and one table of UDP connection ids, so announces to the same tracker reuse a
/// kept-alive connection or a connection id.
#[derive(Clone)]
pub struct TrackerClient {
    http: reqwest::Client,
    /// A dual-stack session's client over IPv6 (`http` then keeps to IPv4): announces to a tracker
    /// named by a host name go over both ([`family`]).
    http6: Option<reqwest::Client>,
    retry: RetryPolicy,
    /// Local address UDP packets leave from (`None`: any).
    local: Option<std::net::IpAddr>,
    /// The one family a single-family client reaches trackers over (`None`: either; a
    /// dual-stack client, with `http6`, uses both).
    family: Option<Family>,
    /// First wait for a UDP tracker's answer; it doubles after each timeout.
    udp_timeout: Duration,
    udp_ids: Arc<udp::ConnectionIds>,
}

/// BEP 15's first wait for an answer.
const UDP_TIMEOUT: Duration = Duration::from_secs(15);

impl Default for TrackerClient {
    fn default() -> Self {
        Self::new()
    }
}

impl TrackerClient {
    /// Connect timeout 10 s, whole request 30 s, idle connections kept 90 s, [`RetryPolicy::default`];
    /// UDP trackers get 15 s for their first answer (BEP 15).
    pub fn new() -> Self {
        Self::build(Duration::from_secs(10), Duration::from_secs(30), None, None)
    }

    /// The client of a session listening on `ip`: on `::` (IPv4 and IPv6 alike) its announces to a
    /// tracker named by a host name go over both families, so the tracker lists it under both of
    /// its addresses; on `0.0.0.0` over IPv4 only; on one address from that address, over its
    /// family ([`TrackerClient::from_address`]). See [`family`].
    pub fn for_listen(ip: std::net::IpAddr) -> Self {
        let (connect, request) = (Duration::from_secs(10), Duration::from_secs(30));
        match ip {
            std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
                let mut client = Self::build(connect, request, None, Some(Family::V4));
                client.http6 = Some(http_client(connect, request, None, Some(Family::V6)));
                client.family = None;
                client
            }
            ip if ip.is_unspecified() => Self::build(connect, request, None, Some(Family::V4)),
            ip => Self::from_address(ip),
        }
    }

    /// A client with the given connect and whole-request timeouts. `connect` is also the first wait
    /// for a UDP tracker's answer (doubling with each retransmission, [`RetryPolicy::attempts`]
    /// packets in all).
    pub fn with_timeouts(connect: Duration, request: Duration) -> Self {
        let mut client = Self::build(connect, request, None, None);
        client.udp_timeout = connect;
        client
    }

    /// [`TrackerClient::new`] whose requests go out from `ip`: a peer that listens on one address of
    /// a host with several announces from it, so the tracker hands out the address it listens on.
    /// Its names are looked up in the address's family only, so the tracker is reached over it.
    pub fn from_address(ip: std::net::IpAddr) -> Self {
        let (connect, request) = (Duration::from_secs(10), Duration::from_secs(30));
        Self::build(connect, request, Some(ip), Some(Family::of(ip)))
    }

    /// Requests from `local` when given, names looked up in `family` when given.
    fn build(
        connect: Duration,
        request: Duration,
        local: Option<std::net::IpAddr>,
        family: Option<Family>,
    ) -> Self {
        TrackerClient {
            http: http_client(connect, request, local, family),
            http6: None,
            retry: RetryPolicy::default(),
            local,
            family,
            udp_timeout: UDP_TIMEOUT,
            udp_ids: Arc::default(),
        }
    }

    /// The same client (same connection pool) with another retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Announces to `announce_url` and returns the tracker's answer.
    pub async fn announce(
        &self,
        announce_url: &str,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        self.announce_listening(announce_url, req, req.port).await
    }

    /// [`TrackerClient::announce`] where `req.port` may be the port a router forwards to ours:
    /// the announce a dual-stack client makes over IPv6 tells `listen_port`, as no NAT stands
    /// between IPv6 peers and us.
    pub async fn announce_listening(
        &self,
        announce_url: &str,
        req: &AnnounceRequest,
        listen_port: u16,
    ) -> Result<AnnounceResponse, TrackerError> {
        let url = tracker_url(announce_url)?;
        // A dual-stack client announces to a named tracker over both families (see `family`).
        let dual = self.http6.is_some() && url.domain().is_some();
        let own = AnnounceRequest {
            port: listen_port,
            ..req.clone()
        };
        if url.scheme() == "udp" {
            if !dual {
                return self.udp_announce(&url, req, self.family).await;
            }
            let this = self.clone();
            let url6 = url.clone();
            let over6 = async move { this.udp_announce(&url6, &own, Some(Family::V6)).await };
            return family::over_both(self.udp_announce(&url, req, Some(Family::V4)), over6).await;
        }
        let base = http_url(announce_url)?;
        let url = with_query(&base, &announce_query(req))?;
        match &self.http6 {
            Some(v6) if dual => {
                let url6 = with_query(&base, &announce_query(&own))?;
                let (this, v6) = (self.clone(), v6.clone());
                let over6 = async move {
                    let body = this.get_with(&v6, &url6, MAX_REPLY).await?;
                    response::parse_announce(&body)
                };
                let over4 = async {
                    let body = self.get_with(&self.http, &url, MAX_REPLY).await?;
                    response::parse_announce(&body)
                };
                family::over_both(over4, over6).await
            }
            _ => {
                let body = self.get(&url, MAX_REPLY).await?;
                response::parse_announce(&body)
            }
        }
    }

    /// Scrapes the counts of `hashes` at the scrape address that goes with `announce_url` (BEP 48:
    /// the last path segment `announce...` becomes `scrape...`). Hashes the tracker does not know are
    /// missing from the map.
    pub async fn scrape(
        &self,
        announce_url: &str,
        hashes: &[InfoHash],
    ) -> Result<HashMap<InfoHash, ScrapeStats>, TrackerError> {
        let url = tracker_url(announce_url)?;
        if url.scheme() == "udp" {
            return self.udp_scrape(&url, hashes).await;
        }
        let base = scrape_url(&http_url(announce_url)?)?;
        let mut out = HashMap::with_capacity(hashes.len());
        for batch in hashes.chunks(SCRAPE_BATCH) {
            let query: String = batch
                .iter()
                .map(|h| format!("info_hash={}", encode(&h.0)))
                .collect::<Vec<_>>()
                .join("&");
            let url = with_query(&base, &query)?;
            let body = self.get(&url, MAX_REPLY).await?;
            out.extend(response::parse_scrape(&body)?);
        }
        Ok(out)
    }

    /// The active peers listed by a btorrent tracker's `/get_peers`, optionally only those of one
    /// torrent. `tracker_url` may be the announce URL (`http://host:6969/announce`) or the tracker's
    /// base URL (`http://host:6969`).
    pub async fn get_peers(
        &self,
        tracker_url: &str,
        info_hash: Option<InfoHash>,
    ) -> Result<Vec<PeerListing>, TrackerError> {
        Ok(self.get_peer_list(tracker_url, info_hash).await?.peers)
    }

    /// Like [`get_peers`](Self::get_peers) with the listing's `total` and `truncated` fields. The
    /// tracker serves the listing in pages; this asks for each in turn (`after=` the previous page's
    /// `next`) until the last, reading at most `MAX_LISTING` bytes in all.
    pub async fn get_peer_list(
        &self,
        tracker_url: &str,
        info_hash: Option<InfoHash>,
    ) -> Result<PeerList, TrackerError> {
        let base = get_peers_url(&http_url(tracker_url)?);
        let mut list = PeerList::default();
        let mut after: Option<String> = None;
        let mut read = 0;
        loop {
            let mut query: Vec<String> = info_hash
                .map(|h| format!("info_hash={}", h.to_hex()))
                .into_iter()
                .collect();
            if let Some(a) = &after {
                query.push(format!("after={}", encode(a.as_bytes())));
            }
            let url = if query.is_empty() {
                base.clone()
            } else {
                with_query(&base, &query.join("&"))?
            };
            let body = self.get(&url, MAX_LISTING - read).await?;
            read += body.len();
            let page: PeerList = serde_json::from_slice(&body).map_err(|e| {
                TrackerError::BadResponse(format!("/get_peers is not a peer listing: {e}"))
            })?;
            list.total = page.total;
            list.truncated = page.truncated;
            let last_page = page.peers.is_empty() || page.next.is_none() || page.next == after;
            list.peers.extend(page.peers);
            if last_page {
                return Ok(list);
            }
            after = page.next;
        }
    }

    /// GET with the retry policy; a dual-stack client whose name has no IPv4 address asks over
    /// IPv6.
    async fn get(&self, url: &Url, cap: usize) -> Result<Vec<u8>, TrackerError> {
        match (self.get_with(&self.http, url, cap).await, &self.http6) {
            (Err(e), Some(v6)) if e.is_no_address() => self.get_with(v6, url, cap).await,
            (result, _) => result,
        }
    }

    /// GET through `http` with the retry policy.
    async fn get_with(
        &self,
        http: &reqwest::Client,
        url: &Url,
        cap: usize,
    ) -> Result<Vec<u8>, TrackerError> {
        let mut backoff = Backoff::new(self.retry.first_delay, self.retry.max_delay);
        let mut tries = 1;
        loop {
            match self.get_once(http, url, cap).await {
                Err(e) if e.is_transient() && tries < self.retry.attempts => {
                    tries += 1;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                result => return result,
            }
        }
    }

    async fn get_once(
        &self,
        http: &reqwest::Client,
        url: &Url,
        cap: usize,
    ) -> Result<Vec<u8>, TrackerError> {
        let mut resp = http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| transport_error(url, &e))?;
        let status = resp.status();
        if resp.content_length().is_some_and(|n| n > cap as u64) {
            return Err(too_large(cap));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| transport_error(url, &e))? {
            if body.len() + chunk.len() > cap {
                return Err(too_large(cap));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            // Some trackers send their `failure reason` with an error status: prefer their words.
            if let Err(e @ TrackerError::Failure(_)) = response::parse_announce(&body) {
                return Err(e);
            }
            return Err(TrackerError::Http {
                url: display_url(url),
                status: status.as_u16(),
            });
        }
        Ok(body)
    }
}

/// The HTTP client of a [`TrackerClient`]: requests from `local` when given, names looked up in
/// `family` only when given (else as the system does).
fn http_client(
    connect: Duration,
    request: Duration,
    local: Option<std::net::IpAddr>,
    family: Option<Family>,
) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("btorrent/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect)
        .timeout(request)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .local_address(local)
        .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS));
    if let Some(family) = family {
        builder = builder.dns_resolver(Arc::new(family::FamilyResolver { family }));
    }
    builder.build().unwrap_or_default()
}

fn too_large(cap: usize) -> TrackerError {
    TrackerError::BadResponse(format!("reply larger than {} KiB", cap >> 10))
}

/// Percent-encodes raw bytes for a query value.
pub fn encode(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, UNRESERVED).to_string()
}

fn announce_query(req: &AnnounceRequest) -> String {
    use std::fmt::Write;
    let mut q = format!(
        "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&compact=1&no_peer_id=1",
        encode(&req.info_hash.0),
        encode(&req.peer_id.0),
        req.port,
        req.uploaded,
        req.downloaded,
        req.left
    );
    if let Some(ev) = req.event {
        let _ = write!(q, "&event={ev}");
    }
    if let Some(n) = req.numwant {
        let _ = write!(q, "&numwant={n}");
    }
    if let Some(k) = req.key {
        let _ = write!(q, "&key={k:08X}");
    }
    if let Some(ip) = req.ip {
        let _ = write!(q, "&ip={}", encode(ip.to_string().as_bytes()));
    }
    q
}

/// Parses a tracker URL and checks it is http(s).
fn http_url(s: &str) -> Result<Url, TrackerError> {
    let url = tracker_url(s)?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(TrackerError::UnsupportedScheme(other.to_string())),
    }
}

/// Parses a tracker URL and checks it is http(s) or udp.
fn tracker_url(s: &str) -> Result<Url, TrackerError> {
    let mut url = Url::parse(s.trim()).map_err(|e| TrackerError::BadUrl {
        url: s.to_string(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "http" | "https" | "udp" => {}
        other => return Err(TrackerError::UnsupportedScheme(other.to_string())),
    }
    if url.host().is_none() {
        return Err(TrackerError::BadUrl {
            url: s.to_string(),
            reason: "no host".into(),
        });
    }
    url.set_fragment(None);
    Ok(url)
}

/// Appends `query` (already encoded) to whatever query the URL has, e.g. a passkey.
fn with_query(url: &Url, query: &str) -> Result<Url, TrackerError> {
    let mut url = url.clone();
    let q = match url.query() {
        Some(existing) if !existing.is_empty() => format!("{existing}&{query}"),
        _ => query.to_string(),
    };
    url.set_query(Some(&q));
    Ok(url)
}

/// BEP 48 convention: `.../announce[suffix]` is scraped at `.../scrape[suffix]`.
fn scrape_url(announce: &Url) -> Result<Url, TrackerError> {
    let path = announce.path();
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    match path[cut..].strip_prefix("announce") {
        Some(suffix) => {
            let mut url = announce.clone();
            url.set_path(&format!("{}scrape{suffix}", &path[..cut]));
            Ok(url)
        }
        None => Err(TrackerError::NoScrape(display_url(announce))),
    }
}

/// `http://h/announce` or `http://h` or `http://h/` or `http://h/get_peers` -> `http://h/get_peers`.
fn get_peers_url(tracker: &Url) -> Url {
    let path = tracker.path();
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    let last = &path[cut..];
    let mut url = tracker.clone();
    if last.starts_with("announce") || last == "get_peers" {
        url.set_path(&format!("{}get_peers", &path[..cut]));
    } else if last.is_empty() {
        url.set_path(&format!("{path}get_peers"));
    } else {
        url.set_path(&format!("{path}/get_peers"));
    }
    url
}

/// Whether the tracker at `announce_url` is on a local network: every address of its host is
/// ([`btorrent_proto::addr::is_local_network`]; `localhost` is; a host that cannot be looked up,
/// or a URL that cannot be read, is taken as outside).
pub async fn on_local_network(announce_url: &str) -> bool {
    let Ok(url) = tracker_url(announce_url) else {
        return false;
    };
    let host = url.host_str().unwrap_or("");
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return btorrent_proto::addr::is_local_network(ip);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let Ok(addrs) = tokio::net::lookup_host((host.as_str(), port)).await else {
        return false;
    };
    let addrs: Vec<std::net::SocketAddr> = addrs.collect();
    !addrs.is_empty()
        && addrs
            .iter()
            .all(|a| btorrent_proto::addr::is_local_network(a.ip()))
}

/// A tracker URL as logs show it: scheme, host, port and path, never a passkey in the query.
pub fn shown_url(url: &str) -> String {
    match tracker_url(url) {
        Ok(u) => display_url(&u),
        Err(_) => url.split('?').next().unwrap_or(url).to_string(),
    }
}

/// The URL without its query, user info or fragment, for error text.
fn display_url(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    shown
}

fn transport_error(url: &Url, e: &reqwest::Error) -> TrackerError {
    if e.is_redirect() {
        return TrackerError::BadResponse(format!(
            "{} redirected more than {MAX_REDIRECTS} times",
            display_url(url)
        ));
    }
    // reqwest's own text repeats the whole URL (query included); report the root cause instead.
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    if family::is_no_address(e) {
        return TrackerError::NoAddress {
            url: display_url(url),
            detail: root.to_string(),
        };
    }
    let detail = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        format!("cannot connect: {root}")
    } else {
        root.to_string()
    };
    TrackerError::Transport {
        url: display_url(url),
        detail,
        timed_out: e.is_timeout(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use btorrent_proto::types::PeerId;

    #[tokio::test]
    async fn trackers_on_the_local_network_are_told_apart_from_the_others() {
        for local in [
            "http://127.0.0.1:6969/announce",
            "http://192.168.1.10:6969/announce",
            "udp://[::1]:6969/announce",
            "http://100.101.102.103:6969/announce",
            "http://localhost:6969/announce",
            "http://LOCALHOST/announce",
        ] {
            assert!(on_local_network(local).await, "{local}");
        }
        for outside in [
            "http://203.0.113.9:6969/announce",
            "udp://[2001:db8::7]:1337/announce",
            "not a url",
        ] {
            assert!(!on_local_network(outside).await, "{outside}");
        }
    }

    #[test]
    fn raw_bytes_are_percent_encoded() {
        let bytes: Vec<u8> = vec![
            0x00, b'+', b' ', b'a', b'Z', b'9', b'-', b'.', b'_', b'~', 0xff, b'%',
        ];
        assert_eq!(encode(&bytes), "%00%2B%20aZ9-._~%FF%25");
    }

    #[test]
    fn announce_query_has_every_field() {
        let req = AnnounceRequest {
            info_hash: InfoHash([0x12; 20]),
            peer_id: PeerId(*b"-BT0100-abcdefghijkl"),
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: Some(AnnounceEvent::Started),
            numwant: Some(80),
            key: Some(0xdead),
            ip: Some("10.0.0.1".parse().unwrap()),
        };
        let q = announce_query(&req);
        assert!(q.starts_with(&format!("info_hash={}&peer_id=-BT0100-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1", "%12".repeat(20))), "{q}");
        assert!(
            q.ends_with("&event=started&numwant=80&key=0000DEAD&ip=10.0.0.1"),
            "{q}"
        );
    }

    #[test]
    fn urls_for_scrape_and_get_peers() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            scrape_url(&u("http://t:1/announce?pk=1")).unwrap().as_str(),
            "http://t:1/scrape?pk=1"
        );
        assert_eq!(
            scrape_url(&u("http://t/x/announce.php")).unwrap().as_str(),
            "http://t/x/scrape.php"
        );
        assert!(matches!(
            scrape_url(&u("http://t/a")),
            Err(TrackerError::NoScrape(_))
        ));
        for s in [
            "http://t:1",
            "http://t:1/",
            "http://t:1/announce",
            "http://t:1/get_peers",
        ] {
            assert_eq!(get_peers_url(&u(s)).as_str(), "http://t:1/get_peers", "{s}");
        }
        assert_eq!(
            get_peers_url(&u("http://t/tr")).as_str(),
            "http://t/tr/get_peers"
        );
        let q = with_query(&u("http://t/announce?pk=a"), "x=1").unwrap();
        assert_eq!(q.as_str(), "http://t/announce?pk=a&x=1");
        assert_eq!(display_url(&q), "http://t/announce");
        assert_eq!(shown_url("http://u:pw@t:1/a?passkey=s"), "http://t:1/a");
    }

    #[test]
    fn unsupported_and_bad_urls() {
        assert!(matches!(
            http_url("udp://t:80/announce"),
            Err(TrackerError::UnsupportedScheme(s)) if s == "udp"
        ));
        assert!(matches!(
            tracker_url("wss://t:80/announce"),
            Err(TrackerError::UnsupportedScheme(s)) if s == "wss"
        ));
        assert_eq!(shown_url("udp://t:80/announce?pk=1"), "udp://t:80/announce");
        assert!(matches!(
            http_url("not a url"),
            Err(TrackerError::BadUrl { .. })
        ));
    }
}
