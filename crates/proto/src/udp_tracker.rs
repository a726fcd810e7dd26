//! The UDP tracker protocol (BEP 15): the packets of connect, announce, scrape and error, encoded and
//! decoded for both sides (btorrent's tracker client and its tracker server).
//!
//! Every packet is read from untrusted bytes: a wrong length, an unknown action, a bad protocol id or
//! event is a [`PacketError`], never a panic, and nothing is allocated beyond what the packet holds.
//! Announce replies carry 6-byte IPv4 peers when the exchange runs over IPv4 and 18-byte IPv6 peers
//! over IPv6 (BEP 15's IPv6 note); the side that decodes says which with `ipv6`.
//!
//! Lengths accepted: connect request exactly 16 bytes, announce request at least 98 (then BEP 41
//! options, [`read_options`]), scrape request 16 + 20 x N with 1 <= N <= [`MAX_SCRAPE_HASHES`]; connect
//! reply exactly 16, announce reply 20 + 6 x N (or 18 x N), scrape reply 8 + 12 x N, error reply 8 +
//! the message.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::tracker::{
    compact_len, read_compact_peers, write_compact_peer, AnnounceEvent, AnnounceRequest,
    AnnounceResponse, ScrapeStats,
};
use crate::types::{InfoHash, PeerId};

/// The magic number that opens a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// How long a client may use a connection id (a server accepts it somewhat longer).
pub const CONNECTION_ID_LIFETIME: Duration = Duration::from_secs(60);
/// Info-hashes in one scrape packet (BEP 15: "up to about 74").
pub const MAX_SCRAPE_HASHES: usize = 74;
/// Length of an announce request without BEP 41 options.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;
/// Longest error message decoded.
pub const MAX_ERROR_TEXT: usize = 300;

/// Longest URLData a request carries or a tracker reads (BEP 41 bounds nothing but the packet).
pub const MAX_URL_DATA: usize = 1024;

const CONNECT: u32 = 0;
const ANNOUNCE: u32 = 1;
const SCRAPE: u32 = 2;
const ERROR: u32 = 3;

/// Why a packet could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("{what} of {len} bytes is too short (at least {need})")]
    TooShort {
        what: &'static str,
        len: usize,
        need: usize,
    },
    #[error("{what} of {len} bytes has a wrong length")]
    WrongLength { what: &'static str, len: usize },
    #[error("unknown action {0}")]
    UnknownAction(u32),
    #[error("connect request with protocol id {0:#x} instead of 0x41727101980")]
    BadProtocolId(u64),
    #[error("unknown announce event {0}")]
    BadEvent(u32),
    #[error("scrape names no info-hash")]
    NoHashes,
    #[error("scrape names {0} info-hashes (at most {MAX_SCRAPE_HASHES})")]
    TooManyHashes(usize),
}

/// A packet from a client to a tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Connect {
        transaction_id: u32,
    },
    Announce {
        connection_id: u64,
        transaction_id: u32,
        announce: AnnounceRequest,
        /// The path and query of the tracker's URL (BEP 41's URLData: `/announce?passkey=...` of
        /// `udp://tracker:1337/announce?passkey=...`), which a UDP request has no other place for;
        /// empty when the URL has none.
        url_data: Vec<u8>,
    },
    Scrape {
        connection_id: u64,
        transaction_id: u32,
        hashes: Vec<InfoHash>,
    },
}

/// A packet from a tracker to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Connect {
        transaction_id: u32,
        connection_id: u64,
    },
    /// `interval`, `complete` (seeders), `incomplete` (leechers) and `peers` of the reply are on the
    /// wire; `min_interval` and `warning` have no place there and decode as `None`.
    Announce {
        transaction_id: u32,
        reply: AnnounceResponse,
    },
    /// Counts in the order of the request's info-hashes.
    Scrape {
        transaction_id: u32,
        stats: Vec<ScrapeStats>,
    },
    Error {
        transaction_id: u32,
        message: String,
    },
}

impl Response {
    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(x)
}

fn id_at<T: From<[u8; 20]>>(b: &[u8], at: usize) -> T {
    let mut x = [0u8; 20];
    x.copy_from_slice(&b[at..at + 20]);
    T::from(x)
}

impl From<[u8; 20]> for InfoHash {
    fn from(b: [u8; 20]) -> Self {
        InfoHash(b)
    }
}

impl From<[u8; 20]> for PeerId {
    fn from(b: [u8; 20]) -> Self {
        PeerId(b)
    }
}

fn event_code(e: Option<AnnounceEvent>) -> u32 {
    match e {
        None => 0,
        Some(AnnounceEvent::Completed) => 1,
        Some(AnnounceEvent::Started) => 2,
        Some(AnnounceEvent::Stopped) => 3,
        // Not in BEP 15; sent as libtorrent does, and read as none by trackers that do not know it.
        Some(AnnounceEvent::Paused) => 4,
    }
}

/// Counts on the wire are 32 bits: larger ones are sent as the largest.
fn wire_count(n: Option<u64>) -> u32 {
    n.unwrap_or(0).min(u32::MAX as u64) as u32
}

impl Request {
    /// Decodes a packet a client sent (the tracker's side).
    pub fn decode(b: &[u8]) -> Result<Request, PacketError> {
        if b.len() < 16 {
            return Err(PacketError::TooShort {
                what: "request",
                len: b.len(),
                need: 16,
            });
        }
        let (first, action, transaction_id) = (u64_at(b, 0), u32_at(b, 8), u32_at(b, 12));
        match action {
            CONNECT => {
                if b.len() != 16 {
                    return Err(PacketError::WrongLength {
                        what: "connect request",
                        len: b.len(),
                    });
                }
                if first != PROTOCOL_ID {
                    return Err(PacketError::BadProtocolId(first));
                }
                Ok(Request::Connect { transaction_id })
            }
            ANNOUNCE => {
                if b.len() < ANNOUNCE_REQUEST_LEN {
                    return Err(PacketError::TooShort {
                        what: "announce request",
                        len: b.len(),
                        need: ANNOUNCE_REQUEST_LEN,
                    });
                }
                let event = match u32_at(b, 80) {
                    0 => None,
                    1 => Some(AnnounceEvent::Completed),
                    2 => Some(AnnounceEvent::Started),
                    3 => Some(AnnounceEvent::Stopped),
                    4 => Some(AnnounceEvent::Paused),
                    other => return Err(PacketError::BadEvent(other)),
                };
                let ip = match u32_at(b, 84) {
                    0 => None,
                    v4 => Some(IpAddr::V4(Ipv4Addr::from(v4))),
                };
                let key = u32_at(b, 88);
                let numwant = match u32_at(b, 92) as i32 {
                    n if n > 0 => Some(n as u32),
                    _ => None,
                };
                Ok(Request::Announce {
                    connection_id: first,
                    transaction_id,
                    url_data: read_options(&b[ANNOUNCE_REQUEST_LEN..]),
                    announce: AnnounceRequest {
                        info_hash: id_at(b, 16),
                        peer_id: id_at(b, 36),
                        downloaded: u64_at(b, 56),
                        left: u64_at(b, 64),
                        uploaded: u64_at(b, 72),
                        event,
                        ip,
                        key: Some(key),
                        numwant,
                        port: u16::from_be_bytes([b[96], b[97]]),
                    },
                })
            }
            SCRAPE => {
                let body = &b[16..];
                if !body.len().is_multiple_of(20) {
                    return Err(PacketError::WrongLength {
                        what: "scrape request",
                        len: b.len(),
                    });
                }
                match body.len() / 20 {
                    0 => return Err(PacketError::NoHashes),
                    n if n > MAX_SCRAPE_HASHES => return Err(PacketError::TooManyHashes(n)),
                    _ => {}
                }
                Ok(Request::Scrape {
                    connection_id: first,
                    transaction_id,
                    hashes: (0..body.len() / 20).map(|i| id_at(body, i * 20)).collect(),
                })
            }
            other => Err(PacketError::UnknownAction(other)),
        }
    }

    /// Appends the packet to `out`. An `ip` that is not IPv4 is sent as 0 (the tracker's choice); a
    /// scrape is sent as given (callers keep to [`MAX_SCRAPE_HASHES`]).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Request::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Request::Announce {
                connection_id,
                transaction_id,
                announce: a,
                url_data,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&a.info_hash.0);
                out.extend_from_slice(&a.peer_id.0);
                out.extend_from_slice(&a.downloaded.to_be_bytes());
                out.extend_from_slice(&a.left.to_be_bytes());
                out.extend_from_slice(&a.uploaded.to_be_bytes());
                out.extend_from_slice(&event_code(a.event).to_be_bytes());
                let ip = match a.ip {
                    Some(IpAddr::V4(v4)) => u32::from(v4),
                    _ => 0,
                };
                out.extend_from_slice(&ip.to_be_bytes());
                out.extend_from_slice(&a.key.unwrap_or(0).to_be_bytes());
                let numwant = a.numwant.map_or(-1, |n| n.min(i32::MAX as u32) as i32);
                out.extend_from_slice(&numwant.to_be_bytes());
                out.extend_from_slice(&a.port.to_be_bytes());
                write_options(url_data, out);
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                hashes,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                hashes.iter().for_each(|h| out.extend_from_slice(&h.0));
            }
        }
    }
}

/// BEP 41 option types.
const END_OF_OPTIONS: u8 = 0;
const NOP: u8 = 1;
const URL_DATA: u8 = 2;

/// Appends `url_data` (at most [`MAX_URL_DATA`] bytes of it) as URLData options of up to 255 bytes
/// each, then EndOfOptions; nothing when it is empty.
fn write_options(url_data: &[u8], out: &mut Vec<u8>) {
    if url_data.is_empty() {
        return;
    }
    for chunk in url_data[..url_data.len().min(MAX_URL_DATA)].chunks(255) {
        out.extend_from_slice(&[URL_DATA, chunk.len() as u8]);
        out.extend_from_slice(chunk);
    }
    out.push(END_OF_OPTIONS);
}

/// The URLData of an announce's BEP 41 options (`b` is what follows the 98 bytes), its options'
/// pieces joined. Lenient, as the BEP asks of trackers: NOP is skipped, an option of another type
/// is skipped by its length, EndOfOptions ends them and so does the packet's end, even inside an
/// option (what was read before is kept); past [`MAX_URL_DATA`] bytes the rest is dropped.
pub fn read_options(mut b: &[u8]) -> Vec<u8> {
    let mut url_data = Vec::new();
    while let Some((&kind, rest)) = b.split_first() {
        match kind {
            END_OF_OPTIONS => break,
            NOP => b = rest,
            _ => {
                let Some((&len, rest)) = rest.split_first() else {
                    break;
                };
                let Some(value) = rest.get(..len as usize) else {
                    break;
                };
                if kind == URL_DATA {
                    let room = MAX_URL_DATA - url_data.len();
                    url_data.extend_from_slice(&value[..value.len().min(room)]);
                }
                b = &rest[len as usize..];
            }
        }
    }
    url_data
}

impl Response {
    /// Decodes a packet a tracker sent (the client's side); `ipv6` says the exchange runs over IPv6,
    /// so announce replies carry 18-byte peers.
    pub fn decode(b: &[u8], ipv6: bool) -> Result<Response, PacketError> {
        if b.len() < 8 {
            return Err(PacketError::TooShort {
                what: "reply",
                len: b.len(),
                need: 8,
            });
        }
        let (action, transaction_id) = (u32_at(b, 0), u32_at(b, 4));
        match action {
            CONNECT => {
                if b.len() != 16 {
                    return Err(PacketError::WrongLength {
                        what: "connect reply",
                        len: b.len(),
                    });
                }
                Ok(Response::Connect {
                    transaction_id,
                    connection_id: u64_at(b, 8),
                })
            }
            ANNOUNCE => {
                if b.len() < 20 {
                    return Err(PacketError::TooShort {
                        what: "announce reply",
                        len: b.len(),
                        need: 20,
                    });
                }
                let mut peers = Vec::with_capacity((b.len() - 20) / compact_len(ipv6));
                read_compact_peers(&b[20..], ipv6, &mut peers).map_err(|_| {
                    PacketError::WrongLength {
                        what: "announce reply",
                        len: b.len(),
                    }
                })?;
                Ok(Response::Announce {
                    transaction_id,
                    reply: AnnounceResponse {
                        interval: Duration::from_secs(u32_at(b, 8) as u64),
                        min_interval: None,
                        incomplete: Some(u32_at(b, 12) as u64),
                        complete: Some(u32_at(b, 16) as u64),
                        downloaded: None,
                        downloaders: None,
                        peers,
                        warning: None,
                    },
                })
            }
            SCRAPE => {
                let body = &b[8..];
                if !body.len().is_multiple_of(12) {
                    return Err(PacketError::WrongLength {
                        what: "scrape reply",
                        len: b.len(),
                    });
                }
                let stats = body
                    .chunks_exact(12)
                    .map(|c| ScrapeStats {
                        complete: u32_at(c, 0) as u64,
                        downloaded: u32_at(c, 4) as u64,
                        incomplete: u32_at(c, 8) as u64,
                        downloaders: None,
                    })
                    .collect();
                Ok(Response::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ERROR => Ok(Response::Error {
                transaction_id,
                message: crate::text::shown(&b[8..], MAX_ERROR_TEXT),
            }),
            other => Err(PacketError::UnknownAction(other)),
        }
    }

    /// Appends the packet to `out`. An announce reply carries only the peers of the exchange's family
    /// (`ipv6`); the others cannot be written in its format and are left out.
    pub fn encode(&self, ipv6: bool, out: &mut Vec<u8>) {
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                out.extend_from_slice(&CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Response::Announce {
                transaction_id,
                reply,
            } => {
                out.extend_from_slice(&ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                let interval = reply.interval.as_secs().min(u32::MAX as u64) as u32;
                out.extend_from_slice(&interval.to_be_bytes());
                out.extend_from_slice(&wire_count(reply.incomplete).to_be_bytes());
                out.extend_from_slice(&wire_count(reply.complete).to_be_bytes());
                reply
                    .peers
                    .iter()
                    .filter(|p| p.is_ipv6() == ipv6)
                    .for_each(|p| write_compact_peer(p, out));
            }
            Response::Scrape {
                transaction_id,
                stats,
            } => {
                out.extend_from_slice(&SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for s in stats {
                    out.extend_from_slice(&wire_count(Some(s.complete)).to_be_bytes());
                    out.extend_from_slice(&wire_count(Some(s.downloaded)).to_be_bytes());
                    out.extend_from_slice(&wire_count(Some(s.incomplete)).to_be_bytes());
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                out.extend_from_slice(&ERROR.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(message.as_bytes());
            }
        }
    }
}

/// Whether `addr` is reached over IPv6 in the sense of BEP 15 (an IPv4-mapped address is IPv4).
pub fn is_ipv6(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_ipv6()
}
