//! Blocklists in the RPC: `session-get`'s `blocklist-enabled`, `blocklist-url` and
//! `blocklist-size` (address ranges in force), `session-set`'s first two (torrents.toml's
//! `blocklist` and `blocklist_url`; switching it puts the lists in force or lifts them at once), and
//! the `blocklist-update` method ([`crate::blocklist::update`]).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{Outcome, Rpc};
use crate::config::Settings;

/// `session-set`'s blocklist keys.
pub const SESSION_KEYS: [&str; 2] = ["blocklist-enabled", "blocklist-url"];

/// `session-get`'s blocklist fields; `size` is the ranges the running session has in force.
pub fn session_fields(s: &Settings, size: usize) -> Value {
    json!({
        "blocklist-enabled": s.blocklist,
        "blocklist-url": s.blocklist_url.clone().unwrap_or_default(),
        "blocklist-size": size,
    })
}

/// The blocklist settings (`blocklist`, `blocklist_url`) as `session-set`'s keys make them.
pub fn session_set(
    args: &Map<String, Value>,
    s: &Settings,
) -> Result<(bool, Option<String>), String> {
    let on = super::switch_arg(args, "blocklist-enabled")?.unwrap_or(s.blocklist);
    let url = match args.get("blocklist-url") {
        None => s.blocklist_url.clone(),
        Some(Value::String(u)) => crate::blocklist::checked_url(u)?,
        Some(v) => return Err(format!("blocklist-url must be a URL, not {v}")),
    };
    Ok((on, url))
}

/// Puts the lists the settings now ask for in force in the running session (after a
/// `session-set` switched them).
pub async fn apply(rpc: &Arc<Rpc>) -> Result<(), String> {
    let (Some(session), Ok(cfg)) = (rpc.peer.get().await, rpc.peer.torrents().config()) else {
        return Ok(());
    };
    tokio::task::spawn_blocking(move || crate::blocklist::apply(&session, &cfg))
        .await
        .map_err(|e| e.to_string())?
        .map(drop)
        .map_err(|e| format!("blocklist: {e:#}"))
}

/// `blocklist-update`: downloads `blocklist-url` and puts the lists in force; answers
/// `blocklist-size`, the ranges the download holds.
pub async fn update(rpc: &Arc<Rpc>) -> Outcome {
    let cfg = rpc.peer.torrents().config().map_err(|e| format!("{e:#}"))?;
    let session = rpc.peer.get().await;
    let size = crate::blocklist::update(&cfg, session.as_ref())
        .await
        .map_err(|e| format!("blocklist-update: {e:#}"))?;
    let mut m = Map::new();
    m.insert("blocklist-size".into(), json!(size));
    Ok(m)
}
