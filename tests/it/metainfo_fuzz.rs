//! The fuzz targets' properties (`fuzz/src/lib.rs`), checked on stable Rust in every test run: a few
//! hundred thousand inputs mutated from real torrents with a fixed seed, so a failure reproduces.
//!
//! `BTORRENT_FUZZ_ITERS` (default 300,000) and `BTORRENT_FUZZ_SECS` (default 4) bound the run, whichever
//! comes first; `BTORRENT_FUZZ_SEED` picks another seed. The coverage-guided version of the same checks
//! runs with `cargo +nightly fuzz run metainfo_from_bytes` (see `fuzz/README.md`).

// The checks the fuzz targets run (loaded once for the whole binary, in main.rs).
use crate::fuzz_checks as checks;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::env_or;
use btorrent::metainfo::{create_torrent, CreateOptions, Metainfo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Real torrents to start from: the mktorrent and libtorrent fixtures and a few of our own.
fn seeds() -> Vec<Vec<u8>> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<Vec<u8>> = [
        "mktorrent-multi.torrent",
        "libtorrent-hybrid.torrent",
        "libtorrent-v2.torrent",
    ]
    .iter()
    .map(|f| std::fs::read(fixtures.join(f)).unwrap())
    .collect();
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_tree(
        dir.path(),
        &[
            ("multi/a", 20_000),
            ("multi/e", 0),
            ("multi/s/b", 17),
            ("one.bin", 40_000),
        ],
    );
    for (src, opts) in [
        ("one.bin", CreateOptions::default()),
        (
            "multi",
            CreateOptions {
                trackers: vec!["http://127.0.0.1:1/a".into(), "udp://127.0.0.1:2".into()],
                piece_length: Some(16384),
                private: true,
                comment: Some("c".into()),
                source: Some("S".into()),
                ..Default::default()
            },
        ),
        (
            "multi",
            CreateOptions {
                piece_length: Some(16384),
                v2: true,
                ..Default::default()
            },
        ),
        (
            "multi",
            CreateOptions {
                piece_length: Some(16384),
                hybrid: true,
                ..Default::default()
            },
        ),
    ] {
        let m = create_torrent(&dir.path().join(src), &opts, &|_, _| {}).unwrap();
        out.push(m.as_bytes().to_vec());
    }
    for s in &out {
        Metainfo::from_bytes(s).expect("seeds are valid");
    }
    out
}

const TOKENS: &[&[u8]] = &[
    b"e",
    b"d",
    b"l",
    b"i",
    b":",
    b"0:",
    b"de",
    b"le",
    b"i0e",
    b"i-1e",
    b"..",
    b"/",
    b"\\",
    b".",
    b"\0",
    b"4:path",
    b"6:length",
    b"5:files",
    b"4:name",
    b"6:pieces",
    b"12:piece length",
    b"4:attr1:p",
    b"4:info",
    b"7:private",
    b"8:url-list",
    b"10:path.utf-8",
    b"2:..",
    b"1:/",
    b"0:",
];

const NUMBERS: &[&[u8]] = &[
    b"0",
    b"1",
    b"-1",
    b"19",
    b"20",
    b"21",
    b"40",
    b"16384",
    b"16385",
    b"268435456",
    b"268435457",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"99999999999999999999",
    b"1125899906842624",
    b"00",
    b"-0",
];

/// One random edit of `buf`; `other` is another seed for splicing.
fn mutate(rng: &mut StdRng, buf: &mut Vec<u8>, other: &[u8]) {
    let len = buf.len();
    let at = |rng: &mut StdRng| rng.gen_range(0..=len);
    match rng.gen_range(0..10) {
        0 if len > 0 => {
            let i = rng.gen_range(0..len);
            buf[i] ^= 1 << rng.gen_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.gen_range(0..len);
            const BYTES: &[u8] = b"\0\xffedli:0123456789-/.";
            buf[i] = BYTES[rng.gen_range(0..BYTES.len())];
        }
        2 => {
            let start = at(rng);
            let end = (start + rng.gen_range(1..32)).min(len);
            buf.drain(start..end);
        }
        3 => {
            let start = at(rng);
            let end = (start + rng.gen_range(1..64)).min(len);
            let chunk = buf[start..end].to_vec();
            let to = rng.gen_range(0..=len);
            buf.splice(to..to, chunk);
        }
        4 => buf.truncate(at(rng)),
        5 => {
            // Replace a run of digits (an integer or a string length) with an interesting number.
            let digit_runs: Vec<usize> = (0..len)
                .filter(|&i| buf[i].is_ascii_digit() && (i == 0 || !buf[i - 1].is_ascii_digit()))
                .collect();
            if let Some(&start) = digit_runs.get(rng.gen_range(0..digit_runs.len().max(1))) {
                let end = start
                    + buf[start..]
                        .iter()
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                let n = NUMBERS[rng.gen_range(0..NUMBERS.len())];
                buf.splice(start..end, n.iter().copied());
            }
        }
        6 => {
            let cut = at(rng);
            let from = rng.gen_range(0..=other.len());
            buf.truncate(cut);
            buf.extend_from_slice(&other[from..]);
        }
        7 => {
            let to = at(rng);
            let tok = TOKENS[rng.gen_range(0..TOKENS.len())];
            buf.splice(to..to, tok.iter().copied());
        }
        8 => {
            let to = at(rng);
            let n = rng.gen_range(1..16);
            let noise: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
            buf.splice(to..to, noise);
        }
        _ => {
            // Swap two ranges' worth of structure: copy a chunk over another place.
            if len > 2 {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(0..len);
                let n = rng.gen_range(1..=(len - a.max(b)).min(48));
                let chunk = buf[a..a + n].to_vec();
                buf[b..b + n].copy_from_slice(&chunk);
            }
        }
    }
}

#[test]
fn mutated_torrents_keep_every_parser_guarantee() {
    let (done, accepted) = mutation_run(&seeds(), 300_000, 0x5EED_2024, |input| {
        checks::bencode_validate(input);
        checks::metainfo_from_bytes(input);
        Metainfo::from_bytes(input).is_ok()
    });
    eprintln!("{done} mutated inputs, {accepted} accepted as torrents");
    assert!(
        accepted * 100 >= done && accepted < done,
        "mutations should yield both valid and invalid torrents: {accepted} of {done}"
    );
}

/// Feeds `check` mutations of `seeds` (1 to 4 [`mutate`] steps each) until `BTORRENT_FUZZ_ITERS`
/// inputs (default `iters`) or `BTORRENT_FUZZ_SECS` (default 4) have passed, from the seed
/// `BTORRENT_FUZZ_SEED` (default `seed`). `check` panics on a violated property (the input is then
/// printed in hex) and says whether the input was accepted. Returns (inputs, accepted).
pub(crate) fn mutation_run(
    seeds: &[Vec<u8>],
    iters: u64,
    seed: u64,
    check: impl Fn(&[u8]) -> bool,
) -> (u64, u64) {
    let budget = Duration::from_secs_f64(env_or("BTORRENT_FUZZ_SECS", 4.0));
    mutations(seeds, iters, Some(budget), seed, check)
}

/// [`mutation_run`] of exactly `BTORRENT_FUZZ_ITERS` inputs (default `iters`), however long they
/// take: for checks that cost milliseconds each (an encrypted handshake's key exchange), which a
/// busy machine would hold to too few in a time budget.
pub(crate) fn mutation_count(
    seeds: &[Vec<u8>],
    iters: u64,
    seed: u64,
    check: impl Fn(&[u8]) -> bool,
) -> (u64, u64) {
    mutations(seeds, iters, None, seed, check)
}

fn mutations(
    seeds: &[Vec<u8>],
    iters: u64,
    budget: Option<Duration>,
    seed: u64,
    check: impl Fn(&[u8]) -> bool,
) -> (u64, u64) {
    let iters: u64 = env_or("BTORRENT_FUZZ_ITERS", iters);
    let seed: u64 = env_or("BTORRENT_FUZZ_SEED", seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let (mut done, mut accepted) = (0u64, 0u64);
    while done < iters && budget.is_none_or(|b| start.elapsed() < b) {
        let mut input = seeds[rng.gen_range(0..seeds.len())].clone();
        let other = &seeds[rng.gen_range(0..seeds.len())];
        for _ in 0..rng.gen_range(1..=4) {
            mutate(&mut rng, &mut input, other);
        }
        match catch_unwind(AssertUnwindSafe(|| check(&input))) {
            Ok(ok) => accepted += u64::from(ok),
            Err(panic) => {
                eprintln!(
                    "input {done} (seed {seed:#x}) broke a guarantee; {} bytes, hex: {}",
                    input.len(),
                    hex::encode(&input)
                );
                std::panic::resume_unwind(panic);
            }
        }
        done += 1;
    }
    eprintln!("{:.1} s", start.elapsed().as_secs_f64());
    assert!(
        done >= 1000.min(iters),
        "too few inputs in the time budget: {done}"
    );
    (done, accepted)
}

/// Bytes that are not derived from a torrent at all: random bencode-like token soup.
#[test]
fn random_token_soup_keeps_every_parser_guarantee() {
    let mut rng = StdRng::seed_from_u64(env_or("BTORRENT_FUZZ_SEED", 0x50FA));
    let start = Instant::now();
    let mut done = 0;
    while done < 100_000 && start.elapsed() < Duration::from_secs(2) {
        let mut input = b"d".to_vec();
        for _ in 0..rng.gen_range(0..40) {
            match rng.gen_range(0..3) {
                0 => input.extend_from_slice(TOKENS[rng.gen_range(0..TOKENS.len())]),
                1 => input.extend_from_slice(NUMBERS[rng.gen_range(0..NUMBERS.len())]),
                _ => input.push(rng.gen()),
            }
        }
        checks::bencode_validate(&input);
        checks::metainfo_from_bytes(&input);
        done += 1;
    }
    assert!(done >= 1000, "{done}");
}
