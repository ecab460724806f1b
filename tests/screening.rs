//! Department data screening through gRPC: small medical (UTF-8), education
//! and civil-affairs (GBK) feeds with deliberately bad rows are imported in
//! odd-sized chunks; the error report is checked line by line; a screening
//! run must find exactly the households worked out by hand below; a
//! re-imported file is not counted twice; claims made from two runs are not
//! duplicated.

use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{COUNTY, INSURER, VILLAGE, put_policy};
use fangpin_tests::{TestServer, date, request_id, resident_id};
use sha2::{Digest, Sha256};

fn chunked(header: pb::FeedHeader, bytes: &[u8], chunk: usize) -> Vec<pb::ImportFeedRequest> {
    let mut out = vec![pb::ImportFeedRequest {
        part: Some(pb::import_feed_request::Part::Header(header)),
    }];
    for piece in bytes.chunks(chunk) {
        out.push(pb::ImportFeedRequest {
            part: Some(pb::import_feed_request::Part::Data(piece.to_vec().into())),
        });
    }
    out
}

fn header(
    kind: pb::FeedKind,
    encoding: pb::FeedEncoding,
    name: &str,
    bytes: &[u8],
) -> pb::FeedHeader {
    pb::FeedHeader {
        request_id: request_id(),
        county_code: COUNTY.into(),
        policy_year: 2024,
        kind: kind.into(),
        encoding: encoding.into(),
        file_name: name.into(),
        sha256: hex::encode(Sha256::digest(bytes)),
        size_bytes: bytes.len() as u64,
    }
}

async fn import(
    s: &TestServer,
    header: pb::FeedHeader,
    bytes: &[u8],
) -> Result<pb::FeedImport, fangpin_proto::tonic::Status> {
    // 7-byte chunks split ID numbers, amounts and GBK characters across
    // messages: the server must not care where the cuts fall.
    let stream = tokio_stream::iter(chunked(header, bytes, 7));
    s.screening()
        .import_feed(stream)
        .await
        .map(|r| r.into_inner())
}

async fn enroll(s: &TestServer, kind: pb::HouseholdType, persons: &[&str], n: u32) -> String {
    let person = |id: &str, i: usize| pb::Person {
        id_number: id.to_string(),
        name: format!("成员{n}-{i}"),
        relation: if i == 0 {
            String::new()
        } else {
            "spouse".into()
        },
    };
    s.enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2024,
            village_code: VILLAGE.into(),
            household_type: kind.into(),
            head: Some(person(persons[0], 0)),
            members: persons[1..]
                .iter()
                .enumerate()
                .map(|(i, p)| person(p, i + 1))
                .collect(),
            bank_account: format!("62170002{n:08}"),
        })
        .await
        .expect("enrol")
        .into_inner()
        .household_id
}

fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable, "test text is GBK-encodable");
    bytes.into_owned()
}

async fn run_screening(s: &TestServer) -> pb::ScreeningRun {
    s.screening()
        .run_screening(pb::RunScreeningRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            as_of: "2024-12-10".into(),
        })
        .await
        .expect("screening run")
        .into_inner()
}

/// One candidate per page, so the page token is exercised.
async fn candidate_page(
    s: &TestServer,
    run_id: &str,
    page_token: String,
) -> pb::ListScreeningCandidatesResponse {
    s.screening()
        .list_screening_candidates(pb::ListScreeningCandidatesRequest {
            run_id: run_id.to_string(),
            page_size: 1,
            page_token,
        })
        .await
        .expect("candidate page")
        .into_inner()
}

async fn screening_claims(s: &TestServer, run_id: &str) -> pb::CreateScreeningClaimsResponse {
    s.screening()
        .create_screening_claims(pb::CreateScreeningClaimsRequest {
            request_id: request_id(),
            run_id: run_id.to_string(),
            submitted_by: "县防贫中心".into(),
        })
        .await
        .expect("screening claims")
        .into_inner()
}

#[tokio::test]
async fn feeds_screening_and_claims() {
    let s = TestServer::start(date(2024, 12, 10)).await;
    s.enrollment()
        .register_county(pb::RegisterCountyRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            name: "涉县".into(),
            rural_population: 20_000,
            insurer: INSURER.into(),
        })
        .await
        .expect("county");
    put_policy(&s, 2024).await;

    let id = |n: u32| resident_id("19700101", n);
    let (a1, a2, a3, a4, a5, a6, a7) = (id(1), id(2), id(3), id(4), id(5), id(6), id(7));
    use pb::HouseholdType::{Marginal, UnstableEscaped};
    let h1 = enroll(&s, UnstableEscaped, &[&a1, &a2], 1).await;
    let h2 = enroll(&s, Marginal, &[&a3, &a4], 2).await;
    let h3 = enroll(&s, Marginal, &[&a5], 3).await;
    let _h4 = enroll(&s, UnstableEscaped, &[&a6], 4).await;
    let h5 = enroll(&s, Marginal, &[&a7], 5).await;

    let mut bad_check = id(8);
    let last = if bad_check.ends_with('1') { "2" } else { "1" };
    bad_check.replace_range(17..18, last);
    let stranger = resident_id("19800101", 99);
    // Line numbers in the comments are the file's (the header is line 1).
    let medical = [
        "身份证号,结算日期,是否住院,医疗总费用,报销金额,个人自付".to_string(),
        format!("{a1},2024-02-10,1,8000.00,5000.00,3000.00"), // 2: H1
        format!("{a2},2024/05/01,是,2000,0,2000"),            // 3: H1 -> 5,000.00
        format!("{a3},20240303,1,30000,15000,15000"),         // 4: H2
        format!("{a4},2024-03-04,0,9000,0,9000"),             // 5: out-patient, not counted
        format!("{a4},2023-11-30,1,8000,0,8000"),             // 6: before the rolling year
        format!("{a5},2024-06-06,1,30000.01,10000,20000.01"), // 7: H3
        format!("{a6},2024-07-07,1,4999.99,0,4999.99"),       // 8: H4, under 5,000
        format!("{bad_check},2024-01-01,1,100,0,100"),        // 9: bad_id
        format!("{a1},2024-01-02,1,\"12,000\",0,100"),        // 10: bad_amount
        format!("{stranger},2024-01-03,1,100,0,100"),         // 11: unknown_person
        format!("{a1},2024-02-30,1,100,0,100"),               // 12: bad_date
        format!("{a1},2024-01-04,1,100,0,200"),               // 13: inconsistent
        String::new(),                                        // 14: blank, skipped
        format!("{a1},2025-01-05,1,100,0,100"),               // 15: out_of_range (future)
        format!("{a1},2024-01-06,1,100"),                     // 16: field_count
    ]
    .join("\n")
        + "\n";
    let medical = medical.into_bytes();
    let med_header = header(
        pb::FeedKind::Medical,
        pb::FeedEncoding::Utf8,
        "医保2024.csv",
        &medical,
    );
    let m = import(&s, med_header.clone(), &medical)
        .await
        .expect("medical import");
    assert_eq!(
        (
            m.rows_total,
            m.rows_accepted,
            m.rows_not_counted,
            m.rows_rejected
        ),
        (14, 7, 1, 7)
    );
    assert_eq!(m.households_touched, 4);
    assert!(!m.duplicate && !m.errors_truncated);
    let errors: Vec<(u64, &str, &str)> = m
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str(), e.code.as_str()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (9, "id_number", "bad_id"),
            (10, "total_cost", "bad_amount"),
            (11, "id_number", "unknown_person"),
            (12, "settlement_date", "bad_date"),
            (13, "out_of_pocket", "inconsistent"),
            (15, "settlement_date", "out_of_range"),
            (16, "", "field_count"),
        ]
    );
    // No reason repeats a full ID number.
    for e in &m.errors {
        for person in [&a1, &bad_check, &stranger] {
            assert!(!e.reason.contains(person.as_str()), "{}", e.reason);
        }
    }
    // 3,000 + 2,000 + 15,000 + 8,000 + 20,000.01 + 4,999.99 (in-patient, accepted).
    assert_eq!(m.totals.len(), 1);
    assert_eq!(m.totals[0].amount_yuan, "53000.00");

    // The same request again: the same answer, from the record.
    let again = import(&s, med_header.clone(), &medical)
        .await
        .expect("retry");
    assert_eq!(again, m);
    // The same file under a new request id: recognised, not counted again.
    let dup_header = pb::FeedHeader {
        request_id: request_id(),
        ..med_header.clone()
    };
    let dup = import(&s, dup_header, &medical).await.expect("re-import");
    assert!(dup.duplicate);
    assert_eq!(dup.import_id, m.import_id);

    // Education in GBK, and civil affairs in GBK with Chinese status names.
    let education = gbk(&[
        "学生身份证号,学年,学费,住宿费,教材费".to_string(),
        format!("{a7},2024-2025,5000,2000,1000.01"), // H5: 8,000.01 > 8,000
        format!("{a6},2024-2025,4000,2000,2000"),    // H4: exactly 8,000, not above
        format!("{a7},2024-2026,1,1,1"),             // 4: bad_school_year
    ]
    .join("\r\n"));
    let e = import(
        &s,
        header(
            pb::FeedKind::Education,
            pb::FeedEncoding::Gbk,
            "教育.csv",
            &education,
        ),
        &education,
    )
    .await
    .expect("education import");
    assert_eq!((e.rows_accepted, e.rows_rejected), (2, 1));
    assert_eq!(
        (e.errors[0].line, e.errors[0].code.as_str()),
        (4, "bad_school_year")
    );

    let civil = gbk(&[
        "身份证号,救助类别,家庭人均可支配收入,核对日期".to_string(),
        format!("{a2},低保,5000.00,2024-06-30"), // H1 under the line 6,000
        format!("{a5},无,7000.00,2024-06-30"),   // H3 over the line: excluded
        format!("{a5},无,5000.00,2024-01-31"),   // older: does not replace
        format!("{a3},富裕,5000.00,2024-06-30"), // 5: bad_status
    ]
    .join("\n"));
    let c = import(
        &s,
        header(
            pb::FeedKind::CivilAffairs,
            pb::FeedEncoding::Gbk,
            "民政.csv",
            &civil,
        ),
        &civil,
    )
    .await
    .expect("civil-affairs import");
    assert_eq!((c.rows_accepted, c.rows_rejected), (3, 1));
    assert_eq!(c.errors[0].code, "bad_status");

    // Bad files are refused whole, and nothing is recorded.
    let no_column = b"id_number,settlement_date\n".to_vec();
    let err = import(
        &s,
        header(
            pb::FeedKind::Medical,
            pb::FeedEncoding::Utf8,
            "x.csv",
            &no_column,
        ),
        &no_column,
    )
    .await
    .expect_err("missing columns");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("inpatient"), "{}", err.message());
    let mut wrong_hash = header(
        pb::FeedKind::Medical,
        pb::FeedEncoding::Utf8,
        "y.csv",
        &medical,
    );
    wrong_hash.sha256 = hex::encode(Sha256::digest(b"something else"));
    let err = import(&s, wrong_hash, &medical)
        .await
        .expect_err("hash mismatch");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("header.sha256"), "{}", err.message());

    // The hand calculation, as of 2024-12-10 (windows 2024-01..2024-12):
    // H1 unstable: 3,000 + 2,000 = 5,000.00 >= 5,000 -> candidate, over 0.00,
    //    verified income 5,000 < 6,000;
    // H2 marginal: 15,000 (the 8,000 of 2023-11 is outside) < 20,000 -> no;
    // H3 marginal: 20,000.01 >= 20,000, but income 7,000 >= 6,000 -> excluded;
    // H4 unstable: illness 4,999.99 < 5,000, schooling 8,000 not > 8,000 -> no;
    // H5 marginal: schooling 8,000.01 > 8,000 -> candidate, over 0.01,
    //    income unverified.
    let run = run_screening(&s).await;
    assert_eq!(run.households_screened, 5);
    assert_eq!(run.households_with_costs, 5);
    assert_eq!((run.candidates, run.excluded_by_income), (2, 1));
    assert_eq!(run.import_ids.len(), 3);
    let candidates = candidate_page(&s, &run.run_id, String::new()).await;
    let second = candidate_page(&s, &run.run_id, candidates.next_page_token.clone()).await;
    let mut found: Vec<(String, i32, String, String, String)> = candidates
        .candidates
        .iter()
        .chain(&second.candidates)
        .map(|c| {
            (
                c.household_id.clone(),
                c.relief_kind,
                c.cost_yuan.clone(),
                c.over_by_yuan.clone(),
                c.verified_income_yuan.clone(),
            )
        })
        .collect();
    found.sort();
    let mut expected = vec![
        (
            h1.clone(),
            pb::ReliefKind::Illness as i32,
            "5000.00".to_string(),
            "0.00".to_string(),
            "5000.00".to_string(),
        ),
        (
            h5.clone(),
            pb::ReliefKind::Schooling as i32,
            "8000.01".to_string(),
            "0.01".to_string(),
            String::new(),
        ),
    ];
    expected.sort();
    assert_eq!(found, expected);
    let reason = &candidates.candidates[0].reason;
    assert!(reason.contains("2024-01..2024-12"), "{reason}");
    assert!(![&h2, &h3].contains(&&candidates.candidates[0].household_id));

    // Claims from the run; a second run and a second call add none.
    let made = screening_claims(&s, &run.run_id).await;
    assert_eq!(
        (made.created, made.already_claimed, made.remaining),
        (2, 0, 0)
    );
    for claim_id in &made.claim_ids {
        let claim = s
            .claims()
            .get_claim(pb::GetClaimRequest {
                claim_id: claim_id.clone(),
            })
            .await
            .expect("claim")
            .into_inner()
            .claim
            .expect("claim body");
        assert_eq!(claim.channel, pb::Channel::DepartmentReferral as i32);
        assert_eq!(claim.state, pb::ClaimState::Received as i32);
    }
    let rerun = run_screening(&s).await;
    assert_eq!(
        rerun.candidates, 2,
        "a re-imported file did not double anything"
    );
    let again = screening_claims(&s, &rerun.run_id).await;
    assert_eq!((again.created, again.already_claimed), (0, 2));

    // The stored report, in full.
    let report = s
        .screening()
        .get_feed_import(pb::GetFeedImportRequest {
            import_id: m.import_id.clone(),
        })
        .await
        .expect("report")
        .into_inner();
    assert_eq!(report.errors.len(), 7);
    assert_eq!(
        report
            .rejected_by_reason
            .iter()
            .map(|r| r.rows)
            .sum::<u64>(),
        7
    );
    s.stop().await;
}
