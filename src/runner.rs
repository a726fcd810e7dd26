//! `btorrent run <file.rhai>`: runs a script, then keeps calling the handlers and timers it registered
//! until none is left (a timer that fired for the last time, handlers removed with `off`), one of them
//! calls `exit([code])` (the run ends with that code), or Ctrl-C.
//!
//! While a shell or daemon runs for the same torrents.toml, the script sees and acts on its torrents
//! there, and hands the torrents it starts to it, as a one-shot command does ([`crate::control`]);
//! their events are then heard in that process, not here.
//!
//! Ctrl-C (or SIGTERM) while the script's body runs cancels it (exit code 130); Ctrl-C while only
//! handlers and timers are left ends the run normally (exit code 0). Either way the peer session, if the script
//! started one, then stops cleanly; a second Ctrl-C exits at once.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::script::{Dispatcher, Host, HostContext, ScriptError};

pub fn run(
    config_path: &Path,
    file: &Path,
    args: &[String],
    runtime: &tokio::runtime::Runtime,
) -> ExitCode {
    let mut ctx = HostContext::stdout(PathBuf::from(config_path), runtime.handle().clone());
    // One process runs a torrent, never two: while a shell or daemon runs for torrents.toml, the
    // torrents it runs are acted on there, and `start()`/`seed()` hand theirs to it, as in a
    // one-shot command (its own registrations would otherwise be started by that owner too).
    ctx.live = Arc::new(crate::control::OwnerOrLocal::new(
        config_path,
        ctx.live.clone(),
    ));
    let host = match Host::new(ctx) {
        Ok(h) => Arc::new(h),
        Err(e) => {
            eprintln!("btorrent: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let cancel = host.context().cancel.clone();
    let interrupted = Arc::new(AtomicBool::new(false));
    // Registered before the script runs, so no signal finds the default action (an abrupt exit).
    if let Err(e) =
        crate::signals::cancel_then_exit(runtime, cancel.clone(), Some(interrupted.clone()))
    {
        tracing::warn!("cannot handle SIGINT/SIGTERM: {e}");
    }
    let dispatcher = Dispatcher::start(host.clone());
    let result = host.run_file(file, args);
    let mut code = match &result {
        Ok(_) => ExitCode::SUCCESS,
        Err(ScriptError::Exited { code, .. }) => ExitCode::from(*code),
        Err(e @ ScriptError::Usage { .. }) => {
            eprintln!("btorrent: {e}");
            ExitCode::from(2)
        }
        Err(e @ ScriptError::Cancelled { .. }) => {
            eprintln!("btorrent: {e}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("btorrent: {e}");
            ExitCode::FAILURE
        }
    };
    let auto = host.context().automation.clone();
    if result.is_ok() && !auto.is_idle() {
        let (handlers, timers) = auto.counts();
        eprintln!(
            "btorrent: {} keeps running ({handlers} handlers, {timers} timers); Ctrl-C stops it",
            file.display()
        );
        runtime.block_on(async {
            while !auto.is_idle()
                && !interrupted.load(Ordering::Relaxed)
                && auto.exit_requested().is_none()
            {
                tokio::select! {
                    _ = auto.idle_changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                }
            }
        });
        if let Some(c) = auto.exit_requested() {
            code = ExitCode::from(c);
        }
    }
    cancel.store(true, Ordering::Relaxed);
    dispatcher.stop(Duration::from_secs(5));
    // Whatever the script started stops cleanly: resume data saved, `stopped` announced.
    runtime.block_on(host.context().peer.shutdown(Duration::from_secs(5)));
    code
}
