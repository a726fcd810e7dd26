//! A torrent's data on disk: the byte stream of the torrent mapped onto its files, read and written with
//! positioned I/O (`pread`/`pwrite`), so any number of threads can use one open file without seeking.
//! This file holds reads, writes and the files' stamps; where each file is and under which name
//! is in `names`, what acts on the data as a whole (moves, deletion, what completion makes) in
//! `moves`.
//!
//! - Every path is `fsutil::confined_join(data_dir, path)`: nothing lands outside the data folder. A
//!   file's `path` is the torrent's unless it was renamed ([`Storage::rename`]): the storage keeps
//!   each file's path on disk apart from the info dictionary's, which never changes.
//! - A file created while it is not complete is created under a partial name, its own with
//!   [`PART_SUFFIX`] added (`movie.mkv.part`), while partial naming is on
//!   ([`Storage::with_cache`]'s `partial_names`): other programs looking at the folder see which files are
//!   whole. The torrent calls [`Storage::name_files`] when files complete (and after a check),
//!   which gives a file under its partial name its own. A file under its own name is never renamed
//!   (the user's files, seeded where they are, keep their names whatever their state). Whatever
//!   the naming, a file is looked for under both names ([`Storage::locate`], when the storage is
//!   made and when its folder or paths change), so a change of setting, or a stop between a rename
//!   and the resume file, loses no data. A rename keeps the file's size and mtime, so resume data
//!   stays valid across it.
//! - Files are created lazily, on the first write that touches them; zero-length files are created when
//!   the torrent completes ([`Storage::create_empty_files`]). BEP 47 padding files are never written or
//!   opened: they read as zeros. A file with BEP 47's `x` attribute is created executable; an entry
//!   with its `l` attribute is made a symbolic link, relative, to its target inside the torrent's
//!   folder (at the target's name on disk), where nothing is yet: never over a file.
//! - Verified pieces can be written with direct I/O (`O_DIRECT`, [`Storage::with_direct_writes`]): the
//!   stretch of a write that is aligned to [`PieceBuf::ALIGN`] in memory and in the file goes from the
//!   piece buffer to the device with no copy into the page cache (filling fresh page-cache pages was
//!   most of a download's CPU time). The unaligned head and tail of a stretch (the short last piece,
//!   file boundaries of multi-file torrents) are ordinary writes; they never share a page with a
//!   direct write. A file system that refuses direct I/O (`EINVAL`) turns it off for the torrent.
//!   Reads always go through the page cache, which the kernel keeps coherent with direct writes.
//! - Files are opened on demand (the first read or write that touches them) and kept in a
//!   [`FileCache`] that every torrent of a session shares, bounded by `SessionConfig::max_open_files`:
//!   past the bound the least recently used file is closed (a read or write still holding its
//!   `Arc<File>` finishes first). The cache's mutex is held only to look up or insert an `Arc<File>`,
//!   never across a read or write.
//! - The data folder changes only in [`Storage::move_to`] and [`Storage::set_data_dir`], and the
//!   files' paths only in [`Storage::rename`], which the torrent calls with no disk job running (it
//!   pauses the torrent first). A file's name on disk changes only under the write lock of
//!   `names`, and a file is opened under its read lock: nothing opens a file by a name that is
//!   being renamed away. Handles already open stay valid across a rename.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use parking_lot::{Mutex, RwLock};

mod moves;
mod names;

pub use crate::file_cache::FileCache;
pub(crate) use moves::{copy_file, move_file};
pub use names::check_paths;
use names::with_part_suffix;

use crate::piece_buf::PieceBuf;
use btorrent_proto::fs::confined_join;
use btorrent_proto::metainfo::Info;

/// Most files kept open by a storage that has a cache of its own (outside a session).
const MAX_OPEN_FILES: usize = 128;

/// Added to the name of a file not complete yet while partial naming is on (Transmission's).
pub const PART_SUFFIX: &str = ".part";

/// Where each file is, below the data folder.
struct Names {
    /// Each file's path: the info dictionary's, or what it was renamed to.
    paths: Vec<PathBuf>,
    /// The file is on disk (or is to be created) under its partial name, `path` + [`PART_SUFFIX`].
    /// Never set for padding and zero-length files.
    partial: Vec<bool>,
}

/// Size and modification time of one file on disk, as the resume data records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStamp {
    pub len: u64,
    pub mtime_ns: u128,
}

pub struct Storage {
    info: Arc<Info>,
    data_dir: RwLock<PathBuf>,
    /// Each file's path below the data folder and whether it is under its partial name.
    /// Lock order: `names`, then `data_dir`, then the file cache's mutex.
    names: RwLock<Names>,
    /// Files not complete yet are to be named with [`PART_SUFFIX`].
    partial_naming: AtomicBool,
    /// Where its open files are kept, under this storage's id.
    files: Arc<FileCache>,
    id: u64,
    /// Aligned stretches of writes use direct I/O (asked for, and not refused so far).
    direct: AtomicBool,
    /// Per file, its size and mtime right after our last write to it: a change of stamp that this
    /// explains is ours, not someone else's (see [`Storage::stamp_explained`]).
    own_stamps: Mutex<Vec<Option<FileStamp>>>,
}

/// One stretch of a read or write that falls in a single file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    file: usize,
    file_offset: u64,
    len: usize,
}

impl Storage {
    /// A storage with a file cache of its own, naming no file partial.
    pub fn new(info: Arc<Info>, data_dir: PathBuf) -> Self {
        Self::with_cache(info, data_dir, FileCache::new(MAX_OPEN_FILES), false)
    }

    /// A storage whose open files are kept in `files`, shared with others; with `partial_names`,
    /// files not complete yet are named with [`PART_SUFFIX`] (see the module docs). Each file is
    /// looked for on disk once, under both names ([`Storage::locate`]).
    pub fn with_cache(
        info: Arc<Info>,
        data_dir: PathBuf,
        files: Arc<FileCache>,
        partial_names: bool,
    ) -> Self {
        let storage = Storage {
            data_dir: RwLock::new(data_dir),
            names: RwLock::new(Names {
                paths: info.files.iter().map(|f| f.path.clone()).collect(),
                partial: vec![false; info.files.len()],
            }),
            partial_naming: AtomicBool::new(partial_names),
            id: files.new_id(),
            files,
            direct: AtomicBool::new(false),
            own_stamps: Mutex::new(vec![None; info.files.len()]),
            info,
        };
        storage.locate();
        storage
    }

    /// Writes aligned stretches with direct I/O where the platform and file system allow it.
    pub fn with_direct_writes(self, on: bool) -> Self {
        self.direct
            .store(on && cfg!(target_os = "linux"), Ordering::Relaxed);
        self
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir.read().clone()
    }

    /// Where file `i` lives on disk (under its partial name while it has one).
    pub fn file_path(&self, i: usize) -> io::Result<PathBuf> {
        self.disk_path(&self.names.read(), i)
    }

    /// File `i`'s path under its own name and under its partial name (`None` for a path that
    /// would leave the data folder).
    pub fn both_names(&self, i: usize) -> Option<[PathBuf; 2]> {
        let names = self.names.read();
        let full = confined_join(&self.data_dir.read(), &names.paths[i])?;
        let partial = with_part_suffix(&full);
        Some([full, partial])
    }

    /// Where file `i` lives on disk, by `names`.
    fn disk_path(&self, names: &Names, i: usize) -> io::Result<PathBuf> {
        let rel = &names.paths[i];
        let full = confined_join(&self.data_dir.read(), rel).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unsafe path {}", rel.display()),
            )
        })?;
        Ok(if names.partial[i] {
            with_part_suffix(&full)
        } else {
            full
        })
    }

    /// The pieces of the stream `[offset, offset + len)` per file, skipping zero-length files.
    fn spans(&self, offset: u64, len: usize) -> impl Iterator<Item = Span> + '_ {
        let files = &self.info.files;
        let first = files.partition_point(|f| f.offset + f.length <= offset);
        let end = offset + len as u64;
        files[first..]
            .iter()
            .enumerate()
            .take_while(move |(_, f)| f.offset < end)
            .filter(|(_, f)| f.length > 0)
            .map(move |(k, f)| {
                let start = offset.max(f.offset);
                let stop = end.min(f.offset + f.length);
                Span {
                    file: first + k,
                    file_offset: start - f.offset,
                    len: (stop - start) as usize,
                }
            })
    }

    fn handle(&self, i: usize, write: bool) -> io::Result<Arc<File>> {
        if let Some(f) = self.files.get((self.id, i), write) {
            return Ok(f);
        }
        // Held until the file is open: its name does not change meanwhile.
        let names = self.names.read();
        let path = self.disk_path(&names, i)?;
        let file = if write {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            creating(self.info.files[i].executable)
                .read(true)
                .open(&path)?
        } else {
            File::open(&path)?
        };
        let file = Arc::new(file);
        self.files.insert((self.id, i), file.clone(), write);
        Ok(file)
    }

    /// File `i` opened for direct writes (created through [`Self::handle`] first); `None` when direct
    /// I/O is off or the file system refused it.
    fn direct_handle(&self, i: usize) -> io::Result<Option<Arc<File>>> {
        if let Some(f) = self.files.get_direct((self.id, i)) {
            return Ok(Some(f));
        }
        self.handle(i, true)?;
        let names = self.names.read();
        let path = self.disk_path(&names, i)?;
        let opened = open_direct(&path);
        let file = match opened {
            Ok(f) => Arc::new(f),
            Err(e) => {
                tracing::debug!(file = %path.display(), "no direct writes ({e}): using the page cache");
                self.direct.store(false, Ordering::Relaxed);
                return Ok(None);
            }
        };
        self.files.set_direct((self.id, i), file.clone());
        Ok(Some(file))
    }

    /// Reads `buf.len()` bytes of the stream at `offset`. A missing or short file is an error.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut pos = 0;
        for s in self.spans(offset, buf.len()) {
            let out = &mut buf[pos..pos + s.len];
            if self.info.files[s.file].padding {
                out.fill(0);
            } else {
                self.handle(s.file, false)?
                    .read_exact_at(out, s.file_offset)?;
            }
            pos += s.len;
        }
        Ok(())
    }

    /// Writes a whole verified piece. Padding files are skipped.
    pub fn write_piece(&self, index: u32, data: &[u8]) -> io::Result<()> {
        let mut pos = 0;
        for s in self.spans(index as u64 * self.info.piece_length, data.len()) {
            if !self.info.files[s.file].padding {
                self.write_span(s.file, s.file_offset, &data[pos..pos + s.len])?;
                let now = self
                    .handle(s.file, true)?
                    .metadata()
                    .map(|m| stamp_of(&m))?;
                self.own_stamps.lock()[s.file] = Some(now);
            }
            pos += s.len;
        }
        Ok(())
    }

    /// Size and mtime of file `i` now, from its open handle (`None`: padding, or it cannot be opened).
    pub fn stamp(&self, i: usize) -> Option<FileStamp> {
        if self.info.files[i].padding {
            return None;
        }
        let meta = self.handle(i, false).ok()?.metadata().ok()?;
        Some(stamp_of(&meta))
    }

    /// Whether file `i` having stamp `now` after it had `then` is explained: nothing changed, or the
    /// change is our own last write to it.
    pub fn stamp_explained(
        &self,
        i: usize,
        then: Option<FileStamp>,
        now: Option<FileStamp>,
    ) -> bool {
        now == then || (now.is_some() && now == self.own_stamps.lock()[i])
    }

    /// Writes `data` at `offset` of file `i`: its aligned middle with direct I/O when it can, the
    /// rest (or everything, when it cannot) with ordinary writes.
    fn write_span(&self, i: usize, offset: u64, data: &[u8]) -> io::Result<()> {
        const A: usize = PieceBuf::ALIGN;
        if self.direct.load(Ordering::Relaxed) {
            let head = (A - (offset % A as u64) as usize) % A;
            let body = data.len().saturating_sub(head) / A * A;
            let aligned = (data.as_ptr() as usize + head).is_multiple_of(A);
            if body > 0 && aligned {
                if let Some(f) = self.direct_handle(i)? {
                    match f.write_all_at(&data[head..head + body], offset + head as u64) {
                        Ok(()) => {
                            let plain = self.handle(i, true)?;
                            plain.write_all_at(&data[..head], offset)?;
                            let end = head + body;
                            return plain.write_all_at(&data[end..], offset + end as u64);
                        }
                        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                            tracing::debug!("direct write refused ({e}): using the page cache");
                            self.direct.store(false, Ordering::Relaxed);
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        self.handle(i, true)?.write_all_at(data, offset)
    }

    /// Whether every (non-padding) file piece `index` touches exists and is long enough to hold it.
    pub fn piece_on_disk(&self, index: u32, stamps: &[Option<FileStamp>]) -> bool {
        let plen = self.info.piece_len(index as usize) as usize;
        self.spans(index as u64 * self.info.piece_length, plen)
            .all(|s| {
                self.info.files[s.file].padding
                    || stamps[s.file].is_some_and(|st| st.len >= s.file_offset + s.len as u64)
            })
    }

    /// The files piece `index` touches (zero-length files excluded).
    pub fn files_of_piece(&self, index: u32) -> impl Iterator<Item = usize> + '_ {
        let plen = self.info.piece_len(index as usize) as usize;
        self.spans(index as u64 * self.info.piece_length, plen)
            .map(|s| s.file)
    }

    /// The torrent's file or top folder on disk (under the name it was renamed to), absolute.
    pub fn top_path(&self) -> PathBuf {
        let first: Option<PathBuf> = self
            .names
            .read()
            .paths
            .first()
            .and_then(|p| p.components().next())
            .map(|c| PathBuf::from(c.as_os_str()));
        let top = self
            .data_dir()
            .join(first.unwrap_or_else(|| self.info.name.clone().into()));
        std::path::absolute(&top).unwrap_or(top)
    }

    /// Whether none of the files that hold data is on disk, under its own name or its partial one
    /// (a torrent of empty files alone has nothing to miss: false).
    pub fn none_present(&self) -> bool {
        let mut holding = (0..self.info.files.len()).filter(|&i| {
            let f = &self.info.files[i];
            !f.padding && f.symlink.is_none() && f.length > 0
        });
        let absent = |i: usize| {
            self.both_names(i)
                .is_none_or(|names| names.iter().all(|p| std::fs::symlink_metadata(p).is_err()))
        };
        let mut any = false;
        let none = holding.all(|i| {
            any = true;
            absent(i)
        });
        any && none
    }

    /// Size and mtime of every file (padding files and links, which hold no data: `None`).
    pub fn stamps(&self) -> Vec<Option<FileStamp>> {
        (0..self.info.files.len())
            .map(|i| {
                let f = &self.info.files[i];
                if f.padding || f.symlink.is_some() {
                    return None;
                }
                let meta = std::fs::metadata(self.file_path(i).ok()?).ok()?;
                meta.is_file().then(|| stamp_of(&meta))
            })
            .collect()
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        self.files.close(self.id);
    }
}

fn stamp_of(meta: &std::fs::Metadata) -> FileStamp {
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    FileStamp {
        len: meta.len(),
        mtime_ns,
    }
}

/// Options that open a file for writing, creating it if absent (its data kept if present): an
/// executable one (BEP 47's `x`) is made with the execute bits, as a download of a program or
/// script is run where it lands; the umask filters both as for any new file. A file that exists
/// keeps its mode.
fn creating(executable: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(if executable { 0o777 } else { 0o666 });
    }
    #[cfg(not(unix))]
    let _ = executable;
    o
}

/// Opens an existing file for direct writes.
#[cfg(target_os = "linux")]
fn open_direct(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(path)
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_path: &Path) -> io::Result<File> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no direct I/O here",
    ))
}

#[cfg(test)]
mod tests {
    use super::moves::move_file;
    use super::*;

    fn info(files: &[(&str, u64, bool)], piece_length: u64) -> Arc<Info> {
        let files = files
            .iter()
            .map(|&(p, len, pad)| (PathBuf::from(p), len, pad));
        Arc::new(Info::laid_out("top", piece_length, files))
    }

    #[test]
    fn pieces_span_files_and_padding_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let inf = info(
            &[
                ("top/a", 5, false),
                ("top/empty", 0, false),
                ("top/.pad/3", 3, true),
                ("top/sub/b", 12, false),
            ],
            8,
        );
        let st = Storage::new(inf.clone(), dir.path().to_path_buf());
        let data: Vec<u8> = (1..=20).collect();
        st.write_piece(0, &data[0..8]).unwrap();
        st.write_piece(1, &data[8..16]).unwrap();
        st.write_piece(2, &data[16..20]).unwrap();
        assert_eq!(std::fs::read(dir.path().join("top/a")).unwrap(), &data[..5]);
        assert_eq!(
            std::fs::read(dir.path().join("top/sub/b")).unwrap(),
            &data[8..20]
        );
        assert!(!dir.path().join("top/.pad").exists());
        assert!(!dir.path().join("top/empty").exists());
        let mut buf = vec![0xffu8; 20];
        st.read(0, &mut buf).unwrap();
        assert_eq!(&buf[..5], &data[..5]);
        assert_eq!(&buf[5..8], &[0, 0, 0]);
        assert_eq!(&buf[8..], &data[8..]);
        let stamps = st.stamps();
        assert!(stamps[1].is_none() && stamps[2].is_none());
        assert!(st.piece_on_disk(1, &stamps));
        st.create_empty_files(|_| true).unwrap();
        assert!(dir.path().join("top/empty").exists());

        let moved = dir.path().join("elsewhere");
        st.move_to(&moved).unwrap();
        assert!(!dir.path().join("top").exists());
        assert_eq!(std::fs::read(moved.join("top/a")).unwrap(), &data[..5]);
        assert!(moved.join("top/empty").exists());
        let mut again = vec![0u8; 20];
        st.read(0, &mut again).unwrap();
        assert_eq!(again, buf);
    }

    #[test]
    fn missing_file_reads_fail_and_pieces_are_absent() {
        let dir = tempfile::tempdir().unwrap();
        let inf = info(&[("top/a", 10, false), ("top/b", 10, false)], 8);
        let st = Storage::new(inf, dir.path().to_path_buf());
        st.write_piece(0, &[1; 8]).unwrap();
        let stamps = st.stamps();
        assert!(st.piece_on_disk(0, &stamps));
        assert!(!st.piece_on_disk(1, &stamps));
        let mut buf = [0u8; 8];
        assert!(st.read(8, &mut buf).is_err());
        assert_eq!(st.files_of_piece(1).collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn direct_writes_store_the_same_bytes_as_ordinary_ones() {
        // Pieces of 16 KiB over files with unaligned boundaries, a padding file and a short last piece.
        let files = [
            ("top/a", 5000, false),
            ("top/b", 3 * 16384 + 100, false),
            ("top/.pad/1", 11284, true),
            ("top/c", 40000, false),
        ];
        let inf = info(&files, 16384);
        let total = inf.total_length as usize;
        let stream: Vec<u8> = (0..total).map(|i| (i * 7 + i / 4096) as u8).collect();
        let mut expected = stream.clone();
        expected[5000 + 3 * 16384 + 100..][..11284].fill(0);
        for direct in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let st = Storage::new(inf.clone(), dir.path().to_path_buf()).with_direct_writes(direct);
            for (i, piece) in stream.chunks(16384).enumerate().rev() {
                let mut buf = PieceBuf::zeroed(16384);
                buf[..piece.len()].copy_from_slice(piece);
                st.write_piece(i as u32, &buf[..piece.len()]).unwrap();
            }
            let mut back = vec![0xffu8; total];
            st.read(0, &mut back).unwrap();
            assert!(back == expected, "direct = {direct}");
            let b = std::fs::read(dir.path().join("top/b")).unwrap();
            assert_eq!(b, &stream[5000..5000 + 3 * 16384 + 100]);
        }
    }

    /// A storage that names files not complete yet with the suffix.
    fn partial(info: Arc<Info>, dir: &Path) -> Storage {
        let cache = FileCache::new(MAX_OPEN_FILES);
        Storage::with_cache(info, dir.to_path_buf(), cache, true)
    }

    #[test]
    fn files_not_complete_carry_the_partial_name_until_named_complete() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let inf = info(&[("top/a", 10, false), ("top/b", 10, false)], 8);
        let st = partial(inf.clone(), d);
        st.write_piece(0, &[1; 8]).unwrap();
        st.write_piece(1, &[2; 8]).unwrap();
        assert!(d.join("top/a.part").is_file() && d.join("top/b.part").is_file());
        assert!(!d.join("top/a").exists() && st.is_partial(0));
        assert_eq!(st.paths()[0], PathBuf::from("top/a"), "paths never show it");
        // a is complete (pieces 0 and 1): renamed while its handle is open; reads go on.
        assert_eq!(st.name_files(0..2, |f| f == 0), 1);
        assert!(d.join("top/a").is_file() && !d.join("top/a.part").exists());
        assert!(d.join("top/b.part").is_file() && st.is_partial(1));
        let mut buf = [0u8; 10];
        st.read(0, &mut buf).unwrap();
        assert_eq!(buf, [1, 1, 1, 1, 1, 1, 1, 1, 2, 2]);
        st.write_piece(2, &[3; 4]).unwrap();
        assert_eq!(
            std::fs::read(d.join("top/b.part")).unwrap(),
            [2, 2, 2, 2, 2, 2, 3, 3, 3, 3]
        );

        // A new storage finds each file under the name it has, whatever its own naming says.
        let fresh = Storage::new(inf.clone(), d.to_path_buf());
        assert!(!fresh.is_partial(0) && fresh.is_partial(1));
        fresh.read(0, &mut [0u8; 20]).unwrap();
        // Naming off: the next naming gives b its own name back.
        assert_eq!(fresh.name_files(0..2, |_| false), 1);
        assert!(d.join("top/b").is_file() && !d.join("top/b.part").exists());

        // On again, b incomplete: a file under its own name keeps it.
        let on = partial(inf.clone(), d);
        assert_eq!(on.name_files(0..2, |f| f == 0), 0);
        assert!(!on.is_partial(1) && d.join("top/b").is_file());

        // A partial file whose own name is taken when it completes stays where it is.
        let other = tempfile::tempdir().unwrap();
        let o = other.path();
        let st = partial(inf, o);
        st.write_piece(2, &[3; 4]).unwrap();
        std::fs::write(o.join("top/b"), b"someone else's").unwrap();
        assert_eq!(st.name_files(0..2, |_| true), 0);
        assert!(st.is_partial(1) && o.join("top/b.part").is_file());
        assert_eq!(std::fs::read(o.join("top/b")).unwrap(), b"someone else's");
    }

    #[test]
    fn a_partial_file_keeps_its_partial_name_through_a_rename_and_a_move() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let inf = info(&[("top/a", 10, false), ("top/sub/b", 10, false)], 8);
        let st = partial(inf, &d.join("one"));
        for (i, piece) in [[1u8; 8], [2; 8]].iter().enumerate() {
            st.write_piece(i as u32, piece).unwrap();
        }
        st.rename(Path::new("top/a"), "first").unwrap();
        assert!(d.join("one/top/first.part").is_file() && !d.join("one/top/first").exists());
        st.rename(Path::new("top/sub"), "pics").unwrap();
        assert!(d.join("one/top/pics/b.part").is_file());
        // Neither the name nor its partial name may be taken.
        std::fs::write(d.join("one/top/taken.part"), b"x").unwrap();
        assert!(st.rename(Path::new("top/first"), "taken").is_err());
        st.move_to(&d.join("two")).unwrap();
        assert!(d.join("two/top/first.part").is_file() && d.join("two/top/pics/b.part").is_file());
        let mut buf = [0u8; 16];
        st.read(0, &mut buf).unwrap();
        assert_eq!(buf, [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2]);
        // Deleting the data deletes the partial files.
        assert_eq!(st.delete_files().unwrap(), (2, 16));
        assert!(!d.join("two/top").exists());
    }

    /// Moved to another file system, a link is made again there, as a link (a link to a folder
    /// could not be copied at all); a plain file is copied. Skipped without /dev/shm.
    #[test]
    fn a_link_moved_across_file_systems_stays_a_link() {
        let Ok(far) = tempfile::tempdir_in("/dev/shm") else {
            return;
        };
        let near = tempfile::tempdir().unwrap();
        let on = |d: &Path| std::fs::metadata(d).map(|m| std::os::unix::fs::MetadataExt::dev(&m));
        if on(near.path()).unwrap() == on(far.path()).unwrap() {
            return;
        }
        std::fs::create_dir(near.path().join("docs")).unwrap();
        std::os::unix::fs::symlink("docs", near.path().join("manual")).unwrap();
        std::fs::write(near.path().join("a.txt"), b"abc").unwrap();
        let then = UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        let a = File::options().write(true).open(near.path().join("a.txt"));
        a.unwrap().set_modified(then).unwrap();
        for name in ["manual", "a.txt"] {
            move_file(&near.path().join(name), &far.path().join(name)).unwrap();
            assert!(near.path().join(name).symlink_metadata().is_err(), "{name}");
        }
        let link = far.path().join("manual");
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("docs"));
        assert_eq!(std::fs::read(far.path().join("a.txt")).unwrap(), b"abc");
        // The copy keeps the file's time, as a rename does.
        let moved = std::fs::metadata(far.path().join("a.txt")).unwrap();
        assert_eq!(moved.modified().unwrap(), then);
    }

    /// The times a torrent records are given to complete files (an empty one when it is made, a
    /// file under its partial name too), and the stamp that leaves counts as our own write's: the
    /// disk check takes it for no one else's change. A file without a time keeps its own.
    #[test]
    fn complete_files_take_the_times_the_torrent_records() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut inf = (*info(
            &[
                ("top/a", 10, false),
                ("top/b", 6, false),
                ("top/e", 0, false),
            ],
            8,
        ))
        .clone();
        let at = |t: u64| UNIX_EPOCH + std::time::Duration::from_secs(t);
        inf.files[0].mtime = Some(1_000_000_000);
        inf.files[2].mtime = Some(1_500_000_000);
        let st = partial(Arc::new(inf), d);
        st.write_piece(0, &[1; 8]).unwrap();
        st.write_piece(1, &[2; 8]).unwrap();
        let written = st.stamp(0);
        st.give_times([0, 1]);
        let modified = |p: &str| std::fs::metadata(d.join(p)).unwrap().modified().unwrap();
        assert_eq!(
            modified("top/a.part"),
            at(1_000_000_000),
            "under its partial name"
        );
        assert_ne!(
            modified("top/b.part"),
            at(1_000_000_000),
            "b records no time"
        );
        assert!(
            st.stamp_explained(0, written, st.stamp(0)),
            "our own change"
        );
        st.name_files(0..1, |_| true);
        assert_eq!(modified("top/a"), at(1_000_000_000), "a rename keeps it");
        st.create_empty_files(|_| true).unwrap();
        assert_eq!(modified("top/e"), at(1_500_000_000));
        // An empty file already there is the user's: made again, it keeps its time.
        let now = std::time::SystemTime::now();
        File::options()
            .write(true)
            .open(d.join("top/e"))
            .unwrap()
            .set_modified(now)
            .unwrap();
        st.create_empty_files(|_| true).unwrap();
        assert_eq!(modified("top/e"), now);
    }
}
