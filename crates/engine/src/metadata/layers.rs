//! A v2 torrent's piece layers (BEP 52) asked of the peers that gave its info dictionary. A magnet
//! link brings the dictionary alone; each file larger than one piece needs its layer (one hash per
//! piece) before any of its pieces can be checked, and the layers live outside the dictionary.
//!
//! One peer at a time, in the order the fetch found them: dial, handshake for the torrent, say we
//! have nothing, send every request ([`LayersNeeded::requests`]) and read until each is answered.
//! Every answer is checked against its file's root (which the dictionary, checked against the
//! info-hash, holds) before it is kept, so a peer can only fail to help: a refusal, a wrong hash,
//! silence for [`LAYERS_PEER_TIMEOUT`] or a closed connection move on to the next peer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::session::SessionCtx;
use crate::EngineError;
use btorrent_proto::metainfo::v2::{check_hashes, Hash256, HashRange, LayersNeeded};
use btorrent_proto::types::{InfoHash, PeerId};
use btorrent_proto::wire::handshake::Handshake;
use btorrent_proto::wire::message::encode;
use btorrent_proto::wire::{Bitfield, Geometry, Message, PeerCodec};

/// How long one peer has to answer every request before the next is asked.
pub const LAYERS_PEER_TIMEOUT: Duration = Duration::from_secs(30);

/// The raw `piece layers` value for `needed`, from the first of `peers` that gives them all.
pub(crate) async fn fetch(
    session: &Arc<SessionCtx>,
    info_hash: InfoHash,
    peer_id: PeerId,
    needed: &LayersNeeded,
    peers: &[SocketAddr],
    cancel: &CancellationToken,
) -> Result<Vec<u8>, EngineError> {
    let mut why = String::from("no peer to ask");
    for &addr in peers {
        let asked = ask(session, info_hash, peer_id, needed, addr);
        let r = tokio::select! {
            r = tokio::time::timeout(LAYERS_PEER_TIMEOUT, asked) => r,
            _ = cancel.cancelled() => return Err(EngineError::Cancelled),
        };
        match r {
            Ok(Ok(layers)) => return Ok(layers),
            Ok(Err(e)) => why = format!("{addr}: {e:#}"),
            Err(_) => why = format!("{addr}: no answer in {} s", LAYERS_PEER_TIMEOUT.as_secs()),
        }
        tracing::info!(%info_hash, "piece layers not had from {why}");
    }
    Err(EngineError::MetadataUnusable(format!(
        "a v2 torrent whose piece layers no peer gave (last: {why})"
    )))
}

/// Asks `addr` for every layer; the `piece layers` value once all are answered and checked.
async fn ask(
    session: &Arc<SessionCtx>,
    info_hash: InfoHash,
    peer_id: PeerId,
    needed: &LayersNeeded,
    addr: SocketAddr,
) -> anyhow::Result<Vec<u8>> {
    let ours = Handshake::ours(info_hash, peer_id);
    let dial = session.dial(false, None);
    let opened = crate::peer_stream::open(&dial, addr, &ours)
        .await
        .context("handshake")?;
    let fast = opened.theirs.supports_fast();
    let (rd, mut wr) = opened.stream.into_split();
    let requests = needed.requests();
    let mut out = BytesMut::new();
    if fast {
        encode(&Message::HaveNone, &mut out);
    } else {
        encode(
            &Message::Bitfield(Bitfield::new(needed.piece_count)),
            &mut out,
        );
    }
    for r in &requests {
        encode(&Message::HashRequest(*r), &mut out);
    }
    wr.write_all(&out).await?;
    wr.flush().await?;
    let geo = Geometry::new(needed.piece_count, needed.piece_length, needed.total_length);
    let mut frames = FramedRead::new(rd, PeerCodec::new(geo, fast));
    let height = |root: &Hash256| {
        needed
            .files
            .iter()
            .find(|f| &f.root == root)
            .map(|f| f.height())
    };
    let mut answers: HashMap<HashRange, Vec<Hash256>> = HashMap::new();
    while answers.len() < requests.len() {
        match frames.next().await {
            None => bail!("it closed the connection"),
            Some(Err(e)) => bail!("{e}"),
            Some(Ok(Message::Hashes { range, hashes })) if requests.contains(&range) => {
                let hashes: Vec<Hash256> = hashes
                    .chunks_exact(32)
                    .map(|c| c.try_into().expect("chunks of 32"))
                    .collect();
                let Some(layer) =
                    height(&range.root).and_then(|h| check_hashes(&range, h, &hashes))
                else {
                    bail!("it sent hashes that do not lead to the file's root");
                };
                answers.insert(range, layer);
            }
            Some(Ok(Message::HashReject(range))) if requests.contains(&range) => {
                bail!("it refused a hash request")
            }
            Some(Ok(_)) => {}
        }
    }
    needed
        .piece_layers(&answers)
        .context("an answer went missing")
}
