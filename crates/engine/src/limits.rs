//! Per-torrent limits: each torrent's own upload and download token buckets, and the rule that
//! combines them with the session's (a torrent honours both, unless told not to honour the
//! session's); its bandwidth priority, by which the session's limits serve it
//! ([`super::bandwidth`]); and its own most peers, in place of the session's
//! `max_peers_per_torrent`. Peer tasks wait here for their turn before sending or reading; front
//! ends read and change the limits through [`TorrentHandle::limits`] and
//! [`TorrentHandle::set_limits`].
//!
//! Cost on the transfer path: an unlimited bucket answers after one relaxed atomic load (see
//! [`Limiter::reserve`] and [`SharedLimiter::acquire`]), so a torrent without limits of its own
//! adds one load per upload batch and per socket read, and takes no lock.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use super::bandwidth::{Priority, SharedLimiter};
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
}

impl Limits {
    pub fn new(l: &TorrentLimits) -> Self {
        Limits {
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

    fn session<'a>(&self, limiter: &'a Option<SharedLimiter>) -> Option<&'a SharedLimiter> {
        limiter
            .as_ref()
            .filter(|_| self.honors_session.load(Ordering::Relaxed))
    }

    /// Waits until `n` bytes of this torrent may be sent: its own bucket's delay, then its turn
    /// at the session's.
    pub async fn upload_turn(&self, ctx: &SessionCtx, n: u64) {
        Self::turn(
            &self.upload,
            self.session(&ctx.upload_limit),
            n,
            self.priority(),
        )
        .await
    }

    /// Waits until the socket may be read again after receiving `n` bytes for this torrent.
    pub async fn download_turn(&self, ctx: &SessionCtx, n: u64) {
        Self::turn(
            &self.download,
            self.session(&ctx.download_limit),
            n,
            self.priority(),
        )
        .await
    }

    async fn turn(own: &Limiter, session: Option<&SharedLimiter>, n: u64, p: Priority) {
        let wait = own.reserve(n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if let Some(s) = session {
            s.acquire(n, p).await;
        }
    }

    /// Whether any bucket bounds this torrent's downloads now (else [`Self::download_turn`]
    /// returns at once).
    pub fn download_limited(&self, ctx: &SessionCtx) -> bool {
        self.download.rate().is_some()
            || self
                .session(&ctx.download_limit)
                .and_then(SharedLimiter::rate)
                .is_some()
    }

    /// The download rate this torrent may reach (the lower of its own and, when it honours it, the
    /// session's); `None` = unlimited.
    pub fn download_rate(&self, ctx: &SessionCtx) -> Option<u64> {
        let session = self
            .session(&ctx.download_limit)
            .and_then(SharedLimiter::rate);
        match (self.download.rate(), session) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
        let l = Limits::new(&TorrentLimits::default());
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
