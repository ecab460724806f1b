//! After the payout and across the year (issue 14), through the real server
//! on SQLite and PostgreSQL: a paid claim's follow-up with a visit on time,
//! one missed, clearing and reopening; a monthly monitoring list partly
//! confirmed, partly dismissed and the rest overdue after the 10th; the
//! time-limit listing against a table worked out by hand across the 2026
//! Spring Festival; the surveyor's work queue in deadline order.

use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{
    COUNTY, INSURER, OTHER_VILLAGE, SURVEYOR, VILLAGE, filed_claim, pay, premium, register_county,
};
use fangpin_tests::{TestServer, date, request_id, resident_id};
use sha2::{Digest, Sha256};

/// The example policy for `year` with a follow-up visit every 10 working
/// days (short, so a test can miss one) and `survey_days` for the survey.
async fn put_policy_with(s: &TestServer, year: i32, survey_days: u32) {
    let county = fangpin_domain::identity::CountyCode::parse(COUNTY).expect("valid");
    let mut policy = fangpin_domain::policy::Policy::example(county, year);
    policy.survey_deadline_working_days = survey_days;
    policy.time_limits = Some(fangpin_domain::policy::TimeLimits {
        filing_working_days: 5,
        payout_working_days: 5,
        follow_up_visit_working_days: 10,
        monitoring_list_due_day: 10,
    });
    s.policy()
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(fangpin_server::write_path::convert::policy_to_pb(
                &policy, 0, false,
            )),
        })
        .await
        .expect("policy");
}

fn contact(name: &str, phone: &str) -> pb::ContactPerson {
    pb::ContactPerson {
        name: name.into(),
        work_unit: "乡政府".into(),
        phone: phone.into(),
        phone_masked: String::new(),
    }
}

async fn assign_contacts(
    s: &TestServer,
    claim: &str,
    contacts: Vec<pb::ContactPerson>,
) -> Result<pb::FollowUpCase, fangpin_proto::tonic::Status> {
    s.follow_up()
        .assign_contacts(pb::AssignContactsRequest {
            request_id: request_id(),
            claim_id: claim.into(),
            contacts,
            assigned_by: "county office".into(),
        })
        .await
        .map(|r| r.into_inner().follow_up.expect("case"))
}

fn visit(claim: &str, on: &str, by: &str, risk_remains: bool) -> pb::RecordVisitRequest {
    pb::RecordVisitRequest {
        request_id: request_id(),
        claim_id: claim.into(),
        visited_on: on.into(),
        mode: pb::VisitMode::HomeVisit.into(),
        contact_name: by.into(),
        findings: "收入稳定，医疗支出已报销".into(),
        risk_remains,
        recorded_by: "cadre".into(),
    }
}

async fn follow_up(s: &TestServer, claim: &str) -> pb::FollowUpCase {
    s.follow_up()
        .get_follow_up(pb::GetFollowUpRequest {
            claim_id: claim.into(),
        })
        .await
        .expect("get follow-up")
        .into_inner()
        .follow_up
        .expect("case")
}

fn field_of(status: &fangpin_proto::tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_paid_claim_is_followed_up_cleared_and_reopened() {
    let s = TestServer::start(date(2024, 3, 1)).await;
    register_county(&s).await;
    put_policy_with(&s, 2024, 15).await;
    premium(&s, 2024, "1000000.00").await.expect("premium");
    let (claim, _) = filed_claim(&s, 2024, VILLAGE, 1).await;

    // Follow-up is for a relieved household: not before the payout.
    let early = assign_contacts(&s, &claim, vec![contact("王明", "13800138000")])
        .await
        .expect_err("filed, not paid");
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    pay(&s, &claim).await;

    // Bad contacts are refused field by field, and record nothing.
    let three = (1..=3)
        .map(|i| contact(&format!("干部{i}"), "13800138000"))
        .collect();
    let e = assign_contacts(&s, &claim, three).await.expect_err("three");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(field_of(&e), ["contacts"]);
    let e = assign_contacts(&s, &claim, vec![contact("王明", "12345")])
        .await
        .expect_err("bad phone");
    assert_eq!(field_of(&e), ["contacts[0].phone"]);
    let e = assign_contacts(
        &s,
        &claim,
        vec![
            contact("王明", "13800138000"),
            contact("王明", "13900139000"),
        ],
    )
    .await
    .expect_err("twice");
    assert_eq!(field_of(&e), ["contacts"]);
    assert_eq!(
        follow_up(&s, &claim).await.status,
        i32::from(pb::MonitoringStatus::None)
    );

    // Monday 11 March 2024: two contact persons; the first visit is due
    // 10 working days later, Monday the 25th.
    let case = assign_contacts(
        &s,
        &claim,
        vec![
            contact("王明", "13800138000"),
            contact("李华", "0310-1234567"),
        ],
    )
    .await
    .expect("assign");
    assert_eq!(case.status, i32::from(pb::MonitoringStatus::Monitoring));
    assert_eq!(case.next_visit_due, "2024-03-25");
    assert_eq!(case.visit_every_working_days, 10);
    assert_eq!(case.contacts[0].phone_masked, "138****8000");
    assert_eq!(case.contacts[1].phone_masked, "031*****4567");

    // On time: 20 March, the risk remains; the next is due ten working
    // days on, 3 April (before the Qingming holiday of 4-6 April).
    s.set_date(date(2024, 3, 20));
    let first = visit(&claim, "2024-03-20", "王明", true);
    let case = s
        .follow_up()
        .record_visit(first.clone())
        .await
        .expect("visit")
        .into_inner()
        .follow_up
        .expect("case");
    assert_eq!(case.visits.len(), 1);
    assert_eq!(case.visits[0].due_on, "2024-03-25");
    assert_eq!(case.visits[0].working_days_late, 0);
    assert_eq!(case.next_visit_due, "2024-04-03");
    // A client's retry changes nothing.
    let again = s
        .follow_up()
        .record_visit(first)
        .await
        .expect("retry")
        .into_inner()
        .follow_up
        .expect("case");
    assert_eq!(again.visits.len(), 1);

    // The risk remains: the case cannot be cleared yet.
    let e = s
        .follow_up()
        .clear_case(pb::ClearCaseRequest {
            request_id: request_id(),
            claim_id: claim.clone(),
            reason: "已脱困".into(),
            cleared_by: "county office".into(),
        })
        .await
        .expect_err("risk remains");
    assert_eq!(e.code(), Code::FailedPrecondition);

    // Missed: on 15 April the visit due on the 3rd is 7 working days
    // over (the make-up Sunday 7 April counts; 4-6 April do not).
    s.set_date(date(2024, 4, 15));
    let case = follow_up(&s, &claim).await;
    assert!(case.visit_overdue);
    assert_eq!(case.working_days_over, 7);
    let overdue = s
        .deadlines()
        .list_deadlines(pb::ListDeadlinesRequest {
            county_code: COUNTY.into(),
            stage: pb::DeadlineStage::FollowUpVisit.into(),
            contact_person: "李华".into(),
            ..Default::default()
        })
        .await
        .expect("deadlines")
        .into_inner();
    assert_eq!(overdue.overdue, 1);
    let row = &overdue.deadlines[0];
    assert_eq!(
        (row.claim_id.as_str(), row.working_days_over),
        (claim.as_str(), 7)
    );
    assert_eq!(row.responsible_role, "contact_person");
    // Listings show phones masked only.
    assert!(
        row.responsible.contains("138****8000"),
        "{}",
        row.responsible
    );
    assert!(!row.responsible.contains("13800138000"));

    // A visit by someone else, or before the last one, is refused.
    let e = s
        .follow_up()
        .record_visit(visit(&claim, "2024-04-15", "张三", false))
        .await
        .expect_err("not a contact");
    assert_eq!(field_of(&e), ["contact_name"]);
    let e = s
        .follow_up()
        .record_visit(visit(&claim, "2024-03-19", "李华", false))
        .await
        .expect_err("before the last visit");
    assert_eq!(field_of(&e), ["visited_on"]);

    // The late visit finds the risk gone; it is recorded 7 days late.
    let mut late = visit(&claim, "2024-04-15", "李华", false);
    late.mode = pb::VisitMode::Call.into();
    let case = s
        .follow_up()
        .record_visit(late)
        .await
        .expect("late visit")
        .into_inner()
        .follow_up
        .expect("case");
    assert_eq!(case.visits[1].working_days_late, 7);
    assert!(!case.visit_overdue);

    // 解困销号, then the risk returns.
    let clear = pb::ClearCaseRequest {
        request_id: request_id(),
        claim_id: claim.clone(),
        reason: "收入恢复，已脱困".into(),
        cleared_by: "county office".into(),
    };
    let case = s
        .follow_up()
        .clear_case(clear)
        .await
        .expect("clear")
        .into_inner()
        .follow_up
        .expect("case");
    assert_eq!(case.status, i32::from(pb::MonitoringStatus::Cleared));
    assert!(
        case.next_visit_due.is_empty(),
        "a cleared case owes no visit"
    );
    let e = s
        .follow_up()
        .record_visit(visit(&claim, "2024-04-15", "王明", false))
        .await
        .expect_err("cleared");
    assert_eq!(e.code(), Code::FailedPrecondition);

    s.set_date(date(2024, 5, 6));
    let case = s
        .follow_up()
        .reopen_case(pb::ReopenCaseRequest {
            request_id: request_id(),
            claim_id: claim.clone(),
            reason: "家庭成员再次住院".into(),
            reopened_by: "county office".into(),
        })
        .await
        .expect("reopen")
        .into_inner()
        .follow_up
        .expect("case");
    assert_eq!(case.status, i32::from(pb::MonitoringStatus::Monitoring));
    // From Monday 6 May: 7-10, the make-up Saturday 11th, 13-17 → the 17th.
    assert_eq!(case.next_visit_due, "2024-05-17");

    // The household's status over time.
    let household = s
        .claims()
        .get_claim(pb::GetClaimRequest {
            claim_id: claim.clone(),
        })
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim")
        .household_id;
    let history = s
        .follow_up()
        .get_household_monitoring(pb::GetHouseholdMonitoringRequest {
            household_id: household,
        })
        .await
        .expect("monitoring")
        .into_inner();
    assert_eq!(history.status, i32::from(pb::MonitoringStatus::Monitoring));
    let events: Vec<(&str, i32)> = history.cases[0]
        .events
        .iter()
        .map(|e| (e.event.as_str(), e.status))
        .collect();
    use pb::MonitoringStatus::{Cleared, Monitoring};
    assert_eq!(
        events,
        [
            ("opened", i32::from(Monitoring)),
            ("cleared", i32::from(Cleared)),
            ("reopened", i32::from(Monitoring)),
        ]
    );
    assert_eq!(history.cases[0].events[2].reason, "家庭成员再次住院");
    // `fangpin follow-up show` prints the case file.
    let printed = fangpin_tests::fangpin(&s, &["follow-up", "show", &claim]).await;
    for expected in ["2024-05-17", "reopened", "家庭成员再次住院", "李华"] {
        assert!(printed.contains(expected), "{expected} in:\n{printed}");
    }
    s.stop().await;
}

async fn enroll(s: &TestServer, year: i32, village: &str, n: u32) -> String {
    s.enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: year,
            village_code: village.into(),
            household_type: pb::HouseholdType::UnstableEscaped.into(),
            head: Some(pb::Person {
                id_number: resident_id("19700101", n),
                name: format!("户主{n}"),
                relation: String::new(),
            }),
            members: vec![],
            bank_account: format!("62170003{n:08}"),
        })
        .await
        .expect("enrol")
        .into_inner()
        .household_id
}

#[tokio::test]
async fn a_monthly_list_is_confirmed_dismissed_and_overdue_after_the_10th() {
    // Monday 2 December 2024: the county issues December's list.
    let s = TestServer::start(date(2024, 12, 2)).await;
    register_county(&s).await;
    put_policy_with(&s, 2024, 15).await;
    // Two households in each of two townships (130426100, 130426203).
    let h = [
        enroll(&s, 2024, VILLAGE, 1).await,
        enroll(&s, 2024, VILLAGE, 2).await,
        enroll(&s, 2024, OTHER_VILLAGE, 3).await,
        enroll(&s, 2024, OTHER_VILLAGE, 4).await,
    ];
    let mut file =
        String::from("id_number,settlement_date,inpatient,total_cost,reimbursed,out_of_pocket\n");
    for n in 1..=4 {
        file.push_str(&format!(
            "{},2024-06-06,1,40000.00,20000.00,20000.00\n",
            resident_id("19700101", n)
        ));
    }
    let bytes = file.into_bytes();
    let header = pb::FeedHeader {
        request_id: request_id(),
        county_code: COUNTY.into(),
        policy_year: 2024,
        kind: pb::FeedKind::Medical.into(),
        encoding: pb::FeedEncoding::Utf8.into(),
        file_name: "医保2024-11.csv".into(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        size_bytes: bytes.len() as u64,
    };
    let parts = vec![
        pb::ImportFeedRequest {
            part: Some(pb::import_feed_request::Part::Header(header)),
        },
        pb::ImportFeedRequest {
            part: Some(pb::import_feed_request::Part::Data(bytes.into())),
        },
    ];
    s.screening()
        .import_feed(tokio_stream::iter(parts))
        .await
        .expect("import");
    let run = s
        .screening()
        .run_screening(pb::RunScreeningRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            as_of: "2024-12-02".into(),
        })
        .await
        .expect("run")
        .into_inner();
    assert_eq!(run.candidates, 4);

    let issue = pb::IssueMonitoringListRequest {
        request_id: request_id(),
        run_id: run.run_id.clone(),
        issued_by: "county office".into(),
    };
    let lists = s
        .screening()
        .issue_monitoring_list(issue)
        .await
        .expect("issue")
        .into_inner()
        .lists;
    let summary: Vec<(&str, &str, u32)> = lists
        .iter()
        .map(|l| (l.township_code.as_str(), l.due_on.as_str(), l.entries))
        .collect();
    assert_eq!(
        summary,
        [
            ("130426100", "2024-12-10", 2),
            ("130426203", "2024-12-10", 2)
        ]
    );
    let again = s
        .screening()
        .issue_monitoring_list(pb::IssueMonitoringListRequest {
            request_id: request_id(),
            run_id: run.run_id.clone(),
            issued_by: "county office".into(),
        })
        .await
        .expect_err("issued once");
    assert_eq!(again.code(), Code::FailedPrecondition);
    // The listed households are the townships' to confirm: no claims in bulk.
    let bulk = s
        .screening()
        .create_screening_claims(pb::CreateScreeningClaimsRequest {
            request_id: request_id(),
            run_id: run.run_id.clone(),
            submitted_by: "county office".into(),
        })
        .await
        .expect_err("issued as a list");
    assert_eq!(bulk.code(), Code::FailedPrecondition);

    // The townships' home checks.
    s.set_date(date(2024, 12, 5));
    let confirm = pb::ConfirmListEntryRequest {
        request_id: request_id(),
        run_id: run.run_id.clone(),
        household_id: h[0].clone(),
        relief_kind: pb::ReliefKind::Illness.into(),
        checked_on: "2024-12-04".into(),
        note: "入户核实：住院自付属实".into(),
        checked_by: "township cadre".into(),
    };
    let confirmed = s
        .screening()
        .confirm_list_entry(confirm.clone())
        .await
        .expect("confirm")
        .into_inner();
    assert_eq!(confirmed.status, i32::from(pb::ListEntryStatus::Confirmed));
    assert!(!confirmed.claim_id.is_empty());
    // The retry answers the same; a second decision is refused.
    let replay = s
        .screening()
        .confirm_list_entry(confirm)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(replay, confirmed);
    let e = s
        .screening()
        .dismiss_list_entry(pb::DismissListEntryRequest {
            request_id: request_id(),
            run_id: run.run_id.clone(),
            household_id: h[0].clone(),
            relief_kind: pb::ReliefKind::Illness.into(),
            checked_on: "2024-12-05".into(),
            reason: "changed my mind".into(),
            checked_by: "township cadre".into(),
        })
        .await
        .expect_err("already decided");
    assert_eq!(e.code(), Code::FailedPrecondition);
    let claim = s
        .claims()
        .get_claim(pb::GetClaimRequest {
            claim_id: confirmed.claim_id.clone(),
        })
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(claim.household_id, h[0]);
    assert_eq!(claim.channel, i32::from(pb::Channel::DepartmentReferral));
    assert_eq!(claim.state, i32::from(pb::ClaimState::Received));

    let dismissed = s
        .screening()
        .dismiss_list_entry(pb::DismissListEntryRequest {
            request_id: request_id(),
            run_id: run.run_id.clone(),
            household_id: h[2].clone(),
            relief_kind: pb::ReliefKind::Illness.into(),
            checked_on: "2024-12-05".into(),
            reason: "费用已由大病保险全额报销".into(),
            checked_by: "township cadre".into(),
        })
        .await
        .expect("dismiss")
        .into_inner();
    assert_eq!(dismissed.status, i32::from(pb::ListEntryStatus::Dismissed));
    assert!(dismissed.claim_id.is_empty());
    let e = s
        .screening()
        .dismiss_list_entry(pb::DismissListEntryRequest {
            request_id: request_id(),
            run_id: run.run_id.clone(),
            household_id: h[1].clone(),
            relief_kind: pb::ReliefKind::Schooling.into(),
            checked_on: "2024-12-05".into(),
            reason: "no".into(),
            checked_by: "township cadre".into(),
        })
        .await
        .expect_err("not listed");
    assert_eq!(e.code(), Code::FailedPrecondition);

    let get = |township: &str| pb::GetMonitoringListRequest {
        run_id: run.run_id.clone(),
        township_code: township.into(),
    };
    // On the 10th the rest is still due; from the 11th it is overdue.
    s.set_date(date(2024, 12, 10));
    let on_due = s
        .screening()
        .get_monitoring_list(get(""))
        .await
        .expect("list")
        .into_inner();
    let counts: Vec<(u32, u32, u32, u32)> = on_due
        .lists
        .iter()
        .map(|l| (l.pending, l.confirmed, l.dismissed, l.overdue))
        .collect();
    assert_eq!(counts, [(1, 1, 0, 0), (1, 0, 1, 0)]);
    s.set_date(date(2024, 12, 11));
    let after = s
        .screening()
        .get_monitoring_list(get("130426203"))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(after.lists.len(), 1);
    assert_eq!(after.lists[0].overdue, 1);
    let overdue: Vec<&str> = after
        .entries
        .iter()
        .filter(|e| e.overdue)
        .map(|e| e.household_id.as_str())
        .collect();
    assert_eq!(overdue, [h[3].as_str()]);
    let listing = s
        .deadlines()
        .list_deadlines(pb::ListDeadlinesRequest {
            county_code: COUNTY.into(),
            stage: pb::DeadlineStage::MonitoringList.into(),
            ..Default::default()
        })
        .await
        .expect("deadlines")
        .into_inner();
    let mut rows: Vec<(&str, &str, i32, &str)> = listing
        .deadlines
        .iter()
        .map(|d| {
            (
                d.household_id.as_str(),
                d.due_on.as_str(),
                d.working_days_over,
                d.responsible.as_str(),
            )
        })
        .collect();
    rows.sort();
    let mut want = vec![
        (h[1].as_str(), "2024-12-10", 1, "130426100"),
        (h[3].as_str(), "2024-12-10", 1, "130426203"),
    ];
    want.sort();
    assert_eq!(rows, want);
    s.stop().await;
}

/// A claim of 2026 taken from intake to a stage, with the clock moved.
struct Year2026<'a> {
    s: &'a TestServer,
    n: u32,
}

impl Year2026<'_> {
    async fn submit(&mut self, village: &str, on: (u32, u32)) -> String {
        self.n += 1;
        self.s.set_date(date(2026, on.0, on.1));
        let household = enroll(self.s, 2026, village, 100 + self.n).await;
        let claim = self
            .s
            .claims()
            .submit_claim(pb::SubmitClaimRequest {
                request_id: request_id(),
                household_id: household,
                relief_kind: pb::ReliefKind::Illness.into(),
                channel: pb::Channel::DepartmentReferral.into(),
                event_date: "2026-01-02".into(),
                event_reference: format!("admission-{}", self.n),
                claimed_cost_yuan: "100000.00".into(),
                description: String::new(),
                submitted_by: "county office".into(),
            })
            .await
            .expect("submit")
            .into_inner()
            .claim
            .expect("claim")
            .claim_id;
        self.s
            .survey()
            .assign_survey(pb::AssignSurveyRequest {
                request_id: request_id(),
                claim_id: claim.clone(),
                surveyor: SURVEYOR.into(),
                insurer: INSURER.into(),
                assigned_by: "county".into(),
            })
            .await
            .expect("assign");
        claim
    }

    /// Findings, recommendation and publicity opened today.
    async fn to_publicity(&self, claim: &str) {
        let s = self.s;
        s.survey()
            .record_findings(pb::RecordFindingsRequest {
                request_id: request_id(),
                claim_id: claim.into(),
                surveyor: SURVEYOR.into(),
                verified_income_per_capita_yuan: "3000.00".into(),
                verified_cost_yuan: "100000.00".into(),
                notes: String::new(),
                evidence_refs: vec![],
                prior_incomes_per_capita_yuan: Vec::new(),
                income_evidence_refs: Vec::new(),
            })
            .await
            .expect("findings");
        s.survey()
            .recommend(pb::RecommendRequest {
                request_id: request_id(),
                claim_id: claim.into(),
                surveyor: SURVEYOR.into(),
                approve: true,
                reason: "eligible".into(),
            })
            .await
            .expect("recommend");
        s.publicity()
            .open_publicity(pb::OpenPublicityRequest {
                request_id: request_id(),
                claim_id: claim.into(),
                opened_by: "village".into(),
            })
            .await
            .expect("open");
    }

    async fn close_publicity(&self, claim: &str, on: (u32, u32)) {
        self.s.set_date(date(2026, on.0, on.1));
        self.s
            .publicity()
            .close_publicity(pb::ClosePublicityRequest {
                request_id: request_id(),
                claim_id: claim.into(),
                closed_by: "village".into(),
            })
            .await
            .expect("close");
    }

    async fn file(&self, claim: &str, on: (u32, u32)) {
        self.s.set_date(date(2026, on.0, on.1));
        self.s
            .payout()
            .file_claim(pb::FileClaimRequest {
                request_id: request_id(),
                claim_id: claim.into(),
                filed_by: "county".into(),
                cross_check_note: "ok".into(),
            })
            .await
            .expect("file");
    }

    async fn contacts(&self, claim: &str, on: (u32, u32), name: &str) {
        self.s.set_date(date(2026, on.0, on.1));
        assign_contacts(self.s, claim, vec![contact(name, "13800138000")])
            .await
            .expect("contacts");
    }
}

async fn deadlines(
    s: &TestServer,
    request: pb::ListDeadlinesRequest,
) -> Vec<(i32, String, String, i32, String, String)> {
    s.deadlines()
        .list_deadlines(pb::ListDeadlinesRequest {
            county_code: COUNTY.into(),
            ..request
        })
        .await
        .expect("deadlines")
        .into_inner()
        .deadlines
        .into_iter()
        .map(|d| {
            (
                d.stage,
                d.claim_id,
                d.due_on,
                d.working_days_over,
                d.responsible_role,
                d.began_on,
            )
        })
        .collect()
}

#[tokio::test]
async fn the_sla_listing_matches_a_table_worked_out_by_hand_across_the_spring_festival() {
    // 2026: the Spring Festival holiday is 15-23 February; Saturdays 14 and
    // 28 February are make-up working days.
    let s = TestServer::start(date(2026, 1, 5)).await;
    register_county(&s).await;
    put_policy_with(&s, 2026, 15).await;
    premium(&s, 2026, "10000000.00").await.expect("premium");
    let mut y = Year2026 { s: &s, n: 0 };

    // Monday 5 January: four claims into publicity.
    let f = y.submit(VILLAGE, (1, 5)).await;
    let p = y.submit(VILLAGE, (1, 5)).await;
    let v = y.submit(VILLAGE, (1, 5)).await;
    let v2 = y.submit(OTHER_VILLAGE, (1, 5)).await;
    for c in [&f, &p, &v, &v2] {
        y.to_publicity(c).await;
    }
    // V and V2 are paid on 16 January; P's publicity passes on the 20th.
    for c in [&v, &v2] {
        y.close_publicity(c, (1, 16)).await;
        y.file(c, (1, 16)).await;
        pay(&s, c).await;
    }
    y.close_publicity(&p, (1, 20)).await;
    // V2's contact from Monday 26 January: its first visit is due 10
    // working days later, Monday 9 February.
    y.contacts(&v2, (1, 26), "李华").await;
    // S: taken in on Monday 2 February; 15 working days are 3-13 February
    // (9), the make-up Saturday 14th (10), 24-27 February (14) and the
    // make-up Saturday 28th (15).
    let survey = y.submit(VILLAGE, (2, 2)).await;
    let got = s
        .claims()
        .get_claim(pb::GetClaimRequest {
            claim_id: survey.clone(),
        })
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(got.survey_deadline, "2026-02-28");
    // V's contact from Thursday 5 February: 6, 9-13, 14, 24, 25, 26 → the 26th.
    y.contacts(&v, (2, 5), "王明").await;
    // F passes publicity on Tuesday 10 February: 11, 12, 13, 14, 24 → the 24th.
    y.close_publicity(&f, (2, 10)).await;
    // P is filed on Thursday 12 February: 13, 14, 24, 25, 26 → the 26th.
    y.file(&p, (2, 12)).await;

    use pb::DeadlineStage::{Filing, FollowUpVisit, Payout, Survey};
    let row =
        |stage: pb::DeadlineStage, claim: &str, due: &str, over: i32, role: &str, began: &str| {
            (
                i32::from(stage),
                claim.to_string(),
                due.to_string(),
                over,
                role.to_string(),
                began.to_string(),
            )
        };

    // Friday 13 February, the last working day before the holiday, looking
    // two working days ahead: the 14th and the 24th. V2's visit is 4 over
    // (10-13 February); F is due in 2 (the 14th and the 24th); P and V,
    // due on the 26th, are 4 away and not listed.
    s.set_date(date(2026, 2, 13));
    let got = deadlines(
        &s,
        pb::ListDeadlinesRequest {
            within_working_days: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        got,
        [
            row(
                FollowUpVisit,
                &v2,
                "2026-02-09",
                4,
                "contact_person",
                "2026-01-26"
            ),
            row(Filing, &f, "2026-02-24", -2, "county_office", "2026-02-10"),
        ]
    );

    // Wednesday 25 February, three working days ahead (26, 27, 28).
    s.set_date(date(2026, 2, 25));
    let all = pb::ListDeadlinesRequest {
        within_working_days: 3,
        ..Default::default()
    };
    let want = [
        // 10-13, 14, 24, 25 February.
        row(
            FollowUpVisit,
            &v2,
            "2026-02-09",
            7,
            "contact_person",
            "2026-01-26",
        ),
        row(Filing, &f, "2026-02-24", 1, "county_office", "2026-02-10"),
        row(Payout, &p, "2026-02-26", -1, "insurer", "2026-02-12"),
        row(
            FollowUpVisit,
            &v,
            "2026-02-26",
            -1,
            "contact_person",
            "2026-02-05",
        ),
        row(Survey, &survey, "2026-02-28", -3, "surveyor", "2026-02-02"),
    ];
    assert_eq!(deadlines(&s, all.clone()).await, want);
    let response = s
        .deadlines()
        .list_deadlines(pb::ListDeadlinesRequest {
            county_code: COUNTY.into(),
            ..all.clone()
        })
        .await
        .expect("deadlines")
        .into_inner();
    assert_eq!((response.overdue, response.due_soon), (2, 3));
    // The overdue gauge (fangpin.deadlines.overdue) counts the same rows:
    // its computation, run on the server's database for the same day.
    let store = fangpin_store::Store::connect(s.database_url())
        .await
        .expect("the test database");
    let mut conn = store.read().await.expect("a connection");
    let gauge = fangpin_server::services::deadlines::overdue_counts(
        &mut conn,
        fangpin_domain::calendar::WorkCalendar::official(),
        date(2026, 2, 25),
    )
    .await
    .expect("overdue counts");
    let nonzero: Vec<(&str, &str, u64)> = gauge
        .iter()
        .filter(|(_, _, n)| *n > 0)
        .map(|(county, stage, n)| (county.as_str(), stage.as_str(), *n))
        .collect();
    assert_eq!(
        nonzero,
        [(COUNTY, "filing", 1), (COUNTY, "follow_up_visit", 1)]
    );
    assert_eq!(gauge.len(), 5, "one point per stage of the one county");
    drop(conn);
    store.close().await;
    assert_eq!(response.as_of, "2026-02-25");
    assert_eq!(response.deadlines[2].responsible, INSURER);
    assert_eq!(response.deadlines[4].responsible, SURVEYOR);

    // `fangpin sla` prints the same table.
    let printed = fangpin_tests::fangpin(&s, &["sla", "--county", COUNTY, "--within", "3"]).await;
    assert!(
        printed.contains("as of 2026-02-25: 2 overdue, 3 due soon"),
        "{printed}"
    );
    for (claim, stage) in [
        (&v2, "follow_up_visit"),
        (&f, "filing"),
        (&p, "payout"),
        (&survey, "survey"),
    ] {
        assert!(
            printed
                .lines()
                .any(|l| l.contains(claim.as_str()) && l.contains(stage)),
            "{stage} of {claim} in:\n{printed}"
        );
    }

    // Overdue only.
    let overdue = deadlines(&s, pb::ListDeadlinesRequest::default()).await;
    assert_eq!(overdue, want[..2]);
    // The cuts.
    let by_surveyor = deadlines(
        &s,
        pb::ListDeadlinesRequest {
            surveyor: SURVEYOR.into(),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(by_surveyor, want[4..]);
    let by_insurer = deadlines(
        &s,
        pb::ListDeadlinesRequest {
            insurer: INSURER.into(),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(by_insurer, [want[2].clone(), want[4].clone()]);
    let by_contact = deadlines(
        &s,
        pb::ListDeadlinesRequest {
            contact_person: "王明".into(),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(by_contact, want[3..4]);
    let by_township = deadlines(
        &s,
        pb::ListDeadlinesRequest {
            township_code: "130426100".into(),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(by_township, want[1..]);
    let by_stage = deadlines(
        &s,
        pb::ListDeadlinesRequest {
            stage: FollowUpVisit.into(),
            ..all.clone()
        },
    )
    .await;
    assert_eq!(by_stage, [want[0].clone(), want[3].clone()]);

    // Bad cuts are refused by field.
    let e = s
        .deadlines()
        .list_deadlines(pb::ListDeadlinesRequest {
            county_code: COUNTY.into(),
            township_code: "130427100".into(),
            within_working_days: 500,
            ..Default::default()
        })
        .await
        .expect_err("bad cuts");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(field_of(&e), ["within_working_days", "township_code"]);
    s.stop().await;
}

#[tokio::test]
async fn the_work_queue_is_ordered_by_deadline() {
    let s = TestServer::start(date(2024, 3, 1)).await;
    register_county(&s).await;
    put_policy_with(&s, 2024, 15).await;
    let submit = |n: u32| {
        let s = &s;
        async move {
            let household = enroll(s, 2024, VILLAGE, n).await;
            let claim = s
                .claims()
                .submit_claim(pb::SubmitClaimRequest {
                    request_id: request_id(),
                    household_id: household,
                    relief_kind: pb::ReliefKind::Illness.into(),
                    channel: pb::Channel::DepartmentReferral.into(),
                    event_date: "2024-02-01".into(),
                    event_reference: format!("admission-{n}"),
                    claimed_cost_yuan: "100000.00".into(),
                    description: String::new(),
                    submitted_by: "county office".into(),
                })
                .await
                .expect("submit")
                .into_inner()
                .claim
                .expect("claim");
            s.survey()
                .assign_survey(pb::AssignSurveyRequest {
                    request_id: request_id(),
                    claim_id: claim.claim_id.clone(),
                    surveyor: SURVEYOR.into(),
                    insurer: INSURER.into(),
                    assigned_by: "county".into(),
                })
                .await
                .expect("assign");
            (claim.claim_id, claim.survey_deadline)
        }
    };
    // A first claim under 15 working days (due 22 March), then the county
    // shortens the survey to 3 (due 6 March) for the next two: intake
    // order and deadline order differ.
    let a = submit(1).await;
    put_policy_with(&s, 2024, 3).await;
    let b = submit(2).await;
    let c = submit(3).await;
    assert_eq!(a.1, "2024-03-22");
    assert_eq!((b.1.as_str(), c.1.as_str()), ("2024-03-06", "2024-03-06"));
    assert!(a.0 < b.0 && b.0 < c.0, "ids in intake order");

    // A page of one at a time: earliest deadline first, ties by intake.
    let mut token = String::new();
    let mut order = Vec::new();
    loop {
        let page = s
            .survey()
            .list_work_queue(pb::ListWorkQueueRequest {
                surveyor: SURVEYOR.into(),
                page_size: 1,
                page_token: token,
            })
            .await
            .expect("queue")
            .into_inner();
        for item in &page.items {
            let claim = item.claim.as_ref().expect("claim");
            order.push((claim.claim_id.clone(), item.working_days_left));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    // From Friday 1 March: 4, 5, 6 → 3 left; to the 22nd, 15.
    assert_eq!(order, [(b.0, 3), (c.0, 3), (a.0, 15)]);
    let e = s
        .survey()
        .list_work_queue(pb::ListWorkQueueRequest {
            surveyor: SURVEYOR.into(),
            page_size: 1,
            page_token: "garbage".into(),
        })
        .await
        .expect_err("bad token");
    assert_eq!(field_of(&e), ["page_token"]);
    s.stop().await;
}

async fn outlook(s: &TestServer, runs: u32, seed: u64) -> pb::PoolOutlook {
    s.ledger()
        .get_pool_outlook(pb::PoolOutlookRequest {
            county_code: COUNTY.into(),
            policy_year: 2025,
            runs,
            seed,
        })
        .await
        .expect("outlook")
        .into_inner()
}

#[tokio::test]
async fn the_outlook_rests_on_the_pipeline_and_the_county_history() {
    let s = TestServer::start(date(2024, 3, 1)).await;
    register_county(&s).await;
    put_policy_with(&s, 2024, 15).await;
    premium(&s, 2024, "1000000.00").await.expect("premium 2024");
    // 2024: two claims paid, one rejected after its survey.
    for n in 1..=2 {
        let (claim, _) = filed_claim(&s, 2024, VILLAGE, n).await;
        pay(&s, &claim).await;
    }
    let household = enroll(&s, 2024, VILLAGE, 50).await;
    let rejected = s
        .claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: household,
            relief_kind: pb::ReliefKind::Illness.into(),
            channel: pb::Channel::DepartmentReferral.into(),
            event_date: "2024-02-01".into(),
            event_reference: "admission-50".into(),
            claimed_cost_yuan: "100000.00".into(),
            description: String::new(),
            submitted_by: "county office".into(),
        })
        .await
        .expect("submit")
        .into_inner()
        .claim
        .expect("claim")
        .claim_id;
    s.survey()
        .assign_survey(pb::AssignSurveyRequest {
            request_id: request_id(),
            claim_id: rejected.clone(),
            surveyor: SURVEYOR.into(),
            insurer: INSURER.into(),
            assigned_by: "county".into(),
        })
        .await
        .expect("assign");
    s.survey()
        .record_findings(pb::RecordFindingsRequest {
            request_id: request_id(),
            claim_id: rejected.clone(),
            surveyor: SURVEYOR.into(),
            verified_income_per_capita_yuan: "3000.00".into(),
            verified_cost_yuan: "1000.00".into(),
            notes: String::new(),
            evidence_refs: vec![],
            prior_incomes_per_capita_yuan: Vec::new(),
            income_evidence_refs: Vec::new(),
        })
        .await
        .expect("findings");
    s.survey()
        .recommend(pb::RecommendRequest {
            request_id: request_id(),
            claim_id: rejected,
            surveyor: SURVEYOR.into(),
            approve: false,
            reason: "costs under the threshold".into(),
        })
        .await
        .expect("reject");

    // 2025: 100,000 yuan in the pool and two claims of 100,000 yuan taken
    // in, not yet surveyed.
    s.set_date(date(2025, 6, 15));
    put_policy_with(&s, 2025, 15).await;
    premium(&s, 2025, "100000.00").await.expect("premium 2025");
    for n in 60..=61 {
        let household = enroll(&s, 2025, VILLAGE, n).await;
        s.claims()
            .submit_claim(pb::SubmitClaimRequest {
                request_id: request_id(),
                household_id: household,
                relief_kind: pb::ReliefKind::Illness.into(),
                channel: pb::Channel::DepartmentReferral.into(),
                event_date: "2025-06-01".into(),
                event_reference: format!("admission-{n}"),
                claimed_cost_yuan: "100000.00".into(),
                description: String::new(),
                submitted_by: "county office".into(),
            })
            .await
            .expect("submit");
    }

    let o = outlook(&s, 10_000, 1).await;
    assert_eq!(o.available_yuan, "100000.00");
    let printed = fangpin_tests::fangpin(
        &s,
        &[
            "pool", "outlook", "--county", COUNTY, "--year", "2025", "--runs", "10000", "--seed",
            "1",
        ],
    )
    .await;
    assert!(printed.contains(&o.top_up_probability), "{printed}");
    assert!(printed.contains("-100000.00"), "the worst case:\n{printed}");
    // Received: 2 in the pipeline at 200,000; the 3 decided claims of 2024
    // all reached it and 2 were paid. The rejected one stopped at the
    // survey, so publicity passed was reached by the 2 paid only.
    let received = &o.stages[0];
    assert_eq!(received.stage, i32::from(pb::OutlookStage::Received));
    assert_eq!(
        (received.claims, received.amount_yuan.as_str()),
        (2, "200000.00")
    );
    assert_eq!((received.reached, received.paid), (3, 2));
    assert_eq!(received.rate, "0.6667");
    assert!(!received.prior);
    let passed = &o.stages[4];
    assert_eq!((passed.reached, passed.paid, passed.claims), (2, 2, 0));
    // July to December, each drawn from 2024 alone, where no claim arose
    // in those months.
    let months: Vec<(u32, u32, &str)> = o
        .months
        .iter()
        .map(|m| (m.month, m.years, m.largest_yuan.as_str()))
        .collect();
    assert_eq!(months, (7..=12).map(|m| (m, 1, "0.00")).collect::<Vec<_>>());
    assert_eq!(o.worst_case_yuan, "-100000.00");
    // A top-up is needed when both claims are paid: (2/3)^2 = 0.444.
    let p: f64 = o.top_up_probability.parse().expect("a decimal");
    assert!((0.42..=0.47).contains(&p), "{p}");
    assert_eq!(f64::from(o.top_up_runs) / 10_000.0, p);
    // The same seed gives the same answer; the figures do not depend on it.
    assert_eq!(outlook(&s, 10_000, 1).await, o);
    let other = outlook(&s, 10_000, 2).await;
    assert_eq!(other.stages, o.stages);
    assert_eq!(other.worst_case_yuan, o.worst_case_yuan);

    // Once the pool covers the worst case, no run needs a top-up.
    premium(&s, 2025, "100000.00").await.expect("more premium");
    let covered = outlook(&s, 10_000, 1).await;
    assert_eq!(covered.worst_case_yuan, "0.00");
    assert_eq!(
        (covered.top_up_probability.as_str(), covered.top_up_runs),
        ("0.0000", 0)
    );

    // A filed claim whose transfer the bank returned before it was posted:
    // its reservation was voided, but the 61,750.00 is still owed, so the
    // outlook takes it off as certain.
    let (returned, _) = filed_claim(&s, 2025, VILLAGE, 70).await;
    s.set_date(date(2025, 6, 15));
    s.payout()
        .record_payout_failure(pb::RecordPayoutFailureRequest {
            request_id: request_id(),
            claim_id: returned,
            recorded_by: "insurer".into(),
            bank_reference: "TX-70".into(),
            reason: "账户已销户".into(),
        })
        .await
        .expect("returned");
    let owed = outlook(&s, 10_000, 1).await;
    assert_eq!(owed.reserved_yuan, "61750.00");
    assert_eq!(owed.available_yuan, "138250.00");
    assert_eq!(owed.worst_case_yuan, "-61750.00");
    let e = s
        .ledger()
        .get_pool_outlook(pb::PoolOutlookRequest {
            county_code: COUNTY.into(),
            policy_year: 2025,
            runs: 100_001,
            seed: 1,
        })
        .await
        .expect_err("too many runs");
    assert_eq!(field_of(&e), ["runs"]);
    s.stop().await;
}
