use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "btorrent",
    version,
    about = "A scriptable BitTorrent client and tracker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP tracker until interrupted.
    Tracker {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:6969")]
        bind: SocketAddr,
        /// Re-announce interval told to clients, in seconds.
        #[arg(long, default_value_t = 600)]
        interval: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Tracker { bind, interval } => runtime.block_on(async move {
            let cfg = btorrent::tracker::TrackerConfig {
                interval: Duration::from_secs(interval),
                ..Default::default()
            };
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
            eprintln!(
                "tracker listening on http://{}/announce",
                listener.local_addr()?
            );
            let tracker = btorrent::tracker::Tracker::new(cfg);
            tracker.serve(listener, shutdown_signal()).await?;
            Ok(())
        }),
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
