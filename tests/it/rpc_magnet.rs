//! `torrent-add` of a magnet link answers at once, as Transmission does: the torrent is listed while
//! its metadata is fetched (no size yet, the link's name, `metadataPercentComplete`), can be paused,
//! resumed and removed meanwhile, is taken up again by a restarted daemon, and once the metadata is
//! in downloads as the request asked, under the same id, with what `torrent-set` asked meanwhile.
//! `btorrent show` lists it too while it fetches.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::data::write_random;
use crate::support::engine::{seeder, torrent};
use crate::support::process::free_port;
use crate::support::rpc::{parse_metrics, poll, request, torrent_get, Client, RpcDaemon};

const FIELDS: [&str; 12] = [
    "id",
    "name",
    "hashString",
    "status",
    "metadataPercentComplete",
    "totalSize",
    "percentDone",
    "magnetLink",
    "downloadDir",
    "labels",
    "error",
    "errorString",
];

/// The record the daemon keeps of a magnet it is fetching (`None`: none).
fn record(home: &Path, hash: &str) -> Option<Value> {
    let file = home.join(format!("torrents/adding/{hash}.json"));
    let text = std::fs::read(file).ok()?;
    Some(serde_json::from_slice(&text).unwrap())
}

fn the_one(c: &mut Client, id: i64) -> Value {
    let mut list = torrent_get(c, json!([id]), &FIELDS);
    assert_eq!(list.len(), 1, "torrent {id}: {list:?}");
    list.pop().unwrap()
}

#[test]
fn a_magnet_is_listed_at_once_and_can_be_paused_resumed_and_removed_before_its_metadata_comes() {
    let home = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(home.path(), "");
    let mut c = d.client();
    let hash = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";
    // Its one peer listens nowhere: the metadata never comes.
    let link = format!(
        "magnet:?xt=urn:btih:{hash}&dn=far+away&x.pe=127.0.0.1:{}&tr=http%3A%2F%2F127.0.0.1%3A9%2Fannounce",
        free_port()
    );
    let dl = home.path().join("dl");
    let a = c.ok(
        "torrent-add",
        json!({"filename": link, "download-dir": dl, "labels": ["tv"]}),
    );
    let id = a["torrent-added"]["id"].as_i64().unwrap();
    assert_eq!(a["torrent-added"]["name"], "far away");
    assert_eq!(a["torrent-added"]["hashString"], hash);

    let t = the_one(&mut c, id);
    assert_eq!(
        t,
        json!({"id": id, "name": "far away", "hashString": hash, "status": 4,
               "metadataPercentComplete": 0.0, "totalSize": 0, "percentDone": 0.0,
               "magnetLink": link, "downloadDir": dl.display().to_string(), "labels": ["tv"],
               "error": 0, "errorString": ""})
    );
    let trackers = torrent_get(&mut c, json!(hash), &["trackers"])
        .pop()
        .unwrap();
    assert_eq!(
        trackers["trackers"][0]["announce"],
        "http://127.0.0.1:9/announce"
    );
    let active = c.ok(
        "torrent-get",
        json!({"ids": "recently-active", "fields": ["id"]}),
    );
    assert_eq!(active["torrents"], json!([{"id": id}]));
    assert_eq!(record(home.path(), hash).unwrap()["link"], link);

    // `btorrent show` (one-shot, answered by the daemon) lists it below the torrents, by its
    // name; so does a script's `fetching()`.
    let shown = crate::support::cli::ok(home.path(), &["show"]);
    let row = shown
        .lines()
        .find(|l| l.contains("far away"))
        .unwrap_or_else(|| panic!("no row for the magnet:\n{shown}"));
    assert!(
        row.contains(&hash[..12]) && row.contains("fetching metadata"),
        "{shown}"
    );
    assert!(shown.contains("no managed torrents yet"), "{shown}");
    std::fs::create_dir_all(home.path().join("scripts")).unwrap();
    std::fs::write(
        home.path().join("scripts/b-fetching.rhai"),
        "for f in fetching() { print(`${f.info_hash} ${f.name} ${f.peers} ${f.seconds >= 0}`); }",
    )
    .unwrap();
    assert_eq!(
        crate::support::cli::ok(home.path(), &["fetching"]),
        format!("{hash} far away 0 true\n")
    );

    // The same link again is the same torrent.
    let again = c.ok("torrent-add", json!({"filename": link}));
    assert_eq!(again["torrent-duplicate"]["id"], id);
    // Its trackers can be asked again; it has no files to rename yet.
    c.ok("torrent-reannounce", json!({"ids": [id]}));
    let renamed = c.call(
        "torrent-rename-path",
        json!({"ids": [id], "path": "far away", "name": "near"}),
    );
    assert_eq!(
        renamed["result"],
        "torrent-rename-path: far away has no files yet (its metadata is still being fetched)"
    );

    let counts = |c: &mut Client| {
        let s = c.ok("session-stats", json!({}));
        (s["torrentCount"].clone(), s["activeTorrentCount"].clone())
    };
    assert_eq!(counts(&mut c), (json!(1), json!(1)));
    let metrics = parse_metrics(&request(d.port, "GET", "/metrics", &[], b"").body);
    assert_eq!(metrics["btorrent_torrents{state=\"metadata\"}"], 1.0);

    // Paused, it stays paused across a restart; started, it fetches again.
    c.ok("torrent-stop", json!({"ids": [id]}));
    assert_eq!(the_one(&mut c, id)["status"], 0);
    poll("the stopped fetch to leave fetching()", 30, || {
        crate::support::cli::ok(home.path(), &["fetching"])
            .is_empty()
            .then_some(())
    });
    assert_eq!(counts(&mut c), (json!(1), json!(0)));
    let dl = home.path().join("dl2");
    c.ok(
        "torrent-set-location",
        json!({"ids": [id], "location": dl, "move": true}),
    );
    assert_eq!(the_one(&mut c, id)["downloadDir"], dl.display().to_string());
    assert_eq!(
        record(home.path(), hash).unwrap()["request"]["paused"],
        true
    );
    // A record that is not one is left alone (and logged): it lists nothing.
    let bad = home.path().join("torrents/adding/0000.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let d = d.restart();
    let mut c = d.client();
    let listed = torrent_get(&mut c, json!(null), &FIELDS);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let id = listed[0]["id"].as_i64().unwrap();
    assert_eq!(listed[0]["name"], "far away");
    assert_eq!(listed[0]["status"], 0);
    assert_eq!(listed[0]["labels"], json!(["tv"]));
    assert!(bad.exists());
    assert_eq!(listed[0]["downloadDir"], dl.display().to_string());
    c.ok("torrent-start", json!({"ids": [hash]}));
    assert_eq!(the_one(&mut c, id)["status"], 4);
    assert_eq!(
        record(home.path(), hash).unwrap()["request"]["paused"],
        false
    );

    // Removed, it is gone, and said to be.
    c.ok(
        "torrent-remove",
        json!({"ids": [id], "delete-local-data": true}),
    );
    assert!(torrent_get(&mut c, json!(null), &["id"]).is_empty());
    assert!(record(home.path(), hash).is_none());
    let active = c.ok(
        "torrent-get",
        json!({"ids": "recently-active", "fields": ["id"]}),
    );
    assert_eq!(active["removed"], json!([id]));
    assert!(!dl.exists(), "nothing was written for it");
}

#[test]
fn a_magnet_added_paused_downloads_as_asked_once_started() {
    let root = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seed_dir = root.path().join("seed");
    let data = write_random(&seed_dir.join("show.bin"), 300_000, 4);
    let meta = torrent(&seed_dir.join("show.bin"), 16 * 1024, vec![]);
    let (seed, _h) = rt.block_on(seeder(&meta, &seed_dir));
    let home = root.path().join("daemon");
    std::fs::create_dir_all(&home).unwrap();
    let d = RpcDaemon::start(&home, "");
    let mut c = d.client();
    let hash = meta.info_hash.to_hex();
    let link = format!(
        "magnet:?xt=urn:btih:{hash}&dn=show&x.pe={}",
        seed.listen_addr()
    );
    let dl = root.path().join("dl");
    let a = c.ok(
        "torrent-add",
        json!({"filename": link, "download-dir": dl, "paused": true, "labels": ["kept"]}),
    );
    let id = a["torrent-added"]["id"].as_i64().unwrap();
    let t = the_one(&mut c, id);
    assert_eq!(
        (t["status"].clone(), t["totalSize"].clone()),
        (json!(0), json!(0))
    );

    // What is set before the metadata comes is checked at once and applied once it runs (as
    // Sonarr and Radarr set an indexer's seeding goals just after adding).
    let bad = c.call("torrent-set", json!({"ids": [id], "seedRatioMode": 7}));
    assert!(
        bad["result"].as_str().unwrap().contains("seedRatioMode"),
        "{bad}"
    );
    let bad = c.call("torrent-set", json!({"ids": [id], "trackerRemove": [0]}));
    assert!(bad["result"].as_str().unwrap().contains('0'), "{bad}");
    c.ok(
        "torrent-set",
        json!({"ids": [id], "labels": ["later"], "seedRatioLimit": 2.5, "seedRatioMode": 1,
               "uploadLimit": 100, "uploadLimited": true}),
    );
    let goals = ["labels", "seedRatioLimit", "seedRatioMode"];
    let t = torrent_get(&mut c, json!([id]), &goals).pop().unwrap();
    assert_eq!(
        t,
        json!({"labels": ["later"], "seedRatioLimit": 2.5, "seedRatioMode": 1})
    );

    c.ok("torrent-start", json!({"ids": [id]}));
    let t = poll("the magnet's download", 60, || {
        let t = torrent_get(&mut c, json!([id]), &FIELDS).pop()?;
        (t["percentDone"] == 1.0).then_some(t)
    });
    assert_eq!(t["id"], id, "the id it was added under");
    assert_eq!(t["name"], "show.bin");
    assert_eq!(t["totalSize"], 300_000);
    assert_eq!(t["metadataPercentComplete"], 1.0);
    assert_eq!(t["downloadDir"], dl.display().to_string());
    let set = [
        "labels",
        "seedRatioLimit",
        "seedRatioMode",
        "uploadLimit",
        "uploadLimited",
    ];
    let t = poll("what was set, on the torrent", 30, || {
        let t = torrent_get(&mut c, json!([id]), &set).pop()?;
        (t["uploadLimited"] == true).then_some(t)
    });
    assert_eq!(
        t,
        json!({"labels": ["later"], "seedRatioLimit": 2.5, "seedRatioMode": 1,
               "uploadLimit": 100, "uploadLimited": true})
    );
    assert_eq!(std::fs::read(dl.join("show.bin")).unwrap(), data);
    assert!(
        record(&home, &hash).is_none(),
        "its record goes once it runs"
    );
    let cfg = btorrent::config::Config::load(&home.join("torrents.toml")).unwrap();
    let entry = cfg.find(&meta.info_hash).expect("managed");
    assert_eq!(entry.labels, ["later"]);
    assert!(home.join("torrents/show.bin.torrent").is_file());
}

/// The .torrent of a magnet still fetching its metadata, added meanwhile, takes its place: one
/// torrent, the id the magnet was given, and the fetch ends.
#[test]
fn a_torrent_file_added_while_its_magnet_fetches_takes_its_place() {
    use base64::Engine as _;
    let home = tempfile::tempdir().unwrap();
    let seed = home.path().join("seed");
    write_random(&seed.join("ep.bin"), 100_000, 6);
    let meta = torrent(&seed.join("ep.bin"), 16 * 1024, vec![]);
    let hash = meta.info_hash.to_hex();
    let d = RpcDaemon::start(home.path(), "");
    let mut c = d.client();
    let link = format!(
        "magnet:?xt=urn:btih:{hash}&dn=ep&x.pe=127.0.0.1:{}",
        free_port()
    );
    let a = c.ok("torrent-add", json!({"filename": link}));
    let id = a["torrent-added"]["id"].as_i64().unwrap();
    assert!(record(home.path(), &hash).is_some());

    let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
    let a = c.ok(
        "torrent-add",
        json!({"metainfo": b64, "download-dir": seed}),
    );
    assert_eq!(a["torrent-added"]["id"], id);
    assert!(record(home.path(), &hash).is_none());
    let t = poll("the torrent to seed", 30, || {
        let list = torrent_get(&mut c, json!(null), &["id", "status", "totalSize"]);
        (list.len() == 1 && list[0]["status"] == 6).then(|| list[0].clone())
    });
    assert_eq!(t, json!({"id": id, "status": 6, "totalSize": 100_000}));
}
