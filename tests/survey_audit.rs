//! Surveys that can be audited: every set of findings is kept and shown in
//! the history, an objection requires new findings before a
//! recommendation, and the assessment carries its computation.

use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{self, INSURER, SURVEYOR};
use fangpin_tests::{TestServer, date, request_id, resident_id};
use tonic_types::StatusExt;

async fn findings(s: &TestServer, claim_id: &str, cost: &str) -> pb::Claim {
    s.survey()
        .record_findings(pb::RecordFindingsRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            surveyor: SURVEYOR.into(),
            verified_income_per_capita_yuan: "3000.00".into(),
            verified_cost_yuan: cost.into(),
            notes: String::new(),
            evidence_refs: vec![],
            prior_incomes_per_capita_yuan: Vec::new(),
            income_evidence_refs: Vec::new(),
        })
        .await
        .expect("findings")
        .into_inner()
        .claim
        .expect("claim")
}

async fn recommend(
    s: &TestServer,
    claim_id: &str,
) -> Result<pb::Claim, fangpin_proto::tonic::Status> {
    s.survey()
        .recommend(pb::RecommendRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            surveyor: SURVEYOR.into(),
            approve: true,
            reason: "eligible".into(),
        })
        .await
        .map(|r| r.into_inner().claim.expect("claim"))
}

#[tokio::test]
async fn an_objection_needs_new_findings_and_both_sets_stay_in_the_history() {
    let s = TestServer::start(date(2026, 3, 1)).await;
    flow::funded_county(&s, 2026, "1000000.00").await;
    let household = s
        .enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: flow::COUNTY.into(),
            policy_year: 2026,
            village_code: flow::VILLAGE.into(),
            household_type: pb::HouseholdType::UnstableEscaped.into(),
            head: Some(pb::Person {
                id_number: resident_id("19650101", 1),
                name: "户主".into(),
                relation: String::new(),
            }),
            members: vec![],
            bank_account: "6217000100000001".into(),
        })
        .await
        .expect("enrol")
        .into_inner()
        .household_id;
    let claim = s
        .claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: household,
            relief_kind: pb::ReliefKind::Illness.into(),
            channel: pb::Channel::VillageApplication.into(),
            event_date: "2026-02-01".into(),
            event_reference: "住院号-1".into(),
            claimed_cost_yuan: "100000.00".into(),
            description: String::new(),
            submitted_by: "village-committee".into(),
        })
        .await
        .expect("submit")
        .into_inner()
        .claim
        .expect("claim");
    let id = claim.claim_id.clone();
    s.survey()
        .assign_survey(pb::AssignSurveyRequest {
            request_id: request_id(),
            claim_id: id.clone(),
            surveyor: SURVEYOR.into(),
            insurer: INSURER.into(),
            assigned_by: "county".into(),
        })
        .await
        .expect("assign");
    let first = findings(&s, &id, "100000.00").await;
    let a = first.assessment.expect("assessment");
    assert_eq!((a.findings_seq, a.amount_yuan.as_str()), (1, "61750.00"));
    // The computation on the wire: 95,000 above 5,000 in three bands.
    assert_eq!(a.cost_above_threshold_yuan, "95000.00");
    let bands: Vec<(&str, &str, &str, &str)> = a
        .bands
        .iter()
        .map(|b| {
            (
                b.from_yuan.as_str(),
                b.to_yuan.as_str(),
                b.rate.as_str(),
                b.share_fen.as_str(),
            )
        })
        .collect();
    assert_eq!(
        bands,
        [
            ("0.00", "30000.00", "0.6", "1800000"),
            ("30000.00", "80000.00", "0.65", "3250000"),
            ("80000.00", "95000.00", "0.75", "1125000"),
        ]
    );
    assert_eq!(
        (a.banded_yuan.as_str(), a.capped_at_yuan.as_str()),
        ("61750.00", "")
    );
    assert_eq!(a.comparison, "at_least");
    assert_eq!(a.policy_version, first.policy_version);

    recommend(&s, &id).await.expect("recommend");
    s.publicity()
        .open_publicity(pb::OpenPublicityRequest {
            request_id: request_id(),
            claim_id: id.clone(),
            opened_by: "village".into(),
        })
        .await
        .expect("open");
    s.publicity()
        .raise_objection(pb::RaiseObjectionRequest {
            request_id: request_id(),
            claim_id: id.clone(),
            objector: "村民代表".into(),
            reason: "另有经营收入".into(),
        })
        .await
        .expect("objection");
    // The old findings do not carry a recommendation after an objection.
    let e = recommend(&s, &id).await.expect_err("new findings first");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let kind = e
        .get_details_precondition_failure()
        .and_then(|p| p.violations.first().map(|v| v.r#type.clone()));
    assert_eq!(kind.as_deref(), Some("REVERIFICATION"));

    let second = findings(&s, &id, "60000.00").await;
    let b = second.assessment.expect("assessment");
    assert_eq!((b.findings_seq, b.amount_yuan.as_str()), (2, "34250.00"));
    recommend(&s, &id).await.expect("after re-verification");

    let history = s
        .claims()
        .get_claim_history(pb::GetClaimRequest {
            claim_id: id.clone(),
        })
        .await
        .expect("history")
        .into_inner()
        .transitions;
    let sets: Vec<&pb::Transition> = history
        .iter()
        .filter(|t| t.event == "record_findings")
        .collect();
    assert_eq!(sets.len(), 2, "{history:#?}");
    assert!(sets[0].reason.contains("findings #1") && sets[0].reason.contains("61750.00"));
    assert!(sets[1].reason.contains("findings #2") && sets[1].reason.contains("34250.00"));
    assert!(sets.iter().all(|t| t.actor == SURVEYOR && !t.at.is_empty()));
    s.stop().await;
}

#[tokio::test]
async fn assign_survey_hands_a_claim_on_without_moving_its_deadline() {
    let s = TestServer::start(date(2026, 3, 1)).await;
    flow::funded_county(&s, 2026, "1000000.00").await;
    let (id, _) = flow::filed_claim(&s, 2026, flow::VILLAGE, 1).await;
    let household = s
        .claims()
        .get_claim(pb::GetClaimRequest { claim_id: id })
        .await
        .expect("claim")
        .into_inner()
        .claim
        .expect("claim")
        .household_id;
    s.set_date(date(2026, 4, 1));
    let claim = s
        .claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: household,
            relief_kind: pb::ReliefKind::Accident.into(),
            channel: pb::Channel::VillageApplication.into(),
            event_date: "2026-03-30".into(),
            event_reference: "火灾-1".into(),
            claimed_cost_yuan: "30000.00".into(),
            description: String::new(),
            submitted_by: "village-committee".into(),
        })
        .await
        .expect("submit")
        .into_inner()
        .claim
        .expect("claim");
    let assign = |surveyor: &str| pb::AssignSurveyRequest {
        request_id: request_id(),
        claim_id: claim.claim_id.clone(),
        surveyor: surveyor.into(),
        insurer: INSURER.into(),
        assigned_by: "county".into(),
    };
    let first = s
        .survey()
        .assign_survey(assign(SURVEYOR))
        .await
        .expect("assign")
        .into_inner()
        .claim
        .expect("claim");
    s.set_date(date(2026, 4, 8));
    let handed_on = s
        .survey()
        .assign_survey(assign("surveyor-wang"))
        .await
        .expect("hand on while under survey")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(handed_on.surveyor, "surveyor-wang");
    assert_eq!(
        first.survey_deadline, claim.survey_deadline,
        "fixed at intake"
    );
    assert_eq!(
        handed_on.survey_deadline, claim.survey_deadline,
        "handing on does not move it"
    );
    s.stop().await;
}
