//! The UDP tracker packet fuzz target's property (`fuzz/src/lib.rs`: `udp_tracker_packet`), checked on
//! stable Rust in every test run: every kind of BEP 15 packet, both directions, mutated with the
//! mutator of the .torrent fuzz test under a fixed seed, goes through the client's reply decoder, the
//! server's request decoder and btorrent's tracker (with and without a valid connection id).
//! `BTORRENT_FUZZ_ITERS`, `BTORRENT_FUZZ_SECS` and `BTORRENT_FUZZ_SEED` as there;
//! `cargo +nightly fuzz run udp_tracker_packet` is the coverage-guided run.

use crate::fuzz_checks as checks;
use crate::metainfo_fuzz::mutation_run;
use crate::tracker_udp_codec::{encoded, sample_requests, sample_responses};
use btorrent::udp_tracker::{Request, Response};

/// The codec test's packets of every kind, plus an error whose text holds a terminal escape.
fn packets() -> Vec<Vec<u8>> {
    let mut responses = sample_responses();
    responses.push((
        Response::Error {
            transaction_id: 5,
            message: "no \u{1b}[2J way".into(),
        },
        false,
    ));
    let mut out: Vec<Vec<u8>> = sample_requests().iter().map(encoded).collect();
    out.extend(responses.iter().map(|(r, ipv6)| {
        let mut b = Vec::new();
        r.encode(*ipv6, &mut b);
        b
    }));
    out
}

#[test]
fn mutated_udp_tracker_packets_keep_every_guarantee() {
    let seeds = packets();
    let (done, accepted) = mutation_run(&seeds, 100_000, 0x0D_9715, |input| {
        checks::udp_tracker_packet(input);
        Request::decode(input).is_ok() || Response::decode(input, false).is_ok()
    });
    eprintln!("{done} mutated packets, {accepted} decoded");
    assert!(accepted > 0 && accepted < done, "{accepted} of {done}");
}
