//! The test suite in one binary (one link instead of one per file): unit-like protocol tests, swarms of
//! in-process sessions, the front ends as child processes, the watch folder, hostile input. Each module
//! was a test file of its own; `cargo test --test it -- engine_swarm::` runs one of them.
#[path = "../support/mod.rs"]
mod support;

// The properties the cargo-fuzz targets check, run here on stable from mutated inputs.
#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod fuzz_checks;

mod allowed_fast;
mod automation;
mod automation_engine;
mod check_command;
mod cli;
mod control;
mod crossed_dials;
mod demo;
mod dht;
mod dht_commands;
mod donthave;
mod dual_stack;
mod encryption;
mod engine_choke;
mod engine_crash;
mod engine_errors;
mod engine_events;
mod engine_files;
mod engine_haves;
mod engine_hostile_peers;
mod engine_lifecycle;
mod engine_limits;
mod engine_local_data;
mod engine_rot;
mod engine_superseed;
mod engine_swarm;
mod engine_tracker;
mod frontends;
mod holepunch;
mod lan_two_hosts;
mod link_fuzz;
mod listen_port;
mod live_settings;
mod magnet;
mod magnet_select;
mod many_peers;
mod many_torrents;
mod metainfo_fuzz;
mod metainfo_hostile;
mod mse_fuzz;
mod mutable_torrent;
mod peer_command;
mod pex;
mod port_forwarding;
mod push;
mod readme_examples;
mod rpc;
mod rpc_blocklist;
mod rpc_default_trackers;
mod rpc_disk_errors;
mod rpc_groups;
mod rpc_hooks;
mod rpc_hostile;
mod rpc_incomplete;
mod rpc_jsonrpc;
mod rpc_magnet;
mod rpc_page;
mod rpc_queue;
mod rpc_seed_goals;
mod rpc_sequential;
mod rpc_torrents;
mod rpc_webseeds;
mod script_files;
mod script_handle;
mod script_safety;
mod service_manager;
mod settings_extremes;
mod torrent_urls;
mod tracker_backoff;
mod tracker_client_double;
mod tracker_flood;
mod tracker_hardening;
mod tracker_http_fuzz;
mod tracker_pages;
mod tracker_protocol;
mod tracker_reply_fuzz;
mod tracker_udp;
mod tracker_udp_codec;
mod tracker_udp_fuzz;
mod tracker_udp_swarm;
mod transfer_commands;
mod ut_fuzz;
mod utp;
mod watch;
mod watch_e2e;
mod web_seed;
mod wire_fuzz;
