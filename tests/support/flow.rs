//! Steps of the workflow as one call each, for tests that need many claims.

use fangpin_proto::v1 as pb;
use fangpin_server::write_path::convert::policy_to_pb;

use crate::{TestServer, date, request_id, resident_id};

pub const COUNTY: &str = "130426";
pub const VILLAGE: &str = "130426100201";
pub const OTHER_VILLAGE: &str = "130426203001";
pub const INSURER: &str = "中国人寿涉县支公司";
pub const SURVEYOR: &str = "surveyor-li";

/// Registers `COUNTY` (20,000 rural people, insured by `INSURER`).
pub async fn register_county(s: &TestServer) {
    register_county_of(s, 20_000).await;
}

/// Registers `COUNTY` with `rural_population` (the pool is 10% of it).
pub async fn register_county_of(s: &TestServer, rural_population: u64) {
    s.enrollment()
        .register_county(pb::RegisterCountyRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            name: "涉县".into(),
            rural_population,
            insurer: INSURER.into(),
        })
        .await
        .expect("county");
}

/// `COUNTY` registered, with the example policy for `year` and `premium_yuan`
/// in its pool: the start of most tests.
pub async fn funded_county(s: &TestServer, year: i32, premium_yuan: &str) {
    register_county(s).await;
    put_policy(s, year).await;
    premium(s, year, premium_yuan).await.expect("premium");
}

pub async fn put_policy(s: &TestServer, year: i32) {
    let county = fangpin_domain::identity::CountyCode::parse(COUNTY).expect("valid");
    let policy = policy_to_pb(
        &fangpin_domain::policy::Policy::example(county, year),
        0,
        false,
    );
    s.policy()
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(policy),
        })
        .await
        .expect("policy");
}

pub async fn premium(
    s: &TestServer,
    year: i32,
    amount: &str,
) -> Result<pb::PostingResponse, fangpin_proto::tonic::Status> {
    premium_with(
        s,
        pb::RecordPremiumRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: year,
            amount_yuan: amount.into(),
            reference: format!("premium {year}"),
        },
    )
    .await
}

/// RecordPremium with a request the test made (its own request id, to retry).
pub async fn premium_with(
    s: &TestServer,
    request: pb::RecordPremiumRequest,
) -> Result<pb::PostingResponse, fangpin_proto::tonic::Status> {
    s.enrollment()
        .record_premium(request)
        .await
        .map(|r| r.into_inner())
}

/// Takes an illness claim of 100,000 yuan (relief 61,750.00) for a new
/// household of `village` up to filing; returns the claim id and the account.
pub async fn filed_claim(
    s: &TestServer,
    year: i32,
    village: &str,
    sequence: u32,
) -> (String, String) {
    filed_claim_costing(s, year, village, sequence, "100000.00").await
}

/// As `filed_claim`, for an illness cost of `cost_yuan`, surveyed as claimed.
pub async fn filed_claim_costing(
    s: &TestServer,
    year: i32,
    village: &str,
    sequence: u32,
    cost_yuan: &str,
) -> (String, String) {
    s.set_date(date(year, 3, 1));
    let account = format!("62170001{sequence:08}");
    let household = s
        .enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: year,
            village_code: village.into(),
            household_type: pb::HouseholdType::UnstableEscaped.into(),
            head: Some(pb::Person {
                id_number: resident_id("19650101", sequence),
                name: format!("户主{sequence}"),
                relation: String::new(),
            }),
            members: vec![],
            bank_account: account.clone(),
        })
        .await
        .expect("enroll")
        .into_inner()
        .household_id;
    let claim_id = s
        .claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: household,
            relief_kind: pb::ReliefKind::Illness.into(),
            channel: pb::Channel::DepartmentReferral.into(),
            event_date: format!("{year}-02-01"),
            event_reference: format!("admission-{sequence}"),
            claimed_cost_yuan: cost_yuan.into(),
            description: String::new(),
            submitted_by: "county office".into(),
        })
        .await
        .expect("submit")
        .into_inner()
        .claim
        .expect("claim")
        .claim_id;
    let id = || claim_id.clone();
    s.survey()
        .assign_survey(pb::AssignSurveyRequest {
            request_id: request_id(),
            claim_id: id(),
            surveyor: SURVEYOR.into(),
            insurer: INSURER.into(),
            assigned_by: "county".into(),
        })
        .await
        .expect("assign");
    s.survey()
        .record_findings(pb::RecordFindingsRequest {
            request_id: request_id(),
            claim_id: id(),
            surveyor: SURVEYOR.into(),
            verified_income_per_capita_yuan: "3000.00".into(),
            verified_cost_yuan: cost_yuan.into(),
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
            claim_id: id(),
            surveyor: SURVEYOR.into(),
            approve: true,
            reason: "eligible".into(),
        })
        .await
        .expect("recommend");
    s.publicity()
        .open_publicity(pb::OpenPublicityRequest {
            request_id: request_id(),
            claim_id: id(),
            opened_by: "village".into(),
        })
        .await
        .expect("open");
    s.set_date(date(year, 3, 11));
    s.publicity()
        .close_publicity(pb::ClosePublicityRequest {
            request_id: request_id(),
            claim_id: id(),
            closed_by: "township".into(),
        })
        .await
        .expect("close");
    s.payout()
        .file_claim(pb::FileClaimRequest {
            request_id: request_id(),
            claim_id: id(),
            filed_by: "county".into(),
            cross_check_note: "ok".into(),
        })
        .await
        .expect("file");
    (claim_id, account)
}

pub async fn pay(s: &TestServer, claim_id: &str) -> pb::PayClaimResponse {
    s.payout()
        .pay_claim(pb::PayClaimRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            paid_by: "insurer".into(),
            bank_reference: format!("TX-{claim_id}"),
        })
        .await
        .expect("pay")
        .into_inner()
}

pub async fn pool(s: &TestServer, year: i32) -> pb::PoolBalance {
    s.ledger()
        .get_pool_balance(pb::PoolRequest {
            county_code: COUNTY.into(),
            policy_year: year,
        })
        .await
        .expect("pool")
        .into_inner()
}

pub async fn close(
    s: &TestServer,
    year: i32,
) -> Result<pb::CloseYearResponse, fangpin_proto::tonic::Status> {
    s.ledger()
        .close_year(pb::CloseYearRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: year,
            closed_by: "finance bureau".into(),
        })
        .await
        .map(|r| r.into_inner())
}

pub async fn top_up(s: &TestServer, year: i32, amount: &str) -> pb::TopUpResponse {
    s.ledger()
        .record_top_up(pb::RecordTopUpRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: year,
            amount_yuan: amount.into(),
            reference: "county finance".into(),
        })
        .await
        .expect("top-up")
        .into_inner()
}

pub async fn reconciliation(s: &TestServer, year: i32) -> pb::Reconciliation {
    s.ledger()
        .get_reconciliation(pb::PoolRequest {
            county_code: COUNTY.into(),
            policy_year: year,
        })
        .await
        .expect("reconciliation")
        .into_inner()
}
