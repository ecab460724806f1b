//! `fangpin publicity`: village deliberation and publicity (乡村评议公示).

use anyhow::Result;
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::publicity_service_client::PublicityServiceClient;

use crate::ctx::Ctx;
use crate::names;
use crate::output::{Detail, print_claim, required, table};

#[derive(Subcommand)]
pub enum Cmd {
    /// Post a recommended claim on its village's notice board
    Open {
        id: String,
        #[arg(long)]
        by: String,
    },
    /// What a village's notice board shows now
    Notices {
        /// Twelve-digit village code
        #[arg(long)]
        village: String,
    },
    /// Raise an objection; the claim goes back to survey
    Object {
        id: String,
        #[arg(long)]
        objector: String,
        #[arg(long)]
        reason: String,
    },
    /// Close the publicity after its last objection day
    Close {
        id: String,
        #[arg(long)]
        by: String,
    },
    /// The village's notice as a PDF to post on the board (公示)
    Print {
        /// Twelve-digit village code
        #[arg(long)]
        village: String,
        /// Where to write it (default: the server's file name, here)
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Record the village deliberation (村级评议) of a recommended claim
    Deliberate {
        id: String,
        /// YYYY-MM-DD
        #[arg(long)]
        held_on: String,
        /// Members of the meeting (应到)
        #[arg(long)]
        members: u32,
        /// Members present (实到)
        #[arg(long)]
        present: u32,
        /// Present members in favour (同意)
        #[arg(long)]
        in_favour: u32,
        /// Evidence id of the minutes (`fangpin evidence upload` first)
        #[arg(long)]
        minutes: String,
        #[arg(long)]
        by: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Record the township review (乡级审核): approve, or send back with a reason
    TownshipReview {
        id: String,
        /// Send the case back to survey (the reason is required)
        #[arg(long)]
        send_back: bool,
        #[arg(long, default_value = "")]
        reason: String,
        #[arg(long)]
        by: String,
    },
    /// A claim's county steps: their order, the next one, every record
    Reviews { id: String },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = PublicityServiceClient::new(ctx.channel.clone());
    let response = match cmd {
        Cmd::Open { id, by } => {
            let request = pb::OpenPublicityRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                opened_by: by,
            };
            client.open_publicity(request).await?
        }
        Cmd::Object {
            id,
            objector,
            reason,
        } => {
            let request = pb::RaiseObjectionRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                objector,
                reason,
            };
            client.raise_objection(request).await?
        }
        Cmd::Close { id, by } => {
            let request = pb::ClosePublicityRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                closed_by: by,
            };
            client.close_publicity(request).await?
        }
        Cmd::Print { village, out } => {
            let doc = client
                .print_notice(pb::PrintNoticeRequest {
                    village_code: village,
                })
                .await?
                .into_inner();
            let path = out.unwrap_or_else(|| std::path::PathBuf::from(&doc.file_name));
            std::fs::write(&path, &doc.pdf)
                .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
            println!(
                "{}: {} household(s), {} bytes, sha256 {}",
                path.display(),
                doc.households,
                doc.pdf.len(),
                doc.sha256
            );
            return Ok(());
        }
        Cmd::Deliberate {
            id,
            held_on,
            members,
            present,
            in_favour,
            minutes,
            by,
            note,
        } => {
            let request = pb::RecordDeliberationRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                held_on,
                members,
                present,
                in_favour,
                minutes_evidence_id: minutes,
                recorded_by: by,
                note,
            };
            print_reviews(&client.record_deliberation(request).await?.into_inner());
            return Ok(());
        }
        Cmd::TownshipReview {
            id,
            send_back,
            reason,
            by,
        } => {
            let decision = if send_back {
                pb::TownshipDecision::SentBack
            } else {
                pb::TownshipDecision::Approved
            };
            let request = pb::RecordTownshipReviewRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                decision: decision.into(),
                reason,
                reviewed_by: by,
            };
            print_reviews(&client.record_township_review(request).await?.into_inner());
            return Ok(());
        }
        Cmd::Reviews { id } => {
            let request = pb::ListReviewsRequest { claim_id: id };
            print_reviews(&client.list_reviews(request).await?.into_inner());
            return Ok(());
        }
        Cmd::Notices { village } => {
            let request = pb::ListNoticesRequest {
                village_code: village,
            };
            let notices = client.list_notices(request).await?.into_inner().notices;
            let mut t = table([
                "claim",
                "household head",
                "ID",
                "kind",
                "amount",
                "opens on",
                "last objection day",
            ]);
            for n in &notices {
                // The server's own name (possibly Chinese) reads better on a
                // notice board than our enum name; fall back to ours.
                let kind = if n.relief_kind_name.is_empty() {
                    names::relief_kind(n.relief_kind)
                } else {
                    n.relief_kind_name.clone()
                };
                t.add_row([
                    n.claim_id.clone(),
                    n.household_head.clone(),
                    n.id_number_masked.clone(),
                    kind,
                    n.amount_yuan.clone(),
                    n.opens_on.clone(),
                    n.last_objection_day.clone(),
                ]);
            }
            if notices.is_empty() {
                println!("no notices");
            } else {
                println!("{t}");
                println!("{} notice(s)", notices.len());
            }
            return Ok(());
        }
    };
    print_claim(
        &required(response.into_inner().claim, "claim")?,
        Detail::Summary,
    );
    Ok(())
}

fn step_name(step: i32) -> &'static str {
    match pb::ReviewStep::try_from(step) {
        Ok(pb::ReviewStep::VillageDeliberation) => "village_deliberation",
        Ok(pb::ReviewStep::TownshipReview) => "township_review",
        Ok(pb::ReviewStep::Publicity) => "publicity",
        Ok(pb::ReviewStep::Filing) => "filing",
        _ => "-",
    }
}

fn print_reviews(r: &pb::ClaimReviews) {
    let steps: Vec<&str> = r.steps.iter().map(|s| step_name(*s)).collect();
    println!("claim {}: {}", r.claim_id, names::claim_state(r.state));
    println!(
        "steps: {}; next: {}",
        steps.join(" → "),
        step_name(r.next_step)
    );
    if !r.deliberations.is_empty() {
        let mut t = table([
            "#",
            "held on",
            "members",
            "present",
            "in favour",
            "agreed",
            "minutes",
            "by",
        ]);
        for d in &r.deliberations {
            t.add_row([
                d.seq.to_string(),
                d.held_on.clone(),
                d.members.to_string(),
                d.present.to_string(),
                d.in_favour.to_string(),
                if d.agreed { "yes" } else { "no" }.to_string(),
                d.minutes_evidence_id.clone(),
                d.recorded_by.clone(),
            ]);
        }
        println!("{t}");
    }
    if !r.township_reviews.is_empty() {
        let mut t = table(["#", "decision", "reason", "by", "at"]);
        for v in &r.township_reviews {
            let decision = match pb::TownshipDecision::try_from(v.decision) {
                Ok(pb::TownshipDecision::SentBack) => "sent back",
                Ok(pb::TownshipDecision::Approved) => "approved",
                _ => "-",
            };
            t.add_row([
                v.seq.to_string(),
                decision.to_string(),
                v.reason.clone(),
                v.reviewed_by.clone(),
                v.reviewed_at.clone(),
            ]);
        }
        println!("{t}");
    }
}
