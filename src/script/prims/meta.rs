//! What a user keeps with a torrent in torrents.toml, beside what the engine needs: its `meta`, a
//! map the script owns, and its `labels`, the words it is filed under (Transmission's labels, the
//! same list the RPC shows and sets).
//!
//! `t.meta` reads the map; `t.meta = m` (or `t.meta.key = v`, which rhai turns into a get and a
//! set) saves it whole, at most 1 MiB of text, of values TOML can hold (true/false, numbers, text,
//! arrays and maps; `()` drops a key). `t.labels` reads the labels as an array of strings;
//! `t.labels = ["tv", "hd"]` replaces them (`[]` clears them), checked as
//! [`crate::config::checked_labels`] says.

use std::collections::BTreeMap;
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use super::handles::Handle;
use crate::script::host::HostContext;
use crate::script::limits;

/// A script value as it can be kept in torrents.toml.
fn to_toml(key: &str, v: &Dynamic) -> Result<toml::Value, String> {
    if let Ok(b) = v.as_bool() {
        return Ok(toml::Value::Boolean(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(toml::Value::Integer(i));
    }
    if let Ok(f) = v.as_float() {
        return Ok(toml::Value::Float(f));
    }
    if v.is_string() || v.is_char() {
        return Ok(toml::Value::String(v.to_string()));
    }
    if let Some(a) = v.clone().try_cast::<rhai::Array>() {
        return a
            .iter()
            .map(|x| to_toml(key, x))
            .collect::<Result<_, _>>()
            .map(toml::Value::Array);
    }
    if let Some(m) = v.clone().try_cast::<Map>() {
        let mut t = toml::Table::new();
        for (k, x) in &m {
            t.insert(k.to_string(), to_toml(key, x)?);
        }
        return Ok(toml::Value::Table(t));
    }
    Err(format!(
        "meta.{key}: a {} cannot be saved (use true/false, numbers, text, arrays and maps)",
        v.type_name()
    ))
}

fn meta_get(ctx: &HostContext, h: &Handle) -> Map {
    let cfg = ctx.torrents().config().ok();
    let meta = cfg
        .as_ref()
        .and_then(|c| c.find(&h.info_hash))
        .map(|e| e.meta.clone())
        .unwrap_or_default();
    meta.into_iter()
        .map(|(k, v)| {
            let d = rhai::serde::to_dynamic(&v).unwrap_or(Dynamic::UNIT);
            (k.into(), d)
        })
        .collect()
}

/// How much text a torrent's `meta` may take in torrents.toml.
const MAX_META: usize = 1 << 20;

fn meta_set(ctx: &HostContext, h: &Handle, m: Map) -> Result<(), Box<EvalAltResult>> {
    let whole = Dynamic::from_map(m);
    limits::check_depth("meta", &whole)?;
    // Measured as compact JSON (about the size of its TOML) by a writer that stops at the limit.
    if serde_json::to_writer(limits::Bounded::new(MAX_META), &whole).is_err() {
        return fail(
            "meta",
            format!(
                "more than {} of text to save in torrents.toml",
                crate::units::human_bytes(MAX_META as u64)
            ),
        );
    }
    let mut meta = BTreeMap::new();
    for (k, v) in &whole.cast::<Map>() {
        if v.is_unit() {
            continue;
        }
        meta.insert(k.to_string(), to_toml(k, v).or_else(|e| fail("meta", e))?);
    }
    crate::actions::update_entry(ctx.torrents(), &h.info_hash, &h.name, |e| {
        e.meta = meta.clone();
        Ok(())
    })
    .or_else(|e| fail("meta", format!("{e:#}")))
}

fn labels_get(ctx: &HostContext, h: &Handle) -> rhai::Array {
    let cfg = ctx.torrents().config().ok();
    cfg.as_ref()
        .and_then(|c| c.find(&h.info_hash))
        .map(|e| e.labels.iter().map(|l| l.clone().into()).collect())
        .unwrap_or_default()
}

fn labels_set(ctx: &HostContext, h: &Handle, list: rhai::Array) -> Result<(), Box<EvalAltResult>> {
    let words = list
        .iter()
        .map(|v| {
            v.clone().into_string().or_else(|_| {
                fail(
                    "labels",
                    format!("labels are strings; a {} is not one", v.type_name()),
                )
            })
        })
        .collect::<Result<Vec<String>, _>>()?;
    crate::actions::set_labels(ctx.torrents(), &h.info_hash, &h.name, words)
        .map(drop)
        .or_else(|e| fail("labels", format!("{e:#}")))
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_get("meta", move |h: &mut Handle| meta_get(&c, h));
    let c = ctx.clone();
    engine.register_set(
        "meta",
        move |h: &mut Handle, m: Map| -> Result<(), Box<EvalAltResult>> { meta_set(&c, h, m) },
    );
    let c = ctx.clone();
    engine.register_get("labels", move |h: &mut Handle| labels_get(&c, h));
    let c = ctx.clone();
    engine.register_set(
        "labels",
        move |h: &mut Handle, l: rhai::Array| -> Result<(), Box<EvalAltResult>> {
            labels_set(&c, h, l)
        },
    );
}
