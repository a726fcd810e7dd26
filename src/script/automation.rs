//! What scripts ask to be called back for: event handlers (`on`) and timers (`every`, `after`).
//!
//! The registry only records callbacks; the [`dispatch`](super::dispatch) thread calls them, one at a
//! time, so nothing that publishes an event ever runs or waits on a script.
//!
//! A callback is a rhai function pointer (usually a closure) plus the compiled script it was defined in:
//! a closure's body lives in that script's function library, so the script's [`AST`] is kept alive with
//! it. Which script is running on a thread is known through [`CurrentScript`], set by whoever runs
//! script code (the host for a command or file, the dispatcher for a callback), so a primitive such as
//! `on` can tell which script registered a handler and name it in errors.
//!
//! Invariants: ids are unique for the life of the registry and never reused; a timer is removed from
//! the registry before its callback runs (and put back, re-armed, after it if it repeats and was not
//! cancelled meanwhile); timers taken out and not yet finished are listed as running, so "nothing
//! left to do" ([`Automation::is_idle`]) is never seen between taking a timer and running it.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rhai::{FnPtr, AST};
use tokio::sync::Notify;

use crate::events::EventKind;

/// How long one handler or timer call may run before it is stopped.
pub const DEFAULT_CALL_TIME_LIMIT: Duration = Duration::from_secs(30);

/// Shortest period `every` accepts.
pub const MIN_PERIOD: Duration = Duration::from_millis(10);

/// A script function to call later, with the script it belongs to.
pub struct Callback {
    pub func: FnPtr,
    pub ast: Arc<AST>,
    /// The script as errors name it (`scripts/autorun/move.rhai`).
    pub script: String,
    /// What registered it, for messages: `on("completed")`, `every(60)`.
    pub what: String,
    /// Its id in the registry (set when it is registered), so `off()` inside it removes it.
    pub id: i64,
}

/// The script running on this thread, as [`CurrentScript::get`] returns it.
#[derive(Clone)]
pub struct CurrentScript {
    pub ast: Arc<AST>,
    pub script: String,
    /// The id of the handler or timer being called, if the code running is one.
    pub callback: Option<i64>,
}

thread_local! {
    static CURRENT: RefCell<Option<CurrentScript>> = const { RefCell::new(None) };
}

impl CurrentScript {
    /// Runs `f` with `cur` recorded as the script running on this thread (restoring the previous one
    /// after, so a callback may run inside a command's primitive and vice versa).
    pub fn enter<T>(cur: CurrentScript, f: impl FnOnce() -> T) -> T {
        struct Restore(Option<CurrentScript>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let prev = self.0.take();
                CURRENT.with(|c| *c.borrow_mut() = prev);
            }
        }
        let prev = CURRENT.with(|c| c.borrow_mut().replace(cur));
        let _restore = Restore(prev);
        f()
    }

    pub fn get() -> Option<CurrentScript> {
        CURRENT.with(|c| c.borrow().clone())
    }
}

struct Handler {
    id: i64,
    kind: EventKind,
    cb: Arc<Callback>,
}

struct Timer {
    id: i64,
    due: Instant,
    every: Option<Duration>,
    cb: Arc<Callback>,
}

#[derive(Default)]
struct Registry {
    last_id: i64,
    handlers: Vec<Handler>,
    timers: Vec<Timer>,
    /// Timers taken out to run: their id, and whether they were cancelled while running.
    running: Vec<(i64, bool)>,
    /// The exit code a callback asked for with `exit`.
    exit: Option<u8>,
}

/// A timer taken out of the registry to run; hand it back with [`Automation::finish_timer`].
pub struct DueTimer {
    pub id: i64,
    pub every: Option<Duration>,
    pub cb: Arc<Callback>,
}

/// The handlers and timers of one process.
pub struct Automation {
    reg: Mutex<Registry>,
    /// Woken when a timer is added (the dispatcher re-computes when to wake).
    pub(crate) changed: Notify,
    /// Woken when the registry may have become idle.
    idle: Notify,
    /// How long one callback may run.
    pub call_time_limit: Duration,
}

impl Default for Automation {
    fn default() -> Self {
        Automation {
            reg: Mutex::new(Registry::default()),
            changed: Notify::new(),
            idle: Notify::new(),
            call_time_limit: DEFAULT_CALL_TIME_LIMIT,
        }
    }
}

impl Automation {
    pub fn new(call_time_limit: Duration) -> Automation {
        Automation {
            call_time_limit,
            ..Default::default()
        }
    }

    /// Registers `cb` for events of `kind`; returns its id.
    pub fn on(&self, kind: EventKind, mut cb: Callback) -> i64 {
        let mut r = self.reg.lock();
        r.last_id += 1;
        let id = r.last_id;
        cb.id = id;
        r.handlers.push(Handler {
            id,
            kind,
            cb: Arc::new(cb),
        });
        id
    }

    /// Calls `cb` after `delay`, then every `every` if given; returns its id.
    pub fn timer(&self, delay: Duration, every: Option<Duration>, mut cb: Callback) -> i64 {
        let id = {
            let mut r = self.reg.lock();
            r.last_id += 1;
            let id = r.last_id;
            cb.id = id;
            r.timers.push(Timer {
                id,
                due: Instant::now() + delay,
                every,
                cb: Arc::new(cb),
            });
            id
        };
        self.changed.notify_one();
        id
    }

    /// Removes a handler or timer by id (a timer running right now is not re-armed); false if there
    /// is none (already gone or never was).
    pub fn cancel(&self, id: i64) -> bool {
        let found = {
            let mut r = self.reg.lock();
            let before = r.handlers.len() + r.timers.len();
            r.handlers.retain(|h| h.id != id);
            r.timers.retain(|t| t.id != id);
            let removed = before != r.handlers.len() + r.timers.len();
            // A timer running right now is out of the list: remember not to re-arm it.
            let running = r.running.iter_mut().find(|(i, _)| *i == id);
            let was_running = running.is_some();
            if let Some((_, cancelled)) = running {
                *cancelled = true;
            }
            removed || was_running
        };
        self.changed.notify_one();
        self.idle.notify_one();
        found
    }

    /// The handlers for `kind`, in registration order.
    pub fn handlers(&self, kind: EventKind) -> Vec<Arc<Callback>> {
        self.reg
            .lock()
            .handlers
            .iter()
            .filter(|h| h.kind == kind)
            .map(|h| h.cb.clone())
            .collect()
    }

    pub fn has_handlers(&self) -> bool {
        !self.reg.lock().handlers.is_empty()
    }

    /// When the next timer is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.reg.lock().timers.iter().map(|t| t.due).min()
    }

    /// Takes every timer due at `now` out of the registry, earliest first.
    pub fn take_due(&self, now: Instant) -> Vec<DueTimer> {
        let mut r = self.reg.lock();
        let (due, keep): (Vec<Timer>, Vec<Timer>) = std::mem::take(&mut r.timers)
            .into_iter()
            .partition(|t| t.due <= now);
        r.timers = keep;
        r.running.extend(due.iter().map(|t| (t.id, false)));
        let mut due = due;
        due.sort_by_key(|t| (t.due, t.id));
        due.into_iter()
            .map(|t| DueTimer {
                id: t.id,
                every: t.every,
                cb: t.cb,
            })
            .collect()
    }

    /// Hands back a timer that ran: a repeating one is re-armed unless it was cancelled meanwhile.
    pub fn finish_timer(&self, t: DueTimer) {
        {
            let mut r = self.reg.lock();
            let cancelled = match r.running.iter().position(|(i, _)| *i == t.id) {
                Some(i) => r.running.swap_remove(i).1,
                None => false,
            };
            if let (Some(every), false) = (t.every, cancelled) {
                r.timers.push(Timer {
                    id: t.id,
                    due: Instant::now() + every,
                    every: t.every,
                    cb: t.cb,
                });
            }
        }
        self.idle.notify_one();
    }

    /// Nothing registered and nothing running: a `btorrent run` script with no handlers or timers left
    /// is done.
    pub fn is_idle(&self) -> bool {
        let r = self.reg.lock();
        r.handlers.is_empty() && r.timers.is_empty() && r.running.is_empty()
    }

    /// A handler or timer called `exit(code)`: a `btorrent run` process ends with `code`.
    pub fn request_exit(&self, code: u8) {
        self.reg.lock().exit.get_or_insert(code);
        self.idle.notify_one();
    }

    /// The code the first `exit` in a handler or timer asked for, if one did.
    pub fn exit_requested(&self) -> Option<u8> {
        self.reg.lock().exit
    }

    /// Waits until [`Automation::is_idle`] (or [`Automation::exit_requested`]) may have changed.
    pub async fn idle_changed(&self) {
        self.idle.notified().await
    }

    /// How many handlers and timers are registered.
    pub fn counts(&self) -> (usize, usize) {
        let r = self.reg.lock();
        (r.handlers.len(), r.timers.len() + r.running.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cb() -> Callback {
        Callback {
            func: FnPtr::new("f").unwrap(),
            ast: Arc::new(AST::empty()),
            script: "t.rhai".into(),
            what: "test".into(),
            id: 0,
        }
    }

    #[test]
    fn timers_come_due_in_order_and_repeat_until_cancelled() {
        let a = Automation::default();
        let t1 = a.timer(Duration::ZERO, Some(Duration::from_secs(60)), cb());
        let t2 = a.timer(Duration::from_secs(3600), None, cb());
        assert!(!a.is_idle());
        let due = a.take_due(Instant::now());
        assert_eq!(due.iter().map(|d| d.id).collect::<Vec<_>>(), [t1]);
        assert_eq!(a.counts(), (0, 2));
        // Cancelled while running: not re-armed.
        assert!(a.cancel(t1));
        for d in due {
            a.finish_timer(d);
        }
        assert_eq!(a.counts(), (0, 1));
        assert!(a.cancel(t2));
        assert!(a.is_idle());
        let h = a.on(EventKind::Completed, cb());
        assert_eq!(a.handlers(EventKind::Completed).len(), 1);
        assert!(a.handlers(EventKind::Added).is_empty());
        assert!(a.cancel(h) && a.is_idle());
        assert!(h > t2, "ids are never reused");
    }
}
