//! The DHT from the command line, on a local testnet: `b-create --no-tracker` and `b-start` of the
//! trackerless torrent in separate processes, and `b-dht` in a script host and one-shot.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::cli::{bin, downloaded, ok};
use crate::support::dht::testnet;
use crate::support::host::ScriptRig;
use crate::support::{random_bytes, Proc};
use btorrent::Metainfo;

use crate::support::dht::{anyone_announced, cli_settings as dht_settings, folder as node};

#[test]
fn trackerless_create_seed_and_start_over_the_dht() {
    let net = testnet(5);
    let root = tempfile::tempdir().unwrap();
    let settings = dht_settings(&net.bootstrap);
    let seed_dir = node(root.path(), "seed", &settings);
    let leech_dir = node(root.path(), "leech", &settings);
    let bytes = random_bytes(700_001, 9);
    std::fs::write(seed_dir.join("song.ogg"), &bytes).unwrap();

    let err = bin()
        .args(["create", "song.ogg", "http://t/announce", "--no-tracker"])
        .current_dir(&seed_dir)
        .output()
        .unwrap();
    assert!(!err.status.success());
    let created = ok(&seed_dir, &["create", "song.ogg", "--no-tracker"]);
    assert!(
        created.contains("(none: peers come from the DHT)"),
        "{created}"
    );
    let torrent = seed_dir.join("torrents/song.ogg.torrent");
    let meta = Metainfo::load(&torrent).unwrap();
    assert!(meta.trackers().is_empty());

    let _seed = Proc::spawn(
        bin()
            .env_remove("BTORRENT_DHT")
            .args(["seed", "torrents/song.ogg.torrent", "--data", "."])
            .current_dir(&seed_dir)
            .stdout(Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !anyone_announced(&net, meta.info_hash.0) {
        assert!(
            Instant::now() < deadline,
            "the seeder never announced on the DHT"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let out = bin()
        .env_remove("BTORRENT_DHT")
        .args([
            "start",
            torrent.to_str().unwrap(),
            "-o",
            "dl",
            "--stall",
            "60",
        ])
        .current_dir(&leech_dir)
        .output()
        .unwrap();
    downloaded(&out);
    assert_eq!(std::fs::read(leech_dir.join("dl/song.ogg")).unwrap(), bytes);
    assert!(leech_dir.join(".btorrent/resume/dht.nodes").exists());
}

#[test]
fn b_dht_says_nodes_known_and_lookups_in_flight() {
    let net = testnet(4);
    let rig = ScriptRig::new(&dht_settings(&net.bootstrap), None);
    std::fs::write(rig.path("a.bin"), random_bytes(50_000, 2)).unwrap();
    // A seeded torrent starts the peer session, and with it the DHT node.
    let src = format!(
        "let t = create({:?}, \"\"); seed(t.path, {:?});",
        rig.path("a.bin"),
        rig.path("")
    );
    rig.script("seed.rhai", &src);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = rig.host.run_command("b-dht", &[]).unwrap();
        let m = d.cast::<rhai::Map>();
        let nodes = m["nodes"].as_int().unwrap();
        if m["running"].as_bool().unwrap() && nodes >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the node knows nobody: {m:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        rig.count("nodes known") >= 1 && rig.count("in flight") >= 1,
        "{:?}",
        rig.lines.lock()
    );

    // One-shot: no session here, none running for this torrents.toml; then a daemon runs one, which
    // the one-shot command asks; and with the DHT turned off.
    let root = tempfile::tempdir().unwrap();
    let on = node(root.path(), "on", &dht_settings(&net.bootstrap));
    let one_shot = |dir: &Path| {
        let out = bin()
            .env_remove("BTORRENT_DHT")
            .arg("dht")
            .current_dir(dir)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let out = one_shot(&on);
    assert!(out.contains("DHT on, not running"), "{out}");
    std::fs::write(on.join("b.bin"), random_bytes(30_000, 3)).unwrap();
    ok(&on, &["create", "b.bin", "--no-tracker"]);
    let _daemon = Proc::spawn(
        bin()
            .env_remove("BTORRENT_DHT")
            .arg("daemon")
            .current_dir(&on)
            .stdout(Stdio::null()),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = one_shot(&on);
        if out.starts_with("DHT: ") && !out.starts_with("DHT: 0 nodes") {
            assert!(
                out.contains("nodes known") && out.contains("in flight"),
                "{out}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the daemon's DHT: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let off = node(root.path(), "off", "dht = false");
    assert!(ok(&off, &["dht"]).contains("DHT off"));
}
