//! A county's roster (花名册) enrolled through EnrollmentService.ImportRoster:
//! CSV in UTF-8 and in GBK with deliberately bad rows (reported by their
//! real line, in odd-sized chunks), an XLSX workbook with a title above its
//! header and IDs stored as numbers, a file sent twice and a request retried, a roster that would
//! overfill the pool, and `fangpin household import` as the real binary.

use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{COUNTY, VILLAGE, put_policy, register_county_of};
use fangpin_tests::{TestServer, date, fangpin, request_id, resident_id};
use sha2::{Digest, Sha256};

const YEAR: i32 = 2026;
const HEADER: &str = "户编号,村代码,户类型,姓名,证件号码,与户主关系,一卡通账号,联系电话";

fn roster_header(format: pb::RosterFormat, bytes: &[u8]) -> pb::RosterHeader {
    pb::RosterHeader {
        request_id: request_id(),
        county_code: COUNTY.into(),
        policy_year: YEAR,
        format: format.into(),
        file_name: "涉县2026年防贫保花名册.csv".into(),
        sha256: hex::encode(Sha256::digest(bytes)),
        size_bytes: bytes.len() as u64,
    }
}

/// The header, then the file cut into `chunk`-byte messages.
async fn send(
    s: &TestServer,
    header: pb::RosterHeader,
    bytes: &[u8],
    chunk: usize,
) -> Result<pb::RosterImport, fangpin_proto::tonic::Status> {
    let mut messages = vec![pb::ImportRosterRequest {
        part: Some(pb::import_roster_request::Part::Header(header)),
    }];
    for piece in bytes.chunks(chunk) {
        messages.push(pb::ImportRosterRequest {
            part: Some(pb::import_roster_request::Part::Data(piece.to_vec().into())),
        });
    }
    s.enrollment()
        .import_roster(tokio_stream::iter(messages))
        .await
        .map(|r| r.into_inner())
}

async fn county_with_pool(s: &TestServer, rural_population: u64) {
    register_county_of(s, rural_population).await;
    put_policy(s, YEAR).await;
}

async fn persons_enrolled(s: &TestServer) -> u64 {
    s.enrollment()
        .get_county(pb::GetCountyRequest {
            county_code: COUNTY.into(),
            policy_year: YEAR,
        })
        .await
        .expect("county")
        .into_inner()
        .persons_enrolled
}

fn errors(summary: &pb::RosterImport) -> Vec<(u64, &str, &str)> {
    summary
        .errors
        .iter()
        .map(|e| (e.line, e.household_no.as_str(), e.code.as_str()))
        .collect()
}

fn account(n: u32) -> String {
    format!("62170000111{n:05}")
}

#[tokio::test]
async fn bad_rows_in_both_encodings_are_reported_by_their_line() {
    let s = TestServer::start(date(2026, 1, 10)).await;
    county_with_pool(&s, 20_000).await;
    let id = |n| resident_id("19700101", n);
    let child = |n| resident_id("20100101", n);
    // UTF-8 with a byte-order mark, CRLF line ends and a blank line (4).
    let lines = [
        HEADER.to_string(),
        format!(
            "H001,{VILLAGE},脱贫不稳定户,张三,{},户主,{},13800000001",
            id(1),
            account(1)
        ),
        format!("H001,{VILLAGE},脱贫不稳定户,李四,{},配偶,,", id(2)),
        String::new(),
        format!(
            "H002,{VILLAGE},边缘易致贫户,王五,1304261970010100,户主,{},",
            account(2)
        ),
        format!("H002,{VILLAGE},边缘易致贫户,王小五,{},子女,,", child(4)),
        format!(
            "H003,130427100201,边缘易致贫户,钱七,{},户主,{},",
            id(5),
            account(3)
        ),
        format!(
            "H004,{VILLAGE},边缘易致贫户,赵六,{},户主,{},",
            id(6),
            account(4)
        ),
        format!("H004,{VILLAGE},边缘易致贫户,赵小六,{},子女,,", id(6)),
        format!("H005,{VILLAGE},边缘易致贫户,孙七,{},户主,,", id(7)),
        format!(
            "H006,{VILLAGE},突发严重困难户,周八,{},户主,{},",
            id(8),
            account(5)
        ),
    ];
    let mut utf8 = "\u{feff}".as_bytes().to_vec();
    utf8.extend_from_slice(lines.join("\r\n").as_bytes());
    utf8.extend_from_slice(b"\r\n");
    let first = send(
        &s,
        roster_header(pb::RosterFormat::CsvUtf8, &utf8),
        &utf8,
        7,
    )
    .await
    .expect("imported");
    assert_eq!(
        errors(&first),
        vec![
            (5, "H002", "bad_id"),
            (7, "H003", "bad_village"),
            (9, "H004", "duplicate_person"),
            (10, "H005", "no_account"),
        ]
    );
    assert_eq!(
        (
            first.rows_total,
            first.households_enrolled,
            first.persons_enrolled,
            first.households_rejected,
            first.rows_rejected,
        ),
        (9, 2, 3, 4, 6)
    );
    assert_eq!((first.pool_size, first.persons_insured), (2_000, 3));
    assert!(!first.duplicate && !first.errors_truncated);
    // No error message carries an ID number.
    for e in &first.errors {
        assert!(
            !e.reason.contains(&id(6)) && !e.reason.contains("19700101"),
            "{e:?}"
        );
    }

    // GBK, as exported by the monitoring system: one person is already
    // insured by the first file, one household has two heads, one an
    // unknown type, one an unknown relation, one a name not valid GBK.
    let gbk_lines = [
        HEADER.to_string(),
        format!(
            "G001,{VILLAGE},边缘易致贫户,钱一,{},户主,{},",
            id(11),
            account(11)
        ),
        format!("G001,{VILLAGE},边缘易致贫户,钱二,{},配偶,,", id(12)),
        format!(
            "G002,{VILLAGE},边缘易致贫户,张三,{},户主,{},",
            id(1),
            account(12)
        ),
        format!(
            "G003,{VILLAGE},边缘易致贫户,吴九,{},户主,{},",
            id(13),
            account(13)
        ),
        format!(
            "G003,{VILLAGE},边缘易致贫户,吴十,{},户主,{},",
            id(14),
            account(14)
        ),
        format!(
            "G004,{VILLAGE},贫困户,郑一,{},户主,{},",
            id(15),
            account(15)
        ),
        format!(
            "G005,{VILLAGE},边缘易致贫户,冯二,{},邻居,{},",
            id(16),
            account(16)
        ),
    ];
    let text = gbk_lines.join("\n");
    let (encoded, _, unmappable) = encoding_rs::GBK.encode(&text);
    assert!(!unmappable);
    let mut gbk = encoded.into_owned();
    gbk.extend_from_slice(b"\nG006,");
    gbk.extend_from_slice(VILLAGE.as_bytes());
    gbk.extend_from_slice(b",marginal,\xff\xfe,");
    gbk.extend_from_slice(id(17).as_bytes());
    gbk.extend_from_slice(format!(",head,{},\n", account(17)).as_bytes());
    let second = send(&s, roster_header(pb::RosterFormat::CsvGbk, &gbk), &gbk, 5)
        .await
        .expect("imported");
    assert_eq!(
        errors(&second),
        vec![
            (4, "G002", "already_insured"),
            (6, "G003", "two_heads"),
            (7, "G004", "bad_household_type"),
            (8, "G005", "bad_relation"),
            (9, "G006", "bad_encoding"),
        ]
    );
    assert_eq!(
        (
            second.households_enrolled,
            second.persons_enrolled,
            second.rows_rejected
        ),
        (1, 2, 6)
    );
    assert_eq!(persons_enrolled(&s).await, 5);

    // The households are there, sealed and masked as EnrollHousehold leaves them.
    let stored = s
        .enrollment()
        .get_roster_import(pb::GetRosterImportRequest {
            import_id: second.import_id.clone(),
        })
        .await
        .expect("summary")
        .into_inner();
    assert_eq!(errors(&stored), errors(&second));
    let by_code: Vec<(&str, u64)> = stored
        .errors_by_reason
        .iter()
        .map(|r| (r.code.as_str(), r.errors))
        .collect();
    assert_eq!(
        by_code,
        vec![
            ("already_insured", 1),
            ("bad_encoding", 1),
            ("bad_household_type", 1),
            ("bad_relation", 1),
            ("two_heads", 1),
        ]
    );
}

#[tokio::test]
async fn a_roster_sent_twice_enrols_once() {
    let s = TestServer::start(date(2026, 1, 10)).await;
    county_with_pool(&s, 20_000).await;
    let id = |n| resident_id("19800101", n);
    let file = [
        HEADER.to_string(),
        format!("1,{VILLAGE},marginal,甲,{},head,{},", id(1), account(1)),
        format!("1,{VILLAGE},marginal,乙,{},spouse,,", id(2)),
        format!(
            "2,{VILLAGE},unstable_escaped,丙,{},户主,{},",
            id(3),
            account(2)
        ),
    ]
    .join("\n")
    .into_bytes();
    let header = roster_header(pb::RosterFormat::CsvUtf8, &file);
    let first = send(&s, header.clone(), &file, 1 << 20)
        .await
        .expect("first");
    assert_eq!((first.households_enrolled, first.persons_enrolled), (2, 3));

    // The same request again (a lost answer): the first answer.
    let retried = send(&s, header.clone(), &file, 1 << 20)
        .await
        .expect("retry");
    assert_eq!(retried, first);

    // The same file under a new request id: recognised by its hash.
    let again = send(
        &s,
        roster_header(pb::RosterFormat::CsvUtf8, &file),
        &file,
        3,
    )
    .await
    .expect("again");
    assert!(again.duplicate);
    assert_eq!(again.import_id, first.import_id);
    assert_eq!(persons_enrolled(&s).await, 3);

    // A request id reused for other bytes is refused, and changes nothing.
    let mut other = file.clone();
    other.extend_from_slice(b"\n");
    let mut reused = roster_header(pb::RosterFormat::CsvUtf8, &other);
    reused.request_id = header.request_id.clone();
    let refused = send(&s, reused, &other, 1 << 20)
        .await
        .expect_err("reused id");
    assert_ne!(refused.code(), Code::Ok);
    assert_eq!(persons_enrolled(&s).await, 3);

    // Bytes that do not match the announced hash enrol nothing.
    let mut lying = roster_header(pb::RosterFormat::CsvUtf8, &other);
    lying.sha256 = hex::encode(Sha256::digest(b"something else"));
    let refused = send(&s, lying, &other, 1 << 20).await.expect_err("hash");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(persons_enrolled(&s).await, 3);
}

#[tokio::test]
async fn a_roster_that_overfills_the_pool_is_refused_whole() {
    let s = TestServer::start(date(2026, 1, 10)).await;
    // 30 rural people: a pool of 3.
    county_with_pool(&s, 30).await;
    let id = |n| resident_id("19900101", n);
    let file = [
        HEADER.to_string(),
        format!("1,{VILLAGE},marginal,甲,{},head,{},", id(1), account(1)),
        format!("1,{VILLAGE},marginal,乙,{},spouse,,", id(2)),
        format!("2,{VILLAGE},marginal,丙,{},head,{},", id(3), account(2)),
        format!("2,{VILLAGE},marginal,丁,{},child,,", id(4)),
    ]
    .join("\n")
    .into_bytes();
    let refused = send(
        &s,
        roster_header(pb::RosterFormat::CsvUtf8, &file),
        &file,
        64,
    )
    .await
    .expect_err("pool full");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("3 persons"),
        "{}",
        refused.message()
    );
    assert_eq!(persons_enrolled(&s).await, 0);
}

#[tokio::test]
async fn an_xlsx_roster_with_ids_stored_as_numbers() {
    let s = TestServer::start(date(2026, 1, 10)).await;
    county_with_pool(&s, 20_000).await;
    let id = |n| resident_id("19750101", n);
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    // As exported: a title and the export date above the header.
    sheet
        .write_string(0, 0, "涉县2026年防贫保花名册")
        .expect("cell");
    sheet
        .write_string(1, 0, "导出日期：2026-01-05")
        .expect("cell");
    for (c, name) in HEADER.split(',').enumerate() {
        sheet.write_string(2, c as u16, name).expect("cell");
    }
    // Row 2: the village code as a number (exact), the rest as text.
    let rows: [(&str, String, &str, String); 3] = [
        ("X1", "张三".into(), "户主", id(1)),
        ("X1", "李四".into(), "配偶", id(2)),
        ("X2", "王五".into(), "户主", id(3)),
    ];
    for (r, (no, name, relation, idn)) in rows.iter().enumerate() {
        let r = r as u32 + 3;
        sheet.write_string(r, 0, *no).expect("cell");
        sheet
            .write_number(r, 1, VILLAGE.parse::<f64>().expect("digits"))
            .expect("cell");
        sheet.write_string(r, 2, "边缘易致贫户").expect("cell");
        sheet.write_string(r, 3, name.as_str()).expect("cell");
        if no == &"X2" {
            // Excel keeps 15 significant digits: the number is not the ID.
            sheet
                .write_number(r, 4, idn[..17].parse::<f64>().expect("digits"))
                .expect("cell");
        } else {
            sheet.write_string(r, 4, idn.as_str()).expect("cell");
        }
        sheet.write_string(r, 5, *relation).expect("cell");
        if *relation == "户主" {
            sheet.write_string(r, 6, account(r).as_str()).expect("cell");
        }
    }
    let bytes = book.save_to_buffer().expect("xlsx");
    let summary = send(
        &s,
        roster_header(pb::RosterFormat::Xlsx, &bytes),
        &bytes,
        4096,
    )
    .await
    .expect("imported");
    assert_eq!(errors(&summary), vec![(6, "X2", "number_not_text")]);
    assert_eq!(
        (summary.households_enrolled, summary.persons_enrolled),
        (1, 2)
    );

    // Not a workbook at all: a clean refusal naming the data.
    let junk = b"PK\x03\x04 not really a zip".to_vec();
    let refused = send(
        &s,
        roster_header(pb::RosterFormat::Xlsx, &junk),
        &junk,
        4096,
    )
    .await
    .expect_err("junk");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(persons_enrolled(&s).await, 2);
}

#[tokio::test]
async fn fangpin_household_import_streams_a_gbk_file() {
    let s = TestServer::start(date(2026, 1, 10)).await;
    county_with_pool(&s, 20_000).await;
    let id = |n| resident_id("19600101", n);
    let text = [
        HEADER.to_string(),
        format!(
            "7,{VILLAGE},边缘易致贫户,陈一,{},户主,{},",
            id(1),
            account(1)
        ),
        format!("7,{VILLAGE},边缘易致贫户,陈二,{},子女,,", id(2)),
        format!("8,{VILLAGE},边缘易致贫户,林三,{},户主,", id(3)),
    ]
    .join("\n");
    let (gbk, _, _) = encoding_rs::GBK.encode(&text);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("花名册.csv");
    std::fs::write(&path, &gbk).expect("write");
    let out = fangpin(
        &s,
        &[
            "household",
            "import",
            "--county",
            COUNTY,
            "--year",
            "2026",
            "--quiet",
            path.to_str().expect("utf-8 path"),
        ],
    )
    .await;
    assert!(out.contains("csv_gbk"), "{out}");
    assert!(out.contains("no_account"), "{out}");
    let enrolled = out
        .lines()
        .find(|l| l.contains("persons enrolled"))
        .unwrap_or_default();
    assert!(enrolled.contains("┆ 2 "), "{out}");
    assert_eq!(persons_enrolled(&s).await, 2);
}
