//! Queue primitives, for `b-queue`: `queue()` (the download and seeding queues' settings, and
//! every managed torrent in queue order with its place and state), `queue_set(#{downloads, seeds,
//! stalled_minutes})` (torrents.toml's `download_queue` and `download_queue_size`, `seed_queue`
//! and `seed_queue_size`, `queue_stalled_minutes`), and on a `TorrentHandle`, `queue_position`
//! (its place, 0 the first; `()` when not managed) and `queue_move(to)` (`"top"`, `"up"`,
//! `"down"`, `"bottom"`, or a place).
//!
//! The queues are kept by the shell or daemon running for torrents.toml ([`crate::queue`]), which
//! follows a change of the file within seconds; one order serves both, torrents.toml's.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use super::handles::Handle;
use crate::actions::{QueueMove, QUEUED};
use crate::config::{
    Settings, DEFAULT_DOWNLOAD_QUEUE_SIZE, DEFAULT_QUEUE_STALLED_MINUTES, DEFAULT_SEED_QUEUE_SIZE,
};
use crate::queue::Direction;
use crate::script::host::{HostContext, Opts};

/// One queue's settings as a map: `enabled` and `size` (the default when unset).
fn one_queue(enabled: bool, size: Option<u32>, default: u32) -> Dynamic {
    let mut m = Map::new();
    m.insert("enabled".into(), enabled.into());
    m.insert("size".into(), (size.unwrap_or(default) as i64).into());
    m.into()
}

/// The queues' settings as a map.
fn settings_map(s: &Settings) -> Map {
    let mut m = Map::new();
    m.insert(
        "downloads".into(),
        one_queue(
            s.download_queue,
            s.download_queue_size,
            DEFAULT_DOWNLOAD_QUEUE_SIZE,
        ),
    );
    m.insert(
        "seeds".into(),
        one_queue(s.seed_queue, s.seed_queue_size, DEFAULT_SEED_QUEUE_SIZE),
    );
    let stalled = s
        .queue_stalled_minutes
        .unwrap_or(DEFAULT_QUEUE_STALLED_MINUTES);
    m.insert("stalled_minutes".into(), (stalled as i64).into());
    m
}

/// `queue()`: the settings, and every managed torrent in queue order: `position`, `name`,
/// `info_hash`, `state` (as `t.state` says it) and `waits` (for one `queued`: `"download"` or
/// `"seed"`, the queue it waits in; `()` while its data check has not ended, or not queued).
fn queue(ctx: &HostContext) -> Result<Map, Box<EvalAltResult>> {
    let cfg = ctx.config()?;
    let live: std::collections::HashMap<_, _> = ctx.live.all().into_iter().collect();
    let torrents: Array = cfg
        .torrents
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let stats = t.hash().and_then(|ih| live.get(&ih));
            let state = match stats {
                Some(s) => crate::queue::state_word(&s.state, Some(&t.state)).to_string(),
                None => t.state.clone(),
            };
            let waits = match stats.and_then(Direction::of) {
                Some(d) if state == QUEUED => match d {
                    Direction::Download => "download".into(),
                    Direction::Seed => "seed".into(),
                },
                _ => Dynamic::UNIT,
            };
            let mut m = Map::new();
            m.insert("position".into(), (i as i64).into());
            m.insert("name".into(), t.name.clone().into());
            m.insert("info_hash".into(), t.info_hash.clone().into());
            m.insert("state".into(), state.into());
            m.insert("waits".into(), waits);
            Dynamic::from_map(m)
        })
        .collect();
    let mut m = settings_map(&cfg.settings);
    m.insert("torrents".into(), torrents.into());
    Ok(m)
}

/// A queue's new size from `queue_set`: a number (0 turns the queue off, more turns it on at that
/// size) or true/false (on at the size it has, or off). `None`: not given.
fn queue_arg(opts: &Map, key: &str) -> Result<Option<(bool, Option<u32>)>, Box<EvalAltResult>> {
    let Some(v) = opts.get(key).filter(|v| !v.is_unit()) else {
        return Ok(None);
    };
    if let Ok(on) = v.as_bool() {
        return Ok(Some((on, None)));
    }
    match v.as_int() {
        Ok(0) => Ok(Some((false, None))),
        Ok(n) if n > 0 && n <= u32::MAX as i64 => Ok(Some((true, Some(n as u32)))),
        _ => fail(
            "queue_set",
            format!("`{key}` must be a number of torrents (0: no queue) or true/false, not {v}"),
        ),
    }
}

/// `queue_set(#{downloads, seeds, stalled_minutes})`: changes the queues' settings in torrents.toml
/// and returns them as `queue()` does (without the torrents).
fn queue_set(ctx: &HostContext, opts: &Map) -> Result<Map, Box<EvalAltResult>> {
    Opts {
        func: "queue_set",
        map: opts,
    }
    .check(&["downloads", "seeds", "stalled_minutes"])?;
    let downloads = queue_arg(opts, "downloads")?;
    let seeds = queue_arg(opts, "seeds")?;
    let stalled = match opts.get("stalled_minutes").filter(|v| !v.is_unit()) {
        None => None,
        Some(v) => match v.as_int() {
            Ok(m) if m >= 0 => Some(m as u64),
            _ => {
                return fail(
                    "queue_set",
                    format!(
                        "`stalled_minutes` must be a whole number of minutes (0: never), not {v}"
                    ),
                )
            }
        },
    };
    let cfg = ctx
        .torrents()
        .update(|cfg| {
            let s = &mut cfg.settings;
            if let Some((on, size)) = downloads {
                s.download_queue = on;
                s.download_queue_size = size.or(s.download_queue_size);
            }
            if let Some((on, size)) = seeds {
                s.seed_queue = on;
                s.seed_queue_size = size.or(s.seed_queue_size);
            }
            if let Some(m) = stalled {
                s.queue_stalled_minutes = Some(m);
            }
            Ok(cfg.clone())
        })
        .or_else(|e| fail("queue_set", format!("{e:#}")))?;
    Ok(settings_map(&cfg.settings))
}

/// Where `queue_move` sends a torrent: `"top"`, `"up"`, `"down"`, `"bottom"`, or a place (a number,
/// or one written as text; 0 is the top).
fn move_arg(to: &Dynamic) -> Result<QueueMove, Box<EvalAltResult>> {
    let place = |n: i64| {
        usize::try_from(n)
            .map(QueueMove::To)
            .or_else(|_| fail("queue_move", format!("a place is 0 or more, not {n}")))
    };
    if let Ok(n) = to.as_int() {
        return place(n);
    }
    let text = to.clone().into_string().unwrap_or_default();
    match text.trim() {
        "top" => Ok(QueueMove::Top),
        "up" => Ok(QueueMove::Up),
        "down" => Ok(QueueMove::Down),
        "bottom" => Ok(QueueMove::Bottom),
        t => match t.parse::<i64>() {
            Ok(n) => place(n),
            Err(_) => fail(
                "queue_move",
                format!("where to? top, up, down, bottom or a place (0 is the top), not {to}"),
            ),
        },
    }
}

/// `t.queue_move(to)`: moves a managed torrent in the queues; returns its new place.
fn queue_move(ctx: &HostContext, h: &Handle, to: &Dynamic) -> Result<i64, Box<EvalAltResult>> {
    let to = move_arg(to)?;
    if ctx.config()?.find(&h.info_hash).is_none() {
        return fail(
            "queue_move",
            format!(
                "{} is not a managed torrent: it has no place in the queues",
                h.name
            ),
        );
    }
    crate::actions::queue_move(ctx.torrents(), &[h.info_hash], to)
        .or_else(|e| fail("queue_move", format!("{e:#}")))?;
    Ok(position(ctx, h)?.unwrap_or(-1))
}

/// The torrent's place in the queues (torrents.toml's order), if it is managed.
fn position(ctx: &HostContext, h: &Handle) -> Result<Option<i64>, Box<EvalAltResult>> {
    let cfg = ctx.config()?;
    Ok(cfg
        .torrents
        .iter()
        .position(|t| t.hash() == Some(h.info_hash))
        .map(|i| i as i64))
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("queue", move || queue(&c));
    let c = ctx.clone();
    engine.register_fn("queue_set", move |opts: Map| queue_set(&c, &opts));
    let c = ctx.clone();
    engine.register_get(
        "queue_position",
        move |h: &mut Handle| -> Result<Dynamic, Box<EvalAltResult>> {
            Ok(position(&c, h)?.map_or(Dynamic::UNIT, Dynamic::from))
        },
    );
    let c = ctx.clone();
    engine.register_fn("queue_move", move |h: &mut Handle, to: Dynamic| {
        queue_move(&c, h, &to)
    });
}
