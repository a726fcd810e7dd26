//! Real BitTorrent programs using btorrent's tracker (started in-process on an ephemeral loopback
//! port), and btorrent's tracker client against opentracker. Each test needs a Debian package and is
//! ignored by default; CI installs the packages and runs ignored tests too.

mod tracker_support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use btorrent::announce::{AnnounceEvent, AnnounceRequest, TrackerClient, TrackerError};
use btorrent::metainfo::{create_torrent, CreateOptions};
use btorrent::tracker::TrackerConfig;
use btorrent::{InfoHash, PeerId};
use tracker_support::TestTracker;

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

    /// Waits for the process to exit by itself, at most `limit`.
    async fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "process did not finish within {limit:?}; log:\n{}",
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

/// A pseudo-random file of `len` bytes in `dir`, and a torrent for it announcing to `announce`.
fn make_torrent(dir: &Path, announce: &str, len: usize) -> (PathBuf, Vec<u8>, InfoHash) {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let file = src.join("payload.bin");
    std::fs::write(&file, &data).unwrap();
    let opts = CreateOptions {
        trackers: vec![announce.to_string()],
        piece_length: Some(64 << 10),
        ..Default::default()
    };
    let meta = create_torrent(&file, &opts, &|_, _| {}).unwrap();
    let torrent = dir.join("payload.torrent");
    std::fs::write(&torrent, meta.as_bytes()).unwrap();
    (torrent, data, meta.info_hash)
}

/// aria2c with the loopback-friendly flags of the interop harness.
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

/// A minimal python3-libtorrent seeder/leecher (Debian's module, so /usr/bin/python3).
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
while time.time() - start < 120:
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

fn libtorrent(dir: &Path, mode: &str, torrent: &Path, folder: &Path, port: u16) -> Command {
    let script = dir.join("lt_client.py");
    std::fs::write(&script, LT_CLIENT).unwrap();
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(script)
        .arg(mode)
        .arg(torrent)
        .arg(folder)
        .arg(port.to_string());
    cmd
}

/// Waits until the tracker lists a seeder on `port`.
async fn wait_for_seeder(t: &TestTracker, port: u16, seeder: &mut Proc) {
    let start = Instant::now();
    let client = TrackerClient::new();
    loop {
        let peers = client.get_peers(&t.base(), None).await.unwrap();
        if peers.iter().any(|p| p.port == port && p.left == 0) {
            return;
        }
        if let Some(status) = seeder.child.try_wait().unwrap() {
            panic!("seeder exited ({status}); log:\n{}", seeder.log_text());
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "seeder never announced; log:\n{}",
            seeder.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Seeds with `seeder`, leeches with `leecher`, both finding each other only through our tracker.
async fn transfer(
    seeder: impl FnOnce(&Path, u16, &Path) -> Command,
    leecher: impl FnOnce(&Path, u16, &Path) -> Command,
) {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let (torrent, data, _) = make_torrent(dir.path(), &t.announce_url(), 3 << 20);
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let (seed_port, leech_port) = (free_port(), free_port());
    let mut seed = Proc::spawn(
        &mut seeder(&dir.path().join("src"), seed_port, &torrent),
        dir.path().join("seed.log"),
    );
    wait_for_seeder(&t, seed_port, &mut seed).await;
    let mut leech = Proc::spawn(
        &mut leecher(&out, leech_port, &torrent),
        dir.path().join("leech.log"),
    );
    let status = leech.wait(Duration::from_secs(120)).await;
    assert!(
        status.success(),
        "leecher failed ({status}); leech log:\n{}\nseed log:\n{}",
        leech.log_text(),
        seed.log_text()
    );
    let got = std::fs::read(out.join("payload.bin")).unwrap();
    assert!(got == data, "downloaded data differs from the source");
    let stats = t.tracker.stats();
    assert!(stats.announces >= 2, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn two_aria2c_find_each_other_through_our_tracker() {
    transfer(
        |data, port, tor| aria2(data, port, tor, true),
        |out, port, tor| aria2(out, port, tor, false),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent and aria2"]
async fn libtorrent_seeds_to_aria2c_through_our_tracker() {
    let scratch = tempfile::tempdir().unwrap();
    let lt_dir = scratch.path().to_path_buf();
    transfer(
        move |data, port, tor| libtorrent(&lt_dir, "seed", tor, data, port),
        |out, port, tor| aria2(out, port, tor, false),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent and aria2"]
async fn aria2c_seeds_to_libtorrent_through_our_tracker() {
    let scratch = tempfile::tempdir().unwrap();
    let lt_dir = scratch.path().to_path_buf();
    transfer(
        |data, port, tor| aria2(data, port, tor, true),
        move |out, port, tor| libtorrent(&lt_dir, "leech", tor, out, port),
    )
    .await;
}

/// opentracker in a temporary folder with a whitelist (Debian builds it whitelist-only).
struct OpenTracker {
    proc: Proc,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OpenTracker {
    async fn start(allowed: &[InfoHash]) -> OpenTracker {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // It chroots into the folder and drops to `nobody` when started as root.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let list: String = allowed
            .iter()
            .map(|h| format!("{}\n", h.to_hex()))
            .collect();
        std::fs::write(dir.path().join("whitelist.txt"), list).unwrap();
        std::fs::write(
            dir.path().join("opentracker.conf"),
            "access.whitelist /whitelist.txt\naccess.stats 127.0.0.1\n",
        )
        .unwrap();
        let port = free_port();
        let mut cmd = Command::new("opentracker");
        cmd.arg("-f")
            .arg(dir.path().join("opentracker.conf"))
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-P",
                &port.to_string(),
                "-d",
            ])
            .arg(dir.path())
            .current_dir(dir.path());
        let mut proc = Proc::spawn(&mut cmd, dir.path().join("opentracker.log"));
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(s) = proc.child.try_wait().unwrap() {
                panic!("opentracker exited ({s}): {}", proc.log_text());
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "opentracker did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        OpenTracker {
            proc,
            port,
            _dir: dir,
        }
    }
}

#[tokio::test]
#[ignore = "needs opentracker"]
async fn our_client_works_against_opentracker() {
    let hash = InfoHash(*b"btorrent-client-test");
    let ot = OpenTracker::start(&[hash]).await;
    let url = format!("http://127.0.0.1:{}/announce", ot.port);
    let client = TrackerClient::new();
    let req = |port: u16, left: u64, event| AnnounceRequest {
        info_hash: hash,
        peer_id: PeerId::generate(),
        port,
        uploaded: 0,
        downloaded: 0,
        left,
        event,
        numwant: Some(50),
        key: Some(0x1234),
        ip: None,
    };
    let (seed_port, leech_port) = (free_port(), free_port());
    let first = client
        .announce(&url, &req(seed_port, 0, Some(AnnounceEvent::Started)))
        .await
        .unwrap();
    assert!(first.interval > Duration::ZERO);
    let second = client
        .announce(&url, &req(leech_port, 1000, Some(AnnounceEvent::Started)))
        .await
        .unwrap();
    let seeder: SocketAddr = ([127, 0, 0, 1], seed_port).into();
    assert!(second.peers.contains(&seeder), "{second:?}");
    assert_eq!((second.complete, second.incomplete), (Some(1), Some(1)));
    let scrape = client.scrape(&url, &[hash]).await.unwrap();
    assert_eq!(scrape[&hash].complete, 1);
    assert_eq!(scrape[&hash].incomplete, 1);
    client
        .announce(&url, &req(leech_port, 0, Some(AnnounceEvent::Completed)))
        .await
        .unwrap();
    let scrape = client.scrape(&url, &[hash]).await.unwrap();
    assert_eq!(scrape[&hash].complete, 2);
    assert_eq!(scrape[&hash].downloaded, 1);
    // A torrent not on its whitelist: opentracker's failure reason comes through as such.
    let mut other = req(seed_port, 0, None);
    other.info_hash = InfoHash([7; 20]);
    let err = client.announce(&url, &other).await.unwrap_err();
    assert!(
        matches!(&err, TrackerError::Failure(r) if r.contains("not authorized")),
        "{err}"
    );
    drop(ot.proc);
}
