//! What the watch folder does with a settled entry: turn it into a torrent (hash data in place, or
//! read a dropped .torrent), and the [`Sharing`] trait through which it asks the peer engine to seed,
//! download or stop. The watch folder never writes into an entry, moves it or deletes it.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Result;
use futures::future::BoxFuture;

use super::scan::EntryKind;
use crate::metainfo::{create_torrent, CreateOptions, Metainfo, MetainfoError};
use crate::types::InfoHash;

/// How the watch folder acts on the peer engine. Implementations must be idempotent: seeding or
/// downloading a torrent the engine already runs, or stopping one it does not run, succeeds (a
/// restart asks again for every entry in the ledger).
pub trait Sharing: Send + Sync {
    /// Seeds `meta` from `data_dir`, the folder holding its file or top folder, announcing it to its
    /// trackers.
    fn seed<'a>(&'a self, meta: &'a Metainfo, data_dir: &'a Path) -> BoxFuture<'a, Result<()>>;

    /// Downloads `meta` into `output_dir` (then seeds it).
    fn download<'a>(
        &'a self,
        meta: &'a Metainfo,
        output_dir: &'a Path,
    ) -> BoxFuture<'a, Result<()>>;

    /// Stops sharing `info_hash`, announcing `stopped`; the data stays where it is.
    fn stop<'a>(&'a self, info_hash: &'a InfoHash) -> BoxFuture<'a, Result<()>>;

    /// Fetches the metadata of a magnet link (checked against its info-hash); for a mutable link
    /// (BEP 46), also the link and the publication it pointed at, for the torrent to follow.
    fn fetch_magnet<'a>(&'a self, link: &'a str) -> BoxFuture<'a, Result<Made>> {
        Box::pin(async move {
            let _ = link;
            anyhow::bail!("magnet links cannot be fetched here")
        })
    }
}

/// What a watch entry becomes: its torrent and, for a mutable link (BEP 46), the link and the
/// publication it pointed at, for the torrent to follow.
pub type Made = (Metainfo, Option<crate::config::Following>);

/// Asks `sharing` to seed or download `meta` according to what the entry is.
pub async fn start(
    sharing: &dyn Sharing,
    kind: EntryKind,
    meta: &Metainfo,
    data_dir: &Path,
) -> Result<()> {
    match kind {
        EntryKind::Data => sharing.seed(meta, data_dir).await,
        EntryKind::Torrent | EntryKind::Magnet => sharing.download(meta, data_dir).await,
    }
}

/// The folder to seed the entry at `path` from: the folder holding it once symbolic links are
/// resolved, so a link dropped into the watch folder shares its target where it is.
pub fn data_dir_of(path: &Path) -> std::io::Result<PathBuf> {
    let canon = path.canonicalize()?;
    Ok(canon
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/")))
}

/// Hashes the file or folder at `path` into a torrent of `format` announcing to `trackers`,
/// recording the files' modification times with `mtime`. Hidden and partial files inside a folder
/// are left out. Setting `cancel` stops the hashing early ([`MetainfoError::Cancelled`]).
pub fn hash_entry(
    path: &Path,
    trackers: &[String],
    (format, mtime): (crate::metainfo::Format, bool),
    cancel: Arc<AtomicBool>,
) -> Result<Metainfo, MetainfoError> {
    let opts = CreateOptions {
        trackers: trackers.to_vec(),
        exclude_hidden: true,
        mtime,
        cancel: Some(cancel),
        ..Default::default()
    }
    .with_format(format);
    create_torrent(path, &opts, &|_, _| {})
}

/// Magnet link number `line` (from 0) of a dropped `.magnet` or `.txt` file.
pub fn read_magnet(path: &Path, line: usize) -> Result<String> {
    let links = super::scan::magnet_lines(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let link = links.get(line).ok_or_else(|| match line {
        0 => anyhow::anyhow!("{} holds no magnet link", path.display()),
        n => anyhow::anyhow!("{} holds no magnet link number {}", path.display(), n + 1),
    })?;
    // A mutable link (BEP 46) is resolved when its metadata is fetched.
    if btorrent_proto::mutable_link::MutableLink::parse(link)?.is_none() {
        btorrent_proto::magnet::Magnet::parse(link)?;
    }
    Ok(link.clone())
}

/// Reads a dropped .torrent.
pub fn read_dropped(path: &Path) -> Result<Metainfo, String> {
    Metainfo::load(path).map_err(|e| e.to_string())
}
