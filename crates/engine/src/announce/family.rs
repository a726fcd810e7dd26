//! The address family a tracker is reached over (BEP 7).
//!
//! A tracker lists a peer under the address its announce came from. A session listening on both
//! IPv4 and IPv6 (`::`) therefore announces to a tracker named by a host name twice, once over
//! each family ([`super::TrackerClient::for_listen`]), as BEP 7 asks of a client with an address
//! of each: the tracker lists it under both, so peers that have only one of the two reach it. The
//! two answers are one announce to the torrent (`merge`): their peers together, the counts and
//! the interval of the IPv4 one when both came. A session listening on one family's address (or
//! on `0.0.0.0`) reaches trackers over that family only, so it is never listed at an address it
//! does not take connections on.
//!
//! The same holds of `udp://` trackers (BEP 15 over each family).
//!
//! [`FamilyResolver`] is the name lookup of a client that keeps to one family: the system's
//! addresses of that family, and for `localhost` (and names under `.localhost`) the family's
//! loopback address whatever the hosts file says (RFC 6761 §6.3), so a tracker on this machine is
//! reached over both families too. A name without an address of the family is
//! [`NoAddressOfFamily`], which is not retried: the other family answers for the tracker.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{AnnounceResponse, TrackerError};

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of `ip` (`::ffff:a.b.c.d` is IPv4).
    pub fn of(ip: IpAddr) -> Family {
        match ip.to_canonical() {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    fn loopback(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Family::V6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// How long an announce over IPv4 that has its answer waits for the one over IPv6 before it
/// goes on without its peers (the request itself goes on, so the tracker still lists us).
pub const SECOND_FAMILY_WAIT: Duration = Duration::from_secs(2);

/// A tracker's name has no address of the family asked for.
#[derive(Debug, thiserror::Error)]
#[error("{host} has no {} address", family.name())]
pub struct NoAddressOfFamily {
    pub host: String,
    pub family: Family,
}

/// Name lookup that keeps the addresses of one family; see the module doc.
#[derive(Debug, Clone, Copy)]
pub struct FamilyResolver {
    pub family: Family,
}

/// `localhost`, `localhost.`, or a name under it (RFC 6761 §6.3).
fn is_localhost(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

impl FamilyResolver {
    /// The addresses of `host` in this resolver's family (port 0: the URL's port is put in later).
    pub async fn lookup(self, host: &str) -> Result<Vec<SocketAddr>, std::io::Error> {
        if is_localhost(host) {
            return Ok(vec![SocketAddr::new(self.family.loopback(), 0)]);
        }
        let found = tokio::net::lookup_host((host, 0)).await?;
        let kept: Vec<SocketAddr> = found
            .map(|a| SocketAddr::new(a.ip().to_canonical(), 0))
            .filter(|a| Family::of(a.ip()) == self.family)
            .collect();
        if kept.is_empty() {
            return Err(std::io::Error::other(NoAddressOfFamily {
                host: host.to_string(),
                family: self.family,
            }));
        }
        Ok(kept)
    }
}

impl Resolve for FamilyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = *self;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = this.lookup(&host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether `e` (a reqwest error, or anything it wraps) says the tracker cannot be reached over the
/// family at all: its name has no address of it, or this machine has no route to the address (no
/// IPv6 connectivity, say: the failure is there again at once, so it is not retried within the
/// call, and the other family answers).
pub(super) fn is_no_address(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut at: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = at {
        if err.is::<NoAddressOfFamily>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            let no_route = matches!(
                io.kind(),
                std::io::ErrorKind::NetworkUnreachable
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::AddrNotAvailable
            );
            if no_route
                || io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<NoAddressOfFamily>())
            {
                return true;
            }
        }
        at = err.source();
    }
    false
}

/// The announce of a dual-stack client: `over4` and `over6` at once, the answers merged
/// ([`merge`]). An answer over IPv4 waits [`SECOND_FAMILY_WAIT`] at most for the one over IPv6; a
/// failure waits for it in full. `over6` is spawned, so the tracker hears it even when its answer
/// comes too late to be used.
pub(super) async fn over_both(
    over4: impl std::future::Future<Output = Result<AnnounceResponse, TrackerError>>,
    over6: impl std::future::Future<Output = Result<AnnounceResponse, TrackerError>> + Send + 'static,
) -> Result<AnnounceResponse, TrackerError> {
    let mut over6 = tokio::spawn(over6);
    let over4 = over4.await;
    let over6 = if over4.is_ok() {
        tokio::time::timeout(SECOND_FAMILY_WAIT, &mut over6)
            .await
            .ok()
    } else {
        Some((&mut over6).await)
    };
    merge(over4, over6.and_then(Result::ok))
}

/// One announce from the answers over IPv4 (`v4`) and IPv6 (`v6`, `None` when it did not come in
/// time): the peers of both (each once), the other fields of the IPv4 answer when both came (a
/// tracker's counts of one swarm are the same over either). Both failing is the IPv4 failure,
/// unless the name had no IPv4 address.
pub(super) fn merge(
    v4: Result<AnnounceResponse, TrackerError>,
    v6: Option<Result<AnnounceResponse, TrackerError>>,
) -> Result<AnnounceResponse, TrackerError> {
    match (v4, v6) {
        (Ok(mut a), Some(Ok(b))) => {
            for p in b.peers {
                if !a.peers.contains(&p) {
                    a.peers.push(p);
                }
            }
            a.warning = a.warning.or(b.warning);
            Ok(a)
        }
        (Ok(a), _) => Ok(a),
        (Err(_), Some(Ok(b))) => Ok(b),
        (Err(e4), Some(Err(e6))) if e4.is_no_address() => Err(e6),
        (Err(e4), _) => Err(e4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(peers: &[&str], complete: u64) -> AnnounceResponse {
        AnnounceResponse {
            interval: Duration::from_secs(60),
            min_interval: None,
            complete: Some(complete),
            incomplete: Some(0),
            downloaded: None,
            downloaders: None,
            peers: peers.iter().map(|p| p.parse().unwrap()).collect(),
            warning: None,
        }
    }

    fn failed(detail: &str) -> TrackerError {
        TrackerError::Transport {
            url: "http://t.example/announce".into(),
            detail: detail.into(),
            timed_out: false,
        }
    }

    #[tokio::test]
    async fn localhost_is_the_loopback_address_of_each_family() {
        for (host, family, ip) in [
            ("localhost", Family::V4, "127.0.0.1"),
            ("LocalHost.", Family::V6, "::1"),
            ("tracker.localhost", Family::V6, "::1"),
        ] {
            let found = FamilyResolver { family }.lookup(host).await.unwrap();
            assert_eq!(found, vec![SocketAddr::new(ip.parse().unwrap(), 0)]);
        }
        let literal = FamilyResolver { family: Family::V6 }
            .lookup("127.0.0.1")
            .await;
        let err = literal.unwrap_err();
        assert!(is_no_address(&err), "{err}");
        assert_eq!(err.to_string(), "127.0.0.1 has no IPv6 address");
        assert_eq!(Family::of("::ffff:10.0.0.1".parse().unwrap()), Family::V4);
        // No route to the address: the same as no address of the family.
        for kind in [
            std::io::ErrorKind::NetworkUnreachable,
            std::io::ErrorKind::HostUnreachable,
        ] {
            let e = std::io::Error::new(kind, "no route");
            assert!(is_no_address(&e), "{kind:?}");
        }
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(!is_no_address(&refused));
    }

    #[test]
    fn the_two_answers_are_one_announce() {
        let both = merge(
            Ok(answer(&["10.0.0.1:1", "10.0.0.2:2"], 3)),
            Some(Ok(answer(&["[fd00::1]:1", "10.0.0.2:2"], 9))),
        )
        .unwrap();
        let peers: Vec<String> = both.peers.iter().map(|p| p.to_string()).collect();
        assert_eq!(peers, ["10.0.0.1:1", "10.0.0.2:2", "[fd00::1]:1"]);
        assert_eq!(both.complete, Some(3));

        assert_eq!(merge(Ok(answer(&[], 1)), None).unwrap().complete, Some(1));
        let only6 = merge(Err(failed("refused")), Some(Ok(answer(&[], 7))));
        assert_eq!(only6.unwrap().complete, Some(7));
        let err = merge(Err(failed("refused")), Some(Err(failed("reset")))).unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        let err = merge(Err(failed("refused")), None).unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        // A name without an IPv4 address: the failure over IPv6 is the one that says something.
        let none4 = TrackerError::NoAddress {
            url: "http://t.example/announce".into(),
            detail: "t.example has no IPv4 address".into(),
        };
        let err = merge(Err(none4), Some(Err(failed("reset")))).unwrap_err();
        assert!(err.to_string().contains("reset"), "{err}");
    }
}
