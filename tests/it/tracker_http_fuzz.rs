//! The HTTP tracker fuzz target's property (`fuzz/src/lib.rs`: `tracker_http_request`), checked on
//! stable Rust in every test run: announces (compact or not, every event, `numwant` past the cap,
//! `ip=` naming a LAN address, loopback or nobody), scrapes and `/get_peers` pages, from clients on
//! the internet, a LAN and loopback, mutated with the mutator of the .torrent fuzz test under a fixed
//! seed, go through btorrent's tracker as it serves them, its caps small enough to be reached.
//! `BTORRENT_FUZZ_ITERS`, `BTORRENT_FUZZ_SECS` and `BTORRENT_FUZZ_SEED` as there;
//! `cargo +nightly fuzz run tracker_http_request` is the coverage-guided run.

use crate::fuzz_checks::{self as checks, http_tracker_caps as caps, TrackerAnswer};
use crate::metainfo_fuzz::mutation_run;

/// Route and client of a request, as the target reads its first byte.
fn pick(route: u8, client: u8) -> u8 {
    route + 3 * client
}
const ANNOUNCE: u8 = 0;
const SCRAPE: u8 = 1;
const GET_PEERS: u8 = 2;
const INTERNET: u8 = 0;
const LAN: u8 = 2;
const LOOPBACK: u8 = 3;
const IPV6: u8 = 4;

fn escaped(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

fn request(pick: u8, query: &str) -> Vec<u8> {
    let mut input = vec![pick];
    input.extend_from_slice(query.as_bytes());
    input
}

fn announce(torrent: u8, peer: u8, port: u16, rest: &str) -> String {
    format!(
        "info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=1000{rest}",
        escaped(&[torrent; 20]),
        escaped(&[peer; 20])
    )
}

fn served(input: &[u8]) -> bool {
    matches!(checks::tracker_http_request(input), TrackerAnswer::Served)
}

#[test]
fn mutated_tracker_requests_keep_every_guarantee() {
    // The caps are reached: peers fill one torrent, then torrents fill the tracker.
    for peer in 0..caps::PEERS_PER_SWARM as u8 + 2 {
        let fits = usize::from(peer) < caps::PEERS_PER_SWARM;
        let query = announce(200, peer, 7000 + u16::from(peer), "&event=started");
        assert_eq!(
            served(&request(pick(ANNOUNCE, LAN), &query)),
            fits,
            "peer {peer}"
        );
    }
    for torrent in 1..caps::SWARMS as u8 + 2 {
        let fits = usize::from(torrent) < caps::SWARMS;
        let query = announce(200 + torrent, 1, 7001, "");
        assert_eq!(
            served(&request(pick(ANNOUNCE, INTERNET), &query)),
            fits,
            "torrent {torrent}"
        );
    }
    let seeds: Vec<Vec<u8>> = vec![
        request(
            pick(ANNOUNCE, LAN),
            &announce(200, 3, 7003, "&numwant=1000"),
        ),
        request(
            pick(ANNOUNCE, LAN),
            &announce(203, 4, 7004, "&compact=0&ip=192.168.1.30"),
        ),
        request(
            pick(ANNOUNCE, LAN),
            &announce(200, 5, 7005, "&ip=0.0.0.0&event=completed"),
        ),
        request(
            pick(ANNOUNCE, LOOPBACK),
            &announce(201, 9, 7009, "&ip=127.0.0.2&no_peer_id=1"),
        ),
        request(
            pick(ANNOUNCE, IPV6),
            &announce(202, 6, 7006, "&numwant=-1&event=paused&key=x"),
        ),
        request(
            pick(ANNOUNCE, INTERNET),
            &announce(200, 7, 7007, "&event=stopped"),
        ),
        request(pick(ANNOUNCE, INTERNET), "info_hash=%zz&peer_id=x&port=0"),
        request(
            pick(SCRAPE, INTERNET),
            &format!(
                "info_hash={}&info_hash={}",
                escaped(&[200; 20]),
                escaped(&[201; 20])
            ),
        ),
        request(pick(SCRAPE, IPV6), ""),
        request(
            pick(GET_PEERS, LAN),
            &format!("info_hash={}&limit=3&offset=1", "c8".repeat(20)),
        ),
        request(
            pick(GET_PEERS, LOOPBACK),
            "after=192.168.1.20:7000&limit=100000",
        ),
    ];
    // The seeds are answered as they should be: each served but the bad escape (6) and the scrape
    // naming no torrent (8, a full scrape is not offered).
    for (i, seed) in seeds.iter().enumerate() {
        let refused = i == 6 || i == 8;
        assert_eq!(
            served(seed),
            !refused,
            "seed {i}: {}",
            String::from_utf8_lossy(seed)
        );
    }
    let many = (0..caps::SCRAPE_HASHES + 1)
        .map(|i| format!("info_hash={}", escaped(&[i as u8; 20])))
        .collect::<Vec<_>>()
        .join("&");
    assert!(
        !served(&request(pick(SCRAPE, INTERNET), &many)),
        "a scrape past the cap"
    );

    let (done, accepted) = mutation_run(&seeds, 100_000, 0x0B_E948, served);
    eprintln!("{done} mutated tracker requests, {accepted} served");
    assert!(accepted > 0 && accepted < done, "{accepted} of {done}");
}
