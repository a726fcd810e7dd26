//! Front-end primitives: `close([force])` asks the shell to close once the command ends (it asks first
//! when downloads are active, unless `force`); `can_ask()` tells whether someone at a terminal can
//! answer a question, and `confirm(question)` asks it (true for yes); `exit([code])` ends the script at
//! once with an exit code (0 by default): a command ends (one-shot, the process exits with the code),
//! and a handler or timer ends its call, and under `btorrent run` the whole run.

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

fn confirm(ctx: &HostContext, question: &str) -> Result<bool, Box<EvalAltResult>> {
    match &ctx.ask {
        Some(ask) => Ok(ask(question)),
        None => fail(
            "confirm",
            "no terminal to ask on (a daemon, a handler, or input that is not a terminal)",
        ),
    }
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("can_ask", move || c.ask.is_some());
    let c = ctx.clone();
    engine.register_fn("confirm", move |q: &str| confirm(&c, q));
    let c = ctx.clone();
    engine.register_fn("close", move || close(&c, false));
    let c = ctx.clone();
    engine.register_fn("close", move |force: bool| close(&c, force));
    // These take the place of rhai's own `exit`, whose value no front end would read.
    engine.register_fn("exit", || exit(Dynamic::UNIT));
    engine.register_fn("exit", exit);
}
