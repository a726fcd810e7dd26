//! The queues in the RPC: `session-get`'s and `session-set`'s `download-queue-enabled`,
//! `download-queue-size`, `seed-queue-enabled`, `seed-queue-size`, `queue-stalled-enabled` and
//! `queue-stalled-minutes` (torrents.toml's `download_queue`, `download_queue_size`, `seed_queue`,
//! `seed_queue_size` and `queue_stalled_minutes`). The queues themselves are [`crate::queue`];
//! `torrent-get`'s `queuePosition` and `status` 3 and 5, `torrent-start-now` and `queue-move-*`
//! are in [`super::fields`] and [`super::torrents`].

use serde_json::{json, Map, Value};

use crate::config::{
    Settings, DEFAULT_DOWNLOAD_QUEUE_SIZE, DEFAULT_QUEUE_STALLED_MINUTES, DEFAULT_SEED_QUEUE_SIZE,
};

/// `session-set`'s queue keys.
pub const SESSION_KEYS: [&str; 6] = [
    "download-queue-enabled",
    "download-queue-size",
    "queue-stalled-enabled",
    "queue-stalled-minutes",
    "seed-queue-enabled",
    "seed-queue-size",
];

/// `session-get`'s queue fields.
pub fn session_fields(s: &Settings) -> Value {
    let stalled = s
        .queue_stalled_minutes
        .unwrap_or(DEFAULT_QUEUE_STALLED_MINUTES);
    json!({
        "download-queue-enabled": s.download_queue,
        "download-queue-size": s.download_queue_size.unwrap_or(DEFAULT_DOWNLOAD_QUEUE_SIZE),
        "queue-stalled-enabled": stalled > 0,
        "queue-stalled-minutes": stalled,
        "seed-queue-enabled": s.seed_queue,
        "seed-queue-size": s.seed_queue_size.unwrap_or(DEFAULT_SEED_QUEUE_SIZE),
    })
}

/// One queue's settings: on or off, and its size (`None`: the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneQueue {
    pub enabled: bool,
    pub size: Option<u32>,
}

/// The queue settings as they become with `session-set`'s keys, every value checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    pub downloads: OneQueue,
    pub seeds: OneQueue,
    pub stalled_minutes: Option<u64>,
}

impl QueueSettings {
    /// Writes these into `s`.
    pub fn apply(&self, s: &mut Settings) {
        s.download_queue = self.downloads.enabled;
        s.download_queue_size = self.downloads.size;
        s.seed_queue = self.seeds.enabled;
        s.seed_queue_size = self.seeds.size;
        s.queue_stalled_minutes = self.stalled_minutes;
    }
}

/// `queue` with `args`' `<prefix>-queue-enabled` and `<prefix>-queue-size` applied.
fn one_queue(
    args: &Map<String, Value>,
    prefix: &str,
    mut queue: OneQueue,
) -> Result<OneQueue, String> {
    if let Some(on) = super::switch_arg(args, &format!("{prefix}-queue-enabled"))? {
        queue.enabled = on;
    }
    let key = format!("{prefix}-queue-size");
    if let Some(v) = args.get(&key) {
        let n = v
            .as_u64()
            .filter(|n| (1..=u32::MAX as u64).contains(n))
            .ok_or_else(|| {
                format!("{key} must be a whole number of torrents, 1 or more, not {v}")
            })?;
        queue.size = Some(n as u32);
    }
    Ok(queue)
}

/// `s`'s queue settings with `args` applied. A stall time sent with `queue-stalled-enabled` false
/// is not kept (0 is what torrents.toml says for "off").
pub fn session_set(args: &Map<String, Value>, s: &Settings) -> Result<QueueSettings, String> {
    let downloads = one_queue(
        args,
        "download",
        OneQueue {
            enabled: s.download_queue,
            size: s.download_queue_size,
        },
    )?;
    let seeds = one_queue(
        args,
        "seed",
        OneQueue {
            enabled: s.seed_queue,
            size: s.seed_queue_size,
        },
    )?;
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
    let stalled_minutes = match (enabled, minutes) {
        (Some(false), _) => Some(0),
        (_, Some(m)) => Some(m),
        // Turned on without a time: the one it had, else the default.
        (Some(true), None) => match s.queue_stalled_minutes {
            Some(0) => None,
            m => m,
        },
        (None, None) => s.queue_stalled_minutes,
    };
    Ok(QueueSettings {
        downloads,
        seeds,
        stalled_minutes,
    })
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
                downloads: OneQueue {
                    enabled: true,
                    size: Some(2)
                },
                seeds: OneQueue {
                    enabled: false,
                    size: None
                },
                stalled_minutes: None
            }
        );
        let seeds = session_set(
            &args(json!({"seed-queue-enabled": true, "seed-queue-size": 4})),
            &s,
        )
        .unwrap();
        assert_eq!(
            (seeds.seeds, seeds.downloads.enabled),
            (
                OneQueue {
                    enabled: true,
                    size: Some(4)
                },
                false
            )
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
            (json!({"seed-queue-size": 0}), "seed-queue-size must be"),
            (json!({"seed-queue-enabled": "yes"}), "true or false"),
        ] {
            let e = session_set(&args(bad.clone()), &s).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let f = session_fields(&Settings {
            download_queue: true,
            download_queue_size: Some(3),
            ..Settings::default()
        });
        assert_eq!(f["download-queue-size"], 3);
        assert_eq!(f["queue-stalled-minutes"], DEFAULT_QUEUE_STALLED_MINUTES);
        assert_eq!(f["queue-stalled-enabled"], true);
        assert_eq!(
            (&f["seed-queue-enabled"], &f["seed-queue-size"]),
            (&json!(false), &json!(DEFAULT_SEED_QUEUE_SIZE))
        );
    }
}
