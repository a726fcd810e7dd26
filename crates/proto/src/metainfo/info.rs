//! The `info` dictionary: what a torrent's content is (name, files, piece geometry, piece hashes), decoded
//! from untrusted bytes and validated so the layers above can trust it.
//!
//! What `parse_info` guarantees for an [`Info`] it returns:
//! - `piece_length` is in `1..=MAX_PIECE_LENGTH`, `total_length` in `1..=MAX_TOTAL_LENGTH`, and
//!   there is one hash per piece, `ceil(total_length / piece_length)` of them: SHA-1 in `pieces` (v1
//!   and hybrid torrents) or, for a v2-only torrent (BEP 52), a merkle root in `v2` checked against
//!   the files' roots ([`super::v2`]) with `pieces` empty;
//! - files are in torrent order, each `offset` is the sum of the lengths before it;
//! - every path is `name` followed by plain components (no `..`, `.`, empty component, separator or control character;
//!   on Windows no reserved device name), at most [`MAX_PATH_BYTES`] long, so it cannot escape the
//!   download folder;
//! - no two real files share a path and no file is also a folder of another one (padding files, never
//!   written to disk, are exempt: libtorrent's hybrids repeat `.pad/<size>`).
//!
//! Names in another encoding than UTF-8 (old torrents, without `name.utf-8`/`path.utf-8`) are kept with
//! each invalid sequence replaced by `_`, so such torrents load instead of being refused.

use std::path::{Path, PathBuf};

use super::v2::{self, Hash256, V2};
use super::{invalid, MetainfoError, MAX_FILES, MAX_PIECE_LENGTH, MAX_TOTAL_LENGTH};
use crate::bencode;
use crate::fs::is_safe_component;

/// Longest file path accepted (name and components with separators), the Linux `PATH_MAX`: longer
/// paths cannot be opened on any common system anyway.
pub const MAX_PATH_BYTES: usize = 4096;

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
    /// BEP 47's `x` attribute: the file is made executable when it is created.
    pub executable: bool,
    /// BEP 47's `l` attribute: a symbolic link to this path (relative to the download folder, like
    /// `path`, and inside the torrent's folder), made instead of a file. Only for an entry of a
    /// folder's torrent of length 0 whose `symlink path` is a list of plain components; any other
    /// link entry is an ordinary (empty) file.
    pub symlink: Option<PathBuf>,
    /// Its modification time, seconds since 1970 (`mtime`, which libtorrent's creator records when
    /// asked and `b-create --mtime` does): given to the file where it is downloaded once the file is
    /// complete. Not part of BEP 47; other clients ignore it.
    pub mtime: Option<u64>,
}

/// The latest modification time a torrent may record: the last second of the year 9999 (UTC), as
/// far as RFC 3339 dates go. Later ones are read as none, so no time taken from a torrent
/// overflows the system's clock type or its formatting.
pub const MAX_MTIME: u64 = 253_402_300_799;

/// The `mtime` of a file entry (raw, if present): an integer from 1 to [`MAX_MTIME`], else nothing
/// (read leniently, as the fields that do not shape the content are).
pub(super) fn mtime(raw: Option<&[u8]>) -> Option<u64> {
    raw.and_then(bencode::as_int)
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| (1..=MAX_MTIME).contains(&t))
}

/// The `info` dictionary, validated.
#[derive(Debug, Clone)]
pub struct Info {
    pub name: String,
    pub piece_length: u64,
    /// SHA-1 of each piece; empty for a v2-only torrent.
    pub pieces: Vec<[u8; 20]>,
    /// A v2-only torrent's piece hashes and file trees (BEP 52); `None` for v1 and hybrid torrents,
    /// which are checked with `pieces`.
    pub v2: Option<V2>,
    /// A hybrid torrent's v2 side (v1 and v2 in one `info`); `None` for the others.
    pub hybrid: Option<v2::Hybrid>,
    pub files: Vec<FileEntry>,
    /// True for a torrent with a `files` list (its content is a folder named `name`).
    pub multi_file: bool,
    pub private: bool,
    pub source: Option<String>,
    pub total_length: u64,
}

/// What kind of torrent an `info` makes (and what kind to make: [`CreateOptions::with_format`],
/// named in lowercase in settings).
///
/// [`CreateOptions::with_format`]: super::CreateOptions::with_format
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    V1,
    /// v2 only (BEP 52).
    V2,
    /// v1 and v2 in one `info`: laid out and checked as v1 (and against its v2 roots when its
    /// layers came with it), in both swarms.
    Hybrid,
}

impl Format {
    /// Every kind, v1 first.
    pub const ALL: [Format; 3] = [Format::V1, Format::V2, Format::Hybrid];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::V1 => "v1",
            Format::V2 => "v2",
            Format::Hybrid => "hybrid",
        }
    }
}

impl Info {
    pub fn format(&self) -> Format {
        match (&self.v2, &self.hybrid) {
            (Some(_), _) => Format::V2,
            (None, Some(_)) => Format::Hybrid,
            (None, None) => Format::V1,
        }
    }

    /// The SHA-256 trees a peer's hash requests are answered from: a v2 torrent's, or a hybrid's
    /// that came with its piece layers.
    pub fn merkle(&self) -> Option<&V2> {
        self.v2
            .as_ref()
            .or_else(|| self.hybrid.as_ref()?.layers.as_ref())
    }

    /// An `info` of the files `(path, length, padding)` laid end to end in that order (paths as
    /// [`FileEntry::path`] gives them, inside the folder `name`), in pieces of `piece_length`
    /// whose hashes are zeros: a layout without data, for code that needs the geometry alone
    /// (tests of storage, selection and picking).
    pub fn laid_out(
        name: &str,
        piece_length: u64,
        files: impl IntoIterator<Item = (PathBuf, u64, bool)>,
    ) -> Info {
        let mut offset = 0;
        let files: Vec<FileEntry> = files
            .into_iter()
            .map(|(path, length, padding)| {
                let f = FileEntry {
                    path,
                    length,
                    offset,
                    padding,
                    executable: false,
                    symlink: None,
                    mtime: None,
                };
                offset += length;
                f
            })
            .collect();
        Info {
            name: name.to_string(),
            piece_length,
            pieces: vec![[0; 20]; offset.div_ceil(piece_length) as usize],
            v2: None,
            hybrid: None,
            files,
            multi_file: true,
            private: false,
            source: None,
            total_length: offset,
        }
    }

    /// Each file's `pieces root` (BEP 52: the SHA-256 merkle root of its content, whatever the
    /// piece length), in torrent order: `None` for a v1 torrent's files, padding and empty files.
    /// Two files with one root hold the same bytes.
    pub fn file_roots(&self) -> Vec<Option<Hash256>> {
        let roots: Vec<Hash256> = match (&self.v2, &self.hybrid) {
            (Some(v2), _) => v2.files.iter().map(|f| f.root).collect(),
            (None, Some(h)) => h.roots.clone(),
            (None, None) => Vec::new(),
        };
        let mut next = roots.iter();
        self.files
            .iter()
            .map(|f| {
                (!roots.is_empty() && !f.padding && f.length > 0)
                    .then(|| next.next().copied())
                    .flatten()
            })
            .collect()
    }

    pub fn piece_count(&self) -> usize {
        self.total_length.div_ceil(self.piece_length) as usize
    }

    /// Whether `data`, the whole of piece `index` (padding included), has the piece's hash; false for
    /// an index past the end.
    pub fn piece_matches(&self, index: usize, data: &[u8]) -> bool {
        use sha1::{Digest, Sha1};
        match &self.v2 {
            Some(v2) => v2.pieces.get(index).is_some_and(|p| p.matches(data)),
            None => self
                .pieces
                .get(index)
                .is_some_and(|h| Sha1::digest(data).as_slice() == h),
        }
    }

    /// For a hybrid torrent whose piece layers came with it: whether `data`, the whole of piece
    /// `index`, has the piece's v2 hash (its merkle root) as well. `None` when there is no v2 side
    /// to ask; a hybrid whose two sides disagree on a piece is broken (or made to split its
    /// swarms).
    pub fn v2_side_matches(&self, index: usize, data: &[u8]) -> Option<bool> {
        let layers = self.hybrid.as_ref()?.layers.as_ref()?;
        Some(layers.pieces.get(index).is_some_and(|p| p.matches(data)))
    }

    /// Length of piece `index` (the last one may be short); 0 for an index past the end, so a bad index
    /// from a peer cannot make this panic.
    pub fn piece_len(&self, index: usize) -> u64 {
        let start = (index as u64).saturating_mul(self.piece_length);
        self.total_length
            .saturating_sub(start)
            .min(self.piece_length)
    }

    /// The pieces file `f` overlaps; a zero-length file overlaps none (an empty range where it
    /// would start).
    pub fn file_pieces(&self, f: usize) -> std::ops::Range<usize> {
        let e = &self.files[f];
        let plen = self.piece_length.max(1);
        let first = (e.offset / plen) as usize;
        if e.length == 0 {
            return first..first;
        }
        first..((e.offset + e.length).div_ceil(plen)) as usize
    }
}

/// Decodes and validates the raw `info` dictionary, found at byte `at` of a file that has already been
/// checked to be well-formed bencode. Reads the values in place: nothing is copied but what [`Info`] keeps.
/// `piece_layers` is the file's top-level `piece layers` value, which a v2-only torrent needs.
pub(super) fn parse_info(
    info_raw: &[u8],
    at: usize,
    piece_layers: Option<&[u8]>,
) -> Result<Info, MetainfoError> {
    parse_info_lacking(info_raw, at, piece_layers, None)
}

/// What a v2 or hybrid `info` fetched alone lacks: the layers of its files larger than a piece
/// (see [`v2::LayersNeeded`]); `None` for a v1 one, or when no file needs a layer.
pub fn layers_needed(info_raw: &[u8]) -> Result<Option<v2::LayersNeeded>, MetainfoError> {
    let mut files = Vec::new();
    let info = parse_info_lacking(info_raw, 0, None, Some(&mut files))?;
    Ok((!files.is_empty()).then(|| v2::LayersNeeded {
        piece_length: info.piece_length,
        piece_count: info.piece_count(),
        total_length: info.total_length,
        files,
        hybrid: info.hybrid.is_some(),
    }))
}

/// [`parse_info`], a v2 file's absent layer collected in `missing` instead of refused when given.
fn parse_info_lacking(
    info_raw: &[u8],
    at: usize,
    piece_layers: Option<&[u8]>,
    missing: Option<&mut Vec<v2::FileTree>>,
) -> Result<Info, MetainfoError> {
    if info_raw.first() != Some(&b'd') {
        return Err(invalid("`info` is not a dictionary"));
    }
    let info = Fields::new(info_raw, info_raw, at, None)?;
    let name_raw = info.required_bytes("name")?;
    let name_raw = info
        .get("name.utf-8")
        .and_then(bencode::as_bytes)
        .unwrap_or(name_raw);
    let name = component(name_raw, "name")?;
    let raw_piece_length = info.required_int("piece length")?;
    let piece_length = u64::try_from(raw_piece_length)
        .ok()
        .filter(|&n| n > 0 && n <= MAX_PIECE_LENGTH)
        .ok_or_else(|| {
            invalid(format!(
                "piece length {raw_piece_length} is out of range (1 byte to 256 MiB)"
            ))
        })?;
    // Fields that do not shape the content are read leniently: a wrong type means absent.
    let private = info.get("private").and_then(bencode::as_int) == Some(1);
    let source = info
        .get("source")
        .and_then(bencode::as_bytes)
        .map(|s| String::from_utf8_lossy(s).into_owned());
    if info.get("pieces").is_none() && info.get("meta version").and_then(bencode::as_int) == Some(2)
    {
        // BEP 52 without the v1 fields a hybrid torrent carries: SHA-256 merkle trees only.
        let tree = info.required("file tree")?;
        let content = v2::parse(tree, &name, piece_length, piece_layers, missing)?;
        return Ok(Info {
            total_length: content.files.last().map_or(0, |f| f.offset + f.length),
            name,
            piece_length,
            pieces: Vec::new(),
            v2: Some(content.hashes),
            hybrid: None,
            files: content.files,
            multi_file: content.multi_file,
            private,
            source,
        });
    }
    let pieces_raw = info.required_bytes("pieces")?;
    if pieces_raw.len() % 20 != 0 {
        return Err(invalid(format!(
            "`pieces` is {} bytes, not a multiple of 20",
            pieces_raw.len()
        )));
    }

    let (files, multi_file) = match (info.get("length"), info.get("files")) {
        (Some(_), Some(_)) => return Err(invalid("both `length` and `files` are present")),
        (None, None) => return Err(invalid("neither `length` nor `files` is present")),
        (Some(_), None) => {
            let length = checked_len(info.required_int("length")?, "length")?;
            let file = FileEntry {
                path: PathBuf::from(&name),
                length,
                offset: 0,
                padding: false,
                executable: attrs(info.get("attr")).1,
                symlink: None,
                mtime: mtime(info.get("mtime")),
            };
            (vec![file], false)
        }
        (None, Some(list)) => (file_list(&name, list, info_raw, at)?, true),
    };
    let total_length = files.last().map_or(0, |f| f.offset + f.length);
    if total_length == 0 {
        return Err(invalid("the torrent holds no data (total length 0)"));
    }
    let expected = total_length.div_ceil(piece_length);
    let count = pieces_raw.len() as u64 / 20;
    if count != expected {
        return Err(invalid(format!(
            "{count} piece hashes for {total_length} bytes in pieces of {piece_length} (expected {expected})"
        )));
    }
    let pieces = pieces_raw
        .chunks_exact(20)
        .map(|c| c.try_into().expect("chunks of 20"))
        .collect();
    let hybrid = match (
        info.get("meta version").and_then(bencode::as_int),
        info.get("file tree"),
    ) {
        (Some(2), Some(tree)) => Some(v2::parse_hybrid(
            tree,
            &name,
            piece_length,
            piece_layers,
            &files,
            missing,
        )?),
        _ => None,
    };
    Ok(Info {
        name,
        piece_length,
        pieces,
        v2: None,
        hybrid,
        files,
        multi_file,
        private,
        source,
        total_length,
    })
}

/// What a BEP 47 `attr` value (raw, if present) says: (a padding file, an executable one, a
/// symbolic link). A value of another type says nothing, as an unknown letter does.
pub(super) fn attrs(raw: Option<&[u8]>) -> (bool, bool, bool) {
    let a = raw.and_then(bencode::as_bytes).unwrap_or_default();
    (a.contains(&b'p'), a.contains(&b'x'), a.contains(&b'l'))
}

/// The target of a link entry of the torrent `name`, from its `symlink path` (`raw`, in a `files`
/// entry or a `file tree` file): that path under the torrent's folder. BEP 47 forbids `.` and `..` there; they are dropped, as libtorrent drops them (its
/// creator up to 2.0.8 wrote a link's target relative to the link's own folder, `../docs/a`,
/// which libtorrent then reads as `docs/a`), so no link leads out of the torrent's folder. `None`
/// when absent, empty, or holding a component no path may hold (a separator, a control
/// character).
pub(super) fn symlink_target(name: &str, raw: Option<&[u8]>) -> Option<PathBuf> {
    let comps = raw.and_then(path_components)?;
    let kept: Vec<&[u8]> = comps
        .into_iter()
        .filter(|c| *c != b"." && *c != b"..")
        .collect();
    if kept.is_empty() {
        return None;
    }
    let mut target = PathBuf::from(name);
    for c in kept {
        target.push(component(c, "symlink path component").ok()?);
    }
    Some(target)
}

/// The entries of one dictionary inside the `info` value: `info` itself or the entry of file `file`, with
/// typed getters whose errors name the key and the dictionary.
struct Fields<'a> {
    raw: &'a [u8],
    entries: Vec<bencode::DictEntry<'a>>,
    file: Option<usize>,
}

impl<'a> Fields<'a> {
    /// `dict` lies inside `info_raw`, which starts at byte `at` of the file.
    fn new(
        dict: &'a [u8],
        info_raw: &[u8],
        at: usize,
        file: Option<usize>,
    ) -> Result<Self, MetainfoError> {
        let offset = at + (dict.as_ptr() as usize - info_raw.as_ptr() as usize);
        let entries = bencode::dict_entries(dict).map_err(|e| e.shifted(offset))?;
        Ok(Fields {
            raw: dict,
            entries,
            file,
        })
    }

    fn what(&self) -> String {
        match self.file {
            None => "`info`".to_string(),
            Some(i) => format!("file {i}"),
        }
    }

    fn get(&self, key: &str) -> Option<&'a [u8]> {
        let raw = self.raw;
        self.entries
            .iter()
            .find(|e| e.key == key.as_bytes())
            .map(|e| &raw[e.value.clone()])
    }

    fn required(&self, key: &str) -> Result<&'a [u8], MetainfoError> {
        self.get(key)
            .ok_or_else(|| invalid(format!("{} has no `{key}`", self.what())))
    }

    fn required_int(&self, key: &str) -> Result<i64, MetainfoError> {
        bencode::as_int(self.required(key)?)
            .ok_or_else(|| invalid(format!("`{key}` in {} is not an integer", self.what())))
    }

    fn required_bytes(&self, key: &str) -> Result<&'a [u8], MetainfoError> {
        bencode::as_bytes(self.required(key)?)
            .ok_or_else(|| invalid(format!("`{key}` in {} is not a byte string", self.what())))
    }
}

fn checked_len(v: i64, what: &str) -> Result<u64, MetainfoError> {
    u64::try_from(v)
        .ok()
        .filter(|&n| n <= MAX_TOTAL_LENGTH)
        .ok_or_else(|| invalid(format!("{what} {v} is out of range (0 to 2^50)")))
}

/// A name or path component as text: UTF-8, or with each invalid sequence replaced by `_`.
fn component_text(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_string(),
        Err(_) => String::from_utf8_lossy(raw).replace('\u{FFFD}', "_"),
    }
}

pub(super) fn component(raw: &[u8], what: &str) -> Result<String, MetainfoError> {
    let s = component_text(raw);
    if !is_safe_component(&s) {
        let shown: String = s.chars().take(64).collect();
        let more = if shown.len() < s.len() { "..." } else { "" };
        return Err(invalid(format!(
            "unsafe {what} {shown:?}{more} (empty, `.`, `..`, or holds a separator or a control character)"
        )));
    }
    Ok(s)
}

/// The components of a `path` list, if it is a non-empty list of byte strings.
fn path_components(raw: &[u8]) -> Option<Vec<&[u8]>> {
    bencode::list_items(raw)?
        .map(|item| item.ok().and_then(bencode::as_bytes))
        .collect()
}

fn file_list(
    name: &str,
    raw: &[u8],
    info_raw: &[u8],
    at: usize,
) -> Result<Vec<FileEntry>, MetainfoError> {
    let items = bencode::list_items(raw).ok_or_else(|| invalid("`files` is not a list"))?;
    // Counted first (a cheap skim), so an oversized list is refused before any work on it.
    let count = items.clone().take(MAX_FILES + 1).count();
    if count > MAX_FILES {
        return Err(invalid(format!("more than {MAX_FILES} files")));
    }
    let mut files = Vec::with_capacity(count);
    let mut offset = 0u64;
    for (i, item) in items.enumerate() {
        let item = item?;
        if item.first() != Some(&b'd') {
            return Err(invalid(format!("file {i} in `files` is not a dictionary")));
        }
        let f = Fields::new(item, info_raw, at, Some(i))?;
        let length = checked_len(f.required_int("length")?, "file length")?;
        let comps = f
            .get("path.utf-8")
            .and_then(path_components)
            .or_else(|| f.get("path").and_then(path_components))
            .ok_or_else(|| {
                invalid(format!(
                    "file {i} has no `path` list of byte strings (or it is malformed)"
                ))
            })?;
        if comps.is_empty() {
            return Err(invalid(format!("file {i} has an empty path")));
        }
        let mut path = PathBuf::from(name);
        for c in comps {
            path.push(component(c, "file path component")?);
            if path.as_os_str().len() > MAX_PATH_BYTES {
                return Err(invalid(format!(
                    "file {i} has a path longer than {MAX_PATH_BYTES} bytes"
                )));
            }
        }
        let (padding, executable, link) = attrs(f.get("attr"));
        let symlink = (link && length == 0 && !padding)
            .then(|| symlink_target(name, f.get("symlink path")))
            .flatten();
        files.push(FileEntry {
            path,
            length,
            offset,
            padding,
            executable,
            symlink,
            mtime: mtime(f.get("mtime")),
        });
        offset = offset
            .checked_add(length)
            .filter(|&t| t <= MAX_TOTAL_LENGTH)
            .ok_or_else(|| invalid("total length is out of range (more than 2^50 bytes)"))?;
    }
    if files.is_empty() {
        return Err(invalid("`files` is empty"));
    }
    check_paths_distinct(&files)?;
    Ok(files)
}

/// No two real files share a path, and no file is a folder on the path of another. Paths are compared as
/// bytes with the separator ranked below every other byte (components hold no separator or NUL), which
/// orders them component by component: every path that extends `p` then comes right after `p`, so
/// comparing neighbours finds every clash.
pub(super) fn check_paths_distinct(files: &[FileEntry]) -> Result<(), MetainfoError> {
    let mut keys: Vec<(Vec<u8>, &Path)> = files
        .iter()
        .filter(|f| !f.padding)
        .map(|f| {
            // Built from `String` components, so the lossy view is the exact text.
            let key = f
                .path
                .to_string_lossy()
                .bytes()
                .map(|b| {
                    if std::path::is_separator(b as char) {
                        0
                    } else {
                        b
                    }
                })
                .collect();
            (key, f.path.as_path())
        })
        .collect();
    keys.sort_unstable();
    let shown = |p: &Path| -> String { p.to_string_lossy().chars().take(200).collect() };
    for w in keys.windows(2) {
        let ((a, pa), (b, pb)) = (&w[0], &w[1]);
        if a == b {
            return Err(invalid(format!(
                "two files have the same path {:?}",
                shown(pa)
            )));
        }
        if b.starts_with(a) && b[a.len()] == 0 {
            return Err(invalid(format!(
                "{:?} is a file and also a folder of {:?}",
                shown(pa),
                shown(pb)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::Writer;

    /// A multi-file `info` dict; each file is (path components, length, padding).
    fn multi(files: &[(&[&[u8]], i64, bool)], plen: i64) -> Vec<u8> {
        let total: i64 = files.iter().map(|f| f.1).sum();
        let npieces = match total {
            t if t > 1 << 40 => 1,
            t => (t.max(0) as u64).div_ceil(plen.max(1) as u64) as usize,
        };
        let mut w = Writer::default();
        w.begin_dict().bytes(b"files").begin_list();
        for (path, len, pad) in files {
            w.begin_dict();
            if *pad {
                w.bytes(b"attr").bytes(b"p");
            }
            w.bytes(b"length").int(*len).bytes(b"path").begin_list();
            for c in *path {
                w.bytes(c);
            }
            w.end().end();
        }
        w.end().bytes(b"name").bytes(b"top");
        w.bytes(b"piece length").int(plen);
        w.bytes(b"pieces").bytes(&vec![0u8; npieces * 20]).end();
        w.buf
    }

    fn parse_info_at0(info: &[u8]) -> Result<Info, MetainfoError> {
        parse_info(info, 0, None)
    }

    /// BEP 47 links: a target below the torrent's folder is taken, its `..` dropped (so it cannot
    /// leave the folder); one that is missing, empty, with a component no path may hold, or of an
    /// entry with data, makes an ordinary file.
    #[test]
    fn link_entries_lead_only_inside_the_torrent() {
        /// A file's path, its length, and the target its entry names.
        type Entry<'a> = (&'a [u8], i64, Option<&'a [&'a [u8]]>);
        let entries: &[Entry] = &[
            (b"a", 5, None),
            (b"big", 3, Some(&[b"a"])),
            (b"dots", 0, Some(&[b"..", b"."])),
            (b"escape", 0, Some(&[b"..", b"..", b"etc"])),
            (b"missing", 0, None),
            (b"ok", 0, Some(&[b"sub", b"x"])),
            (b"rooted", 0, Some(&[b"/etc"])),
        ];
        let mut w = Writer::default();
        w.begin_dict().bytes(b"files").begin_list();
        for (path, len, target) in entries {
            w.begin_dict();
            if *path != b"a" {
                w.bytes(b"attr").bytes(b"l");
            }
            w.bytes(b"length").int(*len).bytes(b"path").begin_list();
            w.bytes(path).end();
            if let Some(t) = target {
                w.bytes(b"symlink path").begin_list();
                for c in *t {
                    w.bytes(c);
                }
                w.end();
            }
            w.end();
        }
        w.end().bytes(b"name").bytes(b"top");
        w.bytes(b"piece length").int(16384);
        w.bytes(b"pieces").bytes(&[0u8; 20]).end();
        let info = parse_info_at0(&w.buf).unwrap();
        let links: Vec<Option<PathBuf>> = info.files.iter().map(|f| f.symlink.clone()).collect();
        let at = |p: &str| Some(PathBuf::from(p));
        assert_eq!(
            links,
            [None, None, None, at("top/etc"), None, at("top/sub/x"), None]
        );
    }

    fn err(info: &[u8]) -> String {
        parse_info_at0(info).unwrap_err().to_string()
    }

    #[test]
    fn each_file_spans_the_pieces_it_overlaps() {
        // Pieces of 16: a fills 0 and 1, b starts in 2 and ends in 3, e is empty, c shares 3.
        let files: &[(&[&[u8]], i64, bool)] = &[
            (&[b"a"], 32, false),
            (&[b"b"], 20, false),
            (&[b"e"], 0, false),
            (&[b"c"], 5, false),
        ];
        let info = parse_info_at0(&multi(files, 16)).unwrap();
        let spans: Vec<_> = (0..4).map(|f| info.file_pieces(f)).collect();
        assert_eq!(spans, [0..2, 2..4, 3..3, 3..4]);
    }

    #[test]
    fn a_v2_only_torrent_needs_its_piece_layers() {
        // `file tree` and `meta version` 2, no `pieces` (what libtorrent makes with v2_only); a file
        // of several pieces whose layer (outside `info`) is not given.
        let v2 = b"d9:file treed5:f.bind0:d6:lengthi100000e11:pieces root32:\
            aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaeee12:meta versioni2e4:name5:f.bin\
            12:piece lengthi16384ee";
        assert!(
            err(v2).contains("no piece layer for \"f.bin\""),
            "{}",
            err(v2)
        );
        // Without `meta version` 2 it is only a dictionary that lacks `pieces`.
        let e = err(b"d4:name1:x12:piece lengthi16384ee");
        assert!(e.contains("has no `pieces`"), "{e}");
    }

    #[test]
    fn paths_are_confined_to_the_folder() {
        let ok = parse_info_at0(&multi(&[(&[b"sub", b"f.txt"], 5, false)], 16384)).unwrap();
        assert_eq!(ok.files[0].path, PathBuf::from("top/sub/f.txt"));
        assert!(ok.multi_file);
        for bad in [
            &[b"..".as_slice(), b"x"][..],
            &[b"/etc"],
            &[b"a", b""],
            &[b"."],
            &[b"a/b"],
            &[b"a\\b"],
            &[b"nul\0byte"],
        ] {
            let e = err(&multi(&[(bad, 5, false)], 16384));
            assert!(e.contains("unsafe file path component"), "{bad:?}: {e}");
        }
        let e = err(&multi(&[(&[], 5, false)], 16384));
        assert!(e.contains("file 0 has an empty path"), "{e}");
    }

    #[test]
    fn refuses_clashing_paths_but_not_repeated_padding() {
        let e = err(&multi(&[(&[b"a"], 5, false), (&[b"a"], 6, false)], 16384));
        assert!(e.contains("same path \"top/a\""), "{e}");
        let e = err(&multi(
            &[
                (&[b"a", b"b"], 5, false),
                (&[b"b"], 1, false),
                (&[b"a"], 6, false),
            ],
            16384,
        ));
        assert!(e.contains("\"top/a\" is a file and also a folder"), "{e}");
        let pads = multi(
            &[
                (&[b"x"], 5, false),
                (&[b".pad", b"16379"], 16379, true),
                (&[b"y"], 5, false),
                (&[b".pad", b"16379"], 16379, true),
                (&[b"ab"], 5, false),
                (&[b"a-b"], 5, false),
            ],
            16384,
        );
        let info = parse_info_at0(&pads).unwrap();
        assert_eq!(info.files.iter().filter(|f| f.padding).count(), 2);
        assert_eq!(info.files[2].offset, 16384);
    }

    #[test]
    fn legacy_encodings_load_with_invalid_bytes_replaced() {
        let info =
            parse_info_at0(&multi(&[(&[b"caf\xe9", b"x\xff\xfey"], 5, false)], 16384)).unwrap();
        assert_eq!(info.files[0].path, PathBuf::from("top/caf_/x__y"));
    }

    #[test]
    fn windows_device_names_are_plain_names_elsewhere() {
        let info = parse_info_at0(&multi(
            &[(&[b"aux.c"], 5, false), (&[b"CON"], 1, false)],
            16384,
        ));
        assert_eq!(info.is_ok(), !cfg!(windows));
    }

    #[test]
    fn bounds_path_length_and_error_text() {
        let long = vec![b'a'; 200];
        let comps: Vec<&[u8]> = vec![&long; 30];
        let e = err(&multi(&[(&comps, 5, false)], 16384));
        assert!(
            e.contains("file 0 has a path longer than 4096 bytes"),
            "{e}"
        );
        let huge = [vec![b'.'; 2], vec![b'/'; 100_000]].concat();
        let e = err(&multi(&[(&[&huge], 5, false)], 16384));
        assert!(e.len() < 300 && !e.contains('\n'), "{e}");
    }

    #[test]
    fn piece_len_never_panics() {
        let info = parse_info_at0(&multi(&[(&[b"a"], 40_000, false)], 16384)).unwrap();
        assert_eq!(info.piece_count(), 3);
        assert_eq!(info.piece_len(0), 16384);
        assert_eq!(info.piece_len(2), 40_000 - 2 * 16384);
        assert_eq!(info.piece_len(3), 0);
        assert_eq!(info.piece_len(usize::MAX), 0);
    }

    #[test]
    fn checks_geometry() {
        let e = err(&multi(&[(&[b"a"], 0, false)], 16384));
        assert!(e.contains("total length 0"), "{e}");
        let e = err(&multi(&[(&[b"a"], -1, false)], 16384));
        assert!(e.contains("file length -1 is out of range"), "{e}");
        let e = err(&multi(
            &[
                (&[b"a"], 1 << 49, false),
                (&[b"b"], 1 << 49, false),
                (&[b"c"], 1, false),
            ],
            1 << 28,
        ));
        assert!(e.contains("total length is out of range"), "{e}");
        let e = err(&multi(&[(&[b"a"], 5, false)], 0));
        assert!(e.contains("piece length 0 is out of range"), "{e}");
        let e = err(&multi(&[(&[b"a"], 5, false)], (1 << 28) + 1));
        assert!(e.contains("piece length 268435457 is out of range"), "{e}");
    }
}
