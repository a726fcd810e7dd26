//! torrents.toml primitives: `torrents()`, `register(torrent[, opts])`,
//! `unregister(name_or_hash)` (the settings are [`super::settings`]). A torrent is a map: `name`, `info_hash`, `file`, `data`,
//! `complete_dir` (where the data moves once complete, while it waits in the incomplete folder;
//! else `()`), `state`,
//! `added`, `origin`, `meta`, and `source` (the watch-folder entry it came from, or `()`).
//!
//! And `fetching()`: the magnet links whose metadata is being fetched, not torrents yet (here, or
//! in the shell or daemon that owns torrents.toml: the watch folder's, the RPC's, a `b-start`'s),
//! a map each: `info_hash`, `name` (the link's `dn`, or `()`), `peers` (those offering it),
//! `connecting`, `known` (addresses heard of), `pieces_have`, `pieces_total` and `seconds` (since
//! the fetch began).

use std::path::PathBuf;
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::{fail, TorrentFile};
use crate::config::{Config, ManagedTorrent, Origin};
use crate::script::host::{HostContext, Opts};
use crate::torrents::Torrents;

/// One managed torrent as a map (paths resolved).
pub(crate) fn entry_map(cfg: &Config, t: &ManagedTorrent) -> Map {
    let mut m = Map::new();
    m.insert("name".into(), t.name.clone().into());
    m.insert("info_hash".into(), t.info_hash.clone().into());
    m.insert(
        "file".into(),
        cfg.resolve(&t.file).display().to_string().into(),
    );
    m.insert(
        "data".into(),
        cfg.resolve(&t.data).display().to_string().into(),
    );
    // Where the data moves once complete, while it waits in the incomplete folder.
    m.insert(
        "complete_dir".into(),
        t.complete_dir.as_ref().map_or(Dynamic::UNIT, |d| {
            cfg.resolve(d).display().to_string().into()
        }),
    );
    m.insert("state".into(), t.state.clone().into());
    m.insert("added".into(), t.added.clone().into());
    m.insert(
        "origin".into(),
        format!("{:?}", t.origin).to_lowercase().into(),
    );
    let meta = rhai::serde::to_dynamic(&t.meta).unwrap_or(Dynamic::UNIT);
    m.insert("meta".into(), meta);
    let labels: rhai::Array = t.labels.iter().map(|l| l.clone().into()).collect();
    m.insert("labels".into(), labels.into());
    // Where a watch-folder torrent came from: the dropped file, folder or .torrent.
    m.insert(
        "source".into(),
        t.watch.as_ref().map_or(Dynamic::UNIT, |w| {
            cfg.resolve(&w.entry).display().to_string().into()
        }),
    );
    m
}

fn register_torrent(
    ctx: &HostContext,
    t: &TorrentFile,
    opts: &Map,
) -> Result<Map, Box<EvalAltResult>> {
    let o = Opts {
        func: "register",
        map: opts,
    };
    o.check(&["data", "state", "origin"])?;
    let origin = match o.string("origin")?.as_deref() {
        None => {
            if t.data_dir.is_some() {
                Origin::Created
            } else {
                Origin::Added
            }
        }
        Some("created") => Origin::Created,
        Some("watch") => Origin::Watch,
        Some("added") => Origin::Added,
        Some(other) => return fail("register", format!("unknown origin {other:?}")),
    };
    let Some(file) = t.path.clone() else {
        return fail("register", "the torrent has no file on disk");
    };
    let state = o.string("state")?.unwrap_or_else(|| {
        if origin == Origin::Added {
            "downloading".into()
        } else {
            "seeding".into()
        }
    });
    if !["downloading", "seeding", "paused", "stopped"].contains(&state.as_str()) {
        return fail(
            "register",
            format!("unknown state {state:?} (downloading, seeding, paused or stopped)"),
        );
    }
    let data = o.string("data")?.map(PathBuf::from);
    Torrents::update(ctx.torrents(), |cfg| {
        let data = match &data {
            Some(d) => d.clone(),
            None => t.data_dir.clone().unwrap_or_else(|| cfg.output_dir()),
        };
        cfg.upsert(ManagedTorrent::new(
            t.meta.info.name.clone(),
            &t.meta.info_hash,
            file.clone(),
            data,
            state.clone(),
            origin,
        ));
        let entry = cfg.find(&t.meta.info_hash).expect("just added");
        Ok(entry_map(cfg, entry))
    })
    .or_else(|e| fail("register", format!("{e:#}")))
}

/// A metadata fetch as `fetching()` gives it.
fn fetch_map(f: &crate::engine::MetadataFetch) -> Dynamic {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let p = &f.progress;
    let count = |n: usize| Dynamic::from(n as i64);
    let mut m = Map::new();
    m.insert("info_hash".into(), f.info_hash.clone().into());
    m.insert(
        "name".into(),
        f.name.clone().map_or(Dynamic::UNIT, Dynamic::from),
    );
    m.insert("peers".into(), count(p.peers));
    m.insert("connecting".into(), count(p.connecting));
    m.insert("known".into(), count(p.known));
    m.insert("pieces_have".into(), count(p.pieces_have));
    m.insert("pieces_total".into(), count(p.pieces_total));
    m.insert(
        "seconds".into(),
        (now.saturating_sub(f.started) as i64).into(),
    );
    Dynamic::from_map(m)
}

/// Finds a managed torrent by full or abbreviated info-hash or by exact name.
pub(crate) fn lookup<'a>(cfg: &'a Config, key: &str) -> Result<&'a ManagedTorrent, String> {
    let k = key.to_ascii_lowercase();
    let hits: Vec<&ManagedTorrent> = cfg
        .torrents
        .iter()
        .filter(|t| t.name == key || (k.len() >= 6 && t.info_hash.starts_with(&k)))
        .collect();
    match hits.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "no managed torrent named {key:?}{}",
            near_names(cfg, key)
        )),
        _ => Err(format!(
            "{key:?} matches {} torrents; use the info-hash",
            hits.len()
        )),
    }
}

/// The names a mistyped key may have meant, as the end of the error: those that hold it (or that
/// it holds), whatever the case; none when there are more than [`NEAR_NAMES`].
fn near_names(cfg: &Config, key: &str) -> String {
    let key = key.to_lowercase();
    if key.is_empty() {
        return String::new();
    }
    let near: Vec<&str> = cfg
        .torrents
        .iter()
        .map(|t| t.name.as_str())
        .filter(|name| {
            let name = name.to_lowercase();
            name.contains(&key) || key.contains(&name)
        })
        .collect();
    match near.len() {
        0 => String::new(),
        n if n > NEAR_NAMES => String::new(),
        _ => format!(" (did you mean {}?)", quoted_list(&near)),
    }
}

/// At most this many names are offered for a mistyped one.
const NEAR_NAMES: usize = 5;

/// `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
fn quoted_list(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match q.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("torrents", move || -> Result<Array, Box<EvalAltResult>> {
        let cfg = c.config()?;
        // One look at the running torrents (here, or in the shell or daemon that owns the file).
        let live: std::collections::HashMap<_, _> = c.live.all().into_iter().collect();
        Ok(cfg
            .torrents
            .iter()
            .map(|t| {
                let mut m = entry_map(&cfg, t);
                match t.hash().and_then(|ih| live.get(&ih)) {
                    Some(s) => {
                        m.extend(super::handles::stats_map(&t.info_hash, s));
                        m.insert("name".into(), t.name.clone().into());
                        let word = crate::queue::state_word(&s.state, Some(&t.state));
                        m.insert("state".into(), word.into());
                        m.insert("running".into(), true.into());
                    }
                    None => {
                        m.insert("running".into(), false.into());
                    }
                }
                Dynamic::from_map(m)
            })
            .collect())
    });
    let c = ctx.clone();
    engine.register_fn("fetching", move || -> Array {
        c.live.fetching().iter().map(fetch_map).collect()
    });
    let c = ctx.clone();
    engine.register_fn(
        "register",
        move |t: &mut TorrentFile| -> Result<Map, Box<EvalAltResult>> {
            register_torrent(&c, t, &Map::new())
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "register",
        move |t: &mut TorrentFile, opts: Map| -> Result<Map, Box<EvalAltResult>> {
            register_torrent(&c, t, &opts)
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "unregister",
        move |key: &str| -> Result<Map, Box<EvalAltResult>> {
            Torrents::update(c.torrents(), |cfg| {
                let hash = lookup(cfg, key)
                    .map_err(anyhow::Error::msg)?
                    .hash()
                    .expect("validated on load");
                let t = cfg.remove(&hash).expect("found above");
                Ok(entry_map(cfg, &t))
            })
            .or_else(|e| fail("unregister", format!("{e:#}")))
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name that is not one: the names it may have meant (holding it, or held by it, any case),
    /// none when nothing is near or too much is.
    #[test]
    fn a_mistyped_name_is_answered_with_the_names_near_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("torrents.toml");
        let mut text = String::from("[settings]\n");
        for (i, name) in [
            "photos-2025",
            "Photos-2024",
            "a.bin",
            "x1",
            "x2",
            "x3",
            "x4",
            "x5",
            "x6",
        ]
        .iter()
        .enumerate()
        {
            text.push_str(&format!(
                "[[torrent]]\nname = \"{name}\"\ninfo_hash = \"{i:040x}\"\nfile = \"t/{i}.torrent\"\ndata = \"o\"\nstate = \"seeding\"\n"
            ));
        }
        std::fs::write(&path, text).unwrap();
        let cfg = Config::load(&path).unwrap();
        let err = |key| lookup(&cfg, key).map(|t| t.name.clone()).unwrap_err();
        assert_eq!(
            err("photos"),
            "no managed torrent named \"photos\" (did you mean \"photos-2025\" or \"Photos-2024\"?)"
        );
        assert_eq!(
            err("a"),
            "no managed torrent named \"a\" (did you mean \"a.bin\"?)"
        );
        assert_eq!(
            err("a.bin.torrent"),
            "no managed torrent named \"a.bin.torrent\" (did you mean \"a.bin\"?)"
        );
        assert_eq!(err("zzz"), "no managed torrent named \"zzz\"");
        // Six names hold "x": too many to offer.
        assert_eq!(err("x"), "no managed torrent named \"x\"");
        assert_eq!(lookup(&cfg, "a.bin").unwrap().name, "a.bin");
    }
}
