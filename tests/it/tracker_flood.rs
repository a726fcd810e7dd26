//! The tracker under floods: slowloris sockets above the connection cap, more connections from one
//! address than it may hold, and a `/get_peers` flood, each while normal announces are timed (the
//! latencies are printed; run with `--nocapture` to see them).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::tracker::*;
use crate::support::wait::wait_until;
use btorrent::tracker::TrackerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const HASH: [u8; 20] = [0x42; 20];

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Lets the test hold a thousand sockets or so, both ends, where the soft limit is lower.
fn raise_fd_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// A connection from `from` to `to`.
async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(from, 0))?;
    sock.connect(to).await
}

/// A slowloris socket: connected, then the start of a request line (`partial`) or nothing at all.
async fn slow_socket(from: IpAddr, to: SocketAddr, partial: bool) -> TcpStream {
    let mut s = connect_from(from, to).await.unwrap();
    if partial {
        s.write_all(b"GET /announce?info_hash=%42%42")
            .await
            .unwrap();
    }
    s
}

/// `n` slowloris sockets from `from`, opened all at once; those the server's backlog does not let
/// connect within 3 s are given up.
async fn slowloris(from: IpAddr, to: SocketAddr, n: usize) -> Vec<TcpStream> {
    let tries = (0..n)
        .map(|i| tokio::time::timeout(Duration::from_secs(3), slow_socket(from, to, i % 2 == 0)));
    futures::future::join_all(tries)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect()
}

/// One announce on a new connection from `from`, answered within 5 s; returns how long it took from
/// connecting to the last byte of the reply.
async fn timed_announce(t: &TestTracker, from: IpAddr, port: u16) -> Duration {
    let q = announce_query(&HASH, &peer_id(port), port, 0, "");
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        let mut s = connect_from(from, t.addr).await.unwrap();
        let req = format!("GET /announce?{q} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).await.unwrap();
        reply
    })
    .await
    .expect("an announce answered within 5 s");
    let took = started.elapsed();
    let end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete reply");
    assert!(reply.starts_with(b"HTTP/1.1 200"), "{reply:?}");
    assert_eq!(B::decode(&reply[end + 4..]).failure(), None);
    took
}

/// (median, worst) of `n` announces, one every `every`, each from a new connection from `from`.
async fn announce_latencies(
    t: &TestTracker,
    from: IpAddr,
    n: u16,
    every: Duration,
) -> (Duration, Duration) {
    let mut took = Vec::new();
    let mut tick = tokio::time::interval(every);
    for i in 0..n {
        tick.tick().await;
        took.push(timed_announce(t, from, 20_000 + i).await);
    }
    took.sort();
    (took[took.len() / 2], took[took.len() - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_above_the_connection_cap_does_not_hold_up_announces() {
    raise_fd_limit();
    let cfg = TrackerConfig {
        max_connections: 300,
        ..Default::default()
    };
    let t = TestTracker::start(cfg).await;
    // 400 sockets from 127.0.0.1 (64 of them may stay) and 50 from each of 127.0.0.2-9: 464 the
    // tracker could hold by address, well over its 300.
    let mut held = slowloris(ip(1), t.addr, 400).await;
    for a in 2..10 {
        held.extend(slowloris(ip(a), t.addr, 50).await);
    }
    let (median, worst) = announce_latencies(&t, ip(50), 10, Duration::from_millis(10)).await;
    println!(
        "announce under {} slowloris sockets connected (cap 300): median {median:?}, worst {worst:?}",
        held.len()
    );
    assert!(t.tracker.stats().connections <= 300);
}

#[tokio::test]
async fn one_address_holds_its_cap_and_its_oldest_make_room() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let from = ip(3);
    let closed = Arc::new(Mutex::new(Vec::new()));
    for i in 0..100usize {
        let mut s = slow_socket(from, t.addr, true).await;
        let closed = closed.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 256];
            while let Ok(n @ 1..) = s.read(&mut buf).await {
                let _ = n;
            }
            closed.lock().unwrap().push(i);
        });
    }
    // The default cap is 64 per address: the 36 oldest are closed for the newer ones.
    let sorted = || {
        let mut c = closed.lock().unwrap().clone();
        c.sort();
        c
    };
    wait_until("36 sockets closed", Duration::from_secs(10), || {
        sorted().len() >= 36
    })
    .await;
    assert_eq!(sorted(), (0..36).collect::<Vec<_>>());
    // A real client from that address is still served, in place of the oldest slow socket.
    timed_announce(&t, from, 7001).await;
    wait_until("the 37th closed", Duration::from_secs(10), || {
        sorted().len() >= 37
    })
    .await;
    assert_eq!(sorted(), (0..37).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announces_keep_their_latency_under_a_get_peers_flood() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    // 10,000 endpoints in the listing.
    let client = reqwest::Client::new();
    let fill: Vec<_> = (0..8u16)
        .map(|task| {
            let (client, url) = (client.clone(), t.announce_url());
            tokio::spawn(async move {
                for port in (1 + task * 1250)..=((task + 1) * 1250) {
                    let q = announce_query(&HASH, &peer_id(port), port, 1, "");
                    client.get(format!("{url}?{q}")).send().await.unwrap();
                }
            })
        })
        .collect();
    for task in fill {
        task.await.unwrap();
    }
    assert_eq!(t.tracker.stats().peers, 10_000);
    let every = Duration::from_millis(50);
    let (quiet, _) = announce_latencies(&t, ip(60), 10, every).await;

    // 16 clients asking for the largest listing they can, again and again.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU32::new(0));
    let url = format!("{}/get_peers?limit=100000", t.base());
    let flood: Vec<_> = (0..16)
        .map(|_| {
            let (stop, served, url) = (stop.clone(), served.clone(), url.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let resp = client.get(&url).send().await.unwrap();
                    assert_eq!(resp.status(), 200);
                    resp.bytes().await.unwrap();
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    wait_until("the flood under way", Duration::from_secs(30), || {
        served.load(Ordering::Relaxed) >= 16
    })
    .await;
    let (median, worst) = announce_latencies(&t, ip(61), 20, every).await;
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        task.await.unwrap();
    }
    let listings = served.load(Ordering::Relaxed);
    println!(
        "announce alone: median {quiet:?}; under a /get_peers flood ({listings} listings served): \
         median {median:?}, worst {worst:?}"
    );
    assert!(
        median < Duration::from_millis(250),
        "announces took {median:?} (median) under the flood"
    );
}
