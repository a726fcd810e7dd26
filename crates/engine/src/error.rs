//! The engine's one error type, [`EngineError`], and its [`Result`]: what every public function of
//! the engine fails with, and what a failed torrent keeps (its lifecycle, the wait on it).
//!
//! Each variant is something a caller can act on (add a torrent already there, remove one that is
//! not, a disk that refuses a write, a peer that refused a piece...) and carries what it is about (the
//! info-hash, the path, the peer's address). The message ([`std::fmt::Display`]) is one line, the one
//! users see, and it is complete: it already includes the underlying error's text, so `source()` is
//! left empty (an `anyhow` chain printed with `{:#}` would say it twice); the underlying
//! [`io::Error`] is reached through [`EngineError::io_error`]. An error is cheap to clone (its I/O
//! source is shared), so a torrent's failure can sit in its lifecycle and in the channel its waiters
//! watch.
//!
//! Code under one connection (`conn`, `peer`, `ext`, `sender`, `metadata`'s peer task) keeps
//! `anyhow` inside: its errors end that connection and are logged, they never reach a caller.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use btorrent_proto::types::InfoHash;
use btorrent_proto::wire::handshake::HandshakeError;

/// The engine's result.
pub type Result<T> = std::result::Result<T, EngineError>;

/// Why an engine call failed, or why a torrent failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// The session cannot listen for peers on this address.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        addr: SocketAddr,
        error: Arc<io::Error>,
    },
    /// The session's DHT node cannot start (`addr` is the UDP address it tried).
    #[error("cannot start the DHT on udp {addr}: {message}")]
    DhtStart { addr: String, message: String },
    /// The DHT node was stopped with its session.
    #[error("the DHT is stopped")]
    DhtStopped,
    /// An announce on the DHT failed.
    #[error("{0}")]
    DhtAnnounce(String),
    /// Storing a mutable item (BEP 44/46) in the DHT failed.
    #[error("publishing in the DHT failed: {0}")]
    DhtPut(String),
    /// The session runs no DHT node (the settings leave it out).
    #[error("no DHT node runs (dht is off in the settings): mutable links (BEP 46) need one")]
    NoDht,
    /// The session is shutting down: it takes nothing new.
    #[error("the session is shutting down")]
    ShuttingDown,
    /// A torrent with this info-hash is in the session already.
    #[error("{name} ({info_hash}) is already added")]
    AlreadyAdded { name: String, info_hash: InfoHash },
    /// No torrent with this info-hash in the session.
    #[error("no torrent {info_hash} in this session")]
    NotFound { info_hash: InfoHash },
    /// The torrent was removed (or its session shut down) before the call could end.
    #[error("{name} was removed")]
    Removed { name: String },
    /// A file selection with the wrong number of priorities.
    #[error("{name} has {files} files, the selection names {given}")]
    SelectionLength {
        name: String,
        files: usize,
        given: usize,
    },
    /// A file index past the torrent's files.
    #[error("{name} has no file {index} (it has {files}, from 0)")]
    NoSuchFile {
        name: String,
        index: usize,
        files: usize,
    },
    /// A verified piece could not be written under the data folder `dir`.
    #[error("cannot write piece {index} under {}: {error}", dir.display())]
    WritePiece {
        index: u32,
        dir: PathBuf,
        error: Arc<io::Error>,
    },
    /// The empty files of a finished torrent could not be created under `dir`.
    #[error("cannot create the empty files: {error}")]
    CreateFiles { dir: PathBuf, error: Arc<io::Error> },
    /// The data could not be moved to `to`.
    #[error("cannot move {name} to {}: {error}", to.display())]
    Move {
        name: String,
        to: PathBuf,
        error: Arc<io::Error>,
    },
    /// File paths given for a torrent that cannot be its files' (see `AddOptions::file_paths`), or
    /// a rename that cannot be made (`TorrentHandle::rename_path`).
    #[error("{name}: {why}")]
    BadPath { name: String, why: String },
    /// A tracker URL given for a torrent is not shaped like one (`scheme://host...`).
    #[error("{name}: {why}")]
    BadTracker { name: String, why: String },
    /// A move of the torrent's data was asked while another is under way.
    #[error("{name} is being moved already")]
    MoveUnderWay { name: String },
    /// A hybrid torrent's SHA-1 and its v2 merkle root disagree on a piece that arrived: one side
    /// describes other data than the other (a broken or hostile torrent), so the v1 and v2 swarms
    /// cannot share it.
    #[error("{name}: its v1 and v2 hashes disagree on piece {index} (a broken hybrid torrent)")]
    InconsistentHybrid { name: String, index: u32 },
    /// None of the torrent's files is where its data was (its resume data says pieces were
    /// there): a disk not mounted, a folder moved or deleted. Nothing is downloaded into the empty
    /// place until a resume asks for it (or the torrent is pointed at the data). `path` is its file
    /// or top folder.
    #[error(
        "its data is gone from {} (a disk not mounted? moved elsewhere?): point it at the data \
         where it is now, or resume it to download it again",
        path.display()
    )]
    DataMissing { path: PathBuf },
    /// The check of the data on disk broke off (its task failed).
    #[error("checking the data failed: {0}")]
    CheckFailed(String),
    /// The torrent has failed (stopped for good); `cause` is its first failure.
    #[error("{name} has failed: {cause}")]
    TorrentFailed {
        name: String,
        cause: Box<EngineError>,
    },
    /// A background task of the engine failed (panicked or was cancelled).
    #[error("{0}")]
    Task(String),
    /// No TCP connection to the peer within the time allowed.
    #[error("connecting to {addr} timed out")]
    ConnectTimeout { addr: SocketAddr },
    /// The peer cannot be connected to, or the connection broke.
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        addr: SocketAddr,
        error: Arc<io::Error>,
    },
    /// The peer's handshake failed: another torrent, not BitTorrent, too slow, hung up.
    #[error("handshake with {addr} failed: {error}")]
    Handshake {
        addr: SocketAddr,
        error: Arc<HandshakeError>,
    },
    /// The peer refused or botched what was asked (`what` says how, after its address).
    #[error("{addr} {what}")]
    Peer { addr: SocketAddr, what: String },
    /// The peer did not send the piece in time.
    #[error("piece {index} did not arrive from {addr} in time")]
    PieceTimeout { addr: SocketAddr, index: u32 },
    /// The piece the peer sent does not match the torrent's SHA-1.
    #[error("piece {index} from {addr} failed its hash check")]
    PieceHash { addr: SocketAddr, index: u32 },
    /// A piece index past the torrent's pieces.
    #[error("piece {index} does not exist ({name} has {pieces} pieces)")]
    NoSuchPiece {
        name: String,
        index: u32,
        pieces: u32,
    },
    /// No peer gave a magnet link's metadata (none known, all failed, or not in the time allowed).
    #[error("{0}")]
    MetadataNotFound(String),
    /// The metadata matched the info-hash but does not make a usable torrent.
    #[error("the metadata matches the info-hash but is not usable: {0}")]
    MetadataUnusable(String),
    /// The caller cancelled.
    #[error("cancelled")]
    Cancelled,
}

impl EngineError {
    /// Whether a torrent this failed may be taken up again ([`crate::TorrentHandle::resume`]): a
    /// write or a file creation the disk refused (full, read-only, a folder in the way), or its
    /// data gone from its folder, which its user can see to. The pieces it had were written whole before the failure. Not a torrent
    /// whose own hashes disagree, nor a data check that broke off.
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            EngineError::WritePiece { .. }
                | EngineError::CreateFiles { .. }
                | EngineError::DataMissing { .. }
        )
    }

    /// The I/O error underneath, if this is a disk or socket failure (for a failed torrent, its
    /// cause's).
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            EngineError::Listen { error, .. }
            | EngineError::WritePiece { error, .. }
            | EngineError::CreateFiles { error, .. }
            | EngineError::Move { error, .. }
            | EngineError::Connect { error, .. } => Some(error),
            EngineError::TorrentFailed { cause, .. } => cause.io_error(),
            _ => None,
        }
    }

    /// The file or folder a disk failure is about (for a failed torrent, its cause's).
    pub fn path(&self) -> Option<&Path> {
        match self {
            EngineError::WritePiece { dir, .. }
            | EngineError::CreateFiles { dir, .. }
            | EngineError::DataMissing { path: dir } => Some(dir),
            EngineError::Move { to, .. } => Some(to),
            EngineError::TorrentFailed { cause, .. } => cause.path(),
            _ => None,
        }
    }

    /// A background task that failed (`spawn_blocking`'s join error).
    pub(crate) fn task(e: tokio::task::JoinError) -> EngineError {
        EngineError::Task(e.to_string())
    }

    /// A peer that refused or botched something.
    pub(crate) fn peer(addr: SocketAddr, what: impl Into<String>) -> EngineError {
        EngineError::Peer {
            addr,
            what: what.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_with_the_cause() {
        let e = EngineError::WritePiece {
            index: 3,
            dir: PathBuf::from("/data"),
            error: Arc::new(io::Error::other("disk full")),
        };
        assert_eq!(e.to_string(), "cannot write piece 3 under /data: disk full");
        let failed = EngineError::TorrentFailed {
            name: "t".into(),
            cause: Box::new(e.clone()),
        };
        assert_eq!(
            failed.to_string(),
            "t has failed: cannot write piece 3 under /data: disk full"
        );
        assert_eq!(failed.path(), Some(Path::new("/data")));
        assert_eq!(failed.io_error().unwrap().to_string(), "disk full");
        // Said once, even through an anyhow chain.
        let chained = anyhow::Error::from(failed);
        assert_eq!(
            format!("{chained:#}"),
            "t has failed: cannot write piece 3 under /data: disk full"
        );
    }
}
