//! A bare engine process for benchmarks and process-level tests, until the CLI calls the engine:
//!
//! ```text
//! peer seed <file.torrent> <data_dir> [--listen IP:PORT]
//! peer get  <file.torrent> <data_dir> [--listen IP:PORT] [--peer IP:PORT]... [--resume DIR] [--seed]
//! ```
//! Prints `listening <addr>` once the listener is bound; `get` exits 0 when every piece is verified
//! on disk (or keeps seeding with `--seed`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use btorrent::engine::{AddOptions, Session, SessionConfig};
use btorrent::Metainfo;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: peer seed|get <file.torrent> <data_dir> [--listen A] [--peer A].. [--resume D] [--seed]";
    if args.len() < 3 {
        anyhow::bail!(usage);
    }
    let (mode, torrent, dir) = (&args[0], PathBuf::from(&args[1]), PathBuf::from(&args[2]));
    let mut cfg = SessionConfig::default();
    let mut peers: Vec<SocketAddr> = Vec::new();
    let mut keep_seeding = mode == "seed";
    let mut it = args[3..].iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))
        };
        match a.as_str() {
            "--listen" => cfg.listen = val()?.parse()?,
            "--peer" => peers.push(val()?.parse()?),
            "--resume" => cfg.resume_dir = Some(PathBuf::from(val()?)),
            "--seed" => keep_seeding = true,
            _ => anyhow::bail!(usage),
        }
    }
    let meta = Metainfo::load(&torrent)?;
    let session = Session::start(cfg).await?;
    println!("listening {}", session.listen_addr());
    let t0 = Instant::now();
    let h = session
        .add(
            meta,
            AddOptions {
                data_dir: dir,
                peers,
                trackers: Some(vec![]),
                ..Default::default()
            },
        )
        .await?;
    h.wait_complete().await?;
    let st = h.stats();
    println!(
        "complete in {:.2} s: downloaded {} bytes",
        t0.elapsed().as_secs_f64(),
        st.downloaded
    );
    if keep_seeding {
        tokio::signal::ctrl_c().await?;
    }
    session.shutdown(Duration::from_secs(2)).await;
    Ok(())
}
