//! What a peer connection rides on: TCP, or uTP (BEP 29, the `librqbit-utp` crate) on the UDP port
//! of the same number, and the session's [`Utp`] policy that decides when each is used.
//!
//! `RawStream` is either socket before any BitTorrent byte (its halves `RawRead`, `RawWrite`, as
//! one `Joined` stream); the halves are what [`super::peer_stream`] reads and writes, encrypted or
//! not. The session binds one
//! `UtpNode` beside its TCP listener (same IP, same port number: a peer learns one
//! port from a tracker, the DHT or PEX, and dials it over either). The DHT node therefore takes
//! the next port number by default ([`super::dht`]).
//!
//! Which transport a dial takes (`Utp::dial_over`): one per dial, so an address that answers on
//! neither costs one connect, not two. TCP by default (the faster here: the kernel's stack, no
//! per-packet user-space work), uTP under [`Utp::Prefer`]; then, per address, the one that worked
//! last, or the other one after a dial failed (so a peer that takes only uTP is reached on the
//! retry, and over uTP at once from then on).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use librqbit_utp::{UtpSocketUdp, UtpStream, UtpStreamReadHalf, UtpStreamWriteHalf};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// When uTP is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Utp {
    /// TCP only: no uTP dial, incoming uTP connections closed.
    Off,
    /// Incoming uTP taken; dials over TCP, over uTP after a TCP dial failed (and from then on, to
    /// an address where uTP worked).
    #[default]
    Allow,
    /// Dials over uTP, over TCP after a uTP dial failed; both taken.
    Prefer,
}

impl Utp {
    pub fn name(self) -> &'static str {
        match self {
            Utp::Off => "off",
            Utp::Allow => "allow",
            Utp::Prefer => "prefer",
        }
    }

    pub fn parse(s: &str) -> Option<Utp> {
        Some(match s {
            "off" | "false" => Utp::Off,
            "allow" | "on" | "true" => Utp::Allow,
            "prefer" => Utp::Prefer,
            _ => return None,
        })
    }

    /// The transport of a dial under this policy, when the session has a uTP socket (`have_utp`):
    /// `learned` for the address (what worked last, or the other one after a failure), else the
    /// policy's own.
    pub(crate) fn dial_over(self, learned: Option<Transport>, have_utp: bool) -> Transport {
        match (self, learned) {
            _ if !have_utp => Transport::Tcp,
            (Utp::Off, _) => Transport::Tcp,
            (_, Some(t)) => t,
            (Utp::Allow, None) => Transport::Tcp,
            (Utp::Prefer, None) => Transport::Utp,
        }
    }

    /// What a dial over `used` teaches for the address's next one (`None`: nothing, with only one
    /// transport in play): `used` again when it `worked`, else the other one.
    pub(crate) fn learn(self, used: Transport, worked: bool, have_utp: bool) -> Option<Transport> {
        if self == Utp::Off || !have_utp {
            return None;
        }
        Some(if worked { used } else { used.other() })
    }
}

/// One of the two transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Tcp,
    Utp,
}

impl Transport {
    pub fn other(self) -> Transport {
        match self {
            Transport::Tcp => Transport::Utp,
            Transport::Utp => Transport::Tcp,
        }
    }
}

/// Bytes a uTP connection may have in flight each way: what the receiver advertises, and what
/// the sender keeps for retransmission. Neither is allocated up front: the receive queue holds
/// what arrived and was not read yet, the send buffer grows from the crate's 32 KiB as the
/// connection's rate asks. On loopback, 256 MiB: the crate's 1 MiB ran at about 60 MB/s, 2 MiB
/// at 100, 4 MiB at 110, and 8 MiB overran the UDP socket's buffer (losses, 17-40 MB/s).
const UTP_WINDOW: usize = 2 << 20;

/// The session's uTP socket, bound to the UDP port of the listener's number.
pub(crate) struct UtpNode {
    socket: Arc<UtpSocketUdp>,
    /// Ends the socket's tasks (the crate's socket lives as long as they do).
    stop: tokio_util::sync::CancellationToken,
}

impl UtpNode {
    /// Binds `addr` (the TCP listener's address, [`crate::listen`]), or says why it cannot.
    pub async fn try_bind(addr: SocketAddr) -> io::Result<UtpNode> {
        let stop = tokio_util::sync::CancellationToken::new();
        let opts = librqbit_utp::SocketOpts {
            cancellation_token: stop.clone(),
            // Each batch of the sender is written whole (gathered) and is due at once.
            disable_nagle: true,
            vsock_rx_bufsize_bytes: std::num::NonZeroUsize::new(UTP_WINDOW),
            vsock_tx_bufsize_bytes_max: std::num::NonZeroUsize::new(UTP_WINDOW),
            ..Default::default()
        };
        let socket = UtpSocketUdp::new_udp_with_opts(addr, opts, Default::default())
            .await
            .map_err(io::Error::other)?;
        tracing::info!(%addr, "uTP listening");
        Ok(UtpNode { socket, stop })
    }

    /// The next incoming uTP connection and its address (the socket's error, if it died).
    pub async fn accept(&self) -> io::Result<(UtpStream, SocketAddr)> {
        let s = self.socket.accept().await.map_err(io::Error::other)?;
        let addr = unmapped(s.remote_addr());
        Ok((s, addr))
    }

    /// Connects to `addr` within `timeout` (a uTP SYN to a closed port is never answered).
    pub async fn connect(&self, addr: SocketAddr, timeout: Duration) -> io::Result<UtpStream> {
        match tokio::time::timeout(timeout, self.socket.connect(addr)).await {
            Ok(r) => r.map_err(io::Error::other),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "uTP connect timed out",
            )),
        }
    }

    /// Closes the socket (its connections end).
    pub fn close(&self) {
        self.stop.cancel();
    }
}

/// An IPv4 address as such, not mapped into IPv6 (a dual-stack socket reports the latter).
fn unmapped(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => a,
        },
        v4 => v4,
    }
}

/// A reading half and a writing half used as one stream.
pub(crate) struct Joined<R, W> {
    pub rd: R,
    pub wr: W,
}

impl<R, W> Joined<R, W> {
    pub fn into_split(self) -> (R, W) {
        (self.rd, self.wr)
    }
}

impl<R: AsyncRead + Unpin, W: Unpin> AsyncRead for Joined<R, W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().rd).poll_read(cx, buf)
    }
}

impl<R: Unpin, W: AsyncWrite + Unpin> AsyncWrite for Joined<R, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().wr).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().wr).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().wr).poll_shutdown(cx)
    }
}

/// A connection to a peer, either transport: its two halves, joined for the handshakes.
pub(crate) type RawStream = Joined<RawRead, RawWrite>;

/// Its reading half.
pub(crate) enum RawRead {
    Tcp(OwnedReadHalf),
    Utp(UtpStreamReadHalf),
}

/// Its writing half. uTP's has no vectored write of its own: a batch of slices (a message's
/// header, then its block) is gathered into the buffer beside it and written at once, rather than
/// slice by slice (a packet per 13-byte header).
pub(crate) enum RawWrite {
    Tcp(OwnedWriteHalf),
    Utp(UtpStreamWriteHalf, Vec<u8>),
}

/// Most bytes one gathered uTP write takes.
const UTP_GATHER: usize = 64 * 1024;

impl RawStream {
    pub fn tcp(t: TcpStream) -> RawStream {
        let (r, w) = t.into_split();
        Joined {
            rd: RawRead::Tcp(r),
            wr: RawWrite::Tcp(w),
        }
    }

    pub fn utp(u: UtpStream) -> RawStream {
        let (r, w) = u.split();
        Joined {
            rd: RawRead::Utp(r),
            wr: RawWrite::Utp(w, Vec::new()),
        }
    }
}

impl RawRead {
    pub fn transport(&self) -> Transport {
        match self {
            RawRead::Tcp(_) => Transport::Tcp,
            RawRead::Utp(_) => Transport::Utp,
        }
    }
}

impl AsyncRead for RawRead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RawRead::Tcp(t) => Pin::new(t).poll_read(cx, buf),
            RawRead::Utp(u) => Pin::new(u).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for RawWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            RawWrite::Tcp(t) => Pin::new(t).poll_write(cx, buf),
            RawWrite::Utp(u, _) => Pin::new(u).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            RawWrite::Tcp(t) => Pin::new(t).poll_write_vectored(cx, bufs),
            RawWrite::Utp(u, gather) => {
                // Written from the start of `bufs` each time: what the stream takes is a prefix.
                gather.clear();
                for b in bufs {
                    let room = UTP_GATHER - gather.len();
                    gather.extend_from_slice(&b[..b.len().min(room)]);
                    if gather.len() == UTP_GATHER {
                        break;
                    }
                }
                Pin::new(u).poll_write(cx, gather)
            }
        }
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RawWrite::Tcp(t) => Pin::new(t).poll_flush(cx),
            // uTP sends what it was given by itself; its flush waits until the peer acknowledged
            // every byte, which would make each batch of the sender wait a round trip.
            RawWrite::Utp(..) => Poll::Ready(Ok(())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            RawWrite::Tcp(t) => Pin::new(t).poll_shutdown(cx),
            RawWrite::Utp(u, _) => Pin::new(u).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dial_takes_the_policy_s_transport_unless_the_address_taught_another() {
        use Transport::{Tcp, Utp as U};
        assert_eq!(Utp::Allow.dial_over(None, true), Tcp);
        assert_eq!(Utp::Allow.dial_over(Some(U), true), U);
        assert_eq!(Utp::Prefer.dial_over(None, true), U);
        assert_eq!(Utp::Prefer.dial_over(Some(Tcp), true), Tcp);
        assert_eq!(Utp::Off.dial_over(Some(U), true), Tcp);
        assert_eq!(Utp::Prefer.dial_over(Some(U), false), Tcp);
        assert_eq!(Tcp.other(), U);
        assert_eq!(Utp::Allow.learn(Tcp, false, true), Some(U));
        assert_eq!(Utp::Allow.learn(U, true, true), Some(U));
        assert_eq!(Utp::Prefer.learn(U, false, true), Some(Tcp));
        assert_eq!(Utp::Off.learn(Tcp, false, true), None);
        assert_eq!(Utp::Allow.learn(Tcp, false, false), None);
    }

    #[test]
    fn policy_names_round_trip() {
        for p in [Utp::Off, Utp::Allow, Utp::Prefer] {
            assert_eq!(Utp::parse(p.name()), Some(p));
        }
        assert_eq!(Utp::parse("true"), Some(Utp::Allow));
        assert_eq!(Utp::parse("sometimes"), None);
    }

    #[test]
    fn mapped_addresses_read_as_ipv4() {
        let m: SocketAddr = "[::ffff:198.18.0.7]:6881".parse().unwrap();
        assert_eq!(
            unmapped(m),
            "198.18.0.7:6881".parse::<SocketAddr>().unwrap()
        );
        let v6: SocketAddr = "[2001:db8::1]:6881".parse().unwrap();
        assert_eq!(unmapped(v6), v6);
    }
}
