//! The watch folder against a recording [`Sharing`] that checks every torrent it is asked to seed
//! against the data on disk: slow copies, restarts, removals, 200 files at once, unreadable entries,
//! dropped .torrent files. Each test has its own temporary folder and torrents.toml and ends within a
//! bounded time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{random_bytes, wait_until};
use anyhow::{bail, Result};
use btorrent::config::{Config, Origin};
use btorrent::events::{Event, EventBus, EventKind};
use btorrent::metainfo::{create_torrent, CreateOptions};
use btorrent::torrents::Torrents;
use btorrent::watch::{Sharing, WatchConfig, Watcher};
use btorrent::{InfoHash, Metainfo};
use futures::future::BoxFuture;
use parking_lot::Mutex;

const TRACKER: &str = "http://127.0.0.1:9/announce";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Seed(InfoHash, PathBuf),
    Download(InfoHash, PathBuf),
    Stop(InfoHash),
}

/// Records what the watcher asks of the engine; a seed is refused unless the data on disk matches
/// every piece of the torrent.
#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<Call>>,
    running: Mutex<HashMap<InfoHash, Metainfo>>,
    /// Refuse every seed, as an engine that cannot start would.
    refuse: std::sync::atomic::AtomicBool,
}

impl Recorder {
    fn calls(&self) -> Vec<Call> {
        self.log.lock().clone()
    }

    fn seeds(&self) -> Vec<InfoHash> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Seed(ih, _) => Some(ih),
                _ => None,
            })
            .collect()
    }

    fn running(&self, ih: &InfoHash) -> Option<Metainfo> {
        self.running.lock().get(ih).cloned()
    }
}

/// Checks every piece of `meta` against the files under `dir`, one piece in memory at a time.
fn verify(meta: &Metainfo, dir: &Path) -> Result<()> {
    use std::io::Read;
    let plen = meta.info.piece_length as usize;
    let mut piece = Vec::with_capacity(plen);
    let mut index = 0;
    let mut total = 0u64;
    let mut check = |piece: &mut Vec<u8>| -> Result<()> {
        if !meta.info.piece_matches(index, piece) {
            bail!("piece {index} does not match");
        }
        index += 1;
        piece.clear();
        Ok(())
    };
    for f in &meta.info.files {
        let mut left = f.length;
        let mut file = (!f.padding)
            .then(|| std::fs::File::open(dir.join(&f.path)))
            .transpose()?;
        while left > 0 {
            let take = (plen - piece.len()).min(left as usize);
            let at = piece.len();
            piece.resize(at + take, 0);
            if let Some(file) = &mut file {
                file.read_exact(&mut piece[at..])?;
            }
            left -= take as u64;
            total += take as u64;
            if piece.len() == plen {
                check(&mut piece)?;
            }
        }
    }
    if !piece.is_empty() {
        check(&mut piece)?;
    }
    if total != meta.info.total_length || index != meta.info.piece_count() {
        bail!("the torrent and the files disagree on the size");
    }
    Ok(())
}

impl Sharing for Recorder {
    fn seed<'a>(&'a self, meta: &'a Metainfo, data_dir: &'a Path) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.log
                .lock()
                .push(Call::Seed(meta.info_hash, data_dir.to_path_buf()));
            if self.refuse.load(std::sync::atomic::Ordering::Relaxed) {
                bail!("the session is not running");
            }
            verify(meta, data_dir)?;
            self.running.lock().insert(meta.info_hash, meta.clone());
            Ok(())
        })
    }

    fn download<'a>(
        &'a self,
        meta: &'a Metainfo,
        output_dir: &'a Path,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.log
                .lock()
                .push(Call::Download(meta.info_hash, output_dir.to_path_buf()));
            self.running.lock().insert(meta.info_hash, meta.clone());
            Ok(())
        })
    }

    fn stop<'a>(&'a self, ih: &'a InfoHash) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.log.lock().push(Call::Stop(*ih));
            self.running.lock().remove(ih);
            Ok(())
        })
    }
}

/// A temporary btorrent home: torrents.toml with default folders, and every bus event collected.
struct Home {
    _dir: tempfile::TempDir,
    root: PathBuf,
    bus: EventBus,
    events: Arc<Mutex<Vec<Event>>>,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(
            root.join("torrents.toml"),
            format!("[settings]\ndht = false\ntracker_url = \"{TRACKER}\"\n"),
        )
        .unwrap();
        std::fs::create_dir(root.join("watch")).unwrap();
        let bus = EventBus::default();
        let events = Arc::new(Mutex::new(Vec::new()));
        let mut rx = bus.subscribe();
        let sink = events.clone();
        tokio::spawn(async move {
            while let Ok(ev) = rx.recv().await {
                sink.lock().push(ev);
            }
        });
        Home {
            _dir: dir,
            root,
            bus,
            events,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn config_path(&self) -> PathBuf {
        self.path("torrents.toml")
    }

    fn config(&self) -> Config {
        Config::load(&self.config_path()).unwrap()
    }

    fn start(
        &self,
        sharing: Arc<Recorder>,
        quiet_ms: u64,
        rescan_ms: u64,
        events: bool,
    ) -> Watcher {
        let mut cfg = WatchConfig::new(&Torrents::open(&self.config_path())).unwrap();
        cfg.quiet = Duration::from_millis(quiet_ms);
        cfg.rescan = Duration::from_millis(rescan_ms);
        cfg.file_events = events;
        assert_eq!(cfg.trackers, [TRACKER]);
        Watcher::start(cfg, sharing, self.bus.clone()).unwrap()
    }

    fn events(&self, kind: EventKind) -> Vec<Event> {
        self.events
            .lock()
            .iter()
            .filter(|e| e.kind() == kind)
            .cloned()
            .collect()
    }

    fn torrent_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = match std::fs::read_dir(self.path("torrents")) {
            Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        };
        v.sort();
        v
    }
}

/// Waits for `n` more full passes than the watcher has made now.
async fn wait_passes(w: &Watcher, n: u64) {
    let target = w.status().full_passes + n;
    wait_until("full passes", Duration::from_secs(30), || {
        w.status().full_passes >= target
    })
    .await;
}

/// Everything about the files under `dir` the watcher must never change: content, size, times.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, i64, i64, i64, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let content = if m.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.insert(
                p,
                (
                    content,
                    m.mtime(),
                    m.mtime_nsec(),
                    m.ctime(),
                    m.ctime_nsec(),
                ),
            );
        }
    }
    out
}

/// Copies a folder into the watch folder file by file, each file in three writes, pausing between
/// them (never as long as the quiet period); checks after each step that nothing was hashed yet.
/// A machine so busy that one pause outlasts the quiet period makes the watcher right to hash early:
/// that attempt proves nothing and is made again with a quiet period twice as long.
async fn slow_copy_then_seeded(events: bool) {
    let mut quiet = 1500;
    for _ in 0..4 {
        if slow_copy_attempt(events, quiet).await {
            return;
        }
        eprintln!("a pause outlasted the {quiet} ms quiet period; again with twice that");
        quiet *= 2;
    }
    panic!("the machine never kept a pause under the quiet period");
}

/// One [`slow_copy_then_seeded`] with this quiet period; false if the copy stalled past it.
async fn slow_copy_attempt(events: bool, quiet: u64) -> bool {
    let home = Home::new();
    let rec = Arc::new(Recorder::default());
    let quiet_for = Duration::from_millis(quiet);
    let w = home.start(rec.clone(), quiet, if events { 5_000 } else { 250 }, events);
    wait_passes(&w, 1).await;
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("01 intro.flac", random_bytes(120_000, 1)),
        ("02 one byte.txt", random_bytes(1, 2)),
        ("03 empty", Vec::new()),
        ("disc 2/04 long.flac", random_bytes(300_000, 4)),
        ("disc 2/05 short.flac", random_bytes(40_000, 5)),
    ];
    let album = home.path("watch/album");
    let pause = Duration::from_millis(150);
    let mut last_change = Instant::now();
    for (rel, data) in &files {
        let dest = album.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if last_change.elapsed() >= quiet_for {
            w.stop(Duration::from_secs(5)).await;
            return false;
        }
        let mut f = std::fs::File::create(&dest).unwrap();
        last_change = Instant::now();
        for part in data.chunks(data.len().div_ceil(3).max(1)) {
            if last_change.elapsed() >= quiet_for {
                w.stop(Duration::from_secs(5)).await;
                return false;
            }
            f.write_all(part).unwrap();
            f.flush().unwrap();
            last_change = Instant::now();
            tokio::time::sleep(pause).await;
            let (hashed, calls, written) = (w.status().hashed, rec.calls(), home.torrent_files());
            // Read before the clock: the watcher saw the change no earlier than it was made.
            if last_change.elapsed() >= quiet_for {
                w.stop(Duration::from_secs(5)).await;
                return false;
            }
            assert_eq!(hashed, 0, "hashed while the copy was running");
            assert!(calls.is_empty(), "shared while the copy was running");
            assert!(written.is_empty());
        }
        drop(f);
        tokio::time::sleep(pause).await;
    }
    let before = snapshot(&home.path("watch"));
    wait_until("the album to be seeded", Duration::from_secs(20), || {
        !rec.seeds().is_empty()
    })
    .await;
    assert!(
        last_change.elapsed() >= quiet_for,
        "seeded {:?} after the last change, before the quiet period",
        last_change.elapsed()
    );
    // The status is published when the pass ends, just after the seed.
    wait_until("the status to count it", Duration::from_secs(5), || {
        w.status().shared == 1
    })
    .await;
    assert_eq!(w.status().hashed, 1, "hashed exactly once, after the copy");
    let ih = rec.seeds()[0];
    assert_eq!(rec.calls(), [Call::Seed(ih, home.path("watch"))]);
    let meta = rec
        .running(&ih)
        .expect("seed accepted: data matches every piece");
    let mut names: Vec<PathBuf> = meta.info.files.iter().map(|f| f.path.clone()).collect();
    names.sort();
    let mut want: Vec<PathBuf> = files
        .iter()
        .map(|(r, _)| Path::new("album").join(r))
        .collect();
    want.sort();
    assert_eq!(names, want);

    // The .torrent written, registered as a watch torrent with its entry.
    let written = home.path("torrents/album.torrent");
    assert_eq!(home.torrent_files(), std::slice::from_ref(&written));
    let on_disk = Metainfo::load(&written).unwrap();
    assert_eq!(on_disk.info_hash, ih);
    assert_eq!(on_disk.trackers(), [TRACKER]);
    let cfg = home.config();
    assert_eq!(cfg.torrents.len(), 1);
    let t = &cfg.torrents[0];
    assert_eq!(
        (t.origin, t.state.as_str(), t.name.as_str()),
        (Origin::Watch, "seeding", "album")
    );
    assert_eq!(
        t.watch.as_ref().unwrap().entry,
        PathBuf::from("watch/album")
    );
    assert_eq!(cfg.resolve(&t.file), written);

    // Events: pending once, then seeded.
    let pending = home.events(EventKind::WatchPending);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].path().as_deref(), Some(album.to_str().unwrap()));
    wait_until("the seeded event", Duration::from_secs(5), || {
        !home.events(EventKind::WatchSeeded).is_empty()
    })
    .await;
    let seeded = home.events(EventKind::WatchSeeded);
    assert_eq!(seeded.len(), 1);
    assert_eq!(seeded[0].info_hash(), Some(ih));
    assert_eq!(seeded[0].name(), Some("album"));
    assert_eq!(seeded[0].path().as_deref(), Some(album.to_str().unwrap()));

    // Later passes change nothing, and the dropped data was never touched.
    wait_passes(&w, 2).await;
    assert_eq!(rec.calls().len(), 1);
    assert_eq!(w.status().hashed, 1);
    assert!(home.events(EventKind::WatchRejected).is_empty());
    assert_eq!(snapshot(&home.path("watch")), before);
    w.stop(Duration::from_secs(5)).await;
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_copy_is_hashed_only_after_it_ends_then_seeded() {
    slow_copy_then_seeded(true).await;
}

/// Without file events (as on a network mount) the readiness checks and rescans alone get it right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_copy_without_file_events_relies_on_rescans() {
    slow_copy_then_seeded(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_seeds_again_without_a_second_torrent() {
    let home = Home::new();
    std::fs::write(home.path("watch/one.bin"), random_bytes(70_000, 1)).unwrap();
    std::fs::create_dir(home.path("watch/folder")).unwrap();
    std::fs::write(home.path("watch/folder/a"), random_bytes(5_000, 2)).unwrap();
    std::fs::write(home.path("watch/folder/b"), random_bytes(9_000, 3)).unwrap();
    let elsewhere = home.path("elsewhere/movie.bin");
    std::fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    std::fs::write(&elsewhere, random_bytes(50_000, 4)).unwrap();
    let opts = CreateOptions {
        trackers: vec![TRACKER.into()],
        ..Default::default()
    };
    let dropped = create_torrent(&elsewhere, &opts, &|_, _| {}).unwrap();
    std::fs::write(home.path("watch/movie.torrent"), dropped.as_bytes()).unwrap();

    let first = Arc::new(Recorder::default());
    let w = home.start(first.clone(), 300, 200, true);
    wait_until("three torrents running", Duration::from_secs(20), || {
        first.running.lock().len() == 3
    })
    .await;
    wait_until("the status to count them", Duration::from_secs(5), || {
        w.status().shared == 3
    })
    .await;
    assert_eq!(w.status().hashed, 2);
    w.stop(Duration::from_secs(5)).await;
    let toml = std::fs::read_to_string(home.config_path()).unwrap();
    let written = home.torrent_files();
    assert_eq!(written.len(), 3, "{written:?}");
    let stamps: Vec<_> = written
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();

    // A new process: every entry is shared again from the ledger, nothing is hashed or written.
    let second = Arc::new(Recorder::default());
    let w = home.start(second.clone(), 300, 200, true);
    wait_until(
        "the same three running again",
        Duration::from_secs(20),
        || second.running.lock().len() == 3,
    )
    .await;
    wait_passes(&w, 3).await;
    assert_eq!(w.status().hashed, 0, "a restart hashed again");
    assert_eq!(second.calls().len(), 3, "{:?}", second.calls());
    assert!(second
        .calls()
        .contains(&Call::Download(dropped.info_hash, home.path("output"))));
    let mut a: Vec<InfoHash> = first.running.lock().keys().copied().collect();
    let mut b: Vec<InfoHash> = second.running.lock().keys().copied().collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(std::fs::read_to_string(home.config_path()).unwrap(), toml);
    assert_eq!(home.torrent_files(), written);
    let again: Vec<_> = written
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .collect();
    assert_eq!(again, stamps);
    assert_eq!(
        home.events(EventKind::WatchSeeded).len(),
        2,
        "only the first run shared new data"
    );
    w.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_entry_is_no_longer_seeded() {
    let home = Home::new();
    std::fs::create_dir(home.path("watch/goes")).unwrap();
    std::fs::write(home.path("watch/goes/x.bin"), random_bytes(30_000, 1)).unwrap();
    std::fs::write(home.path("watch/stays.bin"), random_bytes(20_000, 2)).unwrap();
    let rec = Arc::new(Recorder::default());
    let w = home.start(rec.clone(), 300, 200, true);
    wait_until("two seeded", Duration::from_secs(20), || {
        rec.seeds().len() == 2
    })
    .await;
    let cfg = home.config();
    let goes = cfg
        .torrents
        .iter()
        .find(|t| t.name == "goes")
        .unwrap()
        .hash()
        .unwrap();
    let stays = cfg
        .torrents
        .iter()
        .find(|t| t.name == "stays.bin")
        .unwrap()
        .hash()
        .unwrap();

    std::fs::remove_dir_all(home.path("watch/goes")).unwrap();
    wait_until("the removed entry to stop", Duration::from_secs(10), || {
        rec.calls().contains(&Call::Stop(goes))
    })
    .await;
    assert!(rec.running(&goes).is_none());
    assert!(rec.running(&stays).is_some());
    let cfg = home.config();
    assert_eq!(cfg.torrents.len(), 1);
    assert_eq!(cfg.torrents[0].hash(), Some(stays));
    wait_passes(&w, 2).await;
    assert_eq!(
        rec.calls()
            .iter()
            .filter(|c| matches!(c, Call::Stop(_)))
            .count(),
        1
    );
    w.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_files_dropped_at_once_give_two_hundred_torrents() {
    let home = Home::new();
    let rec = Arc::new(Recorder::default());
    let w = home.start(rec.clone(), 500, 5_000, true);
    wait_passes(&w, 1).await;
    for i in 0..200u64 {
        std::fs::write(
            home.path(&format!("watch/file-{i:03}.dat")),
            random_bytes(1_000 + i as usize, i),
        )
        .unwrap();
    }
    let dropped = Instant::now();
    wait_until("200 seeded", Duration::from_secs(90), || {
        rec.seeds().len() >= 200
    })
    .await;
    eprintln!(
        "200 files dropped at once: all seeded {:?} later",
        dropped.elapsed()
    );
    wait_passes(&w, 1).await;
    let seeds = rec.seeds();
    assert_eq!(seeds.len(), 200);
    assert_eq!(seeds.iter().collect::<HashSet<_>>().len(), 200);
    assert_eq!(rec.running.lock().len(), 200);
    assert_eq!(w.status().hashed, 200);
    assert_eq!(w.status().shared, 200);
    let cfg = home.config();
    assert_eq!(cfg.torrents.len(), 200);
    let mut names: Vec<&str> = cfg.torrents.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    let want: Vec<String> = (0..200).map(|i| format!("file-{i:03}.dat")).collect();
    assert_eq!(names, want);
    assert_eq!(home.torrent_files().len(), 200);
    wait_until("200 seeded events", Duration::from_secs(5), || {
        home.events(EventKind::WatchSeeded).len() == 200
    })
    .await;
    w.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_entries_are_reported_once_and_retried_when_they_change() {
    let home = Home::new();
    let target = home.path("target.bin");
    std::os::unix::fs::symlink(&target, home.path("watch/broken-link")).unwrap();
    std::fs::create_dir(home.path("watch/has-dangling")).unwrap();
    std::fs::write(
        home.path("watch/has-dangling/ok.bin"),
        random_bytes(10_000, 1),
    )
    .unwrap();
    std::os::unix::fs::symlink(&target, home.path("watch/has-dangling/link")).unwrap();
    // Readable, but a name other clients cannot store: refused when it is hashed.
    std::fs::create_dir(home.path("watch/bad-names")).unwrap();
    std::fs::write(home.path("watch/bad-names/back\\slash"), b"x").unwrap();
    let rec = Arc::new(Recorder::default());
    let w = home.start(rec.clone(), 300, 100, true);
    wait_until("three reports", Duration::from_secs(10), || {
        home.events(EventKind::WatchRejected).len() >= 3
    })
    .await;
    wait_passes(&w, 15).await;
    let rejected = home.events(EventKind::WatchRejected);
    let mut paths: Vec<String> = rejected.iter().filter_map(|e| e.path()).collect();
    paths.sort();
    let want: Vec<String> = ["bad-names", "broken-link", "has-dangling"]
        .iter()
        .map(|n| home.path("watch").join(n).display().to_string())
        .collect();
    assert_eq!(paths, want, "each reported exactly once: {rejected:?}");
    assert!(rejected.iter().all(|e| e.message().is_some()));
    assert_eq!(w.status().hashed, 1, "only bad-names was hashed, once");
    assert_eq!(w.status().rejected, 3);
    assert!(rec.calls().is_empty());

    // The link target appears: both entries change, so they get another chance and are shared.
    std::fs::write(&target, random_bytes(25_000, 2)).unwrap();
    wait_until(
        "the two fixed entries seeded",
        Duration::from_secs(10),
        || rec.seeds().len() == 2,
    )
    .await;
    assert_eq!(home.events(EventKind::WatchRejected).len(), 3);
    let names: HashSet<String> = home
        .config()
        .torrents
        .iter()
        .map(|t| t.name.clone())
        .collect();
    // The top-level link is shared under its target's name, from where the target lies.
    assert_eq!(
        names,
        HashSet::from(["has-dangling".into(), "target.bin".into()])
    );
    assert!(rec
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Seed(_, d) if d == &home.root)));
    w.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_torrents_are_downloaded_bad_ones_refused_duplicates_deduplicated() {
    let home = Home::new();
    let opts = CreateOptions {
        trackers: vec![TRACKER.into()],
        ..Default::default()
    };
    let src = home.path("elsewhere/movie.bin");
    std::fs::create_dir_all(src.parent().unwrap()).unwrap();
    std::fs::write(&src, random_bytes(200_000, 1)).unwrap();
    let movie = create_torrent(&src, &opts, &|_, _| {}).unwrap();
    let dropped = home.path("watch/Movie.torrent");
    std::fs::write(&dropped, movie.as_bytes()).unwrap();
    std::fs::write(home.path("watch/bad.torrent"), b"d4:infoe").unwrap();
    // The same data dropped twice: as data and as a .torrent made elsewhere of the same content.
    std::fs::write(home.path("watch/dup.bin"), random_bytes(33_000, 2)).unwrap();
    std::fs::write(home.path("elsewhere/dup.bin"), random_bytes(33_000, 2)).unwrap();
    let dup = create_torrent(&home.path("elsewhere/dup.bin"), &opts, &|_, _| {}).unwrap();
    std::fs::write(home.path("watch/dup.bin.torrent"), dup.as_bytes()).unwrap();

    let rec = Arc::new(Recorder::default());
    let w = home.start(rec.clone(), 300, 200, true);
    wait_until("the download and the seed", Duration::from_secs(20), || {
        rec.calls().len() >= 2 && home.events(EventKind::WatchRejected).len() >= 2
    })
    .await;
    wait_passes(&w, 3).await;
    let calls = rec.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.contains(&Call::Download(movie.info_hash, home.path("output"))));
    assert!(calls.contains(&Call::Seed(dup.info_hash, home.path("watch"))));
    let rejected = home.events(EventKind::WatchRejected);
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    let about = |name: &str| {
        rejected
            .iter()
            .find(|e| e.path().as_deref() == Some(home.path("watch").join(name).to_str().unwrap()))
            .and_then(|e| e.message().map(str::to_string))
            .unwrap_or_else(|| panic!("no report for {name}: {rejected:?}"))
    };
    assert!(about("bad.torrent").contains("not a valid .torrent"));
    assert!(about("dup.bin.torrent").contains("already shared as dup.bin"));

    let cfg = home.config();
    assert_eq!(cfg.torrents.len(), 2);
    let t = cfg.find(&movie.info_hash).unwrap();
    assert_eq!((t.origin, t.state.as_str()), (Origin::Watch, "downloading"));
    assert_eq!(cfg.resolve(&t.data), home.path("output"));
    let kept = cfg.resolve(&t.file);
    assert_eq!(kept, home.path("torrents/movie.bin.torrent"));
    assert_eq!(std::fs::read(&kept).unwrap(), movie.as_bytes());
    assert_eq!(
        std::fs::read(&dropped).unwrap(),
        movie.as_bytes(),
        "the dropped file is untouched"
    );

    // Taking the .torrent out of the folder stops the download; its record leaves the ledger.
    std::fs::remove_file(&dropped).unwrap();
    wait_until("the download to stop", Duration::from_secs(10), || {
        rec.calls().contains(&Call::Stop(movie.info_hash))
    })
    .await;
    assert!(home.config().find(&movie.info_hash).is_none());
    w.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_entry_gets_a_new_torrent_in_place_of_the_old() {
    let home = Home::new();
    std::fs::create_dir(home.path("watch/growing")).unwrap();
    std::fs::write(home.path("watch/growing/a.bin"), random_bytes(40_000, 1)).unwrap();
    let rec = Arc::new(Recorder::default());
    let w = home.start(rec.clone(), 300, 200, true);
    wait_until("first seed", Duration::from_secs(10), || {
        rec.seeds().len() == 1
    })
    .await;
    let old = rec.seeds()[0];
    // The new file arrives whole (written beside the folder, then moved in): a file seen half
    // written would make one more torrent, replaced in turn once the write ends.
    std::fs::write(home.path("b.bin.part"), random_bytes(10_000, 2)).unwrap();
    std::fs::rename(home.path("b.bin.part"), home.path("watch/growing/b.bin")).unwrap();
    // Seed calls are logged before the recorder checks the data: wait until the new one runs and
    // the old one was stopped, not only asked for.
    wait_until("the new torrent", Duration::from_secs(10), || {
        let seeds = rec.seeds();
        seeds.len() == 2
            && rec.running(&seeds[1]).is_some()
            && rec.calls().contains(&Call::Stop(old))
    })
    .await;
    let new = rec.seeds()[1];
    assert_ne!(old, new);
    assert!(rec.calls().contains(&Call::Stop(old)));
    assert_eq!(rec.running(&new).unwrap().info.files.len(), 2);
    let cfg = home.config();
    assert_eq!(cfg.torrents.len(), 1);
    assert_eq!(cfg.torrents[0].hash(), Some(new));
    w.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_refusal_is_reported_once_and_retried_on_rescans() {
    let home = Home::new();
    std::fs::write(home.path("watch/doc.pdf"), random_bytes(12_000, 1)).unwrap();
    let rec = Arc::new(Recorder::default());
    rec.refuse.store(true, std::sync::atomic::Ordering::Relaxed);
    let w = home.start(rec.clone(), 200, 150, true);
    wait_until("the refusal", Duration::from_secs(10), || {
        !home.events(EventKind::WatchRejected).is_empty()
    })
    .await;
    wait_passes(&w, 5).await;
    let rejected = home.events(EventKind::WatchRejected);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let msg = rejected[0].message().unwrap().to_string();
    assert!(
        msg.contains("cannot seed doc.pdf") && msg.contains("not running"),
        "{msg}"
    );
    assert!(rec.seeds().len() >= 5, "retried on each full pass");
    assert_eq!(w.status().hashed, 1, "retries do not hash again");
    assert_eq!(home.config().torrents.len(), 1, "registered once");
    rec.refuse
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let ih = rec.seeds()[0];
    wait_until("the retry to succeed", Duration::from_secs(10), || {
        rec.running(&ih).is_some()
    })
    .await;
    w.stop(Duration::from_secs(5)).await;
}

/// A copy that pauses longer than the quiet period and resumes while the entry is being hashed: the
/// hash is abandoned and the entry starts over; the torrent seeded is the complete one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_during_hashing_starts_the_entry_over() {
    let home = Home::new();
    let rec = Arc::new(Recorder::default());
    let w = home.start(rec.clone(), 300, 5_000, true);
    let mut status = w.status_updates();
    std::fs::create_dir(home.path("watch/big")).unwrap();
    // Sparse, so the test costs hashing time but little disk.
    crate::support::sparse_file(&home.path("watch/big/part1.img"), 256 << 20);
    tokio::time::timeout(
        Duration::from_secs(20),
        status.wait_for(|s| s.hashing.as_deref() == Some("big")),
    )
    .await
    .expect("hashing starts within 20 s")
    .unwrap();
    std::fs::write(home.path("watch/big/part2.txt"), b"the rest of the copy").unwrap();
    wait_until(
        "the complete folder seeded",
        Duration::from_secs(60),
        || !rec.seeds().is_empty(),
    )
    .await;
    wait_until("the status to count it", Duration::from_secs(5), || {
        w.status().shared == 1
    })
    .await;
    let calls = rec.calls();
    assert_eq!(
        calls.len(),
        1,
        "only the complete version was shared: {calls:?}"
    );
    let meta = rec.running(&rec.seeds()[0]).unwrap();
    assert_eq!(meta.info.files.len(), 2);
    assert_eq!(w.status().hashed, 2, "hashed again after the change");
    assert_eq!(
        w.status().abandoned,
        1,
        "the first hash stopped at the change"
    );
    w.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_and_partial_files_wait_until_renamed() {
    let home = Home::new();
    for name in [".hidden", "movie.mkv.part", "page.crdownload", "x.!qB"] {
        std::fs::write(home.path("watch").join(name), random_bytes(5_000, 1)).unwrap();
    }
    let rec = Arc::new(Recorder::default());
    let w = home.start(rec.clone(), 200, 100, true);
    wait_passes(&w, 5).await;
    assert!(rec.calls().is_empty());
    assert!(home.events(EventKind::WatchPending).is_empty());
    std::fs::rename(
        home.path("watch/movie.mkv.part"),
        home.path("watch/movie.mkv"),
    )
    .unwrap();
    wait_until(
        "the finished download seeded",
        Duration::from_secs(10),
        || rec.seeds().len() == 1,
    )
    .await;
    assert_eq!(home.config().torrents[0].name, "movie.mkv");
    w.stop(Duration::from_secs(5)).await;
}

/// `torrent_format` chooses what the watch folder makes: here a v2 torrent (BEP 52), seeded from
/// the dropped folder (every piece checked against its merkle root); with `torrent_mtime` it
/// records the files' modification times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_folder_makes_the_torrent_format_the_settings_name() {
    use std::time::UNIX_EPOCH;
    let home = Home::new();
    let mut toml = std::fs::read_to_string(home.config_path()).unwrap();
    toml.push_str("torrent_format = \"v2\"\ntorrent_mtime = true\n");
    std::fs::write(home.config_path(), toml).unwrap();
    std::fs::create_dir(home.path("watch/album")).unwrap();
    for (name, seed, t) in [("a.flac", 3, 1_000_000_000), ("b.flac", 4, 1_100_000_000)] {
        let path = home.path(&format!("watch/album/{name}"));
        std::fs::write(&path, random_bytes(70_000 / seed as usize, seed)).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_secs(t)).unwrap();
    }
    let rec = Arc::new(Recorder::default());
    let w = home.start(rec.clone(), 200, 100, true);
    wait_until("the folder seeded", Duration::from_secs(10), || {
        rec.seeds().len() == 1
    })
    .await;
    let files = home.torrent_files();
    let meta = Metainfo::load(&files[0]).unwrap();
    assert_eq!(meta.info.format(), btorrent::metainfo::Format::V2);
    assert_eq!(meta.info.name, "album");
    let files = meta.info.files.iter().filter(|f| !f.padding);
    let times: Vec<_> = files.map(|f| f.mtime).collect();
    assert_eq!(times, [Some(1_000_000_000), Some(1_100_000_000)]);
    w.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_show_names_the_watch_entry_each_torrent_came_from() {
    let home = Home::new();
    std::fs::create_dir(home.path("watch/Holiday photos")).unwrap();
    std::fs::write(
        home.path("watch/Holiday photos/1.jpg"),
        random_bytes(8_000, 1),
    )
    .unwrap();
    let rec = Arc::new(Recorder::default());
    let w = home.start(rec.clone(), 200, 200, true);
    wait_until("seeded", Duration::from_secs(10), || rec.seeds().len() == 1).await;
    w.stop(Duration::from_secs(5)).await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_btorrent"))
            .args(args)
            .current_dir(&home.root)
            .env_remove("BTORRENT_CONFIG")
            .env("BTORRENT_DHT", "off")
            .env("BTORRENT_LSD", "off")
            .env("BTORRENT_PORT_FORWARDING", "off")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let table = run(&["show"]);
    assert!(table.contains("watch: Holiday photos"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&run(&["show", "--json"])).unwrap();
    assert_eq!(json[0]["origin"], "watch");
    // Paths are shown as torrents.toml resolves them: relative to its folder, here the current one.
    assert_eq!(json[0]["source"], "watch/Holiday photos");
    assert_eq!(json[0]["data"], "watch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_watch_folder_inside_its_own_output() {
    let home = Home::new();
    let mut cfg = WatchConfig::new(&Torrents::open(&home.config_path())).unwrap();
    cfg.watch_dir = home.path("output/watch");
    let err = Watcher::start(cfg, Arc::new(Recorder::default()), home.bus.clone())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("output folder"), "{err}");
}

/// The shell and the daemon get the watch folder through `Services`, configured from torrents.toml.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_run_the_watch_folder_from_the_settings() {
    use btorrent::services::{Services, ServicesOptions};
    let home = Home::new();
    std::fs::write(
        home.config_path(),
        format!("[settings]\ntracker_url = \"{TRACKER}\"\nwatch_dir = \"drop here\"\nwatch_quiet_secs = 1\nwatch_rescan_secs = 1\n"),
    )
    .unwrap();
    let rec = Arc::new(Recorder::default());
    let services = Services::start(
        &home.config_path(),
        ServicesOptions {
            tracker: false,
            peer: false,
            watch: true,
            sharing: Some(rec.clone()),
        },
        btorrent::events::EventBus::default(),
    )
    .await
    .unwrap();
    let mut events = services.bus.subscribe();
    assert!(
        home.path("drop here").is_dir(),
        "the watch folder is created"
    );
    std::fs::write(home.path("drop here/notes.txt"), b"shared by dropping").unwrap();
    let seeded = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let ev = events.recv().await.unwrap();
            if ev.kind() == EventKind::WatchSeeded {
                return ev;
            }
        }
    })
    .await
    .expect("watch_seeded within 15 s");
    assert_eq!(seeded.name(), Some("notes.txt"));
    assert_eq!(rec.seeds(), [seeded.info_hash().unwrap()]);
    let w = services.watch.as_ref().unwrap();
    wait_until("the status to count it", Duration::from_secs(5), || {
        w.status().shared == 1
    })
    .await;
    services.shutdown(Duration::from_secs(5)).await;
}

/// A watch folder that goes away (an unmounted share) is reported, not taken for an empty folder:
/// nothing is stopped, and when it is back nothing is hashed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_watch_folder_stops_nothing() {
    let home = Home::new();
    std::fs::write(home.path("watch/kept.bin"), random_bytes(9_000, 1)).unwrap();
    let rec = Arc::new(Recorder::default());
    let w = home.start(rec.clone(), 200, 100, true);
    wait_until("seeded", Duration::from_secs(10), || rec.seeds().len() == 1).await;
    std::fs::rename(home.path("watch"), home.path("away")).unwrap();
    wait_passes(&w, 5).await;
    assert!(
        !home.path("watch").exists(),
        "the folder is not created again"
    );
    let rejected = home.events(EventKind::WatchRejected);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert!(rejected[0].message().unwrap().contains("cannot read"));
    std::fs::rename(home.path("away"), home.path("watch")).unwrap();
    wait_passes(&w, 5).await;
    assert_eq!(rec.calls().len(), 1, "{:?}", rec.calls());
    assert_eq!(w.status().hashed, 1);
    assert_eq!(home.config().torrents.len(), 1);
    w.stop(Duration::from_secs(5)).await;
}
