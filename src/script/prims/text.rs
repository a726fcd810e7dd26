//! Text and formatting primitives: `table(headers, rows)`, `human_bytes(n)`, `human_duration(secs)`, `parse_size(text)`,
//! `to_json(value)`, `from_json(text)`, and `commands()` (what `b-help` lists).

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use crate::script::catalog::{Catalog, ScriptOrigin};
use crate::script::host::HostContext;
use crate::script::limits::MAX_STRING;
use crate::units::human_bytes;

/// Renders rows as a table with a header line, sized to the terminal when there is one.
pub fn render_table(headers: &[String], rows: &[Vec<String>]) -> String {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers);
    for r in rows {
        t.add_row(r);
    }
    t.to_string()
}

/// A value as a table shows it: `-` for `()`, control characters escaped (a cell holds one line,
/// and a name from another machine or a dropped file must not act on the terminal).
fn cell(v: &Dynamic) -> String {
    if v.is_unit() {
        "-".into()
    } else {
        btorrent_proto::text::escape_controls(&v.to_string()).into_owned()
    }
}

fn table(headers: Array, rows: Array) -> Result<String, Box<EvalAltResult>> {
    let headers: Vec<String> = headers.iter().map(cell).collect();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let row = match r.clone().into_array() {
            Ok(a) => a.iter().map(cell).collect(),
            Err(_) => match r.try_cast::<Map>() {
                Some(m) => headers
                    .iter()
                    .map(|h| m.get(h.as_str()).map_or("-".into(), cell))
                    .collect(),
                None => return fail("table", "each row must be an array or a map"),
            },
        };
        out.push(row);
    }
    Ok(render_table(&headers, &out))
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    engine.register_fn("table", table);
    engine.register_fn("human_bytes", |n: i64| human_bytes(n.max(0) as u64));
    engine.register_fn("human_bytes", |n: f64| human_bytes(n.max(0.0) as u64));
    engine.register_fn("human_duration", |secs: i64| {
        crate::units::human_duration(secs.max(0) as u64)
    });
    engine.register_fn("parse_size", |s: &str| -> Result<i64, Box<EvalAltResult>> {
        crate::units::parse_size(s).or_else(|e| fail("parse_size", e))
    });
    engine.register_fn(
        "to_json",
        |v: Dynamic| -> Result<String, Box<EvalAltResult>> {
            crate::script::limits::to_json_bounded(&v, MAX_STRING).or_else(|e| fail("to_json", e))
        },
    );
    engine.register_fn(
        "from_json",
        |s: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            let v: serde_json::Value = serde_json::from_str(s).or_else(|e| fail("from_json", e))?;
            rhai::serde::to_dynamic(v)
        },
    );
    let c = ctx.clone();
    engine.register_fn("commands", move || -> Array {
        let dir = c.config().ok().map(|cfg| cfg.scripts_dir());
        let (cat, _) = Catalog::load(dir.as_deref());
        cat.iter()
            .map(|s| {
                let mut m = Map::new();
                m.insert("name".into(), s.name.clone().into());
                m.insert("summary".into(), s.spec.summary.clone().into());
                m.insert("usage".into(), s.spec.usage.clone().into());
                m.insert("brief".into(), s.spec.brief().into());
                m.insert("help".into(), s.spec.help.clone().into());
                let origin = match &s.origin {
                    ScriptOrigin::Bundled => "bundled".to_string(),
                    ScriptOrigin::File(p) => p.display().to_string(),
                };
                m.insert("origin".into(), origin.into());
                Dynamic::from_map(m)
            })
            .collect()
    });
}
