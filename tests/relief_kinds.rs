//! Hebi's six relief kinds through gRPC, on both databases.
//!
//! Civil-affairs, human-resources (employment) and education feeds go in; a
//! screening run under `Policy::example_six_kinds` must find exactly the
//! candidates worked out by hand below: two income drops (one verified by
//! civil affairs, one estimated from the income lost), one school entry
//! whose first-year costs are not counted again under schooling, and one
//! dibao household screened on its own terms. The dibao household and a
//! verified income drop are then surveyed and paid, and their assessments
//! name the status record and the drop arithmetic.

use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{COUNTY, INSURER, SURVEYOR, VILLAGE, premium, register_county};
use fangpin_tests::{TestServer, date, request_id, resident_id};
use sha2::{Digest, Sha256};
use tonic_types::StatusExt;

async fn import(
    s: &TestServer,
    kind: pb::FeedKind,
    name: &str,
    lines: &[String],
) -> pb::FeedImport {
    let bytes = (lines.join("\n") + "\n").into_bytes();
    let header = pb::FeedHeader {
        request_id: request_id(),
        county_code: COUNTY.into(),
        policy_year: 2024,
        kind: kind.into(),
        encoding: pb::FeedEncoding::Utf8.into(),
        file_name: name.into(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        size_bytes: bytes.len() as u64,
    };
    let mut parts = vec![pb::ImportFeedRequest {
        part: Some(pb::import_feed_request::Part::Header(header)),
    }];
    for piece in bytes.chunks(11) {
        parts.push(pb::ImportFeedRequest {
            part: Some(pb::import_feed_request::Part::Data(piece.to_vec().into())),
        });
    }
    let import = s
        .screening()
        .import_feed(tokio_stream::iter(parts))
        .await
        .expect("import")
        .into_inner();
    assert_eq!(import.rows_rejected, 0, "{name}: {:?}", import.errors);
    import
}

async fn enroll(s: &TestServer, kind: pb::HouseholdType, persons: &[String], n: u32) -> String {
    let person = |id: &String, i: usize| pb::Person {
        id_number: id.clone(),
        name: format!("成员{n}-{i}"),
        relation: if i == 0 {
            String::new()
        } else {
            "child".into()
        },
    };
    s.enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2024,
            village_code: VILLAGE.into(),
            household_type: kind.into(),
            head: Some(person(&persons[0], 0)),
            members: persons[1..]
                .iter()
                .enumerate()
                .map(|(i, p)| person(p, i + 1))
                .collect(),
            bank_account: format!("62170009{n:08}"),
        })
        .await
        .expect("enrol")
        .into_inner()
        .household_id
}

/// Survey, publicity, filing and payout of one claim with these findings;
/// returns the assessment and what was paid.
async fn survey_and_pay(
    s: &TestServer,
    claim_id: &str,
    findings: pb::RecordFindingsRequest,
) -> (pb::Assessment, String) {
    s.set_date(date(2024, 12, 10));
    s.survey()
        .assign_survey(pb::AssignSurveyRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            surveyor: SURVEYOR.into(),
            insurer: INSURER.into(),
            assigned_by: "county".into(),
        })
        .await
        .expect("assign");
    let claim = s
        .survey()
        .record_findings(findings)
        .await
        .expect("findings")
        .into_inner()
        .claim
        .expect("claim");
    let assessment = claim.assessment.expect("assessment");
    s.survey()
        .recommend(pb::RecommendRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            surveyor: SURVEYOR.into(),
            approve: true,
            reason: "eligible".into(),
        })
        .await
        .expect("recommend");
    s.publicity()
        .open_publicity(pb::OpenPublicityRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            opened_by: "village".into(),
        })
        .await
        .expect("open");
    s.set_date(date(2024, 12, 21));
    s.publicity()
        .close_publicity(pb::ClosePublicityRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            closed_by: "township".into(),
        })
        .await
        .expect("close");
    s.payout()
        .file_claim(pb::FileClaimRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            filed_by: "county".into(),
            cross_check_note: "ok".into(),
        })
        .await
        .expect("file");
    let paid = s
        .payout()
        .pay_claim(pb::PayClaimRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            paid_by: "county finance".into(),
            bank_reference: format!("BANK-{claim_id}"),
        })
        .await
        .expect("pay")
        .into_inner();
    (assessment, paid.claim.expect("claim").payout_yuan)
}

fn findings(claim_id: &str, income: &str, cost: &str) -> pb::RecordFindingsRequest {
    pb::RecordFindingsRequest {
        request_id: request_id(),
        claim_id: claim_id.into(),
        surveyor: SURVEYOR.into(),
        verified_income_per_capita_yuan: income.into(),
        verified_cost_yuan: cost.into(),
        notes: String::new(),
        evidence_refs: vec![],
        prior_incomes_per_capita_yuan: Vec::new(),
        income_evidence_refs: Vec::new(),
    }
}

#[tokio::test]
async fn six_kinds_screened_and_relieved_on_their_own_rules() {
    let s = TestServer::start(date(2024, 12, 10)).await;
    register_county(&s).await;
    let county = fangpin_domain::identity::CountyCode::parse(COUNTY).expect("valid");
    let policy = fangpin_server::write_path::convert::policy_to_pb(
        &fangpin_domain::policy::Policy::example_six_kinds(county, 2024),
        0,
        false,
    );
    // Malformed six-kind terms are refused field by field, and nothing is
    // stored.
    let mut bad = policy.clone();
    let drop_rule = bad
        .rules
        .iter()
        .position(|r| r.income_drop.is_some())
        .expect("an income-drop rule");
    let terms = bad.rules[drop_rule].income_drop.as_mut().expect("terms");
    terms.baseline = 0;
    terms.min_drop_share = "30%".into();
    bad.rules[0].income_drop = bad.rules[drop_rule].income_drop.clone();
    bad.status_terms[0].status = pb::CivilStatus::None.into();
    bad.status_terms.push(pb::StatusTerm {
        status: pb::CivilStatus::Tekun.into(),
        relief_kind: pb::ReliefKind::IncomeDrop.into(),
        threshold_yuan: "-1".into(),
        bands: vec![],
        waive_income_condition: true,
    });
    let refused = s
        .policy()
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(bad),
        })
        .await
        .expect_err("malformed terms");
    assert_eq!(refused.code(), fangpin_proto::tonic::Code::InvalidArgument);
    let mut fields: Vec<String> = refused
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    fields.sort();
    let mut want = vec![
        "policy.rules[0].income_drop.baseline".to_string(),
        "policy.rules[0].income_drop.min_drop_share".to_string(),
        format!("policy.rules[{drop_rule}].income_drop.baseline"),
        format!("policy.rules[{drop_rule}].income_drop.min_drop_share"),
        "policy.status_terms[0].status".to_string(),
        "policy.status_terms[1].threshold_yuan".to_string(),
    ];
    want.sort();
    assert_eq!(fields, want);
    // Well-formed but wrong: terms on an illness rule, an income-drop
    // threshold, a waived line for income drop.
    let mut wrong = policy.clone();
    wrong.rules[0].income_drop = wrong.rules[drop_rule].income_drop.clone();
    wrong.rules[drop_rule].threshold_yuan = "100.00".into();
    wrong.status_terms.push(pb::StatusTerm {
        status: pb::CivilStatus::Tekun.into(),
        relief_kind: pb::ReliefKind::IncomeDrop.into(),
        threshold_yuan: String::new(),
        bands: vec![],
        waive_income_condition: true,
    });
    let refused = s
        .policy()
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(wrong),
        })
        .await
        .expect_err("wrong terms");
    let fields: Vec<String> = refused
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "policy.rules[0].income_drop".to_string(),
            format!("policy.rules[{drop_rule}].threshold"),
            "policy.status_terms[1].waive_income_condition".to_string(),
        ]
    );
    let none = s
        .policy()
        .get_policy(pb::GetPolicyRequest {
            county_code: COUNTY.into(),
            policy_year: 2024,
            version: 0,
        })
        .await
        .expect_err("nothing was stored");
    assert_eq!(none.code(), fangpin_proto::tonic::Code::NotFound);

    s.policy()
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(policy.clone()),
        })
        .await
        .expect("policy");
    // The policy reads back as it was put: the six kinds' terms survive the
    // store's JSON.
    let stored = s
        .policy()
        .get_policy(pb::GetPolicyRequest {
            county_code: COUNTY.into(),
            policy_year: 2024,
            version: 0,
        })
        .await
        .expect("policy")
        .into_inner()
        .policy
        .expect("policy");
    assert_eq!(stored.rules, policy.rules);
    assert_eq!(stored.status_terms, policy.status_terms);
    assert_eq!(
        stored.entry_year_costs,
        pb::EntryYearCosts::EntryFirst as i32
    );
    premium(&s, 2024, "100000.00").await.expect("premium");

    let id = |n: u32| resident_id("19800101", n);
    use pb::HouseholdType::{Marginal, UnstableEscaped};
    // H1: 3 members; civil affairs verified 9,000 in 2023 and 3,000 in 2024.
    let h1 = enroll(&s, Marginal, &[id(1), id(2), id(3)], 1).await;
    // H2: 2 members; 5,000 verified in December 2023, then a member lost
    // a job paying 6,000 a year (human resources, April 2024).
    let h2 = enroll(&s, UnstableEscaped, &[id(4), id(5)], 2).await;
    // H3: one child entering senior high school, one staying in school.
    let h3 = enroll(&s, Marginal, &[id(6), id(7)], 3).await;
    // H4: a dibao household above the income line, 4,000 in hospital.
    let h4 = enroll(&s, Marginal, &[id(8)], 4).await;
    // H5: 8,000 -> 7,000 is a 12.5% drop: under the qualifying 30%.
    let h5 = enroll(&s, Marginal, &[id(9)], 5).await;

    let civil = import(
        &s,
        pb::FeedKind::CivilAffairs,
        "民政2024.csv",
        &[
            "身份证号,救助类别,家庭人均可支配收入,核对日期".to_string(),
            format!("{},无,9000.00,2023-06-30", id(1)),
            format!("{},无,3000.00,2024-06-30", id(2)),
            format!("{},无,5000.00,2023-12-20", id(4)),
            format!("{},低保,7000.00,2024-03-01", id(8)),
            format!("{},无,8000.00,2023-05-01", id(9)),
            format!("{},无,7000.00,2024-05-01", id(9)),
        ],
    )
    .await;
    import(
        &s,
        pb::FeedKind::Employment,
        "人社2024.csv",
        &[
            "身份证号,登记日期,事由,减少年收入".to_string(),
            format!("{},2024-04-02,失业登记,6000.00", id(4)),
        ],
    )
    .await;
    import(
        &s,
        pb::FeedKind::Education,
        "教育2024.csv",
        &[
            "学生身份证号,学年,学费,住宿费,教材费,入学学段".to_string(),
            format!("{},2024-2025,4000,2000,500,高中", id(6)),
            format!("{},2024-2025,2000,800,200,", id(7)),
        ],
    )
    .await;
    import(
        &s,
        pb::FeedKind::Medical,
        "医保2024.csv",
        &[
            "身份证号,结算日期,是否住院,医疗总费用,报销金额,个人自付".to_string(),
            format!("{},2024-05-10,1,10000,6000,4000", id(8)),
        ],
    )
    .await;

    let run = s
        .screening()
        .run_screening(pb::RunScreeningRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            as_of: "2024-12-10".into(),
        })
        .await
        .expect("run")
        .into_inner();
    let listed = s
        .screening()
        .list_screening_candidates(pb::ListScreeningCandidatesRequest {
            run_id: run.run_id.clone(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("candidates")
        .into_inner()
        .candidates;
    let mut got: Vec<(String, i32, String, String, String, String)> = listed
        .iter()
        .map(|c| {
            (
                c.household_id.clone(),
                c.relief_kind,
                c.cost_yuan.clone(),
                c.threshold_yuan.clone(),
                c.over_by_yuan.clone(),
                c.verified_income_yuan.clone(),
            )
        })
        .collect();
    got.sort();
    // By hand:
    // - H1: drop 9,000 - 3,000 = 6,000 >= 30% x 9,000 = 2,700, over by 3,300;
    //   3,000 < line 6,000.
    // - H2: 6,000 lost / 2 members = 3,000 per capita, 5,000 - 3,000 =
    //   2,000 estimated; drop 3,000 >= 30% x 5,000 = 1,500, over by 1,500.
    // - H3: 4,000 + 2,000 + 500 = 6,500 > 5,000 (school entry), over by
    //   1,500. Schooling keeps the sibling's 3,000 only (< 8,000); counting
    //   the first year again would have made 9,500 > 8,000.
    // - H4: dibao terms: 4,000 > threshold 3,000... at least 3,000, over by
    //   1,000, the income condition waived (7,000 >= 6,000).
    // - H5: 12.5% is under 30%: nothing.
    use pb::ReliefKind::{Illness, IncomeDrop, SchoolEntry};
    let mut want = vec![
        (
            h1.clone(),
            IncomeDrop as i32,
            "6000.00",
            "2700.00",
            "3300.00",
            "3000.00",
        ),
        (
            h2.clone(),
            IncomeDrop as i32,
            "3000.00",
            "1500.00",
            "1500.00",
            "2000.00",
        ),
        (
            h3.clone(),
            SchoolEntry as i32,
            "6500.00",
            "5000.00",
            "1500.00",
            "",
        ),
        (
            h4.clone(),
            Illness as i32,
            "4000.00",
            "3000.00",
            "1000.00",
            "7000.00",
        ),
    ]
    .into_iter()
    .map(|(h, k, c, t, o, i)| {
        (
            h,
            k,
            c.to_string(),
            t.to_string(),
            o.to_string(),
            i.to_string(),
        )
    })
    .collect::<Vec<_>>();
    want.sort();
    assert_eq!(got, want, "{listed:#?}");
    assert!(!got.iter().any(|c| c.0 == h5));
    let dibao_reason = &listed
        .iter()
        .find(|c| c.household_id == h4)
        .expect("h4")
        .reason;
    assert!(
        dibao_reason.contains("dibao terms") && dibao_reason.contains("waived"),
        "{dibao_reason}"
    );

    let made = s
        .screening()
        .create_screening_claims(pb::CreateScreeningClaimsRequest {
            request_id: request_id(),
            run_id: run.run_id.clone(),
            submitted_by: "县防贫中心".into(),
        })
        .await
        .expect("claims")
        .into_inner();
    assert_eq!(made.created, 4);
    let claims = s
        .screening()
        .list_screening_candidates(pb::ListScreeningCandidatesRequest {
            run_id: run.run_id.clone(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .expect("candidates")
        .into_inner()
        .candidates;
    let claim_of = |h: &str| {
        claims
            .iter()
            .find(|c| c.household_id == h)
            .expect("candidate")
            .claim_id
            .clone()
    };

    // The dibao household, relieved on its own terms: threshold 3,000,
    // bands from 70%, the income condition waived. 1,000 x 70% = 700.00.
    let dibao_claim = claim_of(&h4);
    let (a, paid) = survey_and_pay(
        &s,
        &dibao_claim,
        findings(&dibao_claim, "7000.00", "4000.00"),
    )
    .await;
    assert!(a.eligible && !a.income_met, "{:?}", a.explanation);
    assert_eq!(
        (a.threshold_yuan.as_str(), a.amount_yuan.as_str()),
        ("3000.00", "700.00")
    );
    assert_eq!(paid, "700.00");
    let status = a.status.expect("the status record");
    assert_eq!(status.status, pb::CivilStatus::Dibao as i32);
    assert_eq!(status.verified_on, "2024-03-01");
    assert_eq!(status.import_id, civil.import_id);
    assert!(status.term_applied && status.income_condition_waived && status.bands_replaced);
    assert_eq!(a.bands[0].rate, "0.7");

    // H1's verified drop, surveyed: gap 6,000 - 3,000 = 3,000 per capita x 3
    // members = 9,000: 2,000 x 50% + 7,000 x 80% = 6,600.00.
    let drop_claim = claim_of(&h1);
    let mut f = findings(&drop_claim, "3000.00", "");
    f.prior_incomes_per_capita_yuan = vec!["9000.00".into()];
    f.income_evidence_refs = vec!["民政核对表2023".into(), "民政核对表2024".into()];
    // Without the income evidence it is refused, and nothing is recorded.
    let mut bare = f.clone();
    bare.request_id = request_id();
    bare.income_evidence_refs.clear();
    s.survey()
        .assign_survey(pb::AssignSurveyRequest {
            request_id: request_id(),
            claim_id: drop_claim.clone(),
            surveyor: "surveyor-wang".into(),
            insurer: INSURER.into(),
            assigned_by: "county".into(),
        })
        .await
        .expect("assign");
    let mut wang = bare.clone();
    wang.surveyor = "surveyor-wang".into();
    let refused = s
        .survey()
        .record_findings(wang)
        .await
        .expect_err("no income evidence");
    assert_eq!(refused.code(), fangpin_proto::tonic::Code::InvalidArgument);
    let (a, paid) = survey_and_pay(&s, &drop_claim, f).await;
    assert!(a.eligible && a.expenditure_met, "{:?}", a.explanation);
    assert_eq!(a.amount_yuan, "6600.00");
    assert_eq!(paid, "6600.00");
    assert_eq!(a.verified_cost_yuan, "9000.00");
    assert_eq!(
        a.findings_seq, 1,
        "the refused findings left nothing behind"
    );
    let d = a.income_drop.expect("the drop");
    assert_eq!(
        (
            d.baseline_income_yuan.as_str(),
            d.drop_yuan.as_str(),
            d.drop_share.as_str()
        ),
        ("9000.00", "6000.00", "0.6667")
    );
    assert_eq!(
        (
            d.gap_per_capita_yuan.as_str(),
            d.members,
            d.relief_base_yuan.as_str()
        ),
        ("3000.00", 3, "9000.00")
    );
    assert_eq!(d.income_evidence_refs.len(), 2);
    assert!(
        a.explanation
            .iter()
            .any(|l| l.contains("3000.00 per capita x 3 members")),
        "{:?}",
        a.explanation
    );
    s.stop().await;
}
