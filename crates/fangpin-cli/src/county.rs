//! `fangpin county`: register a county and see its pool for a policy year.

use anyhow::Result;
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::enrollment_service_client::EnrollmentServiceClient;

use crate::ctx::Ctx;
use crate::output::{self, record};

#[derive(Subcommand)]
pub enum Cmd {
    /// Register a county with the insurance company that serves it
    Register {
        /// Six-digit GB/T 2260 county code, e.g. 130426
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        rural_population: u64,
        #[arg(long)]
        insurer: String,
    },
    /// Show a county, with its pool size and premiums for a policy year
    Show {
        #[arg(long)]
        code: String,
        /// Without it only the county itself is shown
        #[arg(long)]
        year: Option<i32>,
    },
    /// Set the county office printed on every village notice (县防贫办)
    Office {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        address: String,
        #[arg(long)]
        phone: String,
    },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = EnrollmentServiceClient::new(ctx.channel.clone());
    let county = match cmd {
        Cmd::Register {
            code,
            name,
            rural_population,
            insurer,
        } => {
            let request = pb::RegisterCountyRequest {
                request_id: ctx.request_id(),
                county_code: code,
                name,
                rural_population,
                insurer,
            };
            client.register_county(request).await?.into_inner()
        }
        Cmd::Show { code, year } => {
            let request = pb::GetCountyRequest {
                county_code: code,
                policy_year: year.unwrap_or(0),
            };
            client.get_county(request).await?.into_inner()
        }
        Cmd::Office {
            code,
            name,
            address,
            phone,
        } => {
            let request = pb::SetCountyOfficeRequest {
                request_id: ctx.request_id(),
                county_code: code,
                office_name: name,
                address,
                phone,
            };
            let office = client.set_county_office(request).await?.into_inner();
            println!(
                "{}",
                record(vec![
                    ("county", office.county_code),
                    ("office", office.office_name),
                    ("address", office.address),
                    ("phone", office.phone),
                    ("updated at", office.updated_at),
                ])
            );
            return Ok(());
        }
    };
    let mut rows = vec![
        ("county", county.county_code.clone()),
        ("name", county.name.clone()),
        ("rural population", county.rural_population.to_string()),
        ("insurer", county.insurer.clone()),
    ];
    if let Some(office) = &county.office {
        rows.push(("office", office.office_name.clone()));
        rows.push(("office address", office.address.clone()));
        rows.push(("office phone", office.phone.clone()));
    }
    // The year's figures mean nothing without a policy for that year.
    if county.policy_year != 0 {
        rows.extend([
            ("policy year", output::year(county.policy_year)),
            ("pool size (persons)", county.pool_size.to_string()),
            ("persons enrolled", county.persons_enrolled.to_string()),
            ("premium due", county.premium_due_yuan.clone()),
            ("premium received", county.premium_received_yuan.clone()),
        ]);
    }
    println!("{}", record(rows));
    Ok(())
}
