//! The peer engine.
pub mod picker;
pub mod storage;
