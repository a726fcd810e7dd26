//! The tracker's sockets: a TCP listener (HTTP) and a UDP socket (BEP 15) on one address and port,
//! as opentracker serves them.
//!
//! Bound to `[::]`, each takes IPv4 as well as IPv6 (`IPV6_V6ONLY` off, whatever the system's
//! default), so one tracker serves both families and lists each client under the address it came
//! from (an IPv4 client's `::ffff:a.b.c.d` is mapped back, see `client_addr`). On a machine
//! without IPv6 (the family missing, or no address to bind) `[::]` falls back to `0.0.0.0` at the
//! same port, which [`Bound::fell_back`] says.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use btorrent_proto::addr::pair_candidates;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};

/// Connections waiting to be accepted.
const BACKLOG: i32 = 1024;

/// The tracker's two sockets.
pub struct Bound {
    pub tcp: TcpListener,
    pub udp: UdpSocket,
    /// `[::]` could not be bound (no IPv6 here): IPv4 alone, on `0.0.0.0`.
    pub fell_back: bool,
}

/// Binds the TCP listener and the UDP socket on `addr` (port 0: one free for both); see the
/// module doc for `[::]`. The error names what could not be bound.
pub fn bind(addr: SocketAddr) -> io::Result<Bound> {
    let dual = matches!(addr, SocketAddr::V6(a) if a.ip().is_unspecified());
    match bind_both(addr, dual) {
        Err(e) if dual && no_ipv6(&e) => {
            let v4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
            let (tcp, udp) = bind_both(v4, false)?;
            Ok(Bound {
                tcp,
                udp,
                fell_back: true,
            })
        }
        Err(e) => Err(e),
        Ok((tcp, udp)) => Ok(Bound {
            tcp,
            udp,
            fell_back: false,
        }),
    }
}

/// The family is not there, or the address cannot be had.
fn no_ipv6(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
    )
}

/// Both sockets on `addr`. Port 0: the port the system gives TCP may be one whose UDP number
/// another program holds; another is taken then ([`pair_candidates`]).
fn bind_both(addr: SocketAddr, dual: bool) -> io::Result<(TcpListener, UdpSocket)> {
    first_free(&pair_candidates(addr), dual)
}

/// [`bind_pair`] on each of `candidates` in turn while the port is in use; the last one's error.
fn first_free(candidates: &[SocketAddr], dual: bool) -> io::Result<(TcpListener, UdpSocket)> {
    let mut last = io::Error::other("no address to bind");
    for &addr in candidates {
        match bind_pair(addr, dual) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            r => return r,
        }
    }
    Err(last)
}

fn bind_pair(addr: SocketAddr, dual: bool) -> io::Result<(TcpListener, UdpSocket)> {
    let tcp = socket(addr, Type::STREAM, Protocol::TCP, dual)?;
    tcp.set_reuse_address(true)?;
    tcp.bind(&addr.into())?;
    tcp.listen(BACKLOG)?;
    let bound: SocketAddr = tcp
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an IP socket"))?;
    // BEP 15 on the same port, so port 0 gives both one number.
    let udp = socket(bound, Type::DGRAM, Protocol::UDP, dual)?;
    udp.bind(&bound.into())
        .map_err(|e| io::Error::new(e.kind(), format!("UDP port {}: {e}", bound.port())))?;
    Ok((
        TcpListener::from_std(tcp.into())?,
        UdpSocket::from_std(udp.into())?,
    ))
}

fn socket(addr: SocketAddr, ty: Type, proto: Protocol, dual: bool) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if dual {
        s.set_only_v6(false)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn one_tracker_on_every_address_takes_both_families() {
        let b = bind("[::]:0".parse().unwrap()).unwrap();
        let port = b.tcp.local_addr().unwrap().port();
        assert_eq!(b.udp.local_addr().unwrap().port(), port);
        let families: &[&str] = if b.fell_back {
            &["127.0.0.1"]
        } else {
            &["127.0.0.1", "::1"]
        };
        for ip in families {
            let to = SocketAddr::new(ip.parse().unwrap(), port);
            let mut c = tokio::net::TcpStream::connect(to).await.unwrap();
            let (mut s, from) = b.tcp.accept().await.unwrap();
            assert_eq!(from.ip().to_canonical(), to.ip(), "{ip}");
            c.write_all(b"x").await.unwrap();
            let mut one = [0u8; 1];
            s.read_exact(&mut one).await.unwrap();

            let u = UdpSocket::bind(SocketAddr::new(to.ip(), 0)).await.unwrap();
            u.send_to(b"y", to).await.unwrap();
            let (_, from) = b.udp.recv_from(&mut one).await.unwrap();
            assert_eq!(from.ip().to_canonical(), to.ip(), "{ip} over UDP");
        }
        // One address: that family alone.
        let b = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert!(!b.fell_back);
        assert!(b.tcp.local_addr().unwrap().is_ipv4());
    }

    /// A port whose UDP number another program holds: passed over when any port will do,
    /// refused (naming it) when it was asked for.
    #[tokio::test]
    async fn a_port_whose_udp_number_is_taken_is_passed_over_when_any_port_will_do() {
        let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let taken = held.local_addr().unwrap();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        let (tcp, udp) = first_free(&[vec![taken], pair_candidates(any)].concat(), false).unwrap();
        let port = tcp.local_addr().unwrap().port();
        assert_ne!(port, taken.port());
        assert_eq!(udp.local_addr().unwrap().port(), port);
        if std::net::TcpListener::bind(taken).is_err() {
            return; // another program holds its TCP number too: only that error could show
        }
        match first_free(&[taken], false) {
            Err(e) => assert!(
                e.to_string()
                    .contains(&format!("UDP port {}", taken.port())),
                "{e}"
            ),
            Ok(_) => panic!("UDP {taken} is held, yet bound"),
        }
    }
}
