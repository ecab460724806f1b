//! `fangpin pool`: the county fund pool (资金池) and county finance's top-ups.

use anyhow::Result;
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::ledger_service_client::LedgerServiceClient;

use crate::ctx::{Ctx, all_pages};
use crate::output::{entries_table, flags_table, pool_record, print_posting};

#[derive(Subcommand)]
pub enum Cmd {
    /// The pool's balance and what went in and out
    Balance {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
    },
    /// Calls on county finance to top up the pool (open ones by default)
    Flags {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        /// Include flags already cleared
        #[arg(long)]
        all: bool,
    },
    /// Record money county finance added to the pool
    TopUp {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        reference: String,
    },
    /// Every posting of the pool, in order
    Entries {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
    },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = LedgerServiceClient::new(ctx.channel.clone());
    match cmd {
        Cmd::Balance { county, year } => {
            let request = pb::PoolRequest {
                county_code: county,
                policy_year: year,
            };
            let pool = client.get_pool_balance(request).await?.into_inner();
            println!("{}", pool_record(&pool));
        }
        Cmd::Flags { county, year, all } => {
            let request = pb::ListTopUpFlagsRequest {
                county_code: county,
                policy_year: year,
                include_cleared: all,
            };
            let flags = client.list_top_up_flags(request).await?.into_inner().flags;
            if flags.is_empty() {
                println!("no flags{}", if all { "" } else { " open" });
            } else {
                println!("{}", flags_table(&flags));
                println!("{} flag(s)", flags.len());
            }
        }
        Cmd::TopUp {
            county,
            year,
            amount,
            reference,
        } => {
            let request = pb::RecordTopUpRequest {
                request_id: ctx.request_id(),
                county_code: county,
                policy_year: year,
                amount_yuan: amount,
                reference,
            };
            let top_up = client.record_top_up(request).await?.into_inner();
            print_posting(top_up.entry.as_ref(), top_up.pool.as_ref(), None);
            if !top_up.cleared.is_empty() {
                println!("Cleared flags");
                println!("{}", flags_table(&top_up.cleared));
            }
        }
        Cmd::Entries { county, year } => {
            let entries = all_pages(async |page_token| {
                let request = pb::ListEntriesRequest {
                    county_code: county.clone(),
                    policy_year: year,
                    page_size: 0,
                    page_token,
                };
                let page = client.list_entries(request).await?.into_inner();
                Ok((page.entries, page.next_page_token))
            })
            .await?;
            if entries.is_empty() {
                println!("no entries");
            } else {
                println!("{}", entries_table(&entries));
                let plural = if entries.len() == 1 {
                    "entry"
                } else {
                    "entries"
                };
                println!("{} {plural}", entries.len());
            }
        }
    }
    Ok(())
}
