//! Child processes a test starts: each held by a [`Proc`] that kills it (by its own handle, never by
//! name) and reaps it when the test ends, however it ends; commands run to completion with a deadline;
//! free loopback ports for the programs a test starts.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed and reaped when dropped unless it has already exited.
pub struct Proc {
    pub child: Child,
    /// Where its stdout and stderr go, for [`Proc::spawn_logged`].
    log: Option<PathBuf>,
}

impl Proc {
    /// Starts `cmd` with the standard streams it was given.
    pub fn spawn(cmd: &mut Command) -> Proc {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Proc { child, log: None }
    }

    /// Starts `cmd` with no stdin and its stdout and stderr in the file `log`.
    pub fn spawn_logged(cmd: &mut Command, log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let mut p = Proc::spawn(cmd);
        p.log = Some(log);
        p
    }

    /// What it wrote so far (empty without a log).
    pub fn log_text(&self) -> String {
        self.log
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l).ok())
            .unwrap_or_default()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Kills it now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Polls `done` until it holds; panics with the log after `secs`.
    pub async fn wait_until(
        &mut self,
        secs: u64,
        what: &str,
        mut done: impl FnMut(&mut Self) -> bool,
    ) {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "{what}: not within {secs} s; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for it to exit by itself, at most `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let mut status = None;
        self.wait_until(limit.as_secs().max(1), "the process to exit", |p| {
            status = p.exited();
            status.is_some()
        })
        .await;
        status.unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a command run with [`run`] printed, and how it ended.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` to completion within `timeout`, capturing its output; panics if it cannot start or runs
/// late (it is killed then).
pub fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let mut p = Proc::spawn(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = drain(Box::new(p.child.stdout.take().unwrap()));
    let err = drain(Box::new(p.child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = p.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{cmd:?} did not finish within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Like [`run`], and the command must succeed; returns its stdout.
pub fn run_ok(cmd: &mut Command, timeout: Duration) -> String {
    let out = run(cmd, timeout);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// Bytes the process has read so far (Linux `/proc/<pid>/io`; 0 when it cannot be read).
pub fn bytes_read(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("rchar: ")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

/// The environment variable `name` parsed as a `T`, or `default` when it is unset or does not parse
/// (knobs such as a fuzz run's seed and budget).
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A loopback port, free for TCP and UDP when asked, for a program that must be told its port.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`): a port that `bind(0)` hands
/// out and the test then frees is the same pool every outgoing connection draws from, so another
/// test's connect could take it before the program listens (seen as "Address already in use").
/// Below that range the kernel never hands a port out by itself; each test process walks its own
/// stretch (started from its pid), skipping ports something already holds.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let (low, high) = fixed_port_range();
    let span = u32::from(high - low);
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        // Processes started together get stretches far apart: pids differ by small steps.
        let start = std::process::id().wrapping_mul(2_654_435_761) % span;
        let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    }
    for _ in 0..span {
        let port = low + (NEXT.fetch_add(1, Ordering::Relaxed) % span) as u16;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {low}..{high}");
}

/// Ports the kernel never picks by itself: the stretch just below its ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 unless set otherwise).
fn fixed_port_range() -> (u16, u16) {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let high = ephemeral_low.max(12_000);
    (high - 10_000, high)
}
