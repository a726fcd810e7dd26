//! Decoding what a tracker sends back: a bencoded announce or scrape reply, read from untrusted bytes.
//!
//! The body is first checked by [`btorrent_proto::bencode::validate`] (lengths inside the input, bounded nesting,
//! canonical integers), then turned into a small borrowed tree. Nothing is allocated beyond what the
//! body itself holds, so a tracker cannot make us reserve memory by claiming large counts.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{AnnounceResponse, ScrapeStats, TrackerError};
use btorrent_proto::bencode;
use btorrent_proto::types::InfoHash;

/// Longest text taken from a reply (`failure reason`, `warning message`): a tracker's words end up in
/// logs and above the shell's prompt.
pub const MAX_TEXT: usize = 300;

/// A decoded bencode value borrowing from the response body.
#[derive(Debug)]
pub(crate) enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

impl<'a> Value<'a> {
    /// Decodes exactly one value; trailing bytes or malformed input are an error.
    pub(crate) fn decode(buf: &'a [u8]) -> Result<Self, TrackerError> {
        bencode::validate(buf, false)
            .map_err(|e| TrackerError::BadResponse(format!("not bencode: {e}")))?;
        // The validator has checked every length and the nesting depth, so the walk below cannot fail
        // or recurse deeper than `bencode::MAX_DEPTH`; errors are still mapped rather than unwrapped.
        let (v, _) = decode_at(buf, 0)?;
        Ok(v)
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        match self {
            Value::Dict(entries) => entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// A non-negative integer under `key`.
    fn count(&self, key: &[u8]) -> Option<u64> {
        self.get(key)?.as_int().and_then(|i| u64::try_from(i).ok())
    }

    /// A text field as it may be shown (a reason, a warning): no control characters, at most
    /// [`MAX_TEXT`] characters.
    fn text(&self, key: &[u8]) -> Option<String> {
        self.get(key)?
            .as_bytes()
            .map(|b| btorrent_proto::text::shown(b, MAX_TEXT))
    }
}

fn decode_at(buf: &[u8], pos: usize) -> Result<(Value<'_>, usize), TrackerError> {
    let bad = |e: bencode::BencodeError| TrackerError::BadResponse(format!("not bencode: {e}"));
    match buf.get(pos) {
        Some(b'i') => {
            let (v, end) = bencode::read_int(buf, pos).map_err(bad)?;
            Ok((Value::Int(v), end))
        }
        Some(b'l') => {
            let mut items = Vec::new();
            let mut p = pos + 1;
            while buf.get(p).is_some_and(|&c| c != b'e') {
                let (v, end) = decode_at(buf, p)?;
                items.push(v);
                p = end;
            }
            Ok((Value::List(items), p + 1))
        }
        Some(b'd') => {
            let mut entries = Vec::new();
            let mut p = pos + 1;
            while buf.get(p).is_some_and(|&c| c != b'e') {
                let (key, after_key) = bencode::read_bytes(buf, p).map_err(bad)?;
                let (v, end) = decode_at(buf, after_key)?;
                entries.push((key, v));
                p = end;
            }
            Ok((Value::Dict(entries), p + 1))
        }
        _ => {
            let (b, end) = bencode::read_bytes(buf, pos).map_err(bad)?;
            Ok((Value::Bytes(b), end))
        }
    }
}

/// The top-level dictionary of a reply, or the tracker's refusal as [`TrackerError::Failure`].
fn top_dict(body: &[u8]) -> Result<Value<'_>, TrackerError> {
    let v = Value::decode(body)?;
    if !matches!(v, Value::Dict(_)) {
        return Err(TrackerError::BadResponse(
            "reply is not a dictionary".into(),
        ));
    }
    if let Some(reason) = v.text(b"failure reason") {
        return Err(TrackerError::Failure(reason));
    }
    Ok(v)
}

/// Parses an announce reply (BEP 3, compact peers of BEP 23, `peers6` of BEP 7).
pub fn parse_announce(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let v = top_dict(body)?;
    let interval = v.count(b"interval").ok_or_else(|| {
        TrackerError::BadResponse("reply has no `interval` and no `failure reason`".into())
    })?;
    let mut peers = Vec::new();
    match v.get(b"peers") {
        None => {}
        Some(Value::Bytes(compact)) => compact_v4(compact, &mut peers)?,
        Some(Value::List(list)) => dict_peers(list, &mut peers),
        Some(_) => {
            return Err(TrackerError::BadResponse(
                "`peers` is neither a string nor a list".into(),
            ))
        }
    }
    match v.get(b"peers6") {
        None => {}
        Some(Value::Bytes(compact)) => compact_v6(compact, &mut peers)?,
        Some(Value::List(list)) => dict_peers(list, &mut peers),
        Some(_) => {
            return Err(TrackerError::BadResponse(
                "`peers6` is neither a string nor a list".into(),
            ))
        }
    }
    Ok(AnnounceResponse {
        interval: Duration::from_secs(interval),
        min_interval: v.count(b"min interval").map(Duration::from_secs),
        complete: v.count(b"complete"),
        incomplete: v.count(b"incomplete"),
        downloaded: v.count(b"downloaded"),
        downloaders: v.count(b"downloaders"),
        peers,
        warning: v.text(b"warning message"),
    })
}

fn compact_v4(b: &[u8], out: &mut Vec<SocketAddr>) -> Result<(), TrackerError> {
    compact(b, false, "peers", out)
}

fn compact_v6(b: &[u8], out: &mut Vec<SocketAddr>) -> Result<(), TrackerError> {
    compact(b, true, "peers6", out)
}

fn compact(b: &[u8], ipv6: bool, key: &str, out: &mut Vec<SocketAddr>) -> Result<(), TrackerError> {
    btorrent_proto::tracker::read_compact_peers(b, ipv6, out).map_err(|n| {
        TrackerError::BadResponse(format!(
            "compact `{key}` is {} bytes, not a multiple of {n}",
            b.len()
        ))
    })
}

/// The dictionary form: `{ip, port, peer id}` per peer. Entries whose `ip` is not a literal address (a
/// host name) or whose port is 0 are skipped rather than resolved: the tracker is not trusted to make us
/// look names up.
fn dict_peers(list: &[Value<'_>], out: &mut Vec<SocketAddr>) {
    for p in list {
        let ip = p
            .get(b"ip")
            .and_then(Value::as_bytes)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse::<IpAddr>().ok());
        let port = p
            .get(b"port")
            .and_then(Value::as_int)
            .and_then(|i| u16::try_from(i).ok())
            .filter(|&p| p != 0);
        if let (Some(ip), Some(port)) = (ip, port) {
            out.extend(btorrent_proto::tracker::usable_peer(SocketAddr::new(
                ip, port,
            )));
        }
    }
}

/// Parses a scrape reply (BEP 48): `files` maps each raw 20-byte info-hash to its counts.
pub fn parse_scrape(body: &[u8]) -> Result<HashMap<InfoHash, ScrapeStats>, TrackerError> {
    let v = top_dict(body)?;
    let Some(Value::Dict(files)) = v.get(b"files") else {
        return Err(TrackerError::BadResponse(
            "scrape reply has no `files` dictionary".into(),
        ));
    };
    let mut out = HashMap::with_capacity(files.len());
    for (key, stats) in files {
        let Some(hash) = InfoHash::from_bytes(key) else {
            continue;
        };
        out.insert(
            hash,
            ScrapeStats {
                complete: stats.count(b"complete").unwrap_or(0),
                incomplete: stats.count(b"incomplete").unwrap_or(0),
                downloaded: stats.count(b"downloaded").unwrap_or(0),
                downloaders: stats.count(b"downloaders"),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn compact_and_v6_peers() {
        let mut body =
            b"d8:completei3e10:incompletei1e8:intervali900e12:min intervali60e5:peers12:".to_vec();
        body.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80]);
        body.extend_from_slice(b"6:peers618:");
        body.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        body.extend_from_slice(&[0x1a, 0xe2]);
        body.push(b'e');
        let r = parse_announce(&body).unwrap();
        assert_eq!(r.interval, Duration::from_secs(900));
        assert_eq!(r.min_interval, Some(Duration::from_secs(60)));
        assert_eq!((r.complete, r.incomplete), (Some(3), Some(1)));
        assert_eq!(
            r.peers,
            vec![
                "127.0.0.1:6881".parse().unwrap(),
                "10.0.0.2:80".parse().unwrap(),
                "[::1]:6882".parse().unwrap()
            ]
        );
    }

    #[test]
    fn dictionary_peers_skip_host_names_and_map_v4_in_v6() {
        let body = b"d8:intervali60e5:peersld2:ip9:127.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881eed2:ip11:example.org4:porti1eed2:ip15:::ffff:10.1.2.34:porti7eeee";
        let r = parse_announce(body).unwrap();
        assert_eq!(
            r.peers,
            vec![
                "127.0.0.1:6881".parse().unwrap(),
                "10.1.2.3:7".parse().unwrap()
            ]
        );
    }

    #[test]
    fn failure_reason_is_an_error() {
        let e = parse_announce(b"d14:failure reason9:not allow").unwrap_err();
        assert!(matches!(e, TrackerError::BadResponse(_)), "{e}");
        let e = parse_announce(b"d14:failure reason11:not allowede").unwrap_err();
        assert!(
            matches!(&e, TrackerError::Failure(r) if r == "not allowed"),
            "{e}"
        );
        assert!(e.to_string().contains("not allowed"));
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            &b"<html>oops</html>"[..],
            b"le",
            b"d5:peers0:e",
            b"d8:intervali60e5:peers5:abcdee",
            b"d8:intervali60e6:peers65:abcdee",
            b"d8:intervali60e5:peersi3ee",
        ] {
            assert!(
                parse_announce(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn scrape_files() {
        let mut body = b"d5:filesd20:".to_vec();
        body.extend_from_slice(&[7u8; 20]);
        body.extend_from_slice(b"d8:completei2e10:downloadedi5e10:incompletei1ee");
        // BEP 21's count of the leechers still downloading, from a tracker that keeps it.
        body.extend_from_slice(b"20:");
        body.extend_from_slice(&[8u8; 20]);
        body.extend_from_slice(
            b"d8:completei0e10:downloadedi0e11:downloadersi3e10:incompletei4eeee",
        );
        let m = parse_scrape(&body).unwrap();
        assert_eq!(
            m[&InfoHash([7; 20])],
            ScrapeStats {
                complete: 2,
                incomplete: 1,
                downloaded: 5,
                downloaders: None,
            }
        );
        assert_eq!(m[&InfoHash([8; 20])].downloaders, Some(3));
    }
}
