//! Which block to ask which peer for next, and the assembly of pieces in memory.
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
//! - Cheap with hundreds of peers: a pick first offers the free blocks of the pieces in flight, and
//!   each of those has a small head (index, free blocks) kept apart from its state, so the walk skips
//!   pieces whose blocks are all asked for without touching them.

use std::time::{Duration, Instant};

use rand::Rng;

use super::piece_buf::PieceBuf;
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
}

/// How a pick asks a peer for blocks: when, at what pace the peer sends (zero: not known), and how
/// many of its requests come before the first block picked in this step.
#[derive(Clone, Copy)]
struct Asking {
    now: Instant,
    pace: Duration,
    queued: usize,
    /// The peer may be the one to fill a suspect piece (not while it is snubbed).
    suspect_ok: bool,
}

impl Asking {
    /// When the `i`-th block picked in this step should have come: once the requests ahead of it
    /// and itself came at the peer's pace (within [`ENDGAME_DUE_MOST`]).
    fn due(&self, i: usize) -> Instant {
        let ahead = (self.queued + i + 1).min(u32::MAX as usize) as u32;
        self.now + self.pace.saturating_mul(ahead).min(ENDGAME_DUE_MOST)
    }
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
    received: u32,
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
        }
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
    fn has_room(&self, nothing_yet: bool, has: &Bitfield) -> bool {
        let buffered = self.buffered_pieces() as u64 * self.geo.piece_length;
        buffered + self.geo.piece_length <= self.max_in_flight_bytes
            || (nothing_yet
                && 2 * buffered < 3 * self.max_in_flight_bytes
                && !self.shares_in_flight(has))
    }

    /// Whether a peer with `has` holds a piece in flight that any peer may fill.
    fn shares_in_flight(&self, has: &Bitfield) -> bool {
        self.in_flight
            .iter()
            .any(|f| has.get(f.index as usize) && f.exclusive.is_none())
    }

    /// Whether every remaining block is requested: no piece left to start that a connected peer has,
    /// and no free block in a piece in flight that anyone may fill.
    fn in_endgame(&self) -> bool {
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
    fn endgame_block(&mut self, peer: PeerKey, has: &Bitfield) -> Option<BlockRef> {
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

    fn take_free(
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
                None if f.received == 0 && asking.suspect_ok => f.exclusive = Some(peer),
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

    fn choose_new(&self, has: &Bitfield) -> Option<u32> {
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

    fn start_piece(&mut self, index: u32) {
        let plen = self.geo.piece_length as usize;
        let buf = self.pool.pop().unwrap_or_else(|| PieceBuf::zeroed(plen));
        self.missing -= 1;
        self.leave_order(index as usize);
        self.states[index as usize] = PieceState::InFlight;
        let blocks = self.geo.blocks_in(index) as usize;
        self.in_flight.push(InFlight {
            index,
            buf,
            blocks: vec![Block::Free; blocks],
            asked: vec![Instant::now(); blocks],
            due: vec![Instant::now(); blocks],
            received: 0,
            exclusive: None,
            extra: Vec::new(),
        });
        self.heads.push(Head {
            index,
            free: blocks as u32,
        });
    }

    fn find(&self, index: u32) -> Option<usize> {
        self.heads.iter().position(|h| h.index == index)
    }

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
            Block::Received(_) => return BlockResult::NotNeeded,
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
                .map(|b| match b {
                    Block::Received(p) => *p,
                    _ => unreachable!("every block received"),
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
            f.received = 0;
            f.blocks.iter_mut().for_each(|s| *s = Block::Free);
            self.heads[k].free = f.blocks.len() as u32;
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
    fn hashing_done(&mut self, buf: Option<PieceBuf>) {
        self.hashing = self.hashing.saturating_sub(1);
        let keep = (self.max_in_flight_bytes / self.geo.piece_length) as usize;
        if let Some(buf) = buf {
            if self.pool.len() < keep && buf.len() == self.geo.piece_length as usize {
                self.pool.push(buf);
            }
        }
    }
}

mod rarity;
#[cfg(test)]
mod tests;
