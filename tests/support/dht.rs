//! A DHT of a few nodes on 127.0.0.1 (the `mainline` crate's `Testnet`) and peer sessions that join it
//! instead of the public one.

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
