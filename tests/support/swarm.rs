//! Synthetic peers of one torrent, many in one process: each on a loopback address of its own
//! (127.0.1.1, 127.0.1.2, ...), holding a random share of the pieces that grows while it runs (told
//! to its connections with `have`), some joining late (dialing the client under test) and some
//! leaving. Every peer speaks the real protocol through the wire codec: handshake, BEP 10 extension
//! handshake, bitfield, unchoke, and the blocks asked for (rejected, with the fast extension, when it
//! lacks the piece). Shared by `benches/helpers/synthetic_peers.rs` and `tests/it/many_peers.rs`;
//! it uses only the btorrent crate, tokio, futures and rand, so both can include the file.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use btorrent::wire::extension::{ExtHandshake, OurExt};
use btorrent::wire::handshake::{read_handshake, write_handshake, Handshake};
use btorrent::wire::{Bitfield, BlockRef, Geometry, Message, PeerCodec};
use btorrent::{Metainfo, PeerId};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio_util::codec::Framed;

/// How the swarm behaves.
#[derive(Debug, Clone)]
pub struct SwarmConfig {
    /// Peers listening from the start (their addresses are [`Swarm::addrs`]).
    pub peers: usize,
    /// Peers that join later, one every `churn_every`: each listens and dials `target`.
    pub joiners: usize,
    /// Peers of the first ones that leave, one every `churn_every` (their connections close and they
    /// stop listening).
    pub leavers: usize,
    /// Port every peer listens on (each has its own address); 0 = an ephemeral one each.
    pub port: u16,
    /// Share of the pieces a peer holds at its start: uniform in this range.
    pub share: (f64, f64),
    /// Every `gain_every`, each live peer gets `gain` more pieces and sends `have` for them.
    pub gain_every: Duration,
    pub gain: usize,
    pub churn_every: Duration,
    /// The client under test, for the joiners to dial (`None`: joiners only listen).
    pub target: Option<SocketAddr>,
    /// Seed of the pieces each peer holds and gains.
    pub seed: u64,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        SwarmConfig {
            peers: 40,
            joiners: 0,
            leavers: 0,
            port: 0,
            share: (0.05, 0.5),
            gain_every: Duration::from_millis(500),
            gain: 1,
            churn_every: Duration::from_secs(1),
            target: None,
            seed: 1,
        }
    }
}

/// What the swarm did, live.
#[derive(Debug, Default)]
pub struct SwarmStats {
    /// Connections open now (past the handshake), and the most at once.
    pub connected: AtomicUsize,
    pub max_connected: AtomicUsize,
    /// Blocks sent, requests refused for a piece not held, `have`s sent.
    pub blocks: AtomicU64,
    pub rejected: AtomicU64,
    pub haves: AtomicU64,
    /// Blocks the client under test sent to the peers (they ask it for one block at a time of a
    /// piece it announced and they lack, while it unchokes them).
    pub fetched: AtomicU64,
    /// Peers that joined late and that left.
    pub joined: AtomicUsize,
    pub left: AtomicUsize,
    /// Pieces none of the peers there from the start held at first: only `have`s bring them.
    pub unheld_at_start: AtomicUsize,
}

impl SwarmStats {
    /// One line: `connected=.. max_connected=.. blocks=.. rejected=.. haves=.. joined=.. left=..`.
    pub fn line(&self) -> String {
        let g = |a: &AtomicUsize| a.load(Ordering::Relaxed);
        let h = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "connected={} max_connected={} blocks={} rejected={} haves={} fetched={} joined={} left={} unheld_at_start={}",
            g(&self.connected),
            g(&self.max_connected),
            h(&self.blocks),
            h(&self.rejected),
            h(&self.haves),
            h(&self.fetched),
            g(&self.joined),
            g(&self.left),
            g(&self.unheld_at_start)
        )
    }
}

/// A running swarm; dropping it ends every peer and connection.
pub struct Swarm {
    /// Listening addresses of the peers there from the start.
    pub addrs: Vec<SocketAddr>,
    pub stats: Arc<SwarmStats>,
    _stop: watch::Sender<bool>,
}

struct Shared {
    meta: Metainfo,
    geo: Geometry,
    data: Bytes,
    stats: Arc<SwarmStats>,
    stop: watch::Receiver<bool>,
}

struct Peer {
    have: Mutex<Bitfield>,
    haves: broadcast::Sender<u32>,
    gone: watch::Sender<bool>,
    port: u16,
}

/// The address of peer `i` (0-based): 127.0.1.1 to 127.0.1.254, then 127.0.2.1 and so on.
pub fn peer_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        1 + (i / 254) as u8,
        1 + (i % 254) as u8,
    ))
}

/// Starts the swarm for `meta`, whose content (single file) is `data`.
pub async fn start(meta: &Metainfo, data: Bytes, cfg: SwarmConfig) -> std::io::Result<Swarm> {
    let (stop_tx, stop) = watch::channel(false);
    let stats = Arc::new(SwarmStats::default());
    let sh = Arc::new(Shared {
        meta: meta.clone(),
        geo: Geometry::from_info(&meta.info),
        data,
        stats: stats.clone(),
        stop,
    });
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let n = meta.info.piece_count();
    let mut peers = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..cfg.peers + cfg.joiners {
        let share = rng.gen_range(cfg.share.0..=cfg.share.1);
        let mut have = Bitfield::new(n);
        for p in 0..n {
            if rng.gen_bool(share.clamp(0.0, 1.0)) {
                have.set(p);
            }
        }
        let (haves, _) = broadcast::channel(1024);
        let (gone, _) = watch::channel(false);
        let listener = TcpListener::bind(SocketAddr::new(peer_ip(i), cfg.port)).await?;
        let port = listener.local_addr()?.port();
        let peer = Arc::new(Peer {
            have: Mutex::new(have),
            haves,
            gone,
            port,
        });
        if i < cfg.peers {
            addrs.push(listener.local_addr()?);
            tokio::spawn(listen(sh.clone(), peer.clone(), listener));
        } else {
            let (sh, peer, target) = (sh.clone(), peer.clone(), cfg.target);
            let at = cfg.churn_every * (i - cfg.peers + 1) as u32;
            tokio::spawn(async move {
                let mut stop = sh.stop.clone();
                tokio::select! {
                    _ = tokio::time::sleep(at) => {}
                    _ = stop.changed() => return,
                }
                sh.stats.joined.fetch_add(1, Ordering::Relaxed);
                if let Some(to) = target {
                    tokio::spawn(dial(sh.clone(), peer.clone(), to, peer_ip(i)));
                }
                listen(sh, peer, listener).await;
            });
        }
        peers.push(peer);
    }
    let mut held = Bitfield::new(n);
    for p in peers.iter().take(cfg.peers) {
        p.have.lock().unwrap().ones().for_each(|i| {
            held.set(i);
        });
    }
    stats
        .unheld_at_start
        .store(n - held.count(), Ordering::Relaxed);
    tokio::spawn(gain_and_leave(sh, peers, cfg, rng));
    Ok(Swarm {
        addrs,
        stats,
        _stop: stop_tx,
    })
}

/// Every `gain_every`, each peer that has not left gains pieces; every `churn_every`, one of the
/// leavers leaves.
async fn gain_and_leave(sh: Arc<Shared>, peers: Vec<Arc<Peer>>, cfg: SwarmConfig, mut rng: StdRng) {
    let mut stop = sh.stop.clone();
    let mut gain = tokio::time::interval(cfg.gain_every);
    let mut churn = tokio::time::interval(cfg.churn_every);
    churn.tick().await;
    let mut left = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = gain.tick() => {
                for p in peers.iter().filter(|p| !*p.gone.borrow()) {
                    let mut have = p.have.lock().unwrap();
                    let n = have.len();
                    for _ in 0..cfg.gain {
                        // A few tries at a piece it lacks; a nearly full peer may gain nothing.
                        for _ in 0..8 {
                            let i = rng.gen_range(0..n);
                            if have.set(i) {
                                let _ = p.haves.send(i as u32);
                                break;
                            }
                        }
                    }
                }
            }
            _ = churn.tick(), if left < cfg.leavers.min(cfg.peers) => {
                peers[left].gone.send_replace(true);
                sh.stats.left.fetch_add(1, Ordering::Relaxed);
                left += 1;
            }
        }
    }
}

async fn listen(sh: Arc<Shared>, peer: Arc<Peer>, listener: TcpListener) {
    let (mut stop, mut gone) = (sh.stop.clone(), peer.gone.subscribe());
    loop {
        tokio::select! {
            a = listener.accept() => match a {
                Ok((s, _)) => { tokio::spawn(serve(sh.clone(), peer.clone(), s, false)); }
                Err(_) => return,
            },
            _ = stop.changed() => return,
            _ = gone.changed() => return,
        }
    }
}

async fn dial(sh: Arc<Shared>, peer: Arc<Peer>, to: SocketAddr, from: IpAddr) {
    let Ok(sock) = TcpSocket::new_v4() else {
        return;
    };
    if sock.bind(SocketAddr::new(from, 0)).is_err() {
        return;
    }
    if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(5), sock.connect(to)).await {
        serve(sh, peer, s, true).await;
    }
}

/// One connection: handshakes, tells what it has and unchokes, then answers requests and passes on
/// the pieces its peer gains, until the other side hangs up, the peer leaves or the swarm ends.
async fn serve(sh: Arc<Shared>, peer: Arc<Peer>, mut s: TcpStream, dial: bool) {
    let t = Duration::from_secs(10);
    let ours = Handshake::ours(sh.meta.info_hash, PeerId::generate());
    if dial && write_handshake(&mut s, &ours, t).await.is_err() {
        return;
    }
    let Ok(theirs) = read_handshake(&mut s, t).await else {
        return;
    };
    if theirs.info_hash != sh.meta.info_hash {
        return;
    }
    if !dial && write_handshake(&mut s, &ours, t).await.is_err() {
        return;
    }
    let _ = s.set_nodelay(true);
    let fast = theirs.supports_fast();
    let mut f = Framed::new(s, PeerCodec::new(sh.geo, fast));
    let mut haves = peer.haves.subscribe();
    let (mut stop, mut gone) = (sh.stop.clone(), peer.gone.subscribe());
    if *gone.borrow() {
        return;
    }
    let mut hello = Vec::new();
    if theirs.supports_extensions() {
        let ext = OurExt {
            listen_port: peer.port,
            ..Default::default()
        };
        hello.push(Message::Extended {
            id: 0,
            payload: ExtHandshake::ours(ext).into(),
        });
    }
    hello.push(Message::Bitfield(peer.have.lock().unwrap().clone()));
    hello.push(Message::Unchoke);
    hello.push(Message::Interested);
    for m in hello {
        if f.send(m).await.is_err() {
            return;
        }
    }
    let st = &sh.stats;
    let now = st.connected.fetch_add(1, Ordering::Relaxed) + 1;
    st.max_connected.fetch_max(now, Ordering::Relaxed);
    // What we fetch from the other side: the pieces it announced that this peer lacks, one block at
    // a time while it unchokes us.
    let mut theirs: Vec<u32> = Vec::new();
    let (mut unchoked, mut asked) = (false, false);
    loop {
        let out = tokio::select! {
            m = f.next() => match m {
                Some(Ok(Message::Request(b))) => answer(&sh, &peer, b, fast),
                Some(Ok(m)) => {
                    match m {
                        Message::Bitfield(bf) => theirs.extend(bf.ones().map(|i| i as u32)),
                        Message::HaveAll => theirs.extend(0..sh.geo.piece_count),
                        Message::Have(i) => theirs.push(i),
                        Message::Unchoke => unchoked = true,
                        Message::Choke => (unchoked, asked) = (false, false),
                        Message::Reject(_) => asked = false,
                        Message::Piece { .. } => {
                            st.fetched.fetch_add(1, Ordering::Relaxed);
                            asked = false;
                        }
                        _ => {}
                    }
                    if unchoked && !asked {
                        fetch(&sh.geo, &peer, &mut theirs).inspect(|_| asked = true)
                    } else {
                        None
                    }
                }
                _ => break,
            },
            h = haves.recv() => match h {
                Ok(i) => {
                    st.haves.fetch_add(1, Ordering::Relaxed);
                    Some(Message::Have(i))
                }
                Err(broadcast::error::RecvError::Lagged(_)) => None,
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = stop.changed() => break,
            _ = gone.changed() => break,
        };
        if let Some(m) = out {
            if f.send(m).await.is_err() {
                break;
            }
        }
    }
    st.connected.fetch_sub(1, Ordering::Relaxed);
}

/// A request for the first block of the latest piece in `theirs` this peer lacks (dropping those it
/// has), or nothing.
fn fetch(geo: &Geometry, peer: &Peer, theirs: &mut Vec<u32>) -> Option<Message> {
    let have = peer.have.lock().unwrap();
    while let Some(i) = theirs.pop() {
        if !have.get(i as usize) {
            return Some(Message::Request(BlockRef {
                index: i,
                begin: 0,
                length: geo.block_len(i, 0),
            }));
        }
    }
    None
}

/// The block asked for, a reject (fast extension) when the peer lacks its piece, or nothing.
fn answer(sh: &Shared, peer: &Peer, b: BlockRef, fast: bool) -> Option<Message> {
    if !peer.have.lock().unwrap().get(b.index as usize) || sh.geo.check_block(&b).is_err() {
        sh.stats.rejected.fetch_add(1, Ordering::Relaxed);
        return fast.then_some(Message::Reject(b));
    }
    let at = (b.index as u64 * sh.meta.info.piece_length + b.begin as u64) as usize;
    sh.stats.blocks.fetch_add(1, Ordering::Relaxed);
    Some(Message::Piece {
        index: b.index,
        begin: b.begin,
        data: sh.data.slice(at..at + b.length as usize),
    })
}
