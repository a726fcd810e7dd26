//! The local control channel: how a one-shot command acts on the shell or daemon that owns a
//! torrents.toml (the "owner") instead of only editing the file.
//!
//! The owner listens on a Unix socket beside torrents.toml, `.btorrent/control.sock` (mode 0600, only
//! the same user is served). It is made when the shell or daemon starts, replaces a stale socket left
//! by an owner that was killed (nobody answers on it), and is removed when the owner closes. A second
//! owner of the same file finds the first one answering, says so, and serves no socket of its own.
//!
//! The protocol is line-delimited JSON, one request and one reply per line ([`protocol`]): list the
//! running torrents with their live figures, pause, resume, remove or move one. It is what the script
//! host asks of running torrents ([`LiveTorrents`](crate::script::live::LiveTorrents)) and nothing more: a one-shot command's host sees
//! the owner's torrents through [`OwnerOrLocal`], its torrents.toml edits stay where they were (in the
//! primitives), and without an owner everything works on the file as before.
//!
//! Who records: what the owner carries out for a client and torrents.toml keeps (a pause, a
//! resume, a torrent's own limits, its choice of files; a removal's `after`) the owner records as
//! it does it, and the client's own record after it is then no change. A record by the client
//! alone would be a change by someone else, which the owner applies as a hand edit of the file;
//! read after the client's next command, it undid that command.
//!
//! Bounds: a request line is at most [`protocol::MAX_REQUEST`] bytes and must arrive within
//! [`protocol::IO_TIMEOUT`]; at most [`server::MAX_CONNECTIONS`] clients are served at once; a request
//! that is not understood gets an error reply, never a crash. The client gives up on a reply after
//! [`protocol::IO_TIMEOUT`] (removing or moving a torrent may take longer: see [`client`]).
//!
//! - [`protocol`]: requests, replies and reading bounded lines;
//! - [`server`]: the owner's side, serving its running torrents;
//! - [`client`]: the one-shot side, and [`OwnerOrLocal`], the view that asks the owner first.

pub mod client;
pub mod protocol;
pub mod server;

use std::path::{Path, PathBuf};

pub use client::{Client, OwnerOrLocal};
pub use server::Server;

/// The socket of the owner of `config_path`: `.btorrent/control.sock` in the folder of torrents.toml.
pub fn socket_path(config_path: &Path) -> PathBuf {
    let dir = match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    dir.join(".btorrent").join("control.sock")
}
