//! Choosing a torrent's files: their priorities and the order of new pieces (sequential mode),
//! running and in torrents.toml.

use super::*;

/// A change of the order in which a torrent fetches new pieces; `None` leaves that part as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrderChange {
    /// Sequential mode on or off.
    #[serde(default)]
    pub sequential: Option<bool>,
    /// The piece sequential mode starts at.
    #[serde(default)]
    pub sequential_from: Option<u32>,
}

impl OrderChange {
    /// Sequential mode on or off, the start left as it is.
    pub fn sequential(on: Option<bool>) -> OrderChange {
        OrderChange {
            sequential: on,
            sequential_from: None,
        }
    }
}

/// Changes the priority of some files (by index) and, as `order` says, the order of new pieces,
/// in the running torrent and in torrents.toml. An index past the torrent's files, or a piece
/// past its pieces, is refused. The torrent changes first, outside the file's lock: where it runs
/// in the owner of torrents.toml, that owner records the choice too ([`record_file_choice`]), so
/// its next look at the file takes this record for its own, not for a hand edit.
pub fn choose_files(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
    changes: &[(usize, FilePriority)],
    order: OrderChange,
) -> Result<()> {
    let cfg = torrents.fresh()?;
    let file = cfg
        .find(ih)
        .ok_or_else(|| anyhow!("{name} is not a managed torrent any more"))?
        .file
        .clone();
    let info = crate::source::load_file(&cfg.resolve(&file))?.info;
    let n = info.files.len();
    if let Some((bad, _)) = changes.iter().find(|(f, _)| *f >= n) {
        bail!("{name} has no file {bad} (it has {n}, from 0)");
    }
    let pieces = info.piece_count();
    if let Some(bad) = order.sequential_from.filter(|&p| p as usize >= pieces) {
        bail!("{name} has no piece {bad} to start from (it has {pieces}, from 0)");
    }
    live.choose_files(ih, changes.to_vec(), order)?;
    record_file_choice(torrents, ih, name, n, changes, order)
}

/// Records in torrents.toml a choice of files already in force (see [`choose_files`]): the
/// priorities of the `n` files of `ih` with `changes` made, and `order`.
pub fn record_file_choice(
    torrents: &Torrents,
    ih: &InfoHash,
    name: &str,
    n: usize,
    changes: &[(usize, FilePriority)],
    order: OrderChange,
) -> Result<()> {
    update_entry(torrents, ih, name, |e| {
        let mut p = e
            .files
            .priorities(n)
            .unwrap_or_else(|| vec![FilePriority::Normal; n]);
        for &(f, x) in changes {
            if let Some(slot) = p.get_mut(f) {
                *slot = x;
            }
        }
        e.files.record(&p);
        if let Some(s) = order.sequential {
            e.files.sequential = s;
        }
        if let Some(p) = order.sequential_from {
            e.files.sequential_from = p;
        }
        Ok(())
    })
}
