//! Choosing files from scripts: on a `TorrentHandle`, `files` (one map per file: `index`, `path`,
//! `length`, `done`, `progress`, `wanted`, `priority`), `set_wanted(index_or_glob, bool)`,
//! `set_priority(index_or_glob, "high"|"normal"|"low")`, `sequential` and `sequential_from` (the
//! piece that order starts at; get/set); and the globs of `start(torrent, #{ only: [...] })`.
//!
//! A glob (`*` any run of characters, `?` one) names the files whose path inside the torrent (below
//! its top folder) or whose file name it matches; an index is the file's place in the torrent, from 0.
//! Changes go to the running torrent and to torrents.toml ([`crate::actions::choose_files`]).

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use super::handles::Handle;
use crate::engine::FilePriority;
use crate::metainfo::{Info, Metainfo};
use crate::script::host::HostContext;

/// Whether `text` matches `pat` (`*` any run of characters, `?` any one).
pub(crate) fn glob_match(pat: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The path of file `f` inside the torrent, below its top folder (`a/b.mkv`), and its file name.
fn names(info: &Info, f: usize) -> (String, String) {
    let path = &info.files[f].path;
    let inner = if info.multi_file {
        path.strip_prefix(&info.name).unwrap_or(path)
    } else {
        path.as_path()
    };
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    (inner.to_string_lossy().into_owned(), name)
}

/// The files `glob` names (padding files never).
fn matching(info: &Info, glob: &str) -> Vec<usize> {
    (0..info.files.len())
        .filter(|&f| !info.files[f].padding)
        .filter(|&f| {
            let (inner, name) = names(info, f);
            glob_match(glob, &inner) || glob_match(glob, &name)
        })
        .collect()
}

/// For `start`'s `only`: the files some glob names are wanted, the others skipped. A glob that names
/// no file is an error.
pub(crate) fn only(
    func: &str,
    info: &Info,
    globs: &[String],
) -> Result<Vec<FilePriority>, Box<EvalAltResult>> {
    let mut p = vec![FilePriority::Skip; info.files.len()];
    for g in globs {
        let hit = matching(info, g);
        if hit.is_empty() {
            return fail(func, format!("{g:?} names no file of {}", info.name));
        }
        for f in hit {
            p[f] = FilePriority::Normal;
        }
    }
    Ok(p)
}

/// `only` as given to `start`: a glob, a comma list of globs, or an array of either.
pub(crate) fn only_globs(func: &str, v: &Dynamic) -> Result<Vec<String>, Box<EvalAltResult>> {
    let items: Array = match v.clone().try_cast::<Array>() {
        Some(a) => a,
        None if v.is_string() => vec![v.clone()],
        None => return fail(func, "`only` must be a glob or an array of globs"),
    };
    let mut out = Vec::new();
    for i in items {
        if !i.is_string() {
            return fail(func, "`only` must be a glob or an array of globs");
        }
        out.extend(
            i.to_string()
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(String::from),
        );
    }
    Ok(out)
}

/// The managed torrent's metainfo (its .torrent in torrents.toml).
fn meta_of(ctx: &HostContext, h: &Handle, func: &str) -> Result<Metainfo, Box<EvalAltResult>> {
    let cfg = ctx
        .torrents()
        .config()
        .or_else(|e| fail(func, format!("{e:#}")))?;
    let Some(e) = cfg.find(&h.info_hash) else {
        return fail(func, format!("{} is not a managed torrent", h.name));
    };
    crate::source::load_file(&cfg.resolve(&e.file)).or_else(|e| fail(func, format!("{e:#}")))
}

/// The files an index or a glob names.
fn targets(func: &str, info: &Info, which: &Dynamic) -> Result<Vec<usize>, Box<EvalAltResult>> {
    if let Ok(i) = which.as_int() {
        if i < 0 || i as usize >= info.files.len() {
            return fail(
                func,
                format!(
                    "{} has no file {i} (it has {}, from 0)",
                    info.name,
                    info.files.len()
                ),
            );
        }
        return Ok(vec![i as usize]);
    }
    if !which.is_string() {
        return fail(func, "give a file index or a glob");
    }
    let glob = which.to_string();
    let hit = matching(info, &glob);
    if hit.is_empty() {
        return fail(func, format!("{glob:?} names no file of {}", info.name));
    }
    Ok(hit)
}

fn choose(
    ctx: &HostContext,
    h: &Handle,
    func: &str,
    which: Option<&Dynamic>,
    prio: Option<FilePriority>,
    order: crate::actions::OrderChange,
) -> Result<(), Box<EvalAltResult>> {
    let meta = meta_of(ctx, h, func)?;
    let changes: Vec<(usize, FilePriority)> = match (which, prio) {
        (Some(w), Some(p)) => targets(func, &meta.info, w)?
            .into_iter()
            .map(|f| (f, p))
            .collect(),
        _ => Vec::new(),
    };
    crate::actions::choose_files(
        ctx.torrents(),
        ctx.live.as_ref(),
        &h.info_hash,
        &h.name,
        &changes,
        order,
    )
    .or_else(|e| fail(func, format!("{e:#}")))
}

/// `t.files`: the running torrent's figures, or torrents.toml's selection with `done` and
/// `progress` unknown (`()`), as `t.progress` is: what is on disk is known only once checked.
fn files(ctx: &HostContext, h: &Handle) -> Result<Array, Box<EvalAltResult>> {
    let meta = meta_of(ctx, h, "files")?;
    let live = ctx.live.stats(&h.info_hash).map(|s| s.files);
    let recorded = ctx
        .torrents()
        .config()
        .ok()
        .and_then(|c| c.find(&h.info_hash).map(|e| e.files.clone()))
        .unwrap_or_default()
        .priorities(meta.info.files.len());
    let mut out = Array::new();
    for (i, f) in meta.info.files.iter().enumerate() {
        if f.padding {
            continue;
        }
        let (done, prio) = match live.as_ref().and_then(|l| l.get(i)) {
            Some(l) => (Some(l.done), l.priority),
            None => (
                None,
                recorded.as_ref().map_or(FilePriority::Normal, |p| p[i]),
            ),
        };
        let mut m = Map::new();
        m.insert("index".into(), (i as i64).into());
        m.insert("path".into(), names(&meta.info, i).0.into());
        m.insert("length".into(), (f.length as i64).into());
        let progress = |done: u64| {
            if f.length == 0 {
                1.0
            } else {
                done as f64 / f.length as f64
            }
        };
        m.insert(
            "done".into(),
            done.map_or(Dynamic::UNIT, |d| (d as i64).into()),
        );
        m.insert(
            "progress".into(),
            done.map_or(Dynamic::UNIT, |d| progress(d).into()),
        );
        m.insert("wanted".into(), prio.wanted().into());
        m.insert("priority".into(), prio.as_str().into());
        out.push(m.into());
    }
    Ok(out)
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_get("files", move |h: &mut Handle| files(&c, h));
    let c = ctx.clone();
    engine.register_fn(
        "set_wanted",
        move |h: &mut Handle, which: Dynamic, wanted: bool| {
            let p = if wanted {
                FilePriority::Normal
            } else {
                FilePriority::Skip
            };
            choose(
                &c,
                h,
                "set_wanted",
                Some(&which),
                Some(p),
                Default::default(),
            )
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "set_priority",
        move |h: &mut Handle, which: Dynamic, prio: &str| {
            let p = match FilePriority::parse(prio) {
                Some(p) if p.wanted() => p,
                _ => {
                    return fail(
                        "set_priority",
                        format!("{prio:?} is not a priority (high, normal or low)"),
                    )
                }
            };
            choose(
                &c,
                h,
                "set_priority",
                Some(&which),
                Some(p),
                Default::default(),
            )
        },
    );
    let c = ctx.clone();
    engine.register_get("sequential", move |h: &mut Handle| -> Dynamic {
        match c.live.stats(&h.info_hash) {
            Some(s) => s.sequential.into(),
            None => recorded(&c, h).is_some_and(|f| f.sequential).into(),
        }
    });
    let c = ctx.clone();
    engine.register_set("sequential", move |h: &mut Handle, on: bool| {
        let order = crate::actions::OrderChange::sequential(Some(on));
        choose(&c, h, "sequential", None, None, order)
    });
    let c = ctx.clone();
    engine.register_get("sequential_from", move |h: &mut Handle| -> i64 {
        match c.live.stats(&h.info_hash) {
            Some(s) => s.sequential_from as i64,
            None => recorded(&c, h).map_or(0, |f| f.sequential_from as i64),
        }
    });
    let c = ctx.clone();
    engine.register_set("sequential_from", move |h: &mut Handle, piece: i64| {
        let Ok(piece) = u32::try_from(piece) else {
            return fail(
                "sequential_from",
                format!("{piece} is not a piece index (0 or more)"),
            );
        };
        let order = crate::actions::OrderChange {
            sequential: None,
            sequential_from: Some(piece),
        };
        choose(&c, h, "sequential_from", None, None, order)
    });
}

/// What torrents.toml records of the files of `h`'s torrent, for one that runs nowhere.
fn recorded(ctx: &HostContext, h: &Handle) -> Option<crate::config::FileChoice> {
    let cfg = ctx.torrents().config().ok()?;
    cfg.find(&h.info_hash).map(|e| e.files.clone())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*.mkv", "a/b.mkv"));
        assert!(glob_match("b.mk?", "b.mkv"));
        assert!(glob_match("a/*", "a/b.mkv"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("*.mkv", "b.mp4"));
        assert!(!glob_match("a?", "a"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
    }
}
