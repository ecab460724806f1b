//! The township head's decision on an emergency (遇困即扶: 村级报告, 乡镇主要
//! 负责同志批准), for ClaimService. The rules are `fangpin_domain::review`;
//! PayEmergencyAdvance (claims.rs) checks the decision on record.

use fangpin_domain::Fen;
use fangpin_domain::review::{self, EmergencyDecision};
use fangpin_proto::tonic::Status;
use fangpin_proto::v1 as pb;
use fangpin_store::claims::{self as claim_store, TransitionRecord};
use fangpin_store::review::{self as store, DecisionRecord};
use fangpin_store::timestamp;
use uuid::Uuid;

use crate::services::{claim_ids, claim_policy};
use crate::write_path::app::App;
use crate::write_path::convert::{Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::write_path::error::AppError;

pub fn decision_to_pb(claim_id: Uuid, d: Option<&DecisionRecord>) -> pb::EmergencyDecision {
    let Some(d) = d else {
        return pb::EmergencyDecision {
            claim_id: claim_id.to_string(),
            ..Default::default()
        };
    };
    let (kind, amount) = match d.decision {
        EmergencyDecision::Approved { amount } => {
            (pb::EmergencyDecisionKind::Approved, amount.to_string())
        }
        EmergencyDecision::Refused => (pb::EmergencyDecisionKind::Refused, String::new()),
    };
    pb::EmergencyDecision {
        claim_id: claim_id.to_string(),
        decision: kind.into(),
        amount_yuan: amount,
        decided_by: d.decided_by.clone(),
        reason: d.reason.clone(),
        decided_at: d.decided_at.clone(),
    }
}

/// Records an approval (`amount` Some) or a refusal on the claim, once.
pub async fn decide<Req: fangpin_proto::prost::Message>(
    app: &App,
    rpc: &'static str,
    raw: &Req,
    ids: (&str, &str),
    amount: Option<&str>,
    by: (&'static str, &str),
    reason: &str,
) -> Result<pb::EmergencyDecision, Status> {
    let (request_id, claim_id) = claim_ids(ids.0, ids.1)?;
    let mut c = Check::new();
    let amount = match amount {
        Some(text) => c.positive_money("amount_yuan", text).map(Some),
        None => Some(None),
    };
    let decided_by = c.text(by.0, by.1, MAX_LABEL_CHARS);
    let reason = c.text("reason", reason, MAX_TEXT_CHARS);
    c.finish()?;
    let (amount, decided_by) = (amount.expect("checked"), decided_by.expect("checked"));
    let reason = reason.expect("checked");
    crate::write_path::scope::check_acting_person(by.0, &decided_by)?;
    app.write_claim(rpc, raw, &request_id, claim_id, move |conn, claim, ctx| {
        Box::pin(async move {
            let policy = claim_policy(conn, claim).await?;
            let existing = store::get_decision(conn, claim.claim_id)
                .await?
                .map(|d| d.decision);
            review::check_decision(
                claim.channel,
                claim.state,
                existing,
                amount,
                policy.emergency_limit(),
            )?;
            let decision = match amount {
                Some(amount) => EmergencyDecision::Approved { amount },
                None => EmergencyDecision::Refused,
            };
            let record = DecisionRecord {
                claim_id: claim.claim_id,
                decision,
                decided_by: decided_by.clone(),
                reason: reason.clone(),
                decided_at: timestamp(ctx.now),
            };
            store::insert_decision(conn, &record, &ctx.request_id).await?;
            let line = match decision {
                EmergencyDecision::Approved { amount } => {
                    format!("emergency help approved up to {amount}: {reason}")
                }
                EmergencyDecision::Refused => format!("emergency help refused: {reason}"),
            };
            let note = TransitionRecord {
                from_state: Some(claim.state),
                to_state: claim.state,
                event: format!("emergency_{}", decision.as_str()),
                actor: decided_by,
                reason: line,
                at: timestamp(ctx.now),
            };
            claim_store::append_transition(conn, claim.claim_id, &note, &ctx.request_id).await?;
            Ok(decision_to_pb(claim.claim_id, Some(&record)))
        })
    })
    .await
}

pub async fn get(app: &App, claim_id: &str) -> Result<pb::EmergencyDecision, Status> {
    let mut c = Check::new();
    let claim_id = c.uuid("claim_id", claim_id);
    c.finish()?;
    let claim_id = claim_id.expect("checked");
    // The claim exists and is in scope: authorize_claim found it.
    app.authorize_claim(claim_id).await?;
    let mut conn = app.store.read().await.map_err(AppError::from)?;
    let d = store::get_decision(&mut conn, claim_id)
        .await
        .map_err(AppError::from)?;
    Ok(decision_to_pb(claim_id, d.as_ref()))
}

/// The advance `amount` against the decision on record, and the approver
/// the request names (empty, or the approver on record).
pub async fn check_advance(
    conn: &mut fangpin_store::Conn,
    claim_id: Uuid,
    amount: Fen,
    approved_by: &str,
) -> Result<String, AppError> {
    let record = store::get_decision(conn, claim_id).await?;
    review::check_advance(record.as_ref().map(|d| d.decision), amount)?;
    let approver = record.map(|d| d.decided_by).unwrap_or_default();
    if !approved_by.is_empty() && approved_by != approver {
        return Err(AppError::invalid(
            "approved_by",
            format!("must be empty or the approver on record ({approver})"),
        ));
    }
    Ok(approver)
}
