//! `fangpin sla`: the time-limit table (限时办结): what is overdue and what
//! falls due soon, stage by stage, in working days.

use anyhow::Result;
use clap::Args;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::deadline_service_client::DeadlineServiceClient;

use crate::ctx::Ctx;
use crate::names::{self, DeadlineStageArg};
use crate::output::{table, yes_no};

#[derive(Args)]
pub struct Cmd {
    #[arg(long)]
    county: String,
    /// Also list what falls due within this many working days (0 to 120)
    #[arg(long, default_value_t = 5)]
    within: u32,
    /// Only this township (nine digits)
    #[arg(long)]
    township: Option<String>,
    /// Only the survey and payout stages of this insurer
    #[arg(long)]
    insurer: Option<String>,
    /// Only this surveyor's surveys
    #[arg(long)]
    surveyor: Option<String>,
    /// Only the follow-up visits of this contact person
    #[arg(long)]
    contact_person: Option<String>,
    #[arg(long, value_enum)]
    stage: Option<DeadlineStageArg>,
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = DeadlineServiceClient::new(ctx.channel.clone());
    let response = client
        .list_deadlines(pb::ListDeadlinesRequest {
            county_code: cmd.county,
            township_code: cmd.township.unwrap_or_default(),
            insurer: cmd.insurer.unwrap_or_default(),
            surveyor: cmd.surveyor.unwrap_or_default(),
            contact_person: cmd.contact_person.unwrap_or_default(),
            stage: cmd.stage.map_or(0, |s| pb::DeadlineStage::from(s).into()),
            within_working_days: cmd.within,
        })
        .await?
        .into_inner();
    print_deadlines(&response);
    Ok(())
}

/// The case a row is about: the claim, or the listed household.
fn case_of(d: &pb::Deadline) -> String {
    if d.claim_id.is_empty() {
        format!("household {}", d.household_id)
    } else {
        d.claim_id.clone()
    }
}

pub fn print_deadlines(r: &pb::ListDeadlinesResponse) {
    println!(
        "as of {}: {} overdue, {} due soon{}",
        r.as_of,
        r.overdue,
        r.due_soon,
        if r.truncated {
            " (more cases than one listing shows)"
        } else {
            ""
        }
    );
    if r.deadlines.is_empty() {
        return;
    }
    let mut t = table([
        "stage",
        "case",
        "village",
        "began",
        "due",
        "working days over",
        "overdue",
        "responsible",
    ]);
    for d in &r.deadlines {
        t.add_row([
            names::deadline_stage(d.stage),
            case_of(d),
            d.village_code.clone(),
            d.began_on.clone(),
            format!(
                "{}{}",
                d.due_on,
                if d.provisional { " (provisional)" } else { "" }
            ),
            d.working_days_over.to_string(),
            yes_no(d.overdue),
            format!("{}: {}", d.responsible_role, d.responsible),
        ]);
    }
    println!("{t}");
}
