//! Filesystem helpers every layer shares: atomic replacement of a file, confinement of relative paths
//! to a base folder (URL paths included), and the space free on a file system.

pub use btorrent_proto::fs::{
    confined_join, is_safe_component, is_windows_device_name, write_atomic, write_atomic_unless,
};

/// Bytes free for an unprivileged user in the file system holding `path`.
pub fn free_space(path: &std::path::Path) -> std::io::Result<u64> {
    space(path).map(|(free, _)| free)
}

/// Bytes free for an unprivileged user, and bytes in all, of the file system holding `path`.
pub fn space(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `st` a valid statvfs to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let block = st.f_frsize as u64;
    Ok((st.f_bavail as u64 * block, st.f_blocks as u64 * block))
}

/// `rel` (a `/`-separated path from a URL) under `base`, when each part is a plain name that is not
/// hidden: no `..`, no absolute path, no `.name`.
pub fn confined_web_path(base: &std::path::Path, rel: &str) -> Option<std::path::PathBuf> {
    if rel
        .split('/')
        .any(|part| part.starts_with('.') || part.contains('\\'))
    {
        return None;
    }
    btorrent_proto::fs::confined_join(base, std::path::Path::new(rel))
}
