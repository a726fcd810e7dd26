//! What torrent handles and the shell's prompt ask of the torrents running in this process: live
//! figures (the engine's [`TorrentStats`] snapshot, the one view of a torrent) and actions, as one
//! small trait. The peer session ([`PeerSlot`]) is the implementation;
//! tests put a stand-in in its place. A torrent that is not running (no session yet, or not added to
//! it) is simply absent: handles then report what torrents.toml says.

use std::path::PathBuf;

use futures::future::BoxFuture;

use crate::actions::Handoff;
use crate::engine::{
    CheckReport, DhtStats, FilePriority, MetadataFetch, PeerInfo, TorrentLimits, TorrentStats,
    WebSeedStatus,
};
use crate::services::PeerSlot;
use crate::types::InfoHash;

/// What torrents.toml keeps of a torrent that [`LiveTorrents::remove`] stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterRemove {
    /// The entry goes: the torrent is no longer managed (`b-remove`, `torrent-remove`).
    #[default]
    Forget,
    /// The entry stays, marked `stopped`, so no start resumes it (a script's `cancel`).
    MarkStopped,
    /// The entry stays as it is: it said `stopped` already (a hand edit of torrents.toml, which
    /// the user may have changed again while the torrent stopped; the next look at the file
    /// applies that).
    Keep,
}

/// What a running torrent draws from now: the peers it is connected to and its web seeds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Connections {
    pub peers: Vec<PeerInfo>,
    pub web_seeds: Vec<WebSeedStatus>,
}

/// The torrents running in this process. Every call returns promptly: figures come from memory,
/// and the actions that wait on disk or network are futures the caller blocks on.
pub trait LiveTorrents: Send + Sync {
    /// `None` when the torrent is not running here.
    fn stats(&self, ih: &InfoHash) -> Option<TorrentStats>;
    /// Every running torrent.
    fn all(&self) -> Vec<(InfoHash, TorrentStats)>;
    /// The magnet links whose metadata is being fetched (not torrents yet).
    fn fetching(&self) -> Vec<MetadataFetch> {
        Vec::new()
    }
    /// The peers the torrent is connected to and its web seeds; `None` when it is not running
    /// here.
    fn connections(&self, _ih: &InfoHash) -> Option<Connections> {
        None
    }
    /// Each tracker the torrent announces to with what it last answered; `None` when it is not
    /// running here.
    fn trackers(&self, _ih: &InfoHash) -> Option<Vec<(String, crate::engine::TrackerStatus)>> {
        None
    }
    /// Stops transfers but keeps the torrent; false when it is not running here.
    fn pause(&self, ih: &InfoHash) -> bool;
    /// Asks the torrent's trackers for peers now (see
    /// [`crate::engine::TorrentHandle::reannounce`]); false when it is not running here.
    fn reannounce(&self, _ih: &InfoHash) -> bool {
        false
    }
    /// Undoes [`LiveTorrents::pause`]; false when it is not running here.
    fn resume(&self, ih: &InfoHash) -> bool;
    /// Stops the torrent (announcing `stopped`) and, in the same step, records in torrents.toml what
    /// `after` says, so nothing that syncs the session with the file can start it again in between.
    /// Data stays. Ok(false) when it was not running here.
    fn remove(&self, ih: InfoHash, after: AfterRemove) -> BoxFuture<'static, anyhow::Result<bool>>;
    /// Sets the torrent's own speed limits; false when it is not running here.
    fn set_limits(&self, _ih: &InfoHash, _limits: TorrentLimits) -> bool {
        false
    }
    /// Puts the torrent in a bandwidth group (or none); false when it is not running here.
    fn set_group(&self, _ih: &InfoHash, _group: Option<&str>) -> bool {
        false
    }
    /// The trackers the running torrent announces to from now on, in their tiers (see
    /// [`crate::engine::TorrentHandle::set_tracker_tiers`]); Ok(false) when it is not running here.
    fn set_trackers(&self, _ih: &InfoHash, _tiers: Vec<Vec<String>>) -> anyhow::Result<bool> {
        Ok(false)
    }
    /// Moves the data into `dir` and carries on from there. Ok(false) when not running here.
    fn move_to(&self, ih: InfoHash, dir: PathBuf) -> BoxFuture<'static, anyhow::Result<bool>>;
    /// Renames a file or folder of the torrent (see
    /// [`crate::engine::TorrentHandle::rename_path`]); every file's path after it. Ok(None) when
    /// not running here.
    fn rename_path(
        &self,
        _ih: InfoHash,
        _path: PathBuf,
        _name: String,
    ) -> BoxFuture<'static, anyhow::Result<Option<Vec<PathBuf>>>> {
        Box::pin(async { Ok(None) })
    }
    /// Points the torrent at `dir`, where its files already are, and checks them (see
    /// [`crate::engine::TorrentHandle::relocate`]). Ok(None) when not running here.
    fn relocate(
        &self,
        _ih: InfoHash,
        _dir: PathBuf,
    ) -> BoxFuture<'static, anyhow::Result<Option<CheckReport>>> {
        Box::pin(async { Ok(None) })
    }
    /// Hashes every piece of the data again and repairs what fails (see
    /// [`crate::engine::TorrentHandle::check`]). Ok(None) when not running here.
    fn check(&self, _ih: InfoHash) -> BoxFuture<'static, anyhow::Result<Option<CheckReport>>> {
        Box::pin(async { Ok(None) })
    }
    /// The DHT node of the peer session running here (`None`: no session, or no DHT).
    fn dht(&self) -> BoxFuture<'static, Option<DhtStats>> {
        Box::pin(async { None })
    }
    /// How port forwarding stands in the peer session running here (`None`: no session).
    fn port_forwarding(&self) -> BoxFuture<'static, Option<crate::engine::PortForwarding>> {
        Box::pin(async { None })
    }
    /// The address ranges of the blocklist in force in the peer session running here (`None`: no
    /// session).
    fn blocklist_ranges(&self) -> BoxFuture<'static, Option<usize>> {
        Box::pin(async { None })
    }
    /// Registers and adds a torrent in this process's session: the owner's side of a hand-off.
    /// Ok(false) when this view has no session to add to.
    fn add_managed(&self, _h: Handoff) -> BoxFuture<'static, anyhow::Result<bool>> {
        Box::pin(async { Ok(false) })
    }
    /// Hands a torrent to the shell or daemon that owns torrents.toml, to run it there; Ok(false)
    /// when none runs (the caller then runs it itself).
    fn hand_to_owner(&self, _h: Handoff) -> BoxFuture<'static, anyhow::Result<bool>> {
        Box::pin(async { Ok(false) })
    }
    /// Changes file priorities (by index) and, as `order` says, the order of new pieces in the
    /// running torrent (see [`crate::actions::choose_files`], which records them). Ok(false) when
    /// not running here.
    fn choose_files(
        &self,
        _ih: &InfoHash,
        _changes: Vec<(usize, FilePriority)>,
        _order: crate::actions::OrderChange,
    ) -> anyhow::Result<bool> {
        Ok(false)
    }
}

impl LiveTorrents for PeerSlot {
    fn stats(&self, ih: &InfoHash) -> Option<TorrentStats> {
        Some(self.current()?.get(ih)?.stats())
    }

    fn all(&self) -> Vec<(InfoHash, TorrentStats)> {
        let Some(session) = self.current() else {
            return Vec::new();
        };
        session
            .torrents()
            .into_iter()
            .map(|h| (h.info_hash(), h.stats()))
            .collect()
    }

    fn connections(&self, ih: &InfoHash) -> Option<Connections> {
        let h = self.current()?.get(ih)?;
        Some(Connections {
            peers: h.peers(),
            web_seeds: h.web_seeds(),
        })
    }

    fn trackers(&self, ih: &InfoHash) -> Option<Vec<(String, crate::engine::TrackerStatus)>> {
        Some(self.current()?.get(ih)?.tracker_status())
    }

    fn fetching(&self) -> Vec<MetadataFetch> {
        self.current().map(|s| s.fetching()).unwrap_or_default()
    }

    fn pause(&self, ih: &InfoHash) -> bool {
        match self.current().and_then(|s| s.get(ih)) {
            Some(h) => {
                h.pause();
                true
            }
            None => false,
        }
    }

    fn resume(&self, ih: &InfoHash) -> bool {
        match self.current().and_then(|s| s.get(ih)) {
            Some(h) => {
                h.resume();
                true
            }
            None => false,
        }
    }

    fn set_limits(&self, ih: &InfoHash, limits: TorrentLimits) -> bool {
        match self.current().and_then(|s| s.get(ih)) {
            Some(h) => {
                h.set_limits(limits);
                true
            }
            None => false,
        }
    }

    fn set_group(&self, ih: &InfoHash, group: Option<&str>) -> bool {
        match self.current().and_then(|s| s.get(ih)) {
            Some(h) => {
                h.set_group(group);
                true
            }
            None => false,
        }
    }

    fn reannounce(&self, ih: &InfoHash) -> bool {
        self.current()
            .and_then(|s| s.get(ih))
            .map(|h| h.reannounce())
            .is_some()
    }

    fn set_trackers(&self, ih: &InfoHash, tiers: Vec<Vec<String>>) -> anyhow::Result<bool> {
        match self.current().and_then(|s| s.get(ih)) {
            Some(h) => {
                h.set_tracker_tiers(tiers)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn remove(&self, ih: InfoHash, after: AfterRemove) -> BoxFuture<'static, anyhow::Result<bool>> {
        let slot = self.clone();
        Box::pin(async move { slot.remove_managed(ih, after).await })
    }

    fn move_to(&self, ih: InfoHash, dir: PathBuf) -> BoxFuture<'static, anyhow::Result<bool>> {
        let slot = self.clone();
        Box::pin(async move {
            slot.torrents().supersede_data_edit(&ih);
            match slot.get().await.and_then(|s| s.get(&ih)) {
                Some(h) => h.move_to(dir).await.map(|_| true).map_err(Into::into),
                None => Ok(false),
            }
        })
    }

    fn add_managed(&self, h: Handoff) -> BoxFuture<'static, anyhow::Result<bool>> {
        let slot = self.clone();
        Box::pin(async move {
            let session = slot.get_or_start().await?;
            h.add_in(slot.torrents(), &session).await.map(|_| true)
        })
    }

    fn rename_path(
        &self,
        ih: InfoHash,
        path: PathBuf,
        name: String,
    ) -> BoxFuture<'static, anyhow::Result<Option<Vec<PathBuf>>>> {
        let slot = self.clone();
        Box::pin(async move {
            match slot.get().await.and_then(|s| s.get(&ih)) {
                Some(h) => Ok(Some(h.rename_path(path, name).await?)),
                None => Ok(None),
            }
        })
    }

    fn relocate(
        &self,
        ih: InfoHash,
        dir: PathBuf,
    ) -> BoxFuture<'static, anyhow::Result<Option<CheckReport>>> {
        let slot = self.clone();
        Box::pin(async move {
            slot.torrents().supersede_data_edit(&ih);
            match slot.get().await.and_then(|s| s.get(&ih)) {
                Some(h) => Ok(Some(h.relocate(dir).await?)),
                None => Ok(None),
            }
        })
    }

    fn check(&self, ih: InfoHash) -> BoxFuture<'static, anyhow::Result<Option<CheckReport>>> {
        let slot = self.clone();
        Box::pin(async move {
            match slot.get().await.and_then(|s| s.get(&ih)) {
                Some(h) => Ok(Some(h.check().await?)),
                None => Ok(None),
            }
        })
    }

    fn choose_files(
        &self,
        ih: &InfoHash,
        changes: Vec<(usize, FilePriority)>,
        order: crate::actions::OrderChange,
    ) -> anyhow::Result<bool> {
        let Some(h) = self.current().and_then(|s| s.get(ih)) else {
            return Ok(false);
        };
        h.set_file_priorities(&changes)?;
        if let Some(from) = order.sequential_from {
            h.set_sequential_from(from)?;
        }
        if let Some(on) = order.sequential {
            h.set_sequential(on);
        }
        Ok(true)
    }

    fn dht(&self) -> BoxFuture<'static, Option<DhtStats>> {
        let session = self.current();
        Box::pin(async move {
            match session {
                Some(s) => s.dht_stats().await,
                None => None,
            }
        })
    }

    fn port_forwarding(&self) -> BoxFuture<'static, Option<crate::engine::PortForwarding>> {
        let status = self.current().map(|s| s.port_forwarding());
        Box::pin(async move { status })
    }

    fn blocklist_ranges(&self) -> BoxFuture<'static, Option<usize>> {
        let ranges = self.current().map(|s| s.ip_filter().len());
        Box::pin(async move { ranges })
    }
}

/// Totals over every running torrent, for the shell's prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub running: usize,
    pub downloading: usize,
    pub down_rate: u64,
    pub up_rate: u64,
    pub peers: usize,
    /// Magnet links whose metadata is being fetched.
    pub fetching: usize,
}

pub fn totals(live: &dyn LiveTorrents) -> Totals {
    let mut t = Totals {
        fetching: live.fetching().len(),
        ..Totals::default()
    };
    for (_, s) in live.all() {
        t.running += 1;
        t.downloading += usize::from(s.is_downloading());
        t.down_rate += s.down_rate;
        t.up_rate += s.up_rate;
        t.peers += s.peers;
    }
    t
}
