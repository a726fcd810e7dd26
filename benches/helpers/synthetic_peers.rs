//! Helper for `benches/peers.sh`: many synthetic peers of one torrent in one process (the swarm of
//! `tests/support/swarm.rs`): each on a loopback address of its own (127.0.1.1, 127.0.1.2, ...),
//! holding a random share of the pieces that grows over time (sent as `have`s), some joining late
//! by dialing the client under test and some leaving.
//!
//!     synthetic_peers --torrent FILE --data FILE [--peers K] [--joiners J] [--leavers L] [--port P]
//!                     [--target IP:PORT] [--gain-ms MS] [--churn-ms MS] [--seed S] [--addrs FILE]
//!
//! It writes the listening addresses of the peers there from the start to `--addrs` (one a line), then
//! prints `READY`, then a line of counts (`connected=.. max_connected=.. blocks=.. ...`) every second
//! until SIGINT or SIGTERM, and a last one as it ends.

#[allow(dead_code)]
#[path = "../../tests/support/swarm.rs"]
mod swarm;

use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use btorrent::Metainfo;

fn main() -> Result<()> {
    let mut cfg = swarm::SwarmConfig {
        peers: 200,
        joiners: 20,
        leavers: 20,
        ..Default::default()
    };
    let (mut torrent, mut data, mut addrs) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let num = || -> Result<u64> {
            value
                .parse()
                .with_context(|| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--torrent" => torrent = Some(value),
            "--data" => data = Some(value),
            "--addrs" => addrs = Some(value),
            "--peers" => cfg.peers = num()? as usize,
            "--joiners" => cfg.joiners = num()? as usize,
            "--leavers" => cfg.leavers = num()? as usize,
            "--port" => cfg.port = num()? as u16,
            "--gain-ms" => cfg.gain_every = Duration::from_millis(num()?.max(1)),
            "--churn-ms" => cfg.churn_every = Duration::from_millis(num()?.max(1)),
            "--seed" => cfg.seed = num()?,
            "--target" => {
                cfg.target = Some(
                    value
                        .parse()
                        .with_context(|| format!("--target: {value:?} is not IP:PORT"))?,
                )
            }
            _ => bail!("unknown option {flag}"),
        }
    }
    let torrent = torrent.context("--torrent FILE is needed")?;
    let data = data.context("--data FILE is needed")?;
    let meta = Metainfo::load(torrent.as_ref()).with_context(|| format!("reading {torrent}"))?;
    let bytes = std::fs::read(&data).with_context(|| format!("reading {data}"))?;
    if bytes.len() as u64 != meta.info.total_length {
        bail!("{data} is not the single file of {torrent}");
    }
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let sw = swarm::start(&meta, bytes.into(), cfg).await?;
        if let Some(path) = addrs {
            let list: Vec<String> = sw.addrs.iter().map(|a| a.to_string()).collect();
            std::fs::write(&path, list.join("\n") + "\n")?;
        }
        println!("READY");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = every.tick() => println!("{}", sw.stats.line()),
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
            std::io::stdout().flush()?;
        }
        println!("{}", sw.stats.line());
        Ok(())
    })
}
