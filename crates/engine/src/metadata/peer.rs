//! One peer of a metadata fetch: connect (or answer its connection, [`accept`]), handshake with the
//! extension bit, read its extension
//! handshake (`ut_metadata` id and `metadata_size`), then ask it for the pieces [`Assembly`](super::assembly::Assembly) hands out
//! and give it what it sends. Any message that is not ours is skipped unread; a frame longer than
//! [`MAX_FRAME`] ends the connection, and so does a `ut_metadata` message that does not decode, a
//! `metadata_size` over 16 MiB or 0, too many rejects, [`PIECE_TIMEOUT`] without a piece while
//! some are asked, or [`IDLE_TIMEOUT`] without being asked anything (it gave a size other than the one
//! being assembled, or waits as a suspect): its place goes to another address.
//!
//! Errors here are `anyhow` and stay inside the engine: they end the connection and are logged;
//! nothing public returns them (see [`crate::error`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use super::assembly::Outcome;
use super::Shared;
use crate::peer::HANDSHAKE_TIMEOUT;
use crate::peer_stream::{PeerStream, PeerWriter};
use btorrent_proto::wire::extension::{ExtHandshake, OurExt, UT_METADATA_ID};
use btorrent_proto::wire::handshake::{write_handshake, Handshake};
use btorrent_proto::wire::message::id::EXTENDED;
use btorrent_proto::wire::ut_metadata::MetadataMsg;

/// Longest message read from a peer before we have the metadata: a bitfield of the largest torrent a
/// 16 MiB info dictionary can describe fits, and so does every extended message.
pub const MAX_FRAME: usize = 160 * 1024;
/// A peer that has pieces asked and sends none for this long is let go.
pub const PIECE_TIMEOUT: Duration = Duration::from_secs(15);
/// A peer asked nothing for this long is let go.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Rejects a peer may send before it is let go.
pub const MAX_REJECTS: u32 = 16;

async fn send_ext(wr: &mut PeerWriter, id: u8, payload: &[u8]) -> anyhow::Result<()> {
    let mut b = BytesMut::with_capacity(payload.len() + 6);
    b.put_u32(payload.len() as u32 + 2);
    b.put_u8(EXTENDED);
    b.put_u8(id);
    b.put_slice(payload);
    wr.write_all(&b).await?;
    wr.flush().await?;
    Ok(())
}

/// A peer failed by sending what no honest peer sends (logged as a warning, not as a mere failure).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Hostile(pub String);

/// A peer that cannot send metadata, ever: it does not speak the extension protocol, or does not
/// offer `ut_metadata`. Not dialed again (other failures are: see [`super::redial_after`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Unable(pub String);

/// Dials `addr` and talks to it until the fetch is done, or the peer fails (the error says why).
pub(super) async fn dial(sh: Arc<Shared>, addr: SocketAddr) -> anyhow::Result<()> {
    let ours = Handshake::ours(sh.info_hash, sh.peer_id);
    let dial = sh.session.dial(false, None);
    let opened = crate::peer_stream::open(&dial, addr, &ours)
        .await
        .context("handshake")?;
    let (stream, theirs) = (opened.stream, opened.theirs);
    talk(sh, addr, stream, theirs, Some(addr)).await
}

/// Answers a peer that connected to us for the fetch's info-hash (its handshake read) and talks to
/// it, like [`dial`].
pub(super) async fn accept(sh: Arc<Shared>, incoming: super::Incoming) -> anyhow::Result<()> {
    let super::Incoming {
        addr,
        mut stream,
        theirs,
        socket: _socket,
    } = incoming;
    let ours = Handshake::ours(sh.info_hash, sh.peer_id);
    write_handshake(&mut stream, &ours, HANDSHAKE_TIMEOUT).await?;
    talk(sh, addr, stream, theirs, None).await
}

/// The part after the handshakes. `listen` is where the peer takes connections when known (the
/// address dialed); else the port its extension handshake names, if any.
async fn talk(
    sh: Arc<Shared>,
    addr: SocketAddr,
    stream: PeerStream,
    theirs: Handshake,
    listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    if !theirs.supports_extensions() {
        return Err(Unable(
            "it does not speak the extension protocol (BEP 10), so cannot send metadata".into(),
        )
        .into());
    }
    let (rd, mut wr) = stream.into_split();
    let hs = ExtHandshake::ours(OurExt {
        listen_port: sh.local.port(),
        metadata_size: None,
        pex: false,
        holepunch: false,
        upload_only: false,
        prefers_encryption: false,
        your_ip: None,
    });
    send_ext(&mut wr, 0, &hs).await?;
    let mut frames = FramedRead::new(
        rd,
        LengthDelimitedCodec::builder()
            .length_field_length(4)
            .max_frame_length(MAX_FRAME)
            .new_codec(),
    );
    let next = |f: Option<Result<BytesMut, std::io::Error>>| -> anyhow::Result<BytesMut> {
        match f {
            None => bail!("it closed the connection"),
            Some(r) => Ok(r.context("reading")?),
        }
    };
    // Its extension handshake.
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let (their_id, size) = loop {
        let f = tokio::time::timeout_at(deadline, frames.next())
            .await
            .map_err(|_| anyhow::anyhow!("no extension handshake"))?;
        let f = next(f)?;
        if f.len() >= 2 && f[0] == EXTENDED && f[1] == 0 {
            let h = ExtHandshake::parse(&f[2..])
                .map_err(|e| Hostile(format!("bad extension handshake: {e}")))?;
            if h.metadata_size_refused {
                return Err(Hostile(
                    "it announced a metadata_size of 0 or over 16 MiB: refused".into(),
                )
                .into());
            }
            let Some(id) = h.ids.ut_metadata else {
                return Err(Unable("it does not offer ut_metadata".into()).into());
            };
            let Some(size) = h.metadata_size else {
                bail!("it gave no metadata_size");
            };
            let listen = listen.or_else(|| {
                h.port
                    .filter(|&p| p != 0)
                    .map(|p| SocketAddr::new(addr.ip(), p))
            });
            if let Some(l) = listen {
                sh.offered(l);
            }
            break (id, size);
        }
    };
    sh.state.lock().peer_ready(addr, size);
    sh.changed();
    let mut changed = sh.version.subscribe();
    let mut rejects = 0;
    let mut last_piece = tokio::time::Instant::now();
    loop {
        let (reqs, asked) = {
            let mut st = sh.state.lock();
            if st.dropped.contains(&addr) {
                return Err(
                    Hostile("it sent metadata that does not match the info-hash".into()).into(),
                );
            }
            let before = st.in_flight(addr);
            let reqs = st.next_requests(addr);
            (reqs, before)
        };
        if asked == 0 && !reqs.is_empty() {
            last_piece = tokio::time::Instant::now();
        }
        let asked = asked + reqs.len();
        for piece in reqs {
            send_ext(&mut wr, their_id, &MetadataMsg::Request { piece }.encode()).await?;
        }
        let f = tokio::select! {
            _ = sh.done.cancelled() => return Ok(()),
            r = changed.changed() => { let _ = r; continue; }
            _ = tokio::time::sleep_until(last_piece + PIECE_TIMEOUT), if asked > 0 => {
                bail!("no metadata piece for {} s", PIECE_TIMEOUT.as_secs());
            }
            _ = tokio::time::sleep_until(last_piece + IDLE_TIMEOUT), if asked == 0 => {
                bail!("nothing to ask it for {} s", IDLE_TIMEOUT.as_secs());
            }
            f = frames.next() => next(f)?,
        };
        if f.len() < 2 || f[0] != EXTENDED || f[1] != UT_METADATA_ID {
            continue;
        }
        let payload: Bytes = f.freeze().slice(2..);
        let msg = MetadataMsg::parse(&payload, Some(size))
            .map_err(|e| Hostile(format!("bad ut_metadata message: {e}")))?;
        match msg {
            MetadataMsg::Request { piece } => {
                // We have nothing to give yet.
                send_ext(&mut wr, their_id, &MetadataMsg::Reject { piece }.encode()).await?;
            }
            MetadataMsg::Reject { piece } => {
                rejects += 1;
                sh.state.lock().rejected(addr, piece);
                sh.changed();
                if rejects > MAX_REJECTS {
                    bail!("it rejected {rejects} metadata requests");
                }
            }
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => {
                last_piece = tokio::time::Instant::now();
                let outcome = sh
                    .state
                    .lock()
                    .piece(sh.info_hash, addr, piece, total_size, data);
                sh.changed();
                match outcome {
                    Outcome::Stored => {}
                    Outcome::Done => {
                        sh.done.cancel();
                        return Ok(());
                    }
                    Outcome::Bad { dropped } => {
                        tracing::warn!(
                            "the metadata assembled did not match the info-hash; dropped: {dropped:?}"
                        );
                    }
                }
            }
        }
    }
}
