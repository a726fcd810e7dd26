//! The lifecycle's moves: each legal one, the refused ones, and a torrent paused, resumed and failed
//! around its data check.

use std::time::Duration;

use super::{Lifecycle, Phase};
use crate::EngineError;
use crate::{AddOptions, Session, SessionConfig, TorrentHandle, TorrentState};
use btorrent_proto::metainfo::{create_torrent, CreateOptions};

const PHASES: [Phase; 3] = [Phase::Checking, Phase::Downloading, Phase::Seeding];

#[test]
fn pause_and_resume_keep_the_phase() {
    for p in PHASES {
        let mut l = Lifecycle::Running(p);
        assert!(l.pause());
        assert_eq!(l, Lifecycle::Paused(p));
        assert_eq!(l.report(), TorrentState::Paused);
        assert!(!l.transfers());
        assert!(l.resume());
        assert_eq!(l, Lifecycle::Running(p));
    }
    assert_eq!(Lifecycle::new(true), Lifecycle::Paused(Phase::Checking));
    assert_eq!(Lifecycle::new(false).report(), TorrentState::Checking);
}

#[test]
fn only_a_running_checked_torrent_transfers() {
    let transfers: Vec<bool> = PHASES
        .iter()
        .map(|&p| Lifecycle::Running(p).transfers())
        .collect();
    assert_eq!(transfers, [false, true, true]);
    assert!(PHASES.iter().all(|&p| !Lifecycle::Paused(p).transfers()));
    assert!(!Lifecycle::Error(EngineError::CheckFailed("x".into())).transfers());
}

#[test]
fn illegal_moves_are_refused_and_change_nothing() {
    let refused = |mut l: Lifecycle, mv: fn(&mut Lifecycle) -> bool| {
        let before = l.clone();
        assert!(!mv(&mut l), "{before:?} moved");
        assert_eq!(l, before);
    };
    for p in PHASES {
        refused(Lifecycle::Paused(p), Lifecycle::pause);
        refused(Lifecycle::Running(p), Lifecycle::resume);
    }
    for l in [Lifecycle::Running, Lifecycle::Paused] {
        // The check ends once; completion and withdrawal move between the checked phases only.
        refused(l(Phase::Downloading), |l| l.checked(true));
        refused(l(Phase::Seeding), |l| l.checked(false));
        refused(l(Phase::Checking), Lifecycle::completed);
        refused(l(Phase::Seeding), Lifecycle::completed);
        refused(l(Phase::Checking), Lifecycle::reopened);
        refused(l(Phase::Downloading), Lifecycle::reopened);
    }
    let failed = Lifecycle::Error(EngineError::CheckFailed("disk full".into()));
    refused(failed.clone(), Lifecycle::pause);
    refused(failed.clone(), Lifecycle::resume);
    for p in PHASES {
        refused(failed.clone(), |l| l.recover(Phase::Downloading));
        refused(Lifecycle::Running(p), |l| l.recover(Phase::Downloading));
        refused(Lifecycle::Paused(p), |l| l.recover(Phase::Seeding));
    }
    refused(failed.clone(), |l| l.checked(true));
    refused(failed.clone(), Lifecycle::completed);
    refused(failed.clone(), Lifecycle::reopened);
    // The first failure is kept.
    refused(failed, |l| {
        l.fail(EngineError::CheckFailed("another".into()))
    });
}

#[test]
fn the_checked_phases_move_paused_or_not() {
    for l in [Lifecycle::Running, Lifecycle::Paused] {
        let mut x = l(Phase::Checking);
        assert!(x.checked(false));
        assert_eq!(x, l(Phase::Downloading));
        assert!(x.completed());
        assert_eq!(x, l(Phase::Seeding));
        assert!(x.reopened());
        assert_eq!(x, l(Phase::Downloading));
        let mut y = l(Phase::Checking);
        assert!(y.checked(true));
        assert_eq!(y, l(Phase::Seeding));
    }
}

#[test]
fn a_failure_of_the_disk_is_recovered_into_the_phase_asked() {
    for phase in PHASES {
        let mut l = Lifecycle::Paused(Phase::Downloading);
        assert!(l.fail(disk_full(3)));
        assert!(!l.resume() && !l.pause(), "only a recovery leaves it");
        assert!(l.recover(phase));
        assert_eq!(l, Lifecycle::Running(phase));
        assert_eq!(l.transfers(), phase != Phase::Checking);
    }
    let broken = EngineError::InconsistentHybrid {
        name: "h".into(),
        index: 0,
    };
    let mut l = Lifecycle::Running(Phase::Downloading);
    assert!(l.fail(broken));
    assert!(
        !l.recover(Phase::Downloading),
        "a broken torrent stays failed"
    );
}

#[test]
fn a_failure_while_paused_is_an_error_for_good() {
    let mut l = Lifecycle::Paused(Phase::Seeding);
    assert!(l.fail(EngineError::CheckFailed("disk full".into())));
    let failed = TorrentState::Error("checking the data failed: disk full".into());
    assert_eq!(l.report(), failed);
    assert!(!l.resume() && !l.pause());
    assert_eq!(l.report(), failed);
}

/// A session and a complete 4-piece torrent whose data must be hashed when added (no resume data).
async fn setup(dir: &std::path::Path) -> (Session, btorrent_proto::metainfo::Metainfo) {
    let file = dir.join("f");
    let data: Vec<u8> = (0..4 * 16384u32).map(|i| (i * 13 / 5) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let opts = CreateOptions {
        piece_length: Some(16384),
        ..Default::default()
    };
    let meta = create_torrent(&file, &opts, &|_, _| {}).unwrap();
    (
        Session::start(SessionConfig::default()).await.unwrap(),
        meta,
    )
}

fn add_opts(dir: &std::path::Path, paused: bool) -> AddOptions {
    AddOptions {
        data_dir: dir.to_path_buf(),
        paused,
        trackers: Some(vec![]),
        ..Default::default()
    }
}

fn lifecycle(h: &TorrentHandle) -> (Lifecycle, bool) {
    let c = h.0.core.lock();
    (c.lifecycle.clone(), c.announcing)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_during_the_check_resumes_into_the_check_and_the_check_ends_paused() {
    let dir = tempfile::tempdir().unwrap();
    let (session, meta) = setup(dir.path()).await;
    // Every turn for data checks held: the torrent stays checking until they are let go.
    let ctx = ctx_of(&session).await;
    let turns = ctx.checks.acquire_many(2).await.unwrap();

    let h = session
        .add(meta, add_opts(dir.path(), false))
        .await
        .unwrap();
    assert_eq!(h.stats().state, TorrentState::Checking);
    h.pause();
    assert_eq!(lifecycle(&h), (Lifecycle::Paused(Phase::Checking), false));
    assert_eq!(h.stats().state, TorrentState::Paused);
    h.resume();
    assert_eq!(lifecycle(&h), (Lifecycle::Running(Phase::Checking), false));
    assert_eq!(
        h.stats().state,
        TorrentState::Checking,
        "resumed into the check"
    );
    h.pause();

    // The check ends while paused: the phase a resume goes back to is now seeding, and nothing
    // announces or connects meanwhile.
    drop(turns);
    tokio::time::timeout(Duration::from_secs(10), h.wait_complete())
        .await
        .expect("the check ended")
        .unwrap();
    wait_for(|| lifecycle(&h) == (Lifecycle::Paused(Phase::Seeding), false)).await;
    assert_eq!(h.stats().state, TorrentState::Paused);
    assert_eq!(h.stats().pieces_have, 4);
    h.resume();
    assert_eq!(h.stats().state, TorrentState::Seeding);
    assert_eq!(
        lifecycle(&h),
        (Lifecycle::Running(Phase::Seeding), true),
        "announcing once resumed"
    );
    session.shutdown(Duration::from_secs(2)).await;
}

/// The session's shared state, reached through a torrent whose data is absent (it checks nothing):
/// a test holds its turns for data checks, so a torrent added next stays checking until let go.
async fn ctx_of(session: &Session) -> std::sync::Arc<crate::session::SessionCtx> {
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("g"), [7u8; 1000]).unwrap();
    let other = create_torrent(
        &elsewhere.path().join("g"),
        &CreateOptions::default(),
        &|_, _| {},
    );
    let empty = tempfile::tempdir().unwrap();
    let h = session
        .add(other.unwrap(), add_opts(empty.path(), true))
        .await
        .unwrap();
    h.0.ctx.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pauses_and_resumes_racing_the_loop_start_leave_the_announce_tasks_in_step() {
    let dir = tempfile::tempdir().unwrap();
    let (session, meta) = setup(dir.path()).await;
    let ctx = ctx_of(&session).await;
    let turns = ctx.checks.acquire_many(2).await.unwrap();
    let h = session
        .add(meta, add_opts(dir.path(), false))
        .await
        .unwrap();
    // Pauses and resumes from another task while the check ends and the torrent loop starts.
    let flipper = tokio::spawn({
        let h = h.clone();
        async move {
            for _ in 0..2000 {
                h.pause();
                tokio::task::yield_now().await;
                h.resume();
            }
        }
    });
    drop(turns);
    flipper.await.unwrap();
    // Resumed last: running, with its announce tasks started (once: `announcing` is set in the same
    // hold of the lock that found them not started).
    wait_for(|| lifecycle(&h) == (Lifecycle::Running(Phase::Seeding), true)).await;
    h.pause();
    assert_eq!(lifecycle(&h), (Lifecycle::Paused(Phase::Seeding), false));
    session.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_while_paused_stays_until_a_resume_takes_it_up() {
    let dir = tempfile::tempdir().unwrap();
    let (session, meta) = setup(dir.path()).await;
    let h = session
        .add(meta, add_opts(dir.path(), false))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), h.wait_complete())
        .await
        .expect("the check ended")
        .unwrap();
    wait_for(|| h.stats().state == TorrentState::Seeding).await;
    h.pause();
    h.0.fail(disk_full(1));
    let failed = TorrentState::Error("cannot write piece 1 under /d: disk full".into());
    assert_eq!(h.stats().state, failed);
    h.pause();
    h.0.fail(disk_full(2));
    assert_eq!(h.stats().state, failed, "the first failure is kept");
    assert!(
        !h.0.core.lock().announcing,
        "a failed torrent does not announce"
    );
    // The wait says which torrent failed, with the first failure as its cause.
    match h.wait_complete().await {
        Err(EngineError::TorrentFailed { name, cause }) => {
            assert_eq!(name, h.name());
            assert!(
                matches!(*cause, EngineError::WritePiece { index: 1, .. }),
                "{cause:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A failure of the disk: a resume takes it up again, seeding (every piece is there), announcing,
    // and complete again for those who wait.
    let mut events = session.subscribe().unwrap();
    h.resume();
    assert_eq!(lifecycle(&h), (Lifecycle::Running(Phase::Seeding), true));
    tokio::time::timeout(Duration::from_secs(10), h.wait_complete())
        .await
        .expect("the completion is finished again")
        .unwrap();
    let resumed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(crate::Event::Resumed { .. }) = events.recv().await {
                return;
            }
        }
    });
    resumed.await.expect("the resume says so");
    // Any other failure stays: a resume changes nothing.
    h.0.fail(EngineError::InconsistentHybrid {
        name: h.name().into(),
        index: 0,
    });
    h.resume();
    assert!(matches!(h.stats().state, TorrentState::Error(_)));
    assert!(h.wait_complete().await.is_err());
    session.shutdown(Duration::from_secs(2)).await;
}

/// A write of piece `index` refused by a full disk.
fn disk_full(index: u32) -> EngineError {
    EngineError::WritePiece {
        index,
        dir: "/d".into(),
        error: std::sync::Arc::new(std::io::Error::other("disk full")),
    }
}

/// Waits (within 60 s: a busy machine makes it slower, not red) until `f` holds.
async fn wait_for(f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
