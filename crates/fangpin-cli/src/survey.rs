//! `fangpin survey`: the insurer's field survey (入户查勘).

use anyhow::Result;
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::survey_service_client::SurveyServiceClient;

use crate::ctx::{Ctx, all_pages};
use crate::names;
use crate::output::{Detail, print_claim, required, table, yes_no};

#[derive(Subcommand)]
pub enum Cmd {
    /// Hand a claim to a surveyor of the county's insurer
    Assign {
        id: String,
        #[arg(long)]
        surveyor: String,
        /// Must be the county's insurer
        #[arg(long)]
        insurer: String,
        #[arg(long)]
        by: String,
    },
    /// Record verified figures; the server computes eligibility and amount
    Findings {
        id: String,
        #[arg(long)]
        surveyor: String,
        /// Verified annual disposable income per capita, yuan
        #[arg(long)]
        income: String,
        /// Verified cost, yuan (not for income drop)
        #[arg(
            long,
            required_unless_present = "prior_income",
            default_value = "",
            hide_default_value = true
        )]
        cost: String,
        /// Income drop: an earlier verified per-capita income the baseline
        /// takes, yuan, the most recent first; repeatable
        #[arg(long = "prior-income", value_name = "YUAN", conflicts_with = "cost")]
        prior_income: Vec<String>,
        /// Income drop: evidence of both incomes; repeatable
        #[arg(long = "income-evidence", value_name = "REF")]
        income_evidence: Vec<String>,
        #[arg(long, default_value = "", hide_default_value = true)]
        notes: String,
        /// Reference to uploaded evidence (receipt, photo); repeatable
        #[arg(long = "evidence", value_name = "REF")]
        evidence: Vec<String>,
    },
    /// Recommend approval or rejection, with a reason
    Recommend {
        id: String,
        #[arg(long)]
        surveyor: String,
        #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
        approve: bool,
        #[arg(long)]
        reject: bool,
        #[arg(long)]
        reason: String,
    },
    /// A surveyor's open work with deadlines
    Queue {
        #[arg(long)]
        surveyor: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = SurveyServiceClient::new(ctx.channel.clone());
    // The findings are where the amount is computed: show the arithmetic.
    let detail = if matches!(cmd, Cmd::Findings { .. }) {
        Detail::Full
    } else {
        Detail::Summary
    };
    let response = match cmd {
        Cmd::Assign {
            id,
            surveyor,
            insurer,
            by,
        } => {
            let request = pb::AssignSurveyRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                surveyor,
                insurer,
                assigned_by: by,
            };
            client.assign_survey(request).await?
        }
        Cmd::Findings {
            id,
            surveyor,
            income,
            cost,
            prior_income,
            income_evidence,
            notes,
            evidence,
        } => {
            let request = pb::RecordFindingsRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                surveyor,
                verified_income_per_capita_yuan: income,
                verified_cost_yuan: cost,
                notes,
                evidence_refs: evidence,
                prior_incomes_per_capita_yuan: prior_income,
                income_evidence_refs: income_evidence,
            };
            client.record_findings(request).await?
        }
        Cmd::Recommend {
            id,
            surveyor,
            approve,
            reject: _,
            reason,
        } => {
            let request = pb::RecommendRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                surveyor,
                approve,
                reason,
            };
            client.recommend(request).await?
        }
        Cmd::Queue { surveyor } => return queue(&mut client, surveyor).await,
    };
    print_claim(&required(response.into_inner().claim, "claim")?, detail);
    Ok(())
}

async fn queue(
    client: &mut SurveyServiceClient<fangpin_cli::connect::Conn>,
    surveyor: String,
) -> Result<()> {
    let items = all_pages(async |page_token| {
        let request = pb::ListWorkQueueRequest {
            surveyor: surveyor.clone(),
            page_size: 0,
            page_token,
        };
        let page = client.list_work_queue(request).await?.into_inner();
        Ok((page.items, page.next_page_token))
    })
    .await?;
    let mut t = table([
        "claim",
        "household",
        "village",
        "kind",
        "state",
        "claimed",
        "deadline",
        "days left",
        "overdue",
    ]);
    for item in &items {
        let Some(c) = &item.claim else { continue };
        t.add_row([
            c.claim_id.clone(),
            c.household_id.clone(),
            c.village_code.clone(),
            names::relief_kind(c.relief_kind),
            names::claim_state(c.state),
            c.claimed_cost_yuan.clone(),
            c.survey_deadline.clone(),
            item.working_days_left.to_string(),
            yes_no(item.overdue),
        ]);
    }
    if items.is_empty() {
        println!("no work for {surveyor}");
    } else {
        println!("{t}");
        println!("{} item(s)", items.len());
    }
    Ok(())
}
