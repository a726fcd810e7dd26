//! Filesystem helpers every layer shares: atomic replacement of a file, confinement of relative paths
//! to a base folder, sizes read and shown in binary units, and lines on stdout that survive a closed
//! pipe and go above the progress bar being drawn, if any.

use std::io::Write;

pub use btorrent_proto::fs::{
    confined_join, is_safe_component, is_windows_device_name, write_atomic,
};

/// Human-readable size in binary units: `1.5 GiB`, `512 B`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// Parses `16384`, `16K`, `16KiB`, `4M`, `1G` (binary units) into bytes.
pub fn parse_size(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 16384, 256K, 4M)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("{s:?} has an unknown unit (use K, M or G)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Writes `text` and a newline to stdout. A reader that has gone away (`btorrent info x | head -1`) is
/// not an error: `println!` would panic on the broken pipe.
pub fn print_line(text: &str) {
    above_bar(|| {
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    });
}

/// The progress bar on the terminal now, if any (one at a time: a command's hashing or download).
static SHOWN_BAR: parking_lot::Mutex<Option<indicatif::ProgressBar>> =
    parking_lot::const_mutex(None);

/// A progress bar that lines written meanwhile (output, log lines) go above, instead of across it;
/// it stops being one when dropped.
pub struct ShownBar(indicatif::ProgressBar);

impl ShownBar {
    pub fn new(bar: indicatif::ProgressBar) -> ShownBar {
        *SHOWN_BAR.lock() = Some(bar.clone());
        ShownBar(bar)
    }
}

impl std::ops::Deref for ShownBar {
    type Target = indicatif::ProgressBar;
    fn deref(&self) -> &indicatif::ProgressBar {
        &self.0
    }
}

impl Drop for ShownBar {
    fn drop(&mut self) {
        *SHOWN_BAR.lock() = None;
    }
}

/// Runs `f`, which writes lines to the terminal, with the progress bar (if one is shown) taken away
/// first and drawn again under the lines after.
pub fn above_bar<T>(f: impl FnOnce() -> T) -> T {
    let bar = SHOWN_BAR.lock().clone();
    match bar {
        Some(b) if !b.is_finished() => b.suspend(f),
        _ => f(),
    }
}

/// Bytes free for an unprivileged user in the file system holding `path`.
pub fn free_space(path: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `st` a valid statvfs to fill.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(1 << 30), "1.00 GiB");
    }
}
