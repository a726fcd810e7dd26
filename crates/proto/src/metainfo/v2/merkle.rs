//! SHA-256 merkle trees over 16 KiB blocks (BEP 52): the leaves of a stream of bytes, a root over a
//! padded layer, and a file hashed into its tree (root and piece layer) for creation.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use crate::metainfo::MetainfoError;

/// The leaf size of every v2 merkle tree.
pub const BLOCK: u64 = 16 << 10;

/// A SHA-256 digest.
pub type Hash256 = [u8; 32];

/// The SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash256 {
    Sha256::digest(data).into()
}

/// A whole SHA-256 info-hash cut to the 20 bytes that handshakes, trackers and the DHT carry
/// (BEP 52).
pub fn truncated(full: &Hash256) -> crate::types::InfoHash {
    crate::types::InfoHash(full[..20].try_into().expect("32 bytes"))
}

pub(super) fn parent(left: &Hash256, right: &Hash256) -> Hash256 {
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
pub(super) fn empty_piece_root(piece_length: u64) -> Hash256 {
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
    use super::super::PieceHash;
    use super::*;

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
