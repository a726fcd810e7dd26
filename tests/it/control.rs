//! Stopping what runs: `btorrent pause|resume|remove` one-shot, on torrents.toml alone and through the
//! control socket of a running `btorrent daemon` (live figures in `show --json`, a pause that stops the
//! transfer at once, `remove --delete-data` that deletes the torrent's files and nothing else), a
//! stale socket left by a killed owner, requests the socket does not understand, and a one-shot
//! script's renames and relocations done by the daemon.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::cli::{bin, ok, run, tracker_process};
use crate::support::{write_tree, Proc};
use btorrent::config::Config;

fn settings(dir: &Path, extra: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("torrents.toml"),
        format!("[settings]\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\n{extra}"),
    )
    .unwrap();
}

fn socket(dir: &Path) -> PathBuf {
    dir.join(".btorrent/control.sock")
}

fn state_of(dir: &Path, name: &str) -> Option<String> {
    let cfg = Config::load(&dir.join("torrents.toml")).unwrap();
    cfg.torrents
        .iter()
        .find(|t| t.name == name)
        .map(|t| t.state.clone())
}

/// What one-shot `show --json` says of torrent `name` (`None` when it is not managed).
fn shown(dir: &Path, name: &str) -> Option<serde_json::Value> {
    let list: Vec<serde_json::Value> = serde_json::from_str(&ok(dir, &["show", "--json"])).unwrap();
    list.into_iter().find(|t| t["name"] == name)
}

/// Starts `btorrent daemon` in `dir`, its output in `dir/daemon.log`.
fn daemon(dir: &Path) -> Proc {
    Proc::spawn_logged(bin().arg("daemon").current_dir(dir), dir.join("daemon.log"))
}

/// torrents.toml's settings in `root`, `files` written (below `share/`), and a torrent of the folder
/// `share` made and registered (its tracker never answers).
fn registered_share(root: &Path, files: &[(&str, usize)]) {
    settings(root, "");
    write_tree(root, files);
    ok(root, &["create", "share", "http://127.0.0.1:1/announce"]);
}

/// Whether a shown torrent runs in the daemon and seeds.
fn seeding_here(t: &serde_json::Value) -> bool {
    t["running"] == true && t["state"] == "seeding"
}

/// A daemon in `root` seeding `share` (a.bin and b.bin, 100 kB), once it does.
async fn daemon_seeding_share(root: &Path) -> Proc {
    registered_share(root, &[("share/a.bin", 70_000), ("share/b.bin", 30_000)]);
    let d = daemon(root);
    running_in(&d, root, "share").await;
    shown_until(&d, root, "share", "seeded", seeding_here).await;
    d
}

/// Waits (at most 30 s) until the daemon `d` runs torrent `name`.
async fn running_in(d: &Proc, root: &Path, name: &str) {
    let start = Instant::now();
    while shown(root, name).map(|s| s["running"] == true) != Some(true) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the daemon never ran {name}: {}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SIGTERM, then the daemon must exit 0 within a bound.
async fn stop(mut p: Proc) {
    let pid = p.child.id() as i32;
    // SAFETY: a signal to our own child, identified by the pid we hold.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = p.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}: {}", p.log_text());
}

/// One request line to a control socket, and its reply line.
fn ask(sock: &Path, line: &[u8]) -> String {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(line).unwrap();
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    reply
}

/// A socket file nobody listens on, as a killed owner leaves it.
fn stale_socket(dir: &Path) {
    std::fs::create_dir_all(dir.join(".btorrent")).unwrap();
    drop(UnixListener::bind(socket(dir)).unwrap());
    assert!(UnixStream::connect(socket(dir)).is_err());
}

#[test]
fn without_an_owner_the_commands_edit_torrents_toml() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    registered_share(root, &[("share/a.bin", 70_000), ("share/sub/b.bin", 5_000)]);
    // A killed owner's socket does not get in the way.
    stale_socket(root);

    // Nothing runs it: how much of each file is on disk is not known, not 0%.
    let out = ok(root, &["show", "share"]);
    let row = out.lines().find(|l| l.contains("a.bin")).unwrap();
    let cells: Vec<&str> = row.split(['│', '┆']).map(str::trim).collect();
    assert_eq!(
        cells[1..6],
        ["0", "a.bin", "68.36 KiB", "-", "yes"],
        "{out}"
    );

    let out = ok(root, &["pause", "share"]);
    assert!(out.contains("share: paused"), "{out}");
    assert_eq!(state_of(root, "share").as_deref(), Some("paused"));
    let out = ok(root, &["resume", "share"]);
    assert!(out.contains("share: resumed (seeding)"), "{out}");
    assert_eq!(state_of(root, "share").as_deref(), Some("seeding"));

    let missing = run(root, &["pause", "nothing-like-it"]);
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("no managed torrent named"), "{err}");

    // Deleting data needs a yes, and with no terminal to ask on nothing is done without --yes.
    let refused = run(root, &["remove", "share", "--delete-data"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.lines().count() == 1 && err.contains("add --yes"),
        "{err}"
    );
    assert!(state_of(root, "share").is_some());
    assert!(root.join("share/a.bin").exists());

    // Without --delete-data the data stays.
    let out = ok(root, &["remove", "share"]);
    let stays = format!("share: removed; its data stays in {}\n", root.display());
    assert!(out.contains(&stays), "{out}");
    assert_eq!(state_of(root, "share"), None);
    assert!(root.join("share/a.bin").exists() && root.join("share/sub/b.bin").exists());
}

#[test]
fn remove_delete_data_deletes_the_torrents_files_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    registered_share(
        root,
        &[
            ("share/a.bin", 70_000),
            ("share/sub/b.bin", 5_000),
            ("share/link/c.bin", 100),
        ],
    );
    // After the torrent was made: a file of the user's in its folder, one beside it, and a folder of
    // the torrent replaced by a link to a folder elsewhere holding a file of the same name.
    write_tree(
        root,
        &[
            ("share/mine.txt", 10),
            ("beside.txt", 10),
            ("elsewhere/c.bin", 100),
        ],
    );
    std::fs::remove_dir_all(root.join("share/link")).unwrap();
    std::os::unix::fs::symlink(root.join("elsewhere"), root.join("share/link")).unwrap();
    std::fs::create_dir_all(root.join(".btorrent/resume")).unwrap();
    let ih = Config::load(&root.join("torrents.toml")).unwrap().torrents[0]
        .info_hash
        .clone();
    let resume = root.join(format!(".btorrent/resume/{ih}.resume"));
    std::fs::write(&resume, b"{}").unwrap();

    let out = ok(root, &["remove", &ih[..8], "--delete-data", "--yes"]);
    assert!(
        out.contains("share: removed; deleted 2 files (73.24 KiB)"),
        "{out}"
    );
    assert_eq!(state_of(root, "share"), None);
    for gone in ["share/a.bin", "share/sub/b.bin", "share/sub"] {
        assert!(!root.join(gone).exists(), "{gone} is still there");
    }
    for kept in [
        "share/mine.txt",
        "beside.txt",
        "elsewhere/c.bin",
        "share/link",
        "torrents/share.torrent",
        "torrents.toml",
    ] {
        assert!(root.join(kept).exists(), "{kept} was deleted");
    }
    assert!(!resume.exists(), "the resume data goes with the data");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_pause_stops_the_daemons_download_at_once() {
    let root = tempfile::tempdir().unwrap();
    let tracker_dir = root.path().join("tracker");
    settings(&tracker_dir, "");
    let (_tracker, url) = tracker_process(&tracker_dir);

    // The seeder: a one-shot `seed` of a folder of two files.
    let seed = root.path().join("seed");
    settings(&seed, &format!("tracker_url = \"{url}\"\n"));
    write_tree(
        &seed,
        &[("share/a.bin", 6_000_000), ("share/sub/b.bin", 50_000)],
    );
    // With a web seed where nothing listens: the leecher's asks fail, and say so.
    let web_seed = "http://127.0.0.1:1/";
    ok(
        &seed,
        &[
            "create",
            "share",
            "--piece-length",
            "64K",
            "--web-seed",
            web_seed,
        ],
    );
    let torrent = seed.join("torrents/share.torrent");
    let ih = btorrent::Metainfo::load(&torrent)
        .unwrap()
        .info_hash
        .to_hex();
    let _seeder = Proc::spawn(
        bin()
            .args(["seed", "torrents/share.torrent", "--data", "."])
            .current_dir(&seed)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );

    // The leecher: a daemon downloading slowly into dl/, which holds files of the user's too.
    let leech = root.path().join("leech");
    settings(&leech, "download_limit = \"300K\"\n");
    std::fs::copy(&torrent, leech.join("share.torrent")).unwrap();
    let mut toml = std::fs::read_to_string(leech.join("torrents.toml")).unwrap();
    toml.push_str(&format!(
        "\n[[torrent]]\nname = \"share\"\ninfo_hash = \"{ih}\"\nfile = \"share.torrent\"\ndata = \"dl\"\nstate = \"downloading\"\norigin = \"added\"\n"
    ));
    std::fs::write(leech.join("torrents.toml"), toml).unwrap();
    write_tree(&leech, &[("dl/share/mine.txt", 10), ("dl/other.bin", 10)]);
    let d = daemon(&leech);

    // Ready when one-shot `show` reports the daemon's live figures: downloading, bytes verified.
    let live = |dir: &Path| shown(dir, "share").unwrap();
    let start = Instant::now();
    loop {
        let t = live(&leech);
        if t["running"] == true && t["state"] == "downloading" && t["verified"].as_u64() > Some(0) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the daemon never downloaded: {t}\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sock = socket(&leech);
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The daemon's connections, one-shot: the seeder, sending to us.
    let start = Instant::now();
    let peer = loop {
        let out = ok(&leech, &["show", "share", "--peers", "--json"]);
        let peers: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        if let Some(p) = peers.iter().find(|p| p["downloaded"].as_u64() > Some(0)) {
            break p.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no peer sending: {out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The only seed super-seeds: it shows the pieces it offered, not all it has.
    assert!(peer["pieces"].as_u64() > Some(0), "{peer}");
    assert!(peer["progress"].as_f64() > Some(0.0), "{peer}");
    assert_eq!(peer["interested"], true, "{peer}");
    assert!(
        peer["client"].as_str().unwrap().starts_with("btorrent"),
        "{peer}"
    );
    assert!(
        peer["address"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{peer}"
    );
    assert!(
        peer["flags"].as_str().unwrap().contains(['D', 'd']),
        "{peer}"
    );
    let table = ok(&leech, &["show", "share", "--peers"]);
    assert!(
        table.contains("127.0.0.1:") && table.contains("btorrent"),
        "{table}"
    );
    // Below the peers, its web seed: failed (refused), asked again later.
    let start = Instant::now();
    loop {
        let table = ok(&leech, &["show", "share", "--peers"]);
        let row = table.lines().find(|l| l.contains(web_seed));
        if row.is_some_and(|r| r.contains("failed: ")) {
            assert!(table.contains("web seed"), "{table}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no failed web seed: {table}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its tracker, one-shot: answered, with the swarm as the tracker counted it then (this daemon
    // among the leechers, all of them downloading: none is a partial seed).
    let start = Instant::now();
    let tracker = loop {
        let out = ok(&leech, &["show", "share", "--trackers", "--json"]);
        let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        if let Some(t) = list.first().filter(|t| t["announced"] == true) {
            break t.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no tracker answer: {out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(tracker["url"], url.as_str(), "{tracker}");
    assert_eq!(
        (&tracker["ok"], &tracker["result"]),
        (&serde_json::json!(true), &serde_json::json!("Success")),
        "{tracker}"
    );
    assert!(tracker["seeders"].is_u64(), "{tracker}");
    assert!(tracker["leechers"].as_u64() >= Some(1), "{tracker}");
    assert_eq!(tracker["downloaders"], tracker["leechers"], "{tracker}");
    assert!(tracker["next_secs"].as_i64() > Some(0), "{tracker}");
    let table = ok(&leech, &["show", "share", "--trackers"]);
    assert!(
        table.contains(url.as_str()) && table.contains("downloading") && table.contains(" ok "),
        "{table}"
    );
    // One torrent: its clock, from the daemon's engine through the control socket.
    let one = ok(&leech, &["show", "share"]);
    assert!(
        one.contains("time: downloading ") && one.contains(", seeding "),
        "{one}"
    );

    // Pause: the daemon stops at once (the reply comes after the pause), its peers are let go at
    // once (within 10 s on a busy machine; a peer kept would stay for minutes), and nothing more
    // is verified.
    let asked = Instant::now();
    let out = ok(&leech, &["pause", "share"]);
    eprintln!("one-shot pause took {:?}", asked.elapsed());
    assert!(out.contains("share: paused"), "{out}");
    let paused_at = Instant::now();
    let mut t = live(&leech);
    assert_eq!(t["state"], "paused", "{t}");
    while t["peers"] != 0 {
        assert!(
            paused_at.elapsed() < Duration::from_secs(10),
            "peers still connected 10 s after the pause: {t}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        t = live(&leech);
    }
    eprintln!(
        "paused: peers let go {:?} after `pause` returned; {} bytes verified",
        paused_at.elapsed(),
        t["verified"]
    );
    let verified = t["verified"].as_u64().unwrap();
    assert!(verified < 6_050_000, "it finished before the pause: {t}");
    assert_eq!(state_of(&leech, "share").as_deref(), Some("paused"));

    // Resume: the download goes on in the daemon.
    let out = ok(&leech, &["resume", "share"]);
    assert!(out.contains("share: resumed (downloading)"), "{out}");
    let start = Instant::now();
    loop {
        let t = live(&leech);
        if t["state"] == "downloading" && t["verified"].as_u64() > Some(verified) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no progress after resume: {t}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Remove with its data: the daemon lets it go, and only the torrent's files are deleted.
    let out = ok(&leech, &["remove", "share", "--delete-data", "--yes"]);
    assert!(out.contains("share: removed; deleted"), "{out}");
    assert!(shown(&leech, "share").is_none());
    let list = ask(&sock, b"{\"op\":\"list\"}\n");
    assert!(list.contains("\"torrents\":[]"), "{list}");
    assert!(!leech.join("dl/share/a.bin").exists());
    assert!(!leech.join("dl/share/sub").exists());
    assert!(leech.join("dl/share/mine.txt").exists());
    assert!(leech.join("dl/other.bin").exists());

    // The socket goes with the daemon.
    stop(d).await;
    assert!(!sock.exists(), "the socket outlived its daemon");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_socket_is_replaced_and_bad_requests_get_an_error_reply() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    registered_share(root, &[("share/a.bin", 30_000)]);
    stale_socket(root);
    let d = daemon(root);
    let start = Instant::now();
    while shown(root, "share").unwrap()["running"] != true {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the daemon never answered on the socket: {}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!d.log_text().contains("control socket"), "{}", d.log_text());
    let sock = socket(root);

    for (line, want) in [
        (&b"garbage\n"[..], "bad request"),
        (b"{\"op\":\"format_disk\"}\n", "bad request"),
        (b"{\"op\":\"list\",\"x\":1}\n", "bad request"),
        (b"{\"op\":\"pause\",\"info_hash\":\"zz\"}\n", "40 hex digits"),
        (
            b"{\"op\":\"move_to\",\"info_hash\":\"0000000000000000000000000000000000000000\",\"dir\":\"rel\"}\n",
            "absolute",
        ),
        (
            b"{\"op\":\"relocate\",\"info_hash\":\"0000000000000000000000000000000000000000\",\"dir\":\"rel\"}\n",
            "absolute",
        ),
        (b"\xff\xfe\n", "bad request"),
    ] {
        let reply = ask(&sock, line);
        assert!(
            reply.starts_with("{\"ok\":false") && reply.contains(want),
            "{:?}: {reply}",
            String::from_utf8_lossy(line)
        );
    }
    // A line past the bound is refused and the connection closed: the daemon answers once the
    // bound is passed and closes, so the rest of the line may meet a closed socket (a broken
    // pipe here); the answer is read all the same.
    let mut huge = vec![b'x'; 100_000];
    huge.push(b'\n');
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(&huge);
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).unwrap();
    assert!(reply.contains("longer than"), "{reply}");
    // A torrent the daemon does not run is not found (the reply is not an error).
    let reply = ask(
        &sock,
        b"{\"op\":\"pause\",\"info_hash\":\"0000000000000000000000000000000000000000\"}\n",
    );
    assert_eq!(reply.trim(), "{\"ok\":true,\"found\":false}");
    // Several requests on one connection, and the daemon still serves.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"{\"op\":\"list\"}\n{\"op\":\"list\"}\n")
        .unwrap();
    let mut r = BufReader::new(s);
    for _ in 0..2 {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with("{\"ok\":true,\"torrents\":[{"), "{line}");
    }
    assert_eq!(shown(root, "share").unwrap()["state"], "seeding");
    stop(d).await;
    assert!(!sock.exists());
}

#[test]
fn a_one_shot_remove_on_a_terminal_asks_before_deleting() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    registered_share(root, &[("share/a.bin", 20_000), ("share/sub/b.bin", 100)]);
    let remove = |answer: &str, want: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_btorrent"));
        cmd.args(["remove", "share", "--delete-data"])
            .current_dir(root)
            .env_remove("BTORRENT_CONFIG")
            .env("BTORRENT_DHT", "off")
            .env("BTORRENT_LSD", "off")
            .env("BTORRENT_PORT_FORWARDING", "off");
        let mut p = expectrl::Session::spawn(cmd).expect("a pty");
        p.set_expect_timeout(Some(Duration::from_secs(30)));
        p.expect("Delete the files of share in").unwrap();
        p.expect("[y/N]").unwrap();
        p.send_line(answer).unwrap();
        p.expect(want).unwrap();
        p.expect(expectrl::Eof).unwrap();
    };
    remove("n", "share: nothing removed");
    assert!(root.join("share/a.bin").exists());
    assert_eq!(state_of(root, "share").as_deref(), Some("seeding"));
    remove("y", "share: removed; deleted 2 files");
    assert!(!root.join("share").exists());
    assert_eq!(state_of(root, "share"), None);
}

/// A one-shot script renaming the files of a torrent the daemon runs, then pointing it at a folder
/// the data was moved to by hand: both go through the control socket to the daemon, which does
/// them on the running torrent (it seeds on from the new names and place) and records them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_rename_and_find_data_reach_the_daemons_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    registered_share(root, &[("share/a.bin", 70_000), ("share/sub/b.bin", 5_000)]);
    let d = daemon(root);
    running_in(&d, root, "share").await;
    // Commands of the user's own (scripts/b-*.rhai), run one-shot.
    std::fs::create_dir_all(root.join("scripts")).unwrap();
    std::fs::write(
        root.join("scripts/b-rn.rhai"),
        "//! Rename.\nlet t = torrent(\"share\");\nprint(t.rename_path(\"share/sub\", \"pics\"));\n",
    )
    .unwrap();
    let out = ok(root, &["rn"]);
    assert!(out.contains("share/pics/b.bin"), "{out}");
    assert!(root.join("share/pics/b.bin").is_file() && !root.join("share/sub").exists());
    let e = Config::load(&root.join("torrents.toml")).unwrap().torrents[0].clone();
    assert_eq!(e.files.renamed.len(), 1, "{e:?}");

    std::fs::create_dir_all(root.join("else")).unwrap();
    std::fs::rename(root.join("share"), root.join("else/share")).unwrap();
    std::fs::write(
        root.join("scripts/b-fd.rhai"),
        format!(
            "//! Find.\nlet r = torrent(\"share\").find_data(\"{}\");\nprint(`found ${{r.good == r.pieces}} ${{r.running}}`);\n",
            root.join("else").display()
        ),
    )
    .unwrap();
    let out = ok(root, &["fd"]);
    assert!(out.contains("found true true"), "{out}");
    let s = shown(root, "share").unwrap();
    assert_eq!(s["state"], "seeding", "{s}");
    stop(d).await;
}

/// The bundled `b-rename` and `b-move`, one-shot: with a daemon running the torrent, it renames
/// and moves the files and seeds on from their new place; `--find` points it at a copy made by
/// hand and checks it; with none running, the files move and torrents.toml records the folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_and_move_commands_move_the_data_with_or_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    registered_share(root, &[("share/a.bin", 70_000), ("share/sub/b.bin", 5_000)]);
    let data_of = || shown(root, "share").unwrap()["data"].clone();

    // No daemon: the files move, torrents.toml follows.
    let out = ok(root, &["move", "share", "disk1"]);
    let disk1 = root.join("disk1");
    assert!(
        out.contains(&format!(
            "share: moved from {} to {}",
            root.display(),
            disk1.display()
        )),
        "{out}"
    );
    assert!(disk1.join("share/sub/b.bin").is_file() && !root.join("share").exists());
    assert_eq!(data_of(), disk1.display().to_string());

    let d = daemon(root);
    running_in(&d, root, "share").await;
    let out = ok(root, &["rename", "share", "share/sub", "pics"]);
    assert!(
        out.contains("share: share/sub is now pics") && out.contains("share/pics/b.bin"),
        "{out}"
    );
    assert!(disk1.join("share/pics/b.bin").is_file() && !disk1.join("share/sub").exists());
    let out = ok(root, &["move", "share", "disk2"]);
    let disk2 = root.join("disk2");
    assert!(out.contains(&format!("to {}", disk2.display())), "{out}");
    assert!(disk2.join("share/pics/b.bin").is_file() && !disk1.join("share").exists());
    assert_eq!(data_of(), disk2.display().to_string());
    // The daemon reads the data from there: a check finds every piece.
    let out = ok(root, &["check", "share"]);
    assert!(
        out.contains("pieces good, 0 bad") && !out.contains("missing"),
        "{out}"
    );

    // Copied by hand elsewhere, the original gone: --find points it there and checks it.
    let disk3 = root.join("disk3");
    write_tree(&disk3, &[("share/a.bin", 0), ("share/pics/b.bin", 0)]);
    for f in ["share/a.bin", "share/pics/b.bin"] {
        std::fs::copy(disk2.join(f), disk3.join(f)).unwrap();
    }
    std::fs::remove_dir_all(&disk2).unwrap();
    let out = ok(root, &["move", "share", "disk3", "--find"]);
    let s = shown(root, "share").unwrap();
    let pieces = out
        .split("; ")
        .nth(1)
        .and_then(|p| p.strip_suffix(" pieces good\n"))
        .unwrap_or_else(|| panic!("{out}"));
    let (good, all) = pieces.split_once(" of ").unwrap();
    assert_eq!(good, all, "{out}");
    assert!(
        out.starts_with(&format!("share: now in {};", disk3.display())),
        "{out}"
    );
    assert_eq!(s["data"], disk3.display().to_string());
    assert_eq!(s["state"], "seeding", "{s}");

    // Nothing of it where it is pointed: every piece it had is bad, to be downloaded again.
    let out = ok(root, &["move", "share", "empty", "--find"]);
    assert!(
        out.contains(&format!("; 0 of {all} pieces good, {all} bad\n")),
        "{out}"
    );
    assert!(out.contains("the rest is being downloaded again"), "{out}");
    // Each change of folder the daemon made said so once: the folder each command recorded in
    // torrents.toml after it is no hand edit to apply again.
    let moved: Vec<String> = d
        .log_text()
        .lines()
        .filter_map(|l| l.split_once("] moved share (").map(|(_, m)| m.to_string()))
        .collect();
    let want = [
        format!("{}): its files moved there", disk2.display()),
        format!(
            "{}): pointed there, {all} of {all} pieces found",
            disk3.display()
        ),
        format!(
            "{}): pointed there, 0 of {all} pieces found",
            root.join("empty").display()
        ),
    ];
    assert_eq!(moved, want, "{}", d.log_text());
    stop(d).await;
}

/// `btorrent run` while a daemon runs for the same torrents.toml: the torrent a script starts is
/// handed to the daemon (one process runs a torrent, never two), so only the daemon announces it,
/// and the run's handle sees it running there. (Run on its own, the script's session would run it
/// while the daemon, seeing it registered, started it a second time.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_script_hands_what_it_starts_to_the_daemon() {
    let (url, seen) =
        crate::support::tracker::http_double(|_| (200, b"d8:intervali1800e5:peers0:e".to_vec()))
            .await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    settings(root, "");
    write_tree(root, &[("dl/x.bin", 60_000)]);
    let meta = crate::support::torrent(
        &root.join("dl/x.bin"),
        16 * 1024,
        vec![format!("{url}/announce")],
    );
    std::fs::write(root.join("x.torrent"), meta.as_bytes()).unwrap();
    let d = daemon(root);
    let start = Instant::now();
    while !socket(root).exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the daemon never listened: {}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(
        root.join("s.rhai"),
        "let t = start(\"x.torrent\", #{ output: \"dl\" });\nprint(`running ${t.running}`);\n",
    )
    .unwrap();
    let out = ok(root, &["run", "s.rhai"]);
    assert!(out.contains("running true"), "{out}");
    let announces = || seen.lock().unwrap().clone();
    let start = Instant::now();
    while !announces().iter().any(|l| l.contains("event=started")) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no started announce: {:?}",
            announces()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let peer_ids: std::collections::HashSet<String> = announces()
        .iter()
        .filter_map(|l| l.split("peer_id=").nth(1))
        .map(|p| p.split('&').next().unwrap_or(p).to_string())
        .collect();
    assert_eq!(
        peer_ids.len(),
        1,
        "one process announced: {:?}",
        announces()
    );
    assert!(
        !announces().iter().any(|l| l.contains("event=stopped")),
        "the run did not run it itself: {:?}",
        announces()
    );
    let s = shown(root, "x.bin").unwrap();
    assert_eq!(s["running"], true, "{s}");
    stop(d).await;
}

/// Writes `state = "<to>"` over the state of the one torrent in `dir`'s torrents.toml, in place,
/// as an editor would; the rest of the text is kept.
fn edit_state_by_hand(dir: &Path, to: &str) {
    let path = dir.join("torrents.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("state = ") {
                format!("state = \"{to}\"")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("state = ")).count(),
        1
    );
    std::fs::write(&path, edited.join("\n") + "\n").unwrap();
}

/// Waits (at most 30 s) until one-shot `show --json` says of `name` what `want` accepts.
async fn shown_until(
    d: &Proc,
    root: &Path,
    name: &str,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) {
    until_said(d, &format!("{name} {what}"), || {
        let t = shown(root, name).unwrap();
        want(&t).then_some(()).ok_or(t.to_string())
    })
    .await;
}

/// Asks `say` every 100 ms until it says yes (`Ok`), at most 30 s; then panics with what it said
/// last and the daemon's log.
async fn until_said(d: &Proc, what: &str, mut say: impl FnMut() -> Result<(), String>) {
    let start = Instant::now();
    loop {
        let last = match say() {
            Ok(()) => return,
            Err(last) => last,
        };
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never {what}: {last}\n{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edit_of_a_torrents_state_applies_to_the_daemons_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let d = daemon_seeding_share(root).await;
    let seeding = seeding_here;

    edit_state_by_hand(root, "paused");
    shown_until(&d, root, "share", "paused", |t| {
        t["running"] == true && t["state"] == "paused"
    })
    .await;
    // The daemon's own records keep the user's word, and its log tells of the pause.
    assert_eq!(state_of(root, "share").as_deref(), Some("paused"));
    let logged = |line: &'static str| {
        let d = &d;
        move || {
            let log = d.log_text();
            log.contains(line).then_some(()).ok_or(log)
        }
    };
    until_said(&d, "the pause in the log", logged("paused share")).await;

    edit_state_by_hand(root, "seeding");
    shown_until(&d, root, "share", "resumed", seeding).await;
    until_said(&d, "the resume in the log", logged("resumed share")).await;

    edit_state_by_hand(root, "stopped");
    shown_until(&d, root, "share", "stopped", |t| t["running"] == false).await;
    assert_eq!(state_of(root, "share").as_deref(), Some("stopped"));

    // Stopped, then seeding again: started anew. And a SIGHUP after changes nothing more.
    edit_state_by_hand(root, "seeding");
    shown_until(&d, root, "share", "started again", seeding).await;
    // Its own limits, written by hand, are in force.
    let path = root.join("torrents.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "state = \"seeding\"",
        "state = \"seeding\"\nupload_limit = \"20K\"",
    );
    std::fs::write(&path, text).unwrap();
    until_said(&d, "the hand-written limit in force", || {
        // What the daemon's torrent has in force (`limit` without a change reads it there).
        let own = ok(root, &["limit", "share"]);
        own.contains("share: up 20.00 KiB/s")
            .then_some(())
            .ok_or(own)
    })
    .await;
    // And its choice of files: the second skipped (its table goes to the last entry, this one).
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n[torrent.files]\nskip = [1]\n");
    std::fs::write(&path, text).unwrap();
    until_said(&d, "the hand-written choice in force", || {
        let out = ok(root, &["show", "share"]);
        let row = out
            .lines()
            .find(|l| l.contains("b.bin"))
            .unwrap_or_default();
        let cells: Vec<&str> = row.split(['│', '┆']).map(str::trim).collect();
        (cells.get(5) == Some(&"skip")).then_some(()).ok_or(out)
    })
    .await;
    // SAFETY: a signal to our own child, identified by the pid we hold.
    assert_eq!(unsafe { libc::kill(d.child.id() as i32, libc::SIGHUP) }, 0);
    // The torrent seeds already: what shows the signal handled is the daemon's log.
    until_said(
        &d,
        "the SIGHUP in the log",
        logged("SIGHUP: torrents.toml read again"),
    )
    .await;
    shown_until(&d, root, "share", "kept seeding", seeding).await;
    assert_eq!(state_of(root, "share").as_deref(), Some("seeding"));
    stop(d).await;
}

/// A hand edit of a torrent's `data` (its files moved there by hand) points the daemon's torrent
/// there: it checks what it finds (one file of two here: the other was left behind), goes on from
/// that and says so in its log; the entry keeps the user's words. Moved back with the entry edited
/// back, it finds everything again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edit_of_a_torrents_data_folder_points_the_daemons_torrent_there() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let d = daemon_seeding_share(root).await;
    let complete = seeding_here;
    let total = shown(root, "share").unwrap()["pieces_total"]
        .as_i64()
        .unwrap();

    std::fs::create_dir_all(root.join("disk2/share")).unwrap();
    std::fs::rename(root.join("share/a.bin"), root.join("disk2/share/a.bin")).unwrap();
    let edit_data = |from: &str, to: &str| {
        let path = root.join("torrents.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let (from, to) = (format!("data = \"{from}\""), format!("data = \"{to}\""));
        assert_eq!(text.matches(&from).count(), 1, "{text}");
        std::fs::write(&path, text.replace(&from, &to)).unwrap();
    };
    edit_data(".", "disk2");
    // a.bin's pieces are found there (the one it shares with b.bin is not): not complete.
    shown_until(&d, root, "share", "a.bin found, b.bin missing", |t| {
        let have = t["pieces_have"].as_i64().unwrap_or(0);
        t["running"] == true && have > 0 && have < total && t["state"] != "seeding"
    })
    .await;
    let logged = |line: String| {
        let d = &d;
        move || {
            let log = d.log_text();
            log.contains(&line).then_some(()).ok_or(log)
        }
    };
    let moved = root.join("disk2").canonicalize().unwrap();
    let found = shown(root, "share").unwrap()["pieces_have"]
        .as_i64()
        .unwrap();
    let said = format!(
        "moved share ({}): pointed there, {found} of {total} pieces found",
        moved.display()
    );
    until_said(&d, "the new place in the log", logged(said)).await;
    let entry = shown(root, "share").unwrap();
    assert_eq!(entry["data"], "disk2", "the user's words kept: {entry}");

    // Back where it was, every piece again.
    std::fs::rename(root.join("disk2/share/a.bin"), root.join("share/a.bin")).unwrap();
    edit_data("disk2", ".");
    shown_until(&d, root, "share", "complete again", complete).await;
    stop(d).await;
}

/// A `complete_dir` written by hand under a complete torrent's entry moves its data there at once,
/// as it would have once the torrent completed: the daemon says `moved` in its log, the entry then
/// says where the data is, and the torrent seeds from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_written_complete_dir_moves_a_complete_torrents_data_there() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let d = daemon_seeding_share(root).await;
    let seeding = seeding_here;
    let path = root.join("torrents.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("state = \"seeding\"").count(), 1, "{text}");
    let text = text.replace(
        "state = \"seeding\"",
        "state = \"seeding\"\ncomplete_dir = \"done\"",
    );
    std::fs::write(&path, text).unwrap();
    until_said(&d, "the move in the log", || {
        let log = d.log_text();
        let moved = log
            .lines()
            .any(|l| l.contains("moved share (") && l.ends_with("done): its files moved there"));
        moved.then_some(()).ok_or(log)
    })
    .await;
    assert!(root.join("done/share/a.bin").is_file());
    assert!(!root.join("share/a.bin").exists());
    shown_until(&d, root, "share", "seeding from there", |t| {
        seeding(t)
            && t["complete_dir"].is_null()
            && t["data"].as_str().is_some_and(|p| p.ends_with("done"))
    })
    .await;
    stop(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_writes_the_layers_a_hybrid_derived_into_its_torrent_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    settings(root, "");
    write_tree(root, &[("share/a.bin", 300_000), ("share/b.bin", 5_000)]);
    ok(
        root,
        &[
            "create",
            "share",
            "--hybrid",
            "--piece-length",
            "32K",
            "--no-tracker",
        ],
    );
    let file = root.join("torrents/share.torrent");
    let made = btorrent::Metainfo::load(&file).unwrap();
    assert!(made.info.merkle().is_some());
    // The .torrent as a fetch from peers without layers would have kept it: no `piece layers`.
    let mut bare = btorrent::bencode::Writer::default();
    bare.begin_dict()
        .bytes(b"info")
        .raw(made.info_bytes())
        .end();
    std::fs::write(&file, &bare.buf).unwrap();

    let d = daemon(root);
    let start = Instant::now();
    let kept = loop {
        let now = btorrent::Metainfo::load(&file).unwrap();
        if now.info.merkle().is_some() {
            break now;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the layers never reached {}: {}",
            file.display(),
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(kept.info_hash, made.info_hash);
    assert_eq!(kept.info.merkle(), made.info.merkle());
    // The event's line: its printer hears the event beside the recorder, maybe after it wrote.
    until_said(&d, "the event in the log", || {
        let log = d.log_text();
        log.contains("layers_derived share")
            .then_some(())
            .ok_or(log)
    })
    .await;
    stop(d).await;
}

/// The announces among the tracker double's requests `seen` made from peer port `port`.
fn announces_from(seen: &std::sync::Mutex<Vec<String>>, port: u16) -> usize {
    let from = format!("&port={port}&");
    seen.lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("/announce?") && l.contains(&from))
        .count()
}

/// Waits (at most 30 s) until the tracker double's requests `seen` hold `n` announces from `port`.
async fn announces_until(
    seen: &std::sync::Mutex<Vec<String>>,
    port: u16,
    n: usize,
    what: &str,
    d: &Proc,
) {
    let start = Instant::now();
    while announces_from(seen, port) < n {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no {what}: {:?}\n{}",
            seen.lock().unwrap(),
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reannounce_asks_the_daemons_trackers_at_once() {
    // A tracker that wants the next announce in an hour, and allows one every second.
    let (url, seen) = crate::support::tracker::http_double(|_| {
        (
            200,
            b"d8:intervali3600e12:min intervali1e5:peers0:e".to_vec(),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    settings(root, "");
    write_tree(root, &[("share/a.bin", 2_000_000)]);
    ok(root, &["create", "share", &format!("{url}/announce")]);

    // Nothing runs it: nothing to ask, said so.
    let idle = run(root, &["reannounce", "share"]);
    assert!(!idle.status.success());
    let err = String::from_utf8_lossy(&idle.stderr);
    assert!(err.contains("share is not running"), "{err}");

    let d = daemon(root);
    running_in(&d, root, "share").await;
    let start = Instant::now();
    let port: u16 = loop {
        let first = seen.lock().unwrap().first().cloned();
        if let Some(port) = first.and_then(|l| {
            let (_, rest) = l.split_once("&port=")?;
            rest.split('&').next()?.parse().ok()
        }) {
            break port;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            d.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // A slow leecher keeps the seed company (a seed short of peers asks at every min interval).
    let meta = btorrent::Metainfo::load(&root.join("torrents/share.torrent")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let cfg = btorrent::engine::SessionConfig {
        download_limit: Some(20_000),
        ..Default::default()
    };
    let (leecher, l) =
        crate::support::leecher_with(cfg, &meta, out.path(), vec![([127, 0, 0, 1], port).into()])
            .await;
    crate::support::wait_until("the leecher to connect", Duration::from_secs(30), || {
        l.peers().len() == 1
    })
    .await;
    let before = announces_from(&seen, port);
    let out = ok(root, &["reannounce", "share"]);
    assert!(
        out.contains("share: asking its trackers for peers"),
        "{out}"
    );
    announces_until(&seen, port, before + 1, "announce on demand", &d).await;

    // Paused: it asks when it resumes.
    ok(root, &["pause", "share"]);
    let out = ok(root, &["reannounce", "share"]);
    assert!(
        out.contains("share: paused; its trackers are asked"),
        "{out}"
    );
    leecher.shutdown(Duration::from_secs(2)).await;
    stop(d).await;
}

/// A one-shot's pause, resume, limits and choice of files for the owner's torrent are recorded by
/// the owner as it does them:
/// its next look at torrents.toml finds no hand edit in the client's record of the same state. (A
/// record by the client alone was a change by someone else, which the owner applied as a hand
/// edit; read after the client's next command, a pause undid the resume that followed it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shots_commands_are_the_owners_records_not_hand_edits() {
    use btorrent::control::client::OwnerOrLocal;
    use btorrent::events::EventBus;
    use btorrent::script::live::LiveTorrents;
    use btorrent::services::PeerSlot;
    use btorrent::torrents::Torrents;
    use std::sync::Arc;
    let home = tempfile::tempdir().unwrap();
    let at = crate::support::one_file_home(home.path(), 5);
    let (config, ih) = (at.config.clone(), at.meta.info_hash);
    let owner = PeerSlot::new(&config, EventBus::default());
    owner
        .torrents()
        .update(|cfg| {
            cfg.upsert(at.entry());
            Ok(())
        })
        .unwrap();
    let session = owner.get_or_start().await.unwrap();
    owner.sync_managed().await;
    assert!(session.get(&ih).is_some(), "the owner runs the torrent");
    // Its data checked: a resume while the check runs records `downloading`, what the client then
    // sees complete records `seeding` (the check's end records it too, a moment later).
    crate::support::wait_until(
        "the owner's torrent seeding",
        Duration::from_secs(30),
        || session.get(&ih).unwrap().stats().state == btorrent::engine::TorrentState::Seeding,
    )
    .await;
    let _server = btorrent::control::Server::start(
        &config,
        Arc::new(owner.clone()),
        owner.torrents().clone(),
    )
    .unwrap();
    // The one-shot: a service of its own on the file, as another process has, and no session.
    let theirs = Torrents::open(&config);
    let local = Arc::new(PeerSlot::with(theirs.clone(), EventBus::default()));
    let client: Arc<dyn LiveTorrents> = Arc::new(OwnerOrLocal::new(&config, local));
    let paused =
        || session.get(&ih).unwrap().stats().state == btorrent::engine::TorrentState::Paused;
    for resume in [false, true, false, true] {
        let (theirs, client) = (theirs.clone(), client.clone());
        tokio::task::spawn_blocking(move || {
            let live = client.as_ref();
            if resume {
                btorrent::actions::resume(&theirs, live, &ih, "f.bin")
            } else {
                btorrent::actions::pause(&theirs, live, &ih, "f.bin")
            }
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(paused(), !resume, "the owner's torrent follows");
        // The owner looks at the file: the client's record is what the owner wrote already.
        owner.torrents().refresh();
        let edits = owner.torrents().take_edits();
        assert!(
            edits.iter().all(|(h, e)| *h != ih || e.state.is_none()),
            "resume {resume}: the command's record taken for a hand edit: {edits:?}"
        );
        let want = if resume { "seeding" } else { "paused" };
        assert_eq!(
            owner.torrents().config().unwrap().find(&ih).unwrap().state,
            want
        );
    }
    // Its own limits likewise.
    let limits = btorrent::engine::TorrentLimits {
        upload: Some(20_000),
        ..Default::default()
    };
    let (mine, theirs_live) = (theirs.clone(), client.clone());
    tokio::task::spawn_blocking(move || {
        btorrent::actions::set_limits(&mine, theirs_live.as_ref(), &ih, "f.bin", limits)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(session.get(&ih).unwrap().limits().upload, Some(20_000));
    owner.torrents().refresh();
    let edits = owner.torrents().take_edits();
    assert!(
        edits.iter().all(|(h, e)| *h != ih || e.limits.is_none()),
        "the limits' record taken for a hand edit: {edits:?}"
    );
    // And its choice of files (the torrent's one file skipped, pieces in order).
    tokio::task::spawn_blocking(move || {
        let skip = [(0, btorrent::engine::FilePriority::Skip)];
        let order = btorrent::actions::OrderChange::sequential(Some(true));
        btorrent::actions::choose_files(&theirs, client.as_ref(), &ih, "f.bin", &skip, order)
    })
    .await
    .unwrap()
    .unwrap();
    let files = &session.get(&ih).unwrap().stats().files;
    assert_eq!(files[0].priority, btorrent::engine::FilePriority::Skip);
    owner.torrents().refresh();
    let edits = owner.torrents().take_edits();
    assert!(
        edits.iter().all(|(h, e)| *h != ih || e.files.is_none()),
        "the file choice's record taken for a hand edit: {edits:?}"
    );
    let entry = owner
        .torrents()
        .config()
        .unwrap()
        .find(&ih)
        .unwrap()
        .clone();
    assert!(entry.files.sequential, "{entry:?}");
    owner.shutdown(Duration::from_secs(5)).await;
}
