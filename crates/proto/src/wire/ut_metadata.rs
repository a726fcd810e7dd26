//! `ut_metadata` messages (BEP 9): the info dictionary sent between peers in 16 KiB pieces.
//!
//! A message is a bencoded dictionary (`msg_type` 0 request, 1 data, 2 reject; `piece`; for data
//! `total_size`), followed for data by the piece's bytes. The decoder is strict, as every byte comes
//! from a stranger: unknown types, pieces out of range, a data piece of the wrong length for its index
//! and a `total_size` other than the one announced are errors ([`MetadataError`]).

use crate::bencode::{self, Writer};

use super::extension::MAX_METADATA_SIZE;

/// Size of every metadata piece but the last.
pub const METADATA_PIECE: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMsg<'a> {
    Request {
        piece: u32,
    },
    Data {
        piece: u32,
        total_size: u64,
        data: &'a [u8],
    },
    Reject {
        piece: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("ut_metadata message is not a bencoded dictionary: {0}")]
    NotADict(String),
    #[error("ut_metadata message lacks `{0}`")]
    Missing(&'static str),
    #[error("ut_metadata message of unknown type {0}")]
    UnknownType(i64),
    #[error("ut_metadata piece {0} is out of range")]
    BadPiece(i64),
    #[error("ut_metadata total_size {0} is out of range (1 to 16 MiB)")]
    BadSize(i64),
    #[error("ut_metadata total_size {got} is not the metadata_size {announced} announced")]
    SizeMismatch { got: u64, announced: u64 },
    #[error("ut_metadata piece {piece} is {got} bytes, expected {want}")]
    BadLength { piece: u32, got: usize, want: usize },
    #[error("ut_metadata request or reject carries {0} trailing bytes")]
    Trailing(usize),
}

/// Pieces an info dictionary of `size` bytes is sent in.
pub fn piece_count(size: u64) -> u32 {
    size.div_ceil(METADATA_PIECE as u64) as u32
}

/// Length of piece `piece` of a dictionary of `size` bytes (0 when out of range).
pub fn piece_len(size: u64, piece: u32) -> usize {
    let start = piece as u64 * METADATA_PIECE as u64;
    size.saturating_sub(start).min(METADATA_PIECE as u64) as usize
}

impl<'a> MetadataMsg<'a> {
    /// Decodes a message (the payload after the extended id). `expected_size` is the `metadata_size`
    /// the peer announced, when it did: a data message must agree with it.
    pub fn parse(payload: &'a [u8], expected_size: Option<u64>) -> Result<Self, MetadataError> {
        let (entries, end) = bencode::dict_entries_prefix(payload)
            .map_err(|e| MetadataError::NotADict(e.to_string()))?;
        let int = |key: &'static str| {
            entries
                .iter()
                .find(|e| e.key == key.as_bytes())
                .and_then(|e| bencode::as_int(&payload[e.value.clone()]))
        };
        let kind = int("msg_type").ok_or(MetadataError::Missing("msg_type"))?;
        let piece = int("piece").ok_or(MetadataError::Missing("piece"))?;
        let max_pieces = piece_count(MAX_METADATA_SIZE) as i64;
        if !(0..max_pieces).contains(&piece) {
            return Err(MetadataError::BadPiece(piece));
        }
        let piece = piece as u32;
        let rest = &payload[end..];
        match kind {
            0 | 2 => {
                if !rest.is_empty() {
                    return Err(MetadataError::Trailing(rest.len()));
                }
                Ok(if kind == 0 {
                    MetadataMsg::Request { piece }
                } else {
                    MetadataMsg::Reject { piece }
                })
            }
            1 => {
                let total = int("total_size").ok_or(MetadataError::Missing("total_size"))?;
                if !(1..=MAX_METADATA_SIZE as i64).contains(&total) {
                    return Err(MetadataError::BadSize(total));
                }
                let total = total as u64;
                if let Some(announced) = expected_size.filter(|&s| s != total) {
                    return Err(MetadataError::SizeMismatch {
                        got: total,
                        announced,
                    });
                }
                let want = piece_len(total, piece);
                if want == 0 {
                    return Err(MetadataError::BadPiece(piece as i64));
                }
                if rest.len() != want {
                    return Err(MetadataError::BadLength {
                        piece,
                        got: rest.len(),
                        want,
                    });
                }
                Ok(MetadataMsg::Data {
                    piece,
                    total_size: total,
                    data: rest,
                })
            }
            other => Err(MetadataError::UnknownType(other)),
        }
    }

    /// The message's bytes (the payload after the extended id).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64);
        w.begin_dict();
        match *self {
            MetadataMsg::Request { piece } => {
                w.key_int(b"msg_type", 0).key_int(b"piece", piece).end();
            }
            MetadataMsg::Reject { piece } => {
                w.key_int(b"msg_type", 2).key_int(b"piece", piece).end();
            }
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => {
                w.key_int(b"msg_type", 1)
                    .key_int(b"piece", piece)
                    .key_int(b"total_size", total_size)
                    .end();
                w.buf.extend_from_slice(data);
            }
        }
        w.buf
    }
}

/// The data message for piece `piece` of `info` (the raw info dictionary), or `None` when the piece
/// is out of range.
pub fn data_for(info: &[u8], piece: u32) -> Option<Vec<u8>> {
    let len = piece_len(info.len() as u64, piece);
    if len == 0 {
        return None;
    }
    let start = piece as usize * METADATA_PIECE;
    Some(
        MetadataMsg::Data {
            piece,
            total_size: info.len() as u64,
            data: &info[start..start + len],
        }
        .encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_lengths() {
        let info = vec![7u8; 40_000];
        assert_eq!(piece_count(40_000), 3);
        let last = data_for(&info, 2).unwrap();
        match MetadataMsg::parse(&last, Some(40_000)).unwrap() {
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => assert_eq!(
                (piece, total_size, data.len()),
                (2, 40_000, 40_000 - 32_768)
            ),
            other => panic!("{other:?}"),
        }
        assert!(data_for(&info, 3).is_none());
        for m in [
            MetadataMsg::Request { piece: 5 },
            MetadataMsg::Reject { piece: 0 },
        ] {
            assert_eq!(MetadataMsg::parse(&m.encode(), None).unwrap(), m);
        }
        // A size other than announced, a short piece, trailing bytes, junk.
        assert_eq!(
            MetadataMsg::parse(&last, Some(40_001)),
            Err(MetadataError::SizeMismatch {
                got: 40_000,
                announced: 40_001
            })
        );
        assert!(matches!(
            MetadataMsg::parse(&last[..last.len() - 1], None),
            Err(MetadataError::BadLength { .. })
        ));
        let mut req = MetadataMsg::Request { piece: 1 }.encode();
        req.push(b'x');
        assert_eq!(
            MetadataMsg::parse(&req, None),
            Err(MetadataError::Trailing(1))
        );
        assert!(MetadataMsg::parse(b"d8:msg_typei7e5:piecei0ee", None).is_err());
        assert!(MetadataMsg::parse(b"d8:msg_typei0e5:piecei-1ee", None).is_err());
        assert!(MetadataMsg::parse(b"d8:msg_typei0e5:piecei99999999ee", None).is_err());
        assert!(
            MetadataMsg::parse(b"d8:msg_typei1e5:piecei0e10:total_sizei99999999999ee", None)
                .is_err()
        );
        assert!(MetadataMsg::parse(b"", None).is_err());
        assert!(MetadataMsg::parse(b"le", None).is_err());
    }
}
