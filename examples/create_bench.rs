//! Helpers for `benches/create.sh`.
//!
//!     create_bench sha1 [total_MiB] [piece_KiB]   single-core SHA-1 speed of the `sha1` crate, in MB/s
//!     create_bench create <path> [piece_length] [threads]   time metainfo::create_torrent alone
//!     create_bench piece-length <bytes>            the piece length btorrent chooses for that size
//!
//! `sha1` hashes one piece-sized buffer from memory (the hashing creation does per piece) until
//! `total_MiB` have been hashed, three times, and prints the best rate: a measure of the core, not of
//! the disk or the page cache.

use std::path::Path;
use std::time::Instant;

use btorrent::metainfo::create::auto_piece_length;
use btorrent::metainfo::{create_torrent, CreateOptions};
use sha1::{Digest, Sha1};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn sha1_speed(total_mib: usize, piece_kib: usize) {
    let piece: Vec<u8> = (0..piece_kib << 10).map(|i| (i * 31 % 251) as u8).collect();
    let rounds = (total_mib << 10) / piece_kib;
    let mut best = f64::MAX;
    let mut sink = 0u8;
    for _ in 0..3 {
        let start = Instant::now();
        for _ in 0..rounds {
            sink ^= Sha1::digest(&piece)[0];
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let bytes = (rounds * piece.len()) as f64;
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
                "usage: create_bench sha1 [total_MiB] [piece_KiB] | create <path> [piece_length] \
                 [threads] | piece-length <bytes>"
            );
            std::process::exit(2);
        }
    }
}
