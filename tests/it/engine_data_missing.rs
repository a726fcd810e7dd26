//! A torrent whose data is gone from its folder (a disk not mounted, a folder moved or deleted)
//! fails with `EngineError::DataMissing` instead of downloading it all again into the empty place:
//! at start (its resume data says it had pieces there, none of its files is there) and when a read
//! for upload finds every file gone. A resume takes it up: data that is back is checked again
//! (resume data trusted, nothing fetched); data still gone is downloaded again, as asked. Pointing
//! it at the data (`relocate`) or checking it again (`check`) takes it up too.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;
use btorrent::engine::{EngineError, Session, SessionConfig, TorrentHandle, TorrentState};
use btorrent::Metainfo;

/// Sessions that keep their resume files in `resume`, naming files `.part` until complete (as
/// the daemon does).
async fn session_resuming(resume: &Path) -> Session {
    session_with(SessionConfig {
        resume_dir: Some(resume.to_path_buf()),
        rename_partial_files: true,
        ..Default::default()
    })
    .await
}

/// A 1 MiB torrent `photos` of two files under `dir/photos`, seeded once by a session that keeps
/// its resume file in `resume` (so that file says every piece was there).
async fn seeded_once(dir: &Path, resume: &Path) -> (Metainfo, PathBuf) {
    let top = dir.join("photos");
    write_random(&top.join("a.jpg"), 700 * 1024, 41);
    write_random(&top.join("b.jpg"), 300 * 1024, 42);
    let meta = torrent(&top, 32 * 1024, vec![]);
    let s = session_resuming(resume).await;
    let h = s.add(meta.clone(), opts(dir, vec![])).await.unwrap();
    wait_complete(&h, 30).await;
    s.shutdown(Duration::from_secs(5)).await;
    (meta, top)
}

/// Waits until `h` fails with its data missing.
async fn wait_data_missing(h: &TorrentHandle) {
    wait_until("the torrent to fail", Duration::from_secs(30), || {
        matches!(h.stats().state, TorrentState::Error(_))
    })
    .await;
    match h.wait_complete().await {
        Err(EngineError::TorrentFailed { cause, .. }) => {
            assert!(
                matches!(*cause, EngineError::DataMissing { .. }),
                "{cause:?}"
            );
        }
        other => panic!("{other:?}: {:?}", h.stats()),
    }
    match h.stats().state {
        TorrentState::Error(m) => assert!(m.starts_with("its data is gone from"), "{m}"),
        other => panic!("state {other:?}"),
    }
}

/// [`seeded_once`] in `dir`, its folder then moved to `dir/elsewhere` (the disk not mounted) and the
/// torrent added again in a new session, where it fails for want of its data. Returns the torrent,
/// its folder, where the folder went, the session and the torrent there.
async fn gone_at_start(
    dir: &Path,
    resume: &Path,
) -> (Metainfo, PathBuf, PathBuf, Session, TorrentHandle) {
    let (meta, top) = seeded_once(dir, resume).await;
    let away = dir.join("elsewhere");
    std::fs::rename(&top, &away).unwrap();
    let s = session_resuming(resume).await;
    let h = s.add(meta.clone(), opts(dir, vec![])).await.unwrap();
    wait_data_missing(&h).await;
    assert!(!top.exists(), "nothing is made in the empty place");
    (meta, top, away, s, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_gone_at_start_fails_and_a_resume_checks_it_once_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let resume = tempfile::tempdir().unwrap();
    let (_, top, away, s, h) = gone_at_start(dir.path(), resume.path()).await;

    // Mounted again: a resume checks it (the resume file vouches for every piece: nothing is
    // hashed, nothing fetched) and it seeds.
    std::fs::rename(&away, &top).unwrap();
    h.resume();
    wait_complete(&h, 30).await;
    wait_until("seeding", Duration::from_secs(30), || {
        h.stats().state == TorrentState::Seeding
    })
    .await;
    let st = h.stats();
    assert_eq!((st.pieces_checked, st.downloaded), (0, 0), "{st:?}");
    s.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_still_gone_is_downloaded_again_when_a_resume_asks() {
    let dir = tempfile::tempdir().unwrap();
    let resume = tempfile::tempdir().unwrap();
    let (meta, top) = seeded_once(dir.path(), resume.path()).await;
    let src = tempfile::tempdir().unwrap();
    std::fs::rename(&top, src.path().join("photos")).unwrap();
    let (seeder, _sh) = seeder(&meta, src.path()).await;

    let s = session_resuming(resume.path()).await;
    let h = s
        .add(meta.clone(), opts(dir.path(), vec![seeder.listen_addr()]))
        .await
        .unwrap();
    wait_data_missing(&h).await;
    assert_eq!(h.stats().downloaded, 0);
    assert!(!top.exists(), "nothing is made in the empty place");

    // Still gone: the resume asks for it again.
    h.resume();
    wait_complete(&h, 60).await;
    assert_same_tree(&src.path().join("photos"), &top);
    assert_eq!(h.stats().downloaded, meta.info.total_length);
    s.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_gone_while_seeding_fails_instead_of_fetching_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let resume = tempfile::tempdir().unwrap();
    let (meta, top) = seeded_once(dir.path(), resume.path()).await;
    // Seeding on the resume file's word: no file is open yet.
    let s = session_resuming(resume.path()).await;
    let h = s.add(meta.clone(), opts(dir.path(), vec![])).await.unwrap();
    wait_complete(&h, 30).await;
    // The folder goes (a disk unmounted) while it seeds; a peer asks for pieces.
    let moved = dir.path().join("moved");
    std::fs::create_dir(&moved).unwrap();
    std::fs::rename(&top, moved.join("photos")).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let (leecher, l) = leecher(&meta, dst.path(), vec![s.listen_addr()]).await;
    wait_data_missing(&h).await;
    assert!(!top.exists(), "nothing is made in the empty place");
    assert!(l.stats().bytes_verified < meta.info.total_length);

    // Pointed at where the data is now: checked there and seeding again; the peer gets it all.
    let report = h.relocate(moved.clone()).await.unwrap();
    assert_eq!(report.good, meta.info.piece_count());
    wait_until("seeding", Duration::from_secs(30), || {
        h.stats().state == TorrentState::Seeding
    })
    .await;
    wait_complete(&l, 60).await;
    assert_same_tree(&moved.join("photos"), &dst.path().join("photos"));
    leecher.shutdown(Duration::from_secs(2)).await;
    s.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_takes_up_a_torrent_whose_data_came_back() {
    let dir = tempfile::tempdir().unwrap();
    let resume = tempfile::tempdir().unwrap();
    let (meta, top, away, s, h) = gone_at_start(dir.path(), resume.path()).await;
    std::fs::rename(&away, &top).unwrap();
    let report = h.check().await.unwrap();
    assert_eq!(report.good, meta.info.piece_count());
    wait_complete(&h, 30).await;
    wait_until("seeding", Duration::from_secs(30), || {
        h.stats().state == TorrentState::Seeding
    })
    .await;
    assert_eq!(h.stats().downloaded, 0);
    s.shutdown(Duration::from_secs(2)).await;
}
