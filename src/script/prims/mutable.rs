//! Mutable torrents (BEP 46): `publish(t[, #{key, salt}])` points a key's mutable link at the
//! torrent of handle `t` (in the DHT, through the peer session's node) and returns the link;
//! `resolve(link)` says which torrent a mutable link points at now. Keys live in `keys/` beside
//! torrents.toml ([`crate::keys`]), made on first use.

use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::fail;
use super::handles::Handle;
use crate::engine::mutable_torrent::public_key;
use crate::script::host::{HostContext, Opts};
use btorrent_proto::mutable_link::MutableLink;

/// Publishes `h`'s info-hash under key `opts.key` (default `default`) and salt `opts.salt`.
fn publish(ctx: &HostContext, h: &Handle, opts: &Map) -> Result<Map, Box<EvalAltResult>> {
    const F: &str = "publish";
    let o = Opts { func: F, map: opts };
    o.check(&["key", "salt"])?;
    let key = o
        .string("key")?
        .unwrap_or_else(|| crate::keys::DEFAULT_KEY.into());
    let salt = o.string("salt")?.filter(|s| !s.is_empty());
    if salt
        .as_ref()
        .is_some_and(|s| s.len() > btorrent_proto::mutable_link::MAX_SALT)
    {
        return fail(F, "`salt` is longer than 64 bytes (BEP 44)");
    }
    let cfg = ctx.config()?;
    let secret =
        crate::keys::load_or_create(cfg.base_dir(), &key).or_else(|e| fail(F, format!("{e:#}")))?;
    let session = ctx.session()?;
    // Later publications must carry higher numbers: the time in milliseconds does.
    let seq = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let salt_bytes = salt.as_ref().map(|s| s.as_bytes().to_vec());
    ctx.block_on(session.publish_mutable(&secret, salt_bytes.as_deref(), h.info_hash, seq))?
        .or_else(|e| fail(F, e))?;
    record(ctx, h, &key, salt.as_deref(), seq).or_else(|e| fail(F, format!("{e:#}")))?;
    let link = MutableLink {
        public_key: public_key(&secret),
        salt: salt_bytes,
        name: Some(h.name.clone()),
    };
    let mut m = Map::new();
    m.insert("link".into(), link.to_link().into());
    m.insert("key".into(), key.into());
    m.insert("public_key".into(), hex::encode(link.public_key).into());
    m.insert("info_hash".into(), h.info_hash.to_hex().into());
    m.insert("seq".into(), seq.into());
    // The running torrent's, else its .torrent's (a one-shot command runs no torrent).
    let format = session
        .get(&h.info_hash)
        .map(|t| t.meta().info.format())
        .or_else(|| {
            let entry = cfg.find(&h.info_hash)?;
            let meta = crate::source::load_file(&cfg.resolve(&entry.file)).ok()?;
            Some(meta.info.format())
        });
    m.insert(
        "format".into(),
        format.map_or("", |f| f.as_str()).to_string().into(),
    );
    Ok(m)
}

/// Keeps the publication with the torrent in torrents.toml (so the shell or daemon publishes it
/// again, [`crate::publishing`]) and takes it off any other torrent the same key and salt pointed
/// at. A torrent torrents.toml does not manage is not recorded.
fn record(
    ctx: &HostContext,
    h: &Handle,
    key: &str,
    salt: Option<&str>,
    seq: i64,
) -> anyhow::Result<()> {
    let ih = h.info_hash.to_hex();
    ctx.torrents().update(|cfg| {
        for t in &mut cfg.torrents {
            let same = t
                .publish
                .as_ref()
                .is_some_and(|p| p.key == key && p.salt.as_deref() == salt);
            if same && t.info_hash != ih {
                t.publish = None;
            }
        }
        if let Some(t) = cfg.torrents.iter_mut().find(|t| t.info_hash == ih) {
            t.publish = Some(crate::config::Publication {
                key: key.into(),
                salt: salt.map(Into::into),
                seq,
            });
        }
        Ok(())
    })
}

/// What `link` points at now: `#{info_hash, seq, magnet}`, or `()` when the DHT holds nothing
/// under it.
fn resolve(ctx: &HostContext, link: &str) -> Result<Dynamic, Box<EvalAltResult>> {
    const F: &str = "resolve";
    let parsed = MutableLink::parse(link).or_else(|e| fail(F, e))?;
    let Some(parsed) = parsed else {
        return fail(F, "not a mutable link (magnet:?xs=urn:btpk:<key>, BEP 46)");
    };
    let session = ctx.session()?;
    let found = ctx
        .block_on(session.resolve_mutable(&parsed))?
        .or_else(|e| fail(F, e))?;
    Ok(match found {
        None => Dynamic::UNIT,
        Some(r) => {
            let mut m = Map::new();
            m.insert("info_hash".into(), r.info_hash.to_hex().into());
            m.insert("seq".into(), r.seq.into());
            m.insert(
                "magnet".into(),
                MutableLink::magnet_for(link, &r.info_hash).into(),
            );
            m.into()
        }
    })
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("publish", move |h: &mut Handle| publish(&c, h, &Map::new()));
    let c = ctx.clone();
    engine.register_fn("publish", move |h: &mut Handle, opts: Map| {
        publish(&c, h, &opts)
    });
    let c = ctx.clone();
    engine.register_fn("resolve", move |link: &str| resolve(&c, link));
}
