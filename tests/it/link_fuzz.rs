//! The `magnet_link` and `lsd_message` fuzz targets' properties (`fuzz/src/lib.rs`), checked on
//! stable Rust in every test run: magnet links (v1, v2 and hybrid, with trackers, peers, web seeds,
//! file selections, percent escapes and control characters; mutable links with keys and salts) and
//! local service discovery datagrams (one or several info-hashes, either multicast group, mixed-case
//! headers) mutated with the bencode mutator of the .torrent fuzz test, from a fixed seed so a
//! failure reproduces. `cargo +nightly fuzz run magnet_link` / `lsd_message` are the
//! coverage-guided runs.

use crate::fuzz_checks as checks;
use crate::metainfo_fuzz::mutation_run;
use btorrent::lsd::{self, GROUP_V4, GROUP_V6};
use btorrent::magnet::Magnet;
use btorrent::mutable_link::MutableLink;
use btorrent::InfoHash;

const HEX: &str = "0123456789abcdef0123456789abcdef01234567";

#[test]
fn mutated_magnet_links_keep_the_readers_guarantees() {
    let v2 = format!("1220{}", "ab".repeat(32));
    let seeds: Vec<Vec<u8>> = [
        format!("magnet:?xt=urn:btih:{HEX}&dn=photos+2026&tr=http%3A%2F%2F198.18.0.1%3A6969%2Fannounce&tr=udp://198.18.0.1:6969"),
        format!("magnet:?xt=urn:btih:{HEX}&x.pe=198.18.0.2:6881&x.pe=[2001:db8::7]:51413&x.pe=nas.local:6881"),
        format!("magnet:?xt=urn:btmh:{v2}&xt=urn:btih:{HEX}&ws=https://example.org/files/&so=0,2,4-6"),
        "magnet:?xt=urn:btih:CDE4JIHNB2DEZJHQNP3WZ7VKJL2ZZVNK&dn=%1B%5B2Ja%E2%80%A6&so=3".to_string(),
        format!("magnet:?xt=urn:btmh:{v2}&dn=v2+only&tr=&ws=http://x/"),
        format!("magnet:?xs=urn:btpk:{}&s=0badc0de&dn=my%20folder", "cd".repeat(32)),
        format!("magnet:?xs=urn:btpk:{}&tr=http://t/&dn=%2B", "ef".repeat(32)),
        "not a link".to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    // The seeds themselves read as they should.
    assert_eq!(
        Magnet::parse(&String::from_utf8_lossy(&seeds[1]))
            .unwrap()
            .peers
            .len(),
        3
    );
    let selected = Magnet::parse(&String::from_utf8_lossy(&seeds[2])).unwrap();
    assert_eq!(
        selected.selected(8).unwrap().unwrap(),
        [true, false, true, false, true, true, true, false]
    );
    let shown = Magnet::parse(&String::from_utf8_lossy(&seeds[3])).unwrap();
    assert!(!shown.name.unwrap().chars().any(char::is_control));
    let mutable = MutableLink::parse(&String::from_utf8_lossy(&seeds[5]))
        .unwrap()
        .unwrap();
    assert_eq!(mutable.salt.as_deref(), Some(&[0x0b, 0xad, 0xc0, 0xde][..]));

    let (done, accepted) = mutation_run(&seeds, 100_000, 0x0B_E909_0053, |input| {
        checks::magnet_link(input);
        std::str::from_utf8(input).is_ok_and(|s| Magnet::parse(s).is_ok())
    });
    eprintln!("{done} mutated magnet links, {accepted} accepted");
    assert!(accepted > 0 && accepted < done, "{accepted} of {done}");
}

#[test]
fn mutated_local_discovery_datagrams_keep_the_readers_guarantees() {
    let ih = |b: u8| InfoHash([b; 20]);
    let mut several = lsd::search(GROUP_V4.into(), 6881, &ih(1), "c00k1e");
    several.truncate(several.len() - 4);
    several.extend_from_slice(format!("INFOHASH: {}\r\n\r\n\r\n", ih(2).to_hex()).as_bytes());
    let seeds = vec![
        lsd::search(GROUP_V4.into(), 6881, &ih(7), "5f2c01"),
        lsd::search(GROUP_V6.into(), 51413, &ih(9), ""),
        several,
        format!("BT-SEARCH * HTTP/1.1\r\nport: 1\r\ninfohash: {HEX}\r\n\r\n").into_bytes(),
    ];
    let read = lsd::parse(&seeds[2]).unwrap();
    assert_eq!(read.info_hashes, [ih(1), ih(2)]);
    assert_eq!(read.cookie.as_deref(), Some("c00k1e"));

    let (done, accepted) = mutation_run(&seeds, 100_000, 0x0B_E914, |input| {
        checks::lsd_message(input);
        lsd::parse(input).is_ok()
    });
    eprintln!("{done} mutated discovery datagrams, {accepted} accepted");
    assert!(accepted > 0 && accepted < done, "{accepted} of {done}");
}
