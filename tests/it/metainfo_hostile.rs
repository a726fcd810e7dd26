//! Hostile and broken .torrent files: every one is refused with a clear one-line error (the tests assert
//! on the message), nothing panics, nothing is written, and nothing the file merely claims is allocated.
//! No external tools: the real torrents are fixtures made by mktorrent and libtorrent
//! (`tests/fixtures/README.md`) and torrents made by our own creator.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::build::{d, file, path, s, B};
use btorrent::metainfo::{create_torrent, CreateOptions, Metainfo, MetainfoError};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
/// The content the fixtures were made of (`tests/fixtures/README.md`), under `fixture data`.
const FIXTURE_TREE: &[(&str, usize)] = &[
    ("a.bin", 100_000),
    ("empty.dat", 0),
    ("tiny.txt", 1),
    ("sub/small.bin", 15_000),
    ("sub/deeper/nest.bin", 70_001),
];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

/// A sound multi-file info dict: 3 files, 40,005 bytes, pieces of 16 KiB (3 pieces).
fn good_info() -> B {
    d(vec![
        (
            "files",
            B::L(vec![
                file(40_000, &[b"a.bin"]),
                file(0, &[b"sub", b"empty"]),
                file(5, &[b"sub", b"b.txt"]),
            ]),
        ),
        ("name", s("top")),
        ("piece length", B::I(16384)),
        ("pieces", s([7u8; 60])),
    ])
}

fn torrent(info: B) -> Vec<u8> {
    d(vec![
        ("announce", s("http://127.0.0.1:6969/announce")),
        ("info", info),
    ])
    .encode()
}

fn pieces(n: usize) -> B {
    s(vec![1u8; n * 20])
}

/// Parses `bytes`, expects a refusal, checks it is one bounded line, returns the message.
fn refused(bytes: &[u8]) -> String {
    let err = Metainfo::from_bytes(bytes).expect_err("hostile input was accepted");
    let msg = err.to_string();
    assert!(
        !msg.contains(['\n', '\r']) && msg.len() <= 400,
        "error is not one short line: {msg:?}"
    );
    assert!(matches!(
        err,
        MetainfoError::Invalid(_) | MetainfoError::Bencode(_)
    ));
    assert!(msg.starts_with("not a valid .torrent: "), "{msg}");
    msg
}

fn assert_refused(label: &str, bytes: &[u8], expect: &str) {
    let msg = refused(bytes);
    assert!(
        msg.contains(expect),
        "{label}: {msg:?} should mention {expect:?}"
    );
}

#[test]
fn the_good_baseline_loads() {
    let m = Metainfo::from_bytes(&torrent(good_info())).unwrap();
    assert_eq!(m.info.total_length, 40_005);
    assert_eq!(m.info.piece_count(), 3);
    for (name, hash, count) in [
        (
            "mktorrent-multi.torrent",
            "8a19b2f830a0397444fa6db05497771455834db0",
            5,
        ),
        (
            "libtorrent-hybrid.torrent",
            "4e29732df4ddbdee67eb3666256f4891130659a5",
            9,
        ),
        (
            "libtorrent-v2.torrent",
            "7d1a0c4f47c62593537b2d56b817231cbe29609b",
            9,
        ),
    ] {
        let m = Metainfo::load(&Path::new(FIXTURES).join(name)).unwrap();
        assert_eq!(m.info_hash.to_hex(), hash, "{name}");
        assert_eq!(m.info.files.len(), count, "{name}");
        assert!(m.info.private);
    }
}

/// libtorrent's v2 torrent (BEP 52) of the fixture data: its whole SHA-256 info-hash, each file on
/// a piece boundary, and every piece of the data (written again here) matching its merkle root,
/// while a changed byte fails exactly its piece. Its hybrid torrent of the same data too: read as a
/// hybrid (in both swarms), each piece matching its SHA-1 and its merkle root alike.
#[test]
fn libtorrents_v2_torrent_checks_the_fixture_data_piece_by_piece() {
    let v2 = Metainfo::load(&Path::new(FIXTURES).join("libtorrent-v2.torrent")).unwrap();
    assert_eq!(
        v2.info_hash_v2.map(hex::encode).as_deref(),
        Some("7d1a0c4f47c62593537b2d56b817231cbe29609b918c7255f8afe1d7043d690a")
    );
    assert!(v2.info.pieces.is_empty());
    let hybrid = Metainfo::load(&Path::new(FIXTURES).join("libtorrent-hybrid.torrent")).unwrap();
    assert_eq!(hybrid.info.format(), btorrent::metainfo::Format::Hybrid);
    let full = hybrid.info_hash_v2.expect("a hybrid's SHA-256");
    assert_eq!(
        hybrid.second_info_hash().unwrap().0,
        full[..20],
        "its v2 swarm"
    );
    assert!(
        hybrid.info.merkle().is_some(),
        "its piece layers came with it"
    );
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_tree(&dir.path().join("fixture data"), FIXTURE_TREE);
    for m in [&v2, &hybrid] {
        let plen = m.info.piece_length as usize;
        let mut space = Vec::new();
        for f in &m.info.files {
            assert!(
                f.padding || f.offset.is_multiple_of(m.info.piece_length),
                "{f:?}"
            );
            match f.padding {
                true => space.resize(space.len() + f.length as usize, 0),
                false => space.extend(std::fs::read(dir.path().join(&f.path)).unwrap()),
            }
        }
        assert_eq!(space.len() as u64, m.info.total_length);
        let v2_side = m.info.format() == btorrent::metainfo::Format::Hybrid;
        for (i, piece) in space.chunks(plen).enumerate() {
            assert!(m.info.piece_matches(i, piece), "piece {i}");
            assert_eq!(m.info.v2_side_matches(i, piece), v2_side.then_some(true));
            let mut bad = piece.to_vec();
            bad[0] ^= 1;
            assert!(!m.info.piece_matches(i, &bad), "piece {i} changed");
            assert_eq!(m.info.v2_side_matches(i, &bad), v2_side.then_some(false));
        }
    }
}

#[test]
fn every_truncation_of_real_torrents_is_refused() {
    let ours = {
        let dir = tempfile::tempdir().unwrap();
        crate::support::write_tree(dir.path(), &[("t/a.bin", 70_000), ("t/z/b", 3), ("t/e", 0)]);
        let opts = CreateOptions {
            trackers: vec!["http://127.0.0.1:1/a".into(), "udp://127.0.0.1:2".into()],
            piece_length: Some(16384),
            private: true,
            comment: Some("truncate me".into()),
            source: Some("SRC".into()),
            ..Default::default()
        };
        create_torrent(&dir.path().join("t"), &opts, &|_, _| {})
            .unwrap()
            .as_bytes()
            .to_vec()
    };
    for (label, full) in [
        ("ours", ours),
        ("mktorrent", fixture("mktorrent-multi.torrent")),
        ("libtorrent", fixture("libtorrent-hybrid.torrent")),
        ("libtorrent v2", fixture("libtorrent-v2.torrent")),
    ] {
        Metainfo::from_bytes(&full).unwrap();
        for len in 0..full.len() {
            let msg = refused(&full[..len]);
            assert!(
                ["the file is empty", "end of data", "past the end"]
                    .iter()
                    .any(|m| msg.contains(m)),
                "{label}: prefix of {len}/{} bytes: {msg}",
                full.len()
            );
        }
    }
}

#[test]
fn non_bencode_is_refused() {
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty", b"", "the file is empty"),
        ("html", b"<!DOCTYPE html><html>", "starts with `d`"),
        ("json", b"{\"info\": {}}", "starts with `d`"),
        ("png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "starts with `d`"),
        ("list", b"l4:infoe", "starts with `d`"),
        ("integer", b"i42e", "starts with `d`"),
        (
            "bad byte in dict",
            b"d4:infoxe",
            "unexpected byte 0x78 at byte 7",
        ),
        ("int key", b"di1ei2ee", "unexpected byte 0x69 at byte 1"),
        ("leading zero", b"d1:ai01ee", "invalid integer at byte 4"),
        ("minus zero", b"d1:ai-0ee", "invalid integer at byte 4"),
        (
            "int overflow",
            b"d1:ai99999999999999999999ee",
            "invalid integer",
        ),
        ("empty int", b"d1:aiee", "invalid integer"),
        ("no info", b"d8:announce3:urle", "no `info` dictionary"),
        (
            "info is a string",
            b"d4:info4:spame",
            "`info` is not a dictionary",
        ),
        (
            "info is a list",
            b"d4:infolee",
            "`info` is not a dictionary",
        ),
        ("empty info", b"d4:infodee", "`info` has no `name`"),
    ];
    for (label, bytes, expect) in cases {
        assert_refused(label, bytes, expect);
    }
    let mut rng = crate::support::random_bytes(1 << 16, 99);
    rng[0] = b'd';
    assert_refused("random after d", &rng, "not a valid .torrent");
}

#[test]
fn bad_piece_geometry_is_refused() {
    let g = good_info;
    let cases: Vec<(&str, B, &str)> = vec![
        (
            "pieces 19 bytes short",
            g().set("pieces", s([1u8; 41])),
            "`pieces` is 41 bytes, not a multiple of 20",
        ),
        (
            "pieces one byte long",
            g().set("pieces", s([1u8; 61])),
            "`pieces` is 61 bytes, not a multiple of 20",
        ),
        (
            "too few pieces",
            g().set("pieces", pieces(2)),
            "2 piece hashes for 40005 bytes in pieces of 16384 (expected 3)",
        ),
        (
            "too many pieces",
            g().set("pieces", pieces(4)),
            "4 piece hashes for 40005 bytes in pieces of 16384 (expected 3)",
        ),
        (
            "no pieces",
            g().set("pieces", s([])),
            "0 piece hashes for 40005 bytes",
        ),
        (
            "pieces missing",
            g().remove("pieces"),
            "`info` has no `pieces`",
        ),
        (
            "pieces is a number",
            g().set("pieces", B::I(3)),
            "`pieces` in `info` is not a byte string",
        ),
        (
            "zero piece length",
            g().set("piece length", B::I(0)),
            "piece length 0 is out of range",
        ),
        (
            "negative piece length",
            g().set("piece length", B::I(-16384)),
            "piece length -16384 is out of range",
        ),
        (
            "absurd piece length",
            g().set("piece length", B::I(1 << 40)),
            "piece length 1099511627776 is out of range",
        ),
        (
            "i64::MIN piece length",
            g().set("piece length", B::I(i64::MIN)),
            "piece length -9223372036854775808 is out of range",
        ),
        (
            "piece length as text",
            g().set("piece length", s("16384")),
            "`piece length` in `info` is not an integer",
        ),
    ];
    for (label, info, expect) in cases {
        assert_refused(label, &torrent(info), expect);
    }
}

#[test]
fn bad_lengths_are_refused() {
    let single = |len: i64| {
        d(vec![
            ("length", B::I(len)),
            ("name", s("f")),
            ("piece length", B::I(16384)),
            ("pieces", pieces(1)),
        ])
    };
    let with_files = |files: Vec<B>| good_info().set("files", B::L(files));
    let cases: Vec<(&str, B, &str)> = vec![
        ("negative length", single(-1), "length -1 is out of range"),
        ("zero length", single(0), "holds no data (total length 0)"),
        (
            "i64::MAX length",
            single(i64::MAX),
            "length 9223372036854775807 is out of range",
        ),
        (
            "2^51 length",
            single(1 << 51),
            "length 2251799813685248 is out of range",
        ),
        (
            "negative file length",
            with_files(vec![file(-5, &[b"a"])]),
            "file length -5 is out of range",
        ),
        (
            "lengths summing past 2^50",
            with_files(vec![file(1 << 50, &[b"a"]), file(1, &[b"b"])]),
            "total length is out of range",
        ),
        (
            "lengths that would overflow u64",
            with_files(vec![file(i64::MAX, &[b"a"]), file(i64::MAX, &[b"b"])]),
            "out of range",
        ),
        (
            "all files empty",
            with_files(vec![file(0, &[b"a"]), file(0, &[b"b"])]),
            "total length 0",
        ),
        ("empty file list", with_files(vec![]), "`files` is empty"),
        (
            "length and files",
            good_info().set("length", B::I(5)),
            "both `length` and `files` are present",
        ),
        (
            "neither",
            good_info().remove("files"),
            "neither `length` nor `files` is present",
        ),
        (
            "length as text",
            single(5).set("length", s("5")),
            "`length` in `info` is not an integer",
        ),
        (
            "file without length",
            with_files(vec![d(vec![("path", path(&[b"a"]))])]),
            "file 0 has no `length`",
        ),
    ];
    for (label, info, expect) in cases {
        assert_refused(label, &torrent(info), expect);
    }
}

#[test]
fn escaping_or_clashing_paths_are_refused() {
    let one = |components: &[&[u8]]| good_info().set("files", B::L(vec![file(40_005, components)]));
    let unsafe_component = "unsafe file path component";
    let cases: Vec<(&str, B, &str)> = vec![
        (
            "dot-dot",
            one(&[b"..", b"etc", b"passwd"]),
            unsafe_component,
        ),
        ("dot-dot last", one(&[b"sub", b".."]), unsafe_component),
        ("dot", one(&[b"."]), unsafe_component),
        ("absolute", one(&[b"/etc/passwd"]), unsafe_component),
        ("absolute root", one(&[b"/"]), unsafe_component),
        ("windows absolute", one(&[b"C:\\Windows"]), unsafe_component),
        (
            "empty component",
            one(&[b"sub", b"", b"x"]),
            unsafe_component,
        ),
        ("slash inside", one(&[b"sub/../../x"]), unsafe_component),
        ("backslash inside", one(&[b"..\\..\\x"]), unsafe_component),
        ("nul inside", one(&[b"a\0b"]), unsafe_component),
        // A terminal escape sequence would reach every screen that shows the file's name.
        (
            "escape inside",
            one(&[b"a\x1b]0;owned\x07b"]),
            unsafe_component,
        ),
        ("newline inside", one(&[b"a\nb"]), unsafe_component),
        (
            "C1 control inside",
            one(&["a\u{9b}2Jb".as_bytes()]),
            unsafe_component,
        ),
        ("no components", one(&[]), "file 0 has an empty path"),
        (
            "name dot-dot",
            good_info().set("name", s("..")),
            "unsafe name \"..\"",
        ),
        (
            "name empty",
            good_info().set("name", s("")),
            "unsafe name \"\"",
        ),
        (
            "name with an escape sequence",
            good_info().set("name", s("top\x1b[2J")),
            "unsafe name",
        ),
        (
            "name absolute",
            good_info().set("name", s("/tmp/x")),
            "unsafe name \"/tmp/x\"",
        ),
        (
            "name.utf-8 escapes",
            good_info().set("name.utf-8", s("../x")),
            "unsafe name",
        ),
        (
            "path.utf-8 escapes",
            good_info().set(
                "files",
                B::L(vec![d(vec![
                    ("length", B::I(40_005)),
                    ("path", path(&[b"ok"])),
                    ("path.utf-8", path(&[b"..", b"x"])),
                ])]),
            ),
            unsafe_component,
        ),
        (
            "path too long",
            one(&vec![&[b'x'; 250][..]; 20]),
            "file 0 has a path longer than 4096 bytes",
        ),
        (
            "path is a string",
            good_info().set(
                "files",
                B::L(vec![d(vec![("length", B::I(40_005)), ("path", s("a/b"))])]),
            ),
            "file 0 has no `path` list of byte strings",
        ),
        (
            "same path twice",
            good_info().set("files", B::L(vec![file(40_000, &[b"a"]), file(5, &[b"a"])])),
            "two files have the same path \"top/a\"",
        ),
        (
            "file is also a folder",
            good_info().set(
                "files",
                B::L(vec![file(40_000, &[b"a"]), file(5, &[b"a", b"b"])]),
            ),
            "\"top/a\" is a file and also a folder of \"top/a/b\"",
        ),
    ];
    for (label, info, expect) in cases {
        assert_refused(label, &torrent(info), expect);
    }
}

#[test]
fn claims_larger_than_the_input_are_refused_without_allocating() {
    let huge_string = b"d4:info99999999999999:xe".to_vec();
    assert_refused(
        "huge string",
        &huge_string,
        "string length at byte 7 runs past the end",
    );
    let max_usize = format!("d4:info{}:e", u64::MAX);
    assert_refused(
        "u64::MAX string",
        max_usize.as_bytes(),
        "invalid integer at byte 7",
    );
    let mut pieces_claim = torrent(good_info());
    let at = pieces_claim
        .windows(4)
        .position(|w| w == b"60:\x07")
        .unwrap();
    pieces_claim.splice(at..at + 2, b"6000000000".iter().copied());
    assert_refused("pieces claims 6 GB", &pieces_claim, "runs past the end");
    // A `files` list one over the limit is counted, not decoded.
    let entry = file(1, &[b"f"]).encode();
    let list = [
        b"l".to_vec(),
        entry.repeat(btorrent::metainfo::MAX_FILES + 1),
        b"e".to_vec(),
    ]
    .concat();
    let bytes = torrent(good_info().set("files", B::Raw(list)));
    let start = Instant::now();
    assert_refused("too many files", &bytes, "more than 1000000 files");
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn deep_nesting_is_refused() {
    let depth = 100_000;
    let nested = [vec![b'l'; depth], vec![b'e'; depth]].concat();
    let mut in_info = good_info().set("zzz", B::Raw(nested.clone())).encode();
    in_info = [b"d4:info".to_vec(), in_info, b"e".to_vec()].concat();
    assert_refused("lists in info", &in_info, "nesting deeper than 64 levels");
    let dicts = [b"d1:a".repeat(depth), b"i1e".to_vec(), b"e".repeat(depth)].concat();
    assert_refused("dicts at the top", &dicts, "nesting deeper than 64 levels");
    let top = [b"d8:announce".to_vec(), nested, b"e".to_vec()].concat();
    assert_refused("lists beside info", &top, "nesting deeper than 64 levels");
}

#[test]
fn ambiguous_top_level_is_refused() {
    let info = good_info().encode();
    let twice = [
        b"d4:info".to_vec(),
        info.clone(),
        b"4:info".to_vec(),
        info.clone(),
        b"e".to_vec(),
    ]
    .concat();
    assert_refused("info twice", &twice, "appears twice");
    let mut info_key_twice = good_info().encode();
    info_key_twice.pop();
    info_key_twice.extend_from_slice(b"4:name1:xe");
    let second_name_at = b"d4:info".len() + info_key_twice.len() - b"4:name1:xe".len();
    let bytes = [b"d4:info".to_vec(), info_key_twice, b"e".to_vec()].concat();
    let expect = format!("dictionary key at byte {second_name_at} appears twice");
    assert_refused("name twice in info", &bytes, &expect);
}

/// Every refusal above, loaded from disk: the same one-line error names the problem, and the folder
/// holds exactly what the test put there (loading writes nothing).
#[test]
fn loading_hostile_files_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let full = fixture("mktorrent-multi.torrent");
    let mut written: Vec<PathBuf> = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        written.push(p.clone());
        p
    };
    for len in [0, 1, 50, full.len() / 2, full.len() - 1] {
        let p = put(&format!("cut-{len}.torrent"), &full[..len]);
        let msg = Metainfo::load(&p).unwrap_err().to_string();
        assert!(
            msg.starts_with("not a valid .torrent: ") && !msg.contains('\n'),
            "{msg}"
        );
    }
    let p = put("dotdot.torrent", &torrent(good_info().set("name", s(".."))));
    assert!(Metainfo::load(&p)
        .unwrap_err()
        .to_string()
        .contains("unsafe name"));
    let p = put("trailing.torrent", &[full.clone(), b"\n".to_vec()].concat());
    assert_eq!(
        Metainfo::load(&p).unwrap().info_hash.to_hex(),
        "8a19b2f830a0397444fa6db05497771455834db0",
        "a trailing newline, as some sites serve them, is not an error"
    );
    let missing = dir.path().join("missing.torrent");
    let msg = Metainfo::load(&missing).unwrap_err().to_string();
    assert!(
        msg.starts_with("cannot read ") && msg.contains("missing.torrent"),
        "{msg}"
    );
    let msg = Metainfo::load(dir.path()).unwrap_err().to_string();
    assert!(msg.ends_with("is a folder"), "{msg}");

    let mut now: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    now.sort();
    written.sort();
    assert_eq!(now, written);
}

/// 100 MB of garbage, and a device that never ends: refused by size without being read into memory.
#[test]
fn oversized_inputs_are_refused_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.torrent");
    {
        // Garbage at the start, then a hole: 100 MB long without taking 100 MB of disk.
        use std::io::Write;
        let mut f = std::fs::File::create(&garbage).unwrap();
        f.write_all(&crate::support::random_bytes(1 << 20, 7))
            .unwrap();
        f.set_len(100 << 20).unwrap();
    }
    let msg = Metainfo::load(&garbage).unwrap_err().to_string();
    assert!(
        msg.contains("is larger than 64 MiB, more than any real .torrent") && !msg.contains('\n'),
        "{msg}"
    );
    let start = Instant::now();
    let msg = Metainfo::load(Path::new("/dev/zero"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("/dev/zero is larger than 64 MiB"), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(20));

    // Under the size limit, garbage is refused at its first wrong byte, quickly.
    let mut big = crate::support::random_bytes(60 << 20, 8);
    big[0] = b'd';
    big[1] = b'9';
    let start = Instant::now();
    let msg = refused(&big);
    assert!(msg.contains("at byte"), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn creating_from_a_missing_or_empty_source_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no such folder");
    let msg = create_torrent(&missing, &CreateOptions::default(), &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("cannot read ") && msg.contains("no such folder"),
        "{msg}"
    );
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let msg = create_torrent(
        &dir.path().join("empty"),
        &CreateOptions::default(),
        &|_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        msg.starts_with("cannot create a torrent: ") && msg.contains("holds no data"),
        "{msg}"
    );
    crate::support::write_tree(dir.path(), &[("data/x", 10)]);
    let bad_piece = CreateOptions {
        piece_length: Some(1000),
        ..Default::default()
    };
    let msg = create_torrent(&dir.path().join("data"), &bad_piece, &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("piece length 1000 must be a power of two"),
        "{msg}"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "only the two folders the test made: {names:?}"
    );
}
