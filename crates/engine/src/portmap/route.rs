//! The gateway of the IPv4 default route, where NAT-PMP is asked when no gateway is named; the
//! gateway of the IPv6 default route and this machine's global IPv6 address, for PCP's pinholes;
//! the address a packet to a given address leaves from ([`source_toward`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

/// The address of ours a packet to `ip` leaves from, as the routing table picks it; `None` when
/// there is no route. Nothing is sent: a UDP socket is only pointed at `ip`.
pub fn source_toward(ip: IpAddr) -> Option<IpAddr> {
    let any: IpAddr = if ip.is_ipv6() {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    };
    let sock = std::net::UdpSocket::bind(SocketAddr::new(any, 0)).ok()?;
    sock.connect(SocketAddr::new(ip, 9)).ok()?;
    Some(sock.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
}

/// The gateway of the IPv4 default route (Linux: `/proc/net/route`).
pub fn default_gateway() -> Option<Ipv4Addr> {
    let table = std::fs::read_to_string("/proc/net/route").ok()?;
    gateway_in_route_table(&table)
}

/// The gateway of the first default route (destination 0, flag RTF_GATEWAY) in a
/// `/proc/net/route` table, whose addresses are hex in the host's byte order.
fn gateway_in_route_table(table: &str) -> Option<Ipv4Addr> {
    const RTF_GATEWAY: u32 = 0x2;
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dest, gw, flags) = (f.get(1)?, f.get(2)?, f.get(3)?);
        let flags = u32::from_str_radix(flags, 16).ok()?;
        if *dest != "00000000" || flags & RTF_GATEWAY == 0 {
            return None;
        }
        let raw = u32::from_str_radix(gw, 16).ok()?;
        Some(Ipv4Addr::from(raw.to_ne_bytes()))
    })
}

/// The gateway of the IPv6 default route at `port`, with its interface as the scope when it is a
/// link-local address (a router's usual one); Linux: `/proc/net/ipv6_route`.
pub fn default_gateway6(port: u16) -> Option<SocketAddrV6> {
    let table = std::fs::read_to_string("/proc/net/ipv6_route").ok()?;
    let (gw, ifname) = gateway_in_ipv6_route_table(&table)?;
    let scope = if is_link_local(&gw) {
        crate::interfaces::index_of(&ifname)?
    } else {
        0
    };
    Some(SocketAddrV6::new(gw, port, 0, scope))
}

/// The next hop and interface of the first default route (destination `::/0`, flag RTF_GATEWAY)
/// in a `/proc/net/ipv6_route` table, whose addresses are 32 hex digits.
fn gateway_in_ipv6_route_table(table: &str) -> Option<(Ipv6Addr, String)> {
    const RTF_GATEWAY: u32 = 0x2;
    let v6 = |hex: &str| u128::from_str_radix(hex, 16).ok().map(Ipv6Addr::from);
    table.lines().find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (dest, len, next_hop, flags, ifname) =
            (f.first()?, f.get(1)?, f.get(4)?, f.get(8)?, f.get(9)?);
        let flags = u32::from_str_radix(flags, 16).ok()?;
        let hop = v6(next_hop)?;
        let default = v6(dest)?.is_unspecified() && *len == "00";
        (default && flags & RTF_GATEWAY != 0 && !hop.is_unspecified())
            .then(|| (hop, ifname.to_string()))
    })
}

fn is_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// Whether `ip` can be reached from anywhere: not loopback, unspecified, multicast, link-local,
/// unique-local (`fc00::/7`, a network's private range) or IPv4 carried in IPv6.
pub fn is_global6(ip: &Ipv6Addr) -> bool {
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || is_link_local(ip)
        || ip.segments()[0] & 0xfe00 == 0xfc00
        || ip.to_ipv4_mapped().is_some())
}

/// The address this machine sends from to the IPv6 Internet (what the kernel picks for the default
/// route: [`source_toward`] an address of the documentation range), if it is a global one
/// ([`is_global6`]).
pub fn global_source6() -> Option<Ipv6Addr> {
    match source_toward(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into())? {
        IpAddr::V6(ip) if is_global6(&ip) => Some(ip),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_gateway_is_read_from_the_route_table() {
        let table =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(
            gateway_in_route_table(table),
            Some(Ipv4Addr::new(192, 168, 1, 1))
        );
        // No default route through a gateway (a point-to-point link, or none at all).
        let none = "Iface\tDestination\tGateway \tFlags\n\
            tun0\t00000000\t00000000\t0001\n";
        assert_eq!(gateway_in_route_table(none), None);
    }

    #[test]
    fn the_ipv6_default_gateway_is_read_from_the_route_table() {
        let table = "\
fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
";
        assert_eq!(
            gateway_in_ipv6_route_table(table),
            Some(("fe80::1".parse().unwrap(), "eth0".to_string()))
        );
        // Only the unreachable route a kernel keeps for `::/0`: no gateway.
        let none: String = table.lines().skip(2).collect();
        assert_eq!(gateway_in_ipv6_route_table(&none), None);
    }

    #[test]
    fn only_global_ipv6_addresses_can_be_opened_to() {
        let global = |s: &str| is_global6(&s.parse().unwrap());
        assert!(global("2001:db8::2") && global("2a00:1450::1"));
        for local in [
            "::1",
            "::",
            "fe80::1",
            "fd00::2",
            "fc00::1",
            "ff02::1",
            "::ffff:1.2.3.4",
        ] {
            assert!(!global(local), "{local}");
        }
    }
}
