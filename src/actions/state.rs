//! A torrent's state: paused, resumed (through its queue, or now), queued and let in by the
//! queues, moved in their order, and finished by a seeding goal; the running torrent and its
//! `state` in torrents.toml change together.

use super::*;

/// Stops the torrent's transfers (if it runs here) and records `paused`.
pub fn pause(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<()> {
    pause_as(torrents, live, ih, name, None)
}

/// [`pause`] as a hand edit of the entry's state to `edited` asked (`None`: as a command did):
/// recorded only while the entry still says so (see [`update_entry_as`]).
pub fn pause_as(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
    edited: Option<&str>,
) -> Result<()> {
    live.pause(ih);
    update_entry_as(torrents, ih, name, edited, |e| {
        e.state = "paused".into();
        Ok(())
    })
}

/// Puts a torrent in its queue ([`crate::queue`]): recorded `queued`, its transfers stopped until
/// the queue starts it. Nothing happens to a torrent that is no longer `downloading` or `seeding`
/// in torrents.toml (paused or removed since the queue looked); true when it was queued.
pub fn enqueue(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<bool> {
    let queued = torrents
        .update(|cfg| match cfg.find_mut(ih) {
            Some(e) if e.state == "downloading" || e.state == "seeding" => {
                e.state = QUEUED.into();
                Ok(true)
            }
            _ => Ok(false),
        })
        .with_context(|| format!("{name}: cannot queue it"))?;
    if queued {
        live.pause(ih);
    }
    Ok(queued)
}

/// Starts a torrent that waited in its queue ([`resume_now`]), unless it left the queue
/// since the queue looked (paused, removed); true when it was started.
pub fn dequeue(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<bool> {
    let waiting = torrents
        .fresh()?
        .find(ih)
        .is_some_and(|e| e.state == QUEUED);
    if waiting {
        resume_now(torrents, live, ih, name)?;
    }
    Ok(waiting)
}

/// Where `queue-move-*` (or `torrent-set`'s `queuePosition`) moves torrents in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMove {
    Top,
    Up,
    Down,
    Bottom,
    /// To this place (0 is the top; past the end is the bottom).
    To(usize),
}

/// Moves the managed torrents `chosen` in the queue, which is the order of torrents.toml's entries:
/// to the top or bottom (keeping their order among themselves), or one place up or down (a run of
/// chosen torrents moves as one). Torrents that are not managed have no place and are left out.
pub fn queue_move(torrents: &Torrents, chosen: &[InfoHash], to: QueueMove) -> Result<()> {
    torrents.update(|cfg| {
        let picked: Vec<bool> = cfg
            .torrents
            .iter()
            .map(|t| t.hash().is_some_and(|ih| chosen.contains(&ih)))
            .collect();
        crate::queue::reorder(&mut cfg.torrents, &picked, to);
        Ok(())
    })
}

/// The state torrents.toml records for a torrent waiting in the download or the seeding queue.
pub const QUEUED: &str = "queued";

/// A [`pause`] because a seeding goal was reached: the entry also says `finished` (until resumed).
/// The entry is recorded before the transfers stop, so whoever sees the torrent stopped (the RPC's
/// `status`) also sees why (`isFinished`).
pub fn finish(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<()> {
    let recorded = update_entry(torrents, ih, name, |e| {
        e.state = "paused".into();
        e.goals.finished = true;
        Ok(())
    });
    live.pause(ih);
    recorded
}

/// Resumes the torrent (if it runs here) and records `seeding` or `downloading`; while the queue of
/// its direction (the download queue for a download, the seeding queue for a complete torrent)
/// applies to it, it goes through that queue instead: recorded `queued`, it starts when the queue
/// gives it a place ([`crate::queue`]), at once if one is free. A queue applies while this process
/// keeps it, and to a torrent that runs in the shell or daemon owning torrents.toml (which keeps
/// it) when a one-shot command resumes it there.
pub fn resume(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<()> {
    resume_as(torrents, live, ih, name, None)
}

/// [`resume`] as a hand edit of the entry's state to `edited` asked (`None`: as a command did):
/// recorded only while the entry still says so (see [`update_entry_as`]).
pub fn resume_as(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
    edited: Option<&str>,
) -> Result<()> {
    use crate::queue::Direction;
    let settings = &torrents.config()?.settings;
    let runs_here = torrents
        .current_session()
        .is_some_and(|s| s.get(ih).is_some());
    let applies = |d| {
        torrents.queue().holds(settings, d)
            || (crate::queue::Rules::of(settings).size(d).is_some() && !runs_here)
    };
    // One whose data check has not ended may be either.
    let queue_applies = live.stats(ih).is_some_and(|s| match Direction::of(&s) {
        Some(d) => applies(d),
        None => applies(Direction::Download) || applies(Direction::Seed),
    });
    if queue_applies {
        return update_entry_as(torrents, ih, name, edited, |e| {
            e.goals.finished = false;
            e.state = QUEUED.into();
            Ok(())
        });
    }
    resume_now_as(torrents, live, ih, name, edited)
}

/// Resumes the torrent (if it runs here) whatever the queues say (a queue starting it,
/// `torrent-start-now`), and records `seeding` or `downloading`.
pub fn resume_now(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
) -> Result<()> {
    resume_now_as(torrents, live, ih, name, None)
}

fn resume_now_as(
    torrents: &Torrents,
    live: &dyn LiveTorrents,
    ih: &InfoHash,
    name: &str,
    edited: Option<&str>,
) -> Result<()> {
    let running = live.resume(ih);
    let now = live.stats(ih);
    update_entry_as(torrents, ih, name, edited, |e| {
        e.goals.finished = false;
        e.state = match (running, &now) {
            (true, Some(s)) if s.progress() >= 1.0 => "seeding".into(),
            (true, Some(_)) => "downloading".into(),
            _ if e.origin == Origin::Added => "downloading".into(),
            _ => "seeding".into(),
        };
        Ok(())
    })
}
