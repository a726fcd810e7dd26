//! The dispatcher: one thread that calls the scripts' event handlers and timers, one call at a time.
//!
//! It listens to the [event bus](crate::events::EventBus) like any other subscriber, so whoever
//! publishes (the engine, straight into the bus; the watch folder; the seeding goals) never waits on
//! a script: if handlers fall far behind, the
//! bus drops the oldest events for this subscriber and the dispatcher says how many were missed. Each
//! call is bounded by the operation limit and the per-call time limit
//! ([`Automation::call_time_limit`](super::automation::Automation::call_time_limit)); an error is
//! printed with the script, line and message, and the next event is handled as usual.
//!
//! The thread is an ordinary thread, not a runtime worker: it blocks on the runtime only to wait for
//! the next event or timer, and primitives called by handlers may block on the runtime in turn.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Map};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::automation::Callback;
use super::host::{Host, ScriptError};
use super::prims::event_map;
use crate::events::Event;

/// The running dispatcher thread; [`Dispatcher::stop`] ends it.
pub struct Dispatcher {
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

enum Wake {
    Stop,
    Event(Event),
    Missed(u64),
    BusClosed,
    Timer,
    Changed,
}

impl Dispatcher {
    /// Starts calling the handlers (for events on the host's bus) and timers registered with `host`.
    pub fn start(host: Arc<Host>) -> Dispatcher {
        let rx = host.context().bus.subscribe();
        Dispatcher::start_from(host, rx)
    }

    /// The same, for the events of a receiver subscribed earlier (those already queued come first).
    pub fn start_from(host: Arc<Host>, rx: tokio::sync::broadcast::Receiver<Event>) -> Dispatcher {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let thread = std::thread::Builder::new()
            .name("btorrent-scripts".into())
            .stack_size(super::limits::SCRIPT_STACK)
            .spawn(move || {
                super::limits::mark_roomy();
                run(host, rx, token)
            })
            .expect("spawn the script dispatcher thread");
        Dispatcher {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops after the call in progress (if any); waits for the thread at most `wait`.
    pub fn stop(mut self, wait: Duration) {
        self.stop.cancel();
        let Some(t) = self.thread.take() else { return };
        let end = Instant::now() + wait;
        while !t.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        if t.is_finished() {
            let _ = t.join();
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn run(host: Arc<Host>, rx: tokio::sync::broadcast::Receiver<Event>, stop: CancellationToken) {
    let ctx = host.context().clone();
    let auto = ctx.automation.clone();
    let mut rx = Some(rx);
    loop {
        let next = auto.next_due();
        let wake = ctx.runtime.block_on(async {
            let event = async {
                match rx.as_mut() {
                    Some(rx) => match rx.recv().await {
                        Ok(ev) => Wake::Event(ev),
                        Err(RecvError::Lagged(n)) => Wake::Missed(n),
                        Err(RecvError::Closed) => Wake::BusClosed,
                    },
                    None => std::future::pending().await,
                }
            };
            let timer = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = stop.cancelled() => Wake::Stop,
                _ = timer => Wake::Timer,
                w = event => w,
                _ = auto.changed.notified() => Wake::Changed,
            }
        });
        match wake {
            Wake::Stop => return,
            Wake::Event(ev) => {
                let handlers = auto.handlers(ev.kind());
                if handlers.is_empty() {
                    continue;
                }
                let map = event_map(&ev);
                for cb in handlers {
                    if stop.is_cancelled() {
                        return;
                    }
                    call(&host, &cb, map.clone());
                }
            }
            Wake::Missed(n) => ctx.print(&format!(
                "scripts: {n} events were missed because handlers were too slow"
            )),
            Wake::BusClosed => rx = None,
            Wake::Timer => {
                for t in auto.take_due(Instant::now()) {
                    if !stop.is_cancelled() {
                        call(&host, &t.cb, Map::new());
                    }
                    auto.finish_timer(t);
                }
            }
            Wake::Changed => {}
        }
    }
}

/// One callback: a handler gets the event map, a timer gets nothing.
fn call(host: &Host, cb: &Callback, arg: Map) {
    let res = if arg.is_empty() {
        host.call_back(cb, ())
    } else {
        host.call_back(cb, (Dynamic::from_map(arg),))
    };
    match res {
        // Cut short by the stop (Ctrl-C, closing): not a failure of the script.
        Ok(_) | Err(ScriptError::Cancelled { .. }) => {}
        // `exit(code)`: the call ends; a `btorrent run` process ends with the code.
        Err(ScriptError::Exited { code, .. }) => {
            host.context().automation.request_exit(code);
            if code != 0 {
                host.context()
                    .print(&format!("{} ended with exit code {code}", cb.what));
            }
        }
        // Printed once, where the front end shows output (above the prompt, the daemon's log).
        Err(e) => host.context().print(&format!("{} failed: {e}", cb.what)),
    }
}
