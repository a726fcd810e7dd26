//! Kinds of IP addresses, as the layers above tell apart the machines of a local network from
//! the rest of the internet, and a peer one can dial from an address nobody listens at; and the
//! addresses to bind when a TCP and a UDP socket share one port number (the peer port's uTP, the
//! tracker's BEP 15).

use std::net::{IpAddr, SocketAddr};

/// Ports tried when any port will do, for one whose number UDP has free too.
pub const ANY_PORT_TRIES: usize = 16;

/// Where to bind a TCP listener and then a UDP socket on its port number, in turn until one has
/// both: `addr` itself when it names a port; when any port will do (port 0), `addr` again up to
/// [`ANY_PORT_TRIES`] times, since the port the system gives TCP may be one whose UDP number
/// another program holds.
pub fn pair_candidates(addr: SocketAddr) -> Vec<SocketAddr> {
    let tries = if addr.port() == 0 { ANY_PORT_TRIES } else { 1 };
    vec![addr; tries]
}

/// On a local network, reached without passing a home router's NAT: loopback, private (RFC 1918,
/// fc00::/7), link-local, or the shared address space of carrier-grade NAT that overlay networks
/// such as Tailscale use (100.64.0.0/10, RFC 6598). `::ffff:a.b.c.d` is taken as `a.b.c.d`.
pub fn is_local_network(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let shared = v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64;
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || shared
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// An address a peer can listen at, so worth dialing when a tracker, a peer (PEX) or the DHT
/// names it: not the unspecified address or its block (`0.0.0.0/8`, `::`: a dial there reaches
/// this machine itself), not multicast, not the reserved block holding the IPv4 broadcast address
/// (`240.0.0.0/4`). `::ffff:a.b.c.d` is taken as `a.b.c.d`. Loopback is dialable (peers on one
/// machine); whether to believe it from a given source is the caller's business.
pub fn is_dialable(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let first = v4.octets()[0];
            first != 0 && !v4.is_multicast() && first < 240
        }
        IpAddr::V6(v6) => !v6.is_unspecified() && !v6.is_multicast(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_asked_for_is_tried_once_and_any_port_again_and_again() {
        let asked: SocketAddr = "198.18.0.1:6881".parse().unwrap();
        assert_eq!(pair_candidates(asked), [asked]);
        let any: SocketAddr = "[::]:0".parse().unwrap();
        assert_eq!(pair_candidates(any), [any; ANY_PORT_TRIES]);
    }

    #[test]
    fn local_networks_are_told_from_the_internet() {
        for local in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.10",
            "169.254.3.4",
            "100.64.0.1",
            "100.127.255.254",
            "::1",
            "fd00::5",
            "fe80::1",
            "::ffff:192.168.1.10",
        ] {
            assert!(is_local_network(local.parse().unwrap()), "{local}");
        }
        for outside in [
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "198.18.0.1",
            "203.0.113.7",
            "2001:db8::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_local_network(outside.parse().unwrap()), "{outside}");
        }
    }

    #[test]
    fn only_addresses_a_peer_can_listen_at_are_dialable() {
        for peer in [
            "127.0.0.1",
            "1.0.0.1",
            "198.18.0.2",
            "223.255.255.254",
            "::1",
            "2001:db8::7",
            "fe80::1",
            "::ffff:198.18.0.2",
        ] {
            assert!(is_dialable(peer.parse().unwrap()), "{peer}");
        }
        for nobody in [
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.192.152.143",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "ff02::1",
            "::ffff:0.0.0.0",
            "::ffff:255.255.255.255",
        ] {
            assert!(!is_dialable(nobody.parse().unwrap()), "{nobody}");
        }
    }
}
