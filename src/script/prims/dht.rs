//! `dht()`: how the peer session's DHT node does (nodes known, lookups in flight, its UDP port), for
//! `b-dht`: the session of this process, or else (a one-shot command) that of the shell or daemon
//! running for torrents.toml.

use std::sync::Arc;

use rhai::{Engine, EvalAltResult, Map};

use super::fail;
use crate::script::host::HostContext;

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("dht", move || -> Result<Map, Box<EvalAltResult>> {
        let cfg = c.config()?;
        let enabled = cfg
            .settings
            .dht_config()
            .or_else(|e| fail("dht", e))?
            .is_some();
        let stats = c.block_on(c.live.dht())?;
        let mut m = Map::new();
        m.insert("enabled".into(), enabled.into());
        m.insert("running".into(), stats.is_some().into());
        let (nodes, lookups, port) = stats.map_or((0, 0, 0), |s| (s.nodes, s.lookups, s.port));
        m.insert("nodes".into(), (nodes as i64).into());
        m.insert("lookups".into(), (lookups as i64).into());
        m.insert("port".into(), (port as i64).into());
        Ok(m)
    });
}
