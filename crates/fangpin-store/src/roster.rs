//! Roster imports (migration 0023): what each file enrolled, found again by
//! its hash, and the batched inserts that enrol a roster's households.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::counties::{HouseholdRecord, PersonRecord};
use crate::{Conn, Result, StoreError, col, parse_uuid, timestamp};

/// Rows per multi-row INSERT: a household binds 12 values and a person 7.
/// Kept to a few hundred values per statement although SQLite takes 32,766
/// and PostgreSQL 65,535: sqlx binds SQLite's parameters by looking each
/// name up, a scan of the statement's parameters, so the cost per value
/// grows with the values per statement (a profile of 1,000-row statements
/// spent 79% in `sqlite3_bind_parameter_name`).
pub const HOUSEHOLDS_PER_INSERT: usize = 20;
pub const PERSONS_PER_INSERT: usize = 32;

/// Row errors kept per import; the counts by code cover all of them.
pub const ERRORS_KEPT: usize = 1_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterImportRecord {
    pub import_id: Uuid,
    pub county_code: String,
    pub policy_year: i32,
    pub sha256: String,
    pub file_name: String,
    /// csv_utf8, csv_gbk or xlsx.
    pub format: String,
    pub size_bytes: u64,
    pub rows_total: u64,
    pub households_enrolled: u64,
    pub persons_enrolled: u64,
    pub households_rejected: u64,
    pub rows_rejected: u64,
    /// (code, errors), every error counted.
    pub errors_by_reason: Vec<(String, u64)>,
    pub errors_total: u64,
    pub pool_size: u64,
    pub persons_insured: u64,
    pub imported_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterErrorRecord {
    pub line: u64,
    pub field: String,
    pub household_no: String,
    pub code: String,
    pub reason: String,
}

const COLUMNS: &str = "import_id, county_code, policy_year, sha256, file_name, format, size_bytes, \
    rows_total, households_enrolled, persons_enrolled, households_rejected, rows_rejected, \
    errors_by_reason, errors_total, pool_size, persons_insured, imported_at";

fn count(r: &sqlx::any::AnyRow, name: &str) -> Result<u64> {
    let n: i64 = col(r, name)?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{name} = {n}")))
}

fn decode(r: &sqlx::any::AnyRow) -> Result<RosterImportRecord> {
    let year: i64 = col(r, "policy_year")?;
    let reasons: String = col(r, "errors_by_reason")?;
    let reasons: std::collections::BTreeMap<String, u64> = serde_json::from_str(&reasons)
        .map_err(|e| StoreError::Corrupt(format!("errors_by_reason: {e}")))?;
    Ok(RosterImportRecord {
        import_id: parse_uuid(&col::<String>(r, "import_id")?)?,
        county_code: col(r, "county_code")?,
        policy_year: i32::try_from(year)
            .map_err(|_| StoreError::Corrupt(format!("policy year {year}")))?,
        sha256: col(r, "sha256")?,
        file_name: col(r, "file_name")?,
        format: col(r, "format")?,
        size_bytes: count(r, "size_bytes")?,
        rows_total: count(r, "rows_total")?,
        households_enrolled: count(r, "households_enrolled")?,
        persons_enrolled: count(r, "persons_enrolled")?,
        households_rejected: count(r, "households_rejected")?,
        rows_rejected: count(r, "rows_rejected")?,
        errors_by_reason: reasons.into_iter().collect(),
        errors_total: count(r, "errors_total")?,
        pool_size: count(r, "pool_size")?,
        persons_insured: count(r, "persons_insured")?,
        imported_at: col(r, "imported_at")?,
    })
}

/// The import of this very file for the county and year, if any.
pub async fn find_by_hash(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    sha256: &str,
) -> Result<Option<RosterImportRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM roster_imports WHERE county_code = $1 AND policy_year = $2 AND sha256 = $3"
    )))
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(sha256)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(decode)
    .transpose()
}

pub async fn get(conn: &mut Conn, import_id: Uuid) -> Result<Option<RosterImportRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM roster_imports WHERE import_id = $1"
    )))
    .bind(import_id.to_string())
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(decode)
    .transpose()
}

/// Records an import and its first [`ERRORS_KEPT`] errors.
pub async fn insert(
    conn: &mut Conn,
    import: &RosterImportRecord,
    errors: &[RosterErrorRecord],
    request_id: &str,
) -> Result<()> {
    let as_i64 = |n: u64| i64::try_from(n).expect("counts fit in BIGINT");
    let reasons: std::collections::BTreeMap<&str, u64> = import
        .errors_by_reason
        .iter()
        .map(|(code, n)| (code.as_str(), *n))
        .collect();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO roster_imports ({COLUMNS}, request_id) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
    )))
    .bind(import.import_id.to_string())
    .bind(&import.county_code)
    .bind(i64::from(import.policy_year))
    .bind(&import.sha256)
    .bind(&import.file_name)
    .bind(&import.format)
    .bind(as_i64(import.size_bytes))
    .bind(as_i64(import.rows_total))
    .bind(as_i64(import.households_enrolled))
    .bind(as_i64(import.persons_enrolled))
    .bind(as_i64(import.households_rejected))
    .bind(as_i64(import.rows_rejected))
    .bind(serde_json::to_string(&reasons).expect("a map of counts"))
    .bind(as_i64(import.errors_total))
    .bind(as_i64(import.pool_size))
    .bind(as_i64(import.persons_insured))
    .bind(&import.imported_at)
    .bind(request_id)
    .execute(&mut *conn)
    .await?;
    for (chunk_no, chunk) in errors
        .iter()
        .take(ERRORS_KEPT)
        .collect::<Vec<_>>()
        .chunks(200)
        .enumerate()
    {
        let sql = values_sql(
            "INSERT INTO roster_import_errors (import_id, seq, line, field, household_no, code, reason)",
            chunk.len(),
            7,
        );
        // Only placeholders are formatted in; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, e) in chunk.iter().enumerate() {
            q = q
                .bind(import.import_id.to_string())
                .bind(as_i64((chunk_no * 200 + i) as u64))
                .bind(as_i64(e.line))
                .bind(&e.field)
                .bind(&e.household_no)
                .bind(&e.code)
                .bind(&e.reason);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

pub async fn errors(
    conn: &mut Conn,
    import_id: Uuid,
    limit: usize,
) -> Result<Vec<RosterErrorRecord>> {
    let rows = sqlx::query(
        "SELECT line, field, household_no, code, reason FROM roster_import_errors \
         WHERE import_id = $1 ORDER BY seq LIMIT $2",
    )
    .bind(import_id.to_string())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RosterErrorRecord {
                line: count(r, "line")?,
                field: col(r, "field")?,
                household_no: col(r, "household_no")?,
                code: col(r, "code")?,
                reason: col(r, "reason")?,
            })
        })
        .collect()
}

/// The lookup hashes of everyone insured for the year, in any county: a
/// person is insured once a year, wherever.
pub async fn insured_hashes(conn: &mut Conn, policy_year: i32) -> Result<HashSet<[u8; 32]>> {
    let rows = sqlx::query("SELECT id_hash FROM persons WHERE policy_year = $1")
        .bind(i64::from(policy_year))
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            let hash: Vec<u8> = col(r, "id_hash")?;
            <[u8; 32]>::try_from(hash.as_slice())
                .map_err(|_| StoreError::Corrupt("id_hash is not 32 bytes".into()))
        })
        .collect()
}

/// Builds "INSERT ... VALUES ($1, ..), ($n, ..)" for `rows` rows of
/// `width` values.
fn values_sql(head: &str, rows: usize, width: usize) -> String {
    let mut sql = String::with_capacity(head.len() + rows * width * 6);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * width + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

/// Inserts many households and their persons with a few multi-row
/// statements: what one `insert_household` per household does, in far
/// fewer round trips. A person already insured this year fails the whole
/// batch with a unique violation.
pub async fn insert_households(
    conn: &mut Conn,
    households: &[(HouseholdRecord, Vec<PersonRecord>)],
    now: DateTime<Utc>,
) -> Result<()> {
    let at = timestamp(now);
    for chunk in households.chunks(HOUSEHOLDS_PER_INSERT) {
        let sql = values_sql(
            "INSERT INTO households (household_id, county_code, policy_year, village_code, household_type, \
             head_name, head_id_masked, head_id_sealed, bank_account_masked, bank_account_sealed, persons, created_at)",
            chunk.len(),
            12,
        );
        // Only placeholders are formatted in; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (h, _) in chunk {
            q = q
                .bind(h.household_id.to_string())
                .bind(&h.county_code)
                .bind(i64::from(h.policy_year))
                .bind(&h.village_code)
                .bind(h.household_type.as_str())
                .bind(&h.head_name)
                .bind(&h.head_id_masked)
                .bind(h.head_id_sealed.clone())
                .bind(&h.bank_account_masked)
                .bind(h.bank_account_sealed.clone())
                .bind(i64::from(h.persons))
                .bind(&at);
        }
        q.execute(&mut *conn).await?;
    }
    let persons: Vec<(&HouseholdRecord, &PersonRecord)> = households
        .iter()
        .flat_map(|(h, ps)| ps.iter().map(move |p| (h, p)))
        .collect();
    for chunk in persons.chunks(PERSONS_PER_INSERT) {
        let sql = values_sql(
            "INSERT INTO persons (policy_year, id_hash, id_sealed, household_id, county_code, name, relation)",
            chunk.len(),
            7,
        );
        // Only placeholders are formatted in; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (h, p) in chunk {
            q = q
                .bind(i64::from(h.policy_year))
                .bind(p.id_hash.to_vec())
                .bind(p.id_sealed.clone())
                .bind(h.household_id.to_string())
                .bind(&h.county_code)
                .bind(&p.name)
                .bind(&p.relation);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_numbered_row_by_row() {
        assert_eq!(
            values_sql("INSERT INTO t (a, b)", 2, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)"
        );
    }
}
