//! The headless front ends as processes: `btorrent run` (which keeps serving the handlers and timers a
//! script registered) and `btorrent daemon` (services, autorun scripts, event log, SIGTERM/SIGINT).

mod support;

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
        let mut child = Command::new(env!("CARGO_BIN_EXE_btorrent"))
            .args(args)
            .current_dir(dir)
            .env_remove("BTORRENT_CONFIG")
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
        "after(0.1, || print(\"hello from a timer\"));\n",
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
    support::sparse_file(&dir.path().join("big.bin"), 8 << 30);
    let p = Proc::start(dir.path(), &["create", "big.bin"]);
    let end = Instant::now() + Duration::from_secs(20);
    while support::bytes_read(p.child.id()) < 64 << 20 {
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
    let input = dir.path().join("commands.txt");
    std::fs::write(
        &input,
        b"b-say one\n\xff\xfe not text\nb-say two\r\nb-say three",
    )
    .unwrap();
    let p = Proc::start_with_input(
        dir.path(),
        &[],
        Stdio::from(std::fs::File::open(&input).unwrap()),
    );
    let (code, lines) = p.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    for want in ["said one", "said two", "said three"] {
        assert!(lines.iter().any(|l| l == want), "{want}: {lines:#?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("line 2") && l.contains("not text")),
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
