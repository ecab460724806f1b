//! SurveyService: the insurer's field survey (入户查勘), its deadline in Chinese
//! working days, the assessment and the recommendation.

use fangpin_domain::Fen;
use fangpin_domain::assessment::{Findings, StatusEvidence, assess};
use fangpin_domain::claim::{ClaimEvent, ClaimState};
use fangpin_domain::policy::ReliefKind;
use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, survey_service_server::SurveyService};
use fangpin_store::claims::{self as claim_store, StoredAssessment};
use fangpin_store::counties;
use fangpin_store::screening as screening_store;

use crate::services::{claim_ids, claim_policy, claim_response, transition};
use crate::write_path::app::App;
use crate::write_path::convert::{self, Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::write_path::error::AppError;

pub const MAX_EVIDENCE_REFS: usize = 50;
pub const MAX_QUEUE_PAGE: u32 = 500;

pub struct SurveyApi(pub App);

fn must_be_assigned_surveyor(
    claim: &claim_store::ClaimRecord,
    surveyor: &str,
) -> Result<(), AppError> {
    if claim.state != ClaimState::UnderSurvey {
        return Err(AppError::precondition(
            "STATE",
            format!("claim.state={}", claim.state.as_str()),
            "the claim is not under survey",
        ));
    }
    if claim.surveyor.as_deref() != Some(surveyor) {
        return Err(AppError::precondition(
            "SURVEYOR",
            format!("claim/{}", claim.claim_id),
            "the claim is assigned to another surveyor",
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl SurveyService for SurveyApi {
    async fn assign_survey(
        &self,
        request: Request<pb::AssignSurveyRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let surveyor = c.text("surveyor", &req.surveyor, MAX_LABEL_CHARS);
        let insurer = c.text("insurer", &req.insurer, MAX_LABEL_CHARS);
        let assigned_by = c.text("assigned_by", &req.assigned_by, MAX_LABEL_CHARS);
        c.finish()?;
        let (surveyor, insurer, assigned_by) = (
            surveyor.expect("checked"),
            insurer.expect("checked"),
            assigned_by.expect("checked"),
        );
        crate::write_path::scope::check_acting_person("assigned_by", &assigned_by)?;
        let response = self
            .0
            .write_claim(
                "AssignSurvey",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, ctx| {
                    Box::pin(async move {
                        let county = counties::get_county(conn, &claim.county_code)
                            .await?
                            .ok_or_else(|| AppError::not_found("county", &claim.county_code))?;
                        if county.insurer != insurer {
                            return Err(AppError::invalid(
                                "insurer",
                                format!(
                                    "county {} is served by {}",
                                    county.county_code, county.insurer
                                ),
                            ));
                        }
                        let reason = format!("assigned to {surveyor} of {insurer}");
                        transition(
                            conn,
                            claim,
                            ClaimEvent::AssignSurvey,
                            &assigned_by,
                            &reason,
                            &ctx,
                        )
                        .await?;
                        claim.surveyor = Some(surveyor);
                        Ok(claim_response(claim))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn record_findings(
        &self,
        request: Request<pb::RecordFindingsRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let surveyor = c.text("surveyor", &req.surveyor, MAX_LABEL_CHARS);
        let income = c.money(
            "verified_income_per_capita_yuan",
            &req.verified_income_per_capita_yuan,
        );
        // An income-drop claim has no cost: its figure is the income after
        // the drop, against the earlier incomes.
        let cost: Option<Option<Fen>> = match (
            req.verified_cost_yuan.is_empty(),
            req.prior_incomes_per_capita_yuan.is_empty(),
        ) {
            (true, false) => Some(None),
            (true, true) => {
                c.bad(
                    "verified_cost_yuan",
                    "is required (an income-drop claim leaves it empty and gives prior_incomes_per_capita_yuan)",
                );
                None
            }
            (false, _) => c
                .money("verified_cost_yuan", &req.verified_cost_yuan)
                .map(Some),
        };
        if req.prior_incomes_per_capita_yuan.len()
            > fangpin_domain::policy::MAX_BASELINE_YEARS as usize
        {
            c.bad(
                "prior_incomes_per_capita_yuan",
                format!(
                    "at most {} earlier incomes",
                    fangpin_domain::policy::MAX_BASELINE_YEARS
                ),
            );
        }
        let prior: Vec<Option<Fen>> = req
            .prior_incomes_per_capita_yuan
            .iter()
            .take(fangpin_domain::policy::MAX_BASELINE_YEARS as usize)
            .enumerate()
            .map(|(i, t)| c.money(&format!("prior_incomes_per_capita_yuan[{i}]"), t))
            .collect();
        if req.income_evidence_refs.len() > MAX_EVIDENCE_REFS {
            c.bad(
                "income_evidence_refs",
                format!("at most {MAX_EVIDENCE_REFS} references"),
            );
        }
        let income_evidence: Vec<Option<String>> = req
            .income_evidence_refs
            .iter()
            .take(MAX_EVIDENCE_REFS)
            .enumerate()
            .map(|(i, r)| c.text(&format!("income_evidence_refs[{i}]"), r, MAX_LABEL_CHARS))
            .collect();
        let notes = c.optional_text("notes", &req.notes, MAX_TEXT_CHARS);
        if req.evidence_refs.len() > MAX_EVIDENCE_REFS {
            c.bad(
                "evidence_refs",
                format!("at most {MAX_EVIDENCE_REFS} references"),
            );
        }
        let evidence: Vec<Option<String>> = req
            .evidence_refs
            .iter()
            .take(MAX_EVIDENCE_REFS)
            .enumerate()
            .map(|(i, r)| c.text(&format!("evidence_refs[{i}]"), r, MAX_LABEL_CHARS))
            .collect();
        c.finish()?;
        let surveyor = surveyor.expect("checked");
        crate::write_path::scope::check_acting_person("surveyor", &surveyor)?;
        let (income, cost, notes) = (
            income.expect("checked"),
            cost.expect("checked"),
            notes.expect("checked"),
        );
        let evidence: Vec<String> = evidence.into_iter().map(|e| e.expect("checked")).collect();
        let prior: Vec<Fen> = prior.into_iter().map(|p| p.expect("checked")).collect();
        let income_evidence: Vec<String> = income_evidence
            .into_iter()
            .map(|e| e.expect("checked"))
            .collect();
        let response = self
            .0
            .write_claim(
                "RecordFindings",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, ctx| {
                    Box::pin(async move {
                        must_be_assigned_surveyor(claim, &surveyor)?;
                        // Findings cite only evidence the claim has.
                        super::evidence::check_citations(conn, claim.claim_id, &evidence).await?;
                        let household = counties::get_household(conn, claim.household_id)
                            .await?
                            .ok_or_else(|| AppError::not_found("household", claim.household_id))?;
                        let policy = claim_policy(conn, claim).await?;
                        let income_drop = claim.relief_kind == ReliefKind::IncomeDrop;
                        let cost = match (cost, income_drop) {
                            (Some(_), true) => {
                                return Err(AppError::invalid(
                                    "verified_cost_yuan",
                                    "an income-drop claim has no cost: leave it empty and give the earlier incomes",
                                ));
                            }
                            (None, true) => Fen::ZERO,
                            (Some(cost), false) => cost,
                            (None, false) => {
                                return Err(AppError::invalid(
                                    "prior_incomes_per_capita_yuan",
                                    "earlier incomes are recorded for income-drop claims only; give verified_cost_yuan",
                                ));
                            }
                        };
                        if income_drop && income_evidence.is_empty() {
                            return Err(AppError::invalid(
                                "income_evidence_refs",
                                "an income drop needs the evidence of both incomes",
                            ));
                        }
                        if !income_drop && !income_evidence.is_empty() {
                            return Err(AppError::invalid(
                                "income_evidence_refs",
                                "income evidence is recorded for income-drop claims only",
                            ));
                        }
                        // The status civil affairs verified as of the event
                        // date decides any status terms; the assessment names
                        // the record.
                        let status = screening_store::verification_as_of(
                            conn,
                            claim.household_id,
                            claim.event_date,
                        )
                        .await?
                        .map(|v| StatusEvidence {
                            status: v.status.relief_status(),
                            verified_on: v.verified_on,
                            import_id: v.import_id.to_string(),
                        });
                        let findings = Findings {
                            household_type: household.household_type,
                            relief_kind: claim.relief_kind,
                            income_per_capita: income,
                            cost,
                            prior_incomes: prior,
                            members: household.persons,
                            status,
                        };
                        let mut assessment = assess(&policy, &findings).map_err(|e| match e.field() {
                            Some(field) => AppError::invalid(field, e.to_string()),
                            None => AppError::precondition(
                                "POLICY",
                                format!("claim/{claim_id}"),
                                e.to_string(),
                            ),
                        })?;
                        if let Some(drop) = assessment.computation.income_drop.as_mut() {
                            drop.income_evidence_refs = income_evidence;
                        }
                        let mut stored = StoredAssessment {
                            verified_income_per_capita: income,
                            // Income drop: the gap the bands were applied to.
                            verified_cost: assessment
                                .computation
                                .income_drop
                                .as_ref()
                                .map_or(cost, |d| d.relief_base),
                            income_limit: assessment.income_limit,
                            threshold: assessment.threshold,
                            eligible: assessment.eligible,
                            amount: assessment.amount,
                            explanation: assessment.explanation,
                            notes,
                            evidence_refs: evidence,
                            surveyed_by: surveyor.clone(),
                            computation: Some(assessment.computation),
                            findings_seq: 0,
                        };
                        // Every set is kept and shown in the history; a
                        // second survey never overwrites the first's record.
                        let at = fangpin_store::timestamp(ctx.now);
                        stored.findings_seq = claim_store::append_findings(
                            conn,
                            claim.claim_id,
                            &stored,
                            &at,
                            &ctx.request_id,
                        )
                        .await?;
                        let note = claim_store::TransitionRecord {
                            from_state: Some(claim.state),
                            to_state: claim.state,
                            event: "record_findings".into(),
                            actor: surveyor,
                            reason: format!(
                                "findings #{}: income per capita {income}, cost {cost}, {} relief {}",
                                stored.findings_seq,
                                if stored.eligible { "eligible," } else { "not eligible," },
                                stored.amount
                            ),
                            at,
                        };
                        claim_store::append_transition(conn, claim.claim_id, &note, &ctx.request_id)
                            .await?;
                        claim.assessment = Some(stored);
                        Ok(claim_response(claim))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn recommend(
        &self,
        request: Request<pb::RecommendRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let surveyor = c.text("surveyor", &req.surveyor, MAX_LABEL_CHARS);
        let reason = c.text("reason", &req.reason, MAX_TEXT_CHARS);
        c.finish()?;
        let (surveyor, reason) = (surveyor.expect("checked"), reason.expect("checked"));
        crate::write_path::scope::check_acting_person("surveyor", &surveyor)?;
        let approve = req.approve;
        let response = self
            .0
            .write_claim("Recommend", &req, &request_id, claim_id, move |conn, claim, ctx| {
                Box::pin(async move {
                    must_be_assigned_surveyor(claim, &surveyor)?;
                    // After an objection the case is surveyed again: the
                    // objection cleared the contested findings, so a
                    // recommendation either way needs new ones.
                    if claim.objections > 0 && claim.assessment.is_none() {
                        return Err(AppError::precondition(
                            "REVERIFICATION",
                            format!("claim/{claim_id}"),
                            "an objection sent the claim back for re-verification: record new findings before recommending",
                        ));
                    }
                    let event = if approve {
                        match &claim.assessment {
                            Some(a) if a.eligible && a.amount > Fen::ZERO => {}
                            Some(_) => {
                                return Err(AppError::precondition(
                                    "ASSESSMENT",
                                    format!("claim/{claim_id}"),
                                    "the recorded findings do not make the household eligible for any relief",
                                ));
                            }
                            None => {
                                return Err(AppError::precondition(
                                    "ASSESSMENT",
                                    format!("claim/{claim_id}"),
                                    "record the survey findings before recommending approval",
                                ));
                            }
                        }
                        ClaimEvent::RecommendApproval
                    } else {
                        ClaimEvent::RecommendRejection
                    };
                    transition(conn, claim, event, &surveyor, &reason, &ctx).await?;
                    if event == ClaimEvent::RecommendRejection {
                        // Help given first on a case the survey then rejects
                        // is owed back whole.
                        crate::services::raise_advance_receivable(conn, claim, claim.advance, &ctx)
                            .await?;
                    }
                    claim.recommendation_reason = Some(reason);
                    Ok(claim_response(claim))
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn list_work_queue(
        &self,
        request: Request<pb::ListWorkQueueRequest>,
    ) -> Result<Response<pb::ListWorkQueueResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let surveyor = c.text("surveyor", &req.surveyor, MAX_LABEL_CHARS);
        let size = c.page_size("page_size", req.page_size, MAX_QUEUE_PAGE);
        let after = queue_token(&mut c, &req.page_token);
        c.finish()?;
        let (size, surveyor) = (size.expect("checked"), surveyor.expect("checked"));
        let mut listing = self.0.listing();
        // A surveyor's queue is its own; the county office and auditors may
        // look at anyone's, row by row within their scope.
        if let Some(own) = listing.own_surveyor()
            && own != surveyor
        {
            return Err(AppError::invalid(
                "surveyor",
                "must be the caller's own account (the token's sub)",
            )
            .into());
        }
        let today = self.0.today();
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let claims = claim_store::list_surveys(&mut conn, &surveyor, after.expect("checked"), size)
            .await
            .map_err(AppError::from)?;
        drop(conn);
        let calendar = &self.0.calendar;
        let mut items = Vec::with_capacity(claims.len());
        for claim in &claims {
            if !listing.shows(&claim.place()).await? {
                continue;
            }
            // Past the covered years the count is Monday to Friday and
            // marked provisional: the queue never fails for want of a year.
            let (left, provisional) = if claim.survey_deadline >= today {
                let n = calendar.working_days_provisional(today, claim.survey_deadline);
                (i64::from(n.days), n.provisional)
            } else {
                let n = calendar.working_days_provisional(claim.survey_deadline, today);
                (-i64::from(n.days), n.provisional)
            };
            items.push(pb::WorkItem {
                claim: Some(convert::claim_to_pb(claim)),
                working_days_left: i32::try_from(left).unwrap_or(i32::MIN),
                overdue: today > claim.survey_deadline,
                deadline_provisional: provisional || claim.survey_deadline_provisional,
            });
        }
        let next_page_token = convert::next_page_token(&claims, size, |c| {
            format!("{}/{}", c.survey_deadline, c.claim_id)
        });
        Ok(Response::new(pb::ListWorkQueueResponse {
            items,
            next_page_token,
        }))
    }
}

/// The work queue's page token: the last row's survey deadline and claim
/// id, "YYYY-MM-DD/uuid", as this service wrote it.
fn queue_token(c: &mut Check, token: &str) -> Option<Option<(chrono::NaiveDate, uuid::Uuid)>> {
    if token.is_empty() {
        return Some(None);
    }
    let parsed = token
        .split_once('/')
        .and_then(|(d, id)| Some((d.parse().ok()?, id.parse().ok()?)));
    if parsed.is_none() {
        c.bad("page_token", "is not a token this service returned");
        return None;
    }
    Some(parsed)
}
