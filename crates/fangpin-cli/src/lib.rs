//! The parts of the CLI other crates use: the reconciliation export, which the
//! integration tests write from a live server and read back, and the SQLite
//! backup and restore and the audit-log verification of `fangpin admin`,
//! which they run beside a live server; and how every command connects
//! (TLS, client certificates, the bearer token), which the TLS tests use
//! against a live server.

pub mod admin;
pub mod connect;
pub mod token;

#[path = "export.rs"]
pub mod export;
