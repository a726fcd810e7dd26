//! The incomplete folder, Transmission's `incomplete-dir`. While it is on (`incomplete_dir_enabled`,
//! or `incomplete_dir` set), a torrent added through the RPC or the watch folder to be downloaded is
//! kept there until every wanted piece is verified, then moved to its own folder (the one it was
//! added with) and seeded from there ([`placement`]). Its entry records both: `data`, where the
//! data is, and `complete_dir`, where it goes, so a restart finds a move still to make. A torrent
//! whose data is already in its own folder is checked and completed there. `b-start` and scripts'
//! `start()` name their folder and wait for the download in it: they do not use this folder.
//!
//! One task ([`spawn`], started with the services) looks every [`LOOK_EVERY`], and as soon as a
//! torrent completes, at the entries with a `complete_dir`, and moves the data of each whose torrent
//! runs here, checked, with nothing wanted left and no other move under way
//! ([`crate::actions::move_to`], which clears `complete_dir`), paused or not. A move that fails
//! (a file of that name already in the way) is reported once and not tried again in this run.
//!
//! Until the data is in its own folder the torrent is not done for the RPC: `downloadDir` names its
//! own folder from the start, and `status` says downloading while the move is pending, so a client
//! that imports completed downloads from `downloadDir` (Sonarr, Radarr) never looks there too early.
//! The program for completed downloads ([`crate::hooks`]) runs once the data is there.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::Config;
use crate::engine::{TorrentState, TorrentStats};
use crate::events::{Event, EventBus};
use crate::metainfo::Info;
use crate::services::PeerSlot;
use crate::types::InfoHash;

/// How often the mover looks when no completion wakes it sooner.
pub const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Where a torrent added to download into `dir` is kept until complete: the incomplete folder, with
/// `dir` to move to, while that folder is on, differs from `dir`, and `dir` does not already hold
/// the torrent's file or top folder; else `dir` itself.
pub fn placement(cfg: &Config, info: &Info, dir: &Path) -> (PathBuf, Option<PathBuf>) {
    let Some(incomplete) = cfg.incomplete_folder() else {
        return (dir.to_path_buf(), None);
    };
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let incomplete = std::path::absolute(&incomplete).unwrap_or(incomplete);
    if incomplete == dir || dir.join(&info.name).exists() {
        return (dir, None);
    }
    (incomplete, Some(dir))
}

/// Whether a torrent of `stats` is ready to move to its own folder: its check over, nothing wanted
/// left, not failed, and no move of its data under way.
pub fn ready(stats: &TorrentStats) -> bool {
    stats.checked
        && stats.bytes_left == 0
        && !stats.moving
        && !matches!(stats.state, TorrentState::Error(_) | TorrentState::Checking)
}

/// Starts the task that moves completed downloads out of the incomplete folder; it runs until
/// aborted or the bus closes.
pub fn spawn(peer: PeerSlot, bus: &EventBus) -> JoinHandle<()> {
    let mut events = bus.subscribe();
    tokio::spawn(async move {
        let mut looks = peer.torrents().looks(LOOK_EVERY);
        // Moves that failed in this run: not tried again until the next.
        let mut failed: HashSet<InfoHash> = HashSet::new();
        loop {
            tokio::select! {
                alive = looks.next() => if !alive { return },
                ev = events.recv() => match ev {
                    Ok(Event::Engine(crate::engine::Event::Completed { .. })) => {}
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
            for (ih, name, to) in due(&peer, &failed) {
                tracing::info!("{name}: complete, moving it to {}", to.display());
                let moved = crate::actions::move_to(peer.torrents(), &peer, ih, &name, &to).await;
                if let Err(e) = moved {
                    tracing::warn!(
                        "{name}: cannot move it from the incomplete folder to {}: {e:#}",
                        to.display()
                    );
                    failed.insert(ih);
                }
            }
        }
    })
}

/// The entries whose data is to move now: (info-hash, name, their own folder).
fn due(peer: &PeerSlot, failed: &HashSet<InfoHash>) -> Vec<(InfoHash, String, PathBuf)> {
    let (Some(session), Ok(cfg)) = (peer.current(), peer.torrents().config()) else {
        return Vec::new();
    };
    cfg.torrents
        .iter()
        .filter_map(|e| {
            let to = e.complete_dir.as_ref()?;
            let ih = e.hash().filter(|ih| !failed.contains(ih))?;
            let h = session.get(&ih)?;
            ready(&h.stats()).then(|| (ih, e.name.clone(), cfg.resolve(to)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str) -> Info {
        Info {
            name: name.into(),
            piece_length: 16384,
            pieces: vec![],
            v2: None,
            hybrid: None,
            files: vec![],
            multi_file: false,
            private: false,
            source: None,
            total_length: 0,
        }
    }

    #[test]
    fn a_download_goes_to_the_incomplete_folder_unless_its_data_is_already_home() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        std::fs::write(&path, "[settings]\n").unwrap();
        let mut cfg = Config::load(&path).unwrap();
        let home = dir.path().join("media");
        let i = info("film.mkv");
        assert_eq!(placement(&cfg, &i, &home), (home.clone(), None), "off");
        cfg.settings.incomplete_dir = Some("partial".into());
        let partial = dir.path().join("partial");
        assert_eq!(
            placement(&cfg, &i, &home),
            (partial.clone(), Some(home.clone()))
        );
        // Its file already there: checked and completed in place.
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(home.join("film.mkv"), b"part").unwrap();
        assert_eq!(placement(&cfg, &i, &home), (home.clone(), None));
        // Switched off, the folder kept; added into the incomplete folder itself: in place.
        cfg.settings.incomplete_dir_enabled = Some(false);
        assert_eq!(placement(&cfg, &info("other"), &home), (home.clone(), None));
        cfg.settings.incomplete_dir_enabled = Some(true);
        assert_eq!(placement(&cfg, &info("other"), &partial), (partial, None));
        // On without a folder named: `incomplete` beside torrents.toml.
        cfg.settings.incomplete_dir = None;
        assert_eq!(
            placement(&cfg, &info("other"), &home).0,
            dir.path().join("incomplete")
        );
    }

    #[test]
    fn only_a_checked_complete_torrent_not_moving_is_ready() {
        let done = TorrentStats {
            state: TorrentState::Seeding,
            checked: true,
            bytes_left: 0,
            ..Default::default()
        };
        assert!(ready(&done));
        let paused = TorrentStats {
            state: TorrentState::Paused,
            ..done.clone()
        };
        assert!(ready(&paused), "a paused one moves too");
        for not in [
            TorrentStats {
                bytes_left: 1,
                ..done.clone()
            },
            TorrentStats {
                checked: false,
                state: TorrentState::Paused,
                ..done.clone()
            },
            TorrentStats {
                moving: true,
                ..done.clone()
            },
            TorrentStats {
                state: TorrentState::Error("disk".into()),
                ..done.clone()
            },
        ] {
            assert!(!ready(&not), "{not:?}");
        }
    }
}
