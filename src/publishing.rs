//! Keeping mutable links alive (BEP 46): DHT nodes forget a mutable item after about two hours,
//! so one task ([`spawn`], started with the services of a shell or daemon) publishes again every
//! torrent that torrents.toml records as published (`[torrent.publish]`, written by the
//! `publish` primitive) and that the session runs: at start (nodes may have forgotten it while
//! nothing ran), then every [`REPUBLISH_EVERY`]. Each goes out at the sequence number recorded, so a
//! later publication of another torrent under the same key and salt (recorded on that torrent
//! instead; the primitive takes the record off this one) is never undone.

use std::time::Duration;

use crate::config::Publication;
use crate::services::PeerSlot;
use crate::types::InfoHash;

/// How often the published torrents are published again.
pub const REPUBLISH_EVERY: Duration = Duration::from_secs(60 * 60);
/// The first round waits this long after the start, for the DHT node to join.
const FIRST_AFTER: Duration = Duration::from_secs(5);

pub fn spawn(peer: PeerSlot) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::time::sleep(FIRST_AFTER).await;
        let mut tick = tokio::time::interval(REPUBLISH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            republish(&peer).await;
        }
    })
}

/// One round: every published torrent the session runs.
async fn republish(peer: &PeerSlot) {
    let (Some(session), Ok(cfg)) = (peer.current(), peer.torrents().config()) else {
        return;
    };
    let published: Vec<(InfoHash, Publication)> = cfg
        .torrents
        .iter()
        .filter_map(|t| Some((t.hash()?, t.publish.clone()?)))
        .filter(|(ih, _)| session.get(ih).is_some())
        .collect();
    for (ih, p) in published {
        let secret = match crate::keys::load_or_create(cfg.base_dir(), &p.key) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%ih, "not published again: {e:#}");
                continue;
            }
        };
        let salt = p.salt.as_ref().map(|s| s.as_bytes());
        match session.publish_mutable(&secret, salt, ih, p.seq).await {
            Ok(()) => tracing::info!(%ih, key = p.key, seq = p.seq, "published again"),
            Err(e) => tracing::warn!(%ih, key = p.key, "not published again: {e}"),
        }
    }
}
