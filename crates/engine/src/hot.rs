//! Hot pieces: copies of the pieces a torrent verified last, so the uploads that follow a `have` are
//! served from memory rather than read back from disk.
//!
//! In a swarm, the pieces peers ask us for are mostly the ones we announced moments ago. Verified
//! pieces are written with direct I/O (no page-cache copy, see [`super::storage`]), so without these
//! copies each of those uploads would read the piece back from the device.
//!
//! - A copy is kept by the disk writer after the piece's write succeeded ([`HotPieces::keep`]): not a
//!   copy of the bytes but the piece's own buffer, which the picker would otherwise recycle; the
//!   oldest copy's buffer goes back to the picker in its place, past the torrent's share. A withdrawn
//!   piece's copy is dropped ([`HotPieces::forget`]).
//! - Bounded twice: [`PER_TORRENT`] bytes per torrent, and the session's `hot_piece_bytes` over all
//!   torrents ([`HotBudget`]): a torrent that finds the session's budget spent keeps no new copy
//!   until its own are dropped (pause, removal, or its oldest making room).
//! - The mutex is a leaf lock, held for a lookup and a copy of at most one upload batch.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::piece_buf::PieceBuf;

/// The most one torrent keeps in copies (at least one piece).
pub const PER_TORRENT: u64 = 16 << 20;

/// The session's bytes held in hot copies, against its budget.
#[derive(Debug)]
pub(crate) struct HotBudget {
    used: AtomicU64,
    cap: u64,
}

impl HotBudget {
    pub fn new(cap: u64) -> Arc<Self> {
        Arc::new(HotBudget {
            used: AtomicU64::new(0),
            cap,
        })
    }

    fn reserve(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u + n <= self.cap).then_some(u + n)
            })
            .is_ok()
    }

    fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    #[cfg(test)]
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// One torrent's hot copies: by piece, and their order (oldest first).
#[derive(Default)]
struct Copies {
    by_piece: HashMap<u32, HotCopy>,
    order: VecDeque<u32>,
}

/// A verified piece's buffer and the piece's length (a buffer is a whole piece long; the bytes past
/// a short last piece's end are not its own).
struct HotCopy {
    buf: PieceBuf,
    len: usize,
}

/// One torrent's hot copies.
pub(crate) struct HotPieces {
    copies: Mutex<Copies>,
    budget: Arc<HotBudget>,
    /// How many copies this torrent may hold.
    max: usize,
}

impl HotPieces {
    pub fn new(budget: Arc<HotBudget>, piece_length: u64) -> Self {
        HotPieces {
            copies: Mutex::new(Copies::default()),
            budget,
            max: (PER_TORRENT / piece_length.max(1)).max(1) as usize,
        }
    }

    /// Keeps verified piece `index` (its first `len` bytes of `buf`) for the uploads that follow,
    /// dropping the oldest past the torrent's share. Returns a buffer for the picker to recycle: the
    /// one that made room (or the piece's earlier copy), or `buf` itself when the session's budget is
    /// spent; `None` when the torrent's share still had room.
    pub fn keep(&self, index: u32, buf: PieceBuf, len: usize) -> Option<PieceBuf> {
        let mut c = self.copies.lock();
        let spare = match c.by_piece.remove(&index) {
            // A piece verified again (withdrawn, fetched anew): its earlier copy makes way.
            Some(old) => {
                c.order.retain(|&i| i != index);
                Some(old.buf)
            }
            None if c.order.len() >= self.max => {
                let oldest = c.order.pop_front().expect("max is at least 1");
                c.by_piece.remove(&oldest).map(|old| old.buf)
            }
            None => None,
        };
        if let Some(old) = &spare {
            self.budget.release(old.len() as u64);
        }
        if !self.budget.reserve(buf.len() as u64) {
            return Some(buf);
        }
        c.by_piece.insert(index, HotCopy { buf, len });
        c.order.push_back(index);
        spare
    }

    /// Drops the copy of piece `index` (its data on disk is being taken back).
    pub fn forget(&self, index: u32) {
        let mut c = self.copies.lock();
        if let Some(copy) = c.by_piece.remove(&index) {
            c.order.retain(|&i| i != index);
            self.budget.release(copy.buf.len() as u64);
        }
    }

    /// Copies `dst.len()` bytes of piece `index` from `begin` into `dst`; false when the piece has no
    /// copy here. One lookup per block: the sender asks for each block of an upload batch.
    pub fn read(&self, index: u32, begin: usize, dst: &mut [u8]) -> bool {
        let c = self.copies.lock();
        match c.by_piece.get(&index) {
            Some(copy) if begin + dst.len() <= copy.len => {
                dst.copy_from_slice(&copy.buf[begin..begin + dst.len()]);
                true
            }
            _ => false,
        }
    }
}

impl Drop for HotPieces {
    fn drop(&mut self) {
        let held: u64 = self
            .copies
            .get_mut()
            .by_piece
            .values()
            .map(|copy| copy.buf.len() as u64)
            .sum();
        self.budget.release(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(fill: u8, len: usize) -> PieceBuf {
        let mut b = PieceBuf::zeroed(len);
        b.fill(fill);
        b
    }

    #[test]
    fn copies_are_served_bounded_per_torrent_and_per_session() {
        let budget = HotBudget::new(3 * 1024);
        // Pieces of 1 KiB: this torrent may hold PER_TORRENT worth, the session only 3 KiB.
        let a = HotPieces::new(budget.clone(), 1024);
        for i in 0..3 {
            assert!(a.keep(i as u32, piece(i, 1024), 1024).is_none());
        }
        assert_eq!(budget.used(), 3 * 1024);
        let mut dst = [0u8; 16];
        assert!(a.read(1, 100, &mut dst));
        assert_eq!(dst, [1u8; 16]);
        // The session's budget is spent: a fourth copy is not kept, nor one of another torrent.
        let back = a
            .keep(3, piece(3, 1024), 1024)
            .expect("not kept: its buffer comes back");
        assert_eq!(back[0], 3);
        assert!(!a.read(3, 0, &mut dst));
        let b = HotPieces::new(budget.clone(), 1024);
        assert!(b.keep(9, piece(9, 1024), 1024).is_some());
        assert!(!b.read(9, 0, &mut dst));
        // Forgetting one makes room; dropping a torrent gives its share back.
        a.forget(0);
        assert!(!a.read(0, 0, &mut dst));
        assert!(b.keep(9, piece(9, 1024), 1024).is_none());
        assert!(b.read(9, 0, &mut dst));
        assert_eq!(dst, [9u8; 16]);
        drop(a);
        assert_eq!(budget.used(), 1024);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_torrent_keeps_its_newest_pieces_within_its_share() {
        let budget = HotBudget::new(u64::MAX);
        let len = PER_TORRENT / 4;
        let t = HotPieces::new(budget.clone(), len);
        for i in 0..6u32 {
            let back = t.keep(i, piece(i as u8, len as usize), len as usize);
            // Past its share, the oldest copy's buffer is handed back for reuse.
            assert_eq!(back.map(|b| b[0] as u32), i.checked_sub(4));
        }
        let mut dst = [0u8; 8];
        assert!(!t.read(0, 0, &mut dst) && !t.read(1, 0, &mut dst));
        for i in 2..6u32 {
            assert!(t.read(i, 8, &mut dst));
            assert_eq!(dst, [i as u8; 8]);
        }
        assert_eq!(budget.used(), 4 * len);
        // A read past the piece's end is not served from the copy.
        let mut big = vec![0u8; len as usize];
        assert!(!t.read(5, 1, &mut big));
        // A short last piece in a whole piece's buffer: the bytes past its end are not served.
        t.keep(6, piece(6, len as usize), 100);
        assert!(t.read(6, 92, &mut dst));
        assert!(!t.read(6, 93, &mut dst));
    }
}
