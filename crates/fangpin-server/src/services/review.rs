//! The departments' structured cross-check before filing (县级相关部门信息
//! 比对), for PayoutService: results recorded one by one, filing held until
//! every check the claim's policy requires has one and none is a hit, and
//! the county office's decision on a hit. The rules are
//! `fangpin_domain::review`.

use fangpin_domain::claim::{ClaimEvent, ClaimState};
use fangpin_domain::policy::Policy;
use fangpin_domain::review::{self, CheckResult, CrossCheckStatus};
use fangpin_proto::tonic::Status;
use fangpin_proto::v1 as pb;
use fangpin_store::claims::ClaimRecord;
use fangpin_store::review::{self as store, CheckRecord};
use fangpin_store::{Conn, timestamp};

use crate::services::{
    claim_ids, claim_policy, claim_response, load_claim, raise_advance_receivable, survey_round,
    transition_under,
};
use crate::write_path::app::App;
use crate::write_path::convert::{Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::write_path::error::AppError;

/// Where the claim's cross-check stands in its current survey round.
pub fn status_of(
    policy: &Policy,
    claim: &ClaimRecord,
    records: &[CheckRecord],
) -> CrossCheckStatus {
    let required: Vec<&str> = policy
        .cross_checks
        .iter()
        .map(|k| k.code.as_str())
        .collect();
    let current: Vec<(String, CheckResult)> = records
        .iter()
        .filter(|r| r.findings_seq == survey_round(claim))
        .map(|r| (r.check_code.clone(), r.result))
        .collect();
    review::cross_check_status(&required, &current)
}

/// Refuses filing until the cross-check allows it. Called by FileClaim.
pub async fn require_clear(conn: &mut Conn, claim: &ClaimRecord) -> Result<(), AppError> {
    // Only a claim filing applies to is held for its checks; any other
    // state is refused by the transition itself, as a state.
    let policy = claim_policy(conn, claim).await?;
    if claim
        .state
        .apply(ClaimEvent::File, &policy.procedure())
        .is_err()
    {
        return Ok(());
    }
    if policy.cross_checks.is_empty() {
        return Ok(());
    }
    let records = store::list_checks(conn, claim.claim_id).await?;
    let status = status_of(&policy, claim, &records);
    if !status.missing.is_empty() {
        return Err(AppError::precondition(
            "CROSS_CHECK",
            format!("claim/{}", claim.claim_id),
            format!(
                "filing needs every required cross-check; no result yet for: {}",
                status.missing.join(", ")
            ),
        ));
    }
    if !status.hits.is_empty() {
        return Err(AppError::precondition(
            "CROSS_CHECK_HIT",
            format!("claim/{}", claim.claim_id),
            format!(
                "a cross-check found something ({}); the county office decides first \
                 (DecideCrossCheckHit: reject, or back to survey)",
                status.hits.join(", ")
            ),
        ));
    }
    Ok(())
}

fn result_to_pb(r: CheckResult) -> pb::CrossCheckResult {
    match r {
        CheckResult::Clear => pb::CrossCheckResult::Clear,
        CheckResult::Hit => pb::CrossCheckResult::Hit,
        CheckResult::NotPossible => pb::CrossCheckResult::NotPossible,
    }
}

fn checks_to_pb(policy: &Policy, claim: &ClaimRecord, records: &[CheckRecord]) -> pb::CrossChecks {
    let status = status_of(policy, claim, records);
    let name = |code: &str| {
        policy
            .cross_checks
            .iter()
            .find(|k| k.code == code)
            .map(|k| k.name.clone())
            .unwrap_or_default()
    };
    pb::CrossChecks {
        claim_id: claim.claim_id.to_string(),
        records: records
            .iter()
            .map(|r| pb::CrossCheckRecord {
                seq: r.seq,
                check: r.check_code.clone(),
                check_name: name(&r.check_code),
                result: result_to_pb(r.result).into(),
                details: r.details.clone(),
                checked_by: r.checked_by.clone(),
                checked_at: r.checked_at.clone(),
                findings_seq: r.findings_seq,
            })
            .collect(),
        filing_allowed: status.allows_filing(),
        missing: status.missing,
        hits: status.hits,
    }
}

pub async fn record(
    app: &App,
    req: pb::RecordCrossCheckRequest,
) -> Result<pb::CrossChecks, Status> {
    let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
    let mut c = Check::new();
    let check = c.text("check", &req.check, MAX_LABEL_CHARS);
    let result = match pb::CrossCheckResult::try_from(req.result) {
        Ok(pb::CrossCheckResult::Clear) => Some(CheckResult::Clear),
        Ok(pb::CrossCheckResult::Hit) => Some(CheckResult::Hit),
        Ok(pb::CrossCheckResult::NotPossible) => Some(CheckResult::NotPossible),
        _ => {
            c.bad("result", "must be CLEAR, HIT or NOT_POSSIBLE");
            None
        }
    };
    let details = c.optional_text("details", &req.details, MAX_TEXT_CHARS);
    let checked_by = c.text("checked_by", &req.checked_by, MAX_LABEL_CHARS);
    if matches!(result, Some(CheckResult::Hit | CheckResult::NotPossible))
        && req.details.trim().is_empty()
    {
        c.bad(
            "details",
            "is required for a hit (what was found) and for not possible (why)",
        );
    }
    c.finish()?;
    let (check, result) = (check.expect("checked"), result.expect("checked"));
    let (details, checked_by) = (details.expect("checked"), checked_by.expect("checked"));
    crate::write_path::scope::check_acting_person("checked_by", &checked_by)?;
    app.write_claim("RecordCrossCheck", &req, &request_id, claim_id, move |conn, claim, ctx| {
        Box::pin(async move {
            let policy = claim_policy(conn, claim).await?;
            if policy.cross_checks.is_empty() {
                return Err(AppError::precondition(
                    "POLICY",
                    format!("policy/{}/{}", claim.county_code, claim.policy_year),
                    "the claim's policy requires no cross-checks (policy.cross_checks)",
                ));
            }
            if !policy.cross_checks.iter().any(|k| k.code == check) {
                let codes: Vec<&str> = policy.cross_checks.iter().map(|k| k.code.as_str()).collect();
                return Err(AppError::invalid(
                    "check",
                    format!("is not one of the policy's cross-checks ({})", codes.join(", ")),
                ));
            }
            if !review::accepts_cross_check(claim.state, &policy.procedure()) {
                return Err(AppError::precondition(
                    "STATE",
                    format!("claim.state={}", claim.state.as_str()),
                    "cross-check results are recorded after the recommendation and before filing",
                ));
            }
            let records = store::list_checks(conn, claim.claim_id).await?;
            if records.len() >= store::MAX_CHECK_RECORDS {
                return Err(AppError::precondition(
                    "TOO_MANY",
                    format!("claim/{}", claim.claim_id),
                    format!("a claim keeps at most {} results", store::MAX_CHECK_RECORDS),
                ));
            }
            let record = CheckRecord {
                seq: 0,
                check_code: check,
                result,
                details,
                checked_by,
                checked_at: timestamp(ctx.now),
                findings_seq: survey_round(claim),
            };
            store::append_check(conn, claim.claim_id, &record, &ctx.request_id).await?;
            let records = store::list_checks(conn, claim.claim_id).await?;
            Ok(checks_to_pb(&policy, claim, &records))
        })
    })
    .await
}

pub async fn list(app: &App, claim_id: &str) -> Result<pb::CrossChecks, Status> {
    let mut c = Check::new();
    let claim_id = c.uuid("claim_id", claim_id);
    c.finish()?;
    let claim_id = claim_id.expect("checked");
    app.authorize_claim(claim_id).await?;
    let mut conn = app.store.read().await.map_err(AppError::from)?;
    let claim = load_claim(&mut conn, claim_id).await?;
    let policy = claim_policy(&mut conn, &claim).await?;
    let records = store::list_checks(&mut conn, claim_id)
        .await
        .map_err(AppError::from)?;
    Ok(checks_to_pb(&policy, &claim, &records))
}

pub async fn decide_hit(
    app: &App,
    req: pb::DecideCrossCheckHitRequest,
) -> Result<pb::ClaimResponse, Status> {
    let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
    let mut c = Check::new();
    let event = match pb::CrossCheckDecision::try_from(req.decision) {
        Ok(pb::CrossCheckDecision::Reject) => Some(ClaimEvent::DisqualifyOnCrossCheck),
        Ok(pb::CrossCheckDecision::Resurvey) => Some(ClaimEvent::ResurveyOnCrossCheck),
        _ => {
            c.bad("decision", "must be REJECT or RESURVEY");
            None
        }
    };
    let reason = c.text("reason", &req.reason, MAX_TEXT_CHARS);
    let decided_by = c.text("decided_by", &req.decided_by, MAX_LABEL_CHARS);
    c.finish()?;
    let (event, reason) = (event.expect("checked"), reason.expect("checked"));
    let decided_by = decided_by.expect("checked");
    crate::write_path::scope::check_acting_person("decided_by", &decided_by)?;
    app.write_claim(
        "DecideCrossCheckHit",
        &req,
        &request_id,
        claim_id,
        move |conn, claim, ctx| {
            Box::pin(async move {
                let policy = claim_policy(conn, claim).await?;
                let procedure = policy.procedure();
                let records = store::list_checks(conn, claim.claim_id).await?;
                let status = status_of(&policy, claim, &records);
                if status.hits.is_empty() || !review::accepts_cross_check(claim.state, &procedure) {
                    return Err(AppError::precondition(
                        "CROSS_CHECK_HIT",
                        format!("claim/{}", claim.claim_id),
                        "no cross-check hit awaits a decision on this claim",
                    ));
                }
                let line = format!("cross-check hit ({}): {reason}", status.hits.join(", "));
                transition_under(conn, claim, &procedure, event, &decided_by, &line, &ctx).await?;
                match claim.state {
                    ClaimState::Disqualified => {
                        // An emergency advance on a household ruled out is owed
                        // back to the pool, as after a survey's rejection.
                        let advance = claim.advance;
                        raise_advance_receivable(conn, claim, advance, &ctx).await?;
                    }
                    ClaimState::UnderSurvey => {
                        // The survey finds again before anyone recommends, as
                        // after an objection (the findings stay on record).
                        claim.assessment = None;
                    }
                    other => unreachable!("the cross-check decision led to {other:?}"),
                }
                Ok(claim_response(claim))
            })
        },
    )
    .await
}
