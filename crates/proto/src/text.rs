//! Text that came from the network (a tracker's reason, a peer's client name) made fit to show: lossy
//! UTF-8, control characters (escape sequences that would act on a terminal) replaced by U+FFFD, and
//! cut to a bounded length; names anyone may choose (a file dropped in the watch folder) shown
//! with their control characters escaped; and the known name a mistyped one was probably meant to
//! be ("did you mean ...?").

/// `raw` as text of at most `max_chars` characters (an ellipsis marks a cut), with no control
/// characters.
pub fn shown(raw: &[u8], max_chars: usize) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// `text` with each control character written as its escape (`\n`, `\u{1b}`), the rest as it is:
/// a file name or path from anyone shown on one line that a terminal only prints (a name that
/// holds a line break would forge a log line, an escape sequence would act on the terminal),
/// while the reader can still tell which file it is.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// How many one-character edits turn `a` into `b` (Levenshtein).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Of `known`, the name `typed` is nearest to, if it is at most `max_edits` edits away (the first
/// of equally near ones).
pub fn nearest<'a>(
    typed: &str,
    known: impl IntoIterator<Item = &'a str>,
    max_edits: usize,
) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (edit_distance(typed, k), k))
        .filter(|(d, _)| *d <= max_edits)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_known_name_within_the_edits_allowed() {
        assert_eq!(edit_distance("listen_prot", "listen_port"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("été", "ete"), 2);
        let known = ["listen_port", "listen_ip", "dht_port"];
        assert_eq!(nearest("listen_prot", known, 3), Some("listen_port"));
        assert_eq!(nearest("listenip", known, 3), Some("listen_ip"));
        assert_eq!(nearest("seed_queue", known, 3), None);
    }

    #[test]
    fn controls_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("photos/été 2026"), "photos/été 2026");
        assert_eq!(
            escape_controls("bad\nname\u{1b}[2J\t"),
            "bad\\nname\\u{1b}[2J\\t"
        );
    }

    #[test]
    fn controls_are_replaced_and_long_text_is_cut() {
        assert_eq!(shown(b"ok", 10), "ok");
        assert_eq!(shown(b"a\x1b[2Jb\n", 10), "a\u{FFFD}[2Jb\u{FFFD}");
        assert_eq!(shown(b"abcdef", 3), "abc…");
        assert_eq!(shown(&[0xff, b'x'], 10), "\u{FFFD}x");
    }
}
