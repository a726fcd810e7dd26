//! torrents.toml's session settings edited by hand while `btorrent daemon` runs: the speed limits
//! (and the switch to the alternative ones) and the blocklist (its switch, a list dropped into
//! `blocklists/` and one removed) come into force without a restart, as `/metrics` shows, and so
//! does `rename_partial_files`; the DHT
//! node is switched off and on; and `b-blocklist`, `b-speed` and `b-settings`, one-shot beside
//! the daemon, changing and showing them.

use std::path::Path;

use serde_json::json;

use crate::support::cli;
use crate::support::rpc::{parse_metrics, poll, request, RpcDaemon};

/// Sets `key` of `[settings]` (removes it for `None`) as an editor would: the whole file written
/// anew, then renamed into place.
pub(crate) fn edit_setting(dir: &Path, key: &str, value: Option<toml_edit::Value>) {
    let path = dir.join("torrents.toml");
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let settings = doc
        .entry("settings")
        .or_insert(toml_edit::table())
        .as_table_mut()
        .unwrap();
    match value {
        Some(v) => settings[key] = toml_edit::value(v),
        None => {
            settings.remove(key);
        }
    }
    let tmp = dir.join("torrents.toml.edit");
    std::fs::write(&tmp, doc.to_string()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// Waits until `/metrics` shows `want` for `name` (`None`: no sample).
fn wait_metric(d: &RpcDaemon, name: &str, want: Option<f64>, what: &str) {
    poll(what, 30, || {
        let m = parse_metrics(&request(d.port, "GET", "/metrics", &[], b"").body);
        (m.get(name).copied() == want).then_some(())
    });
}

#[test]
fn hand_edits_of_the_session_settings_apply_while_the_daemon_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let up = "btorrent_speed_limit_bytes{direction=\"up\"}";
    let down = "btorrent_speed_limit_bytes{direction=\"down\"}";
    let ranges = "btorrent_blocklist_ranges";
    wait_metric(&d, up, None, "no upload limit at first");

    edit_setting(dir.path(), "upload_limit", Some("100K".into()));
    wait_metric(
        &d,
        up,
        Some(102_400.0),
        "the upload limit to come into force",
    );
    edit_setting(dir.path(), "alt_download_limit", Some(5000.into()));
    edit_setting(dir.path(), "alt_speed", Some(true.into()));
    wait_metric(
        &d,
        down,
        Some(5000.0),
        "the alternative limits to come into force",
    );
    wait_metric(&d, up, None, "the alternative upload limit (none) to hold");
    edit_setting(dir.path(), "alt_speed", None);
    wait_metric(&d, up, Some(102_400.0), "the limits to be back");

    // The blocklist: switched on by hand, then lists dropped and removed.
    let lists = dir.path().join("blocklists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(lists.join("one.txt"), "a:10.0.0.0-10.0.0.255\n").unwrap();
    edit_setting(dir.path(), "blocklist", Some(true.into()));
    wait_metric(&d, ranges, Some(1.0), "the list to be in force");
    std::fs::write(lists.join("two.txt"), "192.0.2.0/24\n2001:db8::/32\n").unwrap();
    wait_metric(&d, ranges, Some(3.0), "the dropped list to count");
    std::fs::remove_file(lists.join("one.txt")).unwrap();
    wait_metric(&d, ranges, Some(2.0), "the removed list to be gone");
    edit_setting(dir.path(), "blocklist", Some(false.into()));
    wait_metric(&d, ranges, Some(0.0), "the blocklist to be off");

    // Partial names switched off by hand: the RPC sees what is in force.
    let partial = |d: &RpcDaemon| {
        d.client()
            .ok("session-get", json!({"fields": ["rename-partial-files"]}))["rename-partial-files"]
            .clone()
    };
    assert_eq!(partial(&d), json!(true));
    edit_setting(dir.path(), "rename_partial_files", Some(false.into()));
    poll("files to be created under their own names", 30, || {
        (partial(&d) == json!(false)).then_some(())
    });
}

/// `b-speed`, one-shot beside the daemon: the limits it sets are kept in torrents.toml and in force
/// in the daemon within seconds, the alternative ones too; it says which are in force, and refuses
/// what is not a rate, changing nothing.
#[test]
fn b_speed_sets_the_limits_the_daemon_has_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let up = "btorrent_speed_limit_bytes{direction=\"up\"}";
    let down = "btorrent_speed_limit_bytes{direction=\"down\"}";
    let out = cli::ok(dir.path(), &["speed", "--up", "500K", "--alt-down", "2M"]);
    assert!(out.contains("in force: the normal limits"), "{out}");
    assert!(
        out.contains("normal:      ↑ 500.00 KiB/s  ↓ unlimited"),
        "{out}"
    );
    wait_metric(&d, up, Some(512_000.0), "the upload limit in the daemon");
    let out = cli::ok(dir.path(), &["speed", "--alt"]);
    assert!(out.contains("in force: the alternative limits"), "{out}");
    wait_metric(
        &d,
        down,
        Some(2_097_152.0),
        "the alternative limits in the daemon",
    );
    wait_metric(&d, up, None, "no alternative upload limit");
    let shown: serde_json::Value =
        serde_json::from_str(&cli::ok(dir.path(), &["speed", "--normal", "--json"])).unwrap();
    assert_eq!(
        (&shown["in_force"], &shown["up"], &shown["alt_down"]),
        (&json!("normal"), &json!(512_000), &json!(2_097_152))
    );
    wait_metric(&d, up, Some(512_000.0), "the normal limits back");
    for (bad, says) in [
        (vec!["speed", "--up", "fast"], "is not a size"),
        (vec!["speed", "--alt", "--normal"], "contradict"),
    ] {
        let o = cli::run(dir.path(), &bad);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{bad:?}: {err}");
        assert_eq!(err.matches("b-speed:").count(), 1, "named once: {err}");
    }
    let s = btorrent::config::Config::load(&dir.path().join("torrents.toml"))
        .unwrap()
        .settings;
    assert_eq!(
        (s.upload_limit.map(|r| r.0), s.alt_speed),
        (Some(512_000), false)
    );
}

/// `b-settings`, one-shot beside the daemon: it lists the settings, changes one (kept in the file
/// with its comments, in force in the daemon: a speed limit, the seeding queue), takes one out, and
/// refuses an unknown key or a value of the wrong kind, naming it and changing nothing.
#[test]
fn b_settings_shows_and_changes_the_settings() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start(
        dir.path(),
        "# kept comment\nseed_idle_minutes = 30\nseed_ratio_limit = 2.0",
    );
    let mut c = d.client();
    let all = cli::ok(dir.path(), &["settings"]);
    assert!(all.contains("seed_ratio_limit = 2.0"), "{all}");
    assert!(all.contains("seed_queue = false"), "{all}");
    let out = cli::ok(dir.path(), &["settings", "upload_limit", "100K"]);
    assert_eq!(out.trim(), "upload_limit = 102400");
    let up = "btorrent_speed_limit_bytes{direction=\"up\"}";
    wait_metric(&d, up, Some(102_400.0), "the upload limit in the daemon");
    cli::ok(dir.path(), &["settings", "seed_queue", "true"]);
    cli::ok(dir.path(), &["settings", "seed_queue_size", "3"]);
    // The daemon reads the file again as soon as it sees it change.
    poll("the daemon to see the seeding queue", 30, || {
        let s = c.ok(
            "session-get",
            json!({"fields": ["seed-queue-enabled", "seed-queue-size", "seedRatioLimit"]}),
        );
        (s == json!({"seed-queue-enabled": true, "seed-queue-size": 3, "seedRatioLimit": 2.0}))
            .then_some(())
    });
    let out = cli::ok(
        dir.path(),
        &[
            "settings",
            "dht_bootstrap",
            r#"["a.example:1", "b.example:2"]"#,
        ],
    );
    assert_eq!(
        out.trim(),
        r#"dht_bootstrap = ["a.example:1", "b.example:2"]"#
    );
    cli::ok(dir.path(), &["settings", "seed_ratio_limit", "--unset"]);
    let text = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert!(
        text.contains("# kept comment\nseed_idle_minutes = 30"),
        "{text}"
    );
    assert!(!text.contains("seed_ratio_limit"), "{text}");
    let out = cli::ok(dir.path(), &["settings", "seed_ratio_limit"]);
    assert_eq!(out.trim(), "seed_ratio_limit = (unset)");

    for (bad, says) in [
        (
            vec!["settings", "seed_queue_sise", "4"],
            "no setting is named \"seed_queue_sise\", did you mean seed_queue_size?",
        ),
        (
            vec!["settings", "listen_port", "lots"],
            "listen_port: invalid type",
        ),
        (vec!["settings", "--unset"], "name the setting"),
    ] {
        let o = cli::run(dir.path(), &bad);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(says), "{bad:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    let after = std::fs::read_to_string(dir.path().join("torrents.toml")).unwrap();
    assert_eq!(text, after, "refusals changed nothing");
}

/// A hand edit of `dht` switches the DHT node of a daemon that started with one (bootstrapped from
/// nowhere, so it stays alone): off, then on again, as `session-get` reports.
#[test]
fn a_hand_edit_of_dht_switches_the_node_off_and_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = RpcDaemon::start_with(dir.path(), "dht = true\ndht_bootstrap = []", Some(""));
    let mut c = d.client();
    let dht = |c: &mut crate::support::rpc::Client| {
        c.ok(
            "session-get",
            serde_json::json!({"fields": ["dht-enabled"]}),
        )["dht-enabled"]
            .clone()
    };
    assert_eq!(dht(&mut c), true);
    edit_setting(dir.path(), "dht", Some(false.into()));
    poll("the DHT to be switched off", 30, || {
        (dht(&mut c) == false).then_some(())
    });
    edit_setting(dir.path(), "dht", None);
    poll("the DHT to be switched on again", 30, || {
        (dht(&mut c) == true).then_some(())
    });
}

/// `b-blocklist` one-shot beside a daemon: it shows the lists and what the daemon has in force,
/// switches them, sets the URL and downloads the list, each change in force in the daemon within
/// seconds; a bad URL and a download that holds no range are refused and change nothing.
#[test]
fn b_blocklist_shows_switches_and_updates_what_the_daemon_has_in_force() {
    use crate::support::cli::{ok, run};
    use crate::support::tracker::http_double;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (base, _) = rt.block_on(http_double(|line: &str| {
        if line.contains("/list.txt") {
            (200, b"x:192.0.2.0-192.0.2.255\n198.51.100.7\n".to_vec())
        } else {
            (200, b"<html>no list here</html>".to_vec())
        }
    }));
    let dir = tempfile::tempdir().unwrap();
    let lists = dir.path().join("blocklists");
    std::fs::create_dir_all(&lists).unwrap();
    std::fs::write(
        lists.join("one.txt"),
        "a:10.0.0.0-10.0.0.255\nnot a range\n",
    )
    .unwrap();
    let d = RpcDaemon::start(dir.path(), "");
    let ranges = "btorrent_blocklist_ranges";

    let out = ok(dir.path(), &["blocklist"]);
    assert!(
        out.contains("blocklist off: 1 list, 1 address range"),
        "{out}"
    );
    assert!(out.contains("one.txt: 1 range, 1 lines skipped"), "{out}");
    assert!(
        out.contains("in force in the running session: 0 address ranges"),
        "{out}"
    );

    ok(dir.path(), &["blocklist", "--on"]);
    wait_metric(
        &d,
        ranges,
        Some(1.0),
        "the list to be in force in the daemon",
    );
    let out = ok(dir.path(), &["blocklist", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(shown["enabled"], true, "{out}");
    assert_eq!(shown["in_force"], 1, "{out}");

    let url = format!("{base}/list.txt");
    let out = ok(dir.path(), &["blocklist", "--url", &url, "--update"]);
    assert!(out.contains("downloaded 2 address ranges"), "{out}");
    wait_metric(&d, ranges, Some(3.0), "the downloaded list to be in force");

    // Refused, nothing changed: a URL that is not http(s), a download that holds no range.
    let bad = run(
        dir.path(),
        &["blocklist", "--url", "ftp://example.org/l.txt"],
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("must be http:// or https://"),
        "{err}"
    );
    let junk = format!("{base}/junk");
    ok(dir.path(), &["blocklist", "--url", &junk]);
    let bad = run(dir.path(), &["blocklist", "--update"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && err.contains("holds no address range"),
        "{err}"
    );
    let cfg = btorrent::config::Config::load(&dir.path().join("torrents.toml")).unwrap();
    assert_eq!(cfg.settings.blocklist_url.as_deref(), Some(junk.as_str()));
    assert!(lists.join(btorrent::blocklist::DOWNLOADED).exists());
    wait_metric(&d, ranges, Some(3.0), "the lists in force to stay");

    ok(dir.path(), &["blocklist", "--off"]);
    wait_metric(&d, ranges, Some(0.0), "the blocklist to be lifted");
}
