//! LedgerService.GetPoolOutlook: gathers what the fund's outlook rests on
//! (the available balance, the pipeline, the stage history, earlier years'
//! months) and runs `fangpin_domain::outlook::project` off the async
//! threads. docs/outlook.md describes the method.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use fangpin_domain::Fen;
use fangpin_domain::assessment::net_payout;
use fangpin_domain::claim::ClaimState;
use fangpin_domain::outlook::{
    self, MAX_PIPELINE, MAX_RUNS, MonthHistory, OutlookError, OutlookInput, PipelineClaim,
    PipelineStage, StageHistory,
};
use fangpin_proto::tonic::Status;
use fangpin_proto::v1 as pb;
use fangpin_store::outlook as store;
use fangpin_store::{Conn, counties};

use crate::services::year_totals;
use crate::write_path::app::App;
use crate::write_path::error::AppError;

/// Runs when the request leaves them out: ±0.01 on the probability.
pub const DEFAULT_RUNS: u32 = 10_000;

fn stage_of(state: ClaimState) -> Option<PipelineStage> {
    Some(match state {
        ClaimState::Received => PipelineStage::Received,
        ClaimState::UnderSurvey => PipelineStage::UnderSurvey,
        // The village's and the township's reviews follow the
        // recommendation: the same stage for the outlook's odds.
        ClaimState::Recommended | ClaimState::Deliberated | ClaimState::TownshipApproved => {
            PipelineStage::Recommended
        }
        ClaimState::InPublicity => PipelineStage::InPublicity,
        ClaimState::PublicityPassed => PipelineStage::PublicityPassed,
        _ => return None,
    })
}

fn stage_to_pb(stage: PipelineStage) -> pb::OutlookStage {
    match stage {
        PipelineStage::Received => pb::OutlookStage::Received,
        PipelineStage::UnderSurvey => pb::OutlookStage::UnderSurvey,
        PipelineStage::Recommended => pb::OutlookStage::Recommended,
        PipelineStage::InPublicity => pb::OutlookStage::InPublicity,
        PipelineStage::PublicityPassed => pb::OutlookStage::PublicityPassed,
    }
}

/// The months still to come in `policy_year` as seen on `today`: those
/// after today's month in the year itself, all twelve before it, none
/// after it. The current month is left out: its claims are arriving and
/// are in the pipeline already.
pub fn remaining_months(policy_year: i32, today: NaiveDate) -> Vec<u32> {
    let first = match today.year().cmp(&policy_year) {
        std::cmp::Ordering::Less => 1,
        std::cmp::Ordering::Equal => today.month() + 1,
        std::cmp::Ordering::Greater => 13,
    };
    (first..=12).collect()
}

/// Everything the outlook is computed from, read in one snapshot.
async fn gather(
    conn: &mut Conn,
    county: &str,
    year: i32,
    today: NaiveDate,
) -> Result<(OutlookInput, Fen, Fen), AppError> {
    let (totals, _) = year_totals(conn, county, year).await?;
    let policy = counties::get_policy(conn, county, year, None)
        .await?
        .ok_or_else(|| AppError::not_found("policy", format!("{county}/{year}")))?
        .policy;
    let claims = store::pipeline(conn, county, year).await?;
    if claims.len() > MAX_PIPELINE {
        return Err(AppError::precondition(
            "TOO_LARGE",
            format!("ledger/{county}/{year}"),
            format!("more than {MAX_PIPELINE} claims in the pipeline"),
        ));
    }
    let pipeline = claims
        .iter()
        .filter_map(|c| {
            let stage = stage_of(c.state)?;
            // What the pool will still pay: the assessed relief once there
            // is one, else the claimed cost capped, less any emergency
            // advance already paid out of the pool.
            let relief = match &c.assessment {
                Some(a) => a.amount,
                None => c.claimed_cost.min(policy.case_cap),
            };
            Some(PipelineClaim {
                stage,
                amount: net_payout(relief, c.advance),
            })
        })
        .collect();
    // A transfer the bank returned before it was posted voided its
    // reservation, yet the relief is still owed: it is certain, like filed
    // relief, and comes off the available balance.
    let mut owed = Fen::ZERO;
    for c in fangpin_store::claims::in_states(
        conn,
        county,
        year,
        &[ClaimState::PayoutFailed],
        MAX_PIPELINE as u32,
    )
    .await?
    {
        if fangpin_store::ledger::pending_reservation(conn, c.claim_id)
            .await?
            .is_none()
            && let Some(a) = &c.assessment
        {
            owed = owed
                .checked_add(net_payout(a.amount, c.advance))
                .expect("a county's relief fits in i64 fen");
        }
    }
    let mut stage_history = [StageHistory::default(); 5];
    for (state, reached, paid) in store::stage_history(conn, county).await? {
        if let Some(stage) = stage_of(state) {
            let i = PipelineStage::ALL
                .iter()
                .position(|s| *s == stage)
                .expect("every stage is in ALL");
            stage_history[i] = StageHistory { reached, paid };
        }
    }
    let years = store::earlier_years(conn, county, year).await?;
    let mut by_year_month: BTreeMap<(i32, u32), Fen> = BTreeMap::new();
    if let Some(first) = years.iter().min() {
        for (y, m, relief) in store::relief_by_month(conn, county, *first, year).await? {
            by_year_month.insert((y, m), relief);
        }
    }
    let new_claims = remaining_months(year, today)
        .into_iter()
        .map(|month| MonthHistory {
            month,
            // A year with a pool and no claim that month paid nothing then.
            earlier_years: years
                .iter()
                .map(|y| {
                    by_year_month
                        .get(&(*y, month))
                        .copied()
                        .unwrap_or(Fen::ZERO)
                })
                .collect(),
        })
        .collect();
    Ok((
        OutlookInput {
            available: totals
                .available()
                .checked_sub(owed)
                .expect("a county's relief fits in i64 fen"),
            pipeline,
            stage_history,
            new_claims,
            runs: 0,
            seed: 0,
        },
        totals.pool,
        totals
            .pending
            .checked_add(owed)
            .expect("a county's relief fits in i64 fen"),
    ))
}

fn outlook_error(e: OutlookError) -> AppError {
    match e {
        OutlookError::RunsOutOfRange { .. } | OutlookError::TooManyTrials { .. } => {
            AppError::invalid("runs", e.to_string())
        }
        // The rest is the county's data beyond the method's bounds.
        other => AppError::precondition("OUTLOOK", "outlook.input", other.to_string()),
    }
}

pub async fn pool_outlook(
    app: &App,
    req: pb::PoolOutlookRequest,
) -> Result<pb::PoolOutlook, Status> {
    let (county, year) = super::ledger::checked_county_and_year(&req.county_code, req.policy_year)?;
    let runs = if req.runs == 0 {
        DEFAULT_RUNS
    } else {
        req.runs
    };
    if runs > MAX_RUNS {
        return Err(AppError::invalid("runs", format!("at most {MAX_RUNS}")).into());
    }
    app.authorize_county(&county).await?;
    let today = app.today();
    let (mut input, posted, reserved) = {
        let mut conn = app.store.read_snapshot().await.map_err(AppError::from)?;
        super::ledger::require_year(&mut conn, &county, year).await?;
        gather(&mut conn, &county, year, today).await?
    };
    input.runs = runs;
    input.seed = req.seed;
    let available = input.available;
    // Up to 10^8 draws: seconds of CPU, kept off the async threads.
    let projected = tokio::task::spawn_blocking(move || outlook::project(&input))
        .await
        .map_err(|e| AppError::Internal(format!("the outlook task failed: {e}")))?
        .map_err(outlook_error)?;
    Ok(pb::PoolOutlook {
        county_code: county,
        policy_year: year,
        as_of: today.to_string(),
        posted_pool_yuan: posted.to_string(),
        reserved_yuan: reserved.to_string(),
        available_yuan: available.to_string(),
        runs: projected.runs,
        seed: projected.seed,
        expected_yuan: projected.expected.to_string(),
        p5_yuan: projected.p5.to_string(),
        p50_yuan: projected.p50.to_string(),
        p95_yuan: projected.p95.to_string(),
        top_up_runs: projected.top_up_runs,
        top_up_probability: projected.top_up_probability.to_string(),
        worst_case_yuan: projected.worst_case.to_string(),
        stages: projected
            .stages
            .iter()
            .map(|s| pb::OutlookStageFigure {
                stage: stage_to_pb(s.stage).into(),
                claims: s.claims,
                amount_yuan: s.amount.to_string(),
                reached: s.history.reached,
                paid: s.history.paid,
                rate: s.rate.to_string(),
                prior: s.prior,
            })
            .collect(),
        months: projected
            .months
            .iter()
            .map(|m| pb::OutlookMonthFigure {
                month: m.month,
                years: m.years,
                largest_yuan: m.largest.to_string(),
            })
            .collect(),
        months_projected: projected.months_projected,
        years_of_history: projected.years_of_history,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_months_to_come_follow_the_date() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(
            remaining_months(2024, d(2024, 3, 15)),
            (4..=12).collect::<Vec<_>>()
        );
        assert_eq!(remaining_months(2024, d(2023, 12, 1)).len(), 12);
        assert!(remaining_months(2024, d(2024, 12, 31)).is_empty());
        assert!(remaining_months(2024, d(2025, 1, 2)).is_empty());
    }
}
