//! The tracker's other pages (`/get_peers`, `/stats`, `/`) and btorrent's tracker client talking to
//! btorrent's tracker.

use std::time::Duration;

use crate::support::tracker::*;
use btorrent::announce::{AnnounceEvent, TrackerClient, TrackerError};
use btorrent::tracker::{TrackerConfig, TrackerStats};
use btorrent::{InfoHash, PeerId};

/// Regular announces of (torrent, port, left), in order, from btorrent's client.
async fn announce_each(t: &TestTracker, peers: &[(InfoHash, u16, u64)]) {
    let client = TrackerClient::new();
    for &(hash, port, left) in peers {
        let req = announce_request(hash, port, left, None);
        client.announce(&t.announce_url(), &req).await.unwrap();
    }
}

#[tokio::test]
async fn client_lifecycle_against_our_tracker() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let client = TrackerClient::new();
    let url = t.announce_url();
    let h = InfoHash([0x5a; 20]);
    let seed = client
        .announce(
            &url,
            &announce_request(h, 7001, 0, Some(AnnounceEvent::Started)),
        )
        .await
        .unwrap();
    assert!(seed.peers.is_empty());
    assert_eq!(seed.interval, Duration::from_secs(600));
    assert_eq!(seed.min_interval, Some(Duration::from_secs(60)));
    let leech = client
        .announce(
            &url,
            &announce_request(h, 7002, 50, Some(AnnounceEvent::Started)),
        )
        .await
        .unwrap();
    assert_eq!(leech.peers, vec!["127.0.0.1:7001".parse().unwrap()]);
    assert_eq!((leech.complete, leech.incomplete), (Some(1), Some(1)));
    let done = client
        .announce(
            &url,
            &announce_request(h, 7002, 0, Some(AnnounceEvent::Completed)),
        )
        .await
        .unwrap();
    assert_eq!((done.complete, done.incomplete), (Some(2), Some(0)));
    let scrape = client.scrape(&url, &[h, InfoHash([1; 20])]).await.unwrap();
    assert_eq!(scrape[&h].complete, 2);
    assert_eq!(scrape[&h].downloaded, 1);
    assert_eq!(scrape[&InfoHash([1; 20])].complete, 0);
    client
        .announce(
            &url,
            &announce_request(h, 7001, 0, Some(AnnounceEvent::Stopped)),
        )
        .await
        .unwrap();
    let periodic = client
        .announce(&url, &announce_request(h, 7002, 0, None))
        .await
        .unwrap();
    assert!(periodic.peers.is_empty());
    assert_eq!(periodic.complete, Some(1));
}

#[tokio::test]
async fn client_reports_our_failure_reason() {
    let cfg = TrackerConfig {
        private: true,
        ..Default::default()
    };
    let t = TestTracker::start(cfg).await;
    let err = TrackerClient::new()
        .announce(
            &t.announce_url(),
            &announce_request(InfoHash([3; 20]), 7001, 0, None),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::Failure(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "tracker refused: unregistered torrent: this tracker only serves its own torrents"
    );
}

#[tokio::test]
async fn get_peers_lists_announced_peers() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let client = TrackerClient::new();
    let (a, b) = (InfoHash([0xa1; 20]), InfoHash([0xb2; 20]));
    announce_each(&t, &[(a, 7001, 0), (b, 7001, 0), (a, 7002, 1234)]).await;

    for url in [t.base(), format!("{}/", t.base()), t.announce_url()] {
        let peers = client.get_peers(&url, None).await.unwrap();
        assert_eq!(peers.len(), 2, "{url}");
        let p1 = &peers[0];
        assert_eq!((p1.ip.to_string(), p1.port), ("127.0.0.1".into(), 7001));
        assert_eq!(p1.peer_id, PeerId(peer_id(7001)));
        assert_eq!(p1.client, "-TS0001-");
        assert_eq!(p1.left, 0);
        assert!(p1.last_seen_secs < 5);
        let hashes: Vec<InfoHash> = p1.torrents.iter().map(|t| t.info_hash).collect();
        assert_eq!(hashes, vec![a, b]);
        assert_eq!(p1.torrents[0].uploaded, 100);
        assert_eq!(p1.torrents[0].downloaded, 200);
        assert_eq!(peers[1].port, 7002);
        assert_eq!(peers[1].left, 1234);
    }
    let only_b = client.get_peers(&t.base(), Some(b)).await.unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].torrents.len(), 1);
    // The filter also takes the raw 20 bytes, percent-encoded.
    let (status, body) = get(&format!("{}/get_peers?info_hash={}", t.base(), pct(&a.0))).await;
    assert_eq!(status, 200);
    let list: btorrent::announce::PeerList = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (list.peers.len(), list.total, list.truncated),
        (2, 2, false)
    );
    let (status, body) = get(&format!("{}/get_peers?info_hash=nothex", t.base())).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("40 hex digits"));
}

#[tokio::test]
async fn get_peers_listing_is_capped() {
    let cfg = TrackerConfig {
        get_peers_limit: 3,
        ..Default::default()
    };
    let t = TestTracker::start(cfg).await;
    let five: Vec<_> = (1..=5).map(|port| (InfoHash([1; 20]), port, 0)).collect();
    announce_each(&t, &five).await;
    let list = TrackerClient::new()
        .get_peer_list(&t.base(), None)
        .await
        .unwrap();
    assert_eq!((list.peers.len(), list.total, list.truncated), (3, 5, true));
}

/// GETs a `/get_peers` page and returns it with the ports listed.
async fn page(t: &TestTracker, query: &str) -> (btorrent::announce::PeerList, Vec<u16>) {
    let (status, body) = get(&format!("{}/get_peers?{query}", t.base())).await;
    assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&body));
    let list: btorrent::announce::PeerList = serde_json::from_slice(&body).unwrap();
    let ports = list.peers.iter().map(|p| p.port).collect();
    (list, ports)
}

#[tokio::test]
async fn get_peers_is_paged() {
    let cfg = TrackerConfig {
        get_peers_page: 10,
        get_peers_max_page: 20,
        ..Default::default()
    };
    let t = TestTracker::start(cfg).await;
    let (a, b) = (InfoHash([0xa1; 20]), InfoHash([0xb2; 20]));
    let mut peers: Vec<_> = (1..=25).map(|port| (a, port, 0)).collect();
    peers.extend([(b, 3, 0), (b, 17, 0)]);
    announce_each(&t, &peers).await;

    let (first, ports) = page(&t, "").await;
    assert_eq!(ports, (1..=10).collect::<Vec<_>>());
    assert_eq!((first.total, first.truncated), (27, false));
    assert_eq!(first.next.as_deref(), Some("127.0.0.1:10"));
    let (list, ports) = page(&t, "limit=3&after=127.0.0.1%3A10").await;
    assert_eq!(ports, vec![11, 12, 13]);
    assert_eq!(list.next.as_deref(), Some("127.0.0.1:13"));
    let (list, ports) = page(&t, "limit=1000").await;
    assert_eq!(ports.len(), 20, "a page is at most get_peers_max_page");
    assert!(list.next.is_some());
    let (last, ports) = page(&t, "offset=24").await;
    assert_eq!((ports, last.next), (vec![25], None));
    // A torrent's peers are paged the same way.
    let (list, ports) = page(&t, &format!("info_hash={}&limit=1", b.to_hex())).await;
    assert_eq!((ports, list.total), (vec![3], 2));
    assert_eq!(list.peers[0].torrents.len(), 1);
    let (_, ports) = page(&t, &format!("info_hash={}&after=127.0.0.1:3", b.to_hex())).await;
    assert_eq!(ports, vec![17]);

    // The client reads every page.
    let all = TrackerClient::new()
        .get_peer_list(&t.base(), None)
        .await
        .unwrap();
    let ports: Vec<u16> = all.peers.iter().map(|p| p.port).collect();
    assert_eq!(ports, (1..=25).collect::<Vec<_>>());
    assert_eq!((all.total, all.truncated, all.next), (27, false, None));

    for (query, want) in [
        ("limit=many", "limit must be a number"),
        ("offset=-1", "offset must be a number"),
        ("after=somewhere", "after must be an IP:port address"),
    ] {
        let (status, body) = get(&format!("{}/get_peers?{query}", t.base())).await;
        assert_eq!(status, 400, "{query}");
        assert!(String::from_utf8_lossy(&body).contains(want), "{query}");
    }
}

#[tokio::test]
async fn get_peers_follows_the_swarms() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let h = InfoHash([0xc3; 20]);
    announce_each(&t, &[(h, 7001, 0)]).await;
    let client = TrackerClient::new();
    assert_eq!(client.get_peers(&t.base(), None).await.unwrap().len(), 1);
    // The listing is a snapshot, rebuilt for a first page once the swarms changed: an announce
    // answered is in the next listing.
    announce_each(&t, &[(h, 7002, 0)]).await;
    assert_eq!(client.get_peers(&t.base(), None).await.unwrap().len(), 2);
    // Pages that follow a first one are cut from its snapshot, for a consistent walk.
    let (first, _) = page(&t, "limit=1").await;
    announce_each(&t, &[(h, 7000, 0), (h, 7003, 0)]).await;
    let after = first.next.unwrap();
    let (_, ports) = page(&t, &format!("after={after}")).await;
    assert_eq!(ports, vec![7002]);
    let (_, ports) = page(&t, "").await;
    assert_eq!(ports, vec![7000, 7001, 7002, 7003]);
}

#[tokio::test]
async fn get_peers_from_a_tracker_without_it_is_a_clear_error() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let err = TrackerClient::new()
        .get_peers(&format!("{}/nothing/here", t.base()), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TrackerError::Http { status: 404, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn status_page_and_stats_show_the_counts() {
    let t = TestTracker::start(TrackerConfig::default()).await;
    let client = TrackerClient::new();
    let (a, b) = (InfoHash([0xa1; 20]), InfoHash([0xb2; 20]));
    announce_each(
        &t,
        &[(a, 7001, 0), (a, 7002, 10), (a, 7003, 10), (b, 7001, 0)],
    )
    .await;
    // One of a's leechers wants nothing more (BEP 21): still a leecher, no longer downloading.
    let partial = announce_request(a, 7003, 10, Some(AnnounceEvent::Paused));
    let r = client.announce(&t.announce_url(), &partial).await.unwrap();
    assert_eq!(
        (r.complete, r.incomplete, r.downloaders, r.downloaded),
        (Some(1), Some(2), Some(1), Some(0))
    );
    client.scrape(&t.announce_url(), &[a]).await.unwrap();

    let (status, body) = get(&format!("{}/stats", t.base())).await;
    assert_eq!(status, 200);
    let stats: TrackerStats = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (stats.swarms, stats.peers, stats.seeders, stats.leechers),
        (2, 4, 2, 2)
    );
    assert_eq!(stats.partial_seeds, 1);
    assert_eq!((stats.announces, stats.scrapes, stats.failures), (5, 1, 0));
    assert!(!stats.private);

    let resp = reqwest::get(format!("{}/", t.base())).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = resp.text().await.unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for row in [
        "<tr><th>swarms</th><td>2</td></tr>",
        "<tr><th>peers</th><td>4</td></tr>",
        "<tr><th>seeders</th><td>2</td></tr>",
        "<tr><th>leechers</th><td>2</td></tr>",
        "<tr><th>partial seeds</th><td>1</td></tr>",
    ] {
        assert!(html.contains(row), "{row} missing from:\n{html}");
    }
    // Largest swarm first: seeders, leechers, those downloading, completed.
    let row_a = format!(
        "<tr><td class=\"h\">{}</td><td>1</td><td>2</td><td>1</td><td>0</td></tr>",
        a.to_hex()
    );
    let row_b = format!(
        "<tr><td class=\"h\">{}</td><td>1</td><td>0</td><td>0</td><td>0</td></tr>",
        b.to_hex()
    );
    let (pa, pb) = (
        html.find(&row_a).expect(&row_a),
        html.find(&row_b).expect(&row_b),
    );
    assert!(pa < pb);
    let (status, _) = get(&format!("{}/nope", t.base())).await;
    assert_eq!(status, 404);
}
