//! The `btorrent` binary: a clap front end over the library. With no command it opens the shell; the
//! built-in modes are shell, daemon, tracker and run; every other command is a script: `btorrent create
//! a b` runs `b-create a b`.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::os::fd::AsFd as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use btorrent::script::{Host, HostContext, ScriptError};
use clap::{ArgAction, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "btorrent",
    disable_help_subcommand = true,
    version,
    about = "A scriptable BitTorrent client and tracker",
    after_help = "Every shell command also runs one-shot: btorrent create <path> [tracker-url], \
btorrent edit <torrent> <url>, btorrent info <torrent>, btorrent show, btorrent help [command], \
and any b-*.rhai in the scripts folder."
)]
struct Cli {
    /// Settings and managed torrents
    #[arg(
        long,
        short = 'c',
        global = true,
        default_value = "torrents.toml",
        env = "BTORRENT_CONFIG"
    )]
    config: PathBuf,
    /// More log output (-v info, -vv debug)
    #[arg(long, short = 'v', global = true, action = ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The interactive shell (the default): tracker and peer running, b-* commands at a prompt
    Shell,
    /// The shell's services without the shell: tracker, peer, autorun scripts, until SIGINT/SIGTERM
    Daemon,
    /// Run the HTTP tracker (announce, scrape, get_peers, status page) until Ctrl-C
    Tracker {
        /// Address to listen on (default: tracker_bind from torrents.toml)
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
    /// Share a sample file from one peer to another through the embedded tracker, all in this
    /// process on 127.0.0.1, and check the copy
    Demo {
        /// Size of the sample file (e.g. 64M, 1G)
        #[arg(long, default_value = "256M", value_parser = parse_size)]
        size: u64,
        /// Keep the files in this folder instead of a temporary one
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Run a rhai script file with arguments (it keeps running while it has handlers or timers)
    Run {
        file: PathBuf,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Any command script: create, edit, info, show, help, ... (b-NAME.rhai)
    #[command(external_subcommand)]
    Script(Vec<String>),
}

/// Log lines go to stderr; in the shell they are printed above the prompt. In the shell, and without
/// `-v` in a one-shot command or `btorrent run`, each is one short line (`warning: ...`); otherwise
/// (the daemon's log, `-v`) tracing's full format: time, level, module. Every format escapes control
/// characters in what it writes ([`btorrent::logs`]).
fn init_logging(verbose: u8, shell: bool, daemon: bool) {
    // The uTP crate warns of what no user acts on (a socket buffer the kernel caps): its errors only.
    let default = match verbose {
        0 => "warn,librqbit_utp=error",
        1 => "info,librqbit_utp=error",
        _ => "debug,librqbit_utp=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    // Lines go above the shell's prompt, or to stderr above a progress bar.
    let logs = logs.with_writer(btorrent::shell::screen::LogWriter::default());
    if shell || (verbose == 0 && !daemon) {
        logs.event_format(btorrent::logs::Brief).init();
    } else if daemon && btorrent::service_manager::goes_to_journal(std::io::stderr().as_fd()) {
        logs.with_ansi(false)
            .event_format(btorrent::logs::Journal)
            .init();
    } else {
        // Colours only for a terminal: a log file or pipe gets plain text.
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .fmt_fields(btorrent::logs::EscapedFields::default())
            .init();
    }
}

fn main() -> ExitCode {
    // Before any thread starts: it takes systemd's variables out of the environment.
    btorrent::service_manager::take_from_env();
    let cli = Cli::parse();
    // Peer sockets and data files are file descriptors: the soft limit (often 1,024) is lifted to
    // the hard one, and the session's connection budget follows what it allows.
    btorrent::engine::fd_budget::raise_open_file_limit();
    init_logging(
        cli.verbose,
        matches!(cli.command, None | Some(Command::Shell)),
        matches!(cli.command, Some(Command::Daemon)),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("btorrent: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let words = match cli.command {
        Some(Command::Tracker { bind }) => return runtime.block_on(run_tracker(cli.config, bind)),
        Some(Command::Demo { size, dir }) => {
            let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let opts = btorrent::demo::DemoOptions {
                size,
                dir,
                progress,
            };
            return match runtime.block_on(btorrent::demo::run(opts)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.is::<btorrent::demo::Interrupted>() => {
                    eprintln!("btorrent demo: {e}");
                    ExitCode::from(130)
                }
                Err(e) => {
                    eprintln!("btorrent demo: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
        None | Some(Command::Shell) => return btorrent::shell::run(&cli.config, &runtime),
        Some(Command::Daemon) => return btorrent::daemon::run(&cli.config, &runtime),
        Some(Command::Run { file, args }) => {
            return btorrent::runner::run(&cli.config, &file, &args, &runtime)
        }
        Some(Command::Script(words)) => words,
    };
    let mut ctx = HostContext::stdout(cli.config.clone(), runtime.handle().clone());
    // Torrents running in the shell or daemon that owns torrents.toml are acted on there.
    ctx.live = Arc::new(btorrent::control::OwnerOrLocal::new(
        &cli.config,
        ctx.live.clone(),
    ));
    if std::io::stdin().is_terminal() {
        ctx.ask = Some(btorrent::script::host::terminal_ask(ctx.cancel.clone()));
    }
    let host = match Host::new(ctx) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("btorrent: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) =
        btorrent::signals::cancel_then_exit(&runtime, host.context().cancel.clone(), None)
    {
        tracing::warn!("cannot handle SIGINT/SIGTERM: {e}");
    }
    let (name, rest) = words.split_first().expect("clap gives the command name");
    let result = host.run_command(name, rest);
    // Whatever the command started in the background stops cleanly: resume data saved, `stopped`
    // announced.
    runtime.block_on(host.context().peer.shutdown(Duration::from_secs(5)));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(ScriptError::Exited { code, .. }) => ExitCode::from(code),
        Err(e @ ScriptError::Cancelled { .. }) => {
            eprintln!("btorrent: {e}");
            ExitCode::from(130)
        }
        Err(e @ (ScriptError::Usage { .. } | ScriptError::UnknownCommand { .. })) => {
            eprintln!("btorrent: {}", e.one_shot_message());
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("btorrent: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run_tracker(config: PathBuf, bind: Option<SocketAddr>) -> ExitCode {
    let torrents = btorrent::torrents::Torrents::open(&config);
    let running = match btorrent::services::RunningTracker::start_on(&torrents, bind).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("btorrent: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    btorrent::terminal::print_line(&format!("tracker listening on {}", running.announce_url()));
    if let Some(n) = btorrent::service_manager::notifier() {
        let url = running.announce_url();
        n.ready(&format!("tracker on {url}"));
        n.keep_alive(&tokio::runtime::Handle::current());
        let tracker = running.tracker.clone();
        n.follow_status(&tokio::runtime::Handle::current(), move || {
            let s = tracker.stats();
            format!(
                "tracker on {url}: {} torrents, {} seeders, {} leechers",
                s.swarms, s.seeders, s.leechers
            )
        });
    }
    let (mut stop, mut reload) = match (
        btorrent::signals::StopSignals::register(),
        btorrent::signals::Reload::new(),
    ) {
        (Ok(s), Ok(r)) => (s, r),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("btorrent: cannot handle signals: {e}");
            running.stop().await;
            return ExitCode::FAILURE;
        }
    };
    loop {
        tokio::select! {
            _ = stop.recv() => break,
            _ = reload.recv() => {
                // A private tracker's allowed torrents follow it at once.
                let manager = btorrent::service_manager::notifier();
                btorrent::signals::reload_config(
                    torrents.clone(),
                    manager.as_deref(),
                    btorrent::terminal::print_line,
                )
                .await;
            }
        }
    }
    if let Some(n) = btorrent::service_manager::notifier() {
        n.stopping("stopping");
    }
    running.stop().await;
    ExitCode::SUCCESS
}

fn parse_size(s: &str) -> Result<u64, String> {
    let n = btorrent::units::parse_size(s)?;
    u64::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{s:?} is not a positive size"))
}
