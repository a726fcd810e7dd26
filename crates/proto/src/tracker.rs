//! The tracker request and reply types both sides share: what a client tells a tracker in an announce,
//! what the tracker answers, and scrape counts. The HTTP client and the UDP codec ([`crate::udp_tracker`])
//! speak in these types; the transports differ only in how they put them on the wire.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::types::{InfoHash, PeerId};

/// The `event` of an announce; `None` in [`AnnounceRequest::event`] is a periodic re-announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceEvent {
    Started,
    Completed,
    Stopped,
    /// A regular announce of a partial seed: not complete, and wanting nothing more (BEP 21).
    Paused,
}

impl AnnounceEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Completed => "completed",
            AnnounceEvent::Stopped => "stopped",
            AnnounceEvent::Paused => "paused",
        }
    }
}

impl fmt::Display for AnnounceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for AnnounceEvent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "started" => Ok(AnnounceEvent::Started),
            "completed" => Ok(AnnounceEvent::Completed),
            "stopped" => Ok(AnnounceEvent::Stopped),
            "paused" => Ok(AnnounceEvent::Paused),
            other => Err(format!(
                "unknown announce event {other:?} (started, completed, stopped or paused)"
            )),
        }
    }
}

/// What we tell a tracker about one torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    /// The port we really listen on.
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: Option<AnnounceEvent>,
    /// Peers wanted; `None` lets the tracker choose (usually 50).
    pub numwant: Option<u32>,
    /// A random number that stays the same for the session, so a tracker can recognise us if our IP
    /// changes.
    pub key: Option<u32>,
    /// Our address, when the tracker would otherwise see a different one (e.g. a tracker on the same
    /// host sees 127.0.0.1). UDP trackers take an IPv4 address only.
    pub ip: Option<IpAddr>,
}

/// A tracker's answer to an announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceResponse {
    /// Wait this long before the next regular announce.
    pub interval: Duration,
    /// Never announce more often than this.
    pub min_interval: Option<Duration>,
    /// Seeders.
    pub complete: Option<u64>,
    /// Leechers.
    pub incomplete: Option<u64>,
    /// Completed downloads the tracker has counted, when it says.
    pub downloaded: Option<u64>,
    /// Leechers still downloading, partial seeds left out (BEP 21), when the tracker says.
    pub downloaders: Option<u64>,
    /// IPv4 (`peers`) and IPv6 (`peers6`) peers, in the tracker's order.
    pub peers: Vec<SocketAddr>,
    pub warning: Option<String>,
}

/// Scrape counts for one torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    /// Seeders.
    pub complete: u64,
    /// Leechers.
    pub incomplete: u64,
    /// Completed downloads the tracker has counted.
    pub downloaded: u64,
    /// Leechers still downloading, partial seeds left out (BEP 21), when the tracker says.
    pub downloaders: Option<u64>,
}

/// A peer address as a tracker hands it out: `::ffff:a.b.c.d` becomes `a.b.c.d`; port 0 (nobody
/// listens there) is `None`.
pub fn usable_peer(addr: SocketAddr) -> Option<SocketAddr> {
    (addr.port() != 0).then(|| SocketAddr::new(addr.ip().to_canonical(), addr.port()))
}

/// Bytes per compact peer: 6 for IPv4 (BEP 23), 18 for IPv6 (BEP 7).
pub fn compact_len(ipv6: bool) -> usize {
    if ipv6 {
        18
    } else {
        6
    }
}

/// Reads compact peers (address then big-endian port, [`compact_len`] bytes each) into `out`, keeping
/// only [`usable_peer`]s. A length that is not a multiple of the entry size is `Err` with that size.
pub fn read_compact_peers(b: &[u8], ipv6: bool, out: &mut Vec<SocketAddr>) -> Result<(), usize> {
    let n = compact_len(ipv6);
    if !b.len().is_multiple_of(n) {
        return Err(n);
    }
    for c in b.chunks_exact(n) {
        let ip = if ipv6 {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&c[..16]);
            IpAddr::from(octets)
        } else {
            IpAddr::from([c[0], c[1], c[2], c[3]])
        };
        let port = u16::from_be_bytes([c[n - 2], c[n - 1]]);
        out.extend(usable_peer(SocketAddr::new(ip, port)));
    }
    Ok(())
}

/// Appends `addr` in compact form (6 bytes for IPv4, 18 for IPv6).
pub fn write_compact_peer(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_peers_round_trip_and_drop_port_zero() {
        let peers: Vec<SocketAddr> = vec![
            "1.2.3.4:6881".parse().unwrap(),
            "10.0.0.1:0".parse().unwrap(),
        ];
        let mut buf = Vec::new();
        peers.iter().for_each(|p| write_compact_peer(p, &mut buf));
        let mut out = Vec::new();
        read_compact_peers(&buf, false, &mut out).unwrap();
        assert_eq!(out, peers[..1]);
        assert_eq!(read_compact_peers(&buf[..5], false, &mut out), Err(6));
        let mapped: SocketAddr = "[::ffff:1.2.3.4]:7".parse().unwrap();
        let mut buf6 = Vec::new();
        write_compact_peer(&mapped, &mut buf6);
        let mut out6 = Vec::new();
        read_compact_peers(&buf6, true, &mut out6).unwrap();
        assert_eq!(out6, vec!["1.2.3.4:7".parse::<SocketAddr>().unwrap()]);
    }
}
