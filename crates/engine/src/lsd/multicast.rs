//! The multicast side of local discovery, per address family: where the node sends and hears
//! ([`Via`]: an IPv4 address of an interface, or an interface by index over IPv6), which
//! interfaces the session's listen address calls for ([`Scope`]), and the group sockets
//! ([`group_socket`]) with joining, leaving and choosing the interface to send from.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::SockRef;
use tokio::net::UdpSocket;

use btorrent_proto::lsd::{GROUP_V4, GROUP_V6};

/// Where the node sends and hears: an IPv4 address of an interface, or an interface by index over
/// IPv6 (its name kept for the logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Via {
    V4(Ipv4Addr),
    V6 { index: u32, name: String },
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::V4(ip) => write!(f, "{ip}"),
            Via::V6 { name, .. } => write!(f, "{name} (IPv6)"),
        }
    }
}

impl Via {
    /// The group of this family.
    pub(super) fn group(&self) -> SocketAddr {
        match self {
            Via::V4(_) => SocketAddr::V4(GROUP_V4),
            Via::V6 { .. } => SocketAddr::V6(GROUP_V6),
        }
    }

    /// Joins the group here, on `socket` (the group socket of this family).
    pub(super) fn join(&self, socket: &UdpSocket) -> io::Result<()> {
        let s = SockRef::from(socket);
        match self {
            Via::V4(ip) => s.join_multicast_v4(GROUP_V4.ip(), ip),
            Via::V6 { index, .. } => s.join_multicast_v6(GROUP_V6.ip(), *index),
        }
    }

    /// Leaves the group here (nothing to do when the interface is gone: the kernel has left it
    /// already).
    pub(super) fn leave(&self, socket: &UdpSocket) {
        let s = SockRef::from(socket);
        let _ = match self {
            Via::V4(ip) => s.leave_multicast_v4(GROUP_V4.ip(), ip),
            Via::V6 { index, .. } => s.leave_multicast_v6(GROUP_V6.ip(), *index),
        };
    }

    /// Makes `socket`'s next sends go out here.
    pub(super) fn send_from(&self, socket: &UdpSocket) -> io::Result<()> {
        let s = SockRef::from(socket);
        match self {
            Via::V4(ip) => s.set_multicast_if_v4(ip),
            Via::V6 { index, .. } => s.set_multicast_if_v6(*index),
        }
    }
}

/// Which interfaces the node uses, from the address the session listens on.
#[derive(Debug, Clone, Copy)]
pub(super) enum Scope {
    /// `0.0.0.0`: every interface, over IPv4; `::` (IPv4 as well): every interface, both families.
    Every { ipv6: bool },
    /// A specific IPv4 address: that one.
    V4(Ipv4Addr),
    /// A specific IPv6 address: its interface, over IPv6.
    V6(Ipv6Addr),
}

/// A socket on the group's port of one family (shared with the machine's other clients: every
/// socket of the group gets each message), sending to the local network only.
pub(super) fn group_socket(ipv6: bool) -> io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = if ipv6 {
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_only_v6(true)?;
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, GROUP_V6.port())).into())?;
        s.set_multicast_hops_v6(1)?;
        s
    } else {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, GROUP_V4.port())).into())?;
        s.set_multicast_ttl_v4(1)?;
        s
    };
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}
