//! The peer port and port forwarding from scripts, for `b-port`: `port()` says where the peer
//! listens, how forwarding on the router stands and the addresses peers report seeing it at (the session of this process, or else that of
//! the shell or daemon running for torrents.toml); `port_set(#{port, forwarding})` changes
//! torrents.toml's `listen_port` and `port_forwarding`, in force at once in this process's session
//! (a running shell or daemon follows within seconds, [`crate::live_settings`]).

use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, Map};

use super::{fail, opt};
use crate::engine::{ForwardState, PortForwarding};
use crate::script::host::{HostContext, Opts};

/// What `port()` returns; see `b-port`.
fn port_map(ctx: &HostContext) -> Result<Map, Box<EvalAltResult>> {
    let cfg = ctx.config()?;
    let s = &cfg.settings;
    let live = ctx.block_on(ctx.live.port_forwarding())?;
    let mut m = Map::new();
    // Where the running session (here, or the shell's or daemon's) listens; else the file's.
    let listen = live.as_ref().and_then(|f| f.listen);
    let ip = listen.map_or(s.listen_ip.clone(), |l| l.ip().to_string());
    let loopback = ip
        .parse::<std::net::IpAddr>()
        .is_ok_and(|a| a.is_loopback());
    m.insert("listen_ip".into(), ip.into());
    m.insert("loopback".into(), loopback.into());
    let port = listen.map_or(s.listen_port, |l| l.port());
    m.insert("port".into(), (port as i64).into());
    m.insert("running".into(), live.is_some().into());
    // Switched on: in the running session, or else as the settings will start one.
    let enabled = live.as_ref().map_or(s.port_forwarding_enabled(), |f| f.on);
    m.insert("enabled".into(), enabled.into());
    m.insert(
        "gateway_setting".into(),
        opt(s.port_forwarding_gateway.clone()),
    );
    let f = live.unwrap_or_else(PortForwarding::off);
    forwarding_fields(&mut m, &f);
    // The IPv6 pinholes, once tried: the same fields (`external_ip` the address they open to);
    // `state` "off" with an `error` when there is nothing to open.
    let ipv6 = f.ipv6.as_deref().map(|v6| {
        let mut m = Map::new();
        forwarding_fields(&mut m, v6);
        Dynamic::from_map(m)
    });
    m.insert("ipv6".into(), ipv6.unwrap_or(Dynamic::UNIT));
    // Each address as `ip`, `peers`.
    m.insert("seen_as".into(), as_script(&f.seen_as));
    Ok(m)
}

/// How `f` stands, into `m`: `state`, `via`, `gateway`, `external_ip`, `error`, and each port as
/// `protocol`, `internal`, `external`.
fn forwarding_fields(m: &mut Map, f: &PortForwarding) {
    let state = match f.state {
        ForwardState::Off => "off",
        ForwardState::Mapping => "mapping",
        ForwardState::Forwarded => "forwarded",
        ForwardState::Failed => "failed",
    };
    m.insert("state".into(), state.into());
    m.insert("via".into(), opt(f.via.clone()));
    m.insert("gateway".into(), opt(f.gateway.map(|g| g.to_string())));
    m.insert(
        "external_ip".into(),
        opt(f.external_ip.map(|g| g.to_string())),
    );
    m.insert("error".into(), opt(f.error.clone()));
    m.insert("ports".into(), as_script(&f.ports));
}

/// `v` as scripts see it (a list of maps, for the lists above).
fn as_script(v: &impl serde::Serialize) -> Dynamic {
    rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT)
}

fn port_set(ctx: &HostContext, opts: &Map) -> Result<Map, Box<EvalAltResult>> {
    const FUNC: &str = "port_set";
    Opts {
        func: FUNC,
        map: opts,
    }
    .check(&["port", "forwarding"])?;
    let port = match opts.get("port").filter(|v| !v.is_unit()) {
        None => None,
        Some(v) => match v.as_int() {
            Ok(p @ 0..=65535) => Some(p as u16),
            _ => {
                return fail(
                    FUNC,
                    format!("`port` must be a port number, 0 to 65535, not {v}"),
                )
            }
        },
    };
    let forwarding = match opts.get("forwarding").filter(|v| !v.is_unit()) {
        None => None,
        Some(v) => Some(
            v.as_bool()
                .or_else(|t| fail(FUNC, format!("`forwarding` must be true or false, not {t}")))?,
        ),
    };
    if let (Some(true), Some(s)) = (forwarding, ctx.peer.current()) {
        if s.listen_addr().ip().is_loopback() {
            return fail(
                FUNC,
                format!(
                    "the peer listens on loopback ({}): nothing outside this machine could use a forwarded port",
                    s.listen_addr().ip()
                ),
            );
        }
    }
    // The port first: one this process cannot take changes nothing.
    if let (Some(p), Some(s)) = (port, ctx.peer.current()) {
        if let Err(e) = ctx.block_on(async move { s.set_listen_port(p).await })? {
            return fail(FUNC, e);
        }
    }
    ctx.torrents()
        .update(|cfg| {
            if let Some(p) = port {
                cfg.settings.listen_port = p;
            }
            if let Some(on) = forwarding {
                cfg.settings.port_forwarding = on;
            }
            Ok(())
        })
        .or_else(|e| fail(FUNC, format!("{e:#}")))?;
    if let (Some(on), Some(s)) = (forwarding, ctx.peer.current()) {
        s.set_port_forwarding(on);
    }
    port_map(ctx)
}

pub(super) fn register(engine: &mut Engine, ctx: &Arc<HostContext>) {
    let c = ctx.clone();
    engine.register_fn("port", move || port_map(&c));
    let c = ctx.clone();
    engine.register_fn("port_set", move |opts: Map| port_set(&c, &opts));
}
