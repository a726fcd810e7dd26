//! Process signals, handled here alone. Every front end registers what it needs before it starts
//! work, so no signal ever meets the default action (an abrupt exit that saves nothing):
//! - the daemon, the tracker and the demo wait for SIGINT or SIGTERM and then stop cleanly
//!   ([`stop_requested`], [`StopSignals`]); the daemon and the tracker read torrents.toml again
//!   at each SIGHUP ([`Reload`]);
//! - a one-shot command or `btorrent run` asks its script to stop at the first SIGINT or SIGTERM and
//!   exits at once (code 130) at the second ([`cancel_then_exit`]);
//! - the shell cancels the running command at each SIGINT ([`cancel_on_interrupt`]) and closes on
//!   SIGTERM or SIGHUP ([`Hangup`]).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::runtime::Runtime;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGINT and SIGTERM, registered together.
pub struct StopSignals {
    int: Signal,
    term: Signal,
}

impl StopSignals {
    /// Registers the handlers now; needs a tokio runtime (enter one first outside async code).
    pub fn register() -> io::Result<StopSignals> {
        Ok(StopSignals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Resolves at the next SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM. When the handlers cannot be registered, it never resolves
/// (the default action then ends the process).
pub async fn stop_requested() {
    match StopSignals::register() {
        Ok(mut s) => s.recv().await,
        Err(e) => {
            tracing::warn!("cannot handle SIGINT/SIGTERM: {e}");
            std::future::pending::<()>().await
        }
    }
}

/// The first SIGINT or SIGTERM sets `cancel` (and `noted`, when given), so the running script stops
/// and everything shuts down cleanly; a second one exits at once with code 130. Registered before
/// this returns.
pub fn cancel_then_exit(
    runtime: &Runtime,
    cancel: Arc<AtomicBool>,
    noted: Option<Arc<AtomicBool>>,
) -> io::Result<()> {
    let mut signals = {
        let _enter = runtime.enter();
        StopSignals::register()?
    };
    runtime.spawn(async move {
        signals.recv().await;
        if let Some(n) = noted {
            n.store(true, Ordering::Relaxed);
        }
        cancel.store(true, Ordering::Relaxed);
        signals.recv().await;
        std::process::exit(130);
    });
    Ok(())
}

/// Each SIGINT (Ctrl-C while a command runs) sets `cancel`, for as long as the process runs.
pub fn cancel_on_interrupt(runtime: &Runtime, cancel: Arc<AtomicBool>) -> io::Result<()> {
    let mut sig = {
        let _enter = runtime.enter();
        signal(SignalKind::interrupt())?
    };
    runtime.spawn(async move {
        while sig.recv().await.is_some() {
            cancel.store(true, Ordering::Relaxed);
        }
    });
    Ok(())
}

/// SIGTERM and SIGHUP (the terminal went away), registered together.
pub struct Hangup {
    term: Signal,
    hup: Signal,
}

impl Hangup {
    /// Registers the handlers now, inside `runtime`.
    pub fn register(runtime: &Runtime) -> io::Result<Hangup> {
        let _enter = runtime.enter();
        Ok(Hangup {
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Resolves at the next SIGTERM or SIGHUP.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}

/// SIGHUP to the daemon: a request to read its configuration again (what `systemctl reload` sends
/// with `ExecReload=/bin/kill -HUP $MAINPID`), not to end.
pub struct Reload(Signal);

impl Reload {
    /// Registers the handler now, inside `runtime`.
    pub fn register(runtime: &Runtime) -> io::Result<Reload> {
        let _enter = runtime.enter();
        Reload::new()
    }

    /// Registers the handler now; within a runtime.
    pub fn new() -> io::Result<Reload> {
        Ok(Reload(signal(SignalKind::hangup())?))
    }

    /// Resolves at the next SIGHUP.
    pub async fn recv(&mut self) {
        if self.0.recv().await.is_none() {
            std::future::pending::<()>().await
        }
    }
}

/// What the daemon and the tracker do at a SIGHUP: read torrents.toml again now, off the async
/// workers, so whoever follows it applies a hand edit at once; one that cannot be read changes
/// nothing; `log` is given the line that says which. The service manager hears `RELOADING=1`
/// before and `READY=1` once that line is out.
pub async fn reload_config(
    torrents: crate::torrents::Torrents,
    manager: Option<&crate::service_manager::Notifier>,
    log: impl Fn(&str),
) {
    if let Some(n) = manager {
        n.send("RELOADING=1");
    }
    let read = tokio::task::spawn_blocking(move || {
        torrents.reload();
        torrents.config().map(|_| ())
    })
    .await;
    log(&match read {
        Ok(Err(e)) => {
            format!("SIGHUP: torrents.toml cannot be read, nothing changes until it can: {e:#}")
        }
        _ => "SIGHUP: torrents.toml read again; its changes apply now".to_string(),
    });
    if let Some(n) = manager {
        n.send("READY=1");
    }
}
