//! The one-shot command line: bundled command scripts, user scripts, limits, and clear errors on bad
//! input. Every test works in its own temporary folder with its own torrents.toml.

use std::path::{Path, PathBuf};
use std::process::Output;

use btorrent::Metainfo;

struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        crate::support::cli::run(self.dir.path(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        crate::support::cli::ok(self.dir.path(), args)
    }

    /// Runs a command expected to fail and returns its stderr, checking it is short and names no source
    /// location of ours.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.lines().count() <= 2, "long error for {args:?}: {err}");
        err
    }

    fn tree(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(p).unwrap() {
                let e = e.unwrap();
                out.push(e.path());
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path(), out);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out.sort();
        out
    }
}

#[test]
fn create_info_edit_show() {
    let sb = Sandbox::new();
    sb.write("share/a.txt", b"hello");
    sb.write("share/sub/b.bin", &vec![7u8; 70_000]);
    let out = sb.ok(&[
        "create",
        "share",
        "http://127.0.0.1:1/announce",
        "--private",
    ]);
    assert!(out.contains("created"), "{out}");
    let torrent = sb.path("torrents/share.torrent");
    let meta = Metainfo::load(&torrent).unwrap();
    assert!(meta.info.private);
    assert_eq!(meta.info.files.len(), 2);

    let info = sb.ok(&["info", "torrents/share.torrent"]);
    assert!(info.contains(&meta.info_hash.to_hex()), "{info}");
    assert!(info.contains("magnet:?xt=urn:btih:"));
    assert!(info.contains("share/sub/b.bin"));
    let json: serde_json::Value =
        serde_json::from_str(&sb.ok(&["info", "torrents/share.torrent", "--json"])).unwrap();
    assert_eq!(json["info_hash"], meta.info_hash.to_hex());
    assert_eq!(json["files"].as_array().unwrap().len(), 2);
    assert_eq!(json["private"], true);
    // By the managed torrent's name (here also its data folder's, which is no .torrent) or
    // info-hash: its .torrent.
    let by_name = sb.ok(&["info", "share"]);
    assert!(by_name.contains(&meta.info_hash.to_hex()), "{by_name}");
    let by_hash = sb.ok(&["info", &meta.info_hash.to_hex()[..8]]);
    assert!(by_hash.contains("share/sub/b.bin"), "{by_hash}");
    for command in ["info", "start", "seed"] {
        let err = sb.fails(&[command, "nothing"]);
        assert!(
            err.contains(
                "nothing: no .torrent file, URL, magnet link or managed torrent by that name"
            ),
            "{command}: {err}"
        );
    }
    // `start` takes a managed torrent by its name too (its data is complete where it was made).
    let out = sb.ok(&["start", "share", "-o", "."]);
    assert!(out.contains("share: already complete"), "{out}");
    // A folder no torrent is made of: the command that makes one.
    std::fs::create_dir(sb.path("loose")).unwrap();
    let err = sb.fails(&["info", "loose"]);
    assert!(
        err.contains("loose is not a torrent: b-create loose makes one of it"),
        "{err}"
    );

    sb.ok(&["edit", "share", "http://10.0.0.9:7000/announce"]);
    let edited = Metainfo::load(&torrent).unwrap();
    assert_eq!(edited.info_hash, meta.info_hash);
    assert_eq!(
        edited.announce.as_deref(),
        Some("http://10.0.0.9:7000/announce")
    );
    // Backups added as tiers of their own, one taken out, then none at all; the info-hash stays.
    let tiers = || Metainfo::load(&torrent).unwrap().tracker_tiers();
    let out = sb.ok(&[
        "edit",
        "torrents/share.torrent",
        "--add",
        "udp://10.0.0.8:6969",
        "--add",
        "http://10.0.0.7/announce",
    ]);
    assert!(
        out.contains(
            "-> http://10.0.0.9:7000/announce | udp://10.0.0.8:6969 | http://10.0.0.7/announce"
        ),
        "{out}"
    );
    assert_eq!(
        tiers(),
        [
            vec!["http://10.0.0.9:7000/announce".to_string()],
            vec!["udp://10.0.0.8:6969".to_string()],
            vec!["http://10.0.0.7/announce".to_string()],
        ]
    );
    let err = sb.fails(&[
        "edit",
        "torrents/share.torrent",
        "--remove",
        "http://x/announce",
    ]);
    assert!(
        err.contains("\"http://x/announce\" is not one of its trackers"),
        "{err}"
    );
    let err = sb.fails(&["edit", "torrents/share.torrent"]);
    assert!(
        err.contains("name the new tracker, or --add, --remove or --clear"),
        "{err}"
    );
    assert_eq!(tiers().len(), 3, "a refused edit changed the file");
    sb.ok(&[
        "edit",
        "torrents/share.torrent",
        "--remove",
        "udp://10.0.0.8:6969",
    ]);
    assert_eq!(
        tiers().concat(),
        ["http://10.0.0.9:7000/announce", "http://10.0.0.7/announce"]
    );
    sb.ok(&["edit", "torrents/share.torrent", "--clear"]);
    let bare = Metainfo::load(&torrent).unwrap();
    assert!(bare.tracker_tiers().is_empty() && bare.announce.is_none());
    assert_eq!(bare.info_hash, meta.info_hash);
    sb.ok(&[
        "edit",
        "torrents/share.torrent",
        "http://10.0.0.9:7000/announce",
    ]);

    let show = sb.ok(&["show"]);
    assert!(show.contains("share") && show.contains("seeding"), "{show}");
    let cfg = btorrent::config::Config::load(&sb.path("torrents.toml")).unwrap();
    assert_eq!(cfg.torrents.len(), 1);
    assert_eq!(cfg.torrents[0].info_hash, meta.info_hash.to_hex());
    assert_eq!(
        cfg.torrents[0].file,
        PathBuf::from("torrents/share.torrent")
    );
}

/// With no torrents.toml, the tracker written is this machine's embedded tracker at its LAN address
/// (another machine cannot reach 127.0.0.1), and the output says which address was chosen.
#[test]
fn create_uses_default_tracker_and_options() {
    let sb = Sandbox::new();
    sb.write("f.bin", &vec![1u8; 100_000]);
    let out = sb.ok(&[
        "create",
        "f.bin",
        "--piece-length",
        "32K",
        "--comment",
        "for the lab",
        "-o",
        "out/f.torrent",
    ]);
    let m = Metainfo::load(&sb.path("out/f.torrent")).unwrap();
    assert_eq!(m.info.piece_length, 32768);
    assert_eq!(m.comment.as_deref(), Some("for the lab"));
    let lan = btorrent::lan::lan_address();
    let url = format!("http://{}:6969/announce", lan.ip);
    assert_eq!(m.announce.as_deref(), Some(url.as_str()));
    assert!(out.contains(&format!("tracker    {url}")), "{out}");
    assert!(out.contains(&lan.to_string()), "{out}");
    if lan.source != btorrent::lan::Source::Loopback {
        assert!(!lan.ip.is_loopback(), "{lan}");
    }
    // A tracker_url in torrents.toml is taken as it is, and nothing is said about addresses.
    sb.write(
        "torrents.toml",
        b"[settings]\ntracker_url = \"http://127.0.0.1:6969/announce\"\n",
    );
    let out = sb.ok(&["create", "f.bin", "-o", "again.torrent"]);
    let m = Metainfo::load(&sb.path("again.torrent")).unwrap();
    assert_eq!(
        m.announce.as_deref(),
        Some("http://127.0.0.1:6969/announce")
    );
    assert!(!out.contains("LAN address"), "{out}");
}

#[test]
fn hostile_torrents_get_one_line_errors_and_nothing_is_written() {
    let sb = Sandbox::new();
    sb.write("f.bin", &vec![1u8; 40_000]);
    sb.ok(&["create", "f.bin", "http://t/announce", "-o", "good.torrent"]);
    let good = std::fs::read(sb.path("good.torrent")).unwrap();
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "not a valid .torrent",
        ),
        ("garbage", b"hello world".to_vec(), "not a valid .torrent"),
        ("empty", Vec::new(), "not a valid .torrent"),
    ];
    let bad_pieces = String::from_utf8_lossy(&good).replace("6:pieces60:", "6:pieces59:");
    if bad_pieces.as_bytes() != good.as_slice() {
        let mut b = bad_pieces.into_bytes();
        let e = b.len() - 2;
        b.remove(e);
        cases.push(("pieces", b, "not a valid .torrent"));
    }
    cases.push((
        "negative",
        b"d4:infod6:lengthi-1e4:name1:x12:piece lengthi16384e6:pieces0:ee".to_vec(),
        "out of range",
    ));
    cases.push((
        "escape",
        b"d4:infod5:filesld6:lengthi1e4:pathl2:..6:passwdeee4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee".to_vec(),
        "unsafe",
    ));
    let before_toml = sb.path("torrents.toml").exists();
    for (name, bytes, want) in cases {
        let file = format!("{name}.torrent");
        sb.write(&file, &bytes);
        let listing = sb.tree();
        for cmd in [
            vec!["info", file.as_str()],
            vec!["edit", file.as_str(), "http://x/announce"],
        ] {
            let err = sb.fails(&cmd);
            assert!(err.contains(want), "{name} {cmd:?}: {err}");
            assert!(
                err.contains(&file),
                "{name}: error names the script or file: {err}"
            );
        }
        assert_eq!(sb.tree(), listing, "{name}: nothing written");
        assert_eq!(std::fs::read(sb.path(&file)).unwrap(), bytes);
    }
    assert_eq!(sb.path("torrents.toml").exists(), before_toml);
    let err = sb.fails(&["create", "/dev/null", "http://t/a", "-o", "null.torrent"]);
    assert!(
        err.contains("/dev/null is neither a file nor a folder"),
        "{err}"
    );
    let err = sb.fails(&["create", "does/not/exist", "http://t/a"]);
    assert!(
        err.contains("does/not/exist") && err.contains("no such file"),
        "{err}"
    );
}

#[test]
fn user_script_is_listed_and_runs_and_overrides() {
    let sb = Sandbox::new();
    sb.write(
        "scripts/b-greet.rhai",
        b"//! Greet someone by name.\n//!\n//! usage: b-greet <who> [--times <n>]\nlet n = if args.times == () { 1 } else { args.times };\nfor i in 0..n { print(`hello ${args.who}`); }\n",
    );
    sb.write("scripts/b-bare.rhai", b"print(1);\n");
    let help = sb.ok(&["help"]);
    assert!(
        help.contains("b-greet <who> [options]") && help.contains("Greet someone"),
        "{help}"
    );
    // Every summary starts in the same column, a command with none shows where it comes from there.
    let column = |l: &str| {
        l.find(" Greet")
            .or_else(|| l.find(" [scripts/b-bare"))
            .map(|i| i + 1)
    };
    let greet = help
        .lines()
        .find(|l| l.contains("b-greet"))
        .and_then(column);
    let bare = help
        .lines()
        .find(|l| l.starts_with("  b-bare "))
        .and_then(column);
    let create = help
        .lines()
        .find(|l| l.starts_with("  b-create "))
        .and_then(|l| l.find(" Create").map(|i| i + 1));
    assert!(greet.is_some() && greet == bare && bare == create, "{help}");
    assert!(help.contains("b-create"));
    assert_eq!(
        sb.ok(&["greet", "ann", "--times", "2"]),
        "hello ann\nhello ann\n"
    );
    let help = sb.ok(&["help", "greet"]);
    assert!(help.contains("usage: b-greet <who>"), "{help}");
    assert!(
        help.ends_with("\n\n(from scripts/b-greet.rhai)\n") && !help.contains("\\n"),
        "the origin on a line of its own: {help:?}"
    );
    let err = sb.fails(&["greet"]);
    assert!(err.contains("missing <who>"), "{err}");
    let err = sb.fails(&["greet", "x", "--times", "many"]);
    assert!(err.contains("not a whole number"), "{err}");

    sb.write(
        "scripts/b-show.rhai",
        b"//! My own show.\nprint(\"mine\");\n",
    );
    assert_eq!(sb.ok(&["show"]), "mine\n");
    let err = sb.fails(&["shwo"]);
    assert!(
        err.contains("did you mean show? (btorrent help lists every command)"),
        "one-shot, commands are named as typed there: {err}"
    );
}

#[test]
fn endless_loop_is_stopped_with_an_error_naming_the_script() {
    let sb = Sandbox::new();
    sb.write(
        "torrents.toml",
        b"[settings]\nscript_max_operations = 200000\n",
    );
    sb.write(
        "scripts/b-spin.rhai",
        b"//! Never ends.\nlet x = 0;\nloop { x += 1; }\n",
    );
    let err = sb.fails(&["spin"]);
    assert!(err.contains("b-spin.rhai"), "{err}");
    assert!(err.contains("200000 operations"), "{err}");
    assert!(err.contains("line 3"), "{err}");

    sb.write("deep.rhai", b"fn f(n) { f(n + 1) }\nf(0);\n");
    let err = sb.fails(&["run", "deep.rhai"]);
    assert!(err.contains("deep.rhai"), "{err}");

    sb.write("big.rhai", b"let s = \"x\"; loop { s += s; }\n");
    let err = sb.fails(&["run", "big.rhai"]);
    assert!(
        err.contains("big.rhai: line 1:") && err.contains("string would be longer than 16.00 MiB"),
        "{err}"
    );
}

#[test]
fn run_passes_arguments_and_reports_script_errors() {
    let sb = Sandbox::new();
    sb.write("echo.rhai", b"print(args.len()); print(args[0]);\n");
    assert_eq!(sb.ok(&["run", "echo.rhai", "a", "--b"]), "2\na\n");
    // A table cell holds one line that only prints: control characters are shown escaped.
    sb.write(
        "cells.rhai",
        b"print(table([\"name\"], [[\"bad\\nname\\x1b[2J\"]]));\n",
    );
    let shown = sb.ok(&["run", "cells.rhai"]);
    assert!(
        shown.contains("bad\\nname\\u{1b}[2J") && !shown.contains('\u{1b}'),
        "{shown}"
    );
    sb.write("oops.rhai", b"let x = 1;\nthrow \"it broke\";\n");
    let err = sb.fails(&["run", "oops.rhai"]);
    assert!(
        err.contains("oops.rhai") && err.contains("line 2") && err.contains("it broke"),
        "{err}"
    );
    sb.write("syntax.rhai", b"let = ;\n");
    let err = sb.fails(&["run", "syntax.rhai"]);
    assert!(err.contains("syntax error at line 1"), "{err}");
    let err = sb.fails(&["run", "missing.rhai"]);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn bad_config_is_reported() {
    let sb = Sandbox::new();
    sb.write("torrents.toml", b"[settings]\nlisten_prot = 1\n");
    let err = sb.fails(&["show"]);
    assert!(err.contains("listen_prot"), "{err}");
    // A file that never ends is refused, not read into memory.
    let err = sb.fails(&["-c", "/dev/zero", "show"]);
    assert!(
        err.contains("/dev/zero") && err.contains("too large"),
        "{err}"
    );
    // Each mistake is one line that says where it is.
    for (text, want) in [
        (
            "[settings]\ntracker_url = \"http://t/a\"\nlisten_port = \"abc\"\n",
            "line 3 (listen_port = \"abc\")",
        ),
        (
            "[settings]\nlisten_port = 70000\n",
            "line 2 (listen_port = 70000)",
        ),
        ("[settings\nlisten_port = 1\n", "line 1 ([settings)"),
        ("[settings]\nwatch_dir = \n", "line 2 (watch_dir =)"),
    ] {
        sb.write("torrents.toml", text.as_bytes());
        let out = sb.run(&["show"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(want), "{text:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{text:?}: {err}");
    }
}

#[test]
fn create_refuses_a_tracker_that_is_not_a_url_and_writes_nothing() {
    let sb = Sandbox::new();
    sb.write("f.bin", &vec![3u8; 30_000]);
    let listing = sb.tree();
    for bad in [
        "notaurl",
        "http://",
        "torrents/f.torrent",
        "http://a b/announce",
    ] {
        let err = sb.fails(&["create", "f.bin", bad]);
        assert!(err.contains("is not a tracker URL"), "{bad}: {err}");
        assert_eq!(sb.tree(), listing, "{bad}: nothing written");
    }
    // The same check in edit, and in a script's `trackers` option.
    sb.ok(&["create", "f.bin", "http://t:6969/announce"]);
    let err = sb.fails(&["edit", "torrents/f.bin.torrent", "http://"]);
    assert!(err.contains("is not a tracker URL"), "{err}");
    sb.write(
        "extra.rhai",
        b"create(\"f.bin\", \"http://t/announce\", #{ trackers: [\"oops\"], output: \"x.torrent\" });\n",
    );
    let err = sb.fails(&["run", "extra.rhai"]);
    assert!(err.contains("\"oops\" is not a tracker URL"), "{err}");
    assert!(!sb.path("x.torrent").exists());
    // Other schemes are fine: the torrent may be meant for other clients too.
    let out = sb.ok(&["create", "f.bin", "udp://t:6969", "-o", "udp.torrent"]);
    assert!(out.contains("29.30 KiB in 2 pieces of 16.00 KiB"), "{out}");
    sb.write("one.bin", b"x");
    let out = sb.ok(&["create", "one.bin"]);
    assert!(out.contains("1 B in 1 piece of 16.00 KiB"), "{out}");
    let out = sb.ok(&["create", "one.bin", "", "-o", "none.torrent"]);
    assert!(
        out.contains("tracker    (none: peers come from the DHT)"),
        "{out}"
    );
}

/// `b-create --web-seed` names an HTTP server holding the files (BEP 19): written as `url-list`,
/// shown by create and info; anything but an http(s) URL is refused with nothing written.
#[test]
fn create_takes_a_web_seed_and_refuses_one_that_is_not_http() {
    let sb = Sandbox::new();
    sb.write("f.bin", &vec![5u8; 20_000]);
    let listing = sb.tree();
    for bad in ["ftp://h/f.bin", "http://", "h/f.bin", "http://a b/"] {
        let err = sb.fails(&["create", "f.bin", "--web-seed", bad]);
        assert!(err.contains("is not a web seed URL"), "{bad}: {err}");
        assert_eq!(sb.tree(), listing, "{bad}: nothing written");
    }
    let out = sb.ok(&["create", "f.bin", "--web-seed", "http://files.lan/share/"]);
    assert!(out.contains("web seed   http://files.lan/share/"), "{out}");
    let meta = btorrent::Metainfo::load(&sb.path("torrents/f.bin.torrent")).unwrap();
    assert_eq!(meta.web_seeds, vec!["http://files.lan/share/".to_string()]);
    let out = sb.ok(&["info", "torrents/f.bin.torrent"]);
    assert!(
        out.contains("web seed      http://files.lan/share/"),
        "{out}"
    );
}

/// `create` marks a file its owner may execute (BEP 47's `x`), and `info` shows it, in its table
/// and its `--json`.
#[test]
fn create_marks_executable_files_and_info_shows_them() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new();
    sb.write("kit/notes.txt", b"read me");
    let tool = sb.write("kit/tool.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    sb.ok(&["create", "kit", "--no-tracker"]);
    let out = sb.ok(&["info", "torrents/kit.torrent"]);
    assert!(out.contains("kit/tool.sh (executable)"), "{out}");
    assert!(!out.contains("notes.txt (executable)"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&sb.ok(&["info", "torrents/kit.torrent", "--json"])).unwrap();
    let marks: Vec<(&str, bool)> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap(),
                f["executable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(marks, [("kit/notes.txt", false), ("kit/tool.sh", true)]);
}

/// `create --mtime` records each file's modification time, which `info` shows (a `modified`
/// column, and `mtime` and `modified` in `--json`); without it nothing is recorded and the table
/// has no such column; the setting `torrent_mtime` makes it the default.
#[test]
fn create_records_times_when_asked_and_info_shows_them() {
    use std::time::{Duration, UNIX_EPOCH};
    let sb = Sandbox::new();
    for (name, t) in [
        ("album/a.jpg", 1_000_000_000),
        ("album/b.jpg", 1_600_000_000),
    ] {
        let path = sb.write(name, b"pixels");
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_secs(t)).unwrap();
    }
    let made = sb.ok(&["create", "album", "--no-tracker", "--mtime"]);
    assert!(
        made.contains("times      each file's modification time"),
        "{made}"
    );
    let out = sb.ok(&["info", "torrents/album.torrent"]);
    assert!(out.contains("modified"), "{out}");
    assert!(out.contains("2001-09-09T01:46:40Z"), "{out}");
    assert!(out.contains("2020-09-13T12:26:40Z"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&sb.ok(&["info", "torrents/album.torrent", "--json"])).unwrap();
    let times: Vec<(i64, &str)> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["mtime"].as_i64().unwrap(),
                f["modified"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        times,
        [
            (1_000_000_000, "2001-09-09T01:46:40Z"),
            (1_600_000_000, "2020-09-13T12:26:40Z")
        ]
    );

    let made = sb.ok(&["create", "album", "--no-tracker", "-o", "plain.torrent"]);
    assert!(!made.contains("times"), "{made}");
    let out = sb.ok(&["info", "plain.torrent"]);
    assert!(
        !out.contains("modified") && !out.contains("2001-09-09"),
        "{out}"
    );
    let m = Metainfo::load(&sb.path("plain.torrent")).unwrap();
    assert!(m.info.files.iter().all(|f| f.mtime.is_none()));

    sb.write("torrents.toml", b"[settings]\ntorrent_mtime = true\n");
    sb.ok(&["create", "album", "--no-tracker", "-o", "set.torrent"]);
    let m = Metainfo::load(&sb.path("set.torrent")).unwrap();
    let times: Vec<_> = m.info.files.iter().map(|f| f.mtime).collect();
    assert_eq!(times, [Some(1_000_000_000), Some(1_600_000_000)]);
}

/// `b-create --symlinks` records a link inside the folder as a link (BEP 47), which `b-info`
/// shows with its target (and `--json` as `symlink`); without it the link is shared as its file,
/// and a broken link leaves the folder shareable; a v2 torrent records them too.
#[test]
fn create_records_links_when_asked_and_info_shows_them() {
    use std::os::unix::fs::symlink;
    let sb = Sandbox::new();
    sb.write("kit/docs/notes.txt", b"read me");
    symlink("docs/notes.txt", sb.path("kit/NOTES")).unwrap();
    symlink("gone", sb.path("kit/broken")).unwrap();
    sb.ok(&["create", "kit", "--no-tracker", "--symlinks"]);
    let out = sb.ok(&["info", "torrents/kit.torrent"]);
    assert!(out.contains("kit/NOTES -> kit/docs/notes.txt"), "{out}");
    assert!(!out.contains("broken"), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&sb.ok(&["info", "torrents/kit.torrent", "--json"])).unwrap();
    let links: Vec<(&str, Option<&str>)> = json["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f["symlink"].as_str()))
        .collect();
    assert_eq!(
        links,
        [
            ("kit/NOTES", Some("kit/docs/notes.txt")),
            ("kit/docs/notes.txt", None)
        ]
    );
    sb.ok(&["create", "kit", "--no-tracker", "-o", "plain.torrent"]);
    let out = sb.ok(&["info", "plain.torrent"]);
    assert!(out.contains("kit/NOTES ") && !out.contains("->"), "{out}");
    sb.ok(&["create", "kit", "--v2", "--symlinks", "-o", "v2.torrent"]);
    let out = sb.ok(&["info", "v2.torrent"]);
    assert!(out.contains("kit/NOTES -> kit/docs/notes.txt"), "{out}");
}

/// `b-create --v2` makes a BitTorrent v2 torrent (BEP 52); `b-info` names the format, both
/// info-hashes and the `urn:btmh:` magnet link, and its `--json` carries the version; `--hybrid`
/// makes one of both kinds.
#[test]
fn create_v2_makes_a_v2_torrent_that_info_names() {
    let sb = Sandbox::new();
    sb.write("set/a.bin", &vec![3u8; 40_000]);
    sb.write("set/b.txt", b"hello");
    let made = sb.ok(&["create", "set", "--v2", "--no-tracker"]);
    // Who can read it is said when it is made.
    assert!(
        made.contains("format     BitTorrent v2 (BEP 52): libtorrent 2 and qBittorrent 4.4+"),
        "{made}"
    );
    let meta = Metainfo::load(&sb.path("torrents/set.torrent")).unwrap();
    let full = hex::encode(meta.info_hash_v2.expect("a v2 torrent"));
    assert!(full.starts_with(&meta.info_hash.to_hex()));
    let out = sb.ok(&["info", "torrents/set.torrent"]);
    assert!(
        out.contains("format        BitTorrent v2 (BEP 52)"),
        "{out}"
    );
    assert!(out.contains(&format!("(SHA-256 {full})")), "{out}");
    assert!(out.contains(&format!("xt=urn:btmh:1220{full}")), "{out}");
    let json: serde_json::Value =
        serde_json::from_str(&sb.ok(&["info", "torrents/set.torrent", "--json"])).unwrap();
    assert_eq!(json["version"], 2);
    assert_eq!(json["info_hash_v2"], full.as_str());

    // A hybrid: read as v1 (padding files and all), named as a hybrid with both its hashes, its
    // link naming both.
    let made = sb.ok(&[
        "create",
        "set",
        "--hybrid",
        "--no-tracker",
        "-o",
        "hy.torrent",
    ]);
    assert!(
        made.contains("format     hybrid v1 + v2 (BEP 52): every client reads it"),
        "{made}"
    );
    let hy = Metainfo::load(&sb.path("hy.torrent")).unwrap();
    assert!(hy.info.v2.is_none() && hy.info.files.iter().any(|f| f.padding));
    let full = hex::encode(hy.info_hash_v2.expect("a hybrid's SHA-256"));
    let out = sb.ok(&["info", "hy.torrent"]);
    assert!(
        out.contains("format        hybrid v1 + v2 (BEP 52), in both swarms"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "info-hash     {} (v1; v2: SHA-256 {full})",
            hy.info_hash.to_hex()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "xt=urn:btih:{}&xt=urn:btmh:1220{full}",
            hy.info_hash.to_hex()
        )),
        "{out}"
    );

    // `torrent_format` is what `create` makes without --v1, --v2 or --hybrid.
    sb.ok(&["settings", "torrent_format", "v2"]);
    sb.ok(&["create", "set", "--no-tracker", "-o", "by-setting.torrent"]);
    let made = Metainfo::load(&sb.path("by-setting.torrent")).unwrap();
    assert_eq!(made.info.format(), btorrent::metainfo::Format::V2);
    sb.ok(&["create", "set", "--no-tracker", "--v1", "-o", "v1.torrent"]);
    let made = Metainfo::load(&sb.path("v1.torrent")).unwrap();
    assert_eq!(made.info.format(), btorrent::metainfo::Format::V1);
    let err = sb.fails(&["create", "set", "--v1", "--hybrid"]);
    assert!(
        err.contains("choose one of --v1, --v2 and --hybrid"),
        "{err}"
    );
    let err = sb.fails(&["settings", "torrent_format", "v3"]);
    assert!(
        err.contains("expected one of `v1`, `v2`, `hybrid`"),
        "{err}"
    );

    // A folder of one file is that folder, in v2 as in v1: seeded from where it was made.
    sb.write("one/a.bin", &vec![4u8; 20_000]);
    sb.ok(&["create", "one", "--v2", "--no-tracker", "-o", "one.torrent"]);
    let one = Metainfo::load(&sb.path("one.torrent")).unwrap();
    assert_eq!(one.info.files[0].path, std::path::Path::new("one/a.bin"));
    // Its data is found where it was made: nothing to download, every piece verified.
    let out = sb.ok(&["start", "one.torrent", "-o", ".", "--stall", "20"]);
    assert!(out.contains("one: already complete"), "{out}");
}

#[test]
fn create_never_overwrites_a_file_that_is_not_the_same_torrent() {
    let sb = Sandbox::new();
    sb.write("share/a.txt", b"my data");
    sb.write("share/b.txt", b"more data");
    sb.write("notes.txt", b"precious");
    for (out, what) in [("share/a.txt", "my data"), ("notes.txt", "precious")] {
        let err = sb.fails(&["create", "share", "-o", out]);
        assert!(
            err.contains(out) && err.contains("not a .torrent"),
            "{out}: {err}"
        );
        assert_eq!(std::fs::read_to_string(sb.path(out)).unwrap(), what);
    }
    let err = sb.fails(&["create", "share", "-o", "share"]);
    assert!(err.contains("is a folder"), "{err}");
    assert!(!sb.path("torrents.toml").exists(), "nothing registered");
    // The same torrent again (another tracker, same info-hash) may be rewritten.
    sb.ok(&["create", "share", "http://a/announce", "-o", "s.torrent"]);
    sb.ok(&["create", "share", "http://b/announce", "-o", "s.torrent"]);
    let m = Metainfo::load(&sb.path("s.torrent")).unwrap();
    assert_eq!(m.announce.as_deref(), Some("http://b/announce"));
}

#[test]
fn log_lines_to_a_file_carry_no_colour_codes() {
    let sb = Sandbox::new();
    sb.write(
        "torrents.toml",
        b"[settings]\nlisten_port = 0\nlisten_ip = \"127.0.0.1\"\ntracker_url = \"\"\n",
    );
    sb.write("f.bin", &vec![9u8; 20_000]);
    sb.ok(&["create", "f.bin"]);
    sb.write(
        "s.rhai",
        b"seed(\"torrents/f.bin.torrent\", \".\").wait(5);\n",
    );
    let out = sb.run(&["-v", "run", "s.rhai"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("INFO"), "-v logs: {err}");
    assert!(!err.contains('\x1b'), "colour codes in {err:?}");
}

#[test]
fn register_refuses_bad_options_with_one_clear_line() {
    let sb = Sandbox::new();
    sb.write("f.bin", &vec![1u8; 20_000]);
    sb.ok(&["create", "f.bin", "http://t/announce", "-o", "f.torrent"]);
    sb.write("torrents.toml", b"");
    for (opts, want) in [
        (
            "#{ state: \"stoped\" }",
            "register: unknown state \"stoped\" (downloading, seeding, paused or stopped)",
        ),
        ("#{ data: 5 }", "register: `data` must be a string, not i64"),
        ("#{ origin: \"mine\" }", "register: unknown origin \"mine\""),
    ] {
        sb.write(
            "r.rhai",
            format!("register(load(\"f.torrent\"), {opts});\n").as_bytes(),
        );
        let err = sb.fails(&["run", "r.rhai"]);
        assert!(err.contains(want), "{opts}: {err}");
        assert!(!err.contains("Runtime error"), "{opts}: {err}");
    }
    assert_eq!(std::fs::read(sb.path("torrents.toml")).unwrap(), b"");
    sb.write(
        "r.rhai",
        b"register(load(\"f.torrent\"), #{ state: \"paused\" });\n",
    );
    sb.ok(&["run", "r.rhai"]);
    let cfg = btorrent::config::Config::load(&sb.path("torrents.toml")).unwrap();
    assert_eq!(cfg.torrents[0].state, "paused");
}

#[test]
fn errors_echo_at_most_a_short_piece_of_huge_input() {
    let sb = Sandbox::new();
    let huge = "x".repeat(100_000);
    let multi = "line one\nline two\nline three".to_string();
    sb.write("f.bin", b"data");
    sb.write(
        "throw.rhai",
        format!("throw {:?};\n", format!("{huge}\n{multi}")).as_bytes(),
    );
    for args in [
        vec![huge.as_str()],
        vec!["create", "f.bin", &format!("--{huge}")],
        vec!["info", "a", &huge],
        vec!["create", "f.bin", "--piece-length", &huge],
        vec!["run", "throw.rhai"],
    ] {
        let err = sb.fails(&args);
        assert!(err.len() < 1000, "{} bytes: {}...", err.len(), &err[..200]);
    }
    sb.write("throw.rhai", format!("throw {multi:?};\n").as_bytes());
    let err = sb.fails(&["run", "throw.rhai"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("line one line two line three"), "{err}");
}

#[test]
fn output_into_a_closed_pipe_is_not_a_panic() {
    let sb = Sandbox::new();
    sb.write(
        "torrents.toml",
        b"[settings]\nlisten_port = 0\nlisten_ip = \"127.0.0.1\"\ntracker_bind = \"127.0.0.1:0\"\n",
    );
    sb.write("f.bin", &vec![1u8; 20_000]);
    sb.ok(&["create", "f.bin", "http://t/announce", "-o", "f.torrent"]);
    // As `btorrent info f.torrent | head -0` does: the reader is gone before anything is written.
    let closed_pipe = || {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        writer
    };
    for args in [
        vec!["info", "f.torrent"],
        vec!["help"],
        vec!["show"],
        vec!["demo", "--size", "64K"],
    ] {
        let out = crate::support::cli::bin()
            .args(&args)
            .current_dir(sb.dir.path())
            .stdout(closed_pipe())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(out.status.success(), "{args:?}: {err}");
    }
    // The daemon logs to stdout: it keeps running, and stops cleanly on SIGTERM.
    let mut daemon = crate::support::cli::bin()
        .arg("daemon")
        .current_dir(sb.dir.path())
        .stdout(closed_pipe())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let alive = daemon.try_wait().unwrap().is_none();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let out = daemon.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(alive, "the daemon died: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
}

#[test]
fn script_files_are_read_within_a_bound() {
    let sb = Sandbox::new();
    // A script larger than a script may be (16 MiB): refused, not parsed.
    let mut big = b"print(\"ran\");\n// ".to_vec();
    big.resize((16 << 20) + 10, b'x');
    big.push(b'\n');
    sb.write("big.rhai", &big);
    let err = sb.fails(&["run", "big.rhai"]);
    assert!(
        err.contains("big.rhai") && err.contains("larger than 16 MiB"),
        "{err}"
    );
    sb.write("scripts/b-big.rhai", &big);
    let err = sb.fails(&["big"]);
    assert!(err.contains("unknown command"), "{err}");
    // A device that never ends is refused the same way, at once.
    let started = std::time::Instant::now();
    let err = sb.fails(&["run", "/dev/zero"]);
    assert!(err.contains("larger than 16 MiB"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A pipe is fine: `btorrent run <(echo ...)`.
    let out = std::process::Command::new("bash")
        .args([
            "-c",
            &format!(
                "{} run <(echo 'print(40 + 2);')",
                env!("CARGO_BIN_EXE_btorrent")
            ),
        ])
        .current_dir(sb.dir.path())
        .env_remove("BTORRENT_CONFIG")
        .env("BTORRENT_DHT", "off")
        .env("BTORRENT_LSD", "off")
        .env("BTORRENT_PORT_FORWARDING", "off")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n", "{out:?}");
}

#[test]
fn text_from_a_torrent_cannot_drive_the_terminal() {
    let sb = Sandbox::new();
    // Free text (comment, source, creator, tracker) with escape sequences: shown without them.
    let evil = "\u{1b}]0;owned\u{7}\u{1b}[2J";
    let info = format!(
        "d6:lengthi5e4:name5:a.txt12:piece lengthi16384e6:pieces20:{}6:source{}:{evil}e",
        "x".repeat(20),
        evil.len()
    );
    let bytes = format!(
        "d8:announce{}:http://t/{evil}7:comment{}:{evil}10:created by{}:{evil}4:info{info}e",
        9 + evil.len(),
        evil.len(),
        evil.len()
    );
    sb.write("evil.torrent", bytes.as_bytes());
    let out = sb.ok(&["info", "evil.torrent"]);
    assert!(out.contains("comment"), "{out}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    // A name or path with one is refused outright (it would show in every listing and event).
    sb.write("bad name\u{1b}[2J.bin", b"data");
    let err = sb.fails(&["create", "bad name\u{1b}[2J.bin", "-o", "x.torrent"]);
    assert!(err.contains("no usable name"), "{err:?}");
}

#[test]
fn the_top_level_help_shows_optional_arguments_as_optional() {
    let sb = Sandbox::new();
    let help = sb.ok(&["--help"]);
    assert!(
        help.contains("btorrent create <path> [tracker-url]"),
        "b-create works without a tracker URL: {help}"
    );
}
