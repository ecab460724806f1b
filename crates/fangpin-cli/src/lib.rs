//! The parts of the CLI other crates use: the reconciliation export, which the
//! integration tests write from a live server and read back.

#[path = "export.rs"]
pub mod export;
