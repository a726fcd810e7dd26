//! A torrent the disk stops, through the RPC of `btorrent daemon`: its error shows (`error` 3, a
//! local error, with its `errorString`), torrents.toml records `error`, and `torrent-start` (what
//! `transmission-remote -s` sends) takes it up once the disk takes writes again: it fetches the
//! rest and seeds, and the entry says so. A torrent whose data is gone from its folder at a start
//! (a disk not mounted) is such an error too, until `torrent-set-location` finds the data.

use serde_json::json;

use crate::support;
use crate::support::rpc::{managed_state, poll, torrent_get, RpcDaemon};
use crate::support::tracker::seeded_behind_a_tracker;

#[test]
fn torrent_start_takes_up_a_torrent_the_disk_stopped_once_the_disk_takes_writes() {
    let rt = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    // The data, seeded by a session of the test's own that the tracker names.
    let src = dir.path().join("src");
    let (seeder, meta) =
        seeded_behind_a_tracker(&rt, Default::default(), &src, "film.bin", 600_000, 91);
    let hash = meta.info_hash.to_hex();
    // Folders where the file goes, under its partial name and its own: every write is refused.
    let home = dir.path().join("media");
    let in_the_way = ["film.bin.part", "film.bin"].map(|n| home.join(n));
    for folder in &in_the_way {
        std::fs::create_dir_all(folder.join("in-the-way")).unwrap();
    }
    let id = c.add_metainfo(&meta, &home);

    let fields = ["status", "error", "errorString"];
    let failed = poll("the torrent to fail", 60, || {
        let t = torrent_get(&mut c, json!([id]), &fields).remove(0);
        (t["error"] == 3).then_some(t)
    });
    let says = failed["errorString"].as_str().unwrap();
    assert!(says.starts_with("cannot write piece"), "{failed}");
    poll("torrents.toml to record the error", 30, || {
        (managed_state(dir.path(), &hash).as_deref() == Some("error")).then_some(())
    });

    // The user sees to the disk and starts it again.
    for folder in &in_the_way {
        std::fs::remove_dir_all(folder).unwrap();
    }
    c.ok("torrent-start", json!({"ids": [id]}));
    let t = torrent_get(&mut c, json!([id]), &fields).remove(0);
    assert_eq!(
        (&t["error"], &t["errorString"]),
        (&json!(0), &json!("")),
        "{t}"
    );
    poll("the torrent to seed", 60, || {
        let t = torrent_get(&mut c, json!([id]), &fields).remove(0);
        (t["status"] == 6).then_some(())
    });
    assert_eq!(
        std::fs::read(home.join("film.bin")).unwrap(),
        std::fs::read(src.join("film.bin")).unwrap()
    );
    poll("torrents.toml to record it seeding", 30, || {
        (managed_state(dir.path(), &hash).as_deref() == Some("seeding")).then_some(())
    });
    drop(seeder);
}

/// Data gone from its folder while the daemon was down (a disk not mounted): after the restart the
/// torrent says why, in error, and nothing is made in the empty place; a verify then finds
/// nothing and it downloads again, as asked; `torrent-set-location` without `move`
/// (`transmission-remote --find`) points it at where the data is now, checks it there and it
/// seeds, from there across the next restart too.
#[test]
fn data_gone_while_down_is_an_error_until_set_location_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (meta, _port) = c.add_seeding(dir.path(), 92);
    let hash = meta.info_hash.to_hex();
    let seeded = dir.path().join("seed");
    // Its resume file says its pieces are there (saved after its check; the restart kills).
    let resume = dir.path().join(format!(".btorrent/resume/{hash}.resume"));
    poll("the resume file to be saved", 30, || {
        let text = std::fs::read_to_string(&resume).ok()?;
        text.contains("\"data_dir\"").then_some(())
    });
    // Down; the disk holding the data is not mounted when it starts again.
    let usb = dir.path().join("usb");
    std::fs::create_dir(&usb).unwrap();
    std::fs::rename(&seeded, usb.join("seed")).unwrap();
    let d = d.restart();
    let mut c = d.client();
    let fields = [
        "status",
        "error",
        "errorString",
        "downloadDir",
        "percentDone",
    ];
    let failed = poll("the torrent to fail", 60, || {
        let t = torrent_get(&mut c, json!(null), &fields).remove(0);
        (t["error"] == 3).then_some(t)
    });
    let says = failed["errorString"].as_str().unwrap();
    let top = seeded.join("s.bin");
    assert!(
        says.starts_with(&format!("its data is gone from {}", top.display())),
        "{failed}"
    );
    assert!(!seeded.exists(), "nothing is made in the empty place");
    poll("torrents.toml to record the error", 30, || {
        (managed_state(dir.path(), &hash).as_deref() == Some("error")).then_some(())
    });

    // A verify with the data still gone finds nothing: it downloads it again (no peer has it
    // here), as asked, and the entry no longer says `error`.
    c.ok("torrent-verify", json!({"ids": [hash]}));
    poll("the torrent to download again", 60, || {
        let t = torrent_get(&mut c, json!(null), &fields).remove(0);
        (t["status"] == 4 && t["error"] == 0).then_some(())
    });
    poll("torrents.toml to record it downloading", 30, || {
        (managed_state(dir.path(), &hash).as_deref() == Some("downloading")).then_some(())
    });

    // Found where it is now: checked there, seeding.
    let at = usb.join("seed");
    c.ok(
        "torrent-set-location",
        json!({"ids": [hash], "location": at, "move": false}),
    );
    poll("the torrent to seed from the new place", 60, || {
        let t = torrent_get(&mut c, json!(null), &fields).remove(0);
        (t["status"] == 6 && t["error"] == 0).then_some(())
    });
    poll("torrents.toml to record it seeding", 30, || {
        (managed_state(dir.path(), &hash).as_deref() == Some("seeding")).then_some(())
    });
    let d = d.restart();
    let mut c = d.client();
    poll("the torrent to seed after the restart", 60, || {
        let t = torrent_get(&mut c, json!(null), &fields).remove(0);
        (t["status"] == 6 && t["downloadDir"] == json!(at)).then_some(())
    });
}

/// A torrent removed with its data kept, the data then deleted by hand and the torrent added
/// again: a download from scratch, not the error of data gone (its resume data, kept, no longer
/// says where its data was).
#[test]
fn a_torrent_added_again_after_its_data_went_is_a_new_download() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (meta, _port) = c.add_seeding(dir.path(), 93);
    let hash = meta.info_hash.to_hex();
    c.ok("torrent-remove", json!({"ids": [hash]}));
    poll("the torrent to go", 30, || {
        torrent_get(&mut c, json!(null), &["id"])
            .is_empty()
            .then_some(())
    });
    let seeded = dir.path().join("seed");
    std::fs::remove_dir_all(&seeded).unwrap();
    let id = c.add_metainfo(&meta, &seeded);
    // With no peer to fetch from it waits, downloading (status 4), or it fails (status 0, error 3).
    let t = poll("the torrent to download or fail", 30, || {
        let t = torrent_get(&mut c, json!([id]), &["status", "error", "errorString"]).remove(0);
        (t["status"] == 4 || t["error"] != 0).then_some(t)
    });
    assert_eq!((&t["status"], &t["error"]), (&json!(4), &json!(0)), "{t}");
}
