//! The alternative speed limits' schedule, Transmission's "turtle" clock: with `alt_speed_time`
//! on, the alternative limits (`alt_upload_limit`, `alt_download_limit`) come into force at
//! `alt_speed_begin` and go at `alt_speed_end`, local time, on the days `alt_speed_days` names. A
//! span whose end is before its begin runs past midnight and belongs to the day it began on.
//!
//! One task ([`spawn`], started with the services) looks every [`LOOK_EVERY`]. It sets
//! `alt_speed` (torrents.toml, and the running session's limits) when the schedule says otherwise
//! than at its last look, and at its first look or after the schedule itself changed; in between,
//! a hand on the switch (`-as`/`-AS`, the web client's turtle) holds until the next begin or end,
//! as in Transmission.
//!
//! In torrents.toml the times are `"HH:MM"` (or minutes after midnight, as the RPC sends them) and
//! the days `"all"`, `"weekdays"`, `"weekend"` or a list such as `"mon,wed,fri"`; the RPC speaks
//! Transmission's numbers (`alt-speed-time-begin`/`-end` in minutes, `alt-speed-time-day` a mask:
//! Sunday 1, Monday 2, ... Saturday 64).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::task::JoinHandle;

use crate::services::PeerSlot;

/// How often the schedule is looked at.
pub const LOOK_EVERY: Duration = Duration::from_secs(10);
/// Minutes in a day: times are below it.
pub const DAY_MINUTES: u32 = 24 * 60;

/// A time of day, in minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeOfDay(pub u32);

impl TimeOfDay {
    /// `"HH:MM"`.
    pub fn parse(s: &str) -> Result<TimeOfDay, String> {
        let bad = || format!("{s:?} is not a time of day (HH:MM, 00:00 to 23:59)");
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h >= 24 || m >= 60 || s.trim().len() > 5 {
            return Err(bad());
        }
        Ok(TimeOfDay(h * 60 + m))
    }

    /// Minutes after midnight, below 1,440.
    pub fn from_minutes(m: u64) -> Result<TimeOfDay, String> {
        if m < DAY_MINUTES as u64 {
            Ok(TimeOfDay(m as u32))
        } else {
            Err(format!(
                "{m} is not a time of day (minutes after midnight, 0 to 1439)"
            ))
        }
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Minutes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Minutes(m) => TimeOfDay::from_minutes(m),
            Raw::Text(t) => TimeOfDay::parse(&t),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// Days of the week as Transmission's mask: Sunday 1, Monday 2, ... Saturday 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Days(pub u8);

const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const FULL_DAY_NAMES: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

impl Days {
    pub const ALL: Days = Days(127);
    pub const WEEKDAYS: Days = Days(62);
    pub const WEEKEND: Days = Days(65);
    /// No day: the schedule never switches (the RPC's mask 0).
    pub const NONE: Days = Days(0);

    pub fn has(self, weekday: u32) -> bool {
        weekday < 7 && self.0 & (1 << weekday) != 0
    }

    /// `"all"`, `"weekdays"`, `"weekend"`, `"none"`, or day names joined by commas
    /// (`"mon,wed,fri"`).
    pub fn parse(s: &str) -> Result<Days, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => return Ok(Days::ALL),
            "weekdays" => return Ok(Days::WEEKDAYS),
            "weekend" => return Ok(Days::WEEKEND),
            "none" => return Ok(Days::NONE),
            _ => {}
        }
        let mut mask = 0u8;
        for part in s.split(',') {
            let p = part.trim().to_ascii_lowercase();
            let i = DAY_NAMES
                .iter()
                .zip(FULL_DAY_NAMES)
                .position(|(short, full)| p == *short || p == full)
                .ok_or_else(|| {
                    format!(
                        "{part:?} is not a day (sun, mon, ... sat; or all, weekdays, weekend, none)"
                    )
                })?;
            mask |= 1 << i;
        }
        Ok(Days(mask))
    }

    /// A mask of the RPC (`alt-speed-time-day`): 0 to 127.
    pub fn from_mask(n: u64) -> Result<Days, String> {
        u8::try_from(n)
            .ok()
            .filter(|m| *m <= 127)
            .map(Days)
            .ok_or_else(|| {
                format!("{n} is not a mask of days (0 to 127: Sunday 1 ... Saturday 64)")
            })
    }
}

impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Days::ALL => f.write_str("all"),
            Days::WEEKDAYS => f.write_str("weekdays"),
            Days::WEEKEND => f.write_str("weekend"),
            Days::NONE => f.write_str("none"),
            Days(m) => {
                let names: Vec<&str> = (0..7)
                    .filter(|i| m & (1 << i) != 0)
                    .map(|i| DAY_NAMES[i])
                    .collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

impl Serialize for Days {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Days::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The schedule as the settings give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub begin: TimeOfDay,
    pub end: TimeOfDay,
    pub days: Days,
}

impl Schedule {
    /// Whether the alternative limits are due at `minute` (after local midnight) of `weekday`
    /// (0 = Sunday). A span past midnight counts for the day it began on; begin = end is an empty
    /// span.
    pub fn due(&self, minute: u32, weekday: u32) -> bool {
        let (b, e) = (self.begin.0, self.end.0);
        let past_midnight = b > e;
        let within = if past_midnight {
            minute >= b || minute < e
        } else {
            b <= minute && minute < e
        };
        if !within {
            return false;
        }
        let day = if past_midnight && minute < e {
            (weekday + 6) % 7
        } else {
            weekday
        };
        self.days.has(day)
    }
}

/// The local time now: minutes after midnight and the weekday (0 = Sunday).
pub fn local_now() -> Option<(u32, u32)> {
    // SAFETY: `time(NULL)` has no preconditions; `localtime_r` fills the `tm` it is given and is
    // the thread-safe form.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return None;
        }
        Some(((tm.tm_hour * 60 + tm.tm_min) as u32, tm.tm_wday as u32))
    }
}

/// What one look does: the state `alt_speed` must be set to, if any, given the schedule and its
/// verdict at the last look (`last`), and those now. A verdict or schedule that did not change
/// leaves the switch to the hand that last moved it.
pub fn decide(
    last: Option<(Schedule, bool)>,
    now: (Schedule, bool),
    alt_speed: bool,
) -> Option<bool> {
    (last != Some(now) && alt_speed != now.1).then_some(now.1)
}

/// Starts the one task that follows the schedule for `peer`'s session; it runs until aborted or
/// the runtime stops. It looks every [`LOOK_EVERY`] and whenever torrents.toml changes (a
/// `session-set` of the schedule takes effect at once).
pub fn spawn(peer: PeerSlot) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last: Option<(Schedule, bool)> = None;
        let mut looks = peer.torrents().looks(LOOK_EVERY);
        while looks.next().await {
            let p = peer.clone();
            match tokio::task::spawn_blocking(move || look(&p, last)).await {
                Ok(now) => last = now,
                Err(_) => return,
            }
        }
    })
}

/// One look: the schedule's verdict now, applied as [`decide`] says.
fn look(peer: &PeerSlot, last: Option<(Schedule, bool)>) -> Option<(Schedule, bool)> {
    let _applying = peer.torrents().settings_lock().blocking_lock();
    let cfg = peer.torrents().config().ok()?;
    let schedule = cfg.settings.alt_speed_schedule()?;
    let (minute, weekday) = local_now()?;
    let now = (schedule, schedule.due(minute, weekday));
    if let Some(on) = decide(last, now, cfg.settings.alt_speed) {
        let set = peer.torrents().update(|cfg| {
            cfg.settings.alt_speed = on;
            Ok(cfg.settings.session_limits())
        });
        match set {
            Ok((up, down)) => {
                if let Some(s) = peer.current() {
                    s.set_limits(up, down);
                }
                let what = if on { "in force" } else { "lifted" };
                tracing::info!("the alternative speed limits are {what} by their schedule");
            }
            Err(e) => {
                tracing::warn!("the alternative speed limits' schedule: {e:#}");
                return last;
            }
        }
    }
    Some(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> u32 {
        h * 60 + m
    }

    #[test]
    fn a_span_within_a_day_and_one_past_midnight() {
        let day = Schedule {
            begin: TimeOfDay(at(9, 0)),
            end: TimeOfDay(at(17, 0)),
            days: Days::WEEKDAYS,
        };
        let (mon, sat) = (1, 6);
        assert!(!day.due(at(8, 59), mon));
        assert!(day.due(at(9, 0), mon));
        assert!(day.due(at(16, 59), mon));
        assert!(!day.due(at(17, 0), mon));
        assert!(!day.due(at(12, 0), sat));
        let night = Schedule {
            begin: TimeOfDay(at(22, 0)),
            end: TimeOfDay(at(6, 30)),
            days: Days::parse("fri").unwrap(),
        };
        let (fri, sun) = (5, 0);
        assert!(night.due(at(23, 0), fri));
        // Saturday early morning belongs to Friday's span.
        assert!(night.due(at(3, 0), sat));
        assert!(!night.due(at(6, 30), sat));
        assert!(!night.due(at(23, 0), sat));
        assert!(
            !night.due(at(3, 0), fri),
            "Thursday's night is not scheduled"
        );
        // A span past midnight from Saturday runs into Sunday (the week wraps).
        let sat_night = Schedule {
            days: Days::parse("sat").unwrap(),
            ..night
        };
        assert!(sat_night.due(at(1, 0), sun));
        let empty = Schedule {
            begin: TimeOfDay(at(9, 0)),
            end: TimeOfDay(at(9, 0)),
            days: Days::ALL,
        };
        assert!(!empty.due(at(9, 0), mon));
    }

    #[test]
    fn times_and_days_read_and_write_as_people_write_them() {
        assert_eq!(TimeOfDay::parse("09:05").unwrap(), TimeOfDay(545));
        assert_eq!(TimeOfDay::parse("23:59").unwrap().to_string(), "23:59");
        for bad in ["24:00", "9", "12:60", "-1:00", "12:00:00", "ab:cd"] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
        assert!(TimeOfDay::from_minutes(1440).is_err());
        assert_eq!(Days::parse("Mon, wed,FRI").unwrap(), Days(2 | 8 | 32));
        assert_eq!(Days(2 | 8 | 32).to_string(), "mon,wed,fri");
        assert_eq!(Days::parse("weekend").unwrap(), Days(65));
        assert_eq!(Days::parse("saturday,sun").unwrap(), Days(65));
        assert_eq!(Days(62).to_string(), "weekdays");
        for bad in ["", "mo", "monx", "funday"] {
            assert!(Days::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Days::from_mask(128).is_err());
        // Every mask the RPC may set reads back from what torrents.toml is given.
        for mask in 0..=127 {
            let days = Days::from_mask(mask).unwrap();
            assert_eq!(Days::parse(&days.to_string()), Ok(days), "{mask}");
        }
        assert_eq!(Days::NONE.to_string(), "none");
        #[derive(Deserialize, Serialize)]
        struct S {
            t: TimeOfDay,
            d: Days,
        }
        let s: S = toml::from_str("t = 540\nd = \"tue,thu\"").unwrap();
        assert_eq!((s.t, s.d), (TimeOfDay(540), Days(4 | 16)));
        assert_eq!(
            toml::to_string(&s).unwrap(),
            "t = \"09:00\"\nd = \"tue,thu\"\n"
        );
        assert!(toml::from_str::<S>("t = \"25:00\"\nd = \"all\"").is_err());
    }

    #[test]
    fn the_schedule_moves_the_switch_only_when_its_verdict_or_itself_changes() {
        let s = Schedule {
            begin: TimeOfDay(at(9, 0)),
            end: TimeOfDay(at(17, 0)),
            days: Days::ALL,
        };
        // First look: the verdict is applied.
        assert_eq!(decide(None, (s, true), false), Some(true));
        assert_eq!(decide(None, (s, true), true), None);
        // A hand turned it off within the span: it stays off until the span ends...
        assert_eq!(decide(Some((s, true)), (s, true), false), None);
        // ... and at the end it is off already; at the next begin it comes on.
        assert_eq!(decide(Some((s, true)), (s, false), false), None);
        assert_eq!(decide(Some((s, false)), (s, true), false), Some(true));
        // The schedule changed: its verdict is applied again.
        let later = Schedule {
            begin: TimeOfDay(at(10, 0)),
            ..s
        };
        assert_eq!(decide(Some((s, true)), (later, true), false), Some(true));
    }

    #[test]
    fn the_local_time_is_read() {
        let (m, d) = local_now().unwrap();
        assert!(m < DAY_MINUTES && d < 7);
    }
}
