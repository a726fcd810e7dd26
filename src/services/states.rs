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
    let recorder = StateRecorder::start(torrents);
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
        match first {
            Ok(ev) => states.extend(implied_state(&ev)),
            Err(RecvError::Lagged(_)) => lagged = true,
            Err(RecvError::Closed) => return,
        }
        for _ in 1..EVENT_BATCH {
            match rx.try_recv() {
                Ok(ev) => states.extend(implied_state(&ev)),
                Err(TryRecvError::Lagged(_)) => lagged = true,
                Err(_) => break,
            }
        }
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
        if !states.is_empty() {
            recorder.record(states).await;
        }
    }
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
/// whether any state changes, and only then is the file written (once).
pub fn record_states(torrents: &Torrents, states: &[(InfoHash, &str)]) -> Result<()> {
    let want: std::collections::HashMap<InfoHash, &str> = states.iter().copied().collect();
    let stale = |cfg: &crate::config::Config| {
        cfg.torrents.iter().any(|t| {
            t.hash()
                .and_then(|ih| want.get(&ih))
                .is_some_and(|st| t.state != *st)
        })
    };
    if !stale(torrents.config()?.as_ref()) {
        return Ok(());
    }
    torrents.update(|cfg| {
        for t in &mut cfg.torrents {
            if let Some(st) = t.hash().and_then(|ih| want.get(&ih)) {
                t.state = st.to_string();
            }
        }
        Ok(())
    })
}
