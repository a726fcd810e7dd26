//! `GET /announce`: record the peer, answer with other peers of the swarm.
//!
//! The reply is `d8:complete..10:downloaded..11:external ip..10:incomplete..8:interval..12:min
//! interval..5:peers..[6:peers6..]e`: `external ip` (BEP 24) is the address the request came from (4
//! or 16 bytes; a trusted proxy's `X-Forwarded-For` speaks for it, an `ip` parameter does not), so
//! a client behind a NAT learns its public address; the peers are compact by default (6 bytes per IPv4 peer in `peers`, 18 per IPv6 peer in `peers6`),
//! or with `compact=0` a list of `{ip, peer id, port}` dictionaries (`peer id` left out with
//! `no_peer_id=1`). The asking peer is never in its own reply; a `stopped` peer is removed at once and
//! gets no peers.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::http::{HeaderMap, Response};

use super::query;
use super::reply::{bencoded, failure};
use super::store::{Refusal, Update};
use super::swarm::{Counts, Family};
use super::{client_addr, Tracker};
use btorrent_proto::bencode::Writer;
use btorrent_proto::tracker::{write_compact_peer, AnnounceEvent, AnnounceRequest};
use btorrent_proto::types::PeerId;

pub(crate) fn handle(
    t: &Tracker,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
    raw_query: &[u8],
) -> Response<Body> {
    match answer(t, remote, headers, raw_query) {
        Ok(body) => bencoded(body),
        Err(reason) => {
            t.count_failure();
            failure(reason.as_ref())
        }
    }
}

pub(crate) fn refusal_text(r: Refusal) -> &'static str {
    match r {
        Refusal::NotAllowed => "unregistered torrent: this tracker only serves its own torrents",
        Refusal::TooManySwarms => "tracker is full: too many torrents, try again later",
        Refusal::TooManyPeers => "tracker is full: too many peers, try again later",
        Refusal::SwarmFull => "swarm is full: too many peers in this torrent, try again later",
    }
}

fn answer(
    t: &Tracker,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
    raw_query: &[u8],
) -> Result<Vec<u8>, std::borrow::Cow<'static, str>> {
    let cfg = &t.inner.cfg;
    if raw_query.len() > cfg.max_query_len {
        return Err("request too long".into());
    }
    let p = query::parse_announce(raw_query)?;
    let remote = remote.ok_or("cannot tell the client's address")?;
    let ip = client_addr::peer_ip(
        remote.ip(),
        headers,
        p.request.ip,
        &cfg.trusted_proxies,
        cfg.ip_param,
    );
    let seen = client_addr::peer_ip(
        remote.ip(),
        headers,
        None,
        &cfg.trusted_proxies,
        cfg.ip_param,
    );
    let mut peers = Vec::new();
    let counts = record(t, &p.request, ip, Family::Any, &mut peers).map_err(refusal_text)?;

    let mut b = Writer::with_capacity(176 + peers.len() * 20);
    b.begin_dict()
        .key_int(b"complete", counts.seeders)
        .key_int(b"downloaded", counts.completed)
        .key_int(b"downloaders", counts.downloaders)
        .bytes(b"external ip");
    match seen {
        IpAddr::V4(v4) => b.bytes(&v4.octets()),
        IpAddr::V6(v6) => b.bytes(&v6.octets()),
    };
    b.key_int(b"incomplete", counts.leechers)
        .key_int(b"interval", cfg.interval.as_secs())
        .key_int(b"min interval", cfg.min_interval.as_secs())
        .bytes(b"peers");
    if p.compact {
        write_compact(&mut b, &peers);
    } else {
        write_dicts(&mut b, &peers, !p.no_peer_id);
    }
    b.end();
    Ok(b.buf)
}

/// Records one announce in the store, HTTP or UDP alike, for the peer at `ip` (the address the
/// transport decided on) and the request's port, and fills `peers` with up to `numwant` (the
/// tracker's default when `None`, at most its maximum) other peers of the family `only`. Returns the
/// swarm's counts afterwards. A `stopped` peer is removed and gets no peers; one that says `paused`
/// is a partial seed (BEP 21).
pub(crate) fn record(
    t: &Tracker,
    req: &AnnounceRequest,
    ip: IpAddr,
    only: Family,
    peers: &mut Vec<(SocketAddr, PeerId)>,
) -> Result<Counts, Refusal> {
    let cfg = &t.inner.cfg;
    let update = Update {
        addr: SocketAddr::new(ip, req.port),
        id: req.peer_id,
        left: req.left,
        uploaded: req.uploaded,
        downloaded: req.downloaded,
        now: t.now_secs(),
        completed: req.event == Some(AnnounceEvent::Completed),
        paused: req.event == Some(AnnounceEvent::Paused),
    };
    let want = req
        .numwant
        .unwrap_or(cfg.numwant_default)
        .min(cfg.numwant_max) as usize;
    let store = &t.inner.store;
    // Allocated before the shard lock is taken.
    peers.reserve(want.min(store.peer_count()));
    let mut shard = store.shard_of(&req.info_hash);
    if req.event == Some(AnnounceEvent::Stopped) {
        store.stop(&mut shard, req.info_hash, &update.addr)
    } else {
        store.announce(&mut shard, req.info_hash, update, want, only, peers)
    }
}

/// `peers` with 6 bytes per IPv4 peer, then `peers6` with 18 per IPv6 peer when there are any.
fn write_compact(b: &mut Writer, peers: &[(SocketAddr, PeerId)]) {
    let v4 = peers.iter().filter(|(a, _)| a.is_ipv4()).count();
    b.bytes_header(v4 * 6);
    for (addr, _) in peers {
        if addr.is_ipv4() {
            write_compact_peer(addr, &mut b.buf);
        }
    }
    let v6 = peers.len() - v4;
    if v6 > 0 {
        b.bytes(b"peers6").bytes_header(v6 * 18);
        for (addr, _) in peers {
            if addr.is_ipv6() {
                write_compact_peer(addr, &mut b.buf);
            }
        }
    }
}

/// The original form: a list of `{ip, peer id, port}`, IPv4 and IPv6 together.
fn write_dicts(b: &mut Writer, peers: &[(SocketAddr, PeerId)], with_id: bool) {
    b.begin_list();
    for (addr, id) in peers {
        b.begin_dict()
            .bytes(b"ip")
            .bytes(addr.ip().to_string().as_bytes());
        if with_id {
            b.bytes(b"peer id").bytes(&id.0);
        }
        b.key_int(b"port", addr.port()).end();
    }
    b.end();
}
