//! The transport: what every call goes through before and after its
//! handler, whatever the service. TLS (`tls`), bearer tokens and the role
//! check (`auth`, asked by `caller::CallerLayer`, which also names the caller
//! for the audit log), the per-call deadline (`deadline`), counting calls in
//! flight for the shutdown (`drain`), spans and RPC metrics (`telemetry`),
//! the gauges (`metrics`) and the health that follows the disk
//! (`storage_watch`). Nothing here knows a business rule.

pub mod auth;
pub mod caller;
pub mod console;
pub mod deadline;
pub(crate) mod drain;
pub(crate) mod metrics;
pub mod storage_watch;
pub mod telemetry;
pub mod tls;
