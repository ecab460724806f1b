//! The county's own steps (issue 13), through the real server on SQLite and
//! PostgreSQL: the township head's decision on an emergency and the advance
//! within it; the departments' structured cross-check before filing, a hit
//! that rejects and one that sends the claim back to survey; the sudden
//! severe difficulty household type with its own thresholds.

use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{
    COUNTY, INSURER, SURVEYOR, VILLAGE, pay, pool, premium, register_county,
};
use fangpin_tests::{TestServer, date, request_id, resident_id};
// (the notice test reads its PDF with poppler-utils when present)
use tonic_types::StatusExt;

fn fields(e: &fangpin_proto::tonic::Status) -> Vec<String> {
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    e.get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

fn precondition(e: &fangpin_proto::tonic::Status) -> String {
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    e.get_details_precondition_failure()
        .and_then(|p| p.violations.into_iter().next())
        .map(|v| v.r#type)
        .unwrap_or_default()
}

/// Puts `policy` as the county's policy for 2024.
async fn put(s: &TestServer, policy: &fangpin_domain::policy::Policy) {
    s.policy()
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(fangpin_server::write_path::convert::policy_to_pb(
                policy, 0, false,
            )),
        })
        .await
        .expect("policy");
}

fn example_policy() -> fangpin_domain::policy::Policy {
    let county = fangpin_domain::identity::CountyCode::parse(COUNTY).expect("valid");
    fangpin_domain::policy::Policy::example(county, 2024)
}

/// The example policy with Handan's four cross-checks and an emergency
/// limit of 2,000 yuan (Ji'an's temporary help on the day).
async fn put_policy(s: &TestServer) {
    let mut policy = example_policy();
    policy.cross_checks = fangpin_domain::policy::Policy::cross_check_example();
    policy.emergency_advance_limit = Some(fangpin_domain::Fen::from_yuan(2_000));
    put(s, &policy).await;
}

async fn household(s: &TestServer, n: u32, kind: pb::HouseholdType) -> String {
    s.enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2024,
            village_code: VILLAGE.into(),
            household_type: kind.into(),
            head: Some(pb::Person {
                id_number: resident_id("19700101", n),
                name: format!("户主{n}"),
                relation: String::new(),
            }),
            members: vec![],
            bank_account: format!("62170009{n:08}"),
        })
        .await
        .expect("enrol")
        .into_inner()
        .household_id
}

async fn submit(
    s: &TestServer,
    household: &str,
    kind: pb::ReliefKind,
    channel: pb::Channel,
    reference: &str,
) -> String {
    s.claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: household.into(),
            relief_kind: kind.into(),
            channel: channel.into(),
            event_date: "2024-02-20".into(),
            event_reference: reference.into(),
            claimed_cost_yuan: "8000.00".into(),
            description: String::new(),
            submitted_by: "village committee".into(),
        })
        .await
        .expect("submit")
        .into_inner()
        .claim
        .expect("claim")
        .claim_id
}

/// An unstable-escaped household `n` and its village application for an
/// illness of 8,000 yuan.
async fn application(s: &TestServer, n: u32, reference: &str) -> String {
    let h = household(s, n, pb::HouseholdType::UnstableEscaped).await;
    submit(
        s,
        &h,
        pb::ReliefKind::Illness,
        pb::Channel::VillageApplication,
        reference,
    )
    .await
}

async fn survey(s: &TestServer, claim: &str, cost: &str) -> pb::Claim {
    s.survey()
        .assign_survey(pb::AssignSurveyRequest {
            request_id: request_id(),
            claim_id: claim.into(),
            surveyor: SURVEYOR.into(),
            insurer: INSURER.into(),
            assigned_by: "county".into(),
        })
        .await
        .expect("assign");
    resurvey(s, claim, cost).await
}

/// Findings and the recommendation (approval) on a claim under survey.
async fn resurvey(s: &TestServer, claim: &str, cost: &str) -> pb::Claim {
    recommend(s, claim, cost, true).await
}

/// Findings of `cost`, then the surveyor's recommendation.
async fn recommend(s: &TestServer, claim: &str, cost: &str, approve: bool) -> pb::Claim {
    s.survey()
        .record_findings(pb::RecordFindingsRequest {
            request_id: request_id(),
            claim_id: claim.into(),
            surveyor: SURVEYOR.into(),
            verified_income_per_capita_yuan: "3000.00".into(),
            verified_cost_yuan: cost.into(),
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
            approve,
            reason: if approve { "eligible" } else { "异议属实" }.into(),
        })
        .await
        .expect("recommend")
        .into_inner()
        .claim
        .expect("claim")
}

/// Opens the publicity on `opens` and closes it ten days later (the
/// example policy's 10 days, the day after the last objection day).
async fn through_publicity(s: &TestServer, claim: &str, opens: chrono::NaiveDate) {
    s.set_date(opens);
    s.publicity()
        .open_publicity(pb::OpenPublicityRequest {
            request_id: request_id(),
            claim_id: claim.into(),
            opened_by: "village".into(),
        })
        .await
        .expect("open");
    s.set_date(opens + chrono::Days::new(10));
    s.publicity()
        .close_publicity(pb::ClosePublicityRequest {
            request_id: request_id(),
            claim_id: claim.into(),
            closed_by: "village".into(),
        })
        .await
        .expect("close");
}

async fn file(s: &TestServer, claim: &str) -> Result<pb::Claim, fangpin_proto::tonic::Status> {
    s.payout()
        .file_claim(pb::FileClaimRequest {
            request_id: request_id(),
            claim_id: claim.into(),
            filed_by: "county".into(),
            cross_check_note: "信息比对见结构化结果".into(),
        })
        .await
        .map(|r| r.into_inner().claim.expect("claim"))
}

async fn check(
    s: &TestServer,
    claim: &str,
    code: &str,
    result: pb::CrossCheckResult,
    details: &str,
) -> Result<pb::CrossChecks, fangpin_proto::tonic::Status> {
    s.payout()
        .record_cross_check(pb::RecordCrossCheckRequest {
            request_id: request_id(),
            claim_id: claim.into(),
            check: code.into(),
            result: result.into(),
            details: details.into(),
            checked_by: "county office".into(),
        })
        .await
        .map(|r| r.into_inner())
}

const CHECKS: [&str; 4] = [
    "vehicles",
    "real_estate",
    "business_registration",
    "public_employment",
];

async fn all_clear(s: &TestServer, claim: &str) -> pb::CrossChecks {
    let mut last = None;
    for code in CHECKS {
        last = Some(
            check(s, claim, code, pb::CrossCheckResult::Clear, "")
                .await
                .expect("clear"),
        );
    }
    last.expect("four checks")
}

async fn state_of(s: &TestServer, claim: &str) -> i32 {
    claim_of(s, claim).await.state
}

#[tokio::test]
async fn the_township_decides_on_an_emergency_and_the_advance_stays_within_it() {
    let s = TestServer::start(date(2024, 2, 21)).await;
    register_county(&s).await;
    put_policy(&s).await;
    premium(&s, 2024, "100000.00").await.expect("premium");
    let h = household(&s, 1, pb::HouseholdType::SuddenSevereDifficulty).await;
    let fire = submit(
        &s,
        &h,
        pb::ReliefKind::Accident,
        pb::Channel::Emergency,
        "fire",
    )
    .await;
    let advance = |amount: &str| pb::PayEmergencyAdvanceRequest {
        request_id: request_id(),
        claim_id: fire.clone(),
        amount_yuan: amount.into(),
        approved_by: String::new(),
        reason: "房屋失火".into(),
    };

    // No advance before the township head's decision.
    let e = s
        .claims()
        .pay_emergency_advance(advance("1000.00"))
        .await
        .expect_err("not approved");
    assert_eq!(precondition(&e), "EMERGENCY_APPROVAL");
    let none = s
        .claims()
        .get_emergency_decision(pb::GetClaimRequest {
            claim_id: fire.clone(),
        })
        .await
        .expect("decision")
        .into_inner();
    assert_eq!(
        none.decision,
        i32::from(pb::EmergencyDecisionKind::Unspecified)
    );

    // Above the policy's limit of 2,000 the approval itself is refused.
    let approve = |amount: &str| pb::ApproveEmergencyRequest {
        request_id: request_id(),
        claim_id: fire.clone(),
        amount_yuan: amount.into(),
        approved_by: "乡长王".into(),
        reason: "房屋失火，基本生活无着".into(),
    };
    let e = s
        .claims()
        .approve_emergency(approve("2000.01"))
        .await
        .expect_err("over the limit");
    assert_eq!(fields(&e), ["amount_yuan"]);
    let request = approve("2000.00");
    let approved = s
        .claims()
        .approve_emergency(request.clone())
        .await
        .expect("approve")
        .into_inner();
    assert_eq!(
        (approved.decision, approved.amount_yuan.as_str()),
        (i32::from(pb::EmergencyDecisionKind::Approved), "2000.00")
    );
    // A retry answers the same; a second decision is refused.
    let again = s
        .claims()
        .approve_emergency(request)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again, approved);
    let e = s
        .claims()
        .refuse_emergency(pb::RefuseEmergencyRequest {
            request_id: request_id(),
            claim_id: fire.clone(),
            refused_by: "乡长王".into(),
            reason: "changed".into(),
        })
        .await
        .expect_err("decided once");
    assert_eq!(precondition(&e), "EMERGENCY");

    // The advance never exceeds the approved amount, nor names another approver.
    let e = s
        .claims()
        .pay_emergency_advance(advance("2000.01"))
        .await
        .expect_err("over the approval");
    assert_eq!(fields(&e), ["amount_yuan"]);
    let mut other = advance("1500.00");
    other.approved_by = "someone else".into();
    let e = s
        .claims()
        .pay_emergency_advance(other)
        .await
        .expect_err("another approver");
    assert_eq!(fields(&e), ["approved_by"]);
    let paid = s
        .claims()
        .pay_emergency_advance(advance("2000.00"))
        .await
        .expect("advance")
        .into_inner();
    assert_eq!(paid.claim.expect("claim").advance_paid_yuan, "2000.00");

    // The county's recognition is the ordinary survey: the sudden severe
    // difficulty household's accident threshold is 5,000 (a marginal
    // household's is 10,000): (8,000 - 5,000) x 60% = 1,800 (the advance
    // of 2,000 is deducted at payout).
    let surveyed = survey(&s, &fire, "8000.00").await;
    let assessment = surveyed.assessment.expect("assessment");
    assert!(assessment.eligible);
    assert_eq!(assessment.amount_yuan, "1800.00");

    // A refused emergency goes the normal way.
    let h2 = household(&s, 2, pb::HouseholdType::SuddenSevereDifficulty).await;
    let flood = submit(
        &s,
        &h2,
        pb::ReliefKind::Accident,
        pb::Channel::Emergency,
        "flood",
    )
    .await;
    let refused = s
        .claims()
        .refuse_emergency(pb::RefuseEmergencyRequest {
            request_id: request_id(),
            claim_id: flood.clone(),
            refused_by: "乡长王".into(),
            reason: "已由商业保险先行赔付".into(),
        })
        .await
        .expect("refuse")
        .into_inner();
    assert_eq!(
        refused.decision,
        i32::from(pb::EmergencyDecisionKind::Refused)
    );
    let e = s
        .claims()
        .pay_emergency_advance(pb::PayEmergencyAdvanceRequest {
            request_id: request_id(),
            claim_id: flood.clone(),
            amount_yuan: "100.00".into(),
            approved_by: String::new(),
            reason: "r".into(),
        })
        .await
        .expect_err("refused");
    assert_eq!(precondition(&e), "EMERGENCY_APPROVAL");
    let recognised = survey(&s, &flood, "8000.00").await;
    assert_eq!(recognised.state, i32::from(pb::ClaimState::Recommended));
    assert_eq!(
        recognised.assessment.expect("assessment").amount_yuan,
        "1800.00"
    );

    // Only emergencies are decided on.
    let h3 = household(&s, 3, pb::HouseholdType::Marginal).await;
    let ordinary = submit(
        &s,
        &h3,
        pb::ReliefKind::Accident,
        pb::Channel::VillageApplication,
        "fall",
    )
    .await;
    let e = s
        .claims()
        .approve_emergency(pb::ApproveEmergencyRequest {
            request_id: request_id(),
            claim_id: ordinary,
            amount_yuan: "100.00".into(),
            approved_by: "乡长王".into(),
            reason: "r".into(),
        })
        .await
        .expect_err("not an emergency");
    assert_eq!(precondition(&e), "EMERGENCY");
    s.stop().await;
}

#[tokio::test]
async fn filing_waits_for_every_cross_check_and_a_hit_rejects_or_resurveys() {
    let s = TestServer::start(date(2024, 2, 21)).await;
    register_county(&s).await;
    put_policy(&s).await;
    premium(&s, 2024, "100000.00").await.expect("premium");

    // A Handan-style claim: survey, publicity, all four checks, filing.
    let a = application(&s, 1, "a").await;
    // Before the recommendation nothing is cross-checked.
    let e = check(&s, &a, "vehicles", pb::CrossCheckResult::Clear, "")
        .await
        .expect_err("too early");
    assert_eq!(precondition(&e), "STATE");
    survey(&s, &a, "8000.00").await;
    through_publicity(&s, &a, date(2024, 3, 1)).await;
    let e = file(&s, &a).await.expect_err("no checks yet");
    assert_eq!(precondition(&e), "CROSS_CHECK");
    assert!(
        e.message().contains("vehicles, real_estate"),
        "{}",
        e.message()
    );
    // Bad results are refused by field and record nothing.
    let e = check(&s, &a, "boats", pb::CrossCheckResult::Clear, "")
        .await
        .expect_err("unknown check");
    assert_eq!(fields(&e), ["check"]);
    let e = check(&s, &a, "vehicles", pb::CrossCheckResult::Hit, "")
        .await
        .expect_err("a hit says what");
    assert_eq!(fields(&e), ["details"]);
    check(&s, &a, "vehicles", pb::CrossCheckResult::Clear, "")
        .await
        .expect("vehicles");
    check(
        &s,
        &a,
        "real_estate",
        pb::CrossCheckResult::NotPossible,
        "不动产系统升级，暂停查询",
    )
    .await
    .expect("not possible");
    check(
        &s,
        &a,
        "business_registration",
        pb::CrossCheckResult::Clear,
        "",
    )
    .await
    .expect("business");
    let e = file(&s, &a).await.expect_err("one still missing");
    assert!(e.message().contains("public_employment"), "{}", e.message());
    let checks = check(&s, &a, "public_employment", pb::CrossCheckResult::Clear, "")
        .await
        .expect("public employment");
    assert!(checks.filing_allowed);
    assert_eq!(checks.records.len(), 4);
    assert_eq!(checks.records[1].check_name, "不动产登记比对");
    let filed = file(&s, &a).await.expect("filed");
    assert_eq!(filed.state, i32::from(pb::ClaimState::Filed));

    // A hit that rejects: the county office disqualifies the claim.
    let b = application(&s, 2, "b").await;
    survey(&s, &b, "8000.00").await;
    through_publicity(&s, &b, date(2024, 3, 12)).await;
    all_clear(&s, &b).await;
    let checks = check(
        &s,
        &b,
        "vehicles",
        pb::CrossCheckResult::Hit,
        "名下登记小型轿车一辆，冀D·12345",
    )
    .await
    .expect("hit");
    assert!(!checks.filing_allowed);
    assert_eq!(checks.hits, ["vehicles"]);
    let e = file(&s, &b).await.expect_err("a hit awaits a decision");
    assert_eq!(precondition(&e), "CROSS_CHECK_HIT");
    let decide = |claim: &str, decision: pb::CrossCheckDecision| pb::DecideCrossCheckHitRequest {
        request_id: request_id(),
        claim_id: claim.into(),
        decision: decision.into(),
        reason: "家庭拥有车辆，不符合条件".into(),
        decided_by: "county office".into(),
    };
    let rejected = s
        .payout()
        .decide_cross_check_hit(decide(&b, pb::CrossCheckDecision::Reject))
        .await
        .expect("reject")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(rejected.state, i32::from(pb::ClaimState::Disqualified));
    let e = file(&s, &b).await.expect_err("disqualified is final");
    assert_eq!(precondition(&e), "STATE");
    let history = s
        .claims()
        .get_claim_history(pb::GetClaimRequest {
            claim_id: b.clone(),
        })
        .await
        .expect("history")
        .into_inner();
    assert!(
        history
            .transitions
            .iter()
            .any(|t| t.event == "disqualify_on_cross_check" && t.reason.contains("vehicles")),
        "{history:?}"
    );

    // A hit that sends the claim back: the earlier results no longer
    // count, the survey finds again, the checks are made again.
    let c = application(&s, 3, "c").await;
    survey(&s, &c, "8000.00").await;
    through_publicity(&s, &c, date(2024, 3, 23)).await;
    all_clear(&s, &c).await;
    check(
        &s,
        &c,
        "business_registration",
        pb::CrossCheckResult::Hit,
        "名下个体工商户一户（已注销）",
    )
    .await
    .expect("hit");
    let back = s
        .payout()
        .decide_cross_check_hit(decide(&c, pb::CrossCheckDecision::Resurvey))
        .await
        .expect("resurvey")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(back.state, i32::from(pb::ClaimState::UnderSurvey));
    let e = s
        .payout()
        .decide_cross_check_hit(decide(&c, pb::CrossCheckDecision::Reject))
        .await
        .expect_err("nothing to decide now");
    assert_eq!(precondition(&e), "CROSS_CHECK_HIT");
    resurvey(&s, &c, "8000.00").await;
    let listed = s
        .payout()
        .list_cross_checks(pb::ListCrossChecksRequest {
            claim_id: c.clone(),
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.records.len(), 5, "every result is kept");
    assert_eq!(
        listed.missing, CHECKS,
        "none of them counts for the new round"
    );
    through_publicity(&s, &c, date(2024, 4, 3)).await;
    assert!(all_clear(&s, &c).await.filing_allowed);
    file(&s, &c).await.expect("filed after the second round");
    assert_eq!(state_of(&s, &c).await, i32::from(pb::ClaimState::Filed));
    s.stop().await;
}

async fn open(s: &TestServer, claim: &str) {
    open_publicity(s, claim).await.expect("open");
}

async fn object(s: &TestServer, claim: &str, reason: &str) {
    s.publicity()
        .raise_objection(pb::RaiseObjectionRequest {
            request_id: request_id(),
            claim_id: claim.into(),
            objector: "村民李某".into(),
            reason: reason.into(),
        })
        .await
        .expect("objection");
}

async fn outcomes(s: &TestServer, claim: &str) -> Vec<(String, i32)> {
    s.publicity()
        .list_objections(pb::ListObjectionsRequest {
            claim_id: claim.into(),
        })
        .await
        .expect("objections")
        .into_inner()
        .objections
        .into_iter()
        .map(|o| (o.reason, o.outcome))
        .collect()
}

#[tokio::test]
async fn objections_are_listed_with_what_became_of_them() {
    use pb::ObjectionOutcome::{NotUpheld, Pending, Upheld};
    let s = TestServer::start(date(2024, 2, 21)).await;
    register_county(&s).await;
    put(&s, &example_policy()).await;

    // Objected, surveyed again, objected again, then passed: neither upheld.
    let a = application(&s, 1, "a").await;
    survey(&s, &a, "8000.00").await;
    open(&s, &a).await;
    object(&s, &a, "该户另有商铺出租收入").await;
    assert_eq!(
        outcomes(&s, &a).await,
        [("该户另有商铺出租收入".to_string(), i32::from(Pending))]
    );
    resurvey(&s, &a, "8000.00").await;
    open(&s, &a).await;
    object(&s, &a, "子女在外务工收入较高").await;
    resurvey(&s, &a, "8000.00").await;
    through_publicity(&s, &a, date(2024, 2, 22)).await;
    let got: Vec<i32> = outcomes(&s, &a).await.into_iter().map(|(_, o)| o).collect();
    assert_eq!(got, [i32::from(NotUpheld), i32::from(NotUpheld)]);

    // Objected, and the survey then found no case: upheld.
    let b = application(&s, 2, "b").await;
    survey(&s, &b, "8000.00").await;
    open(&s, &b).await;
    object(&s, &b, "住院费用已由单位全额报销").await;
    recommend(&s, &b, "0.00", false).await;
    let got: Vec<i32> = outcomes(&s, &b).await.into_iter().map(|(_, o)| o).collect();
    assert_eq!(got, [i32::from(Upheld)]);
    s.stop().await;
}

/// The example policy with the county's own steps in `steps` and, when
/// `checks`, Handan's four departments' cross-checks.
async fn put_policy_with_steps(s: &TestServer, steps: Vec<ReviewStep>, checks: bool) {
    let mut policy = example_policy();
    policy.review_steps = steps;
    if checks {
        policy.cross_checks = fangpin_domain::policy::Policy::cross_check_example();
    }
    put(s, &policy).await;
}

/// A scan of the meeting's minutes (会议记录), uploaded to the claim.
async fn minutes(s: &TestServer, claim: &str, n: u8) -> String {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend(std::iter::repeat_n(n, 2_000));
    let header = pb::EvidenceHeader {
        request_id: request_id(),
        claim_id: claim.into(),
        file_name: format!("评议会议记录{n}.jpg"),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        size_bytes: bytes.len() as u64,
        description: "村民代表会议记录".into(),
        uploaded_by: SURVEYOR.into(),
    };
    let parts = vec![
        pb::UploadEvidenceRequest {
            part: Some(pb::upload_evidence_request::Part::Header(header)),
        },
        pb::UploadEvidenceRequest {
            part: Some(pb::upload_evidence_request::Part::Data(bytes.into())),
        },
    ];
    fangpin_proto::v1::evidence_service_client::EvidenceServiceClient::new(s.channel.clone())
        .upload_evidence(tokio_stream::iter(parts))
        .await
        .expect("minutes uploaded")
        .into_inner()
        .evidence_id
}

fn deliberation(
    claim: &str,
    (members, present, in_favour): (u32, u32, u32),
    held_on: &str,
    minutes: &str,
) -> pb::RecordDeliberationRequest {
    pb::RecordDeliberationRequest {
        request_id: request_id(),
        claim_id: claim.into(),
        held_on: held_on.into(),
        members,
        present,
        in_favour,
        minutes_evidence_id: minutes.into(),
        recorded_by: "村委会主任王某".into(),
        note: String::new(),
    }
}

async fn deliberate(
    s: &TestServer,
    req: pb::RecordDeliberationRequest,
) -> Result<pb::ClaimReviews, fangpin_proto::tonic::Status> {
    s.publicity()
        .record_deliberation(req)
        .await
        .map(|r| r.into_inner())
}

async fn township(
    s: &TestServer,
    claim: &str,
    decision: pb::TownshipDecision,
    reason: &str,
) -> Result<pb::ClaimReviews, fangpin_proto::tonic::Status> {
    s.publicity()
        .record_township_review(pb::RecordTownshipReviewRequest {
            request_id: request_id(),
            claim_id: claim.into(),
            decision: decision.into(),
            reason: reason.into(),
            reviewed_by: "乡镇审核人张某".into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn reviews(s: &TestServer, claim: &str) -> pb::ClaimReviews {
    s.publicity()
        .list_reviews(pb::ListReviewsRequest {
            claim_id: claim.into(),
        })
        .await
        .expect("reviews")
        .into_inner()
}

async fn claim_of(s: &TestServer, claim: &str) -> pb::Claim {
    s.claims()
        .get_claim(pb::GetClaimRequest {
            claim_id: claim.into(),
        })
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim")
}

async fn open_publicity(
    s: &TestServer,
    claim: &str,
) -> Result<pb::Claim, fangpin_proto::tonic::Status> {
    s.publicity()
        .open_publicity(pb::OpenPublicityRequest {
            request_id: request_id(),
            claim_id: claim.into(),
            opened_by: "village".into(),
        })
        .await
        .map(|r| r.into_inner().claim.expect("claim"))
}

use fangpin_domain::claim::ReviewStep;

/// The time-limited stage the deadline listing puts the claim in, if any.
async fn stage_of(s: &TestServer, claim: &str) -> Option<pb::DeadlineStage> {
    s.deadlines()
        .list_deadlines(pb::ListDeadlinesRequest {
            county_code: COUNTY.into(),
            within_working_days: 120,
            ..Default::default()
        })
        .await
        .expect("deadlines")
        .into_inner()
        .deadlines
        .into_iter()
        .find(|d| d.claim_id == claim)
        .map(|d| pb::DeadlineStage::try_from(d.stage).expect("a stage"))
}

/// Handan's order (seed 004): the village deliberates, the township
/// reviews, the case is posted, the departments check, the county files
/// and the insurer pays. Every step refuses to be taken out of turn, bad
/// meetings are refused by field, and a retried request gets its first
/// answer without a second record.
#[tokio::test]
async fn a_handan_claim_goes_through_deliberation_review_publicity_checks_and_filing() {
    let s = TestServer::start(date(2024, 2, 21)).await;
    register_county(&s).await;
    put_policy_with_steps(
        &s,
        fangpin_domain::policy::Policy::handan_review_steps(),
        true,
    )
    .await;
    premium(&s, 2024, "100000.00").await.expect("premium");

    let a = application(&s, 1, "a").await;
    let m = minutes(&s, &a, 1).await;
    // Under survey nothing of the county's own is taken.
    let e = deliberate(&s, deliberation(&a, (15, 12, 10), "2024-02-21", &m))
        .await
        .expect_err("under survey");
    assert_eq!(precondition(&e), "STATE");
    survey(&s, &a, "8000.00").await;
    let r = reviews(&s, &a).await;
    assert_eq!(r.next_step, i32::from(pb::ReviewStep::VillageDeliberation));
    assert_eq!(
        r.steps,
        [
            i32::from(pb::ReviewStep::VillageDeliberation),
            i32::from(pb::ReviewStep::TownshipReview),
            i32::from(pb::ReviewStep::Publicity),
            i32::from(pb::ReviewStep::Filing),
        ]
    );
    // Not in the county's order: publicity, the township and filing wait.
    let e = open_publicity(&s, &a).await.expect_err("publicity waits");
    assert_eq!(precondition(&e), "STATE");
    let e = township(&s, &a, pb::TownshipDecision::Approved, "")
        .await
        .expect_err("the village deliberates first");
    assert_eq!(precondition(&e), "STATE");
    assert!(
        e.message().contains("village_deliberation"),
        "{}",
        e.message()
    );
    let e = file(&s, &a).await.expect_err("filing waits");
    assert_eq!(precondition(&e), "STATE");

    // Meetings that could not decide, or a record that is not the
    // claim's, are refused by field and change nothing.
    for (attendance, held_on, minutes_id, field) in [
        ((15, 9, 9), "2024-02-21", m.clone(), "present"),
        ((15, 12, 13), "2024-02-21", m.clone(), "in_favour"),
        ((0, 0, 0), "2024-02-21", m.clone(), "members"),
        ((15, 12, 10), "2024-02-22", m.clone(), "held_on"),
        ((15, 12, 10), "2024-02-19", m.clone(), "held_on"),
        (
            (15, 12, 10),
            "2024-02-21",
            uuid::Uuid::new_v4().to_string(),
            "minutes_evidence_id",
        ),
    ] {
        let e = deliberate(&s, deliberation(&a, attendance, held_on, &minutes_id))
            .await
            .expect_err("refused");
        assert_eq!(fields(&e), [field], "{attendance:?} {held_on}");
    }
    let e = deliberate(&s, deliberation(&a, (15, 12, 10), "2024-02-30", &m))
        .await
        .expect_err("no such day");
    assert_eq!(fields(&e), ["held_on"]);
    assert!(reviews(&s, &a).await.deliberations.is_empty());
    assert_eq!(
        state_of(&s, &a).await,
        i32::from(pb::ClaimState::Recommended)
    );

    // 12 of 15 sat, 10 agreed: more than half of those present.
    let req = deliberation(&a, (15, 12, 10), "2024-02-21", &m);
    let first = deliberate(&s, req.clone()).await.expect("deliberated");
    assert_eq!(first.state, i32::from(pb::ClaimState::Deliberated));
    assert_eq!(first.next_step, i32::from(pb::ReviewStep::TownshipReview));
    let d = &first.deliberations[0];
    assert!(d.agreed);
    assert_eq!((d.members, d.present, d.in_favour), (15, 12, 10));
    assert_eq!(d.minutes_evidence_id, m);
    // The same request again: the first answer, and still one record.
    assert_eq!(deliberate(&s, req).await.expect("replayed"), first);
    assert_eq!(reviews(&s, &a).await.deliberations.len(), 1);

    // The township approves; a send-back would need a reason.
    let e = township(&s, &a, pb::TownshipDecision::SentBack, "")
        .await
        .expect_err("a send-back says why");
    assert_eq!(fields(&e), ["reason"]);
    let e = township(&s, &a, pb::TownshipDecision::Unspecified, "")
        .await
        .expect_err("no decision");
    assert_eq!(fields(&e), ["decision"]);
    let r = township(&s, &a, pb::TownshipDecision::Approved, "")
        .await
        .expect("approved");
    assert_eq!(r.state, i32::from(pb::ClaimState::TownshipApproved));
    assert_eq!(r.next_step, i32::from(pb::ReviewStep::Publicity));

    // Publicity, every departments' check, filing, payout.
    through_publicity(&s, &a, date(2024, 2, 22)).await;
    let e = file(&s, &a).await.expect_err("checks first");
    assert_eq!(precondition(&e), "CROSS_CHECK");
    assert!(all_clear(&s, &a).await.filing_allowed);
    let filed = file(&s, &a).await.expect("filed");
    assert_eq!(filed.state, i32::from(pb::ClaimState::Filed));
    assert_eq!(filed.reserved_yuan, "1800.00");
    assert_eq!(pool(&s, 2024).await.pending_yuan, "1800.00");
    pay(&s, &a).await;
    assert_eq!(state_of(&s, &a).await, i32::from(pb::ClaimState::Paid));
    let p = pool(&s, 2024).await;
    assert_eq!(
        (p.pending_yuan.as_str(), p.relief_paid_yuan.as_str()),
        ("0.00", "1800.00")
    );

    // The claim's history names every step, in order.
    let events: Vec<String> = s
        .claims()
        .get_claim_history(pb::GetClaimRequest {
            claim_id: a.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .transitions
        .into_iter()
        .map(|t| t.event)
        .collect();
    let wanted = [
        "recommend_approval",
        "pass_deliberation",
        "approve_township_review",
        "open_publicity",
        "pass_publicity",
        "file",
        "pay",
    ];
    let mut at = 0;
    for event in &events {
        if at < wanted.len() && event == wanted[at] {
            at += 1;
        }
    }
    assert_eq!(at, wanted.len(), "{events:?}");
    s.stop().await;
}

/// A township that sends the case back, and a village that does not agree:
/// each returns it to the insurer's survey, whose new findings go through
/// the county's steps again from the start.
#[tokio::test]
async fn the_township_sends_a_case_back_and_a_village_that_disagrees_does_too() {
    let s = TestServer::start(date(2024, 2, 21)).await;
    register_county(&s).await;
    put_policy_with_steps(
        &s,
        fangpin_domain::policy::Policy::handan_review_steps(),
        false,
    )
    .await;
    premium(&s, 2024, "100000.00").await.expect("premium");

    let b = application(&s, 2, "b").await;
    let m = minutes(&s, &b, 2).await;
    survey(&s, &b, "8000.00").await;
    deliberate(&s, deliberation(&b, (15, 15, 15), "2024-02-21", &m))
        .await
        .expect("agreed");
    let r = township(
        &s,
        &b,
        pb::TownshipDecision::SentBack,
        "医疗费用票据与医保结算单不符",
    )
    .await
    .expect("sent back");
    assert_eq!(r.state, i32::from(pb::ClaimState::UnderSurvey));
    assert_eq!(r.next_step, i32::from(pb::ReviewStep::Unspecified));
    let sent = &r.township_reviews[0];
    assert_eq!(sent.decision, i32::from(pb::TownshipDecision::SentBack));
    assert_eq!(sent.reason, "医疗费用票据与医保结算单不符");
    // The contested findings no longer stand: the survey finds again.
    assert!(claim_of(&s, &b).await.assessment.is_none());
    let e = township(&s, &b, pb::TownshipDecision::Approved, "")
        .await
        .expect_err("back under survey");
    assert_eq!(precondition(&e), "STATE");

    // The second round starts again with the village, which now disagrees
    // (5 of 12): back to survey once more.
    resurvey(&s, &b, "7000.00").await;
    let r = deliberate(&s, deliberation(&b, (15, 12, 6), "2024-02-21", &m))
        .await
        .expect("recorded");
    assert_eq!(r.state, i32::from(pb::ClaimState::UnderSurvey));
    assert!(!r.deliberations[1].agreed, "exactly half is not a majority");
    assert!(r.deliberations[1].findings_seq > r.deliberations[0].findings_seq);
    // The third round passes both.
    resurvey(&s, &b, "7000.00").await;
    deliberate(&s, deliberation(&b, (15, 12, 7), "2024-02-21", &m))
        .await
        .expect("agreed");
    let r = township(&s, &b, pb::TownshipDecision::Approved, "复核无误")
        .await
        .expect("approved");
    assert_eq!(r.deliberations.len(), 3);
    assert_eq!(r.township_reviews.len(), 2);
    assert_eq!(r.state, i32::from(pb::ClaimState::TownshipApproved));
    s.stop().await;
}

/// Hebi's order (seed 001): the village and township review, the office
/// files (and the relief is reserved), then the 10 days' publicity, then
/// payment. An objection after filing releases the reservation; the case
/// is filed again after the new survey.
#[tokio::test]
async fn hebi_files_before_publicity_and_an_objection_releases_the_reservation() {
    let s = TestServer::start(date(2024, 2, 21)).await;
    register_county(&s).await;
    put_policy_with_steps(
        &s,
        fangpin_domain::policy::Policy::hebi_review_steps(),
        false,
    )
    .await;
    premium(&s, 2024, "100000.00").await.expect("premium");

    let c = application(&s, 3, "c").await;
    let m = minutes(&s, &c, 3).await;
    survey(&s, &c, "8000.00").await;
    deliberate(&s, deliberation(&c, (9, 9, 9), "2024-02-21", &m))
        .await
        .expect("agreed");
    let e = open_publicity(&s, &c).await.expect_err("Hebi files first");
    assert_eq!(precondition(&e), "STATE");
    let r = township(&s, &c, pb::TownshipDecision::Approved, "")
        .await
        .expect("approved");
    assert_eq!(r.next_step, i32::from(pb::ReviewStep::Filing));
    // The time limits follow the county's order: filing is due now, from
    // the township's approval.
    assert_eq!(stage_of(&s, &c).await, Some(pb::DeadlineStage::Filing));
    let filed = file(&s, &c).await.expect("filed");
    assert_eq!(filed.reserved_yuan, "1800.00");
    // Filed is not the end here: the insurer pays after publicity.
    let e = s
        .payout()
        .pay_claim(pb::PayClaimRequest {
            request_id: request_id(),
            claim_id: c.clone(),
            paid_by: "insurer".into(),
            bank_reference: "TX-early".into(),
        })
        .await
        .expect_err("publicity first");
    assert_eq!(precondition(&e), "STATE");

    // In publicity, the relief stays reserved.
    let posted = open_publicity(&s, &c).await.expect("open");
    assert_eq!(posted.state, i32::from(pb::ClaimState::InPublicity));
    assert_eq!(posted.reserved_yuan, "1800.00");
    assert_eq!(pool(&s, 2024).await.pending_yuan, "1800.00");
    object(&s, &c, "该户家庭成员有财政供养人员").await;
    let back = claim_of(&s, &c).await;
    assert_eq!(back.state, i32::from(pb::ClaimState::UnderSurvey));
    assert_eq!(back.reserved_yuan, "0.00");
    let p = pool(&s, 2024).await;
    assert_eq!(
        (p.pending_yuan.as_str(), p.available_yuan.as_str()),
        ("0.00", "100000.00")
    );

    // Surveyed again at a lower cost: reviewed, filed for the new amount,
    // posted, passed, paid.
    resurvey(&s, &c, "7000.00").await;
    deliberate(&s, deliberation(&c, (9, 8, 8), "2024-02-21", &m))
        .await
        .expect("agreed");
    township(&s, &c, pb::TownshipDecision::Approved, "")
        .await
        .expect("approved");
    assert_eq!(
        file(&s, &c).await.expect("filed again").reserved_yuan,
        "1200.00"
    );
    through_publicity(&s, &c, date(2024, 2, 22)).await;
    let passed = claim_of(&s, &c).await;
    assert_eq!(passed.state, i32::from(pb::ClaimState::PublicityPassed));
    // Every step done: the insurer's payout is what is due.
    assert_eq!(stage_of(&s, &c).await, Some(pb::DeadlineStage::Payout));
    assert_eq!(passed.reserved_yuan, "1200.00");
    pay(&s, &c).await;
    let p = pool(&s, 2024).await;
    assert_eq!(
        (
            p.pending_yuan.as_str(),
            p.relief_paid_yuan.as_str(),
            p.available_yuan.as_str()
        ),
        ("0.00", "1200.00", "98800.00")
    );
    assert_eq!(state_of(&s, &c).await, i32::from(pb::ClaimState::Paid));
    s.stop().await;
}

/// Whether this run must have the CJK font and poppler's tools (CI sets
/// FANGPIN_REQUIRE_PDF_TOOLS=1 after installing them); a developer's
/// machine without them skips the PDF checks and says so.
fn pdf_tools() -> bool {
    let have = fangpin_tests::notice_font().is_some()
        && ["pdftotext", "pdftoppm"]
            .iter()
            .all(|tool| std::process::Command::new(tool).arg("-v").output().is_ok());
    if !have {
        assert!(
            std::env::var("FANGPIN_REQUIRE_PDF_TOOLS").is_err(),
            "FANGPIN_REQUIRE_PDF_TOOLS is set but the font or poppler-utils is missing"
        );
        eprintln!("skipping the PDF checks: no CJK font or no pdftotext/pdftoppm here");
    }
    have
}

async fn print_notice(
    s: &TestServer,
    village: &str,
) -> Result<pb::NoticeDocument, fangpin_proto::tonic::Status> {
    s.publicity()
        .print_notice(pb::PrintNoticeRequest {
            village_code: village.into(),
        })
        .await
        .map(|r| r.into_inner())
}

/// The village's paper notice: the county office's details are set first
/// and checked by field; the PDF lists every household in publicity, and
/// only those, with masked IDs, relief kinds in Chinese, amounts and dates;
/// its text extracts (pdftotext) and its first page renders (pdftoppm).
#[tokio::test]
async fn the_village_notice_prints_as_a_pdf_with_masked_ids_and_its_dates() {
    let s = TestServer::start(date(2024, 2, 21)).await;
    register_county(&s).await;
    put(&s, &example_policy()).await;
    premium(&s, 2024, "100000.00").await.expect("premium");

    let office = |phone: &str| pb::SetCountyOfficeRequest {
        request_id: request_id(),
        county_code: COUNTY.into(),
        office_name: "涉县防贫工作领导小组办公室".into(),
        address: "涉县振兴路8号".into(),
        phone: phone.into(),
    };
    let e = s
        .enrollment()
        .set_county_office(office("call us"))
        .await
        .expect_err("a phone is digits");
    assert_eq!(fields(&e), ["phone"]);
    let e = s
        .enrollment()
        .set_county_office(pb::SetCountyOfficeRequest {
            office_name: String::new(),
            ..office("0310-3812345")
        })
        .await
        .expect_err("named");
    assert_eq!(fields(&e), ["office_name"]);

    // Two households in publicity, one still under survey.
    let a = application(&s, 11, "a").await;
    survey(&s, &a, "8000.00").await;
    open(&s, &a).await;
    s.set_date(date(2024, 2, 23));
    let b = application(&s, 12, "b").await;
    survey(&s, &b, "13000.00").await;
    open(&s, &b).await;
    let c = application(&s, 13, "c").await;
    survey(&s, &c, "9000.00").await;
    let _ = c;

    let have_tools = pdf_tools();
    if have_tools {
        let e = print_notice(&s, VILLAGE).await.expect_err("no office yet");
        assert_eq!(precondition(&e), "COUNTY_OFFICE");
    }
    s.enrollment()
        .set_county_office(office("0310-3812345"))
        .await
        .expect("office");
    let e = print_notice(&s, "1304261002")
        .await
        .expect_err("not a village");
    assert_eq!(fields(&e), ["village_code"]);
    if !have_tools {
        let e = print_notice(&s, VILLAGE).await.expect_err("no font here");
        assert_eq!(precondition(&e), "NOTICE_FONT");
        s.stop().await;
        return;
    }

    let doc = print_notice(&s, VILLAGE).await.expect("printed");
    assert!(doc.pdf.starts_with(b"%PDF-"), "a PDF");
    assert_eq!(doc.households, 2);
    assert_eq!(doc.printed_on, "2024-02-23");
    assert_eq!(
        doc.sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&doc.pdf))
    );
    let dir = tempfile::tempdir().expect("a folder");
    let path = dir.path().join(&doc.file_name);
    std::fs::write(&path, &doc.pdf).expect("write the PDF");

    let out = std::process::Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 text");
    for wanted in [
        "防贫救助公示",
        "涉县防贫工作领导小组办公室",
        "涉县振兴路8号",
        "0310-3812345",
        "户主11",
        "户主12",
        "因病",
        "1800.00",
        "4800.00",
        "2024年3月1日",
        "2024年3月3日",
        "2024年2月23日",
    ] {
        assert!(text.contains(wanted), "{wanted:?} is not in:\n{text}");
    }
    // The window as a whole, wherever the paragraph breaks its lines.
    let joined: String = text.split_whitespace().collect();
    assert!(
        joined.contains("公示期：2024年2月21日至2024年3月3日"),
        "{text}"
    );
    for n in [11, 12] {
        let full = resident_id("19700101", n);
        let masked = format!("{}{}{}", &full[..6], "*".repeat(8), &full[14..]);
        assert!(text.contains(&masked), "{masked} is not in:\n{text}");
        assert!(!text.contains(&full), "a full ID number is printed");
        assert!(!text.contains(&full[6..14]), "the birth date is printed");
    }
    assert!(
        !text.contains("户主13"),
        "a household not in publicity is listed"
    );

    let png = dir.path().join("page");
    let out = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile"])
        .arg(&path)
        .arg(&png)
        .output()
        .expect("pdftoppm runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = std::fs::read(dir.path().join("page.png")).expect("page 1 rendered");
    assert!(page.starts_with(b"\x89PNG"), "a PNG");
    // The command line writes the same notice (the PDF is the same for the
    // same board on the same day).
    let cli_pdf = dir.path().join("cli.pdf");
    let cli_path = cli_pdf.display().to_string();
    let printed = fangpin_tests::fangpin(
        &s,
        &[
            "publicity",
            "print",
            "--village",
            VILLAGE,
            "--out",
            &cli_path,
        ],
    )
    .await;
    assert!(printed.contains(&doc.sha256), "{printed}");
    assert_eq!(std::fs::read(&cli_pdf).expect("written"), doc.pdf);
    if let Ok(keep) = std::env::var("FANGPIN_KEEP_NOTICE") {
        std::fs::copy(&path, format!("{keep}.pdf")).expect("keep the PDF");
        std::fs::write(format!("{keep}.png"), &page).expect("keep the page");
    }
    // A page with a table of text is far from blank at 60 dpi.
    assert!(page.len() > 5_000, "page 1 is {} bytes", page.len());
    s.stop().await;
}
