//! Benchmark: a roster (花名册) of 10^6 persons enrolled through
//! `EnrollmentService.ImportRoster`, against the target of 60 s (issue 15)
//! and an anchor measured in the same run on the same database: the same
//! rows (households and persons, with their sealed columns' sizes) put in
//! by bare multi-row INSERTs in one transaction on one connection, which
//! is what the import's writing cannot beat.
//!
//! The roster is generated first (UTF-8 CSV, households of 1 to 5 persons,
//! 3 on average, in eight villages) into a temporary file; the import then
//! streams it through the generated client in 1 MiB messages, as `fangpin
//! household import` does. The server runs in this process (`TestServer`,
//! port 0), so the peak memory printed is the server's and the client's.
//!
//! ```text
//! cargo bench -p fangpin-tests --bench roster
//! cargo bench -p fangpin-tests --bench roster -- --persons 100000
//! FANGPIN_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p fangpin-tests --bench roster
//! ```

use std::io::Write;
use std::time::{Duration, Instant};

use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{COUNTY, put_policy, register_county_of};
use fangpin_tests::{PG_ENV, TestServer, date};
use sha2::{Digest, Sha256};
use sqlx::{AnyConnection, Connection, Executor};

const YEAR: i32 = 2026;
const TARGET: Duration = Duration::from_secs(60);
const CHUNK: usize = 1 << 20;

struct Args {
    persons: u64,
    sqlite: bool,
    postgres: Option<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        persons: 1_000_000,
        sqlite: true,
        postgres: std::env::var(PG_ENV).ok().filter(|u| !u.is_empty()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bench" => {}
            "--persons" => {
                args.persons = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .expect("--persons needs a positive number")
            }
            "--postgres" => args.postgres = Some(it.next().expect("--postgres needs a URL")),
            "--no-sqlite" => args.sqlite = false,
            other => eprintln!("ignoring argument {other:?}"),
        }
    }
    args
}

/// The `n`th valid ID number of the run: 999 per birth date, birth dates
/// counted from 1940-01-01.
fn id_number(n: u64) -> String {
    let birth = date(1940, 1, 1) + chrono::Days::new(n / 999);
    let first17 = format!("130426{}{:03}", birth.format("%Y%m%d"), n % 999 + 1);
    fangpin_domain::identity::ResidentId::from_first17(&first17)
        .expect("valid")
        .as_str()
        .to_string()
}

/// Writes the roster; returns (households, bytes).
fn write_roster(path: &std::path::Path, persons: u64) -> (u64, u64) {
    let file = std::fs::File::create(path).expect("roster file");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    writeln!(
        out,
        "户编号,村代码,户类型,姓名,证件号码,与户主关系,一卡通账号,联系电话"
    )
    .expect("write");
    let relations = ["配偶", "子女", "子女", "父母"];
    let (mut person, mut household) = (0u64, 0u64);
    while person < persons {
        let size = (household % 5 + 1).min(persons - person);
        let village = format!("130426100{:03}", 201 + household % 8);
        let kind = if household % 3 == 0 {
            "脱贫不稳定户"
        } else {
            "边缘易致贫户"
        };
        for i in 0..size {
            let (relation, account) = if i == 0 {
                ("户主", format!("621700013{household:010}"))
            } else {
                (relations[(i as usize - 1) % relations.len()], String::new())
            };
            writeln!(
                out,
                "{:016},{village},{kind},姓名{person},{},{relation},{account},",
                household + 1,
                id_number(person)
            )
            .expect("write");
            person += 1;
        }
        household += 1;
    }
    out.flush().expect("flush");
    (household, std::fs::metadata(path).expect("size").len())
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("roster.csv");
    let generated = Instant::now();
    let (households, bytes) = write_roster(&path, args.persons);
    println!(
        "roster: {} persons in {households} households, {:.1} MiB, generated in {:.1} s",
        args.persons,
        bytes as f64 / (1 << 20) as f64,
        generated.elapsed().as_secs_f64()
    );
    let mut lines = Vec::new();
    runtime.block_on(async {
        if args.sqlite {
            lines.push(bench("sqlite", None, &path, args.persons, households).await);
        }
        if let Some(url) = &args.postgres {
            lines.push(
                bench(
                    "postgres",
                    Some(url.clone()),
                    &path,
                    args.persons,
                    households,
                )
                .await,
            );
        }
    });
    println!();
    for line in lines {
        println!("{line}");
    }
}

async fn bench(
    name: &str,
    postgres: Option<String>,
    path: &std::path::Path,
    persons: u64,
    households: u64,
) -> String {
    let server = TestServer::start_on(date(YEAR, 1, 5), postgres).await;
    let anchor = bulk_insert_time(server.database_url(), households, persons).await;
    println!(
        "{name}: anchor, the same rows by bare multi-row INSERTs in one transaction: {:.1} s",
        anchor.as_secs_f64()
    );
    register_county_of(&server, persons * 10 + 10).await;
    put_policy(&server, YEAR).await;

    let bytes = std::fs::read(path).expect("read the roster");
    let header = pb::RosterHeader {
        request_id: uuid::Uuid::new_v4().to_string(),
        county_code: COUNTY.into(),
        policy_year: YEAR,
        format: pb::RosterFormat::CsvUtf8.into(),
        file_name: "roster.csv".into(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        size_bytes: bytes.len() as u64,
    };
    let bytes = bytes::Bytes::from(bytes);
    let mut messages = vec![pb::ImportRosterRequest {
        part: Some(pb::import_roster_request::Part::Header(header)),
    }];
    let mut at = 0;
    while at < bytes.len() {
        let end = (at + CHUNK).min(bytes.len());
        messages.push(pb::ImportRosterRequest {
            part: Some(pb::import_roster_request::Part::Data(bytes.slice(at..end))),
        });
        at = end;
    }
    let started = Instant::now();
    let summary = server
        .enrollment()
        .import_roster(tokio_stream::iter(messages))
        .await
        .expect("ImportRoster")
        .into_inner();
    let took = started.elapsed();
    assert_eq!(
        (
            summary.persons_enrolled,
            summary.households_enrolled,
            summary.rows_rejected
        ),
        (persons, households, 0),
        "every person enrolled"
    );
    server.stop().await;
    let line = format!(
        "{name:<8} ImportRoster {persons} persons: {:.1} s ({:.0} persons/s), {:.2} of the 60 s target; \
         {:.1}x the anchor's {:.1} s; peak RSS {:.0} MiB",
        took.as_secs_f64(),
        persons as f64 / took.as_secs_f64(),
        took.as_secs_f64() / TARGET.as_secs_f64(),
        took.as_secs_f64() / anchor.as_secs_f64(),
        anchor.as_secs_f64(),
        peak_rss_mib(),
    );
    println!("{line}");
    line
}

/// Inserts `households` and `persons` rows shaped like fangpin's (the same
/// column types, sealed values of the same sizes) with multi-row INSERTs of
/// the store's sizes in one transaction, on a database beside the server's (SQLite,
/// WAL, synchronous FULL) or in it (PostgreSQL), and returns the time.
async fn bulk_insert_time(server_url: &str, households: u64, persons: u64) -> Duration {
    sqlx::any::install_default_drivers();
    let url = fangpin_tests::anchor_database_url(server_url);
    let sqlite = url.starts_with("sqlite:");
    let blob = if sqlite { "BLOB" } else { "BYTEA" };
    let mut conn = AnyConnection::connect(&url).await.expect("connect");
    if sqlite {
        conn.execute("PRAGMA journal_mode = WAL")
            .await
            .expect("WAL");
        conn.execute("PRAGMA synchronous = FULL")
            .await
            .expect("FULL");
    }
    conn.execute(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE anchor_households (id TEXT PRIMARY KEY, county TEXT NOT NULL, year BIGINT NOT NULL, \
         village TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, masked TEXT NOT NULL, \
         sealed {blob} NOT NULL, account_masked TEXT NOT NULL, account_sealed {blob} NOT NULL, \
         persons BIGINT NOT NULL, created TEXT NOT NULL)"
    )))
    .await
    .expect("create");
    conn.execute(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE anchor_persons (year BIGINT NOT NULL, hash {blob} NOT NULL, sealed {blob} NOT NULL, \
         household TEXT NOT NULL, county TEXT NOT NULL, name TEXT NOT NULL, relation TEXT NOT NULL, \
         PRIMARY KEY (year, hash))"
    )))
    .await
    .expect("create");
    conn.execute("CREATE INDEX anchor_persons_by_county ON anchor_persons (county, year)")
        .await
        .expect("index");
    let started = Instant::now();
    let mut tx = conn.begin().await.expect("begin");
    let sealed = vec![7u8; 58];
    let values = |rows: usize, width: usize| {
        (0..rows)
            .map(|r| {
                let cells: Vec<String> = (0..width)
                    .map(|c| format!("${}", r * width + c + 1))
                    .collect();
                format!("({})", cells.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut h = 0u64;
    while h < households {
        let n = (households - h).min(fangpin_store::roster::HOUSEHOLDS_PER_INSERT as u64) as usize;
        let sql = format!("INSERT INTO anchor_households VALUES {}", values(n, 12));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for i in 0..n as u64 {
            q = q
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(COUNTY)
                .bind(i64::from(YEAR))
                .bind("130426100201")
                .bind("marginal")
                .bind(format!("姓名{}", h + i))
                .bind("130426********0011")
                .bind(sealed.clone())
                .bind("************1234")
                .bind(sealed.clone())
                .bind(3i64)
                .bind("2026-01-05T01:00:00.000Z");
        }
        q.execute(&mut *tx).await.expect("insert households");
        h += n as u64;
    }
    let mut p = 0u64;
    while p < persons {
        let n = (persons - p).min(fangpin_store::roster::PERSONS_PER_INSERT as u64) as usize;
        let sql = format!("INSERT INTO anchor_persons VALUES {}", values(n, 7));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for i in 0..n as u64 {
            let hash = Sha256::digest((p + i).to_le_bytes()).to_vec();
            q = q
                .bind(i64::from(YEAR))
                .bind(hash)
                .bind(sealed.clone())
                .bind("01a2530b-d7eb-7249-975b-17afa53a87b6")
                .bind(COUNTY)
                .bind(format!("姓名{}", p + i))
                .bind("child");
        }
        q.execute(&mut *tx).await.expect("insert persons");
        p += n as u64;
    }
    tx.commit().await.expect("commit");
    let took = started.elapsed();
    conn.execute("DROP TABLE anchor_persons")
        .await
        .expect("drop");
    conn.execute("DROP TABLE anchor_households")
        .await
        .expect("drop");
    conn.close().await.expect("close");
    took
}
