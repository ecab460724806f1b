//! The audit log end to end: every mutating call of a claim's life appends
//! one entry to its county's hash chain (replays and rejections none), the
//! chain verifies, and an entry edited directly in the database by someone
//! who first drops the append-only trigger is named by the verifier.

use std::ops::ControlFlow;

use fangpin_domain::audit::{AuditEntry, BreakKind, ChainBreak};
use fangpin_proto::tonic::{Code, Request, metadata::MetadataValue};
use fangpin_proto::v1 as pb;
use fangpin_server::admin::{
    export_audit, parse_heads, render_heads, verify_audit, verify_audit_against,
};
use fangpin_server::transport::caller::{ACTOR_HEADER, UNAUTHENTICATED};
use fangpin_store::Backend;
use fangpin_tests::flow::{
    COUNTY, INSURER, VILLAGE, filed_claim, funded_county, premium, put_policy,
};
use fangpin_tests::{TestServer, date, request_id, resident_id};
use sqlx::{AnyConnection, Connection, Executor};

/// The entries of the test county's chain, as stored.
async fn chain(conn: &mut AnyConnection) -> Vec<AuditEntry> {
    let mut entries = Vec::new();
    fangpin_store::audit::stream(conn, COUNTY, |entry| {
        entries.push(entry);
        ControlFlow::Continue(())
    })
    .await
    .expect("read the audit log");
    entries
}

#[tokio::test]
async fn the_chain_verifies_and_an_edited_row_is_named() {
    let s = TestServer::start(date(2024, 1, 10)).await;
    let mut register = Request::new(pb::RegisterCountyRequest {
        request_id: request_id(),
        county_code: COUNTY.into(),
        name: "涉县".into(),
        rural_population: 20_000,
        insurer: INSURER.into(),
    });
    register.metadata_mut().insert(
        ACTOR_HEADER,
        MetadataValue::from_static("county-office-130426-li"),
    );
    s.enrollment()
        .register_county(register)
        .await
        .expect("county");
    put_policy(&s, 2024).await;
    premium(&s, 2024, "100000.00").await.expect("premium");
    // Enrol, submit, assign, findings, recommend, open, close, file: 8 writes.
    let (claim_id, account) = filed_claim(&s, 2024, VILLAGE, 1).await;
    let pay = pb::PayClaimRequest {
        request_id: request_id(),
        claim_id: claim_id.clone(),
        paid_by: "insurer".into(),
        bank_reference: format!("TX-{claim_id}"),
    };
    let pay_id = pay.request_id.clone();
    s.payout().pay_claim(pay.clone()).await.expect("pay");
    // A replay changes nothing, and a refusal changes nothing: no entries.
    s.payout().pay_claim(pay.clone()).await.expect("replayed");
    let refused = s
        .payout()
        .pay_claim(pb::PayClaimRequest {
            request_id: request_id(),
            ..pay
        })
        .await
        .expect_err("a claim is paid once");
    assert_eq!(refused.code(), Code::FailedPrecondition);

    // Intact: 1 county + 1 policy + 1 premium + 8 to filing + 1 payment.
    let reports = verify_audit(s.database_url(), None).await.expect("verify");
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].county, COUNTY);
    let (entries, head) = reports[0].verdict.expect("the chain is intact");
    assert_eq!(entries, 12);
    assert!(
        reports[0].to_string().starts_with(&format!(
            "county {COUNTY}: ok: 12 entries, head {}",
            fangpin_domain::audit::hex(&head.hash)
        )),
        "{}",
        reports[0]
    );

    let mut conn = AnyConnection::connect(s.database_url())
        .await
        .expect("open the database");
    let log = chain(&mut conn).await;
    assert_eq!(log.len(), 12);
    assert_eq!(log[11].head(), head);
    let first = &log[0];
    assert_eq!(
        (
            first.actor.as_str(),
            first.role.as_str(),
            first.rpc.as_str(),
            first.object.as_str(),
            first.before.as_str()
        ),
        (
            "county-office-130426-li",
            "",
            "/fangpin.v1.EnrollmentService/RegisterCounty",
            "130426/RegisterCounty",
            ""
        )
    );
    assert!(
        first.after.starts_with(r#"{"response_sha256":""#),
        "{first:?}"
    );
    let paid = &log[11];
    assert_eq!(
        (
            paid.actor.as_str(),
            paid.rpc.as_str(),
            paid.before.as_str(),
            paid.request_id.as_str()
        ),
        (
            UNAUTHENTICATED,
            "/fangpin.v1.PayoutService/PayClaim",
            r#"{"state":"filed"}"#,
            pay_id.as_str()
        )
    );
    assert_eq!(
        log.iter().filter(|e| e.rpc.ends_with("/PayClaim")).count(),
        1,
        "one payment, one entry"
    );
    assert_eq!(paid.object, format!("{COUNTY}/claim/{claim_id}"));
    assert!(paid.after.contains(r#""state":"paid""#), "{paid:?}");
    // No full ID number or bank account in any field of any entry.
    let id_number = resident_id("19650101", 1);
    for e in &log {
        let f = e.fields();
        for text in [
            f.at,
            f.actor,
            f.role,
            f.rpc,
            f.object,
            f.before,
            f.after,
            f.request_id,
        ] {
            assert!(
                !text.contains(&id_number) && !text.contains(&account),
                "personal data in {e:?}"
            );
        }
    }

    // The table refuses changes while its trigger stands.
    let update = "UPDATE audit_log SET after = '{\"state\":\"rejected\"}' \
                  WHERE county_code = $1 AND seq = 7";
    let blocked = sqlx::query(update).bind(COUNTY).execute(&mut conn).await;
    assert!(blocked.is_err(), "the audit log took an update");

    // Someone with database access drops the trigger and edits entry 7 (the
    // survey findings).
    let drop_trigger = match Backend::of_url(s.database_url()).expect("known backend") {
        Backend::Sqlite => "DROP TRIGGER audit_log_no_update",
        Backend::Postgres => "DROP TRIGGER audit_log_no_change ON audit_log",
    };
    conn.execute(drop_trigger).await.expect("drop the trigger");
    let edited = sqlx::query(update)
        .bind(COUNTY)
        .execute(&mut conn)
        .await
        .expect("edit entry 7");
    assert_eq!(edited.rows_affected(), 1);
    conn.close().await.expect("close");

    let broken = ChainBreak {
        seq: 7,
        last_good: 6,
        kind: BreakKind::BadHash,
    };
    for county in [None, Some(COUNTY)] {
        let reports = verify_audit(s.database_url(), county)
            .await
            .expect("verify");
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].county, COUNTY);
        assert_eq!(reports[0].verdict, Err(broken));
        assert_eq!(
            reports[0].to_string(),
            format!(
                "county {COUNTY}: audit chain broken at entry 7 (bad hash: the entry was changed); \
                 entries up to 6 verify"
            )
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn deleting_the_newest_entries_is_caught_by_a_head_kept_elsewhere() {
    let s = TestServer::start(date(2024, 1, 10)).await;
    funded_county(&s, 2024, "100000.00").await;

    // The county office records the heads somewhere the database's
    // administrators cannot reach, and exports the chain for an outsider.
    let reports = verify_audit(s.database_url(), None).await.expect("verify");
    let heads = parse_heads(&render_heads(&reports)).expect("heads read back");
    assert_eq!(heads[COUNTY].seq, 3);
    let dir = tempfile::tempdir().expect("temporary directory");
    let exported = dir.path().join("audit.jsonl");
    assert_eq!(
        export_audit(s.database_url(), COUNTY, &exported)
            .await
            .expect("export"),
        3
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&exported)
        .expect("read the export")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[2]["hash"].as_str(),
        Some(fangpin_domain::audit::hex(&heads[COUNTY].hash).as_str())
    );
    assert_eq!(
        lines[0]["prev_hash"].as_str(),
        Some("0".repeat(64).as_str())
    );

    // Growing is fine: the chain still passes through the recorded head.
    premium(&s, 2024, "1.00").await.expect("premium");
    let grown = verify_audit_against(s.database_url(), None, &heads)
        .await
        .expect("verify");
    assert!(grown[0].verdict.is_ok(), "{grown:?}");

    // Someone drops the trigger and deletes the two newest entries: the rest
    // still links up, and only the recorded head shows the loss.
    let mut conn = AnyConnection::connect(s.database_url())
        .await
        .expect("connect");
    let drop_trigger = match Backend::of_url(s.database_url()).expect("known backend") {
        Backend::Sqlite => "DROP TRIGGER audit_log_no_delete",
        Backend::Postgres => "DROP TRIGGER audit_log_no_change ON audit_log",
    };
    conn.execute(drop_trigger).await.expect("drop the trigger");
    sqlx::query("DELETE FROM audit_log WHERE county_code = $1 AND seq >= 3")
        .bind(COUNTY)
        .execute(&mut conn)
        .await
        .expect("delete the newest entries");
    conn.close().await.expect("close");
    let without = verify_audit(s.database_url(), None).await.expect("verify");
    assert!(without[0].verdict.is_ok(), "undetectable without a head");
    let with = verify_audit_against(s.database_url(), None, &heads)
        .await
        .expect("verify");
    assert_eq!(
        with[0].verdict,
        Err(ChainBreak {
            seq: 3,
            last_good: 2,
            kind: BreakKind::HeadMismatch,
        })
    );
    s.stop().await;
}
