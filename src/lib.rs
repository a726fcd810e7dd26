//! # btorrent
//!
//! A scriptable BitTorrent client and tracker in one binary.
//!
//! ```text
//!   reedline shell ──┐     btorrent <cmd> (one-shot) ──┐     user .rhai scripts ──┐
//!                    ▼                                 ▼                          ▼
//!            ┌────────────── script host (rhai): bundled b-*.rhai commands, primitives, events ──┐
//!            └─────────────────────┬───────────────────────────────────────┬────────────────────┘
//!                                  ▼                                       ▼
//!   watch folder ──▶  engine (tokio): session · torrents · peer tasks · picker · storage
//!                                  │ peer wire protocol (BEP 3)            │ tracker client
//!                                  ▼                                       ▼
//!                              other peers                      tracker server (axum)
//! ```
//!
//! Data flows one way: a front end (the shell, a one-shot command, a script, the watch folder) asks the
//! script host or the engine; the engine talks to peers and trackers; events flow back up as a broadcast
//! the front ends subscribe to. The engine never calls a script and never waits on one.
//!
//! Layers, bottom up:
//! - [`bencode`] and [`metainfo`]: .torrent files, parsed strictly from untrusted bytes, created with
//!   parallel hashing, edited without changing the info-hash.
//! - [`config`]: `torrents.toml`, the settings and the list of managed torrents.
//! - [`tracker`] (server) and [`announce`] (client): the HTTP tracker protocol.
//! - [`lan`]: this machine's LAN address, for the embedded tracker's announce URL.
//! - [`services`]: the embedded tracker (and, in the shell and daemon, the peer) built from the settings.
//! - [`events`]: the bus that carries what happened (engine, watch folder) up to the front ends.
//! - [`wire`] (peer wire protocol codec) and [`engine`] (session, torrents, peers, picker, storage):
//!   the peer that downloads and uploads.
//! - [`script`]: the rhai host; every command is a bundled `scripts/b-*.rhai`; event handlers and timers.
//! - [`watch`]: the watch folder; dropped data is shared, dropped .torrent files are downloaded.
//! - [`control`]: the Unix socket beside torrents.toml through which one-shot commands reach the
//!   running shell or daemon (its live figures, pause, resume, remove).
//! - Front ends: [`shell`] (interactive, the default), [`daemon`] (headless), [`runner`]
//!   (`btorrent run`), with [`app`] assembling what the shell and the daemon share.
//! - [`logs`]: how log lines look on a terminal.
//! - [`demo`]: the whole program on loopback in one process (`btorrent demo`).

pub mod announce;
pub mod app;
pub mod bencode;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod events;
pub mod fsutil;
pub mod lan;
pub mod logs;
pub mod metainfo;
pub mod multi_sha1;
pub mod runner;
pub mod script;
pub mod services;
pub mod shell;
pub mod tracker;
pub mod types;
pub mod watch;
pub mod wire;

pub use metainfo::Metainfo;
pub use types::{InfoHash, PeerId};
