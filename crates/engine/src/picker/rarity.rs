//! Rarest-first order without a scan: the pieces that may be started, grouped in buckets by how many
//! connected peers have them (the layout of libtorrent's piece picker).
//!
//! ```text
//!   order:  [ a0 a0 | b1 b1 b1 | c2 | d3 d3 ]      bucket k = pieces that k connected peers have
//!   ends:          2         5    6       8       ends[k] = one past bucket k's last position
//! ```
//!
//! - A piece moves one bucket up or down with one swap and one boundary step: a `have`, a peer's
//!   bitfield or a peer leaving costs O(1) per piece, never a walk over the torrent.
//! - Entering or leaving the order walks the boundaries above the piece's bucket (one swap each), so it
//!   costs O(buckets) = O(connected peers), once per piece start or completion.
//! - Within a bucket the order is random: every piece that lands in a bucket is swapped with a random
//!   one of it, so peers that see the same availability do not all start the same piece.
//! - Picking walks `order` from bucket 1 (bucket 0 holds pieces no connected peer has) and takes the
//!   first piece the asking peer has: the rarest it can give.
//!
//! Invariant: `pos[order[i]] == i` for every position, and a piece outside the order has
//! `pos == ABSENT`; a piece in the order sits in the bucket of its availability as the picker passed it.

use rand::Rng;

const ABSENT: u32 = u32::MAX;

/// Pieces grouped by availability, rarest first.
#[derive(Debug, Clone)]
pub(crate) struct Rarity {
    order: Vec<u32>,
    pos: Vec<u32>,
    ends: Vec<u32>,
}

impl Rarity {
    /// An empty order for a torrent of `pieces` pieces.
    pub fn new(pieces: usize) -> Self {
        Rarity {
            order: Vec::new(),
            pos: vec![ABSENT; pieces],
            ends: vec![0],
        }
    }

    pub fn contains(&self, piece: u32) -> bool {
        self.pos[piece as usize] != ABSENT
    }

    /// Pieces in the order that at least one connected peer has.
    pub fn available(&self) -> usize {
        self.order.len() - self.ends[0] as usize
    }

    /// The pieces that a connected peer has, rarest first.
    pub fn rarest_first(&self) -> impl Iterator<Item = u32> + '_ {
        self.order[self.ends[0] as usize..].iter().copied()
    }

    fn start(&self, bucket: usize) -> u32 {
        if bucket == 0 {
            0
        } else {
            self.ends[bucket - 1]
        }
    }

    fn swap(&mut self, a: u32, b: u32) {
        if a != b {
            self.order.swap(a as usize, b as usize);
            self.pos[self.order[a as usize] as usize] = a;
            self.pos[self.order[b as usize] as usize] = b;
        }
    }

    /// Swaps the piece at `at` (in `bucket`) with a random piece of that bucket.
    fn shuffle_in(&mut self, at: u32, bucket: usize) {
        let (lo, hi) = (self.start(bucket), self.ends[bucket]);
        if hi - lo > 1 {
            let other = rand::thread_rng().gen_range(lo..hi);
            self.swap(at, other);
        }
    }

    /// Makes buckets up to `bucket` exist (new ones are empty, at the end of the order).
    fn grow_to(&mut self, bucket: usize) {
        let end = *self.ends.last().expect("bucket 0 always exists");
        while self.ends.len() <= bucket {
            self.ends.push(end);
        }
    }

    /// Adds `piece`, which `avail` connected peers have.
    pub fn insert(&mut self, piece: u32, avail: u16) {
        debug_assert!(!self.contains(piece));
        let bucket = avail as usize;
        self.grow_to(bucket);
        let mut at = self.order.len() as u32;
        self.order.push(piece);
        self.pos[piece as usize] = at;
        // It enters the last bucket at its end, then steps down one bucket at a time: swapped with
        // the first piece of the bucket it is in, then that bucket's lower boundary moves past it.
        let last = self.ends.len() - 1;
        self.ends[last] += 1;
        for k in (bucket + 1..=last).rev() {
            let first = self.start(k);
            self.swap(at, first);
            at = first;
            self.ends[k - 1] += 1;
        }
        self.shuffle_in(at, bucket);
    }

    /// Takes `piece` out; `avail` is its availability as last passed in.
    pub fn remove(&mut self, piece: u32, avail: u16) {
        let mut at = self.pos[piece as usize];
        if at == ABSENT {
            return;
        }
        // It steps up one bucket at a time to the end of the order: swapped with the last piece of
        // its bucket, then that bucket's upper boundary moves below it.
        for k in avail as usize..self.ends.len() {
            let last = self.ends[k] - 1;
            self.swap(at, last);
            at = last;
            self.ends[k] -= 1;
        }
        debug_assert_eq!(at as usize, self.order.len() - 1);
        self.order.pop();
        self.pos[piece as usize] = ABSENT;
    }

    /// One more connected peer has `piece` (its availability was `avail`).
    pub fn increment(&mut self, piece: u32, avail: u16) {
        let at = self.pos[piece as usize];
        if at == ABSENT {
            return;
        }
        let bucket = avail as usize;
        self.grow_to(bucket + 1);
        let last = self.ends[bucket] - 1;
        self.swap(at, last);
        self.ends[bucket] -= 1;
        self.shuffle_in(last, bucket + 1);
    }

    /// One connected peer fewer has `piece` (its availability was `avail`, at least 1).
    pub fn decrement(&mut self, piece: u32, avail: u16) {
        let at = self.pos[piece as usize];
        if at == ABSENT || avail == 0 {
            return;
        }
        let bucket = avail as usize;
        let first = self.start(bucket);
        self.swap(at, first);
        self.ends[bucket - 1] += 1;
        self.shuffle_in(first, bucket - 1);
    }

    /// Checks the layout against `avail` (tests).
    #[cfg(test)]
    pub fn check(&self, avail: &[u16]) {
        for (i, &p) in self.order.iter().enumerate() {
            assert_eq!(self.pos[p as usize], i as u32, "position of piece {p}");
            let b = avail[p as usize] as usize;
            assert!(
                self.start(b) as usize <= i && i < self.ends[b] as usize,
                "piece {p} (availability {b}) at {i}, outside its bucket"
            );
        }
        assert_eq!(*self.ends.last().unwrap() as usize, self.order.len());
        let inside = self.pos.iter().filter(|&&p| p != ABSENT).count();
        assert_eq!(inside, self.order.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_operations_keep_every_piece_in_its_bucket() {
        let n = 200;
        let mut r = Rarity::new(n);
        let mut avail = vec![0u16; n];
        let mut rng = rand::thread_rng();
        for step in 0..20_000 {
            let p = rng.gen_range(0..n as u32);
            let a = avail[p as usize];
            match rng.gen_range(0..4) {
                0 if !r.contains(p) => r.insert(p, a),
                1 => r.remove(p, a),
                2 if a < 60 => {
                    r.increment(p, a);
                    avail[p as usize] += 1;
                }
                3 if a > 0 => {
                    r.decrement(p, a);
                    avail[p as usize] -= 1;
                }
                _ => {}
            }
            if step % 97 == 0 {
                r.check(&avail);
            }
        }
        r.check(&avail);
        // Rarest first: availabilities along the order never go down.
        let seen: Vec<u16> = r.rarest_first().map(|p| avail[p as usize]).collect();
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert!(seen.iter().all(|&a| a > 0));
        assert_eq!(seen.len(), r.available());
    }

    #[test]
    fn ties_are_broken_at_random() {
        // 50 pieces all held by one peer: the first of the order is not always the same piece.
        let firsts: std::collections::HashSet<u32> = (0..20)
            .map(|_| {
                let mut r = Rarity::new(50);
                for p in 0..50 {
                    r.insert(p, 1);
                }
                let first = r.rarest_first().next().unwrap();
                first
            })
            .collect();
        assert!(firsts.len() > 1, "{firsts:?}");
    }
}
