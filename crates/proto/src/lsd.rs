//! Local service discovery (BEP 14): the `BT-SEARCH` message a client multicasts on its local
//! network to say which torrents it has and on which port, and its reading.
//!
//! A message is an HTTP-like request sent to [`GROUP_V4`] (or over IPv6 to [`GROUP_V6`], which its
//! `Host` then names):
//!
//! ```text
//! BT-SEARCH * HTTP/1.1\r\n
//! Host: 239.192.152.143:6771\r\n
//! Port: 6881\r\n
//! Infohash: 0123456789abcdef0123456789abcdef01234567\r\n
//! cookie: 5f2c01\r\n
//! \r\n
//! \r\n
//! ```
//!
//! The peer is the message's source address with its `Port`. `cookie` lets a client recognise its own
//! messages (the group echoes them back). Header names are read case-insensitively; a message may
//! name several info-hashes (one `Infohash` line each), at most [`MAX_INFO_HASHES`]. What is not such a
//! message (another request line, no or a bad port, no info-hash, a bad one, more than
//! [`MAX_MESSAGE`] bytes) is refused with the reason.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::types::InfoHash;

/// The IPv4 multicast group and port of BEP 14.
pub const GROUP_V4: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 192, 152, 143), 6771);
/// The IPv6 multicast group (site-local scope) and port of BEP 14.
pub const GROUP_V6: SocketAddrV6 = SocketAddrV6::new(
    Ipv6Addr::new(0xff15, 0, 0, 0, 0, 0, 0xefc0, 0x988f),
    6771,
    0,
    0,
);
/// Largest message read (one UDP datagram that fits an Ethernet frame).
pub const MAX_MESSAGE: usize = 1400;
/// Most info-hashes read from one message.
pub const MAX_INFO_HASHES: usize = 32;

/// A `BT-SEARCH` message as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    /// The port the sender's peer listens on.
    pub port: u16,
    pub info_hashes: Vec<InfoHash>,
    pub cookie: Option<String>,
}

/// Why bytes are not a `BT-SEARCH` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a BEP 14 message: {0}")]
pub struct NotSearch(String);

/// The message to `group` ([`GROUP_V4`] or [`GROUP_V6`]) announcing `info_hash` on `port`, with our
/// `cookie`.
pub fn search(group: SocketAddr, port: u16, info_hash: &InfoHash, cookie: &str) -> Vec<u8> {
    format!(
        "BT-SEARCH * HTTP/1.1\r\nHost: {group}\r\nPort: {port}\r\nInfohash: {}\r\ncookie: {cookie}\r\n\r\n\r\n",
        info_hash.to_hex()
    )
    .into_bytes()
}

/// Reads a message (see the module docs).
pub fn parse(bytes: &[u8]) -> Result<Search, NotSearch> {
    let bad = |why: &str| Err(NotSearch(why.to_string()));
    if bytes.len() > MAX_MESSAGE {
        return bad("larger than a datagram of the protocol");
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return bad("not text");
    };
    let mut lines = text.split("\r\n");
    if lines.next() != Some("BT-SEARCH * HTTP/1.1") {
        return bad("its first line is not BT-SEARCH * HTTP/1.1");
    }
    let (mut port, mut info_hashes, mut cookie) = (None, Vec::new(), None);
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return bad("a header line without a colon");
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "port" => match value.parse::<u16>() {
                Ok(p) if p > 0 => port = Some(p),
                _ => return bad("its port is not a port"),
            },
            "infohash" => {
                let Some(ih) = InfoHash::from_hex(value).filter(|_| value.len() == 40) else {
                    return bad("an info-hash that is not 40 hex digits");
                };
                if info_hashes.len() == MAX_INFO_HASHES {
                    return bad("too many info-hashes");
                }
                if !info_hashes.contains(&ih) {
                    info_hashes.push(ih);
                }
            }
            "cookie" => cookie = Some(value.to_string()),
            _ => {}
        }
    }
    let Some(port) = port else {
        return bad("no port");
    };
    if info_hashes.is_empty() {
        return bad("no info-hash");
    }
    Ok(Search {
        port,
        info_hashes,
        cookie,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ih(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    #[test]
    fn our_message_reads_back() {
        let m = search(GROUP_V4.into(), 6881, &ih(0xab), "c00k1e");
        let text = String::from_utf8(m.clone()).unwrap();
        assert!(text.starts_with("BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\n"));
        let over_ipv6 = search(GROUP_V6.into(), 6881, &ih(0xab), "c00k1e");
        let text = String::from_utf8(over_ipv6.clone()).unwrap();
        assert!(text.starts_with("BT-SEARCH * HTTP/1.1\r\nHost: [ff15::efc0:988f]:6771\r\n"));
        assert_eq!(parse(&over_ipv6).unwrap(), parse(&m).unwrap());
        assert!(text.ends_with("\r\n\r\n\r\n"));
        let s = parse(&m).unwrap();
        assert_eq!(s.port, 6881);
        assert_eq!(s.info_hashes, [ih(0xab)]);
        assert_eq!(s.cookie.as_deref(), Some("c00k1e"));
    }

    #[test]
    fn other_clients_spellings_and_several_hashes_are_read() {
        let hex = |b: u8| ih(b).to_hex().to_uppercase();
        let text = format!(
            "BT-SEARCH * HTTP/1.1\r\nHOST: 239.192.152.143:6771\r\nport:51413\r\ninfohash: {}\r\nInfohash: {}\r\nInfohash: {}\r\n\r\n",
            hex(1),
            hex(2),
            hex(1)
        );
        let s = parse(text.as_bytes()).unwrap();
        assert_eq!((s.port, s.cookie), (51413, None));
        assert_eq!(s.info_hashes, [ih(1), ih(2)]);
    }

    #[test]
    fn what_is_not_a_search_says_why() {
        let ok = ih(3).to_hex();
        let cases: Vec<(String, &str)> = vec![
            ("GET / HTTP/1.1\r\n\r\n".into(), "first line"),
            (
                format!("BT-SEARCH * HTTP/1.1\r\nInfohash: {ok}\r\n\r\n"),
                "no port",
            ),
            (
                "BT-SEARCH * HTTP/1.1\r\nPort: 6881\r\n\r\n".into(),
                "no info-hash",
            ),
            (
                format!("BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: {ok}\r\n\r\n"),
                "not a port",
            ),
            (
                format!("BT-SEARCH * HTTP/1.1\r\nPort: 70000\r\nInfohash: {ok}\r\n\r\n"),
                "not a port",
            ),
            (
                "BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: abc\r\n\r\n".into(),
                "40 hex",
            ),
            (
                format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: {ok}00\r\n\r\n"),
                "40 hex",
            ),
            ("BT-SEARCH * HTTP/1.1\r\nPort 1\r\n\r\n".into(), "colon"),
        ];
        for (text, why) in cases {
            let e = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        let many: String = (0..=MAX_INFO_HASHES as u8)
            .map(|i| format!("Infohash: {}\r\n", ih(i).to_hex()))
            .collect();
        let text = format!("BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n{many}\r\n");
        assert!(parse(text.as_bytes()).is_err());
        assert!(parse(&[0xff; 10]).is_err());
        assert!(parse(&vec![b'a'; MAX_MESSAGE + 1]).is_err());
    }
}
