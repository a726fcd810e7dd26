//! Time primitives: `every(secs, fn)` and `after(secs, fn)` register timers and return their id (remove
//! one with `off(id)`); `sleep(ms)` waits, and Ctrl-C (or a handler's time limit) cuts it short.
//! Seconds may be whole or fractional.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, NativeCallContext};

use super::events::callback;
use super::fail;
use crate::script::automation::MIN_PERIOD;
use crate::script::host::HostContext;

/// Longest delay a timer, `sleep` or `job.wait` accepts (a year): keeps `Instant` arithmetic in range.
const MAX_DELAY: Duration = Duration::from_secs(366 * 24 * 3600);

/// A script's number of seconds (whole or fractional) as a duration, capped at [`MAX_DELAY`]; anything
/// else (negative, infinite, not a number) is an error of `func`.
pub(super) fn seconds(func: &str, v: &Dynamic) -> Result<Duration, Box<EvalAltResult>> {
    let secs = if let Ok(i) = v.as_int() {
        i as f64
    } else if let Ok(f) = v.as_float() {
        f
    } else {
        return fail(
            func,
            format!("seconds must be a number, not {}", v.type_name()),
        );
    };
    if !secs.is_finite() || secs < 0.0 {
        return fail(func, format!("{secs} is not a number of seconds"));
    }
    Ok(Duration::from_secs_f64(secs.min(MAX_DELAY.as_secs_f64())))
}

fn timer(
    call: &NativeCallContext,
    ctx: &HostContext,
    func: &str,
    secs: Dynamic,
    f: FnPtr,
    repeat: bool,
) -> Result<i64, Box<EvalAltResult>> {
    let d = seconds(func, &secs)?;
    if repeat && d < MIN_PERIOD {
        return fail(
            func,
            format!("the period must be at least {} ms", MIN_PERIOD.as_millis()),
        );
    }
    let cb = callback(call, func, f, format!("{func}({secs}) timer"))?;
    Ok(ctx.automation.timer(d, repeat.then_some(d), cb))
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn(
        "every",
        move |call: NativeCallContext,
              secs: Dynamic,
              f: FnPtr|
              -> Result<i64, Box<EvalAltResult>> {
            timer(&call, &c, "every", secs, f, true)
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "after",
        move |call: NativeCallContext,
              secs: Dynamic,
              f: FnPtr|
              -> Result<i64, Box<EvalAltResult>> {
            timer(&call, &c, "after", secs, f, false)
        },
    );
    let c = ctx.clone();
    engine.register_fn("sleep", move |ms: i64| -> Result<(), Box<EvalAltResult>> {
        if ms < 0 {
            return fail("sleep", format!("{ms} is not a number of milliseconds"));
        }
        c.sleep(Duration::from_millis(ms as u64).min(MAX_DELAY))
    });
}
