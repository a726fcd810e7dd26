//! UPnP IGD: the gateway found by SSDP (multicast to 239.255.255.250:1900, or unicast to a gateway
//! named in the settings), its WANIPConnection (or WANPPPConnection) service asked for port
//! mappings over SOAP. The protocol is the `igd-next` crate's; this module picks the address
//! the mappings point to and the lease.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use igd_next::aio::tokio::{search_gateway, Tokio};
use igd_next::aio::Gateway;
use igd_next::{AddPortError, PortMappingProtocol, SearchOptions};

use super::Protocol;

/// The SSDP port of a gateway.
pub const SSDP_PORT: u16 = 1900;

/// How long a search waits for a gateway to answer.
const SEARCH_TIMEOUT: Duration = Duration::from_secs(4);

/// Seconds a mapping is leased for; it is renewed at half that.
pub const LEASE: u32 = 3600;

/// What shows in the gateway's list of mappings.
const DESCRIPTION: &str = "btorrent";

/// A gateway found, with the address of ours that faces it (where mappings point).
#[derive(Clone)]
pub struct Igd {
    gateway: Gateway<Tokio>,
    pub local: IpAddr,
    /// The lease asked for: [`LEASE`], or 0 (for ever) on a gateway that takes no other.
    pub lease: u32,
}

fn protocol_of(p: Protocol) -> PortMappingProtocol {
    match p {
        Protocol::Tcp => PortMappingProtocol::TCP,
        Protocol::Udp => PortMappingProtocol::UDP,
    }
}

impl Igd {
    /// Searches for a gateway: at `gateway`'s SSDP port when one is named, else by multicast.
    pub async fn search(gateway: Option<IpAddr>) -> Result<Igd, String> {
        let mut options = SearchOptions::default();
        options.timeout = Some(SEARCH_TIMEOUT);
        options.single_search_timeout = Some(SEARCH_TIMEOUT);
        if let Some(ip) = gateway {
            options.broadcast_address = SocketAddr::new(ip, SSDP_PORT);
            // Named by the user, so trusted whatever it is (the crate refuses a loopback one
            // otherwise, which a real router never is).
            options.allowed_gateway_ips = vec![ip];
        }
        let found = search_gateway(options)
            .await
            .map_err(|e| format!("no UPnP gateway answered: {e}"))?;
        let local = super::route::source_toward(found.addr.ip())
            .ok_or_else(|| format!("UPnP gateway at {}: no route to it", found.addr))?;
        Ok(Igd {
            gateway: found,
            local,
            lease: LEASE,
        })
    }

    /// Where the gateway answers.
    pub fn addr(&self) -> SocketAddr {
        self.gateway.addr
    }

    /// Maps `external` outside to `port` of ours, for [`Igd::lease`] seconds (a gateway that only
    /// takes permanent mappings gets one, and `lease` becomes 0). When `external` is taken there
    /// (another machine behind the gateway holds it), the port the gateway gives instead
    /// (`AddAnyPortMapping`, or random ones where it lacks that). Returns the port outside.
    pub async fn map(
        &mut self,
        protocol: Protocol,
        port: u16,
        external: u16,
    ) -> Result<u16, String> {
        let local = SocketAddr::new(self.local, port);
        let p = protocol_of(protocol);
        let mut r = self
            .gateway
            .add_port(p, external, local, self.lease, DESCRIPTION)
            .await;
        if matches!(r, Err(AddPortError::OnlyPermanentLeasesSupported)) && self.lease != 0 {
            self.lease = 0;
            r = self
                .gateway
                .add_port(p, external, local, 0, DESCRIPTION)
                .await;
        }
        match r {
            Ok(()) => Ok(external),
            Err(AddPortError::PortInUse) => self
                .gateway
                .add_any_port(p, local, self.lease, DESCRIPTION)
                .await
                .map_err(|e| {
                    format!("{external} is taken at the gateway, and no other was given: {e}")
                }),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Deletes the mapping of `port`.
    pub async fn unmap(&self, protocol: Protocol, port: u16) -> Result<(), String> {
        self.gateway
            .remove_port(protocol_of(protocol), port)
            .await
            .map_err(|e| e.to_string())
    }

    /// The gateway's external address, if it tells.
    pub async fn external_ip(&self) -> Option<IpAddr> {
        self.gateway.get_external_ip().await.ok()
    }
}
