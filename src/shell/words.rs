//! Splitting a command line into words the way a POSIX shell does for plain words: whitespace
//! separates, `'single'` and `"double"` quotes keep spaces, and a backslash escapes the next character
//! (inside double quotes only before `"` and `\`). No variables, globs or pipes.

/// One word and where it starts in the line (byte offset), for completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub start: usize,
}

/// Splits `line`; an unclosed quote is an error. A trailing lone backslash is kept literally.
pub fn split(line: &str) -> Result<Vec<String>, String> {
    let (words, open) = split_partial(line);
    match open {
        Some(q) => Err(format!("unclosed {q} quote")),
        None => Ok(words.into_iter().map(|w| w.text).collect()),
    }
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
                    words.push(w);
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
        words.push(w);
    }
    (words, quote)
}

fn word(cur: &mut Option<Word>, start: usize) -> &mut Word {
    cur.get_or_insert_with(|| Word {
        text: String::new(),
        start,
    })
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
}
