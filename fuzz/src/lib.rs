//! What the fuzz targets check, shared by the cargo-fuzz targets (`fuzz_targets/`, nightly) and by the
//! seeded mutation tests `tests/it/metainfo_fuzz.rs` and `tests/it/wire_fuzz.rs` (stable, run in CI): for
//! any input bytes,
//!
//! - `bencode::validate` and `dict_entries` never panic and agree with one another;
//! - `Metainfo::from_bytes` never panics; a refusal is one line of bounded length; an accepted torrent
//!   keeps every invariant the rest of btorrent relies on (info-hash of the raw `info` bytes, one hash
//!   per piece, files contiguous, paths confined under any folder and distinct), re-parses to the same
//!   torrent, and survives a tracker edit with its info-hash unchanged;
//! - the peer wire decoder, fed a hostile peer's byte stream in reads of any size, never panics and
//!   never reserves more than the largest legal message (whatever length a peer claims); each message
//!   it accepts is within the torrent (indexes, blocks, bitfield length), re-encodes to a frame that
//!   decodes to the same message, and an error is one short line; the extension handshake parser
//!   never panics and keeps a client name short and free of control characters;
//! - the `ut_metadata` (BEP 9), `ut_pex` (BEP 11) and `ut_holepunch` (BEP 55) decoders never panic;
//!   what they accept is within
//!   bounds (a data piece of the right length for its index of a dictionary of 1 B to 16 MiB; at most 50
//!   added and 50 dropped peers, none on port 0; an address not on port 0) and re-encodes to the
//!   same message; an error is one short line;
//! - magnet links (BEP 9, 53, 46) never panic the link parsers: an accepted link keeps its lists
//!   bounded and free of repeats, its name short and free of control characters, its peers
//!   `host:port`, its web seeds `http(s)://`; its file selection picks at least one file of any
//!   torrent or says none; the .torrent made of it and a fetched info dictionary loads with that
//!   dictionary's info-hash; a mutable link reads back from the link made of it; an error is one
//!   short line;
//! - a local service discovery (BEP 14) datagram never panics its reader: an accepted one names a
//!   port and 1 to 32 distinct info-hashes, and the message made of each reads back the same;
//! - btorrent's tracker, sent any query on its HTTP routes from any kind of client, answers in a
//!   form its own client reads, lists only peers someone can dial, refuses in one short line and
//!   never holds more than its caps;
//! - each side of the encrypted handshake (MSE), facing a peer that computes its keys as a real
//!   one does and says any field it likes, never panics, succeeds exactly when what it was told is
//!   true, whole and within bounds, and hands on what the peer sent.
//!
//! A violated property panics, which is what both harnesses report.

use std::collections::HashSet;
use std::path::Path;

use btorrent::bencode;
use btorrent::fsutil::confined_join;
use btorrent::metainfo::v2::sha256;
use btorrent::metainfo::{edit_trackers, Metainfo, MetainfoError};
use btorrent::wire::message::encode;
use btorrent::wire::{ExtHandshake, Geometry, Message, PeerCodec, BLOCK_SIZE};
use bytes::BytesMut;
use sha1::{Digest, Sha1};
use tokio_util::codec::Decoder;

/// Longest error message allowed: the detail is cut at 300 characters, plus a short fixed prefix.
const MAX_ERROR_LEN: usize = 400;

pub fn bencode_validate(data: &[u8]) {
    let strict = bencode::validate(data, true);
    let loose = bencode::validate(data, false);
    if strict.is_ok() {
        assert!(loose.is_ok(), "strict accepts what loose refuses");
    }
    if let Ok(entries) = bencode::dict_entries(data) {
        assert!(loose.is_ok(), "dict_entries accepted what validate refuses");
        let mut keys = HashSet::new();
        let mut last = 0;
        for e in &entries {
            assert!(keys.insert(e.key), "dict_entries let a key through twice");
            assert!(e.value.start > last && e.value.end <= data.len());
            assert!(bencode::validate(&data[e.value.clone()], false).is_ok());
            last = e.value.end;
        }
    }
    if let Some(items) = bencode::list_items(data) {
        for item in items.take(10_000) {
            let Ok(item) = item else { break };
            assert!(!item.is_empty() && item.len() <= data.len());
        }
    }
    let _ = bencode::as_int(data);
    let _ = bencode::as_bytes(data);
}

pub fn metainfo_from_bytes(data: &[u8]) {
    match Metainfo::from_bytes(data) {
        Ok(m) => check_metainfo(data, &m),
        Err(e) => check_error(&e),
    }
}

fn check_error(e: &MetainfoError) {
    let msg = e.to_string();
    assert!(
        !msg.is_empty() && msg.len() <= MAX_ERROR_LEN,
        "error too long: {} bytes",
        msg.len()
    );
    assert!(!msg.contains(['\n', '\r']), "error spans lines: {msg:?}");
}

fn check_metainfo(data: &[u8], m: &Metainfo) {
    let bytes = m.as_bytes();
    assert!(
        data.starts_with(bytes),
        "kept bytes are not the start of the input"
    );
    assert!(bencode::validate(bytes, false).is_ok());
    let info = &m.info;
    match &info.v2 {
        None => {
            let expected: [u8; 20] = Sha1::digest(m.info_bytes()).into();
            assert_eq!(
                m.info_hash.0, expected,
                "info-hash is not SHA-1 of the raw info bytes"
            );
            assert_eq!(info.pieces.len(), info.piece_count());
            // A hybrid's v2 side is in its second swarm, and describes the same piece space.
            match &info.hybrid {
                None => assert!(m.info_hash_v2.is_none() && m.second_info_hash().is_none()),
                Some(h) => {
                    let full = sha256(m.info_bytes());
                    assert_eq!(m.info_hash_v2, Some(full));
                    assert_eq!(m.second_info_hash().unwrap().0, full[..20]);
                    if let Some(v2) = &h.layers {
                        assert_eq!(v2.pieces.len(), info.piece_count());
                    }
                }
            }
        }
        Some(v2) => {
            let full = sha256(m.info_bytes());
            assert_eq!(m.info_hash_v2, Some(full));
            assert_eq!(m.info_hash.0, full[..20], "info-hash is not SHA-256 cut");
            assert_eq!(v2.pieces.len(), info.piece_count());
            assert!(info.pieces.is_empty());
        }
    }

    assert!(info.piece_length > 0);
    assert!(info.total_length > 0);
    assert_eq!(
        info.piece_count() as u64,
        info.total_length.div_ceil(info.piece_length)
    );
    let mut sum = 0u64;
    for i in 0..info.piece_count().min(100_000) {
        let len = info.piece_len(i);
        assert!(len > 0 && len <= info.piece_length);
        sum += len;
    }
    if info.piece_count() <= 100_000 {
        assert_eq!(sum, info.total_length);
    }
    assert_eq!(info.piece_len(info.piece_count()), 0);
    assert_eq!(info.piece_len(usize::MAX), 0);

    assert!(!info.files.is_empty());
    if info.v2.is_none() {
        assert_eq!(
            info.multi_file,
            info.files.len() > 1 || info.files[0].path != Path::new(&info.name)
        );
    }
    let mut offset = 0u64;
    let mut seen = HashSet::new();
    for f in &info.files {
        assert_eq!(f.offset, offset, "files are not contiguous");
        offset += f.length;
        // A v2 torrent's lone file is named by its `file tree` key, which may differ from `name`.
        let lone = info.v2.is_some() && !info.multi_file && !f.padding;
        assert!(f.path.starts_with(&info.name) || lone);
        let joined = confined_join(Path::new("/base"), &f.path)
            .unwrap_or_else(|| panic!("path {:?} escapes the folder", f.path));
        assert!(joined.starts_with("/base"));
        if !f.padding {
            assert!(seen.insert(f.path.clone()), "path {:?} twice", f.path);
        }
    }
    assert_eq!(offset, info.total_length);
    for f in info.files.iter().filter(|f| !f.padding) {
        for dir in f.path.ancestors().skip(1) {
            assert!(!seen.contains(dir), "{dir:?} is a file and a folder");
        }
    }

    let again = Metainfo::from_bytes(bytes).expect("kept bytes re-parse");
    assert_eq!(again.info_hash, m.info_hash);
    assert_eq!(again.info.files, info.files);
    assert_eq!(again.trackers(), m.trackers());
    let _ = m.magnet();

    let edited = edit_trackers(m, "http://127.0.0.1:6969/announce").expect("edit a parsed torrent");
    let e = Metainfo::from_bytes(&edited).expect("edited torrent parses");
    assert_eq!(e.info_hash, m.info_hash, "edit changed the info-hash");
    assert_eq!(e.info_bytes(), m.info_bytes());
    assert_eq!(
        e.announce.as_deref(),
        Some("http://127.0.0.1:6969/announce")
    );
}

/// Room the decoder may keep beyond the largest message: its read headroom, twice over for the
/// allocator's rounding.
const DECODER_SLACK: usize = 256 * 1024;

/// The first four bytes choose the torrent (piece count, piece length, last piece's length) and
/// whether the fast extension was negotiated; the rest is what the peer sends.
pub fn peer_messages(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let piece_count = 1 + u32::from(u16::from_le_bytes([data[0], data[1]])) % 300;
    let piece_length = 1u64 << (14 + data[2] % 5);
    let last = 1 + (u64::from(data[3]) * 997) % piece_length;
    let total = u64::from(piece_count - 1) * piece_length + last;
    let geo = Geometry::new(piece_count as usize, piece_length, total);
    let fast = data[3] & 1 == 1;
    let mut codec = PeerCodec::new(geo, fast);
    let stream = &data[4..];
    let mut buf = BytesMut::new();
    let (mut at, mut chunk) = (0, 1 + usize::from(data[2]));
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(msg)) => check_message(&geo, fast, &msg),
            Ok(None) if at == stream.len() => break,
            Ok(None) => {
                let n = chunk.min(stream.len() - at);
                buf.extend_from_slice(&stream[at..at + n]);
                at += n;
                chunk = (chunk * 7 + 3) % 70_000 + 1;
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    !msg.is_empty() && msg.len() <= 200 && !msg.contains('\n'),
                    "{msg:?}"
                );
                break;
            }
        }
        assert!(
            buf.capacity() <= geo.max_message_len() + 4 + DECODER_SLACK + stream.len(),
            "decoder reserved {} bytes",
            buf.capacity()
        );
    }
}

fn check_message(geo: &Geometry, fast: bool, msg: &Message) {
    let index_ok = |i: u32| assert!(i < geo.piece_count, "index {i}");
    let block_ok = |index: u32, begin: u32, len: u32| {
        index_ok(index);
        assert!(len as u64 <= u64::from(BLOCK_SIZE), "block of {len}");
        assert!(
            u64::from(begin) + u64::from(len) <= geo.piece_len(index),
            "block past the piece"
        );
    };
    match msg {
        Message::Have(i) => index_ok(*i),
        Message::Suggest(i) | Message::AllowedFast(i) => {
            assert!(fast, "fast message without the extension");
            index_ok(*i)
        }
        Message::HaveAll | Message::HaveNone | Message::Reject(_) => {
            assert!(fast, "fast message without the extension")
        }
        Message::Bitfield(b) => assert_eq!(b.len(), geo.piece_count as usize),
        Message::Piece { index, begin, data } => block_ok(*index, *begin, data.len() as u32),
        _ => {}
    }
    if let Message::Request(b) | Message::Cancel(b) | Message::Reject(b) = msg {
        assert!(b.length > 0, "empty block");
        block_ok(b.index, b.begin, b.length);
    }
    let mut frame = BytesMut::new();
    encode(msg, &mut frame);
    assert!(
        frame.len() <= geo.max_message_len() + 4,
        "frame of {}",
        frame.len()
    );
    let mut again = PeerCodec::new(*geo, fast);
    let back = again
        .decode(&mut frame)
        .expect("re-encoded message decodes");
    assert_eq!(back.as_ref(), Some(msg), "round trip");
    assert!(frame.is_empty(), "frame left {} bytes", frame.len());
}

pub fn ext_handshake(data: &[u8]) {
    if let Ok(h) = ExtHandshake::parse(data) {
        if let Some(name) = &h.client {
            assert!(
                name.chars().count() <= 64,
                "client name of {} chars",
                name.chars().count()
            );
            assert!(
                !name.chars().any(char::is_control),
                "control character in {name:?}"
            );
        }
        assert!(
            h.effective_reqq() >= 1
                && h.effective_reqq() <= btorrent::wire::extension::MAX_PEER_REQQ
        );
        assert_ne!(h.port, Some(0));
    }
}

/// A tracker's reply, announce or scrape, from a hostile tracker: never a panic; an error is one line
/// of bounded length with no control characters (it is shown in logs and above the shell's prompt);
/// an accepted reply holds no more peers or torrents than its bytes can carry, and its warning is fit
/// to show.
pub fn tracker_reply(data: &[u8]) {
    use btorrent::announce::{parse_announce, parse_scrape, MAX_TEXT};
    let fit = |s: &str, max: usize| s.chars().count() <= max && !s.chars().any(char::is_control);
    match parse_announce(data) {
        Ok(r) => {
            assert!(r.peers.len() <= data.len() / 6, "more peers than bytes");
            if let Some(w) = &r.warning {
                assert!(fit(w, MAX_TEXT + 1), "warning not fit to show: {w:?}");
            }
        }
        Err(e) => {
            let m = e.to_string();
            assert!(
                fit(&m, MAX_ERROR_LEN),
                "announce error not one short line: {m:?}"
            );
        }
    }
    match parse_scrape(data) {
        Ok(files) => assert!(files.len() <= data.len() / 20, "more torrents than bytes"),
        Err(e) => {
            let m = e.to_string();
            assert!(
                fit(&m, MAX_ERROR_LEN),
                "scrape error not one short line: {m:?}"
            );
        }
    }
}

/// A UDP tracker packet (BEP 15) from anyone, read by both sides:
///
/// - the client's reply decoder (IPv4 and IPv6 peer formats) never panics, an error is one short line,
///   an accepted reply re-encodes to a packet that decodes to the same reply, and no more peers come
///   out than the bytes hold;
/// - the server's request decoder never panics and an accepted request survives a round trip;
/// - btorrent's tracker, given the packet as it is and with a valid connection id put in its place,
///   never amplifies: no reply to junk, and no reply longer than the request except an announce
///   reply (which needs a connection id, so an address that really receives our packets).
pub fn udp_tracker_packet(data: &[u8]) {
    use btorrent::tracker::{Tracker, TrackerConfig};
    use btorrent::udp_tracker::{Request, Response};
    use std::sync::OnceLock;
    for ipv6 in [false, true] {
        match Response::decode(data, ipv6) {
            Ok(resp) => {
                if let Response::Announce { reply, .. } = &resp {
                    assert!(reply.peers.len() <= data.len() / 6, "more peers than bytes");
                }
                if !matches!(resp, Response::Error { .. }) {
                    let mut again = Vec::new();
                    resp.encode(ipv6, &mut again);
                    assert_eq!(Response::decode(&again, ipv6).as_ref(), Ok(&resp));
                }
            }
            Err(e) => check_one_line(&e.to_string()),
        }
    }
    match Request::decode(data) {
        Ok(req) => {
            let mut again = Vec::new();
            req.encode(&mut again);
            assert_eq!(Request::decode(&again).as_ref(), Ok(&req));
        }
        Err(e) => check_one_line(&e.to_string()),
    }

    static TRACKER: OnceLock<Tracker> = OnceLock::new();
    let tracker = TRACKER.get_or_init(|| Tracker::new(TrackerConfig::default()));
    let from: std::net::SocketAddr = "192.0.2.7:6881".parse().unwrap();
    let mut out = Vec::new();
    let mut connect = 0x0417_2710_1980u64.to_be_bytes().to_vec();
    connect.extend_from_slice(&[0, 0, 0, 0, 1, 2, 3, 4]);
    assert!(tracker.answer_udp(&connect, from, &mut out) && out.len() == 16);
    let id = out[8..16].to_vec();
    let mut with_id = data.to_vec();
    if with_id.len() >= 8 {
        with_id[..8].copy_from_slice(&id);
    }
    for packet in [data, &with_id[..]] {
        if tracker.answer_udp(packet, from, &mut out) {
            let announce_reply = out.len() >= 4 && out[..4] == [0, 0, 0, 1];
            assert!(
                announce_reply || out.len() <= packet.len(),
                "a {}-byte reply to a {}-byte packet",
                out.len(),
                packet.len()
            );
            assert!(
                Response::decode(&out, false).is_ok(),
                "an undecodable reply"
            );
        } else {
            assert!(out.is_empty());
        }
    }
}

/// An error message is one short line: not empty, at most [`MAX_ERROR_LEN`] bytes, no control
/// character.
fn check_one_line(m: &str) {
    assert!(
        !m.is_empty() && m.len() <= MAX_ERROR_LEN && !m.chars().any(char::is_control),
        "error not one short line: {m:?}"
    );
}

/// The `ut_metadata` decoder: see the module docs.
pub fn ut_metadata(data: &[u8]) {
    use btorrent::wire::extension::MAX_METADATA_SIZE;
    use btorrent::wire::ut_metadata::{piece_len, MetadataMsg, METADATA_PIECE};
    for expected in [None, Some(40_000u64)] {
        match MetadataMsg::parse(data, expected) {
            Ok(m) => {
                if let MetadataMsg::Data {
                    piece,
                    total_size,
                    data: d,
                } = m
                {
                    assert!((1..=MAX_METADATA_SIZE).contains(&total_size));
                    assert!(expected.is_none_or(|e| e == total_size));
                    assert_eq!(d.len(), piece_len(total_size, piece));
                    assert!(!d.is_empty() && d.len() <= METADATA_PIECE);
                }
                let again = m.encode();
                assert_eq!(MetadataMsg::parse(&again, expected).as_ref(), Ok(&m));
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.is_empty() && msg.len() <= MAX_ERROR_LEN && !msg.contains('\n'));
            }
        }
    }
}

/// The `ut_pex` decoder: see the module docs.
pub fn ut_pex(data: &[u8]) {
    use btorrent::wire::ut_pex::{PexMsg, MAX_PEX_PEERS};
    match PexMsg::parse(data) {
        Ok(m) => {
            assert!(m.added.len() <= MAX_PEX_PEERS && m.dropped.len() <= MAX_PEX_PEERS);
            assert!(m.added.iter().all(|(a, _)| a.port() != 0));
            assert!(m.dropped.iter().all(|a| a.port() != 0));
            assert_eq!(PexMsg::parse(&m.encode()), Ok(m));
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty() && msg.len() <= MAX_ERROR_LEN && !msg.contains('\n'));
        }
    }
}

/// The `ut_holepunch` decoder: see the module docs.
pub fn ut_holepunch(data: &[u8]) {
    use btorrent::wire::ut_holepunch::HolepunchMsg;
    match HolepunchMsg::parse(data) {
        Ok(m) => {
            assert!(m.addr.port() != 0);
            let again = m.encode();
            assert!(again.len() <= data.len(), "{m:?} grew when encoded again");
            assert_eq!(HolepunchMsg::parse(&again), Ok(m));
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.is_empty() && msg.len() <= MAX_ERROR_LEN && !msg.contains('\n'));
        }
    }
}

/// An error shown to the user: one line of bounded length (counted in characters: a quoted piece
/// of the input may hold characters of several bytes).
/// The magnet link readers: see the module docs.
pub fn magnet_link(data: &[u8]) {
    use btorrent::magnet::{Magnet, MagnetError, MAX_MAGNET_LIST};
    use btorrent::mutable_link::MutableLink;
    let Ok(link) = std::str::from_utf8(data) else {
        return;
    };
    match Magnet::parse(link) {
        Ok(m) => {
            for list in [&m.trackers, &m.peers, &m.web_seeds] {
                assert!(list.len() <= MAX_MAGNET_LIST);
                assert_eq!(
                    list.iter().collect::<HashSet<_>>().len(),
                    list.len(),
                    "{list:?}"
                );
            }
            if let Some(name) = &m.name {
                assert!(name.chars().count() <= 256 && !name.chars().any(char::is_control));
            }
            for p in &m.peers {
                let (host, port) = p.rsplit_once(':').expect("host:port");
                assert!(
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|n| n > 0),
                    "{p:?}"
                );
            }
            for w in &m.web_seeds {
                let lower = w.to_ascii_lowercase();
                assert!(
                    lower.starts_with("http://") || lower.starts_with("https://"),
                    "{w:?}"
                );
                assert!(!w.contains(char::is_whitespace), "{w:?}");
            }
            assert!(m.select_only.len() <= MAX_MAGNET_LIST);
            for files in [1, 3, 300] {
                match m.selected(files) {
                    Ok(None) => assert!(m.select_only.is_empty()),
                    Ok(Some(picked)) => {
                        assert_eq!(picked.len(), files);
                        assert!(picked.contains(&true));
                    }
                    Err(e) => assert_eq!(e, MagnetError::SelectsNothing(files)),
                }
            }
            // The .torrent a fetch makes of the link and the dictionary it fetched.
            let info =
                b"d6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
            let made = Metainfo::from_bytes(&m.torrent_bytes(info, None))
                .unwrap_or_else(|e| panic!("the torrent made of {m:?} does not load: {e}"));
            assert_eq!(made.info_hash.0, <[u8; 20]>::from(Sha1::digest(info)));
        }
        Err(e) => check_one_line(&e.to_string()),
    }
    match MutableLink::parse(link) {
        Ok(Some(l)) => assert_eq!(MutableLink::parse(&l.to_link()), Ok(Some(l))),
        Ok(None) => {}
        Err(e) => check_one_line(&e.to_string()),
    }
}

/// The local service discovery reader: see the module docs.
pub fn lsd_message(data: &[u8]) {
    use btorrent::lsd::{parse, search, GROUP_V4, GROUP_V6, MAX_INFO_HASHES};
    match parse(data) {
        Ok(m) => {
            assert!(m.port != 0);
            assert!((1..=MAX_INFO_HASHES).contains(&m.info_hashes.len()));
            let distinct: HashSet<_> = m.info_hashes.iter().collect();
            assert_eq!(distinct.len(), m.info_hashes.len());
            // A cookie as long as a datagram would not fit beside what our message adds.
            let cookie = m.cookie.as_deref().unwrap_or("");
            if cookie.len() > 200 {
                return;
            }
            for (group, ih) in [GROUP_V4.into(), GROUP_V6.into()]
                .into_iter()
                .zip(&m.info_hashes)
            {
                let again = parse(&search(group, m.port, ih, cookie)).expect("our own message");
                assert_eq!(
                    (again.port, &again.info_hashes[..]),
                    (m.port, std::slice::from_ref(ih))
                );
                assert_eq!(again.cookie.as_deref().unwrap_or(""), cookie);
            }
        }
        Err(e) => check_one_line(&e.to_string()),
    }
}

/// The caps of the tracker [`tracker_http_request`] drives: small, so that inputs reach them.
pub mod http_tracker_caps {
    pub const SWARMS: usize = 16;
    pub const PEERS: usize = 64;
    pub const PEERS_PER_SWARM: usize = 8;
    pub const NUMWANT_MAX: u32 = 20;
    pub const SCRAPE_HASHES: usize = 8;
    pub const LISTING_PAGE_MAX: usize = 10;
}

/// What btorrent's tracker answered one HTTP request.
pub enum TrackerAnswer {
    /// Peers (announce), counts (scrape) or a listing page (`/get_peers`).
    Served,
    /// A `failure reason` or, from `/get_peers`, a 400 with its `error`.
    Refused,
}

/// An HTTP request to btorrent's tracker from anyone, through its routes as served: the first byte
/// picks the route (`/announce`, `/scrape`, `/get_peers`) and the client's address (on the
/// internet, on a LAN, on loopback; IPv4 or IPv6), the rest is the query string, with the bytes a
/// URI cannot hold percent-encoded so that any decoded bytes reach the tracker (a raw `%` kept, so
/// that bad escapes do too). The tracker lives across inputs, with small caps. Whatever comes:
///
/// - an announce or a scrape is answered HTTP 200 with strict bencode, which btorrent's own client
///   reads: a `failure reason` of one short line, or an announce reply whose peers are at most the
///   tracker's `numwant` cap, each an address someone can listen at on a port other than 0, or a
///   scrape reply of at most as many torrents as the scrape cap;
/// - `/get_peers` answers a JSON listing page within its cap, or a 400 whose `error` is one short line;
/// - the tracker never holds more torrents or peers than its caps.
pub fn tracker_http_request(data: &[u8]) -> TrackerAnswer {
    use btorrent::announce::{parse_announce, parse_scrape, TrackerError};
    use btorrent::tracker::{Tracker, TrackerConfig};
    use http_tracker_caps as caps;
    use std::sync::OnceLock;
    use tower_service::Service;

    static TRACKER: OnceLock<(tokio::runtime::Runtime, Tracker)> = OnceLock::new();
    let (rt, tracker) = TRACKER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let cfg = TrackerConfig {
            max_swarms: caps::SWARMS,
            max_peers: caps::PEERS,
            max_peers_per_swarm: caps::PEERS_PER_SWARM,
            numwant_max: caps::NUMWANT_MAX,
            max_scrape_hashes: caps::SCRAPE_HASHES,
            get_peers_limit: 50,
            get_peers_page: 5,
            get_peers_max_page: caps::LISTING_PAGE_MAX,
            ..TrackerConfig::default()
        };
        (rt, Tracker::new(cfg))
    });
    let (&pick, query) = data.split_first().unwrap_or((&0, &[]));
    let route = ["/announce", "/scrape", "/get_peers"][usize::from(pick % 3)];
    let clients = [
        "192.0.2.7:6881",
        "198.51.100.9:51413",
        "192.168.1.20:6881",
        "127.0.0.1:40000",
        "[2001:db8::7]:6881",
        "[::1]:40001",
    ];
    let from: std::net::SocketAddr = clients[usize::from(pick / 3) % clients.len()]
        .parse()
        .unwrap();
    let mut uri = format!("{route}?");
    for &b in query {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    let mut request = axum::http::Request::builder()
        .uri(&uri)
        .body(axum::body::Body::empty())
        .expect("a URI of allowed bytes");
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(from));
    let (status, body) = rt.block_on(async {
        let mut router = tracker.clone().router();
        let response = router.call(request).await.expect("the router never fails");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body under 1 MiB");
        (status, body)
    });

    let stats = tracker.stats();
    assert!(
        stats.swarms <= caps::SWARMS && stats.peers <= caps::PEERS,
        "the tracker holds {} torrents and {} peers",
        stats.swarms,
        stats.peers
    );
    let refused = |reason: &str| {
        check_one_line(reason);
        TrackerAnswer::Refused
    };
    match route {
        "/get_peers" => match status.as_u16() {
            200 => {
                let page: btorrent::listing::PeerList =
                    serde_json::from_slice(&body).expect("a listing page");
                assert!(page.peers.len() <= caps::LISTING_PAGE_MAX);
                TrackerAnswer::Served
            }
            400 => {
                let error: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                refused(error["error"].as_str().expect("an `error` text"))
            }
            other => panic!("/get_peers answered {other}"),
        },
        _ => {
            assert_eq!(status.as_u16(), 200, "{route} answered {status}");
            bencode::validate(&body, true).expect("strict bencode");
            let read = if route == "/announce" {
                parse_announce(&body).map(|reply| {
                    let cap = caps::NUMWANT_MAX as usize;
                    assert!(reply.peers.len() <= cap);
                    for p in &reply.peers {
                        assert!(btorrent::addr::is_dialable(p.ip()), "{p}");
                    }
                    // Compact peers as sent (the client drops those on port 0).
                    let entries = bencode::dict_entries(&body).expect("a dictionary");
                    for (key, size) in [(&b"peers"[..], 6), (&b"peers6"[..], 18)] {
                        let raw = entries.iter().find(|e| e.key == key);
                        let Some(raw) = raw.and_then(|e| bencode::as_bytes(&body[e.value.clone()]))
                        else {
                            continue;
                        };
                        assert!(raw.len() % size == 0 && raw.len() / size <= cap);
                        for peer in raw.chunks(size) {
                            assert!(peer[size - 2..] != [0, 0], "a peer on port 0");
                        }
                    }
                })
            } else {
                parse_scrape(&body).map(|files| assert!(files.len() <= caps::SCRAPE_HASHES))
            };
            match read {
                Ok(()) => TrackerAnswer::Served,
                Err(TrackerError::Failure(reason)) => refused(&reason),
                Err(e) => panic!("our client cannot read the reply: {e}"),
            }
        }
    }
}

/// The bytes of one input, read in order; zeros once they run out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// `n` bytes: the input's while it lasts, then zeros.
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let take = n.min(self.0.len());
        let mut out = self.0[..take].to_vec();
        self.0 = &self.0[take..];
        out.resize(n, 0);
        out
    }
    /// What is left of the input.
    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0).to_vec()
    }
}

/// The other side of an encrypted handshake (MSE), written here from its description rather than
/// with btorrent's code: Diffie-Hellman over the 768-bit prime, SHA-1 and RC4, so a hostile peer
/// can say any field it likes and still be understood up to it.
mod mse_peer {
    use num_bigint::BigUint;
    use rc4::{consts::U20, KeyInit, Rc4, StreamCipher};
    use sha1::{Digest, Sha1};

    const PRIME_HEX: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563";

    pub fn prime() -> BigUint {
        BigUint::parse_bytes(PRIME_HEX.as_bytes(), 16).expect("the prime")
    }

    pub fn key_bytes(n: &BigUint) -> [u8; 96] {
        let b = n.to_bytes_be();
        let mut out = [0u8; 96];
        out[96 - b.len()..].copy_from_slice(&b);
        out
    }

    /// A key pair of the private key `x` (20 bytes, big-endian).
    pub fn keys(x: &[u8]) -> (BigUint, [u8; 96]) {
        let private = BigUint::from_bytes_be(x) + 2u8;
        let public = key_bytes(&BigUint::from(2u8).modpow(&private, &prime()));
        (private, public)
    }

    pub fn secret(private: &BigUint, theirs: &[u8]) -> [u8; 96] {
        key_bytes(&BigUint::from_bytes_be(theirs).modpow(private, &prime()))
    }

    pub fn hash(parts: &[&[u8]]) -> [u8; 20] {
        let mut h = Sha1::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    /// A direction's RC4 stream (`keyA` from the initiator, `keyB` from the responder), its first
    /// 1,024 bytes skipped.
    pub fn stream(name: &[u8], secret: &[u8; 96], skey: &[u8; 20]) -> Rc4<U20> {
        let key = hash(&[name, secret, skey]);
        let mut rc4 = Rc4::<U20>::new(&key.into());
        rc4.apply_keystream(&mut [0u8; 1024]);
        rc4
    }

    pub fn sealed(rc4: &mut Rc4<U20>, mut bytes: Vec<u8>) -> Vec<u8> {
        rc4.apply_keystream(&mut bytes);
        bytes
    }
}

/// Bytes of a pad a hostile peer sends when it claims more than that: enough to show the claim is
/// refused before they are waited for.
const CLAIMED_PAD_SENT: usize = 4096;

/// The encrypted handshake (MSE), each side in turn facing a peer that says what the input says:
/// the first byte picks the side under test and its policy (methods accepted or offered, the one
/// preferred), the second which of the peer's words are false (its public key, the hash it
/// synchronises on, the torrent, the verification constant), the rest the fields (pad lengths,
/// methods provided or selected, lengths of `PadC`, `IA`, `PadD`) and their bytes. The peer
/// computes its keys and encrypts its fields as a real peer would, then closes. Whatever it says:
///
/// - neither side panics, and an error is one short line;
/// - the handshake succeeds exactly when everything said is true and complete, the pads are at
///   most 512 bytes and the methods meet (the one preferred chosen when both could be);
/// - what a successful handshake hands on is what the peer sent: the responder's `received`
///   starts with the initiator's `IA` (and nothing else was sent); the initiator's is a prefix of
///   what the responder sent after `PadD`, decrypted when RC4 was selected.
///
/// Returns whether the handshake succeeded.
pub fn mse_handshake(data: &[u8]) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let mut s = Script(data);
    let (side, lies) = (s.u8(), s.u8());
    if side & 1 == 0 {
        rt.block_on(mse_responder_case(side, lies, &mut s))
    } else {
        rt.block_on(mse_initiator_case(side, lies, &mut s))
    }
}

/// A verification constant that is not MSE's (eight zero bytes), from the input.
fn false_vc(s: &mut Script<'_>) -> Vec<u8> {
    let mut vc = s.bytes(8);
    if vc == [0; 8] {
        vc[7] = 1;
    }
    vc
}

/// A handshake's refusal: one short line, and never of one that was true and whole.
fn mse_refused(e: &btorrent::wire::mse::MseError, true_and_whole: bool) -> bool {
    check_one_line(&e.to_string());
    assert!(
        !true_and_whole,
        "a true and whole handshake was refused: {e}"
    );
    false
}

/// Both methods, RC4 alone or plaintext alone (`bits` 0 and 3, 1, 2).
fn mse_methods(bits: u8) -> btorrent::wire::mse::Methods {
    btorrent::wire::mse::Methods {
        plaintext: bits % 3 != 1,
        rc4: bits % 3 != 2,
    }
}

/// A method's bit in `crypto_provide` and `crypto_select` (MSE: 1 plaintext, 2 RC4).
fn mse_bit(c: btorrent::wire::mse::Crypto) -> u32 {
    match c {
        btorrent::wire::mse::Crypto::Plaintext => 1,
        btorrent::wire::mse::Crypto::Rc4 => 2,
    }
}

fn mse_has(m: btorrent::wire::mse::Methods, c: btorrent::wire::mse::Crypto) -> bool {
    match c {
        btorrent::wire::mse::Crypto::Plaintext => m.plaintext,
        btorrent::wire::mse::Crypto::Rc4 => m.rc4,
    }
}

const MSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

async fn mse_responder_case(side: u8, lies: u8, s: &mut Script<'_>) -> bool {
    use btorrent::wire::mse::{respond, torrent_key, Crypto, MAX_PAD};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ih = btorrent::InfoHash([0x5a; 20]);
    let accept = mse_methods((side >> 1) & 3);
    let prefer = if side & 8 == 0 {
        Crypto::Rc4
    } else {
        Crypto::Plaintext
    };
    let (bad_key, bad_sync, unknown, bad_vc) =
        (lies & 1 != 0, lies & 2 != 0, lies & 4 != 0, lies & 8 != 0);
    let (private, mut public) = mse_peer::keys(&s.bytes(20));
    if bad_key {
        // 0, 1 or p - 1: keys no secret can be made with.
        let p1 = mse_peer::prime() - 1u8;
        public = match s.u8() % 3 {
            0 => [0; 96],
            1 => mse_peer::key_bytes(&1u8.into()),
            _ => mse_peer::key_bytes(&p1),
        };
    }
    let pad_a = usize::from(s.u16()) % 600;
    let mut hello = public.to_vec();
    hello.extend(s.bytes(pad_a));
    let provide = s.u32();
    let pad_c = s.u16();
    let ia_len = s.u16();

    let (mut a, mut b) = tokio::io::duplex(1 << 20);
    let responder = tokio::spawn(async move {
        let r = respond(
            &mut b,
            &[],
            |k| (*k == torrent_key(&ih)).then_some(ih),
            accept,
            prefer,
            MSE_TIMEOUT,
        )
        .await;
        drop(b);
        r
    });
    let _ = a.write_all(&hello).await;
    let mut theirs = [0u8; 96];
    let mut ia = Vec::new();
    let mut complete = false;
    if a.read_exact(&mut theirs).await.is_ok() {
        let secret = mse_peer::secret(&private, &theirs);
        let skey = if unknown { [0xa5; 20] } else { ih.0 };
        let mut out = if bad_sync {
            s.bytes(20)
        } else {
            mse_peer::hash(&[b"req1", &secret]).to_vec()
        };
        let req2 = mse_peer::hash(&[b"req2", &skey]);
        let req3 = mse_peer::hash(&[b"req3", &secret]);
        out.extend((0..20).map(|i| req2[i] ^ req3[i]));
        let mut plain = if bad_vc { false_vc(s) } else { vec![0; 8] };
        plain.extend(provide.to_be_bytes());
        plain.extend(pad_c.to_be_bytes());
        let pad_c_sent = usize::from(pad_c).min(CLAIMED_PAD_SENT);
        plain.extend(s.bytes(pad_c_sent));
        if pad_c_sent == usize::from(pad_c) {
            plain.extend(ia_len.to_be_bytes());
            let rest = s.rest();
            ia = rest[..rest.len().min(usize::from(ia_len))].to_vec();
            plain.extend(&ia);
            complete = ia.len() == usize::from(ia_len);
        }
        let mut rc4 = mse_peer::stream(b"keyA", &secret, &skey);
        out.extend(mse_peer::sealed(&mut rc4, plain));
        let _ = a.write_all(&out).await;
    }
    let _ = a.shutdown().await;
    let result = responder.await.expect("the responder panicked");
    let other = match prefer {
        Crypto::Rc4 => Crypto::Plaintext,
        Crypto::Plaintext => Crypto::Rc4,
    };
    let choice = [prefer, other]
        .into_iter()
        .find(|&c| provide & mse_bit(c) != 0 && mse_has(accept, c));
    let true_and_whole = !bad_key
        && !bad_sync
        && !unknown
        && !bad_vc
        && pad_a <= MAX_PAD
        && usize::from(pad_c) <= MAX_PAD
        && complete
        && choice.is_some();
    match result {
        Ok((got, done)) => {
            assert!(
                true_and_whole,
                "a handshake with a false or missing word was taken"
            );
            assert_eq!(got, ih);
            assert_eq!(Some(done.crypto), choice, "not the method preferred");
            assert_eq!(done.received, ia, "received is not the initiator's IA");
            true
        }
        Err(e) => mse_refused(&e, true_and_whole),
    }
}

async fn mse_initiator_case(side: u8, lies: u8, s: &mut Script<'_>) -> bool {
    use btorrent::wire::mse::{initiate, Crypto, MAX_PAD};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ih = btorrent::InfoHash([0x3c; 20]);
    let offer = mse_methods((side >> 1) & 3);
    let (bad_key, bad_vc) = (lies & 1 != 0, lies & 8 != 0);
    let (private, mut public) = mse_peer::keys(&s.bytes(20));
    if bad_key {
        public = [0; 96];
    }
    let pad_b = usize::from(s.u16()) % 600;
    let pad_b_bytes = s.bytes(pad_b);
    let select = s.u32();
    let pad_d = s.u16();
    let ia = b"\x13BitTorrent protocol".to_vec();

    let (mut a, mut b) = tokio::io::duplex(1 << 20);
    let initiator = tokio::spawn(async move {
        let r = initiate(&mut a, &ih, offer, &ia, MSE_TIMEOUT).await;
        drop(a);
        r
    });
    let mut theirs = [0u8; 96];
    let mut after = Vec::new();
    let mut complete = false;
    if b.read_exact(&mut theirs).await.is_ok() {
        let secret = mse_peer::secret(&private, &theirs);
        let mut out = public.to_vec();
        out.extend(&pad_b_bytes);
        let mut rc4 = mse_peer::stream(b"keyB", &secret, &ih.0);
        let mut plain = if bad_vc { false_vc(s) } else { vec![0; 8] };
        plain.extend(select.to_be_bytes());
        plain.extend(pad_d.to_be_bytes());
        let pad_d_sent = usize::from(pad_d).min(CLAIMED_PAD_SENT);
        plain.extend(s.bytes(pad_d_sent));
        out.extend(mse_peer::sealed(&mut rc4, plain));
        if pad_d_sent == usize::from(pad_d) {
            complete = true;
            after = s.rest();
            let rc4_selected = select == mse_bit(Crypto::Rc4);
            out.extend(if rc4_selected {
                mse_peer::sealed(&mut rc4, after.clone())
            } else {
                after.clone()
            });
        }
        let _ = b.write_all(&out).await;
    }
    let _ = b.shutdown().await;
    let result = initiator.await.expect("the initiator panicked");
    let chosen = [Crypto::Plaintext, Crypto::Rc4]
        .into_iter()
        .find(|&c| mse_bit(c) == select && mse_has(offer, c));
    let true_and_whole = !bad_key
        && !bad_vc
        && pad_b <= MAX_PAD
        && usize::from(pad_d) <= MAX_PAD
        && complete
        && chosen.is_some();
    match result {
        Ok(done) => {
            assert!(
                true_and_whole,
                "a handshake with a false or missing word was taken"
            );
            assert_eq!(Some(done.crypto), chosen);
            assert!(
                after.starts_with(&done.received),
                "received is not what the responder sent after PadD"
            );
            true
        }
        Err(e) => mse_refused(&e, true_and_whole),
    }
}
