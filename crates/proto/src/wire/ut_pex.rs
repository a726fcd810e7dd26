//! `ut_pex` messages (BEP 11): peers a connected peer added and dropped since its last message.
//!
//! A message is a bencoded dictionary: `added` (compact IPv4 addresses, 6 bytes each) with `added.f`
//! (one flag byte per added peer), `dropped`, and the IPv6 forms `added6`, `added6.f`, `dropped6` (18
//! bytes each). Bounded both ways: at most [`MAX_PEX_PEERS`] added and as many dropped per message are
//! sent, and as many of each are read (the rest is ignored); a list whose length is not a multiple of
//! its address size, or a payload that is not a dictionary, is an error. Port 0 is skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::bencode::{self, Writer};

/// Most added (and most dropped) peers in one message, as the BEP asks.
pub const MAX_PEX_PEERS: usize = 50;
/// `added.f` bit: the peer is a seed.
pub const FLAG_SEED: u8 = 0x02;
/// `added.f`: the peer prefers encrypted connections (message stream encryption).
pub const FLAG_ENCRYPTION: u8 = 0x01;
/// `added.f` bit: the peer speaks uTP (BEP 29).
pub const FLAG_UTP: u8 = 0x04;
/// `added.f` bit: the peer speaks `ut_holepunch` (BEP 55): a peer it cannot dial may be
/// introduced to it by the one that sent the address.
pub const FLAG_HOLEPUNCH: u8 = 0x08;
/// `added.f` bit: the peer is reachable (it accepted a connection).
pub const FLAG_REACHABLE: u8 = 0x10;

/// One decoded (or to be encoded) `ut_pex` message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PexMsg {
    /// Added peers with their flags.
    pub added: Vec<(SocketAddr, u8)>,
    pub dropped: Vec<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PexError {
    #[error("ut_pex message is not a bencoded dictionary: {0}")]
    NotADict(String),
    #[error("ut_pex `{key}` is {len} bytes, not a multiple of {size}")]
    BadLength {
        key: &'static str,
        len: usize,
        size: usize,
    },
}

/// The chunks of a compact list of addresses of `size` bytes (6 for IPv4, 18 for IPv6).
fn chunks<'a>(
    key: &'static str,
    raw: &'a [u8],
    size: usize,
) -> Result<std::slice::ChunksExact<'a, u8>, PexError> {
    if !raw.len().is_multiple_of(size) {
        return Err(PexError::BadLength {
            key,
            len: raw.len(),
            size,
        });
    }
    Ok(raw.chunks_exact(size))
}

/// One compact address (4 or 16 bytes of IP, 2 of port); `None` for port 0.
fn addr_of(c: &[u8]) -> Option<SocketAddr> {
    let (ip, port) = c.split_at(c.len() - 2);
    let port = u16::from_be_bytes([port[0], port[1]]);
    let ip = match <[u8; 4]>::try_from(ip) {
        Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
        Err(_) => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(ip).ok()?);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
    };
    (port != 0).then_some(SocketAddr::new(ip, port))
}

fn write_compact<'a>(w: &mut Writer, key: &[u8], addrs: impl Iterator<Item = &'a SocketAddr>) {
    let mut raw = Vec::new();
    for a in addrs {
        match a.ip() {
            IpAddr::V4(ip) => raw.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => raw.extend_from_slice(&ip.octets()),
        }
        raw.extend_from_slice(&a.port().to_be_bytes());
    }
    w.bytes(key).bytes(&raw);
}

impl PexMsg {
    /// Decodes a message (the payload after the extended id).
    pub fn parse(payload: &[u8]) -> Result<Self, PexError> {
        let entries =
            bencode::dict_entries(payload).map_err(|e| PexError::NotADict(e.to_string()))?;
        let get = |key: &str| {
            entries
                .iter()
                .find(|e| e.key == key.as_bytes())
                .and_then(|e| bencode::as_bytes(&payload[e.value.clone()]))
                .unwrap_or_default()
        };
        let mut out = PexMsg::default();
        for (key, fkey, size) in [("added", "added.f", 6), ("added6", "added6.f", 18)] {
            let flags = get(fkey);
            let room = MAX_PEX_PEERS - out.added.len();
            // Flags go with the entries in order; skipped port-0 entries keep their place.
            for (i, c) in chunks(key, get(key), size)?.enumerate().take(room) {
                if let Some(a) = addr_of(c) {
                    out.added.push((a, flags.get(i).copied().unwrap_or(0)));
                }
            }
        }
        for (key, size) in [("dropped", 6), ("dropped6", 18)] {
            let room = MAX_PEX_PEERS - out.dropped.len();
            let list = chunks(key, get(key), size)?;
            out.dropped.extend(list.filter_map(addr_of).take(room));
        }
        Ok(out)
    }

    /// The message's bytes, at most [`MAX_PEX_PEERS`] added and dropped (the first ones).
    pub fn encode(&self) -> Vec<u8> {
        let added: Vec<&(SocketAddr, u8)> = self.added.iter().take(MAX_PEX_PEERS).collect();
        let dropped: Vec<&SocketAddr> = self.dropped.iter().take(MAX_PEX_PEERS).collect();
        let v4 = |a: &&SocketAddr| a.is_ipv4();
        let mut w = Writer::with_capacity(64 + 22 * (added.len() + dropped.len()));
        w.begin_dict();
        let added4 = added.iter().filter(|(a, _)| a.is_ipv4());
        let added6 = added.iter().filter(|(a, _)| a.is_ipv6());
        write_compact(&mut w, b"added", added4.clone().map(|(a, _)| a));
        let f4: Vec<u8> = added4.map(|(_, f)| *f).collect();
        w.bytes(b"added.f").bytes(&f4);
        write_compact(&mut w, b"added6", added6.clone().map(|(a, _)| a));
        let f6: Vec<u8> = added6.map(|(_, f)| *f).collect();
        w.bytes(b"added6.f").bytes(&f6);
        write_compact(&mut w, b"dropped", dropped.iter().copied().filter(v4));
        write_compact(
            &mut w,
            b"dropped6",
            dropped.iter().copied().filter(|a| a.is_ipv6()),
        );
        w.end();
        w.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(i: u32) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + i), 6881))
    }

    #[test]
    fn round_trips_both_families_and_bounds() {
        let v6: SocketAddr = "[2001:db8::1]:51413".parse().unwrap();
        let m = PexMsg {
            added: vec![(v4(1), FLAG_SEED), (v6, 0), (v4(2), FLAG_REACHABLE)],
            dropped: vec![v4(3), v6],
        };
        let back = PexMsg::parse(&m.encode()).unwrap();
        assert_eq!(
            back.added,
            vec![(v4(1), FLAG_SEED), (v4(2), FLAG_REACHABLE), (v6, 0)]
        );
        assert_eq!(back.dropped, vec![v4(3), v6]);
        let flood = PexMsg {
            added: (0..500).map(|i| (v4(i), 0)).collect(),
            dropped: (0..500).map(v4).collect(),
        };
        let back = PexMsg::parse(&flood.encode()).unwrap();
        assert_eq!((back.added.len(), back.dropped.len()), (50, 50));
    }

    #[test]
    fn hostile_messages_are_refused_or_bounded() {
        assert!(PexMsg::parse(b"le").is_err());
        assert!(PexMsg::parse(b"d5:added5:abcdee").is_err());
        // Port 0 skipped, missing flags read as 0, keys of the wrong type ignored.
        let m = PexMsg::parse(b"d5:added12:\x0a\0\0\x01\0\0\x0a\0\0\x02\x1a\xe17:dropped1:xe");
        assert!(m.is_err(), "dropped of 1 byte");
        let m =
            PexMsg::parse(b"d5:added12:\x0a\0\0\x01\0\0\x0a\0\0\x02\x1a\xe17:droppedi5ee").unwrap();
        assert_eq!(m.added, vec![("10.0.0.2:6881".parse().unwrap(), 0)]);
        assert!(m.dropped.is_empty());
        let mut big = Writer::default();
        big.begin_dict()
            .bytes(b"added")
            .bytes(&[1u8; 6 * 10_000])
            .end();
        assert_eq!(PexMsg::parse(&big.buf).unwrap().added.len(), 50);
    }
}
