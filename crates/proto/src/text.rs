//! Text that came from the network (a tracker's reason, a peer's client name) made fit to show: lossy
//! UTF-8, control characters (escape sequences that would act on a terminal) replaced by U+FFFD, and
//! cut to a bounded length.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_replaced_and_long_text_is_cut() {
        assert_eq!(shown(b"ok", 10), "ok");
        assert_eq!(shown(b"a\x1b[2Jb\n", 10), "a\u{FFFD}[2Jb\u{FFFD}");
        assert_eq!(shown(b"abcdef", 3), "abc…");
        assert_eq!(shown(&[0xff, b'x'], 10), "\u{FFFD}x");
    }
}
