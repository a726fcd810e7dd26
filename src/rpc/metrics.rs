//! What the RPC server's `/metrics` reports: the peer session's rates, bytes, peers (all, encrypted,
//! by where their address came from), torrents by
//! state (`queued` among them), peer sockets against their limit, the blocklist's ranges, the
//! ports the router forwards and the speed limits in force (`btorrent_*`), each running torrent's
//! figures ([`super::torrent_metrics`], `btorrent_torrent_*`), and the embedded tracker's counters
//! (`btorrent_tracker_*`) when it runs.

use crate::prometheus::{Kind, Writer};

use super::Rpc;

/// The page of metrics.
pub fn render(rpc: &Rpc) -> String {
    let mut w = Writer::new();
    let session = rpc.peer.current();
    let cfg = rpc.peer.torrents().config().ok();
    let handles = session.as_ref().map(|s| s.torrents()).unwrap_or_default();
    let stats: Vec<_> = handles.iter().map(|h| h.stats()).collect();
    // Each torrent's state as front ends name it (`queued` while a queue holds it).
    let mut words: Vec<&str> = handles
        .iter()
        .zip(&stats)
        .map(|(h, s)| {
            let entry = cfg.as_ref().and_then(|c| c.find(&h.info_hash()));
            crate::queue::state_word(&s.state, entry.map(|e| e.state.as_str()))
        })
        .collect();
    // Magnet links added over the RPC: `metadata` while fetching it, `paused` when stopped.
    let (fetching, waiting) = rpc.fetching.counts();
    words.extend(std::iter::repeat_n("metadata", fetching));
    words.extend(std::iter::repeat_n("paused", waiting));
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
    let peers: Vec<crate::engine::PeerInfo> = handles.iter().flat_map(|h| h.peers()).collect();
    w.single(
        "btorrent_peers_encrypted",
        Kind::Gauge,
        "Peers connected over an encrypted (RC4) stream, over every torrent.",
        peers.iter().filter(|p| p.encrypted).count() as f64,
    );
    w.single(
        "btorrent_peers_utp",
        Kind::Gauge,
        "Peers connected over uTP (rather than TCP), over every torrent.",
        peers.iter().filter(|p| p.utp).count() as f64,
    );
    {
        use crate::engine::known::Source;
        let sources = [
            Source::Tracker,
            Source::Dht,
            Source::Pex,
            Source::Lsd,
            Source::User,
            Source::Incoming,
        ];
        let labels: Vec<[(&str, &str); 1]> =
            sources.iter().map(|s| [("source", s.name())]).collect();
        let samples: Vec<(&[(&str, &str)], f64)> = labels
            .iter()
            .zip(sources)
            .map(|(l, s)| {
                (
                    &l[..],
                    peers.iter().filter(|p| p.source == s).count() as f64,
                )
            })
            .collect();
        w.family(
            "btorrent_peers_from",
            Kind::Gauge,
            "Peers connected, by where their address came from (incoming: they dialed us).",
            &samples,
        );
    }
    let states = [
        "metadata",
        "checking",
        "downloading",
        "queued",
        "seeding",
        "paused",
        "error",
    ];
    let counts: Vec<(String, f64)> = states
        .iter()
        .map(|st| {
            let n = words.iter().filter(|w| *w == st).count();
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
        "Torrents by state (metadata: a magnet link fetching its metadata).",
        &samples,
    );
    let rows: Vec<super::torrent_metrics::Row<'_>> = handles
        .iter()
        .zip(&stats)
        .zip(&words)
        .map(|((h, s), state)| super::torrent_metrics::Row {
            info_hash: h.info_hash(),
            stats: s,
            state,
        })
        .collect();
    super::torrent_metrics::write(&mut w, &rows);
    if let Some(session) = &session {
        w.single(
            "btorrent_peer_sockets",
            Kind::Gauge,
            "Peer sockets open: dials under way, incoming handshakes, connected peers.",
            session.connections() as f64,
        );
        w.single(
            "btorrent_peer_sockets_limit",
            Kind::Gauge,
            "Most peer sockets the session keeps at once (max_connections).",
            session.max_connections() as f64,
        );
        w.single(
            "btorrent_blocklist_ranges",
            Kind::Gauge,
            "Address ranges of the blocklist in force.",
            session.ip_filter().len() as f64,
        );
        w.single(
            "btorrent_ports_forwarded",
            Kind::Gauge,
            "Ports the router forwards to the peer (NAT-PMP or UPnP; 0: off, failed or none).",
            session.port_forwarding().ports.len() as f64,
        );
        let pinholes = session
            .port_forwarding()
            .ipv6
            .map_or(0, |v6| match v6.state {
                crate::engine::ForwardState::Forwarded => v6.ports.len(),
                _ => 0,
            });
        w.single(
            "btorrent_ipv6_pinholes_open",
            Kind::Gauge,
            "Ports the router's IPv6 firewall opens to the peer (PCP; 0: off, failed or none).",
            pinholes as f64,
        );
    }
    // The limits in force (the alternative ones while on); no sample for a direction without one.
    if let Some(session) = &session {
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
