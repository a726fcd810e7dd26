//! `GET /stats` (JSON counters) and `GET /` (a small HTML status page: totals and the largest swarms).
//! Both read the store one shard at a time.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use axum::body::Body;
use axum::http::Response;
use serde::{Deserialize, Serialize};

use super::reply::{html, json};
use super::Tracker;
use btorrent_proto::types::InfoHash;

/// Swarms listed on the status page.
const TOP_SWARMS: usize = 50;

/// A snapshot of the tracker's counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackerStats {
    /// Torrents with at least one peer.
    pub swarms: usize,
    pub peers: usize,
    pub seeders: usize,
    pub leechers: usize,
    /// Those leechers that want nothing more, having skipped files (BEP 21's partial seeds).
    #[serde(default)]
    pub partial_seeds: usize,
    /// `completed` events counted in the current swarms.
    pub completed: u64,
    pub announces: u64,
    /// Torrents scraped (a scrape naming three info-hashes counts three).
    pub scrapes: u64,
    /// Requests answered with a `failure reason`.
    pub failures: u64,
    pub uptime_secs: u64,
    /// HTTP connections open now (served by [`Tracker::serve`](super::Tracker::serve)).
    #[serde(default)]
    pub connections: usize,
    /// Announces that came over UDP (counted in `announces` too).
    #[serde(default)]
    pub udp_announces: u64,
    /// UDP connect requests answered.
    #[serde(default)]
    pub udp_connects: u64,
    /// UDP scrape packets answered.
    #[serde(default)]
    pub udp_scrapes: u64,
    /// UDP packets dropped unanswered (malformed, or no valid connection id).
    #[serde(default)]
    pub udp_dropped: u64,
    pub private: bool,
    pub interval_secs: u64,
}

impl TrackerStats {
    /// The counters as Prometheus metrics (`btorrent_tracker_*`), for the tracker's `/metrics` and
    /// the RPC server's when the tracker is embedded.
    pub fn write_metrics(&self, w: &mut btorrent_proto::prometheus::Writer) {
        use btorrent_proto::prometheus::Kind::{Counter, Gauge};
        w.single(
            "btorrent_tracker_announces_total",
            Counter,
            "Announces answered.",
            self.announces as f64,
        );
        w.single(
            "btorrent_tracker_scrapes_total",
            Counter,
            "Torrents scraped.",
            self.scrapes as f64,
        );
        w.single(
            "btorrent_tracker_failures_total",
            Counter,
            "Requests answered with a failure reason.",
            self.failures as f64,
        );
        w.single(
            "btorrent_tracker_swarms",
            Gauge,
            "Torrents with at least one peer.",
            self.swarms as f64,
        );
        w.family(
            "btorrent_tracker_peers",
            Gauge,
            "Peers in the swarms, by role (a partial seed is a leecher that wants nothing more).",
            &[
                (&[("role", "seeder")], self.seeders as f64),
                (
                    &[("role", "leecher")],
                    (self.leechers - self.partial_seeds) as f64,
                ),
                (&[("role", "partial_seed")], self.partial_seeds as f64),
            ],
        );
        w.single(
            "btorrent_tracker_completed",
            Gauge,
            "Completed events counted in the current swarms.",
            self.completed as f64,
        );
        w.single(
            "btorrent_tracker_connections",
            Gauge,
            "HTTP connections open now.",
            self.connections as f64,
        );
        w.single(
            "btorrent_tracker_uptime_seconds",
            Gauge,
            "Seconds since the tracker started.",
            self.uptime_secs as f64,
        );
    }
}

pub(crate) fn collect(t: &Tracker) -> TrackerStats {
    use std::sync::atomic::Ordering::Relaxed;
    let mut s = TrackerStats {
        swarms: 0,
        peers: 0,
        seeders: 0,
        leechers: 0,
        partial_seeds: 0,
        completed: 0,
        announces: 0,
        scrapes: 0,
        failures: t.inner.failures.load(Relaxed),
        uptime_secs: t.inner.epoch.elapsed().as_secs(),
        connections: t.inner.conns.len(),
        udp_announces: t.inner.udp.announces.load(Relaxed),
        udp_connects: t.inner.udp.connects.load(Relaxed),
        udp_scrapes: t.inner.udp.scrapes.load(Relaxed),
        udp_dropped: t.inner.udp.dropped.load(Relaxed),
        private: t.inner.cfg.private,
        interval_secs: t.inner.cfg.interval.as_secs(),
    };
    t.inner.store.for_each_shard(|shard| {
        s.announces += shard.announces;
        s.scrapes += shard.scrapes;
        s.swarms += shard.swarms.len();
        for swarm in shard.swarms.values() {
            // Peers as the swarms count them: a dual-stack client's two endpoints are one.
            let c = swarm.counts();
            s.peers += c.seeders + c.leechers;
            s.seeders += c.seeders;
            s.leechers += c.leechers;
            s.partial_seeds += c.leechers - c.downloaders;
            s.completed += swarm.completed;
        }
    });
    s
}

pub(crate) fn stats_json(t: &Tracker) -> Response<Body> {
    json(serde_json::to_vec(&collect(t)).unwrap_or_default())
}

/// (peers, seeders, leechers, downloaders, completed, hash) of the largest swarms, largest first.
fn top_swarms(t: &Tracker, n: usize) -> Vec<(usize, usize, usize, usize, u64, InfoHash)> {
    let mut heap = BinaryHeap::with_capacity(n + 1);
    t.inner.store.for_each_shard(|shard| {
        for (h, s) in &shard.swarms {
            let c = s.counts();
            heap.push(Reverse((
                c.seeders + c.leechers,
                c.seeders,
                c.leechers,
                c.downloaders,
                c.completed,
                *h,
            )));
            if heap.len() > n {
                heap.pop();
            }
        }
    });
    let mut v: Vec<_> = heap.into_iter().map(|Reverse(x)| x).collect();
    v.sort_by(|a, b| b.cmp(a));
    v
}

fn duration_text(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

pub(crate) fn page(t: &Tracker) -> Response<Body> {
    use std::fmt::Write;
    let s = collect(t);
    let top = top_swarms(t, TOP_SWARMS);
    let mut out = String::with_capacity(4096 + top.len() * 160);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>btorrent tracker</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{padding:.2em .8em;text-align:right;border-bottom:1px solid #ddd}}\
         td.h{{font-family:monospace;text-align:left}}</style></head><body>\n\
         <h1>btorrent tracker</h1>\n<table id=\"totals\">\n\
         <tr><th>swarms</th><td>{}</td></tr>\n<tr><th>peers</th><td>{}</td></tr>\n\
         <tr><th>seeders</th><td>{}</td></tr>\n<tr><th>leechers</th><td>{}</td></tr>\n\
         <tr><th>partial seeds</th><td>{}</td></tr>\n\
         <tr><th>completed</th><td>{}</td></tr>\n<tr><th>announces</th><td>{}</td></tr>\n<tr><th>UDP announces</th><td>{}</td></tr>\n\
         <tr><th>scrapes</th><td>{}</td></tr>\n<tr><th>refused requests</th><td>{}</td></tr>\n<tr><th>UDP packets dropped</th><td>{}</td></tr>\n\
         <tr><th>connections</th><td>{}</td></tr>\n\
         <tr><th>up for</th><td>{}</td></tr>\n<tr><th>mode</th><td>{}</td></tr>\n</table>\n",
        s.swarms,
        s.peers,
        s.seeders,
        s.leechers,
        s.partial_seeds,
        s.completed,
        s.announces,
        s.udp_announces,
        s.scrapes,
        s.failures,
        s.udp_dropped,
        s.connections,
        duration_text(s.uptime_secs),
        if s.private { "private" } else { "open" },
    );
    if top.is_empty() {
        out.push_str("<p>No active swarms.</p>\n");
    } else {
        let _ = write!(
            out,
            "<h2>Largest swarms</h2>\n<table id=\"swarms\">\n<tr><th>info-hash</th><th>seeders</th>\
             <th>leechers</th><th>downloading</th><th>completed</th></tr>\n"
        );
        for (_, seeders, leechers, downloading, completed, h) in &top {
            let _ = writeln!(
                out,
                "<tr><td class=\"h\">{h}</td><td>{seeders}</td><td>{leechers}</td><td>{downloading}</td><td>{completed}</td></tr>"
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str(
        "<p><a href=\"/stats\">/stats</a> · <a href=\"/get_peers\">/get_peers</a></p>\n</body></html>\n",
    );
    html(out)
}
