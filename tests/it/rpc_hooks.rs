//! The programs run on torrent events (Transmission's `script-torrent-added`, `-done` and
//! `-done-seeding`), set through the RPC of `btorrent daemon`: each runs once for its event, in
//! `/`, with the torrent in its environment under Transmission's names (its RPC id among them); a
//! torrent resumed by a restarted daemon is not "added" again; a program that cannot run is refused
//! by `session-set`, changing nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::support::rpc::{poll, torrent_get, RpcDaemon};
use crate::support::tracker::seeded_behind_a_tracker;
use crate::support::{self, write_random};

/// Writes an executable program that appends its environment to `<tag>.log` beside it, one line
/// per run, says something on its output (the log at `-v`) and ends with `status`.
pub(crate) fn recorder(dir: &Path, tag: &str, status: i32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(format!("{tag}.sh"));
    let log = dir.join(format!("{tag}.log"));
    let vars = [
        "TR_TORRENT_NAME",
        "TR_TORRENT_HASH",
        "TR_TORRENT_DIR",
        "TR_TORRENT_ID",
        "TR_TORRENT_LABELS",
        "TR_TORRENT_BYTES_DOWNLOADED",
        "TR_TORRENT_TRACKERS",
        "TR_APP_VERSION",
        "TR_TIME_LOCALTIME",
    ];
    let fields: Vec<String> = vars.iter().map(|v| format!("{v}=${v}")).collect();
    let body = format!(
        "#!/bin/sh\necho \"PWD=$(pwd)|{}\" >> '{}'\necho \"{tag} ran for $TR_TORRENT_NAME\"\nexit {status}\n",
        fields.join("|"),
        log.display()
    );
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Each run `<tag>.log` recorded, as its variables.
pub(crate) fn runs(dir: &Path, tag: &str) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(dir.join(format!("{tag}.log"))).unwrap_or_default();
    text.lines()
        .map(|l| {
            l.split('|')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn programs_run_when_a_torrent_is_added_completes_and_reaches_its_seeding_goal() {
    let rt = support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let progs = dir.path().join("programs");
    std::fs::create_dir_all(&progs).unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let [added, done, seeding] =
        [("added", 0), ("done", 0), ("seeding", 3)].map(|(t, status)| recorder(&progs, t, status));
    c.ok(
        "session-set",
        json!({
            "script-torrent-added-enabled": true, "script-torrent-added-filename": added,
            "script-torrent-done-enabled": true, "script-torrent-done-filename": done,
            "script-torrent-done-seeding-filename": seeding,
        }),
    );
    let s = c.ok(
        "session-get",
        json!({"fields": ["script-torrent-done-enabled", "script-torrent-done-filename", "script-torrent-done-seeding-enabled"]}),
    );
    assert_eq!(
        s,
        json!({"script-torrent-done-enabled": true, "script-torrent-done-filename": done,
               "script-torrent-done-seeding-enabled": true})
    );
    // A program that cannot run is refused, and nothing changes.
    let v = c.call(
        "session-set",
        json!({"script-torrent-done-filename": "/no/such/program"}),
    );
    assert!(
        v["result"].as_str().unwrap().contains("/no/such/program"),
        "{v}"
    );

    // The data, seeded by a session of the test's own that the torrent's tracker names.
    let src = dir.path().join("src");
    let (seeder, announced) =
        seeded_behind_a_tracker(&rt, Default::default(), &src, "album.bin", 300_000, 71);
    // The same torrent without the tracker, for a leecher that knows only the daemon.
    let meta = support::torrent(&src.join("album.bin"), 16 * 1024, vec![]);
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(announced.as_bytes())
    };
    let downloads = dir.path().join("downloads");
    let a = c.ok(
        "torrent-add",
        json!({"metainfo": b64, "download-dir": downloads, "labels": ["music", "flac"]}),
    );
    let id = a["torrent-added"]["id"].as_i64().unwrap();
    let hash = meta.info_hash.to_hex();

    let run = poll("the added program to run", 30, || {
        runs(&progs, "added").pop()
    });
    assert_eq!(run["TR_TORRENT_NAME"], "album.bin");
    assert_eq!(run["TR_TORRENT_HASH"], hash);
    assert_eq!(run["TR_TORRENT_ID"], id.to_string());
    assert_eq!(run["TR_TORRENT_LABELS"], "music,flac");
    assert_eq!(run["TR_TORRENT_DIR"], downloads.display().to_string());
    assert_eq!(run["PWD"], "/");
    assert!(run["TR_APP_VERSION"].starts_with("btorrent "), "{run:?}");
    assert_eq!(run["TR_TIME_LOCALTIME"].split(' ').count(), 5, "{run:?}");

    let run = poll("the done program to run", 60, || runs(&progs, "done").pop());
    assert_eq!(run["TR_TORRENT_HASH"], hash);
    assert_eq!(run["TR_TORRENT_TRACKERS"], "127.0.0.1");
    let got: u64 = run["TR_TORRENT_BYTES_DOWNLOADED"].parse().unwrap();
    assert!(got >= 300_000, "{run:?}");
    let t = torrent_get(&mut c, json!([id]), &["percentDone"]);
    assert_eq!(t[0]["percentDone"], 1.0);

    // A ratio goal of 0.1: a leecher takes 30 KB from the daemon, and the goal stops it.
    c.ok(
        "torrent-set",
        json!({"ids": [id], "seedRatioMode": 1, "seedRatioLimit": 0.1}),
    );
    let port = c.ok("session-get", json!({"fields": ["peer-port"]}))["peer-port"]
        .as_u64()
        .unwrap() as u16;
    let out = tempfile::tempdir().unwrap();
    let (_leecher, _lh) = rt.block_on(support::leecher(
        &meta,
        out.path(),
        vec![([127, 0, 0, 1], port).into()],
    ));
    let run = poll("the done-seeding program to run", 60, || {
        runs(&progs, "seeding").pop()
    });
    assert_eq!(run["TR_TORRENT_HASH"], hash);
    assert_eq!(runs(&progs, "done").len(), 1, "done ran once");
    // It failed: the daemon's log says so.
    poll("the program's failure in the daemon's log", 30, || {
        let log = d.proc.log_text();
        let line = log
            .lines()
            .find(|l| l.contains("seeding.sh for album.bin"))?;
        line.contains("exit status: 3").then_some(())
    });

    // Restarted, the daemon resumes the torrent: not an addition. A new torrent is one.
    let d = d.restart();
    let mut c = d.client();
    poll("the restarted daemon to list the torrent", 30, || {
        (torrent_get(&mut c, json!(null), &["id"]).len() == 1).then_some(())
    });
    let seeds = dir.path().join("seeds");
    let (meta2, _) = {
        write_random(&seeds.join("second.bin"), 20_000, 72);
        let m = support::torrent(&seeds.join("second.bin"), 16 * 1024, vec![]);
        let b64 = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(m.as_bytes())
        };
        let a = c.ok(
            "torrent-add",
            json!({"metainfo": b64, "download-dir": seeds}),
        );
        (m, a)
    };
    poll(
        "the added program to run for the second torrent",
        30,
        || {
            let all = runs(&progs, "added");
            all.iter()
                .any(|r| r["TR_TORRENT_HASH"] == meta2.info_hash.to_hex())
                .then_some(())
        },
    );
    let hashes: Vec<String> = runs(&progs, "added")
        .iter()
        .map(|r| r["TR_TORRENT_HASH"].clone())
        .collect();
    assert_eq!(
        hashes,
        [hash, meta2.info_hash.to_hex()],
        "resumed is not added"
    );
    // Complete from the start: no download completed, so the done program did not run.
    assert_eq!(runs(&progs, "done").len(), 1);
    drop(seeder);
}
