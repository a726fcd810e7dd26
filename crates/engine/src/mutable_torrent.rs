//! Mutable torrents (BEP 46) through the session's DHT node: a torrent's info-hash published under
//! an ed25519 key as a BEP 44 mutable item, and a mutable link
//! ([`btorrent_proto::mutable_link::MutableLink`]) resolved to the info-hash of the newest item
//! found.
//!
//! Publishing signs `d2:ih20:<info-hash>e` with the key at a sequence number the caller gives
//! (higher than the last: nodes keep the highest they were given and refuse lower ones) and
//! stores it at the nodes closest to the key's target (SHA-1 of the key and salt). Nodes keep an
//! item for about two hours, so a publisher publishes again well within that. Resolving asks the
//! nodes closest to the target and keeps, among the items whose signature checks (the `mainline`
//! crate checks it and drops the others), the one with the highest sequence number, within
//! [`RESOLVE_TIMEOUT`].

use std::time::Duration;

use futures::StreamExt;
use mainline::{MutableItem, SigningKey};

use super::dht::DhtNode;
use super::EngineError;
use btorrent_proto::mutable_link::{parse_pointer_value, pointer_value};
use btorrent_proto::types::InfoHash;

/// The longest a resolution waits for the DHT's answers.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a mutable link points at now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub info_hash: InfoHash,
    /// The item's sequence number: higher for a later publication.
    pub seq: i64,
}

/// The public key of the ed25519 key whose secret half (its 32-byte seed) is `secret`: what a
/// mutable link names.
pub fn public_key(secret: &[u8; 32]) -> [u8; 32] {
    SigningKey::from_bytes(secret).verifying_key().to_bytes()
}

impl DhtNode {
    /// Publishes `ih` under the key `secret` (and `salt`) at sequence number `seq`.
    pub(crate) async fn put_pointer(
        &self,
        secret: &[u8; 32],
        salt: Option<&[u8]>,
        ih: InfoHash,
        seq: i64,
    ) -> crate::Result<()> {
        let node = self.node().ok_or(EngineError::DhtStopped)?;
        let item = MutableItem::new(
            SigningKey::from_bytes(secret),
            &pointer_value(&ih),
            seq,
            salt,
        );
        node.put_mutable(item, None)
            .await
            .map(|_| ())
            .map_err(|e| EngineError::DhtPut(e.to_string()))
    }

    /// The newest pointer under `public_key` (and `salt`) that names a torrent: `None` when no
    /// node holds one (within `timeout`).
    pub(crate) async fn get_pointer(
        &self,
        public_key: &[u8; 32],
        salt: Option<&[u8]>,
        timeout: Duration,
    ) -> crate::Result<Option<Resolved>> {
        let node = self.node().ok_or(EngineError::DhtStopped)?;
        let mut items = node.get_mutable(public_key, salt, None);
        let mut best: Option<Resolved> = None;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let item = tokio::select! {
                item = items.next() => item,
                _ = tokio::time::sleep_until(deadline) => None,
            };
            let Some(item) = item else {
                break;
            };
            match parse_pointer_value(item.value()) {
                Ok(info_hash) if best.is_none_or(|b| item.seq() > b.seq) => {
                    best = Some(Resolved {
                        info_hash,
                        seq: item.seq(),
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(seq = item.seq(), "mutable item ignored: {e}"),
            }
        }
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_is_the_seeds_ed25519_key() {
        // RFC 8032's first test vector.
        let secret: [u8; 32] =
            hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap()
                .try_into()
                .unwrap();
        assert_eq!(
            hex::encode(public_key(&secret)),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }
}
