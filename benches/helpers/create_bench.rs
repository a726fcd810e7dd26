//! Helpers for `benches/create.sh`.
//!
//!     create_bench sha1 [total_MiB] [piece_KiB]   single-core SHA-1 speed of the `sha1` crate, in MB/s
//!     create_bench sha1-lanes [total_MiB] [chunk_KiB]   the same for `multi_sha1::Sha1Lanes` (all lanes)
//!     create_bench create <path> [piece_length] [threads]   time metainfo::create_torrent alone
//!     create_bench piece-length <bytes>            the piece length btorrent chooses for that size
//!
//! `sha1` hashes one buffer of `piece_KiB` from memory, over and over, until
//! `total_MiB` have been hashed, in 32 rounds, and prints the rate of the fastest round: a measure of
//! the core, not of the disk or the page cache, and (short rounds, best one) as little as possible of
//! whatever else the machine is running.

use std::path::Path;
use std::time::Instant;

use btorrent::metainfo::create::auto_piece_length;
use btorrent::metainfo::{create_torrent, CreateOptions};
use btorrent::multi_sha1::{Sha1Lanes, LANES};
use sha1::{Digest, Sha1};

/// Timed rounds of the SHA-1 measurements; the fastest counts.
const ROUNDS: usize = 32;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn sha1_speed(total_mib: usize, piece_kib: usize) {
    let piece: Vec<u8> = (0..piece_kib << 10).map(|i| (i * 31 % 251) as u8).collect();
    let per_round = ((total_mib << 10) / piece_kib / ROUNDS).max(1);
    let mut best = f64::MAX;
    let mut sink = 0u8;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..per_round {
            sink ^= Sha1::digest(&piece)[0];
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let bytes = (per_round * piece.len()) as f64;
    println!("{:.1}", bytes / best / 1e6);
    std::hint::black_box(sink);
}

fn sha1_lanes_speed(total_mib: usize, chunk_kib: usize) {
    let chunks: Vec<Vec<u8>> = (0..LANES)
        .map(|l| {
            (0..chunk_kib << 10)
                .map(|i| ((i + l) * 31 % 251) as u8)
                .collect()
        })
        .collect();
    let per_round = ((total_mib << 10) / chunk_kib / LANES / ROUNDS).max(1);
    let mut best = f64::MAX;
    let mut sink = 0u8;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..per_round {
            let mut lanes = Sha1Lanes::new();
            lanes.update(std::array::from_fn(|l| chunks[l].as_slice()));
            sink ^= lanes.finalize()[0][0];
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let bytes = (per_round * LANES * (chunk_kib << 10)) as f64;
    println!("{:.1}", bytes / best / 1e6);
    std::hint::black_box(sink);
}

fn create(path: &Path, piece_length: Option<u64>, threads: usize) {
    let opts = CreateOptions {
        trackers: vec!["http://127.0.0.1:6969/announce".into()],
        piece_length,
        threads,
        ..Default::default()
    };
    let start = Instant::now();
    let m = create_torrent(path, &opts, &|_, _| {}).unwrap_or_else(|e| panic!("{e}"));
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{} {} pieces of {} in {secs:.3} s, {:.1} MB/s",
        m.info_hash,
        m.info.piece_count(),
        m.info.piece_length,
        m.info.total_length as f64 / secs / 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("sha1") => sha1_speed(arg(&args, 2, 1024), arg(&args, 3, 1024)),
        Some("sha1-lanes") => sha1_lanes_speed(arg(&args, 2, 1024), arg(&args, 3, 128)),
        Some("piece-length") if args.len() > 2 => {
            println!("{}", auto_piece_length(arg(&args, 2, 0)))
        }
        Some("create") if args.len() > 2 => create(
            Path::new(&args[2]),
            args.get(3).and_then(|s| s.parse().ok()),
            arg(&args, 4, 0),
        ),
        _ => {
            eprintln!(
                "usage: create_bench sha1 [total_MiB] [piece_KiB] | sha1-lanes [total_MiB] \
                 [chunk_KiB] | create <path> [piece_length] [threads] | piece-length <bytes>"
            );
            std::process::exit(2);
        }
    }
}
