//! Bandwidth groups over the RPC (Transmission 4, rpc-version 17): `group-get`, `group-set`, and
//! a torrent's `group` in `torrent-get` and `torrent-set`.
//!
//! A group's limits are kept in torrents.toml's `bandwidth_groups` and a torrent's group in its
//! entry (`group = "name"`); both apply at once to the running session ([`crate::engine::groups`]).
//! The groups listed are those of the settings (a group first named by `torrent-set` is added
//! there, unlimited) and any a hand-edited entry names, by name; a group is never deleted, as in
//! Transmission.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::session::{kbps, limit_arg};
use super::{Outcome, Rpc};
use crate::config::{Config, GroupSettings};
use crate::engine::GroupLimits;

/// `torrent-set`'s and `torrent-get`'s key.
pub const GROUP: &str = "group";

/// Longest group name taken.
const MAX_NAME: usize = 128;

/// `group-set`'s keys besides `name`.
const SET_KEYS: [&str; 5] = [
    "honorsSessionLimits",
    "speed-limit-down",
    "speed-limit-down-enabled",
    "speed-limit-up",
    "speed-limit-up-enabled",
];

/// Every group: the settings' and those torrents name, by name.
fn all(cfg: &Config) -> BTreeMap<String, GroupLimits> {
    let mut groups: BTreeMap<String, GroupLimits> =
        cfg.settings.group_limits().into_iter().collect();
    for name in cfg.torrents.iter().filter_map(|t| t.group.clone()) {
        groups.entry(name).or_default();
    }
    groups
}

/// A group as `group-get` shows it (speeds in kB/s).
fn shown(name: &str, l: &GroupLimits) -> Value {
    json!({
        "name": name,
        "honorsSessionLimits": l.honors_session_limits,
        "speed-limit-down-enabled": l.download.is_some(),
        "speed-limit-down": kbps(l.download),
        "speed-limit-up-enabled": l.upload.is_some(),
        "speed-limit-up": kbps(l.upload),
    })
}

/// A group's name as given: text, not empty, at most [`MAX_NAME`] characters.
fn name_arg(v: &Value, key: &str) -> Result<String, String> {
    match v.as_str().map(str::trim) {
        Some(n) if !n.is_empty() && n.chars().count() <= MAX_NAME => Ok(n.to_string()),
        _ => Err(format!(
            "{key} must be a group's name (text of 1 to {MAX_NAME} characters), not {v}"
        )),
    }
}

/// `group-get`: the groups `group` names (a name or a list of names; absent: every group; `name`
/// too, which Transmission itself reads). A name of no group is left out, as Transmission leaves it.
pub fn get(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    let cfg = rpc.peer.torrents().config().map_err(|e| format!("{e:#}"))?;
    let groups = all(&cfg);
    let wanted: Option<Vec<String>> = match args.get(GROUP).or_else(|| args.get("name")) {
        None | Some(Value::Null) => None,
        Some(Value::Array(names)) => Some(
            names
                .iter()
                .map(|n| name_arg(n, "group-get: group"))
                .collect::<Result<_, _>>()?,
        ),
        Some(one) => Some(vec![name_arg(one, "group-get: group")?]),
    };
    let list: Vec<Value> = groups
        .iter()
        .filter(|(name, _)| wanted.as_ref().is_none_or(|w| w.contains(name)))
        .map(|(name, l)| shown(name, l))
        .collect();
    let mut out = Map::new();
    out.insert(GROUP.into(), Value::Array(list));
    Ok(out)
}

/// `group-set`: the group `name` (made if there is none) takes the limits given
/// (`speed-limit-down`/`-enabled`, `speed-limit-up`/`-enabled` in kB/s, `honorsSessionLimits`),
/// the others kept; kept in torrents.toml and in force at once. Another key is refused by name.
pub async fn set(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    let name = name_arg(args.get("name").unwrap_or(&Value::Null), "group-set: name")?;
    let unknown: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "name" && !SET_KEYS.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(format!("group-set: not supported: {}", unknown.join(", ")));
    }
    let cfg = rpc.peer.torrents().config().map_err(|e| format!("{e:#}"))?;
    let old = all(&cfg).remove(&name).unwrap_or_default();
    let honors = match args.get("honorsSessionLimits") {
        None | Some(Value::Null) => old.honors_session_limits,
        Some(v) => v.as_bool().ok_or_else(|| {
            format!("group-set: honorsSessionLimits must be true or false, not {v}")
        })?,
    };
    let limits = GroupLimits {
        upload: limit_arg(args, "speed-limit-up", "speed-limit-up-enabled", old.upload)
            .map_err(|e| format!("group-set: {e}"))?,
        download: limit_arg(
            args,
            "speed-limit-down",
            "speed-limit-down-enabled",
            old.download,
        )
        .map_err(|e| format!("group-set: {e}"))?,
        honors_session_limits: honors,
    };
    rpc.peer
        .torrents()
        .update(|cfg| {
            cfg.settings
                .bandwidth_groups
                .insert(name.clone(), GroupSettings::from(limits));
            Ok(())
        })
        .map_err(|e| format!("group-set: {e:#}"))?;
    if let Some(session) = rpc.peer.get().await {
        session.set_group_limits(&name, limits);
    }
    Ok(Map::new())
}

/// `torrent-set`'s `group`: `Some(Some(name))` to put the torrents in a group, `Some(None)` (an
/// empty name) to take them out of theirs, `None` when absent.
pub fn torrent_arg(args: &Map<String, Value>) -> Result<Option<Option<String>>, String> {
    match args.get(GROUP) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Some(None)),
        Some(v) => name_arg(v, "torrent-set: group").map(|n| Some(Some(n))),
    }
}
