//! The JSON shape of a tracker's `/get_peers` listing: every active peer with the torrents it is in.
//! The server writes it and the client reads it, so both sides share these types.
//!
//! ```json
//! {"peers":[{"peer_id":"2d4254...","client":"-BT0100-","ip":"127.0.0.1","port":6881,"left":0,
//!            "last_seen_secs":3,"torrents":[{"info_hash":"ab12...","left":0,"uploaded":0,
//!            "downloaded":1048576,"last_seen_secs":3}]}],
//!  "total":1,"truncated":false,"next":"127.0.0.1:6881"}
//! ```
//! The tracker serves it a page at a time: `next`, absent on the last page, is the `after=` of the
//! next request.
//! Hashes and peer ids are 40 lower-case hex digits.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::types::{InfoHash, PeerId};

/// One peer endpoint (IP and port) and the torrents it announced from there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerListing {
    #[serde(with = "hex_peer_id")]
    pub peer_id: PeerId,
    /// The peer id's printable prefix, e.g. `-qB4520-` (unprintable bytes shown as `.`).
    pub client: String,
    pub ip: IpAddr,
    pub port: u16,
    /// Bytes still missing, summed over its torrents (0: it seeds everything it announced).
    pub left: u64,
    /// Seconds since its most recent announce.
    pub last_seen_secs: u64,
    pub torrents: Vec<PeerTorrent>,
}

/// What a peer reported for one torrent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerTorrent {
    #[serde(with = "hex_info_hash")]
    pub info_hash: InfoHash,
    pub left: u64,
    pub uploaded: u64,
    pub downloaded: u64,
    pub last_seen_secs: u64,
}

/// The whole `/get_peers` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PeerList {
    pub peers: Vec<PeerListing>,
    /// (peer, torrent) entries the tracker holds that match the query, listed or not.
    pub total: usize,
    /// True when the listing was capped and some of those entries are in no page.
    pub truncated: bool,
    /// More follow: ask again with `after=` this endpoint (`IP:port`). Absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The readable part of a peer id: its first eight bytes (the Azureus-style `-XX1234-` client tag most
/// clients put there), unprintable bytes shown as `.`.
pub fn client_name(id: &PeerId) -> String {
    id.0[..8]
        .iter()
        .map(|&c| if c.is_ascii_graphic() { c as char } else { '.' })
        .collect()
}

macro_rules! hex_serde {
    ($module:ident, $t:ty) => {
        mod $module {
            use serde::{de::Error, Deserialize, Deserializer, Serializer};

            pub fn serialize<S: Serializer>(v: &$t, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&v.to_hex())
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                <$t>::from_hex(&s).ok_or_else(|| D::Error::custom("expected 40 hex digits"))
            }
        }
    };
}

hex_serde!(hex_peer_id, crate::types::PeerId);
hex_serde!(hex_info_hash, crate::types::InfoHash);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_uses_hex() {
        let list = PeerList {
            peers: vec![PeerListing {
                peer_id: PeerId(*b"-BT0100-abcdefghijkl"),
                client: "-BT0100-".into(),
                ip: "::1".parse().unwrap(),
                port: 6881,
                left: 5,
                last_seen_secs: 2,
                torrents: vec![PeerTorrent {
                    info_hash: InfoHash([0xab; 20]),
                    left: 5,
                    uploaded: 1,
                    downloaded: 2,
                    last_seen_secs: 2,
                }],
            }],
            total: 1,
            truncated: false,
            next: Some("[::1]:6881".into()),
        };
        let json = serde_json::to_string(&list).unwrap();
        assert!(json.contains(&"ab".repeat(20)), "{json}");
        assert!(json.contains("2d4254303130302d"), "{json}");
        assert_eq!(serde_json::from_str::<PeerList>(&json).unwrap(), list);
    }

    #[test]
    fn client_names() {
        assert_eq!(client_name(&PeerId(*b"-qB4520-abcdefghijkl")), "-qB4520-");
        assert_eq!(client_name(&PeerId([0; 20])), "........");
        assert_eq!(client_name(&PeerId(*b"M7-2-0--abcdefghijkl")), "M7-2-0--");
    }
}
