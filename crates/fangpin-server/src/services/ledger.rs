//! LedgerService: the fund pool's balances, statement and reconciliation,
//! county top-ups, the year-end close with rollover, and bank matching.

use chrono::{Days, FixedOffset};
use fangpin_domain::Fen;
use fangpin_domain::bank::{self, PayoutLine};
use fangpin_domain::ledger::{Posting, PostingKind};
use fangpin_domain::year::{YearTotals, plan_close};
use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, ledger_service_server::LedgerService};
use fangpin_store::claims as claim_store;
use fangpin_store::ledger::{self as ledger_store, NewEntry, YearEventRecord, YearState};
use fangpin_store::{Conn, counties, timestamp};

use fangpin_domain::personal_data::mask_account;

use crate::services::{pool_balance, settle_flags, year_totals};
use crate::write_path::app::{App, WriteContext};
use crate::write_path::convert::{self, Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::write_path::error::AppError;
use crate::write_path::personal_data;

pub const MAX_ENTRIES_PAGE: u32 = 1_000;

pub struct LedgerApi(pub App);

fn county_and_year(c: &mut Check, county_code: &str, year: i32) -> (Option<String>, Option<i32>) {
    (
        c.county("county_code", county_code)
            .map(|c| c.as_str().to_string()),
        c.year("policy_year", year),
    )
}

pub(super) fn checked_county_and_year(
    county_code: &str,
    year: i32,
) -> Result<(String, i32), AppError> {
    let mut c = Check::new();
    let (county, year) = county_and_year(&mut c, county_code, year);
    c.finish()?;
    Ok((county.expect("checked"), year.expect("checked")))
}

async fn require_county(conn: &mut Conn, county: &str) -> Result<(), AppError> {
    match counties::get_county(conn, county).await? {
        Some(_) => Ok(()),
        None => Err(AppError::not_found("county", county)),
    }
}

/// A pool read for a year that does not exist is NOT_FOUND, not a page of
/// zeros that reads like an empty pool.
pub(super) async fn require_year(conn: &mut Conn, county: &str, year: i32) -> Result<(), AppError> {
    require_county(conn, county).await?;
    if ledger_store::year_exists(conn, county, year).await? {
        Ok(())
    } else {
        Err(AppError::not_found(
            "policy year",
            format!("{county}/{year}"),
        ))
    }
}

/// Money enters a year only under its policy: a premium or top-up into a
/// year without one would sit in a pool no rule pays from.
async fn require_policy(conn: &mut Conn, county: &str, year: i32) -> Result<(), AppError> {
    match counties::get_policy(conn, county, year, None).await? {
        Some(_) => Ok(()),
        None => Err(AppError::precondition(
            "POLICY",
            format!("policy/{county}/{year}"),
            format!("county {county} has no policy for {year}; put one first"),
        )),
    }
}

/// At most this many unfinished claims are named in a refused close.
const MAX_CLAIMS_LISTED: u32 = 100;

/// The reconciliation report, summed from the entries themselves and checked
/// against the cached balances and the breakdowns: `ties` is true only when
/// every one of those agrees to the fen.
async fn reconciliation(
    conn: &mut Conn,
    county: &str,
    year: i32,
) -> Result<pb::Reconciliation, AppError> {
    let (from_entries, entries) =
        ledger_store::balances_from_entries(conn, county, year, None).await?;
    let (cached, _) = ledger_store::balances(conn, county, year).await?;
    let (_, pending) = ledger_store::pending_totals(conn, county, year).await?;
    let totals = YearTotals::new(&from_entries, pending);
    let state = ledger_store::year_state(conn, county, year).await?;
    let cells = ledger_store::breakdown_cells(conn, county, year).await?;
    let by_kind = sum_cells(&cells, |c| &c.relief_kind);
    let by_township = sum_cells(&cells, |c| &c.township_code);
    let sums = |lines: &[ledger_store::BreakdownCell]| {
        (
            lines.iter().map(|l| l.relief).sum::<Fen>(),
            lines.iter().map(|l| l.advances).sum::<Fen>(),
        )
    };
    let ties = totals.check().is_ok()
        && cached == from_entries
        && sums(&by_kind) == (totals.relief, totals.advances)
        && sums(&by_township) == (totals.relief, totals.advances);
    if !ties {
        tracing::error!(
            county,
            year,
            "reconciliation does not tie: cached balances, entries or breakdowns disagree"
        );
    }
    let lines = |lines: Vec<ledger_store::BreakdownCell>,
                 key: fn(&ledger_store::BreakdownCell) -> &String| {
        lines
            .iter()
            .map(|l| pb::ReconciliationLine {
                key: key(l).clone(),
                claims: l.claims,
                relief_yuan: l.relief.to_string(),
                advances_yuan: l.advances.to_string(),
            })
            .collect()
    };
    let receivables = ledger_store::receivable_totals(conn, county, year).await?;
    let by_kind = lines(by_kind, |c| &c.relief_kind);
    let by_township = lines(by_township, |c| &c.township_code);
    Ok(pb::Reconciliation {
        county_code: county.to_string(),
        policy_year: year,
        year_state: state.as_str().to_string(),
        opening_yuan: totals.opening.to_string(),
        premiums_yuan: totals.premiums.to_string(),
        top_ups_yuan: totals.top_ups.to_string(),
        relief_yuan: totals.relief.to_string(),
        advances_yuan: totals.advances.to_string(),
        service_fee_yuan: totals.service_fee.to_string(),
        closing_yuan: totals.closing().to_string(),
        rolled_over_yuan: totals.rolled_over.to_string(),
        pool_yuan: totals.pool.to_string(),
        pending_yuan: totals.pending.to_string(),
        ties,
        by_relief_kind: by_kind,
        by_township,
        entries,
        receivables_open_yuan: receivables.1.to_string(),
        receivables_recovered_yuan: receivables.2.to_string(),
        receivables_written_off_yuan: receivables.3.to_string(),
        receivables_open: u32::try_from(receivables.0).unwrap_or(u32::MAX),
    })
}

/// Adds the (relief kind, township) cells up along one dimension. Each claim
/// lies in exactly one cell, so claim counts add up as well as amounts.
fn sum_cells(
    cells: &[ledger_store::BreakdownCell],
    key: fn(&ledger_store::BreakdownCell) -> &String,
) -> Vec<ledger_store::BreakdownCell> {
    let mut sums: std::collections::BTreeMap<String, ledger_store::BreakdownCell> =
        std::collections::BTreeMap::new();
    for cell in cells {
        let sum = sums
            .entry(key(cell).clone())
            .or_insert_with(|| ledger_store::BreakdownCell {
                relief_kind: cell.relief_kind.clone(),
                township_code: cell.township_code.clone(),
                claims: 0,
                relief: Fen::ZERO,
                advances: Fen::ZERO,
            });
        sum.claims += cell.claims;
        sum.relief = sum.relief.checked_add(cell.relief).expect("bounded totals");
        sum.advances = sum
            .advances
            .checked_add(cell.advances)
            .expect("bounded totals");
    }
    sums.into_values().collect()
}

async fn post(
    conn: &mut Conn,
    county: &str,
    year: i32,
    posting: Posting,
    reverses: Option<uuid::Uuid>,
    reference: &str,
    ctx: &WriteContext,
) -> Result<ledger_store::EntryRecord, AppError> {
    let new = NewEntry {
        county_code: county,
        policy_year: year,
        posting,
        claim: None,
        reverses,
        reference,
        request_id: &ctx.request_id,
        now: ctx.now,
    };
    Ok(ledger_store::append_entry(conn, new).await?)
}

async fn year_event(
    conn: &mut Conn,
    county: &str,
    year: i32,
    event: &str,
    actor: &str,
    reason: &str,
    ctx: &WriteContext,
) -> Result<(), AppError> {
    let record = YearEventRecord {
        event: event.into(),
        actor: actor.into(),
        reason: reason.into(),
        at: timestamp(ctx.now),
    };
    Ok(ledger_store::append_year_event(conn, county, year, &record, &ctx.request_id).await?)
}

async fn year_status(conn: &mut Conn, county: &str, year: i32) -> Result<pb::YearStatus, AppError> {
    let state = ledger_store::year_state(conn, county, year).await?;
    let events = ledger_store::list_year_events(conn, county, year).await?;
    Ok(pb::YearStatus {
        county_code: county.to_string(),
        policy_year: year,
        state: state.as_str().to_string(),
        events: events
            .into_iter()
            .map(|e| pb::YearEvent {
                event: e.event,
                actor: e.actor,
                reason: e.reason,
                at: e.at,
            })
            .collect(),
    })
}

impl LedgerApi {
    /// The read path of the per-year RPCs: valid county and year, one
    /// snapshot of the database, and a county that exists. These reads
    /// combine several queries (balances, reservations, entries, the year's
    /// state); read outside one snapshot, a payout committed between two of
    /// them made a reconciliation that did not tie and an available balance
    /// that was overstated.
    async fn read_year(
        &self,
        county_code: &str,
        year: i32,
    ) -> Result<(fangpin_store::Tx, String, i32), AppError> {
        let (county, year) = checked_county_and_year(county_code, year)?;
        self.0.authorize_county(&county).await?;
        let mut conn = self.0.store.read_snapshot().await?;
        require_year(&mut conn, &county, year).await?;
        Ok((conn, county, year))
    }
}

#[tonic::async_trait]
impl LedgerService for LedgerApi {
    async fn get_pool_outlook(
        &self,
        request: Request<pb::PoolOutlookRequest>,
    ) -> Result<Response<pb::PoolOutlook>, Status> {
        super::outlook::pool_outlook(&self.0, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_pool_balance(
        &self,
        request: Request<pb::PoolRequest>,
    ) -> Result<Response<pb::PoolBalance>, Status> {
        let req = request.into_inner();
        let (mut conn, county, year) = self.read_year(&req.county_code, req.policy_year).await?;
        Ok(Response::new(pool_balance(&mut conn, &county, year).await?))
    }

    async fn list_top_up_flags(
        &self,
        request: Request<pb::ListTopUpFlagsRequest>,
    ) -> Result<Response<pb::ListTopUpFlagsResponse>, Status> {
        let req = request.into_inner();
        let (mut conn, county, year) = self.read_year(&req.county_code, req.policy_year).await?;
        let flags = ledger_store::list_flags(&mut conn, &county, year, req.include_cleared)
            .await
            .map_err(AppError::from)?;
        Ok(Response::new(pb::ListTopUpFlagsResponse {
            flags: flags.iter().map(convert::flag_to_pb).collect(),
        }))
    }

    async fn record_top_up(
        &self,
        request: Request<pb::RecordTopUpRequest>,
    ) -> Result<Response<pb::TopUpResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let (county, year) = county_and_year(&mut c, &req.county_code, req.policy_year);
        let amount = c.positive_money("amount_yuan", &req.amount_yuan);
        let reference = c.text("reference", &req.reference, MAX_LABEL_CHARS);
        c.finish()?;
        let (county, year, reference) = (
            county.expect("checked"),
            year.expect("checked"),
            reference.expect("checked"),
        );
        self.0.authorize_county(&county).await?;
        let posting = Posting::new(PostingKind::TopUpReceived, amount.expect("checked"))
            .map_err(|e| AppError::invalid("amount_yuan", e.to_string()))?;
        let lock = county.clone();
        let response = self
            .0
            .write(
                "RecordTopUp",
                &req,
                &request_id.expect("checked").to_string(),
                &lock,
                move |conn, ctx| {
                    Box::pin(async move {
                        require_county(conn, &county).await?;
                        require_policy(conn, &county, year).await?;
                        let entry =
                            post(conn, &county, year, posting, None, &reference, &ctx).await?;
                        let cleared =
                            settle_flags(conn, &county, year, Some(entry.entry_id), ctx.now)
                                .await?;
                        Ok(pb::TopUpResponse {
                            entry: Some(convert::entry_to_pb(&entry)),
                            pool: Some(pool_balance(conn, &county, year).await?),
                            cleared: cleared.iter().map(convert::flag_to_pb).collect(),
                        })
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let (county, year) = county_and_year(&mut c, &req.county_code, req.policy_year);
        let size = c.page_size("page_size", req.page_size, MAX_ENTRIES_PAGE);
        let after = if req.page_token.is_empty() {
            Some(0)
        } else {
            match req.page_token.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    c.bad("page_token", "is not a token this service issued");
                    None
                }
            }
        };
        c.finish()?;
        let (county, size) = (county.expect("checked"), size.expect("checked"));
        self.0.authorize_county(&county).await?;
        let year = year.expect("checked");
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        require_year(&mut conn, &county, year).await?;
        let entries =
            ledger_store::list_entries(&mut conn, &county, year, after.expect("checked"), size)
                .await
                .map_err(AppError::from)?;
        let next_page_token = convert::next_page_token(&entries, size, |e| e.sequence.to_string());
        Ok(Response::new(pb::ListEntriesResponse {
            entries: entries.iter().map(convert::entry_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_balance_as_of(
        &self,
        request: Request<pb::BalanceAsOfRequest>,
    ) -> Result<Response<pb::PoolBalance>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let (county, year) = county_and_year(&mut c, &req.county_code, req.policy_year);
        let as_of = c.date("as_of", &req.as_of);
        c.finish()?;
        let (county, year, as_of) = (
            county.expect("checked"),
            year.expect("checked"),
            as_of.expect("checked"),
        );
        self.0.authorize_county(&county).await?;
        // Entries posted before the next Beijing midnight count.
        let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
        let next_day = as_of
            .checked_add_days(Days::new(1))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|d| d.and_local_timezone(beijing).single())
            .ok_or_else(|| AppError::invalid("as_of", "is out of range"))?;
        let before = timestamp(next_day.with_timezone(&chrono::Utc));
        // Balances and the year's state from one moment (see `read_year`).
        let mut conn = self.0.store.read_snapshot().await.map_err(AppError::from)?;
        require_year(&mut conn, &county, year).await?;
        let (balances, entries) =
            ledger_store::balances_from_entries(&mut conn, &county, year, Some(&before))
                .await
                .map_err(AppError::from)?;
        // Reservations are a present-tense fact; a past balance shows posted money only.
        let totals = YearTotals::new(&balances, Fen::ZERO);
        let state = ledger_store::year_state(&mut conn, &county, year)
            .await
            .map_err(AppError::from)?;
        Ok(Response::new(convert::pool_to_pb(
            &county, year, &totals, entries, state,
        )))
    }

    async fn get_reconciliation(
        &self,
        request: Request<pb::PoolRequest>,
    ) -> Result<Response<pb::Reconciliation>, Status> {
        let req = request.into_inner();
        let (mut conn, county, year) = self.read_year(&req.county_code, req.policy_year).await?;
        Ok(Response::new(
            reconciliation(&mut conn, &county, year).await?,
        ))
    }

    async fn close_year(
        &self,
        request: Request<pb::CloseYearRequest>,
    ) -> Result<Response<pb::CloseYearResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let (county, year) = county_and_year(&mut c, &req.county_code, req.policy_year);
        let closed_by = c.text("closed_by", &req.closed_by, MAX_LABEL_CHARS);
        c.finish()?;
        let (county, year, closed_by) = (
            county.expect("checked"),
            year.expect("checked"),
            closed_by.expect("checked"),
        );
        crate::write_path::scope::check_acting_person("closed_by", &closed_by)?;
        self.0.authorize_county(&county).await?;
        let lock = county.clone();
        let response = self
            .0
            .write(
                "CloseYear",
                &req,
                &request_id.expect("checked").to_string(),
                &lock,
                move |conn, ctx| {
                    Box::pin(async move {
                        require_county(conn, &county).await?;
                        if ledger_store::year_state(conn, &county, year).await? == YearState::Closed
                        {
                            // Closing twice changes nothing.
                            return Ok(pb::CloseYearResponse {
                                reconciliation: Some(reconciliation(conn, &county, year).await?),
                                ..Default::default()
                            });
                        }
                        let policy = counties::get_policy(conn, &county, year, None)
                            .await?
                            .ok_or_else(|| {
                                AppError::precondition(
                                    "POLICY",
                                    format!("policy/{county}/{year}"),
                                    "the year has no policy",
                                )
                            })?;
                        // The year ends when it ends: claims of its last
                        // days still draw on its pool.
                        if ctx.today <= policy.policy.ends_on {
                            return Err(AppError::precondition(
                                "YEAR_NOT_ENDED",
                                format!("ledger/{county}/{year}"),
                                format!(
                                    "policy year {year} runs until {}; it can be closed from the day after",
                                    policy.policy.ends_on
                                ),
                            ));
                        }
                        // ...and is settled only when every claim is final.
                        let (open, total) =
                            claim_store::claims_not_final(conn, &county, year, MAX_CLAIMS_LISTED)
                                .await?;
                        let (receivables, owed, _, _) =
                            ledger_store::receivable_totals(conn, &county, year).await?;
                        if receivables > 0 {
                            return Err(AppError::precondition(
                                "RECEIVABLES_OPEN",
                                format!("ledger/{county}/{year}"),
                                format!(
                                    "{receivables} advance receivables of {year} ({owed}) are open: \
                                     record their recovery or write them off first"
                                ),
                            ));
                        }
                        if total > 0 {
                            let listed: Vec<String> = open
                                .iter()
                                .map(|(id, state)| format!("{id} ({})", state.as_str()))
                                .collect();
                            return Err(AppError::precondition(
                                "CLAIMS_OPEN",
                                format!("ledger/{county}/{year}"),
                                format!(
                                    "{total} claims of {year} are not final (paid or rejected): {}{}",
                                    listed.join(", "),
                                    if total > i64::from(MAX_CLAIMS_LISTED) { ", ..." } else { "" }
                                ),
                            ));
                        }
                        let (pending_count, _) =
                            ledger_store::pending_totals(conn, &county, year).await?;
                        let open_flags = ledger_store::list_flags(conn, &county, year, false)
                            .await?
                            .len() as u64;
                        let (totals, _) = year_totals(conn, &county, year).await?;
                        let plan = plan_close(
                            &totals,
                            pending_count,
                            open_flags,
                            policy.policy.service_fee_rate,
                        )
                        .map_err(|e| {
                            AppError::precondition(
                                "YEAR_CLOSE",
                                format!("ledger/{county}/{year}"),
                                e.to_string(),
                            )
                        })?;
                        let mut response = pb::CloseYearResponse::default();
                        if plan.service_fee > Fen::ZERO {
                            let fee = Posting::new(PostingKind::ServiceFee, plan.service_fee)
                                .map_err(|e| AppError::invalid("service_fee", e.to_string()))?;
                            let reference =
                                format!("service fee {} x relief", policy.policy.service_fee_rate);
                            response.service_fee_entry = Some(convert::entry_to_pb(
                                &post(conn, &county, year, fee, None, &reference, &ctx).await?,
                            ));
                        }
                        if plan.rollover > Fen::ZERO {
                            let out = Posting::new(PostingKind::RolloverOut, plan.rollover)
                                .map_err(|e| AppError::invalid("rollover", e.to_string()))?;
                            let into = Posting::new(PostingKind::RolloverIn, plan.rollover)
                                .map_err(|e| AppError::invalid("rollover", e.to_string()))?;
                            let out = post(
                                conn,
                                &county,
                                year,
                                out,
                                None,
                                &format!("carried to {}", year + 1),
                                &ctx,
                            )
                            .await?;
                            let into = post(
                                conn,
                                &county,
                                year + 1,
                                into,
                                None,
                                &format!("carried from {year}"),
                                &ctx,
                            )
                            .await?;
                            response.rollover_out_entry = Some(convert::entry_to_pb(&out));
                            response.rollover_in_entry = Some(convert::entry_to_pb(&into));
                        }
                        ledger_store::set_year_state(conn, &county, year, YearState::Closed)
                            .await?;
                        year_event(
                            conn,
                            &county,
                            year,
                            "close",
                            &closed_by,
                            "year-end close",
                            &ctx,
                        )
                        .await?;
                        let report = reconciliation(conn, &county, year).await?;
                        assert!(report.ties, "a freshly closed year ties to its ledger");
                        assert_eq!(
                            report.pool_yuan, "0.00",
                            "a closed year carries everything over"
                        );
                        response.reconciliation = Some(report);
                        Ok(response)
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn reopen_year(
        &self,
        request: Request<pb::ReopenYearRequest>,
    ) -> Result<Response<pb::YearStatus>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let (county, year) = county_and_year(&mut c, &req.county_code, req.policy_year);
        let reopened_by = c.text("reopened_by", &req.reopened_by, MAX_LABEL_CHARS);
        let reason = c.text("reason", &req.reason, MAX_TEXT_CHARS);
        c.finish()?;
        let (county, year) = (county.expect("checked"), year.expect("checked"));
        let (reopened_by, reason) = (reopened_by.expect("checked"), reason.expect("checked"));
        crate::write_path::scope::check_acting_person("reopened_by", &reopened_by)?;
        self.0.authorize_county(&county).await?;
        let lock = county.clone();
        let response = self
            .0
            .write(
                "ReopenYear",
                &req,
                &request_id.expect("checked").to_string(),
                &lock,
                move |conn, ctx| {
                    Box::pin(async move {
                        require_county(conn, &county).await?;
                        if ledger_store::year_state(conn, &county, year).await? != YearState::Closed
                        {
                            return Err(AppError::precondition(
                                "YEAR_STATE",
                                format!("ledger/{county}/{year}"),
                                "the year is not closed",
                            ));
                        }
                        if ledger_store::year_state(conn, &county, year + 1).await?
                            == YearState::Closed
                        {
                            return Err(AppError::precondition(
                                "YEAR_STATE",
                                format!("ledger/{county}/{}", year + 1),
                                "the next year is closed too: reopen it first",
                            ));
                        }
                        // The carry-in goes back out of next year: refuse if
                        // next year has already promised or spent it.
                        let carried_in: Fen = ledger_store::unreversed_entries(
                            conn,
                            &county,
                            year + 1,
                            &[PostingKind::RolloverIn],
                        )
                        .await?
                        .iter()
                        .map(|e| e.posting.amount)
                        .sum();
                        let (next, _) = year_totals(conn, &county, year + 1).await?;
                        if next.available().checked_sub(carried_in).is_none_or(|left| left < Fen::ZERO) {
                            return Err(AppError::precondition(
                                "YEAR_STATE",
                                format!("ledger/{county}/{}", year + 1),
                                format!(
                                    "{} has only {} available of the {} carried in from {year}; top it up first",
                                    year + 1,
                                    next.available(),
                                    carried_in
                                ),
                            ));
                        }
                        ledger_store::set_year_state(conn, &county, year, YearState::Open).await?;
                        // Undo the close: the fee and the carry-out in this year,
                        // the carry-in in the next, each by a reversal naming it.
                        let reference = format!("reopened by {reopened_by}: {reason}");
                        let this_year = ledger_store::unreversed_entries(
                            conn,
                            &county,
                            year,
                            &[PostingKind::ServiceFee, PostingKind::RolloverOut],
                        )
                        .await?;
                        let next_year = ledger_store::unreversed_entries(
                            conn,
                            &county,
                            year + 1,
                            &[PostingKind::RolloverIn],
                        )
                        .await?;
                        for (entry_year, entry) in this_year
                            .iter()
                            .map(|e| (year, e))
                            .chain(next_year.iter().map(|e| (year + 1, e)))
                        {
                            post(
                                conn,
                                &county,
                                entry_year,
                                entry.posting.reversed(),
                                Some(entry.entry_id),
                                &reference,
                                &ctx,
                            )
                            .await?;
                        }
                        year_event(conn, &county, year, "reopen", &reopened_by, &reason, &ctx)
                            .await?;
                        year_status(conn, &county, year).await
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn resolve_advance_receivable(
        &self,
        request: Request<pb::ResolveAdvanceReceivableRequest>,
    ) -> Result<Response<pb::AdvanceReceivable>, Status> {
        let req = request.into_inner();
        let (request_id, claim_id) = crate::services::claim_ids(&req.request_id, &req.claim_id)?;
        let mut c = Check::new();
        let recovered = match pb::ReceivableResolution::try_from(req.resolution) {
            Ok(pb::ReceivableResolution::Recovered) => Some(true),
            Ok(pb::ReceivableResolution::WrittenOff) => Some(false),
            _ => {
                c.bad("resolution", "must be RECOVERED or WRITTEN_OFF");
                None
            }
        };
        let note = c.text("note", &req.note, MAX_TEXT_CHARS);
        let resolved_by = c.text("resolved_by", &req.resolved_by, MAX_LABEL_CHARS);
        c.finish()?;
        let (recovered, note, resolved_by) = (
            recovered.expect("checked"),
            note.expect("checked"),
            resolved_by.expect("checked"),
        );
        crate::write_path::scope::check_acting_person("resolved_by", &resolved_by)?;
        let response = self
            .0
            .write_claim(
                "ResolveAdvanceReceivable",
                &req,
                &request_id,
                claim_id,
                move |conn, claim, ctx| {
                    Box::pin(async move {
                        let receivable = ledger_store::get_receivable(conn, claim.claim_id)
                            .await?
                            .filter(|r| r.state == "open")
                            .ok_or_else(|| {
                                AppError::precondition(
                                    "RECEIVABLE",
                                    format!("claim/{claim_id}"),
                                    "the claim has no open advance receivable",
                                )
                            })?;
                        let entry = if recovered {
                            let advance = ledger_store::standing_entry(
                                conn,
                                claim.claim_id,
                                PostingKind::EmergencyAdvance,
                            )
                            .await?
                            .ok_or_else(|| {
                                AppError::Store(fangpin_store::StoreError::Corrupt(format!(
                                    "claim {claim_id} has a receivable but no advance entry"
                                )))
                            })?;
                            let posting = advance
                                .posting
                                .partly_reversed(receivable.amount)
                                .map_err(|e| AppError::invalid("amount", e.to_string()))?;
                            let reference = format!("advance excess recovered: {note}");
                            let new = NewEntry {
                                county_code: &claim.county_code,
                                policy_year: claim.policy_year,
                                posting,
                                claim: Some(ledger_store::ClaimKeys {
                                    claim_id: claim.claim_id,
                                    relief_kind: claim.relief_kind,
                                    township_code: claim
                                        .village_code
                                        .get(..9)
                                        .unwrap_or(&claim.village_code),
                                    payout_attempt: claim.payout_returns,
                                }),
                                reverses: Some(advance.entry_id),
                                reference: &reference,
                                request_id: &ctx.request_id,
                                now: ctx.now,
                            };
                            Some(ledger_store::append_entry(conn, new).await?)
                        } else {
                            None
                        };
                        let state = if recovered {
                            "recovered"
                        } else {
                            "written_off"
                        };
                        ledger_store::resolve_receivable(
                            conn,
                            claim.claim_id,
                            state,
                            &resolved_by,
                            &note,
                            entry.as_ref().map(|e| e.entry_id),
                            ctx.now,
                        )
                        .await?;
                        let history = fangpin_store::claims::TransitionRecord {
                            from_state: Some(claim.state),
                            to_state: claim.state,
                            event: format!("advance_receivable_{state}"),
                            actor: resolved_by.clone(),
                            reason: format!("{}: {note}", receivable.amount),
                            at: timestamp(ctx.now),
                        };
                        claim_store::append_transition(
                            conn,
                            claim.claim_id,
                            &history,
                            &ctx.request_id,
                        )
                        .await?;
                        if recovered {
                            settle_flags(
                                conn,
                                &claim.county_code,
                                claim.policy_year,
                                None,
                                ctx.now,
                            )
                            .await?;
                        }
                        Ok(pb::AdvanceReceivable {
                            claim_id: claim.claim_id.to_string(),
                            amount_yuan: receivable.amount.to_string(),
                            state: state.to_string(),
                            resolved_by,
                            note,
                            entry: entry.as_ref().map(convert::entry_to_pb),
                            pool: Some(
                                pool_balance(conn, &claim.county_code, claim.policy_year).await?,
                            ),
                        })
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn get_year_status(
        &self,
        request: Request<pb::PoolRequest>,
    ) -> Result<Response<pb::YearStatus>, Status> {
        let req = request.into_inner();
        let (mut conn, county, year) = self.read_year(&req.county_code, req.policy_year).await?;
        Ok(Response::new(year_status(&mut conn, &county, year).await?))
    }

    async fn match_bank_statement(
        &self,
        request: Request<pb::MatchBankStatementRequest>,
    ) -> Result<Response<pb::BankMatchReport>, Status> {
        let req = request.into_inner();
        let statement = bank::parse_statement(&req.statement_csv)
            .map_err(|e| AppError::invalid("statement_csv", e.to_string()))?;
        let (mut conn, county, year) = self.read_year(&req.county_code, req.policy_year).await?;
        let paid = ledger_store::payouts_with_accounts(&mut conn, &county, year)
            .await
            .map_err(AppError::from)?;
        // Matching compares account digits, so this is one of the few places
        // that opens bank accounts; they stay in this call's memory and the
        // report shows them masked.
        let key = &self.0.personal_data;
        let payouts: Vec<PayoutLine> = paid
            .iter()
            .map(|p| {
                Ok(PayoutLine {
                    entry_id: p.entry.entry_id.to_string(),
                    claim_id: p.entry.claim_id.map(|c| c.to_string()).unwrap_or_default(),
                    amount: p.entry.posting.amount,
                    account: personal_data::open_bank_account(
                        key,
                        &p.household_id,
                        &p.bank_account_sealed,
                    )?,
                    reference: p.entry.reference.clone(),
                })
            })
            .collect::<Result<_, AppError>>()?;
        let report = bank::match_payouts(&statement.lines, &payouts);
        let by_id: std::collections::HashMap<String, &ledger_store::EntryRecord> = paid
            .iter()
            .map(|p| (p.entry.entry_id.to_string(), &p.entry))
            .collect();
        let entry_pb = |id: &str| {
            by_id
                .get(id)
                .map(|e| convert::entry_to_pb(e))
                .unwrap_or_default()
        };
        let line_pb = |l: &bank::BankLine| pb::BankLine {
            line: u32::try_from(l.line).unwrap_or(u32::MAX),
            date: l.date.to_string(),
            amount_yuan: l.amount.to_string(),
            // The statement's own account, masked like every account the
            // service shows: the caller has the file, a table needs no more.
            account: mask_account(&l.account),
            reference: l.reference.clone(),
        };
        Ok(Response::new(pb::BankMatchReport {
            encoding: statement.encoding.to_string(),
            matched: report
                .matched
                .iter()
                .map(|m| pb::BankMatch {
                    bank: Some(line_pb(&m.bank)),
                    entry: Some(entry_pb(&m.payout.entry_id)),
                })
                .collect(),
            unmatched_in_bank: report.unmatched_in_bank.iter().map(line_pb).collect(),
            unmatched_in_ledger: report
                .unmatched_in_ledger
                .iter()
                .map(|p| entry_pb(&p.entry_id))
                .collect(),
            bad_lines: statement
                .bad_lines
                .iter()
                .map(|b| pb::BadBankLine {
                    line: u32::try_from(b.line).unwrap_or(u32::MAX),
                    reason: b.reason.clone(),
                })
                .collect(),
        }))
    }
}
