//! Two machines on one LAN with every setting left at its default: two network namespaces joined by a
//! veth pair (198.18.0.1 and 198.18.0.2, the range set aside for benchmarks), made and removed by the
//! test. On host A, `btorrent daemon` runs with no torrents.toml and `btorrent create` shares a file;
//! on host B, `btorrent start <that .torrent>` with no torrents.toml of its own downloads it through
//! A's embedded tracker. A has a default route and B none, so both ways of finding the LAN address
//! are used. And a torrent with no tracker found between them by local service discovery (BEP 14),
//! over IPv4 and on a LAN with IPv6 alone.
//! Skipped, saying why, where namespaces cannot be made (not root, no `ip`).

use std::time::Duration;

use crate::support::netns::{TwoHosts, A_IP, B_IP};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_created_on_one_host_downloads_on_another_with_the_defaults() {
    let Some(hosts) = TwoHosts::make_or_skip() else {
        return;
    };
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let data = write_random(&a_dir.path().join("photos.bin"), 3 << 20, 91);

    // Host A: the daemon with no torrents.toml at all, i.e. every default.
    let mut daemon = Proc::spawn_logged(
        &mut TwoHosts::btorrent(&hosts.a, a_dir.path(), &["daemon"]),
        a_dir.path().join("daemon.log"),
    );
    let announce = format!("http://{A_IP}:6969/announce");
    daemon
        .wait_until(20, "the daemon's tracker", |p| {
            p.log_text().contains(&format!("tracker: {announce}"))
        })
        .await;

    // `create` picks the LAN address (the source of A's default route) and says so.
    let created = run_ok(
        &mut TwoHosts::btorrent(&hosts.a, a_dir.path(), &["create", "photos.bin"]),
        Duration::from_secs(30),
    );
    assert!(
        created.contains(&format!("tracker    {announce}")),
        "{created}"
    );
    assert!(
        created.contains(&format!(
            "{A_IP} is this machine's LAN address (source of the default route)"
        )),
        "{created}"
    );
    let torrent = a_dir.path().join("torrents/photos.bin.torrent");

    // The daemon seeds it (it joins when torrents.toml changes) and its tracker lists A.
    let listed = || {
        let out = crate::support::process::run(
            &mut TwoHosts::btorrent(&hosts.a, a_dir.path(), &["peer", "--json"]),
            Duration::from_secs(20),
        );
        out.status.success() && out.stdout.contains(A_IP)
    };
    wait_until_async(
        "A's tracker to list A's seeder",
        Duration::from_secs(30),
        || async { listed() },
    )
    .await;

    // B has no default route: there `create` falls back to the address of its interface.
    let scratch = tempfile::tempdir().unwrap();
    write_random(&scratch.path().join("probe.bin"), 1000, 3);
    let probe = run_ok(
        &mut TwoHosts::btorrent(&hosts.b, scratch.path(), &["create", "probe.bin"]),
        Duration::from_secs(30),
    );
    assert!(
        probe.contains(&format!("tracker    http://{B_IP}:6969/announce"))
            && probe.contains(&format!(
                "{B_IP} is the address of interface {} (there is no default route)",
                hosts.peer
            )),
        "{probe}"
    );

    // Host B: its own empty folder, no settings; the .torrent is all it is given.
    let torrent = torrent.to_str().unwrap();
    download_on_b(&hosts, b_dir.path(), torrent, &daemon, "photos.bin", &data);
    daemon.kill();
    drop(hosts);
}

/// `btorrent start <source>` (a .torrent or a magnet link) on host B, in `b_dir`, gives up after a
/// minute with nothing new; it must end well with `name` in B's output folder holding `data` (A's
/// daemon's log shown if not).
fn download_on_b(
    hosts: &TwoHosts,
    b_dir: &std::path::Path,
    source: &str,
    daemon: &Proc,
    name: &str,
    data: &[u8],
) {
    hosts.start_on_b(
        b_dir,
        source,
        "btorrent_engine::lsd=debug,btorrent_engine::peer=debug,btorrent_engine=info",
        || daemon.log_text(),
    );
    let downloaded = std::fs::read(b_dir.join("output").join(name)).unwrap();
    assert!(downloaded == data, "the bytes on B differ from A's");
}

/// Local service discovery (BEP 14) between the two hosts, every setting at its default: a torrent
/// made with no tracker on A (whose daemon seeds it) downloads on B with no tracker, no DHT (it is
/// off in these tests) and no peer given: the two find each other by their multicast announces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torrent_with_no_tracker_is_found_on_the_lan_by_local_discovery() {
    let Some(hosts) = TwoHosts::make_or_skip() else {
        return;
    };
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (daemon, torrent, data) = seed_without_tracker_on_a(&hosts, a_dir.path()).await;
    let torrent = torrent.to_str().unwrap();
    download_on_b(&hosts, b_dir.path(), torrent, &daemon, "notes.bin", &data);
    drop(daemon);
    drop(hosts);
}

/// The same with only a magnet link on B (no tracker, no `x.pe`, no DHT): B's fetch announces the
/// info-hash on the LAN, A's daemon hears it and connects, B takes the metadata from that
/// connection and then downloads from A, the peer the metadata came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_magnet_link_with_no_tracker_is_fetched_from_the_lan_by_local_discovery() {
    let Some(hosts) = TwoHosts::make_or_skip() else {
        return;
    };
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (daemon, torrent, data) = seed_without_tracker_on_a(&hosts, a_dir.path()).await;
    let meta = btorrent::Metainfo::load(&torrent).unwrap();
    let magnet = format!("magnet:?xt=urn:btih:{}", meta.info_hash.to_hex());
    download_on_b(&hosts, b_dir.path(), &magnet, &daemon, "notes.bin", &data);
    drop(daemon);
    drop(hosts);
}

/// A daemon started before its machine is on the network (a machine that boots before its Wi-Fi
/// is up) joins the LAN's discovery once its address comes: B, started after, finds it. A's link
/// has IPv6 already (where it announces at once, but nobody hears: B has none), so what is shown
/// is that a network newly joined hears every torrent at once, not a minute later when the next
/// announce may go out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_started_before_its_network_is_found_once_the_network_comes() {
    let Some(hosts) = TwoHosts::make_or_skip() else {
        return;
    };
    hosts.b_ipv6(false).unwrap();
    hosts.a_on_the_network(false).unwrap();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (daemon, torrent, data) = seed_without_tracker_on_a(&hosts, a_dir.path()).await;
    hosts.a_on_the_network(true).unwrap();
    let torrent = torrent.to_str().unwrap();
    download_on_b(&hosts, b_dir.path(), torrent, &daemon, "notes.bin", &data);
    drop(daemon);
    drop(hosts);
}

/// A LAN with no IPv4 at all: the hosts find each other by local discovery's IPv6 group, every
/// setting at its default (the peers listen on `::`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lan_without_ipv4_finds_its_peers_by_local_discovery_over_ipv6() {
    found_over_ipv6(true).await;
}

/// The same with link-local addresses alone (a LAN with no router): a peer is dialled at its
/// link-local address on the interface it was heard on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lan_of_link_local_addresses_alone_finds_its_peers_over_ipv6() {
    found_over_ipv6(false).await;
}

/// B downloads A's torrent with no tracker on a LAN without IPv4 (global IPv6 addresses, or
/// link-local ones alone).
async fn found_over_ipv6(global: bool) {
    let Some(hosts) = TwoHosts::make_or_skip() else {
        return;
    };
    hosts.ipv6_only(global).unwrap();
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (daemon, torrent, data) = seed_without_tracker_on_a(&hosts, a_dir.path()).await;
    assert!(
        daemon
            .log_text()
            .contains(&format!("local discovery: on {} (IPv6)", hosts.veth)),
        "{}",
        daemon.log_text()
    );
    let torrent = torrent.to_str().unwrap();
    download_on_b(&hosts, b_dir.path(), torrent, &daemon, "notes.bin", &data);
    drop(daemon);
    drop(hosts);
}

/// Local discovery switched off while A's daemon runs (a hand edit of `lsd` in its torrents.toml;
/// the RPC's `lpd-enabled` switches the same): B, with nothing else to go on, does not find A and
/// gives up; switched on again, B finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_discovery_switched_off_and_on_while_the_daemon_runs() {
    let Some(hosts) = TwoHosts::make_or_skip() else {
        return;
    };
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut daemon, torrent, data) = seed_without_tracker_on_a(&hosts, a_dir.path()).await;
    let torrent = torrent.to_str().unwrap();
    let switched = |daemon: &Proc, word: &str| {
        daemon
            .log_text()
            .contains(&format!("local discovery from torrents.toml: {word}"))
    };
    crate::live_settings::edit_setting(a_dir.path(), "lsd", Some(false.into()));
    daemon
        .wait_until(30, "A to switch local discovery off", |p| {
            switched(p, "off")
        })
        .await;
    let got = crate::support::process::run(
        &mut TwoHosts::btorrent(&hosts.b, b_dir.path(), &["start", torrent, "--stall", "8"]),
        Duration::from_secs(60),
    );
    assert!(
        !got.status.success() && got.stderr.contains("nothing new verified for 8 s (0 peers"),
        "B found A with its local discovery off ({}):\n{}\n{}",
        got.status,
        got.stdout,
        got.stderr
    );
    crate::live_settings::edit_setting(a_dir.path(), "lsd", None);
    daemon
        .wait_until(30, "A to switch local discovery on", |p| switched(p, "on"))
        .await;
    download_on_b(&hosts, b_dir.path(), torrent, &daemon, "notes.bin", &data);
    drop(daemon);
    drop(hosts);
}

/// A's daemon seeding `notes.bin` (2 MiB), made there with no tracker: the daemon, the .torrent and
/// the data.
async fn seed_without_tracker_on_a(
    hosts: &TwoHosts,
    a_dir: &std::path::Path,
) -> (Proc, std::path::PathBuf, Vec<u8>) {
    let data = write_random(&a_dir.join("notes.bin"), 2 << 20, 92);
    let mut daemon = Proc::spawn_logged(
        TwoHosts::btorrent(&hosts.a, a_dir, &["daemon"]).env("RUST_LOG", "info"),
        a_dir.join("daemon.log"),
    );
    daemon
        .wait_until(20, "the daemon's tracker", |p| {
            p.log_text().contains("tracker: ")
        })
        .await;
    run_ok(
        &mut TwoHosts::btorrent(&hosts.a, a_dir, &["create", "notes.bin", "--no-tracker"]),
        Duration::from_secs(30),
    );
    let torrent = a_dir.join("torrents/notes.bin.torrent");
    let meta = btorrent::Metainfo::load(&torrent).unwrap();
    assert!(meta.trackers().is_empty());
    // The daemon seeds it once torrents.toml lists it: its announce on the LAN is then out.
    daemon
        .wait_until(30, "the daemon to seed it", |p| {
            std::fs::read_to_string(a_dir.join("torrents.toml"))
                .is_ok_and(|t| t.contains("state = \"seeding\""))
                || p.log_text().contains("seeding")
        })
        .await;
    (daemon, torrent, data)
}
