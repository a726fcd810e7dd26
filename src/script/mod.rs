//! The scripting host: a rhai engine with btorrent's primitives, explicit limits and cancellation, and the
//! dispatch of commands to their scripts.
//!
//! Every shell command is a script (`scripts/b-NAME.rhai`, embedded in the binary; a `b-*.rhai` in the
//! configured scripts folder adds or overrides one). A script declares its arguments in its doc block
//! ([`command`]); the host parses a command line against that declaration and runs the script with the
//! resulting `args` map in scope.
//!
//! Limits: every run (and every later call of a script's event handler) is bounded in operations,
//! call depth, expression depth, value nesting, string, array and map sizes; a cancellation flag (Ctrl-C)
//! is checked at every operation and by every primitive that waits. Scripts run on ordinary threads with
//! a large stack ([`limits`]); primitives that need the network block on the tokio runtime's handle, so
//! a script never runs on a runtime worker.
//!
//! - [`catalog`]: which commands exist and where their scripts come from.
//! - [`command`]: the usage grammar and argument parsing.
//! - [`host`]: the engine, the run entry points and error reporting.
//! - [`automation`]: the handlers and timers scripts register; [`dispatch`]: the thread that calls them.
//! - [`limits`]: value nesting, stack room and size-bounded serialisation.
//! - [`live`]: what the host asks of the torrents running in this process.
//! - `prims`: the primitives scripts call, one file per area.

pub mod automation;
pub mod catalog;
pub mod command;
pub mod dispatch;
pub mod host;
pub mod limits;
pub mod live;
mod prims;

pub use automation::Automation;
pub use catalog::{Catalog, Script, ScriptOrigin};
pub use command::CommandSpec;
pub use dispatch::Dispatcher;
pub use host::{Ask, CloseRequest, Host, HostContext, Output, ScriptError};
pub use live::LiveTorrents;
