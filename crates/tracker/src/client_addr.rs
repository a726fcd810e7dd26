//! Which IP address an announcing peer gets listed under.
//!
//! 1. The TCP peer address, with `::ffff:a.b.c.d` mapped to the IPv4 address `a.b.c.d`.
//! 2. If that address is a configured trusted proxy, the right-most `X-Forwarded-For` entry that is not
//!    itself a trusted proxy (each proxy appends the address it saw, so entries further left were
//!    written by the client and prove nothing). From anyone else the header is ignored.
//! 3. The `ip=` parameter replaces the result according to [`IpParamPolicy`]: by default only when the
//!    request comes from an address on a local network, so a public tracker cannot be used to point a
//!    swarm at a victim, while a client on the tracker's own machine or LAN can say which of its
//!    addresses the others should dial. Under any policy an `ip=` nobody can be dialed at
//!    (unspecified, multicast, broadcast: [`is_dialable`]) is not believed, nor a loopback one from a
//!    client not itself on loopback: every other peer would dial its own machine.

use std::net::IpAddr;

use axum::http::HeaderMap;

/// When the `ip=` announce parameter is believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpParamPolicy {
    /// Never: peers are listed under the address they connect from.
    Ignore,
    /// Only from addresses on a local network ([`is_local_network`]: loopback, private, link-local,
    /// and the shared space of overlay networks).
    #[default]
    FromLocalNetworks,
    /// Always (a tracker only reachable by trusted machines).
    Always,
}

/// `::ffff:a.b.c.d` is `a.b.c.d`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

pub use btorrent_proto::addr::{is_dialable, is_local_network};

/// The address to list a peer under; see the module documentation for the rules.
pub(crate) fn peer_ip(
    remote: IpAddr,
    headers: &HeaderMap,
    ip_param: Option<IpAddr>,
    trusted_proxies: &[IpAddr],
    policy: IpParamPolicy,
) -> IpAddr {
    let remote = canonical(remote);
    let mut ip = remote;
    if !trusted_proxies.is_empty() && trusted_proxies.contains(&remote) {
        if let Some(forwarded) = forwarded_for(headers, trusted_proxies) {
            ip = forwarded;
        }
    }
    let believable =
        |p: IpAddr| is_dialable(p) && (!canonical(p).is_loopback() || ip.is_loopback());
    match (ip_param.filter(|&p| believable(p)), policy) {
        (Some(p), IpParamPolicy::Always) => canonical(p),
        (Some(p), IpParamPolicy::FromLocalNetworks) if is_local_network(ip) => canonical(p),
        _ => ip,
    }
}

/// The right-most `X-Forwarded-For` entry that is not a trusted proxy.
fn forwarded_for(headers: &HeaderMap, trusted: &[IpAddr]) -> Option<IpAddr> {
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for value in values.iter().rev() {
        for entry in value.rsplit(',') {
            let ip = canonical(entry.trim().parse::<IpAddr>().ok()?);
            if !trusted.contains(&ip) {
                return Some(ip);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn maps_v4_in_v6() {
        let got = peer_ip(
            ip("::ffff:10.1.2.3"),
            &HeaderMap::new(),
            None,
            &[],
            IpParamPolicy::Ignore,
        );
        assert_eq!(got, ip("10.1.2.3"));
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let h = headers(&["6.6.6.6, 8.8.4.4", "9.9.9.9"]);
        let proxy = ip("10.0.0.1");
        let policy = IpParamPolicy::Ignore;
        assert_eq!(
            peer_ip(ip("1.2.3.4"), &h, None, &[proxy], policy),
            ip("1.2.3.4")
        );
        assert_eq!(peer_ip(proxy, &h, None, &[proxy], policy), ip("9.9.9.9"));
        let chain = headers(&["6.6.6.6, 8.8.4.4, 10.0.0.2"]);
        assert_eq!(
            peer_ip(proxy, &chain, None, &[proxy, ip("10.0.0.2")], policy),
            ip("8.8.4.4")
        );
        assert_eq!(
            peer_ip(proxy, &headers(&["junk"]), None, &[proxy], policy),
            proxy
        );
        assert_eq!(
            peer_ip(proxy, &HeaderMap::new(), None, &[proxy], policy),
            proxy
        );
    }

    #[test]
    fn ip_parameter_policy() {
        let h = HeaderMap::new();
        let claimed = Some(ip("192.168.1.20"));
        use IpParamPolicy::*;
        assert_eq!(
            peer_ip(ip("127.0.0.1"), &h, claimed, &[], FromLocalNetworks),
            ip("192.168.1.20")
        );
        assert_eq!(
            peer_ip(ip("fd00::5"), &h, claimed, &[], FromLocalNetworks),
            ip("192.168.1.20")
        );
        assert_eq!(
            peer_ip(ip("8.8.8.8"), &h, claimed, &[], FromLocalNetworks),
            ip("8.8.8.8")
        );
        assert_eq!(
            peer_ip(ip("8.8.8.8"), &h, claimed, &[], Always),
            ip("192.168.1.20")
        );
        assert_eq!(
            peer_ip(ip("127.0.0.1"), &h, claimed, &[], Ignore),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn an_ip_parameter_nobody_can_dial_is_not_believed() {
        let h = HeaderMap::new();
        use IpParamPolicy::*;
        for policy in [FromLocalNetworks, Always] {
            for nobody in ["0.0.0.0", "224.0.0.1", "255.255.255.255", "::", "ff02::1"] {
                let claimed = Some(ip(nobody));
                assert_eq!(
                    peer_ip(ip("192.168.1.20"), &h, claimed, &[], policy),
                    ip("192.168.1.20"),
                    "{nobody}"
                );
            }
            // Loopback names the client's own machine only to a client there.
            let home = Some(ip("127.0.0.2"));
            assert_eq!(
                peer_ip(ip("192.168.1.20"), &h, home, &[], policy),
                ip("192.168.1.20")
            );
            assert_eq!(
                peer_ip(ip("127.0.0.1"), &h, home, &[], policy),
                ip("127.0.0.2")
            );
            assert_eq!(
                peer_ip(ip("::1"), &h, Some(ip("::1")), &[], policy),
                ip("::1")
            );
        }
    }
}
