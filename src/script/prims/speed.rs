//! The session's speed limits from scripts, for `b-speed`: `speed_set(#{up, down, alt_up, alt_down,
//! alt})` changes torrents.toml's `upload_limit`, `download_limit`, `alt_upload_limit`,
//! `alt_download_limit` and `alt_speed` (a rate is bytes per second, a number or a size such as
//! `"5M"`; 0 or `()` lifts it; `alt` puts the alternative limits in force) and returns the limits as
//! they are then. `settings()` reads them.
//!
//! The change is in force at once in this process's session; a shell or daemon running for the
//! same torrents.toml applies it within seconds ([`crate::live_settings`]). While the alternative
//! limits' schedule is on, a switch made here holds until the schedule's next turn
//! ([`crate::alt_speed`]).

use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use super::handles::rate_arg;
use crate::config::{ByteRate, Settings};
use crate::script::host::{HostContext, Opts};

/// The limits as `speed_set` returns them: each in bytes per second, 0 for none.
fn limits_map(s: &Settings) -> Map {
    let rate = |r: Option<ByteRate>| Dynamic::from(r.and_then(ByteRate::limit).unwrap_or(0) as i64);
    let mut m = Map::new();
    m.insert("up".into(), rate(s.upload_limit));
    m.insert("down".into(), rate(s.download_limit));
    m.insert("alt_up".into(), rate(s.alt_upload_limit));
    m.insert("alt_down".into(), rate(s.alt_download_limit));
    m.insert("alt".into(), s.alt_speed.into());
    m
}

fn speed_set(ctx: &HostContext, opts: &Map) -> Result<Map, Box<EvalAltResult>> {
    const FUNC: &str = "speed_set";
    Opts {
        func: FUNC,
        map: opts,
    }
    .check(&["up", "down", "alt_up", "alt_down", "alt"])?;
    // Each given rate, checked before anything changes.
    let rate = |key: &str| -> Result<Option<Option<ByteRate>>, Box<EvalAltResult>> {
        match opts.get(key) {
            None => Ok(None),
            Some(v) => Ok(Some(rate_arg(FUNC, v)?.map(ByteRate))),
        }
    };
    let (up, down) = (rate("up")?, rate("down")?);
    let (alt_up, alt_down) = (rate("alt_up")?, rate("alt_down")?);
    let alt = match opts.get("alt").filter(|v| !v.is_unit()) {
        None => None,
        Some(v) => Some(
            v.as_bool()
                .or_else(|t| fail(FUNC, format!("`alt` must be true or false, not {t}")))?,
        ),
    };
    // Written and applied in one hold of the settings lock (see `Torrents::settings_lock`).
    let torrents = ctx.torrents();
    let _applying = ctx.block_on(torrents.settings_lock().lock())?;
    let cfg = torrents
        .update(|cfg| {
            let s = &mut cfg.settings;
            for (slot, value) in [
                (&mut s.upload_limit, up),
                (&mut s.download_limit, down),
                (&mut s.alt_upload_limit, alt_up),
                (&mut s.alt_download_limit, alt_down),
            ] {
                if let Some(v) = value {
                    *slot = v;
                }
            }
            if let Some(on) = alt {
                s.alt_speed = on;
            }
            Ok(cfg.clone())
        })
        .or_else(|e| fail(FUNC, format!("{e:#}")))?;
    if let Some(session) = ctx.peer.current() {
        let (up, down) = cfg.settings.session_limits();
        session.set_limits(up, down);
    }
    Ok(limits_map(&cfg.settings))
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("speed_set", move |opts: Map| speed_set(&c, &opts));
}
