//! Health while the database is out of space (disk full).
//!
//! A write that fails for lack of space rolls back whole and its caller gets
//! RESOURCE_EXHAUSTED (`error.rs`). The first such failure also turns the
//! gRPC health of the server and of every service NOT_SERVING, so probes and
//! load balancers see the trouble, and from then on a probe write
//! (`Store::probe_write`) is tried every `PROBE_INTERVAL`. The first one
//! that commits proves space was freed: health turns SERVING again and the
//! writes go on, with no restart. Reads are served throughout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fangpin_store::Store;
use tokio::sync::Notify;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::write_path::clock::Clock;

/// How often a full database is tried again.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Whether the database has run out of space, as the write path saw it.
#[derive(Debug, Default)]
pub struct StorageWatch {
    full: AtomicBool,
    wake: Notify,
}

impl StorageWatch {
    /// A write failed because the database is out of space.
    pub fn report_full(&self) {
        if !self.full.swap(true, Ordering::SeqCst) {
            // Stores a permit if the watcher is busy: never lost.
            self.wake.notify_one();
        }
    }

    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::SeqCst)
    }
}

/// The watcher task; aborted when dropped, and before shutdown turns health
/// NOT_SERVING for good, so that it cannot turn it back.
pub struct Watcher(tokio::task::JoinHandle<()>);

impl Watcher {
    pub fn abort(&self) {
        self.0.abort();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub fn spawn(
    watch: Arc<StorageWatch>,
    store: Store,
    clock: Arc<dyn Clock>,
    health: HealthReporter,
    services: &'static [&'static str],
) -> Watcher {
    Watcher(tokio::spawn(async move {
        loop {
            watch.wake.notified().await;
            tracing::error!(
                "the database is out of space: health NOT_SERVING, writes refused with \
                 RESOURCE_EXHAUSTED until space is freed"
            );
            set_all(&health, services, ServingStatus::NotServing).await;
            let mut probes: u64 = 0;
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                probes += 1;
                let now = clock.now().to_rfc3339();
                match store.probe_write(&now).await {
                    Ok(()) => break,
                    Err(e) if e.is_storage_full() => {}
                    // Another trouble (the database unreachable): still no
                    // proof of space, so keep trying.
                    Err(e) => tracing::warn!(error = %e, "storage probe failed"),
                }
            }
            // Cleared before SERVING: a write that fails from here on
            // reports again and wakes the next round.
            watch.full.store(false, Ordering::SeqCst);
            set_all(&health, services, ServingStatus::Serving).await;
            tracing::info!(probes, "the database takes writes again: health SERVING");
        }
    }))
}

/// Sets the server's overall health ("") and every service's; liveness is
/// not among them.
pub(crate) async fn set_all(health: &HealthReporter, services: &[&str], status: ServingStatus) {
    health.set_service_status("", status).await;
    for name in services {
        health.set_service_status(*name, status).await;
    }
}
