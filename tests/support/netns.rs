//! Two machines on one LAN for the tests: two network namespaces joined by a veth pair (198.18.0.1
//! and 198.18.0.2, the range set aside for benchmarks), made by the test and removed when dropped
//! (however the test ends), and commands run in either. Making them needs root and `ip` (iproute2);
//! tests skip, saying why, where that fails. And two machines each behind a home router's NAT,
//! with a relay on the open network between them ([`NattedPair`]).

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

/// Two machines each behind a home router's NAT, and one on the open network between them (the
/// relay, also the routers' way out): five namespaces, made by the test and removed when dropped.
/// Each router masquerades its LAN behind its WAN address and drops what comes in unasked on the
/// WAN (a stateful firewall, as a home router's: nothing can dial the machine behind it, and no
/// state is kept for what was dropped). The same over IPv6, routed rather than translated
/// (2001:2:N::/64 beside each 198.18.N.0/24), behind the same firewall. Needs root, `ip` and
/// `nft` (nftables); tests skip, saying why, where that fails.
///
/// ```text
///  host A 198.18.6.2 -- 198.18.6.1 router A 198.18.4.2 -- 198.18.4.1 relay
///  host B 198.18.7.2 -- 198.18.7.1 router B 198.18.5.2 -- 198.18.5.1 relay
/// ```
pub struct NattedPair {
    /// What the namespaces' and interfaces' names end with.
    id: String,
    pub relay: String,
    pub router_a: String,
    pub a: String,
    pub router_b: String,
    pub b: String,
}

impl NattedPair {
    /// Host A's own address, on its LAN.
    pub const HOST_A: &'static str = "198.18.6.2";

    /// Where the host of `side` dials the relay over `family` (address and the peer port).
    pub fn relay_for(family: Family, side: Side) -> String {
        let net = 4 + side as u8;
        match family {
            Family::V4 => format!("198.18.{net}.1:6881"),
            Family::V6 => format!("[2001:2:{net}::1]:6881"),
        }
    }

    /// The address the relay and the other host see the host of `side` at over `family`: its
    /// router's WAN address over IPv4 (translated), its own over IPv6 (routed); as logs write it.
    pub fn seen_as(family: Family, side: Side) -> String {
        match family {
            Family::V4 => format!("198.18.{}.2", 4 + side as u8),
            Family::V6 => format!("[2001:2:{}::2]", 6 + side as u8),
        }
    }

    pub fn make() -> Result<NattedPair, String> {
        let nft_runs = Command::new("nft")
            .arg("--version")
            .stdin(Stdio::null())
            .output();
        if !nft_runs.is_ok_and(|o| o.status.success()) {
            return Err("`nft` (nftables) cannot run".into());
        }
        static MADE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = MADE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let id = format!("{}{n}", std::process::id());
        let hosts = NattedPair {
            id: id.clone(),
            relay: format!("bt-nat-relay-{id}"),
            router_a: format!("bt-nat-ra-{id}"),
            a: format!("bt-nat-a-{id}"),
            router_b: format!("bt-nat-rb-{id}"),
            b: format!("bt-nat-b-{id}"),
        };
        for ns in [
            &hosts.relay,
            &hosts.router_a,
            &hosts.a,
            &hosts.router_b,
            &hosts.b,
        ] {
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        for (side, router, host, wan_net, lan_net) in [
            ("a", &hosts.router_a, &hosts.a, 4, 6),
            ("b", &hosts.router_b, &hosts.b, 5, 7),
        ] {
            let wan = format!("btw{side}{id}");
            let (relay_end, lan, host_end) = (
                format!("btx{side}{id}"),
                format!("btl{side}{id}"),
                format!("bth{side}{id}"),
            );
            let v4 = |net: u8, host: u8| format!("198.18.{net}.{host}");
            let v6 = |net: u8, host: u8| format!("2001:2:{net}::{host}");
            link(
                (&hosts.relay, &relay_end, &v4(wan_net, 1)),
                (router, &wan, &v4(wan_net, 2)),
            )?;
            link(
                (router, &lan, &v4(lan_net, 1)),
                (host, &host_end, &v4(lan_net, 2)),
            )?;
            for (ns, dev, addr) in [
                (&*hosts.relay, &relay_end, v6(wan_net, 1)),
                (router, &wan, v6(wan_net, 2)),
                (router, &lan, v6(lan_net, 1)),
                (host, &host_end, v6(lan_net, 2)),
            ] {
                let addr = format!("{addr}/64");
                ip(&["-n", ns, "-6", "addr", "add", &addr, "dev", dev, "nodad"])?;
            }
            ip(&[
                "-n",
                router,
                "route",
                "add",
                "default",
                "via",
                &v4(wan_net, 1),
            ])?;
            ip(&[
                "-n",
                host,
                "route",
                "add",
                "default",
                "via",
                &v4(lan_net, 1),
            ])?;
            ip(&[
                "-n",
                router,
                "-6",
                "route",
                "add",
                "default",
                "via",
                &v6(wan_net, 1),
            ])?;
            ip(&[
                "-n",
                host,
                "-6",
                "route",
                "add",
                "default",
                "via",
                &v6(lan_net, 1),
            ])?;
            // IPv6 is routed, not translated: the relay reaches the LAN's prefix through the
            // router, whose firewall alone keeps what comes in unasked out.
            let lan_prefix = format!("2001:2:{lan_net}::/64");
            let via = v6(wan_net, 2);
            ip(&[
                "-n",
                &hosts.relay,
                "-6",
                "route",
                "add",
                &lan_prefix,
                "via",
                &via,
            ])?;
            forwarding(router)?;
            nft(router, &home_router_rules(&wan))?;
        }
        forwarding(&hosts.relay)?;
        Ok(hosts)
    }

    /// B seeds a file of `size` random bytes (a torrent with no tracker, made in B's folder) and
    /// the relay takes part too, downloading a trickle (2 KB/s: what it can pass on is next to
    /// nothing). B takes no peer exchange: it learns no address but by an introduction, so it
    /// never dials A on its own (two peers that keep dialing each other over uTP may open their
    /// routers by chance). B is given the relay alone and is connected to it on return; a copy of
    /// the torrent is in the relay's folder and A's, as `photos.torrent`.
    pub async fn relay_and_seed_on_b(&self, family: Family, size: usize) -> RelayAndSeed {
        self.relay_and_seed_on_b_with(Relay::Btorrent, family, size)
            .await
    }

    /// [`NattedPair::relay_and_seed_on_b`] with the relay `relay` runs. libtorrent (a leecher of
    /// the same trickle, over uTP alone) introduces only peers connected to it over uTP (it finds
    /// the one asked for by the address its connection comes from, which is the listen port only
    /// for uTP): A and B then dial over uTP first (`utp = "prefer"`).
    pub async fn relay_and_seed_on_b_with(
        &self,
        relay: Relay,
        family: Family,
        size: usize,
    ) -> RelayAndSeed {
        use super::Proc;
        let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
        let [relay_dir, a_dir, b_dir] = dirs.each_ref().map(|d| d.path());
        let data = super::write_random(&b_dir.join("output/photos.bin"), size, 55);
        let utp = match relay {
            Relay::Btorrent => "",
            Relay::Libtorrent => "utp = \"prefer\"\n",
        };
        std::fs::write(
            b_dir.join("torrents.toml"),
            format!("[settings]\npex = false\n{utp}"),
        )
        .unwrap();
        std::fs::write(a_dir.join("torrents.toml"), format!("[settings]\n{utp}")).unwrap();
        super::run_ok(
            &mut TwoHosts::btorrent(
                &self.b,
                b_dir,
                &["create", "output/photos.bin", "--no-tracker"],
            ),
            std::time::Duration::from_secs(30),
        );
        let torrent = b_dir.join("torrents/photos.bin.torrent");
        for dir in [relay_dir, a_dir] {
            std::fs::copy(&torrent, dir.join("photos.torrent")).unwrap();
        }
        let mut relay_cmd = match relay {
            Relay::Btorrent => {
                let mut c = TwoHosts::btorrent(
                    &self.relay,
                    relay_dir,
                    &["start", "photos.torrent", "--seed", "--down-limit", "2K"],
                );
                c.env("RUST_LOG", HOLEPUNCH_LOG);
                c
            }
            Relay::Libtorrent => {
                // On the relay's two addresses (bound to the wildcard address, its uTP answers
                // never reach the hosts).
                assert_eq!(family, Family::V4, "a libtorrent relay over IPv4 only");
                let mut c = TwoHosts::exec(&self.relay, "/usr/bin/python3");
                c.arg(super::clients::LT_CLIENT)
                    .arg("leech")
                    .arg(relay_dir.join("photos.torrent"))
                    .arg(relay_dir)
                    .arg("6881")
                    .env("LT_INTERFACE", "198.18.4.1,198.18.5.1")
                    .env("LT_UTP", "only")
                    .env("LT_DOWN_LIMIT", "2000");
                c
            }
        };
        let relay_proc = Proc::spawn_logged(&mut relay_cmd, relay_dir.join("relay.log"));
        let relay_for_b = Self::relay_for(family, Side::B);
        let b = Proc::spawn_logged(
            TwoHosts::btorrent(
                &self.b,
                b_dir,
                &[
                    "start",
                    "torrents/photos.bin.torrent",
                    "--seed",
                    "--peer",
                    &relay_for_b,
                ],
            )
            .env("RUST_LOG", HOLEPUNCH_LOG),
            b_dir.join("b.log"),
        );
        // The relay's first peer exchange to A must name B: A starts once B is the relay's peer
        // (as the relay's log says; libtorrent's says nothing of it, B's does).
        let (log, seen, how) = match relay {
            Relay::Btorrent => (
                &relay_proc,
                format!("peer={}:", Self::seen_as(family, Side::B)),
                "connected (incoming",
            ),
            Relay::Libtorrent => (&b, format!("peer={relay_for_b}"), "connected (dialed, uTP"),
        };
        let start = std::time::Instant::now();
        while !log
            .log_text()
            .lines()
            .any(|l| l.contains(&seen) && l.contains(how))
        {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "B never connected to the relay.\nrelay:\n{}\nB:\n{}",
                relay_proc.log_text(),
                b.log_text()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        RelayAndSeed {
            relay: relay_proc,
            b,
            data,
            dirs,
        }
    }

    /// Router B runs miniupnpd (Debian's `miniupnpd-nftables`), as many home routers do: NAT-PMP,
    /// PCP and UPnP IGD for its LAN, its forwards and pinholes in nftables chains of its own, the
    /// rest of the firewall as before (masquerade, nothing new let in from the WAN but what it
    /// opens). Its IPv4 forwarding stays off (its WAN address, 198.18.5.2, is of a reserved range,
    /// which it refuses to forward from: NAT-PMP answers "network failure", UPnP's
    /// `AddPortMapping` error 501); IPv6 pinholes work. Its config, pid file and log are
    /// in `dir`; the daemon is killed when the returned process is dropped. `Err` when it cannot
    /// run (not installed).
    pub async fn miniupnpd_on_b(&self, dir: &Path) -> Result<super::Proc, String> {
        let id = &self.id;
        let (wan, lan) = (format!("btwb{id}"), format!("btlb{id}"));
        let exists = Command::new("miniupnpd")
            .arg("--version")
            .stdin(Stdio::null())
            .output();
        if !exists.is_ok_and(|o| o.status.success()) {
            return Err("miniupnpd (miniupnpd-nftables) cannot run".into());
        }
        nft(
            &self.router_b,
            &format!(
                "flush ruleset
                 table inet router {{
                   chain input {{ type filter hook input priority filter; policy accept;
                     iifname \"{wan}\" ct state new drop; }}
                   chain forward {{ type filter hook forward priority filter; policy accept;
                     ct state established,related accept
                     iifname \"{wan}\" jump upnp
                     iifname \"{wan}\" ct state new drop; }}
                   chain upnp {{ }}
                   chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;
                     jump upnp_prerouting; }}
                   chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;
                     jump upnp_postrouting
                     meta nfproto ipv4 oifname \"{wan}\" masquerade; }}
                   chain upnp_prerouting {{ }}
                   chain upnp_postrouting {{ }}
                 }}"
            ),
        )?;
        let conf = dir.join("miniupnpd.conf");
        std::fs::write(
            &conf,
            format!(
                "ext_ifname={wan}\next_ifname6={wan}\nlistening_ip={lan}\n\
                 http_port=0\nenable_natpmp=yes\n\
                 enable_upnp=yes\nsecure_mode=yes\nsystem_uptime=yes\n\
                 uuid=3c7e1f2a-0b6d-4e59-9a41-5d2f8c6b7e10\n\
                 upnp_table_name=router\nupnp_nat_table_name=router\n\
                 upnp_forward_chain=upnp\nupnp_nat_chain=upnp_prerouting\n\
                 upnp_nat_postrouting_chain=upnp_postrouting\n\
                 allow 1024-65535 198.18.7.0/24 1024-65535\n\
                 deny 0-65535 0.0.0.0/0 0-65535\n"
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut cmd = TwoHosts::exec(&self.router_b, "miniupnpd");
        cmd.arg("-d")
            .arg("-f")
            .arg(&conf)
            .arg("-P")
            .arg(dir.join("miniupnpd.pid"));
        let router = super::Proc::spawn_logged(&mut cmd, dir.join("miniupnpd.log"));
        super::wait_until_async(
            "miniupnpd to listen for PCP",
            std::time::Duration::from_secs(20),
            || async { router.log_text().contains("Listening for NAT-PMP/PCP") },
        )
        .await;
        Ok(router)
    }

    /// Host B's interface on its LAN.
    pub fn b_device(&self) -> String {
        format!("bthb{}", self.id)
    }

    /// The rules router B's miniupnpd added to let peers in ([`NattedPair::miniupnpd_on_b`]),
    /// as `nft` lists them.
    pub fn opened_on_b(&self) -> String {
        let out = TwoHosts::exec(&self.router_b, "nft")
            .args(["list", "chain", "inet", "router", "upnp"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Host A downloads `photos.torrent` in `dir` (`btorrent start --stall 60`, within 120 s)
    /// given one peer, `peer`, logging with `rust_log`; its output, however it ended.
    pub fn a_downloads_from(&self, dir: &Path, peer: &str, rust_log: &str) -> super::Output {
        let args = ["start", "photos.torrent", "--peer", peer, "--stall", "60"];
        super::process::run(
            TwoHosts::btorrent(&self.a, dir, &args).env("RUST_LOG", rust_log),
            std::time::Duration::from_secs(120),
        )
    }

    /// B seeds behind its router, the relay `relay` runs is the only peer A and B are given, and A
    /// downloads from B through both routers (4 MiB, over `family`): the relay's peer exchange
    /// names B to A, A's dial to B is dropped by B's router, A asks the relay for a rendezvous, the
    /// relay tells both to connect, and their uTP dials, crossing, open both routers. Asserts A's
    /// bytes are B's, that A asked, and that A and B met over uTP (B's router lets in nothing
    /// else; the relay, at 2 KB/s, could not have passed the file on); a btorrent relay must also
    /// say it introduced them. Without the introduction, A's download does not end.
    pub async fn a_is_introduced_to_b(&self, relay: Relay, family: Family) {
        let seeded = self.relay_and_seed_on_b_with(relay, family, 4 << 20).await;
        let a_dir = seeded.a_dir();
        let relay_for_a = Self::relay_for(family, Side::A);
        let got = self.a_downloads_from(a_dir, &relay_for_a, HOLEPUNCH_LOG);
        let logs = || {
            format!(
                "A:\n{}\n{}\nrelay ({relay:?}):\n{}\nB:\n{}",
                got.stdout,
                got.stderr,
                seeded.relay.log_text(),
                seeded.b.log_text()
            )
        };
        assert!(got.status.success(), "A's download failed: {}", logs());
        let downloaded = std::fs::read(a_dir.join("output/photos.bin")).unwrap();
        assert!(downloaded == seeded.data, "A's bytes differ from B's");
        assert!(
            got.stderr.contains("holepunch: asking for a rendezvous"),
            "{}",
            logs()
        );
        assert!(
            relay == Relay::Libtorrent || seeded.relay.log_text().contains("holepunch: introduced"),
            "{}",
            logs()
        );
        assert!(
            met_over_utp(&got.stderr, &Self::seen_as(family, Side::B))
                && met_over_utp(&seeded.b.log_text(), &Self::seen_as(family, Side::A)),
            "{}",
            logs()
        );
    }

    /// [`NattedPair::make`], or `None` (the test then ends) after printing why it cannot be made.
    pub fn make_or_skip() -> Option<NattedPair> {
        NattedPair::make()
            .inspect_err(|why| {
                println!("skipped: five network namespaces and nftables are needed (root, iproute2, nft): {why}")
            })
            .ok()
    }
}

/// What `RUST_LOG` the btorrents of a [`NattedPair`] log with: connections and introductions.
pub const HOLEPUNCH_LOG: &str =
    "btorrent_engine::holepunch=debug,btorrent_engine::peer=debug,btorrent_engine=info";

/// The relay and B's seed of [`NattedPair::relay_and_seed_on_b`], the bytes B seeds, and the
/// three hosts' folders (removed when dropped).
pub struct RelayAndSeed {
    pub relay: super::Proc,
    pub b: super::Proc,
    pub data: Vec<u8>,
    dirs: [tempfile::TempDir; 3],
}

impl RelayAndSeed {
    /// Host A's folder, which holds `photos.torrent`.
    pub fn a_dir(&self) -> &Path {
        self.dirs[1].path()
    }
}

/// The program the relay of [`NattedPair::relay_and_seed_on_b_with`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relay {
    Btorrent,
    Libtorrent,
}

/// The address family a [`NattedPair`] test runs over. IPv4: each router masquerades its LAN;
/// IPv6: the LANs' addresses are global and routed, each router's firewall alone keeps out what
/// comes in unasked (a home network's IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// One of the two hosts of a [`NattedPair`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A = 0,
    B = 1,
}

/// Whether `log` shows a uTP connection with a peer at `ip` (as [`NattedPair::seen_as`] writes it).
pub fn met_over_utp(log: &str, ip: &str) -> bool {
    let peer = format!("peer={ip}:");
    log.lines()
        .any(|l| l.contains(&peer) && l.contains("connected (") && l.contains("uTP)"))
}

impl Drop for NattedPair {
    fn drop(&mut self) {
        // The veth pairs go with their namespaces.
        for ns in [
            &self.relay,
            &self.router_a,
            &self.a,
            &self.router_b,
            &self.b,
        ] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A veth pair between two namespaces, each end with its /24 address, both up.
fn link(one: (&str, &str, &str), other: (&str, &str, &str)) -> Result<(), String> {
    ip(&[
        "link", "add", one.1, "type", "veth", "peer", "name", other.1,
    ])?;
    for (ns, dev, addr) in [one, other] {
        ip(&["link", "set", dev, "netns", ns])?;
        ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
        ip(&["-n", ns, "link", "set", dev, "up"])?;
    }
    Ok(())
}

/// Turns IPv4 and IPv6 forwarding on in `ns`.
fn forwarding(ns: &str) -> Result<(), String> {
    let out = TwoHosts::exec(ns, "sysctl")
        .args([
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run sysctl in {ns}: {e}"))?;
    out.status
        .success()
        .then_some(())
        .ok_or_else(|| format!("sysctl in {ns}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// A home router's rules with WAN interface `wan`: the LAN masqueraded behind the WAN address
/// (source ports kept where free, as most routers do), and nothing new let in from the WAN, neither
/// to the router nor through it. A packet dropped in `input` leaves no connection state behind.
fn home_router_rules(wan: &str) -> String {
    format!(
        "table ip nat {{
           chain post {{ type nat hook postrouting priority srcnat; policy accept;
             oifname \"{wan}\" masquerade; }}
         }}
         table inet fw {{
           chain input {{ type filter hook input priority filter; policy accept;
             iifname \"{wan}\" ct state new drop; }}
           chain forward {{ type filter hook forward priority filter; policy accept;
             iifname \"{wan}\" ct state new drop; }}
         }}"
    )
}

/// Loads `rules` into the nftables of `ns`.
fn nft(ns: &str, rules: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = TwoHosts::exec(ns, "nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft in {ns}: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .map_err(|e| format!("nft in {ns}: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("nft in {ns}: {e}"))?;
    out.status
        .success()
        .then_some(())
        .ok_or_else(|| format!("nft in {ns}: {}", String::from_utf8_lossy(&out.stderr)))
}
