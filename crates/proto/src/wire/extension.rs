//! The extension protocol handshake (BEP 10): message 20, extended id 0, a bencoded dictionary.
//!
//! We read the peer's client name (`v`, at most 64 characters, control characters replaced), its
//! request queue size (`reqq`) and its listen port (`p`), and send ours. We offer no extended
//! messages (`m` is empty), so no peer sends us any.

use crate::bencode::{self, Writer};

/// Request queue size we advertise: how many requests we accept queued from one peer.
pub const OUR_REQQ: u32 = 1000;
/// `reqq` assumed for a peer that does not say (the common default).
pub const DEFAULT_REQQ: u32 = 250;
/// Largest `reqq` we honour from a peer, whatever it claims.
pub const MAX_PEER_REQQ: u32 = 2000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake {
    pub client: Option<String>,
    pub reqq: Option<u32>,
    pub port: Option<u16>,
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
    pub fn ours(listen_port: u16) -> Vec<u8> {
        let mut w = Writer::default();
        w.begin_dict();
        w.bytes(b"m").begin_dict().end();
        if listen_port != 0 {
            w.bytes(b"p").int(listen_port);
        }
        w.bytes(b"reqq").int(OUR_REQQ);
        w.bytes(b"v")
            .bytes(concat!("btorrent ", env!("CARGO_PKG_VERSION")).as_bytes());
        w.end();
        w.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ours_and_others() {
        let h = ExtHandshake::parse(&ExtHandshake::ours(6881)).unwrap();
        assert_eq!(h.reqq, Some(OUR_REQQ));
        assert_eq!(h.port, Some(6881));
        assert!(h.client.unwrap().starts_with("btorrent"));
        let lt = b"d1:md11:ut_metadatai2e6:ut_pexi1ee1:pi6881e4:reqqi500e1:v16:libtorrent 2.0.8e";
        let h = ExtHandshake::parse(lt).unwrap();
        assert_eq!(h.client.as_deref(), Some("libtorrent 2.0.8"));
        assert_eq!(h.effective_reqq(), 500);
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
    fn a_client_name_cannot_drive_a_terminal() {
        let evil = b"d1:v15:x\x1b]0;owned\x07\x1b[2Je";
        let name = ExtHandshake::parse(evil).unwrap().client.unwrap();
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(name.starts_with('x') && name.contains("owned"), "{name:?}");
    }
}
