//! The watch folder with the real peer session and tracker, on 127.0.0.1: a folder copied in slowly is
//! seeded once the copy ends and a second btorrent process downloads it with only the .torrent the
//! watcher wrote; a dropped .torrent is downloaded into the output folder; a restart makes no second
//! torrent; an entry deleted from the folder is no longer announced; with an incomplete folder, a
//! dropped .torrent downloads there and moves to the output folder once complete.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{cli, random_bytes, wait_until_async};
use btorrent::announce::TrackerClient;
use btorrent::config::Config;
use btorrent::engine::{AddOptions, Session, SessionConfig};
use btorrent::events::{Event, EventBus, EventKind};
use btorrent::metainfo::{create_torrent, CreateOptions};
use btorrent::services::{RunningTracker, Services, ServicesOptions};
use btorrent::InfoHash;

/// A tracker in this process on an ephemeral port, and a torrents.toml pointing at it.
async fn setup(dir: &Path) -> (RunningTracker, PathBuf) {
    let tracker_cfg = dir.join("tracker.toml");
    std::fs::write(&tracker_cfg, "[settings]\n").unwrap();
    let tracker = RunningTracker::start(&tracker_cfg, Some("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let config = dir.join("torrents.toml");
    std::fs::write(
        &config,
        format!(
            "[settings]\ndht = false\ntracker_url = \"{}\"\nlisten_port = 0\nlisten_ip = \"127.0.0.1\"\nwatch_quiet_secs = 1\nwatch_rescan_secs = 1\n",
            tracker.announce_url()
        ),
    )
    .unwrap();
    (tracker, config)
}

async fn services(config: &Path, bus: EventBus) -> Services {
    let opts = ServicesOptions {
        tracker: false,
        ..Default::default()
    };
    Services::start(config, opts, bus).await.unwrap()
}

async fn next_event(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    kind: EventKind,
    within: Duration,
) -> Event {
    tokio::time::timeout(within, async {
        loop {
            match rx.recv().await {
                Ok(ev) if ev.kind() == kind => return ev,
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("bus closed: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind} event within {within:?}"))
}

/// A file of `size` random bytes (`seed` picks them) in `dir/elsewhere`, seeded through `tracker`
/// by a session of its own: its torrent, its bytes and the session.
async fn seeded_elsewhere(
    dir: &Path,
    tracker: &RunningTracker,
    name: &str,
    size: usize,
    seed: u64,
) -> (btorrent::Metainfo, Vec<u8>, Session) {
    let src = dir.join("elsewhere");
    std::fs::create_dir_all(&src).unwrap();
    let data = random_bytes(size, seed);
    std::fs::write(src.join(name), &data).unwrap();
    let opts = CreateOptions {
        trackers: vec![tracker.announce_url()],
        ..Default::default()
    };
    let meta = create_torrent(&src.join(name), &opts, &|_, _| {}).unwrap();
    let seeder = Session::start(SessionConfig::default()).await.unwrap();
    let add = AddOptions {
        data_dir: src,
        ..Default::default()
    };
    seeder.add(meta.clone(), add).await.unwrap();
    (meta, data, seeder)
}

/// Peers the tracker lists for `ih`.
async fn listed(url: &str, ih: InfoHash) -> usize {
    TrackerClient::new()
        .get_peers(url, Some(ih))
        .await
        .map(|p| p.len())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_copy_is_seeded_then_downloaded_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let (tracker, config) = setup(dir.path()).await;
    let bus = EventBus::default();
    let mut rx = bus.subscribe();
    let svc = services(&config, bus).await;

    // Copy a folder in file by file, slowly: nothing may be shared before the copy ends.
    let album = dir.path().join("watch/album");
    std::fs::create_dir_all(&album).unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| {
            (
                format!("track{i}.bin"),
                random_bytes(300_000 + i * 7, i as u64),
            )
        })
        .collect();
    for (name, bytes) in &files {
        std::fs::write(album.join(name), bytes).unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let early = svc
            .peer
            .get()
            .await
            .map(|s| s.torrents().len())
            .unwrap_or_default();
        assert_eq!(early, 0, "shared before the copy ended");
    }
    let seeded = next_event(&mut rx, EventKind::WatchSeeded, Duration::from_secs(30)).await;
    let ih = seeded.info_hash().unwrap();
    let torrent = dir.path().join("torrents/album.torrent");
    assert!(torrent.exists(), "the watcher wrote the .torrent");
    let url = tracker.announce_url();
    let url = url.as_str();
    wait_until_async(
        "the seeder to announce",
        Duration::from_secs(20),
        move || async move { listed(url, ih).await > 0 },
    )
    .await;

    // Another btorrent process, given only the .torrent, downloads it through the tracker.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("torrents.toml"),
        "[settings]\ndht = false\nlisten_port = 0\nlisten_ip = \"127.0.0.1\"\n",
    )
    .unwrap();
    let torrent2 = torrent.clone();
    let other2 = other.clone();
    let out = tokio::task::spawn_blocking(move || {
        cli::run(&other2, &["start", torrent2.to_str().unwrap(), "-o", "dl"])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, bytes) in &files {
        let got = std::fs::read(other.join("dl/album").join(name)).unwrap();
        assert_eq!(&got, bytes, "{name}");
    }
    // The user's files were left alone.
    for (name, bytes) in &files {
        assert_eq!(&std::fs::read(album.join(name)).unwrap(), bytes);
    }
    svc.shutdown(Duration::from_secs(5)).await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_torrent_is_downloaded_into_the_output_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (tracker, config) = setup(dir.path()).await;

    // Someone else seeds a file through the tracker.
    let (meta, data, seeder) =
        seeded_elsewhere(dir.path(), &tracker, "movie.bin", 700_000, 9).await;

    let bus = EventBus::default();
    let mut rx = bus.subscribe();
    let svc = services(&config, bus).await;
    let dropped = dir.path().join("watch/movie.torrent");
    std::fs::write(&dropped, meta.as_bytes()).unwrap();
    let done = next_event(&mut rx, EventKind::Completed, Duration::from_secs(60)).await;
    assert_eq!(done.info_hash(), Some(meta.info_hash));
    assert_eq!(
        std::fs::read(dir.path().join("output/movie.bin")).unwrap(),
        data
    );
    assert_eq!(std::fs::read(&dropped).unwrap(), meta.as_bytes());
    svc.shutdown(Duration::from_secs(5)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
    tracker.stop().await;
}

/// With an incomplete folder, a dropped .torrent downloads there and its data moves to the output
/// folder once complete; the entry records where it went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_torrent_waits_in_the_incomplete_folder_until_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (tracker, config) = setup(dir.path()).await;
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("incomplete_dir = \"partial\"\n");
    std::fs::write(&config, text).unwrap();

    let (meta, data, seeder) =
        seeded_elsewhere(dir.path(), &tracker, "film.bin", 300_000, 19).await;

    let bus = EventBus::default();
    let mut rx = bus.subscribe();
    let svc = services(&config, bus).await;
    std::fs::write(dir.path().join("watch/film.torrent"), meta.as_bytes()).unwrap();
    let added = next_event(&mut rx, EventKind::Added, Duration::from_secs(60)).await;
    assert_eq!(
        added.path(),
        Some(dir.path().join("partial").display().to_string()),
        "downloading into the incomplete folder"
    );
    next_event(&mut rx, EventKind::Completed, Duration::from_secs(60)).await;
    let home = dir.path().join("output/film.bin");
    // The entry is written after the move: both are waited for (a busy machine shows the data in
    // its new place before torrents.toml says so).
    let recorded = || {
        let cfg = Config::load(&config).unwrap();
        let e = cfg.find(&meta.info_hash).unwrap();
        (cfg.resolve(&e.data), e.complete_dir.clone())
    };
    wait_until_async(
        "the data to move to the output folder, and the entry to say so",
        Duration::from_secs(30),
        || async {
            home.exists()
                && !dir.path().join("partial/film.bin").exists()
                && recorded() == (dir.path().join("output"), None)
        },
    )
    .await;
    assert_eq!(std::fs::read(&home).unwrap(), data);
    svc.shutdown(Duration::from_secs(5)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_makes_no_second_torrent_and_deleted_entries_stop_announcing() {
    let dir = tempfile::tempdir().unwrap();
    let (tracker, config) = setup(dir.path()).await;
    std::fs::create_dir_all(dir.path().join("watch")).unwrap();
    std::fs::write(dir.path().join("watch/a.bin"), random_bytes(100_000, 1)).unwrap();
    std::fs::write(dir.path().join("watch/b.bin"), random_bytes(120_000, 2)).unwrap();

    let bus = EventBus::default();
    let mut rx = bus.subscribe();
    let svc = services(&config, bus).await;
    let first = next_event(&mut rx, EventKind::WatchSeeded, Duration::from_secs(30)).await;
    let second = next_event(&mut rx, EventKind::WatchSeeded, Duration::from_secs(30)).await;
    svc.shutdown(Duration::from_secs(5)).await;
    let torrents_before = std::fs::read_dir(dir.path().join("torrents"))
        .unwrap()
        .count();
    let toml_before = std::fs::read_to_string(&config).unwrap();
    assert_eq!(Config::load(&config).unwrap().torrents.len(), 2);

    // Restart: both are seeded again from the ledger, nothing is made twice.
    let bus = EventBus::default();
    let mut rx = bus.subscribe();
    let svc = services(&config, bus).await;
    let url = tracker.announce_url();
    let url = url.as_str();
    for ev in [&first, &second] {
        let ih = ev.info_hash().unwrap();
        let what = format!("{:?} to be announced after the restart", ev.name());
        wait_until_async(&what, Duration::from_secs(20), move || async move {
            listed(url, ih).await > 0
        })
        .await;
    }
    // A full pass that left nothing pending or hashing: anything taken for new would show there.
    let mut status = svc.watch.as_ref().unwrap().status_updates();
    let settled = tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|s| s.full_passes >= 1 && s.pending == 0 && s.hashing.is_none()),
    )
    .await
    .expect("the watch folder settles after the restart")
    .unwrap()
    .clone();
    assert_eq!(
        settled.hashed, 0,
        "hashed again after the restart: {settled:?}"
    );
    assert_eq!(settled.shared, 2, "{settled:?}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("torrents"))
            .unwrap()
            .count(),
        torrents_before
    );
    assert_eq!(Config::load(&config).unwrap().torrents.len(), 2);
    assert_eq!(std::fs::read_to_string(&config).unwrap(), toml_before);
    while let Ok(ev) = rx.try_recv() {
        assert_ne!(ev.kind(), EventKind::WatchSeeded, "seeded twice: {ev}");
    }

    // Delete one entry: it is stopped (announced `stopped`) and leaves torrents.toml.
    let gone = if first.name() == Some("a.bin") {
        &first
    } else {
        &second
    };
    std::fs::remove_file(dir.path().join("watch/a.bin")).unwrap();
    let ih = gone.info_hash().unwrap();
    wait_until_async(
        "a.bin to be no longer announced",
        Duration::from_secs(20),
        move || async move { listed(url, ih).await == 0 },
    )
    .await;
    let cfg = Config::load(&config).unwrap();
    assert_eq!(cfg.torrents.len(), 1);
    assert!(cfg.find(&ih).is_none());
    assert!(svc.peer.get().await.unwrap().get(&ih).is_none());
    svc.shutdown(Duration::from_secs(5)).await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_magnet_files_are_fetched_kept_and_downloaded() {
    let dir = tempfile::tempdir().unwrap();
    let (tracker, config) = setup(dir.path()).await;
    let src = dir.path().join("elsewhere");
    std::fs::create_dir_all(&src).unwrap();
    let seeder = Session::start(SessionConfig::default()).await.unwrap();
    let mut metas = Vec::new();
    for (name, seed) in [("a.bin", 21), ("b.bin", 22), ("c.bin", 23)] {
        std::fs::write(src.join(name), random_bytes(300_000, seed)).unwrap();
        let opts = CreateOptions {
            trackers: vec![tracker.announce_url()],
            ..Default::default()
        };
        let meta = create_torrent(&src.join(name), &opts, &|_, _| {}).unwrap();
        let add = AddOptions {
            data_dir: src.clone(),
            ..Default::default()
        };
        seeder.add(meta.clone(), add).await.unwrap();
        metas.push(meta);
    }
    let bus = EventBus::default();
    let mut rx = bus.subscribe();
    let svc = services(&config, bus).await;
    // A .magnet with the tracker; a text file of two magnet lines with the seeder's address.
    let tr = tracker.announce_url();
    std::fs::write(
        dir.path().join("watch/a.magnet"),
        format!(
            "magnet:?xt=urn:btih:{}&tr={tr}\n",
            metas[0].info_hash.to_hex()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("watch/links.txt"),
        format!(
            "\nmagnet:?xt=urn:btih:{}&x.pe={p}\nmagnet:?xt=urn:btih:{}&x.pe={p}\n",
            metas[1].info_hash.to_hex(),
            metas[2].info_hash.to_hex(),
            p = seeder.listen_addr()
        ),
    )
    .unwrap();
    let mut done = Vec::new();
    while done.len() < 3 {
        let e = next_event(&mut rx, EventKind::Completed, Duration::from_secs(60)).await;
        done.push(e.info_hash().unwrap());
    }
    for (m, name) in metas.iter().zip(["a.bin", "b.bin", "c.bin"]) {
        assert!(done.contains(&m.info_hash));
        assert_eq!(
            std::fs::read(dir.path().join("output").join(name)).unwrap(),
            std::fs::read(src.join(name)).unwrap()
        );
        let kept = dir.path().join(format!("torrents/{name}.torrent"));
        assert_eq!(
            btorrent::Metainfo::load(&kept).unwrap().info_bytes(),
            m.info_bytes()
        );
    }
    let cfg = Config::load(&config).unwrap();
    assert_eq!(cfg.torrents.len(), 3);
    // The file of links taken out: both of its torrents stop; the .magnet's stays.
    std::fs::remove_file(dir.path().join("watch/links.txt")).unwrap();
    wait_until_async(
        "the links' torrents stop",
        Duration::from_secs(30),
        || async {
            let cfg = Config::load(&config).unwrap();
            cfg.torrents.len() == 1 && cfg.torrents[0].info_hash == metas[0].info_hash.to_hex()
        },
    )
    .await;
    svc.shutdown(Duration::from_secs(5)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
    tracker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_magnet_links_so_downloads_only_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let (tracker, config) = setup(dir.path()).await;
    let src = dir.path().join("elsewhere");
    std::fs::create_dir_all(src.join("pack")).unwrap();
    for (name, seed) in [("a.bin", 31), ("b.bin", 32), ("c.bin", 33)] {
        std::fs::write(src.join("pack").join(name), random_bytes(200_000, seed)).unwrap();
    }
    let opts = CreateOptions {
        piece_length: Some(16 * 1024),
        ..Default::default()
    };
    let meta = create_torrent(&src.join("pack"), &opts, &|_, _| {}).unwrap();
    let seeder = Session::start(SessionConfig::default()).await.unwrap();
    let add = AddOptions {
        data_dir: src.clone(),
        ..Default::default()
    };
    seeder.add(meta.clone(), add).await.unwrap();
    let bus = EventBus::default();
    let mut rx = bus.subscribe();
    let svc = services(&config, bus).await;
    std::fs::write(
        dir.path().join("watch/pack.magnet"),
        format!(
            "magnet:?xt=urn:btih:{}&x.pe={}&so=1\n",
            meta.info_hash.to_hex(),
            seeder.listen_addr()
        ),
    )
    .unwrap();
    let e = next_event(&mut rx, EventKind::Completed, Duration::from_secs(60)).await;
    assert_eq!(e.info_hash(), Some(meta.info_hash));
    assert_eq!(
        std::fs::read(dir.path().join("output/pack/b.bin")).unwrap(),
        std::fs::read(src.join("pack/b.bin")).unwrap()
    );
    let a = std::fs::read(dir.path().join("output/pack/a.bin")).unwrap_or_default();
    assert!(
        a != std::fs::read(src.join("pack/a.bin")).unwrap(),
        "a.bin, not selected, was downloaded whole"
    );
    let cfg = Config::load(&config).unwrap();
    assert_eq!(cfg.find(&meta.info_hash).unwrap().files.skip, [0, 2]);
    svc.shutdown(Duration::from_secs(5)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
    tracker.stop().await;
}

/// With `start_added_torrents = false`, a dropped .torrent is added paused (dropped data is still
/// seeded), and a restart shares every entry as torrents.toml says: the paused one stays paused,
/// one stopped by a script's `cancel()` stays stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_folder_torrents_start_as_their_entries_say() {
    use btorrent::engine::TorrentState;
    use btorrent::script::live::AfterRemove;
    let dir = tempfile::tempdir().unwrap();
    let (tracker, config) = setup(dir.path()).await;
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("start_added_torrents = false\n");
    std::fs::write(&config, text).unwrap();
    // A .torrent of data no one seeds, and data of our own.
    let src = dir.path().join("elsewhere");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("show.bin"), random_bytes(300_000, 5)).unwrap();
    let opts = CreateOptions {
        trackers: vec![tracker.announce_url()],
        ..Default::default()
    };
    let meta = create_torrent(&src.join("show.bin"), &opts, &|_, _| {}).unwrap();
    let watch = dir.path().join("watch");
    std::fs::create_dir_all(&watch).unwrap();
    std::fs::write(watch.join("show.torrent"), meta.as_bytes()).unwrap();
    std::fs::write(watch.join("mine.bin"), random_bytes(100_000, 6)).unwrap();

    let bus = EventBus::default();
    let mut rx = bus.subscribe();
    let svc = services(&config, bus).await;
    let mine = next_event(&mut rx, EventKind::WatchSeeded, Duration::from_secs(30))
        .await
        .info_hash()
        .unwrap();
    let state = |svc: &Services, ih: InfoHash| {
        let session = svc.peer.current()?;
        Some(session.get(&ih)?.stats().state)
    };
    let entry_state = |ih: InfoHash| {
        Config::load(&config)
            .unwrap()
            .find(&ih)
            .map(|e| e.state.clone())
    };
    crate::support::wait_until(
        "the dropped .torrent to be added, paused",
        Duration::from_secs(30),
        || state(&svc, meta.info_hash) == Some(TorrentState::Paused),
    )
    .await;
    assert_eq!(entry_state(meta.info_hash).as_deref(), Some("paused"));
    assert!(!dir.path().join("output/show.bin").exists());
    // The data of our own is seeded; a script's cancel() stops it and marks it stopped.
    crate::support::wait_until("mine.bin to seed", Duration::from_secs(30), || {
        state(&svc, mine) == Some(TorrentState::Seeding)
    })
    .await;
    assert!(svc
        .peer
        .remove_managed(mine, AfterRemove::MarkStopped)
        .await
        .unwrap());
    assert_eq!(entry_state(mine).as_deref(), Some("stopped"));
    svc.shutdown(Duration::from_secs(5)).await;

    // Restarted: once the watch folder has been over both entries, neither runs.
    let bus = EventBus::default();
    let svc = services(&config, bus).await;
    let mut status = svc.watch.as_ref().unwrap().status_updates();
    tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|s| s.full_passes >= 1 && s.pending == 0 && s.hashing.is_none()),
    )
    .await
    .expect("the watch folder settles after the restart")
    .unwrap();
    assert_eq!(state(&svc, meta.info_hash), Some(TorrentState::Paused));
    assert_eq!(
        state(&svc, mine),
        None,
        "a stopped torrent was started again"
    );
    assert_eq!(entry_state(mine).as_deref(), Some("stopped"));
    svc.shutdown(Duration::from_secs(5)).await;
    tracker.stop().await;
}

/// With a seeding queue of one place, data dropped while another torrent seeds is recorded
/// `queued` and added paused, telling the tracker nothing; it seeds once the place frees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_data_waits_in_a_full_seeding_queue() {
    use crate::support::tracker::http_double;
    use btorrent::engine::TorrentState;
    let dir = tempfile::tempdir().unwrap();
    // A tracker double that records every announce.
    let (base, heard) = http_double(|_| (200, b"d8:intervali1800e5:peers0:e".to_vec())).await;
    let config = dir.path().join("torrents.toml");
    std::fs::write(
        &config,
        format!(
            "[settings]\ndht = false\ntracker_url = \"{base}/announce\"\nlisten_port = 0\nlisten_ip = \"127.0.0.1\"\nwatch_quiet_secs = 1\nwatch_rescan_secs = 1\nseed_queue = true\nseed_queue_size = 1\n"
        ),
    )
    .unwrap();
    // Announces heard for `ih`, whatever the client percent-encodes.
    let announced = |ih: InfoHash| {
        let hashes: Vec<Vec<u8>> = heard
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| {
                let v = l.split("info_hash=").nth(1)?.split(['&', ' ']).next()?;
                Some(percent_encoding::percent_decode_str(v).collect())
            })
            .collect();
        hashes.iter().filter(|h| h[..] == ih.0[..]).count()
    };
    let watch = dir.path().join("watch");
    std::fs::create_dir_all(&watch).unwrap();

    let bus = EventBus::default();
    let mut rx = bus.subscribe();
    let svc = services(&config, bus).await;
    std::fs::write(watch.join("first.bin"), random_bytes(60_000, 41)).unwrap();
    let first = next_event(&mut rx, EventKind::WatchSeeded, Duration::from_secs(30))
        .await
        .info_hash()
        .unwrap();
    crate::support::wait_until("the first to be announced", Duration::from_secs(30), || {
        announced(first) > 0
    })
    .await;

    std::fs::write(watch.join("second.bin"), random_bytes(60_000, 42)).unwrap();
    let second = next_event(&mut rx, EventKind::Added, Duration::from_secs(30))
        .await
        .info_hash()
        .unwrap();
    let state = |ih: InfoHash| Some(svc.peer.current()?.get(&ih)?.stats().state);
    crate::support::wait_until(
        "the second to be checked and wait, paused",
        Duration::from_secs(30),
        || {
            svc.peer
                .current()
                .and_then(|s| s.get(&second))
                .is_some_and(|h| {
                    let s = h.stats();
                    s.state == TorrentState::Paused && s.checked
                })
        },
    )
    .await;
    let entry = Config::load(&config).unwrap();
    assert_eq!(
        entry.find(&second).map(|e| e.state.as_str()),
        Some("queued")
    );
    assert_eq!(announced(second), 0, "a waiting torrent announced");

    // The first stops: the second takes its place.
    btorrent::actions::pause(svc.torrents(), &svc.peer, &first, "first.bin").unwrap();
    crate::support::wait_until("the second to seed", Duration::from_secs(30), || {
        state(second) == Some(TorrentState::Seeding)
    })
    .await;
    crate::support::wait_until(
        "the second to be announced",
        Duration::from_secs(30),
        || announced(second) > 0,
    )
    .await;
    svc.shutdown(Duration::from_secs(5)).await;
}
