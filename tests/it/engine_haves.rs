//! Which peers hear our `have`s: a peer that lacks the piece, or sent it to us; not one that has it
//! and did not (it will never ask us for it, and each `have` is a packet of its own).

use std::time::Duration;

use crate::support::*;
use btorrent::engine::SessionConfig;
use btorrent::wire::{Bitfield, Message};
use futures::{SinkExt, StreamExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haves_go_to_peers_that_lack_the_piece_and_not_to_those_that_have_it() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write_random(&src.path().join("d.bin"), 16 * 16384, 31);
    let meta = torrent(&src.path().join("d.bin"), 16384, vec![]);
    let n = meta.info.piece_count();
    let (seeder, _) = seeder(&meta, src.path()).await;
    // A slow download (about 4 s), so the observer is connected before most pieces verify.
    let slow = SessionConfig {
        download_limit: Some(64 * 1024),
        ..Default::default()
    };
    let (leecher, l) = leecher_with(slow, &meta, dst.path(), vec![seeder.listen_addr()]).await;

    // The observer: has the even pieces, wants nothing, sends nothing after its bitfield.
    let mut f = crate::support::fake_peer::handshaken(&meta, leecher.listen_addr()).await;
    let mut evens = Bitfield::new(n);
    (0..n).step_by(2).for_each(|i| {
        evens.set(i);
    });
    f.send(Message::Bitfield(evens.clone())).await.unwrap();

    // Read until every odd piece was told (in the leecher's first bitfield or by `have`).
    let (mut told_odd, mut haves_of_evens, mut haves) = (Bitfield::new(n), Vec::new(), 0);
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    while told_odd.count() < n / 2 {
        let m = match tokio::time::timeout_at(end, f.next()).await {
            Ok(Some(Ok(m))) => m,
            other => panic!(
                "told {} of {} odd pieces, then {other:?}; leecher {:?}",
                told_odd.count(),
                n / 2,
                l.stats().state
            ),
        };
        let mut told = |i: usize| {
            if i % 2 == 1 {
                told_odd.set(i);
            }
        };
        match m {
            Message::Bitfield(bf) => bf.ones().for_each(&mut told),
            Message::Have(i) => {
                haves += 1;
                if evens.get(i as usize) {
                    haves_of_evens.push(i);
                }
                told(i as usize);
            }
            _ => {}
        }
    }
    wait_complete(&l, 60).await;
    assert!(haves > 0, "the observer was told no piece by `have`");
    assert!(
        haves_of_evens.is_empty(),
        "told of pieces it has: {haves_of_evens:?}"
    );
    leecher.shutdown(Duration::from_secs(2)).await;
    seeder.shutdown(Duration::from_secs(2)).await;
}
