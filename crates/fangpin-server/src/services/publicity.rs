//! PublicityService: the village notice board (公示) and objections (异议).

use fangpin_domain::claim::{ClaimEvent, ClaimState};
use fangpin_domain::publicity::PublicityPeriod;
use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, publicity_service_server::PublicityService};
use fangpin_store::claims as claim_store;

use crate::services::{claim_ids, claim_policy, claim_response, transition};
use crate::write_path::app::App;
use crate::write_path::convert::{self, Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::write_path::error::AppError;

pub struct PublicityApi(pub App);

fn period_of(claim: &claim_store::ClaimRecord) -> Result<PublicityPeriod, AppError> {
    if claim.state != ClaimState::InPublicity {
        return Err(AppError::precondition(
            "STATE",
            format!("claim.state={}", claim.state.as_str()),
            "the claim is not in publicity",
        ));
    }
    claim.publicity.ok_or_else(|| {
        AppError::Store(fangpin_store::StoreError::Corrupt(format!(
            "claim {} in publicity without a period",
            claim.claim_id
        )))
    })
}

#[tonic::async_trait]
impl PublicityService for PublicityApi {
    async fn open_publicity(
        &self,
        request: Request<pb::OpenPublicityRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let opened_by = c.text("opened_by", &req.opened_by, MAX_LABEL_CHARS);
        c.finish()?;
        let opened_by = opened_by.expect("checked");
        crate::write_path::scope::check_acting_person("opened_by", &opened_by)?;
        let response = self
            .0
            .write_claim(
                "OpenPublicity",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, ctx| {
                    Box::pin(async move {
                        let policy = claim_policy(conn, claim).await?;
                        let period = PublicityPeriod::open(ctx.today, policy.publicity_days);
                        let reason =
                            format!("on the notice board until {}", period.last_objection_day);
                        transition(
                            conn,
                            claim,
                            ClaimEvent::OpenPublicity,
                            &opened_by,
                            &reason,
                            &ctx,
                        )
                        .await?;
                        claim.publicity = Some(period);
                        Ok(claim_response(claim))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn list_notices(
        &self,
        request: Request<pb::ListNoticesRequest>,
    ) -> Result<Response<pb::ListNoticesResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let village = c.village("village_code", &req.village_code);
        c.finish()?;
        let village = village.expect("checked");
        // A board outside the caller's scope reads as a village without
        // notices, which is what a village that does not exist reads as.
        let place = fangpin_store::places::Place {
            county_code: village.county().as_str().to_string(),
            village_code: village.as_str().to_string(),
        };
        if !self.0.sees_place(&place).await? {
            return Ok(Response::new(pb::ListNoticesResponse::default()));
        }
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let notices = claim_store::list_notices(&mut conn, village.as_str())
            .await
            .map_err(AppError::from)?;
        Ok(Response::new(pb::ListNoticesResponse {
            notices: notices
                .iter()
                .map(|n| pb::Notice {
                    claim_id: n.claim.claim_id.to_string(),
                    household_head: n.head_name.clone(),
                    // Minimal disclosure: a notice board never shows a full ID
                    // number, and reads only the stored masked form (no key).
                    id_number_masked: n.head_id_masked.clone(),
                    relief_kind: convert::relief_kind_to_pb(n.claim.relief_kind).into(),
                    relief_kind_name: n.claim.relief_kind.chinese().to_string(),
                    amount_yuan: n
                        .claim
                        .assessment
                        .as_ref()
                        .map(|a| a.amount.to_string())
                        .unwrap_or_default(),
                    opens_on: n
                        .claim
                        .publicity
                        .map(|p| p.opens_on.to_string())
                        .unwrap_or_default(),
                    last_objection_day: n
                        .claim
                        .publicity
                        .map(|p| p.last_objection_day.to_string())
                        .unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn print_notice(
        &self,
        request: Request<pb::PrintNoticeRequest>,
    ) -> Result<Response<pb::NoticeDocument>, Status> {
        super::notice::print(&self.0, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn record_deliberation(
        &self,
        request: Request<pb::RecordDeliberationRequest>,
    ) -> Result<Response<pb::ClaimReviews>, Status> {
        super::steps::record_deliberation(&self.0, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn record_township_review(
        &self,
        request: Request<pb::RecordTownshipReviewRequest>,
    ) -> Result<Response<pb::ClaimReviews>, Status> {
        super::steps::record_township_review(&self.0, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_reviews(
        &self,
        request: Request<pb::ListReviewsRequest>,
    ) -> Result<Response<pb::ClaimReviews>, Status> {
        super::steps::list_reviews(&self.0, &request.into_inner().claim_id)
            .await
            .map(Response::new)
    }

    async fn raise_objection(
        &self,
        request: Request<pb::RaiseObjectionRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let objector = c.text("objector", &req.objector, MAX_LABEL_CHARS);
        let reason = c.text("reason", &req.reason, MAX_TEXT_CHARS);
        c.finish()?;
        let (objector, reason) = (objector.expect("checked"), reason.expect("checked"));
        let response = self
            .0
            .write_claim(
                "RaiseObjection",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, ctx| {
                    Box::pin(async move {
                        let period = period_of(claim)?;
                        if !period.accepts_objection(ctx.today) {
                            return Err(AppError::precondition(
                                "PUBLICITY",
                                format!("claim/{claim_id}"),
                                format!(
                                    "objections were accepted until {}",
                                    period.last_objection_day
                                ),
                            ));
                        }
                        claim_store::insert_objection(conn, claim_id, &objector, &reason, ctx.now)
                            .await?;
                        let was_filed = claim.filed;
                        transition(
                            conn,
                            claim,
                            ClaimEvent::RaiseObjection,
                            &objector,
                            &reason,
                            &ctx,
                        )
                        .await?;
                        claim.objections += 1;
                        // A county that files before publicity (Hebi) had
                        // reserved the relief: the contested relief is no
                        // longer held, and filing after the new survey
                        // reserves what it then finds.
                        if was_filed {
                            super::release_reservation(conn, claim, &ctx).await?;
                        }
                        // The findings are contested: the survey must find
                        // again before anyone recommends (they stay in the
                        // claim's findings record and history).
                        claim.assessment = None;
                        Ok(claim_response(claim))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn close_publicity(
        &self,
        request: Request<pb::ClosePublicityRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let closed_by = c.text("closed_by", &req.closed_by, MAX_LABEL_CHARS);
        c.finish()?;
        let closed_by = closed_by.expect("checked");
        crate::write_path::scope::check_acting_person("closed_by", &closed_by)?;
        let response = self
            .0
            .write_claim(
                "ClosePublicity",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, ctx| {
                    Box::pin(async move {
                        let period = period_of(claim)?;
                        if !period.has_ended(ctx.today) {
                            return Err(AppError::precondition(
                                "PUBLICITY",
                                format!("claim/{claim_id}"),
                                format!(
                                    "the publicity runs until {}; it can close from the day after",
                                    period.last_objection_day
                                ),
                            ));
                        }
                        let reason = format!(
                            "no objection from {} to {}",
                            period.opens_on, period.last_objection_day
                        );
                        transition(
                            conn,
                            claim,
                            ClaimEvent::PassPublicity,
                            &closed_by,
                            &reason,
                            &ctx,
                        )
                        .await?;
                        Ok(claim_response(claim))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn list_objections(
        &self,
        request: Request<pb::ListObjectionsRequest>,
    ) -> Result<Response<pb::ListObjectionsResponse>, Status> {
        use fangpin_domain::publicity::{ObjectionOutcome, objection_outcomes};
        let req = request.into_inner();
        let mut c = Check::new();
        let claim_id = c.uuid("claim_id", &req.claim_id);
        c.finish()?;
        let claim_id = claim_id.expect("checked");
        self.0.authorize_claim(claim_id).await?;
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let objections = claim_store::list_objections(&mut conn, claim_id)
            .await
            .map_err(AppError::from)?;
        let history = claim_store::list_transitions(&mut conn, claim_id)
            .await
            .map_err(AppError::from)?;
        let events: Vec<&str> = history.iter().map(|t| t.event.as_str()).collect();
        let outcomes = objection_outcomes(&events);
        if outcomes.len() != objections.len() {
            return Err(AppError::Store(fangpin_store::StoreError::Corrupt(format!(
                "claim {claim_id} has {} objections and {} in its history",
                objections.len(),
                outcomes.len()
            )))
            .into());
        }
        Ok(Response::new(pb::ListObjectionsResponse {
            objections: objections
                .iter()
                .zip(outcomes)
                .map(|(o, outcome)| pb::Objection {
                    objection_id: o.objection_id.to_string(),
                    objector: o.objector.clone(),
                    reason: o.reason.clone(),
                    raised_at: o.raised_at.clone(),
                    outcome: match outcome {
                        ObjectionOutcome::Pending => pb::ObjectionOutcome::Pending,
                        ObjectionOutcome::Upheld => pb::ObjectionOutcome::Upheld,
                        ObjectionOutcome::NotUpheld => pb::ObjectionOutcome::NotUpheld,
                    }
                    .into(),
                })
                .collect(),
        }))
    }
}
