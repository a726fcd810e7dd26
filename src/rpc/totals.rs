//! `session-stats`' figures: this run's (`current-stats`) and every run's (`cumulative-stats`),
//! which are kept in `.btorrent/stats.json` beside torrents.toml: bytes uploaded and downloaded,
//! torrents added, runs, seconds active.
//!
//! This run's bytes are the torrents' own counters (each counts from 0 when it is added to the
//! session). They are noted per torrent at every look ([`Totals::look`]), so a torrent removed
//! during the run still counts, and one added again counts both times. The file is written every
//! [`SAVE_EVERY`] and when the RPC server stops ([`spawn_saver`]); a crash loses at most that
//! much. A file that cannot be read is set aside as `stats.json.bad` (logged) and counting starts
//! again from zero; nothing is overwritten unseen.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::types::InfoHash;

/// Where the cumulative figures are kept, from the folder of torrents.toml.
pub const FILE: &str = ".btorrent/stats.json";

/// How often they are written while the server runs.
pub const SAVE_EVERY: Duration = Duration::from_secs(60);

/// One set of figures, as `session-stats` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Figures {
    pub uploaded_bytes: u64,
    pub downloaded_bytes: u64,
    pub files_added: u64,
    pub session_count: u64,
    pub seconds_active: u64,
}

impl Figures {
    /// As `session-stats` shows them.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "uploadedBytes": self.uploaded_bytes,
            "downloadedBytes": self.downloaded_bytes,
            "filesAdded": self.files_added,
            "sessionCount": self.session_count,
            "secondsActive": self.seconds_active,
        })
    }
}

/// The figures of earlier runs and this one's.
pub struct Totals {
    file: PathBuf,
    before: Figures,
    started: Instant,
    run: Mutex<Run>,
}

#[derive(Default)]
struct Run {
    /// Each torrent's counters (uploaded, downloaded) at the last look.
    seen: HashMap<InfoHash, (u64, u64)>,
    /// What earlier instances of torrents added again moved (their counters restarted at 0).
    left: (u64, u64),
}

impl Totals {
    /// Reads what earlier runs kept in `file` (none yet: zeros).
    pub fn open(file: PathBuf) -> Totals {
        let before = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                let bad = file.with_extension("json.bad");
                tracing::warn!(
                    "{}: not the session statistics ({e}); set aside as {} and counted again from 0",
                    file.display(),
                    bad.display()
                );
                let _ = std::fs::rename(&file, &bad);
                Figures::default()
            }),
            Err(_) => Figures::default(),
        };
        Totals {
            file,
            before,
            started: Instant::now(),
            run: Mutex::new(Run::default()),
        }
    }

    /// Notes the torrents' counters now (`(info-hash, uploaded, downloaded)` each) and gives this
    /// run's figures.
    pub fn look(&self, torrents: impl IntoIterator<Item = (InfoHash, u64, u64)>) -> Figures {
        let mut run = self.run.lock();
        for (ih, up, down) in torrents {
            let old = run.seen.insert(ih, (up, down));
            if let Some((old_up, old_down)) = old {
                if up < old_up || down < old_down {
                    // Removed and added again: the old instance's counts stay.
                    run.left.0 += old_up;
                    run.left.1 += old_down;
                }
            }
        }
        let (up, down) = run
            .seen
            .values()
            .fold(run.left, |(u, d), (up, down)| (u + up, d + down));
        Figures {
            uploaded_bytes: up,
            downloaded_bytes: down,
            files_added: run.seen.len() as u64,
            session_count: 1,
            seconds_active: self.started.elapsed().as_secs(),
        }
    }

    /// Every run's figures, given this one's.
    pub fn cumulative(&self, current: &Figures) -> Figures {
        let b = &self.before;
        Figures {
            uploaded_bytes: b.uploaded_bytes + current.uploaded_bytes,
            downloaded_bytes: b.downloaded_bytes + current.downloaded_bytes,
            files_added: b.files_added + current.files_added,
            session_count: b.session_count + 1,
            seconds_active: b.seconds_active + current.seconds_active,
        }
    }

    /// Writes every run's figures, given this one's (atomically).
    pub fn save(&self, current: &Figures) -> std::io::Result<()> {
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let json =
            serde_json::to_vec_pretty(&self.cumulative(current)).map_err(std::io::Error::other)?;
        btorrent_proto::fs::write_atomic(&self.file, &json)
    }
}

/// The file of the torrents.toml at `config_path`.
pub fn file_for(config_path: &Path) -> PathBuf {
    config_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(FILE)
}

/// This run's figures from the running session's torrents.
pub async fn current(rpc: &super::Rpc) -> Figures {
    let torrents = match rpc.peer.get().await {
        Some(s) => s
            .torrents()
            .iter()
            .map(|h| {
                let s = h.stats();
                (h.info_hash(), s.uploaded, s.downloaded)
            })
            .collect(),
        None => Vec::new(),
    };
    rpc.totals.look(torrents)
}

/// Writes the figures every [`SAVE_EVERY`] and once more when `stop` is cancelled; `done` is
/// cancelled once that last save is written.
pub fn spawn_saver(rpc: Arc<super::Rpc>, stop: CancellationToken, done: CancellationToken) {
    tokio::spawn(async move {
        let _done = done.drop_guard();
        loop {
            let last = tokio::select! {
                _ = stop.cancelled() => true,
                _ = tokio::time::sleep(SAVE_EVERY) => false,
            };
            let figures = current(&rpc).await;
            let r = tokio::task::spawn_blocking({
                let rpc = rpc.clone();
                move || rpc.totals.save(&figures)
            })
            .await;
            if let Ok(Err(e)) = r {
                tracing::warn!("cannot keep the session statistics: {e}");
            }
            if last {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_counts_removed_and_re_added_torrents_and_adds_to_the_runs_before() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE);
        let (a, b) = (InfoHash([1; 20]), InfoHash([2; 20]));
        let first = Totals::open(file.clone());
        first.look([(a, 100, 10), (b, 5, 0)]);
        // b removed, a added again (counting from 0), then moving more.
        let now = first.look([(a, 30, 0)]);
        assert_eq!(
            (now.uploaded_bytes, now.downloaded_bytes, now.files_added),
            (135, 10, 2)
        );
        first.save(&now).unwrap();
        let second = Totals::open(file.clone());
        let now = second.look([(a, 1, 1)]);
        let all = second.cumulative(&now);
        assert_eq!(
            (
                all.uploaded_bytes,
                all.downloaded_bytes,
                all.files_added,
                all.session_count
            ),
            (136, 11, 3, 2)
        );
        // A file that is not ours is set aside, not overwritten unseen.
        std::fs::write(&file, "{ not json").unwrap();
        let third = Totals::open(file.clone());
        assert_eq!(third.cumulative(&Figures::default()).session_count, 1);
        assert!(file.with_extension("json.bad").exists());
    }
}
