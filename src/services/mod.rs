//! The long-running parts of btorrent assembled from torrents.toml, as the shell and the daemon run
//! them: the event bus, the embedded tracker, the peer session (seeding every managed torrent), the
//! seeding goals' task ([`crate::goals`]) and the watch folder (sharing through the peer session).
//! One-shot commands start only what their primitives need: the [`PeerSlot`] starts the session on
//! first use.
//!
//! The session publishes its events straight into the [`EventBus`] (its sink is
//! [`EventBus::engine_sink`]); the states they imply (seeding, error) are written back to
//! torrents.toml by one more subscriber of the bus (`states.rs`), so `b-show` and a restart see them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::engine::{AddOptions, Session, SessionConfig, TorrentState};
use crate::events::{Event, EventBus};
use crate::metainfo::Metainfo;
use crate::script::live::{AfterRemove, LiveTorrents};
use crate::torrents::Torrents;
use crate::types::InfoHash;
use crate::watch::{Sharing, WatchConfig, Watcher};
use futures::future::BoxFuture;

mod hand_edits;
mod layers_kept;
mod states;
mod tracker;
use states::record_engine_states;
pub use states::{record_state, record_states};
pub use tracker::{tracker_config, RunningTracker};

/// Which parts to start.
#[derive(Clone)]
pub struct ServicesOptions {
    /// Run the embedded tracker if `tracker_bind` is set.
    pub tracker: bool,
    /// Run the peer session and seed (or go on downloading) every managed torrent.
    pub peer: bool,
    /// Run the watch folder.
    pub watch: bool,
    /// What the watch folder shares through; `None` means the peer session.
    pub sharing: Option<Arc<dyn Sharing>>,
}

impl Default for ServicesOptions {
    fn default() -> Self {
        ServicesOptions {
            tracker: true,
            peer: true,
            watch: true,
            sharing: None,
        }
    }
}

/// Everything running in the background of a shell or daemon.
pub struct Services {
    pub config_path: PathBuf,
    pub bus: EventBus,
    pub tracker: Option<RunningTracker>,
    pub peer: PeerSlot,
    pub watch: Option<Watcher>,
    /// The task that stops torrents at their seeding goals ([`crate::goals`]).
    goals: JoinHandle<()>,
    /// The task that keeps the download and seeding queues ([`crate::queue`]).
    queue: JoinHandle<()>,
    /// The task that moves completed downloads out of the incomplete folder
    /// ([`crate::incomplete`]).
    incomplete: JoinHandle<()>,
    /// The task that follows the alternative limits' schedule ([`crate::alt_speed`]).
    alt_speed: JoinHandle<()>,
    /// The task that applies hand edits of the session's settings ([`crate::live_settings`]).
    live_settings: JoinHandle<()>,
    /// The task that publishes the published torrents again ([`crate::publishing`]).
    publishing: JoinHandle<()>,
    /// The task that follows the mutable links torrents came from ([`crate::following`]).
    following: JoinHandle<()>,
}

impl Services {
    /// Starts the parts `opts` asks for, as configured in `config_path`, publishing on `bus`. Managed
    /// torrents that cannot be resumed (missing .torrent, ...) are reported on the bus as errors; they
    /// do not stop the rest.
    pub async fn start(
        config_path: &Path,
        opts: ServicesOptions,
        bus: EventBus,
    ) -> Result<Services> {
        let torrents = Torrents::open(config_path);
        let cfg = torrents.config()?;
        // The one watcher of torrents.toml in this process.
        torrents.follow();
        let tracker = match (&cfg.settings.tracker_bind, opts.tracker) {
            (Some(_), true) => Some(RunningTracker::start_on(&torrents, None).await?),
            _ => None,
        };
        let peer = PeerSlot::with(torrents, bus.clone());
        if opts.peer {
            let session = peer.get_or_start().await?;
            // The queues' surplus waits from the start (this process keeps the queues).
            if !crate::queue::hold_surplus(&mut (*cfg).clone()).is_empty() {
                let held = peer
                    .torrents()
                    .update(|cfg| Ok(crate::queue::hold_surplus(cfg)))?;
                tracing::info!("queued (their queue is full): {}", held.join(", "));
            }
            resume_managed(&session, &*peer.torrents().config()?, &bus).await;
        }
        let watch = if opts.watch {
            let sharing = opts
                .sharing
                .unwrap_or_else(|| Arc::new(peer.clone()) as Arc<dyn Sharing>);
            Some(Watcher::start(
                WatchConfig::new(peer.torrents())?,
                sharing,
                bus.clone(),
            )?)
        } else {
            None
        };
        let goals = crate::goals::spawn(peer.clone(), bus.clone());
        let queue = crate::queue::spawn(peer.clone(), bus.clone());
        let incomplete = crate::incomplete::spawn(peer.clone(), &bus);
        let alt_speed = crate::alt_speed::spawn(peer.clone());
        let live_settings = crate::live_settings::spawn(peer.clone());
        let publishing = crate::publishing::spawn(peer.clone());
        let following = crate::following::spawn(peer.clone());
        Ok(Services {
            config_path: config_path.to_path_buf(),
            bus,
            tracker,
            peer,
            watch,
            goals,
            queue,
            incomplete,
            alt_speed,
            live_settings,
            publishing,
            following,
        })
    }

    /// The running torrents, as the script host and the shell's prompt see them.
    pub fn live(&self) -> Arc<dyn LiveTorrents> {
        Arc::new(self.peer.clone())
    }

    /// The managed torrents, as every part of this process sees them.
    pub fn torrents(&self) -> &Torrents {
        self.peer.torrents()
    }

    /// Records each running torrent's state (`downloading`, `seeding`, `paused`, ...) in torrents.toml,
    /// so the next start picks up where this one stopped. Writes the file even when nothing changed
    /// (a first run leaves a torrents.toml with every setting to edit).
    pub fn save_states(&self) -> Result<()> {
        save_states(self.torrents(), self.live().as_ref())
    }

    /// Stops everything, waiting at most `grace` for transfers and `stopped` announces to finish. The
    /// watch folder stops first, so it asks nothing of a session that is shutting down.
    pub async fn shutdown(mut self, grace: Duration) {
        self.goals.abort();
        self.queue.abort();
        self.incomplete.abort();
        self.alt_speed.abort();
        self.live_settings.abort();
        self.publishing.abort();
        self.following.abort();
        if let Some(w) = self.watch.take() {
            w.stop(grace).await;
        }
        self.peer.shutdown(grace).await;
        if let Some(t) = self.tracker.take() {
            let _ = tokio::time::timeout(grace, t.stop()).await;
        }
    }
}

/// Records each running torrent's state in torrents.toml (see [`Services::save_states`]).
pub fn save_states(torrents: &Torrents, live: &dyn LiveTorrents) -> Result<()> {
    let all = live.all();
    torrents.update(|cfg| {
        for (ih, stats) in &all {
            // `error: message` is kept as `error`; a torrent still checking keeps its old state.
            let state = stats.state.word();
            match cfg.find_mut(ih) {
                // Waiting in a queue: only the queue takes it out (recording what it starts), and
                // the engine may not have paused one it just queued.
                Some(t)
                    if t.state == crate::actions::QUEUED
                        && !matches!(stats.state, TorrentState::Error(_)) => {}
                Some(t) if stats.state != TorrentState::Checking => t.state = state.to_string(),
                _ => {}
            }
        }
        Ok(())
    })
}

/// The peer session of a process: set up by [`Services`], or started on first use by a one-shot
/// command's primitive. The session itself, and the membership lock, live in the [`Torrents`]
/// service; this starts the session, publishing into the slot's bus, and the recorder of its states. Cheap to clone; clones share the session.
#[derive(Clone)]
pub struct PeerSlot {
    torrents: Torrents,
    bus: EventBus,
    /// The tasks that write what the session's events imply (its states, derived layers): they
    /// end with the session, and [`PeerSlot::shutdown`] waits for them, so the last events of a
    /// process (a one-shot's torrent found complete) are in torrents.toml before it exits.
    recorders: Arc<parking_lot::Mutex<Vec<JoinHandle<()>>>>,
}

impl PeerSlot {
    /// A slot over a service of its own for `config_path` (a one-shot command, a test).
    pub fn new(config_path: &Path, bus: EventBus) -> PeerSlot {
        PeerSlot::with(Torrents::open(config_path), bus)
    }

    /// A slot over `torrents`, the process's service.
    pub fn with(torrents: Torrents, bus: EventBus) -> PeerSlot {
        PeerSlot {
            torrents,
            bus,
            recorders: Arc::default(),
        }
    }

    /// The download queue's memory ([`crate::queue`]).
    pub fn queue(&self) -> &crate::queue::TorrentQueue {
        self.torrents.queue()
    }

    /// The managed torrents this slot's session runs.
    pub fn torrents(&self) -> &Torrents {
        &self.torrents
    }

    /// Runs every torrent torrents.toml lists that the session does not run yet (except those
    /// marked `stopped`), as [`resume_managed`] does, one sync at a time and never during a removal.
    /// Nothing happens when no session runs.
    ///
    /// Then applies the hand edits of running torrents' entries ([`Torrents::take_edits`]) as the
    /// commands would: `paused` pauses, `stopped` stops (the entry kept), `downloading` or
    /// `seeding` resumes a paused one (through its queue, if one applies); its own limits, its
    /// bandwidth group and its choice of files are put in force; a new `data` folder is where its
    /// files are looked for and checked.
    pub async fn sync_managed(&self) {
        let set = self.torrents.membership().await;
        let Some(session) = self.get().await else {
            return;
        };
        // What another process registered a moment ago counts too (one `stat` when nothing did).
        match self.torrents.fresh() {
            Ok(cfg) => resume_managed(&session, &cfg, &self.bus).await,
            Err(e) => tracing::warn!("cannot read {}: {e:#}", self.torrents.path().display()),
        }
        drop(set);
        self.apply_hand_edits(&session).await;
    }

    /// Stops a torrent if the session runs it, and records in torrents.toml what `after` says, both
    /// under the membership lock. Ok(true) when it was running.
    pub async fn remove_managed(&self, ih: InfoHash, after: AfterRemove) -> Result<bool> {
        let _set = self.torrents.membership().await;
        let was_running = match self.get().await.filter(|s| s.get(&ih).is_some()) {
            Some(s) => {
                s.remove(&ih).await?;
                true
            }
            None => false,
        };
        let torrents = self.torrents.clone();
        tokio::task::spawn_blocking(move || match after {
            AfterRemove::Forget => torrents.update(|cfg| {
                cfg.remove(&ih);
                Ok(())
            }),
            AfterRemove::MarkStopped => record_state(&torrents, &ih, "stopped"),
            AfterRemove::Keep => Ok(()),
        })
        .await
        .context("the torrents.toml update failed")??;
        Ok(was_running)
    }

    /// The torrents.toml this slot's session runs.
    pub fn config_path(&self) -> &Path {
        self.torrents.path()
    }

    /// The session if one is running. A session being started is waited for (and is absent only if
    /// its start fails): "starting" is never mistaken for "none".
    pub async fn get(&self) -> Option<Session> {
        self.torrents.session().await
    }

    /// The session if one is running now, without waiting (for the prompt and other quick looks;
    /// a session still starting is not there yet).
    pub fn current(&self) -> Option<Session> {
        self.torrents.current_session()
    }

    /// The session, started from the settings if none runs yet.
    pub async fn get_or_start(&self) -> Result<Session> {
        let mut slot = self.torrents.session_slot().await;
        if let Some(s) = slot.slot.as_ref() {
            return Ok(s.clone());
        }
        let cfg = self.torrents.config()?;
        // Subscribed before the session starts, so the recorders hear its first event.
        let (rx, layers_rx) = (self.bus.subscribe(), self.bus.subscribe());
        let session = start_session(&cfg, &self.bus).await?;
        let states = tokio::spawn(record_engine_states(
            session.clone(),
            rx,
            self.torrents.clone(),
        ));
        let layers = tokio::spawn(layers_kept::keep_derived_layers(
            session.clone(),
            layers_rx,
            self.torrents.clone(),
        ));
        {
            let mut recorders = self.recorders.lock();
            recorders.retain(|t| !t.is_finished());
            recorders.extend([states, layers]);
        }
        slot.set(Some(session.clone()));
        Ok(session)
    }

    /// Stops the session if one runs: resume data saved, `stopped` announced, within `grace`; then
    /// waits (within `grace` again) for what its last events imply to be in torrents.toml.
    pub async fn shutdown(&self, grace: Duration) {
        let session = self.torrents.session_slot().await.set(None);
        if let Some(s) = session {
            s.shutdown(grace).await;
        }
        let recorders = std::mem::take(&mut *self.recorders.lock());
        let all = futures::future::join_all(recorders);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("the session's last states were not all recorded within {grace:?}");
        }
    }
}

/// The watch folder seeds and downloads through the peer session (started if none runs yet).
/// Asking for a torrent the session already has is not an error: a restart asks again for all.
impl Sharing for PeerSlot {
    fn seed<'a>(&'a self, meta: &'a Metainfo, data_dir: &'a Path) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.ensure(meta, data_dir))
    }

    fn download<'a>(
        &'a self,
        meta: &'a Metainfo,
        output_dir: &'a Path,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.ensure(meta, output_dir))
    }

    fn stop<'a>(&'a self, info_hash: &'a InfoHash) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match self.get().await {
                Some(s) if s.get(info_hash).is_some() => Ok(s.remove(info_hash).await?),
                _ => Ok(()),
            }
        })
    }

    fn fetch_magnet<'a>(
        &'a self,
        link: &'a str,
    ) -> BoxFuture<'a, Result<crate::watch::actions::Made>> {
        Box::pin(async move {
            let session = self.get_or_start().await?;
            let how = crate::source::Open {
                session: &session,
                // The watch folder's ledger writes the .torrent into torrents_dir itself.
                save_to: None,
                peers: Vec::new(),
                extra: None,
                timeout: crate::source::METADATA_TIMEOUT,
                cancel: tokio_util::sync::CancellationToken::new(),
            };
            let opened = crate::source::open(link, Some(how), |_| {}).await?;
            Ok((opened.meta, opened.mutable))
        })
    }
}

impl PeerSlot {
    /// Adds `meta` with its data in `data_dir` unless the session already has it. The engine checks
    /// what is there and fetches what is missing, so seeding and downloading are the same call.
    /// Its torrents.toml entry, when it has one, says the rest as at any start
    /// ([`entry_options`]): paused or queued, it is added paused; marked `stopped`, it is not added.
    async fn ensure(&self, meta: &Metainfo, data_dir: &Path) -> Result<()> {
        let session = self.get_or_start().await?;
        // Not between a sync's look and its add of the same torrent.
        let _set = self.torrents.membership().await;
        if session.get(&meta.info_hash).is_some() {
            return Ok(());
        }
        let cfg = self.torrents.config()?;
        let opts = match cfg.find(&meta.info_hash) {
            Some(e) if e.state == "stopped" => return Ok(()),
            Some(e) => {
                let mut opts = entry_options(&cfg, e, meta);
                // Its files are where torrents.toml says they were renamed to only in its own
                // folder.
                if std::path::absolute(&opts.data_dir).ok() != std::path::absolute(data_dir).ok() {
                    opts.file_paths = None;
                }
                AddOptions {
                    data_dir: data_dir.to_path_buf(),
                    ..opts
                }
            }
            None => AddOptions {
                data_dir: data_dir.to_path_buf(),
                ..Default::default()
            },
        };
        session.add(meta.clone(), opts).await?;
        Ok(())
    }
}

/// How a managed torrent's entry says `meta` runs: in its folder, paused when the entry is paused
/// or waits in the download queue (its data checked), with its files, their names, sequential mode
/// and its own limits.
pub fn entry_options(
    cfg: &Config,
    t: &crate::config::ManagedTorrent,
    meta: &Metainfo,
) -> AddOptions {
    AddOptions {
        data_dir: cfg.resolve(&t.data),
        paused: t.state == "paused" || t.state == crate::actions::QUEUED,
        files: t.files.priorities(meta.info.files.len()),
        file_paths: t.files.paths(&meta.info),
        sequential: t.files.sequential,
        sequential_from: t.files.sequential_from,
        limits: t.limits.engine(),
        group: t.group.clone(),
        ..Default::default()
    }
}

/// Where resume files live: `.btorrent/resume/` beside torrents.toml.
pub fn resume_dir(cfg: &Config) -> PathBuf {
    cfg.resolve(Path::new(".btorrent/resume"))
}

/// The session settings torrents.toml controls, publishing its events into `bus`. The listen port
/// falls back to an ephemeral one when the configured port is taken (another btorrent, say), so
/// one-shot commands still work; `::` (IPv6 and IPv4, the default) falls back to `0.0.0.0` on a
/// machine without IPv6.
pub async fn start_session(cfg: &Config, bus: &EventBus) -> Result<Session> {
    let mut scfg = session_config(cfg, bus)?;
    let first = Session::start(scfg.clone()).await;
    let first = match first {
        Err(e) if scfg.listen.ip() == std::net::Ipv6Addr::UNSPECIFIED && without_ipv6(&e) => {
            tracing::info!("{e:#}; listening on IPv4 only");
            scfg.listen.set_ip(std::net::Ipv4Addr::UNSPECIFIED.into());
            Session::start(scfg.clone()).await
        }
        r => r,
    };
    let session = match first {
        Ok(s) => s,
        Err(e) if cfg.settings.listen_port != 0 => {
            tracing::info!("{e:#}; listening on an ephemeral port instead");
            scfg.listen.set_port(0);
            Session::start(scfg).await?
        }
        Err(e) => return Err(e.into()),
    };
    // The blocklists, before any torrent is added (a list that cannot be read is reported, and
    // the session runs without it).
    if cfg.settings.blocklist {
        let (s, c) = (session.clone(), cfg.clone());
        match tokio::task::spawn_blocking(move || crate::blocklist::apply(&s, &c)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("blocklist not in force: {e:#}"),
            Err(e) => tracing::warn!("blocklist not in force: {e}"),
        }
    }
    Ok(session)
}

/// Whether `e` says this machine has no IPv6 (the kernel's, or every interface's, switched off).
fn without_ipv6(e: &crate::engine::EngineError) -> bool {
    e.io_error().is_some_and(|io| {
        io.raw_os_error() == Some(libc::EAFNOSUPPORT)
            || io.kind() == std::io::ErrorKind::AddrNotAvailable
    })
}

/// The engine's configuration as torrents.toml's `[settings]` give it (the engine's defaults
/// where they say nothing), its events going into `bus`.
pub fn session_config(cfg: &Config, bus: &EventBus) -> Result<SessionConfig> {
    let ip: std::net::IpAddr = cfg.settings.listen_ip.parse().with_context(|| {
        format!(
            "listen_ip {:?} is not an IP address",
            cfg.settings.listen_ip
        )
    })?;
    if !ip.is_unspecified() && !crate::addr::is_dialable(ip) {
        anyhow::bail!(
            "listen_ip {ip} is an address no peer can reach (multicast, broadcast or reserved): \
             give one of this machine's addresses, or 0.0.0.0 or :: for all of them"
        );
    }
    let dht = cfg.settings.dht_config().map_err(|e| anyhow::anyhow!(e))?;
    let gateway = cfg
        .settings
        .port_forwarding_gateway_ip()
        .map_err(|e| anyhow::anyhow!(e))?;
    let (upload_limit, download_limit) = cfg.settings.session_limits();
    let mut scfg = SessionConfig {
        listen: SocketAddr::new(ip, cfg.settings.listen_port),
        dht,
        lsd: cfg.settings.lsd_enabled(),
        port_forwarding: cfg.settings.port_forwarding_enabled(),
        port_forwarding_gateway: gateway,
        forward_also: cfg.settings.tracker_forwarded_port().into_iter().collect(),
        encryption: cfg.settings.encryption,
        utp: cfg.settings.utp,
        pex: cfg.settings.pex,
        rename_partial_files: cfg.settings.rename_partial_files,
        resume_dir: Some(resume_dir(cfg)),
        upload_limit,
        download_limit,
        super_seed: cfg.settings.super_seed,
        bandwidth_groups: cfg.settings.group_limits(),
        default_trackers: cfg.settings.default_trackers.clone(),
        events: bus.engine_sink(),
        ..Default::default()
    };
    if let Some(n) = cfg.settings.max_peers {
        scfg.max_peers_per_torrent = n.max(1);
    }
    if let Some(n) = cfg.settings.max_peers_per_ip {
        scfg.max_peers_per_ip = n.max(1);
    }
    if let Some(n) = cfg.settings.max_connections {
        scfg.max_connections = Some(n.max(1));
    }
    if let Some(on) = cfg.settings.direct_writes {
        scfg.direct_writes = on;
    }
    Ok(scfg)
}

/// Adds every managed torrent to `session`: paused ones paused, the rest resumed (checked, then
/// seeding or downloading). One that cannot be added is reported on the bus and marked `error`.
pub async fn resume_managed(session: &Session, cfg: &Config, bus: &EventBus) {
    for t in &cfg.torrents {
        let Some(ih) = t.hash() else { continue };
        if session.get(&ih).is_some() || t.state == "stopped" {
            continue;
        }
        let file = cfg.resolve(&t.file);
        let added = match Metainfo::load(&file) {
            Ok(meta) if meta.info_hash == ih => {
                let opts = entry_options(cfg, t, &meta);
                session
                    .add(meta, opts)
                    .await
                    .map(|_| ())
                    .map_err(Into::into)
            }
            Ok(meta) => Err(anyhow::anyhow!(
                "{} now holds another torrent ({})",
                file.display(),
                meta.info_hash
            )),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        };
        if let Err(e) = added {
            bus.publish(Event::NotResumed {
                info_hash: ih,
                name: t.name.clone(),
                message: format!("cannot resume: {e:#}"),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(settings: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        std::fs::write(&path, format!("[settings]\n{settings}")).unwrap();
        let cfg = Config::load(&path).unwrap();
        (dir, cfg)
    }

    #[test]
    fn only_a_missing_ipv6_sends_the_peer_to_ipv4() {
        let listen = |e: std::io::Error| crate::engine::EngineError::Listen {
            addr: "[::]:6881".parse().unwrap(),
            error: std::sync::Arc::new(e),
        };
        let no_v6 = std::io::Error::from_raw_os_error(libc::EAFNOSUPPORT);
        assert!(without_ipv6(&listen(no_v6)));
        let taken = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        assert!(!without_ipv6(&listen(taken)));
    }

    /// What the stop of a torrent leaves of its entry: a hand edit's stop keeps it as the file says
    /// by then (the user wrote `seeding` again while it stopped: kept, for the next sync to start);
    /// a script's `cancel` marks it `stopped`; a removal forgets it.
    #[tokio::test]
    async fn a_stop_records_what_its_kind_says() {
        let dir = tempfile::tempdir().unwrap();
        let ih = InfoHash([9; 20]);
        let torrents = crate::torrents::with_one_entry(dir.path(), ih, "seeding");
        let slot = PeerSlot::with(torrents.clone(), EventBus::default());
        let state = || torrents.fresh().unwrap().find(&ih).map(|e| e.state.clone());
        assert!(!slot.remove_managed(ih, AfterRemove::Keep).await.unwrap());
        assert_eq!(state().as_deref(), Some("seeding"));
        slot.remove_managed(ih, AfterRemove::MarkStopped)
            .await
            .unwrap();
        assert_eq!(state().as_deref(), Some("stopped"));
        slot.remove_managed(ih, AfterRemove::Forget).await.unwrap();
        assert_eq!(state(), None);
    }

    /// A process that ends just after an event (a one-shot whose torrent the check found complete)
    /// has the state it implies in torrents.toml by the time the slot's shutdown returns: the CI
    /// once saw `b-start` of a complete managed torrent leave it `downloading`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_last_events_states_are_recorded_when_the_shutdown_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        std::fs::write(&path, "[settings]\ndht = false\nlisten_port = 0\n").unwrap();
        let ih = InfoHash([7; 20]);
        let torrents = crate::torrents::with_one_entry(dir.path(), ih, "downloading");
        let bus = EventBus::default();
        let slot = PeerSlot::with(torrents, bus.clone());
        slot.get_or_start().await.unwrap();
        bus.publish(Event::Engine(crate::engine::Event::Seeding {
            info_hash: ih,
            name: "share".into(),
            data_dir: dir.path().join("output"),
        }));
        slot.shutdown(Duration::from_secs(10)).await;
        let on_disk = Torrents::open(&path).config().unwrap();
        assert_eq!(on_disk.find(&ih).unwrap().state, "seeding");
    }

    #[test]
    fn the_session_takes_its_settings_from_torrents_toml() {
        let bus = EventBus::default();
        let (_dir, cfg) = config_of("listen_port = 0\n");
        let default = session_config(&cfg, &bus).unwrap();
        assert!(default.direct_writes, "direct writes are on unless set off");
        assert!(default.pex, "peer exchange is on unless set off");
        let (_dir, cfg) = config_of(
            "listen_port = 0\ndirect_writes = false\nmax_peers = 7\nmax_connections = 0\npex = false\n",
        );
        let set = session_config(&cfg, &bus).unwrap();
        assert!(!set.direct_writes && !set.pex);
        assert_eq!(set.max_peers_per_torrent, 7);
        assert_eq!(set.max_connections, Some(1), "at least one connection");
        let (_dir, cfg) = config_of("listen_ip = \"nowhere\"\n");
        let e = session_config(&cfg, &bus).unwrap_err();
        assert!(format!("{e:#}").contains("listen_ip \"nowhere\""), "{e:#}");
        for nobody in ["224.0.0.1", "255.255.255.255", "ff02::1"] {
            let (_dir, cfg) = config_of(&format!("listen_ip = \"{nobody}\"\n"));
            let e = session_config(&cfg, &bus).unwrap_err();
            assert!(format!("{e:#}").contains("no peer can reach"), "{e:#}");
        }
        for every in ["0.0.0.0", "::"] {
            let (_dir, cfg) = config_of(&format!("listen_ip = \"{every}\"\nlisten_port = 0\n"));
            assert!(session_config(&cfg, &bus).is_ok(), "{every}");
        }
    }
}
