//! Torrents through the Transmission RPC of `btorrent daemon`: added (by path and base64), read
//! (checked against the engine and torrents.toml), stopped, started, verified, reannounced and
//! removed; trackerStats against a real tracker; and a one-shot `start` handed to the daemon.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use crate::support::rpc::{managed_state, parse_metrics, poll, request, torrent_get, RpcDaemon};
use crate::support::{self, write_random};

#[test]
fn torrents_are_added_read_stopped_started_and_removed_through_the_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();

    // A seed added by path, its data already in `seed/`.
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(seed_dir.join("pack")).unwrap();
    write_random(&seed_dir.join("pack/a.bin"), 300_000, 1);
    write_random(&seed_dir.join("pack/b.bin"), 200_000, 2);
    let meta = support::torrent(&seed_dir.join("pack"), 32 * 1024, vec![]);
    let file = dir.path().join("pack.torrent");
    std::fs::write(&file, meta.as_bytes()).unwrap();
    let a = c.ok(
        "torrent-add",
        json!({"filename": file, "download-dir": seed_dir}),
    );
    let added = &a["torrent-added"];
    assert_eq!(added["hashString"], meta.info_hash.to_hex());
    assert_eq!(added["name"], "pack");
    let id = added["id"].as_i64().unwrap();
    // The same torrent again is a duplicate with the same id.
    let a = c.ok("torrent-add", json!({"filename": file}));
    assert_eq!(a["torrent-duplicate"]["id"], id);

    let fields = [
        "id",
        "hashString",
        "name",
        "percentDone",
        "status",
        "totalSize",
        "sizeWhenDone",
        "leftUntilDone",
        "files",
        "fileStats",
        "downloadDir",
        "error",
        "errorString",
        "eta",
        "peersConnected",
        "rateDownload",
        "rateUpload",
        "uploadedEver",
        "trackerStats",
        "pieces",
    ];
    let t = poll("the seed's data check", 30, || {
        let t = torrent_get(&mut c, json!([id]), &fields).pop()?;
        (t["status"] == 6).then_some(t)
    });
    assert_eq!(t["percentDone"], 1.0);
    assert_eq!(t["totalSize"], 500_000);
    assert_eq!(t["leftUntilDone"], 0);
    assert_eq!(t["error"], 0);
    assert_eq!(t["downloadDir"], seed_dir.display().to_string());
    let files = t["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    for f in files {
        assert_eq!(f["bytesCompleted"], f["length"], "{f}");
    }
    // torrents.toml records the state the engine's event reports, moments after.
    poll("torrents.toml to say seeding", 30, || {
        (managed_state(dir.path(), &meta.info_hash.to_hex()).as_deref() == Some("seeding"))
            .then_some(())
    });

    // A second torrent by base64 metainfo, paused, into an empty folder: nothing of it yet.
    let other_src = dir.path().join("other-src");
    std::fs::create_dir_all(&other_src).unwrap();
    write_random(&other_src.join("c.bin"), 100_000, 3);
    let other = support::torrent(&other_src.join("c.bin"), 16 * 1024, vec![]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(other.as_bytes());
    let empty = dir.path().join("empty");
    let a = c.ok(
        "torrent-add",
        json!({"metainfo": b64, "download-dir": empty, "paused": true}),
    );
    let other_id = a["torrent-added"]["id"].as_i64().unwrap();
    assert_ne!(other_id, id);
    let t = poll("the paused torrent's check", 30, || {
        let t = torrent_get(&mut c, json!([other.info_hash.to_hex()]), &fields).pop()?;
        (t["status"] == 0).then_some(t)
    });
    assert_eq!(t["id"], other_id, "ids by hash and by number agree");
    assert_eq!(t["percentDone"], 0.0);
    assert_eq!(t["leftUntilDone"], 100_000);
    assert_eq!(t["fileStats"][0]["bytesCompleted"], 0);
    assert_eq!(
        managed_state(dir.path(), &other.info_hash.to_hex()).as_deref(),
        Some("paused")
    );
    // Every torrent, in table form too.
    let a = c.ok(
        "torrent-get",
        json!({"fields": ["id", "name"], "format": "table"}),
    );
    assert_eq!(a["torrents"][0], json!(["id", "name"]));
    assert_eq!(a["torrents"].as_array().unwrap().len(), 3);

    // Stopped, the seed uploads nothing to a leecher that asks; started, it serves it whole.
    c.ok("torrent-stop", json!({"ids": [id]}));
    assert_eq!(torrent_get(&mut c, json!(id), &["status"])[0]["status"], 0);
    assert_eq!(
        managed_state(dir.path(), &meta.info_hash.to_hex()).as_deref(),
        Some("paused")
    );
    let port = c.ok("session-get", json!({"fields": ["peer-port"]}))["peer-port"]
        .as_u64()
        .unwrap();
    let seed_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let leech_dir = dir.path().join("leech");
    let (leecher, h) = rt.block_on(support::leecher(&meta, &leech_dir, vec![seed_addr]));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(h.stats().pieces_have, 0, "a stopped torrent served data");
    assert_eq!(
        torrent_get(&mut c, json!(id), &["uploadedEver"])[0]["uploadedEver"],
        0
    );
    c.ok("torrent-start", json!({"ids": [meta.info_hash.to_hex()]}));
    assert_eq!(
        managed_state(dir.path(), &meta.info_hash.to_hex()).as_deref(),
        Some("seeding")
    );
    // A slow leecher first, so the connection is seen mid-transfer: the peer's state in `peers`.
    h.set_limits(btorrent::engine::TorrentLimits {
        download: Some(60_000),
        ..Default::default()
    });
    h.add_peers(vec![seed_addr]);
    // (A super-seeding seed's leecher is interested in turns: while it has an offered piece to fetch.)
    let p = poll(
        "the leecher in `peers`, interested and unchoked",
        30,
        || {
            let t = torrent_get(&mut c, json!(id), &["peers"]).pop()?;
            let p = t["peers"].as_array()?.first()?.clone();
            (p["peerIsInterested"] == true && p["peerIsChoked"] == false).then_some(p)
        },
    );
    assert_eq!(p["address"], "127.0.0.1", "{p}");
    assert_eq!(p["clientIsInterested"], false, "a seed wants nothing: {p}");
    assert!(p["progress"].as_f64().unwrap() < 1.0, "{p}");
    let flags = p["flagStr"].as_str().unwrap();
    assert!(flags.contains('U') && flags.contains('I'), "{p}");
    assert!(!flags.contains('D') && !flags.contains('d'), "{p}");
    assert_eq!(
        p["isEncrypted"], false,
        "both ends allow plain streams: {p}"
    );
    // Transmission 4.1's: its peer id (base64), and the bytes each way on this connection.
    let id_b64 = base64::engine::general_purpose::STANDARD.encode(leecher.peer_id().0);
    assert_eq!(p["peer_id"], id_b64.as_str(), "{p}");
    assert_eq!(p["bytes_to_client"], 0, "a seed takes nothing: {p}");
    assert!(p["bytes_to_peer"].as_u64().is_some(), "{p}");
    // Where each end learned of the other: the leecher was given the address, the seed was dialed.
    let from = torrent_get(&mut c, json!(id), &["peersFrom"])[0]["peersFrom"].clone();
    assert_eq!(
        from,
        json!({"fromCache": 0, "fromDht": 0, "fromIncoming": 1, "fromLpd": 0, "fromLtep": 0, "fromPex": 0, "fromTracker": 0})
    );
    let metrics = parse_metrics(&request(d.port, "GET", "/metrics", &[], b"").body);
    assert_eq!(metrics["btorrent_peers_from{source=\"incoming\"}"], 1.0);
    assert_eq!(metrics["btorrent_peers_from{source=\"tracker\"}"], 0.0);
    assert_eq!(metrics["btorrent_peers_encrypted"], 0.0);
    let ours = h.peers();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].source, btorrent::engine::known::Source::User);
    assert!(ours[0].outgoing);
    h.set_limits(btorrent::engine::TorrentLimits::default());
    rt.block_on(support::wait_complete(&h, 60));
    let up = poll("uploadedEver to count the upload", 10, || {
        let t = torrent_get(&mut c, json!(id), &["uploadedEver"]).pop()?;
        let up = t["uploadedEver"].as_u64()?;
        (up >= 500_000).then_some(up)
    });
    assert!(up >= 500_000, "{up}");
    rt.block_on(leecher.shutdown(Duration::from_secs(2)));

    // /metrics: every line parses; the torrents by state match.
    let r = request(d.port, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let m = parse_metrics(&r.body);
    assert_eq!(m["btorrent_torrents{state=\"seeding\"}"], 1.0, "{}", r.body);
    assert_eq!(m["btorrent_torrents{state=\"paused\"}"], 1.0, "{}", r.body);
    assert!(
        m["btorrent_uploaded_bytes_total"] >= 500_000.0,
        "{}",
        r.body
    );
    // Each torrent's own samples, by info-hash and name.
    let pack = format!(
        "{{info_hash=\"{}\",name=\"pack\"}}",
        meta.info_hash.to_hex()
    );
    let info = format!(
        "btorrent_torrent_info{{info_hash=\"{}\",name=\"pack\",state=\"seeding\"}}",
        meta.info_hash.to_hex()
    );
    assert_eq!(m[&info], 1.0, "{}", r.body);
    assert_eq!(m[&format!("btorrent_torrent_progress_ratio{pack}")], 1.0);
    assert_eq!(m[&format!("btorrent_torrent_left_bytes{pack}")], 0.0);
    assert_eq!(
        m[&format!("btorrent_torrent_wanted_bytes{pack}")],
        500_000.0
    );
    assert!(m[&format!("btorrent_torrent_uploaded_bytes_total{pack}")] >= 500_000.0);
    let paused = format!(
        "btorrent_torrent_info{{info_hash=\"{}\",name=\"c.bin\",state=\"paused\"}}",
        other.info_hash.to_hex()
    );
    assert_eq!(m[&paused], 1.0, "{}", r.body);

    // Removed with its data: the files are gone, so is the entry; the other torrent stays.
    c.ok(
        "torrent-remove",
        json!({"ids": [id], "delete-local-data": true}),
    );
    assert!(!seed_dir.join("pack/a.bin").exists() && !seed_dir.join("pack").exists());
    assert_eq!(managed_state(dir.path(), &meta.info_hash.to_hex()), None);
    let left = torrent_get(&mut c, json!("recently-active"), &["id"]);
    assert!(left.iter().all(|t| t["id"] != id), "{left:?}");
    let a = c.ok(
        "torrent-get",
        json!({"ids": "recently-active", "fields": ["id"]}),
    );
    assert_eq!(a["removed"], json!([id]));
    // Removed without: the data stays.
    c.ok("torrent-remove", json!({"ids": [other_id]}));
    assert_eq!(managed_state(dir.path(), &other.info_hash.to_hex()), None);
    assert!(torrent_get(&mut c, json!(null), &["id"]).is_empty());

    // What btorrent does not have says so.
    let v = c.call("torrent-set", json!({"location": "/elsewhere"}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("not supported: location"),
        "{v}"
    );
}

/// A folder `pack` of `files` (name, size; contents seeded from `seed`) seeded by a session of
/// its own, which announces every piece at once (no super-seeding), and a magnet link naming it as
/// the peer.
fn seeding_pack(
    rt: &tokio::runtime::Runtime,
    files: &[(&str, usize)],
    seed: u64,
) -> (
    tempfile::TempDir,
    btorrent::Metainfo,
    btorrent::engine::Session,
    String,
) {
    let src = tempfile::tempdir().unwrap();
    for (i, (name, len)) in files.iter().enumerate() {
        write_random(&src.path().join("pack").join(name), *len, seed + i as u64);
    }
    let meta = support::torrent(&src.path().join("pack"), 32 * 1024, vec![]);
    let cfg = btorrent::engine::SessionConfig {
        super_seed: Some(false),
        ..Default::default()
    };
    let (seeder, _seeding) = rt.block_on(support::seeder_with(cfg, &meta, src.path()));
    let link = format!(
        "magnet:?xt=urn:btih:{}&dn=pack&x.pe={}",
        meta.info_hash.to_hex(),
        seeder.listen_addr()
    );
    (src, meta, seeder, link)
}

/// `torrent-add` with `files-unwanted` and `priority-high`, `torrent-get`'s file fields and sizes
/// from the real selection, `torrent-set files-wanted` bringing the file in, torrents.toml keeping it.
#[test]
fn files_are_chosen_through_the_rpc() {
    let rt = crate::support::runtime();
    // a and b fill whole pieces: skipping b leaves no piece of it wanted.
    let files = [("a.bin", 327_680), ("b.bin", 196_608), ("c.bin", 100_000)];
    let (src, meta, seeder, link) = seeding_pack(&rt, &files, 0);
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let out = dir.path().join("out");
    // A magnet is answered before its metadata says which files there are: a choice naming a
    // file it has not shows as the torrent's error once the metadata is in, and nothing is kept.
    let a = c.ok(
        "torrent-add",
        json!({"filename": link, "download-dir": out, "files-unwanted": [3]}),
    );
    let id = a["torrent-added"]["id"].as_i64().unwrap();
    let t = poll("the metadata and the error", 60, || {
        let t = torrent_get(&mut c, json!([id]), &["status", "error", "errorString"]).pop()?;
        (t["error"] != 0).then_some(t)
    });
    assert_eq!(t["status"], 0, "{t}");
    assert!(
        t["errorString"]
            .as_str()
            .unwrap()
            .contains("3 is not a file of pack"),
        "{t}"
    );
    assert!(!dir.path().join("torrents/pack.torrent").exists());
    c.ok("torrent-remove", json!({"ids": [id]}));
    let a = c.ok(
        "torrent-add",
        json!({"filename": link, "download-dir": out, "files-unwanted": [1], "priority-high": [2]}),
    );
    let id = a["torrent-added"]["id"].as_i64().unwrap();
    let fields = [
        "percentDone",
        "status",
        "sizeWhenDone",
        "leftUntilDone",
        "totalSize",
        "wanted",
        "priorities",
        "fileStats",
    ];
    let t = poll("the wanted files", 60, || {
        let t = torrent_get(&mut c, json!([id]), &fields).pop()?;
        (t["percentDone"] == 1.0 && t["status"] == 6).then_some(t)
    });
    assert_eq!(t["sizeWhenDone"], 427_680);
    assert_eq!(t["totalSize"], 624_288);
    assert_eq!(t["leftUntilDone"], 0);
    assert_eq!(t["wanted"], json!([1, 0, 1]));
    assert_eq!(t["priorities"], json!([0, 0, 1]));
    assert_eq!(
        t["fileStats"][1],
        json!({"bytesCompleted": 0, "wanted": false, "priority": 0})
    );
    assert!(!out.join("pack/b.bin").exists(), "b.bin was created");
    // Transmission 4's fields: the files, the share of the whole torrent verified, the kind of
    // data, fetching in order (set here, kept in torrents.toml).
    let more = [
        "file-count",
        "fileCount",
        "percentComplete",
        "primary-mime-type",
        "sequential_download",
    ];
    let t4 = torrent_get(&mut c, json!([id]), &more).pop().unwrap();
    assert_eq!(
        (&t4["file-count"], &t4["fileCount"]),
        (&json!(3), &json!(3)),
        "{t4}"
    );
    let share = t4["percentComplete"].as_f64().unwrap();
    assert!((share - 427_680.0 / 624_288.0).abs() < 1e-9, "{t4}");
    assert_eq!(t4["primary-mime-type"], "application/octet-stream", "{t4}");
    assert_eq!(t4["sequential_download"], false, "{t4}");
    let v = c.call(
        "torrent-set",
        json!({"ids": [id], "sequential_download": "yes"}),
    );
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("sequential_download must be true or false"),
        "{v}"
    );
    c.ok(
        "torrent-set",
        json!({"ids": [id], "sequentialDownload": true}),
    );
    let t4 = torrent_get(&mut c, json!([id]), &more).pop().unwrap();
    assert_eq!(t4["sequential_download"], true, "{t4}");
    // Asked by the name it had before Transmission 4.1 settled on snake_case, it answers so.
    let earlier = torrent_get(&mut c, json!([id]), &["sequentialDownload"]);
    assert_eq!(earlier[0]["sequentialDownload"], true);
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert!(cfg.find(&meta.info_hash).unwrap().files.sequential);
    let kept = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    let e = cfg.find(&meta.info_hash).unwrap();
    assert_eq!(
        (e.files.skip.clone(), e.files.high.clone()),
        (vec![1], vec![2]),
        "{kept}"
    );

    let v = c.call("torrent-set", json!({"ids": [id], "files-wanted": [7]}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("7 is not a file of pack"),
        "{v}"
    );
    c.ok(
        "torrent-set",
        json!({"ids": [id], "files-wanted": [1], "priority-low": [0]}),
    );
    let t = poll("every file", 60, || {
        let t = torrent_get(&mut c, json!([id]), &fields).pop()?;
        (t["percentDone"] == 1.0 && t["sizeWhenDone"] == 624_288).then_some(t)
    });
    assert_eq!(t["wanted"], json!([1, 1, 1]));
    assert_eq!(t["priorities"], json!([-1, 0, 1]));
    support::assert_same_tree(&src.path().join("pack"), &out.join("pack"));
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    let e = cfg.find(&meta.info_hash).unwrap();
    assert!(e.files.skip.is_empty() && e.files.low == [0]);
    rt.block_on(seeder.shutdown(Duration::from_secs(5)));
}

/// `rename-partial-files`: a file not complete yet is `<name>.part` on disk (the RPC's file list
/// gives its own name), switched over the RPC while the daemon runs.
#[test]
fn partial_file_names_follow_the_rpc_switch() {
    let rt = crate::support::runtime();
    // a fills whole pieces; b ends inside the piece where c starts: skipping b leaves that piece
    // wanted, so b is created holding its bytes of it, and is never complete.
    let files = [("a.bin", 327_680), ("b.bin", 100_000), ("c.bin", 50_000)];
    let (_src, _meta, seeder, link) = seeding_pack(&rt, &files, 20);
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let get = |c: &mut crate::support::rpc::Client| {
        c.ok("session-get", json!({"fields": ["rename-partial-files"]}))["rename-partial-files"]
            .clone()
    };
    assert_eq!(get(&mut c), true, "on by default");
    let out = dir.path().join("out");
    let a = c.ok(
        "torrent-add",
        json!({"filename": link, "download-dir": out, "files-unwanted": [1]}),
    );
    let id = a["torrent-added"]["id"].as_i64().unwrap();
    let fields = ["percentDone", "status", "files"];
    let t = poll("the wanted files", 60, || {
        let t = torrent_get(&mut c, json!([id]), &fields).pop()?;
        (t["percentDone"] == 1.0 && t["status"] == 6).then_some(t)
    });
    assert_eq!(t["files"][1]["name"], "pack/b.bin", "{t}");
    // The pieces each file spans (the last one exclusive): b shares its last with c.
    let span = |f: usize| {
        (
            t["files"][f]["begin_piece"].clone(),
            t["files"][f]["end_piece"].clone(),
        )
    };
    assert_eq!(span(0), (json!(0), json!(10)), "{t}");
    assert_eq!(span(1), (json!(10), json!(14)), "{t}");
    assert_eq!(span(2), (json!(13), json!(15)), "{t}");
    // Per piece, -1 for those it has, how many peers have the others (b's own three); nothing it
    // wants is left to be had.
    let avail = torrent_get(&mut c, json!([id]), &["availability", "desiredAvailable"]);
    let pieces = avail[0]["availability"].as_array().unwrap();
    assert_eq!(pieces.len(), 15, "{avail:?}");
    for (i, p) in pieces.iter().enumerate() {
        let had = !(10..13).contains(&i);
        assert!(
            if had {
                *p == -1
            } else {
                p.as_i64().unwrap() >= 0
            },
            "piece {i}: {avail:?}"
        );
    }
    assert_eq!(avail[0]["desiredAvailable"], 0, "{avail:?}");
    let names = || support::names_in(&out.join("pack"));
    assert_eq!(names(), ["a.bin", "b.bin.part", "c.bin"]);

    c.ok("session-set", json!({"rename-partial-files": false}));
    assert_eq!(names(), ["a.bin", "b.bin", "c.bin"], "renamed at once");
    assert_eq!(get(&mut c), false);
    let kept = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert!(kept.contains("rename_partial_files = false"), "{kept}");
    c.ok("session-set", json!({"rename-partial-files": true}));
    assert_eq!(names(), ["a.bin", "b.bin", "c.bin"], "own names are kept");
    let v = c.call("session-set", json!({"rename-partial-files": "yes"}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("rename-partial-files"),
        "{v}"
    );
    rt.block_on(seeder.shutdown(Duration::from_secs(5)));
}

#[test]
fn tracker_stats_and_metrics_follow_the_embedded_tracker() {
    let dir = tempfile::tempdir().unwrap();
    let tport = support::free_port();
    let d = RpcDaemon::start(
        dir.path(),
        &format!("tracker_bind = \"127.0.0.1:{tport}\"\n"),
    );
    let mut c = d.client();
    // A seed announcing to the embedded tracker, and to a port where nothing listens.
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    write_random(&seed.join("t.bin"), 40_000, 4);
    let good = format!("http://127.0.0.1:{tport}/announce");
    let dead = format!("http://127.0.0.1:{}/announce", support::free_port());
    let meta = support::torrent(
        &seed.join("t.bin"),
        16 * 1024,
        vec![good.clone(), dead.clone()],
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
    c.ok(
        "torrent-add",
        json!({"metainfo": b64, "download-dir": seed}),
    );
    let stats = poll("both trackers to have answered or failed", 60, || {
        let t = torrent_get(&mut c, json!(null), &["trackerStats"]).pop()?;
        let st = t["trackerStats"].as_array()?.clone();
        st.iter().all(|s| s["hasAnnounced"] == true).then_some(st)
    });
    let (g, x) = (&stats[0], &stats[1]);
    assert_eq!(g["announce"], good.as_str());
    assert_eq!(g["host"], format!("http://127.0.0.1:{tport}"));
    assert_eq!(g["sitename"], "127.0.0.1");
    assert_eq!(g["scrape"], format!("http://127.0.0.1:{tport}/scrape"));
    assert_eq!(g["lastAnnounceSucceeded"], true, "{g}");
    assert_eq!(g["lastAnnounceResult"], "Success");
    assert_eq!(g["seederCount"], 1, "we are its seeder: {g}");
    // It counts the downloads it saw complete and the leechers still downloading (BEP 21).
    assert_eq!(
        (
            &g["leecherCount"],
            &g["downloadCount"],
            &g["downloader_count"]
        ),
        (&json!(0), &json!(0), &json!(0)),
        "{g}"
    );
    assert_eq!(x["downloader_count"], -1, "no answer, no count: {x}");
    let (at, next) = (
        g["lastAnnounceTime"].as_i64().unwrap(),
        g["nextAnnounceTime"].as_i64().unwrap(),
    );
    assert!(at > 1_700_000_000 && next > at, "{g}");
    assert_eq!(x["announce"], dead.as_str());
    assert_eq!(x["lastAnnounceSucceeded"], false, "{x}");
    assert!(!x["lastAnnounceResult"].as_str().unwrap().is_empty(), "{x}");
    assert_eq!(x["tier"], 1);

    // One scrape reaches the tracker.
    let r = request(
        tport,
        "GET",
        &format!("/scrape?info_hash={}", "%AA".repeat(20)),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{r:?}");
    let r = request(tport, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let own = parse_metrics(&r.body);
    assert_eq!(own["btorrent_tracker_scrapes_total"], 1.0, "{}", r.body);
    assert!(own["btorrent_tracker_announces_total"] >= 1.0, "{}", r.body);
    assert_eq!(
        own["btorrent_tracker_peers{role=\"seeder\"}"], 1.0,
        "{}",
        r.body
    );
    let r = request(d.port, "GET", "/metrics", &[], b"");
    let m = parse_metrics(&r.body);
    assert_eq!(m["btorrent_tracker_scrapes_total"], 1.0, "{}", r.body);
    assert_eq!(m["btorrent_torrents{state=\"seeding\"}"], 1.0);
    assert!(m.contains_key("btorrent_download_rate_bytes"));
    // Each family is declared once.
    let types = r
        .body
        .lines()
        .filter(|l| l.starts_with("# TYPE btorrent_torrents "))
        .count();
    assert_eq!(types, 1);
}

#[test]
fn torrent_reannounce_asks_the_tracker_again_before_its_interval() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A tracker that wants an announce an hour from now, and allows one every second.
    let (base, seen) = rt.block_on(support::tracker::http_double(|_| {
        (
            200,
            b"d8:intervali3600e12:min intervali1e5:peers0:e".to_vec(),
        )
    }));
    let announces = || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("/announce?"))
            .count()
    };
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    write_random(&seed.join("r.bin"), 2 << 20, 5);
    let meta = support::torrent(
        &seed.join("r.bin"),
        64 * 1024,
        vec![format!("{base}/announce")],
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
    c.ok(
        "torrent-add",
        json!({"metainfo": b64, "download-dir": seed}),
    );
    poll("the first announce", 30, || {
        (announces() >= 1).then_some(())
    });
    // A slow leecher keeps the seed company, so it is not short of peers (which alone would make it
    // announce at every min interval).
    let port = c.ok("session-get", json!({"fields": ["peer-port"]}))["peer-port"]
        .as_u64()
        .unwrap();
    let seed_addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cfg = btorrent::engine::SessionConfig {
        download_limit: Some(20_000),
        ..Default::default()
    };
    let (leecher, _h) = rt.block_on(support::leecher_with(
        cfg,
        &meta,
        &dir.path().join("leech"),
        vec![seed_addr],
    ));
    poll("the leecher to connect", 30, || {
        let t = torrent_get(&mut c, json!(null), &["peersConnected"]).pop()?;
        (t["peersConnected"] == 1).then_some(())
    });
    let before = announces();
    c.ok(
        "torrent-reannounce",
        json!({"ids": [meta.info_hash.to_hex()]}),
    );
    // Well before the hour the tracker asked for, however busy the machine.
    poll("the announce asked for", 60, || {
        (announces() > before).then_some(())
    });
    rt.block_on(leecher.shutdown(Duration::from_secs(2)));
}

/// A one-shot `btorrent start` while the daemon runs hands the torrent to the daemon, which
/// downloads it; the command follows it there and ends when it completes.
#[test]
fn a_one_shot_start_hands_its_torrent_to_the_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    write_random(&src.join("album.bin"), 600_000, 6);
    let meta = support::torrent(&src.join("album.bin"), 32 * 1024, vec![]);
    let file = dir.path().join("album.torrent");
    std::fs::write(&file, meta.as_bytes()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (seeder, h) = rt.block_on(support::seeder(&meta, &src));
    let seed_addr = seeder.listen_addr().to_string();
    let out = support::run(
        support::cli::bin()
            .args([
                "start",
                file.to_str().unwrap(),
                "-o",
                "dl",
                "--peer",
                &seed_addr,
            ])
            .current_dir(dir.path()),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("downloaded and verified"),
        "{}",
        out.stdout
    );
    assert!(
        std::fs::read(src.join("album.bin")).unwrap()
            == std::fs::read(dir.path().join("dl/album.bin")).unwrap(),
        "the downloaded data differs"
    );
    // The daemon is the one that downloaded it, and runs it now.
    let t = torrent_get(
        &mut c,
        json!([meta.info_hash.to_hex()]),
        &["downloadedEver", "status", "downloadDir"],
    );
    assert_eq!(t.len(), 1, "the daemon does not run it");
    assert!(t[0]["downloadedEver"].as_u64().unwrap() >= 600_000, "{t:?}");
    assert_eq!(t[0]["status"], 6);
    assert_eq!(
        t[0]["downloadDir"],
        dir.path().join("dl").display().to_string()
    );
    poll("torrents.toml to say seeding", 30, || {
        (managed_state(dir.path(), &meta.info_hash.to_hex()).as_deref() == Some("seeding"))
            .then_some(())
    });
    drop(h);
    rt.block_on(seeder.shutdown(Duration::from_secs(2)));
}

#[test]
fn verify_finds_rotten_data_and_set_location_moves_or_finds_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    write_random(&seed.join("v.bin"), 100_000, 7);
    let meta = support::torrent(&seed.join("v.bin"), 16 * 1024, vec![]);
    let id = add_metainfo(&mut c, &meta, &seed);
    let fields = ["status", "leftUntilDone", "downloadDir"];
    poll("the seed to be seeding", 30, || {
        let t = torrent_get(&mut c, json!([id]), &fields).pop()?;
        (t["status"] == 6).then_some(())
    });

    // Moved: the file goes, the torrent goes on from there, torrents.toml follows.
    let moved = dir.path().join("moved");
    c.ok(
        "torrent-set-location",
        json!({"ids": [id], "location": moved, "move": true}),
    );
    assert!(moved.join("v.bin").is_file() && !seed.join("v.bin").exists());
    let t = torrent_get(&mut c, json!([id]), &fields).pop().unwrap();
    assert_eq!(t["downloadDir"], moved.display().to_string());
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert_eq!(cfg.find(&meta.info_hash).unwrap().data, moved);

    // Without `move` the torrent is pointed at a folder and checks what is there, moving nothing:
    // an empty one leaves every piece to download, the one the file was moved to by hand has them.
    let empty = dir.path().join("empty");
    let by_hand = dir.path().join("by-hand");
    std::fs::create_dir_all(&by_hand).unwrap();
    std::fs::rename(moved.join("v.bin"), by_hand.join("v.bin")).unwrap();
    c.ok(
        "torrent-set-location",
        json!({"ids": [id], "location": empty}),
    );
    let t = torrent_get(&mut c, json!([id]), &fields).pop().unwrap();
    assert_eq!(t["downloadDir"], empty.display().to_string());
    assert_eq!(t["leftUntilDone"], 100_000, "nothing is there: {t}");
    assert!(by_hand.join("v.bin").is_file() && !empty.join("v.bin").exists());
    c.ok(
        "torrent-set-location",
        json!({"ids": [id], "location": by_hand, "move": false}),
    );
    poll("the found data to be seeded", 30, || {
        let t = torrent_get(&mut c, json!([id]), &fields).pop()?;
        (t["status"] == 6 && t["leftUntilDone"] == 0).then_some(())
    });
    let t = torrent_get(&mut c, json!([id]), &fields).pop().unwrap();
    assert_eq!(t["downloadDir"], by_hand.display().to_string());
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert_eq!(cfg.find(&meta.info_hash).unwrap().data, by_hand);

    // A byte rots on disk; verify finds the piece bad and withdraws it.
    support::rot_byte(&by_hand.join("v.bin"), 50_000);
    c.ok("torrent-verify", json!({"ids": [id]}));
    let t = poll("verify to withdraw the rotten piece", 30, || {
        let t = torrent_get(&mut c, json!([id]), &fields).pop()?;
        (t["leftUntilDone"].as_u64()? > 0 && t["status"] != 2).then_some(t)
    });
    assert_eq!(t["leftUntilDone"], 16 * 1024, "one piece: {t}");
}

/// `torrent-add` of a magnet link: the daemon fetches the metadata from the link's `x.pe` peer, keeps
/// the .torrent in `torrents_dir`, and downloads the data as for any other torrent.
#[test]
fn a_magnet_link_is_added_fetched_and_downloaded_through_the_rpc() {
    let rt = crate::support::runtime();
    let src = tempfile::tempdir().unwrap();
    let data = write_random(&src.path().join("clip.bin"), 700_000, 5);
    let meta = support::torrent(&src.path().join("clip.bin"), 32 * 1024, vec![]);
    let (seeder, _seeding) = rt.block_on(support::seeder(&meta, src.path()));
    let link = format!(
        "magnet:?xt=urn:btih:{}&dn=clip&x.pe={}",
        meta.info_hash.to_hex(),
        seeder.listen_addr()
    );

    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let out = dir.path().join("out");
    let a = c.ok(
        "torrent-add",
        json!({"filename": link, "download-dir": out}),
    );
    assert_eq!(a["torrent-added"]["hashString"], meta.info_hash.to_hex());
    let id = a["torrent-added"]["id"].as_i64().unwrap();
    poll("the magnet's download", 60, || {
        let t = torrent_get(&mut c, json!([id]), &["percentDone", "status"]).pop()?;
        (t["percentDone"] == 1.0).then_some(())
    });
    assert_eq!(std::fs::read(out.join("clip.bin")).unwrap(), data);
    let kept: Vec<_> = std::fs::read_dir(dir.path().join("torrents"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        kept.iter().any(|n| n == "clip.bin.torrent"),
        "the fetched .torrent is kept: {kept:?}; torrents.toml: {}",
        std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap()
    );
    rt.block_on(seeder.shutdown(Duration::from_secs(5)));
}

/// `torrent-set` speed limits (kB/s of 1000 bytes) reach the engine and torrents.toml, `torrent-get`
/// reads them back from the running torrent, and a restarted daemon gives them to the engine again.
#[test]
fn torrent_set_limits_are_live_kept_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let seed = dir.path().join("seed");
    write_random(&seed.join("l.bin"), 100_000, 9);
    let meta = support::torrent(&seed.join("l.bin"), 32 * 1024, vec![]);
    let file = dir.path().join("l.torrent");
    std::fs::write(&file, meta.as_bytes()).unwrap();
    let id = c.ok(
        "torrent-add",
        json!({"filename": file, "download-dir": seed}),
    )["torrent-added"]["id"]
        .clone();
    let fields = [
        "status",
        "uploadLimit",
        "uploadLimited",
        "downloadLimit",
        "downloadLimited",
        "honorsSessionLimits",
        "peer-limit",
        "bandwidthPriority",
    ];
    let limits = |c: &mut crate::support::rpc::Client| {
        let mut t = poll("the seed's data check", 30, || {
            let t = torrent_get(c, json!([id]), &fields).pop()?;
            (t["status"] == 6).then_some(t)
        });
        t.as_object_mut().unwrap().remove("status");
        t
    };
    assert_eq!(
        limits(&mut c),
        json!({"uploadLimit": 0, "uploadLimited": false, "downloadLimit": 0,
               "downloadLimited": false, "honorsSessionLimits": true, "peer-limit": 50,
               "bandwidthPriority": 0})
    );
    c.ok(
        "torrent-set",
        json!({"ids": [id], "uploadLimit": 30, "uploadLimited": true, "downloadLimit": 50,
               "downloadLimited": true, "honorsSessionLimits": false, "peer-limit": 7,
               "bandwidthPriority": 1}),
    );
    let set = json!({"uploadLimit": 30, "uploadLimited": true, "downloadLimit": 50,
                     "downloadLimited": true, "honorsSessionLimits": false, "peer-limit": 7,
                     "bandwidthPriority": 1});
    assert_eq!(limits(&mut c), set);
    let stored = || {
        btorrent::config::Config::load(&dir.path().join("torrents.toml"))
            .unwrap()
            .find(&meta.info_hash)
            .unwrap()
            .limits
            .engine()
    };
    let want = btorrent::engine::TorrentLimits {
        upload: Some(30_000),
        download: Some(50_000),
        honors_session_limits: false,
        max_peers: Some(7),
        priority: btorrent::engine::Priority::High,
    };
    assert_eq!(stored(), want);
    let v = c.call("torrent-set", json!({"ids": [id], "peer-limit": 0}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("peer-limit must be a whole number of peers, 1 to 65535"),
        "{v}"
    );

    // Bad input changes nothing and says why.
    let v = c.call("torrent-set", json!({"uploadLimit": "fast"}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("uploadLimit must be a whole number of kB/s"),
        "{v}"
    );
    let v = c.call(
        "torrent-set",
        json!({"uploadLimit": 5, "bandwidthPriority": 2}),
    );
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("bandwidthPriority must be -1 (low), 0 (normal) or 1 (high), not 2"),
        "{v}"
    );
    assert_eq!(limits(&mut c), set);

    // A restarted daemon resumes the torrent with its limits.
    let text = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    let entries = &text[text.find("[[torrent]]").expect("the entry")..];
    d.proc.kill();
    let d = RpcDaemon::start(dir.path(), entries);
    let mut c = d.client();
    assert_eq!(limits(&mut c), set);

    // Lifting one limit keeps the others.
    c.ok(
        "torrent-set",
        json!({"ids": [id], "uploadLimited": false, "bandwidthPriority": -1}),
    );
    assert_eq!(
        limits(&mut c),
        json!({"uploadLimit": 0, "uploadLimited": false, "downloadLimit": 50,
               "downloadLimited": true, "honorsSessionLimits": false, "peer-limit": 7,
               "bandwidthPriority": -1})
    );
    assert_eq!(
        stored(),
        btorrent::engine::TorrentLimits {
            upload: None,
            priority: btorrent::engine::Priority::Low,
            ..want
        }
    );
}

/// `torrent-rename-path` (the web client's Rename): a file, then the folder holding another,
/// renamed on disk and in `files`; recorded in torrents.toml, so a restarted daemon finds the data
/// complete under the new names. One torrent at a time; bad names and paths get a clear `result`.
#[test]
fn rename_path_renames_on_disk_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let seed = dir.path().join("seed");
    write_random(&seed.join("album/one.bin"), 70_000, 51);
    write_random(&seed.join("album/cd2/two.bin"), 30_000, 52);
    let meta = support::torrent(&seed.join("album"), 16 * 1024, vec![]);
    let id = add_metainfo(&mut c, &meta, &seed);
    let files = |c: &mut support::rpc::Client| {
        let t = torrent_get(c, json!([id]), &["files", "leftUntilDone", "status"])
            .pop()
            .unwrap();
        let names: Vec<String> = t["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect();
        (names, t)
    };
    poll("the torrent to seed", 30, || {
        (files(&mut c).1["status"] == 6).then_some(())
    });

    let r = c.ok(
        "torrent-rename-path",
        json!({"ids": [id], "path": "album/one.bin", "name": "intro.bin"}),
    );
    assert_eq!(
        r,
        json!({"path": "album/one.bin", "name": "intro.bin", "id": id})
    );
    c.ok(
        "torrent-rename-path",
        json!({"ids": [id], "path": "album/cd2", "name": "disc 2"}),
    );
    assert_eq!(files(&mut c).0, ["album/disc 2/two.bin", "album/intro.bin"]);
    assert!(seed.join("album/intro.bin").is_file() && seed.join("album/disc 2/two.bin").is_file());
    assert!(!seed.join("album/one.bin").exists() && !seed.join("album/cd2").exists());
    for (args, want) in [
        (
            json!({"ids": [id], "path": "album/none.bin", "name": "x"}),
            "not a file or folder",
        ),
        (
            json!({"ids": [id], "path": "album/intro.bin", "name": "../x"}),
            "not a plain file name",
        ),
        (
            json!({"ids": [id], "path": "album/intro.bin", "name": "disc 2"}),
            "in the torrent already",
        ),
        (json!({"ids": [id], "path": "album/intro.bin"}), "needs"),
        (
            json!({"path": "album/intro.bin", "name": "y"}),
            "one torrent",
        ),
    ] {
        let v = c.call("torrent-rename-path", args.clone());
        assert!(v["result"].as_str().unwrap().contains(want), "{args}: {v}");
    }

    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    let renamed = &cfg.find(&meta.info_hash).unwrap().files.renamed;
    assert_eq!(renamed.len(), 2, "{renamed:?}");
    let d = d.restart();
    let mut c = d.client();
    let (names, t) = poll("the restarted daemon to seed", 30, || {
        let (names, t) = files(&mut c);
        (t["status"] == 6).then_some((names, t))
    });
    assert_eq!(names, ["album/disc 2/two.bin", "album/intro.bin"]);
    assert_eq!(t["leftUntilDone"], 0, "{t}");

    // The top folder renamed: the torrent is listed under its new name too, in the RPC, the shell
    // and torrents.toml, and it still seeds from there.
    c.ok(
        "torrent-rename-path",
        json!({"ids": [id], "path": "album", "name": "Album 2026"}),
    );
    let t = torrent_get(&mut c, json!([id]), &["name", "files"])
        .pop()
        .unwrap();
    assert_eq!(t["name"], "Album 2026", "{t}");
    assert_eq!(t["files"][0]["name"], "Album 2026/disc 2/two.bin", "{t}");
    assert!(seed.join("Album 2026/intro.bin").is_file());
    let out = support::cli::ok(dir.path(), &["b-show", "Album 2026"]);
    assert!(out.contains("Album 2026"), "{out}");
    assert!(!out.contains("album"), "{out}");
}

/// Trackers changed while the daemon seeds: `torrent-set` `trackerAdd`, `trackerRemove` and
/// `trackerReplace` (`transmission-remote -td`/`-tr`) rewrite the managed .torrent, info-hash
/// unchanged, and the running torrent announces `started` to each new tracker at once; a one-shot
/// `b-edit` of that .torrent does the same through the daemon.
#[test]
fn trackers_edited_over_the_rpc_and_by_b_edit_reach_the_running_torrent() {
    use crate::support::tracker::http_double;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reply = |_: &str| (200, b"d8:intervali1800e5:peers0:e".to_vec());
    let doubles: Vec<_> = (0..4)
        .map(|_| rt.block_on(http_double(reply)))
        .map(|(base, seen)| (format!("{base}/announce"), seen))
        .collect();
    let started = |i: usize| {
        doubles[i]
            .1
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("event=started"))
            .count()
    };
    let url = |i: usize| doubles[i].0.clone();

    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let seed = dir.path().join("seed");
    write_random(&seed.join("t.bin"), 60_000, 71);
    let meta = support::torrent(&seed.join("t.bin"), 16 * 1024, vec![url(0)]);
    let id = add_metainfo(&mut c, &meta, &seed);
    poll("the first tracker's started", 30, || {
        (started(0) == 1).then_some(())
    });
    let announces = |c: &mut support::rpc::Client| -> Vec<String> {
        torrent_get(c, json!([id]), &["trackers"]).pop().unwrap()["trackers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["announce"].as_str().unwrap().to_string())
            .collect()
    };
    let managed_file = || {
        let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
        cfg.resolve(&cfg.find(&meta.info_hash).unwrap().file)
    };
    let on_disk = || btorrent::metainfo::Metainfo::load(&managed_file()).unwrap();

    c.ok("torrent-set", json!({"ids": [id], "trackerAdd": [url(1)]}));
    poll("the added tracker's started", 30, || {
        (started(1) == 1).then_some(())
    });
    assert_eq!(announces(&mut c), [url(0), url(1)]);
    assert_eq!(on_disk().trackers(), [url(0), url(1)]);
    assert_eq!(on_disk().info_hash, meta.info_hash);

    c.ok(
        "torrent-set",
        json!({"ids": [id], "trackerRemove": [0], "trackerReplace": [1, url(2)]}),
    );
    poll("the replacing tracker's started", 30, || {
        (started(2) == 1).then_some(())
    });
    assert_eq!(announces(&mut c), [url(2)]);
    assert_eq!(on_disk().trackers(), [url(2)]);
    let v = c.call("torrent-set", json!({"ids": [id], "trackerRemove": [5]}));
    assert!(
        v["result"].as_str().unwrap().contains("no tracker 5"),
        "{v}"
    );

    // b-edit, one-shot, on the managed .torrent: the daemon's torrent follows.
    let file = managed_file();
    support::cli::ok(dir.path(), &["b-edit", file.to_str().unwrap(), &url(3)]);
    poll("b-edit's tracker's started", 30, || {
        (started(3) == 1).then_some(())
    });
    assert_eq!(announces(&mut c), [url(3)]);
    assert_eq!(
        started(0),
        1,
        "the first tracker was not announced to again"
    );
}

/// Labels: given with `torrent-add`, replaced and cleared by `torrent-set`, shown by `torrent-get`,
/// refused with a reason when malformed (nothing changes), kept in torrents.toml across a restart,
/// and the same list for a one-shot `b-label` and `b-show --label`.
#[test]
fn labels_are_given_changed_and_kept_over_the_rpc_and_b_label() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let seed = dir.path().join("seed");
    write_random(&seed.join("show.bin"), 40_000, 81);
    let meta = support::torrent(&seed.join("show.bin"), 16 * 1024, vec![]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
    let id = c.ok(
        "torrent-add",
        json!({"metainfo": b64, "download-dir": seed, "labels": [" tv ", "hd", "tv"]}),
    )["torrent-added"]["id"]
        .clone();
    let labels = |c: &mut support::rpc::Client| {
        torrent_get(c, json!([id]), &["labels"]).pop().unwrap()["labels"].clone()
    };
    assert_eq!(labels(&mut c), json!(["tv", "hd"]));

    c.ok(
        "torrent-set",
        json!({"ids": [id], "labels": ["films", "4k"]}),
    );
    assert_eq!(labels(&mut c), json!(["films", "4k"]));
    for (bad, want) in [
        (json!(["a,b"]), "comma"),
        (json!(["  "]), "empty"),
        (json!("films"), "list of strings"),
        (json!([1]), "list of strings"),
        (json!(["x".repeat(129)]), "at most 128"),
    ] {
        let v = c.call("torrent-set", json!({"ids": [id], "labels": bad}));
        assert!(v["result"].as_str().unwrap().contains(want), "{bad}: {v}");
    }
    let v = c.call(
        "torrent-add",
        json!({"filename": "/nowhere.torrent", "labels": ["a\nb"]}),
    );
    assert!(v["result"].as_str().unwrap().contains("control"), "{v}");
    assert_eq!(
        labels(&mut c),
        json!(["films", "4k"]),
        "a refused set changed nothing"
    );

    // One-shot b-label reaches the same entry; b-show filters by label.
    let hash = meta.info_hash.to_hex();
    let out = support::cli::ok(dir.path(), &["b-label", &hash, "kids", "--add"]);
    assert!(out.contains("show.bin: films, 4k, kids"), "{out}");
    assert_eq!(labels(&mut c), json!(["films", "4k", "kids"]));
    let out = support::cli::ok(dir.path(), &["b-show", "--label", "kids"]);
    assert!(
        out.contains("show.bin") && out.contains("films, 4k, kids"),
        "{out}"
    );
    let out = support::cli::ok(dir.path(), &["b-show", "--label", "news"]);
    assert!(
        out.contains("no managed torrent has the label news"),
        "{out}"
    );
    let out = support::cli::ok(dir.path(), &["b-label", &hash, "4k", "--remove"]);
    assert!(out.contains("show.bin: films, kids"), "{out}");
    let out = support::cli::run(dir.path(), &["b-label", &hash, "a,b"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("comma"),
        "{out:?}"
    );

    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert_eq!(cfg.find(&meta.info_hash).unwrap().labels, ["films", "kids"]);
    let d = d.restart();
    let mut c = d.client();
    let kept = poll("the restarted daemon to list the torrent", 30, || {
        torrent_get(&mut c, json!([id]), &["labels"]).pop()
    });
    assert_eq!(kept["labels"], json!(["films", "kids"]));
    c.ok("torrent-set", json!({"ids": [id], "labels": []}));
    assert_eq!(labels(&mut c), json!([]));
    let out = support::cli::ok(dir.path(), &["b-label", &hash]);
    assert!(out.contains("show.bin: no labels"), "{out}");
}

/// Adds `meta` over the RPC (base64 `metainfo`) into `dir`; its id.
fn add_metainfo(
    c: &mut support::rpc::Client,
    meta: &btorrent::metainfo::Metainfo,
    dir: &std::path::Path,
) -> serde_json::Value {
    let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
    c.ok("torrent-add", json!({"metainfo": b64, "download-dir": dir}))["torrent-added"]["id"]
        .clone()
}

/// An empty `ids` list names no torrent, as Transmission reads it: a client whose selection came
/// out empty lists, stops and removes nothing (it must not remove every torrent with its data);
/// no `ids` at all names every torrent.
#[test]
fn an_empty_ids_list_names_no_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (meta, _) = c.add_seeding(dir.path(), 61);
    assert!(torrent_get(&mut c, json!([]), &["id"]).is_empty());
    c.ok("torrent-stop", json!({"ids": []}));
    c.ok(
        "torrent-remove",
        json!({"ids": [], "delete-local-data": true}),
    );
    let all = torrent_get(&mut c, json!(null), &["hashString", "status"]);
    assert_eq!(
        all,
        [json!({"hashString": meta.info_hash.to_hex(), "status": 6})],
        "still there, still seeding"
    );
    assert!(dir.path().join("seed/s.bin").exists());
}
