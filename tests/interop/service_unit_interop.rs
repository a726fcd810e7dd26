//! The systemd unit in `docs/btorrent.service`, read by systemd's own checker: no unknown key, no
//! value it cannot parse, a command it can run (the unit's `ExecStart` pointed at the binary
//! under test), so a unit copied from the docs works as written.

use std::path::Path;
use std::time::Duration;

use crate::support::process;

#[test]
#[ignore = "needs systemd (systemd-analyze)"]
fn the_unit_in_the_docs_is_read_by_systemd_without_a_complaint() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/btorrent.service"),
    )
    .unwrap();
    let exec = "ExecStart=/usr/local/bin/btorrent daemon";
    assert!(unit.lines().any(|l| l == exec), "{unit}");
    assert!(unit.lines().any(|l| l == "Type=notify"), "{unit}");
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().join("btorrent.service");
    let ours = format!("ExecStart={} daemon", env!("CARGO_BIN_EXE_btorrent"));
    std::fs::write(&here, unit.replace(exec, &ours)).unwrap();
    let out = process::run(
        std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&here)
            .env("SYSTEMD_LOG_COLOR", "0"),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success() && out.stderr.trim().is_empty() && out.stdout.trim().is_empty(),
        "{}: {}{}",
        out.status,
        out.stdout,
        out.stderr
    );

    // The checker does complain of what a slip would leave: this test would see it.
    let slip = unit
        .replace(exec, &ours)
        .replace("WatchdogSec=", "WatchdogSek=");
    std::fs::write(&here, slip).unwrap();
    let out = process::run(
        std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&here),
        Duration::from_secs(60),
    );
    assert!(out.stderr.contains("WatchdogSek"), "{}", out.stderr);
}
