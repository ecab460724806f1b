//! The working-day calendar through the real server: intake in late
//! December never stops when the deadline crosses into a year the built-in
//! calendar does not cover (the deadline is provisional, counted Monday to
//! Friday), and once the operator loads that year's calendar file and
//! restarts, every provisional deadline is recounted and the change is in
//! the claim's history and the audit log.

use std::path::Path;
use std::sync::Arc;

use fangpin_proto::v1 as pb;
use fangpin_server::ServerOptions;
use fangpin_tests::flow::{COUNTY, INSURER, SURVEYOR, VILLAGE, put_policy, register_county};
use fangpin_tests::{TestServer, date, request_id, resident_id};

/// Made-up 2027 days that pass the statutory check; see the file's header.
fn test_calendar() -> Arc<fangpin_domain::calendar::WorkCalendar> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/calendar-2027-TEST-ONLY.txt");
    Arc::new(
        fangpin_server::write_path::calendar::load_file(&path).expect("the test calendar loads"),
    )
}

async fn submit(s: &TestServer, n: u32) -> pb::Claim {
    let household = s
        .enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2026,
            village_code: VILLAGE.into(),
            household_type: pb::HouseholdType::UnstableEscaped.into(),
            head: Some(pb::Person {
                id_number: resident_id("19600101", n),
                name: format!("户主{n}"),
                relation: String::new(),
            }),
            members: vec![],
            bank_account: format!("621700{n:010}"),
        })
        .await
        .expect("enrol")
        .into_inner()
        .household_id;
    s.claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: household,
            relief_kind: pb::ReliefKind::Illness.into(),
            channel: pb::Channel::VillageApplication.into(),
            event_date: "2026-12-18".into(),
            event_reference: format!("住院号-{n}"),
            claimed_cost_yuan: "30000.00".into(),
            description: "脑梗住院".into(),
            submitted_by: "village-committee".into(),
        })
        .await
        .expect("intake never stops for want of a calendar")
        .into_inner()
        .claim
        .expect("claim")
}

async fn claim(s: &TestServer, id: &str) -> pb::Claim {
    s.claims()
        .get_claim(pb::GetClaimRequest {
            claim_id: id.into(),
        })
        .await
        .expect("get claim")
        .into_inner()
        .claim
        .expect("claim")
}

async fn history(s: &TestServer, id: &str) -> Vec<pb::Transition> {
    s.claims()
        .get_claim_history(pb::GetClaimRequest {
            claim_id: id.into(),
        })
        .await
        .expect("history")
        .into_inner()
        .transitions
}

async fn service_info(s: &TestServer) -> pb::ServiceInfo {
    fangpin_proto::v1::service_info_service_client::ServiceInfoServiceClient::new(s.channel.clone())
        .get_service_info(pb::GetServiceInfoRequest {})
        .await
        .expect("service info")
        .into_inner()
}

async fn queue(s: &TestServer) -> Vec<pb::WorkItem> {
    s.survey()
        .list_work_queue(pb::ListWorkQueueRequest {
            surveyor: SURVEYOR.into(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("the work queue works past the calendar too")
        .into_inner()
        .items
}

#[tokio::test]
async fn late_december_intake_gets_provisional_deadlines_recounted_when_the_year_is_loaded() {
    // Monday 2026-12-21: 15 working days end in 2027.
    let s = TestServer::start(date(2026, 12, 21)).await;
    register_county(&s).await;
    put_policy(&s, 2026).await;
    // Ten days of coverage left: the service says so.
    let info = service_info(&s).await;
    assert_eq!(
        (info.calendar_last_year, info.calendar_days_left),
        (2026, 10)
    );
    assert!(
        info.calendar_warning.contains("2026-12-31 (10 days)"),
        "{info:?}"
    );
    let late = submit(&s, 1).await;
    // 12-22..12-25 (4), 12-28..12-31 (8), then 2027 counted Monday to
    // Friday: 01-01 (9), 01-04..01-08 (14), 01-11 (15).
    assert_eq!(late.survey_deadline, "2027-01-11");
    assert!(late.survey_deadline_provisional);
    let rows = history(&s, &late.claim_id).await;
    let note = rows
        .iter()
        .find(|t| t.event == "provisional_deadline")
        .expect("the history says the deadline is provisional");
    assert!(note.reason.contains("2027-01-11"), "{note:?}");
    assert!(note.reason.contains("Monday to Friday"), "{note:?}");

    s.survey()
        .assign_survey(pb::AssignSurveyRequest {
            request_id: request_id(),
            claim_id: late.claim_id.clone(),
            surveyor: SURVEYOR.into(),
            insurer: INSURER.into(),
            assigned_by: "county-office".into(),
        })
        .await
        .expect("assign");
    // Into January, still without 2027: the queue answers, provisionally.
    s.set_date(date(2027, 1, 4));
    let items = queue(&s).await;
    assert_eq!(items.len(), 1);
    assert!(items[0].deadline_provisional);
    assert_eq!(items[0].working_days_left, 5, "01-05..01-08 and 01-11");

    // The operator loads 2027 and restarts.
    let options = ServerOptions {
        calendar: test_calendar(),
        ..s.restart_options()
    };
    let s = s.restart_with(options.clone()).await;
    let info = service_info(&s).await;
    assert_eq!(info.calendar_last_covered_day, "2027-12-31");
    assert_eq!(info.calendar_warning, "", "a year of coverage ahead");
    let recounted = claim(&s, &late.claim_id).await;
    // 2027-01-01 is a day off in the loaded year: one working day later.
    assert_eq!(recounted.survey_deadline, "2027-01-12");
    assert!(!recounted.survey_deadline_provisional);
    let rows = history(&s, &late.claim_id).await;
    let change = rows
        .iter()
        .find(|t| t.event == "recompute_deadline")
        .expect("the recount is in the history");
    assert_eq!(
        change.actor,
        fangpin_server::write_path::calendar::CALENDAR_ACTOR
    );
    assert!(
        change
            .reason
            .contains("2027-01-11 (provisional) -> 2027-01-12"),
        "{change:?}"
    );
    let items = queue(&s).await;
    assert!(!items[0].deadline_provisional);
    assert_eq!(items[0].working_days_left, 6);

    // A second restart recounts nothing again.
    let s = s.restart_with(options).await;
    let rows = history(&s, &late.claim_id).await;
    assert_eq!(
        rows.iter()
            .filter(|t| t.event == "recompute_deadline")
            .count(),
        1
    );
    s.stop().await;
}

#[test]
fn a_calendar_file_that_breaks_the_rules_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/calendar-2027-TEST-ONLY.txt"),
    )
    .expect("fixture");
    let dropped = dir.path().join("dropped.txt");
    std::fs::write(&dropped, text.replace("2027-06-09 off 端午节 (test)\n", "")).expect("write");
    let e =
        fangpin_server::write_path::calendar::load_file(&dropped).expect_err("a day is missing");
    let message = e.to_string();
    assert!(message.starts_with("calendar.file "), "{message}");
    assert!(message.contains("dropped.txt"), "{message}");
    assert!(message.contains("statutory holidays are 13"), "{message}");
    let gap = dir.path().join("gap.txt");
    std::fs::write(&gap, text.replace("2027", "2028")).expect("write");
    let e = fangpin_server::write_path::calendar::load_file(&gap).expect_err("2027 is missing");
    assert!(e.to_string().contains("gap"), "{e}");
}
