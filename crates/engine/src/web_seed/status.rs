//! What each web seed of a torrent is doing, for those who show it (`b-show --peers`, scripts'
//! `t.web_seed_status`, the RPC's `webseeds_ex`): one [`WebSeedView`] per HTTP(S) URL of the
//! torrent's `url-list`, made with the torrent and shared by its task (which writes it) and readers.
//!
//! Invariants: `sending` counts the rounds in flight of the tasks serving this URL (a stopped run's
//! task and the next run's may overlap for a moment; each counts its own), kept by the [`Sending`]
//! guard alone; `downloaded` only grows; `problem` is written by the task alone: cleared when a
//! run starts and by each good answer, set by a failure (the seed is asked again) or a drop (not
//! asked again in this run).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::rate::Rate;

/// One web seed as [`crate::TorrentHandle::web_seeds`] shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WebSeedStatus {
    /// The URL, as the torrent's `url-list` gives it.
    pub url: String,
    /// A request to it is under way.
    pub downloading: bool,
    /// Bytes per second it sends now (smoothed over a few seconds).
    pub down_rate: u64,
    /// Bytes it sent in this session.
    pub downloaded: u64,
    /// Why its last request failed (until one succeeds), or why it was dropped.
    pub error: Option<String>,
    /// Dropped for this run: it is asked again once the torrent is started again.
    pub dropped: bool,
}

/// Why the last request failed, and whether that dropped the seed.
#[derive(Default)]
struct Problem {
    error: Option<String>,
    dropped: bool,
}

/// One web seed's figures (see the module doc).
pub(crate) struct WebSeedView {
    pub url: String,
    sending: AtomicUsize,
    downloaded: AtomicU64,
    rate: Mutex<Rate>,
    problem: Mutex<Problem>,
}

/// The rate's smoothing window, as for peers.
const RATE_WINDOW: Duration = Duration::from_secs(3);

impl WebSeedView {
    /// A view for each HTTP(S) URL of `urls`, each URL once (others are never asked).
    pub(crate) fn for_urls(urls: &[String]) -> Vec<Arc<WebSeedView>> {
        let mut views: Vec<Arc<WebSeedView>> = Vec::new();
        for u in urls {
            let http = u.starts_with("http://") || u.starts_with("https://");
            if http && !views.iter().any(|v| &v.url == u) {
                views.push(Arc::new(WebSeedView {
                    url: u.clone(),
                    sending: AtomicUsize::new(0),
                    downloaded: AtomicU64::new(0),
                    rate: Mutex::new(Rate::new(RATE_WINDOW)),
                    problem: Mutex::default(),
                }));
            }
        }
        views
    }

    pub(crate) fn is_sending(&self) -> bool {
        self.sending.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn add_downloaded(&self, bytes: u64) {
        self.downloaded.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A run starts, or a request succeeded: nothing wrong.
    pub(crate) fn clear_problem(&self) {
        *self.problem.lock() = Problem::default();
    }

    /// A request failed; it is asked again later.
    pub(crate) fn failed(&self, error: String) {
        *self.problem.lock() = Problem {
            error: Some(error),
            dropped: false,
        };
    }

    /// Dropped for this run, for `why`.
    pub(crate) fn dropped(&self, why: String) {
        *self.problem.lock() = Problem {
            error: Some(why),
            dropped: true,
        };
    }

    pub(crate) fn status(&self) -> WebSeedStatus {
        let downloaded = self.downloaded.load(Ordering::Relaxed);
        let down_rate = self.rate.lock().update(downloaded, Instant::now());
        let p = self.problem.lock();
        WebSeedStatus {
            url: self.url.clone(),
            downloading: self.is_sending(),
            down_rate,
            downloaded,
            error: p.error.clone(),
            dropped: p.dropped,
        }
    }
}

/// A failure as a seed's status shows it: the outermost context (the file's URL) and the root
/// cause ("Connection refused"), without the layers between.
pub(crate) fn brief(e: &anyhow::Error) -> String {
    let root = e.root_cause().to_string();
    let outer = e.to_string();
    if e.chain().count() > 1 && outer != root {
        format!("{outer}: {root}")
    } else {
        outer
    }
}

/// Counts a web seed as sending while it lasts: held by the seed's task while any round of it is
/// in flight (one server, however many requests).
pub(crate) struct Sending(Arc<WebSeedView>);

impl Sending {
    pub(crate) fn new(view: &Arc<WebSeedView>) -> Self {
        view.sending.fetch_add(1, Ordering::Relaxed);
        Sending(view.clone())
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        self.0.sending.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_view_per_http_url_and_what_it_shows() {
        let urls = [
            "http://a/x".to_string(),
            "ftp://b/x".to_string(),
            "https://c/".to_string(),
            "http://a/x".to_string(),
        ];
        let v = WebSeedView::for_urls(&urls);
        let got: Vec<&str> = v.iter().map(|v| v.url.as_str()).collect();
        assert_eq!(got, ["http://a/x", "https://c/"]);
        let a = &v[0];
        assert!(!a.status().downloading);
        {
            let _one = Sending::new(a);
            let _two = Sending::new(a);
            assert!(a.status().downloading);
        }
        assert!(!a.status().downloading);
        a.add_downloaded(1000);
        a.failed("HTTP 503".into());
        let st = a.status();
        assert_eq!(
            (st.downloaded, st.error.as_deref(), st.dropped),
            (1000, Some("HTTP 503"), false)
        );
        a.dropped("3 bad pieces".into());
        assert!(a.status().dropped);
        a.clear_problem();
        assert_eq!((a.status().error, a.status().dropped), (None, false));
    }

    #[test]
    fn a_failure_is_told_by_its_url_and_root_cause() {
        use anyhow::Context as _;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = Err::<(), _>(io)
            .context("tcp connect error")
            .context("http://h/a.bin")
            .unwrap_err();
        assert_eq!(brief(&e), "http://h/a.bin: Connection refused");
        assert_eq!(brief(&anyhow::anyhow!("HTTP 503")), "HTTP 503");
    }
}
