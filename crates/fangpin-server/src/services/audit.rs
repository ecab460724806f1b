//! AuditService: the audit log's hash chains (docs/audit-log.md) through the
//! API, for the county office and the auditors in the console. The walk is
//! the domain's `Verifier`, the same one `fangpind admin audit verify` runs
//! on the database directly; that command stays the check that trusts no
//! running server.

use std::ops::ControlFlow;

use fangpin_domain::audit::{BreakKind, ChainHead, Verifier, hex};
use fangpin_proto::tonic::{self, Request, Response, Status};
use fangpin_proto::v1::{self as pb, audit_service_server::AuditService};
use fangpin_store::audit as audit_store;

use crate::write_path::app::App;
use crate::write_path::convert::Check;
use crate::write_path::error::AppError;

/// ListAuditEntries' largest page. An entry carries its object's state
/// before and after, a few kilobytes at most.
pub const MAX_AUDIT_PAGE: u32 = 1000;
const DEFAULT_AUDIT_PAGE: u32 = 200;

pub struct AuditApi(pub App);

fn break_kind(kind: BreakKind) -> &'static str {
    match kind {
        BreakKind::BadHash => "bad_hash",
        BreakKind::Gap => "gap",
        BreakKind::BadLink => "bad_link",
        BreakKind::HeadMismatch => "head_mismatch",
    }
}

impl AuditApi {
    async fn checked_county(&self, county_code: &str) -> Result<String, Status> {
        let mut c = Check::new();
        let county = c.county("county_code", county_code);
        c.finish()?;
        let county = county.expect("checked").as_str().to_string();
        self.0.authorize_county(&county).await?;
        Ok(county)
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn verify_audit_chain(
        &self,
        request: Request<pb::VerifyAuditChainRequest>,
    ) -> Result<Response<pb::AuditChainReport>, Status> {
        let county = self
            .checked_county(&request.into_inner().county_code)
            .await?;
        let verified_at = self
            .0
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        // One row at a time through the verifier: constant memory however
        // long the chain. Rows appended while it walks are past its end and
        // are checked by the next walk.
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let mut verifier = Verifier::new(ChainHead::GENESIS);
        let mut broken = None;
        audit_store::stream(&mut conn, &county, |entry| match verifier.check(&entry) {
            Ok(()) => ControlFlow::Continue(()),
            Err(at) => {
                broken = Some(at);
                ControlFlow::Break(())
            }
        })
        .await
        .map_err(AppError::from)?;
        drop(conn);
        let head = verifier.head();
        let report = match broken {
            None => pb::AuditChainReport {
                county_code: county,
                entries_checked: verifier.checked(),
                head_seq: head.seq,
                head_hash: if head.seq == 0 {
                    String::new()
                } else {
                    hex(&head.hash)
                },
                intact: true,
                verified_at,
                ..Default::default()
            },
            Some(at) => {
                tracing::error!(
                    county = %county,
                    seq = at.seq,
                    kind = %at.kind,
                    "audit chain broken (AuditService.VerifyAuditChain)"
                );
                pb::AuditChainReport {
                    county_code: county,
                    entries_checked: verifier.checked(),
                    intact: false,
                    broken_at_seq: at.seq,
                    last_good_seq: at.last_good,
                    break_kind: break_kind(at.kind).to_string(),
                    verified_at,
                    ..Default::default()
                }
            }
        };
        Ok(Response::new(report))
    }

    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let size = match req.page_size {
            0 => Some(DEFAULT_AUDIT_PAGE),
            n => c.page_size("page_size", n, MAX_AUDIT_PAGE),
        };
        c.finish()?;
        let size = size.expect("checked");
        let county = self.checked_county(&req.county_code).await?;
        let mut conn = self.0.store.read().await.map_err(AppError::from)?;
        let entries = audit_store::page(&mut conn, &county, req.after_seq, size)
            .await
            .map_err(AppError::from)?;
        drop(conn);
        let next_after_seq = match entries.last() {
            Some(last) if entries.len() == size as usize => last.seq,
            _ => 0,
        };
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::AuditEntry {
                    seq: e.seq,
                    at: e.at,
                    actor: e.actor,
                    role: e.role,
                    rpc: e.rpc,
                    object: e.object,
                    before: e.before,
                    after: e.after,
                    request_id: e.request_id,
                    prev_hash: hex(&e.prev_hash),
                    hash: hex(&e.hash),
                })
                .collect(),
            next_after_seq,
        }))
    }
}
