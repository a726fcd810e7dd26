//! UDP trackers (BEP 15): btorrent's tracker answering UDP (stateless connection ids, spoofed ids
//! refused, no amplification, the HTTP side's caps and private mode) and btorrent's client against it
//! (announce, scrape, events, connection ids reused, retransmission when packets go unanswered,
//! replies with a wrong transaction id or from a wrong address ignored, the URL's path and query
//! sent as BEP 41 URL data, IPv6 on ::1). The codec
//! itself is tested in `tracker_udp_codec`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::tracker::TestTracker;
use btorrent::announce::{AnnounceEvent, RetryPolicy, ScrapeStats, TrackerClient, TrackerError};
use btorrent::tracker::{Tracker, TrackerConfig};
use btorrent::udp_tracker::{Request, Response};
use btorrent::{InfoHash, PeerId};

use crate::tracker_udp_codec::{encoded, req};

/// The connection id `tracker` gives `from`.
fn connect(tracker: &Tracker, from: SocketAddr) -> u64 {
    let mut out = Vec::new();
    assert!(tracker.answer_udp(
        &encoded(&Request::Connect { transaction_id: 3 }),
        from,
        &mut out
    ));
    match Response::decode(&out, false) {
        Ok(Response::Connect {
            transaction_id: 3,
            connection_id,
        }) => connection_id,
        other => panic!("{other:?}"),
    }
}

#[test]
fn spoofed_connection_ids_and_junk_get_no_reply_and_nothing_is_amplified() {
    let tracker = Tracker::new(TrackerConfig::default());
    let (a, b): (SocketAddr, SocketAddr) = (
        "127.0.0.1:5000".parse().unwrap(),
        "127.0.0.2:5000".parse().unwrap(),
    );
    let id = connect(&tracker, a);
    // No per-client state: the same address gets the same id again (from any port).
    assert_eq!(connect(&tracker, "127.0.0.1:5001".parse().unwrap()), id);
    let announce_with = |connection_id: u64| {
        encoded(&Request::Announce {
            connection_id,
            transaction_id: 8,
            announce: req(1, 6881, 0, None),
            url_data: Vec::new(),
        })
    };
    let mut out = Vec::new();
    // A guessed id, and a real id used from another address, are dropped without a word.
    assert!(!tracker.answer_udp(&announce_with(id ^ 1), a, &mut out));
    assert!(!tracker.answer_udp(&announce_with(id), b, &mut out));
    assert!(tracker.answer_udp(&announce_with(id), a, &mut out));
    assert!(matches!(
        Response::decode(&out, false),
        Ok(Response::Announce {
            transaction_id: 8,
            ..
        })
    ));
    // Junk of every kind: no reply.
    let junk: Vec<Vec<u8>> = vec![
        vec![],
        vec![0; 15],
        vec![0xff; 16],
        [
            &encoded(&Request::Connect { transaction_id: 1 })[..],
            &[0; 80],
        ]
        .concat(),
        // An announce cut short, from a client that did connect.
        announce_with(id)[..50].to_vec(),
    ];
    for (i, p) in junk[..4].iter().enumerate() {
        assert!(!tracker.answer_udp(p, a, &mut out), "junk #{i} answered");
        assert!(out.is_empty());
    }
    // A malformed packet with a valid id gets the reason, cut to the request's length.
    assert!(tracker.answer_udp(&junk[4], a, &mut out));
    assert!(out.len() <= 50, "{} bytes", out.len());
    assert!(matches!(
        Response::decode(&out, false),
        Ok(Response::Error { .. })
    ));
    let stats = tracker.stats();
    assert_eq!((stats.udp_connects, stats.udp_announces), (2, 1));
    assert_eq!(stats.udp_dropped, 6);
}

#[test]
fn private_mode_and_caps_answer_with_error_packets() {
    let tracker = Tracker::new(TrackerConfig {
        private: true,
        max_peers: 1,
        ..Default::default()
    });
    tracker.allow(InfoHash([1; 20]));
    let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let id = connect(&tracker, from);
    let announce = |hash: u8, port: u16| {
        let mut out = Vec::new();
        let packet = encoded(&Request::Announce {
            connection_id: id,
            transaction_id: 4,
            announce: req(hash, port, 0, None),
            url_data: Vec::new(),
        });
        assert!(tracker.answer_udp(&packet, from, &mut out));
        assert!(out.len() <= packet.len() || out[..4] == [0, 0, 0, 1]);
        Response::decode(&out, false).unwrap()
    };
    let error = |r: Response| match r {
        Response::Error { message, .. } => message,
        other => panic!("{other:?}"),
    };
    assert!(error(announce(2, 1)).starts_with("unregistered torrent"));
    assert!(matches!(announce(1, 1), Response::Announce { .. }));
    assert!(error(announce(1, 2)).starts_with("tracker is full"));
    assert_eq!(tracker.stats().failures, 2);
}

/// A UDP socket standing in front of `tracker` (answering through `answer_udp`) that leaves the first
/// `drop_connects` connect packets unanswered and, before each real reply, sends a decoy with a wrong
/// transaction id and the real reply's transaction id from another socket, both with bogus content.
/// Returns its address, the count of connect packets it saw and the URL data (BEP 41) of each
/// announce.
async fn flaky_front(
    tracker: Tracker,
    drop_connects: usize,
) -> (SocketAddr, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let front = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let other = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = front.local_addr().unwrap();
    let connects = Arc::new(AtomicUsize::new(0));
    let seen = connects.clone();
    let url_data = Arc::new(Mutex::new(Vec::new()));
    let urls = url_data.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        let mut out = Vec::new();
        while let Ok((len, from)) = front.recv_from(&mut buf).await {
            let packet = &buf[..len];
            if packet.len() >= 12 && packet[8..12] == [0; 4] {
                let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                if n <= drop_connects {
                    continue;
                }
            }
            if let Ok(Request::Announce { url_data, .. }) = Request::decode(packet) {
                urls.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&url_data).into_owned());
            }
            if !tracker.answer_udp(packet, from, &mut out) {
                continue;
            }
            let bogus = match Response::decode(&out, false).unwrap() {
                Response::Connect {
                    transaction_id,
                    connection_id,
                } => Response::Connect {
                    transaction_id,
                    connection_id: !connection_id,
                },
                Response::Announce {
                    transaction_id,
                    mut reply,
                } => {
                    reply.peers = vec!["10.9.9.9:9999".parse().unwrap()];
                    Response::Announce {
                        transaction_id,
                        reply,
                    }
                }
                other => other,
            };
            let mut decoy = Vec::new();
            bogus.encode(false, &mut decoy);
            other.send_to(&decoy, from).await.unwrap();
            decoy[4] ^= 0xff;
            front.send_to(&decoy, from).await.unwrap();
            front.send_to(&out, from).await.unwrap();
        }
    });
    (addr, connects, url_data)
}

/// A client whose UDP exchanges wait 300 ms, then 600 ms, ... for an answer.
fn fast_client() -> TrackerClient {
    TrackerClient::with_timeouts(Duration::from_millis(300), Duration::from_secs(5))
}

#[tokio::test]
async fn a_lost_connect_is_sent_again_and_decoys_are_ignored() {
    let tracker = Tracker::new(TrackerConfig::default());
    let (addr, connects, url_data) = flaky_front(tracker.clone(), 1).await;
    let url = format!("udp://{addr}/announce");
    let client = fast_client();
    // Another peer is in the swarm, so the reply has a peer to compare with the decoys' 10.9.9.9.
    let id = connect(&tracker, "127.0.0.1:1".parse().unwrap());
    let mut out = Vec::new();
    let other = encoded(&Request::Announce {
        connection_id: id,
        transaction_id: 1,
        announce: req(1, 7777, 0, None),
        url_data: Vec::new(),
    });
    assert!(tracker.answer_udp(&other, "127.0.0.1:1".parse().unwrap(), &mut out));

    let r = client
        .announce(&url, &req(1, 6881, 10, Some(AnnounceEvent::Started)))
        .await
        .unwrap();
    assert_eq!(
        r.peers,
        vec!["127.0.0.1:7777".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!((r.complete, r.incomplete), (Some(1), Some(1)));
    assert_eq!(
        connects.load(Ordering::SeqCst),
        2,
        "one lost connect, one answered"
    );
    // The connection id is reused: no connect for the next call.
    client.announce(&url, &req(1, 6881, 0, None)).await.unwrap();
    assert_eq!(connects.load(Ordering::SeqCst), 2);
    // Each announce told the tracker its URL's path and query (BEP 41), a passkey's too; a URL
    // without either tells nothing.
    for tail in ["/announce?passkey=a%20b&x=1", "?only=query", "", "/"] {
        let url = format!("udp://{addr}{tail}");
        client.announce(&url, &req(1, 6881, 0, None)).await.unwrap();
    }
    assert_eq!(
        *url_data.lock().unwrap(),
        [
            "/announce",
            "/announce",
            "/announce?passkey=a%20b&x=1",
            "/?only=query",
            "",
            ""
        ]
    );

    // Without retries, a lost connect fails the call as a transient transport error.
    let (addr, _, _) = flaky_front(tracker, 1).await;
    let once = fast_client().with_retry(RetryPolicy::none());
    let e = once
        .announce(&format!("udp://{addr}/announce"), &req(1, 6881, 0, None))
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains("no answer after 1 try"), "{e}");
}

#[tokio::test]
async fn client_announces_and_scrapes_our_tracker_over_udp() {
    let tt = TestTracker::start_with_udp("127.0.0.1:0", TrackerConfig::default()).await;
    let url = tt.udp_url();
    let client = fast_client();
    let seeder = client
        .announce(&url, &req(5, 1001, 0, Some(AnnounceEvent::Started)))
        .await
        .unwrap();
    assert_eq!(seeder.peers, vec![]);
    assert_eq!(seeder.interval, Duration::from_secs(600));
    let mut leech = req(5, 1002, 50, Some(AnnounceEvent::Started));
    leech.peer_id = PeerId(*b"-BT0100-otherotherot");
    let r = client.announce(&url, &leech).await.unwrap();
    assert_eq!(
        r.peers,
        vec!["127.0.0.1:1001".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!((r.complete, r.incomplete), (Some(1), Some(1)));

    leech.event = Some(AnnounceEvent::Completed);
    leech.left = 0;
    client.announce(&url, &leech).await.unwrap();
    let unknown = InfoHash([9; 20]);
    let s = client
        .scrape(&url, &[InfoHash([5; 20]), unknown])
        .await
        .unwrap();
    let want = ScrapeStats {
        complete: 2,
        incomplete: 0,
        downloaded: 1,
        downloaders: None,
    };
    assert_eq!(s[&InfoHash([5; 20])], want);
    assert_eq!(s[&unknown], ScrapeStats::default());

    leech.event = Some(AnnounceEvent::Stopped);
    client.announce(&url, &leech).await.unwrap();
    let s = client.scrape(&url, &[InfoHash([5; 20])]).await.unwrap();
    assert_eq!(s[&InfoHash([5; 20])].complete, 1);
    // Many hashes go out in packets of at most 74.
    let many: Vec<InfoHash> = (0..100u8).map(|i| InfoHash([i; 20])).collect();
    assert_eq!(client.scrape(&url, &many).await.unwrap().len(), 100);

    let stats = tt.tracker.stats();
    assert_eq!(stats.udp_announces, 4);
    assert_eq!(stats.udp_scrapes, 4);
    assert_eq!(stats.udp_connects, 1, "the connection id was reused");
    // The status page counts them.
    let (_, page) = crate::support::tracker::get(&format!("{}/", tt.base())).await;
    assert!(
        String::from_utf8_lossy(&page).contains("<tr><th>UDP announces</th><td>4</td></tr>"),
        "{}",
        String::from_utf8_lossy(&page)
    );
    // A refusal arrives as the tracker's words.
    let e = TrackerClient::new()
        .announce(&url, &req(5, 0, 0, None))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, TrackerError::Failure(m) if m == "invalid port"),
        "{e}"
    );
    // A udp:// URL without a port is refused with one clear line.
    let e = client
        .announce("udp://127.0.0.1/announce", &req(5, 1, 0, None))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid tracker URL \"udp://127.0.0.1/announce\": a udp:// tracker needs a port"
    );
    tt.stop().await;
}

#[tokio::test]
async fn ipv6_announces_get_18_byte_peers() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    }
    let tt = TestTracker::start_with_udp("[::1]:0", TrackerConfig::default()).await;
    let url = tt.udp_url();
    assert!(url.starts_with("udp://[::1]:"), "{url}");
    let client = fast_client();
    client.announce(&url, &req(6, 2001, 0, None)).await.unwrap();
    let r = client.announce(&url, &req(6, 2002, 5, None)).await.unwrap();
    assert_eq!(r.peers, vec!["[::1]:2001".parse::<SocketAddr>().unwrap()]);
    assert_eq!(tt.tracker.stats().udp_announces, 2);
    tt.stop().await;
}
