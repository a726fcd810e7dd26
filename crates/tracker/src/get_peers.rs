//! `GET /get_peers[?info_hash=H][&limit=N][&after=IP:PORT][&offset=N]`: the active peers as JSON
//! ([`PeerList`]), grouped by endpoint (IP and port) with the torrents each announced, sorted by address
//! and served a page at a time. `H` is 40 hex digits or the 20 raw bytes percent-encoded as in an
//! announce. A page holds `limit` endpoints (default `get_peers_page`, at most `get_peers_max_page`),
//! starting after the endpoint `after` (the `next` of the previous page), skipping `offset` more;
//! `next` is absent on the last page.
//!
//! Cheap under a flood: pages are cut from a snapshot of the whole listing (at most `get_peers_limit`
//! endpoints; `total` counts the (peer, torrent) entries that match and `truncated` says some are in
//! no page). A first page rebuilds the snapshot when the swarms changed since it was built (so a
//! listing never misses an announce already answered); the pages that follow are cut from the same
//! snapshot while it is younger than [`REFRESH`], cheap and consistent. All `/get_peers` work runs one
//! request at a time on a blocking thread, so announces keep the async workers and a core to
//! themselves.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Response, StatusCode};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::query;
use super::reply::json;
use super::Tracker;
use btorrent_proto::listing::{client_name, PeerList, PeerListing, PeerTorrent};
use btorrent_proto::types::InfoHash;

fn bad_request(msg: &str) -> Response<Body> {
    let mut resp = json(serde_json::json!({ "error": msg }).to_string().into_bytes());
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp
}

/// How long the pages that follow a first page are cut from its snapshot, changes or not.
pub(crate) const REFRESH: Duration = Duration::from_secs(1);

/// The listing snapshot and the gate that lets one `/get_peers` request work at a time.
pub(crate) struct Listings {
    gate: Semaphore,
    snapshot: Mutex<Option<Arc<Snapshot>>>,
}

impl Default for Listings {
    fn default() -> Self {
        Listings {
            gate: Semaphore::new(1),
            snapshot: Mutex::new(None),
        }
    }
}

struct Snapshot {
    list: PeerList,
    built: Instant,
    /// The tracker's clock when it was built: ages in `list` are as of then.
    built_secs: u32,
    /// The store's change count when it was built.
    changes: u64,
}

/// What one request asks for.
struct PageQuery {
    filter: Option<InfoHash>,
    limit: Option<usize>,
    after: Option<(IpAddr, u16)>,
    offset: usize,
}

fn param<'q>(raw_query: &'q [u8], key: &str) -> Option<&'q [u8]> {
    query::pairs(raw_query)
        .find(|(k, _)| *k == key.as_bytes())
        .map(|(_, v)| v)
}

/// A percent-decoded parameter as text, `None` when absent.
fn text_param(raw_query: &[u8], key: &str, what: &str) -> Result<Option<String>, String> {
    let Some(raw) = param(raw_query, key) else {
        return Ok(None);
    };
    let mut buf = vec![0u8; raw.len()];
    query::decode(raw, &mut buf)
        .ok()
        .and_then(|b| std::str::from_utf8(b).ok())
        .map(|s| Some(s.to_string()))
        .ok_or_else(|| format!("{key} must be {what}"))
}

fn number_param(raw_query: &[u8], key: &str) -> Result<Option<usize>, String> {
    text_param(raw_query, key, "a number")?
        .map(|s| s.parse().map_err(|_| format!("{key} must be a number")))
        .transpose()
}

fn parse_query(raw_query: &[u8]) -> Result<PageQuery, String> {
    let after = text_param(raw_query, "after", "an IP:port address")?
        .map(|s| {
            s.parse::<SocketAddr>()
                .map(|a| (a.ip(), a.port()))
                .map_err(|_| "after must be an IP:port address".to_string())
        })
        .transpose()?;
    Ok(PageQuery {
        filter: parse_filter(raw_query)?,
        limit: number_param(raw_query, "limit")?.filter(|&n| n > 0),
        after,
        offset: number_param(raw_query, "offset")?.unwrap_or(0),
    })
}

fn parse_filter(raw_query: &[u8]) -> Result<Option<InfoHash>, String> {
    let Some(raw) = param(raw_query, "info_hash") else {
        return Ok(None);
    };
    if raw.len() == 40 {
        if let Some(h) = std::str::from_utf8(raw).ok().and_then(InfoHash::from_hex) {
            return Ok(Some(h));
        }
    }
    query::decode_id("info_hash", raw)
        .map(|b| Some(InfoHash(b)))
        .map_err(|_| "info_hash must be 40 hex digits or 20 percent-encoded bytes".to_string())
}

pub(crate) async fn handle(t: Tracker, raw_query: &[u8]) -> Response<Body> {
    let q = match parse_query(raw_query) {
        Ok(q) => q,
        Err(e) => return bad_request(&e),
    };
    let Ok(_turn) = t.inner.listings.gate.acquire().await else {
        return bad_request("the tracker is shutting down");
    };
    let tracker = t.clone();
    let work = tokio::task::spawn_blocking(move || {
        let list = page(&tracker, &q);
        serde_json::to_vec(&list)
    });
    match work.await {
        Ok(Ok(body)) => json(body),
        _ => bad_request("listing could not be encoded"),
    }
}

/// The snapshot, rebuilt first when the swarms changed since it was built, unless a following page
/// (`continuation`) asks within [`REFRESH`] of the build.
fn snapshot(t: &Tracker, continuation: bool) -> Arc<Snapshot> {
    let changes = t.inner.store.changes();
    let mut slot = t.inner.listings.snapshot.lock();
    if let Some(s) = slot.as_ref() {
        if s.changes == changes || (continuation && s.built.elapsed() < REFRESH) {
            return s.clone();
        }
    }
    let fresh = Arc::new(Snapshot {
        built: Instant::now(),
        built_secs: t.now_secs(),
        list: listing(t),
        changes,
    });
    *slot = Some(fresh.clone());
    fresh
}

/// One page of the listing, ages brought up to now.
fn page(t: &Tracker, q: &PageQuery) -> PeerList {
    let cfg = &t.inner.cfg;
    let max = cfg.get_peers_max_page.max(1);
    let limit = q.limit.unwrap_or(cfg.get_peers_page).clamp(1, max);
    let snap = snapshot(t, q.after.is_some() || q.offset > 0);
    let aged = u64::from(t.now_secs().saturating_sub(snap.built_secs));
    let all = &snap.list.peers;
    let start = q
        .after
        .map_or(0, |after| all.partition_point(|p| (p.ip, p.port) <= after));
    let only = |p: &PeerListing| -> Option<PeerListing> {
        let Some(h) = q.filter else {
            return Some(p.clone());
        };
        let t = p.torrents.iter().find(|t| t.info_hash == h)?;
        Some(PeerListing {
            left: t.left,
            last_seen_secs: t.last_seen_secs,
            torrents: vec![t.clone()],
            ..p.clone()
        })
    };
    let mut peers: Vec<PeerListing> = all[start..]
        .iter()
        .filter_map(only)
        .skip(q.offset)
        .take(limit + 1)
        .collect();
    let next = (peers.len() > limit).then(|| {
        peers.truncate(limit);
        let last = &peers[limit - 1];
        SocketAddr::new(last.ip, last.port).to_string()
    });
    for p in &mut peers {
        p.last_seen_secs += aged;
        for t in &mut p.torrents {
            t.last_seen_secs += aged;
        }
    }
    let (total, truncated) = match q.filter {
        None => (snap.list.total, snap.list.truncated),
        // A complete snapshot holds the whole swarm; a truncated one is compared with the store.
        Some(_) if !snap.list.truncated => (all.iter().filter_map(only).count(), false),
        Some(h) => {
            let total = t
                .inner
                .store
                .shard_of(&h)
                .swarms
                .get(&h)
                .map_or(0, |s| s.peers.len());
            (total, all.iter().filter_map(only).count() < total)
        }
    };
    PeerList {
        peers,
        total,
        truncated,
        next,
    }
}

/// Builds the whole listing (at most `get_peers_limit` endpoints), one shard lock at a time.
fn listing(t: &Tracker) -> PeerList {
    let limit = t.inner.cfg.get_peers_limit;
    let now = t.now_secs();
    let mut by_addr: HashMap<SocketAddr, PeerListing> = HashMap::new();
    let mut total = 0usize;
    let mut listed = 0usize;
    let mut visit = |h: &InfoHash, swarm: &super::swarm::Swarm| {
        total += swarm.peers.len();
        if by_addr.len() >= limit {
            // Full: only count the rest, so a large tracker is not walked peer by peer under its locks.
            return;
        }
        for p in &swarm.peers {
            let age = u64::from(now.saturating_sub(p.last_seen));
            let torrent = PeerTorrent {
                info_hash: *h,
                left: p.left,
                uploaded: p.uploaded,
                downloaded: p.downloaded,
                last_seen_secs: age,
            };
            if let Some(entry) = by_addr.get_mut(&p.addr) {
                entry.left = entry.left.saturating_add(p.left);
                if age <= entry.last_seen_secs {
                    entry.last_seen_secs = age;
                    entry.peer_id = p.id;
                    entry.client = client_name(&p.id);
                }
                entry.torrents.push(torrent);
                listed += 1;
            } else if by_addr.len() < limit {
                listed += 1;
                by_addr.insert(
                    p.addr,
                    PeerListing {
                        peer_id: p.id,
                        client: client_name(&p.id),
                        ip: p.addr.ip(),
                        port: p.addr.port(),
                        left: p.left,
                        last_seen_secs: age,
                        torrents: vec![torrent],
                    },
                );
            }
        }
    };
    t.inner.store.for_each_shard(|shard| {
        for (h, swarm) in &shard.swarms {
            visit(h, swarm);
        }
    });
    let mut peers: Vec<PeerListing> = by_addr.into_values().collect();
    peers.sort_by_key(|p| (p.ip, p.port));
    for p in &mut peers {
        p.torrents.sort_by_key(|t| t.info_hash);
    }
    PeerList {
        truncated: listed < total,
        peers,
        total,
        next: None,
    }
}
