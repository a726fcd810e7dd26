//! Front-end primitives: `close([force])` asks the shell to close once the command ends (it asks first
//! when downloads are active, unless `force`); `exit([code])` ends the script at once with an exit
//! code (0 by default): a command ends (one-shot, the process exits with the code), and a handler or
//! timer ends its call, and under `btorrent run` the whole run.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult};

use super::fail;
use crate::script::host::{exit_error, HostContext};

fn exit(code: Dynamic) -> Result<(), Box<EvalAltResult>> {
    let code = if code.is_unit() {
        Some(0)
    } else {
        code.as_int().ok().and_then(|c| u8::try_from(c).ok())
    };
    match code {
        Some(c) => Err(exit_error(c)),
        None => fail("exit", "the code must be a whole number from 0 to 255"),
    }
}

fn close(ctx: &HostContext, force: bool) -> Result<(), Box<EvalAltResult>> {
    let Some(req) = &ctx.close_request else {
        return fail(
            "close",
            "there is no shell to close here (a daemon or `btorrent run` stops with Ctrl-C)",
        );
    };
    req.force.store(force, Ordering::Relaxed);
    req.requested.store(true, Ordering::Relaxed);
    Ok(())
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("close", move || close(&c, false));
    let c = ctx.clone();
    engine.register_fn("close", move |force: bool| close(&c, force));
    // These take the place of rhai's own `exit`, whose value no front end would read.
    engine.register_fn("exit", || exit(Dynamic::UNIT));
    engine.register_fn("exit", exit);
}
