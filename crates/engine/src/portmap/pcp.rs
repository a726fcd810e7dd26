//! PCP (RFC 6887), the Port Control Protocol NAT-PMP grew into, for what NAT-PMP cannot do: open
//! a port of ours in the gateway's IPv6 firewall (a "pinhole"). A home network's IPv6 addresses
//! are global and routed, not translated, but the router drops what comes in unasked, as it does
//! over IPv4; a PCP `MAP` request asks it to let in connections to one of our ports, for a
//! lifetime, as libtorrent asks. The messages ([`map_request`], [`parse_map_reply`]) and the
//! exchange ([`map`], [`unmap`]: the one NAT-PMP uses, the `exchange` module, from our own address
//! to the gateway's port 5351).
//!
//! A mapping is named by its nonce, 12 random bytes the request carries and the reply repeats: a
//! renewal and a deletion (lifetime 0) carry the nonce it was made with, or the gateway refuses
//! them as another client's. The request names the address it comes from, which the gateway
//! checks against the packet's (a NAT between them: `ADDRESS_MISMATCH`), so it is sent from the
//! very address the port is opened for.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::exchange::{self, Failure};
use super::Protocol;

/// The gateway's PCP port (NAT-PMP's).
pub const PORT: u16 = 5351;

/// The protocol version this speaks; a NAT-PMP-only gateway answers version 0.
const VERSION: u8 = 2;

/// The `MAP` opcode; a reply has the high bit set.
const MAP: u8 = 1;
const REPLY: u8 = 0x80;

/// A `MAP` request's length: the common header (24 bytes) and the opcode's fields (36).
pub const MAP_LEN: usize = 60;

/// A mapping's nonce ([`map_request`]).
pub type Nonce = [u8; 12];

/// Why a PCP exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcpError {
    #[error("no PCP answer from {0}")]
    NoAnswer(SocketAddr),
    #[error("PCP at {gateway} refused: {reason}")]
    Refused {
        gateway: SocketAddr,
        reason: &'static str,
    },
    #[error("PCP at {0} answered with a malformed reply")]
    Malformed(SocketAddr),
    #[error("PCP: {0}")]
    Io(String),
}

/// A mapping the gateway granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// The port outside (for a pinhole, ours).
    pub external: u16,
    /// The address outside (for a pinhole, ours).
    pub external_ip: IpAddr,
    /// Seconds the mapping lives unless renewed.
    pub lifetime: u32,
}

/// An address as PCP carries it: IPv6, or IPv4 mapped into IPv6 (`::ffff:a.b.c.d`).
fn wire_address(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
    }
}

fn protocol_number(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    }
}

/// The `MAP` request (RFC 6887 11.1) from `client` opening `internal` of `protocol` for `lifetime`
/// seconds, suggesting the same port outside and no address in particular; a lifetime of 0
/// deletes the mapping `nonce` names.
pub fn map_request(
    client: IpAddr,
    nonce: &Nonce,
    protocol: Protocol,
    internal: u16,
    lifetime: u32,
) -> [u8; MAP_LEN] {
    let mut m = [0u8; MAP_LEN];
    m[0] = VERSION;
    m[1] = MAP;
    m[4..8].copy_from_slice(&lifetime.to_be_bytes());
    m[8..24].copy_from_slice(&wire_address(client));
    m[24..36].copy_from_slice(nonce);
    m[36] = protocol_number(protocol);
    m[40..42].copy_from_slice(&internal.to_be_bytes());
    m[42..44].copy_from_slice(&internal.to_be_bytes());
    // No address suggested outside: all zeros for IPv6, `::ffff:0.0.0.0` for IPv4.
    if client.is_ipv4() {
        m[44..60].copy_from_slice(&wire_address(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)));
    }
    m
}

/// What a result code means (RFC 6887 7.4).
fn refusal(code: u8) -> &'static str {
    match code {
        1 => "unsupported version (the gateway speaks NAT-PMP only)",
        2 => "not authorized (PCP switched off on the gateway, or its rules keep this port closed)",
        3 => "malformed request",
        4 => "unsupported opcode",
        5 => "unsupported option",
        6 => "malformed option",
        7 => "network failure (the gateway has no address outside yet)",
        8 => "out of resources",
        9 => "unsupported protocol",
        10 => "this machine has all the mappings the gateway allows",
        11 => "cannot provide the port outside",
        12 => "address mismatch (the gateway sees this machine at another address: a NAT between)",
        13 => "excessive remote peers",
        _ => "unknown result code",
    }
}

/// The mapping in a reply to a [`map_request`] with `nonce` for `internal` of `protocol`;
/// `Ok(None)` for a reply to another request (a stray one: keep waiting).
pub fn parse_map_reply(
    reply: &[u8],
    nonce: &Nonce,
    protocol: Protocol,
    internal: u16,
    gateway: SocketAddr,
) -> Result<Option<Granted>, PcpError> {
    let refused = |code| PcpError::Refused {
        gateway,
        reason: refusal(code),
    };
    // A NAT-PMP-only gateway answers any version but its own with its 8-byte "unsupported
    // version" (result code 1, in NAT-PMP's 16 bits).
    if reply.len() >= 4 && reply[0] == 0 && reply[1] == REPLY | MAP {
        return Err(refused(1));
    }
    if reply.len() < 24 || reply[0] != VERSION || reply[1] != REPLY | MAP {
        return if reply.len() < 4 {
            Err(PcpError::Malformed(gateway))
        } else {
            Ok(None)
        };
    }
    let code = reply[3];
    if reply.len() < MAP_LEN {
        // An error reply may carry no more than the header.
        return Err(if code == 0 {
            PcpError::Malformed(gateway)
        } else {
            refused(code)
        });
    }
    let port = |at: usize| u16::from_be_bytes([reply[at], reply[at + 1]]);
    if &reply[24..36] != nonce || reply[36] != protocol_number(protocol) || port(40) != internal {
        return Ok(None);
    }
    if code != 0 {
        return Err(refused(code));
    }
    let outside: [u8; 16] = reply[44..60].try_into().expect("16 bytes");
    let outside = Ipv6Addr::from(outside);
    Ok(Some(Granted {
        external: port(42),
        external_ip: outside
            .to_ipv4_mapped()
            .map_or(IpAddr::V6(outside), IpAddr::V4),
        lifetime: u32::from_be_bytes([reply[4], reply[5], reply[6], reply[7]]),
    }))
}

/// Opens (or renews) `internal` of `protocol` on `client`, our address, for `lifetime` seconds,
/// asking `gateway`; a lifetime of 0 deletes the mapping ([`unmap`]).
pub async fn map(
    gateway: SocketAddr,
    client: IpAddr,
    nonce: &Nonce,
    protocol: Protocol,
    internal: u16,
    lifetime: u32,
) -> Result<Granted, PcpError> {
    let request = map_request(client, nonce, protocol, internal, lifetime);
    exchange::ask(SocketAddr::new(client, 0), gateway, &request, |r| {
        parse_map_reply(r, nonce, protocol, internal, gateway)
    })
    .await
    .map_err(|f| match f {
        Failure::NoAnswer => PcpError::NoAnswer(gateway),
        Failure::Io(e) => PcpError::Io(e.to_string()),
        Failure::Refused(e) => e,
    })
}

/// Deletes the mapping `nonce` names.
pub async fn unmap(
    gateway: SocketAddr,
    client: IpAddr,
    nonce: &Nonce,
    protocol: Protocol,
    internal: u16,
) -> Result<(), PcpError> {
    map(gateway, client, nonce, protocol, internal, 0)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: &str = "2001:db8:1::2";
    const NONCE: Nonce = [7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

    fn gateway() -> SocketAddr {
        SocketAddr::new("2001:db8:1::1".parse().unwrap(), PORT)
    }

    /// A reply to the request for TCP 6881 with [`NONCE`]: result `code`, lifetime 3600,
    /// granted 6881 outside at `CLIENT`.
    fn reply(code: u8) -> Vec<u8> {
        let mut r = vec![2, 0x81, 0, code];
        r.extend_from_slice(&3600u32.to_be_bytes());
        r.extend_from_slice(&77u32.to_be_bytes());
        r.extend_from_slice(&[0; 12]);
        r.extend_from_slice(&NONCE);
        r.extend_from_slice(&[6, 0, 0, 0]);
        r.extend_from_slice(&6881u16.to_be_bytes());
        r.extend_from_slice(&6881u16.to_be_bytes());
        r.extend_from_slice(&CLIENT.parse::<Ipv6Addr>().unwrap().octets());
        r
    }

    #[test]
    fn a_map_request_is_laid_out_as_rfc_6887_says() {
        let client: IpAddr = CLIENT.parse().unwrap();
        let m = map_request(client, &NONCE, Protocol::Udp, 6881, 7200);
        assert_eq!(&m[..4], [2, 1, 0, 0]);
        assert_eq!(&m[4..8], 7200u32.to_be_bytes());
        assert_eq!(&m[8..24], CLIENT.parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(&m[24..36], NONCE);
        assert_eq!(&m[36..40], [17, 0, 0, 0]);
        assert_eq!(&m[40..44], [0x1a, 0xe1, 0x1a, 0xe1]);
        assert_eq!(&m[44..60], [0; 16]);
        // An IPv4 client is carried mapped into IPv6, and suggests `::ffff:0.0.0.0` outside.
        let m = map_request("192.168.1.2".parse().unwrap(), &NONCE, Protocol::Tcp, 1, 0);
        let mapped = |a: [u8; 4]| [[0; 10].as_slice(), &[0xff, 0xff], &a].concat();
        assert_eq!(&m[8..24], mapped([192, 168, 1, 2]));
        assert_eq!(&m[44..60], mapped([0, 0, 0, 0]));
        assert_eq!(&m[4..8], [0; 4]);
    }

    #[test]
    fn replies_are_read_and_refusals_named() {
        let gw = gateway();
        let g = parse_map_reply(&reply(0), &NONCE, Protocol::Tcp, 6881, gw)
            .unwrap()
            .unwrap();
        assert_eq!(
            g,
            Granted {
                external: 6881,
                external_ip: CLIENT.parse().unwrap(),
                lifetime: 3600
            }
        );
        // Not a reply to this request: another nonce, protocol or port.
        let other: Nonce = [9; 12];
        assert_eq!(
            parse_map_reply(&reply(0), &other, Protocol::Tcp, 6881, gw),
            Ok(None)
        );
        assert_eq!(
            parse_map_reply(&reply(0), &NONCE, Protocol::Udp, 6881, gw),
            Ok(None)
        );
        assert_eq!(
            parse_map_reply(&reply(0), &NONCE, Protocol::Tcp, 6882, gw),
            Ok(None)
        );
        // Refused: the firewall's rules keep the port closed.
        let e = parse_map_reply(&reply(2), &NONCE, Protocol::Tcp, 6881, gw).unwrap_err();
        assert!(e.to_string().contains("not authorized"), "{e}");
        // An error reply of the header alone is still a refusal; a success that short is not a
        // reply one can use.
        let e = parse_map_reply(&reply(12)[..24], &NONCE, Protocol::Tcp, 6881, gw).unwrap_err();
        assert!(e.to_string().contains("address mismatch"), "{e}");
        assert_eq!(
            parse_map_reply(&reply(0)[..40], &NONCE, Protocol::Tcp, 6881, gw),
            Err(PcpError::Malformed(gw))
        );
        // A NAT-PMP gateway's "unsupported version".
        let e = parse_map_reply(
            &[0, 0x81, 0, 1, 0, 0, 0, 9],
            &NONCE,
            Protocol::Tcp,
            6881,
            gw,
        )
        .unwrap_err();
        assert!(e.to_string().contains("NAT-PMP only"), "{e}");
        assert_eq!(
            parse_map_reply(&[2, 0x81], &NONCE, Protocol::Tcp, 6881, gw),
            Err(PcpError::Malformed(gw))
        );
    }

    /// Whatever a gateway (or anyone who can reach our socket) sends, the reader neither panics
    /// nor takes a reply that is not to our request: 20,000 mutations of a good reply, cut at
    /// every length.
    #[test]
    fn mutated_replies_are_read_safely() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(6887);
        let good = reply(0);
        for _ in 0..20_000 {
            let mut r = good.clone();
            for _ in 0..rng.gen_range(1..4) {
                let at = rng.gen_range(0..r.len());
                r[at] = rng.gen();
            }
            r.truncate(rng.gen_range(0..=r.len()));
            if let Ok(Some(g)) = parse_map_reply(&r, &NONCE, Protocol::Tcp, 6881, gateway()) {
                assert_eq!(&r[24..36], NONCE);
                assert_eq!((r[0], r[1], r[3], r[36]), (2, 0x81, 0, 6));
                assert_eq!(g.external, u16::from_be_bytes([r[42], r[43]]));
            }
        }
    }

    #[tokio::test]
    async fn a_gateway_with_nothing_on_the_port_is_no_answer() {
        // A port of loopback nobody listens on: ICMP port unreachable ends the wait.
        let free = std::net::UdpSocket::bind("[::1]:0").unwrap();
        let gw = free.local_addr().unwrap();
        drop(free);
        let e = map(gw, "::1".parse().unwrap(), &NONCE, Protocol::Tcp, 6881, 60)
            .await
            .unwrap_err();
        assert_eq!(e, PcpError::NoAnswer(gw));
    }
}
