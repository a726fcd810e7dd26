//! Front-end primitives: `close([force])` asks the shell to close once the command ends (it asks first
//! when downloads are active, unless `force`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rhai::{Engine, EvalAltResult};

use super::fail;
use crate::script::host::HostContext;

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
}
