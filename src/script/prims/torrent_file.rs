//! `.torrent` primitives: `create(path[, url[, opts]])` (without a URL, the default tracker),
//! `load(torrent)`, `edit(torrent, url)` and `edit(torrent, changes)` (its trackers: a new primary,
//! backups added or removed, all cleared), `info(torrent)`, and the `Torrent` type with its
//! getters.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use crate::fsutil::write_atomic;
use crate::metainfo::{
    change_trackers, create_torrent, edit_trackers, CreateOptions, Metainfo, MetainfoError,
    TrackerEdit,
};
use crate::script::host::{cancelled_error, HostContext, Opts};
use crate::units::human_bytes;

/// A .torrent as scripts see it: the parsed file, where it is on disk, and (for one just created) the
/// folder that holds its data.
#[derive(Clone)]
pub struct TorrentFile {
    pub meta: Metainfo,
    pub path: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
}

/// Free text from a .torrent (comment, creator, source, tracker URLs) as scripts see it: control
/// characters become U+FFFD, so printing it can never send a terminal an escape sequence.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

fn trackers_of(m: &Metainfo) -> Array {
    m.trackers()
        .iter()
        .map(|t| Dynamic::from(printable(t)))
        .collect()
}

/// The trackers in their tiers (BEP 12): a list of lists, the first tried first.
fn tiers_of(m: &Metainfo) -> Array {
    m.tracker_tiers()
        .iter()
        .map(|tier| {
            let urls: Array = tier.iter().map(|u| Dynamic::from(printable(u))).collect();
            Dynamic::from(urls)
        })
        .collect()
}

/// 2 for a v2-only torrent (BEP 52), whose info-hash is its SHA-256 cut to 20 bytes; 1 otherwise.
fn version_of(m: &Metainfo) -> i64 {
    if m.info.v2.is_some() {
        2
    } else {
        1
    }
}

/// A v2 or hybrid torrent's whole SHA-256 info-hash in hex; unit otherwise.
fn info_hash_v2_of(m: &Metainfo) -> Dynamic {
    m.info_hash_v2
        .map_or(Dynamic::UNIT, |h| hex::encode(h).into())
}

fn web_seeds_of(m: &Metainfo) -> Array {
    m.web_seeds
        .iter()
        .map(|u| Dynamic::from(printable(u)))
        .collect()
}

impl TorrentFile {
    /// Everything `b-info` shows, as a map (also what `info()` returns and `--json` prints).
    pub fn to_map(&self) -> Map {
        let m = &self.meta;
        let mut map = Map::new();
        map.insert("name".into(), m.info.name.clone().into());
        map.insert("info_hash".into(), m.info_hash.to_hex().into());
        map.insert("version".into(), version_of(m).into());
        map.insert("format".into(), m.info.format().as_str().into());
        map.insert("info_hash_v2".into(), info_hash_v2_of(m));
        map.insert("magnet".into(), m.magnet().into());
        map.insert("trackers".into(), trackers_of(m).into());
        map.insert("tiers".into(), tiers_of(m).into());
        map.insert("web_seeds".into(), web_seeds_of(m).into());
        map.insert("piece_length".into(), (m.info.piece_length as i64).into());
        map.insert("piece_count".into(), (m.info.piece_count() as i64).into());
        map.insert("size".into(), (m.info.total_length as i64).into());
        map.insert("size_human".into(), human_bytes(m.info.total_length).into());
        map.insert("private".into(), m.info.private.into());
        map.insert("multi_file".into(), m.info.multi_file.into());
        let opt = |v: &Option<String>| {
            v.as_deref()
                .map_or(Dynamic::UNIT, |t| Dynamic::from(printable(t)))
        };
        map.insert("comment".into(), opt(&m.comment));
        map.insert("created_by".into(), opt(&m.created_by));
        map.insert("source".into(), opt(&m.info.source));
        map.insert(
            "creation_date".into(),
            m.creation_date.map_or(Dynamic::UNIT, Dynamic::from),
        );
        let files: Array = m
            .info
            .files
            .iter()
            .filter(|f| !f.padding)
            .map(|f| {
                let mut e = Map::new();
                e.insert("path".into(), f.path.display().to_string().into());
                e.insert("length".into(), (f.length as i64).into());
                e.insert("executable".into(), f.executable.into());
                let link = f.symlink.as_ref();
                let link = link.map_or(Dynamic::UNIT, |t| t.display().to_string().into());
                e.insert("symlink".into(), link);
                // The time the torrent records for it: seconds since 1970 and as RFC 3339 text.
                let at = |t: u64| {
                    let at =
                        std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(t))?;
                    Some((
                        i64::try_from(t).ok()?,
                        humantime::format_rfc3339_seconds(at),
                    ))
                };
                let (mtime, modified) = match f.mtime.and_then(at) {
                    Some((t, text)) => (Dynamic::from(t), Dynamic::from(text.to_string())),
                    None => (Dynamic::UNIT, Dynamic::UNIT),
                };
                e.insert("mtime".into(), mtime);
                e.insert("modified".into(), modified);
                Dynamic::from_map(e)
            })
            .collect();
        map.insert("files".into(), files.into());
        map.insert(
            "path".into(),
            self.path
                .as_ref()
                .map_or(Dynamic::UNIT, |p| p.display().to_string().into()),
        );
        map
    }
}

/// Opens what a script names a torrent by (see [`crate::source`]): a .torrent path, or a magnet link
/// whose metadata is fetched first from the link's peers and trackers and `peers`, with a line of
/// progress each time the number of peers answering changes; saved in `torrents_dir` when `save`;
/// given up after `timeout` without the metadata.
pub(crate) fn open_source(
    ctx: &HostContext,
    func: &str,
    source: &str,
    save: bool,
    peers: Vec<std::net::SocketAddr>,
    timeout: std::time::Duration,
) -> Result<crate::source::Opened, Box<EvalAltResult>> {
    let url = crate::source::is_url(source);
    if !url && !crate::source::is_magnet_link(source) {
        return ctx
            .block_on(crate::source::open(source, None, |_| {}))?
            .or_else(|e| fail(func, format!("{e:#}")));
    }
    let save_to = if save {
        Some(ctx.config()?.torrents_dir())
    } else {
        None
    };
    if url {
        let opened = ctx
            .block_on(crate::source::fetch_url(source, save_to.as_deref()))?
            .or_else(|e| fail(func, format!("{e:#}")))?;
        if let Some(p) = &opened.path {
            ctx.print(&format!(
                "{}: fetched from {}, saved as {}",
                opened.meta.info.name,
                source.trim(),
                p.display()
            ));
        }
        return Ok(opened);
    }
    let session = ctx.session()?;
    let how = crate::source::Open {
        session: &session,
        save_to,
        peers,
        extra: None,
        timeout,
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    let last = parking_lot::Mutex::new(None::<usize>);
    let opened = ctx
        .block_on(crate::source::open(source, Some(how), |p| {
            let mut last = last.lock();
            if *last != Some(p.peers) {
                *last = Some(p.peers);
                ctx.print(&p.to_string());
            }
        }))?
        .or_else(|e| fail(func, format!("{e:#}")))?;
    let m = &opened.meta;
    let saved = opened
        .path
        .as_ref()
        .map(|p| format!(", saved as {}", p.display()))
        .unwrap_or_default();
    let files = m.info.files.iter().filter(|f| !f.padding).count();
    let plural = if files == 1 { "" } else { "s" };
    ctx.print(&format!(
        "metadata of {} ({}, {files} file{plural}) fetched and checked{saved}",
        m.info.name,
        human_bytes(m.info.total_length),
    ));
    Ok(opened)
}

/// What `load`, `info`, `edit`, `push`, `start` and `seed` read for `source`: a magnet link, a URL
/// or a .torrent file as given; else the .torrent of the managed torrent of that name or info-hash
/// (`b-info share` right after `b-create share`, where `share` is the data, not a .torrent). A
/// folder or nothing: an error that says so (a folder's names the command that makes a torrent of
/// it). Another file is read as given: a .torrent may be named otherwise, and its parse says what
/// it is if it is not one.
pub(super) fn torrent_source(
    ctx: &HostContext,
    func: &str,
    source: &str,
) -> Result<String, Box<EvalAltResult>> {
    let path = Path::new(source);
    let a_torrent_file = path.is_file() && source.to_ascii_lowercase().ends_with(".torrent");
    if crate::source::is_magnet_link(source) || crate::source::is_url(source) || a_torrent_file {
        return Ok(source.to_string());
    }
    if let Ok(cfg) = ctx.config() {
        if let Ok(entry) = super::registry::lookup(&cfg, source) {
            return Ok(cfg.resolve(&entry.file).display().to_string());
        }
    }
    if path.is_dir() {
        return fail(
            func,
            format!("{source} is not a torrent: b-create {source} makes one of it"),
        );
    }
    if !path.exists() {
        return fail(
            func,
            format!("{source}: no .torrent file, URL, magnet link or managed torrent by that name"),
        );
    }
    Ok(source.to_string())
}

pub(super) fn load_file(
    ctx: &HostContext,
    func: &str,
    source: &str,
) -> Result<TorrentFile, Box<EvalAltResult>> {
    let source = torrent_source(ctx, func, source)?;
    let opened = open_source(
        ctx,
        func,
        &source,
        false,
        Vec::new(),
        crate::source::METADATA_TIMEOUT,
    )?;
    Ok(TorrentFile {
        meta: opened.meta,
        path: opened.path,
        data_dir: None,
    })
}

fn create(
    ctx: &HostContext,
    path: &str,
    url: &str,
    opts: &Map,
) -> Result<TorrentFile, Box<EvalAltResult>> {
    let o = Opts {
        func: "create",
        map: opts,
    };
    o.check(&[
        "piece_length",
        "private",
        "comment",
        "source",
        "output",
        "exclude_hidden",
        "trackers",
        "web_seeds",
        "v2",
        "hybrid",
        "symlinks",
        "mtime",
    ])?;
    let src = Path::new(path);
    if !src.exists() {
        return fail("create", format!("{path}: no such file or folder"));
    }
    let mut trackers = Vec::new();
    if !url.trim().is_empty() {
        trackers.push(url.trim().to_string());
    }
    if let Some(extra) = opts.get("trackers").filter(|v| !v.is_unit()) {
        let arr = extra
            .clone()
            .into_array()
            .or_else(|_| fail("create", "`trackers` must be an array of URLs"))?;
        for t in arr {
            trackers.push(t.to_string());
        }
    }
    let web_seeds = o.strings("web_seeds", "a URL")?;
    let copts = CreateOptions {
        trackers,
        web_seeds,
        piece_length: o.int("piece_length")?.map(|n| n.max(0) as u64),
        private: o.bool("private")?,
        comment: o.string("comment")?,
        source: o.string("source")?,
        exclude_hidden: o.bool("exclude_hidden")?,
        v2: o.bool("v2")?,
        hybrid: o.bool("hybrid")?,
        symlinks: o.bool("symlinks")?,
        mtime: o.bool("mtime")?,
        threads: 0,
        // Ctrl-C stops the hashing, however large the data.
        cancel: Some(ctx.cancel.clone()),
    };
    let cfg = ctx.config()?;
    let output = o.string("output")?.map(PathBuf::from);
    // Before hashing, which may take long: a named output must be free or a .torrent.
    if let Some(out) = &output {
        check_output(out, None)?;
    }
    let bar = progress_bar(ctx);
    let meta = create_torrent(src, &copts, &|done, total| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let meta = match meta {
        Err(MetainfoError::Cancelled) => return Err(cancelled_error()),
        Err(e) => return fail("create", e),
        // Cancelled just as the hashing ended: nothing is written either.
        Ok(_) if ctx.cancelled() => return Err(cancelled_error()),
        Ok(m) => m,
    };
    let out = match output {
        Some(p) => p,
        None => cfg
            .torrents_dir()
            .join(format!("{}.torrent", meta.info.name)),
    };
    check_output(&out, Some(&meta))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .or_else(|e| fail("create", format!("cannot create {}: {e}", dir.display())))?;
    }
    write_atomic(&out, meta.as_bytes())
        .or_else(|e| fail("create", format!("cannot write {}: {e}", out.display())))?;
    let abs = src.canonicalize().unwrap_or_else(|_| src.to_path_buf());
    Ok(TorrentFile {
        meta,
        path: Some(out),
        data_dir: abs.parent().map(Path::to_path_buf),
    })
}

/// Where a new .torrent goes must be free, or hold the same torrent (its tracker may change): a file
/// of any other kind, data included, is never overwritten.
fn check_output(out: &Path, made: Option<&Metainfo>) -> Result<(), Box<EvalAltResult>> {
    let shown = out.display();
    match std::fs::symlink_metadata(out) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => fail("create", format!("{shown} is a folder; -o names the file")),
        Ok(_) => match Metainfo::load(out) {
            Err(_) => fail(
                "create",
                format!("{shown} exists and is not a .torrent; choose another file with -o"),
            ),
            Ok(existing) => match made {
                Some(m) if existing.info_hash != m.info_hash => fail(
                    "create",
                    format!(
                        "{shown} already holds a different torrent; choose another file with -o"
                    ),
                ),
                _ => Ok(()),
            },
        },
    }
}

fn progress_bar(ctx: &HostContext) -> Option<crate::terminal::ShownBar> {
    if !ctx.progress {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(super::progress_style(
        "hashing {bar} {percent:>3}% {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        58,
        30,
    ));
    Some(crate::terminal::ShownBar::new(bar))
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    engine.register_type_with_name::<TorrentFile>("Torrent");
    engine.register_get("name", |t: &mut TorrentFile| t.meta.info.name.clone());
    engine.register_get("info_hash", |t: &mut TorrentFile| t.meta.info_hash.to_hex());
    engine.register_get("size", |t: &mut TorrentFile| {
        t.meta.info.total_length as i64
    });
    engine.register_get("piece_length", |t: &mut TorrentFile| {
        t.meta.info.piece_length as i64
    });
    engine.register_get("piece_count", |t: &mut TorrentFile| {
        t.meta.info.piece_count() as i64
    });
    engine.register_get("private", |t: &mut TorrentFile| t.meta.info.private);
    engine.register_get("version", |t: &mut TorrentFile| version_of(&t.meta));
    engine.register_get("format", |t: &mut TorrentFile| {
        t.meta.info.format().as_str().to_string()
    });
    engine.register_get("info_hash_v2", |t: &mut TorrentFile| {
        info_hash_v2_of(&t.meta)
    });
    engine.register_get("magnet", |t: &mut TorrentFile| t.meta.magnet());
    engine.register_get("trackers", |t: &mut TorrentFile| trackers_of(&t.meta));
    engine.register_get("tiers", |t: &mut TorrentFile| tiers_of(&t.meta));
    engine.register_get("web_seeds", |t: &mut TorrentFile| web_seeds_of(&t.meta));
    engine.register_get("files", |t: &mut TorrentFile| t.to_map()["files"].clone());
    engine.register_get("path", |t: &mut TorrentFile| {
        t.path
            .as_ref()
            .map_or(Dynamic::UNIT, |p| p.display().to_string().into())
    });
    engine.register_get("data_dir", |t: &mut TorrentFile| {
        t.data_dir
            .as_ref()
            .map_or(Dynamic::UNIT, |p| p.display().to_string().into())
    });
    engine.register_fn("to_map", |t: &mut TorrentFile| t.to_map());
    engine.register_fn("to_string", |t: &mut TorrentFile| {
        format!("Torrent({} {})", t.meta.info.name, t.meta.info_hash)
    });

    let c = ctx.clone();
    engine.register_fn(
        "create",
        move |path: &str| -> Result<TorrentFile, Box<EvalAltResult>> {
            let url = c.config()?.settings.default_tracker().url;
            create(&c, path, &url, &Map::new())
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "create",
        move |path: &str, url: &str| -> Result<TorrentFile, Box<EvalAltResult>> {
            create(&c, path, url, &Map::new())
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "create",
        move |path: &str, url: &str, opts: Map| -> Result<TorrentFile, Box<EvalAltResult>> {
            create(&c, path, url, &opts)
        },
    );
    let c = ctx.clone();
    engine.register_fn("load", move |path: &str| load_file(&c, "load", path));
    let c = ctx.clone();
    engine.register_fn(
        "info",
        move |path: &str| -> Result<Map, Box<EvalAltResult>> {
            Ok(load_file(&c, "info", path)?.to_map())
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "edit",
        move |path: &str, url: &str| -> Result<TorrentFile, Box<EvalAltResult>> {
            rewrite(&c, path, |meta| {
                edit_trackers(meta, url).or_else(|e| fail("edit", e))
            })
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "edit",
        move |path: &str, changes: Map| -> Result<TorrentFile, Box<EvalAltResult>> {
            let change = tracker_edit(&changes)?;
            rewrite(&c, path, |meta| {
                let have = meta.trackers();
                if let Some(u) = change
                    .remove
                    .iter()
                    .find(|u| !have.contains(&u.trim().to_string()))
                {
                    return fail("edit", format!("{u:?} is not one of its trackers"));
                }
                change_trackers(meta, &change).or_else(|e| fail("edit", e))
            })
        },
    );
}

/// Rewrites the .torrent at `path` with what `edited` makes of it (the info-hash never changes),
/// atomically; when it is the .torrent of a managed torrent, that torrent announces to its new
/// trackers at once. Returns the file as written.
fn rewrite(
    c: &HostContext,
    path: &str,
    edited: impl FnOnce(&Metainfo) -> Result<Vec<u8>, Box<EvalAltResult>>,
) -> Result<TorrentFile, Box<EvalAltResult>> {
    if crate::source::is_magnet_link(path) || crate::source::is_url(path) {
        return fail("edit", "edit takes a .torrent file here, not a link");
    }
    let t = load_file(c, "edit", path)?;
    let bytes = edited(&t.meta)?;
    let p = t.path.clone().expect("loaded from a path");
    write_atomic(&p, &bytes)
        .or_else(|e| fail("edit", format!("cannot write {}: {e}", p.display())))?;
    let edited = load_file(c, "edit", &p.display().to_string())?;
    let managed = c.config().ok().is_some_and(|cfg| {
        cfg.find(&t.meta.info_hash).is_some_and(|e| {
            std::path::absolute(cfg.resolve(&e.file)).ok() == std::path::absolute(&p).ok()
        })
    });
    if managed {
        crate::actions::live_trackers(c.live.as_ref(), &edited.meta)
            .or_else(|e| fail("edit", format!("{e:#}")))?;
    }
    Ok(edited)
}

/// `edit(torrent, changes)`'s map: `url` (the new primary tracker), `add` and `remove` (a URL or a
/// list of them), `clear` (true: no tracker kept). Other keys are refused.
fn tracker_edit(changes: &Map) -> Result<TrackerEdit, Box<EvalAltResult>> {
    let urls = |key: &str| -> Result<Vec<String>, Box<EvalAltResult>> {
        match changes.get(key) {
            None => Ok(Vec::new()),
            Some(v) if v.is_string() => Ok(vec![v.to_string()]),
            Some(v) => match v.clone().try_cast::<Array>() {
                Some(list) if list.iter().all(|u| u.is_string()) => {
                    Ok(list.iter().map(|u| u.to_string()).collect())
                }
                _ => fail("edit", format!("{key} takes a URL or a list of URLs")),
            },
        }
    };
    let mut change = TrackerEdit {
        add: urls("add")?,
        remove: urls("remove")?,
        ..TrackerEdit::default()
    };
    for (key, v) in changes {
        match key.as_str() {
            "add" | "remove" => {}
            "url" => match v.clone().into_string() {
                Ok(u) => change.primary = Some(u),
                Err(_) => return fail("edit", "url takes a tracker URL"),
            },
            "clear" => match v.as_bool() {
                Ok(b) => change.clear = b,
                Err(_) => return fail("edit", "clear takes true or false"),
            },
            other => {
                return fail(
                    "edit",
                    format!("no change named {other:?} (url, add, remove, clear)"),
                )
            }
        }
    }
    Ok(change)
}
