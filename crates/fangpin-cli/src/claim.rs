//! `fangpin claim`: intake, the claim record and its history, and the
//! emergency advance (先救助后认定).

use anyhow::Result;
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::claim_service_client::ClaimServiceClient;

use crate::ctx::{Ctx, all_pages};
use crate::names::{self, ChannelArg, ClaimStateArg, ReliefKindArg};
use crate::output::{Detail, claims_table, print_claim, print_posting, required, table};

#[derive(Subcommand)]
pub enum Cmd {
    /// Take in a claim for an enrolled household
    Submit {
        /// The id `household enroll` printed
        #[arg(long)]
        household: String,
        #[arg(long, value_enum)]
        kind: ReliefKindArg,
        #[arg(long, value_enum)]
        channel: ChannelArg,
        /// YYYY-MM-DD, within the household's policy year
        #[arg(long)]
        event_date: String,
        /// Hospital admission number, school year, police report...
        #[arg(long)]
        event_ref: String,
        /// Yuan, e.g. 38000.00
        #[arg(long)]
        cost: String,
        #[arg(long, default_value = "", hide_default_value = true)]
        description: String,
        /// Who took the claim in: village committee, county office, township head
        #[arg(long)]
        by: String,
    },
    /// Show a claim with its assessment and the arithmetic behind it
    Show { id: String },
    /// List a county's claims, optionally in one state
    List {
        #[arg(long)]
        county: String,
        #[arg(long, value_enum)]
        state: Option<ClaimStateArg>,
        /// Only this township's claims (9 digits)
        #[arg(long, default_value = "")]
        township: String,
        /// Only this village's claims (12 digits)
        #[arg(long, default_value = "")]
        village: String,
        /// Intake on or after this day (YYYY-MM-DD)
        #[arg(long, default_value = "")]
        from: String,
        /// Intake on or before this day (YYYY-MM-DD)
        #[arg(long, default_value = "")]
        to: String,
    },
    /// Every state change with actor, time and reason
    History { id: String },
    /// Pay an emergency-channel advance before the survey decides
    Advance {
        id: String,
        #[arg(long)]
        amount: String,
        /// The township head on record as approving it (checked; may be left out)
        #[arg(long, default_value = "")]
        approved_by: String,
        #[arg(long)]
        reason: String,
    },
    /// The township head approves emergency help up to an amount (遇困即扶)
    ApproveEmergency {
        id: String,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
    },
    /// The township head refuses emergency help (the survey may still relieve it)
    RefuseEmergency {
        id: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        reason: String,
    },
    /// The township's decision on an emergency claim, if any
    Emergency { id: String },
}

fn print_decision(d: &pb::EmergencyDecision) {
    let decision = match pb::EmergencyDecisionKind::try_from(d.decision) {
        Ok(pb::EmergencyDecisionKind::Approved) => format!("approved up to {}", d.amount_yuan),
        Ok(pb::EmergencyDecisionKind::Refused) => "refused".to_string(),
        _ => "no decision yet".to_string(),
    };
    println!(
        "{}",
        crate::output::record(vec![
            ("claim", d.claim_id.clone()),
            ("decision", decision),
            ("by", d.decided_by.clone()),
            ("reason", d.reason.clone()),
            ("at", d.decided_at.clone()),
        ])
    );
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = ClaimServiceClient::new(ctx.channel.clone());
    match cmd {
        Cmd::Submit {
            household,
            kind,
            channel,
            event_date,
            event_ref,
            cost,
            description,
            by,
        } => {
            let request = pb::SubmitClaimRequest {
                request_id: ctx.request_id(),
                household_id: household,
                relief_kind: pb::ReliefKind::from(kind).into(),
                channel: pb::Channel::from(channel).into(),
                event_date,
                event_reference: event_ref,
                claimed_cost_yuan: cost,
                description,
                submitted_by: by,
            };
            let claim = client.submit_claim(request).await?.into_inner().claim;
            print_claim(&required(claim, "claim")?, Detail::Summary);
        }
        Cmd::Show { id } => {
            let request = pb::GetClaimRequest { claim_id: id };
            let claim = client.get_claim(request).await?.into_inner().claim;
            print_claim(&required(claim, "claim")?, Detail::Full);
        }
        Cmd::List {
            county,
            state,
            township,
            village,
            from,
            to,
        } => {
            let state = state.map_or(pb::ClaimState::Unspecified, pb::ClaimState::from);
            let claims = all_pages(async |page_token| {
                let request = pb::ListClaimsRequest {
                    county_code: county.clone(),
                    state: state.into(),
                    page_size: 0,
                    page_token,
                    township_code: township.clone(),
                    village_code: village.clone(),
                    intake_from: from.clone(),
                    intake_to: to.clone(),
                    ..Default::default()
                };
                let page = client.list_claims(request).await?.into_inner();
                Ok((page.claims, page.next_page_token))
            })
            .await?;
            if claims.is_empty() {
                println!("no claims");
            } else {
                println!("{}", claims_table(&claims));
                println!("{} claim(s)", claims.len());
            }
        }
        Cmd::History { id } => {
            let request = pb::GetClaimRequest { claim_id: id };
            let history = client.get_claim_history(request).await?.into_inner();
            let mut t = table(["at", "event", "from", "to", "actor", "reason"]);
            for step in &history.transitions {
                t.add_row([
                    step.at.clone(),
                    step.event.clone(),
                    // Intake has no state before it; "unspecified" would
                    // read like a data error.
                    if step.from_state == pb::ClaimState::Unspecified as i32 {
                        "-".to_owned()
                    } else {
                        names::claim_state(step.from_state)
                    },
                    names::claim_state(step.to_state),
                    step.actor.clone(),
                    step.reason.clone(),
                ]);
            }
            println!("{t}");
        }
        Cmd::Advance {
            id,
            amount,
            approved_by,
            reason,
        } => {
            let request = pb::PayEmergencyAdvanceRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                amount_yuan: amount,
                approved_by,
                reason,
            };
            let advance = client.pay_emergency_advance(request).await?.into_inner();
            print_claim(&required(advance.claim, "claim")?, Detail::Summary);
            print_posting(
                advance.entry.as_ref(),
                advance.pool.as_ref(),
                advance.top_up_flag.as_ref(),
            );
        }
        Cmd::ApproveEmergency {
            id,
            amount,
            by,
            reason,
        } => {
            let d = client
                .approve_emergency(pb::ApproveEmergencyRequest {
                    request_id: ctx.request_id(),
                    claim_id: id,
                    amount_yuan: amount,
                    approved_by: by,
                    reason,
                })
                .await?
                .into_inner();
            print_decision(&d);
        }
        Cmd::RefuseEmergency { id, by, reason } => {
            let d = client
                .refuse_emergency(pb::RefuseEmergencyRequest {
                    request_id: ctx.request_id(),
                    claim_id: id,
                    refused_by: by,
                    reason,
                })
                .await?
                .into_inner();
            print_decision(&d);
        }
        Cmd::Emergency { id } => {
            let d = client
                .get_emergency_decision(pb::GetClaimRequest { claim_id: id })
                .await?
                .into_inner();
            print_decision(&d);
        }
    }
    Ok(())
}
