//! The imperative half of the working-day calendar: reading the operator's
//! `[calendar] file`, recomputing provisional survey deadlines once the
//! year they fell in is loaded, and warning while the coverage runs out.
//! The rules are in `fangpin_domain::calendar`.
//!
//! The State Council publishes each year's holiday arrangement only in
//! November of the year before, so a compiled-in calendar always runs out.
//! Intake never stops for that: a deadline past the covered years counts
//! Monday to Friday and is marked provisional (never an invented holiday).
//! The operator adds the new year to a calendar file and restarts;
//! `recompute_provisional_deadlines` then recounts every provisional
//! deadline and records each change in the claim's history and the audit log.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use fangpin_domain::audit::{AuditFields, format_at};
use fangpin_domain::calendar::{CalendarError, WorkCalendar};
use fangpin_store::claims::{self as claim_store, TransitionRecord};
use fangpin_store::{Store, StoreError, audit as audit_store, counties, timestamp};
use uuid::Uuid;

use crate::write_path::clock::{Clock, china_date};

/// The actor the calendar's own changes are recorded under.
pub const CALENDAR_ACTOR: &str = "system:calendar";
/// A calendar file lists a few dozen dates a year; anything this large is
/// not one.
const MAX_CALENDAR_FILE_BYTES: u64 = 1 << 20;
/// Claims recomputed per transaction.
const RECOMPUTE_BATCH: u32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum CalendarFileError {
    #[error("calendar.file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("calendar.file {path}: larger than {MAX_CALENDAR_FILE_BYTES} bytes, not a calendar")]
    TooLarge { path: PathBuf },
    #[error("calendar.file {path}: {error}")]
    Invalid { path: PathBuf, error: CalendarError },
}

/// Reads an operator's calendar file, checks it with the rules the built-in
/// data follows (format, statutory holidays), and returns the built-in
/// calendar extended by it.
pub fn load_file(path: &Path) -> Result<WorkCalendar, CalendarFileError> {
    let read = |error| CalendarFileError::Read {
        path: path.to_owned(),
        error,
    };
    if std::fs::metadata(path).map_err(read)?.len() > MAX_CALENDAR_FILE_BYTES {
        return Err(CalendarFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    let invalid = |error| CalendarFileError::Invalid {
        path: path.to_owned(),
        error,
    };
    let file = WorkCalendar::parse_checked(&text).map_err(invalid)?;
    WorkCalendar::official().extended_by(&file).map_err(invalid)
}

/// Recounts every provisional survey deadline that the calendar now covers,
/// one claim per transaction under its county's write lock, and records
/// each change: a history row (event `recompute_deadline`) and an audit
/// entry. A deadline whose days are still not all covered stays
/// provisional. Returns how many were recomputed.
pub async fn recompute_provisional_deadlines(
    store: &Store,
    calendar: &WorkCalendar,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    {
        let mut conn = store.pool().acquire().await?;
        if !claim_store::any_provisional_deadline(&mut conn).await? {
            return Ok(0);
        }
    }
    use tracing::Instrument as _;
    recompute_all(store, calendar, now)
        .instrument(tracing::info_span!("calendar.recompute_deadlines"))
        .await
}

async fn recompute_all(
    store: &Store,
    calendar: &WorkCalendar,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut after: Option<Uuid> = None;
    let mut recomputed = 0;
    loop {
        let batch = {
            let mut conn = store.read().await?;
            claim_store::list_provisional_deadlines(&mut conn, after, RECOMPUTE_BATCH).await?
        };
        let Some(last) = batch.last() else {
            break;
        };
        after = Some(last.claim_id);
        for listed in &batch {
            let mut tx = store.begin_write(&listed.county_code).await?;
            // Read again under the lock: the claim may have moved on.
            let Some(mut claim) = claim_store::get_claim(&mut tx, listed.claim_id).await? else {
                continue;
            };
            if !claim.survey_deadline_provisional {
                continue;
            }
            let policy = counties::get_policy(
                &mut tx,
                &claim.county_code,
                claim.policy_year,
                Some(claim.policy_version),
            )
            .await?
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "claim {} names missing policy version {}",
                    claim.claim_id, claim.policy_version
                ))
            })?;
            let deadline = calendar.deadline(
                claim.intake_date,
                policy.policy.survey_deadline_working_days,
            );
            if deadline.provisional {
                continue;
            }
            let before = claim.survey_deadline;
            claim.survey_deadline = deadline.date;
            claim.survey_deadline_provisional = false;
            claim_store::update_claim(&mut tx, &claim, now).await?;
            let (_, last_year) = calendar.years();
            let reason = format!(
                "survey deadline {before} (provisional) -> {} (working-day calendar now covers \
                 years up to {last_year})",
                deadline.date
            );
            let request_id = format!("calendar:{}", Uuid::now_v7());
            let note = TransitionRecord {
                from_state: Some(claim.state),
                to_state: claim.state,
                event: "recompute_deadline".into(),
                actor: CALENDAR_ACTOR.into(),
                reason,
                at: timestamp(now),
            };
            claim_store::append_transition(&mut tx, claim.claim_id, &note, &request_id).await?;
            let object = format!("{}/claim/{}", claim.county_code, claim.claim_id);
            let before_json = serde_json::json!({
                "survey_deadline": before.to_string(),
                "survey_deadline_provisional": true,
            })
            .to_string();
            let after_json = serde_json::json!({
                "survey_deadline": deadline.date.to_string(),
                "survey_deadline_provisional": false,
            })
            .to_string();
            let at = format_at(now);
            audit_store::append(
                &mut tx,
                &claim.county_code,
                &AuditFields {
                    at: &at,
                    actor: CALENDAR_ACTOR,
                    role: "",
                    rpc: "calendar/RecomputeDeadline",
                    object: &object,
                    before: &before_json,
                    after: &after_json,
                    request_id: &request_id,
                },
            )
            .await?;
            tx.commit().await?;
            recomputed += 1;
        }
    }
    Ok(recomputed)
}

/// Logs the coverage warning, if there is one for `clock`'s date.
pub fn warn_if_running_out(calendar: &WorkCalendar, clock: &dyn Clock) -> bool {
    let today = china_date(clock.now());
    match calendar.coverage_warning(today) {
        Some(warning) => {
            tracing::warn!(
                last_covered_day = %calendar.last_covered_day(),
                days_left = calendar.days_of_coverage_left(today),
                "{warning}"
            );
            true
        }
        None => false,
    }
}

/// Ends the watch when the server's `run_with` returns, however it returns.
pub struct CoverageWatch(tokio::task::JoinHandle<()>);

impl Drop for CoverageWatch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Warns once a day while the calendar's coverage runs out: checks every
/// hour whether the business date changed. Ends with the server.
pub fn spawn_coverage_watch(calendar: Arc<WorkCalendar>, clock: Arc<dyn Clock>) -> CoverageWatch {
    CoverageWatch(tokio::spawn(async move {
        let mut warned_on = china_date(clock.now());
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.tick().await;
        loop {
            tick.tick().await;
            let today = china_date(clock.now());
            if today != warned_on {
                warned_on = today;
                warn_if_running_out(&calendar, clock.as_ref());
            }
        }
    }))
}
