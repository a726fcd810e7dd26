//! The interactive shell driven in a pseudo-terminal, as a person uses it: commands typed at the prompt,
//! Tab completion, Ctrl-C at the prompt and during a command, output from the background above the
//! prompt, the history file, and closing with `b-close`, Ctrl-D, SIGTERM or the RPC's `session-close`.
//!
//! The test plays the terminal: a vt100 screen model reads everything the shell draws and answers its
//! cursor-position queries, so assertions are about what the screen shows.

mod support;

use std::io::Write as _;
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::{Session, WaitStatus};

const ROWS: u16 = 200;
const COLS: u16 = 150;

/// Answers the terminal queries the line editor sends (cursor position) from the screen model.
#[derive(Default)]
struct Terminal {
    replies: Vec<Vec<u8>>,
}

impl vt100::Callbacks for Terminal {
    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        if c == 'n' && i1.is_none() && params == [&[6u16][..]] {
            let (row, col) = screen.cursor_position();
            self.replies
                .push(format!("\x1b[{};{}R", row + 1, col + 1).into_bytes());
        }
    }
}

struct Shell {
    session: expectrl::session::Session,
    screen: vt100::Parser<Terminal>,
    dir: PathBuf,
    raw: Vec<u8>,
    cols: u16,
}

impl Shell {
    fn start(dir: &Path, args: &[&str]) -> Shell {
        Shell::start_sized(dir, args, COLS, ROWS)
    }

    /// The shell in a terminal of `cols` x `rows`.
    fn start_sized(dir: &Path, args: &[&str], cols: u16, rows: u16) -> Shell {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_btorrent"));
        cmd.args(args)
            .current_dir(dir)
            .env_remove("BTORRENT_CONFIG")
            .env("BTORRENT_DHT", "off")
            .env("BTORRENT_LSD", "off")
            .env("BTORRENT_PORT_FORWARDING", "off")
            .env("TERM", "xterm-256color");
        let mut session = Session::spawn(cmd).expect("spawn the shell in a pty");
        session
            .get_process_mut()
            .set_window_size(cols, rows)
            .expect("size the pty");
        Shell {
            session,
            screen: vt100::Parser::new_with_callbacks(
                NonZeroU16::new(rows).unwrap(),
                NonZeroU16::new(cols).unwrap(),
                0,
                Terminal::default(),
            ),
            dir: dir.to_path_buf(),
            raw: Vec::new(),
            cols,
        }
    }

    /// Reads what the shell drew so far and answers its queries.
    fn pump(&mut self) {
        let mut buf = [0u8; 8192];
        loop {
            match self.session.try_read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.raw.extend_from_slice(&buf[..n]);
                    self.raw.extend_from_slice(b"<|>");
                    self.screen.process(&buf[..n])
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
            let replies = std::mem::take(&mut self.screen.callbacks_mut().replies);
            for r in replies {
                // A terminal query's answer to a shell that has just exited goes nowhere.
                let _ = self.session.write_all(&r);
            }
        }
        let replies = std::mem::take(&mut self.screen.callbacks_mut().replies);
        for r in replies {
            let _ = self.session.write_all(&r);
        }
    }

    fn text(&self) -> String {
        self.screen.screen().contents()
    }

    /// The screen row the cursor is on, trimmed.
    fn cursor_line(&self) -> String {
        let (row, _) = self.screen.screen().cursor_position();
        self.screen
            .screen()
            .rows(0, self.cols)
            .nth(row as usize)
            .unwrap_or_default()
            .trim_end()
            .to_string()
    }

    /// The cursor row up to the cursor: what has been typed, without the hint drawn after it.
    fn typed(&self) -> String {
        let (row, col) = self.screen.screen().cursor_position();
        self.screen
            .screen()
            .contents_between(row, 0, row, col)
            .trim_end()
            .to_string()
    }

    fn wait(&mut self, what: &str, pred: impl Fn(&Shell) -> bool) {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            self.pump();
            if pred(self) {
                return;
            }
            if Instant::now() > end {
                // What the shell sent, with `<|>` between reads, for a closer look.
                let dump = std::env::temp_dir().join(format!("pty_raw_{}.bin", std::process::id()));
                let _ = std::fs::write(&dump, &self.raw);
                panic!(
                    "timed out waiting for {what} (raw output in {}); the screen shows:\n{}",
                    dump.display(),
                    self.text()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the shell ever wrote `needle`, though the screen may no longer show it (a line the
    /// editor drew over as the shell closed).
    fn said(&self, needle: &str) -> bool {
        String::from_utf8_lossy(&self.raw)
            .replace("<|>", "")
            .contains(needle)
    }

    fn count(&self, needle: &str) -> usize {
        self.text().matches(needle).count()
    }

    /// Waits until `needle` appears once more than it did when `before` was counted.
    fn wait_more(&mut self, needle: &str, before: usize) {
        self.wait(needle, |s| s.count(needle) > before);
    }

    /// Waits for an idle prompt showing `totals` (`btorrent [1 torrent]> `). The editor redraws the
    /// prompt (with fresh figures) on each key, so while it shows other figures the test presses a key
    /// and takes it back, as a person glancing at it might.
    fn wait_prompt(&mut self, totals: &str) {
        let want = format!("btorrent [{totals}]>");
        let end = Instant::now() + Duration::from_secs(30);
        let mut poked = Instant::now();
        loop {
            self.pump();
            if self.cursor_line() == want {
                return;
            }
            if Instant::now() > end {
                panic!(
                    "timed out waiting for {want:?}; the screen shows:\n{}",
                    self.text()
                );
            }
            if poked.elapsed() > Duration::from_millis(500) && self.cursor_line().ends_with("]>") {
                self.send("x\x7f");
                poked = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn send(&mut self, s: &str) {
        self.session.write_all(s.as_bytes()).unwrap();
        self.session.flush().unwrap();
    }

    /// Types a line and presses Enter.
    fn enter(&mut self, line: &str) {
        self.send(line);
        // Let the editor draw the typed text before Enter, as it would for a person.
        let typed = format!("> {}", line.trim_end());
        self.wait(&format!("{line:?} typed"), |s| s.typed().ends_with(&typed));
        self.send("\r");
    }

    /// Runs `line` and waits until `needle` appears anew.
    fn run(&mut self, line: &str, needle: &str) {
        let before = self.count(needle);
        self.enter(line);
        self.wait_more(needle, before);
    }

    fn wait_exit(&mut self) -> WaitStatus {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            self.pump();
            match self.session.get_process().status() {
                Ok(WaitStatus::StillAlive) if Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(s) => {
                    // What it printed as it closed may still wait in the terminal.
                    self.pump();
                    return s;
                }
                Err(e) => panic!("status: {e}"),
            }
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("torrents.toml"),
        "# my setup\n[settings]\ntracker_bind = \"127.0.0.1:0\"\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\nrpc_bind = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.join("share/docs")).unwrap();
    std::fs::write(root.join("share/docs/a.txt"), b"hello from the shell test").unwrap();
    std::fs::write(root.join("share/b.bin"), vec![3u8; 100_000]).unwrap();
    std::fs::create_dir_all(root.join("scripts")).unwrap();
    std::fs::write(
        root.join("scripts/b-wait.rhai"),
        "//! Wait a long time.\n//! usage: b-wait <secs>\nprint(\"waiting\");\nsleep(args.secs * 1000);\nprint(\"done waiting\");\n",
    )
    .unwrap();
    std::fs::write(
        root.join("scripts/b-oops.rhai"),
        "//! Fail on purpose.\nlet x = 1;\nlet y = x + no_such_thing;\n",
    )
    .unwrap();
    std::fs::write(
        root.join("scripts/b-later.rhai"),
        "//! Print something from the background after a moment.\nafter(1, || { print(\"background hello\"); print(\"background two\"); print(\"background three\"); });\n",
    )
    .unwrap();
    dir
}

/// The prompt with one torrent seeding to nobody.
const SEEDING_ONE: &str = "1 torrent · ↓ 0 B/s ↑ 0 B/s · 0 peers";

#[test]
fn a_session_at_the_prompt() {
    let dir = setup();
    let mut sh = Shell::start(dir.path(), &[]);
    sh.wait("the banner", |s| {
        s.text().contains("tracker: http://127.0.0.1:")
            && s.text().contains("rpc: http://127.0.0.1:")
    });
    sh.wait_prompt("0 torrents");

    sh.run("b-help", "Each runs in the shell or one-shot");
    assert!(sh
        .text()
        .contains("b-create <path> [tracker-url] [options]"));
    assert!(sh.text().contains("b-close [options]"), "{}", sh.text());
    assert!(
        sh.text().contains("b-wait <secs>"),
        "user commands are listed"
    );
    sh.wait_prompt("0 torrents");

    sh.run("b-create share http://127.0.0.1:1/announce", "info-hash");
    assert!(sh.text().contains("torrents/share.torrent"));
    sh.wait_prompt(SEEDING_ONE);

    sh.run("b-info torrents/share.torrent", "magnet:?xt=urn:btih:");
    // The file table comes after the magnet line, maybe in a later write.
    sh.wait("b-info's file table", |s| {
        s.text().contains("share/docs/a.txt")
    });
    sh.run("b-show", "│ share");
    assert!(sh.text().contains("seeding"));

    sh.run("b-shwo", "unknown command \"b-shwo\", did you mean b-show?");
    sh.run("b-info", "error: b-info: missing <torrent>");
    sh.run("b-info 'unclosed", "error: unclosed ' quote");
    sh.run(
        "b-oops",
        "error: scripts/b-oops.rhai: line 3:13: Variable not found: no_such_thing",
    );
    sh.run(
        "b-info nothing.torrent",
        "error: b-info: info: nothing.torrent: no .torrent file, URL, magnet link or managed torrent",
    );
    sh.wait_prompt(SEEDING_ONE);

    // Tab completes a command name, then a .torrent path.
    sh.send("b-inf\t");
    sh.wait("b-info completed", |s| s.typed().ends_with("> b-info"));
    sh.send("torrents/sh\t");
    sh.wait("the path completed", |s| {
        s.typed().ends_with("> b-info torrents/share.torrent")
    });
    // Ctrl-C at the prompt clears the line and the shell stays.
    sh.send("\x03");
    sh.wait_prompt(SEEDING_ONE);

    // Ctrl-C while a command runs cancels that command only.
    sh.run("b-wait 60", "waiting");
    let started = Instant::now();
    sh.send("\x03");
    sh.wait_more("cancelled", 0);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        sh.text().contains("b-wait.rhai: cancelled"),
        "{}",
        sh.text()
    );
    assert!(!sh.text().contains("done waiting"));
    sh.wait_prompt(SEEDING_ONE);

    // Output from the background lands above the prompt; the half-typed line survives.
    sh.enter("b-later");
    sh.wait_prompt(SEEDING_ONE);
    sh.send("b-sh");
    sh.wait_more("background three", 0);
    let text = sh.text();
    let at = |s: &str| {
        text.find(s)
            .unwrap_or_else(|| panic!("{s} missing:\n{text}"))
    };
    assert!(
        at("background hello") < at("background two")
            && at("background two") < at("background three")
    );
    assert!(
        text.starts_with("btorrent 0.1.0"),
        "a burst of lines leaves the screen intact:\n{text}"
    );
    sh.wait("the line being typed redrawn", |s| {
        s.typed() == format!("btorrent [{SEEDING_ONE}]> b-sh")
    });
    sh.send("ow\r");
    sh.wait("b-show ran again", |s| s.count("│ share") >= 2);

    // A line starting with a space stays out of the history.
    sh.run(" b-help b-close", "close without asking");
    sh.wait_prompt(SEEDING_ONE);

    sh.enter("b-close");
    sh.wait("closed", |s| s.text().contains("closed"));
    let status = sh.wait_exit();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "{status:?}\n{}",
        sh.text()
    );

    let toml = std::fs::read_to_string(sh.path("torrents.toml")).unwrap();
    assert!(toml.starts_with("# my setup\n"), "comments kept: {toml}");
    let cfg = btorrent::config::Config::load(&sh.path("torrents.toml")).unwrap();
    assert_eq!(cfg.torrents.len(), 1);
    assert_eq!(cfg.torrents[0].name, "share");
    let history = std::fs::read_to_string(sh.path(".btorrent_history")).unwrap();
    assert!(history.contains("b-create share"), "{history}");
    assert!(history.contains("b-show"), "{history}");
    assert!(!history.contains("b-help b-close"), "{history}");
}

#[test]
fn ctrl_d_closes_and_a_hint_comes_from_history() {
    let dir = setup();
    std::fs::write(
        dir.path().join(".btorrent_history"),
        "b-info torrents/x.torrent\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("scripts/autorun")).unwrap();
    std::fs::write(
        dir.path().join("scripts/autorun/hello.rhai"),
        "print(\"autorun says hi\");\nlet x = ;\n",
    )
    .unwrap();
    let mut sh = Shell::start(dir.path(), &[]);
    sh.wait_prompt("0 torrents");
    assert!(sh.text().contains("autorun: hello.rhai"), "{}", sh.text());
    assert!(
        sh.text().contains("hello.rhai: syntax error at line 2"),
        "a broken autorun script is reported: {}",
        sh.text()
    );
    sh.send("b-info t");
    sh.wait("the hint from history", |s| {
        s.typed().ends_with("> b-info t")
            && s.cursor_line().ends_with("> b-info torrents/x.torrent")
    });
    sh.send("\x03");
    sh.wait_prompt("0 torrents");
    sh.send("\x04");
    let status = sh.wait_exit();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    assert!(sh.text().contains("closed"));
    assert!(sh.path("torrents.toml").exists());
}

#[test]
fn ctrl_c_during_b_start_and_closing_while_downloading() {
    let dir = setup();
    let root = dir.path();
    // A torrent of data nobody serves: the download stays at 0% until the shell closes.
    std::fs::create_dir_all(root.join("elsewhere")).unwrap();
    std::fs::write(root.join("elsewhere/movie.mkv"), vec![9u8; 300_000]).unwrap();
    let opts = btorrent::metainfo::CreateOptions {
        trackers: vec!["http://127.0.0.1:1/announce".into()],
        ..Default::default()
    };
    let meta =
        btorrent::metainfo::create_torrent(&root.join("elsewhere/movie.mkv"), &opts, &|_, _| {})
            .unwrap();
    std::fs::write(root.join("movie.torrent"), meta.as_bytes()).unwrap();
    std::fs::remove_dir_all(root.join("elsewhere")).unwrap();

    let mut sh = Shell::start(root, &[]);
    sh.wait_prompt("0 torrents");
    // A torrent created at the prompt is seeded at once.
    sh.run("b-create share http://127.0.0.1:1/announce", "info-hash");
    sh.wait_prompt(SEEDING_ONE);

    sh.run("b-start movie.torrent -o downloads", "movie.mkv");
    std::thread::sleep(Duration::from_millis(300));
    sh.send("\x03");
    // Ctrl-C stops the watching, not the download, and the shell says so (no error).
    sh.wait_more(
        "movie.mkv: download continues in the background; b-pause movie.mkv stops it",
        0,
    );
    assert!(!sh.text().contains("cancelled"), "{}", sh.text());
    // The download goes on in the background; the prompt counts it.
    sh.wait_prompt("2 torrents · 1 downloading · ↓ 0 B/s ↑ 0 B/s · 0 peers");

    // Closing asks first while a download runs; "n" keeps the shell.
    sh.enter("b-close");
    sh.wait("the question", |s| {
        s.typed()
            .starts_with("Close anyway? Transfers stop and resume at the next start [y/N]")
    });
    assert!(
        sh.text().contains("1 still downloading: movie.mkv"),
        "{}",
        sh.text()
    );
    sh.send("n\r");
    sh.wait_prompt("2 torrents · 1 downloading · ↓ 0 B/s ↑ 0 B/s · 0 peers");
    // Ctrl-D asks too; "y" closes.
    sh.send("\x04");
    sh.wait("the question again", |s| {
        s.typed().starts_with("Close anyway?")
    });
    sh.send("y\r");
    let status = sh.wait_exit();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "{status:?}\n{}",
        sh.text()
    );
    let cfg = btorrent::config::Config::load(&sh.path("torrents.toml")).unwrap();
    let movie = cfg.torrents.iter().find(|t| t.name == "movie.mkv").unwrap();
    assert_eq!(movie.state, "downloading");
    let share = cfg.torrents.iter().find(|t| t.name == "share").unwrap();
    assert_eq!(share.state, "seeding");
    let history = std::fs::read_to_string(sh.path(".btorrent_history")).unwrap();
    assert!(!history.lines().any(|l| l == "y" || l == "n"), "{history}");
}

/// A client of the shell's RPC (its port read from the banner, once it shows).
fn rpc_of(sh: &mut Shell) -> support::rpc::Client {
    sh.wait("the banner's rpc line", |s| {
        s.text().contains("rpc: http://127.0.0.1:")
    });
    let text = sh.text();
    let port: u16 = text
        .split("rpc: http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no rpc line in the banner: {text}"));
    support::rpc::Client {
        port,
        auth: None,
        session_id: None,
        source: None,
    }
}

/// Waits until the shell has its tracker's answer to the `started` announce (the tracker may count
/// the seed before the answer is back): `stopped` goes only to trackers that answered.
fn wait_announced(sh: &mut Shell, rpc: &mut support::rpc::Client) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let t = rpc.ok(
            "torrent-get",
            serde_json::json!({"fields": ["trackerStats"]}),
        );
        if t["torrents"][0]["trackerStats"][0]["lastAnnounceSucceeded"] == true {
            return;
        }
        assert!(
            Instant::now() < end,
            "the shell never had the tracker's answer: {t}"
        );
        sh.pump();
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn closing_announces_stopped_to_the_tracker() {
    let dir = setup();
    // A tracker of the test's own, so it outlives the shell.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tracker_dir = tempfile::tempdir().unwrap();
    let tracker = rt
        .block_on(btorrent::services::RunningTracker::start(
            &tracker_dir.path().join("torrents.toml"),
            Some("127.0.0.1:0".parse().unwrap()),
        ))
        .unwrap();
    let url = tracker.announce_url();
    let mut sh = Shell::start(dir.path(), &[]);
    let mut rpc = rpc_of(&mut sh);
    sh.wait_prompt("0 torrents");
    sh.run(&format!("b-create share {url}"), "info-hash");
    let seeders = || tracker.tracker.stats().seeders;
    let end = Instant::now() + Duration::from_secs(30);
    while seeders() != 1 {
        assert!(Instant::now() < end, "the shell never announced its seed");
        sh.pump();
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_announced(&mut sh, &mut rpc);
    sh.wait_prompt(SEEDING_ONE);
    sh.enter("b-close");
    let status = sh.wait_exit();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    assert_eq!(seeders(), 0, "the shell announced `stopped` as it closed");

    // The next shell seeds the managed torrent from the start; SIGTERM closes it cleanly too.
    let seeding_shell = || {
        let mut sh = Shell::start(dir.path(), &[]);
        let mut rpc = rpc_of(&mut sh);
        let end = Instant::now() + Duration::from_secs(30);
        while seeders() != 1 {
            assert!(
                Instant::now() < end,
                "the new shell never announced its seed"
            );
            sh.pump();
            std::thread::sleep(Duration::from_millis(50));
        }
        wait_announced(&mut sh, &mut rpc);
        sh.wait_prompt(SEEDING_ONE);
        (sh, rpc)
    };
    let (mut sh, _) = seeding_shell();
    sh.session
        .get_process_mut()
        .signal(expectrl::Signal::SIGTERM)
        .unwrap();
    let status = sh.wait_exit();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "{status:?}\n{}",
        sh.text()
    );
    assert_eq!(seeders(), 0, "SIGTERM announced `stopped` too");
    assert!(sh.said("closing: signal received"), "{}", sh.text());

    // And a `session-close` over its RPC (`transmission-remote --exit`): replied to, then closed.
    let (mut sh, mut rpc) = seeding_shell();
    rpc.ok("session-close", serde_json::json!({}));
    let status = sh.wait_exit();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "{status:?}\n{}",
        sh.text()
    );
    assert_eq!(seeders(), 0, "session-close announced `stopped` too");
    assert!(
        sh.said("closing: session-close over the RPC"),
        "{}",
        sh.text()
    );
    rt.block_on(tracker.stop());
}

#[test]
fn ctrl_c_while_b_create_hashes_returns_to_the_prompt_with_nothing_written() {
    let dir = setup();
    let root = dir.path();
    // Sparse: no disk used, but hashing it takes seconds even on a fast machine.
    support::sparse_file(&root.join("huge.img"), 8 << 30);
    let mut sh = Shell::start(root, &[]);
    sh.wait_prompt("0 torrents");
    let pid = sh.session.get_process().pid().as_raw() as u32;
    let before = support::bytes_read(pid);
    sh.enter("b-create huge.img");
    sh.wait("hashing under way", |_| {
        support::bytes_read(pid) > before + (64 << 20)
    });
    sh.send("\x03");
    sh.wait_more("b-create: cancelled", 0);
    sh.wait_prompt("0 torrents");
    assert!(!sh.path("torrents/huge.img.torrent").exists());
    let cfg = btorrent::config::Config::load(&sh.path("torrents.toml")).unwrap();
    assert!(cfg.torrents.is_empty());
    sh.send("\x04");
    assert!(matches!(sh.wait_exit(), WaitStatus::Exited(_, 0)));
}

#[test]
fn one_shot_commands_reach_the_shell_and_b_remove_asks_before_deleting() {
    let dir = setup();
    let root = dir.path();
    let mut sh = Shell::start(root, &[]);
    sh.wait_prompt("0 torrents");
    sh.run("b-create share http://127.0.0.1:1/announce", "info-hash");
    sh.wait_prompt(SEEDING_ONE);

    // From another terminal: a one-shot command pauses the shell's torrent and sees its live state.
    let out = support::cli::ok(root, &["pause", "share"]);
    assert!(out.contains("share: paused"), "{out}");
    let show = support::cli::ok(root, &["show", "--json"]);
    assert!(
        show.contains("\"state\": \"paused\"") && show.contains("\"running\": true"),
        "{show}"
    );

    // Deleting the data asks first; "n" keeps everything.
    sh.enter("b-remove share --delete-data");
    sh.wait("the question", |s| {
        s.typed().starts_with("Delete the files of share in ")
    });
    sh.send("n\r");
    sh.wait_more("share: nothing removed", 0);
    assert!(root.join("share/b.bin").exists());
    // "y" deletes the torrent's files, and its folders once empty.
    sh.enter("b-remove share --delete-data");
    sh.wait("the question again", |s| {
        s.typed().starts_with("Delete the files of share in ")
    });
    sh.send("y\r");
    sh.wait_more("share: removed; deleted 2 files", 0);
    sh.wait_prompt("0 torrents");
    assert!(!root.join("share").exists());
    assert!(root.join("torrents/share.torrent").exists());
    sh.send("\x04");
    let status = sh.wait_exit();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "{status:?}\n{}",
        sh.text()
    );
    assert!(!root.join(".btorrent/control.sock").exists());
}

impl Shell {
    /// The screen's rows, trimmed at the end.
    fn rows(&self) -> Vec<String> {
        self.screen
            .screen()
            .rows(0, self.cols)
            .map(|r| r.trim_end().to_string())
            .collect()
    }

    /// Types `line` (which may wrap) and waits until the screen shows all of it.
    fn type_long(&mut self, line: &str) {
        self.send(line);
        self.wait(&format!("{line:?} typed"), |s| s.text().contains(line));
    }
}

/// A `btorrent seed` process serving `d.bin` (3 MiB) at about 150 KiB/s on 127.0.0.1, so that a
/// download from it runs for about twenty seconds (a busy machine may show the progress bar seconds
/// after the download began, and it must still run for the two seconds it is watched then: with
/// ten seconds, a CI run under load once saw it end within them); returns it, the .torrent and its
/// address.
fn slow_seeder(root: &Path) -> (support::Proc, PathBuf, String) {
    let dir = root.join("seeder");
    std::fs::create_dir_all(&dir).unwrap();
    let port = support::free_port();
    std::fs::write(
        dir.join("torrents.toml"),
        format!("[settings]\nlisten_ip = \"127.0.0.1\"\nlisten_port = {port}\nupload_limit = \"150K\"\n"),
    )
    .unwrap();
    support::write_random(&dir.join("d.bin"), 3 << 20, 3);
    support::cli::ok(&dir, &["create", "d.bin", "http://127.0.0.1:1/announce"]);
    let seeder = support::Proc::spawn(
        support::cli::bin()
            .args(["seed", "torrents/d.bin.torrent", "--data", "."])
            .current_dir(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null()),
    );
    let addr = format!("127.0.0.1:{port}");
    let end = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < end, "the seeder never listened on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    (seeder, dir.join("torrents/d.bin.torrent"), addr)
}

/// At `cols` x 24: the progress bar of `b-start` redraws in place (one row at all times); then, with
/// the download going on in the background and a line typed that wraps past the prompt's row, lines
/// printed from the background land above the prompt, every one of them, and leave no stale copy of
/// the prompt; the prompt's figures are short enough to leave room to type.
fn fits_the_terminal(cols: u16) {
    let dir = setup();
    let root = dir.path();
    let (_seeder, torrent, addr) = slow_seeder(root);
    let mut sh = Shell::start_sized(root, &[], cols, 24);
    sh.wait_prompt("0 torrents");
    let start = format!("b-start {} -o dl --peer {addr}", torrent.display());
    sh.type_long(&start);
    sh.send("\r");
    let bar_rows = |s: &Shell| {
        s.rows()
            .iter()
            .filter(|r| r.starts_with("d.bin ") && r.contains('%'))
            .count()
    };
    sh.wait("the progress bar", |s| bar_rows(s) == 1);
    // Watch it redraw for a while: never a second row of it.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        sh.pump();
        assert!(bar_rows(&sh) <= 1, "the bar scrolled:\n{}", sh.text());
        assert!(
            !sh.text().contains("downloaded and verified"),
            "too fast a download"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Ctrl-C stops following it; the download goes on.
    sh.send("\x03");
    sh.wait("the prompt", |s| s.cursor_line().starts_with("btorrent ["));
    let prompt = sh.cursor_line();
    assert!(
        prompt.chars().count() + 24 <= cols as usize,
        "the prompt leaves room to type: {prompt:?}"
    );

    // Background output while a wrapping line is being typed.
    sh.enter("b-later");
    sh.wait("the prompt again", |s| s.cursor_line().ends_with("]>"));
    // Short enough that the line editor, which counts the typed text but not the prompt, takes it
    // for one row; with the prompt it takes two.
    let typed = format!("b-info {}", "abcdefghij".repeat((cols as usize - 20) / 10));
    sh.type_long(&typed);
    sh.wait_more("background three", 0);
    // The completed download prints its events above the prompt too.
    sh.wait_more("» completed d.bin", 0);
    sh.wait_more("» seeding d.bin", 0);
    sh.pump();
    let text = sh.text();
    for line in ["background hello", "background two", "background three"] {
        assert_eq!(text.matches(line).count(), 1, "{line}:\n{text}");
    }
    assert_eq!(
        text.matches(&typed).count(),
        1,
        "one prompt with the typed line:\n{text}"
    );
    // No stale copy of the prompt's first row either: every row that starts like a prompt is an
    // earlier command line or the one prompt.
    let prompt_rows: Vec<String> = sh
        .rows()
        .into_iter()
        .filter(|r| r.starts_with("btorrent [") && !r.contains("b-later") && !r.contains("b-start"))
        .collect();
    assert_eq!(prompt_rows.len(), 1, "{prompt_rows:#?}\n{text}");
    sh.send("\x03");
    sh.wait("an empty prompt", |s| s.cursor_line().ends_with("]>"));
    sh.send("\x04");
    let status = sh.wait_exit();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

#[test]
fn the_shell_fits_an_80_column_terminal() {
    fits_the_terminal(80);
}

#[test]
fn the_shell_fits_a_60_column_terminal() {
    fits_the_terminal(60);
}

#[test]
fn the_prompt_refreshes_by_itself_and_tab_with_nothing_to_offer_stays_quiet() {
    let dir = setup();
    let mut sh = Shell::start(dir.path(), &[]);
    sh.wait_prompt("0 torrents");
    // Tab where nothing completes (b-show takes no argument): no menu, the next key types on.
    sh.send("b-show ");
    sh.wait("typed", |s| s.typed().ends_with("> b-show"));
    sh.send("\t");
    sh.send("x");
    sh.wait("the key after Tab", |s| s.typed().ends_with("> b-show x"));
    assert!(!sh.text().contains("NO RECORDS FOUND"), "{}", sh.text());
    sh.send("\x03");
    sh.wait("an empty line", |s| {
        s.cursor_line() == "btorrent [0 torrents]>"
    });
    // A torrent registered behind the shell's back (stopped, so nothing starts and nothing is
    // printed): the prompt counts it without a key being pressed.
    let toml = sh.path("torrents.toml");
    let mut text = std::fs::read_to_string(&toml).unwrap();
    text.push_str(
        "\n[[torrent]]\nname = \"elsewhere\"\ninfo_hash = \"0101010101010101010101010101010101010101\"\nfile = \"x.torrent\"\ndata = \".\"\nstate = \"stopped\"\n",
    );
    std::fs::write(&toml, text).unwrap();
    sh.wait("the new count, with no key pressed", |s| {
        s.cursor_line() == "btorrent [1 torrent]>"
    });
    sh.send("\x04");
    assert!(matches!(sh.wait_exit(), WaitStatus::Exited(_, 0)));
}

#[test]
fn a_torrent_made_in_another_terminal_joins_an_idle_shell_at_once() {
    let dir = setup();
    let mut sh = Shell::start(dir.path(), &[]);
    sh.wait_prompt("0 torrents");
    support::cli::ok(
        dir.path(),
        &["create", "share", "http://127.0.0.1:1/announce"],
    );
    // No key pressed, no command line: the shell picks it up and seeds it.
    sh.wait("the new torrent seeded", |s| {
        s.text().contains("» seeding share")
            && s.cursor_line() == format!("btorrent [{SEEDING_ONE}]>")
    });
    sh.send("\x04");
    assert!(matches!(sh.wait_exit(), WaitStatus::Exited(_, 0)));
}

#[test]
fn a_command_nesting_a_value_deeply_returns_to_the_prompt() {
    let dir = setup();
    // Before, 300,000 levels overflowed the shell's main thread and killed the shell.
    std::fs::write(
        dir.path().join("scripts/b-nest.rhai"),
        "//! Nest an array deeply.\nlet a = [];\nfor i in 0..300000 {\n    a = [a];\n}\n",
    )
    .unwrap();
    let mut sh = Shell::start(dir.path(), &[]);
    sh.wait_prompt("0 torrents");
    sh.run("b-nest", "nested more than 100 levels");
    assert!(
        sh.text().contains("error: scripts/b-nest.rhai: line 4:"),
        "{}",
        sh.text()
    );
    sh.wait_prompt("0 torrents");
    sh.run("b-help nest", "Nest an array deeply.");
    // Ctrl-D reaches the editor only once it is back at the prompt.
    sh.wait_prompt("0 torrents");
    sh.send("\x04");
    let status = sh.wait_exit();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}
