//! Following mutable links (BEP 46). A torrent started from a mutable link has the link recorded
//! with its entry (`[torrent.follow]`: the link and the sequence number of the publication it
//! came from). One task ([`spawn`], with the services of a shell or daemon) resolves each such link
//! shortly after the start and then every `follow_interval` seconds. When the link points at a
//! newer publication of another torrent, that torrent's metadata is fetched, the torrent before
//! is removed (its files kept: the new version is started into the same folder, where the files
//! that did not change are found and checked, not fetched again), and the new one is added,
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
//! Invariant: one entry follows a given link, the newest version; the record moves with each.

use std::time::Duration;

use crate::actions::{self, Adding};
use crate::config::{Following, ManagedTorrent};
use crate::services::PeerSlot;
use crate::types::InfoHash;

/// The first look waits this long after the start, for the DHT node to join.
const FIRST_AFTER: Duration = Duration::from_secs(5);

pub fn spawn(peer: PeerSlot) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(FIRST_AFTER).await;
        loop {
            look(&peer).await;
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

/// One look at every followed link of a torrent the session runs.
async fn look(peer: &PeerSlot) {
    let (Some(session), Ok(cfg)) = (peer.current(), peer.torrents().config()) else {
        return;
    };
    let followed: Vec<(InfoHash, &ManagedTorrent, Following)> = cfg
        .torrents
        .iter()
        .filter_map(|t| Some((t.hash()?, t, t.follow.clone()?)))
        .filter(|(ih, ..)| session.get(ih).is_some())
        .collect();
    for (ih, old, f) in followed {
        let name = &old.name;
        let r = match crate::source::resolve_mutable(&session, &f.link).await {
            Ok(Some(r)) if r.seq > f.seq && r.info_hash != ih => r,
            Ok(_) => continue,
            Err(e) => {
                tracing::info!(%ih, "following {name}'s link: {e:#}");
                continue;
            }
        };
        tracing::info!(%ih, next = %r.info_hash, seq = r.seq, "{name}: its link points at a newer torrent");
        let record = Following {
            link: f.link.clone(),
            seq: r.seq,
        };
        if cfg.find(&r.info_hash).is_some() {
            // Managed already (added by hand): the record moves to it.
            let moved = peer.torrents().update(|cfg| {
                if let Some(t) = cfg.find_mut(&ih) {
                    t.follow = None;
                }
                if let Some(t) = cfg.find_mut(&r.info_hash) {
                    t.follow = Some(record.clone());
                }
                Ok(())
            });
            if let Err(e) = moved {
                tracing::warn!(%ih, "{name}: {e:#}");
            }
            continue;
        }
        let how = crate::source::Open {
            session: &session,
            save_to: Some(cfg.torrents_dir()),
            peers: Vec::new(),
            extra: None,
            timeout: crate::source::METADATA_TIMEOUT,
            cancel: tokio_util::sync::CancellationToken::new(),
        };
        let opened = match crate::source::open(&r.magnet, Some(how), |_| {}).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(%ih, "{name}: the newer torrent's metadata: {e:#}");
                continue;
            }
        };
        if let Err(e) = actions::remove(peer.torrents(), peer, ih, name, false).await {
            tracing::warn!(%ih, "{name}: not replaced by its newer version: {e:#}");
            continue;
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
        };
        match actions::add(peer.torrents(), &session, adding).await {
            Ok(h) => tracing::info!(info_hash = %h.info_hash(), "{name}: replaced by {}", h.name()),
            Err(e) => {
                tracing::warn!(next = %r.info_hash, "{name}: its newer version not added: {e:#}")
            }
        }
    }
}
