//! Hand edits of torrents.toml's session settings, applied while the shell or daemon runs. The RPC
//! applies its own changes at once; this task makes a text editor's count too, within
//! [`LOOK_EVERY`] or as soon as the file is seen to change:
//!
//! - the speed limits (`upload_limit`, `download_limit`, the alternative ones and the `alt_speed`
//!   switch): the running session's are compared with what the file says, and set when they
//!   differ;
//! - the encryption and uTP policies (`encryption`, `utp`): new connections follow the file's;
//! - the DHT node (`dht`: switched off, or on again in a session that started with one), local
//!   service discovery (`lsd`, likewise), port forwarding (`port_forwarding`: the router asked, or
//!   its mappings deleted), peer exchange (`pex`) and the peer limits (`max_peers`, `max_connections`; a lower limit
//!   cuts no connection, it lets none more in until the count is under it);
//! - partial names (`rename_partial_files`): switched off, the partial files take their own names;
//! - the bandwidth groups' limits (`bandwidth_groups`) and the default trackers (`default_trackers`);
//! - the peer port (`listen_port`), when it changes: the listener and the uTP socket move to it;
//! - the blocklist: its switch, and lists dropped into `blocklists/` or removed from it. The task
//!   remembers the [`blocklist::Source`] it last saw (at its start, what the session started with)
//!   and puts the lists in force again when it changes. A change the RPC already applied is applied
//!   once more: the same filter, read again.
//!
//! The other settings are read where they are used (the queue, the schedule, the seeding goals
//! follow the file themselves) or need a restart (the listen IP, the DHT's port).

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::blocklist;
use crate::services::PeerSlot;

/// How often the settings are compared when the file is not seen to change (lists in
/// `blocklists/` change without it).
pub const LOOK_EVERY: Duration = Duration::from_secs(5);

/// Starts the one task that applies `peer`'s settings to its running session; it runs until
/// aborted or the runtime stops.
pub fn spawn(peer: PeerSlot) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = Seen::default();
        let mut looks = peer.torrents().looks(LOOK_EVERY);
        while looks.next().await {
            let p = peer.clone();
            let last = std::mem::take(&mut seen);
            match tokio::task::spawn_blocking(move || look(&p, last)).await {
                Ok(now) => seen = now,
                Err(_) => return,
            }
        }
    })
}

/// What the last look saw of the settings that act only when they change (the first look only
/// notes them).
#[derive(Default)]
struct Seen {
    blocklist: Option<blocklist::Source>,
    /// `listen_port`: a session that fell back to an ephemeral port (the file's was taken) is
    /// moved only when the file names another port.
    listen_port: Option<u16>,
}

/// One look: the session's limits set to the file's, the peer port moved when `listen_port`
/// changed since `last`, and the blocklist applied again when its source changed since then.
/// Returns what it saw.
fn look(peer: &PeerSlot, last: Seen) -> Seen {
    // Read and applied in one hold: a session-set cannot change the file in between.
    let _applying = peer.torrents().settings_lock().blocking_lock();
    let Ok(cfg) = peer.torrents().config() else {
        return last;
    };
    let session = peer.current();
    if let Some(s) = &session {
        let unlimited_as_none = |r: Option<u64>| r.filter(|&r| r > 0);
        let (up, down) = cfg.settings.session_limits();
        let wanted = (unlimited_as_none(up), unlimited_as_none(down));
        if s.encryption() != cfg.settings.encryption {
            s.set_encryption(cfg.settings.encryption);
            tracing::info!(
                "encryption from torrents.toml: {}",
                cfg.settings.encryption.name()
            );
        }
        if s.utp() != cfg.settings.utp {
            s.set_utp(cfg.settings.utp);
            tracing::info!("uTP from torrents.toml: {}", cfg.settings.utp.name());
        }
        // Only a session that started with a node can switch it (the environment may hold it off).
        let dht = cfg.settings.dht_config().is_ok_and(|d| d.is_some());
        if s.dht_on() != dht {
            let s = s.clone();
            tokio::runtime::Handle::current().block_on(async move {
                match s.set_dht(dht).await {
                    Ok(true) => tracing::info!("DHT from torrents.toml: {}", on_off(dht)),
                    Ok(false) => {}
                    Err(e) => tracing::warn!("DHT from torrents.toml: {e}"),
                }
            });
        }
        // Likewise local discovery (none on a loopback listen address).
        let lsd = cfg.settings.lsd_enabled();
        if s.lsd_on() != lsd && s.set_lsd(lsd) {
            tracing::info!("local discovery from torrents.toml: {}", on_off(lsd));
        }
        let forwarding = cfg.settings.port_forwarding_enabled();
        if s.port_forwarding_on() != forwarding && s.set_port_forwarding(forwarding) {
            tracing::info!("port forwarding from torrents.toml: {}", on_off(forwarding));
        }
        if s.pex() != cfg.settings.pex {
            s.set_pex(cfg.settings.pex);
            tracing::info!(
                "peer exchange from torrents.toml: {}",
                on_off(cfg.settings.pex)
            );
        }
        let partial = cfg.settings.rename_partial_files;
        if s.rename_partial_files() != partial {
            let s = s.clone();
            tokio::runtime::Handle::current()
                .block_on(async move { s.set_rename_partial_files(partial).await });
            tracing::info!("partial names from torrents.toml: {}", on_off(partial));
        }
        let per_torrent = cfg.settings.max_peers_per_torrent();
        if s.max_peers_per_torrent() != per_torrent {
            s.set_max_peers_per_torrent(per_torrent);
            tracing::info!("peers per torrent from torrents.toml: {per_torrent}");
        }
        // Unset: the budget the session started with stays.
        if let Some(n) = cfg.settings.max_connections.map(|n| n.max(1)) {
            if s.max_connections() != n {
                s.set_max_connections(n);
                tracing::info!("peer connections from torrents.toml: {n}");
            }
        }
        // Bandwidth groups: each the file names given its limits; one it no longer names is
        // unlimited (its torrents stay in it).
        let mut wanted_groups: std::collections::BTreeMap<String, crate::engine::GroupLimits> = s
            .groups()
            .into_iter()
            .map(|(n, _)| (n, Default::default()))
            .collect();
        wanted_groups.extend(cfg.settings.group_limits());
        let now: std::collections::BTreeMap<_, _> = s.groups().into_iter().collect();
        for (name, want) in wanted_groups {
            if now.get(&name) != Some(&want) {
                s.set_group_limits(&name, want);
                tracing::info!("bandwidth group {name:?} from torrents.toml: {want:?}");
            }
        }
        let defaults = cfg.settings.default_trackers.clone();
        if s.default_trackers() != defaults {
            match s.set_default_trackers(defaults) {
                Ok(()) => tracing::info!("default trackers from torrents.toml"),
                Err(e) => tracing::warn!("default trackers from torrents.toml: {e}"),
            }
        }
        if s.limits() != wanted {
            s.set_limits(wanted.0, wanted.1);
            tracing::info!(
                "speed limits from torrents.toml: up {}, down {}",
                shown(wanted.0),
                shown(wanted.1)
            );
        }
    }
    let port = cfg.settings.listen_port;
    if let (Some(s), Some(before)) = (&session, last.listen_port) {
        if port != before && port != s.listen_addr().port() {
            let s = s.clone();
            match tokio::runtime::Handle::current().block_on(s.set_listen_port(port)) {
                Ok(now) => tracing::info!("peer port from torrents.toml: {now}"),
                Err(e) => tracing::warn!("peer port from torrents.toml: {e}"),
            }
        }
    }
    let now = blocklist::source(&cfg);
    if last.blocklist.as_ref().is_some_and(|l| *l != now) {
        if let Some(s) = &session {
            match blocklist::apply(s, &cfg) {
                Ok(0) => tracing::info!("blocklist: no address range in force"),
                Ok(_) => {}
                Err(e) => tracing::warn!("blocklist not in force: {e:#}"),
            }
        }
    }
    Seen {
        blocklist: Some(now),
        listen_port: Some(port),
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// A rate as the log shows it.
fn shown(rate: Option<u64>) -> String {
    rate.map_or("unlimited".into(), |r| format!("{r} B/s"))
}
