//! Scripts that react: event handlers and timers called by the dispatcher, torrent handles and their
//! persisted `meta`, and `sleep` that Ctrl-C cuts short. Events are published on the bus as the engine
//! and the watch folder publish them.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::host::ScriptRig;
use btorrent::config::Config;
use btorrent::engine::{self, TorrentState, TorrentStats};
use btorrent::events::Event;
use btorrent::script::{Dispatcher, Host, LiveTorrents, ScriptError};
use btorrent::InfoHash;
use futures::future::BoxFuture;
use parking_lot::Mutex;

fn added(n: u8) -> Event {
    Event::Engine(engine::Event::Added {
        info_hash: InfoHash([n; 20]),
        name: format!("t{n}"),
        data_dir: PathBuf::from("/data"),
    })
}

#[test]
fn throwing_and_endless_handlers_neither_stop_nor_stall_delivery() {
    let rig = ScriptRig::new(
        "script_max_operations = 300000",
        Some(Duration::from_millis(700)),
    );
    let bus = rig.host.context().bus.clone();
    let dispatcher = Dispatcher::start(rig.host.clone());
    rig.script(
        "auto.rhai",
        r#"
on("added", |ev| {
    throw `cannot handle ${ev.name}`;
});
on("added", |ev| {
    let n = 0;
    loop { n += 1; }
});
on("added", |ev| {
    loop { sleep(20); }
});
on("added", |ev| print(`seen ${ev.name} ${ev.event} ${ev.torrent.info_hash.sub_string(0, 4)}`));
on("completed", |ev| print(`completed ${ev.name}`));
"#,
    );
    let started = Instant::now();
    for n in 1..=3 {
        bus.publish(added(n));
    }
    bus.publish(engine::Event::Completed {
        info_hash: InfoHash([9; 20]),
        name: "nine".into(),
        data_dir: PathBuf::from("/data"),
    });
    // A publish that waited on these handlers would never return; 10 s bounds a busy machine.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "publishing never waits on a script"
    );
    rig.wait_for("every event delivered", |l| {
        l.iter().any(|x| x == "completed nine")
    });
    for n in 1..=3 {
        assert_eq!(rig.count(&format!("seen t{n} added 0{n}0{n}")), 1);
    }
    // Each failure is reported with the script, the line and the reason, once per event.
    let lines = rig.lines.lock().clone();
    let thrown: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("cannot handle"))
        .collect();
    assert_eq!(thrown.len(), 3, "{lines:#?}");
    assert!(
        thrown[0].starts_with("on(\"added\") handler (registered at line 2) failed: ")
            && thrown[0].contains("auto.rhai")
            && thrown[0].contains("line 3"),
        "{}",
        thrown[0]
    );
    let endless = lines
        .iter()
        .filter(|l| l.contains("300000 operations"))
        .count();
    assert_eq!(endless, 3, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("registered at line 5")
            && l.contains("auto.rhai")
            && l.contains("300000 operations")),
        "{lines:#?}"
    );
    let slow = lines
        .iter()
        .filter(|l| l.contains("stopped after 700ms"))
        .count();
    assert_eq!(slow, 3, "{lines:#?}");
    dispatcher.stop(Duration::from_secs(5));
}

#[test]
fn timers_repeat_fire_once_and_can_be_removed() {
    let rig = ScriptRig::new("", Some(Duration::from_secs(5)));
    let bus = rig.host.context().bus.clone();
    let dispatcher = Dispatcher::start(rig.host.clone());
    rig.script(
        "timers.rhai",
        r#"
let ticks = 0;
let id = 0;
id = every(0.05, || {
    ticks += 1;
    print(`tick ${ticks}`);
    if ticks == 3 { print(`off ${off(id)}`); }
});
after(0.2, || print("later"));
after(0.6, || print("barrier"));
let h = on("error", |ev| print("never"));
off(h);
"#,
    );
    // Timers run in the order they are due: a fourth tick (due at 0.2 s) would come before the
    // barrier (due at 0.6 s), however late the machine runs them.
    rig.wait_for("three ticks, the one-shot and the barrier", |l| {
        l.iter().any(|x| x == "barrier") && l.iter().any(|x| x == "off true")
    });
    assert_eq!(rig.count("tick"), 3, "{:#?}", rig.lines.lock());
    assert_eq!(rig.count("later"), 1);
    let automation = rig.host.context().automation.clone();
    let end = Instant::now() + Duration::from_secs(20);
    while !automation.is_idle() {
        assert!(Instant::now() < end, "timers left after they all ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Events are handled in the order they are published: once the witness has seen the second
    // event, every handler of the first has run.
    rig.script("witness.rhai", r#"on("added", |ev| print("witness"));"#);
    bus.publish(engine::Event::Error {
        info_hash: InfoHash([8; 20]),
        name: "eight".into(),
        message: "x".into(),
    });
    bus.publish(added(1));
    rig.wait_for("the witness handler", |l| l.iter().any(|x| x == "witness"));
    assert_eq!(rig.count("never"), 0);
    dispatcher.stop(Duration::from_secs(5));

    for (src, want) in [
        ("on(\"finished\", |ev| 1);", "no event \"finished\""),
        ("every(0, || 1);", "at least 10 ms"),
        ("after(-1, || 1);", "not a number of seconds"),
        ("sleep(-5);", "not a number of milliseconds"),
    ] {
        let err = rig.script_fails("bad.rhai", src);
        assert!(err.contains(want), "{src}: {err}");
    }
}

#[test]
fn sleep_is_cut_short_by_ctrl_c() {
    let rig = ScriptRig::new("", Some(Duration::from_secs(60)));
    let cancel = rig.host.context().cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        cancel.store(true, Ordering::Relaxed);
    });
    let started = Instant::now();
    let err = rig.try_script("nap.rhai", "sleep(60000);\nprint(\"woke\");\n");
    t.join().unwrap();
    assert!(matches!(err, Err(ScriptError::Cancelled { .. })), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(rig.count("woke"), 0);
    rig.script("short.rhai", "sleep(10); print(\"woke\");");
    assert_eq!(rig.count("woke"), 1);
}

fn share(rig: &ScriptRig, name: &str) -> InfoHash {
    let data = rig.path(name);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.bin"), vec![5u8; 50_000]).unwrap();
    let _ = rig
        .host
        .run_command(
            "b-create",
            &[
                data.display().to_string(),
                "http://127.0.0.1:1/announce".into(),
            ],
        )
        .unwrap();
    let cfg = Config::load(&rig.path("torrents.toml")).unwrap();
    cfg.torrents
        .iter()
        .find(|t| t.name == name)
        .unwrap()
        .hash()
        .unwrap()
}

fn entry(dir: &Path, ih: &InfoHash) -> btorrent::config::ManagedTorrent {
    Config::load(&dir.join("torrents.toml"))
        .unwrap()
        .find(ih)
        .cloned()
        .unwrap()
}

#[test]
fn handles_read_the_registry_and_meta_persists() {
    let rig = ScriptRig::new("", Some(Duration::from_secs(5)));
    let ih = share(&rig, "photos");
    rig.script(
        "h.rhai",
        r#"
let t = torrent("photos");
print(`${t.name} ${t.state} ${t.size} ${t.running} ${t.progress} ${t.peers} ${t.ratio}`);
print(t.save_path);
print(t.file);
t.meta.moved = true;
t.meta.count = 2;
t.meta.tags = ["a", "b"];
t.pause();
"#,
    );
    let lines = rig.lines.lock().clone();
    assert!(
        lines.contains(&"photos seeding 50000 false  0 0.0".to_string()),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l == &rig.dir.path().display().to_string()),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.ends_with("torrents/photos.torrent")));
    let e = entry(rig.dir.path(), &ih);
    assert_eq!(e.state, "paused");
    assert_eq!(e.meta["moved"], toml::Value::Boolean(true));
    assert_eq!(e.meta["count"], toml::Value::Integer(2));
    assert_eq!(e.meta["tags"].as_array().unwrap().len(), 2);
    let text = std::fs::read_to_string(rig.path("torrents.toml")).unwrap();
    assert!(text.contains("moved = true"), "{text}");

    // A fresh run sees what the last one stored; a handle by abbreviated hash works too.
    let short = &ih.to_hex()[..8];
    rig.script(
        "h2.rhai",
        &format!(
            r#"
let t = torrent("{short}");
print(`again ${{t.meta.moved}} ${{t.meta.count + 1}} ${{t.meta.tags[1]}}`);
t.resume();
let m = t.meta; m.remove("tags"); t.meta = m;
"#
        ),
    );
    assert_eq!(rig.count("again true 3 b"), 1);
    let e = entry(rig.dir.path(), &ih);
    assert_eq!(e.state, "seeding");
    assert!(!e.meta.contains_key("tags"));

    let err = rig.script_fails("bad.rhai", "let t = torrent(\"photos\"); t.meta.f = || 1;");
    assert!(err.contains("cannot be saved"), "{err}");
    // Meta is measured by a writer that stops at 1 MiB; torrents.toml is left as it was.
    let err = rig.script_fails(
        "big.rhai",
        "let t = torrent(\"photos\");\nlet s = \"\";\ns.pad(2000000, 'x');\nt.meta.big = s;\n",
    );
    assert!(
        err.contains("line 4:") && err.contains("meta: more than 1.00 MiB of text"),
        "{err}"
    );
    assert!(!entry(rig.dir.path(), &ih).meta.contains_key("big"));
    let err = rig.script_fails("bad.rhai", "torrent(\"nothing\");");
    assert!(
        err.contains("no managed torrent named \"nothing\""),
        "{err}"
    );

    rig.script("rm.rhai", "torrent(\"photos\").remove();");
    assert!(Config::load(&rig.path("torrents.toml"))
        .unwrap()
        .torrents
        .is_empty());
    assert!(rig.path("photos/a.bin").exists(), "remove keeps the data");
}

#[test]
fn events_carry_handles_to_registered_torrents() {
    let rig = ScriptRig::new("", Some(Duration::from_secs(5)));
    let ih = share(&rig, "music");
    let bus = rig.host.context().bus.clone();
    let dispatcher = Dispatcher::start(rig.host.clone());
    rig.script(
        "seed.rhai",
        r#"
on("seeding", |ev| {
    let t = ev.torrent;
    if t.meta.announced != true {
        print(`now seeding ${t.name} (${t.size} bytes)`);
        t.meta.announced = true;
    }
});
"#,
    );
    for _ in 0..2 {
        bus.publish(engine::Event::Seeding {
            info_hash: ih,
            name: "music".into(),
            data_dir: rig.dir.path().to_path_buf(),
        });
    }
    rig.wait_for("the seeding handler", |l| {
        l.iter().any(|x| x == "now seeding music (50000 bytes)")
    });
    let end = Instant::now() + Duration::from_secs(10);
    while !entry(rig.dir.path(), &ih).meta.contains_key("announced") && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(rig.count("now seeding"), 1, "meta remembers what was done");
    dispatcher.stop(Duration::from_secs(5));
}

/// Stands in for the peer engine: torrents with figures the test sets, and the actions recorded.
#[derive(Default)]
struct FakeEngine {
    torrents: Mutex<std::collections::HashMap<InfoHash, TorrentStats>>,
    actions: Mutex<Vec<String>>,
}

impl LiveTorrents for FakeEngine {
    fn stats(&self, ih: &InfoHash) -> Option<TorrentStats> {
        self.torrents.lock().get(ih).cloned()
    }
    fn all(&self) -> Vec<(InfoHash, TorrentStats)> {
        self.torrents
            .lock()
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }
    fn pause(&self, ih: &InfoHash) -> bool {
        self.actions.lock().push("pause".into());
        match self.torrents.lock().get_mut(ih) {
            Some(s) => {
                s.state = TorrentState::Paused;
                true
            }
            None => false,
        }
    }
    fn resume(&self, _: &InfoHash) -> bool {
        unimplemented!("not used by these scripts")
    }
    fn remove(
        &self,
        _: InfoHash,
        _: btorrent::script::live::AfterRemove,
    ) -> BoxFuture<'static, anyhow::Result<bool>> {
        unimplemented!("not used by these scripts")
    }
    fn move_to(&self, _: InfoHash, _: PathBuf) -> BoxFuture<'static, anyhow::Result<bool>> {
        unimplemented!("not used by these scripts")
    }
}

#[test]
fn example_scripts_compile_and_the_ratio_one_pauses_at_its_ratio() {
    let rig = ScriptRig::new("", Some(Duration::from_secs(5)));
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/examples");
    let mut n = 0;
    for e in std::fs::read_dir(&examples).unwrap() {
        let path = e.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        rig.host
            .engine()
            .compile(&source)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    assert!(n >= 2);

    // The ratio script against a stand-in engine (its period shortened from a minute for the test).
    let fake = Arc::new(FakeEngine::default());
    let mut ctx = rig.context();
    ctx.live = fake.clone();
    let host = Arc::new(Host::new(ctx).unwrap());
    let _ = host.run_command(
        "b-create",
        &[
            {
                std::fs::write(rig.path("song.ogg"), vec![1u8; 1000]).unwrap();
                rig.path("song.ogg").display().to_string()
            },
            "http://127.0.0.1:1/announce".into(),
        ],
    );
    let ih = Config::load(&rig.path("torrents.toml")).unwrap().torrents[0]
        .hash()
        .unwrap();
    let stats = |uploaded: u64| TorrentStats {
        name: "song.ogg".into(),
        state: TorrentState::Seeding,
        pieces_have: 1,
        pieces_total: 1,
        bytes_verified: 1000,
        bytes_total: 1000,
        down_rate: 0,
        up_rate: 100,
        downloaded: 0,
        uploaded,
        peers: 1,
        seeds: 0,
        data_dir: rig.dir.path().to_path_buf(),
        pieces_withdrawn: 0,
        pieces_checked: 0,
        super_seeding: false,
        bytes_wanted: 1000,
        bytes_left: 0,
        sequential: false,
        files: Vec::new(),
        limits: Default::default(),
        ..Default::default()
    };
    fake.torrents.lock().insert(ih, stats(1500));
    let source = std::fs::read_to_string(examples.join("stop-at-ratio.rhai"))
        .unwrap()
        .replace("every(60,", "every(0.05,");
    let file = rig.path("stop-at-ratio.rhai");
    std::fs::write(&file, source).unwrap();
    let dispatcher = Dispatcher::start(host.clone());
    let _ = host.run_file(&file, &[]).unwrap();
    // 1500 of 2000 bytes: keeps seeding; the total is kept in meta.
    let end = Instant::now() + Duration::from_secs(10);
    while entry(rig.dir.path(), &ih).meta.get("uploaded") != Some(&toml::Value::Integer(1500)) {
        assert!(Instant::now() < end, "meta never recorded the upload");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(fake.actions.lock().is_empty());
    // The engine restarted (its counter began again at 600): 1500 + 600 passes 2 x 1000.
    fake.torrents.lock().insert(ih, stats(600));
    rig.wait_for("the pause", |l| {
        l.iter()
            .any(|x| x == "song.ogg: uploaded 2.05 KiB (ratio 2.0), seeding paused")
    });
    assert_eq!(*fake.actions.lock(), ["pause"]);
    let e = entry(rig.dir.path(), &ih);
    assert_eq!(e.state, "paused");
    assert_eq!(e.meta["uploaded"], toml::Value::Integer(2100));
    dispatcher.stop(Duration::from_secs(5));
}

#[test]
fn a_handler_following_a_download_that_never_ends_is_stopped_at_its_time_limit() {
    let rig = ScriptRig::new(
        "listen_port = 0\nlisten_ip = \"127.0.0.1\"\ntracker_url = \"\"",
        Some(Duration::from_millis(700)),
    );
    std::fs::write(rig.path("f.bin"), vec![4u8; 100_000]).unwrap();
    let dir = rig.path("");
    rig.script(
        "make.rhai",
        &format!(
            "create(\"{0}/f.bin\", \"\", #{{ output: \"{0}/f.torrent\" }});",
            dir.display()
        ),
    );
    // Half the data is gone and no peer has it: the download cannot end.
    std::fs::OpenOptions::new()
        .write(true)
        .open(rig.path("f.bin"))
        .unwrap()
        .set_len(50_000)
        .unwrap();
    let dispatcher = Dispatcher::start(rig.host.clone());
    rig.script(
        "follow.rhai",
        &format!(
            "on(\"added\", |ev| {{\n    seed(\"{0}/f.torrent\", \"{0}\").follow();\n}});\non(\"added\", |ev| print(`next ${{ev.name}}`));\n",
            dir.display()
        ),
    );
    let bus = rig.host.context().bus.clone();
    bus.publish(added(1));
    rig.wait_for("the next handler", |l| l.iter().any(|x| x == "next t1"));
    let lines = rig.lines.lock().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("registered at line 1") && l.contains("stopped after 700ms")),
        "{lines:#?}"
    );
    dispatcher.stop(Duration::from_secs(5));
}

#[test]
fn move_to_never_overwrites_what_is_in_the_destination() {
    let rig = ScriptRig::new(
        "listen_port = 0\nlisten_ip = \"127.0.0.1\"\ntracker_url = \"\"",
        Some(Duration::from_secs(30)),
    );
    let dir = rig.path("");
    std::fs::create_dir_all(rig.path("photos/sub")).unwrap();
    std::fs::write(rig.path("photos/a.jpg"), vec![1u8; 40_000]).unwrap();
    std::fs::write(rig.path("photos/sub/b.jpg"), vec![2u8; 1_000]).unwrap();
    rig.script(
        "make.rhai",
        &format!(
            "register(create(\"{0}/photos\", \"\", #{{ output: \"{0}/photos.torrent\" }}));",
            dir.display()
        ),
    );
    let data_before = Config::load(&rig.path("torrents.toml")).unwrap().torrents[0]
        .data
        .clone();
    // Someone else's file where the torrent's second file would go.
    std::fs::create_dir_all(rig.path("dest/photos/sub")).unwrap();
    std::fs::write(rig.path("dest/photos/sub/b.jpg"), b"not yours").unwrap();
    let untouched = |when: &str| {
        assert_eq!(
            std::fs::read(rig.path("dest/photos/sub/b.jpg")).unwrap(),
            b"not yours",
            "{when}"
        );
        assert_eq!(
            std::fs::read(rig.path("photos/a.jpg")).unwrap().len(),
            40_000
        );
        assert!(
            !rig.path("dest/photos/a.jpg").exists(),
            "{when}: nothing moved"
        );
        let cfg = Config::load(&rig.path("torrents.toml")).unwrap();
        assert_eq!(cfg.torrents[0].data, data_before, "{when}");
    };
    let move_it = format!("torrent(\"photos\").move_to(\"{}/dest\");", dir.display());
    let err = rig.script_fails("idle.rhai", &move_it);
    assert!(
        err.contains("dest/photos/sub/b.jpg") && err.contains("already exists"),
        "{err}"
    );
    untouched("not running");
    // The same while it seeds: the engine moves the files.
    let err = rig.script_fails(
        "running.rhai",
        &format!(
            "let j = seed(\"{0}/photos.torrent\", \"{0}\");\nj.wait(10);\n{move_it}",
            dir.display()
        ),
    );
    assert!(err.contains("already exists"), "{err}");
    untouched("running");
    std::fs::remove_file(rig.path("dest/photos/sub/b.jpg")).unwrap();
    rig.script("again.rhai", &move_it);
    assert_eq!(
        std::fs::read(rig.path("dest/photos/sub/b.jpg")).unwrap(),
        vec![2u8; 1_000]
    );
    assert!(
        !rig.path("photos").exists(),
        "the emptied folders are removed"
    );
}

/// `t.find_data(dir)`: the files were moved by hand; the torrent is pointed there (nothing moves) and
/// checks them, whether it runs or not. Pointed at a folder without them, a running torrent has
/// every piece withdrawn; pointed back, it takes them again.
#[test]
fn find_data_points_a_torrent_at_files_moved_by_hand() {
    let rig = ScriptRig::new(
        "listen_port = 0\nlisten_ip = \"127.0.0.1\"\ntracker_url = \"\"",
        Some(Duration::from_secs(30)),
    );
    let dir = rig.path("");
    std::fs::create_dir_all(rig.path("photos/sub")).unwrap();
    crate::support::write_random(&rig.path("photos/a.jpg"), 300_000, 31);
    crate::support::write_random(&rig.path("photos/sub/b.jpg"), 5_000, 32);
    rig.script(
        "make.rhai",
        &format!(
            "register(create(\"{0}/photos\", \"\", #{{ output: \"{0}/photos.torrent\" }}));",
            dir.display()
        ),
    );
    std::fs::create_dir_all(rig.path("elsewhere")).unwrap();
    std::fs::create_dir_all(rig.path("empty")).unwrap();
    std::fs::rename(rig.path("photos"), rig.path("elsewhere/photos")).unwrap();
    let data = || {
        Config::load(&rig.path("torrents.toml")).unwrap().torrents[0]
            .data
            .clone()
    };

    // Not running: checked in a session of its own.
    rig.script(
        "idle.rhai",
        &format!(
            "let r = torrent(\"photos\").find_data(\"{0}/elsewhere\");\n\
             print(`idle ${{r.good == r.pieces}} ${{r.missing}} ${{r.running}}`);",
            dir.display()
        ),
    );
    assert_eq!(data(), rig.path("elsewhere"));
    // Running: an empty folder withdraws every piece, the right one brings them back.
    rig.script(
        "running.rhai",
        &format!(
            "let j = seed(\"{0}/photos.torrent\", \"{0}/elsewhere\");\nj.wait(10);\n\
             let t = torrent(\"photos\");\n\
             let r = t.find_data(\"{0}/empty\");\n\
             print(`empty ${{r.good}} ${{r.bad.len() == r.pieces}} ${{r.running}}`);\n\
             let r = t.find_data(\"{0}/elsewhere\");\n\
             print(`back ${{r.good == r.pieces}} ${{r.recovered == r.pieces}} ${{r.running}}`);",
            dir.display()
        ),
    );
    let lines = rig.lines.lock().clone();
    for want in [
        "idle true 0 false",
        "empty 0 true true",
        "back true true true",
    ] {
        assert!(lines.iter().any(|l| l == want), "{want}: {lines:#?}");
    }
    assert_eq!(data(), rig.path("elsewhere"));
    assert!(rig.path("elsewhere/photos/sub/b.jpg").is_file());
    assert!(
        !rig.path("empty/photos").exists(),
        "nothing was written there"
    );
}

/// `t.rename_path(path, name)` on a torrent that runs nowhere: the folder is renamed on disk and in
/// torrents.toml, and the torrent then seeds from the new name, complete, with nothing fetched.
#[test]
fn rename_path_renames_a_torrent_that_runs_nowhere() {
    let rig = ScriptRig::new(
        "listen_port = 0\nlisten_ip = \"127.0.0.1\"\ntracker_url = \"\"",
        Some(Duration::from_secs(30)),
    );
    let dir = rig.path("");
    crate::support::write_random(&rig.path("photos/a.jpg"), 200_000, 33);
    crate::support::write_random(&rig.path("photos/sub/b.jpg"), 7_000, 34);
    rig.script(
        "make.rhai",
        &format!(
            "register(create(\"{0}/photos\", \"\", #{{ output: \"{0}/photos.torrent\" }}));",
            dir.display()
        ),
    );
    rig.script(
        "rename.rhai",
        "let p = torrent(\"photos\").rename_path(\"photos/sub\", \"beach\");\nprint(`paths ${p}`);",
    );
    let lines = rig.lines.lock().clone();
    assert!(
        lines
            .iter()
            .any(|l| l == "paths [\"photos/a.jpg\", \"photos/beach/b.jpg\"]"),
        "{lines:#?}"
    );
    assert!(rig.path("photos/beach/b.jpg").is_file() && !rig.path("photos/sub").exists());
    let e = Config::load(&rig.path("torrents.toml")).unwrap().torrents[0].clone();
    assert_eq!(e.files.renamed.len(), 1, "{e:?}");
    // Seeding it from its folder: every piece is found under the new name.
    rig.script(
        "seed.rhai",
        &format!(
            "let j = seed(\"{0}/photos.torrent\", \"{0}\");\nj.wait(10);\n\
             let s = torrent(\"photos\");\nprint(`seeding ${{s.progress}} ${{s.downloaded}}`);",
            dir.display()
        ),
    );
    let lines = rig.lines.lock().clone();
    assert!(lines.iter().any(|l| l == "seeding 1.0 0"), "{lines:#?}");
    assert!(
        !rig.path("photos/sub").exists(),
        "nothing was fetched again under the old name"
    );
    let err = rig.script_fails(
        "bad.rhai",
        "torrent(\"photos\").rename_path(\"photos/a.jpg\", \"../up.jpg\");",
    );
    assert!(err.contains("not a plain file name"), "{err}");
}

/// `t.seed_ratio`: the torrent's own ratio goal read and set from a script (a number, "unlimited",
/// or `()` for the session's), kept in torrents.toml; anything else is refused.
#[test]
fn scripts_read_and_set_a_torrents_seed_ratio_goal() {
    use btorrent::config::GoalMode;
    let rig = ScriptRig::new("", Some(Duration::from_secs(5)));
    let ih = share(&rig, "songs");
    rig.script(
        "goal.rhai",
        r#"
let t = torrent("songs");
print(`before ${t.seed_ratio}`);
t.seed_ratio = 1.5;
print(`own ${t.seed_ratio}`);
t.seed_ratio = "unlimited";
print(`then ${t.seed_ratio}`);
"#,
    );
    let lines = rig.lines.lock().clone();
    for want in ["before ", "own 1.5", "then unlimited"] {
        assert!(lines.iter().any(|l| l == want), "{want}: {lines:#?}");
    }
    let g = entry(rig.dir.path(), &ih).goals;
    assert_eq!(
        (g.seed_ratio_mode, g.seed_ratio_limit),
        (GoalMode::Unlimited, Some(1.5))
    );
    rig.script("g2.rhai", "let t = torrent(\"songs\"); t.seed_ratio = 2;");
    let g = entry(rig.dir.path(), &ih).goals;
    assert_eq!(
        (g.seed_ratio_mode, g.seed_ratio_limit),
        (GoalMode::Single, Some(2.0))
    );
    rig.script("g3.rhai", "let t = torrent(\"songs\"); t.seed_ratio = ();");
    assert_eq!(
        entry(rig.dir.path(), &ih).goals.seed_ratio_mode,
        GoalMode::Global
    );
    let err = rig.script_fails(
        "bad.rhai",
        "let t = torrent(\"songs\"); t.seed_ratio = \"often\";",
    );
    assert!(
        err.contains("a ratio goal is a number of 0 or more"),
        "{err}"
    );
    let err = rig.script_fails("neg.rhai", "let t = torrent(\"songs\"); t.seed_ratio = -1;");
    assert!(err.contains("seed_ratio"), "{err}");
    assert_eq!(
        entry(rig.dir.path(), &ih).goals.seed_ratio_mode,
        GoalMode::Global
    );
}
