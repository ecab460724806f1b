//! Two policy years of one county's fund through gRPC: year one ends in
//! surplus and rolls over; year two runs short, raises a top-up flag, is topped
//! up and closes; a failed bank transfer is voided and retried; the
//! reconciliation of both years ties to the ledger; a GBK bank statement is
//! matched to the payouts.

use calamine::Reader;
use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{
    COUNTY, INSURER, OTHER_VILLAGE, VILLAGE, close, filed_claim, pay, pool, premium, put_policy,
    reconciliation, top_up,
};
use fangpin_tests::{TestServer, date, request_id};

#[tokio::test]
async fn two_years_roll_over_run_short_top_up_and_reconcile() {
    let s = TestServer::start(date(2024, 1, 10)).await;
    s.enrollment()
        .register_county(pb::RegisterCountyRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            name: "涉县".into(),
            rural_population: 20_000,
            insurer: INSURER.into(),
        })
        .await
        .expect("county");
    put_policy(&s, 2024).await;
    put_policy(&s, 2025).await;

    // Year one: 100,000 premium, one relief of 61,750.00.
    premium(&s, 2024, "100000.00").await.expect("premium");
    let (a, account_a) = filed_claim(&s, 2024, VILLAGE, 1).await;
    let reserved = pool(&s, 2024).await;
    assert_eq!(
        (
            reserved.pending_yuan.as_str(),
            reserved.available_yuan.as_str()
        ),
        ("61750.00", "38250.00")
    );
    let refused = close(&s, 2024).await.expect_err("a reservation is pending");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    pay(&s, &a).await;

    // Close: 15% of 61,750 = 9,262.50 fee; 38,250 - 9,262.50 = 28,987.50 carried over.
    s.set_date(date(2025, 1, 5));
    let closed = close(&s, 2024).await.expect("close 2024");
    assert_eq!(
        closed.service_fee_entry.expect("fee").amount_yuan,
        "9262.50"
    );
    assert_eq!(
        closed.rollover_out_entry.expect("out").amount_yuan,
        "28987.50"
    );
    assert_eq!(closed.rollover_in_entry.expect("in").policy_year, 2025);
    let r2024 = closed.reconciliation.expect("reconciliation");
    assert!(r2024.ties);
    assert_eq!(
        (
            r2024.opening_yuan.as_str(),
            r2024.premiums_yuan.as_str(),
            r2024.relief_yuan.as_str(),
            r2024.service_fee_yuan.as_str()
        ),
        ("0.00", "100000.00", "61750.00", "9262.50")
    );
    assert_eq!(
        (
            r2024.closing_yuan.as_str(),
            r2024.rolled_over_yuan.as_str(),
            r2024.pool_yuan.as_str()
        ),
        ("28987.50", "28987.50", "0.00")
    );
    assert_eq!(r2024.by_relief_kind.len(), 1);
    assert_eq!(
        (
            r2024.by_relief_kind[0].key.as_str(),
            r2024.by_relief_kind[0].claims
        ),
        ("illness", 1)
    );
    assert_eq!(r2024.by_township[0].key, "130426100");

    // Closing twice changes nothing; a closed year takes no postings.
    let again = close(&s, 2024).await.expect("close again");
    assert!(again.service_fee_entry.is_none() && again.rollover_out_entry.is_none());
    assert_eq!(again.reconciliation.expect("r").entries, r2024.entries);
    assert_eq!(
        premium(&s, 2024, "1.00").await.expect_err("closed").code(),
        Code::FailedPrecondition
    );

    // Year two opens with last year's closing balance.
    let opened = pool(&s, 2025).await;
    assert_eq!(
        (opened.opening_yuan.as_str(), opened.pool_yuan.as_str()),
        ("28987.50", "28987.50")
    );
    premium(&s, 2025, "100000.00").await.expect("premium 2025");
    let (b, _) = filed_claim(&s, 2025, VILLAGE, 2).await;
    let (c, _) = filed_claim(&s, 2025, OTHER_VILLAGE, 3).await;
    // 128,987.50 holds two reservations of 61,750.00 but not a third.
    let (d, _) = filed_claim(&s, 2025, OTHER_VILLAGE, 4).await;
    let short = pool(&s, 2025).await;
    assert_eq!(
        (short.available_yuan.as_str(), short.shortfall_yuan.as_str()),
        ("-56262.50", "56262.50")
    );
    let flags = s
        .ledger()
        .list_top_up_flags(pb::ListTopUpFlagsRequest {
            county_code: COUNTY.into(),
            policy_year: 2025,
            include_cleared: false,
        })
        .await
        .expect("flags")
        .into_inner()
        .flags;
    assert_eq!(
        (
            flags.len(),
            flags[0].claim_id.as_str(),
            flags[0].shortfall_yuan.as_str()
        ),
        (1, d.as_str(), "56262.50")
    );

    // 2025 has promised more than it holds: 2024 cannot be reopened and take
    // its 28,987.50 carry-in back.
    let reopen_2024 = s
        .ledger()
        .reopen_year(pb::ReopenYearRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2024,
            reopened_by: "county office".into(),
            reason: "correction".into(),
        })
        .await
        .expect_err("next year is short");
    assert_eq!(reopen_2024.code(), Code::FailedPrecondition);
    assert!(
        reopen_2024.message().contains("28987.50"),
        "{}",
        reopen_2024.message()
    );

    // The bank returns one transfer: the reservation is voided, the claim can be retried.
    let failed = s
        .payout()
        .record_payout_failure(pb::RecordPayoutFailureRequest {
            request_id: request_id(),
            claim_id: c.clone(),
            recorded_by: "insurer".into(),
            bank_reference: "TX-returned".into(),
            reason: "account closed".into(),
        })
        .await
        .expect("failure")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(failed.state, pb::ClaimState::PayoutFailed as i32);
    assert_eq!(pool(&s, 2025).await.pending_yuan, "123500.00");
    let retried = s
        .payout()
        .retry_payout(pb::RetryPayoutRequest {
            request_id: request_id(),
            claim_id: c.clone(),
            retried_by: "county".into(),
            reason: "new account".into(),
        })
        .await
        .expect("retry")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(
        (retried.state, retried.reserved_yuan.as_str()),
        (pb::ClaimState::Filed as i32, "61750.00")
    );
    for id in [&b, &c, &d] {
        pay(&s, id).await;
    }
    assert_eq!(pool(&s, 2025).await.pool_yuan, "-56262.50");

    // The flag blocks the close; the top-up clears it; the fee still needs money.
    s.set_date(date(2026, 1, 5));
    assert_eq!(
        close(&s, 2025).await.expect_err("flag open").code(),
        Code::FailedPrecondition
    );
    assert_eq!(top_up(&s, 2025, "56262.50").await.cleared.len(), 1);
    let fee_short = close(&s, 2025).await.expect_err("fee not covered");
    assert!(
        fee_short.message().contains("27787.50"),
        "{}",
        fee_short.message()
    );
    top_up(&s, 2025, "27787.50").await;
    s.set_date(date(2026, 1, 5));
    let closed = close(&s, 2025).await.expect("close 2025");
    assert_eq!(
        closed.service_fee_entry.expect("fee").amount_yuan,
        "27787.50"
    );
    assert!(closed.rollover_out_entry.is_none(), "nothing left to carry");
    let r2025 = closed.reconciliation.expect("reconciliation");
    assert!(r2025.ties);
    // 28,987.50 + 100,000 + 84,050 - 185,250 - 27,787.50 = 0
    assert_eq!(
        (
            r2025.opening_yuan.as_str(),
            r2025.top_ups_yuan.as_str(),
            r2025.relief_yuan.as_str(),
            r2025.closing_yuan.as_str()
        ),
        ("28987.50", "84050.00", "185250.00", "0.00")
    );
    let townships: Vec<(String, u64)> = r2025
        .by_township
        .iter()
        .map(|l| (l.key.clone(), l.claims))
        .collect();
    assert_eq!(
        townships,
        [("130426100".to_string(), 1), ("130426203".to_string(), 2)]
    );
    // Closing balance of 2024 = opening balance of 2025.
    assert_eq!(
        reconciliation(&s, 2024).await.closing_yuan,
        r2025.opening_yuan
    );

    // An audited reopen reverses the fee; closing again posts it anew.
    let reopened = s
        .ledger()
        .reopen_year(pb::ReopenYearRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2025,
            reopened_by: "county office".into(),
            reason: "late invoice".into(),
        })
        .await
        .expect("reopen")
        .into_inner();
    assert_eq!(reopened.state, "open");
    assert_eq!(
        reopened
            .events
            .iter()
            .map(|e| e.event.as_str())
            .collect::<Vec<_>>(),
        ["close", "reopen"]
    );
    assert_eq!(pool(&s, 2025).await.pool_yuan, "27787.50");
    let reclosed = close(&s, 2025).await.expect("close again");
    assert!(reclosed.reconciliation.expect("r").ties);
    let final_2025 = reconciliation(&s, 2025).await;
    assert_eq!(
        (
            final_2025.service_fee_yuan.as_str(),
            final_2025.pool_yuan.as_str()
        ),
        ("27787.50", "0.00")
    );
    let statement = s
        .ledger()
        .list_entries(pb::ListEntriesRequest {
            county_code: COUNTY.into(),
            policy_year: 2025,
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("entries")
        .into_inner()
        .entries;
    let reversal = statement
        .iter()
        .find(|e| !e.reverses_entry_id.is_empty())
        .expect("a reversal");
    assert!(
        statement
            .iter()
            .any(|e| e.entry_id == reversal.reverses_entry_id && e.kind == "service_fee")
    );

    // The 2024 balance as of the day before the close still shows the pool.
    let as_of = s
        .ledger()
        .get_balance_as_of(pb::BalanceAsOfRequest {
            county_code: COUNTY.into(),
            policy_year: 2024,
            as_of: "2024-12-31".into(),
        })
        .await
        .expect("as of")
        .into_inner();
    assert_eq!(as_of.pool_yuan, "38250.00");

    // The finance bureau's spreadsheet: a real XLSX, read back cell by cell.
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("对账-2024.xlsx");
    fangpin_cli::export::write_reconciliation_xlsx(&r2024, &path).expect("write xlsx");
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook(&path).expect("the workbook opens");
    assert_eq!(workbook.sheet_names(), ["汇总", "按救助类型", "按乡镇"]);
    let summary = workbook.worksheet_range("汇总").expect("summary sheet");
    let amount_of = |label: &str| {
        summary
            .rows()
            .find(|row| row.first().is_some_and(|c| *c == label))
            .and_then(|row| row.get(2).cloned())
            .unwrap_or_else(|| panic!("no row {label}"))
    };
    assert_eq!(amount_of("期末余额"), calamine::Data::Float(28_987.5));
    assert_eq!(amount_of("服务费"), calamine::Data::Float(9_262.5));
    assert_eq!(amount_of("防贫救助"), calamine::Data::Float(61_750.0));

    // A GBK bank statement: the payout matches, an unrelated line does not.
    let csv = format!(
        "交易日期,交易金额,对方账号,摘要\n2024-03-12,\"-61,750.00\",{account_a},网银转账 TX-{a}\n2024-03-13,-100.00,6222000000000001,手续费\n"
    );
    let (gbk, _, bad) = encoding_rs::GBK.encode(&csv);
    assert!(!bad);
    let report = s
        .ledger()
        .match_bank_statement(pb::MatchBankStatementRequest {
            county_code: COUNTY.into(),
            policy_year: 2024,
            statement_csv: gbk.into_owned(),
        })
        .await
        .expect("match")
        .into_inner();
    assert_eq!(report.encoding, "GBK");
    assert_eq!(
        (
            report.matched.len(),
            report.unmatched_in_bank.len(),
            report.unmatched_in_ledger.len()
        ),
        (1, 1, 0)
    );
    assert_eq!(report.matched[0].entry.as_ref().expect("entry").claim_id, a);
    s.stop().await;
}
