//! The peer wire fuzz targets' properties (`fuzz/src/lib.rs`: `peer_messages`, `ext_handshake`),
//! checked on stable Rust in every test run: byte streams a hostile peer could send, built from real
//! messages of a random torrent and then mutated (bytes flipped, cut, repeated, length prefixes
//! replaced by huge or wrong ones), with a fixed seed so a failure reproduces.
//!
//! `BTORRENT_FUZZ_ITERS` (default 100,000) and `BTORRENT_FUZZ_SECS` (default 4) bound the run,
//! whichever comes first; `BTORRENT_FUZZ_SEED` picks another seed. The coverage-guided version runs
//! with `cargo +nightly fuzz run peer_messages` (see `fuzz/README.md`).

// The checks the fuzz targets run (loaded once for the whole binary, in main.rs).
use crate::fuzz_checks as checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::support::env_or;
use btorrent::wire::message::encode;
use btorrent::wire::{Bitfield, BlockRef, ExtHandshake, Message};
use bytes::{Bytes, BytesMut};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A message a real peer could send for a torrent of `pieces` pieces (some of them out of range).
fn some_message(rng: &mut StdRng, pieces: u32) -> Message {
    let index = if rng.gen_bool(0.9) {
        rng.gen_range(0..pieces)
    } else {
        rng.gen()
    };
    let block = BlockRef {
        index,
        begin: rng.gen_range(0..4u32) * 16384,
        length: if rng.gen_bool(0.8) {
            16384
        } else {
            rng.gen_range(0..40_000)
        },
    };
    match rng.gen_range(0..16) {
        0 => Message::KeepAlive,
        1 => Message::Choke,
        2 => Message::Unchoke,
        3 => Message::Interested,
        4 => Message::NotInterested,
        5 => Message::Have(index),
        6 => {
            let n = if rng.gen_bool(0.9) {
                pieces as usize
            } else {
                rng.gen_range(0..600)
            };
            let mut b = Bitfield::new(n);
            for i in 0..n {
                if rng.gen_bool(0.5) {
                    b.set(i);
                }
            }
            Message::Bitfield(b)
        }
        7 => Message::Request(block),
        8 => {
            let len = (block.length as usize).min(20_000);
            let data: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            Message::Piece {
                index,
                begin: block.begin,
                data: Bytes::from(data),
            }
        }
        9 => Message::Cancel(block),
        10 => Message::Port(rng.gen()),
        11 => Message::Suggest(index),
        12 => Message::HaveAll,
        13 => Message::HaveNone,
        14 => Message::Reject(block),
        _ => {
            let len = rng.gen_range(0..300);
            Message::Extended {
                id: rng.gen_range(0..3),
                payload: Bytes::from((0..len).map(|_| rng.gen::<u8>()).collect::<Vec<_>>()),
            }
        }
    }
}

/// One input for `peer_messages`: four bytes choosing the torrent, then a few messages, mutated.
fn stream(rng: &mut StdRng) -> Vec<u8> {
    let header: [u8; 4] = rng.gen();
    let pieces = 1 + u32::from(u16::from_le_bytes([header[0], header[1]])) % 300;
    let mut out = BytesMut::from(&header[..]);
    for _ in 0..rng.gen_range(1..8) {
        encode(&some_message(rng, pieces), &mut out);
    }
    let mut out = out.to_vec();
    for _ in 0..rng.gen_range(0..4) {
        let at = rng.gen_range(4..=out.len());
        match rng.gen_range(0..6) {
            0 if at < out.len() => out[at] ^= 1 << rng.gen_range(0..8),
            1 => out.truncate(at),
            2 if at + 4 <= out.len() => {
                // A length prefix anywhere: huge, just over a limit, or zero.
                let len: u32 = *[u32::MAX, 0x7fff_ffff, 16384 + 14, 65 * 1024, 0, 1]
                    .get(rng.gen_range(0..6))
                    .unwrap();
                out[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
            3 => {
                let end = (at + rng.gen_range(1..64)).min(out.len());
                let copy = out[at..end].to_vec();
                out.splice(at..at, copy);
            }
            4 if at < out.len() => out[at] = rng.gen(),
            _ => {
                let junk: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.gen()).collect();
                out.splice(at..at, junk);
            }
        }
    }
    out
}

/// Runs `check` on `input`; on a panic, fails with the input in hex so it can be replayed.
fn run(what: &str, check: fn(&[u8]), input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| check(input))).is_err() {
        let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
        panic!("{what} failed on this input (hex): {hex}");
    }
}

#[test]
fn hostile_byte_streams_keep_the_decoders_properties() {
    let iters: u64 = env_or("BTORRENT_FUZZ_ITERS", 100_000);
    let budget = Duration::from_secs_f64(env_or("BTORRENT_FUZZ_SECS", 4.0));
    let mut rng = StdRng::seed_from_u64(env_or("BTORRENT_FUZZ_SEED", 0x3173_2E00));
    let start = Instant::now();
    let mut done = 0u64;
    while done < iters && start.elapsed() < budget {
        let input = stream(&mut rng);
        run("peer_messages", checks::peer_messages, &input);
        done += 1;
    }
    assert!(done >= 1000, "only {done} inputs in {budget:?}");
}

#[test]
fn hostile_extension_handshakes_keep_the_parsers_properties() {
    let seeds: Vec<Vec<u8>> = vec![
        ExtHandshake::ours(btorrent::wire::extension::OurExt {
            listen_port: 6881,
            metadata_size: Some(100),
            pex: true,
            holepunch: false,
            upload_only: false,
            prefers_encryption: false,
            your_ip: None,
        }),
        b"d1:md11:ut_metadatai2e6:ut_pexi1ee1:pi6881e4:reqqi500e1:v16:libtorrent 2.0.8e".to_vec(),
        b"d1:v15:x\x1b]0;owned\x07\x1b[2J4:reqqi-1e1:pi0ee".to_vec(),
    ];
    let mut rng = StdRng::seed_from_u64(env_or("BTORRENT_FUZZ_SEED", 0xE87));
    let start = Instant::now();
    let mut done = 0;
    while done < 50_000 && start.elapsed() < Duration::from_secs(2) {
        let mut input = seeds[rng.gen_range(0..seeds.len())].clone();
        for _ in 0..rng.gen_range(1..4) {
            let at = rng.gen_range(0..input.len());
            match rng.gen_range(0..3) {
                0 => input[at] = rng.gen(),
                1 => input.truncate(at.max(1)),
                _ => input.insert(at, rng.gen_range(0..32)),
            }
        }
        run("ext_handshake", checks::ext_handshake, &input);
        done += 1;
    }
    // The seeds themselves, whole.
    for s in &seeds {
        run("ext_handshake", checks::ext_handshake, s);
    }
}
