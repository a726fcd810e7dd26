//! `lt_donthave` messages (BEP 54): a peer no longer has a piece it announced (its copy failed a
//! hash check on disk, or was deleted), the one "un-have" of the wire protocol.
//!
//! The payload is the piece index, 4 bytes big-endian, and nothing else; anything else is an error.
//! Whether the index is in range is the receiver's check (this layer does not know the torrent).

/// The payload for piece `index`.
pub fn encode(index: u32) -> [u8; 4] {
    index.to_be_bytes()
}

/// The piece index a payload names; `None` when it is not exactly 4 bytes.
pub fn decode(payload: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(payload.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_lengths() {
        assert_eq!(encode(0x0102_0304), [1, 2, 3, 4]);
        assert_eq!(decode(&encode(77)), Some(77));
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[0, 0, 0]), None);
        assert_eq!(decode(&[0, 0, 0, 1, 0]), None);
    }
}
