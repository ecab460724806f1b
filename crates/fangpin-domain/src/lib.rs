//! The rules of precise poverty-prevention insurance (精准防贫保险, "防贫保").
//!
//! This crate is the functional core: every rule the county sets (eligibility,
//! banded relief, working-day deadlines, the claim state machine, ledger postings)
//! is a pure function of its inputs. It never reads the clock, the network or a
//! database, and it knows nothing about gRPC or SQL: time and data are passed in.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod access;
pub mod assessment;
pub mod audit;
pub mod bank;
pub mod calendar;
pub mod claim;
pub mod evidence;
pub mod feed_reader;
pub mod feeds;
pub mod follow_up;
pub mod identity;
pub mod ledger;
pub mod money;
pub mod outlook;
pub mod personal_data;
pub mod policy;
pub mod publicity;
pub mod review;
pub mod roster;
pub mod screening;
pub mod text;
pub mod time_limits;
pub mod year;

pub use money::Fen;
