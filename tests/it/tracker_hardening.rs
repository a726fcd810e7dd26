//! The tracker under bad and hostile input: every malformed request gets a bencoded `failure reason`
//! with HTTP 200, caps hold, private mode refuses strangers, addresses cannot be spoofed, and
//! connections stay alive between requests.

use std::time::Duration;

use crate::support::tracker::*;
use btorrent::tracker::{IpParamPolicy, TrackerConfig};
use btorrent::InfoHash;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HASH: [u8; 20] = [0x42; 20];

async fn failure_of(url: &str) -> String {
    let (status, body) = get(url).await;
    assert_eq!(status, 200, "{url}");
    B::decode(&body).failure().unwrap_or_else(|| {
        panic!(
            "no failure reason for {url}: {}",
            String::from_utf8_lossy(&body)
        )
    })
}

/// GETs `url` and checks the tracker served it (no failure reason).
async fn assert_served(url: &str) {
    let (_, body) = get(url).await;
    assert_eq!(B::decode(&body).failure(), None, "{url}");
}

#[tokio::test]
async fn every_bad_announce_gets_a_failure_reason() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let ok = announce_query(&HASH, &peer_id(1), 6881, 0, "");
    let replace = |key: &str, value: Option<&str>| {
        let mut parts: Vec<String> = ok
            .split('&')
            .filter(|p| !p.starts_with(&format!("{key}=")))
            .map(str::to_string)
            .collect();
        if let Some(v) = value {
            parts.push(format!("{key}={v}"));
        }
        format!("{}?{}", t.announce_url(), parts.join("&"))
    };
    let cases = [
        (replace("info_hash", None), "missing info_hash"),
        (
            replace("info_hash", Some(&pct(&[1; 19]))),
            "info_hash must be 20 bytes",
        ),
        (
            replace("info_hash", Some(&pct(&[1; 21]))),
            "info_hash must be 20 bytes",
        ),
        (
            replace("info_hash", Some(&format!("{}%Z1", pct(&[1; 19])))),
            "invalid percent-encoding in info_hash",
        ),
        (
            replace("info_hash", Some(&format!("{}%4", pct(&[1; 19])))),
            "invalid percent-encoding in info_hash",
        ),
        (replace("peer_id", None), "missing peer_id"),
        (replace("peer_id", Some("abc")), "peer_id must be 20 bytes"),
        (replace("port", None), "missing port"),
        (replace("port", Some("0")), "invalid port (1 to 65535)"),
        (replace("port", Some("65536")), "invalid port (1 to 65535)"),
        (replace("port", Some("-1")), "invalid port (1 to 65535)"),
        (replace("port", Some("x")), "invalid port (1 to 65535)"),
        (replace("uploaded", Some("lots")), "invalid uploaded"),
        (replace("downloaded", Some("1.5")), "invalid downloaded"),
        (replace("left", Some("-3")), "invalid left"),
        (replace("left", Some("")), "invalid left"),
        (replace("left", None), "missing left"),
        (replace("numwant", Some("all")), "invalid numwant"),
        (
            replace("event", Some("bogus")),
            "invalid event (started, completed, stopped, paused or empty)",
        ),
        (
            format!("{}?{ok}&pad={}", t.announce_url(), "x".repeat(9000)),
            "request too long",
        ),
        (t.announce_url(), "missing info_hash"),
    ];
    for (url, want) in &cases {
        let reason = failure_of(url).await;
        assert_eq!(&reason, want, "{url}");
        assert!(
            !reason.contains(".rs") && !reason.contains("src/"),
            "{reason}"
        );
    }
    assert_eq!(t.tracker.stats().failures, cases.len() as u64);
    assert_eq!(t.tracker.stats().peers, 0);
    // The tracker still works.
    assert_served(&format!("{}?{ok}", t.announce_url())).await;
}

#[tokio::test]
async fn every_bad_scrape_gets_a_failure_reason() {
    let cfg = TrackerConfig {
        max_scrape_hashes: 3,
        ..Default::default()
    };
    let t = TestTracker::start(cfg).await;
    let s = |q: String| format!("{}/scrape?{q}", t.base());
    let h = pct(&HASH);
    assert_eq!(
        failure_of(&s(String::new())).await,
        "name the torrents to scrape with info_hash (full scrape is not offered)"
    );
    assert_eq!(
        failure_of(&s("info_hash=abc".into())).await,
        "info_hash must be 20 bytes"
    );
    assert_eq!(
        failure_of(&s(format!("info_hash={h}&info_hash={}%", &h[..57]))).await,
        "invalid percent-encoding in info_hash"
    );
    assert_eq!(
        failure_of(&s(vec![format!("info_hash={h}"); 4].join("&"))).await,
        "too many info_hash values (at most 3)"
    );
}

#[tokio::test]
async fn oversized_head_is_refused_without_harm() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let url = format!("{}?x={}", t.announce_url(), "y".repeat(40_000));
    let (status, _) = get(&url).await;
    assert_eq!(status, 431);
    let q = announce_query(&HASH, &peer_id(1), 6881, 0, "");
    assert_served(&format!("{}?{q}", t.announce_url())).await;
}

#[tokio::test]
async fn caps_bound_swarms_and_peers() {
    let cfg = TrackerConfig {
        max_swarms: 2,
        max_peers_per_swarm: 3,
        max_peers: 4,
        ..Default::default()
    };
    let t = TestTracker::start(cfg).await;
    let ann = |hash: [u8; 20], port: u16| {
        format!(
            "{}?{}",
            t.announce_url(),
            announce_query(&hash, &peer_id(port), port, 1, "")
        )
    };
    for port in 1..=3 {
        assert_served(&ann([1; 20], port)).await;
    }
    assert_eq!(
        failure_of(&ann([1; 20], 4)).await,
        "swarm is full: too many peers in this torrent, try again later"
    );
    assert_served(&ann([2; 20], 1)).await;
    assert_eq!(
        failure_of(&ann([2; 20], 2)).await,
        "tracker is full: too many peers, try again later"
    );
    // Random info-hashes cannot push the real swarms out.
    for i in 0..50u8 {
        assert_eq!(
            failure_of(&ann([100 + i; 20], 9)).await,
            "tracker is full: too many torrents, try again later"
        );
    }
    let s = t.tracker.stats();
    assert_eq!((s.swarms, s.peers), (2, 4));
    // A peer already tracked can still re-announce.
    assert_served(&ann([1; 20], 2)).await;
}

#[tokio::test]
async fn private_mode_serves_only_allowed_torrents() {
    let cfg = TrackerConfig {
        private: true,
        ..Default::default()
    };
    let t = TestTracker::start(cfg).await;
    let url = format!(
        "{}?{}",
        t.announce_url(),
        announce_query(&HASH, &peer_id(1), 6881, 0, "")
    );
    assert_eq!(
        failure_of(&url).await,
        "unregistered torrent: this tracker only serves its own torrents"
    );
    t.tracker.allow(InfoHash(HASH));
    assert_served(&url).await;
    assert_eq!(t.tracker.stats().peers, 1);
    // Scrape leaves unregistered torrents out.
    let scrape = format!(
        "{}/scrape?info_hash={}&info_hash={}",
        t.base(),
        pct(&HASH),
        pct(&[9; 20])
    );
    let (_, body) = get(&scrape).await;
    let Some(B::D(files)) = B::decode(&body).get("files").cloned() else {
        panic!()
    };
    assert_eq!(files.keys().collect::<Vec<_>>(), vec![&HASH.to_vec()]);
    t.tracker.disallow(InfoHash(HASH));
    assert_eq!(t.tracker.stats().peers, 0);
    assert!(failure_of(&url).await.starts_with("unregistered torrent"));
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let cfg = TrackerConfig {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        ip_param: IpParamPolicy::Ignore,
        ..Default::default()
    };
    let t = TestTracker::start(cfg).await;
    let send = |from: &'static str, port: u16, xff: &'static str, seen: [u8; 4]| {
        let url = format!(
            "{}?{}",
            t.announce_url(),
            announce_query(&HASH, &peer_id(port), port, 1, "")
        );
        async move {
            let client = reqwest::Client::builder()
                .local_address(from.parse::<std::net::IpAddr>().unwrap())
                .build()
                .unwrap();
            let body = client
                .get(url)
                .header("X-Forwarded-For", xff)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let b = B::decode(&body);
            assert_eq!(b.failure(), None);
            // BEP 24's `external ip` is the address the peer is listed under.
            assert_eq!(b.bytes("external ip"), seen);
        }
    };
    send(
        "127.0.0.1",
        1001,
        "203.0.113.9, 198.51.100.7",
        [198, 51, 100, 7],
    )
    .await;
    send("127.0.0.2", 1002, "203.0.113.9", [127, 0, 0, 2]).await;
    let peers = btorrent::announce::TrackerClient::new()
        .get_peers(&t.base(), None)
        .await
        .unwrap();
    let addrs: Vec<String> = peers
        .iter()
        .map(|p| format!("{}:{}", p.ip, p.port))
        .collect();
    assert_eq!(addrs, vec!["127.0.0.2:1002", "198.51.100.7:1001"]);
}

#[tokio::test]
async fn ip_parameter_and_v4_mapped_addresses() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let ann = |port: u16, extra: &str| {
        format!(
            "{}?{}",
            t.announce_url(),
            announce_query(&HASH, &peer_id(port), port, 1, extra)
        )
    };
    // From loopback the ip= parameter is believed, and ::ffff:a.b.c.d is stored as a.b.c.d.
    get(&ann(1001, "&ip=%3A%3Affff%3A10.9.8.7")).await;
    get(&ann(1002, "&ip=192.168.5.5")).await;
    get(&ann(1003, "&ip=not-an-ip")).await;
    // The `ip` parameter lists a peer elsewhere; `external ip` is still where the request came from.
    let (_, body) = get(&ann(1005, "&ip=192.168.5.6")).await;
    assert_eq!(B::decode(&body).bytes("external ip"), [127, 0, 0, 1]);
    let (_, body) = get(&ann(1004, "")).await;
    let mut peers = compact4(B::decode(&body).bytes("peers"));
    peers.sort();
    let want: Vec<std::net::SocketAddr> = [
        "10.9.8.7:1001",
        "127.0.0.1:1003",
        "192.168.5.5:1002",
        "192.168.5.6:1005",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    assert_eq!(peers, want);
}

#[tokio::test]
async fn connections_stay_alive_across_requests() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let mut sock = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    for port in 1..=5u16 {
        let q = announce_query(&HASH, &peer_id(port), port, 0, "");
        sock.write_all(format!("GET /announce?{q} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut buf = Vec::new();
        // Read one full response: head, then Content-Length bytes.
        let body = loop {
            let mut chunk = [0u8; 2048];
            let n = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut chunk))
                .await
                .expect("reply timed out")
                .unwrap();
            assert!(n > 0, "connection closed after {} replies", port - 1);
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                assert!(!head.contains("connection: close"), "{head}");
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                if buf.len() >= end + 4 + len {
                    break buf[end + 4..end + 4 + len].to_vec();
                }
            }
        };
        assert_eq!(B::decode(&body).failure(), None);
    }
    assert_eq!(t.tracker.stats().peers, 5);
}

#[test]
fn peer_timeout_always_exceeds_the_interval() {
    let t = btorrent::tracker::Tracker::new(TrackerConfig {
        interval: Duration::from_secs(300),
        peer_timeout: Duration::from_secs(200),
        min_interval: Duration::from_secs(900),
        ..Default::default()
    });
    assert_eq!(t.config().peer_timeout, Duration::from_secs(600));
    assert_eq!(t.config().min_interval, Duration::from_secs(300));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_announces_keep_counts_exact() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let url = t.announce_url();
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..8u16)
        .map(|task| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                for i in 0..100u16 {
                    let hash = [(i % 25) as u8; 20];
                    let port = 1000 + task * 100 + i;
                    let q = announce_query(&hash, &peer_id(port), port, u64::from(i % 2), "");
                    let body = client
                        .get(format!("{url}?{q}"))
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .unwrap();
                    assert_eq!(B::decode(&body).failure(), None);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let s = t.tracker.stats();
    assert_eq!(
        (s.swarms, s.peers, s.seeders, s.leechers, s.announces),
        (25, 800, 400, 400, 800)
    );
    let tasks: Vec<_> = (0..8u16)
        .map(|task| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                for i in 0..100u16 {
                    let hash = [(i % 25) as u8; 20];
                    let port = 1000 + task * 100 + i;
                    let q = announce_query(&hash, &peer_id(port), port, 0, "&event=stopped");
                    client.get(format!("{url}?{q}")).send().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let s = t.tracker.stats();
    assert_eq!((s.swarms, s.peers), (0, 0));
}
