//! Benchmark: screening a county-year of medical settlements (数据比对筛查),
//! fangpin against DuckDB on the very same CSV file.
//!
//! It enrols `FANGPIN_BENCH_PERSONS` persons (default 10^6) of county 130423
//! in households of one to five, writes `FANGPIN_BENCH_ROWS` (default 10^7)
//! settlement rows in the medical feed format of docs/feeds.md, and then
//! times, in the same run:
//!
//! - (a) fangpin: the release `fangpin feed import` streaming the file to a
//!   release `fangpind` (a child process on its own SQLite file; also on a
//!   fresh PostgreSQL database when `FANGPIN_TEST_DATABASE_URL` is set), plus
//!   the `RunScreening` RPC;
//! - (b) DuckDB: `screening_duckdb.py`, which reads the same file and the
//!   enrolment (`persons.csv`) and runs the same aggregation and thresholds.
//!
//! The candidate sets (household id and cost in fen) of fangpin, of DuckDB and
//! of the generator, which adds the costs up while writing the file, must be
//! equal, or the benchmark fails. Peak memory is the kernel's high-water mark
//! (`VmHWM` in /proc/PID/status): read once at the end for the server, polled
//! while it runs for the CLI and for Python (getrusage would need unsafe code,
//! which the workspace forbids).
//!
//! ```text
//! cargo build --release -p fangpin-server -p fangpin-cli   # fangpind and fangpin
//! pip install -r tests/benches/requirements.txt              # duckdb
//! cargo bench -p fangpin-tests --bench screening
//! FANGPIN_BENCH_ROWS=100000 FANGPIN_BENCH_PERSONS=10000 \
//!     cargo bench -p fangpin-tests --bench screening
//! FANGPIN_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p fangpin-tests --bench screening
//! ```
//!
//! Environment: `FANGPIN_BENCH_ROWS`, `FANGPIN_BENCH_PERSONS`,
//! `FANGPIN_BENCH_SEED` (default 2024), `FANGPIN_BENCH_DIR` (write the files
//! there and keep them; default a temporary directory), `FANGPIN_BENCH_PYTHON`
//! (default `python3`), `FANGPIN_BENCH_NO_SQLITE=1` (PostgreSQL only).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{Datelike, Days, NaiveDate, Utc};
use fangpin_domain::Fen;
use fangpin_domain::identity::{CountyCode, ResidentId};
use fangpin_domain::personal_data::{Column, PersonalDataKey, mask_account};
use fangpin_domain::policy::{Comparison, HouseholdType, Policy, ReliefKind, ReliefRule};
use fangpin_domain::screening::Window;
use fangpin_proto::tonic::transport::Channel;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::{
    enrollment_service_client::EnrollmentServiceClient, policy_service_client::PolicyServiceClient,
    screening_service_client::ScreeningServiceClient,
};
use fangpin_server::write_path::convert::policy_to_pb;
use fangpin_server::write_path::personal_data::{nonce, seal_person};
use fangpin_store::Store;
use fangpin_store::counties::{self, HouseholdRecord, PersonRecord};
use fangpin_tests::{PG_ENV, request_id};
use sqlx::{Connection, Executor};
use uuid::Uuid;

const COUNTY: &str = "130423";
const COUNTY_NAME: &str = "平山县";
const INSURER: &str = "中国人寿平山支公司";
const YEAR: i32 = 2024;
/// The screening date: its month ends the window (2024-01..2024-12).
const AS_OF: &str = "2024-12-31";
/// The service's date: after the year, so every 2024 settlement is in the past.
const TODAY: &str = "2025-01-15";

const DEFAULT_ROWS: u64 = 10_000_000;
const DEFAULT_PERSONS: u64 = 1_000_000;
const DEFAULT_SEED: u64 = 2024;

/// The shape of the data. About one settlement in ten is an in-patient stay,
/// and one stay in fifty a serious one (10,000 to 120,000 yuan), which is what
/// puts a few percent of the households over their threshold.
const INPATIENT_PER_MILLE: u64 = 100;
const SERIOUS_PER_MILLE: u64 = 20;
const UNSTABLE_ESCAPED_PER_MILLE: u64 = 300;
const MAX_HOUSEHOLD_SIZE: u64 = 5;
/// Rows appended at the end that bring a non-candidate household to exactly its
/// threshold, or to one fen below it: "at least" must be decided to the fen.
const BOUNDARY_ROWS: u64 = 20;
/// Distinct birth dates of the generated persons (from 1940-01-01); the
/// three-digit sequence number tells the persons born on one day apart.
const BIRTH_DAYS: u64 = 25_000;

const HOUSEHOLDS_PER_TRANSACTION: usize = 50_000;
const CANDIDATES_PAGE: u32 = 1_000;
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);
const MEDICAL_HEADER: &str =
    "id_number,settlement_date,inpatient,total_cost,reimbursed,out_of_pocket";

fn main() {
    let config = Config::from_env();
    // Before generating anything, so that a missing binary fails at once.
    // Without a backend (FANGPIN_BENCH_NO_SQLITE=1 and no PostgreSQL) only the
    // data and DuckDB run.
    let bins = (config.sqlite || config.postgres.is_some()).then(Binaries::find);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let (_temp, dir) = match std::env::var_os("FANGPIN_BENCH_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("create FANGPIN_BENCH_DIR");
            (None, dir)
        }
        None => {
            let temp = tempfile::tempdir().expect("temporary directory");
            let dir = temp.path().to_path_buf();
            (Some(temp), dir)
        }
    };
    println!(
        "== screening benchmark: {} rows, {} persons, seed {}, files in {}",
        config.rows,
        config.persons,
        config.seed,
        dir.display()
    );

    let county = CountyCode::parse(COUNTY).expect("valid county code");
    let policy = Policy::example(county, YEAR);
    let as_of: NaiveDate = AS_OF.parse().expect("valid date");
    let window = Window::ending(as_of, illness_window_months(&policy));

    let started = Instant::now();
    let enrolment = Enrolment::generate(config.persons, config.seed);
    let persons_csv = dir.join("persons.csv");
    enrolment.write_csv(&persons_csv);
    println!(
        "enrolment: {} persons in {} households ({} unstable_escaped) generated in {:.1} s",
        enrolment.persons.len(),
        enrolment.households.len(),
        enrolment
            .households
            .iter()
            .filter(|h| h.household_type == HouseholdType::UnstableEscaped)
            .count(),
        started.elapsed().as_secs_f64()
    );

    let medical_csv = dir.join("medical.csv");
    let started = Instant::now();
    let feed = generate_medical(&medical_csv, &enrolment, &policy, config.rows, config.seed);
    println!(
        "medical.csv: {} rows ({} in-patient), {:.1} MiB, written in {:.1} s; \
         the generator expects {} candidates",
        config.rows,
        feed.inpatient_rows,
        mib(feed.size_bytes),
        started.elapsed().as_secs_f64(),
        feed.expected.len()
    );

    let mut results = Vec::new();
    if let (true, Some(bins)) = (config.sqlite, &bins) {
        let db = dir.join("fangpin.db");
        for suffix in ["", "-wal", "-shm"] {
            let mut path = db.clone().into_os_string();
            path.push(suffix);
            // Left by an earlier run in FANGPIN_BENCH_DIR: start afresh.
            let _ = std::fs::remove_file(path);
        }
        let url = format!("sqlite://{}", db.display());
        results.push(run_fangpin(
            &runtime,
            "sqlite",
            &url,
            bins,
            &dir,
            &enrolment,
            &policy,
            &medical_csv,
        ));
    }
    if let (Some(admin_url), Some(bins)) = (&config.postgres, &bins) {
        let database = runtime.block_on(PostgresDatabase::create(admin_url));
        results.push(run_fangpin(
            &runtime,
            "postgres",
            &database.url,
            bins,
            &dir,
            &enrolment,
            &policy,
            &medical_csv,
        ));
    }

    let duck = run_duckdb(&config, &dir, &persons_csv, &medical_csv, &policy, &window);

    // Every set against the generator's, so that a mismatch names the side
    // that is wrong; then the one comparison the benchmark is about.
    let mut failures = Vec::new();
    failures.extend(differences(
        "generator",
        &feed.expected,
        "duckdb",
        &duck.candidates,
    ));
    for run in &results {
        failures.extend(differences(
            "generator",
            &feed.expected,
            run.backend,
            &run.candidates,
        ));
        failures.extend(differences(
            run.backend,
            &run.candidates,
            "duckdb",
            &duck.candidates,
        ));
    }

    print_table(&config, &feed, &results, &duck);
    if !failures.is_empty() {
        for line in failures.iter().take(40) {
            eprintln!("  {line}");
        }
        panic!(
            "the candidate sets differ ({} differences; the first are listed above)",
            failures.len()
        );
    }
    let sides: Vec<String> = results
        .iter()
        .map(|r| format!("fangpin on {}", r.backend))
        .chain(["DuckDB".into(), "the generator".into()])
        .collect();
    println!(
        "candidate sets equal ({}): {} households, compared by household id and cost in fen",
        sides.join(" = "),
        duck.candidates.len()
    );
}

// ---------------------------------------------------------------- settings

struct Config {
    rows: u64,
    persons: u64,
    seed: u64,
    sqlite: bool,
    postgres: Option<String>,
    python: String,
}

impl Config {
    fn from_env() -> Config {
        for arg in std::env::args().skip(1) {
            // cargo bench passes --bench to a harness-less target.
            if arg != "--bench" {
                eprintln!("ignoring argument {arg:?} (settings come from the environment)");
            }
        }
        let number = |name: &str, default: u64| -> u64 {
            std::env::var(name).map_or(default, |v| {
                v.replace('_', "")
                    .parse()
                    .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
            })
        };
        let config = Config {
            rows: number("FANGPIN_BENCH_ROWS", DEFAULT_ROWS),
            persons: number("FANGPIN_BENCH_PERSONS", DEFAULT_PERSONS),
            seed: number("FANGPIN_BENCH_SEED", DEFAULT_SEED),
            sqlite: std::env::var("FANGPIN_BENCH_NO_SQLITE")
                .unwrap_or_default()
                .is_empty(),
            postgres: std::env::var(PG_ENV).ok().filter(|u| !u.is_empty()),
            python: std::env::var("FANGPIN_BENCH_PYTHON").unwrap_or_else(|_| "python3".into()),
        };
        assert!(
            config.rows >= 2 * BOUNDARY_ROWS,
            "FANGPIN_BENCH_ROWS must be at least {}",
            2 * BOUNDARY_ROWS
        );
        assert!(
            (1..=BIRTH_DAYS * 1_000).contains(&config.persons),
            "FANGPIN_BENCH_PERSONS must be between 1 and {}",
            BIRTH_DAYS * 1_000
        );
        config
    }
}

/// The release binaries, which `cargo bench` does not build.
struct Binaries {
    server: PathBuf,
    cli: PathBuf,
}

impl Binaries {
    /// Beside this benchmark: it runs as target/release/deps/screening-HASH,
    /// and the binaries are target/release/fangpind and target/release/fangpin.
    fn find() -> Binaries {
        let exe = std::env::current_exe().expect("the benchmark's own path");
        let release = exe
            .parent()
            .and_then(Path::parent)
            .expect("the benchmark runs from target/<profile>/deps");
        let bins = Binaries {
            server: release.join("fangpind"),
            cli: release.join("fangpin"),
        };
        for bin in [&bins.server, &bins.cli] {
            assert!(
                bin.is_file(),
                "{} is missing: run `cargo build --release -p fangpin-server -p fangpin-cli` \
                 (with the same CARGO_TARGET_DIR) before this benchmark",
                bin.display()
            );
        }
        bins
    }
}

fn illness_window_months(policy: &Policy) -> u32 {
    let months: Vec<u32> = HouseholdType::ALL
        .iter()
        .map(|&t| illness_rule(policy, t).screening_window_months)
        .collect();
    assert!(
        months.windows(2).all(|w| w[0] == w[1]),
        "the benchmark assumes one illness window for every household type"
    );
    months[0]
}

fn illness_rule(policy: &Policy, household_type: HouseholdType) -> &ReliefRule {
    policy
        .rule(household_type, ReliefKind::Illness)
        .expect("the example policy has an illness rule for every household type")
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// ---------------------------------------------------------------- the data

/// splitmix64: a fixed stream per seed, so a run can be repeated exactly.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        Rng(seed ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = self.0;
        x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^ (x >> 31)
    }

    /// Uniform in 0..n (Lemire's multiply-shift; the bias is immaterial here).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in low..high.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low)
    }

    fn per_mille(&mut self, p: u64) -> bool {
        self.below(1_000) < p
    }
}

struct Household {
    id: Uuid,
    household_type: HouseholdType,
    village: String,
    /// Its persons are `first..first + size` of `Enrolment::persons`.
    first: usize,
    size: usize,
}

struct Enrolment {
    households: Vec<Household>,
    persons: Vec<ResidentId>,
    /// The household (index) of each person.
    household_of: Vec<u32>,
}

impl Enrolment {
    fn generate(persons: u64, seed: u64) -> Enrolment {
        let mut rng = Rng::new(seed, 1);
        let born_from = NaiveDate::from_ymd_opt(1940, 1, 1).expect("valid date");
        let ids: Vec<ResidentId> = (0..persons)
            .map(|i| {
                let born = born_from + Days::new(i % BIRTH_DAYS);
                let first17 = format!("{COUNTY}{}{:03}", born.format("%Y%m%d"), i / BIRTH_DAYS);
                ResidentId::from_first17(&first17).expect("a valid generated ID number")
            })
            .collect();
        let total = ids.len();
        let mut households = Vec::with_capacity(total / 3 + 1);
        let mut household_of = Vec::with_capacity(total);
        let mut first = 0;
        while first < total {
            let size = usize::try_from(rng.between(1, MAX_HOUSEHOLD_SIZE + 1))
                .expect("small")
                .min(total - first);
            let household_type = if rng.per_mille(UNSTABLE_ESCAPED_PER_MILLE) {
                HouseholdType::UnstableEscaped
            } else {
                HouseholdType::Marginal
            };
            // 20 townships of 25 villages.
            let village = format!("{COUNTY}{:03}{:03}", 101 + rng.below(20), 1 + rng.below(25));
            let mut bytes = [0u8; 16];
            bytes[..8].copy_from_slice(&rng.next().to_le_bytes());
            bytes[8..].copy_from_slice(&rng.next().to_le_bytes());
            let index = u32::try_from(households.len()).expect("fewer than 2^32 households");
            household_of.extend(std::iter::repeat_n(index, size));
            households.push(Household {
                id: uuid::Builder::from_random_bytes(bytes).into_uuid(),
                household_type,
                village,
                first,
                size,
            });
            first += size;
        }
        Enrolment {
            households,
            persons: ids,
            household_of,
        }
    }

    /// The enrolment as DuckDB reads it.
    fn write_csv(&self, path: &Path) {
        let file = File::create(path).expect("create persons.csv");
        let mut out = BufWriter::with_capacity(1 << 20, file);
        writeln!(out, "id_number,household_id,household_type").expect("write persons.csv");
        for h in &self.households {
            for person in &self.persons[h.first..h.first + h.size] {
                writeln!(
                    out,
                    "{},{},{}",
                    person.as_str(),
                    h.id,
                    h.household_type.as_str()
                )
                .expect("write persons.csv");
            }
        }
        out.flush().expect("write persons.csv");
    }
}

/// What the generator knows about the file it wrote.
struct Feed {
    size_bytes: u64,
    inpatient_rows: u64,
    /// Household id → illness cost in fen, for the households over threshold.
    expected: BTreeMap<String, i64>,
}

/// Whether `cost` crosses the household type's illness threshold.
fn is_candidate(policy: &Policy, household_type: HouseholdType, cost: i64) -> bool {
    let rule = illness_rule(policy, household_type);
    let threshold = rule.threshold.get();
    match rule.comparison {
        Comparison::AtLeast => cost >= threshold,
        Comparison::Above => cost > threshold,
    }
}

/// Writes `rows` settlement rows and adds up each household's in-patient
/// out-of-pocket costs as it goes. Every date lies in 2024, inside the window.
fn generate_medical(
    path: &Path,
    enrolment: &Enrolment,
    policy: &Policy,
    rows: u64,
    seed: u64,
) -> Feed {
    let mut rng = Rng::new(seed, 2);
    let year_start = NaiveDate::from_ymd_opt(YEAR, 1, 1).expect("valid date");
    let days: Vec<String> = year_start
        .iter_days()
        .take_while(|d| d.year() == YEAR)
        .map(|d| d.to_string())
        .collect();
    let days_in_year = u64::try_from(days.len()).expect("366 at most");
    let persons = u64::try_from(enrolment.persons.len()).expect("fits");

    let file = File::create(path).expect("create medical.csv");
    let mut out = BufWriter::with_capacity(1 << 20, file);
    writeln!(out, "{MEDICAL_HEADER}").expect("write medical.csv");
    let mut costs = vec![0i64; enrolment.households.len()];
    let mut line = Vec::with_capacity(128);
    let mut inpatient_rows = 0;
    for _ in 0..rows - BOUNDARY_ROWS {
        let person = usize::try_from(rng.below(persons)).expect("fits");
        let day = &days[usize::try_from(rng.below(days_in_year)).expect("fits")];
        let inpatient = rng.per_mille(INPATIENT_PER_MILLE);
        // Amounts in fen; the family pays a share of the bill.
        let (total, share) = if !inpatient {
            (rng.between(2_000, 80_000), rng.between(30, 61))
        } else if rng.per_mille(SERIOUS_PER_MILLE) {
            (rng.between(1_000_000, 12_000_000), rng.between(20, 46))
        } else {
            (rng.between(30_000, 500_000), rng.between(10, 41))
        };
        let own = total * share / 100;
        if inpatient {
            inpatient_rows += 1;
            costs[enrolment.household_of[person] as usize] += i64::try_from(own).expect("fits");
        }
        line.clear();
        push_row(
            &mut line,
            enrolment.persons[person].as_str(),
            day,
            inpatient,
            total,
            total - own,
            own,
        );
        out.write_all(&line).expect("write medical.csv");
    }

    // The boundary rows: households below their threshold brought to exactly
    // the threshold (candidates) or to one fen below it (not candidates),
    // alternately, starting from a random household.
    let households = enrolment.households.len();
    let start = usize::try_from(rng.below(households as u64)).expect("fits");
    let mut written = 0;
    for k in 0..households {
        if written == BOUNDARY_ROWS {
            break;
        }
        let index = (start + k) % households;
        let h = &enrolment.households[index];
        let threshold = illness_rule(policy, h.household_type).threshold.get();
        let gap = threshold - costs[index] - i64::try_from(written % 2).expect("0 or 1");
        if gap <= 0 {
            continue;
        }
        let own = u64::try_from(gap).expect("positive");
        let total = own + rng.below(100_000);
        line.clear();
        push_row(
            &mut line,
            enrolment.persons[h.first].as_str(),
            &days[usize::try_from(rng.below(days_in_year)).expect("fits")],
            true,
            total,
            total - own,
            own,
        );
        out.write_all(&line).expect("write medical.csv");
        costs[index] += gap;
        inpatient_rows += 1;
        written += 1;
    }
    assert_eq!(
        written, BOUNDARY_ROWS,
        "too few households below their threshold for the boundary rows"
    );
    out.flush().expect("write medical.csv");
    drop(out);

    let expected = enrolment
        .households
        .iter()
        .zip(&costs)
        .filter(|(h, cost)| is_candidate(policy, h.household_type, **cost))
        .map(|(h, cost)| (h.id.to_string(), *cost))
        .collect();
    Feed {
        size_bytes: std::fs::metadata(path).expect("medical.csv").len(),
        inpatient_rows,
        expected,
    }
}

/// One CSV line, formatted by hand: `format!` would dominate writing 10^7 rows.
fn push_row(
    line: &mut Vec<u8>,
    id: &str,
    date: &str,
    inpatient: bool,
    total: u64,
    reimbursed: u64,
    own: u64,
) {
    line.extend_from_slice(id.as_bytes());
    line.push(b',');
    line.extend_from_slice(date.as_bytes());
    line.extend_from_slice(if inpatient { b",1," } else { b",0," });
    push_yuan(line, total);
    line.push(b',');
    push_yuan(line, reimbursed);
    line.push(b',');
    push_yuan(line, own);
    line.push(b'\n');
}

/// Fen as yuan with two decimals: 123456 → "1234.56".
fn push_yuan(line: &mut Vec<u8>, fen: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut yuan = fen / 100;
    loop {
        at -= 1;
        digits[at] = b'0' + (yuan % 10) as u8;
        yuan /= 10;
        if yuan == 0 {
            break;
        }
    }
    line.extend_from_slice(&digits[at..]);
    line.push(b'.');
    line.push(b'0' + (fen / 10 % 10) as u8);
    line.push(b'0' + (fen % 10) as u8);
}

// ---------------------------------------------------------------- fangpin

struct FangpinRun {
    backend: &'static str,
    enrol: Duration,
    import: Duration,
    screening: Duration,
    server_idle_kib: u64,
    server_peak_kib: u64,
    cli_peak_kib: u64,
    candidates: BTreeMap<String, i64>,
}

impl FangpinRun {
    fn total(&self) -> Duration {
        self.import + self.screening
    }
}

#[allow(clippy::too_many_arguments)]
fn run_fangpin(
    runtime: &tokio::runtime::Runtime,
    backend: &'static str,
    url: &str,
    bins: &Binaries,
    dir: &Path,
    enrolment: &Enrolment,
    policy: &Policy,
    medical_csv: &Path,
) -> FangpinRun {
    println!("== {backend}");
    // Migrate before the server starts, so that its start is not timed with
    // the bulk load's, and so the load below finds the tables.
    let store = runtime
        .block_on(Store::connect(url))
        .expect("open and migrate the database");
    // One key for the bulk load below and the server: a key file, as in
    // production (development mode makes none for PostgreSQL).
    let key_file = dir.join(format!("personal-data-{backend}.key"));
    let key = write_key_file(&key_file);
    let server = Server::start(
        bins,
        url,
        &key_file,
        &dir.join(format!("fangpind-{backend}.log")),
    );
    let channel = runtime.block_on(server.connect());
    runtime.block_on(register(&channel, policy, enrolment));

    let started = Instant::now();
    runtime.block_on(enrol(&store, &key, enrolment));
    let enrol_time = started.elapsed();
    println!(
        "{backend}: enrolled {} persons in {} households through the store in {:.1} s",
        enrolment.persons.len(),
        enrolment.households.len(),
        enrol_time.as_secs_f64()
    );
    let server_idle_kib = vm_hwm_kib(server.pid()).expect("the server is running");

    // (a) the import, as a county office runs it: the CLI, its progress bar off.
    let started = Instant::now();
    let cli = Command::new(&bins.cli)
        .args(["feed", "import", "--county", COUNTY, "--year"])
        .arg(YEAR.to_string())
        .args(["--kind", "medical", "--quiet"])
        .arg(medical_csv)
        .env("FANGPIN_SERVER", server.url())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fangpin feed import");
    let watch = PeakWatch::start(cli.id());
    let output = cli.wait_with_output().expect("run fangpin feed import");
    let import = started.elapsed();
    let cli_peak_kib = watch.finish();
    print_indented("fangpin feed import", &output.stdout);
    print_indented("fangpin feed import (stderr)", &output.stderr);
    assert!(
        output.status.success(),
        "fangpin feed import failed ({}); server log: {}",
        output.status,
        server.log.display()
    );
    println!("{backend}: import {:.1} s", import.as_secs_f64());

    let (screening, candidates) = runtime.block_on(screen(&channel, enrolment));
    println!("{backend}: RunScreening {:.2} s", screening.as_secs_f64());
    let server_peak_kib = vm_hwm_kib(server.pid()).expect("the server is running");

    server.stop();
    runtime.block_on(store.close());
    FangpinRun {
        backend,
        enrol: enrol_time,
        import,
        screening,
        server_idle_kib,
        server_peak_kib,
        cli_peak_kib,
        candidates,
    }
}

/// The county and its policy, through the API as an office would register them.
async fn register(channel: &Channel, policy: &Policy, enrolment: &Enrolment) {
    let persons = u64::try_from(enrolment.persons.len()).expect("fits");
    EnrollmentServiceClient::new(channel.clone())
        .register_county(pb::RegisterCountyRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            name: COUNTY_NAME.into(),
            // The example policy insures 10% of the rural population: room for all.
            rural_population: (persons * 10).max(1_000),
            insurer: INSURER.into(),
        })
        .await
        .expect("register the county");
    PolicyServiceClient::new(channel.clone())
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(policy_to_pb(policy, 0, false)),
        })
        .await
        .expect("put the policy");
}

/// Enrols every household through the store's own insert, in a few large
/// transactions: EnrollHousehold one by one would take hours for 10^6 persons.
/// A fresh personal-data key file (mode 0600, as fangpind requires).
fn write_key_file(path: &Path) -> PersonalDataKey {
    let hex = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).expect("create the key file");
    writeln!(file, "{hex}").expect("write the key file");
    fangpin_server::write_path::personal_data::load_key_file(path)
        .expect("the key file just written")
}

async fn enrol(store: &Store, key: &PersonalDataKey, enrolment: &Enrolment) {
    let now = Utc::now();
    let relations = ["head", "spouse", "child", "child", "parent"];
    for chunk in enrolment.households.chunks(HOUSEHOLDS_PER_TRANSACTION) {
        let mut tx = store.begin_write(COUNTY).await.expect("begin");
        for h in chunk {
            let persons: Vec<PersonRecord> = enrolment.persons[h.first..h.first + h.size]
                .iter()
                .zip(relations)
                .enumerate()
                .map(|(k, (id, relation))| {
                    let (id_hash, id_sealed) =
                        seal_person(key, YEAR, &h.id.to_string(), id).expect("seal");
                    PersonRecord {
                        id_hash,
                        id_sealed,
                        name: format!("成员{k}"),
                        relation: relation.into(),
                    }
                })
                .collect();
            let head = &enrolment.persons[h.first];
            let account = format!("6217{:012}", h.first);
            let row = h.id.to_string();
            let record = HouseholdRecord {
                household_id: h.id,
                county_code: COUNTY.into(),
                policy_year: YEAR,
                village_code: h.village.clone(),
                household_type: h.household_type,
                head_name: persons[0].name.clone(),
                head_id_masked: head.masked(),
                head_id_sealed: key.seal(
                    Column::HouseholdHeadId,
                    &row,
                    head.as_str(),
                    nonce().expect("nonce"),
                ),
                bank_account_masked: mask_account(&account),
                bank_account_sealed: key.seal(
                    Column::HouseholdBankAccount,
                    &row,
                    &account,
                    nonce().expect("nonce"),
                ),
                persons: u32::try_from(h.size).expect("small"),
            };
            counties::insert_household(&mut tx, &record, &persons, now)
                .await
                .expect("enrol a household");
        }
        tx.commit().await.expect("commit the enrolment");
    }
}

/// RunScreening, timed; then every candidate of the run, checked for shape.
async fn screen(channel: &Channel, enrolment: &Enrolment) -> (Duration, BTreeMap<String, i64>) {
    let mut client = ScreeningServiceClient::new(channel.clone());
    let started = Instant::now();
    let run = client
        .run_screening(pb::RunScreeningRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            as_of: AS_OF.into(),
        })
        .await
        .expect("RunScreening")
        .into_inner();
    let elapsed = started.elapsed();
    println!(
        "  run {}: {} households screened, {} with costs, {} candidates, {} excluded by income, imports {:?}",
        run.run_id,
        run.households_screened,
        run.households_with_costs,
        run.candidates,
        run.excluded_by_income,
        run.import_ids
    );
    assert_eq!(
        run.households_screened,
        u64::try_from(enrolment.households.len()).expect("fits"),
        "every enrolled household is screened"
    );

    // The import the run used must have taken every row.
    for import_id in &run.import_ids {
        let import = client
            .get_feed_import(pb::GetFeedImportRequest {
                import_id: import_id.clone(),
            })
            .await
            .expect("GetFeedImport")
            .into_inner();
        assert!(
            import.rows_rejected == 0 && import.rows_accepted == import.rows_total,
            "the import rejected rows: {:?}, first errors {:?}",
            import.rejected_by_reason,
            import.errors
        );
    }

    let mut candidates = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_screening_candidates(pb::ListScreeningCandidatesRequest {
                run_id: run.run_id.clone(),
                page_size: CANDIDATES_PAGE,
                page_token,
            })
            .await
            .expect("ListScreeningCandidates")
            .into_inner();
        for c in page.candidates {
            assert_eq!(
                c.relief_kind,
                pb::ReliefKind::Illness as i32,
                "only medical data was imported: {c:?}"
            );
            let cost = Fen::parse_yuan(&c.cost_yuan)
                .unwrap_or_else(|e| panic!("candidate cost {:?}: {e}", c.cost_yuan))
                .get();
            if candidates.insert(c.household_id.clone(), cost).is_some() {
                panic!("household {} is listed twice", c.household_id);
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(
        u64::try_from(candidates.len()).expect("fits"),
        run.candidates,
        "the candidates listed = the run's count"
    );
    (elapsed, candidates)
}

/// A release `fangpind`, stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(bins: &Binaries, url: &str, key_file: &Path, log: &Path) -> Server {
        // A free port: bind port 0, note it and let it go. fangpind can also
        // take port 0, but would then only name its port in the log.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log_file = File::create(log).expect("create the server log");
        let child = Command::new(&bins.server)
            // Plaintext, no tokens: the benchmark measures the import.
            .arg("--dev")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database-url")
            .arg(url)
            .arg("--today")
            .arg(TODAY)
            .env("FANGPIN_PERSONAL_DATA_KEY_FILE", key_file)
            // The default configuration: ImportFeed has its own limit
            // (deadline.rs), not the 30 s request timeout.
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("start fangpind");
        Server {
            child,
            port,
            log: log.to_path_buf(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Connects once the server reports the policy service as serving.
    async fn connect(&self) -> Channel {
        use tonic_health::pb::{
            HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
        };
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        loop {
            if let Ok(channel) = Channel::from_shared(self.url())
                .expect("valid URI")
                .connect()
                .await
            {
                let status = HealthClient::new(channel.clone())
                    .check(HealthCheckRequest {
                        service: "fangpin.v1.PolicyService".into(),
                    })
                    .await
                    .map(|r| r.into_inner().status);
                if matches!(status, Ok(s) if s == ServingStatus::Serving as i32) {
                    return channel;
                }
            }
            assert!(
                Instant::now() < deadline,
                "fangpind did not become healthy within {} s; see {}",
                SERVER_START_TIMEOUT.as_secs(),
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn stop(mut self) {
        let terminated = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        if terminated {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = self.child.try_wait() {
                    if !status.success() {
                        eprintln!("fangpind exited with {status}; see {}", self.log.display());
                    }
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        // Drop kills it.
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fresh database on the PostgreSQL server of `admin_url`, as tests/support
/// makes them, dropped when this is dropped (also when the benchmark fails).
struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    async fn create(admin_url: &str) -> PostgresDatabase {
        sqlx::any::install_default_drivers();
        let name = format!("fangpin_bench_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::AnyConnection::connect(admin_url)
            .await
            .expect("connect to the PostgreSQL admin URL");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create the benchmark database");
        admin.close().await.expect("close the admin connection");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url, |(base, _)| base);
        PostgresDatabase {
            admin_url: admin_url.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    async fn drop_database(&self) -> Result<(), sqlx::Error> {
        let mut admin = sqlx::AnyConnection::connect(&self.admin_url).await?;
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .await?;
        admin.close().await
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        // Dropped outside any runtime (main is synchronous), so a small one of
        // its own can run the statement.
        let dropped = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(self.drop_database()).map_err(|e| e.to_string()));
        if let Err(e) = dropped {
            eprintln!("could not drop the benchmark database {}: {e}", self.name);
        }
    }
}

// ---------------------------------------------------------------- DuckDB

struct DuckRun {
    /// The Python process, interpreter start and `import duckdb` included.
    wall: Duration,
    /// Reading both files, the query and fetching its result, as the script
    /// measured it.
    query: Duration,
    peak_kib: u64,
    version: String,
    threads: String,
    candidates: BTreeMap<String, i64>,
}

fn run_duckdb(
    config: &Config,
    dir: &Path,
    persons_csv: &Path,
    medical_csv: &Path,
    policy: &Policy,
    window: &Window,
) -> DuckRun {
    println!("== duckdb");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/screening_duckdb.py");
    let out = dir.join("duckdb_candidates.csv");
    let mut command = Command::new(&config.python);
    command
        .arg(&script)
        .arg(persons_csv)
        .arg(medical_csv)
        .arg(window.first.to_string())
        .arg(window.last.to_string())
        .arg("--out")
        .arg(&out);
    // The thresholds of the policy fangpin screens with, not the script's defaults.
    for t in HouseholdType::ALL {
        let rule = illness_rule(policy, t);
        assert_eq!(
            rule.comparison,
            Comparison::AtLeast,
            "the DuckDB query compares with >="
        );
        command
            .arg("--threshold-fen")
            .arg(format!("{}={}", t.as_str(), rule.threshold.get()));
    }
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", config.python));
    let watch = PeakWatch::start(child.id());
    let output = child.wait_with_output().expect("run the DuckDB script");
    let wall = started.elapsed();
    let peak_kib = watch.finish();
    print_indented("screening_duckdb.py (stderr)", &output.stderr);
    assert!(
        output.status.success(),
        "the DuckDB script failed ({}); is duckdb installed? \
         pip install -r tests/benches/requirements.txt",
        output.status
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: serde_json::Value = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON summary from the DuckDB script: {stdout}"));
    let query = summary["query_seconds"]
        .as_f64()
        .map(Duration::from_secs_f64)
        .expect("query_seconds in the summary");
    let text = |key: &str| match &summary[key] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };

    let mut candidates = BTreeMap::new();
    let written = std::fs::read_to_string(&out).expect("read DuckDB's candidates");
    for line in written.lines() {
        let (household, cost) = line
            .split_once(',')
            .unwrap_or_else(|| panic!("bad line in {}: {line:?}", out.display()));
        let cost: i64 = cost
            .parse()
            .unwrap_or_else(|_| panic!("bad cost in {}: {line:?}", out.display()));
        candidates.insert(household.to_string(), cost);
    }
    println!(
        "duckdb {} ({} threads): query {:.2} s, process {:.2} s, {} candidates",
        text("duckdb_version"),
        text("threads"),
        query.as_secs_f64(),
        wall.as_secs_f64(),
        candidates.len()
    );
    DuckRun {
        wall,
        query,
        peak_kib,
        version: text("duckdb_version"),
        threads: text("threads"),
        candidates,
    }
}

// ---------------------------------------------------------------- reporting

/// The peak resident set of a running process, in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Polls a child's high-water mark until it exits. The last reading before
/// the exit is the peak, unless the process grew in its last milliseconds.
struct PeakWatch {
    done: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl PeakWatch {
    fn start(pid: u32) -> PeakWatch {
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            loop {
                match vm_hwm_kib(pid) {
                    Some(kib) => peak = peak.max(kib),
                    // An exited child (a zombie until it is waited for) has
                    // no VmHWM any more.
                    None if peak > 0 => break,
                    None => {}
                }
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        PeakWatch { done, thread }
    }

    fn finish(self) -> u64 {
        self.done.store(true, Ordering::Relaxed);
        self.thread.join().expect("the memory watch thread")
    }
}

fn print_indented(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    if text.trim().is_empty() {
        return;
    }
    println!("  {what}:");
    for line in text.lines() {
        println!("    {line}");
    }
}

/// Where two candidate sets differ, one line per household.
fn differences(
    a_name: &str,
    a: &BTreeMap<String, i64>,
    b_name: &str,
    b: &BTreeMap<String, i64>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (household, cost) in a {
        match b.get(household) {
            None => lines.push(format!(
                "{household}: {a_name} {} yuan, not a candidate for {b_name}",
                Fen::new(*cost)
            )),
            Some(other) if other != cost => lines.push(format!(
                "{household}: {a_name} {} yuan, {b_name} {} yuan",
                Fen::new(*cost),
                Fen::new(*other)
            )),
            Some(_) => {}
        }
    }
    for (household, cost) in b {
        if !a.contains_key(household) {
            lines.push(format!(
                "{household}: {b_name} {} yuan, not a candidate for {a_name}",
                Fen::new(*cost)
            ));
        }
    }
    lines
}

fn print_table(config: &Config, feed: &Feed, runs: &[FangpinRun], duck: &DuckRun) {
    if runs.is_empty() {
        // Nothing to compare DuckDB with: its figures were printed as it ran.
        return;
    }
    let secs = |d: Duration| format!("{:.2}", d.as_secs_f64());
    let kib = |k: u64| format!("{:.0}", k as f64 / 1024.0);
    let ratio = |a: Duration, b: Duration| format!("{:.1}x", a.as_secs_f64() / b.as_secs_f64());
    // One column per fangpin backend; the data and DuckDB's figures are the
    // same in every column.
    type Cell<'a> = Box<dyn Fn(&FangpinRun) -> String + 'a>;
    let metrics: Vec<(&str, Cell<'_>)> = vec![
        ("rows", Box::new(|_| config.rows.to_string())),
        ("persons", Box::new(|_| config.persons.to_string())),
        (
            "medical.csv MiB",
            Box::new(|_| format!("{:.1}", mib(feed.size_bytes))),
        ),
        ("enrolment load s (untimed)", Box::new(|r| secs(r.enrol))),
        ("fangpin import s (CLI wall)", Box::new(|r| secs(r.import))),
        ("fangpin screening s (RPC)", Box::new(|r| secs(r.screening))),
        ("fangpin total s", Box::new(|r| secs(r.total()))),
        ("DuckDB s (process wall)", Box::new(|_| secs(duck.wall))),
        ("DuckDB s (query in Python)", Box::new(|_| secs(duck.query))),
        (
            "fangpin / DuckDB process",
            Box::new(|r| ratio(r.total(), duck.wall)),
        ),
        (
            "fangpin / DuckDB query",
            Box::new(|r| ratio(r.total(), duck.query)),
        ),
        (
            "server peak MiB (idle before)",
            Box::new(|r| format!("{} ({})", kib(r.server_peak_kib), kib(r.server_idle_kib))),
        ),
        ("CLI peak MiB", Box::new(|r| kib(r.cli_peak_kib))),
        ("DuckDB (Python) peak MiB", Box::new(|_| kib(duck.peak_kib))),
        (
            "candidates fangpin / DuckDB",
            Box::new(|r| format!("{} / {}", r.candidates.len(), duck.candidates.len())),
        ),
    ];
    let cells: Vec<Vec<String>> = metrics
        .iter()
        .map(|(_, cell)| runs.iter().map(cell).collect())
        .collect();
    let label_width = metrics.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let widths: Vec<usize> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([r.backend.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();

    println!();
    println!(
        "screening benchmark, DuckDB {} with {} threads",
        duck.version, duck.threads
    );
    let line = |label: &str, values: &[String]| {
        let values: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:>w$}"))
            .collect();
        println!("| {label:label_width$} | {} |", values.join(" | "));
    };
    let backends: Vec<String> = runs.iter().map(|r| r.backend.to_string()).collect();
    line("", &backends);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&"-".repeat(label_width), &rule);
    for ((label, _), values) in metrics.iter().zip(&cells) {
        line(label, values);
    }
}
