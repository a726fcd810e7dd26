//! The UDP tracker packet fuzz target's property (`fuzz/src/lib.rs`: `udp_tracker_packet`), checked on
//! stable Rust in every test run: every kind of BEP 15 packet, both directions, mutated with the
//! mutator of the .torrent fuzz test under a fixed seed, goes through the client's reply decoder, the
//! server's request decoder and btorrent's tracker (with and without a valid connection id).
//! `BTORRENT_FUZZ_ITERS`, `BTORRENT_FUZZ_SECS` and `BTORRENT_FUZZ_SEED` as there;
//! `cargo +nightly fuzz run udp_tracker_packet` is the coverage-guided run.

use crate::fuzz_checks as checks;
use crate::metainfo_fuzz::mutation_run;
use btorrent::announce::{AnnounceEvent, AnnounceRequest, AnnounceResponse, ScrapeStats};
use btorrent::udp_tracker::{Request, Response};
use btorrent::{InfoHash, PeerId};

fn packets() -> Vec<Vec<u8>> {
    let announce = AnnounceRequest {
        info_hash: InfoHash([3; 20]),
        peer_id: PeerId(*b"-BT0100-fuzzfuzzfuzz"),
        port: 6881,
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: Some(AnnounceEvent::Started),
        numwant: Some(50),
        key: Some(1),
        ip: Some("10.0.0.1".parse().unwrap()),
    };
    let requests = [
        Request::Connect { transaction_id: 1 },
        Request::Announce {
            connection_id: 2,
            transaction_id: 3,
            announce,
        },
        Request::Scrape {
            connection_id: 2,
            transaction_id: 4,
            hashes: vec![InfoHash([3; 20]), InfoHash([4; 20])],
        },
    ];
    let reply = AnnounceResponse {
        interval: std::time::Duration::from_secs(60),
        min_interval: None,
        complete: Some(1),
        incomplete: Some(2),
        peers: vec![
            "127.0.0.1:6881".parse().unwrap(),
            "[::1]:6882".parse().unwrap(),
        ],
        warning: None,
    };
    let responses = [
        (
            Response::Connect {
                transaction_id: 1,
                connection_id: 9,
            },
            false,
        ),
        (
            Response::Announce {
                transaction_id: 3,
                reply: reply.clone(),
            },
            false,
        ),
        (
            Response::Announce {
                transaction_id: 3,
                reply,
            },
            true,
        ),
        (
            Response::Scrape {
                transaction_id: 4,
                stats: vec![ScrapeStats {
                    complete: 1,
                    incomplete: 2,
                    downloaded: 3,
                }],
            },
            false,
        ),
        (
            Response::Error {
                transaction_id: 5,
                message: "no \u{1b}[2J way".into(),
            },
            false,
        ),
    ];
    let mut out: Vec<Vec<u8>> = requests
        .iter()
        .map(|r| {
            let mut b = Vec::new();
            r.encode(&mut b);
            b
        })
        .collect();
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
