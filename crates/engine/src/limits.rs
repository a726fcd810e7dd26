//! Per-torrent speed limits: each torrent's own upload and download token buckets, and the rule
//! that combines them with the session's (a torrent honours both, unless told not to honour the
//! session's). Peer tasks ask here how long to wait before sending or reading; front ends read and
//! change the limits through [`TorrentHandle::limits`] and [`TorrentHandle::set_limits`].
//!
//! Cost on the transfer path: an unlimited bucket answers after one relaxed atomic load (see
//! [`Limiter::reserve`]), so a torrent without limits of its own adds one load per upload batch
//! and per socket read, and takes no lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::rate::Limiter;
use super::session::SessionCtx;
use super::torrent::TorrentHandle;

/// A torrent's speed limits, in bytes per second (`None` = unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TorrentLimits {
    pub upload: Option<u64>,
    pub download: Option<u64>,
    /// Whether the session's limits apply to this torrent too (Transmission's
    /// `honorsSessionLimits`); when false only the torrent's own limits bound it.
    pub honors_session_limits: bool,
}

impl Default for TorrentLimits {
    fn default() -> Self {
        TorrentLimits {
            upload: None,
            download: None,
            honors_session_limits: true,
        }
    }
}

/// The live limits of one torrent.
#[derive(Debug)]
pub(crate) struct Limits {
    upload: Limiter,
    download: Limiter,
    honors_session: AtomicBool,
}

impl Limits {
    pub fn new(l: &TorrentLimits) -> Self {
        Limits {
            upload: Limiter::new(l.upload.unwrap_or(0)),
            download: Limiter::new(l.download.unwrap_or(0)),
            honors_session: AtomicBool::new(l.honors_session_limits),
        }
    }

    pub fn get(&self) -> TorrentLimits {
        TorrentLimits {
            upload: self.upload.rate(),
            download: self.download.rate(),
            honors_session_limits: self.honors_session.load(Ordering::Relaxed),
        }
    }

    pub fn set(&self, l: &TorrentLimits) {
        self.upload.set_rate(l.upload.filter(|&r| r > 0));
        self.download.set_rate(l.download.filter(|&r| r > 0));
        self.honors_session
            .store(l.honors_session_limits, Ordering::Relaxed);
    }

    fn session<'a>(&self, limiter: &'a Option<Limiter>) -> Option<&'a Limiter> {
        limiter
            .as_ref()
            .filter(|_| self.honors_session.load(Ordering::Relaxed))
    }

    /// How long to wait before sending `n` bytes of this torrent: both buckets are charged, and
    /// the longer wait wins.
    pub fn upload_wait(&self, ctx: &SessionCtx, n: u64) -> Duration {
        let own = self.upload.reserve(n);
        match self.session(&ctx.upload_limit) {
            Some(s) => own.max(s.reserve(n)),
            None => own,
        }
    }

    /// How long to leave the socket unread after receiving `n` bytes for this torrent.
    pub fn download_wait(&self, ctx: &SessionCtx, n: u64) -> Duration {
        let own = self.download.reserve(n);
        match self.session(&ctx.download_limit) {
            Some(s) => own.max(s.reserve(n)),
            None => own,
        }
    }

    /// The download rate this torrent may reach (the lower of its own and, when it honours it, the
    /// session's); `None` = unlimited.
    pub fn download_rate(&self, ctx: &SessionCtx) -> Option<u64> {
        let session = self.session(&ctx.download_limit).and_then(Limiter::rate);
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
        };
        l.set(&want);
        assert_eq!(l.get(), want);
        l.set(&TorrentLimits {
            upload: Some(0),
            ..want
        });
        assert_eq!(l.get().upload, None);
    }
}
