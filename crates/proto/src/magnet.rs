//! Magnet links (BEP 9): `magnet:?xt=urn:btih:<info-hash>&dn=<name>&tr=<tracker>&x.pe=<host:port>`,
//! `ws=<url>` (a web seed, BEP 19, as libtorrent and aria2 read it) and `so=<files>` (BEP 53:
//! download only these files, `0,2,4-6`).
//!
//! The info-hash is 40 hex digits or 32 base32 characters; `tr`, `x.pe` and `ws` may repeat; values are
//! percent-decoded (`+` is a space in `dn`). Unknown parameters are ignored, as other clients do. What
//! cannot be used is a clear one-line [`MagnetError`]: no `xt`, an `xt` that is not a BitTorrent v1
//! info-hash, a peer that is not `host:port`, a web seed that is not an `http(s)://` URL, an `so`
//! that is not a list of indices and ranges, more parameters than any real link carries. The
//! .torrent made of a link and its fetched info dictionary ([`Magnet::torrent_bytes`]) keeps its
//! trackers and web seeds.
//!
//! `so` indices count every entry of the info dictionary's file list, padding files (BEP 47)
//! included, as libtorrent and the BEP do; the link is parsed before the file list is known, so
//! [`Magnet::selected`] applies it once the metadata is there.

use std::ops::RangeInclusive;

use percent_encoding::percent_decode_str;

use crate::bencode::Writer;
use crate::types::InfoHash;

/// Longest magnet link accepted (real ones are a few hundred bytes; some carry dozens of trackers).
pub const MAX_MAGNET_LEN: usize = 64 * 1024;
/// Most `tr` and most `x.pe` values kept from one link.
pub const MAX_MAGNET_LIST: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The swarm's id: the `btih`, or for a v2-only link (`btmh` alone) its SHA-256 cut to 20 bytes.
    pub info_hash: InfoHash,
    /// The link's `btmh`, a v2 or hybrid torrent's whole SHA-256 info-hash (BEP 52): the info
    /// dictionary fetched must have it.
    pub info_hash_v2: Option<[u8; 32]>,
    /// `dn`: the name to show until the metadata arrives.
    pub name: Option<String>,
    /// `tr`: tracker URLs, in order, without repeats.
    pub trackers: Vec<String>,
    /// `x.pe`: peers as `host:port` (a name or an IP; `[v6]:port` for IPv6).
    pub peers: Vec<String>,
    /// `ws`: web seeds (BEP 19), `http://` or `https://` URLs, in order, without repeats.
    pub web_seeds: Vec<String>,
    /// `so` (BEP 53): the files to download, as index ranges (empty: every file).
    pub select_only: Vec<RangeInclusive<usize>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    #[error("not a magnet link (it should start with `magnet:?`)")]
    NotMagnet,
    #[error("magnet link is longer than {} KiB", MAX_MAGNET_LEN / 1024)]
    TooLong,
    #[error("magnet link has no `xt=urn:btih:<info-hash>` (or `xt=urn:btmh:1220<SHA-256>`)")]
    NoInfoHash,
    #[error("magnet `xt` {0:?} is not an info-hash (urn:btih: with 40 hex or 32 base32 characters, or urn:btmh:1220 with 64 hex)")]
    BadInfoHash(String),
    #[error("magnet `x.pe` {0:?} is not host:port")]
    BadPeer(String),
    #[error("magnet parameter {0:?} is not valid percent-encoded UTF-8")]
    BadEncoding(String),
    #[error("magnet `ws` {0:?} is not an http:// or https:// URL")]
    BadWebSeed(String),
    #[error("magnet `so` {0:?} is not a list of file indices and ranges (such as 0,2,4-6)")]
    BadSelectOnly(String),
    #[error("magnet `so` selects none of the torrent's {0} files (indices 0 to {last})", last = .0.saturating_sub(1))]
    SelectsNothing(usize),
    #[error("mutable magnet link's key {0:?} is not 64 hex digits (xs=urn:btpk:<ed25519 public key>, BEP 46)")]
    BadPublicKey(String),
    #[error("mutable magnet link's salt {0:?} is not hex of at most 64 bytes (BEP 46 `s`)")]
    BadSalt(String),
}

/// Whether `s` looks like a magnet link (what front ends test before treating it as a path).
pub fn is_magnet(s: &str) -> bool {
    s.trim_start()
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("magnet:?"))
}

/// 32 base32 characters (RFC 4648, either case) to 20 bytes.
fn base32(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let (mut acc, mut bits, mut n) = (0u64, 0u32, 0usize);
    for c in s.bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | v as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out[n] = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    (n == 20).then_some(out)
}

/// An `xt`: a v1 info-hash, or a v2 one (`urn:btmh:1220` and 64 hex digits: the SHA-256 multihash).
enum Xt {
    V1(InfoHash),
    V2([u8; 32]),
}

fn info_hash(xt: &str) -> Result<Xt, MagnetError> {
    let bad = || MagnetError::BadInfoHash(crate::text::shown(xt.as_bytes(), 80));
    if let Some(mh) = xt
        .get(..13)
        .filter(|p| p.eq_ignore_ascii_case("urn:btmh:1220"))
        .map(|_| &xt[13..])
    {
        let mut full = [0u8; 32];
        return hex::decode_to_slice(mh, &mut full)
            .map(|()| Xt::V2(full))
            .map_err(|_| bad());
    }
    let prefix = "urn:btih:";
    let h = xt
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &xt[prefix.len()..])
        .ok_or_else(bad)?;
    match h.len() {
        40 => InfoHash::from_hex(&h.to_ascii_lowercase()).ok_or_else(bad),
        32 => base32(h).map(InfoHash).ok_or_else(bad),
        _ => Err(bad()),
    }
    .map(Xt::V1)
}

/// Checks `host:port` (port 1 to 65535, a non-empty host without spaces).
fn check_peer(p: &str) -> Result<(), MagnetError> {
    let bad = || MagnetError::BadPeer(crate::text::shown(p.as_bytes(), 80));
    if let Ok(addr) = p.parse::<std::net::SocketAddr>() {
        return if addr.port() > 0 { Ok(()) } else { Err(bad()) };
    }
    let (host, port) = p.rsplit_once(':').ok_or_else(bad)?;
    let port_ok = port.parse::<u16>().is_ok_and(|n| n > 0);
    let host_ok = !host.is_empty()
        && !host.contains(':')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if port_ok && host_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Parses an `so` value (BEP 53): comma-separated indices (`3`) and inclusive ranges (`4-6`).
fn select_only(v: &str) -> Result<Vec<RangeInclusive<usize>>, MagnetError> {
    let bad = || MagnetError::BadSelectOnly(crate::text::shown(v.as_bytes(), 80));
    let index = |s: &str| {
        // Digits only: `usize::from_str` would take a leading `+`.
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<usize>().map_err(|_| bad())
    };
    let mut out = Vec::new();
    for item in v.split(',') {
        let range = match item.split_once('-') {
            Some((a, b)) => index(a)?..=index(b)?,
            None => {
                let i = index(item)?;
                i..=i
            }
        };
        if range.is_empty() || out.len() == MAX_MAGNET_LIST {
            return Err(bad());
        }
        out.push(range);
    }
    Ok(out)
}

impl Magnet {
    /// Parses a magnet link.
    pub fn parse(link: &str) -> Result<Magnet, MagnetError> {
        let link = link.trim();
        if link.len() > MAX_MAGNET_LEN {
            return Err(MagnetError::TooLong);
        }
        if !is_magnet(link) {
            return Err(MagnetError::NotMagnet);
        }
        let (mut ih, mut v2) = (None, None);
        let mut bad_xt = None;
        let mut m = Magnet {
            info_hash: InfoHash([0; 20]),
            info_hash_v2: None,
            name: None,
            trackers: Vec::new(),
            peers: Vec::new(),
            web_seeds: Vec::new(),
            select_only: Vec::new(),
        };
        for pair in link[8..].split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |plus_is_space: bool| {
                let raw = if plus_is_space {
                    raw.replace('+', " ")
                } else {
                    raw.to_string()
                };
                percent_decode_str(&raw)
                    .decode_utf8()
                    .map(|s| s.into_owned())
                    .map_err(|_| MagnetError::BadEncoding(crate::text::shown(key.as_bytes(), 40)))
            };
            match key {
                // A hybrid's link carries both: the fetch goes by the `btih` (the v1 swarm, which
                // every client of the torrent is in), the dictionary is checked against both.
                "xt" => match info_hash(&decode(false)?) {
                    Ok(Xt::V1(h)) => ih = ih.or(Some(h)),
                    Ok(Xt::V2(h)) => v2 = v2.or(Some(h)),
                    Err(e) => bad_xt = Some(e),
                },
                "dn" => m.name = Some(crate::text::shown(decode(true)?.as_bytes(), 255)),
                "tr" => {
                    let url = decode(false)?;
                    if !m.trackers.contains(&url) && m.trackers.len() < MAX_MAGNET_LIST {
                        m.trackers.push(url);
                    }
                }
                "x.pe" => {
                    let p = decode(false)?;
                    check_peer(&p)?;
                    if !m.peers.contains(&p) && m.peers.len() < MAX_MAGNET_LIST {
                        m.peers.push(p);
                    }
                }
                "ws" => {
                    let url = decode(false)?;
                    let web = url
                        .get(..7)
                        .is_some_and(|p| p.eq_ignore_ascii_case("http://"))
                        || url
                            .get(..8)
                            .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
                    if !web || url.contains(char::is_whitespace) {
                        return Err(MagnetError::BadWebSeed(crate::text::shown(
                            url.as_bytes(),
                            80,
                        )));
                    }
                    if !m.web_seeds.contains(&url) && m.web_seeds.len() < MAX_MAGNET_LIST {
                        m.web_seeds.push(url);
                    }
                }
                "so" => m.select_only = select_only(&decode(false)?)?,
                _ => {}
            }
        }
        (m.info_hash, m.info_hash_v2) = match (ih, v2, bad_xt) {
            (Some(h), v2, _) => (h, v2),
            (None, Some(full), _) => (crate::metainfo::v2::truncated(&full), Some(full)),
            (None, None, Some(e)) => return Err(e),
            (None, None, None) => return Err(MagnetError::NoInfoHash),
        };
        Ok(m)
    }
}

impl Magnet {
    /// Which of a torrent's `files` (its info dictionary's file count) the link's `so` selects:
    /// `None` when it has no `so` (every file), else one flag per file. Indices past the last
    /// file are ignored, as other clients do; a selection of none of the files is an error.
    pub fn selected(&self, files: usize) -> Result<Option<Vec<bool>>, MagnetError> {
        if self.select_only.is_empty() {
            return Ok(None);
        }
        let picked: Vec<bool> = (0..files)
            .map(|f| self.select_only.iter().any(|r| r.contains(&f)))
            .collect();
        if !picked.contains(&true) {
            return Err(MagnetError::SelectsNothing(files));
        }
        Ok(Some(picked))
    }

    /// A .torrent made of an info dictionary fetched for this link (`info`, its exact bytes), a v2
    /// torrent's `piece layers` fetched too (raw), the link's trackers, each in a tier of its own
    /// (BEP 12), and its web seeds (`url-list`).
    pub fn torrent_bytes(&self, info: &[u8], piece_layers: Option<&[u8]>) -> Vec<u8> {
        let mut w = Writer::with_capacity(info.len() + 256);
        w.begin_dict();
        if let Some(first) = self.trackers.first() {
            w.bytes(b"announce").bytes(first.as_bytes());
        }
        if self.trackers.len() > 1 {
            w.bytes(b"announce-list").begin_list();
            for t in &self.trackers {
                w.begin_list().bytes(t.as_bytes()).end();
            }
            w.end();
        }
        w.bytes(b"created by")
            .bytes(concat!("btorrent ", env!("CARGO_PKG_VERSION")).as_bytes());
        w.bytes(b"info").raw(info);
        if let Some(layers) = piece_layers {
            w.bytes(b"piece layers").raw(layers);
        }
        if !self.web_seeds.is_empty() {
            w.bytes(b"url-list").begin_list();
            for u in &self.web_seeds {
                w.bytes(u.as_bytes());
            }
            w.end();
        }
        w.end();
        w.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_matches_hex() {
        // The same 20 bytes in both spellings.
        let hex = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
        let b32 = "YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK";
        let a = Magnet::parse(&format!("magnet:?xt=urn:btih:{hex}")).unwrap();
        let b = Magnet::parse(&format!("magnet:?xt=urn:btih:{}", b32.to_lowercase())).unwrap();
        assert_eq!(a.info_hash, b.info_hash);
        assert_eq!(a.info_hash.to_hex(), hex);
    }

    const HASH: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    fn with_so(so: &str) -> Result<Magnet, MagnetError> {
        Magnet::parse(&format!("magnet:?xt=urn:btih:{HASH}&so={so}&dn=x"))
    }

    #[test]
    fn a_peer_is_a_host_and_a_port_other_than_0() {
        let with_pe = |pe: &str| Magnet::parse(&format!("magnet:?xt=urn:btih:{HASH}&x.pe={pe}"));
        for good in ["198.18.0.2:6881", "[2001:db8::7]:51413", "nas.local:1"] {
            assert_eq!(with_pe(good).unwrap().peers, [good], "{good}");
        }
        for bad in [
            "198.18.0.2:0",
            "[2001:db8::7]:0",
            "nas.local:0",
            "nas.local",
            ":6881",
        ] {
            assert_eq!(with_pe(bad), Err(MagnetError::BadPeer(bad.into())), "{bad}");
        }
    }

    #[test]
    fn select_only_takes_indices_and_ranges() {
        let m = with_so("0,2,4-6").unwrap();
        assert_eq!(m.select_only, vec![0..=0, 2..=2, 4..=6]);
        let flags = m.selected(8).unwrap().unwrap();
        assert_eq!(
            flags,
            [true, false, true, false, true, true, true, false].to_vec()
        );
        // Percent-encoded commas (as some sites write links) read the same.
        assert_eq!(with_so("0%2C2%2C4-6").unwrap().select_only, m.select_only);
        // Past the last file is ignored; no `so` is every file.
        assert_eq!(
            with_so("1,5-9").unwrap().selected(3).unwrap(),
            Some(vec![false, true, false])
        );
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HASH}"))
                .unwrap()
                .selected(3),
            Ok(None)
        );
    }

    #[test]
    fn web_seeds_are_read_and_kept_in_the_torrent() {
        let m = Magnet::parse(&format!(
            "magnet:?xt=urn:btih:{HASH}&ws=http%3A%2F%2Ffiles.lan%2Fshare%2F&ws=https://cdn.example/x.bin\
             &ws=http://files.lan/share/"
        ))
        .unwrap();
        assert_eq!(
            m.web_seeds,
            ["http://files.lan/share/", "https://cdn.example/x.bin"]
        );
        for bad in ["ftp://x/y", "files.lan/share", "http://a b/"] {
            let link = format!("magnet:?xt=urn:btih:{HASH}&ws={bad}");
            assert!(
                matches!(Magnet::parse(&link), Err(MagnetError::BadWebSeed(_))),
                "{bad}"
            );
        }
        let info = b"d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let t = crate::metainfo::Metainfo::from_bytes(&m.torrent_bytes(info, None)).unwrap();
        assert_eq!(t.web_seeds, m.web_seeds);
    }

    #[test]
    fn a_bad_select_only_is_named() {
        for so in [
            "",
            "a",
            "1,,2",
            "3-1",
            "-2",
            "1-",
            "+1",
            "1-2-3",
            "99999999999999999999999",
        ] {
            let e = with_so(so).unwrap_err();
            assert!(matches!(e, MagnetError::BadSelectOnly(_)), "{so:?}: {e}");
        }
        let many = vec!["1"; MAX_MAGNET_LIST + 1].join(",");
        assert!(matches!(with_so(&many), Err(MagnetError::BadSelectOnly(_))));
        let e = with_so("7-9").unwrap().selected(3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "magnet `so` selects none of the torrent's 3 files (indices 0 to 2)"
        );
    }
}
