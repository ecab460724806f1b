//! PayoutService: county filing (备案) and the one payout of each claim.

use fangpin_domain::Fen;
use fangpin_domain::assessment::net_payout;
use fangpin_domain::claim::ClaimEvent;
use fangpin_domain::ledger::PostingKind;
use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, payout_service_server::PayoutService};

use crate::app::App;
use crate::convert::{self, Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::error::AppError;
use crate::services::{claim_ids, claim_response, pay_out_of_pool, pool_balance, transition};

pub struct PayoutApi(pub App);

#[tonic::async_trait]
impl PayoutService for PayoutApi {
    async fn file_claim(
        &self,
        request: Request<pb::FileClaimRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let filed_by = c.text("filed_by", &req.filed_by, MAX_LABEL_CHARS);
        let note = c.text("cross_check_note", &req.cross_check_note, MAX_TEXT_CHARS);
        c.finish()?;
        let (filed_by, note) = (filed_by.expect("checked"), note.expect("checked"));
        let response = self
            .0
            .write_claim(
                "FileClaim",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, ctx| {
                    Box::pin(async move {
                        transition(conn, claim, ClaimEvent::File, &filed_by, &note, &ctx).await?;
                        Ok(claim_response(claim))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn pay_claim(
        &self,
        request: Request<pb::PayClaimRequest>,
    ) -> Result<Response<pb::PayClaimResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let paid_by = c.text("paid_by", &req.paid_by, MAX_LABEL_CHARS);
        let bank_reference = c.text("bank_reference", &req.bank_reference, MAX_LABEL_CHARS);
        c.finish()?;
        let (paid_by, bank_reference) =
            (paid_by.expect("checked"), bank_reference.expect("checked"));
        let response = self
            .0
            .write_claim(
                "PayClaim",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, ctx| {
                    Box::pin(async move {
                        let reason = format!("paid by {paid_by}, bank reference {bank_reference}");
                        transition(conn, claim, ClaimEvent::Pay, &paid_by, &reason, &ctx).await?;
                        let assessed =
                            claim.assessment.as_ref().map(|a| a.amount).ok_or_else(|| {
                                AppError::precondition(
                                    "ASSESSMENT",
                                    format!("claim/{claim_id}"),
                                    "no assessment",
                                )
                            })?;
                        let amount = net_payout(assessed, claim.advance);
                        let (entry, pool, flag) = if amount > Fen::ZERO {
                            let (entry, pool, flag) = pay_out_of_pool(
                                conn,
                                claim,
                                PostingKind::ReliefPayout,
                                amount,
                                &bank_reference,
                                &ctx,
                            )
                            .await?;
                            (Some(entry), pool, flag)
                        } else {
                            // The advance already covered the relief: nothing moves.
                            (
                                None,
                                pool_balance(conn, &claim.county_code, claim.policy_year).await?,
                                None,
                            )
                        };
                        claim.payout = Some(amount);
                        Ok(pb::PayClaimResponse {
                            claim: Some(convert::claim_to_pb(claim)),
                            entry: entry.as_ref().map(convert::entry_to_pb),
                            pool: Some(pool),
                            top_up_flag: flag.as_ref().map(convert::flag_to_pb),
                        })
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }
}
