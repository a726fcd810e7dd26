//! Port control with a real router daemon: miniupnpd (Debian's `miniupnpd-nftables`) on host B's
//! home router ([`NattedPair::miniupnpd_on_b`]). B's seed asks it by PCP to open the peer port in
//! its IPv6 firewall; host A, behind its own router, then dials B straight in over IPv6 and
//! downloads, where without the pinhole the router drops the dial. At B's exit the pinholes are
//! closed. Skipped, saying why, where the namespaces, nftables or miniupnpd are not to be had.

use std::time::Duration;

use crate::support::netns::{Family, NattedPair, Side, TwoHosts};
use crate::support::rpc::parse_metrics;
use crate::support::{process, wait_until_async, write_random, Proc};

/// What B's router lets in for B's peer port 6881 at `ip`, by protocol (6 TCP, 17 UDP), as nft
/// lists miniupnpd's rules (`th dport 6881 @nh,192,128 0x2001... @nh,48,8 0x6 accept`).
fn opened_for_6881(rules: &str, ip: &str) -> Vec<&'static str> {
    let ip: std::net::Ipv6Addr = ip.parse().unwrap();
    let to = format!("0x{:032x} ", u128::from(ip));
    let mut open = Vec::new();
    for (proto, hex) in [("TCP", "0x6 "), ("UDP", "0x11 ")] {
        if rules.lines().any(|l| {
            l.contains("dport 6881") && l.contains(&to) && l.contains(hex) && l.contains("accept")
        }) {
            open.push(proto);
        }
    }
    open
}

/// B's address on its LAN.
const B_IP: &str = "2001:2:7::2";

/// Where B's daemon serves the RPC, on B's loopback.
const B_RPC_PORT: u16 = 9091;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs miniupnpd-nftables, root, iproute2 and nftables"]
async fn a_seed_behind_a_miniupnpd_router_opens_its_ipv6_port_and_is_dialed_from_outside() {
    let Some(hosts) = NattedPair::make_or_skip() else {
        return;
    };
    let dirs = [(); 3].map(|_| tempfile::tempdir().unwrap());
    let [router_dir, a_dir, b_dir] = dirs.each_ref().map(|d| d.path());
    let router = match hosts.miniupnpd_on_b(router_dir).await {
        Ok(r) => r,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let b_at = NattedPair::seen_as(Family::V6, Side::B);
    // Before B asks, the router drops what comes in from outside: a dial from the relay to B's
    // peer port times out (nothing listens there yet; what the router let through would be
    // refused at once).
    let dial_from_relay = |port: u16| {
        let script = format!(
            "import socket\ns=socket.socket(socket.AF_INET6)\ns.settimeout(3)\n\
             try:\n    s.connect(('{}', {port}))\n    print('connected')\n\
             except socket.timeout:\n    print('timed out')\n\
             except OSError as e:\n    print('refused' if e.errno == 111 else e)\n",
            b_at.trim_matches(['[', ']'])
        );
        let out = process::run(
            TwoHosts::exec(&hosts.relay, "python3").args(["-c", &script]),
            Duration::from_secs(20),
        );
        out.stdout.trim().to_string()
    };
    assert_eq!(dial_from_relay(6881), "timed out");

    let data = write_random(&b_dir.join("output/photos.bin"), 4 << 20, 61);
    // B's daemon serves the RPC (and its metrics) on its own loopback.
    std::fs::write(
        b_dir.join("torrents.toml"),
        format!("[settings]\nrpc_bind = \"127.0.0.1:{B_RPC_PORT}\"\n"),
    )
    .unwrap();
    process::run_ok(
        &mut TwoHosts::btorrent(
            &hosts.b,
            b_dir,
            &["create", "output/photos.bin", "--no-tracker"],
        ),
        Duration::from_secs(30),
    );
    let torrent = b_dir.join("torrents/photos.bin.torrent");
    std::fs::copy(&torrent, a_dir.join("photos.torrent")).unwrap();
    // B's daemon seeds what `create` registered, and says how port forwarding stands.
    let mut b = Proc::spawn_logged(
        &mut TwoHosts::btorrent(&hosts.b, b_dir, &["daemon"]),
        b_dir.join("b.log"),
    );
    let logs = |b: &Proc| {
        format!(
            "B:\n{}\nrouter:\n{}\nrules:\n{}",
            b.log_text(),
            router.log_text(),
            hosts.opened_on_b()
        )
    };
    wait_until_async(
        "B to open its port in the router's IPv6 firewall",
        Duration::from_secs(60),
        || async { opened_for_6881(&hosts.opened_on_b(), B_IP) == ["TCP", "UDP"] },
    )
    .await;
    // The daemon's log says so, in its line on port forwarding: IPv4 is asked too, by NAT-PMP
    // and then UPnP (found by SSDP, asked over SOAP), and the router's refusal named (it forwards
    // nothing from a WAN address of a reserved range).
    let pinholes = "IPv6 pinholes: TCP 6881, UDP 6881 by PCP at 2001:2:7::1, outside 2001:2:7::2";
    wait_until_async(
        "B's daemon to log the pinholes",
        Duration::from_secs(30),
        || async { b.log_text().contains(pinholes) },
    )
    .await;
    let log = b.log_text();
    let line = log.lines().find(|l| l.contains(pinholes)).unwrap();
    assert!(
        line.contains("port forwarding failed")
            && line.contains("UPnP gateway at 198.18.7.1:")
            && line.contains("501: ActionFailed"),
        "{}",
        logs(&b)
    );
    // `b-port` on B says so (it asks the daemon running there).
    let port = process::run_ok(
        &mut TwoHosts::btorrent(&hosts.b, b_dir, &["port"]),
        Duration::from_secs(30),
    );
    assert!(
        port.contains(
            "IPv6 firewall: open for 2001:2:7::2 by PCP at 2001:2:7::1: TCP 6881, UDP 6881"
        ),
        "{port}\n{}",
        logs(&b)
    );
    // So do its metrics.
    let metrics = process::run_ok(
        TwoHosts::exec(&hosts.b, "curl")
            .args(["-sf", &format!("http://127.0.0.1:{B_RPC_PORT}/metrics")]),
        Duration::from_secs(30),
    );
    assert_eq!(
        parse_metrics(&metrics)["btorrent_ipv6_pinholes_open"],
        2.0,
        "{metrics}"
    );
    // Another port of B's is still closed.
    assert_eq!(dial_from_relay(6882), "timed out");

    // A, behind its own router, dials B over IPv6 and downloads.
    let b_peer = format!("{b_at}:6881");
    let log = "btorrent_engine::peer=debug,btorrent_engine=info";
    let got = hosts.a_downloads_from(a_dir, &b_peer, log);
    assert!(
        got.status.success(),
        "A's download failed:\n{}\n{}",
        got.stderr,
        logs(&b)
    );
    assert!(
        std::fs::read(a_dir.join("output/photos.bin")).unwrap() == data,
        "A's bytes differ from B's"
    );
    assert!(
        got.stderr.contains(&format!("peer={b_peer}")) && got.stderr.contains("connected (dialed"),
        "A did not dial B: {}",
        got.stderr
    );

    // B's address changes, as privacy extensions change it by the day (a new one preferred, the
    // old one deprecated): within seconds, long before the pinholes' two hours end, B closes
    // those of the old address and opens them for the new one.
    let dev = hosts.b_device();
    let ip = |args: &[&str]| {
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["-n", &hosts.b]).args(args);
        process::run_ok(&mut cmd, Duration::from_secs(10));
    };
    ip(&["-6", "addr", "add", "2001:2:7::3/64", "dev", &dev, "nodad"]);
    ip(&[
        "-6",
        "addr",
        "change",
        "2001:2:7::2/64",
        "dev",
        &dev,
        "preferred_lft",
        "0",
    ]);
    wait_until_async(
        "B's pinholes to follow its new address",
        Duration::from_secs(30),
        || async {
            let rules = hosts.opened_on_b();
            opened_for_6881(&rules, "2001:2:7::3") == ["TCP", "UDP"]
                && opened_for_6881(&rules, B_IP).is_empty()
        },
    )
    .await;

    // B stops: it closes what it opened.
    let pid = b.child.id().to_string();
    process::run_ok(
        std::process::Command::new("kill").args(["-TERM", &pid]),
        Duration::from_secs(10),
    );
    b.wait_exit(Duration::from_secs(30)).await;
    wait_until_async(
        "the router to close B's port",
        Duration::from_secs(20),
        || async { opened_for_6881(&hosts.opened_on_b(), "2001:2:7::3").is_empty() },
    )
    .await;
}
