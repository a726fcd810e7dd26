//! Where a `Job`'s torrent runs: in this process's peer session, or, for a one-shot `start` or
//! `seed` while a shell or daemon owns torrents.toml, in that owner (handed over through the control
//! socket, so two processes never run one torrent). Both give the same figures; the owner's come
//! through [`LiveTorrents`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::{TorrentHandle, TorrentState, TorrentStats};
use crate::script::live::{LiveStats, LiveTorrents};
use crate::types::InfoHash;

/// How often a job run by the owner is looked at while waited on.
const OWNER_POLL: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub enum Runner {
    Here(TorrentHandle),
    Owner(Arc<Owned>),
}

/// A torrent the owner of torrents.toml runs for us.
pub struct Owned {
    pub info_hash: InfoHash,
    pub name: String,
    pub live: Arc<dyn LiveTorrents>,
    /// The last figures seen, kept for once the owner no longer runs it.
    last: parking_lot::Mutex<Option<TorrentStats>>,
}

impl Owned {
    pub fn new(info_hash: InfoHash, name: String, live: Arc<dyn LiveTorrents>) -> Owned {
        Owned {
            info_hash,
            name,
            live,
            last: Default::default(),
        }
    }
}

/// The owner's figures in the engine's form.
fn from_live(s: LiveStats) -> TorrentStats {
    let state = match s.state.as_str() {
        "checking" => TorrentState::Checking,
        "downloading" => TorrentState::Downloading,
        "seeding" => TorrentState::Seeding,
        "paused" => TorrentState::Paused,
        other => TorrentState::Error(other.strip_prefix("error: ").unwrap_or(other).to_string()),
    };
    TorrentStats {
        state,
        pieces_have: s.pieces_have,
        pieces_total: s.pieces_total,
        bytes_verified: s.verified,
        bytes_total: s.size,
        downloaded: s.downloaded,
        uploaded: s.uploaded,
        down_rate: s.down_rate,
        up_rate: s.up_rate,
        peers: s.peers,
        seeds: s.seeds,
        data_dir: PathBuf::from(&s.data_dir),
        pieces_withdrawn: s.pieces_withdrawn,
        // Not carried to front ends (an engine figure, for tests and benchmarks).
        pieces_checked: 0,
        super_seeding: s.super_seeding,
        bytes_wanted: s.wanted,
        bytes_left: s.left,
        sequential: s.sequential,
    }
}

impl Runner {
    pub fn name(&self) -> &str {
        match self {
            Runner::Here(h) => h.name(),
            Runner::Owner(o) => &o.name,
        }
    }

    pub fn info_hash(&self) -> InfoHash {
        match self {
            Runner::Here(h) => h.info_hash(),
            Runner::Owner(o) => o.info_hash,
        }
    }

    /// The torrent's figures now (the last ones seen when the owner no longer runs it).
    pub fn stats(&self) -> TorrentStats {
        match self {
            Runner::Here(h) => h.stats(),
            Runner::Owner(o) => {
                let mut last = o.last.lock();
                if let Some(s) = o.live.stats(&o.info_hash) {
                    *last = Some(from_live(s));
                }
                last.clone().unwrap_or_else(|| {
                    from_live(LiveStats {
                        name: o.name.clone(),
                        state: "checking".into(),
                        progress: 0.0,
                        pieces_have: 0,
                        pieces_total: 1,
                        verified: 0,
                        size: 0,
                        down_rate: 0,
                        up_rate: 0,
                        downloaded: 0,
                        uploaded: 0,
                        peers: 0,
                        seeds: 0,
                        data_dir: PathBuf::new(),
                        pieces_withdrawn: 0,
                        super_seeding: false,
                        wanted: 1,
                        left: 1,
                        sequential: false,
                        files: Vec::new(),
                        limits: Default::default(),
                    })
                })
            }
        }
    }

    /// The torrent left the session that ran it (removed or cancelled).
    pub fn is_removed(&self) -> bool {
        match self {
            Runner::Here(h) => h.is_removed(),
            Runner::Owner(o) => o.live.stats(&o.info_hash).is_none(),
        }
    }

    /// Resolves once every piece is verified; an error if the torrent fails or goes away first.
    pub async fn wait_complete(&self) -> anyhow::Result<()> {
        let o = match self {
            Runner::Here(h) => return h.wait_complete().await,
            Runner::Owner(o) => o.clone(),
        };
        loop {
            match o.live.stats(&o.info_hash).map(from_live) {
                None => anyhow::bail!("no longer running in the shell or daemon"),
                Some(TorrentStats {
                    state: TorrentState::Error(e),
                    ..
                }) => anyhow::bail!("{e}"),
                Some(s) if s.pieces_have == s.pieces_total && s.state != TorrentState::Checking => {
                    return Ok(())
                }
                Some(_) => tokio::time::sleep(OWNER_POLL).await,
            }
        }
    }
}
