//! The BitTorrent peer wire protocol (BEP 3) with the fast extension (BEP 6, and its allowed-fast
//! set) and the extension protocol
//! (BEP 10): the handshake, the message codec (a tokio-util `Decoder`/`Encoder`), bitfields, and the
//! extended messages we speak: `ut_metadata` (BEP 9), `ut_pex` (BEP 11), `lt_donthave` (BEP 54) and
//! `ut_holepunch` (BEP 55);
//! and the encrypted
//! handshake (MSE) that may come before the BitTorrent one.
//!
//! This layer knows bytes and limits, not policy: it refuses anything malformed or out of bounds for the
//! torrent's [`Geometry`], and leaves to the engine what to do with well-formed messages.

pub mod allowed_fast;
pub mod bitfield;
pub mod extension;
pub mod handshake;
pub mod lt_donthave;
pub mod message;
pub mod mse;
pub mod ut_holepunch;
pub mod ut_metadata;
pub mod ut_pex;

pub use bitfield::Bitfield;
pub use extension::ExtHandshake;
pub use handshake::{Handshake, HandshakeError};
pub use message::{BlockRef, Geometry, Message, PeerCodec, WireError};

/// The block size every client requests and serves; larger requests are refused.
pub const BLOCK_SIZE: u32 = 16 * 1024;
