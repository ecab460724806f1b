//! Benchmark: intake against the database's commit rate, the anchor of
//! "Speed at the limits" (issue 15).
//!
//! For each backend it first measures the anchor on the same database
//! server or filesystem, in the same run: raw durable single-row commits on
//! one connection (SQLite: a file beside the server's, WAL and
//! `synchronous = FULL` as fangpind opens it; PostgreSQL: a table in the
//! server's database, autocommit). Then it starts the real server
//! (`TestServer`, in this process, on port 0), registers a county and its
//! policy, and drives `SubmitClaim` and `EnrollHousehold` through the
//! generated client with 1, 4 and 16 calls in flight, each for a fixed
//! time. Every call must succeed; a refused call aborts the benchmark.
//!
//! It prints calls/s, p50 and p99 per point and the ratio of calls/s to the
//! anchor. The client shares the machine's cores with the server, as a
//! client on the same host would.
//!
//! ```text
//! cargo bench -p fangpin-tests --bench intake
//! FANGPIN_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p fangpin-tests --bench intake
//! cargo bench -p fangpin-tests --bench intake -- \
//!     --postgres postgres://postgres@127.0.0.1:5432/postgres [--no-sqlite] [--seconds N]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fangpin_proto::v1 as pb;
use fangpin_tests::flow::{COUNTY, VILLAGE, put_policy, register_county_of};
use fangpin_tests::{PG_ENV, TestServer, date, request_id, resident_id};
use sqlx::{AnyConnection, Connection, Executor};

const YEAR: i32 = 2026;
/// Calls in flight at each point.
const IN_FLIGHT: [usize; 3] = [1, 4, 16];
/// Households the claims are spread over (enrolled before timing).
const CLAIM_HOUSEHOLDS: u32 = 200;
const DEFAULT_SECONDS: u64 = 3;

struct Args {
    sqlite: bool,
    postgres: Option<String>,
    seconds: u64,
}

fn parse_args() -> Args {
    let mut args = Args {
        sqlite: true,
        postgres: std::env::var(PG_ENV).ok().filter(|u| !u.is_empty()),
        seconds: DEFAULT_SECONDS,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        match flag.as_str() {
            // cargo bench passes --bench to a harness-less target.
            "--bench" => {}
            "--postgres" => {
                args.postgres = Some(
                    inline
                        .or_else(|| it.next())
                        .expect("--postgres needs a URL"),
                )
            }
            "--no-sqlite" => args.sqlite = false,
            "--seconds" => {
                args.seconds = inline
                    .or_else(|| it.next())
                    .and_then(|v| v.parse().ok())
                    .filter(|&s| s > 0)
                    .expect("--seconds needs a positive number")
            }
            other => eprintln!("ignoring argument {other:?}"),
        }
    }
    args
}

fn main() {
    let args = parse_args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let mut summaries = Vec::new();
        if args.sqlite {
            summaries.extend(bench_backend("sqlite", None, &args).await);
        }
        if let Some(url) = &args.postgres {
            summaries.extend(bench_backend("postgres", Some(url.clone()), &args).await);
        }
        println!();
        for line in summaries {
            println!("{line}");
        }
    });
}

/// One measured point: calls/s and latency percentiles.
struct Point {
    calls_per_sec: f64,
    p50: Duration,
    p99: Duration,
}

async fn bench_backend(name: &str, postgres: Option<String>, args: &Args) -> Vec<String> {
    let window = Duration::from_secs(args.seconds);
    let server = TestServer::start_on(date(YEAR, 3, 2), postgres).await;
    let anchor = raw_commit_rate(server.database_url(), window).await;
    println!("{name}: anchor, raw durable single-row commits on 1 connection: {anchor:.0}/s");

    // Large enough that no enrolment of the run meets the pool's limit.
    register_county_of(&server, 10_000_000).await;
    put_policy(&server, YEAR).await;
    let sequence = Arc::new(AtomicU32::new(0));
    let mut households = Vec::new();
    for _ in 0..CLAIM_HOUSEHOLDS {
        households.push(enroll(&server, &sequence).await);
    }
    let households = Arc::new(households);

    let mut lines = Vec::new();
    let events = Arc::new(AtomicU32::new(0));
    for in_flight in IN_FLIGHT {
        let point = measure(in_flight, window, {
            let (server, households, events) =
                (server.claims(), households.clone(), events.clone());
            move || {
                let mut client = server.clone();
                let households = households.clone();
                let event = events.fetch_add(1, Ordering::Relaxed);
                async move {
                    let household = households[event as usize % households.len()].clone();
                    client
                        .submit_claim(submit_request(household, event))
                        .await
                        .expect("SubmitClaim");
                }
            }
        })
        .await;
        lines.push(report(name, "SubmitClaim", in_flight, &point, anchor));
    }
    for in_flight in IN_FLIGHT {
        let point = measure(in_flight, window, {
            let (client, sequence) = (server.enrollment(), sequence.clone());
            move || {
                let mut client = client.clone();
                let request = enroll_request(sequence.fetch_add(1, Ordering::Relaxed));
                async move {
                    client
                        .enroll_household(request)
                        .await
                        .expect("EnrollHousehold");
                }
            }
        })
        .await;
        lines.push(report(name, "EnrollHousehold", in_flight, &point, anchor));
    }
    server.stop().await;
    lines
}

fn report(backend: &str, rpc: &str, in_flight: usize, point: &Point, anchor: f64) -> String {
    let line = format!(
        "{backend:<8} {rpc:<16} in flight {in_flight:>2}: {:>6.0} calls/s, p50 {:>6.2} ms, \
         p99 {:>6.2} ms (p99/p50 {:.1}); {:.0}% of the anchor's {anchor:.0} commits/s",
        point.calls_per_sec,
        point.p50.as_secs_f64() * 1e3,
        point.p99.as_secs_f64() * 1e3,
        point.p99.as_secs_f64() / point.p50.as_secs_f64().max(f64::MIN_POSITIVE),
        100.0 * point.calls_per_sec / anchor,
    );
    println!("{line}");
    line
}

/// Runs `call` from `in_flight` tasks at once for `window`, each starting
/// its next call when its last one answered.
async fn measure<F, Fut>(in_flight: usize, window: Duration, call: F) -> Point
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let call = call.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < window {
                let at = Instant::now();
                call().await;
                latencies.push(at.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::new();
    while let Some(task) = tasks.join_next().await {
        latencies.extend(task.expect("a client task"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Point {
        calls_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Single-row INSERTs, each its own durable transaction, on one connection
/// for `window`: for SQLite in a file beside the server's, opened as
/// fangpind opens its own; for PostgreSQL in the server's database.
async fn raw_commit_rate(server_url: &str, window: Duration) -> f64 {
    sqlx::any::install_default_drivers();
    let url = fangpin_tests::anchor_database_url(server_url);
    let mut conn = AnyConnection::connect(&url)
        .await
        .expect("connect for the anchor");
    if url.starts_with("sqlite:") {
        conn.execute("PRAGMA journal_mode = WAL")
            .await
            .expect("WAL");
        conn.execute("PRAGMA synchronous = FULL")
            .await
            .expect("FULL");
    }
    conn.execute("CREATE TABLE bench_anchor (id BIGINT PRIMARY KEY, note TEXT NOT NULL)")
        .await
        .expect("create the anchor table");
    let started = Instant::now();
    let mut commits: i64 = 0;
    while started.elapsed() < window {
        sqlx::query("INSERT INTO bench_anchor (id, note) VALUES ($1, $2)")
            .bind(commits)
            .bind("a durable row")
            .execute(&mut conn)
            .await
            .expect("insert");
        commits += 1;
    }
    let rate = commits as f64 / started.elapsed().as_secs_f64();
    conn.execute("DROP TABLE bench_anchor").await.expect("drop");
    conn.close().await.expect("close");
    rate
}

async fn enroll(s: &TestServer, sequence: &AtomicU32) -> String {
    s.enrollment()
        .enroll_household(enroll_request(sequence.fetch_add(1, Ordering::Relaxed)))
        .await
        .expect("enroll")
        .into_inner()
        .household_id
}

/// A household of one with the `n`th ID number of the run: 999 numbers per
/// birth date, birth dates counted from 1950-01-01.
fn enroll_request(n: u32) -> pb::EnrollHouseholdRequest {
    let birth = date(1950, 1, 1) + chrono::Days::new(u64::from(n / 999));
    let sequence = n % 999 + 1;
    pb::EnrollHouseholdRequest {
        request_id: request_id(),
        county_code: COUNTY.into(),
        policy_year: YEAR,
        village_code: VILLAGE.into(),
        household_type: pb::HouseholdType::UnstableEscaped.into(),
        head: Some(pb::Person {
            id_number: resident_id(&birth.format("%Y%m%d").to_string(), sequence),
            name: format!("户主{n}"),
            relation: String::new(),
        }),
        members: vec![],
        bank_account: format!("62170001{n:08}"),
    }
}

fn submit_request(household: String, event: u32) -> pb::SubmitClaimRequest {
    pb::SubmitClaimRequest {
        request_id: request_id(),
        household_id: household,
        relief_kind: pb::ReliefKind::Illness.into(),
        channel: pb::Channel::DepartmentReferral.into(),
        event_date: format!("{YEAR}-02-01"),
        event_reference: format!("admission-{event}"),
        claimed_cost_yuan: "38000.00".into(),
        description: String::new(),
        submitted_by: "county office".into(),
    }
}
