//! The commands the host knows: the bundled `scripts/b-*.rhai` (embedded at build time) and any
//! `b-*.rhai` in the configured scripts folder, which adds a command or overrides a bundled one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::command::CommandSpec;

mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled_scripts.rs"));
}

/// Where a command's script comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOrigin {
    Bundled,
    File(PathBuf),
}

impl ScriptOrigin {
    /// How error messages name the script: `b-create.rhai (bundled)` or its path.
    pub fn describe(&self, name: &str) -> String {
        match self {
            ScriptOrigin::Bundled => format!("{name}.rhai (bundled)"),
            ScriptOrigin::File(p) => p.display().to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Script {
    pub name: String,
    pub source: String,
    pub origin: ScriptOrigin,
    pub spec: CommandSpec,
}

impl Script {
    pub fn describe(&self) -> String {
        self.origin.describe(&self.name)
    }
}

/// Every command by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    scripts: BTreeMap<String, Script>,
}

/// Largest script file read (the largest string a script may hold).
pub const MAX_SCRIPT_BYTES: u64 = 16 << 20;

/// Reads a script file: at most [`MAX_SCRIPT_BYTES`], so a huge file or a device that never ends is
/// refused rather than read into memory; a pipe (`btorrent run <(...)`) is read like a file.
pub fn read_script(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_SCRIPT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "larger than 16 MiB, too large for a script",
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

impl Catalog {
    /// The bundled commands, then those in `user_dir` (if it exists). Returns the catalog and a warning
    /// for each user script that could not be read or declares its arguments wrongly (it is left out).
    pub fn load(user_dir: Option<&Path>) -> (Catalog, Vec<String>) {
        let mut cat = Catalog::default();
        let mut warnings = Vec::new();
        for (name, source) in bundled::BUNDLED {
            let spec =
                CommandSpec::parse(name, source).expect("bundled scripts declare valid usage");
            cat.scripts.insert(
                name.to_string(),
                Script {
                    name: name.to_string(),
                    source: source.to_string(),
                    origin: ScriptOrigin::Bundled,
                    spec,
                },
            );
        }
        let Some(dir) = user_dir else {
            return (cat, warnings);
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return (cat, warnings);
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(name) = file.strip_suffix(".rhai").filter(|n| n.starts_with("b-")) else {
                continue;
            };
            if !path.is_file() {
                continue;
            }
            let source = match read_script(&path) {
                Ok(s) => s,
                Err(e) => {
                    warnings.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            match CommandSpec::parse(name, &source) {
                Ok(spec) => {
                    cat.scripts.insert(
                        name.to_string(),
                        Script {
                            name: name.to_string(),
                            source,
                            origin: ScriptOrigin::File(path.clone()),
                            spec,
                        },
                    );
                }
                Err(e) => warnings.push(format!("{}: {e}", path.display())),
            }
        }
        (cat, warnings)
    }

    /// Looks a command up by `b-name` or `name`.
    pub fn get(&self, name: &str) -> Option<&Script> {
        self.scripts
            .get(name)
            .or_else(|| self.scripts.get(&format!("b-{name}")))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Script> {
        self.scripts.values()
    }

    pub fn names(&self) -> Vec<String> {
        self.scripts.keys().cloned().collect()
    }

    /// The command `name` (with or without `b-`) was probably meant to be, if one is at most two
    /// edits away.
    pub fn nearest(&self, name: &str) -> Option<String> {
        let wanted = name.trim_start_matches("b-");
        let bare = |n: &String| n.trim_start_matches("b-").to_string();
        let names: Vec<String> = self.scripts.keys().map(bare).collect();
        let near = btorrent_proto::text::nearest(wanted, names.iter().map(String::as_str), 2)?;
        self.scripts.keys().find(|n| bare(n) == near).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_command() {
        let (cat, _) = Catalog::load(None);
        assert_eq!(cat.nearest("b-inof").as_deref(), Some("b-info"));
        assert_eq!(cat.nearest("strat").as_deref(), Some("b-start"));
        assert_eq!(cat.nearest("b-zzzzzz"), None);
    }

    #[test]
    fn bundled_commands_parse_and_user_scripts_override() {
        let (cat, warnings) = Catalog::load(None);
        assert!(warnings.is_empty());
        for name in ["b-create", "b-edit", "b-info", "b-show", "b-help"] {
            assert!(cat.get(name).is_some(), "{name} is bundled");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b-info.rhai"), "//! Mine\nprint(1);").unwrap();
        std::fs::write(
            dir.path().join("b-hello.rhai"),
            "//! Say hello\n//! usage: b-hello [who]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("b-bad.rhai"), "//! usage: b-bad <x\n").unwrap();
        std::fs::write(dir.path().join("helper.rhai"), "print(2);").unwrap();
        let (cat, warnings) = Catalog::load(Some(dir.path()));
        assert_eq!(cat.get("info").unwrap().spec.summary, "Mine");
        assert!(matches!(
            cat.get("b-hello").unwrap().origin,
            ScriptOrigin::File(_)
        ));
        assert!(cat.get("b-bad").is_none() && cat.get("helper").is_none());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("b-bad.rhai"));
    }
}
