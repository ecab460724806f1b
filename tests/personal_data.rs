//! Personal data at rest and in logs (docs/personal-data.md): a claim's whole
//! life, notices, bank matching and a feed import through the real server,
//! with every log line and span of the process captured at TRACE level, as
//! text and as JSON. Then no full ID number or bank account of any test
//! person may appear in the logs or anywhere in the database: the raw SQLite
//! file, or every column of every table on PostgreSQL.
//!
//! Own test binary: the tracing subscriber is process-global.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_store::Backend;
use fangpin_tests::flow::{COUNTY, VILLAGE, filed_claim, funded_county};
use fangpin_tests::{TestServer, date, request_id, resident_id};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection, Row};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;

/// Everything every layer wrote, for the whole process.
fn captured() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(logs.clone());
        let text = tracing_subscriber::fmt::layer()
            .with_writer(writer.clone())
            .with_ansi(false)
            // Span fields on every event, and a line when a span closes.
            .with_span_events(FmtSpan::FULL);
        let json = tracing_subscriber::fmt::layer()
            .json()
            .with_writer(writer)
            .with_current_span(true)
            .with_span_list(true)
            .with_span_events(FmtSpan::FULL);
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::TRACE)
            .with(text)
            .with(json);
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        logs
    })
}

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every value of every column of every table, as text (BYTEA escaped, so
/// any ASCII inside shows as itself). PostgreSQL only: SQLite's file is
/// scanned byte by byte instead.
async fn postgres_rows(conn: &mut AnyConnection) -> Vec<String> {
    let columns = sqlx::query(
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS d \
         FROM information_schema.columns WHERE table_schema = 'public'",
    )
    .fetch_all(&mut *conn)
    .await
    .expect("list the columns");
    assert!(
        columns.len() > 50,
        "every table's columns: {}",
        columns.len()
    );
    let mut values = Vec::new();
    for column in columns {
        let (table, name, kind): (String, String, String) =
            (column.get("t"), column.get("c"), column.get("d"));
        let value = if kind == "bytea" {
            format!("encode(\"{name}\", 'escape')")
        } else {
            format!("\"{name}\"::text")
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {value} AS v FROM \"{table}\""
        )))
        .fetch_all(&mut *conn)
        .await
        .expect("read a column");
        values.extend(rows.iter().filter_map(|r| r.get::<Option<String>, _>("v")));
    }
    values
}

#[tokio::test]
async fn no_full_id_number_or_bank_account_in_logs_or_database() {
    let logs = captured();
    let s = TestServer::start(date(2024, 1, 10)).await;
    funded_county(&s, 2024, "100000.00").await;

    // A claim from enrolment to payment (flow.rs: head 19650101-001).
    let (claim_id, account) = filed_claim(&s, 2024, VILLAGE, 1).await;
    // A second household, with members, left in publicity: the notice board.
    let (head, spouse, child) = (
        resident_id("19700101", 2),
        resident_id("19720202", 2),
        resident_id("20100303", 2),
    );
    let account2 = "6228480000000002".to_string();
    let enrolled = s
        .enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2024,
            village_code: VILLAGE.into(),
            household_type: pb::HouseholdType::Marginal.into(),
            head: Some(pb::Person {
                id_number: head.clone(),
                name: "户主2".into(),
                relation: String::new(),
            }),
            members: vec![
                pb::Person {
                    id_number: spouse.clone(),
                    name: "配偶2".into(),
                    relation: "spouse".into(),
                },
                pb::Person {
                    id_number: child.clone(),
                    name: "子女2".into(),
                    relation: "child".into(),
                },
            ],
            bank_account: account2.clone(),
        })
        .await
        .expect("enrol")
        .into_inner();
    assert_eq!(
        enrolled.head_id_masked,
        format!("{}********{}", &head[..6], &head[14..])
    );
    assert_eq!(enrolled.bank_account_masked, "************0002");
    let again = s
        .enrollment()
        .get_household(pb::GetHouseholdRequest {
            household_id: enrolled.household_id.clone(),
        })
        .await
        .expect("get household")
        .into_inner();
    assert_eq!(again.head_id_masked, enrolled.head_id_masked);
    // The same person twice in a year is still refused: the lookup hash is
    // the key now.
    let twice = s
        .enrollment()
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2024,
            village_code: VILLAGE.into(),
            household_type: pb::HouseholdType::Marginal.into(),
            head: Some(pb::Person {
                id_number: spouse.clone(),
                name: "配偶2".into(),
                relation: String::new(),
            }),
            members: vec![],
            bank_account: "6228480000000003".into(),
        })
        .await
        .expect_err("enrolled twice");
    assert_eq!(twice.code(), Code::AlreadyExists, "{twice:?}");

    s.set_date(date(2024, 3, 12));
    s.payout()
        .pay_claim(pb::PayClaimRequest {
            request_id: request_id(),
            claim_id: claim_id.clone(),
            paid_by: "insurer".into(),
            bank_reference: format!("TX-{claim_id}"),
        })
        .await
        .expect("pay");
    // Bank matching opens the sealed account: the payout must match.
    let statement = format!(
        "交易日期,交易金额,对方账号,摘要\n2024-03-12,-61750.00,{account},网银转账 TX-{claim_id}\n"
    );
    let report = s
        .ledger()
        .match_bank_statement(pb::MatchBankStatementRequest {
            county_code: COUNTY.into(),
            policy_year: 2024,
            statement_csv: statement.into_bytes(),
        })
        .await
        .expect("match")
        .into_inner();
    assert_eq!(report.matched.len(), 1, "{report:?}");
    let line = report.matched[0].bank.as_ref().expect("bank line");
    assert_eq!(line.account, "************0001");

    // A feed import: known persons, a stranger and a bad check digit.
    let stranger = resident_id("19800101", 99);
    let mut bad_check = resident_id("19700101", 8);
    let last = if bad_check.ends_with('1') { "2" } else { "1" };
    bad_check.replace_range(17..18, last);
    let medical = format!(
        "身份证号,结算日期,是否住院,医疗总费用,报销金额,个人自付\n\
         {spouse},2024-02-10,1,8000.00,5000.00,3000.00\n\
         {child},2024-02-11,1,9000,0,9000\n\
         {stranger},2024-01-03,1,100,0,100\n\
         {bad_check},2024-01-01,1,100,0,100\n"
    )
    .into_bytes();
    let header = pb::FeedHeader {
        request_id: request_id(),
        county_code: COUNTY.into(),
        policy_year: 2024,
        kind: pb::FeedKind::Medical.into(),
        encoding: pb::FeedEncoding::Utf8.into(),
        file_name: "医保2024.csv".into(),
        sha256: sha(&medical),
        size_bytes: medical.len() as u64,
    };
    let parts = vec![
        pb::ImportFeedRequest {
            part: Some(pb::import_feed_request::Part::Header(header)),
        },
        pb::ImportFeedRequest {
            part: Some(pb::import_feed_request::Part::Data(medical.into())),
        },
    ];
    let import = s
        .screening()
        .import_feed(tokio_stream::iter(parts))
        .await
        .expect("import")
        .into_inner();
    // The index found both members of household 2 through their sealed IDs.
    assert_eq!(
        (
            import.rows_accepted,
            import.rows_rejected,
            import.households_touched
        ),
        (2, 2, 1),
        "{import:?}"
    );

    let ids = [
        resident_id("19650101", 1),
        head.clone(),
        spouse.clone(),
        child.clone(),
        stranger.clone(),
        bad_check.clone(),
    ];
    let accounts = [account.clone(), account2.clone()];

    // The database: raw bytes on SQLite (after a checkpoint, so the WAL is
    // in the main file; the WAL is read too), every column on PostgreSQL.
    let mut conn = AnyConnection::connect(s.database_url())
        .await
        .expect("open the database");
    let stored: Vec<u8> = match Backend::of_url(s.database_url()).expect("backend") {
        Backend::Sqlite => {
            sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut conn)
                .await
                .expect("checkpoint");
            let path = s
                .database_url()
                .strip_prefix("sqlite://")
                .expect("a SQLite URL")
                .to_string();
            let mut bytes = std::fs::read(&path).expect("read the database file");
            if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
                bytes.extend(wal);
            }
            bytes
        }
        Backend::Postgres => postgres_rows(&mut conn).await.join("\n").into_bytes(),
    };
    conn.close().await.expect("close");
    // Controls: the scan sees the rows (names and masked forms are stored).
    assert!(contains(&stored, "配偶2"), "the scan reads the persons");
    assert!(contains(&stored, &enrolled.head_id_masked));
    assert!(contains(&stored, "************0002"));
    for secret in ids.iter().chain(&accounts) {
        assert!(
            !contains(&stored, secret),
            "the database holds {secret} in full"
        );
    }

    s.stop().await;
    let logs = logs.lock().unwrap_or_else(|p| p.into_inner()).clone();
    // Controls: the capture saw the server's spans and the store's, as text
    // and as JSON.
    assert!(contains(&logs, "store.counties.insert_household"));
    assert!(contains(&logs, "\"span\":"));
    assert!(contains(&logs, &claim_id));
    assert!(logs.len() > 100_000, "{} bytes captured", logs.len());
    for secret in ids.iter().chain(&accounts) {
        assert!(!contains(&logs, secret), "the logs hold {secret} in full");
    }
}
