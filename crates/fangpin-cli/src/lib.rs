//! The parts of the CLI other crates use: the reconciliation export, which the
//! integration tests write from a live server and read back; how every
//! command connects (TLS, client certificates, the bearer token), which the
//! TLS tests use against a live server; and token signing. The command line
//! speaks gRPC only: what opens the database is `fangpind admin`.

pub mod connect;
pub mod token;

#[path = "export.rs"]
pub mod export;
