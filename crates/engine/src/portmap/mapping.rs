//! How ports are forwarded at each kind of gateway, and let go of: NAT-PMP, else UPnP IGD, for
//! IPv4 ([`PortMapper::map`]); PCP pinholes for IPv6 ([`PortMapper::map_pinholes`]). Each way
//! answers with what it now holds (a [`Held`], which deletes itself with [`Held::release`]), the
//! status to show and when to renew. When to ask, and what to ask for, is the task's in the
//! module above.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use super::{
    default_gateway, natpmp, pcp, route, upnp, ForwardState, Forwarded, PortForwarding, PortMapper,
    Protocol,
};

/// The lifetime asked of a NAT-PMP mapping (RFC 6886's recommendation).
const NATPMP_LIFETIME: u32 = 7200;

/// The lifetime asked of a PCP pinhole (as of a NAT-PMP mapping).
const PCP_LIFETIME: u32 = 7200;

/// The mappings held, by the way they were made.
#[derive(Clone)]
pub(super) enum Held {
    NatPmp {
        gateway: SocketAddrV4,
        ports: Vec<Forwarded>,
    },
    Upnp {
        igd: upnp::Igd,
        ports: Vec<Forwarded>,
    },
    /// IPv6 pinholes for `client`, each with the nonce that names it to the gateway.
    Pcp {
        gateway: SocketAddr,
        client: Ipv6Addr,
        holes: Vec<(Forwarded, pcp::Nonce)>,
    },
}

impl Held {
    /// The mappings of `self` that `now` (what a renewal of `self` gave, if anything) no longer
    /// holds: ports the gateway refused this time, or all of them when the renewal failed or was
    /// made another way. The gateway would keep them to the end of their lease; they are to be
    /// deleted. A mapping is named as its gateway deletes it: by our port for NAT-PMP and PCP
    /// (a renewal that moved the port outside replaced it), by the port outside for UPnP.
    pub(super) fn lost_in(&self, now: Option<&Held>) -> Option<Held> {
        let kept = match now {
            Some(now) if now.same_gateway(self) => now.names(),
            _ => Vec::new(),
        };
        let mut lost = self.clone();
        let named = |f: &Forwarded, by_outside: bool| {
            (f.protocol, if by_outside { f.external } else { f.internal })
        };
        let gone = |f: &Forwarded, by_outside| !kept.contains(&named(f, by_outside));
        let left = match &mut lost {
            Held::NatPmp { ports, .. } => {
                ports.retain(|f| gone(f, false));
                ports.len()
            }
            Held::Upnp { ports, .. } => {
                ports.retain(|f| gone(f, true));
                ports.len()
            }
            Held::Pcp { holes, .. } => {
                holes.retain(|(f, _)| gone(f, false));
                holes.len()
            }
        };
        (left > 0).then_some(lost)
    }

    /// Whether `other` was made at the same gateway, the same way (for the same address).
    fn same_gateway(&self, other: &Held) -> bool {
        match (self, other) {
            (Held::NatPmp { gateway: a, .. }, Held::NatPmp { gateway: b, .. }) => a == b,
            (Held::Upnp { igd: a, .. }, Held::Upnp { igd: b, .. }) => a.addr() == b.addr(),
            (
                Held::Pcp {
                    gateway: a,
                    client: x,
                    ..
                },
                Held::Pcp {
                    gateway: b,
                    client: y,
                    ..
                },
            ) => a == b && x == y,
            _ => false,
        }
    }

    /// Each mapping as its gateway names it (see [`Held::lost_in`]).
    fn names(&self) -> Vec<(Protocol, u16)> {
        match self {
            Held::NatPmp { ports, .. } => ports.iter().map(|f| (f.protocol, f.internal)).collect(),
            Held::Upnp { ports, .. } => ports.iter().map(|f| (f.protocol, f.external)).collect(),
            Held::Pcp { holes, .. } => holes
                .iter()
                .map(|(f, _)| (f.protocol, f.internal))
                .collect(),
        }
    }

    /// Deletes every mapping (failures only logged: the gateway drops them when their lease ends).
    pub(super) async fn release(self) {
        match self {
            Held::NatPmp { gateway, ports } => {
                for p in ports {
                    if let Err(e) = natpmp::unmap(gateway, p.protocol, p.internal).await {
                        tracing::debug!("port forwarding: {} {}: {e}", p.protocol, p.internal);
                    }
                }
            }
            Held::Upnp { igd, ports } => {
                for p in ports {
                    if let Err(e) = igd.unmap(p.protocol, p.external).await {
                        tracing::debug!("port forwarding: {} {}: {e}", p.protocol, p.external);
                    }
                }
            }
            Held::Pcp {
                gateway,
                client,
                holes,
            } => {
                for (p, nonce) in holes {
                    let client = IpAddr::V6(client);
                    if let Err(e) =
                        pcp::unmap(gateway, client, &nonce, p.protocol, p.internal).await
                    {
                        tracing::debug!("IPv6 pinholes: {} {}: {e}", p.protocol, p.internal);
                    }
                }
            }
        }
    }
}

impl PortMapper {
    /// Maps `wanted` (renewing `previous`, made for the same ports): by NAT-PMP where a gateway
    /// answers it, else by UPnP. The mappings, the status and when to renew; or the status that
    /// says why nothing is forwarded.
    pub(super) async fn map(
        &self,
        wanted: &[(Protocol, u16)],
        previous: Option<Held>,
    ) -> Result<(Held, PortForwarding, Duration), PortForwarding> {
        let mut why = Vec::new();
        let natpmp_gateway = self.gateway.or_else(default_gateway);
        let try_natpmp = !matches!(previous, Some(Held::Upnp { .. }));
        if let (Some(gw), true) = (natpmp_gateway, try_natpmp) {
            let gateway = SocketAddrV4::new(gw, natpmp::PORT);
            let before = match &previous {
                Some(Held::NatPmp { ports, .. }) => ports.as_slice(),
                _ => &[],
            };
            match self.map_natpmp(gateway, wanted, before).await {
                Ok(r) => return Ok(r),
                Err(e) => why.push(e),
            }
        }
        let (igd, before) = match previous {
            Some(Held::Upnp { igd, ports }) => (Ok(igd), ports),
            _ => (
                upnp::Igd::search(self.gateway.map(IpAddr::V4)).await,
                Vec::new(),
            ),
        };
        match igd {
            Ok(igd) => match self.map_upnp(igd, wanted, &before).await {
                Ok(r) => return Ok(r),
                Err(e) => why.push(e),
            },
            Err(e) => why.push(e),
        }
        Err(PortForwarding {
            on: true,
            state: ForwardState::Failed,
            gateway: natpmp_gateway.map(IpAddr::V4),
            error: Some(why.join("; ")),
            ..PortForwarding::off()
        })
    }

    /// Maps `wanted` at `gateway`; a renewal suggests the ports outside given `before`.
    async fn map_natpmp(
        &self,
        gateway: SocketAddrV4,
        wanted: &[(Protocol, u16)],
        before: &[Forwarded],
    ) -> Result<(Held, PortForwarding, Duration), String> {
        let mut ports = Vec::new();
        let mut lifetime = NATPMP_LIFETIME;
        let mut refused = Vec::new();
        for &(protocol, port) in wanted {
            let external = outside_before(before, protocol, port);
            match natpmp::map(gateway, protocol, port, external, NATPMP_LIFETIME).await {
                Ok(g) => {
                    lifetime = lifetime.min(g.lifetime.max(2));
                    ports.push(Forwarded {
                        protocol,
                        internal: port,
                        external: g.external,
                    });
                }
                // No answer at all: the gateway does not speak NAT-PMP.
                Err(e @ natpmp::NatPmpError::NoAnswer(_)) if ports.is_empty() => {
                    return Err(e.to_string())
                }
                Err(e) => refused.push(format!("{protocol} {port}: {e}")),
            }
        }
        if ports.is_empty() {
            return Err(refused.join("; "));
        }
        let external_ip = natpmp::external_address(gateway).await.ok().map(IpAddr::V4);
        let at = IpAddr::V4(*gateway.ip());
        let status = PortForwarding::forwarded("NAT-PMP", at, external_ip, ports.clone(), &refused);
        let renew_in = Duration::from_secs(u64::from(lifetime) / 2);
        Ok((Held::NatPmp { gateway, ports }, status, renew_in))
    }

    /// Maps `wanted` at `igd`; a renewal asks for the ports outside given `before`.
    async fn map_upnp(
        &self,
        mut igd: upnp::Igd,
        wanted: &[(Protocol, u16)],
        before: &[Forwarded],
    ) -> Result<(Held, PortForwarding, Duration), String> {
        if let Some(ip) = self.listen_ip {
            igd.local = ip;
        }
        let mut ports = Vec::new();
        let mut refused = Vec::new();
        for &(protocol, port) in wanted {
            let external = outside_before(before, protocol, port);
            match igd.map(protocol, port, external).await {
                Ok(external) => ports.push(Forwarded {
                    protocol,
                    internal: port,
                    external,
                }),
                Err(e) => refused.push(format!("{protocol} {port}: {e}")),
            }
        }
        let gateway = igd.addr();
        if ports.is_empty() {
            return Err(format!("UPnP gateway at {gateway}: {}", refused.join("; ")));
        }
        let external_ip = igd.external_ip().await;
        let status =
            PortForwarding::forwarded("UPnP", gateway.ip(), external_ip, ports.clone(), &refused);
        // A permanent mapping is still asked for again now and then: a gateway that restarted
        // has forgotten it.
        let renew_in = Duration::from_secs(
            u64::from(if igd.lease == 0 {
                upnp::LEASE
            } else {
                igd.lease
            }) / 2,
        );
        Ok((Held::Upnp { igd, ports }, status, renew_in))
    }

    /// The global IPv6 address pinholes open to: the session's own when it listens on one, else
    /// the one the kernel sends from now (a temporary address where privacy extensions are on).
    pub(super) fn pinhole_address(&self) -> Option<Ipv6Addr> {
        match self.listen_ip {
            Some(IpAddr::V6(ip)) => Some(ip),
            _ => route::global_source6(),
        }
        .filter(route::is_global6)
    }

    /// Opens `wanted` in the IPv6 firewall of the gateway of the IPv6 default route for
    /// `address` (ours, [`PortMapper::pinhole_address`]), by PCP; a renewal (`previous`, held for
    /// the same address) asks the same gateway, each pinhole with its nonce. The pinholes, the
    /// status and when to renew; or the status that says why none is open (state `Off` when there
    /// is nothing to open).
    pub(super) async fn map_pinholes(
        &self,
        wanted: &[(Protocol, u16)],
        address: Option<Ipv6Addr>,
        previous: Option<Held>,
    ) -> Result<(Held, PortForwarding, Duration), PortForwarding> {
        let none = |why: &str| PortForwarding {
            on: true,
            error: Some(why.into()),
            ..PortForwarding::off()
        };
        let Some(client) = address else {
            return Err(none("no global IPv6 address"));
        };
        let (gateway, before) = match previous {
            Some(Held::Pcp { gateway, holes, .. }) => (gateway, holes),
            _ => {
                let Some(gateway) = route::default_gateway6(pcp::PORT) else {
                    return Err(none("no IPv6 default route"));
                };
                (SocketAddr::V6(gateway), Vec::new())
            }
        };
        let failed = |why: String| PortForwarding {
            on: true,
            state: ForwardState::Failed,
            gateway: Some(gateway.ip()),
            error: Some(why),
            ..PortForwarding::off()
        };
        let mut holes = Vec::new();
        let mut lifetime = PCP_LIFETIME;
        let mut refused = Vec::new();
        for &(protocol, port) in wanted {
            let nonce = before
                .iter()
                .find(|(f, _)| f.protocol == protocol && f.internal == port)
                .map_or_else(rand::random, |(_, n)| *n);
            let ip = IpAddr::V6(client);
            match pcp::map(gateway, ip, &nonce, protocol, port, PCP_LIFETIME).await {
                Ok(g) => {
                    lifetime = lifetime.min(g.lifetime.max(2));
                    let hole = Forwarded {
                        protocol,
                        internal: port,
                        external: g.external,
                    };
                    holes.push((hole, nonce));
                }
                // No answer at all: the gateway does not speak PCP.
                Err(e @ pcp::PcpError::NoAnswer(_)) if holes.is_empty() => {
                    return Err(failed(e.to_string()))
                }
                Err(e) => refused.push(format!("{protocol} {port}: {e}")),
            }
        }
        if holes.is_empty() {
            return Err(failed(refused.join("; ")));
        }
        let ports = holes.iter().map(|(f, _)| *f).collect();
        let client_ip = Some(IpAddr::V6(client));
        let status = PortForwarding::forwarded("PCP", gateway.ip(), client_ip, ports, &refused);
        let renew_in = Duration::from_secs(u64::from(lifetime) / 2);
        let held = Held::Pcp {
            gateway,
            client,
            holes,
        };
        Ok((held, status, renew_in))
    }
}

/// The port outside that `before` (the mappings being renewed) gave `port` of `protocol`, else the
/// same number.
fn outside_before(before: &[Forwarded], protocol: Protocol, port: u16) -> u16 {
    before
        .iter()
        .find(|f| f.protocol == protocol && f.internal == port)
        .map_or(port, |f| f.external)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn natpmp(gateway: &str, ports: &[(Protocol, u16, u16)]) -> Held {
        Held::NatPmp {
            gateway: gateway.parse().unwrap(),
            ports: ports
                .iter()
                .map(|&(protocol, internal, external)| Forwarded {
                    protocol,
                    internal,
                    external,
                })
                .collect(),
        }
    }

    fn ports(h: Option<Held>) -> Vec<(Protocol, u16)> {
        h.map(|h| h.names()).unwrap_or_default()
    }

    /// What a renewal no longer holds: the refused port; nothing when all were kept (a port
    /// outside moved by the gateway is the same NAT-PMP mapping); all when it failed or another
    /// gateway answered.
    #[test]
    fn a_renewal_loses_what_it_no_longer_holds() {
        let gw = "192.0.2.1:5351";
        let before = natpmp(
            gw,
            &[(Protocol::Tcp, 6881, 6881), (Protocol::Udp, 6881, 6881)],
        );
        let tcp_only = natpmp(gw, &[(Protocol::Tcp, 6881, 6881)]);
        assert_eq!(
            ports(before.lost_in(Some(&tcp_only))),
            [(Protocol::Udp, 6881)]
        );
        let moved = natpmp(
            gw,
            &[(Protocol::Tcp, 6881, 41000), (Protocol::Udp, 6881, 41000)],
        );
        assert!(before.lost_in(Some(&moved)).is_none());
        assert_eq!(ports(before.lost_in(None)).len(), 2);
        let elsewhere = natpmp("192.0.2.2:5351", &[(Protocol::Tcp, 6881, 6881)]);
        assert_eq!(ports(before.lost_in(Some(&elsewhere))).len(), 2);
    }
}
