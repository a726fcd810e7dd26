//! How peers see us: the address each peer reports in its extension handshake's `yourip`
//! (BEP 10), one report per peer address, the latest [`MOST_REPORTERS`] kept. Behind a NAT the
//! address most outside peers report is the router's outside one, whether or not the router
//! forwards anything; a peer of the LAN reports our LAN address.
//!
//! Invariant: the lock is a leaf: taken alone or inside a torrent's core lock (ranking peers,
//! [`crate::peer_priority`]), never across an `.await`, nothing else locked while it is held.

use std::collections::HashMap;
use std::net::IpAddr;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Most reporters remembered; a new one past it replaces the oldest.
pub const MOST_REPORTERS: usize = 256;

/// An address peers report for us, and how many of them do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenAddress {
    pub ip: IpAddr,
    pub peers: usize,
}

/// The reports; see the module doc.
#[derive(Default)]
pub struct SeenAs {
    reports: Mutex<Reports>,
}

#[derive(Default)]
struct Reports {
    /// By reporter: what it reported, and `clock` then (larger: later).
    by: HashMap<IpAddr, (IpAddr, u64)>,
    clock: u64,
}

impl SeenAs {
    /// `reporter` says it sees us as `seen`.
    pub fn report(&self, reporter: IpAddr, seen: IpAddr) {
        let (reporter, seen) = (reporter.to_canonical(), seen.to_canonical());
        if seen.is_unspecified() || seen.is_multicast() {
            return;
        }
        let mut r = self.reports.lock();
        r.clock += 1;
        let now = r.clock;
        r.by.insert(reporter, (seen, now));
        if r.by.len() > MOST_REPORTERS {
            if let Some(oldest) = r.by.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k) {
                r.by.remove(&oldest);
            }
        }
    }

    /// The address of the family asked (`v6`) that most peers outside the local networks report
    /// (what a peer anywhere else sees behind a NAT); ties go to the lower address.
    pub fn most_reported_by_outside(&self, v6: bool) -> Option<IpAddr> {
        let mut counts: HashMap<IpAddr, usize> = HashMap::new();
        for (reporter, (seen, _)) in &self.reports.lock().by {
            if seen.is_ipv6() == v6
                && crate::peer_priority::Reach::of(*reporter) == crate::peer_priority::Reach::Global
            {
                *counts.entry(*seen).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(ip, _)| ip)
    }

    /// Each address reported, the most reported first.
    pub fn tally(&self) -> Vec<SeenAddress> {
        let mut counts: HashMap<IpAddr, usize> = HashMap::new();
        for (seen, _) in self.reports.lock().by.values() {
            *counts.entry(*seen).or_default() += 1;
        }
        let mut out: Vec<SeenAddress> = counts
            .into_iter()
            .map(|(ip, peers)| SeenAddress { ip, peers })
            .collect();
        out.sort_by(|a, b| b.peers.cmp(&a.peers).then(a.ip.cmp(&b.ip)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_peer_counts_once_and_the_most_reported_comes_first() {
        let s = SeenAs::default();
        s.report(ip("198.51.100.1"), ip("203.0.113.7"));
        s.report(ip("198.51.100.2"), ip("203.0.113.7"));
        // A peer of the LAN, as an IPv4-mapped address from a dual-stack socket.
        s.report(ip("::ffff:192.168.1.20"), ip("192.168.1.10"));
        // The same peer again changes its report, not the count.
        s.report(ip("198.51.100.2"), ip("203.0.113.7"));
        s.report(ip("198.51.100.3"), ip("0.0.0.0"));
        let t = s.tally();
        assert_eq!(
            t,
            [
                SeenAddress {
                    ip: ip("203.0.113.7"),
                    peers: 2
                },
                SeenAddress {
                    ip: ip("192.168.1.10"),
                    peers: 1
                }
            ]
        );
    }

    #[test]
    fn the_oldest_reporter_makes_room() {
        let s = SeenAs::default();
        s.report(ip("10.0.0.1"), ip("203.0.113.1"));
        for i in 0..MOST_REPORTERS as u32 {
            s.report(
                IpAddr::from((0x0a01_0000u32 + i).to_be_bytes()),
                ip("203.0.113.2"),
            );
        }
        let t = s.tally();
        assert_eq!(
            t,
            [SeenAddress {
                ip: ip("203.0.113.2"),
                peers: MOST_REPORTERS
            }]
        );
    }
}
