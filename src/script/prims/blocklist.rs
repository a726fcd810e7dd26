//! Blocklist primitives, for `b-blocklist`: `blocklist()` (the switch, the URL, each list of the
//! `blocklists/` folder with its ranges and skipped lines, and the ranges in force in the running
//! session: this process's, or that of the shell or daemon running for torrents.toml),
//! `blocklist_set(#{enabled, url})` (torrents.toml's `blocklist` and `blocklist_url`) and
//! `blocklist_update()` (downloads `blocklist_url` into the folder; returns the ranges it holds).
//!
//! A change is put in force at once in this process's session; a shell or daemon running for the
//! same torrents.toml applies it within seconds ([`crate::live_settings`]).

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use crate::blocklist;
use crate::script::host::{HostContext, Opts};
use crate::torrents::Torrents;

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("blocklist", move || -> Result<Map, Box<EvalAltResult>> {
        let cfg = c.config()?;
        let folder = blocklist::dir(&cfg);
        let lists =
            blocklist::read_lists(&folder).or_else(|e| fail("blocklist", format!("{e:#}")))?;
        let mut all = crate::engine::ip_filter::IpFilter::default();
        let shown: Array = lists
            .iter()
            .map(|l| {
                all = all.union(&l.parsed.filter);
                let mut m = Map::new();
                let name = l.file.file_name().unwrap_or_default().to_string_lossy();
                m.insert("file".into(), name.into_owned().into());
                m.insert("ranges".into(), (l.parsed.filter.len() as i64).into());
                m.insert("skipped".into(), (l.parsed.bad_lines as i64).into());
                Dynamic::from_map(m)
            })
            .collect();
        let in_force = c.block_on(c.live.blocklist_ranges())?;
        let mut m = Map::new();
        m.insert("enabled".into(), cfg.settings.blocklist.into());
        m.insert("url".into(), unit_or(cfg.settings.blocklist_url.clone()));
        m.insert("folder".into(), folder.display().to_string().into());
        m.insert("lists".into(), shown.into());
        m.insert("ranges".into(), (all.len() as i64).into());
        m.insert("in_force".into(), unit_or(in_force.map(|n| n as i64)));
        Ok(m)
    });
    let c = ctx.clone();
    engine.register_fn(
        "blocklist_set",
        move |opts: Map| -> Result<Map, Box<EvalAltResult>> {
            let o = Opts {
                func: "blocklist_set",
                map: &opts,
            };
            o.check(&["enabled", "url"])?;
            let enabled = match opts.get("enabled").filter(|v| !v.is_unit()) {
                None => None,
                Some(v) => Some(v.as_bool().or_else(|t| {
                    fail(
                        "blocklist_set",
                        format!("`enabled` must be true or false, not {t}"),
                    )
                })?),
            };
            let url = match o.string("url")? {
                None => None,
                Some(u) => Some(blocklist::checked_url(&u).or_else(|e| fail("blocklist_set", e))?),
            };
            let cfg = Torrents::update(c.torrents(), |cfg| {
                if let Some(on) = enabled {
                    cfg.settings.blocklist = on;
                }
                if let Some(u) = &url {
                    cfg.settings.blocklist_url = u.clone();
                }
                Ok(cfg.clone())
            })
            .or_else(|e| fail("blocklist_set", format!("{e:#}")))?;
            if let Some(session) = c.peer.current() {
                blocklist::apply(&session, &cfg)
                    .or_else(|e| fail("blocklist_set", format!("{e:#}")))?;
            }
            let mut m = Map::new();
            m.insert("enabled".into(), cfg.settings.blocklist.into());
            m.insert("url".into(), unit_or(cfg.settings.blocklist_url.clone()));
            Ok(m)
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "blocklist_update",
        move || -> Result<i64, Box<EvalAltResult>> {
            let cfg = c.config()?;
            let session = c.peer.current();
            let got = c.block_on(blocklist::update(&cfg, session.as_ref()))?;
            got.map(|n| n as i64)
                .or_else(|e| fail("blocklist_update", format!("{e:#}")))
        },
    );
}

/// A value, or `()` for none.
fn unit_or<T: Into<Dynamic>>(v: Option<T>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Into::into)
}
