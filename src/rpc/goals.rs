//! Seeding goals in the RPC: `torrent-set`'s `seedRatioLimit`/`seedRatioMode` and
//! `seedIdleLimit`/`seedIdleMode` (checked here, recorded by [`crate::actions::set_goals`]),
//! `torrent-get`'s goal fields and `isFinished`, and the session's `seedRatioLimit`/
//! `seedRatioLimited` and `idle-seeding-limit`/`idle-seeding-limit-enabled`. The task that stops
//! torrents at their goals is [`crate::goals`].

use serde_json::{json, Map, Value};

use crate::config::{GoalMode, ManagedTorrent, SeedGoals, Settings};

/// `torrent-set`'s goal keys.
pub const TORRENT_KEYS: [&str; 4] = [
    "seedRatioLimit",
    "seedRatioMode",
    "seedIdleLimit",
    "seedIdleMode",
];

/// `session-set`'s goal keys.
pub const SESSION_KEYS: [&str; 4] = [
    "seedRatioLimit",
    "seedRatioLimited",
    "idle-seeding-limit",
    "idle-seeding-limit-enabled",
];

fn present<'a>(args: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    args.get(key).filter(|v| !v.is_null())
}

fn ratio_value(key: &str, v: &Value) -> Result<f64, String> {
    v.as_f64()
        .filter(|&r| crate::config::is_ratio(r))
        .ok_or_else(|| format!("{key} must be a ratio, a number of 0 or more, not {v}"))
}

fn minutes_value(key: &str, v: &Value) -> Result<u64, String> {
    v.as_u64()
        .ok_or_else(|| format!("{key} must be a whole number of minutes, 0 or more, not {v}"))
}

fn mode_value(key: &str, v: &Value) -> Result<GoalMode, String> {
    v.as_i64().and_then(GoalMode::from_code).ok_or_else(|| {
        format!("{key} must be 0 (the session's goal), 1 (the torrent's own) or 2 (none), not {v}")
    })
}

/// The goals `old` becomes with `torrent-set`'s keys, every value checked.
pub fn torrent_set(args: &Map<String, Value>, old: SeedGoals) -> Result<SeedGoals, String> {
    let mut g = old;
    if let Some(v) = present(args, "seedRatioMode") {
        g.seed_ratio_mode = mode_value("seedRatioMode", v)?;
    }
    if let Some(v) = present(args, "seedRatioLimit") {
        g.seed_ratio_limit = Some(ratio_value("seedRatioLimit", v)?);
    }
    if let Some(v) = present(args, "seedIdleMode") {
        g.seed_idle_mode = mode_value("seedIdleMode", v)?;
    }
    if let Some(v) = present(args, "seedIdleLimit") {
        g.seed_idle_minutes = Some(minutes_value("seedIdleLimit", v)?);
    }
    Ok(g)
}

/// A `torrent-get` field of the goals (`None` for other fields): `entry`'s goals (the defaults for
/// a torrent without one), `isFinished` while a goal keeps it `stopped`.
pub fn field(f: &str, entry: Option<&ManagedTorrent>, stopped: bool) -> Option<Value> {
    goals_field(f, entry.map(|e| e.goals).unwrap_or_default(), stopped)
}

/// A `torrent-get` field of the goals `g` (`None` for other fields).
pub fn goals_field(f: &str, g: SeedGoals, stopped: bool) -> Option<Value> {
    Some(match f {
        "seedRatioLimit" => json!(g.seed_ratio_limit.unwrap_or(0.0)),
        "seedRatioMode" => json!(g.seed_ratio_mode.code()),
        "seedIdleLimit" => json!(g.seed_idle_minutes.unwrap_or(0)),
        "seedIdleMode" => json!(g.seed_idle_mode.code()),
        "isFinished" => json!(g.finished && stopped),
        _ => return None,
    })
}

/// `session-get`'s goal fields.
pub fn session_fields(s: &Settings) -> Value {
    json!({
        "seedRatioLimit": s.seed_ratio_limit.unwrap_or(0.0),
        "seedRatioLimited": s.seed_ratio_limit.is_some(),
        "idle-seeding-limit": s.seed_idle_minutes.unwrap_or(0),
        "idle-seeding-limit-enabled": s.seed_idle_minutes.is_some(),
    })
}

/// One session goal switched by `enabled_key`: the new value (`None` = no goal), or `old` when
/// neither key is sent. As with the speed limits, a value for a goal that is off leaves it off.
fn session_goal<T: Copy>(
    args: &Map<String, Value>,
    key: &str,
    enabled_key: &str,
    old: Option<T>,
    parse: impl Fn(&str, &Value) -> Result<T, String>,
) -> Result<Option<T>, String> {
    let enabled = super::switch_arg(args, enabled_key)?;
    let value = present(args, key).map(|v| parse(key, v)).transpose()?;
    match (enabled, value) {
        (Some(false), _) => Ok(None),
        (Some(true), Some(v)) => Ok(Some(v)),
        (None, Some(v)) if old.is_some() => Ok(Some(v)),
        (None, Some(_)) => Ok(None),
        (Some(true), None) => old
            .map(Some)
            .ok_or_else(|| format!("{enabled_key} needs {key}: give the goal")),
        (None, None) => Ok(old),
    }
}

/// The session's goals (`seed_ratio_limit`, `seed_idle_minutes`) with `session-set`'s keys, every
/// value checked.
pub fn session_set(
    args: &Map<String, Value>,
    s: &Settings,
) -> Result<(Option<f64>, Option<u64>), String> {
    let ratio = session_goal(
        args,
        "seedRatioLimit",
        "seedRatioLimited",
        s.seed_ratio_limit,
        ratio_value,
    )?;
    let idle = session_goal(
        args,
        "idle-seeding-limit",
        "idle-seeding-limit-enabled",
        s.seed_idle_minutes,
        minutes_value,
    )?;
    Ok((ratio, idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn torrent_goals_are_checked_and_merged() {
        let g = torrent_set(
            &args(json!({"seedRatioMode": 1, "seedRatioLimit": 0.5})),
            SeedGoals::default(),
        )
        .unwrap();
        assert_eq!(
            (g.seed_ratio_mode, g.seed_ratio_limit),
            (GoalMode::Single, Some(0.5))
        );
        let g2 = torrent_set(&args(json!({"seedIdleMode": 2})), g).unwrap();
        assert_eq!(g2.seed_ratio_limit, Some(0.5));
        assert_eq!(g2.seed_idle_mode, GoalMode::Unlimited);
        for (bad, says) in [
            (json!({"seedRatioMode": 3}), "seedRatioMode must be 0"),
            (
                json!({"seedRatioLimit": -1}),
                "seedRatioLimit must be a ratio",
            ),
            (
                json!({"seedIdleLimit": 1.5}),
                "seedIdleLimit must be a whole",
            ),
            (json!({"seedIdleMode": "x"}), "seedIdleMode must be 0"),
        ] {
            let e = torrent_set(&args(bad), g).unwrap_err();
            assert!(e.contains(says), "{e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn session_goals_follow_their_switch() {
        let s = Settings::default();
        let on = args(json!({"seedRatioLimit": 2, "seedRatioLimited": true,
                             "idle-seeding-limit": 30, "idle-seeding-limit-enabled": true}));
        assert_eq!(session_set(&on, &s).unwrap(), (Some(2.0), Some(30)));
        // A value alone for a goal that is off leaves it off.
        let alone = args(json!({"seedRatioLimit": 2}));
        assert_eq!(session_set(&alone, &s).unwrap(), (None, None));
        let set = Settings {
            seed_ratio_limit: Some(1.0),
            seed_idle_minutes: Some(5),
            ..Settings::default()
        };
        assert_eq!(session_set(&alone, &set).unwrap(), (Some(2.0), Some(5)));
        let off = args(json!({"idle-seeding-limit-enabled": false}));
        assert_eq!(session_set(&off, &set).unwrap(), (Some(1.0), None));
        let e = session_set(&args(json!({"seedRatioLimited": true})), &s).unwrap_err();
        assert_eq!(e, "seedRatioLimited needs seedRatioLimit: give the goal");
    }
}
