//! The 68-byte BitTorrent handshake: `\x13BitTorrent protocol`, 8 reserved bytes, info-hash, peer id.
//!
//! Reserved bits we use: byte 5 bit 0x10 is the extension protocol (BEP 10), byte 7 bit 0x04 the fast
//! extension (BEP 6), byte 7 bit 0x01 the DHT (BEP 5: the `port` message). Both sides must set a bit for the feature to be on.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::types::{InfoHash, PeerId};

pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
pub const HANDSHAKE_LEN: usize = 68;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
}

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("not a BitTorrent handshake")]
    NotBitTorrent,
    #[error("peer is on another torrent ({0})")]
    WrongTorrent(InfoHash),
    #[error("handshake timed out")]
    Timeout,
    #[error("connection closed during handshake: {0}")]
    Io(#[from] std::io::Error),
    /// The encrypted handshake before it failed (see [`super::mse`]).
    #[error("encrypted handshake: {0}")]
    Encrypted(#[from] super::mse::MseError),
}

impl Handshake {
    /// Our handshake: extension protocol and fast extension offered.
    pub fn ours(info_hash: InfoHash, peer_id: PeerId) -> Self {
        let mut reserved = [0u8; 8];
        reserved[5] |= 0x10;
        reserved[7] |= 0x04;
        Handshake {
            reserved,
            info_hash,
            peer_id,
        }
    }

    /// The same, saying (or not) that we run a DHT node.
    pub fn with_dht(mut self, on: bool) -> Self {
        if on {
            self.reserved[7] |= 0x01;
        } else {
            self.reserved[7] &= !0x01;
        }
        self
    }

    pub fn supports_dht(&self) -> bool {
        self.reserved[7] & 0x01 != 0
    }

    pub fn supports_extensions(&self) -> bool {
        self.reserved[5] & 0x10 != 0
    }

    pub fn supports_fast(&self) -> bool {
        self.reserved[7] & 0x04 != 0
    }

    pub fn to_bytes(&self) -> [u8; HANDSHAKE_LEN] {
        let mut b = [0u8; HANDSHAKE_LEN];
        b[0] = 19;
        b[1..20].copy_from_slice(PROTOCOL);
        b[20..28].copy_from_slice(&self.reserved);
        b[28..48].copy_from_slice(&self.info_hash.0);
        b[48..68].copy_from_slice(&self.peer_id.0);
        b
    }

    pub fn from_bytes(b: &[u8; HANDSHAKE_LEN]) -> Result<Self, HandshakeError> {
        if b[0] != 19 || &b[1..20] != PROTOCOL {
            return Err(HandshakeError::NotBitTorrent);
        }
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&b[20..28]);
        Ok(Handshake {
            reserved,
            info_hash: InfoHash::from_bytes(&b[28..48]).expect("20 bytes"),
            peer_id: PeerId::from_bytes(&b[48..68]).expect("20 bytes"),
        })
    }
}

/// Reads one handshake within `timeout`.
pub async fn read_handshake<S: AsyncRead + Unpin>(
    s: &mut S,
    timeout: Duration,
) -> Result<Handshake, HandshakeError> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    match tokio::time::timeout(timeout, s.read_exact(&mut buf)).await {
        Err(_) => Err(HandshakeError::Timeout),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok(_)) => Handshake::from_bytes(&buf),
    }
}

/// Writes one handshake within `timeout`.
pub async fn write_handshake<S: AsyncWrite + Unpin>(
    s: &mut S,
    hs: &Handshake,
    timeout: Duration,
) -> Result<(), HandshakeError> {
    let write = async {
        s.write_all(&hs.to_bytes()).await?;
        s.flush().await
    };
    match tokio::time::timeout(timeout, write).await {
        Err(_) => Err(HandshakeError::Timeout),
        Ok(r) => Ok(r?),
    }
}

/// The initiator's side: send ours, read theirs, check the info-hash.
pub async fn initiate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    ours: &Handshake,
    timeout: Duration,
) -> Result<Handshake, HandshakeError> {
    write_handshake(s, ours, timeout).await?;
    let theirs = read_handshake(s, timeout).await?;
    if theirs.info_hash != ours.info_hash {
        return Err(HandshakeError::WrongTorrent(theirs.info_hash));
    }
    Ok(theirs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bits() {
        let hs = Handshake::ours(InfoHash([1; 20]), PeerId([2; 20]));
        let b = hs.to_bytes();
        assert_eq!(&b[..20], b"\x13BitTorrent protocol");
        let back = Handshake::from_bytes(&b).unwrap();
        assert_eq!(back, hs);
        assert!(back.supports_extensions() && back.supports_fast());
        assert!(!back.supports_dht());
        let dht = hs.with_dht(true);
        assert_eq!(
            dht.to_bytes()[27],
            0x05,
            "fast and DHT bits of reserved byte 7"
        );
        assert!(Handshake::from_bytes(&dht.to_bytes())
            .unwrap()
            .supports_dht());
        assert!(!dht.with_dht(false).supports_dht());
        let mut bad = b;
        bad[3] = b'x';
        assert!(matches!(
            Handshake::from_bytes(&bad),
            Err(HandshakeError::NotBitTorrent)
        ));
    }

    #[tokio::test]
    async fn initiate_checks_info_hash() {
        let (mut a, mut b) = tokio::io::duplex(256);
        let ours = Handshake::ours(InfoHash([1; 20]), PeerId([2; 20]));
        let theirs = Handshake::ours(InfoHash([9; 20]), PeerId([3; 20]));
        let t = Duration::from_secs(5);
        let peer = tokio::spawn(async move {
            let got = read_handshake(&mut b, t).await.unwrap();
            write_handshake(&mut b, &theirs, t).await.unwrap();
            got
        });
        let r = initiate(&mut a, &ours, t).await;
        assert!(matches!(r, Err(HandshakeError::WrongTorrent(_))));
        assert_eq!(peer.await.unwrap(), ours);
    }
}
