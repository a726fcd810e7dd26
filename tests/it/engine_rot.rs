//! Data that rots on a seeder's disk (a byte flipped, the file's mtime put back, so neither resume data
//! nor a size/mtime check notices): it is never uploaded, the piece is withdrawn and fetched again from
//! the swarm; a forced re-check finds it; a file longer than the torrent says is reported.

use std::time::Duration;

use crate::support::*;
use btorrent::engine::{Event, TorrentState};

const PIECE: u64 = 64 * 1024;

/// Two copies of 2 MiB of data (32 pieces): `a` and `b`, and the torrent.
fn two_copies() -> (tempfile::TempDir, tempfile::TempDir, btorrent::Metainfo) {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    write_random(&a.path().join("data.bin"), 2 * 1024 * 1024, 7);
    copy_tree(a.path(), b.path());
    let meta = torrent(&a.path().join("data.bin"), PIECE, vec![]);
    (a, b, meta)
}

fn warnings(seen: &[Event]) -> Vec<String> {
    seen.iter()
        .filter_map(|e| match e {
            Event::Warning { message, .. } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotten_piece_is_never_uploaded_and_the_seeder_gets_it_back() {
    init_logs();
    let (a, b, meta) = two_copies();
    let good = std::fs::read(a.path().join("data.bin")).unwrap();
    let (sa, ha) = seeder(&meta, a.path()).await;
    let (sb, _hb) = seeder(&meta, b.path()).await;
    let mut events_a = sa.subscribe().unwrap();
    // After A checked its data and seeds: piece 5 rots.
    rot_byte(&a.path().join("data.bin"), 5 * PIECE + 1234);
    assert_eq!(ha.stats().state, TorrentState::Seeding);

    // A leecher that only knows A asks it for every piece: A hashes piece 5 before sending it.
    let dst = tempfile::tempdir().unwrap();
    let (sl, hl) = leecher(&meta, dst.path(), vec![sa.listen_addr()]).await;
    let mut events_l = sl.subscribe().unwrap();
    let seen = events_until(
        &mut events_a,
        30,
        "piece 5 withdrawn",
        |e| matches!(e, Event::Warning { message, .. } if message.contains("piece 5 ")),
    )
    .await;
    let w = warnings(&seen);
    assert!(
        w[0].contains("data.bin") && w[0].contains("withdrawn"),
        "{w:?}"
    );
    let st = ha.stats();
    assert_eq!(st.pieces_withdrawn, 1);
    assert_eq!(st.pieces_have, st.pieces_total - 1);

    // The leecher finishes from B; A fetches piece 5 again (from B or the leecher).
    hl.add_peers(vec![sb.listen_addr()]);
    ha.add_peers(vec![sb.listen_addr()]);
    wait_complete(&hl, 60).await;
    assert!(std::fs::read(dst.path().join("data.bin")).unwrap() == good);
    wait_complete(&ha, 60).await;
    let seen = events_until(&mut events_a, 10, "A seeding again", |e| {
        matches!(e, Event::Seeding { .. })
    })
    .await;
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Completed { .. })),
        "a repair is no download: {seen:?}"
    );
    assert_eq!(ha.stats().state, TorrentState::Seeding);
    assert!(std::fs::read(a.path().join("data.bin")).unwrap() == good);
    assert_eq!(ha.stats().pieces_withdrawn, 1);
    // No bad data ever reached the leecher: it banned nobody.
    while let Ok(e) = events_l.try_recv() {
        assert!(!matches!(e, Event::PeerBanned { .. }), "{e:?}");
    }
    for s in [sl, sa, sb] {
        s.shutdown(Duration::from_secs(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_finds_a_flipped_byte_and_repairs_it_from_a_peer() {
    init_logs();
    let (a, b, meta) = two_copies();
    let good = std::fs::read(a.path().join("data.bin")).unwrap();
    let (sa, ha) = seeder(&meta, a.path()).await;
    rot_byte(&a.path().join("data.bin"), 17 * PIECE + 5);

    let report = ha.check().await.unwrap();
    assert_eq!(report.bad, vec![17]);
    assert_eq!(report.good, report.pieces_total - 1);
    assert!(report.oversized.is_empty());
    let st = ha.stats();
    assert_eq!(
        (st.pieces_have, st.pieces_withdrawn, st.state),
        (st.pieces_total - 1, 1, TorrentState::Downloading)
    );

    let (sb, _hb) = seeder(&meta, b.path()).await;
    ha.add_peers(vec![sb.listen_addr()]);
    wait_complete(&ha, 60).await;
    assert!(std::fs::read(a.path().join("data.bin")).unwrap() == good);
    let again = ha.check().await.unwrap();
    assert!(again.bad.is_empty(), "{again:?}");
    assert_eq!(again.good, again.pieces_total);
    for s in [sa, sb] {
        s.shutdown(Duration::from_secs(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_bytes_are_reported_and_the_listed_ones_still_seed() {
    init_logs();
    let (a, _b, meta) = two_copies();
    let good = std::fs::read(a.path().join("data.bin")).unwrap();
    let mut longer = good.clone();
    longer.extend_from_slice(&[0xab; 1000]);
    std::fs::write(a.path().join("data.bin"), &longer).unwrap();

    let sa = session().await;
    let mut events = sa.subscribe().unwrap();
    let ha = sa.add(meta.clone(), opts(a.path(), vec![])).await.unwrap();
    let seen = events_until(&mut events, 10, "a warning", |e| {
        matches!(e, Event::Warning { .. })
    })
    .await;
    let w = warnings(&seen);
    assert!(
        w[0].contains("data.bin") && w[0].contains("1000 bytes longer"),
        "{w:?}"
    );
    wait_complete(&ha, 30).await;
    let report = ha.check().await.unwrap();
    assert_eq!(
        report.oversized,
        vec![(std::path::PathBuf::from("data.bin"), 1000)]
    );
    assert_eq!(report.good, report.pieces_total);

    let dst = tempfile::tempdir().unwrap();
    let (sl, hl) = leecher(&meta, dst.path(), vec![sa.listen_addr()]).await;
    wait_complete(&hl, 60).await;
    assert!(std::fs::read(dst.path().join("data.bin")).unwrap() == good);
    for s in [sl, sa] {
        s.shutdown(Duration::from_secs(2)).await;
    }
}
