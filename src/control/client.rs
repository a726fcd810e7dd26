//! The one-shot side of the control channel: [`Client`] asks the owner of a torrents.toml over its
//! socket, and [`OwnerOrLocal`] is the view of running torrents a one-shot command's script host uses:
//! the torrents running in this process first, then those of the owner.
//!
//! Each request is its own short connection (connecting to a Unix socket costs microseconds), so an
//! owner that starts or stops while a command runs is simply found or not at the next request. No
//! socket, or a stale one nobody answers on, means no owner. Calls block the calling thread (scripts
//! run on their own thread, never on a runtime worker); `remove` and `move_to` block a thread of the
//! runtime's blocking pool instead, so Ctrl-C stops the command's wait at once.

use std::io::{BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use futures::future::BoxFuture;

use super::protocol::{read_line, Reply, Request, Running, IO_TIMEOUT, MAX_REPLY};
use crate::engine::CheckReport;
use crate::engine::TorrentStats;
use crate::script::live::{AfterRemove, Connections, LiveTorrents};
use crate::types::InfoHash;

/// How long a removal may take in the owner (it announces `stopped`, within a few seconds).
const REMOVE_TIMEOUT: Duration = Duration::from_secs(30);
/// A move copies the data across file systems if it must, a check reads all of it: no practical bound.
const MOVE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Talks to the owner of one torrents.toml.
#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
}

impl Client {
    pub fn new(config_path: &Path) -> Client {
        Client {
            path: super::socket_path(config_path),
        }
    }

    /// Sends `req` and reads the reply, waiting at most `timeout` for it. `Ok(None)` when no owner
    /// runs; an error when the owner did not answer properly or refused the request.
    pub fn request(&self, req: &Request, timeout: Duration) -> Result<Option<Reply>> {
        let Ok(mut stream) = UnixStream::connect(&self.path) else {
            return Ok(None);
        };
        let unanswered = || {
            format!(
                "the btorrent running for this torrents.toml ({})",
                self.path.display()
            )
        };
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_read_timeout(Some(timeout))?;
        let mut line = serde_json::to_string(req).expect("a request always serialises");
        line.push('\n');
        stream
            .write_all(line.as_bytes())
            .with_context(|| format!("{} did not take the request", unanswered()))?;
        let reply = read_line(&mut BufReader::new(stream), MAX_REPLY)
            .with_context(|| format!("{} did not answer", unanswered()))?
            .ok_or_else(|| anyhow!("{} closed without answering", unanswered()))?;
        let reply: Reply = serde_json::from_str(&reply)
            .with_context(|| format!("{} answered something unexpected", unanswered()))?;
        if !reply.ok {
            let e = reply.error.unwrap_or_else(|| "no reason given".into());
            return Err(anyhow!("{} refused: {e}", unanswered()));
        }
        Ok(Some(reply))
    }

    /// The owner's running torrents (empty without an owner).
    pub fn list(&self) -> Result<Vec<Running>> {
        Ok(self
            .request(&Request::List {}, IO_TIMEOUT)?
            .and_then(|r| r.torrents)
            .unwrap_or_default())
    }

    /// The magnet links whose metadata the owner fetches (empty without an owner).
    pub fn fetching(&self) -> Result<Vec<crate::engine::MetadataFetch>> {
        Ok(self
            .request(&Request::Fetching {}, IO_TIMEOUT)?
            .and_then(|r| r.fetching)
            .unwrap_or_default())
    }

    /// The owner's DHT figures (`None` without an owner, or when it runs no DHT).
    pub fn dht(&self) -> Result<Option<crate::engine::DhtStats>> {
        Ok(self
            .request(&Request::Dht {}, IO_TIMEOUT)?
            .and_then(|r| r.dht.map(|d| *d)))
    }

    /// How the owner's port forwarding stands (`None` without an owner).
    pub fn port_forwarding(&self) -> Result<Option<crate::engine::PortForwarding>> {
        Ok(self
            .request(&Request::PortForwarding {}, IO_TIMEOUT)?
            .and_then(|r| r.port_forwarding.map(|p| *p)))
    }

    /// The address ranges of the owner's blocklist in force (`None` without an owner).
    pub fn blocklist_ranges(&self) -> Result<Option<usize>> {
        Ok(self
            .request(&Request::Blocklist {}, IO_TIMEOUT)?
            .and_then(|r| r.ranges))
    }

    /// The peers and web seeds of a torrent the owner runs (`None` when it does not).
    pub fn connections(&self, ih: &InfoHash) -> Result<Option<Connections>> {
        let req = Request::Peers {
            info_hash: ih.to_hex(),
        };
        Ok(self.request(&req, IO_TIMEOUT)?.and_then(|r| {
            Some(Connections {
                peers: r.peers?,
                web_seeds: r.web_seeds.unwrap_or_default(),
            })
        }))
    }

    /// The trackers of a torrent the owner runs, with what each last answered (`None` when it
    /// does not run it).
    pub fn trackers(
        &self,
        ih: &InfoHash,
    ) -> Result<Option<Vec<(String, crate::engine::TrackerStatus)>>> {
        let req = Request::Trackers {
            info_hash: ih.to_hex(),
        };
        Ok(self.request(&req, IO_TIMEOUT)?.and_then(|r| r.trackers))
    }

    /// Asks for an action on one torrent; true when the owner runs it (and did it).
    fn act(&self, req: &Request, timeout: Duration) -> Result<bool> {
        Ok(self
            .request(req, timeout)?
            .and_then(|r| r.found)
            .unwrap_or(false))
    }
}

/// The running torrents as a one-shot command sees them: those of its own peer session, then those
/// of the shell or daemon that owns torrents.toml.
pub struct OwnerOrLocal {
    owner: Client,
    local: Arc<dyn LiveTorrents>,
}

impl OwnerOrLocal {
    pub fn new(config_path: &Path, local: Arc<dyn LiveTorrents>) -> OwnerOrLocal {
        OwnerOrLocal {
            owner: Client::new(config_path),
            local,
        }
    }

    /// The owner's torrents; a failure is logged and means none.
    fn owner_list(&self) -> Vec<Running> {
        self.owner.list().unwrap_or_else(|e| {
            tracing::warn!("{e:#}");
            Vec::new()
        })
    }

    fn owner_act(&self, req: Request) -> bool {
        self.owner.act(&req, IO_TIMEOUT).unwrap_or_else(|e| {
            tracing::warn!("{e:#}");
            false
        })
    }

    /// Runs a long request on the blocking pool; `Ok(false)` when the owner does not run the torrent.
    fn owner_act_later(&self, req: Request, timeout: Duration) -> BoxFuture<'static, Result<bool>> {
        let owner = self.owner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || owner.act(&req, timeout))
                .await
                .context("the request to the owner failed")?
        })
    }
}

impl OwnerOrLocal {
    /// Sends a long request (a check, a relocation, a rename) to the owner on the blocking pool, and
    /// takes what `pick` finds in the reply; `None` when no owner runs the torrent.
    fn owner_ask<T: Send + 'static>(
        &self,
        req: Request,
        pick: fn(Reply) -> Option<T>,
    ) -> BoxFuture<'static, Result<Option<T>>> {
        let owner = self.owner.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || owner.request(&req, MOVE_TIMEOUT))
                .await
                .context("the request to the owner failed")?
                .map(|r| r.and_then(pick))
        })
    }

    /// Asks the owner to check a torrent's data (`req`: a check or a relocation).
    fn owner_check(&self, req: Request) -> BoxFuture<'static, Result<Option<CheckReport>>> {
        self.owner_ask(req, |r| r.check.map(|c| *c))
    }

    /// A figure of the peer session: this process's (`local`) when it runs one, else the owner's
    /// (`ask`; `None` without an owner, an error logged).
    fn session_figure<T: Send + 'static>(
        &self,
        local: BoxFuture<'static, Option<T>>,
        ask: impl FnOnce(&Client) -> Result<Option<T>> + Send + 'static,
    ) -> BoxFuture<'static, Option<T>> {
        let owner = self.owner.clone();
        Box::pin(async move {
            if let Some(d) = local.await {
                return Some(d);
            }
            let asked = tokio::task::spawn_blocking(move || ask(&owner)).await;
            asked.ok()?.unwrap_or_else(|e| {
                tracing::warn!("{e:#}");
                None
            })
        })
    }
}

impl LiveTorrents for OwnerOrLocal {
    fn stats(&self, ih: &InfoHash) -> Option<TorrentStats> {
        self.local.stats(ih).or_else(|| {
            let hex = ih.to_hex();
            self.owner_list()
                .into_iter()
                .find(|r| r.info_hash == hex)
                .map(|r| r.stats)
        })
    }

    fn all(&self) -> Vec<(InfoHash, TorrentStats)> {
        let mut all = self.local.all();
        for r in self.owner_list() {
            if let Some(ih) = InfoHash::from_hex(&r.info_hash) {
                if !all.iter().any(|(x, _)| *x == ih) {
                    all.push((ih, r.stats));
                }
            }
        }
        all
    }

    fn fetching(&self) -> Vec<crate::engine::MetadataFetch> {
        let mut all = self.local.fetching();
        all.extend(self.owner.fetching().unwrap_or_else(|e| {
            tracing::warn!("{e:#}");
            Vec::new()
        }));
        all
    }

    fn connections(&self, ih: &InfoHash) -> Option<Connections> {
        self.local.connections(ih).or_else(|| {
            self.owner.connections(ih).unwrap_or_else(|e| {
                tracing::warn!("{e:#}");
                None
            })
        })
    }

    fn trackers(&self, ih: &InfoHash) -> Option<Vec<(String, crate::engine::TrackerStatus)>> {
        self.local.trackers(ih).or_else(|| {
            self.owner.trackers(ih).unwrap_or_else(|e| {
                tracing::warn!("{e:#}");
                None
            })
        })
    }

    fn pause(&self, ih: &InfoHash) -> bool {
        self.local.pause(ih)
            || self.owner_act(Request::Pause {
                info_hash: ih.to_hex(),
            })
    }

    fn resume(&self, ih: &InfoHash) -> bool {
        self.local.resume(ih)
            || self.owner_act(Request::Resume {
                info_hash: ih.to_hex(),
            })
    }

    fn reannounce(&self, ih: &InfoHash) -> bool {
        self.local.reannounce(ih)
            || self.owner_act(Request::Reannounce {
                info_hash: ih.to_hex(),
            })
    }

    fn set_limits(&self, ih: &InfoHash, limits: crate::engine::TorrentLimits) -> bool {
        self.local.set_limits(ih, limits)
            || self.owner_act(Request::SetLimits {
                info_hash: ih.to_hex(),
                limits,
            })
    }

    fn set_group(&self, ih: &InfoHash, group: Option<&str>) -> bool {
        // Set over the RPC, which runs in the owner: only the local session is asked.
        self.local.set_group(ih, group)
    }

    fn set_trackers(&self, ih: &InfoHash, tiers: Vec<Vec<String>>) -> Result<bool> {
        if self.local.stats(ih).is_some() {
            return self.local.set_trackers(ih, tiers);
        }
        let req = Request::SetTrackers {
            info_hash: ih.to_hex(),
            tiers,
        };
        self.owner.act(&req, IO_TIMEOUT)
    }

    fn remove(&self, ih: InfoHash, after: AfterRemove) -> BoxFuture<'static, Result<bool>> {
        if self.local.stats(&ih).is_some() {
            return self.local.remove(ih, after);
        }
        self.owner_act_later(
            Request::Remove {
                info_hash: ih.to_hex(),
                after,
            },
            REMOVE_TIMEOUT,
        )
    }

    fn choose_files(
        &self,
        ih: &InfoHash,
        changes: Vec<(usize, crate::engine::FilePriority)>,
        order: crate::actions::OrderChange,
    ) -> Result<bool> {
        if self.local.stats(ih).is_some() {
            return self.local.choose_files(ih, changes, order);
        }
        let req = Request::ChooseFiles {
            info_hash: ih.to_hex(),
            changes,
            order,
        };
        self.owner.act(&req, IO_TIMEOUT)
    }

    fn check(&self, ih: InfoHash) -> BoxFuture<'static, Result<Option<CheckReport>>> {
        if self.local.stats(&ih).is_some() {
            return self.local.check(ih);
        }
        self.owner_check(Request::Check {
            info_hash: ih.to_hex(),
        })
    }

    fn rename_path(
        &self,
        ih: InfoHash,
        path: PathBuf,
        name: String,
    ) -> BoxFuture<'static, Result<Option<Vec<PathBuf>>>> {
        if self.local.stats(&ih).is_some() {
            return self.local.rename_path(ih, path, name);
        }
        let req = Request::RenamePath {
            info_hash: ih.to_hex(),
            path,
            name,
        };
        self.owner_ask(req, |r| r.paths)
    }

    fn relocate(
        &self,
        ih: InfoHash,
        dir: PathBuf,
    ) -> BoxFuture<'static, Result<Option<CheckReport>>> {
        if self.local.stats(&ih).is_some() {
            return self.local.relocate(ih, dir);
        }
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        self.owner_check(Request::Relocate {
            info_hash: ih.to_hex(),
            dir,
        })
    }

    fn dht(&self) -> BoxFuture<'static, Option<crate::engine::DhtStats>> {
        self.session_figure(self.local.dht(), |owner| owner.dht())
    }

    fn port_forwarding(&self) -> BoxFuture<'static, Option<crate::engine::PortForwarding>> {
        self.session_figure(self.local.port_forwarding(), |owner| {
            owner.port_forwarding()
        })
    }

    fn blocklist_ranges(&self) -> BoxFuture<'static, Option<usize>> {
        self.session_figure(self.local.blocklist_ranges(), |owner| {
            owner.blocklist_ranges()
        })
    }

    fn hand_to_owner(&self, h: crate::actions::Handoff) -> BoxFuture<'static, Result<bool>> {
        self.owner_act_later(Request::Add(h), REMOVE_TIMEOUT)
    }

    fn move_to(&self, ih: InfoHash, dir: PathBuf) -> BoxFuture<'static, Result<bool>> {
        if self.local.stats(&ih).is_some() {
            return self.local.move_to(ih, dir);
        }
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        self.owner_act_later(
            Request::MoveTo {
                info_hash: ih.to_hex(),
                dir,
            },
            MOVE_TIMEOUT,
        )
    }
}
