//! Small identifier types shared by every layer: the info-hash that names a torrent and the peer id that
//! names a client in a swarm.

use std::fmt;

/// SHA-1 of the exact bencoded bytes of a torrent's `info` dictionary.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHash(pub [u8; 20]);

/// The 20-byte id a client announces and sends in its handshake.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PeerId(pub [u8; 20]);

macro_rules! twenty_byte_id {
    ($t:ident) => {
        impl $t {
            /// Lower-case hex, 40 characters.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 40 hex digits (either case).
            pub fn from_hex(s: &str) -> Option<Self> {
                let mut out = [0u8; 20];
                hex::decode_to_slice(s.trim(), &mut out).ok()?;
                Some(Self(out))
            }

            /// Takes exactly 20 bytes.
            pub fn from_bytes(b: &[u8]) -> Option<Self> {
                <[u8; 20]>::try_from(b).ok().map(Self)
            }

            pub fn as_bytes(&self) -> &[u8; 20] {
                &self.0
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($t), self.to_hex())
            }
        }
    };
}

twenty_byte_id!(InfoHash);
twenty_byte_id!(PeerId);

impl PeerId {
    /// A fresh Azureus-style id: `-BT0100-` followed by 12 random printable bytes.
    pub fn generate() -> Self {
        use rand::Rng;
        const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(b"-BT0100-");
        let mut rng = rand::thread_rng();
        for b in &mut id[8..] {
            *b = ALPHABET[rng.gen_range(0..ALPHABET.len())];
        }
        PeerId(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = InfoHash([0xab; 20]);
        assert_eq!(InfoHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(InfoHash::from_hex("zz"), None);
    }

    #[test]
    fn generated_peer_id_has_client_prefix() {
        let id = PeerId::generate();
        assert_eq!(&id.0[..8], b"-BT0100-");
        assert_ne!(id, PeerId::generate());
    }
}
