//! The tracker client against a scripted HTTP double: what goes on the wire (raw-byte encoding), how
//! replies, refusals and failures come back, and that transport errors are retried a bounded number of
//! times.

use std::time::{Duration, Instant};

use crate::support::tracker::http_double as double;
use btorrent::announce::{
    AnnounceEvent, AnnounceRequest, RetryPolicy, TrackerClient, TrackerError,
};
use btorrent::{InfoHash, PeerId};
use tokio::net::TcpListener;

fn request() -> AnnounceRequest {
    let mut hash = [0u8; 20];
    for (i, b) in hash.iter_mut().enumerate() {
        *b = [0x00, b'+', b' ', 0xff, b'%', b'&', b'=', b'a'][i % 8];
    }
    AnnounceRequest {
        info_hash: InfoHash(hash),
        peer_id: PeerId(*b"-BT0100-abcdefghijkl"),
        port: 51413,
        uploaded: 10,
        downloaded: 20,
        left: 30,
        event: Some(AnnounceEvent::Started),
        numwant: None,
        key: None,
        ip: None,
    }
}

#[tokio::test]
async fn announce_encodes_raw_bytes_and_reads_compact_peers() {
    let (base, seen) = double(|_| {
        let mut body = b"d8:completei1e10:incompletei2e8:intervali120e5:peers6:".to_vec();
        body.extend_from_slice(&[127, 0, 0, 2, 0x1a, 0xe1]);
        body.push(b'e');
        (200, body)
    })
    .await;
    let client = TrackerClient::new();
    let r = client
        .announce(&format!("{base}/announce?passkey=abc"), &request())
        .await
        .unwrap();
    assert_eq!(r.interval, Duration::from_secs(120));
    assert_eq!(r.complete, Some(1));
    assert_eq!(r.incomplete, Some(2));
    assert_eq!(r.peers, vec!["127.0.0.2:6881".parse().unwrap()]);
    let line = seen.lock().unwrap()[0].clone();
    assert!(
        line.starts_with("GET /announce?passkey=abc&info_hash=%00%2B%20%FF%25%26%3Da%00%2B"),
        "{line}"
    );
    assert!(
        line.contains(
            "&peer_id=-BT0100-abcdefghijkl&port=51413&uploaded=10&downloaded=20&left=30&"
        ),
        "{line}"
    );
    assert!(line.contains("&event=started"), "{line}");
}

#[tokio::test]
async fn failure_reason_is_reported_not_retried() {
    let (base, seen) = double(|_| (200, b"d14:failure reason15:unknown torrente".to_vec())).await;
    let err = TrackerClient::new()
        .announce(&format!("{base}/announce"), &request())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TrackerError::Failure(r) if r == "unknown torrent"),
        "{err}"
    );
    assert_eq!(err.to_string(), "tracker refused: unknown torrent");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let (base, seen) = double(|_| (503, b"busy".to_vec())).await;
    let client = TrackerClient::new().with_retry(RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
    });
    let err = client
        .announce(&format!("{base}/announce?passkey=secret"), &request())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TrackerError::Http { status: 503, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("secret"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_redirect_loop_is_cut_after_a_few_requests_and_not_retried() {
    use btorrent::announce::MAX_REDIRECTS;
    let (base, seen) = crate::support::tracker::http_double_with_headers(|line| {
        // Always back to where it came from, query and all.
        let target = line.split(' ').nth(1).unwrap_or("/").to_string();
        (302, vec![("Location".to_string(), target)], Vec::new())
    })
    .await;
    let client = TrackerClient::new().with_retry(RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    });
    let err = client
        .announce(&format!("{base}/announce?passkey=secret"), &request())
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    let text = err.to_string();
    assert!(text.contains("redirected more than 4 times"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    // The first request and MAX_REDIRECTS more: 5 in all, once (33 before: 11 per try, 3 tries).
    assert_eq!(seen.lock().unwrap().len(), 1 + MAX_REDIRECTS);
    assert_eq!(1 + MAX_REDIRECTS, 5);
}

#[tokio::test]
async fn refused_connection_is_a_clear_transport_error() {
    // A port nobody listens on (outside the kernel's ephemeral range, so no other test's
    // listener takes it meanwhile).
    let port = crate::support::process::free_port();
    let client = TrackerClient::new().with_retry(RetryPolicy {
        attempts: 2,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    });
    let t0 = Instant::now();
    let err = client
        .announce(&format!("http://127.0.0.1:{port}/announce"), &request())
        .await
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(err.is_transient());
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "could not reach tracker http://127.0.0.1:{port}/announce: cannot connect"
        )),
        "{text}"
    );
    assert!(!text.contains("info_hash"), "{text}");
}

#[tokio::test]
async fn slow_tracker_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and never answers.
    let hold = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            socks.push(s);
        }
    });
    let client = TrackerClient::with_timeouts(Duration::from_secs(1), Duration::from_millis(300))
        .with_retry(RetryPolicy::none());
    let err = client
        .announce(&format!("http://{addr}/announce"), &request())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TrackerError::Transport {
                timed_out: true,
                ..
            }
        ),
        "{err}"
    );
    hold.abort();
}

#[tokio::test]
async fn garbage_reply_is_a_bad_response() {
    let (base, _) = double(|_| (200, b"<html>hello</html>".to_vec())).await;
    let err = TrackerClient::new()
        .announce(&format!("{base}/announce"), &request())
        .await
        .unwrap_err();
    assert!(matches!(err, TrackerError::BadResponse(_)), "{err}");
}

#[tokio::test]
async fn scrape_goes_to_the_scrape_path_with_every_hash() {
    let (base, seen) = double(|_| {
        let mut body = b"d5:filesd20:".to_vec();
        body.extend_from_slice(&[1u8; 20]);
        body.extend_from_slice(b"d8:completei4e10:downloadedi9e10:incompletei2ee20:");
        body.extend_from_slice(&[2u8; 20]);
        body.extend_from_slice(b"d8:completei0e10:downloadedi0e10:incompletei1eeee");
        (200, body)
    })
    .await;
    let m = TrackerClient::new()
        .scrape(
            &format!("{base}/announce"),
            &[InfoHash([1; 20]), InfoHash([2; 20])],
        )
        .await
        .unwrap();
    assert_eq!(m[&InfoHash([1; 20])].complete, 4);
    assert_eq!(m[&InfoHash([1; 20])].downloaded, 9);
    assert_eq!(m[&InfoHash([2; 20])].incomplete, 1);
    let line = seen.lock().unwrap()[0].clone();
    assert!(
        line.starts_with(&format!(
            "GET /scrape?info_hash={}&info_hash={} ",
            "%01".repeat(20),
            "%02".repeat(20)
        )),
        "{line}"
    );
}
