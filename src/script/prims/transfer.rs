//! Peer primitives: `start(torrent[, opts])`, `seed(torrent, data_dir[, opts])`, `bitfield(peer,
//! torrent)`, `download_piece(peer, torrent, index)`. `start` and `seed` return the torrent's
//! `TorrentHandle` ([`super::handles`]), the same type `torrent(name)` gives: `wait`, `follow` and
//! `cancel` on it, as every getter and action, work wherever the torrent runs (in this process's
//! peer session, or, for a one-shot command while a shell or daemon owns torrents.toml, handed to
//! that owner: see [`super::runner`]).
//!
//! `start` and `seed` take `up_limit`/`down_limit` in `opts` (bytes per second or a size such as
//! `"500K"`): the torrent's own speed limits, as `t.upload_limit`/`t.download_limit` set them; and
//! `priority` (`"high"`, `"normal"`, `"low"`), as `t.bandwidth_priority` sets it.
//!
//! Each probe (`bitfield`, `download_piece`) is its own short connection with a fresh peer id, so a
//! peer still closing the previous probe's connection does not take the next one for a duplicate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Array, Blob, Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use super::handles::Handle;
use crate::engine::probe;
use crate::metainfo::Metainfo;
use crate::script::host::{HostContext, Opts};
use crate::types::PeerId;

fn parse_peer(func: &str, peer: &str) -> Result<SocketAddr, Box<EvalAltResult>> {
    peer.parse().or_else(|_| {
        fail(
            func,
            format!("{peer:?} is not a peer address like 127.0.0.1:6881"),
        )
    })
}

fn load_meta(func: &str, torrent: &str) -> Result<Metainfo, Box<EvalAltResult>> {
    crate::source::load_file(Path::new(torrent)).or_else(|e| fail(func, format!("{e:#}")))
}

/// The folder a torrent's data goes in must be a folder (a download makes it when missing); a seed's
/// must also hold at least one of the torrent's files, so a mistyped folder is not mistaken for data to
/// fetch from scratch.
fn check_data_dir(
    func: &str,
    meta: &Metainfo,
    dir: &Path,
    seeding: bool,
) -> Result<(), Box<EvalAltResult>> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return fail(func, format!("{shown} is not a folder")),
        Ok(_) => {}
        Err(_) if seeding => return fail(func, format!("{shown}: no such folder")),
        Err(_) => return Ok(()),
    }
    let mut files = meta.info.files.iter().filter(|f| !f.padding);
    if seeding && !files.any(|f| dir.join(&f.path).is_file()) {
        let top = meta.info.files.first().map(|f| {
            f.path
                .components()
                .next()
                .map_or(f.path.clone(), |c| PathBuf::from(c.as_os_str()))
        });
        return fail(
            func,
            format!(
                "no data of {} in {shown} (expected {})",
                meta.info.name,
                dir.join(top.unwrap_or_default()).display()
            ),
        );
    }
    Ok(())
}

/// Adds the torrent (see [`add_torrent`]), then applies the `up_limit`/`down_limit` options (bytes
/// per second or a size such as `"500K"`) as its own speed limits and `priority` as its bandwidth
/// priority, wherever it runs.
fn add(
    ctx: &Arc<HostContext>,
    func: &'static str,
    torrent: &str,
    data_dir: Option<String>,
    opts: &Map,
    seeding: bool,
) -> Result<Handle, Box<EvalAltResult>> {
    let limit = |key: &str| match opts.get(key) {
        Some(v) => super::handles::rate_arg(func, v).map(Some),
        None => Ok(None),
    };
    let (up, down) = (limit("up_limit")?, limit("down_limit")?);
    let priority = match opts.get("priority").filter(|v| !v.is_unit()) {
        Some(v) => Some(super::handles::priority_arg(func, v)?),
        None => None,
    };
    let t = add_torrent(ctx, func, torrent, data_dir, opts, seeding)?;
    if up.is_some() || down.is_some() || priority.is_some() {
        super::handles::set_limits(ctx, &t.info_hash, &t.name, func, |l| {
            l.upload = up.unwrap_or(l.upload);
            l.download = down.unwrap_or(l.download);
            l.priority = priority.unwrap_or(l.priority);
        })?;
    }
    Ok(t)
}

fn add_torrent(
    ctx: &Arc<HostContext>,
    func: &'static str,
    torrent: &str,
    data_dir: Option<String>,
    opts: &Map,
    seeding: bool,
) -> Result<Handle, Box<EvalAltResult>> {
    let o = Opts { func, map: opts };
    o.check(&[
        "output",
        "peers",
        "trackers",
        "paused",
        "register",
        "only",
        "sequential",
        "up_limit",
        "down_limit",
        "priority",
        "metadata_timeout",
    ])?;
    let metadata_timeout = match o.int("metadata_timeout")? {
        None => crate::source::METADATA_TIMEOUT,
        Some(secs) if secs > 0 => std::time::Duration::from_secs(secs as u64),
        Some(_) => {
            return fail(
                func,
                "`metadata_timeout` must be a number of seconds above 0",
            )
        }
    };
    let only = match opts.get("only").filter(|v| !v.is_unit()) {
        Some(v) => super::files::only_globs(func, v)?,
        None => Vec::new(),
    };
    let sequential = o.bool("sequential")?;
    let mut peers = Vec::new();
    if let Some(list) = opts.get("peers").filter(|v| !v.is_unit()) {
        let list = list
            .clone()
            .into_array()
            .or_else(|_| fail(func, "`peers` must be an array of addresses"))?;
        for p in list {
            peers.push(parse_peer(func, &p.to_string())?);
        }
    }
    let trackers = match opts.get("trackers").filter(|v| !v.is_unit()) {
        Some(list) => {
            let list = list
                .clone()
                .into_array()
                .or_else(|_| fail(func, "`trackers` must be an array of URLs"))?;
            let mut urls = Vec::with_capacity(list.len());
            for t in list {
                let url = t.to_string();
                crate::metainfo::check_tracker_url(&url).or_else(|e| fail(func, e))?;
                urls.push(url);
            }
            Some(urls)
        }
        None => None,
    };
    let register = match opts.get("register").filter(|v| !v.is_unit()) {
        None => true,
        Some(_) => o.bool("register")?,
    };
    let paused = o.bool("paused")?;
    let output = o.string("output")?;
    // A managed torrent's name or info-hash is its .torrent; nothing by that name says so.
    let torrent = &super::torrent_file::torrent_source(ctx, func, torrent)?;
    // Every option is checked before a magnet link's metadata is fetched.
    if let Ok(m) = btorrent_proto::magnet::Magnet::parse(torrent) {
        // Already running: no need to fetch its metadata again.
        if let Some(h) = ctx.session()?.get(&m.info_hash) {
            return Ok(handle_of(&h));
        }
    }
    let opened = super::torrent_file::open_source(
        ctx,
        func,
        torrent,
        true,
        peers.clone(),
        metadata_timeout,
    )?;
    let (meta, magnet_files, follow) = (opened.meta, opened.files, opened.mutable);
    let source_file = opened.path.unwrap_or_else(|| PathBuf::from(torrent));
    let cfg = ctx.config()?;
    let data_dir = match data_dir.or(output) {
        Some(d) => PathBuf::from(d),
        None => cfg.output_dir(),
    };
    let data_dir = std::path::absolute(&data_dir).unwrap_or(data_dir);
    check_data_dir(func, &meta, &data_dir, seeding)?;
    let files = if only.is_empty() {
        // A magnet link's `so` (BEP 53), unless `only` chose files itself.
        magnet_files
    } else {
        Some(super::files::only(func, &meta.info, &only)?)
    };
    let here = ctx
        .peer
        .current()
        .is_some_and(|s| s.get(&meta.info_hash).is_some());
    if register && !here {
        // A shell or daemon owning torrents.toml runs it: one process per torrent.
        let handoff = crate::actions::Handoff {
            torrent: std::path::absolute(&source_file).unwrap_or_else(|_| source_file.clone()),
            data_dir: data_dir.clone(),
            paused,
            seeding,
            peers: peers.clone(),
            trackers: trackers.clone(),
            files: files.clone(),
            sequential,
            follow: follow.clone(),
        };
        let handed = ctx
            .block_on(ctx.live.hand_to_owner(handoff))?
            .or_else(|e| fail(func, format!("{e:#}")))?;
        if handed {
            return Ok(Handle {
                info_hash: meta.info_hash,
                name: meta.info.name.clone(),
            });
        }
    }
    let session = ctx.session()?;
    if let Some(h) = session.get(&meta.info_hash) {
        return Ok(handle_of(&h));
    }
    let adding = crate::actions::Adding {
        meta,
        src: Some(&source_file),
        data_dir,
        paused,
        seeding,
        register,
        peers,
        trackers,
        files,
        sequential,
        sequential_from: 0,
        labels: None,
        complete_dir: None,
        follow,
        watch: None,
        local_files: Vec::new(),
    };
    let handle = ctx
        .block_on(crate::actions::add(ctx.torrents(), &session, adding))?
        .or_else(|e| fail(func, format!("{e:#}")))?;
    Ok(handle_of(&handle))
}

/// The script's handle of a torrent running in this process's session.
fn handle_of(h: &crate::engine::TorrentHandle) -> Handle {
    Handle {
        info_hash: h.info_hash(),
        name: h.name().to_string(),
    }
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("start", move |torrent: &str| {
        add(&c, "start", torrent, None, &Map::new(), false)
    });
    let c = ctx.clone();
    engine.register_fn("start", move |torrent: &str, opts: Map| {
        add(&c, "start", torrent, None, &opts, false)
    });
    let c = ctx.clone();
    engine.register_fn("seed", move |torrent: &str, data_dir: &str| {
        add(
            &c,
            "seed",
            torrent,
            Some(data_dir.to_string()),
            &Map::new(),
            true,
        )
    });
    let c = ctx.clone();
    engine.register_fn("seed", move |torrent: &str, data_dir: &str, opts: Map| {
        add(&c, "seed", torrent, Some(data_dir.to_string()), &opts, true)
    });
    let c = ctx.clone();
    engine.register_fn(
        "bitfield",
        move |peer: &str, torrent: &str| -> Result<Map, Box<EvalAltResult>> {
            let addr = parse_peer("bitfield", peer)?;
            let meta = load_meta("bitfield", torrent)?;
            let bf = c
                .block_on(probe::fetch_bitfield(addr, &meta, PeerId::generate()))?
                .or_else(|e| fail("bitfield", format!("{peer}: {e:#}")))?;
            let n = meta.info.piece_count();
            let bits: Array = (0..n).map(|i| Dynamic::from(bf.get(i))).collect();
            let have = (0..n).filter(|&i| bf.get(i)).count();
            let mut m = Map::new();
            m.insert("total".into(), (n as i64).into());
            m.insert("have".into(), (have as i64).into());
            m.insert("complete".into(), (have == n).into());
            m.insert("bits".into(), bits.into());
            Ok(m)
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "download_piece",
        move |peer: &str, torrent: &str, index: i64| -> Result<Blob, Box<EvalAltResult>> {
            let addr = parse_peer("download_piece", peer)?;
            let meta = load_meta("download_piece", torrent)?;
            let index = u32::try_from(index)
                .or_else(|_| fail("download_piece", format!("bad piece index {index}")))?;
            c.block_on(probe::download_piece(
                addr,
                &meta,
                index,
                PeerId::generate(),
            ))?
            .or_else(|e| fail("download_piece", format!("{e:#}")))
        },
    );
}
