//! `path_kind(path)`: what a path on this machine is (`"folder"`, `"file"`, `"other"`, or `()`
//! when nothing is there), links followed; so a script tells data to make a torrent of from a
//! .torrent file or a managed torrent's name (`b-push`).

use rhai::{Dynamic, Engine};

/// The kind of what `path` names.
fn path_kind(path: &str) -> Dynamic {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => "folder".into(),
        Ok(m) if m.is_file() => "file".into(),
        Ok(_) => "other".into(),
        Err(_) => Dynamic::UNIT,
    }
}

pub(super) fn register(engine: &mut Engine) {
    engine.register_fn("path_kind", path_kind);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_files_and_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.bin");
        std::fs::write(&file, b"x").unwrap();
        let kind = |p: &std::path::Path| path_kind(p.to_str().unwrap());
        assert_eq!(kind(dir.path()).into_string().unwrap(), "folder");
        assert_eq!(kind(&file).into_string().unwrap(), "file");
        assert_eq!(
            kind(std::path::Path::new("/dev/null"))
                .into_string()
                .unwrap(),
            "other"
        );
        assert!(kind(&dir.path().join("missing")).is_unit());
    }
}
