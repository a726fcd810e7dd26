//! BitTorrent v2 content (BEP 52): a v2-only torrent's `file tree` laid out in the piece space, the
//! SHA-256 merkle trees over 16 KiB blocks, the `piece layers` checked against each file's root, what
//! each piece's data must hash to, and the hashing of files for creation.
//!
//! A file's tree: the leaves are the SHA-256 of each 16 KiB block of the file (the last one may be
//! short), the leaf layer is padded with zero hashes to a power of two, and each parent is the SHA-256
//! of its two children. A piece of `piece length` bytes covers `piece length / 16 KiB` leaves, so its
//! hash is the root of that subtree. A file larger than one piece lists those roots in the torrent's
//! `piece layers` (outside `info`), and its `pieces root` is the root over them, padded to a power of
//! two with the root of a piece of zero leaves. A file no larger than one piece has no layer: its one
//! piece's hash is the file's root itself, over its blocks padded to a power of two.
//!
//! Layout: every file starts on a piece boundary, so the engine sees a v2 torrent as a v1 one with
//! BEP 47 padding files. A padding entry follows every non-empty file that does not end on a boundary,
//! the last one too (as libtorrent lays them out: the same pieces, each of full length, so requests for
//! a last piece agree); empty files take no space. A piece's hash covers its file's data only, never the
//! padding after it ([`PieceHash::data_len`]).
//!
//! Hash requests (BEP 52's `hash request` / `hashes` / `hash reject`, [`HashRange`]): a peer that has
//! only the info dictionary (it came by a magnet link) asks for the piece layers. [`V2::hashes`]
//! answers from ours (each file's tree above its pieces built once); [`LayersNeeded`] says what a
//! bare dictionary lacks and which requests fetch it; [`check_hashes`] ties an answer to its file's
//! root before anything keeps it.
//!
//! Files: this one the layout and the piece hashes; [`merkle`] the trees; [`hash_request`] the hash
//! requests.

pub mod hash_request;
pub mod merkle;

use std::collections::HashMap;
use std::path::PathBuf;

use super::info::{check_paths_distinct, component, FileEntry, MAX_PATH_BYTES};
use super::{invalid, MetainfoError, MAX_FILES, MAX_TORRENT_FILE, MAX_TOTAL_LENGTH};
use crate::bencode;
use hash_request::Built;
pub use hash_request::{
    check_hashes, HashRange, LayersNeeded, MAX_HASHES_ASKED, MAX_HASHES_SERVED,
};
use merkle::empty_piece_root;
pub use merkle::{
    hash_file, merkle_root, sha256, truncated, BlockHasher, Hash256, HashedFile, BLOCK,
};

/// What one piece of a v2 torrent hashes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceHash {
    /// The root of the piece's subtree: from the file's piece layer, or the file's root when the file
    /// is no larger than one piece.
    pub root: Hash256,
    /// Bytes of file data at the start of the piece; the rest of the piece (if any) is padding.
    pub data_len: u32,
    /// Leaves of the piece's subtree (a power of two).
    pub width: u32,
}

impl PieceHash {
    /// Whether `piece` (the whole piece as the engine holds it, padding included) has this hash. The
    /// hash covers the data alone; the padding must be zeros, so that a piece that passes is exactly
    /// what the piece space holds (a peer's junk in it is never passed on from memory).
    pub fn matches(&self, piece: &[u8]) -> bool {
        let Some((data, padding)) = piece.split_at_checked(self.data_len as usize) else {
            return false;
        };
        if padding.iter().any(|&b| b != 0) {
            return false;
        }
        let mut h = BlockHasher::default();
        h.update(data);
        self.matches_leaves(&h.finish())
    }

    /// Whether the leaf hashes of the piece's data give this hash.
    pub fn matches_leaves(&self, leaves: &[Hash256]) -> bool {
        leaves.len() as u64 <= u64::from(self.width)
            && merkle_root(leaves, self.width.into(), [0; 32]) == self.root
    }
}

/// A v2-only torrent's content as [`super::Info`] holds it.
pub(super) struct Content {
    pub files: Vec<FileEntry>,
    pub multi_file: bool,
    pub hashes: V2,
}

/// A v2-only torrent's hashes: one per piece, and each non-empty file's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2 {
    /// What each piece hashes to, in piece order.
    pub pieces: Vec<PieceHash>,
    /// The non-empty files, in torrent order.
    pub files: Vec<FileTree>,
    /// Each file's tree above its pieces' layer, built the first time a peer asks for its hashes.
    built: Built,
}

/// A non-empty file of a v2 torrent, as far as its tree goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTree {
    /// Its `pieces root`.
    pub root: Hash256,
    /// Its first piece and how many it has.
    pub first_piece: u32,
    pub piece_count: u32,
    /// Its 16 KiB blocks (the last may be short).
    pub blocks: u64,
    /// Its length in bytes.
    pub length: u64,
}

impl FileTree {
    /// Layers of its tree above the blocks (the root's level).
    pub fn height(&self) -> u32 {
        self.blocks.next_power_of_two().trailing_zeros()
    }
}

/// Most pieces whose layers a dictionary may lack (fetched alone, or a hybrid's): as many hashes
/// as the largest .torrent loaded ([`MAX_TORRENT_FILE`]) can hold.
pub const MAX_UNLAYERED_PIECES: u64 = MAX_TORRENT_FILE / 32;

/// One file of the `file tree`.
struct TreeFile {
    comps: Vec<String>,
    length: u64,
    root: Option<Hash256>,
    /// BEP 47's `x` attribute.
    executable: bool,
    /// A BEP 47 link entry's `symlink path` (raw): an entry with the `l` attribute and no data.
    link: Option<Vec<u8>>,
    /// Its `mtime` ([`FileEntry::mtime`]).
    mtime: Option<u64>,
}

/// The v2 side of a hybrid torrent, checked to describe the very files its v1 side does (each on a
/// piece boundary, the same padding), so each piece is the same bytes in both swarms.
#[derive(Debug, Clone)]
pub struct Hybrid {
    /// Its piece hashes and file trees, when its `piece layers` came with it (the dictionary alone,
    /// from a `btih` link, has none): what peers' hash requests are answered from. Its pieces are
    /// checked with the v1 `pieces`.
    pub layers: Option<V2>,
    /// Each non-empty file's `pieces root`, in torrent order (the `file tree` holds them whether or
    /// not the layers came).
    pub roots: Vec<Hash256>,
}

/// Reads the `file tree` (raw, a dictionary) and lays it out with pieces of `piece_length` (a
/// power of two from 16 KiB, else refused), each piece's hash taken from `piece_layers` (the raw
/// top-level value, absent in bare metadata). A file whose layer is absent is an error, unless
/// `missing` collects such files (their pieces' hashes are then zeros, to be filled in).
pub(super) fn parse(
    tree: &[u8],
    name: &str,
    piece_length: u64,
    piece_layers: Option<&[u8]>,
    mut missing: Option<&mut Vec<FileTree>>,
) -> Result<Content, MetainfoError> {
    if !piece_length.is_power_of_two() || piece_length < BLOCK {
        return Err(invalid(format!(
            "piece length {piece_length} of a v2 torrent is not a power of two from 16 KiB"
        )));
    }
    let mut found = Vec::new();
    walk(tree, &mut Vec::new(), &mut found)?;
    if found.is_empty() {
        return Err(invalid("`file tree` is empty"));
    }
    // A lone file at the top named as the torrent is a single-file torrent. Any other tree is a
    // folder named `name` holding it: a folder of one file too (libtorrent reads that one as a
    // single file named by its key; the folder is what its maker had on disk, and what the v1
    // side of a hybrid says).
    let multi_file = !(found.len() == 1 && found[0].comps.len() == 1 && found[0].comps[0] == name);
    let layers = layers(piece_layers)?;
    let per_piece = piece_length / BLOCK;
    let mut files = Vec::with_capacity(found.len() * 2);
    let mut pieces = Vec::new();
    let mut trees = Vec::new();
    let mut offset = 0u64;
    let mut unlayered = 0u64;
    for TreeFile {
        comps,
        length,
        root,
        executable,
        link,
        mtime,
    } in found
    {
        let path = if multi_file {
            let mut p = PathBuf::from(name);
            p.extend(&comps);
            p
        } else {
            PathBuf::from(&comps[0])
        };
        if path.as_os_str().len() > MAX_PATH_BYTES {
            return Err(invalid(format!(
                "a file has a path longer than {MAX_PATH_BYTES} bytes"
            )));
        }
        let shown = || path.to_string_lossy().chars().take(200).collect::<String>();
        if length == 0 {
            // A link only inside a folder, as in a `files` list (a lone file has nothing to lead to).
            let symlink = link
                .filter(|_| multi_file)
                .and_then(|raw| super::info::symlink_target(name, Some(&raw)));
            files.push(FileEntry {
                path,
                length,
                offset,
                padding: false,
                executable,
                symlink,
                mtime,
            });
            continue;
        }
        let root = root.ok_or_else(|| invalid(format!("{:?} has no `pieces root`", shown())))?;
        let count = length.div_ceil(piece_length);
        let end = offset + count * piece_length;
        if end > MAX_TOTAL_LENGTH {
            return Err(invalid(
                "total length is out of range (more than 2^50 bytes)",
            ));
        }
        let tree = FileTree {
            root,
            first_piece: pieces.len() as u32,
            piece_count: count as u32,
            blocks: length.div_ceil(BLOCK),
            length,
        };
        trees.push(tree.clone());
        if count == 1 {
            pieces.push(PieceHash {
                root,
                data_len: length as u32,
                width: length.div_ceil(BLOCK).next_power_of_two() as u32,
            });
        } else if let (None, Some(missing)) = (layers.get(&root), missing.as_deref_mut()) {
            // Bounded as a layer given is by the file it is in: what is lacking must fit in a
            // .torrent once fetched.
            unlayered += count;
            if unlayered > MAX_UNLAYERED_PIECES {
                return Err(invalid(format!(
                    "the piece layers it lacks are for more than {MAX_UNLAYERED_PIECES} pieces"
                )));
            }
            missing.push(tree);
            for k in 0..count {
                pieces.push(PieceHash {
                    root: [0; 32],
                    data_len: piece_length.min(length - k * piece_length) as u32,
                    width: per_piece as u32,
                });
            }
        } else {
            let layer = layers.get(&root).ok_or_else(|| {
                invalid(format!(
                    "no piece layer for {:?} (a v2 torrent needs its `piece layers`)",
                    shown()
                ))
            })?;
            if layer.len() as u64 != count {
                return Err(invalid(format!(
                    "the piece layer of {:?} has {} hashes for {count} pieces",
                    shown(),
                    layer.len()
                )));
            }
            let width = count.next_power_of_two();
            if merkle_root(layer, width, empty_piece_root(piece_length)) != root {
                return Err(invalid(format!(
                    "the piece layer of {:?} does not match its `pieces root`",
                    shown()
                )));
            }
            for (k, h) in layer.iter().enumerate() {
                let data_len = piece_length.min(length - k as u64 * piece_length);
                pieces.push(PieceHash {
                    root: *h,
                    data_len: data_len as u32,
                    width: per_piece as u32,
                });
            }
        }
        files.push(FileEntry {
            path,
            length,
            offset,
            padding: false,
            executable,
            symlink: None,
            mtime,
        });
        if end > offset + length {
            files.push(FileEntry {
                path: PathBuf::from(name)
                    .join(".pad")
                    .join((end - offset - length).to_string()),
                length: end - offset - length,
                offset: offset + length,
                padding: true,
                executable: false,
                symlink: None,
                mtime: None,
            });
        }
        offset = end;
    }
    if offset == 0 {
        return Err(invalid("the torrent holds no data (total length 0)"));
    }
    check_paths_distinct(&files)?;
    debug_assert_eq!(pieces.len() as u64, offset.div_ceil(piece_length));
    Ok(Content {
        files,
        multi_file,
        hashes: V2 {
            pieces,
            built: Built::new(trees.len()),
            files: trees,
        },
    })
}

/// Reads the v2 side of a hybrid torrent (its `file tree`, and its `piece layers` when given) and
/// checks that it lays out the very files of the v1 side, `files`: a peer of either swarm then asks
/// for and sends the same bytes as piece `i`. The files whose layer is absent are added to
/// `lacking` when given (a hybrid without every layer has none: its pieces are checked by SHA-1).
pub(super) fn parse_hybrid(
    tree: &[u8],
    name: &str,
    piece_length: u64,
    piece_layers: Option<&[u8]>,
    files: &[FileEntry],
    lacking: Option<&mut Vec<FileTree>>,
) -> Result<Hybrid, MetainfoError> {
    let mut missing = Vec::new();
    let content =
        parse(tree, name, piece_length, piece_layers, Some(&mut missing)).map_err(|e| match e {
            MetainfoError::Invalid(why) => {
                invalid(format!("the v2 side of this hybrid torrent: {why}"))
            }
            e => e,
        })?;
    type Seen = (PathBuf, u64, u64, Option<PathBuf>);
    let real = |fs: &[FileEntry]| -> Vec<Seen> {
        fs.iter()
            .filter(|f| !f.padding)
            .map(|f| (f.path.clone(), f.length, f.offset, f.symlink.clone()))
            .collect()
    };
    if real(&content.files) != real(files) {
        return Err(invalid(
            "the v1 and v2 sides of this hybrid torrent describe different files",
        ));
    }
    let roots = content.hashes.files.iter().map(|f| f.root).collect();
    let layers = missing.is_empty().then_some(content.hashes);
    if let Some(lacking) = lacking {
        lacking.extend(missing);
    }
    Ok(Hybrid { layers, roots })
}

/// The files under one node of the `file tree`, in tree (byte) order. Nesting is bounded by the
/// bencode reader's depth limit.
fn walk(
    node: &[u8],
    comps: &mut Vec<String>,
    out: &mut Vec<TreeFile>,
) -> Result<(), MetainfoError> {
    if node.first() != Some(&b'd') {
        return Err(invalid("a `file tree` node is not a dictionary"));
    }
    let mut entries = bencode::dict_entries(node)?;
    entries.sort_by(|a, b| a.key.cmp(b.key));
    for e in &entries {
        let value = &node[e.value.clone()];
        if !e.key.is_empty() {
            comps.push(component(e.key, "file path component")?);
            walk(value, comps, out)?;
            comps.pop();
            continue;
        }
        if entries.len() != 1 || comps.is_empty() {
            return Err(invalid(
                "a `file tree` node is both a file and a folder, or a file has no name",
            ));
        }
        if value.first() != Some(&b'd') {
            return Err(invalid("a `file tree` file is not a dictionary"));
        }
        let mut length = None;
        let mut root = None;
        let mut attr = None;
        let mut symlink_path = None;
        let mut mtime = None;
        for f in bencode::dict_entries(value)? {
            let v = &value[f.value.clone()];
            match f.key {
                b"length" => length = Some(v),
                b"pieces root" => root = bencode::as_bytes(v),
                b"attr" => attr = Some(v),
                b"symlink path" => symlink_path = Some(v),
                b"mtime" => mtime = super::info::mtime(Some(v)),
                _ => {}
            }
        }
        let (_, executable, is_link) = super::info::attrs(attr);
        // A link entry has no data: libtorrent writes it without a `length`.
        let length = match length {
            None if is_link => 0,
            _ => length
                .and_then(bencode::as_int)
                .and_then(|n| u64::try_from(n).ok())
                .filter(|&n| n <= MAX_TOTAL_LENGTH)
                .ok_or_else(|| invalid("a `file tree` file has no valid `length`"))?,
        };
        let root =
            match root {
                None => None,
                Some(r) => Some(<Hash256>::try_from(r).map_err(|_| {
                    invalid(format!("a `pieces root` is {} bytes, not 32", r.len()))
                })?),
            };
        if out.len() >= MAX_FILES {
            return Err(invalid(format!("more than {MAX_FILES} files")));
        }
        out.push(TreeFile {
            comps: comps.clone(),
            length,
            root,
            executable,
            link: symlink_path.filter(|_| is_link).map(<[u8]>::to_vec),
            mtime,
        });
    }
    Ok(())
}

/// The top-level `piece layers`: each file's root to its layer of piece hashes.
fn layers(raw: Option<&[u8]>) -> Result<HashMap<Hash256, Vec<Hash256>>, MetainfoError> {
    let Some(raw) = raw else {
        return Ok(HashMap::new());
    };
    if raw.first() != Some(&b'd') {
        return Err(invalid("`piece layers` is not a dictionary"));
    }
    let mut out = HashMap::new();
    for e in bencode::dict_entries(raw)? {
        let key = <Hash256>::try_from(e.key)
            .map_err(|_| invalid("a `piece layers` key is not a 32-byte root"))?;
        let hashes = bencode::as_bytes(&raw[e.value.clone()])
            .filter(|h| h.len() % 32 == 0)
            .ok_or_else(|| invalid("a `piece layers` value is not a list of 32-byte hashes"))?;
        let layer = hashes
            .chunks_exact(32)
            .map(|c| c.try_into().expect("chunks of 32"))
            .collect();
        out.insert(key, layer);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::Writer;
    use crate::metainfo::{create_torrent, CreateOptions, Metainfo};
    use std::path::Path;

    fn by_hand(tree: &[u8], plen: i64, layers: Option<&[u8]>) -> Vec<u8> {
        let mut w = Writer::default();
        w.begin_dict().bytes(b"info").begin_dict();
        w.bytes(b"file tree").raw(tree);
        w.bytes(b"meta version").int(2).bytes(b"name").bytes(b"top");
        w.bytes(b"piece length").int(plen).end();
        if let Some(l) = layers {
            w.bytes(b"piece layers").raw(l);
        }
        w.end();
        w.buf
    }

    fn refusal(bytes: &[u8]) -> String {
        Metainfo::from_bytes(bytes).unwrap_err().to_string()
    }

    /// Link entries in a `file tree` as libtorrent writes them (`attr` `l`, a `symlink path`, no
    /// `length`) are read as links below the torrent's folder, `..` dropped; an `l` without a
    /// usable target is an empty file; a lone file is never a link.
    #[test]
    fn link_entries_of_a_file_tree_are_read_as_links() {
        type Entry<'a> = (&'a [u8], &'a [u8], Option<&'a [&'a [u8]]>);
        let entries: &[Entry] = &[
            (b"bad", b"l", None),
            (b"ln", b"xl", Some(&[b"a"])),
            (b"out", b"l", Some(&[b"..", b"..", b"etc"])),
            (b"rooted", b"l", Some(&[b"/etc"])),
        ];
        let mut w = Writer::default();
        w.begin_dict()
            .bytes(b"a")
            .begin_dict()
            .bytes(b"")
            .begin_dict();
        w.bytes(b"length")
            .int(5)
            .bytes(b"pieces root")
            .bytes(&[7; 32]);
        w.end().end();
        for (name, attr, target) in entries {
            w.bytes(name).begin_dict().bytes(b"").begin_dict();
            w.bytes(b"attr").bytes(attr);
            if let Some(t) = target {
                w.bytes(b"symlink path").begin_list();
                for c in *t {
                    w.bytes(c);
                }
                w.end();
            }
            w.end().end();
        }
        w.end();
        let m = Metainfo::from_bytes(&by_hand(&w.buf, 16384, None)).unwrap();
        let read: Vec<(String, u64, u64, Option<PathBuf>)> = m
            .info
            .files
            .iter()
            .map(|f| {
                let path = f.path.display().to_string();
                (path, f.length, f.offset, f.symlink.clone())
            })
            .collect();
        let file = |p: &str, len, at| (p.to_string(), len, at, None);
        let link = |p: &str, to: &str| (p.to_string(), 0, 16384, Some(PathBuf::from(to)));
        assert_eq!(
            read,
            [
                file("top/a", 5, 0),
                file("top/.pad/16379", 16379, 5),
                file("top/bad", 0, 16384),
                link("top/ln", "top/a"),
                link("top/out", "top/etc"),
                file("top/rooted", 0, 16384),
            ]
        );
        // A torrent of one file: its `l` says nothing.
        let mut w = Writer::default();
        w.begin_dict()
            .bytes(b"top")
            .begin_dict()
            .bytes(b"")
            .begin_dict();
        w.bytes(b"attr").bytes(b"l").bytes(b"length").int(5);
        w.bytes(b"pieces root").bytes(&[7; 32]);
        w.bytes(b"symlink path").begin_list().bytes(b"x").end();
        w.end().end().end();
        let single = Metainfo::from_bytes(&by_hand(&w.buf, 16384, None)).unwrap();
        assert_eq!(single.info.files[0].symlink, None);
        assert_eq!(single.info.files[0].length, 5);
    }

    #[test]
    fn a_created_v2_torrent_lays_each_file_on_a_piece_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        let a: Vec<u8> = (0..40_000u32).map(|i| (i % 249) as u8).collect();
        let z: Vec<u8> = (0..16_384u32).map(|i| (i % 241) as u8).collect();
        std::fs::create_dir_all(top.join("b")).unwrap();
        std::fs::write(top.join("a"), &a).unwrap();
        std::fs::write(top.join("b/c"), b"x").unwrap();
        std::fs::write(top.join("b/e"), b"").unwrap();
        std::fs::write(top.join("z"), &z).unwrap();
        let opts = CreateOptions {
            piece_length: Some(16384),
            v2: true,
            ..Default::default()
        };
        let m = create_torrent(&top, &opts, &|_, _| {}).unwrap();
        let layout: Vec<(String, u64, u64, bool)> = m
            .info
            .files
            .iter()
            .map(|f| (f.path.display().to_string(), f.offset, f.length, f.padding))
            .collect();
        let row = |p: &str, o, l, pad| (p.to_string(), o, l, pad);
        assert_eq!(
            layout,
            [
                row("top/a", 0, 40_000, false),
                row("top/.pad/9152", 40_000, 9152, true),
                row("top/b/c", 49_152, 1, false),
                row("top/.pad/16383", 49_153, 16_383, true),
                row("top/b/e", 65_536, 0, false),
                row("top/z", 65_536, 16_384, false),
            ]
        );
        assert_eq!((m.info.piece_count(), m.info.total_length), (5, 81_920));
        assert!(m.info.pieces.is_empty());
        let full = sha256(m.info_bytes());
        assert_eq!(m.info_hash_v2, Some(full));
        assert_eq!(m.info_hash.0, full[..20]);
        assert!(m
            .magnet()
            .starts_with(&format!("magnet:?xt=urn:btmh:1220{}&", hex::encode(full))));
        // Each piece checks against its own data, padding included, and nothing else.
        let piece = |data: &[u8], k: usize| {
            let mut p =
                data[(k * 16384).min(data.len())..((k + 1) * 16384).min(data.len())].to_vec();
            p.resize(16384, 0);
            p
        };
        let pieces = [
            piece(&a, 0),
            piece(&a, 1),
            piece(&a, 2),
            piece(b"x", 0),
            z.clone(),
        ];
        for (k, p) in pieces.iter().enumerate() {
            assert!(m.info.piece_matches(k, p), "piece {k}");
            let mut bad = p.clone();
            bad[100] ^= 1;
            assert!(!m.info.piece_matches(k, &bad), "piece {k} flipped");
        }
        assert!(!m.info.piece_matches(5, &z));
        // The layer of `a` (3 pieces) is in `piece layers`; single-piece files have none.
        let layers = crate::bencode::dict_entries(m.as_bytes()).unwrap();
        assert!(layers.iter().any(|e| e.key == b"piece layers"));
        // Editing the trackers keeps the layers (outside `info`) and the info-hash.
        let edited = crate::metainfo::edit_trackers(&m, "http://new:6969/announce").unwrap();
        let edited = Metainfo::from_bytes(&edited).unwrap();
        assert_eq!(edited.info_hash_v2, m.info_hash_v2);
        assert_eq!(edited.info.v2, m.info.v2);
        let v2 = m.info.v2.as_ref().unwrap();
        let roots: Vec<(u32, u32, u64)> = v2
            .files
            .iter()
            .map(|f| (f.first_piece, f.piece_count, f.blocks))
            .collect();
        assert_eq!(roots, [(0, 3, 3), (3, 1, 1), (4, 1, 1)]);
    }

    /// A hybrid: the v1 view (what btorrent reads) puts each file on a piece boundary with padding
    /// files, its SHA-1 pieces check the data; the v2 view is the very `file tree` and `piece layers`
    /// of the v2-only torrent of the same files.
    #[test]
    fn a_hybrid_torrent_has_both_views_of_the_same_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        let a: Vec<u8> = (0..40_000u32).map(|i| (i % 249) as u8).collect();
        std::fs::create_dir_all(top.join("b")).unwrap();
        std::fs::write(top.join("a"), &a).unwrap();
        std::fs::write(top.join("b/c"), b"x").unwrap();
        std::fs::write(top.join("b/e"), b"").unwrap();
        let opts = CreateOptions {
            piece_length: Some(16384),
            hybrid: true,
            ..Default::default()
        };
        let hybrid = create_torrent(&top, &opts, &|_, _| {}).unwrap();
        let v2 = CreateOptions {
            hybrid: false,
            v2: true,
            ..opts
        };
        let v2 = create_torrent(&top, &v2, &|_, _| {}).unwrap();
        assert!(hybrid.info.v2.is_none(), "read as v1");
        let layout = |m: &Metainfo| -> Vec<(String, u64, u64, bool)> {
            m.info
                .files
                .iter()
                .map(|f| (f.path.display().to_string(), f.offset, f.length, f.padding))
                .collect()
        };
        assert_eq!(layout(&hybrid), layout(&v2));
        assert_eq!(hybrid.info.piece_count(), 4);
        let mut space = a.clone();
        space.resize(49_152, 0);
        space.push(b'x');
        space.resize(65_536, 0);
        for (i, piece) in space.chunks(16384).enumerate() {
            assert!(hybrid.info.piece_matches(i, piece), "piece {i}");
        }
        let value = |bytes: &[u8], key: &[u8]| -> Vec<u8> {
            let entries = crate::bencode::dict_entries(bytes).unwrap();
            let e = entries.iter().find(|e| e.key == key).unwrap();
            bytes[e.value.clone()].to_vec()
        };
        let tree = |m: &Metainfo| value(m.info_bytes(), b"file tree");
        assert_eq!(tree(&hybrid), tree(&v2));
        let layers = |m: &Metainfo| value(m.as_bytes(), b"piece layers");
        assert_eq!(layers(&hybrid), layers(&v2));

        // In two swarms: the v1 one by its SHA-1, the v2 one by its SHA-256 cut to 20 bytes.
        assert_eq!(hybrid.info.format(), crate::metainfo::Format::Hybrid);
        let full = sha256(hybrid.info_bytes());
        assert_eq!(hybrid.info_hash_v2, Some(full));
        assert_eq!(hybrid.second_info_hash(), Some(truncated(&full)));
        assert_ne!(hybrid.info_hash, truncated(&full));
        let swarms: Vec<_> = hybrid.swarm_ids().collect();
        assert_eq!(swarms, [hybrid.info_hash, truncated(&full)]);
        assert_eq!((v2.second_info_hash(), v2.swarm_ids().count()), (None, 1));
        // Its link names both, and reads back as both.
        let link = crate::magnet::Magnet::parse(&hybrid.magnet()).unwrap();
        assert_eq!(
            (link.info_hash, link.info_hash_v2),
            (hybrid.info_hash, Some(full))
        );
        // Hash requests are answered from its layers; the dictionary alone (from a link) has none.
        assert_eq!(hybrid.info.merkle(), v2.info.v2.as_ref());
        let bare = Metainfo::from_bytes(&link.torrent_bytes(hybrid.info_bytes(), None)).unwrap();
        assert_eq!(bare.info.format(), crate::metainfo::Format::Hybrid);
        assert_eq!(bare.info.merkle(), None);
        assert_eq!(bare.swarm_ids().collect::<Vec<_>>(), swarms);
    }

    /// A dictionary fetched alone claims what it likes: the layers it lacks are bounded (as a
    /// .torrent bounds those it holds), so a hostile one is refused before anything is made for its
    /// pieces.
    #[test]
    fn a_dictionary_lacking_layers_for_too_many_pieces_is_refused() {
        let bare = |length: u64| {
            let mut info =
                format!("d9:file treed5:a.bind0:d6:lengthi{length}e11:pieces root32:").into_bytes();
            info.extend_from_slice(&[5u8; 32]);
            info.extend_from_slice(b"eee12:meta versioni2e4:name5:a.bin12:piece lengthi16384ee");
            crate::metainfo::layers_needed(&info).map_err(|e| e.to_string())
        };
        let needed = bare(3 * 16384).unwrap().unwrap();
        assert_eq!((needed.piece_count, needed.files.len()), (3, 1));
        for length in [1 << 49, (MAX_UNLAYERED_PIECES + 1) * 16384] {
            let e = bare(length).unwrap_err();
            assert!(e.contains("lacks are for more than"), "{length}: {e}");
        }
    }

    /// A hybrid's v2 side must describe the files of its v1 side (libtorrent refuses such a torrent
    /// too): otherwise the two swarms would call different bytes piece `i`.
    #[test]
    fn a_hybrid_whose_two_sides_differ_is_refused() {
        let root = [9u8; 32];
        let made = |tree_name: &str, tree_len: u64, name: &str, piece_length: u64| {
            let mut info = Vec::new();
            info.extend_from_slice(b"d9:file treed");
            info.extend_from_slice(
                format!(
                    "{}:{tree_name}d0:d6:lengthi{tree_len}e11:pieces root32:",
                    tree_name.len()
                )
                .as_bytes(),
            );
            info.extend_from_slice(&root);
            info.extend_from_slice(b"eee6:lengthi5e12:meta versioni2e");
            info.extend_from_slice(
                format!(
                    "4:name{}:{name}12:piece lengthi{piece_length}e6:pieces20:",
                    name.len()
                )
                .as_bytes(),
            );
            info.extend_from_slice(&[3u8; 20]);
            info.push(b'e');
            let mut t = b"d4:info".to_vec();
            t.extend_from_slice(&info);
            t.push(b'e');
            Metainfo::from_bytes(&t).map_err(|e| e.to_string())
        };
        // A folder of one file: a v1 `files` list of one, a `file tree` of one file: the same file.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("h")).unwrap();
        std::fs::write(dir.path().join("h/a.bin"), [1u8; 40_000]).unwrap();
        let opts = CreateOptions {
            hybrid: true,
            ..Default::default()
        };
        let folder = create_torrent(&dir.path().join("h"), &opts, &|_, _| {}).unwrap();
        assert_eq!(folder.info.format(), crate::metainfo::Format::Hybrid);
        assert_eq!(folder.info.files[0].path, std::path::Path::new("h/a.bin"));

        let good = made("a.bin", 5, "a.bin", 16384).unwrap();
        assert_eq!(good.info.format(), crate::metainfo::Format::Hybrid);
        assert_eq!(good.info.merkle().unwrap().files[0].root, root);
        for (tree_name, tree_len, name, piece_length, why) in [
            ("b.bin", 5, "a.bin", 16384, "describe different files"),
            ("a.bin", 6, "a.bin", 16384, "describe different files"),
            ("a.bin", 5, "a.bin", 10000, "not a power of two"),
            (
                "../x",
                5,
                "a.bin",
                16384,
                "the v2 side of this hybrid torrent",
            ),
        ] {
            let e = made(tree_name, tree_len, name, piece_length).unwrap_err();
            assert!(
                e.contains(why),
                "{tree_name} {tree_len} {piece_length}: {e}"
            );
        }
    }

    #[test]
    fn hostile_v2_torrents_are_refused_with_what_is_wrong() {
        let data = vec![7u8; 40_000];
        let mut h = BlockHasher::default();
        h.update(&data);
        let leaves = h.finish();
        let layer: Vec<Hash256> = leaves
            .iter()
            .map(|l| merkle_root(&[*l], 1, [0; 32]))
            .collect();
        let root = merkle_root(&layer, 4, empty_piece_root(16384));
        let file = |name: &[u8], root: &[u8]| {
            let mut w = Writer::default();
            w.begin_dict()
                .bytes(name)
                .begin_dict()
                .bytes(b"")
                .begin_dict();
            w.bytes(b"length")
                .int(40_000)
                .bytes(b"pieces root")
                .bytes(root);
            w.end().end().end();
            w.buf
        };
        let layers = |hashes: &[u8]| {
            let mut w = Writer::default();
            w.begin_dict().bytes(&root).bytes(hashes).end();
            w.buf
        };
        let good_layers = layers(&layer.concat());
        let ok = by_hand(&file(b"f", &root), 16384, Some(&good_layers));
        let m = Metainfo::from_bytes(&ok).unwrap();
        // A lone file not named as the torrent is in the torrent's folder; named so, it is the
        // torrent.
        assert_eq!(m.info.files[0].path, Path::new("top/f"));
        assert!(m.info.multi_file);
        let single = by_hand(&file(b"top", &root), 16384, Some(&good_layers));
        let single = Metainfo::from_bytes(&single).unwrap();
        assert_eq!(single.info.files[0].path, Path::new("top"));
        assert!(!single.info.multi_file);
        assert!(m.info.piece_matches(2, &{
            let mut p = data[32768..].to_vec();
            p.resize(16384, 0);
            p
        }));

        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                by_hand(&file(b"f", &root), 16384, None),
                "no piece layer for \"top/f\"",
            ),
            (
                by_hand(&file(b"f", &root), 16384, Some(&layers(&[1; 96]))),
                "does not match its `pieces root`",
            ),
            (
                by_hand(&file(b"f", &root), 16384, Some(&layers(&[1; 64]))),
                "has 2 hashes for 3 pieces",
            ),
            (
                by_hand(&file(b"f", &root[..31]), 16384, Some(&good_layers)),
                "`pieces root` is 31 bytes",
            ),
            (
                by_hand(&file(b"..", &root), 16384, Some(&good_layers)),
                "unsafe file path component",
            ),
            (
                by_hand(&file(b"f", &root), 16000, Some(&good_layers)),
                "not a power of two from 16 KiB",
            ),
            (by_hand(b"de", 16384, None), "`file tree` is empty"),
            (
                by_hand(b"d1:fd0:d6:lengthi1ee1:gd0:d6:lengthi1eeeee", 16384, None),
                "both a file and a folder",
            ),
            (by_hand(b"d1:fi3ee", 16384, None), "not a dictionary"),
            (
                by_hand(b"d1:fd0:d6:lengthi-1eeee", 16384, None),
                "no valid `length`",
            ),
            (
                by_hand(b"d1:fd0:d6:lengthi0eeee", 16384, None),
                "holds no data",
            ),
        ];
        for (bytes, want) in cases {
            let e = refusal(&bytes);
            assert!(e.contains(want), "{want:?} not in {e:?}");
        }
    }
}
