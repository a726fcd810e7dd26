//! Port forwarding: the session asks the home router (the gateway) to forward its peer port from
//! outside, as Transmission, qBittorrent and libtorrent do, so peers beyond the NAT can dial in.
//! NAT-PMP ([`natpmp`], RFC 6886) is tried first, at the gateway of the default route
//! ([`default_gateway`]); a gateway that does not answer it is looked for over UPnP IGD
//! ([`upnp`]). How it stands is a [`PortForwarding`] (`status.rs`).
//!
//! Ports forwarded: the TCP listen port, the UDP port of the same number (uTP), and the DHT
//! node's UDP port when it is another. Each is asked for with the same external number; where
//! the gateway has given that number to another machine behind it, it gives another (NAT-PMP
//! does so itself; over UPnP the gateway is asked for any port), renewals keep the one given, and
//! the peer port outside is what the DHT and trackers beyond the local network are told
//! (`SessionCtx::public_port` in the session).
//!
//! One task per session ([`PortMapper::run`]) owns the mappings. It maps when switched on, renews
//! at half the lifetime the gateway granted, maps again when a port moves
//! ([`crate::Session::set_listen_port`], the DHT switched on or off), deletes the mappings when
//! switched off and when the session stops (bounded by [`RELEASE_TIMEOUT`]; a stop that comes
//! while the router is being asked ends the asking, and what it mapped lapses with its lease), and
//! after a failure tries again after [`RETRY`]. Nothing is tried for a session that listens on
//! loopback.
//!
//! Invariants: only the task changes the status and the mappings; the status is written under
//! its lock, never held across an `.await`. [`PortMapper::status`] is a copy.

pub mod natpmp;
mod route;
mod status;
pub mod upnp;

pub use route::default_gateway;
pub use status::{ForwardState, Forwarded, PortForwarding, Protocol};

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The lifetime asked of a NAT-PMP mapping (RFC 6886's recommendation).
const NATPMP_LIFETIME: u32 = 7200;

/// The wait after a failure before trying again.
pub const RETRY: Duration = Duration::from_secs(600);

/// How often the ports are looked at for a move.
const PORTS_POLL: Duration = Duration::from_secs(5);

/// The most the deletion of the mappings may hold up a session that stops.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(3);

/// The mappings held, by the way they were made.
enum Held {
    NatPmp {
        gateway: SocketAddrV4,
        ports: Vec<Forwarded>,
    },
    Upnp {
        igd: upnp::Igd,
        ports: Vec<Forwarded>,
    },
}

impl Held {
    /// Deletes every mapping (failures only logged: the gateway drops them when their lease ends).
    async fn release(self) {
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
        }
    }
}

/// The session's port forwarding; see the module doc.
pub struct PortMapper {
    /// The gateway named in the settings; `None`: the default route's (NAT-PMP) and whoever
    /// answers SSDP's multicast (UPnP).
    gateway: Option<Ipv4Addr>,
    /// The address the session listens on, when it is a specific one (mappings point there).
    listen_ip: Option<IpAddr>,
    on: watch::Sender<bool>,
    status: Mutex<PortForwarding>,
    /// The ports forwarded now (empty while nothing is), for those who act on a change.
    forwarded: watch::Sender<Vec<Forwarded>>,
}

impl PortMapper {
    /// A mapper, switched `on` or not; [`PortMapper::run`] does the work.
    pub fn new(on: bool, gateway: Option<Ipv4Addr>, listen_ip: IpAddr) -> Arc<PortMapper> {
        Arc::new(PortMapper {
            gateway,
            listen_ip: (!listen_ip.is_unspecified()).then_some(listen_ip),
            on: watch::Sender::new(on),
            status: Mutex::new(PortForwarding::off()),
            forwarded: watch::Sender::new(Vec::new()),
        })
    }

    /// Where port forwarding stands.
    pub fn status(&self) -> PortForwarding {
        let mut s = self.status.lock().clone();
        s.on = self.is_on();
        s
    }

    /// Whether it is switched on.
    pub fn is_on(&self) -> bool {
        *self.on.borrow()
    }

    /// Switches it on (the ports are mapped at once) or off (the mappings are deleted).
    pub fn switch(&self, on: bool) {
        self.on
            .send_if_modified(|now| std::mem::replace(now, on) != on);
    }

    /// The port outside that the gateway forwards to our `internal` port of `protocol`, while it
    /// does and the number is another (a gateway may grant another when ours is taken there, by
    /// another machine behind it).
    pub fn outside_port(&self, protocol: Protocol, internal: u16) -> Option<u16> {
        let s = self.status.lock();
        if s.state != ForwardState::Forwarded || !self.is_on() {
            return None;
        }
        s.ports
            .iter()
            .find(|p| p.protocol == protocol && p.internal == internal)
            .map(|p| p.external)
            .filter(|&e| e != internal)
    }

    /// Changes each time the ports forwarded do (mapped, let go, or given another number
    /// outside).
    pub fn forwarded(&self) -> watch::Receiver<Vec<Forwarded>> {
        self.forwarded.subscribe()
    }

    fn set_status(&self, s: PortForwarding) {
        let ports = if s.state == ForwardState::Forwarded {
            s.ports.clone()
        } else {
            Vec::new()
        };
        *self.status.lock() = s;
        self.forwarded.send_if_modified(|now| {
            let changed = *now != ports;
            *now = ports;
            changed
        });
    }

    /// Maps the ports `ports()` names while switched on, until `stop`; see the module doc.
    pub async fn run(
        self: Arc<Self>,
        ports: impl Fn() -> Vec<(Protocol, u16)> + Send,
        stop: CancellationToken,
    ) {
        let mut on = self.on.subscribe();
        // The mappings held and when to renew them, made for the ports `asked` (a gateway may
        // have granted only some of them).
        let mut held: Option<(Held, Instant)> = None;
        let mut retry_at = Instant::now();
        let mut asked: Vec<(Protocol, u16)> = Vec::new();
        loop {
            let wanted = if *on.borrow_and_update() {
                ports()
            } else {
                Vec::new()
            };
            let now = Instant::now();
            if wanted != asked {
                // Switched off, or a port moved: let go of what is held, and try the new ports at
                // once, whatever the last failure.
                if let Some((h, _)) = held.take() {
                    h.release().await;
                }
                retry_at = now;
                asked = wanted.clone();
            }
            let renew = held.as_ref().is_some_and(|(_, at)| *at <= now);
            if wanted.is_empty() {
                self.set_status(PortForwarding::off());
            } else if renew || (held.is_none() && retry_at <= now) {
                if held.is_none() {
                    let mut s = self.status();
                    s.state = ForwardState::Mapping;
                    self.set_status(s);
                }
                let previous = held.take().map(|(h, _)| h);
                // A stop does not wait for a slow router: what this round mapped lapses with
                // its lease.
                let mapped = tokio::select! {
                    r = self.map(&wanted, previous) => r,
                    _ = stop.cancelled() => return,
                };
                match mapped {
                    Ok((h, status, renew_in)) => {
                        if status != self.status() {
                            tracing::info!("{}", status.summary());
                        }
                        self.set_status(status);
                        held = Some((h, Instant::now() + renew_in));
                    }
                    Err(status) => {
                        tracing::info!(
                            "port forwarding failed (trying again in {} min): {}",
                            RETRY.as_secs() / 60,
                            status.error.as_deref().unwrap_or("?")
                        );
                        self.set_status(status);
                        retry_at = Instant::now() + RETRY;
                    }
                }
            }
            let next = held
                .as_ref()
                .map_or(retry_at, |(_, at)| *at)
                .max(Instant::now())
                .min(Instant::now() + PORTS_POLL);
            tokio::select! {
                _ = stop.cancelled() => break,
                r = on.changed() => if r.is_err() { break },
                _ = tokio::time::sleep_until(next) => {}
            }
        }
        if let Some((h, _)) = held {
            let _ = tokio::time::timeout(RELEASE_TIMEOUT, h.release()).await;
        }
    }

    /// Maps `wanted` (renewing `previous`, made for the same ports): by NAT-PMP where a gateway
    /// answers it, else by UPnP. The mappings, the status and when to renew; or the status that
    /// says why nothing is forwarded.
    async fn map(
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
}

/// The port outside that `before` (the mappings being renewed) gave `port` of `protocol`, else the
/// same number.
fn outside_before(before: &[Forwarded], protocol: Protocol, port: u16) -> u16 {
    before
        .iter()
        .find(|f| f.protocol == protocol && f.internal == port)
        .map_or(port, |f| f.external)
}

/// The ports of a session to forward: TCP and UDP (uTP) `listen`, and the DHT's `dht` when it is
/// another.
pub fn session_ports(listen: SocketAddr, utp: bool, dht: Option<u16>) -> Vec<(Protocol, u16)> {
    let mut v = vec![(Protocol::Tcp, listen.port())];
    if utp {
        v.push((Protocol::Udp, listen.port()));
    }
    if let Some(d) = dht.filter(|d| !(utp && *d == listen.port())) {
        v.push((Protocol::Udp, d));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_of_a_session_are_each_forwarded_once() {
        let l: SocketAddr = "0.0.0.0:6881".parse().unwrap();
        use Protocol::*;
        assert_eq!(
            session_ports(l, true, Some(6882)),
            [(Tcp, 6881), (Udp, 6881), (Udp, 6882)]
        );
        assert_eq!(
            session_ports(l, true, Some(6881)),
            [(Tcp, 6881), (Udp, 6881)]
        );
        assert_eq!(
            session_ports(l, false, Some(6881)),
            [(Tcp, 6881), (Udp, 6881)]
        );
        assert_eq!(session_ports(l, false, None), [(Tcp, 6881)]);
    }

    #[test]
    fn the_port_outside_is_told_only_when_forwarded_from_another_number() {
        use Protocol::*;
        let m = PortMapper::new(true, None, "0.0.0.0".parse().unwrap());
        let mut changes = m.forwarded();
        assert_eq!(m.outside_port(Tcp, 6881), None, "nothing forwarded yet");
        let gw = "192.168.1.1".parse().unwrap();
        let forward = |internal, external| {
            let tcp = Forwarded {
                protocol: Tcp,
                internal,
                external,
            };
            m.set_status(PortForwarding::forwarded("UPnP", gw, None, vec![tcp], &[]));
        };
        forward(6881, 6881);
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_eq!(m.outside_port(Tcp, 6881), None, "the same number");
        forward(6881, 40111);
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_eq!(m.outside_port(Tcp, 6881), Some(40111));
        assert_eq!(m.outside_port(Udp, 6881), None);
        assert_eq!(m.outside_port(Tcp, 6882), None, "another port of ours");
        // The same status again changes nothing; switched off, nothing is told.
        forward(6881, 40111);
        assert!(!changes.has_changed().unwrap());
        m.switch(false);
        assert_eq!(m.outside_port(Tcp, 6881), None);
        m.set_status(PortForwarding::off());
        assert!(changes.has_changed().unwrap() && changes.borrow().is_empty());
    }
}
