//! SHA-1 of several messages at once on one core, for hashing pieces.
//!
//! With the x86 SHA extensions, one SHA-1 stream is bound by the latency of `sha1rnds4`: each group of
//! four rounds waits for the previous one, and the core's SHA unit idles in between. Feeding [`LANES`]
//! independent messages in lockstep fills those gaps. Measured on this machine's AMD EPYC cores (thread
//! CPU time, 128 KiB messages): one stream 1.93 GB/s (the `sha1` crate: the same), 2 lanes 3.3, 3 lanes
//! 3.8, 4 lanes 4.8, 6 lanes 5.1, 8 lanes 4.7 (register spills). Four lanes keep most of the gain with
//! a small working set.
//!
//! [`Sha1Lanes`] uses the SHA extensions when the CPU has them (checked at run time) and the `sha1`
//! crate for each lane otherwise; both give the standard digest, which the tests check against the
//! `sha1` crate.
//!
//! [`digest_lanes_chunked`] (and [`digest_chunked`] for one message) drive the hashing of pieces read
//! from disk chunk by chunk, in bounded memory whatever the piece length: torrent creation
//! ([`crate::metainfo::hashing`]) and the engine's check of existing data both hash through them.

use sha1::{Digest, Sha1};

/// Messages hashed together.
pub const LANES: usize = 4;

/// Bytes of each message read and hashed at a time by [`digest_chunked`] and [`digest_lanes_chunked`]
/// (at most): a worker holds [`LANES`] such chunks, half of this machine's 1 MiB L2 cache per core, so
/// each chunk is hashed while it is still in the core's cache.
pub const CHUNK: usize = 128 << 10;

const INITIAL: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// Whether this CPU hashes the lanes with the SHA extensions (otherwise one after the other).
pub fn is_accelerated() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("sse4.1")
            && is_x86_feature_detected!("ssse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

enum State {
    /// SHA-1 chaining values of each lane (A, B, C, D, E).
    Simd([[u32; 5]; LANES]),
    Portable(Box<[Sha1; LANES]>),
}

/// SHA-1 of [`LANES`] messages of equal length, fed in lockstep.
pub struct Sha1Lanes {
    state: State,
    /// Bytes fed to each lane so far.
    len: u64,
}

impl Default for Sha1Lanes {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha1Lanes {
    pub fn new() -> Self {
        if is_accelerated() {
            Self::with_state(State::Simd([INITIAL; LANES]))
        } else {
            Self::portable()
        }
    }

    /// Always the one-lane-at-a-time path (for tests and comparisons).
    pub fn portable() -> Self {
        Self::with_state(State::Portable(Box::new(std::array::from_fn(|_| {
            Sha1::new()
        }))))
    }

    fn with_state(state: State) -> Self {
        Sha1Lanes { state, len: 0 }
    }

    /// Feeds the next bytes of every message. All chunks must have the same length, a multiple of the
    /// 64-byte SHA-1 block (piece lengths and read chunks are powers of two of at least 16 KiB).
    pub fn update(&mut self, chunks: [&[u8]; LANES]) {
        let len = chunks[0].len();
        assert!(
            len.is_multiple_of(64) && chunks.iter().all(|c| c.len() == len),
            "Sha1Lanes::update takes chunks of one length, a multiple of 64"
        );
        match &mut self.state {
            State::Simd(states) => {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `State::Simd` is only built when `is_accelerated()` found the CPU features
                // `compress` is compiled for, and every chunk holds `len / 64` whole blocks.
                unsafe {
                    x86::compress(states, chunks, len / 64)
                };
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("no SIMD state without x86_64: {states:?}");
            }
            State::Portable(lanes) => {
                for (sha, chunk) in lanes.iter_mut().zip(chunks) {
                    sha.update(chunk);
                }
            }
        }
        self.len += len as u64;
    }

    /// The digest of each message.
    pub fn finalize(self) -> [[u8; 20]; LANES] {
        match self.state {
            State::Portable(lanes) => lanes.map(|sha| sha.finalize().into()),
            State::Simd(states) => {
                // Every message is a whole number of blocks: the padding is one block of its own,
                // the same for every lane.
                let mut pad = [0u8; 64];
                pad[0] = 0x80;
                pad[56..].copy_from_slice(&(self.len * 8).to_be_bytes());
                let mut last = Sha1Lanes {
                    state: State::Simd(states),
                    len: self.len,
                };
                last.update([&pad; LANES]);
                let State::Simd(states) = last.state else {
                    unreachable!("still the SIMD state")
                };
                states.map(|s| {
                    let mut out = [0u8; 20];
                    for (word, bytes) in s.iter().zip(out.chunks_exact_mut(4)) {
                        bytes.copy_from_slice(&word.to_be_bytes());
                    }
                    out
                })
            }
        }
    }
}

/// SHA-1 of one message of `len` bytes read through `buf` a chunk at a time: `read(at, chunk)` fills
/// `chunk` with the message's bytes from offset `at`. A read error ends the hashing with that error.
pub fn digest_chunked<E>(
    len: u64,
    buf: &mut [u8],
    mut read: impl FnMut(u64, &mut [u8]) -> Result<(), E>,
) -> Result<[u8; 20], E> {
    let mut sha = Sha1::new();
    let mut done = 0;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        read(done, &mut buf[..n])?;
        sha.update(&buf[..n]);
        done += n as u64;
    }
    Ok(sha.finalize().into())
}

/// Whether messages of `len` bytes can be hashed by [`digest_lanes_chunked`] in chunks of `chunk`
/// bytes: whole chunks only, each a whole number of 64-byte blocks.
pub fn lanes_fit(len: u64, chunk: usize) -> bool {
    chunk > 0 && chunk.is_multiple_of(64) && len.is_multiple_of(chunk as u64)
}

/// SHA-1 of [`LANES`] messages of `len` bytes each, hashed in lockstep ([`Sha1Lanes`]) and read through
/// `bufs` a chunk at a time: `read(lane, at, chunk)` fills `chunk` with message `lane`'s bytes from
/// offset `at`. The chunks (`bufs`) are of one length that fits `len` ([`lanes_fit`]). A read error
/// ends the hashing with that error.
pub fn digest_lanes_chunked<E>(
    len: u64,
    bufs: &mut [Vec<u8>; LANES],
    mut read: impl FnMut(usize, u64, &mut [u8]) -> Result<(), E>,
) -> Result<[[u8; 20]; LANES], E> {
    let chunk = bufs[0].len();
    assert!(
        lanes_fit(len, chunk),
        "digest_lanes_chunked: {len} bytes do not split into chunks of {chunk}"
    );
    let mut lanes = Sha1Lanes::new();
    let mut done = 0;
    while done < len {
        for (lane, buf) in bufs.iter_mut().enumerate() {
            read(lane, done, buf)?;
        }
        lanes.update(std::array::from_fn(|lane| bufs[lane].as_slice()));
        done += chunk as u64;
    }
    Ok(lanes.finalize())
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::LANES;
    use std::arch::x86_64::*;

    /// Runs `blocks` SHA-1 compressions on each lane, the lanes interleaved instruction by instruction
    /// (they are independent, so the compiler schedules one lane's work into another's latency).
    ///
    /// The state is kept as ABCD in one register (A in the highest lane) and E in the highest lane of
    /// another. Each group `g` of four rounds takes message quad `W[g]` (the first four loaded from the
    /// block, byte-swapped; later ones from the `sha1msg1`/`sha1msg2` schedule) and an E input: for the
    /// first group E plus `W[0]`, then `sha1nexte` of the ABCD from before the previous group with `W[g]`.
    ///
    /// # Safety
    /// The CPU must support SHA, SSE4.1 and SSSE3, and every chunk must hold at least `blocks * 64` bytes.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn compress(
        states: &mut [[u32; 5]; LANES],
        chunks: [&[u8]; LANES],
        blocks: usize,
    ) {
        let byte_swap = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0A0B_0C0D_0E0F);
        let mut abcd = [_mm_setzero_si128(); LANES];
        let mut e = [_mm_setzero_si128(); LANES];
        for lane in 0..LANES {
            let [a, b, c, d, e0] = states[lane].map(|w| w as i32);
            abcd[lane] = _mm_set_epi32(a, b, c, d);
            e[lane] = _mm_set_epi32(e0, 0, 0, 0);
        }
        for block in 0..blocks {
            let mut w = [[_mm_setzero_si128(); 4]; LANES];
            for lane in 0..LANES {
                let p = chunks[lane].as_ptr().add(block * 64).cast::<__m128i>();
                for (q, quad) in w[lane].iter_mut().enumerate() {
                    *quad = _mm_shuffle_epi8(_mm_loadu_si128(p.add(q)), byte_swap);
                }
            }
            let mut cur = abcd;
            let mut before_prev = abcd;
            macro_rules! group {
                ($g:literal) => {
                    for lane in 0..LANES {
                        let quad = if $g < 4 {
                            w[lane][$g % 4]
                        } else {
                            let next = _mm_sha1msg2_epu32(
                                _mm_xor_si128(
                                    _mm_sha1msg1_epu32(w[lane][$g % 4], w[lane][($g + 1) % 4]),
                                    w[lane][($g + 2) % 4],
                                ),
                                w[lane][($g + 3) % 4],
                            );
                            w[lane][$g % 4] = next;
                            next
                        };
                        let e_in = if $g == 0 {
                            _mm_add_epi32(e[lane], quad)
                        } else {
                            _mm_sha1nexte_epu32(before_prev[lane], quad)
                        };
                        before_prev[lane] = cur[lane];
                        cur[lane] = _mm_sha1rnds4_epu32(cur[lane], e_in, { $g / 5 });
                    }
                };
            }
            group!(0);
            group!(1);
            group!(2);
            group!(3);
            group!(4);
            group!(5);
            group!(6);
            group!(7);
            group!(8);
            group!(9);
            group!(10);
            group!(11);
            group!(12);
            group!(13);
            group!(14);
            group!(15);
            group!(16);
            group!(17);
            group!(18);
            group!(19);
            for lane in 0..LANES {
                e[lane] = _mm_sha1nexte_epu32(before_prev[lane], e[lane]);
                abcd[lane] = _mm_add_epi32(cur[lane], abcd[lane]);
            }
        }
        for lane in 0..LANES {
            let mut words = [0u32; 4];
            _mm_storeu_si128(words.as_mut_ptr().cast(), abcd[lane]);
            states[lane] = [
                words[3],
                words[2],
                words[1],
                words[0],
                _mm_extract_epi32::<3>(e[lane]) as u32,
            ];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn check(mut lanes: Sha1Lanes, lens: &[usize]) {
        let total: usize = lens.iter().sum();
        let messages: Vec<Vec<u8>> = (0..LANES).map(|i| message(i as u64 + 1, total)).collect();
        let mut at = 0;
        for &n in lens {
            lanes.update(std::array::from_fn(|i| &messages[i][at..at + n]));
            at += n;
        }
        let expected: [[u8; 20]; LANES] =
            std::array::from_fn(|i| Sha1::digest(&messages[i]).into());
        assert_eq!(lanes.finalize(), expected, "{lens:?}");
    }

    #[test]
    fn digests_match_the_sha1_crate() {
        for lens in [
            &[][..],
            &[64],
            &[128, 64],
            &[16384],
            &[131072, 131072, 64, 4096],
            &[64; 37],
        ] {
            check(Sha1Lanes::new(), lens);
            check(Sha1Lanes::portable(), lens);
        }
    }

    #[test]
    fn lanes_are_independent() {
        // Identical lanes give identical digests; one changed bit changes only its lane.
        let base = message(9, 4096);
        let mut flipped = base.clone();
        flipped[4000] ^= 1;
        let mut lanes = Sha1Lanes::new();
        lanes.update([&base, &flipped, &base, &base]);
        let out = lanes.finalize();
        assert_eq!(out[0], out[2]);
        assert_eq!(out[0], out[3]);
        assert_ne!(out[0], out[1]);
        assert_eq!(out[1], <[u8; 20]>::from(Sha1::digest(&flipped)));
    }

    #[test]
    fn chunked_digests_match_the_sha1_crate() {
        let messages: Vec<Vec<u8>> = (0..LANES)
            .map(|i| message(i as u64 + 7, 3 * 4096))
            .collect();
        let mut bufs: [Vec<u8>; LANES] = std::array::from_fn(|_| vec![0u8; 4096]);
        let mut reads = 0;
        let got = digest_lanes_chunked(3 * 4096, &mut bufs, |lane, at, buf| {
            reads += 1;
            let at = at as usize;
            buf.copy_from_slice(&messages[lane][at..at + buf.len()]);
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(reads, 3 * LANES, "one read per chunk and lane");
        let expected: [[u8; 20]; LANES] =
            std::array::from_fn(|i| Sha1::digest(&messages[i]).into());
        assert_eq!(got, expected);
        // One message of an odd length, in chunks with a short last one.
        let one = message(3, 10_000);
        let mut buf = vec![0u8; 4096];
        let got = digest_chunked(10_000, &mut buf, |at, b| {
            let at = at as usize;
            b.copy_from_slice(&one[at..at + b.len()]);
            Ok::<_, ()>(())
        });
        assert_eq!(got, Ok(Sha1::digest(&one).into()));
        // A read error ends it.
        assert_eq!(
            digest_chunked(10_000, &mut buf, |_, _| Err("gone")),
            Err("gone")
        );
        assert!(lanes_fit(1 << 20, CHUNK) && lanes_fit(16 << 10, 16 << 10));
        assert!(!lanes_fit(20_000, 20_000) && !lanes_fit(48 << 10, 32 << 10));
    }

    #[test]
    #[should_panic(expected = "multiple of 64")]
    fn refuses_partial_blocks() {
        Sha1Lanes::new().update([&[0u8; 65][..]; LANES]);
    }

    #[test]
    fn uses_the_sha_extensions_where_present() {
        if std::env::consts::ARCH == "x86_64"
            && std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" sha_ni"))
        {
            assert!(is_accelerated());
            assert!(matches!(Sha1Lanes::new().state, State::Simd(_)));
        }
    }
}
