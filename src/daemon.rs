//! `btorrent daemon`: the shell's services without the shell. It starts the tracker and the peer as
//! torrents.toml configures them (every managed torrent resumes), runs the autorun scripts and their
//! handlers and timers, logs every event (and what scripts print) and how port forwarding stands to
//! stdout with a timestamp (none on the journal, which keeps its own), picks up torrents registered in torrents.toml meanwhile, serves one-shot
//! commands on its control socket ([`crate::control`]), reads torrents.toml again at once on
//! SIGHUP, tells systemd how it stands ([`crate::service_manager`]), and closes gracefully on
//! SIGINT or SIGTERM, or a `session-close` over the RPC.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::app::App;
use crate::config::now_rfc3339;
use crate::shell::CLOSE_GRACE;

/// Prints `line` to stdout, each line with a timestamp unless stdout is the journal's stream
/// (which keeps its own, see [`crate::service_manager`]).
fn log(line: &str) {
    static TO_JOURNAL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let to_journal = *TO_JOURNAL.get_or_init(|| {
        use std::os::fd::AsFd as _;
        crate::service_manager::goes_to_journal(std::io::stdout().as_fd())
    });
    for l in line.lines() {
        if to_journal {
            crate::terminal::print_line(l);
        } else {
            crate::terminal::print_line(&format!("[{}] {l}", now_rfc3339()));
        }
    }
}

/// Logs how port forwarding on the router stands each time that changes (the router answers after
/// the start, a switch or a moved port changes it), until the runtime stops. Nothing while it is
/// off from the start.
fn log_forwarding(peer: crate::services::PeerSlot, runtime: &tokio::runtime::Runtime) {
    use crate::engine::ForwardState;
    runtime.spawn(async move {
        let mut last: Option<String> = None;
        loop {
            if let Some(f) = peer.current().map(|s| s.port_forwarding()) {
                let settled = f.state != ForwardState::Mapping;
                let quiet = f.state == ForwardState::Off && last.is_none();
                let line = f.summary();
                if settled && !quiet && last.as_ref() != Some(&line) {
                    log(&line);
                    last = Some(line);
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
}

pub fn run(config_path: &Path, runtime: &tokio::runtime::Runtime) -> ExitCode {
    let mut app = match App::start(config_path, runtime, Arc::new(log), false, None) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("btorrent: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(t) = &app.services.tracker {
        log(&format!("tracker: {}", t.announce_url()));
    }
    if let Some(r) = &app.rpc {
        log(&format!("rpc: {}", r.url()));
    }
    for p in app.autorun_scripts() {
        log(&format!("autorun: {}", p.display()));
    }
    if let Some(mut rx) = app.take_event_log() {
        runtime.spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match rx.recv().await {
                    Ok(ev) => log(&ev.to_string()),
                    Err(RecvError::Lagged(n)) => log(&format!("({n} events not logged)")),
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }
    for e in app.start_automation() {
        log(&format!("autorun: {e}"));
    }
    log_forwarding(app.services.peer.clone(), runtime);
    let signals = {
        let _enter = runtime.enter();
        crate::signals::StopSignals::register()
    };
    let mut stop = match signals {
        Ok(s) => Some(s),
        Err(e) => {
            log(&format!("cannot handle SIGINT/SIGTERM: {e}"));
            None
        }
    };
    let mut reload = match crate::signals::Reload::register(runtime) {
        Ok(r) => Some(r),
        Err(e) => {
            log(&format!("cannot handle SIGHUP: {e}"));
            None
        }
    };
    log("running; SIGINT or SIGTERM stops, SIGHUP reads torrents.toml again");
    // Torrents registered meanwhile (by a one-shot command, say) join the session.
    app.follow_config(runtime);
    let manager = crate::service_manager::notifier();
    if let Some(n) = &manager {
        let status =
            crate::shell::prompt::Status::new(app.services.torrents().clone(), app.services.live());
        n.ready(&status.line());
        n.keep_alive(runtime.handle());
        n.follow_status(runtime.handle(), move || status.line());
    }
    // Without the RPC, a token nobody cancels.
    let closed = app
        .rpc
        .as_ref()
        .map(|r| r.close_requested())
        .unwrap_or_default();
    runtime.block_on(async {
        loop {
            tokio::select! {
                _ = async { stop.as_mut().expect("guarded").recv().await }, if stop.is_some() => return,
                _ = closed.cancelled() => {
                    log("session-close over the RPC");
                    return;
                }
                _ = async { reload.as_mut().expect("guarded").recv().await }, if reload.is_some() => {
                    let torrents = app.services.torrents().clone();
                    crate::signals::reload_config(torrents, manager.as_deref(), log).await;
                }
            }
        }
    });
    log("stopping: transfers, handlers, announces");
    if let Some(n) = &manager {
        n.stopping("stopping: transfers, handlers, announces");
    }
    app.shutdown(runtime, CLOSE_GRACE);
    log("stopped");
    ExitCode::SUCCESS
}
