//! The rhai engine with btorrent's primitives, and running commands and script files on it.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, Map, Position, Scope, AST};

use super::automation::{Automation, CurrentScript};
use super::catalog::{Catalog, Script, ScriptOrigin};
use super::command::CommandSpec;
use super::limits;
use super::live::LiveTorrents;
use super::prims;
use crate::config::Config;
use crate::engine::Session;
use crate::events::EventBus;
use crate::services::PeerSlot;
use crate::torrents::Torrents;
use crate::types::PeerId;

/// Where script output goes: stdout for a one-shot command, above the prompt in the shell.
pub type Output = Arc<dyn Fn(&str) + Send + Sync>;

/// Asks the person at the terminal a yes/no question; true for yes (Ctrl-C is no).
pub type Ask = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What primitives share: the config file, the output, the runtime to block on, cancellation.
pub struct HostContext {
    pub config_path: PathBuf,
    pub out: Output,
    pub runtime: tokio::runtime::Handle,
    /// Set to stop the running script (Ctrl-C); cleared when a new run starts.
    pub cancel: Arc<AtomicBool>,
    /// Whether primitives may draw progress bars (a terminal is attached).
    pub progress: bool,
    /// The peer id this process announces with.
    pub peer_id: PeerId,
    /// What happened (engine, watch folder); the dispatcher hands it to the `on(...)` handlers.
    pub bus: EventBus,
    /// The peer session: the shell's, or started on first use by a one-shot command.
    pub peer: PeerSlot,
    /// The running torrents as torrent handles and the shell's prompt see them: the peer session
    /// (or a stand-in, in tests).
    pub live: Arc<dyn LiveTorrents>,
    /// The event handlers and timers scripts register (called by a dispatcher, if one runs).
    pub automation: Arc<Automation>,
    /// Set by `close()` in the shell, which then closes after the command; `None` outside a shell.
    pub close_request: Option<Arc<CloseRequest>>,
    /// How `confirm()` asks; `None` where nobody can answer (a daemon, a handler, input that is not a
    /// terminal).
    pub ask: Option<Ask>,
}

/// What `close([force])` asks of the shell it runs in.
#[derive(Debug, Default)]
pub struct CloseRequest {
    pub requested: AtomicBool,
    /// Close without asking even if downloads are active.
    pub force: AtomicBool,
}

impl HostContext {
    /// A context printing to stdout, for one-shot commands and tests, with its own bus, its own
    /// service for `config_path` (following the file while the command runs) and a peer session
    /// started on first use.
    pub fn stdout(config_path: PathBuf, runtime: tokio::runtime::Handle) -> HostContext {
        let bus = EventBus::default();
        let peer = PeerSlot::new(&config_path, bus.clone());
        {
            let _in_runtime = runtime.enter();
            peer.torrents().follow();
        }
        HostContext {
            config_path,
            out: Arc::new(crate::terminal::print_line),
            runtime,
            cancel: Arc::new(AtomicBool::new(false)),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            peer_id: PeerId::generate(),
            bus,
            live: Arc::new(peer.clone()),
            peer,
            automation: Arc::new(Automation::default()),
            close_request: None,
            ask: None,
        }
    }

    /// Whether the command runs in the interactive shell, whose peer session outlives it.
    pub fn in_shell(&self) -> bool {
        self.close_request.is_some()
    }

    /// The peer session, started now if none runs.
    pub fn session(&self) -> Result<Session, Box<EvalAltResult>> {
        self.block_on(self.peer.get_or_start())?
            .map_err(|e| format!("cannot start the peer: {e:#}").into())
    }

    /// Runs `fut` on the runtime from the script's thread, giving up when the script is cancelled
    /// or (in a handler or timer) runs out of time.
    pub fn block_on<F: std::future::Future>(
        &self,
        fut: F,
    ) -> Result<F::Output, Box<EvalAltResult>> {
        let cancel = self.cancel.clone();
        let deadline = call_deadline();
        self.runtime.block_on(async move {
            let out_of_time = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            let cancelled = async {
                while !cancel.load(Ordering::Relaxed) {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            };
            tokio::select! {
                v = fut => Ok(v),
                _ = cancelled => Err(cancelled_error()),
                _ = out_of_time => Err(terminated(TIMEOUT_TOKEN)),
            }
        })
    }

    /// The managed torrents of this process (the service the peer session belongs to).
    pub fn torrents(&self) -> &Torrents {
        self.peer.torrents()
    }

    /// The config file as it is now on disk: the service's copy, re-read first only if the file
    /// changed (another process wrote it a moment ago, say).
    pub fn config(&self) -> Result<Arc<Config>, Box<EvalAltResult>> {
        self.torrents().fresh().map_err(|e| format!("{e:#}").into())
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    pub fn print(&self, s: &str) {
        (self.out)(s)
    }

    /// An error when the handler or timer call running on this thread has used up its time; a
    /// primitive that waits in a loop checks it like Ctrl-C.
    pub fn check_time_limit(&self) -> Result<(), Box<EvalAltResult>> {
        if call_deadline().is_some_and(|dl| Instant::now() >= dl) {
            return Err(terminated(TIMEOUT_TOKEN));
        }
        Ok(())
    }

    /// Sleeps `d` in short steps; stops early with the script's cancellation (Ctrl-C) or time limit.
    pub fn sleep(&self, d: Duration) -> Result<(), Box<EvalAltResult>> {
        let end = Instant::now() + d;
        loop {
            if self.cancelled() {
                return Err(cancelled_error());
            }
            self.check_time_limit()?;
            let now = Instant::now();
            if now >= end {
                return Ok(());
            }
            std::thread::sleep((end - now).min(Duration::from_millis(20)));
        }
    }
}

/// Asks on the terminal of a one-shot command: the question on stderr, the answer from stdin. The
/// answer is read on a thread of its own so that Ctrl-C (`cancel`) ends the wait as a no.
pub fn terminal_ask(cancel: Arc<AtomicBool>) -> Ask {
    Arc::new(move |question: &str| {
        eprint!("{question} ");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = tx.send(std::io::stdin().read_line(&mut line).map(|_| line));
        });
        loop {
            if cancel.load(Ordering::Relaxed) {
                eprintln!();
                return false;
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(a)) => return is_yes(&a),
                Ok(Err(_)) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return false,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    })
}

/// `y` or `yes`, in any case.
fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

thread_local! {
    /// When the callback running on this thread must stop (see [`with_call_deadline`]).
    static CALL_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `f` with a deadline for script code on this thread: past it, the script stops with a
/// "ran too long" error (checked every few thousand operations and by `sleep`).
pub(crate) fn with_call_deadline<T>(deadline: Instant, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALL_DEADLINE.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CALL_DEADLINE.with(|c| c.replace(Some(deadline))));
    f()
}

pub(crate) fn call_deadline() -> Option<Instant> {
    CALL_DEADLINE.with(Cell::get)
}

fn terminated(token: &str) -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(token.into(), Position::NONE).into()
}

/// Why a command or script did not complete. Each displays as one line (a usage error adds the usage
/// line), of bounded length whatever the input or the script's message held.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("{}", unknown_command(.name, .nearest.as_deref(), "b-"))]
    UnknownCommand {
        name: String,
        /// The nearest command's name (`b-info`), if one is close.
        nearest: Option<String>,
    },
    #[error("{command}: {}\nusage: {usage}", clip(.message, 300))]
    Usage {
        command: String,
        message: String,
        usage: String,
    },
    #[error("{script}: {}", clip(.message, 500))]
    Failed { script: String, message: String },
    #[error("{script}: cancelled")]
    Cancelled { script: String },
    /// The script called `exit(code)`: not a failure when `code` is 0.
    #[error("{script}: exit code {code}")]
    Exited { script: String, code: u8 },
}

impl ScriptError {
    /// The message as a one-shot command line shows it: commands are named as typed there (`info`,
    /// `btorrent help`), not as in the shell (`b-info`, `b-help`).
    pub fn one_shot_message(&self) -> String {
        match self {
            ScriptError::UnknownCommand { name, nearest } => {
                unknown_command(name, nearest.as_deref(), "btorrent ")
            }
            other => other.to_string(),
        }
    }
}

/// `unknown command "x", did you mean b-info? (b-help lists every command)`, with commands named
/// `b-info` (`prefix` "b-") or `info` (any other `prefix`, which then comes before `help`).
fn unknown_command(name: &str, nearest: Option<&str>, prefix: &str) -> String {
    let shown = |n: &str| match prefix {
        "b-" => n.to_string(),
        _ => n.trim_start_matches("b-").to_string(),
    };
    let hint = match nearest {
        Some(n) => format!(", did you mean {}?", shown(n)),
        None => String::new(),
    };
    format!(
        "unknown command {:?}{hint} ({prefix}help lists every command)",
        clip(name, 60)
    )
}

/// `s` on one line (control characters become spaces), cut after `max` characters.
fn clip(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

/// The scripting host. One per process front end; cheap to share behind an `Arc`.
pub struct Host {
    ctx: Arc<HostContext>,
    engine: Engine,
    max_operations: u64,
}

/// The token `on_progress` returns when the cancel flag is set.
const CANCEL_TOKEN: &str = "btorrent:cancelled";
/// The token for a callback that ran past its time limit.
const TIMEOUT_TOKEN: &str = "btorrent:time-limit";
/// The start of the token `exit(code)` stops a script with; the code follows.
const EXIT_TOKEN: &str = "btorrent:exit:";

/// The error `exit(code)` stops the script with: like Ctrl-C, no `catch` holds it.
pub(crate) fn exit_error(code: u8) -> Box<EvalAltResult> {
    terminated(&format!("{EXIT_TOKEN}{code}"))
}

/// The error a primitive returns when it stops waiting because the script was cancelled.
pub fn cancelled_error() -> Box<EvalAltResult> {
    EvalAltResult::ErrorTerminated(Dynamic::from(CANCEL_TOKEN), Position::NONE).into()
}

impl Host {
    /// Builds the engine with every primitive and the limits from the settings.
    pub fn new(ctx: HostContext) -> anyhow::Result<Host> {
        let cfg = ctx.torrents().config()?;
        let ctx = Arc::new(ctx);
        let max_operations = cfg.settings.script_max_operations;
        let mut engine = Engine::new();
        engine.set_max_operations(max_operations);
        engine.set_max_call_levels(64);
        engine.set_max_expr_depths(128, 64);
        engine.set_max_string_size(limits::MAX_STRING);
        engine.set_max_array_size(limits::MAX_ARRAY);
        engine.set_max_map_size(limits::MAX_MAP);
        engine.set_max_variables(10_000);
        engine.set_max_functions(10_000);
        engine.set_max_modules(0);
        // Marked volatile by rhai (not deprecated): it is the one hook that sees values as they are read.
        #[allow(deprecated)]
        engine.on_var(|name, _, ctx| limits::check_read(name, &ctx));
        limits::register(&mut engine);
        let cancel = ctx.cancel.clone();
        engine.on_progress(move |ops| {
            if cancel.load(Ordering::Relaxed) {
                return Some(Dynamic::from(CANCEL_TOKEN));
            }
            if ops % 4096 == 0 && call_deadline().is_some_and(|d| Instant::now() >= d) {
                return Some(Dynamic::from(TIMEOUT_TOKEN));
            }
            None
        });
        let out = ctx.out.clone();
        engine.on_print(move |s| out(s));
        let out = ctx.out.clone();
        engine.on_debug(move |s, src, pos| {
            out(&format!(
                "[debug {}{}] {s}",
                src.unwrap_or("script"),
                at(pos)
            ))
        });
        prims::register_all(&mut engine, &ctx);
        Ok(Host {
            ctx,
            engine,
            max_operations,
        })
    }

    pub fn context(&self) -> &Arc<HostContext> {
        &self.ctx
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The commands as they are now (user scripts are re-read, so a dropped-in script shows at once).
    pub fn catalog(&self) -> (Catalog, Vec<String>) {
        let dir = self.ctx.config().ok().map(|c| c.scripts_dir());
        Catalog::load(dir.as_deref())
    }

    /// Runs command `name` (`b-create` or `create`) with the words that followed it.
    pub fn run_command(&self, name: &str, argv: &[String]) -> Result<Dynamic, ScriptError> {
        let (catalog, _) = self.catalog();
        let Some(script) = catalog.get(name).cloned() else {
            return Err(ScriptError::UnknownCommand {
                name: name.to_string(),
                nearest: catalog.nearest(name),
            });
        };
        if argv.iter().any(|a| a == "--help" || a == "-h") {
            self.ctx.print(&script.spec.help);
            return Ok(Dynamic::UNIT);
        }
        let args = script
            .spec
            .parse_args(argv)
            .map_err(|message| ScriptError::Usage {
                command: script.name.clone(),
                message,
                usage: script.spec.usage.clone(),
            })?;
        self.run_script(&script, args.into())
    }

    /// Runs a script file: `args` is parsed by its declaration if it has a `usage:` line, else it is
    /// the array of words given.
    pub fn run_file(&self, path: &Path, argv: &[String]) -> Result<Dynamic, ScriptError> {
        let script_name = path.display().to_string();
        let source = super::catalog::read_script(path).map_err(|e| ScriptError::Failed {
            script: script_name.clone(),
            message: format!("cannot read: {e}"),
        })?;
        let name = path
            .file_stem()
            .map_or("script".into(), |s| s.to_string_lossy().into_owned());
        let spec = CommandSpec::parse(&name, &source).map_err(|message| ScriptError::Failed {
            script: script_name.clone(),
            message,
        })?;
        let declared = source
            .lines()
            .take_while(|l| l.trim_start().starts_with("//!"))
            .any(|l| l.contains("usage:"));
        let args: Dynamic = if declared {
            spec.parse_args(argv)
                .map_err(|message| ScriptError::Usage {
                    command: name.clone(),
                    message,
                    usage: spec.usage.clone(),
                })?
                .into()
        } else {
            argv.iter()
                .cloned()
                .map(Dynamic::from)
                .collect::<Vec<_>>()
                .into()
        };
        let script = Script {
            name,
            source,
            origin: ScriptOrigin::File(path.to_path_buf()),
            spec,
        };
        self.run_script(&script, args)
    }

    /// Compiles a script, naming it in errors.
    pub fn compile(&self, script: &Script) -> Result<AST, ScriptError> {
        let mut ast = self
            .engine
            .compile(&script.source)
            .map_err(|e| ScriptError::Failed {
                script: script.describe(),
                message: format!("syntax error{}: {}", at(e.position()), e.err_type()),
            })?;
        ast.set_source(script.describe());
        Ok(ast)
    }

    fn run_script(&self, script: &Script, args: Dynamic) -> Result<Dynamic, ScriptError> {
        let ast = Arc::new(self.compile(script)?);
        self.ctx.cancel.store(false, Ordering::Relaxed);
        // The scope, the result and any error are dropped or described on the script's thread, whose
        // stack has room for the deepest value a script can build.
        limits::on_script_stack(|| {
            let mut scope = Scope::new();
            scope.push("args", args);
            let current = CurrentScript {
                ast: ast.clone(),
                script: script.describe(),
                callback: None,
            };
            CurrentScript::enter(current, || {
                self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
            })
            .map(limits::shallow)
            .map_err(|e| {
                let bundled = script.origin == ScriptOrigin::Bundled;
                self.describe_error(&script.describe(), &e, !bundled)
            })
        })
    }

    /// Calls a registered handler or timer with `args`, within the per-call time limit, naming its
    /// script in errors. The script's cancel flag stops it too.
    pub fn call_back(
        &self,
        cb: &super::automation::Callback,
        args: impl rhai::FuncArgs + Send,
    ) -> Result<Dynamic, ScriptError> {
        let deadline = Instant::now() + self.ctx.automation.call_time_limit;
        let current = CurrentScript {
            ast: cb.ast.clone(),
            script: cb.script.clone(),
            callback: Some(cb.id),
        };
        with_call_deadline(deadline, || {
            limits::on_script_stack(|| {
                CurrentScript::enter(current, || {
                    cb.func.call::<Dynamic>(&self.engine, &cb.ast, args)
                })
                .map(limits::shallow)
                .map_err(|e| self.describe_error(&cb.script, &e, true))
            })
        })
    }

    /// Turns a rhai error into one line naming the script, the line and the cause. Errors a bundled
    /// command throws on purpose (bad input) leave out the line: it is the user's input, not the script,
    /// that needs fixing (`locate_thrown = false`).
    pub fn describe_error(
        &self,
        script: &str,
        err: &EvalAltResult,
        locate_thrown: bool,
    ) -> ScriptError {
        let mut inner = err;
        let mut pos = err.position();
        while let EvalAltResult::ErrorInFunctionCall(_, _, e, p) = inner {
            if !p.is_none() && pos.is_none() {
                pos = *p;
            }
            inner = e;
            if !inner.position().is_none() {
                pos = inner.position();
            }
        }
        let token = match inner {
            EvalAltResult::ErrorTerminated(token, _) => token.clone().into_string().ok(),
            _ => None,
        };
        if let Some(code) = token.as_deref().and_then(|t| t.strip_prefix(EXIT_TOKEN)) {
            return ScriptError::Exited {
                script: script.trim_end_matches(".rhai (bundled)").to_string(),
                code: code.parse().unwrap_or(1),
            };
        }
        let message = match inner {
            EvalAltResult::ErrorTerminated(..) if token.as_deref() == Some(CANCEL_TOKEN) => {
                return ScriptError::Cancelled {
                    script: script.trim_end_matches(".rhai (bundled)").to_string(),
                }
            }
            EvalAltResult::ErrorTerminated(..) if token.as_deref() == Some(TIMEOUT_TOKEN) => {
                format!(
                    "stopped after {} (a handler or timer call may run that long)",
                    humantime::format_duration(self.ctx.automation.call_time_limit)
                )
            }
            EvalAltResult::ErrorTooManyOperations(_) => format!(
                "stopped after {} operations (script_max_operations), is it in an endless loop?",
                self.max_operations
            ),
            EvalAltResult::ErrorDataTooLarge(what, _) => limits::too_large(what),
            EvalAltResult::ErrorStackOverflow(_) => format!(
                "functions called one another more than {} levels deep (endless recursion?)",
                self.engine.max_call_levels()
            ),
            EvalAltResult::ErrorRuntime(v, _) if !locate_thrown && !limits::is_shape_error(v) => {
                let script = script.trim_end_matches(".rhai (bundled)").to_string();
                // A command that names itself in what it throws is named once.
                let message = v.to_string();
                let message = message
                    .strip_prefix(&format!("{script}: "))
                    .map_or(message.clone(), str::to_string);
                return ScriptError::Failed { script, message };
            }
            EvalAltResult::ErrorRuntime(v, _) => v.to_string(),
            other => {
                let mut s = other.to_string();
                if let Some(i) = s.rfind(" (line ") {
                    s.truncate(i);
                }
                s
            }
        };
        ScriptError::Failed {
            script: script.to_string(),
            message: format!("{}{message}", line_of(pos)),
        }
    }
}

fn at(pos: Position) -> String {
    match pos.line() {
        Some(l) => format!(" at line {l}"),
        None => String::new(),
    }
}

fn line_of(pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("line {l}:{c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

/// Converts a map of options from a script into typed reads, rejecting keys nobody asked for.
pub(crate) struct Opts<'a> {
    pub func: &'static str,
    pub map: &'a Map,
}

impl Opts<'_> {
    pub fn check(&self, known: &[&str]) -> Result<(), Box<EvalAltResult>> {
        for k in self.map.keys() {
            if !known.contains(&k.as_str()) {
                return Err(format!(
                    "{}: unknown option `{k}` (known: {})",
                    self.func,
                    known.join(", ")
                )
                .into());
            }
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&Dynamic> {
        self.map.get(key).filter(|v| !v.is_unit())
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, Box<EvalAltResult>> {
        self.get(key)
            .map(|v| {
                v.clone()
                    .into_string()
                    .map_err(|t| format!("{}: `{key}` must be a string, not {t}", self.func).into())
            })
            .transpose()
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, Box<EvalAltResult>> {
        self.get(key)
            .map(|v| {
                v.as_int()
                    .map_err(|t| format!("{}: `{key}` must be a number, not {t}", self.func).into())
            })
            .transpose()
    }

    /// One string or an array of them (`what` names one in the error); absent: none.
    pub fn strings(&self, key: &str, what: &str) -> Result<Vec<String>, Box<EvalAltResult>> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(v) if v.is_string() => Ok(vec![v.to_string()]),
            Some(v) => Ok(v
                .clone()
                .into_array()
                .map_err(|_| format!("{}: `{key}` must be {what} or an array of them", self.func))?
                .into_iter()
                .map(|s| s.to_string())
                .collect()),
        }
    }

    pub fn bool(&self, key: &str) -> Result<bool, Box<EvalAltResult>> {
        self.get(key)
            .map(|v| {
                v.as_bool().map_err(|t| {
                    format!("{}: `{key}` must be true or false, not {t}", self.func).into()
                })
            })
            .transpose()
            .map(|b| b.unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let e = ScriptError::UnknownCommand {
            name: "strat".into(),
            nearest: Some("b-start".into()),
        };
        assert_eq!(
            e.to_string(),
            "unknown command \"strat\", did you mean b-start? (b-help lists every command)"
        );
        assert_eq!(
            e.one_shot_message(),
            "unknown command \"strat\", did you mean start? (btorrent help lists every command)"
        );
    }
}
