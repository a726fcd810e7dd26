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

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::info::{check_paths_distinct, component, FileEntry, MAX_PATH_BYTES};
use super::{invalid, MetainfoError, MAX_FILES, MAX_TOTAL_LENGTH};
use crate::bencode;

/// The leaf size of every v2 merkle tree.
pub const BLOCK: u64 = 16 << 10;

/// A SHA-256 digest.
pub type Hash256 = [u8; 32];

/// The SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash256 {
    Sha256::digest(data).into()
}

fn parent(left: &Hash256, right: &Hash256) -> Hash256 {
    let mut h = Sha256::new();
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of a tree whose bottom layer is `layer` padded to `width` nodes (a power of two, at least
/// `layer.len()`) with `pad`; the padding of each layer above is the parent of two of the one below.
pub fn merkle_root(layer: &[Hash256], width: u64, pad: Hash256) -> Hash256 {
    debug_assert!(width.is_power_of_two() && width >= layer.len() as u64);
    let mut nodes = layer.to_vec();
    let (mut pad, mut width) = (pad, width.max(1));
    while width > 1 {
        if nodes.len() % 2 == 1 {
            nodes.push(pad);
        }
        nodes = nodes
            .chunks_exact(2)
            .map(|p| parent(&p[0], &p[1]))
            .collect();
        pad = parent(&pad, &pad);
        width /= 2;
    }
    nodes.first().copied().unwrap_or(pad)
}

/// The root of a whole piece of zero leaves: what pads a piece layer to a power of two.
fn empty_piece_root(piece_length: u64) -> Hash256 {
    merkle_root(&[], piece_length / BLOCK, [0; 32])
}

/// The leaf hashes of a stream of bytes fed in any slices: one per 16 KiB block, the last one short.
#[derive(Default)]
pub struct BlockHasher {
    leaves: Vec<Hash256>,
    block: Sha256,
    in_block: u64,
}

impl BlockHasher {
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = ((BLOCK - self.in_block) as usize).min(data.len());
            self.block.update(&data[..take]);
            self.in_block += take as u64;
            data = &data[take..];
            if self.in_block == BLOCK {
                self.leaves.push(self.block.finalize_reset().into());
                self.in_block = 0;
            }
        }
    }

    /// The leaves of everything fed.
    pub fn finish(mut self) -> Vec<Hash256> {
        if self.in_block > 0 {
            self.leaves.push(self.block.finalize().into());
        }
        self.leaves
    }
}

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

/// A cache of built trees, one slot per file: not part of what a [`V2`] is (equal whatever is
/// built, a clone starts empty).
#[derive(Default)]
struct Built(Vec<OnceLock<Vec<Vec<Hash256>>>>);

impl Built {
    fn new(files: usize) -> Self {
        Built((0..files).map(|_| OnceLock::new()).collect())
    }
}

impl Clone for Built {
    fn clone(&self) -> Self {
        Built::new(self.0.len())
    }
}

impl PartialEq for Built {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Built {}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("..")
    }
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
}

/// One `hash request`, `hashes` or `hash reject` (BEP 52): hashes of the tree of the file whose root
/// is `root`, `length` of them from `index` at layer `base` (0 the blocks' layer), and the uncle
/// hashes up to `proof_layers` layers above `base` that tie them to the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRange {
    pub root: Hash256,
    pub base: u32,
    pub index: u32,
    pub length: u32,
    pub proof_layers: u32,
}

/// Most hashes one request may ask for (libtorrent's bound: a piece of 128 MiB in blocks).
pub const MAX_HASHES_ASKED: u32 = 8192;

/// Most hashes one answer gives: what libtorrent asks for at a time (512 of a piece layer); a larger
/// request is refused, so an answer stays about 16 KiB.
pub const MAX_HASHES_SERVED: u32 = 512;

/// What a v2-only info dictionary fetched alone (a magnet link's) lacks before it can be used: the
/// piece layers of its files larger than one piece, which peers give on request (BEP 52).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayersNeeded {
    pub piece_length: u64,
    pub piece_count: usize,
    pub total_length: u64,
    pub files: Vec<FileTree>,
}

impl LayersNeeded {
    /// The requests that fetch every layer, each answer checkable against its file's root alone:
    /// a layer of up to 512 pieces in one request without uncles (as libtorrent asks), a longer one
    /// 512 at a time with the uncles up to the root.
    pub fn requests(&self) -> Vec<HashRange> {
        let base = (self.piece_length / BLOCK).trailing_zeros();
        let mut out = Vec::new();
        for f in &self.files {
            let width = f.piece_count.next_power_of_two();
            let length = width.min(MAX_HASHES_SERVED);
            let proof_layers =
                (f.height() - base - 1).max(length.trailing_zeros().saturating_sub(1));
            for index in (0..width).step_by(length as usize) {
                out.push(HashRange {
                    root: f.root,
                    base,
                    index,
                    length,
                    proof_layers,
                });
            }
        }
        out
    }

    /// The `piece layers` value made of the answers (each checked with [`check_hashes`]: the
    /// hashes asked for, without uncles, by request): each file's layer, padding dropped.
    pub fn piece_layers(&self, answers: &HashMap<HashRange, Vec<Hash256>>) -> Option<Vec<u8>> {
        let mut layers: Vec<(Hash256, Vec<u8>)> = Vec::new();
        let requests = self.requests();
        for f in &self.files {
            let mut layer: Vec<Hash256> = Vec::new();
            for r in requests.iter().filter(|r| r.root == f.root) {
                layer.extend(answers.get(r)?);
            }
            layer.truncate(f.piece_count as usize);
            layers.push((f.root, layer.concat()));
        }
        layers.sort();
        layers.dedup();
        let mut w = crate::bencode::Writer::default();
        w.begin_dict();
        for (root, layer) in &layers {
            w.bytes(root).bytes(layer);
        }
        w.end();
        Some(w.buf)
    }
}

impl FileTree {
    /// Layers of its tree above the blocks (the root's level).
    pub fn height(&self) -> u32 {
        self.blocks.next_power_of_two().trailing_zeros()
    }
}

impl V2 {
    /// The file whose tree has `root`.
    pub fn file(&self, root: &Hash256) -> Option<&FileTree> {
        self.files.iter().find(|f| &f.root == root)
    }

    /// The file's tree from its pieces' layer up, built once.
    fn tree(&self, file: usize, piece_length: u64) -> &[Vec<Hash256>] {
        let f = &self.files[file];
        let first = f.first_piece as usize;
        self.built.0[file].get_or_init(|| {
            tree_above(
                &self.pieces[first..first + f.piece_count as usize],
                piece_length,
            )
        })
    }

    /// The answer to a hash request, from the piece layers: the `length` hashes asked for, then the
    /// uncles, lowest first, for the layers from the one whose node covers the whole range up to
    /// `base + proof_layers`. `None` (a reject) for an unknown root, a range or layers outside the
    /// file's tree, a length that is not a power of two or an index not a multiple of it, and a
    /// layer below the pieces' (block hashes would take reading the data), and more than
    /// [`MAX_HASHES_SERVED`] hashes.
    pub fn hashes(&self, req: &HashRange, piece_length: u64) -> Option<Vec<Hash256>> {
        let at_file = self.files.iter().position(|f| f.root == req.root)?;
        let file = &self.files[at_file];
        let piece_level = (piece_length / BLOCK).trailing_zeros();
        let height = file.blocks.next_power_of_two().trailing_zeros();
        let (base, index, length, proof) = (req.base, req.index, req.length, req.proof_layers);
        let shape_ok = length.is_power_of_two()
            && length <= MAX_HASHES_SERVED
            && index.is_multiple_of(length)
            && base >= piece_level
            && base < height
            && u64::from(base) + u64::from(proof) < u64::from(height)
            && u64::from(index) + u64::from(length) <= file.blocks.next_power_of_two() >> base;
        if !shape_ok {
            return None;
        }
        let layers = self.tree(at_file, piece_length);
        let at = |level: u32, i: u64| layers[(level - piece_level) as usize][i as usize];
        let mut out: Vec<Hash256> = (0..u64::from(length))
            .map(|k| at(base, u64::from(index) + k))
            .collect();
        let span = length.trailing_zeros();
        let mut node = u64::from(index) >> span;
        for up in span..=proof {
            out.push(at(base + up, node ^ 1));
            node >>= 1;
        }
        Some(out)
    }
}

/// The layers of a file's tree from its pieces' layer (padded with the roots of empty pieces) up to
/// its root.
fn tree_above(pieces: &[PieceHash], piece_length: u64) -> Vec<Vec<Hash256>> {
    let width = pieces.len().next_power_of_two();
    let mut layer: Vec<Hash256> = pieces.iter().map(|p| p.root).collect();
    layer.resize(width, empty_piece_root(piece_length));
    let mut layers = vec![layer];
    while layers.last().is_some_and(|l| l.len() > 1) {
        let below = layers.last().expect("one layer at least");
        let up = below
            .chunks_exact(2)
            .map(|p| parent(&p[0], &p[1]))
            .collect();
        layers.push(up);
    }
    layers
}

/// Checks a `hashes` answer to `req` against the file's root, `height` layers above its blocks:
/// the `length` hashes folded into the root of their range, then each uncle in turn, must give the
/// root. On success, the hashes asked for (without the uncles).
pub fn check_hashes(req: &HashRange, height: u32, hashes: &[Hash256]) -> Option<Vec<Hash256>> {
    let length = req.length as usize;
    if !req.length.is_power_of_two() || hashes.len() < length {
        return None;
    }
    let (asked, uncles) = hashes.split_at(length);
    let mut node = merkle_root(asked, u64::from(req.length), [0; 32]);
    let mut at = u64::from(req.index) >> req.length.trailing_zeros();
    for u in uncles {
        node = if at.is_multiple_of(2) {
            parent(&node, u)
        } else {
            parent(u, &node)
        };
        at >>= 1;
    }
    let level = req.base + req.length.trailing_zeros() + uncles.len() as u32;
    (level == height && at == 0 && node == req.root).then(|| asked.to_vec())
}

/// One file of the `file tree`: path components, length, `pieces root`.
type TreeFile = (Vec<String>, u64, Option<Hash256>);

/// Reads the `file tree` (raw, a dictionary) and lays it out with pieces of `piece_length` (already
/// checked to be a power of two from 16 KiB), each piece's hash taken from `piece_layers` (the raw
/// top-level value, absent in bare metadata). A file whose layer is absent is an error, unless
/// `missing` collects such files (their pieces' hashes are then zeros, to be filled in).
pub(super) fn parse(
    tree: &[u8],
    name: &str,
    piece_length: u64,
    piece_layers: Option<&[u8]>,
    mut missing: Option<&mut Vec<FileTree>>,
) -> Result<Content, MetainfoError> {
    let mut found = Vec::new();
    walk(tree, &mut Vec::new(), &mut found)?;
    if found.is_empty() {
        return Err(invalid("`file tree` is empty"));
    }
    let multi_file = !(found.len() == 1 && found[0].0.len() == 1);
    let layers = layers(piece_layers)?;
    let per_piece = piece_length / BLOCK;
    let mut files = Vec::with_capacity(found.len() * 2);
    let mut pieces = Vec::new();
    let mut trees = Vec::new();
    let mut offset = 0u64;
    for (comps, length, root) in found {
        // A lone file at the top is a single-file torrent, named by its key (as libtorrent reads it).
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
            files.push(FileEntry {
                path,
                length,
                offset,
                padding: false,
            });
            continue;
        }
        let root = root.ok_or_else(|| invalid(format!("{:?} has no `pieces root`", shown())))?;
        let count = length.div_ceil(piece_length);
        let tree = FileTree {
            root,
            first_piece: pieces.len() as u32,
            piece_count: count as u32,
            blocks: length.div_ceil(BLOCK),
        };
        trees.push(tree.clone());
        if count == 1 {
            pieces.push(PieceHash {
                root,
                data_len: length as u32,
                width: length.div_ceil(BLOCK).next_power_of_two() as u32,
            });
        } else if let (None, Some(missing)) = (layers.get(&root), missing.as_deref_mut()) {
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
        });
        let end = offset + count * piece_length;
        if end > MAX_TOTAL_LENGTH {
            return Err(invalid(
                "total length is out of range (more than 2^50 bytes)",
            ));
        }
        if end > offset + length {
            files.push(FileEntry {
                path: PathBuf::from(name)
                    .join(".pad")
                    .join((end - offset - length).to_string()),
                length: end - offset - length,
                offset: offset + length,
                padding: true,
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
        for f in bencode::dict_entries(value)? {
            let v = &value[f.value.clone()];
            match f.key {
                b"length" => length = bencode::as_int(v),
                b"pieces root" => root = bencode::as_bytes(v),
                _ => {}
            }
        }
        let length = length
            .and_then(|n| u64::try_from(n).ok())
            .filter(|&n| n <= MAX_TOTAL_LENGTH)
            .ok_or_else(|| invalid("a `file tree` file has no valid `length`"))?;
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
        out.push((comps.clone(), length, root));
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

/// A file hashed for a v2 torrent: its root and, when it is larger than one piece, its piece layer.
pub struct HashedFile {
    pub root: Hash256,
    pub layer: Option<Vec<Hash256>>,
}

/// Hashes the file at `path`, expected to be `length` (> 0) bytes long, into its tree with pieces of
/// `piece_length`. Reads in 1 MiB positioned reads; a file that changes length while it is read is an
/// error. `read(bytes)` reports progress; `cancel` stops it early.
pub fn hash_file(
    path: &Path,
    length: u64,
    piece_length: u64,
    cancel: Option<&AtomicBool>,
    read: &dyn Fn(u64),
) -> Result<HashedFile, MetainfoError> {
    let io = |source| MetainfoError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(io)?;
    let mut buf = vec![0u8; (1 << 20).min(piece_length) as usize];
    let mut pieces = Vec::new();
    let mut at = 0u64;
    while at < length {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(MetainfoError::Cancelled);
        }
        let len = piece_length.min(length - at);
        let mut h = BlockHasher::default();
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], at + done).map_err(|e| {
                io(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    std::io::Error::other("the file shrank while it was being hashed")
                } else {
                    e
                })
            })?;
            h.update(&buf[..n]);
            done += n as u64;
            read(n as u64);
        }
        pieces.push(h.finish());
        at += len;
    }
    if file.metadata().map_err(io)?.len() != length {
        return Err(io(std::io::Error::other(
            "the file changed length while it was being hashed",
        )));
    }
    if let [leaves] = pieces.as_slice() {
        let width = (leaves.len() as u64).next_power_of_two();
        return Ok(HashedFile {
            root: merkle_root(leaves, width, [0; 32]),
            layer: None,
        });
    }
    let per_piece = piece_length / BLOCK;
    let layer: Vec<Hash256> = pieces
        .iter()
        .map(|leaves| merkle_root(leaves, per_piece, [0; 32]))
        .collect();
    let width = (layer.len() as u64).next_power_of_two();
    Ok(HashedFile {
        root: merkle_root(&layer, width, empty_piece_root(piece_length)),
        layer: Some(layer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::Writer;
    use crate::metainfo::{create_torrent, CreateOptions, Metainfo};

    /// A v2 .torrent around `tree` (raw bencode of the `file tree`) and `layers` (raw `piece layers`).
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

    #[test]
    fn hash_requests_are_answered_from_the_piece_layers_and_the_answers_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        // 600 pieces of 16 KiB (pieces are blocks here): a tree of 1,024 leaves, 10 layers up.
        let data: Vec<u8> = (0..600 * 16384 - 100)
            .map(|i: u32| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let opts = CreateOptions {
            piece_length: Some(16384),
            v2: true,
            ..Default::default()
        };
        let m = create_torrent(&path, &opts, &|_, _| {}).unwrap();
        let v2 = m.info.v2.as_ref().unwrap();
        let root = v2.files[0].root;
        let leaves = {
            let mut h = BlockHasher::default();
            h.update(&data);
            h.finish()
        };
        let req = |base, index, length, proof_layers| HashRange {
            root,
            base,
            index,
            length,
            proof_layers,
        };
        // libtorrent's ask for a layer of more than 512: 512 at a time, one uncle to the root.
        for index in [0, 512] {
            let r = req(0, index, 512, 9);
            let got = v2.hashes(&r, 16384).unwrap();
            assert_eq!(got.len(), 513);
            let asked = check_hashes(&r, 10, &got).expect("ties to the root");
            let want: Vec<Hash256> = (index as usize..index as usize + 512)
                .map(|i| leaves.get(i).copied().unwrap_or(empty_piece_root(16384)))
                .collect();
            assert_eq!(asked, want);
            let mut bad = got.clone();
            bad[512][0] ^= 1;
            assert!(check_hashes(&r, 10, &bad).is_none(), "a bad uncle");
            bad = got.clone();
            bad[3][0] ^= 1;
            assert!(check_hashes(&r, 10, &bad).is_none(), "a bad hash");
        }
        // Small ranges with every uncle up to the root; a higher layer alone.
        let r = req(0, 6, 2, 9);
        let got = v2.hashes(&r, 16384).unwrap();
        assert_eq!(got.len(), 2 + 9);
        assert_eq!(check_hashes(&r, 10, &got).unwrap(), leaves[6..8]);
        let r = req(3, 0, 128, 6);
        assert_eq!(
            check_hashes(&r, 10, &v2.hashes(&r, 16384).unwrap())
                .unwrap()
                .len(),
            128
        );
        // Too few uncles to reach the root: an answer that cannot be checked.
        let r = req(0, 0, 512, 8);
        assert_eq!(v2.hashes(&r, 16384).unwrap().len(), 512);
        assert!(check_hashes(&r, 10, &v2.hashes(&r, 16384).unwrap()).is_none());
        // Refused: unknown root, unaligned, past the layer, proof to or past the root, not a power
        // of two, more than the bound.
        let mut unknown = req(0, 0, 2, 0);
        unknown.root[0] ^= 1;
        for bad in [
            unknown,
            req(0, 3, 2, 0),
            req(0, 1024, 2, 0),
            req(0, 0, 2, 10),
            req(10, 0, 1, 0),
            req(0, 0, 3, 0),
            req(0, 0, 1024, 0),
        ] {
            assert!(v2.hashes(&bad, 16384).is_none(), "{bad:?}");
        }
        // Pieces of 32 KiB: block hashes are below the pieces' layer, not kept.
        let opts = CreateOptions {
            piece_length: Some(32768),
            ..opts
        };
        let m = create_torrent(&path, &opts, &|_, _| {}).unwrap();
        let v2 = m.info.v2.as_ref().unwrap();
        let r = HashRange {
            root: v2.files[0].root,
            ..req(0, 0, 2, 0)
        };
        assert!(v2.hashes(&r, 32768).is_none());
        let r = HashRange { base: 1, ..r };
        assert!(v2.hashes(&r, 32768).is_some());
    }

    /// A magnet link's bare dictionary: the layers it lacks are asked for, the answers (here from
    /// the whole torrent's own layers) checked and made into `piece layers`, and the torrent so
    /// rebuilt is the original.
    #[test]
    fn the_layers_a_bare_dictionary_lacks_are_asked_for_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        std::fs::create_dir_all(&top).unwrap();
        // 600 pieces (a layer in two requests, with uncles), 3 pieces, one piece, empty.
        let big: Vec<u8> = (0..600 * 16384 - 9).map(|i: u32| (i % 241) as u8).collect();
        std::fs::write(top.join("big"), &big).unwrap();
        std::fs::write(top.join("mid"), vec![9u8; 40_000]).unwrap();
        std::fs::write(top.join("one"), b"one").unwrap();
        std::fs::write(top.join("zero"), b"").unwrap();
        let opts = CreateOptions {
            piece_length: Some(16384),
            v2: true,
            ..Default::default()
        };
        let whole = create_torrent(&top, &opts, &|_, _| {}).unwrap();
        let needed = crate::metainfo::layers_needed(whole.info_bytes())
            .unwrap()
            .expect("two files need layers");
        assert_eq!(needed.files.len(), 2);
        assert_eq!(needed.piece_count, whole.info.piece_count());
        let requests = needed.requests();
        assert_eq!(requests.len(), 3);
        let v2 = whole.info.v2.as_ref().unwrap();
        let mut answers = HashMap::new();
        for r in &requests {
            let height = v2.file(&r.root).unwrap().height();
            let got = v2.hashes(r, 16384).expect("answerable");
            answers.insert(*r, check_hashes(r, height, &got).expect("checks"));
        }
        let layers = needed.piece_layers(&answers).unwrap();
        let mut w = Writer::default();
        w.begin_dict().bytes(b"info").raw(whole.info_bytes());
        w.bytes(b"piece layers").raw(&layers).end();
        let rebuilt = Metainfo::from_bytes(&w.buf).unwrap();
        assert_eq!(rebuilt.info.v2, whole.info.v2);
        assert_eq!(rebuilt.info_hash, whole.info_hash);
        // One answer short: nothing to build.
        answers.remove(&requests[1]);
        assert!(needed.piece_layers(&answers).is_none());
        // v1 torrents and v2 ones of small files lack nothing.
        let v1 = create_torrent(&top, &CreateOptions::default(), &|_, _| {}).unwrap();
        assert_eq!(
            crate::metainfo::layers_needed(v1.info_bytes()).unwrap(),
            None
        );
        let small = create_torrent(&top.join("one"), &opts, &|_, _| {}).unwrap();
        assert_eq!(
            crate::metainfo::layers_needed(small.info_bytes()).unwrap(),
            None
        );
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
        assert_eq!(m.info.files[0].path, Path::new("f"));
        assert!(!m.info.multi_file);
        assert!(m.info.piece_matches(2, &{
            let mut p = data[32768..].to_vec();
            p.resize(16384, 0);
            p
        }));

        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                by_hand(&file(b"f", &root), 16384, None),
                "no piece layer for \"f\"",
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

    #[test]
    fn a_root_pads_with_zero_leaves_and_their_parents() {
        let a = sha256(b"a");
        let b = sha256(b"b");
        assert_eq!(merkle_root(&[a], 1, [0; 32]), a);
        assert_eq!(merkle_root(&[a, b], 2, [0; 32]), parent(&a, &b));
        let z = [0u8; 32];
        let expect = parent(&parent(&a, &b), &parent(&a, &z));
        assert_eq!(merkle_root(&[a, b, a], 4, z), expect);
        // Width beyond the layer: whole subtrees of padding.
        let zz = parent(&z, &z);
        assert_eq!(merkle_root(&[a], 4, z), parent(&parent(&a, &z), &zz));
        assert_eq!(merkle_root(&[], 2, z), zz);
    }

    #[test]
    fn blocks_hash_the_same_whatever_the_slices() {
        let data: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = BlockHasher::default();
        whole.update(&data);
        let mut bits = BlockHasher::default();
        for c in data.chunks(1000) {
            bits.update(c);
        }
        let leaves = whole.finish();
        assert_eq!(leaves, bits.finish());
        assert_eq!(leaves.len(), 3);
        assert_eq!(leaves[2], sha256(&data[32768..]));
    }

    #[test]
    fn a_hashed_file_has_a_layer_whose_root_is_its_root_and_pieces_that_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let plen = 32 << 10;
        // Three pieces, the last a short one of two blocks (the second short).
        let data: Vec<u8> = (0..(2 * plen + 20_000) as u32)
            .map(|i| (i % 253) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let done = std::sync::atomic::AtomicU64::new(0);
        let hashed = hash_file(&path, data.len() as u64, plen, None, &|n| {
            done.fetch_add(n, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(done.into_inner(), data.len() as u64);
        let layer = hashed.layer.unwrap();
        assert_eq!(layer.len(), 3);
        assert_eq!(merkle_root(&layer, 4, empty_piece_root(plen)), hashed.root);
        for (k, h) in layer.iter().enumerate() {
            let start = k * plen as usize;
            let piece = &data[start..(start + plen as usize).min(data.len())];
            let p = PieceHash {
                root: *h,
                data_len: piece.len() as u32,
                width: 2,
            };
            let mut padded = piece.to_vec();
            padded.resize(plen as usize, 0);
            assert!(p.matches(&padded), "piece {k}");
            padded[0] ^= 1;
            assert!(!p.matches(&padded), "piece {k} flipped");
        }
        // A file of one piece or less: its root is the tree of its own blocks.
        std::fs::write(&path, &data[..20_000]).unwrap();
        let one = hash_file(&path, 20_000, plen, None, &|_| {}).unwrap();
        assert!(one.layer.is_none());
        let p = PieceHash {
            root: one.root,
            data_len: 20_000,
            width: 2,
        };
        assert!(p.matches(&data[..20_000]));
        assert!(!p.matches(&data[..19_999]));
        // A file that is not the length it was listed with.
        assert!(hash_file(&path, 20_001, plen, None, &|_| {}).is_err());
    }
}
