//! This machine's address on its local network, for the announce URL of the embedded tracker when
//! torrents.toml names none: a .torrent made here must lead the other machines of the LAN to this
//! tracker, not to their own loopback.
//!
//! The address is, in order: the source address of the default route (a UDP socket is "connected" to
//! an outside address, which sends nothing and only asks the kernel for a route, then asked its local
//! address); the first IPv4 address of an interface that is up and not loopback; 127.0.0.1.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

/// An address outside any local network (TEST-NET-3, RFC 5737): the kernel routes it through the
/// default route. Nothing is ever sent to it.
const OUTSIDE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)), 9);

/// Where an address came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The source address of the default route.
    DefaultRoute,
    /// The first address of this interface (there is no default route).
    Interface(String),
    /// No network: 127.0.0.1, which other machines cannot reach.
    Loopback,
    /// Given in the settings (`tracker_bind` on one address).
    Setting,
}

/// An address of this machine and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanAddress {
    pub ip: IpAddr,
    pub source: Source,
}

impl fmt::Display for LanAddress {
    /// `198.18.0.1 is this machine's LAN address (source of the default route)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self.ip;
        match &self.source {
            Source::DefaultRoute => write!(
                f,
                "{ip} is this machine's LAN address (source of the default route)"
            ),
            Source::Interface(name) => write!(
                f,
                "{ip} is the address of interface {name} (there is no default route)"
            ),
            Source::Loopback => write!(
                f,
                "{ip} is loopback: no network interface has an address, other machines cannot reach it"
            ),
            Source::Setting => write!(f, "{ip} is the address in tracker_bind"),
        }
    }
}

/// This machine's LAN address: the default route's source, else the first interface address, else
/// 127.0.0.1.
pub fn lan_address() -> LanAddress {
    if let Some(ip) = default_route_source() {
        return LanAddress {
            ip,
            source: Source::DefaultRoute,
        };
    }
    if let Some((name, ip)) = interface_addresses().into_iter().next() {
        return LanAddress {
            ip: IpAddr::V4(ip),
            source: Source::Interface(name),
        };
    }
    LanAddress {
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        source: Source::Loopback,
    }
}

/// The address other machines reach a server bound to `bind` at: `bind`'s own address, or this
/// machine's LAN address when it is bound to every interface (`0.0.0.0`, `[::]`).
pub fn reachable_address(bind: SocketAddr) -> LanAddress {
    if bind.ip().is_unspecified() {
        lan_address()
    } else {
        LanAddress {
            ip: bind.ip(),
            source: Source::Setting,
        }
    }
}

/// `http://<address>:<port>/announce` for a tracker bound to `bind` (see [`reachable_address`]).
pub fn announce_url(bind: SocketAddr) -> (String, LanAddress) {
    let addr = reachable_address(bind);
    let url = format!("http://{}/announce", SocketAddr::new(addr.ip, bind.port()));
    (url, addr)
}

/// The local address the kernel would send from to reach the outside, if there is a route.
fn default_route_source() -> Option<IpAddr> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    sock.connect(OUTSIDE).ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

/// The IPv4 addresses of the interfaces that are up, loopback left out, in the system's order.
fn interface_addresses() -> Vec<(String, Ipv4Addr)> {
    crate::engine::interfaces::ipv4()
        .into_iter()
        .map(|i| (i.name, i.ip))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracker_on_every_interface_is_announced_at_the_lan_address() {
        let (url, addr) = announce_url("0.0.0.0:6969".parse().unwrap());
        assert_eq!(url, format!("http://{}:6969/announce", lan_address().ip));
        assert_ne!(addr.source, Source::Setting);
        if addr.source != Source::Loopback {
            assert!(!addr.ip.is_loopback(), "{addr}");
        }
        let (url, addr) = announce_url("127.0.0.1:7000".parse().unwrap());
        assert_eq!(url, "http://127.0.0.1:7000/announce");
        assert_eq!(addr.source, Source::Setting);
    }

    #[test]
    fn the_interfaces_never_include_loopback() {
        for (name, ip) in interface_addresses() {
            assert!(!ip.is_loopback(), "{name} {ip}");
        }
        let shown = LanAddress {
            ip: "10.0.0.7".parse().unwrap(),
            source: Source::Interface("eth0".into()),
        };
        assert_eq!(
            shown.to_string(),
            "10.0.0.7 is the address of interface eth0 (there is no default route)"
        );
    }
}
