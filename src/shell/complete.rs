//! Tab completion: command names (bundled and the user's, re-read each time so a script dropped into
//! the scripts folder completes at once), a command's flags from its declared usage, and for its
//! arguments paths (only `.torrent` files and folders where a torrent is expected), managed torrent
//! names, or command names (`b-help <command>`). Everything comes from the local disk.

use std::path::{Path, PathBuf};

use reedline::{Completer, Span, Suggestion};

use super::words::{quote, split_partial};
use crate::script::command::Positional;
use crate::script::{Catalog, CommandSpec};
use crate::torrents::Torrents;

pub struct ShellCompleter {
    /// The managed torrents (their names, the scripts folder), from memory.
    pub torrents: Torrents,
}

/// What the word under the cursor should be.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    Command,
    Flag,
    /// Any file or folder.
    Path,
    /// A .torrent file, a folder to look in, or a managed torrent's name.
    Torrent,
    /// A value nobody can guess (a number, free text).
    Nothing,
}

impl ShellCompleter {
    fn catalog(&self) -> Catalog {
        let dir = self.torrents.config().ok().map(|c| c.scripts_dir());
        Catalog::load(dir.as_deref()).0
    }

    fn managed_names(&self) -> Vec<String> {
        self.torrents
            .config()
            .map(|c| c.torrents.iter().map(|t| t.name.clone()).collect())
            .unwrap_or_default()
    }
}

/// Decides what the word at index `at` of a command line for `spec` is; `before` are the words
/// between the command name and it.
fn want(spec: &CommandSpec, before: &[String], partial: &str) -> Want {
    if partial.starts_with('-') {
        return Want::Flag;
    }
    let mut positional = 0;
    let mut value_of: Option<&str> = None;
    let mut only_positionals = false;
    for w in before {
        if value_of.take().is_some() {
            continue;
        }
        if !only_positionals && w == "--" {
            only_positionals = true;
        } else if !only_positionals && w.starts_with('-') && w.len() > 1 && !w.contains('=') {
            let flag = spec.flags.iter().find(|f| {
                w.strip_prefix("--") == Some(f.long.as_str())
                    || (w.len() == 2 && f.short == w.chars().nth(1))
            });
            value_of = flag.and_then(|f| f.value.as_ref()).map(|(p, _)| p.as_str());
        } else {
            positional += 1;
        }
    }
    if let Some(placeholder) = value_of {
        return kind_for(placeholder);
    }
    let p: Option<&Positional> = spec
        .positionals
        .get(positional)
        .or_else(|| spec.positionals.last().filter(|p| p.repeated));
    match p {
        Some(p) => kind_for(&p.name),
        None => Want::Nothing,
    }
}

fn kind_for(name: &str) -> Want {
    match name {
        "command" => Want::Command,
        n if n.contains("torrent") || n == "name" || n == "name-or-hash" => Want::Torrent,
        "path" | "file" | "dir" | "folder" | "files" | "paths" | "output" => Want::Path,
        _ => Want::Nothing,
    }
}

/// Files and folders starting with `partial` (relative to the working folder, `~/` allowed).
fn paths(partial: &str, torrents_only: bool) -> Vec<(String, bool)> {
    let (dir_part, prefix) = match partial.rfind('/') {
        Some(i) => (&partial[..=i], &partial[i + 1..]),
        None => ("", partial),
    };
    let dir: PathBuf = if dir_part.is_empty() {
        PathBuf::from(".")
    } else if let Some(rest) = dir_part.strip_prefix("~/") {
        std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(rest))
            .unwrap_or_else(|| PathBuf::from(dir_part))
    } else {
        PathBuf::from(dir_part)
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, bool)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
                return None;
            }
            let is_dir = e.path().is_dir();
            if torrents_only && !is_dir && !name.ends_with(".torrent") {
                return None;
            }
            Some((format!("{dir_part}{name}"), is_dir))
        })
        .collect();
    out.sort();
    out
}

impl Completer for ShellCompleter {
    fn complete(&mut self, line: &str, pos: usize) -> Vec<Suggestion> {
        let pos = pos.min(line.len());
        let head = &line[..pos];
        let (mut words, open_quote) = split_partial(head);
        let ends_in_space = open_quote.is_none() && head.ends_with(char::is_whitespace);
        let (partial, start) = match (ends_in_space, words.last()) {
            (false, Some(_)) => {
                let w = words.pop().expect("checked");
                (w.text, w.start)
            }
            _ => (String::new(), pos),
        };
        let span = Span::new(start, pos);
        let suggestion = |value: String, description: Option<String>, space: bool| Suggestion {
            value,
            description,
            span,
            append_whitespace: space,
            ..Default::default()
        };
        let catalog = self.catalog();
        let commands = |partial: &str| -> Vec<Suggestion> {
            let bare = partial.strip_prefix("b-").unwrap_or(partial);
            catalog
                .iter()
                .filter(|s| s.name.trim_start_matches("b-").starts_with(bare))
                .map(|s| suggestion(s.name.clone(), Some(s.spec.summary.clone()), true))
                .collect()
        };
        if words.is_empty() {
            return commands(&partial);
        }
        let Some(script) = catalog.get(&words[0].text) else {
            return Vec::new();
        };
        let before: Vec<String> = words[1..].iter().map(|w| w.text.clone()).collect();
        match want(&script.spec, &before, &partial) {
            Want::Command => commands(&partial),
            Want::Flag => script
                .spec
                .flags
                .iter()
                .flat_map(|f| {
                    let help = f.value.as_ref().map(|(p, _)| format!("<{p}>"));
                    let mut names = vec![format!("--{}", f.long)];
                    names.extend(f.short.map(|c| format!("-{c}")));
                    names.into_iter().map(move |n| (n, help.clone()))
                })
                .filter(|(n, _)| n.starts_with(&partial))
                .map(|(n, help)| suggestion(n, help, true))
                .collect(),
            want @ (Want::Path | Want::Torrent) => {
                let torrents = want == Want::Torrent;
                let mut out: Vec<Suggestion> = Vec::new();
                if torrents {
                    out.extend(
                        self.managed_names()
                            .into_iter()
                            .filter(|n| n.starts_with(&partial))
                            .map(|n| suggestion(quote(&n), Some("managed".into()), true)),
                    );
                }
                out.extend(paths(&partial, torrents).into_iter().map(|(p, dir)| {
                    if dir {
                        suggestion(format!("{}/", quote(&p)), None, false)
                    } else {
                        suggestion(quote(&p), None, true)
                    }
                }));
                out
            }
            Want::Nothing => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(c: &mut ShellCompleter, line: &str) -> Vec<String> {
        c.complete(line, line.len())
            .into_iter()
            .map(|s| s.value)
            .collect()
    }

    #[test]
    fn completes_commands_flags_paths_and_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("scripts")).unwrap();
        std::fs::write(
            root.join("scripts/b-greet.rhai"),
            "//! Hi\n//! usage: b-greet <who> [--loud] [-n, --times <n>]\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.join("media/sub")).unwrap();
        std::fs::write(root.join("media/a.torrent"), b"x").unwrap();
        std::fs::write(root.join("media/b.txt"), b"x").unwrap();
        std::fs::write(
            root.join("torrents.toml"),
            "[[torrent]]\nname = \"my disk\"\ninfo_hash = \"0101010101010101010101010101010101010101\"\nfile = \"t\"\ndata = \"d\"\n",
        )
        .unwrap();
        let mut c = ShellCompleter {
            torrents: Torrents::open(&root.join("torrents.toml")),
        };
        assert_eq!(values(&mut c, "b-gr"), ["b-greet"]);
        assert_eq!(values(&mut c, "gr"), ["b-greet"]);
        assert!(values(&mut c, "").contains(&"b-create".to_string()));
        assert_eq!(values(&mut c, "b-greet x --"), ["--loud", "--times"]);
        assert_eq!(values(&mut c, "b-greet x -"), ["--loud", "--times", "-n"]);
        assert_eq!(values(&mut c, "b-help b-cr"), ["b-create"]);
        let media = format!("{}/media/", root.display());
        let got = values(&mut c, &format!("b-info {media}"));
        assert_eq!(
            got,
            [format!("{media}a.torrent"), format!("{media}sub/")],
            "only .torrent files and folders"
        );
        let got = values(&mut c, &format!("b-create {media}"));
        assert_eq!(got.len(), 3, "any path: {got:?}");
        let got = values(&mut c, &format!("b-create x -o {media}b"));
        assert_eq!(got, [format!("{media}b.txt")], "a flag's <file> value");
        assert_eq!(
            values(&mut c, "b-create x --piece-length "),
            Vec::<String>::new()
        );
        let got = values(&mut c, "b-info my");
        assert_eq!(got, ["'my disk'"]);
        assert_eq!(values(&mut c, "b-nope "), Vec::<String>::new());
        // The span covers the partial word, quotes included.
        let s = c.complete("b-info 'my", 10);
        assert_eq!((s[0].span.start, s[0].span.end), (7, 10));
    }
}
