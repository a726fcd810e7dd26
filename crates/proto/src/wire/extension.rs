//! The extension protocol handshake (BEP 10): message 20, extended id 0, a bencoded dictionary.
//!
//! We read the peer's client name (`v`, at most 64 characters, control characters replaced), its
//! request queue size (`reqq`), its listen port (`p`), the ids it gave the extensions we speak (`m`:
//! `ut_metadata`, `ut_pex`, `lt_donthave`, `upload_only`, `ut_holepunch`; other names are
//! ignored, and an id of 0
//! means the peer disabled one), the size of its info dictionary (`metadata_size`), whether it wants
//! nothing more (`upload_only`, BEP 21: a seed, or a partial seed with every piece it wants), whether it prefers encrypted connections (`e`, which we send when we do)
//! and our address as it sees it (`yourip`, 4 or 16 bytes). We send ours: `m` offers `ut_metadata`
//! (BEP 9) under [`UT_METADATA_ID`], unless the torrent is private (BEP 27) `ut_pex` (BEP 11) under
//! [`UT_PEX_ID`] and `ut_holepunch` (BEP 55) under [`UT_HOLEPUNCH_ID`], `lt_donthave` (BEP 54)
//! under [`LT_DONTHAVE_ID`], and `upload_only` under
//! [`UPLOAD_ONLY_ID`] (libtorrent's message saying, after the handshake, that a peer now wants
//! nothing more or wants again: [`upload_only_payload`]); `metadata_size` when we have
//! the info dictionary; and `yourip`, the peer's address as we see it (how a peer behind a NAT
//! learns its public address).
//!
//! An extended message reaches us with the id *we* gave its extension; we send one with the id the
//! *peer* gave it ([`ExtIds`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bencode::{self, Writer};

/// Request queue size we advertise: how many requests we accept queued from one peer.
pub const OUR_REQQ: u32 = 1000;
/// `reqq` assumed for a peer that does not say (the common default).
pub const DEFAULT_REQQ: u32 = 250;
/// Largest `reqq` we honour from a peer, whatever it claims.
pub const MAX_PEER_REQQ: u32 = 2000;
/// The id peers send us `ut_pex` messages with.
pub const UT_PEX_ID: u8 = 1;
/// The id peers send us `ut_metadata` messages with.
pub const UT_METADATA_ID: u8 = 2;
/// The id peers send us `lt_donthave` messages with.
pub const LT_DONTHAVE_ID: u8 = 3;
/// The id peers send us `upload_only` messages with.
pub const UPLOAD_ONLY_ID: u8 = 4;
/// The id peers send us `ut_holepunch` messages with.
pub const UT_HOLEPUNCH_ID: u8 = 5;
/// Largest info dictionary we fetch or announce (BEP 9 leaves it open; real ones are far smaller).
pub const MAX_METADATA_SIZE: u64 = 16 << 20;

/// The ids a peer gave the extensions we speak (`None`: it does not speak it, or disabled it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtIds {
    pub ut_metadata: Option<u8>,
    pub ut_pex: Option<u8>,
    pub lt_donthave: Option<u8>,
    pub upload_only: Option<u8>,
    pub ut_holepunch: Option<u8>,
}

/// What we put in our handshake besides the fixed fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OurExt {
    pub listen_port: u16,
    /// Size of the info dictionary we can serve (`None`: we do not have it yet).
    pub metadata_size: Option<u64>,
    /// Offer `ut_pex` (never for a private torrent).
    pub pex: bool,
    /// Offer `ut_holepunch` (never for a private torrent: a relay would name its peers).
    pub holepunch: bool,
    /// We want nothing more (BEP 21 `upload_only`): every piece, or every piece of the files we
    /// want.
    pub upload_only: bool,
    /// We prefer encrypted connections (`e`: message stream encryption).
    pub prefers_encryption: bool,
    /// The peer's address as we see it (`yourip`).
    pub your_ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    pub client: Option<String>,
    pub reqq: Option<u32>,
    pub port: Option<u16>,
    pub ids: ExtIds,
    /// The peer's `metadata_size`, when it is within `1..=MAX_METADATA_SIZE`.
    pub metadata_size: Option<u64>,
    /// The peer announced a `metadata_size` outside `1..=MAX_METADATA_SIZE`.
    pub metadata_size_refused: bool,
    /// The peer wants nothing more (BEP 21 `upload_only` non-zero): a seed, or a partial seed that
    /// has every piece of the files it wants.
    pub upload_only: bool,
    /// The peer prefers encrypted connections (`e` non-zero).
    pub prefers_encryption: bool,
    /// Our address as the peer sees it (`yourip`, when 4 or 16 bytes).
    pub your_ip: Option<IpAddr>,
}

/// An id from `m`: 1 to 255; 0 (disabled) and anything else are `None`.
fn ext_id(raw: &[u8]) -> Option<u8> {
    bencode::as_int(raw)
        .and_then(|n| u8::try_from(n).ok())
        .filter(|&n| n > 0)
}

impl ExtHandshake {
    /// Parses the payload (after the extended id). Unknown keys and keys of the wrong type are ignored;
    /// a payload that is not a bencoded dictionary is an error.
    pub fn parse(payload: &[u8]) -> Result<Self, bencode::BencodeError> {
        let entries = bencode::dict_entries(payload)?;
        let mut out = ExtHandshake::default();
        for e in entries {
            let raw = &payload[e.value.clone()];
            match e.key {
                b"v" => {
                    if let Ok((s, _)) = bencode::read_bytes(raw, 0) {
                        // Shown in peer tables: control characters (escape sequences) never
                        // reach a terminal.
                        out.client = Some(crate::text::shown(s, 64));
                    }
                }
                b"reqq" => {
                    if let Ok((n, _)) = bencode::read_int(raw, 0) {
                        out.reqq = u32::try_from(n).ok().filter(|&n| n > 0);
                    }
                }
                b"p" => {
                    if let Ok((n, _)) = bencode::read_int(raw, 0) {
                        out.port = u16::try_from(n).ok().filter(|&p| p > 0);
                    }
                }
                b"m" => {
                    if let Ok(m) = bencode::dict_entries(raw) {
                        for x in m {
                            let v = &raw[x.value.clone()];
                            match x.key {
                                b"ut_metadata" => out.ids.ut_metadata = ext_id(v),
                                b"ut_pex" => out.ids.ut_pex = ext_id(v),
                                b"lt_donthave" => out.ids.lt_donthave = ext_id(v),
                                b"upload_only" => out.ids.upload_only = ext_id(v),
                                b"ut_holepunch" => out.ids.ut_holepunch = ext_id(v),
                                _ => {}
                            }
                        }
                    }
                }
                b"yourip" => {
                    if let Ok((b, _)) = bencode::read_bytes(raw, 0) {
                        out.your_ip = match b.len() {
                            4 => Some(Ipv4Addr::from(<[u8; 4]>::try_from(b).unwrap()).into()),
                            16 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(b).unwrap()).into()),
                            _ => None,
                        };
                    }
                }
                b"upload_only" => out.upload_only = bencode::as_int(raw).is_some_and(|n| n != 0),
                b"e" => out.prefers_encryption = bencode::as_int(raw).is_some_and(|n| n != 0),
                b"metadata_size" => {
                    if let Some(n) = bencode::as_int(raw) {
                        if (1..=MAX_METADATA_SIZE as i64).contains(&n) {
                            out.metadata_size = Some(n as u64);
                        } else {
                            out.metadata_size_refused = true;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The `reqq` to use for this peer: what it says, bounded, or the common default.
    pub fn effective_reqq(&self) -> u32 {
        self.reqq.unwrap_or(DEFAULT_REQQ).min(MAX_PEER_REQQ)
    }

    /// Our handshake payload.
    pub fn ours(o: OurExt) -> Vec<u8> {
        let mut w = Writer::default();
        w.begin_dict();
        if o.prefers_encryption {
            w.key_int(b"e", 1u8);
        }
        w.bytes(b"m").begin_dict();
        // Keys in sorted order, as bencode wants.
        w.key_int(b"lt_donthave", LT_DONTHAVE_ID);
        w.key_int(b"upload_only", UPLOAD_ONLY_ID);
        if o.holepunch {
            w.key_int(b"ut_holepunch", UT_HOLEPUNCH_ID);
        }
        w.key_int(b"ut_metadata", UT_METADATA_ID);
        if o.pex {
            w.key_int(b"ut_pex", UT_PEX_ID);
        }
        w.end();
        if let Some(n) = o.metadata_size {
            w.key_int(b"metadata_size", n);
        }
        if o.listen_port != 0 {
            w.bytes(b"p").int(o.listen_port);
        }
        w.bytes(b"reqq").int(OUR_REQQ);
        if o.upload_only {
            w.key_int(b"upload_only", 1u8);
        }
        w.bytes(b"v")
            .bytes(concat!("btorrent ", env!("CARGO_PKG_VERSION")).as_bytes());
        match o.your_ip {
            Some(IpAddr::V4(ip)) => {
                w.bytes(b"yourip").bytes(&ip.octets());
            }
            Some(IpAddr::V6(ip)) => {
                w.bytes(b"yourip").bytes(&ip.octets());
            }
            None => {}
        }
        w.end();
        w.buf
    }
}

/// The payload of an `upload_only` message: one byte, 1 when the sender wants nothing more, 0 when
/// it wants pieces again.
pub fn upload_only_payload(upload_only: bool) -> [u8; 1] {
    [u8::from(upload_only)]
}

/// Reads an `upload_only` message's payload: its first byte, non-zero for upload-only (libtorrent
/// reads it so); an empty payload is an error.
pub fn parse_upload_only(payload: &[u8]) -> Result<bool, &'static str> {
    payload
        .first()
        .map(|&b| b != 0)
        .ok_or("empty upload_only message")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_only_message_is_one_byte() {
        for v in [true, false] {
            assert_eq!(parse_upload_only(&upload_only_payload(v)), Ok(v));
        }
        assert_eq!(parse_upload_only(&[7, 0]), Ok(true));
        assert!(parse_upload_only(&[]).is_err());
    }

    #[test]
    fn parses_ours_and_others() {
        let h = ExtHandshake::parse(&ExtHandshake::ours(OurExt {
            listen_port: 6881,
            metadata_size: Some(1234),
            pex: true,
            holepunch: true,
            upload_only: true,
            prefers_encryption: true,
            your_ip: Some("198.18.0.7".parse().unwrap()),
        }))
        .unwrap();
        assert!(h.upload_only && h.prefers_encryption);
        assert_eq!(h.your_ip, Some("198.18.0.7".parse().unwrap()));
        assert_eq!(h.reqq, Some(OUR_REQQ));
        assert_eq!(h.port, Some(6881));
        assert_eq!(h.metadata_size, Some(1234));
        assert_eq!(
            h.ids,
            ExtIds {
                ut_metadata: Some(UT_METADATA_ID),
                ut_pex: Some(UT_PEX_ID),
                lt_donthave: Some(LT_DONTHAVE_ID),
                upload_only: Some(UPLOAD_ONLY_ID),
                ut_holepunch: Some(UT_HOLEPUNCH_ID),
            }
        );
        assert!(h.client.unwrap().starts_with("btorrent"));
        let private = ExtHandshake::parse(&ExtHandshake::ours(OurExt::default())).unwrap();
        assert_eq!(private.ids.ut_pex, None);
        assert_eq!(private.ids.ut_holepunch, None);
        assert!(!private.prefers_encryption);
        assert_eq!(private.metadata_size, None);
        assert_eq!(private.your_ip, None);
        let v6 = OurExt {
            your_ip: Some("2001:db8::5".parse().unwrap()),
            ..OurExt::default()
        };
        let h = ExtHandshake::parse(&ExtHandshake::ours(v6)).unwrap();
        assert_eq!(h.your_ip, v6.your_ip);
        // Any other length is no address.
        assert_eq!(ExtHandshake::parse(b"d6:youripi5ee").unwrap().your_ip, None);
        assert_eq!(
            ExtHandshake::parse(b"d6:yourip3:abce").unwrap().your_ip,
            None
        );
        let lt = b"d1:md11:lt_donthavei7e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31337e1:pi6881e4:reqqi500e1:v16:libtorrent 2.0.8e";
        let h = ExtHandshake::parse(lt).unwrap();
        assert_eq!(h.client.as_deref(), Some("libtorrent 2.0.8"));
        assert_eq!(h.effective_reqq(), 500);
        assert_eq!(h.ids.ut_metadata, Some(2));
        assert_eq!(h.ids.upload_only, Some(3));
        assert_eq!(h.ids.lt_donthave, Some(7));
        assert_eq!(h.ids.ut_holepunch, Some(4));
        assert_eq!(h.metadata_size, Some(31337));
        let odd = b"d4:reqqi-5e1:v3:abce";
        assert_eq!(
            ExtHandshake::parse(odd).unwrap().effective_reqq(),
            DEFAULT_REQQ
        );
        let huge = b"d4:reqqi99999999ee";
        assert_eq!(
            ExtHandshake::parse(huge).unwrap().effective_reqq(),
            MAX_PEER_REQQ
        );
        assert!(ExtHandshake::parse(b"li1ee").is_err());
        assert!(ExtHandshake::parse(b"d4:reqq").is_err());
    }

    #[test]
    fn hostile_ids_and_sizes_are_refused() {
        let h = ExtHandshake::parse(
            b"d1:md11:ut_metadatai0e6:ut_pexi300ee13:metadata_sizei99999999999ee",
        )
        .unwrap();
        assert_eq!(h.ids, ExtIds::default());
        assert_eq!(h.metadata_size, None);
        assert!(h.metadata_size_refused);
        let h = ExtHandshake::parse(b"d1:m3:abc13:metadata_sizei0ee").unwrap();
        assert_eq!((h.ids, h.metadata_size_refused), (ExtIds::default(), true));
    }

    #[test]
    fn a_client_name_cannot_drive_a_terminal() {
        let evil = b"d1:v15:x\x1b]0;owned\x07\x1b[2Je";
        let name = ExtHandshake::parse(evil).unwrap().client.unwrap();
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(name.starts_with('x') && name.contains("owned"), "{name:?}");
    }
}
