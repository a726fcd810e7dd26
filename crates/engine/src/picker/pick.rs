//! Picking: which blocks a peer is asked for next. The free blocks of the pieces in flight first,
//! then a new piece (random for the first [`RANDOM_FIRST`], then by rank and rarity, or in
//! sequence), and in endgame one late block duplicated per call (see the module above for the
//! rules and their reasons).

use super::*;

/// How a pick asks a peer for blocks: when, at what pace the peer sends (zero: not known), and how
/// many of its requests come before the first block picked in this step.
#[derive(Clone, Copy)]
pub(super) struct Asking {
    pub(super) now: Instant,
    pub(super) pace: Duration,
    pub(super) queued: usize,
    /// The peer may be the one to fill a suspect piece (not while it is snubbed).
    pub(super) suspect_ok: bool,
}

impl Asking {
    /// When the `i`-th block picked in this step should have come: once the requests ahead of it
    /// and itself came at the peer's pace (within [`ENDGAME_DUE_MOST`]).
    pub(super) fn due(&self, i: usize) -> Instant {
        let ahead = (self.queued + i + 1).min(u32::MAX as usize) as u32;
        self.now + self.pace.saturating_mul(ahead).min(ENDGAME_DUE_MOST)
    }
}

impl Picker {
    /// Picks up to `n` blocks for `peer`, which has the pieces in `has` and `outstanding` requests
    /// of ours not yet answered, appending them to `out`. Returns the number picked. The peer's
    /// pieces must be counted in the availability ([`Picker::add_availability`], [`Picker::add_have`]):
    /// rarest first starts only pieces some connected peer is counted as having.
    pub fn pick(
        &mut self,
        peer: PeerKey,
        has: &Bitfield,
        outstanding: usize,
        n: usize,
        out: &mut Vec<BlockRef>,
    ) -> usize {
        self.pick_paced(peer, has, outstanding, n, Duration::ZERO, true, out)
    }

    /// [`Picker::pick`] for a peer that sends us a block every `pace` (zero when not known yet): a
    /// block picked now is due once the `outstanding` before it and those picked ahead of it in
    /// this call have come at that pace, and endgame does not duplicate it before that.
    /// `suspect_ok`: the peer may become the one peer to fill a suspect piece; a snubbed peer may
    /// not (the piece would wait on it, out of endgame's reach, until it is snubbed again).
    #[allow(clippy::too_many_arguments)]
    pub fn pick_paced(
        &mut self,
        peer: PeerKey,
        has: &Bitfield,
        outstanding: usize,
        n: usize,
        pace: Duration,
        suspect_ok: bool,
        out: &mut Vec<BlockRef>,
    ) -> usize {
        let start = out.len();
        let now = Instant::now();
        let asking = |queued: usize| Asking {
            now,
            pace,
            queued: outstanding + queued,
            suspect_ok,
        };
        // 1. Blocks of pieces already in flight, oldest piece first.
        for k in 0..self.in_flight.len() {
            if out.len() - start >= n {
                return n;
            }
            let h = self.heads[k];
            if h.free > 0 && has.get(h.index as usize) {
                let a = asking(out.len() - start);
                self.take_free(k, peer, has, n - (out.len() - start), a, out);
            }
        }
        // 2. New pieces, rarest first. A peer that can help with no piece in flight may go past the
        // budget by half, so a swarm of peers with different pieces does not stall.
        while out.len() - start < n {
            if !self.has_room(out.len() == start, has) {
                return out.len() - start;
            }
            let Some(index) = self.choose_new(has) else {
                break;
            };
            self.start_piece(index);
            let k = self.in_flight.len() - 1;
            let a = asking(out.len() - start);
            self.take_free(k, peer, has, n - (out.len() - start), a, out);
        }
        // 3. Endgame: every remaining block is requested; an idle peer duplicates one of them.
        if out.len() == start && n > 0 && outstanding < ENDGAME_IDLE && self.in_endgame() {
            if let Some(b) = self.endgame_block(peer, has) {
                out.push(b);
            }
        }
        out.len() - start
    }

    /// [`Picker::pick`] for a source best asked for long runs of adjacent bytes (a web seed: one
    /// HTTP range request per run, however many pieces it spans). The run is built around the piece
    /// a pick would start (highest rank, then rarest first, or the lowest index in sequential mode):
    /// back over the pieces before it and on through those after it that may be started (missing,
    /// of the same rank or higher, held by the peer, within the buffer budget), up to `n` blocks,
    /// so it covers the stretch of such pieces it lies in rather than splitting it. When no new
    /// piece may be started, it picks as [`Picker::pick`] does (free blocks of pieces in flight,
    /// endgame).
    pub fn pick_run(
        &mut self,
        peer: PeerKey,
        has: &Bitfield,
        outstanding: usize,
        n: usize,
        out: &mut Vec<BlockRef>,
    ) -> usize {
        let start = out.len();
        let first = if n > 0 && self.has_room(true, has) {
            self.choose_new(has)
        } else {
            None
        };
        let Some(first) = first else {
            return self.pick(peer, has, outstanding, n, out);
        };
        let rank = self.ranks[first as usize];
        let startable = |p: &Self, i: usize| {
            p.states[i] == PieceState::Missing && p.ranks[i] >= rank && has.get(i)
        };
        // Back from the chosen piece, as far as `n` blocks reach.
        let mut i = first as usize;
        let mut blocks = self.geo.blocks_in(first) as usize;
        while i > 0 && startable(self, i - 1) {
            blocks += self.geo.blocks_in(i as u32 - 1) as usize;
            if blocks > n {
                break;
            }
            i -= 1;
        }
        let now = Instant::now();
        loop {
            self.start_piece(i as u32);
            let k = self.in_flight.len() - 1;
            let a = Asking {
                now,
                pace: Duration::ZERO,
                queued: outstanding + (out.len() - start),
                suspect_ok: true,
            };
            self.take_free(k, peer, has, n - (out.len() - start), a, out);
            i += 1;
            let goes_on = out.len() - start < n
                && i < self.states.len()
                && startable(self, i)
                && self.has_room(false, has);
            if !goes_on {
                return out.len() - start;
            }
        }
    }

    /// Whether the buffer budget lets another piece start: it does while the pieces in flight or
    /// hashing stay within `max_in_flight_bytes`; for a peer given nothing yet in this pick
    /// (`nothing_yet`) that shares no piece in flight, up to half as far again, so a swarm of peers
    /// with different pieces does not stall.
    pub(super) fn has_room(&self, nothing_yet: bool, has: &Bitfield) -> bool {
        let buffered = self.buffered_pieces() as u64 * self.geo.piece_length;
        buffered + self.geo.piece_length <= self.max_in_flight_bytes
            || (nothing_yet
                && 2 * buffered < 3 * self.max_in_flight_bytes
                && !self.shares_in_flight(has))
    }

    /// Whether a peer with `has` holds a piece in flight that any peer may fill.
    pub(super) fn shares_in_flight(&self, has: &Bitfield) -> bool {
        self.in_flight
            .iter()
            .any(|f| has.get(f.index as usize) && f.exclusive.is_none())
    }

    /// Whether every remaining block is requested: no piece left to start that a connected peer has,
    /// and no free block in a piece in flight that anyone may fill.
    pub(super) fn in_endgame(&self) -> bool {
        let free_block =
            self.in_flight.iter().zip(&self.heads).any(|(f, h)| {
                h.free > 0 && !(self.suspect[f.index as usize] && f.exclusive.is_some())
            });
        if free_block {
            return false;
        }
        self.missing == 0 || self.by_rank.iter().all(|o| o.available() == 0)
    }

    /// The endgame duplicate for `peer`, in a piece it has, outside suspect pieces: a block of another
    /// peer's past its due time (see the module docs), the least duplicated, the longest overdue.
    /// Blocks not yet due are most likely on their way already (queued at the sender or in its
    /// socket, where a cancel may not reach them), and a copy would only arrive twice. Recorded as an
    /// extra requester.
    pub(super) fn endgame_block(&mut self, peer: PeerKey, has: &Bitfield) -> Option<BlockRef> {
        let now = Instant::now();
        let mut best: Option<(usize, Instant, usize, u32)> = None;
        for (k, f) in self.in_flight.iter().enumerate() {
            if !has.get(f.index as usize) || f.exclusive.is_some() {
                continue;
            }
            for (b, st) in f.blocks.iter().enumerate() {
                let b = b as u32;
                let Block::Requested(owner) = *st else {
                    continue;
                };
                let due = f.due[b as usize];
                if owner == peer
                    || now < due
                    || now.saturating_duration_since(f.asked[b as usize]) < self.endgame_late
                    || f.extra.contains(&(b, peer))
                {
                    continue;
                }
                let dups = f.extra.iter().filter(|(x, _)| *x == b).count();
                if dups < ENDGAME_DUPLICATES && best.is_none_or(|x| (dups, due) < (x.0, x.1)) {
                    best = Some((dups, due, k, b));
                }
            }
        }
        let (_, _, k, b) = best?;
        let f = &mut self.in_flight[k];
        f.extra.push((b, peer));
        Some(BlockRef {
            index: f.index,
            begin: b * BLOCK_SIZE,
            length: self.geo.block_len(f.index, b),
        })
    }

    pub(super) fn take_free(
        &mut self,
        k: usize,
        peer: PeerKey,
        has: &Bitfield,
        n: usize,
        asking: Asking,
        out: &mut Vec<BlockRef>,
    ) {
        let geo = self.geo;
        let f = &mut self.in_flight[k];
        let head = &mut self.heads[k];
        debug_assert_eq!(
            head.free as usize,
            f.blocks.iter().filter(|b| **b == Block::Free).count()
        );
        if !has.get(f.index as usize) {
            return;
        }
        if self.suspect[f.index as usize] {
            match f.exclusive {
                None if f.received == f.padding && asking.suspect_ok => f.exclusive = Some(peer),
                Some(p) if p == peer => {}
                _ => return,
            }
        }
        let mut taken = 0;
        for (b, st) in f.blocks.iter_mut().enumerate() {
            if taken >= n {
                break;
            }
            if *st == Block::Free {
                *st = Block::Requested(peer);
                f.asked[b] = asking.now;
                f.due[b] = asking.due(taken);
                out.push(BlockRef {
                    index: f.index,
                    begin: b as u32 * BLOCK_SIZE,
                    length: geo.block_len(f.index, b as u32),
                });
                taken += 1;
            }
        }
        head.free -= taken as u32;
    }

    pub(super) fn choose_new(&self, has: &Bitfield) -> Option<u32> {
        if !self.sequential && self.have.count() >= RANDOM_FIRST {
            // Rarest first: the first piece of the highest rank's order that the peer has.
            return self
                .by_rank
                .iter()
                .find_map(|o| o.rarest_first().find(|&i| has.get(i as usize)));
        }
        // Sequential (its place in the sequence) or the random first pieces (a per-piece random
        // salt): a walk over the peer's pieces, highest rank first.
        let mut best: Option<(u8, u32, usize)> = None;
        for i in has.ones() {
            if self.states[i] != PieceState::Missing || self.ranks[i] == 0 {
                continue;
            }
            let key = (
                3 - self.ranks[i],
                if self.sequential {
                    self.place_in_sequence(i)
                } else {
                    self.salt[i]
                },
                i,
            );
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        best.map(|(_, _, i)| i as u32)
    }

    pub(super) fn start_piece(&mut self, index: u32) {
        let plen = self.geo.piece_length as usize;
        let mut buf = self.pool.pop().unwrap_or_else(|| PieceBuf::zeroed(plen));
        self.missing -= 1;
        self.leave_order(index as usize);
        self.states[index as usize] = PieceState::InFlight;
        let blocks = self.geo.blocks_in(index) as usize;
        let mut states = vec![Block::Free; blocks];
        let mut padding = 0;
        for b in self
            .padding
            .get(&index)
            .into_iter()
            .flatten()
            .cloned()
            .flatten()
        {
            states[b as usize] = Block::Padding;
            let at = (b * BLOCK_SIZE) as usize;
            buf[at..at + self.geo.block_len(index, b) as usize].fill(0);
            padding += 1;
        }
        self.in_flight.push(InFlight {
            index,
            buf,
            blocks: states,
            asked: vec![Instant::now(); blocks],
            due: vec![Instant::now(); blocks],
            received: padding,
            padding,
            exclusive: None,
            extra: Vec::new(),
        });
        self.heads.push(Head {
            index,
            free: blocks as u32 - padding,
        });
    }
}
