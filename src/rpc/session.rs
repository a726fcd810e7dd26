//! The session methods: `session-get` and `session-set` (the fields Transmission's clients read, from
//! torrents.toml's settings and the running session; the speed limits and the alternative ones, the
//! seeding goals and the default download folder are the ones that can be set),
//! `session-stats` and `free-space` (`port-test` is in [`super::port_test`]).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{Outcome, Rpc};
use crate::config::ByteRate;
use crate::torrents::Torrents;

/// Transmission's speed unit in the RPC: kB/s of 1000 bytes.
pub const SPEED_UNIT: u64 = 1000;
/// The RPC version of Transmission 4.1.1, whose methods and fields this server speaks: 3.00's (16),
/// what 17 added (bandwidth groups, `default-trackers`, the trackers' `sitename`, `free-space`'s
/// `total_size`, `trackerList`, `availability`...), and 18: JSON-RPC 2.0 in snake_case
/// ([`super::jsonrpc`]), `sequential_download` and `sequential_download_from_piece`, the files'
/// `begin_piece` and `end_piece`, `port_test`'s `ip_protocol`, the trackers'
/// `downloader_count`, `preferred_transports`; 19 (4.1.1) only made speed limits integers again,
/// which they always were here. (4.2's `webseeds_ex` is answered too, but 4.2's version is not
/// claimed before it is released.)
pub const RPC_VERSION: i64 = 19;

/// The same version as Transmission 4 names it (`rpc-version-semver`): 4.1.1's.
pub const RPC_VERSION_SEMVER: &str = "6.0.1";

/// The transports peers are dialled over, preferred first, and taken (Transmission 4.1's
/// `preferred_transports`): `["utp", "tcp"]`, `["tcp", "utp"]` or `["tcp"]`.
pub const PREFERRED_TRANSPORTS: &str = "preferred_transports";

/// The uTP policy as `preferred_transports` lists it.
fn transports(utp: crate::engine::Utp) -> Value {
    use crate::engine::Utp;
    match utp {
        Utp::Off => json!(["tcp"]),
        Utp::Allow => json!(["tcp", "utp"]),
        Utp::Prefer => json!(["utp", "tcp"]),
    }
}

/// A request's `preferred_transports` as the uTP policy; a list that leaves TCP out (which a peer
/// with web seeds, trackers and most peers on TCP cannot do without), names something else or
/// names one twice is refused.
fn transports_arg(args: &Map<String, Value>) -> Result<Option<crate::engine::Utp>, String> {
    use crate::engine::Utp;
    let Some(v) = args.get(PREFERRED_TRANSPORTS).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let bad = || {
        format!(
            "{PREFERRED_TRANSPORTS} must list \"tcp\" and \"utp\" in the order preferred, or \"tcp\" alone, not {v}"
        )
    };
    let names: Vec<&str> = v
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|n| n.as_str().ok_or_else(bad))
        .collect::<Result<_, _>>()?;
    match names.as_slice() {
        ["tcp"] => Ok(Some(Utp::Off)),
        ["tcp", "utp"] => Ok(Some(Utp::Allow)),
        ["utp", "tcp"] => Ok(Some(Utp::Prefer)),
        ["utp"] => Err(format!(
            "{PREFERRED_TRANSPORTS}: TCP cannot be left out (web seeds, most trackers and peers without uTP need it); [\"utp\", \"tcp\"] prefers uTP"
        )),
        _ => Err(bad()),
    }
}

/// `version` as `session-get` reports it: `3.00 (000100) btorrent 0.1.0`. Clients that check
/// Transmission's version read the number first; Transmission's web clients (4.0 and later) read
/// the part in parentheses as the build's commit and stop unless it is hexadecimal, so ours is
/// the version again, two hexadecimal digits each for major, minor and patch.
pub fn version() -> String {
    let ours = env!("CARGO_PKG_VERSION");
    let hex: String = ours
        .split(['.', '-'])
        .take(3)
        .map(|n| format!("{:02x}", n.parse::<u8>().unwrap_or(0)))
        .collect();
    format!("3.00 ({hex}) btorrent {ours}")
}

/// A limit in the RPC's unit (kB/s of [`SPEED_UNIT`]); 0 when unlimited.
pub fn kbps(limit: Option<u64>) -> u64 {
    limit.map_or(0, |b| b / SPEED_UNIT)
}

/// The largest speed limit a request may set, in kB/s: about a petabyte a second, past any link,
/// and in bytes far inside the integers torrents.toml holds.
pub const MAX_KBPS: u64 = 1 << 40;

/// A speed limit `key` of a request, in kB/s: a whole number from 0 to [`MAX_KBPS`]; in bytes per
/// second, `None` for 0 (unlimited).
pub fn kbps_arg(key: &str, v: &Value) -> Result<Option<u64>, String> {
    let kb = v
        .as_u64()
        .filter(|&kb| kb <= MAX_KBPS)
        .ok_or_else(|| format!("{key} must be a whole number of kB/s, 0 to {MAX_KBPS}, not {v}"))?;
    Ok((kb > 0).then_some(kb * SPEED_UNIT))
}

/// `session-get`: every field, or those `fields` names.
pub async fn get(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    let cfg = rpc.peer.torrents().config().map_err(|e| format!("{e:#}"))?;
    let session = rpc.peer.get().await;
    // The limits as set: the alternative ones hold instead while alt-speed is on (`session-set`
    // applies whichever hold to the session as it writes them).
    let limit = |r: Option<ByteRate>| r.and_then(ByteRate::limit);
    let (up, down) = (
        limit(cfg.settings.upload_limit),
        limit(cfg.settings.download_limit),
    );
    let port = session
        .as_ref()
        .map_or(cfg.settings.listen_port, |s| s.listen_addr().port());
    let download_dir = std::path::absolute(cfg.output_dir()).unwrap_or_else(|_| cfg.output_dir());
    let free = crate::fsutil::free_space(&download_dir).unwrap_or(0);
    // The DHT as the running session has it; before the session starts, as the settings say.
    let dht = match &session {
        Some(s) => s.dht_on(),
        None => cfg.settings.dht_config().is_ok_and(|d| d.is_some()),
    };
    let lpd = match &session {
        Some(s) => s.lsd_on(),
        None => cfg.settings.lsd_enabled(),
    };
    let forwarding = match &session {
        Some(s) => s.port_forwarding_on(),
        None => cfg.settings.port_forwarding_enabled(),
    };
    let peer_limit = match &session {
        Some(s) => s.max_peers_per_torrent(),
        None => cfg.settings.max_peers_per_torrent(),
    };
    // The session's budget of peer sockets; before it starts, what it will be.
    let peer_limit_global = match &session {
        Some(s) => s.max_connections(),
        None => cfg.settings.max_connections.unwrap_or_else(|| {
            crate::engine::fd_budget::for_this_process(
                crate::engine::SessionConfig::default().max_open_files,
            )
        }),
    };
    let units = json!({
        "speed-units": ["kB/s", "MB/s", "GB/s", "TB/s"], "speed-bytes": SPEED_UNIT,
        "size-units": ["kB", "MB", "GB", "TB"], "size-bytes": 1000,
        "memory-units": ["KiB", "MiB", "GiB", "TiB"], "memory-bytes": 1024,
    });
    let all = json!({
        "cache-size-mb": 0,
        "config-dir": std::path::absolute(cfg.base_dir()).unwrap_or_default().display().to_string(),
        "download-dir": download_dir.display().to_string(),
        "download-dir-free-space": free,
        "dht-enabled": dht, "encryption": encryption_name(cfg.settings.encryption),
        "utp-enabled": cfg.settings.utp != crate::engine::Utp::Off,
        // Deprecated by 4.1 for `preferred_transports`, which can never leave TCP out here.
        "tcp-enabled": true,
        PREFERRED_TRANSPORTS: transports(cfg.settings.utp),
        "incomplete-dir": std::path::absolute(cfg.incomplete_dir()).unwrap_or_default().display().to_string(),
        "incomplete-dir-enabled": cfg.incomplete_folder().is_some(),
        "lpd-enabled": lpd,
        "peer-limit-global": peer_limit_global,
        "peer-limit-per-torrent": peer_limit,
        // Peer exchange (BEP 11) is on for every torrent that is not private.
        "pex-enabled": session.as_ref().map_or(cfg.settings.pex, |s| s.pex()), "peer-port": port, "peer-port-random-on-start": false,
        "port-forwarding-enabled": forwarding,
        "rename-partial-files": session.as_ref().map_or(cfg.settings.rename_partial_files, |s| s.rename_partial_files()),
        super::trackers::DEFAULT_TRACKERS: super::trackers::list_text(&cfg.settings.default_trackers),
        "rpc-version": RPC_VERSION, "rpc-version-minimum": 1, "rpc-version-semver": RPC_VERSION_SEMVER,
        "session-id": rpc.guard.session_id,
        "speed-limit-down": kbps(down), "speed-limit-down-enabled": down.is_some(),
        "speed-limit-up": kbps(up), "speed-limit-up-enabled": up.is_some(),
        "start-added-torrents": cfg.settings.start_added_torrents, "trash-original-torrent-files": false,
        super::torrents::SEQUENTIAL: cfg.settings.sequential_download,
        "units": units,
        "version": version(),
    });
    let Value::Object(mut all) = all else {
        unreachable!("a JSON object")
    };
    if let Value::Object(alt) = super::alt_speed::session_fields(&cfg.settings) {
        all.extend(alt);
    }
    if let Value::Object(goals) = super::goals::session_fields(&cfg.settings) {
        all.extend(goals);
    }
    if let Value::Object(queue) = super::queue::session_fields(&cfg.settings) {
        all.extend(queue);
    }
    all.extend(super::hooks::session_fields(&cfg.settings));
    let blocked = session.as_ref().map_or(0, |s| s.ip_filter().len());
    if let Value::Object(b) = super::blocklist::session_fields(&cfg.settings, blocked) {
        all.extend(b);
    }
    match args.get("fields") {
        Some(Value::Array(fields)) if !fields.is_empty() => Ok(fields
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|f| {
                // A field asked by an earlier spelling is answered under that spelling.
                let now = super::spelled_now(f);
                all.get(now).map(|v| (f.to_string(), v.clone()))
            })
            .collect()),
        _ => Ok(all),
    }
}

/// One speed limit of a `session-set` (`key`, switched by `enabled_key`, e.g. `speed-limit-up` and
/// `speed-limit-up-enabled`) or a `torrent-set` (`uploadLimit`, `uploadLimited`): the new value in
/// bytes per second (`None` = unlimited), or the old one when neither key is sent.
pub fn limit_arg(
    args: &Map<String, Value>,
    key: &str,
    enabled_key: &str,
    old: Option<u64>,
) -> Result<Option<u64>, String> {
    let enabled = super::switch_arg(args, enabled_key)?;
    let value = args.get(key).map(|v| kbps_arg(key, v)).transpose()?;
    match (enabled, value) {
        (Some(false), _) => Ok(None),
        (Some(true), Some(v)) => Ok(v),
        (None, Some(v)) if old.is_some() => Ok(v),
        // A value for a limit that is off stays off (btorrent keeps no value for a limit not in
        // force).
        (None, Some(_)) => Ok(None),
        (Some(true), None) => old
            .map(Some)
            .ok_or_else(|| format!("{enabled_key} needs {key}: give the limit")),
        (None, None) => Ok(old),
    }
}

/// `session-set`: the speed limits and the alternative ones (applied at once), the seeding goals,
/// the download and seeding queues ([`super::queue`]; the queue task follows torrents.toml), the
/// programs run on torrent events ([`super::hooks`]; read at each event), `encryption` and
/// `utp-enabled` (applied at once to new connections; `true` keeps `prefer`), `pex-enabled` (at
/// once: off, no peer list is sent or taken), `rename-partial-files` (at once: files a download
/// creates are named `<name>.part` until complete; off, those there take their own names), `dht-enabled` (the node switched off or on again; a
/// session that started without one cannot switch it on), `lpd-enabled` (local service discovery,
/// likewise), `port-forwarding-enabled` (the router asked at once, or its mappings deleted;
/// [`crate::engine::portmap`]), `peer-port` (the listener and the uTP socket moved to it at once; one that cannot
/// be taken is refused and changes nothing), `peer-limit-global` and `peer-limit-per-torrent`
/// (at once; a lower limit cuts no connection but lets none more in until the count is under it),
/// `start-added-torrents` (whether a `torrent-add` without `paused` starts) and `download-dir`
/// (the folder of the torrents added without one, torrents.toml's `output_dir`), `incomplete-dir`
/// and `incomplete-dir-enabled` (where downloads wait until complete: [`crate::incomplete`]),
/// `default-trackers` (announced to by every public torrent besides its own, at once), written to
/// torrents.toml; any other field is refused with its name, since nothing else can be
/// changed here, unless it comes with the value it has (a client sending back every preference).
/// Every value is checked before anything changes.
pub async fn set(rpc: &Arc<Rpc>, args: &Map<String, Value>) -> Outcome {
    // Read, applied and written in one hold ([`crate::torrents::Torrents::settings_lock`]).
    let _applying = rpc.peer.torrents().settings_lock().lock().await;
    const LIMITS: [&str; 4] = [
        "speed-limit-down",
        "speed-limit-down-enabled",
        "speed-limit-up",
        "speed-limit-up-enabled",
    ];
    const DOWNLOAD_DIR: &str = "download-dir";
    const ENCRYPTION: &str = "encryption";
    const UTP: &str = "utp-enabled";
    const PEERS_GLOBAL: &str = "peer-limit-global";
    const PEERS_PER_TORRENT: &str = "peer-limit-per-torrent";
    const PEX: &str = "pex-enabled";
    const PARTIAL: &str = "rename-partial-files";
    const START_ADDED: &str = "start-added-torrents";
    const DHT: &str = "dht-enabled";
    const LPD: &str = "lpd-enabled";
    const FORWARDING: &str = "port-forwarding-enabled";
    const PEER_PORT: &str = "peer-port";
    const INCOMPLETE_DIR: &str = "incomplete-dir";
    const INCOMPLETE_ON: &str = "incomplete-dir-enabled";
    let unsupported: Vec<&str> = args
        .keys()
        .map(String::as_str)
        .filter(|k| {
            !LIMITS.contains(k)
                && !super::alt_speed::SESSION_KEYS.contains(k)
                && !super::goals::SESSION_KEYS.contains(k)
                && !super::queue::SESSION_KEYS.contains(k)
                && !super::hooks::SESSION_KEYS.contains(k)
                && !super::blocklist::SESSION_KEYS.contains(k)
                && *k != DOWNLOAD_DIR
                && *k != ENCRYPTION
                && *k != UTP
                && *k != PREFERRED_TRANSPORTS
                && *k != PEERS_GLOBAL
                && *k != PEERS_PER_TORRENT
                && *k != PEX
                && *k != PARTIAL
                && *k != START_ADDED
                && *k != super::torrents::SEQUENTIAL
                && *k != DHT
                && *k != LPD
                && *k != FORWARDING
                && *k != PEER_PORT
                && *k != INCOMPLETE_DIR
                && *k != INCOMPLETE_ON
                && *k != super::trackers::DEFAULT_TRACKERS
        })
        .collect();
    // A client that sends its whole preferences back (changed or not) names keys that cannot be
    // changed here: those sent with the value `session-get` reports ask for nothing.
    let unsupported = if unsupported.is_empty() {
        unsupported
    } else {
        let now = get(rpc, &Map::new()).await?;
        unsupported
            .into_iter()
            .filter(|k| now.get(*k) != args.get(*k))
            .collect()
    };
    if !unsupported.is_empty() {
        return Err(format!(
            "session-set: not supported: {} (only the speed limits, the alternative ones and their schedule, the seeding goals, the download and seeding queues, the programs run on torrent events, the blocklist, encryption, uTP, peer exchange, partial file names, the DHT, local discovery, port forwarding, the peer port, the peer limits, start-added-torrents, sequential_download, download-dir, the incomplete folder and the default trackers can be changed here; any other key only with the value it has)",
            unsupported.join(", ")
        ));
    }
    let download_dir = match args.get(DOWNLOAD_DIR) {
        None => None,
        Some(Value::String(d)) => Some(download_dir_arg(d)?),
        Some(v) => return Err(format!("{DOWNLOAD_DIR} must be a folder's path, not {v}")),
    };
    let encryption = match args.get(ENCRYPTION) {
        None => None,
        Some(Value::String(e)) => Some(crate::engine::Encryption::parse(e).ok_or_else(|| {
            format!("{ENCRYPTION} must be required, preferred or tolerated, not {e:?}")
        })?),
        Some(v) => {
            return Err(format!(
                "{ENCRYPTION} must be required, preferred or tolerated, not {v}"
            ))
        }
    };
    let cfg = rpc.peer.torrents().config().map_err(|e| format!("{e:#}"))?;
    let utp_enabled = super::switch_arg(args, UTP)?.map(|on| match (on, cfg.settings.utp) {
        (false, _) => crate::engine::Utp::Off,
        (true, crate::engine::Utp::Off) => crate::engine::Utp::Allow,
        (true, kept) => kept,
    });
    // The newer key says more, and wins.
    let utp = transports_arg(args)?.or(utp_enabled);
    let switch = |key: &str| super::switch_arg(args, key);
    let count = |key: &str| super::peers_arg(args, key);
    let pex = switch(PEX)?;
    let partial = switch(PARTIAL)?;
    let dht = switch(DHT)?;
    let lpd = switch(LPD)?;
    let forwarding = switch(FORWARDING)?;
    let peer_port = match args.get(PEER_PORT) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(p @ 1..=65535) => Some(p as u16),
            _ => {
                return Err(format!(
                    "{PEER_PORT} must be a port number, 1 to 65535, not {v}"
                ))
            }
        },
    };
    let start_added = switch(START_ADDED)?;
    let sequential = switch(super::torrents::SEQUENTIAL)?;
    let incomplete_dir = match args.get(INCOMPLETE_DIR) {
        None => None,
        Some(Value::String(d)) => Some(folder_arg(INCOMPLETE_DIR, d)?),
        Some(v) => return Err(format!("{INCOMPLETE_DIR} must be a folder's path, not {v}")),
    };
    let incomplete_on = switch(INCOMPLETE_ON)?;
    let default_trackers = super::trackers::default_trackers_arg(args)?;
    let peers_global = count(PEERS_GLOBAL)?;
    let peers_per_torrent = count(PEERS_PER_TORRENT)?;
    let goals = super::any_key(args, &super::goals::SESSION_KEYS)
        .then(|| super::goals::session_set(args, &cfg.settings))
        .transpose()?;
    let queue = super::any_key(args, &super::queue::SESSION_KEYS)
        .then(|| super::queue::session_set(args, &cfg.settings))
        .transpose()?;
    let hooks = super::hooks::session_set(args, &cfg.settings)?;
    let old = &cfg.settings;
    let speed = if super::any_key(args, &LIMITS) {
        let up = limit_arg(
            args,
            "speed-limit-up",
            "speed-limit-up-enabled",
            old.upload_limit.and_then(ByteRate::limit),
        )?;
        let down = limit_arg(
            args,
            "speed-limit-down",
            "speed-limit-down-enabled",
            old.download_limit.and_then(ByteRate::limit),
        )?;
        Some((up, down))
    } else {
        None
    };
    let alt = super::alt_speed::limits_set(args, old)?;
    let blocklist = super::any_key(args, &super::blocklist::SESSION_KEYS)
        .then(|| super::blocklist::session_set(args, &cfg.settings))
        .transpose()?;
    let alt_time = super::alt_speed::schedule_set(args, old)?;
    if speed.is_none()
        && blocklist.is_none()
        && alt_time.is_none()
        && alt.is_none()
        && goals.is_none()
        && queue.is_none()
        && hooks.is_empty()
        && download_dir.is_none()
        && encryption.is_none()
        && utp.is_none()
        && pex.is_none()
        && partial.is_none()
        && dht.is_none()
        && lpd.is_none()
        && forwarding.is_none()
        && peer_port.is_none()
        && start_added.is_none()
        && sequential.is_none()
        && incomplete_dir.is_none()
        && incomplete_on.is_none()
        && peers_global.is_none()
        && peers_per_torrent.is_none()
        && default_trackers.is_none()
    {
        return Ok(Map::new());
    }
    let change = |s: &mut crate::config::Settings| {
        if let Some((up, down)) = speed {
            s.upload_limit = up.map(ByteRate);
            s.download_limit = down.map(ByteRate);
        }
        if let Some(a) = alt {
            s.alt_upload_limit = a.up.map(ByteRate);
            s.alt_download_limit = a.down.map(ByteRate);
            s.alt_speed = a.on;
        }
        if let Some((ratio, idle)) = goals {
            s.seed_ratio_limit = ratio;
            s.seed_idle_minutes = idle;
        }
        if let Some(d) = &download_dir {
            s.output_dir = d.clone();
        }
        put(&mut s.encryption, encryption);
        put(&mut s.utp, utp);
        put(&mut s.pex, pex);
        put(&mut s.rename_partial_files, partial);
        put(&mut s.dht, dht);
        put(&mut s.lsd, lpd);
        put(&mut s.port_forwarding, forwarding);
        put(&mut s.listen_port, peer_port);
        put(&mut s.start_added_torrents, start_added);
        put(&mut s.sequential_download, sequential);
        if let Some(d) = &incomplete_dir {
            s.incomplete_dir = Some(d.clone());
        }
        put(&mut s.incomplete_dir_enabled, incomplete_on.map(Some));
        put(&mut s.max_connections, peers_global.map(Some));
        put(&mut s.max_peers, peers_per_torrent.map(Some));
        if let Some((on, url)) = &blocklist {
            s.blocklist = *on;
            s.blocklist_url = url.clone();
        }
        if let Some((on, sched)) = alt_time {
            s.alt_speed_time = on;
            s.alt_speed_begin = Some(sched.begin);
            s.alt_speed_end = Some(sched.end);
            s.alt_speed_days = Some(sched.days);
        }
        if let Some(q) = queue {
            q.apply(s);
        }
        if let Some(tiers) = &default_trackers {
            s.default_trackers = tiers.clone();
        }
        super::hooks::apply(&hooks, s);
    };
    if speed.is_some() || alt.is_some() {
        let mut new = old.clone();
        change(&mut new);
        let (up, down) = new.session_limits();
        let session = rpc
            .peer
            .get_or_start()
            .await
            .map_err(|e| format!("{e:#}"))?;
        session.set_limits(up, down);
    }
    if let (Some(true), Some(session)) = (lpd, rpc.peer.get().await) {
        if !session.has_lsd() {
            return Err(format!(
                "{LPD}: this session started without local discovery (lsd = false in torrents.toml, BTORRENT_LSD=off, or a loopback listen_ip); set lsd = true and start it again"
            ));
        }
    }
    if let (Some(true), Some(session)) = (forwarding, rpc.peer.get().await) {
        if !session.set_port_forwarding(true) {
            return Err(format!(
                "{FORWARDING}: this session listens on loopback (listen_ip {}): nothing outside this machine could use a forwarded port",
                session.listen_addr().ip()
            ));
        }
    }
    if let (Some(port), Some(session)) = (peer_port, rpc.peer.get().await) {
        // Before anything else changes: a port that cannot be taken refuses the request.
        session
            .set_listen_port(port)
            .await
            .map_err(|e| format!("{PEER_PORT}: {e}"))?;
    }
    if let (Some(on), Some(session)) = (dht, rpc.peer.get().await) {
        // First, so a node that cannot start changes nothing.
        match session.set_dht(on).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!(
                    "{DHT}: this session started without a DHT node (dht = false in torrents.toml, or BTORRENT_DHT=off); set dht = true and start it again"
                ))
            }
            Err(e) => return Err(format!("{DHT}: {e}")),
        }
    }
    if let Some(session) = rpc.peer.get().await {
        if let Some(e) = encryption {
            session.set_encryption(e);
        }
        if let Some(u) = utp {
            session.set_utp(u);
        }
        if let Some(on) = pex {
            session.set_pex(on);
        }
        if let Some(on) = partial {
            session.set_rename_partial_files(on).await;
        }
        if let Some(on) = lpd {
            session.set_lsd(on);
        }
        if forwarding == Some(false) {
            session.set_port_forwarding(false);
        }
        if let Some(n) = peers_global {
            session.set_max_connections(n);
        }
        if let Some(n) = peers_per_torrent {
            session.set_max_peers_per_torrent(n);
        }
        if let Some(tiers) = &default_trackers {
            session
                .set_default_trackers(tiers.clone())
                .map_err(|e| format!("{}: {e}", super::trackers::DEFAULT_TRACKERS))?;
        }
    }
    let switched = blocklist
        .as_ref()
        .is_some_and(|(on, _)| *on != old.blocklist);
    Torrents::update(rpc.peer.torrents(), |cfg| {
        change(&mut cfg.settings);
        Ok(())
    })
    .map_err(|e| format!("{e:#}"))?;
    if switched {
        super::blocklist::apply(rpc).await?;
    }
    Ok(Map::new())
}

/// Sets `slot` to `value` when the request gave one.
fn put<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// `encryption` as Transmission names it: `tolerated` (plain first; our `allow`, and `off`, which
/// it has no name for), `preferred`, `required`.
fn encryption_name(e: crate::engine::Encryption) -> &'static str {
    use crate::engine::Encryption::*;
    match e {
        Off | Allow => "tolerated",
        Prefer => "preferred",
        Require => "required",
    }
}

/// A `download-dir` of a `session-set`: an absolute path, not a file (a folder missing yet is made by
/// the first download into it).
fn download_dir_arg(d: &str) -> Result<std::path::PathBuf, String> {
    folder_arg("download-dir", d)
}

/// A folder `key` names: an absolute path, not to something other than a folder.
fn folder_arg(key: &str, d: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::Path::new(d);
    if !path.is_absolute() {
        return Err(format!("{key} {d:?} is not an absolute path"));
    }
    if path.exists() && !path.is_dir() {
        return Err(format!("{key} {d} is not a folder"));
    }
    Ok(path.to_path_buf())
}

/// `session-stats`: this run's totals over the torrents, and the cumulative ones: this run's added
/// to every earlier run's ([`super::totals`]).
pub async fn stats(rpc: &Arc<Rpc>) -> Outcome {
    let torrents: Vec<(crate::InfoHash, crate::engine::TorrentStats)> = match rpc.peer.get().await {
        Some(s) => s
            .torrents()
            .iter()
            .map(|h| (h.info_hash(), h.stats()))
            .collect(),
        None => Vec::new(),
    };
    let run = rpc.totals.look(
        torrents
            .iter()
            .map(|(ih, s)| (*ih, s.uploaded, s.downloaded)),
    );
    let all: Vec<_> = torrents.into_iter().map(|(_, s)| s).collect();
    // Magnets still fetching their metadata count as torrents, active while they fetch.
    let (fetching, waiting) = rpc.fetching.counts();
    let active = all
        .iter()
        .filter(|s| s.state != crate::engine::TorrentState::Paused)
        .count()
        + fetching;
    let count = all.len() + fetching + waiting;
    let v = json!({
        "activeTorrentCount": active,
        "pausedTorrentCount": count - active,
        "torrentCount": count,
        "downloadSpeed": all.iter().map(|s| s.down_rate).sum::<u64>(),
        "uploadSpeed": all.iter().map(|s| s.up_rate).sum::<u64>(),
        "cumulative-stats": rpc.totals.cumulative(&run).json(),
        "current-stats": run.json(),
    });
    let Value::Object(m) = v else {
        unreachable!("a JSON object")
    };
    Ok(m)
}

/// `free-space`: the bytes free in `path`'s file system.
pub fn free_space(args: &Map<String, Value>) -> Outcome {
    let Some(path) = args.get("path").and_then(Value::as_str) else {
        return Err("free-space needs \"path\", a folder".into());
    };
    let (free, total) = crate::fsutil::space(std::path::Path::new(path))
        .map_err(|e| format!("free-space: {path}: {e}"))?;
    let mut m = Map::new();
    m.insert("path".into(), path.into());
    m.insert("size-bytes".into(), free.into());
    // Transmission 4 (rpc-version 17): the file system's size.
    m.insert("total_size".into(), total.into());
    Ok(m)
}
