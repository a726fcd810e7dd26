//! The states engine events imply (seeding, error), recorded in torrents.toml through the
//! [`Torrents`] service, so `b-show` and a restart see them. The recorder is one more subscriber of
//! the event bus the session publishes into; it writes in batches, on a thread of its own.

use anyhow::Result;
use tokio::sync::{broadcast, oneshot};

use crate::engine::{self, Session, TorrentState};
use crate::events::Event;
use crate::torrents::Torrents;
use crate::types::InfoHash;

/// Events whose states are recorded together at most: with at most one write of torrents.toml.
const EVENT_BATCH: usize = 512;

/// Records in torrents.toml the states `session`'s events imply, from `rx` (subscribed to the bus
/// before the session started, so none is missed), until the session shuts down.
///
/// Events are taken in batches (those already waiting, up to [`EVENT_BATCH`]): the states of a batch
/// are recorded with one write of the file (none when the list in memory already says so). One write
/// per event made a start of 1,000 torrents serialise the 1,000-entry file 1,000 times. The writes
/// are done on one thread of their own: a large file takes several MiB for a moment, and done on
/// whichever blocking thread was free, it left each of their malloc arenas that large (over 100 MiB of
/// RSS for 1,000 torrents). Other subscribers hear an event without waiting for its state's write: a
/// handler that must see the state in torrents.toml asks the torrent (`t.state`) instead. If the
/// recorder falls behind the bus and loses events, it records the states of every running torrent.
pub(super) async fn record_engine_states(
    session: Session,
    mut rx: broadcast::Receiver<Event>,
    torrents: Torrents,
) {
    use broadcast::error::{RecvError, TryRecvError};
    let recorder = StateRecorder::start(torrents.clone());
    let stopped = session.stopped();
    tokio::pin!(stopped);
    loop {
        let mut states = Vec::new();
        let mut lagged = false;
        let first = tokio::select! {
            biased;
            r = rx.recv() => r,
            _ = &mut stopped => return,
        };
        let mut resumed = Vec::new();
        let mut take = |ev: Event| match ev {
            Event::Engine(engine::Event::Resumed { info_hash, .. }) => resumed.push(info_hash),
            ev => states.extend(implied_state(&ev)),
        };
        match first {
            Ok(ev) => take(ev),
            Err(RecvError::Lagged(_)) => lagged = true,
            Err(RecvError::Closed) => return,
        }
        for _ in 1..EVENT_BATCH {
            match rx.try_recv() {
                Ok(ev) => take(ev),
                Err(TryRecvError::Lagged(_)) => lagged = true,
                Err(_) => break,
            }
        }
        states.extend(taken_up_again(&session, &torrents, &resumed));
        if lagged {
            tracing::warn!(
                "events were lost before their states were recorded; recording every torrent's"
            );
            states.extend(
                session
                    .torrents()
                    .iter()
                    .filter_map(|h| match h.stats().state {
                        TorrentState::Seeding => Some((h.info_hash(), "seeding")),
                        TorrentState::Error(_) => Some((h.info_hash(), "error")),
                        _ => None,
                    }),
            );
        }
        // A check that ends with the data complete says `seeding` even for a torrent paused (by
        // its user or the download queue): it is not seeding, and its entry keeps what it says.
        // Paused for a move of its data (or for pointing it at a folder, which found it whole) it
        // seeds once the move ends: recorded (an entry the user paused keeps `paused` all the
        // same, `record_states`).
        states.retain(|(ih, st)| {
            *st != "seeding"
                || session.get(ih).is_none_or(|h| {
                    let s = h.stats();
                    s.state != TorrentState::Paused || s.moving
                })
        });
        if !states.is_empty() {
            recorder.record(states).await;
        }
    }
}

/// The states of torrents recorded `error` that a resume took up again (the engine's `resumed`
/// after a failure of the disk: through a resume, a check or a move that found the data), as they
/// run now: whoever resumes a paused torrent records its state itself, but a check or a move that
/// takes up a failed one does not. One still checking is `downloading` until its check says more.
fn taken_up_again(
    session: &Session,
    torrents: &Torrents,
    resumed: &[InfoHash],
) -> Vec<(InfoHash, &'static str)> {
    if resumed.is_empty() {
        return Vec::new();
    }
    let Ok(cfg) = torrents.config() else {
        return Vec::new();
    };
    resumed
        .iter()
        .filter(|ih| cfg.find(ih).is_some_and(|e| e.state == "error"))
        .filter_map(|ih| match session.get(ih)?.stats().state {
            TorrentState::Seeding => Some((*ih, "seeding")),
            TorrentState::Downloading | TorrentState::Checking => Some((*ih, "downloading")),
            _ => None,
        })
        .collect()
}

/// The state an engine event implies for torrents.toml.
fn implied_state(ev: &Event) -> Option<(InfoHash, &'static str)> {
    match ev {
        Event::Engine(
            engine::Event::Completed { info_hash, .. } | engine::Event::Seeding { info_hash, .. },
        ) => Some((*info_hash, "seeding")),
        Event::Engine(engine::Event::Error { info_hash, .. }) => Some((*info_hash, "error")),
        _ => None,
    }
}

/// The thread that records states in torrents.toml for [`record_engine_states`]; it ends when this is dropped.
struct StateRecorder {
    tx: std::sync::mpsc::Sender<(StateBatch, oneshot::Sender<()>)>,
}

type StateBatch = Vec<(InfoHash, &'static str)>;

impl StateRecorder {
    fn start(torrents: Torrents) -> StateRecorder {
        let (tx, rx) = std::sync::mpsc::channel::<(StateBatch, oneshot::Sender<()>)>();
        let spawned = std::thread::Builder::new()
            .name("bt-states".into())
            .spawn(move || {
                while let Ok((states, done)) = rx.recv() {
                    if let Err(e) = record_states(&torrents, &states) {
                        tracing::warn!("cannot record the torrents' states: {e:#}");
                    }
                    let _ = done.send(());
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the thread that records states: {e}");
        }
        StateRecorder { tx }
    }

    /// Records `states` and waits until they are in the file (or could not be written).
    async fn record(&self, states: StateBatch) {
        let (done, recorded) = oneshot::channel();
        if self.tx.send((states, done)).is_ok() {
            let _ = recorded.await;
        }
    }
}

/// Sets a managed torrent's state in torrents.toml (no write when it already says so).
pub fn record_state(torrents: &Torrents, ih: &InfoHash, state: &str) -> Result<()> {
    record_states(torrents, &[(*ih, state)])
}

/// Sets managed torrents' states in torrents.toml, later entries winning: the list in memory says
/// whether any state changes, and only then is the file written (once). An implied `seeding` does
/// not replace `paused` or `queued`: the user's pause and the queues set those, and whoever takes a
/// torrent out of them records what it becomes ([`crate::actions::resume_now`]); an event read
/// just before such a pause must not undo it.
pub fn record_states(torrents: &Torrents, states: &[(InfoHash, &str)]) -> Result<()> {
    let want: std::collections::HashMap<InfoHash, &str> = states.iter().copied().collect();
    let new_state = |t: &crate::config::ManagedTorrent| {
        let st = *t.hash().and_then(|ih| want.get(&ih))?;
        let held = st == "seeding" && (t.state == "paused" || t.state == crate::actions::QUEUED);
        (t.state != st && !held).then_some(st)
    };
    if !torrents
        .config()?
        .torrents
        .iter()
        .any(|t| new_state(t).is_some())
    {
        return Ok(());
    }
    torrents.update(|cfg| {
        for t in &mut cfg.torrents {
            if let Some(st) = new_state(t) {
                t.state = st.to_string();
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::config::{ManagedTorrent, Origin};
    use crate::engine::{AddOptions, SessionConfig};
    use crate::metainfo::{create_torrent, CreateOptions};

    /// An implied `seeding` read before a pause or a queue's hold does not undo it; an error does
    /// replace it, and a running torrent's state moves.
    #[test]
    fn an_implied_seeding_leaves_a_paused_or_queued_entry_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let torrents = Torrents::open(&dir.path().join("torrents.toml"));
        let ih = |n: u8| InfoHash([n; 20]);
        torrents
            .update(|cfg| {
                for (n, state) in [
                    (1, "paused"),
                    (2, crate::actions::QUEUED),
                    (3, "downloading"),
                ] {
                    cfg.upsert(ManagedTorrent::new(
                        format!("t{n}"),
                        &ih(n),
                        "x.torrent",
                        ".",
                        state,
                        Origin::Added,
                    ));
                }
                Ok(())
            })
            .unwrap();
        let seeding: Vec<_> = (1..=3).map(|n| (ih(n), "seeding")).collect();
        record_states(&torrents, &seeding).unwrap();
        let states = || -> Vec<String> {
            let cfg = Torrents::open(&dir.path().join("torrents.toml"))
                .config()
                .unwrap();
            cfg.torrents.iter().map(|t| t.state.clone()).collect()
        };
        assert_eq!(states(), ["paused", "queued", "seeding"]);
        record_states(&torrents, &[(ih(2), "error")]).unwrap();
        assert_eq!(states(), ["paused", "error", "seeding"]);
    }

    /// The `seeding` a data check implies is not recorded for a torrent paused meanwhile: its entry
    /// stays `paused` (or `queued`), so a restart leaves it so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_torrent_found_complete_stays_paused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        std::fs::write(&path, "[settings]\ndht = false\n").unwrap();
        let torrents = Torrents::open(&path);
        let session = Session::start(SessionConfig::default()).await.unwrap();
        let mut metas = Vec::new();
        for (name, state, paused) in [("p.bin", "paused", true), ("s.bin", "downloading", false)] {
            let data = dir.path().join(name);
            std::fs::write(&data, vec![9u8; 40_000]).unwrap();
            let meta = create_torrent(&data, &CreateOptions::default(), &|_, _| {}).unwrap();
            torrents
                .update(|cfg| {
                    cfg.upsert(ManagedTorrent::new(
                        name,
                        &meta.info_hash,
                        "x.torrent",
                        ".",
                        state,
                        Origin::Added,
                    ));
                    Ok(())
                })
                .unwrap();
            let opts = AddOptions {
                data_dir: dir.path().to_path_buf(),
                trackers: Some(vec![]),
                paused,
                ..Default::default()
            };
            let h = session.add(meta.clone(), opts).await.unwrap();
            let end = Instant::now() + Duration::from_secs(20);
            while h.stats().bytes_left != 0 {
                assert!(Instant::now() < end, "the data check did not end");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            metas.push(meta);
        }
        let (tx, rx) = broadcast::channel(16);
        let recorder = tokio::spawn(record_engine_states(session.clone(), rx, torrents.clone()));
        for m in &metas {
            let _ = tx.send(Event::Engine(engine::Event::Seeding {
                info_hash: m.info_hash,
                name: m.info.name.clone(),
                data_dir: dir.path().to_path_buf(),
            }));
        }
        let state = |i: usize| {
            Torrents::open(&path)
                .config()
                .unwrap()
                .find(&metas[i].info_hash)
                .unwrap()
                .state
                .clone()
        };
        let end = Instant::now() + Duration::from_secs(20);
        while state(1) != "seeding" {
            assert!(
                Instant::now() < end,
                "the running torrent's state was never recorded"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(state(0), "paused");
        session.shutdown(Duration::from_secs(2)).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), recorder).await;
    }

    /// A recorder that lost events to a full bus still records the state of what runs, and ends
    /// when its session does (though the bus lives on).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lagging_recorder_records_every_running_torrents_state() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d.bin");
        std::fs::write(&data, vec![7u8; 40_000]).unwrap();
        let meta = create_torrent(&data, &CreateOptions::default(), &|_, _| {}).unwrap();
        let path = dir.path().join("torrents.toml");
        std::fs::write(&path, "[settings]\ndht = false\n").unwrap();
        let torrents = Torrents::open(&path);
        torrents
            .update(|cfg| {
                cfg.upsert(ManagedTorrent::new(
                    "d.bin",
                    &meta.info_hash,
                    "d.torrent",
                    ".",
                    "downloading",
                    Origin::Created,
                ));
                Ok(())
            })
            .unwrap();
        // The session's events go to its own channel: the recorder hears none of them.
        let session = Session::start(SessionConfig::default()).await.unwrap();
        let h = session
            .add(
                meta.clone(),
                AddOptions {
                    data_dir: dir.path().to_path_buf(),
                    trackers: Some(vec![]),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while h.stats().state != TorrentState::Seeding {
            assert!(Instant::now() < end, "the data check did not end");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // A bus of one event, overrun before the recorder reads it.
        let (tx, rx) = broadcast::channel(1);
        for _ in 0..3 {
            let _ = tx.send(Event::WatchPending {
                path: "/w".into(),
                message: "waiting".into(),
            });
        }
        let recorder = tokio::spawn(record_engine_states(session.clone(), rx, torrents.clone()));
        let state = || {
            Torrents::open(&path).config().unwrap().torrents[0]
                .state
                .clone()
        };
        while state() != "seeding" {
            assert!(Instant::now() < end, "the state was never recorded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        session.shutdown(Duration::from_secs(2)).await;
        tokio::time::timeout(Duration::from_secs(5), recorder)
            .await
            .expect("the recorder ends with its session")
            .unwrap();
        drop(tx);
    }
}
