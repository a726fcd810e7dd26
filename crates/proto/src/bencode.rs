//! Bencode at the byte level: a strict validator that reports where each value of a dictionary lies in
//! the input, typed views of raw values that copy nothing, and the one writer for canonical output.
//!
//! Checks: every length fits in the input (nothing is allocated from a claimed length), nesting is
//! bounded by [`MAX_DEPTH`], integers are canonical and fit in an i64, keys are sorted with
//! `strict_keys`, and [`dict_entries`] refuses a key given twice. Validation is one linear pass.
//! The spans are what make the info-hash right: it is the SHA-1 of the `info` value exactly as it
//! appears in the file, never of a re-encoded struct. serde_bencode, where it is used, is only handed
//! bytes this module has already checked.

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
    #[error("dictionary key at byte {0} appears twice")]
    DuplicateKey(usize),
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
    #[error("expected a dictionary")]
    NotADict,
}

impl BencodeError {
    /// The same error with its byte offset moved by `by`: for a value checked apart from the buffer it
    /// was found in, so messages give offsets in the whole file.
    pub fn shifted(self, by: usize) -> Self {
        use BencodeError::*;
        match self {
            Eof(p) => Eof(p + by),
            Unexpected { byte, at } => Unexpected { byte, at: at + by },
            BadInt(p) => BadInt(p + by),
            LengthPastEnd(p) => LengthPastEnd(p + by),
            KeyOrder(p) => KeyOrder(p + by),
            DuplicateKey(p) => DuplicateKey(p + by),
            other @ (TooDeep | Trailing(_) | NotADict) => other,
        }
    }
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

/// Validates `buf` as one dictionary and returns its entries with the span of each raw value. Keys may
/// be out of order, but a key that appears twice is an error: which of the two values counts would be
/// anybody's guess.
pub fn dict_entries(buf: &[u8]) -> Result<Vec<DictEntry<'_>>, BencodeError> {
    let (entries, end) = dict_entries_prefix(buf)?;
    if end != buf.len() {
        return Err(BencodeError::Trailing(buf.len() - end));
    }
    Ok(entries)
}

/// Like [`dict_entries`] for the dictionary at the start of `buf`, ignoring what follows it; also returns
/// where the dictionary ends.
pub fn dict_entries_prefix(buf: &[u8]) -> Result<(Vec<DictEntry<'_>>, usize), BencodeError> {
    match buf.first() {
        None => return Err(BencodeError::Eof(0)),
        Some(b'd') => {}
        Some(_) => return Err(BencodeError::NotADict),
    }
    let mut out: Vec<DictEntry<'_>> = Vec::new();
    let mut pos = 1;
    loop {
        match buf.get(pos) {
            None => return Err(BencodeError::Eof(pos)),
            Some(b'e') => break,
            Some(_) => {}
        }
        let (key, after_key) = read_bytes(buf, pos)?;
        let end = skip_value(buf, after_key, 1, false)?;
        out.push(DictEntry {
            key,
            value: after_key..end,
        });
        pos = end;
    }
    if !out.windows(2).all(|w| w[0].key < w[1].key) {
        let mut order: Vec<usize> = (0..out.len()).collect();
        order.sort_by_key(|&i| (out[i].key, i));
        if let Some(w) = order.windows(2).find(|w| out[w[0]].key == out[w[1]].key) {
            let key = out[w[1]].key;
            let key_start = key.as_ptr() as usize - buf.as_ptr() as usize;
            let prefix = key.len().to_string().len() + 1;
            return Err(BencodeError::DuplicateKey(key_start - prefix));
        }
    }
    Ok((out, pos + 1))
}

/// The integer a well-formed value holds, if it is one.
pub fn as_int(raw: &[u8]) -> Option<i64> {
    (raw.first() == Some(&b'i'))
        .then(|| read_int(raw, 0).ok().map(|(v, _)| v))
        .flatten()
}

/// The bytes a well-formed value holds, if it is a byte string.
pub fn as_bytes(raw: &[u8]) -> Option<&[u8]> {
    raw.first()
        .is_some_and(u8::is_ascii_digit)
        .then(|| read_bytes(raw, 0).ok().map(|(b, _)| b))
        .flatten()
}

/// The raw items of a well-formed list value, if it is a list.
pub fn list_items(raw: &[u8]) -> Option<ListItems<'_>> {
    (raw.first() == Some(&b'l')).then_some(ListItems { raw, pos: 1 })
}

/// Iterator over the raw items of a list (see [`list_items`]); an item that is not well-formed ends the
/// iteration with its error.
#[derive(Clone)]
pub struct ListItems<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ListItems<'a> {
    type Item = Result<&'a [u8], BencodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.raw.get(self.pos) {
            None | Some(b'e') => None,
            Some(_) => match skip_value(self.raw, self.pos, 1, false) {
                Ok(end) => {
                    let item = &self.raw[self.pos..end];
                    self.pos = end;
                    Some(Ok(item))
                }
                Err(e) => {
                    self.pos = self.raw.len();
                    Some(Err(e))
                }
            },
        }
    }
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
    // Scan only the sign and digits: the cost is the integer's length, never the rest of the buffer.
    let end = buf[start..]
        .iter()
        .position(|&b| !(b.is_ascii_digit() || b == b'-'))
        .map(|i| start + i)
        .ok_or(BencodeError::Eof(buf.len()))?;
    if buf[end] != b'e' {
        return Err(BencodeError::BadInt(pos));
    }
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
    // Accumulated on the negative side, which reaches i64::MIN.
    let v = mag
        .iter()
        .try_fold(0i64, |acc, &d| {
            acc.checked_mul(10)?.checked_sub(i64::from(d - b'0'))
        })
        .and_then(|v| if neg { Some(v) } else { v.checked_neg() })
        .ok_or(BencodeError::BadInt(pos))?;
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
    let len = rest[..ndigits]
        .iter()
        .try_fold(0usize, |acc, &d| {
            acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
        })
        .ok_or(BencodeError::BadInt(pos))?;
    let start = pos + ndigits + 1;
    let end = start
        .checked_add(len)
        .filter(|&e| e <= buf.len())
        .ok_or(BencodeError::LengthPastEnd(pos))?;
    Ok((&buf[start..end], end))
}

/// Writes canonical bencode into one buffer; callers add dictionary entries in sorted key order.
///
/// Integers and length prefixes are formatted on the stack, so a value costs nothing beyond the growth
/// of `buf`: the tracker writes every announce reply with this, and torrents, edits and extension
/// handshakes are written with it too.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// A byte string.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.bytes_header(b.len());
        self.buf.extend_from_slice(b);
        self
    }

    /// The length prefix of a byte string whose `len` bytes the caller appends to `buf` next (compact
    /// peers are written in place this way).
    pub fn bytes_header(&mut self, len: usize) -> &mut Self {
        self.decimal(len as u64);
        self.buf.push(b':');
        self
    }

    /// An integer of any primitive type: every `i64` and every `u64` value can be written.
    pub fn int(&mut self, v: impl Into<Int>) -> &mut Self {
        let v = v.into();
        self.buf.push(b'i');
        if v.negative {
            self.buf.push(b'-');
        }
        self.decimal(v.magnitude);
        self.buf.push(b'e');
        self
    }

    /// A dictionary key followed by an integer value.
    pub fn key_int(&mut self, key: &[u8], v: impl Into<Int>) -> &mut Self {
        self.bytes(key).int(v)
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

    /// `v` in decimal, without a heap allocation (`u64::MAX` has 20 digits).
    fn decimal(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&digits[i..]);
    }
}

/// An integer as [`Writer::int`] takes it, whatever its Rust type: a sign and a magnitude, so every
/// `i64` and every `u64` fits. Zero is never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int {
    negative: bool,
    magnitude: u64,
}

macro_rules! int_from_unsigned {
    ($($t:ty),*) => {$(
        impl From<$t> for Int {
            fn from(v: $t) -> Int {
                // Lossless: no unsigned primitive but u128 is wider than 64 bits.
                Int { negative: false, magnitude: v as u64 }
            }
        }
    )*};
}

macro_rules! int_from_signed {
    ($($t:ty),*) => {$(
        impl From<$t> for Int {
            fn from(v: $t) -> Int {
                let v = v as i64;
                Int { negative: v < 0, magnitude: v.unsigned_abs() }
            }
        }
    )*};
}

int_from_unsigned!(u8, u16, u32, u64, usize);
int_from_signed!(i8, i16, i32, i64, isize);

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
    fn integers_cover_the_whole_i64_range() {
        assert_eq!(read_int(b"i9223372036854775807e", 0), Ok((i64::MAX, 21)));
        assert_eq!(read_int(b"i-9223372036854775808e", 0), Ok((i64::MIN, 22)));
        assert_eq!(
            read_int(b"i9223372036854775808e", 0),
            Err(BencodeError::BadInt(0))
        );
        assert_eq!(
            read_int(b"i-9223372036854775809e", 0),
            Err(BencodeError::BadInt(0))
        );
        assert_eq!(read_int(b"xi1e", 1), Ok((1, 4)));
        assert_eq!(
            read_bytes(b"18446744073709551615:", 0),
            Err(BencodeError::BadInt(0))
        );
        assert_eq!(
            read_bytes(b"9999999999999999999:", 0),
            Err(BencodeError::LengthPastEnd(0))
        );
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
    fn dict_entries_refuse_repeated_keys_in_any_order() {
        assert_eq!(
            dict_entries(b"d1:ai1e1:bi2e1:ai3ee"),
            Err(BencodeError::DuplicateKey(13))
        );
        assert!(
            dict_entries(b"d1:bi2e1:ai1ee").is_ok(),
            "unsorted is tolerated"
        );
        assert_eq!(dict_entries(b"le"), Err(BencodeError::NotADict));
    }

    #[test]
    fn typed_views_of_raw_values() {
        assert_eq!(as_int(b"i-7e"), Some(-7));
        assert_eq!(as_int(b"1:a"), None);
        assert_eq!(as_bytes(b"3:abc"), Some(&b"abc"[..]));
        assert_eq!(as_bytes(b"i3e"), None);
        assert_eq!(as_bytes(b""), None);
        let items: Vec<_> = list_items(b"li1e2:abld1:ai2eeee")
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(items, [&b"i1e"[..], b"2:ab", b"ld1:ai2eee"]);
        assert!(list_items(b"de").is_none());
        let broken: Vec<_> = list_items(b"l5:abe").unwrap().collect();
        assert_eq!(broken, [Err(BencodeError::LengthPastEnd(1))]);
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

    #[test]
    fn writer_takes_every_i64_and_u64() {
        let mut w = Writer::with_capacity(0);
        w.begin_dict()
            .key_int(b"a", 0u64)
            .key_int(b"b", u64::MAX)
            .bytes(b"c")
            .begin_list()
            .bytes(b"")
            .end()
            .end();
        assert_eq!(w.buf, b"d1:ai0e1:bi18446744073709551615e1:cl0:ee");
        let mut w = Writer::default();
        w.begin_list()
            .int(i64::MIN)
            .int(i64::MAX)
            .int(-1i8)
            .int(0i32)
            .int(7u16)
            .end();
        let expected = format!("li{}ei{}ei-1ei0ei7ee", i64::MIN, i64::MAX);
        assert_eq!(String::from_utf8(w.buf.clone()).unwrap(), expected);
        validate(&w.buf, true).unwrap();
        w.buf.clear();
        w.bytes_header(3).raw(b"abc");
        assert_eq!(w.buf, b"3:abc");
    }
}
