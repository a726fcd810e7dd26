//! A v2 torrent's piece layers (BEP 52) asked of the peers that gave its info dictionary. A magnet
//! link brings the dictionary alone; each file larger than one piece needs its layer (one hash per
//! piece) before any of its pieces can be checked, and the layers live outside the dictionary. A
//! hybrid's pieces are checked by SHA-1 without them; it asks for them all the same, for a bounded
//! time ([`fetch_for`]), to check its v2 side too and to answer its v2 peers' hash requests.
//!
//! One peer at a time, in the order the fetch found them: dial, handshake for the torrent, say we
//! have nothing, send every request ([`LayersNeeded::requests`]) and read until each is answered.
//! Every answer is checked against its file's root (which the dictionary, checked against the
//! info-hash, holds) before it is kept, so a peer can only fail to help: a refusal, a wrong hash,
//! silence for [`LAYERS_PEER_TIMEOUT`] or a closed connection move on to the next peer. A peer
//! that turns the connection away before answering (it may still hold the metadata connection from
//! our address, and many clients keep one connection per address) is dialed again,
//! [`LAYERS_ATTEMPTS`] times in all, [`LAYERS_RETRY_PAUSE`] apart.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::session::SessionCtx;
use crate::EngineError;
use btorrent_proto::metainfo::v2::{
    check_hashes, sha256, truncated, Hash256, HashRange, LayersNeeded,
};
use btorrent_proto::types::{InfoHash, PeerId};
use btorrent_proto::wire::handshake::Handshake;
use btorrent_proto::wire::message::encode;
use btorrent_proto::wire::{Bitfield, Geometry, Message, PeerCodec};

/// How long one peer has to answer every request before the next is asked.
pub const LAYERS_PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// Times a peer that turned the connection away is dialed.
pub const LAYERS_ATTEMPTS: u32 = 3;
/// The pause before dialing such a peer again.
pub const LAYERS_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// How long a hybrid's fetch waits for its layers before it goes on without them.
pub const HYBRID_LAYERS_WAIT: Duration = Duration::from_secs(10);

/// The piece layers the dictionary `fetched` lacks (`needed`), asked of the peers that gave it, in
/// its v2 swarm (its SHA-256 cut to 20 bytes): a hybrid's dictionary may have come by its v1 hash,
/// and peers answer hash requests only to a v2 peer (libtorrent's rule). A v2 torrent cannot check
/// a piece without them: no peer giving them is an error. A hybrid can (by SHA-1): it goes on
/// without them (`None`) when no peer gave them in [`HYBRID_LAYERS_WAIT`].
pub(crate) async fn fetch_for(
    session: &SessionCtx,
    fetched: &crate::metadata::Fetched,
    needed: &LayersNeeded,
    cancel: &CancellationToken,
) -> Result<Option<Vec<u8>>, EngineError> {
    let swarm = truncated(&sha256(&fetched.info));
    // A hybrid's peer that turns the v2 swarm away most likely knows the torrent as v1 alone: it
    // is not dialed again.
    let attempts = if needed.hybrid { 1 } else { LAYERS_ATTEMPTS };
    // A peer id of its own: the peer may still hold the metadata connection (ours, by our id), and
    // keeps one connection per peer id.
    let peer_id = PeerId::generate();
    let asked = fetch(
        session,
        swarm,
        peer_id,
        needed,
        (&fetched.peers, attempts),
        cancel,
    );
    if !needed.hybrid {
        return asked.await.map(Some);
    }
    let why = match tokio::time::timeout(HYBRID_LAYERS_WAIT, asked).await {
        Ok(Ok(layers)) => return Ok(Some(layers)),
        Ok(Err(EngineError::Cancelled)) => return Err(EngineError::Cancelled),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("none in {} s", HYBRID_LAYERS_WAIT.as_secs()),
    };
    tracing::info!(
        %swarm,
        "a hybrid goes on without its piece layers, its pieces checked by SHA-1 alone: {why}"
    );
    Ok(None)
}

/// What a peer said no to, or answered wrongly: asking it again would not help.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(&'static str);

/// The raw `piece layers` value for `needed`, from the first of `peers` that gives them all, each
/// dialed up to `attempts` times while it turns the connection away.
pub(crate) async fn fetch(
    session: &SessionCtx,
    info_hash: InfoHash,
    peer_id: PeerId,
    needed: &LayersNeeded,
    (peers, attempts): (&[SocketAddr], u32),
    cancel: &CancellationToken,
) -> Result<Vec<u8>, EngineError> {
    let mut why = String::from("no peer to ask");
    for &addr in peers {
        for attempt in 1..=attempts {
            let mut answered = false;
            let asked = ask(session, info_hash, peer_id, needed, addr, &mut answered);
            let r = tokio::select! {
                r = tokio::time::timeout(LAYERS_PEER_TIMEOUT, asked) => r,
                _ = cancel.cancelled() => return Err(EngineError::Cancelled),
            };
            let again = match r {
                Ok(Ok(layers)) => return Ok(layers),
                Ok(Err(e)) => {
                    why = format!("{addr}: {e:#}");
                    !answered && e.downcast_ref::<Refused>().is_none()
                }
                Err(_) => {
                    why = format!("{addr}: no answer in {} s", LAYERS_PEER_TIMEOUT.as_secs());
                    false
                }
            };
            tracing::info!(%info_hash, attempt, "piece layers not had from {why}");
            if !again || attempt == attempts {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(LAYERS_RETRY_PAUSE) => {}
                _ = cancel.cancelled() => return Err(EngineError::Cancelled),
            }
        }
    }
    Err(EngineError::MetadataUnusable(format!(
        "a v2 torrent whose piece layers no peer gave (last: {why})"
    )))
}

/// Asks `addr` for every layer; the `piece layers` value once all are answered and checked.
/// `answered` is set once one answer is in (a connection turned away before that may be tried
/// again).
async fn ask(
    session: &SessionCtx,
    info_hash: InfoHash,
    peer_id: PeerId,
    needed: &LayersNeeded,
    addr: SocketAddr,
    answered: &mut bool,
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
                    return Err(
                        Refused("it sent hashes that do not lead to the file's root").into(),
                    );
                };
                *answered = true;
                answers.insert(range, layer);
            }
            Some(Ok(Message::HashReject(range))) if requests.contains(&range) => {
                return Err(Refused("it refused a hash request").into());
            }
            Some(Ok(_)) => {}
        }
    }
    needed
        .piece_layers(&answers)
        .context("an answer went missing")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Session, SessionConfig};
    use btorrent_proto::metainfo::{create_torrent, layers_needed, CreateOptions, Metainfo};
    use btorrent_proto::wire::handshake::{read_handshake, write_handshake};
    use futures::SinkExt;
    use tokio::net::TcpListener;
    use tokio_util::codec::Framed;

    /// How a fake peer treats each connection in turn.
    #[derive(Clone, Copy)]
    enum Turn {
        /// Hangs up right after the handshakes.
        Hangup,
        /// Answers every hash request from the torrent's own layers.
        Answer,
        /// Refuses every hash request.
        Refuse,
    }

    /// A peer of `meta` on 127.0.0.1 that takes one connection per turn; how many it took.
    async fn fake_peer(
        meta: &Metainfo,
        turns: Vec<Turn>,
    ) -> (SocketAddr, tokio::task::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let meta = meta.clone();
        let task = tokio::spawn(async move {
            let t = Duration::from_secs(5);
            let mut taken = 0;
            for turn in turns {
                // A turn nobody comes for ends the peer: 3 s shows a dial that did not come.
                let accepted = tokio::time::timeout(Duration::from_secs(3), listener.accept());
                let Ok(Ok((mut s, _))) = accepted.await else {
                    break;
                };
                taken += 1;
                let theirs = read_handshake(&mut s, t).await.unwrap();
                let ours = Handshake::ours(theirs.info_hash, PeerId::generate());
                write_handshake(&mut s, &ours, t).await.unwrap();
                if let Turn::Hangup = turn {
                    continue;
                }
                let geo = Geometry::from_info(&meta.info);
                let mut f = Framed::new(s, PeerCodec::new(geo, true));
                while let Some(Ok(msg)) = f.next().await {
                    let Message::HashRequest(r) = msg else {
                        continue;
                    };
                    let v2 = meta.info.v2.as_ref().unwrap();
                    let answer = match (turn, v2.hashes(&r, meta.info.piece_length)) {
                        (Turn::Answer, Some(h)) => Message::Hashes {
                            range: r,
                            hashes: h.concat().into(),
                        },
                        _ => Message::HashReject(r),
                    };
                    if f.send(answer).await.is_err() {
                        break;
                    }
                }
            }
            taken
        });
        (addr, task)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_that_turns_the_first_connection_away_is_dialed_again_one_that_refuses_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("forty");
        std::fs::write(&path, vec![7u8; 40 * 16384 - 3]).unwrap();
        let opts = CreateOptions {
            piece_length: Some(16384),
            v2: true,
            ..Default::default()
        };
        let meta = create_torrent(&path, &opts, &|_, _| {}).unwrap();
        let needed = layers_needed(meta.info_bytes()).unwrap().unwrap();
        let session = Session::start(SessionConfig::default()).await.unwrap();
        let ask_each = |peers: Vec<SocketAddr>, attempts: u32| {
            let (ctx, needed) = (session.ctx(), &needed);
            async move {
                let id = PeerId::generate();
                let cancel = CancellationToken::new();
                let each = (&peers[..], attempts);
                fetch(ctx, meta.info_hash, id, needed, each, &cancel).await
            }
        };
        let ask = |peers: Vec<SocketAddr>| ask_each(peers, LAYERS_ATTEMPTS);

        let (addr, peer) = fake_peer(&meta, vec![Turn::Hangup, Turn::Answer]).await;
        let layers = ask(vec![addr]).await.unwrap();
        assert_eq!(peer.await.unwrap(), 2, "dialed again");
        let mut w = btorrent_proto::bencode::Writer::default();
        w.begin_dict().bytes(b"info").raw(meta.info_bytes());
        w.bytes(b"piece layers").raw(&layers).end();
        assert_eq!(Metainfo::from_bytes(&w.buf).unwrap().info.v2, meta.info.v2);

        // A refusal is final for that peer: the next one is asked instead.
        let (no, refuser) = fake_peer(&meta, vec![Turn::Refuse, Turn::Refuse]).await;
        let (yes, answerer) = fake_peer(&meta, vec![Turn::Answer]).await;
        assert_eq!(ask(vec![no, yes]).await.unwrap(), layers);
        assert_eq!((refuser.await.unwrap(), answerer.await.unwrap()), (1, 1));

        // Nobody gives them: the error says why.
        let (away, dialed) = fake_peer(&meta, vec![Turn::Hangup; 3]).await;
        let e = ask(vec![away]).await.unwrap_err().to_string();
        assert!(e.contains("no peer gave") && e.contains("closed"), "{e}");
        assert_eq!(dialed.await.unwrap(), 3);
        // Asked once each (a hybrid's peers), a peer that turns us away is not dialed again.
        let (away, dialed) = fake_peer(&meta, vec![Turn::Hangup; 2]).await;
        assert!(ask_each(vec![away], 1).await.is_err());
        assert_eq!(dialed.await.unwrap(), 1);
        session.shutdown(Duration::from_secs(2)).await;
    }
}
