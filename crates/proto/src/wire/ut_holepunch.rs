//! `ut_holepunch` messages (BEP 55): a peer connected to two others introduces them, so two peers
//! behind NATs that cannot be dialed connect to each other over uTP.
//!
//! A message is binary, not bencoded: a message type (`rendezvous`, `connect`, `error`), an address
//! type (0: IPv4, 1: IPv6), the address and port in network order, and for `error` a 4-byte error
//! code. The initiator sends `rendezvous(target)` to a peer (the relay) connected to the target; the
//! relay sends `connect(initiator)` to the target and `connect(target)` to the initiator, and both
//! dial each other at once (each one's outgoing packet opens its NAT to the other's), or answers
//! `error(target, code)`.
//!
//! Anything shorter than its type asks for, of an unknown message or address type, or with port 0,
//! is an error (the caller drops the message; bytes after a complete message are ignored, as the
//! BEP leaves room for more fields).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a relay could not introduce (BEP 55's error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolepunchError {
    /// The target address is not one the relay can use.
    NoSuchPeer,
    /// The relay is not connected to the target.
    NotConnected,
    /// The target does not speak `ut_holepunch`.
    NoSupport,
    /// The target is the relay itself.
    NoSelf,
    /// A code the BEP does not define.
    Other(u32),
}

impl HolepunchError {
    pub fn code(self) -> u32 {
        match self {
            HolepunchError::NoSuchPeer => 1,
            HolepunchError::NotConnected => 2,
            HolepunchError::NoSupport => 3,
            HolepunchError::NoSelf => 4,
            HolepunchError::Other(n) => n,
        }
    }

    pub fn from_code(n: u32) -> HolepunchError {
        match n {
            1 => HolepunchError::NoSuchPeer,
            2 => HolepunchError::NotConnected,
            3 => HolepunchError::NoSupport,
            4 => HolepunchError::NoSelf,
            n => HolepunchError::Other(n),
        }
    }
}

impl std::fmt::Display for HolepunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HolepunchError::NoSuchPeer => f.write_str("no such peer"),
            HolepunchError::NotConnected => f.write_str("the relay is not connected to it"),
            HolepunchError::NoSupport => f.write_str("it does not speak ut_holepunch"),
            HolepunchError::NoSelf => f.write_str("it is the relay itself"),
            HolepunchError::Other(n) => write!(f, "error code {n}"),
        }
    }
}

/// What a message asks or says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolepunchKind {
    /// To a relay: introduce me to the peer at the address.
    Rendezvous,
    /// From a relay: dial the peer at the address now (it dials you).
    Connect,
    /// From a relay: it could not introduce us to the peer at the address.
    Error(HolepunchError),
}

/// One `ut_holepunch` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HolepunchMsg {
    pub kind: HolepunchKind,
    pub addr: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HolepunchParseError {
    #[error("ut_holepunch message of {0} bytes is cut short")]
    Short(usize),
    #[error("ut_holepunch message type {0} is unknown")]
    UnknownType(u8),
    #[error("ut_holepunch address type {0} is unknown")]
    UnknownAddressType(u8),
    #[error("ut_holepunch address has port 0")]
    PortZero,
}

impl HolepunchMsg {
    pub fn rendezvous(addr: SocketAddr) -> Self {
        HolepunchMsg {
            kind: HolepunchKind::Rendezvous,
            addr,
        }
    }

    pub fn connect(addr: SocketAddr) -> Self {
        HolepunchMsg {
            kind: HolepunchKind::Connect,
            addr,
        }
    }

    pub fn error(addr: SocketAddr, e: HolepunchError) -> Self {
        HolepunchMsg {
            kind: HolepunchKind::Error(e),
            addr,
        }
    }

    /// Decodes a message (the payload after the extended id). An IPv4-mapped IPv6 address reads
    /// as IPv4.
    pub fn parse(payload: &[u8]) -> Result<Self, HolepunchParseError> {
        let short = || HolepunchParseError::Short(payload.len());
        let [kind, addr_type, rest @ ..] = payload else {
            return Err(short());
        };
        let ip_len = match addr_type {
            0 => 4,
            1 => 16,
            &other => return Err(HolepunchParseError::UnknownAddressType(other)),
        };
        if rest.len() < ip_len + 2 {
            return Err(short());
        }
        let (ip, rest) = rest.split_at(ip_len);
        let ip = match <[u8; 4]>::try_from(ip) {
            Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
            Err(_) => {
                let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(ip).map_err(|_| short())?);
                v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
            }
        };
        let port = u16::from_be_bytes([rest[0], rest[1]]);
        if port == 0 {
            return Err(HolepunchParseError::PortZero);
        }
        let kind = match kind {
            0 => HolepunchKind::Rendezvous,
            1 => HolepunchKind::Connect,
            2 => {
                let code = rest.get(2..6).ok_or_else(short)?;
                HolepunchKind::Error(HolepunchError::from_code(u32::from_be_bytes([
                    code[0], code[1], code[2], code[3],
                ])))
            }
            &other => return Err(HolepunchParseError::UnknownType(other)),
        };
        Ok(HolepunchMsg {
            kind,
            addr: SocketAddr::new(ip, port),
        })
    }

    /// The message's bytes (an IPv4-mapped address is written as IPv4).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 16 + 2 + 4);
        out.push(match self.kind {
            HolepunchKind::Rendezvous => 0,
            HolepunchKind::Connect => 1,
            HolepunchKind::Error(_) => 2,
        });
        match self.addr.ip().to_canonical() {
            IpAddr::V4(ip) => {
                out.push(0);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(1);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&self.addr.port().to_be_bytes());
        if let HolepunchKind::Error(e) = self.kind {
            out.extend_from_slice(&e.code().to_be_bytes());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_in_the_bep_s_layout() {
        let v4: SocketAddr = "198.18.0.12:6881".parse().unwrap();
        let v6: SocketAddr = "[2001:2::7]:51413".parse().unwrap();
        assert_eq!(
            HolepunchMsg::rendezvous(v4).encode(),
            [0, 0, 198, 18, 0, 12, 0x1a, 0xe1]
        );
        let e = HolepunchMsg::error(v4, HolepunchError::NotConnected).encode();
        assert_eq!(e, [2, 0, 198, 18, 0, 12, 0x1a, 0xe1, 0, 0, 0, 2]);
        let c6 = HolepunchMsg::connect(v6).encode();
        assert_eq!(c6.len(), 2 + 16 + 2);
        assert_eq!(&c6[..2], &[1, 1]);
        for m in [
            HolepunchMsg::rendezvous(v4),
            HolepunchMsg::connect(v6),
            HolepunchMsg::error(v6, HolepunchError::NoSelf),
            HolepunchMsg::error(v4, HolepunchError::Other(99)),
        ] {
            assert_eq!(HolepunchMsg::parse(&m.encode()), Ok(m));
        }
        // An IPv4-mapped address is IPv4 both ways.
        let mapped: SocketAddr = "[::ffff:198.18.0.12]:6881".parse().unwrap();
        assert_eq!(
            HolepunchMsg::connect(mapped).encode(),
            HolepunchMsg::connect(v4).encode()
        );
        let mut raw = vec![1, 1];
        raw.extend_from_slice(&"::ffff:198.18.0.12".parse::<Ipv6Addr>().unwrap().octets());
        raw.extend_from_slice(&6881u16.to_be_bytes());
        assert_eq!(HolepunchMsg::parse(&raw).unwrap().addr, v4);
        // Fields after a complete message are left for later versions.
        let mut longer = HolepunchMsg::connect(v4).encode();
        longer.extend_from_slice(b"more");
        assert_eq!(HolepunchMsg::parse(&longer), Ok(HolepunchMsg::connect(v4)));
    }

    #[test]
    fn malformed_messages_are_refused() {
        use HolepunchParseError::*;
        assert_eq!(HolepunchMsg::parse(&[]), Err(Short(0)));
        assert_eq!(HolepunchMsg::parse(&[0]), Err(Short(1)));
        assert_eq!(HolepunchMsg::parse(&[0, 0, 1, 2, 3, 4, 0]), Err(Short(7)));
        assert_eq!(
            HolepunchMsg::parse(&[0, 1, 1, 2, 3, 4, 0, 1]),
            Err(Short(8))
        );
        assert_eq!(
            HolepunchMsg::parse(&[0, 2, 1, 2, 3, 4, 0, 1]),
            Err(UnknownAddressType(2))
        );
        assert_eq!(
            HolepunchMsg::parse(&[3, 0, 1, 2, 3, 4, 0, 1]),
            Err(UnknownType(3))
        );
        assert_eq!(
            HolepunchMsg::parse(&[1, 0, 1, 2, 3, 4, 0, 0]),
            Err(PortZero)
        );
        // An error without its code.
        assert_eq!(
            HolepunchMsg::parse(&[2, 0, 1, 2, 3, 4, 0, 1, 0, 0]),
            Err(Short(10))
        );
    }
}
