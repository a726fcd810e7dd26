//! A peer that chokes us while our requests to it are on their way. With the fast extension (BEP 6)
//! a choke cancels nothing: the peer sends what it still has in hand and rejects the rest, so the
//! requests stay with it until answered one way or the other. Asking another peer for them at the
//! choke would bring each such block twice (in a swarm where peers choke and unchoke every few
//! seconds that was the bulk of the bytes downloaded twice).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::support::fake_peer::{fake_peer, Act};
use crate::support::*;
use btorrent::engine::SessionConfig;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_peers_choke_leaves_its_requests_with_it_until_answered() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let size = 2 << 20;
    let data = write_random(&src.path().join("d.bin"), size, 57);
    let meta = torrent(&src.path().join("d.bin"), 64 * 1024, vec![]);
    let data = Arc::new(data);
    // The choker holds its first 8 requests, chokes, and sends those blocks half a second later.
    let choker = Act::ChokeAndAnswer {
        collect: 8,
        hold: Duration::from_millis(500),
    };
    let choker = fake_peer(&meta, data.clone(), ip("127.0.0.4"), choker).await;
    // The other peer answers everything at once.
    let other = fake_peer(
        &meta,
        data.clone(),
        ip("127.0.0.5"),
        Act::SnubAfter(u64::MAX),
    )
    .await;
    // A download of about 8 s, so endgame (which may duplicate a request a second old once every
    // block is asked for, about 2 s before the end: a request window holds 2 s of blocks) is
    // seconds off while the choker holds its blocks, even when a busy machine stretches its half
    // second (at 4 s, a loaded run saw two of them duplicated).
    let cfg = SessionConfig {
        listen: SocketAddr::new(ip("127.0.0.2"), 0),
        download_limit: Some(256 * 1024),
        ..Default::default()
    };
    let leecher = session_with(cfg).await;
    let l = leecher
        .add(
            meta.clone(),
            opts(dst.path(), vec![choker.addr, other.addr]),
        )
        .await
        .unwrap();
    wait_complete(&l, 60).await;
    assert_same_tree(src.path(), dst.path());

    let held = choker.counts.answered_after_choke.lock().unwrap().clone();
    assert_eq!(
        held.len(),
        8,
        "the choker answered {held:?} after its choke"
    );
    let asked_elsewhere: Vec<_> = other
        .counts
        .asked
        .lock()
        .unwrap()
        .iter()
        .filter(|b| held.contains(b))
        .copied()
        .collect();
    assert!(
        asked_elsewhere.is_empty(),
        "blocks the choker still owed were asked of the other peer: {asked_elsewhere:?}"
    );
    assert_eq!(
        l.stats().downloaded,
        size as u64,
        "payload received beyond the file"
    );
}
