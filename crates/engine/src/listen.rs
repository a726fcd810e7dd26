//! The session's listening sockets: the TCP listener and the uTP socket on the same port number,
//! the tasks that take their connections ([`accept_loop`], [`utp_accept_loop`]), and moving both
//! to another port while the session runs ([`Session::set_listen_port`]: a VPN that forwards a
//! new port, `transmission-remote -p`).
//!
//! Invariants:
//! - `port` is the port of the TCP listener whose accept loop runs, and the port announced
//!   (trackers, the DHT, local discovery, the extension handshake's `p`). It changes only once the
//!   new listener is bound, so a port that cannot be taken changes nothing.
//! - The accept loops of the old port end when its token (`accepting`) is cancelled. Connections
//!   already made go on: over TCP by themselves, over uTP through the old socket, which stays open
//!   in `retired` (the [`RETIRED`] latest; an older one is closed) until the session stops.
//! - Switches run one at a time (`switching`); the locks inside are taken alone.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use btorrent_proto::addr::pair_candidates;

use super::error::{EngineError, Result};
use super::session::{admit, Session};
use super::transport::{RawStream, UtpNode};

/// Old uTP sockets kept open for the connections made over them.
const RETIRED: usize = 4;

/// Where the session listens; see the module doc.
pub(crate) struct Listening {
    ip: IpAddr,
    port: AtomicU16,
    /// The uTP socket of the current port; `None` when its UDP port was taken.
    utp: RwLock<Option<Arc<UtpNode>>>,
    retired: Mutex<Vec<Arc<UtpNode>>>,
    /// Ends the accept loops of the current port.
    accepting: Mutex<CancellationToken>,
    /// How many times the port moved: each torrent's announcer announces at once when it changes,
    /// `min interval` or not (peers the trackers sent to the old port find nobody).
    moves: AtomicU64,
    switching: tokio::sync::Mutex<()>,
}

impl Listening {
    /// Binds the TCP listener on `addr` and the uTP socket on the port it got; the listener is
    /// handed to [`Listening::accept`].
    pub async fn bind(
        addr: SocketAddr,
        shutdown: &CancellationToken,
    ) -> Result<(Self, TcpListener)> {
        let (listener, bound, utp) = bind_both(addr).await?;
        let listening = Listening {
            ip: bound.ip(),
            port: AtomicU16::new(bound.port()),
            utp: RwLock::new(utp),
            retired: Mutex::new(Vec::new()),
            accepting: Mutex::new(shutdown.child_token()),
            moves: AtomicU64::new(0),
            switching: tokio::sync::Mutex::new(()),
        };
        Ok((listening, listener))
    }

    /// The address listened on.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port.load(Ordering::Relaxed))
    }

    /// How many times the port moved.
    pub fn moves(&self) -> u64 {
        self.moves.load(Ordering::Relaxed)
    }

    /// The uTP socket of the current port, if it has one.
    pub fn utp(&self) -> Option<Arc<UtpNode>> {
        self.utp.read().clone()
    }

    /// Starts taking the connections of `listener` and of the current uTP socket, until the
    /// current port's token is cancelled.
    pub fn accept(&self, session: &Session, listener: TcpListener) {
        let stop = self.accepting.lock().clone();
        tokio::spawn(accept_loop(session.clone(), listener, stop.clone()));
        if let Some(node) = self.utp() {
            tokio::spawn(utp_accept_loop(session.clone(), node, stop));
        }
    }

    /// Closes every uTP socket (the session stops).
    pub fn close_utp(&self) {
        if let Some(node) = self.utp() {
            node.close();
        }
        for node in self.retired.lock().iter() {
            node.close();
        }
    }
}

/// The TCP listener on `addr`, the address it got, and a uTP socket on the same port number
/// (`None`, logged, when that UDP port is taken). When any port will do, the port the system
/// gives TCP may be one whose UDP port another program holds: another is taken then
/// ([`pair_candidates`]), so that peers reach us over both.
pub(crate) async fn bind_both(
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr, Option<Arc<UtpNode>>)> {
    bind_first_free(&pair_candidates(addr)).await
}

/// [`bind_both`] on each of `candidates` in turn, until one has its UDP port free too; the last
/// is kept whatever its UDP port (an error binding TCP ends the tries).
async fn bind_first_free(
    candidates: &[SocketAddr],
) -> Result<(TcpListener, SocketAddr, Option<Arc<UtpNode>>)> {
    for (i, &addr) in candidates.iter().enumerate() {
        let cannot_listen = |e| EngineError::Listen {
            addr,
            error: Arc::new(e),
        };
        let listener = tcp_listener(addr).map_err(cannot_listen)?;
        let bound = listener.local_addr().map_err(cannot_listen)?;
        // Bound whatever the policy, so it can be turned on while the session runs; the DHT node
        // then takes the next port number (see `transport`).
        match UtpNode::try_bind(bound).await {
            Ok(node) => return Ok((listener, bound, Some(Arc::new(node)))),
            Err(e) if i + 1 < candidates.len() => {
                tracing::debug!(%bound, "UDP port taken ({e}); trying another port");
            }
            Err(e) => {
                tracing::warn!(%bound, "uTP cannot listen ({e}); peers are reached over TCP only");
                return Ok((listener, bound, None));
            }
        }
    }
    unreachable!("bind_both gives at least one candidate")
}

/// Connections waiting to be accepted.
const BACKLOG: i32 = 1024;

/// A TCP listener on `addr`. On `::` it takes IPv4 as well (`IPV6_V6ONLY` off), whatever the
/// system's default (`net.ipv6.bindv6only`), so a peer on `::` is reached over both families.
fn tcp_listener(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if matches!(addr, SocketAddr::V6(a) if a.ip().is_unspecified()) {
        s.set_only_v6(false)?;
    }
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(BACKLOG)?;
    TcpListener::from_std(s.into())
}

impl Session {
    /// Moves the peer listener and the uTP socket to `port` (0: an ephemeral one) while the
    /// session runs, and returns the port taken. Connections already made stay; every torrent
    /// announces the new port to its trackers at once, the DHT and local discovery with their next
    /// announces (which come at once too). A port that cannot be bound changes nothing
    /// ([`EngineError::Listen`]).
    pub async fn set_listen_port(&self, port: u16) -> Result<u16> {
        let ctx = self.ctx();
        let l = &ctx.listening;
        let _one = l.switching.lock().await;
        if port != 0 && port == l.addr().port() {
            return Ok(port);
        }
        let (listener, bound, utp) = bind_both(SocketAddr::new(l.ip, port)).await?;
        let old = std::mem::replace(&mut *l.accepting.lock(), ctx.shutdown.child_token());
        old.cancel();
        let old_utp = std::mem::replace(&mut *l.utp.write(), utp);
        if let Some(node) = old_utp {
            let mut retired = l.retired.lock();
            retired.push(node);
            if retired.len() > RETIRED {
                retired.remove(0).close();
            }
        }
        l.port.store(bound.port(), Ordering::Relaxed);
        l.moves.fetch_add(1, Ordering::Relaxed);
        l.accept(self, listener);
        tracing::info!(listen_addr = %bound, "listening for peers on a new port");
        if let Some(lsd) = &ctx.lsd {
            lsd.set_port(bound.port());
        }
        if let Some(dht) = &ctx.dht {
            dht.announce_again();
        }
        Ok(bound.port())
    }
}

/// Takes incoming TCP connections until `stop`.
async fn accept_loop(session: Session, listener: TcpListener, stop: CancellationToken) {
    loop {
        let (stream, addr) = tokio::select! {
            _ = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(peer = %addr, "incoming connection lost: {e}");
            continue;
        }
        admit(&session, RawStream::tcp(stream), addr);
    }
}

/// Takes the uTP connections of `node` as [`accept_loop`] takes TCP ones (closed at once when the
/// policy is `Off`), until `stop`.
async fn utp_accept_loop(session: Session, node: Arc<UtpNode>, stop: CancellationToken) {
    loop {
        let (stream, addr) = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = node.accept() => match r {
                Ok(x) => x,
                // The socket closed by the shutdown.
                Err(_) if stop.is_cancelled() => return,
                Err(e) => {
                    tracing::warn!("uTP accept failed, uTP connections no longer taken: {e}");
                    return;
                }
            },
        };
        if session.utp() == super::Utp::Off {
            tracing::debug!(peer = %addr, "incoming uTP connection refused: uTP is off");
            continue;
        }
        admit(&session, RawStream::utp(stream), addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listener_on_the_unspecified_ipv6_address_takes_ipv4_too() {
        let Ok(l) = tcp_listener("[::]:0".parse().unwrap()) else {
            return; // no IPv6 on this machine
        };
        assert!(!socket2::SockRef::from(&l).only_v6().unwrap());
        let port = l.local_addr().unwrap().port();
        let dial = tokio::net::TcpStream::connect(("127.0.0.1", port));
        let (dialled, accepted) = tokio::join!(dial, l.accept());
        let (_, from) = accepted.unwrap();
        assert_eq!(
            from.ip().to_canonical(),
            dialled.unwrap().local_addr().unwrap().ip()
        );
        // A specific address stays what it is.
        let v4 = tcp_listener("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(v4.local_addr().unwrap().is_ipv4());
    }

    /// A port whose UDP number another program holds: when any port will do, the next one is
    /// taken and has uTP; when that port was asked for, it is kept, over TCP alone.
    #[tokio::test]
    async fn a_port_whose_udp_number_is_taken_is_passed_over_when_any_port_will_do() {
        let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let taken = held.local_addr().unwrap();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let candidates = [vec![taken], pair_candidates(any)].concat();
        let Ok((_l, bound, utp)) = bind_first_free(&candidates).await else {
            return; // TCP holds the port too (another program's): nothing to show here
        };
        assert_ne!(bound.port(), taken.port());
        assert!(utp.is_some(), "the port taken instead has uTP");
        if let Ok((_l, bound, utp)) = bind_first_free(&[taken]).await {
            assert_eq!(bound, taken);
            assert!(utp.is_none(), "UDP {taken} is held");
        }
        // The session's own choice of any port ends on one that has both.
        let (_l, bound, utp) = bind_both(any).await.unwrap();
        assert!(bound.port() != 0 && utp.is_some());
    }
}
