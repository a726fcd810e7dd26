//! Telling the service manager how the daemon stands: systemd's notification protocol (a
//! `Type=notify` unit, `sd_notify(3)`), spoken over a Unix datagram socket with no library.
//!
//! systemd names its socket in `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace) and
//! asks for keep-alives in `WATCHDOG_USEC` (meant for the process `WATCHDOG_PID`, when set).
//! [`take_from_env`] reads them once, first thing in `main` while the process has one thread, and
//! takes them out of the environment, so the programs btorrent starts (the torrent hooks) cannot
//! speak for it.
//!
//! What `btorrent daemon` says (and `btorrent tracker`, with its own status):
//! - `READY=1` once everything listens (tracker, peer, RPC, control socket) and the managed torrents
//!   were handed to the session: units ordered after it start against a daemon that answers;
//! - `STATUS=<line>` when the line changes, looked at once a second: the totals the shell's prompt
//!   shows (`systemctl status` prints it);
//! - `WATCHDOG=1` at half the interval asked for, from a task of the async runtime, so a runtime
//!   that no longer makes progress misses them and systemd restarts it (`WatchdogSec=`);
//! - `RELOADING=1`, then `READY=1`, around a SIGHUP's reading of torrents.toml (the daemon);
//! - `STOPPING=1` when it begins to close (the transfers, handlers and `stopped` announces).
//!
//! Without `NOTIFY_SOCKET` there is no [`Notifier`] and nothing is sent. A message that cannot be
//! sent (the manager gone, its socket full) is dropped: the daemon never waits on its manager.
//!
//! When its standard output or error is the journal's stream (`JOURNAL_STREAM` names that
//! stream's device and inode, which [`goes_to_journal`] compares with the descriptor's own: a
//! redirection made after systemd started it is not taken for the journal), the daemon's lines
//! leave out their timestamp (the journal keeps its own) and its log lines say their level as an
//! `sd-daemon(3)` prefix (`<4>` a warning), which the journal records as the entry's priority.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What the environment asked for, read once by [`take_from_env`].
static FROM_ENV: OnceLock<Option<Arc<Notifier>>> = OnceLock::new();
/// The journal's stream (device, inode), from `JOURNAL_STREAM`.
static JOURNAL: OnceLock<Option<(u64, u64)>> = OnceLock::new();

/// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` and removes them from the
/// environment. Call it first in `main`, before any thread starts (the environment is changed).
/// A socket name that cannot be used is reported on stderr and ignored.
pub fn take_from_env() {
    // Left in the environment: a program started with its output on the same stream may use it.
    JOURNAL.get_or_init(|| journal_stream(std::env::var("JOURNAL_STREAM").ok().as_deref()));
    FROM_ENV.get_or_init(|| {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        for v in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            std::env::remove_var(v);
        }
        let socket = socket?;
        let watchdog = watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id());
        match Notifier::new(&socket.to_string_lossy(), watchdog) {
            Ok(n) => Some(Arc::new(n)),
            Err(e) => {
                eprintln!("btorrent: NOTIFY_SOCKET ignored: {e}");
                None
            }
        }
    });
}

/// The notifier the environment asked for, if any (after [`take_from_env`]).
pub fn notifier() -> Option<Arc<Notifier>> {
    FROM_ENV.get().cloned().flatten()
}

/// `JOURNAL_STREAM`'s `<device>:<inode>`.
fn journal_stream(value: Option<&str>) -> Option<(u64, u64)> {
    let (dev, ino) = value?.trim().split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

/// Whether `fd` (standard output or error) is the journal's stream: its device and inode are the
/// ones `JOURNAL_STREAM` named (after [`take_from_env`]).
pub fn goes_to_journal(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some(Some((dev, ino))) = JOURNAL.get() else {
        return false;
    };
    let Ok(own) = fd.try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(own)
        .metadata()
        .is_ok_and(|m| m.dev() == *dev && m.ino() == *ino)
}

/// The keep-alive interval asked for: `WATCHDOG_USEC` microseconds, when it is a positive number
/// and `WATCHDOG_PID`, if set, names this process (`pid`).
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, ours: u32) -> Option<Duration> {
    if pid.is_some_and(|p| p.trim().parse::<u32>().ok() != Some(ours)) {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// The address `NOTIFY_SOCKET` names: a file system path (absolute), or `@name` in Linux's
/// abstract namespace.
fn socket_addr(name: &str) -> io::Result<SocketAddr> {
    if let Some(abstract_name) = name.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        SocketAddr::from_abstract_name(abstract_name.as_bytes())
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is neither an absolute path nor an @abstract name"),
        ))
    }
}

/// Sends the daemon's state to the service manager (see the module docs).
pub struct Notifier {
    socket: UnixDatagram,
    to: SocketAddr,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// A notifier for the socket `name` (as `NOTIFY_SOCKET` gives it), asked for keep-alives every
    /// `watchdog` (if set).
    pub fn new(name: &str, watchdog: Option<Duration>) -> io::Result<Self> {
        let to = socket_addr(name)?;
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Notifier {
            socket,
            to,
            watchdog,
        })
    }

    /// Sends `state`: newline-separated `KEY=value` assignments. Failures are dropped.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.to) {
            tracing::debug!("service manager: not told {state:?}: {e}");
        }
    }

    /// Everything listens; `status` says how it stands.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// The daemon begins to close; `status` says what it does meanwhile.
    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }

    /// The keep-alive interval the manager asked for.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends `WATCHDOG=1` at half the asked interval from a task of `runtime` until it stops;
    /// nothing when no keep-alive was asked for.
    pub fn keep_alive(self: &Arc<Self>, runtime: &tokio::runtime::Handle) {
        let Some(every) = self.watchdog else { return };
        let me = self.clone();
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every / 2);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.send("WATCHDOG=1");
            }
        });
    }

    /// Sends `STATUS=` with what `line` gives, once a second when it changed, from a task of
    /// `runtime` until it stops. `line` runs on the blocking pool (it may read files).
    pub fn follow_status(
        self: &Arc<Self>,
        runtime: &tokio::runtime::Handle,
        line: impl Fn() -> String + Send + Sync + 'static,
    ) {
        let me = self.clone();
        let line = Arc::new(line);
        runtime.spawn(async move {
            let mut last = String::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let line = line.clone();
                let Ok(now) = tokio::task::spawn_blocking(move || line()).await else {
                    return;
                };
                if now != last {
                    me.status(&now);
                    last = now;
                }
            }
        });
    }
}

/// `s` with its line breaks made spaces: a newline would end the assignment.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r']).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(listener: &UnixDatagram) -> String {
        listener
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = listener.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn states_reach_a_path_socket_and_an_abstract_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(path.to_str().unwrap(), None).unwrap();
        n.ready("2 torrents\nseeding");
        assert_eq!(received(&listener), "READY=1\nSTATUS=2 torrents seeding");
        n.stopping("closing");
        assert_eq!(received(&listener), "STOPPING=1\nSTATUS=closing");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("btorrent-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::new(&format!("@{name}"), None).unwrap();
        n.status("ok");
        assert_eq!(received(&listener), "STATUS=ok");
    }

    #[test]
    fn a_gone_manager_costs_nothing_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let n = Notifier::new(dir.path().join("nobody").to_str().unwrap(), None).unwrap();
        n.ready("fine");
        for bad in ["", "relative/path", "vsock:2:1234"] {
            let e = Notifier::new(bad, None).err().expect(bad);
            assert!(e.to_string().contains("absolute path"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_journal_stream_is_a_device_and_an_inode() {
        assert_eq!(journal_stream(Some("8:1234567")), Some((8, 1234567)));
        assert_eq!(journal_stream(Some(" 0:42\n")), Some((0, 42)));
        for bad in [
            None,
            Some(""),
            Some("8"),
            Some("8:"),
            Some("x:1"),
            Some("8:1:2"),
        ] {
            assert_eq!(journal_stream(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_watchdog_is_for_the_process_it_names() {
        let d = |us| Some(Duration::from_micros(us));
        assert_eq!(watchdog_interval(Some("30000000"), None, 7), d(30_000_000));
        assert_eq!(watchdog_interval(Some("500000"), Some("7"), 7), d(500_000));
        assert_eq!(watchdog_interval(Some("500000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, Some("7"), 7), None);
    }
}
