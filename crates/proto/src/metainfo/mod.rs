//! The .torrent file (BEP 3 metainfo): a validated model of it, parsing from untrusted bytes, creation
//! from a file or folder ([`create`]), tracker editing that leaves the info-hash alone ([`edit`]), and
//! magnet links.
//!
//! Invariants a [`Metainfo`] guarantees once built:
//! - `info_hash` is the SHA-1 of `info_bytes()`, the `info` dictionary exactly as it is in the file
//!   (for a v2-only torrent, BEP 52, its SHA-256 cut to 20 bytes, the whole in `info_hash_v2`);
//!   a hybrid (v1 and v2 in one `info`) has both: the SHA-1 as `info_hash`, the SHA-256 in
//!   `info_hash_v2`, its v2 side checked to describe the very files of its v1 side;
//! - `info` holds what the [`info`] module guarantees: lengths in range, one hash per piece, file paths
//!   that cannot escape the download folder and do not clash.
//!
//! Parsing never panics and never allocates what the input merely claims; every refusal is one line of
//! bounded length saying what is wrong. Like other clients, bytes after the top-level dictionary are
//! ignored (some sites append a newline or padding) and keys out of order are tolerated; a key given
//! twice is refused.

pub mod create;
pub mod edit;
pub mod hashing;
pub mod info;
pub mod v2;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_bytes::ByteBuf;
use sha1::{Digest, Sha1};

use crate::bencode::{self, BencodeError};
use crate::types::InfoHash;

pub use create::{create_torrent, CreateOptions};
pub use edit::{change_trackers, edit_trackers, set_piece_layers, set_tracker_tiers, TrackerEdit};
pub use info::{layers_needed, FileEntry, Format, Info};
pub use v2::Hybrid;

/// Largest .torrent file read (a 1 PiB torrent with 16 MiB pieces has 1.3 MB of hashes).
pub const MAX_TORRENT_FILE: u64 = 64 << 20;
/// Largest piece length accepted.
pub const MAX_PIECE_LENGTH: u64 = 256 << 20;
/// Largest total size accepted (1 PiB).
pub const MAX_TOTAL_LENGTH: u64 = 1 << 50;
/// Most files in one torrent.
pub const MAX_FILES: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum MetainfoError {
    #[error("not a valid .torrent: {0}")]
    Bencode(#[from] BencodeError),
    #[error("not a valid .torrent: {0}")]
    Invalid(String),
    /// The file or folder given to [`create_torrent`] cannot be made into a torrent.
    #[error("cannot create a torrent: {0}")]
    Create(String),
    /// An argument (such as a tracker URL) that cannot be used.
    #[error("{0}")]
    BadArgument(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Creation was stopped through [`CreateOptions::cancel`].
    #[error("cancelled")]
    Cancelled,
}

/// Longest error detail kept: input echoed in a message is cut to this many characters.
const MAX_ERROR_CHARS: usize = 300;

/// One line of bounded length, whatever the input echoed in it: control characters become spaces.
fn one_line(msg: &str) -> String {
    let mut out: String = msg
        .chars()
        .take(MAX_ERROR_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if msg.chars().nth(MAX_ERROR_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

/// A web seed's address (BEP 19) must be an `http://` or `https://` URL with a host.
pub fn check_web_seed_url(url: &str) -> Result<(), MetainfoError> {
    let shaped = ["http://", "https://"].iter().any(|s| {
        url.strip_prefix(s)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with(['/', '?', '#', ':']))
    });
    if shaped && !url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(MetainfoError::BadArgument(one_line(&format!(
            "{url:?} is not a web seed URL (expected e.g. http://host/files/)"
        ))))
    }
}

/// Checks that `url` is shaped like a tracker URL: `scheme://host...`, with no spaces or control
/// characters. Any scheme passes: a torrent may also be meant for other clients' UDP trackers.
pub fn check_tracker_url(url: &str) -> Result<(), MetainfoError> {
    let shaped = url.split_once("://").is_some_and(|(scheme, rest)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            && !rest.starts_with(['/', '?', '#', ':'])
            && !rest.is_empty()
    });
    if shaped && !url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(MetainfoError::BadArgument(one_line(&format!(
            "{url:?} is not a tracker URL (expected e.g. http://host:6969/announce)"
        ))))
    }
}

fn invalid(msg: impl AsRef<str>) -> MetainfoError {
    MetainfoError::Invalid(one_line(msg.as_ref()))
}

fn cannot_create(msg: impl AsRef<str>) -> MetainfoError {
    MetainfoError::Create(one_line(msg.as_ref()))
}

/// A parsed .torrent. Cheap to clone: the file's bytes are shared.
#[derive(Debug, Clone)]
pub struct Metainfo {
    /// The swarm's id: the SHA-1 of `info`, or for a v2-only torrent its SHA-256 cut to 20 bytes
    /// (BEP 52), which is what handshakes, trackers and the DHT use.
    pub info_hash: InfoHash,
    /// A v2 or hybrid torrent's whole SHA-256 info-hash (its magnet link's `btmh`).
    pub info_hash_v2: Option<v2::Hash256>,
    pub info: Arc<Info>,
    pub announce: Option<String>,
    pub announce_list: Vec<Vec<String>>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub creation_date: Option<i64>,
    /// BEP 19 web seeds (`url-list`, a single URL or a list of them).
    pub web_seeds: Vec<String>,
    bytes: Arc<[u8]>,
    info_span: Range<usize>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Decodes one optional top-level value; a value of the wrong type is ignored rather than fatal, as
/// mature clients do for fields that do not affect the content.
fn lenient<'de, T: Deserialize<'de>>(raw: &'de [u8]) -> Option<T> {
    serde_bencode::from_bytes(raw).ok()
}

impl Metainfo {
    /// Reads and parses a .torrent file. Reads at most [`MAX_TORRENT_FILE`] bytes, so a device or a
    /// pipe that never ends is refused rather than read into memory.
    pub fn load(path: &Path) -> Result<Self, MetainfoError> {
        use std::io::Read;
        let io = |source| MetainfoError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if meta.is_dir() {
            return Err(invalid(format!("{} is a folder", path.display())));
        }
        let too_big = || {
            invalid(format!(
                "{} is larger than {} MiB, more than any real .torrent",
                path.display(),
                MAX_TORRENT_FILE >> 20
            ))
        };
        if meta.len() > MAX_TORRENT_FILE {
            return Err(too_big());
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(MAX_TORRENT_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_TORRENT_FILE {
            return Err(too_big());
        }
        Self::from_bytes(&bytes)
    }

    /// Parses a .torrent from untrusted bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetainfoError> {
        match bytes.first() {
            None => return Err(invalid("the file is empty")),
            Some(b'd') => {}
            Some(_) => {
                return Err(invalid(
                    "not bencode: a .torrent is a bencoded dictionary and starts with `d`",
                ))
            }
        }
        let (entries, end) = bencode::dict_entries_prefix(bytes)?;
        let bytes = &bytes[..end];
        let get = |key: &[u8]| {
            entries
                .iter()
                .find(|e| e.key == key)
                .map(|e| (&bytes[e.value.clone()], e.value.clone()))
        };
        let (info_raw, info_span) = get(b"info").ok_or_else(|| invalid("no `info` dictionary"))?;
        let piece_layers = get(b"piece layers").map(|(r, _)| r);
        let info = info::parse_info(info_raw, info_span.start, piece_layers)?;
        let (info_hash, info_hash_v2) = match info.format() {
            Format::V2 => {
                let full = v2::sha256(info_raw);
                (v2::truncated(&full), Some(full))
            }
            Format::Hybrid => (
                InfoHash(Sha1::digest(info_raw).into()),
                Some(v2::sha256(info_raw)),
            ),
            Format::V1 => (InfoHash(Sha1::digest(info_raw).into()), None),
        };

        let announce = get(b"announce")
            .and_then(|(r, _)| lenient::<ByteBuf>(r))
            .map(|b| text(&b))
            .filter(|s| !s.is_empty());
        let announce_list = get(b"announce-list")
            .and_then(|(r, _)| lenient::<Vec<Vec<ByteBuf>>>(r))
            .unwrap_or_default()
            .into_iter()
            .map(|tier| {
                tier.iter()
                    .map(|u| text(u))
                    .filter(|u| !u.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|tier| !tier.is_empty())
            .collect();
        let str_field = |key: &[u8]| {
            get(key)
                .and_then(|(r, _)| lenient::<ByteBuf>(r))
                .map(|b| text(&b))
        };
        let web_seeds = get(b"url-list")
            .and_then(|(r, _)| {
                lenient::<Vec<ByteBuf>>(r).or_else(|| lenient::<ByteBuf>(r).map(|u| vec![u]))
            })
            .unwrap_or_default()
            .iter()
            .map(|u| text(u))
            .filter(|u| !u.is_empty())
            .collect();
        Ok(Metainfo {
            info_hash,
            info_hash_v2,
            info: Arc::new(info),
            announce,
            announce_list,
            comment: str_field(b"comment"),
            created_by: str_field(b"created by"),
            creation_date: get(b"creation date").and_then(|(r, _)| lenient::<i64>(r)),
            web_seeds,
            bytes: bytes.into(),
            info_span,
        })
    }

    /// The whole .torrent file as parsed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The `info` dictionary exactly as it is in the file (what the info-hash is computed over).
    pub fn info_bytes(&self) -> &[u8] {
        &self.bytes[self.info_span.clone()]
    }

    /// A hybrid torrent's other swarm id: its SHA-256 info-hash cut to 20 bytes (its v2 swarm;
    /// `info_hash` is its v1 one). Peers that know it only by a `urn:btmh:` link look for it, and
    /// connect, by that. `None` for v1 and v2-only torrents, which have one swarm.
    pub fn second_info_hash(&self) -> Option<InfoHash> {
        match self.info.format() {
            Format::Hybrid => self.info_hash_v2.as_ref().map(v2::truncated),
            Format::V1 | Format::V2 => None,
        }
    }

    /// The ids of the swarms it is in: `info_hash`, then a hybrid's [`Metainfo::second_info_hash`].
    pub fn swarm_ids(&self) -> impl Iterator<Item = InfoHash> {
        std::iter::once(self.info_hash).chain(self.second_info_hash())
    }

    /// Every tracker URL, `announce-list` tiers first (BEP 12), then `announce` if not already listed.
    pub fn trackers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for url in self
            .announce_list
            .iter()
            .flatten()
            .chain(self.announce.iter())
        {
            if !out.contains(url) {
                out.push(url.clone());
            }
        }
        out
    }

    /// Trackers grouped in tiers (BEP 12); a torrent with only `announce` has one tier of one.
    pub fn tracker_tiers(&self) -> Vec<Vec<String>> {
        if self.announce_list.is_empty() {
            self.announce.iter().map(|u| vec![u.clone()]).collect()
        } else {
            self.announce_list.clone()
        }
    }

    /// `magnet:?xt=urn:btih:<hex>&dn=<name>&tr=<tracker>...&ws=<web seed>...` (BEP 9); a v2-only
    /// torrent's `xt` is `urn:btmh:1220<hex of its SHA-256>` (BEP 52's multihash).
    pub fn magnet(&self) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let btih = format!("btih:{}", self.info_hash.to_hex());
        let xt = match (&self.info_hash_v2, self.info.format()) {
            (Some(full), Format::V2) => format!("btmh:1220{}", hex::encode(full)),
            (Some(full), _) => format!("{btih}&xt=urn:btmh:1220{}", hex::encode(full)),
            (None, _) => btih,
        };
        let mut m = format!(
            "magnet:?xt=urn:{xt}&dn={}",
            utf8_percent_encode(&self.info.name, NON_ALPHANUMERIC)
        );
        for t in self.trackers() {
            m.push_str("&tr=");
            m.push_str(&utf8_percent_encode(&t, NON_ALPHANUMERIC).to_string());
        }
        for u in &self.web_seeds {
            m.push_str("&ws=");
            m.push_str(&utf8_percent_encode(u, NON_ALPHANUMERIC).to_string());
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::Writer;

    fn single(name: &[u8], len: i64, plen: i64, npieces: usize) -> Vec<u8> {
        single_raw(name, len, plen, npieces * 20)
    }

    fn single_raw(name: &[u8], len: i64, plen: i64, pieces_bytes: usize) -> Vec<u8> {
        let mut w = Writer::default();
        w.begin_dict()
            .bytes(b"announce")
            .bytes(b"http://t/announce");
        w.bytes(b"info").begin_dict();
        w.bytes(b"length").int(len).bytes(b"name").bytes(name);
        w.bytes(b"piece length").int(plen);
        w.bytes(b"pieces").bytes(&vec![7u8; pieces_bytes]);
        w.bytes(b"private").int(1).bytes(b"source").bytes(b"SRC");
        w.end().end();
        w.buf
    }

    #[test]
    fn parses_single_file_and_hashes_raw_info() {
        let bytes = single(b"a.bin", 40000, 16384, 3);
        let m = Metainfo::from_bytes(&bytes).unwrap();
        assert_eq!(m.info.name, "a.bin");
        assert_eq!(m.info.total_length, 40000);
        assert_eq!(m.info.piece_len(2), 40000 - 2 * 16384);
        assert!(m.info.private);
        assert_eq!(m.info.source.as_deref(), Some("SRC"));
        let expected: [u8; 20] = Sha1::digest(m.info_bytes()).into();
        assert_eq!(m.info_hash.0, expected);
        assert_eq!(m.trackers(), vec!["http://t/announce".to_string()]);
        assert!(m.magnet().starts_with("magnet:?xt=urn:btih:"));
    }

    #[test]
    fn reads_web_seeds_as_one_url_or_a_list() {
        let with_url_list = |value: &[u8]| {
            let single = single(b"a", 10, 16384, 1);
            // `url-list` sorts after `info`: insert it before the final `e`.
            let mut out = single[..single.len() - 1].to_vec();
            out.extend_from_slice(b"8:url-list");
            out.extend_from_slice(value);
            out.push(b'e');
            Metainfo::from_bytes(&out).unwrap().web_seeds
        };
        assert_eq!(with_url_list(b"9:http://w/"), vec!["http://w/"]);
        assert_eq!(
            with_url_list(b"l9:http://a/0:9:http://b/e"),
            vec!["http://a/", "http://b/"]
        );
        assert!(with_url_list(b"i3e").is_empty());
    }

    #[test]
    fn rejects_hostile_info() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (single(b"a", 40000, 16384, 2), "expected 3"),
            (single(b"a", -5, 16384, 0), "out of range"),
            (single(b"a", 40000, 0, 3), "piece length"),
            (single(b"..", 10, 16384, 1), "unsafe name"),
            (single(b"", 10, 16384, 1), "unsafe name"),
            (single(b"a", i64::MAX, 16384, 1), "out of range"),
        ];
        for (bytes, want) in cases {
            let err = Metainfo::from_bytes(&bytes).unwrap_err().to_string();
            assert!(err.contains(want), "{err} should mention {want}");
        }
        let err = Metainfo::from_bytes(&single_raw(b"a", 10, 16384, 19)).unwrap_err();
        assert!(err.to_string().contains("not a multiple of 20"), "{err}");
        assert!(Metainfo::from_bytes(b"d4:infoi3ee").is_err());
        assert!(Metainfo::from_bytes(b"not bencode").is_err());
        assert!(Metainfo::from_bytes(&single(b"a", 10, 16384, 1)[..30]).is_err());
    }

    #[test]
    fn top_level_quirks_of_real_files() {
        let good = single(b"a", 10, 16384, 1);
        let m = Metainfo::from_bytes(&good).unwrap();
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"\n\0\0<html>");
        let t = Metainfo::from_bytes(&trailing).unwrap();
        assert_eq!(t.info_hash, m.info_hash);
        assert_eq!(t.as_bytes(), &good[..], "trailing bytes are dropped");

        let mut twice = good[..good.len() - 1].to_vec();
        twice.extend_from_slice(b"4:infod6:lengthi1e4:name1:b12:piece lengthi1e6:pieces20:");
        twice.extend_from_slice(&[0; 20]);
        twice.extend_from_slice(b"ee");
        let err = Metainfo::from_bytes(&twice).unwrap_err().to_string();
        assert!(err.contains("appears twice"), "{err}");
    }

    #[test]
    fn errors_say_what_is_wrong_in_one_line() {
        let msg = |b: &[u8]| Metainfo::from_bytes(b).unwrap_err().to_string();
        assert_eq!(msg(b""), "not a valid .torrent: the file is empty");
        assert!(msg(b"<html>").contains("starts with `d`"));
        assert!(msg(b"d4:infoi3ee").contains("`info` is not a dictionary"));
        assert!(msg(b"d3:foo3:bare").contains("no `info` dictionary"));
        assert!(msg(b"d3:foo9999:bare").contains("runs past the end"));
        assert_eq!(one_line("a\nb\r\tc"), "a b  c");
        assert_eq!(one_line(&"x".repeat(1000)).len(), MAX_ERROR_CHARS + 3);
    }
}
