//! The control channel's messages: one JSON object per line each way.
//!
//! Requests: `{"op":"list"}`, `{"op":"pause","info_hash":"<40 hex>"}`, `resume`, `reannounce`,
//! `remove` (same shape), `{"op":"move_to","info_hash":"...","dir":"/abs/path"}`, `relocate` (same shape), `check`
//! `peers` and `trackers` (like `pause`), `{"op":"rename_path","info_hash":"...","path":"top/a.bin","name":"b.bin"}`,
//! `{"op":"dht"}`, `{"op":"port_forwarding"}`, `{"op":"fetching"}`,
//! `{"op":"choose_files","info_hash":"...","changes":[[0,"skip"]],"sequential":true,"sequential_from":3}`,
//! `{"op":"set_limits","info_hash":"...","limits":{"upload":30000,"download":null,
//! "honors_session_limits":true}}`, `{"op":"set_trackers","info_hash":"...","tiers":[["http://..."]]}`,
//! `{"op":"add","torrent":"/abs/x.torrent","data_dir":"/abs/dir","paused":false,"seeding":false}`.
//! Replies: `{"ok":true,...}` with `torrents` (for `list`), `found` (whether the torrent runs in the
//! owner), `fetching` (for `fetching`: the magnet links whose metadata it fetches), for `check` and `relocate` the `check` report when found, for `dht` the `dht` figures when the owner runs a
//! DHT node, for `peers` the connected `peers` when found, for `trackers` each tracker's URL and
//! status (`trackers`) when found, for `rename_path` every file's `paths` when
//! found; or `{"ok":false,"error":"one line"}`.

use std::io::{self, BufRead};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::engine::TorrentStats;
use crate::script::live::AfterRemove;

/// Longest request line the owner reads (a path in `move_to` is the longest part).
pub const MAX_REQUEST: usize = 16 * 1024;
/// Longest reply line a client reads (the list of every running torrent).
pub const MAX_REPLY: usize = 16 << 20;
/// How long either side waits for the other's line (or to write its own).
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    List {},
    Pause {
        info_hash: String,
    },
    Resume {
        info_hash: String,
    },
    /// Its trackers asked for peers now.
    Reannounce {
        info_hash: String,
    },
    Remove {
        info_hash: String,
        /// What torrents.toml keeps of it afterwards.
        #[serde(default)]
        after: AfterRemove,
    },
    MoveTo {
        info_hash: String,
        dir: PathBuf,
    },
    /// The torrent's data folder becomes `dir`, where its files already are; the reply carries the
    /// check of what is there.
    Relocate {
        info_hash: String,
        dir: PathBuf,
    },
    Check {
        info_hash: String,
    },
    /// A file or folder of the torrent (`path`, as its file list gives it) renamed to `name`; the
    /// reply carries every file's path after it.
    RenamePath {
        info_hash: String,
        path: PathBuf,
        name: String,
    },
    /// The torrent's connected peers.
    Peers {
        info_hash: String,
    },
    /// The torrent's trackers, with what each last answered.
    Trackers {
        info_hash: String,
    },
    /// The trackers a running torrent announces to from now on, in their tiers (BEP 12).
    SetTrackers {
        info_hash: String,
        tiers: Vec<Vec<String>>,
    },
    /// A torrent's own speed limits (`limits` as the engine's `TorrentLimits`).
    SetLimits {
        info_hash: String,
        limits: crate::engine::TorrentLimits,
    },
    /// A one-shot `start` or `seed` hands its torrent over (see [`crate::actions::Handoff`]).
    Add(crate::actions::Handoff),
    /// File priorities by index, and the order of new pieces as given (see
    /// [`crate::actions::choose_files`]).
    ChooseFiles {
        info_hash: String,
        changes: Vec<(usize, crate::engine::FilePriority)>,
        #[serde(flatten)]
        order: crate::actions::OrderChange,
    },
    Dht {},
    /// The magnet links whose metadata is being fetched.
    Fetching {},
    /// The address ranges of the blocklist in force.
    Blocklist {},
    /// How port forwarding on the router stands.
    PortForwarding {},
}

/// One running torrent in a `list` reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Running {
    pub info_hash: String,
    #[serde(flatten)]
    pub stats: TorrentStats,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torrents: Option<Vec<Running>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fetching: Option<Vec<crate::engine::MetadataFetch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Box<crate::engine::CheckReport>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dht: Option<Box<crate::engine::DhtStats>>,
    /// A `port_forwarding` reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forwarding: Option<Box<crate::engine::PortForwarding>>,
    /// A `blocklist` reply: the address ranges in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ranges: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<Vec<crate::engine::PeerInfo>>,
    /// A `peers` reply's web seeds, beside its peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_seeds: Option<Vec<crate::engine::WebSeedStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trackers: Option<Vec<(String, crate::engine::TrackerStatus)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<PathBuf>>,
}

impl Reply {
    pub fn error(message: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            error: Some(message.into()),
            ..Default::default()
        }
    }

    pub fn found(found: bool) -> Reply {
        Reply {
            ok: true,
            found: Some(found),
            ..Default::default()
        }
    }

    /// The reply as one line, newline included.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("a reply always serialises");
        s.push('\n');
        s
    }
}

/// Reads one line of at most `max` bytes (newline excluded) from `r`. `Ok(None)` at the end of the
/// stream; an error for a longer line (what was read of it is dropped) or one that is not UTF-8.
pub fn read_line(r: &mut impl BufRead, max: usize) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            if line.is_empty() {
                return Ok(None);
            }
            break;
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if line.len() + chunk.len() > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line longer than {max} bytes"),
            ));
        }
        line.extend_from_slice(chunk);
        match done {
            Some(n) => {
                r.consume(n);
                break;
            }
            None => {
                let n = chunk.len();
                r.consume(n);
            }
        }
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_unknown_ones_are_refused() {
        let r: Request = serde_json::from_str(r#"{"op":"pause","info_hash":"ab"}"#).unwrap();
        assert_eq!(
            r,
            Request::Pause {
                info_hash: "ab".into()
            }
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"list"}"#).unwrap(),
            Request::List {}
        );
        let add: Request =
            serde_json::from_str(r#"{"op":"add","torrent":"/t/x.torrent","data_dir":"/d"}"#)
                .unwrap();
        let Request::Add(h) = &add else {
            panic!("{add:?}")
        };
        assert_eq!((h.paused, h.seeding, h.peers.len()), (false, false, 0));
        let again: Request = serde_json::from_str(&serde_json::to_string(&add).unwrap()).unwrap();
        assert_eq!(again, add);
        // The order of new pieces, as a one-shot command hands it over.
        let choose: Request = serde_json::from_str(
            r#"{"op":"choose_files","info_hash":"ab","changes":[[0,"skip"]],"sequential":true,"sequential_from":3}"#,
        )
        .unwrap();
        let Request::ChooseFiles { order, .. } = &choose else {
            panic!("{choose:?}")
        };
        assert_eq!(
            (order.sequential, order.sequential_from),
            (Some(true), Some(3))
        );
        let again: Request =
            serde_json::from_str(&serde_json::to_string(&choose).unwrap()).unwrap();
        assert_eq!(again, choose);
        for bad in [
            r#"{"op":"format_disk"}"#,
            r#"{"op":"pause"}"#,
            r#"{"op":"list","extra":1}"#,
            "[]",
            "",
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lines_are_bounded() {
        let mut r = io::Cursor::new(b"short\nmuch longer line\nx".to_vec());
        assert_eq!(read_line(&mut r, 8).unwrap().as_deref(), Some("short"));
        assert!(read_line(&mut r, 8).is_err());
        let mut r = io::Cursor::new(b"abc".to_vec());
        assert_eq!(read_line(&mut r, 8).unwrap().as_deref(), Some("abc"));
        assert_eq!(read_line(&mut r, 8).unwrap(), None);
    }
}
