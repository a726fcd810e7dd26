//! Port forwarding on the router, against doubles of one on a loopback address of their own
//! (`port_forwarding_gateway` names it): a daemon whose peer listens on every interface asks
//! NAT-PMP for its TCP and uTP ports, or UPnP IGD when NAT-PMP does not answer; follows the RPC's
//! `port-forwarding-enabled`, `b-port` and a moved peer port; and deletes its mappings when
//! switched off and when it stops. A peer on loopback asks nothing, and says why. `b-port` also
//! shows the addresses peers report seeing this machine at.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::support::cli::bin;
use crate::support::gateway::{self, Heard, NatPmpDouble, UpnpDouble};
use crate::support::process::{free_port, run_ok};
use crate::support::rpc::{parse_metrics, poll, request, RpcDaemon};
use crate::support::runtime;

/// A daemon in `dir` whose peer listens on every address (`::`, the default) and asks the router
/// at `ip`.
fn daemon_asking(dir: &Path, ip: std::net::Ipv4Addr) -> RpcDaemon {
    let mut cmd = bin();
    cmd.env_remove("BTORRENT_PORT_FORWARDING");
    RpcDaemon::start_cmd(dir, "::", &gateway::setting(ip), cmd)
}

fn peer_port(d: &RpcDaemon) -> u16 {
    d.client()
        .ok("session-get", json!({"fields": ["peer-port"]}))["peer-port"]
        .as_u64()
        .unwrap() as u16
}

/// Whether `all` holds a request for each of TCP and UDP `port` (its inside or outside number)
/// that `is` takes.
fn both(all: &[Heard], port: u16, is: impl Fn(&Heard) -> bool) -> bool {
    let has = |p: &str| {
        all.iter()
            .any(|h| h.protocol == p && (h.internal == port || h.external == port) && is(h))
    };
    has("TCP") && has("UDP")
}

/// Waits until `heard()` holds a request for each of TCP and UDP `port` that `is` takes.
fn wait_both(
    what: &str,
    heard: impl Fn() -> Vec<Heard>,
    port: u16,
    is: impl Fn(&Heard) -> bool,
) -> Vec<Heard> {
    poll(what, 30, || {
        let all = heard();
        both(&all, port, &is).then_some(all)
    })
}

/// `btorrent port` run in `dir` (it asks the daemon running there).
fn b_port(dir: &Path, args: &[&str]) -> String {
    run_ok(
        bin().arg("port").args(args).current_dir(dir),
        Duration::from_secs(60),
    )
}

fn sigterm_and_wait(d: &mut RpcDaemon) {
    let pid = d.proc.child.id() as i32;
    // SAFETY: a plain kill(2) of the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = poll("the daemon to stop", 60, || d.proc.exited());
    assert!(status.success(), "{status:?}: {}", d.proc.log_text());
}

#[test]
fn nat_pmp_forwards_the_peer_port_follows_switches_and_a_moved_port_and_lets_go_at_exit() {
    let rt = runtime();
    let ip = gateway::own_loopback_ip();
    let router = rt.block_on(NatPmpDouble::start(ip));
    let dir = tempfile::tempdir().unwrap();
    let mut d = daemon_asking(dir.path(), ip);
    let mut c = d.client();
    let port = peer_port(&d);

    // TCP and uTP's UDP, the same external port asked, RFC 6886's two hours.
    let heard = wait_both("the mappings", || router.heard(), port, |h| !h.delete);
    assert!(
        heard
            .iter()
            .all(|h| h.external == port && h.lifetime == 7200),
        "{heard:?}"
    );
    let s = c.ok(
        "session-get",
        json!({"fields": ["port-forwarding-enabled"]}),
    );
    assert_eq!(s["port-forwarding-enabled"], true, "{s}");
    let shown = poll("b-port to show the mapping", 30, || {
        let out = b_port(dir.path(), &[]);
        out.contains("forwarding: by NAT-PMP").then_some(out)
    });
    assert!(
        shown.contains(&format!(
            "by NAT-PMP at {ip} (outside: {})",
            gateway::EXTERNAL_IP
        )),
        "{shown}"
    );
    assert!(shown.contains(&format!("TCP {port}")), "{shown}");
    assert!(shown.contains(&format!("UDP {port}")), "{shown}");
    // So do /metrics and the RPC's port-test (transmission-remote --port-test, the web client).
    let metrics = request(d.port, "GET", "/metrics", &[], b"").body;
    assert_eq!(
        parse_metrics(&metrics)["btorrent_ports_forwarded"],
        2.0,
        "{metrics}"
    );
    let t = c.ok("port-test", json!({}));
    let detail = t["port-test-detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "port forwarding: TCP {port}, UDP {port} by NAT-PMP at {ip}, outside {}",
            gateway::EXTERNAL_IP
        )),
        "{t}"
    );
    // The daemon's log says so once the router answered.
    let said = format!("port forwarding: TCP {port}, UDP {port} by NAT-PMP at {ip}");
    poll("the daemon's log line", 30, || {
        d.proc.log_text().contains(&said).then_some(())
    });

    // Switched off over the RPC: both deleted, and torrents.toml says so.
    c.ok("session-set", json!({"port-forwarding-enabled": false}));
    wait_both("the deletions", || router.heard(), port, |h| h.delete);
    let s = c.ok(
        "session-get",
        json!({"fields": ["port-forwarding-enabled"]}),
    );
    assert_eq!(s["port-forwarding-enabled"], false, "{s}");
    let toml = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert!(toml.contains("port_forwarding = false"), "{toml}");
    poll("the daemon's log to say off", 30, || {
        d.proc
            .log_text()
            .contains("port forwarding: off")
            .then_some(())
    });
    assert!(b_port(dir.path(), &[]).contains("forwarding: off"));

    // On again from a one-shot b-port: the daemon reads torrents.toml and maps again.
    let before = router.heard().len();
    b_port(dir.path(), &["--forward"]);
    poll("the mappings again", 30, || {
        let again = router.heard()[before..].to_vec();
        (again
            .iter()
            .filter(|h| !h.delete && h.internal == port)
            .count()
            >= 2)
            .then_some(())
    });

    // The peer port moved over the RPC: the new one mapped, the old one deleted.
    let moved = crate::support::process::free_port();
    c.ok("session-set", json!({"peer-port": moved}));
    wait_both(
        "the moved port's mappings",
        || router.heard(),
        moved,
        |h| !h.delete,
    );
    let after = router.heard();
    assert!(
        after
            .iter()
            .filter(|h| h.delete && h.internal == port)
            .count()
            >= 4,
        "the old port deleted (once when switched off, once when it moved): {after:?}"
    );

    // A daemon that stops deletes what it holds.
    let before = router.heard().len();
    sigterm_and_wait(&mut d);
    let last = router.heard()[before..].to_vec();
    assert!(both(&last, moved, |h| h.delete), "{last:?}");
}

#[test]
fn upnp_forwards_the_peer_port_when_the_router_does_not_answer_nat_pmp() {
    let rt = runtime();
    let ip = gateway::own_loopback_ip();
    // Nothing on NAT-PMP's port: the first try ends at once (ICMP), and UPnP is searched.
    let router = rt.block_on(UpnpDouble::start(ip));
    let dir = tempfile::tempdir().unwrap();
    let mut d = daemon_asking(dir.path(), ip);
    let port = peer_port(&d);
    let heard = wait_both("the UPnP mappings", || router.heard(), port, |h| !h.delete);
    for h in heard.iter().filter(|h| !h.delete) {
        assert_eq!(
            (h.internal, h.external, h.lifetime),
            (port, port, 3600),
            "{h:?}"
        );
        // The mapping points at the address of ours that faces the router.
        let client: std::net::IpAddr = h.client.as_deref().unwrap().parse().unwrap();
        assert!(client.is_loopback(), "{h:?}");
    }
    let shown = poll("b-port to show the mapping", 30, || {
        let out = b_port(dir.path(), &["--json"]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).ok()?;
        (v["state"] == "forwarded").then_some(v)
    });
    assert_eq!(shown["via"], "UPnP", "{shown}");
    assert_eq!(
        shown["external_ip"],
        gateway::EXTERNAL_IP.to_string(),
        "{shown}"
    );
    assert_eq!(shown["ports"].as_array().unwrap().len(), 2, "{shown}");
    let said = format!("port forwarding: TCP {port}, UDP {port} by UPnP at {ip}");
    poll("the daemon's log line", 30, || {
        d.proc.log_text().contains(&said).then_some(())
    });

    sigterm_and_wait(&mut d);
    let all = router.heard();
    assert!(both(&all, port, |h| h.delete), "{all:?}");
}

/// With `tracker_port_forwarding`, the embedded tracker's port is forwarded with the peer port,
/// TCP (HTTP announces) and UDP (BEP 15), so machines outside can announce to it; `b-port` lists
/// it. (Without it only the peer port is: `btorrent_ports_forwarded` is 2 above.)
#[test]
fn the_trackers_port_is_forwarded_too_when_asked() {
    let rt = runtime();
    let ip = gateway::own_loopback_ip();
    let router = rt.block_on(NatPmpDouble::start(ip));
    let dir = tempfile::tempdir().unwrap();
    let tracker = free_port();
    let mut cmd = bin();
    cmd.env_remove("BTORRENT_PORT_FORWARDING");
    let extra = format!(
        "{}\ntracker_bind = \"0.0.0.0:{tracker}\"\ntracker_port_forwarding = true",
        gateway::setting(ip)
    );
    let d = RpcDaemon::start_cmd(dir.path(), "::", &extra, cmd);
    let port = peer_port(&d);
    wait_both(
        "the peer port's mappings",
        || router.heard(),
        port,
        |h| !h.delete,
    );
    let heard = wait_both(
        "the tracker port's mappings",
        || router.heard(),
        tracker,
        |h| !h.delete,
    );
    assert!(
        heard
            .iter()
            .filter(|h| h.internal == tracker)
            .all(|h| h.external == tracker),
        "{heard:?}"
    );
    let shown = poll("b-port to show the tracker's port", 30, || {
        let out = b_port(dir.path(), &[]);
        out.contains(&format!("UDP {tracker}")).then_some(out)
    });
    assert!(shown.contains(&format!("TCP {tracker}")), "{shown}");
}

#[test]
fn a_peer_on_loopback_forwards_nothing_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = bin();
    cmd.env_remove("BTORRENT_PORT_FORWARDING");
    let d = RpcDaemon::start_cmd(dir.path(), "127.0.0.1", "", cmd);
    let mut c = d.client();
    let s = c.ok(
        "session-get",
        json!({"fields": ["port-forwarding-enabled"]}),
    );
    assert_eq!(s["port-forwarding-enabled"], false, "{s}");
    let r = c.call("session-set", json!({"port-forwarding-enabled": true}));
    let why = r["result"].as_str().unwrap();
    assert!(
        why.contains("port-forwarding-enabled: this session listens on loopback"),
        "{why}"
    );
    let out = b_port(dir.path(), &[]);
    assert!(
        out.contains("forwarding: off (the peer listens on loopback"),
        "{out}"
    );
}

/// The engine's port mapper alone, its task running on `rt` until [`Mapping::end`].
struct Mapping {
    mapper: std::sync::Arc<btorrent::engine::portmap::PortMapper>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Mapping {
    /// A mapper switched on, asking the router at `ip` for `ports()`, for a peer on `listen`.
    fn start(
        rt: &tokio::runtime::Runtime,
        ip: std::net::Ipv4Addr,
        listen: &str,
        ports: impl Fn() -> Vec<(btorrent::engine::portmap::Protocol, u16)> + Send + 'static,
    ) -> Mapping {
        let mapper =
            btorrent::engine::portmap::PortMapper::new(true, Some(ip), listen.parse().unwrap());
        let stop = tokio_util::sync::CancellationToken::new();
        let wanted = move || {
            let each = |(protocol, port)| btorrent::engine::portmap::Wanted {
                protocol,
                port,
                ipv6: true,
            };
            ports().into_iter().map(each).collect()
        };
        let task = rt.spawn(mapper.clone().run(wanted, stop.clone()));
        Mapping { mapper, stop, task }
    }

    /// Stops the task and waits for it.
    fn end(self, rt: &tokio::runtime::Runtime) {
        self.stop.cancel();
        rt.block_on(self.task).unwrap();
    }
}

/// The engine's mapper alone: a short lifetime granted is renewed at half of it, and a switch-off
/// deletes the mapping and says so in the status.
#[test]
fn a_mapping_is_renewed_at_half_its_lifetime_and_deleted_when_switched_off() {
    use btorrent::engine::portmap::{ForwardState, Protocol};
    let rt = runtime();
    let ip = gateway::own_loopback_ip();
    let router = rt.block_on(NatPmpDouble::start(ip));
    router.grant.store(4, std::sync::atomic::Ordering::SeqCst);
    let m = Mapping::start(&rt, ip, "0.0.0.0", || vec![(Protocol::Tcp, 50_123)]);
    let mapper = &m.mapper;
    // Renewed: asked again after about 2 s, not after the 7,200 s it asked for.
    poll("the mapping renewed", 30, || {
        let maps = router.heard().iter().filter(|h| !h.delete).count();
        (maps >= 2).then_some(())
    });
    let s = mapper.status();
    assert_eq!((s.state, s.on), (ForwardState::Forwarded, true), "{s:?}");
    assert_eq!(s.via.as_deref(), Some("NAT-PMP"), "{s:?}");
    assert_eq!(s.external_ip, Some(gateway::EXTERNAL_IP.into()), "{s:?}");
    mapper.switch(false);
    poll("the mapping deleted", 30, || {
        router
            .heard()
            .iter()
            .any(|h| h.delete && h.internal == 50_123)
            .then_some(())
    });
    poll("the status off", 30, || {
        (mapper.status().state == ForwardState::Off).then_some(())
    });
    m.end(&rt);
}

/// A NAT-PMP router that gives another port outside (ours is another machine's there): the
/// mapper shows it, and each renewal suggests the port given, as RFC 6886 asks.
#[test]
fn a_nat_pmp_renewal_asks_for_the_port_outside_it_was_given() {
    use btorrent::engine::portmap::Protocol;
    let rt = runtime();
    let ip = gateway::own_loopback_ip();
    let router = rt.block_on(NatPmpDouble::start(ip));
    router.grant.store(4, std::sync::atomic::Ordering::SeqCst);
    router
        .give_port
        .store(41_000, std::sync::atomic::Ordering::SeqCst);
    let m = Mapping::start(&rt, ip, "0.0.0.0", || vec![(Protocol::Tcp, 50_125)]);
    let asked = poll("the mapping renewed", 30, || {
        let maps: Vec<u16> = router
            .heard()
            .iter()
            .filter(|h| !h.delete)
            .map(|h| h.external)
            .collect();
        (maps.len() >= 2).then_some(maps)
    });
    assert_eq!(asked[..2], [50_125, 41_000], "{asked:?}");
    assert_eq!(m.mapper.outside_port(Protocol::Tcp, 50_125), Some(41_000));
    m.end(&rt);
}

/// A stop that comes while a renewal waits for the router's answer still deletes the mapping:
/// the renewal no longer takes it out of the mapper's hands until answered.
#[test]
fn a_stop_during_a_renewal_still_deletes_the_mapping() {
    use btorrent::engine::portmap::{ForwardState, Protocol};
    let rt = runtime();
    let ip = gateway::own_loopback_ip();
    let router = rt.block_on(NatPmpDouble::start(ip));
    router.grant.store(4, std::sync::atomic::Ordering::SeqCst);
    let m = Mapping::start(&rt, ip, "0.0.0.0", || vec![(Protocol::Tcp, 50_126)]);
    poll("the mapping", 30, || {
        (m.mapper.status().state == ForwardState::Forwarded).then_some(())
    });
    router
        .silent
        .store(true, std::sync::atomic::Ordering::SeqCst);
    poll("the renewal asked", 30, || {
        let maps = router.heard().iter().filter(|h| !h.delete).count();
        (maps >= 2).then_some(())
    });
    m.end(&rt);
    let heard = router.heard();
    assert!(
        heard.iter().any(|h| h.delete && h.internal == 50_126),
        "{heard:?}"
    );
}

/// A renewal the router refuses for one port of two: the refused port's mapping is deleted at
/// once (the router would keep it to the end of its lease), the other kept.
#[test]
fn a_mapping_the_renewal_loses_is_deleted() {
    use btorrent::engine::portmap::{ForwardState, Protocol};
    let rt = runtime();
    let ip = gateway::own_loopback_ip();
    let router = rt.block_on(NatPmpDouble::start(ip));
    router.grant.store(4, std::sync::atomic::Ordering::SeqCst);
    let m = Mapping::start(&rt, ip, "0.0.0.0", || {
        vec![(Protocol::Tcp, 50_127), (Protocol::Udp, 50_127)]
    });
    poll("both mapped", 30, || {
        let s = m.mapper.status();
        (s.state == ForwardState::Forwarded && s.ports.len() == 2).then_some(())
    });
    router
        .refuse_udp
        .store(true, std::sync::atomic::Ordering::SeqCst);
    poll("the refused port's mapping deleted", 30, || {
        let heard = router.heard();
        heard
            .iter()
            .any(|h| h.delete && h.protocol == "UDP" && h.internal == 50_127)
            .then_some(())
    });
    let heard = router.heard();
    assert!(
        !heard.iter().any(|h| h.delete && h.protocol == "TCP"),
        "the kept port is not deleted: {heard:?}"
    );
    let s = m.mapper.status();
    assert_eq!(s.ports.len(), 1, "{s:?}");
    assert_eq!(s.ports[0].protocol, Protocol::Tcp, "{s:?}");
    m.end(&rt);
}

/// A router that forwards TCP but refuses UDP: the TCP mapping is kept (asked once, not let go
/// and asked again at each turn of the task for the port it will not give), and the status names
/// the refusal.
#[test]
fn a_port_the_router_refuses_is_named_and_the_others_kept() {
    use btorrent::engine::portmap::{ForwardState, Protocol};
    let rt = runtime();
    let ip = gateway::own_loopback_ip();
    let router = rt.block_on(NatPmpDouble::start(ip));
    router
        .refuse_udp
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // Counts the task's turns (each looks at the ports).
    let turns = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = turns.clone();
    let ports = move || {
        t.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        vec![(Protocol::Tcp, 50_124), (Protocol::Udp, 50_124)]
    };
    let m = Mapping::start(&rt, ip, "::", ports);
    let mapper = &m.mapper;
    let s = poll("the TCP mapping", 30, || {
        let s = mapper.status();
        (s.state == ForwardState::Forwarded).then_some(s)
    });
    assert_eq!(s.ports.len(), 1, "{s:?}");
    assert_eq!(s.ports[0].protocol, Protocol::Tcp, "{s:?}");
    let why = s.error.clone().unwrap_or_default();
    assert!(
        why.contains("UDP 50124") && why.contains("not authorized"),
        "{why}"
    );
    // Two more turns of the task: a mapper that took the refused port for a moved one would have
    // let go of the TCP mapping and asked for it again by now.
    let seen = turns.load(std::sync::atomic::Ordering::SeqCst);
    poll("two more turns", 60, || {
        (turns.load(std::sync::atomic::Ordering::SeqCst) >= seen + 2).then_some(())
    });
    mapper.switch(false);
    poll("the TCP mapping deleted", 30, || {
        router.heard().iter().any(|h| h.delete).then_some(())
    });
    let tcp_asked = router
        .heard()
        .iter()
        .filter(|h| h.protocol == "TCP" && !h.delete)
        .count();
    assert_eq!(tcp_asked, 1, "{:?}", router.heard());
    m.end(&rt);
}

/// What peers report seeing us at (`yourip`): a daemon that downloaded from a peer on loopback
/// shows the address that peer saw, through `b-port` and `port()`.
#[test]
fn b_port_shows_the_address_peers_see_this_machine_at() {
    let dir = tempfile::tempdir().unwrap();
    let _daemon = RpcDaemon::start(dir.path(), "");
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    crate::support::write_random(&src.join("a.bin"), 100_000, 17);
    let meta = crate::support::torrent(&src.join("a.bin"), 16 * 1024, vec![]);
    let file = dir.path().join("a.torrent");
    std::fs::write(&file, meta.as_bytes()).unwrap();
    let rt = runtime();
    let (seeder, _h) = rt.block_on(crate::support::seeder(&meta, &src));
    // Handed to the daemon, which downloads it from the seeder.
    let peer = seeder.listen_addr().to_string();
    let file = file.to_str().unwrap();
    run_ok(
        bin()
            .args(["start", file, "-o", "dl", "--peer", &peer])
            .current_dir(dir.path()),
        Duration::from_secs(60),
    );
    let out = b_port(dir.path(), &[]);
    assert!(
        out.contains("peers see this machine as 127.0.0.1 (1 peer)"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(b_port(dir.path(), &["--json"]).trim()).unwrap();
    assert_eq!(
        v["seen_as"],
        json!([{"ip": "127.0.0.1", "peers": 1}]),
        "{v}"
    );
}

/// Another machine behind the router holds our ports outside: the router is asked over UPnP for
/// others, and the peer port outside is what the DHT is told (peers beyond the router reach us
/// there), while a tracker on the local network is told our own.
#[test]
fn a_port_taken_at_the_router_is_forwarded_from_another_which_the_dht_is_told() {
    use btorrent::engine::portmap::{ForwardState, Protocol};
    use btorrent::engine::SessionConfig;
    use futures::StreamExt;
    use std::net::SocketAddr;
    let rt = runtime();
    let ip = gateway::own_loopback_ip();
    let router = rt.block_on(UpnpDouble::start(ip));
    router
        .taken_same
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let net = crate::support::dht::testnet(4);
    let (tracker, asked) = rt.block_on(crate::support::tracker::http_double(|_| {
        (200, b"d8:intervali1800e5:peers0:e".to_vec())
    }));
    let src = tempfile::tempdir().unwrap();
    crate::support::write_random(&src.path().join("film.bin"), 200_000, 31);
    let meta = crate::support::torrent(
        &src.path().join("film.bin"),
        64 * 1024,
        vec![format!("{tracker}/announce")],
    );
    rt.block_on(async {
        let s = crate::support::session_with(SessionConfig {
            listen: "0.0.0.0:0".parse().unwrap(),
            port_forwarding: true,
            port_forwarding_gateway: Some(ip),
            ..crate::support::dht::session_config(&net.bootstrap)
        })
        .await;
        let own = s.listen_addr().port();
        crate::support::wait_until("the peer port forwarded", Duration::from_secs(30), || {
            s.port_forwarding().state == ForwardState::Forwarded
        })
        .await;
        let st = s.port_forwarding();
        let tcp = st
            .ports
            .iter()
            .find(|p| p.protocol == Protocol::Tcp)
            .copied()
            .unwrap_or_else(|| panic!("{st:?}"));
        assert_eq!(tcp.internal, own);
        assert_ne!(tcp.external, own, "{st:?}");
        let outside = tcp.external;
        // Asked for the same number first, refused, then given another.
        let heard = router.heard();
        assert!(
            heard.iter().any(|h| h.internal == own && h.external == own)
                && heard
                    .iter()
                    .any(|h| h.internal == own && h.external == outside),
            "{heard:?}"
        );

        let add = btorrent::engine::AddOptions {
            data_dir: src.path().to_path_buf(),
            ..Default::default()
        };
        let h = s.add(meta.clone(), add).await.unwrap();
        crate::support::wait_complete(&h, 30).await;
        let node = net.nodes[0].clone().as_async();
        let want = SocketAddr::from(([127, 0, 0, 1], outside));
        crate::support::wait_until_async(
            "the DHT to list the peer port outside",
            Duration::from_secs(60),
            || {
                let node = node.clone();
                async move {
                    let mut found = node.get_peers(mainline::Id::from(meta.info_hash.0));
                    while let Some(batch) = found.next().await {
                        if batch.into_iter().any(|a| SocketAddr::V4(a) == want) {
                            return true;
                        }
                    }
                    false
                }
            },
        )
        .await;
        // The tracker, on loopback, reaches us at our own port.
        crate::support::wait_until("an announce", Duration::from_secs(30), || {
            !asked.lock().unwrap().is_empty()
        })
        .await;
        let lines = asked.lock().unwrap().clone();
        assert!(
            lines.iter().all(|l| l.contains(&format!("port={own}&"))),
            "{lines:?}"
        );
        s.shutdown(Duration::from_secs(5)).await;
    });
    // Let go of the ports outside it was given.
    assert!(
        router
            .heard()
            .iter()
            .any(|h| h.delete && h.external == outside_of(&router, "TCP")),
        "{:?}",
        router.heard()
    );
}

/// The port outside the double last gave for `protocol` (a mapping not refused as taken).
fn outside_of(router: &UpnpDouble, protocol: &str) -> u16 {
    router
        .heard()
        .iter()
        .rev()
        .find(|h| !h.delete && h.protocol == protocol && h.internal != h.external)
        .map_or(0, |h| h.external)
}
