//! Which block to ask which peer for next, and the assembly of pieces in memory. This file holds
//! the piece states, availability and ranks; the picking itself is in `pick`, what comes back
//! (blocks, requests given back, hash verdicts) in `blocks`, the availability buckets in `rarity`.
//!
//! Piece states (one per piece) and who changes them — always under the torrent's core lock:
//!
//! ```text
//!   Missing ──pick()──▶ InFlight ──last block, on_block()──▶ Hashing ──on_hash_done(ok)──▶ Have
//!      │                   │                                    │                          ▲
//!      │                   ▼                                    └─on_hash_done(bad)──▶ Missing
//!      │      blocks: Free ⇄ Requested(peer) ──▶ Received(peer)    (suspect if its blocks came
//!      │                                                            from several peers)
//!      └──mark_have(): found on disk by the data check when the torrent is added ─────────┘
//!                      (or by a re-check, `TorrentHandle::check`)
//!
//!   Have ──withdraw()──▶ Missing   its data on disk failed the hash when read for upload or re-checked
//! ```
//!
//! - An `InFlight` piece never goes back to `Missing`: a peer that leaves, is choked or rejects gives
//!   its blocks back one by one (`release`) and others finish the piece. Only when the one peer allowed
//!   to fill a suspect piece leaves do all its blocks, received ones included, go back to `Free`.
//! - A block is `Requested` by at most one peer, plus at most [`ENDGAME_DUPLICATES`] extra requesters in
//!   endgame. Endgame is global, not per peer: it holds only when every remaining block is requested
//!   (no `Missing` piece that a connected peer has, no `Free` block in a piece in flight). Then a peer
//!   with fewer than [`ENDGAME_IDLE`] requests of its own outstanding may duplicate one outstanding
//!   block per call, as libtorrent does: one that is late, the least duplicated, outside suspect
//!   pieces. A block is late once it was requested at least [`ENDGAME_LATE`] ago *and* its owner
//!   should have sent it by now: its place in the owner's queue at the owner's pace (the time one
//!   block takes from that peer, which its connection gives with each pick, [`Picker::pick_paced`]).
//!   A block deep in a busy peer's queue is on its way, not late; duplicating it would only bring it
//!   twice, since a cancel cannot recall what the sender has already taken from its queue. A block
//!   is due at most [`ENDGAME_DUE_MOST`] after its request, so a slow peer is not waited on. The
//!   first copy to arrive wins; the other requesters get cancels at once, which drop the copy from the
//!   sender's upload queue while it still waits there.
//! - A piece that failed its hash with blocks from several peers is *suspect*: its next download is
//!   exclusive to one peer, so a second failure names the culprit; a snubbed peer is never that one.
//!   A good piece the disk failed to write (`on_write_failed`) is missing again without blame: not
//!   suspect, nobody struck.
//! - Rarest first: a new piece is the one fewest connected peers have (ties broken at random); until
//!   [`RANDOM_FIRST`] pieces are complete it is simply a random one. The pieces that may be started
//!   (`Missing`, wanted) are kept in that order, one `rarity::Rarity` per rank, bucketed by
//!   availability: a `have` moves a piece one bucket in O(1), and a pick walks from the rarest piece
//!   to the first the peer has, never over the whole torrent. Piece priorities
//!   ([`Picker::set_ranks`], from the files' priorities, [`crate::selection`]) come before that: a
//!   higher-ranked piece is always started first, and a piece of rank 0 (only skipped files) never.
//!   In sequential mode ([`Picker::set_sequential`]) the lowest index comes first instead of the
//!   rarest (still after rank), for streaming; or, from a later start
//!   ([`Picker::set_sequential_from`], a player that seeks), the pieces from there to the last, then
//!   the first ones.
//! - "Done" ([`Picker::is_done`]) is every wanted piece `Have`; "complete" ([`Picker::is_complete`])
//!   every piece; done and not complete, a partial seed ([`Picker::is_partial_seed`], BEP 21).
//! - Bounded: piece buffers in flight or hashing stay under `max_in_flight_bytes`, at least two pieces
//!   (a peer that shares no piece in flight may go half as far again); buffers are recycled through a
//!   small pool.
//! - Padding (BEP 47 pad files: a hybrid's, a v2 torrent's between files) is never asked for: a
//!   block wholly inside it is `Padding` from the moment its piece starts, zeros in the buffer
//!   (what the hash covers), and counts as received; a block partly in it is asked for whole (the
//!   sender reads zeros there). A piece made only of padding is left to the usual way.
//! - Cheap with hundreds of peers: a pick first offers the free blocks of the pieces in flight, and
//!   each of those has a small head (index, free blocks) kept apart from its state, so the walk skips
//!   pieces whose blocks are all asked for without touching them.

use std::collections::HashMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use rand::Rng;

use super::piece_buf::PieceBuf;
use btorrent_proto::metainfo::Info;
use btorrent_proto::wire::{Bitfield, BlockRef, Geometry, BLOCK_SIZE};
use rarity::Rarity;

/// Identifies one peer connection for the life of a torrent.
pub type PeerKey = u64;

/// Pieces picked at random before rarest-first takes over.
pub const RANDOM_FIRST: usize = 4;
/// Extra requesters of one block in endgame.
pub const ENDGAME_DUPLICATES: usize = 2;
/// In endgame a peer duplicates a block only while it has fewer requests than this outstanding: a busy
/// peer's own queue keeps it working, and a duplicate queued behind it would rarely win.
pub const ENDGAME_IDLE: usize = 2;
/// In endgame a block is duplicated only once it has been requested this long: until then its copy is
/// most likely on its way, and a second one would only arrive twice.
pub const ENDGAME_LATE: Duration = Duration::from_secs(1);
/// A block is due at most this long after it was requested, however long its owner's queue: the
/// last blocks held by a slow peer are duplicated after that (twice the seconds of data a
/// connection keeps requested, `conn::WINDOW_SECONDS`).
pub const ENDGAME_DUE_MOST: Duration = Duration::from_secs(4);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceState {
    Missing,
    InFlight,
    Hashing,
    Have,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Free,
    Requested(PeerKey),
    Received(PeerKey),
    /// Wholly inside padding: zeros, never asked for.
    Padding,
}

struct InFlight {
    index: u32,
    buf: PieceBuf,
    blocks: Vec<Block>,
    /// When each block was last requested (meaningful while it is `Requested`).
    asked: Vec<Instant>,
    /// When each block should have come, by its place in its owner's queue at the owner's pace
    /// (`asked` when the pace is not known; within [`ENDGAME_DUE_MOST`] of `asked`).
    due: Vec<Instant>,
    /// Blocks `Received` or `Padding`.
    received: u32,
    /// Blocks `Padding`.
    padding: u32,
    /// Set for a suspect piece: only this peer may fill it.
    exclusive: Option<PeerKey>,
    /// Endgame duplicate requests: (block number, peer).
    extra: Vec<(u32, PeerKey)>,
}

/// A piece in flight as a pick or a lookup sees it: its index and how many of its blocks are `Free`.
/// Kept in [`Picker::heads`], in the order of `in_flight`, apart from the pieces themselves, so that
/// with hundreds of pieces in flight and hundreds of peers asking for blocks a pick walks eight bytes
/// per piece instead of every piece's state.
#[derive(Debug, Clone, Copy)]
struct Head {
    index: u32,
    free: u32,
}

/// What became of a received block.
#[derive(Debug)]
pub enum BlockResult {
    /// Stored; `cancel` lists other peers that had also requested it (endgame).
    Stored { cancel: Vec<PeerKey> },
    /// Stored, and it was the piece's last block: hash `buf[..len]` and report with `on_hash_done`.
    Complete {
        index: u32,
        buf: PieceBuf,
        contributors: Vec<PeerKey>,
        cancel: Vec<PeerKey>,
    },
    /// We already have it (a late or duplicate copy): drop it.
    NotNeeded,
}

/// Outcome of a hash check, for the caller to act on.
#[derive(Debug, PartialEq, Eq)]
pub enum HashVerdict {
    Good,
    /// Bad piece, all of it from this one peer.
    BadFrom(PeerKey),
    /// Bad piece from several peers: the piece is now suspect.
    BadMixed,
}

pub struct Picker {
    geo: Geometry,
    have: Bitfield,
    states: Vec<PieceState>,
    availability: Vec<u16>,
    salt: Vec<u32>,
    suspect: Vec<bool>,
    in_flight: Vec<InFlight>,
    /// `in_flight`'s index and free-block count, in its order ([`Head`]).
    heads: Vec<Head>,
    /// Pieces in state `Missing`.
    missing: usize,
    /// The `Missing` pieces of each rank, rarest first: `by_rank[3 - rank]` for ranks 3, 2 and 1.
    by_rank: [Rarity; 3],
    hashing: usize,
    pool: Vec<PieceBuf>,
    max_in_flight_bytes: u64,
    /// How long a request waits before endgame may duplicate it ([`ENDGAME_LATE`]).
    endgame_late: Duration,
    /// Each piece's rank: 0 = not wanted, 1 low, 2 normal, 3 high.
    ranks: Vec<u8>,
    /// Pieces we need not fetch: those we have and those not wanted.
    settled: Bitfield,
    /// Counts the times `settled` lost pieces: we came to want more (new ranks, a withdrawn
    /// piece). A peer found to have nothing we want is of no use until it moves.
    wants_grown: u32,
    sequential: bool,
    /// Where the sequence of sequential mode starts: pieces from this one to the last come first,
    /// then those before it (a player that seeks into the middle of a file).
    sequential_from: u32,
    /// The blocks of each piece wholly inside padding ([`padding_blocks`]).
    padding: HashMap<u32, Vec<Range<u32>>>,
}

/// The blocks wholly inside BEP 47 padding files of `info`, by piece: sorted, disjoint ranges of
/// block numbers. Pieces with none, and pieces with nothing else, are left out. Only the first and
/// last piece a pad file touches are looked at (those between are padding through and through),
/// and blocks are kept as ranges: the work and the memory go with the number of pad files, never
/// with their sizes (a hostile torrent's pad file of a petabyte costs what a small one does).
pub fn padding_blocks(info: &Info) -> HashMap<u32, Vec<Range<u32>>> {
    let geo = Geometry::from_info(info);
    let plen = geo.piece_length;
    let bs = u64::from(BLOCK_SIZE);
    let mut out: HashMap<u32, Vec<Range<u32>>> = HashMap::new();
    for f in info.files.iter().filter(|f| f.padding && f.length > 0) {
        let (start, end) = (f.offset, (f.offset + f.length).min(geo.total_length));
        if start >= end {
            continue;
        }
        let (first, last) = (start / plen, (end - 1) / plen);
        for piece in [first, last] {
            let base = piece * plen;
            let piece_end = base + geo.piece_len(piece as u32);
            let (from, to) = (start.max(base), end.min(piece_end));
            // Blocks that start at or after `from` and end at or before `to` (the piece's last
            // block may be short: it ends at the piece's end).
            let first_block = (from - base).div_ceil(bs) as u32;
            let end_block = if to == piece_end {
                geo.blocks_in(piece as u32)
            } else {
                ((to - base) / bs) as u32
            };
            if first_block < end_block {
                out.entry(piece as u32)
                    .or_default()
                    .push(first_block..end_block);
            }
        }
    }
    out.retain(|&piece, ranges| {
        ranges.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<u32>> = Vec::with_capacity(ranges.len());
        for r in ranges.drain(..) {
            match merged.last_mut() {
                Some(m) if r.start <= m.end => m.end = m.end.max(r.end),
                _ => merged.push(r),
            }
        }
        *ranges = merged;
        let covered: u32 = ranges.iter().map(|r| r.end - r.start).sum();
        covered > 0 && covered < geo.blocks_in(piece)
    });
    out
}

impl Picker {
    pub fn new(geo: Geometry, max_in_flight_bytes: u64) -> Self {
        let n = geo.piece_count as usize;
        let mut rng = rand::thread_rng();
        Picker {
            geo,
            have: Bitfield::new(n),
            states: vec![PieceState::Missing; n],
            availability: vec![0; n],
            salt: (0..n).map(|_| rng.gen()).collect(),
            suspect: vec![false; n],
            in_flight: Vec::new(),
            heads: Vec::new(),
            missing: n,
            by_rank: std::array::from_fn(|k| {
                let mut r = Rarity::new(n);
                if k == 1 {
                    // Every piece starts `Missing` at the normal rank (2), available from nobody.
                    (0..n as u32).for_each(|i| r.insert(i, 0));
                }
                r
            }),
            hashing: 0,
            pool: Vec::new(),
            max_in_flight_bytes: max_in_flight_bytes.max(2 * geo.piece_length),
            endgame_late: ENDGAME_LATE,
            ranks: vec![2; n],
            settled: Bitfield::new(n),
            wants_grown: 0,
            sequential: false,
            sequential_from: 0,
            padding: HashMap::new(),
        }
    }

    /// The blocks never to ask for, by piece ([`padding_blocks`]); pieces started from now on.
    pub fn set_padding(&mut self, padding: HashMap<u32, Vec<Range<u32>>>) {
        self.padding = padding;
    }

    /// Sets each piece's rank (0 = not wanted, 3 = high; see [`crate::selection`]). Pieces in flight
    /// finish whatever their new rank.
    pub fn set_ranks(&mut self, ranks: Vec<u8>) {
        assert_eq!(ranks.len(), self.states.len());
        let n = self.states.len();
        self.by_rank = std::array::from_fn(|_| Rarity::new(n));
        self.ranks = ranks;
        self.wants_grown = self.wants_grown.wrapping_add(1);
        for i in 0..n {
            if self.have.get(i) || self.ranks[i] == 0 {
                self.settled.set(i);
            } else {
                self.settled.clear(i);
            }
            self.enter_order(i);
        }
    }

    /// The order that holds piece `i` while it may be started (`Missing` and wanted).
    fn order_of(&mut self, i: usize) -> Option<&mut Rarity> {
        match self.ranks[i] {
            0 => None,
            r => Some(&mut self.by_rank[3 - r.min(3) as usize]),
        }
    }

    /// Puts piece `i` in its order if it may be started.
    fn enter_order(&mut self, i: usize) {
        let avail = self.availability[i];
        if self.states[i] == PieceState::Missing {
            if let Some(o) = self.order_of(i) {
                o.insert(i as u32, avail);
            }
        }
    }

    /// Takes piece `i` out of its order (it starts, or we have it).
    fn leave_order(&mut self, i: usize) {
        let avail = self.availability[i];
        if let Some(o) = self.order_of(i) {
            o.remove(i as u32, avail);
        }
    }

    fn availability_up(&mut self, i: usize) {
        let a = self.availability[i];
        if a < u16::MAX {
            if let Some(o) = self.order_of(i) {
                o.increment(i as u32, a);
            }
            self.availability[i] = a + 1;
        }
    }

    fn availability_down(&mut self, i: usize) {
        let a = self.availability[i];
        if a > 0 {
            if let Some(o) = self.order_of(i) {
                o.decrement(i as u32, a);
            }
            self.availability[i] = a - 1;
        }
    }

    /// The rank of piece `index`.
    pub fn rank(&self, index: u32) -> u8 {
        self.ranks[index as usize]
    }

    /// New pieces in index order (after rank) rather than rarest first.
    pub fn set_sequential(&mut self, on: bool) {
        self.sequential = on;
    }

    pub fn sequential(&self) -> bool {
        self.sequential
    }

    /// Starts the sequence of sequential mode at piece `from` (then wraps round to the first);
    /// kept while sequential mode is off. `from` is below the piece count.
    pub fn set_sequential_from(&mut self, from: u32) {
        debug_assert!((from as usize) < self.states.len().max(1));
        self.sequential_from = from;
    }

    pub fn sequential_from(&self) -> u32 {
        self.sequential_from
    }

    /// Piece `i`'s place in the sequence of sequential mode.
    fn place_in_sequence(&self, i: usize) -> u32 {
        let n = self.states.len();
        ((i + n - self.sequential_from as usize) % n) as u32
    }

    /// Every wanted piece is `Have`.
    pub fn is_done(&self) -> bool {
        self.settled.is_full()
    }

    /// Done with some pieces not had: files were skipped (BEP 21's partial seed).
    pub fn is_partial_seed(&self) -> bool {
        self.is_done() && !self.have.is_full()
    }

    /// (bytes when done, bytes left until done): the bytes of the pieces wanted or had, and of those
    /// wanted and not had (Transmission's `sizeWhenDone` and `leftUntilDone`).
    pub fn wanted_bytes(&self) -> (u64, u64) {
        let (mut size, mut left) = (0, 0);
        for i in 0..self.states.len() {
            let len = self.geo.piece_len(i as u32);
            if self.have.get(i) {
                size += len;
            } else if self.ranks[i] > 0 {
                size += len;
                left += len;
            }
        }
        (size, left)
    }

    /// Bytes of the pieces wanted, not had and held by a connected peer (Transmission's
    /// `desiredAvailable`).
    pub fn desired_available(&self) -> u64 {
        (0..self.states.len())
            .filter(|&i| !self.have.get(i) && self.ranks[i] > 0 && self.availability[i] > 0)
            .map(|i| self.geo.piece_len(i as u32))
            .sum()
    }

    /// Per piece, -1 when had, else how many connected peers have it (Transmission's
    /// `availability`).
    pub fn availability_list(&self) -> Vec<i32> {
        (0..self.states.len())
            .map(|i| {
                if self.have.get(i) {
                    -1
                } else {
                    i32::from(self.availability[i])
                }
            })
            .collect()
    }

    /// Sets how long a request waits before endgame may duplicate it (tests use zero).
    pub fn set_endgame_late(&mut self, late: Duration) {
        self.endgame_late = late;
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    pub fn have(&self) -> &Bitfield {
        &self.have
    }

    pub fn state(&self, index: u32) -> PieceState {
        self.states[index as usize]
    }

    pub fn is_complete(&self) -> bool {
        self.have.is_full()
    }

    /// Marks a piece found on disk at start-up.
    pub fn mark_have(&mut self, index: u32) {
        if self.have.set(index as usize) {
            self.settled.set(index as usize);
            if self.states[index as usize] == PieceState::Missing {
                self.missing -= 1;
                self.leave_order(index as usize);
            }
            self.states[index as usize] = PieceState::Have;
        }
    }

    /// Takes back a piece we had: its data on disk no longer matches its hash (found when it was read
    /// for upload, or by a re-check). It goes back to `Missing` and is downloaded again. False when
    /// the piece was not `Have`.
    pub fn withdraw(&mut self, index: u32) -> bool {
        let i = index as usize;
        if self.states[i] != PieceState::Have {
            return false;
        }
        self.states[i] = PieceState::Missing;
        self.have.clear(i);
        if self.ranks[i] > 0 {
            self.settled.clear(i);
            self.wants_grown = self.wants_grown.wrapping_add(1);
        }
        self.missing += 1;
        self.enter_order(i);
        true
    }

    /// Pieces buffered in memory (in flight or hashing).
    pub fn buffered_pieces(&self) -> usize {
        self.in_flight.len() + self.hashing
    }

    /// Moves on each time we come to want pieces we did not (see `wants_grown`): a peer that held
    /// nothing we wanted at one value may at the next.
    pub fn wants_generation(&self) -> u32 {
        self.wants_grown
    }

    /// Whether a peer with `has` holds a wanted piece we lack.
    pub fn interesting(&self, has: &Bitfield) -> bool {
        has.has_any_missing_from(&self.settled)
    }

    pub fn add_availability(&mut self, has: &Bitfield) {
        for i in has.ones() {
            self.availability_up(i);
        }
    }

    /// Connected peers known to have piece `index`.
    pub fn availability(&self, index: u32) -> u16 {
        self.availability[index as usize]
    }

    pub fn add_have(&mut self, index: u32) {
        self.availability_up(index as usize);
    }

    /// A peer counted as having piece `index` no longer has it (`lt_donthave`).
    pub fn remove_have(&mut self, index: u32) {
        self.availability_down(index as usize);
    }

    pub fn remove_availability(&mut self, has: &Bitfield) {
        for i in has.ones() {
            self.availability_down(i);
        }
    }

    fn find(&self, index: u32) -> Option<usize> {
        self.heads.iter().position(|h| h.index == index)
    }
}

mod blocks;
mod pick;
mod rarity;
#[cfg(test)]
mod tests;
