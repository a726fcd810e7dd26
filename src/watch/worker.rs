//! The watch folder's thread: waits for news (file events, the next readiness check, the periodic
//! rescan), then makes a pass over the folder.
//!
//! A pass, in order:
//! 1. list the candidates; if the folder cannot be read or is missing, report it once and stop here
//!    (it is never taken for an empty one, which would stop every torrent);
//! 2. read the ledger from torrents.toml; entries recorded there but gone from the folder are
//!    forgotten and their torrents stopped;
//! 3. probe the entries that need it (all on a full pass; otherwise new, touched or due ones): one
//!    that matches its record is shared (seeded again after a restart, without hashing); one that
//!    was rejected and has not changed is skipped silently; any other is settling;
//! 4. the settled ones are hashed (data) or read (.torrent) one at a time, probed again (a change
//!    during hashing starts the entry over), and recorded in batches with one locked update of
//!    torrents.toml each, then handed to [`Sharing`] and announced on the bus.
//!
//! State owned by the thread alone (no locks): `settling` (entries waiting to settle), `rejected`
//! (entries reported and the probe they had; a changed probe gives them another chance), `active`
//! (torrents [`Sharing`] runs for us in this process), `hashed_cache` (a torrent hashed but not yet
//! recorded, reused while the entry is unchanged so a failed save never costs a second hash).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::actions::{self, Sharing};
use super::inbox::{self, FileEvents, Inbox};
use super::ledger::{self, Ledger, Record};
use super::scan::{self, EntryKind, Fingerprint, Listed, Probe, Settling};
use super::{WatchConfig, WatchStatus};

mod ready;
use crate::events::{Event, EventBus};
use crate::metainfo::Metainfo;
use crate::torrents::Torrents;
use crate::types::InfoHash;

pub(super) struct Worker {
    pub cfg: WatchConfig,
    pub sharing: Arc<dyn Sharing>,
    pub bus: EventBus,
    pub rt: tokio::runtime::Handle,
    pub inbox: Arc<Inbox>,
    pub status: tokio::sync::watch::Sender<WatchStatus>,
    /// Canonical paths of btorrent's own files, never shared.
    pub protected: Vec<PathBuf>,
    events: Option<FileEvents>,
    settling: HashMap<String, Settling>,
    rejected: HashMap<String, Probe>,
    unusable_reported: HashSet<OsString>,
    active: HashSet<InfoHash>,
    share_failed: HashMap<InfoHash, String>,
    hashed_cache: HashMap<String, (Fingerprint, actions::Made)>,
    /// The last problem with the folder or torrents.toml, reported once.
    trouble: Option<String>,
    counts: WatchStatus,
}

impl Worker {
    pub fn new(
        cfg: WatchConfig,
        sharing: Arc<dyn Sharing>,
        bus: EventBus,
        rt: tokio::runtime::Handle,
        inbox: Arc<Inbox>,
        status: tokio::sync::watch::Sender<WatchStatus>,
        protected: Vec<PathBuf>,
    ) -> Worker {
        Worker {
            cfg,
            sharing,
            bus,
            rt,
            inbox,
            status,
            protected,
            events: None,
            settling: HashMap::new(),
            rejected: HashMap::new(),
            unusable_reported: HashSet::new(),
            active: HashSet::new(),
            share_failed: HashMap::new(),
            hashed_cache: HashMap::new(),
            trouble: None,
            counts: WatchStatus::default(),
        }
    }

    /// Runs until [`Inbox::stop`].
    pub fn run(mut self) {
        let mut next_full = Instant::now();
        let settle =
            (self.cfg.quiet / 4).clamp(Duration::from_millis(20), Duration::from_millis(500));
        loop {
            let deadline = self.next_due().map_or(next_full, |d| d.min(next_full));
            if self.inbox.wait_until(deadline) {
                self.inbox.settle(settle);
            }
            if self.inbox.stopping() {
                break;
            }
            let news = self.inbox.take();
            let full = news.full || Instant::now() >= next_full;
            if full || news.rearm {
                self.arm_events(news.rearm);
            }
            self.pass(&news.dirty, full);
            if full {
                next_full = Instant::now() + self.cfg.rescan;
            }
            self.publish_status();
        }
    }

    /// The earliest readiness check due.
    fn next_due(&self) -> Option<Instant> {
        self.settling
            .values()
            .filter_map(|s| s.due_at(self.cfg.quiet))
            .min()
    }

    fn publish_status(&mut self) {
        self.counts.pending = self.settling.len();
        self.counts.rejected = self.rejected.len();
        self.counts.file_events = self.events.is_some();
        self.status.send_replace(self.counts.clone());
    }

    /// Sets up the file-event watch if it is missing or watches a folder that was replaced.
    fn arm_events(&mut self, force: bool) {
        if !self.cfg.file_events {
            return;
        }
        let dir = &self.cfg.watch_dir;
        let current = inbox::identity(dir);
        let stale = match &self.events {
            Some(ev) => force || current != Some(ev.identity),
            None => true,
        };
        if !stale || current.is_none() {
            if current.is_none() {
                self.events = None;
            }
            return;
        }
        self.events = None;
        match inbox::watch_events(dir, self.inbox.clone()) {
            Ok(ev) => self.events = Some(ev),
            Err(e) => tracing::warn!(
                "no file events for {} ({e}); relying on the rescan every {:?}",
                dir.display(),
                self.cfg.rescan
            ),
        }
    }

    fn publish(&self, ev: Event) {
        self.bus.publish(ev);
    }

    /// Reports a problem with the folder or the config file once (until a different one happens).
    /// Problems go out as `watch_rejected` events, which the front ends show; the log repeats them at
    /// debug level only, so each is seen once.
    fn trouble(&mut self, msg: String) {
        if self.trouble.as_deref() != Some(&msg) {
            tracing::debug!("watch folder: {msg}");
            self.publish(Event::WatchRejected {
                torrent: None,
                path: self.cfg.watch_dir.clone(),
                message: msg.clone(),
            });
            self.trouble = Some(msg);
        }
    }

    fn pass(&mut self, dirty: &HashSet<String>, full: bool) {
        self.counts.passes += 1;
        if full {
            self.counts.full_passes += 1;
        }
        let dir = self.cfg.watch_dir.clone();
        // A missing folder is trouble, not emptiness: it is not created again (it may be a mount point
        // whose share is away) and nothing recorded is stopped.
        let listing = match scan::list(&dir, &self.protected) {
            Ok(l) => l,
            Err(e) => return self.trouble(format!("cannot read {}: {e}", dir.display())),
        };
        self.unusable_reported
            .retain(|n| listing.unusable.iter().any(|(u, _)| u == n));
        for (name, why) in &listing.unusable {
            if self.unusable_reported.insert(name.clone()) {
                let path = dir.join(name);
                tracing::debug!("watch folder: {}: {why}", path.display());
                self.publish(Event::WatchRejected {
                    torrent: None,
                    path: path.clone(),
                    message: why.clone(),
                });
            }
        }
        // The ledger as the disk has it now (a `stat` when nothing changed).
        let cfg = match self.cfg.torrents.fresh() {
            Ok(c) => c,
            Err(e) => return self.trouble(format!("{e:#}")),
        };
        self.trouble = None;
        let ledger = Ledger::read(&cfg, &dir);
        self.retire_gone(&ledger, &listing, &dir);
        self.settling.retain(|n, _| listing.contains(n));
        self.rejected.retain(|n, _| listing.contains(n));
        self.hashed_cache.retain(|n, _| listing.contains(n));

        let now = Instant::now();
        let mut ready = Vec::new();
        for item in &listing.entries {
            let record = ledger.get(&item.name);
            let settling = self.settling.get(&item.name);
            let due = settling.is_some_and(|s| s.is_ready(now, self.cfg.quiet));
            let known =
                record.is_some() || settling.is_some() || self.rejected.contains_key(&item.name);
            if !(full || due || !known || dirty.contains(&item.name)) {
                if let (Some(rec), None) = (record, settling) {
                    self.ensure_shared(item, rec, full);
                }
                continue;
            }
            let probe = scan::probe(&item.path);
            if let (Some(rec), Ok(fp)) = (record, &probe) {
                if rec.matches(fp) {
                    self.settling.remove(&item.name);
                    self.rejected.remove(&item.name);
                    self.ensure_shared(item, rec, full);
                    continue;
                }
            }
            if self.rejected.get(&item.name) == Some(&probe) {
                continue;
            }
            self.rejected.remove(&item.name);
            match self.settling.entry(item.name.clone()) {
                Entry::Vacant(v) => {
                    let s = v.insert(Settling::new(probe, now));
                    if !s.waits_for_data() {
                        self.announce_pending(item);
                    }
                }
                Entry::Occupied(o) => {
                    let s = o.into_mut();
                    let was_waiting = s.waits_for_data();
                    if s.observe(probe, now) {
                        if was_waiting && !s.waits_for_data() {
                            self.announce_pending(item);
                        }
                    } else if s.is_ready(now, self.cfg.quiet) {
                        ready.push(item.clone());
                    }
                }
            }
        }
        self.counts.shared = ledger.len();
        if !ready.is_empty() {
            self.process(ready);
            if let Ok(cfg) = self.cfg.torrents.config() {
                self.counts.shared = Ledger::read(&cfg, &dir).len();
            }
        }
    }

    fn announce_pending(&self, item: &Listed) {
        tracing::info!("watch folder: {} waits to settle", item.path.display());
        self.publish(Event::WatchPending {
            path: item.path.clone(),
            message: match item.kind {
                EntryKind::Data => "waiting for the copy to finish",
                EntryKind::Torrent => "waiting for the .torrent to be complete",
                EntryKind::Magnet => "waiting for the magnet file to be complete",
            }
            .into(),
        });
    }

    /// Forgets the records of entries no longer in the folder and stops their torrents. An entry
    /// counts as gone only when the listing succeeded and the path itself is absent.
    fn retire_gone(&mut self, ledger: &Ledger, listing: &scan::Listing, dir: &Path) {
        let gone: Vec<(PathBuf, Record)> = ledger
            .iter()
            .filter(|(name, _)| !listing.contains(name))
            .map(|(name, rec)| (dir.join(name), rec.clone()))
            .filter(|(path, _)| {
                matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
            })
            .collect();
        if gone.is_empty() {
            return;
        }
        let forgotten = self.cfg.torrents.update(|cfg| {
            Ok(gone
                .iter()
                .filter(|(path, rec)| ledger::forget(cfg, path, &rec.info_hash))
                .cloned()
                .collect::<Vec<_>>())
        });
        let forgotten = match forgotten {
            Ok(f) => f,
            Err(e) => return self.trouble(format!("{e:#}")),
        };
        for (path, rec) in forgotten {
            tracing::info!(
                "watch folder: {} was removed; {} is no longer shared",
                path.display(),
                rec.name
            );
            if let Err(e) = self.rt.block_on(self.sharing.stop(&rec.info_hash)) {
                tracing::warn!("watch folder: stopping {}: {e:#}", rec.name);
            }
            self.active.remove(&rec.info_hash);
            self.share_failed.remove(&rec.info_hash);
        }
    }

    /// Makes sure the torrent recorded for `item` runs (after a restart, or after a failure, which is
    /// retried on full passes only).
    fn ensure_shared(&mut self, item: &Listed, rec: &Record, full: bool) {
        let ih = rec.info_hash;
        if self.active.contains(&ih) || (!full && self.share_failed.contains_key(&ih)) {
            return;
        }
        let meta = match Metainfo::load(&rec.file) {
            Ok(m) if m.info_hash == ih => m,
            _ => {
                // The .torrent we wrote is gone or holds something else: forget the record so the
                // entry is taken up afresh on the next pass.
                tracing::warn!(
                    "watch folder: {} is missing or changed; {} will be hashed again",
                    rec.file.display(),
                    item.path.display()
                );
                let path = item.entry();
                if let Err(e) = Torrents::update(&self.cfg.torrents, |cfg| {
                    Ok(ledger::forget(cfg, &path, &ih))
                }) {
                    self.trouble(format!("{e:#}"));
                }
                return;
            }
        };
        self.start_sharing(item, &meta, &rec.data);
    }

    /// Hands `meta` to [`Sharing`]; a failure is reported once per distinct message.
    fn start_sharing(&mut self, item: &Listed, meta: &Metainfo, data_dir: &Path) -> bool {
        let ih = meta.info_hash;
        let res = self
            .rt
            .block_on(actions::start(&*self.sharing, item.kind, meta, data_dir));
        match res {
            Ok(()) => {
                self.active.insert(ih);
                self.share_failed.remove(&ih);
                true
            }
            Err(e) => {
                let msg = format!(
                    "cannot {} {}: {e:#}",
                    match item.kind {
                        EntryKind::Data => "seed",
                        EntryKind::Torrent | EntryKind::Magnet => "download",
                    },
                    meta.info.name
                );
                if self.share_failed.get(&ih) != Some(&msg) {
                    tracing::debug!("watch folder: {msg}");
                    self.publish(Event::WatchRejected {
                        torrent: Some((ih, meta.info.name.clone())),
                        path: item.path.clone(),
                        message: msg.clone(),
                    });
                }
                self.share_failed.insert(ih, msg);
                false
            }
        }
    }

    /// Reports `item` as not shareable, once: it stays rejected while its probe stays `probe`.
    fn reject(&mut self, item: &Listed, probe: Probe, msg: String) {
        tracing::debug!("watch folder: {}: {msg}", item.path.display());
        self.settling.remove(&item.name);
        self.hashed_cache.remove(&item.name);
        self.rejected.insert(item.name.clone(), probe);
        self.publish(Event::WatchRejected {
            torrent: None,
            path: item.path.clone(),
            message: msg,
        });
    }
}
