//! The data as a whole: zero-length files and links made at completion, the modification times a
//! torrent records given to the files it completes, the data folder moved (renames, or copies and
//! deletes across file systems, which keep the files' times as renames do) or pointed elsewhere,
//! and the files deleted with the folders they leave empty.

use super::*;

impl Storage {
    /// Creates the zero-length files `wanted` picks (they hold no piece, so no write ever creates
    /// them), each made with the time the torrent records for it, if any.
    pub fn create_empty_files(&self, wanted: impl Fn(usize) -> bool) -> io::Result<()> {
        for (i, f) in self.info.files.iter().enumerate() {
            if f.length == 0 && !f.padding && wanted(i) {
                let path = self.file_path(i)?;
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                match &f.symlink {
                    Some(target) => self.make_link(i, &path, target)?,
                    None => {
                        let made = std::fs::symlink_metadata(&path).is_err();
                        let file = creating(f.executable).open(&path)?;
                        if let Some(at) = f.mtime.filter(|_| made).and_then(time_at) {
                            file.set_modified(at)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Gives each of `files` that the torrent records a modification time for
    /// ([`FileEntry::mtime`]) that time. Call once a file is complete (no write to it follows);
    /// the stamp it leaves counts as our own write's, so the disk check does not take it for
    /// someone else's change. A file that cannot be opened or changed is logged and left.
    ///
    /// [`FileEntry::mtime`]: btorrent_proto::metainfo::FileEntry::mtime
    pub fn give_times(&self, files: impl IntoIterator<Item = usize>) {
        for i in files {
            let f = &self.info.files[i];
            let timed = f.mtime.filter(|_| !f.padding && f.symlink.is_none());
            let Some(at) = timed.and_then(time_at) else {
                continue;
            };
            let set = self.handle(i, true).and_then(|h| {
                h.set_modified(at)?;
                h.metadata()
            });
            match set {
                Ok(meta) => self.own_stamps.lock()[i] = Some(stamp_of(&meta)),
                Err(e) => tracing::warn!("cannot give {} its time: {e}", f.path.display()),
            }
        }
    }

    /// Makes entry `i`, at `path` on disk, a symbolic link to `target` (relative to the data
    /// folder, inside the torrent's folder: a file of the torrent is found at its name on disk).
    /// The link is relative, from its own folder, so it holds wherever the data folder moves.
    /// Anything already at `path` (the link made before, or a file) is left as it is.
    pub(super) fn make_link(&self, i: usize, path: &Path, target: &Path) -> io::Result<()> {
        if std::fs::symlink_metadata(path).is_ok() {
            return Ok(());
        }
        let names = self.names.read();
        let target = self
            .info
            .files
            .iter()
            .position(|f| f.path == target)
            .map_or(target, |j| names.paths[j].as_path());
        let from = names.paths[i].parent().unwrap_or(Path::new(""));
        std::os::unix::fs::symlink(relative_to(from, target), path)
    }

    /// Drops every open handle (before a move, or when the torrent stops).
    pub fn close_all(&self) {
        self.files.close(self.id);
    }

    /// Makes `dir` the data folder, moving nothing (the files are there already, or are to be
    /// written there). Call with no disk job running.
    pub fn set_data_dir(&self, dir: PathBuf) {
        self.close_all();
        *self.data_dir.write() = dir;
        self.locate();
    }

    /// Moves the torrent's files to `new_dir` (rename, or copy and delete across file systems) and
    /// makes it the data folder. Call with no disk job running.
    pub fn move_to(&self, new_dir: &Path) -> io::Result<()> {
        self.close_all();
        let old_dir = self.data_dir();
        if old_dir == new_dir {
            return Ok(());
        }
        // Every destination is checked before anything moves: a file already there (someone else's,
        // or an older copy) is never replaced.
        let mut moves = Vec::new();
        let names = self.names.read();
        for (i, f) in self.info.files.iter().enumerate() {
            if f.padding {
                continue;
            }
            let from = self.disk_path(&names, i)?;
            let mut to = confined_join(new_dir, &names.paths[i]).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "unsafe path in torrent")
            })?;
            if names.partial[i] {
                to = with_part_suffix(&to);
            }
            if !from.exists() {
                continue;
            }
            if to.symlink_metadata().is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists", to.display()),
                ));
            }
            moves.push((from, to));
        }
        drop(names);
        for (n, (from, to)) in moves.iter().enumerate() {
            if let Err(e) = move_file(from, to) {
                // Put back what already moved, so the data stays in one place.
                for (from, to) in moves[..n].iter().rev() {
                    let _ = move_file(to, from);
                }
                return Err(e);
            }
        }
        self.remove_empty_folders(&old_dir);
        *self.data_dir.write() = new_dir.to_path_buf();
        Ok(())
    }

    /// Deletes the torrent's data, and nothing else: each file the torrent lists (padding aside) in
    /// the data folder, then the torrent's folders left empty. A file whose path passes through a
    /// symbolic link below the data folder is left alone, since it may lead elsewhere. Call with the
    /// torrent stopped. Returns how many files and bytes were deleted.
    pub fn delete_files(&self) -> io::Result<(usize, u64)> {
        self.close_all();
        let dir = self.data_dir();
        let (mut files, mut bytes) = (0, 0);
        for (i, f) in self.info.files.iter().enumerate() {
            if f.padding {
                continue;
            }
            let path = self.file_path(i)?;
            let through_link = path
                .ancestors()
                .skip(1)
                .take_while(|a| *a != dir)
                .any(|a| a.symlink_metadata().is_ok_and(|m| m.is_symlink()));
            if through_link {
                continue;
            }
            match std::fs::symlink_metadata(&path) {
                Ok(m) if !m.is_dir() => {
                    std::fs::remove_file(&path)?;
                    files += 1;
                    bytes += m.len();
                }
                _ => {}
            }
        }
        self.remove_empty_folders(&dir);
        Ok((files, bytes))
    }

    /// Removes the torrent's folders under `dir` that are empty (its files moved or deleted), deepest
    /// first; folders that still hold something stay.
    pub(super) fn remove_empty_folders(&self, dir: &Path) {
        if !self.info.multi_file {
            return;
        }
        let mut dirs: Vec<PathBuf> = self
            .paths()
            .iter()
            .filter_map(|p| confined_join(dir, p))
            .flat_map(|p| {
                p.ancestors()
                    .skip(1)
                    .take_while(|a| a.starts_with(dir) && *a != dir)
                    .map(Path::to_path_buf)
                    .collect::<Vec<_>>()
            })
            .collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        dirs.dedup();
        for d in dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// The time `secs` seconds after 1970, if the system's clock type holds it.
fn time_at(secs: u64) -> Option<std::time::SystemTime> {
    UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))
}

/// Moves one file: a rename, or across file systems a copy then removal (a partial copy is removed).
pub(crate) fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    // Across file systems a link is made again (relative, it holds there too), not copied as what
    // it leads to (which a link to a folder cannot be).
    if std::fs::symlink_metadata(from).is_ok_and(|m| m.is_symlink()) {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
        return std::fs::remove_file(from);
    }
    copy_file(from, to)?;
    std::fs::remove_file(from)
}

/// Copies one file, keeping its modification time as a rename does; a partial copy is removed.
pub(crate) fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let copied = std::fs::copy(from, to).and_then(|_| {
        let modified = std::fs::metadata(from)?.modified()?;
        OpenOptions::new()
            .write(true)
            .open(to)?
            .set_modified(modified)
    });
    if let Err(e) = copied {
        let _ = std::fs::remove_file(to);
        return Err(e);
    }
    Ok(())
}

/// The path that leads from folder `from` to `to`, both relative to one folder: a `..` for each
/// component of `from` after what the two share, then the rest of `to`.
pub(super) fn relative_to(from: &Path, to: &Path) -> PathBuf {
    let (from, to): (Vec<_>, Vec<_>) = (from.components().collect(), to.components().collect());
    let shared = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in shared..from.len() {
        out.push("..");
    }
    out.extend(&to[shared..]);
    out
}
