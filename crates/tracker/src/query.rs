//! Raw query-string parsing for `/announce` and `/scrape`.
//!
//! `info_hash` and `peer_id` are 20 arbitrary bytes, percent-encoded, usually not UTF-8, so the query is
//! read as raw bytes here rather than through a UTF-8 form decoder. Decoding rules, applied in one pass
//! over the raw bytes:
//! - `%XX` (either case of hex) is the byte `XX`; so `%2B` is `+` and `%20` is a space;
//! - a raw `+` is a space (form encoding, what most HTTP libraries emit for 0x20); a literal `+` byte
//!   arrives as `%2B`, and decoding in one pass means a decoded `+` is never turned into a space;
//! - every other byte, including the unescaped `!*'()~`, stands for itself;
//! - a `%` not followed by two hex digits is an error (the request is refused, never guessed at).
//!
//! Pairs are split on `&`; a key without `=` has an empty value. Keys are matched as raw bytes.
//! In an announce the first occurrence of a key wins; a scrape takes every `info_hash`.

use std::net::IpAddr;

use btorrent_proto::tracker::{AnnounceEvent, AnnounceRequest};
use btorrent_proto::types::{InfoHash, PeerId};

/// What a client said in one announce: the request both transports share, and how the HTTP reply
/// should list peers. The client's `key` is not read (the tracker does not use it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnnounceParams {
    /// `numwant` is `None` when absent or 0 (clients send `numwant=0` with `stopped`): the tracker's
    /// default. `ip` is the client's own idea of its address, when it is a literal IP. An `event` of
    /// `paused` is a partial seed's regular re-announce (BEP 21); empty a plain one (`None`).
    pub request: AnnounceRequest,
    pub compact: bool,
    pub no_peer_id: bool,
}

/// Splits a raw query into `(key, raw value)` pairs.
pub(crate) fn pairs(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &p[p.len()..]),
        })
}

/// Why a value could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    BadEscape,
    TooLong,
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `raw` into `buf` and returns the decoded bytes; more than `buf.len()` decoded bytes
/// is [`DecodeError::TooLong`].
pub(crate) fn decode<'b>(raw: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], DecodeError> {
    let mut i = 0;
    let mut n = 0;
    while i < raw.len() {
        let byte = match raw[i] {
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex_val);
                let lo = raw.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        i += 3;
                        hi << 4 | lo
                    }
                    _ => return Err(DecodeError::BadEscape),
                }
            }
            b'+' => {
                i += 1;
                b' '
            }
            other => {
                i += 1;
                other
            }
        };
        *buf.get_mut(n).ok_or(DecodeError::TooLong)? = byte;
        n += 1;
    }
    Ok(&buf[..n])
}

/// Decodes a 20-byte identifier (`info_hash`, `peer_id`).
pub(crate) fn decode_id(name: &str, raw: &[u8]) -> Result<[u8; 20], String> {
    let mut buf = [0u8; 21];
    match decode(raw, &mut buf) {
        Ok(b) if b.len() == 20 => {
            let mut out = [0u8; 20];
            out.copy_from_slice(b);
            Ok(out)
        }
        Err(DecodeError::BadEscape) => Err(format!("invalid percent-encoding in {name}")),
        Ok(_) | Err(DecodeError::TooLong) => Err(format!("{name} must be 20 bytes")),
    }
}

/// Decodes an unsigned decimal number.
fn decode_number(name: &str, raw: &[u8]) -> Result<u64, String> {
    let mut buf = [0u8; 24];
    let digits = decode(raw, &mut buf).map_err(|_| format!("invalid {name}"))?;
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(format!("invalid {name}"));
    }
    std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("invalid {name}"))
}

/// Reads the parameters of an announce; the error is the `failure reason` to send.
pub(crate) fn parse_announce(query: &[u8]) -> Result<AnnounceParams, String> {
    let mut info_hash = None;
    let mut peer_id = None;
    let mut port = None;
    let mut uploaded = None;
    let mut downloaded = None;
    let mut left = None;
    let mut event = None;
    let mut compact = None;
    let mut no_peer_id = None;
    let mut numwant = None;
    let mut ip = None;
    for (key, raw) in pairs(query) {
        match key {
            b"info_hash" if info_hash.is_none() => info_hash = Some(raw),
            b"peer_id" if peer_id.is_none() => peer_id = Some(raw),
            b"port" if port.is_none() => port = Some(raw),
            b"uploaded" if uploaded.is_none() => uploaded = Some(raw),
            b"downloaded" if downloaded.is_none() => downloaded = Some(raw),
            b"left" if left.is_none() => left = Some(raw),
            b"event" if event.is_none() => event = Some(raw),
            b"compact" if compact.is_none() => compact = Some(raw),
            b"no_peer_id" if no_peer_id.is_none() => no_peer_id = Some(raw),
            b"numwant" if numwant.is_none() => numwant = Some(raw),
            b"ip" if ip.is_none() => ip = Some(raw),
            _ => {}
        }
    }
    let info_hash = InfoHash(decode_id(
        "info_hash",
        info_hash.ok_or("missing info_hash")?,
    )?);
    let peer_id = PeerId(decode_id("peer_id", peer_id.ok_or("missing peer_id")?)?);
    let port = match decode_number("port", port.ok_or("missing port")?) {
        Ok(p @ 1..=65535) => p as u16,
        _ => return Err("invalid port (1 to 65535)".into()),
    };
    let counter = |name: &str, raw: Option<&[u8]>| raw.map_or(Ok(0), |r| decode_number(name, r));
    let uploaded = counter("uploaded", uploaded)?;
    let downloaded = counter("downloaded", downloaded)?;
    let left = decode_number("left", left.ok_or("missing left")?)?;
    let mut buf = [0u8; 16];
    let event = match event.map(|raw| decode(raw, &mut buf)) {
        None | Some(Ok(b"")) => None,
        Some(Ok(b"started")) => Some(AnnounceEvent::Started),
        Some(Ok(b"completed")) => Some(AnnounceEvent::Completed),
        Some(Ok(b"stopped")) => Some(AnnounceEvent::Stopped),
        Some(Ok(b"paused")) => Some(AnnounceEvent::Paused),
        Some(_) => {
            return Err("invalid event (started, completed, stopped, paused or empty)".into())
        }
    };
    let flag = |raw: Option<&[u8]>, default: bool| match raw {
        Some(b"0") => false,
        Some(b"1") => true,
        _ => default,
    };
    let numwant = match numwant {
        None => None,
        Some(raw) => {
            let mut buf = [0u8; 24];
            match decode(raw, &mut buf) {
                // Some clients send a negative number to mean "the default".
                Ok([b'-', rest @ ..])
                    if !rest.is_empty() && rest.iter().all(u8::is_ascii_digit) =>
                {
                    None
                }
                _ => match decode_number("numwant", raw)? {
                    0 => None,
                    n => Some(n.min(u32::MAX as u64) as u32),
                },
            }
        }
    };
    let ip = ip.and_then(|raw| {
        let mut buf = [0u8; 64];
        let text = decode(raw, &mut buf).ok()?;
        std::str::from_utf8(text).ok()?.parse::<IpAddr>().ok()
    });
    Ok(AnnounceParams {
        request: AnnounceRequest {
            info_hash,
            peer_id,
            port,
            uploaded,
            downloaded,
            left,
            event,
            numwant,
            key: None,
            ip,
        },
        compact: flag(compact, true),
        no_peer_id: flag(no_peer_id, false),
    })
}

/// Reads every `info_hash` of a scrape, at most `max` of them.
pub(crate) fn parse_scrape(query: &[u8], max: usize) -> Result<Vec<InfoHash>, String> {
    let mut out = Vec::new();
    for (key, raw) in pairs(query) {
        if key == b"info_hash" {
            if out.len() == max {
                return Err(format!("too many info_hash values (at most {max})"));
            }
            out.push(InfoHash(decode_id("info_hash", raw)?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(raw: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let mut buf = [0u8; 64];
        decode(raw, &mut buf).map(<[u8]>::to_vec)
    }

    #[test]
    fn decoding_rules() {
        assert_eq!(dec(b"%2B").unwrap(), b"+");
        assert_eq!(dec(b"%2b").unwrap(), b"+");
        assert_eq!(dec(b"+").unwrap(), b" ");
        assert_eq!(dec(b"%20").unwrap(), b" ");
        assert_eq!(dec(b"a%2B+b").unwrap(), b"a+ b");
        assert_eq!(dec(b"!*'()~-._").unwrap(), b"!*'()~-._");
        assert_eq!(dec(b"%ff%FF%00").unwrap(), [0xff, 0xff, 0]);
        assert_eq!(dec(b"%2"), Err(DecodeError::BadEscape));
        assert_eq!(dec(b"%G1"), Err(DecodeError::BadEscape));
        assert_eq!(dec(b"%"), Err(DecodeError::BadEscape));
        assert_eq!(dec(&[b'a'; 65]), Err(DecodeError::TooLong));
    }

    #[test]
    fn pairs_split_on_ampersand() {
        let p: Vec<_> = pairs(b"a=1&&b&c=&d=x=y").collect();
        assert_eq!(
            p,
            vec![
                (&b"a"[..], &b"1"[..]),
                (b"b", b""),
                (b"c", b""),
                (b"d", b"x=y")
            ]
        );
    }

    const BASE: &str = "info_hash=%01%02%03%04%05%06%07%08%09%0A%0B%0C%0D%0E%0F%10%11%12%13%14\
                        &peer_id=-XX0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3";

    #[test]
    fn announce_defaults() {
        let a = parse_announce(BASE.as_bytes()).unwrap();
        let p = &a.request;
        assert_eq!(p.info_hash.0[19], 0x14);
        assert_eq!(&p.peer_id.0, b"-XX0001-abcdefghijkl");
        assert_eq!((p.port, p.uploaded, p.downloaded, p.left), (6881, 1, 2, 3));
        assert_eq!(p.event, None);
        assert!(a.compact && !a.no_peer_id);
        assert_eq!((p.numwant, p.ip), (None, None));
    }

    #[test]
    fn announce_options() {
        let q = |extra: &str| parse_announce(format!("{BASE}&{extra}").as_bytes());
        let r = |extra: &str| q(extra).unwrap().request;
        assert_eq!(r("event=").event, None);
        assert_eq!(r("event=paused").event, Some(AnnounceEvent::Paused));
        assert_eq!(r("event=started").event, Some(AnnounceEvent::Started));
        assert_eq!(r("event=stopped&numwant=0").numwant, None);
        assert_eq!(r("numwant=-1").numwant, None);
        assert_eq!(r("numwant=80").numwant, Some(80));
        assert!(!q("compact=0").unwrap().compact);
        assert!(q("no_peer_id=1").unwrap().no_peer_id);
        assert_eq!(r("ip=10.0.0.9").ip, Some("10.0.0.9".parse().unwrap()));
        assert_eq!(r("ip=%3A%3A1").ip, Some("::1".parse().unwrap()));
        assert_eq!(r("ip=host.example").ip, None);
        // First occurrence wins.
        assert_eq!(r("port=7000").port, 6881);
    }

    #[test]
    fn announce_refusals() {
        let without = |key: &str| {
            BASE.split('&')
                .filter(|p| !p.starts_with(&format!("{key}=")))
                .collect::<Vec<_>>()
                .join("&")
        };
        let err = |q: String| parse_announce(q.as_bytes()).unwrap_err();
        assert_eq!(err(without("info_hash")), "missing info_hash");
        assert_eq!(err(without("peer_id")), "missing peer_id");
        assert_eq!(err(without("port")), "missing port");
        assert_eq!(err(without("left")), "missing left");
        let swap = |key: &str, val: &str| format!("{key}={val}&{}", without(key));
        assert_eq!(err(swap("info_hash", "abc")), "info_hash must be 20 bytes");
        assert_eq!(
            err(swap("info_hash", &"a".repeat(21))),
            "info_hash must be 20 bytes"
        );
        assert_eq!(
            err(swap("info_hash", &format!("{}%G0", "a".repeat(19)))),
            "invalid percent-encoding in info_hash"
        );
        assert_eq!(err(swap("peer_id", "short")), "peer_id must be 20 bytes");
        assert_eq!(err(swap("port", "0")), "invalid port (1 to 65535)");
        assert_eq!(err(swap("port", "65536")), "invalid port (1 to 65535)");
        assert_eq!(err(swap("port", "http")), "invalid port (1 to 65535)");
        assert_eq!(err(swap("uploaded", "ten")), "invalid uploaded");
        assert_eq!(err(swap("downloaded", "-5")), "invalid downloaded");
        assert_eq!(err(swap("left", "1e9")), "invalid left");
        assert_eq!(err(swap("left", "99999999999999999999999")), "invalid left");
        assert_eq!(err(swap("numwant", "many")), "invalid numwant");
        assert!(err(swap("event", "finished")).starts_with("invalid event"));
    }

    #[test]
    fn scrape_hashes() {
        let one = "%AA".repeat(20);
        let two = "%BB".repeat(20);
        let q = format!("info_hash={one}&x=1&info_hash={two}&info_hash={one}");
        let h = parse_scrape(q.as_bytes(), 10).unwrap();
        assert_eq!(
            h,
            vec![
                InfoHash([0xaa; 20]),
                InfoHash([0xbb; 20]),
                InfoHash([0xaa; 20])
            ]
        );
        assert!(parse_scrape(q.as_bytes(), 2)
            .unwrap_err()
            .starts_with("too many"));
        assert!(parse_scrape(b"info_hash=zz", 2).is_err());
        assert!(parse_scrape(b"", 2).unwrap().is_empty());
    }
}
