//! Follow-up cases after payment: contacts, visits and status events
//! (migration 0017). The rules are in `fangpin_domain::follow_up`; this is
//! their storage.

use std::collections::HashMap;

use chrono::NaiveDate;
use fangpin_domain::follow_up::{Contact, MonitoringStatus, VisitMode};
use uuid::Uuid;

use crate::{Conn, Result, StoreError, col, parse_date, parse_uuid};

/// A case as stored, without its lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseRecord {
    pub claim_id: Uuid,
    pub county_code: String,
    pub household_id: Uuid,
    pub village_code: String,
    pub status: MonitoringStatus,
    pub cadence_from: NaiveDate,
    pub opened_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredContact {
    pub contact: Contact,
    pub phone_masked: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VisitRecord {
    pub seq: u32,
    pub visited_on: NaiveDate,
    pub mode: VisitMode,
    pub contact_name: String,
    pub findings: String,
    pub risk_remains: bool,
    pub due_on: Option<NaiveDate>,
    pub working_days_late: u32,
    pub recorded_by: String,
    pub recorded_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRecord {
    pub seq: u32,
    pub event: String,
    pub status: MonitoringStatus,
    pub actor: String,
    pub reason: String,
    pub at: String,
}

/// A case with its contacts, visits and events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullCase {
    pub case: CaseRecord,
    pub contacts: Vec<StoredContact>,
    pub visits: Vec<VisitRecord>,
    pub events: Vec<EventRecord>,
}

/// The most cases one household's history returns: a household has a case
/// per paid claim, a handful over the years.
pub const MAX_CASES_PER_HOUSEHOLD: i64 = 200;

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("bad stored {what} {value:?}"))
}

fn status(text: &str) -> Result<MonitoringStatus> {
    MonitoringStatus::parse(text).ok_or_else(|| corrupt("monitoring status", text))
}

fn seq(value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| corrupt("seq", &value.to_string()))
}

const CASE_COLUMNS: &str =
    "claim_id, county_code, household_id, village_code, status, cadence_from, opened_at";

fn decode_case(row: &sqlx::any::AnyRow) -> Result<CaseRecord> {
    Ok(CaseRecord {
        claim_id: parse_uuid(&col::<String>(row, "claim_id")?)?,
        county_code: col(row, "county_code")?,
        household_id: parse_uuid(&col::<String>(row, "household_id")?)?,
        village_code: col(row, "village_code")?,
        status: status(&col::<String>(row, "status")?)?,
        cadence_from: parse_date(&col::<String>(row, "cadence_from")?)?,
        opened_at: col(row, "opened_at")?,
    })
}

#[tracing::instrument(name = "store.follow_up.insert_case", level = "info", skip_all, fields(fangpin.claim_id = %case.claim_id))]
pub async fn insert_case(conn: &mut Conn, case: &CaseRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO follow_up_cases (claim_id, county_code, household_id, village_code, status, \
         cadence_from, opened_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(case.claim_id.to_string())
    .bind(&case.county_code)
    .bind(case.household_id.to_string())
    .bind(&case.village_code)
    .bind(case.status.as_str())
    .bind(case.cadence_from.to_string())
    .bind(&case.opened_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Saves a case's status and cadence start.
#[tracing::instrument(name = "store.follow_up.update_case", level = "info", skip_all, fields(fangpin.claim_id = %case.claim_id))]
pub async fn update_case(conn: &mut Conn, case: &CaseRecord, at: &str) -> Result<()> {
    let done = sqlx::query(
        "UPDATE follow_up_cases SET status = $2, cadence_from = $3, updated_at = $4 WHERE claim_id = $1",
    )
    .bind(case.claim_id.to_string())
    .bind(case.status.as_str())
    .bind(case.cadence_from.to_string())
    .bind(at)
    .execute(conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt(format!(
            "follow-up case {} vanished inside its own write",
            case.claim_id
        )));
    }
    Ok(())
}

/// Replaces the case's contacts with `contacts` (one or two, checked by the
/// domain).
#[tracing::instrument(name = "store.follow_up.replace_contacts", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn replace_contacts(
    conn: &mut Conn,
    claim_id: Uuid,
    contacts: &[StoredContact],
) -> Result<()> {
    sqlx::query("DELETE FROM follow_up_contacts WHERE claim_id = $1")
        .bind(claim_id.to_string())
        .execute(&mut *conn)
        .await?;
    for (i, c) in contacts.iter().enumerate() {
        sqlx::query(
            "INSERT INTO follow_up_contacts (claim_id, seq, name, work_unit, phone, phone_masked) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(claim_id.to_string())
        .bind(i as i64 + 1)
        .bind(&c.contact.name)
        .bind(&c.contact.work_unit)
        .bind(&c.contact.phone)
        .bind(&c.phone_masked)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[tracing::instrument(name = "store.follow_up.append_visit", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn append_visit(
    conn: &mut Conn,
    claim_id: Uuid,
    visit: &VisitRecord,
    request_id: &str,
) -> Result<u32> {
    let next: i64 = col(
        &sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM follow_up_visits WHERE claim_id = $1",
        )
        .bind(claim_id.to_string())
        .fetch_one(&mut *conn)
        .await?,
        "seq",
    )?;
    sqlx::query(
        "INSERT INTO follow_up_visits (claim_id, seq, visited_on, mode, contact_name, findings, \
         risk_remains, due_on, working_days_late, recorded_by, recorded_at, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(claim_id.to_string())
    .bind(next)
    .bind(visit.visited_on.to_string())
    .bind(visit.mode.as_str())
    .bind(&visit.contact_name)
    .bind(&visit.findings)
    .bind(i64::from(visit.risk_remains))
    .bind(visit.due_on.map(|d| d.to_string()).unwrap_or_default())
    .bind(i64::from(visit.working_days_late))
    .bind(&visit.recorded_by)
    .bind(&visit.recorded_at)
    .bind(request_id)
    .execute(conn)
    .await?;
    seq(next)
}

#[tracing::instrument(name = "store.follow_up.append_event", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn append_event(
    conn: &mut Conn,
    claim_id: Uuid,
    event: &EventRecord,
    request_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO follow_up_events (claim_id, seq, event, status, actor, reason, at, request_id) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7 FROM follow_up_events WHERE claim_id = $1",
    )
    .bind(claim_id.to_string())
    .bind(&event.event)
    .bind(event.status.as_str())
    .bind(&event.actor)
    .bind(&event.reason)
    .bind(&event.at)
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store.follow_up.get_case", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn get_case(conn: &mut Conn, claim_id: Uuid) -> Result<Option<FullCase>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CASE_COLUMNS} FROM follow_up_cases WHERE claim_id = $1"
    )))
    .bind(claim_id.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let case = decode_case(&row)?;
    Ok(Some(full(conn, case).await?))
}

async fn full(conn: &mut Conn, case: CaseRecord) -> Result<FullCase> {
    let id = case.claim_id.to_string();
    let contacts = full_contacts(conn, case.claim_id).await?;
    let visits = sqlx::query(
        "SELECT seq, visited_on, mode, contact_name, findings, risk_remains, due_on, working_days_late, \
         recorded_by, recorded_at FROM follow_up_visits WHERE claim_id = $1 ORDER BY seq LIMIT $2",
    )
    .bind(&id)
    .bind(fangpin_domain::follow_up::MAX_VISITS as i64)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        let mode: String = col(r, "mode")?;
        let due: String = col(r, "due_on")?;
        let late: i64 = col(r, "working_days_late")?;
        Ok(VisitRecord {
            seq: seq(col(r, "seq")?)?,
            visited_on: parse_date(&col::<String>(r, "visited_on")?)?,
            mode: VisitMode::parse(&mode).ok_or_else(|| corrupt("visit mode", &mode))?,
            contact_name: col(r, "contact_name")?,
            findings: col(r, "findings")?,
            risk_remains: col::<i64>(r, "risk_remains")? != 0,
            due_on: if due.is_empty() {
                None
            } else {
                Some(parse_date(&due)?)
            },
            working_days_late: u32::try_from(late)
                .map_err(|_| corrupt("working days late", &late.to_string()))?,
            recorded_by: col(r, "recorded_by")?,
            recorded_at: col(r, "recorded_at")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    let events = sqlx::query(
        "SELECT seq, event, status, actor, reason, at FROM follow_up_events WHERE claim_id = $1 ORDER BY seq",
    )
    .bind(&id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(EventRecord {
            seq: seq(col(r, "seq")?)?,
            event: col(r, "event")?,
            status: status(&col::<String>(r, "status")?)?,
            actor: col(r, "actor")?,
            reason: col(r, "reason")?,
            at: col(r, "at")?,
        })
    })
    .collect::<Result<Vec<_>>>()?;
    Ok(FullCase {
        case,
        contacts,
        visits,
        events,
    })
}

/// Every case of a household, oldest first.
#[tracing::instrument(name = "store.follow_up.household_cases", level = "info", skip_all)]
pub async fn household_cases(conn: &mut Conn, household_id: Uuid) -> Result<Vec<FullCase>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CASE_COLUMNS} FROM follow_up_cases WHERE household_id = $1 ORDER BY opened_at, claim_id LIMIT $2"
    )))
    .bind(household_id.to_string())
    .bind(MAX_CASES_PER_HOUSEHOLD)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let case = decode_case(row)?;
        out.push(full(conn, case).await?);
    }
    Ok(out)
}

/// The cases under monitoring of a county, with their contacts and the
/// claim's policy version, for the deadline listing, at most `limit`.
#[derive(Clone, Debug)]
pub struct OpenCase {
    pub case: CaseRecord,
    pub relief_kind: fangpin_domain::policy::ReliefKind,
    pub policy_year: i32,
    pub policy_version: u32,
    pub contacts: Vec<StoredContact>,
}

#[tracing::instrument(name = "store.follow_up.open_cases", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn open_cases(conn: &mut Conn, county_code: &str, limit: u32) -> Result<Vec<OpenCase>> {
    let rows = sqlx::query(
        "SELECT f.claim_id, f.county_code, f.household_id, f.village_code, f.status, f.cadence_from, \
         f.opened_at, c.relief_kind, c.policy_year, c.policy_version FROM follow_up_cases f \
         JOIN claims c ON c.claim_id = f.claim_id \
         WHERE f.county_code = $1 AND f.status = 'monitoring' ORDER BY f.claim_id LIMIT $2",
    )
    .bind(county_code)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let cases = rows.iter().map(decode_case).collect::<Result<Vec<_>>>()?;
    // The contacts of every case listed, in one query rather than one per
    // case: up to the last case's id, in the same order.
    let mut contacts = match cases.last() {
        None => HashMap::new(),
        Some(last) => contacts_of_open_cases(conn, county_code, last.claim_id).await?,
    };
    let mut out = Vec::with_capacity(rows.len());
    for (row, case) in rows.iter().zip(cases) {
        let year: i64 = col(row, "policy_year")?;
        let version: i64 = col(row, "policy_version")?;
        let kind: String = col(row, "relief_kind")?;
        let contacts = contacts.remove(&case.claim_id).unwrap_or_default();
        out.push(OpenCase {
            case,
            relief_kind: fangpin_domain::policy::ReliefKind::parse(&kind)
                .ok_or_else(|| corrupt("relief kind", &kind))?,
            policy_year: i32::try_from(year).map_err(|_| corrupt("year", &year.to_string()))?,
            policy_version: u32::try_from(version)
                .map_err(|_| corrupt("version", &version.to_string()))?,
            contacts,
        });
    }
    Ok(out)
}

/// The contacts of `county_code`'s monitoring cases with claim ids up to
/// `last`, by claim, each case's in their order.
async fn contacts_of_open_cases(
    conn: &mut Conn,
    county_code: &str,
    last: Uuid,
) -> Result<HashMap<Uuid, Vec<StoredContact>>> {
    let rows = sqlx::query(
        "SELECT ct.claim_id, ct.name, ct.work_unit, ct.phone, ct.phone_masked \
         FROM follow_up_contacts ct JOIN follow_up_cases f ON f.claim_id = ct.claim_id \
         WHERE f.county_code = $1 AND f.status = 'monitoring' AND f.claim_id <= $2 \
         ORDER BY ct.claim_id, ct.seq",
    )
    .bind(county_code)
    .bind(last.to_string())
    .fetch_all(conn)
    .await?;
    let mut by_claim: HashMap<Uuid, Vec<StoredContact>> = HashMap::new();
    for r in &rows {
        let claim_id = parse_uuid(&col::<String>(r, "claim_id")?)?;
        by_claim.entry(claim_id).or_default().push(StoredContact {
            contact: Contact {
                name: col(r, "name")?,
                work_unit: col(r, "work_unit")?,
                phone: col(r, "phone")?,
            },
            phone_masked: col(r, "phone_masked")?,
        });
    }
    Ok(by_claim)
}

async fn full_contacts(conn: &mut Conn, claim_id: Uuid) -> Result<Vec<StoredContact>> {
    sqlx::query(
        "SELECT name, work_unit, phone, phone_masked FROM follow_up_contacts WHERE claim_id = $1 ORDER BY seq",
    )
    .bind(claim_id.to_string())
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(StoredContact {
            contact: Contact {
                name: col(r, "name")?,
                work_unit: col(r, "work_unit")?,
                phone: col(r, "phone")?,
            },
            phone_masked: col(r, "phone_masked")?,
        })
    })
    .collect()
}
