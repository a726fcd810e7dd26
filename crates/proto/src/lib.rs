//! btorrent-proto: the BitTorrent formats, with no I/O beyond reading and writing .torrent files.
//!
//! - [`addr`]: which IP addresses are on a local network; where to bind a TCP and UDP port pair.
//! - [`bencode`]: a strict bencode reader and writer.
//! - [`metainfo`]: .torrent files: parse (the info-hash taken over the exact `info` bytes), create
//!   (hashed on every core), edit, magnet links; BitTorrent v2's file tree, SHA-256 merkle trees and
//!   piece layers (BEP 52, [`metainfo::v2`]).
//! - [`magnet`]: magnet links (BEP 9) parsed: info-hash, name, trackers, peers.
//! - [`mutable_link`]: mutable links (BEP 46, `xs=urn:btpk:`): a signing key's pointer to a torrent,
//!   and the pointer's value.
//! - [`wire`]: the peer wire protocol: handshake, messages and their codec, bitfields, the extension
//!   handshake (BEP 10), and the encrypted handshake that may come first (`wire::mse`).
//! - [`multi_sha1`]: SHA-1 of several pieces at once (lanes on the CPU's SHA instructions).
//! - [`listing`]: the `/get_peers` listing btorrent's tracker serves and its client reads.
//! - [`tracker`]: the announce and scrape types tracker clients and servers share.
//! - [`udp_tracker`]: the UDP tracker protocol's packets (BEP 15), for both sides.
//! - [`lsd`]: local service discovery's `BT-SEARCH` message (BEP 14).
//! - [`types`]: info-hashes and peer ids.
//! - [`fs`]: atomic file replacement and paths confined to a folder, for every layer above.
//! - [`text`]: text from the network made fit to show (no control characters, bounded length).
//! - [`prometheus`]: metrics written in the Prometheus text format, for the app's and the tracker's
//!   `/metrics`.
//!
//! The layers above: `btorrent-engine` (peers, torrents, the tracker client) and `btorrent-tracker`
//! (the tracker server) depend on this crate; it depends on neither.

pub mod addr;
pub mod bencode;
pub mod fs;
pub mod listing;
pub mod lsd;
pub mod magnet;
pub mod metainfo;
pub mod multi_sha1;
pub mod mutable_link;
pub mod prometheus;
pub mod text;
pub mod tracker;
pub mod types;
pub mod udp_tracker;
pub mod wire;

pub use metainfo::Metainfo;
pub use types::{InfoHash, PeerId};
