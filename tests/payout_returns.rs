//! A transfer the bank returns after payout: the payout is reversed and
//! owed again, the county corrects the account, the payout is retried and
//! paid to the new account, and the ledger still ties to the fen.

use fangpin_domain::Fen;
use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{self, VILLAGE};
use fangpin_tests::{TestServer, date, request_id};

fn fen(yuan: &str) -> i64 {
    Fen::parse_yuan(yuan).expect("amount").get()
}

async fn claim(s: &TestServer, id: &str) -> pb::Claim {
    s.claims()
        .get_claim(pb::GetClaimRequest {
            claim_id: id.into(),
        })
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim")
}

#[tokio::test]
async fn a_return_after_payout_is_reversed_owed_again_corrected_and_paid_once() {
    let s = TestServer::start(date(2026, 3, 1)).await;
    flow::funded_county(&s, 2026, "1000000.00").await;
    let (id, account) = flow::filed_claim(&s, 2026, VILLAGE, 1).await;
    let paid = flow::pay(&s, &id).await.claim.expect("claim");
    assert_eq!(
        paid.paid_account_masked,
        fangpin_domain::personal_data::mask_account(&account)
    );
    assert_eq!(paid.paid_bank_reference, format!("TX-{id}"));
    let after_pay = flow::pool(&s, 2026).await;
    assert_eq!(after_pay.pool_yuan, "938250.00");

    // Five days later the bank sends the money back: the account is closed.
    s.set_date(date(2026, 3, 16));
    let returned = s
        .payout()
        .record_payout_failure(pb::RecordPayoutFailureRequest {
            request_id: request_id(),
            claim_id: id.clone(),
            recorded_by: "insurer".into(),
            bank_reference: "RET-20260316-1".into(),
            reason: "账户已销户".into(),
        })
        .await
        .expect("a return on a paid claim")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(returned.state, pb::ClaimState::PayoutFailed as i32);
    assert_eq!(returned.payout_returns, 1);
    let pool = flow::pool(&s, 2026).await;
    // The money is back in the pool, and owed again: not available.
    assert_eq!(pool.pool_yuan, "1000000.00");
    assert_eq!(pool.pending_yuan, "61750.00");
    assert_eq!(pool.available_yuan, after_pay.available_yuan);
    assert_eq!(pool.relief_paid_yuan, "0.00");
    assert!(flow::reconciliation(&s, 2026).await.ties);

    // The county corrects the account, then retries.
    let household = returned.household_id.clone();
    let corrected = s
        .enrollment()
        .correct_bank_account(pb::CorrectBankAccountRequest {
            request_id: request_id(),
            household_id: household.clone(),
            bank_account: "6228480000000009876".into(),
            reason: "户主新开一卡通账户".into(),
            corrected_by: "county-office".into(),
        })
        .await
        .expect("correct")
        .into_inner();
    assert_eq!(corrected.bank_account_masked, "***************9876");
    assert_eq!(corrected.account_corrections.len(), 1);
    let c = &corrected.account_corrections[0];
    assert_eq!(c.old_account_masked, paid.paid_account_masked);
    assert_eq!(
        (c.corrected_by.as_str(), c.reason.as_str()),
        ("county-office", "户主新开一卡通账户")
    );
    let read = s
        .enrollment()
        .get_household(pb::GetHouseholdRequest {
            household_id: household,
        })
        .await
        .expect("household")
        .into_inner();
    assert_eq!(read.account_corrections, corrected.account_corrections);
    assert!(
        !format!("{read:?}").contains("6228480000000009876"),
        "never in full"
    );

    s.payout()
        .retry_payout(pb::RetryPayoutRequest {
            request_id: request_id(),
            claim_id: id.clone(),
            retried_by: "county-office".into(),
            reason: "account corrected".into(),
        })
        .await
        .expect("retry");
    // Retrying kept the one reservation: nothing is reserved twice.
    assert_eq!(flow::pool(&s, 2026).await.pending_yuan, "61750.00");
    let repaid = flow::pay(&s, &id).await;
    let repaid_claim = repaid.claim.expect("claim");
    assert_eq!(repaid_claim.paid_account_masked, "***************9876");
    assert_eq!(repaid_claim.payout_yuan, "61750.00");
    let end = flow::pool(&s, 2026).await;
    assert_eq!(end.pool_yuan, "938250.00");
    assert_eq!(
        (end.pending_yuan.as_str(), end.relief_paid_yuan.as_str()),
        ("0.00", "61750.00")
    );

    // The ledger: payout, its reversal, the second payout; the claim's
    // relief stands once.
    let entries = s
        .ledger()
        .list_entries(pb::ListEntriesRequest {
            county_code: flow::COUNTY.into(),
            policy_year: 2026,
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    let relief: Vec<_> = entries
        .iter()
        .filter(|e| e.kind == "relief_payout")
        .collect();
    assert_eq!(relief.len(), 3);
    assert_eq!(relief[1].reverses_entry_id, relief[0].entry_id);
    let net: i64 = relief
        .iter()
        .map(|e| {
            if e.reverses_entry_id.is_empty() {
                fen(&e.amount_yuan)
            } else {
                -fen(&e.amount_yuan)
            }
        })
        .sum();
    assert_eq!(net, 6_175_000);
    let r = flow::reconciliation(&s, 2026).await;
    assert!(r.ties, "{r:?}");
    assert_eq!(r.relief_yuan, "61750.00");
    let history: Vec<String> = s
        .claims()
        .get_claim_history(pb::GetClaimRequest {
            claim_id: id.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .transitions
        .into_iter()
        .map(|t| t.event)
        .collect();
    assert!(
        history.ends_with(&[
            "pay".into(),
            "return_payout".into(),
            "retry_payout".into(),
            "pay".into()
        ]),
        "{history:?}"
    );
    assert_eq!(claim(&s, &id).await.payout_returns, 1);
    s.stop().await;
}
