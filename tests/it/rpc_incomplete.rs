//! The incomplete folder through the RPC of `btorrent daemon` (Transmission's `incomplete-dir`):
//! switched on with `session-set`, a download is kept there until complete and then moved to its
//! own folder, which `downloadDir` names all along; the program for completed downloads sees it
//! there. A torrent whose data is already in its own folder stays there; an entry left complete in
//! the incomplete folder (a hand edit, a crash before the move) is moved by the running daemon.

use std::path::Path;

use serde_json::json;

use super::rpc_hooks::{recorder, runs};
use crate::support::rpc::{managed_state, poll, torrent_get, RpcDaemon};
use crate::support::tracker::seeded_behind_a_tracker;
use crate::support::{self, write_random};

/// torrents.toml's entry for `hash`: (data, complete_dir), as written.
fn placed(dir: &Path, hash: &str) -> (String, Option<String>) {
    let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
    let e = cfg
        .find(&btorrent::InfoHash::from_hex(hash).unwrap())
        .unwrap()
        .clone();
    (
        cfg.resolve(&e.data).display().to_string(),
        e.complete_dir
            .map(|d| cfg.resolve(&d).display().to_string()),
    )
}

#[test]
fn a_download_waits_in_the_incomplete_folder_and_moves_home_when_complete() {
    let rt = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let partial = dir.path().join("partial");
    let home = dir.path().join("media");
    let done = recorder(dir.path(), "done", 0);
    c.ok(
        "session-set",
        json!({"incomplete-dir-enabled": true, "incomplete-dir": partial,
               "script-torrent-done-filename": done}),
    );
    let s = c.ok(
        "session-get",
        json!({"fields": ["incomplete-dir", "incomplete-dir-enabled"]}),
    );
    assert_eq!(
        s,
        json!({"incomplete-dir": partial, "incomplete-dir-enabled": true})
    );
    for (bad, says) in [
        (
            json!({"incomplete-dir": "relative/path"}),
            "not an absolute path",
        ),
        (json!({"incomplete-dir-enabled": "yes"}), "true or false"),
    ] {
        let v = c.call("session-set", bad.clone());
        assert!(v["result"].as_str().unwrap().contains(says), "{bad}: {v}");
    }

    // The data, seeded at 200 kB/s by a session of the test's own that the tracker names: the
    // download takes a couple of seconds.
    let src = dir.path().join("src");
    let cfg = btorrent::engine::SessionConfig {
        upload_limit: Some(200_000),
        ..Default::default()
    };
    let (seeder, meta) = seeded_behind_a_tracker(&rt, cfg, &src, "film.bin", 500_000, 81);
    let hash = meta.info_hash.to_hex();
    let id = c.add_metainfo(&meta, &home);

    // While it downloads: its data in the incomplete folder, its own folder named by the RPC.
    let (data, pending) = placed(dir.path(), &hash);
    assert_eq!(
        (data.as_str(), pending.as_deref()),
        (
            partial.display().to_string().as_str(),
            Some(home.display().to_string().as_str())
        )
    );
    let t = torrent_get(&mut c, json!([id]), &["downloadDir"]);
    assert_eq!(t[0]["downloadDir"], home.display().to_string());
    poll(
        "the download to write into the incomplete folder",
        30,
        || partial.join("film.bin.part").exists().then_some(()),
    );
    assert!(!home.join("film.bin").exists() && !home.join("film.bin.part").exists());

    // Complete: moved home, seeding from there; the entry says so, and the program saw it there.
    poll("the torrent to seed", 60, || {
        let t = torrent_get(&mut c, json!([id]), &["status"]);
        (t[0]["status"] == 6).then_some(())
    });
    assert_eq!(
        std::fs::read(home.join("film.bin")).unwrap(),
        std::fs::read(src.join("film.bin")).unwrap()
    );
    assert!(!partial.join("film.bin").exists());
    let (data, pending) = placed(dir.path(), &hash);
    assert_eq!(
        (data, pending),
        (home.display().to_string(), None),
        "the entry records the move"
    );
    let t = torrent_get(&mut c, json!([id]), &["downloadDir", "percentDone"]);
    assert_eq!(t[0]["downloadDir"], home.display().to_string());
    let run = poll("the done program to run", 30, || {
        runs(dir.path(), "done").pop()
    });
    assert_eq!(run["TR_TORRENT_DIR"], home.display().to_string());

    // Data already in its own folder: checked and seeded there, not sent through the incomplete
    // folder.
    let have = dir.path().join("have");
    write_random(&have.join("kept.bin"), 40_000, 82);
    let kept = support::torrent(&have.join("kept.bin"), 16 * 1024, vec![]);
    let kept_id = c.add_metainfo(&kept, &have);
    poll("the kept torrent to seed", 30, || {
        let t = torrent_get(&mut c, json!([kept_id]), &["status"]);
        (t[0]["status"] == 6).then_some(())
    });
    assert_eq!(
        placed(dir.path(), &kept.info_hash.to_hex()),
        (have.display().to_string(), None)
    );
    drop(seeder);
}

#[test]
fn a_complete_torrent_left_in_the_incomplete_folder_is_moved_home() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let partial = dir.path().join("partial");
    let home = dir.path().join("media");
    write_random(&partial.join("show.bin"), 60_000, 83);
    let meta = support::torrent(&partial.join("show.bin"), 16 * 1024, vec![]);
    let hash = meta.info_hash.to_hex();
    let id = c.add_metainfo(&meta, &partial);
    poll("the torrent to seed", 30, || {
        let t = torrent_get(&mut c, json!([id]), &["status"]);
        (t[0]["status"] == 6).then_some(())
    });
    // A hand edit says its data belongs in `media`, as a daemon that stopped before the move
    // leaves it: the running daemon moves it. (Made once the daemon has recorded the torrent
    // seeding, and written whole, as an editor saves.)
    poll("torrents.toml to record it seeding", 30, || {
        (managed_state(dir.path(), &hash).as_deref() == Some("seeding")).then_some(())
    });
    let path = dir.path().join("torrents.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let marker = format!("info_hash = \"{hash}\"\n");
    let edited = text.replace(
        &marker,
        &format!("{marker}complete_dir = \"{}\"\n", home.display()),
    );
    assert_ne!(text, edited);
    let tmp = dir.path().join("torrents.toml.edit");
    std::fs::write(&tmp, edited).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    poll("the data to move home", 30, || {
        (placed(dir.path(), &hash) == (home.display().to_string(), None)).then_some(())
    });
    assert!(home.join("show.bin").exists() && !partial.join("show.bin").exists());
    poll("the torrent to seed from home", 30, || {
        let t = torrent_get(&mut c, json!([id]), &["status", "downloadDir"]);
        (t[0]["status"] == 6 && t[0]["downloadDir"] == home.display().to_string()).then_some(())
    });

    // With no daemon to move it, `b-show` says where a waiting download's data goes.
    drop(d);
    let text = std::fs::read_to_string(&path).unwrap();
    let later = dir.path().join("later");
    let edited = text.replace(
        &marker,
        &format!("{marker}complete_dir = \"{}\"\n", later.display()),
    );
    std::fs::write(&path, edited).unwrap();
    let out = support::cli::ok(dir.path(), &["show"]);
    let row = out
        .lines()
        .find(|l| l.contains("show.bin"))
        .unwrap_or_default();
    assert!(
        row.contains(&format!("{} → {}", home.display(), later.display())),
        "{out}"
    );
}
