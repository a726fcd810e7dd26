//! Text that came from the network (a tracker's reason, a peer's client name) made fit to show: lossy
//! UTF-8, control characters (escape sequences that would act on a terminal) replaced by U+FFFD, and
//! cut to a bounded length; and names anyone may choose (a file dropped in the watch folder) shown
//! with their control characters escaped.

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

#[cfg(test)]
mod tests {
    use super::*;

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
