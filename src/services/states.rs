//! The peer session's events on their way to the bus: each becomes a bus event with the torrent's
//! name, and the states they imply (seeding, error) are recorded through the [`Torrents`] service, in
//! batches and on a thread of their own, before the events are published.

use anyhow::Result;
use tokio::sync::oneshot;

use crate::engine::{self, Session};
use crate::events::{Event, EventBus, EventKind};
use crate::torrents::Torrents;
use crate::types::InfoHash;

/// Events forwarded together at most: their states are recorded with at most one write of
/// torrents.toml.
const EVENT_BATCH: usize = 512;

/// Forwards the session's events onto the bus and records the states they imply in torrents.toml.
///
/// Events are taken in batches (those already waiting, up to [`EVENT_BATCH`]): the states of a batch
/// are recorded with one write of the file (none when the list in memory already says so), then its
/// events are published in order, so a subscriber that hears `seeding` finds it in torrents.toml. One
/// write per event made a start of 1,000 torrents serialise the 1,000-entry file 1,000 times. The
/// writes are done on one thread of their own: a large file takes several MiB for a moment, and done
/// on whichever blocking thread was free, it left each of their malloc arenas that large (over
/// 100 MiB of RSS for 1,000 torrents).
pub(super) async fn forward_events(session: Session, bus: EventBus, torrents: Torrents) {
    use tokio::sync::broadcast::error::{RecvError, TryRecvError};
    let recorder = StateRecorder::start(torrents);
    let mut rx = session.subscribe();
    // Names of the torrents seen, for events that come after the session has forgotten one (removed).
    let mut names: std::collections::HashMap<InfoHash, String> = Default::default();
    loop {
        let mut batch = Vec::new();
        match rx.recv().await {
            Ok(ev) => batch.push(ev),
            Err(RecvError::Lagged(n)) => {
                tracing::warn!("{n} engine events were dropped before reaching the bus");
                continue;
            }
            Err(RecvError::Closed) => return,
        }
        while batch.len() < EVENT_BATCH {
            match rx.try_recv() {
                Ok(ev) => batch.push(ev),
                Err(TryRecvError::Lagged(n)) => {
                    tracing::warn!("{n} engine events were dropped before reaching the bus");
                }
                Err(_) => break,
            }
        }
        let mut outs = Vec::with_capacity(batch.len());
        let mut states = Vec::new();
        for ev in batch {
            let (out, state) = bus_event(&session, &mut names, ev);
            states.extend(state);
            outs.push(out);
        }
        if !states.is_empty() {
            recorder.record(states).await;
        }
        for out in outs {
            bus.publish(out);
        }
    }
}

/// The thread that records states in torrents.toml for [`forward_events`]; it ends when this is dropped.
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

/// The bus event for an engine event, and the state it implies for torrents.toml.
fn bus_event(
    session: &Session,
    names: &mut std::collections::HashMap<InfoHash, String>,
    ev: engine::Event,
) -> (Event, Option<(InfoHash, &'static str)>) {
    if let engine::Event::Added { info_hash, name } = &ev {
        names.insert(*info_hash, name.clone());
    }
    let name_of = |ih: &InfoHash| {
        session
            .get(ih)
            .map(|h| h.name().to_string())
            .or_else(|| names.get(ih).cloned())
    };
    let data_of = |ih: &InfoHash| {
        session
            .get(ih)
            .map(|h| h.stats().data_dir.display().to_string())
    };
    let (out, state) = match ev {
        engine::Event::Added { info_hash, name } => {
            let mut e = Event::new(EventKind::Added).torrent(info_hash, name);
            e.path = data_of(&info_hash);
            (e, None)
        }
        engine::Event::Completed { info_hash, name } => {
            let mut e = Event::new(EventKind::Completed).torrent(info_hash, name);
            e.path = data_of(&info_hash);
            (e, Some((info_hash, "seeding")))
        }
        engine::Event::Seeding { info_hash, name } => {
            let mut e = Event::new(EventKind::Seeding).torrent(info_hash, name);
            e.path = data_of(&info_hash);
            (e, Some((info_hash, "seeding")))
        }
        engine::Event::Error { info_hash, message } => {
            let mut e = Event::new(EventKind::Error).message(message);
            e.info_hash = Some(info_hash);
            e.name = name_of(&info_hash);
            (e, Some((info_hash, "error")))
        }
        engine::Event::Warning { info_hash, message } => {
            let mut e = Event::new(EventKind::Warning).message(message);
            e.info_hash = Some(info_hash);
            e.name = name_of(&info_hash);
            (e, None)
        }
        engine::Event::Removed { info_hash } => {
            let mut e = Event::new(EventKind::Removed);
            e.info_hash = Some(info_hash);
            e.name = name_of(&info_hash);
            (e, None)
        }
        engine::Event::PeerBanned {
            info_hash,
            addr,
            reason,
        } => {
            let mut e = Event::new(EventKind::PeerBanned)
                .peer(addr.to_string())
                .message(reason);
            e.info_hash = Some(info_hash);
            e.name = name_of(&info_hash);
            (e, None)
        }
    };
    if out.kind == EventKind::Removed {
        if let Some(ih) = &out.info_hash {
            names.remove(ih);
        }
    }
    (out, state)
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
