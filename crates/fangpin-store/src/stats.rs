//! Aggregates over every county, for the service's gauges: read when metrics
//! are collected (once a minute by default), never on a request's path. Each
//! is one GROUP BY over an indexed table, so its cost grows with the number
//! of counties and claim states, not with the number of entries.
//!
//! Deliberately not traced: a collection is not a request, and a trace per
//! collection would bury the RPC traces.

use std::collections::BTreeMap;

use fangpin_domain::Fen;
use fangpin_domain::ledger::{Account, Balances};

use crate::{Conn, Result, StoreError, col};

/// The number of claims of one county in one state, over all policy years.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimCount {
    pub county_code: String,
    /// As stored (`ClaimState::as_str`).
    pub state: String,
    pub claims: u64,
}

pub async fn claims_by_state(conn: &mut Conn) -> Result<Vec<ClaimCount>> {
    let rows = sqlx::query(
        "SELECT county_code, state, COUNT(*) AS n FROM claims GROUP BY county_code, state \
         ORDER BY county_code, state",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ClaimCount {
                county_code: col(row, "county_code")?,
                state: col(row, "state")?,
                claims: count(col(row, "n")?)?,
            })
        })
        .collect()
}

/// One county's fund pool in one policy year, from the cached balances and
/// the pending reservations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolFigures {
    pub county_code: String,
    pub policy_year: i32,
    /// Relief posted to households (the relief-paid account's balance).
    pub relief_paid: Fen,
    /// The posted pool balance.
    pub pool: Fen,
    /// Filed relief reserved but not yet paid.
    pub pending: Fen,
}

impl PoolFigures {
    /// What the pool can still promise: posted less reserved; below zero
    /// when county finance owes a top-up.
    pub fn available(&self) -> Option<Fen> {
        self.pool.checked_sub(self.pending)
    }
}

/// Every county's pool in `policy_year`, checked to balance as on every read.
pub async fn pool_figures(conn: &mut Conn, policy_year: i32) -> Result<Vec<PoolFigures>> {
    let rows = sqlx::query(
        "SELECT county_code, account, debits_fen AS debits, credits_fen AS credits \
         FROM account_balances WHERE policy_year = $1",
    )
    .bind(i64::from(policy_year))
    .fetch_all(&mut *conn)
    .await?;
    let mut totals: BTreeMap<String, Vec<(Account, Fen, Fen)>> = BTreeMap::new();
    for row in &rows {
        let name: String = col(row, "account")?;
        let account = Account::parse(&name)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown account {name:?}")))?;
        totals.entry(col(row, "county_code")?).or_default().push((
            account,
            Fen::new(col(row, "debits")?),
            Fen::new(col(row, "credits")?),
        ));
    }
    let rows = sqlx::query(
        "SELECT county_code, CAST(COALESCE(SUM(amount_fen), 0) AS BIGINT) AS amount FROM reservations \
         WHERE policy_year = $1 AND state = 'pending' GROUP BY county_code",
    )
    .bind(i64::from(policy_year))
    .fetch_all(conn)
    .await?;
    let mut pending: BTreeMap<String, Fen> = BTreeMap::new();
    for row in &rows {
        pending.insert(col(row, "county_code")?, Fen::new(col(row, "amount")?));
        totals.entry(col(row, "county_code")?).or_default();
    }
    totals
        .into_iter()
        .map(|(county_code, totals)| {
            let balances =
                Balances::from_totals(totals).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(PoolFigures {
                pending: pending.get(&county_code).copied().unwrap_or(Fen::ZERO),
                county_code,
                policy_year,
                relief_paid: balances.balance(Account::ReliefPaid),
                pool: balances.pool(),
            })
        })
        .collect()
}

/// Top-up flags not yet cleared, per county and policy year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagCount {
    pub county_code: String,
    pub policy_year: i32,
    pub open: u64,
}

pub async fn open_flags(conn: &mut Conn) -> Result<Vec<FlagCount>> {
    let rows = sqlx::query(
        "SELECT county_code, policy_year, COUNT(*) AS n FROM top_up_flags WHERE cleared_at IS NULL \
         GROUP BY county_code, policy_year ORDER BY county_code, policy_year",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let year: i64 = col(row, "policy_year")?;
            Ok(FlagCount {
                county_code: col(row, "county_code")?,
                policy_year: i32::try_from(year)
                    .map_err(|_| StoreError::Corrupt(format!("bad policy year {year}")))?,
                open: count(col(row, "n")?)?,
            })
        })
        .collect()
}

fn count(n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt("negative count".into()))
}
