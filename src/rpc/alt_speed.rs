//! The alternative speed limits in the RPC (Transmission's turtle): `session-get`'s and
//! `session-set`'s `alt-speed-up`, `alt-speed-down`, `alt-speed-enabled` (torrents.toml's
//! `alt_upload_limit`, `alt_download_limit`, `alt_speed`) and their schedule, `alt-speed-time-*`
//! (`alt_speed_time`, `alt_speed_begin`, `alt_speed_end`, `alt_speed_days`; the task that follows it
//! is [`crate::alt_speed`]).

use serde_json::{json, Map, Value};

use super::session::{kbps, kbps_arg};
use crate::config::{ByteRate, Settings};

/// `session-set`'s keys of the alternative limits.
const LIMIT_KEYS: [&str; 3] = ["alt-speed-down", "alt-speed-enabled", "alt-speed-up"];
/// `session-set`'s keys of their schedule.
const SCHEDULE_KEYS: [&str; 4] = [
    "alt-speed-time-enabled",
    "alt-speed-time-begin",
    "alt-speed-time-end",
    "alt-speed-time-day",
];
/// Every `session-set` key of this module.
pub const SESSION_KEYS: [&str; 7] = [
    LIMIT_KEYS[0],
    LIMIT_KEYS[1],
    LIMIT_KEYS[2],
    SCHEDULE_KEYS[0],
    SCHEDULE_KEYS[1],
    SCHEDULE_KEYS[2],
    SCHEDULE_KEYS[3],
];

/// `session-get`'s fields of the alternative limits and their schedule.
pub fn session_fields(s: &Settings) -> Value {
    let limit = |r: Option<ByteRate>| kbps(r.and_then(ByteRate::limit));
    let times = s.alt_speed_times();
    json!({
        "alt-speed-up": limit(s.alt_upload_limit),
        "alt-speed-down": limit(s.alt_download_limit),
        "alt-speed-enabled": s.alt_speed,
        "alt-speed-time-enabled": s.alt_speed_time,
        "alt-speed-time-begin": times.begin.0,
        "alt-speed-time-end": times.end.0,
        "alt-speed-time-day": times.days.0,
    })
}

/// The alternative limits as `session-set` leaves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AltLimits {
    /// Bytes per second; `None` = none.
    pub up: Option<u64>,
    pub down: Option<u64>,
    /// In force instead of the session's limits.
    pub on: bool,
}

/// The alternative limits as `session-set`'s keys make them from `old`; `None` when no key names
/// them.
pub fn limits_set(args: &Map<String, Value>, old: &Settings) -> Result<Option<AltLimits>, String> {
    if !super::any_key(args, &LIMIT_KEYS) {
        return Ok(None);
    }
    let up = alt_limit_arg(args, "alt-speed-up")?;
    let down = alt_limit_arg(args, "alt-speed-down")?;
    let on = super::switch_arg(args, "alt-speed-enabled")?.unwrap_or(old.alt_speed);
    Ok(Some(AltLimits {
        up: up.unwrap_or(old.alt_upload_limit.and_then(ByteRate::limit)),
        down: down.unwrap_or(old.alt_download_limit.and_then(ByteRate::limit)),
        on,
    }))
}

/// The schedule as `session-set`'s `alt-speed-time-*` make it from `old`; `None` when no key
/// names it.
pub fn schedule_set(
    args: &Map<String, Value>,
    old: &Settings,
) -> Result<Option<(bool, crate::alt_speed::Schedule)>, String> {
    if !super::any_key(args, &SCHEDULE_KEYS) {
        return Ok(None);
    }
    alt_time_args(args, old).map(Some)
}

/// The schedule of the alternative limits with `session-set`'s `alt-speed-time-*` (on or off; the
/// times in minutes after midnight; the days as a mask), every value checked.
fn alt_time_args(
    args: &Map<String, Value>,
    s: &Settings,
) -> Result<(bool, crate::alt_speed::Schedule), String> {
    use crate::alt_speed::{Days, TimeOfDay};
    let mut sched = s.alt_speed_times();
    let on = super::switch_arg(args, "alt-speed-time-enabled")?.unwrap_or(s.alt_speed_time);
    let minutes = |key: &str| -> Result<Option<TimeOfDay>, String> {
        args.get(key)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| format!("{key} must be minutes after midnight, not {v}"))
                    .and_then(|m| TimeOfDay::from_minutes(m).map_err(|e| format!("{key}: {e}")))
            })
            .transpose()
    };
    if let Some(t) = minutes("alt-speed-time-begin")? {
        sched.begin = t;
    }
    if let Some(t) = minutes("alt-speed-time-end")? {
        sched.end = t;
    }
    if let Some(v) = args.get("alt-speed-time-day") {
        let n = v
            .as_u64()
            .ok_or_else(|| format!("alt-speed-time-day must be a mask of days, not {v}"))?;
        sched.days = Days::from_mask(n).map_err(|e| format!("alt-speed-time-day: {e}"))?;
    }
    Ok((on, sched))
}

/// An alternative speed limit of a `session-set` (`alt-speed-up`, `alt-speed-down`, in kB/s): the
/// new value in bytes per second (`Some(None)`: 0, unlimited), or `None` when not sent.
fn alt_limit_arg(args: &Map<String, Value>, key: &str) -> Result<Option<Option<u64>>, String> {
    args.get(key).map(|v| kbps_arg(key, v)).transpose()
}
