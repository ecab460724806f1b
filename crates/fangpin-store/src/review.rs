//! Emergency decisions and cross-check results (migration 0019), village
//! deliberations and township reviews (migration 0021). The rules
//! are `fangpin_domain::review`.

use fangpin_domain::Fen;
use fangpin_domain::review::{CheckResult, EmergencyDecision, TownshipDecision};
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

/// A small count or sequence number stored as BIGINT.
fn small(r: &sqlx::any::AnyRow, name: &str) -> Result<u32> {
    let v: i64 = col(r, name)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{name} {v}")))
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
        Ok(CheckRecord {
            seq: small(r, "seq")?,
            check_code: col(r, "check_code")?,
            result: CheckResult::parse(&result)
                .ok_or_else(|| StoreError::Corrupt(format!("check result {result:?}")))?,
            details: col(r, "details")?,
            checked_by: col(r, "checked_by")?,
            checked_at: col(r, "checked_at")?,
            findings_seq: small(r, "findings_seq")?,
        })
    })
    .collect()
}

/// The most deliberations or township reviews one claim keeps: one per
/// survey round, and a claim goes back to survey a few times at most.
pub const MAX_REVIEW_RECORDS: usize = 100;

/// A village deliberation on record (migration 0021).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliberationRecord {
    pub seq: u32,
    pub findings_seq: u32,
    pub held_on: String,
    pub members: u32,
    pub present: u32,
    pub in_favour: u32,
    pub agreed: bool,
    pub minutes_evidence_id: Uuid,
    pub recorded_by: String,
    pub note: String,
    pub recorded_at: String,
}

/// A township review on record (migration 0021).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TownshipReviewRecord {
    pub seq: u32,
    pub findings_seq: u32,
    pub decision: TownshipDecision,
    pub reason: String,
    pub reviewed_by: String,
    pub reviewed_at: String,
}

#[tracing::instrument(name = "store.review.append_deliberation", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn append_deliberation(
    conn: &mut Conn,
    claim_id: Uuid,
    d: &DeliberationRecord,
    request_id: &str,
) -> Result<u32> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO village_deliberations (claim_id, seq, findings_seq, held_on, members, present, \
         in_favour, result, minutes_evidence_id, recorded_by, note, recorded_at, request_id) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 \
         FROM village_deliberations WHERE claim_id = $1 RETURNING seq",
    )
    .bind(claim_id.to_string())
    .bind(i64::from(d.findings_seq))
    .bind(&d.held_on)
    .bind(i64::from(d.members))
    .bind(i64::from(d.present))
    .bind(i64::from(d.in_favour))
    .bind(if d.agreed { "agreed" } else { "not_agreed" })
    .bind(d.minutes_evidence_id.to_string())
    .bind(&d.recorded_by)
    .bind(&d.note)
    .bind(&d.recorded_at)
    .bind(request_id)
    .fetch_one(conn)
    .await?;
    u32::try_from(seq).map_err(|_| StoreError::Corrupt(format!("deliberation seq {seq}")))
}

#[tracing::instrument(name = "store.review.list_deliberations", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn list_deliberations(
    conn: &mut Conn,
    claim_id: Uuid,
) -> Result<Vec<DeliberationRecord>> {
    sqlx::query(
        "SELECT seq, findings_seq, held_on, members, present, in_favour, result, minutes_evidence_id, \
         recorded_by, note, recorded_at FROM village_deliberations WHERE claim_id = $1 ORDER BY seq LIMIT $2",
    )
    .bind(claim_id.to_string())
    .bind(MAX_REVIEW_RECORDS as i64)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        let result: String = col(r, "result")?;
        let minutes: String = col(r, "minutes_evidence_id")?;
        Ok(DeliberationRecord {
            seq: small(r, "seq")?,
            findings_seq: small(r, "findings_seq")?,
            held_on: col(r, "held_on")?,
            members: small(r, "members")?,
            present: small(r, "present")?,
            in_favour: small(r, "in_favour")?,
            agreed: match result.as_str() {
                "agreed" => true,
                "not_agreed" => false,
                other => return Err(StoreError::Corrupt(format!("deliberation result {other:?}"))),
            },
            minutes_evidence_id: Uuid::parse_str(&minutes)
                .map_err(|_| StoreError::Corrupt(format!("minutes evidence id {minutes:?}")))?,
            recorded_by: col(r, "recorded_by")?,
            note: col(r, "note")?,
            recorded_at: col(r, "recorded_at")?,
        })
    })
    .collect()
}

#[tracing::instrument(name = "store.review.append_township_review", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn append_township_review(
    conn: &mut Conn,
    claim_id: Uuid,
    t: &TownshipReviewRecord,
    request_id: &str,
) -> Result<u32> {
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO township_reviews (claim_id, seq, findings_seq, decision, reason, reviewed_by, \
         reviewed_at, request_id) \
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6, $7 \
         FROM township_reviews WHERE claim_id = $1 RETURNING seq",
    )
    .bind(claim_id.to_string())
    .bind(i64::from(t.findings_seq))
    .bind(t.decision.as_str())
    .bind(&t.reason)
    .bind(&t.reviewed_by)
    .bind(&t.reviewed_at)
    .bind(request_id)
    .fetch_one(conn)
    .await?;
    u32::try_from(seq).map_err(|_| StoreError::Corrupt(format!("township review seq {seq}")))
}

#[tracing::instrument(name = "store.review.list_township_reviews", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn list_township_reviews(
    conn: &mut Conn,
    claim_id: Uuid,
) -> Result<Vec<TownshipReviewRecord>> {
    sqlx::query(
        "SELECT seq, findings_seq, decision, reason, reviewed_by, reviewed_at FROM township_reviews \
         WHERE claim_id = $1 ORDER BY seq LIMIT $2",
    )
    .bind(claim_id.to_string())
    .bind(MAX_REVIEW_RECORDS as i64)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        let decision: String = col(r, "decision")?;
        Ok(TownshipReviewRecord {
            seq: small(r, "seq")?,
            findings_seq: small(r, "findings_seq")?,
            decision: TownshipDecision::parse(&decision)
                .ok_or_else(|| StoreError::Corrupt(format!("township decision {decision:?}")))?,
            reason: col(r, "reason")?,
            reviewed_by: col(r, "reviewed_by")?,
            reviewed_at: col(r, "reviewed_at")?,
        })
    })
    .collect()
}
