//! Mutable torrents (BEP 46) on a DHT of a few nodes on 127.0.0.1: a session publishes a torrent's
//! info-hash under its key, another resolves the key's mutable link to it, the publisher moves the
//! pointer to another torrent and the link then resolves to that one; a salt keeps a second
//! pointer under the same key apart.

use std::time::Duration;

use btorrent::engine::mutable_torrent::public_key;
use btorrent::engine::Session;
use btorrent::mutable_link::MutableLink;
use btorrent::types::InfoHash;

use crate::support::dht::{
    anyone_announced, cli_settings as dht_settings, folder, session_config, testnet,
};
use crate::support::engine::session_with;
use crate::support::wait::wait_until_async;

/// Waits until `link` resolves to `want` (a put reaches the nodes while it returns).
async fn resolves_to(s: &Session, link: &MutableLink, want: InfoHash, seq: i64) {
    wait_until_async(
        &format!("the link to point at {want}"),
        Duration::from_secs(60),
        || async {
            let r = s.resolve_mutable(link).await.unwrap();
            r.is_some_and(|r| r.info_hash == want && r.seq == seq)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_pointer_resolves_and_moves_with_the_publisher() {
    crate::support::init_logs();
    let net = tokio::task::spawn_blocking(|| testnet(6)).await.unwrap();
    let publisher = session_with(session_config(&net.bootstrap)).await;
    let reader = session_with(session_config(&net.bootstrap)).await;
    let secret = [42u8; 32];
    let link = MutableLink {
        public_key: public_key(&secret),
        salt: None,
        name: Some("photos".into()),
    };
    // Nothing published yet: nothing found.
    assert_eq!(reader.resolve_mutable(&link).await.unwrap(), None);

    let (v1, v2) = (InfoHash([1; 20]), InfoHash([2; 20]));
    publisher
        .publish_mutable(&secret, None, v1, 1)
        .await
        .unwrap();
    resolves_to(&reader, &link, v1, 1).await;
    // The next version: the same link, the new torrent.
    publisher
        .publish_mutable(&secret, None, v2, 2)
        .await
        .unwrap();
    resolves_to(&reader, &link, v2, 2).await;

    // A salt is another pointer under the same key.
    let salted = MutableLink {
        salt: Some(b"music".to_vec()),
        ..link.clone()
    };
    let m = InfoHash([3; 20]);
    publisher
        .publish_mutable(&secret, Some(b"music"), m, 1)
        .await
        .unwrap();
    resolves_to(&reader, &salted, m, 1).await;
    resolves_to(&reader, &link, v2, 2).await;
    for s in [publisher, reader] {
        s.shutdown(Duration::from_secs(5)).await;
    }
}

/// `btorrent daemon` in `dir`, the DHT on (its settings say which), its output in `daemon.log`.
fn daemon_in(dir: &std::path::Path) -> crate::support::Proc {
    crate::support::Proc::spawn_logged(
        crate::support::cli::bin()
            .env_remove("BTORRENT_DHT")
            .arg("daemon")
            .current_dir(dir),
        dir.join("daemon.log"),
    )
}

/// The entry of `ih` in the torrents.toml of `dir`.
fn entry_in(dir: &std::path::Path, ih: &InfoHash) -> Option<btorrent::config::ManagedTorrent> {
    btorrent::config::Config::load(&dir.join("torrents.toml"))
        .unwrap()
        .find(ih)
        .cloned()
}

/// Waits (at most 30 s) until a lookup of each of `ihs` in the DHT finds a peer.
async fn announced(net: &mainline::Testnet, ihs: &[InfoHash]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    for ih in ihs {
        while !tokio::task::block_in_place(|| anyone_announced(net, ih.0)) {
            assert!(std::time::Instant::now() < deadline, "{ih} never announced");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `btorrent start <link> -o dl` in `dir`, the DHT on (its settings say which).
fn start_link(dir: &std::path::Path, link: &str) -> std::process::Output {
    crate::support::cli::bin()
        .env_remove("BTORRENT_DHT")
        .args(["start", link, "-o", "dl", "--stall", "60"])
        .current_dir(dir)
        .output()
        .unwrap()
}

/// From the command line: `b-publish` of a created torrent prints its mutable link (the key made in
/// keys/, mode 0600, the publication kept in torrents.toml); `b-start` of that link elsewhere
/// resolves it and downloads the torrent from the daemon that seeds it, over the DHT alone.
#[test]
fn publish_prints_a_link_that_start_resolves_and_downloads() {
    use crate::support::cli::{bin, downloaded, ok};
    use std::os::unix::fs::PermissionsExt as _;
    let net = testnet(5);
    let root = tempfile::tempdir().unwrap();
    let settings = dht_settings(&net.bootstrap);
    let seed_dir = folder(root.path(), "seed", &settings);
    let leech_dir = folder(root.path(), "leech", &settings);
    crate::support::write_tree(
        &seed_dir,
        &[("photos/a.jpg", 300_000), ("photos/b.jpg", 120_001)],
    );
    ok(&seed_dir, &["create", "photos", "--no-tracker"]);
    let published = bin()
        .env_remove("BTORRENT_DHT")
        .args(["publish", "photos", "--json"])
        .current_dir(&seed_dir)
        .output()
        .unwrap();
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&published.stdout).unwrap();
    let link = p["link"].as_str().unwrap().to_string();
    assert!(link.starts_with("magnet:?xs=urn:btpk:"), "{p}");
    assert_eq!(p["key"], "default");
    let key = seed_dir.join("keys/default.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let cfg = btorrent::config::Config::load(&seed_dir.join("torrents.toml")).unwrap();
    let entry = &cfg.torrents[0];
    let record = entry.publish.as_ref().expect("the publication recorded");
    assert_eq!(
        (record.key.as_str(), record.seq),
        ("default", p["seq"].as_i64().unwrap())
    );
    assert_eq!(p["info_hash"], entry.info_hash.as_str());
    assert_eq!(p["format"], "v1");

    // The daemon seeds it (and publishes it again); another machine starts the link.
    let _daemon = daemon_in(&seed_dir);
    // Once it has announced the torrent on the DHT (a lookup before that finds no peer).
    let ih = btorrent::InfoHash::from_hex(&entry.info_hash).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !anyone_announced(&net, ih.0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon never announced"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    downloaded(&start_link(&leech_dir, &link));
    crate::support::assert_same_tree(&seed_dir.join("photos"), &leech_dir.join("dl/photos"));

    // The RPC's torrent-add takes the link too.
    let rpc_dir = root.path().join("rpc");
    std::fs::create_dir_all(&rpc_dir).unwrap();
    let list: Vec<String> = net.bootstrap.iter().map(|b| format!("{b:?}")).collect();
    let d = crate::support::rpc::RpcDaemon::start_with(
        &rpc_dir,
        &format!(
            "dht = true
dht_bootstrap = [{}]",
            list.join(", ")
        ),
        Some(""),
    );
    let mut c = d.client();
    let into = rpc_dir.join("into");
    let added = c.ok(
        "torrent-add",
        serde_json::json!({"filename": link, "download-dir": into.to_string_lossy()}),
    );
    assert!(added.to_string().contains(&entry.info_hash), "{added}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let t = c.ok(
            "torrent-get",
            serde_json::json!({"ids": [entry.info_hash], "fields": ["percentDone"]}),
        );
        if t["torrents"][0]["percentDone"] == 1.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not done: {t}");
        std::thread::sleep(Duration::from_millis(200));
    }
    crate::support::assert_same_tree(&seed_dir.join("photos"), &into.join("photos"));
    // And records the link with the torrent, which the daemon follows as a started one.
    let cfg = btorrent::config::Config::load(&rpc_dir.join("torrents.toml")).unwrap();
    let added = cfg.find(&ih).expect("the RPC's torrent managed");
    let follow = added.follow.as_ref().expect("the link recorded to follow");
    assert_eq!(
        (follow.link.as_str(), follow.seq),
        (link.as_str(), p["seq"].as_i64().unwrap())
    );

    // Published again, in words: with what a v1 torrent cannot do where the link is followed.
    let again = bin()
        .env_remove("BTORRENT_DHT")
        .args(["publish", "photos"])
        .current_dir(&seed_dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(
        said.starts_with("photos: published under key default\nmagnet:?xs=urn:btpk:")
            && said.contains("note: a v1 torrent")
            && said.contains("b-create --hybrid"),
        "{said}"
    );
}

/// A shell or daemon publishes again what torrents.toml records as published: here a record and
/// key written by hand, never put in the DHT, are found there once the daemon runs.
#[test]
fn a_daemon_publishes_the_recorded_publications_again() {
    use crate::support::cli::ok;
    let net = testnet(5);
    let root = tempfile::tempdir().unwrap();
    let dir = folder(root.path(), "seed", &dht_settings(&net.bootstrap));
    crate::support::write_tree(&dir, &[("notes/n.txt", 40_000)]);
    ok(&dir, &["create", "notes", "--no-tracker"]);
    let secret = [9u8; 32];
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/work.key"), hex::encode(secret)).unwrap();
    let toml = std::fs::read_to_string(dir.join("torrents.toml")).unwrap();
    std::fs::write(
        dir.join("torrents.toml"),
        format!("{toml}\n[torrent.publish]\nkey = \"work\"\nsalt = \"notes\"\nseq = 7\n"),
    )
    .unwrap();
    let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
    let ih = cfg.torrents[0].hash().unwrap();
    assert_eq!(cfg.torrents[0].publish.as_ref().unwrap().seq, 7);

    let daemon = daemon_in(&dir);
    let pk = public_key(&secret);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        // The testnet's own blocking call (the test runs on no runtime).
        #[allow(deprecated)]
        let found = net.nodes[0].get_mutable_most_recent(&pk, Some(b"notes"));
        if let Some(item) = found {
            assert_eq!(item.seq(), 7);
            assert_eq!(
                btorrent::mutable_link::parse_pointer_value(item.value()),
                Ok(ih)
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never published: {}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A torrent started from a mutable link follows it: once the publisher moves the link to the next
/// version of the folder, the daemon that runs the torrent fetches that version into the same
/// folder (the unchanged file kept, the changed and new ones fetched) in place of the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_link_is_followed_to_the_next_version() {
    follows_to_the_next_version(Told::Start, Next::Changed).await;
}

/// A next version that put a file in another folder (hybrid torrents, whose files are known by
/// their content): the follower moves its copy there from the old place rather than fetching it
/// again, and its log says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_link_moves_a_file_the_next_version_moved() {
    follows_to_the_next_version(Told::Start, Next::Reorganized).await;
}

/// The same for a link dropped in the watch folder (a `.magnet` file): the new version takes the
/// watch entry over, and later scans of the unchanged file neither add the old version back nor
/// take the file for a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_link_is_followed_to_the_next_version() {
    follows_to_the_next_version(Told::WatchFolder, Next::Changed).await;
}

/// How the follower daemon is given the link.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Told {
    /// A one-shot `start <link> -o dl`, handed to the daemon.
    Start,
    /// `watch/share.magnet` holding the link; downloaded into `dl` (the output folder).
    WatchFolder,
}

/// What the next version of the folder changed.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Next {
    /// b.bin changed, c.bin new (v1 torrents).
    Changed,
    /// The same, a.bin moved to `2026/a.bin` and d.bin dropped (hybrid torrents).
    Reorganized,
}

async fn follows_to_the_next_version(told: Told, next: Next) {
    use crate::support::cli::downloaded;
    crate::support::init_logs();
    let net = tokio::task::spawn_blocking(|| testnet(5)).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let piece = 16 * 1024;
    // Version 1 and version 2 of the folder `share`: a.bin the same, b.bin changed, c.bin new.
    let v1 = root.path().join("v1");
    let v2 = root.path().join("v2");
    crate::support::write_random(&v1.join("share/a.bin"), 5 * piece, 1);
    crate::support::write_random(&v1.join("share/b.bin"), 3 * piece, 2);
    if next == Next::Reorganized {
        crate::support::write_random(&v1.join("share/d.bin"), 2 * piece, 5);
    }
    let a2 = match next {
        Next::Changed => "share/a.bin",
        Next::Reorganized => "share/2026/a.bin",
    };
    crate::support::write_random(&v2.join(a2), 5 * piece, 1);
    crate::support::write_random(&v2.join("share/b.bin"), 3 * piece, 3);
    crate::support::write_random(&v2.join("share/c.bin"), 2 * piece, 4);
    let made = |dir: &std::path::Path| match next {
        Next::Changed => crate::support::torrent(dir, piece as u64, vec![]),
        Next::Reorganized => crate::support::engine::hybrid(dir, piece as u64),
    };
    let (meta1, meta2) = (made(&v1.join("share")), made(&v2.join("share")));

    // The publisher seeds version 1 and points its link at it.
    let publisher = session_with(session_config(&net.bootstrap)).await;
    let add = |dir: &std::path::Path| btorrent::engine::AddOptions {
        data_dir: dir.to_path_buf(),
        trackers: Some(vec![]),
        ..Default::default()
    };
    let s1 = publisher.add(meta1.clone(), add(&v1)).await.unwrap();
    crate::support::engine::wait_complete(&s1, 30).await;
    let secret = [5u8; 32];
    publisher
        .publish_mutable(&secret, None, meta1.info_hash, 1)
        .await
        .unwrap();
    let link = MutableLink {
        public_key: public_key(&secret),
        salt: None,
        name: Some("share".into()),
    }
    .to_link();

    // The follower: a daemon, told the link by a one-shot start.
    let dir = folder(
        root.path(),
        "follower",
        &format!(
            "{}\nfollow_interval = 1\noutput_dir = \"dl\"\nwatch_quiet_secs = 1\nwatch_rescan_secs = 1",
            dht_settings(&net.bootstrap)
        ),
    );
    let entry = |ih: &InfoHash| entry_in(&dir, ih);
    let daemon = daemon_in(&dir);
    // Once the publisher's announce is in the DHT (a lookup before it finds no peer).
    let ih1 = meta1.info_hash;
    announced(&net, &[ih1]).await;
    match told {
        Told::Start => {
            let (d, l) = (dir.clone(), link.clone());
            let out = tokio::task::spawn_blocking(move || start_link(&d, &l))
                .await
                .unwrap();
            downloaded(&out);
        }
        Told::WatchFolder => {
            std::fs::create_dir_all(dir.join("watch")).unwrap();
            std::fs::write(dir.join("watch/share.magnet"), format!("{link}\n")).unwrap();
            crate::support::wait::wait_until(
                "the dropped link's version 1 to be downloaded",
                Duration::from_secs(60),
                || entry(&ih1).is_some_and(|e| e.state == "seeding"),
            )
            .await;
        }
    }
    crate::support::assert_same_tree(&v1.join("share"), &dir.join("dl/share"));
    let e1 = entry(&meta1.info_hash).unwrap();
    let follow = e1.follow.clone().unwrap();
    assert_eq!((follow.link.as_str(), follow.seq), (link.as_str(), 1));
    assert_eq!(e1.watch.is_some(), told == Told::WatchFolder, "{e1:?}");

    // Version 2 published: the daemon follows.
    let s2 = publisher.add(meta2.clone(), add(&v2)).await.unwrap();
    crate::support::engine::wait_complete(&s2, 30).await;
    publisher
        .publish_mutable(&secret, None, meta2.info_hash, 2)
        .await
        .unwrap();
    crate::support::wait::wait_until(
        "the daemon to follow the link to version 2",
        Duration::from_secs(90),
        || {
            let done = entry(&meta2.info_hash)
                .is_some_and(|e| e.follow.is_some_and(|f| f.seq == 2) && e.state == "seeding");
            done && entry(&meta1.info_hash).is_none()
        },
    )
    .await;
    crate::support::assert_same_tree(&v2.join("share"), &dir.join("dl/share"));
    let e2 = entry(&meta2.info_hash).unwrap();
    assert_eq!(
        e2.watch, e1.watch,
        "the watch entry's record moves to version 2"
    );
    if told == Told::WatchFolder {
        // A scan after the switch, seen through another entry dropped meanwhile: the unchanged
        // link file keeps version 2 alone, nothing refused or added again.
        crate::support::write_random(&dir.join("watch/other.bin"), 1000, 9);
        crate::support::wait::wait_until(
            "the watch folder to take the entry dropped after the switch",
            Duration::from_secs(60),
            || {
                btorrent::config::Config::load(&dir.join("torrents.toml"))
                    .unwrap()
                    .torrents
                    .iter()
                    .any(|t| t.name == "other.bin")
            },
        )
        .await;
        let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
        let names: Vec<&str> = cfg.torrents.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(cfg.find(&meta2.info_hash).is_some() && cfg.find(&ih1).is_none());
        let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap();
        assert!(!log.contains("already shared"), "{log}");
    }
    // Only b.bin and c.bin crossed the wire: a.bin was found in the folder, or moved there.
    let sent = s2.stats().uploaded;
    assert!(
        sent <= 5 * piece as u64,
        "the publisher sent {sent} bytes of version 2"
    );
    let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap();
    let found = "found_locally share";
    if next == Next::Reorganized {
        assert!(!dir.join("dl/share/a.bin").exists(), "moved, not copied");
        let line = log
            .lines()
            .find(|l| l.contains(found))
            .unwrap_or_else(|| panic!("{log}"));
        assert!(
            line.ends_with(
                "1 file (81920 bytes) found on this machine, not fetched: 1 moved; \
                 1 file the version before had and this one dropped removed"
            ),
            "{line}"
        );
    } else {
        assert!(!log.contains(found), "{log}");
    }
    drop(daemon);
    publisher.shutdown(Duration::from_secs(5)).await;
}

/// Followed links are looked at side by side: one that moves to a torrent nobody seeds (its
/// metadata fetch waits minutes for a peer) holds back no other. Here the daemon follows two; the
/// first moves to such a torrent, the second to a seeded one, which the daemon switches to while
/// the first still waits, that one's entry left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_newer_torrent_nobody_seeds_holds_no_other_back() {
    use crate::support::cli::downloaded;
    crate::support::init_logs();
    let net = tokio::task::spawn_blocking(|| testnet(5)).await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let piece = 16 * 1024;
    let made = |dir: &str, seed: u64| {
        let top = root.path().join(dir);
        let name = dir.split('/').next_back().unwrap();
        crate::support::write_random(&top.join("a.bin"), 3 * piece, seed);
        let meta = crate::support::torrent(&top, piece as u64, vec![]);
        (top.parent().unwrap().to_path_buf(), meta, name.to_string())
    };
    let (stuck_dir, stuck, _) = made("s1/stuck", 1);
    let (moving_dir1, moving1, _) = made("m1/moving", 2);
    let (moving_dir2, moving2, _) = made("m2/moving", 3);

    let publisher = session_with(session_config(&net.bootstrap)).await;
    let add = |dir: &std::path::Path| btorrent::engine::AddOptions {
        data_dir: dir.to_path_buf(),
        trackers: Some(vec![]),
        ..Default::default()
    };
    for (meta, dir) in [(&stuck, &stuck_dir), (&moving1, &moving_dir1)] {
        let h = publisher.add(meta.clone(), add(dir)).await.unwrap();
        crate::support::engine::wait_complete(&h, 30).await;
    }
    let (stuck_key, moving_key) = ([11u8; 32], [12u8; 32]);
    let link = |secret: &[u8; 32], name: &str| {
        MutableLink {
            public_key: public_key(secret),
            salt: None,
            name: Some(name.into()),
        }
        .to_link()
    };
    publisher
        .publish_mutable(&stuck_key, None, stuck.info_hash, 1)
        .await
        .unwrap();
    publisher
        .publish_mutable(&moving_key, None, moving1.info_hash, 1)
        .await
        .unwrap();

    let dir = folder(
        root.path(),
        "follower",
        &format!(
            "{}\nfollow_interval = 1\noutput_dir = \"dl\"",
            dht_settings(&net.bootstrap)
        ),
    );
    let entry = |ih: &InfoHash| entry_in(&dir, ih);
    let daemon = daemon_in(&dir);
    announced(&net, &[stuck.info_hash, moving1.info_hash]).await;
    // The stuck link first: the one looked at first when looks go one by one.
    for l in [link(&stuck_key, "stuck"), link(&moving_key, "moving")] {
        let d = dir.clone();
        downloaded(
            &tokio::task::spawn_blocking(move || start_link(&d, &l))
                .await
                .unwrap(),
        );
    }
    assert!(entry(&stuck.info_hash).is_some_and(|e| e.follow.is_some()));

    // The stuck link moves to a torrent nobody has; the other to its seeded next version.
    publisher
        .publish_mutable(&stuck_key, None, InfoHash([7; 20]), 2)
        .await
        .unwrap();
    // Once the daemon is fetching the stuck link's newer torrent (`show` lists the fetch).
    crate::support::wait::wait_until_async(
        "the daemon to fetch the stuck link's newer torrent",
        Duration::from_secs(60),
        || async {
            let d = dir.clone();
            let shown =
                tokio::task::spawn_blocking(move || crate::support::cli::run(&d, &["show"]))
                    .await
                    .unwrap();
            String::from_utf8_lossy(&shown.stdout).contains("070707070707")
        },
    )
    .await;
    let h = publisher
        .add(moving2.clone(), add(&moving_dir2))
        .await
        .unwrap();
    crate::support::engine::wait_complete(&h, 30).await;
    publisher
        .publish_mutable(&moving_key, None, moving2.info_hash, 2)
        .await
        .unwrap();
    crate::support::wait::wait_until(
        "the daemon to follow the second link while the first one's fetch waits",
        Duration::from_secs(120),
        || {
            entry(&moving2.info_hash)
                .is_some_and(|e| e.follow.is_some_and(|f| f.seq == 2) && e.state == "seeding")
                && entry(&moving1.info_hash).is_none()
        },
    )
    .await;
    crate::support::assert_same_tree(&moving_dir2.join("moving"), &dir.join("dl/moving"));
    let e = entry(&stuck.info_hash).expect("the stuck link's torrent stays");
    assert_eq!(e.follow.map(|f| f.seq), Some(1));
    drop(daemon);
    publisher.shutdown(Duration::from_secs(5)).await;
}
