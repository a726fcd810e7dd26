//! The event bus front ends subscribe to, and the one event type they match on: what happened to
//! which torrent, from the engine (added, completed, seeding, error, removed, paused, resumed, moved,
//! found locally, peer banned, warning, layers derived, carried as the engine said it), from the seeding goals and from the watch folder (pending, seeded,
//! rejected).
//!
//! The peer session publishes into this bus itself (its [`EventSink`] is [`EventBus::engine_sink`]):
//! there is one channel from the engine to the scripts' handlers, the shell's and the daemon's event
//! lines and the recorder of states in torrents.toml, and no task in between. Producers never wait:
//! the bus is a bounded broadcast channel, and a subscriber that falls behind loses the oldest events
//! (and is told how many).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use tokio::sync::broadcast;

use crate::engine::{self, EventSink};
use crate::types::InfoHash;

/// What kind of thing happened. The names are what scripts pass to `on(...)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A torrent was added to the session.
    Added,
    /// A download reached 100% (never fired by a re-check of data already complete).
    Completed,
    /// A torrent started seeding (after completing, or with data complete from the start).
    Seeding,
    /// A torrent hit an error (disk, tracker refusal, ...).
    Error,
    /// A torrent was removed from the session.
    Removed,
    /// A torrent was paused (by a command, a script, the RPC, a seeding goal or its queue).
    Paused,
    /// A paused torrent was resumed.
    Resumed,
    /// A torrent's data folder changed: its files moved there (`b-move`, the RPC, the complete
    /// folder), or it was pointed there and checked (`b-move --find`, a hand edit of `data`).
    Moved,
    /// Files a torrent lacked were found on this machine (in another torrent, or the version
    /// before of a followed link) and copied or moved into its folder rather than fetched; or
    /// files of the version before that a followed link's new version dropped were removed.
    FoundLocally,
    /// A peer was banned (bad pieces, protocol abuse).
    PeerBanned,
    /// Something wrong a torrent works around: a piece withdrawn because its data on disk failed its
    /// hash (it is downloaded again), a file longer than the torrent says.
    Warning,
    /// A seeding goal stopped a complete torrent (its ratio or idle time, as `ev.message` says).
    SeedGoalReached,
    /// The watch folder saw a new entry and waits for it to settle.
    WatchPending,
    /// The watch folder made a torrent of an entry and seeds it.
    WatchSeeded,
    /// The watch folder could not share an entry (unreadable, empty, bad .torrent).
    WatchRejected,
    /// A hybrid torrent that came without its v2 piece layers derived them from its data.
    LayersDerived,
}

impl EventKind {
    pub const ALL: [EventKind; 16] = [
        EventKind::Added,
        EventKind::Completed,
        EventKind::Seeding,
        EventKind::Error,
        EventKind::Removed,
        EventKind::Paused,
        EventKind::Resumed,
        EventKind::Moved,
        EventKind::FoundLocally,
        EventKind::PeerBanned,
        EventKind::Warning,
        EventKind::SeedGoalReached,
        EventKind::WatchPending,
        EventKind::WatchSeeded,
        EventKind::WatchRejected,
        EventKind::LayersDerived,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Added => "added",
            EventKind::Completed => "completed",
            EventKind::Seeding => "seeding",
            EventKind::Error => "error",
            EventKind::Removed => "removed",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::Moved => "moved",
            EventKind::FoundLocally => "found_locally",
            EventKind::PeerBanned => "peer_banned",
            EventKind::Warning => "warning",
            EventKind::SeedGoalReached => "seed_goal_reached",
            EventKind::WatchPending => "watch_pending",
            EventKind::WatchSeeded => "watch_seeded",
            EventKind::WatchRejected => "watch_rejected",
            EventKind::LayersDerived => "layers_derived",
        }
    }

    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One event. [`Event::kind`] names it for scripts' `on(...)`; the accessors give what the shell's
/// line, the daemon's log and a handler's map show: the torrent (`info_hash`, `name`) when there is
/// one, the file or folder concerned (`path`: the data folder, or the watched entry), what explains
/// errors, rejections and bans (`message`), a banned peer's address (`peer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// What the peer engine says, as it says it.
    Engine(engine::Event),
    /// A torrent torrents.toml lists could not be added back to the session (kind `error`).
    NotResumed {
        info_hash: InfoHash,
        name: String,
        message: String,
    },
    /// A seeding goal stopped a complete torrent; `reason` says which (its ratio or idle time).
    SeedGoalReached {
        info_hash: InfoHash,
        name: String,
        data_dir: PathBuf,
        reason: String,
    },
    /// The watch folder saw a new entry and waits for it to settle.
    WatchPending { path: PathBuf, message: String },
    /// The watch folder made a torrent of an entry and seeds it.
    WatchSeeded {
        info_hash: InfoHash,
        name: String,
        path: PathBuf,
        message: String,
    },
    /// The watch folder could not share an entry (the torrent, when it got that far).
    WatchRejected {
        torrent: Option<(InfoHash, String)>,
        path: PathBuf,
        message: String,
    },
}

impl From<engine::Event> for Event {
    fn from(ev: engine::Event) -> Event {
        Event::Engine(ev)
    }
}

impl Event {
    pub fn kind(&self) -> EventKind {
        use engine::Event as E;
        match self {
            Event::Engine(e) => match e {
                E::Added { .. } => EventKind::Added,
                E::Completed { .. } => EventKind::Completed,
                E::Seeding { .. } => EventKind::Seeding,
                E::Error { .. } => EventKind::Error,
                E::Removed { .. } => EventKind::Removed,
                E::Paused { .. } => EventKind::Paused,
                E::Resumed { .. } => EventKind::Resumed,
                E::Moved { .. } => EventKind::Moved,
                E::FoundLocally { .. } => EventKind::FoundLocally,
                E::PeerBanned { .. } => EventKind::PeerBanned,
                E::Warning { .. } => EventKind::Warning,
                E::LayersDerived { .. } => EventKind::LayersDerived,
            },
            Event::NotResumed { .. } => EventKind::Error,
            Event::SeedGoalReached { .. } => EventKind::SeedGoalReached,
            Event::WatchPending { .. } => EventKind::WatchPending,
            Event::WatchSeeded { .. } => EventKind::WatchSeeded,
            Event::WatchRejected { .. } => EventKind::WatchRejected,
        }
    }

    /// The torrent's info-hash and name, when the event is about one.
    pub fn torrent(&self) -> Option<(InfoHash, &str)> {
        match self {
            Event::Engine(e) => Some((e.info_hash(), e.name())),
            Event::NotResumed {
                info_hash, name, ..
            }
            | Event::SeedGoalReached {
                info_hash, name, ..
            }
            | Event::WatchSeeded {
                info_hash, name, ..
            } => Some((*info_hash, name)),
            Event::WatchRejected { torrent, .. } => {
                torrent.as_ref().map(|(ih, n)| (*ih, n.as_str()))
            }
            Event::WatchPending { .. } => None,
        }
    }

    pub fn info_hash(&self) -> Option<InfoHash> {
        self.torrent().map(|(ih, _)| ih)
    }

    pub fn name(&self) -> Option<&str> {
        self.torrent().map(|(_, n)| n)
    }

    /// The data folder (added, completed, seeding, moved, goal reached) or the watched entry.
    pub fn path(&self) -> Option<String> {
        use engine::Event as E;
        let p = match self {
            Event::Engine(
                E::Added { data_dir, .. }
                | E::Completed { data_dir, .. }
                | E::Seeding { data_dir, .. }
                | E::Moved { data_dir, .. }
                | E::FoundLocally { data_dir, .. },
            )
            | Event::SeedGoalReached { data_dir, .. } => data_dir,
            Event::WatchPending { path, .. }
            | Event::WatchSeeded { path, .. }
            | Event::WatchRejected { path, .. } => path,
            _ => return None,
        };
        Some(p.display().to_string())
    }

    pub fn message(&self) -> Option<&str> {
        use engine::Event as E;
        match self {
            Event::Engine(
                E::Error { message, .. }
                | E::Warning { message, .. }
                | E::Moved { message, .. }
                | E::FoundLocally { message, .. }
                | E::PeerBanned {
                    reason: message, ..
                },
            )
            | Event::NotResumed { message, .. }
            | Event::SeedGoalReached {
                reason: message, ..
            }
            | Event::WatchPending { message, .. }
            | Event::WatchSeeded { message, .. }
            | Event::WatchRejected { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The banned peer's address.
    pub fn peer(&self) -> Option<String> {
        match self {
            Event::Engine(engine::Event::PeerBanned { addr, .. }) => Some(addr.to_string()),
            _ => None,
        }
    }
}

/// One line, whatever the names, paths and messages hold: their control characters are written
/// escaped (a file dropped in the watch folder may be named with a line break or a terminal's
/// escape sequence).
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use btorrent_proto::text::escape_controls;
        write!(f, "{}", self.kind())?;
        if let Some(n) = self.name() {
            write!(f, " {}", escape_controls(n))?;
        }
        if let Some(p) = self.path() {
            write!(f, " ({})", escape_controls(&p))?;
        }
        if let Some(p) = self.peer() {
            write!(f, " peer {p}")?;
        }
        if let Some(m) = self.message() {
            write!(f, ": {}", escape_controls(m))?;
        }
        Ok(())
    }
}

/// Events kept for a slow subscriber before the oldest are dropped. The shell's and the daemon's
/// event log and the script handlers subscribe before the managed torrents start and read once they
/// all have: each torrent publishes two events by then (added, seeding), so this holds those of
/// 2,000 torrents (1,024 lost most of a 1,000-torrent start's).
pub const BUS_CAPACITY: usize = 4096;

/// A cheap-to-clone handle producers publish on and front ends subscribe to.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(BUS_CAPACITY).0,
        }
    }
}

impl EventBus {
    /// Publishes `ev`; never blocks, and is a no-op when nobody listens.
    pub fn publish(&self, ev: impl Into<Event>) {
        let _ = self.tx.send(ev.into());
    }

    /// The sink a peer session publishes its events into: this bus, each event as
    /// [`Event::Engine`].
    pub fn engine_sink(&self) -> EventSink {
        EventSink::broadcast(self.tx.clone())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_events_reach_subscribers() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.name()), Some(k));
        }
        assert_eq!(EventKind::from_name("nope"), None);
        let bus = EventBus::default();
        bus.publish(Event::WatchPending {
            path: "/w/a".into(),
            message: "waiting".into(),
        });
        let mut rx = bus.subscribe();
        let ev = engine::Event::Completed {
            info_hash: InfoHash([1; 20]),
            name: "a".into(),
            data_dir: "/d".into(),
        };
        // What the engine publishes into the bus's sink arrives as it was sent.
        bus.engine_sink().publish(ev.clone());
        let got = rx.try_recv().unwrap();
        assert_eq!(got, Event::Engine(ev));
        assert_eq!(got.to_string(), "completed a (/d)");
    }

    #[test]
    fn log_lines_keep_their_shape() {
        let ih = InfoHash([2; 20]);
        let banned = Event::Engine(engine::Event::PeerBanned {
            info_hash: ih,
            name: "b".into(),
            addr: "10.0.0.1:6881".parse().unwrap(),
            reason: "bad pieces".into(),
        });
        assert_eq!(
            banned.to_string(),
            "peer_banned b peer 10.0.0.1:6881: bad pieces"
        );
        assert_eq!(banned.kind(), EventKind::PeerBanned);
        let rejected = Event::WatchRejected {
            torrent: None,
            path: "/w/x".into(),
            message: "empty".into(),
        };
        assert_eq!(rejected.to_string(), "watch_rejected (/w/x): empty");
        let forged = Event::WatchPending {
            path: "/w/x\n[2026-12-07T18:00:00Z] added evil\u{1b}[2J".into(),
            message: "waiting\r".into(),
        };
        assert_eq!(
            forged.to_string(),
            "watch_pending (/w/x\\n[2026-12-07T18:00:00Z] added evil\\u{1b}[2J): waiting\\r"
        );
        assert_eq!(rejected.info_hash(), None);
        let not_resumed = Event::NotResumed {
            info_hash: ih,
            name: "c".into(),
            message: "cannot resume: gone".into(),
        };
        assert_eq!(not_resumed.kind(), EventKind::Error);
        assert_eq!(not_resumed.to_string(), "error c: cannot resume: gone");
    }
}
