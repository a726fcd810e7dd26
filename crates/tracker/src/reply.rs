//! Building tracker replies: bencoded bodies (`text/plain`, HTTP 200, failures included, as BitTorrent
//! clients expect) written straight into one buffer by [`btorrent_proto::bencode::Writer`], and the JSON and HTML responses of the other pages.

use axum::body::Body;
use axum::http::{header, HeaderValue, Response, StatusCode};
use bytes::Bytes;

use btorrent_proto::bencode::Writer;

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
    let mut b = Writer::with_capacity(reason.len() + 24);
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
