//! Where a `TorrentHandle`'s torrent runs, for the handle's figures and its `wait`: in this
//! process's peer session ([`Runner::Here`]: the engine's own handle, whose completion wakes the
//! waiter), or elsewhere, which for a one-shot command is the shell or daemon that owns
//! torrents.toml ([`Runner::Owner`]: a one-shot `start` or `seed` hands its torrent over through the
//! control socket, so two processes never run one torrent; its figures come through
//! [`LiveTorrents`] and a wait looks at them every 200 ms). Both give the same [`TorrentStats`].
//! A handle asks anew at each use, so one made by `torrent(name)` and one returned by `start` see
//! the same torrent the same way, wherever it runs.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{TorrentHandle, TorrentStats};
use crate::script::host::HostContext;
use crate::script::live::LiveTorrents;
use crate::types::InfoHash;

/// How often a torrent run by the owner is looked at while waited on.
const OWNER_POLL: Duration = Duration::from_millis(200);

#[derive(Clone)]
pub enum Runner {
    /// In this process's peer session.
    Here(TorrentHandle),
    /// In the shell or daemon that owns torrents.toml (or a stand-in for the engine in tests).
    Owner(Arc<dyn LiveTorrents>),
}

impl Runner {
    /// Where the torrent runs now; `None` when it runs nowhere (never started, stopped, removed).
    pub fn find(ctx: &HostContext, ih: &InfoHash) -> Option<Runner> {
        if let Some(h) = ctx.peer.current().and_then(|s| s.get(ih)) {
            return Some(Runner::Here(h));
        }
        ctx.live
            .stats(ih)
            .is_some()
            .then(|| Runner::Owner(ctx.live.clone()))
    }

    /// The torrent's figures now; `None` once it no longer runs where it ran.
    pub fn stats(&self, ih: &InfoHash) -> Option<TorrentStats> {
        match self {
            Runner::Here(h) => (!h.is_removed()).then(|| h.stats()),
            Runner::Owner(live) => live.stats(ih),
        }
    }

    /// Resolves once every wanted piece is verified; an error if the torrent fails or stops running
    /// first.
    pub async fn wait_complete(&self, ih: InfoHash) -> anyhow::Result<()> {
        let live = match self {
            Runner::Here(h) => return Ok(h.wait_complete().await?),
            Runner::Owner(live) => live.clone(),
        };
        loop {
            match live.stats(&ih) {
                None => anyhow::bail!("no longer running in the shell or daemon"),
                Some(s) => match s.state.error() {
                    // Worded as the engine words it for a torrent of this process.
                    Some(e) => anyhow::bail!("{} has failed: {e}", s.name),
                    None if s.is_complete() => return Ok(()),
                    None => tokio::time::sleep(OWNER_POLL).await,
                },
            }
        }
    }
}
