//! The whole claim lifecycle over gRPC: every channel from intake to payout,
//! objections and re-survey, the ledger to the fen, idempotent retries, error
//! details, health and reflection. Runs on SQLite, and on PostgreSQL when
//! FANGPIN_TEST_DATABASE_URL is set.

use fangpin_proto::tonic::{Code, Status};
use fangpin_proto::v1 as pb;
use fangpin_server::write_path::convert::policy_to_pb;
use fangpin_tests::{TestServer, date, request_id, resident_id};
use tonic_types::StatusExt;

const COUNTY: &str = "130426";
const VILLAGE: &str = "130426100201";
const INSURER: &str = "中国人寿涉县支公司";
const SURVEYOR: &str = "surveyor-wang";

/// Registers the county with its 2024 policy (Handan figures) and the premium for its pool.
async fn set_up_county(s: &TestServer, rural_population: u64, premium_yuan: &str) {
    s.enrollment()
        .register_county(pb::RegisterCountyRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            name: "涉县".into(),
            rural_population,
            insurer: INSURER.into(),
        })
        .await
        .expect("register county");
    let county = fangpin_domain::identity::CountyCode::parse(COUNTY).expect("valid");
    let policy = policy_to_pb(
        &fangpin_domain::policy::Policy::example(county, 2024),
        0,
        false,
    );
    let put = s
        .policy()
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(policy),
        })
        .await
        .expect("put policy")
        .into_inner();
    assert_eq!(put.policy.expect("policy").version, 1);
    s.enrollment()
        .record_premium(pb::RecordPremiumRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2024,
            amount_yuan: premium_yuan.into(),
            reference: "treasury voucher 2024-001".into(),
        })
        .await
        .expect("record premium");
}

async fn enroll(s: &TestServer, household_type: pb::HouseholdType, sequence: u32) -> String {
    let response = s
        .enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2024,
            village_code: VILLAGE.into(),
            household_type: household_type.into(),
            head: Some(pb::Person {
                id_number: resident_id("19700101", sequence),
                name: format!("户主{sequence}"),
                relation: String::new(),
            }),
            members: vec![pb::Person {
                id_number: resident_id("19720202", sequence),
                name: format!("配偶{sequence}"),
                relation: "spouse".into(),
            }],
            bank_account: format!("62284800{sequence:08}"),
        })
        .await
        .expect("enroll household")
        .into_inner();
    assert_eq!(response.persons, 2);
    assert!(response.head_id_masked.contains("********"));
    response.household_id
}

async fn submit(
    s: &TestServer,
    household_id: &str,
    kind: pb::ReliefKind,
    channel: pb::Channel,
    event: &str,
) -> pb::Claim {
    s.claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: household_id.into(),
            relief_kind: kind.into(),
            channel: channel.into(),
            event_date: "2024-02-20".into(),
            event_reference: event.into(),
            claimed_cost_yuan: "100000.00".into(),
            description: "in-patient treatment".into(),
            submitted_by: "village committee".into(),
        })
        .await
        .expect("submit claim")
        .into_inner()
        .claim
        .expect("claim")
}

async fn survey(s: &TestServer, claim_id: &str, income: &str, cost: &str) -> pb::Claim {
    s.survey()
        .record_findings(pb::RecordFindingsRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            surveyor: SURVEYOR.into(),
            verified_income_per_capita_yuan: income.into(),
            verified_cost_yuan: cost.into(),
            notes: "receipts checked in the home".into(),
            evidence_refs: vec![],
            prior_incomes_per_capita_yuan: Vec::new(),
            income_evidence_refs: Vec::new(),
        })
        .await
        .expect("record findings")
        .into_inner()
        .claim
        .expect("claim");
    s.survey()
        .recommend(pb::RecommendRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            surveyor: SURVEYOR.into(),
            approve: true,
            reason: "both conditions met".into(),
        })
        .await
        .expect("recommend")
        .into_inner()
        .claim
        .expect("claim")
}

async fn assign(s: &TestServer, claim_id: &str) -> pb::Claim {
    s.survey()
        .assign_survey(pb::AssignSurveyRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            surveyor: SURVEYOR.into(),
            insurer: INSURER.into(),
            assigned_by: "county office".into(),
        })
        .await
        .expect("assign survey")
        .into_inner()
        .claim
        .expect("claim")
}

async fn open_publicity(s: &TestServer, claim_id: &str) -> pb::Claim {
    s.publicity()
        .open_publicity(pb::OpenPublicityRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            opened_by: "village committee".into(),
        })
        .await
        .expect("open publicity")
        .into_inner()
        .claim
        .expect("claim")
}

async fn close_publicity(s: &TestServer, claim_id: &str) -> Result<pb::Claim, Status> {
    s.publicity()
        .close_publicity(pb::ClosePublicityRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            closed_by: "township".into(),
        })
        .await
        .map(|r| r.into_inner().claim.expect("claim"))
}

/// Enrols an unstable household and takes an illness claim of 100,000 yuan
/// (relief 61,750.00) from intake until its publicity has passed (11 March 2024).
async fn illness_claim_past_publicity(s: &TestServer, sequence: u32) -> String {
    let h = enroll(s, pb::HouseholdType::UnstableEscaped, sequence).await;
    let event = format!("admission-{sequence}");
    let claim = submit(
        s,
        &h,
        pb::ReliefKind::Illness,
        pb::Channel::VillageApplication,
        &event,
    )
    .await;
    assign(s, &claim.claim_id).await;
    survey(s, &claim.claim_id, "3000.00", "100000.00").await;
    open_publicity(s, &claim.claim_id).await;
    s.set_date(date(2024, 3, 11));
    close_publicity(s, &claim.claim_id)
        .await
        .expect("publicity passed");
    claim.claim_id
}

async fn file(s: &TestServer, claim_id: &str) {
    s.payout()
        .file_claim(pb::FileClaimRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            filed_by: "county prevention office".into(),
            cross_check_note: "no vehicle, property or business registered".into(),
        })
        .await
        .expect("file claim");
}

async fn file_and_pay(s: &TestServer, claim_id: &str) -> pb::PayClaimResponse {
    file(s, claim_id).await;
    pay(s, claim_id).await
}

async fn pay(s: &TestServer, claim_id: &str) -> pb::PayClaimResponse {
    s.payout()
        .pay_claim(pb::PayClaimRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            paid_by: "insurer finance".into(),
            bank_reference: format!("transfer-{claim_id}"),
        })
        .await
        .expect("pay claim")
        .into_inner()
}

async fn pool(s: &TestServer) -> pb::PoolBalance {
    s.ledger()
        .get_pool_balance(pb::PoolRequest {
            county_code: COUNTY.into(),
            policy_year: 2024,
        })
        .await
        .expect("pool balance")
        .into_inner()
}

fn field_violations(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn three_channels_from_intake_to_payout_with_the_ledger_to_the_fen() {
    // Friday 1 March 2024: 15 working days later is Friday 22 March (no holidays in March).
    let s = TestServer::start(date(2024, 3, 1)).await;
    // 300,000 rural people -> 30,000 insured -> 1,500,000 yuan premium.
    set_up_county(&s, 300_000, "1500000.00").await;
    let county = s
        .enrollment()
        .get_county(pb::GetCountyRequest {
            county_code: COUNTY.into(),
            policy_year: 2024,
        })
        .await
        .expect("county")
        .into_inner();
    assert_eq!(
        (county.pool_size, county.premium_due_yuan.as_str()),
        (30_000, "1500000.00")
    );

    let unstable = enroll(&s, pb::HouseholdType::UnstableEscaped, 1).await;
    let marginal = enroll(&s, pb::HouseholdType::Marginal, 2).await;
    let emergency = enroll(&s, pb::HouseholdType::UnstableEscaped, 3).await;

    // Channel 1: village application, illness. 95,000 above the 5,000 threshold:
    // 30,000 x 60% + 50,000 x 65% + 15,000 x 75% = 61,750.00.
    let a = submit(
        &s,
        &unstable,
        pb::ReliefKind::Illness,
        pb::Channel::VillageApplication,
        "admission-A",
    )
    .await;
    assert_eq!(a.survey_deadline, "2024-03-22");
    assert_eq!(a.policy_version, 1);
    assign(&s, &a.claim_id).await;
    let a_rec = survey(&s, &a.claim_id, "3000.00", "100000.00").await;
    let assessment = a_rec.assessment.expect("assessment");
    assert_eq!(assessment.amount_yuan, "61750.00");
    assert!(assessment.explanation.iter().any(|l| l.contains("band 3")));

    // Channel 2: department referral, schooling, with an objection and a re-survey.
    let b = submit(
        &s,
        &marginal,
        pb::ReliefKind::Schooling,
        pb::Channel::DepartmentReferral,
        "school-year-2024",
    )
    .await;
    assign(&s, &b.claim_id).await;
    // 12,000 above the 8,000 threshold at 60% = 7,200.00.
    assert_eq!(
        survey(&s, &b.claim_id, "5000.00", "20000.00")
            .await
            .assessment
            .expect("a")
            .amount_yuan,
        "7200.00"
    );

    // Channel 3: emergency, accident: an advance before the survey, deducted at payout.
    let c = submit(
        &s,
        &emergency,
        pb::ReliefKind::Accident,
        pb::Channel::Emergency,
        "fire-2024-02-20",
    )
    .await;
    // The township head approves the help first (遇困即扶).
    s.claims()
        .approve_emergency(pb::ApproveEmergencyRequest {
            request_id: request_id(),
            claim_id: c.claim_id.clone(),
            amount_yuan: "3000.00".into(),
            approved_by: "township head Li".into(),
            reason: "house burned down".into(),
        })
        .await
        .expect("approval");
    let advance = s
        .claims()
        .pay_emergency_advance(pb::PayEmergencyAdvanceRequest {
            request_id: request_id(),
            claim_id: c.claim_id.clone(),
            amount_yuan: "3000.00".into(),
            approved_by: "township head Li".into(),
            reason: "house burned down".into(),
        })
        .await
        .expect("advance")
        .into_inner();
    assert_eq!(advance.claim.expect("claim").advance_paid_yuan, "3000.00");
    assign(&s, &c.claim_id).await;
    // 40,000 above the 10,000 threshold: 30,000 x 60% + 10,000 x 65% = 24,500.00.
    assert_eq!(
        survey(&s, &c.claim_id, "2000.00", "50000.00")
            .await
            .assessment
            .expect("a")
            .amount_yuan,
        "24500.00"
    );

    // Publicity opens for all three on 1 March; the last objection day is 10 March.
    for id in [&a.claim_id, &b.claim_id, &c.claim_id] {
        let opened = open_publicity(&s, id).await;
        assert_eq!(opened.publicity_last_objection_day, "2024-03-10");
    }
    let notices = s
        .publicity()
        .list_notices(pb::ListNoticesRequest {
            village_code: VILLAGE.into(),
        })
        .await
        .expect("notices")
        .into_inner()
        .notices;
    assert_eq!(notices.len(), 3);
    for n in &notices {
        assert_eq!(n.id_number_masked.len(), 18);
        assert_eq!(
            &n.id_number_masked[6..14],
            "********",
            "ID numbers are masked on the board"
        );
    }

    s.set_date(date(2024, 3, 5));
    let objected = s
        .publicity()
        .raise_objection(pb::RaiseObjectionRequest {
            request_id: request_id(),
            claim_id: b.claim_id.clone(),
            objector: "villager Zhao".into(),
            reason: "part of the fees were waived by the school".into(),
        })
        .await
        .expect("objection")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(objected.state, pb::ClaimState::UnderSurvey as i32);
    assert_eq!(objected.objections, 1);
    // Re-survey: 2,000 was waived; 10,000 above threshold at 60% = 6,000.00.
    assert_eq!(
        survey(&s, &b.claim_id, "5000.00", "18000.00")
            .await
            .assessment
            .expect("a")
            .amount_yuan,
        "6000.00"
    );
    let reopened = open_publicity(&s, &b.claim_id).await;
    assert_eq!(reopened.publicity_last_objection_day, "2024-03-14");

    // The last objection day itself is still publicity.
    s.set_date(date(2024, 3, 10));
    let early = close_publicity(&s, &a.claim_id)
        .await
        .expect_err("still in publicity");
    assert_eq!(early.code(), Code::FailedPrecondition);
    s.set_date(date(2024, 3, 11));
    for id in [&a.claim_id, &c.claim_id] {
        assert_eq!(
            close_publicity(&s, id).await.expect("passed").state,
            pb::ClaimState::PublicityPassed as i32
        );
    }
    assert_eq!(
        close_publicity(&s, &b.claim_id)
            .await
            .expect_err("second period runs")
            .code(),
        Code::FailedPrecondition
    );
    s.set_date(date(2024, 3, 15));
    close_publicity(&s, &b.claim_id)
        .await
        .expect("second period passed");

    let paid_a = file_and_pay(&s, &a.claim_id).await;
    assert_eq!(paid_a.claim.expect("claim").payout_yuan, "61750.00");
    #[allow(deprecated, reason = "the field must stay empty")]
    let no_flag = paid_a.top_up_flag.is_none();
    assert!(no_flag);
    let paid_b = file_and_pay(&s, &b.claim_id).await;
    assert_eq!(paid_b.entry.expect("entry").amount_yuan, "6000.00");
    let paid_c = file_and_pay(&s, &c.claim_id).await;
    assert_eq!(
        paid_c.claim.expect("claim").payout_yuan,
        "21500.00",
        "24,500 less the 3,000 advance"
    );

    // 1,500,000 - 61,750 - 6,000 - 3,000 - 21,500 = 1,407,750.00
    let p = pool(&s).await;
    assert_eq!(p.pool_yuan, "1407750.00");
    assert_eq!(p.premiums_yuan, "1500000.00");
    assert_eq!(p.relief_paid_yuan, "89250.00");
    assert_eq!(p.advances_yuan, "3000.00");
    assert_eq!(p.shortfall_yuan, "0.00");
    assert_eq!(p.entries, 5);

    // Every entry balances and the entries add up to the pool, fen by fen.
    let entries = s
        .ledger()
        .list_entries(pb::ListEntriesRequest {
            county_code: COUNTY.into(),
            policy_year: 2024,
            page_size: 2,
            page_token: String::new(),
        })
        .await
        .expect("entries")
        .into_inner();
    assert_eq!(entries.entries.len(), 2);
    let mut all = entries.entries;
    let mut token = entries.next_page_token;
    while !token.is_empty() {
        let page = s
            .ledger()
            .list_entries(pb::ListEntriesRequest {
                county_code: COUNTY.into(),
                policy_year: 2024,
                page_size: 2,
                page_token: token,
            })
            .await
            .expect("entries")
            .into_inner();
        all.extend(page.entries);
        token = page.next_page_token;
    }
    assert_eq!(all.len(), 5);
    let fen = |y: &str| fangpin_domain::Fen::parse_yuan(y).expect("money").get();
    let pool_fen: i64 = all
        .iter()
        .map(|e| {
            assert_ne!(e.debit_account, e.credit_account);
            if e.debit_account == "fund_pool" {
                fen(&e.amount_yuan)
            } else if e.credit_account == "fund_pool" {
                -fen(&e.amount_yuan)
            } else {
                0
            }
        })
        .sum();
    assert_eq!(pool_fen, 140_775_000);
    assert_eq!(
        all.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );

    // The history of the objected claim tells who did what.
    let history = s
        .claims()
        .get_claim_history(pb::GetClaimRequest {
            claim_id: b.claim_id.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .transitions;
    let events: Vec<&str> = history.iter().map(|t| t.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "submit_department_referral",
            "assign_survey",
            // Each set of findings is in the history (the second after the
            // objection's re-verification).
            "record_findings",
            "recommend_approval",
            "open_publicity",
            "raise_objection",
            "record_findings",
            "recommend_approval",
            "open_publicity",
            "pass_publicity",
            "file",
            "pay"
        ]
    );
    let objection = history
        .iter()
        .find(|t| t.event == "raise_objection")
        .expect("the objection");
    assert_eq!(objection.actor, "villager Zhao");
    s.stop().await;
}

#[tokio::test]
async fn a_payout_the_pool_cannot_cover_is_made_and_flags_a_top_up() {
    let s = TestServer::start(date(2024, 3, 1)).await;
    // 1,000 rural people -> 100 insured -> 5,000 yuan premium.
    set_up_county(&s, 1_000, "5000.00").await;
    let claim_id = illness_claim_past_publicity(&s, 7).await;
    // Filing reserves 61,750 against a pool of 5,000: the flag goes up now,
    // before any money moves, with the 56,750 the pool cannot cover.
    file(&s, &claim_id).await;
    let reserved = pool(&s).await;
    assert_eq!(
        (
            reserved.pool_yuan.as_str(),
            reserved.pending_yuan.as_str(),
            reserved.available_yuan.as_str()
        ),
        ("5000.00", "61750.00", "-56750.00")
    );
    assert_eq!(reserved.shortfall_yuan, "56750.00");
    let flags = s
        .ledger()
        .list_top_up_flags(pb::ListTopUpFlagsRequest {
            county_code: COUNTY.into(),
            policy_year: 2024,
            include_cleared: false,
        })
        .await
        .expect("flags")
        .into_inner()
        .flags;
    assert_eq!(
        (flags.len(), flags[0].shortfall_yuan.as_str()),
        (1, "56750.00")
    );
    // The payout is still made; it posts the reservation.
    let paid = pay(&s, &claim_id).await;
    assert_eq!(
        paid.claim.expect("claim").state,
        pb::ClaimState::Paid as i32
    );
    let after = pool(&s).await;
    assert_eq!(
        (after.pool_yuan.as_str(), after.pending_yuan.as_str()),
        ("-56750.00", "0.00")
    );

    let top_up = |amount: &str| pb::RecordTopUpRequest {
        request_id: request_id(),
        county_code: COUNTY.into(),
        policy_year: 2024,
        amount_yuan: amount.into(),
        reference: "county finance".into(),
    };
    let partial = s
        .ledger()
        .record_top_up(top_up("50000.00"))
        .await
        .expect("top-up")
        .into_inner();
    assert!(partial.cleared.is_empty(), "the pool is still short");
    let open = |include_cleared| pb::ListTopUpFlagsRequest {
        county_code: COUNTY.into(),
        policy_year: 2024,
        include_cleared,
    };
    assert_eq!(
        s.ledger()
            .list_top_up_flags(open(false))
            .await
            .expect("flags")
            .into_inner()
            .flags
            .len(),
        1
    );
    let rest = s
        .ledger()
        .record_top_up(top_up("6750.00"))
        .await
        .expect("top-up")
        .into_inner();
    assert_eq!(rest.cleared.len(), 1);
    assert_eq!(rest.pool.expect("pool").pool_yuan, "0.00");
    assert!(
        s.ledger()
            .list_top_up_flags(open(false))
            .await
            .expect("flags")
            .into_inner()
            .flags
            .is_empty()
    );
    let all = s
        .ledger()
        .list_top_up_flags(open(true))
        .await
        .expect("flags")
        .into_inner()
        .flags;
    assert_eq!(all[0].cleared_by_entry, rest.entry.expect("entry").entry_id);
    s.stop().await;
}

#[tokio::test]
async fn retries_return_the_first_outcome_and_change_nothing() {
    let s = TestServer::start(date(2024, 3, 1)).await;
    set_up_county(&s, 300_000, "1500000.00").await;
    let h = enroll(&s, pb::HouseholdType::UnstableEscaped, 11).await;
    let request = pb::SubmitClaimRequest {
        request_id: request_id(),
        household_id: h.clone(),
        relief_kind: pb::ReliefKind::Illness.into(),
        channel: pb::Channel::VillageApplication.into(),
        event_date: "2024-02-20".into(),
        event_reference: "admission-11".into(),
        claimed_cost_yuan: "100000.00".into(),
        description: String::new(),
        submitted_by: "village committee".into(),
    };
    let first = s
        .claims()
        .submit_claim(request.clone())
        .await
        .expect("first")
        .into_inner();
    let retry = s
        .claims()
        .submit_claim(request.clone())
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(first, retry, "a retry returns the first response");

    // The same id for a different request is refused.
    let mut changed = request.clone();
    changed.claimed_cost_yuan = "1.00".into();
    let reused = s
        .claims()
        .submit_claim(changed)
        .await
        .expect_err("reused id");
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&reused), ["request_id"]);

    // A new id for the same event is a duplicate open claim.
    let mut again = request.clone();
    again.request_id = request_id();
    assert_eq!(
        s.claims()
            .submit_claim(again)
            .await
            .expect_err("duplicate")
            .code(),
        Code::AlreadyExists
    );

    let claim_id = first.claim.expect("claim").claim_id;
    assign(&s, &claim_id).await;
    survey(&s, &claim_id, "3000.00", "100000.00").await;
    open_publicity(&s, &claim_id).await;

    // A business rejection is remembered: the same request id keeps its answer
    // even after the publicity period has ended.
    let close = pb::ClosePublicityRequest {
        request_id: request_id(),
        claim_id: claim_id.clone(),
        closed_by: "township".into(),
    };
    let refused = s
        .publicity()
        .close_publicity(close.clone())
        .await
        .expect_err("too early");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    s.set_date(date(2024, 3, 11));
    let replayed = s
        .publicity()
        .close_publicity(close)
        .await
        .expect_err("stored rejection");
    assert_eq!(
        (replayed.code(), replayed.message()),
        (refused.code(), refused.message())
    );
    assert!(
        replayed.get_details_precondition_failure().is_some(),
        "details survive the replay"
    );
    close_publicity(&s, &claim_id)
        .await
        .expect("a new request id closes it");

    s.payout()
        .file_claim(pb::FileClaimRequest {
            request_id: request_id(),
            claim_id: claim_id.clone(),
            filed_by: "county".into(),
            cross_check_note: "ok".into(),
        })
        .await
        .expect("file");
    let pay = pb::PayClaimRequest {
        request_id: request_id(),
        claim_id: claim_id.clone(),
        paid_by: "insurer".into(),
        bank_reference: "tx-1".into(),
    };
    let paid = s
        .payout()
        .pay_claim(pay.clone())
        .await
        .expect("pay")
        .into_inner();
    let paid_again = s
        .payout()
        .pay_claim(pay)
        .await
        .expect("retried pay")
        .into_inner();
    assert_eq!(paid, paid_again);
    // A new request to pay the same claim is refused: one payout per claim.
    let twice = pb::PayClaimRequest {
        request_id: request_id(),
        claim_id,
        paid_by: "insurer".into(),
        bank_reference: "tx-2".into(),
    };
    assert_eq!(
        s.payout()
            .pay_claim(twice)
            .await
            .expect_err("paid already")
            .code(),
        Code::FailedPrecondition
    );
    let p = pool(&s).await;
    assert_eq!((p.entries, p.relief_paid_yuan.as_str()), (2, "61750.00"));
    s.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_fields_and_changes_nothing() {
    let s = TestServer::start(date(2024, 3, 1)).await;
    set_up_county(&s, 300_000, "1500000.00").await;
    let h = enroll(&s, pb::HouseholdType::UnstableEscaped, 21).await;

    let bad = s
        .claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: "not-a-uuid".into(),
            household_id: h.clone(),
            relief_kind: 99,
            channel: pb::Channel::VillageApplication.into(),
            event_date: "2024-13-01".into(),
            event_reference: String::new(),
            claimed_cost_yuan: "12.345".into(),
            description: String::new(),
            submitted_by: "village".into(),
        })
        .await
        .expect_err("bad input");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        field_violations(&bad),
        [
            "request_id",
            "relief_kind",
            "event_date",
            "event_reference",
            "claimed_cost_yuan"
        ]
    );

    let future = s
        .claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: h.clone(),
            relief_kind: pb::ReliefKind::Illness.into(),
            channel: pb::Channel::VillageApplication.into(),
            event_date: "2024-03-02".into(),
            event_reference: "x".into(),
            claimed_cost_yuan: "1".into(),
            description: String::new(),
            submitted_by: "village".into(),
        })
        .await
        .expect_err("future event");
    assert_eq!(field_violations(&future), ["event_date"]);

    // A relief kind the county's policy does not have.
    let unknown_kind = s
        .claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: h.clone(),
            relief_kind: pb::ReliefKind::IncomeDrop.into(),
            channel: pb::Channel::VillageApplication.into(),
            event_date: "2024-02-01".into(),
            event_reference: "x".into(),
            claimed_cost_yuan: "1".into(),
            description: String::new(),
            submitted_by: "village".into(),
        })
        .await
        .expect_err("unknown kind");
    assert_eq!(field_violations(&unknown_kind), ["relief_kind"]);

    let mut id = resident_id("19800101", 5);
    id.replace_range(17.., if id.ends_with('0') { "1" } else { "0" });
    let bad_id = s
        .enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2024,
            village_code: "130427100201".into(),
            household_type: pb::HouseholdType::Marginal.into(),
            head: Some(pb::Person {
                id_number: id,
                name: "张三".into(),
                relation: String::new(),
            }),
            members: vec![],
            bank_account: "6228480000000001".into(),
        })
        .await
        .expect_err("bad check digit");
    assert_eq!(
        field_violations(&bad_id),
        ["village_code", "head.id_number"]
    );

    let missing = s
        .claims()
        .get_claim(pb::GetClaimRequest {
            claim_id: uuid::Uuid::new_v4().to_string(),
        })
        .await
        .expect_err("none");
    assert_eq!(missing.code(), Code::NotFound);

    // A transition the state machine does not allow: filing a claim just received.
    let claim = submit(
        &s,
        &h,
        pb::ReliefKind::Illness,
        pb::Channel::VillageApplication,
        "admission-21",
    )
    .await;
    let file = s
        .payout()
        .file_claim(pb::FileClaimRequest {
            request_id: request_id(),
            claim_id: claim.claim_id.clone(),
            filed_by: "county".into(),
            cross_check_note: "ok".into(),
        })
        .await
        .expect_err("not publicised");
    assert_eq!(file.code(), Code::FailedPrecondition);
    assert!(file.get_details_precondition_failure().is_some());
    // An advance on a claim that did not come in as an emergency.
    let advance = s
        .claims()
        .pay_emergency_advance(pb::PayEmergencyAdvanceRequest {
            request_id: request_id(),
            claim_id: claim.claim_id.clone(),
            amount_yuan: "100".into(),
            approved_by: "township".into(),
            reason: "r".into(),
        })
        .await
        .expect_err("not an emergency");
    assert_eq!(advance.code(), Code::FailedPrecondition);

    // Nothing above was recorded.
    let unchanged = s
        .claims()
        .get_claim(pb::GetClaimRequest {
            claim_id: claim.claim_id,
        })
        .await
        .expect("claim")
        .into_inner();
    assert_eq!(
        unchanged.claim.expect("claim").state,
        pb::ClaimState::Received as i32
    );
    let p = pool(&s).await;
    assert_eq!((p.entries, p.pool_yuan.as_str()), (1, "1500000.00"));

    // A used policy version is frozen.
    let county = fangpin_domain::identity::CountyCode::parse(COUNTY).expect("valid");
    let mut policy = policy_to_pb(
        &fangpin_domain::policy::Policy::example(county, 2024),
        1,
        false,
    );
    policy.publicity_days = 7;
    let frozen = s
        .policy()
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(policy),
        })
        .await
        .expect_err("frozen");
    assert_eq!(frozen.code(), Code::FailedPrecondition);
    s.stop().await;
}

#[tokio::test]
async fn answers_health_checks_and_serves_reflection() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let s = TestServer::start(date(2024, 3, 1)).await;
    let mut health = HealthClient::new(s.channel.clone());
    for service in [
        "fangpin.v1.ClaimService",
        "fangpin.v1.LedgerService",
        "fangpin.v1.SurveyService",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }
    let mut reflection = ServerReflectionClient::new(s.channel.clone());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses
        .message()
        .await
        .expect("stream")
        .expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in [
        "Policy",
        "Enrollment",
        "Claim",
        "Survey",
        "Publicity",
        "Payout",
        "Ledger",
    ] {
        assert!(
            names.contains(&format!("fangpin.v1.{service}Service")),
            "{service} in {names:?}"
        );
    }

    // The same through v1alpha, which grpcio's reflection client, Postman
    // and older grpcurl speak, down to a file's descriptor.
    {
        use tonic_reflection::pb::v1alpha::{
            ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
            server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
        };
        let mut old = ServerReflectionClient::new(s.channel.clone());
        let requests = [
            MessageRequest::ListServices(String::new()),
            MessageRequest::FileContainingSymbol("fangpin.v1.PublicityService".into()),
        ]
        .map(|m| ServerReflectionRequest {
            host: String::new(),
            message_request: Some(m),
        });
        let mut responses = old
            .server_reflection_info(tokio_stream::iter(requests))
            .await
            .expect("v1alpha reflection")
            .into_inner();
        let first = responses.message().await.expect("stream").expect("a list");
        let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
            panic!("expected a service list")
        };
        let old_names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert_eq!(old_names, names, "both versions list the same services");
        for version in ["v1", "v1alpha"] {
            let name = format!("grpc.reflection.{version}.ServerReflection");
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        let second = responses.message().await.expect("stream").expect("a file");
        let Some(MessageResponse::FileDescriptorResponse(files)) = second.message_response else {
            panic!("expected the file of PublicityService")
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }
    s.stop().await;
}

#[tokio::test]
async fn concurrent_payouts_of_one_claim_post_exactly_once() {
    let s = TestServer::start(date(2024, 3, 1)).await;
    set_up_county(&s, 300_000, "1500000.00").await;
    let claim_id = illness_claim_past_publicity(&s, 31).await;
    file(&s, &claim_id).await;

    // Eight clients retry one request while eight others each send their own.
    let retried = pb::PayClaimRequest {
        request_id: request_id(),
        claim_id: claim_id.clone(),
        paid_by: "insurer".into(),
        bank_reference: "tx-retried".into(),
    };
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..16 {
        let mut client = s.payout();
        let request = if i % 2 == 0 {
            retried.clone()
        } else {
            pb::PayClaimRequest {
                request_id: request_id(),
                bank_reference: format!("tx-{i}"),
                ..retried.clone()
            }
        };
        calls.spawn(async move { client.pay_claim(request).await.map(|r| r.into_inner()) });
    }
    let mut paid = Vec::new();
    while let Some(result) = calls.join_next().await {
        match result.expect("task") {
            Ok(response) => paid.push(response),
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    let entry_ids: std::collections::BTreeSet<String> = paid
        .iter()
        .map(|r| r.entry.as_ref().expect("entry").entry_id.clone())
        .collect();
    assert_eq!(entry_ids.len(), 1, "every success reports the one payout");
    let p = pool(&s).await;
    assert_eq!(
        (p.entries, p.relief_paid_yuan.as_str(), p.pool_yuan.as_str()),
        (2, "61750.00", "1438250.00")
    );
    s.stop().await;
}
