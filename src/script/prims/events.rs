//! Event primitives: `on(event, fn)` registers a handler and returns its id, `off(id)` removes a
//! handler or a timer (`off()` inside one removes that one), `events()` lists the event names. A handler receives one map:
//!
//! ```text
//! #{ event: "completed", name: "disk.iso", info_hash: "…", path: "/data", message: (), peer: (),
//!    torrent: <TorrentHandle or ()> }
//! ```

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext};

use super::fail;
use super::handles::Handle;
use crate::events::{Event, EventKind};
use crate::script::automation::{Callback, CurrentScript};
use crate::script::host::HostContext;

/// The map a handler receives for `ev`.
pub(crate) fn event_map(ev: &Event) -> Map {
    let opt = |v: Option<String>| v.map_or(Dynamic::UNIT, Dynamic::from);
    let mut m = Map::new();
    m.insert("event".into(), ev.kind().name().into());
    m.insert("name".into(), opt(ev.name().map(str::to_string)));
    m.insert(
        "info_hash".into(),
        ev.info_hash().map_or(Dynamic::UNIT, |h| h.to_hex().into()),
    );
    m.insert("path".into(), opt(ev.path()));
    m.insert("message".into(), opt(ev.message().map(str::to_string)));
    m.insert("peer".into(), opt(ev.peer()));
    let handle = ev.torrent().map_or(Dynamic::UNIT, |(info_hash, name)| {
        Dynamic::from(Handle {
            info_hash,
            name: name.to_string(),
        })
    });
    m.insert("torrent".into(), handle);
    m
}

/// Wraps `f` with the script running now, for a later call. `what` names it in messages, with the
/// line it was registered on (rhai cannot tell where inside a function an operation limit struck).
pub(crate) fn callback(
    call: &NativeCallContext,
    func: &str,
    f: FnPtr,
    what: String,
) -> Result<Callback, Box<EvalAltResult>> {
    let Some(cur) = CurrentScript::get() else {
        return fail(func, "only a script can register callbacks");
    };
    let what = match call.call_position().line() {
        Some(l) => format!("{what} (registered at line {l})"),
        None => what,
    };
    Ok(Callback {
        func: f,
        ast: cur.ast,
        script: cur.script,
        what,
        id: 0,
    })
}

fn on(
    call: &NativeCallContext,
    ctx: &HostContext,
    name: &str,
    f: FnPtr,
) -> Result<i64, Box<EvalAltResult>> {
    let Some(kind) = EventKind::from_name(name) else {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
        return fail(
            "on",
            format!("no event {name:?} (events: {})", names.join(", ")),
        );
    };
    let cb = callback(call, "on", f, format!("on({name:?}) handler"))?;
    Ok(ctx.automation.on(kind, cb))
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn(
        "on",
        move |call: NativeCallContext, name: &str, f: FnPtr| -> Result<i64, Box<EvalAltResult>> {
            on(&call, &c, name, f)
        },
    );
    let c = ctx.clone();
    engine.register_fn("off", move |id: i64| c.automation.cancel(id));
    let c = ctx.clone();
    engine.register_fn("off", move || -> Result<bool, Box<EvalAltResult>> {
        match CurrentScript::get().and_then(|cur| cur.callback) {
            Some(id) => Ok(c.automation.cancel(id)),
            None => fail(
                "off",
                "with no id, only inside a handler or timer (it removes that one)",
            ),
        }
    });
    engine.register_fn("events", || -> Array {
        EventKind::ALL
            .iter()
            .map(|k| Dynamic::from(k.name()))
            .collect()
    });
}
