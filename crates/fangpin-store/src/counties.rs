//! Counties, their versioned policies, and the enrolled households.

use chrono::{DateTime, Utc};
use fangpin_domain::policy::{HouseholdType, Policy};
use uuid::Uuid;

use crate::{Conn, Result, StoreError, col, parse_uuid, timestamp};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountyRecord {
    pub county_code: String,
    pub name: String,
    pub rural_population: u64,
    pub insurer: String,
}

#[tracing::instrument(name = "store.counties.insert_county", level = "info", skip_all, fields(fangpin.county_code = %county.county_code))]
pub async fn insert_county(
    conn: &mut Conn,
    county: &CountyRecord,
    now: DateTime<Utc>,
) -> Result<()> {
    let population = i64::try_from(county.rural_population)
        .map_err(|_| StoreError::Corrupt("rural population beyond i64".into()))?;
    sqlx::query(
        "INSERT INTO counties (county_code, name, rural_population, insurer, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&county.county_code)
    .bind(&county.name)
    .bind(population)
    .bind(&county.insurer)
    .bind(timestamp(now))
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store.counties.get_county", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn get_county(conn: &mut Conn, county_code: &str) -> Result<Option<CountyRecord>> {
    let row = sqlx::query(
        "SELECT county_code, name, rural_population, insurer FROM counties WHERE county_code = $1",
    )
    .bind(county_code)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        let population: i64 = col(&row, "rural_population")?;
        Ok(CountyRecord {
            county_code: col(&row, "county_code")?,
            name: col(&row, "name")?,
            rural_population: u64::try_from(population)
                .map_err(|_| StoreError::Corrupt("negative rural population".into()))?,
            insurer: col(&row, "insurer")?,
        })
    })
    .transpose()
}

/// The county office printed on village notices (migration 0022).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfficeRecord {
    pub county_code: String,
    pub office_name: String,
    pub address: String,
    pub phone: String,
    pub updated_at: String,
}

#[tracing::instrument(name = "store.counties.put_office", level = "info", skip_all, fields(fangpin.county_code = %office.county_code))]
pub async fn put_office(conn: &mut Conn, office: &OfficeRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO county_offices (county_code, office_name, address, phone, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (county_code) DO UPDATE SET \
         office_name = excluded.office_name, address = excluded.address, phone = excluded.phone, \
         updated_at = excluded.updated_at",
    )
    .bind(&office.county_code)
    .bind(&office.office_name)
    .bind(&office.address)
    .bind(&office.phone)
    .bind(&office.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store.counties.get_office", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn get_office(conn: &mut Conn, county_code: &str) -> Result<Option<OfficeRecord>> {
    let row = sqlx::query(
        "SELECT county_code, office_name, address, phone, updated_at FROM county_offices \
         WHERE county_code = $1",
    )
    .bind(county_code)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(OfficeRecord {
            county_code: col(&row, "county_code")?,
            office_name: col(&row, "office_name")?,
            address: col(&row, "address")?,
            phone: col(&row, "phone")?,
            updated_at: col(&row, "updated_at")?,
        })
    })
    .transpose()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyRecord {
    pub version: u32,
    pub frozen: bool,
    pub policy: Policy,
}

fn decode_policy(row: &sqlx::any::AnyRow) -> Result<PolicyRecord> {
    let version: i64 = col(row, "version")?;
    let frozen: i64 = col(row, "frozen")?;
    let body: String = col(row, "body")?;
    let policy: Policy = serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt(format!("stored policy does not parse: {e}")))?;
    Ok(PolicyRecord {
        version: u32::try_from(version)
            .map_err(|_| StoreError::Corrupt("bad policy version".into()))?,
        frozen: frozen != 0,
        policy,
    })
}

/// The given version, or the latest when `version` is None.
#[tracing::instrument(name = "store.counties.get_policy", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = year))]
pub async fn get_policy(
    conn: &mut Conn,
    county_code: &str,
    year: i32,
    version: Option<u32>,
) -> Result<Option<PolicyRecord>> {
    let row = match version {
        Some(v) => {
            sqlx::query(
                "SELECT version, frozen, body FROM policies WHERE county_code = $1 AND policy_year = $2 AND version = $3",
            )
            .bind(county_code)
            .bind(i64::from(year))
            .bind(i64::from(v))
            .fetch_optional(conn)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT version, frozen, body FROM policies WHERE county_code = $1 AND policy_year = $2 \
                 ORDER BY version DESC LIMIT 1",
            )
            .bind(county_code)
            .bind(i64::from(year))
            .fetch_optional(conn)
            .await?
        }
    };
    row.as_ref().map(decode_policy).transpose()
}

#[tracing::instrument(name = "store.counties.insert_policy", level = "info", skip_all, fields(fangpin.county_code = %policy.county, fangpin.policy_year = policy.policy_year))]
pub async fn insert_policy(
    conn: &mut Conn,
    version: u32,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<()> {
    let body = serde_json::to_string(policy)
        .map_err(|e| StoreError::Corrupt(format!("policy does not serialize: {e}")))?;
    sqlx::query(
        "INSERT INTO policies (county_code, policy_year, version, body, frozen, created_at) VALUES ($1, $2, $3, $4, 0, $5)",
    )
    .bind(policy.county.as_str())
    .bind(i64::from(policy.policy_year))
    .bind(i64::from(version))
    .bind(body)
    .bind(timestamp(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces an unfrozen version. Returns false when the version is frozen or missing.
#[tracing::instrument(name = "store.counties.replace_policy", level = "info", skip_all, fields(fangpin.county_code = %policy.county, fangpin.policy_year = policy.policy_year))]
pub async fn replace_policy(conn: &mut Conn, version: u32, policy: &Policy) -> Result<bool> {
    let body = serde_json::to_string(policy)
        .map_err(|e| StoreError::Corrupt(format!("policy does not serialize: {e}")))?;
    let done = sqlx::query(
        "UPDATE policies SET body = $1 WHERE county_code = $2 AND policy_year = $3 AND version = $4 AND frozen = 0",
    )
    .bind(body)
    .bind(policy.county.as_str())
    .bind(i64::from(policy.policy_year))
    .bind(i64::from(version))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a version used by a claim; it can never change afterwards.
#[tracing::instrument(name = "store.counties.freeze_policy", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = year))]
pub async fn freeze_policy(
    conn: &mut Conn,
    county_code: &str,
    year: i32,
    version: u32,
) -> Result<()> {
    sqlx::query("UPDATE policies SET frozen = 1 WHERE county_code = $1 AND policy_year = $2 AND version = $3")
        .bind(county_code)
        .bind(i64::from(year))
        .bind(i64::from(version))
        .execute(conn)
        .await?;
    Ok(())
}

/// A person as stored: the ID number only sealed and as its keyed lookup
/// hash (fangpin_domain::personal_data); the store never sees the digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonRecord {
    /// HMAC-SHA256 of the ID number under the lookup key: unique per year.
    pub id_hash: [u8; 32],
    /// Sealed for `persons.id_number`, row (policy year, household id).
    pub id_sealed: Vec<u8>,
    pub name: String,
    pub relation: String,
}

/// A household as stored. The head's ID number and the bank account are
/// sealed; their masked forms are kept beside them for display, so listing
/// a household never needs the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HouseholdRecord {
    pub household_id: Uuid,
    pub county_code: String,
    pub policy_year: i32,
    pub village_code: String,
    pub household_type: HouseholdType,
    pub head_name: String,
    pub head_id_masked: String,
    pub head_id_sealed: Vec<u8>,
    pub bank_account_masked: String,
    pub bank_account_sealed: Vec<u8>,
    pub persons: u32,
}

/// Inserts the household and its persons (the head first). A person already
/// insured this policy year (the same lookup hash) fails with a unique
/// violation.
#[tracing::instrument(name = "store.counties.insert_household", level = "info", skip_all, fields(fangpin.household_id = %household.household_id, fangpin.county_code = %household.county_code, fangpin.policy_year = household.policy_year))]
pub async fn insert_household(
    conn: &mut Conn,
    household: &HouseholdRecord,
    persons: &[PersonRecord],
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO households (household_id, county_code, policy_year, village_code, household_type, head_name, \
         head_id_masked, head_id_sealed, bank_account_masked, bank_account_sealed, persons, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(household.household_id.to_string())
    .bind(&household.county_code)
    .bind(i64::from(household.policy_year))
    .bind(&household.village_code)
    .bind(household.household_type.as_str())
    .bind(&household.head_name)
    .bind(&household.head_id_masked)
    .bind(household.head_id_sealed.clone())
    .bind(&household.bank_account_masked)
    .bind(household.bank_account_sealed.clone())
    .bind(i64::from(household.persons))
    .bind(timestamp(now))
    .execute(&mut *conn)
    .await?;
    for person in persons {
        sqlx::query(
            "INSERT INTO persons (policy_year, id_hash, id_sealed, household_id, county_code, name, relation) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(i64::from(household.policy_year))
        .bind(person.id_hash.to_vec())
        .bind(person.id_sealed.clone())
        .bind(household.household_id.to_string())
        .bind(&household.county_code)
        .bind(&person.name)
        .bind(&person.relation)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[tracing::instrument(name = "store.counties.get_household", level = "info", skip_all, fields(fangpin.household_id = %household_id))]
pub async fn get_household(conn: &mut Conn, household_id: Uuid) -> Result<Option<HouseholdRecord>> {
    let row = sqlx::query(
        "SELECT household_id, county_code, policy_year, village_code, household_type, head_name, head_id_masked, \
         head_id_sealed, bank_account_masked, bank_account_sealed, persons FROM households WHERE household_id = $1",
    )
    .bind(household_id.to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(decode_household).transpose()
}

pub(crate) fn decode_household(row: &sqlx::any::AnyRow) -> Result<HouseholdRecord> {
    let household_type: String = col(row, "household_type")?;
    let year: i64 = col(row, "policy_year")?;
    let persons: i64 = col(row, "persons")?;
    Ok(HouseholdRecord {
        household_id: parse_uuid(&col::<String>(row, "household_id")?)?,
        county_code: col(row, "county_code")?,
        policy_year: i32::try_from(year)
            .map_err(|_| StoreError::Corrupt("bad policy year".into()))?,
        village_code: col(row, "village_code")?,
        household_type: HouseholdType::parse(&household_type).ok_or_else(|| {
            StoreError::Corrupt(format!("unknown household type {household_type:?}"))
        })?,
        head_name: col(row, "head_name")?,
        head_id_masked: col(row, "head_id_masked")?,
        head_id_sealed: col(row, "head_id_sealed")?,
        bank_account_masked: col(row, "bank_account_masked")?,
        bank_account_sealed: col(row, "bank_account_sealed")?,
        persons: u32::try_from(persons)
            .map_err(|_| StoreError::Corrupt("bad person count".into()))?,
    })
}

/// Persons insured in a county for a policy year.
#[tracing::instrument(name = "store.counties.count_persons", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = year))]
pub async fn count_persons(conn: &mut Conn, county_code: &str, year: i32) -> Result<u64> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM persons WHERE county_code = $1 AND policy_year = $2",
    )
    .bind(county_code)
    .bind(i64::from(year))
    .fetch_one(conn)
    .await?;
    let n: i64 = col(&row, "n")?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt("negative count".into()))
}

/// One correction of a household's bank account, masked forms only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountCorrection {
    pub seq: u32,
    pub old_account_masked: String,
    pub new_account_masked: String,
    pub corrected_by: String,
    pub reason: String,
    pub at: String,
}

/// Replaces a household's bank account (sealed and masked by the caller)
/// and records the correction; returns its sequence number.
#[tracing::instrument(name = "store.counties.correct_bank_account", level = "info", skip_all, fields(fangpin.household_id = %household_id))]
#[allow(clippy::too_many_arguments)]
pub async fn correct_bank_account(
    conn: &mut Conn,
    household_id: Uuid,
    old_masked: &str,
    new_masked: &str,
    new_sealed: &[u8],
    corrected_by: &str,
    reason: &str,
    request_id: &str,
    at: &str,
) -> Result<u32> {
    let done = sqlx::query(
        "UPDATE households SET bank_account_masked = $1, bank_account_sealed = $2 WHERE household_id = $3",
    )
    .bind(new_masked)
    .bind(new_sealed.to_vec())
    .bind(household_id.to_string())
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt(format!(
            "household {household_id} vanished during a correction"
        )));
    }
    let seq: i64 = col(
        &sqlx::query(
            "SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM bank_account_corrections WHERE household_id = $1",
        )
        .bind(household_id.to_string())
        .fetch_one(&mut *conn)
        .await?,
        "seq",
    )?;
    sqlx::query(
        "INSERT INTO bank_account_corrections (household_id, seq, old_account_masked, new_account_masked, \
         corrected_by, reason, request_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(household_id.to_string())
    .bind(seq)
    .bind(old_masked)
    .bind(new_masked)
    .bind(corrected_by)
    .bind(reason)
    .bind(request_id)
    .bind(at)
    .execute(conn)
    .await?;
    u32::try_from(seq).map_err(|_| StoreError::Corrupt("negative correction seq".into()))
}

/// A household's account corrections, oldest first.
#[tracing::instrument(name = "store.counties.list_account_corrections", level = "info", skip_all, fields(fangpin.household_id = %household_id))]
pub async fn list_account_corrections(
    conn: &mut Conn,
    household_id: Uuid,
) -> Result<Vec<AccountCorrection>> {
    let rows = sqlx::query(
        "SELECT seq, old_account_masked, new_account_masked, corrected_by, reason, at \
         FROM bank_account_corrections WHERE household_id = $1 ORDER BY seq LIMIT 1000",
    )
    .bind(household_id.to_string())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(AccountCorrection {
                seq: u32::try_from(col::<i64>(r, "seq")?)
                    .map_err(|_| StoreError::Corrupt("negative correction seq".into()))?,
                old_account_masked: col(r, "old_account_masked")?,
                new_account_masked: col(r, "new_account_masked")?,
                corrected_by: col(r, "corrected_by")?,
                reason: col(r, "reason")?,
                at: col(r, "at")?,
            })
        })
        .collect()
}

/// The most counties one server keeps; far more than a prefecture has, and
/// the bound of every all-counties scan (the deadline gauges).
pub const MAX_COUNTIES: i64 = 1_000;

/// Every registered county's code, in code order.
#[tracing::instrument(name = "store.counties.county_codes", level = "info", skip_all)]
pub async fn county_codes(conn: &mut Conn) -> Result<Vec<String>> {
    sqlx::query("SELECT county_code FROM counties ORDER BY county_code LIMIT $1")
        .bind(MAX_COUNTIES)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| col(r, "county_code"))
        .collect()
}
