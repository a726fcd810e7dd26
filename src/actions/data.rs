//! A torrent's data: removed (and its own files deleted, if asked), moved to another folder,
//! pointed at a folder it was moved to by other means, and a file or folder of it renamed.

use super::*;

/// What [`remove`] deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub files: usize,
    pub bytes: u64,
    /// The folder the files were in.
    pub data: PathBuf,
}

/// Stops the torrent (announcing `stopped`), forgets it, and drops its entry; with `delete_data`,
/// then deletes the files the torrent lists and the folders they leave empty (nothing else), and its
/// resume data.
pub async fn remove(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: InfoHash,
    name: &str,
    delete_data: bool,
) -> Result<Option<Deleted>> {
    // What to delete is known before anything stops: a torrent whose .torrent cannot be read is not
    // removed half-way.
    let doomed = if delete_data {
        let cfg = torrents.config()?;
        let entry = cfg.find(&ih);
        let dir = match (live.stats(&ih), entry) {
            (Some(l), _) => Some(l.data_dir),
            (None, Some(e)) => Some(cfg.resolve(&e.data)),
            _ => None,
        };
        let (Some(e), Some(dir)) = (entry, dir) else {
            bail!("cannot delete the data of {name}: its .torrent is not known");
        };
        let meta = Metainfo::load(&cfg.resolve(&e.file)).map_err(|e| anyhow!("{e}"))?;
        let resume = crate::engine::resume::file_in(&crate::services::resume_dir(&cfg), &ih);
        Some((storage_of(e, &meta, dir)?, resume))
    } else {
        None
    };
    live.remove(ih, AfterRemove::Forget).await?;
    let mut out = None;
    if let Some((storage, resume)) = doomed {
        let dir = storage.data_dir();
        let (files, bytes) = storage
            .delete_files()
            .with_context(|| format!("cannot delete the data of {name} in {}", dir.display()))?;
        let _ = std::fs::remove_file(resume);
        let data = std::path::absolute(&dir).unwrap_or(dir);
        out = Some(Deleted { files, bytes, data });
    }
    torrents.update(|cfg| {
        cfg.remove(&ih);
        Ok(())
    })?;
    Ok(out)
}

/// Moves the torrent's data into `dir` (made if missing) and records it; a running torrent goes on
/// from there, one not running here just has its files moved.
pub async fn move_to(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: InfoHash,
    name: &str,
    dir: &Path,
) -> Result<()> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if !live.move_to(ih, dir.clone()).await? {
        let cfg = torrents.config()?;
        let Some(e) = cfg.find(&ih) else {
            bail!("{name} is not a managed torrent");
        };
        let meta = Metainfo::load(&cfg.resolve(&e.file)).map_err(|e| anyhow!("{e}"))?;
        let storage = storage_of(e, &meta, cfg.resolve(&e.data))?;
        storage
            .move_to(&dir)
            .with_context(|| format!("cannot move {name} to {}", dir.display()))?;
    }
    record_data_dir(torrents, &ih, name, &dir)
}

/// Records `dir` as the folder the torrent's data is in now (absolute, as a command gives it): no
/// move to its own folder is pending any more. The owner of torrents.toml records it as soon as
/// it has moved the data (or pointed the torrent there) for a one-shot command, whose own record
/// then changes nothing: read by the owner as someone else's edit, it would be applied after a
/// later command and send the torrent back.
pub fn record_data_dir(torrents: &Torrents, ih: &InfoHash, name: &str, dir: &Path) -> Result<()> {
    update_entry(torrents, ih, name, |e| {
        e.data = dir.to_path_buf();
        e.complete_dir = None;
        Ok(())
    })
}

/// The data of a managed torrent that does not run here, in `dir`, its renamed files where they were
/// renamed to.
fn storage_of(e: &ManagedTorrent, meta: &Metainfo, dir: PathBuf) -> Result<Storage> {
    let storage = Storage::new(meta.info.clone(), dir);
    if let Some(paths) = e.files.paths(&meta.info) {
        storage
            .set_paths(paths)
            .with_context(|| format!("the renamed files of {} in torrents.toml", e.name))?;
    }
    Ok(storage)
}

/// Renames `path` (a file of the torrent or a folder holding some, as its file list gives them)
/// to `new_name` in the same folder, on disk and for the torrent (see
/// [`crate::engine::TorrentHandle::rename_path`]), running or not, and records it. Returns every
/// file's path after the rename.
pub async fn rename_path(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: InfoHash,
    name: &str,
    path: &Path,
    new_name: &str,
) -> Result<Vec<PathBuf>> {
    let cfg = torrents.config()?;
    let Some(e) = cfg.find(&ih) else {
        bail!("{name} is not a managed torrent");
    };
    let meta = Metainfo::load(&cfg.resolve(&e.file)).map_err(|e| anyhow!("{e}"))?;
    let paths = match live
        .rename_path(ih, path.to_path_buf(), new_name.to_string())
        .await?
    {
        Some(paths) => paths,
        None => {
            let storage = storage_of(e, &meta, cfg.resolve(&e.data))?;
            storage
                .rename(path, new_name)
                .with_context(|| format!("cannot rename {} of {name}", path.display()))?;
            storage.paths()
        }
    };
    update_entry(torrents, &ih, name, |e| {
        e.files.record_paths(&meta.info, &paths);
        // Its top folder (or its one file) renamed: the torrent is listed under the new name, as
        // Transmission lists it.
        if path == Path::new(&meta.info.name) {
            e.name = new_name.to_string();
        }
        Ok(())
    })?;
    Ok(paths)
}

/// Points the torrent at `dir` (made if missing), where its files were put by other means, and
/// records it; nothing is moved. A running torrent checks the data there and goes on from it (what
/// is not there is downloaded again); `None` when it is not running here (its next start finds the
/// files there).
pub async fn relocate(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: InfoHash,
    name: &str,
    dir: &Path,
) -> Result<Option<CheckReport>> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if torrents.config()?.find(&ih).is_none() {
        bail!("{name} is not a managed torrent");
    }
    let report = live.relocate(ih, dir.clone()).await?;
    record_data_dir(torrents, &ih, name, &dir)?;
    Ok(report)
}
