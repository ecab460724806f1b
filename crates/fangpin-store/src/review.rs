//! Emergency decisions and cross-check results (migration 0019). The rules
//! are `fangpin_domain::review`.

use fangpin_domain::Fen;
use fangpin_domain::review::{CheckResult, EmergencyDecision};
use uuid::Uuid;

use crate::{Conn, Result, StoreError, col};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionRecord {
    pub claim_id: Uuid,
    pub decision: EmergencyDecision,
    pub decided_by: String,
    pub reason: String,
    pub decided_at: String,
}

#[tracing::instrument(name = "store.review.insert_decision", level = "info", skip_all, fields(fangpin.claim_id = %d.claim_id))]
pub async fn insert_decision(conn: &mut Conn, d: &DecisionRecord, request_id: &str) -> Result<()> {
    let amount = match d.decision {
        EmergencyDecision::Approved { amount } => Some(amount.get()),
        EmergencyDecision::Refused => None,
    };
    sqlx::query(
        "INSERT INTO emergency_decisions (claim_id, decision, amount_fen, decided_by, reason, decided_at, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(d.claim_id.to_string())
    .bind(d.decision.as_str())
    .bind(amount)
    .bind(&d.decided_by)
    .bind(&d.reason)
    .bind(&d.decided_at)
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store.review.get_decision", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn get_decision(conn: &mut Conn, claim_id: Uuid) -> Result<Option<DecisionRecord>> {
    let row = sqlx::query(
        "SELECT decision, amount_fen, decided_by, reason, decided_at FROM emergency_decisions WHERE claim_id = $1",
    )
    .bind(claim_id.to_string())
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    let decision: String = col(&r, "decision")?;
    let amount: Option<i64> = col(&r, "amount_fen")?;
    let decision = match (decision.as_str(), amount) {
        ("approved", Some(fen)) => EmergencyDecision::Approved {
            amount: Fen::new(fen),
        },
        ("refused", None) => EmergencyDecision::Refused,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "emergency decision {decision:?} with amount {amount:?}"
            )));
        }
    };
    Ok(Some(DecisionRecord {
        claim_id,
        decision,
        decided_by: col(&r, "decided_by")?,
        reason: col(&r, "reason")?,
        decided_at: col(&r, "decided_at")?,
    }))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRecord {
    pub seq: u32,
    pub check_code: String,
    pub result: CheckResult,
    pub details: String,
    pub checked_by: String,
    pub checked_at: String,
    pub findings_seq: u32,
}

/// The most results one claim keeps: every check recorded a few times over
/// a few survey rounds.
pub const MAX_CHECK_RECORDS: usize = 500;

#[tracing::instrument(name = "store.review.append_check", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn append_check(
    conn: &mut Conn,
    claim_id: Uuid,
    c: &CheckRecord,
    request_id: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO cross_check_results (claim_id, seq, check_code, result, details, checked_by, checked_at, \
         findings_seq, request_id) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8 FROM cross_check_results WHERE claim_id = $1",
    )
    .bind(claim_id.to_string())
    .bind(&c.check_code)
    .bind(c.result.as_str())
    .bind(&c.details)
    .bind(&c.checked_by)
    .bind(&c.checked_at)
    .bind(i64::from(c.findings_seq))
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store.review.list_checks", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn list_checks(conn: &mut Conn, claim_id: Uuid) -> Result<Vec<CheckRecord>> {
    sqlx::query(
        "SELECT seq, check_code, result, details, checked_by, checked_at, findings_seq FROM cross_check_results \
         WHERE claim_id = $1 ORDER BY seq LIMIT $2",
    )
    .bind(claim_id.to_string())
    .bind(MAX_CHECK_RECORDS as i64)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        let result: String = col(r, "result")?;
        let n = |name: &str| -> Result<u32> {
            let v: i64 = col(r, name)?;
            u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{name} {v}")))
        };
        Ok(CheckRecord {
            seq: n("seq")?,
            check_code: col(r, "check_code")?,
            result: CheckResult::parse(&result)
                .ok_or_else(|| StoreError::Corrupt(format!("check result {result:?}")))?,
            details: col(r, "details")?,
            checked_by: col(r, "checked_by")?,
            checked_at: col(r, "checked_at")?,
            findings_seq: n("findings_seq")?,
        })
    })
    .collect()
}
