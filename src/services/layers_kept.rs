//! Piece layers a hybrid torrent derived from its data ([`engine::Event::LayersDerived`]) written
//! into its .torrent file, so the next run has them from the start (its v2 side checked, its v2
//! peers answered from the first minute) and the file handed to others is whole. Only a .torrent
//! btorrent keeps for the torrent (in `torrents_dir`) is rewritten, atomically, its other keys (its
//! trackers, as edited) byte for byte; a file elsewhere is the user's and is left as it is.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context as _, Result};
use tokio::sync::broadcast;

use crate::engine::{self, Session};
use crate::events::Event;
use crate::metainfo::{set_piece_layers, Metainfo};
use crate::torrents::Torrents;
use crate::types::InfoHash;

/// Writes each torrent's derived layers into its .torrent, from `rx` (subscribed before the session
/// started), until the session shuts down.
pub(super) async fn keep_derived_layers(
    session: Session,
    mut rx: broadcast::Receiver<Event>,
    torrents: Torrents,
) {
    let stopped = session.stopped();
    tokio::pin!(stopped);
    loop {
        let ev = tokio::select! {
            biased;
            r = rx.recv() => r,
            _ = &mut stopped => return,
        };
        let (ih, layers) = match ev {
            Ok(Event::Engine(engine::Event::LayersDerived {
                info_hash,
                piece_layers,
                ..
            })) => (info_hash, piece_layers),
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let torrents = torrents.clone();
        let written = tokio::task::spawn_blocking(move || keep(&torrents, &ih, &layers)).await;
        if let Ok(Err(e)) = written {
            tracing::warn!("{ih}: the piece layers it derived are not kept: {e:#}");
        }
    }
}

/// Writes `layers` into the .torrent torrents.toml lists for `ih`, if btorrent keeps that file and
/// it lacks them.
fn keep(torrents: &Torrents, ih: &InfoHash, layers: &Arc<Vec<u8>>) -> Result<()> {
    let cfg = torrents.config()?;
    let Some(entry) = cfg.find(ih) else {
        return Ok(());
    };
    let file = cfg.resolve(&entry.file);
    if !kept_by_us(&file, &cfg.torrents_dir()) {
        return Ok(());
    }
    let meta = Metainfo::load(&file).map_err(|e| anyhow::anyhow!("{e}"))?;
    if meta.info_hash != *ih {
        bail!("{} now holds another torrent", file.display());
    }
    if meta.info.merkle().is_some() {
        return Ok(());
    }
    let whole = set_piece_layers(&meta, layers).map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::fsutil::write_atomic(&file, &whole)
        .with_context(|| format!("cannot write {}", file.display()))?;
    tracing::info!(
        "{}: piece layers written into {}",
        meta.info.name,
        file.display()
    );
    Ok(())
}

/// Whether `file` is in `dir` (both as they are on disk).
fn kept_by_us(file: &Path, dir: &Path) -> bool {
    match (file.canonicalize(), dir.canonicalize()) {
        (Ok(f), Ok(d)) => f.parent() == Some(d.as_path()),
        _ => false,
    }
}
