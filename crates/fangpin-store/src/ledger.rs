//! The fund-pool ledger: append-only entries and top-up flags.

use chrono::{DateTime, Utc};
use fangpin_domain::Fen;
use fangpin_domain::ledger::{Account, Balances, Posting, PostingKind};
use fangpin_domain::policy::ReliefKind;
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
    /// Set on a reversal: the entry it undoes.
    pub reverses: Option<Uuid>,
    pub reference: String,
    pub posted_at: String,
}

/// An entry to append.
#[derive(Clone, Debug)]
pub struct NewEntry<'a> {
    pub county_code: &'a str,
    pub policy_year: i32,
    pub posting: Posting,
    pub claim: Option<ClaimKeys<'a>>,
    pub reverses: Option<Uuid>,
    pub reference: &'a str,
    pub request_id: &'a str,
    pub now: DateTime<Utc>,
}

/// The claim an entry pays, with the keys the reconciliation groups it by.
#[derive(Clone, Copy, Debug)]
pub struct ClaimKeys<'a> {
    pub claim_id: Uuid,
    pub relief_kind: ReliefKind,
    /// The first nine digits of the village code.
    pub township_code: &'a str,
    /// Which payout of the claim this is: 0, then one more after each bank
    /// return (the natural key is claim, kind and attempt).
    pub payout_attempt: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YearState {
    Open,
    Closed,
}

impl YearState {
    pub fn as_str(self) -> &'static str {
        match self {
            YearState::Open => "open",
            YearState::Closed => "closed",
        }
    }
}

#[tracing::instrument(name = "store.ledger.year_state", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn year_state(conn: &mut Conn, county_code: &str, policy_year: i32) -> Result<YearState> {
    let row =
        sqlx::query("SELECT state FROM ledger_years WHERE county_code = $1 AND policy_year = $2")
            .bind(county_code)
            .bind(i64::from(policy_year))
            .fetch_optional(conn)
            .await?;
    match row
        .map(|r| col::<String>(&r, "state"))
        .transpose()?
        .as_deref()
    {
        None | Some("open") => Ok(YearState::Open),
        Some("closed") => Ok(YearState::Closed),
        Some(other) => Err(StoreError::Corrupt(format!("unknown year state {other:?}"))),
    }
}

/// Whether a county's policy year exists: it has a policy, or ledger
/// activity (a year that only received a rollover has entries but may have
/// no policy yet).
#[tracing::instrument(name = "store.ledger.year_exists", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn year_exists(conn: &mut Conn, county_code: &str, policy_year: i32) -> Result<bool> {
    for query in [
        "SELECT 1 AS one FROM policies WHERE county_code = $1 AND policy_year = $2 LIMIT 1",
        "SELECT 1 AS one FROM ledger_entries WHERE county_code = $1 AND policy_year = $2 LIMIT 1",
    ] {
        let found = sqlx::query(query)
            .bind(county_code)
            .bind(i64::from(policy_year))
            .fetch_optional(&mut *conn)
            .await?;
        if found.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[tracing::instrument(name = "store.ledger.set_year_state", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn set_year_state(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    state: YearState,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ledger_years (county_code, policy_year, state) VALUES ($1, $2, $3) \
         ON CONFLICT (county_code, policy_year) DO UPDATE SET state = excluded.state",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(state.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YearEventRecord {
    pub event: String,
    pub actor: String,
    pub reason: String,
    pub at: String,
}

#[tracing::instrument(name = "store.ledger.append_year_event", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn append_year_event(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    event: &YearEventRecord,
    request_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO year_events (county_code, policy_year, seq, event, actor, reason, request_id, at) \
         SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6, $7 FROM year_events \
         WHERE county_code = $1 AND policy_year = $2",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(&event.event)
    .bind(&event.actor)
    .bind(&event.reason)
    .bind(request_id)
    .bind(&event.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A year is closed and reopened a handful of times at most.
pub const MAX_YEAR_EVENTS: i64 = 1_000;

#[tracing::instrument(name = "store.ledger.list_year_events", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn list_year_events(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<Vec<YearEventRecord>> {
    let rows = sqlx::query(
        "SELECT event, actor, reason, at FROM year_events WHERE county_code = $1 AND policy_year = $2 \
         ORDER BY seq LIMIT $3",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(MAX_YEAR_EVENTS)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(YearEventRecord {
                event: col(r, "event")?,
                actor: col(r, "actor")?,
                reason: col(r, "reason")?,
                at: col(r, "at")?,
            })
        })
        .collect()
}

/// Appends one posting to the county's ledger for the year and adds it to the
/// cached account totals. The caller holds the county's write lock, so the next
/// sequence number is ours alone; the UNIQUE constraint on (county, year,
/// sequence) would catch a broken lock. A closed year takes no postings.
#[tracing::instrument(name = "store.ledger.append_entry", level = "info", skip_all, fields(fangpin.county_code = %new.county_code, fangpin.policy_year = new.policy_year))]
pub async fn append_entry(conn: &mut Conn, new: NewEntry<'_>) -> Result<EntryRecord> {
    let posting = new.posting;
    posting
        .verify()
        .map_err(|e| StoreError::Corrupt(format!("refusing to store a bad posting: {e}")))?;
    assert_eq!(
        posting.reversal,
        new.reverses.is_some(),
        "a reversal names what it reverses"
    );
    if year_state(&mut *conn, new.county_code, new.policy_year).await? == YearState::Closed {
        return Err(StoreError::YearClosed {
            county_code: new.county_code.to_string(),
            policy_year: new.policy_year,
        });
    }
    let row = sqlx::query(
        "SELECT COALESCE(MAX(sequence), 0) AS last FROM ledger_entries WHERE county_code = $1 AND policy_year = $2",
    )
    .bind(new.county_code)
    .bind(i64::from(new.policy_year))
    .fetch_one(&mut *conn)
    .await?;
    let last: i64 = col(&row, "last")?;
    let entry = EntryRecord {
        entry_id: Uuid::now_v7(),
        county_code: new.county_code.to_string(),
        policy_year: new.policy_year,
        sequence: u64::try_from(last + 1)
            .map_err(|_| StoreError::Corrupt("negative ledger sequence".into()))?,
        posting,
        claim_id: new.claim.map(|c| c.claim_id),
        reverses: new.reverses,
        reference: new.reference.to_string(),
        posted_at: timestamp(new.now),
    };
    sqlx::query(
        "INSERT INTO ledger_entries (entry_id, county_code, policy_year, sequence, kind, debit_account, \
         credit_account, amount_fen, claim_id, reference, request_id, posted_at, reverses_entry_id, \
         relief_kind, township_code, payout_attempt) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(entry.entry_id.to_string())
    .bind(new.county_code)
    .bind(i64::from(new.policy_year))
    .bind(last + 1)
    .bind(posting.kind.as_str())
    .bind(posting.debit.as_str())
    .bind(posting.credit.as_str())
    .bind(posting.amount.get())
    .bind(new.claim.map(|c| c.claim_id.to_string()))
    .bind(new.reference)
    .bind(new.request_id)
    .bind(&entry.posted_at)
    .bind(new.reverses.map(|r| r.to_string()))
    .bind(new.claim.map(|c| c.relief_kind.as_str()))
    .bind(new.claim.map(|c| c.township_code.to_string()))
    .bind(new.claim.map_or(0, |c| i64::from(c.payout_attempt)))
    .execute(&mut *conn)
    .await?;
    for (account, debit, credit) in [
        (posting.debit, posting.amount, Fen::ZERO),
        (posting.credit, Fen::ZERO, posting.amount),
    ] {
        sqlx::query(
            "INSERT INTO account_balances (county_code, policy_year, account, debits_fen, credits_fen) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (county_code, policy_year, account) DO UPDATE SET \
             debits_fen = account_balances.debits_fen + excluded.debits_fen, \
             credits_fen = account_balances.credits_fen + excluded.credits_fen",
        )
        .bind(new.county_code)
        .bind(i64::from(new.policy_year))
        .bind(account.as_str())
        .bind(debit.get())
        .bind(credit.get())
        .execute(&mut *conn)
        .await?;
    }
    Ok(entry)
}

/// Per-account totals of one ledger from the cached balances, checked to
/// balance, with the number of entries (sequences run 1..=n without gaps).
#[tracing::instrument(name = "store.ledger.balances", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn balances(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<(Balances, u64)> {
    let rows = sqlx::query(
        "SELECT account, debits_fen AS debits, credits_fen AS credits FROM account_balances \
         WHERE county_code = $1 AND policy_year = $2",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .fetch_all(&mut *conn)
    .await?;
    let balances = decode_totals(&rows)?;
    let row = sqlx::query(
        "SELECT COALESCE(MAX(sequence), 0) AS n FROM ledger_entries WHERE county_code = $1 AND policy_year = $2",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .fetch_one(conn)
    .await?;
    let entries = u64::try_from(col::<i64>(&row, "n")?)
        .map_err(|_| StoreError::Corrupt("negative entry count".into()))?;
    Ok((balances, entries))
}

fn decode_totals(rows: &[sqlx::any::AnyRow]) -> Result<Balances> {
    let mut totals = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = col(row, "account")?;
        let account = Account::parse(&name)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown account {name:?}")))?;
        totals.push((
            account,
            Fen::new(col(row, "debits")?),
            Fen::new(col(row, "credits")?),
        ));
    }
    Balances::from_totals(totals).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Per-account totals summed from the entries themselves, optionally only those
/// posted before `before` (an RFC 3339 UTC timestamp): the authority the cached
/// balances are checked against, and the balance as of a past moment.
#[tracing::instrument(name = "store.ledger.balances_from_entries", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn balances_from_entries(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    before: Option<&str>,
) -> Result<(Balances, u64)> {
    // One pass over the year grouped by account pair (a handful of groups),
    // then each pair split into its debit and credit side. SUM over BIGINT is
    // NUMERIC in PostgreSQL; the casts keep one decoder for both databases.
    let rows = sqlx::query(
        "WITH pairs AS ( \
           SELECT debit_account, credit_account, SUM(amount_fen) AS amount, COUNT(*) AS n FROM ledger_entries \
           WHERE county_code = $1 AND policy_year = $2 AND ($3 = '' OR posted_at < $3) \
           GROUP BY debit_account, credit_account) \
         SELECT account, CAST(SUM(debit_fen) AS BIGINT) AS debits, CAST(SUM(credit_fen) AS BIGINT) AS credits, \
         CAST(SUM(n) AS BIGINT) AS n FROM ( \
           SELECT debit_account AS account, amount AS debit_fen, 0 AS credit_fen, n FROM pairs \
           UNION ALL \
           SELECT credit_account AS account, 0 AS debit_fen, amount AS credit_fen, 0 AS n FROM pairs \
         ) sides GROUP BY account",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(before.unwrap_or(""))
    .fetch_all(conn)
    .await?;
    let balances = decode_totals(&rows)?;
    let mut entries = 0i64;
    for row in &rows {
        entries += col::<i64>(row, "n")?;
    }
    let entries =
        u64::try_from(entries).map_err(|_| StoreError::Corrupt("negative entry count".into()))?;
    Ok((balances, entries))
}

/// Entries in sequence order after `after_sequence`.
#[tracing::instrument(name = "store.ledger.list_entries", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn list_entries(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    after_sequence: u64,
    limit: u32,
) -> Result<Vec<EntryRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM ledger_entries \
         WHERE county_code = $1 AND policy_year = $2 AND sequence > $3 ORDER BY sequence LIMIT $4"
    )))
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
    let reverses = col::<Option<String>>(row, "reverses_entry_id")?
        .as_deref()
        .map(parse_uuid)
        .transpose()?;
    let debit: String = col(row, "debit_account")?;
    let credit: String = col(row, "credit_account")?;
    let bad = |what: &str, v: &str| StoreError::Corrupt(format!("unknown {what} {v:?}"));
    let posting = Posting {
        kind: PostingKind::parse(&kind).ok_or_else(|| bad("posting kind", &kind))?,
        debit: Account::parse(&debit).ok_or_else(|| bad("account", &debit))?,
        credit: Account::parse(&credit).ok_or_else(|| bad("account", &credit))?,
        amount: Fen::new(col(row, "amount_fen")?),
        reversal: reverses.is_some(),
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
        reverses,
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

#[tracing::instrument(name = "store.ledger.raise_flag", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year, fangpin.claim_id = %claim_id))]
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

#[tracing::instrument(name = "store.ledger.list_flags", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
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

const ENTRY_COLUMNS: &str = "entry_id, county_code, policy_year, sequence, kind, debit_account, credit_account, \
    amount_fen, claim_id, reference, posted_at, reverses_entry_id";

/// Entries of the given kinds that are neither reversals nor reversed: what a
/// reopen must undo.
#[tracing::instrument(name = "store.ledger.unreversed_entries", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn unreversed_entries(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    kinds: &[PostingKind],
) -> Result<Vec<EntryRecord>> {
    let kinds: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM ledger_entries e WHERE county_code = $1 AND policy_year = $2 \
         AND reverses_entry_id IS NULL AND kind IN ($3, $4, $5) \
         AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.reverses_entry_id = e.entry_id) \
         ORDER BY sequence LIMIT 100"
    )))
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(kinds.first().copied().unwrap_or(""))
    .bind(kinds.get(1).copied().unwrap_or(""))
    .bind(kinds.get(2).copied().unwrap_or(""))
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode_entry).collect()
}

/// The claim's relief payout that stands: posted, not a reversal, not
/// reversed. At most one, by the natural key per payout attempt.
pub async fn standing_payout(conn: &mut Conn, claim_id: Uuid) -> Result<Option<EntryRecord>> {
    standing_entry(conn, claim_id, PostingKind::ReliefPayout).await
}

/// The claim's entry of `kind` that is neither a reversal nor reversed.
#[tracing::instrument(name = "store.ledger.standing_entry", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn standing_entry(
    conn: &mut Conn,
    claim_id: Uuid,
    kind: PostingKind,
) -> Result<Option<EntryRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM ledger_entries e WHERE claim_id = $1 AND kind = $2 \
         AND reverses_entry_id IS NULL \
         AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.reverses_entry_id = e.entry_id) \
         ORDER BY sequence LIMIT 1"
    )))
    .bind(claim_id.to_string())
    .bind(kind.as_str())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(decode_entry).transpose()
}

/// An advance's excess owed back to the pool (see migration 0014).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivableRecord {
    pub claim_id: Uuid,
    pub amount: Fen,
    pub state: String,
    pub resolved_by: Option<String>,
    pub resolution_note: Option<String>,
}

#[tracing::instrument(name = "store.ledger.insert_receivable", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn insert_receivable(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    claim_id: Uuid,
    amount: Fen,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO advance_receivables (claim_id, county_code, policy_year, amount_fen, state, raised_at) \
         VALUES ($1, $2, $3, $4, 'open', $5)",
    )
    .bind(claim_id.to_string())
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(amount.get())
    .bind(timestamp(now))
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store.ledger.get_receivable", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn get_receivable(conn: &mut Conn, claim_id: Uuid) -> Result<Option<ReceivableRecord>> {
    let row = sqlx::query(
        "SELECT amount_fen, state, resolved_by, resolution_note FROM advance_receivables WHERE claim_id = $1",
    )
    .bind(claim_id.to_string())
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(ReceivableRecord {
            claim_id,
            amount: Fen::new(col(&r, "amount_fen")?),
            state: col(&r, "state")?,
            resolved_by: col(&r, "resolved_by")?,
            resolution_note: col(&r, "resolution_note")?,
        })
    })
    .transpose()
}

/// Marks an open receivable recovered or written off.
#[tracing::instrument(name = "store.ledger.resolve_receivable", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn resolve_receivable(
    conn: &mut Conn,
    claim_id: Uuid,
    state: &str,
    resolved_by: &str,
    note: &str,
    entry_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<()> {
    assert!(matches!(state, "recovered" | "written_off"), "a resolution");
    let done = sqlx::query(
        "UPDATE advance_receivables SET state = $1, resolved_by = $2, resolution_note = $3, resolved_at = $4, \
         entry_id = $5 WHERE claim_id = $6 AND state = 'open'",
    )
    .bind(state)
    .bind(resolved_by)
    .bind(note)
    .bind(timestamp(now))
    .bind(entry_id.map(|e| e.to_string()))
    .bind(claim_id.to_string())
    .execute(conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt(format!(
            "receivable of claim {claim_id} was not open"
        )));
    }
    Ok(())
}

/// A year's receivables by state: (open count, open, recovered, written off).
#[tracing::instrument(name = "store.ledger.receivable_totals", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn receivable_totals(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<(u64, Fen, Fen, Fen)> {
    let rows = sqlx::query(
        "SELECT state, COUNT(*) AS n, CAST(SUM(amount_fen) AS BIGINT) AS total FROM advance_receivables \
         WHERE county_code = $1 AND policy_year = $2 GROUP BY state",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .fetch_all(conn)
    .await?;
    let (mut open_count, mut open, mut recovered, mut written_off) =
        (0u64, Fen::ZERO, Fen::ZERO, Fen::ZERO);
    for r in &rows {
        let state: String = col(r, "state")?;
        let total = Fen::new(col(r, "total")?);
        match state.as_str() {
            "open" => {
                open_count = u64::try_from(col::<i64>(r, "n")?).unwrap_or(0);
                open = total;
            }
            "recovered" => recovered = total,
            "written_off" => written_off = total,
            other => return Err(StoreError::Corrupt(format!("receivable state {other:?}"))),
        }
    }
    Ok((open_count, open, recovered, written_off))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservationRecord {
    pub reservation_id: Uuid,
    pub claim_id: Uuid,
    pub amount: Fen,
}

#[tracing::instrument(name = "store.ledger.insert_reservation", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year, fangpin.claim_id = %claim_id))]
pub async fn insert_reservation(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    claim_id: Uuid,
    amount: Fen,
    now: DateTime<Utc>,
) -> Result<ReservationRecord> {
    assert!(amount > Fen::ZERO, "a reservation holds a positive amount");
    if year_state(&mut *conn, county_code, policy_year).await? == YearState::Closed {
        return Err(StoreError::YearClosed {
            county_code: county_code.to_string(),
            policy_year,
        });
    }
    let record = ReservationRecord {
        reservation_id: Uuid::now_v7(),
        claim_id,
        amount,
    };
    sqlx::query(
        "INSERT INTO reservations (reservation_id, county_code, policy_year, claim_id, amount_fen, state, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
    )
    .bind(record.reservation_id.to_string())
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(claim_id.to_string())
    .bind(amount.get())
    .bind(timestamp(now))
    .execute(conn)
    .await?;
    Ok(record)
}

#[tracing::instrument(name = "store.ledger.pending_reservation", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn pending_reservation(
    conn: &mut Conn,
    claim_id: Uuid,
) -> Result<Option<ReservationRecord>> {
    let row = sqlx::query(
        "SELECT reservation_id, claim_id, amount_fen FROM reservations WHERE claim_id = $1 AND state = 'pending'",
    )
    .bind(claim_id.to_string())
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(ReservationRecord {
            reservation_id: parse_uuid(&col::<String>(&r, "reservation_id")?)?,
            claim_id: parse_uuid(&col::<String>(&r, "claim_id")?)?,
            amount: Fen::new(col(&r, "amount_fen")?),
        })
    })
    .transpose()
}

/// Posts (with the entry that paid it) or voids a pending reservation.
#[tracing::instrument(name = "store.ledger.resolve_reservation", level = "info", skip_all, fields(fangpin.reservation_id = %reservation_id))]
pub async fn resolve_reservation(
    conn: &mut Conn,
    reservation_id: Uuid,
    posted_entry: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<()> {
    let state = if posted_entry.is_some() {
        "posted"
    } else {
        "voided"
    };
    let done = sqlx::query(
        "UPDATE reservations SET state = $1, resolved_at = $2, posted_entry = $3 \
         WHERE reservation_id = $4 AND state = 'pending'",
    )
    .bind(state)
    .bind(timestamp(now))
    .bind(posted_entry.map(|e| e.to_string()))
    .bind(reservation_id.to_string())
    .execute(conn)
    .await?;
    if done.rows_affected() != 1 {
        return Err(StoreError::Corrupt(format!(
            "reservation {reservation_id} is not pending"
        )));
    }
    Ok(())
}

/// Count and sum of the year's pending reservations.
#[tracing::instrument(name = "store.ledger.pending_totals", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn pending_totals(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<(u64, Fen)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS amount FROM reservations \
         WHERE county_code = $1 AND policy_year = $2 AND state = 'pending'",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .fetch_one(conn)
    .await?;
    let n: i64 = col(&row, "n")?;
    Ok((
        u64::try_from(n).map_err(|_| StoreError::Corrupt("negative count".into()))?,
        Fen::new(col(&row, "amount")?),
    ))
}

/// Relief and advances of one relief kind in one township.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakdownCell {
    pub relief_kind: String,
    pub township_code: String,
    pub claims: u64,
    pub relief: Fen,
    pub advances: Fen,
}

/// The year's relief and advances by (relief kind, township), from the keys each
/// claim's entries carry. A claim has one kind and one township, so cells add
/// up exactly along either dimension. Reversals count negatively.
#[tracing::instrument(name = "store.ledger.breakdown_cells", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn breakdown_cells(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<Vec<BreakdownCell>> {
    let rows = sqlx::query(
        "SELECT relief_kind, township_code, COUNT(DISTINCT claim_id) AS claims, \
         CAST(SUM(CASE WHEN kind = 'relief_payout' THEN \
           (CASE WHEN reverses_entry_id IS NULL THEN amount_fen ELSE -amount_fen END) ELSE 0 END) AS BIGINT) AS relief, \
         CAST(SUM(CASE WHEN kind = 'emergency_advance' THEN \
           (CASE WHEN reverses_entry_id IS NULL THEN amount_fen ELSE -amount_fen END) ELSE 0 END) AS BIGINT) AS advances \
         FROM ledger_entries \
         WHERE county_code = $1 AND policy_year = $2 AND kind IN ('relief_payout', 'emergency_advance') \
         GROUP BY relief_kind, township_code ORDER BY relief_kind, township_code",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let claims: i64 = col(r, "claims")?;
            let key = |name: &str| -> Result<String> {
                col::<Option<String>>(r, name)?
                    .ok_or_else(|| StoreError::Corrupt(format!("a claim's entry has no {name}")))
            };
            Ok(BreakdownCell {
                relief_kind: key("relief_kind")?,
                township_code: key("township_code")?,
                claims: u64::try_from(claims)
                    .map_err(|_| StoreError::Corrupt("negative count".into()))?,
                relief: Fen::new(col(r, "relief")?),
                advances: Fen::new(col(r, "advances")?),
            })
        })
        .collect()
}

/// A relief payout with the account it was sent to, sealed, for bank
/// matching (the server opens it; `household_id` is the sealed value's row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidEntry {
    pub entry: EntryRecord,
    pub household_id: String,
    pub bank_account_sealed: Vec<u8>,
}

/// Most payouts one county pays in a year, far above the seeds' figures.
pub const MAX_PAYOUTS_PER_YEAR: i64 = 200_000;

#[tracing::instrument(name = "store.ledger.payouts_with_accounts", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn payouts_with_accounts(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<Vec<PaidEntry>> {
    let columns: String = ENTRY_COLUMNS
        .split(", ")
        .map(|c| format!("e.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {columns}, h.household_id AS account_household_id, h.bank_account_sealed FROM ledger_entries e \
         JOIN claims c ON c.claim_id = e.claim_id JOIN households h ON h.household_id = c.household_id \
         WHERE e.county_code = $1 AND e.policy_year = $2 AND e.kind = 'relief_payout' \
         AND e.reverses_entry_id IS NULL \
         AND NOT EXISTS (SELECT 1 FROM ledger_entries r WHERE r.reverses_entry_id = e.entry_id) \
         ORDER BY e.sequence LIMIT $3"
    )))
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(MAX_PAYOUTS_PER_YEAR)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(PaidEntry {
                entry: decode_entry(r)?,
                household_id: col(r, "account_household_id")?,
                bank_account_sealed: col(r, "bank_account_sealed")?,
            })
        })
        .collect()
}

/// Clears every open flag of the ledger; `entry_id` names the top-up that did
/// it, or is None when a voided reservation made the shortfall go away.
#[tracing::instrument(name = "store.ledger.clear_flags_by", level = "info", skip_all, fields(fangpin.county_code = %county_code, fangpin.policy_year = policy_year))]
pub async fn clear_flags_by(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    entry_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Vec<TopUpFlagRecord>> {
    let open = list_flags(&mut *conn, county_code, policy_year, false).await?;
    let at = timestamp(now);
    sqlx::query(
        "UPDATE top_up_flags SET cleared_at = $1, cleared_by_entry = $2 \
         WHERE county_code = $3 AND policy_year = $4 AND cleared_at IS NULL",
    )
    .bind(&at)
    .bind(entry_id.map(|e| e.to_string()))
    .bind(county_code)
    .bind(i64::from(policy_year))
    .execute(conn)
    .await?;
    Ok(open
        .into_iter()
        .map(|f| TopUpFlagRecord {
            cleared_at: Some(at.clone()),
            cleared_by_entry: entry_id,
            ..f
        })
        .collect())
}
