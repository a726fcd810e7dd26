//! How port forwarding stands ([`PortForwarding`]), as the session reports it: the protocols
//! and ports forwarded, the state, and the one-line summary the daemon, `port-test` and the log
//! show.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// A transport protocol of a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        })
    }
}

/// One port forwarded: `external` on the gateway to `internal` of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarded {
    pub protocol: Protocol,
    pub internal: u16,
    pub external: u16,
}

/// Where port forwarding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardState {
    /// Switched off (or the session listens on loopback).
    Off,
    /// Looking for the gateway, or asking it.
    Mapping,
    /// The gateway forwards the ports in [`PortForwarding::ports`].
    Forwarded,
    /// No gateway answered, or it refused ([`PortForwarding::error`]); tried again later.
    Failed,
}

/// Port forwarding as it stands ([`crate::Session::port_forwarding`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortForwarding {
    /// Switched on (it may still be mapping, or have failed).
    pub on: bool,
    /// Where the session listens for peers (filled in by [`crate::Session::port_forwarding`]).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// The addresses peers report seeing us at, the most reported first ([`crate::seen_as`];
    /// filled in likewise).
    #[serde(default)]
    pub seen_as: Vec<crate::seen_as::SeenAddress>,
    pub state: ForwardState,
    /// "NAT-PMP" or "UPnP" ("PCP" for the IPv6 pinholes), while forwarded.
    pub via: Option<String>,
    /// The gateway asked.
    pub gateway: Option<IpAddr>,
    /// The address the gateway has outside, when it told.
    pub external_ip: Option<IpAddr>,
    pub ports: Vec<Forwarded>,
    /// Why it failed, or why a port could not be forwarded while the others were.
    pub error: Option<String>,
    /// The IPv6 pinholes (by PCP; `via`, `gateway`, `ports` as above, `external_ip` the address
    /// they are open to), once they were tried: state `off` with an `error` when there is nothing
    /// to open (no IPv6 default route or global address).
    #[serde(default)]
    pub ipv6: Option<Box<PortForwarding>>,
}

impl PortForwarding {
    /// Forwarded by `via` at `gateway`: `ports`, with why the rest of those asked were `refused`.
    pub(super) fn forwarded(
        via: &str,
        gateway: IpAddr,
        external_ip: Option<IpAddr>,
        ports: Vec<Forwarded>,
        refused: &[String],
    ) -> Self {
        PortForwarding {
            on: true,
            state: ForwardState::Forwarded,
            via: Some(via.into()),
            gateway: Some(gateway),
            external_ip,
            ports,
            error: (!refused.is_empty()).then(|| refused.join("; ")),
            ..Self::off()
        }
    }

    /// How it stands in one line: `port forwarding: TCP 6881, UDP 6881 by UPnP at 192.168.1.1,
    /// outside 203.0.113.7`, `port forwarding failed: ...`, `port forwarding: off`; then the IPv6
    /// pinholes' the same way (`; IPv6 pinholes: TCP 6881, UDP 6881 by PCP at fe80::1, outside
    /// 2001:db8::2`).
    pub fn summary(&self) -> String {
        let mut line = self.summary_as("port forwarding");
        if let Some(v6) = &self.ipv6 {
            line = format!("{line}; {}", v6.summary_as("IPv6 pinholes"));
        }
        line
    }

    /// This status alone in one line, named `what`.
    pub(super) fn summary_as(&self, what: &str) -> String {
        match self.state {
            ForwardState::Off => match &self.error {
                None => format!("{what}: off"),
                Some(why) => format!("{what}: none ({why})"),
            },
            ForwardState::Mapping => format!("{what}: asking the router"),
            ForwardState::Failed => {
                format!("{what} failed: {}", self.error.as_deref().unwrap_or("?"))
            }
            ForwardState::Forwarded => format!(
                "{what}: {} by {} at {}{}{}",
                shown_ports(&self.ports),
                self.via.as_deref().unwrap_or("?"),
                self.gateway.map_or("?".into(), |g| g.to_string()),
                self.external_ip
                    .map_or(String::new(), |ip| format!(", outside {ip}")),
                self.error
                    .as_deref()
                    .map_or(String::new(), |e| format!("; not forwarded: {e}"))
            ),
        }
    }

    /// Switched off, nothing forwarded.
    pub fn off() -> Self {
        PortForwarding {
            on: false,
            listen: None,
            seen_as: Vec::new(),
            state: ForwardState::Off,
            via: None,
            gateway: None,
            external_ip: None,
            ports: Vec::new(),
            error: None,
            ipv6: None,
        }
    }
}

/// How the ports show in a log line: `TCP 6881, UDP 6881`.
fn shown_ports(ports: &[Forwarded]) -> String {
    let one = |p: &Forwarded| {
        if p.internal == p.external {
            format!("{} {}", p.protocol, p.internal)
        } else {
            format!("{} {} (outside {})", p.protocol, p.internal, p.external)
        }
    };
    ports.iter().map(one).collect::<Vec<_>>().join(", ")
}
