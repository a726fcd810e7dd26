//! The .torrent file (BEP 3 metainfo): a validated model of it, parsing from untrusted bytes, creation
//! from a file or folder ([`create`]), tracker editing that leaves the info-hash alone ([`edit`]), and
//! magnet links.
//!
//! Invariants a [`Metainfo`] guarantees once built:
//! - `info_hash` is the SHA-1 of `info_bytes()`, the `info` dictionary exactly as it is in the file;
//! - `pieces.len() == ceil(total_length / piece_length)`, every length is in range;
//! - every file path is a list of plain names (no `..`, no absolute path, no empty component), so
//!   joining it under a download folder cannot escape that folder.

pub mod create;
pub mod edit;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_bytes::ByteBuf;
use sha1::{Digest, Sha1};

use crate::bencode::{self, BencodeError};
use crate::fsutil::is_safe_component;
use crate::types::InfoHash;

pub use create::{create_torrent, CreateOptions};
pub use edit::edit_trackers;

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
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Creation was stopped through [`CreateOptions::cancel`].
    #[error("cancelled")]
    Cancelled,
}

fn invalid(msg: impl Into<String>) -> MetainfoError {
    MetainfoError::Invalid(msg.into())
}

/// One file of a torrent, in torrent order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the download folder: `name` for a single-file torrent, `name/a/b` otherwise.
    pub path: PathBuf,
    pub length: u64,
    /// Offset of the file's first byte in the torrent's byte stream.
    pub offset: u64,
    /// A BEP 47 padding file: part of the piece space, all zeros, never written to disk.
    pub padding: bool,
}

/// The `info` dictionary, validated.
#[derive(Debug, Clone)]
pub struct Info {
    pub name: String,
    pub piece_length: u64,
    pub pieces: Vec<[u8; 20]>,
    pub files: Vec<FileEntry>,
    /// True for a torrent with a `files` list (its content is a folder named `name`).
    pub multi_file: bool,
    pub private: bool,
    pub source: Option<String>,
    pub total_length: u64,
}

impl Info {
    pub fn piece_count(&self) -> usize {
        self.pieces.len()
    }

    /// Length of piece `index` (the last one may be short).
    pub fn piece_len(&self, index: usize) -> u64 {
        let start = index as u64 * self.piece_length;
        (self.total_length - start).min(self.piece_length)
    }
}

/// A parsed .torrent. Cheap to clone: the file's bytes are shared.
#[derive(Debug, Clone)]
pub struct Metainfo {
    pub info_hash: InfoHash,
    pub info: Arc<Info>,
    pub announce: Option<String>,
    pub announce_list: Vec<Vec<String>>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
    pub creation_date: Option<i64>,
    bytes: Arc<[u8]>,
    info_span: Range<usize>,
}

#[derive(Deserialize)]
struct RawInfo {
    name: ByteBuf,
    #[serde(rename = "name.utf-8", default)]
    name_utf8: Option<ByteBuf>,
    #[serde(rename = "piece length")]
    piece_length: i64,
    pieces: ByteBuf,
    #[serde(default)]
    length: Option<i64>,
    #[serde(default)]
    files: Option<Vec<RawFile>>,
    #[serde(default)]
    private: Option<i64>,
    #[serde(default)]
    source: Option<ByteBuf>,
}

#[derive(Deserialize)]
struct RawFile {
    length: i64,
    path: Vec<ByteBuf>,
    #[serde(rename = "path.utf-8", default)]
    path_utf8: Option<Vec<ByteBuf>>,
    #[serde(default)]
    attr: Option<ByteBuf>,
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
    /// Reads and parses a .torrent file.
    pub fn load(path: &Path) -> Result<Self, MetainfoError> {
        let io = |source| MetainfoError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_dir() {
            return Err(invalid(format!("{} is a folder", path.display())));
        }
        if meta.len() > MAX_TORRENT_FILE {
            return Err(invalid(format!(
                "{} is {} bytes, more than any real .torrent",
                path.display(),
                meta.len()
            )));
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::from_bytes(&bytes)
    }

    /// Parses a .torrent from untrusted bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MetainfoError> {
        let entries = bencode::dict_entries(bytes).map_err(|e| match e {
            BencodeError::NotADict => invalid("the file is not a bencoded dictionary"),
            other => other.into(),
        })?;
        let get = |key: &[u8]| {
            entries
                .iter()
                .find(|e| e.key == key)
                .map(|e| (&bytes[e.value.clone()], e.value.clone()))
        };
        let (info_raw, info_span) = get(b"info").ok_or_else(|| invalid("no `info` dictionary"))?;
        if info_raw.first() != Some(&b'd') {
            return Err(invalid("`info` is not a dictionary"));
        }
        let raw: RawInfo = serde_bencode::from_bytes(info_raw)
            .map_err(|e| invalid(format!("bad `info` dictionary: {e}")))?;
        let info = validate_info(raw)?;
        let info_hash = InfoHash(Sha1::digest(info_raw).into());

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
        Ok(Metainfo {
            info_hash,
            info: Arc::new(info),
            announce,
            announce_list,
            comment: str_field(b"comment"),
            created_by: str_field(b"created by"),
            creation_date: get(b"creation date").and_then(|(r, _)| lenient::<i64>(r)),
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

    /// `magnet:?xt=urn:btih:<hex>&dn=<name>&tr=<tracker>...` (BEP 9).
    pub fn magnet(&self) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        let mut m = format!(
            "magnet:?xt=urn:btih:{}&dn={}",
            self.info_hash.to_hex(),
            utf8_percent_encode(&self.info.name, NON_ALPHANUMERIC)
        );
        for t in self.trackers() {
            m.push_str("&tr=");
            m.push_str(&utf8_percent_encode(&t, NON_ALPHANUMERIC).to_string());
        }
        m
    }
}

fn checked_len(v: i64, what: &str) -> Result<u64, MetainfoError> {
    u64::try_from(v)
        .ok()
        .filter(|&n| n <= MAX_TOTAL_LENGTH)
        .ok_or_else(|| invalid(format!("{what} {v} is out of range")))
}

fn component(raw: &[u8], what: &str) -> Result<String, MetainfoError> {
    let s = std::str::from_utf8(raw)
        .map_err(|_| invalid(format!("{what} is not valid UTF-8")))?
        .to_string();
    if !is_safe_component(&s) {
        return Err(invalid(format!(
            "unsafe {what} {s:?} (empty, `.`, `..`, a separator or a reserved name)"
        )));
    }
    Ok(s)
}

fn validate_info(raw: RawInfo) -> Result<Info, MetainfoError> {
    let name = component(raw.name_utf8.as_ref().unwrap_or(&raw.name), "name")?;
    let piece_length = u64::try_from(raw.piece_length)
        .ok()
        .filter(|&n| n > 0 && n <= MAX_PIECE_LENGTH)
        .ok_or_else(|| invalid(format!("piece length {} is out of range", raw.piece_length)))?;
    if !raw.pieces.len().is_multiple_of(20) {
        return Err(invalid(format!(
            "`pieces` is {} bytes, not a multiple of 20",
            raw.pieces.len()
        )));
    }
    let pieces: Vec<[u8; 20]> = raw
        .pieces
        .chunks_exact(20)
        .map(|c| c.try_into().expect("chunks of 20"))
        .collect();

    let (files, multi_file) = match (raw.length, raw.files) {
        (Some(_), Some(_)) => return Err(invalid("both `length` and `files` are present")),
        (None, None) => return Err(invalid("neither `length` nor `files` is present")),
        (Some(len), None) => {
            let length = checked_len(len, "length")?;
            let file = FileEntry {
                path: PathBuf::from(&name),
                length,
                offset: 0,
                padding: false,
            };
            (vec![file], false)
        }
        (None, Some(list)) => {
            if list.is_empty() {
                return Err(invalid("`files` is empty"));
            }
            if list.len() > MAX_FILES {
                return Err(invalid(format!("{} files is too many", list.len())));
            }
            let mut files = Vec::with_capacity(list.len());
            let mut offset = 0u64;
            for f in list {
                let length = checked_len(f.length, "file length")?;
                let comps = f.path_utf8.as_ref().unwrap_or(&f.path);
                if comps.is_empty() {
                    return Err(invalid("a file has an empty path"));
                }
                let mut path = PathBuf::from(&name);
                for c in comps {
                    path.push(component(c, "file path component")?);
                }
                let padding = f.attr.as_ref().is_some_and(|a| a.contains(&b'p'));
                files.push(FileEntry {
                    path,
                    length,
                    offset,
                    padding,
                });
                offset = offset
                    .checked_add(length)
                    .filter(|&t| t <= MAX_TOTAL_LENGTH)
                    .ok_or_else(|| invalid("total length is out of range"))?;
            }
            (files, true)
        }
    };
    let total_length: u64 = files.iter().map(|f| f.length).sum();
    if total_length == 0 {
        return Err(invalid("the torrent holds no data (total length 0)"));
    }
    let expected = total_length.div_ceil(piece_length);
    if pieces.len() as u64 != expected {
        return Err(invalid(format!(
            "{} piece hashes for {} bytes in pieces of {} (expected {})",
            pieces.len(),
            total_length,
            piece_length,
            expected
        )));
    }
    Ok(Info {
        name,
        piece_length,
        pieces,
        files,
        multi_file,
        private: raw.private == Some(1),
        source: raw.source.map(|s| text(&s)),
        total_length,
    })
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
    fn multi_file_paths_are_confined() {
        let build = |path: &[&[u8]]| {
            let mut w = Writer::default();
            w.begin_dict()
                .bytes(b"info")
                .begin_dict()
                .bytes(b"files")
                .begin_list();
            w.begin_dict()
                .bytes(b"length")
                .int(5)
                .bytes(b"path")
                .begin_list();
            for c in path {
                w.bytes(c);
            }
            w.end().end().end();
            w.bytes(b"name")
                .bytes(b"top")
                .bytes(b"piece length")
                .int(16384);
            w.bytes(b"pieces").bytes(&[0u8; 20]).end().end();
            w.buf
        };
        let ok = Metainfo::from_bytes(&build(&[b"sub", b"f.txt"])).unwrap();
        assert_eq!(ok.info.files[0].path, PathBuf::from("top/sub/f.txt"));
        assert!(ok.info.multi_file);
        for bad in [
            &[b"..".as_slice(), b"x"][..],
            &[b"/etc"],
            &[b""],
            &[],
            &[b"a/b"],
        ] {
            assert!(Metainfo::from_bytes(&build(bad)).is_err(), "{bad:?}");
        }
    }
}
