//! btorrent swapping pieces with real clients over 127.0.0.1, both ways: aria2c, transmission-cli,
//! python3-libtorrent and qbittorrent-nox (and a BitTorrent v2 torrent with libtorrent). Everyone finds everyone through btorrent's tracker, started in-process on an
//! ephemeral port. Each test needs a Debian package, so it is ignored by default; CI installs the
//! packages and runs ignored tests too.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::clients::{
    aria2, libtorrent, qbittorrent_encrypting, transmission_encrypting, wait_for_seeder,
    wait_listed, Qbt,
};
use crate::support::tracker::TestTracker;
use crate::support::*;
use btorrent::engine::{AddOptions, Encryption, Session, SessionConfig, TorrentHandle};
use btorrent::metainfo::{create_torrent, CreateOptions, Format};
use btorrent::tracker::TrackerConfig;
use btorrent::Metainfo;

/// The tracker, the data and the torrent of one test.
pub(crate) struct Setup {
    pub(crate) work: tempfile::TempDir,
    pub(crate) src: PathBuf,
    pub(crate) meta: Metainfo,
    pub(crate) torrent_file: PathBuf,
    pub(crate) announce: String,
    _tracker: TestTracker,
}

impl Setup {
    /// `multi`: a folder of odd-sized files instead of one file.
    pub(crate) async fn new(multi: bool) -> Setup {
        Setup::made(multi, Format::V1).await
    }

    /// [`Setup::new`], the torrent made in `format` (v1, v2 or hybrid, BEP 52).
    pub(crate) async fn made(multi: bool, format: Format) -> Setup {
        init_logs();
        let work = tempfile::tempdir().unwrap();
        let tracker = TestTracker::start(TrackerConfig {
            interval: Duration::from_secs(10),
            min_interval: Duration::from_secs(5),
            ..Default::default()
        })
        .await;
        let announce = tracker.announce_url();
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
        let opts = CreateOptions {
            piece_length: Some(256 * 1024),
            trackers: vec![announce.clone()],
            v2: format == Format::V2,
            hybrid: format == Format::Hybrid,
            ..Default::default()
        };
        let meta = create_torrent(&content, &opts, &|_, _| {}).unwrap();
        let torrent_file = work.path().join("t.torrent");
        std::fs::write(&torrent_file, meta.as_bytes()).unwrap();
        Setup {
            work,
            src,
            meta,
            torrent_file,
            announce,
            _tracker: tracker,
        }
    }

    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        let d = self.work.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Our side: a session whose torrent announces to the test tracker.
    pub(crate) async fn ours(&self, data_dir: &Path) -> (Session, TorrentHandle) {
        self.ours_with(SessionConfig::default(), data_dir).await
    }

    /// [`Setup::ours`] with session settings of its own.
    pub(crate) async fn ours_with(
        &self,
        cfg: SessionConfig,
        data_dir: &Path,
    ) -> (Session, TorrentHandle) {
        let s = session_with(cfg).await;
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

    /// Starts another client, its output logged in the test's folder as `log`.
    pub(crate) fn spawn(&self, cmd: &mut std::process::Command, log: &str) -> Proc {
        Proc::spawn_logged(cmd, self.work.path().join(log))
    }

    /// Waits until the test tracker lists a peer (any) for this torrent: `who` (running as `p`)
    /// announced. Transmission never dials a 127.x peer, so a seed dials it after that.
    pub(crate) async fn wait_announced(&self, p: &mut Proc, who: &str) {
        let hash = Some(self.meta.info_hash);
        let what = format!("{who} to announce");
        wait_listed(&self.announce, hash, p, &what, |_| true).await;
    }

    /// Waits until the test tracker lists a complete peer on `port` for this torrent.
    pub(crate) async fn wait_seeder(&self, port: u16, p: &mut Proc) {
        wait_for_seeder(&self.announce, Some(self.meta.info_hash), port, p).await;
    }
}

/// btorrent seeds; the leecher `p` downloads into `out` and exits 0 (or `done` appears).
pub(crate) async fn we_seed(setup: Setup, mut p: Proc, out: PathBuf, done: Option<PathBuf>) {
    p.wait_until(120, "the download", |p| match &done {
        Some(f) => f.exists(),
        None => p.exited().is_some_and(|s| {
            assert!(s.success(), "leecher failed ({s}); log:\n{}", p.log_text());
            true
        }),
    })
    .await;
    assert_same_tree(&setup.src, &out);
}

pub(crate) async fn seed_with_btorrent(setup: &Setup) -> (Session, TorrentHandle) {
    let (s, h) = setup.ours(&setup.src).await;
    wait_complete(&h, 30).await;
    (s, h)
}

/// btorrent, with the encryption policy `ours`, downloads the setup's torrent from the swarm and
/// checks what it got; when it requires encryption, every peer it still lists is encrypted.
pub(crate) async fn leech_with_btorrent(setup: &Setup, ours: Encryption) {
    let out = setup.dir("ours");
    let cfg = SessionConfig {
        encryption: ours,
        ..Default::default()
    };
    let (s, h) = setup.ours_with(cfg, &out).await;
    wait_complete(&h, 120).await;
    assert_same_tree(&setup.src, &out);
    // Every byte of the files came over the wire (padding is never asked for).
    let info = &setup.meta.info;
    let data: u64 = info
        .files
        .iter()
        .filter(|f| !f.padding)
        .map(|f| f.length)
        .sum();
    assert!(h.stats().downloaded >= data, "{:?}", h.stats());
    if ours == Encryption::Require {
        assert!(h.peers().iter().all(|p| p.encrypted), "{:?}", h.peers());
    }
    s.shutdown(Duration::from_secs(2)).await;
}

/// The real clients of these tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Client {
    Aria2,
    Libtorrent,
    Transmission,
    Qbittorrent,
}

/// `client` set as it comes, or (`encrypted_only`) making and taking encrypted connections only:
/// libtorrent `forced` with RC4, `transmission-cli -er`, aria2c `--bt-require-crypto` with
/// `arc4`, qBittorrent's "Require encryption".
fn aria2_set(dir: &Path, port: u16, torrent: &Path, seed: bool, encrypted_only: bool) -> Command {
    let mut cmd = aria2(dir, port, torrent, seed);
    if encrypted_only {
        cmd.args(["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"]);
    }
    cmd
}

fn libtorrent_set(
    mode: &str,
    torrent: &Path,
    dir: &Path,
    port: u16,
    encrypted_only: bool,
) -> Command {
    let mut cmd = libtorrent(mode, torrent, dir, port);
    if encrypted_only {
        cmd.env("LT_ENC", "forced");
    }
    cmd
}

/// btorrent seeds the setup's torrent (a folder of odd-sized files when `multi`) to `client`.
pub(crate) async fn btorrent_seeds_to(client: Client, multi: bool, encrypted_only: bool) {
    let setup = Setup::new(multi).await;
    let work = setup.work.path().to_path_buf();
    let out = setup.dir("theirs");
    match client {
        Client::Aria2 | Client::Libtorrent => {
            let (_s, h) = seed_with_btorrent(&setup).await;
            let mut cmd = if client == Client::Aria2 {
                aria2_set(
                    &out,
                    free_port(),
                    &setup.torrent_file,
                    false,
                    encrypted_only,
                )
            } else {
                // The only seed: libtorrent is offered pieces one or a few at a time (BEP 16) and
                // still completes.
                assert!(h.stats().super_seeding);
                libtorrent_set(
                    "leech",
                    &setup.torrent_file,
                    &out,
                    free_port(),
                    encrypted_only,
                )
            };
            let p = setup.spawn(&mut cmd, "theirs.log");
            we_seed(setup, p, out, None).await;
            assert!(h.stats().uploaded > 0);
        }
        Client::Transmission => {
            // Transmission never dials 127.x peers: it announces first, and our seeder dials it.
            let (mut cmd, done) = transmission_encrypting(
                &work,
                &setup.torrent_file,
                &out,
                free_port(),
                encrypted_only,
            );
            let mut p = setup.spawn(&mut cmd, "theirs.log");
            setup.wait_announced(&mut p, "transmission").await;
            let (_s, h) = seed_with_btorrent(&setup).await;
            we_seed(setup, p, out, Some(done)).await;
            assert!(h.stats().uploaded > 0);
        }
        Client::Qbittorrent => {
            let (_s, h) = seed_with_btorrent(&setup).await;
            let web = free_port();
            let mut p = setup.spawn(
                &mut qbittorrent_encrypting(&work, free_port(), web, encrypted_only),
                "theirs.log",
            );
            let api = Qbt::connect(web, &mut p).await;
            api.add(&setup.torrent_file, &out);
            qbt_complete(&api, &setup, &mut p).await;
            assert_same_tree(&setup.src, &out);
            assert!(h.stats().uploaded > 0);
        }
    }
}

/// `client` seeds the setup's torrent to btorrent, whose encryption policy is `ours`.
pub(crate) async fn seeds_to_btorrent(
    client: Client,
    multi: bool,
    encrypted_only: bool,
    ours: Encryption,
) {
    let setup = Setup::new(multi).await;
    let work = setup.work.path().to_path_buf();
    let port = free_port();
    let mut p = match client {
        Client::Aria2 => setup.spawn(
            &mut aria2_set(&setup.src, port, &setup.torrent_file, true, encrypted_only),
            "theirs.log",
        ),
        Client::Libtorrent => setup.spawn(
            &mut libtorrent_set(
                "seed",
                &setup.torrent_file,
                &setup.src,
                port,
                encrypted_only,
            ),
            "theirs.log",
        ),
        Client::Transmission => {
            let (mut cmd, _) = transmission_encrypting(
                &work,
                &setup.torrent_file,
                &setup.src,
                port,
                encrypted_only,
            );
            setup.spawn(&mut cmd, "theirs.log")
        }
        Client::Qbittorrent => {
            let web = free_port();
            let mut p = setup.spawn(
                &mut qbittorrent_encrypting(&work, port, web, encrypted_only),
                "theirs.log",
            );
            Qbt::connect(web, &mut p)
                .await
                .add(&setup.torrent_file, &setup.src);
            p
        }
    };
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup, ours).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn btorrent_seeds_to_aria2c() {
    btorrent_seeds_to(Client::Aria2, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn aria2c_seeds_to_btorrent() {
    seeds_to_btorrent(Client::Aria2, true, false, Encryption::Allow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_seeds_to_libtorrent() {
    btorrent_seeds_to(Client::Libtorrent, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_seeds_to_btorrent() {
    seeds_to_btorrent(Client::Libtorrent, false, false, Encryption::Allow).await;
}

/// A v2-only torrent (BEP 52): libtorrent downloads it from btorrent, each file starting on a piece
/// boundary, every piece checked against its merkle root on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_seeds_a_v2_torrent_to_libtorrent() {
    let setup = Setup::made(true, Format::V2).await;
    assert!(setup.meta.info.v2.is_some());
    let out = setup.dir("theirs");
    let (_s, h) = seed_with_btorrent(&setup).await;
    let p = setup.spawn(
        &mut libtorrent_set("leech", &setup.torrent_file, &out, free_port(), false),
        "theirs.log",
    );
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
}

/// btorrent downloads a v2-only torrent from libtorrent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_seeds_a_v2_torrent_to_btorrent() {
    let setup = Setup::made(true, Format::V2).await;
    let port = free_port();
    let mut p = setup.spawn(
        &mut libtorrent_set("seed", &setup.torrent_file, &setup.src, port, false),
        "theirs.log",
    );
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup, Encryption::Allow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs transmission-cli"]
async fn btorrent_seeds_to_transmission_cli() {
    btorrent_seeds_to(Client::Transmission, false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs transmission-cli"]
async fn transmission_cli_seeds_to_btorrent() {
    seeds_to_btorrent(Client::Transmission, false, false, Encryption::Allow).await;
}

/// Waits until qBittorrent has the whole torrent, hash-checked, and seeds it.
pub(crate) async fn qbt_complete(api: &Qbt, setup: &Setup, p: &mut Proc) {
    let hash = setup.meta.info_hash;
    let start = std::time::Instant::now();
    loop {
        if let Some((progress, state)) = api.progress(hash).await {
            let seeding = ["uploading", "stalledUP", "queuedUP", "forcedUP", "pausedUP"];
            if progress >= 1.0 && seeding.contains(&state.as_str()) {
                return;
            }
        }
        if let Some(s) = p.exited() {
            panic!("qbittorrent-nox exited ({s}); log:\n{}", p.log_text());
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "qBittorrent did not complete: {:?}",
            api.progress(hash).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs qbittorrent-nox and curl"]
async fn btorrent_seeds_to_qbittorrent() {
    btorrent_seeds_to(Client::Qbittorrent, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs qbittorrent-nox and curl"]
async fn qbittorrent_seeds_to_btorrent() {
    seeds_to_btorrent(Client::Qbittorrent, false, false, Encryption::Allow).await;
}
