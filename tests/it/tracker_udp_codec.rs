//! The UDP tracker packet codec (BEP 15, `btorrent::udp_tracker`): every packet of both directions
//! round-trips, IPv4 and IPv6 announce replies carry their own peer format, and every wrong length,
//! action, protocol id and event is a typed error of one short line; an announce's URL data rides in
//! BEP 41 options, read leniently.

use std::time::Duration;

use btorrent::announce::{AnnounceEvent, AnnounceRequest, AnnounceResponse, ScrapeStats};
use btorrent::udp_tracker::{PacketError, Request, Response, MAX_SCRAPE_HASHES, PROTOCOL_ID};
use btorrent::{InfoHash, PeerId};

pub(crate) fn req(hash: u8, port: u16, left: u64, event: Option<AnnounceEvent>) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: InfoHash([hash; 20]),
        peer_id: PeerId(*b"-BT0100-udpudpudpudp"),
        port,
        uploaded: 7,
        downloaded: 8,
        left,
        event,
        numwant: Some(30),
        key: Some(0xfeed),
        ip: None,
    }
}

pub(crate) fn encoded(r: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(&mut out);
    out
}

/// One packet of each kind a client sends, with and without the optional fields.
pub(crate) fn sample_requests() -> Vec<Request> {
    vec![
        Request::Connect { transaction_id: 9 },
        Request::Announce {
            connection_id: 0x1122_3344_5566_7788,
            transaction_id: 10,
            announce: AnnounceRequest {
                ip: Some("10.1.2.3".parse().unwrap()),
                ..req(1, 6881, 100, Some(AnnounceEvent::Completed))
            },
            url_data: b"/announce?passkey=abc".to_vec(),
        },
        Request::Announce {
            connection_id: 1,
            transaction_id: 11,
            announce: AnnounceRequest {
                numwant: None,
                ..req(2, 1, 0, None)
            },
            url_data: Vec::new(),
        },
        Request::Announce {
            connection_id: 1,
            transaction_id: 13,
            announce: req(3, 2, 50, Some(AnnounceEvent::Paused)),
            // Longer than one option holds (255 bytes): three URLData options.
            url_data: format!("/announce?key={}", "k".repeat(600)).into_bytes(),
        },
        Request::Scrape {
            connection_id: 2,
            transaction_id: 12,
            hashes: vec![InfoHash([1; 20]), InfoHash([2; 20])],
        },
    ]
}

fn reply(peers: &[&str]) -> AnnounceResponse {
    AnnounceResponse {
        interval: Duration::from_secs(1800),
        min_interval: None,
        complete: Some(3),
        incomplete: Some(4),
        downloaded: None,
        downloaders: None,
        peers: peers.iter().map(|p| p.parse().unwrap()).collect(),
        warning: None,
    }
}

/// One packet of each kind a tracker sends, with whether it goes to an IPv6 client.
pub(crate) fn sample_responses() -> Vec<(Response, bool)> {
    vec![
        (
            Response::Connect {
                transaction_id: 1,
                connection_id: 77,
            },
            false,
        ),
        (
            Response::Announce {
                transaction_id: 2,
                reply: reply(&["1.2.3.4:5", "10.0.0.1:6881"]),
            },
            false,
        ),
        (
            Response::Announce {
                transaction_id: 3,
                reply: reply(&["[::1]:5", "[2001:db8::2]:6881"]),
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
                    downloaders: None,
                }],
            },
            false,
        ),
        (
            Response::Error {
                transaction_id: 5,
                message: "unregistered torrent".into(),
            },
            false,
        ),
    ]
}

#[test]
fn every_packet_round_trips() {
    let requests = sample_requests();
    for r in &requests {
        assert_eq!(Request::decode(&encoded(r)).as_ref(), Ok(r));
    }
    assert_eq!(encoded(&requests[0])[..8], PROTOCOL_ID.to_be_bytes());
    // Without URL data an announce is BEP 15's 98 bytes, no option after them.
    assert_eq!(encoded(&requests[2]).len(), 98);

    let responses = sample_responses();
    for (r, ipv6) in &responses {
        let mut out = Vec::new();
        r.encode(*ipv6, &mut out);
        assert_eq!(Response::decode(&out, *ipv6).as_ref(), Ok(r), "{out:?}");
    }
    // An IPv4 reply carries 6-byte peers only, an IPv6 one 18-byte peers only.
    let mixed = Response::Announce {
        transaction_id: 6,
        reply: reply(&["1.2.3.4:5", "[::1]:5"]),
    };
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    mixed.encode(false, &mut v4);
    mixed.encode(true, &mut v6);
    assert_eq!((v4.len(), v6.len()), (20 + 6, 20 + 18));
}

/// BEP 41: the URL's path and query ride after the 98 bytes as URLData options of up to 255 bytes,
/// closed by EndOfOptions; a tracker reads them leniently (NOP and unknown options skipped, a
/// truncated option ends them) and keeps at most `MAX_URL_DATA` bytes.
#[test]
fn url_data_rides_in_bep_41_options() {
    let requests = sample_requests();
    let short = encoded(&requests[1]);
    assert_eq!(short[98..], *b"\x02\x15/announce?passkey=abc\x00");
    let long = encoded(&requests[3]);
    let Request::Announce { url_data, .. } = &requests[3] else {
        unreachable!()
    };
    assert_eq!(url_data.len(), 614);
    // 255 + 255 + 104 bytes, each after its type and length, then the end.
    assert_eq!(long.len(), 98 + (2 + 255) * 2 + 2 + 104 + 1);
    assert_eq!((long[98], long[99]), (2, 255));
    assert_eq!((long[98 + 257], long[98 + 257 + 1]), (2, 255));
    assert_eq!((long[98 + 514], long[98 + 514 + 1]), (2, 104));
    assert_eq!(long.last(), Some(&0));

    let bare = encoded(&requests[2]);
    let with = |options: &[u8]| {
        let mut p = bare.clone();
        p.extend_from_slice(options);
        match Request::decode(&p).unwrap() {
            Request::Announce { url_data, .. } => String::from_utf8(url_data).unwrap(),
            other => panic!("{other:?}"),
        }
    };
    // NOP skipped, pieces joined, an unknown option skipped by its length, nothing after the end.
    assert_eq!(
        with(&[1, 2, 3, b'/', b'a', b'n', 9, 2, 7, 7, 2, 2, b'n', b'o', 0, 2, 1, b'x']),
        "/anno"
    );
    // A truncated option ends them, what came before kept; a lone type byte too.
    assert_eq!(with(&[2, 2, b'/', b'a', 2, 9, b'b']), "/a");
    assert_eq!(with(&[2]), "");
    assert_eq!(with(&[]), "");
    // Past the bound, the rest is dropped.
    let mut many = Vec::new();
    for _ in 0..8 {
        many.push(2);
        many.push(200);
        many.extend_from_slice(&[b'q'; 200]);
    }
    assert_eq!(with(&many).len(), btorrent::udp_tracker::MAX_URL_DATA);
}

#[test]
fn every_malformed_packet_is_a_typed_error() {
    let announce = encoded(&Request::Announce {
        connection_id: 5,
        transaction_id: 6,
        announce: req(1, 6881, 0, None),
        url_data: Vec::new(),
    });
    let connect = encoded(&Request::Connect { transaction_id: 1 });
    let with_action = |action: u32| {
        let mut p = announce.clone();
        p[8..12].copy_from_slice(&action.to_be_bytes());
        p
    };
    let mut bad_event = announce.clone();
    // 4 is a partial seed's `paused` (BEP 21, as libtorrent sends it); 5 is nothing.
    bad_event[80..84].copy_from_slice(&5u32.to_be_bytes());
    let mut bad_magic = connect.clone();
    bad_magic[0] ^= 1;
    let scrape_of = |n: usize| {
        let mut p = connect.clone();
        p[8..12].copy_from_slice(&2u32.to_be_bytes());
        p.extend(std::iter::repeat_n(7u8, n));
        p
    };
    let cases: Vec<(Vec<u8>, PacketError)> = vec![
        (
            vec![],
            PacketError::TooShort {
                what: "request",
                len: 0,
                need: 16,
            },
        ),
        (
            connect[..15].to_vec(),
            PacketError::TooShort {
                what: "request",
                len: 15,
                need: 16,
            },
        ),
        (
            [&connect[..], &[0]].concat(),
            PacketError::WrongLength {
                what: "connect request",
                len: 17,
            },
        ),
        (
            bad_magic,
            PacketError::BadProtocolId(PROTOCOL_ID ^ (1 << 56)),
        ),
        (
            announce[..97].to_vec(),
            PacketError::TooShort {
                what: "announce request",
                len: 97,
                need: 98,
            },
        ),
        (bad_event, PacketError::BadEvent(5)),
        (scrape_of(0), PacketError::NoHashes),
        (
            scrape_of(19),
            PacketError::WrongLength {
                what: "scrape request",
                len: 35,
            },
        ),
        (
            scrape_of(20 * (MAX_SCRAPE_HASHES + 1)),
            PacketError::TooManyHashes(MAX_SCRAPE_HASHES + 1),
        ),
        (with_action(3), PacketError::UnknownAction(3)),
        (
            with_action(0xffff_ffff),
            PacketError::UnknownAction(u32::MAX),
        ),
    ];
    for (packet, want) in cases {
        assert_eq!(Request::decode(&packet), Err(want.clone()), "{packet:?}");
        let line = want.to_string();
        assert!(!line.contains('\n') && line.len() < 100, "{line}");
    }

    let head = |action: u32, rest: &[u8]| [&action.to_be_bytes()[..], &[0, 0, 0, 9], rest].concat();
    let replies: Vec<(Vec<u8>, bool, PacketError)> = vec![
        (
            vec![0; 7],
            false,
            PacketError::TooShort {
                what: "reply",
                len: 7,
                need: 8,
            },
        ),
        (
            head(0, &[1; 7]),
            false,
            PacketError::WrongLength {
                what: "connect reply",
                len: 15,
            },
        ),
        (
            head(0, &[1; 9]),
            false,
            PacketError::WrongLength {
                what: "connect reply",
                len: 17,
            },
        ),
        (
            head(1, &[0; 11]),
            false,
            PacketError::TooShort {
                what: "announce reply",
                len: 19,
                need: 20,
            },
        ),
        (
            head(1, &[0; 12 + 7]),
            false,
            PacketError::WrongLength {
                what: "announce reply",
                len: 27,
            },
        ),
        // Six 6-byte peers are not whole 18-byte peers.
        (
            head(1, &[0; 12 + 36 + 6]),
            true,
            PacketError::WrongLength {
                what: "announce reply",
                len: 62,
            },
        ),
        (
            head(2, &[0; 13]),
            false,
            PacketError::WrongLength {
                what: "scrape reply",
                len: 21,
            },
        ),
        (head(4, &[]), false, PacketError::UnknownAction(4)),
    ];
    for (packet, ipv6, want) in replies {
        assert_eq!(Response::decode(&packet, ipv6), Err(want), "{packet:?}");
    }
    // An error's text is made fit to show.
    let Ok(Response::Error { message, .. }) = Response::decode(&head(3, b"no\x1b[2J\nway"), false)
    else {
        panic!("not an error reply");
    };
    assert_eq!(message, "no\u{FFFD}[2J\u{FFFD}way");
}
