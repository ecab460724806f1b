//! One module per gRPC service. Handlers parse the request at the edge, take
//! the county's write lock through `App::write`, apply domain rules, and store
//! the result; the helpers here are the steps several services share.

pub mod claims;
pub mod enrollment;
pub mod ledger;
pub mod payout;
pub mod policy;
pub mod publicity;
pub mod survey;

use fangpin_domain::Fen;
use fangpin_domain::claim::ClaimEvent;
use fangpin_domain::ledger::{Posting, PostingKind, shortfall};
use fangpin_domain::policy::Policy;
use fangpin_proto::v1 as pb;
use fangpin_store::claims::{self as claim_store, ClaimRecord, TransitionRecord};
use fangpin_store::ledger::{self as ledger_store, EntryRecord, TopUpFlagRecord};
use fangpin_store::{Conn, counties, timestamp};
use uuid::Uuid;

use crate::app::WriteContext;
use crate::convert::{self, Check};
use crate::error::AppError;

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

/// Moves the claim through the state machine and records who did it and why.
pub async fn transition(
    conn: &mut Conn,
    claim: &mut ClaimRecord,
    event: ClaimEvent,
    actor: &str,
    reason: &str,
    ctx: &WriteContext,
) -> Result<(), AppError> {
    let from = claim.state;
    claim.state = from.apply(event)?;
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

pub async fn pool_balance(
    conn: &mut Conn,
    county_code: &str,
    policy_year: i32,
) -> Result<pb::PoolBalance, AppError> {
    let (balances, entries) = ledger_store::balances(conn, county_code, policy_year).await?;
    Ok(convert::pool_to_pb(
        county_code,
        policy_year,
        &balances,
        entries,
    ))
}

/// A payment out of the pool for a claim (relief or emergency advance). It is
/// never held back for lack of funds: if it takes the pool below zero, a
/// top-up flag records the part the pool could not cover.
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
    let (before, _) = ledger_store::balances(conn, &claim.county_code, claim.policy_year).await?;
    let entry = ledger_store::append_entry(
        conn,
        &claim.county_code,
        claim.policy_year,
        posting,
        Some(claim.claim_id),
        reference,
        &ctx.request_id,
        ctx.now,
    )
    .await?;
    let (after, entries) =
        ledger_store::balances(conn, &claim.county_code, claim.policy_year).await?;
    assert_eq!(
        before.pool().checked_sub(amount),
        Some(after.pool()),
        "the pool must fall by exactly the amount paid"
    );
    // Only the part of this payment the pool could not cover; earlier
    // shortfalls already have flags of their own.
    let uncovered = shortfall(after.pool())
        .checked_sub(shortfall(before.pool()))
        .expect("shortfalls are bounded");
    debug_assert!(uncovered >= Fen::ZERO && uncovered <= amount);
    let flag = if uncovered > Fen::ZERO {
        Some(
            ledger_store::raise_flag(
                conn,
                &claim.county_code,
                claim.policy_year,
                claim.claim_id,
                uncovered,
                ctx.now,
            )
            .await?,
        )
    } else {
        None
    };
    Ok((
        entry,
        convert::pool_to_pb(&claim.county_code, claim.policy_year, &after, entries),
        flag,
    ))
}

pub fn claim_response(claim: &ClaimRecord) -> pb::ClaimResponse {
    pb::ClaimResponse {
        claim: Some(convert::claim_to_pb(claim)),
    }
}
