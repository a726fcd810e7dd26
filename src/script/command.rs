//! A command script's declaration and the parsing of a command line against it.
//!
//! A command is a file `b-NAME.rhai` that starts with a `//!` doc block. The first paragraph is the
//! summary `b-help` lists; the line starting with `usage:` declares the arguments, and the whole block is
//! the help text. The usage grammar:
//!
//! ```text
//! usage: b-create <path> [tracker-url] [--piece-length <bytes>] [--private] [-o, --output <file>]
//!        <name>      required positional        <name>...   one or more (collected in an array)
//!        [name]      optional positional        [name]...   zero or more
//!        [--flag]    boolean flag               [--flag <value>]   flag taking a value
//!        [-o, --output <file>]  short alias     <bytes>/<n>/<secs> values are parsed as numbers
//!        [--only <glob>]...     a flag with a value given any number of times (an array)
//! ```
//!
//! The script sees one map `args`: each positional and flag by name, dashes turned into underscores
//! (`args.tracker_url`, `args.piece_length`); absent optional values are `()`, absent flags `false`.

use rhai::{Dynamic, Map};

/// What a value declared as `<kind>` is parsed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    /// A whole number.
    Number,
    /// A size with an optional unit: `16384`, `16K`, `4MiB`, `1G`.
    Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positional {
    pub name: String,
    pub required: bool,
    pub repeated: bool,
    pub kind: ValueKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub long: String,
    pub short: Option<char>,
    /// The value's placeholder (`bytes` in `<bytes>`), or `None` for a boolean flag.
    pub value: Option<(String, ValueKind)>,
    /// `[--only <glob>]...`: may be given several times; the script gets an array of the values.
    pub repeated: bool,
}

/// A command's declaration, read from its script's doc block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandSpec {
    pub name: String,
    pub summary: String,
    pub usage: String,
    pub help: String,
    pub positionals: Vec<Positional>,
    pub flags: Vec<Flag>,
}

fn kind_of(placeholder: &str) -> ValueKind {
    match placeholder {
        "n" | "count" | "number" | "secs" | "seconds" | "port" | "index" => ValueKind::Number,
        "bytes" | "size" => ValueKind::Bytes,
        _ => ValueKind::Text,
    }
}

/// Turns `tracker-url` into `tracker_url`.
pub fn arg_key(name: &str) -> String {
    name.replace('-', "_")
}

impl CommandSpec {
    /// Reads the declaration at the top of `source`. A script without a `usage:` line takes no
    /// arguments (its usage is its bare name).
    pub fn parse(name: &str, source: &str) -> Result<CommandSpec, String> {
        let doc: Vec<&str> = source
            .lines()
            .take_while(|l| l.trim_start().starts_with("//!"))
            .map(|l| {
                let t = l.trim_start().trim_start_matches("//!");
                t.strip_prefix(' ').unwrap_or(t)
            })
            .collect();
        let summary = doc
            .iter()
            .take_while(|l| !l.trim().is_empty() && !l.trim_start().starts_with("usage:"))
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ");
        let mut spec = CommandSpec {
            name: name.to_string(),
            summary,
            usage: name.to_string(),
            help: doc.join("\n").trim().to_string(),
            ..Default::default()
        };
        if let Some(line) = doc
            .iter()
            .find_map(|l| l.trim_start().strip_prefix("usage:"))
        {
            spec.usage = line.trim().to_string();
            spec.parse_usage(line)
                .map_err(|e| format!("{name}: bad usage line: {e}"))?;
        }
        Ok(spec)
    }

    fn parse_usage(&mut self, line: &str) -> Result<(), String> {
        let mut rest = line.trim();
        match rest.split_whitespace().next() {
            Some(first) if first == self.name => rest = rest[first.len()..].trim_start(),
            _ => return Err(format!("it must start with the command name {}", self.name)),
        }
        while !rest.is_empty() {
            let (item, after) = if let Some(inner) = rest.strip_prefix('[') {
                let end = inner.find(']').ok_or("unclosed [")?;
                ((&inner[..end], false), &inner[end + 1..])
            } else if rest.starts_with('<') {
                let end = rest.find('>').ok_or("unclosed <")?;
                ((&rest[..=end], true), &rest[end + 1..])
            } else {
                return Err(format!("unexpected text {rest:?}"));
            };
            let (repeated, after) = match after.strip_prefix("...") {
                Some(a) => (true, a),
                None => (false, after),
            };
            rest = after.trim_start();
            let (text, required) = item;
            let text = text.trim();
            if text.starts_with('-') {
                let mut flag = parse_flag(text)?;
                if required || (repeated && flag.value.is_none()) {
                    return Err(format!(
                        "flag {text} must be optional, and repeated only with a value"
                    ));
                }
                flag.repeated = repeated;
                self.flags.push(flag);
            } else {
                let name = text.trim_start_matches('<').trim_end_matches('>');
                let plain = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
                if name.is_empty() || name.starts_with('-') || !name.chars().all(plain) {
                    return Err(format!("bad argument name {text:?}"));
                }
                if self.positionals.last().is_some_and(|p| p.repeated) {
                    return Err(format!("{name} follows a repeated argument"));
                }
                self.positionals.push(Positional {
                    name: name.to_string(),
                    required,
                    repeated,
                    kind: kind_of(name),
                });
            }
        }
        Ok(())
    }

    /// Parses `argv` (the words after the command name) into the `args` map.
    pub fn parse_args(&self, argv: &[String]) -> Result<Map, String> {
        let mut map = Map::new();
        for f in &self.flags {
            let v = if f.repeated {
                Dynamic::from_array(Vec::new())
            } else if f.value.is_some() {
                Dynamic::UNIT
            } else {
                Dynamic::FALSE
            };
            map.insert(arg_key(&f.long).into(), v);
        }
        let mut words: Vec<&str> = Vec::new();
        let mut i = 0;
        let mut only_positionals = false;
        while i < argv.len() {
            let a = argv[i].as_str();
            i += 1;
            if only_positionals || !a.starts_with('-') || a == "-" || is_number(a) {
                words.push(a);
                continue;
            }
            if a == "--" {
                only_positionals = true;
                continue;
            }
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v)),
                _ => (a, None),
            };
            let flag = self
                .flags
                .iter()
                .find(|f| {
                    name.strip_prefix("--") == Some(f.long.as_str())
                        || (name.len() == 2
                            && name.starts_with('-')
                            && f.short == name.chars().nth(1))
                })
                .ok_or_else(|| format!("unknown option {name}"))?;
            let key = arg_key(&flag.long);
            match &flag.value {
                None => {
                    if inline.is_some() {
                        return Err(format!("--{} takes no value", flag.long));
                    }
                    map.insert(key.into(), Dynamic::TRUE);
                }
                Some((placeholder, kind)) => {
                    let v = match inline {
                        Some(v) => v,
                        None => {
                            i += 1;
                            argv.get(i - 1).map(String::as_str).ok_or_else(|| {
                                format!("--{} needs a value <{placeholder}>", flag.long)
                            })?
                        }
                    };
                    let parsed = convert(v, *kind).map_err(|e| format!("--{}: {e}", flag.long))?;
                    match map.get_mut(key.as_str()) {
                        Some(list) if flag.repeated => {
                            if let Some(mut a) = list.write_lock::<rhai::Array>() {
                                a.push(parsed);
                            }
                        }
                        _ => {
                            map.insert(key.into(), parsed);
                        }
                    }
                }
            }
        }
        let mut words = words.into_iter();
        for p in &self.positionals {
            let key = arg_key(&p.name);
            if p.repeated {
                let all: Vec<Dynamic> = words
                    .by_ref()
                    .map(|w| convert(w, p.kind).map_err(|e| format!("<{}>: {e}", p.name)))
                    .collect::<Result<_, _>>()?;
                if p.required && all.is_empty() {
                    return Err(format!("missing <{}>", p.name));
                }
                map.insert(key.into(), all.into());
                continue;
            }
            match words.next() {
                Some(w) => {
                    let v = convert(w, p.kind).map_err(|e| format!("<{}>: {e}", p.name))?;
                    map.insert(key.into(), v);
                }
                None if p.required => return Err(format!("missing <{}>", p.name)),
                None => {
                    map.insert(key.into(), Dynamic::UNIT);
                }
            }
        }
        if let Some(extra) = words.next() {
            return Err(format!("unexpected argument {extra:?}"));
        }
        Ok(map)
    }

    /// The usage line with its flags folded into `[options]`, for one-line listings.
    pub fn brief(&self) -> String {
        let mut out = self.name.clone();
        for p in &self.positionals {
            let dots = if p.repeated { "..." } else { "" };
            if p.required {
                out.push_str(&format!(" <{}>{dots}", p.name));
            } else {
                out.push_str(&format!(" [{}]{dots}", p.name));
            }
        }
        if !self.flags.is_empty() {
            out.push_str(" [options]");
        }
        out
    }

    /// Every option name (`--private`, `-o`) for completion.
    pub fn option_names(&self) -> Vec<String> {
        let mut out = Vec::new();
        for f in &self.flags {
            out.push(format!("--{}", f.long));
            if let Some(c) = f.short {
                out.push(format!("-{c}"));
            }
        }
        out
    }
}

fn is_number(s: &str) -> bool {
    s.len() > 1 && s[1..].chars().all(|c| c.is_ascii_digit() || c == '.')
}

fn parse_flag(text: &str) -> Result<Flag, String> {
    let (names, value) = match text.find('<') {
        Some(i) => {
            let v = text[i..].trim();
            if !v.ends_with('>') {
                return Err(format!("bad value in {text:?}"));
            }
            let name = v[1..v.len() - 1].to_string();
            let kind = kind_of(&name);
            (&text[..i], Some((name, kind)))
        }
        None => (text, None),
    };
    let mut long = None;
    let mut short = None;
    for n in names
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if let Some(l) = n.strip_prefix("--") {
            long = Some(l.to_string());
        } else if let Some(s) = n.strip_prefix('-').filter(|s| s.chars().count() == 1) {
            short = s.chars().next();
        } else {
            return Err(format!("bad flag name {n:?}"));
        }
    }
    let long = long.ok_or_else(|| format!("flag {text:?} needs a --long name"))?;
    Ok(Flag {
        long,
        short,
        value,
        repeated: false,
    })
}

fn convert(v: &str, kind: ValueKind) -> Result<Dynamic, String> {
    match kind {
        ValueKind::Text => Ok(v.into()),
        ValueKind::Number => v
            .parse::<i64>()
            .map(Dynamic::from)
            .map_err(|_| format!("{v:?} is not a whole number")),
        ValueKind::Bytes => crate::units::parse_size(v).map(Dynamic::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = "//! Create a torrent\n//! from a path.\n//!\n//! usage: b-create <path> [tracker-url] [--piece-length <bytes>] [--private] [-o, --output <file>]\n//!\n//! More text.\nlet x = 1;\n";

    #[test]
    fn reads_the_declaration() {
        let spec = CommandSpec::parse("b-create", CREATE).unwrap();
        assert_eq!(spec.summary, "Create a torrent from a path.");
        assert_eq!(spec.positionals.len(), 2);
        assert!(spec.positionals[0].required && !spec.positionals[1].required);
        assert_eq!(spec.flags.len(), 3);
        assert_eq!(spec.flags[2].short, Some('o'));
        assert!(spec.help.ends_with("More text."));
        assert_eq!(spec.brief(), "b-create <path> [tracker-url] [options]");
        assert_eq!(
            spec.option_names(),
            ["--piece-length", "--private", "--output", "-o"]
        );
    }

    #[test]
    fn parses_command_lines() {
        let spec = CommandSpec::parse("b-create", CREATE).unwrap();
        let argv = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let m = spec
            .parse_args(&argv("data --private --piece-length 64K -o out.torrent"))
            .unwrap();
        assert_eq!(m["path"].clone().into_string().unwrap(), "data");
        assert!(m["tracker_url"].is_unit());
        assert!(m["private"].as_bool().unwrap());
        assert_eq!(m["piece_length"].as_int().unwrap(), 65536);
        assert_eq!(m["output"].clone().into_string().unwrap(), "out.torrent");
        let m = spec
            .parse_args(&argv("data http://t --piece-length=16384"))
            .unwrap();
        assert_eq!(m["tracker_url"].clone().into_string().unwrap(), "http://t");
        assert!(!m["private"].as_bool().unwrap());
        for (bad, want) in [
            ("", "missing <path>"),
            ("a b c", "unexpected argument"),
            ("a --nope", "unknown option --nope"),
            ("a --piece-length", "needs a value"),
            ("a --piece-length 1X", "unknown unit"),
            ("a --private=yes", "takes no value"),
        ] {
            let err = spec.parse_args(&argv(bad)).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }

    #[test]
    fn a_repeated_flag_collects_its_values() {
        let src = "//! Get.\n//!\n//! usage: b-get <t> [--only <glob>]... [--seq]\n";
        let spec = CommandSpec::parse("b-get", src).unwrap();
        let argv = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let only = |m: &Map| -> Vec<String> {
            m["only"]
                .clone()
                .into_array()
                .unwrap()
                .into_iter()
                .map(|v| v.into_string().unwrap())
                .collect()
        };
        assert!(only(&spec.parse_args(&argv("x")).unwrap()).is_empty());
        let m = spec.parse_args(&argv("x --only a --only=b,c")).unwrap();
        assert_eq!(only(&m), ["a", "b,c"]);
        let bad = "//! Get.\n//!\n//! usage: b-get [--seq]...\n";
        let e = CommandSpec::parse("b-get", bad).unwrap_err();
        assert!(e.contains("repeated only with a value"), "{e}");
    }

    #[test]
    fn repeated_and_bad_declarations() {
        let spec =
            CommandSpec::parse("b-x", "//! X\n//! usage: b-x <files>... [--n <n>]\n").unwrap();
        let m = spec
            .parse_args(&["a".into(), "b".into(), "--n".into(), "-3".into()])
            .unwrap();
        assert_eq!(m["files"].clone().into_array().unwrap().len(), 2);
        assert_eq!(m["n"].as_int().unwrap(), -3);
        assert!(CommandSpec::parse("b-x", "//! usage: b-y <a>\n").is_err());
        assert!(CommandSpec::parse("b-x", "//! usage: b-x <a>... <b>\n").is_err());
        assert!(CommandSpec::parse("b-x", "//! usage: b-x <--bad>\n").is_err());
        let none = CommandSpec::parse("b-x", "//! Just text\nprint(1);").unwrap();
        assert_eq!(none.usage, "b-x");
        assert!(none.parse_args(&["extra".into()]).is_err());
    }
}
