//! `fangpin premium`: premiums the county pays into its fund pool.

use anyhow::Result;
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::enrollment_service_client::EnrollmentServiceClient;

use crate::ctx::Ctx;
use crate::output::print_posting;

#[derive(Subcommand)]
pub enum Cmd {
    /// Post premium received from the county into the pool
    Record {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        /// Yuan, e.g. 1500000.00
        #[arg(long)]
        amount: String,
        /// The bank or treasury voucher
        #[arg(long)]
        reference: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = EnrollmentServiceClient::new(ctx.channel.clone());
    match cmd {
        Cmd::Record {
            county,
            year,
            amount,
            reference,
        } => {
            let request = pb::RecordPremiumRequest {
                request_id: ctx.request_id(),
                county_code: county,
                policy_year: year,
                amount_yuan: amount,
                reference,
            };
            let posting = client.record_premium(request).await?.into_inner();
            print_posting(posting.entry.as_ref(), posting.pool.as_ref(), None);
        }
    }
    Ok(())
}
