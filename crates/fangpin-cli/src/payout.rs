//! `fangpin payout`: county filing (备案), then the insurer's payment.

use anyhow::Result;
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::payout_service_client::PayoutServiceClient;

use crate::ctx::Ctx;
use crate::output::{Detail, print_claim, print_posting, required, table};

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
    /// Record one department's cross-check result (信息比对) before filing
    CrossCheck {
        id: String,
        /// The policy's code of the check: vehicles, real_estate, ...
        #[arg(long)]
        check: String,
        #[arg(long, value_enum)]
        result: CheckResultArg,
        /// What was found (a hit) or why it could not be checked
        #[arg(long, default_value = "")]
        details: String,
        #[arg(long)]
        by: String,
    },
    /// Decide on a cross-check hit: reject the claim, or send it back to survey
    DecideHit {
        id: String,
        #[arg(
            long,
            conflicts_with = "resurvey",
            required_unless_present = "resurvey"
        )]
        reject: bool,
        #[arg(long)]
        resurvey: bool,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: String,
    },
    /// A claim's cross-check results and what filing still needs
    CrossChecks { id: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum CheckResultArg {
    Clear,
    Hit,
    NotPossible,
}

fn print_checks(c: &pb::CrossChecks) {
    let mut t = table(["#", "check", "result", "details", "by", "at", "round"]);
    for r in &c.records {
        let result = pb::CrossCheckResult::try_from(r.result)
            .map(|v| {
                v.as_str_name()
                    .trim_start_matches("CROSS_CHECK_RESULT_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_else(|_| format!("unknown({})", r.result));
        t.add_row([
            r.seq.to_string(),
            format!("{} {}", r.check, r.check_name),
            result,
            r.details.clone(),
            r.checked_by.clone(),
            r.checked_at.clone(),
            r.findings_seq.to_string(),
        ]);
    }
    println!("{t}");
    if c.filing_allowed {
        println!("filing allowed");
    } else {
        println!(
            "filing waits for: {}{}",
            if c.missing.is_empty() {
                String::new()
            } else {
                format!("no result yet for {}", c.missing.join(", "))
            },
            if c.hits.is_empty() {
                String::new()
            } else {
                format!(" a decision on the hit(s) {}", c.hits.join(", "))
            },
        );
    }
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
        Cmd::CrossCheck {
            id,
            check,
            result,
            details,
            by,
        } => {
            let result = match result {
                CheckResultArg::Clear => pb::CrossCheckResult::Clear,
                CheckResultArg::Hit => pb::CrossCheckResult::Hit,
                CheckResultArg::NotPossible => pb::CrossCheckResult::NotPossible,
            };
            let checks = client
                .record_cross_check(pb::RecordCrossCheckRequest {
                    request_id: ctx.request_id(),
                    claim_id: id,
                    check,
                    result: result.into(),
                    details,
                    checked_by: by,
                })
                .await?
                .into_inner();
            print_checks(&checks);
        }
        Cmd::DecideHit {
            id,
            reject,
            resurvey: _,
            reason,
            by,
        } => {
            let decision = if reject {
                pb::CrossCheckDecision::Reject
            } else {
                pb::CrossCheckDecision::Resurvey
            };
            let claim = client
                .decide_cross_check_hit(pb::DecideCrossCheckHitRequest {
                    request_id: ctx.request_id(),
                    claim_id: id,
                    decision: decision.into(),
                    reason,
                    decided_by: by,
                })
                .await?
                .into_inner()
                .claim;
            print_claim(&required(claim, "claim")?, Detail::Summary);
        }
        Cmd::CrossChecks { id } => {
            let checks = client
                .list_cross_checks(pb::ListCrossChecksRequest { claim_id: id })
                .await?
                .into_inner();
            print_checks(&checks);
        }
    }
    Ok(())
}
