//! `GET /get_peers[?info_hash=H]`: every active peer as JSON ([`PeerList`]), grouped by endpoint (IP and
//! port) with the torrents it announced. `H` is 40 hex digits or the 20 raw bytes percent-encoded as in
//! an announce. The listing is sorted by address and capped at `get_peers_limit` endpoints; `total`
//! counts the (peer, torrent) entries that match and `truncated` says some were left out.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Response, StatusCode};

use super::query;
use super::reply::json;
use super::Tracker;
use crate::announce::{client_name, PeerList, PeerListing, PeerTorrent};
use crate::types::InfoHash;

fn bad_request(msg: &str) -> Response<Body> {
    let mut resp = json(serde_json::json!({ "error": msg }).to_string().into_bytes());
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp
}

fn parse_filter(raw_query: &[u8]) -> Result<Option<InfoHash>, String> {
    let Some((_, raw)) = query::pairs(raw_query).find(|(k, _)| *k == b"info_hash") else {
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

pub(crate) fn handle(t: &Tracker, raw_query: &[u8]) -> Response<Body> {
    let filter = match parse_filter(raw_query) {
        Ok(f) => f,
        Err(e) => return bad_request(&e),
    };
    let list = listing(t, filter);
    match serde_json::to_vec(&list) {
        Ok(body) => json(body),
        Err(_) => bad_request("listing could not be encoded"),
    }
}

/// Builds the listing, one shard lock at a time.
pub(crate) fn listing(t: &Tracker, filter: Option<InfoHash>) -> PeerList {
    let limit = t.inner.cfg.get_peers_limit;
    let now = t.now_secs();
    let mut by_addr: HashMap<SocketAddr, PeerListing> = HashMap::new();
    let mut total = 0usize;
    let mut listed = 0usize;
    let mut visit = |h: &InfoHash, swarm: &super::store::Swarm| {
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
    let store = &t.inner.store;
    match filter {
        Some(h) => {
            let shard = store.shard_of(&h);
            if let Some(swarm) = shard.swarms.get(&h) {
                visit(&h, swarm);
            }
        }
        None => store.for_each_shard(|shard| {
            for (h, swarm) in &shard.swarms {
                visit(h, swarm);
            }
        }),
    }
    let mut peers: Vec<PeerListing> = by_addr.into_values().collect();
    peers.sort_by_key(|p| (p.ip, p.port));
    for p in &mut peers {
        p.torrents.sort_by_key(|t| t.info_hash);
    }
    PeerList {
        truncated: listed < total,
        peers,
        total,
    }
}
