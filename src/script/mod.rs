//! The scripting host: a rhai engine with btorrent's primitives, explicit limits and cancellation, and the
//! dispatch of commands to their scripts.
//!
//! Every shell command is a script (`scripts/b-NAME.rhai`, embedded in the binary; a `b-*.rhai` in the
//! configured scripts folder adds or overrides one). A script declares its arguments in its doc block
//! ([`command`]); the host parses a command line against that declaration and runs the script with the
//! resulting `args` map in scope.
//!
//! Limits: every run (and every later call of a script's event handler) is bounded in operations,
//! call depth, expression depth, string, array and map sizes; a cancellation flag (Ctrl-C) is checked at
//! every operation and by every primitive that waits. Scripts run on an ordinary thread; primitives that
//! need the network block on the tokio runtime's handle, so a script never runs on a runtime worker.
//!
//! - [`catalog`]: which commands exist and where their scripts come from.
//! - [`command`]: the usage grammar and argument parsing.
//! - [`host`]: the engine, the run entry points and error reporting.
//! - `prims`: the primitives scripts call, one file per area.

pub mod catalog;
pub mod command;
pub mod host;
mod prims;

pub use catalog::{Catalog, Script, ScriptOrigin};
pub use command::CommandSpec;
pub use host::{Host, HostContext, Output, ScriptError};
