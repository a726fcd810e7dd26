//! Where each file is on disk: its path below the data folder (the info dictionary's, or what a
//! rename made it), and whether it is under its partial name (`PART_SUFFIX` added) while it is not
//! complete. Renames of files and of the folders holding them, and the partial names given and
//! taken back, all under the write lock of `names`.

use super::*;

impl Storage {
    /// Switches partial naming for files created from now on; [`Storage::name_files`] renames
    /// those on disk.
    pub fn set_partial_naming(&self, on: bool) {
        self.partial_naming.store(on, Ordering::Relaxed);
    }

    /// Finds each file under its own name or its partial name and uses it there from now on. A
    /// file under neither is to be created under the name partial naming gives a file not complete
    /// yet; one under both is taken under its own.
    pub fn locate(&self) {
        let naming = self.partial_naming.load(Ordering::Relaxed);
        let mut names = self.names.write();
        let dir = self.data_dir.read().clone();
        for (i, f) in self.info.files.iter().enumerate() {
            if f.padding || f.length == 0 {
                continue;
            }
            let Some(full) = confined_join(&dir, &names.paths[i]) else {
                continue;
            };
            names.partial[i] = if full.symlink_metadata().is_ok() {
                false
            } else {
                with_part_suffix(&full).symlink_metadata().is_ok() || naming
            };
        }
    }

    /// Gives each of `files` the name its state calls for: its own once `complete(i)` says so or
    /// partial naming is off, its partial name while it is not complete and partial naming is on.
    /// Only a file under its partial name is ever renamed on disk (to its own, unless that name
    /// is taken, which is logged and leaves it where it is): a file under its own name, the user's
    /// or one written while naming was off, keeps it, and a file not created yet will be created
    /// under the name chosen. Returns how many were renamed on disk.
    pub fn name_files(
        &self,
        files: impl IntoIterator<Item = usize>,
        complete: impl Fn(usize) -> bool,
    ) -> usize {
        let naming = self.partial_naming.load(Ordering::Relaxed);
        let mut names = self.names.write();
        let dir = self.data_dir.read().clone();
        let mut renamed = 0;
        for i in files {
            let f = &self.info.files[i];
            let want = naming && !complete(i);
            if f.padding || f.length == 0 || names.partial[i] == want {
                continue;
            }
            let Some(full) = confined_join(&dir, &names.paths[i]) else {
                continue;
            };
            if want {
                if full.symlink_metadata().is_err() {
                    names.partial[i] = true;
                }
                continue;
            }
            let part = with_part_suffix(&full);
            if part.symlink_metadata().is_err() {
                names.partial[i] = false;
            } else if full.symlink_metadata().is_ok() {
                tracing::warn!(
                    "{} is not renamed to {}: that name is taken",
                    part.display(),
                    full.display()
                );
            } else if let Err(e) = std::fs::rename(&part, &full) {
                tracing::warn!(
                    "cannot rename {} to {}: {e}",
                    part.display(),
                    full.display()
                );
            } else {
                names.partial[i] = false;
                renamed += 1;
            }
        }
        renamed
    }

    /// Whether file `i` is under its partial name.
    pub fn is_partial(&self, i: usize) -> bool {
        self.names.read().partial[i]
    }

    /// Each file's path below the data folder (the torrent's, or what it was renamed to; never
    /// with [`PART_SUFFIX`]).
    pub fn paths(&self) -> Vec<PathBuf> {
        self.names.read().paths.clone()
    }

    /// Takes `paths` (one per file, below the data folder: renames recorded earlier) as where the
    /// files are. Refused, changing nothing, unless there is one per file, each stays inside the
    /// data folder, and no two are the same.
    pub fn set_paths(&self, paths: Vec<PathBuf>) -> io::Result<()> {
        check_paths(&self.info, &paths)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
        self.names.write().paths = paths;
        self.locate();
        Ok(())
    }

    /// Renames `from` (a file's path below the data folder, or a folder holding some of them, as
    /// [`Storage::paths`] gives them) to `name`, in the same folder: on disk if it is there, and in
    /// the paths of every file it is or holds. `name` is one path component. Refused, changing
    /// nothing, when `from` is none of the torrent's, `name` is not a plain name, or the new path is
    /// taken (by a file of the torrent, or by anything on disk). Call with no disk job running.
    pub fn rename(&self, from: &Path, name: &str) -> io::Result<()> {
        let bad = |kind, why: String| io::Error::new(kind, why);
        let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0']);
        if !plain {
            return Err(bad(
                io::ErrorKind::InvalidInput,
                format!("{name:?} is not a plain file name"),
            ));
        }
        let to = from.with_file_name(name);
        let mut names = self.names.write();
        let Names { paths, partial } = &mut *names;
        let moved: Vec<usize> = (0..paths.len())
            .filter(|&i| paths[i].starts_with(from))
            .collect();
        if moved.is_empty() || from.as_os_str().is_empty() {
            return Err(bad(
                io::ErrorKind::NotFound,
                format!("{} is not a file or folder of the torrent", from.display()),
            ));
        }
        if to == from {
            return Ok(());
        }
        if paths.iter().any(|p| p.starts_with(&to)) {
            return Err(bad(
                io::ErrorKind::AlreadyExists,
                format!("{} is in the torrent already", to.display()),
            ));
        }
        let dir = self.data_dir.read().clone();
        let (Some(mut disk_from), Some(disk_to)) =
            (confined_join(&dir, from), confined_join(&dir, &to))
        else {
            return Err(bad(
                io::ErrorKind::InvalidInput,
                format!("unsafe path {}", to.display()),
            ));
        };
        // A file under its partial name keeps it: `a.part` becomes `b.part`, and neither `b` nor
        // `b.part` may be there already (the first would be taken over when the file completes).
        let partial_file = moved.len() == 1 && paths[moved[0]] == from && partial[moved[0]];
        let mut disk_to = disk_to;
        let taken = [disk_to.clone(), with_part_suffix(&disk_to)];
        if let Some(t) = taken.iter().find(|t| t.symlink_metadata().is_ok()) {
            return Err(bad(
                io::ErrorKind::AlreadyExists,
                format!("{} already exists", t.display()),
            ));
        }
        if partial_file {
            disk_from = with_part_suffix(&disk_from);
            disk_to = with_part_suffix(&disk_to);
        }
        self.close_all();
        if disk_from.symlink_metadata().is_ok() {
            std::fs::rename(&disk_from, &disk_to)?;
        }
        for i in moved {
            let rest = paths[i]
                .strip_prefix(from)
                .expect("chosen by prefix")
                .to_path_buf();
            paths[i] = if rest.as_os_str().is_empty() {
                to.clone()
            } else {
                to.join(rest)
            };
        }
        Ok(())
    }
}

/// Whether `paths` can be the files' paths of a torrent of `info` (see [`Storage::set_paths`]); the
/// reason when not.
pub fn check_paths(info: &Info, paths: &[PathBuf]) -> Result<(), String> {
    if paths.len() != info.files.len() {
        return Err(format!(
            "{} file paths for a torrent of {} files",
            paths.len(),
            info.files.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for p in paths {
        if confined_join(Path::new("/"), p).is_none() {
            return Err(format!("unsafe path {}", p.display()));
        }
        if !seen.insert(p) {
            return Err(format!("{} is given twice", p.display()));
        }
    }
    Ok(())
}

/// `path` with [`PART_SUFFIX`] added to its name.
pub(super) fn with_part_suffix(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(PART_SUFFIX);
    PathBuf::from(s)
}
