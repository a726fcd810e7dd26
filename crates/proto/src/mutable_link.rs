//! Mutable links (BEP 46): `magnet:?xs=urn:btpk:<public key>&s=<salt>` names not a torrent but a
//! signed pointer to one, kept in the DHT as a BEP 44 mutable item under that ed25519 key (and
//! salt), whose value is `d2:ih20:<info-hash>e`. Whoever holds the key's secret half moves the
//! pointer to another torrent (a folder's next version) with a higher sequence number; the link
//! stays the same.
//!
//! [`MutableLink::parse`] reads a link: the key is 64 hex digits, the salt hex (at most
//! [`MAX_SALT`] bytes, as BEP 44 allows), `dn` the name to show; a link that also carries `xt` is
//! an ordinary magnet and not taken here. [`pointer_value`] and [`parse_pointer_value`] write and
//! read the item's value.

use percent_encoding::percent_decode_str;

use crate::bencode::{self, Writer};
use crate::magnet::{is_magnet, MagnetError, MAX_MAGNET_LEN};
use crate::types::InfoHash;

/// Longest salt BEP 44 allows.
pub const MAX_SALT: usize = 64;

/// A parsed mutable link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutableLink {
    /// The ed25519 public key the pointer is signed with.
    pub public_key: [u8; 32],
    /// The salt (`s`), which lets one key hold several pointers.
    pub salt: Option<Vec<u8>>,
    /// `dn`: a name to show until the pointer is resolved.
    pub name: Option<String>,
}

/// Why a pointer's value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    #[error("the pointer's value is not a bencoded dictionary")]
    NotADict,
    #[error("the pointer's value has no 20-byte `ih`")]
    NoInfoHash,
}

impl MutableLink {
    /// Reads `link`: `Ok(None)` when it is not a mutable link (not a magnet link, no
    /// `xs=urn:btpk:`, or an `xt` beside it); an error names a bad key or salt.
    pub fn parse(link: &str) -> Result<Option<MutableLink>, MagnetError> {
        let link = link.trim();
        if link.len() > MAX_MAGNET_LEN {
            return Err(MagnetError::TooLong);
        }
        if !is_magnet(link) {
            return Ok(None);
        }
        let (mut key, mut salt, mut name, mut xt) = (None, None, None, false);
        for pair in link[8..].split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "xt" => xt = true,
                "xs" => {
                    let Some(hex_key) = strip_prefix_ignore_case(v, "urn:btpk:") else {
                        continue;
                    };
                    let bytes = hex::decode(hex_key).ok().filter(|b| b.len() == 32);
                    let Some(bytes) = bytes else {
                        return Err(MagnetError::BadPublicKey(crate::text::shown(
                            hex_key.as_bytes(),
                            80,
                        )));
                    };
                    key = Some(<[u8; 32]>::try_from(bytes).expect("32 bytes"));
                }
                "s" => {
                    let bytes = hex::decode(v).ok().filter(|b| b.len() <= MAX_SALT);
                    let Some(bytes) = bytes else {
                        return Err(MagnetError::BadSalt(crate::text::shown(v.as_bytes(), 80)));
                    };
                    salt = (!bytes.is_empty()).then_some(bytes);
                }
                "dn" => {
                    let raw = v.replace('+', " ");
                    let s = percent_decode_str(&raw)
                        .decode_utf8()
                        .map_err(|_| MagnetError::BadEncoding("dn".into()))?;
                    name = Some(crate::text::shown(s.as_bytes(), 255));
                }
                _ => {}
            }
        }
        Ok(match (key, xt) {
            (Some(public_key), false) => Some(MutableLink {
                public_key,
                salt,
                name,
            }),
            _ => None,
        })
    }

    /// The link: key, salt when there is one, name when there is one.
    pub fn to_link(&self) -> String {
        let mut s = format!("magnet:?xs=urn:btpk:{}", hex::encode(self.public_key));
        if let Some(salt) = &self.salt {
            s.push_str("&s=");
            s.push_str(&hex::encode(salt));
        }
        if let Some(n) = &self.name {
            s.push_str("&dn=");
            s.extend(percent_encoding::utf8_percent_encode(
                n,
                percent_encoding::NON_ALPHANUMERIC,
            ));
        }
        s
    }

    /// `link` (this link as given, with whatever trackers and peers it names) pointing at the
    /// torrent `ih`: an ordinary magnet link for it.
    pub fn magnet_for(link: &str, ih: &InfoHash) -> String {
        format!("{}&xt=urn:btih:{}", link.trim(), ih.to_hex())
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

/// The value a pointer to `ih` holds: `d2:ih20:<info-hash>e`.
pub fn pointer_value(ih: &InfoHash) -> Vec<u8> {
    let mut w = Writer::default();
    w.begin_dict();
    w.bytes(b"ih").bytes(&ih.0);
    w.end();
    w.buf
}

/// The info-hash a pointer's value names (other keys are ignored).
pub fn parse_pointer_value(value: &[u8]) -> Result<InfoHash, PointerError> {
    let entries = bencode::dict_entries(value).map_err(|_| PointerError::NotADict)?;
    entries
        .iter()
        .find(|e| e.key == b"ih")
        .and_then(|e| bencode::read_bytes(&value[e.value.clone()], 0).ok())
        .and_then(|(b, _)| <[u8; 20]>::try_from(b).ok())
        .map(InfoHash)
        .ok_or(PointerError::NoInfoHash)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "8543d3e6115f0f98c944077a4493dcd543e49c739fd998550a1f614ab36ed63e";

    #[test]
    fn links_are_read_and_written() {
        let link = format!("magnet:?xs=urn:btpk:{KEY}&s=6669726d77617265&dn=my+photos");
        let m = MutableLink::parse(&link).unwrap().unwrap();
        assert_eq!(hex::encode(m.public_key), KEY);
        assert_eq!(m.salt.as_deref(), Some(&b"firmware"[..]));
        assert_eq!(m.name.as_deref(), Some("my photos"));
        assert_eq!(MutableLink::parse(&m.to_link()).unwrap().unwrap(), m);
        let bare = MutableLink::parse(&format!("magnet:?xs=urn:btpk:{KEY}"))
            .unwrap()
            .unwrap();
        assert_eq!((bare.salt, bare.name), (None, None));
        // Not mutable links: a path, an ordinary magnet, one with an `xt` beside the key.
        assert_eq!(MutableLink::parse("photos.torrent").unwrap(), None);
        let ih = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";
        assert_eq!(
            MutableLink::parse(&format!("magnet:?xt=urn:btih:{ih}")).unwrap(),
            None
        );
        let both = format!("magnet:?xs=urn:btpk:{KEY}&xt=urn:btih:{ih}");
        assert_eq!(MutableLink::parse(&both).unwrap(), None);
        // The link pointed at a torrent is an ordinary magnet for it.
        let ih = InfoHash([7; 20]);
        let m = crate::magnet::Magnet::parse(&MutableLink::magnet_for(&link, &ih)).unwrap();
        assert_eq!((m.info_hash, m.name.as_deref()), (ih, Some("my photos")));
    }

    #[test]
    fn bad_keys_and_salts_are_named() {
        let short = "magnet:?xs=urn:btpk:abcd";
        assert!(matches!(
            MutableLink::parse(short),
            Err(MagnetError::BadPublicKey(k)) if k == "abcd"
        ));
        let long_salt = format!("magnet:?xs=urn:btpk:{KEY}&s={}", "00".repeat(65));
        assert!(matches!(
            MutableLink::parse(&long_salt),
            Err(MagnetError::BadSalt(_))
        ));
        let not_hex = format!("magnet:?xs=urn:btpk:{KEY}&s=zz");
        assert!(MutableLink::parse(&not_hex).is_err());
    }

    #[test]
    fn pointer_values_round_trip() {
        let ih = InfoHash([0xab; 20]);
        let v = pointer_value(&ih);
        assert_eq!(&v[..8], b"d2:ih20:");
        assert_eq!(parse_pointer_value(&v), Ok(ih));
        assert_eq!(
            parse_pointer_value(b"d2:ih3:abce"),
            Err(PointerError::NoInfoHash)
        );
        assert_eq!(parse_pointer_value(b"i5e"), Err(PointerError::NotADict));
    }
}
