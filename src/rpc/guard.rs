//! Who may call the RPC, checked before a request is read: the client address against
//! `rpc_whitelist` (403), HTTP basic authentication when `rpc_username`/`rpc_password` are set (401),
//! a per-address request rate (429) and, for `/transmission/rpc`, the `X-Transmission-Session-Id`
//! handshake that keeps other web pages from posting to it (409 carrying the id to send).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use anyhow::{bail, Result};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;

/// The header of the CSRF handshake.
pub const SESSION_HEADER: &str = "X-Transmission-Session-Id";
/// The header that tells a client the RPC's version with the session id (Transmission 4.1): its
/// clients then speak JSON-RPC 2.0 ([`super::jsonrpc`]).
pub const VERSION_HEADER: &str = "X-Transmission-Rpc-Version";
/// Requests one client address may make per second, sustained.
pub const RATE_PER_SEC: f64 = 50.0;
/// Requests one client address may make in a burst.
pub const RATE_BURST: f64 = 200.0;
/// Client addresses whose rate is remembered; the table is cleared when it is full.
const RATE_TABLE: usize = 4096;

/// One entry of `rpc_whitelist`: an address, or a block in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    net: IpAddr,
    prefix: u8,
}

impl Block {
    pub fn parse(s: &str) -> Result<Block> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let Ok(net) = addr.parse::<IpAddr>() else {
            bail!("rpc_whitelist: {s:?} is not an address or a CIDR block like 192.168.1.0/24");
        };
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix.map(str::parse::<u8>) {
            None => max,
            Some(Ok(p)) if p <= max => p,
            Some(_) => bail!("rpc_whitelist: {s:?} has a prefix length over {max}"),
        };
        Ok(Block { net, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), 32, self.prefix)
                    == masked(u32::from(a).into(), 32, self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), 128, self.prefix) == masked(u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(v: u128, bits: u32, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        v >> (bits - u32::from(prefix))
    }
}

/// An IPv4 address carried in IPv6 (a dual-stack socket's view) is compared as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The whitelist from the setting; absent means loopback only.
pub fn whitelist(setting: Option<&[String]>) -> Result<Vec<Block>> {
    match setting {
        Some(list) => list.iter().map(|s| Block::parse(s)).collect(),
        None => Ok(vec![
            Block {
                net: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)),
                prefix: 8,
            },
            Block {
                net: IpAddr::V6(Ipv6Addr::LOCALHOST),
                prefix: 128,
            },
        ]),
    }
}

/// Everything a request is checked against.
pub struct Guard {
    pub whitelist: Vec<Block>,
    /// User name and stored password (plain or salted), when both are set.
    pub credentials: Option<(String, String)>,
    /// The id clients must send back.
    pub session_id: String,
    rates: parking_lot::Mutex<HashMap<IpAddr, (f64, Instant)>>,
    /// The last `Authorization` value that passed, so the salted hash is not computed per request.
    accepted: parking_lot::Mutex<Option<String>>,
}

/// A refusal: the status and a one-line reason (and for 409 the header to send).
pub struct Refusal {
    pub status: StatusCode,
    pub reason: String,
}

impl Guard {
    pub fn new(whitelist: Vec<Block>, credentials: Option<(String, String)>) -> Guard {
        Guard {
            whitelist,
            credentials,
            session_id: hex::encode(rand::random::<[u8; 24]>()),
            rates: Default::default(),
            accepted: Default::default(),
        }
    }

    /// Checks the address, the rate and the credentials; `csrf` adds the session id handshake.
    pub fn check(&self, ip: IpAddr, headers: &HeaderMap, csrf: bool) -> Result<(), Refusal> {
        if !self.whitelist.iter().any(|b| b.contains(ip)) {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                reason: format!("{ip} is not in rpc_whitelist"),
            });
        }
        if !self.take_token(canonical(ip)) {
            return Err(Refusal {
                status: StatusCode::TOO_MANY_REQUESTS,
                reason: format!("too many requests from {ip}: at most {RATE_PER_SEC} a second"),
            });
        }
        if let Some((user, stored)) = &self.credentials {
            let given = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            if !given.is_some_and(|g| self.authorised(g, user, stored)) {
                return Err(Refusal {
                    status: StatusCode::UNAUTHORIZED,
                    reason: "unauthorised: a user name and password are needed".into(),
                });
            }
        }
        if csrf {
            let sent = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
            if sent != Some(self.session_id.as_str()) {
                return Err(Refusal {
                    status: StatusCode::CONFLICT,
                    reason: format!(
                        "missing or stale {SESSION_HEADER}: send the one in this reply's header"
                    ),
                });
            }
        }
        Ok(())
    }

    fn authorised(&self, header: &str, user: &str, stored: &str) -> bool {
        if self.accepted.lock().as_deref() == Some(header) {
            return true;
        }
        let Some(b64) = header.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            return false;
        };
        let text = String::from_utf8_lossy(&raw);
        let ok = match text.split_once(':') {
            Some((u, p)) => u == user && super::password::matches(stored, p),
            None => false,
        };
        if ok {
            *self.accepted.lock() = Some(header.to_string());
        }
        ok
    }

    fn take_token(&self, ip: IpAddr) -> bool {
        let mut rates = self.rates.lock();
        if rates.len() >= RATE_TABLE && !rates.contains_key(&ip) {
            rates.clear();
        }
        let now = Instant::now();
        let (tokens, at) = rates.entry(ip).or_insert((RATE_BURST, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * RATE_PER_SEC).min(RATE_BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_match_addresses_and_bad_entries_are_named() {
        let b = Block::parse("192.168.1.0/24").unwrap();
        assert!(b.contains("192.168.1.77".parse().unwrap()));
        assert!(!b.contains("192.168.2.1".parse().unwrap()));
        assert!(b.contains("::ffff:192.168.1.5".parse().unwrap()));
        assert!(Block::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        let loop_only = whitelist(None).unwrap();
        assert!(loop_only
            .iter()
            .any(|b| b.contains("127.0.0.1".parse().unwrap())));
        assert!(loop_only.iter().any(|b| b.contains("::1".parse().unwrap())));
        assert!(!loop_only
            .iter()
            .any(|b| b.contains("10.0.0.1".parse().unwrap())));
        let e = Block::parse("lan").unwrap_err().to_string();
        assert!(e.contains("\"lan\" is not an address"), "{e}");
        assert!(Block::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn the_rate_is_capped_per_address() {
        let g = Guard::new(whitelist(None).unwrap(), None);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let passed = (0..1000)
            .filter(|_| g.check(ip, &HeaderMap::new(), false).is_ok())
            .count();
        assert!(
            (RATE_BURST as usize..RATE_BURST as usize + 20).contains(&passed),
            "{passed}"
        );
    }
}
