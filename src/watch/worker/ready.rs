//! What happens to settled entries: each is hashed (data) or read (.torrent), probed again (a change
//! while it was read starts it over, and a change during hashing cancels the hash at once), then the
//! batch is recorded with one locked update of torrents.toml and handed to [`Sharing`](crate::watch::Sharing).
//! A torrent hashed but not yet recorded is cached while its entry is unchanged, so a failed save of
//! torrents.toml never costs a second hash.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Worker;
use crate::config::Following;
use crate::engine::FilePriority;
use crate::events::Event;
use crate::metainfo::{Metainfo, MetainfoError};
use crate::watch::actions::{self, Made};
use crate::watch::ledger::{self, NewShare, Recorded};
use crate::watch::scan::{self, EntryKind, Fingerprint, Listed, Probe, Settling};

/// Ready entries recorded together at most this long after the first of them was hashed.
const BATCH_WINDOW: Duration = Duration::from_secs(2);

/// A settled entry turned into a torrent, waiting to be recorded.
struct Outcome {
    item: Listed,
    fp: Fingerprint,
    meta: Metainfo,
    /// A magnet link's file choice (its `so`).
    files: Option<Vec<FilePriority>>,
    /// The mutable link (BEP 46) a magnet entry was resolved from, for the torrent to follow.
    follow: Option<Following>,
}

impl Worker {
    /// Starts `item` over: it changed while it was being hashed.
    fn restart(&mut self, item: &Listed, probe: Probe) {
        tracing::info!(
            "watch folder: {} changed while it was read; waiting again",
            item.path.display()
        );
        self.settling
            .insert(item.name.clone(), Settling::new(probe, Instant::now()));
    }

    /// Turns the settled entries into torrents and records them.
    pub(super) fn process(&mut self, ready: Vec<Listed>) {
        let mut batch = Vec::new();
        let mut batch_started = None;
        for item in ready {
            if self.inbox.stopping() {
                break;
            }
            let Some(before) = self.settling.get(&item.name).map(|s| s.probe.clone()) else {
                continue;
            };
            let fp = match &before {
                Ok(fp) => *fp,
                Err(msg) => {
                    let msg = msg.clone();
                    self.reject(&item, before, msg);
                    continue;
                }
            };
            let result = self.torrent_of(&item, &fp);
            let after = scan::probe(&item.path);
            let cancelled = matches!(result, Err(ref e) if e.is::<Cancelled>());
            if after != before || cancelled {
                if cancelled && !self.inbox.stopping() {
                    self.counts.abandoned += 1;
                }
                self.hashed_cache.remove(&item.name);
                self.restart(&item, after);
                continue;
            }
            let result = result.and_then(|(meta, follow)| {
                let files = self.magnet_files(&item, &meta)?;
                Ok((meta, files, follow))
            });
            match result {
                Err(e) => self.reject(&item, before, format!("{e:#}")),
                Ok((meta, files, follow)) => {
                    self.hashed_cache
                        .insert(item.name.clone(), (fp, (meta.clone(), follow.clone())));
                    batch.push(Outcome {
                        item,
                        fp,
                        meta,
                        files,
                        follow,
                    });
                    let started = *batch_started.get_or_insert_with(Instant::now);
                    if started.elapsed() >= BATCH_WINDOW {
                        self.commit(std::mem::take(&mut batch));
                        batch_started = None;
                    }
                }
            }
        }
        self.commit(batch);
    }

    /// Hashes a data entry (or reuses the torrent hashed for it while it has not changed) or reads a
    /// dropped .torrent.
    fn torrent_of(&mut self, item: &Listed, fp: &Fingerprint) -> anyhow::Result<Made> {
        if let Some((cached_fp, made)) = self.hashed_cache.get(&item.name) {
            if cached_fp == fp {
                return Ok(made.clone());
            }
        }
        match item.kind {
            EntryKind::Torrent => actions::read_dropped(&item.path)
                .map(|m| (m, None))
                .map_err(anyhow::Error::msg),
            EntryKind::Magnet => {
                let link = actions::read_magnet(&item.path, item.line)?;
                tracing::info!(
                    "watch folder: fetching the metadata of {}",
                    item.path.display()
                );
                self.rt.block_on(self.sharing.fetch_magnet(&link))
            }
            EntryKind::Data => {
                let cancel = Arc::new(AtomicBool::new(false));
                self.inbox
                    .set_hashing(Some((item.name.clone(), cancel.clone())));
                tracing::info!("watch folder: hashing {}", item.path.display());
                self.counts.hashed += 1;
                self.counts.hashing = Some(item.name.clone());
                self.publish_status();
                let res = actions::hash_entry(
                    &item.path,
                    &self.cfg.trackers,
                    (self.cfg.format, self.cfg.mtime),
                    cancel,
                );
                self.inbox.set_hashing(None);
                self.counts.hashing = None;
                self.publish_status();
                res.map(|m| (m, None)).map_err(|e| match e {
                    MetainfoError::Cancelled => anyhow::Error::new(Cancelled),
                    other => anyhow::Error::new(other),
                })
            }
        }
    }

    /// The files a dropped magnet link's `so` (BEP 53) picks of `meta` (`None`: every file, or not a
    /// magnet link).
    fn magnet_files(
        &self,
        item: &Listed,
        meta: &Metainfo,
    ) -> anyhow::Result<Option<Vec<FilePriority>>> {
        if item.kind != EntryKind::Magnet {
            return Ok(None);
        }
        let link = actions::read_magnet(&item.path, item.line)?;
        // A mutable link (BEP 46) chooses no files.
        if btorrent_proto::mutable_link::MutableLink::parse(&link)?.is_some() {
            return Ok(None);
        }
        crate::source::magnet_files(&btorrent_proto::magnet::Magnet::parse(&link)?, meta)
    }

    /// Records a batch with one locked update of torrents.toml, then starts sharing what is new.
    fn commit(&mut self, batch: Vec<Outcome>) {
        if batch.is_empty() {
            return;
        }
        let output_dir = self.cfg.output_dir.clone();
        let torrents_dir = self.cfg.torrents_dir.clone();
        let data_dirs: Vec<Result<PathBuf, String>> = batch
            .iter()
            .map(|o| match o.item.kind {
                EntryKind::Torrent | EntryKind::Magnet => Ok(output_dir.clone()),
                EntryKind::Data => actions::data_dir_of(&o.item.path)
                    .map_err(|e| format!("cannot resolve {}: {e}", o.item.path.display())),
            })
            .collect();
        let entries: Vec<PathBuf> = batch.iter().map(|o| o.item.entry()).collect();
        let results = self.cfg.torrents.update(|cfg| {
            Ok(batch
                .iter()
                .zip(&data_dirs)
                .zip(&entries)
                .map(|((o, data_dir), entry)| {
                    let data_dir = data_dir.as_ref().map_err(Clone::clone)?;
                    // As an add through the RPC: while this process keeps a queue that may
                    // apply, it waits there (a download for its check first).
                    let download = o.item.kind.downloads();
                    let queued = self.cfg.torrents.queue().holds_new(&cfg.settings, download);
                    ledger::record(
                        cfg,
                        &NewShare {
                            entry,
                            meta: &o.meta,
                            fp: o.fp,
                            data_dir,
                            torrents_dir: &torrents_dir,
                            download,
                            files: o.files.as_deref(),
                            queued,
                            follow: o.follow.as_ref(),
                        },
                    )
                })
                .collect::<Vec<_>>())
        });
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                // Nothing was recorded; the entries stay settled and are tried again after another
                // quiet period, from the cached torrents.
                let msg = format!("{e:#}");
                for o in &batch {
                    if let Some(s) = self.settling.get_mut(&o.item.name) {
                        s.since = Instant::now();
                    }
                }
                return self.trouble(msg);
            }
        };
        for ((o, res), data_dir) in batch.into_iter().zip(results).zip(data_dirs) {
            self.hashed_cache.remove(&o.item.name);
            let (file, fresh) = match res {
                Err(msg) => {
                    self.reject(&o.item, Ok(o.fp), msg);
                    continue;
                }
                Ok(Recorded::New { file }) => (file, true),
                Ok(Recorded::Kept { file }) => (file, false),
                Ok(Recorded::Replaced { file, old }) => {
                    tracing::info!(
                        "watch folder: {} changed; replacing its torrent {old}",
                        o.item.path.display()
                    );
                    if let Err(e) = self.rt.block_on(self.sharing.stop(&old)) {
                        tracing::warn!("watch folder: stopping {old}: {e:#}");
                    }
                    self.active.remove(&old);
                    (file, true)
                }
            };
            self.settling.remove(&o.item.name);
            self.rejected.remove(&o.item.name);
            let data_dir = data_dir.expect("recorded entries have a data folder");
            // Where the entry keeps it: a download may wait in the incomplete folder.
            let data_dir = self
                .cfg
                .torrents
                .config()
                .ok()
                .and_then(|c| c.find(&o.meta.info_hash).map(|e| c.resolve(&e.data)))
                .unwrap_or(data_dir);
            if !self.active.contains(&o.meta.info_hash)
                && self.start_sharing(&o.item, &o.meta, &data_dir)
                && fresh
            {
                self.announce_shared(&o, &file, &data_dir);
            }
        }
    }

    fn announce_shared(&self, o: &Outcome, file: &Path, data_dir: &Path) {
        let name = o.meta.info.name.clone();
        match o.item.kind {
            EntryKind::Data => {
                tracing::info!(
                    "watch folder: seeding {name} ({}), torrent {}",
                    o.meta.info_hash,
                    file.display()
                );
                self.publish(Event::WatchSeeded {
                    info_hash: o.meta.info_hash,
                    name,
                    path: o.item.path.clone(),
                    message: format!("torrent written to {}", file.display()),
                });
            }
            EntryKind::Torrent | EntryKind::Magnet => {
                let ih = o.meta.info_hash;
                let paused = self
                    .cfg
                    .torrents
                    .config()
                    .ok()
                    .is_some_and(|cfg| cfg.find(&ih).is_some_and(|e| e.state == "paused"));
                if paused {
                    tracing::info!(
                        "watch folder: added {name} ({ih}) paused, as start_added_torrents = false; \
                         b-resume {ih} starts it"
                    );
                } else {
                    tracing::info!(
                        "watch folder: downloading {name} ({ih}) into {}",
                        data_dir.display()
                    );
                }
            }
        }
    }
}

/// A hash stopped because its entry changed or the watcher stops.
#[derive(Debug, thiserror::Error)]
#[error("cancelled")]
struct Cancelled;
