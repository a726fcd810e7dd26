//! One-shot questions to a single peer, outside any session: which pieces it has, and one piece.
//! Each opens its own connection (plain, then encrypted if the peer hangs up on that: the default
//! [`crate::Encryption`]), speaks just enough of the protocol, and closes. Failures are
//! [`EngineError`]s that say which peer and why: no connection ([`EngineError::Connect`],
//! [`EngineError::ConnectTimeout`]), a failed handshake ([`EngineError::Handshake`]: another torrent,
//! a timeout...), a refusal or a protocol slip ([`EngineError::Peer`]), a piece late or bad.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use btorrent_proto::metainfo::Metainfo;
use btorrent_proto::types::PeerId;
use btorrent_proto::wire::handshake::Handshake;
use btorrent_proto::wire::{Bitfield, BlockRef, Geometry, Message, PeerCodec, BLOCK_SIZE};

use crate::peer_stream::{handshake_over, worth_another_way, PeerStream};
use crate::transport::RawStream;
use crate::{Encryption, EngineError, Result};

const TIMEOUT: Duration = Duration::from_secs(30);
/// After the last `have`, how long to wait for more before answering.
const HAVE_QUIET: Duration = Duration::from_millis(500);

async fn open(
    addr: SocketAddr,
    meta: &Metainfo,
    peer_id: PeerId,
) -> Result<Framed<PeerStream, PeerCodec>> {
    let broken = |e| EngineError::Connect {
        addr,
        error: Arc::new(e),
    };
    let hs = Handshake::ours(meta.info_hash, peer_id);
    let ways = Encryption::default().dial_ways();
    for (i, &way) in ways.iter().enumerate() {
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| EngineError::ConnectTimeout { addr })?
            .map_err(broken)?;
        tcp.set_nodelay(true).map_err(broken)?;
        match handshake_over(RawStream::tcp(tcp), &hs, way, TIMEOUT).await {
            Ok((stream, theirs)) => {
                let codec = PeerCodec::new(Geometry::from_info(&meta.info), theirs.supports_fast());
                return Ok(Framed::with_capacity(stream, codec, 64 * 1024));
            }
            Err(e) if i + 1 < ways.len() && worth_another_way(&e) => continue,
            Err(e) => {
                return Err(EngineError::Handshake {
                    addr,
                    error: Arc::new(e),
                })
            }
        }
    }
    unreachable!("the last way returns")
}

async fn next(
    f: &mut Framed<PeerStream, PeerCodec>,
    addr: SocketAddr,
    wait: Duration,
) -> Result<Option<Message>> {
    match tokio::time::timeout(wait, f.next()).await {
        Err(_) => Ok(None),
        Ok(None) => Err(EngineError::peer(addr, "closed the connection")),
        Ok(Some(r)) => r
            .map(Some)
            .map_err(|e| EngineError::peer(addr, format!("sent a bad message: {e}"))),
    }
}

/// Sends `msgs` to the peer, then flushes.
async fn send(
    f: &mut Framed<PeerStream, PeerCodec>,
    addr: SocketAddr,
    msgs: impl IntoIterator<Item = Message>,
) -> Result<()> {
    for m in msgs {
        SinkExt::<Message>::feed(f, m)
            .await
            .map_err(|e| lost(addr, e))?;
    }
    SinkExt::<Message>::flush(f)
        .await
        .map_err(|e| lost(addr, e))
}

fn lost(addr: SocketAddr, e: impl std::fmt::Display) -> EngineError {
    EngineError::peer(addr, format!("cannot be sent to: {e}"))
}

/// Which pieces the peer at `addr` has (its bitfield, `have all`/`have none`, or its `have`s).
pub async fn fetch_bitfield(
    addr: SocketAddr,
    meta: &Metainfo,
    our_peer_id: PeerId,
) -> Result<Bitfield> {
    let mut f = open(addr, meta, our_peer_id).await?;
    let n = meta.info.piece_count();
    let mut bf = Bitfield::new(n);
    let mut wait = TIMEOUT;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(&mut f, addr, wait.min(left)).await? {
            None => return Ok(bf),
            Some(Message::Bitfield(b)) => return Ok(b),
            Some(Message::HaveAll) => return Ok(Bitfield::full(n)),
            Some(Message::HaveNone) => return Ok(bf),
            Some(Message::Have(i)) => {
                bf.set(i as usize);
                wait = HAVE_QUIET;
            }
            Some(_) => {}
        }
    }
}

/// Downloads piece `index` from the peer at `addr` and checks its SHA-1.
pub async fn download_piece(
    addr: SocketAddr,
    meta: &Metainfo,
    index: u32,
    our_peer_id: PeerId,
) -> Result<Vec<u8>> {
    let geo = Geometry::from_info(&meta.info);
    if index >= geo.piece_count {
        return Err(EngineError::NoSuchPiece {
            name: meta.info.name.clone(),
            index,
            pieces: geo.piece_count,
        });
    }
    let mut f = open(addr, meta, our_peer_id).await?;
    send(&mut f, addr, [Message::Interested]).await?;
    let len = geo.piece_len(index) as usize;
    let mut data = vec![0u8; len];
    let blocks: Vec<BlockRef> = (0..geo.blocks_in(index))
        .map(|b| BlockRef {
            index,
            begin: b * BLOCK_SIZE,
            length: geo.block_len(index, b),
        })
        .collect();
    let mut received = vec![false; blocks.len()];
    let mut has = Bitfield::new(geo.piece_count as usize);
    let mut requested = false;
    let deadline = tokio::time::Instant::now() + 2 * TIMEOUT;
    while received.iter().any(|r| !r) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(msg) = next(&mut f, addr, left).await? else {
            return Err(EngineError::PieceTimeout { addr, index });
        };
        match msg {
            Message::Bitfield(b) => has = b,
            Message::HaveAll => has = Bitfield::full(geo.piece_count as usize),
            Message::Have(i) => {
                has.set(i as usize);
            }
            // An unchoke, or leave to ask for this very piece while choked (BEP 6 allowed fast;
            // one for another piece is no leave to ask for this one).
            Message::Unchoke | Message::AllowedFast(_)
                if !requested
                    && (msg == Message::Unchoke || msg == Message::AllowedFast(index)) =>
            {
                if !has.get(index as usize) {
                    return Err(EngineError::peer(
                        addr,
                        format!("does not have piece {index}"),
                    ));
                }
                send(&mut f, addr, blocks.iter().map(|b| Message::Request(*b))).await?;
                requested = true;
            }
            Message::Choke if requested => {
                return Err(EngineError::peer(
                    addr,
                    format!("choked us before sending piece {index}"),
                ));
            }
            Message::Reject(b) if b.index == index => {
                return Err(EngineError::peer(addr, format!("refused piece {index}")));
            }
            Message::Piece {
                index: i,
                begin,
                data: d,
            } if i == index => {
                let blk = (begin / BLOCK_SIZE) as usize;
                let ok = begin % BLOCK_SIZE == 0
                    && blocks
                        .get(blk)
                        .is_some_and(|b| b.length as usize == d.len());
                if !ok {
                    return Err(EngineError::peer(
                        addr,
                        "sent a block that was not asked for",
                    ));
                }
                data[begin as usize..begin as usize + d.len()].copy_from_slice(&d);
                received[blk] = true;
            }
            Message::Piece { .. } => {
                return Err(EngineError::peer(
                    addr,
                    "sent a piece that was not asked for",
                ));
            }
            _ => {}
        }
    }
    if !meta.info.piece_matches(index as usize, &data) {
        return Err(EngineError::PieceHash { addr, index });
    }
    Ok(data)
}
