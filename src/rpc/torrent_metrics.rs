//! `/metrics`' families of one sample per torrent (`btorrent_torrent_*`), labelled by
//! `info_hash` (40 hex digits) and `name`, as the exporters of other clients report them: what a
//! dashboard needs to chart each torrent (progress, bytes left, rates, totals, peers) and to list
//! them by state (`btorrent_torrent_info`, 1 with the state as a label). Every torrent the peer
//! session holds has samples, a paused one too; a removed one leaves the page. The counters count
//! from the session's start.

use crate::engine::TorrentStats;
use crate::prometheus::{Kind, Writer};
use btorrent_proto::types::InfoHash;

/// A family of one number per torrent: its name, kind, help and where the number comes from.
type Family = (&'static str, Kind, &'static str, fn(&TorrentStats) -> f64);

/// One torrent of the session: its hash, its figures and its state as front ends name it.
pub struct Row<'a> {
    pub info_hash: InfoHash,
    pub stats: &'a TorrentStats,
    pub state: &'a str,
}

/// Writes the per-torrent families for `rows`.
pub fn write(w: &mut Writer, rows: &[Row<'_>]) {
    let hashes: Vec<String> = rows.iter().map(|r| r.info_hash.to_hex()).collect();
    let ids: Vec<[(&str, &str); 2]> = rows
        .iter()
        .zip(&hashes)
        .map(|(r, h)| [("info_hash", h.as_str()), ("name", r.stats.name.as_str())])
        .collect();
    let with_state: Vec<[(&str, &str); 3]> = rows
        .iter()
        .zip(&ids)
        .map(|(r, [h, n])| [*h, *n, ("state", r.state)])
        .collect();
    let samples: Vec<(&[(&str, &str)], f64)> = with_state.iter().map(|l| (&l[..], 1.0)).collect();
    w.family(
        "btorrent_torrent_info",
        Kind::Gauge,
        "A torrent of the session, 1, with its state (downloading, seeding, checking, queued, paused, error).",
        &samples,
    );
    let families: [Family; 9] = [
        (
            "btorrent_torrent_progress_ratio",
            Kind::Gauge,
            "Share of the wanted bytes verified on disk, 0 to 1.",
            TorrentStats::progress,
        ),
        (
            "btorrent_torrent_wanted_bytes",
            Kind::Gauge,
            "Bytes of the files wanted (every file, unless some are skipped).",
            |s| s.bytes_wanted as f64,
        ),
        (
            "btorrent_torrent_left_bytes",
            Kind::Gauge,
            "Wanted bytes not yet verified on disk.",
            |s| s.bytes_left as f64,
        ),
        (
            "btorrent_torrent_download_rate_bytes",
            Kind::Gauge,
            "Download rate, bytes per second.",
            |s| s.down_rate as f64,
        ),
        (
            "btorrent_torrent_upload_rate_bytes",
            Kind::Gauge,
            "Upload rate, bytes per second.",
            |s| s.up_rate as f64,
        ),
        (
            "btorrent_torrent_downloaded_bytes_total",
            Kind::Counter,
            "Payload bytes received from peers in this run.",
            |s| s.downloaded as f64,
        ),
        (
            "btorrent_torrent_uploaded_bytes_total",
            Kind::Counter,
            "Payload bytes sent to peers in this run.",
            |s| s.uploaded as f64,
        ),
        (
            "btorrent_torrent_peers",
            Kind::Gauge,
            "Peers connected.",
            |s| s.peers as f64,
        ),
        (
            "btorrent_torrent_seeds",
            Kind::Gauge,
            "Connected peers that have every piece.",
            |s| s.seeds as f64,
        ),
    ];
    for (name, kind, help, value) in families {
        let samples: Vec<(&[(&str, &str)], f64)> = ids
            .iter()
            .zip(rows)
            .map(|(l, r)| (&l[..], value(r.stats)))
            .collect();
        w.family(name, kind, help, &samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::TorrentState;

    #[test]
    fn one_sample_per_torrent_with_its_name_escaped() {
        let stats = TorrentStats {
            name: "say \"hi\"\\now".into(),
            state: TorrentState::Downloading,
            bytes_wanted: 1000,
            bytes_left: 250,
            down_rate: 4096,
            uploaded: 7,
            peers: 3,
            seeds: 1,
            ..TorrentStats::default()
        };
        let ih = InfoHash([0xab; 20]);
        let mut w = Writer::new();
        write(
            &mut w,
            &[Row {
                info_hash: ih,
                stats: &stats,
                state: "downloading",
            }],
        );
        let page = w.finish();
        let id = format!(
            "info_hash=\"{}\",name=\"say \\\"hi\\\"\\\\now\"",
            "ab".repeat(20)
        );
        for line in [
            format!("btorrent_torrent_info{{{id},state=\"downloading\"}} 1"),
            format!("btorrent_torrent_progress_ratio{{{id}}} 0.75"),
            format!("btorrent_torrent_wanted_bytes{{{id}}} 1000"),
            format!("btorrent_torrent_left_bytes{{{id}}} 250"),
            format!("btorrent_torrent_download_rate_bytes{{{id}}} 4096"),
            format!("btorrent_torrent_uploaded_bytes_total{{{id}}} 7"),
            format!("btorrent_torrent_peers{{{id}}} 3"),
            format!("btorrent_torrent_seeds{{{id}}} 1"),
            "# TYPE btorrent_torrent_uploaded_bytes_total counter".to_string(),
        ] {
            assert!(page.lines().any(|l| l == line), "{line} not in:\n{page}");
        }
    }
}
