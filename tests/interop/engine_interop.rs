//! btorrent swapping pieces with real clients over 127.0.0.1, both ways: aria2c, transmission-cli,
//! python3-libtorrent and qbittorrent-nox. Everyone finds everyone through btorrent's tracker, started in-process on an
//! ephemeral port. Each test needs a Debian package, so it is ignored by default; CI installs the
//! packages and runs ignored tests too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::clients::{
    aria2, libtorrent, qbittorrent, transmission, wait_for_seeder, wait_listed, Qbt,
};
use crate::support::tracker::TestTracker;
use crate::support::*;
use btorrent::engine::{AddOptions, Session, SessionConfig, TorrentHandle};
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
        let meta = torrent(&content, 256 * 1024, vec![announce.clone()]);
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
    let p = setup.spawn(
        &mut aria2(&out, free_port(), &setup.torrent_file, false),
        "aria2.log",
    );
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs aria2"]
async fn aria2c_seeds_to_btorrent() {
    let setup = Setup::new(true).await;
    let port = free_port();
    let mut p = setup.spawn(
        &mut aria2(&setup.src, port, &setup.torrent_file, true),
        "aria2.log",
    );
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn btorrent_seeds_to_libtorrent() {
    let setup = Setup::new(true).await;
    let (_s, h) = seed_with_btorrent(&setup).await;
    // The only seed: libtorrent is offered pieces one or a few at a time (BEP 16) and still completes.
    assert!(h.stats().super_seeding);
    let out = setup.dir("lt");
    let p = setup.spawn(
        &mut libtorrent("leech", &setup.torrent_file, &out, free_port()),
        "lt.log",
    );
    we_seed(setup, p, out, None).await;
    assert!(h.stats().uploaded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3-libtorrent"]
async fn libtorrent_seeds_to_btorrent() {
    let setup = Setup::new(false).await;
    let port = free_port();
    let mut p = setup.spawn(
        &mut libtorrent("seed", &setup.torrent_file, &setup.src, port),
        "lt.log",
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
    let mut p = setup.spawn(&mut cmd, "tr.log");
    let hash = Some(setup.meta.info_hash);
    wait_listed(
        &setup.announce,
        hash,
        &mut p,
        "transmission to announce",
        |_| true,
    )
    .await;
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
    let mut p = setup.spawn(&mut cmd, "tr.log");
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup).await;
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
    let setup = Setup::new(true).await;
    let (_s, h) = seed_with_btorrent(&setup).await;
    let out = setup.dir("qbt");
    let web = free_port();
    let mut p = setup.spawn(
        &mut qbittorrent(setup.work.path(), free_port(), web),
        "qbt.log",
    );
    let api = Qbt::connect(web, &mut p).await;
    api.add(&setup.torrent_file, &out);
    qbt_complete(&api, &setup, &mut p).await;
    assert_same_tree(&setup.src, &out);
    assert!(h.stats().uploaded > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs qbittorrent-nox and curl"]
async fn qbittorrent_seeds_to_btorrent() {
    let setup = Setup::new(false).await;
    let port = free_port();
    let web = free_port();
    let mut p = setup.spawn(&mut qbittorrent(setup.work.path(), port, web), "qbt.log");
    let api = Qbt::connect(web, &mut p).await;
    api.add(&setup.torrent_file, &setup.src);
    setup.wait_seeder(port, &mut p).await;
    leech_with_btorrent(&setup).await;
}
