//! Gauges read from the database when metrics are collected: claims by state,
//! relief paid, pool and available balance, open top-up flags, per county.
//!
//! Money is integer fen, as everywhere in fangpin (unit `fen`; Prometheus
//! shows e.g. `fangpin_pool_balance_fen`). The pool figures are those of the
//! current policy year, the calendar year of the service's date (Beijing
//! time), labelled with it. Claims and flags cover every policy year.
//!
//! The SDK calls the gauges' callbacks on its own collection thread, outside
//! the Tokio runtime, so they block on the runtime's handle for their query,
//! bounded by `COLLECT_TIMEOUT`. A failed or slow query skips that collection
//! (the gauge has no point for it) and is logged at WARN; the next collection
//! tries again.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Datelike;
use fangpin_store::Store;
use fangpin_store::stats::{self, PoolFigures};
use opentelemetry::KeyValue;
use opentelemetry::metrics::ObservableGauge;

use crate::transport::telemetry::SCOPE;
use crate::write_path::clock::{Clock, china_date};

/// The longest a collection waits for one query: a collection must not pile
/// up behind a locked database.
pub const COLLECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The three pool gauges of one collection share one query.
const POOL_FIGURES_MAX_AGE: Duration = Duration::from_secs(1);

pub const CLAIMS: &str = "fangpin.claims";
pub const RELIEF_PAID: &str = "fangpin.relief.paid";
pub const POOL_BALANCE: &str = "fangpin.pool.balance";
pub const POOL_AVAILABLE: &str = "fangpin.pool.available";
pub const TOP_UP_FLAGS_OPEN: &str = "fangpin.top_up_flags.open";
pub const CALENDAR_DAYS_LEFT: &str = "fangpin.calendar.days_left";
pub const DEADLINES_OVERDUE: &str = "fangpin.deadlines.overdue";

const ATTR_COUNTY: &str = "fangpin.county_code";
const ATTR_YEAR: &str = "fangpin.policy_year";
const ATTR_STATE: &str = "fangpin.claim_state";
const ATTR_STAGE: &str = "fangpin.stage";

/// The registered gauges; they report for as long as the meter provider
/// lives, this keeps their handles with the server that registered them.
pub(crate) struct Gauges {
    _claims: ObservableGauge<u64>,
    _relief_paid: ObservableGauge<u64>,
    _pool: ObservableGauge<i64>,
    _available: ObservableGauge<i64>,
    _flags: ObservableGauge<u64>,
    _calendar: ObservableGauge<i64>,
    _overdue: ObservableGauge<u64>,
}

struct Source {
    store: Store,
    clock: Arc<dyn Clock>,
    runtime: tokio::runtime::Handle,
    pool_figures: Mutex<Option<(Instant, Vec<PoolFigures>)>>,
}

impl Source {
    /// Runs one query on a pooled connection, from the collection thread.
    fn query<T, F, Fut>(&self, what: &str, query: F) -> Option<T>
    where
        F: FnOnce(Store) -> Fut,
        Fut: Future<Output = fangpin_store::Result<T>>,
    {
        // After shutdown closed the pool, the final collection has nothing
        // to read. On a runtime thread, blocking would stall the runtime
        // (the SDK never does this; a misuse must not deadlock).
        if self.store.pool().is_closed() || tokio::runtime::Handle::try_current().is_ok() {
            return None;
        }
        let store = self.store.clone();
        // The timeout's timer is made inside `block_on`, in the runtime's context.
        match self
            .runtime
            .block_on(async move { tokio::time::timeout(COLLECT_TIMEOUT, query(store)).await })
        {
            Ok(Ok(value)) => Some(value),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, metric = what, "reading a gauge from the database failed");
                None
            }
            Err(_) => {
                tracing::warn!(
                    metric = what,
                    timeout_secs = COLLECT_TIMEOUT.as_secs(),
                    "reading a gauge from the database timed out"
                );
                None
            }
        }
    }

    fn policy_year(&self) -> i32 {
        china_date(self.clock.now()).year()
    }

    fn pool_figures(&self) -> Option<Vec<PoolFigures>> {
        if let Ok(cached) = self.pool_figures.lock()
            && let Some((at, figures)) = cached.as_ref()
            && at.elapsed() < POOL_FIGURES_MAX_AGE
        {
            return Some(figures.clone());
        }
        let year = self.policy_year();
        let figures = self.query("fangpin.pool", move |store| async move {
            // Straight from the pool: `Store::read` is traced, and a
            // collection is not a request.
            let mut conn = store.pool().acquire().await?;
            stats::pool_figures(&mut conn, year).await
        })?;
        if let Ok(mut cached) = self.pool_figures.lock() {
            *cached = Some((Instant::now(), figures.clone()));
        }
        Some(figures)
    }
}

fn county_year(county_code: &str, policy_year: i32) -> [KeyValue; 2] {
    [
        KeyValue::new(ATTR_COUNTY, county_code.to_string()),
        KeyValue::new(ATTR_YEAR, i64::from(policy_year)),
    ]
}

/// Registers the gauges with the global meter provider (a no-op one unless
/// `telemetry::init` installed an exporter). Call inside the runtime.
pub(crate) fn register(
    store: Store,
    clock: Arc<dyn Clock>,
    calendar: Arc<fangpin_domain::calendar::WorkCalendar>,
) -> Gauges {
    let calendar_clock = clock.clone();
    let source = Arc::new(Source {
        store,
        clock,
        runtime: tokio::runtime::Handle::current(),
        pool_figures: Mutex::new(None),
    });
    let meter = opentelemetry::global::meter(SCOPE);

    let s = source.clone();
    let claims = meter
        .u64_observable_gauge(CLAIMS)
        .with_unit("{claim}")
        .with_description("Claims per county and state, all policy years")
        .with_callback(move |observer| {
            let counts = s.query(CLAIMS, |store| async move {
                let mut conn = store.pool().acquire().await?;
                stats::claims_by_state(&mut conn).await
            });
            for c in counts.unwrap_or_default() {
                observer.observe(
                    c.claims,
                    &[
                        KeyValue::new(ATTR_COUNTY, c.county_code),
                        KeyValue::new(ATTR_STATE, c.state),
                    ],
                );
            }
        })
        .build();

    let s = source.clone();
    let relief_paid = meter
        .u64_observable_gauge(RELIEF_PAID)
        .with_unit("fen")
        .with_description("Relief paid to households in the current policy year, in fen")
        .with_callback(move |observer| {
            for f in s.pool_figures().unwrap_or_default() {
                // The relief account is debit-normal and never negative.
                if let Ok(fen) = u64::try_from(f.relief_paid.get()) {
                    observer.observe(fen, &county_year(&f.county_code, f.policy_year));
                }
            }
        })
        .build();

    let s = source.clone();
    let pool = meter
        .i64_observable_gauge(POOL_BALANCE)
        .with_unit("fen")
        .with_description("Posted fund-pool balance in the current policy year, in fen")
        .with_callback(move |observer| {
            for f in s.pool_figures().unwrap_or_default() {
                observer.observe(f.pool.get(), &county_year(&f.county_code, f.policy_year));
            }
        })
        .build();

    let s = source.clone();
    let available = meter
        .i64_observable_gauge(POOL_AVAILABLE)
        .with_unit("fen")
        .with_description(
            "Pool balance less pending reservations in the current policy year, in fen; \
             below zero when a top-up is owed",
        )
        .with_callback(move |observer| {
            for f in s.pool_figures().unwrap_or_default() {
                if let Some(available) = f.available() {
                    observer.observe(available.get(), &county_year(&f.county_code, f.policy_year));
                }
            }
        })
        .build();

    let s = source.clone();
    let overdue_calendar = calendar.clone();
    // The same computation as ListDeadlines (services::deadlines), so the
    // gauge and the listing cannot disagree.
    let overdue = meter
        .u64_observable_gauge(DEADLINES_OVERDUE)
        .with_unit("{case}")
        .with_description(
            "Cases past their time limit (限时办结) per county and stage: survey, filing, payout, \
             follow_up_visit, monitoring_list",
        )
        .with_callback(move |observer| {
            let today = china_date(s.clock.now());
            let calendar = overdue_calendar.clone();
            let counts = s.query(DEADLINES_OVERDUE, move |store| async move {
                let mut conn = store.pool().acquire().await?;
                crate::services::deadlines::overdue_counts(&mut conn, &calendar, today).await
            });
            for (county, stage, n) in counts.unwrap_or_default() {
                observer.observe(
                    n,
                    &[
                        KeyValue::new(ATTR_COUNTY, county),
                        KeyValue::new(ATTR_STAGE, stage.as_str()),
                    ],
                );
            }
        })
        .build();

    let s = source;
    let flags = meter
        .u64_observable_gauge(TOP_UP_FLAGS_OPEN)
        .with_unit("{flag}")
        .with_description("Top-up flags not yet cleared, per county and policy year")
        .with_callback(move |observer| {
            let counts = s.query(TOP_UP_FLAGS_OPEN, |store| async move {
                let mut conn = store.pool().acquire().await?;
                stats::open_flags(&mut conn).await
            });
            for c in counts.unwrap_or_default() {
                observer.observe(c.open, &county_year(&c.county_code, c.policy_year));
            }
        })
        .build();

    // No query: the calendar is in memory. Alert below 60 (the log warns
    // from then on); below zero, deadlines are provisional.
    let calendar = meter
        .i64_observable_gauge(CALENDAR_DAYS_LEFT)
        .with_unit("d")
        .with_description(
            "Days from the service's date to the last day the working-day calendar covers; \
             load next year's arrangement ([calendar] file) before it reaches zero",
        )
        .with_callback(move |observer| {
            let today = china_date(calendar_clock.now());
            observer.observe(calendar.days_of_coverage_left(today), &[]);
        })
        .build();

    Gauges {
        _calendar: calendar,
        _claims: claims,
        _relief_paid: relief_paid,
        _pool: pool,
        _available: available,
        _flags: flags,
        _overdue: overdue,
    }
}
