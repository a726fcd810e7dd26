//! What comes back: a block received (stored, the other requesters cancelled, the piece handed over
//! for hashing with its last block), a request given back, and the verdict of a piece's hash (or of
//! its write) turning it `Have` or `Missing` again (see the module above for the piece states).

use super::*;

impl Picker {
    /// Stores a block `peer` sent. The caller has checked that it asked this peer for it.
    pub fn on_block(&mut self, peer: PeerKey, b: BlockRef, data: &[u8]) -> BlockResult {
        let Some(k) = self.find(b.index) else {
            return BlockResult::NotNeeded;
        };
        let blk = b.begin / BLOCK_SIZE;
        let f = &mut self.in_flight[k];
        if !b.begin.is_multiple_of(BLOCK_SIZE)
            || blk as usize >= f.blocks.len()
            || data.len() as u32 != self.geo.block_len(b.index, blk)
        {
            return BlockResult::NotNeeded;
        }
        if let Some(x) = f.exclusive {
            if x != peer {
                return BlockResult::NotNeeded;
            }
        }
        let mut cancel = Vec::new();
        match f.blocks[blk as usize] {
            Block::Received(_) | Block::Padding => return BlockResult::NotNeeded,
            Block::Requested(owner) if owner != peer => cancel.push(owner),
            _ => {}
        }
        f.extra.retain(|&(x, p)| {
            if x == blk {
                if p != peer {
                    cancel.push(p);
                }
                false
            } else {
                true
            }
        });
        let at = b.begin as usize;
        f.buf[at..at + data.len()].copy_from_slice(data);
        if f.blocks[blk as usize] == Block::Free {
            self.heads[k].free -= 1;
        }
        f.blocks[blk as usize] = Block::Received(peer);
        f.received += 1;
        if f.received as usize == f.blocks.len() {
            let f = self.in_flight.remove(k);
            self.heads.remove(k);
            self.states[f.index as usize] = PieceState::Hashing;
            self.hashing += 1;
            let contributors = f
                .blocks
                .iter()
                .filter_map(|b| match b {
                    Block::Received(p) => Some(*p),
                    _ => None,
                })
                .collect();
            return BlockResult::Complete {
                index: f.index,
                buf: f.buf,
                contributors,
                cancel,
            };
        }
        BlockResult::Stored { cancel }
    }

    /// `peer` no longer has block `b` outstanding (choked, rejected, timed out, gone).
    pub fn release(&mut self, peer: PeerKey, b: BlockRef) {
        let Some(k) = self.find(b.index) else {
            return;
        };
        let blk = b.begin / BLOCK_SIZE;
        let f = &mut self.in_flight[k];
        let Some(st) = f.blocks.get_mut(blk as usize) else {
            return;
        };
        if *st == Block::Requested(peer) {
            match f.extra.iter().position(|&(x, _)| x == blk) {
                Some(pos) => {
                    *st = Block::Requested(f.extra.swap_remove(pos).1);
                    let now = Instant::now();
                    (f.asked[blk as usize], f.due[blk as usize]) = (now, now);
                }
                None => {
                    *st = Block::Free;
                    self.heads[k].free += 1;
                }
            }
        } else {
            f.extra.retain(|&(x, p)| !(x == blk && p == peer));
        }
        if f.exclusive == Some(peer) && !f.blocks.contains(&Block::Requested(peer)) {
            // The one peer allowed to fill a suspect piece left: start it over for the next one.
            f.exclusive = None;
            f.received = f.padding;
            for s in f.blocks.iter_mut().filter(|s| **s != Block::Padding) {
                *s = Block::Free;
            }
            self.heads[k].free = f.blocks.len() as u32 - f.padding;
        }
    }

    /// Records the result of hashing piece `index` and takes a buffer back for the pool (its own; for
    /// a good piece, the one the hot copies gave back for it, if any).
    pub fn on_hash_done(
        &mut self,
        index: u32,
        ok: bool,
        buf: Option<PieceBuf>,
        contributors: &[PeerKey],
    ) -> HashVerdict {
        self.hashing_done(buf);
        let i = index as usize;
        if ok {
            self.states[i] = PieceState::Have;
            self.have.set(i);
            self.settled.set(i);
            self.suspect[i] = false;
            return HashVerdict::Good;
        }
        self.states[i] = PieceState::Missing;
        self.missing += 1;
        self.enter_order(i);
        match contributors.first() {
            Some(&p) if contributors.iter().all(|&c| c == p) => HashVerdict::BadFrom(p),
            _ => {
                self.suspect[i] = true;
                HashVerdict::BadMixed
            }
        }
    }

    /// A good piece that could not be written: missing again. Not the peers' fault, so neither
    /// suspect nor blamed (the piece's suspect state stays what it was).
    pub fn on_write_failed(&mut self, index: u32, buf: PieceBuf) {
        self.hashing_done(Some(buf));
        self.states[index as usize] = PieceState::Missing;
        self.missing += 1;
        self.enter_order(index as usize);
    }

    /// A piece left `Hashing`: a buffer (its own, or one the hot copies gave back for it) goes back to
    /// the pool while the pool is under budget.
    pub(super) fn hashing_done(&mut self, buf: Option<PieceBuf>) {
        self.hashing = self.hashing.saturating_sub(1);
        let keep = (self.max_in_flight_bytes / self.geo.piece_length) as usize;
        if let Some(buf) = buf {
            if self.pool.len() < keep && buf.len() == self.geo.piece_length as usize {
                self.pool.push(buf);
            }
        }
    }
}
