//! btorrent's tracker served in-process on an ephemeral loopback port, a scripted HTTP double in its
//! place, raw HTTP GETs from a chosen loopback source address, and a small bencode reader for checking
//! replies.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use btorrent::tracker::{Tracker, TrackerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A tracker served on loopback until dropped or stopped.
pub struct TestTracker {
    pub tracker: Tracker,
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl TestTracker {
    /// On 127.0.0.1, an ephemeral port.
    pub async fn start(cfg: TrackerConfig) -> Self {
        Self::start_on("127.0.0.1:0", cfg).await
    }

    pub async fn start_on(bind: impl ToSocketAddrs, cfg: TrackerConfig) -> Self {
        Self::start_serving(bind, cfg, false).await
    }

    /// HTTP and UDP (BEP 15) on the same address and port, as the app's embedded tracker serves.
    pub async fn start_with_udp(bind: impl ToSocketAddrs, cfg: TrackerConfig) -> Self {
        Self::start_serving(bind, cfg, true).await
    }

    /// One tracker served on 127.0.0.1 and on `[::1]` at the same port, HTTP and UDP, as a host
    /// name that resolves to both (`localhost`) reaches it: the IPv4 server, then the IPv6 one.
    pub async fn start_on_both_loopbacks(cfg: TrackerConfig) -> (Self, Self) {
        let tracker = Tracker::new(cfg);
        for _ in 0..50 {
            let v4 = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = v4.local_addr().unwrap().port();
            // The same number may be taken on the other loopback, or over UDP: another try.
            let (Ok(v6), Ok(udp4), Ok(udp6)) = (
                TcpListener::bind(("::1", port)).await,
                tokio::net::UdpSocket::bind(("127.0.0.1", port)).await,
                tokio::net::UdpSocket::bind(("::1", port)).await,
            ) else {
                continue;
            };
            let one = Self::serving(tracker.clone(), v4, Some(udp4));
            return (one, Self::serving(tracker, v6, Some(udp6)));
        }
        panic!("no port free on both 127.0.0.1 and [::1] in 50 tries");
    }

    async fn start_serving(bind: impl ToSocketAddrs, cfg: TrackerConfig, udp: bool) -> Self {
        let listener = TcpListener::bind(bind).await.unwrap();
        let socket = if udp {
            let addr = listener.local_addr().unwrap();
            Some(tokio::net::UdpSocket::bind(addr).await.unwrap())
        } else {
            None
        };
        Self::serving(Tracker::new(cfg), listener, socket)
    }

    /// `tracker` served on `listener` (and over UDP on `udp`).
    fn serving(
        tracker: Tracker,
        listener: TcpListener,
        udp: Option<tokio::net::UdpSocket>,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = rx.await;
        };
        let t = tracker.clone();
        let task = if let Some(socket) = udp {
            tokio::spawn(async move {
                let _ = t.serve_with_udp(listener, socket, shutdown).await;
            })
        } else {
            tokio::spawn(async move {
                let _ = t.serve(listener, shutdown).await;
            })
        };
        TestTracker {
            tracker,
            addr,
            stop,
            task,
        }
    }

    /// Stops serving and waits (at most 10 s) until the port is closed; every swarm is forgotten.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the tracker stopped")
            .unwrap();
    }

    /// `http://127.0.0.1:PORT` (or `http://[::1]:PORT`).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn announce_url(&self) -> String {
        format!("{}/announce", self.base())
    }

    /// `udp://127.0.0.1:PORT/announce` (served by [`TestTracker::start_with_udp`]).
    pub fn udp_url(&self) -> String {
        format!("udp://{}/announce", self.addr)
    }
}

/// A scripted HTTP server on an ephemeral loopback port standing in for a tracker: serves each connection's requests with `reply(request_line)` -> (status, body), keeping the
/// connection alive; records every request line.
pub async fn http_double(
    reply: impl Fn(&str) -> (u16, Vec<u8>) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    http_double_with_headers(move |line| {
        let (status, body) = reply(line);
        (status, Vec::new(), body)
    })
    .await
}

/// An [`http_double`] tracker that answers every announce with `peers` (compact IPv4) and an
/// interval of 30 minutes.
pub async fn http_double_naming(
    peers: &[std::net::SocketAddrV4],
) -> (String, Arc<Mutex<Vec<String>>>) {
    let mut body = format!("d8:intervali1800e5:peers{}:", peers.len() * 6).into_bytes();
    for p in peers {
        body.extend_from_slice(&p.ip().octets());
        body.extend_from_slice(&p.port().to_be_bytes());
    }
    body.push(b'e');
    http_double(move |_| (200, body.clone())).await
}

/// [`http_double`] whose replies carry extra headers: `reply(request_line)` -> (status, headers, body).
pub async fn http_double_with_headers(
    reply: impl Fn(&str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let base = serve_double(reply, move |line| {
        record.lock().unwrap().push(line.to_string())
    })
    .await;
    (base, seen)
}

/// [`http_double`] that records when each request arrived with its request line.
pub async fn http_double_timed(
    reply: impl Fn(&str) -> (u16, Vec<u8>) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<(std::time::Instant, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let reply = move |line: &str| {
        let (status, body) = reply(line);
        (status, Vec::new(), body)
    };
    let base = serve_double(reply, move |line| {
        let now = std::time::Instant::now();
        record.lock().unwrap().push((now, line.to_string()))
    })
    .await;
    (base, seen)
}

/// Serves the double on an ephemeral loopback port: `record(request_line)` as each request's head
/// arrives, then its `reply`. Returns `http://127.0.0.1:PORT`.
async fn serve_double(
    reply: impl Fn(&str) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync + 'static,
    record: impl Fn(&str) + Send + Sync + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reply = Arc::new(reply);
    let record = Arc::new(record);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let record = record.clone();
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    let n = match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 4);
                        let line = head.lines().next().unwrap_or("").to_string();
                        record(&line);
                        let (status, headers, body) = reply(&line);
                        let extra: String = headers
                            .iter()
                            .map(|(k, v)| format!("{k}: {v}\r\n"))
                            .collect();
                        let mut out = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}\r\n",
                            body.len()
                        )
                        .into_bytes();
                        out.extend_from_slice(&body);
                        if sock.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// GET `url` from source address `from`; returns (status, body).
pub async fn get_from(from: IpAddr, url: &str) -> (u16, Vec<u8>) {
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.get(url).send())
        .await
        .expect("request timed out")
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().to_vec())
}

pub async fn get(url: &str) -> (u16, Vec<u8>) {
    get_from("127.0.0.1".parse().unwrap(), url).await
}

/// `%XX` for every byte.
pub fn pct(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// An announce query for a peer with the given port; `extra` is appended.
pub fn announce_query(
    hash: &[u8; 20],
    peer_id: &[u8; 20],
    port: u16,
    left: u64,
    extra: &str,
) -> String {
    format!(
        "info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}{extra}",
        pct(hash),
        pct(peer_id)
    )
}

/// An announce of torrent `hash` by the test peer at `port` (peer id [`peer_id`]`(port)`) with
/// `left` bytes to go.
pub fn announce_request(
    hash: btorrent::InfoHash,
    port: u16,
    left: u64,
    event: Option<btorrent::announce::AnnounceEvent>,
) -> btorrent::announce::AnnounceRequest {
    btorrent::announce::AnnounceRequest {
        info_hash: hash,
        peer_id: btorrent::PeerId(peer_id(port)),
        port,
        uploaded: 100,
        downloaded: 200,
        left,
        event,
        numwant: None,
        key: Some(7),
        ip: None,
    }
}

pub fn peer_id(n: u16) -> [u8; 20] {
    let mut id = *b"-TS0001-000000000000";
    id[14..20].copy_from_slice(format!("{n:06}").as_bytes());
    id
}

/// A decoded bencode value.
#[derive(Debug, Clone, PartialEq)]
pub enum B {
    I(i64),
    S(Vec<u8>),
    L(Vec<B>),
    D(BTreeMap<Vec<u8>, B>),
}

impl B {
    pub fn decode(buf: &[u8]) -> B {
        btorrent::bencode::validate(buf, true)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(buf)));
        decode_at(buf, 0).0
    }

    pub fn get(&self, key: &str) -> Option<&B> {
        match self {
            B::D(m) => m.get(key.as_bytes()),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> i64 {
        match self.get(key) {
            Some(B::I(i)) => *i,
            other => panic!("{key}: {other:?} in {self:?}"),
        }
    }

    pub fn bytes(&self, key: &str) -> &[u8] {
        match self.get(key) {
            Some(B::S(s)) => s,
            other => panic!("{key}: {other:?} in {self:?}"),
        }
    }

    /// The `failure reason`, if this is a refusal.
    pub fn failure(&self) -> Option<String> {
        match self.get("failure reason") {
            Some(B::S(s)) => Some(String::from_utf8_lossy(s).into_owned()),
            _ => None,
        }
    }
}

fn decode_at(buf: &[u8], pos: usize) -> (B, usize) {
    match buf[pos] {
        b'i' => {
            let (v, end) = btorrent::bencode::read_int(buf, pos).unwrap();
            (B::I(v), end)
        }
        b'l' => {
            let mut p = pos + 1;
            let mut v = Vec::new();
            while buf[p] != b'e' {
                let (x, end) = decode_at(buf, p);
                v.push(x);
                p = end;
            }
            (B::L(v), p + 1)
        }
        b'd' => {
            let mut p = pos + 1;
            let mut m = BTreeMap::new();
            while buf[p] != b'e' {
                let (k, after) = btorrent::bencode::read_bytes(buf, p).unwrap();
                let (x, end) = decode_at(buf, after);
                m.insert(k.to_vec(), x);
                p = end;
            }
            (B::D(m), p + 1)
        }
        _ => {
            let (s, end) = btorrent::bencode::read_bytes(buf, pos).unwrap();
            (B::S(s.to_vec()), end)
        }
    }
}

/// Compact IPv4 peers.
pub fn compact4(b: &[u8]) -> Vec<SocketAddr> {
    assert_eq!(b.len() % 6, 0);
    b.chunks(6)
        .map(|c| SocketAddr::from(([c[0], c[1], c[2], c[3]], u16::from_be_bytes([c[4], c[5]]))))
        .collect()
}

/// Compact IPv6 peers.
pub fn compact6(b: &[u8]) -> Vec<SocketAddr> {
    assert_eq!(b.len() % 18, 0);
    b.chunks(18)
        .map(|c| {
            let mut o = [0u8; 16];
            o.copy_from_slice(&c[..16]);
            SocketAddr::from((o, u16::from_be_bytes([c[16], c[17]])))
        })
        .collect()
}

/// A file of `len` random bytes (`seed` picks them) at `src/<name>`, seeded by a session of the
/// test's own (with `cfg`), which an [`http_double_naming`] tracker names: returns that session
/// and the torrent of the file announcing to the tracker (pieces of 16 KiB).
pub fn seeded_behind_a_tracker(
    rt: &tokio::runtime::Runtime,
    cfg: btorrent::engine::SessionConfig,
    src: &std::path::Path,
    name: &str,
    len: usize,
    seed: u64,
) -> (btorrent::engine::Session, btorrent::Metainfo) {
    let file = src.join(name);
    super::write_random(&file, len, seed);
    let plain = super::torrent(&file, 16 * 1024, vec![]);
    let (seeder, _) = rt.block_on(super::seeder_with(cfg, &plain, src));
    let at = std::net::SocketAddrV4::new([127, 0, 0, 1].into(), seeder.listen_addr().port());
    let (tracker, _) = rt.block_on(http_double_naming(&[at]));
    let meta = super::torrent(&file, 16 * 1024, vec![format!("{tracker}/announce")]);
    (seeder, meta)
}
