//! Building tracker replies: bencoded bodies (`text/plain`, HTTP 200, failures included, as BitTorrent
//! clients expect) written straight into one buffer, and the JSON and HTML responses of the other pages.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use bytes::Bytes;

/// Appends bencode to a byte buffer; the caller writes dictionary keys in sorted order.
pub(crate) struct Bencode {
    pub buf: Vec<u8>,
}

impl Bencode {
    pub fn with_capacity(n: usize) -> Self {
        Bencode {
            buf: Vec::with_capacity(n),
        }
    }

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

    pub fn int(&mut self, v: u64) -> &mut Self {
        self.buf.push(b'i');
        self.decimal(v);
        self.buf.push(b'e');
        self
    }

    /// The length prefix of a byte string whose `len` bytes the caller appends next.
    pub fn bytes_header(&mut self, len: usize) -> &mut Self {
        self.decimal(len as u64);
        self.buf.push(b':');
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.bytes_header(b.len());
        self.buf.extend_from_slice(b);
        self
    }

    pub fn key_int(&mut self, key: &str, v: u64) -> &mut Self {
        self.bytes(key.as_bytes()).int(v)
    }
}

fn with_type(body: impl Into<Body>, content_type: &'static str) -> Response<Body> {
    let mut resp = Response::new(body.into());
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A bencoded body for a BitTorrent client.
pub(crate) fn bencoded(body: Vec<u8>) -> Response<Body> {
    with_type(Bytes::from(body), "text/plain")
}

/// `d14:failure reason<len>:<reason>e`, with HTTP 200: clients show the reason to their user.
pub(crate) fn failure(reason: &str) -> Response<Body> {
    let mut b = Bencode::with_capacity(reason.len() + 24);
    b.begin_dict()
        .bytes(b"failure reason")
        .bytes(reason.as_bytes())
        .end();
    bencoded(b.buf)
}

pub(crate) fn json(body: Vec<u8>) -> Response<Body> {
    with_type(Bytes::from(body), "application/json")
}

pub(crate) fn html(body: String) -> Response<Body> {
    with_type(body, "text/html; charset=utf-8")
}

pub(crate) fn not_found() -> Response<Body> {
    let mut resp = with_type("not found\n", "text/plain");
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_canonical_bencode() {
        let mut b = Bencode::with_capacity(0);
        b.begin_dict()
            .key_int("a", 0)
            .key_int("b", u64::MAX)
            .bytes(b"c")
            .begin_list()
            .bytes(b"")
            .end()
            .end();
        assert_eq!(b.buf, b"d1:ai0e1:bi18446744073709551615e1:cl0:ee");
        let mut b = Bencode::with_capacity(0);
        b.begin_dict().key_int("x", 42).end();
        crate::bencode::validate(&b.buf, true).unwrap();
    }
}
