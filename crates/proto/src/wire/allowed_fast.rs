//! The allowed-fast set of the fast extension (BEP 6): the pieces a peer may request from us while
//! we choke it, so a newcomer with nothing to trade gets its first pieces without waiting for an
//! unchoke. The set is the BEP's canonical one, a function of the peer's IPv4 address (its /24)
//! and the info-hash alone, so a peer that reconnects (from another port, or another address of
//! its /24) gets the same pieces and cannot collect more.

use std::net::Ipv4Addr;

use sha1::{Digest, Sha1};

use crate::types::InfoHash;

/// The first `k` pieces (fewer when the torrent has fewer) of the allowed-fast set for a peer at
/// `ip`, for a torrent of `pieces` pieces.
pub fn allowed_fast_set(ip: Ipv4Addr, info_hash: &InfoHash, pieces: u32, k: usize) -> Vec<u32> {
    let k = k.min(pieces as usize);
    let mut set = Vec::with_capacity(k);
    let masked = u32::from(ip) & 0xffff_ff00;
    let mut x = [0u8; 24];
    x[..4].copy_from_slice(&masked.to_be_bytes());
    x[4..].copy_from_slice(&info_hash.0);
    let mut digest: [u8; 20] = Sha1::digest(x).into();
    loop {
        for word in digest.chunks_exact(4) {
            if set.len() == k {
                return set;
            }
            let index = u32::from_be_bytes(word.try_into().expect("4 bytes")) % pieces;
            if !set.contains(&index) {
                set.push(index);
            }
        }
        if set.len() == k {
            return set;
        }
        digest = Sha1::digest(digest).into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_bep_6_example() {
        // BEP 6: 80.4.4.200, an info-hash of twenty 0xaa bytes, 1313 pieces.
        let ih = InfoHash([0xaa; 20]);
        let ip = Ipv4Addr::new(80, 4, 4, 200);
        assert_eq!(
            allowed_fast_set(ip, &ih, 1313, 7),
            [1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(ip, &ih, 1313, 9),
            [1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
        // The same /24 gets the same set.
        let near = Ipv4Addr::new(80, 4, 4, 7);
        assert_eq!(
            allowed_fast_set(near, &ih, 1313, 7),
            allowed_fast_set(ip, &ih, 1313, 7)
        );
    }

    #[test]
    fn a_small_torrent_gives_every_piece_at_most() {
        let ih = InfoHash([1; 20]);
        let mut set = allowed_fast_set(Ipv4Addr::LOCALHOST, &ih, 3, 10);
        set.sort_unstable();
        assert_eq!(set, [0, 1, 2]);
    }
}
