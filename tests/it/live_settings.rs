//! torrents.toml's session settings edited by hand while `btorrent daemon` runs: the speed limits
//! (and the switch to the alternative ones) and the blocklist (its switch, a list dropped into
//! `blocklists/` and one removed) come into force without a restart, as `/metrics` shows.

use std::path::Path;

use crate::support::rpc::{parse_metrics, poll, request, RpcDaemon};

/// Sets `key` of `[settings]` (removes it for `None`) as an editor would: the whole file written
/// anew, then renamed into place.
fn edit_setting(dir: &Path, key: &str, value: Option<toml_edit::Value>) {
    let path = dir.join("torrents.toml");
    let mut doc: toml_edit::DocumentMut = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    let settings = doc["settings"].as_table_mut().unwrap();
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
}
