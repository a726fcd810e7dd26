//! Where a session's [`Event`]s go: the one channel from the engine to its front ends.
//!
//! A session is given its [`EventSink`] in [`SessionConfig::events`](crate::SessionConfig::events)
//! and publishes every event into it as it happens, from the task where it happens; nothing forwards
//! them. Two kinds of sink:
//!
//! - [`EventSink::own`] (the default): a bounded broadcast channel of engine events, heard through
//!   [`Session::subscribe`](crate::Session::subscribe). For a program that runs the engine alone.
//! - [`EventSink::broadcast`]: the front end's own bounded broadcast channel, whose item carries the
//!   engine's event as it is (`T: From<Event>`); the app's event bus is one. The session then has no
//!   channel of its own.
//!
//! Either way publishing never waits: a full channel drops its oldest item for a receiver that lags
//! (it is told how many it lost, `RecvError::Lagged`), and nobody listening is not an error.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::Event;

/// Events kept for a slow subscriber of a session's own channel before it starts missing some.
pub const OWN_CAPACITY: usize = 1024;

/// Where a session publishes its events. Cheap to clone.
#[derive(Clone)]
pub struct EventSink {
    /// The session's own channel, when it has one.
    own: Option<broadcast::Sender<Event>>,
    publish: Arc<dyn Fn(Event) + Send + Sync>,
}

impl EventSink {
    /// A channel of the session's own, of [`OWN_CAPACITY`] events.
    pub fn own() -> EventSink {
        let tx = broadcast::channel(OWN_CAPACITY).0;
        let sent = tx.clone();
        EventSink {
            own: Some(tx),
            publish: Arc::new(move |ev| {
                let _ = sent.send(ev);
            }),
        }
    }

    /// Into `tx`, each event wrapped as the channel's item.
    pub fn broadcast<T>(tx: broadcast::Sender<T>) -> EventSink
    where
        T: From<Event> + Send + 'static,
    {
        EventSink {
            own: None,
            publish: Arc::new(move |ev| {
                let _ = tx.send(T::from(ev));
            }),
        }
    }

    /// Publishes `ev`; never waits.
    pub fn publish(&self, ev: Event) {
        (self.publish)(ev)
    }

    /// A receiver of the session's own channel; `None` when the events go to a front end's channel.
    pub fn subscribe(&self) -> Option<broadcast::Receiver<Event>> {
        self.own.as_ref().map(|tx| tx.subscribe())
    }
}

impl Default for EventSink {
    fn default() -> Self {
        EventSink::own()
    }
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.own {
            Some(_) => "EventSink::own",
            None => "EventSink::broadcast",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use btorrent_proto::types::InfoHash;

    fn removed(n: u8) -> Event {
        Event::Removed {
            info_hash: InfoHash([n; 20]),
            name: format!("t{n}"),
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    struct Wrapped(Event);
    impl From<Event> for Wrapped {
        fn from(ev: Event) -> Self {
            Wrapped(ev)
        }
    }

    #[test]
    fn a_front_end_channel_gets_the_events_as_they_are_and_no_own_channel_exists() {
        let (tx, mut rx) = broadcast::channel::<Wrapped>(4);
        let sink = EventSink::broadcast(tx);
        assert!(sink.subscribe().is_none());
        sink.publish(removed(1));
        assert_eq!(rx.try_recv().unwrap(), Wrapped(removed(1)));
        // Never waits: past the bound the laggard is told how many it lost.
        for n in 0..10 {
            sink.publish(removed(n));
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(6))
        ));
    }

    #[test]
    fn the_own_channel_is_heard_through_subscribe() {
        let sink = EventSink::default();
        sink.publish(removed(0));
        let mut rx = sink.subscribe().unwrap();
        sink.publish(removed(2));
        assert_eq!(rx.try_recv().unwrap(), removed(2));
    }
}
