//! Input that real registers bring: birth dates, relations, policy dates,
//! invisible characters in display text, rare characters, and messages over
//! the size limit. Each refusal is INVALID_ARGUMENT naming the field (or
//! RESOURCE_EXHAUSTED for size) and records nothing.

use fangpin_domain::identity::{CountyCode, ResidentId};
use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_server::write_path::convert::policy_to_pb;
use fangpin_tests::flow::{self, COUNTY, VILLAGE};
use fangpin_tests::{TestServer, date, request_id, resident_id};
use tonic_types::StatusExt;

fn enroll(head: pb::Person, members: Vec<pb::Person>) -> pb::EnrollHouseholdRequest {
    pb::EnrollHouseholdRequest {
        request_id: request_id(),
        county_code: COUNTY.into(),
        policy_year: 2026,
        village_code: VILLAGE.into(),
        household_type: pb::HouseholdType::Marginal.into(),
        head: Some(head),
        members,
        bank_account: "6217000100000001".into(),
    }
}

fn person(id: &str, name: &str, relation: &str) -> pb::Person {
    pb::Person {
        id_number: id.into(),
        name: name.into(),
        relation: relation.into(),
    }
}

fn fields(e: &fangpin_proto::tonic::Status) -> Vec<String> {
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    e.get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn registers_bring_bad_dates_relations_and_invisible_characters() {
    let s = TestServer::start(date(2026, 3, 1)).await;
    flow::funded_county(&s, 2026, "1000.00").await;
    let head = resident_id("19650101", 1);
    let mut enrollment = s.enrollment();

    // Born after the enrolment date.
    let unborn = ResidentId::from_first17("13042620260401001")
        .expect("valid")
        .as_str()
        .to_string();
    let e = enrollment
        .enroll_household(enroll(
            person(&head, "张三", ""),
            vec![person(&unborn, "张小", "child")],
        ))
        .await
        .expect_err("born in April, enrolled in March");
    assert_eq!(fields(&e), ["members[0].id_number"]);

    // A relation outside the closed set, and a second head.
    let child = resident_id("20100101", 2);
    let e = enrollment
        .enroll_household(enroll(
            person(&head, "张三", ""),
            vec![person(&child, "张四", "boss")],
        ))
        .await
        .expect_err("unknown relation");
    assert_eq!(fields(&e), ["members[0].relation"]);
    let e = enrollment
        .enroll_household(enroll(
            person(&head, "张三", ""),
            vec![person(&child, "张四", "户主")],
        ))
        .await
        .expect_err("two heads");
    assert_eq!(fields(&e), ["members[0].relation"]);

    // A bidi override in a name printed on the village notice.
    let e = enrollment
        .enroll_household(enroll(person(&head, "张\u{202E}三", ""), vec![]))
        .await
        .expect_err("bidi override");
    assert_eq!(fields(&e), ["head.name"]);
    assert!(e.message().contains("U+202E"), "{e:?}");

    // Nothing of that was recorded; the same people enrol when the data is right,
    // with a rare character (生僻字) and the register's own relation word.
    let ok = enrollment
        .enroll_household(enroll(
            person(&head, "𠀀𪚥", "户主"),
            vec![person(&child, "张四", "子女")],
        ))
        .await
        .expect("rare characters and Chinese relations pass")
        .into_inner();
    assert_eq!(ok.head_name, "𠀀𪚥");
    assert_eq!(ok.persons, 2);

    // A 2027 policy whose dates lie in 2026.
    let county = CountyCode::parse(COUNTY).expect("valid");
    let mut policy = fangpin_domain::policy::Policy::example(county, 2027);
    policy.starts_on = date(2026, 1, 1);
    policy.ends_on = date(2026, 12, 31);
    let e = s
        .policy()
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(policy_to_pb(&policy, 0, false)),
        })
        .await
        .expect_err("dates outside the policy year");
    let f = fields(&e);
    assert!(
        f.iter().any(|f| f.ends_with("starts_on")) && f.iter().any(|f| f.ends_with("ends_on")),
        "{f:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_resource_exhausted() {
    let s = TestServer::start(date(2026, 3, 1)).await;
    flow::funded_county(&s, 2026, "1000.00").await;
    let huge = "x".repeat(5 * 1024 * 1024);
    let e = s
        .claims()
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: uuid::Uuid::new_v4().to_string(),
            relief_kind: pb::ReliefKind::Illness.into(),
            channel: pb::Channel::VillageApplication.into(),
            event_date: "2026-02-01".into(),
            event_reference: "r".into(),
            claimed_cost_yuan: "1.00".into(),
            description: huge,
            submitted_by: "village".into(),
        })
        .await
        .expect_err("over 4 MiB");
    assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
    // The server is still serving.
    assert_eq!(flow::pool(&s, 2026).await.pool_yuan, "1000.00");
    s.stop().await;
}
