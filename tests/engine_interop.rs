//! btorrent swapping pieces with real clients over 127.0.0.1, both ways: aria2c, transmission-cli and
//! python3-libtorrent. Everyone finds everyone through btorrent's tracker, started in-process on an
//! ephemeral port. Each test needs a Debian package, so it is ignored by default; CI installs the
//! packages and runs ignored tests too.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use btorrent::announce::TrackerClient;
use btorrent::engine::{AddOptions, Session, TorrentHandle};
use btorrent::tracker::{Tracker, TrackerConfig};
use btorrent::Metainfo;
use common::*;

/// A child process killed (by its PID) and reaped when dropped.
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(cmd: &mut Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Proc { child, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_until(&mut self, secs: u64, what: &str, mut done: impl FnMut(&mut Self) -> bool) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "{what}: not within {secs} s; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The tracker, the data and the torrent of one test.
struct Setup {
    work: tempfile::TempDir,
    src: PathBuf,
    meta: Metainfo,
    torrent_file: PathBuf,
    announce: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Setup {
    /// `multi`: a folder of odd-sized files instead of one file.
    async fn new(multi: bool) -> Setup {
        init_logs();
        let work = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let announce = format!("http://{}/announce", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let cfg = TrackerConfig {
            interval: Duration::from_secs(10),
            min_interval: Duration::from_secs(5),
            ..Default::default()
        };
        tokio::spawn(Tracker::new(cfg).serve(listener, async move {
            let _ = rx.await;
        }));
        let src = work.path().join("src");
        let content = if multi {
            let top = src.join("set");
            for (i, n) in [0usize, 1, 5000, 16384, 3_000_001, 700_000, 2_500_000]
                .iter()
                .enumerate()
            {
                write_random(&top.join(format!("d{}/f{i}", i % 2)), *n, 40 + i as u64);
            }
            top
        } else {
            write_random(&src.join("payload.bin"), 8 * 1024 * 1024 + 4321, 41);
            src.join("payload.bin")
        };
        let meta = torrent(&content, 256 * 1024, vec![announce.clone()]);
        let torrent_file = work.path().join("t.torrent");
        std::fs::write(&torrent_file, meta.as_bytes()).unwrap();
        Setup {
            work,
            src,
            meta,
            torrent_file,
            announce,
            _stop: tx,
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        let d = self.work.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Our side: a session whose torrent announces to the test tracker.
    async fn ours(&self, data_dir: &Path) -> (Session, TorrentHandle) {
        let s = session().await;
        let h = s
            .add(
                self.meta.clone(),
                AddOptions {
                    data_dir: data_dir.to_path_buf(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        (s, h)
    }

    /// Waits until the tracker lists a complete peer on `port` (the other client seeds).
    async fn wait_seeder(&self, port: u16, p: &mut Proc) {
        let client = TrackerClient::new();
        let start = Instant::now();
        loop {
            let peers = client
                .get_peers(&self.announce, Some(self.meta.info_hash))
                .await
                .unwrap_or_default();
            if peers.iter().any(|x| x.port == port && x.left == 0) {
                return;
            }
            if let Some(st) = p.child.try_wait().unwrap() {
                panic!("seeder exited ({st}); log:\n{}", p.log_text());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the seeder never announced; log:\n{}",
                p.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn aria2(dir: &Path, port: u16, torrent: &Path, seed: bool) -> Command {
    let mut cmd = Command::new("aria2c");
    cmd.arg(format!("--dir={}", dir.display()))
        .arg(format!("--listen-port={port}"))
        .args([
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--file-allocation=none",
            "--bt-tracker-connect-timeout=5",
            "--bt-tracker-timeout=5",
            "--bt-max-peers=0",
            "--disable-ipv6=true",
            "--interface=127.0.0.1",
            "--summary-interval=0",
            "--console-log-level=notice",
        ]);
    if seed {
        cmd.args([
            "--check-integrity=true",
            "--bt-hash-check-seed=true",
            "--seed-ratio=0.0",
            "--seed-time=5",
        ]);
    } else {
        cmd.arg("--seed-time=0");
    }
    cmd.arg(torrent);
    cmd
}

const LT_CLIENT: &str = r#"
import sys, time
import libtorrent as lt
mode, torrent, folder, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s = lt.default_settings()
s.update({
    "listen_interfaces": "127.0.0.1:%d" % port, "outgoing_interfaces": "127.0.0.1",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "allow_multiple_connections_per_ip": True, "min_reconnect_time": 1,
    "enable_incoming_utp": False, "enable_outgoing_utp": False,
    "alert_mask": lt.alert.category_t.error_notification | lt.alert.category_t.tracker_notification,
})
ses = lt.session(s)
p = lt.add_torrent_params()
p.ti = lt.torrent_info(torrent)
p.save_path = folder
h = ses.add_torrent(p)
start = time.time(); last = 0
while time.time() - start < 150:
    for a in ses.pop_alerts():
        print("[%6.2f] %s" % (time.time() - start, a.message()), flush=True)
    st = h.status()
    if mode == "leech" and st.is_seeding:
        print("DONE", flush=True)
        sys.exit(0)
    if mode == "seed" and st.is_seeding and time.time() - last > 2:
        last = time.time()
        h.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
    time.sleep(0.05)
sys.exit(0 if mode == "seed" else 124)
"#;

fn libtorrent(work: &Path, mode: &str, torrent: &Path, folder: &Path, port: u16) -> Command {
    let script = work.join("lt_client.py");
    std::fs::write(&script, LT_CLIENT).unwrap();
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(script)
        .arg(mode)
        .arg(torrent)
        .arg(folder)
        .arg(port.to_string());
    cmd
}

/// transmission-cli with a loopback-only configuration; `done` appears when the download completes.
fn transmission(work: &Path, torrent: &Path, folder: &Path, port: u16) -> (Command, PathBuf) {
    let cfg = work.join(format!("tr-{port}"));
    std::fs::create_dir_all(&cfg).unwrap();
    let settings = serde_json::json!({
        "dht-enabled": false, "lpd-enabled": false, "pex-enabled": false, "utp-enabled": false,
        "port-forwarding-enabled": false, "blocklist-enabled": false,
        "peer-port": port, "peer-port-random-on-start": false,
        "bind-address-ipv4": "127.0.0.1", "encryption": 1,
        "speed-limit-down-enabled": false, "speed-limit-up-enabled": false,
        "ratio-limit-enabled": false, "idle-seeding-limit-enabled": false,
        "rpc-enabled": false, "message-level": 2, "preallocation": 0,
    });
    std::fs::write(cfg.join("settings.json"), settings.to_string()).unwrap();
    let done = cfg.join("done");
    let finish = cfg.join("finish.sh");
    std::fs::write(&finish, format!("#!/bin/sh\ntouch '{}'\n", done.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&finish, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("transmission-cli");
    cmd.arg("-g")
        .arg(&cfg)
        .arg("-w")
        .arg(folder)
        .args(["-p", &port.to_string(), "-M", "-D", "-U", "-ep", "-f"])
        .arg(&finish)
        .arg(torrent);
    (cmd, done)
}

/// btorrent seeds; `leecher(folder, port)` downloads and exits 0 (or `done` appears).
async fn we_seed(setup: Setup, mut p: Proc, out: PathBuf, done: Option<PathBuf>) {
    p.wait_until(120, "the download", |p| match &done {
        Some(f) => f.exists(),
        None => p.child.try_wait().unwrap().is_some_and(|s| {
            assert!(s.success(), "leecher failed ({s}); log:\n{}", p.log_text());
            true
        }),
    })
    .await;
    assert_same_tree(&setup.src, &out);
}

async fn seed_with_btorrent(setup: &Setup) -> (Session, TorrentHandle) {
    let (s, h) = setup.ours(&setup.src).await;
    wait_complete(&h, 30).await;
    (s, h)
}

async fn leech_with_btorrent(setup: &Setup) {
    let out = setup.dir("ours");
    let (s, h) = setup.ours(&out).await;
    wait_complete(&h, 120).await;
    assert_same_tree(&setup.src, &out);
    assert!(h.stats().downloaded >= setup.meta.info.total_length);
    s.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn btorrent_seeds_to_aria2c() {
    let setup = Setup::new(true).await;
    let (_s, h) = seed_with_btorrent(&setup).await;
    let out = setup.dir("aria2");
    let p = Proc::spawn(
        &mut aria2(&out, free_port(), &setup.torrent_file, false),
        setup.work.path().join("aria2.log"),
    );
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn aria2c_seeds_to_btorrent() {
    let setup = Setup::new(true).await;
    let port = free_port();
    let mut p = Proc::spawn(
        &mut aria2(&setup.src, port, &setup.torrent_file, true),
        setup.work.path().join("aria2.log"),
    );
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_seeds_to_libtorrent() {
    let setup = Setup::new(true).await;
    let (_s, h) = seed_with_btorrent(&setup).await;
    let out = setup.dir("lt");
    let p = Proc::spawn(
        &mut libtorrent(
            setup.work.path(),
            "leech",
            &setup.torrent_file,
            &out,
            free_port(),
        ),
        setup.work.path().join("lt.log"),
    );
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_seeds_to_btorrent() {
    let setup = Setup::new(false).await;
    let port = free_port();
    let mut p = Proc::spawn(
        &mut libtorrent(
            setup.work.path(),
            "seed",
            &setup.torrent_file,
            &setup.src,
            port,
        ),
        setup.work.path().join("lt.log"),
    );
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs transmission-cli"]
async fn btorrent_seeds_to_transmission_cli() {
    // Transmission never dials 127.x peers: it announces first, and our seeder dials it.
    let setup = Setup::new(false).await;
    let out = setup.dir("tr");
    let (mut cmd, done) = transmission(setup.work.path(), &setup.torrent_file, &out, free_port());
    let p = Proc::spawn(&mut cmd, setup.work.path().join("tr.log"));
    let client = TrackerClient::new();
    let start = Instant::now();
    while client
        .get_peers(&setup.announce, Some(setup.meta.info_hash))
        .await
        .unwrap_or_default()
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "transmission never announced"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_s, h) = seed_with_btorrent(&setup).await;
    we_seed(setup, p, out, Some(done)).await;
    assert!(h.stats().uploaded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs transmission-cli"]
async fn transmission_cli_seeds_to_btorrent() {
    let setup = Setup::new(false).await;
    let port = free_port();
    let (mut cmd, _) = transmission(setup.work.path(), &setup.torrent_file, &setup.src, port);
    let mut p = Proc::spawn(&mut cmd, setup.work.path().join("tr.log"));
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup).await;
}
