//! A magnet link's `so` (BEP 53, select only): the files it names are downloaded and the others
//! skipped, recorded in torrents.toml, from the one-shot `start` and the RPC's `torrent-add`; an
//! explicit file choice wins over the link's; a selection of no file is refused with the reason.

use std::path::Path;

use serde_json::json;

use crate::support::cli::{downloaded, loopback_home, run};
use crate::support::data::write_random;
use crate::support::engine::{seeder, torrent};
use crate::support::rpc::{poll, torrent_get, RpcDaemon};
use btorrent::metainfo::Metainfo;

/// `pack/` of three files (not aligned to the 16 KiB pieces), their contents in torrent order.
fn pack(dir: &Path) -> (Metainfo, Vec<Vec<u8>>) {
    std::fs::create_dir_all(dir.join("pack")).unwrap();
    let a = write_random(&dir.join("pack/a.bin"), 200_000, 1);
    let b = write_random(&dir.join("pack/b.bin"), 300_000, 2);
    let c = write_random(&dir.join("pack/c.bin"), 100_000, 3);
    let meta = torrent(&dir.join("pack"), 16 * 1024, vec![]);
    let names: Vec<_> = meta
        .info
        .files
        .iter()
        .map(|f| f.path.to_str().unwrap())
        .collect();
    assert_eq!(names, ["pack/a.bin", "pack/b.bin", "pack/c.bin"]);
    (meta, vec![a, b, c])
}

fn link(meta: &Metainfo, peer: std::net::SocketAddr, so: &str) -> String {
    format!(
        "magnet:?xt=urn:btih:{}&dn=pack&x.pe={peer}&so={so}",
        meta.info_hash.to_hex()
    )
}

fn skipped(dir: &Path) -> Vec<usize> {
    let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
    assert_eq!(cfg.torrents.len(), 1);
    cfg.torrents[0].files.skip.clone()
}

#[test]
fn start_downloads_only_the_files_a_magnets_so_names() {
    let root = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let seed_dir = root.path().join("seed");
    let (meta, content) = pack(&seed_dir);
    let (seed, _h) = rt.block_on(seeder(&meta, &seed_dir));
    let leech = loopback_home(&root.path().join("leech"));

    // Files 0 and 2, written as a range and an index (percent-encoded comma, as sites write it).
    let out = run(
        &leech,
        &[
            "start",
            &link(&meta, seed.listen_addr(), "2%2C0-0"),
            "-o",
            "dl",
        ],
    );
    downloaded(&out);
    assert_eq!(
        std::fs::read(leech.join("dl/pack/a.bin")).unwrap(),
        content[0]
    );
    assert_eq!(
        std::fs::read(leech.join("dl/pack/c.bin")).unwrap(),
        content[2]
    );
    // b.bin holds at most the pieces it shares with a.bin and c.bin.
    let b = std::fs::read(leech.join("dl/pack/b.bin")).unwrap_or_default();
    assert!(b != content[1], "b.bin, not selected, was downloaded whole");
    assert_eq!(skipped(&leech), [1]);

    // A selection of no file of the torrent says so (after the metadata, which names the count).
    let other = loopback_home(&root.path().join("other"));
    let bad = run(
        &other,
        &["start", &link(&meta, seed.listen_addr(), "3-9"), "-o", "dl"],
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "{err}");
    assert!(
        err.contains("selects none of the torrent's 3 files (indices 0 to 2)"),
        "{err}"
    );
    assert!(!other.join("dl/pack").exists());
    // A malformed one is refused before anything is fetched.
    let bad = run(
        &other,
        &["start", &link(&meta, seed.listen_addr(), "1-x"), "-o", "dl"],
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("not a list of file indices and ranges"),
        "{err}"
    );
}

/// A daemon serving the RPC, and a seeder of `pack/` its magnet links name.
struct RpcAndSeed {
    meta: Metainfo,
    content: Vec<Vec<u8>>,
    seed: btorrent::engine::Session,
    _seeding: btorrent::engine::TorrentHandle,
    home: std::path::PathBuf,
    daemon: RpcDaemon,
    _rt: tokio::runtime::Runtime,
    _root: tempfile::TempDir,
}

impl RpcAndSeed {
    fn start() -> RpcAndSeed {
        let root = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let seed_dir = root.path().join("seed");
        let (meta, content) = pack(&seed_dir);
        let (seed, seeding) = rt.block_on(seeder(&meta, &seed_dir));
        let home = root.path().join("daemon");
        std::fs::create_dir_all(&home).unwrap();
        let daemon = RpcDaemon::start(&home, "");
        RpcAndSeed {
            meta,
            content,
            seed,
            _seeding: seeding,
            home,
            daemon,
            _rt: rt,
            _root: root,
        }
    }

    /// The magnet link of `pack/` with `so` and the seeder as its peer.
    fn link(&self, so: &str) -> String {
        link(&self.meta, self.seed.listen_addr(), so)
    }
}

#[test]
fn the_rpc_adds_a_magnet_with_its_selection_unless_the_request_chooses() {
    let s = RpcAndSeed::start();
    let (content, home) = (&s.content, &s.home);
    let mut c = s.daemon.client();
    let dl = home.join("dl");

    let a = c.ok(
        "torrent-add",
        json!({"filename": s.link("1"), "download-dir": dl}),
    );
    let id = a["torrent-added"]["id"].as_i64().unwrap();
    let t = poll("the selected file downloaded", 60, || {
        let t = torrent_get(
            &mut c,
            json!([id]),
            &["percentDone", "wanted", "sizeWhenDone"],
        )
        .pop()?;
        (t["percentDone"] == 1.0).then_some(t)
    });
    assert_eq!(t["wanted"], json!([0, 1, 0]));
    // b.bin and the parts of a.bin and c.bin that share its first and last pieces.
    let size = t["sizeWhenDone"].as_u64().unwrap();
    assert!((300_000..300_000 + 2 * 16 * 1024).contains(&size), "{size}");
    assert_eq!(std::fs::read(dl.join("pack/b.bin")).unwrap(), content[1]);
    assert_eq!(skipped(home), [0, 2]);
    c.ok("torrent-remove", json!({"ids": [id]}));

    // `files-unwanted` in the request is the user's choice: the link's `so` gives way.
    let dl2 = home.join("dl2");
    let a = c.ok(
        "torrent-add",
        json!({"filename": s.link("1"), "download-dir": dl2,
               "files-unwanted": [2]}),
    );
    let id = a["torrent-added"]["id"].as_i64().unwrap();
    let t = poll("the chosen files downloaded", 60, || {
        let t = torrent_get(&mut c, json!([id]), &["percentDone", "wanted"]).pop()?;
        (t["percentDone"] == 1.0).then_some(t)
    });
    assert_eq!(t["wanted"], json!([1, 1, 0]));
    assert_eq!(std::fs::read(dl2.join("pack/a.bin")).unwrap(), content[0]);
    assert_eq!(std::fs::read(dl2.join("pack/b.bin")).unwrap(), content[1]);
}

/// The RPC answers a magnet at once, so a `so` naming none of the files shows once the metadata
/// is in: the torrent stops with the reason and nothing is downloaded.
#[test]
fn the_rpc_shows_a_magnets_selection_of_no_file_as_the_torrents_error() {
    let s = RpcAndSeed::start();
    let home = &s.home;
    let mut c = s.daemon.client();
    let dl = home.join("dl");
    let a = c.ok(
        "torrent-add",
        json!({"filename": s.link("7"), "download-dir": dl}),
    );
    let id = a["torrent-added"]["id"].as_i64().unwrap();
    let t = poll("the metadata and the error", 60, || {
        let t = torrent_get(&mut c, json!([id]), &["status", "error", "errorString"]).pop()?;
        (t["error"] != 0).then_some(t)
    });
    assert_eq!(t["status"], 0, "{t}");
    let why = t["errorString"].as_str().unwrap();
    assert!(
        why.contains("selects none of the torrent's 3 files"),
        "{why}"
    );
    assert!(!dl.exists());
    let cfg = btorrent::config::Config::load(&home.join("torrents.toml")).unwrap();
    assert!(cfg.torrents.is_empty());
}
