//! Tracker primitives: `peers([tracker_url[, info_hash]])` (a btorrent tracker's `/get_peers`),
//! `announce(torrent, event)` and `scrape(torrent)`.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use crate::announce::{
    client_name, AnnounceEvent, AnnounceRequest, PeerListing, RetryPolicy, TrackerClient,
};
use crate::metainfo::Metainfo;
use crate::script::host::HostContext;
use crate::types::InfoHash;

/// The client scripts use: a tracker that does not answer fails the call within seconds, once (a
/// script that wants retries can loop; handlers have a time limit of their own).
fn script_client() -> TrackerClient {
    TrackerClient::with_timeouts(
        std::time::Duration::from_secs(5),
        std::time::Duration::from_secs(10),
    )
    .with_retry(RetryPolicy::none())
}

fn listing_map(p: &PeerListing) -> Map {
    let mut m = Map::new();
    m.insert("peer_id".into(), p.peer_id.to_hex().into());
    m.insert("client".into(), client_name(&p.peer_id).into());
    m.insert("ip".into(), p.ip.to_string().into());
    m.insert("port".into(), (p.port as i64).into());
    let addr = std::net::SocketAddr::new(p.ip, p.port);
    m.insert("addr".into(), addr.to_string().into());
    m.insert("left".into(), (p.left as i64).into());
    m.insert("last_seen_secs".into(), (p.last_seen_secs as i64).into());
    let torrents: Array = p
        .torrents
        .iter()
        .map(|t| {
            let mut e = Map::new();
            e.insert("info_hash".into(), t.info_hash.to_hex().into());
            e.insert("left".into(), (t.left as i64).into());
            e.insert("uploaded".into(), (t.uploaded as i64).into());
            e.insert("downloaded".into(), (t.downloaded as i64).into());
            Dynamic::from_map(e)
        })
        .collect();
    m.insert("torrents".into(), torrents.into());
    m
}

fn peers(
    ctx: &HostContext,
    url: Option<&str>,
    hash: Option<&str>,
) -> Result<Array, Box<EvalAltResult>> {
    let url = match url {
        Some(u) => u.to_string(),
        None => ctx.config()?.settings.default_tracker().url,
    };
    let hash = match hash {
        Some(h) => Some(
            InfoHash::from_hex(h)
                .ok_or_else(|| format!("peers: {h:?} is not a 40-digit info-hash"))?,
        ),
        None => None,
    };
    let list = ctx
        .block_on(script_client().get_peers(&url, hash))?
        .or_else(|e| fail("peers", e))?;
    Ok(list
        .iter()
        .map(|p| Dynamic::from_map(listing_map(p)))
        .collect())
}

fn announce(ctx: &HostContext, torrent: &str, event: &str) -> Result<Map, Box<EvalAltResult>> {
    let ev: Option<AnnounceEvent> = match event {
        "" | "none" | "periodic" => None,
        e => Some(e.parse().or_else(|m| fail("announce", m))?),
    };
    let meta = Metainfo::load(std::path::Path::new(torrent))
        .or_else(|e| fail("announce", format!("{torrent}: {e}")))?;
    let cfg = ctx.config()?;
    let seeding = cfg
        .find(&meta.info_hash)
        .is_some_and(|t| t.state == "seeding");
    let url = meta
        .trackers()
        .into_iter()
        .next()
        .unwrap_or_else(|| cfg.settings.default_tracker().url);
    // Announce as the peer of this process: the running session's id and port; with `listen_port =
    // 0` (a free port chosen at start) the session is started to have a port at all.
    let (peer_id, port) = match ctx.block_on(ctx.peer.get())? {
        Some(s) => (s.peer_id(), s.listen_addr().port()),
        None if cfg.settings.listen_port != 0 => (ctx.peer_id, cfg.settings.listen_port),
        None => {
            let s = ctx.session()?;
            (s.peer_id(), s.listen_addr().port())
        }
    };
    let req = AnnounceRequest {
        info_hash: meta.info_hash,
        peer_id,
        port,
        uploaded: 0,
        downloaded: 0,
        left: if seeding { 0 } else { meta.info.total_length },
        event: ev,
        numwant: Some(50),
        key: None,
        ip: None,
    };
    let resp = ctx
        .block_on(script_client().announce(&url, &req))?
        .or_else(|e| fail("announce", e))?;
    let mut m = Map::new();
    m.insert("tracker".into(), url.into());
    m.insert("interval".into(), (resp.interval.as_secs() as i64).into());
    let count = |v: Option<u64>| v.map_or(Dynamic::UNIT, |n| Dynamic::from(n as i64));
    m.insert("complete".into(), count(resp.complete));
    m.insert("incomplete".into(), count(resp.incomplete));
    // Unit when the tracker does not say; `downloaders` leaves partial seeds out (BEP 21).
    m.insert("downloaded".into(), count(resp.downloaded));
    m.insert("downloaders".into(), count(resp.downloaders));
    let peers: Array = resp
        .peers
        .iter()
        .map(|p| Dynamic::from(p.to_string()))
        .collect();
    m.insert("peers".into(), peers.into());
    if let Some(w) = resp.warning {
        m.insert("warning".into(), w.into());
    }
    Ok(m)
}

fn scrape(ctx: &HostContext, torrent: &str) -> Result<Map, Box<EvalAltResult>> {
    let meta = Metainfo::load(std::path::Path::new(torrent))
        .or_else(|e| fail("scrape", format!("{torrent}: {e}")))?;
    let Some(url) = meta.trackers().into_iter().next() else {
        return fail("scrape", format!("{torrent} names no tracker"));
    };
    let stats = ctx
        .block_on(script_client().scrape(&url, &[meta.info_hash]))?
        .or_else(|e| fail("scrape", e))?;
    let mut m = Map::new();
    let s = stats.get(&meta.info_hash);
    m.insert(
        "complete".into(),
        (s.map_or(0, |s| s.complete) as i64).into(),
    );
    m.insert(
        "incomplete".into(),
        (s.map_or(0, |s| s.incomplete) as i64).into(),
    );
    m.insert(
        "downloaded".into(),
        (s.map_or(0, |s| s.downloaded) as i64).into(),
    );
    // Unit when the tracker does not count them (BEP 21).
    let downloaders = s.and_then(|s| s.downloaders);
    m.insert(
        "downloaders".into(),
        downloaders.map_or(Dynamic::UNIT, |n| Dynamic::from(n as i64)),
    );
    Ok(m)
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("peers", move || peers(&c, None, None));
    let c = ctx.clone();
    engine.register_fn("peers", move |url: &str| peers(&c, Some(url), None));
    let c = ctx.clone();
    engine.register_fn("peers", move |url: &str, hash: &str| {
        peers(&c, Some(url), Some(hash))
    });
    let c = ctx.clone();
    engine.register_fn("announce", move |torrent: &str, event: &str| {
        announce(&c, torrent, event)
    });
    let c = ctx.clone();
    engine.register_fn("scrape", move |torrent: &str| scrape(&c, torrent));
}
