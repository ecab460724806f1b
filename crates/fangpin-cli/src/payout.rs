//! `fangpin payout`: county filing (备案), then the insurer's payment.

use anyhow::Result;
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::payout_service_client::PayoutServiceClient;

use crate::ctx::Ctx;
use crate::output::{Detail, print_claim, print_posting, required};

#[derive(Subcommand)]
pub enum Cmd {
    /// File a claim whose publicity passed, with the cross-check result
    File {
        id: String,
        #[arg(long)]
        by: String,
        /// The county departments' cross-check (vehicles, property, business)
        #[arg(long)]
        note: String,
    },
    /// Pay a filed claim from the pool (assessed amount less any advance)
    Pay {
        id: String,
        #[arg(long)]
        by: String,
        /// The bank transfer's reference
        #[arg(long)]
        bank_ref: String,
    },
    /// Record that the bank returned a filed claim's transfer: its
    /// reservation is voided and the claim becomes payout_failed
    Fail {
        id: String,
        #[arg(long)]
        by: String,
        /// The returned transfer's bank reference
        #[arg(long)]
        bank_ref: String,
        /// What the bank said, e.g. account closed, name mismatch
        #[arg(long)]
        reason: String,
    },
    /// Reserve the relief again for a failed payout once the account is fixed
    Retry {
        id: String,
        #[arg(long)]
        by: String,
        /// What was corrected
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = PayoutServiceClient::new(ctx.channel.clone());
    match cmd {
        Cmd::File { id, by, note } => {
            let request = pb::FileClaimRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                filed_by: by,
                cross_check_note: note,
            };
            let claim = client.file_claim(request).await?.into_inner().claim;
            print_claim(&required(claim, "claim")?, Detail::Summary);
        }
        Cmd::Pay { id, by, bank_ref } => {
            let request = pb::PayClaimRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                paid_by: by,
                bank_reference: bank_ref,
            };
            let paid = client.pay_claim(request).await?.into_inner();
            print_claim(&required(paid.claim, "claim")?, Detail::Summary);
            if paid.entry.is_none() {
                println!("No posting: the emergency advance already covered the relief.");
            }
            // Shortfalls are flagged at filing, so a payout carries no flag.
            print_posting(paid.entry.as_ref(), paid.pool.as_ref(), None);
        }
        Cmd::Fail {
            id,
            by,
            bank_ref,
            reason,
        } => {
            let request = pb::RecordPayoutFailureRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                recorded_by: by,
                bank_reference: bank_ref,
                reason,
            };
            let claim = client
                .record_payout_failure(request)
                .await?
                .into_inner()
                .claim;
            print_claim(&required(claim, "claim")?, Detail::Summary);
        }
        Cmd::Retry { id, by, reason } => {
            let request = pb::RetryPayoutRequest {
                request_id: ctx.request_id(),
                claim_id: id,
                retried_by: by,
                reason,
            };
            let claim = client.retry_payout(request).await?.into_inner().claim;
            print_claim(&required(claim, "claim")?, Detail::Summary);
        }
    }
    Ok(())
}
