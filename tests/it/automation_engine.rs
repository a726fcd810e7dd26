//! Scripts reacting to the real peer engine in the same process: the `move-completed` example moves a
//! finished download with `move_to` while seeding goes on, and a second leecher then downloads from the
//! new place; torrent handles read live figures and pause, resume and remove running torrents, and
//! `paused`/`resumed` handlers hear each once.

use std::path::Path;
use std::time::Duration;

use crate::support::host::ScriptRig;
use btorrent::config::Config;
use btorrent::script::Dispatcher;

fn rhai_str(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

#[test]
fn completed_download_is_moved_and_seeded_from_the_new_place() {
    let rig = ScriptRig::new("listen_ip = \"127.0.0.1\"\nlisten_port = 0", None);
    // The original seeder: another session, in the same test process.
    let src = rig.path("origin/album");
    crate::support::write_random(&src.join("01.flac"), 700_000, 1);
    crate::support::write_random(&src.join("cover/front.jpg"), 90_000, 2);
    let meta = crate::support::torrent(&src, 32 * 1024, vec!["http://127.0.0.1:1/announce".into()]);
    std::fs::write(rig.path("album.torrent"), meta.as_bytes()).unwrap();
    let seeder = rig.rt.block_on(crate::support::session());
    let seeding = rig
        .rt
        .block_on(seeder.add(
            meta.clone(),
            crate::support::opts(&rig.path("origin"), vec![]),
        ))
        .unwrap();
    rig.rt.block_on(crate::support::wait_complete(&seeding, 20));

    // The script under test: the shipped example, pointed at a folder of ours.
    let dispatcher = Dispatcher::start(rig.host.clone());
    let dest = rig.path("complete");
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/examples/move-completed.rhai"),
    )
    .unwrap();
    let wanted = "let dest = \"complete\";";
    assert!(example.contains(wanted));
    rig.script(
        "move-completed.rhai",
        &example.replace(wanted, &format!("let dest = {};", rhai_str(&dest))),
    );
    // A handler hears the move: where the data is now, and how it got there.
    rig.script(
        "on-moved.rhai",
        "on(\"moved\", |ev| print(`told moved ${ev.name} to ${ev.path}: ${ev.message}`));",
    );
    rig.script(
        "get.rhai",
        &format!(
            "let job = start({}, #{{ output: {}, peers: [\"{}\"], trackers: [] }});\nprint(`started ${{job.name}}`);\n",
            rhai_str(&rig.path("album.torrent")),
            rhai_str(&rig.path("downloads")),
            seeder.listen_addr()
        ),
    );
    rig.wait_for_secs("the handler's move", 60, |l| {
        l.iter()
            .any(|x| x.starts_with("album: moved to ") && x.ends_with("still seeding"))
    });
    assert!(rig.lines.lock().iter().any(|l| l == "started album"));
    let said = format!(
        "told moved album to {}: its files moved there",
        dest.display()
    );
    rig.wait_for_secs("the moved event's handler", 10, |l| l.contains(&said));
    crate::support::assert_same_tree(&src, &dest.join("album"));
    assert!(!rig.path("downloads/album/01.flac").exists());
    let cfg = Config::load(&rig.path("torrents.toml")).unwrap();
    let entry = cfg.find(&meta.info_hash).unwrap();
    assert_eq!(cfg.resolve(&entry.data), dest);
    assert_eq!(
        entry.meta["moved_to"],
        toml::Value::String(dest.display().to_string())
    );

    // The first seeder leaves; a new leecher gets everything from the moved copy.
    rig.rt.block_on(seeder.shutdown(Duration::from_secs(5)));
    let ours = rig
        .host
        .context()
        .peer
        .current()
        .expect("the script started the peer");
    let leecher = rig.rt.block_on(crate::support::session());
    let fresh = rig.path("second");
    let got = rig
        .rt
        .block_on(leecher.add(
            meta.clone(),
            crate::support::opts(&fresh, vec![ours.listen_addr()]),
        ))
        .unwrap();
    rig.rt.block_on(crate::support::wait_complete(&got, 60));
    crate::support::assert_same_tree(&src, &fresh.join("album"));

    // Handles see the running torrent live, and act on it; handlers hear the pause and the resume.
    rig.script(
        "on-pause.rhai",
        "on(\"paused\", |ev| print(`heard ${ev.event} ${ev.name}`));\non(\"resumed\", |ev| print(`heard ${ev.event} ${ev.torrent.state}`));",
    );
    rig.script(
        "look.rhai",
        "let t = torrent(\"album\");\nprint(`look ${t.state} ${t.running} ${t.progress} ${t.size}`);\nt.pause();\nprint(`now ${t.state}`);\nt.resume();\nprint(`then ${t.state}`);\n",
    );
    let lines = rig.lines.lock().clone();
    assert!(
        lines.contains(&"look seeding true 1.0 790000".to_string()),
        "{lines:#?}"
    );
    assert!(lines.contains(&"now paused".to_string()), "{lines:#?}");
    assert!(lines.contains(&"then seeding".to_string()), "{lines:#?}");
    rig.wait_for_secs("the pause's and the resume's handlers", 10, |l| {
        l.iter().filter(|x| x.starts_with("heard ")).count() >= 2
    });
    let heard: Vec<String> = rig
        .lines
        .lock()
        .iter()
        .filter(|x| x.starts_with("heard "))
        .cloned()
        .collect();
    assert_eq!(heard, ["heard paused album", "heard resumed seeding"]);
    rig.script(
        "on-removed.rhai",
        "on(\"removed\", |ev| print(`removed ${ev.name} ${ev.info_hash.sub_string(0, 6)}`));",
    );
    rig.script("rm.rhai", "torrent(\"album\").remove();");
    // The event names the torrent it is about.
    let short = &meta.info_hash.to_hex()[..6];
    rig.wait_for_secs("the removed event", 10, |l| {
        l.iter().any(|x| *x == format!("removed album {short}"))
    });
    assert!(ours.get(&meta.info_hash).is_none());
    assert!(Config::load(&rig.path("torrents.toml"))
        .unwrap()
        .torrents
        .is_empty());
    assert!(dest.join("album/01.flac").exists(), "remove keeps the data");

    dispatcher.stop(Duration::from_secs(5));
    rig.rt.block_on(leecher.shutdown(Duration::from_secs(5)));
    rig.rt
        .block_on(rig.host.context().peer.shutdown(Duration::from_secs(5)));
}

/// `b-start --up-limit --priority` and the handles' `upload_limit`/`download_limit`/
/// `bandwidth_priority`: the running torrent's own limits change at once, and torrents.toml keeps
/// them.
#[test]
fn scripts_set_a_running_torrents_own_speed_limits() {
    use btorrent::engine::TorrentLimits;
    let rig = ScriptRig::new("listen_ip = \"127.0.0.1\"\nlisten_port = 0", None);
    let src = rig.path("data/album");
    crate::support::write_random(&src.join("01.flac"), 200_000, 3);
    let meta = crate::support::torrent(&src, 32 * 1024, vec![]);
    std::fs::write(rig.path("album.torrent"), meta.as_bytes()).unwrap();
    // Already complete: b-start registers it, applies the limit and returns.
    let args: Vec<String> = [
        rig.path("album.torrent").display().to_string(),
        "-o".into(),
        rig.path("data").display().to_string(),
        "--up-limit".into(),
        "300K".into(),
        "--priority".into(),
        "low".into(),
    ]
    .into();
    let _ = rig.host.run_command("b-start", &args).unwrap();
    let live = || {
        rig.host
            .context()
            .peer
            .current()
            .and_then(|s| s.get(&meta.info_hash))
            .expect("running here")
            .limits()
    };
    let stored = || {
        Config::load(&rig.path("torrents.toml"))
            .unwrap()
            .find(&meta.info_hash)
            .unwrap()
            .limits
            .engine()
    };
    let want = TorrentLimits {
        upload: Some(300 * 1024),
        priority: btorrent::engine::Priority::Low,
        ..Default::default()
    };
    assert_eq!((live(), stored()), (want, want));

    rig.script(
        "limits.rhai",
        "let t = torrent(\"album\");\nprint(`up ${t.upload_limit} down ${t.download_limit} ${t.honors_session_limits}`);\nt.download_limit = 50000;\nt.upload_limit = ();\nt.honors_session_limits = false;\nt.max_peers = 9;\nprint(`priority ${t.bandwidth_priority}`);\nt.bandwidth_priority = \"high\";\nprint(`now up ${t.upload_limit} down ${t.download_limit} peers ${t.max_peers} ${t.bandwidth_priority}`);\n",
    );
    let lines = rig.lines.lock().clone();
    assert!(
        lines.contains(&"up 307200 down  true".to_string()),
        "{lines:#?}"
    );
    assert!(lines.contains(&"priority low".to_string()), "{lines:#?}");
    assert!(
        lines.contains(&"now up  down 50000 peers 9 high".to_string()),
        "{lines:#?}"
    );
    let want = TorrentLimits {
        upload: None,
        download: Some(50_000),
        honors_session_limits: false,
        max_peers: Some(9),
        priority: btorrent::engine::Priority::High,
    };
    assert_eq!((live(), stored()), (want, want));
    // b-show <name> says what it has of its own.
    let _ = rig
        .host
        .run_command("b-show", &["album".to_string()])
        .unwrap();
    let lines = rig.lines.lock().clone();
    let own = lines
        .iter()
        .find(|l| l.starts_with("limits: "))
        .unwrap_or_else(|| panic!("no limits line: {lines:#?}"));
    assert!(
        own.starts_with("limits: down ")
            && own.ends_with(
                "/s, the session's limits do not apply, at most 9 peers, high bandwidth priority"
            ),
        "{own}"
    );
    let err = rig.script_fails(
        "bad.rhai",
        "let t = torrent(\"album\"); t.upload_limit = \"fast\";",
    );
    assert!(err.contains("upload_limit"), "{err}");
    let err = rig.script_fails(
        "neg.rhai",
        "let t = torrent(\"album\"); t.upload_limit = -5;",
    );
    assert!(err.contains("negative"), "{err}");
    for peers in ["0", "65536", "9223372036854775807"] {
        let script = format!("let t = torrent(\"album\"); t.max_peers = {peers};");
        let err = rig.script_fails("none.rhai", &script);
        assert!(
            err.contains("max_peers") && err.contains("1 to 65535"),
            "{err}"
        );
    }
    let err = rig.script_fails(
        "prio.rhai",
        "let t = torrent(\"album\"); t.bandwidth_priority = \"urgent\";",
    );
    assert!(
        err.contains("bandwidth_priority") && err.contains("\"high\", \"normal\" or \"low\""),
        "{err}"
    );
    assert_eq!(live(), want);

    // b-limit: the same from the shell; 0 peers is the session's again.
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let _ = rig
        .host
        .run_command(
            "b-limit",
            &args(&["album", "--up", "100K", "--peers", "0", "--priority", "low"]),
        )
        .unwrap();
    let now = TorrentLimits {
        upload: Some(100 * 1024),
        max_peers: None,
        priority: btorrent::engine::Priority::Low,
        ..want
    };
    assert_eq!((live(), stored()), (now, now));
    let lines = rig.lines.lock().clone();
    assert!(
        lines.contains(
            &"album: up 100.00 KiB/s, down 48.83 KiB/s, the session's limits do not apply, low bandwidth priority"
                .to_string()
        ),
        "{lines:#?}"
    );
    let err = rig
        .host
        .run_command("b-limit", &args(&["album", "--priority", "urgent"]))
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("\"high\", \"normal\" or \"low\""),
        "{err:#}"
    );
    assert_eq!(live(), now);
    rig.rt
        .block_on(rig.host.context().peer.shutdown(Duration::from_secs(5)));
}
