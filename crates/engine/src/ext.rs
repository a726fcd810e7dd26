//! The extended messages of one connection (BEP 10), after the extension handshake: what the peer
//! told us in its handshake (its ids for `ut_metadata`, `ut_pex` and `lt_donthave`), serving our info
//! dictionary (BEP 9) and peer exchange (BEP 11). The reader task ([`super::conn`]) owns a `PeerExt`
//! and hands it every extended message but two it reads itself: the handshake, and `lt_donthave`
//! (BEP 54), which changes the connection's view of the peer's pieces.
//!
//! - **`ut_metadata`**: a request for a piece of the info dictionary is answered with the piece, or
//!   rejected when out of range, over [`metadata_request_budget`] requests in [`METADATA_WINDOW`], or
//!   while [`MAX_QUEUED_METADATA`] bytes wait to be sent to the peer; data and rejects (we already have the dictionary) are ignored; a message
//!   that does not decode ends the connection.
//! - **`ut_pex`**: never for a private torrent (BEP 27), nor while the session's peer exchange is off
//!   ([`crate::Session::set_pex`]): it is not offered and messages are ignored (and, switched off
//!   after the handshake, none is sent).
//!   Otherwise we send the listen addresses of our other peers (`added`, with seed and reachable
//!   flags) and those gone since (`dropped`) the first time shortly after the handshake, then at most
//!   once every [`PEX_INTERVAL`], at most 50 of each per message. What a peer sends is taken at most
//!   once every [`PEX_MIN_GAP`] (more often is ignored): its `added` peers (50 at most) join the
//!   torrent's known addresses as [`Source::Pex`](crate::known::Source::Pex); `dropped` is not trusted to remove anything.
//!   Peers that speak `ut_holepunch` are flagged so (0x08), and the sender of such an address is
//!   the one asked to introduce us to it ([`super::holepunch`], which `ut_holepunch` messages go
//!   to).
//!
//! Errors here are `anyhow` and stay inside the engine: they end the connection and are logged;
//! nothing public returns them (see [`crate::error`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::peer::PeerShared;
use super::sender::OutQueue;
use super::torrent::Torrent;
use btorrent_proto::wire::extension::{ExtIds, OurExt, UT_HOLEPUNCH_ID, UT_METADATA_ID, UT_PEX_ID};
use btorrent_proto::wire::ut_metadata::{self, MetadataMsg};
use btorrent_proto::wire::ut_pex::{
    PexMsg, FLAG_ENCRYPTION, FLAG_HOLEPUNCH, FLAG_REACHABLE, FLAG_SEED, FLAG_UTP, MAX_PEX_PEERS,
};
use btorrent_proto::wire::{ExtHandshake, Message};

/// Least time between two PEX messages we send to one peer (BEP 11: at most one a minute).
pub const PEX_INTERVAL: Duration = Duration::from_secs(60);
/// The first PEX message goes this long after the peer's extension handshake.
pub const PEX_FIRST: Duration = Duration::from_secs(2);
/// PEX messages from one peer closer together than this are ignored.
pub const PEX_MIN_GAP: Duration = Duration::from_secs(20);
/// Metadata pieces are refused while this much is already queued to the peer (one that asks and does
/// not read cannot make us buffer its requests).
pub const MAX_QUEUED_METADATA: usize = 256 * 1024;
/// The window `ut_metadata` requests are counted in.
pub const METADATA_WINDOW: Duration = Duration::from_secs(60);

/// Requests for our info dictionary one peer may make per [`METADATA_WINDOW`]: every piece twice,
/// and a few more.
pub fn metadata_request_budget(info_len: usize) -> u32 {
    2 * ut_metadata::piece_count(info_len as u64) + 8
}

/// Our extension handshake for torrent `t`. `upload_only` (BEP 21) says we want nothing more (a
/// seed, or a partial seed); the caller leaves it out while it super-seeds the peer: libtorrent
/// closes an upload-only peer that has nothing it wants, which a super-seed often is between two
/// offers. `peer` is the peer's address as we see it, told back to it (`yourip`).
pub(crate) fn our_handshake(t: &Torrent, upload_only: bool, peer: std::net::IpAddr) -> Vec<u8> {
    ExtHandshake::ours(OurExt {
        listen_port: t.ctx.listen_addr().port(),
        metadata_size: Some(t.meta.info_bytes().len() as u64),
        pex: !t.meta.info.private && t.ctx.pex(),
        holepunch: super::holepunch::offered(t),
        upload_only,
        prefers_encryption: matches!(
            t.ctx.encryption(),
            crate::Encryption::Prefer | crate::Encryption::Require
        ),
        your_ip: Some(peer.to_canonical()),
    })
}

/// The extension state of one connection.
pub(crate) struct PeerExt {
    /// The peer's ids for the extensions we speak (from its handshake).
    ids: ExtIds,
    /// `ut_metadata` requests in the current window, and when it started.
    requests: u32,
    window_start: Instant,
    /// When our next PEX message is due (`None`: the peer does not take PEX, or the torrent is
    /// private).
    pex_due: Option<Instant>,
    /// The addresses our last PEX message left the peer knowing.
    pex_sent: HashSet<SocketAddr>,
    last_pex_in: Option<Instant>,
    /// `ut_holepunch` messages taken in the current window.
    holepunch: super::holepunch::Budget,
}

impl PeerExt {
    pub(crate) fn new() -> Self {
        PeerExt {
            ids: ExtIds::default(),
            requests: 0,
            window_start: Instant::now(),
            pex_due: None,
            pex_sent: HashSet::new(),
            last_pex_in: None,
            holepunch: super::holepunch::Budget::new(),
        }
    }

    /// The peer's ids for the extensions we speak.
    pub(crate) fn ids(&self) -> ExtIds {
        self.ids
    }

    /// The peer's extension handshake (it may send another one later: the ids are replaced).
    pub(crate) fn on_handshake(&mut self, t: &Torrent, h: &ExtHandshake) {
        self.ids = h.ids;
        self.pex_due = match (h.ids.ut_pex, t.meta.info.private) {
            (Some(_), false) => Some(self.pex_due.unwrap_or(Instant::now() + PEX_FIRST)),
            _ => None,
        };
    }

    /// An extended message other than the handshake, by the id we gave its extension.
    pub(crate) fn on_message(
        &mut self,
        t: &Arc<Torrent>,
        sh: &PeerShared,
        out: &OutQueue,
        id: u8,
        payload: &[u8],
    ) -> anyhow::Result<()> {
        match id {
            UT_METADATA_ID => self.on_metadata(t, out, payload),
            UT_PEX_ID if t.meta.info.private => {
                tracing::debug!(peer = %sh.addr, "ut_pex on a private torrent: ignored");
                Ok(())
            }
            UT_PEX_ID if !t.ctx.pex() => {
                tracing::debug!(peer = %sh.addr, "ut_pex while peer exchange is off: ignored");
                Ok(())
            }
            UT_PEX_ID => {
                self.on_pex(t, sh, payload);
                Ok(())
            }
            UT_HOLEPUNCH_ID => {
                let their_id = self.ids.ut_holepunch;
                super::holepunch::on_message(t, sh, out, their_id, &mut self.holepunch, payload);
                Ok(())
            }
            other => {
                tracing::debug!(peer = %sh.addr, id = other, "extended message of an id we never gave: ignored");
                Ok(())
            }
        }
    }

    fn on_metadata(&mut self, t: &Torrent, out: &OutQueue, payload: &[u8]) -> anyhow::Result<()> {
        let info = t.meta.info_bytes();
        let msg = MetadataMsg::parse(payload, Some(info.len() as u64))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let MetadataMsg::Request { piece } = msg else {
            return Ok(());
        };
        let Some(their_id) = self.ids.ut_metadata else {
            // It asks without saying how to answer: nothing we can send.
            return Ok(());
        };
        let now = Instant::now();
        if now.duration_since(self.window_start) >= METADATA_WINDOW {
            self.window_start = now;
            self.requests = 0;
        }
        self.requests += 1;
        let queued = out.inner.lock().ctrl.len();
        let data = if self.requests <= metadata_request_budget(info.len())
            && queued < MAX_QUEUED_METADATA
        {
            ut_metadata::data_for(info, piece)
        } else {
            None
        };
        let payload = data.unwrap_or_else(|| MetadataMsg::Reject { piece }.encode());
        out.push(&Message::Extended {
            id: their_id,
            payload: payload.into(),
        });
        Ok(())
    }

    fn on_pex(&mut self, t: &Torrent, sh: &PeerShared, payload: &[u8]) {
        let now = Instant::now();
        if self
            .last_pex_in
            .is_some_and(|at| now.duration_since(at) < PEX_MIN_GAP)
        {
            tracing::debug!(peer = %sh.addr, "ut_pex sooner than {PEX_MIN_GAP:?} after its last: ignored");
            return;
        }
        self.last_pex_in = Some(now);
        match PexMsg::parse(payload) {
            Ok(m) => {
                tracing::debug!(peer = %sh.addr, added = m.added.len(), "peer exchange");
                // It may introduce us to the peers it names (BEP 55) if it speaks the extension.
                let introducer = self.ids.ut_holepunch.map(|_| sh.key);
                t.add_exchanged(&m.added, introducer);
            }
            // A peer that cannot spell PEX is not worth closing for: its message is dropped.
            Err(e) => tracing::debug!(peer = %sh.addr, "bad ut_pex message: {e}"),
        }
    }

    /// Sends our PEX message when one is due.
    pub(crate) fn on_tick(&mut self, t: &Torrent, sh: &PeerShared, out: &OutQueue) {
        let (Some(due), Some(their_id)) = (self.pex_due, self.ids.ut_pex) else {
            return;
        };
        let now = Instant::now();
        if now < due || !t.ctx.pex() {
            return;
        }
        self.pex_due = Some(now + PEX_INTERVAL);
        let current = pex_peers(t, sh);
        let mut msg = PexMsg::default();
        for (a, flags) in &current {
            if msg.added.len() < MAX_PEX_PEERS && !self.pex_sent.contains(a) {
                msg.added.push((*a, *flags));
            }
        }
        let now_set: HashSet<SocketAddr> = current.iter().map(|(a, _)| *a).collect();
        for a in &self.pex_sent {
            if msg.dropped.len() < MAX_PEX_PEERS && !now_set.contains(a) {
                msg.dropped.push(*a);
            }
        }
        if msg.added.is_empty() && msg.dropped.is_empty() {
            return;
        }
        for a in &msg.dropped {
            self.pex_sent.remove(a);
        }
        self.pex_sent.extend(msg.added.iter().map(|(a, _)| *a));
        tracing::debug!(peer = %sh.addr, added = msg.added.len(), dropped = msg.dropped.len(), "peer exchange sent");
        out.push(&Message::Extended {
            id: their_id,
            payload: msg.encode().into(),
        });
    }
}

/// The peers of `t` worth telling `to` about: the address each listens on (the one we dialed, or
/// the port it gave in its handshake), with its flags; not `to` itself.
fn pex_peers(t: &Torrent, to: &PeerShared) -> Vec<(SocketAddr, u8)> {
    let to_listen = *to.listen.lock();
    let c = t.core.lock();
    c.peers
        .values()
        .filter(|p| p.key != to.key)
        .filter_map(|p| {
            let listen = if p.outgoing {
                Some(p.addr)
            } else {
                *p.listen.lock()
            }?;
            let mut flags = 0;
            // BEP 11's flag is "seed or upload only".
            if p.is_seed() || p.upload_only.load(std::sync::atomic::Ordering::Relaxed) {
                flags |= FLAG_SEED;
            }
            if p.outgoing {
                flags |= FLAG_REACHABLE;
            }
            if p.encrypted {
                flags |= FLAG_ENCRYPTION;
            }
            if p.utp {
                flags |= FLAG_UTP;
            }
            if p.holepunch.load(std::sync::atomic::Ordering::Relaxed) {
                flags |= FLAG_HOLEPUNCH;
            }
            Some((listen, flags))
        })
        .filter(|(a, _)| Some(*a) != to_listen && *a != to.addr)
        .collect()
}
