//! `b-push`: a torrent handed to another machine's daemon over the Transmission RPC, which adds it
//! and downloads it from this one. Two daemons on loopback, each in a folder of its own.

use std::path::Path;

use serde_json::json;

use crate::support::rpc::{poll, torrent_get, RpcDaemon};
use crate::support::*;

/// The daemon `d`'s torrents as its RPC lists them: (name, percentDone, downloadDir).
fn listed(d: &RpcDaemon) -> Vec<(String, f64, String)> {
    let mut c = d.client();
    torrent_get(&mut c, json!(null), &["name", "percentDone", "downloadDir"])
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["percentDone"].as_f64().unwrap(),
                t["downloadDir"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn stderr_of(dir: &Path, args: &[&str]) -> String {
    let out = cli::run(dir, args);
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A seeds `share` (announced to its embedded tracker); `btorrent push share <B's RPC>` in A's
/// folder hands it to B, which downloads it from A into the folder asked for; pushed again, B has
/// it already. A folder not made a torrent yet is made one, seeded and pushed in one step. A daemon whose RPC wants a password refuses a push without one (a clear error) and
/// takes one with it in the URL; an address where no RPC listens is a clear error too.
#[test]
fn push_hands_a_torrent_to_another_daemon_which_downloads_it() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a_path, b_path) = (a_dir.path(), b_dir.path());
    let tracker = process::free_port();
    let a = RpcDaemon::start(a_path, &format!("tracker_bind = \"127.0.0.1:{tracker}\""));
    write_tree(a_path, &[("share/a.bin", 300_000), ("share/b.bin", 70_000)]);
    let url = format!("http://127.0.0.1:{tracker}/announce");
    cli::ok(a_path, &["create", "share", &url]);
    poll("A to seed share", 30, || {
        (listed(&a).first().map(|t| t.1) == Some(1.0)).then_some(())
    });

    let b = RpcDaemon::start(b_path, "");
    let into = b_path.join("from-a");
    let out = cli::ok(
        a_path,
        &[
            "push",
            "share",
            &b.url(),
            "--dir",
            into.to_str().unwrap(),
            "--wait",
        ],
    );
    let rpc = format!("http://{}/transmission/rpc", b.url());
    assert!(
        out.contains(&format!("share: pushed to {rpc} (id ")) && out.contains("fetches it now"),
        "{out}"
    );
    // --wait returned once B had everything.
    assert!(
        out.ends_with(&format!("share: complete at {rpc}\n")),
        "{out}"
    );
    assert_eq!(
        listed(&b),
        [("share".into(), 1.0, into.display().to_string())]
    );
    assert_same_tree(&a_path.join("share"), &into.join("share"));
    let again = cli::ok(a_path, &["push", "share", &b.url()]);
    assert!(
        again.contains(&format!("share: {rpc} has it already")),
        "{again}"
    );

    // A password on the other side: asked for, then given in the URL.
    let c_dir = tempfile::tempdir().unwrap();
    let c = RpcDaemon::start(
        c_dir.path(),
        "rpc_username = \"me\"\nrpc_password = \"p@ss\"",
    );
    let e = stderr_of(a_path, &["push", "share", &c.url(), "--paused"]);
    assert!(e.contains("asks for a user name and password"), "{e}");
    let e = stderr_of(
        a_path,
        &["push", "share", &format!("http://me:wrong@{}", c.url())],
    );
    assert!(e.contains("refused that user name and password"), "{e}");
    let with = format!("http://me:p%40ss@{}", c.url());
    let out = cli::ok(a_path, &["push", "share", &with, "--paused"]);
    assert!(out.contains("added paused"), "{out}");
    let e = stderr_of(a_path, &["push", "share", &with, "--paused", "--wait"]);
    assert!(e.contains("--wait and --paused contradict"), "{e}");
    // Any call, from a script: what C has, asked with its password.
    std::fs::write(
        a_path.join("ask.rhai"),
        format!(
            "let t = rpc(\"{with}\", \"torrent-get\", #{{ fields: [\"name\", \"status\"] }}).torrents;\nprint(`${{t.len()}} ${{t[0].name}} ${{t[0].status}}`);\ntry {{ rpc(\"{with}\", \"no-such-method\"); }} catch (e) {{ print(e); }}\n"
        ),
    )
    .unwrap();
    let out = cli::ok(a_path, &["run", "ask.rhai"]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1 share 0"), "added paused: {out}");
    let refused = lines.next().unwrap_or_default();
    assert!(
        refused.starts_with("rpc: ") && refused.contains("refused no-such-method"),
        "{out}"
    );

    // Nobody there, and no RPC at all.
    let nobody = format!("127.0.0.1:{}", process::free_port());
    let e = stderr_of(a_path, &["push", "share", &nobody]);
    assert!(e.contains("cannot reach the RPC at"), "{e}");
    let e = stderr_of(a_path, &["push", "share", "ftp://host/"]);
    assert!(e.contains("over http:// or https://"), "{e}");
    // A folder not made a torrent yet: made one, seeded by A, pushed, fetched by B from A.
    write_tree(a_path, &[("more/c.bin", 200_000), ("more/d/e.bin", 5_000)]);
    let out = cli::ok(a_path, &["push", "more/", &b.url(), "--wait"]);
    let mut lines = out.lines();
    let made = lines.next().unwrap_or_default();
    assert!(
        made.starts_with("more: made ") && made.ends_with(", seeded here"),
        "{out}"
    );
    assert!(
        out.contains(&format!("more: pushed to {rpc} (id "))
            && out.ends_with(&format!("more: complete at {rpc}\n")),
        "{out}"
    );
    let b_default = listed(&b)
        .into_iter()
        .find(|t| t.0 == "more")
        .map(|t| std::path::PathBuf::from(t.2))
        .expect("B lists more");
    assert_same_tree(&a_path.join("more"), &b_default.join("more"));
    let registered = std::fs::read_to_string(a_path.join("torrents.toml")).unwrap();
    assert!(registered.contains("name = \"more\""), "{registered}");
    // A script's push() of what is not a torrent says what to do.
    std::fs::write(
        a_path.join("folder.rhai"),
        format!(
            "try {{ push(\"share/\", \"{}\"); }} catch (e) {{ print(e); }}\n",
            b.url()
        ),
    )
    .unwrap();
    let out = cli::ok(a_path, &["run", "folder.rhai"]);
    assert!(
        out.contains("share/ is not a torrent: b-create share/ makes one"),
        "{out}"
    );
    let e = stderr_of(a_path, &["push", "nothing", &b.url()]);
    assert!(
        e.contains("nothing: no .torrent file, URL, magnet link or managed torrent by that name"),
        "{e}"
    );
    drop((a, b, c));
}

/// `btorrent remote <A's RPC>` lists what A has; `btorrent pull <name> <A's RPC>` in a folder of
/// its own (no daemon there) asks A's RPC for the
/// torrent's magnet link and peer port and downloads it from A: the torrent has no tracker and the
/// DHT is off, so A is found only through the link's `x.pe`. A name A does not have is a clear error
/// naming what it has.
#[test]
fn pull_fetches_a_torrent_another_daemon_has_by_its_name() {
    let (a_dir, c_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a_path, c_path) = (a_dir.path(), c_dir.path());
    let a = RpcDaemon::start(a_path, "lsd = false");
    write_tree(
        a_path,
        &[("share/a.bin", 300_000), ("share/b/c.bin", 40_000)],
    );
    cli::ok(a_path, &["create", "share", "--no-tracker"]);
    poll("A to seed share", 30, || {
        (listed(&a).first().map(|t| t.1) == Some(1.0)).then_some(())
    });
    std::fs::write(
        c_path.join("torrents.toml"),
        "[settings]\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\nlsd = false\n",
    )
    .unwrap();
    // What A has, as C sees it.
    let shown = cli::ok(c_path, &["remote", &a.url()]);
    let row = shown
        .lines()
        .find(|l| l.contains("share"))
        .unwrap_or_default();
    assert!(
        row.contains("332.03 KiB") && row.contains("100%") && row.contains("seeding"),
        "{shown}"
    );
    assert!(
        shown.ends_with(&format!("b-pull <name> {} fetches one here\n", a.url())),
        "{shown}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli::ok(c_path, &["remote", &a.url(), "--json"])).unwrap();
    assert_eq!(json[0]["name"], "share");
    assert_eq!(json[0]["totalSize"], 340_000);
    let into = c_path.join("pulled");
    let out = cli::ok(
        c_path,
        &["pull", "share", &a.url(), "-o", into.to_str().unwrap()],
    );
    let rpc = format!("http://{}/transmission/rpc", a.url());
    assert!(
        out.contains(&format!("share: pulled from {rpc}, ")) && out.contains("into "),
        "{out}"
    );
    assert_same_tree(&a_path.join("share"), &into.join("share"));
    let e = stderr_of(c_path, &["pull", "nothing", &a.url()]);
    assert!(
        e.contains(&format!(
            "{rpc} has no torrent named \"nothing\" (it has share)"
        )),
        "{e}"
    );
    drop(a);
}
