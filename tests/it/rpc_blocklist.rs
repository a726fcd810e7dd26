//! Blocklists through the Transmission RPC of `btorrent daemon`: `blocklist-url` and
//! `blocklist-enabled` set with `session-set`, `blocklist-update` downloading a gzipped list into
//! `blocklists/`, the daemon then refusing peers from the addresses it names (and only those),
//! switched off and on at once, kept across a restart; a download holding no range is refused and
//! the list in force stays.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::json;

use crate::support::rpc::{parse_metrics, poll, request, torrent_get, RpcDaemon};
use crate::support::tracker::http_double;

use btorrent::wire::handshake::{read_handshake, write_handshake, Handshake};
use btorrent::{InfoHash, PeerId};

/// Whether the peer at `to` answers a handshake for `ih` from the address `from`.
async fn answers(from: IpAddr, to: SocketAddr, ih: InfoHash) -> bool {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(from, 0)).unwrap();
    let Ok(mut s) = sock.connect(to).await else {
        return false;
    };
    let t = Duration::from_secs(10);
    let ours = Handshake::ours(ih, PeerId::generate());
    if write_handshake(&mut s, &ours, t).await.is_err() {
        return false;
    }
    read_handshake(&mut s, t).await.is_ok()
}

fn gzip(text: &str) -> Vec<u8> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_downloaded_blocklist_keeps_the_addresses_it_names_out() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let list = gzip("# test list\nbad hosts:127.0.0.3-127.0.0.3\nnot a rule\n");
    let (base, _) = rt.block_on(http_double(move |line: &str| {
        if line.contains("/list.gz") {
            (200, list.clone())
        } else {
            (200, b"<html>no list here</html>".to_vec())
        }
    }));

    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let mut c = d.client();
    let (meta, port) = c.add_seeding(dir.path(), 7);
    let peer = SocketAddr::from(([127, 0, 0, 1], port));
    let ih = meta.info_hash;
    let (bad, good): (IpAddr, IpAddr) = ([127, 0, 0, 3].into(), [127, 0, 0, 4].into());
    assert!(rt.block_on(answers(bad, peer, ih)), "no list yet: answered");

    let v = c.call("blocklist-update", json!({}));
    assert!(
        v["result"].as_str().unwrap().contains("no blocklist_url"),
        "{v}"
    );
    c.ok(
        "session-set",
        json!({"blocklist-url": format!("{base}/list.gz"), "blocklist-enabled": true}),
    );
    let r = c.ok("blocklist-update", json!({}));
    assert_eq!(r["blocklist-size"], 1, "{r}");
    let s = c.ok(
        "session-get",
        json!({"fields": ["blocklist-size", "blocklist-enabled", "blocklist-url"]}),
    );
    assert_eq!(
        s,
        json!({"blocklist-size": 1, "blocklist-enabled": true, "blocklist-url": format!("{base}/list.gz")})
    );
    assert!(dir.path().join("blocklists/downloaded.txt").is_file());
    let metrics = parse_metrics(&request(d.port, "GET", "/metrics", &[], b"").body);
    assert_eq!(metrics["btorrent_blocklist_ranges"], 1.0);
    assert!(metrics["btorrent_peer_sockets_limit"] >= 32.0);
    assert!(
        !rt.block_on(answers(bad, peer, ih)),
        "a blocked address is refused"
    );
    assert!(
        rt.block_on(answers(good, peer, ih)),
        "another address is answered"
    );

    // A download that is no list: refused, and the list in force stays.
    c.ok(
        "session-set",
        json!({"blocklist-url": format!("{base}/page.html")}),
    );
    let v = c.call("blocklist-update", json!({}));
    assert!(
        v["result"]
            .as_str()
            .unwrap()
            .contains("holds no address range"),
        "{v}"
    );
    assert!(!rt.block_on(answers(bad, peer, ih)));
    let v = c.call("session-set", json!({"blocklist-url": "ftp://x/list"}));
    assert!(v["result"].as_str().unwrap().contains("http://"), "{v}");

    // Switched off: at once, everyone is answered; on again, the list is back.
    c.ok("session-set", json!({"blocklist-enabled": false}));
    assert!(rt.block_on(answers(bad, peer, ih)));
    assert_eq!(
        c.ok("session-get", json!({"fields": ["blocklist-size"]}))["blocklist-size"],
        0
    );
    c.ok("session-set", json!({"blocklist-enabled": true}));
    assert!(!rt.block_on(answers(bad, peer, ih)));

    // A restarted daemon puts the lists of its folder in force before it seeds.
    let d = d.restart();
    let mut c = d.client();
    poll("the restarted daemon to seed", 30, || {
        let t = torrent_get(&mut c, json!(null), &["status"]);
        (t.len() == 1 && t[0]["status"] == 6).then_some(())
    });
    let port = c.ok("session-get", json!({"fields": ["peer-port"]}))["peer-port"]
        .as_u64()
        .unwrap() as u16;
    let peer = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(!rt.block_on(answers(bad, peer, ih)));
    assert!(rt.block_on(answers(good, peer, ih)));
}
