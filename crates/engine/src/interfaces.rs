//! This machine's network interfaces: the IPv4 addresses of those that are up, loopback left out,
//! and whether each takes multicast. The app finds its LAN address here; local service discovery
//! ([`crate::lsd`]) joins its group and sends on each that takes multicast.

use std::net::Ipv4Addr;

/// An IPv4 address of an interface that is up and not loopback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub ip: Ipv4Addr,
    /// The interface takes multicast (`IFF_MULTICAST`).
    pub multicast: bool,
}

/// The IPv4 addresses of the interfaces that are up, loopback left out, in the system's order.
pub fn ipv4() -> Vec<Interface> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that stays valid until freeifaddrs; each
    // entry's name is a NUL-terminated string and an AF_INET `ifa_addr` points to a sockaddr_in.
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
            if i32::from((*ifa.ifa_addr).sa_family) != libc::AF_INET {
                continue;
            }
            let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            if ip.is_loopback() || ip.is_unspecified() {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name)
                .to_string_lossy()
                .into_owned();
            out.push(Interface {
                name,
                ip,
                multicast: flag(libc::IFF_MULTICAST),
            });
        }
        libc::freeifaddrs(list);
    }
    out
}
