//! The embedded tracker as the shell, the daemon and `btorrent tracker` run it: bound where
//! `tracker_bind` (or `--bind`) says, HTTP and UDP on one port, with the settings torrents.toml
//! controls; in private mode its allowed info-hashes follow the torrents registered there. A
//! `tracker_bind` with port 0 has its bound port noted for the default announce URL while it runs.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::torrents::Torrents;
use crate::tracker::{Tracker, TrackerConfig, MAX_INTERVAL};
use crate::types::InfoHash;

/// The tracker settings torrents.toml controls; the rest keep their defaults.
pub fn tracker_config(settings: &Settings) -> TrackerConfig {
    let interval = Duration::from_secs(settings.tracker_interval.max(10)).min(MAX_INTERVAL);
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
    /// The address asked for (port 0: any free one, noted for the default announce URL).
    asked: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    sync: Option<JoinHandle<()>>,
}

impl RunningTracker {
    /// Binds `bind` (or `settings.tracker_bind`) and serves. In private mode the info-hashes
    /// registered in the config file are allowed, and the file is re-read when it changes.
    pub async fn start(config_path: &Path, bind: Option<SocketAddr>) -> Result<RunningTracker> {
        RunningTracker::start_on(&Torrents::open(config_path), bind).await
    }

    /// [`RunningTracker::start`] with the settings of `torrents`, the process's service.
    pub async fn start_on(torrents: &Torrents, bind: Option<SocketAddr>) -> Result<RunningTracker> {
        let config_path = torrents.path();
        let cfg = torrents.config()?;
        let from_settings = bind.is_none();
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
        // HTTP and BEP 15 on the same address and port, as opentracker does; `[::]` takes both
        // families.
        let bound = crate::tracker::sockets::bind(bind).with_context(|| {
            if from_settings {
                format!(
                    "the tracker cannot listen on {bind}, TCP and UDP (tracker_bind in {}; remove the line to run none)",
                    config_path.display()
                )
            } else {
                format!("cannot listen on {bind}, TCP and UDP")
            }
        })?;
        let (listener, udp) = (bound.tcp, bound.udp);
        let addr = listener.local_addr()?;
        if bound.fell_back {
            tracing::info!("no IPv6 here: the tracker listens on {addr}, IPv4 alone");
        }
        let sync = cfg.settings.tracker_private.then(|| {
            torrents.follow();
            tokio::spawn(sync_allowed(torrents.clone(), tracker.clone()))
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tracker.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = serving.serve_with_udp(listener, udp, shutdown).await {
                tracing::error!("tracker stopped: {e:#}");
            }
        });
        crate::config::note_tracker_bound(bind, addr);
        Ok(RunningTracker {
            tracker,
            addr,
            asked: bind,
            stop: Some(stop),
            task,
            sync,
        })
    }

    /// The announce URL peers should use: on this machine's LAN address when the tracker listens on
    /// every interface.
    pub fn announce_url(&self) -> String {
        crate::lan::announce_url(self.addr).0
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
        crate::config::forget_tracker_bound(self.asked, self.addr);
        if let Some(sync) = &self.sync {
            sync.abort();
        }
        self.task.abort();
    }
}

/// Private mode: keeps the tracker's allowed set equal to the torrents registered in the config file,
/// updated on each change the service reports.
async fn sync_allowed(torrents: Torrents, tracker: Tracker) {
    let mut allowed: HashSet<InfoHash> = HashSet::new();
    let mut changed = torrents.subscribe();
    loop {
        if let Ok(cfg) = torrents.config() {
            let now: HashSet<InfoHash> = cfg.torrents.iter().filter_map(|t| t.hash()).collect();
            for ih in now.difference(&allowed) {
                tracker.allow(*ih);
            }
            for ih in allowed.difference(&now) {
                tracker.disallow(*ih);
            }
            allowed = now;
        }
        if changed.changed().await.is_err() {
            return;
        }
    }
}
