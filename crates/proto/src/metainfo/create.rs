//! Making a .torrent from a file or a folder: walk the files in a stable order, choose a piece length,
//! hash the pieces on every core while streaming from disk ([`super::hashing`]), and write canonical
//! bencode.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::{Metainfo, MetainfoError, MAX_PIECE_LENGTH};
use crate::bencode::Writer;
use crate::fs::is_safe_component;

pub use super::hashing::hash_pieces;

/// Options for [`create_torrent`].
#[derive(Default, Clone)]
pub struct CreateOptions {
    /// Tracker URLs; the first is `announce`, all of them (one per tier) go to `announce-list` when
    /// there are several.
    pub trackers: Vec<String>,
    /// Bytes per piece (a power of two, 16 KiB to 256 MiB); `None` chooses one from the size.
    pub piece_length: Option<u64>,
    pub private: bool,
    pub comment: Option<String>,
    pub source: Option<String>,
    /// Skip hidden files (`.name`) and partial downloads (`*.part`, `*.!qB`, `*.crdownload`, `*~`).
    pub exclude_hidden: bool,
    /// Hashing threads; 0 means one per core.
    pub threads: usize,
    /// Set from elsewhere to stop hashing early; creation then fails with [`MetainfoError::Cancelled`].
    pub cancel: Option<Arc<AtomicBool>>,
    /// BEP 19 web seeds (`url-list`): HTTP(S) addresses of servers holding the files.
    pub web_seeds: Vec<String>,
    /// A BitTorrent v2-only torrent (BEP 52: SHA-256 merkle trees, each file on a piece boundary)
    /// instead of a v1 one.
    pub v2: bool,
    /// A hybrid torrent: v1 and v2 in one `info` (BEP 52's upgrade path, as libtorrent 2 and
    /// qBittorrent make them): v1 clients read its `files` (padding files put each file on a piece
    /// boundary) and `pieces`, v2 clients its `file tree` and `piece layers`. Wins over `v2`.
    pub hybrid: bool,
    /// Record symbolic links that lead to a file or folder inside the folder as links (BEP 47's
    /// `l`, as libtorrent's creator does when asked), which a download makes links again, rather
    /// than sharing what they lead to. In every format: a v2 `file tree` holds them as its files do.
    pub symlinks: bool,
    /// Record each file's modification time (`mtime`, as libtorrent's creator does when asked),
    /// which a download gives its files once they are complete. Off by default, as there: the
    /// times are part of the `info`, so the same files touched since make another info-hash.
    pub mtime: bool,
}

impl CreateOptions {
    /// These options making a torrent of `format` (sets `v2` and `hybrid`).
    pub fn with_format(self, format: super::Format) -> Self {
        CreateOptions {
            v2: format == super::Format::V2,
            hybrid: format == super::Format::Hybrid,
            ..self
        }
    }
}

/// One file found on disk, in torrent order.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub disk_path: PathBuf,
    /// Components below the top folder (empty for a single-file torrent).
    pub components: Vec<String>,
    pub length: u64,
    /// A padding file (BEP 47): zeros, read from nowhere (`disk_path` is empty).
    pub padding: bool,
    /// Executable by its owner: recorded as BEP 47's `x` attribute, so a download is executable too.
    pub executable: bool,
    /// A symbolic link to these components below the top folder (BEP 47's `l` and `symlink
    /// path`): no data (length 0); [`CreateOptions::symlinks`].
    pub symlink: Option<Vec<String>>,
    /// Its modification time on disk, seconds since 1970 (`None`: unknown, or before 1970).
    pub mtime: Option<u64>,
}

/// A file's modification time, seconds since 1970 (`None` when the system cannot tell, or for
/// a time at or before 1970 or past [`MAX_MTIME`](super::info::MAX_MTIME), which `mtime` does
/// not record).
fn mtime_of(meta: &std::fs::Metadata) -> Option<u64> {
    let t = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(t.as_secs()).filter(|&s| (1..=super::info::MAX_MTIME).contains(&s))
}

/// Whether a file with `meta` may be executed by its owner (never on systems without the bit).
fn is_executable(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o100 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// A file's BEP 47 `attr` value, if it has one: `p` for padding, `l` for a link, `x` for an
/// executable file.
fn attr(f: &SourceFile) -> Option<&'static [u8]> {
    if f.padding {
        Some(b"p")
    } else if f.symlink.is_some() {
        Some(b"l")
    } else if f.executable {
        Some(b"x")
    } else {
        None
    }
}

/// Piece length like mature creators choose it: the smallest power of two from 16 KiB that gives at most
/// about 2,000 pieces, capped at 16 MiB.
pub fn auto_piece_length(total: u64) -> u64 {
    let mut p: u64 = 16 << 10;
    while p < (16 << 20) && total.div_ceil(p) > 2000 {
        p *= 2;
    }
    p
}

/// Whether a file name marks a hidden file or a download still in progress.
pub fn is_hidden_or_partial(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with('~')
        || [".part", ".!qB", ".crdownload", ".aria2", ".tmp"]
            .iter()
            .any(|s| name.ends_with(s))
}

/// Lists the files under `root` in the order they go in the torrent: components compared as byte strings.
/// A symbolic link to a file is listed as that file (its content is shared); links to folders are
/// not followed, and a link that leads nowhere (its target gone, or a loop) is left out, as
/// anything that is neither a file nor a folder is. With `links`, a link that leads to a file or
/// folder inside `root` is listed as a link ([`SourceFile::symlink`]).
pub fn collect_files(
    root: &Path,
    exclude_hidden: bool,
    links: bool,
) -> Result<Vec<SourceFile>, MetainfoError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| MetainfoError::Io { path, source }
    };
    let meta = std::fs::metadata(root).map_err(io(root))?;
    if meta.is_file() {
        return Ok(vec![SourceFile {
            disk_path: root.to_path_buf(),
            components: Vec::new(),
            length: meta.len(),
            padding: false,
            executable: is_executable(&meta),
            symlink: None,
            mtime: mtime_of(&meta),
        }]);
    }
    if !meta.is_dir() {
        return Err(super::cannot_create(format!(
            "{} is neither a file nor a folder",
            root.display()
        )));
    }
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), Vec::<String>::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(io(&dir))?
            .collect::<Result<_, _>>()
            .map_err(io(&dir))?;
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            if exclude_hidden && is_hidden_or_partial(&name) {
                continue;
            }
            if !is_safe_component(&name) {
                return Err(super::cannot_create(format!(
                    "{} has a name other clients cannot store",
                    e.path().display()
                )));
            }
            let ft = e.file_type().map_err(io(&e.path()))?;
            let mut comps = prefix.clone();
            comps.push(name);
            if ft.is_dir() {
                subdirs.push((e.path(), comps));
            } else if let Some(target) = links.then(|| link_inside(root, &e.path())).flatten() {
                out.push(SourceFile {
                    disk_path: e.path(),
                    components: comps,
                    length: 0,
                    padding: false,
                    executable: false,
                    symlink: Some(target),
                    mtime: None,
                });
            } else {
                let m = match std::fs::metadata(e.path()) {
                    Ok(m) => m,
                    Err(_) if ft.is_symlink() => continue,
                    Err(err) => return Err(io(&e.path())(err)),
                };
                if m.is_file() {
                    out.push(SourceFile {
                        disk_path: e.path(),
                        components: comps,
                        length: m.len(),
                        padding: false,
                        executable: is_executable(&m),
                        symlink: None,
                        mtime: mtime_of(&m),
                    });
                }
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    out.sort_by(|a, b| a.components.cmp(&b.components));
    Ok(out)
}

/// Where the symbolic link at `link` (below `root`) leads, as components below `root`, when it is
/// a link that leads to a file or folder inside `root` (not `root` itself); `None` otherwise.
fn link_inside(root: &Path, link: &Path) -> Option<Vec<String>> {
    let to = std::fs::read_link(link).ok()?;
    let to = link.parent()?.join(to);
    // Lexically, as the link is read on the other side: `a/../b` is `b`.
    let mut parts: Vec<String> = Vec::new();
    for c in to.strip_prefix(root).ok()?.components() {
        match c {
            std::path::Component::Normal(n) => parts.push(n.to_str()?.to_string()),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                parts.pop()?;
            }
            _ => return None,
        }
    }
    let real = std::fs::metadata(root.join(parts.iter().collect::<PathBuf>())).ok()?;
    let inside = !parts.is_empty() && parts.iter().all(|p| is_safe_component(p));
    (inside && (real.is_file() || real.is_dir())).then_some(parts)
}

/// Creates a .torrent for the file or folder at `path` and returns it parsed (its bytes are the file to
/// write). `progress(done, total)` reports hashing.
pub fn create_torrent(
    path: &Path,
    opts: &CreateOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<Metainfo, MetainfoError> {
    for url in &opts.trackers {
        super::check_tracker_url(url)?;
    }
    for url in &opts.web_seeds {
        super::check_web_seed_url(url)?;
    }
    let path = path.canonicalize().map_err(|source| MetainfoError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| is_safe_component(n))
        .ok_or_else(|| super::cannot_create(format!("{} has no usable name", path.display())))?;
    let is_dir = path.is_dir();
    let files = collect_files(&path, opts.exclude_hidden, opts.symlinks)?;
    let total: u64 = files.iter().map(|f| f.length).sum();
    if files.is_empty() || total == 0 {
        return Err(super::cannot_create(format!(
            "{} holds no data to share",
            path.display()
        )));
    }
    let piece_length = match opts.piece_length {
        None => auto_piece_length(total),
        Some(p) if p.is_power_of_two() && (16 << 10..=MAX_PIECE_LENGTH).contains(&p) => p,
        Some(p) => {
            return Err(super::cannot_create(format!(
                "piece length {p} must be a power of two from 16 KiB to 256 MiB"
            )))
        }
    };
    let making = Making {
        name: &name,
        is_dir,
        files: &files,
        total,
        piece_length,
        opts,
    };
    let (info, piece_layers) = if opts.hybrid {
        making.hybrid(progress)?
    } else if opts.v2 {
        making.v2(&|done| progress(done, total))?
    } else {
        making.v1(&|done| progress(done, total))?
    };

    let mut w = Writer::default();
    w.begin_dict();
    if let Some(first) = opts.trackers.first() {
        w.bytes(b"announce").bytes(first.as_bytes());
    }
    if opts.trackers.len() > 1 {
        w.bytes(b"announce-list").begin_list();
        for t in &opts.trackers {
            w.begin_list().bytes(t.as_bytes()).end();
        }
        w.end();
    }
    if let Some(c) = &opts.comment {
        w.bytes(b"comment").bytes(c.as_bytes());
    }
    w.bytes(b"created by")
        .bytes(concat!("btorrent/", env!("CARGO_PKG_VERSION")).as_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    w.bytes(b"creation date").int(now);
    w.bytes(b"info").raw(&info);
    if let Some(layers) = piece_layers {
        w.bytes(b"piece layers").raw(&layers);
    }
    if !opts.web_seeds.is_empty() {
        w.bytes(b"url-list").begin_list();
        for u in &opts.web_seeds {
            w.bytes(u.as_bytes());
        }
        w.end();
    }
    w.end();
    Metainfo::from_bytes(&w.buf)
}

/// A path's components as a bencoded list.
fn write_path(w: &mut Writer, components: &[String]) {
    w.begin_list();
    for c in components {
        w.bytes(c.as_bytes());
    }
    w.end();
}

/// What a torrent is being made of, shared by the three kinds of `info`.
struct Making<'a> {
    name: &'a str,
    /// A folder (a `files` list) rather than a single file (`length`).
    is_dir: bool,
    files: &'a [SourceFile],
    total: u64,
    piece_length: u64,
    opts: &'a CreateOptions,
}

/// The parts of an `info` that a v1 torrent has and a v2-only one has not: the file list (or the one
/// file's `length`) and the SHA-1 of each piece.
struct V1Parts {
    /// The raw `files` list, or `None` for a single file (`length`).
    files: Option<Vec<u8>>,
    pieces: Vec<u8>,
}

/// An `info` and, for v2 and hybrid torrents, the raw `piece layers` that go beside it.
type Made = (Vec<u8>, Option<Vec<u8>>);

impl Making<'_> {
    /// The `mtime` to record for `f`, if times are recorded.
    fn mtime(&self, f: &SourceFile) -> Option<u64> {
        self.opts.mtime.then_some(f.mtime).flatten()
    }

    /// A v1 `info`: the files as one byte stream, SHA-1 of each piece.
    fn v1(&self, progress: &(dyn Fn(u64) + Sync)) -> Result<Made, MetainfoError> {
        let parts = self.v1_parts(self.files, progress)?;
        Ok((self.write_info(None, Some(&parts)), None))
    }

    /// A v2-only `info` (BEP 52) and its `piece layers`.
    fn v2(&self, progress: &(dyn Fn(u64) + Sync)) -> Result<Made, MetainfoError> {
        let (tree, layers) = self.v2_tree(progress)?;
        Ok((self.write_info(Some(&tree), None), layers))
    }

    /// A hybrid `info` and its `piece layers`: the v2 trees of the files, and the v1 file list with
    /// a padding file after each file that does not end on a piece boundary (the last one too; a
    /// single file has none, as libtorrent makes them), so both views put every file on the same
    /// pieces. `progress(done, total)` counts both hashing passes.
    fn hybrid(&self, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<Made, MetainfoError> {
        let total = self.total;
        let (tree, layers) = self.v2_tree(&|done| progress(done, 2 * total))?;
        let mut padded = Vec::with_capacity(self.files.len() * 2);
        for f in self.files {
            padded.push(f.clone());
            let tail = f.length % self.piece_length;
            if self.is_dir && tail != 0 {
                let pad = self.piece_length - tail;
                padded.push(SourceFile {
                    disk_path: PathBuf::new(),
                    components: vec![".pad".into(), pad.to_string()],
                    length: pad,
                    padding: true,
                    executable: false,
                    symlink: None,
                    mtime: None,
                });
            }
        }
        let v1 = self.v1_parts(&padded, &|done| {
            progress(total + done.min(total), 2 * total)
        })?;
        Ok((self.write_info(Some(&tree), Some(&v1)), layers))
    }

    /// `files` as one byte stream (padding files included, as zeros), SHA-1 of each piece.
    fn v1_parts(
        &self,
        files: &[SourceFile],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<V1Parts, MetainfoError> {
        let opts = self.opts;
        let cancel = opts.cancel.as_deref();
        let hashes = hash_pieces(files, self.piece_length, opts.threads, cancel, progress)?;
        let list = self.is_dir.then(|| {
            let mut w = Writer::default();
            w.begin_list();
            for f in files {
                w.begin_dict();
                if let Some(a) = attr(f) {
                    w.bytes(b"attr").bytes(a);
                }
                w.bytes(b"length").int(f.length);
                if let Some(t) = self.mtime(f) {
                    w.bytes(b"mtime").int(t);
                }
                write_path(w.bytes(b"path"), &f.components);
                if let Some(target) = &f.symlink {
                    write_path(w.bytes(b"symlink path"), target);
                }
                w.end();
            }
            w.end();
            w.buf
        });
        Ok(V1Parts {
            files: list,
            pieces: hashes.concat(),
        })
    }

    /// Writes an `info` dictionary in key order from its parts: the v2 `file tree` (raw) and the v1
    /// parts, either or both.
    fn write_info(&self, tree: Option<&[u8]>, v1: Option<&V1Parts>) -> Vec<u8> {
        let mut info = Writer::default();
        info.begin_dict();
        // A single file's attributes go in `info` itself, beside its `length`.
        if let (Some(V1Parts { files: None, .. }), Some(a)) = (v1, attr(&self.files[0])) {
            info.bytes(b"attr").bytes(a);
        }
        if let Some(tree) = tree {
            info.bytes(b"file tree").raw(tree);
        }
        match v1.map(|p| p.files.as_deref()) {
            Some(Some(list)) => {
                info.bytes(b"files").raw(list);
            }
            Some(None) => {
                info.bytes(b"length").int(self.total);
            }
            None => {}
        }
        if tree.is_some() {
            info.bytes(b"meta version").int(2);
        }
        if let (Some(V1Parts { files: None, .. }), Some(t)) = (v1, self.mtime(&self.files[0])) {
            info.bytes(b"mtime").int(t);
        }
        info.bytes(b"name").bytes(self.name.as_bytes());
        info.bytes(b"piece length").int(self.piece_length);
        if let Some(p) = v1 {
            info.bytes(b"pieces").bytes(&p.pieces);
        }
        if self.opts.private {
            info.bytes(b"private").int(1);
        }
        if let Some(src) = &self.opts.source {
            info.bytes(b"source").bytes(src.as_bytes());
        }
        info.end();
        info.buf
    }

    /// The raw `file tree` and `piece layers` of the files: each file's merkle tree, files hashed in
    /// turn. The tree nests one dictionary per folder; the files come sorted by components, which is
    /// the order of keys in every dictionary, so it is written in one pass.
    fn v2_tree(&self, progress: &(dyn Fn(u64) + Sync)) -> Result<Made, MetainfoError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        let done = AtomicU64::new(0);
        let mut layers = Vec::new();
        let mut tree = Writer::default();
        tree.begin_dict();
        let mut open: Vec<&str> = Vec::new();
        for f in self.files {
            let (dirs, leaf) = match f.components.split_last() {
                Some((leaf, dirs)) => (dirs, leaf.as_str()),
                None => (&[][..], self.name),
            };
            let common = open
                .iter()
                .zip(dirs)
                .take_while(|(a, b)| **a == b.as_str())
                .count();
            for _ in common..open.len() {
                tree.end();
            }
            open.truncate(common);
            for d in &dirs[common..] {
                tree.bytes(d.as_bytes()).begin_dict();
                open.push(d);
            }
            tree.bytes(leaf.as_bytes()).begin_dict();
            tree.bytes(b"").begin_dict();
            if let Some(a) = attr(f) {
                tree.bytes(b"attr").bytes(a);
            }
            tree.bytes(b"length").int(f.length);
            if let Some(t) = self.mtime(f) {
                tree.bytes(b"mtime").int(t);
            }
            if let Some(target) = &f.symlink {
                write_path(tree.bytes(b"symlink path"), target);
            }
            if f.length > 0 {
                let hashed = super::v2::hash_file(
                    &f.disk_path,
                    f.length,
                    self.piece_length,
                    self.opts.cancel.as_deref(),
                    &|n| progress(done.fetch_add(n, Ordering::Relaxed) + n),
                )?;
                tree.bytes(b"pieces root").bytes(&hashed.root);
                if let Some(layer) = hashed.layer {
                    layers.push((hashed.root, layer.concat()));
                }
            }
            tree.end().end();
        }
        for _ in 0..open.len() {
            tree.end();
        }
        tree.end();
        if layers.is_empty() {
            return Ok((tree.buf, None));
        }
        // Keys sorted; two files with the same content share one root and one layer.
        layers.sort();
        layers.dedup();
        let mut w = Writer::default();
        w.begin_dict();
        for (root, layer) in &layers {
            w.bytes(root).bytes(layer);
        }
        w.end();
        Ok((tree.buf, Some(w.buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::{Digest, Sha1};
    use std::sync::atomic::Ordering;

    /// Symbolic links in a folder: one to a file is shared as the file; one to a folder, one whose
    /// target is gone and one that loops are left out, and the folder is still shared.
    #[cfg(unix)]
    #[test]
    fn links_to_files_are_followed_and_broken_links_left_out() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("project");
        std::fs::create_dir_all(top.join("docs")).unwrap();
        std::fs::write(top.join("docs/readme.txt"), b"read me").unwrap();
        symlink("docs/readme.txt", top.join("README")).unwrap();
        symlink("docs", top.join("documentation")).unwrap();
        symlink("no-such-file", top.join("broken")).unwrap();
        symlink("loop", top.join("loop")).unwrap();
        let files = collect_files(&top, false, false).unwrap();
        let listed: Vec<(String, u64)> = files
            .iter()
            .map(|f| (f.components.join("/"), f.length))
            .collect();
        assert_eq!(
            listed,
            [
                ("README".to_string(), 7),
                ("docs/readme.txt".to_string(), 7)
            ]
        );
        let m = create_torrent(&top, &CreateOptions::default(), &|_, _| {}).unwrap();
        assert_eq!(m.info.files.len(), 2);
        // Recorded as links (BEP 47) when asked: the two that lead inside, to a file and a folder.
        let links: Vec<(String, Option<Vec<String>>)> = collect_files(&top, false, true)
            .unwrap()
            .into_iter()
            .map(|f| (f.components.join("/"), f.symlink))
            .collect();
        let to = |t: &[&str]| Some(t.iter().map(|c| c.to_string()).collect());
        assert_eq!(
            links,
            [
                ("README".into(), to(&["docs", "readme.txt"])),
                ("docs/readme.txt".into(), None),
                ("documentation".into(), to(&["docs"])),
            ]
        );
        // Every kind of torrent records them, and reads them back as links below its folder.
        for format in super::super::Format::ALL {
            let opts = CreateOptions {
                symlinks: true,
                ..Default::default()
            }
            .with_format(format);
            let m = create_torrent(&top, &opts, &|_, _| {}).unwrap();
            let read: Vec<(String, u64, Option<String>)> = m
                .info
                .files
                .iter()
                .filter(|f| !f.padding)
                .map(|f| {
                    let target = f.symlink.as_ref().map(|t| t.display().to_string());
                    (f.path.display().to_string(), f.length, target)
                })
                .collect();
            let link = |path: &str, to: &str| (path.to_string(), 0, Some(to.to_string()));
            assert_eq!(
                read,
                [
                    link("project/README", "project/docs/readme.txt"),
                    ("project/docs/readme.txt".to_string(), 7, None),
                    link("project/documentation", "project/docs"),
                ],
                "{format:?}"
            );
        }
    }

    /// A file its owner may execute is marked `x` (BEP 47) in each kind of torrent, a folder's and a
    /// single file's, and read back as executable; the others are not marked.
    #[cfg(unix)]
    #[test]
    fn executable_files_are_marked_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("tools");
        std::fs::create_dir_all(top.join("sub")).unwrap();
        std::fs::write(top.join("plain.txt"), vec![1u8; 20_000]).unwrap();
        std::fs::write(top.join("run.sh"), vec![2u8; 40_000]).unwrap();
        std::fs::write(top.join("sub/empty-tool"), b"").unwrap();
        for f in ["run.sh", "sub/empty-tool"] {
            let mode = std::fs::Permissions::from_mode(0o700);
            std::fs::set_permissions(top.join(f), mode).unwrap();
        }
        let marked = |m: &Metainfo| -> Vec<(String, bool)> {
            m.info
                .files
                .iter()
                .filter(|f| !f.padding)
                .map(|f| (f.path.to_string_lossy().into_owned(), f.executable))
                .collect()
        };
        for format in super::super::Format::ALL {
            let opts = CreateOptions {
                piece_length: Some(16 << 10),
                ..Default::default()
            }
            .with_format(format);
            let m = create_torrent(&top, &opts, &|_, _| {}).unwrap();
            assert_eq!(
                marked(&m),
                [
                    ("tools/plain.txt".to_string(), false),
                    ("tools/run.sh".to_string(), true),
                    ("tools/sub/empty-tool".to_string(), true),
                ],
                "{format:?}"
            );
            let raw = m.info_bytes();
            let count = raw.windows(9).filter(|w| w == b"4:attr1:x").count();
            let sides = if format == super::super::Format::Hybrid {
                4
            } else {
                2
            };
            assert_eq!(count, sides, "{format:?}: one mark per file and side");
            let single = create_torrent(&top.join("run.sh"), &opts, &|_, _| {}).unwrap();
            assert_eq!(
                marked(&single),
                [("run.sh".to_string(), true)],
                "{format:?}"
            );
            let single = create_torrent(&top.join("plain.txt"), &opts, &|_, _| {}).unwrap();
            assert_eq!(
                marked(&single),
                [("plain.txt".to_string(), false)],
                "{format:?}"
            );
            assert!(!single.info_bytes().windows(4).any(|w| w == b"attr"));
        }
    }

    /// With `mtime`, each file's modification time is recorded (a `files` entry's, a single
    /// file's in `info`, a `file tree` file's; both sides of a hybrid) and read back; without it
    /// none is, and the info-hash does not follow the times. A value that is not a positive
    /// integer reads as none.
    #[test]
    fn modification_times_are_recorded_when_asked_and_read_back() {
        use std::time::{Duration, UNIX_EPOCH};
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("album");
        std::fs::create_dir_all(top.join("sub")).unwrap();
        let files = [
            ("a.jpg", 20_000, 1_000_000_000u64),
            ("b.jpg", 40_000, 1_600_000_000),
            ("sub/empty", 0, 1_234_567_890),
        ];
        let set_times = |shift: u64| {
            for (name, len, t) in files {
                let path = top.join(name);
                std::fs::write(&path, vec![7u8; len]).unwrap();
                let f = std::fs::File::options().write(true).open(&path).unwrap();
                f.set_modified(UNIX_EPOCH + Duration::from_secs(t + shift))
                    .unwrap();
            }
        };
        set_times(0);
        let times = |m: &Metainfo| -> Vec<(String, Option<u64>)> {
            m.info
                .files
                .iter()
                .filter(|f| !f.padding)
                .map(|f| (f.path.to_string_lossy().into_owned(), f.mtime))
                .collect()
        };
        for format in super::super::Format::ALL {
            let opts = CreateOptions {
                piece_length: Some(16 << 10),
                mtime: true,
                ..Default::default()
            }
            .with_format(format);
            let m = create_torrent(&top, &opts, &|_, _| {}).unwrap();
            let want: Vec<_> = files
                .iter()
                .map(|(name, _, t)| (format!("album/{name}"), Some(*t)))
                .collect();
            assert_eq!(times(&m), want, "{format:?}");
            let raw = m.info_bytes();
            let count = raw.windows(7).filter(|w| w == b"5:mtime").count();
            let sides = if format == super::super::Format::Hybrid {
                6
            } else {
                3
            };
            assert_eq!(count, sides, "{format:?}: one time per file and side");
            let single = create_torrent(&top.join("b.jpg"), &opts, &|_, _| {}).unwrap();
            assert_eq!(
                times(&single),
                [("b.jpg".to_string(), Some(1_600_000_000))],
                "{format:?}"
            );

            // Without the option: no time recorded, and touching the files changes nothing.
            let plain = CreateOptions {
                mtime: false,
                ..opts.clone()
            };
            let before = create_torrent(&top, &plain, &|_, _| {}).unwrap();
            assert!(times(&before).iter().all(|(_, t)| t.is_none()));
            assert!(!before.info_bytes().windows(5).any(|w| w == b"mtime"));
            set_times(60);
            let after = create_torrent(&top, &plain, &|_, _| {}).unwrap();
            assert_eq!(before.info_hash, after.info_hash, "{format:?}");
            let timed = create_torrent(&top, &opts, &|_, _| {}).unwrap();
            assert_ne!(timed.info_hash, m.info_hash, "{format:?}");
            set_times(0);

            // Read leniently: a negative time, or one that is not an integer, is none.
            let bad = replace(m.as_bytes(), b"5:mtimei1000000000e", b"5:mtimei-5e");
            let bad = replace(&bad, b"5:mtimei1600000000e", b"5:mtime3:now");
            // Past the year 9999: none, rather than a time the clock cannot hold.
            let bad = replace(
                &bad,
                b"5:mtimei1234567890e",
                b"5:mtimei9223372036854775807e",
            );
            let bad = Metainfo::from_bytes(&bad).unwrap();
            assert_eq!(
                times(&bad).iter().map(|(_, t)| *t).collect::<Vec<_>>(),
                [None, None, None],
                "{format:?}"
            );
        }
    }

    /// `bytes` with every `from` replaced by `to`.
    fn replace(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn piece_length_targets_about_two_thousand_pieces() {
        assert_eq!(auto_piece_length(1), 16 << 10);
        assert_eq!(auto_piece_length(1 << 30), 1 << 20);
        for total in [1u64 << 20, 700 << 20, 4 << 30, 30 << 30] {
            let p = auto_piece_length(total);
            assert!(p.is_power_of_two());
            let n = total.div_ceil(p);
            assert!(n <= 2000 && (n > 1000 || p == 16 << 10), "{total}: {n}");
        }
        assert_eq!(auto_piece_length(1 << 50), 16 << 20);
    }

    #[test]
    fn creates_multi_file_torrent_with_pieces_spanning_files() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("top");
        std::fs::create_dir_all(top.join("sub")).unwrap();
        let a: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(top.join("b.bin"), &a).unwrap();
        std::fs::write(top.join("sub/c.txt"), b"hello").unwrap();
        std::fs::write(top.join("empty"), b"").unwrap();
        std::fs::write(top.join(".hidden"), b"secret").unwrap();
        let opts = CreateOptions {
            trackers: vec!["http://127.0.0.1:1/announce".into()],
            piece_length: Some(16384),
            exclude_hidden: true,
            threads: 3,
            ..Default::default()
        };
        let m = create_torrent(&top, &opts, &|_, _| {}).unwrap();
        let names: Vec<_> = m.info.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(
            names,
            ["top/b.bin", "top/empty", "top/sub/c.txt"].map(PathBuf::from)
        );
        let mut all = a.clone();
        all.extend_from_slice(b"hello");
        let expect: Vec<[u8; 20]> = all.chunks(16384).map(|c| Sha1::digest(c).into()).collect();
        assert_eq!(m.info.pieces, expect);
        crate::bencode::validate(m.as_bytes(), true).expect("canonical bencode");
    }

    #[test]
    fn a_set_cancel_flag_stops_hashing() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, vec![7u8; 64 << 10]).unwrap();
        let cancel = Arc::new(AtomicBool::new(true));
        let opts = CreateOptions {
            piece_length: Some(16 << 10),
            cancel: Some(cancel.clone()),
            ..Default::default()
        };
        let err = create_torrent(&f, &opts, &|_, _| {}).unwrap_err();
        assert!(matches!(err, MetainfoError::Cancelled), "{err}");
        cancel.store(false, Ordering::Relaxed);
        assert!(create_torrent(&f, &opts, &|_, _| {}).is_ok());
    }

    #[test]
    fn refuses_missing_and_empty_sources() {
        let dir = tempfile::tempdir().unwrap();
        let err = create_torrent(&dir.path().join("nope"), &Default::default(), &|_, _| {});
        assert!(err.unwrap_err().to_string().contains("nope"));
        let err = create_torrent(dir.path(), &Default::default(), &|_, _| {});
        assert!(err.unwrap_err().to_string().contains("no data"));
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        let opts = CreateOptions {
            piece_length: Some(1000),
            ..Default::default()
        };
        assert!(create_torrent(dir.path(), &opts, &|_, _| {}).is_err());
    }

    /// Each file's `pieces root` is known in v2 and hybrid torrents, whatever the piece length
    /// (so files of two torrents compare), and equal for equal content; v1 files, padding and empty
    /// files have none.
    #[test]
    fn file_roots_name_content_across_torrents_and_piece_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("set");
        std::fs::create_dir_all(&top).unwrap();
        std::fs::write(top.join("a.bin"), vec![1u8; 100_000]).unwrap();
        std::fs::write(top.join("b.bin"), vec![2u8; 40_000]).unwrap();
        std::fs::write(top.join("copy-of-a.bin"), vec![1u8; 100_000]).unwrap();
        std::fs::write(top.join("empty"), b"").unwrap();
        let roots = |format, piece_length| {
            let opts = CreateOptions {
                piece_length: Some(piece_length),
                ..Default::default()
            }
            .with_format(format);
            let m = create_torrent(&top, &opts, &|_, _| {}).unwrap();
            let named: Vec<_> = m
                .info
                .files
                .iter()
                .zip(m.info.file_roots())
                .filter(|(f, _)| !f.padding)
                .map(|(f, r)| (f.path.file_name().unwrap().to_owned(), r))
                .collect();
            assert_eq!(m.info.file_roots().len(), m.info.files.len());
            named
        };
        let v1 = roots(super::super::Format::V1, 16 << 10);
        assert!(v1.iter().all(|(_, r)| r.is_none()), "{v1:?}");
        let v2 = roots(super::super::Format::V2, 16 << 10);
        let hybrid = roots(super::super::Format::Hybrid, 64 << 10);
        assert_eq!(
            v2, hybrid,
            "one root per content, whatever the piece length"
        );
        let root = |name: &str| v2.iter().find(|(n, _)| n == name).unwrap().1;
        assert!(root("a.bin").is_some() && root("b.bin").is_some());
        assert_eq!(root("a.bin"), root("copy-of-a.bin"));
        assert_ne!(root("a.bin"), root("b.bin"));
        assert_eq!(root("empty"), None);
        let hashed =
            super::super::v2::hash_file(&top.join("a.bin"), 100_000, 32 << 10, None, &|_| {})
                .unwrap();
        assert_eq!(Some(hashed.root), root("a.bin"));
    }
}
