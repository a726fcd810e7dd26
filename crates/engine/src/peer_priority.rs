//! Canonical peer priority (BEP 40): one number for a pair of peers that both ends compute alike,
//! so that when a swarm is larger than its members' connection limits they agree on which
//! connections to keep, and the swarm settles into a mesh instead of churning.
//!
//! The number is CRC-32C of the two addresses, lowest first, with their lower bits partly masked so
//! that nobody can choose a high priority by picking an address next to ours: two addresses in
//! different /16s count by their /16 and a quarter of the bits below; in one /16 but different /24s,
//! by their /24 and a quarter of the last byte; in one /24, whole. IPv6 keeps the first 6 bytes and
//! one byte past the first that differs, masks the rest alike. Two equal addresses hash their ports.
//! Addresses of different families have no priority (0).
//!
//! It is used where a torrent chooses among peers ([`crate::known`] dials the best ranked of equal
//! addresses first; [`crate::peer`] lets a newcomer to a full torrent take the slot of the lowest
//! ranked peer when it ranks higher). Each end needs its own address as the other sees it:
//! [`Vantage`] answers that from what peers report (`yourip`, [`crate::seen_as`]) for peers outside
//! the local networks, and from the route this machine would take for the others.
//!
//! Invariant: `Vantage`'s lock is a leaf: taken alone or inside a torrent's core lock, nothing is
//! locked or awaited while it is held.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// The BEP 40 priority of the pair `a`, `b` (symmetric: `priority(a, b) == priority(b, a)`). Higher
/// ranks first.
pub fn priority(a: SocketAddr, b: SocketAddr) -> u32 {
    let (a, b) = (
        SocketAddr::new(a.ip().to_canonical(), a.port()),
        SocketAddr::new(b.ip().to_canonical(), b.port()),
    );
    if a.ip() == b.ip() {
        let (lo, hi) = (a.port().min(b.port()), a.port().max(b.port()));
        let mut buf = [0u8; 4];
        buf[..2].copy_from_slice(&lo.to_be_bytes());
        buf[2..].copy_from_slice(&hi.to_be_bytes());
        return CRC32C.checksum(&buf);
    }
    match (a.ip(), b.ip()) {
        (IpAddr::V4(x), IpAddr::V4(y)) => masked_pair(x.octets(), y.octets(), |first_diff| {
            // Different /16: the first two bytes; one /16: three; one /24: all four.
            (first_diff + 1).max(2)
        }),
        (IpAddr::V6(x), IpAddr::V6(y)) => masked_pair(x.octets(), y.octets(), |first_diff| {
            // The first 48 bits always, and one byte past the first that differs.
            (first_diff + 2).max(6)
        }),
        _ => 0,
    }
}

/// CRC-32C of `x` and `y`, lowest first, each with the bytes from `kept(first differing byte)` on
/// masked by `0x55`.
fn masked_pair<const N: usize>(
    mut x: [u8; N],
    mut y: [u8; N],
    kept: impl Fn(usize) -> usize,
) -> u32 {
    let first_diff = x.iter().zip(&y).position(|(p, q)| p != q).unwrap_or(N);
    for i in kept(first_diff).min(N)..N {
        x[i] &= 0x55;
        y[i] &= 0x55;
    }
    if x > y {
        std::mem::swap(&mut x, &mut y);
    }
    let mut d = CRC32C.digest();
    d.update(&x);
    d.update(&y);
    d.finalize()
}

/// Where an address is, as far as which of our addresses it sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reach {
    /// This machine (127.0.0.0/8, ::1).
    Loopback,
    /// A local network ([`btorrent_proto::addr::is_local_network`], loopback aside): it sees the
    /// address we have on that network.
    Local,
    /// Anywhere else: behind a NAT it sees the router's outside address.
    Global,
}

impl Reach {
    pub fn of(ip: IpAddr) -> Reach {
        let ip = ip.to_canonical();
        if ip.is_loopback() {
            Reach::Loopback
        } else if btorrent_proto::addr::is_local_network(ip) {
            Reach::Local
        } else {
            Reach::Global
        }
    }
}

/// How long a route looked up for a class of addresses stands.
const ROUTE_FRESH: Duration = Duration::from_secs(60);

/// Our address as a peer sees it, for [`priority`] (see the module doc).
#[derive(Default)]
pub struct Vantage {
    /// By class: the source address this machine's routes pick, and when it was looked up.
    routes: Mutex<Vec<(Class, Option<IpAddr>, Instant)>>,
}

/// A class of peers that see one address of ours: where they are, and whether over IPv6.
type Class = (Reach, bool);

impl Vantage {
    /// Our address as `remote` sees it: for a peer outside the local networks, the address most
    /// such peers report (`yourip`), else the listen address when it is one, else the source
    /// address the routing table picks toward it. `None` when none is known (no route).
    pub fn ours_toward(
        &self,
        remote: IpAddr,
        listen: IpAddr,
        seen_as: &crate::seen_as::SeenAs,
    ) -> Option<IpAddr> {
        let remote = remote.to_canonical();
        let reach = Reach::of(remote);
        let v6 = remote.is_ipv6();
        if reach == Reach::Global {
            if let Some(ip) = seen_as.most_reported_by_outside(v6) {
                return Some(ip);
            }
        }
        let listen = listen.to_canonical();
        if !listen.is_unspecified() && listen.is_ipv6() == v6 && Reach::of(listen) == reach {
            return Some(listen);
        }
        let now = Instant::now();
        let mut routes = self.routes.lock();
        if let Some((_, ip, at)) = routes.iter().find(|(k, _, _)| *k == (reach, v6)) {
            if now.duration_since(*at) < ROUTE_FRESH {
                return *ip;
            }
        }
        let ip = crate::portmap::source_toward(remote);
        routes.retain(|(k, _, _)| *k != (reach, v6));
        routes.push(((reach, v6), ip, now));
        ip
    }
}

/// Ranks peers by their priority with us for one decision: our address toward each class of
/// peers is looked up once ([`Vantage::ours_toward`]), however many peers are ranked.
pub struct Ranker<'a> {
    vantage: &'a Vantage,
    seen_as: &'a crate::seen_as::SeenAs,
    listen: SocketAddr,
    public_port: u16,
    ours: Vec<(Class, Option<IpAddr>)>,
}

impl<'a> Ranker<'a> {
    pub fn new(
        vantage: &'a Vantage,
        seen_as: &'a crate::seen_as::SeenAs,
        listen: SocketAddr,
        public_port: u16,
    ) -> Self {
        Ranker {
            vantage,
            seen_as,
            listen,
            public_port,
            ours: Vec::new(),
        }
    }

    /// The priority of a connection between us and `peer` (our port: the one forwarded to ours for
    /// a peer outside the local networks, else the listen port); 0 when we know no address of
    /// ours toward it. An incoming peer's port is the one it connected from until it tells its
    /// listen port; the port counts only when both addresses are one.
    pub fn rank(&mut self, peer: SocketAddr) -> u32 {
        let ip = peer.ip().to_canonical();
        let reach = Reach::of(ip);
        let key = (reach, ip.is_ipv6());
        let ours = match self.ours.iter().find(|(k, _)| *k == key) {
            Some((_, ours)) => *ours,
            None => {
                let ours = self.vantage.ours_toward(ip, self.listen.ip(), self.seen_as);
                self.ours.push((key, ours));
                ours
            }
        };
        let Some(ours) = ours else {
            return 0;
        };
        let port = if reach == Reach::Global {
            self.public_port
        } else {
            self.listen.port()
        };
        priority(SocketAddr::new(ours, port), peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(s: &str, port: u16) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), port)
    }

    fn crc_of_hex(h: &str) -> u32 {
        CRC32C.checksum(&hex::decode(h).unwrap())
    }

    #[test]
    fn the_bep_40_examples() {
        assert_eq!(
            priority(ep("123.213.32.10", 0), ep("98.76.54.32", 0)),
            0xec2d_7224
        );
        assert_eq!(
            priority(ep("123.213.32.10", 0), ep("123.213.32.234", 0)),
            0x9956_8189
        );
    }

    #[test]
    fn ipv4_masks_by_how_much_the_addresses_share() {
        // One address: the ports, lowest first, whichever side has which.
        let p = priority(ep("230.12.123.3", 0x4d2), ep("230.12.123.3", 0x12c));
        assert_eq!(p, crc_of_hex("012c04d2"));
        assert_eq!(
            p,
            priority(ep("230.12.123.3", 0x12c), ep("230.12.123.3", 0x4d2))
        );
        // One /24: whole.
        assert_eq!(
            priority(ep("230.12.123.1", 1), ep("230.12.123.3", 2)),
            crc_of_hex("e60c7b01e60c7b03")
        );
        // One /16: the last byte masked.
        assert_eq!(
            priority(ep("230.12.23.1", 1), ep("230.12.123.3", 2)),
            crc_of_hex("e60c1701e60c7b01")
        );
        // Different /16s: the last two bytes masked, and the lower address first.
        assert_eq!(
            priority(ep("230.120.23.1", 1), ep("230.12.123.3", 2)),
            crc_of_hex("e60c5101e6781501")
        );
        // Symmetric, and the ports do not count between different addresses.
        assert_eq!(
            priority(ep("230.12.123.3", 9), ep("230.120.23.1", 7)),
            crc_of_hex("e60c5101e6781501")
        );
        // An IPv4-mapped IPv6 address (a dual-stack socket's) is its IPv4 address.
        assert_eq!(
            priority(ep("::ffff:123.213.32.10", 0), ep("98.76.54.32", 0)),
            0xec2d_7224
        );
        assert_eq!(priority(ep("1.2.3.4", 1), ep("2001:db8::1", 1)), 0);
    }

    #[test]
    fn ipv6_keeps_48_bits_and_a_byte_past_the_first_difference() {
        let all = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        assert_eq!(
            priority(ep(all, 0x4d2), ep(all, 0x12c)),
            crc_of_hex("012c04d2")
        );
        let cases = [
            (
                "ffff:0fff:ffff:ffff:ffff:ffff:ffff:ffff",
                "ffff0fffffff55555555555555555555ffffffffffff55555555555555555555",
            ),
            (
                "ffff:ffff:0fff:ffff:ffff:ffff:ffff:ffff",
                "ffffffff0fff55555555555555555555ffffffffffff55555555555555555555",
            ),
            // One /48.
            (
                "ffff:ffff:ff0f:ffff:ffff:ffff:ffff:ffff",
                "ffffffffff0fff555555555555555555ffffffffffffff555555555555555555",
            ),
            // One /56.
            (
                "ffff:ffff:ffff:0fff:ffff:ffff:ffff:ffff",
                "ffffffffffff0fff5555555555555555ffffffffffffffff5555555555555555",
            ),
        ];
        for (other, hashed) in cases {
            assert_eq!(
                priority(ep(all, 1), ep(other, 2)),
                crc_of_hex(hashed),
                "{other}"
            );
        }
    }

    #[test]
    fn reach_tells_loopback_local_and_global_apart() {
        for (ip, r) in [
            ("127.0.0.5", Reach::Loopback),
            ("::1", Reach::Loopback),
            ("10.1.2.3", Reach::Local),
            ("172.20.0.1", Reach::Local),
            ("192.168.1.7", Reach::Local),
            ("169.254.3.3", Reach::Local),
            ("100.100.0.1", Reach::Local),
            ("::ffff:192.168.1.7", Reach::Local),
            ("fd00::1", Reach::Local),
            ("fe80::1", Reach::Local),
            ("100.200.0.1", Reach::Global),
            ("198.51.100.1", Reach::Global),
            ("2001:db8::1", Reach::Global),
        ] {
            assert_eq!(Reach::of(ip.parse().unwrap()), r, "{ip}");
        }
    }

    #[test]
    fn our_address_is_what_outside_peers_report_or_the_route_or_the_listen_address() {
        let seen = crate::seen_as::SeenAs::default();
        let v = Vantage::default();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        // Loopback: the route's source address.
        assert_eq!(
            v.ours_toward("127.0.0.9".parse().unwrap(), any, &seen),
            Some("127.0.0.1".parse().unwrap())
        );
        // A listen address of the peer's reach is ours.
        let listen: IpAddr = "127.0.0.3".parse().unwrap();
        assert_eq!(
            v.ours_toward("127.0.0.9".parse().unwrap(), listen, &seen),
            Some(listen)
        );
        // Outside peers: what outside peers report, not what a LAN peer reports.
        seen.report(
            "192.168.1.20".parse().unwrap(),
            "192.168.1.10".parse().unwrap(),
        );
        seen.report(
            "198.51.100.1".parse().unwrap(),
            "203.0.113.7".parse().unwrap(),
        );
        seen.report(
            "198.51.100.2".parse().unwrap(),
            "203.0.113.7".parse().unwrap(),
        );
        seen.report(
            "198.51.100.3".parse().unwrap(),
            "203.0.113.8".parse().unwrap(),
        );
        assert_eq!(
            v.ours_toward("198.51.100.9".parse().unwrap(), any, &seen),
            Some("203.0.113.7".parse().unwrap())
        );
    }
}
