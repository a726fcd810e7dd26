//! The download and seeding queues through the Transmission RPC of `btorrent daemon`. Turned on
//! with `session-set`, the download queue lets one torrent download and keeps the others waiting
//! (`status` 3, no tracker or peer contacted) in torrents.toml's order; `queue-move-*` reorders
//! them, a stop frees the place for the first one waiting, `torrent-start-now` runs one beside the
//! queue, a restarted daemon keeps the queue, and turning the queue off starts every waiting
//! torrent. The seeding queue does the same for complete torrents (`status` 5); a download that
//! completes while it is full seeds on, holding a place.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::rpc::{
    managed_state, parse_metrics, poll, request, torrent_get, Client, RpcDaemon,
};
use crate::support::tracker::http_double;
use crate::support::{self, write_random};

/// Each torrent's (status, queuePosition), by info-hash, in the order `hashes` gives.
fn looks(c: &mut Client, hashes: &[String]) -> Vec<(i64, i64)> {
    let all = torrent_get(c, json!(null), &["hashString", "status", "queuePosition"]);
    hashes
        .iter()
        .map(|h| {
            let t = all
                .iter()
                .find(|t| t["hashString"] == *h)
                .unwrap_or_else(|| panic!("{h} not listed: {all:?}"));
            (
                t["status"].as_i64().unwrap(),
                t["queuePosition"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// Waits until the statuses are `want` (the queue looks every second).
fn statuses(c: &mut Client, hashes: &[String], want: &[i64], what: &str) -> Vec<(i64, i64)> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let now = looks(c, hashes);
        if now.iter().map(|l| l.0).collect::<Vec<_>>() == want {
            return now;
        }
        assert!(
            Instant::now() < end,
            "timed out after 30 s waiting for {what}: (status, queuePosition) {now:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What a tracker double heard: its base URL and the request lines.
type Heard = (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>);

/// Adds `n` torrents nobody seeds (each would download for ever), each with a tracker of its own
/// (to see which contact anyone), in the order of their info-hashes returned. The runtime serves
/// the trackers.
fn add_unseeded(
    c: &mut Client,
    dir: &std::path::Path,
    n: usize,
) -> (tokio::runtime::Runtime, Vec<Heard>, Vec<String>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let trackers: Vec<Heard> = (0..n)
        .map(|_| {
            rt.block_on(http_double(|_| {
                (200, b"d8:intervali1800e5:peers0:e".to_vec())
            }))
        })
        .collect();
    let src = dir.join("src");
    let empty = dir.join("downloads");
    let mut hashes = Vec::new();
    for (i, (base, _)) in trackers.iter().enumerate() {
        let name = format!("{}.bin", (b'a' + i as u8) as char);
        write_random(&src.join(&name), 50_000, 90 + i as u64);
        let url = format!("{base}/announce");
        let meta = support::torrent(&src.join(&name), 16 * 1024, vec![url]);
        let b64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(meta.as_bytes())
        };
        c.ok(
            "torrent-add",
            json!({"metainfo": b64, "download-dir": empty}),
        );
        hashes.push(meta.info_hash.to_hex());
    }
    (rt, trackers, hashes)
}

#[test]
fn the_download_queue_lets_one_in_at_a_time_in_its_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    c.ok(
        "session-set",
        json!({"download-queue-enabled": true, "download-queue-size": 1}),
    );
    let s = c.ok("session-get", json!({"fields": ["download-queue-enabled", "download-queue-size", "queue-stalled-minutes"]}));
    assert_eq!(
        s,
        json!({"download-queue-enabled": true, "download-queue-size": 1, "queue-stalled-minutes": 30})
    );

    // Three torrents nobody seeds, each would download for ever; each with a tracker of its own,
    // to see which contact anyone.
    let (_rt, trackers, hashes) = add_unseeded(&mut c, dir.path(), 3);
    let announced = |i: usize| trackers[i].1.lock().unwrap().len();
    let [a, b, cc] = [0, 1, 2];
    let l = statuses(
        &mut c,
        &hashes,
        &[4, 3, 3],
        "a to download, b and c to wait",
    );
    assert_eq!(
        l.iter().map(|l| l.1).collect::<Vec<_>>(),
        [0, 1, 2],
        "queue positions in the order added"
    );
    assert_eq!(
        managed_state(dir.path(), &hashes[b]).as_deref(),
        Some("queued")
    );
    // Only the one let in contacts its tracker: the others wait without a word to anyone.
    poll("a's tracker to hear it", 30, || {
        (announced(a) > 0).then_some(())
    });
    assert_eq!((announced(b), announced(cc)), (0, 0));
    let metrics = parse_metrics(&request(d.port, "GET", "/metrics", &[], b"").body);
    assert_eq!(metrics["btorrent_torrents{state=\"queued\"}"], 2.0);
    assert_eq!(metrics["btorrent_torrents{state=\"downloading\"}"], 1.0);
    assert_eq!(metrics["btorrent_torrents{state=\"paused\"}"], 0.0);
    // The shell's view agrees.
    let out = support::cli::ok(dir.path(), &["b-show"]);
    assert_eq!(out.matches("queued").count(), 2, "{out}");

    // c to the top of the queue: it is next.
    c.ok("queue-move-top", json!({"ids": [hashes[cc]]}));
    let l = looks(&mut c, &hashes);
    assert_eq!(
        l.iter().map(|l| l.1).collect::<Vec<_>>(),
        [1, 2, 0],
        "c first, then a and b"
    );
    c.ok("torrent-stop", json!({"ids": [hashes[a]]}));
    statuses(&mut c, &hashes, &[0, 3, 4], "c to take a's place");
    poll("c's tracker to hear it", 30, || {
        (announced(cc) > 0).then_some(())
    });
    assert_eq!(announced(b), 0);

    // Started now, b downloads beside the queue; a started again waits, as c holds the place.
    c.ok("torrent-start-now", json!({"ids": [hashes[b]]}));
    statuses(&mut c, &hashes, &[0, 4, 4], "b to start now");
    c.ok("torrent-start", json!({"ids": [hashes[a]]}));
    statuses(&mut c, &hashes, &[3, 4, 4], "a to wait");
    c.ok("queue-move-down", json!({"ids": [hashes[cc]]}));
    assert_eq!(
        looks(&mut c, &hashes)
            .iter()
            .map(|l| l.1)
            .collect::<Vec<_>>(),
        [0, 2, 1]
    );
    let v = c.call("queue-move-up", json!({}));
    assert!(
        v["result"].as_str().unwrap().contains("needs \"ids\""),
        "{v}"
    );
    // torrent-set's queuePosition puts one at a place; the order is torrents.toml's.
    c.ok(
        "torrent-set",
        json!({"ids": [hashes[b]], "queuePosition": 0}),
    );
    let pos = |c: &mut Client| looks(c, &hashes).iter().map(|l| l.1).collect::<Vec<_>>();
    assert_eq!(pos(&mut c), [1, 0, 2]);
    c.ok(
        "torrent-set",
        json!({"ids": [hashes[b]], "queuePosition": 1}),
    );
    assert_eq!(pos(&mut c), [0, 1, 2]);
    c.ok("queue-move-bottom", json!({"ids": [hashes[a]]}));
    c.ok("queue-move-up", json!({"ids": [hashes[cc]]}));
    assert_eq!(pos(&mut c), [2, 1, 0]);
    c.ok("queue-move-top", json!({"ids": [hashes[a]]}));
    assert_eq!(pos(&mut c), [0, 2, 1], "back to a, c, b");

    // A restarted daemon keeps the queue: c was let in first; a waits; b, started now before,
    // is an ordinary download again and waits behind a.
    let started = |i: usize| {
        let heard = trackers[i].1.lock().unwrap();
        heard.iter().filter(|l| l.contains("event=started")).count()
    };
    let started_before = (started(a), started(b), started(cc));
    let d = d.restart();
    let mut c = d.client();
    poll("the restarted daemon to list the three", 30, || {
        (torrent_get(&mut c, json!(null), &["id"]).len() == 3).then_some(())
    });
    let l = statuses(
        &mut c,
        &hashes,
        &[3, 3, 4],
        "c to download, a and b to wait",
    );
    assert_eq!(l.iter().map(|l| l.1).collect::<Vec<_>>(), [0, 2, 1]);
    // b, downloading before, waits from the daemon's start: it has not started since.
    poll("c's tracker to hear the restarted daemon start", 30, || {
        (started(cc) > started_before.2).then_some(())
    });
    assert_eq!(
        (started(a), started(b)),
        (started_before.0, started_before.1)
    );

    // Two places: a, first waiting, starts.
    c.ok("session-set", json!({"download-queue-size": 2}));
    statuses(&mut c, &hashes, &[4, 3, 4], "a to start in the new place");
    // No queue: everything downloads.
    c.ok("session-set", json!({"download-queue-enabled": false}));
    statuses(&mut c, &hashes, &[4, 4, 4], "every torrent to download");
    let settings = btorrent::config::Config::load(&dir.path().join("torrents.toml"))
        .unwrap()
        .settings;
    assert!(!settings.download_queue, "the queue is off in the file too");
    assert_eq!(settings.download_queue_size, Some(2));
    // (The engine resumes a torrent before torrents.toml records it.)
    poll(
        "torrents.toml to record every torrent downloading",
        30,
        || {
            hashes
                .iter()
                .all(|h| managed_state(dir.path(), h).as_deref() == Some("downloading"))
                .then_some(())
        },
    );
    for (bad, says) in [
        (json!({"download-queue-size": 0}), "1 or more"),
        (json!({"seed-queue-size": -1}), "1 or more"),
    ] {
        let v: Value = c.call("session-set", bad.clone());
        assert!(v["result"].as_str().unwrap().contains(says), "{bad}: {v}");
    }
}

/// A tracker double that answers every announce with `peers`.
fn tracker_naming(rt: &tokio::runtime::Runtime, peers: &[std::net::SocketAddrV4]) -> Heard {
    rt.block_on(crate::support::tracker::http_double_naming(peers))
}

/// Adds the torrent of `file` (with `tracker` in it) to be kept in `download_dir`; its info-hash.
fn add_with_tracker(
    c: &mut Client,
    file: &std::path::Path,
    download_dir: &std::path::Path,
    tracker: &Heard,
) -> String {
    let meta = support::torrent(file, 16 * 1024, vec![format!("{}/announce", tracker.0)]);
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(meta.as_bytes())
    };
    c.ok(
        "torrent-add",
        json!({"metainfo": b64, "download-dir": download_dir}),
    );
    meta.info_hash.to_hex()
}

/// How many `event=started` announces a tracker double heard.
fn started(t: &Heard) -> usize {
    let heard = t.1.lock().unwrap();
    heard.iter().filter(|l| l.contains("event=started")).count()
}

#[test]
fn the_seeding_queue_lets_one_seed_at_a_time_and_a_completed_download_seeds_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    c.ok(
        "session-set",
        json!({"seed-queue-enabled": true, "seed-queue-size": 1}),
    );
    let s = c.ok(
        "session-get",
        json!({"fields": ["seed-queue-enabled", "seed-queue-size", "download-queue-enabled"]}),
    );
    assert_eq!(
        s,
        json!({"seed-queue-enabled": true, "seed-queue-size": 1, "download-queue-enabled": false})
    );

    // a, b and c: complete seeds, each with a tracker of its own (to see which contact anyone).
    let rt = support::runtime();
    let seeds = dir.path().join("seeds");
    let trackers: Vec<Heard> = (0..3).map(|_| tracker_naming(&rt, &[])).collect();
    let mut hashes = Vec::new();
    for (i, t) in trackers.iter().enumerate() {
        let file = seeds.join(format!("{}.bin", (b'a' + i as u8) as char));
        write_random(&file, 40_000, 300 + i as u64);
        hashes.push(add_with_tracker(&mut c, &file, &seeds, t));
    }
    statuses(&mut c, &hashes, &[6, 5, 5], "a to seed, b and c to wait");
    assert_eq!(
        managed_state(dir.path(), &hashes[1]).as_deref(),
        Some("queued")
    );
    poll("a's tracker to hear it", 30, || {
        (started(&trackers[0]) > 0).then_some(())
    });
    assert_eq!((started(&trackers[1]), started(&trackers[2])), (0, 0));

    // d downloads (the download queue is off) from a session of the test's own, which d's
    // tracker names; complete, it goes on seeding, as in Transmission, past the queue's size.
    let d_src = dir.path().join("d-src");
    write_random(&d_src.join("d.bin"), 300_000, 303);
    let d_meta = support::torrent(&d_src.join("d.bin"), 16 * 1024, vec![]);
    let (seeder, _sh) = rt.block_on(support::seeder(&d_meta, &d_src));
    let std::net::SocketAddr::V4(at) = seeder.listen_addr() else {
        panic!("the seeder listens on IPv4")
    };
    let at = std::net::SocketAddrV4::new([127, 0, 0, 1].into(), at.port());
    let d_tracker = tracker_naming(&rt, &[at]);
    hashes.push(add_with_tracker(
        &mut c,
        &d_src.join("d.bin"),
        &dir.path().join("downloads"),
        &d_tracker,
    ));
    statuses(
        &mut c,
        &hashes,
        &[6, 5, 5, 6],
        "d to download and then seed on",
    );
    let t = torrent_get(
        &mut c,
        json!([hashes[3]]),
        &["leftUntilDone", "percentDone"],
    );
    assert_eq!(
        (&t[0]["leftUntilDone"], &t[0]["percentDone"]),
        (&json!(0), &json!(1.0)),
        "d has its data: {t:?}"
    );
    let out = support::cli::ok(dir.path(), &["b-show"]);
    assert_eq!(out.matches("queued").count(), 2, "{out}");

    // a stops: d still holds the one place, so nobody starts. A second place lets b, first
    // waiting, in; a stop of d lets c in.
    c.ok("torrent-stop", json!({"ids": [hashes[0]]}));
    statuses(&mut c, &hashes, &[0, 5, 5, 6], "d to hold the place");
    assert_eq!(started(&trackers[1]), 0);
    c.ok("session-set", json!({"seed-queue-size": 2}));
    statuses(&mut c, &hashes, &[0, 6, 5, 6], "b to seed in the new place");
    poll("b's tracker to hear it", 30, || {
        (started(&trackers[1]) > 0).then_some(())
    });
    c.ok("torrent-stop", json!({"ids": [hashes[3]]}));
    statuses(&mut c, &hashes, &[0, 6, 6, 0], "c to take d's place");

    // The queue off: everything seeds; on again at one place, nothing stops.
    c.ok("session-set", json!({"seed-queue-enabled": false}));
    c.ok("torrent-start", json!({"ids": [hashes[0], hashes[3]]}));
    statuses(&mut c, &hashes, &[6, 6, 6, 6], "every torrent to seed");
    poll("torrents.toml to record every torrent seeding", 30, || {
        hashes
            .iter()
            .all(|h| managed_state(dir.path(), h).as_deref() == Some("seeding"))
            .then_some(())
    });
    c.ok(
        "session-set",
        json!({"seed-queue-enabled": true, "seed-queue-size": 1}),
    );
    assert_eq!(
        looks(&mut c, &hashes)
            .iter()
            .map(|l| l.0)
            .collect::<Vec<_>>(),
        [6, 6, 6, 6]
    );

    // Restarted, the daemon lets the first seed run and the others wait from its start, telling
    // their trackers nothing. (What they were told before is counted once heard: a's and d's
    // `started` of the `torrent-start` above, spaced out among the session's announces, could
    // reach their trackers only after the count on a loaded machine.)
    poll("a's and d's trackers to hear them start again", 30, || {
        (started(&trackers[0]) >= 2 && started(&d_tracker) >= 2).then_some(())
    });
    let before: Vec<usize> = trackers.iter().chain([&d_tracker]).map(started).collect();
    let d = d.restart();
    let mut c = d.client();
    poll("the restarted daemon to list the four", 30, || {
        (torrent_get(&mut c, json!(null), &["id"]).len() == 4).then_some(())
    });
    statuses(
        &mut c,
        &hashes,
        &[6, 5, 5, 5],
        "a to seed, the others to wait",
    );
    poll("a's tracker to hear the restarted daemon start", 30, || {
        (started(&trackers[0]) > before[0]).then_some(())
    });
    let after: Vec<usize> = trackers.iter().chain([&d_tracker]).map(started).collect();
    assert_eq!(after[1..], before[1..], "the waiting seeds announced");

    c.ok("session-set", json!({"seed-queue-enabled": false}));
    statuses(&mut c, &hashes, &[6, 6, 6, 6], "every torrent to seed");
    drop(seeder);
}

/// `b-queue`, one-shot beside the daemon: it turns the seeding queue on, moves a torrent to the top
/// (the file keeps the order, the daemon's queue follows it), lists who waits in which queue, and
/// refuses what makes no sense with one line.
#[test]
fn b_queue_sets_the_queues_and_moves_a_torrent_the_daemon_follows() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let rt = support::runtime();
    let seeds = dir.path().join("seeds");
    let mut hashes = Vec::new();
    let mut trackers = Vec::new();
    for i in 0..3 {
        let file = seeds.join(format!("{}.bin", (b'a' + i as u8) as char));
        write_random(&file, 30_000, 400 + i as u64);
        trackers.push(tracker_naming(&rt, &[]));
        hashes.push(add_with_tracker(&mut c, &file, &seeds, &trackers[i]));
    }
    statuses(&mut c, &hashes, &[6, 6, 6], "the three to seed");

    let out = support::cli::ok(dir.path(), &["queue", "--seeds", "1", "--stalled", "0"]);
    assert!(out.contains("seeding queue: on, 1 seed at once"), "{out}");
    assert!(out.contains("a stalled torrent keeps its place"), "{out}");
    // Turned on while all three seed, the queue stops none; a restart would. Stop and start b
    // and c: they go through the queue, and wait.
    c.ok("torrent-stop", json!({"ids": [hashes[1], hashes[2]]}));
    statuses(&mut c, &hashes, &[6, 0, 0], "b and c to stop");
    c.ok("torrent-start", json!({"ids": [hashes[1], hashes[2]]}));
    statuses(&mut c, &hashes, &[6, 5, 5], "b and c to wait to seed");

    // c to the top: torrents.toml's order, which the daemon's queue follows.
    let out = support::cli::ok(dir.path(), &["queue", &hashes[2][..12], "--to", "top"]);
    assert!(out.contains("queued to seed"), "{out}");
    assert!(!out.contains("a.bin"), "only the torrent named: {out}");
    poll("the daemon to see c first", 30, || {
        let pos: Vec<i64> = looks(&mut c, &hashes).iter().map(|l| l.1).collect();
        (pos == [1, 2, 0]).then_some(())
    });
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    let names: Vec<_> = cfg.torrents.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["c.bin", "a.bin", "b.bin"]);
    c.ok("torrent-stop", json!({"ids": [hashes[0]]}));
    statuses(
        &mut c,
        &hashes,
        &[0, 5, 6],
        "c, first waiting, to take a's place",
    );
    let out = support::cli::ok(dir.path(), &["queue"]);
    let row = |name: &str| {
        out.lines()
            .find(|l| l.contains(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("b.bin").contains("queued to seed"), "{out}");
    assert!(
        row("c.bin").contains("seeding") && row("c.bin").contains(" 0 "),
        "{out}"
    );
    assert!(row("a.bin").contains("paused"), "{out}");

    for (bad, says) in [
        (
            vec!["queue", "b.bin", "--to", "sideways"],
            "top, up, down, bottom or a place",
        ),
        (vec!["queue", "--to", "top"], "name it"),
        (
            vec!["queue", "--seeds", "-2"],
            "must be a number of torrents",
        ),
        (vec!["queue", "--stalled", "-1"], "whole number of minutes"),
        (
            vec!["queue", "nothing-by-this-name", "--to", "up"],
            "nothing-by-this-name",
        ),
    ] {
        let o = support::cli::run(dir.path(), &bad);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{bad:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let settings = btorrent::config::Config::load(&dir.path().join("torrents.toml"))
        .unwrap()
        .settings;
    assert_eq!(
        (
            settings.seed_queue,
            settings.seed_queue_size,
            settings.queue_stalled_minutes
        ),
        (true, Some(1), Some(0)),
        "refusals changed nothing"
    );

    // 0 turns the queue off: the waiting one seeds.
    support::cli::ok(dir.path(), &["queue", "--seeds", "0"]);
    statuses(
        &mut c,
        &hashes,
        &[0, 6, 6],
        "b to seed once the queue is off",
    );
}

/// A one-shot `btorrent resume` of a download while the daemon's queue is full: the torrent waits in
/// the daemon's queue (recorded `queued`, no tracker contacted) rather than starting there and being
/// held a moment later, and starts when the place frees.
#[test]
fn a_one_shot_resume_waits_in_the_daemons_queue() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "download_queue = true\ndownload_queue_size = 1");
    let mut c = d.client();
    let (_rt, trackers, hashes) = add_unseeded(&mut c, dir.path(), 2);
    let started = |i: usize| {
        let heard = trackers[i].1.lock().unwrap();
        heard.iter().filter(|l| l.contains("event=started")).count()
    };
    statuses(&mut c, &hashes, &[4, 3], "a to download, b to wait");
    c.ok("torrent-stop", json!({"ids": [hashes[1]]}));
    statuses(&mut c, &hashes, &[4, 0], "b to be stopped");

    let out = support::cli::ok(dir.path(), &["resume", &hashes[1]]);
    assert!(out.contains("queued"), "{out}");
    statuses(&mut c, &hashes, &[4, 3], "b to wait in the queue");
    assert_eq!(
        managed_state(dir.path(), &hashes[1]).as_deref(),
        Some("queued")
    );
    poll("a's tracker to hear it", 30, || {
        (started(0) > 0).then_some(())
    });
    assert_eq!(started(1), 0, "b contacted its tracker while waiting");

    c.ok("torrent-stop", json!({"ids": [hashes[0]]}));
    statuses(&mut c, &hashes, &[0, 4], "b to take a's place");
    poll("b's tracker to hear it", 30, || {
        (started(1) > 0).then_some(())
    });
}
