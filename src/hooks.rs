//! Programs run on torrent events, as Transmission runs its `script-torrent-added`,
//! `script-torrent-done` and `script-torrent-done-seeding`: torrents.toml's `torrent_added_program`,
//! `torrent_done_program` and `torrent_done_seeding_program` (each kept but not run while its
//! `_enabled` is false). The shell or daemon runs one when a torrent is added (new to this run: not
//! one it resumed at its start), completes its download (not a check that finds data already
//! complete; for one kept in the incomplete folder, once its data is in its own folder:
//! [`crate::incomplete`]), or is stopped by a seeding goal. The settings are read at each event, so a change
//! (a hand edit, the RPC's `session-set`) applies to the next one.
//!
//! The program runs in `/`, with no arguments, and the torrent in its environment under
//! Transmission's names ([`environment`]). Nobody waits for it: each line it prints goes to the log,
//! and its end too (a failure as a warning); it is not killed when the shell or daemon stops. One
//! that cannot be started is a warning, and the torrent goes on as if there were none.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::events::{Event, EventBus};
use crate::services::PeerSlot;
use crate::types::InfoHash;

/// When a program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// A torrent was added.
    Added,
    /// A torrent completed its download.
    Done,
    /// A seeding goal stopped a torrent.
    DoneSeeding,
}

impl Hook {
    pub const ALL: [Hook; 3] = [Hook::Added, Hook::Done, Hook::DoneSeeding];

    /// The program's path and its switch in the settings.
    pub fn setting(self, s: &Settings) -> (&Option<PathBuf>, Option<bool>) {
        match self {
            Hook::Added => (&s.torrent_added_program, s.torrent_added_program_enabled),
            Hook::Done => (&s.torrent_done_program, s.torrent_done_program_enabled),
            Hook::DoneSeeding => (
                &s.torrent_done_seeding_program,
                s.torrent_done_seeding_program_enabled,
            ),
        }
    }

    /// The same, to change.
    pub fn setting_mut(self, s: &mut Settings) -> (&mut Option<PathBuf>, &mut Option<bool>) {
        match self {
            Hook::Added => (
                &mut s.torrent_added_program,
                &mut s.torrent_added_program_enabled,
            ),
            Hook::Done => (
                &mut s.torrent_done_program,
                &mut s.torrent_done_program_enabled,
            ),
            Hook::DoneSeeding => (
                &mut s.torrent_done_seeding_program,
                &mut s.torrent_done_seeding_program_enabled,
            ),
        }
    }

    /// The program to run now, if one is set and switched on.
    pub fn program(self, s: &Settings) -> Option<&Path> {
        match self.setting(s) {
            (Some(p), on) if on != Some(false) && !p.as_os_str().is_empty() => Some(p),
            _ => None,
        }
    }

    /// What the log calls it.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Added => "torrent_added_program",
            Hook::Done => "torrent_done_program",
            Hook::DoneSeeding => "torrent_done_seeding_program",
        }
    }
}

/// Whether `path` names a program that can be run: a file with an execute bit. The reason when not.
pub fn check_program(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(()),
        Ok(m) if m.is_file() => Err(format!("{} is not executable", path.display())),
        Ok(_) => Err(format!("{} is not a file", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// What the program is told of the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub name: String,
    pub info_hash: InfoHash,
    /// The folder holding its file or top folder.
    pub dir: PathBuf,
    pub bytes_downloaded: u64,
    pub labels: Vec<String>,
    /// Its trackers' URLs.
    pub trackers: Vec<String>,
    /// Its id in the RPC, when the RPC runs.
    pub id: Option<i64>,
}

/// The program's environment, under Transmission's names: `TR_APP_VERSION`, `TR_TIME_LOCALTIME`,
/// `TR_TORRENT_BYTES_DOWNLOADED`, `TR_TORRENT_DIR`, `TR_TORRENT_HASH`, `TR_TORRENT_ID` (only while
/// the RPC runs), `TR_TORRENT_LABELS` (comma-separated), `TR_TORRENT_NAME` and `TR_TORRENT_TRACKERS`
/// (its trackers' hosts, comma-separated).
pub fn environment(t: &Facts, local_time: String) -> Vec<(&'static str, String)> {
    let hosts: Vec<String> = t
        .trackers
        .iter()
        .filter_map(|u| reqwest::Url::parse(u).ok()?.host_str().map(str::to_string))
        .collect();
    let mut env = vec![
        (
            "TR_APP_VERSION",
            format!("btorrent {}", env!("CARGO_PKG_VERSION")),
        ),
        ("TR_TIME_LOCALTIME", local_time),
        (
            "TR_TORRENT_BYTES_DOWNLOADED",
            t.bytes_downloaded.to_string(),
        ),
        ("TR_TORRENT_DIR", t.dir.display().to_string()),
        ("TR_TORRENT_HASH", t.info_hash.to_hex()),
        ("TR_TORRENT_LABELS", t.labels.join(",")),
        ("TR_TORRENT_NAME", t.name.clone()),
        ("TR_TORRENT_TRACKERS", hosts.join(",")),
    ];
    if let Some(id) = t.id {
        env.push(("TR_TORRENT_ID", id.to_string()));
    }
    env
}

/// The local time as Transmission writes it (`Sat Dec 05 13:40:00 2026`).
fn local_time() -> String {
    let now = libc::time_t::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
    .unwrap_or(0);
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let mut buf = [0u8; 64];
    // SAFETY: `tm` and `buf` are ours and large enough; strftime writes at most `buf.len()` bytes
    // and returns how many it wrote (0 if they did not fit).
    let n = unsafe {
        if libc::localtime_r(&now, &mut tm).is_null() {
            return String::new();
        }
        libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%a %b %d %T %Y".as_ptr(),
            &tm,
        )
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Gives the RPC's id of a torrent, when the RPC runs.
pub type IdOf = Arc<dyn Fn(&InfoHash) -> Option<i64> + Send + Sync>;

/// Starts the task that runs the programs for the events of `peer`'s session published on `bus`
/// (from the moment it starts); it runs until aborted or the bus closes. `id_of` gives the RPC's
/// ids.
pub fn spawn(peer: PeerSlot, bus: &EventBus, id_of: Option<IdOf>) -> JoinHandle<()> {
    let mut events = bus.subscribe();
    // Torrents this run already had (resumed at its start, or re-added by the watch folder) are
    // not new: their additions run nothing.
    let mut known: std::collections::HashSet<InfoHash> = peer
        .torrents()
        .config()
        .map(|c| c.torrents.iter().filter_map(|t| t.hash()).collect())
        .unwrap_or_default();
    if let Some(s) = peer.current() {
        known.extend(s.torrents().iter().map(|h| h.info_hash()));
    }
    tokio::spawn(async move {
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("{n} events were lost before their programs could run");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            use crate::engine::Event as E;
            let (hook, ih) = match &ev {
                Event::Engine(E::Added { info_hash, .. }) => {
                    if !known.insert(*info_hash) {
                        continue;
                    }
                    (Hook::Added, *info_hash)
                }
                Event::Engine(E::Removed { info_hash, .. }) => {
                    known.remove(info_hash);
                    continue;
                }
                Event::Engine(E::Completed { info_hash, .. }) => (Hook::Done, *info_hash),
                Event::SeedGoalReached { info_hash, .. } => (Hook::DoneSeeding, *info_hash),
                _ => continue,
            };
            let Ok(cfg) = peer.torrents().config() else {
                continue;
            };
            if hook.program(&cfg.settings).is_none() {
                continue;
            }
            let moving = cfg.find(&ih).is_some_and(|e| e.complete_dir.is_some());
            if hook == Hook::Done && moving {
                // Its data is still to move out of the incomplete folder: the program runs once
                // it is in its own folder.
                let (peer, id_of) = (peer.clone(), id_of.clone());
                tokio::spawn(async move {
                    if moved(&peer, &ih).await {
                        run_now(&peer, hook, &ih, id_of.as_ref());
                    }
                });
                continue;
            }
            run_now(&peer, hook, &ih, id_of.as_ref());
        }
    })
}

/// How long a completed download's program waits for its data to leave the incomplete folder.
const MOVE_WAIT: Duration = Duration::from_secs(3600);

/// Waits until torrent `ih`'s entry no longer has a move pending ([`crate::incomplete`]); false if
/// the entry went, or [`MOVE_WAIT`] passed, first.
async fn moved(peer: &PeerSlot, ih: &InfoHash) -> bool {
    let end = tokio::time::Instant::now() + MOVE_WAIT;
    let mut changes = peer.torrents().subscribe();
    loop {
        match peer
            .torrents()
            .config()
            .ok()
            .as_ref()
            .and_then(|c| c.find(ih).cloned())
        {
            Some(e) if e.complete_dir.is_none() => return true,
            None => return false,
            Some(_) => {}
        }
        match tokio::time::timeout_at(end, changes.changed()).await {
            Ok(Ok(())) => {}
            // The list is gone with the service.
            Ok(Err(_)) => return false,
            Err(_) => {
                tracing::warn!(
                    "{ih}: its data did not leave the incomplete folder; its program did not run"
                );
                return false;
            }
        }
    }
}

/// Runs `hook`'s program (as the settings say now) for torrent `ih` (as it is now).
fn run_now(peer: &PeerSlot, hook: Hook, ih: &InfoHash, id_of: Option<&IdOf>) {
    let Ok(cfg) = peer.torrents().config() else {
        return;
    };
    let Some(program) = hook.program(&cfg.settings).map(Path::to_path_buf) else {
        return;
    };
    if let Some(facts) = facts(peer, &cfg, ih, id_of) {
        run(hook, program, &facts);
    }
}

/// What the program is told of torrent `ih` now (`None` once it has gone from the session).
fn facts(
    peer: &PeerSlot,
    cfg: &crate::config::Config,
    ih: &InfoHash,
    id_of: Option<&IdOf>,
) -> Option<Facts> {
    let h = peer.current()?.get(ih)?;
    let stats = h.stats();
    let entry = cfg.find(ih);
    Some(Facts {
        name: entry.map_or(stats.name.clone(), |e| e.name.clone()),
        info_hash: *ih,
        dir: stats.data_dir.clone(),
        bytes_downloaded: stats.downloaded,
        labels: entry.map(|e| e.labels.clone()).unwrap_or_default(),
        trackers: h.trackers(),
        id: id_of.and_then(|f| f(ih)),
    })
}

/// Starts `program` for `t` and leaves it running, its output and end logged by a task of its own.
fn run(hook: Hook, program: PathBuf, t: &Facts) {
    let mut cmd = tokio::process::Command::new(&program);
    cmd.current_dir("/")
        .envs(environment(t, local_time()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(
                "{}: cannot run {} for {}: {e}",
                hook.name(),
                program.display(),
                t.name
            );
            return;
        }
    };
    tracing::info!(
        "{}: running {} for {}",
        hook.name(),
        program.display(),
        t.name
    );
    let name = t.name.clone();
    let shown = program.display().to_string();
    let (out, err) = (child.stdout.take(), child.stderr.take());
    tokio::spawn(async move {
        let log_lines = |r: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| {
            let shown = shown.clone();
            async move {
                let Some(r) = r else { return };
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::info!("{shown}: {line}");
                }
            }
        };
        let out = out.map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
        let err = err.map(|e| Box::new(e) as Box<dyn tokio::io::AsyncRead + Unpin + Send>);
        tokio::join!(log_lines(out), log_lines(err));
        match child.wait().await {
            Ok(s) if s.success() => tracing::info!("{shown} for {name}: done"),
            Ok(s) => tracing::warn!("{shown} for {name}: {s}"),
            Err(e) => tracing::warn!("{shown} for {name}: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_names_the_torrent_as_transmission_does() {
        let t = Facts {
            name: "album".into(),
            info_hash: InfoHash([0xab; 20]),
            dir: PathBuf::from("/srv/music"),
            bytes_downloaded: 1234,
            labels: vec!["music".into(), "flac".into()],
            trackers: vec![
                "http://tracker.example:6969/announce".into(),
                "udp://[2001:db8::1]:1337".into(),
                "not a url".into(),
            ],
            id: Some(7),
        };
        let env: std::collections::HashMap<_, _> =
            environment(&t, "Sat Dec 05 13:40:00 2026".into())
                .into_iter()
                .collect();
        assert_eq!(env["TR_TORRENT_NAME"], "album");
        assert_eq!(env["TR_TORRENT_HASH"], "ab".repeat(20));
        assert_eq!(env["TR_TORRENT_DIR"], "/srv/music");
        assert_eq!(env["TR_TORRENT_BYTES_DOWNLOADED"], "1234");
        assert_eq!(env["TR_TORRENT_LABELS"], "music,flac");
        assert_eq!(env["TR_TORRENT_TRACKERS"], "tracker.example,[2001:db8::1]");
        assert_eq!(env["TR_TORRENT_ID"], "7");
        assert_eq!(env["TR_TIME_LOCALTIME"], "Sat Dec 05 13:40:00 2026");
        assert!(env["TR_APP_VERSION"].starts_with("btorrent "));
        let no_rpc = Facts { id: None, ..t };
        assert!(!environment(&no_rpc, String::new())
            .iter()
            .any(|(k, _)| *k == "TR_TORRENT_ID"));
        // Transmission's format: day, month, day of month, time, year.
        let now = local_time();
        assert_eq!(now.split(' ').count(), 5, "{now}");
    }

    #[test]
    fn a_program_runs_when_set_and_not_switched_off() {
        let mut s = Settings::default();
        assert_eq!(Hook::Done.program(&s), None);
        s.torrent_done_program = Some("/bin/true".into());
        assert_eq!(Hook::Done.program(&s), Some(Path::new("/bin/true")));
        s.torrent_done_program_enabled = Some(false);
        assert_eq!(Hook::Done.program(&s), None);
        assert_eq!(Hook::Added.program(&s), None);
        assert!(check_program(Path::new("/bin/sh")).is_ok());
        let plain = tempfile::NamedTempFile::new().unwrap();
        let plain = plain.path().to_str().unwrap();
        for (bad, says) in [
            ("relative", "absolute"),
            ("/", "not a file"),
            (plain, "not executable"),
            ("/no/such/program", "No such file"),
        ] {
            let e = check_program(Path::new(bad)).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
