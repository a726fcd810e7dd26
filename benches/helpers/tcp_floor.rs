//! Helper for `benches/fleet.sh`: the machine's floor for a swarm's traffic. Every host of the fleet
//! runs one of these instead of a BitTorrent client; each leecher fetches an equal share of the file's
//! size from every other host (the seeder and the other leechers) over plain TCP, so every link
//! carries what an ideal swarm's would, with no protocol, no disk and no hashing. The time the last
//! leecher ends is the best any client can do on this machine and these links.
//!
//!     tcp_floor --listen IP:PORT --serve N [--get BYTES --from IP:PORT,IP:PORT,...] [--duplex]
//!
//! Every connection starts with the connecting host's want (8 bytes, big-endian) and the accepting
//! host's answer, its own want from the connecting host (8 bytes; 0 for none); then each side sends
//! what the other wants and reads what it wants, both at once, and shuts its sending half.
//!
//! - One way (the default): a leecher connects to every `--from` host for its share and answers 0 to
//!   the connections it accepts, so each connection carries data one way.
//! - `--duplex`: one connection per pair of hosts, carrying both shares, as a BitTorrent swarm's
//!   connections do: a leecher connects to the `--from` hosts whose address sorts below its own (the
//!   seeder among them) and answers the others' connections with its share from them.
//!
//! It answers N connections (a connection closed before its want, such as a readiness probe, does not
//! count), fetches BYTES in equal shares from the `--from` hosts (retrying a host that is not
//! listening yet, for 30 s), and exits when both are done. One thread, one task per connection,
//! 256 KiB reads and writes.

use std::net::{IpAddr, SocketAddr};
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
    duplex: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        listen: "0.0.0.0:0".parse()?,
        serve: 0,
        get: 0,
        from: Vec::new(),
        duplex: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--duplex" {
            args.duplex = true;
            continue;
        }
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

/// This host's share from each `--from` host: equal, the first hosts taking the remainder's bytes.
fn shares(args: &Args) -> Vec<(SocketAddr, u64)> {
    let hosts = args.from.len() as u64;
    (args.from.iter().enumerate())
        .map(|(k, &from)| {
            (
                from,
                args.get / hosts + u64::from((k as u64) < args.get % hosts),
            )
        })
        .collect()
}

/// Sends `send` bytes and reads until the other side shuts its half, both at once; returns the bytes
/// read.
async fn exchange(s: TcpStream, send: u64) -> Result<u64> {
    let (mut rd, mut wr) = s.into_split();
    let writing = async {
        let buf = vec![0x5a; CHUNK];
        let mut left = send;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            wr.write_all(&buf[..n]).await?;
            left -= n as u64;
        }
        wr.shutdown().await
    };
    let reading = async {
        let mut buf = vec![0; CHUNK];
        let mut got = 0u64;
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                return Ok::<u64, std::io::Error>(got);
            }
            got += n as u64;
        }
    };
    let ((), got) = tokio::try_join!(writing, reading)?;
    Ok(got)
}

/// Answers one connection with our want from its host (`wants`, by address; 0 if absent) and runs
/// the exchange; `None` when the other end closed without a want (a readiness probe), else the
/// bytes fetched.
async fn answer(mut s: TcpStream, wants: &[(IpAddr, u64)]) -> Result<Option<u64>> {
    let theirs = match s.read_u64().await {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let peer = s.peer_addr()?.ip();
    let ours = wants.iter().find(|(ip, _)| *ip == peer).map_or(0, |w| w.1);
    s.write_u64(ours).await?;
    let got = exchange(s, theirs).await?;
    if got != ours {
        bail!("{peer} sent {got} bytes of {ours}");
    }
    Ok(Some(got))
}

/// Answers connections until `count` have been served; returns the bytes fetched through them.
async fn serve(listener: TcpListener, count: usize, wants: Vec<(IpAddr, u64)>) -> Result<u64> {
    let wants = std::sync::Arc::new(wants);
    let mut tasks = tokio::task::JoinSet::new();
    let (mut served, mut got) = (0, 0);
    while served < count {
        tokio::select! {
            accepted = listener.accept() => {
                let wants = wants.clone();
                tasks.spawn(async move { answer(accepted?.0, &wants).await });
            }
            Some(done) = tasks.join_next() => {
                if let Some(n) = done?? {
                    served += 1;
                    got += n;
                }
            }
        }
    }
    Ok(got)
}

/// Connects to `from`, asks for `want` bytes and runs the exchange; returns the bytes fetched.
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
    let theirs = s.read_u64().await?;
    let got = exchange(s, theirs).await?;
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
    // Duplex: the hosts whose address sorts above ours connect to us; we answer with our share.
    let (answered, fetched): (Vec<_>, Vec<_>) = shares(&args)
        .into_iter()
        .partition(|(from, _)| args.duplex && from.ip() > args.listen.ip());
    let wants = answered.iter().map(|(a, n)| (a.ip(), *n)).collect();
    let serving = tokio::spawn(serve(listener, args.serve, wants));
    let fetches: Vec<_> = fetched
        .into_iter()
        .map(|(from, share)| tokio::spawn(fetch_one(from, share)))
        .collect();
    let mut got = 0;
    for f in fetches {
        got += f.await??;
    }
    got += serving.await??;
    if got != args.get {
        bail!("fetched {got} bytes of {}", args.get);
    }
    println!(
        "FLOOR got={got} all_s={:.3}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
