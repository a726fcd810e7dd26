//! Running the `btorrent` binary the way a user does: in a folder of its own (its torrents.toml is the
//! one there, never one named by `BTORRENT_CONFIG` in the environment), one-shot or as a long-running
//! tracker process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::process::Proc;

/// The binary, with `BTORRENT_CONFIG` removed from its environment.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_btorrent"));
    c.env_remove("BTORRENT_CONFIG")
        .env("BTORRENT_DHT", "off")
        .env("BTORRENT_LSD", "off")
        .env("BTORRENT_PORT_FORWARDING", "off");
    c
}

/// Makes `dir` (and its parents) a home for one-shot commands: a torrents.toml whose peer listens
/// on an ephemeral port of 127.0.0.1, with nothing else set. Returns `dir`.
pub fn loopback_home(dir: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("torrents.toml"),
        "[settings]\nlisten_port = 0\nlisten_ip = \"127.0.0.1\"\n",
    )
    .unwrap();
    dir.to_path_buf()
}

/// Runs `btorrent args...` in `dir` to completion.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    bin().args(args).current_dir(dir).output().unwrap()
}

/// Like [`run`], and it must succeed; returns its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that a one-shot `start` succeeded and said its download was verified; returns its
/// stdout.
pub fn downloaded(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("downloaded and verified"), "{stdout}");
    stdout
}

/// Starts `btorrent tracker` in `dir` on an ephemeral port of 127.0.0.1; returns the process and the
/// announce URL it printed first.
pub fn tracker_process(dir: &Path) -> (Proc, String) {
    let mut p = Proc::spawn(
        bin()
            .args(["tracker", "--bind", "127.0.0.1:0"])
            .current_dir(dir)
            .stdout(Stdio::piped()),
    );
    let mut line = String::new();
    BufReader::new(p.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("tracker listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (p, url)
}
