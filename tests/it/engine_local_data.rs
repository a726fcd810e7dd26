//! Finding a torrent's files on this machine (`engine::local_data`): a wanted file of a v2 or
//! hybrid torrent that another torrent of the session holds (the same `pieces root`) is copied
//! rather than fetched, a file offered as movable (a previous version's) is moved, one the new
//! version dropped is removed, and a candidate whose bytes no longer match its root is never taken
//! nor removed.

use std::path::Path;
use std::time::Duration;

use crate::support::*;
use btorrent::engine::{Event, SessionConfig, Take, TorrentHandle, TorrentState};
use btorrent::metainfo::{create_torrent, CreateOptions, Format};
use btorrent::Metainfo;

const K: usize = 1024;

fn made(path: &Path, format: Format, piece_length: u64) -> Metainfo {
    let o = CreateOptions {
        piece_length: Some(piece_length),
        ..Default::default()
    }
    .with_format(format);
    create_torrent(path, &o, &|_, _| {}).unwrap()
}

/// Bytes verified of each file, by its name.
fn done(h: &TorrentHandle) -> Vec<(String, u64)> {
    h.files()
        .into_iter()
        .filter(|f| !f.padding)
        .map(|f| (f.path.to_string_lossy().into_owned(), f.done))
        .collect()
}

/// Waits until `h`'s check is over (it downloads or seeds).
async fn checked(h: &TorrentHandle) {
    wait::wait_until("the check to end", Duration::from_secs(30), || {
        h.stats().state != TorrentState::Checking
    })
    .await;
}

/// What the `FoundLocally` event of `name` says, waited for (at most 10 s).
async fn found_said(rx: &mut tokio::sync::broadcast::Receiver<Event>, name: &str) -> String {
    let is_it = |e: &Event| matches!(e, Event::FoundLocally { name: n, .. } if n == name);
    let events = events_until(rx, 10, &format!("{name}'s found_locally event"), is_it).await;
    match events.last() {
        Some(Event::FoundLocally { message, .. }) => message.clone(),
        e => panic!("{e:?}"),
    }
}

/// A v2 torrent whose `x/a.bin` is the file `a.bin` of a hybrid torrent the session seeds (made
/// with another piece length) takes it by copy, checks it and fetches only the rest; `b.bin`,
/// whose copy in the other torrent was changed on disk after its check, is fetched, not copied, and
/// so is `new.bin`, which a private torrent holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_another_torrent_holds_is_copied_not_fetched() {
    init_logs();
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let a = write_random(&r.join("have/set/a.bin"), 300 * K + 5, 1);
    write_random(&r.join("have/set/b.bin"), 100 * K, 2);
    write_random(&r.join("src/pack/x/a.bin"), 300 * K + 5, 1);
    write_random(&r.join("src/pack/b.bin"), 100 * K, 2);
    write_random(&r.join("src/pack/new.bin"), 50 * K, 3);
    // new.bin is in a private torrent of the session too: not to be carried out of its swarm.
    write_random(&r.join("secret/s/new.bin"), 50 * K, 3);
    let have = made(&r.join("have/set"), Format::Hybrid, 64 * K as u64);
    let secret = create_torrent(
        &r.join("secret/s"),
        &CreateOptions {
            private: true,
            ..Default::default()
        }
        .with_format(Format::V2),
        &|_, _| {},
    )
    .unwrap();
    let pack = made(&r.join("src/pack"), Format::V2, 32 * K as u64);

    let s = session_with(SessionConfig {
        rename_partial_files: true,
        ..Default::default()
    })
    .await;
    let mut rx = s.subscribe().unwrap();
    let h1 = s.add(have, opts(&r.join("have"), vec![])).await.unwrap();
    wait_complete(&h1, 30).await;
    let h0 = s
        .add(secret, opts(&r.join("secret"), vec![]))
        .await
        .unwrap();
    wait_complete(&h0, 30).await;
    // Changed after its torrent checked it (same length): no longer what its root names.
    let b = r.join("have/set/b.bin");
    let mut bytes = std::fs::read(&b).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&b, &bytes).unwrap();

    let dst = tempfile::tempdir().unwrap();
    let h2 = s.add(pack.clone(), opts(dst.path(), vec![])).await.unwrap();
    checked(&h2).await;
    assert_eq!(h2.stats().state, TorrentState::Downloading);
    assert_eq!(
        done(&h2),
        [
            ("pack/b.bin".to_string(), 0),
            ("pack/new.bin".to_string(), 0),
            ("pack/x/a.bin".to_string(), a.len() as u64),
        ]
    );
    assert_eq!(std::fs::read(dst.path().join("pack/x/a.bin")).unwrap(), a);
    assert!(
        r.join("have/set/a.bin").exists(),
        "the other torrent keeps its file"
    );
    assert!(!dst.path().join("pack/b.bin").exists());
    assert!(!dst.path().join("pack/b.bin.part").exists());
    assert_eq!(h2.stats().downloaded, 0);
    assert_eq!(
        found_said(&mut rx, "pack").await,
        "1 file (307205 bytes) found on this machine, not fetched: 1 copied"
    );

    // The rest comes from a peer: b.bin and new.bin (150 KiB), not a.bin (300 KiB), cross the
    // wire (give or take an endgame's duplicate blocks).
    let (seeder, sh) = seeder(&pack, &r.join("src")).await;
    h2.add_peers(vec![seeder.listen_addr()]);
    wait_complete(&h2, 60).await;
    assert_same_tree(&r.join("src/pack"), &dst.path().join("pack"));
    let sent = sh.stats().uploaded;
    assert!(sent < a.len() as u64, "sent {sent}");
}

/// A previous version's files offered to be moved or removed: the one the new version put in
/// another folder is moved there (not copied, not fetched), the unchanged one is found in place, a
/// candidate at a path the new version has (changed there) is copied, never moved away; of the two
/// the new version dropped, the one as it was is removed with the folder it leaves empty, the one
/// changed here stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_versions_file_moves_to_where_the_new_version_has_it() {
    init_logs();
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // Version 1: a.jpg, b.jpg, c.jpg. Version 2: a.jpg moved to 2026/a.jpg, b.jpg unchanged,
    // c.jpg changed, its old content kept as old/c.jpg.
    let a = write_random(&r.join("v1/album/a.jpg"), 200 * K, 1);
    write_random(&r.join("v1/album/b.jpg"), 70 * K, 2);
    let c = write_random(&r.join("v1/album/c.jpg"), 90 * K, 3);
    write_random(&r.join("v1/album/gone/d.jpg"), 30 * K, 5);
    write_random(&r.join("v1/album/e.jpg"), 40 * K, 6);
    write_random(&r.join("v2/album/2026/a.jpg"), 200 * K, 1);
    write_random(&r.join("v2/album/b.jpg"), 70 * K, 2);
    write_random(&r.join("v2/album/c.jpg"), 90 * K, 4);
    write_random(&r.join("v2/album/old/c.jpg"), 90 * K, 3);
    let meta1 = made(&r.join("v1/album"), Format::Hybrid, 16 * K as u64);
    let meta2 = made(&r.join("v2/album"), Format::Hybrid, 16 * K as u64);

    let s = session().await;
    let mut rx = s.subscribe().unwrap();
    let dl = tempfile::tempdir().unwrap();
    // Version 1 is here (downloaded before).
    for name in ["a.jpg", "b.jpg", "c.jpg", "gone/d.jpg", "e.jpg"] {
        let to = dl.path().join("album").join(name);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(r.join("v1/album").join(name), to).unwrap();
    }
    let album = dl.path().join("album");
    let h1 = s.add(meta1.clone(), opts(dl.path(), vec![])).await.unwrap();
    wait_complete(&h1, 30).await;
    let offered = h1.local_files(Take::MoveOrRemove);
    assert_eq!(offered.len(), 5);
    // Changed here since: not the publisher's to remove.
    let e = dl.path().join("album/e.jpg");
    let mut changed = std::fs::read(&e).unwrap();
    changed[0] ^= 1;
    std::fs::write(&e, &changed).unwrap();
    s.remove(&meta1.info_hash).await.unwrap();

    // The new version's folder named another way (through a link): the files it has in place
    // (b.jpg) are still told from those it dropped, and kept.
    let alias = r.join("alias");
    std::os::unix::fs::symlink(dl.path(), &alias).unwrap();
    let h2 = s
        .add(
            meta2.clone(),
            btorrent::engine::AddOptions {
                local_files: offered,
                ..opts(&alias, vec![])
            },
        )
        .await
        .unwrap();
    checked(&h2).await;
    assert!(album.join("b.jpg").exists(), "b.jpg, unchanged, kept");
    assert_eq!(std::fs::read(album.join("2026/a.jpg")).unwrap(), a);
    assert!(!album.join("a.jpg").exists(), "a.jpg moved, not copied");
    assert_eq!(std::fs::read(album.join("old/c.jpg")).unwrap(), c);
    assert!(
        !album.join("gone").exists(),
        "d.jpg removed, and its folder"
    );
    assert_eq!(
        std::fs::read(&e).unwrap(),
        changed,
        "e.jpg, changed here, stays"
    );
    assert_eq!(
        done(&h2).iter().filter(|(_, d)| *d == 0).count(),
        1,
        "{:?}",
        done(&h2)
    );
    assert_eq!(
        done(&h2)
            .iter()
            .find(|(n, _)| n == "album/c.jpg")
            .unwrap()
            .1,
        0,
        "c.jpg changed: it is to fetch"
    );
    assert_eq!(h2.stats().downloaded, 0);
    assert_eq!(
        found_said(&mut rx, "album").await,
        "2 files (296960 bytes) found on this machine, not fetched: 1 copied, 1 moved; \
         1 file the version before had and this one dropped removed"
    );

    let (seeder, _sh) = seeder(&meta2, &r.join("v2")).await;
    h2.add_peers(vec![seeder.listen_addr()]);
    wait_complete(&h2, 60).await;
    std::fs::remove_file(&e).unwrap();
    assert_same_tree(&r.join("v2/album"), &album);
}
