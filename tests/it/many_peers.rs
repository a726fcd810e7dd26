//! Many peers on one torrent: a leecher downloads from synthetic peers (tests/support/swarm.rs), each
//! on a loopback address of its own, whose pieces grow while it runs (`have`s), some joining late by
//! dialing it and some leaving; the file arrives whole. And `max_peers` lets a torrent connect to more
//! than the engine's default 50.

use std::sync::atomic::Ordering;
use std::time::Duration;

use btorrent::engine::SessionConfig;

use crate::support::host::ScriptRig;
use crate::support::swarm::{self, SwarmConfig};
use crate::support::{self, leecher_with, wait_complete, wait_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_completes_from_forty_peers_while_availability_changes() {
    support::init_logs();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    // 512 pieces of 16 KiB: at most 15% at each peer at first, so some pieces are nowhere until a
    // peer gains them.
    let data = support::write_random(&src.join("many.bin"), 8 << 20, 40);
    let meta = support::torrent(&src.join("many.bin"), 16 << 10, vec![]);
    let cfg = SessionConfig {
        max_peers_per_torrent: 64,
        ..Default::default()
    };
    let out = dir.path().join("out");
    let (session, h) = leecher_with(cfg, &meta, &out, vec![]).await;
    let sw = swarm::start(
        &meta,
        data.clone().into(),
        SwarmConfig {
            peers: 34,
            joiners: 6,
            leavers: 6,
            share: (0.0, 0.15),
            gain_every: Duration::from_millis(200),
            gain: 2,
            churn_every: Duration::from_millis(300),
            target: Some(session.listen_addr()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let st = &sw.stats;
    assert!(
        st.unheld_at_start.load(Ordering::Relaxed) > 0,
        "every piece is somewhere from the start: {}",
        st.line()
    );
    h.add_peers(sw.addrs.clone());
    wait_complete(&h, 90).await;
    assert_eq!(std::fs::read(out.join("many.bin")).unwrap(), data);
    assert!(
        st.max_connected.load(Ordering::Relaxed) >= 30,
        "connected to too few: {}",
        st.line()
    );
    assert!(st.haves.load(Ordering::Relaxed) > 0, "{}", st.line());
    wait_until(
        "every joiner joined and every leaver left",
        Duration::from_secs(30),
        || st.joined.load(Ordering::Relaxed) == 6 && st.left.load(Ordering::Relaxed) == 6,
    )
    .await;
}

/// `max_peers` in the settings raises the engine's 50 connections per torrent: a script's download
/// holds more than 50 connections of 60 peers.
#[test]
fn the_max_peers_setting_lets_a_torrent_connect_past_fifty() {
    let rig = ScriptRig::new("max_peers = 70", None);
    let src = rig.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = support::write_random(&src.join("wide.bin"), 4 << 20, 41);
    let meta = support::torrent(&src.join("wide.bin"), 16 << 10, vec![]);
    std::fs::write(rig.path("wide.torrent"), meta.as_bytes()).unwrap();
    // Few pieces each and none gained: the download stays open while the connections are counted.
    let sw = rig
        .rt
        .block_on(swarm::start(
            &meta,
            data.into(),
            SwarmConfig {
                peers: 60,
                share: (0.0, 0.01),
                gain: 0,
                ..Default::default()
            },
        ))
        .unwrap();
    let peers: Vec<String> = sw.addrs.iter().map(|a| format!("\"{a}\"")).collect();
    rig.script(
        "wide.rhai",
        &format!(
            "start({:?}, #{{ output: {:?}, peers: [{}], trackers: [] }});",
            rig.path("wide.torrent"),
            rig.path("out"),
            peers.join(", ")
        ),
    );
    // The leecher's own count (the peers see more for a moment: it dials several per free slot and
    // turns away the extra ones after the handshake).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        rig.script(
            "count.rhai",
            "print(`PEERS ${torrent(\"wide.bin\").peers}`);",
        );
        let last = rig.lines.lock().last().cloned().unwrap_or_default();
        let n: usize = last.trim_start_matches("PEERS ").parse().unwrap();
        if n > 50 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "connected to {n} peers only: {}",
            sw.stats.line()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
