//! The event bus front ends subscribe to: what happened to which torrent, from the engine (added,
//! completed, seeding, error, removed, peer banned) and from the watch folder (pending, seeded,
//! rejected). Producers never wait: the bus is a bounded broadcast channel, and a subscriber that falls
//! behind loses the oldest events (and is told how many).

use std::fmt;

use serde::Serialize;
use tokio::sync::broadcast;

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
}

impl EventKind {
    pub const ALL: [EventKind; 11] = [
        EventKind::Added,
        EventKind::Completed,
        EventKind::Seeding,
        EventKind::Error,
        EventKind::Removed,
        EventKind::PeerBanned,
        EventKind::Warning,
        EventKind::SeedGoalReached,
        EventKind::WatchPending,
        EventKind::WatchSeeded,
        EventKind::WatchRejected,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EventKind::Added => "added",
            EventKind::Completed => "completed",
            EventKind::Seeding => "seeding",
            EventKind::Error => "error",
            EventKind::Removed => "removed",
            EventKind::PeerBanned => "peer_banned",
            EventKind::Warning => "warning",
            EventKind::SeedGoalReached => "seed_goal_reached",
            EventKind::WatchPending => "watch_pending",
            EventKind::WatchSeeded => "watch_seeded",
            EventKind::WatchRejected => "watch_rejected",
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

/// One event. `info_hash` and `name` name the torrent when there is one; `path` is the file or folder
/// concerned (the data folder, or the watched entry); `message` explains errors, rejections and bans;
/// `peer` is the banned peer's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub kind: EventKind,
    pub info_hash: Option<InfoHash>,
    pub name: Option<String>,
    pub path: Option<String>,
    pub message: Option<String>,
    pub peer: Option<String>,
}

impl Event {
    pub fn new(kind: EventKind) -> Event {
        Event {
            kind,
            info_hash: None,
            name: None,
            path: None,
            message: None,
            peer: None,
        }
    }

    pub fn torrent(mut self, info_hash: InfoHash, name: impl Into<String>) -> Event {
        self.info_hash = Some(info_hash);
        self.name = Some(name.into());
        self
    }

    pub fn path(mut self, path: impl Into<String>) -> Event {
        self.path = Some(path.into());
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Event {
        self.message = Some(message.into());
        self
    }

    pub fn peer(mut self, peer: impl Into<String>) -> Event {
        self.peer = Some(peer.into());
        self
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(n) = &self.name {
            write!(f, " {n}")?;
        }
        if let Some(p) = &self.path {
            write!(f, " ({p})")?;
        }
        if let Some(p) = &self.peer {
            write!(f, " peer {p}")?;
        }
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
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
    pub fn publish(&self, ev: Event) {
        let _ = self.tx.send(ev);
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
        bus.publish(Event::new(EventKind::Added));
        let mut rx = bus.subscribe();
        let ev = Event::new(EventKind::Completed)
            .torrent(InfoHash([1; 20]), "a")
            .path("/d");
        bus.publish(ev.clone());
        assert_eq!(rx.try_recv().unwrap(), ev);
        assert_eq!(ev.to_string(), "completed a (/d)");
    }
}
