//! `fangpin status`: the server's version, business date and how far its
//! working-day calendar reaches, with the warning to load the next year.

use anyhow::Result;
use fangpin_proto::v1::{self as pb, service_info_service_client::ServiceInfoServiceClient};

use crate::ctx::Ctx;

pub async fn run(ctx: &Ctx) -> Result<()> {
    let info = ServiceInfoServiceClient::new(ctx.channel.clone())
        .get_service_info(pb::GetServiceInfoRequest {})
        .await?
        .into_inner();
    println!("fangpind {}; business date {}", info.version, info.today);
    println!(
        "working-day calendar: {}..={}, last covered day {} ({} days left)",
        info.calendar_first_year,
        info.calendar_last_year,
        info.calendar_last_covered_day,
        info.calendar_days_left
    );
    if !info.storage_warning.is_empty() {
        println!("WARNING: {}", info.storage_warning);
    }
    if !info.calendar_warning.is_empty() {
        println!("WARNING: {}", info.calendar_warning);
    }
    Ok(())
}
