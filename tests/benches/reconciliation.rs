//! Benchmark: the reconciliation report of one county-year with 10^6 ledger
//! entries, on SQLite and on PostgreSQL. The goal is a report in under one
//! second.
//!
//! For each backend it starts the real server (`TestServer`) over a fresh
//! database, registers the county and its policy through gRPC, bulk-loads a
//! year directly with SQL (households, persons, paid claims, ledger entries,
//! then the cached account balances exactly as migration 0002 backfills them),
//! and times `GetReconciliation` and `GetPoolBalance` through the generated
//! client. A report that does not tie, or whose figures differ from what was
//! loaded, aborts the benchmark.
//!
//! ```text
//! cargo bench -p fangpin-tests --bench reconciliation
//! FANGPIN_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p fangpin-tests --bench reconciliation
//! cargo bench -p fangpin-tests --bench reconciliation -- \
//!     --postgres postgres://postgres@127.0.0.1:5432/postgres [--no-sqlite] \
//!     [--entries N] [--runs N] [--pause-secs N]
//! ```
//!
//! Each backend also prints the median time of every store call the report
//! makes, on a connection of its own (no gRPC), to show where the time goes.
//! `--pause-secs N` keeps the loaded database (and the server) for N seconds
//! after the timings, printing its URL, so the queries can be examined by hand.

use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use fangpin_domain::Fen;
use fangpin_domain::identity::ResidentId;
use fangpin_domain::money::MAX_AMOUNT;
use fangpin_domain::personal_data::{Column, mask_account, person_row};
use fangpin_proto::v1 as pb;
use fangpin_store::timestamp;
use fangpin_tests::flow::{COUNTY, INSURER, put_policy};
use fangpin_tests::{PG_ENV, TestServer, date, request_id};
use sqlx::{AnyConnection, Connection, Executor};
use uuid::Uuid;

const YEAR: i32 = 2024;
const DEFAULT_ENTRIES: u64 = 1_000_000;
const DEFAULT_RUNS: usize = 5;
const GOAL: Duration = Duration::from_secs(1);

/// 30 townships of 10 villages each.
const TOWNSHIPS: usize = 30;
const VILLAGES_PER_TOWNSHIP: usize = 10;
const MAX_HOUSEHOLDS: usize = 100_000;
const RELIEF_KINDS: [&str; 6] = [
    "illness",
    "schooling",
    "accident",
    "industry",
    "school_entry",
    "income_drop",
];
/// Rows per multi-row INSERT (12,500 parameters at most, under SQLite's 32,766)
/// and rows per transaction.
const CLAIM_ROWS_PER_INSERT: usize = 500;
const ROWS_PER_INSERT: usize = 1_000;
const ROWS_PER_TRANSACTION: usize = 250_000;

struct Args {
    sqlite: bool,
    postgres: Option<String>,
    entries: u64,
    runs: usize,
    pause: Option<Duration>,
}

fn parse_args() -> Args {
    let mut args = Args {
        sqlite: true,
        postgres: std::env::var(PG_ENV).ok().filter(|u| !u.is_empty()),
        entries: DEFAULT_ENTRIES,
        runs: DEFAULT_RUNS,
        pause: None,
    };
    let mut it = std::env::args().skip(1);
    let number = |flag: &str, value: Option<String>| -> u64 {
        value
            .and_then(|v| v.replace('_', "").parse().ok())
            .unwrap_or_else(|| panic!("{flag} needs a number"))
    };
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
            "--entries" => args.entries = number("--entries", inline.or_else(|| it.next())),
            "--runs" => {
                args.runs = usize::try_from(number("--runs", inline.or_else(|| it.next())))
                    .expect("runs fit")
                    .max(1)
            }
            "--pause-secs" => {
                args.pause = Some(Duration::from_secs(number(
                    "--pause-secs",
                    inline.or_else(|| it.next()),
                )))
            }
            other => eprintln!("ignoring argument {other:?}"),
        }
    }
    assert!(
        args.entries >= 10,
        "--entries must be at least 10 to hold every kind of posting"
    );
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
            summaries.push(bench_backend("sqlite", None, &args).await);
        }
        if let Some(url) = &args.postgres {
            summaries.push(bench_backend("postgres", Some(url.clone()), &args).await);
        }
        println!();
        for line in summaries {
            println!("{line}");
        }
    });
}

// ---------------------------------------------------------------- the year

/// What one ledger entry is; amounts in fen.
#[derive(Clone, Copy)]
enum Slot {
    /// The county's premium installments at the start of the year, which keep
    /// the pool at or above zero throughout.
    OpeningPremium,
    Premium(i64),
    TopUp(i64),
    Payout(usize),
    Advance(usize),
}

struct Claim {
    id: Uuid,
    household: usize,
    kind: usize,
    amount: i64,
    /// An emergency advance that covered the whole assessed relief: the claim is
    /// paid with nothing left to pay out.
    advance: bool,
    sequence: u64,
}

struct Household {
    id: Uuid,
    village: String,
    head_id: String,
}

/// The year to load, and the figures the report must show.
struct Plan {
    slots: Vec<Slot>,
    claims: Vec<Claim>,
    households: Vec<Household>,
    opening_premium: i64,
    premiums: i64,
    top_ups: i64,
    relief: i64,
    advances: i64,
}

/// A cheap, fixed pseudo-random number: the same year on every run.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn fen_between(seed: u64, low: i64, high: i64) -> i64 {
    let span = u64::try_from(high - low).expect("low <= high");
    low + i64::try_from(mix(seed) % span).expect("fits")
}

const OPENING_PREMIUMS: u64 = 3;

fn plan(entries: u64) -> Plan {
    let n = usize::try_from(entries).expect("entry count fits");
    let top_up_slots = [entries / 4, entries / 2, entries * 3 / 4];
    let mut slots = Vec::with_capacity(n);
    let mut claims: Vec<(u64, bool)> = Vec::new();
    let (mut premiums, mut top_ups, mut relief, mut advances) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..entries {
        let slot = if i < OPENING_PREMIUMS {
            Slot::OpeningPremium
        } else if top_up_slots.contains(&i) {
            let amount = 10_000_000; // 100,000 yuan from county finance
            top_ups += amount;
            Slot::TopUp(amount)
        } else {
            // Of every 20 entries: 9 relief payouts, 1 emergency advance and 10
            // premium receipts (townships paying in their share).
            match i % 20 {
                0..=8 => {
                    claims.push((i + 1, false));
                    Slot::Payout(claims.len() - 1)
                }
                9 => {
                    claims.push((i + 1, true));
                    Slot::Advance(claims.len() - 1)
                }
                _ => {
                    let amount = fen_between(i, 5_000, 100_000); // 50 to 1,000 yuan
                    premiums += amount;
                    Slot::Premium(amount)
                }
            }
        };
        slots.push(slot);
    }
    let households = (claims.len() / 5).clamp(1, MAX_HOUSEHOLDS);
    let villages = TOWNSHIPS * VILLAGES_PER_TOWNSHIP;
    let households: Vec<Household> = (0..households)
        .map(|h| {
            let v = h % villages;
            let village = format!(
                "{COUNTY}{:03}{:03}",
                100 + v / VILLAGES_PER_TOWNSHIP,
                200 + v % VILLAGES_PER_TOWNSHIP
            );
            let birth = NaiveDate::from_ymd_opt(1950, 1, 1).expect("date")
                + Days::new(u64::try_from(h / 1000).expect("fits"));
            let first17 = format!("{COUNTY}{}{:03}", birth.format("%Y%m%d"), h % 1000);
            let head_id = ResidentId::from_first17(&first17)
                .expect("valid resident id")
                .as_str()
                .to_string();
            Household {
                id: Uuid::now_v7(),
                village,
                head_id,
            }
        })
        .collect();
    let claims: Vec<Claim> = claims
        .into_iter()
        .enumerate()
        .map(|(k, (sequence, advance))| {
            let seed = u64::try_from(k).expect("fits");
            let amount = if advance {
                fen_between(seed ^ 0xAD, 100_000, 1_000_000) // 1,000 to 10,000 yuan
            } else {
                fen_between(seed ^ 0x5E, 50_000, 6_000_000) // 500 to 60,000 yuan
            };
            if advance {
                advances += amount;
            } else {
                relief += amount;
            }
            Claim {
                id: Uuid::now_v7(),
                household: (k * 7919 + 13) % households.len(),
                kind: usize::try_from(mix(seed ^ 0x4B1D) % 6).expect("fits"),
                amount,
                advance,
                sequence,
            }
        })
        .collect();
    // The opening installments cover every payout and advance of the year, and
    // a million yuan besides.
    let per_installment = (relief + advances) / 3 + 1 + 100_000_000;
    assert!(Fen::new(per_installment) <= MAX_AMOUNT);
    premiums += per_installment * 3;
    Plan {
        slots,
        claims,
        households,
        opening_premium: per_installment,
        premiums,
        top_ups,
        relief,
        advances,
    }
}

/// Entries are spread evenly over the (Beijing) year, in sequence order.
struct Clock {
    start: DateTime<Utc>,
    step_ms: i64,
}

impl Clock {
    fn new(entries: u64) -> Clock {
        let start = Utc
            .with_ymd_and_hms(YEAR, 1, 1, 1, 0, 0)
            .single()
            .expect("start");
        let end = Utc
            .with_ymd_and_hms(YEAR, 12, 31, 9, 0, 0)
            .single()
            .expect("end");
        let step_ms =
            (end - start).num_milliseconds() / i64::try_from(entries).expect("fits").max(1);
        assert!(step_ms > 0, "too many entries for one year in milliseconds");
        Clock { start, step_ms }
    }

    fn at(&self, sequence: u64) -> DateTime<Utc> {
        self.start
            + chrono::Duration::milliseconds(self.step_ms * i64::try_from(sequence).expect("fits"))
    }
}

// ---------------------------------------------------------------- loading

type Query = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// A multi-row INSERT. SQLite gets anonymous `?` parameters: it looks each
/// named `$N` up among those seen so far while preparing, which is quadratic in
/// a statement of thousands of parameters.
fn insert_sql(sqlite: bool, table: &str, columns: &[&str], rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
    let mut p = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..columns.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            p += 1;
            if sqlite {
                sql.push('?');
            } else {
                sql.push_str(&format!("${p}"));
            }
        }
        sql.push(')');
    }
    sql
}

/// Inserts `rows` rows with multi-row INSERTs of `per_insert` rows, committing
/// every `ROWS_PER_TRANSACTION` rows; `bind` binds row `i`'s values in column order.
async fn insert_all(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[&str],
    rows: usize,
    per_insert: usize,
    mut bind: impl FnMut(Query, usize) -> Query,
) {
    let started = Instant::now();
    let sqlite = conn.backend_name().eq_ignore_ascii_case("sqlite");
    let full = insert_sql(sqlite, table, columns, per_insert);
    let mut done = 0;
    while done < rows {
        let mut tx = conn.begin().await.expect("begin");
        let end = rows.min(done + ROWS_PER_TRANSACTION);
        while done < end {
            let batch = per_insert.min(end - done);
            let sql = if batch == per_insert {
                full.clone()
            } else {
                insert_sql(sqlite, table, columns, batch)
            };
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for i in done..done + batch {
                q = bind(q, i);
            }
            q.execute(&mut *tx)
                .await
                .unwrap_or_else(|e| panic!("insert into {table}: {e}"));
            done += batch;
        }
        tx.commit().await.expect("commit");
    }
    eprintln!(
        "  {table}: {rows} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn load(url: &str, plan: &Plan, clock: &Clock) {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url)
        .await
        .expect("connect to the server's database");
    if url.starts_with("sqlite:") {
        // As the server's connections: every foreign key is checked.
        conn.execute("PRAGMA foreign_keys = ON")
            .await
            .expect("pragma");
        conn.execute("PRAGMA busy_timeout = 10000")
            .await
            .expect("pragma");
    }
    let year = i64::from(YEAR);
    let enrolled = timestamp(clock.start);

    // Sealed under a key of the bench's own: the reconciliation never opens
    // them, and the rows only need the shape the schema checks.
    let key = fangpin_server::write_path::personal_data::random_key();
    let nonce = || fangpin_server::write_path::personal_data::nonce().expect("nonce");
    let masked_id = |id: &str| format!("{}********{}", &id[..6], &id[14..]);
    insert_all(
        &mut conn,
        "households",
        &[
            "household_id",
            "county_code",
            "policy_year",
            "village_code",
            "household_type",
            "head_name",
            "head_id_masked",
            "head_id_sealed",
            "bank_account_masked",
            "bank_account_sealed",
            "persons",
            "created_at",
        ],
        plan.households.len(),
        ROWS_PER_INSERT,
        |q, i| {
            let h = &plan.households[i];
            q.bind(h.id.to_string())
                .bind(COUNTY)
                .bind(year)
                .bind(h.village.clone())
                .bind(if i % 3 == 0 {
                    "marginal"
                } else {
                    "unstable_escaped"
                })
                .bind(format!("户主{i}"))
                .bind(masked_id(&h.head_id))
                .bind(key.seal(
                    Column::HouseholdHeadId,
                    &h.id.to_string(),
                    &h.head_id,
                    nonce(),
                ))
                .bind(mask_account(&format!("6217{i:012}")))
                .bind(key.seal(
                    Column::HouseholdBankAccount,
                    &h.id.to_string(),
                    &format!("6217{i:012}"),
                    nonce(),
                ))
                .bind(1i64)
                .bind(enrolled.clone())
        },
    )
    .await;

    insert_all(
        &mut conn,
        "persons",
        &[
            "policy_year",
            "id_hash",
            "id_sealed",
            "household_id",
            "county_code",
            "name",
            "relation",
        ],
        plan.households.len(),
        ROWS_PER_INSERT,
        |q, i| {
            let h = &plan.households[i];
            let id = ResidentId::parse(&h.head_id).expect("a valid ID number");
            q.bind(year)
                .bind(key.lookup_hash(&id).to_vec())
                .bind(key.seal(
                    Column::PersonId,
                    &person_row(YEAR, &h.id.to_string()),
                    &h.head_id,
                    nonce(),
                ))
                .bind(h.id.to_string())
                .bind(COUNTY)
                .bind(format!("户主{i}"))
                .bind("head")
        },
    )
    .await;

    let year_start = NaiveDate::from_ymd_opt(YEAR, 1, 1).expect("date");
    insert_all(
        &mut conn,
        "claims",
        &[
            "claim_id",
            "county_code",
            "policy_year",
            "policy_version",
            "household_id",
            "village_code",
            "relief_kind",
            "channel",
            "state",
            "event_date",
            "event_reference",
            "claimed_cost_fen",
            "description",
            "submitted_by",
            "intake_date",
            "survey_deadline",
            "surveyor",
            "assessed_amount_fen",
            "advance_fen",
            "payout_fen",
            "publicity_opens_on",
            "publicity_last_day",
            "recommendation_reason",
            "created_at",
            "updated_at",
        ],
        plan.claims.len(),
        CLAIM_ROWS_PER_INSERT,
        |q, i| {
            let c = &plan.claims[i];
            let household = &plan.households[c.household];
            let paid_at = clock.at(c.sequence);
            // Event, intake, publicity: weeks before the money moved, in the year.
            let before = |days: u64| {
                let d = (paid_at + chrono::Duration::hours(8)).date_naive() - Days::new(days);
                d.max(year_start)
            };
            let (event, intake, opens, last) = (before(40), before(35), before(20), before(14));
            let created = Utc
                .from_utc_datetime(&intake.and_hms_opt(1, 0, 0).expect("time"))
                .min(paid_at);
            let channel = if c.advance {
                "emergency"
            } else if i % 2 == 0 {
                "village_application"
            } else {
                "department_referral"
            };
            q.bind(c.id.to_string())
                .bind(COUNTY)
                .bind(year)
                .bind(1i64)
                .bind(household.id.to_string())
                .bind(household.village.clone())
                .bind(RELIEF_KINDS[c.kind])
                .bind(channel)
                .bind("paid")
                .bind(event.to_string())
                .bind(format!("event-{i}"))
                .bind(c.amount * 3)
                .bind("")
                .bind("county office")
                .bind(intake.to_string())
                .bind((intake + Days::new(15)).to_string())
                .bind(format!("surveyor-{}", i % 40))
                .bind(c.amount)
                .bind(if c.advance { c.amount } else { 0 })
                .bind(if c.advance { 0 } else { c.amount })
                .bind(opens.to_string())
                .bind(last.to_string())
                .bind("meets the income and expenditure conditions")
                .bind(timestamp(created))
                .bind(timestamp(paid_at))
        },
    )
    .await;

    insert_all(
        &mut conn,
        "ledger_entries",
        &[
            "entry_id",
            "county_code",
            "policy_year",
            "sequence",
            "kind",
            "debit_account",
            "credit_account",
            "amount_fen",
            "claim_id",
            "reference",
            "request_id",
            "posted_at",
            "relief_kind",
            "township_code",
        ],
        plan.slots.len(),
        ROWS_PER_INSERT,
        |q, i| {
            let sequence = u64::try_from(i).expect("fits") + 1;
            // The keys the reconciliation groups by, as post_for_claim writes them.
            let keys = |k: usize| {
                let c = &plan.claims[k];
                let village = &plan.households[c.household].village;
                (Some(RELIEF_KINDS[c.kind]), Some(village[..9].to_string()))
            };
            let (relief_kind, township) = match plan.slots[i] {
                Slot::Payout(k) | Slot::Advance(k) => keys(k),
                _ => (None, None),
            };
            let (kind, debit, credit, amount, claim, reference) = match plan.slots[i] {
                Slot::OpeningPremium => (
                    "premium_received",
                    "fund_pool",
                    "premium_income",
                    plan.opening_premium,
                    None,
                    format!("premium {YEAR} installment {sequence}"),
                ),
                Slot::Premium(a) => (
                    "premium_received",
                    "fund_pool",
                    "premium_income",
                    a,
                    None,
                    format!("premium {YEAR} township receipt {sequence}"),
                ),
                Slot::TopUp(a) => (
                    "top_up_received",
                    "fund_pool",
                    "county_top_up",
                    a,
                    None,
                    format!("county top-up {sequence}"),
                ),
                Slot::Payout(k) => (
                    "relief_payout",
                    "relief_paid",
                    "fund_pool",
                    plan.claims[k].amount,
                    Some(plan.claims[k].id.to_string()),
                    format!("relief claim {}", plan.claims[k].id),
                ),
                Slot::Advance(k) => (
                    "emergency_advance",
                    "emergency_advances",
                    "fund_pool",
                    plan.claims[k].amount,
                    Some(plan.claims[k].id.to_string()),
                    format!("advance claim {}", plan.claims[k].id),
                ),
            };
            q.bind(Uuid::now_v7().to_string())
                .bind(COUNTY)
                .bind(year)
                .bind(i64::try_from(sequence).expect("fits"))
                .bind(kind)
                .bind(debit)
                .bind(credit)
                .bind(amount)
                .bind(claim)
                .bind(reference)
                .bind(Uuid::new_v4().to_string())
                .bind(timestamp(clock.at(sequence)))
                .bind(relief_kind)
                .bind(township)
        },
    )
    .await;

    // The cached totals, exactly as migration 0002 backfills them, for this
    // county and year.
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO account_balances (county_code, policy_year, account, debits_fen, credits_fen) \
         SELECT county_code, policy_year, account, SUM(debit_fen), SUM(credit_fen) FROM ( \
             SELECT county_code, policy_year, debit_account AS account, amount_fen AS debit_fen, 0 AS credit_fen \
               FROM ledger_entries WHERE county_code = $1 AND policy_year = $2 \
             UNION ALL \
             SELECT county_code, policy_year, credit_account AS account, 0 AS debit_fen, amount_fen AS credit_fen \
               FROM ledger_entries WHERE county_code = $1 AND policy_year = $2 \
         ) sides GROUP BY county_code, policy_year, account",
    )
    .bind(COUNTY)
    .bind(year)
    .execute(&mut conn)
    .await
    .expect("fill account_balances");
    eprintln!(
        "  account_balances: filled in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // A steady state, not a fresh bulk load: on PostgreSQL autovacuum would have
    // vacuumed and analysed these tables during the year; on SQLite the WAL is
    // checkpointed (the server never runs ANALYZE, so neither does this).
    let started = Instant::now();
    if url.starts_with("sqlite:") {
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .expect("checkpoint");
        eprintln!(
            "  wal_checkpoint(TRUNCATE) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    } else {
        conn.execute(
            "VACUUM (ANALYZE) households, persons, claims, ledger_entries, account_balances",
        )
        .await
        .expect("vacuum analyze");
        eprintln!(
            "  VACUUM (ANALYZE) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    conn.close().await.expect("close");
}

// ---------------------------------------------------------------- timing

struct Timings {
    sorted: Vec<Duration>,
}

impl Timings {
    fn new(mut all: Vec<Duration>) -> Timings {
        all.sort();
        Timings { sorted: all }
    }
    fn min(&self) -> Duration {
        self.sorted[0]
    }
    fn max(&self) -> Duration {
        self.sorted[self.sorted.len() - 1]
    }
    fn median(&self) -> Duration {
        let n = self.sorted.len();
        if n % 2 == 1 {
            self.sorted[n / 2]
        } else {
            (self.sorted[n / 2 - 1] + self.sorted[n / 2]) / 2
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn bench_backend(name: &str, postgres: Option<String>, args: &Args) -> String {
    println!("== {name}: {} ledger entries", args.entries);
    let started = Instant::now();
    let plan = plan(args.entries);
    let clock = Clock::new(args.entries);
    let s = TestServer::start_on(date(YEAR, 12, 31), postgres).await;
    s.enrollment()
        .register_county(pb::RegisterCountyRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            name: "涉县".into(),
            rural_population: 2_000_000,
            insurer: INSURER.into(),
        })
        .await
        .expect("register the county");
    put_policy(&s, YEAR).await;
    eprintln!(
        "  {} households, {} paid claims ({} relief payouts, {} emergency advances)",
        plan.households.len(),
        plan.claims.len(),
        plan.claims.iter().filter(|c| !c.advance).count(),
        plan.claims.iter().filter(|c| c.advance).count()
    );
    load(s.database_url(), &plan, &clock).await;
    let load_time = started.elapsed();
    println!("{name}: loaded in {:.1} s", load_time.as_secs_f64());

    let request = || pb::PoolRequest {
        county_code: COUNTY.into(),
        policy_year: YEAR,
    };
    let mut ledger = s.ledger();

    // Reconciliation: one warm-up call, then the timed ones.
    let report = ledger
        .get_reconciliation(request())
        .await
        .expect("warm-up reconciliation")
        .into_inner();
    check_report(&report, &plan, args.entries);
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let t = Instant::now();
        let report = ledger
            .get_reconciliation(request())
            .await
            .expect("reconciliation")
            .into_inner();
        times.push(t.elapsed());
        check_report(&report, &plan, args.entries);
    }
    let recon = Timings::new(times);
    println!(
        "{name}: GetReconciliation over {} entries (ties: {}): min {:.0} ms, median {:.0} ms, max {:.0} ms",
        report.entries,
        report.ties,
        ms(recon.min()),
        ms(recon.median()),
        ms(recon.max())
    );

    // The pool balance from the cached totals.
    let pool = ledger
        .get_pool_balance(request())
        .await
        .expect("warm-up pool balance")
        .into_inner();
    assert_eq!(
        pool.pool_yuan, report.pool_yuan,
        "cached pool = summed pool"
    );
    assert_eq!(pool.entries, args.entries);
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let t = Instant::now();
        ledger
            .get_pool_balance(request())
            .await
            .expect("pool balance");
        times.push(t.elapsed());
    }
    let balance = Timings::new(times);
    println!(
        "{name}: GetPoolBalance (cached): min {:.1} ms, median {:.1} ms, max {:.1} ms",
        ms(balance.min()),
        ms(balance.median()),
        ms(balance.max())
    );

    per_query(name, s.database_url(), args.runs).await;

    if let Some(pause) = args.pause {
        println!(
            "{name}: database {} kept for {} s",
            s.database_url(),
            pause.as_secs()
        );
        tokio::time::sleep(pause).await;
    }
    s.stop().await;

    let met = if recon.median() < GOAL {
        "met"
    } else {
        "NOT met"
    };
    format!(
        "{name}: {} entries, reconciliation median {:.0} ms (min {:.0}, max {:.0}), \
         pool balance median {:.1} ms; goal < {} ms: {met} (load {:.0} s)",
        report.entries,
        ms(recon.median()),
        ms(recon.min()),
        ms(recon.max()),
        ms(balance.median()),
        GOAL.as_millis(),
        load_time.as_secs_f64()
    )
}

/// Times each store call the reconciliation makes, on a pooled connection
/// configured as the server's are, to show where the time goes (without gRPC).
async fn per_query(name: &str, url: &str, runs: usize) {
    use fangpin_store::ledger as store;
    let st = fangpin_store::Store::connect(url)
        .await
        .expect("open the store");
    let mut pooled = st.read().await.expect("a read connection");
    let conn: &mut AnyConnection = &mut pooled;
    let mut lines = Vec::new();
    for step in 0..5 {
        let mut times = Vec::with_capacity(runs);
        // One warm-up, then the timed runs.
        for run in 0..=runs {
            let c = &mut *conn;
            let t = Instant::now();
            let label = match step {
                0 => {
                    store::balances_from_entries(c, COUNTY, YEAR, None)
                        .await
                        .expect("query");
                    "balances_from_entries"
                }
                1 => {
                    store::balances(c, COUNTY, YEAR).await.expect("query");
                    "balances (cached)"
                }
                2 => {
                    store::pending_totals(c, COUNTY, YEAR).await.expect("query");
                    "pending_totals"
                }
                3 => {
                    store::year_state(c, COUNTY, YEAR).await.expect("query");
                    "year_state"
                }
                _ => {
                    store::breakdown_cells(c, COUNTY, YEAR)
                        .await
                        .expect("query");
                    "breakdown cells (relief kind x township)"
                }
            };
            if run > 0 {
                times.push(t.elapsed());
            }
            if run == runs {
                lines.push(format!(
                    "{label} {:.1} ms",
                    ms(Timings::new(std::mem::take(&mut times)).median())
                ));
            }
        }
    }
    drop(pooled);
    st.close().await;
    println!("{name}: per query (median): {}", lines.join(", "));
}

/// The report must tie and show exactly the year that was loaded.
fn check_report(r: &pb::Reconciliation, plan: &Plan, entries: u64) {
    assert!(r.ties, "the reconciliation does not tie: {r:?}");
    assert_eq!(r.entries, entries, "entry count");
    let yuan = |fen: i64| Fen::new(fen).to_string();
    assert_eq!(r.premiums_yuan, yuan(plan.premiums), "premiums");
    assert_eq!(r.top_ups_yuan, yuan(plan.top_ups), "top-ups");
    assert_eq!(r.relief_yuan, yuan(plan.relief), "relief");
    assert_eq!(r.advances_yuan, yuan(plan.advances), "advances");
    let pool = plan.premiums + plan.top_ups - plan.relief - plan.advances;
    assert!(pool >= 0);
    assert_eq!(r.pool_yuan, yuan(pool), "pool");
    assert_eq!(r.by_relief_kind.len(), RELIEF_KINDS.len(), "relief kinds");
    assert_eq!(r.by_township.len(), TOWNSHIPS, "townships");
    for lines in [&r.by_relief_kind, &r.by_township] {
        let claims: u64 = lines.iter().map(|l| l.claims).sum();
        assert_eq!(claims, plan.claims.len() as u64, "claims in the breakdown");
    }
}
