//! The tracker's BitTorrent protocol, over real HTTP on loopback: compact and dictionary replies,
//! `peers6`, a dual-stack client counted once, `stopped`, expiry, `numwant`, multi-hash scrape, and the query-decoding pitfalls.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::tracker::*;
use btorrent::tracker::TrackerConfig;

const HASH: [u8; 20] = *b"\x01\x02+ !*'()~%&=abcdefg";

async fn announce(t: &TestTracker, port: u16, left: u64, extra: &str) -> B {
    let q = announce_query(&HASH, &peer_id(port), port, left, extra);
    let (status, body) = get(&format!("{}?{q}", t.announce_url())).await;
    assert_eq!(status, 200);
    B::decode(&body)
}

/// The tracker served on a second listener, on `[::1]`: its address, and what keeps it open.
async fn serve_on_ipv6(t: &TestTracker) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let v6 = tokio::net::TcpListener::bind("[::1]:0").await.unwrap();
    let addr = v6.local_addr().unwrap();
    let (keep, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(t.tracker.clone().serve(v6, async move {
        let _ = rx.await;
    }));
    (addr, keep)
}

#[tokio::test]
async fn compact_reply_lists_others_not_the_asker() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let first = announce(&t, 6001, 0, "&event=started").await;
    assert_eq!(first.failure(), None);
    assert_eq!(first.bytes("peers"), b"", "alone in the swarm");
    let r = announce(&t, 6002, 100, "&event=started&compact=1").await;
    assert_eq!(r.int("complete"), 1);
    assert_eq!(r.int("incomplete"), 1);
    assert_eq!(r.int("interval"), 600);
    assert_eq!(r.int("min interval"), 60);
    // BEP 24: the address the request came from.
    assert_eq!(r.bytes("external ip"), [127, 0, 0, 1]);
    assert_eq!(
        compact4(r.bytes("peers")),
        vec![SocketAddr::from(([127, 0, 0, 1], 6001))]
    );
    assert!(r.get("peers6").is_none());
    let again = announce(&t, 6001, 0, "").await;
    assert_eq!(
        compact4(again.bytes("peers")),
        vec![SocketAddr::from(([127, 0, 0, 1], 6002))]
    );
}

#[tokio::test]
async fn dictionary_reply_with_and_without_peer_ids() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    announce(&t, 6001, 0, "").await;
    let r = announce(&t, 6002, 5, "&compact=0").await;
    let Some(B::L(peers)) = r.get("peers") else {
        panic!("{r:?}")
    };
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].bytes("ip"), b"127.0.0.1");
    assert_eq!(peers[0].int("port"), 6001);
    assert_eq!(peers[0].bytes("peer id"), &peer_id(6001));
    let r = announce(&t, 6002, 5, "&compact=0&no_peer_id=1").await;
    let Some(B::L(peers)) = r.get("peers") else {
        panic!("{r:?}")
    };
    assert!(peers[0].get("peer id").is_none());
}

#[tokio::test]
async fn ipv6_peers_come_in_peers6() {
    // One tracker, two listeners: 127.0.0.1 and ::1.
    let t = TestTracker::start(TrackerConfig::default()).await;
    let (v6_addr, _keep) = serve_on_ipv6(&t).await;
    let q6 = announce_query(&HASH, &peer_id(7001), 7001, 0, "");
    let (_, body) = get_from(
        "::1".parse().unwrap(),
        &format!("http://{v6_addr}/announce?{q6}"),
    )
    .await;
    assert_eq!(B::decode(&body).failure(), None);
    announce(&t, 7002, 0, "").await;
    // A v4 asker gets the v6 peer in peers6 and nothing of itself.
    let r = announce(&t, 7003, 10, "").await;
    assert_eq!(
        compact4(r.bytes("peers")),
        vec![SocketAddr::from(([127, 0, 0, 1], 7002))]
    );
    assert_eq!(
        compact6(r.bytes("peers6")),
        vec!["[::1]:7001".parse().unwrap()]
    );
    // A v6 asker: the v4 peers in peers, not itself in peers6.
    let (_, body) = get_from(
        "::1".parse().unwrap(),
        &format!("http://{v6_addr}/announce?{q6}"),
    )
    .await;
    let r = B::decode(&body);
    assert_eq!(compact4(r.bytes("peers")).len(), 2);
    assert!(r.get("peers6").is_none());
    // Dictionary form carries the IPv6 address as text.
    let r = announce(&t, 7003, 10, "&compact=0").await;
    let Some(B::L(peers)) = r.get("peers") else {
        panic!()
    };
    assert!(peers.iter().any(|p| p.bytes("ip") == b"::1"));
}

/// A dual-stack client announces over IPv4 and over IPv6 with one peer id (BEP 7): both
/// endpoints are handed out, but the counts (announce, scrape, stats) count it once.
#[tokio::test]
async fn a_dual_stack_client_is_one_peer_with_two_endpoints() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let (v6_addr, _keep) = serve_on_ipv6(&t).await;
    // The seeder, over both families.
    announce(&t, 7001, 0, "").await;
    let q6 = announce_query(&HASH, &peer_id(7001), 7001, 0, "");
    let (_, body) = get_from(
        "::1".parse().unwrap(),
        &format!("http://{v6_addr}/announce?{q6}"),
    )
    .await;
    let r = B::decode(&body);
    assert_eq!((r.int("complete"), r.int("incomplete")), (1, 0), "{r:?}");
    // A leecher sees one seeder, reachable at either endpoint.
    let r = announce(&t, 7002, 10, "").await;
    assert_eq!((r.int("complete"), r.int("incomplete")), (1, 1));
    assert_eq!(
        compact4(r.bytes("peers")),
        vec![SocketAddr::from(([127, 0, 0, 1], 7001))]
    );
    assert_eq!(
        compact6(r.bytes("peers6")),
        vec!["[::1]:7001".parse().unwrap()]
    );
    let (_, body) = get(&format!("{}/scrape?info_hash={}", t.base(), pct(&HASH))).await;
    let r = B::decode(&body);
    let Some(B::D(files)) = r.get("files") else {
        panic!("{r:?}")
    };
    let f = &files[&HASH.to_vec()];
    assert_eq!((f.int("complete"), f.int("incomplete")), (1, 1));
    let stats = t.tracker.stats();
    assert_eq!((stats.peers, stats.seeders, stats.leechers), (2, 1, 1));
}

#[tokio::test]
async fn stopped_removes_the_peer_at_once() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    announce(&t, 6001, 0, "&event=started").await;
    let r = announce(&t, 6001, 0, "&event=stopped&numwant=0").await;
    assert_eq!(r.failure(), None);
    assert_eq!(r.bytes("peers"), b"", "a stopping peer gets no peers");
    let r = announce(&t, 6002, 9, "").await;
    assert_eq!(r.bytes("peers"), b"");
    assert_eq!((r.int("complete"), r.int("incomplete")), (0, 1));
    announce(&t, 6002, 9, "&event=stopped").await;
    assert_eq!(t.tracker.stats().swarms, 0, "empty swarm removed");
}

#[tokio::test]
async fn silent_peers_expire() {
    let cfg = TrackerConfig {
        interval: Duration::from_secs(1),
        peer_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let t = TestTracker::start(cfg).await;
    announce(&t, 6001, 0, "").await;
    announce(&t, 6002, 0, "").await;
    assert_eq!(t.tracker.stats().peers, 2);
    let start = Instant::now();
    // Keep 6002 alive; 6001 goes silent.
    while t.tracker.stats().peers != 1 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "peer never expired"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        announce(&t, 6002, 0, "").await;
    }
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "expired before its timeout"
    );
    let r = announce(&t, 6002, 0, "").await;
    assert_eq!(r.bytes("peers"), b"");
    while t.tracker.stats().swarms != 0 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "swarm never expired"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn numwant_default_and_cap() {
    let cfg = TrackerConfig {
        numwant_default: 3,
        numwant_max: 5,
        ..Default::default()
    };
    let t = TestTracker::start(cfg).await;
    for port in 6001..6021 {
        announce(&t, port, 1, "").await;
    }
    let n = |r: &B| compact4(r.bytes("peers")).len();
    assert_eq!(n(&announce(&t, 6100, 1, "").await), 3);
    assert_eq!(n(&announce(&t, 6100, 1, "&numwant=0").await), 3);
    assert_eq!(n(&announce(&t, 6100, 1, "&numwant=2").await), 2);
    assert_eq!(n(&announce(&t, 6100, 1, "&numwant=100").await), 5);
    let r = announce(&t, 6100, 1, "&numwant=100").await;
    let peers = compact4(r.bytes("peers"));
    assert!(peers.iter().all(|p| p.port() != 6100));
    let mut distinct = peers.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), peers.len());
}

#[tokio::test]
async fn scrape_reports_several_torrents() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let (a, b, unknown) = ([0xaa; 20], [0xbb; 20], [0xcc; 20]);
    for (hash, port, left, extra) in [
        (a, 1, 0, ""),
        (a, 2, 0, ""),
        (a, 3, 7, ""),
        (b, 4, 7, ""),
        (b, 4, 0, "&event=completed"),
    ] {
        let q = announce_query(&hash, &peer_id(port), port, left, extra);
        get(&format!("{}?{q}", t.announce_url())).await;
    }
    let url = format!(
        "{}/scrape?info_hash={}&info_hash={}&info_hash={}&info_hash={}",
        t.base(),
        pct(&b),
        pct(&unknown),
        pct(&a),
        pct(&b)
    );
    let (status, body) = get(&url).await;
    assert_eq!(status, 200);
    let r = B::decode(&body);
    let Some(B::D(files)) = r.get("files") else {
        panic!("{r:?}")
    };
    assert_eq!(files.len(), 3);
    let fa = &files[&a.to_vec()];
    assert_eq!(
        (
            fa.int("complete"),
            fa.int("incomplete"),
            fa.int("downloaded")
        ),
        (2, 1, 0)
    );
    let fb = &files[&b.to_vec()];
    assert_eq!(
        (
            fb.int("complete"),
            fb.int("incomplete"),
            fb.int("downloaded")
        ),
        (1, 0, 1)
    );
    let fc = &files[&unknown.to_vec()];
    assert_eq!((fc.int("complete"), fc.int("incomplete")), (0, 0));
}

#[tokio::test]
async fn query_bytes_decode_the_way_clients_encode_them() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    // HASH is 01 02 '+' ' ' '!' '*' '\'' '(' ')' '~' '%' '&' '=' "abcdefg".
    let encodings = [
        // Everything escaped, upper case.
        pct(&HASH),
        // Lower-case hex.
        pct(&HASH).to_lowercase(),
        // '+' as %2B, space as '+', the marks !*'()~ unescaped, letters raw.
        "%01%02%2B+!*'()~%25%26%3Dabcdefg".to_string(),
    ];
    for (i, enc) in encodings.iter().enumerate() {
        let port = 6001 + i as u16;
        let url = format!(
            "{}?info_hash={enc}&peer_id={}&port={port}&uploaded=0&downloaded=0&left=0&event=",
            t.announce_url(),
            pct(&peer_id(port))
        );
        let (_, body) = get(&url).await;
        let r = B::decode(&body);
        assert_eq!(r.failure(), None, "{enc}");
        assert_eq!(
            r.int("complete"),
            i as i64 + 1,
            "{enc} must name the same torrent"
        );
    }
    assert_eq!(t.tracker.stats().swarms, 1);
}

#[tokio::test]
async fn peers_are_keyed_by_address_not_peer_id() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let id = peer_id(1);
    let url = |port: u16, id: &[u8; 20], extra: &str| {
        format!(
            "{}?{}",
            t.announce_url(),
            announce_query(&HASH, id, port, 5, extra)
        )
    };
    get(&url(6001, &id, "")).await;
    // Same endpoint, new peer id (a restarted client): still one peer.
    get(&url(6001, &peer_id(2), "")).await;
    assert_eq!(t.tracker.stats().peers, 1);
    // Someone on another address reusing the id and port cannot stop it.
    let (_, body) = get_from(
        "127.0.0.2".parse().unwrap(),
        &url(6001, &peer_id(2), "&event=stopped"),
    )
    .await;
    assert_eq!(B::decode(&body).failure(), None);
    assert_eq!(t.tracker.stats().peers, 1);
    // The same id on another port is another peer.
    get(&url(6002, &id, "")).await;
    assert_eq!(t.tracker.stats().peers, 2);
}
