//! `GET /scrape` (BEP 48): seeders, leechers and completed downloads of the torrents named by one or
//! more `info_hash` parameters, and the leechers still downloading (BEP 21's `downloaders`: not the
//! partial seeds). A torrent the tracker does not hold is reported with zero counts; in
//! private mode an unregistered one is left out. A scrape without `info_hash` (a full scrape of every
//! torrent) is refused: its size would grow with the tracker.

use axum::body::Body;
use axum::http::Response;

use super::query;
use super::reply::{bencoded, failure};
use super::swarm::Counts;
use super::Tracker;
use btorrent_proto::bencode::Writer;
use btorrent_proto::types::InfoHash;

pub(crate) fn handle(t: &Tracker, raw_query: &[u8]) -> Response<Body> {
    let cfg = &t.inner.cfg;
    if raw_query.len() > cfg.max_query_len {
        t.count_failure();
        return failure("request too long");
    }
    let mut hashes = match query::parse_scrape(raw_query, cfg.max_scrape_hashes) {
        Ok(h) if h.is_empty() => {
            t.count_failure();
            return failure(
                "name the torrents to scrape with info_hash (full scrape is not offered)",
            );
        }
        Ok(h) => h,
        Err(reason) => {
            t.count_failure();
            return failure(&reason);
        }
    };
    // Dictionary keys must be sorted and unique.
    hashes.sort_unstable();
    hashes.dedup();
    let mut b = Writer::with_capacity(16 + hashes.len() * 90);
    b.begin_dict().bytes(b"files").begin_dict();
    for h in &hashes {
        let Some(counts) = counts(t, h) else {
            continue;
        };
        b.bytes(&h.0)
            .begin_dict()
            .key_int(b"complete", counts.seeders)
            .key_int(b"downloaded", counts.completed)
            .key_int(b"downloaders", counts.downloaders)
            .key_int(b"incomplete", counts.leechers)
            .end();
    }
    b.end().end();
    bencoded(b.buf)
}

/// One torrent's counts for a scrape, HTTP or UDP; zeros for a torrent the tracker does not hold,
/// `None` for one unregistered in private mode. Counted as scraped.
pub(crate) fn counts(t: &Tracker, h: &InfoHash) -> Option<Counts> {
    let store = &t.inner.store;
    let mut shard = store.shard_of(h);
    shard.scrapes += 1;
    if !store.is_allowed(&shard, h) {
        return None;
    }
    Some(
        shard
            .swarms
            .get(h)
            .map_or(Counts::default(), |s| s.counts()),
    )
}
