//! The session's IP filter (a blocklist): address ranges no peer connection is made to or taken
//! from. It is read from the text formats blocklists come in, one rule per line:
//!
//! - P2P (PeerGuardian): `some name:1.2.3.0-1.2.3.255`;
//! - DAT (eMule): `1.2.3.0 - 1.2.3.255 , 000 , some name` (an access level above 127 allows the
//!   range, so it is skipped);
//! - CIDR or a lone address: `1.2.3.0/24`, `2001:db8::/32`, `1.2.3.4`;
//!
//! and blank lines and comments (`#`, `//`) are skipped. A line that is none of these is counted
//! and skipped, as other clients do, so one bad line does not throw a list of 400,000 away. Ranges
//! are kept sorted and merged; a lookup is a binary search. IPv4-mapped IPv6 addresses
//! (`::ffff:1.2.3.4`) are looked up as the IPv4 address they carry.
//!
//! The session holds one filter ([`crate::Session::set_ip_filter`]); it is checked when an incoming
//! connection is accepted, before an address is dialed, and when a handshaken peer registers, and
//! setting a new one closes the connections it blocks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Blocked address ranges, sorted and merged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpFilter {
    v4: Vec<(u32, u32)>,
    v6: Vec<(u128, u128)>,
}

/// What reading a list gave: the filter, and the lines that were not rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub filter: IpFilter,
    /// Rules read (before merging).
    pub rules: usize,
    /// Lines that were neither rules nor blank nor comments.
    pub bad_lines: usize,
    /// The first of them (line number from 1, and the line), to show the user.
    pub first_bad: Option<(usize, String)>,
}

/// One rule: an inclusive range of one family.
enum Rule {
    V4(u32, u32),
    V6(u128, u128),
}

fn range(a: IpAddr, b: IpAddr) -> Option<Rule> {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) if u32::from(a) <= u32::from(b) => {
            Some(Rule::V4(a.into(), b.into()))
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if u128::from(a) <= u128::from(b) => {
            Some(Rule::V6(a.into(), b.into()))
        }
        _ => None,
    }
}

/// An address as blocklists write it: leading zeros allowed in IPv4 parts (`001.002.003.004`).
fn addr(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(a) = s.parse::<IpAddr>() {
        return Some(a);
    }
    let parts: Vec<u8> = s
        .split('.')
        .map(|p| p.parse::<u8>().ok())
        .collect::<Option<_>>()?;
    let [a, b, c, d] = parts[..] else { return None };
    Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
}

fn cidr(s: &str) -> Option<Rule> {
    let (a, bits) = s.trim().split_once('/')?;
    let bits: u32 = bits.trim().parse().ok()?;
    match addr(a)? {
        IpAddr::V4(a) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            let lo = u32::from(a) & mask;
            Some(Rule::V4(lo, lo | !mask))
        }
        IpAddr::V6(a) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            let lo = u128::from(a) & mask;
            Some(Rule::V6(lo, lo | !mask))
        }
        _ => None,
    }
}

/// `a - b` or `a-b`.
fn dashed(s: &str) -> Option<Rule> {
    let (a, b) = s.split_once('-')?;
    range(addr(a)?, addr(b)?)
}

/// One line: `Some(Ok(rule))`, `Some(Err(()))` for a line that is not a rule, `None` for a line
/// that holds none (blank, a comment, or a DAT range that is allowed).
fn line(l: &str) -> Option<Result<Rule, ()>> {
    let l = l.trim();
    if l.is_empty() || l.starts_with('#') || l.starts_with("//") {
        return None;
    }
    // DAT: range , level , name.
    let fields: Vec<&str> = l.split(',').collect();
    if fields.len() >= 2 {
        if let (Some(r), Ok(level)) = (dashed(fields[0]), fields[1].trim().parse::<u32>()) {
            return (level <= 127).then_some(Ok(r));
        }
    }
    // P2P: the name may hold colons; the range follows the last one (an IPv6 range has colons
    // of its own, so try the whole line first).
    if let Some(r) = dashed(l).or_else(|| cidr(l)) {
        return Some(Ok(r));
    }
    if let Some((_, r)) = l.rsplit_once(':') {
        if let Some(r) = dashed(r).or_else(|| cidr(r)) {
            return Some(Ok(r));
        }
    }
    match addr(l) {
        Some(a) => range(a, a).map(Ok),
        None => Some(Err(())),
    }
}

fn merged<T: Ord + Copy>(mut v: Vec<(T, T)>, next: impl Fn(T) -> Option<T>) -> Vec<(T, T)> {
    v.sort_unstable();
    let mut out: Vec<(T, T)> = Vec::with_capacity(v.len());
    for (lo, hi) in v {
        match out.last_mut() {
            // Overlapping or touching the last range: one range.
            Some(last) if next(last.1).is_none_or(|n| lo <= n) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

fn find<T: Ord + Copy>(ranges: &[(T, T)], x: T) -> bool {
    let i = ranges.partition_point(|r| r.0 <= x);
    i > 0 && ranges[i - 1].1 >= x
}

impl IpFilter {
    /// Reads a list (see the module doc).
    pub fn parse(text: &str) -> Parsed {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        let mut p = Parsed::default();
        for (n, l) in text.lines().enumerate() {
            match line(l) {
                None => {}
                Some(Ok(Rule::V4(a, b))) => v4.push((a, b)),
                Some(Ok(Rule::V6(a, b))) => v6.push((a, b)),
                Some(Err(())) => {
                    p.bad_lines += 1;
                    if p.first_bad.is_none() {
                        let shown: String = l.trim().chars().take(80).collect();
                        p.first_bad = Some((n + 1, shown));
                    }
                }
            }
        }
        p.rules = v4.len() + v6.len();
        p.filter = IpFilter {
            v4: merged(v4, |x: u32| x.checked_add(1)),
            v6: merged(v6, |x: u128| x.checked_add(1)),
        };
        p
    }

    /// This filter and `other` together.
    pub fn union(&self, other: &IpFilter) -> IpFilter {
        IpFilter {
            v4: merged(
                self.v4.iter().chain(&other.v4).copied().collect(),
                |x: u32| x.checked_add(1),
            ),
            v6: merged(
                self.v6.iter().chain(&other.v6).copied().collect(),
                |x: u128| x.checked_add(1),
            ),
        }
    }

    /// Whether `ip` is blocked.
    pub fn blocks(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(a)),
            },
        }
    }

    /// Ranges after merging.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first and last address of each IPv4 range, in order (for tests and reports).
    pub fn v4_ranges(&self) -> impl Iterator<Item = (Ipv4Addr, Ipv4Addr)> + '_ {
        self.v4.iter().map(|&(a, b)| (a.into(), b.into()))
    }

    /// The same for IPv6.
    pub fn v6_ranges(&self) -> impl Iterator<Item = (Ipv6Addr, Ipv6Addr)> + '_ {
        self.v6.iter().map(|&(a, b)| (a.into(), b.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_formats_blocklists_come_in_are_read() {
        let text = "\
# a comment
// another

Bad people:1.2.3.0-1.2.3.255
Name: with colons:10.0.0.5-10.0.0.5
001.002.004.000 - 001.002.004.255 , 000 , eMule style
9.9.9.0 - 9.9.9.255 , 200 , allowed by its level
192.168.7.0/24
8.8.8.8
2001:db8::/32
2001:db9::1-2001:db9::ff
not a rule at all
5.5.5.5-4.4.4.4
";
        let p = IpFilter::parse(text);
        assert_eq!(p.rules, 7);
        assert_eq!(p.bad_lines, 2);
        assert_eq!(p.first_bad, Some((12, "not a rule at all".into())));
        let f = &p.filter;
        for blocked in [
            "1.2.3.0",
            "1.2.3.77",
            "1.2.3.255",
            "10.0.0.5",
            "1.2.4.9",
            "192.168.7.200",
            "8.8.8.8",
            "2001:db8:1::9",
            "2001:db9::80",
            "::ffff:1.2.3.4",
        ] {
            assert!(f.blocks(ip(blocked)), "{blocked}");
        }
        for allowed in [
            "1.2.2.255",
            "1.2.5.0",
            "10.0.0.4",
            "9.9.9.9",
            "8.8.8.9",
            "2001:db9::100",
            "127.0.0.1",
            "::1",
        ] {
            assert!(!f.blocks(ip(allowed)), "{allowed}");
        }
    }

    #[test]
    fn ranges_merge_when_they_overlap_or_touch() {
        let p = IpFilter::parse(
            "a:1.0.0.0-1.0.0.10\nb:1.0.0.5-1.0.0.20\nc:1.0.0.21-1.0.0.30\nd:1.0.0.40-1.0.0.50\n\
             e:255.255.255.0-255.255.255.255\nf:0.0.0.0/0\n",
        );
        assert_eq!(p.rules, 6);
        assert_eq!(
            p.filter.v4_ranges().collect::<Vec<_>>(),
            [(Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(255, 255, 255, 255))]
        );
        let p = IpFilter::parse("1.0.0.0-1.0.0.10\n1.0.0.11-1.0.0.12\n1.0.0.14/32\n");
        let r: Vec<_> = p.filter.v4_ranges().collect();
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(p.filter.len(), 2);
        let both = p.filter.union(&IpFilter::parse("1.0.0.13\n").filter);
        assert_eq!(both.len(), 1);
        assert!(IpFilter::default().is_empty() && !IpFilter::default().blocks(ip("1.2.3.4")));
    }
}
