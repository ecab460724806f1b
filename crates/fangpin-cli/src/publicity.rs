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
