//! Choosing files from scripts and commands, against a real seeder in the same process:
//! `b-start --only`, `t.files`, `b-show <name>`, `t.set_wanted` while the download runs, and
//! `t.sequential` and `t.sequential_from`; the selection is kept in torrents.toml.

use std::path::Path;
use std::time::Duration;

use crate::support::host::ScriptRig;
use crate::support::{assert_same_tree, opts, session_with, torrent, wait_complete, write_tree};
use btorrent::config::Config;
use btorrent::engine::{Session, SessionConfig};
use btorrent::Metainfo;

fn rhai_str(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// A torrent of `set/` (a.bin, b.bin, sub/c.bin, sub/d.txt) seeded by a session of its own (not
/// super-seeding: it announces every piece), at most `rate` bytes per second.
fn seeded(rig: &ScriptRig, rate: Option<u64>) -> (Session, Metainfo) {
    let src = rig.path("origin");
    write_tree(
        &src,
        &[
            ("set/a.bin", 700_000),
            ("set/b.bin", 300_000),
            ("set/sub/c.bin", 200_000),
            ("set/sub/d.txt", 5_000),
        ],
    );
    let meta = torrent(&src.join("set"), 32 * 1024, vec![]);
    std::fs::write(rig.path("set.torrent"), meta.as_bytes()).unwrap();
    let cfg = SessionConfig {
        super_seed: Some(false),
        upload_limit: rate,
        ..Default::default()
    };
    let seeder = rig.rt.block_on(session_with(cfg));
    let h = rig
        .rt
        .block_on(seeder.add(meta.clone(), opts(&src, vec![])))
        .unwrap();
    rig.rt.block_on(wait_complete(&h, 20));
    (seeder, meta)
}

fn rig() -> ScriptRig {
    ScriptRig::new("listen_ip = \"127.0.0.1\"\nlisten_port = 0", None)
}

#[test]
fn start_only_fetches_the_files_named_and_show_lists_them() {
    let rig = rig();
    let (seeder, meta) = seeded(&rig, None);
    let dl = rig.path("dl");
    let argv: Vec<String> = [
        rig.path("set.torrent").display().to_string(),
        "-o".into(),
        dl.display().to_string(),
        "--peer".into(),
        seeder.listen_addr().to_string(),
        "--only".into(),
        "a.bin".into(),
        "--only".into(),
        "sub/*.txt,nothing-else*".into(),
    ]
    .into();
    let e = rig
        .host
        .run_command("b-start", &argv)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"nothing-else*\" names no file of set"), "{e}");
    let argv: Vec<String> = argv[..argv.len() - 1]
        .iter()
        .cloned()
        .chain(["sub/*.txt".to_string()])
        .collect();
    let _ = rig.host.run_command("b-start", &argv).unwrap();
    rig.wait_for("the summary", |l| {
        l.iter().any(|x| {
            x.contains("downloaded and verified") && x.contains("of skipped files not fetched")
        })
    });
    let origin = rig.path("origin/set");
    for f in ["a.bin", "sub/d.txt"] {
        assert_eq!(
            std::fs::read(dl.join("set").join(f)).unwrap(),
            std::fs::read(origin.join(f)).unwrap(),
            "{f}"
        );
    }
    // c.bin is skipped: it holds only the bytes of the piece it shares with d.txt (a hole elsewhere),
    // and, never complete, keeps its partial name.
    use std::os::unix::fs::MetadataExt;
    let c = std::fs::metadata(dl.join("set/sub/c.bin.part")).unwrap();
    assert!(
        c.blocks() * 512 <= 36 * 1024,
        "c.bin holds {} bytes",
        c.blocks() * 512
    );
    // torrents.toml keeps the selection.
    let cfg = Config::load(&rig.path("torrents.toml")).unwrap();
    let e = cfg.find(&meta.info_hash).unwrap();
    assert_eq!(e.files.skip, [1, 2]);
    // t.files, and b-show with a name lists the files.
    rig.script(
        "files.rhai",
        "let t = torrent(\"set\");\nfor f in t.files { print(`file ${f.index} ${f.path} ${f.length} ${f.done} ${f.progress} ${f.wanted} ${f.priority}`); }\n",
    );
    let lines = rig.lines.lock().clone();
    assert!(
        lines.contains(&"file 0 a.bin 700000 700000 1.0 true normal".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("file 2 sub/c.bin 200000 ") && l.ends_with(" false skip")),
        "{lines:#?}"
    );
    let _ = rig
        .host
        .run_command("b-show", &["set".to_string()])
        .unwrap();
    let lines = rig.lines.lock().clone();
    let row = lines
        .iter()
        .find(|l| l.contains("sub/c.bin"))
        .expect("a row for c.bin");
    assert!(row.contains("skip"), "{row}");
    rig.rt.block_on(seeder.shutdown(Duration::from_secs(2)));
}

#[test]
fn set_wanted_while_downloading_brings_a_file_in() {
    let rig = rig();
    // About a second for a.bin alone: time to change the selection while it downloads.
    let (seeder, meta) = seeded(&rig, Some(700_000));
    rig.script(
        "get.rhai",
        &format!(
            r#"let job = start({}, #{{ output: {}, peers: ["{}"], trackers: [], only: "a.bin" }});
let t = torrent("set");
if t.progress >= 1.0 {{ throw "already done"; }}
t.set_wanted("b.bin", true);
t.set_priority(2, "high");
t.sequential = true;
print(`sequential ${{t.sequential}}`);
t.sequential_from = 1;
try {{ t.sequential_from = 100000; }} catch (e) {{ print(`refused: ${{e}}`); }}
print(`from ${{t.sequential_from}}`);
if !job.wait(60) {{ throw "not done in 60 s"; }}
for f in t.files {{ print(`file ${{f.index}} ${{f.wanted}} ${{f.priority}} ${{f.progress}}`); }}
"#,
            rhai_str(&rig.path("set.torrent")),
            rhai_str(&rig.path("dl")),
            seeder.listen_addr()
        ),
    );
    let lines = rig.lines.lock().clone();
    assert!(lines.contains(&"sequential true".to_string()), "{lines:#?}");
    assert!(lines.contains(&"from 1".to_string()), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("refused: ") && l.contains("no piece 100000 to start from")),
        "{lines:#?}"
    );
    for want in [
        "file 0 true normal 1.0",
        "file 1 true normal 1.0",
        "file 2 true high 1.0",
    ] {
        assert!(lines.contains(&want.to_string()), "{want}: {lines:#?}");
    }
    assert!(
        lines.iter().any(|l| l.starts_with("file 3 false skip")),
        "{lines:#?}"
    );
    let origin = rig.path("origin/set");
    for f in ["a.bin", "b.bin", "sub/c.bin"] {
        assert_eq!(
            std::fs::read(rig.path("dl/set").join(f)).unwrap(),
            std::fs::read(origin.join(f)).unwrap(),
            "{f}"
        );
    }
    let cfg = Config::load(&rig.path("torrents.toml")).unwrap();
    let e = cfg.find(&meta.info_hash).unwrap();
    assert_eq!(
        (e.files.skip.as_slice(), e.files.high.as_slice()),
        (&[3][..], &[2][..])
    );
    assert!(e.files.sequential);
    assert_eq!(e.files.sequential_from, 1);
    // A restart (the managed torrents added to a new session from torrents.toml) keeps them.
    let fresh = rig.rt.block_on(session_with(SessionConfig::default()));
    let bus = btorrent::events::EventBus::default();
    rig.rt
        .block_on(btorrent::services::resume_managed(&fresh, &cfg, &bus));
    let again = fresh.get(&meta.info_hash).expect("resumed");
    let prios: Vec<&str> = again.files().iter().map(|f| f.priority.as_str()).collect();
    assert_eq!(prios, ["normal", "normal", "high", "skip"]);
    assert!(again.stats().sequential);
    assert_eq!(again.stats().sequential_from, 1);
    rig.rt.block_on(fresh.shutdown(Duration::from_secs(2)));
    // Wanting every file: the tree is whole.
    rig.script(
        "all.rhai",
        "let t = torrent(\"set\");\nt.set_wanted(\"*\", true);\n",
    );
    let h = rig
        .host
        .context()
        .peer
        .current()
        .unwrap()
        .get(&meta.info_hash)
        .unwrap();
    rig.rt.block_on(wait_complete(&h, 30));
    assert_same_tree(&origin, &rig.path("dl/set"));
    let e = rig.script_fails("bad.rhai", "torrent(\"set\").set_priority(9, \"high\");");
    assert!(
        e.contains("set_priority: set has no file 9 (it has 4, from 0)"),
        "{e}"
    );
    let e = rig.script_fails("bad2.rhai", "torrent(\"set\").set_priority(0, \"urgent\");");
    assert!(e.contains("\"urgent\" is not a priority"), "{e}");
    rig.rt.block_on(seeder.shutdown(Duration::from_secs(2)));
}

/// While a torrent downloads, its figures say what is left and, at the rate now, how long that
/// takes (`left`, `eta`), and b-show says it beside the progress; once complete there is no `eta`.
#[test]
fn a_download_says_what_is_left_and_how_long_it_takes() {
    let rig = rig();
    // b.bin alone (300 KB) at 30 KB/s, its own download limit: about ten seconds.
    let (seeder, _meta) = seeded(&rig, None);
    rig.script(
        "eta.rhai",
        &format!(
            r#"start({}, #{{ output: {}, peers: ["{}"], trackers: [], only: "b.bin", down_limit: 30000 }});
let t = torrent("set");
for i in 0..400 {{
    let s = t.stats;
    if s.eta != () && s.down_rate > 0 {{
        let expected = s.left / s.down_rate;
        print(`eta ${{s.eta == expected}} ${{s.left > 0}} ${{s.left <= s.wanted}}`);
        break;
    }}
    sleep(50);
}}
"#,
            rhai_str(&rig.path("set.torrent")),
            rhai_str(&rig.path("dl")),
            seeder.listen_addr()
        ),
    );
    let lines = rig.lines.lock().clone();
    assert!(
        lines.contains(&"eta true true true".to_string()),
        "{lines:#?}"
    );
    let _ = rig.host.run_command("b-show", &[]).unwrap();
    let lines = rig.lines.lock().clone();
    let row = lines
        .iter()
        .find(|l| l.contains("│ set ") && l.contains("downloading"));
    assert!(
        row.is_some_and(|r| r.contains("% , ").then_some(()).is_none() && r.contains(" left")),
        "{lines:#?}"
    );
    rig.script(
        "done.rhai",
        "let t = torrent(\"set\");\nt.download_limit = 0;\nif !t.wait(60) { throw \"not done in 60 s\"; }\nlet s = t.stats;\nprint(`done ${s.left} ${s.eta == ()}`);\n",
    );
    let lines = rig.lines.lock().clone();
    assert!(lines.contains(&"done 0 true".to_string()), "{lines:#?}");
    rig.rt.block_on(seeder.shutdown(Duration::from_secs(2)));
}
