//! Waiting on a `TorrentHandle`'s transfer, wherever it runs ([`super::runner`]): `t.wait([secs])`
//! (true once every wanted piece is verified; false when `secs` pass first) and
//! `t.follow([keep_seeding[, stall_secs]])` (a progress display until complete, then, with
//! `keep_seeding`, seeding figures until Ctrl-C; returns a summary). Both work on any handle, the one
//! `start`/`seed` return or one from `torrent(name)`; a torrent that runs nowhere is an error.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use super::handles::{figures, state, Handle};
use super::runner::Runner;
use crate::engine::{TorrentState, TorrentStats};
use crate::script::host::{cancelled_error, HostContext};
use crate::units::human_bytes;

/// Where `h` runs, or `func`'s error saying it runs nowhere.
fn runner(ctx: &HostContext, h: &Handle, func: &str) -> Result<Runner, Box<EvalAltResult>> {
    match Runner::find(ctx, &h.info_hash) {
        Some(r) => Ok(r),
        None => fail(
            func,
            format!("{} is not running ({})", h.name, state(ctx, h)),
        ),
    }
}

/// Waits until every wanted piece is verified on disk; `timeout` bounds the wait (returns false
/// then).
fn wait(
    ctx: &HostContext,
    h: &Handle,
    timeout: Option<Duration>,
) -> Result<bool, Box<EvalAltResult>> {
    let run = runner(ctx, h, "wait")?;
    let ih = h.info_hash;
    let fut = async move { run.wait_complete(ih).await };
    let r = match timeout {
        // The timer is made inside the runtime (a tokio timer cannot be created outside one).
        Some(t) => match ctx.block_on(async move { tokio::time::timeout(t, fut).await })? {
            Ok(r) => r,
            Err(_) => return Ok(false),
        },
        None => ctx.block_on(fut)?,
    };
    r.map(|_| true)
        .or_else(|e| fail("wait", format!("{}: {e:#}", h.name)))
}

/// Shows progress until the download completes (then, with `keep_seeding`, seeding figures until
/// Ctrl-C) and returns a summary. Ctrl-C before completion stops watching, not the transfer: in the
/// shell the summary then has `interrupted` set (the download goes on in the background); elsewhere
/// it is the command's cancellation. With `stall`, a download that verifies nothing new for that long
/// is an error (the transfer itself goes on, as after Ctrl-C; what it has is kept for a later start).
fn follow(
    ctx: &HostContext,
    h: &Handle,
    keep_seeding: bool,
    stall: Option<Duration>,
) -> Result<Map, Box<EvalAltResult>> {
    let run = runner(ctx, h, "follow")?;
    let started = Instant::now();
    // The last figures seen: the summary's once the torrent no longer runs.
    let mut last = match run.stats(&h.info_hash) {
        Some(s) => s,
        None => return fail("follow", format!("{} is not running", h.name)),
    };
    let mut last_gain = (last.bytes_verified, Instant::now());
    let bar = ctx.progress.then(|| {
        let b = indicatif::ProgressBar::new(last.bytes_wanted);
        // The name takes at most 20 columns, the status line what is left.
        b.set_style(super::progress_style(
            "{prefix} {bar} {percent:>3}% {wide_msg}",
            60,
            25,
        ));
        let name = &h.name;
        b.set_prefix(match name.char_indices().nth(19) {
            Some((i, _)) if name.chars().count() > 20 => format!("{}…", &name[..i]),
            _ => name.to_string(),
        });
        b.enable_steady_tick(Duration::from_millis(250));
        crate::terminal::ShownBar::new(b)
    });
    let mut last_line = Instant::now();
    let mut completed_at: Option<Instant> = None;
    let outcome = loop {
        let Some(s) = run.stats(&h.info_hash) else {
            // Removed (or cancelled) meanwhile: nothing more to follow.
            if completed_at.is_none() && !last.is_complete() {
                break Err(format!("{} was removed before it completed", h.name));
            }
            break Ok(());
        };
        last = s;
        let s = &last;
        if let Some(e) = s.state.error() {
            break Err(format!("{}: {e}", h.name));
        }
        let done = s.is_complete();
        if s.bytes_verified != last_gain.0 || s.state == TorrentState::Checking {
            last_gain = (s.bytes_verified, Instant::now());
        }
        if let Some(limit) = stall.filter(|_| !done) {
            if last_gain.1.elapsed() >= limit {
                break Err(format!(
                    "{}: nothing new verified for {} s ({} peers, {:.1}% done); \
                     what is verified stays for the next start",
                    h.name,
                    limit.as_secs_f64(),
                    s.peers,
                    s.progress() * 100.0
                ));
            }
        }
        if done && completed_at.is_none() {
            completed_at = Some(Instant::now());
            if !keep_seeding {
                break Ok(());
            }
        }
        let msg = status_line(s);
        match &bar {
            Some(b) => {
                b.set_length(s.bytes_wanted);
                b.set_position(s.bytes_wanted - s.bytes_left);
                b.set_message(msg);
            }
            None if last_line.elapsed() >= Duration::from_secs(10) => {
                ctx.print(&format!("{} {:.1}% {msg}", h.name, s.progress() * 100.0));
                last_line = Instant::now();
            }
            None => {}
        }
        if ctx.cancelled() {
            if done {
                // Ctrl-C is how seeding ends: the rest of the script goes on.
                ctx.cancel.store(false, Ordering::Relaxed);
                break Ok(());
            }
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            if ctx.in_shell() {
                // The shell's session outlives the command: the download goes on, and the
                // summary says it was only the watching that stopped.
                ctx.cancel.store(false, Ordering::Relaxed);
                let mut summary = figures(ctx, h, Some(&last));
                summary.insert("interrupted".into(), true.into());
                return Ok(summary);
            }
            return Err(cancelled_error());
        }
        if let Err(e) = ctx.check_time_limit() {
            if let Some(b) = &bar {
                b.finish_and_clear();
            }
            return Err(e);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    outcome.or_else(|e| fail("follow", e))?;
    let mut summary = figures(ctx, h, Some(&last));
    summary.insert("interrupted".into(), false.into());
    let secs = completed_at
        .map_or(started.elapsed(), |t| t - started)
        .as_secs_f64()
        .max(0.001);
    summary.insert("seconds".into(), secs.into());
    // Nothing came from the network: the data was all there (found by the check on start).
    summary.insert("already_complete".into(), (last.downloaded == 0).into());
    summary.insert(
        "average_rate".into(),
        ((last.downloaded as f64 / secs) as i64).into(),
    );
    Ok(summary)
}

fn status_line(s: &TorrentStats) -> String {
    let eta = if s.down_rate > 0 && s.bytes_left > 0 {
        let secs = s.bytes_left / s.down_rate.max(1);
        format!(
            " eta {}",
            humantime::format_duration(Duration::from_secs(secs))
        )
    } else {
        String::new()
    };
    format!(
        "{} down {}/s up {}/s peers {}{eta}",
        s.state.word(),
        human_bytes(s.down_rate),
        human_bytes(s.up_rate),
        s.peers
    )
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("wait", move |h: &mut Handle| wait(&c, h, None));
    let c = ctx.clone();
    engine.register_fn("wait", move |h: &mut Handle, secs: Dynamic| {
        wait(&c, h, Some(super::timers::seconds("wait", &secs)?))
    });
    let c = ctx.clone();
    engine.register_fn("follow", move |h: &mut Handle| follow(&c, h, false, None));
    let c = ctx.clone();
    engine.register_fn("follow", move |h: &mut Handle, keep_seeding: bool| {
        follow(&c, h, keep_seeding, None)
    });
    let c = ctx.clone();
    engine.register_fn(
        "follow",
        move |h: &mut Handle, keep_seeding: bool, stall_secs: Dynamic| {
            let stall = super::timers::seconds("follow", &stall_secs)?;
            follow(&c, h, keep_seeding, Some(stall))
        },
    );
}
