//! `port-test`: whether our peer port takes connections, dialled from this machine (over the
//! family Transmission 4.1's `ip_protocol` names, when given), with how port forwarding stands.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{Outcome, Rpc};

/// `port-test`: dials our own peer port, at the address the peer listens on or, when it listens on
/// every interface, at the address the request came in on, and says whether it accepts connections. This cannot tell
/// whether the port is reachable from the internet (that needs a host outside), and the reply says
/// so in `port-test-detail`, with how port forwarding on the router stands.
pub async fn answer(
    rpc: &Arc<Rpc>,
    args: &Map<String, Value>,
    came_in_on: std::net::IpAddr,
) -> Outcome {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    const IP_PROTOCOL: &str = "ip_protocol";
    let v6 = match args.get(IP_PROTOCOL) {
        None | Some(Value::Null) => None,
        Some(v) if v == "ipv4" => Some(false),
        Some(v) if v == "ipv6" => Some(true),
        Some(v) => {
            return Err(format!(
                "{IP_PROTOCOL} must be \"ipv4\" or \"ipv6\", not {v}"
            ))
        }
    };
    let mut m = Map::new();
    if let Some(v6) = v6 {
        m.insert(
            IP_PROTOCOL.into(),
            (if v6 { "ipv6" } else { "ipv4" }).into(),
        );
    }
    let Some(session) = rpc.peer.get().await else {
        m.insert("port-is-open".into(), false.into());
        m.insert(
            "port-test-detail".into(),
            "no peer session runs: nothing listens".into(),
        );
        return Ok(m);
    };
    let mut addr = session.listen_addr();
    let listen = addr.ip();
    let came_in_on = came_in_on.to_canonical();
    // Whether the peer listens over IPv6 (`true`) or IPv4: `::` over both.
    let takes = |v6: bool| match listen {
        IpAddr::V4(_) => !v6,
        IpAddr::V6(a) => v6 || a.is_unspecified(),
    };
    match v6 {
        // Asked of one family: the session must listen on it.
        Some(v6) if !takes(v6) => {
            m.insert("port-is-open".into(), false.into());
            m.insert(
                "port-test-detail".into(),
                format!(
                    "the peer listens on {listen}: not over {}",
                    if v6 { "IPv6" } else { "IPv4" }
                )
                .into(),
            );
            return Ok(m);
        }
        Some(v6) if listen.is_unspecified() && came_in_on.is_ipv6() != v6 => {
            addr.set_ip(if v6 {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            });
        }
        _ if listen.is_unspecified() => addr.set_ip(came_in_on),
        _ => {}
    }
    let open = matches!(
        tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    );
    m.insert("port-is-open".into(), open.into());
    m.insert(
        "port-test-detail".into(),
        format!(
            "dialled {addr} from this machine: {}; whether it is reachable from the internet is not tested; {}",
            if open { "it accepts connections" } else { "nothing accepted" },
            session.port_forwarding().summary()
        )
        .into(),
    );
    Ok(m)
}
