//! The monthly monitoring lists (月度监测名单, migration 0018): a screening
//! run's candidates sent to the townships, and each township's decision.

use chrono::NaiveDate;
use fangpin_domain::Fen;
use fangpin_domain::policy::ReliefKind;
use uuid::Uuid;

use crate::{Conn, Result, StoreError, col, parse_date, parse_uuid};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRecord {
    pub list_id: Uuid,
    pub run_id: Uuid,
    pub county_code: String,
    pub township_code: String,
    pub issued_on: NaiveDate,
    pub due_on: NaiveDate,
    pub issued_by: String,
    pub issued_at: String,
}

/// An entry's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryStatus {
    Pending,
    Confirmed,
    Dismissed,
}

impl EntryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Pending => "pending",
            EntryStatus::Confirmed => "confirmed",
            EntryStatus::Dismissed => "dismissed",
        }
    }

    fn parse(text: &str) -> Option<EntryStatus> {
        [
            EntryStatus::Pending,
            EntryStatus::Confirmed,
            EntryStatus::Dismissed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntryRecord {
    pub list_id: Uuid,
    pub run_id: Uuid,
    pub township_code: String,
    pub household_id: Uuid,
    pub village_code: String,
    pub relief_kind: ReliefKind,
    pub reason: String,
    pub cost: Fen,
    pub issued_on: NaiveDate,
    pub due_on: NaiveDate,
    pub status: EntryStatus,
    pub checked_by: Option<String>,
    pub checked_on: Option<NaiveDate>,
    pub note: Option<String>,
    pub claim_id: Option<Uuid>,
}

/// The most entries one listing returns: a county's monthly list has tens
/// to hundreds of households.
pub const MAX_ENTRIES: i64 = 10_000;

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("bad stored {what} {value:?}"))
}

#[tracing::instrument(name = "store.monitoring.insert_list", level = "info", skip_all, fields(fangpin.run_id = %list.run_id))]
pub async fn insert_list(conn: &mut Conn, list: &ListRecord, request_id: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO monitoring_lists (list_id, run_id, county_code, township_code, issued_on, due_on, \
         issued_by, issued_at, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(list.list_id.to_string())
    .bind(list.run_id.to_string())
    .bind(&list.county_code)
    .bind(&list.township_code)
    .bind(list.issued_on.to_string())
    .bind(list.due_on.to_string())
    .bind(&list.issued_by)
    .bind(&list.issued_at)
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store.monitoring.insert_entry", level = "info", skip_all, fields(fangpin.run_id = %run_id))]
pub async fn insert_entry(
    conn: &mut Conn,
    list_id: Uuid,
    run_id: Uuid,
    household_id: Uuid,
    kind: ReliefKind,
    village_code: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO monitoring_list_entries (list_id, run_id, household_id, relief_kind, village_code, status) \
         VALUES ($1, $2, $3, $4, $5, 'pending')",
    )
    .bind(list_id.to_string())
    .bind(run_id.to_string())
    .bind(household_id.to_string())
    .bind(kind.as_str())
    .bind(village_code)
    .execute(conn)
    .await?;
    Ok(())
}

fn decode_list(r: &sqlx::any::AnyRow) -> Result<ListRecord> {
    Ok(ListRecord {
        list_id: parse_uuid(&col::<String>(r, "list_id")?)?,
        run_id: parse_uuid(&col::<String>(r, "run_id")?)?,
        county_code: col(r, "county_code")?,
        township_code: col(r, "township_code")?,
        issued_on: parse_date(&col::<String>(r, "issued_on")?)?,
        due_on: parse_date(&col::<String>(r, "due_on")?)?,
        issued_by: col(r, "issued_by")?,
        issued_at: col(r, "issued_at")?,
    })
}

/// A run's lists, by township; `township` narrows them to one.
#[tracing::instrument(name = "store.monitoring.lists_of_run", level = "info", skip_all, fields(fangpin.run_id = %run_id))]
pub async fn lists_of_run(
    conn: &mut Conn,
    run_id: Uuid,
    township: Option<&str>,
) -> Result<Vec<ListRecord>> {
    sqlx::query(
        "SELECT list_id, run_id, county_code, township_code, issued_on, due_on, issued_by, issued_at \
         FROM monitoring_lists WHERE run_id = $1 AND ($2 = '' OR township_code = $2) ORDER BY township_code",
    )
    .bind(run_id.to_string())
    .bind(township.unwrap_or(""))
    .fetch_all(conn)
    .await?
    .iter()
    .map(decode_list)
    .collect()
}

const ENTRY_SELECT: &str = "SELECT e.list_id, e.run_id, l.township_code, e.household_id, e.village_code, \
    e.relief_kind, s.reason, s.cost_fen, l.issued_on, l.due_on, e.status, e.checked_by, e.checked_on, e.note, e.claim_id \
    FROM monitoring_list_entries e JOIN monitoring_lists l ON l.list_id = e.list_id \
    JOIN screening_candidates s ON s.run_id = e.run_id AND s.household_id = e.household_id \
    AND s.relief_kind = e.relief_kind";

fn decode_entry(r: &sqlx::any::AnyRow) -> Result<ListEntryRecord> {
    let kind: String = col(r, "relief_kind")?;
    let status: String = col(r, "status")?;
    let checked_on: Option<String> = col(r, "checked_on")?;
    let claim: Option<String> = col(r, "claim_id")?;
    Ok(ListEntryRecord {
        list_id: parse_uuid(&col::<String>(r, "list_id")?)?,
        run_id: parse_uuid(&col::<String>(r, "run_id")?)?,
        township_code: col(r, "township_code")?,
        household_id: parse_uuid(&col::<String>(r, "household_id")?)?,
        village_code: col(r, "village_code")?,
        relief_kind: ReliefKind::parse(&kind).ok_or_else(|| corrupt("relief kind", &kind))?,
        reason: col(r, "reason")?,
        cost: Fen::new(col(r, "cost_fen")?),
        issued_on: parse_date(&col::<String>(r, "issued_on")?)?,
        due_on: parse_date(&col::<String>(r, "due_on")?)?,
        status: EntryStatus::parse(&status).ok_or_else(|| corrupt("entry status", &status))?,
        checked_by: col(r, "checked_by")?,
        checked_on: checked_on.as_deref().map(parse_date).transpose()?,
        note: col(r, "note")?,
        claim_id: claim.as_deref().map(parse_uuid).transpose()?,
    })
}

/// The entries of a run's lists (optionally one township's), by township,
/// village and household.
#[tracing::instrument(name = "store.monitoring.list_entries", level = "info", skip_all, fields(fangpin.run_id = %run_id))]
pub async fn list_entries(
    conn: &mut Conn,
    run_id: Uuid,
    township: Option<&str>,
) -> Result<Vec<ListEntryRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{ENTRY_SELECT} WHERE e.run_id = $1 AND ($2 = '' OR l.township_code = $2) \
         ORDER BY l.township_code, e.village_code, e.household_id, e.relief_kind LIMIT $3"
    )))
    .bind(run_id.to_string())
    .bind(township.unwrap_or(""))
    .bind(MAX_ENTRIES)
    .fetch_all(conn)
    .await?
    .iter()
    .map(decode_entry)
    .collect()
}

#[tracing::instrument(name = "store.monitoring.get_entry", level = "info", skip_all, fields(fangpin.run_id = %run_id))]
pub async fn get_entry(
    conn: &mut Conn,
    run_id: Uuid,
    household_id: Uuid,
    kind: ReliefKind,
) -> Result<Option<ListEntryRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{ENTRY_SELECT} WHERE e.run_id = $1 AND e.household_id = $2 AND e.relief_kind = $3"
    )))
    .bind(run_id.to_string())
    .bind(household_id.to_string())
    .bind(kind.as_str())
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(decode_entry)
    .transpose()
}

/// Records a township's decision on a pending entry.
#[tracing::instrument(name = "store.monitoring.decide_entry", level = "info", skip_all, fields(fangpin.run_id = %entry.run_id))]
pub async fn decide_entry(
    conn: &mut Conn,
    entry: &ListEntryRecord,
    decided_at: &str,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE monitoring_list_entries SET status = $4, checked_by = $5, checked_on = $6, note = $7, \
         claim_id = $8, decided_at = $9 \
         WHERE run_id = $1 AND household_id = $2 AND relief_kind = $3 AND status = 'pending'",
    )
    .bind(entry.run_id.to_string())
    .bind(entry.household_id.to_string())
    .bind(entry.relief_kind.as_str())
    .bind(entry.status.as_str())
    .bind(entry.checked_by.as_deref())
    .bind(entry.checked_on.map(|d| d.to_string()))
    .bind(entry.note.as_deref())
    .bind(entry.claim_id.map(|c| c.to_string()))
    .bind(decided_at)
    .execute(conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt(format!(
            "list entry {}/{} was not pending inside its own write",
            entry.run_id, entry.household_id
        )));
    }
    Ok(())
}

/// A county's pending entries, for the deadline listing, at most `limit`.
#[tracing::instrument(name = "store.monitoring.pending_entries", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn pending_entries(
    conn: &mut Conn,
    county_code: &str,
    limit: u32,
) -> Result<Vec<ListEntryRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "{ENTRY_SELECT} WHERE l.county_code = $1 AND e.status = 'pending' \
         ORDER BY l.due_on, e.run_id, e.household_id, e.relief_kind LIMIT $2"
    )))
    .bind(county_code)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?
    .iter()
    .map(decode_entry)
    .collect()
}
