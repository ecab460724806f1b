//! The year ends when it ends: CloseYear is refused before the policy
//! year's last day and while any of its claims is not final, and money or
//! pool reads for a year without a policy are refused.

use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{self, COUNTY, VILLAGE};
use fangpin_tests::{TestServer, date, request_id};
use tonic_types::StatusExt;

fn precondition_kind(e: &fangpin_proto::tonic::Status) -> String {
    e.get_details_precondition_failure()
        .and_then(|p| p.violations.first().map(|v| v.r#type.clone()))
        .unwrap_or_default()
}

#[tokio::test]
async fn close_waits_for_the_last_day_and_for_every_claim_to_be_final() {
    let s = TestServer::start(date(2026, 3, 1)).await;
    flow::funded_county(&s, 2026, "1000000.00").await;
    let (paid, _) = flow::filed_claim(&s, 2026, VILLAGE, 1).await;
    flow::pay(&s, &paid).await;
    let (open, _) = flow::filed_claim(&s, 2026, VILLAGE, 2).await;

    // In March, and on the last day itself: the year is still running.
    for today in [date(2026, 3, 2), date(2026, 12, 31)] {
        s.set_date(today);
        let e = flow::close(&s, 2026).await.expect_err("the year runs");
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert_eq!(precondition_kind(&e), "YEAR_NOT_ENDED", "{e:?}");
        assert!(e.message().contains("2026-12-31"), "{e:?}");
    }
    // After it: refused while a claim is not final, naming it.
    s.set_date(date(2027, 1, 4));
    let e = flow::close(&s, 2026)
        .await
        .expect_err("a claim is filed, unpaid");
    assert_eq!(precondition_kind(&e), "CLAIMS_OPEN", "{e:?}");
    assert!(e.message().contains(&format!("{open} (filed)")), "{e:?}");
    assert!(!e.message().contains(&paid), "a paid claim is final: {e:?}");
    assert!(e.message().starts_with("1 claims of 2026"), "{e:?}");
    flow::pay(&s, &open).await;
    let closed = flow::close(&s, 2026)
        .await
        .expect("settled, after the year");
    assert!(closed.reconciliation.expect("report").ties);
    s.stop().await;
}

#[tokio::test]
async fn a_year_without_a_policy_takes_no_money_and_has_no_pool() {
    let s = TestServer::start(date(2026, 3, 1)).await;
    flow::funded_county(&s, 2026, "1000.00").await;
    let e = s
        .ledger()
        .record_top_up(pb::RecordTopUpRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2027,
            amount_yuan: "100.00".into(),
            reference: "a top-up into a year nobody set up".into(),
        })
        .await
        .expect_err("no policy for 2027");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert_eq!(precondition_kind(&e), "POLICY");
    let e = flow::premium(&s, 2027, "100.00")
        .await
        .expect_err("no policy");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    let year = |policy_year| pb::PoolRequest {
        county_code: COUNTY.into(),
        policy_year,
    };
    let mut ledger = s.ledger();
    let reads = [
        ledger.get_pool_balance(year(2027)).await.map(|_| ()),
        ledger.get_reconciliation(year(2027)).await.map(|_| ()),
        ledger.get_year_status(year(2027)).await.map(|_| ()),
        ledger
            .list_top_up_flags(pb::ListTopUpFlagsRequest {
                county_code: COUNTY.into(),
                policy_year: 2027,
                include_cleared: true,
            })
            .await
            .map(|_| ()),
        ledger
            .list_entries(pb::ListEntriesRequest {
                county_code: COUNTY.into(),
                policy_year: 2027,
                page_size: 10,
                page_token: String::new(),
            })
            .await
            .map(|_| ()),
        ledger
            .get_balance_as_of(pb::BalanceAsOfRequest {
                county_code: COUNTY.into(),
                policy_year: 2027,
                as_of: "2027-01-31".into(),
            })
            .await
            .map(|_| ()),
    ];
    for (i, read) in reads.into_iter().enumerate() {
        let e = read.expect_err("2027 does not exist");
        assert_eq!(e.code(), Code::NotFound, "read {i}: {e:?}");
        assert!(e.message().contains("130426/2027"), "read {i}: {e:?}");
    }
    // The year that exists reads as before.
    assert_eq!(flow::pool(&s, 2026).await.pool_yuan, "1000.00");
    s.stop().await;
}
