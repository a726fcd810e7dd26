//! `btorrent daemon`: the shell's services without the shell. It starts the tracker and the peer as
//! torrents.toml configures them, runs the autorun scripts and their handlers and timers, logs every
//! event (and what scripts print) to stdout with a timestamp, and closes gracefully on SIGINT or
//! SIGTERM.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::app::{shutdown_signal, App};
use crate::config::now_rfc3339;
use crate::shell::CLOSE_GRACE;

fn log(line: &str) {
    for l in line.lines() {
        println!("[{}] {l}", now_rfc3339());
    }
}

pub fn run(config_path: &Path, runtime: &tokio::runtime::Runtime) -> ExitCode {
    let app = match App::start(config_path, runtime, Arc::new(log), false) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("btorrent: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(t) = &app.services.tracker {
        log(&format!("tracker: {}", t.announce_url()));
    }
    for p in app.autorun_scripts() {
        log(&format!("autorun: {}", p.display()));
    }
    for e in app.autorun() {
        log(&format!("autorun: {e}"));
    }
    let mut rx = app.services.bus.subscribe();
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
    log("running; SIGINT or SIGTERM stops");
    runtime.block_on(shutdown_signal());
    log("stopping: transfers, handlers, announces");
    app.shutdown(runtime, CLOSE_GRACE);
    log("stopped");
    ExitCode::SUCCESS
}
