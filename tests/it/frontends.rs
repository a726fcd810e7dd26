//! The headless front ends as processes: `btorrent run` (which keeps serving the handlers and timers a
//! script registered) and `btorrent daemon` (services, autorun scripts, event log, SIGTERM/SIGINT).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process that is killed if the test ends early, with its stdout read line by line.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn start(dir: &Path, args: &[&str]) -> Proc {
        Proc::start_with_input(dir, args, Stdio::null())
    }

    fn start_with_input(dir: &Path, args: &[&str], input: Stdio) -> Proc {
        Proc::start_with(dir, args, input, &[])
    }

    fn start_with(dir: &Path, args: &[&str], input: Stdio, env: &[(&str, &Path)]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_btorrent"))
            .args(args)
            .current_dir(dir)
            .env_remove("BTORRENT_CONFIG")
            .env("BTORRENT_DHT", "off")
            .env("BTORRENT_LSD", "off")
            .env("BTORRENT_PORT_FORWARDING", "off")
            .envs(env.iter().copied())
            .stdin(input)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Proc {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn wait_line(&mut self, needle: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        while !self.seen.iter().any(|l| l.contains(needle)) {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!("no line with {needle:?}; got {:#?}", self.seen),
            }
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// Waits for the exit (bounded) and returns the code and every line printed.
    fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let end = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < end, "still running: {:#?}", self.seen);
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(50));
        self.seen.extend(self.lines.try_iter());
        (status.code(), std::mem::take(&mut self.seen))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn run_waits_for_its_timers_then_ends_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.rhai"),
        "print(\"body\");\nlet n = 0;\nlet id = 0;\nid = every(0.1, || { n += 1; print(`tick ${n}`); if n == 3 { off(id); } });\nafter(0.2, || print(\"once\"));\n",
    )
    .unwrap();
    let started = Instant::now();
    let p = Proc::start(dir.path(), &["run", "t.rhai"]);
    let (code, lines) = p.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    for want in ["body", "tick 1", "tick 2", "tick 3", "once"] {
        assert!(lines.iter().any(|l| l == want), "{want}: {lines:#?}");
    }
    assert!(!lines.iter().any(|l| l == "tick 4"));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn run_with_handlers_keeps_running_until_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("h.rhai"),
        "on(\"completed\", |ev| print(ev.name));\nprint(\"ready\");\n",
    )
    .unwrap();
    let mut p = Proc::start(dir.path(), &["run", "h.rhai"]);
    p.wait_line("keeps running (1 handlers, 0 timers)");
    std::thread::sleep(Duration::from_millis(300));
    assert!(p.child.try_wait().unwrap().is_none(), "still serving");
    p.signal("-INT");
    let (code, lines) = p.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "ready"));

    // Ctrl-C during the script's own body cancels it.
    std::fs::write(
        dir.path().join("nap.rhai"),
        "print(\"napping\");\nsleep(60000);\n",
    )
    .unwrap();
    let mut p = Proc::start(dir.path(), &["run", "nap.rhai"]);
    p.wait_line("napping");
    p.signal("-INT");
    let (code, lines) = p.finish();
    assert_eq!(code, Some(130), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("nap.rhai: cancelled")),
        "{lines:#?}"
    );
}

#[test]
fn daemon_runs_autorun_scripts_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("torrents.toml"),
        "[settings]\ntracker_bind = \"127.0.0.1:0\"\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("scripts/autorun")).unwrap();
    std::fs::write(
        root.join("scripts/autorun/10-hello.rhai"),
        "after(0.1, || print(\"hello from a timer\"));\n\
         print(`torrents made here announce to ${settings().tracker_url}`);\n",
    )
    .unwrap();
    std::fs::write(
        root.join("scripts/autorun/20-broken.rhai"),
        "let x = 1;\nthrow \"broken on purpose\";\n",
    )
    .unwrap();
    let mut p = Proc::start(root, &["daemon"]);
    p.wait_line("running; SIGINT or SIGTERM stops");
    p.wait_line("hello from a timer");
    p.signal("-TERM");
    let (code, lines) = p.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    let has = |s: &str| lines.iter().any(|l| l.contains(s));
    assert!(has("tracker: http://127.0.0.1:"), "{lines:#?}");
    // `tracker_bind` left the port to the system: torrents made in the daemon name the port its
    // tracker got, not port 0.
    let tracker = lines
        .iter()
        .find_map(|l| l.split("tracker: ").nth(1))
        .expect("the tracker's line");
    assert!(!tracker.contains(":0/"), "{lines:#?}");
    assert!(
        has(&format!("torrents made here announce to {tracker}")),
        "{lines:#?}"
    );
    assert!(
        has("20-broken.rhai: line 2") && has("broken on purpose"),
        "{lines:#?}"
    );
    assert!(has("] stopped"), "{lines:#?}");
    assert!(
        lines.iter().all(|l| l.starts_with('[')),
        "every line is timestamped: {lines:#?}"
    );
}

#[test]
fn ctrl_c_while_create_hashes_stops_it_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse: no disk used, but hashing it takes seconds even on a fast machine.
    crate::support::sparse_file(&dir.path().join("big.bin"), 8 << 30);
    let p = Proc::start(dir.path(), &["create", "big.bin"]);
    let end = Instant::now() + Duration::from_secs(20);
    while crate::support::bytes_read(p.child.id()) < 64 << 20 {
        assert!(Instant::now() < end, "hashing never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let stopped_at = Instant::now();
    p.signal("-INT");
    let (code, lines) = p.finish();
    assert_eq!(code, Some(130), "{lines:#?}");
    assert!(stopped_at.elapsed() < Duration::from_secs(5), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("b-create: cancelled")),
        "{lines:#?}"
    );
    assert!(!dir.path().join("torrents").exists(), "no .torrent written");
    assert!(
        !dir.path().join("torrents.toml").exists(),
        "nothing registered"
    );
}
#[test]
fn run_stops_cleanly_on_sigterm_like_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("h.rhai"),
        "on(\"completed\", |ev| print(ev.name));\nafter(0.05, || throw \"boom\");\nevery(0.3, || sleep(60000));\nprint(\"ready\");\n",
    )
    .unwrap();
    let mut p = Proc::start(dir.path(), &["run", "h.rhai"]);
    p.wait_line("keeps running");
    p.wait_line("boom");
    std::thread::sleep(Duration::from_millis(300));
    p.signal("-TERM");
    let (code, lines) = p.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    // A failing timer is reported once (not also as a log line); the timer cut short by the stop is
    // not reported at all.
    let failures: Vec<_> = lines.iter().filter(|l| l.contains("failed")).collect();
    assert_eq!(failures.len(), 1, "{lines:#?}");
    assert!(failures[0].contains("h.rhai: line 2") && failures[0].contains("boom"));
    assert!(!lines.iter().any(|l| l.contains("cancelled")), "{lines:#?}");
}

#[test]
fn a_taken_tracker_address_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std::fs::write(
        dir.path().join("torrents.toml"),
        format!(
            "[settings]\ntracker_bind = \"{}\"\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\n",
            taken.local_addr().unwrap()
        ),
    )
    .unwrap();
    let p = Proc::start(dir.path(), &["daemon"]);
    let (code, lines) = p.finish();
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("tracker_bind") && lines[0].contains("in use"),
        "{lines:#?}"
    );
}

#[test]
fn the_shell_runs_commands_from_a_file_and_skips_lines_that_are_not_text() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("torrents.toml"),
        "[settings]\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    std::fs::write(
        dir.path().join("scripts/b-say.rhai"),
        "//! Say a word.\n//!\n//! usage: b-say <word>\nprint(`said ${args.word}`);\n",
    )
    .unwrap();
    // exit() ends a command, not the shell.
    std::fs::write(
        dir.path().join("scripts/b-quit.rhai"),
        "//! Stop early.\nprint(\"quitting\");\nexit();\nprint(\"not here\");\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("scripts/b-fail.rhai"),
        "//! Stop with a code.\nexit(3);\n",
    )
    .unwrap();
    let input = dir.path().join("commands.txt");
    std::fs::write(
        &input,
        b"b-say one\n\xff\xfe not text\nb-quit\nb-fail\nb-say two\r\nb-say three",
    )
    .unwrap();
    let p = Proc::start_with_input(
        dir.path(),
        &[],
        Stdio::from(std::fs::File::open(&input).unwrap()),
    );
    let (code, lines) = p.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    for want in ["said one", "quitting", "said two", "said three"] {
        assert!(lines.iter().any(|l| l == want), "{want}: {lines:#?}");
    }
    assert!(!lines.iter().any(|l| l == "not here"), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l == "error: scripts/b-fail.rhai: exit code 3"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("line 2") && l.contains("not text")),
        "{lines:#?}"
    );
}

#[test]
fn a_leading_tilde_in_a_shell_line_is_the_home_folder() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("photos")).unwrap();
    std::fs::write(home.join("photos/a.jpg"), b"a picture").unwrap();
    std::fs::write(
        dir.path().join("torrents.toml"),
        "[settings]\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\n",
    )
    .unwrap();
    let input = dir.path().join("commands.txt");
    // As the README's quick start has it; quoted, the tilde stays a tilde.
    std::fs::write(
        &input,
        "b-create ~/photos http://127.0.0.1:1/announce\nb-info '~/x.torrent'\n",
    )
    .unwrap();
    let p = Proc::start_with(
        dir.path(),
        &[],
        Stdio::from(std::fs::File::open(&input).unwrap()),
        &[("HOME", &home)],
    );
    let (code, lines) = p.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(
        dir.path().join("torrents/photos.torrent").exists(),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l
                .contains("~/x.torrent: no .torrent file, URL, magnet link or managed torrent")),
        "{lines:#?}"
    );
}

#[test]
fn the_daemon_reports_a_rejected_watch_entry_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("torrents.toml"),
        "[settings]\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\nwatch_quiet_secs = 1\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("watch")).unwrap();
    std::fs::write(dir.path().join("watch/bad.torrent"), b"junk").unwrap();
    let mut p = Proc::start(dir.path(), &["daemon"]);
    p.wait_line("watch_rejected");
    std::thread::sleep(Duration::from_millis(500));
    p.signal("-TERM");
    let (code, lines) = p.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    let reports: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("bad.torrent") && l.contains("not a valid .torrent"))
        .collect();
    assert_eq!(reports.len(), 1, "{lines:#?}");
}

#[test]
fn a_timer_removes_itself_with_off_and_exit_ends_a_run_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, script: &str| {
        std::fs::write(dir.path().join(name), script).unwrap();
        Proc::start(dir.path(), &["run", name]).finish()
    };
    // `off()` inside a timer removes that timer: the run then has nothing left and ends.
    let (code, lines) = run(
        "self_off.rhai",
        "let n = 0;\nevery(0.05, || { n += 1; print(`tick ${n}`); if n == 3 { print(off()); } });\n",
    );
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "tick 3"), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "true"), "{lines:#?}");
    assert!(!lines.iter().any(|l| l == "tick 4"), "{lines:#?}");

    // `exit(code)` in the body: the run ends there, with that code and no message.
    let (code, lines) = run(
        "body.rhai",
        "print(\"before\");\ntry { exit(3); } catch (e) { print(`caught ${e}`); }\nprint(\"after\");\n",
    );
    assert_eq!(code, Some(3), "{lines:#?}");
    assert_eq!(lines, ["before"], "no catch holds it, nothing more is said");

    // `exit()` in a timer ends a run that still has handlers registered.
    let (code, lines) = run(
        "timer.rhai",
        "on(\"completed\", |ev| print(ev.name));\nlet n = 0;\nevery(0.05, || { n += 1; if n == 2 { exit(4); } });\n",
    );
    assert_eq!(code, Some(4), "{lines:#?}");
    let (code, lines) = run(
        "zero.rhai",
        "on(\"added\", |ev| ());\nafter(0.05, || exit());\n",
    );
    assert_eq!(code, Some(0), "{lines:#?}");
    assert!(lines.iter().all(|l| !l.contains("exit")), "{lines:#?}");

    // Outside a handler, `off()` says what it needs; a bad code is refused.
    let (code, lines) = run("bad.rhai", "off();\n");
    assert_eq!(code, Some(1), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("off: with no id, only inside a handler or timer")),
        "{lines:#?}"
    );
    let (code, lines) = run("badcode.rhai", "exit(300);\n");
    assert_eq!(code, Some(1), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("exit: the code must be a whole number from 0 to 255")),
        "{lines:#?}"
    );

    // A one-shot command exits with its script's code.
    std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
    std::fs::write(
        dir.path().join("scripts/b-check.rhai"),
        "//! Exit with a code.\nprint(\"checking\");\nexit(5);\n",
    )
    .unwrap();
    let (code, lines) = Proc::start(dir.path(), &["check"]).finish();
    assert_eq!(code, Some(5), "{lines:#?}");
    assert_eq!(lines, ["checking"]);
}

/// The `move-completed` example as its documentation says to use it: copied into `scripts/autorun/`
/// of a `btorrent daemon`, whose managed download (left unfinished by an earlier run) resumes, completes
/// and is moved into the example's folder, where it goes on seeding.
#[test]
fn the_move_completed_example_works_as_documented_under_the_daemon() {
    let root = tempfile::tempdir().unwrap();
    let (_tracker, url) = crate::support::cli::tracker_process(root.path());
    let settings = "[settings]\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\n";
    // A seeder of d.bin, listed by the tracker before the daemon starts.
    let seed_dir = root.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("torrents.toml"), settings).unwrap();
    let data = crate::support::write_random(&seed_dir.join("d.bin"), 600_000, 8);
    crate::support::cli::ok(&seed_dir, &["create", "d.bin", &url, "-o", "d.torrent"]);
    let meta = btorrent::Metainfo::load(&seed_dir.join("d.torrent")).unwrap();
    let _seeder = crate::support::Proc::spawn(
        crate::support::cli::bin()
            .args(["seed", "d.torrent", "--data", "."])
            .current_dir(&seed_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let peers = crate::support::cli::run(&seed_dir, &["peer", &url, "--json"]);
        if String::from_utf8_lossy(&peers.stdout).contains("\"left\": 0") {
            break;
        }
        assert!(Instant::now() < end, "the seeder never announced");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The daemon's folder: the download managed and not started yet, the example in autorun/ as is.
    let dir = root.path().join("home");
    std::fs::create_dir_all(dir.join("scripts/autorun")).unwrap();
    std::fs::copy(seed_dir.join("d.torrent"), dir.join("d.torrent")).unwrap();
    std::fs::write(
        dir.join("torrents.toml"),
        format!(
            "{settings}\n[[torrent]]\nname = \"d.bin\"\ninfo_hash = \"{}\"\nfile = \"d.torrent\"\ndata = \"downloads\"\nstate = \"downloading\"\n",
            meta.info_hash.to_hex()
        ),
    )
    .unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/examples/move-completed.rhai"),
        dir.join("scripts/autorun/move-completed.rhai"),
    )
    .unwrap();
    let mut p = Proc::start(&dir, &["daemon"]);
    p.wait_line("d.bin: moved to ");
    p.signal("-TERM");
    let (code, lines) = p.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(std::fs::read(dir.join("complete/d.bin")).unwrap(), data);
    assert!(!dir.join("downloads/d.bin").exists(), "{lines:#?}");
    let cfg = btorrent::config::Config::load(&dir.join("torrents.toml")).unwrap();
    assert_eq!(cfg.resolve(&cfg.torrents[0].data), dir.join("complete"));
    assert_eq!(cfg.torrents[0].state, "seeding");
}

/// A script nesting a value 20,000 deep: before, the script thread's stack overflowed and the process
/// died of a signal.
const NEST: &str = "let a = [];\nfor i in 0..20000 {\n    a = [a];\n}\nprint(\"built\");\n";

#[test]
fn run_of_a_deep_nesting_script_exits_with_a_one_line_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nest.rhai"), NEST).unwrap();
    let started = Instant::now();
    let p = Proc::start(dir.path(), &["run", "nest.rhai"]);
    let (code, lines) = p.finish();
    assert_eq!(code, Some(1), "an exit code, not a signal: {lines:#?}");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].starts_with("btorrent: nest.rhai: line 3:")
            && lines[0].contains("nested more than 100 levels"),
        "{lines:#?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_daemon_handler_nesting_deeply_is_reported_and_the_daemon_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("torrents.toml"),
        "[settings]\ntracker_bind = \"127.0.0.1:0\"\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("scripts/autorun")).unwrap();
    // Each tick nests a value deeply (in a function, so the error names its line), then the next one
    // says it ran.
    let script = format!(
        "let ticks = 0;\nfn nest() {{\n{NEST}}}\nevery(0.1, || {{\n    ticks += 1;\n    print(`tick ${{ticks}}`);\n    nest();\n}});\n"
    );
    std::fs::write(root.join("scripts/autorun/nest.rhai"), script).unwrap();
    let mut p = Proc::start(root, &["daemon"]);
    p.wait_line("running; SIGINT or SIGTERM stops");
    p.wait_line("tick 3");
    p.signal("-TERM");
    let (code, lines) = p.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    let failures: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("nested more than"))
        .collect();
    assert!(failures.len() >= 2, "{lines:#?}");
    assert!(
        failures
            .iter()
            .all(|l| l.contains("nest.rhai") && l.contains("line 5:")),
        "{lines:#?}"
    );
}
