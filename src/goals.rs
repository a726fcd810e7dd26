//! Seeding goals, Transmission's way: one task ([`spawn`], started with the services) looks every
//! [`CHECK_EVERY`] at each running torrent that is complete and seeding, and stops it as `b-pause`
//! does ([`actions::finish`], so torrents.toml says `paused` and `finished`) when it reached its
//! goal, publishing an [`Event::SeedGoalReached`] event:
//!
//! - ratio: uploaded / max(downloaded, size when done) of this run's counters (the engine keeps no
//!   totals across runs) at or above the goal;
//! - idle: nothing uploaded for the goal's minutes while seeding (the clock starts when the task
//!   first sees the torrent seeding, and again on each upload).
//!
//! The goal in force is the torrent's own or the session's (`seed_ratio_limit`,
//! `seed_idle_minutes`) by its mode ([`SeedGoals`]). A torrent resumed after reaching its goal is
//! stopped again at the next look unless the goal was raised or lifted (`unlimited`), as in
//! Transmission.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::actions;
use crate::config::{SeedGoals, Settings};
use crate::engine::{TorrentState, TorrentStats};
use crate::events::{Event, EventBus};
use crate::script::live::LiveTorrents as _;
use crate::services::PeerSlot;
use crate::types::InfoHash;

/// How often the running torrents are looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The torrent's share ratio as the goals count it: uploaded / max(downloaded, size when done).
pub fn ratio(s: &TorrentStats) -> f64 {
    s.uploaded as f64 / s.downloaded.max(s.bytes_wanted).max(1) as f64
}

/// Why a seeding torrent must stop now, if it must: its ratio goal met, or nothing uploaded for
/// `idle_for`, at least its idle goal.
pub fn reached(
    goals: &SeedGoals,
    settings: &Settings,
    s: &TorrentStats,
    idle_for: Duration,
) -> Option<String> {
    if let Some(goal) = goals.ratio(settings.seed_ratio_limit) {
        let r = ratio(s);
        if r >= goal {
            return Some(format!("ratio {r:.2} reached its goal of {goal:.2}"));
        }
    }
    match goals.idle_minutes(settings.seed_idle_minutes) {
        Some(min) if idle_for >= Duration::from_secs(min.saturating_mul(60)) => Some(format!(
            "nothing uploaded for {min} min, its idle seeding goal"
        )),
        _ => None,
    }
}

/// Starts the one task that enforces the goals of every torrent `peer`'s session runs; it runs
/// until aborted or the runtime stops.
pub fn spawn(peer: PeerSlot, bus: EventBus) -> JoinHandle<()> {
    tokio::spawn(run(peer, bus))
}

async fn run(peer: PeerSlot, bus: EventBus) {
    // Per seeding torrent: its upload counter when last seen, and since when it has not moved.
    let mut idle: HashMap<InfoHash, (u64, Instant)> = HashMap::new();
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (Some(session), Ok(cfg)) = (peer.current(), peer.torrents().config()) else {
            idle.clear();
            continue;
        };
        let now = Instant::now();
        let mut stop = Vec::new();
        let mut seen = HashMap::new();
        for h in session.torrents() {
            let s = h.stats();
            let ih = h.info_hash();
            if s.state != TorrentState::Seeding {
                continue;
            }
            let mut last = idle.get(&ih).copied().unwrap_or((s.uploaded, now));
            if last.0 != s.uploaded {
                last = (s.uploaded, now);
            }
            seen.insert(ih, last);
            let entry = cfg.find(&ih);
            let goals = entry.map(|e| e.goals).unwrap_or_default();
            if let Some(why) = reached(&goals, &cfg.settings, &s, now - last.1) {
                stop.push((ih, h.name().to_string(), entry.is_some(), why, s.data_dir));
            }
        }
        idle = seen;
        for (ih, name, managed, why, data) in stop {
            idle.remove(&ih);
            let (p, n) = (peer.clone(), name.clone());
            let done = tokio::task::spawn_blocking(move || {
                if managed {
                    actions::finish(p.torrents(), &p, &ih, &n)
                } else {
                    // A torrent run without being managed has no entry to mark.
                    p.pause(&ih);
                    Ok(())
                }
            })
            .await;
            match done {
                Ok(Ok(())) => {
                    tracing::info!("{name}: stopped: {why}");
                    bus.publish(Event::SeedGoalReached {
                        info_hash: ih,
                        name,
                        data_dir: data,
                        reason: why,
                    });
                }
                Ok(Err(e)) => tracing::warn!("{name}: cannot stop at its seeding goal: {e:#}"),
                Err(e) => tracing::warn!("{name}: cannot stop at its seeding goal: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GoalMode;

    fn seeding(uploaded: u64, downloaded: u64) -> TorrentStats {
        TorrentStats {
            state: TorrentState::Seeding,
            pieces_have: 1,
            pieces_total: 1,
            pieces_checked: 1,
            bytes_verified: 1000,
            bytes_total: 1000,
            downloaded,
            uploaded,
            down_rate: 0,
            up_rate: 0,
            peers: 0,
            seeds: 0,
            data_dir: "d".into(),
            pieces_withdrawn: 0,
            super_seeding: false,
            bytes_wanted: 1000,
            bytes_left: 0,
            sequential: false,
            ..Default::default()
        }
    }

    #[test]
    fn the_ratio_counts_the_size_when_nothing_was_downloaded() {
        assert_eq!(ratio(&seeding(500, 0)), 0.5);
        assert_eq!(ratio(&seeding(500, 2000)), 0.25);
    }

    #[test]
    fn the_goal_in_force_follows_the_mode() {
        let settings = Settings {
            seed_ratio_limit: Some(1.0),
            seed_idle_minutes: Some(30),
            ..Settings::default()
        };
        let global = SeedGoals::default();
        let quiet = Duration::from_secs(60);
        assert_eq!(reached(&global, &settings, &seeding(900, 0), quiet), None);
        let why = reached(&global, &settings, &seeding(1000, 0), quiet).unwrap();
        assert_eq!(why, "ratio 1.00 reached its goal of 1.00");
        let why = reached(&global, &settings, &seeding(0, 0), quiet * 30).unwrap();
        assert!(why.contains("30 min"), "{why}");
        let unlimited = SeedGoals {
            seed_ratio_mode: GoalMode::Unlimited,
            seed_idle_mode: GoalMode::Unlimited,
            ..SeedGoals::default()
        };
        assert_eq!(
            reached(&unlimited, &settings, &seeding(5000, 0), quiet * 60),
            None
        );
        let single = SeedGoals {
            seed_ratio_mode: GoalMode::Single,
            seed_ratio_limit: Some(0.5),
            seed_idle_mode: GoalMode::Single,
            seed_idle_minutes: Some(2),
            ..SeedGoals::default()
        };
        assert!(reached(&single, &settings, &seeding(500, 0), quiet).is_some());
        assert!(reached(&single, &settings, &seeding(0, 0), quiet * 2).is_some());
        assert_eq!(reached(&single, &settings, &seeding(0, 0), quiet), None);
        assert_eq!(
            reached(
                &global,
                &Settings::default(),
                &seeding(5000, 0),
                quiet * 600
            ),
            None
        );
    }
}
