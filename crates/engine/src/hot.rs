//! Hot pieces: copies of the pieces a torrent verified last, so the uploads that follow a `have` are
//! served from memory rather than read back from disk.
//!
//! In a swarm, the pieces peers ask us for are mostly the ones we announced moments ago. Verified
//! pieces are written with direct I/O (no page-cache copy, see [`super::storage`]), so without these
//! copies each of those uploads would read the piece back from the device.
//!
//! - A copy is made by the disk writer after the piece's write succeeded ([`HotPieces::keep`]); the
//!   oldest copy is dropped past the torrent's share. A withdrawn piece's copy is dropped
//!   ([`HotPieces::forget`]).
//! - Bounded twice: [`PER_TORRENT`] bytes per torrent, and the session's `hot_piece_bytes` over all
//!   torrents ([`HotBudget`]): a torrent that finds the session's budget spent keeps no new copy
//!   until its own are dropped (pause, removal, or its oldest making room).
//! - The mutex is a leaf lock, held for a lookup and a copy of at most one upload batch.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

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
    by_piece: HashMap<u32, Box<[u8]>>,
    order: VecDeque<u32>,
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

    /// Keeps a copy of verified piece `index` (its bytes are `data`), dropping the oldest past the
    /// torrent's share; none when the session's budget is spent.
    pub fn keep(&self, index: u32, data: &[u8]) {
        let mut c = self.copies.lock();
        let old = match c.by_piece.remove(&index) {
            // A piece verified again (withdrawn, fetched anew): its copy is renewed in place.
            Some(buf) => {
                c.order.retain(|&i| i != index);
                Some(buf)
            }
            None if c.order.len() >= self.max => {
                let oldest = c.order.pop_front().expect("max is at least 1");
                c.by_piece.remove(&oldest)
            }
            None => None,
        };
        let buf = match old {
            Some(mut buf) if buf.len() == data.len() => {
                buf.copy_from_slice(data);
                buf
            }
            other => {
                if let Some(old) = other {
                    self.budget.release(old.len() as u64);
                }
                if !self.budget.reserve(data.len() as u64) {
                    return;
                }
                data.into()
            }
        };
        c.by_piece.insert(index, buf);
        c.order.push_back(index);
    }

    /// Drops the copy of piece `index` (its data on disk is being taken back).
    pub fn forget(&self, index: u32) {
        let mut c = self.copies.lock();
        if let Some(buf) = c.by_piece.remove(&index) {
            c.order.retain(|&i| i != index);
            self.budget.release(buf.len() as u64);
        }
    }

    /// Copies `dst.len()` bytes of piece `index` from `begin` into `dst`; false when the piece has no
    /// copy here. One lookup per block: the sender asks for each block of an upload batch.
    pub fn read(&self, index: u32, begin: usize, dst: &mut [u8]) -> bool {
        let c = self.copies.lock();
        match c.by_piece.get(&index) {
            Some(buf) if begin + dst.len() <= buf.len() => {
                dst.copy_from_slice(&buf[begin..begin + dst.len()]);
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
            .map(|b| b.len() as u64)
            .sum();
        self.budget.release(held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_served_bounded_per_torrent_and_per_session() {
        let budget = HotBudget::new(3 * 1024);
        // Pieces of 1 KiB: this torrent may hold PER_TORRENT worth, the session only 3 KiB.
        let a = HotPieces::new(budget.clone(), 1024);
        let piece = |i: u8| vec![i; 1024];
        for i in 0..3 {
            a.keep(i as u32, &piece(i));
        }
        assert_eq!(budget.used(), 3 * 1024);
        let mut dst = [0u8; 16];
        assert!(a.read(1, 100, &mut dst));
        assert_eq!(dst, [1u8; 16]);
        // The session's budget is spent: a fourth copy is not kept, nor one of another torrent.
        a.keep(3, &piece(3));
        assert!(!a.read(3, 0, &mut dst));
        let b = HotPieces::new(budget.clone(), 1024);
        b.keep(9, &piece(9));
        assert!(!b.read(9, 0, &mut dst));
        // Forgetting one makes room; dropping a torrent gives its share back.
        a.forget(0);
        assert!(!a.read(0, 0, &mut dst));
        b.keep(9, &piece(9));
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
            t.keep(i, &vec![i as u8; len as usize]);
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
    }
}
