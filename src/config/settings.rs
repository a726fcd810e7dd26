//! The `[settings]` table of `torrents.toml`: fixed keys (an unknown key is an error, so a typo never
//! passes silently) and their defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `[settings]` table. Keys are fixed so scripts and tests can rely on them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Default tracker for `b-create`.
    pub tracker_url: String,
    /// Address of the embedded tracker; absent means none runs (the default applies only when the
    /// file itself is missing or has no `[settings]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracker_bind: Option<String>,
    /// Only track info-hashes registered here (private mode of the embedded tracker).
    pub tracker_private: bool,
    /// Seconds between announces the embedded tracker asks for.
    pub tracker_interval: u64,
    /// Peer wire port.
    pub listen_port: u16,
    /// Address the peer listens on and dials from.
    pub listen_ip: String,
    pub output_dir: PathBuf,
    pub torrents_dir: PathBuf,
    pub watch_dir: PathBuf,
    pub scripts_dir: PathBuf,
    /// Seconds a watched entry must stay unchanged before it is hashed.
    pub watch_quiet_secs: u64,
    /// Seconds between full rescans of the watch folder.
    pub watch_rescan_secs: u64,
    /// Operations one script run (or one event handler call) may take before it is stopped.
    pub script_max_operations: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tracker_url: "http://127.0.0.1:6969/announce".into(),
            tracker_bind: Some("127.0.0.1:6969".into()),
            tracker_private: false,
            tracker_interval: 300,
            listen_port: 6881,
            listen_ip: "0.0.0.0".into(),
            output_dir: "output".into(),
            torrents_dir: "torrents".into(),
            watch_dir: "watch".into(),
            scripts_dir: "scripts".into(),
            watch_quiet_secs: 3,
            watch_rescan_secs: 30,
            script_max_operations: 20_000_000,
        }
    }
}
