//! The .torrent layer against the tools people really use (Debian packages, run on this machine):
//!
//! - torrents made by mktorrent and by python3-libtorrent (single- and multi-file, private, `source`, web
//!   seeds, comments, tracker tiers, libtorrent's v1+v2 hybrids with padding files) load in btorrent with
//!   the info-hash and file list those tools report;
//! - torrents btorrent creates are read by `transmission-show` and python3-libtorrent with the same
//!   info-hash, file list and fields, libtorrent finds every piece of the original data valid (and exactly
//!   the damaged piece invalid after one byte is changed), and mktorrent given the same content and options
//!   produces the very same info-hash.
//!
//! libtorrent is reached through `tests/support/lt_probe.py`, run by Debian's `/usr/bin/python3`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{run, run_ok, write_tree};
use btorrent::metainfo::{create_torrent, CreateOptions, Format, Metainfo};
use serde::Deserialize;

const PROBE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/lt_probe.py");
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// A folder with the sizes that trip creators up: empty files, files under one block (16 KiB), nested
/// folders, a file just over a piece, and a total that leaves a short last piece at 16 KiB.
const ODD_TREE: &[(&str, usize)] = &[
    ("a.bin", 100_000),
    ("empty.dat", 0),
    ("tiny.txt", 1),
    ("sub/small.bin", 15_000),
    ("sub/deeper/empty-too", 0),
    ("sub/deeper/nest.bin", 70_001),
    ("sub/deeper/third/leaf.bin", 3_333),
    ("zz-last.bin", 16_385),
];

#[derive(Debug, Deserialize)]
struct LtFile {
    path: String,
    size: u64,
    offset: u64,
    pad: bool,
    executable: bool,
    /// A link's target (BEP 47's `l`), as libtorrent reads it.
    symlink: Option<String>,
}

/// What libtorrent reports for a .torrent (`lt_probe.py show`).
#[derive(Debug, Deserialize)]
struct LtTorrent {
    info_hash: String,
    /// A v2-only torrent's whole SHA-256 info-hash.
    info_hash_v2: Option<String>,
    name: String,
    piece_length: u64,
    num_pieces: usize,
    total_size: u64,
    private: bool,
    comment: String,
    creator: String,
    trackers: Vec<(usize, String)>,
    web_seeds: Vec<String>,
    source: Option<String>,
    files: Vec<LtFile>,
}

/// libtorrent's hash check of data against a .torrent (`lt_probe.py check`).
#[derive(Debug, Deserialize)]
struct LtCheck {
    error: Option<String>,
    info_hash: Option<String>,
    num_pieces: Option<usize>,
    valid: Option<usize>,
    invalid: Option<Vec<usize>>,
    seeding: Option<bool>,
}

fn probe(args: &[&str]) -> String {
    run_ok(
        Command::new("/usr/bin/python3").arg(PROBE).args(args),
        TOOL_TIMEOUT,
    )
}

fn lt_show(torrent: &Path) -> LtTorrent {
    let out = probe(&["show", torrent.to_str().unwrap()]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("lt_probe output {out:?}: {e}"))
}

fn lt_check(torrent: &Path, save_path: &Path) -> LtCheck {
    let out = probe(&[
        "check",
        torrent.to_str().unwrap(),
        save_path.to_str().unwrap(),
        "90",
    ]);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("lt_probe output {out:?}: {e}"))
}

fn lt_create(src: &Path, out: &Path, piece_length: u64, opts: serde_json::Value) -> LtTorrent {
    let json = probe(&[
        "create",
        src.to_str().unwrap(),
        out.to_str().unwrap(),
        &piece_length.to_string(),
        &opts.to_string(),
    ]);
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("lt_probe output {json:?}: {e}"))
}

/// What `transmission-show -u` (torrent order) prints, parsed.
#[derive(Debug, Default)]
struct TrShow {
    hash: String,
    name: String,
    piece_count: usize,
    piece_size: u64,
    private: bool,
    comment: Option<String>,
    tiers: Vec<Vec<String>>,
    files: Vec<String>,
}

/// Runs transmission-show; `None` if it refuses the file (3.00 cannot read v2/hybrid torrents).
fn tr_show(torrent: &Path) -> Option<TrShow> {
    let out = run(
        Command::new("transmission-show").arg("-u").arg(torrent),
        TOOL_TIMEOUT,
    );
    if out.stdout.contains("Error parsing") || out.stderr.contains("Error parsing") {
        return None;
    }
    assert!(out.status.success(), "transmission-show: {}", out.stderr);
    let mut show = TrShow::default();
    let mut section = "";
    for line in out.stdout.lines() {
        let body = line.trim();
        match body {
            "GENERAL" | "TRACKERS" | "WEBSEEDS" | "FILES" => {
                section = body;
                continue;
            }
            "" => continue,
            _ => {}
        }
        match section {
            "GENERAL" => {
                let (key, value) = body.split_once(": ").unwrap_or((body, ""));
                match key {
                    "Hash" => show.hash = value.to_string(),
                    "Name" => show.name = value.to_string(),
                    "Piece Count" => show.piece_count = value.parse().unwrap(),
                    "Piece Size" => show.piece_size = parse_tr_size(value),
                    "Privacy" => show.private = value == "Private torrent",
                    "Comment" => show.comment = Some(value.to_string()),
                    _ => {}
                }
            }
            "TRACKERS" if body.starts_with("Tier #") => show.tiers.push(Vec::new()),
            "TRACKERS" => show.tiers.last_mut().unwrap().push(body.to_string()),
            "FILES" => {
                let (path, _size) = body.rsplit_once(" (").expect("`path (size)`");
                show.files.push(path.to_string());
            }
            _ => {}
        }
    }
    Some(show)
}

/// "16.00 KiB" -> 16384 (piece sizes are powers of two, printed exactly).
fn parse_tr_size(s: &str) -> u64 {
    let (num, unit) = s.split_once(' ').unwrap();
    let mult = match unit {
        "B" | "bytes" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other}"),
    };
    (num.parse::<f64>().unwrap() * mult).round() as u64
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("UTF-8 test paths").to_string()
}

/// btorrent's view of a torrent equals libtorrent's: hash, geometry, flags, trackers, files.
fn assert_same_as_libtorrent(m: &Metainfo, lt: &LtTorrent) {
    assert_eq!(m.info_hash.to_hex(), lt.info_hash, "info-hash");
    assert_eq!(m.info.name, lt.name);
    assert_eq!(m.info.piece_length, lt.piece_length);
    assert_eq!(m.info.piece_count(), lt.num_pieces);
    assert_eq!(m.info.total_length, lt.total_size);
    assert_eq!(m.info.private, lt.private);
    assert_eq!(m.info.source, lt.source);
    assert_eq!(m.comment.clone().unwrap_or_default(), lt.comment);
    assert_eq!(m.created_by.clone().unwrap_or_default(), lt.creator);
    let mut lt_tiers: Vec<Vec<String>> = Vec::new();
    for (tier, url) in &lt.trackers {
        if lt_tiers.len() <= *tier {
            lt_tiers.resize(tier + 1, Vec::new());
        }
        lt_tiers[*tier].push(url.clone());
    }
    // libtorrent shuffles the URLs inside a tier, as BEP 12 asks.
    let sorted = |tiers: Vec<Vec<String>>| -> Vec<Vec<String>> {
        tiers
            .into_iter()
            .map(|mut t| {
                t.sort();
                t
            })
            .collect()
    };
    assert_eq!(sorted(m.tracker_tiers()), sorted(lt_tiers), "tracker tiers");
    // libtorrent appends `/` to a multi-file torrent's web seed, which names a folder.
    let seeds = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect()
    };
    assert_eq!(seeds(&m.web_seeds), seeds(&lt.web_seeds), "web seeds");
    let ours: Vec<(String, u64, u64, bool, bool)> = m
        .info
        .files
        .iter()
        .map(|f| {
            (
                path_str(&f.path),
                f.length,
                f.offset,
                f.padding,
                f.executable,
            )
        })
        .collect();
    let theirs: Vec<(String, u64, u64, bool, bool)> = lt
        .files
        .iter()
        .map(|f| (f.path.clone(), f.size, f.offset, f.pad, f.executable))
        .collect();
    assert_eq!(ours, theirs, "file list");
}

/// btorrent's view of a torrent equals transmission-show's.
fn assert_same_as_transmission(m: &Metainfo, tr: &TrShow) {
    assert_eq!(m.info_hash.to_hex(), tr.hash, "info-hash");
    assert_eq!(m.info.name, tr.name);
    assert_eq!(m.info.piece_count(), tr.piece_count);
    assert_eq!(m.info.piece_length, tr.piece_size);
    assert_eq!(m.info.private, tr.private);
    assert_eq!(m.comment, tr.comment);
    assert_eq!(m.tracker_tiers(), tr.tiers, "tracker tiers");
    let ours: Vec<String> = m
        .info
        .files
        .iter()
        .filter(|f| !f.padding)
        .map(|f| path_str(&f.path))
        .collect();
    assert_eq!(ours, tr.files, "file list");
}

fn mktorrent(src: &Path, out: &Path, args: &[&str]) {
    run_ok(
        Command::new("mktorrent")
            .args(args)
            .arg("-o")
            .arg(out)
            .arg(src),
        TOOL_TIMEOUT,
    );
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    single: PathBuf,
    tree: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let single = root.join("data/single file.bin");
    write_tree(&root.join("data"), &[("single file.bin", 600_001)]);
    let tree = root.join("data/odd tree");
    write_tree(&tree, ODD_TREE);
    Fixture {
        _dir: dir,
        root,
        single,
        tree,
    }
}

#[test]
#[ignore = "needs mktorrent, transmission-cli, python3-libtorrent"]
fn mktorrent_torrents_load_with_the_info_hash_tools_report() {
    let fx = fixture();
    let t1 = "http://127.0.0.1:6969/announce";
    let cases: Vec<(&str, &Path, Vec<&str>)> = vec![
        ("plain-single", &fx.single, vec!["-a", t1]),
        (
            "rich-single",
            &fx.single,
            vec![
                "-a",
                "http://127.0.0.1:1/a,http://127.0.0.2:1/a",
                "-a",
                "udp://127.0.0.1:2/b",
                "-p",
                "-s",
                "SOURCE-TAG",
                "-c",
                "a comment, with ünïcödé",
                "-w",
                "http://127.0.0.1:8/seed/file.bin",
                "-l",
                "15",
                "-d",
            ],
        ),
        ("plain-multi", &fx.tree, vec!["-a", t1, "-l", "15"]),
        (
            "rich-multi",
            &fx.tree,
            vec![
                "-a",
                t1,
                "-p",
                "-s",
                "SRC",
                "-c",
                "multi",
                "-w",
                "http://127.0.0.1:8/a,http://127.0.0.1:9/b",
                "-n",
                "renamed folder",
                "-l",
                "16",
            ],
        ),
    ];
    for (label, src, args) in cases {
        let out = fx.root.join(format!("{label}.torrent"));
        mktorrent(src, &out, &args);
        let m = Metainfo::load(&out).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_same_as_libtorrent(&m, &lt_show(&out));
        assert_same_as_transmission(&m, &tr_show(&out).expect("transmission reads mktorrent"));
        assert_eq!(m.created_by.as_deref(), Some("mktorrent 1.1"), "{label}");
        if label.starts_with("rich") {
            assert!(m.info.private, "{label}");
            assert!(m.info.source.is_some(), "{label}");
            assert!(!m.web_seeds.is_empty(), "{label}");
        }
    }
}

#[test]
#[ignore = "needs mktorrent, transmission-cli, python3-libtorrent"]
fn libtorrent_torrents_load_with_the_info_hash_tools_report() {
    let fx = fixture();
    let rich = serde_json::json!({
        "trackers": [["http://127.0.0.1:1/a", "http://127.0.0.1:2/a"], ["udp://127.0.0.1:3/b"]],
        "comment": "made by libtorrent",
        "private": true,
        "web_seeds": ["http://127.0.0.1:8/ws"],
        "source": "LT-SOURCE",
    });
    let mut cases = Vec::new();
    for (src, kind) in [(&fx.single, "single"), (&fx.tree, "multi")] {
        for plen in [16384u64, 32768, 262144] {
            // v1 only, and the v1+v2 hybrids libtorrent 2 makes by default (padding files, `file tree`).
            for v1_only in [true, false] {
                let mut opts = rich.clone();
                opts["v1_only"] = v1_only.into();
                cases.push((format!("{kind}-{plen}-v1only-{v1_only}"), src, plen, opts));
            }
        }
        let plain =
            serde_json::json!({"trackers": [["http://127.0.0.1:6969/announce"]], "v1_only": true});
        cases.push((format!("{kind}-plain"), src, 16384, plain));
    }
    let mut saw_padding = false;
    for (label, src, plen, opts) in cases {
        let out = fx.root.join(format!("{label}.torrent"));
        let lt = lt_create(src, &out, plen, opts);
        let m = Metainfo::load(&out).unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_same_as_libtorrent(&m, &lt);
        assert_same_as_libtorrent(&m, &lt_show(&out));
        saw_padding |= m.info.files.iter().any(|f| f.padding);
        match tr_show(&out) {
            Some(tr) => assert_same_as_transmission(&m, &tr),
            None => assert!(
                label.ends_with("v1only-false"),
                "{label}: transmission refused it"
            ),
        }
    }
    assert!(saw_padding, "libtorrent made no torrent with padding files");
}

fn create(src: &Path, opts: &CreateOptions, out: &Path) -> Metainfo {
    let m = create_torrent(src, opts, &|_, _| {}).unwrap();
    std::fs::write(out, m.as_bytes()).unwrap();
    m
}

#[test]
#[ignore = "needs mktorrent, transmission-cli, python3-libtorrent"]
fn created_torrents_are_read_and_verified_by_transmission_and_libtorrent() {
    let fx = fixture();
    let one_tracker = vec!["http://127.0.0.1:6969/announce".to_string()];
    let cases: Vec<(&str, &Path, CreateOptions)> = vec![
        (
            "single-auto",
            &fx.single,
            CreateOptions {
                trackers: one_tracker.clone(),
                ..Default::default()
            },
        ),
        (
            "single-16k",
            &fx.single,
            CreateOptions {
                trackers: one_tracker.clone(),
                piece_length: Some(16384),
                threads: 3,
                ..Default::default()
            },
        ),
        (
            "multi-16k",
            &fx.tree,
            CreateOptions {
                trackers: one_tracker.clone(),
                piece_length: Some(16384),
                ..Default::default()
            },
        ),
        (
            "multi-private-32k",
            &fx.tree,
            CreateOptions {
                trackers: vec![
                    "http://127.0.0.1:6969/announce".into(),
                    "udp://127.0.0.1:6969".into(),
                ],
                piece_length: Some(32768),
                private: true,
                comment: Some("odd sizes, private".into()),
                source: Some("BT-SRC".into()),
                threads: 1,
                ..Default::default()
            },
        ),
        (
            "multi-one-piece",
            &fx.tree,
            CreateOptions {
                piece_length: Some(1 << 20),
                comment: Some("no tracker at all".into()),
                ..Default::default()
            },
        ),
    ];
    for (label, src, opts) in cases {
        let out = fx.root.join(format!("{label}.torrent"));
        let m = create(src, &opts, &out);
        assert_same_as_transmission(&m, &tr_show(&out).expect("transmission reads ours"));
        assert_same_as_libtorrent(&m, &lt_show(&out));
        let check = lt_check(&out, &fx.root.join("data"));
        assert_eq!(check.error, None, "{label}");
        assert_eq!(check.info_hash, Some(m.info_hash.to_hex()), "{label}");
        assert_eq!(check.num_pieces, Some(m.info.piece_count()), "{label}");
        assert_eq!(check.valid, Some(m.info.piece_count()), "{label}");
        assert_eq!(check.seeding, Some(true), "{label}");
        assert_eq!(m.info.private, opts.private);
        assert_eq!(m.info.source, opts.source);
        if src == fx.tree {
            let sizes: Vec<u64> = m.info.files.iter().map(|f| f.length).collect();
            assert!(
                sizes.contains(&0),
                "{label}: empty files are part of the torrent"
            );
            assert_eq!(m.info.files.len(), ODD_TREE.len(), "{label}");
        }
    }
}

/// BitTorrent v2 (BEP 52) both ways: libtorrent's v2-only torrents load with its info-hashes, file
/// layout (each file on a piece boundary, padding after) and piece count; btorrent makes the very same
/// `info` for the same content and piece length, v2-only and hybrid (v1 + v2); libtorrent finds every piece of the data valid
/// against btorrent's piece layers (and see `libtorrent_flags_the_piece_holding_a_changed_byte`).
#[test]
#[ignore = "needs mktorrent, transmission-cli, python3-libtorrent"]
fn v2_torrents_are_made_read_and_verified_alike_by_libtorrent() {
    let fx = fixture();
    for (src, kind) in [(&fx.single, "single"), (&fx.tree, "multi")] {
        for plen in [16384u64, 32768, 262144] {
            let label = format!("{kind}-{plen}");
            let theirs_path = fx.root.join(format!("lt-{label}.torrent"));
            let lt = lt_create(
                src,
                &theirs_path,
                plen,
                serde_json::json!({"v2_only": true}),
            );
            let theirs = Metainfo::load(&theirs_path).unwrap_or_else(|e| panic!("{label}: {e}"));
            assert!(theirs.info.v2.is_some(), "{label}");
            assert_same_as_libtorrent(&theirs, &lt);
            assert_eq!(theirs.info_hash_v2.map(hex::encode), lt.info_hash_v2);

            let opts = CreateOptions {
                piece_length: Some(plen),
                v2: true,
                ..Default::default()
            };
            made_alike(&fx, src, &opts, &theirs, &format!("ours-{label}"));

            // libtorrent's default, a hybrid: ours the same, read as v1 (padding files and all).
            let theirs_path = fx.root.join(format!("lt-hybrid-{label}.torrent"));
            lt_create(src, &theirs_path, plen, serde_json::json!({}));
            let theirs = Metainfo::load(&theirs_path).unwrap();
            let opts = CreateOptions {
                hybrid: true,
                ..opts
            };
            made_alike(&fx, src, &opts, &theirs, &format!("ours-hybrid-{label}"));
        }
    }
}

/// Executable files (BEP 47's `x` attribute, which libtorrent's creator records from the owner's
/// execute bit): btorrent marks them where libtorrent does, in a v2 and a hybrid torrent of a
/// folder and of a single file, so both make the very same `info`; in a v1 torrent libtorrent reads
/// the marks as btorrent wrote them.
#[test]
#[ignore = "needs mktorrent, transmission-cli, python3-libtorrent"]
fn executable_files_are_marked_as_libtorrent_marks_them() {
    use std::os::unix::fs::PermissionsExt;
    let fx = fixture();
    let tree = fx.root.join("data/tools");
    write_tree(
        &tree,
        &[("plain.txt", 100), ("run.sh", 40_000), ("sub/tool", 20_000)],
    );
    let single = fx.root.join("data/single.sh");
    write_tree(&fx.root.join("data"), &[("single.sh", 30_000)]);
    for f in [tree.join("run.sh"), tree.join("sub/tool"), single.clone()] {
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for (src, kind) in [(&tree, "tree"), (&single, "single")] {
        for (format, lt_opts) in [
            (
                btorrent::metainfo::Format::V2,
                serde_json::json!({"v2_only": true}),
            ),
            (btorrent::metainfo::Format::Hybrid, serde_json::json!({})),
        ] {
            let label = format!("x-{kind}-{}", format.as_str());
            let theirs_path = fx.root.join(format!("lt-{label}.torrent"));
            lt_create(src, &theirs_path, 16384, lt_opts);
            let theirs = Metainfo::load(&theirs_path).unwrap();
            let opts = CreateOptions {
                piece_length: Some(16384),
                ..Default::default()
            }
            .with_format(format);
            made_alike(&fx, src, &opts, &theirs, &format!("ours-{label}"));
            let marked: Vec<bool> = theirs
                .info
                .files
                .iter()
                .filter(|f| !f.padding)
                .map(|f| f.executable)
                .collect();
            let want = if kind == "tree" {
                vec![false, true, true]
            } else {
                vec![true]
            };
            assert_eq!(marked, want, "{label}");
        }
        let out = fx.root.join(format!("ours-x-{kind}-v1.torrent"));
        let ours = create(src, &CreateOptions::default(), &out);
        assert_same_as_libtorrent(&ours, &lt_show(&out));
        assert!(ours.info.files.iter().any(|f| f.executable));
    }
}

/// Modification times (`mtime`, which libtorrent's creator records when asked): btorrent records
/// them where libtorrent does, in a v2 and a hybrid torrent of a folder and of a single file, so
/// both make the very same `info`; libtorrent reads btorrent's v1 torrent with them and finds every
/// piece.
#[test]
#[ignore = "needs python3-libtorrent"]
fn modification_times_are_recorded_as_libtorrent_records_them() {
    use std::time::{Duration, UNIX_EPOCH};
    let fx = fixture();
    let tree = fx.root.join("data/album");
    write_tree(
        &tree,
        &[("a.jpg", 30_000), ("sub/b.jpg", 20_000), ("empty", 0)],
    );
    let single = fx.root.join("data/one.jpg");
    write_tree(&fx.root.join("data"), &[("one.jpg", 25_000)]);
    let files = [
        tree.join("a.jpg"),
        tree.join("sub/b.jpg"),
        tree.join("empty"),
        single.clone(),
    ];
    for (k, f) in files.iter().enumerate() {
        let t = UNIX_EPOCH + Duration::from_secs(1_000_000_000 + 86_400 * k as u64);
        let f = std::fs::File::options().write(true).open(f).unwrap();
        f.set_modified(t).unwrap();
    }
    let opts = |format| {
        CreateOptions {
            piece_length: Some(16384),
            mtime: true,
            ..Default::default()
        }
        .with_format(format)
    };
    for (src, kind) in [(&tree, "tree"), (&single, "single")] {
        for (format, lt_opts) in [
            (
                btorrent::metainfo::Format::V2,
                serde_json::json!({"v2_only": true, "mtime": true}),
            ),
            (
                btorrent::metainfo::Format::Hybrid,
                serde_json::json!({"mtime": true}),
            ),
        ] {
            let label = format!("mtime-{kind}-{}", format.as_str());
            let theirs_path = fx.root.join(format!("lt-{label}.torrent"));
            lt_create(src, &theirs_path, 16384, lt_opts);
            let theirs = Metainfo::load(&theirs_path).unwrap();
            assert!(
                theirs.info.files.iter().any(|f| f.mtime.is_some()),
                "{label}: libtorrent recorded times"
            );
            made_alike(&fx, src, &opts(format), &theirs, &format!("ours-{label}"));
        }
        let out = fx.root.join(format!("ours-mtime-{kind}-v1.torrent"));
        let ours = create(src, &opts(btorrent::metainfo::Format::V1), &out);
        assert_same_as_libtorrent(&ours, &lt_show(&out));
        let check = lt_check(&out, &fx.root.join("data"));
        assert_eq!(check.valid, Some(ours.info.piece_count()), "{kind}");
        assert!(ours.info.files.iter().all(|f| f.mtime.is_some()), "{kind}");
    }
}

/// Links recorded as links (BEP 47's `l` and `symlink path`), to a file and to a folder inside
/// the folder: libtorrent reads btorrent's as btorrent means them (`b-create --symlinks`), and
/// btorrent reads libtorrent's (made with its `symlinks` flag) as libtorrent does; in v1, v2 and
/// hybrid torrents (libtorrent's v2 link entries have no `length`).
#[test]
#[ignore = "needs python3-libtorrent"]
fn links_are_recorded_and_read_as_libtorrent_records_them() {
    use std::os::unix::fs::symlink;
    let fx = fixture();
    let tree = fx.root.join("data/site");
    write_tree(&tree, &[("docs/guide.txt", 40_000), ("img/a.bin", 30_000)]);
    symlink("../docs/guide.txt", tree.join("img/guide")).unwrap();
    symlink("docs", tree.join("manual")).unwrap();
    let links = |m: &Metainfo| -> Vec<(String, Option<String>)> {
        m.info
            .files
            .iter()
            .filter(|f| !f.padding)
            .map(|f| {
                let target = f.symlink.as_ref().map(|t| t.display().to_string());
                (f.path.display().to_string(), target)
            })
            .collect()
    };
    let as_lt_reads = |t: &LtTorrent| -> Vec<(String, Option<String>)> {
        let mut v: Vec<_> = t
            .files
            .iter()
            .filter(|f| !f.pad)
            .map(|f| (f.path.clone(), f.symlink.clone()))
            .collect();
        v.sort();
        v
    };
    let want = vec![
        ("site/docs/guide.txt".to_string(), None),
        ("site/img/a.bin".to_string(), None),
        (
            "site/img/guide".to_string(),
            Some("site/docs/guide.txt".to_string()),
        ),
        ("site/manual".to_string(), Some("site/docs".to_string())),
    ];
    for (format, lt_flags) in [
        (Format::V1, serde_json::json!({"v1_only": true})),
        (Format::V2, serde_json::json!({"v2_only": true})),
        (Format::Hybrid, serde_json::json!({})),
    ] {
        let opts = CreateOptions {
            piece_length: Some(16384),
            symlinks: true,
            ..Default::default()
        }
        .with_format(format);
        let out = fx
            .root
            .join(format!("ours-links-{}.torrent", format.as_str()));
        let ours = create(&tree, &opts, &out);
        assert_eq!(links(&ours), want, "{format:?}");
        assert_eq!(as_lt_reads(&lt_show(&out)), want, "{format:?}");
        let theirs_path = fx
            .root
            .join(format!("lt-links-{}.torrent", format.as_str()));
        let mut lt_opts = lt_flags;
        lt_opts["symlinks"] = true.into();
        let theirs = lt_create(&tree, &theirs_path, 16384, lt_opts);
        let loaded = Metainfo::load(&theirs_path).unwrap();
        assert_eq!(loaded.info.format(), format);
        let mut read = links(&loaded);
        read.sort();
        assert_eq!(read, as_lt_reads(&theirs), "{format:?}");
        assert_eq!(read, want, "{format:?}");
    }
}

/// btorrent's torrent of `src` made with `opts` has the very `info` of libtorrent's `theirs`,
/// libtorrent reads it as btorrent does, and finds every piece of the data valid.
fn made_alike(fx: &Fixture, src: &Path, opts: &CreateOptions, theirs: &Metainfo, label: &str) {
    let out = fx.root.join(format!("{label}.torrent"));
    let ours = create(src, opts, &out);
    assert_eq!(ours.info_bytes(), theirs.info_bytes(), "{label}");
    assert_same_as_libtorrent(&ours, &lt_show(&out));
    let check = lt_check(&out, &fx.root.join("data"));
    assert_eq!(check.error, None, "{label}");
    assert_eq!(check.info_hash, Some(ours.info_hash.to_hex()), "{label}");
    assert_eq!(check.valid, Some(ours.info.piece_count()), "{label}");
}

/// libtorrent's check really checks: one changed byte makes exactly its piece invalid, the piece
/// btorrent's layout puts it in (a v1 torrent, and a v2 one with each file on a piece boundary).
#[test]
#[ignore = "needs mktorrent, transmission-cli, python3-libtorrent"]
fn libtorrent_flags_the_piece_holding_a_changed_byte() {
    for v2 in [false, true] {
        let opts = CreateOptions {
            trackers: vec!["http://127.0.0.1:6969/announce".into()],
            piece_length: Some(16384),
            v2,
            ..Default::default()
        };
        flags_the_piece_holding_a_changed_byte(&opts);
    }
}

fn flags_the_piece_holding_a_changed_byte(opts: &CreateOptions) {
    let fx = fixture();
    let out = fx.root.join("t.torrent");
    let m = create(&fx.tree, opts, &out);
    let target = m
        .info
        .files
        .iter()
        .find(|f| f.path.ends_with("sub/deeper/nest.bin"))
        .unwrap();
    let at = 40_000u64;
    let disk = fx.root.join("data").join(&target.path);
    let mut bytes = std::fs::read(&disk).unwrap();
    bytes[at as usize] ^= 0xff;
    std::fs::write(&disk, bytes).unwrap();
    let check = lt_check(&out, &fx.root.join("data"));
    let bad = ((target.offset + at) / m.info.piece_length) as usize;
    assert_eq!(check.invalid, Some(vec![bad]));
    assert_eq!(check.valid, Some(m.info.piece_count() - 1));
}

/// Same content, same options: btorrent and mktorrent write the same `info` dictionary.
#[test]
#[ignore = "needs mktorrent, transmission-cli, python3-libtorrent"]
fn created_info_hash_matches_mktorrent_for_the_same_options() {
    let fx = fixture();
    for (i, (src, private, source, exp)) in [
        (&fx.single, false, None, 15),
        (&fx.tree, false, None, 16),
        (&fx.tree, true, Some("SRC"), 15),
        (&fx.single, true, Some("X Y"), 18),
    ]
    .into_iter()
    .enumerate()
    {
        let opts = CreateOptions {
            trackers: vec!["http://127.0.0.1:6969/announce".into()],
            piece_length: Some(1 << exp),
            private,
            source: source.map(str::to_string),
            ..Default::default()
        };
        let ours = create(src, &opts, &fx.root.join(format!("ours-{i}.torrent")));
        let theirs_path = fx.root.join(format!("theirs-{i}.torrent"));
        let exp = exp.to_string();
        let mut args = vec!["-a", "http://127.0.0.1:6969/announce", "-l", &exp];
        if private {
            args.push("-p");
        }
        if let Some(s) = source {
            args.extend(["-s", s]);
        }
        mktorrent(src, &theirs_path, &args);
        let theirs = Metainfo::load(&theirs_path).unwrap();
        assert_eq!(ours.info_bytes(), theirs.info_bytes(), "{src:?} {args:?}");
        assert_eq!(ours.info_hash, theirs.info_hash);
    }
}

#[test]
#[ignore = "needs mktorrent, transmission-cli, python3-libtorrent"]
fn transmission_and_libtorrent_agree_on_an_edited_torrents_hash() {
    let fx = fixture();
    let out = fx.root.join("t.torrent");
    mktorrent(
        &fx.tree,
        &out,
        &[
            "-a",
            "http://127.0.0.1:1/a",
            "-a",
            "http://127.0.0.1:2/b",
            "-p",
        ],
    );
    let m = Metainfo::load(&out).unwrap();
    let edited = btorrent::metainfo::edit_trackers(&m, "http://127.0.0.1:6969/announce").unwrap();
    let edited_path = fx.root.join("edited.torrent");
    std::fs::write(&edited_path, edited).unwrap();
    let tr = tr_show(&edited_path).unwrap();
    assert_eq!(tr.hash, m.info_hash.to_hex());
    assert_eq!(
        tr.tiers[0],
        vec!["http://127.0.0.1:6969/announce".to_string()]
    );
    let lt = lt_show(&edited_path);
    assert_eq!(lt.info_hash, m.info_hash.to_hex());
    assert_eq!(
        lt.trackers[0],
        (0, "http://127.0.0.1:6969/announce".to_string())
    );
}
