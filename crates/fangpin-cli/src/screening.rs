//! `fangpin screening`: find enrolled households whose department data
//! crossed the policy's thresholds, and hand them to the insurer as claims.

use anyhow::Result;
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::screening_service_client::ScreeningServiceClient;

use crate::ctx::{Ctx, all_pages};
use crate::names::{self, ReliefKindArg};
use crate::output::{record, table};

#[derive(Subcommand)]
pub enum Cmd {
    /// Screen every enrolled household of the county as of a date
    Run {
        #[arg(long)]
        county: String,
        /// Windows end with this date's month (YYYY-MM-DD)
        #[arg(long)]
        as_of: String,
    },
    /// A run's summary
    Show { run_id: String },
    /// A run's candidates, with the reason for each
    Candidates {
        run_id: String,
        /// Print the reason line under each candidate
        #[arg(long)]
        reasons: bool,
    },
    /// Submit a department-referral claim for each candidate without one
    Claims {
        run_id: String,
        /// Recorded as the claims' submitter
        #[arg(long)]
        submitted_by: String,
    },
    /// Issue the run's monthly monitoring list (月度监测名单) to the townships
    IssueList {
        run_id: String,
        #[arg(long)]
        by: String,
    },
    /// A run's monitoring lists and their entries
    List {
        run_id: String,
        /// Only this township (nine digits)
        #[arg(long)]
        township: Option<String>,
    },
    /// Confirm a listed household after the home check; submits its claim
    Confirm {
        run_id: String,
        #[arg(long)]
        household: String,
        #[arg(long, value_enum)]
        kind: ReliefKindArg,
        /// The day of the home check (YYYY-MM-DD)
        #[arg(long)]
        checked_on: String,
        #[arg(long)]
        note: String,
        #[arg(long)]
        by: String,
    },
    /// Dismiss a listed household with the reason
    Dismiss {
        run_id: String,
        #[arg(long)]
        household: String,
        #[arg(long, value_enum)]
        kind: ReliefKindArg,
        #[arg(long)]
        checked_on: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = ScreeningServiceClient::new(ctx.channel.clone());
    match cmd {
        Cmd::Run { county, as_of } => {
            let run = client
                .run_screening(pb::RunScreeningRequest {
                    request_id: ctx.request_id(),
                    county_code: county,
                    as_of,
                })
                .await?
                .into_inner();
            print_run(&run);
        }
        Cmd::Show { run_id } => {
            let run = client
                .get_screening_run(pb::GetScreeningRunRequest { run_id })
                .await?
                .into_inner();
            print_run(&run);
        }
        Cmd::Candidates { run_id, reasons } => {
            let candidates = all_pages(async |page_token| {
                let page = client
                    .list_screening_candidates(pb::ListScreeningCandidatesRequest {
                        run_id: run_id.clone(),
                        page_size: 1_000,
                        page_token,
                    })
                    .await?
                    .into_inner();
                Ok((page.candidates, page.next_page_token))
            })
            .await?;
            let mut t = table([
                "household",
                "village",
                "type",
                "kind",
                "months",
                "cost",
                "threshold",
                "over by",
                "income",
                "claim",
            ]);
            for c in &candidates {
                t.add_row(vec![
                    c.household_id.clone(),
                    c.village_code.clone(),
                    names::household_type(c.household_type),
                    names::relief_kind(c.relief_kind),
                    format!("{}..{}", c.window_first_month, c.window_last_month),
                    c.cost_yuan.clone(),
                    c.threshold_yuan.clone(),
                    c.over_by_yuan.clone(),
                    if c.verified_income_yuan.is_empty() {
                        "unverified".into()
                    } else {
                        c.verified_income_yuan.clone()
                    },
                    c.claim_id.clone(),
                ]);
            }
            println!("{t}");
            if reasons {
                for c in &candidates {
                    println!("{}: {}", c.household_id, c.reason);
                }
            }
            println!("{} candidates", candidates.len());
        }
        Cmd::Claims {
            run_id,
            submitted_by,
        } => {
            let out = client
                .create_screening_claims(pb::CreateScreeningClaimsRequest {
                    request_id: ctx.request_id(),
                    run_id,
                    submitted_by,
                })
                .await?
                .into_inner();
            println!(
                "{}",
                record(vec![
                    ("claims created", out.created.to_string()),
                    ("already claimed", out.already_claimed.to_string()),
                    ("remaining (run again)", out.remaining.to_string()),
                ])
            );
            for id in &out.claim_ids {
                println!("{id}");
            }
        }
        Cmd::IssueList { run_id, by } => {
            let lists = client
                .issue_monitoring_list(pb::IssueMonitoringListRequest {
                    request_id: ctx.request_id(),
                    run_id,
                    issued_by: by,
                })
                .await?
                .into_inner()
                .lists;
            print_lists(&lists);
        }
        Cmd::List { run_id, township } => {
            let r = client
                .get_monitoring_list(pb::GetMonitoringListRequest {
                    run_id,
                    township_code: township.unwrap_or_default(),
                })
                .await?
                .into_inner();
            print_lists(&r.lists);
            print_entries(&r.entries);
        }
        Cmd::Confirm {
            run_id,
            household,
            kind,
            checked_on,
            note,
            by,
        } => {
            let entry = client
                .confirm_list_entry(pb::ConfirmListEntryRequest {
                    request_id: ctx.request_id(),
                    run_id,
                    household_id: household,
                    relief_kind: pb::ReliefKind::from(kind).into(),
                    checked_on,
                    note,
                    checked_by: by,
                })
                .await?
                .into_inner();
            print_entries(&[entry]);
        }
        Cmd::Dismiss {
            run_id,
            household,
            kind,
            checked_on,
            reason,
            by,
        } => {
            let entry = client
                .dismiss_list_entry(pb::DismissListEntryRequest {
                    request_id: ctx.request_id(),
                    run_id,
                    household_id: household,
                    relief_kind: pb::ReliefKind::from(kind).into(),
                    checked_on,
                    reason,
                    checked_by: by,
                })
                .await?
                .into_inner();
            print_entries(&[entry]);
        }
    }
    Ok(())
}

fn print_lists(lists: &[pb::MonitoringList]) {
    let mut t = table([
        "township",
        "issued",
        "due",
        "entries",
        "pending",
        "confirmed",
        "dismissed",
        "overdue",
    ]);
    for l in lists {
        t.add_row([
            l.township_code.clone(),
            l.issued_on.clone(),
            l.due_on.clone(),
            l.entries.to_string(),
            l.pending.to_string(),
            l.confirmed.to_string(),
            l.dismissed.to_string(),
            l.overdue.to_string(),
        ]);
    }
    println!("{t}");
}

fn print_entries(entries: &[pb::MonitoringListEntry]) {
    let mut t = table([
        "township",
        "village",
        "household",
        "kind",
        "cost",
        "status",
        "overdue",
        "checked",
        "by",
        "note",
        "claim",
    ]);
    for e in entries {
        t.add_row([
            e.township_code.clone(),
            e.village_code.clone(),
            e.household_id.clone(),
            names::relief_kind(e.relief_kind),
            e.cost_yuan.clone(),
            names::list_entry_status(e.status),
            crate::output::yes_no(e.overdue),
            e.checked_on.clone(),
            e.checked_by.clone(),
            e.note.clone(),
            e.claim_id.clone(),
        ]);
    }
    println!("{t}");
}

fn print_run(run: &pb::ScreeningRun) {
    println!(
        "{}",
        record(vec![
            ("run", run.run_id.clone()),
            ("county", run.county_code.clone()),
            ("policy year", run.policy_year.to_string()),
            ("policy version", run.policy_version.to_string()),
            ("as of", run.as_of.clone()),
            ("households screened", run.households_screened.to_string()),
            (
                "with costs in the feeds",
                run.households_with_costs.to_string()
            ),
            ("candidates", run.candidates.to_string()),
            ("over the income line", run.excluded_by_income.to_string()),
            ("imports used", run.import_ids.len().to_string()),
            ("created at", run.created_at.clone()),
        ])
    );
}
