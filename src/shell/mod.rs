//! The interactive shell: `btorrent` with no arguments.
//!
//! It starts the services (embedded tracker and peer, as torrents.toml configures them), runs the
//! autorun scripts, and reads commands at a prompt that shows live totals. Every command is a `b-*`
//! script from the catalog; what it prints, and what happens in the background (events, handler
//! output), appears above the prompt without breaking the line being typed.
//!
//! Threads: the main thread runs the line editor and then, for each line, the command itself (it is
//! not a runtime worker, so primitives may block on the runtime). Ctrl-C at the prompt clears the line;
//! while a command runs the terminal is in cooked mode, Ctrl-C arrives as SIGINT, and the signal task
//! sets the command host's cancel flag, which stops the script at its next operation or wait. Ctrl-D,
//! `b-close` or the end of piped input closes the shell: it asks first if downloads are active, then
//! stops the handlers, records the torrents' states and stops the services within [`CLOSE_GRACE`].
//!
//! - [`editor`]: reedline set up with completion, hints, history and highlighting;
//! - [`complete`]: what Tab offers; [`words`]: splitting a command line;
//! - [`prompt`]: the prompt and the status it shows; [`screen`]: where output goes.

pub mod complete;
pub mod editor;
pub mod prompt;
pub mod screen;
pub mod words;

use std::io::{BufRead as _, IsTerminal as _};
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use reedline::{Reedline, Signal};

use crate::app::App;
use crate::events::Event;
use crate::script::ScriptError;
use prompt::{Question, ShellPrompt, Status};
use screen::Screen;
use tokio::sync::broadcast::Receiver;

/// How long closing waits for transfers to stop and `stopped` announces to go out.
pub const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Runs the shell until it is closed. Exit code 0 after a normal close.
pub fn run(config_path: &Path, runtime: &tokio::runtime::Runtime) -> ExitCode {
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let (screen, printer) = if interactive {
        let (s, p) = Screen::interactive();
        (s, Some(p))
    } else {
        (Screen::plain(), None)
    };
    screen::route_logs_to(screen.clone());
    let out = {
        let s = screen.clone();
        Arc::new(move |t: &str| s.print(t))
    };
    let ask: Option<crate::script::Ask> = interactive.then(|| {
        let s = screen.clone();
        Arc::new(move |q: &str| ask_yes_no(&s, q).unwrap_or(false)) as crate::script::Ask
    });
    let mut app = match App::start(config_path, runtime, out, interactive, ask) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("btorrent: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    screen.print(&banner(&app));
    if let Some(rx) = app.take_event_log() {
        print_events(runtime, rx, screen.clone());
    }
    for e in app.start_automation() {
        screen.print(&format!("autorun: {e}"));
    }
    if let Err(e) =
        crate::signals::cancel_on_interrupt(runtime, app.commands.context().cancel.clone())
    {
        screen.print(&format!("warning: Ctrl-C cannot cancel commands: {e}"));
    }
    if let Err(e) = close_on_hangup(runtime, &app, screen.clone()) {
        screen.print(&format!("warning: SIGTERM will not close cleanly: {e}"));
    }
    // Torrents registered from elsewhere join at once, not at the next command line.
    app.follow_config(runtime);
    let status = Status::new(app.services.torrents().clone(), app.services.live());
    {
        // Figures that change while nothing else happens are shown all the same.
        let (screen, weak) = (screen.clone(), Arc::downgrade(&status));
        status.keep_fresh(runtime.handle(), move || {
            if let Some(status) = weak.upgrade() {
                screen.nudge_prompt(|width| status.snapshot().render_for(width));
            }
        });
    }
    match printer {
        Some(p) => interactive_loop(&app, runtime, &screen, &status, p),
        None => piped_loop(&app, runtime, &screen),
    }
    screen.print("closing: stopping transfers and announcing to trackers...");
    app.shutdown(runtime, CLOSE_GRACE);
    screen.print("closed");
    ExitCode::SUCCESS
}

fn banner(app: &App) -> String {
    let mut lines = vec![format!(
        "btorrent {} · torrents.toml: {}",
        env!("CARGO_PKG_VERSION"),
        app.config_path.display()
    )];
    if let Some(t) = &app.services.tracker {
        lines.push(format!("tracker: {}", t.announce_url()));
    }
    if let Some(r) = &app.rpc {
        lines.push(format!("rpc: {}", r.url()));
    }
    let autorun = app.autorun_scripts();
    if !autorun.is_empty() {
        let names: Vec<String> = autorun
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        lines.push(format!("autorun: {}", names.join(", ")));
    }
    lines.push("b-help lists the commands · Tab completes · Ctrl-C cancels · Ctrl-D closes".into());
    lines.join("\n")
}

/// Prints every event (above the prompt when it is up).
fn print_events(runtime: &tokio::runtime::Runtime, mut rx: Receiver<Event>, screen: Arc<Screen>) {
    runtime.spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match rx.recv().await {
                Ok(ev) => screen.print(&format!("» {ev}")),
                Err(RecvError::Lagged(n)) => screen.print(&format!("({n} events not shown)")),
                Err(RecvError::Closed) => return,
            }
        }
    });
}

/// SIGTERM or SIGHUP (the terminal went away), or a `session-close` over the RPC: the line editor
/// cannot be interrupted, so the transfers are stopped from here (`stopped` announced, resume data
/// and states saved; the RPC's reply sent first) and the process exits.
fn close_on_hangup(
    runtime: &tokio::runtime::Runtime,
    app: &App,
    screen: Arc<Screen>,
) -> std::io::Result<()> {
    let mut hangup = crate::signals::Hangup::register(runtime)?;
    let peer = app.services.peer.clone();
    let socket = app.control.as_ref().map(|c| c.socket().clone());
    let live = app.services.live();
    let torrents = app.services.torrents().clone();
    let rpc = app.rpc.as_ref().map(|r| (r.close_requested(), r.stopper()));
    runtime.spawn(async move {
        // Without the RPC, a token nobody cancels.
        let closed = rpc.as_ref().map(|r| r.0.clone()).unwrap_or_default();
        let why = tokio::select! {
            _ = hangup.recv() => "signal received",
            _ = closed.cancelled() => "session-close over the RPC",
        };
        screen.leave_prompt();
        screen.print(&format!("closing: {why}"));
        if let Some((_, stopper)) = &rpc {
            stopper.stop(Duration::from_secs(2)).await;
        }
        let states = tokio::task::spawn_blocking(move || {
            crate::services::save_states(&torrents, live.as_ref())
        });
        let _ = states.await;
        peer.shutdown(CLOSE_GRACE).await;
        if let Some(s) = socket {
            s.remove();
        }
        let _ = crossterm::terminal::disable_raw_mode();
        std::process::exit(0);
    });
    Ok(())
}

/// What to do after a line.
enum Next {
    Prompt,
    Close { force: bool },
}

/// Runs one command line; then any torrent it registered joins the session.
fn run_line(app: &App, runtime: &tokio::runtime::Runtime, screen: &Screen, line: &str) -> Next {
    let words = match words::split(line) {
        Ok(w) => w,
        Err(e) => {
            screen.print(&format!("error: {e}"));
            return Next::Prompt;
        }
    };
    let Some((name, rest)) = words.split_first() else {
        return Next::Prompt;
    };
    app.close_request.requested.store(false, Ordering::Relaxed);
    match app.commands.run_command(name, rest) {
        Ok(_) | Err(ScriptError::Exited { code: 0, .. }) => {}
        Err(e) => screen.print(&format!("error: {e}")),
    }
    app.sync_managed(runtime);
    if app.close_request.requested.swap(false, Ordering::Relaxed) {
        let force = app.close_request.force.swap(false, Ordering::Relaxed);
        return Next::Close { force };
    }
    Next::Prompt
}

/// Names of the torrents still downloading.
fn active_downloads(app: &App) -> Vec<String> {
    app.services
        .live()
        .all()
        .into_iter()
        .filter(|(_, s)| s.is_downloading())
        .map(|(_, s)| s.name)
        .collect()
}

fn interactive_loop(
    app: &App,
    runtime: &tokio::runtime::Runtime,
    screen: &Screen,
    status: &Arc<Status>,
    printer: reedline::ExternalPrinter<String>,
) {
    let (mut editor, warning) = editor::build(app.services.torrents(), printer, screen.drawn());
    if let Some(w) = warning {
        screen.print(&format!("warning: {w}"));
    }
    let prompt = ShellPrompt {
        status: status.clone(),
        drawn: screen.drawn(),
    };
    loop {
        status.refresh();
        screen.enter_prompt();
        let signal = editor.read_line(&prompt);
        screen.leave_prompt();
        let next = match signal {
            Ok(Signal::Success(line)) => run_line(app, runtime, screen, &line),
            Ok(Signal::CtrlC) => Next::Prompt,
            Ok(Signal::CtrlD) => Next::Close { force: false },
            Err(e) => {
                screen.print(&format!("error: the terminal failed ({e}); closing"));
                Next::Close { force: true }
            }
        };
        if let Next::Close { force } = next {
            if force || confirm_close(app, screen) {
                break;
            }
        }
    }
    if let Err(e) = editor.sync_history() {
        screen.print(&format!("warning: cannot save the history: {e}"));
    }
}

/// Asks before closing while downloads are active; true to close.
fn confirm_close(app: &App, screen: &Screen) -> bool {
    let active = active_downloads(app);
    if active.is_empty() {
        return true;
    }
    screen.print(&format!(
        "{} still downloading: {}",
        active.len(),
        active.join(", ")
    ));
    ask_yes_no(
        screen,
        "Close anyway? Transfers stop and resume at the next start [y/N]",
    )
    .unwrap_or(true)
}

/// Asks a yes/no question at the terminal (also what `confirm()` does in commands typed here); Ctrl-C
/// or Ctrl-D answer no; `None` when the terminal failed.
fn ask_yes_no(screen: &Screen, question: &str) -> Option<bool> {
    // A separate editor, so the answer does not land in the history.
    let mut ask = Reedline::create();
    let q = Question(question.into());
    loop {
        match ask.read_line(&q) {
            Ok(Signal::Success(a)) => match a.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" => return Some(true),
                "" | "n" | "no" => return Some(false),
                _ => screen.print("answer y or n"),
            },
            Ok(_) => return Some(false),
            Err(_) => return None,
        }
    }
}

/// Input is not a terminal: run each line as it comes; the end of input closes the shell. A line that
/// is not UTF-8 text is reported and skipped (the lines after it still run).
fn piped_loop(app: &App, runtime: &tokio::runtime::Runtime, screen: &Screen) {
    for (n, line) in std::io::stdin().lock().split(b'\n').enumerate() {
        let Ok(mut bytes) = line else { break };
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let Ok(line) = String::from_utf8(bytes) else {
            screen.print(&format!(
                "error: line {} is not text (UTF-8); skipped",
                n + 1
            ));
            continue;
        };
        if let Next::Close { .. } = run_line(app, runtime, screen, &line) {
            break;
        }
    }
}
