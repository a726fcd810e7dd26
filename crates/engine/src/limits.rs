//! Per-torrent limits: each torrent's own upload and download token buckets, and the rule that
//! combines them with its bandwidth group's and the session's (a torrent honours its own, then its
//! group's and the session's, unless told not to honour its parent's: see [`super::groups`]); its
//! bandwidth priority, by which the shared limits serve it ([`super::bandwidth`]); and its own most
//! peers, in place of the session's `max_peers_per_torrent`. Peer tasks wait here for their turn
//! before sending or reading; front ends read and change the limits through
//! [`TorrentHandle::limits`] and [`TorrentHandle::set_limits`].
//!
//! Cost on the transfer path: an unlimited bucket answers after one relaxed atomic load (see
//! [`Limiter::reserve`] and [`SharedLimiter::acquire`]), so a torrent without limits of its own
//! and in no group adds one load per upload batch and per socket read, and takes no lock; one in
//! a group takes the group's read lock once per turn.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::bandwidth::{Priority, SharedLimiter};
use super::groups::Group;
use super::rate::Limiter;
use super::session::SessionCtx;
use super::torrent::TorrentHandle;

/// A torrent's own limits: speeds in bytes per second (`None` = unlimited), and peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TorrentLimits {
    pub upload: Option<u64>,
    pub download: Option<u64>,
    /// Whether the session's limits apply to this torrent too (Transmission's
    /// `honorsSessionLimits`); when false only the torrent's own limits bound it.
    pub honors_session_limits: bool,
    /// Most peers connected at once (Transmission's per-torrent `peer-limit`); `None` = the
    /// session's `max_peers_per_torrent`. A lower limit cuts no connection; none is made or taken
    /// until the torrent is under it.
    #[serde(default)]
    pub max_peers: Option<usize>,
    /// Whose bytes go first while the session's limits hold traffic back (Transmission's
    /// `bandwidthPriority`).
    #[serde(default)]
    pub priority: Priority,
}

impl Default for TorrentLimits {
    fn default() -> Self {
        TorrentLimits {
            upload: None,
            download: None,
            honors_session_limits: true,
            max_peers: None,
            priority: Priority::Normal,
        }
    }
}

/// The live limits of one torrent.
#[derive(Debug)]
pub(crate) struct Limits {
    upload: Limiter,
    download: Limiter,
    honors_session: AtomicBool,
    /// 0 = the session's.
    max_peers: AtomicUsize,
    /// A [`Priority`] as its `u8`.
    priority: AtomicU8,
    /// Whether `group` holds one: read first, so a torrent in none takes no lock.
    in_group: AtomicBool,
    /// Its bandwidth group, by name.
    group: RwLock<Option<(String, Arc<Group>)>>,
}

/// Which way bytes go.
#[derive(Clone, Copy)]
enum Way {
    Up,
    Down,
}

impl Limits {
    pub fn new(l: &TorrentLimits, group: Option<(String, Arc<Group>)>) -> Self {
        Limits {
            in_group: AtomicBool::new(group.is_some()),
            group: RwLock::new(group),
            upload: Limiter::new(l.upload.unwrap_or(0)),
            download: Limiter::new(l.download.unwrap_or(0)),
            honors_session: AtomicBool::new(l.honors_session_limits),
            max_peers: AtomicUsize::new(l.max_peers.unwrap_or(0)),
            priority: AtomicU8::new(l.priority as u8),
        }
    }

    pub fn get(&self) -> TorrentLimits {
        TorrentLimits {
            upload: self.upload.rate(),
            download: self.download.rate(),
            honors_session_limits: self.honors_session.load(Ordering::Relaxed),
            max_peers: Some(self.max_peers.load(Ordering::Relaxed)).filter(|&n| n > 0),
            priority: self.priority(),
        }
    }

    fn priority(&self) -> Priority {
        let p = self.priority.load(Ordering::Relaxed);
        Priority::ALL
            .into_iter()
            .find(|&q| q as u8 == p)
            .unwrap_or_default()
    }

    /// Most peers of this torrent now: its own limit, else the session's.
    pub fn max_peers(&self, ctx: &SessionCtx) -> usize {
        match self.max_peers.load(Ordering::Relaxed) {
            0 => ctx.max_peers_per_torrent(),
            n => n,
        }
    }

    pub fn set(&self, l: &TorrentLimits) {
        self.upload.set_rate(l.upload.filter(|&r| r > 0));
        self.download.set_rate(l.download.filter(|&r| r > 0));
        self.honors_session
            .store(l.honors_session_limits, Ordering::Relaxed);
        self.max_peers
            .store(l.max_peers.unwrap_or(0), Ordering::Relaxed);
        self.priority.store(l.priority as u8, Ordering::Relaxed);
    }

    /// The name of its bandwidth group.
    pub fn group_name(&self) -> Option<String> {
        self.group.read().as_ref().map(|(n, _)| n.clone())
    }

    /// Puts it in `group` (or none).
    pub fn set_group(&self, group: Option<(String, Arc<Group>)>) {
        let mut held = self.group.write();
        self.in_group.store(group.is_some(), Ordering::Relaxed);
        *held = group;
    }

    /// The shared limiters that bind this torrent's bytes going `way`, besides its own bucket: its
    /// group's (when it honours its parent's limits) and the session's (when it and its group, if
    /// any, honour them).
    fn shared<'a>(
        &self,
        ctx: &'a SessionCtx,
        way: Way,
    ) -> (Option<Arc<Group>>, Option<&'a SharedLimiter>) {
        if !self.honors_session.load(Ordering::Relaxed) {
            return (None, None);
        }
        let group = if self.in_group.load(Ordering::Relaxed) {
            self.group.read().as_ref().map(|(_, g)| g.clone())
        } else {
            None
        };
        let session = match way {
            Way::Up => ctx.upload_limit.as_ref(),
            Way::Down => ctx.download_limit.as_ref(),
        }
        .filter(|_| group.as_ref().is_none_or(|g| g.honors_session()));
        (group, session)
    }

    /// Waits until `n` bytes of this torrent may be sent: its own bucket's delay, then its turn
    /// at its group's and the session's.
    pub async fn upload_turn(&self, ctx: &SessionCtx, n: u64) {
        self.turn(ctx, Way::Up, n).await
    }

    /// Waits until the socket may be read again after receiving `n` bytes for this torrent.
    pub async fn download_turn(&self, ctx: &SessionCtx, n: u64) {
        self.turn(ctx, Way::Down, n).await
    }

    async fn turn(&self, ctx: &SessionCtx, way: Way, n: u64) {
        let own = match way {
            Way::Up => &self.upload,
            Way::Down => &self.download,
        };
        let wait = own.reserve(n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let p = self.priority();
        let (group, session) = self.shared(ctx, way);
        if let Some(g) = group {
            match way {
                Way::Up => g.upload.acquire(n, p).await,
                Way::Down => g.download.acquire(n, p).await,
            }
        }
        if let Some(s) = session {
            s.acquire(n, p).await;
        }
    }

    /// Whether any bucket bounds this torrent's downloads now (else [`Self::download_turn`]
    /// returns at once).
    pub fn download_limited(&self, ctx: &SessionCtx) -> bool {
        self.download_rate(ctx).is_some()
    }

    /// The download rate this torrent may reach (the lowest of its own and those of its group and
    /// the session that bind it); `None` = unlimited.
    pub fn download_rate(&self, ctx: &SessionCtx) -> Option<u64> {
        self.rate(ctx, Way::Down)
    }

    /// The upload rate this torrent may reach, as [`Self::download_rate`].
    pub fn upload_rate(&self, ctx: &SessionCtx) -> Option<u64> {
        self.rate(ctx, Way::Up)
    }

    fn rate(&self, ctx: &SessionCtx, way: Way) -> Option<u64> {
        let (group, session) = self.shared(ctx, way);
        let (own, group) = match way {
            Way::Up => (&self.upload, group.map(|g| g.upload.rate())),
            Way::Down => (&self.download, group.map(|g| g.download.rate())),
        };
        [
            own.rate(),
            group.flatten(),
            session.and_then(SharedLimiter::rate),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

impl TorrentHandle {
    /// The torrent's own speed limits.
    pub fn limits(&self) -> TorrentLimits {
        self.0.limits.get()
    }

    /// Changes the torrent's speed limits while it runs (0 counts as unlimited).
    pub fn set_limits(&self, limits: TorrentLimits) {
        self.0.limits.set(&limits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_get_round_trip_with_zero_as_unlimited() {
        let l = Limits::new(&TorrentLimits::default(), None);
        assert_eq!(l.get(), TorrentLimits::default());
        let want = TorrentLimits {
            upload: Some(30_000),
            download: Some(50_000),
            honors_session_limits: false,
            max_peers: Some(3),
            priority: Priority::High,
        };
        l.set(&want);
        assert_eq!(l.get(), want);
        l.set(&TorrentLimits {
            upload: Some(0),
            ..want
        });
        assert_eq!(l.get().upload, None);
        l.set(&TorrentLimits {
            max_peers: Some(0),
            ..want
        });
        assert_eq!(l.get().max_peers, None, "0 peers reads as the session's");
    }
}
