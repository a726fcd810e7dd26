//! The settings from scripts: `settings()` (torrents.toml's `[settings]` as a map, folders made
//! absolute, defaults filled in) and `settings_set(key, value)` (one key changed in the file, or
//! removed with `()`; `b-settings`).
//!
//! `settings_set` checks the change as loading the file checks it: an unknown key or a value of
//! the wrong kind is refused with the reason, and nothing is written. A text value is read as a
//! TOML value when it is one (`500`, `true`, `["a", "b"]`, `"quoted"`), else taken as text, so a
//! command line's words work as they are. A running shell or daemon applies what it can change
//! while it runs within seconds ([`crate::live_settings`], the queues, the goals...), the rest at
//! its next start.

use std::path::PathBuf;
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::{fail, opt};
use crate::config::{Config, Settings};
use crate::script::host::HostContext;

/// The settings as a map, folders resolved to absolute paths. `tracker_url` is the tracker new torrents
/// get (this machine's LAN address when the file sets none), and `tracker_url_chosen` says which
/// address was chosen and why (`()` when the file sets `tracker_url`).
fn settings_map(cfg: &Config) -> Map {
    let s = &cfg.settings;
    let mut m = Map::new();
    let dir = |p: PathBuf| Dynamic::from(p.display().to_string());
    let tracker = s.default_tracker();
    m.insert("tracker_url".into(), tracker.url.into());
    m.insert(
        "tracker_url_chosen".into(),
        tracker
            .chosen
            .map_or(Dynamic::UNIT, |a| Dynamic::from(a.to_string())),
    );
    m.insert("tracker_bind".into(), opt(s.tracker_bind.clone()));
    m.insert("tracker_private".into(), s.tracker_private.into());
    m.insert(
        "tracker_interval".into(),
        (s.tracker_interval as i64).into(),
    );
    m.insert("listen_port".into(), (s.listen_port as i64).into());
    m.insert("listen_ip".into(), s.listen_ip.clone().into());
    m.insert("output_dir".into(), dir(cfg.output_dir()));
    m.insert("torrents_dir".into(), dir(cfg.torrents_dir()));
    m.insert("watch_dir".into(), dir(cfg.watch_dir()));
    m.insert("scripts_dir".into(), dir(cfg.scripts_dir()));
    m.insert(
        "watch_quiet_secs".into(),
        (s.watch_quiet_secs as i64).into(),
    );
    m.insert(
        "watch_rescan_secs".into(),
        (s.watch_rescan_secs as i64).into(),
    );
    m.insert("torrent_format".into(), s.torrent_format.as_str().into());
    m.insert("torrent_mtime".into(), s.torrent_mtime.into());
    let rate = |r: Option<crate::config::ByteRate>| Dynamic::from(r.map_or(0, |r| r.0 as i64));
    m.insert("upload_limit".into(), rate(s.upload_limit));
    m.insert("download_limit".into(), rate(s.download_limit));
    m.insert("alt_upload_limit".into(), rate(s.alt_upload_limit));
    m.insert("alt_download_limit".into(), rate(s.alt_download_limit));
    m.insert("alt_speed".into(), s.alt_speed.into());
    let most = s
        .max_peers
        .unwrap_or(crate::engine::SessionConfig::default().max_peers_per_torrent);
    m.insert("max_peers".into(), (most as i64).into());
    let per_ip = s
        .max_peers_per_ip
        .unwrap_or(crate::engine::SessionConfig::default().max_peers_per_ip);
    m.insert("max_peers_per_ip".into(), (per_ip as i64).into());
    // `()` when unset: what the open-file limit leaves (the engine's fd_budget).
    m.insert(
        "max_connections".into(),
        s.max_connections
            .map_or(Dynamic::UNIT, |n| (n as i64).into()),
    );
    let times = s.alt_speed_times();
    m.insert("alt_speed_time".into(), s.alt_speed_time.into());
    m.insert("alt_speed_begin".into(), times.begin.to_string().into());
    m.insert("alt_speed_end".into(), times.end.to_string().into());
    m.insert("alt_speed_days".into(), times.days.to_string().into());
    m.insert("blocklist".into(), s.blocklist.into());
    m.insert("blocklist_url".into(), opt(s.blocklist_url.clone()));
    m.insert("download_queue".into(), s.download_queue.into());
    m.insert(
        "download_queue_size".into(),
        (s.download_queue_size
            .unwrap_or(crate::config::DEFAULT_DOWNLOAD_QUEUE_SIZE) as i64)
            .into(),
    );
    m.insert("seed_queue".into(), s.seed_queue.into());
    m.insert(
        "seed_queue_size".into(),
        (s.seed_queue_size
            .unwrap_or(crate::config::DEFAULT_SEED_QUEUE_SIZE) as i64)
            .into(),
    );
    m.insert(
        "queue_stalled_minutes".into(),
        (s.queue_stalled_minutes
            .unwrap_or(crate::config::DEFAULT_QUEUE_STALLED_MINUTES) as i64)
            .into(),
    );
    // The incomplete folder while downloads go through it (`crate::incomplete`), else `()`.
    m.insert(
        "incomplete_dir".into(),
        cfg.incomplete_folder().map_or(Dynamic::UNIT, dir),
    );
    // The programs run on torrent events (`crate::hooks`): each one's path while it is switched on,
    // else `()`.
    for hook in crate::hooks::Hook::ALL {
        m.insert(
            hook.name().into(),
            hook.program(s)
                .map_or(Dynamic::UNIT, |p| Dynamic::from(p.display().to_string())),
        );
    }
    // `()` when unset: on while the only seed (BEP 16).
    m.insert("super_seed".into(), opt(s.super_seed));
    m.insert(
        "direct_writes".into(),
        s.direct_writes.unwrap_or(true).into(),
    );
    m.insert("dht".into(), s.dht.into());
    m.insert("lsd".into(), s.lsd.into());
    m.insert("pex".into(), s.pex.into());
    m.insert("rename_partial_files".into(), s.rename_partial_files.into());
    // Tiers of URLs: an array of arrays of strings.
    let tiers: rhai::Array = s
        .default_trackers
        .iter()
        .map(|tier| {
            let urls: rhai::Array = tier.iter().map(|u| Dynamic::from(u.clone())).collect();
            Dynamic::from_array(urls)
        })
        .collect();
    m.insert("default_trackers".into(), Dynamic::from_array(tiers));
    // By name: each group's limits (bytes/s, 0 when unlimited) and whether it honours the session's.
    let mut groups = rhai::Map::new();
    for (name, g) in &s.bandwidth_groups {
        let mut one = rhai::Map::new();
        one.insert("upload_limit".into(), rate(g.upload_limit));
        one.insert("download_limit".into(), rate(g.download_limit));
        one.insert(
            "honors_session_limits".into(),
            g.honors_session_limits.into(),
        );
        groups.insert(name.as_str().into(), Dynamic::from_map(one));
    }
    m.insert("bandwidth_groups".into(), Dynamic::from_map(groups));
    m.insert("port_forwarding".into(), s.port_forwarding.into());
    m.insert(
        "port_forwarding_gateway".into(),
        opt(s.port_forwarding_gateway.clone()),
    );
    m.insert(
        "tracker_port_forwarding".into(),
        s.tracker_port_forwarding.into(),
    );
    m.insert("start_added_torrents".into(), s.start_added_torrents.into());
    m.insert("sequential_download".into(), s.sequential_download.into());
    m.insert("encryption".into(), s.encryption.name().into());
    m.insert("utp".into(), s.utp.name().into());
    m.insert(
        "dht_port".into(),
        s.dht_port.map_or(Dynamic::UNIT, |p| (p as i64).into()),
    );
    let bootstrap = s.dht_bootstrap.clone().unwrap_or_else(|| {
        crate::engine::dht::DEFAULT_BOOTSTRAP
            .iter()
            .map(|b| b.to_string())
            .collect()
    });
    m.insert(
        "dht_bootstrap".into(),
        bootstrap
            .into_iter()
            .map(Dynamic::from)
            .collect::<rhai::Array>()
            .into(),
    );
    let follow = s
        .follow_interval
        .unwrap_or(crate::config::DEFAULT_FOLLOW_INTERVAL);
    m.insert("follow_interval".into(), (follow as i64).into());
    m.insert(
        "follow_removes".into(),
        s.follow_removes.unwrap_or(true).into(),
    );
    // The RPC's address and whitelist (its password is not shown to scripts).
    m.insert("rpc_bind".into(), opt(s.rpc_bind.clone()));
    m.insert("rpc_username".into(), opt(s.rpc_username.clone()));
    let whitelist: rhai::Array = crate::rpc::guard::whitelist(s.rpc_whitelist.as_deref())
        .map(|_| match &s.rpc_whitelist {
            Some(l) => l.iter().map(|x| Dynamic::from(x.clone())).collect(),
            None => vec!["127.0.0.0/8".into(), "::1".into()],
        })
        .unwrap_or_default();
    m.insert("rpc_whitelist".into(), whitelist.into());
    m.insert(
        "rpc_web_dir".into(),
        s.rpc_web_dir
            .as_ref()
            .map_or(Dynamic::UNIT, |d| dir(cfg.resolve(d))),
    );
    // The session's seeding goals; `()` when unset (no goal).
    m.insert("seed_ratio_limit".into(), opt(s.seed_ratio_limit));
    m.insert(
        "seed_idle_minutes".into(),
        s.seed_idle_minutes
            .map_or(Dynamic::UNIT, |n| (n as i64).into()),
    );
    m.insert(
        "script_max_operations".into(),
        (s.script_max_operations as i64).into(),
    );
    m.insert("config_file".into(), dir(cfg.path().to_path_buf()));
    m
}

/// `value` as a TOML value for `key` (`None`: remove the key).
fn toml_value(key: &str, value: &Dynamic) -> Result<Option<toml::Value>, Box<EvalAltResult>> {
    if value.is_unit() {
        return Ok(None);
    }
    if let Some(text) = value.read_lock::<rhai::ImmutableString>() {
        let parsed = format!("v = {}", text.as_str())
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"));
        return Ok(Some(
            parsed.unwrap_or_else(|| toml::Value::String(text.to_string())),
        ));
    }
    rhai::serde::from_dynamic::<toml::Value>(value)
        .map(Some)
        .or_else(|e| fail("settings_set", format!("{key}: {e}")))
}

/// `settings_set(key, value)`: see the module doc. Returns the settings as `settings()` does.
fn settings_set(ctx: &HostContext, key: &str, value: &Dynamic) -> Result<Map, Box<EvalAltResult>> {
    const FUNC: &str = "settings_set";
    let value = toml_value(key, value)?;
    let known = settings_map(&*ctx.config()?);
    let changed = ctx.torrents().update(|cfg| {
        let mut table = match toml::Value::try_from(&cfg.settings)? {
            toml::Value::Table(t) => t,
            _ => anyhow::bail!("the settings are not a table"),
        };
        match &value {
            Some(v) => table.insert(key.to_string(), v.clone()),
            None => table.remove(key),
        };
        let new: Result<Settings, _> = toml::Value::Table(table).try_into();
        match new {
            Ok(s) => {
                cfg.settings = s;
                Ok(Ok(cfg.clone()))
            }
            Err(e) => Ok(Err(e.to_string())),
        }
    });
    match changed {
        Ok(Ok(cfg)) => Ok(settings_map(&cfg)),
        Ok(Err(e)) if e.contains("unknown field") => {
            let nearest = btorrent_proto::text::nearest(key, known.keys().map(|k| k.as_str()), 3);
            let hint = nearest.map_or(String::new(), |k| format!(", did you mean {k}?"));
            fail(FUNC, format!("no setting is named {key:?}{hint}"))
        }
        Ok(Err(e)) => fail(FUNC, format!("{key}: {}", e.lines().next().unwrap_or(&e))),
        Err(e) => fail(FUNC, format!("{e:#}")),
    }
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("settings", move || -> Result<Map, Box<EvalAltResult>> {
        Ok(settings_map(&*c.config()?))
    });
    let c = ctx.clone();
    engine.register_fn("settings_set", move |key: &str, value: Dynamic| {
        settings_set(&c, key, &value)
    });
}
