//! The tracker-reply fuzz target's property (`fuzz/src/lib.rs`: `tracker_reply`), checked on stable
//! Rust in every test run: announce and scrape replies a hostile tracker could send, built from real
//! ones (compact and dictionary peers, `peers6`, refusals and warnings with escape sequences, scrape
//! files) and mutated with the bencode mutator of the .torrent fuzz test, with a fixed seed so a
//! failure reproduces. `BTORRENT_FUZZ_ITERS` (default 200,000), `BTORRENT_FUZZ_SECS` (default 4) and
//! `BTORRENT_FUZZ_SEED` as there; `cargo +nightly fuzz run tracker_reply` is the coverage-guided run.

use crate::fuzz_checks as checks;
use crate::metainfo_fuzz::mutation_run;
use btorrent::announce::{parse_announce, parse_scrape};

fn replies() -> Vec<Vec<u8>> {
    let long_reason = "x".repeat(5000);
    vec![
        b"d8:completei3e10:incompletei1e8:intervali1800e12:min intervali900e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x1a\xe2e".to_vec(),
        b"d8:intervali60e5:peersld2:ip9:127.0.0.17:peer id20:-BT0100-abcdefghijkl4:porti6881eed2:ip3:::14:porti1eeee".to_vec(),
        b"d8:intervali60e5:peers0:6:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe1e".to_vec(),
        b"d14:failure reason23:not \x1b[2Jauthorised\r\n here!e".to_vec(),
        format!("d14:failure reason{}:{long_reason}e", long_reason.len()).into_bytes(),
        b"d8:intervali0e15:warning message14:\x1b]0;title\x07 okay5:peers0:e".to_vec(),
        b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei5e10:downloadedi50e10:incompletei10ee20:bbbbbbbbbbbbbbbbbbbbd8:completei0e10:incompletei0eeee".to_vec(),
        b"le".to_vec(),
    ]
}

#[test]
fn mutated_tracker_replies_keep_every_parser_guarantee() {
    let seeds = replies();
    // The seeds themselves: a refusal's escape sequences and length are tamed.
    let refusal = parse_announce(&seeds[3]).unwrap_err().to_string();
    assert!(!refusal.chars().any(char::is_control), "{refusal:?}");
    assert!(parse_announce(&seeds[4]).unwrap_err().to_string().len() < 400);
    assert_eq!(parse_announce(&seeds[0]).unwrap().peers.len(), 2);
    assert_eq!(parse_scrape(&seeds[6]).unwrap().len(), 2);

    let (done, accepted) = mutation_run(&seeds, 200_000, 0x7AC_4E2, |input| {
        checks::tracker_reply(input);
        parse_announce(input).is_ok()
    });
    eprintln!("{done} mutated replies, {accepted} accepted as announce replies");
    assert!(accepted > 0 && accepted < done, "{accepted} of {done}");
}
