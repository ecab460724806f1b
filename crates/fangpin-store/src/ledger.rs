//! The fund-pool ledger: append-only entries and top-up flags.

use chrono::{DateTime, Utc};
use fangpin_domain::Fen;
use fangpin_domain::ledger::{Account, Balances, Posting, PostingKind};
use uuid::Uuid;

use crate::{Conn, Result, StoreError, col, parse_uuid, timestamp};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRecord {
    pub entry_id: Uuid,
    pub county_code: String,
    pub policy_year: i32,
    pub sequence: u64,
    pub posting: Posting,
    pub claim_id: Option<Uuid>,
    pub reference: String,
    pub posted_at: String,
}

/// Appends one posting to the county's ledger for the year. The caller holds
/// the county's write lock, so the next sequence number is ours alone; the
/// UNIQUE constraint on (county, year, sequence) would catch a broken lock.
#[allow(
    clippy::too_many_arguments,
    reason = "each argument is one column of the entry"
)]
pub async fn append_entry(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    posting: Posting,
    claim_id: Option<Uuid>,
    reference: &str,
    request_id: &str,
    now: DateTime<Utc>,
) -> Result<EntryRecord> {
    posting
        .verify()
        .map_err(|e| StoreError::Corrupt(format!("refusing to store a bad posting: {e}")))?;
    let row = sqlx::query(
        "SELECT COALESCE(MAX(sequence), 0) AS last FROM ledger_entries WHERE county_code = $1 AND policy_year = $2",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .fetch_one(&mut *conn)
    .await?;
    let last: i64 = col(&row, "last")?;
    let entry = EntryRecord {
        entry_id: Uuid::now_v7(),
        county_code: county_code.to_string(),
        policy_year,
        sequence: u64::try_from(last + 1)
            .map_err(|_| StoreError::Corrupt("negative ledger sequence".into()))?,
        posting,
        claim_id,
        reference: reference.to_string(),
        posted_at: timestamp(now),
    };
    sqlx::query(
        "INSERT INTO ledger_entries (entry_id, county_code, policy_year, sequence, kind, debit_account, \
         credit_account, amount_fen, claim_id, reference, request_id, posted_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(entry.entry_id.to_string())
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(last + 1)
    .bind(posting.kind.as_str())
    .bind(posting.debit.as_str())
    .bind(posting.credit.as_str())
    .bind(posting.amount.get())
    .bind(claim_id.map(|c| c.to_string()))
    .bind(reference)
    .bind(request_id)
    .bind(&entry.posted_at)
    .execute(&mut *conn)
    .await?;
    Ok(entry)
}

/// Per-account totals of one ledger, checked to balance before they are returned.
pub async fn balances(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<(Balances, u64)> {
    // SUM over BIGINT is NUMERIC in PostgreSQL; the cast keeps one decoder for both.
    let rows = sqlx::query(
        "SELECT account, CAST(SUM(debit_fen) AS BIGINT) AS debits, CAST(SUM(credit_fen) AS BIGINT) AS credits, \
         CAST(SUM(n) AS BIGINT) AS n FROM ( \
           SELECT debit_account AS account, amount_fen AS debit_fen, 0 AS credit_fen, 1 AS n FROM ledger_entries \
             WHERE county_code = $1 AND policy_year = $2 \
           UNION ALL \
           SELECT credit_account AS account, 0 AS debit_fen, amount_fen AS credit_fen, 0 AS n FROM ledger_entries \
             WHERE county_code = $1 AND policy_year = $2 \
         ) sides GROUP BY account",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .fetch_all(conn)
    .await?;
    let mut totals = Vec::with_capacity(rows.len());
    let mut entries = 0i64;
    for row in &rows {
        let name: String = col(row, "account")?;
        let account = Account::parse(&name)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown account {name:?}")))?;
        totals.push((
            account,
            Fen::new(col(row, "debits")?),
            Fen::new(col(row, "credits")?),
        ));
        entries += col::<i64>(row, "n")?;
    }
    let balances = Balances::from_totals(totals).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let entries =
        u64::try_from(entries).map_err(|_| StoreError::Corrupt("negative entry count".into()))?;
    Ok((balances, entries))
}

/// Entries in sequence order after `after_sequence`.
pub async fn list_entries(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    after_sequence: u64,
    limit: u32,
) -> Result<Vec<EntryRecord>> {
    let rows = sqlx::query(
        "SELECT entry_id, county_code, policy_year, sequence, kind, debit_account, credit_account, amount_fen, \
         claim_id, reference, posted_at FROM ledger_entries \
         WHERE county_code = $1 AND policy_year = $2 AND sequence > $3 ORDER BY sequence LIMIT $4",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(i64::try_from(after_sequence).unwrap_or(i64::MAX))
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode_entry).collect()
}

fn decode_entry(row: &sqlx::any::AnyRow) -> Result<EntryRecord> {
    let kind: String = col(row, "kind")?;
    let debit: String = col(row, "debit_account")?;
    let credit: String = col(row, "credit_account")?;
    let bad = |what: &str, v: &str| StoreError::Corrupt(format!("unknown {what} {v:?}"));
    let posting = Posting {
        kind: PostingKind::parse(&kind).ok_or_else(|| bad("posting kind", &kind))?,
        debit: Account::parse(&debit).ok_or_else(|| bad("account", &debit))?,
        credit: Account::parse(&credit).ok_or_else(|| bad("account", &credit))?,
        amount: Fen::new(col(row, "amount_fen")?),
    };
    // Checked after reading as well as before writing.
    posting
        .verify()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let year: i64 = col(row, "policy_year")?;
    let sequence: i64 = col(row, "sequence")?;
    Ok(EntryRecord {
        entry_id: parse_uuid(&col::<String>(row, "entry_id")?)?,
        county_code: col(row, "county_code")?,
        policy_year: i32::try_from(year).map_err(|_| StoreError::Corrupt("bad year".into()))?,
        sequence: u64::try_from(sequence)
            .map_err(|_| StoreError::Corrupt("bad sequence".into()))?,
        posting,
        claim_id: col::<Option<String>>(row, "claim_id")?
            .as_deref()
            .map(parse_uuid)
            .transpose()?,
        reference: col(row, "reference")?,
        posted_at: col(row, "posted_at")?,
    })
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopUpFlagRecord {
    pub flag_id: Uuid,
    pub county_code: String,
    pub policy_year: i32,
    pub claim_id: Uuid,
    pub shortfall: Fen,
    pub raised_at: String,
    pub cleared_at: Option<String>,
    pub cleared_by_entry: Option<Uuid>,
}

pub async fn raise_flag(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    claim_id: Uuid,
    shortfall: Fen,
    now: DateTime<Utc>,
) -> Result<TopUpFlagRecord> {
    assert!(
        shortfall > Fen::ZERO,
        "a top-up flag needs a positive shortfall"
    );
    let flag = TopUpFlagRecord {
        flag_id: Uuid::now_v7(),
        county_code: county_code.to_string(),
        policy_year,
        claim_id,
        shortfall,
        raised_at: timestamp(now),
        cleared_at: None,
        cleared_by_entry: None,
    };
    sqlx::query(
        "INSERT INTO top_up_flags (flag_id, county_code, policy_year, claim_id, shortfall_fen, raised_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(flag.flag_id.to_string())
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(claim_id.to_string())
    .bind(shortfall.get())
    .bind(&flag.raised_at)
    .execute(conn)
    .await?;
    Ok(flag)
}

/// Maximum flags listed; each is one payout that found the pool empty.
pub const MAX_FLAGS: i64 = 10_000;

pub async fn list_flags(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    include_cleared: bool,
) -> Result<Vec<TopUpFlagRecord>> {
    let rows = sqlx::query(
        "SELECT flag_id, county_code, policy_year, claim_id, shortfall_fen, raised_at, cleared_at, cleared_by_entry \
         FROM top_up_flags WHERE county_code = $1 AND policy_year = $2 AND ($3 = 1 OR cleared_at IS NULL) \
         ORDER BY flag_id LIMIT $4",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(i64::from(include_cleared))
    .bind(MAX_FLAGS)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let year: i64 = col(row, "policy_year")?;
            Ok(TopUpFlagRecord {
                flag_id: parse_uuid(&col::<String>(row, "flag_id")?)?,
                county_code: col(row, "county_code")?,
                policy_year: i32::try_from(year)
                    .map_err(|_| StoreError::Corrupt("bad year".into()))?,
                claim_id: parse_uuid(&col::<String>(row, "claim_id")?)?,
                shortfall: Fen::new(col(row, "shortfall_fen")?),
                raised_at: col(row, "raised_at")?,
                cleared_at: col(row, "cleared_at")?,
                cleared_by_entry: col::<Option<String>>(row, "cleared_by_entry")?
                    .as_deref()
                    .map(parse_uuid)
                    .transpose()?,
            })
        })
        .collect()
}

/// Clears every open flag of the ledger, naming the top-up entry that did it.
pub async fn clear_flags(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    entry_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<TopUpFlagRecord>> {
    let open = list_flags(&mut *conn, county_code, policy_year, false).await?;
    let at = timestamp(now);
    sqlx::query(
        "UPDATE top_up_flags SET cleared_at = $1, cleared_by_entry = $2 \
         WHERE county_code = $3 AND policy_year = $4 AND cleared_at IS NULL",
    )
    .bind(&at)
    .bind(entry_id.to_string())
    .bind(county_code)
    .bind(i64::from(policy_year))
    .execute(conn)
    .await?;
    Ok(open
        .into_iter()
        .map(|f| TopUpFlagRecord {
            cleared_at: Some(at.clone()),
            cleared_by_entry: Some(entry_id),
            ..f
        })
        .collect())
}
