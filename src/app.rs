//! What the long-running front ends (the shell and the daemon) assemble: the services from
//! torrents.toml, two script hosts over them, the dispatcher that calls the scripts' handlers and
//! timers, and the autorun scripts.
//!
//! Two hosts, so that Ctrl-C reaches only what the person is waiting for: the command host runs what is
//! typed at the prompt and has the Ctrl-C flag; the automation host runs the autorun scripts, handlers
//! and timers, and is cancelled only at shutdown. Both share the registry of handlers and timers, the
//! event bus, the output and the running torrents, so a handler a command registers is called like any
//! other.
//!
//! Torrents registered while the front end runs (a `b-create` at the prompt, a script's `register`, a
//! one-shot command in another terminal) join the session: the shell checks after each command
//! ([`App::sync_managed`]), and both the shell and the daemon whenever torrents.toml changes
//! ([`App::follow_config`]), one check at a time.
//!
//! With `rpc_bind` set, the RPC server ([`crate::rpc`]) serves Transmission's clients and `/metrics`
//! from start until shutdown.
//!
//! The control socket ([`crate::control`]) serves the running torrents to one-shot commands run for the
//! same torrents.toml, from start until shutdown.
//!
//! Autorun: every `*.rhai` file in `<scripts_dir>/autorun/` runs once at start, in name order. Such a
//! script usually registers handlers (`on`) and timers (`every`, `after`) and returns.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::control;
use crate::events::{Event, EventBus};
use crate::script::host::with_call_deadline;
use crate::script::{
    Ask, Automation, CloseRequest, Dispatcher, Host, HostContext, Output, ScriptError,
};
use crate::services::{Services, ServicesOptions};
use crate::types::PeerId;

/// The folder under the scripts folder whose scripts run at start.
pub const AUTORUN_DIR: &str = "autorun";

/// The services and the scripting around them.
pub struct App {
    pub config_path: PathBuf,
    pub services: Services,
    /// Runs typed commands; its cancel flag is Ctrl-C.
    pub commands: Arc<Host>,
    /// Runs autorun scripts, handlers and timers.
    pub automation: Arc<Host>,
    /// What `close()` asked for.
    pub close_request: Arc<CloseRequest>,
    /// The control socket one-shot commands reach this process on (`None` if it could not be made,
    /// or another shell or daemon already serves this torrents.toml).
    pub control: Option<control::Server>,
    /// The Transmission-compatible RPC and `/metrics`, when `rpc_bind` is set.
    pub rpc: Option<crate::rpc::RpcServer>,
    /// Subscribed before the services started, so no event is missed: the dispatcher's, and the
    /// front end's (to show or log every event).
    dispatch_rx: Option<broadcast::Receiver<Event>>,
    log_rx: Option<broadcast::Receiver<Event>>,
    dispatcher: Option<Dispatcher>,
    /// Stops [`App::follow_config`] at shutdown.
    stop_following: CancellationToken,
    /// The task that runs the programs set for torrent events ([`crate::hooks`]).
    hooks: tokio::task::JoinHandle<()>,
}

impl App {
    /// Starts the services (the tracker, the peer session resuming every managed torrent) and the
    /// script hosts; `out` receives every line scripts and handlers print, and `ask` is how typed
    /// commands ask questions (`None`: they cannot). Handlers are called once
    /// [`App::start_automation`] has run the autorun scripts: events from the start wait until then.
    pub fn start(
        config_path: &Path,
        runtime: &tokio::runtime::Runtime,
        out: Output,
        progress: bool,
        ask: Option<Ask>,
    ) -> Result<App> {
        let bus = EventBus::default();
        let dispatch_rx = Some(bus.subscribe());
        let log_rx = Some(bus.subscribe());
        let services = runtime.block_on(Services::start(
            config_path,
            ServicesOptions::default(),
            bus.clone(),
        ))?;
        let cfg = services.torrents().config()?;
        let automation = Arc::new(Automation::default());
        let close_request = Arc::new(CloseRequest::default());
        let peer_id = PeerId::generate();
        let ctx = |cancel: Arc<AtomicBool>, close: Option<Arc<CloseRequest>>, ask| HostContext {
            config_path: config_path.to_path_buf(),
            out: out.clone(),
            runtime: runtime.handle().clone(),
            cancel,
            progress,
            peer_id,
            bus: bus.clone(),
            peer: services.peer.clone(),
            live: services.live(),
            automation: automation.clone(),
            close_request: close,
            ask,
        };
        let commands = Arc::new(Host::new(ctx(
            Arc::new(AtomicBool::new(false)),
            Some(close_request.clone()),
            ask,
        ))?);
        let auto_host = Arc::new(Host::new(ctx(
            Arc::new(AtomicBool::new(false)),
            None,
            None,
        ))?);
        let control = {
            let _in_runtime = runtime.enter();
            control::Server::start(config_path, services.live(), services.torrents().clone())
                .map_err(|e| out(&format!("warning: no control socket: {e:#}")))
                .ok()
        };
        let rpc = runtime.block_on(crate::rpc::RpcServer::start(
            config_path,
            services.peer.clone(),
            services.tracker.as_ref().map(|t| t.tracker.clone()),
        ))?;
        let hooks = {
            let _in_runtime = runtime.enter();
            let id_of = rpc.as_ref().map(|r| {
                let rpc = r.rpc.clone();
                Arc::new(move |ih: &crate::types::InfoHash| Some(rpc.ids.id_for(ih)))
                    as crate::hooks::IdOf
            });
            crate::hooks::spawn(services.peer.clone(), &bus, id_of)
        };
        let (_, warnings) = crate::script::Catalog::load(Some(&cfg.scripts_dir()));
        for w in warnings {
            out(&format!("warning: {w}"));
        }
        Ok(App {
            config_path: config_path.to_path_buf(),
            services,
            commands,
            automation: auto_host,
            close_request,
            control,
            rpc,
            dispatch_rx,
            log_rx,
            dispatcher: None,
            stop_following: CancellationToken::new(),
            hooks,
        })
    }

    /// Every event since the services started, for the front end to show or log (once).
    pub fn take_event_log(&mut self) -> Option<broadcast::Receiver<Event>> {
        self.log_rx.take()
    }

    /// Runs the autorun scripts, then starts calling handlers and timers (beginning with the events
    /// that came meanwhile). Returns the autorun scripts' failures.
    pub fn start_automation(&mut self) -> Vec<ScriptError> {
        let errors = self.autorun();
        if let Some(rx) = self.dispatch_rx.take() {
            self.dispatcher = Some(Dispatcher::start_from(self.automation.clone(), rx));
        }
        errors
    }

    /// The autorun scripts, in the order they run.
    pub fn autorun_scripts(&self) -> Vec<PathBuf> {
        let Ok(cfg) = self.services.torrents().config() else {
            return Vec::new();
        };
        let dir = cfg.scripts_dir().join(AUTORUN_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "rhai") && p.is_file())
            .collect();
        paths.sort();
        paths
    }

    /// Runs every autorun script, each within the time limit of a handler call; returns the
    /// failures (each names its script and line).
    fn autorun(&self) -> Vec<ScriptError> {
        let limit = self.automation.context().automation.call_time_limit;
        self.autorun_scripts()
            .iter()
            .filter_map(|p| {
                with_call_deadline(Instant::now() + limit, || {
                    // `exit()` (code 0) ends a script early, which is no failure.
                    self.automation
                        .run_file(p, &[])
                        .err()
                        .filter(|e| !matches!(e, ScriptError::Exited { code: 0, .. }))
                })
            })
            .collect()
    }

    /// Runs every managed torrent the session does not run yet (one just made with `b-create`, or
    /// registered by a script or another btorrent), except those marked `stopped`.
    pub fn sync_managed(&self, runtime: &tokio::runtime::Runtime) {
        runtime.block_on(self.services.peer.sync_managed());
    }

    /// From now until shutdown, runs the torrents registered in torrents.toml by anyone (a one-shot
    /// command in another terminal, say) as soon as the service reports a change (its one watcher
    /// of the file runs since [`Services::start`]).
    pub fn follow_config(&self, runtime: &tokio::runtime::Runtime) {
        let peer = self.services.peer.clone();
        let mut changed = self.services.torrents().subscribe();
        let stop = self.stop_following.clone();
        runtime.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    c = changed.changed() => if c.is_err() { return },
                }
                peer.sync_managed().await;
            }
        });
    }

    /// Stops the handlers and timers, records the torrents' states, and stops the services, waiting at
    /// most about `grace` for transfers and `stopped` announces to finish.
    pub fn shutdown(mut self, runtime: &tokio::runtime::Runtime, grace: Duration) {
        // One-shot commands edit torrents.toml again from here on.
        self.control.take();
        self.hooks.abort();
        if let Some(rpc) = self.rpc.take() {
            runtime.block_on(rpc.stop(Duration::from_secs(2)));
        }
        self.stop_following.cancel();
        self.automation
            .context()
            .cancel
            .store(true, Ordering::Relaxed);
        if let Some(d) = self.dispatcher.take() {
            d.stop(grace.min(Duration::from_secs(5)));
        }
        if let Err(e) = self.services.save_states() {
            tracing::warn!("cannot save the torrents' states: {e:#}");
        }
        runtime.block_on(self.services.shutdown(grace));
    }
}
