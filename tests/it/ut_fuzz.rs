//! The `ut_metadata`, `ut_pex` and `ut_holepunch` fuzz targets' properties (`fuzz/src/lib.rs`),
//! checked on stable Rust
//! in every test run: real messages (requests, rejects, data pieces, PEX with IPv4 and IPv6 peers and
//! flags, holepunch messages of each type and address family) mutated with the bencode mutator of
//! the .torrent fuzz test, from a fixed seed so a failure reproduces. `cargo +nightly fuzz run
//! ut_metadata` / `ut_pex` / `ut_holepunch` are the coverage-guided runs.

use std::net::SocketAddr;

use crate::fuzz_checks as checks;
use crate::metainfo_fuzz::mutation_run;
use btorrent::wire::ut_holepunch::{HolepunchError, HolepunchMsg};
use btorrent::wire::ut_metadata::{data_for, MetadataMsg};
use btorrent::wire::ut_pex::PexMsg;

#[test]
fn mutated_ut_metadata_messages_keep_the_decoders_guarantees() {
    let info = vec![b'x'; 40_000];
    let seeds = vec![
        MetadataMsg::Request { piece: 0 }.encode(),
        MetadataMsg::Reject { piece: 2 }.encode(),
        data_for(&info, 0).unwrap(),
        data_for(&info, 2).unwrap(),
        b"d8:msg_typei1e5:piecei0e10:total_sizei3eeabc".to_vec(),
        b"d8:msg_typei9e5:piecei0ee".to_vec(),
    ];
    let (done, accepted) = mutation_run(&seeds, 100_000, 0x0B_E909, |input| {
        checks::ut_metadata(input);
        MetadataMsg::parse(input, None).is_ok()
    });
    eprintln!("{done} mutated ut_metadata messages, {accepted} accepted");
    assert!(accepted > 0 && accepted < done, "{accepted} of {done}");
}

#[test]
fn mutated_ut_pex_messages_keep_the_decoders_guarantees() {
    let v4 = |i: u8| SocketAddr::from(([10, 0, 0, i], 6881));
    let v6: SocketAddr = "[2001:db8::7]:51413".parse().unwrap();
    let seeds = vec![
        PexMsg {
            added: vec![(v4(1), 0x02), (v6, 0x10), (v4(2), 0)],
            dropped: vec![v4(3), v6],
        }
        .encode(),
        PexMsg {
            added: (0..60).map(|i| (v4(i), 0)).collect(),
            dropped: vec![],
        }
        .encode(),
        b"d5:added6:\x7f\x00\x00\x01\x00\x007:added.f1:\x02e".to_vec(),
    ];
    let (done, accepted) = mutation_run(&seeds, 100_000, 0x0B_E911, |input| {
        checks::ut_pex(input);
        PexMsg::parse(input).is_ok()
    });
    eprintln!("{done} mutated ut_pex messages, {accepted} accepted");
    assert!(accepted > 0 && accepted < done, "{accepted} of {done}");
}

#[test]
fn mutated_ut_holepunch_messages_keep_the_decoders_guarantees() {
    let v4: SocketAddr = "198.18.0.12:6881".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::7]:51413".parse().unwrap();
    let seeds = vec![
        HolepunchMsg::rendezvous(v4).encode(),
        HolepunchMsg::connect(v6).encode(),
        HolepunchMsg::error(v4, HolepunchError::NoSupport).encode(),
        HolepunchMsg::error(v6, HolepunchError::Other(7)).encode(),
    ];
    let (done, accepted) = mutation_run(&seeds, 100_000, 0x0B_E955, |input| {
        checks::ut_holepunch(input);
        HolepunchMsg::parse(input).is_ok()
    });
    eprintln!("{done} mutated ut_holepunch messages, {accepted} accepted");
    assert!(accepted > 0 && accepted < done, "{accepted} of {done}");
}
