//! `btorrent daemon` and `btorrent tracker` run by systemd as `Type=notify` services: the test is
//! the service manager, a datagram socket named in `NOTIFY_SOCKET`. `READY=1` once the daemon
//! answers, `STATUS=` as its figures change, `WATCHDOG=1` while it lives, `RELOADING=1` and
//! `READY=1` around a SIGHUP (which it survives), `STOPPING=1` when it closes; the programs it
//! starts do not inherit the socket. On the journal's stream its lines drop their timestamps and
//! its warnings carry their priority.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::cli::{bin, ok};
use crate::support::{write_tree, Proc};

/// The service manager's end: what the process under test sends, in order.
struct Manager {
    socket: UnixDatagram,
    heard: Vec<String>,
}

impl Manager {
    fn bind(path: &Path) -> Manager {
        let socket = UnixDatagram::bind(path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Manager {
            socket,
            heard: Vec::new(),
        }
    }

    /// Reads messages until one satisfies `done` (returned), within `within`.
    fn until(&mut self, what: &str, within: Duration, done: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + within;
        let mut buf = vec![0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.socket.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.heard.push(m.clone());
                if done(&m) {
                    return m;
                }
            }
        }
        panic!(
            "no message {what} within {within:?}; heard {:?}",
            self.heard
        );
    }

    fn count(&self, message: &str) -> usize {
        self.heard.iter().filter(|m| *m == message).count()
    }
}

/// Sends SIGHUP to `p` and waits for the manager to hear it reload: `RELOADING=1`, then `READY=1`.
fn reload(manager: &mut Manager, p: &Proc) {
    // SAFETY: a signal to our own child, identified by the pid we hold.
    assert_eq!(unsafe { libc::kill(p.child.id() as i32, libc::SIGHUP) }, 0);
    manager.until("RELOADING=1", Duration::from_secs(30), |m| {
        m == "RELOADING=1"
    });
    manager.until("READY=1 again", Duration::from_secs(30), |m| m == "READY=1");
}

fn status_of(m: &str) -> Option<&str> {
    m.lines().find_map(|l| l.strip_prefix("STATUS="))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_says_when_it_is_ready_how_it_stands_that_it_lives_and_when_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A program run when a torrent is added: it writes down the environment it was given.
    let hook = root.join("added.sh");
    let env_file = root.join("hook-env.txt");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nenv > '{}.tmp' && mv '{0}.tmp' '{0}'\n",
            env_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        root.join("torrents.toml"),
        format!(
            "[settings]\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\n\
             tracker_bind = \"127.0.0.1:0\"\n\
             torrent_added_program = \"{}\"\ntorrent_added_program_enabled = true\n",
            hook.display()
        ),
    )
    .unwrap();
    let mut manager = Manager::bind(&root.join("notify.sock"));
    let mut daemon = Proc::spawn_logged(
        bin()
            .arg("daemon")
            .env("NOTIFY_SOCKET", root.join("notify.sock"))
            .env("WATCHDOG_USEC", "400000")
            .current_dir(root),
        root.join("daemon.log"),
    );

    // Ready: by then it answers on its control socket and has logged that it runs.
    let ready = manager.until("READY=1", Duration::from_secs(30), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    assert_eq!(status_of(&ready), Some("0 torrents"), "{ready}");
    assert!(UnixStream::connect(root.join(".btorrent/control.sock")).is_ok());
    assert!(daemon
        .log_text()
        .contains("running; SIGINT or SIGTERM stops"));

    // A torrent shared meanwhile: the status follows.
    write_tree(root, &[("share/a.bin", 100_000)]);
    ok(root, &["create", "share"]);
    let now = manager.until("a status with the torrent", Duration::from_secs(30), |m| {
        status_of(m).is_some_and(|s| s.starts_with("1 torrent · "))
    });
    assert!(status_of(&now).unwrap().contains(" peers"), "{now}");
    // Keep-alives all along, at half the 0.4 s asked for.
    let alive = std::cell::Cell::new(manager.count("WATCHDOG=1"));
    manager.until("a third keep-alive", Duration::from_secs(30), |m| {
        alive.set(alive.get() + usize::from(m == "WATCHDOG=1"));
        alive.get() >= 3
    });

    // The program run for the new torrent did not get the daemon's socket.
    crate::support::wait_until("the hook to run", Duration::from_secs(30), || {
        env_file.exists()
    })
    .await;
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(env.contains("TR_TORRENT_NAME=share"), "{env}");
    for v in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        assert!(!env.contains(v), "the hook inherited {v}: {env}");
    }

    // SIGHUP (`systemctl reload`): torrents.toml read again, said to the manager, and the daemon
    // goes on (the signal's default action would end it).
    reload(&mut manager, &daemon);
    assert!(daemon
        .log_text()
        .contains("SIGHUP: torrents.toml read again; its changes apply now"));
    let alive = std::cell::Cell::new(0);
    manager.until(
        "keep-alives after the reload",
        Duration::from_secs(30),
        |m| {
            alive.set(alive.get() + usize::from(m == "WATCHDOG=1"));
            alive.get() >= 2
        },
    );
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "SIGHUP ended it"
    );
    assert!(UnixStream::connect(root.join(".btorrent/control.sock")).is_ok());

    // A file broken by a hand edit: said so, and the daemon goes on as it was.
    let toml = root.join("torrents.toml");
    let good = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(&toml, format!("{good}\nthis is [ not toml\n")).unwrap();
    reload(&mut manager, &daemon);
    let said = "SIGHUP: torrents.toml cannot be read, nothing changes until it can";
    assert!(daemon.log_text().contains(said), "{}", daemon.log_text());
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "a broken file ended it"
    );
    std::fs::write(&toml, good).unwrap();

    // Stopping: said before it closes, and it exits 0.
    let pid = daemon.child.id() as i32;
    // SAFETY: a signal to our own child, identified by the pid we hold.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let stopping = manager.until("STOPPING=1", Duration::from_secs(30), |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    assert!(status_of(&stopping).is_some_and(|s| s.starts_with("stopping")));
    let status = daemon.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}: {}", daemon.log_text());
}

/// The tracker alone under systemd, its socket in the abstract namespace (`@name`): ready, its
/// counts, a SIGHUP survived, stopping.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_alone_says_when_it_is_ready_reloads_and_stops() {
    use std::os::linux::net::SocketAddrExt as _;
    let dir = tempfile::tempdir().unwrap();
    let root = crate::support::cli::loopback_home(dir.path());
    let name = format!(
        "btorrent-test-notify-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    );
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut manager = Manager {
        socket,
        heard: Vec::new(),
    };
    let mut tracker = Proc::spawn_logged(
        bin()
            .args(["tracker", "--bind", "127.0.0.1:0"])
            .env("NOTIFY_SOCKET", format!("@{name}"))
            .current_dir(&root),
        root.join("tracker.log"),
    );
    let ready = manager.until("READY=1", Duration::from_secs(30), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    let status = status_of(&ready).unwrap();
    assert!(
        status.starts_with("tracker on http://127.0.0.1:") && status.ends_with("/announce"),
        "{ready}"
    );
    // Its figures once a second after that; no keep-alives were asked for.
    manager.until("the tracker's figures", Duration::from_secs(30), |m| {
        status_of(m).is_some_and(|s| s.ends_with(": 0 torrents, 0 seeders, 0 leechers"))
    });
    // SIGHUP: torrents.toml read again (a private tracker's torrents follow at once); it goes on.
    reload(&mut manager, &tracker);
    assert!(tracker
        .log_text()
        .contains("SIGHUP: torrents.toml read again"));
    assert!(
        tracker.child.try_wait().unwrap().is_none(),
        "SIGHUP ended it"
    );
    let pid = tracker.child.id() as i32;
    // SAFETY: a signal to our own child, identified by the pid we hold.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    manager.until("STOPPING=1", Duration::from_secs(30), |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    let status = tracker.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "{status}: {}", tracker.log_text());
    assert_eq!(manager.count("WATCHDOG=1"), 0);
}

/// Under systemd with its output on the journal (`JOURNAL_STREAM` names that stream's device and
/// inode): the daemon's lines come without its timestamp (the journal keeps its own) and its
/// warnings with the `<4>` priority prefix the journal reads; output that is not that stream (a
/// redirection made since) keeps both as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_journal_lines_carry_no_timestamp_and_warnings_their_priority() {
    use std::os::unix::fs::MetadataExt as _;
    for journal in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("torrents.toml"),
            "[settings]\nlisten_ip = \"127.0.0.1\"\nlisten_port = 0\nblocklist = true\n",
        )
        .unwrap();
        // A list with a line that is no rule: a warning at start.
        write_tree(root, &[("blocklists/list.txt", 0)]);
        std::fs::write(
            root.join("blocklists/list.txt"),
            "10.0.0.0/24\nnot an address range\n",
        )
        .unwrap();
        let log = root.join("daemon.log");
        let meta = std::fs::File::create(&log).unwrap().metadata().unwrap();
        // The log file is created again in place below: the same inode.
        let ino = if journal { meta.ino() } else { meta.ino() + 1 };
        let mut daemon = Proc::spawn_logged(
            bin()
                .arg("daemon")
                .env("JOURNAL_STREAM", format!("{}:{ino}", meta.dev()))
                .current_dir(root),
            log,
        );
        let running = "running; SIGINT or SIGTERM stops, SIGHUP reads torrents.toml again";
        crate::support::wait_until("the daemon to run", Duration::from_secs(30), || {
            daemon.log_text().contains(running)
        })
        .await;
        let text = daemon.log_text();
        let warning = text
            .lines()
            .find(|l| l.contains("lines are not address ranges"))
            .unwrap_or_else(|| panic!("no warning: {text}"));
        if journal {
            assert!(text.lines().any(|l| l == running), "{text}");
            assert!(!text.contains("[20"), "{text}");
            assert!(warning.starts_with("<4>btorrent::blocklist: "), "{text}");
        } else {
            assert!(
                text.lines()
                    .any(|l| l.starts_with("[20") && l.ends_with(&format!("] {running}"))),
                "{text}"
            );
            assert!(
                !warning.starts_with('<') && warning.contains("WARN"),
                "{text}"
            );
        }
        let pid = daemon.child.id() as i32;
        // SAFETY: a signal to our own child, identified by the pid we hold.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let status = daemon.wait_exit(Duration::from_secs(20)).await;
        assert!(status.success(), "{status}: {}", daemon.log_text());
    }
}
