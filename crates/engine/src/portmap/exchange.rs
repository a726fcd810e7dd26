//! The request-and-reply exchange NAT-PMP and PCP share (RFC 6886 3.1, RFC 6887 8.1.1): one
//! UDP request to the gateway's port 5351, sent again after 250 ms, 500 ms, 1 s and 2 s while
//! nothing answers, heard only from the gateway's own address and port.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

/// The first wait for an answer; each retry doubles it (four tries: 3.75 s in all before the
/// gateway is taken as not speaking the protocol).
const FIRST_WAIT: Duration = Duration::from_millis(250);
const TRIES: u32 = 4;

/// How an exchange can fail, before the protocol's own reading of a reply.
pub(super) enum Failure<E> {
    /// No reply `parse` took, or the gateway's port is closed (ICMP).
    NoAnswer,
    Io(std::io::Error),
    /// `parse` refused a reply.
    Refused(E),
}

/// Sends `request` from `local` (an address of ours, port 0: any) to `gateway` and returns the
/// first reply `parse` takes (`Ok(Some)`); a reply it passes over (`Ok(None)`) is a stray one.
pub(super) async fn ask<T, E>(
    local: SocketAddr,
    gateway: SocketAddr,
    request: &[u8],
    parse: impl Fn(&[u8]) -> Result<Option<T>, E>,
) -> Result<T, Failure<E>> {
    let sock = UdpSocket::bind(local).await.map_err(Failure::Io)?;
    // Connected: only the gateway's address and port are heard, and a gateway with nothing on
    // the port answers with ICMP, which ends the wait at once.
    sock.connect(gateway).await.map_err(Failure::Io)?;
    // PCP replies may be up to 1100 bytes (RFC 6887 7).
    let mut buf = [0u8; 1100];
    let mut wait = FIRST_WAIT;
    for _ in 0..TRIES {
        sock.send(request).await.map_err(Failure::Io)?;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err(Failure::NoAnswer);
                }
                Ok(Err(e)) => return Err(Failure::Io(e)),
                Ok(Ok(n)) => match parse(&buf[..n]) {
                    Ok(Some(v)) => return Ok(v),
                    Ok(None) => {}
                    Err(e) => return Err(Failure::Refused(e)),
                },
            }
        }
        wait *= 2;
    }
    Err(Failure::NoAnswer)
}
