//! NAT-PMP (RFC 6886): the gateway's external address and port mappings asked over UDP port 5351
//! of the gateway. The messages ([`map_request`], [`parse_map_reply`], [`parse_address_reply`])
//! and the exchange ([`ask`]: one request, sent again after 250 ms, 500 ms, 1 s, 2 s, answered
//! only by the gateway's own address and port; the `exchange` module).
//!
//! A mapping is asked for with the same external port as the internal one; the gateway may grant
//! another, which the reply says. Asking again before the lifetime ends renews it; a lifetime of 0
//! deletes it.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::exchange::{self, Failure};
use super::Protocol;

/// The gateway's NAT-PMP port.
pub const PORT: u16 = 5351;

/// Why a NAT-PMP exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatPmpError {
    #[error("no NAT-PMP answer from {0}")]
    NoAnswer(SocketAddrV4),
    #[error("NAT-PMP at {gateway} refused: {reason}")]
    Refused {
        gateway: SocketAddrV4,
        reason: &'static str,
    },
    #[error("NAT-PMP at {0} answered with a malformed reply")]
    Malformed(SocketAddrV4),
    #[error("NAT-PMP: {0}")]
    Io(String),
}

/// A mapping the gateway granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    pub internal: u16,
    pub external: u16,
    /// Seconds the mapping lives unless renewed.
    pub lifetime: u32,
}

/// The request for the external address (opcode 0).
pub fn address_request() -> [u8; 2] {
    [0, 0]
}

/// The request mapping `internal` to `external` for `lifetime` seconds (opcode 1 for UDP, 2 for
/// TCP); a lifetime of 0 with an external port of 0 deletes the mapping of `internal`.
pub fn map_request(protocol: Protocol, internal: u16, external: u16, lifetime: u32) -> [u8; 12] {
    let mut m = [0u8; 12];
    m[1] = opcode(protocol);
    m[4..6].copy_from_slice(&internal.to_be_bytes());
    m[6..8].copy_from_slice(&external.to_be_bytes());
    m[8..12].copy_from_slice(&lifetime.to_be_bytes());
    m
}

fn opcode(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Udp => 1,
        Protocol::Tcp => 2,
    }
}

/// What a result code means (RFC 6886 3.5).
fn refusal(code: u16) -> &'static str {
    match code {
        1 => "unsupported version",
        2 => "not authorized (NAT-PMP switched off on the gateway?)",
        3 => "network failure (the gateway has no external address yet)",
        4 => "out of resources",
        5 => "unsupported opcode",
        _ => "unknown result code",
    }
}

/// The header every reply starts with: version 0, the request's opcode + 128, then the result
/// code. `Ok(None)` for a reply that is not to `op` (a stray one: keep waiting).
fn check_header(reply: &[u8], op: u8, gateway: SocketAddrV4) -> Result<Option<()>, NatPmpError> {
    if reply.len() < 4 {
        return Err(NatPmpError::Malformed(gateway));
    }
    if reply[0] != 0 || reply[1] != op + 128 {
        return Ok(None);
    }
    match u16::from_be_bytes([reply[2], reply[3]]) {
        0 => Ok(Some(())),
        code => Err(NatPmpError::Refused {
            gateway,
            reason: refusal(code),
        }),
    }
}

/// The external address in a reply to [`address_request`]; `Ok(None)` for a reply to another
/// request.
pub fn parse_address_reply(
    reply: &[u8],
    gateway: SocketAddrV4,
) -> Result<Option<Ipv4Addr>, NatPmpError> {
    if check_header(reply, 0, gateway)?.is_none() {
        return Ok(None);
    }
    let ip: [u8; 4] = reply
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .ok_or(NatPmpError::Malformed(gateway))?;
    Ok(Some(Ipv4Addr::from(ip)))
}

/// The mapping in a reply to a [`map_request`] of `protocol` for `internal`; `Ok(None)` for a
/// reply to another request.
pub fn parse_map_reply(
    reply: &[u8],
    protocol: Protocol,
    internal: u16,
    gateway: SocketAddrV4,
) -> Result<Option<Granted>, NatPmpError> {
    if check_header(reply, opcode(protocol), gateway)?.is_none() {
        return Ok(None);
    }
    if reply.len() < 16 {
        return Err(NatPmpError::Malformed(gateway));
    }
    let port = |at: usize| u16::from_be_bytes([reply[at], reply[at + 1]]);
    if port(8) != internal {
        return Ok(None);
    }
    Ok(Some(Granted {
        internal,
        external: port(10),
        lifetime: u32::from_be_bytes([reply[12], reply[13], reply[14], reply[15]]),
    }))
}

/// Sends `request` to `gateway` and returns the first reply `parse` takes (`Ok(Some)`), sending
/// again on each wait that ends with none (the `exchange` module).
pub async fn ask<T>(
    gateway: SocketAddrV4,
    request: &[u8],
    parse: impl Fn(&[u8]) -> Result<Option<T>, NatPmpError>,
) -> Result<T, NatPmpError> {
    let local = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    exchange::ask(local, SocketAddr::V4(gateway), request, parse)
        .await
        .map_err(|f| match f {
            Failure::NoAnswer => NatPmpError::NoAnswer(gateway),
            Failure::Io(e) => NatPmpError::Io(e.to_string()),
            Failure::Refused(e) => e,
        })
}

/// The gateway's external address.
pub async fn external_address(gateway: SocketAddrV4) -> Result<Ipv4Addr, NatPmpError> {
    ask(gateway, &address_request(), |r| {
        parse_address_reply(r, gateway)
    })
    .await
}

/// Maps (or renews) `internal` for `lifetime` seconds, suggesting `external` outside (the same
/// number at first; on a renewal, the port the gateway gave, as RFC 6886 asks). The gateway may
/// give another. A lifetime of 0 deletes the mapping ([`unmap`]).
pub async fn map(
    gateway: SocketAddrV4,
    protocol: Protocol,
    internal: u16,
    external: u16,
    lifetime: u32,
) -> Result<Granted, NatPmpError> {
    let request = map_request(protocol, internal, external, lifetime);
    ask(gateway, &request, |r| {
        parse_map_reply(r, protocol, internal, gateway)
    })
    .await
}

/// Deletes the mapping of `internal`.
pub async fn unmap(
    gateway: SocketAddrV4,
    protocol: Protocol,
    internal: u16,
) -> Result<(), NatPmpError> {
    map(gateway, protocol, internal, 0, 0).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 1, 1), PORT);

    #[test]
    fn a_map_request_is_laid_out_as_rfc_6886_says() {
        let m = map_request(Protocol::Tcp, 6881, 6881, 7200);
        assert_eq!(m, [0, 2, 0, 0, 0x1a, 0xe1, 0x1a, 0xe1, 0, 0, 0x1c, 0x20]);
        let d = map_request(Protocol::Udp, 6881, 0, 0);
        assert_eq!(d, [0, 1, 0, 0, 0x1a, 0xe1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn replies_are_read_and_refusals_named() {
        // Version 0, opcode 130 (TCP + 128), result 0, epoch, internal 6881, external 40000,
        // lifetime 3600.
        let mut r = vec![0, 130, 0, 0, 0, 0, 0, 9];
        r.extend_from_slice(&6881u16.to_be_bytes());
        r.extend_from_slice(&40000u16.to_be_bytes());
        r.extend_from_slice(&3600u32.to_be_bytes());
        let g = parse_map_reply(&r, Protocol::Tcp, 6881, GW)
            .unwrap()
            .unwrap();
        assert_eq!((g.external, g.lifetime), (40000, 3600));
        // The same reply is not one to a UDP request, nor to another internal port.
        assert_eq!(parse_map_reply(&r, Protocol::Udp, 6881, GW), Ok(None));
        assert_eq!(parse_map_reply(&r, Protocol::Tcp, 6882, GW), Ok(None));
        // Result 2: the gateway does not let us map.
        r[3] = 2;
        let e = parse_map_reply(&r, Protocol::Tcp, 6881, GW).unwrap_err();
        assert!(e.to_string().contains("not authorized"), "{e}");
        // Cut short.
        assert_eq!(
            parse_map_reply(&r[..10], Protocol::Tcp, 6881, GW).map_err(|e| e.to_string()),
            Err(format!(
                "NAT-PMP at {GW} refused: not authorized (NAT-PMP switched off on the gateway?)"
            ))
        );
        r[3] = 0;
        assert_eq!(
            parse_map_reply(&r[..10], Protocol::Tcp, 6881, GW),
            Err(NatPmpError::Malformed(GW))
        );
        let a = [0, 128, 0, 0, 0, 0, 0, 9, 203, 0, 113, 7];
        assert_eq!(
            parse_address_reply(&a, GW),
            Ok(Some(Ipv4Addr::new(203, 0, 113, 7)))
        );
        assert_eq!(
            parse_address_reply(&a[..8], GW),
            Err(NatPmpError::Malformed(GW))
        );
    }

    #[tokio::test]
    async fn a_gateway_with_nothing_on_the_port_is_no_answer() {
        // A port of loopback nobody listens on: ICMP port unreachable ends the wait.
        let free = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(gw) = free.local_addr().unwrap() else {
            unreachable!()
        };
        drop(free);
        let e = external_address(gw).await.unwrap_err();
        assert_eq!(e, NatPmpError::NoAnswer(gw));
    }
}
