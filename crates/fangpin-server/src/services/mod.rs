//! One module per gRPC service. Handlers parse the request at the edge, take
//! the county's write lock through `App::write`, apply domain rules, and store
//! the result; the helpers here are the steps several services share.

pub mod audit;
pub mod claims;
pub mod deadlines;
pub mod emergency;
pub mod enrollment;
pub mod evidence;
pub mod feed_import;
pub mod follow_up;
pub mod ledger;
pub mod monitoring;
pub mod notice;
pub mod notice_pdf;
pub mod outlook;
pub mod payout;
pub mod policy;
pub mod publicity;
pub mod review;
pub mod roster;
pub mod screening;
pub mod service_info;
pub mod steps;
pub mod survey;

use fangpin_domain::Fen;
use fangpin_domain::claim::{ClaimEvent, Procedure};
use fangpin_domain::ledger::{Posting, PostingKind, shortfall};
use fangpin_domain::policy::Policy;
use fangpin_domain::year::YearTotals;
use fangpin_proto::v1 as pb;
use fangpin_store::claims::{self as claim_store, ClaimRecord, TransitionRecord};
use fangpin_store::ledger::{
    self as ledger_store, ClaimKeys, EntryRecord, NewEntry, TopUpFlagRecord,
};
use fangpin_store::{Conn, counties, timestamp};
use uuid::Uuid;

use crate::write_path::app::WriteContext;
use crate::write_path::convert::{self, Check};
use crate::write_path::error::AppError;

pub async fn load_claim(conn: &mut Conn, claim_id: Uuid) -> Result<ClaimRecord, AppError> {
    claim_store::get_claim(conn, claim_id)
        .await?
        .ok_or_else(|| AppError::not_found("claim", claim_id))
}

/// Parses the request id and the claim id every claim RPC carries.
pub fn claim_ids(request_id: &str, claim_id: &str) -> Result<(String, Uuid), AppError> {
    let mut c = Check::new();
    let request = c.request_id(request_id);
    let claim = c.uuid("claim_id", claim_id);
    c.finish()?;
    Ok((
        request.expect("checked").to_string(),
        claim.expect("checked"),
    ))
}

/// The policy version the claim was taken in under.
pub async fn claim_policy(conn: &mut Conn, claim: &ClaimRecord) -> Result<Policy, AppError> {
    let record = counties::get_policy(
        conn,
        &claim.county_code,
        claim.policy_year,
        Some(claim.policy_version),
    )
    .await?
    .ok_or_else(|| {
        AppError::Store(fangpin_store::StoreError::Corrupt(format!(
            "claim {} names missing policy version {}",
            claim.claim_id, claim.policy_version
        )))
    })?;
    Ok(record.policy)
}

/// The county's steps the claim follows: those of the policy version it
/// was taken in under, so a later version never changes a case under way.
pub async fn claim_procedure(conn: &mut Conn, claim: &ClaimRecord) -> Result<Procedure, AppError> {
    Ok(claim_policy(conn, claim).await?.procedure())
}

/// The survey round a review or a departments' check belongs to: the
/// findings the recommendation rests on (0 before any).
pub fn survey_round(claim: &ClaimRecord) -> u32 {
    claim.assessment.as_ref().map_or(0, |a| a.findings_seq)
}

/// Moves the claim through the state machine, under its policy version's
/// procedure, and records who did it and why.
pub async fn transition(
    conn: &mut Conn,
    claim: &mut ClaimRecord,
    event: ClaimEvent,
    actor: &str,
    reason: &str,
    ctx: &WriteContext,
) -> Result<(), AppError> {
    let procedure = claim_procedure(conn, claim).await?;
    transition_under(conn, claim, &procedure, event, actor, reason, ctx).await
}

/// `transition`, for a handler that has read the claim's procedure already.
pub async fn transition_under(
    conn: &mut Conn,
    claim: &mut ClaimRecord,
    procedure: &Procedure,
    event: ClaimEvent,
    actor: &str,
    reason: &str,
    ctx: &WriteContext,
) -> Result<(), AppError> {
    let from = claim.state;
    claim.state = from.apply(event, procedure)?;
    claim.filed = claim.state.is_filed(procedure);
    let record = TransitionRecord {
        from_state: Some(from),
        to_state: claim.state,
        event: event.as_str().to_string(),
        actor: actor.to_string(),
        reason: reason.to_string(),
        at: timestamp(ctx.now),
    };
    claim_store::append_transition(conn, claim.claim_id, &record, &ctx.request_id).await?;
    Ok(())
}

/// The year's totals from the cached balances and the pending reservations.
pub async fn year_totals(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<(YearTotals, u64), AppError> {
    let (balances, entries) = ledger_store::balances(conn, county_code, policy_year).await?;
    let (_, pending) = ledger_store::pending_totals(conn, county_code, policy_year).await?;
    Ok((YearTotals::new(&balances, pending), entries))
}

pub async fn pool_balance(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<pb::PoolBalance, AppError> {
    let (totals, entries) = year_totals(conn, county_code, policy_year).await?;
    let state = ledger_store::year_state(conn, county_code, policy_year).await?;
    Ok(convert::pool_to_pb(
        county_code,
        policy_year,
        &totals,
        entries,
        state,
    ))
}

/// Raises a top-up flag for the part of `amount` that the available balance
/// (posted pool less reservations) could not cover; earlier shortfalls already
/// have flags of their own.
async fn flag_uncovered(
    conn: &mut Conn,
    claim: &ClaimRecord,
    available_before: Fen,
    available_after: Fen,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<TopUpFlagRecord>, AppError> {
    let uncovered = shortfall(available_after)
        .checked_sub(shortfall(available_before))
        .expect("bounded shortfalls");
    if uncovered <= Fen::ZERO {
        return Ok(None);
    }
    let flag = ledger_store::raise_flag(
        conn,
        &claim.county_code,
        claim.policy_year,
        claim.claim_id,
        uncovered,
        now,
    )
    .await?;
    Ok(Some(flag))
}

/// A payment out of the pool for a claim that was not reserved first (an
/// emergency advance). It is never held back for lack of funds: if it takes
/// the available balance below zero, a top-up flag records the uncovered part.
pub async fn pay_out_of_pool(
    conn: &mut Conn,
    claim: &ClaimRecord,
    kind: PostingKind,
    amount: Fen,
    reference: &str,
    ctx: &WriteContext,
) -> Result<(EntryRecord, pb::PoolBalance, Option<TopUpFlagRecord>), AppError> {
    let posting =
        Posting::new(kind, amount).map_err(|e| AppError::invalid("amount_yuan", e.to_string()))?;
    let (before, _) = year_totals(conn, &claim.county_code, claim.policy_year).await?;
    let entry = post_for_claim(conn, claim, posting, reference, ctx).await?;
    let (after, _) = year_totals(conn, &claim.county_code, claim.policy_year).await?;
    assert_eq!(
        before.pool.checked_sub(amount),
        Some(after.pool),
        "the pool falls by exactly the amount paid"
    );
    let flag = flag_uncovered(conn, claim, before.available(), after.available(), ctx.now).await?;
    Ok((
        entry,
        pool_balance(conn, &claim.county_code, claim.policy_year).await?,
        flag,
    ))
}

pub async fn post_for_claim(
    conn: &mut Conn,
    claim: &ClaimRecord,
    posting: Posting,
    reference: &str,
    ctx: &WriteContext,
) -> Result<EntryRecord, AppError> {
    let new = NewEntry {
        county_code: &claim.county_code,
        policy_year: claim.policy_year,
        posting,
        claim: Some(ClaimKeys {
            claim_id: claim.claim_id,
            relief_kind: claim.relief_kind,
            township_code: claim.village_code.get(..9).unwrap_or(&claim.village_code),
            payout_attempt: claim.payout_returns,
        }),
        reverses: None,
        reference,
        request_id: &ctx.request_id,
        now: ctx.now,
    };
    Ok(ledger_store::append_entry(conn, new).await?)
}

/// Filing reserves the relief still to pay (two-phase: reserve, then post or
/// void). A reservation the available balance cannot cover raises a top-up flag.
pub async fn reserve_relief(
    conn: &mut Conn,
    claim: &ClaimRecord,
    amount: Fen,
    ctx: &WriteContext,
) -> Result<Option<TopUpFlagRecord>, AppError> {
    if amount == Fen::ZERO {
        return Ok(None);
    }
    let (before, _) = year_totals(conn, &claim.county_code, claim.policy_year).await?;
    ledger_store::insert_reservation(
        conn,
        &claim.county_code,
        claim.policy_year,
        claim.claim_id,
        amount,
        ctx.now,
    )
    .await?;
    let (after, _) = year_totals(conn, &claim.county_code, claim.policy_year).await?;
    assert_eq!(
        before.available().checked_sub(amount),
        Some(after.available()),
        "a reservation lowers availability by its amount"
    );
    flag_uncovered(conn, claim, before.available(), after.available(), ctx.now).await
}

/// Voids the claim's pending reservation, if it has one, and clears the
/// top-up flags that only it had made necessary.
pub async fn release_reservation(
    conn: &mut Conn,
    claim: &ClaimRecord,
    ctx: &WriteContext,
) -> Result<(), AppError> {
    if let Some(reservation) = ledger_store::pending_reservation(conn, claim.claim_id).await? {
        ledger_store::resolve_reservation(conn, reservation.reservation_id, None, ctx.now).await?;
        settle_flags(conn, &claim.county_code, claim.policy_year, None, ctx.now).await?;
    }
    Ok(())
}

/// Clears open top-up flags once every reservation is covered again.
pub async fn settle_flags(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
    by_entry: Option<uuid::Uuid>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<TopUpFlagRecord>, AppError> {
    let (totals, _) = year_totals(conn, county_code, policy_year).await?;
    if totals.available() < Fen::ZERO {
        // A partial top-up leaves county finance's call standing.
        return Ok(Vec::new());
    }
    Ok(ledger_store::clear_flags_by(conn, county_code, policy_year, by_entry, now).await?)
}

/// Records that `excess` of the claim's emergency advance is owed back to
/// the pool (the advance was larger than the relief, or the survey rejected
/// the claim), once per claim, with a line in its history.
pub async fn raise_advance_receivable(
    conn: &mut Conn,
    claim: &ClaimRecord,
    excess: Fen,
    ctx: &WriteContext,
) -> Result<(), AppError> {
    if excess <= Fen::ZERO
        || ledger_store::get_receivable(conn, claim.claim_id)
            .await?
            .is_some()
    {
        return Ok(());
    }
    ledger_store::insert_receivable(
        conn,
        &claim.county_code,
        claim.policy_year,
        claim.claim_id,
        excess,
        ctx.now,
    )
    .await?;
    let relief = claim.assessment.as_ref().map_or(Fen::ZERO, |a| a.amount);
    let note = TransitionRecord {
        from_state: Some(claim.state),
        to_state: claim.state,
        event: "advance_receivable".into(),
        actor: "system:ledger".into(),
        reason: format!(
            "emergency advance {} exceeds the relief {relief}: {excess} is owed back to the pool \
             (recover it or write it off)",
            claim.advance
        ),
        at: timestamp(ctx.now),
    };
    claim_store::append_transition(conn, claim.claim_id, &note, &ctx.request_id).await?;
    Ok(())
}

pub fn claim_response(claim: &ClaimRecord) -> pb::ClaimResponse {
    pb::ClaimResponse {
        claim: Some(convert::claim_to_pb(claim)),
    }
}
