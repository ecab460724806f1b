//! Feeds, their per-household costs, and screening runs.
//!
//! Imports write aggregates, never raw rows: a file of ten million
//! settlements becomes one row per household, relief kind and calendar year
//! (twelve month columns). That keeps the database, and every later
//! screening run, proportional to the enrolled pool rather than to the feeds.

use chrono::{Datelike, NaiveDate};
use fangpin_domain::Fen;
use fangpin_domain::feeds::{CivilStatus, FeedKind};
use fangpin_domain::identity::PersonKey;
use fangpin_domain::policy::{HouseholdType, ReliefKind};
use futures_util::TryStreamExt;
use sqlx::Row;
use uuid::Uuid;

use crate::{Conn, Result, StoreError, col, parse_uuid};

/// Rows per multi-row INSERT: 500 × 18 parameters stays far below both
/// SQLite's (32,766) and PostgreSQL's (65,535) limit on bind parameters.
const INSERT_BATCH: usize = 500;
/// Row errors kept per import; all are counted.
pub const MAX_STORED_ROW_ERRORS: usize = 1_000;
/// Imports one screening run may read. Twelve monthly files of five feeds a
/// year is sixty; this leaves room for corrections and keeps the query's
/// IN list bounded.
pub const MAX_IMPORTS_PER_YEAR: usize = 2_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRecord {
    pub import_id: Uuid,
    pub county_code: String,
    pub policy_year: i32,
    pub kind: FeedKind,
    pub file_name: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub rows_total: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    pub rows_not_counted: u64,
    pub households_touched: u64,
    pub rejected_by_reason: Vec<(String, u64)>,
    pub totals: Vec<(ReliefKind, Fen)>,
    pub imported_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowErrorRecord {
    pub line: u64,
    pub field: String,
    pub code: String,
    pub reason: String,
}

/// One household's costs of one kind in one calendar year, from one import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostRow {
    pub household_id: Uuid,
    pub relief_kind: ReliefKind,
    pub year: i32,
    pub months: [Fen; 12],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncomeRow {
    pub household_id: Uuid,
    pub per_capita: Fen,
    pub status: CivilStatus,
    pub verified_on: NaiveDate,
}

/// Every enrolled person of a county's policy year, keyed for bulk lookup.
#[derive(Default)]
pub struct PersonIndex {
    pub persons: fangpin_domain::feeds::PersonMap,
    /// Household ids, indexed by the values of `persons`.
    pub households: Vec<Uuid>,
}

fn is_sqlite(conn: &Conn) -> bool {
    conn.backend_name() == "SQLite"
}

fn to_i64(n: u64, what: &str) -> Result<i64> {
    i64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{what} exceeds i64")))
}

fn to_u64(n: i64, what: &str) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

/// One household's enrolled persons as stored: its id and its members'
/// sealed ID numbers, hex-encoded and joined by commas.
pub type SealedHousehold = (String, String);

/// Streams every enrolled person of a county's policy year, one row per
/// household with its members' sealed ID numbers hex-encoded and joined by
/// commas: a third of the rows of one per person, which is what a
/// million-person county's load costs. The aggregate is spelled per backend
/// (`group_concat`/`hex`, `string_agg`/`encode`).
///
/// The store cannot open what it streams (it never holds the key): the
/// caller hands the rows to a [`PersonIndexBuilder`] with the key's `open`,
/// off the async workers, while the next rows stream in.
pub fn sealed_persons<'c>(
    conn: &'c mut Conn,
    county_code: &'c str,
    year: i32,
) -> impl futures_util::Stream<Item = Result<SealedHousehold>> + Send + 'c {
    let sql = if is_sqlite(conn) {
        "SELECT household_id, group_concat(hex(id_sealed), ',') AS ids FROM persons \
         WHERE county_code = $1 AND policy_year = $2 GROUP BY household_id"
    } else {
        "SELECT household_id, string_agg(encode(id_sealed, 'hex'), ',') AS ids FROM persons \
         WHERE county_code = $1 AND policy_year = $2 GROUP BY household_id"
    };
    sqlx::query(sql)
        .bind(county_code)
        .bind(i64::from(year))
        .fetch(conn)
        .map_err(StoreError::from)
        .and_then(|row| async move {
            let household: String = row.try_get(0)?;
            let ids: String = row.try_get(1)?;
            Ok((household, ids))
        })
}

/// Builds a [`PersonIndex`] from [`sealed_persons`]' rows. `open` turns one
/// sealed ID number, with its household id (the value's row, with the
/// policy year the caller knows), into the person's key. Every person is
/// opened once per load, so a feed's rows are matched on plain digits with
/// no cryptography per row (the server caches the index between imports).
#[derive(Default)]
pub struct PersonIndexBuilder {
    index: PersonIndex,
    sealed: Vec<u8>,
}

impl PersonIndexBuilder {
    pub fn add<F>(&mut self, household: &str, ids: &str, open: &mut F) -> Result<()>
    where
        F: FnMut(&str, &[u8]) -> std::result::Result<PersonKey, String>,
    {
        let index = u32::try_from(self.index.households.len())
            .map_err(|_| StoreError::Corrupt("more than 2^32 households".into()))?;
        self.index.households.push(parse_uuid(household)?);
        for id in ids.split(',') {
            self.sealed.clear();
            self.sealed.resize(id.len() / 2, 0);
            hex::decode_to_slice(id, &mut self.sealed)
                .map_err(|e| StoreError::Corrupt(format!("stored sealed id number: {e}")))?;
            let key = open(household, &self.sealed)
                .map_err(|e| StoreError::Corrupt(format!("stored person id number: {e}")))?;
            if self.index.persons.insert(key, index).is_some() {
                return Err(StoreError::Corrupt(
                    "a person is enrolled twice in one policy year".into(),
                ));
            }
        }
        Ok(())
    }

    pub fn finish(self) -> PersonIndex {
        self.index
    }
}

/// What changes whenever a county's enrolment for a year does: persons are
/// only ever added, so their count is enough to tell a cached index is stale.
#[tracing::instrument(name = "store.screening.enrolment_version", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = year))]
pub async fn enrolment_version(conn: &mut Conn, county_code: &str, year: i32) -> Result<u64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM persons WHERE county_code = $1 AND policy_year = $2",
    )
    .bind(county_code)
    .bind(i64::from(year))
    .fetch_one(conn)
    .await?;
    to_u64(col(&row, "n")?, "count")
}

#[tracing::instrument(name = "store.screening.find_import_by_hash", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = year))]
pub async fn find_import_by_hash(
    conn: &mut Conn,
    county_code: &str,
    year: i32,
    kind: FeedKind,
    sha256: &str,
) -> Result<Option<ImportRecord>> {
    // Only constant text is formatted into these statements; values are bound.
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{IMPORT_COLUMNS} WHERE county_code = $1 AND policy_year = $2 AND kind = $3 AND sha256 = $4"
    )))
    .bind(county_code)
    .bind(i64::from(year))
    .bind(kind.as_str())
    .bind(sha256)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(decode_import).transpose()
}

#[tracing::instrument(name = "store.screening.get_import", level = "info", skip_all, fields(fangpin.import_id = %import_id))]
pub async fn get_import(conn: &mut Conn, import_id: Uuid) -> Result<Option<ImportRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{IMPORT_COLUMNS} WHERE import_id = $1"
    )))
    .bind(import_id.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(decode_import).transpose()
}

const IMPORT_COLUMNS: &str = "SELECT import_id, county_code, policy_year, kind, file_name, sha256, size_bytes, \
     rows_total, rows_accepted, rows_rejected, rows_not_counted, households_touched, rejected_by_reason, totals, \
     imported_at FROM feed_imports";

fn decode_import(row: &sqlx::any::AnyRow) -> Result<ImportRecord> {
    let kind: String = col(row, "kind")?;
    let reasons: String = col(row, "rejected_by_reason")?;
    let totals: String = col(row, "totals")?;
    let reasons: Vec<(String, u64)> =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&reasons)
            .map_err(|e| StoreError::Corrupt(format!("rejected_by_reason: {e}")))?
            .into_iter()
            .map(|(k, v)| {
                v.as_u64()
                    .map(|n| (k, n))
                    .ok_or_else(|| StoreError::Corrupt("rejected_by_reason count".into()))
            })
            .collect::<Result<_>>()?;
    let totals: Vec<(ReliefKind, Fen)> =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&totals)
            .map_err(|e| StoreError::Corrupt(format!("totals: {e}")))?
            .into_iter()
            .map(|(k, v)| {
                let kind = ReliefKind::parse(&k)
                    .ok_or_else(|| StoreError::Corrupt(format!("totals kind {k}")))?;
                let fen = v
                    .as_i64()
                    .ok_or_else(|| StoreError::Corrupt("totals amount".into()))?;
                Ok((kind, Fen::new(fen)))
            })
            .collect::<Result<_>>()?;
    let year: i64 = col(row, "policy_year")?;
    Ok(ImportRecord {
        import_id: parse_uuid(&col::<String>(row, "import_id")?)?,
        county_code: col(row, "county_code")?,
        policy_year: i32::try_from(year).map_err(|_| StoreError::Corrupt("policy year".into()))?,
        kind: FeedKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("feed kind {kind}")))?,
        file_name: col(row, "file_name")?,
        sha256: col(row, "sha256")?,
        size_bytes: to_u64(col(row, "size_bytes")?, "size")?,
        rows_total: to_u64(col(row, "rows_total")?, "rows")?,
        rows_accepted: to_u64(col(row, "rows_accepted")?, "rows")?,
        rows_rejected: to_u64(col(row, "rows_rejected")?, "rows")?,
        rows_not_counted: to_u64(col(row, "rows_not_counted")?, "rows")?,
        households_touched: to_u64(col(row, "households_touched")?, "households")?,
        rejected_by_reason: reasons,
        totals,
        imported_at: col(row, "imported_at")?,
    })
}

#[tracing::instrument(name = "store.screening.insert_import", level = "info", skip_all, fields(fangpin.import_id = %record.import_id, fangpin.county_code = %record.county_code, fangpin.policy_year = record.policy_year))]
pub async fn insert_import(conn: &mut Conn, record: &ImportRecord, request_id: &str) -> Result<()> {
    let reasons: serde_json::Map<String, serde_json::Value> = record
        .rejected_by_reason
        .iter()
        .map(|(k, n)| (k.clone(), serde_json::Value::from(*n)))
        .collect();
    let totals: serde_json::Map<String, serde_json::Value> = record
        .totals
        .iter()
        .map(|(k, fen)| (k.as_str().to_string(), serde_json::Value::from(fen.get())))
        .collect();
    sqlx::query(
        "INSERT INTO feed_imports (import_id, county_code, policy_year, kind, file_name, sha256, size_bytes, \
         rows_total, rows_accepted, rows_rejected, rows_not_counted, households_touched, rejected_by_reason, totals, \
         request_id, imported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(record.import_id.to_string())
    .bind(&record.county_code)
    .bind(i64::from(record.policy_year))
    .bind(record.kind.as_str())
    .bind(&record.file_name)
    .bind(&record.sha256)
    .bind(to_i64(record.size_bytes, "size")?)
    .bind(to_i64(record.rows_total, "rows")?)
    .bind(to_i64(record.rows_accepted, "rows")?)
    .bind(to_i64(record.rows_rejected, "rows")?)
    .bind(to_i64(record.rows_not_counted, "rows")?)
    .bind(to_i64(record.households_touched, "households")?)
    .bind(serde_json::Value::Object(reasons).to_string())
    .bind(serde_json::Value::Object(totals).to_string())
    .bind(request_id)
    .bind(&record.imported_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store.screening.insert_row_errors", level = "info", skip_all, fields(fangpin.import_id = %import_id))]
pub async fn insert_row_errors(
    conn: &mut Conn,
    import_id: Uuid,
    errors: &[RowErrorRecord],
) -> Result<()> {
    assert!(
        errors.len() <= MAX_STORED_ROW_ERRORS,
        "row errors are bounded by the caller"
    );
    for batch in errors.chunks(INSERT_BATCH) {
        let sql = multi_row_insert(
            conn,
            "INSERT INTO feed_row_errors (import_id, line, field, code, reason) VALUES ",
            5,
            batch.len(),
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for e in batch {
            q = q
                .bind(import_id.to_string())
                .bind(to_i64(e.line, "line")?)
                .bind(&e.field)
                .bind(&e.code)
                .bind(&e.reason);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[tracing::instrument(name = "store.screening.row_errors", level = "info", skip_all, fields(fangpin.import_id = %import_id))]
pub async fn row_errors(
    conn: &mut Conn,
    import_id: Uuid,
    limit: usize,
) -> Result<Vec<RowErrorRecord>> {
    let rows = sqlx::query(
        "SELECT line, field, code, reason FROM feed_row_errors WHERE import_id = $1 ORDER BY line LIMIT $2",
    )
    .bind(import_id.to_string())
    .bind(to_i64(limit as u64, "limit")?)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RowErrorRecord {
                line: to_u64(col(r, "line")?, "line")?,
                field: col(r, "field")?,
                code: col(r, "code")?,
                reason: col(r, "reason")?,
            })
        })
        .collect()
}

/// "($1, $2), ($3, $4)" for `rows` rows of `width` parameters; on SQLite
/// "(?, ?), (?, ?)": SQLite looks each named `$N` up among those seen so far
/// while preparing, which is quadratic in a statement of thousands of
/// parameters (134 ms against 0.5 ms for 500 rows of 18).
fn multi_row_insert(conn: &Conn, prefix: &str, width: usize, rows: usize) -> String {
    let anonymous = is_sqlite(conn);
    let mut sql = String::with_capacity(prefix.len() + rows * width * 6);
    sql.push_str(prefix);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            if anonymous {
                sql.push('?');
            } else {
                sql.push('$');
                sql.push_str(&n.to_string());
            }
            n += 1;
        }
        sql.push(')');
    }
    sql
}

#[tracing::instrument(name = "store.screening.insert_costs", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = year, fangpin.import_id = %import_id))]
pub async fn insert_costs(
    conn: &mut Conn,
    county_code: &str,
    year: i32,
    import_id: Uuid,
    rows: &[CostRow],
) -> Result<()> {
    let import_id = import_id.to_string();
    // The statement text is the same for every full batch; sqlx caches it.
    for batch in rows.chunks(INSERT_BATCH) {
        let sql = multi_row_insert(
            conn,
            "INSERT INTO feed_costs (county_code, policy_year, household_id, relief_kind, cost_year, import_id, \
             m01, m02, m03, m04, m05, m06, m07, m08, m09, m10, m11, m12) VALUES ",
            18,
            batch.len(),
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for row in batch {
            q = q
                .bind(county_code)
                .bind(i64::from(year))
                .bind(row.household_id.to_string())
                .bind(row.relief_kind.as_str())
                .bind(i64::from(row.year))
                .bind(import_id.as_str());
            for m in row.months {
                q = q.bind(m.get());
            }
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Keeps each household's latest verified income: an older record never
/// replaces a newer one, whatever order the files arrive in.
#[tracing::instrument(name = "store.screening.upsert_incomes", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = year, fangpin.import_id = %import_id))]
pub async fn upsert_incomes(
    conn: &mut Conn,
    county_code: &str,
    year: i32,
    import_id: Uuid,
    rows: &[IncomeRow],
) -> Result<()> {
    for row in rows {
        sqlx::query(
            "INSERT INTO household_incomes (household_id, county_code, policy_year, per_capita_fen, status, \
             verified_on, import_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (household_id) DO UPDATE SET per_capita_fen = excluded.per_capita_fen, \
             status = excluded.status, verified_on = excluded.verified_on, import_id = excluded.import_id \
             WHERE household_incomes.verified_on <= excluded.verified_on",
        )
        .bind(row.household_id.to_string())
        .bind(county_code)
        .bind(i64::from(year))
        .bind(row.per_capita.get())
        .bind(row.status.as_str())
        .bind(row.verified_on.to_string())
        .bind(import_id.to_string())
        .execute(&mut *conn)
        .await?;
        // The history, one row per household and year of this import.
        sqlx::query(
            "INSERT INTO household_verifications (household_id, county_code, policy_year, verified_year, \
             verified_on, per_capita_fen, status, import_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (household_id, verified_year, import_id) DO UPDATE SET \
             verified_on = excluded.verified_on, per_capita_fen = excluded.per_capita_fen, status = excluded.status \
             WHERE household_verifications.verified_on <= excluded.verified_on",
        )
        .bind(row.household_id.to_string())
        .bind(county_code)
        .bind(i64::from(year))
        .bind(i64::from(row.verified_on.year()))
        .bind(row.verified_on.to_string())
        .bind(row.per_capita.get())
        .bind(row.status.as_str())
        .bind(import_id.to_string())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One civil-affairs verification as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerificationRecord {
    pub per_capita: Fen,
    pub status: CivilStatus,
    pub verified_on: NaiveDate,
    pub import_id: Uuid,
}

/// One household's verifications, one per calendar year (the year's latest
/// across imports), oldest first, with what screening needs of the
/// household.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HouseholdVerifications {
    pub village_code: String,
    pub household_type: HouseholdType,
    pub persons: u32,
    pub verifications: Vec<VerificationRecord>,
}

fn decode_verification(row: &sqlx::any::AnyRow) -> Result<VerificationRecord> {
    let status: String = col(row, "status")?;
    Ok(VerificationRecord {
        per_capita: Fen::new(col(row, "per_capita_fen")?),
        status: CivilStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("civil status {status}")))?,
        verified_on: crate::parse_date(&col::<String>(row, "verified_on")?)?,
        import_id: parse_uuid(&col::<String>(row, "import_id")?)?,
    })
}

/// Every verified household of a county's policy year with its
/// verifications. Bounded by the enrolled pool: at most one row per
/// household, calendar year and import.
#[tracing::instrument(name = "store.screening.verifications", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = year))]
pub async fn verifications(
    conn: &mut Conn,
    county_code: &str,
    year: i32,
) -> Result<std::collections::BTreeMap<Uuid, HouseholdVerifications>> {
    let mut rows = sqlx::query(
        "SELECT v.household_id, h.village_code, h.household_type, h.persons, v.verified_year, v.verified_on, \
         v.per_capita_fen, v.status, v.import_id FROM household_verifications v \
         JOIN households h ON h.household_id = v.household_id \
         WHERE v.county_code = $1 AND v.policy_year = $2 \
         ORDER BY v.household_id, v.verified_year, v.verified_on, v.import_id",
    )
    .bind(county_code)
    .bind(i64::from(year))
    .fetch(&mut *conn);
    let mut out = std::collections::BTreeMap::new();
    let mut last_year: Option<(Uuid, i64)> = None;
    while let Some(row) = rows.try_next().await? {
        let household_id = parse_uuid(&col::<String>(&row, "household_id")?)?;
        let household_type: String = col(&row, "household_type")?;
        let persons: i64 = col(&row, "persons")?;
        let entry = out
            .entry(household_id)
            .or_insert_with(|| HouseholdVerifications {
                village_code: String::new(),
                household_type: HouseholdType::Marginal,
                persons: 0,
                verifications: Vec::new(),
            });
        entry.village_code = col(&row, "village_code")?;
        entry.household_type = HouseholdType::parse(&household_type)
            .ok_or_else(|| StoreError::Corrupt(format!("household type {household_type}")))?;
        entry.persons =
            u32::try_from(persons).map_err(|_| StoreError::Corrupt("person count".into()))?;
        let record = decode_verification(&row)?;
        let verified_year: i64 = col(&row, "verified_year")?;
        // Rows come in date order within a year: a later one replaces the
        // year's earlier one, so each year keeps its latest.
        if last_year == Some((household_id, verified_year)) {
            *entry
                .verifications
                .last_mut()
                .expect("the year's first row") = record;
        } else {
            entry.verifications.push(record);
        }
        last_year = Some((household_id, verified_year));
    }
    Ok(out)
}

/// The household's latest verification on or before `as_of`: its status
/// then, and the import that says so.
#[tracing::instrument(name = "store.screening.verification_as_of", level = "info", skip_all, fields(fangpin.household_id = %household_id))]
pub async fn verification_as_of(
    conn: &mut Conn,
    household_id: Uuid,
    as_of: NaiveDate,
) -> Result<Option<VerificationRecord>> {
    let row = sqlx::query(
        "SELECT per_capita_fen, status, verified_on, import_id FROM household_verifications \
         WHERE household_id = $1 AND verified_on <= $2 ORDER BY verified_on DESC, import_id DESC LIMIT 1",
    )
    .bind(household_id.to_string())
    .bind(as_of.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(decode_verification).transpose()
}

#[tracing::instrument(name = "store.screening.import_ids", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = year))]
pub async fn import_ids(conn: &mut Conn, county_code: &str, year: i32) -> Result<Vec<Uuid>> {
    let rows = sqlx::query(
        "SELECT import_id FROM feed_imports WHERE county_code = $1 AND policy_year = $2 ORDER BY imported_at, import_id",
    )
    .bind(county_code)
    .bind(i64::from(year))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| parse_uuid(&col::<String>(r, "import_id")?))
        .collect()
}

#[tracing::instrument(name = "store.screening.count_households", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = year))]
pub async fn count_households(conn: &mut Conn, county_code: &str, year: i32) -> Result<u64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM households WHERE county_code = $1 AND policy_year = $2",
    )
    .bind(county_code)
    .bind(i64::from(year))
    .fetch_one(conn)
    .await?;
    to_u64(col(&row, "n")?, "count")
}

/// One stored cost row, with what screening needs to know of its household.
#[derive(Clone, Debug)]
pub struct HouseholdCostRow {
    pub household_id: Uuid,
    pub village_code: String,
    pub household_type: HouseholdType,
    pub persons: u32,
    pub relief_kind: ReliefKind,
    pub year: i32,
    pub months: [Fen; 12],
}

/// Streams the cost rows of the given imports for calendar years
/// `first_year..=last_year`, ordered by household, calling `each` per row.
/// Memory stays constant: rows are never collected.
#[tracing::instrument(name = "store.screening.for_each_cost_row", level = "info", skip_all)]
pub async fn for_each_cost_row(
    conn: &mut Conn,
    county_code: &str,
    year: i32,
    imports: &[Uuid],
    first_year: i32,
    last_year: i32,
    mut each: impl FnMut(HouseholdCostRow) -> Result<()>,
) -> Result<()> {
    assert!(
        imports.len() <= MAX_IMPORTS_PER_YEAR,
        "bounded by the caller"
    );
    if imports.is_empty() {
        return Ok(());
    }
    // Numbered on both backends: sqlx binds SQLite's anonymous `?` by its own
    // count, which would not continue after `$4`. The list is short.
    let list: Vec<String> = (0..imports.len()).map(|i| format!("${}", i + 5)).collect();
    let sql = format!(
        "SELECT c.household_id, h.village_code, h.household_type, h.persons, c.relief_kind, \
         c.cost_year, c.m01, c.m02, c.m03, c.m04, c.m05, c.m06, c.m07, c.m08, c.m09, c.m10, c.m11, c.m12 \
         FROM feed_costs c JOIN households h ON h.household_id = c.household_id \
         WHERE c.county_code = $1 AND c.policy_year = $2 AND c.cost_year BETWEEN $3 AND $4 \
         AND c.import_id IN ({}) ORDER BY c.household_id",
        list.join(", ")
    );
    // The IN list is placeholders only; the ids are bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(county_code)
        .bind(i64::from(year))
        .bind(i64::from(first_year))
        .bind(i64::from(last_year));
    for id in imports {
        q = q.bind(id.to_string());
    }
    let mut rows = q.fetch(&mut *conn);
    const MONTHS: [&str; 12] = [
        "m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08", "m09", "m10", "m11", "m12",
    ];
    while let Some(row) = rows.try_next().await? {
        let household_type: String = row.try_get(2)?;
        let persons: i64 = row.try_get(3)?;
        let kind: String = row.try_get(4)?;
        let mut months = [Fen::ZERO; 12];
        for (i, name) in MONTHS.iter().enumerate() {
            months[i] = Fen::new(col(&row, name)?);
        }
        let year: i64 = row.try_get(5)?;
        each(HouseholdCostRow {
            household_id: parse_uuid(&row.try_get::<String, _>(0)?)?,
            village_code: row.try_get(1)?,
            household_type: HouseholdType::parse(&household_type)
                .ok_or_else(|| StoreError::Corrupt(format!("household type {household_type}")))?,
            persons: u32::try_from(persons)
                .map_err(|_| StoreError::Corrupt("person count".into()))?,
            relief_kind: ReliefKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("relief kind {kind}")))?,
            year: i32::try_from(year).map_err(|_| StoreError::Corrupt("cost year".into()))?,
            months,
        })?;
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub run_id: Uuid,
    pub county_code: String,
    pub policy_year: i32,
    pub policy_version: u32,
    pub as_of: NaiveDate,
    pub households_screened: u64,
    pub households_with_costs: u64,
    pub candidates: u64,
    pub excluded_by_income: u64,
    pub import_ids: Vec<Uuid>,
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateRecord {
    pub household_id: Uuid,
    pub relief_kind: ReliefKind,
    pub village_code: String,
    pub household_type: HouseholdType,
    pub window_first: String,
    pub window_last: String,
    pub cost: Fen,
    pub threshold: Fen,
    pub over_by: Fen,
    pub income_limit: Fen,
    pub income: Option<Fen>,
    pub reason: String,
    pub claim_id: Option<Uuid>,
}

#[tracing::instrument(name = "store.screening.insert_run", level = "info", skip_all, fields(fangpin.run_id = %run.run_id, fangpin.county_code = %run.county_code, fangpin.policy_year = run.policy_year))]
pub async fn insert_run(conn: &mut Conn, run: &RunRecord, request_id: &str) -> Result<()> {
    let imports: Vec<String> = run.import_ids.iter().map(Uuid::to_string).collect();
    sqlx::query(
        "INSERT INTO screening_runs (run_id, county_code, policy_year, policy_version, as_of, households_screened, \
         households_with_costs, candidates, excluded_by_income, import_ids, request_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(run.run_id.to_string())
    .bind(&run.county_code)
    .bind(i64::from(run.policy_year))
    .bind(i64::from(run.policy_version))
    .bind(run.as_of.to_string())
    .bind(to_i64(run.households_screened, "count")?)
    .bind(to_i64(run.households_with_costs, "count")?)
    .bind(to_i64(run.candidates, "count")?)
    .bind(to_i64(run.excluded_by_income, "count")?)
    .bind(serde_json::to_string(&imports).map_err(|e| StoreError::Corrupt(e.to_string()))?)
    .bind(request_id)
    .bind(&run.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store.screening.get_run", level = "info", skip_all, fields(fangpin.run_id = %run_id))]
pub async fn get_run(conn: &mut Conn, run_id: Uuid) -> Result<Option<RunRecord>> {
    let row = sqlx::query(
        "SELECT run_id, county_code, policy_year, policy_version, as_of, households_screened, households_with_costs, \
         candidates, excluded_by_income, import_ids, created_at FROM screening_runs WHERE run_id = $1",
    )
    .bind(run_id.to_string())
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let imports: String = col(&row, "import_ids")?;
    let imports: Vec<String> = serde_json::from_str(&imports)
        .map_err(|e| StoreError::Corrupt(format!("import_ids: {e}")))?;
    let year: i64 = col(&row, "policy_year")?;
    let version: i64 = col(&row, "policy_version")?;
    Ok(Some(RunRecord {
        run_id: parse_uuid(&col::<String>(&row, "run_id")?)?,
        county_code: col(&row, "county_code")?,
        policy_year: i32::try_from(year).map_err(|_| StoreError::Corrupt("policy year".into()))?,
        policy_version: u32::try_from(version)
            .map_err(|_| StoreError::Corrupt("policy version".into()))?,
        as_of: crate::parse_date(&col::<String>(&row, "as_of")?)?,
        households_screened: to_u64(col(&row, "households_screened")?, "count")?,
        households_with_costs: to_u64(col(&row, "households_with_costs")?, "count")?,
        candidates: to_u64(col(&row, "candidates")?, "count")?,
        excluded_by_income: to_u64(col(&row, "excluded_by_income")?, "count")?,
        import_ids: imports
            .iter()
            .map(|s| parse_uuid(s))
            .collect::<Result<_>>()?,
        created_at: col(&row, "created_at")?,
    }))
}

#[tracing::instrument(name = "store.screening.insert_candidates", level = "info", skip_all, fields(fangpin.run_id = %run_id))]
pub async fn insert_candidates(
    conn: &mut Conn,
    run_id: Uuid,
    candidates: &[CandidateRecord],
) -> Result<()> {
    for batch in candidates.chunks(INSERT_BATCH) {
        let sql = multi_row_insert(
            conn,
            "INSERT INTO screening_candidates (run_id, household_id, relief_kind, village_code, household_type, \
             window_first, window_last, cost_fen, threshold_fen, over_by_fen, income_limit_fen, income_fen, reason) \
             VALUES ",
            13,
            batch.len(),
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in batch {
            q = q
                .bind(run_id.to_string())
                .bind(c.household_id.to_string())
                .bind(c.relief_kind.as_str())
                .bind(&c.village_code)
                .bind(c.household_type.as_str())
                .bind(&c.window_first)
                .bind(&c.window_last)
                .bind(c.cost.get())
                .bind(c.threshold.get())
                .bind(c.over_by.get())
                .bind(c.income_limit.get())
                .bind(c.income.map(Fen::get))
                .bind(&c.reason);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A page of a run's candidates after `after` (household id, relief kind),
/// in that order.
#[tracing::instrument(name = "store.screening.list_candidates", level = "info", skip_all, fields(fangpin.run_id = %run_id))]
pub async fn list_candidates(
    conn: &mut Conn,
    run_id: Uuid,
    after: Option<(Uuid, ReliefKind)>,
    limit: u32,
) -> Result<Vec<CandidateRecord>> {
    let (after_household, after_kind) = match after {
        Some((h, k)) => (h.to_string(), k.as_str().to_string()),
        None => (String::new(), String::new()),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CANDIDATE_COLUMNS} FROM screening_candidates \
         WHERE run_id = $1 AND (household_id > $2 OR (household_id = $2 AND relief_kind > $3)) \
         ORDER BY household_id, relief_kind LIMIT $4"
    )))
    .bind(run_id.to_string())
    .bind(after_household)
    .bind(after_kind)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode_candidate).collect()
}

const CANDIDATE_COLUMNS: &str = "household_id, relief_kind, village_code, household_type, window_first, \
    window_last, cost_fen, threshold_fen, over_by_fen, income_limit_fen, income_fen, reason, claim_id";

fn decode_candidate(r: &sqlx::any::AnyRow) -> Result<CandidateRecord> {
    let kind: String = col(r, "relief_kind")?;
    let household_type: String = col(r, "household_type")?;
    let claim: Option<String> = col(r, "claim_id")?;
    Ok(CandidateRecord {
        household_id: parse_uuid(&col::<String>(r, "household_id")?)?,
        relief_kind: ReliefKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("relief kind {kind}")))?,
        village_code: col(r, "village_code")?,
        household_type: HouseholdType::parse(&household_type)
            .ok_or_else(|| StoreError::Corrupt(format!("household type {household_type}")))?,
        window_first: col(r, "window_first")?,
        window_last: col(r, "window_last")?,
        cost: Fen::new(col(r, "cost_fen")?),
        threshold: Fen::new(col(r, "threshold_fen")?),
        over_by: Fen::new(col(r, "over_by_fen")?),
        income_limit: Fen::new(col(r, "income_limit_fen")?),
        income: col::<Option<i64>>(r, "income_fen")?.map(Fen::new),
        reason: col(r, "reason")?,
        claim_id: claim.as_deref().map(parse_uuid).transpose()?,
    })
}

/// One candidate of a run.
#[tracing::instrument(name = "store.screening.get_candidate", level = "info", skip_all, fields(fangpin.run_id = %run_id, fangpin.household_id = %household_id))]
pub async fn get_candidate(
    conn: &mut Conn,
    run_id: Uuid,
    household_id: Uuid,
    kind: ReliefKind,
) -> Result<Option<CandidateRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CANDIDATE_COLUMNS} FROM screening_candidates \
         WHERE run_id = $1 AND household_id = $2 AND relief_kind = $3"
    )))
    .bind(run_id.to_string())
    .bind(household_id.to_string())
    .bind(kind.as_str())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(decode_candidate).transpose()
}

#[tracing::instrument(name = "store.screening.set_candidate_claim", level = "info", skip_all, fields(fangpin.run_id = %run_id, fangpin.household_id = %household_id, fangpin.claim_id = %claim_id))]
pub async fn set_candidate_claim(
    conn: &mut Conn,
    run_id: Uuid,
    household_id: Uuid,
    kind: ReliefKind,
    claim_id: Uuid,
) -> Result<()> {
    sqlx::query(
        "UPDATE screening_candidates SET claim_id = $1 WHERE run_id = $2 AND household_id = $3 AND relief_kind = $4",
    )
    .bind(claim_id.to_string())
    .bind(run_id.to_string())
    .bind(household_id.to_string())
    .bind(kind.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// The claim that already covers a screening candidate: one made from
/// screening for this household and kind whose window overlaps
/// `first..=last` ("YYYY-MM", which sorts as text), or a claim of any other
/// channel for them, not rejected, whose event date falls in the window.
#[tracing::instrument(name = "store.screening.overlapping_screening_claim", level = "info", skip_all, fields(fangpin.household_id = %household_id))]
pub async fn overlapping_screening_claim(
    conn: &mut Conn,
    household_id: Uuid,
    kind: ReliefKind,
    first: &str,
    last: &str,
) -> Result<Option<Uuid>> {
    let row = sqlx::query(
        "SELECT claim_id FROM screening_claims WHERE household_id = $1 AND relief_kind = $2 \
         AND window_first <= $3 AND window_last >= $4 ORDER BY window_first LIMIT 1",
    )
    .bind(household_id.to_string())
    .bind(kind.as_str())
    .bind(last)
    .bind(first)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(r) = row {
        return Ok(Some(parse_uuid(&col::<String>(&r, "claim_id")?)?));
    }
    // A claim through any other channel (a village application, an
    // emergency) covers the candidate when its event falls in the window
    // and it is not rejected: the same costs must not be claimed twice.
    let row = sqlx::query(
        "SELECT claim_id FROM claims WHERE household_id = $1 AND relief_kind = $2 \
         AND state <> 'rejected' AND substr(event_date, 1, 7) >= $3 \
         AND substr(event_date, 1, 7) <= $4 ORDER BY claim_id LIMIT 1",
    )
    .bind(household_id.to_string())
    .bind(kind.as_str())
    .bind(first)
    .bind(last)
    .fetch_optional(conn)
    .await?;
    row.map(|r| parse_uuid(&col::<String>(&r, "claim_id")?))
        .transpose()
}

#[tracing::instrument(name = "store.screening.insert_screening_claim", level = "info", skip_all, fields(fangpin.claim_id = %claim_id, fangpin.run_id = %run_id))]
pub async fn insert_screening_claim(
    conn: &mut Conn,
    candidate: &CandidateRecord,
    claim_id: Uuid,
    run_id: Uuid,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO screening_claims (household_id, relief_kind, window_first, window_last, claim_id, run_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(candidate.household_id.to_string())
    .bind(candidate.relief_kind.as_str())
    .bind(&candidate.window_first)
    .bind(&candidate.window_last)
    .bind(claim_id.to_string())
    .bind(run_id.to_string())
    .execute(conn)
    .await?;
    Ok(())
}
