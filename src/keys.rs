//! Signing keys for mutable torrents (BEP 46), kept in `keys/` beside torrents.toml: `<name>.key`
//! holds the ed25519 key's 32-byte seed as 64 hex digits, readable by its owner alone (mode 0600).
//! A key is made the first time it is named; whoever holds the file can move the key's mutable
//! links, and nobody can once it is lost. A key's name is 1 to 64 letters, digits, `-`, `_` or
//! `.`, not starting with `.`: it never leaves the folder.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use rand::RngCore as _;

/// The folder of keys, beside torrents.toml.
pub const KEYS_DIR: &str = "keys";
/// The key used when none is named.
pub const DEFAULT_KEY: &str = "default";

/// Where key `name` is kept under `base` (torrents.toml's folder), or why the name is refused.
pub fn key_path(base: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!("key name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'");
    }
    Ok(base.join(KEYS_DIR).join(format!("{name}.key")))
}

/// The seed of key `name`, made (and saved, mode 0600) when it does not exist yet.
pub fn load_or_create(base: &Path, name: &str) -> anyhow::Result<[u8; 32]> {
    let path = key_path(base, name)?;
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text).with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn parse(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text.trim()).ok().filter(|b| b.len() == 32);
    let Some(bytes) = bytes else {
        bail!("not a key: it should hold 64 hex digits (an ed25519 seed)");
    };
    Ok(bytes.try_into().expect("32 bytes"))
}

fn create(path: &Path) -> anyhow::Result<[u8; 32]> {
    let dir = path.parent().expect("a key has a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    // `create_new`: two processes making the same key at once do not overwrite each other's.
    let made = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match made {
        Ok(mut f) => {
            writeln!(f, "{}", hex::encode(seed))
                .and_then(|_| f.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(key = %path.display(), "new signing key made");
            Ok(seed)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path)?;
            parse(&text).with_context(|| format!("{}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_key_is_made_once_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path(), DEFAULT_KEY).unwrap();
        let path = dir.path().join("keys/default.key");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_or_create(dir.path(), DEFAULT_KEY).unwrap(), a);
        assert_ne!(load_or_create(dir.path(), "music").unwrap(), a);
        for bad in ["", "../x", "a/b", ".hidden", &"k".repeat(65)] {
            assert!(key_path(dir.path(), bad).is_err(), "{bad:?}");
        }
        std::fs::write(&path, "not hex\n").unwrap();
        let e = load_or_create(dir.path(), DEFAULT_KEY).unwrap_err();
        assert!(format!("{e:#}").contains("64 hex digits"), "{e:#}");
    }
}
