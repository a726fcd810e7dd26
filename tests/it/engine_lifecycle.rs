//! Lifecycles under races: a `resume()` landing while the torrent loop starts (right after the data
//! check) starts the announce tasks once, not twice; a pause tells the trackers `stopped` and a
//! resume `started` again, in that order however quickly they follow each other; callers of the app's peer slot while its session
//! starts all get that one session; a pause or resume asked while the data moves holds once the move
//! ends, and the front ends hear of each pause and resume that changed something, once.

use std::path::Path;
use std::time::Duration;

use crate::support::tracker::http_double;
use crate::support::*;
use btorrent::engine::{EngineError, SessionConfig, TorrentHandle, TorrentState};
use btorrent::events::EventBus;
use btorrent::services::PeerSlot;
use btorrent::torrents::Torrents;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_racing_the_loop_start_announces_started_once() {
    const TORRENTS: usize = 12;
    let (base, seen) = http_double(|_| (200, b"d8:intervali1800e5:peers0:e".to_vec())).await;
    let url = format!("{base}/announce");
    let state = tempfile::tempdir().unwrap();
    let s = session_with(SessionConfig {
        // Saving resume data after the check is where the loop start used to leave room for a race.
        resume_dir: Some(state.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let dirs: Vec<_> = (0..TORRENTS)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    for (i, dir) in dirs.iter().enumerate() {
        let path = dir.path().join("f.bin");
        // Big enough that the check is still running when `add` returns.
        write_random(&path, 2 << 20, i as u64);
        let meta = engine::torrent(&path, 256 * 1024, vec![url.clone()]);
        let h = add_announcing(&s, meta, dir.path(), &url).await;
        // Paused while checking; resumed the moment the check is done, as the loop starts.
        h.pause();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while h.stats().pieces_have < h.stats().pieces_total {
            assert!(
                std::time::Instant::now() < deadline,
                "the check never ended"
            );
            tokio::task::yield_now().await;
        }
        h.resume();
    }
    let started = || {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("event=started"))
            .count()
    };
    wait_until(
        "every torrent announced started",
        Duration::from_secs(20),
        || started() >= TORRENTS,
    )
    .await;
    // A second announce task per torrent would send its own `started` right away.
    let end = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < end {
        assert_eq!(
            started(),
            TORRENTS,
            "a torrent started its announce tasks twice"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The app's peer slot while its session starts: a caller asking for the running session waits for
/// the one being started instead of being told there is none, and a second starter gets that same
/// session. The start is held open by a settings file that is a FIFO nobody has written yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_session_being_started_is_waited_for_not_absent() {
    use futures::FutureExt;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("torrents.toml");
    let made = std::process::Command::new("mkfifo").arg(&config).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let slot = PeerSlot::new(&config, EventBus::default());
    let first = tokio::spawn({
        let slot = slot.clone();
        async move { slot.get_or_start().await }
    });
    // The FIFO opens for writing once the start reads the settings, holding the slot.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut fifo = loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&config)
        {
            Ok(f) => break f,
            Err(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the start never read its settings"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let mut running = Box::pin(slot.get());
    assert!(
        (&mut running).now_or_never().is_none(),
        "a session being started was reported absent"
    );
    let mut second = Box::pin(slot.get_or_start());
    assert!(
        (&mut second).now_or_never().is_none(),
        "a second start did not wait"
    );
    fifo.write_all(b"[settings]\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\n")
        .unwrap();
    drop(fifo);
    let first = first.await.unwrap().unwrap();
    let running = running.await.expect("the started session");
    let second = second.await.unwrap();
    assert_eq!(
        first.peer_id(),
        second.peer_id(),
        "two sessions were started"
    );
    assert_eq!(first.listen_addr(), running.listen_addr());
    assert_eq!(first.listen_addr(), second.listen_addr());
    slot.shutdown(Duration::from_secs(2)).await;
    assert!(slot.get().await.is_none(), "none after shutdown");
}

/// A removal racing the sync that runs whatever torrents.toml lists (the daemon's follow of the
/// file): once `remove` returns, the torrent is gone from the session and the file, and no sync
/// brings it back. Syncs run back to back on another task for the whole removal, round after round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_racing_a_sync_of_torrents_toml_stays_removed() {
    use btorrent::config::Config;
    use btorrent::script::live::{AfterRemove, LiveTorrents};
    const ROUNDS: usize = 12;
    let home = tempfile::tempdir().unwrap();
    let at = one_file_home(home.path(), 3);
    let (config, ih) = (at.config.clone(), at.meta.info_hash);
    let slot = PeerSlot::new(&config, EventBus::default());
    let session = slot.get_or_start().await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let syncing = tokio::spawn({
        let (slot, stop) = (slot.clone(), stop.clone());
        async move {
            let mut syncs = 0u64;
            while !stop.is_cancelled() {
                slot.sync_managed().await;
                syncs += 1;
                tokio::task::yield_now().await;
            }
            syncs
        }
    });
    for round in 0..ROUNDS {
        let after = if round % 2 == 0 {
            AfterRemove::Forget
        } else {
            AfterRemove::MarkStopped
        };
        Torrents::update(slot.torrents(), |cfg| {
            cfg.remove(&ih);
            cfg.upsert(at.entry());
            Ok(())
        })
        .unwrap();
        wait_until(
            "the sync to run the registered torrent",
            Duration::from_secs(30),
            || session.get(&ih).is_some(),
        )
        .await;
        let live: &dyn LiveTorrents = &slot;
        assert!(live.remove(ih, after).await.unwrap(), "round {round}");
        // Whatever sync was under way has finished once the next one starts and ends.
        slot.sync_managed().await;
        assert!(session.get(&ih).is_none(), "round {round}: started again");
        let left = Config::load(&config).unwrap();
        match after {
            AfterRemove::Forget => assert!(left.find(&ih).is_none(), "round {round}"),
            AfterRemove::MarkStopped => {
                assert_eq!(left.find(&ih).unwrap().state, "stopped", "round {round}")
            }
            AfterRemove::Keep => unreachable!("the rounds forget or mark stopped"),
        }
    }
    stop.cancel();
    assert!(syncing.await.unwrap() > 0);
    slot.shutdown(Duration::from_secs(5)).await;
}

/// Runs `act` on `h` while its data moves to `to`, and says whether it landed during the move. The
/// move is held back by a data check under way (a move waits for the disk to be idle), so the window
/// is the check's length; a round that misses it says so and the caller tries again. A second move
/// asked in the window must be refused.
async fn during_a_move(h: &TorrentHandle, to: &Path, act: impl Fn(&TorrentHandle)) -> bool {
    let checked = h.stats().pieces_checked;
    let check = tokio::spawn({
        let h = h.clone();
        async move { h.check().await }
    });
    wait_until("the check started", Duration::from_secs(30), || {
        h.stats().pieces_checked > checked || check.is_finished()
    })
    .await;
    let mv = tokio::spawn({
        let (h, to) = (h.clone(), to.to_path_buf());
        async move { h.move_to(to).await }
    });
    wait_until("the move started", Duration::from_secs(30), || {
        h.stats().moving || mv.is_finished()
    })
    .await;
    act(h);
    let during = h.stats();
    let landed = during.moving;
    if landed {
        assert_eq!(
            during.state,
            TorrentState::Paused,
            "transfers during a move"
        );
        let second = h.move_to(to.join("elsewhere")).await;
        assert!(
            matches!(second, Err(EngineError::MoveUnderWay { .. })),
            "{second:?}"
        );
    }
    mv.await.unwrap().unwrap();
    check.await.unwrap().unwrap();
    assert_eq!(h.stats().data_dir, to);
    assert!(!h.stats().moving);
    landed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_during_a_move_take_effect_when_it_ends() {
    const ROUNDS: usize = 6;
    let dirs: Vec<_> = (0..=2 * ROUNDS)
        .map(|_| tempfile::tempdir().unwrap())
        .collect();
    // Big enough that checking it keeps the disk busy for a while.
    write_random(&dirs[0].path().join("big.bin"), 48 << 20, 21);
    let meta = torrent(&dirs[0].path().join("big.bin"), 256 * 1024, vec![]);
    let (s, h) = seeder(&meta, dirs[0].path()).await;
    let mut events = s.subscribe().unwrap();
    let mut next = dirs[1..].iter();
    // What the front ends must hear: each pause or resume that changed something, once, and
    // each move once it is done (after the pause or resume asked during it, or before one asked
    // once it was done: not compared in order).
    let mut told = Vec::new();
    let mut moves = 0;

    // Running when the move starts, paused during it: stays paused after.
    let mut landed = false;
    for _ in 0..ROUNDS {
        assert_eq!(h.stats().state, TorrentState::Seeding);
        landed = during_a_move(&h, next.next().unwrap().path(), |h| h.pause()).await;
        told.push("paused");
        moves += 1;
        assert_eq!(
            h.stats().state,
            TorrentState::Paused,
            "the move undid a pause"
        );
        if landed {
            break;
        }
        h.resume();
        told.push("resumed");
    }
    assert!(landed, "no pause landed during a move in {ROUNDS} tries");

    // Paused when the move starts, resumed during it: seeds once the files are in place.
    landed = false;
    for _ in 0..ROUNDS {
        assert_eq!(h.stats().state, TorrentState::Paused);
        landed = during_a_move(&h, next.next().unwrap().path(), |h| h.resume()).await;
        told.push("resumed");
        moves += 1;
        assert_eq!(h.stats().state, TorrentState::Seeding, "a resume was lost");
        if landed {
            break;
        }
        h.pause();
        told.push("paused");
    }
    assert!(landed, "no resume landed during a move in {ROUNDS} tries");
    assert!(h.stats().is_complete());

    // A pause or resume that changes nothing says nothing; a move's own pause says nothing.
    h.pause();
    h.pause();
    h.resume();
    h.resume();
    told.extend(["paused", "resumed"]);
    h.move_to(dirs[0].path().to_path_buf()).await.unwrap();
    moves += 1;
    assert_eq!(h.stats().state, TorrentState::Seeding);
    let mut heard = Vec::new();
    let (mut heard_moves, mut last_moved) = (0, None);
    while let Ok(e) = events.try_recv() {
        match e {
            btorrent::engine::Event::Paused { info_hash, .. } if info_hash == meta.info_hash => {
                heard.push("paused")
            }
            btorrent::engine::Event::Resumed { info_hash, .. } if info_hash == meta.info_hash => {
                heard.push("resumed")
            }
            btorrent::engine::Event::Moved {
                info_hash,
                data_dir,
                message,
                ..
            } if info_hash == meta.info_hash => {
                heard_moves += 1;
                last_moved = Some((data_dir, message));
            }
            _ => {}
        }
    }
    assert_eq!(heard, told);
    assert_eq!(heard_moves, moves);
    let (to, said) = last_moved.unwrap();
    assert_eq!(to, dirs[0].path());
    assert_eq!(said, "its files moved there");
    s.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_tells_the_trackers_stopped_and_a_resume_started_in_order() {
    let (base, seen) = http_double(|_| (200, b"d8:intervali1800e5:peers0:e".to_vec())).await;
    let url = format!("{base}/announce");
    let events = || -> Vec<String> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("/announce?"))
            .map(|l| match l.split_once("&event=") {
                Some((_, rest)) => rest.split(['&', ' ']).next().unwrap().to_string(),
                None => "-".to_string(),
            })
            .collect()
    };
    let until = |n: usize, what: &'static str| {
        let events = &events;
        async move {
            wait_until(what, Duration::from_secs(30), || events().len() >= n).await;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    write_random(&path, 100_000, 3);
    let meta = engine::torrent(&path, 16 * 1024, vec![url.clone()]);
    let s = session().await;
    let h = add_announcing(&s, meta.clone(), dir.path(), &url).await;
    until(1, "the first announce").await;
    h.pause();
    until(2, "the pause's announce").await;
    h.resume();
    until(3, "the resume's announce").await;
    assert_eq!(events(), ["started", "stopped", "started"]);
    // A pause and a resume at once: `started` waits for `stopped`.
    h.pause();
    h.resume();
    until(5, "both announces").await;
    assert_eq!(events()[3..], ["stopped", "started"]);
    // Paused, then removed: `stopped` once.
    h.pause();
    until(6, "the last pause's announce").await;
    s.remove(&meta.info_hash).await.unwrap();
    s.shutdown(Duration::from_secs(2)).await;
    assert_eq!(events()[5..], ["stopped"]);
}
