//! Interoperability with real clients and tools (aria2, transmission with its remote and web client,
//! libtorrent, qBittorrent, opentracker, mktorrent, miniupnpd, systemd's unit checker): every test is `#[ignore]`d, naming the Debian package it needs; `.ci/run`
//! installs them and runs `cargo test -- --ignored`.
#[path = "../support/mod.rs"]
mod support;

mod dht_interop;
mod donthave_interop;
mod encryption_interop;
mod engine_interop;
mod holepunch_interop;
mod lsd_interop;
mod magnet_interop;
mod metainfo_interop;
mod page_interop;
mod portmap_interop;
mod rpc_interop;
mod service_unit_interop;
mod tracker_interop;
mod tracker_udp_interop;
mod upload_only_interop;
mod utp_interop;
mod web_seed_interop;
