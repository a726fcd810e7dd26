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
//! The workspace's crates are the layers, and dependencies point down only:
//! - `btorrent-proto` (`crates/proto`), re-exported here as [`bencode`], [`metainfo`], [`wire`],
//!   [`multi_sha1`] and [`types`]: .torrent files (v1, hybrid and v2) parsed strictly from untrusted
//!   bytes, created with parallel hashing, edited without changing the info-hash; the peer wire codec;
//!   SHA-1 lanes.
//! - `btorrent-engine` (`crates/engine`), here [`engine`] and [`announce`]: the peer (session,
//!   torrents, peers, picker, storage, resume) and the tracker client. It never sees rhai, reedline,
//!   notify or torrents.toml.
//! - `btorrent-tracker` (`crates/tracker`), here [`tracker`]: the HTTP tracker server. It never sees
//!   the engine.
//!
//! This crate, the app, on top:
//! - [`config`]: `torrents.toml`, the settings and the list of managed torrents.
//! - [`torrents`]: the one live model of them: torrents.toml loaded once, its only writer, the one
//!   watcher of the file, and the running peer session. Everything below reads and changes the list
//!   through it.
//! - [`lan`]: this machine's LAN address, for the embedded tracker's announce URL.
//! - [`services`]: the embedded tracker (and, in the shell and daemon, the peer) built from the settings.
//! - [`service_manager`]: how the daemon stands, told to systemd (`Type=notify`: ready, status,
//!   keep-alives, stopping).
//! - [`events`]: the bus that carries what happened up to the front ends, and its one `Event` type:
//!   the engine publishes into it directly (its events carried as they are), as do the watch folder
//!   and the seeding goals.
//! - [`script`]: the rhai host; every command is a bundled `scripts/b-*.rhai`; event handlers and timers.
//! - [`source`]: what a user names a torrent by (a .torrent path, a magnet link) opened as a .torrent.
//! - [`watch`]: the watch folder; dropped data is shared, dropped .torrent files are downloaded.
//! - [`control`]: the Unix socket beside torrents.toml through which one-shot commands reach the
//!   running shell or daemon (its live figures, pause, resume, remove).
//! - Front ends: [`shell`] (interactive, the default), [`daemon`] (headless), [`runner`]
//!   (`btorrent run`), with [`app`] assembling what the shell and the daemon share.
//! - [`actions`]: pause, resume, remove, move and add, as the shell's commands and the RPC do them.
//! - [`goals`]: the seeding goals (ratio, idle time) enforced: complete torrents stop on reaching them.
//! - [`blocklist`]: the lists of addresses no peer connection is made to or taken from.
//! - [`http_fetch`]: bounded HTTP downloads (a .torrent or a blocklist by URL).
//! - [`alt_speed`]: the alternative speed limits' schedule (Transmission's turtle clock).
//! - [`incomplete`]: the incomplete folder: downloads kept there until complete, then moved to
//!   their own folder.
//! - [`hooks`]: the programs run when a torrent is added, completes, or reaches a seeding goal
//!   (Transmission's `script-torrent-*`).
//! - [`queue`]: the download and seeding queues: at most so many torrents download, and so many
//!   seed, at once; the rest wait in torrents.toml's order.
//! - [`rpc`]: the Transmission-compatible RPC, our own page and `/metrics` on `rpc_bind`;
//!   [`remote`]: the same RPC as a client, on another machine (a torrent handed to its daemon).
//! - [`logs`]: how log lines look on a terminal; [`terminal`]: lines printed above the progress bar;
//!   [`units`]: sizes parsed and shown; [`signals`]: SIGINT, SIGTERM and SIGHUP in one place;
//!   [`fsutil`]: atomic writes, confined paths, free space.
//! - [`demo`]: the whole program on loopback in one process (`btorrent demo`).

// serde_json's json! of session-get's fields nests deeper than the default allows.
#![recursion_limit = "256"]

pub mod actions;
pub mod alt_speed;
pub mod app;
pub mod blocklist;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod events;
pub mod following;
pub mod fsutil;
pub mod goals;
pub mod hooks;
pub mod http_fetch;
pub mod incomplete;
pub mod keys;
pub mod lan;
pub mod live_settings;
pub mod logs;
pub mod publishing;
pub mod queue;
pub mod remote;
pub mod rpc;
pub mod runner;
pub mod script;
pub mod service_manager;
pub mod services;
pub mod shell;
pub mod signals;
pub mod source;
pub mod terminal;
pub mod torrents;
pub mod units;
pub mod watch;

// The layers below, under the names the app and its tests have always used.
pub use btorrent_engine as engine;
pub use btorrent_engine::announce;
pub use btorrent_proto::{
    addr, bencode, listing, lsd, magnet, metainfo, multi_sha1, mutable_link, prometheus, types,
    udp_tracker, wire,
};
pub use btorrent_tracker as tracker;

pub use metainfo::Metainfo;
pub use types::{InfoHash, PeerId};
