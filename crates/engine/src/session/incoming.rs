//! Incoming connections: past the IP filter and the socket budget, a handshake read (plain or
//! encrypted) and the socket handed to the torrent it names, or to the metadata fetch of that
//! info-hash; anything else is closed.

use super::*;

/// An incoming connection past the IP filter and within the session's socket budget goes on to
/// [`incoming()`] in a task of its own; any other is closed at once.
pub(crate) fn admit(session: &Session, stream: RawStream, addr: SocketAddr) {
    // A socket on `::` takes IPv4 peers too, as IPv4-mapped IPv6 addresses: each is known by its
    // own IPv4 address from here on (the per-address limit, the peer lists, PEX's `added`).
    let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
    if session.0.ctx.ip_filter.read().blocks(addr.ip()) {
        tracing::debug!(peer = %addr, "incoming connection refused: blocked by the IP filter");
        return;
    }
    let Ok(permit) = session.0.ctx.connections.try_take() else {
        tracing::debug!(peer = %addr, "incoming connection refused: at the session's connection limit");
        return;
    };
    let s = session.clone();
    tokio::spawn(async move {
        if let Err(e) = incoming(s, stream, addr, permit).await {
            tracing::debug!(peer = %addr, "incoming connection refused: {e}");
        }
    });
}

/// A peer that connected: its handshake read, it goes to the torrent it names (by either info-hash
/// of a hybrid, answered with the one it named), or to the metadata fetch of that info-hash;
/// `socket` (of the session's budget) is held as long as it is.
async fn incoming(
    session: Session,
    raw: RawStream,
    addr: SocketAddr,
    socket: tokio::sync::OwnedSemaphorePermit,
) -> anyhow::Result<()> {
    let policy = session.0.ctx.encryption();
    let torrents = || {
        let mut all: Vec<InfoHash> = (session.0.torrents.lock().values())
            .flat_map(|h| h.0.meta.swarm_ids())
            .collect();
        all.extend(session.0.ctx.fetches.info_hashes());
        all
    };
    let (mut stream, theirs) =
        crate::peer_stream::accept(raw, policy, torrents, HANDSHAKE_TIMEOUT).await?;
    let Some(h) = session.in_swarm(&theirs.info_hash) else {
        let fetch = session.0.ctx.fetches.incoming_for(&theirs.info_hash);
        let Some(fetch) = fetch else {
            anyhow::bail!("unknown torrent {}", theirs.info_hash);
        };
        let ih = theirs.info_hash;
        let peer = crate::metadata::Incoming {
            addr,
            stream,
            theirs,
            socket,
        };
        if fetch.try_send(peer).is_err() {
            anyhow::bail!("the metadata fetch of {ih} takes no more peers");
        }
        return Ok(());
    };
    let _socket = socket;
    let run = {
        let c = h.0.core.lock();
        if !c.lifecycle.transfers() {
            anyhow::bail!("torrent is {}", c.lifecycle.report());
        }
        c.run.clone()
    };
    let ours = session.0.ctx.handshake(&h.0.meta, theirs.info_hash);
    write_handshake(&mut stream, &ours, HANDSHAKE_TIMEOUT).await?;
    crate::peer::serve(h.0.clone(), stream, theirs, addr, None, run).await;
    Ok(())
}
