//! A DHT of a few nodes on 127.0.0.1 (the `mainline` crate's `Testnet`) and peer sessions that join it
//! instead of the public one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use btorrent::engine::{DhtConfig, SessionConfig};

/// `n` nodes on 127.0.0.1, each knowing the others. Build it before the runtime gets busy: it blocks
/// while the nodes start.
pub fn testnet(n: usize) -> mainline::Testnet {
    mainline::Testnet::builder(n)
        .build()
        .expect("a local DHT testnet")
}

/// DHT settings bootstrapped from `bootstrap` only, with lookups retried every second or so.
pub fn dht_config(bootstrap: &[String]) -> DhtConfig {
    DhtConfig {
        bootstrap: bootstrap.to_vec(),
        retry: Duration::from_secs(1),
        ..Default::default()
    }
}

/// Session settings on 127.0.0.1 with a DHT node joining `bootstrap`.
pub fn session_config(bootstrap: &[String]) -> SessionConfig {
    SessionConfig {
        dht: Some(dht_config(bootstrap)),
        ..Default::default()
    }
}

/// `[settings]` lines for processes (one-shot commands, daemons) on 127.0.0.1 with a DHT joining
/// only `bootstrap`, and an embedded tracker (a daemon runs one) on an ephemeral port.
pub fn cli_settings(bootstrap: &[String]) -> String {
    let list: Vec<String> = bootstrap.iter().map(|b| format!("{b:?}")).collect();
    format!(
        "dht = true\nlisten_port = 0\nlisten_ip = \"127.0.0.1\"\ntracker_bind = \"127.0.0.1:0\"\ndht_bootstrap = [{}]",
        list.join(", ")
    )
}

/// A folder `root/name` with a torrents.toml of `settings`.
pub fn folder(root: &Path, name: &str, settings: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("torrents.toml"),
        format!("[settings]\n{settings}\n"),
    )
    .unwrap();
    dir
}

/// Whether a lookup of `ih` on the testnet finds anyone (its own blocking call: for tests that
/// run on no runtime, or on the blocking pool).
pub fn anyone_announced(net: &mainline::Testnet, ih: [u8; 20]) -> bool {
    #[allow(deprecated)]
    let found = net.nodes[0]
        .get_peers(mainline::Id::from(ih))
        .any(|batch| !batch.is_empty());
    found
}
