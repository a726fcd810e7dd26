//! What the test suites share, in one place: each `tests/*.rs` says `mod support;` and takes the parts it
//! needs. Everything here runs on loopback, in temporary folders, and every wait has a deadline.
//!
//! - [`data`]: deterministic pseudo-random bytes, files and trees, and comparing trees byte for byte;
//! - [`process`]: child processes killed (by their own handle) when the test ends however it ends,
//!   commands run with a deadline, free loopback ports;
//! - [`wait`]: polling until a condition holds, with a deadline;
//! - [`engine`]: torrents of test data and peer sessions on 127.0.0.1;
//! - [`dht`]: a local Mainline DHT (the `mainline` crate's testnet) and sessions bootstrapped from it;
//! - [`fake_peer`]: hostile peers (liars, silent, snubbing, trickling, a liar dialing in again and again);
//! - [`swarm`]: many synthetic peers of one torrent on loopback addresses of their own, their pieces
//!   growing, some joining and some leaving (also run by benches/peers.sh);
//! - [`tracker`]: btorrent's tracker served in-process, raw HTTP GETs and a bencode reader for replies;
//! - [`clients`]: the real clients of the interop tests (aria2c, python3-libtorrent, transmission-cli,
//!   opentracker) started on loopback, and waiting until a tracker lists them;
//! - [`host`]: a script host in a folder of its own, collecting what scripts print;
//! - [`logs`]: the warnings a test's thread logged, to count;
//! - [`cli`]: running the `btorrent` binary in a folder of its own;
//! - [`rpc`]: a `btorrent daemon` with its Transmission RPC, and a client for it;
//! - [`browser`]: headless Chromium driven through the DevTools protocol (a page's script, keys, files);
//! - [`build`]: hand-made (often malformed) bencode for hostile-input tests;
//! - [`netns`]: two hosts on one LAN (network namespaces), for tests across machines; two hosts
//!   each behind a home router's NAT and a relay between them;
//! - [`web_server`]: a folder served over HTTP with `Range` requests, as a web seed (BEP 19).
//!
//! The common parts (data, process, wait, engine) are re-exported at the top.

#![allow(dead_code, unused_imports)]

pub mod browser;
pub mod build;
pub mod cli;
pub mod clients;
pub mod data;
pub mod dht;
pub mod engine;
pub mod fake_peer;
pub mod gateway;
pub mod host;
pub mod logs;
pub mod netns;
pub mod process;
pub mod rpc;
pub mod swarm;
pub mod tracker;
pub mod wait;
pub mod web_server;

pub use data::*;
pub use engine::*;
pub use process::*;
pub use wait::*;
