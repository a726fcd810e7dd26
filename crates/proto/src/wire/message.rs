//! Peer wire messages (BEP 3, BEP 6, BEP 10, and BEP 52's hash messages) and their codec.
//!
//! The decoder is strict, because every byte comes from a stranger: it checks the length prefix against
//! [`Geometry::max_message_len`] before reserving anything, checks each message's fixed size, checks every
//! index, offset and length against the torrent's geometry, and refuses fast-extension messages unless
//! both sides offered the extension. Any violation is a [`WireError`]: the connection ends, the process
//! does not. Unknown message ids are skipped, as the protocol asks.
//!
//! Buffers: a `piece` payload is split off the read buffer without copying; once the caller has copied it
//! into the piece being assembled and dropped it, the read buffer reclaims the space on its next reserve.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::bitfield::{Bitfield, BitfieldError};
use super::BLOCK_SIZE;
use crate::metainfo::v2::{HashRange, MAX_HASHES_ASKED};

/// Longest extension (BEP 10) message accepted; we offer no extension that needs more.
pub const MAX_EXTENDED_LEN: usize = 64 * 1024;

/// A block of a piece: what `request`, `cancel` and `reject` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRef {
    pub index: u32,
    pub begin: u32,
    pub length: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Bitfield),
    Request(BlockRef),
    Piece {
        index: u32,
        begin: u32,
        data: Bytes,
    },
    Cancel(BlockRef),
    Port(u16),
    Suggest(u32),
    HaveAll,
    HaveNone,
    Reject(BlockRef),
    AllowedFast(u32),
    Extended {
        id: u8,
        payload: Bytes,
    },
    /// BEP 52: hashes of a v2 torrent's file tree asked for, given (with their uncles, 32 bytes each)
    /// or refused.
    HashRequest(HashRange),
    Hashes {
        range: HashRange,
        hashes: Bytes,
    },
    HashReject(HashRange),
}

pub mod id {
    pub const CHOKE: u8 = 0;
    pub const UNCHOKE: u8 = 1;
    pub const INTERESTED: u8 = 2;
    pub const NOT_INTERESTED: u8 = 3;
    pub const HAVE: u8 = 4;
    pub const BITFIELD: u8 = 5;
    pub const REQUEST: u8 = 6;
    pub const PIECE: u8 = 7;
    pub const CANCEL: u8 = 8;
    pub const PORT: u8 = 9;
    pub const SUGGEST: u8 = 0x0d;
    pub const HAVE_ALL: u8 = 0x0e;
    pub const HAVE_NONE: u8 = 0x0f;
    pub const REJECT: u8 = 0x10;
    pub const ALLOWED_FAST: u8 = 0x11;
    pub const EXTENDED: u8 = 20;
    pub const HASH_REQUEST: u8 = 21;
    pub const HASHES: u8 = 22;
    pub const HASH_REJECT: u8 = 23;
}

/// Body of a hash request or reject: the root, then base, index, length and proof layers.
const HASH_RANGE_LEN: usize = 32 + 16;

/// The shape of a torrent, which is all the decoder needs to judge a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub piece_count: u32,
    pub piece_length: u64,
    pub total_length: u64,
}

impl Geometry {
    pub fn new(piece_count: usize, piece_length: u64, total_length: u64) -> Self {
        Geometry {
            piece_count: piece_count as u32,
            piece_length,
            total_length,
        }
    }

    pub fn from_info(info: &crate::metainfo::Info) -> Self {
        Self::new(info.piece_count(), info.piece_length, info.total_length)
    }

    pub fn piece_len(&self, index: u32) -> u64 {
        let start = index as u64 * self.piece_length;
        self.total_length
            .saturating_sub(start)
            .min(self.piece_length)
    }

    /// Blocks in piece `index`.
    pub fn blocks_in(&self, index: u32) -> u32 {
        self.piece_len(index).div_ceil(BLOCK_SIZE as u64) as u32
    }

    /// Length of block `block` of piece `index`.
    pub fn block_len(&self, index: u32, block: u32) -> u32 {
        let plen = self.piece_len(index);
        (plen - block as u64 * BLOCK_SIZE as u64).min(BLOCK_SIZE as u64) as u32
    }

    pub fn bitfield_bytes(&self) -> usize {
        (self.piece_count as usize).div_ceil(8)
    }

    /// Largest message body (after the length prefix) this torrent can need.
    pub fn max_message_len(&self) -> usize {
        (BLOCK_SIZE as usize + 9)
            .max(self.bitfield_bytes() + 1)
            .max(MAX_EXTENDED_LEN + 2)
    }

    /// Whether a request of `b` lies inside its piece and is at most one block.
    pub fn check_block(&self, b: &BlockRef) -> Result<(), WireError> {
        if b.index >= self.piece_count {
            return Err(WireError::BadIndex(b.index));
        }
        if b.length == 0 || b.length > BLOCK_SIZE {
            return Err(WireError::BadLength(b.length));
        }
        if b.begin as u64 + b.length as u64 > self.piece_len(b.index) {
            return Err(WireError::OutsidePiece(*b));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("message of {0} bytes is longer than allowed")]
    TooLong(usize),
    #[error("message id {id} with a body of {len} bytes has the wrong size")]
    BadSize { id: u8, len: usize },
    #[error("piece index {0} is out of range")]
    BadIndex(u32),
    #[error("block length {0} is not 1..=16384")]
    BadLength(u32),
    #[error("block {0:?} lies outside its piece")]
    OutsidePiece(BlockRef),
    #[error("{0}")]
    Bitfield(#[from] BitfieldError),
    #[error("fast-extension message {0} without the extension")]
    FastNotNegotiated(u8),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Decoder and encoder for one connection's messages (after the handshake).
#[derive(Debug, Clone)]
pub struct PeerCodec {
    geo: Geometry,
    max_len: usize,
    /// Whether both sides offered BEP 6; fast messages are refused otherwise.
    pub fast: bool,
}

impl PeerCodec {
    pub fn new(geo: Geometry, fast: bool) -> Self {
        PeerCodec {
            max_len: geo.max_message_len(),
            geo,
            fast,
        }
    }

    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }
}

fn hash_range(b: &mut BytesMut) -> HashRange {
    let mut root = [0u8; 32];
    b.copy_to_slice(&mut root);
    HashRange {
        root,
        base: b.get_u32(),
        index: b.get_u32(),
        length: b.get_u32(),
        proof_layers: b.get_u32(),
    }
}

fn put_hash_range(dst: &mut BytesMut, r: &HashRange) {
    dst.put_slice(&r.root);
    for v in [r.base, r.index, r.length, r.proof_layers] {
        dst.put_u32(v);
    }
}

fn block_ref(b: &mut BytesMut) -> BlockRef {
    BlockRef {
        index: b.get_u32(),
        begin: b.get_u32(),
        length: b.get_u32(),
    }
}

/// Room kept free in the read buffer so each socket read can be large.
const READ_HEADROOM: usize = 64 * 1024;

impl Decoder for PeerCodec {
    type Item = Message;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Message>, WireError> {
        loop {
            if src.len() < 4 {
                src.reserve(READ_HEADROOM);
                return Ok(None);
            }
            let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
            if len > self.max_len {
                return Err(WireError::TooLong(len));
            }
            if src.len() < 4 + len {
                // Never more than max_len + the headroom: the claim was bounded above.
                src.reserve(4 + len - src.len() + READ_HEADROOM);
                return Ok(None);
            }
            src.advance(4);
            if len == 0 {
                return Ok(Some(Message::KeepAlive));
            }
            let msg_id = src[0];
            let body = len - 1;
            let fixed = |want: usize| {
                if body == want {
                    Ok(())
                } else {
                    Err(WireError::BadSize { id: msg_id, len })
                }
            };
            let fast_only = |fast: bool| {
                if fast {
                    Ok(())
                } else {
                    Err(WireError::FastNotNegotiated(msg_id))
                }
            };
            let index_ok = |i: u32| {
                if i < self.geo.piece_count {
                    Ok(i)
                } else {
                    Err(WireError::BadIndex(i))
                }
            };
            // Validate before consuming so an error leaves nothing half-read (the connection ends anyway).
            match msg_id {
                id::CHOKE | id::UNCHOKE | id::INTERESTED | id::NOT_INTERESTED => fixed(0)?,
                id::HAVE_ALL | id::HAVE_NONE => {
                    fast_only(self.fast)?;
                    fixed(0)?
                }
                id::HAVE => fixed(4)?,
                id::SUGGEST | id::ALLOWED_FAST => {
                    fast_only(self.fast)?;
                    fixed(4)?
                }
                id::REQUEST | id::CANCEL => fixed(12)?,
                id::REJECT => {
                    fast_only(self.fast)?;
                    fixed(12)?
                }
                id::PORT => fixed(2)?,
                id::PIECE if body < 8 => return Err(WireError::BadSize { id: msg_id, len }),
                id::EXTENDED if !(1..=MAX_EXTENDED_LEN).contains(&body) => {
                    return Err(WireError::BadSize { id: msg_id, len })
                }
                id::HASH_REQUEST | id::HASH_REJECT => fixed(HASH_RANGE_LEN)?,
                // The hashes asked for and their uncles (at most a tree's height of them).
                id::HASHES
                    if body < HASH_RANGE_LEN
                        || !(body - HASH_RANGE_LEN).is_multiple_of(32)
                        || (body - HASH_RANGE_LEN) / 32 > MAX_HASHES_ASKED as usize + 64 =>
                {
                    return Err(WireError::BadSize { id: msg_id, len })
                }
                _ => {}
            }
            src.advance(1);
            let msg = match msg_id {
                id::CHOKE => Message::Choke,
                id::UNCHOKE => Message::Unchoke,
                id::INTERESTED => Message::Interested,
                id::NOT_INTERESTED => Message::NotInterested,
                id::HAVE_ALL => Message::HaveAll,
                id::HAVE_NONE => Message::HaveNone,
                id::HAVE => Message::Have(index_ok(src.get_u32())?),
                id::SUGGEST => Message::Suggest(index_ok(src.get_u32())?),
                id::ALLOWED_FAST => Message::AllowedFast(index_ok(src.get_u32())?),
                id::BITFIELD => {
                    let raw = src.split_to(body);
                    Message::Bitfield(Bitfield::from_bytes(&raw, self.geo.piece_count as usize)?)
                }
                id::REQUEST | id::CANCEL | id::REJECT => {
                    let b = block_ref(src);
                    self.geo.check_block(&b)?;
                    match msg_id {
                        id::REQUEST => Message::Request(b),
                        id::CANCEL => Message::Cancel(b),
                        _ => Message::Reject(b),
                    }
                }
                id::PIECE => {
                    let index = src.get_u32();
                    let begin = src.get_u32();
                    let data = src.split_to(body - 8).freeze();
                    let b = BlockRef {
                        index,
                        begin,
                        length: data.len() as u32,
                    };
                    self.geo.check_block(&b)?;
                    Message::Piece { index, begin, data }
                }
                id::PORT => Message::Port(src.get_u16()),
                id::EXTENDED => {
                    let ext = src.get_u8();
                    Message::Extended {
                        id: ext,
                        payload: src.split_to(body - 1).freeze(),
                    }
                }
                id::HASH_REQUEST => Message::HashRequest(hash_range(src)),
                id::HASH_REJECT => Message::HashReject(hash_range(src)),
                id::HASHES => Message::Hashes {
                    range: hash_range(src),
                    hashes: src.split_to(body - HASH_RANGE_LEN).freeze(),
                },
                _ => {
                    // Unknown id: skip the body and read on.
                    src.advance(body);
                    continue;
                }
            };
            return Ok(Some(msg));
        }
    }
}

/// The 13-byte header of a `piece` message carrying `len` bytes.
pub fn piece_header(index: u32, begin: u32, len: u32) -> [u8; 13] {
    let mut h = [0u8; 13];
    h[..4].copy_from_slice(&(9 + len).to_be_bytes());
    h[4] = id::PIECE;
    h[5..9].copy_from_slice(&index.to_be_bytes());
    h[9..].copy_from_slice(&begin.to_be_bytes());
    h
}

/// Writes the 13-byte header of a `piece` message carrying `len` bytes.
pub fn put_piece_header(dst: &mut BytesMut, index: u32, begin: u32, len: u32) {
    dst.put_slice(&piece_header(index, begin, len));
}

impl Encoder<&Message> for PeerCodec {
    type Error = WireError;

    fn encode(&mut self, msg: &Message, dst: &mut BytesMut) -> Result<(), WireError> {
        encode(msg, dst);
        Ok(())
    }
}

impl Encoder<Message> for PeerCodec {
    type Error = WireError;

    fn encode(&mut self, msg: Message, dst: &mut BytesMut) -> Result<(), WireError> {
        encode(&msg, dst);
        Ok(())
    }
}

/// Appends `msg` to `dst` in wire format.
pub fn encode(msg: &Message, dst: &mut BytesMut) {
    let simple = |dst: &mut BytesMut, id: u8| {
        dst.put_u32(1);
        dst.put_u8(id);
    };
    let with_u32 = |dst: &mut BytesMut, id: u8, v: u32| {
        dst.put_u32(5);
        dst.put_u8(id);
        dst.put_u32(v);
    };
    let with_block = |dst: &mut BytesMut, id: u8, b: &BlockRef| {
        dst.put_u32(13);
        dst.put_u8(id);
        dst.put_u32(b.index);
        dst.put_u32(b.begin);
        dst.put_u32(b.length);
    };
    match msg {
        Message::KeepAlive => dst.put_u32(0),
        Message::Choke => simple(dst, id::CHOKE),
        Message::Unchoke => simple(dst, id::UNCHOKE),
        Message::Interested => simple(dst, id::INTERESTED),
        Message::NotInterested => simple(dst, id::NOT_INTERESTED),
        Message::HaveAll => simple(dst, id::HAVE_ALL),
        Message::HaveNone => simple(dst, id::HAVE_NONE),
        Message::Have(i) => with_u32(dst, id::HAVE, *i),
        Message::Suggest(i) => with_u32(dst, id::SUGGEST, *i),
        Message::AllowedFast(i) => with_u32(dst, id::ALLOWED_FAST, *i),
        Message::Bitfield(b) => {
            dst.put_u32(1 + b.as_bytes().len() as u32);
            dst.put_u8(id::BITFIELD);
            dst.put_slice(b.as_bytes());
        }
        Message::Request(b) => with_block(dst, id::REQUEST, b),
        Message::Cancel(b) => with_block(dst, id::CANCEL, b),
        Message::Reject(b) => with_block(dst, id::REJECT, b),
        Message::Piece { index, begin, data } => {
            put_piece_header(dst, *index, *begin, data.len() as u32);
            dst.put_slice(data);
        }
        Message::Port(p) => {
            dst.put_u32(3);
            dst.put_u8(id::PORT);
            dst.put_u16(*p);
        }
        Message::Extended { id: ext, payload } => {
            dst.put_u32(2 + payload.len() as u32);
            dst.put_u8(id::EXTENDED);
            dst.put_u8(*ext);
            dst.put_slice(payload);
        }
        Message::HashRequest(r) | Message::HashReject(r) => {
            dst.put_u32(1 + HASH_RANGE_LEN as u32);
            dst.put_u8(match msg {
                Message::HashRequest(_) => id::HASH_REQUEST,
                _ => id::HASH_REJECT,
            });
            put_hash_range(dst, r);
        }
        Message::Hashes { range, hashes } => {
            dst.put_u32((1 + HASH_RANGE_LEN + hashes.len()) as u32);
            dst.put_u8(id::HASHES);
            put_hash_range(dst, range);
            dst.put_slice(hashes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 3 pieces of 32 KiB, the last one 10 000 bytes.
    fn geo() -> Geometry {
        Geometry::new(3, 32768, 32768 * 2 + 10_000)
    }

    fn decode_all(bytes: &[u8], fast: bool) -> Result<Vec<Message>, WireError> {
        let mut c = PeerCodec::new(geo(), fast);
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = c.decode(&mut buf)? {
            out.push(m);
        }
        Ok(out)
    }

    fn enc(m: &Message) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode(m, &mut b);
        b.to_vec()
    }

    fn raw(id: u8, body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 1) as u32).to_be_bytes().to_vec();
        v.push(id);
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn round_trips_every_message() {
        let b = |index, begin, length| BlockRef {
            index,
            begin,
            length,
        };
        let mut bf = Bitfield::new(3);
        bf.set(1);
        let msgs = vec![
            Message::KeepAlive,
            Message::Choke,
            Message::Unchoke,
            Message::Interested,
            Message::NotInterested,
            Message::Have(2),
            Message::Bitfield(bf),
            Message::Request(b(0, 16384, 16384)),
            Message::Piece {
                index: 2,
                begin: 0,
                data: Bytes::from(vec![7u8; 10_000]),
            },
            Message::Cancel(b(1, 0, 100)),
            Message::Port(6881),
            Message::Suggest(1),
            Message::HaveAll,
            Message::HaveNone,
            Message::Reject(b(2, 0, 10_000)),
            Message::AllowedFast(0),
            Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"de"),
            },
        ];
        let mut wire = Vec::new();
        for m in &msgs {
            wire.extend(enc(m));
        }
        // Fed one byte at a time, the decoder must produce the same messages.
        let mut c = PeerCodec::new(geo(), true);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for byte in wire {
            buf.put_u8(byte);
            while let Some(m) = c.decode(&mut buf).unwrap() {
                out.push(m);
            }
        }
        assert_eq!(out, msgs);
    }

    #[test]
    fn skips_unknown_ids() {
        let mut wire = raw(99, b"whatever");
        wire.extend(enc(&Message::Have(1)));
        assert_eq!(decode_all(&wire, false).unwrap(), vec![Message::Have(1)]);
    }

    #[test]
    fn refuses_oversized_length_before_allocating() {
        let mut c = PeerCodec::new(geo(), false);
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xf0, 7][..]);
        assert!(matches!(c.decode(&mut buf), Err(WireError::TooLong(_))));
        assert!(buf.capacity() < 1 << 20);
        let mut buf = BytesMut::from(&((MAX_EXTENDED_LEN as u32 + 100).to_be_bytes())[..]);
        assert!(matches!(c.decode(&mut buf), Err(WireError::TooLong(_))));
    }

    #[test]
    fn refuses_hostile_messages() {
        let req = |index: u32, begin: u32, length: u32| {
            let mut body = Vec::new();
            body.extend(index.to_be_bytes());
            body.extend(begin.to_be_bytes());
            body.extend(length.to_be_bytes());
            body
        };
        let piece = |index: u32, begin: u32, len: usize| {
            let mut body = Vec::new();
            body.extend(index.to_be_bytes());
            body.extend(begin.to_be_bytes());
            body.extend(vec![0u8; len]);
            raw(id::PIECE, &body)
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (raw(id::REQUEST, &req(0, 0, 16385)), "block length"),
            (raw(id::REQUEST, &req(0, 0, 0)), "block length"),
            (raw(id::REQUEST, &req(3, 0, 16384)), "out of range"),
            (raw(id::REQUEST, &req(0, 16385, 16384)), "outside"),
            (raw(id::REQUEST, &req(2, 0, 10_001)), "outside"),
            (raw(id::REQUEST, &req(0, u32::MAX, 16384)), "outside"),
            (raw(id::CANCEL, &req(0, 32768, 1)), "outside"),
            (raw(id::REQUEST, &req(0, 0, 16384)[..11]), "wrong size"),
            (raw(id::HAVE, &7u32.to_be_bytes()), "out of range"),
            (raw(id::HAVE, &[0, 0, 0]), "wrong size"),
            (raw(id::CHOKE, &[0]), "wrong size"),
            (raw(id::PORT, &[0]), "wrong size"),
            (raw(id::BITFIELD, &[0xe0, 0]), "expected 1"),
            (raw(id::BITFIELD, &[0xf0]), "spare bits"),
            (raw(id::BITFIELD, &[]), "expected 1"),
            (piece(0, 0, 16385), "block length"),
            (piece(2, 8192, 8192), "outside"),
            (piece(5, 0, 10), "out of range"),
            (raw(id::PIECE, &[0, 0, 0, 0, 0, 0, 0]), "wrong size"),
            (raw(id::HAVE_ALL, &[]), "without the extension"),
            (raw(id::REJECT, &req(0, 0, 16384)), "without the extension"),
            (
                raw(id::ALLOWED_FAST, &1u32.to_be_bytes()),
                "without the extension",
            ),
            (raw(id::EXTENDED, &[]), "wrong size"),
        ];
        for (wire, want) in cases {
            let err = decode_all(&wire, false).unwrap_err().to_string();
            assert!(err.contains(want), "{err:?} should mention {want:?}");
        }
        assert!(decode_all(&raw(id::HAVE_ALL, &[]), true).is_ok());
        assert!(decode_all(&raw(id::HAVE_NONE, &[1]), true).is_err());
        assert!(decode_all(&raw(id::ALLOWED_FAST, &9u32.to_be_bytes()), true).is_err());
    }

    #[test]
    fn geometry_blocks() {
        let g = geo();
        assert_eq!(g.blocks_in(0), 2);
        assert_eq!(g.blocks_in(2), 1);
        assert_eq!(g.block_len(2, 0), 10_000);
        assert_eq!(g.block_len(0, 1), 16384);
        assert_eq!(g.piece_len(3), 0);
    }
}
