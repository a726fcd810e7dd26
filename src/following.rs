//! Following mutable links (BEP 46). A torrent started from a mutable link has the link recorded
//! with its entry (`[torrent.follow]`: the link and the sequence number of the publication it
//! came from). One task ([`spawn`], with the services of a shell or daemon) resolves each such link
//! shortly after the start and then every `follow_interval` seconds. When the link points at a
//! newer publication of another torrent, that torrent's metadata is fetched, the torrent before
//! is removed (its files kept: the new version is started into the same folder, where the files
//! that did not change are found and checked, not fetched again; in v2 and hybrid torrents, a file
//! moved to another path is moved there, and one the new version dropped is removed when found
//! unchanged, see [`crate::engine::local_data`]), and the new one is added,
//! recorded as following the link in its turn. The old torrent must not run beside the new one:
//! it would take the changed files for damage and fetch its old pieces back over them.
//!
//! A newer torrent that torrents.toml manages already (added by hand) only takes the record over;
//! both stay as the user had them. The new torrent starts paused when the one before was.
//!
//! A link dropped in the watch folder (a `.magnet` file) is followed the same way; the new
//! version takes the watch entry's record over, so the unchanged file stands for it. Between the
//! old entry's removal and the new one's add, a scan may find the file without a record: it
//! waits the quiet period before acting, and the record is back by then.
//!
//! The links are looked at side by side (a fetch that waits minutes for a newer torrent nobody
//! seeds yet holds no other link back); the switches are made one at a time, each against
//! torrents.toml as it is at that moment.
//!
//! Invariant: one entry follows a given link, the newest version; the record moves with each.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use crate::actions::{self, Adding};
use crate::config::Following;
use crate::engine::{Session, Take};
use crate::services::PeerSlot;
use crate::types::InfoHash;

/// The first look waits this long after the start, for the DHT node to join.
const FIRST_AFTER: Duration = Duration::from_secs(5);

pub fn spawn(peer: PeerSlot) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(FIRST_AFTER).await;
        let mut looks = Looks::default();
        loop {
            looks.start(&peer);
            let every = peer
                .torrents()
                .config()
                .ok()
                .and_then(|c| c.settings.follow_interval)
                .unwrap_or(crate::config::DEFAULT_FOLLOW_INTERVAL)
                .max(1);
            tokio::time::sleep(Duration::from_secs(every)).await;
        }
    })
}

/// Links resolved at once at most (DHT lookups); the fetches that follow are not counted.
const RESOLVING_AT_ONCE: usize = 8;

/// The looks under way, one task per followed link at most: a link whose look (a metadata fetch
/// that may wait minutes for a peer of the newer torrent) has not ended is skipped until it has,
/// and holds the other links back in nothing. The tasks belong to the following task and end
/// with it. The switches from one version to the next are made one at a time (`switching`), each
/// against torrents.toml as it is then: a look that fetched for minutes does not act on what it
/// read before.
struct Looks {
    tasks: tokio::task::JoinSet<()>,
    /// The links whose look is under way.
    busy: Arc<Mutex<HashSet<String>>>,
    switching: Arc<tokio::sync::Mutex<()>>,
    resolving: Arc<Semaphore>,
}

impl Default for Looks {
    fn default() -> Self {
        Looks {
            tasks: tokio::task::JoinSet::new(),
            busy: Default::default(),
            switching: Default::default(),
            resolving: Arc::new(Semaphore::new(RESOLVING_AT_ONCE)),
        }
    }
}

/// Takes a link off the busy list when its look ends, however it ends.
struct Done {
    busy: Arc<Mutex<HashSet<String>>>,
    link: String,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.busy.lock().remove(&self.link);
    }
}

impl Looks {
    /// Starts a look at every followed link of a torrent the session runs, but those still being
    /// looked at.
    fn start(&mut self, peer: &PeerSlot) {
        while self.tasks.try_join_next().is_some() {}
        let (Some(session), Ok(cfg)) = (peer.current(), peer.torrents().config()) else {
            return;
        };
        for t in &cfg.torrents {
            let (Some(ih), Some(f)) = (t.hash(), t.follow.clone()) else {
                continue;
            };
            if session.get(&ih).is_none() || !self.busy.lock().insert(f.link.clone()) {
                continue;
            }
            let done = Done {
                busy: self.busy.clone(),
                link: f.link.clone(),
            };
            let (peer, session, name) = (peer.clone(), session.clone(), t.name.clone());
            let (switching, resolving) = (self.switching.clone(), self.resolving.clone());
            self.tasks.spawn(async move {
                let _done = done;
                follow(&peer, &session, ih, &name, f, &switching, &resolving).await;
            });
        }
    }
}

/// One followed link `f`, of the torrent `ih` (named `name`): resolved, and when it points at a
/// newer torrent, that torrent's metadata fetched and the switch made.
async fn follow(
    peer: &PeerSlot,
    session: &Session,
    ih: InfoHash,
    name: &str,
    f: Following,
    switching: &tokio::sync::Mutex<()>,
    resolving: &Semaphore,
) {
    let resolved = {
        let Ok(_permit) = resolving.acquire().await else {
            return;
        };
        crate::source::resolve_mutable(session, &f.link).await
    };
    let r = match resolved {
        Ok(Some(r)) if r.seq > f.seq && r.info_hash != ih => r,
        Ok(_) => return,
        Err(e) => {
            tracing::info!(%ih, "following {name}'s link: {e:#}");
            return;
        }
    };
    tracing::info!(%ih, next = %r.info_hash, seq = r.seq, "{name}: its link points at a newer torrent");
    let record = Following {
        link: f.link.clone(),
        seq: r.seq,
    };
    if managed_already(peer, ih, r.info_hash, &record, switching).await {
        return;
    }
    let how = crate::source::Open {
        session,
        save_to: peer.torrents().config().ok().map(|c| c.torrents_dir()),
        peers: Vec::new(),
        extra: None,
        timeout: crate::source::METADATA_TIMEOUT,
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    let opened = match crate::source::open(&r.magnet, Some(how), |_| {}).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(%ih, "{name}: the newer torrent's metadata: {e:#}");
            return;
        }
    };
    let _turn = switching.lock().await;
    // Looked at again after the fetch: the torrent may be gone, paused or moved, or the newer one
    // added meanwhile; the new version takes the entry as it is now.
    let Ok(cfg) = peer.torrents().config() else {
        return;
    };
    let Some(old) = cfg.find(&ih).cloned() else {
        return;
    };
    if cfg.find(&r.info_hash).is_some() {
        move_record(peer, ih, r.info_hash, &record);
        return;
    }
    // Its files, which it leaves behind, may fill the new version's: one renamed or put in
    // another folder is moved there rather than fetched again, and one the new version dropped is
    // removed (found unchanged), as its publisher removed it, unless `follow_removes = false`.
    let take = if cfg.settings.follow_removes.unwrap_or(true) {
        Take::MoveOrRemove
    } else {
        Take::Move
    };
    let local_files = session
        .get(&ih)
        .map(|h| h.local_files(take))
        .unwrap_or_default();
    if let Err(e) = actions::remove(peer.torrents(), peer, ih, name, false).await {
        tracing::warn!(%ih, "{name}: not replaced by its newer version: {e:#}");
        return;
    }
    let adding = Adding {
        meta: opened.meta,
        src: opened.path.as_deref(),
        data_dir: old.data.clone(),
        // As the torrent before was: paused stays paused.
        paused: old.state == "paused",
        seeding: false,
        register: true,
        peers: Vec::new(),
        trackers: None,
        files: opened.files,
        sequential: false,
        sequential_from: 0,
        labels: None,
        complete_dir: None,
        follow: Some(record),
        // A dropped link's watch entry now stands for the new version.
        watch: old.watch.clone(),
        local_files,
    };
    match actions::add(peer.torrents(), session, adding).await {
        Ok(h) => tracing::info!(info_hash = %h.info_hash(), "{name}: replaced by {}", h.name()),
        Err(e) => {
            tracing::warn!(next = %r.info_hash, "{name}: its newer version not added: {e:#}")
        }
    }
}

/// When torrents.toml manages the newer torrent `next` already (added by hand, or by another
/// link), the record moves to it from `ih` and true is said; false when it does not.
async fn managed_already(
    peer: &PeerSlot,
    ih: InfoHash,
    next: InfoHash,
    record: &Following,
    switching: &tokio::sync::Mutex<()>,
) -> bool {
    let _turn = switching.lock().await;
    let managed = peer
        .torrents()
        .config()
        .is_ok_and(|c| c.find(&next).is_some());
    if managed {
        move_record(peer, ih, next, record);
    }
    managed
}

/// Moves the following `record` from the entry of `ih` to the entry of `next`: both stay as they
/// are otherwise.
fn move_record(peer: &PeerSlot, ih: InfoHash, next: InfoHash, record: &Following) {
    let moved = peer.torrents().update(|cfg| {
        if let Some(t) = cfg.find_mut(&ih) {
            t.follow = None;
        }
        if let Some(t) = cfg.find_mut(&next) {
            t.follow = Some(record.clone());
        }
        Ok(())
    });
    if let Err(e) = moved {
        tracing::warn!(%ih, "following its link: {e:#}");
    }
}
