//! The Transmission RPC of `btorrent daemon` (rpc_bind), its guard and its session side: the
//! session-id handshake, basic auth, the whitelist, bad requests answered with clear `result`
//! strings, session limits, port-test, free-space, `session-close`, and the web client's folder (`/metrics` is in
//! `rpc_torrents`, with torrents to count).

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::rpc::{parse_metrics, poll, request, torrent_get, RpcDaemon};

#[test]
fn the_session_id_handshake_basic_auth_and_the_whitelist_guard_the_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(
        dir.path(),
        "rpc_username = \"alice\"\nrpc_password = \"s3cret\"\n",
    );
    let body = br#"{"method":"session-get"}"#;
    // No credentials: 401, asking for basic auth.
    let r = request(d.port, "POST", "/transmission/rpc", &[], body);
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        r.header("WWW-Authenticate")
            .is_some_and(|v| v.starts_with("Basic")),
        "{r:?}"
    );
    // A wrong password is refused the same way.
    let mut wrong = d.client().with_auth("alice", "guess");
    assert_eq!(wrong.post_raw(body).status, 401);
    // Right credentials, no session id: 409 with the id to send.
    let c = d.client().with_auth("alice", "s3cret");
    let auth = c.auth.clone().unwrap();
    let r = request(
        d.port,
        "POST",
        "/transmission/rpc",
        &[("Authorization", &auth)],
        body,
    );
    assert_eq!(r.status, 409, "{r:?}");
    // With the RPC's version: Transmission 4.1's clients then speak JSON-RPC 2.0.
    assert_eq!(
        r.header("X-Transmission-Rpc-Version"),
        Some("6.0.1"),
        "{r:?}"
    );
    // A GET learns the id the same way (Sonarr and Radarr ask like this first).
    let g = request(
        d.port,
        "GET",
        "/transmission/rpc",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(g.status, 409, "{g:?}");
    let sid = r
        .header("X-Transmission-Session-Id")
        .expect("the id in the 409")
        .to_string();
    let r = request(
        d.port,
        "POST",
        "/transmission/rpc",
        &[
            ("Authorization", &auth),
            ("X-Transmission-Session-Id", "stale"),
        ],
        body,
    );
    assert_eq!(r.status, 409, "a wrong id is refused too");
    let r = request(
        d.port,
        "POST",
        "/transmission/rpc",
        &[
            ("Authorization", &auth),
            ("X-Transmission-Session-Id", &sid),
        ],
        body,
    );
    assert_eq!(r.status, 200, "{r:?}");
    let v = r.json();
    assert_eq!(v["result"], "success");
    assert_eq!(v["arguments"]["rpc-version"], 19);
    assert_eq!(v["arguments"]["session-id"], sid.as_str());
    // The password was written back as a salted hash.
    let toml = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert!(
        !toml.contains("s3cret") && toml.contains("salted-sha1:"),
        "{toml}"
    );
    drop(d);

    // A whitelist that leaves 127.0.0.1 out: 403, whatever the credentials.
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "rpc_whitelist = [\"10.0.0.0/8\", \"::1\"]\n");
    let r = request(d.port, "POST", "/transmission/rpc", &[], body);
    assert_eq!(r.status, 403, "{r:?}");
    assert!(
        r.body.contains("127.0.0.1 is not in rpc_whitelist"),
        "{r:?}"
    );
    let r = request(d.port, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 403, "/metrics is guarded too");
}

#[test]
fn bad_requests_get_clear_result_strings() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let r = c.post_raw(b"{\"method\": ");
    assert_eq!(r.status, 400);
    assert!(
        r.json()["result"]
            .as_str()
            .unwrap()
            .starts_with("request is not JSON"),
        "{r:?}"
    );
    let v = c.call("torrent-explode", json!({}));
    assert_eq!(v["result"], "method name not recognized: torrent-explode");
    let r = c.post_raw(br#"{"arguments":{}}"#);
    assert!(
        r.json()["result"].as_str().unwrap().contains("no method"),
        "{r:?}"
    );
    let v = c.call("torrent-get", json!({}));
    assert!(v["result"].as_str().unwrap().contains("\"fields\""), "{v}");
    let v = c.call("torrent-add", json!({"metainfo": "not base64!"}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .starts_with("metainfo is not base64"),
        "{v}"
    );
    let v = c.call(
        "torrent-add",
        json!({"filename": dir.path().join("missing.torrent")}),
    );
    assert!(
        v["result"].as_str().unwrap().contains("missing.torrent"),
        "{v}"
    );
    let v = c.call("session-set", json!({"cache-size-mb": 64}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("not supported: cache-size-mb"),
        "{v}"
    );
    let v = c.call("session-set", json!({"peer-port": "6881"}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("peer-port must be a port number, 1 to 65535, not \"6881\""),
        "{v}"
    );
    // Over the body cap: refused before it is read whole.
    let big = vec![b' '; btorrent::rpc::server::MAX_BODY + 1];
    let r = c.post_raw(&big);
    assert_eq!(r.status, 413, "{:?}", r.status);
    assert!(
        r.json()["result"].as_str().unwrap().contains("larger than"),
        "{r:?}"
    );
}

#[test]
fn session_limits_port_test_and_free_space_answer_from_the_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    c.ok(
        "session-set",
        json!({"speed-limit-down": 250, "speed-limit-down-enabled": true}),
    );
    let s = c.ok("session-get", json!({"fields": ["speed-limit-down", "speed-limit-down-enabled", "speed-limit-up-enabled"]}));
    assert_eq!(
        s,
        json!({"speed-limit-down": 250, "speed-limit-down-enabled": true, "speed-limit-up-enabled": false})
    );
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert_eq!(cfg.settings.download_limit.map(|r| r.0), Some(250_000));
    c.ok("session-set", json!({"speed-limit-down-enabled": false}));
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert_eq!(cfg.settings.download_limit, None);
    // The peer listens on 127.0.0.1: port-test reaches it, over IPv4 (Transmission 4.1's
    // `ip_protocol`; `ipProtocol`, its earlier spelling, is taken too), not over IPv6.
    let p = c.ok("port-test", json!({}));
    assert_eq!(p["port-is-open"], true, "{p}");
    assert!(
        p["port-test-detail"]
            .as_str()
            .unwrap()
            .contains("not tested"),
        "{p}"
    );
    let p = c.ok("port-test", json!({"ip_protocol": "ipv4"}));
    assert_eq!(
        (&p["port-is-open"], &p["ip_protocol"]),
        (&json!(true), &json!("ipv4"))
    );
    let p = c.ok("port-test", json!({"ipProtocol": "ipv6"}));
    assert_eq!(
        (&p["port-is-open"], &p["ip_protocol"]),
        (&json!(false), &json!("ipv6"))
    );
    let detail = p["port-test-detail"].as_str().unwrap();
    assert!(detail.contains("not over IPv6"), "{p}");
    let v = c.call("port-test", json!({"ipProtocol": "ipx"}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("\"ipv4\" or \"ipv6\""),
        "{v}"
    );
    let f = c.ok("free-space", json!({"path": dir.path()}));
    let (free, total) = (
        f["size-bytes"].as_u64().unwrap(),
        f["total_size"].as_u64().unwrap(),
    );
    assert!(free > 0 && total >= free, "{f}");
    let v = c.call("free-space", json!({"path": dir.path().join("nowhere")}));
    assert!(v["result"].as_str().unwrap().contains("nowhere"), "{v}");
}

/// `session-get` says what the session does (peer exchange on, the DHT off as the test suite sets
/// it, the settings' peer limit); `session-set download-dir` (`transmission-remote -w DIR`) changes
/// where torrents added without a folder go, kept in torrents.toml; a relative path or a file is
/// refused and changes nothing.
/// A peer listening on `::` takes connections over both families: `port-test` reaches it over
/// each when asked (`ip_protocol`), whatever family the request came in on.
#[test]
fn port_test_reaches_a_dual_stack_peer_over_either_family() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start_cmd(dir.path(), "::", "", crate::support::cli::bin());
    let mut c = d.client();
    for family in ["ipv4", "ipv6"] {
        let p = c.ok("port-test", json!({"ip_protocol": family}));
        assert_eq!(p["port-is-open"], true, "{family}: {p}");
        assert_eq!(p["ip_protocol"], family);
        let at = if family == "ipv6" {
            "[::1]:"
        } else {
            "127.0.0.1:"
        };
        assert!(p["port-test-detail"].as_str().unwrap().contains(at), "{p}");
    }
}

#[test]
fn session_get_tells_the_truth_and_session_set_moves_the_default_download_dir() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "max_peers = 33");
    let mut c = d.client();
    let s = c.ok(
        "session-get",
        json!({"fields": ["pex-enabled", "dht-enabled", "peer-limit-per-torrent"]}),
    );
    assert_eq!(
        s,
        json!({"pex-enabled": true, "dht-enabled": false, "peer-limit-per-torrent": 33})
    );

    let media = dir.path().join("media");
    c.ok("session-set", json!({"download-dir": media}));
    let s = c.ok("session-get", json!({"fields": ["download-dir"]}));
    assert_eq!(s["download-dir"], media.display().to_string());
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert_eq!(cfg.output_dir(), media);
    for (bad, want) in [
        (json!("relative/dir"), "not an absolute path"),
        (json!(dir.path().join("torrents.toml")), "not a folder"),
        (json!(7), "must be a folder"),
    ] {
        let v = c.call("session-set", json!({"download-dir": bad}));
        assert!(v["result"].as_str().unwrap().contains(want), "{v}");
    }
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert_eq!(cfg.output_dir(), media, "a refused value changed nothing");

    // A torrent added without a folder goes to the new one.
    let src = dir.path().join("src");
    crate::support::write_random(&src.join("song.bin"), 40_000, 3);
    let meta = crate::support::torrent(&src.join("song.bin"), 16 * 1024, vec![]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
    let id = c.ok("torrent-add", json!({"metainfo": b64, "paused": true}))["torrent-added"]["id"]
        .clone();
    let t = c.ok(
        "torrent-get",
        json!({"ids": [id], "fields": ["downloadDir"]}),
    );
    assert_eq!(
        t["torrents"][0]["downloadDir"],
        media.display().to_string(),
        "{t}"
    );
}

#[test]
fn the_web_client_folder_is_served_read_only_and_confined() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web");
    std::fs::create_dir_all(web.join("javascript")).unwrap();
    std::fs::write(web.join("index.html"), "<html>web client</html>").unwrap();
    std::fs::write(web.join("javascript/app.js"), "var x = 1;").unwrap();
    std::fs::write(web.join(".secret"), "no").unwrap();
    let d = RpcDaemon::start(dir.path(), "rpc_web_dir = \"web\"\n");
    let r = request(d.port, "GET", "/transmission/web", &[], b"");
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("/transmission/web/"))
    );
    let r = request(d.port, "GET", "/transmission/web/", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "<html>web client</html>");
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let r = request(
        d.port,
        "GET",
        "/transmission/web/javascript/app.js",
        &[],
        b"",
    );
    assert_eq!((r.status, r.body.as_str()), (200, "var x = 1;"));
    for bad in [
        "/transmission/web/.secret",
        "/transmission/web/%2e%2e/torrents.toml",
        "/transmission/web/../torrents.toml",
        "/transmission/web/nothing.js",
    ] {
        let r = request(d.port, "GET", bad, &[], b"");
        assert_eq!(r.status, 404, "{bad}: {r:?}");
        assert!(!r.body.contains("rpc_bind"), "{bad} leaked torrents.toml");
    }
    drop(d);
    let d = RpcDaemon::start(dir.path(), "");
    let r = request(d.port, "GET", "/transmission/web/", &[], b"");
    assert_eq!(r.status, 404);
    assert!(r.body.contains("set rpc_web_dir"), "{r:?}");
}

/// `session-close` (`transmission-remote --exit`) gets its `success`, then the daemon closes as on
/// SIGTERM: transfers stopped, states saved, exit code 0, the RPC port closed.
#[test]
fn session_close_answers_then_closes_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    c.ok("session-get", json!({}));
    c.ok("session-close", json!({}));
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = d.proc.exited() {
            break s;
        }
        assert!(
            Instant::now() < end,
            "the daemon did not close: {}",
            d.proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = d.proc.log_text();
    assert!(status.success(), "{status}: {log}");
    assert!(
        log.contains("session-close over the RPC") && log.contains("] stopped"),
        "{log}"
    );
    assert!(TcpStream::connect(("127.0.0.1", d.port)).is_err());
}

/// The alternative speed limits (the web client's turtle, `transmission-remote -as`): set, they
/// wait; switched on, they are the session's limits in force (`/metrics`) while the normal ones are
/// kept, and a normal limit changed meanwhile waits its turn; switched off, the normal ones hold
/// again. torrents.toml keeps all of it; bad values change nothing.
#[test]
fn alternative_speed_limits_switch_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let limits = || {
        let r = request(d.port, "GET", "/metrics", &[], b"");
        let m = parse_metrics(&r.body);
        let get = |dir: &str| {
            m.get(&format!(
                "btorrent_speed_limit_bytes{{direction=\"{dir}\"}}"
            ))
            .copied()
        };
        (get("up"), get("down"))
    };
    c.ok(
        "session-set",
        json!({"speed-limit-up": 300, "speed-limit-up-enabled": true}),
    );
    c.ok(
        "session-set",
        json!({"alt-speed-up": 40, "alt-speed-down": 100}),
    );
    let fields = json!({"fields": ["alt-speed-up", "alt-speed-down", "alt-speed-enabled", "speed-limit-up"]});
    assert_eq!(
        c.ok("session-get", fields.clone()),
        json!({"alt-speed-up": 40, "alt-speed-down": 100, "alt-speed-enabled": false, "speed-limit-up": 300})
    );
    assert_eq!(limits(), (Some(300_000.0), None));

    c.ok("session-set", json!({"alt-speed-enabled": true}));
    assert_eq!(limits(), (Some(40_000.0), Some(100_000.0)));
    c.ok("session-set", json!({"speed-limit-up": 500}));
    assert_eq!(limits(), (Some(40_000.0), Some(100_000.0)));
    let s = btorrent::config::Config::load(&dir.path().join("torrents.toml"))
        .unwrap()
        .settings;
    assert!(s.alt_speed);
    assert_eq!(s.session_limits(), (Some(40_000), Some(100_000)));
    assert_eq!(s.upload_limit.map(|r| r.0), Some(500_000));

    for (bad, want) in [
        (json!({"alt-speed-up": "fast"}), "whole number"),
        (json!({"alt-speed-enabled": 3}), "true or false"),
    ] {
        let v = c.call("session-set", bad);
        assert!(v["result"].as_str().unwrap().contains(want), "{v}");
    }
    c.ok("session-set", json!({"alt-speed-enabled": false}));
    assert_eq!(limits(), (Some(500_000.0), None));
    assert_eq!(
        c.ok("session-get", fields),
        json!({"alt-speed-up": 40, "alt-speed-down": 100, "alt-speed-enabled": false, "speed-limit-up": 500})
    );
}

/// The alternative limits' schedule (`alt-speed-time-*`): a span around now puts them in force at
/// once (the session's limits change, torrents.toml says so), one that begins later takes them
/// out; its settings read back as set and bad values are refused.
#[test]
fn the_alternative_limits_follow_their_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let up_limit = || {
        let r = request(d.port, "GET", "/metrics", &[], b"");
        parse_metrics(&r.body)
            .get("btorrent_speed_limit_bytes{direction=\"up\"}")
            .copied()
    };
    c.ok(
        "session-set",
        json!({"alt-speed-up": 40, "speed-limit-up": 300, "speed-limit-up-enabled": true}),
    );
    let (now, _) = btorrent::alt_speed::local_now().unwrap();
    let at = |delta: i64| (now as i64 + delta).rem_euclid(1440);
    // From two minutes ago to ten minutes on, every day.
    c.ok(
        "session-set",
        json!({"alt-speed-time-enabled": true, "alt-speed-time-begin": at(-2),
               "alt-speed-time-end": at(10), "alt-speed-time-day": 127}),
    );
    poll(
        "the schedule to put the alternative limits in force",
        30,
        || (up_limit() == Some(40_000.0)).then_some(()),
    );
    let fields = json!({"fields": ["alt-speed-enabled", "alt-speed-time-enabled",
        "alt-speed-time-begin", "alt-speed-time-end", "alt-speed-time-day"]});
    assert_eq!(
        c.ok("session-get", fields.clone()),
        json!({"alt-speed-enabled": true, "alt-speed-time-enabled": true,
               "alt-speed-time-begin": at(-2), "alt-speed-time-end": at(10), "alt-speed-time-day": 127})
    );
    let s = btorrent::config::Config::load(&dir.path().join("torrents.toml"))
        .unwrap()
        .settings;
    assert!(s.alt_speed && s.alt_speed_time);
    assert_eq!(s.alt_speed_begin.unwrap().0 as i64, at(-2));

    // A span that begins in an hour: they are taken out.
    c.ok(
        "session-set",
        json!({"alt-speed-time-begin": at(60), "alt-speed-time-end": at(120)}),
    );
    poll(
        "the schedule to take the alternative limits out",
        30,
        || (up_limit() == Some(300_000.0)).then_some(()),
    );
    assert_eq!(c.ok("session-get", fields)["alt-speed-enabled"], false);
    c.ok("session-set", json!({"alt-speed-time-enabled": false}));
    let s = btorrent::config::Config::load(&dir.path().join("torrents.toml"))
        .unwrap()
        .settings;
    assert!(
        !s.alt_speed_time && !s.alt_speed,
        "the schedule is off in the file too"
    );
    for (bad, want) in [
        (json!({"alt-speed-time-begin": 1440}), "0 to 1439"),
        (
            json!({"alt-speed-time-end": "noon"}),
            "minutes after midnight",
        ),
        (json!({"alt-speed-time-day": 200}), "mask of days"),
        (json!({"alt-speed-time-enabled": "yes"}), "true or false"),
    ] {
        let v = c.call("session-set", bad.clone());
        assert!(v["result"].as_str().unwrap().contains(want), "{bad}: {v}");
    }
}

fn before_port(c: &mut crate::support::rpc::Client) -> serde_json::Value {
    c.ok("session-get", json!({"fields": ["peer-port"]}))["peer-port"].clone()
}

/// `session-set` switches peer exchange, sets both peer limits and whether added torrents start
/// (`transmission-remote -X`, the web client's preferences, `--start-paused`): each shows in
/// `session-get` and torrents.toml at once, the session's own socket budget changes (`/metrics`),
/// a torrent's `peer-limit` follows, and a `torrent-add` without `paused` stays stopped. A bad
/// value is refused by name and changes nothing.
#[test]
fn session_set_switches_peer_exchange_the_peer_limits_and_whether_added_torrents_start() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (_, _) = c.add_seeding(dir.path(), 85);
    let fields = json!({"fields": ["pex-enabled", "peer-limit-global", "peer-limit-per-torrent", "start-added-torrents"]});
    let before = c.ok("session-get", fields.clone());
    assert_eq!(before["pex-enabled"], true, "{before}");
    assert_eq!(before["start-added-torrents"], true, "{before}");
    let load = || btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    let settings_before = load().settings;
    for (bad, want) in [
        (
            json!({"peer-limit-global": 0}),
            "peer-limit-global must be a whole number of peers, 1 to 65535",
        ),
        (
            json!({"peer-limit-per-torrent": "many"}),
            "peer-limit-per-torrent must be",
        ),
        (
            json!({"pex-enabled": "no", "peer-limit-global": 9}),
            "pex-enabled must be true or false",
        ),
        (
            json!({"start-added-torrents": 2}),
            "start-added-torrents must be true or false",
        ),
        (
            json!({"peer-port": 70000}),
            "peer-port must be a port number, 1 to 65535, not 70000",
        ),
    ] {
        let v = c.call("session-set", bad);
        assert!(v["result"].as_str().unwrap().contains(want), "{v}");
    }
    assert_eq!(
        c.ok("session-get", fields.clone()),
        before,
        "a refused request changed nothing"
    );
    assert_eq!(load().settings, settings_before);
    assert!(settings_before.pex && settings_before.max_connections.is_none());
    // Keys that cannot be changed here pass with the value they have (a client sending back all
    // its preferences), and only then.
    let port = before_port(&mut c);
    c.ok(
        "session-set",
        json!({"peer-port": port, "cache-size-mb": 0}),
    );
    let v = c.call(
        "session-set",
        json!({"cache-size-mb": 64, "peer-port": port}),
    );
    let says = v["result"].as_str().unwrap();
    assert!(
        says.contains("not supported: cache-size-mb") && !says.contains("peer-port"),
        "{v}"
    );

    // The suite's daemons start without a DHT node (BTORRENT_DHT=off): switching it off is done
    // (and kept), there is none to switch on.
    c.ok("session-set", json!({"dht-enabled": false}));
    assert!(!load().settings.dht);
    let v = c.call("session-set", json!({"dht-enabled": true}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("dht-enabled: this session started without a DHT node"),
        "{v}"
    );
    assert!(!load().settings.dht, "a refused switch changed nothing");
    let lpd = |c: &mut crate::support::rpc::Client| {
        c.ok("session-get", json!({"fields": ["lpd-enabled"]}))["lpd-enabled"].clone()
    };
    assert_eq!(lpd(&mut c), false, "no node on a loopback listen address");
    c.ok("session-set", json!({"lpd-enabled": false}));
    assert!(!load().settings.lsd);
    let v = c.call("session-set", json!({"lpd-enabled": true}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("lpd-enabled: this session started without local discovery"),
        "{v}"
    );
    assert!(!load().settings.lsd, "a refused switch changed nothing");

    c.ok(
        "session-set",
        json!({"pex-enabled": false, "peer-limit-global": 120, "peer-limit-per-torrent": 7, "start-added-torrents": false}),
    );
    assert_eq!(
        c.ok("session-get", fields),
        json!({"pex-enabled": false, "peer-limit-global": 120, "peer-limit-per-torrent": 7, "start-added-torrents": false})
    );
    let s = load().settings;
    assert_eq!(
        (
            s.pex,
            s.max_connections,
            s.max_peers,
            s.start_added_torrents
        ),
        (false, Some(120), Some(7), false)
    );
    let m = parse_metrics(&request(d.port, "GET", "/metrics", &[], b"").body);
    assert_eq!(m["btorrent_peer_sockets_limit"], 120.0);
    let t = torrent_get(&mut c, json!(null), &["peer-limit"]);
    assert_eq!(t[0]["peer-limit"], 7, "{t:?}");
    // A hand edit of torrents.toml counts too, within seconds.
    crate::live_settings::edit_setting(dir.path(), "pex", None);
    crate::live_settings::edit_setting(dir.path(), "max_connections", Some(300i64.into()));
    crate::live_settings::edit_setting(dir.path(), "max_peers", Some(9i64.into()));
    poll("the edited settings to be in force", 30, || {
        let s = c.ok(
            "session-get",
            json!({"fields": ["pex-enabled", "peer-limit-global", "peer-limit-per-torrent"]}),
        );
        (s == json!({"pex-enabled": true, "peer-limit-global": 300, "peer-limit-per-torrent": 9}))
            .then_some(())
    });

    // Added without `paused`: stopped, as start-added-torrents now says; `paused: false` still starts.
    let src = dir.path().join("src");
    for (name, seed) in [("held.bin", 5), ("started.bin", 6)] {
        crate::support::write_random(&src.join(name), 40_000, seed);
    }
    let add = |c: &mut crate::support::rpc::Client, name: &str, paused: Option<bool>| {
        let meta = crate::support::torrent(&src.join(name), 16 * 1024, vec![]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
        let mut args = json!({"metainfo": b64, "download-dir": src});
        if let Some(p) = paused {
            args["paused"] = json!(p);
        }
        c.ok("torrent-add", args)["torrent-added"]["id"].clone()
    };
    let held = add(&mut c, "held.bin", None);
    let started = add(&mut c, "started.bin", Some(false));
    poll("the unpaused one to seed", 30, || {
        (torrent_get(&mut c, json!([started]), &["status"])[0]["status"] == 6).then_some(())
    });
    assert_eq!(
        torrent_get(&mut c, json!([held]), &["status"])[0]["status"],
        0
    );

    // torrent-add takes the torrent's own peer-limit and bandwidthPriority (checked first).
    crate::support::write_random(&src.join("few.bin"), 40_000, 7);
    let meta = crate::support::torrent(&src.join("few.bin"), 16 * 1024, vec![]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
    for (bad, why) in [
        (json!({"peer-limit": -1}), "torrent-add: peer-limit must be"),
        (
            json!({"bandwidthPriority": "high"}),
            "torrent-add: bandwidthPriority must be -1 (low), 0 (normal) or 1 (high), not \"high\"",
        ),
    ] {
        let mut args = json!({"metainfo": b64, "download-dir": src});
        args.as_object_mut()
            .unwrap()
            .extend(bad.as_object().unwrap().clone());
        let v = c.call("torrent-add", args);
        assert!(v["result"].as_str().unwrap().contains(why), "{v}");
        assert!(load().find(&meta.info_hash).is_none(), "{v}");
    }
    let few = c.ok(
        "torrent-add",
        json!({"metainfo": b64, "download-dir": src, "peer-limit": 4, "bandwidthPriority": 1}),
    )["torrent-added"]["id"]
        .clone();
    assert_eq!(
        torrent_get(&mut c, json!([few]), &["peer-limit", "bandwidthPriority"])[0],
        json!({"peer-limit": 4, "bandwidthPriority": 1})
    );
    let kept = load().find(&meta.info_hash).unwrap().limits.engine();
    assert_eq!(
        (kept.max_peers, kept.priority),
        (Some(4), btorrent::engine::Priority::High)
    );
}

/// `session-stats` (`transmission-remote -st`): this run's bytes, torrents and seconds, and every
/// run's, which are written when the daemon closes and taken up by the next one.
#[test]
fn session_stats_count_this_run_and_keep_every_runs_across_restarts() {
    let rt = crate::support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (meta, port) = c.add_seeding(dir.path(), 86);
    let out = tempfile::tempdir().unwrap();
    let (leecher, lh) = rt.block_on(crate::support::leecher(
        &meta,
        out.path(),
        vec![([127, 0, 0, 1], port).into()],
    ));
    rt.block_on(crate::support::wait_complete(&lh, 60));
    let size = meta.info.total_length;
    let first = poll("the upload counted", 30, || {
        let st = c.ok("session-stats", json!({}));
        (st["current-stats"]["uploadedBytes"].as_u64()? >= size).then_some(st)
    });
    let (run, all) = (&first["current-stats"], &first["cumulative-stats"]);
    assert_eq!(
        (&run["filesAdded"], &run["sessionCount"]),
        (&json!(1), &json!(1)),
        "{first}"
    );
    assert_eq!(all["sessionCount"], 1, "the first run: {first}");
    assert_eq!(all["uploadedBytes"], run["uploadedBytes"], "{first}");
    rt.block_on(leecher.shutdown(Duration::from_secs(2)));

    // Closed and started again: this run starts from zero, every run's figures go on.
    c.ok("session-close", json!({}));
    let end = Instant::now() + Duration::from_secs(30);
    while d.proc.exited().is_none() {
        assert!(Instant::now() < end, "the daemon did not close");
        std::thread::sleep(Duration::from_millis(50));
    }
    let uploaded = poll("the figures of the closed run", 5, || {
        let kept: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(".btorrent/stats.json")).ok()?)
                .ok()?;
        kept["uploaded_bytes"].as_u64()
    });
    assert!(uploaded >= size, "{uploaded}");
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let st = c.ok("session-stats", json!({}));
    let (run, all) = (&st["current-stats"], &st["cumulative-stats"]);
    assert_eq!(
        (&run["uploadedBytes"], &run["sessionCount"]),
        (&json!(0), &json!(1)),
        "{st}"
    );
    assert_eq!(all["sessionCount"], 2, "{st}");
    assert_eq!(all["uploadedBytes"], uploaded, "{st}");
    assert!(all["filesAdded"].as_u64() >= Some(1), "{st}");
}

/// `session-set peer-port` (`transmission-remote -p`, a VPN's forwarded port): the daemon's peer
/// listens there at once and no longer on the old port, its tracker hears the new port, and
/// torrents.toml keeps it; a port another program holds is refused and changes nothing, and a
/// hand edit of `listen_port` moves it too.
#[test]
fn session_set_peer_port_moves_the_peer_and_its_trackers_hear_it() {
    use base64::Engine as _;
    use btorrent::services::RunningTracker;
    let rt = crate::support::runtime();
    let dir = tempfile::tempdir().unwrap();
    let tracker = rt
        .block_on(RunningTracker::start(
            &{
                let t = dir.path().join("tracker.toml");
                std::fs::write(&t, "[settings]\n").unwrap();
                t
            },
            Some("127.0.0.1:0".parse().unwrap()),
        ))
        .unwrap();
    let url = tracker.announce_url();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let src = dir.path().join("src");
    crate::support::write_random(&src.join("p.bin"), 50_000, 17);
    let meta = crate::support::torrent(&src.join("p.bin"), 16 * 1024, vec![url.clone()]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(meta.as_bytes());
    c.ok("torrent-add", json!({"metainfo": b64, "download-dir": src}));
    let port = |c: &mut crate::support::rpc::Client| {
        c.ok("session-get", json!({"fields": ["peer-port"]}))["peer-port"]
            .as_u64()
            .unwrap() as u16
    };
    let listed = |want: u16| {
        let url = url.clone();
        poll(
            &format!("the tracker to list the peer on port {want}"),
            30,
            || {
                let peers = rt
                    .block_on(
                        btorrent::announce::TrackerClient::new()
                            .get_peers(&url, Some(meta.info_hash)),
                    )
                    .ok()?;
                peers.iter().any(|p| p.port == want).then_some(())
            },
        )
    };
    let old = port(&mut c);
    listed(old);

    let new = crate::support::process::free_port();
    c.ok("session-set", json!({"peer-port": new}));
    assert_eq!(port(&mut c), new);
    assert!(TcpStream::connect(("127.0.0.1", new)).is_ok());
    poll("the old port to close", 10, || {
        TcpStream::connect(("127.0.0.1", old))
            .is_err()
            .then_some(())
    });
    listed(new);
    let kept = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert_eq!(kept.settings.listen_port, new);

    // Refused: a port held elsewhere, and no port at all; nothing changes.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = held.local_addr().unwrap().port();
    for (bad, says) in [
        (
            json!(taken),
            format!("peer-port: cannot listen on 127.0.0.1:{taken}"),
        ),
        (
            json!(0),
            "peer-port must be a port number, 1 to 65535, not 0".to_string(),
        ),
    ] {
        let v = c.call("session-set", json!({"peer-port": bad}));
        assert!(v["result"].as_str().unwrap().contains(&says), "{v}");
    }
    assert_eq!(port(&mut c), new);
    let kept = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert_eq!(kept.settings.listen_port, new);

    // A hand edit of listen_port moves it as well.
    let edited = crate::support::process::free_port();
    crate::live_settings::edit_setting(dir.path(), "listen_port", Some((edited as i64).into()));
    poll("the edited port to be in force", 30, || {
        (port(&mut c) == edited).then_some(())
    });
    listed(edited);
    drop(d);
    rt.block_on(tracker.stop());
}
