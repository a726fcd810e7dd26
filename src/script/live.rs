//! What the script host asks of the torrents running in this process: live figures and actions.
//!
//! The host does not own the peer engine; the front end that runs one (shell, daemon) hands the host
//! a [`LiveTorrents`]. A process that runs none (a one-shot command) has [`NotRunning`], for which no
//! torrent is live: handles then report what torrents.toml says and their actions change only the file.

use std::path::PathBuf;

use futures::future::BoxFuture;

use crate::types::InfoHash;

/// A snapshot of one running torrent.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveStats {
    pub name: String,
    /// `checking`, `downloading`, `seeding`, `paused` or `error: ...`.
    pub state: String,
    /// Verified bytes / total bytes, 0.0 to 1.0.
    pub progress: f64,
    pub size: u64,
    /// Bytes per second.
    pub down_rate: u64,
    pub up_rate: u64,
    /// Payload bytes moved since the torrent started in this process.
    pub downloaded: u64,
    pub uploaded: u64,
    pub peers: usize,
    pub seeds: usize,
    /// The folder that holds the torrent's file or top folder.
    pub data_dir: PathBuf,
}

impl LiveStats {
    /// Still fetching data (the shell asks before closing while any torrent is).
    pub fn is_downloading(&self) -> bool {
        self.state == "downloading" || (self.state == "checking" && self.progress < 1.0)
    }
}

/// The torrents running in this process. Every call returns promptly: figures come from memory,
/// and the actions that wait on disk or network are futures the caller blocks on.
pub trait LiveTorrents: Send + Sync {
    /// `None` when the torrent is not running here.
    fn stats(&self, ih: &InfoHash) -> Option<LiveStats>;
    /// Every running torrent.
    fn all(&self) -> Vec<(InfoHash, LiveStats)>;
    /// Stops transfers but keeps the torrent; false when it is not running here.
    fn pause(&self, ih: &InfoHash) -> bool;
    /// Undoes [`LiveTorrents::pause`]; false when it is not running here.
    fn resume(&self, ih: &InfoHash) -> bool;
    /// Stops the torrent (announcing `stopped`) and forgets it; data stays. Ok(false) when it was not
    /// running here.
    fn remove(&self, ih: InfoHash) -> BoxFuture<'static, anyhow::Result<bool>>;
    /// Moves the data into `dir` and carries on from there. Ok(false) when not running here.
    fn move_to(&self, ih: InfoHash, dir: PathBuf) -> BoxFuture<'static, anyhow::Result<bool>>;
}

/// A process without a peer engine: nothing is live.
pub struct NotRunning;

impl LiveTorrents for NotRunning {
    fn stats(&self, _: &InfoHash) -> Option<LiveStats> {
        None
    }
    fn all(&self) -> Vec<(InfoHash, LiveStats)> {
        Vec::new()
    }
    fn pause(&self, _: &InfoHash) -> bool {
        false
    }
    fn resume(&self, _: &InfoHash) -> bool {
        false
    }
    fn remove(&self, _: InfoHash) -> BoxFuture<'static, anyhow::Result<bool>> {
        Box::pin(async { Ok(false) })
    }
    fn move_to(&self, _: InfoHash, _: PathBuf) -> BoxFuture<'static, anyhow::Result<bool>> {
        Box::pin(async { Ok(false) })
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
}

pub fn totals(live: &dyn LiveTorrents) -> Totals {
    let mut t = Totals::default();
    for (_, s) in live.all() {
        t.running += 1;
        t.downloading += usize::from(s.is_downloading());
        t.down_rate += s.down_rate;
        t.up_rate += s.up_rate;
        t.peers += s.peers;
    }
    t
}
