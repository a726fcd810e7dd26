//! A hybrid torrent that came without its piece layers (BEP 52: the dictionary of a `btih` link
//! whose peers gave none, or a .torrent written without them) derives them from its own data once
//! that is whole: its pieces are checked by SHA-1, and each file's layer, hashed from its pieces,
//! must give the file's `pieces root` in the dictionary the info-hash vouches for. From then on the
//! torrent answers its v2 peers' hash requests ([`Torrent::merkle`]) as if the layers had come with
//! it, and the front end is told ([`Event::LayersDerived`], with the `piece layers` value) so it can
//! keep them in the .torrent file for the next run.
//!
//! Once per run, the first time the torrent is complete (downloaded, or found whole by the data
//! check), one turn of the session's data checks (each file is read once more). Data that does
//! not give a root (the torrent's two sides describe different data, which SHA-1 alone cannot
//! see) derives nothing and says so in a warning; a read that fails gives up until the next run.

use std::sync::Arc;

use btorrent_proto::metainfo::{layers_needed, set_piece_layers, Metainfo};

use super::torrent::Torrent;
use super::Event;

/// Whether `meta` is a hybrid that lacks its layers (the torrents this module is for).
pub(crate) fn lacking(meta: &Metainfo) -> bool {
    meta.info
        .hybrid
        .as_ref()
        .is_some_and(|h| h.layers.is_none())
}

/// Waits until the torrent is complete, then derives its layers (see the module docs). Ends with
/// the torrent.
pub(crate) async fn derive_when_complete(t: Arc<Torrent>) {
    tokio::select! {
        _ = t.complete() => {}
        _ = t.life.cancelled() => return,
    }
    let turn = tokio::select! {
        p = t.ctx.checks.acquire() => p,
        _ = t.life.cancelled() => return,
    };
    let Ok(_turn) = turn else { return };
    let t2 = t.clone();
    let derived = tokio::task::spawn_blocking(move || derive(&t2)).await;
    let name = &t.meta.info.name;
    match derived {
        Ok(Ok(layers)) => {
            tracing::info!(torrent = %name, "piece layers derived from the data");
            t.emit(Event::LayersDerived {
                info_hash: t.info_hash(),
                name: name.clone(),
                piece_layers: Arc::new(layers),
            });
        }
        Ok(Err(Underived::Mismatch(message))) => t.emit(Event::Warning {
            info_hash: t.info_hash(),
            name: name.clone(),
            message,
        }),
        Ok(Err(Underived::Unread(why))) => {
            tracing::debug!(torrent = %name, "piece layers not derived: {why}");
        }
        Err(_) => {}
    }
}

enum Underived {
    /// The data does not give a file's root.
    Mismatch(String),
    /// A read failed, or the torrent is not whole any more.
    Unread(String),
}

/// Hashes the layers from the data and installs them in `t` (the blocking part); the `piece
/// layers` value on success.
fn derive(t: &Torrent) -> Result<Vec<u8>, Underived> {
    let unread = |e: &dyn std::fmt::Display| Underived::Unread(e.to_string());
    let needed = match layers_needed(t.meta.info_bytes()) {
        Ok(Some(n)) => n,
        Ok(None) => return Err(Underived::Unread("no layer is lacking".into())),
        Err(e) => return Err(unread(&e)),
    };
    let info = &t.meta.info;
    let read = |i: u32, buf: &mut Vec<u8>| -> Result<(), Underived> {
        if t.life.is_cancelled() || !t.core.lock().picker.have().get(i as usize) {
            return Err(Underived::Unread(
                "the torrent is not whole any more".into(),
            ));
        }
        let at = u64::from(i) * info.piece_length;
        buf.resize(info.piece_length.min(info.total_length - at) as usize, 0);
        t.storage.read(at, buf).map_err(|e| unread(&e))
    };
    let layers = match needed.derive(read)? {
        Ok(layers) => layers,
        Err(first_piece) => {
            let at = u64::from(first_piece) * info.piece_length;
            let file = info
                .files
                .iter()
                .find(|f| f.offset == at && !f.padding)
                .map_or_else(
                    || format!("piece {first_piece}"),
                    |f| f.path.display().to_string(),
                );
            return Err(Underived::Mismatch(format!(
                "the data of {file} is whole by its v1 hashes but does not give its v2 root: the \
                 torrent's two sides describe different data, and its v2 peers get no hashes"
            )));
        }
    };
    let whole = set_piece_layers(&t.meta, &layers)
        .and_then(|bytes| Metainfo::from_bytes(&bytes))
        .map_err(|e| unread(&e))?;
    let Some(v2) = whole.info.hybrid.as_ref().and_then(|h| h.layers.clone()) else {
        return Err(Underived::Unread("the layers were not taken".into()));
    };
    let _ = t.derived_layers.set(v2);
    Ok(layers)
}
