//! The village's deliberation (村级评议) and the township's review (乡级审核)
//! of a recommended case, for PublicityService. Each is taken only when the
//! claim's procedure (its policy version's `review_steps`) has it next; the
//! state machine (`ClaimState::apply`) is what says so. The rules of the
//! meeting are `fangpin_domain::review::deliberation_agrees`.

use fangpin_domain::claim::{ClaimEvent, ClaimState, Procedure, ReviewStep};
use fangpin_domain::review::{self, Attendance, TownshipDecision};
use fangpin_proto::tonic::Status;
use fangpin_proto::v1 as pb;
use fangpin_store::claims::ClaimRecord;
use fangpin_store::review::{
    self as store, DeliberationRecord, MAX_REVIEW_RECORDS, TownshipReviewRecord,
};
use fangpin_store::{Conn, timestamp};

use crate::services::{claim_ids, claim_procedure, load_claim, survey_round, transition_under};
use crate::write_path::app::App;
use crate::write_path::convert::{self, Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::write_path::error::AppError;

fn township_decision_to_pb(d: TownshipDecision) -> pb::TownshipDecision {
    match d {
        TownshipDecision::Approved => pb::TownshipDecision::Approved,
        TownshipDecision::SentBack => pb::TownshipDecision::SentBack,
    }
}

async fn reviews(
    conn: &mut Conn,
    claim: &ClaimRecord,
    procedure: &Procedure,
) -> Result<pb::ClaimReviews, AppError> {
    let deliberations = store::list_deliberations(conn, claim.claim_id).await?;
    let townships = store::list_township_reviews(conn, claim.claim_id).await?;
    Ok(pb::ClaimReviews {
        claim_id: claim.claim_id.to_string(),
        state: convert::state_to_pb(claim.state).into(),
        steps: procedure
            .steps()
            .iter()
            .map(|s| i32::from(convert::review_step_to_pb(*s)))
            .collect(),
        next_step: claim
            .state
            .step_due(procedure)
            .flatten()
            .map_or(pb::ReviewStep::Unspecified, convert::review_step_to_pb)
            .into(),
        deliberations: deliberations
            .into_iter()
            .map(|d| pb::Deliberation {
                seq: d.seq,
                held_on: d.held_on,
                members: d.members,
                present: d.present,
                in_favour: d.in_favour,
                agreed: d.agreed,
                minutes_evidence_id: d.minutes_evidence_id.to_string(),
                recorded_by: d.recorded_by,
                note: d.note,
                recorded_at: d.recorded_at,
                findings_seq: d.findings_seq,
            })
            .collect(),
        township_reviews: townships
            .into_iter()
            .map(|t| pb::TownshipReview {
                seq: t.seq,
                decision: township_decision_to_pb(t.decision).into(),
                reason: t.reason,
                reviewed_by: t.reviewed_by,
                reviewed_at: t.reviewed_at,
                findings_seq: t.findings_seq,
            })
            .collect(),
    })
}

/// Refuses a step the claim's procedure does not have next, before any
/// record is written, naming what the claim waits for instead.
fn require_next(
    claim: &ClaimRecord,
    procedure: &Procedure,
    step: ReviewStep,
    what: &str,
) -> Result<(), AppError> {
    if claim.state.step_due(procedure) == Some(Some(step)) {
        return Ok(());
    }
    let steps: Vec<&str> = procedure.steps().iter().map(|s| s.as_str()).collect();
    Err(AppError::precondition(
        "STATE",
        format!("claim.state={}", claim.state.as_str()),
        format!(
            "a claim in state {} does not wait for {what} (its steps: {})",
            claim.state.as_str(),
            steps.join(", ")
        ),
    ))
}

/// Refuses a new record once a claim has as many as it may keep.
fn require_room(claim: &ClaimRecord, kept: usize) -> Result<(), AppError> {
    if kept >= MAX_REVIEW_RECORDS {
        return Err(AppError::precondition(
            "TOO_MANY",
            format!("claim/{}", claim.claim_id),
            format!("a claim keeps at most {MAX_REVIEW_RECORDS} records of each review"),
        ));
    }
    Ok(())
}

pub async fn record_deliberation(
    app: &App,
    req: pb::RecordDeliberationRequest,
) -> Result<pb::ClaimReviews, Status> {
    let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
    let mut c = Check::new();
    let held_on = c.date("held_on", &req.held_on);
    let minutes = c.uuid("minutes_evidence_id", &req.minutes_evidence_id);
    let recorded_by = c.text("recorded_by", &req.recorded_by, MAX_LABEL_CHARS);
    let note = c.optional_text("note", &req.note, MAX_TEXT_CHARS);
    c.finish()?;
    let (held_on, minutes) = (held_on.expect("checked"), minutes.expect("checked"));
    let (recorded_by, note) = (recorded_by.expect("checked"), note.expect("checked"));
    crate::write_path::scope::check_acting_person("recorded_by", &recorded_by)?;
    let attendance = Attendance {
        members: req.members,
        present: req.present,
        in_favour: req.in_favour,
    };
    app.write_claim(
        "RecordDeliberation",
        &req,
        &request_id,
        claim_id,
        move |conn, claim, ctx| {
            Box::pin(async move {
                let procedure = claim_procedure(conn, claim).await?;
                let step = ReviewStep::VillageDeliberation;
                require_next(claim, &procedure, step, "a village deliberation")?;
                let agreed =
                    review::deliberation_agrees(attendance, held_on, claim.intake_date, ctx.today)?;
                // The minutes are one of the claim's own files.
                let file = fangpin_store::evidence::get(conn, minutes).await?;
                if file.is_none_or(|f| f.claim_id != claim.claim_id) {
                    return Err(AppError::invalid(
                        "minutes_evidence_id",
                        "must be an evidence file uploaded to this claim",
                    ));
                }
                let kept = store::list_deliberations(conn, claim.claim_id).await?.len();
                require_room(claim, kept)?;
                let record = DeliberationRecord {
                    seq: 0,
                    findings_seq: survey_round(claim),
                    held_on: held_on.to_string(),
                    members: attendance.members,
                    present: attendance.present,
                    in_favour: attendance.in_favour,
                    agreed,
                    minutes_evidence_id: minutes,
                    recorded_by: recorded_by.clone(),
                    note: note.clone(),
                    recorded_at: timestamp(ctx.now),
                };
                let seq =
                    store::append_deliberation(conn, claim.claim_id, &record, &ctx.request_id)
                        .await?;
                let vote = format!(
                    "village deliberation #{seq} on {held_on}: {} of {} present, {} in favour",
                    attendance.present, attendance.members, attendance.in_favour
                );
                let (event, line) = if agreed {
                    (ClaimEvent::PassDeliberation, format!("{vote}; agreed"))
                } else {
                    let line = format!("{vote}; not agreed, back to survey");
                    (ClaimEvent::FailDeliberation, line)
                };
                transition_under(conn, claim, &procedure, event, &recorded_by, &line, &ctx).await?;
                if !agreed {
                    // The survey finds again before anyone recommends, as
                    // after an objection (the findings stay on record).
                    claim.assessment = None;
                }
                reviews(conn, claim, &procedure).await
            })
        },
    )
    .await
}

pub async fn record_township_review(
    app: &App,
    req: pb::RecordTownshipReviewRequest,
) -> Result<pb::ClaimReviews, Status> {
    let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
    let mut c = Check::new();
    let decision = match pb::TownshipDecision::try_from(req.decision) {
        Ok(pb::TownshipDecision::Approved) => Some(TownshipDecision::Approved),
        Ok(pb::TownshipDecision::SentBack) => Some(TownshipDecision::SentBack),
        _ => {
            c.bad("decision", "must be APPROVED or SENT_BACK");
            None
        }
    };
    let reason = match decision {
        // A send-back says why; an approval may.
        Some(TownshipDecision::SentBack) => c.text("reason", &req.reason, MAX_TEXT_CHARS),
        _ => c.optional_text("reason", &req.reason, MAX_TEXT_CHARS),
    };
    let reviewed_by = c.text("reviewed_by", &req.reviewed_by, MAX_LABEL_CHARS);
    c.finish()?;
    let (decision, reason) = (decision.expect("checked"), reason.expect("checked"));
    let reviewed_by = reviewed_by.expect("checked");
    crate::write_path::scope::check_acting_person("reviewed_by", &reviewed_by)?;
    app.write_claim(
        "RecordTownshipReview",
        &req,
        &request_id,
        claim_id,
        move |conn, claim, ctx| {
            Box::pin(async move {
                let event = match decision {
                    TownshipDecision::Approved => ClaimEvent::ApproveTownshipReview,
                    TownshipDecision::SentBack => ClaimEvent::SendBackFromTownship,
                };
                let procedure = claim_procedure(conn, claim).await?;
                require_next(
                    claim,
                    &procedure,
                    ReviewStep::TownshipReview,
                    "a township review",
                )?;
                let kept = store::list_township_reviews(conn, claim.claim_id)
                    .await?
                    .len();
                require_room(claim, kept)?;
                let record = TownshipReviewRecord {
                    seq: 0,
                    findings_seq: survey_round(claim),
                    decision,
                    reason: reason.clone(),
                    reviewed_by: reviewed_by.clone(),
                    reviewed_at: timestamp(ctx.now),
                };
                let seq =
                    store::append_township_review(conn, claim.claim_id, &record, &ctx.request_id)
                        .await?;
                let line = match decision {
                    TownshipDecision::Approved if reason.is_empty() => {
                        format!("township review #{seq}: approved")
                    }
                    TownshipDecision::Approved => {
                        format!("township review #{seq}: approved: {reason}")
                    }
                    TownshipDecision::SentBack => {
                        format!("township review #{seq}: sent back to survey: {reason}")
                    }
                };
                transition_under(conn, claim, &procedure, event, &reviewed_by, &line, &ctx).await?;
                if claim.state == ClaimState::UnderSurvey {
                    claim.assessment = None;
                }
                reviews(conn, claim, &procedure).await
            })
        },
    )
    .await
}

pub async fn list_reviews(app: &App, claim_id: &str) -> Result<pb::ClaimReviews, Status> {
    let mut c = Check::new();
    let claim_id = c.uuid("claim_id", claim_id);
    c.finish()?;
    let claim_id = claim_id.expect("checked");
    app.authorize_claim(claim_id).await?;
    let mut conn = app.store.read().await.map_err(AppError::from)?;
    let claim = load_claim(&mut conn, claim_id).await?;
    let procedure = claim_procedure(&mut conn, &claim).await?;
    Ok(reviews(&mut conn, &claim, &procedure).await?)
}
