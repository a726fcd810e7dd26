//! Filesystem helpers every layer shares: atomic replacement of a file, confinement of relative paths
//! to a base folder, sizes read and shown in binary units, and lines on stdout that survive a closed
//! pipe and go above the progress bar being drawn, if any.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// Replaces `path` with `bytes` atomically: the data goes to a temporary file in the same folder, is
/// flushed to disk, then renamed over the target, so a reader sees the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Whether one path component taken from untrusted input (a .torrent, a peer) is safe to join under a
/// folder: not empty, not `.` or `..`, no separator (`/` or `\`), NUL or other control character, and on
/// Windows not a device name
/// (`CON`, `aux.c`, `COM1`...), which elsewhere are ordinary names (the Linux sources hold an `aux.c`).
pub fn is_safe_component(c: &str) -> bool {
    if c.is_empty() || c == "." || c == ".." || c.contains(['/', '\\']) {
        return false;
    }
    // NUL, and every other control character: a name is shown on terminals (listings, events), where
    // an escape sequence would act.
    if c.chars().any(char::is_control) {
        return false;
    }
    !(cfg!(windows) && is_windows_device_name(c))
}

/// `CON`, `PRN`, `AUX`, `NUL`, `COM1`-`COM9`, `LPT1`-`LPT9`, with any extension, in any case.
pub fn is_windows_device_name(c: &str) -> bool {
    let stem = c.split('.').next().unwrap_or("").to_ascii_uppercase();
    matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit())
}

/// Joins `rel` under `base` only if every component of `rel` is a plain name, so the result cannot
/// escape `base`.
pub fn confined_join(base: &Path, rel: &Path) -> Option<PathBuf> {
    let mut out = base.to_path_buf();
    let mut any = false;
    for comp in rel.components() {
        match comp {
            Component::Normal(s) if is_safe_component(&s.to_string_lossy()) => out.push(s),
            _ => return None,
        }
        any = true;
    }
    any.then_some(out)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn confined_join_refuses_escapes() {
        let base = Path::new("/data");
        assert_eq!(
            confined_join(base, Path::new("a/b.txt")),
            Some(PathBuf::from("/data/a/b.txt"))
        );
        for bad in ["../x", "/etc/passwd", "a/../../x", "", "a\\b"] {
            assert_eq!(confined_join(base, Path::new(bad)), None, "{bad}");
        }
        for device in ["CON", "a/nul.txt", "com1"] {
            assert!(is_windows_device_name(
                Path::new(device).file_name().unwrap().to_str().unwrap()
            ));
            assert_eq!(
                confined_join(base, Path::new(device)).is_none(),
                cfg!(windows)
            );
        }
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(1 << 30), "1.00 GiB");
    }
}
