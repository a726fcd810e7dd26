//! The one-shot command line: bundled command scripts, user scripts, limits, and clear errors on bad
//! input. Every test works in its own temporary folder with its own torrents.toml.

mod support;

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
        support::cli::run(self.dir.path(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        support::cli::ok(self.dir.path(), args)
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

    sb.ok(&[
        "edit",
        "torrents/share.torrent",
        "http://10.0.0.9:7000/announce",
    ]);
    let edited = Metainfo::load(&torrent).unwrap();
    assert_eq!(edited.info_hash, meta.info_hash);
    assert_eq!(
        edited.announce.as_deref(),
        Some("http://10.0.0.9:7000/announce")
    );

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

#[test]
fn create_uses_default_tracker_and_options() {
    let sb = Sandbox::new();
    sb.write("f.bin", &vec![1u8; 100_000]);
    sb.ok(&[
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
    assert_eq!(
        m.announce.as_deref(),
        Some("http://127.0.0.1:6969/announce")
    );
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
    let help = sb.ok(&["help"]);
    assert!(
        help.contains("b-greet <who> [options]") && help.contains("Greet someone"),
        "{help}"
    );
    assert!(help.contains("b-create"));
    assert_eq!(
        sb.ok(&["greet", "ann", "--times", "2"]),
        "hello ann\nhello ann\n"
    );
    assert!(sb.ok(&["help", "greet"]).contains("usage: b-greet <who>"));
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
    assert!(err.contains("did you mean b-show"), "{err}");
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
        err.contains("big.rhai") && err.to_lowercase().contains("length"),
        "{err}"
    );
}

#[test]
fn run_passes_arguments_and_reports_script_errors() {
    let sb = Sandbox::new();
    sb.write("echo.rhai", b"print(args.len()); print(args[0]);\n");
    assert_eq!(sb.ok(&["run", "echo.rhai", "a", "--b"]), "2\na\n");
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
}
