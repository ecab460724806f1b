//! PayoutService: county filing (备案), which reserves the relief in the pool,
//! and the insurer's payout, which posts it exactly once or, when the bank
//! returns the transfer, voids it until the payout is retried.

use fangpin_domain::Fen;
use fangpin_domain::assessment::net_payout;
use fangpin_domain::claim::{ClaimEvent, ClaimState};
use fangpin_domain::ledger::{Posting, PostingKind};
use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, payout_service_server::PayoutService};
use fangpin_store::claims::ClaimRecord;
use fangpin_store::ledger as ledger_store;
use fangpin_store::{Conn, counties};

use crate::services::{
    claim_ids, claim_response, pool_balance, post_for_claim, release_reservation, reserve_relief,
    transition,
};
use crate::write_path::app::{App, WriteContext};
use crate::write_path::convert::{self, Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::write_path::error::AppError;

pub struct PayoutApi(pub App);

/// The relief still owed: the assessed amount less any emergency advance.
fn relief_due(claim: &ClaimRecord) -> Result<Fen, AppError> {
    let assessed = claim.assessment.as_ref().map(|a| a.amount).ok_or_else(|| {
        AppError::precondition(
            "ASSESSMENT",
            format!("claim/{}", claim.claim_id),
            "the claim has no assessment",
        )
    })?;
    Ok(net_payout(assessed, claim.advance))
}

/// Moves the claim to Filed and reserves what it is owed.
async fn file_and_reserve(
    conn: &mut Conn,
    claim: &mut ClaimRecord,
    event: ClaimEvent,
    actor: &str,
    reason: &str,
    ctx: &WriteContext,
) -> Result<(), AppError> {
    transition(conn, claim, event, actor, reason, ctx).await?;
    let due = relief_due(claim)?;
    reserve_relief(conn, claim, due, ctx).await?;
    // An advance larger than the relief is not lost: its excess is owed back.
    let assessed = claim.assessment.as_ref().map_or(Fen::ZERO, |a| a.amount);
    let excess = claim.advance.checked_sub(assessed).unwrap_or(Fen::ZERO);
    crate::services::raise_advance_receivable(conn, claim, excess, ctx).await?;
    Ok(())
}

/// A transfer the bank returned after PayClaim posted it: the payout entry
/// is reversed (the pool gets the money back), the relief is reserved again
/// (it is still owed, so availability is not overstated), and the claim
/// waits in `payout_failed` for the account to be corrected and the payout
/// retried. The next payout is the claim's next attempt.
async fn return_paid_claim(
    conn: &mut Conn,
    claim: &mut ClaimRecord,
    actor: &str,
    why: &str,
    ctx: &WriteContext,
) -> Result<(), AppError> {
    transition(conn, claim, ClaimEvent::ReturnPayout, actor, why, ctx).await?;
    let due = relief_due(claim)?;
    if let Some(paid) = ledger_store::standing_payout(conn, claim.claim_id).await? {
        assert_eq!(
            paid.posting.amount, due,
            "the payout paid what the claim is owed"
        );
        let new = ledger_store::NewEntry {
            county_code: &claim.county_code,
            policy_year: claim.policy_year,
            posting: paid.posting.reversed(),
            claim: Some(ledger_store::ClaimKeys {
                claim_id: claim.claim_id,
                relief_kind: claim.relief_kind,
                township_code: claim.village_code.get(..9).unwrap_or(&claim.village_code),
                payout_attempt: claim.payout_returns,
            }),
            reverses: Some(paid.entry_id),
            reference: why,
            request_id: &ctx.request_id,
            now: ctx.now,
        };
        ledger_store::append_entry(conn, new).await?;
    } else {
        // Nothing moved at payout: the advance had covered the relief.
        assert_eq!(
            due,
            Fen::ZERO,
            "a paid claim owing relief has a payout entry"
        );
    }
    claim.payout_returns += 1;
    claim.payout = None;
    reserve_relief(conn, claim, due, ctx).await?;
    Ok(())
}

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
        crate::write_path::scope::check_acting_person("filed_by", &filed_by)?;
        let response = self
            .0
            .write_claim(
                "FileClaim",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, ctx| {
                    Box::pin(async move {
                        // 信息比对 first: every required check, no hit.
                        super::review::require_clear(conn, claim).await?;
                        file_and_reserve(conn, claim, ClaimEvent::File, &filed_by, &note, &ctx)
                            .await?;
                        Ok(claim_response(claim))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn record_cross_check(
        &self,
        request: Request<pb::RecordCrossCheckRequest>,
    ) -> Result<Response<pb::CrossChecks>, Status> {
        super::review::record(&self.0, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn decide_cross_check_hit(
        &self,
        request: Request<pb::DecideCrossCheckHitRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        super::review::decide_hit(&self.0, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_cross_checks(
        &self,
        request: Request<pb::ListCrossChecksRequest>,
    ) -> Result<Response<pb::CrossChecks>, Status> {
        super::review::list(&self.0, &request.into_inner().claim_id)
            .await
            .map(Response::new)
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
        crate::write_path::scope::check_acting_person("paid_by", &paid_by)?;
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
                        let due = relief_due(claim)?;
                        // Post the reservation made at filing: the pool falls, the
                        // pending amount falls by as much, availability is unchanged.
                        let entry =
                            match ledger_store::pending_reservation(conn, claim.claim_id).await? {
                                Some(reservation) => {
                                    assert_eq!(
                                        reservation.amount, due,
                                        "the reservation holds what the claim is owed"
                                    );
                                    let posting = Posting::new(PostingKind::ReliefPayout, due)
                                        .map_err(|e| AppError::invalid("amount", e.to_string()))?;
                                    let entry =
                                        post_for_claim(conn, claim, posting, &bank_reference, &ctx)
                                            .await?;
                                    ledger_store::resolve_reservation(
                                        conn,
                                        reservation.reservation_id,
                                        Some(entry.entry_id),
                                        ctx.now,
                                    )
                                    .await?;
                                    Some(entry)
                                }
                                // The advance already covered the relief: nothing moves.
                                None if due == Fen::ZERO => None,
                                None => {
                                    return Err(AppError::Store(
                                        fangpin_store::StoreError::Corrupt(format!(
                                            "filed claim {} owes {due} without a reservation",
                                            claim.claim_id
                                        )),
                                    ));
                                }
                            };
                        claim.payout = Some(due);
                        // Which account the money went to, as it stood at
                        // payment: a later correction does not rewrite it.
                        let household = counties::get_household(conn, claim.household_id)
                            .await?
                            .ok_or_else(|| AppError::not_found("household", claim.household_id))?;
                        claim.paid_account_masked = Some(household.bank_account_masked);
                        claim.paid_bank_reference = Some(bank_reference.clone());
                        Ok(pb::PayClaimResponse {
                            claim: Some(convert::claim_to_pb(claim)),
                            entry: entry.as_ref().map(convert::entry_to_pb),
                            pool: Some(
                                pool_balance(conn, &claim.county_code, claim.policy_year).await?,
                            ),
                            ..Default::default()
                        })
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn record_payout_failure(
        &self,
        request: Request<pb::RecordPayoutFailureRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let recorded_by = c.text("recorded_by", &req.recorded_by, MAX_LABEL_CHARS);
        let bank_reference = c.text("bank_reference", &req.bank_reference, MAX_LABEL_CHARS);
        let reason = c.text("reason", &req.reason, MAX_TEXT_CHARS);
        c.finish()?;
        let (recorded_by, bank_reference, reason) = (
            recorded_by.expect("checked"),
            bank_reference.expect("checked"),
            reason.expect("checked"),
        );
        crate::write_path::scope::check_acting_person("recorded_by", &recorded_by)?;
        let response = self
            .0
            .write_claim(
                "RecordPayoutFailure",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, ctx| {
                    Box::pin(async move {
                        let why = format!("bank returned transfer {bank_reference}: {reason}");
                        if claim.state == ClaimState::Paid {
                            // Returned after it was posted: reverse the payout,
                            // owe the relief again.
                            return_paid_claim(conn, claim, &recorded_by, &why, &ctx).await?;
                            return Ok(claim_response(claim));
                        }
                        transition(
                            conn,
                            claim,
                            ClaimEvent::FailPayout,
                            &recorded_by,
                            &why,
                            &ctx,
                        )
                        .await?;
                        release_reservation(conn, claim, &ctx).await?;
                        Ok(claim_response(claim))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn retry_payout(
        &self,
        request: Request<pb::RetryPayoutRequest>,
    ) -> Result<Response<pb::ClaimResponse>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let retried_by = c.text("retried_by", &req.retried_by, MAX_LABEL_CHARS);
        let reason = c.text("reason", &req.reason, MAX_TEXT_CHARS);
        c.finish()?;
        let (retried_by, reason) = (retried_by.expect("checked"), reason.expect("checked"));
        crate::write_path::scope::check_acting_person("retried_by", &retried_by)?;
        let response = self
            .0
            .write_claim(
                "RetryPayout",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, ctx| {
                    Box::pin(async move {
                        // A return after payout reserved the relief again
                        // already; a failure before payout voided it.
                        if ledger_store::pending_reservation(conn, claim.claim_id)
                            .await?
                            .is_some()
                        {
                            transition(
                                conn,
                                claim,
                                ClaimEvent::RetryPayout,
                                &retried_by,
                                &reason,
                                &ctx,
                            )
                            .await?;
                        } else {
                            file_and_reserve(
                                conn,
                                claim,
                                ClaimEvent::RetryPayout,
                                &retried_by,
                                &reason,
                                &ctx,
                            )
                            .await?;
                        }
                        Ok(claim_response(claim))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }
}
