//! The long-running parts of btorrent assembled from torrents.toml, as the shell and the daemon run
//! them: the event bus, the embedded tracker, and (joining as they land) the peer session and the watch
//! folder. One-shot commands start only what their primitives need.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{Config, Settings};
use crate::script::live::{LiveTorrents, NotRunning};
use crate::tracker::{Tracker, TrackerConfig};
use crate::types::InfoHash;

/// Which parts to start.
#[derive(Debug, Clone, Copy)]
pub struct ServicesOptions {
    /// Run the embedded tracker if `tracker_bind` is set.
    pub tracker: bool,
}

impl Default for ServicesOptions {
    fn default() -> Self {
        ServicesOptions { tracker: true }
    }
}

/// Everything running in the background of a shell or daemon.
pub struct Services {
    pub config_path: PathBuf,
    pub bus: crate::events::EventBus,
    pub tracker: Option<RunningTracker>,
    /// The torrents running in this process, as the script host and the shell's prompt see them.
    pub live: Arc<dyn LiveTorrents>,
}

impl Services {
    /// Starts the parts `opts` asks for, as configured in `config_path`.
    pub async fn start(config_path: &Path, opts: ServicesOptions) -> Result<Services> {
        let cfg = Config::load(config_path)?;
        let tracker = match (&cfg.settings.tracker_bind, opts.tracker) {
            (Some(_), true) => Some(RunningTracker::start(config_path, None).await?),
            _ => None,
        };
        Ok(Services {
            config_path: config_path.to_path_buf(),
            bus: Default::default(),
            tracker,
            live: Arc::new(NotRunning),
        })
    }

    pub fn live(&self) -> Arc<dyn LiveTorrents> {
        self.live.clone()
    }

    /// Records each running torrent's state (`downloading`, `seeding`, `paused`, ...) in torrents.toml,
    /// so the next start picks up where this one stopped. Writes the file even when nothing changed
    /// (a first run leaves a torrents.toml with every setting to edit).
    pub fn save_states(&self) -> Result<()> {
        let all = self.live.all();
        Config::update(&self.config_path, |cfg| {
            for (ih, stats) in &all {
                // `error: message` is kept as `error`; a torrent still checking keeps its old state.
                let state = stats.state.split(':').next().unwrap_or_default();
                match cfg.find_mut(ih) {
                    Some(t) if state != "checking" && !state.is_empty() => {
                        t.state = state.to_string()
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }

    /// Stops everything, waiting at most `grace` for transfers and announces to finish.
    pub async fn shutdown(mut self, grace: Duration) {
        if let Some(t) = self.tracker.take() {
            let _ = tokio::time::timeout(grace, t.stop()).await;
        }
    }
}

/// The tracker settings torrents.toml controls; the rest keep their defaults.
pub fn tracker_config(settings: &Settings) -> TrackerConfig {
    let interval = Duration::from_secs(settings.tracker_interval.max(10));
    TrackerConfig {
        interval,
        min_interval: (interval / 4).max(Duration::from_secs(5)),
        private: settings.tracker_private,
        ..Default::default()
    }
}

/// The embedded tracker, serving until [`RunningTracker::stop`] or until dropped.
pub struct RunningTracker {
    pub tracker: Tracker,
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    sync: Option<JoinHandle<()>>,
}

impl RunningTracker {
    /// Binds `bind` (or `settings.tracker_bind`) and serves. In private mode the info-hashes
    /// registered in the config file are allowed, and the file is re-read when it changes.
    pub async fn start(config_path: &Path, bind: Option<SocketAddr>) -> Result<RunningTracker> {
        let cfg = Config::load(config_path)?;
        let bind = match bind {
            Some(b) => b,
            None => cfg
                .settings
                .tracker_bind
                .as_deref()
                .context("no tracker address: set tracker_bind in torrents.toml or pass --bind")?
                .parse()
                .context("tracker_bind is not an address like 127.0.0.1:6969")?,
        };
        let tracker = Tracker::new(tracker_config(&cfg.settings));
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        let addr = listener.local_addr()?;
        let sync = cfg.settings.tracker_private.then(|| {
            let path = config_path.to_path_buf();
            let t = tracker.clone();
            tokio::spawn(sync_allowed(path, t))
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tracker.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = serving.serve(listener, shutdown).await {
                tracing::error!("tracker stopped: {e:#}");
            }
        });
        Ok(RunningTracker {
            tracker,
            addr,
            stop: Some(stop),
            task,
            sync,
        })
    }

    /// The announce URL peers should use.
    pub fn announce_url(&self) -> String {
        format!("http://{}/announce", self.addr)
    }

    /// Stops accepting, finishes requests in progress.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(sync) = self.sync.take() {
            sync.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }

    /// Waits until the tracker stops by itself (it only does on an error).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningTracker {
    fn drop(&mut self) {
        if let Some(sync) = &self.sync {
            sync.abort();
        }
        self.task.abort();
    }
}

/// Private mode: keeps the tracker's allowed set equal to the torrents registered in the config file.
async fn sync_allowed(path: PathBuf, tracker: Tracker) {
    let mut allowed: HashSet<InfoHash> = HashSet::new();
    let mut last_modified = None;
    loop {
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        if modified != last_modified || last_modified.is_none() {
            last_modified = modified;
            if let Ok(cfg) = Config::load(&path) {
                let now: HashSet<InfoHash> = cfg.torrents.iter().filter_map(|t| t.hash()).collect();
                for ih in now.difference(&allowed) {
                    tracker.allow(*ih);
                }
                for ih in allowed.difference(&now) {
                    tracker.disallow(*ih);
                }
                allowed = now;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
