//! The owner's side of the control channel: the socket beside torrents.toml, served from the owner's
//! running torrents. Each connection may send several requests, one line each; it is closed after
//! [`IO_TIMEOUT`] of silence, after a request line over [`MAX_REQUEST`] bytes, or when its peer is not
//! the user who owns the socket.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use futures::StreamExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use super::protocol::{Reply, Request, Running, IO_TIMEOUT, MAX_REQUEST};
use crate::script::live::LiveTorrents;
use crate::torrents::Torrents;
use crate::types::InfoHash;

/// Clients served at once; one more gets a "busy" reply.
pub const MAX_CONNECTIONS: usize = 16;

/// The socket file this owner made, removed only while it is still that file (a later owner may have
/// replaced it).
#[derive(Debug, Clone)]
pub struct SocketFile {
    pub path: PathBuf,
    ino: u64,
}

impl SocketFile {
    /// Removes the socket if it is still the one this owner made.
    pub fn remove(&self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// What the socket serves: the owner's running torrents, and its torrents.toml, where it records
/// what a client's pause, resume, limits or choice of files leave (see [`act_and_record`]).
#[derive(Clone)]
struct Owner {
    live: Arc<dyn LiveTorrents>,
    torrents: Torrents,
}

/// A running control socket; dropping it stops serving and removes the socket file.
pub struct Server {
    file: SocketFile,
    task: JoinHandle<()>,
}

impl Server {
    /// Serves `live` on the socket of `config_path` ([`super::socket_path`]), `torrents` being
    /// that file's service in this process. Call within the tokio runtime. Fails when another
    /// owner answers on the socket, or the socket cannot be made.
    pub fn start(
        config_path: &Path,
        live: Arc<dyn LiveTorrents>,
        torrents: Torrents,
    ) -> Result<Server> {
        let path = super::socket_path(config_path);
        let dir = path.parent().expect("the socket is in .btorrent");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        clear_stale(&path, config_path)?;
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
        let meta = std::fs::symlink_metadata(&path)?;
        let file = SocketFile {
            path,
            ino: meta.ino(),
        };
        let owner = Owner { live, torrents };
        let task = tokio::spawn(accept_loop(listener, owner, meta.uid()));
        Ok(Server { file, task })
    }

    pub fn socket(&self) -> &SocketFile {
        &self.file
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        self.file.remove();
    }
}

/// Removes a socket nobody answers on (its owner was killed); fails if an owner answers, or if the
/// path holds something that is not a socket.
fn clear_stale(path: &Path, config_path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt as _;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        bail!("{} exists and is not a socket", path.display());
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!(
            "another btorrent (shell or daemon) already runs for {}; one-shot commands act on that one",
            config_path.display()
        );
    }
    std::fs::remove_file(path)
        .with_context(|| format!("cannot replace the stale {}", path.display()))
}

async fn accept_loop(listener: UnixListener, owner: Owner, uid: u32) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let mut stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        // The socket is 0600 already; a peer of another user (root aside) never gets this far.
        if stream.peer_cred().map(|c| c.uid()).ok() != Some(uid) {
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let line = Reply::error("busy: too many control connections").to_line();
                let _ = tokio::time::timeout(IO_TIMEOUT, stream.write_all(line.as_bytes())).await;
            });
            continue;
        };
        let owner = owner.clone();
        tokio::spawn(async move {
            serve(stream, owner).await;
            drop(slot);
        });
    }
}

/// Answers one connection's requests until it closes, goes quiet or misbehaves.
async fn serve(stream: UnixStream, owner: Owner) {
    let (read, mut write) = stream.into_split();
    let mut lines = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_REQUEST));
    loop {
        let (reply, last) = match tokio::time::timeout(IO_TIMEOUT, lines.next()).await {
            Err(_) | Ok(None) => return,
            Ok(Some(Ok(line))) => (answer(&line, &owner).await, false),
            Ok(Some(Err(LinesCodecError::MaxLineLengthExceeded))) => (
                Reply::error(format!("request longer than {MAX_REQUEST} bytes")),
                true,
            ),
            Ok(Some(Err(LinesCodecError::Io(e)))) => {
                (Reply::error(format!("bad request: {e}")), true)
            }
        };
        let sent =
            tokio::time::timeout(IO_TIMEOUT, write.write_all(reply.to_line().as_bytes())).await;
        if last || !matches!(sent, Ok(Ok(()))) {
            return;
        }
    }
}

/// The reply to one request line.
async fn answer(line: &str, owner: &Owner) -> Reply {
    let live = owner.live.as_ref();
    let req: Request = match serde_json::from_str(line) {
        Ok(r) => r,
        Err(e) => {
            let mut msg = e.to_string();
            msg.truncate(200);
            return Reply::error(format!("bad request: {msg}"));
        }
    };
    let hash = |h: &str| {
        InfoHash::from_hex(h).ok_or_else(|| "info_hash must be 40 hex digits".to_string())
    };
    let result = match req {
        Request::List {} => {
            let torrents = live
                .all()
                .into_iter()
                .map(|(ih, mut stats)| {
                    // The client may run in another folder: paths are sent absolute.
                    if let Ok(p) = std::path::absolute(&stats.data_dir) {
                        stats.data_dir = p;
                    }
                    Running {
                        info_hash: ih.to_hex(),
                        stats,
                    }
                })
                .collect();
            return Reply {
                ok: true,
                torrents: Some(torrents),
                ..Default::default()
            };
        }
        Request::Fetching {} => {
            return Reply {
                ok: true,
                fetching: Some(live.fetching()),
                ..Default::default()
            };
        }
        Request::Dht {} => {
            return Reply {
                ok: true,
                dht: live.dht().await.map(Box::new),
                ..Default::default()
            };
        }
        Request::PortForwarding {} => {
            return Reply {
                ok: true,
                port_forwarding: live.port_forwarding().await.map(Box::new),
                ..Default::default()
            };
        }
        Request::Blocklist {} => {
            return Reply {
                ok: true,
                ranges: live.blocklist_ranges().await,
                ..Default::default()
            };
        }
        // What one torrent has to show: `found` says whether it runs here.
        Request::Peers { info_hash } => {
            return hash(&info_hash).map_or_else(Reply::error, |ih| {
                let c = live.connections(&ih);
                Reply {
                    found: Some(c.is_some()),
                    web_seeds: c.as_ref().map(|c| c.web_seeds.clone()),
                    peers: c.map(|c| c.peers),
                    ..Reply::found(true)
                }
            });
        }
        Request::Trackers { info_hash } => {
            return hash(&info_hash).map_or_else(Reply::error, |ih| {
                let trackers = live.trackers(&ih);
                Reply {
                    found: Some(trackers.is_some()),
                    trackers,
                    ..Reply::found(true)
                }
            });
        }
        Request::Pause { info_hash } => act_on(owner, hash(&info_hash), Command::Pause).await,
        Request::Resume { info_hash } => act_on(owner, hash(&info_hash), Command::Resume).await,
        Request::Reannounce { info_hash } => hash(&info_hash).map(|ih| Ok(live.reannounce(&ih))),
        Request::SetLimits { info_hash, limits } => {
            act_on(owner, hash(&info_hash), Command::Limits(limits)).await
        }
        Request::SetTrackers { info_hash, tiers } => {
            hash(&info_hash).map(|ih| live.set_trackers(&ih, tiers))
        }
        Request::Remove { info_hash, after } => match hash(&info_hash) {
            Ok(ih) => Ok(live.remove(ih, after).await),
            Err(r) => Err(r),
        },
        Request::Relocate { dir, .. } if !dir.is_absolute() => {
            return Reply::error("dir must be an absolute path")
        }
        Request::Relocate { info_hash, dir } => {
            return match hash(&info_hash) {
                Ok(ih) => {
                    let r = live.relocate(ih, dir.clone()).await;
                    if matches!(r, Ok(Some(_))) {
                        record_data_dir(owner, ih, dir).await;
                    }
                    checked(r)
                }
                Err(r) => Reply::error(r),
            };
        }
        Request::RenamePath {
            info_hash,
            path,
            name,
        } => {
            return match hash(&info_hash) {
                Ok(ih) => match live.rename_path(ih, path, name).await {
                    Ok(paths) => Reply {
                        found: Some(paths.is_some()),
                        paths,
                        ..Reply::found(true)
                    },
                    Err(e) => Reply::error(format!("{e:#}")),
                },
                Err(r) => Reply::error(r),
            };
        }
        Request::Check { info_hash } => {
            return match hash(&info_hash) {
                Ok(ih) => checked(live.check(ih).await),
                Err(r) => Reply::error(r),
            };
        }
        Request::Add(h) if !h.torrent.is_absolute() || !h.data_dir.is_absolute() => {
            Err("add: torrent and data_dir must be absolute paths".to_string())
        }
        Request::Add(h) => Ok(live.add_managed(h).await),
        Request::ChooseFiles {
            info_hash,
            changes,
            order,
        } => match hash(&info_hash) {
            Ok(ih) => Ok(choose_and_record(owner, ih, changes, order).await),
            Err(r) => Err(r),
        },
        Request::MoveTo { info_hash, dir } => match hash(&info_hash) {
            Ok(_) if !dir.is_absolute() => Err("dir must be an absolute path".to_string()),
            Ok(ih) => {
                let moved = live.move_to(ih, dir.clone()).await;
                if matches!(moved, Ok(true)) {
                    record_data_dir(owner, ih, dir).await;
                }
                Ok(moved)
            }
            Err(r) => Err(r),
        },
    };
    match result {
        Ok(Ok(found)) => Reply::found(found),
        Ok(Err(e)) => Reply::error(format!("{e:#}")),
        Err(message) => Reply::error(message),
    }
}

/// A client's command that torrents.toml records.
#[derive(Clone, Copy)]
enum Command {
    Pause,
    /// At once: the client went through the queues.
    Resume,
    Limits(crate::engine::TorrentLimits),
}

/// A client's pause, resume or limits for a torrent that runs here, done and recorded here as the
/// command does it ([`crate::actions::pause`], [`crate::actions::resume_now`],
/// [`crate::actions::set_limits`]); the client records the same after. The entry written is then
/// the owner's own: a record by the client alone would be a change by someone else, which the
/// owner's next look at torrents.toml applies as a hand edit, and a look that came after the
/// client's next command (a pause read after the resume that followed it) undid that command.
/// False when the torrent does not run here.
async fn act_and_record(owner: &Owner, ih: InfoHash, command: Command) -> bool {
    let Some(name) = owner.live.stats(&ih).map(|s| s.name) else {
        return false;
    };
    let (live, torrents) = (owner.live.clone(), owner.torrents.clone());
    let done = tokio::task::spawn_blocking(move || {
        let live = live.as_ref();
        match command {
            Command::Pause => crate::actions::pause(&torrents, live, &ih, &name),
            Command::Resume => crate::actions::resume_now(&torrents, live, &ih, &name),
            Command::Limits(l) => crate::actions::set_limits(&torrents, live, &ih, &name, l),
        }
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        // Running but not managed (a one-shot's `seed` handed over unregistered): nothing to record.
        Ok(Err(e)) => tracing::debug!("{ih}: not recorded: {e:#}"),
        Err(e) => tracing::warn!("{ih}: {e}"),
    }
    true
}

/// [`act_and_record`] on the torrent a request names, or why it names none.
async fn act_on(
    owner: &Owner,
    ih: Result<InfoHash, String>,
    command: Command,
) -> Result<anyhow::Result<bool>, String> {
    Ok(Ok(act_and_record(owner, ih?, command).await))
}

/// A client's choice of files for a torrent that runs here, put in force (its errors are the
/// client's) and recorded here, for the reason [`act_and_record`] gives; the client records the
/// same after ([`crate::actions::choose_files`]).
async fn choose_and_record(
    owner: &Owner,
    ih: InfoHash,
    changes: Vec<(usize, crate::engine::FilePriority)>,
    order: crate::actions::OrderChange,
) -> anyhow::Result<bool> {
    let Some(stats) = owner.live.stats(&ih) else {
        return Ok(false);
    };
    if !owner.live.choose_files(&ih, changes.clone(), order)? {
        return Ok(false);
    }
    let torrents = owner.torrents.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        let n = stats.files.len();
        crate::actions::record_file_choice(&torrents, &ih, &stats.name, n, &changes, order)
    })
    .await;
    if let Ok(Err(e)) = recorded {
        tracing::debug!("{ih}: not recorded: {e:#}");
    }
    Ok(true)
}

/// Records the folder a client's command put a torrent's data in, here where torrents.toml is
/// owned ([`crate::actions::record_data_dir`]): the client's own record of it then changes nothing.
async fn record_data_dir(owner: &Owner, ih: InfoHash, dir: std::path::PathBuf) {
    let torrents = owner.torrents.clone();
    let recorded = tokio::task::spawn_blocking(move || {
        let name = ih.to_string();
        crate::actions::record_data_dir(&torrents, &ih, &name, &dir)
    })
    .await;
    if let Ok(Err(e)) = recorded {
        tracing::debug!("{ih}: its folder not recorded: {e:#}");
    }
}

/// The reply to a request that checks a torrent's data: its report, or `found: false` when the
/// torrent does not run here.
fn checked(r: anyhow::Result<Option<crate::engine::CheckReport>>) -> Reply {
    match r {
        Ok(report) => Reply {
            found: Some(report.is_some()),
            check: report.map(Box::new),
            ..Reply::found(true)
        },
        Err(e) => Reply::error(format!("{e:#}")),
    }
}
