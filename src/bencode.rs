//! Bencode at the byte level: a strict, allocation-free validator that also reports where each value of a
//! dictionary lies in the input, plus a tiny writer for canonical output.
//!
//! serde_bencode does the typed decoding, but it is only ever handed bytes this module has already
//! checked: every length fits in the input, nesting is bounded, integers are canonical, dictionary keys
//! are sorted byte strings. The spans are what make the info-hash right: it is the SHA-1 of the `info`
//! value exactly as it appears in the file, never of a re-encoded struct.

use std::ops::Range;

/// Deepest nesting of lists and dictionaries accepted; real torrents use about four.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BencodeError {
    #[error("unexpected end of data at byte {0}")]
    Eof(usize),
    #[error("unexpected byte {byte:#04x} at byte {at}")]
    Unexpected { byte: u8, at: usize },
    #[error("invalid integer at byte {0}")]
    BadInt(usize),
    #[error("string length at byte {0} runs past the end of the data")]
    LengthPastEnd(usize),
    #[error("nesting deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("dictionary key at byte {0} is out of order or repeated")]
    KeyOrder(usize),
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
    #[error("expected a dictionary")]
    NotADict,
}

/// One entry of a dictionary: the key bytes and the span of its raw value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DictEntry<'a> {
    pub key: &'a [u8],
    pub value: Range<usize>,
}

/// Checks that `buf` is exactly one well-formed bencode value. With `strict_keys`, dictionary keys must
/// be strictly increasing (canonical); without it, order is not checked (some creators got this wrong and
/// their torrents still circulate).
pub fn validate(buf: &[u8], strict_keys: bool) -> Result<(), BencodeError> {
    let end = skip_value(buf, 0, 0, strict_keys)?;
    if end != buf.len() {
        return Err(BencodeError::Trailing(buf.len() - end));
    }
    Ok(())
}

/// Validates `buf` as one dictionary and returns its entries with the span of each raw value.
pub fn dict_entries(buf: &[u8]) -> Result<Vec<DictEntry<'_>>, BencodeError> {
    validate(buf, false)?;
    if buf.first() != Some(&b'd') {
        return Err(BencodeError::NotADict);
    }
    let mut out = Vec::new();
    let mut pos = 1;
    while buf[pos] != b'e' {
        let (key, after_key) = read_bytes(buf, pos)?;
        let end = skip_value(buf, after_key, 1, false)?;
        out.push(DictEntry {
            key,
            value: after_key..end,
        });
        pos = end;
    }
    Ok(out)
}

/// Returns the end offset of the value starting at `pos`.
fn skip_value(buf: &[u8], pos: usize, depth: usize, strict: bool) -> Result<usize, BencodeError> {
    let &c = buf.get(pos).ok_or(BencodeError::Eof(pos))?;
    match c {
        b'i' => read_int(buf, pos).map(|(_, end)| end),
        b'0'..=b'9' => read_bytes(buf, pos).map(|(_, end)| end),
        b'l' | b'd' => {
            if depth >= MAX_DEPTH {
                return Err(BencodeError::TooDeep);
            }
            let mut p = pos + 1;
            let mut last_key: Option<&[u8]> = None;
            loop {
                match buf.get(p) {
                    None => return Err(BencodeError::Eof(p)),
                    Some(b'e') => return Ok(p + 1),
                    Some(_) if c == b'l' => p = skip_value(buf, p, depth + 1, strict)?,
                    Some(_) => {
                        let (key, after_key) = read_bytes(buf, p)?;
                        if strict && last_key.is_some_and(|k| k >= key) {
                            return Err(BencodeError::KeyOrder(p));
                        }
                        last_key = Some(key);
                        p = skip_value(buf, after_key, depth + 1, strict)?;
                    }
                }
            }
        }
        byte => Err(BencodeError::Unexpected { byte, at: pos }),
    }
}

/// Reads `i<digits>e` at `pos`; rejects leading zeros, `-0`, empty digits and overflow.
pub fn read_int(buf: &[u8], pos: usize) -> Result<(i64, usize), BencodeError> {
    if buf.get(pos) != Some(&b'i') {
        return Err(BencodeError::BadInt(pos));
    }
    let start = pos + 1;
    let end = buf[start..]
        .iter()
        .position(|&b| b == b'e')
        .map(|i| start + i)
        .ok_or(BencodeError::Eof(buf.len()))?;
    let digits = &buf[start..end];
    let (neg, mag) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    let canonical = !mag.is_empty()
        && mag.iter().all(u8::is_ascii_digit)
        && (mag == b"0" || mag[0] != b'0')
        && !(neg && mag == b"0");
    if !canonical {
        return Err(BencodeError::BadInt(pos));
    }
    let text = std::str::from_utf8(digits).map_err(|_| BencodeError::BadInt(pos))?;
    let v: i64 = text.parse().map_err(|_| BencodeError::BadInt(pos))?;
    Ok((v, end + 1))
}

/// Reads `<len>:<bytes>` at `pos`; the length must fit in what is left of `buf`.
pub fn read_bytes(buf: &[u8], pos: usize) -> Result<(&[u8], usize), BencodeError> {
    let rest = buf.get(pos..).unwrap_or_default();
    let ndigits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    match rest.get(ndigits) {
        None => return Err(BencodeError::Eof(buf.len())),
        Some(b':') if ndigits > 0 => {}
        Some(&byte) => {
            return Err(BencodeError::Unexpected {
                byte,
                at: pos + ndigits,
            })
        }
    }
    if ndigits > 19 || (ndigits > 1 && rest[0] == b'0') {
        return Err(BencodeError::BadInt(pos));
    }
    let len: usize = std::str::from_utf8(&rest[..ndigits])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(BencodeError::BadInt(pos))?;
    let start = pos + ndigits + 1;
    let end = start
        .checked_add(len)
        .filter(|&e| e <= buf.len())
        .ok_or(BencodeError::LengthPastEnd(pos))?;
    Ok((&buf[start..end], end))
}

/// Writes canonical bencode: callers add dictionary entries in sorted key order.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b.len().to_string().as_bytes());
        self.buf.push(b':');
        self.buf.extend_from_slice(b);
        self
    }

    pub fn int(&mut self, v: i64) -> &mut Self {
        self.buf.push(b'i');
        self.buf.extend_from_slice(v.to_string().as_bytes());
        self.buf.push(b'e');
        self
    }

    /// Appends bytes that are already bencoded (a raw span kept from a parsed file).
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    pub fn begin_dict(&mut self) -> &mut Self {
        self.buf.push(b'd');
        self
    }

    pub fn begin_list(&mut self) -> &mut Self {
        self.buf.push(b'l');
        self
    }

    pub fn end(&mut self) -> &mut Self {
        self.buf.push(b'e');
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_values() {
        for ok in [
            &b"i0e"[..],
            b"i-42e",
            b"0:",
            b"4:spam",
            b"le",
            b"de",
            b"d3:cow3:moo4:spaml1:a1:bee",
        ] {
            validate(ok, true).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(ok)));
        }
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            &b""[..],
            b"i-0e",
            b"i03e",
            b"ie",
            b"i12",
            b"5:abc",
            b"99999999999999999999:x",
            b"l",
            b"d3:cow",
            b"x",
            b"i1ei2e",
            b"d1:b0:1:a0:e",
            b"d1:a0:1:a0:e",
            b"-1:",
            b"01:a",
        ] {
            assert!(
                validate(bad, true).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn bounds_nesting() {
        let deep = [vec![b'l'; 1000], vec![b'e'; 1000]].concat();
        assert_eq!(validate(&deep, true), Err(BencodeError::TooDeep));
    }

    #[test]
    fn dict_entries_give_raw_spans() {
        let buf = b"d8:announce3:url4:infod4:name1:xee";
        let entries = dict_entries(buf).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].key, b"info");
        assert_eq!(&buf[entries[1].value.clone()], b"d4:name1:xe");
    }

    #[test]
    fn writer_produces_bencode() {
        let mut w = Writer::default();
        w.begin_dict()
            .bytes(b"a")
            .int(-3)
            .bytes(b"b")
            .begin_list()
            .bytes(b"x")
            .end()
            .end();
        assert_eq!(w.buf, b"d1:ai-3e1:bl1:xee");
        validate(&w.buf, true).unwrap();
    }
}
