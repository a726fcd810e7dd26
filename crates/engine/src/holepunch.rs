//! Introductions between peers that cannot dial each other (BEP 55, `ut_holepunch`): two machines
//! behind NATs, each reachable by a third peer they are both connected to, meet over uTP.
//!
//! - **As the initiator**: a dial that fails to an address a peer's exchange named as speaking
//!   `ut_holepunch` (PEX flag 0x08; `KnownPeer::introducer` is that peer, while it stays
//!   connected) asks the introducer for a `rendezvous` with it, at most once per [`RENDEZVOUS_GAP`]
//!   per address.
//! - **As the relay**: a `rendezvous(target)` is answered with `error` when the target is not one of
//!   our connections (matched by the address we see or the listen address it told us), does not
//!   speak `ut_holepunch`, is ourselves, or is on the other side of a local/public boundary (a LAN
//!   address is never handed to a peer outside it, nor the reverse). Otherwise each side is sent a
//!   `connect` naming the other by the address it is reachable at: the connection's own address when
//!   it came over uTP (the NAT's mapping of its uTP port, which is what the other side must send
//!   to), else its IP with the listen port it told us.
//! - **As either end**: a `connect(addr)` dials `addr` over uTP at once (from the session's uTP
//!   socket, whose outgoing packet opens our NAT to the other side's), and once more at once if
//!   that fails ([`PUNCHES`]: when both first packets cross, each NAT drops the other's; the second
//!   try meets open doors). A dial already under way gets its punch when it ends. Not when the
//!   session has no uTP, the address is banned, filtered, ourselves or already connected, or the
//!   torrent is full.
//!
//! A connection takes at most [`HOLEPUNCH_BUDGET`] messages per [`HOLEPUNCH_WINDOW`] (more are
//! ignored), so a peer cannot make us dial at its will; a malformed message is dropped, not fatal.
//! Never for a private torrent (the extension is not offered: a relay would name its peers).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::known::Source;
use super::peer::PeerShared;
use super::sender::OutQueue;
use super::torrent::{Core, Torrent};
use super::transport::Transport;
use btorrent_proto::addr::is_local_network;
use btorrent_proto::wire::ut_holepunch::{HolepunchError, HolepunchKind, HolepunchMsg};
use btorrent_proto::wire::Message;

/// Messages one connection may send us per [`HOLEPUNCH_WINDOW`].
pub const HOLEPUNCH_BUDGET: u32 = 16;
/// The window [`HOLEPUNCH_BUDGET`] is counted in.
pub const HOLEPUNCH_WINDOW: Duration = Duration::from_secs(60);
/// Least time between two rendezvous asked for one address.
pub const RENDEZVOUS_GAP: Duration = Duration::from_secs(300);
/// Dials a relay's `connect` makes.
pub const PUNCHES: u8 = 2;

/// Whether torrent `t` offers `ut_holepunch`.
pub(crate) fn offered(t: &Torrent) -> bool {
    !t.meta.info.private
}

/// The messages one connection sent us in the current window.
pub(crate) struct Budget {
    count: u32,
    since: Instant,
}

impl Budget {
    pub(crate) fn new() -> Self {
        Budget {
            count: 0,
            since: Instant::now(),
        }
    }

    /// Counts one message: false when it is over the budget.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        if now.duration_since(self.since) >= HOLEPUNCH_WINDOW {
            self.since = now;
            self.count = 0;
        }
        self.count += 1;
        self.count <= HOLEPUNCH_BUDGET
    }
}

/// A `ut_holepunch` message from the peer of `sh` (its id for the extension is `their_id`; `None`:
/// it never offered it, and could not be answered).
pub(crate) fn on_message(
    t: &Arc<Torrent>,
    sh: &PeerShared,
    out: &OutQueue,
    their_id: Option<u8>,
    budget: &mut Budget,
    payload: &[u8],
) {
    let Some(their_id) = their_id.filter(|_| offered(t)) else {
        tracing::debug!(peer = %sh.addr, "ut_holepunch from a peer that did not offer it: ignored");
        return;
    };
    if !budget.take() {
        tracing::debug!(peer = %sh.addr, "ut_holepunch over {HOLEPUNCH_BUDGET} a minute: ignored");
        return;
    }
    let msg = match HolepunchMsg::parse(payload) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!(peer = %sh.addr, "bad ut_holepunch message: {e}");
            return;
        }
    };
    match msg.kind {
        HolepunchKind::Rendezvous => {
            let answer = match relay(t, sh, msg.addr) {
                Ok(target) => {
                    tracing::debug!(peer = %sh.addr, to = %target, "holepunch: introduced");
                    HolepunchMsg::connect(target)
                }
                Err(e) => {
                    tracing::debug!(peer = %sh.addr, to = %msg.addr, "holepunch: cannot introduce: {e}");
                    HolepunchMsg::error(msg.addr, e)
                }
            };
            send(out, their_id, answer);
        }
        HolepunchKind::Connect => on_connect(t, sh, msg.addr),
        HolepunchKind::Error(e) => {
            tracing::debug!(peer = %sh.addr, to = %msg.addr, "holepunch refused by the relay: {e}");
        }
    }
}

fn send(out: &OutQueue, their_id: u8, msg: HolepunchMsg) {
    out.push(&Message::Extended {
        id: their_id,
        payload: msg.encode().into(),
    });
}

/// Queues `msg` to the connection of `p` (its reader task sends it: [`send_queued`]).
fn queue(p: &PeerShared, msg: HolepunchMsg) {
    p.cmds.lock().holepunch.push(msg);
    p.notify.notify_one();
}

/// Sends what other tasks queued for this connection (dropped if the peer does not speak the
/// extension).
pub(crate) fn send_queued(out: &OutQueue, their_id: Option<u8>, msgs: Vec<HolepunchMsg>) {
    let Some(id) = their_id else { return };
    for m in msgs {
        send(out, id, m);
    }
}

/// Where the peer of `p` can be dialed over uTP: the address of its connection when that is uTP
/// (its NAT's mapping of its uTP socket), else its IP with the listen port it told us.
fn reachable_at(p: &PeerShared) -> SocketAddr {
    if p.utp || p.outgoing {
        return p.addr;
    }
    let port = p.listen.lock().map_or(p.addr.port(), |l| l.port());
    SocketAddr::new(p.addr.ip(), port)
}

/// Whether the connection of `p` is the peer at `a` (its address, or the one it listens on).
fn is_at(p: &PeerShared, a: SocketAddr) -> bool {
    p.addr == a || *p.listen.lock() == Some(a)
}

/// Introduces the peer of `from` to the one at `target`: `connect` queued to the target, naming
/// `from`; returns where the target is reachable, for the `connect` to `from`.
fn relay(t: &Torrent, from: &PeerShared, target: SocketAddr) -> Result<SocketAddr, HolepunchError> {
    if target.ip().is_unspecified() || is_at(from, target) {
        return Err(HolepunchError::NoSuchPeer);
    }
    let c = t.core.lock();
    if target == t.ctx.listen_addr() || c.own_addrs.contains(&target) {
        return Err(HolepunchError::NoSelf);
    }
    let p = c
        .peers
        .values()
        .find(|p| p.key != from.key && is_at(p, target))
        .ok_or(HolepunchError::NotConnected)?;
    if !p.holepunch.load(Ordering::Relaxed) {
        return Err(HolepunchError::NoSupport);
    }
    if is_local_network(p.addr.ip()) != is_local_network(from.addr.ip()) {
        return Err(HolepunchError::NoSuchPeer);
    }
    queue(p, HolepunchMsg::connect(reachable_at(from)));
    Ok(reachable_at(p))
}

/// A relay asks us to dial `addr` now (it is told to dial us).
fn on_connect(t: &Arc<Torrent>, from: &PeerShared, addr: SocketAddr) {
    if is_local_network(addr.ip()) && !is_local_network(from.addr.ip()) {
        tracing::debug!(peer = %from.addr, %addr, "holepunch: a LAN address from outside it: ignored");
        return;
    }
    if t.ctx.dial(false, Some(Transport::Utp)).transport != Transport::Utp {
        tracing::debug!(peer = %from.addr, %addr, "holepunch: no uTP to punch with: ignored");
        return;
    }
    let mut c = t.core.lock();
    if !t.worth_knowing(&c, &addr) || t.ctx.ip_filter.read().blocks(addr.ip()) {
        return;
    }
    if c.peers.values().any(|p| is_at(p, addr)) || !c.lifecycle.transfers() {
        return;
    }
    c.known.add(addr, Source::Pex);
    let Some(k) = c.known.get_mut(&addr) else {
        // In the waiting room: the list is full of addresses that answered.
        return;
    };
    k.punches = PUNCHES;
    k.over = Some(Transport::Utp);
    tracing::debug!(peer = %from.addr, %addr, "holepunch: dialing at a relay's word");
    if !k.connecting {
        let run = c.run.clone();
        punch(t, &mut c, addr, &run);
    }
}

/// Dials `addr` over uTP now, one of its punches, if the torrent has room and a socket is left.
fn punch(t: &Arc<Torrent>, c: &mut Core, addr: SocketAddr, run: &CancellationToken) {
    if c.peers.len() >= t.limits.max_peers(&t.ctx) {
        return;
    }
    let Some(k) = c.known.get_mut(&addr) else {
        return;
    };
    let Ok(socket) = t.ctx.connections.try_take() else {
        return;
    };
    k.punches = k.punches.saturating_sub(1);
    k.over = Some(Transport::Utp);
    k.connecting = true;
    tokio::spawn(super::peer::dial(t.clone(), addr, run.clone(), socket));
}

/// A dial to `addr` failed: a punch left is made now; else, if a peer introduced the address as
/// one that takes introductions, it is asked for one.
pub(crate) fn after_failed_dial(t: &Arc<Torrent>, addr: SocketAddr, run: &CancellationToken) {
    let mut c = t.core.lock();
    let Some(k) = c.known.get(&addr) else {
        return;
    };
    if k.punches > 0 {
        punch(t, &mut c, addr, run);
        return;
    }
    let asked_lately = k
        .rendezvous_at
        .is_some_and(|at| at.elapsed() < RENDEZVOUS_GAP);
    let Some(introducer) = k.introducer.filter(|_| !asked_lately) else {
        return;
    };
    let relay = c
        .peers
        .get(&introducer)
        .filter(|p| p.holepunch.load(Ordering::Relaxed))
        .cloned();
    let Some(k) = c.known.get_mut(&addr) else {
        return;
    };
    match relay {
        Some(relay) => {
            k.rendezvous_at = Some(Instant::now());
            tracing::debug!(peer = %addr, relay = %relay.addr, "holepunch: asking for a rendezvous");
            queue(&relay, HolepunchMsg::rendezvous(addr));
        }
        // Gone, or no longer speaking the extension: nobody to ask.
        None => k.introducer = None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_a_flood_and_refills_with_the_window() {
        let mut b = Budget::new();
        for _ in 0..HOLEPUNCH_BUDGET {
            assert!(b.take());
        }
        assert!(!b.take());
        b.since -= HOLEPUNCH_WINDOW;
        assert!(b.take());
    }
}
