//! What the fund's outlook (资金池年末预测) is computed from: the claims in
//! the pipeline, how the county's decided claims fared at each stage, and
//! the relief of earlier years by the month the claims arose. Reads only.

use fangpin_domain::Fen;
use fangpin_domain::claim::ClaimState;
use fangpin_domain::outlook::{MAX_PIPELINE, MAX_YEARS};

use crate::claims::ClaimRecord;
use crate::{Conn, Result, StoreError, col};

/// The pipeline stages in the order of `outlook::PipelineStage::ALL`.
pub const PIPELINE_STATES: [ClaimState; 5] = [
    ClaimState::Received,
    ClaimState::UnderSurvey,
    ClaimState::Recommended,
    ClaimState::InPublicity,
    ClaimState::PublicityPassed,
];

/// The year's claims not yet filed and not rejected, in id order (a new
/// claim comes last), at most one more than the outlook accepts so that
/// the caller can refuse rather than cut.
#[tracing::instrument(name = "store.outlook.pipeline", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn pipeline(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<Vec<ClaimRecord>> {
    // The county's own reviews lie between the recommendation and
    // publicity or filing; a county that files first (Hebi) has filed, so
    // reserved, claims in publicity, which are left out.
    let mut states = PIPELINE_STATES.to_vec();
    states.extend([ClaimState::Deliberated, ClaimState::TownshipApproved]);
    let mut claims = crate::claims::in_states(
        conn,
        county_code,
        policy_year,
        &states,
        MAX_PIPELINE as u32 + 1,
    )
    .await?;
    claims.retain(|c| !c.filed);
    Ok(claims)
}

/// For each pipeline stage: of the county's decided claims (paid or
/// rejected, any year) that ever reached it, how many, and how many of
/// those were paid. Claims still open have no outcome yet and are left out.
#[tracing::instrument(name = "store.outlook.stage_history", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn stage_history(
    conn: &mut Conn,
    county_code: &str,
) -> Result<Vec<(ClaimState, u64, u64)>> {
    let rows = sqlx::query(
        "SELECT t.to_state AS stage, COUNT(DISTINCT c.claim_id) AS reached, \
         COUNT(DISTINCT CASE WHEN c.state = 'paid' THEN c.claim_id END) AS paid \
         FROM claims c JOIN claim_transitions t ON t.claim_id = c.claim_id \
         WHERE c.county_code = $1 AND c.state IN ('paid', 'rejected', 'disqualified') \
         AND t.to_state IN ('received', 'under_survey', 'recommended', 'in_publicity', 'publicity_passed') \
         GROUP BY t.to_state",
    )
    .bind(county_code)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let stage: String = col(r, "stage")?;
            let count = |name: &str| -> Result<u64> {
                let n: i64 = col(r, name)?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{name} {n}")))
            };
            Ok((
                ClaimState::parse(&stage)
                    .ok_or_else(|| StoreError::Corrupt(format!("stage {stage:?}")))?,
                count("reached")?,
                count("paid")?,
            ))
        })
        .collect()
}

/// The county's policy years before `policy_year` that had a pool (any
/// ledger entry), the most recent `MAX_YEARS`, newest first.
#[tracing::instrument(name = "store.outlook.earlier_years", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn earlier_years(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<Vec<i32>> {
    sqlx::query(
        "SELECT DISTINCT policy_year FROM ledger_entries WHERE county_code = $1 AND policy_year < $2 \
         ORDER BY policy_year DESC LIMIT $3",
    )
    .bind(county_code)
    .bind(i64::from(policy_year))
    .bind(MAX_YEARS as i64)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        let y: i64 = col(r, "policy_year")?;
        i32::try_from(y).map_err(|_| StoreError::Corrupt(format!("policy year {y}")))
    })
    .collect()
}

/// Relief paid (payout and emergency advance) on the county's paid claims
/// of the years from `first_year` to before `policy_year`, by policy year
/// and the month (1 to 12) the claim's event fell in.
#[tracing::instrument(name = "store.outlook.relief_by_month", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn relief_by_month(
    conn: &mut Conn,
    county_code: &str,
    first_year: i32,
    policy_year: i32,
) -> Result<Vec<(i32, u32, Fen)>> {
    let rows = sqlx::query(
        "SELECT policy_year, substr(event_date, 6, 2) AS month, \
         CAST(SUM(COALESCE(payout_fen, 0) + advance_fen) AS BIGINT) AS relief \
         FROM claims WHERE county_code = $1 AND policy_year >= $2 AND policy_year < $3 AND state = 'paid' \
         GROUP BY policy_year, substr(event_date, 6, 2)",
    )
    .bind(county_code)
    .bind(i64::from(first_year))
    .bind(i64::from(policy_year))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let y: i64 = col(r, "policy_year")?;
            let m: String = col(r, "month")?;
            let month = m
                .parse::<u32>()
                .ok()
                .filter(|m| (1..=12).contains(m))
                .ok_or_else(|| StoreError::Corrupt(format!("event month {m:?}")))?;
            Ok((
                i32::try_from(y).map_err(|_| StoreError::Corrupt(format!("policy year {y}")))?,
                month,
                Fen::new(col(r, "relief")?),
            ))
        })
        .collect()
}
