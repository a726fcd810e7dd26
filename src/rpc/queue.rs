//! The download queue in the RPC: `session-get`'s and `session-set`'s `download-queue-enabled`,
//! `download-queue-size`, `queue-stalled-enabled` and `queue-stalled-minutes` (torrents.toml's
//! `download_queue`, `download_queue_size` and `queue_stalled_minutes`). The queue itself is
//! [`crate::queue`]; `torrent-get`'s `queuePosition` and `status` 3, `torrent-start-now` and
//! `queue-move-*` are in [`super::fields`] and [`super::torrents`]. btorrent has no seeding queue
//! (every complete torrent seeds): `seed-queue-enabled` is false and cannot be turned on.

use serde_json::{json, Map, Value};

use crate::config::{Settings, DEFAULT_QUEUE_STALLED_MINUTES};

/// `session-set`'s queue keys.
pub const SESSION_KEYS: [&str; 5] = [
    "download-queue-enabled",
    "download-queue-size",
    "queue-stalled-enabled",
    "queue-stalled-minutes",
    "seed-queue-enabled",
];

/// `session-get`'s queue fields.
pub fn session_fields(s: &Settings) -> Value {
    let size = s
        .download_queue_size
        .unwrap_or(crate::config::DEFAULT_DOWNLOAD_QUEUE_SIZE);
    let stalled = s
        .queue_stalled_minutes
        .unwrap_or(DEFAULT_QUEUE_STALLED_MINUTES);
    json!({
        "download-queue-enabled": s.download_queue,
        "download-queue-size": size,
        "queue-stalled-enabled": stalled > 0,
        "queue-stalled-minutes": stalled,
        "seed-queue-enabled": false,
        "seed-queue-size": 0,
    })
}

/// The queue settings as they become with `session-set`'s keys, every value checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    pub enabled: bool,
    pub size: Option<u32>,
    pub stalled_minutes: Option<u64>,
}

/// `s`'s queue settings with `args` applied. A stall time sent with `queue-stalled-enabled` false
/// is not kept (0 is what torrents.toml says for "off").
pub fn session_set(args: &Map<String, Value>, s: &Settings) -> Result<QueueSettings, String> {
    let mut q = QueueSettings {
        enabled: s.download_queue,
        size: s.download_queue_size,
        stalled_minutes: s.queue_stalled_minutes,
    };
    if super::switch_arg(args, "seed-queue-enabled")? == Some(true) {
        return Err(
            "seed-queue-enabled: btorrent has no seeding queue (every complete torrent seeds)"
                .into(),
        );
    }
    if let Some(on) = super::switch_arg(args, "download-queue-enabled")? {
        q.enabled = on;
    }
    if let Some(v) = args.get("download-queue-size") {
        let n = v
            .as_u64()
            .filter(|n| (1..=u32::MAX as u64).contains(n))
            .ok_or_else(|| {
                format!(
                    "download-queue-size must be a whole number of torrents, 1 or more, not {v}"
                )
            })?;
        q.size = Some(n as u32);
    }
    let minutes = args
        .get("queue-stalled-minutes")
        .map(|v| {
            v.as_u64().filter(|m| *m > 0).ok_or_else(|| {
                format!(
                    "queue-stalled-minutes must be a whole number of minutes, 1 or more, not {v}"
                )
            })
        })
        .transpose()?;
    let enabled = super::switch_arg(args, "queue-stalled-enabled")?;
    q.stalled_minutes = match (enabled, minutes) {
        (Some(false), _) => Some(0),
        (_, Some(m)) => Some(m),
        // Turned on without a time: the one it had, else the default.
        (Some(true), None) => match q.stalled_minutes {
            Some(0) => None,
            m => m,
        },
        (None, None) => q.stalled_minutes,
    };
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn queue_settings_are_checked_and_follow_their_switches() {
        let s = Settings::default();
        let q = session_set(
            &args(json!({"download-queue-enabled": true, "download-queue-size": 2})),
            &s,
        )
        .unwrap();
        assert_eq!(
            q,
            QueueSettings {
                enabled: true,
                size: Some(2),
                stalled_minutes: None
            }
        );
        let off = session_set(&args(json!({"queue-stalled-enabled": false})), &s).unwrap();
        assert_eq!(off.stalled_minutes, Some(0));
        let set = Settings {
            queue_stalled_minutes: Some(0),
            ..Settings::default()
        };
        let on = session_set(&args(json!({"queue-stalled-enabled": true})), &set).unwrap();
        assert_eq!(on.stalled_minutes, None, "back on at the default");
        let ten = session_set(&args(json!({"queue-stalled-minutes": 10})), &set).unwrap();
        assert_eq!(ten.stalled_minutes, Some(10));
        for (bad, says) in [
            (json!({"download-queue-size": 0}), "1 or more"),
            (json!({"download-queue-size": "5"}), "whole number"),
            (json!({"download-queue-enabled": 1}), "true or false"),
            (
                json!({"queue-stalled-minutes": -3}),
                "whole number of minutes",
            ),
            (json!({"seed-queue-enabled": true}), "no seeding queue"),
        ] {
            let e = session_set(&args(bad.clone()), &s).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(session_set(&args(json!({"seed-queue-enabled": false})), &s).is_ok());
        let f = session_fields(&Settings {
            download_queue: true,
            download_queue_size: Some(3),
            ..Settings::default()
        });
        assert_eq!(f["download-queue-size"], 3);
        assert_eq!(f["queue-stalled-minutes"], DEFAULT_QUEUE_STALLED_MINUTES);
        assert_eq!(f["queue-stalled-enabled"], true);
    }
}
