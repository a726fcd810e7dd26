//! Another machine's Transmission RPC ([`crate::remote`]):
//!
//! - `push(torrent, url[, opts])`: a torrent handed to it, which adds it and downloads it.
//!   `torrent` is a managed torrent's name or info-hash (its .torrent file is sent), a .torrent
//!   file or magnet link as `load` takes them, or a `Torrent` (`create`, `load`). Options:
//!   `paused`, `download_dir` (a folder on the other machine), `labels` (an array of strings).
//!   Returns a map: `added` (false when it was there already), `id`, `name`, `info_hash`, `url`.
//! - `remote_torrent(url, key)`: a torrent that machine has, by name or info-hash: `name`,
//!   `info_hash`, `percent_done` (there), `magnet` (its link with that machine as a peer, `x.pe`),
//!   `url`; what `b-pull` starts.
//! - `rpc(url, method[, arguments])`: any call (`torrent-get`, `session-stats`, ...), its
//!   `arguments` a map; returns the answer's `arguments` as a map.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::torrent_file::TorrentFile;
use super::{fail, opt};
use crate::remote::{PushOptions, Pushed};
use crate::script::host::{HostContext, Opts};

/// How long each request to the other machine may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The .torrent bytes `key` names: what `load` opens (a managed torrent's name or info-hash, a
/// .torrent file or URL, a magnet link).
fn metainfo_of(ctx: &HostContext, key: &str) -> Result<Vec<u8>, Box<EvalAltResult>> {
    let opened = super::torrent_file::load_file(ctx, "push", key)?;
    Ok(opened.meta.as_bytes().to_vec())
}

fn options(opts: &Map) -> Result<PushOptions, Box<EvalAltResult>> {
    let o = Opts {
        func: "push",
        map: opts,
    };
    o.check(&["paused", "download_dir", "labels"])?;
    let labels = o.strings("labels", "a label")?;
    Ok(PushOptions {
        paused: o.bool("paused")?,
        download_dir: o.string("download_dir")?,
        labels,
    })
}

fn push(
    ctx: &HostContext,
    metainfo: Vec<u8>,
    url: &str,
    opts: &Map,
) -> Result<Map, Box<EvalAltResult>> {
    let opts = options(opts)?;
    let pushed = ctx
        .block_on(crate::remote::push(url, &metainfo, &opts, TIMEOUT))?
        .or_else(|e| fail("push", format!("{e:#}")))?;
    Ok(pushed_map(pushed))
}

fn pushed_map(p: Pushed) -> Map {
    let mut m = Map::new();
    m.insert("added".into(), p.added.into());
    m.insert("id".into(), opt(p.id));
    m.insert("name".into(), p.name.into());
    m.insert("info_hash".into(), p.info_hash.into());
    m.insert("url".into(), p.url.into());
    m
}

/// `remote_torrent(url, key)`: the torrent `key` names on the machine whose RPC is at `url`.
fn remote_torrent(ctx: &HostContext, url: &str, key: &str) -> Result<Map, Box<EvalAltResult>> {
    let f = ctx
        .block_on(crate::remote::find(url, key, TIMEOUT))?
        .or_else(|e| fail("remote_torrent", format!("{e:#}")))?;
    let mut m = Map::new();
    m.insert("url".into(), f.url.into());
    m.insert("name".into(), f.name.into());
    m.insert("info_hash".into(), f.info_hash.into());
    m.insert("percent_done".into(), f.percent_done.into());
    m.insert("magnet".into(), f.magnet.into());
    Ok(m)
}

/// `rpc(url, method, arguments)`: the answer's `arguments`.
fn rpc(
    ctx: &HostContext,
    url: &str,
    method: &str,
    args: Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let arguments: serde_json::Value = rhai::serde::from_dynamic(&Dynamic::from_map(args))
        .or_else(|e| fail("rpc", format!("arguments that JSON cannot carry: {e}")))?;
    let (_, answer) = ctx
        .block_on(crate::remote::call(url, method, arguments, TIMEOUT))?
        .or_else(|e| fail("rpc", format!("{e:#}")))?;
    rhai::serde::to_dynamic(answer).or_else(|e| fail("rpc", e))
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn(
        "remote_torrent",
        move |url: &str, key: &str| -> Result<Map, Box<EvalAltResult>> {
            remote_torrent(&c, url, key)
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "rpc",
        move |url: &str, method: &str| -> Result<Dynamic, Box<EvalAltResult>> {
            rpc(&c, url, method, Map::new())
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "rpc",
        move |url: &str, method: &str, args: Map| -> Result<Dynamic, Box<EvalAltResult>> {
            rpc(&c, url, method, args)
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "push",
        move |key: &str, url: &str| -> Result<Map, Box<EvalAltResult>> {
            push(&c, metainfo_of(&c, key)?, url, &Map::new())
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "push",
        move |key: &str, url: &str, opts: Map| -> Result<Map, Box<EvalAltResult>> {
            push(&c, metainfo_of(&c, key)?, url, &opts)
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "push",
        move |t: &mut TorrentFile, url: &str| -> Result<Map, Box<EvalAltResult>> {
            push(&c, t.meta.as_bytes().to_vec(), url, &Map::new())
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "push",
        move |t: &mut TorrentFile, url: &str, opts: Map| -> Result<Map, Box<EvalAltResult>> {
            push(&c, t.meta.as_bytes().to_vec(), url, &opts)
        },
    );
}
