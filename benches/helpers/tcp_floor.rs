//! Helper for `benches/fleet.sh`: the machine's floor for a swarm's traffic. Every host of the fleet
//! runs one of these instead of a BitTorrent client; each leecher fetches an equal share of the file's
//! size from every other host (the seeder and the other leechers) over plain TCP, so every link
//! carries what an ideal swarm's would, with no protocol, no disk and no hashing. The time the last
//! leecher ends is the best any client can do on this machine and these links.
//!
//!     tcp_floor --listen IP:PORT --serve N [--get BYTES --from IP:PORT,IP:PORT,...]
//!
//! It serves N requests (each names how many bytes it wants: 8 bytes, big-endian; a connection closed
//! without one, such as a readiness probe, does not count), fetches BYTES in
//! equal shares from the `--from` hosts (retrying a host that is not listening yet, for 30 s), and
//! exits when both are done. One thread, one task per connection, 256 KiB reads and writes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHUNK: usize = 256 * 1024;

struct Args {
    listen: SocketAddr,
    serve: usize,
    get: u64,
    from: Vec<SocketAddr>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        listen: "0.0.0.0:0".parse()?,
        serve: 0,
        get: 0,
        from: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => args.listen = value.parse()?,
            "--serve" => args.serve = value.parse()?,
            "--get" => args.get = value.parse()?,
            "--from" => {
                args.from = value
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            _ => bail!("unknown flag {flag}"),
        }
    }
    if args.get > 0 && args.from.is_empty() {
        bail!("--get needs --from");
    }
    Ok(args)
}

/// Serves one request; `false` when the other end closed without asking (a readiness probe).
async fn serve_one(mut s: TcpStream) -> Result<bool> {
    let want = match s.read_u64().await {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let buf = vec![0x5a; CHUNK];
    let mut left = want;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        s.write_all(&buf[..n]).await?;
        left -= n as u64;
    }
    s.shutdown().await?;
    Ok(true)
}

/// Accepts connections until `count` requests have been served.
async fn serve(listener: TcpListener, count: usize) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut served = 0;
    while served < count {
        tokio::select! {
            accepted = listener.accept() => {
                tasks.spawn(serve_one(accepted?.0));
            }
            Some(done) = tasks.join_next() => {
                served += usize::from(done??);
            }
        }
    }
    Ok(())
}

async fn fetch_one(from: SocketAddr, want: u64) -> Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut s = loop {
        match TcpStream::connect(from).await {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(e).with_context(|| format!("connecting to {from}")),
        }
    };
    s.write_u64(want).await?;
    let mut buf = vec![0; CHUNK];
    let mut got = 0u64;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    if got != want {
        bail!("{from} sent {got} bytes of {want}");
    }
    Ok(got)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let listener = TcpListener::bind(args.listen).await?;
    let started = Instant::now();
    let serving = tokio::spawn(serve(listener, args.serve));
    let hosts = args.from.len() as u64;
    let fetches: Vec<_> = args
        .from
        .iter()
        .enumerate()
        .map(|(k, &from)| {
            // Equal shares; the first hosts take the remainder's extra bytes.
            let share = args.get / hosts + u64::from((k as u64) < args.get % hosts);
            tokio::spawn(fetch_one(from, share))
        })
        .collect();
    let mut got = 0;
    for f in fetches {
        got += f.await??;
    }
    let fetched_in = started.elapsed().as_secs_f64();
    serving.await??;
    println!(
        "FLOOR got={got} fetched_s={fetched_in:.3} all_s={:.3}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
