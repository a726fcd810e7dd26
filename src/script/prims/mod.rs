//! The primitives scripts call, registered on the rhai engine. One file per area:
//! - `torrent_file`: `create`, `load`, `edit`, `info` and the `Torrent` type (a .torrent file);
//! - `registry`: `torrents`, `register`, `unregister` (torrents.toml's torrents); `settings`:
//!   `settings`, `settings_set` (its settings);
//! - `text`: `table`, `human_bytes`, `parse_size`, `to_json`, `commands`;
//! - `tracker`: `peers`, `announce`, `scrape` (the tracker client);
//! - `transfer`: `start`, `seed` (both return the torrent's `TorrentHandle`), `bitfield`,
//!   `download_piece` (the peer session);
//! - `events`: `on`, `off`, `events` (handlers the dispatcher calls);
//! - `timers`: `every`, `after`, `sleep`;
//! - `handles`: `torrent(name_or_hash)` and the `TorrentHandle` type, the one script type for a
//!   torrent (live getters, `stats`, actions: `pause`, `resume`, `cancel`, `remove`, `move_to`,
//!   `check`); `meta`: its `meta` map; `follow`: `wait` and `follow` on it; `runner`: where its
//!   torrent runs (here, or in the owner of torrents.toml);
//! - `files`: choosing files on a `TorrentHandle` (`files`, `set_wanted`, `set_priority`,
//!   `sequential`) and `start`'s `only` globs;
//! - `dht`: `dht` (the session's DHT node); `mutable`: `publish`, `resolve` (mutable torrents,
//!   BEP 46); `blocklist`: `blocklist`, `blocklist_set`,
//!   `blocklist_update` (the blocklists' folder and switch);
//! - `front`: `close` (the shell), `can_ask` and `confirm` (a question to the person at the terminal);
//! - `queue`: `queue`, `queue_set`, and a `TorrentHandle`'s `queue_position` and `queue_move` (the
//!   download and seeding queues); `speed`: `speed_set` (the session's speed limits); `port`:
//!   `port`, `port_set` (the peer port and port forwarding on the router);
//! - `remote`: `push` (a torrent handed to another machine's Transmission RPC) and `rpc` (any
//!   call to it); `paths`: `path_kind` (what a path on this machine is).
//!
//! Conventions: a primitive that fails throws a one-line message starting with its own name; options
//! are passed as a map whose unknown keys are an error and whose `()` values mean "not given".

mod blocklist;
mod dht;
mod events;
mod files;
mod follow;
mod front;
mod handles;
mod meta;
mod mutable;
mod paths;
mod port;
mod queue;
mod registry;
mod remote;
mod runner;
mod settings;
mod speed;
mod text;
mod timers;
mod torrent_file;
mod tracker;
mod transfer;

use std::sync::Arc;

use rhai::Engine;

use super::host::HostContext;

pub(crate) use events::event_map;
pub(crate) use torrent_file::TorrentFile;

pub(super) fn register_all(engine: &mut Engine, ctx: &Arc<HostContext>) {
    torrent_file::register(engine, ctx);
    registry::register(engine, ctx);
    settings::register(engine, ctx);
    text::register(engine, ctx);
    events::register(engine, ctx);
    timers::register(engine, ctx);
    handles::register(engine, ctx);
    meta::register(engine, ctx);
    follow::register(engine, ctx);
    files::register(engine, ctx);
    front::register(engine, ctx);
    dht::register(engine, ctx);
    mutable::register(engine, ctx);
    blocklist::register(engine, ctx);
    queue::register(engine, ctx);
    speed::register(engine, ctx);
    port::register(engine, ctx);
    remote::register(engine, ctx);
    paths::register(engine);
    tracker::register(engine, ctx);
    transfer::register(engine, ctx);
}

/// A progress bar style from `template`, whose `{bar}` gets as many columns as the terminal has beyond
/// `others` (what the rest of the line takes at most), between 5 and `max`: the line fits on one row,
/// so the bar redraws in place instead of scrolling.
pub(crate) fn progress_style(
    template: &str,
    others: usize,
    max: usize,
) -> indicatif::ProgressStyle {
    let width = crossterm::terminal::size().map_or(80, |(w, _)| w as usize);
    let bar = width.saturating_sub(others).clamp(5, max);
    let template = template.replace("{bar}", &format!("{{bar:{bar}}}"));
    indicatif::ProgressStyle::with_template(&template).expect("valid template")
}

/// An optional value as scripts see it: `()` when absent.
pub(crate) fn opt<T: Into<rhai::Dynamic>>(v: Option<T>) -> rhai::Dynamic {
    v.map_or(rhai::Dynamic::UNIT, Into::into)
}

/// A primitive's error: `name: message`.
pub(crate) fn fail<T>(
    func: &str,
    msg: impl std::fmt::Display,
) -> Result<T, Box<rhai::EvalAltResult>> {
    Err(format!("{func}: {msg}").into())
}
