//! What the RPC server's `/metrics` reports: the peer session's rates, bytes, peers, torrents by
//! state and the speed limits in force (`btorrent_*`), and the embedded tracker's counters (`btorrent_tracker_*`) when it runs.

use crate::prometheus::{Kind, Writer};

use super::Rpc;

/// The page of metrics.
pub fn render(rpc: &Rpc) -> String {
    let mut w = Writer::new();
    let stats: Vec<_> = rpc
        .peer
        .current()
        .map(|s| s.torrents().iter().map(|h| h.stats()).collect())
        .unwrap_or_default();
    let sum = |f: fn(&crate::engine::TorrentStats) -> u64| stats.iter().map(f).sum::<u64>() as f64;
    w.single(
        "btorrent_download_rate_bytes",
        Kind::Gauge,
        "Download rate over every torrent, bytes per second.",
        sum(|s| s.down_rate),
    );
    w.single(
        "btorrent_upload_rate_bytes",
        Kind::Gauge,
        "Upload rate over every torrent, bytes per second.",
        sum(|s| s.up_rate),
    );
    w.single(
        "btorrent_downloaded_bytes_total",
        Kind::Counter,
        "Payload bytes received from peers by the running torrents.",
        sum(|s| s.downloaded),
    );
    w.single(
        "btorrent_uploaded_bytes_total",
        Kind::Counter,
        "Payload bytes sent to peers by the running torrents.",
        sum(|s| s.uploaded),
    );
    w.single(
        "btorrent_peers",
        Kind::Gauge,
        "Peers connected, over every torrent.",
        sum(|s| s.peers as u64),
    );
    let states = ["checking", "downloading", "seeding", "paused", "error"];
    let counts: Vec<(String, f64)> = states
        .iter()
        .map(|st| {
            let n = stats
                .iter()
                .filter(|s| s.state.to_string().split(':').next() == Some(*st))
                .count();
            (st.to_string(), n as f64)
        })
        .collect();
    let labels: Vec<[(&str, &str); 1]> = counts
        .iter()
        .map(|(s, _)| [("state", s.as_str())])
        .collect();
    let samples: Vec<(&[(&str, &str)], f64)> = labels
        .iter()
        .zip(&counts)
        .map(|(l, (_, n))| (&l[..], *n))
        .collect();
    w.family(
        "btorrent_torrents",
        Kind::Gauge,
        "Torrents in the peer session, by state.",
        &samples,
    );
    // The limits in force (the alternative ones while on); no sample for a direction without one.
    if let Some(session) = rpc.peer.current() {
        let (up, down) = session.limits();
        let limits: Vec<([(&str, &str); 1], f64)> = [("up", up), ("down", down)]
            .into_iter()
            .filter_map(|(dir, l)| Some(([("direction", dir)], l? as f64)))
            .collect();
        let samples: Vec<(&[(&str, &str)], f64)> =
            limits.iter().map(|(l, v)| (&l[..], *v)).collect();
        w.family(
            "btorrent_speed_limit_bytes",
            Kind::Gauge,
            "The session's speed limit in force, bytes per second, by direction (none: unlimited).",
            &samples,
        );
    }
    w.single(
        "btorrent_rpc_uptime_seconds",
        Kind::Gauge,
        "Seconds since the RPC server started.",
        rpc.started.elapsed().as_secs() as f64,
    );
    if let Some(t) = &rpc.tracker {
        t.stats().write_metrics(&mut w);
    }
    w.finish()
}
