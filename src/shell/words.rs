//! Splitting a command line into words the way a POSIX shell does for plain words: whitespace
//! separates, `'single'` and `"double"` quotes keep spaces, and a backslash escapes the next character
//! (inside double quotes only before `"` and `\`), and an unquoted `~` or `~user` that starts a word,
//! alone or before a `/`, becomes that home folder. No variables, globs or pipes.

use std::path::PathBuf;

/// One word and where it starts in the line (byte offset), for completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub start: usize,
    /// The unquoted tilde prefix it starts with (`~`, `~user`), which [`split`] expands.
    pub tilde: Option<String>,
}

/// Splits `line`, expanding a leading `~` as a POSIX shell does; an unclosed quote is an error. A
/// trailing lone backslash is kept literally.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    split_with(line, &home_of)
}

/// [`split`] with `home` saying where a user's home is (`""` for the current user).
fn split_with(line: &str, home: &dyn Fn(&str) -> Option<PathBuf>) -> Result<Vec<String>, String> {
    let (words, open) = split_partial(line);
    if let Some(q) = open {
        return Err(format!("unclosed {q} quote"));
    }
    Ok(words
        .into_iter()
        .map(
            |w| match w.tilde.as_deref().and_then(|t| Some((t, home(&t[1..])?))) {
                Some((prefix, dir)) => format!("{}{}", dir.display(), &w.text[prefix.len()..]),
                None => w.text,
            },
        )
        .collect())
}

/// The home folder of `user` (`""`: the current user, `$HOME` first), from the password database.
fn home_of(user: &str) -> Option<PathBuf> {
    if user.is_empty() {
        if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            return Some(PathBuf::from(h));
        }
    }
    let name = std::ffi::CString::new(user).ok()?;
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: every pointer is to a live local of the right size; the strings read from `pw` point into
    // `buf`, which outlives their use.
    let rc = unsafe {
        if user.is_empty() {
            libc::getpwuid_r(
                libc::getuid(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        } else {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pw,
                buf.as_mut_ptr(),
                buf.len(),
                &mut found,
            )
        }
    };
    if rc != 0 || found.is_null() || pw.pw_dir.is_null() {
        return None;
    }
    // SAFETY: `pw_dir` is a NUL-terminated string in `buf` (checked non-null above).
    let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
    use std::os::unix::ffi::OsStrExt as _;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes())))
}

/// The tilde prefix `raw` (a word as typed) starts with: `~` and the login name after it, up to the
/// first `/` or the end, when none of it is quoted or escaped.
fn tilde_prefix(raw: &str) -> Option<String> {
    let prefix = raw.split('/').next()?;
    let name = prefix.strip_prefix('~')?;
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        .then(|| prefix.to_string())
}

/// Splits `line` as far as it goes, for completion while typing: returns the words and the quote still
/// open at the end, if any (the last word then holds the text after it).
pub fn split_partial(line: &str) -> (Vec<Word>, Option<char>) {
    let mut words = Vec::new();
    let mut cur: Option<Word> = None;
    let mut quote: Option<char> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == '\\' => match chars.peek() {
                Some(&(_, n)) if n == '"' || n == '\\' => {
                    chars.next();
                    word(&mut cur, i).text.push(n);
                }
                _ => word(&mut cur, i).text.push(c),
            },
            Some(_) => word(&mut cur, i).text.push(c),
            None if c.is_whitespace() => {
                if let Some(w) = cur.take() {
                    words.push(finish(w, &line[..i]));
                }
            }
            None if c == '\'' || c == '"' => {
                word(&mut cur, i);
                quote = Some(c);
            }
            None if c == '\\' => {
                let w = word(&mut cur, i);
                match chars.next() {
                    Some((_, n)) => w.text.push(n),
                    None => w.text.push('\\'),
                }
            }
            None => word(&mut cur, i).text.push(c),
        }
    }
    if let Some(w) = cur {
        words.push(finish(w, line));
    }
    (words, quote)
}

fn word(cur: &mut Option<Word>, start: usize) -> &mut Word {
    cur.get_or_insert_with(|| Word {
        text: String::new(),
        start,
        tilde: None,
    })
}

/// A word that ends where `upto` ends: notes its tilde prefix.
fn finish(mut w: Word, upto: &str) -> Word {
    w.tilde = tilde_prefix(&upto[w.start..]);
    w
}

/// Quotes `s` for the command line if it needs it.
pub fn quote(s: &str) -> String {
    let plain = |c: char| c.is_alphanumeric() || "-_./:@%+=,~".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return s.to_string();
    }
    if !s.contains('\'') {
        return format!("'{s}'");
    }
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell() {
        assert_eq!(
            split(r#"b-create "my files" x\ y 'a "b"' "q\"\\" -o out"#).unwrap(),
            ["b-create", "my files", "x y", "a \"b\"", "q\"\\", "-o", "out"]
        );
        assert_eq!(split("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split("a ''").unwrap(), ["a", ""]);
        assert!(split("b-info 'x").unwrap_err().contains("unclosed ' quote"));
        let (w, open) = split_partial("b-info \"my fi");
        assert_eq!(open, Some('"'));
        assert_eq!(w[1].text, "my fi");
        assert_eq!(w[1].start, 7);
        for s in ["plain", "with space", "it's", "a\"b", ""] {
            assert_eq!(split(&quote(s)).unwrap(), [s], "{s}");
        }
    }

    #[test]
    fn a_leading_unquoted_tilde_is_a_home_folder() {
        let home = |user: &str| match user {
            "" => Some(PathBuf::from("/home/me")),
            "ann" => Some(PathBuf::from("/home/ann")),
            _ => None,
        };
        let split = |line: &str| split_with(line, &home).unwrap();
        assert_eq!(
            split("b-create ~/photos ~ ~ann/x ~ann"),
            [
                "b-create",
                "/home/me/photos",
                "/home/me",
                "/home/ann/x",
                "/home/ann"
            ]
        );
        // Quoted, escaped, not at the start, or a user nobody knows: as typed.
        assert_eq!(
            split(r#"'~/a' "~" \~/b ~'/c' a~/d x=~/e ~nobody/f ~/"g h""#),
            [
                "~/a",
                "~",
                "~/b",
                "~/c",
                "a~/d",
                "x=~/e",
                "~nobody/f",
                "/home/me/g h"
            ]
        );
        assert_eq!(
            split_partial("b-info ~/pho").0[1].text,
            "~/pho",
            "completion sees it as typed"
        );
        // The real lookup finds the current user's home.
        assert!(home_of("").is_some());
    }
}
