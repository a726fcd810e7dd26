//! The engine's typed errors, each produced by the real code path: a caller can tell what went wrong
//! by the variant (not the message), and learns what it is about (info-hash, path, peer).

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::support::fake_peer::{fake_peer, Act};
use crate::support::*;
use btorrent::engine::probe::{download_piece, fetch_bitfield};
use btorrent::engine::{EngineError, FilePriority, SessionConfig};
use btorrent::wire::handshake::HandshakeError;
use btorrent::{InfoHash, PeerId};

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[tokio::test]
async fn adding_twice_is_already_added_and_removing_an_unknown_hash_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("a.bin"), 100_000, 1);
    let meta = torrent(&dir.path().join("a.bin"), 32 * 1024, vec![]);
    let s = session().await;
    s.add(meta.clone(), opts(dir.path(), vec![])).await.unwrap();
    match s.add(meta.clone(), opts(dir.path(), vec![])).await {
        Err(e @ EngineError::AlreadyAdded { .. }) => {
            let EngineError::AlreadyAdded { info_hash, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*info_hash, meta.info_hash);
            assert_eq!(
                e.to_string(),
                format!("a.bin ({}) is already added", meta.info_hash)
            );
        }
        other => panic!("{:?}", other.map(|h| h.name().to_string())),
    }
    let unknown = InfoHash([7; 20]);
    match s.remove(&unknown).await {
        Err(EngineError::NotFound { info_hash }) => assert_eq!(info_hash, unknown),
        other => panic!("{other:?}"),
    }
    s.remove(&meta.info_hash).await.unwrap();
    s.shutdown(Duration::from_secs(2)).await;
    // A session shut down takes nothing new.
    let e = s.add(meta, opts(dir.path(), vec![])).await.err();
    assert!(matches!(e, Some(EngineError::ShuttingDown)), "{e:?}");
}

#[tokio::test]
async fn a_listen_address_in_use_is_a_listen_error_with_the_address() {
    let taken = std::net::TcpListener::bind((LOCAL, 0)).unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = SessionConfig {
        listen: addr,
        ..Default::default()
    };
    match btorrent::engine::Session::start(cfg).await {
        Err(e @ EngineError::Listen { .. }) => {
            assert_eq!(e.io_error().unwrap().kind(), ErrorKind::AddrInUse);
            assert!(e
                .to_string()
                .starts_with(&format!("cannot listen on {addr}: ")));
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("listened on a port in use"),
    }
}

#[tokio::test]
async fn bad_file_selections_say_which() {
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("set/a"), 1000, 2);
    write_random(&dir.path().join("set/b"), 1000, 3);
    let meta = torrent(&dir.path().join("set"), 16 * 1024, vec![]);
    let s = session().await;
    let add = btorrent::engine::AddOptions {
        files: Some(vec![FilePriority::Skip]),
        ..opts(dir.path(), vec![])
    };
    let e = s.add(meta.clone(), add).await.err();
    assert!(
        matches!(
            e,
            Some(EngineError::SelectionLength {
                files: 2,
                given: 1,
                ..
            })
        ),
        "{e:?}"
    );
    let h = s.add(meta, opts(dir.path(), vec![])).await.unwrap();
    let e = h
        .set_file_priorities(&[(2, FilePriority::Skip)])
        .unwrap_err();
    assert!(
        matches!(
            e,
            EngineError::NoSuchFile {
                index: 2,
                files: 2,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.to_string(), "set has no file 2 (it has 2, from 0)");
    s.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_folder_that_is_a_file_fails_the_torrent_with_its_path() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 256 * 1024, 4);
    let meta = torrent(&src.path().join("d.bin"), 32 * 1024, vec![]);
    let (seeder, _) = seeder(&meta, src.path()).await;
    let not_a_folder = dst.path().join("a-file");
    std::fs::write(&not_a_folder, b"not a folder").unwrap();
    let (leecher, l) = leecher(&meta, &not_a_folder, vec![seeder.listen_addr()]).await;
    let r = tokio::time::timeout(Duration::from_secs(30), l.wait_complete())
        .await
        .expect("the failure ends the wait");
    match r {
        Err(EngineError::TorrentFailed { name, cause }) => {
            assert_eq!(name, "d.bin");
            assert!(
                matches!(*cause, EngineError::WritePiece { ref dir, .. } if *dir == not_a_folder),
                "{cause:?}"
            );
            assert_eq!(cause.path(), Some(not_a_folder.as_path()));
            assert!(cause.io_error().is_some());
        }
        other => panic!("{other:?}"),
    }
    // A check takes a torrent the disk failed up again (it finds nothing there); the disk still
    // refuses, and it fails again for the same reason.
    let report = l.check().await.unwrap();
    assert_eq!(report.good, 0);
    let again = tokio::time::timeout(Duration::from_secs(30), l.wait_complete())
        .await
        .expect("the second failure ends the wait");
    match again {
        Err(EngineError::TorrentFailed { cause, .. }) => {
            assert_eq!(cause.path(), Some(not_a_folder.as_path()), "{cause:?}");
        }
        other => panic!("{other:?}"),
    }
    leecher.shutdown(Duration::from_secs(5)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_into_a_file_is_a_move_error_and_the_torrent_seeds_on() {
    let dir = tempfile::tempdir().unwrap();
    write_random(&dir.path().join("m.bin"), 100_000, 5);
    let meta = torrent(&dir.path().join("m.bin"), 32 * 1024, vec![]);
    let (s, h) = seeder(&meta, dir.path()).await;
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"in the way").unwrap();
    match h.move_to(file.clone()).await {
        Err(e @ EngineError::Move { .. }) => {
            assert_eq!(e.path(), Some(file.as_path()));
            assert!(e.io_error().is_some());
            assert!(e
                .to_string()
                .starts_with(&format!("cannot move m.bin to {}: ", file.display())));
        }
        other => panic!("{other:?}"),
    }
    assert!(h.stats().is_complete(), "{:?}", h.stats());
    s.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test]
async fn probes_say_what_the_peer_did() {
    let dir = tempfile::tempdir().unwrap();
    let data = write_random(&dir.path().join("p.bin"), 64 * 1024, 6);
    let meta = torrent(&dir.path().join("p.bin"), 16 * 1024, vec![]);
    let other = torrent(&dir.path().join("p.bin"), 32 * 1024, vec![]);

    // Nobody listens: refused.
    let closed: SocketAddr = {
        let l = std::net::TcpListener::bind((LOCAL, 0)).unwrap();
        l.local_addr().unwrap()
    };
    match fetch_bitfield(closed, &meta, PeerId::generate()).await {
        Err(e @ EngineError::Connect { .. }) => {
            assert_eq!(e.io_error().unwrap().kind(), ErrorKind::ConnectionRefused);
        }
        other => panic!("{other:?}"),
    }

    // A peer of another torrent: its handshake names another info-hash.
    let liar = fake_peer(&other, Arc::new(data), LOCAL.into(), Act::Silent).await;
    match fetch_bitfield(liar.addr, &meta, PeerId::generate()).await {
        Err(EngineError::Handshake { addr, error }) => {
            assert_eq!(addr, liar.addr);
            assert!(
                matches!(*error, HandshakeError::WrongTorrent(ih) if ih == other.info_hash),
                "{error:?}"
            );
        }
        other => panic!("{other:?}"),
    }

    // A piece the torrent does not have is refused before dialing anyone.
    let e = download_piece(closed, &meta, 9, PeerId::generate())
        .await
        .err();
    assert!(
        matches!(
            e,
            Some(EngineError::NoSuchPiece {
                index: 9,
                pieces: 4,
                ..
            })
        ),
        "{e:?}"
    );
}
