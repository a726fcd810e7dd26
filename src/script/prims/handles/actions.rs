//! A torrent handle's actions: `pause()`, `resume()`, `reannounce()`, `cancel()`, `remove()` (with
//! or without deleting its files), `move_to(dir)`, `find_data(dir)`, `rename_path(path, name)` and
//! `check()`, each done through [`crate::actions`] (or the owner of torrents.toml) and recorded
//! there; what each does is in the module above.

use super::*;

fn pause(ctx: &HostContext, h: &Handle) -> Result<(), Box<EvalAltResult>> {
    crate::actions::pause(ctx.torrents(), ctx.live.as_ref(), &h.info_hash, &h.name)
        .or_else(|e| fail("pause", format!("{e:#}")))
}

fn resume(ctx: &HostContext, h: &Handle) -> Result<(), Box<EvalAltResult>> {
    // The engine's resume may start an announce, a task: scripts run on threads of their own.
    let _in_runtime = ctx.runtime.enter();
    crate::actions::resume(ctx.torrents(), ctx.live.as_ref(), &h.info_hash, &h.name)
        .or_else(|e| fail("resume", format!("{e:#}")))
}

/// `t.cancel()`: stops the transfer wherever it runs and marks the torrent `stopped` in
/// torrents.toml, in one step (see the module's doc). A torrent running nowhere is left alone.
fn cancel(ctx: &HostContext, h: &Handle) -> Result<(), Box<EvalAltResult>> {
    ctx.block_on(ctx.live.remove(h.info_hash, AfterRemove::MarkStopped))?
        .or_else(|e| fail("cancel", format!("{}: {e:#}", h.name)))?;
    // The owner of torrents.toml may be the one that wrote `stopped`: see it at once.
    ctx.torrents().refresh();
    Ok(())
}

fn remove(ctx: &HostContext, h: &Handle) -> Result<(), Box<EvalAltResult>> {
    remove_with(ctx, h, false).map(|_| ())
}

/// `t.remove(#{ delete_data: true })`: removes the torrent, then deletes its files (see
/// [`crate::actions::remove`]) and its resume data; returns `files`, `bytes` and `data` (the folder).
fn remove_opts(ctx: &HostContext, h: &Handle, opts: &Map) -> Result<Map, Box<EvalAltResult>> {
    let o = Opts {
        func: "remove",
        map: opts,
    };
    o.check(&["delete_data"])?;
    remove_with(ctx, h, o.bool("delete_data")?)
}

fn remove_with(
    ctx: &HostContext,
    h: &Handle,
    delete_data: bool,
) -> Result<Map, Box<EvalAltResult>> {
    let gone = ctx
        .block_on(crate::actions::remove(
            ctx.torrents(),
            ctx.live.as_ref(),
            h.info_hash,
            &h.name,
            delete_data,
        ))?
        .or_else(|e| fail("remove", format!("{e:#}")))?;
    let mut out = Map::new();
    if let Some(d) = gone {
        out.insert("files".into(), (d.files as i64).into());
        out.insert("bytes".into(), (d.bytes as i64).into());
        out.insert("data".into(), path_value(Some(d.data)));
    }
    Ok(out)
}

fn move_to(ctx: &HostContext, h: &Handle, dir: &str) -> Result<(), Box<EvalAltResult>> {
    ctx.block_on(crate::actions::move_to(
        ctx.torrents(),
        ctx.live.as_ref(),
        h.info_hash,
        &h.name,
        Path::new(dir),
    ))?
    .or_else(|e| fail("move_to", format!("{e:#}")))
}

/// `t.find_data(dir)`: the torrent's files are in `dir` (moved there by other means); it is pointed
/// there, nothing moves, and the data there is checked as [`check`] does (a running torrent
/// downloads again what is missing at once). Returns the check's report.
fn find_data(ctx: &HostContext, h: &Handle, dir: &str) -> Result<Map, Box<EvalAltResult>> {
    let found = ctx
        .block_on(crate::actions::relocate(
            ctx.torrents(),
            ctx.live.as_ref(),
            h.info_hash,
            &h.name,
            Path::new(dir),
        ))?
        .or_else(|e| fail("find_data", format!("{e:#}")))?;
    report(ctx, h, found)
}

/// `t.rename_path(path, name)`: renames a file of the torrent, or a folder holding some (`path` as
/// `t.files()` gives it), to `name` in the same folder, on disk and for the torrent, running here,
/// in the shell or daemon, or nowhere. Returns every file's path after it.
fn rename_path(
    ctx: &HostContext,
    h: &Handle,
    path: &str,
    name: &str,
) -> Result<rhai::Array, Box<EvalAltResult>> {
    let paths = ctx
        .block_on(crate::actions::rename_path(
            ctx.torrents(),
            ctx.live.as_ref(),
            h.info_hash,
            &h.name,
            Path::new(path),
            name,
        ))?
        .or_else(|e| fail("rename_path", format!("{e:#}")))?;
    Ok(paths
        .iter()
        .map(|p| p.display().to_string().into())
        .collect())
}

/// `t.check()`: hashes every piece of the data again, ignoring resume data. A running torrent (here
/// or in the owner of torrents.toml) withdraws the bad pieces and downloads them again at once; one
/// that is not running is checked in a session of its own and stopped again, its resume data
/// saved without the bad pieces, so its next start fetches them. Returns `pieces`, `good`, `bad`
/// (piece numbers of pieces we had), `missing` (lacked, and still to fetch), `recovered`, `oversized` (`file`, `extra` bytes) and `running`.
fn check(ctx: &HostContext, h: &Handle) -> Result<Map, Box<EvalAltResult>> {
    let found = ctx
        .block_on(ctx.live.check(h.info_hash))?
        .or_else(|e| fail("check", format!("{e:#}")))?;
    report(ctx, h, found)
}

/// The report of a check the running torrent made (`found`), or, when it runs nowhere, of one made
/// here ([`check_here`]), as the script sees it (see [`check`]).
fn report(
    ctx: &HostContext,
    h: &Handle,
    found: Option<crate::engine::CheckReport>,
) -> Result<Map, Box<EvalAltResult>> {
    let running = found.is_some();
    let r = match found {
        Some(r) => r,
        None => check_here(ctx, h)?,
    };
    Ok(report_map(&r, running))
}

/// A check's report as the script sees it (see [`check`]).
fn report_map(r: &crate::engine::CheckReport, running: bool) -> Map {
    let mut out = Map::new();
    out.insert("pieces".into(), (r.pieces_total as i64).into());
    out.insert("good".into(), (r.good as i64).into());
    let bad: rhai::Array = r.bad.iter().map(|&i| (i as i64).into()).collect();
    out.insert("bad".into(), bad.into());
    out.insert("recovered".into(), (r.recovered as i64).into());
    out.insert("missing".into(), (r.missing as i64).into());
    let oversized: rhai::Array = r
        .oversized
        .iter()
        .map(|(file, extra)| {
            let mut m = Map::new();
            m.insert("file".into(), file.display().to_string().into());
            m.insert("extra".into(), (*extra as i64).into());
            m.into()
        })
        .collect();
    out.insert("oversized".into(), oversized.into());
    out.insert("running".into(), running.into());
    out
}

/// Checks a torrent that runs nowhere: adds it paused to a session of its own, waits for its data
/// check, re-checks everything, and stops it again (its resume data saved).
fn check_here(
    ctx: &HostContext,
    h: &Handle,
) -> Result<crate::engine::CheckReport, Box<EvalAltResult>> {
    let cfg = ctx.config()?;
    let Some(e) = cfg.find(&h.info_hash) else {
        return fail("check", format!("{} is not a managed torrent", h.name));
    };
    let meta = Metainfo::load(&cfg.resolve(&e.file)).or_else(|err| fail("check", err))?;
    let opts = crate::engine::AddOptions {
        data_dir: cfg.resolve(&e.data),
        file_paths: e.files.paths(&meta.info),
        paused: true,
        trackers: Some(vec![]),
        ..Default::default()
    };
    // A session of its own, which connects to nobody and publishes nothing (an event from the shared
    // one would record a state in torrents.toml).
    let scfg = crate::engine::SessionConfig {
        resume_dir: Some(crate::services::resume_dir(&cfg)),
        ..Default::default()
    };
    let r = ctx.block_on(async move {
        let session = crate::engine::Session::start(scfg).await?;
        let r = match session.add(meta, opts).await {
            Ok(t) => t.check().await,
            Err(e) => Err(e),
        };
        session.shutdown(std::time::Duration::from_secs(5)).await;
        r
    })?;
    r.or_else(|e| fail("check", format!("{e:#}")))
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("pause", move |h: &mut Handle| pause(&c, h));
    let c = ctx.clone();
    engine.register_fn("resume", move |h: &mut Handle| resume(&c, h));
    let c = ctx.clone();
    engine.register_fn("reannounce", move |h: &mut Handle| {
        c.live.reannounce(&h.info_hash)
    });
    let c = ctx.clone();
    engine.register_fn("cancel", move |h: &mut Handle| cancel(&c, h));
    let c = ctx.clone();
    engine.register_fn("remove", move |h: &mut Handle| remove(&c, h));
    let c = ctx.clone();
    engine.register_fn("remove", move |h: &mut Handle, opts: Map| {
        remove_opts(&c, h, &opts)
    });
    let c = ctx.clone();
    engine.register_fn("check", move |h: &mut Handle| check(&c, h));
    let c = ctx.clone();
    engine.register_fn("move_to", move |h: &mut Handle, dir: &str| {
        move_to(&c, h, dir)
    });
    let c = ctx.clone();
    engine.register_fn("find_data", move |h: &mut Handle, dir: &str| {
        find_data(&c, h, dir)
    });
    let c = ctx.clone();
    engine.register_fn(
        "rename_path",
        move |h: &mut Handle, path: &str, name: &str| rename_path(&c, h, path, name),
    );
}
