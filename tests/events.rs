//! One event, one payout: a household's event of one relief kind is paid at
//! most once, whatever channel or spelling the second claim comes with.

use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{self, VILLAGE};
use fangpin_tests::{TestServer, date, request_id};

fn resubmit(household_id: &str, reference: &str, channel: pb::Channel) -> pb::SubmitClaimRequest {
    pb::SubmitClaimRequest {
        request_id: request_id(),
        household_id: household_id.into(),
        relief_kind: pb::ReliefKind::Illness.into(),
        channel: channel.into(),
        event_date: "2026-02-01".into(),
        event_reference: reference.into(),
        claimed_cost_yuan: "100000.00".into(),
        description: String::new(),
        submitted_by: "village-committee".into(),
    }
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
async fn a_paid_event_cannot_be_claimed_again_in_any_spelling_or_channel() {
    let s = TestServer::start(date(2026, 3, 1)).await;
    flow::funded_county(&s, 2026, "1000000.00").await;
    let (paid, _) = flow::filed_claim(&s, 2026, VILLAGE, 1).await;
    flow::pay(&s, &paid).await;
    let household = claim(&s, &paid).await.household_id;

    // filed_claim's reference is "admission-1": the same event, retyped.
    for (reference, channel) in [
        ("admission-1", pb::Channel::VillageApplication),
        ("  ADMISSION-1 ", pb::Channel::VillageApplication),
        ("ａｄｍｉｓｓｉｏｎ－１", pb::Channel::Emergency),
        ("Admission-1", pb::Channel::DepartmentReferral),
    ] {
        let e = s
            .claims()
            .submit_claim(resubmit(&household, reference, channel))
            .await
            .expect_err("the event was paid");
        assert_eq!(e.code(), Code::AlreadyExists, "{reference:?}: {e:?}");
        assert!(e.message().contains(&paid), "names the paid claim: {e:?}");
        assert!(e.message().contains("(paid)"), "{e:?}");
    }
    // Another event of the same household is a new claim.
    s.claims()
        .submit_claim(resubmit(
            &household,
            "admission-2",
            pb::Channel::VillageApplication,
        ))
        .await
        .expect("a different event");
    s.stop().await;
}

#[tokio::test]
async fn only_a_rejected_claim_may_be_followed_by_a_new_one() {
    let s = TestServer::start(date(2026, 3, 1)).await;
    flow::funded_county(&s, 2026, "1000000.00").await;
    let (filed, _) = flow::filed_claim(&s, 2026, VILLAGE, 1).await;
    let household = claim(&s, &filed).await.household_id;
    let open = s
        .claims()
        .submit_claim(resubmit(
            &household,
            "fire-7",
            pb::Channel::VillageApplication,
        ))
        .await
        .expect("first claim for fire-7")
        .into_inner()
        .claim
        .expect("claim");
    let e = s
        .claims()
        .submit_claim(resubmit(
            &household,
            "FIRE-7",
            pb::Channel::VillageApplication,
        ))
        .await
        .expect_err("open");
    assert_eq!(e.code(), Code::AlreadyExists);
    assert!(e.message().contains("(received)"), "{e:?}");
    // The survey rejects it; then the household may claim the event again.
    s.survey()
        .assign_survey(pb::AssignSurveyRequest {
            request_id: request_id(),
            claim_id: open.claim_id.clone(),
            surveyor: flow::SURVEYOR.into(),
            insurer: flow::INSURER.into(),
            assigned_by: "county".into(),
        })
        .await
        .expect("assign");
    s.survey()
        .recommend(pb::RecommendRequest {
            request_id: request_id(),
            claim_id: open.claim_id.clone(),
            surveyor: flow::SURVEYOR.into(),
            approve: false,
            reason: "income above the line".into(),
        })
        .await
        .expect("reject");
    s.claims()
        .submit_claim(resubmit(
            &household,
            "fire-7",
            pb::Channel::VillageApplication,
        ))
        .await
        .expect("after a rejection the event may be claimed again");
    s.stop().await;
}
