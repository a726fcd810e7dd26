//! Doubles of a home router for port forwarding, on a loopback address of their own (127.x.y.z,
//! so tests running at once do not meet) at the real ports: NAT-PMP on UDP 5351 (RFC 6886: the
//! external address, mappings granted as asked) and UPnP IGD (SSDP answered on UDP 1900, the
//! device and service descriptions and the WANIPConnection's SOAP actions over HTTP). Each
//! records what it was asked.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use tokio::net::UdpSocket;

/// The external address the doubles report.
pub const EXTERNAL_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

/// A loopback address no other test uses (127.0.0.1 and 127.0.0.0/16 left alone).
pub fn own_loopback_ip() -> Ipv4Addr {
    let r: u32 = rand::random();
    Ipv4Addr::new(
        127,
        100 + (r % 100) as u8,
        (r >> 8) as u8,
        2 + (r >> 16) as u8 % 250,
    )
}

/// One mapping request a double heard: `lifetime` 0 deletes (NAT-PMP); `delete` for UPnP's
/// DeletePortMapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub protocol: &'static str,
    pub internal: u16,
    pub external: u16,
    pub lifetime: u32,
    /// UPnP: the `NewInternalClient` the mapping points to.
    pub client: Option<String>,
    pub delete: bool,
}

/// A NAT-PMP gateway on `ip`:5351.
pub struct NatPmpDouble {
    pub ip: Ipv4Addr,
    pub heard: Arc<Mutex<Vec<Heard>>>,
    /// The lifetime granted (0: the one asked for).
    pub grant: Arc<std::sync::atomic::AtomicU32>,
    /// UDP mappings refused (result 2, not authorized), as a router that forwards TCP alone.
    pub refuse_udp: Arc<std::sync::atomic::AtomicBool>,
    /// The port outside given for every mapping (0: the one suggested), as a router whose port
    /// another machine holds.
    pub give_port: Arc<std::sync::atomic::AtomicU16>,
    /// Mapping requests heard but not answered (deletes still are), as a router gone quiet.
    pub silent: Arc<std::sync::atomic::AtomicBool>,
}

impl NatPmpDouble {
    pub async fn start(ip: Ipv4Addr) -> NatPmpDouble {
        let sock = UdpSocket::bind((ip, 5351)).await.unwrap();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let grant = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let refuse_udp = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let give_port = Arc::new(std::sync::atomic::AtomicU16::new(0));
        let silent = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (h, g, no_udp) = (heard.clone(), grant.clone(), refuse_udp.clone());
        let (give, quiet) = (give_port.clone(), silent.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = sock.recv_from(&mut buf).await {
                let m = &buf[..n];
                let reply = match m {
                    [0, 0] => {
                        let mut r = vec![0, 128, 0, 0, 0, 0, 0, 1];
                        r.extend_from_slice(&EXTERNAL_IP.octets());
                        r
                    }
                    [0, op @ (1 | 2), _, _, ..] if n == 12 => {
                        let internal = u16::from_be_bytes([m[4], m[5]]);
                        let asked = u16::from_be_bytes([m[6], m[7]]);
                        let lifetime = u32::from_be_bytes([m[8], m[9], m[10], m[11]]);
                        h.lock().unwrap().push(Heard {
                            protocol: if *op == 1 { "UDP" } else { "TCP" },
                            internal,
                            external: asked,
                            lifetime,
                            client: None,
                            delete: lifetime == 0,
                        });
                        if lifetime > 0 && quiet.load(std::sync::atomic::Ordering::SeqCst) {
                            continue;
                        }
                        let granted = match g.load(std::sync::atomic::Ordering::SeqCst) {
                            0 => lifetime,
                            _ if lifetime == 0 => 0,
                            short => short,
                        };
                        let refused = *op == 1 && no_udp.load(std::sync::atomic::Ordering::SeqCst);
                        let mut r = vec![0, 128 + op, 0, if refused { 2 } else { 0 }, 0, 0, 0, 1];
                        let given = match give.load(std::sync::atomic::Ordering::SeqCst) {
                            0 => asked,
                            _ if lifetime == 0 => 0,
                            port => port,
                        };
                        r.extend_from_slice(&internal.to_be_bytes());
                        r.extend_from_slice(&given.to_be_bytes());
                        r.extend_from_slice(&granted.to_be_bytes());
                        r
                    }
                    _ => continue,
                };
                let _ = sock.send_to(&reply, from).await;
            }
        });
        NatPmpDouble {
            ip,
            heard,
            grant,
            refuse_udp,
            give_port,
            silent,
        }
    }

    pub fn heard(&self) -> Vec<Heard> {
        self.heard.lock().unwrap().clone()
    }
}

/// A UPnP IGD on `ip`: SSDP on UDP 1900, HTTP on an ephemeral port.
pub struct UpnpDouble {
    pub ip: Ipv4Addr,
    pub heard: Arc<Mutex<Vec<Heard>>>,
    /// Every mapping of a port outside to the same number inside is refused as taken (718,
    /// ConflictInMappingEntry), as when another machine behind the router holds those ports.
    pub taken_same: Arc<std::sync::atomic::AtomicBool>,
}

/// What the IGD's control endpoint shares with the double.
#[derive(Clone)]
struct Router {
    heard: Arc<Mutex<Vec<Heard>>>,
    taken_same: Arc<std::sync::atomic::AtomicBool>,
}

const SERVICE: &str = "urn:schemas-upnp-org:service:WANIPConnection:1";

fn root_description() -> String {
    format!(
        r#"<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>test router</friendlyName>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service>
<serviceType>{SERVICE}</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>/ctl/IPConn</controlURL>
<eventSubURL>/evt/IPConn</eventSubURL>
<SCPDURL>/WANIPCn.xml</SCPDURL>
</service></serviceList>
</device></deviceList>
</device></deviceList>
</device>
</root>"#
    )
}

fn action(name: &str, ins: &[&str]) -> String {
    let args: String = ins
        .iter()
        .map(|a| format!("<argument><name>{a}</name><direction>in</direction></argument>"))
        .collect();
    format!("<action><name>{name}</name><argumentList>{args}</argumentList></action>")
}

fn service_description() -> String {
    let add = [
        "NewRemoteHost",
        "NewExternalPort",
        "NewProtocol",
        "NewInternalPort",
        "NewInternalClient",
        "NewEnabled",
        "NewPortMappingDescription",
        "NewLeaseDuration",
    ];
    format!(
        r#"<?xml version="1.0"?>
<scpd xmlns="urn:schemas-upnp-org:service-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<actionList>{}{}{}</actionList>
</scpd>"#,
        action("AddPortMapping", &add),
        action(
            "DeletePortMapping",
            &["NewRemoteHost", "NewExternalPort", "NewProtocol"]
        ),
        action("GetExternalIPAddress", &[]),
    )
}

/// The text of the first element named `name` in `xml`.
fn field<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..end])
}

fn soap(body: String) -> impl IntoResponse {
    (
        [("content-type", "text/xml; charset=\"utf-8\"")],
        format!(
            r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>{body}</s:Body></s:Envelope>"#
        ),
    )
}

/// A SOAP fault carrying UPnP error `code`.
fn upnp_error(code: u16, description: &str) -> axum::response::Response {
    let body = format!(
        r#"<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>{code}</errorCode><errorDescription>{description}</errorDescription></UPnPError></detail></s:Fault>"#
    );
    let mut r = soap(body).into_response();
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}

async fn control(
    State(router): State<Router>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let act = headers
        .get("soapaction")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_matches('"')
        .rsplit('#')
        .next()
        .unwrap_or("")
        .to_string();
    let num = |n: &str| {
        field(&body, n)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let protocol = |b: &str| match field(b, "NewProtocol") {
        Some("UDP") => "UDP",
        _ => "TCP",
    };
    match act.as_str() {
        "GetExternalIPAddress" => soap(format!(
            "<u:GetExternalIPAddressResponse xmlns:u=\"{SERVICE}\"><NewExternalIPAddress>{EXTERNAL_IP}</NewExternalIPAddress></u:GetExternalIPAddressResponse>"
        ))
        .into_response(),
        "AddPortMapping" => {
            let (internal, external) = (num("NewInternalPort") as u16, num("NewExternalPort") as u16);
            router.heard.lock().unwrap().push(Heard {
                protocol: protocol(&body),
                internal,
                external,
                lifetime: num("NewLeaseDuration"),
                client: field(&body, "NewInternalClient").map(str::to_string),
                delete: false,
            });
            let taken = router.taken_same.load(std::sync::atomic::Ordering::SeqCst);
            if taken && internal == external {
                return upnp_error(718, "ConflictInMappingEntry");
            }
            soap(format!("<u:AddPortMappingResponse xmlns:u=\"{SERVICE}\"/>")).into_response()
        }
        "DeletePortMapping" => {
            router.heard.lock().unwrap().push(Heard {
                protocol: protocol(&body),
                internal: 0,
                external: num("NewExternalPort") as u16,
                lifetime: 0,
                client: None,
                delete: true,
            });
            soap(format!("<u:DeletePortMappingResponse xmlns:u=\"{SERVICE}\"/>")).into_response()
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "unknown action").into_response(),
    }
}

impl UpnpDouble {
    pub async fn start(ip: Ipv4Addr) -> UpnpDouble {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let taken_same = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let router = Router {
            heard: heard.clone(),
            taken_same: taken_same.clone(),
        };
        let app = axum::Router::new()
            .route(
                "/rootDesc.xml",
                axum::routing::get(|| async { root_description() }),
            )
            .route(
                "/WANIPCn.xml",
                axum::routing::get(|| async { service_description() }),
            )
            .route("/ctl/IPConn", axum::routing::post(control))
            .with_state(router);
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let http: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let ssdp = UdpSocket::bind((ip, 1900)).await.unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = ssdp.recv_from(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]);
                if !text.starts_with("M-SEARCH") {
                    continue;
                }
                let st = text
                    .lines()
                    .find_map(|l| l.strip_prefix("ST:").or_else(|| l.strip_prefix("st:")))
                    .unwrap_or("")
                    .trim()
                    .to_string();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: {st}\r\nUSN: uuid:test-router::{st}\r\nEXT:\r\nSERVER: test/1.0 UPnP/1.1\r\nLOCATION: http://{http}/rootDesc.xml\r\n\r\n"
                );
                let _ = ssdp.send_to(reply.as_bytes(), from).await;
            }
        });
        UpnpDouble {
            ip,
            heard,
            taken_same,
        }
    }

    pub fn heard(&self) -> Vec<Heard> {
        self.heard.lock().unwrap().clone()
    }
}

/// The address of `ip` as torrents.toml's `port_forwarding_gateway` names it.
pub fn setting(ip: Ipv4Addr) -> String {
    format!("port_forwarding_gateway = \"{}\"", IpAddr::V4(ip))
}
