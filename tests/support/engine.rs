//! Torrents of test data and peer sessions on 127.0.0.1: a seeder that has checked its data, a leecher
//! pointed at given peers, and waiting (boundedly) for a download to complete.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use btorrent::engine::{AddOptions, Session, SessionConfig, TorrentHandle};
use btorrent::metainfo::{create_torrent, CreateOptions};
use btorrent::wire::handshake::{read_handshake, write_handshake, Handshake};
use btorrent::Metainfo;

/// A torrent of the file or folder at `path` with the given piece length and trackers.
pub fn torrent(path: &Path, piece_length: u64, trackers: Vec<String>) -> Metainfo {
    let opts = CreateOptions {
        piece_length: Some(piece_length),
        trackers,
        ..Default::default()
    };
    create_torrent(path, &opts, &|_, _| {}).unwrap()
}

/// A hybrid torrent of the file or folder at `path` (pieces of `piece_length`), with its piece layers.
pub fn hybrid(path: &Path, piece_length: u64) -> Metainfo {
    let opts = CreateOptions {
        piece_length: Some(piece_length),
        hybrid: true,
        ..Default::default()
    };
    create_torrent(path, &opts, &|_, _| {}).unwrap()
}

/// `meta` as its info dictionary alone, without piece layers (what a `btih` link's fetch gives
/// when its peers give none).
pub fn bare(meta: &Metainfo) -> Metainfo {
    let mut w = btorrent::bencode::Writer::default();
    w.begin_dict().bytes(b"info").raw(meta.info_bytes()).end();
    let bare = Metainfo::from_bytes(&w.buf).unwrap();
    assert_eq!(bare.info.merkle(), None);
    bare
}

/// A hybrid torrent whose two sides describe different data: the torrent of `theirs` (made as
/// [`hybrid`] makes it) with its v1 `pieces` replaced by those of `ours` (the same length and
/// name). Its layers check against its own v2 roots, so it loads; the data of `ours` passes its
/// SHA-1 and fails its v2 side.
pub fn two_sided_hybrid(ours: &Path, theirs: &Path, piece_length: u64) -> Metainfo {
    let (good, other) = (hybrid(ours, piece_length), hybrid(theirs, piece_length));
    let mut bytes = other.as_bytes().to_vec();
    let (ours_v1, theirs_v1) = (good.info.pieces.concat(), other.info.pieces.concat());
    let at = bytes
        .windows(theirs_v1.len())
        .position(|w| w == theirs_v1)
        .unwrap();
    bytes[at..at + ours_v1.len()].copy_from_slice(&ours_v1);
    let mixed = Metainfo::from_bytes(&bytes).unwrap();
    assert!(mixed.info.merkle().is_some(), "its layers came with it");
    mixed
}

/// Adds `meta` to `s` with its data in `dir`, announcing to the one tracker `url`.
pub async fn add_announcing(s: &Session, meta: Metainfo, dir: &Path, url: &str) -> TorrentHandle {
    s.add(
        meta,
        AddOptions {
            data_dir: dir.to_path_buf(),
            trackers: Some(vec![url.to_string()]),
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// A session with the default settings (listening on an ephemeral port).
pub async fn session() -> Session {
    session_with(SessionConfig::default()).await
}

pub async fn session_with(cfg: SessionConfig) -> Session {
    Session::start(cfg).await.unwrap()
}

/// Data in `dir`, the given peers, and no trackers (the torrent's are not asked).
pub fn opts(dir: &Path, peers: Vec<SocketAddr>) -> AddOptions {
    AddOptions {
        data_dir: dir.to_path_buf(),
        peers,
        trackers: Some(vec![]),
        ..Default::default()
    }
}

/// A session seeding `meta` from the data in `dir`, its data check done (at most 30 s).
pub async fn seeder(meta: &Metainfo, dir: &Path) -> (Session, TorrentHandle) {
    seeder_with(SessionConfig::default(), meta, dir).await
}

/// [`seeder`] with settings of its own (an upload limit, an address).
pub async fn seeder_with(
    cfg: SessionConfig,
    meta: &Metainfo,
    dir: &Path,
) -> (Session, TorrentHandle) {
    let s = session_with(cfg).await;
    let h = s.add(meta.clone(), opts(dir, vec![])).await.unwrap();
    wait_complete(&h, 30).await;
    (s, h)
}

/// A session downloading `meta` into `dir` from `peers`; returns as soon as it has started.
pub async fn leecher(
    meta: &Metainfo,
    dir: &Path,
    peers: Vec<SocketAddr>,
) -> (Session, TorrentHandle) {
    leecher_with(SessionConfig::default(), meta, dir, peers).await
}

/// [`leecher`] with settings of its own.
pub async fn leecher_with(
    cfg: SessionConfig,
    meta: &Metainfo,
    dir: &Path,
    peers: Vec<SocketAddr>,
) -> (Session, TorrentHandle) {
    let s = session_with(cfg).await;
    let h = s.add(meta.clone(), opts(dir, peers)).await.unwrap();
    (s, h)
}

/// Seeds `meta` (its file `d.bin` in `src`) under `seeder` and downloads it under `leecher`, slowed
/// to about two seconds so the connection is looked at during the download (seeds drop their
/// connection once both are complete); returns what `look` says of each end's one peer (seed's,
/// leecher's), once the data is complete and identical.
pub async fn transfer_looking<T>(
    meta: &Metainfo,
    src: &Path,
    seeder: SessionConfig,
    leecher: SessionConfig,
    look: impl Fn(&btorrent::engine::PeerInfo) -> T,
) -> (T, T) {
    transfer_looking_via(meta, src, seeder, leecher, |a| a, look).await
}

/// [`transfer_looking`], the leecher dialing `dial(the seeder's listen address)`.
pub async fn transfer_looking_via<T>(
    meta: &Metainfo,
    src: &Path,
    seeder: SessionConfig,
    leecher: SessionConfig,
    dial: impl Fn(SocketAddr) -> SocketAddr,
    look: impl Fn(&btorrent::engine::PeerInfo) -> T,
) -> (T, T) {
    let (seed_s, seed_h) = seeder_with(seeder, meta, src).await;
    let dst = tempfile::tempdir().unwrap();
    let slow = SessionConfig {
        download_limit: Some(meta.info.total_length / 2),
        ..leecher
    };
    let (_leech_s, leech_h) =
        leecher_with(slow, meta, dst.path(), vec![dial(seed_s.listen_addr())]).await;
    let one_peer = |h: &TorrentHandle| h.peers().len() == 1;
    super::wait::wait_until(
        "both ends list the connection",
        Duration::from_secs(30),
        || one_peer(&seed_h) && one_peer(&leech_h),
    )
    .await;
    let ends = (look(&seed_h.peers()[0]), look(&leech_h.peers()[0]));
    wait_complete(&leech_h, 60).await;
    assert_eq!(
        std::fs::read(src.join("d.bin")).unwrap(),
        std::fs::read(dst.path().join("d.bin")).unwrap()
    );
    ends
}

/// Waits until `h` has every piece; panics with its stats after `secs`.
pub async fn wait_complete(h: &TorrentHandle, secs: u64) {
    match tokio::time::timeout(Duration::from_secs(secs), h.wait_complete()).await {
        Ok(r) => r.unwrap(),
        Err(_) => panic!("{} did not complete in {secs} s: {:?}", h.name(), h.stats()),
    }
}

/// Logs to stderr when `RUST_LOG` is set (e.g. `RUST_LOG=btorrent=debug`).
pub fn init_logs() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Receives events until one satisfies `pred`; returns every event received up to and including it.
/// Panics with what it saw if none does within `secs`.
pub async fn events_until(
    rx: &mut tokio::sync::broadcast::Receiver<btorrent::engine::Event>,
    secs: u64,
    what: &str,
    pred: impl Fn(&btorrent::engine::Event) -> bool,
) -> Vec<btorrent::engine::Event> {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Ok(e)) => {
                let hit = pred(&e);
                seen.push(e);
                if hit {
                    return seen;
                }
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("waiting for {what}: {e}; saw {seen:#?}"),
            Err(_) => panic!("no {what} within {secs} s; saw {seen:#?}"),
        }
    }
}

/// Opens `n` connections to `target` from `ip` that handshake and then only hold their slot (they
/// never send a bitfield, interest or request). Returns how many are still open, live.
pub async fn squatters(
    meta: &Metainfo,
    target: SocketAddr,
    ips: &[std::net::IpAddr],
    n: usize,
) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;
    let open = std::sync::Arc::new(AtomicUsize::new(0));
    for i in 0..n {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(ips[i % ips.len()], 0)).unwrap();
        let mut s = sock.connect(target).await.unwrap();
        let t = Duration::from_secs(10);
        let ours = Handshake::ours(meta.info_hash, btorrent::PeerId::generate());
        write_handshake(&mut s, &ours, t).await.unwrap();
        if read_handshake(&mut s, t).await.is_err() {
            continue;
        }
        open.fetch_add(1, Ordering::SeqCst);
        let open = open.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    open
}

/// A runtime of two worker threads, for a blocking test (one that drives a daemon through its RPC)
/// that runs engine sessions of its own beside it.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A home for an owner of torrents.toml on loopback (no DHT, no local discovery): the file, and a
/// 64 KiB `data/f.bin` (random bytes from `seed`) with its .torrent `f.torrent`, not registered.
pub struct OneFileHome {
    pub config: std::path::PathBuf,
    pub data: std::path::PathBuf,
    pub file: std::path::PathBuf,
    pub meta: Metainfo,
}

impl OneFileHome {
    /// Its torrent's entry in torrents.toml, `seeding` from `data`.
    pub fn entry(&self) -> btorrent::config::ManagedTorrent {
        btorrent::config::ManagedTorrent::new(
            "f.bin",
            &self.meta.info_hash,
            self.file.clone(),
            self.data.clone(),
            "seeding",
            btorrent::config::Origin::Created,
        )
    }
}

/// Makes a [`OneFileHome`] in `home`.
pub fn one_file_home(home: &Path, seed: u64) -> OneFileHome {
    let config = home.join("torrents.toml");
    std::fs::write(
        &config,
        "[settings]\ndht = false\nlsd = false\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\n",
    )
    .unwrap();
    let data = home.join("data");
    super::write_random(&data.join("f.bin"), 64 * 1024, seed);
    let meta = torrent(&data.join("f.bin"), 16 * 1024, vec![]);
    let file = home.join("f.torrent");
    std::fs::write(&file, meta.as_bytes()).unwrap();
    OneFileHome {
        config,
        data,
        file,
        meta,
    }
}
