//! Per-torrent speed limits in one session: a limited torrent is served no faster than its limit
//! while another torrent of the same seeder runs free, a torrent told not to honour the
//! session's limit escapes it, under the session's limit a high-priority torrent is served
//! before a low-priority one, and a bandwidth group's limits bind the torrents in it.

use std::time::{Duration, Instant};

use crate::support::*;
use btorrent::engine::{
    GroupLimits, Priority, Session, SessionConfig, TorrentHandle, TorrentLimits,
};
use btorrent::Metainfo;

const SIZE: usize = 4 * 1024 * 1024;

/// Two torrents of random data in one folder.
fn two_torrents(dir: &std::path::Path) -> (Metainfo, Metainfo) {
    write_random(&dir.join("a.bin"), SIZE, 31);
    write_random(&dir.join("b.bin"), SIZE, 32);
    (
        torrent(&dir.join("a.bin"), 64 * 1024, vec![]),
        torrent(&dir.join("b.bin"), 64 * 1024, vec![]),
    )
}

/// A seeder session (`cfg`) seeding both torrents, checked.
async fn seed_both(
    cfg: SessionConfig,
    a: &Metainfo,
    b: &Metainfo,
    dir: &std::path::Path,
) -> (Session, TorrentHandle, TorrentHandle) {
    let s = session_with(cfg).await;
    let ha = s.add(a.clone(), opts(dir, vec![])).await.unwrap();
    let hb = s.add(b.clone(), opts(dir, vec![])).await.unwrap();
    wait_complete(&ha, 30).await;
    wait_complete(&hb, 30).await;
    (s, ha, hb)
}

/// A leecher session that downloads both torrents from `seeder` into `dst`; their handles.
async fn leech_both(
    seeder: &Session,
    a: &Metainfo,
    b: &Metainfo,
    dst: &std::path::Path,
) -> (Session, TorrentHandle, TorrentHandle) {
    let leecher = session().await;
    let peers = vec![seeder.listen_addr()];
    let la = leecher
        .add(a.clone(), opts(dst, peers.clone()))
        .await
        .unwrap();
    let lb = leecher.add(b.clone(), opts(dst, peers)).await.unwrap();
    (leecher, la, lb)
}

/// A session whose upload is limited to `limit` bytes per second.
fn upload_limited(limit: u64) -> SessionConfig {
    SessionConfig {
        upload_limit: Some(limit),
        ..Default::default()
    }
}

/// The rate at which `h` uploads, measured from the moment it has sent its first burst until it has
/// sent `bytes` more (within `secs`).
async fn upload_rate(h: &TorrentHandle, bytes: u64, secs: u64) -> f64 {
    let up = || h.stats().uploaded;
    wait_until("the upload to start", Duration::from_secs(20), || {
        up() >= 128 * 1024
    })
    .await;
    let (t0, u0) = (Instant::now(), up());
    wait_until(
        "the limited torrent to send its share",
        Duration::from_secs(secs),
        || up() >= u0 + bytes,
    )
    .await;
    let rate = (up() - u0) as f64 / t0.elapsed().as_secs_f64();
    eprintln!("{}: served at {rate:.0} B/s", h.name());
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_torrent_upload_limit_bounds_that_torrent_only() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let (a, b) = two_torrents(src.path());
    let (_seeder, sa, sb) = seed_both(SessionConfig::default(), &a, &b, src.path()).await;
    // Set while the torrent runs.
    const LIMIT: u64 = 200_000;
    sa.set_limits(TorrentLimits {
        upload: Some(LIMIT),
        ..Default::default()
    });
    assert_eq!(sa.limits().upload, Some(LIMIT));
    assert_eq!(sb.limits(), TorrentLimits::default());

    let (_leecher, la, lb) = leech_both(&_seeder, &a, &b, dst.path()).await;
    // The unlimited torrent completes long before the limited one could (20 s at its limit).
    wait_complete(&lb, 30).await;
    let a_sent = sa.stats().uploaded;
    assert!(
        a_sent < SIZE as u64 / 2,
        "the limited torrent sent {a_sent} bytes while the other sent all {SIZE}"
    );
    let rate = upload_rate(&sa, 600_000, 30).await;
    assert!(
        rate <= LIMIT as f64 * 1.5,
        "limited to {LIMIT} B/s, served at {rate:.0} B/s"
    );
    assert!(rate >= LIMIT as f64 / 4.0, "served at only {rate:.0} B/s");
    assert!(sb.stats().uploaded >= SIZE as u64);
    // Lifted while running: the rest comes at once.
    sa.set_limits(TorrentLimits::default());
    wait_complete(&la, 30).await;
    assert_same_tree(src.path(), dst.path());
}

/// Two torrents seeded under a session upload limit of 150 kB/s, the second freed of it by
/// `free`: the second completes while the first sends less than half, at most the limit.
async fn the_second_escapes_the_session_limit(free: impl FnOnce(&Session, &TorrentHandle)) {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let (a, b) = two_torrents(src.path());
    const LIMIT: u64 = 150_000;
    let (seeder, sa, sb) = seed_both(upload_limited(LIMIT), &a, &b, src.path()).await;
    free(&seeder, &sb);
    let (_leecher, _la, lb) = leech_both(&seeder, &a, &b, dst.path()).await;
    wait_complete(&lb, 30).await;
    let a_sent = sa.stats().uploaded;
    assert!(
        a_sent < SIZE as u64 / 2,
        "the torrent under the session limit sent {a_sent} bytes while the other sent all {SIZE}"
    );
    let rate = upload_rate(&sa, 450_000, 30).await;
    assert!(
        rate <= LIMIT as f64 * 1.5,
        "session limited to {LIMIT} B/s, served at {rate:.0} B/s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_not_honouring_session_limits_escapes_them() {
    the_second_escapes_the_session_limit(|_, b| {
        b.set_limits(TorrentLimits {
            honors_session_limits: false,
            ..Default::default()
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_the_session_limit_a_high_priority_torrent_goes_first() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let (a, b) = two_torrents(src.path());
    const LIMIT: u64 = 1_000_000;
    let (seeder, sa, sb) = seed_both(upload_limited(LIMIT), &a, &b, src.path()).await;
    // Set while both run.
    sa.set_limits(TorrentLimits {
        priority: Priority::Low,
        ..Default::default()
    });
    sb.set_limits(TorrentLimits {
        priority: Priority::High,
        ..Default::default()
    });
    assert_eq!(sa.limits().priority, Priority::Low);
    let (_leecher, la, lb) = leech_both(&seeder, &a, &b, dst.path()).await;
    // The high-priority torrent has the session's rate (4 s for its 4 MiB); the low one a
    // starved class's trickle meanwhile (a grant every 20 grants' time), not half.
    wait_complete(&lb, 60).await;
    let (low_sent, high_sent) = (sa.stats().uploaded, sb.stats().uploaded);
    eprintln!("when the high-priority torrent was done: low {low_sent} B, high {high_sent} B");
    assert!(
        low_sent < SIZE as u64 / 4,
        "the low-priority torrent sent {low_sent} bytes while the high one sent all {SIZE}"
    );
    // Alone, the low one has the whole rate, and no more.
    let rate = upload_rate(&sa, 1_500_000, 30).await;
    assert!(
        rate <= LIMIT as f64 * 1.5,
        "session limited to {LIMIT} B/s, served at {rate:.0} B/s"
    );
    wait_complete(&la, 60).await;
    assert_same_tree(src.path(), dst.path());
}

/// A bandwidth group's limit binds the torrents put in it, and only them; a torrent taken out of
/// the group is free of it at once, and a group's limits change while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bandwidth_group_bounds_the_torrents_in_it() {
    init_logs();
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let (a, b) = two_torrents(src.path());
    const LIMIT: u64 = 150_000;
    let slow = GroupLimits {
        upload: Some(LIMIT),
        ..Default::default()
    };
    let cfg = SessionConfig {
        bandwidth_groups: vec![("slow".into(), slow)],
        ..Default::default()
    };
    let (seeder, sa, sb) = seed_both(cfg, &a, &b, src.path()).await;
    sa.set_group(Some("slow"));
    assert_eq!(sa.group().as_deref(), Some("slow"));
    assert_eq!(sb.group(), None);
    // A torrent's own limits are untouched by its group's.
    assert_eq!(sa.limits(), TorrentLimits::default());

    let (_leecher, la, lb) = leech_both(&seeder, &a, &b, dst.path()).await;
    wait_complete(&lb, 30).await;
    let a_sent = sa.stats().uploaded;
    assert!(
        a_sent < SIZE as u64 / 2,
        "the torrent in the group sent {a_sent} bytes while the other sent all {SIZE}"
    );
    let rate = upload_rate(&sa, 450_000, 30).await;
    assert!(
        rate <= LIMIT as f64 * 1.5,
        "group limited to {LIMIT} B/s, served at {rate:.0} B/s"
    );
    // The group made unlimited while it runs: the rest comes at once.
    seeder.set_group_limits("slow", GroupLimits::default());
    assert_eq!(
        seeder.groups(),
        [("slow".to_string(), GroupLimits::default())]
    );
    wait_complete(&la, 30).await;
    assert_same_tree(src.path(), dst.path());
}

/// A group that does not honour the session's limits frees its torrents of them; the others stay
/// bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_not_honouring_the_session_limits_frees_its_torrents() {
    the_second_escapes_the_session_limit(|session, b| {
        let free = GroupLimits {
            honors_session_limits: false,
            ..Default::default()
        };
        session.set_group_limits("free", free);
        b.set_group(Some("free"));
    })
    .await;
}
