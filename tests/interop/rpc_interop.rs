//! transmission-remote 3.00 (Debian's transmission-cli) driving a `btorrent daemon` through its
//! Transmission RPC: add (a magnet listed before its metadata comes), list, details, stop and start, session statistics, speed limits, remove and
//! remove-and-delete, file selection (`-G`/`-g`), moving and finding the data (`--move`/`--find`),
//! the alternative speed limits (`-as`), trackers (`-td`/`-tr`), closing the daemon (`--exit`),
//! updating the blocklist (`--blocklist-update`), port forwarding (`-m`/`-M`); its
//! output parsed and checked against what the engine, the disk and torrents.toml say.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::rpc::RpcDaemon;
use crate::support::{self, run, write_random};

fn remote(d: &RpcDaemon, args: &[&str]) -> String {
    let out = run(
        Command::new("transmission-remote").arg(d.url()).args(args),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "transmission-remote {args:?}: {}{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// The `-l` row of torrent `id`: (done, status, name).
fn row(d: &RpcDaemon, id: u32) -> Option<(String, String, String)> {
    let list = remote(d, &["-l"]);
    list.lines().find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        (cols.first()? == &id.to_string()).then(|| {
            let done = cols[1].to_string();
            let name = cols.last().unwrap().to_string();
            // Status is the word(s) between the ratio and the name.
            let status = cols[cols.len() - 2].to_string();
            (done, status, name)
        })
    })
}

fn until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes `size` random bytes as `<dir>/seed/<name>`, adds its torrent with `transmission-remote -a`
/// into that folder, and waits until the daemon seeds it (torrent 1 on a fresh daemon).
fn add_seeding(
    d: &RpcDaemon,
    dir: &Path,
    name: &str,
    size: usize,
    seed_no: u64,
) -> btorrent::metainfo::Metainfo {
    let seed = dir.join("seed");
    write_random(&seed.join(name), size, seed_no);
    let meta = support::torrent(&seed.join(name), 32 * 1024, vec![]);
    let file = dir.join(format!("{name}.torrent"));
    std::fs::write(&file, meta.as_bytes()).unwrap();
    let out = remote(
        d,
        &["-a", file.to_str().unwrap(), "-w", seed.to_str().unwrap()],
    );
    assert!(out.contains("success"), "{out}");
    until("the torrent to be seeding", 30, || {
        row(d, 1).filter(|(done, _, _)| done == "100%")
    });
    meta
}

/// The torrents.toml entry of `ih`.
fn entry(dir: &Path, ih: &btorrent::InfoHash) -> btorrent::config::ManagedTorrent {
    btorrent::config::Config::load(&dir.join("torrents.toml"))
        .unwrap()
        .find(ih)
        .unwrap()
        .clone()
}

fn setting(dir: &Path) -> btorrent::config::Settings {
    btorrent::config::Config::load(&dir.join("torrents.toml"))
        .unwrap()
        .settings
}

fn state_of(dir: &Path, hash: &str) -> Option<String> {
    let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
    cfg.find(&btorrent::InfoHash::from_hex(hash).unwrap())
        .map(|t| t.state.clone())
}

#[test]
#[ignore = "needs transmission-cli (transmission-remote)"]
fn transmission_remote_drives_a_btorrent_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    write_random(&seed.join("movie.bin"), 400_000, 9);
    let meta = support::torrent(&seed.join("movie.bin"), 32 * 1024, vec![]);
    let file = dir.path().join("movie.torrent");
    std::fs::write(&file, meta.as_bytes()).unwrap();
    let hash = meta.info_hash.to_hex();

    // -a (a file), into the folder holding its data.
    let out = remote(
        &d,
        &["-a", file.to_str().unwrap(), "-w", seed.to_str().unwrap()],
    );
    assert!(out.contains("success"), "{out}");
    let (done, _, name) = until("the torrent to be seeding", 30, || {
        row(&d, 1).filter(|(done, _, _)| done == "100%")
    });
    assert_eq!((done.as_str(), name.as_str()), ("100%", "movie.bin"));
    // torrents.toml records the state the engine's event reports, just after.
    until("torrents.toml to say seeding", 30, || {
        (state_of(dir.path(), &hash).as_deref() == Some("seeding")).then_some(())
    });

    // -t 1 -i: the details match the torrent.
    let info = remote(&d, &["-t", "1", "-i"]);
    assert!(info.contains(&format!("Hash: {hash}")), "{info}");
    assert!(info.contains("Percent Done: 100%"), "{info}");
    assert!(
        info.contains(&format!("Location: {}", seed.display())),
        "{info}"
    );
    assert!(info.contains("Piece Count: 13"), "{info}");

    // -S stops it (the engine pauses it and torrents.toml records it); -s starts it again.
    remote(&d, &["-t", "1", "-S"]);
    let (_, status, _) = row(&d, 1).unwrap();
    assert_eq!(status, "Stopped");
    assert_eq!(state_of(dir.path(), &hash).as_deref(), Some("paused"));
    remote(&d, &["-t", "1", "-s"]);
    until("the torrent to run again", 10, || {
        row(&d, 1).filter(|(_, s, _)| s != "Stopped")
    });
    until("torrents.toml to say seeding again", 30, || {
        (state_of(dir.path(), &hash).as_deref() == Some("seeding")).then_some(())
    });

    // -st: the session statistics.
    let st = remote(&d, &["-st"]);
    assert!(
        st.contains("CURRENT SESSION") && st.contains("Started 1 times"),
        "{st}"
    );

    // -d/-u: the session's limits, applied and written to torrents.toml; -D/-U lift them.
    remote(&d, &["-d", "300", "-u", "40"]);
    let s = setting(dir.path());
    assert_eq!(s.download_limit.map(|r| r.0), Some(300_000));
    assert_eq!(s.upload_limit.map(|r| r.0), Some(40_000));
    let si = remote(&d, &["-si"]);
    assert!(si.contains("Download speed limit: 300 kB/s"), "{si}");
    assert!(si.contains("Upload speed limit: 40 kB/s"), "{si}");
    remote(&d, &["-D", "-U"]);
    let s = setting(dir.path());
    assert_eq!((s.download_limit, s.upload_limit), (None, None));

    // -asd/-asu and -as/-AS: the alternative limits, switched on and off.
    remote(&d, &["-asd", "120", "-asu", "30", "-as"]);
    let s = setting(dir.path());
    assert!(s.alt_speed);
    assert_eq!(s.session_limits(), (Some(30_000), Some(120_000)));
    let si = remote(&d, &["-si"]);
    assert!(
        si.contains("Download speed limit: 120 kB/s (Disabled limit: 0 kB/s; Enabled turtle limit: 120 kB/s)"),
        "{si}"
    );
    assert!(
        si.contains(
            "Upload speed limit: 30 kB/s (Disabled limit: 0 kB/s; Enabled turtle limit: 30 kB/s)"
        ),
        "{si}"
    );
    remote(&d, &["-AS"]);
    let s = setting(dir.path());
    assert!(!s.alt_speed);
    assert_eq!(s.session_limits(), (None, None));

    // -X, -pr without a torrent (the session's peer limit) and --start-paused: applied at once and
    // written to torrents.toml; -x and --no-start-paused turn them back.
    remote(&d, &["-X", "-pr", "25", "--start-paused"]);
    let s = setting(dir.path());
    assert_eq!(
        (s.pex, s.max_connections, s.start_added_torrents),
        (false, Some(25), false)
    );
    let si = remote(&d, &["-si"]);
    assert!(si.contains("Peer limit: 25"), "{si}");
    remote(&d, &["-x", "-pr", "400", "--no-start-paused"]);
    let s = setting(dir.path());
    assert_eq!(
        (s.pex, s.max_connections, s.start_added_torrents),
        (true, Some(400), true)
    );
    // -p: the peer moves to that port at once (a VPN's forwarded port).
    let port = support::process::free_port();
    remote(&d, &["-p", &port.to_string()]);
    assert_eq!(setting(dir.path()).listen_port, port);
    let si = remote(&d, &["-si"]);
    assert!(si.contains(&format!("Listenport: {port}")), "{si}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    // -c/-C: the incomplete folder switched on at a folder, then off (the folder kept).
    let partial = dir.path().join("partial");
    remote(&d, &["-c", partial.to_str().unwrap()]);
    let s = setting(dir.path());
    assert_eq!(
        (s.incomplete_dir.as_deref(), s.incomplete_dir_enabled),
        (Some(partial.as_path()), Some(true))
    );
    remote(&d, &["-C"]);
    let s = setting(dir.path());
    assert_eq!(
        (s.incomplete_dir.as_deref(), s.incomplete_dir_enabled),
        (Some(partial.as_path()), Some(false))
    );

    // A second torrent; -r removes it and leaves its data.
    let keep = dir.path().join("keep");
    std::fs::create_dir_all(&keep).unwrap();
    write_random(&keep.join("doc.bin"), 50_000, 10);
    let meta2 = support::torrent(&keep.join("doc.bin"), 16 * 1024, vec![]);
    let file2 = dir.path().join("doc.torrent");
    std::fs::write(&file2, meta2.as_bytes()).unwrap();
    remote(
        &d,
        &["-a", file2.to_str().unwrap(), "-w", keep.to_str().unwrap()],
    );
    until("the second torrent", 30, || row(&d, 2));
    let out = remote(&d, &["-t", "2", "-r"]);
    assert!(out.contains("success"), "{out}");
    assert!(row(&d, 2).is_none());
    assert!(keep.join("doc.bin").exists());
    assert_eq!(state_of(dir.path(), &meta2.info_hash.to_hex()), None);

    // A magnet whose metadata does not come (its one peer listens nowhere) is listed at once by
    // its name, without a size, and removed like any other.
    let far = "5eed00005eed00005eed00005eed00005eed0000";
    let link = format!(
        "magnet:?xt=urn:btih:{far}&dn=far&x.pe=127.0.0.1:{}",
        support::process::free_port()
    );
    let out = remote(&d, &["-a", &link]);
    assert!(out.contains("success"), "{out}");
    let (done, _, name) = row(&d, 3).expect("the magnet listed at once");
    assert_eq!((done.as_str(), name.as_str()), ("n/a", "far"));
    let info = remote(&d, &["-t", "3", "-i"]);
    assert!(info.contains(&format!("Hash: {far}")), "{info}");
    assert!(info.contains("Magnet: magnet:?xt=urn:btih:"), "{info}");
    let out = remote(&d, &["-t", "3", "-r"]);
    assert!(out.contains("success"), "{out}");
    assert!(row(&d, 3).is_none());

    // --remove-and-delete: the torrent and its data go.
    let out = remote(&d, &["-t", "1", "--remove-and-delete"]);
    assert!(out.contains("success"), "{out}");
    assert!(row(&d, 1).is_none());
    assert!(!seed.join("movie.bin").exists());
    assert_eq!(state_of(dir.path(), &hash), None);
}

/// `--move <dir>` moves the data and seeds on from there; `--find <dir>` points the torrent at a
/// folder its file was moved to by hand, moving nothing, and it seeds from there once checked. The
/// details' location, the disk and torrents.toml follow each. A tracker added and removed (`-td`,
/// `-tr`). Then `--exit` closes the daemon.
#[test]
#[ignore = "needs transmission-cli (transmission-remote)"]
fn transmission_remote_moves_and_finds_a_torrents_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let meta = add_seeding(&d, dir.path(), "clip.bin", 300_000, 12);
    let location = |want: &Path| {
        until("the details to show the new location", 30, || {
            let info = remote(&d, &["-t", "1", "-i"]);
            (info.contains(&format!("Location: {}", want.display()))
                && info.contains("Percent Done: 100%"))
            .then_some(())
        })
    };

    let moved = dir.path().join("moved");
    let out = remote(&d, &["-t", "1", "--move", moved.to_str().unwrap()]);
    assert!(out.contains("success"), "{out}");
    assert!(moved.join("clip.bin").is_file());
    assert!(!dir.path().join("seed/clip.bin").exists());
    location(&moved);
    assert_eq!(entry(dir.path(), &meta.info_hash).data, moved);

    let found = dir.path().join("found");
    std::fs::create_dir_all(&found).unwrap();
    std::fs::rename(moved.join("clip.bin"), found.join("clip.bin")).unwrap();
    let out = remote(&d, &["-t", "1", "--find", found.to_str().unwrap()]);
    assert!(out.contains("success"), "{out}");
    location(&found);
    assert!(found.join("clip.bin").is_file() && !moved.join("clip.bin").exists());
    assert_eq!(entry(dir.path(), &meta.info_hash).data, found);

    // -td / -tr: a tracker added to the running torrent and its .torrent, then removed.
    let tracker = "http://127.0.0.1:9/announce";
    let out = remote(&d, &["-t", "1", "-td", tracker]);
    assert!(out.contains("success"), "{out}");
    let listed = remote(&d, &["-t", "1", "-it"]);
    assert!(listed.contains("Tracker 0: http://127.0.0.1:9"), "{listed}");
    let file = entry(dir.path(), &meta.info_hash).file;
    let on_disk = btorrent::metainfo::Metainfo::load(&dir.path().join(file)).unwrap();
    assert_eq!(on_disk.trackers(), [tracker]);
    remote(&d, &["-t", "1", "-tr", "0"]);
    let listed = remote(&d, &["-t", "1", "-it"]);
    assert!(!listed.contains("Tracker 0"), "{listed}");

    // --exit: the daemon answers, then closes cleanly.
    let mut d = d;
    let out = remote(&d, &["--exit"]);
    assert!(out.contains("success"), "{out}");
    let status = until("the daemon to close", 30, || d.proc.exited());
    assert!(status.success(), "{status}: {}", d.proc.log_text());
}

/// `-t 1 -G 1` / `-g 1`: transmission-remote skips a file and brings it back; the check is on disk
/// (the skipped file never created, then fetched whole) and in torrents.toml.
#[test]
#[ignore = "needs transmission-cli (transmission-remote)"]
fn transmission_remote_chooses_the_files_a_btorrent_daemon_fetches() {
    let rt = crate::support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    // a and b fill whole pieces: with b skipped no piece of it is wanted.
    for (i, (name, len)) in [("a.bin", 327_680), ("b.bin", 196_608), ("c.bin", 100_000)]
        .iter()
        .enumerate()
    {
        write_random(&src.join("pack").join(name), *len, 20 + i as u64);
    }
    let meta = support::torrent(&src.join("pack"), 32 * 1024, vec![]);
    let file = dir.path().join("pack.torrent");
    std::fs::write(&file, meta.as_bytes()).unwrap();
    let hash = meta.info_hash;
    let cfg = btorrent::engine::SessionConfig {
        super_seed: Some(false),
        ..Default::default()
    };
    let (seeder, seeding) = rt.block_on(support::seeder_with(cfg, &meta, &src));

    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let out = dir.path().join("out");
    c.ok(
        "torrent-add",
        serde_json::json!({"filename": file, "download-dir": out, "paused": true}),
    );
    until("the paused torrent", 30, || row(&d, 1));
    remote(&d, &["-t", "1", "-G", "1"]);
    let files = remote(&d, &["-t", "1", "-f"]);
    let b = files.lines().find(|l| l.contains("pack/b.bin")).unwrap();
    assert!(b.contains(" No "), "{files}");
    let skipped = |dir: &Path| {
        let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
        cfg.find(&hash).unwrap().files.skip.clone()
    };
    assert_eq!(skipped(dir.path()), [1]);

    // Started, with the seeder calling it: done with a and c, b never created.
    remote(&d, &["-t", "1", "-s"]);
    let port = c.ok("session-get", serde_json::json!({}))["peer-port"]
        .as_u64()
        .unwrap() as u16;
    let daemon_peer = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    seeding.add_peers(vec![daemon_peer]);
    until("a and c", 60, || {
        row(&d, 1).filter(|(done, _, _)| done == "100%")
    });
    for f in ["a.bin", "c.bin"] {
        assert_eq!(
            std::fs::read(out.join("pack").join(f)).unwrap(),
            std::fs::read(src.join("pack").join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(!out.join("pack/b.bin").exists(), "b.bin was created");

    // -g 1: fetched now.
    remote(&d, &["-t", "1", "-g", "1"]);
    assert!(skipped(dir.path()).is_empty());
    seeding.add_peers(vec![daemon_peer]);
    until("b.bin", 60, || {
        let done = std::fs::read(out.join("pack/b.bin")).ok()?
            == std::fs::read(src.join("pack/b.bin")).unwrap();
        (done && row(&d, 1)?.0 == "100%").then_some(())
    });
    support::assert_same_tree(&src, &out);
    rt.block_on(seeder.shutdown(Duration::from_secs(2)));
}

/// Transmission's own web client (Debian's transmission-common), served by btorrent from
/// `rpc_web_dir` and run in headless Chromium, lists the daemon's torrents through the RPC.
#[test]
#[ignore = "needs transmission-common and chromium"]
fn transmissions_web_client_lists_the_daemons_torrents_in_chromium() {
    let web = Path::new("/usr/share/transmission/web");
    assert!(
        web.join("index.html").is_file(),
        "transmission-common is not installed"
    );
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(
        dir.path(),
        &format!("rpc_web_dir = \"{}\"\n", web.display()),
    );
    let seed = dir.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    write_random(&seed.join("holiday-video.bin"), 200_000, 11);
    let meta = support::torrent(&seed.join("holiday-video.bin"), 16 * 1024, vec![]);
    let file = dir.path().join("h.torrent");
    std::fs::write(&file, meta.as_bytes()).unwrap();
    remote(
        &d,
        &["-a", file.to_str().unwrap(), "-w", seed.to_str().unwrap()],
    );
    until("the torrent to be seeding", 30, || {
        row(&d, 1).filter(|(done, _, _)| done == "100%")
    });
    let profile = dir.path().join("chromium-profile");
    let url = format!("http://{}/transmission/web/", d.url());
    // The page polls the RPC; the virtual time budget lets its first rounds run.
    let dom = until("the web client to list the torrent", 60, || {
        let out = run(
            Command::new("chromium")
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--virtual-time-budget=5000",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .args(["--dump-dom", &url]),
            Duration::from_secs(60),
        );
        out.stdout
            .contains("holiday-video.bin")
            .then_some(out.stdout)
    });
    assert!(
        dom.contains("class=\"torrent_name\">holiday-video.bin<"),
        "{dom}"
    );
    assert!(dom.contains("Seeding"), "the status shown: {dom}");
}

/// `transmission-remote -t 1 -d 50 -u 30` sets one torrent's own limits (kB/s of 1000 bytes): the
/// engine applies them, torrents.toml keeps them, and `-t 1 -i` shows them; `-D`/`-U` lift them,
/// `-pr` sets its own most peers and `-Bh`/`-Bl` its bandwidth priority.
#[test]
#[ignore = "needs transmission-cli (transmission-remote)"]
fn transmission_remote_sets_a_torrents_own_speed_limits() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let meta = add_seeding(&d, dir.path(), "clip.bin", 200_000, 12);
    let stored = || entry(dir.path(), &meta.info_hash).limits.engine();
    let info = remote(&d, &["-t", "1", "-i"]);
    assert!(info.contains("Download Limit: Unlimited"), "{info}");
    assert!(info.contains("Upload Limit: Unlimited"), "{info}");

    let out = remote(&d, &["-t", "1", "-d", "50", "-u", "30"]);
    assert!(out.contains("success"), "{out}");
    let want = btorrent::engine::TorrentLimits {
        upload: Some(30_000),
        download: Some(50_000),
        honors_session_limits: true,
        max_peers: None,
        priority: btorrent::engine::Priority::Normal,
    };
    assert_eq!(stored(), want);
    let info = remote(&d, &["-t", "1", "-i"]);
    assert!(info.contains("Download Limit: 50 kB/s"), "{info}");
    assert!(info.contains("Upload Limit: 30 kB/s"), "{info}");
    assert!(info.contains("Honors Session Limits: Yes"), "{info}");
    // The session's limits are untouched.
    let s = setting(dir.path());
    assert_eq!((s.download_limit, s.upload_limit), (None, None));

    // --no-honor-session: the torrent leaves the session's limits; -D/-U lift its own.
    // -pr with a torrent: its own most peers; -Bh its bandwidth priority.
    remote(
        &d,
        &[
            "-t",
            "1",
            "--no-honor-session",
            "-D",
            "-U",
            "-pr",
            "12",
            "-Bh",
        ],
    );
    assert_eq!(
        stored(),
        btorrent::engine::TorrentLimits {
            upload: None,
            download: None,
            honors_session_limits: false,
            max_peers: Some(12),
            priority: btorrent::engine::Priority::High,
        }
    );
    let info = remote(&d, &["-t", "1", "-i"]);
    assert!(info.contains("Peer limit: 12"), "{info}");
    assert!(info.contains("Bandwidth Priority: High"), "{info}");
    remote(&d, &["-t", "1", "-Bl"]);
    assert_eq!(stored().priority, btorrent::engine::Priority::Low);
    let info = remote(&d, &["-t", "1", "-i"]);
    assert!(info.contains("Download Limit: Unlimited"), "{info}");
    assert!(info.contains("Honors Session Limits: No"), "{info}");
}

/// `-sr`, `-SR`, `-srd` and `-gsr`/`-GSR`: the torrent's own ratio goal and the session's, as
/// transmission-remote 3.00 sets them, read back with `-i`/`-si` and kept in torrents.toml.
#[test]
#[ignore = "needs transmission-cli (transmission-remote)"]
fn transmission_remote_sets_seeding_ratio_goals() {
    use btorrent::config::GoalMode;
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let meta = add_seeding(&d, dir.path(), "show.bin", 150_000, 13);
    let stored = || entry(dir.path(), &meta.info_hash).goals;
    let info = remote(&d, &["-t", "1", "-i"]);
    assert!(info.contains("Ratio Limit: Default"), "{info}");

    let out = remote(&d, &["-t", "1", "-sr", "0.5"]);
    assert!(out.contains("success"), "{out}");
    let g = stored();
    assert_eq!(
        (g.seed_ratio_mode, g.seed_ratio_limit),
        (GoalMode::Single, Some(0.5))
    );
    let info = remote(&d, &["-t", "1", "-i"]);
    assert!(
        info.lines().any(|l| l.trim() == "Ratio Limit: 0.5"),
        "{info}"
    );
    // Nothing uploaded yet: the goal is not met, the torrent seeds on.
    assert!(!info.contains("Finished"), "{info}");

    remote(&d, &["-t", "1", "-SR"]);
    assert_eq!(stored().seed_ratio_mode, GoalMode::Unlimited);
    let info = remote(&d, &["-t", "1", "-i"]);
    assert!(info.contains("Ratio Limit: Unlimited"), "{info}");

    // The session's goal, and a torrent back on it.
    remote(&d, &["-gsr", "3"]);
    assert_eq!(setting(dir.path()).seed_ratio_limit, Some(3.0));
    let si = remote(&d, &["-si"]);
    assert!(si.contains("Default seed ratio limit: 3.0\n"), "{si}");
    remote(&d, &["-t", "1", "-srd"]);
    assert_eq!(stored().seed_ratio_mode, GoalMode::Global);
    let info = remote(&d, &["-t", "1", "-i"]);
    assert!(info.contains("Ratio Limit: Default"), "{info}");
    let out = remote(&d, &["-GSR"]);
    assert!(out.contains("success"), "{out}");
    assert_eq!(setting(dir.path()).seed_ratio_limit, None);
    let si = remote(&d, &["-si"]);
    assert!(si.contains("Default seed ratio limit: Unlimited"), "{si}");
}

/// `--blocklist-update` downloads the daemon's `blocklist_url` (a gzipped list) into its
/// `blocklists/` folder and puts it in force (`blocklist-size` says how many ranges).
#[test]
#[ignore = "needs transmission-cli (transmission-remote)"]
fn transmission_remote_updates_the_blocklist() {
    use std::io::Write as _;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"a:10.0.0.0-10.0.0.255\nb:10.0.2.0-10.0.2.255\n")
        .unwrap();
    let list = gz.finish().unwrap();
    let (base, _) = rt.block_on(support::tracker::http_double(move |_| (200, list.clone())));
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(
        dir.path(),
        &format!("blocklist = true\nblocklist_url = \"{base}/level1.gz\"\n"),
    );
    let out = remote(&d, &["--blocklist-update"]);
    assert!(out.contains("success"), "{out}");
    let size = d.client().ok(
        "session-get",
        serde_json::json!({"fields": ["blocklist-size"]}),
    );
    assert_eq!(size["blocklist-size"], 2, "{size}");
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    let text =
        std::fs::read_to_string(btorrent::blocklist::dir(&cfg).join("downloaded.txt")).unwrap();
    assert!(text.contains("10.0.2.0-10.0.2.255"), "{text}");
}

/// `-m`/`-M`: port forwarding asked of the router (a NAT-PMP double on a loopback address of its
/// own) for the peer port, and let go, as torrents.toml records.
#[test]
#[ignore = "needs transmission-cli (transmission-remote)"]
fn transmission_remote_switches_port_forwarding() {
    use crate::support::gateway::{self, NatPmpDouble};
    let rt = support::runtime();
    let ip = gateway::own_loopback_ip();
    let router = rt.block_on(NatPmpDouble::start(ip));
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = support::cli::bin();
    cmd.env_remove("BTORRENT_PORT_FORWARDING");
    // Off at the start: -m switches it on.
    let extra = format!("port_forwarding = false\n{}", gateway::setting(ip));
    let d = RpcDaemon::start_cmd(dir.path(), "0.0.0.0", &extra, cmd);
    let fields = serde_json::json!({"fields": ["peer-port"]});
    let port = d.client().ok("session-get", fields)["peer-port"]
        .as_u64()
        .unwrap() as u16;
    remote(&d, &["-m"]);
    assert!(setting(dir.path()).port_forwarding);
    until("the peer port mapped", 30, || {
        router
            .heard()
            .iter()
            .any(|h| h.protocol == "TCP" && h.internal == port && !h.delete)
            .then_some(())
    });
    remote(&d, &["-M"]);
    assert!(!setting(dir.path()).port_forwarding);
    until("the mapping deleted", 30, || {
        router
            .heard()
            .iter()
            .any(|h| h.protocol == "TCP" && h.internal == port && h.delete)
            .then_some(())
    });
}

/// `btorrent push` hands a torrent to a transmission-daemon through its RPC (its session-id
/// handshake, `torrent-add` with the metainfo and a download folder): it adds it and downloads it
/// from the btorrent daemon that seeds it, every piece checked by Transmission; pushed again, it
/// has it already; and `btorrent pull` fetches it back from Transmission by its name. (Transmission 3.00 does not dial peers on 127.x that a tracker names: the
/// seeder dials it, once an announce of its own, asked for with `btorrent reannounce`, has the
/// tracker name Transmission to it.)
#[test]
#[ignore = "needs transmission-daemon"]
fn push_hands_a_torrent_to_a_transmission_daemon_which_downloads_it() {
    use crate::support::cli;
    use crate::support::process::{free_port, Proc};
    use crate::support::rpc::Client;
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, tr_dir) = (dir.path().join("a"), dir.path().join("tr"));
    std::fs::create_dir_all(&a_dir).unwrap();
    let tracker = free_port();
    // Announces every 20 s (early ones every 10 s): the seeder hears of Transmission soon.
    let a = RpcDaemon::start(
        &a_dir,
        &format!("tracker_bind = \"127.0.0.1:{tracker}\"\ntracker_interval = 20"),
    );
    write_random(&a_dir.join("share/a.bin"), 400_000, 71);
    write_random(&a_dir.join("share/b.bin"), 90_000, 72);
    let url = format!("http://127.0.0.1:{tracker}/announce");
    cli::ok(&a_dir, &["create", "share", &url]);
    until("A to seed share", 30, || {
        let out = cli::ok(&a_dir, &["show", "share", "--json"]);
        out.contains("\"state\": \"seeding\"").then_some(())
    });

    let rpc_port = free_port();
    let settings = serde_json::json!({
        "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
        "port-forwarding-enabled": false, "blocklist-enabled": false,
        "peer-port": free_port(), "peer-port-random-on-start": false,
        "bind-address-ipv4": "127.0.0.1", "encryption": 1,
        "speed-limit-down-enabled": false, "speed-limit-up-enabled": false,
        "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
        "start-added-torrents": true, "download-queue-enabled": false,
        "rpc-enabled": true, "rpc-bind-address": "127.0.0.1", "rpc-port": rpc_port,
        "rpc-authentication-required": false, "rpc-whitelist-enabled": true,
        "rpc-whitelist": "127.0.0.1", "rpc-host-whitelist-enabled": false,
        "download-dir": tr_dir.join("default"), "message-level": 2, "preallocation": 0,
    });
    std::fs::create_dir_all(tr_dir.join("config")).unwrap();
    std::fs::write(tr_dir.join("config/settings.json"), settings.to_string()).unwrap();
    let _tr = Proc::spawn_logged(
        Command::new("transmission-daemon")
            .args(["-f", "-g"])
            .arg(tr_dir.join("config")),
        tr_dir.join("daemon.log"),
    );
    until("transmission-daemon's RPC", 30, || {
        std::net::TcpStream::connect(("127.0.0.1", rpc_port)).ok()
    });

    let into = tr_dir.join("from-btorrent");
    let to = format!("127.0.0.1:{rpc_port}");
    let out = cli::ok(
        &a_dir,
        &["push", "share", &to, "--dir", into.to_str().unwrap()],
    );
    assert!(out.contains("share: pushed to http://127.0.0.1:"), "{out}");
    let mut c = Client {
        port: rpc_port,
        auth: None,
        session_id: None,
        source: None,
    };
    until("Transmission to download share", 90, || {
        // No `ids`: every torrent (Transmission reads an empty list as none).
        let all = c.ok(
            "torrent-get",
            serde_json::json!({"fields": ["name", "percentDone"]}),
        );
        let t = all["torrents"].as_array().cloned().unwrap_or_default();
        let done = t
            .first()
            .filter(|t| t["percentDone"].as_f64() == Some(1.0) && t["name"] == "share");
        if done.is_none() {
            // Have the tracker name Transmission to the seeder, which dials it.
            cli::run(&a_dir, &["reannounce", "share"]);
            std::thread::sleep(Duration::from_secs(2));
        }
        done.map(drop)
    });
    support::assert_same_tree(&a_dir.join("share"), &into.join("share"));
    let again = cli::ok(&a_dir, &["push", "share", &to]);
    assert!(again.contains("has it already"), "{again}");

    // Pulled back by its name into a folder of its own, with the btorrent daemon gone (its tracker
    // with it): Transmission's magnet link and peer port, from its RPC, are all there is to go on.
    // From 127.0.0.2: Transmission 3.00 knows a peer by its IP alone, and 127.0.0.1 is the seed
    // that was A, so it would close every connection from there as one seed's to another.
    drop(a);
    let c_dir = dir.path().join("c");
    std::fs::create_dir_all(&c_dir).unwrap();
    std::fs::write(
        c_dir.join("torrents.toml"),
        "[settings]\nlisten_ip = \"127.0.0.2\"\nlisten_port = 0\nlsd = false\n",
    )
    .unwrap();
    let pulled = c_dir.join("pulled");
    let out = cli::ok(
        &c_dir,
        &[
            "pull",
            "share",
            &to,
            "-o",
            pulled.to_str().unwrap(),
            "--stall",
            "60",
        ],
    );
    assert!(
        out.contains("share: pulled from http://127.0.0.1:"),
        "{out}"
    );
    support::assert_same_tree(&a_dir.join("share"), &pulled.join("share"));
}
