//! Evidence (issue 13, part 4) through the real server on SQLite and
//! PostgreSQL, with the evidence kept in a local folder: a 20 MiB photo
//! uploaded in chunks, deduplicated, cited by the findings, downloaded byte
//! for byte and found in the audit chain by its hash; a broken upload, a
//! wrong declared hash and bytes that are not what the name says leave
//! nothing behind.

use std::path::Path;

use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::evidence_service_client::EvidenceServiceClient;
use fangpin_tests::flow::{COUNTY, INSURER, SURVEYOR, VILLAGE, put_policy, register_county};
use fangpin_tests::{TestServer, date, request_id, resident_id};
use pb::upload_evidence_request::Part;
use sha2::{Digest, Sha256};
use sqlx::Connection as _;
use tonic_types::StatusExt;

fn fields(e: &fangpin_proto::tonic::Status) -> Vec<String> {
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    e.get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

/// `len` bytes that begin as a JPEG does, the rest from a fixed generator.
fn jpeg(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut x = seed | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn header(claim: &str, name: &str, bytes: &[u8]) -> pb::EvidenceHeader {
    pb::EvidenceHeader {
        request_id: request_id(),
        claim_id: claim.into(),
        file_name: name.into(),
        sha256: hex::encode(Sha256::digest(bytes)),
        size_bytes: bytes.len() as u64,
        description: "入户照片".into(),
        uploaded_by: SURVEYOR.into(),
    }
}

fn messages(header: pb::EvidenceHeader, bytes: &[u8]) -> Vec<pb::UploadEvidenceRequest> {
    let mut out = vec![pb::UploadEvidenceRequest {
        part: Some(Part::Header(header)),
    }];
    // 64 KiB chunks, as a client on a thin county line would send them.
    for chunk in bytes.chunks(64 * 1024) {
        out.push(pb::UploadEvidenceRequest {
            part: Some(Part::Data(chunk.to_vec().into())),
        });
    }
    out
}

async fn upload(
    s: &TestServer,
    header: pb::EvidenceHeader,
    bytes: &[u8],
) -> Result<pb::Evidence, fangpin_proto::tonic::Status> {
    EvidenceServiceClient::new(s.channel.clone())
        .upload_evidence(tokio_stream::iter(messages(header, bytes)))
        .await
        .map(|r| r.into_inner())
}

async fn download(s: &TestServer, evidence_id: &str) -> (pb::Evidence, Vec<u8>) {
    let mut stream = EvidenceServiceClient::new(s.channel.clone())
        .download_evidence(pb::DownloadEvidenceRequest {
            evidence_id: evidence_id.into(),
        })
        .await
        .expect("download")
        .into_inner();
    let mut meta = None;
    let mut bytes = Vec::new();
    while let Some(part) = stream.message().await.expect("a part") {
        match part.part {
            Some(pb::download_evidence_response::Part::Evidence(e)) => meta = Some(e),
            Some(pb::download_evidence_response::Part::Data(d)) => bytes.extend_from_slice(&d),
            None => panic!("an empty part"),
        }
    }
    (meta.expect("the metadata first"), bytes)
}

async fn list(s: &TestServer, claim: &str) -> Vec<pb::Evidence> {
    EvidenceServiceClient::new(s.channel.clone())
        .list_evidence(pb::ListEvidenceRequest {
            claim_id: claim.into(),
        })
        .await
        .expect("list")
        .into_inner()
        .evidence
}

/// The files under the evidence folder, however deep.
fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read the folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

async fn claim_under_survey(s: &TestServer, n: u32) -> String {
    let household = s
        .enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2024,
            village_code: VILLAGE.into(),
            household_type: pb::HouseholdType::UnstableEscaped.into(),
            head: Some(pb::Person {
                id_number: resident_id("19700101", n),
                name: format!("户主{n}"),
                relation: String::new(),
            }),
            members: vec![],
            bank_account: format!("62170008{n:08}"),
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
            event_date: "2024-02-20".into(),
            event_reference: format!("admission-{n}"),
            claimed_cost_yuan: "30000.00".into(),
            description: String::new(),
            submitted_by: "village".into(),
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
            claim_id: claim.clone(),
            surveyor: SURVEYOR.into(),
            insurer: INSURER.into(),
            assigned_by: "county".into(),
        })
        .await
        .expect("assign");
    claim
}

fn findings(claim: &str, refs: Vec<String>) -> pb::RecordFindingsRequest {
    pb::RecordFindingsRequest {
        request_id: request_id(),
        claim_id: claim.into(),
        surveyor: SURVEYOR.into(),
        verified_income_per_capita_yuan: "3000.00".into(),
        verified_cost_yuan: "30000.00".into(),
        notes: "发票、住院清单已核".into(),
        evidence_refs: refs,
        prior_incomes_per_capita_yuan: Vec::new(),
        income_evidence_refs: Vec::new(),
    }
}

#[tokio::test]
async fn evidence_is_uploaded_cited_downloaded_and_audited_and_bad_uploads_leave_nothing() {
    let s = TestServer::start(date(2024, 3, 1)).await;
    register_county(&s).await;
    put_policy(&s, 2024).await;
    let claim = claim_under_survey(&s, 1).await;
    let other = claim_under_survey(&s, 2).await;
    let folder = s
        .evidence_dir()
        .expect("the test's evidence folder")
        .to_path_buf();

    // A 20 MiB photo in 64 KiB chunks.
    let photo = jpeg(20 * 1024 * 1024, 7);
    let first = upload(&s, header(&claim, "入户照片.jpg", &photo), &photo)
        .await
        .expect("upload");
    assert_eq!(first.size_bytes, photo.len() as u64);
    assert_eq!(first.sha256, hex::encode(Sha256::digest(&photo)));
    assert_eq!(
        (first.media_type.as_str(), first.content_type.as_str()),
        ("jpeg", "image/jpeg")
    );
    assert!(!first.duplicate);
    // The same file again is the same evidence, stored once.
    let again = upload(&s, header(&claim, "副本.jpg", &photo), &photo)
        .await
        .expect("again");
    assert!(again.duplicate);
    assert_eq!(again.evidence_id, first.evidence_id);
    assert_eq!(files_in(&folder).len(), 1);
    // A receipt as a PDF, on the same claim.
    let mut receipt = b"%PDF-1.7\n".to_vec();
    receipt.extend_from_slice(&jpeg(10_000, 9)[4..]);
    let pdf = upload(&s, header(&claim, "住院发票.pdf", &receipt), &receipt)
        .await
        .expect("pdf");
    assert_eq!(list(&s, &claim).await.len(), 2);
    let stored = files_in(&folder);
    assert_eq!(stored.len(), 2);

    // Bad uploads: each refused by its field, and nothing is left.
    let mut wrong_hash = header(&claim, "x.jpg", &photo[..1000]);
    wrong_hash.sha256 = hex::encode(Sha256::digest(b"something else"));
    let e = upload(&s, wrong_hash, &photo[..1000])
        .await
        .expect_err("hash");
    assert_eq!(fields(&e), ["sha256"]);
    let png = {
        let mut b = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        b.extend_from_slice(&[1; 100]);
        b
    };
    let e = upload(&s, header(&claim, "发票.pdf", &png), &png)
        .await
        .expect_err("a PNG named .pdf");
    assert_eq!(fields(&e), ["file_name"]);
    let gif = b"GIF89a and the rest of a gif".to_vec();
    let e = upload(&s, header(&claim, "a.jpg", &gif), &gif)
        .await
        .expect_err("not a type we take");
    assert_eq!(fields(&e), ["file_name"]);
    let mut short = header(&claim, "y.jpg", &photo[..2000]);
    short.size_bytes = 3000;
    let e = upload(&s, short, &photo[..2000]).await.expect_err("short");
    assert_eq!(fields(&e), ["size_bytes"]);

    // A stream that breaks midway: half the file, then the client goes.
    let broken = jpeg(4 * 1024 * 1024, 11);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let call = {
        let mut client = EvidenceServiceClient::new(s.channel.clone());
        tokio::spawn(async move {
            client
                .upload_evidence(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        })
    };
    let mut parts = messages(header(&claim, "broken.jpg", &broken), &broken).into_iter();
    for part in parts.by_ref().take(30) {
        tx.send(part).await.expect("sent");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    call.abort();
    drop(tx);
    let _ = call.await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(list(&s, &claim).await.len(), 2, "nothing referenced");
    assert_eq!(files_in(&folder), stored, "nothing half-written");

    // The findings cite the claim's evidence, and only it.
    let e = s
        .survey()
        .record_findings(findings(&claim, vec![uuid::Uuid::now_v7().to_string()]))
        .await
        .expect_err("unknown evidence");
    assert_eq!(fields(&e), ["evidence_refs[0]"]);
    let theirs = upload(
        &s,
        header(&other, "other.jpg", &photo[..5000]),
        &photo[..5000],
    )
    .await
    .expect("the other claim's photo");
    let e = s
        .survey()
        .record_findings(findings(
            &claim,
            vec![first.evidence_id.clone(), theirs.evidence_id.clone()],
        ))
        .await
        .expect_err("another claim's evidence");
    assert_eq!(fields(&e), ["evidence_refs[1]"]);
    let recorded = s
        .survey()
        .record_findings(findings(
            &claim,
            vec![first.evidence_id.clone(), pdf.evidence_id.clone()],
        ))
        .await
        .expect("findings")
        .into_inner()
        .claim
        .expect("claim");
    assert_eq!(
        recorded.assessment.expect("assessment").evidence_refs,
        [first.evidence_id.clone(), pdf.evidence_id.clone()]
    );

    // Byte for byte, in 1 MiB chunks.
    let (meta, bytes) = download(&s, &first.evidence_id).await;
    assert_eq!(meta.sha256, first.sha256);
    assert!(bytes == photo, "the download is the upload");

    // The audit chain names the evidence and its hash.
    let mut conn = sqlx::AnyConnection::connect(s.database_url())
        .await
        .expect("database");
    let rows: Vec<(String, String)> = sqlx::query(
        "SELECT object, after FROM audit_log WHERE rpc LIKE '%UploadEvidence' ORDER BY seq",
    )
    .fetch_all(&mut conn)
    .await
    .expect("audit rows")
    .iter()
    .map(|r| {
        (
            sqlx::Row::get::<String, _>(r, "object"),
            sqlx::Row::get::<String, _>(r, "after"),
        )
    })
    .collect();
    let object = format!("{COUNTY}/evidence/{}", first.evidence_id);
    assert!(
        rows.iter()
            .any(|(o, after)| *o == object && after.contains(&first.sha256)),
        "{rows:?}"
    );
    conn.close().await.expect("close");
    s.stop().await;
}
