//! This machine's network interfaces: the addresses of those that are up, loopback left out, and
//! whether each takes multicast. The app finds its LAN address here; local service discovery
//! ([`crate::lsd`]) joins its groups and sends on each that takes multicast (by IPv4 address, and
//! by interface index over IPv6).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 address of an interface that is up and not loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub ip: Ipv4Addr,
    /// The interface takes multicast (`IFF_MULTICAST`).
    pub multicast: bool,
}

/// An IPv6 address of an interface that is up and not loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface6 {
    pub name: String,
    /// The interface's index (what IPv6 multicast and link-local scopes name it by).
    pub index: u32,
    pub ip: Ipv6Addr,
    /// The interface takes multicast (`IFF_MULTICAST`).
    pub multicast: bool,
}

/// The IPv4 addresses of the interfaces that are up, loopback left out, in the system's order.
pub fn ipv4() -> Vec<Interface> {
    addresses()
        .into_iter()
        .filter_map(|(name, ip, multicast)| match ip {
            IpAddr::V4(ip) => Some(Interface {
                name,
                ip,
                multicast,
            }),
            IpAddr::V6(_) => None,
        })
        .collect()
}

/// The IPv6 addresses of the interfaces that are up, loopback left out, in the system's order
/// (link-local ones included).
pub fn ipv6() -> Vec<Interface6> {
    addresses()
        .into_iter()
        .filter_map(|(name, ip, multicast)| match ip {
            IpAddr::V6(ip) => Some(Interface6 {
                index: index_of(&name)?,
                name,
                ip,
                multicast,
            }),
            IpAddr::V4(_) => None,
        })
        .collect()
}

/// The index of the interface called `name` (`None`: gone meanwhile).
pub(crate) fn index_of(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some(index)
}

/// (interface name, address, takes multicast) of every address of the interfaces that are up,
/// loopback interfaces and addresses and unspecified addresses left out.
fn addresses() -> Vec<(String, IpAddr, bool)> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that stays valid until freeifaddrs; each
    // entry's name is a NUL-terminated string, an AF_INET `ifa_addr` points to a sockaddr_in and
    // an AF_INET6 one to a sockaddr_in6.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while let Some(ifa) = cur.as_ref() {
            cur = ifa.ifa_next;
            let flag = |f: libc::c_int| ifa.ifa_flags & (f as libc::c_uint) != 0;
            if !flag(libc::IFF_UP)
                || flag(libc::IFF_LOOPBACK)
                || ifa.ifa_addr.is_null()
                || ifa.ifa_name.is_null()
            {
                continue;
            }
            let ip = match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            };
            if ip.is_loopback() || ip.is_unspecified() {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            out.push((name, ip, flag(libc::IFF_MULTICAST)));
        }
        libc::freeifaddrs(list);
    }
    out
}
