//! Hostile and odd peers as small programs on loopback: a listener that claims every piece and then
//! lies, says nothing, stops answering after a while, or trickles; and a liar that keeps dialing in
//! from new ports with new peer ids. Each counts what it did, for the test to check.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use btorrent::wire::handshake::{read_handshake, write_handshake, Handshake};
use btorrent::wire::{Bitfield, BlockRef, Geometry, Message, PeerCodec};
use btorrent::{InfoHash, Metainfo, PeerId};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

/// What a fake peer does with the requests it gets (it always claims every piece and unchokes).
#[derive(Debug, Clone, Copy)]
pub enum Act {
    /// Answers every request with garbage.
    Corrupt,
    /// Swallows every request without a word.
    Silent,
    /// Answers the first `n` requests with the real data, then swallows every request.
    SnubAfter(u64),
    /// Answers with the real data, one block per interval, oldest request first.
    Trickle(Duration),
    /// Holds the first `collect` requests unanswered, then chokes, waits `hold` and answers them
    /// (as a sender does with the blocks already on their way when it chokes); later requests are
    /// rejected. Speaks the fast extension when the other side does.
    ChokeAndAnswer { collect: usize, hold: Duration },
}

/// What a fake peer did, live.
#[derive(Default)]
pub struct Counts {
    /// Blocks sent (real or garbage).
    pub blocks: AtomicU64,
    /// Requests and cancels received.
    pub requests: AtomicU64,
    pub cancels: AtomicU64,
    /// When it stopped answering ([`Act::SnubAfter`]), and when the first cancel came after that.
    pub silent_at: Mutex<Option<Instant>>,
    pub cancel_after_silence: Mutex<Option<Instant>>,
    /// Every block requested, in order.
    pub asked: Mutex<Vec<BlockRef>>,
    /// [`Act::SnubAfter`]: the most requests it held unanswered and not cancelled at once, once the
    /// other side had given up on it (sent its first cancel after the silence).
    pub held_after_snub: AtomicU64,
    /// The blocks sent after the choke ([`Act::ChokeAndAnswer`]).
    pub answered_after_choke: Mutex<Vec<BlockRef>>,
}

pub struct FakePeer {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
}

/// The next message on a test peer's connection, at most 30 s away; panics if the connection ends
/// or nothing comes.
pub async fn next_message(f: &mut Framed<TcpStream, PeerCodec>) -> Message {
    match tokio::time::timeout(Duration::from_secs(30), f.next()).await {
        Ok(Some(Ok(m))) => m,
        Ok(other) => panic!("the connection ended: {other:?}"),
        Err(_) => panic!("no message in 30 s"),
    }
}

/// A fake peer listening on `ip` (ephemeral port). `data` is the torrent's content (single file) for
/// the acts that send real blocks.
pub async fn fake_peer(meta: &Metainfo, data: Arc<Vec<u8>>, ip: IpAddr, act: Act) -> FakePeer {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let (meta, c) = (meta.clone(), counts.clone());
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(meta.clone(), data.clone(), s, act, c.clone()));
        }
    });
    FakePeer { addr, counts }
}

/// Answers our side's handshake with a fresh peer id; `None` if the other side hung up.
async fn handshake(
    meta: &Metainfo,
    mut s: TcpStream,
    dial: bool,
) -> Option<Framed<TcpStream, PeerCodec>> {
    let t = Duration::from_secs(5);
    let ours = Handshake::ours(meta.info_hash, PeerId::generate());
    if dial {
        write_handshake(&mut s, &ours, t).await.ok()?;
    }
    let theirs = read_handshake(&mut s, t).await.ok()?;
    if !dial {
        write_handshake(&mut s, &ours, t).await.ok()?;
    }
    let geo = Geometry::from_info(&meta.info);
    let mut f = Framed::new(s, PeerCodec::new(geo, theirs.supports_fast()));
    let all = Message::Bitfield(Bitfield::full(meta.info.piece_count()));
    f.send(all).await.ok()?;
    f.send(Message::Unchoke).await.ok()?;
    Some(f)
}

fn block(data: &[u8], b: BlockRef, piece_length: u64) -> Message {
    let at = (b.index as u64 * piece_length + b.begin as u64) as usize;
    Message::Piece {
        index: b.index,
        begin: b.begin,
        data: data[at..at + b.length as usize].to_vec().into(),
    }
}

async fn serve(meta: Metainfo, data: Arc<Vec<u8>>, s: TcpStream, act: Act, c: Arc<Counts>) {
    let Some(mut f) = handshake(&meta, s, false).await else {
        return;
    };
    let plen = meta.info.piece_length;
    let mut queue: std::collections::VecDeque<BlockRef> = Default::default();
    let every = match act {
        Act::Trickle(d) => d,
        _ => Duration::from_secs(3600),
    };
    let mut tick = tokio::time::interval(every);
    let mut choked = false;
    // Requests a silent snubber holds (neither answered nor cancelled).
    let mut held: Vec<BlockRef> = Vec::new();
    loop {
        let msg = tokio::select! {
            m = f.next() => match m {
                Some(Ok(m)) => m,
                _ => return,
            },
            _ = tick.tick() => {
                if let Some(b) = queue.pop_front() {
                    c.blocks.fetch_add(1, Ordering::SeqCst);
                    if f.send(block(&data, b, plen)).await.is_err() {
                        return;
                    }
                }
                continue;
            }
        };
        let b = match msg {
            Message::Request(b) => b,
            Message::Cancel(b) => {
                c.cancels.fetch_add(1, Ordering::SeqCst);
                queue.retain(|x| *x != b);
                held.retain(|x| *x != b);
                if c.silent_at.lock().unwrap().is_some() {
                    c.cancel_after_silence
                        .lock()
                        .unwrap()
                        .get_or_insert_with(Instant::now);
                }
                continue;
            }
            _ => continue,
        };
        let n = c.requests.fetch_add(1, Ordering::SeqCst) + 1;
        c.asked.lock().unwrap().push(b);
        let reply = match act {
            Act::ChokeAndAnswer { .. } if choked => Message::Reject(b),
            Act::ChokeAndAnswer { collect, hold } => {
                queue.push_back(b);
                if queue.len() < collect {
                    continue;
                }
                choked = true;
                if f.send(Message::Choke).await.is_err() {
                    return;
                }
                tokio::time::sleep(hold).await;
                for b in queue.drain(..) {
                    c.answered_after_choke.lock().unwrap().push(b);
                    c.blocks.fetch_add(1, Ordering::SeqCst);
                    if f.send(block(&data, b, plen)).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            Act::Silent => continue,
            Act::Trickle(_) => {
                queue.push_back(b);
                continue;
            }
            Act::SnubAfter(k) if n > k => {
                c.silent_at.lock().unwrap().get_or_insert_with(Instant::now);
                held.push(b);
                if c.cancel_after_silence.lock().unwrap().is_some() {
                    c.held_after_snub
                        .fetch_max(held.len() as u64, Ordering::SeqCst);
                }
                continue;
            }
            Act::SnubAfter(_) => block(&data, b, plen),
            Act::Corrupt => Message::Piece {
                index: b.index,
                begin: b.begin,
                data: vec![0xab; b.length as usize].into(),
            },
        };
        c.blocks.fetch_add(1, Ordering::SeqCst);
        if f.send(reply).await.is_err() {
            return;
        }
    }
}

/// A liar that dials `target` from `from` (a new port each time) `rounds` times with a new peer id
/// each time; each time it is let in, it answers the first request with garbage and hangs up.
/// Returns, per round, whether it was let in (got a request).
pub async fn dialing_liar(
    meta: &Metainfo,
    target: SocketAddr,
    from: IpAddr,
    rounds: usize,
) -> Vec<bool> {
    let mut let_in = Vec::new();
    for _ in 0..rounds {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(from, 0)).unwrap();
        let Ok(s) = sock.connect(target).await else {
            let_in.push(false);
            continue;
        };
        let Some(mut f) = handshake(meta, s, true).await else {
            let_in.push(false);
            continue;
        };
        let first = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(m)) = f.next().await {
                if let Message::Request(b) = m {
                    return Some(b);
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let_in.push(first.is_some());
        if let Some(b) = first {
            let garbage = Message::Piece {
                index: b.index,
                begin: b.begin,
                data: vec![0xab; b.length as usize].into(),
            };
            let _ = f.send(garbage).await;
            // Hang up cleanly (a FIN, not a reset that could drop the piece) and wait for the other
            // side to close too.
            let _ = tokio::io::AsyncWriteExt::shutdown(f.get_mut()).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while let Some(Ok(_)) = f.next().await {}
            })
            .await;
        }
    }
    let_in
}

/// Dials `addr` as a peer of `meta`: both handshakes, then its message stream (with the fast
/// extension when the other side offers it, as we always do).
pub async fn handshaken(meta: &Metainfo, addr: SocketAddr) -> Framed<TcpStream, PeerCodec> {
    handshaken_as(meta, meta.info_hash, addr).await
}

/// [`handshaken`] naming the torrent by `swarm` (a hybrid's v2 info-hash, say); the answer must
/// name the same.
pub async fn handshaken_as(
    meta: &Metainfo,
    swarm: InfoHash,
    addr: SocketAddr,
) -> Framed<TcpStream, PeerCodec> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let t = Duration::from_secs(5);
    let ours = Handshake::ours(swarm, PeerId::generate());
    write_handshake(&mut s, &ours, t).await.unwrap();
    let theirs = read_handshake(&mut s, t).await.unwrap();
    assert_eq!(theirs.info_hash, swarm, "answered in another swarm");
    let geo = Geometry::from_info(&meta.info);
    Framed::new(s, PeerCodec::new(geo, theirs.supports_fast()))
}

/// Dials `addr` for `meta` and counts the pieces it tells us of (bitfield, `have all`, `have`s) in its
/// first announcements: read until it announced something, then until it is quiet for 300 ms (at
/// most 10 s in all). Panics if it announces nothing.
pub async fn pieces_told(meta: &Metainfo, addr: SocketAddr) -> usize {
    // A peer with no piece: not a seed, so it changes nothing of what the other side decides.
    let mut f = handshaken(meta, addr).await;
    let n = meta.info.piece_count();
    let mut told = Bitfield::new(n);
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let wait = if told.none() {
            end
        } else {
            (tokio::time::Instant::now() + Duration::from_millis(300)).min(end)
        };
        match tokio::time::timeout_at(wait, f.next()).await {
            Ok(Some(Ok(m))) => match m {
                Message::Bitfield(bf) => bf.ones().for_each(|i| {
                    told.set(i);
                }),
                Message::HaveAll => told = Bitfield::full(n),
                Message::Have(i) => {
                    told.set(i as usize);
                }
                _ => {}
            },
            _ => break,
        }
    }
    assert!(!told.none(), "{addr} announced no piece");
    told.count()
}
