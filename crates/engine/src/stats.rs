//! The one snapshot of a torrent, [`TorrentStats`], and its lifecycle word, [`TorrentState`]: what
//! [`crate::TorrentHandle::stats`] returns, what the front ends show (the script host's handles, the
//! shell, the RPC) and what crosses the app's control socket as JSON. Progress and completion are
//! computed here, once, as its methods.

use std::path::PathBuf;

use crate::{FileStatus, TorrentLimits};

/// A torrent's state as front ends see it: the report of its one stored lifecycle (its moves are
/// listed at the top of the torrent module); a paused torrent shows `Paused` whatever phase it
/// resumes to. With files skipped ([`crate::selection`]), `Seeding` means done with every wanted
/// file: it seeds what it has, and goes back to `Downloading` if a file it lacks is wanted again.
/// In JSON it is its text (`"seeding"`, `"error: disk full"`), as [`std::fmt::Display`] writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", from = "String")]
pub enum TorrentState {
    #[default]
    Checking,
    Downloading,
    Seeding,
    Paused,
    Error(String),
}

impl std::fmt::Display for TorrentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TorrentState::Checking => f.write_str("checking"),
            TorrentState::Downloading => f.write_str("downloading"),
            TorrentState::Seeding => f.write_str("seeding"),
            TorrentState::Paused => f.write_str("paused"),
            TorrentState::Error(e) => write!(f, "error: {e}"),
        }
    }
}

impl TorrentState {
    /// The state's one word: `checking`, `downloading`, `seeding`, `paused` or `error` (its message
    /// is [`TorrentState::error`]).
    pub fn word(&self) -> &'static str {
        match self {
            TorrentState::Checking => "checking",
            TorrentState::Downloading => "downloading",
            TorrentState::Seeding => "seeding",
            TorrentState::Paused => "paused",
            TorrentState::Error(_) => "error",
        }
    }

    /// What went wrong, for a torrent that failed.
    pub fn error(&self) -> Option<&str> {
        match self {
            TorrentState::Error(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TorrentState> for String {
    fn from(s: TorrentState) -> String {
        s.to_string()
    }
}

/// Reads what [`std::fmt::Display`] writes; any other text is an error state saying it.
impl From<String> for TorrentState {
    fn from(s: String) -> TorrentState {
        match s.as_str() {
            "checking" => TorrentState::Checking,
            "downloading" => TorrentState::Downloading,
            "seeding" => TorrentState::Seeding,
            "paused" => TorrentState::Paused,
            _ => TorrentState::Error(match s.strip_prefix("error: ") {
                Some(e) => e.to_string(),
                None => s,
            }),
        }
    }
}

/// A snapshot of one torrent: what every front end shows of it (the script host's handles, the
/// shell, the RPC), and what crosses the control socket as JSON between a one-shot command and the
/// shell or daemon that runs the torrent. Progress and completion are its methods
/// ([`TorrentStats::progress`], [`TorrentStats::is_complete`]), computed nowhere else.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TorrentStats {
    /// The torrent's name (its info dictionary's).
    pub name: String,
    pub state: TorrentState,
    /// Its data check is over, paused or not (a torrent paused while checking reports `Paused`):
    /// `bytes_left` says what it lacks, rather than counting every unverified piece.
    pub checked: bool,
    pub pieces_have: usize,
    pub pieces_total: usize,
    /// Bytes of verified pieces we hold.
    pub bytes_verified: u64,
    pub bytes_total: u64,
    /// Payload bytes received from peers in this session (duplicates and bad pieces included).
    pub downloaded: u64,
    /// Payload bytes sent to peers in this session.
    pub uploaded: u64,
    /// Smoothed rates, bytes per second.
    pub down_rate: u64,
    pub up_rate: u64,
    /// Connected peers, and how many of them have every piece.
    pub peers: usize,
    pub seeds: usize,
    pub data_dir: PathBuf,
    /// Pieces we had whose data on disk then failed its hash (read for upload, or re-checked), in
    /// this session: each was withdrawn and downloaded again.
    pub pieces_withdrawn: u64,
    /// Pieces hashed from disk by data checks in this session (when added, for pieces the resume
    /// data does not vouch for; and by `check`): 0 for a torrent whose resume data vouched for all.
    pub pieces_checked: u64,
    /// New connections are offered one piece at a time ([`crate::superseed`]): we are the torrent's only
    /// known seed and some pieces are not in the swarm yet.
    pub super_seeding: bool,
    /// Bytes of the pieces wanted or had, and of those wanted and not had yet (Transmission's
    /// `sizeWhenDone`, `leftUntilDone`): every piece is wanted unless files are skipped.
    pub bytes_wanted: u64,
    pub bytes_left: u64,
    /// New pieces are fetched in order.
    pub sequential: bool,
    /// The piece that order starts at (it wraps round to the first).
    pub sequential_from: u32,
    /// Its data is being moved ([`crate::TorrentHandle::move_to`]): the torrent is paused until the
    /// files are in their new place.
    pub moving: bool,
    /// Every file, in the torrent's order.
    pub files: Vec<FileStatus>,
    /// The torrent's own speed limits ([`crate::limits`]).
    pub limits: TorrentLimits,
    /// Web seeds ([`crate::web_seed`]) with a request under way now.
    pub web_seeds_sending: usize,
    /// When it started, last moved data and completed; how long it downloaded and seeded
    /// ([`crate::clock`]).
    pub times: crate::TorrentTimes,
}

impl TorrentStats {
    /// Done over the wanted bytes, 0.0 to 1.0 (like Transmission's `percentDone`): 1.0 when done
    /// with what is wanted, even with files skipped.
    pub fn progress(&self) -> f64 {
        if self.bytes_wanted == 0 {
            1.0
        } else {
            self.bytes_wanted.saturating_sub(self.bytes_left) as f64 / self.bytes_wanted as f64
        }
    }

    /// Every wanted piece is verified on disk (every piece, or with files skipped, a torrent
    /// seeding what it wanted), and no data check is under way.
    pub fn is_complete(&self) -> bool {
        self.state != TorrentState::Checking
            && (self.pieces_have == self.pieces_total
                || (self.bytes_left == 0 && self.state == TorrentState::Seeding))
    }

    /// Fetching data. A torrent still checking its data is not counted: its progress grows as the
    /// check goes, complete or not.
    pub fn is_downloading(&self) -> bool {
        self.state == TorrentState::Downloading
    }

    /// How far the data check has gone, 0.0 to 1.0 (0.0 when none runs).
    pub fn check_progress(&self) -> f64 {
        if self.state == TorrentState::Checking {
            self.pieces_have as f64 / self.pieces_total.max(1) as f64
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(state: TorrentState, have: usize, wanted: u64, left: u64) -> TorrentStats {
        TorrentStats {
            name: "t".into(),
            state,
            pieces_have: have,
            pieces_total: 4,
            bytes_wanted: wanted,
            bytes_left: left,
            ..Default::default()
        }
    }

    #[test]
    fn progress_and_completion_are_over_the_wanted_pieces() {
        let s = stats(TorrentState::Downloading, 1, 400, 300);
        assert_eq!(s.progress(), 0.25);
        assert!(!s.is_complete() && s.is_downloading());
        // Files skipped: done with what is wanted, though pieces are missing.
        let s = stats(TorrentState::Seeding, 2, 200, 0);
        assert_eq!(s.progress(), 1.0);
        assert!(s.is_complete());
        // Nothing wanted counts as done; a check under way is never complete.
        assert_eq!(stats(TorrentState::Seeding, 0, 0, 0).progress(), 1.0);
        assert!(!stats(TorrentState::Checking, 4, 400, 0).is_complete());
        assert_eq!(
            stats(TorrentState::Checking, 1, 400, 300).check_progress(),
            0.25
        );
        assert_eq!(
            stats(TorrentState::Seeding, 4, 400, 0).check_progress(),
            0.0
        );
    }

    #[test]
    fn a_snapshot_round_trips_through_json_with_its_state_as_text() {
        let mut s = stats(TorrentState::Error("disk full".into()), 1, 400, 300);
        s.files = vec![FileStatus {
            path: "t/a".into(),
            length: 400,
            done: 100,
            priority: crate::FilePriority::High,
            padding: false,
        }];
        s.limits.upload = Some(1000);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "error: disk full");
        assert_eq!(serde_json::from_value::<TorrentStats>(json).unwrap(), s);
        for st in [
            TorrentState::Checking,
            TorrentState::Downloading,
            TorrentState::Seeding,
            TorrentState::Paused,
        ] {
            let text = serde_json::to_string(&st).unwrap();
            assert_eq!(text, format!("\"{}\"", st.word()));
            assert_eq!(serde_json::from_str::<TorrentState>(&text).unwrap(), st);
        }
        assert_eq!(TorrentState::Error("x".into()).error(), Some("x"));
        // Fields it does not know are left at their defaults, so an older peer's JSON still reads.
        let old: TorrentStats = serde_json::from_str(r#"{"name":"t","state":"seeding"}"#).unwrap();
        assert_eq!((old.name.as_str(), old.state), ("t", TorrentState::Seeding));
    }
}
