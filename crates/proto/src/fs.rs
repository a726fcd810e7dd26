//! File helpers every layer shares: atomic replacement of a file, and confinement of relative paths
//! (from a .torrent, a peer) to a base folder.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// Replaces `path` with `bytes` atomically: the data goes to a temporary file in the same folder, is
/// flushed to disk, then renamed over the target, so a reader sees the old file or the new one, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_unless(path, bytes, || false).map(|_| ())
}

/// [`write_atomic`], unless `changed()` says, once the new bytes are on disk and just before they
/// replace the file, that someone changed the file meanwhile: then nothing is replaced and `false`
/// is returned, for the caller to make its change again on theirs. (The moment between that look
/// and the rename is all that is left for a writer who takes no lock, an editor, to be overwritten
/// in, where the write and its flush to disk would otherwise be.)
pub fn write_atomic_unless(
    path: &Path,
    bytes: &[u8],
    changed: impl FnOnce() -> bool,
) -> std::io::Result<bool> {
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
        if changed() {
            return Ok(false);
        }
        std::fs::rename(&tmp, path).map(|()| true)
    })();
    if !matches!(result, Ok(true)) {
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
        // Someone changed it meanwhile: nothing replaced, no temporary file left.
        assert!(!write_atomic_unless(&p, b"three", || true).unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_atomic_unless(&p, b"four", || false).unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"four");
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
}
