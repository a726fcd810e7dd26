//! BEP 52's hash requests: what a request asks for ([`HashRange`]), a v2 torrent's answer from its
//! piece layers ([`V2::hashes`], each file's tree above them built once), an answer checked against
//! its file's root ([`check_hashes`]), and what a bare info dictionary lacks and the requests that
//! fetch it ([`LayersNeeded`]).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::merkle::{empty_piece_root, merkle_root, parent, Hash256, BLOCK};
use super::{FileTree, PieceHash, V2};

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

/// What a v2 info dictionary fetched alone (a magnet link's) lacks: the piece layers of its files
/// larger than one piece, which peers give on request (BEP 52). A v2-only torrent cannot check a
/// piece without them; a hybrid can (by SHA-1), and needs them only to check its v2 side too and to
/// answer its v2 peers' hash requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayersNeeded {
    pub piece_length: u64,
    pub piece_count: usize,
    pub total_length: u64,
    pub files: Vec<FileTree>,
    /// A hybrid's dictionary (v1 and v2 in one).
    pub hybrid: bool,
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
        let mut layers = Vec::new();
        let requests = self.requests();
        for f in &self.files {
            let mut layer: Vec<Hash256> = Vec::new();
            for r in requests.iter().filter(|r| r.root == f.root) {
                layer.extend(answers.get(r)?);
            }
            layer.truncate(f.piece_count as usize);
            layers.push((f.root, layer));
        }
        Some(piece_layers_value(layers))
    }

    /// The `piece layers` value hashed from the torrent's own data, for a torrent whose data is
    /// whole (checked by SHA-1: a hybrid's): `piece(i)` reads piece `i` into the buffer (its whole
    /// length, padding included). Each file's layer must give the file's root: `Ok(Err(first))`
    /// when one does not (the data is not what the v2 side describes), `first` the file's first
    /// piece. Reads each piece of the files lacking a layer once.
    pub fn derive<E>(
        &self,
        mut piece: impl FnMut(u32, &mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Result<Vec<u8>, u32>, E> {
        let per_piece = self.piece_length / BLOCK;
        let mut buf = Vec::new();
        let mut layers = Vec::new();
        for f in &self.files {
            let mut layer = Vec::with_capacity(f.piece_count as usize);
            for k in 0..f.piece_count {
                piece(f.first_piece + k, &mut buf)?;
                let data_len = self
                    .piece_length
                    .min(f.length - u64::from(k) * self.piece_length);
                let Some(data) = buf.get(..data_len as usize) else {
                    return Ok(Err(f.first_piece));
                };
                let mut h = super::BlockHasher::default();
                h.update(data);
                layer.push(merkle_root(&h.finish(), per_piece, [0; 32]));
            }
            let width = u64::from(f.piece_count).next_power_of_two();
            if merkle_root(&layer, width, empty_piece_root(self.piece_length)) != f.root {
                return Ok(Err(f.first_piece));
            }
            layers.push((f.root, layer));
        }
        Ok(Ok(piece_layers_value(layers)))
    }
}

/// The bencoded `piece layers` dictionary of `layers` (file root, its piece layer): sorted by
/// root, each root once.
fn piece_layers_value(mut layers: Vec<(Hash256, Vec<Hash256>)>) -> Vec<u8> {
    layers.sort();
    layers.dedup();
    let mut w = crate::bencode::Writer::default();
    w.begin_dict();
    for (root, layer) in &layers {
        w.bytes(root).bytes(&layer.concat());
    }
    w.end();
    w.buf
}

/// A cache of built trees, one slot per file: not part of what a [`V2`] is (equal whatever is
/// built, a clone starts empty).
#[derive(Default)]
pub(super) struct Built(Vec<OnceLock<Vec<Vec<Hash256>>>>);

impl Built {
    pub(super) fn new(files: usize) -> Self {
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

#[cfg(test)]
mod tests {
    use super::super::merkle::BlockHasher;
    use super::*;
    use crate::bencode::Writer;
    use crate::metainfo::{create_torrent, CreateOptions, Metainfo};

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
        assert!(!needed.hybrid);
        // A hybrid's bare dictionary lacks the same layers, and with them has its v2 side whole.
        let opts_hybrid = opts.clone().with_format(crate::metainfo::Format::Hybrid);
        let hybrid = create_torrent(&top, &opts_hybrid, &|_, _| {}).unwrap();
        let needed_hybrid = crate::metainfo::layers_needed(hybrid.info_bytes())
            .unwrap()
            .expect("a hybrid needs the same layers");
        assert!(needed_hybrid.hybrid);
        assert_eq!(needed_hybrid.files, needed.files);
        assert_eq!(needed_hybrid.requests(), requests);
        let bare = Metainfo::from_bytes(&{
            let mut w = Writer::default();
            w.begin_dict().bytes(b"info").raw(hybrid.info_bytes()).end();
            w.buf
        })
        .unwrap();
        assert!(bare.info.merkle().is_none());
        let mut w = Writer::default();
        w.begin_dict().bytes(b"info").raw(hybrid.info_bytes());
        let layers_hybrid = needed_hybrid.piece_layers(&answers).unwrap();
        w.bytes(b"piece layers").raw(&layers_hybrid).end();
        let rebuilt = Metainfo::from_bytes(&w.buf).unwrap();
        assert_eq!(rebuilt.info.merkle(), whole.info.v2.as_ref());
        assert_eq!(rebuilt.info_hash, hybrid.info_hash);
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

    /// A hybrid's dictionary alone (no layers): the layers derived from its data are the ones it was
    /// made with, and give back the whole torrent; data that is not what the v2 side describes
    /// derives nothing, naming the file.
    #[test]
    fn a_bare_hybrid_derives_its_layers_from_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        std::fs::create_dir_all(&top).unwrap();
        // Two files of several pieces (the second ends short of a block), one of less than a piece.
        let files: [(&str, usize); 3] = [("a", 5 * 32768), ("b", 3 * 32768 + 100), ("c", 5000)];
        for (i, (name, len)) in files.iter().enumerate() {
            let data: Vec<u8> = (0..*len).map(|k| (k * 7 + i) as u8).collect();
            std::fs::write(top.join(name), data).unwrap();
        }
        let opts = CreateOptions {
            piece_length: Some(32768),
            hybrid: true,
            ..Default::default()
        };
        let full = create_torrent(&top, &opts, &|_, _| {}).unwrap();
        let mut w = Writer::default();
        w.begin_dict().bytes(b"info").raw(full.info_bytes()).end();
        let bare = Metainfo::from_bytes(&w.buf).unwrap();
        assert!(bare.info.merkle().is_none());
        let needed = crate::metainfo::layers_needed(bare.info_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(needed.files.len(), 2, "the small file has no layer");

        // The piece space: each file from a piece boundary, zeros between.
        let plen = 32768usize;
        let mut space = vec![0u8; bare.info.piece_count() * plen];
        for f in bare.info.files.iter().filter(|f| !f.padding) {
            let data = std::fs::read(dir.path().join(&f.path)).unwrap();
            space[f.offset as usize..f.offset as usize + data.len()].copy_from_slice(&data);
        }
        let read = |space: &[u8]| {
            let space = space.to_vec();
            move |i: u32, buf: &mut Vec<u8>| -> Result<(), ()> {
                buf.clear();
                buf.extend_from_slice(&space[i as usize * plen..(i as usize + 1) * plen]);
                Ok(())
            }
        };
        let layers = needed.derive(read(&space)).unwrap().unwrap();
        let whole = crate::metainfo::set_piece_layers(&bare, &layers).unwrap();
        let whole = Metainfo::from_bytes(&whole).unwrap();
        assert_eq!(whole.info_hash, full.info_hash);
        assert_eq!(whole.info.merkle(), full.info.merkle());

        // One byte of the second file changed: its layer does not give its root.
        let b_first = bare
            .info
            .files
            .iter()
            .find(|f| f.path.ends_with("b"))
            .unwrap()
            .offset;
        space[b_first as usize + 40_000] ^= 1;
        let refused = needed.derive(read(&space)).unwrap();
        assert_eq!(refused, Err((b_first / plen as u64) as u32));
        // Layers that do not give their roots are refused by the edit too.
        let mut wrong = layers.clone();
        let last = wrong.len() - 2;
        wrong[last] ^= 1;
        assert!(crate::metainfo::set_piece_layers(&bare, &wrong).is_err());
    }
}
