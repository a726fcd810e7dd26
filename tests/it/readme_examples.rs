//! The README's scripting examples, run as written: every example of the Scripting API table, the
//! `b-share` command of "Writing commands" and the autorun example of "Automation".
//!
//! Each example runs with `btorrent run` in a fresh copy of one prepared folder: a `photos` folder
//! registered as a managed torrent, `a.torrent` and `movie.torrent`, a `btorrent tracker` and a seeder of
//! `a.torrent` on 127.0.0.1. The README's placeholders are mapped onto these: tracker URLs on
//! `10.0.0.x` / `192.168.1.10` become the local tracker, the peer `10.0.0.5:6881` the local seeder,
//! `/srv/...` a folder of the copy. Variables an example uses without defining (`job`, `t`, `id`, `s`)
//! are defined by a short prelude; `...` in `{ ... }` is an empty block; `continue` runs in a loop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cli::{bin, ok, tracker_process};
use crate::support::{copy_tree, random_bytes, Proc};

const README: &str = include_str!("../../README.md");

fn settings(tracker_url: &str) -> String {
    format!(
        "[settings]\nlisten_port = 0\nlisten_ip = \"127.0.0.1\"\ntracker_url = \"{tracker_url}\"\n"
    )
}

/// The examples of the Scripting API table: the last cell of each row, as Markdown shows it.
fn api_examples() -> Vec<String> {
    let start = README
        .find("## Scripting API")
        .expect("a Scripting API section");
    let end = start + README[start..].find("\n## Interoperability").unwrap();
    let mut out = Vec::new();
    for line in README[start..end].lines() {
        let Some(row) = line.strip_prefix("| `").map(|_| line) else {
            continue;
        };
        // Split on cell borders, not on `\|` inside code.
        let cells: Vec<String> = row
            .replace("\\|", "\u{1}")
            .split('|')
            .map(|c| c.trim().replace('\u{1}', "|"))
            .collect();
        let example = &cells[cells.len() - 2];
        let code = if let Some(c) = example.strip_prefix("`` ") {
            c.strip_suffix(" ``").unwrap()
        } else {
            example.trim_matches('`')
        };
        if !code.is_empty() {
            out.push(code.to_string());
        }
    }
    out
}

/// The first ```rust block after `heading`.
fn code_block(heading: &str) -> String {
    let at = README
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading}"));
    let block = &README[at..];
    let start = block.find("```rust\n").unwrap() + "```rust\n".len();
    let end = start + block[start..].find("```").unwrap();
    block[start..end].to_string()
}

struct World {
    root: tempfile::TempDir,
    template: PathBuf,
    tracker_url: String,
    seeder_addr: String,
    /// A DHT on 127.0.0.1 for the examples that publish and resolve mutable links.
    dht: mainline::Testnet,
    _procs: Vec<Proc>,
}

impl World {
    fn new() -> World {
        let root = tempfile::tempdir().unwrap();
        let tdir = root.path().join("tracker");
        std::fs::create_dir_all(&tdir).unwrap();
        std::fs::write(
            tdir.join("torrents.toml"),
            settings("http://unused/announce"),
        )
        .unwrap();
        let (tracker, tracker_url) = tracker_process(&tdir);

        // The prepared folder every example starts from.
        let template = root.path().join("template");
        let files = [
            ("photos/beach.jpg", 70_000usize),
            ("photos/2025/city.jpg", 30_000),
            ("data/a.bin", 90_000),
            ("movie/movie.mkv", 50_000),
        ];
        for (i, (rel, len)) in files.iter().enumerate() {
            let p = template.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, random_bytes(*len, i as u64 + 10)).unwrap();
        }
        std::fs::create_dir_all(template.join("srv/data")).unwrap();
        std::fs::copy(template.join("data/a.bin"), template.join("srv/data/a.bin")).unwrap();
        std::fs::write(template.join("torrents.toml"), settings(&tracker_url)).unwrap();
        ok(&template, &["create", "photos"]);
        ok(&template, &["create", "data/a.bin", "-o", "a.torrent"]);
        ok(
            &template,
            &["create", "movie/movie.mkv", "-o", "movie.torrent"],
        );
        // Only photos is managed; a.torrent and movie.torrent are files at hand.
        std::fs::write(template.join("torrents.toml"), settings(&tracker_url)).unwrap();
        ok(&template, &["create", "photos"]);
        std::fs::remove_dir_all(template.join("movie")).unwrap();

        // A seeder of a.torrent, in a folder of its own.
        let sdir = root.path().join("seeder");
        std::fs::create_dir_all(sdir.join("data")).unwrap();
        std::fs::copy(template.join("data/a.bin"), sdir.join("data/a.bin")).unwrap();
        std::fs::copy(template.join("a.torrent"), sdir.join("a.torrent")).unwrap();
        // Not super-seeding: the examples probe it (`bitfield`, `download_piece`), and a super-seed
        // shows a prober only the pieces it offers it.
        std::fs::write(
            sdir.join("torrents.toml"),
            settings(&tracker_url).replace("[settings]\n", "[settings]\nsuper_seed = false\n"),
        )
        .unwrap();
        let seeder = Proc::spawn(
            bin()
                .args(["seed", "a.torrent", "-d", "data"])
                .current_dir(&sdir)
                .stdout(Stdio::null()),
        );
        let end = Instant::now() + Duration::from_secs(30);
        let seeder_addr = loop {
            let listing = ok(&sdir, &["peer", &tracker_url, "--json"]);
            let peers: serde_json::Value = serde_json::from_str(&listing).unwrap();
            if let Some(p) = peers.as_array().and_then(|a| a.first()) {
                break p["addr"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < end, "the seeder never announced");
            std::thread::sleep(Duration::from_millis(200));
        };
        World {
            root,
            template,
            tracker_url,
            seeder_addr,
            dht: crate::support::dht::testnet(5),
            _procs: vec![tracker, seeder],
        }
    }

    /// A fresh copy of the prepared folder.
    fn copy(&self, name: &str) -> PathBuf {
        let dir = self.root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        copy_tree(&self.template, &dir);
        dir
    }

    /// The example with the README's placeholders mapped onto this world.
    fn localize(&self, code: &str, dir: &Path) -> String {
        let mut code = code.to_string();
        for host in ["10.0.0.2", "10.0.0.9", "192.168.1.10"] {
            code = code.replace(&format!("http://{host}:6969/announce"), &self.tracker_url);
        }
        code = code.replace("10.0.0.5:6881", &self.seeder_addr);
        code = code.replace("\"/srv/", &format!("\"{}/srv/", dir.display()));
        code.replace("{ ... }", "{ }")
    }
}

/// What an example needs defined before it runs.
fn prelude(code: &str) -> String {
    let mut p = String::new();
    let uses = |v: &str| {
        code.split(|c: char| !c.is_alphanumeric() && c != '_')
            .any(|w| w == v)
            && !code.contains(&format!("let {v} ="))
    };
    if uses("job") {
        p.push_str("let job = seed(\"a.torrent\", \"data\");\n");
    }
    if uses("t") {
        // A running torrent, so its live figures are numbers.
        p.push_str("seed(\"torrents/photos.torrent\", \".\");\nlet t = torrent(\"photos\");\n");
    }
    if uses("link") {
        p.push_str("let link = publish(torrent(\"photos\")).link;\n");
    }
    if uses("id") {
        p.push_str("let id = every(3600, || ());\n");
    }
    p
}

enum Outcome {
    Done(String),
    /// Still serving handlers or timers: stopped with Ctrl-C, as the README says.
    Serving,
}

/// Runs `file` in `dir`; one that keeps serving handlers or timers gets Ctrl-C once its body is done.
fn run_script(dir: &Path, file: &str) -> Result<Outcome, String> {
    let mut cmd = bin();
    // A folder whose settings name a DHT (the world's) runs with the DHT on.
    let toml = std::fs::read_to_string(dir.join("torrents.toml")).unwrap_or_default();
    if toml.contains("dht_bootstrap") {
        cmd.env_remove("BTORRENT_DHT");
    }
    let mut p = Proc::spawn(
        cmd.args(["run", file])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout = p.child.stdout.take().unwrap();
    let stderr = p.child.stderr.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let (tx, rx) = std::sync::mpsc::channel();
    let err = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let end = Instant::now() + Duration::from_secs(60);
    let mut serving = false;
    let status = loop {
        if let Some(s) = p.exited() {
            break s;
        }
        if !serving && rx.try_iter().any(|l| l.contains("keeps running")) {
            serving = true;
            let pid = p.child.id().to_string();
            Command::new("kill").args(["-INT", &pid]).status().unwrap();
        }
        if Instant::now() > end {
            return Err("did not end within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    let stray: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("keeps running"))
        .collect();
    if !status.success() || !stray.is_empty() {
        return Err(format!("exit {status}: {out}{}", stray.join("\n")));
    }
    Ok(if serving {
        Outcome::Serving
    } else {
        Outcome::Done(out)
    })
}

#[test]
fn every_scripting_example_in_the_readme_runs_as_written() {
    let world = World::new();
    let examples = api_examples();
    assert!(
        examples.len() >= 40,
        "found only {} examples",
        examples.len()
    );
    let mut failures = Vec::new();
    for (i, code) in examples.iter().enumerate() {
        if code.starts_with("close(") {
            // Closes a shell: run in one by the other test.
            continue;
        }
        let dir = world.copy(&format!("ex{i}"));
        if code.contains("create(\"photos\"") {
            // Making the photos torrent for the first time (the copy has one made without options).
            std::fs::remove_dir_all(dir.join("torrents")).unwrap();
            std::fs::write(dir.join("torrents.toml"), settings(&world.tracker_url)).unwrap();
        }
        let mut local = world.localize(code, &dir);
        // The other machine of `push` and `rpc`: a daemon with its RPC on, in a folder of its own.
        let _other = local.contains("192.168.1.20:9091").then(|| {
            let other = dir.join("other");
            std::fs::create_dir_all(&other).unwrap();
            let d = crate::support::rpc::RpcDaemon::start(&other, "");
            local = local.replace("192.168.1.20:9091", &d.url());
            d
        });
        if local.contains("publish(") || local.contains("resolve(") {
            let toml = std::fs::read_to_string(dir.join("torrents.toml")).unwrap();
            let nodes: Vec<String> = world
                .dht
                .bootstrap
                .iter()
                .map(|b| format!("{b:?}"))
                .collect();
            let dht = format!(
                "[settings]\ndht = true\ndht_bootstrap = [{}]\n",
                nodes.join(", ")
            );
            std::fs::write(
                dir.join("torrents.toml"),
                toml.replacen("[settings]\n", &dht, 1),
            )
            .unwrap();
        }
        let body = if local.contains("continue") {
            format!("for t in torrents() {{ let t = torrent(t.name); {local} }}\n")
        } else {
            format!("{local}\n")
        };
        let script = format!("{}{body}", prelude(&local));
        std::fs::write(dir.join("example.rhai"), &script).unwrap();
        if let Err(e) = run_script(&dir, "example.rhai") {
            failures.push(format!("{code}\n    ran as:\n{script}    {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_readme_examples_do_what_they_say() {
    let world = World::new();
    // `t.meta.moved = true;` is saved with the torrent.
    let dir = world.copy("meta");
    std::fs::write(
        dir.join("meta.rhai"),
        "let t = torrent(\"photos\");\nt.meta.moved = true;\n",
    )
    .unwrap();
    run_script(&dir, "meta.rhai").unwrap();
    let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
    let photos = cfg.torrents.iter().find(|t| t.name == "photos").unwrap();
    assert_eq!(
        photos.meta.get("moved").and_then(|v| v.as_bool()),
        Some(true),
        "{:?}",
        photos.meta
    );

    // `settings()` has every setting of the README's torrents.toml.
    let start = README
        .find("```toml\n[settings]")
        .expect("the torrents.toml example");
    let block = &README[start..start + README[start..].find("[[torrent]]").unwrap()];
    let keys: Vec<&str> = block
        .lines()
        .map(|l| l.trim_start_matches("# "))
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
        .collect();
    assert!(keys.len() >= 13, "{keys:?}");
    let dir = world.copy("settings");
    let script = keys
        .iter()
        .map(|k| format!("if !settings().contains(\"{k}\") {{ print(\"{k}\"); }}\n"))
        .collect::<String>();
    std::fs::write(dir.join("s.rhai"), script).unwrap();
    match run_script(&dir, "s.rhai").unwrap() {
        Outcome::Done(missing) => assert_eq!(missing, "", "missing from settings()"),
        Outcome::Serving => unreachable!(),
    }

    // `unregister("photos");` forgets it and leaves the data.
    let dir = world.copy("unregister");
    std::fs::write(dir.join("u.rhai"), "unregister(\"photos\");\n").unwrap();
    run_script(&dir, "u.rhai").unwrap();
    let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
    assert!(cfg.torrents.is_empty());
    assert!(dir.join("photos/beach.jpg").exists());

    // The b-share command of "Writing commands".
    let dir = world.copy("share");
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    let share = world.localize(&code_block("## Writing commands"), &dir);
    std::fs::write(dir.join("scripts/b-share.rhai"), share).unwrap();
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(dir.join("docs/readme.txt"), b"hello").unwrap();
    let out = ok(&dir, &["share", "docs", "--private"]);
    assert!(out.starts_with("magnet:?xt=urn:btih:"), "{out}");
    let m = btorrent::Metainfo::load(&dir.join("torrents/docs.torrent")).unwrap();
    assert!(m.info.private);
    assert_eq!(m.announce.as_deref(), Some(world.tracker_url.as_str()));
    let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
    assert!(cfg.torrents.iter().any(|t| t.name == "docs"));

    // The autorun example of "Automation", run with `btorrent run`.
    let dir = world.copy("notify");
    std::fs::write(
        dir.join("notify.rhai"),
        code_block("## Automation: scripts that react"),
    )
    .unwrap();
    match run_script(&dir, "notify.rhai").unwrap() {
        Outcome::Serving => {}
        Outcome::Done(out) => panic!("notify.rhai should keep serving: {out}"),
    }

    // `close(true)` closes the shell after the command.
    let dir = world.copy("close");
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    std::fs::write(
        dir.join("scripts/b-bye.rhai"),
        "//! Close.\n//!\n//! usage: b-bye\nclose(true);\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("scripts/b-after.rhai"),
        "//! Runs after.\n//!\n//! usage: b-after\nprint(\"AFTER-CLOSE\");\n",
    )
    .unwrap();
    let mut shell = Proc::spawn(
        bin()
            .current_dir(&dir)
            .stdin(std::fs::File::open(write(&dir, "in.txt", "b-bye\nb-after\n")).unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout = shell.child.stdout.take().unwrap();
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let end = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = shell.exited() {
            break s;
        }
        assert!(Instant::now() < end, "the shell did not close");
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().unwrap();
    assert!(status.success(), "{out}");
    assert!(
        !out.contains("AFTER-CLOSE"),
        "nothing runs after close: {out}"
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}
