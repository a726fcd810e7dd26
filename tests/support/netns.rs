//! Two machines on one LAN for the tests: two network namespaces joined by a veth pair (198.18.0.1
//! and 198.18.0.2, the range set aside for benchmarks), made by the test and removed when dropped
//! (however the test ends), and commands run in either. Making them needs root and `ip` (iproute2);
//! tests skip, saying why, where that fails.

use std::path::Path;
use std::process::{Command, Stdio};

pub const A_IP: &str = "198.18.0.1";
pub const B_IP: &str = "198.18.0.2";
/// The hosts' IPv6 addresses when [`TwoHosts::ipv6_only`] (2001:2::/48, the IPv6 range set aside
/// for benchmarks).
pub const A_IP6: &str = "2001:2::1";
pub const B_IP6: &str = "2001:2::2";

/// Two namespaces and the veth pair between them, removed when dropped (however the test ends).
pub struct TwoHosts {
    pub a: String,
    pub b: String,
    /// The veth end in A, and the one in B.
    pub veth: String,
    pub peer: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `ip` (iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl TwoHosts {
    /// Host A on 198.18.0.1/24 with a default route over the link, host B on 198.18.0.2/24.
    pub fn make() -> Result<TwoHosts, String> {
        // Tests of this file run at once: each pair of hosts has names of its own.
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("{}{n}", std::process::id());
        // Made before the first step, so a step that fails still removes what the others made.
        let hosts = TwoHosts {
            a: format!("bt-lan-a-{id}"),
            b: format!("bt-lan-b-{id}"),
            veth: format!("btva{id}"),
            peer: format!("btvb{id}"),
        };
        let (a, b, va, peer) = (&*hosts.a, &*hosts.b, &*hosts.veth, &*hosts.peer);
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&["link", "add", va, "type", "veth", "peer", "name", peer])?;
        ip(&["link", "set", va, "netns", a])?;
        ip(&["link", "set", peer, "netns", b])?;
        for (ns, dev, addr) in [(a, va, A_IP), (b, peer, B_IP)] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        ip(&["-n", a, "route", "add", "default", "via", B_IP])?;
        Ok(hosts)
    }

    /// Takes host A off the network (its address and route removed, `false`) or puts it back.
    pub fn a_on_the_network(&self, on: bool) -> Result<(), String> {
        let addr = format!("{A_IP}/24");
        if on {
            ip(&["-n", &self.a, "addr", "add", &addr, "dev", &self.veth])?;
            ip(&["-n", &self.a, "route", "add", "default", "via", B_IP])
        } else {
            ip(&["-n", &self.a, "addr", "del", &addr, "dev", &self.veth])
        }
    }

    /// Switches IPv6 off (or on again) on host B's end of the link.
    pub fn b_ipv6(&self, on: bool) -> Result<(), String> {
        let knob = format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", self.peer);
        let out = TwoHosts::exec(&self.b, "sh")
            .args(["-c", &format!("echo {} > {knob}", u8::from(!on))])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run sh in {}: {e}", self.b))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "cannot write {knob}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Leaves the LAN IPv6 alone: each host's IPv4 address (and A's default route) removed, and,
    /// when `global`, [`A_IP6`] and [`B_IP6`] given (at once usable: no duplicate address
    /// detection); else the hosts have their link-local addresses alone (waited for, 10 s at
    /// most, till they are no longer tentative).
    pub fn ipv6_only(&self, global: bool) -> Result<(), String> {
        for (ns, dev, v4, v6) in [
            (&self.a, &self.veth, A_IP, A_IP6),
            (&self.b, &self.peer, B_IP, B_IP6),
        ] {
            ip(&["-n", ns, "addr", "del", &format!("{v4}/24"), "dev", dev])?;
            if global {
                let v6 = format!("{v6}/64");
                ip(&["-n", ns, "addr", "add", &v6, "dev", dev, "nodad"])?;
                continue;
            }
            let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let out = Command::new("ip")
                    .args(["-n", ns, "-6", "addr", "show", "dev", dev, "scope", "link"])
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("cannot run `ip`: {e}"))?;
                let text = String::from_utf8_lossy(&out.stdout);
                if text.contains("inet6 fe80:") && !text.contains("tentative") {
                    break;
                }
                if std::time::Instant::now() > end {
                    return Err(format!("no usable link-local address on {dev}: {text}"));
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// `btorrent start <source> --stall 60` on host B, in `dir`, with `RUST_LOG=log`: it must end
    /// well within 90 s (else the panic shows its output and `other()`, the log of what runs on A).
    pub fn start_on_b(
        &self,
        dir: &Path,
        source: &str,
        log: &str,
        other: impl Fn() -> String,
    ) -> super::Output {
        let got = super::process::run(
            TwoHosts::btorrent(&self.b, dir, &["start", source, "--stall", "60"])
                .env("RUST_LOG", log),
            std::time::Duration::from_secs(90),
        );
        assert!(
            got.status.success(),
            "btorrent start {source} on B failed ({}):\n{}\n{}\non A:\n{}",
            got.status,
            got.stdout,
            got.stderr,
            other()
        );
        got
    }

    /// `btorrent args...` run in namespace `ns`, in the folder `dir`.
    pub fn btorrent(ns: &str, dir: &Path, args: &[&str]) -> Command {
        let mut c = TwoHosts::exec(ns, env!("CARGO_BIN_EXE_btorrent"));
        c.args(args)
            .current_dir(dir)
            .env_remove("BTORRENT_CONFIG")
            .env("BTORRENT_DHT", "off")
            .env("RUST_LOG", "warn");
        c
    }
}

impl TwoHosts {
    /// [`TwoHosts::make`], or `None` (the test then ends) after printing why they cannot be made.
    pub fn make_or_skip() -> Option<TwoHosts> {
        TwoHosts::make()
            .inspect_err(|why| {
                println!("skipped: two network namespaces are needed (root and iproute2): {why}")
            })
            .ok()
    }

    /// `program` run in namespace `ns` (arguments to be added).
    pub fn exec(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }
}

impl Drop for TwoHosts {
    fn drop(&mut self) {
        // Removing a namespace removes the veth end inside it, and with it the pair.
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
        let _ = ip(&["link", "del", &self.veth]);
    }
}
