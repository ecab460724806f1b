//! LedgerService: the fund pool's balance, entries, and county top-ups.

use fangpin_domain::Fen;
use fangpin_domain::ledger::{Posting, PostingKind};
use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, ledger_service_server::LedgerService};
use fangpin_store::counties;
use fangpin_store::ledger as ledger_store;

use crate::app::App;
use crate::convert::{self, Check, MAX_LABEL_CHARS};
use crate::error::AppError;
use crate::services::pool_balance;

pub const MAX_ENTRIES_PAGE: u32 = 1_000;

pub struct LedgerApi(pub App);

fn county_and_year(c: &mut Check, county_code: &str, year: i32) -> (Option<String>, Option<i32>) {
    (
        c.county("county_code", county_code)
            .map(|c| c.as_str().to_string()),
        c.year("policy_year", year),
    )
}

async fn require_county(conn: &mut fangpin_store::Conn, county: &str) -> Result<(), AppError> {
    match counties::get_county(conn, county).await? {
        Some(_) => Ok(()),
        None => Err(AppError::not_found("county", county)),
    }
}

#[tonic::async_trait]
impl LedgerService for LedgerApi {
    async fn get_pool_balance(
        &self,
        request: Request<pb::PoolRequest>,
    ) -> Result<Response<pb::PoolBalance>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let (county, year) = county_and_year(&mut c, &req.county_code, req.policy_year);
        c.finish()?;
        let county = county.expect("checked");
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        require_county(&mut conn, &county).await?;
        Ok(Response::new(
            pool_balance(&mut conn, &county, year.expect("checked")).await?,
        ))
    }

    async fn list_top_up_flags(
        &self,
        request: Request<pb::ListTopUpFlagsRequest>,
    ) -> Result<Response<pb::ListTopUpFlagsResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let (county, year) = county_and_year(&mut c, &req.county_code, req.policy_year);
        c.finish()?;
        let county = county.expect("checked");
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        require_county(&mut conn, &county).await?;
        let flags = ledger_store::list_flags(
            &mut conn,
            &county,
            year.expect("checked"),
            req.include_cleared,
        )
        .await
        .map_err(AppError::from)?;
        Ok(Response::new(pb::ListTopUpFlagsResponse {
            flags: flags.iter().map(convert::flag_to_pb).collect(),
        }))
    }

    async fn record_top_up(
        &self,
        request: Request<pb::RecordTopUpRequest>,
    ) -> Result<Response<pb::TopUpResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let (county, year) = county_and_year(&mut c, &req.county_code, req.policy_year);
        let amount = c.positive_money("amount_yuan", &req.amount_yuan);
        let reference = c.text("reference", &req.reference, MAX_LABEL_CHARS);
        c.finish()?;
        let (county, year, reference) = (
            county.expect("checked"),
            year.expect("checked"),
            reference.expect("checked"),
        );
        let posting = Posting::new(PostingKind::TopUpReceived, amount.expect("checked"))
            .map_err(|e| AppError::invalid("amount_yuan", e.to_string()))?;
        let lock = county.clone();
        let response = self
            .0
            .write(
                "RecordTopUp",
                &req,
                &request_id.expect("checked").to_string(),
                &lock,
                move |conn, ctx| {
                    Box::pin(async move {
                        require_county(conn, &county).await?;
                        let entry = ledger_store::append_entry(
                            conn,
                            &county,
                            year,
                            posting,
                            None,
                            &reference,
                            &ctx.request_id,
                            ctx.now,
                        )
                        .await?;
                        let (balances, entries) =
                            ledger_store::balances(conn, &county, year).await?;
                        // Flags stay open until the pool is whole again: a partial
                        // top-up leaves county finance's call standing.
                        let cleared = if balances.pool() < Fen::ZERO {
                            Vec::new()
                        } else {
                            ledger_store::clear_flags(conn, &county, year, entry.entry_id, ctx.now)
                                .await?
                        };
                        let pool = convert::pool_to_pb(&county, year, &balances, entries);
                        Ok(pb::TopUpResponse {
                            entry: Some(convert::entry_to_pb(&entry)),
                            pool: Some(pool),
                            cleared: cleared.iter().map(convert::flag_to_pb).collect(),
                        })
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let (county, year) = county_and_year(&mut c, &req.county_code, req.policy_year);
        let size = c.page_size("page_size", req.page_size, MAX_ENTRIES_PAGE);
        let after = if req.page_token.is_empty() {
            Some(0)
        } else {
            match req.page_token.parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    c.bad("page_token", "is not a token this service issued");
                    None
                }
            }
        };
        c.finish()?;
        let (county, size) = (county.expect("checked"), size.expect("checked"));
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        require_county(&mut conn, &county).await?;
        let entries = ledger_store::list_entries(
            &mut conn,
            &county,
            year.expect("checked"),
            after.expect("checked"),
            size,
        )
        .await
        .map_err(AppError::from)?;
        let next_page_token = convert::next_page_token(&entries, size, |e| e.sequence.to_string());
        Ok(Response::new(pb::ListEntriesResponse {
            entries: entries.iter().map(convert::entry_to_pb).collect(),
            next_page_token,
        }))
    }
}
