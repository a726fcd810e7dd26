//! Seeding goals through the Transmission RPC of `btorrent daemon`: a torrent's own ratio goal stops
//! it once a btorrent leecher has downloaded it (and again when it is resumed without raising the
//! goal), the session's ratio goal stops torrents in `global` mode but not those in `unlimited`
//! mode, and bad values are refused with one line, changing nothing.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::rpc::{managed_state, poll, torrent_get, Client, RpcDaemon};
use crate::support::{self, write_random};

const GOAL_FIELDS: [&str; 7] = [
    "status",
    "isFinished",
    "seedRatioLimit",
    "seedRatioMode",
    "seedIdleLimit",
    "seedIdleMode",
    "uploadedEver",
];

/// Adds a seed of `size` random bytes (data already in place) and waits until it seeds; its id and
/// metainfo.
fn add_seed(c: &mut Client, dir: &Path, name: &str, size: usize) -> (Value, btorrent::Metainfo) {
    let seed = dir.join(format!("{name}-data"));
    write_random(&seed.join(name), size, size as u64);
    let meta = support::torrent(&seed.join(name), 16 * 1024, vec![]);
    let file = dir.join(format!("{name}.torrent"));
    std::fs::write(&file, meta.as_bytes()).unwrap();
    let id = c.ok(
        "torrent-add",
        json!({"filename": file, "download-dir": seed}),
    )["torrent-added"]["id"]
        .clone();
    poll("the seed's data check", 30, || {
        let t = torrent_get(c, json!([id]), &["status"]).pop()?;
        (t["status"] == 6).then_some(())
    });
    (id, meta)
}

fn goals(c: &mut Client, id: &Value) -> Value {
    torrent_get(c, json!([id]), &GOAL_FIELDS).pop().unwrap()
}

fn refused(c: &mut Client, method: &str, args: Value, says: &str) {
    let v = c.call(method, args);
    let r = v["result"].as_str().unwrap();
    assert!(r.contains(says), "{v}");
    assert!(!r.contains('\n'), "one line: {r}");
}

#[test]
fn a_torrent_ratio_goal_stops_it_once_a_leecher_has_its_data() {
    let rt = crate::support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (id, meta) = add_seed(&mut c, dir.path(), "goal.bin", 200_000);
    let t = goals(&mut c, &id);
    assert_eq!(
        (&t["seedRatioMode"], &t["seedIdleMode"], &t["isFinished"]),
        (&json!(0), &json!(0), &json!(false))
    );

    // What Sonarr and Radarr send after adding a torrent.
    c.ok(
        "torrent-set",
        json!({"ids": [id], "seedRatioMode": 1, "seedRatioLimit": 0.5,
               "seedIdleMode": 1, "seedIdleLimit": 600}),
    );
    let t = goals(&mut c, &id);
    assert_eq!(t["seedRatioMode"], 1);
    assert_eq!(t["seedRatioLimit"], 0.5);
    assert_eq!(t["seedIdleMode"], 1);
    assert_eq!(t["seedIdleLimit"], 600);
    assert_eq!(t["status"], 6, "nothing uploaded yet: {t}");
    let text = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert!(text.contains("seed_ratio_mode = \"single\""), "{text}");
    assert!(text.contains("seed_ratio_limit = 0.5"), "{text}");
    assert!(text.contains("seed_idle_minutes = 600"), "{text}");

    // A btorrent leecher downloads from it: once uploaded/size reaches 0.5, the seed stops.
    let port = c.ok("session-get", json!({"fields": ["peer-port"]}))["peer-port"]
        .as_u64()
        .unwrap() as u16;
    let out = tempfile::tempdir().unwrap();
    let (leecher, _lh) = rt.block_on(support::leecher(
        &meta,
        out.path(),
        vec![([127, 0, 0, 1], port).into()],
    ));
    let t = poll("the seed stopped at its ratio goal", 60, || {
        let t = goals(&mut c, &id);
        (t["status"] == 0).then_some(t)
    });
    assert_eq!(t["isFinished"], true, "{t}");
    assert!(t["uploadedEver"].as_u64().unwrap() >= 100_000, "{t}");
    let hash = meta.info_hash.to_hex();
    assert_eq!(managed_state(dir.path(), &hash).as_deref(), Some("paused"));
    // The event is logged once the stop is recorded: moments after the RPC shows it.
    poll("the seed_goal_reached event in the log", 30, || {
        d.proc
            .log_text()
            .contains("seed_goal_reached goal.bin")
            .then_some(())
    });

    // Resumed with its goal unchanged, it stops again.
    c.ok("torrent-start", json!({"ids": [id]}));
    poll("a second stop at the unchanged goal", 30, || {
        (d.proc
            .log_text()
            .matches("seed_goal_reached goal.bin")
            .count()
            >= 2)
            .then_some(())
    });
    let t = poll("the seed stopped again", 30, || {
        let t = goals(&mut c, &id);
        (t["status"] == 0 && t["isFinished"] == true).then_some(t)
    });
    assert_eq!(managed_state(dir.path(), &hash).as_deref(), Some("paused"));

    // With its goal raised it seeds on, and is no longer finished.
    c.ok("torrent-set", json!({"ids": [id], "seedRatioLimit": 100}));
    c.ok("torrent-start", json!({"ids": [id]}));
    let t2 = poll("the seed resumed", 30, || {
        let t = goals(&mut c, &id);
        (t["status"] == 6).then_some(t)
    });
    assert_eq!(t2["isFinished"], false, "before: {t}; now: {t2}");
    assert_eq!(managed_state(dir.path(), &hash).as_deref(), Some("seeding"));
    rt.block_on(leecher.shutdown(std::time::Duration::from_secs(5)));
}

#[test]
fn the_session_ratio_goal_stops_global_torrents_but_not_unlimited_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (a, _) = add_seed(&mut c, dir.path(), "a.bin", 50_000);
    let (b, _) = add_seed(&mut c, dir.path(), "b.bin", 60_000);
    c.ok("torrent-set", json!({"ids": [b], "seedRatioMode": 2}));

    // Bad values are refused, one line each, and change nothing.
    refused(
        &mut c,
        "torrent-set",
        json!({"ids": [b], "seedRatioMode": 5}),
        "seedRatioMode must be 0 (the session's goal), 1 (the torrent's own) or 2 (none), not 5",
    );
    refused(
        &mut c,
        "torrent-set",
        json!({"ids": [b], "seedRatioMode": 0, "seedRatioLimit": -1}),
        "seedRatioLimit must be a ratio, a number of 0 or more, not -1",
    );
    refused(
        &mut c,
        "torrent-set",
        json!({"seedIdleLimit": "soon"}),
        "seedIdleLimit must be a whole number of minutes",
    );
    refused(
        &mut c,
        "session-set",
        json!({"seedRatioLimit": 0, "seedRatioLimited": true, "idle-seeding-limit": -3}),
        "idle-seeding-limit must be a whole number of minutes",
    );
    assert_eq!(goals(&mut c, &b)["seedRatioMode"], 2);
    let s = c.ok("session-get", json!({}));
    assert_eq!(s["seedRatioLimited"], false);
    assert_eq!(s["idle-seeding-limit-enabled"], false);

    // A session goal of 0: every seeding torrent in global mode has met it.
    c.ok(
        "session-set",
        json!({"seedRatioLimit": 0, "seedRatioLimited": true,
               "idle-seeding-limit": 45, "idle-seeding-limit-enabled": true}),
    );
    let s = c.ok("session-get", json!({}));
    assert_eq!(
        (
            &s["seedRatioLimit"],
            &s["seedRatioLimited"],
            &s["idle-seeding-limit"]
        ),
        (&json!(0.0), &json!(true), &json!(45))
    );
    let text = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert!(text.contains("seed_ratio_limit = 0.0"), "{text}");
    assert!(text.contains("seed_idle_minutes = 45"), "{text}");
    let t = poll("the global torrent stopped", 30, || {
        let t = goals(&mut c, &a);
        (t["status"] == 0).then_some(t)
    });
    assert_eq!(t["isFinished"], true, "{t}");
    // The same look that stopped `a` passed over `b`, whose goal is unlimited.
    let t = goals(&mut c, &b);
    assert_eq!((&t["status"], &t["isFinished"]), (&json!(6), &json!(false)));

    // Lifting the session goal lets the resumed torrent seed on.
    c.ok("session-set", json!({"seedRatioLimited": false}));
    let text = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert!(!text.contains("seed_ratio_limit"), "{text}");
    assert!(text.contains("seed_idle_minutes = 45"), "{text}");
    c.ok("torrent-start", json!({"ids": [a]}));
    poll("the global torrent seeding again", 30, || {
        let t = goals(&mut c, &a);
        (t["status"] == 6).then_some(())
    });
    assert_eq!(
        c.ok("session-get", json!({"fields": ["seedRatioLimited"]}))["seedRatioLimited"],
        false
    );
}

/// Each torrent's clock through `torrent-get` (what Sonarr's and Radarr's seeding-time goals and
/// `transmission-remote -i` read): a seed made from local data starts, counts its seeding time
/// and shows activity once a leecher downloads (which completes with a `doneDate`; the seed's is
/// when its check found the data complete, as Transmission dates it); a stopped
/// torrent's time stands still and is kept across a restart; started again, it counts on.
#[test]
fn a_torrents_start_activity_and_seeding_time_are_counted_and_kept() {
    const CLOCK: [&str; 6] = [
        "status",
        "startDate",
        "activityDate",
        "doneDate",
        "secondsDownloading",
        "secondsSeeding",
    ];
    let rt = crate::support::runtime();
    let before = btorrent::engine::clock::unix_now();
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (id, meta) = add_seed(&mut c, dir.path(), "clock.bin", 200_000);
    let clock = |c: &mut Client| torrent_get(c, json!([id]), &CLOCK).pop().unwrap();
    let t = poll("two seconds of seeding", 30, || {
        let t = clock(&mut c);
        (t["secondsSeeding"].as_u64()? >= 2).then_some(t)
    });
    let started = t["startDate"].as_i64().unwrap();
    assert!(
        started >= before && started <= btorrent::engine::clock::unix_now(),
        "{t}"
    );
    assert_eq!(
        (&t["activityDate"], &t["secondsDownloading"]),
        (&json!(0), &json!(0)),
        "made from local data, nothing moved yet: {t}"
    );
    let found = t["doneDate"].as_i64().unwrap();
    assert!(
        found >= before && found <= started,
        "dated by the check that found it complete: {t}"
    );

    // A leecher downloads it: the seed was active; the leecher's download completed.
    let port = c.ok("session-get", json!({"fields": ["peer-port"]}))["peer-port"]
        .as_u64()
        .unwrap() as u16;
    let out = tempfile::tempdir().unwrap();
    let (_leecher, lh) = rt.block_on(support::leecher(
        &meta,
        out.path(),
        vec![([127, 0, 0, 1], port).into()],
    ));
    rt.block_on(support::wait_complete(&lh, 60));
    // (Activity shows at the clock's next tick, a second at most after the last byte.)
    let done = poll(
        "the leecher's completion and activity to be stamped",
        30,
        || {
            let times = lh.stats().times;
            (times.done > 0 && times.active > 0).then_some(times)
        },
    );
    assert!(done.done >= before && done.active >= before, "{done:?}");
    poll("the seed's activity", 30, || {
        (clock(&mut c)["activityDate"].as_i64()? >= before).then_some(())
    });

    // Stopped, its time stands still, and a restart keeps it.
    c.ok("torrent-stop", json!({"ids": [id]}));
    let stopped = poll("the seed to stop", 30, || {
        let t = clock(&mut c);
        (t["status"] == 0).then_some(t)
    });
    let seeded = stopped["secondsSeeding"].as_u64().unwrap();
    // The pause saves the resume file with the clock; then the daemon is killed.
    let resume = dir
        .path()
        .join(".btorrent/resume")
        .join(format!("{}.resume", meta.info_hash.to_hex()));
    poll("the pause to keep the clock", 30, || {
        let kept: Value = serde_json::from_slice(&std::fs::read(&resume).ok()?).ok()?;
        (kept["clock"]["seconds_seeding"] == seeded).then_some(())
    });
    let d = d.restart();
    let mut c = d.client();
    let clock = |c: &mut Client| torrent_get(c, json!(null), &CLOCK).pop();
    let t = poll("the stopped torrent listed again", 30, || clock(&mut c));
    assert_eq!(t["status"], 0, "{t}");
    assert_eq!(t["secondsSeeding"].as_u64(), Some(seeded), "{t}");
    assert_eq!(t["startDate"], 0, "not started in this run: {t}");
    let id = c.ok("torrent-get", json!({"fields": ["id"]}))["torrents"][0]["id"].clone();
    c.ok("torrent-start", json!({"ids": [id]}));
    poll("the seeding time to count on", 30, || {
        let t = clock(&mut c)?;
        (t["secondsSeeding"].as_u64()? > seeded && t["startDate"].as_i64()? >= started)
            .then_some(())
    });

    // Removed (its resume data kept, so its data is not hashed again) and added again a second
    // later: it completed before it was added, as far as its resume data goes; it is dated by
    // the add, never before it.
    c.ok("torrent-remove", json!({"ids": [id]}));
    poll("the removal", 30, || {
        torrent_get(&mut c, json!(null), &["id"])
            .is_empty()
            .then_some(())
    });
    assert!(resume.exists(), "the resume data is kept");
    poll("a second to pass since the first add", 30, || {
        (btorrent::engine::clock::unix_now() > found + 1).then_some(())
    });
    let file = dir.path().join("clock.bin.torrent");
    let data = dir.path().join("clock.bin-data");
    c.ok(
        "torrent-add",
        json!({"filename": file, "download-dir": data}),
    );
    let t = poll("the torrent added again, seeding", 30, || {
        let t = torrent_get(&mut c, json!(null), &["status", "addedDate", "doneDate"]).pop()?;
        (t["status"] == 6).then_some(t)
    });
    let added = t["addedDate"].as_i64().unwrap();
    assert!(added > found, "{t}");
    assert_eq!(t["doneDate"].as_i64(), Some(added), "{t}");
}
