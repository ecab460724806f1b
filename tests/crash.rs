//! The crash proof: real `fangpind` processes killed with SIGKILL while
//! clients pay, fail, return and retry payouts, race duplicate payments and
//! advances under different request ids, enroll, take claims in, post
//! premiums and top-ups, and stream department feeds (one file raced under
//! two request ids). Every failure is retried under the same request id
//! through another server, as a client that lost its answer must. At the
//! end the ledger, the claims, the idempotency records and the audit chain
//! are checked through the RPCs and in SQL (`check`).
//!
//! - SQLite (the default): one server on the file, killed and restarted;
//!   its fault phase runs on the real clock (no `--today`).
//! - PostgreSQL (`FANGPIN_TEST_DATABASE_URL`): three servers on one
//!   database, killed and restarted, the servers' sessions terminated with
//!   `pg_terminate_backend`, and PostgreSQL itself restarted once where the
//!   machine allows it (the test says so when it cannot). Its fault phase
//!   pins the date.
//!
//! - A full disk (SQLite on a size-limited tmpfs, `FANGPIN_REQUIRE_DISK_FULL`
//!   makes it mandatory): the same clients while the filesystem fills up
//!   mid-write; writes are refused with RESOURCE_EXHAUSTED and health turns
//!   NOT_SERVING; once space is freed the same server goes on, without a
//!   restart, and the same checks hold.
//!
//! Seeded: the seed decides the workload, the clients' choices (server,
//! deadline, hedging) and the fault schedule; it is printed at the start and
//! in every failure, and `FANGPIN_CRASH_SEED=N` replays it. Processes and
//! the network still interleave as they will, so a replay repeats the
//! schedule, not every interleaving. `FANGPIN_CRASH_CLOCK=live|pinned`
//! overrides the clock of the fault phase. Bounded: the fault phase lasts
//! `FAULT_PHASE`, the whole test well under two minutes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fangpin_proto::prost::Message;
use fangpin_proto::tonic::transport::{Channel, Endpoint};
use fangpin_proto::tonic::{Code, Request, Status};
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::{
    claim_service_client::ClaimServiceClient, enrollment_service_client::EnrollmentServiceClient,
    ledger_service_client::LedgerServiceClient, payout_service_client::PayoutServiceClient,
    policy_service_client::PolicyServiceClient, publicity_service_client::PublicityServiceClient,
    screening_service_client::ScreeningServiceClient, survey_service_client::SurveyServiceClient,
};
use fangpin_server::write_path::convert::policy_to_pb;
use fangpin_tests::daemon::{Daemon, fangpind_command};
use fangpin_tests::{PG_ENV, request_id, resident_id};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use sha2::Digest;
use sqlx::{AnyConnection, Connection, Executor, Row};

const COUNTY: &str = "130426";
const VILLAGE: &str = "130426100201";
const INSURER: &str = "中国人寿涉县支公司";
const SURVEYOR: &str = "surveyor-li";
const YEAR: i32 = 2026;
/// The setup's dates: intake and publicity opened, then ten days on.
const INTAKE_DAY: &str = "2026-03-02";
const FILING_DAY: &str = "2026-03-13";
/// The fault phase's date when it is pinned.
const PAYING_DAY: &str = "2026-03-16";
/// The relief the example policy gives an unstable household's illness
/// cost of 100,000.00 yuan (tests/lifecycle.rs works it out by hand).
const RELIEF: &str = "61750.00";
const COST: &str = "100000.00";

/// How long the servers are killed and restarted.
const FAULT_PHASE: Duration = Duration::from_secs(40);
/// How long one operation may keep failing before the test gives up: a
/// server that never comes back, or a write that never lands.
const OPERATION_LIMIT: Duration = Duration::from_secs(60);

// How many claims of each story.
const PAID: usize = 16;
const FAILED_BEFORE_PAYING: usize = 8;
const RETURNED_AFTER_PAYING: usize = 8;
const ADVANCED: usize = 10;
const TAKEN_IN: usize = 16;
const PREMIUMS: usize = 40;
const TOP_UPS: usize = 40;
const ABANDONED_TOP_UPS: usize = 20;
const IMPORTS: u32 = 6;
const RACING_IMPORTS: u32 = 4;
/// Rows per imported feed, and bytes per streamed message.
const IMPORT_ROWS: u32 = 40;
const IMPORT_CHUNK_BYTES: usize = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_killed_mid_call_lose_nothing_and_pay_once() {
    let _one_at_a_time = one_at_a_time().await;
    let seed = seed("crash test");
    let started = Instant::now();
    let postgres = std::env::var(PG_ENV).ok().filter(|u| !u.is_empty());
    let live_clock = match std::env::var("FANGPIN_CRASH_CLOCK").as_deref() {
        Ok("live") => true,
        Ok("pinned") => false,
        Ok(other) => panic!("FANGPIN_CRASH_CLOCK is live or pinned, not {other}"),
        Err(_) => postgres.is_none(),
    };
    let mut cluster = Cluster::create(postgres, seed).await;
    let plan = setup(
        &mut cluster,
        if live_clock { None } else { Some(PAYING_DAY) },
    )
    .await;
    eprintln!(
        "setup done in {:?}: {} servers on {}, fault phase on the {} clock",
        started.elapsed(),
        cluster.replicas.len(),
        cluster.backend_name(),
        if live_clock { "live" } else { "pinned" }
    );

    let history = Arc::new(History::default());
    let report = run_fault_phase(&mut cluster, &plan, &history, seed).await;
    cluster.restart_down().await;
    eprintln!("{report}");

    check(&cluster, &plan, &history).await;
    let codes = history.codes.lock().expect("lock").clone();
    // A lost connection (a killed server, a terminated session, PostgreSQL
    // restarting) is UNAVAILABLE: a fault to retry, never an internal error.
    assert!(
        !codes.contains_key("Internal"),
        "a fault was answered INTERNAL: {codes:?}"
    );
    eprintln!(
        "crash test passed in {:?}: {} operations acknowledged, client-visible codes {codes:?}",
        started.elapsed(),
        history.acknowledged.lock().expect("lock").len(),
    );
    cluster.stop().await;
}

/// The same workload on SQLite while its filesystem runs out of space.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_whole_and_they_land_once_space_is_freed() {
    if std::env::var(PG_ENV).is_ok_and(|u| !u.is_empty()) {
        eprintln!(
            "disk-full test: runs in the SQLite pass only (a size-limited filesystem under \
             the SQLite file); a PostgreSQL server's data directory is not the test's to fill"
        );
        return;
    }
    let _one_at_a_time = one_at_a_time().await;
    let seed = seed("disk-full test");
    let started = Instant::now();
    let mut cluster = match Cluster::create_on_small_filesystem(seed).await {
        Ok(cluster) => cluster,
        Err(reason) if std::env::var_os("FANGPIN_REQUIRE_DISK_FULL").is_none() => {
            eprintln!(
                "disk-full test NOT RUN: {reason}. It mounts a tmpfs, which needs root; \
                 .ci/run sets FANGPIN_REQUIRE_DISK_FULL=1 so that it cannot be skipped there"
            );
            return;
        }
        Err(reason) => panic!("disk-full test cannot run: {reason}"),
    };
    let plan = setup(&mut cluster, Some(PAYING_DAY)).await;
    eprintln!(
        "setup done in {:?} on a {FILESYSTEM_MIB} MiB tmpfs",
        started.elapsed()
    );

    let history = Arc::new(History::default());
    let report = run_disk_full_phase(&mut cluster, &plan, &history, seed).await;
    eprintln!("{report}");
    assert!(
        cluster.replicas.iter().all(|r| r.daemon.is_some()),
        "the server ran through without a restart"
    );

    check(&cluster, &plan, &history).await;
    let codes = history.codes.lock().expect("lock").clone();
    assert!(
        codes.get("ResourceExhausted").copied().unwrap_or(0) > 0,
        "some writes met the full disk: {codes:?}"
    );
    assert!(
        !codes.contains_key("Internal") && !codes.contains_key("Unknown"),
        "a full disk is RESOURCE_EXHAUSTED, never an internal error: {codes:?}"
    );
    eprintln!(
        "disk-full test passed in {:?}: {} operations acknowledged, client-visible codes {codes:?}",
        started.elapsed(),
        history.acknowledged.lock().expect("lock").len(),
    );
    cluster.stop().await;
}

/// The tests of this file, one at a time: each runs several servers and
/// dozens of clients on a machine of two cores.
/// (An async mutex: each test's runtime waits on it, and a failed test
/// does not poison it for the next.)
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    ONE.lock().await
}

/// The run's seed, from `FANGPIN_CRASH_SEED` or random, printed now and by
/// every failing assertion (one panic hook for the file, naming the test
/// that runs: they run one at a time).
fn seed(test: &'static str) -> u64 {
    static RUNNING: Mutex<Option<(&'static str, u64)>> = Mutex::new(None);
    static HOOK: std::sync::Once = std::sync::Once::new();
    let seed = std::env::var("FANGPIN_CRASH_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("FANGPIN_CRASH_SEED is a u64"))
        .unwrap_or_else(rand::random);
    eprintln!("{test} seed {seed} (replay: FANGPIN_CRASH_SEED={seed})");
    *RUNNING.lock().unwrap_or_else(|p| p.into_inner()) = Some((test, seed));
    HOOK.call_once(|| {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some((test, seed)) = *RUNNING.lock().unwrap_or_else(|p| p.into_inner()) {
                eprintln!("{test} failed with seed {seed} (replay: FANGPIN_CRASH_SEED={seed})");
            }
            default_hook(info);
        }));
    });
    seed
}

/// The setup, without faults, on pinned dates; then every server restarted
/// on `paying` (None: the real clock) for the phase with faults.
async fn setup(cluster: &mut Cluster, paying: Option<&'static str>) -> Plan {
    cluster.start_all(Some(INTAKE_DAY)).await;
    let plan = setup_before_publicity_ends(cluster).await;
    cluster.restart_all(Some(FILING_DAY)).await;
    let mut plan = setup_filing(cluster, plan).await;
    let mut sql = cluster.sql().await;
    plan.setup_requests = sql
        .fetch_all("SELECT request_id FROM audit_log")
        .await
        .expect("the setup's audit entries")
        .iter()
        .map(|r| r.get::<String, _>("request_id"))
        .collect();
    sql.close().await.expect("close");
    cluster.restart_all(paying).await;
    plan
}

// ---------------------------------------------------------------------------
// The servers.

enum Backend {
    Sqlite {
        /// Unmounted before `dir` is removed (fields drop in order).
        #[allow(dead_code)]
        small_filesystem: Option<SmallFilesystem>,
        #[allow(dead_code)]
        dir: tempfile::TempDir,
    },
    Postgres {
        admin_url: String,
        name: String,
    },
}

struct Replica {
    addr: SocketAddr,
    daemon: Option<Daemon>,
}

struct Cluster {
    backend: Backend,
    database_url: String,
    /// The servers' working directory: the development personal-data key
    /// of a PostgreSQL database lives here, shared by all of them.
    cwd: tempfile::TempDir,
    replicas: Vec<Replica>,
    /// One lazily connecting channel per server address; tonic reconnects
    /// it when the server comes back on the same port.
    channels: Vec<Channel>,
    today: Option<&'static str>,
    rng: StdRng,
}

impl Cluster {
    async fn create(postgres: Option<String>, seed: u64) -> Cluster {
        sqlx::any::install_default_drivers();
        let cwd = tempfile::tempdir().expect("a working directory");
        let (backend, database_url, servers) = match postgres {
            Some(admin_url) => {
                let name = format!("fangpin_crash_{}", uuid::Uuid::new_v4().simple());
                let mut admin = AnyConnection::connect(&admin_url)
                    .await
                    .expect("connect to the PostgreSQL admin URL");
                admin
                    .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create the database");
                admin.close().await.expect("close");
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                let url = format!("{base}/{name}");
                (Backend::Postgres { admin_url, name }, url, 3)
            }
            None => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("fangpin.db").display());
                let backend = Backend::Sqlite {
                    small_filesystem: None,
                    dir,
                };
                (backend, url, 1)
            }
        };
        Cluster {
            backend,
            database_url,
            cwd,
            replicas: (0..servers)
                .map(|_| Replica {
                    addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                    daemon: None,
                })
                .collect(),
            channels: Vec::new(),
            today: None,
            rng: StdRng::seed_from_u64(seed ^ 0x5eed_c4a5),
        }
    }

    /// One SQLite server whose database lies on a tmpfs of
    /// `FILESYSTEM_MIB`, or why the machine cannot mount one.
    async fn create_on_small_filesystem(seed: u64) -> Result<Cluster, String> {
        let mut cluster = Cluster::create(None, seed).await;
        let Backend::Sqlite {
            small_filesystem,
            dir,
        } = &mut cluster.backend
        else {
            unreachable!("created on SQLite")
        };
        let mounted = SmallFilesystem::mount(dir.path().join("small"), FILESYSTEM_MIB)?;
        cluster.database_url = format!("sqlite://{}", mounted.path.join("fangpin.db").display());
        *small_filesystem = Some(mounted);
        Ok(cluster)
    }

    fn small_filesystem(&self) -> &SmallFilesystem {
        match &self.backend {
            Backend::Sqlite {
                small_filesystem: Some(fs),
                ..
            } => fs,
            _ => panic!("not on a small filesystem"),
        }
    }

    /// The servers' warnings and errors so far, for a failure message.
    fn troubles(&mut self) -> Vec<serde_json::Value> {
        self.replicas
            .iter_mut()
            .filter_map(|r| r.daemon.as_mut())
            .flat_map(|d| d.drain_logs().to_vec())
            .filter(|line| matches!(line["level"].as_str(), Some("WARN" | "ERROR")))
            .collect()
    }

    fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite { .. } => "SQLite",
            Backend::Postgres { .. } => "PostgreSQL",
        }
    }

    fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    async fn start(&mut self, index: usize) {
        let replica = &mut self.replicas[index];
        assert!(replica.daemon.is_none(), "server {index} is running");
        let mut command = fangpind_command();
        command
            .current_dir(self.cwd.path())
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--listen")
            .arg(replica.addr.to_string())
            .env("FANGPIN_LOG_FILTER", "info");
        if let Some(today) = self.today {
            command.args(["--today", today]);
        }
        let daemon = Daemon::spawn(command, 1).await;
        if replica.addr.port() == 0 {
            replica.addr = daemon.addr;
        }
        assert_eq!(daemon.addr, replica.addr, "a restart keeps the port");
        replica.daemon = Some(daemon);
    }

    async fn start_all(&mut self, today: Option<&'static str>) {
        self.today = today;
        for index in 0..self.replicas.len() {
            self.start(index).await;
        }
        if self.channels.is_empty() {
            self.channels = self
                .replicas
                .iter()
                .map(|r| {
                    Endpoint::from_shared(format!("http://{}", r.addr))
                        .expect("a valid URI")
                        .connect_timeout(Duration::from_secs(1))
                        .connect_lazy()
                })
                .collect();
        }
    }

    /// Stops every server gracefully and starts them on a new date.
    async fn restart_all(&mut self, today: Option<&'static str>) {
        for replica in &mut self.replicas {
            if let Some(daemon) = replica.daemon.take() {
                daemon.stop().await;
            }
        }
        self.start_all(today).await;
    }

    fn kill(&mut self, index: usize) {
        let mut daemon = self.replicas[index]
            .daemon
            .take()
            .expect("the server is running");
        daemon.kill();
    }

    async fn restart_down(&mut self) {
        for index in 0..self.replicas.len() {
            if self.replicas[index].daemon.is_none() {
                self.start(index).await;
            }
        }
    }

    fn channel(&self) -> Channel {
        self.channels[0].clone()
    }

    async fn sql(&self) -> AnyConnection {
        AnyConnection::connect(&self.database_url)
            .await
            .expect("connect to the database")
    }

    async fn stop(mut self) {
        for replica in &mut self.replicas {
            if let Some(daemon) = replica.daemon.take() {
                daemon.stop().await;
            }
        }
        if let Backend::Postgres { admin_url, name } = &self.backend {
            let mut admin = AnyConnection::connect(admin_url).await.expect("admin");
            admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await
                .expect("drop the database");
        }
    }
}

// ---------------------------------------------------------------------------
// Setup, without faults: the county, its pool and claims at each stage.

/// The claims of each story, by id.
#[derive(Default, Clone)]
struct Plan {
    paid: Vec<String>,
    failed_before_paying: Vec<String>,
    returned_after_paying: Vec<String>,
    advanced: Vec<String>,
    /// Households enrolled in the fault phase, one claim each: their
    /// sequence numbers.
    taken_in: Vec<u32>,
    /// The premium the setup posted, in yuan.
    opening_premium: Decimal,
    /// The request ids of the setup's writes, from the audit log.
    setup_requests: BTreeSet<String>,
}

async fn setup_before_publicity_ends(cluster: &Cluster) -> Plan {
    let channel = cluster.channel();
    let mut enrollment = EnrollmentServiceClient::new(channel.clone());
    enrollment
        .register_county(pb::RegisterCountyRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            name: "涉县".into(),
            rural_population: 20_000,
            insurer: INSURER.into(),
        })
        .await
        .expect("county");
    let county = fangpin_domain::identity::CountyCode::parse(COUNTY).expect("valid");
    PolicyServiceClient::new(channel.clone())
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(policy_to_pb(
                &fangpin_domain::policy::Policy::example(county, YEAR),
                0,
                false,
            )),
        })
        .await
        .expect("policy");
    let opening_premium = Decimal::from_str("2000000.00").expect("decimal");
    enrollment
        .record_premium(pb::RecordPremiumRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: YEAR,
            amount_yuan: opening_premium.to_string(),
            reference: "premium 2026".into(),
        })
        .await
        .expect("premium");

    let mut plan = Plan {
        opening_premium,
        ..Plan::default()
    };
    let mut sequence = 0;
    let stories: [(usize, &mut Vec<String>); 3] = [
        (PAID, &mut plan.paid),
        (FAILED_BEFORE_PAYING, &mut plan.failed_before_paying),
        (RETURNED_AFTER_PAYING, &mut plan.returned_after_paying),
    ];
    for (count, claims) in stories {
        for _ in 0..count {
            sequence += 1;
            let claim_id = submit(&channel, sequence, pb::Channel::DepartmentReferral).await;
            to_publicity(&channel, &claim_id).await;
            claims.push(claim_id);
        }
    }
    for _ in 0..ADVANCED {
        sequence += 1;
        let claim_id = submit(&channel, sequence, pb::Channel::Emergency).await;
        // The township head's approval comes before any advance; the races
        // stay below it (at most 9,999.99).
        ClaimServiceClient::new(channel.clone())
            .approve_emergency(pb::ApproveEmergencyRequest {
                request_id: request_id(),
                claim_id: claim_id.clone(),
                amount_yuan: "10000.00".into(),
                approved_by: "township head".into(),
                reason: "hospital deposit".into(),
            })
            .await
            .expect("approval");
        plan.advanced.push(claim_id);
    }
    plan.taken_in = (0..TAKEN_IN as u32).map(|i| sequence + 1 + i).collect();
    plan
}

/// Enrolls household `sequence` and submits its illness claim.
async fn submit(channel: &Channel, sequence: u32, via: pb::Channel) -> String {
    let household = EnrollmentServiceClient::new(channel.clone())
        .enroll_household(enroll_request(sequence))
        .await
        .expect("enroll")
        .into_inner()
        .household_id;
    ClaimServiceClient::new(channel.clone())
        .submit_claim(submit_request(&household, sequence, via))
        .await
        .expect("submit")
        .into_inner()
        .claim
        .expect("claim")
        .claim_id
}

fn enroll_request(sequence: u32) -> pb::EnrollHouseholdRequest {
    pb::EnrollHouseholdRequest {
        request_id: request_id(),
        county_code: COUNTY.into(),
        policy_year: YEAR,
        village_code: VILLAGE.into(),
        household_type: pb::HouseholdType::UnstableEscaped.into(),
        head: Some(pb::Person {
            id_number: resident_id("19650101", sequence),
            name: format!("户主{sequence}"),
            relation: String::new(),
        }),
        members: vec![],
        bank_account: format!("62170001{sequence:08}"),
    }
}

fn submit_request(household: &str, sequence: u32, via: pb::Channel) -> pb::SubmitClaimRequest {
    pb::SubmitClaimRequest {
        request_id: request_id(),
        household_id: household.into(),
        relief_kind: pb::ReliefKind::Illness.into(),
        channel: via.into(),
        event_date: format!("{YEAR}-02-01"),
        event_reference: format!("admission-{sequence}"),
        claimed_cost_yuan: COST.into(),
        description: String::new(),
        submitted_by: "county office".into(),
    }
}

async fn to_publicity(channel: &Channel, claim_id: &str) {
    let mut survey = SurveyServiceClient::new(channel.clone());
    survey
        .assign_survey(pb::AssignSurveyRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            surveyor: SURVEYOR.into(),
            insurer: INSURER.into(),
            assigned_by: "county".into(),
        })
        .await
        .expect("assign");
    survey
        .record_findings(pb::RecordFindingsRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            surveyor: SURVEYOR.into(),
            verified_income_per_capita_yuan: "3000.00".into(),
            verified_cost_yuan: COST.into(),
            notes: String::new(),
            evidence_refs: vec![],
            prior_incomes_per_capita_yuan: Vec::new(),
            income_evidence_refs: Vec::new(),
        })
        .await
        .expect("findings");
    survey
        .recommend(pb::RecommendRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            surveyor: SURVEYOR.into(),
            approve: true,
            reason: "eligible".into(),
        })
        .await
        .expect("recommend");
    PublicityServiceClient::new(channel.clone())
        .open_publicity(pb::OpenPublicityRequest {
            request_id: request_id(),
            claim_id: claim_id.into(),
            opened_by: "village".into(),
        })
        .await
        .expect("open publicity");
}

async fn setup_filing(cluster: &Cluster, plan: Plan) -> Plan {
    let channel = cluster.channel();
    for claim_id in plan
        .paid
        .iter()
        .chain(&plan.failed_before_paying)
        .chain(&plan.returned_after_paying)
    {
        PublicityServiceClient::new(channel.clone())
            .close_publicity(pb::ClosePublicityRequest {
                request_id: request_id(),
                claim_id: claim_id.clone(),
                closed_by: "township".into(),
            })
            .await
            .expect("close publicity");
        PayoutServiceClient::new(channel.clone())
            .file_claim(pb::FileClaimRequest {
                request_id: request_id(),
                claim_id: claim_id.clone(),
                filed_by: "county".into(),
                cross_check_note: "ok".into(),
            })
            .await
            .expect("file");
    }
    plan
}

// ---------------------------------------------------------------------------
// The clients' operations: each a request built once, sent until answered.

#[derive(Clone, Debug)]
enum Op {
    Enroll(pb::EnrollHouseholdRequest),
    Submit(pb::SubmitClaimRequest),
    Pay(pb::PayClaimRequest),
    Fail(pb::RecordPayoutFailureRequest),
    Retry(pb::RetryPayoutRequest),
    Advance(pb::PayEmergencyAdvanceRequest),
    Premium(pb::RecordPremiumRequest),
    TopUp(pb::RecordTopUpRequest),
    /// A department feed, streamed: its header and the file.
    Import(pb::FeedHeader, Arc<Vec<u8>>),
}

/// What a server answered: the response's bytes, or a status that is the
/// call's outcome (not a fault to retry).
type Answer = Result<Vec<u8>, (Code, String)>;

impl Op {
    /// The RPC's name as the idempotency records and the audit log hold it.
    fn rpc(&self) -> &'static str {
        match self {
            Op::Enroll(_) => "EnrollHousehold",
            Op::Submit(_) => "SubmitClaim",
            Op::Pay(_) => "PayClaim",
            Op::Fail(_) => "RecordPayoutFailure",
            Op::Retry(_) => "RetryPayout",
            Op::Advance(_) => "PayEmergencyAdvance",
            Op::Premium(_) => "RecordPremium",
            Op::TopUp(_) => "RecordTopUp",
            Op::Import(..) => "ImportFeed",
        }
    }

    fn request_id(&self) -> &str {
        match self {
            Op::Enroll(r) => &r.request_id,
            Op::Submit(r) => &r.request_id,
            Op::Pay(r) => &r.request_id,
            Op::Fail(r) => &r.request_id,
            Op::Retry(r) => &r.request_id,
            Op::Advance(r) => &r.request_id,
            Op::Premium(r) => &r.request_id,
            Op::TopUp(r) => &r.request_id,
            Op::Import(header, _) => &header.request_id,
        }
    }

    /// One attempt through `channel`, cut off after `deadline` (told to the
    /// server as grpc-timeout, and enforced here).
    async fn send(&self, channel: Channel, deadline: Duration) -> Result<Vec<u8>, Status> {
        fn request<T>(message: &T, deadline: Duration) -> Request<T>
        where
            T: Clone,
        {
            let mut request = Request::new(message.clone());
            request.set_timeout(deadline);
            request
        }
        let call = async {
            match self {
                Op::Enroll(r) => EnrollmentServiceClient::new(channel)
                    .enroll_household(request(r, deadline))
                    .await
                    .map(|r| r.into_inner().encode_to_vec()),
                Op::Submit(r) => ClaimServiceClient::new(channel)
                    .submit_claim(request(r, deadline))
                    .await
                    .map(|r| r.into_inner().encode_to_vec()),
                Op::Pay(r) => PayoutServiceClient::new(channel)
                    .pay_claim(request(r, deadline))
                    .await
                    .map(|r| r.into_inner().encode_to_vec()),
                Op::Fail(r) => PayoutServiceClient::new(channel)
                    .record_payout_failure(request(r, deadline))
                    .await
                    .map(|r| r.into_inner().encode_to_vec()),
                Op::Retry(r) => PayoutServiceClient::new(channel)
                    .retry_payout(request(r, deadline))
                    .await
                    .map(|r| r.into_inner().encode_to_vec()),
                Op::Advance(r) => ClaimServiceClient::new(channel)
                    .pay_emergency_advance(request(r, deadline))
                    .await
                    .map(|r| r.into_inner().encode_to_vec()),
                Op::Premium(r) => EnrollmentServiceClient::new(channel)
                    .record_premium(request(r, deadline))
                    .await
                    .map(|r| r.into_inner().encode_to_vec()),
                Op::TopUp(r) => LedgerServiceClient::new(channel)
                    .record_top_up(request(r, deadline))
                    .await
                    .map(|r| r.into_inner().encode_to_vec()),
                Op::Import(header, file) => {
                    // Small messages, so that a kill can fall mid-stream.
                    let mut parts = vec![pb::ImportFeedRequest {
                        part: Some(pb::import_feed_request::Part::Header(header.clone())),
                    }];
                    parts.extend(file.chunks(IMPORT_CHUNK_BYTES).map(|piece| {
                        pb::ImportFeedRequest {
                            part: Some(pb::import_feed_request::Part::Data(piece.to_vec().into())),
                        }
                    }));
                    let mut stream = Request::new(tokio_stream::iter(parts));
                    stream.set_timeout(deadline);
                    ScreeningServiceClient::new(channel)
                        .import_feed(stream)
                        .await
                        .map(|r| r.into_inner().encode_to_vec())
                }
            }
        };
        match tokio::time::timeout(deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(Status::deadline_exceeded("the client's own deadline")),
        }
    }
}

/// A status that says nothing about the outcome: the server died, the call
/// was cut short, the database went away. The client retries these.
fn is_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Unknown
            | Code::Aborted
            | Code::Internal
            | Code::ResourceExhausted
    )
}

#[derive(Default)]
struct History {
    /// Every operation with its first answer, in the order answered.
    acknowledged: Mutex<Vec<(Op, Answer)>>,
    /// Sent once with a tiny deadline and never retried: acknowledged or
    /// not, their effect must be whole or absent.
    abandoned: Mutex<Vec<Op>>,
    /// Every status the clients saw, faults included.
    codes: Mutex<BTreeMap<String, u64>>,
    attempts: AtomicU64,
    hedged: AtomicU64,
    replays_compared: AtomicU64,
}

impl History {
    fn saw(&self, code: Code) {
        *self
            .codes
            .lock()
            .expect("lock")
            .entry(format!("{code:?}"))
            .or_default() += 1;
    }
}

/// Sends `op` until a server answers it, each attempt through a server
/// other than the last, sometimes with a deadline too short to finish and
/// sometimes hedged (sent to two servers at once). Then sends it once more
/// through another server, and requires the same answer.
async fn perform(channels: &[Channel], history: &History, op: &Op, seed: u64) -> Answer {
    let mut rng = StdRng::seed_from_u64(seed);
    let first = until_answered(channels, history, op, &mut rng).await;
    let replay = until_answered(channels, history, op, &mut rng).await;
    assert_eq!(
        replay,
        first,
        "{} {} answered differently on retry",
        op.rpc(),
        op.request_id()
    );
    history.replays_compared.fetch_add(1, Ordering::Relaxed);
    history
        .acknowledged
        .lock()
        .expect("lock")
        .push((op.clone(), first.clone()));
    first
}

async fn until_answered(
    channels: &[Channel],
    history: &History,
    op: &Op,
    rng: &mut StdRng,
) -> Answer {
    let started = Instant::now();
    let mut last = rng.random_range(0..channels.len());
    let mut pause = Duration::from_millis(20);
    loop {
        assert!(
            started.elapsed() < OPERATION_LIMIT,
            "{} {} found no server to answer it in {OPERATION_LIMIT:?}",
            op.rpc(),
            op.request_id()
        );
        let next = if channels.len() > 1 {
            (last + rng.random_range(1..channels.len())) % channels.len()
        } else {
            0
        };
        last = next;
        let deadline = if rng.random_bool(0.1) {
            Duration::from_millis(rng.random_range(2..40))
        } else {
            Duration::from_secs(3)
        };
        history.attempts.fetch_add(1, Ordering::Relaxed);
        let outcome = if channels.len() > 1 && rng.random_bool(0.1) {
            // Hedged: the same request to two servers at once. Both
            // answers, where both came, must agree.
            history.hedged.fetch_add(1, Ordering::Relaxed);
            let other = (next + 1) % channels.len();
            let (a, b) = tokio::join!(
                op.send(channels[next].clone(), deadline),
                op.send(channels[other].clone(), deadline)
            );
            match (settled(a), settled(b)) {
                (Some(a), Some(b)) => {
                    assert_eq!(a, b, "hedged {} {} disagree", op.rpc(), op.request_id());
                    Ok(a)
                }
                (Some(a), None) | (None, Some(a)) => Ok(a),
                (None, None) => Err(Code::Unavailable),
            }
        } else {
            match op.send(channels[next].clone(), deadline).await {
                Ok(bytes) => Ok(Ok(bytes)),
                Err(status) if is_fault(status.code()) => {
                    history.saw(status.code());
                    Err(status.code())
                }
                Err(status) => Ok(Err((status.code(), status.message().to_string()))),
            }
        };
        match outcome {
            Ok(answer) => {
                history.saw(match &answer {
                    Ok(_) => Code::Ok,
                    Err((code, _)) => *code,
                });
                return answer;
            }
            Err(_) => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
        }
    }
}

/// The answer in a result, or None for a fault.
fn settled(result: Result<Vec<u8>, Status>) -> Option<Answer> {
    match result {
        Ok(bytes) => Some(Ok(bytes)),
        Err(status) if is_fault(status.code()) => None,
        Err(status) => Some(Err((status.code(), status.message().to_string()))),
    }
}

// ---------------------------------------------------------------------------
// The fault phase.

struct FaultReport {
    kills: u32,
    terminations: u32,
    postgres_restarts: u32,
    postgres_restart_note: Option<String>,
    duration: Duration,
}

impl std::fmt::Display for FaultReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fault phase {:?}: {} SIGKILLs (each followed by a restart), {} rounds of \
             pg_terminate_backend, {} PostgreSQL restarts",
            self.duration, self.kills, self.terminations, self.postgres_restarts
        )?;
        if let Some(note) = &self.postgres_restart_note {
            write!(f, " ({note})")?;
        }
        Ok(())
    }
}

async fn run_fault_phase(
    cluster: &mut Cluster,
    plan: &Plan,
    history: &Arc<History>,
    seed: u64,
) -> FaultReport {
    let mut clients = spawn_stories(cluster, plan, history, seed);

    // The faults, one at a time, until the phase ends.
    let started = Instant::now();
    let mut report = FaultReport {
        kills: 0,
        terminations: 0,
        postgres_restarts: 0,
        postgres_restart_note: None,
        duration: Duration::ZERO,
    };
    let restart_postgres_after = FAULT_PHASE / 2;
    while started.elapsed() < FAULT_PHASE {
        let pause = Duration::from_millis(cluster.rng.random_range(1000..3000));
        tokio::time::sleep(pause).await;
        if cluster.is_postgres()
            && report.postgres_restarts == 0
            && report.postgres_restart_note.is_none()
            && started.elapsed() >= restart_postgres_after
        {
            match restart_postgres().await {
                Ok(()) => report.postgres_restarts += 1,
                Err(reason) => {
                    eprintln!("PostgreSQL restart not done: {reason}");
                    report.postgres_restart_note = Some(format!("not possible here: {reason}"));
                }
            }
            continue;
        }
        if cluster.is_postgres() && cluster.rng.random_bool(0.3) {
            terminate_sessions(cluster).await;
            report.terminations += 1;
            continue;
        }
        let victim = cluster.rng.random_range(0..cluster.replicas.len());
        cluster.kill(victim);
        report.kills += 1;
        let down = Duration::from_millis(cluster.rng.random_range(0..500));
        tokio::time::sleep(down).await;
        cluster.start(victim).await;
    }
    report.duration = started.elapsed();
    // Every story runs to its end; the servers are all up again.
    while let Some(result) = clients.join_next().await {
        result.expect("a client's story");
    }
    report
}

/// Every client's story, started at random times over the first three
/// quarters of `FAULT_PHASE`.
fn spawn_stories(
    cluster: &Cluster,
    plan: &Plan,
    history: &Arc<History>,
    seed: u64,
) -> tokio::task::JoinSet<()> {
    let channels: Arc<Vec<Channel>> = Arc::new(cluster.channels.clone());
    let mut seeds = StdRng::seed_from_u64(seed);
    let mut clients = tokio::task::JoinSet::new();
    let spread = FAULT_PHASE.as_millis() as u64 * 3 / 4;
    let mut story = |kind: Story, seeds: &mut StdRng| {
        let (channels, history) = (channels.clone(), history.clone());
        let start = Duration::from_millis(seeds.random_range(0..spread));
        let seed = seeds.random::<u64>();
        clients.spawn(async move {
            tokio::time::sleep(start).await;
            kind.run(&channels, &history, seed).await;
        });
    };
    for claim in &plan.paid {
        story(Story::PayRacing(claim.clone()), &mut seeds);
    }
    for claim in &plan.failed_before_paying {
        story(Story::FailThenPay(claim.clone()), &mut seeds);
    }
    for claim in &plan.returned_after_paying {
        story(Story::PayReturnPay(claim.clone()), &mut seeds);
    }
    for claim in &plan.advanced {
        story(Story::AdvanceRacing(claim.clone()), &mut seeds);
    }
    for &sequence in &plan.taken_in {
        story(Story::TakeIn(sequence), &mut seeds);
    }
    for _ in 0..PREMIUMS {
        story(Story::Premium, &mut seeds);
    }
    for _ in 0..TOP_UPS {
        story(Story::TopUp, &mut seeds);
    }
    for _ in 0..ABANDONED_TOP_UPS {
        story(Story::AbandonedTopUp, &mut seeds);
    }
    for n in 0..IMPORTS {
        story(Story::Import(n), &mut seeds);
    }
    for n in IMPORTS..IMPORTS + RACING_IMPORTS {
        story(Story::ImportRacing(n), &mut seeds);
    }
    clients
}

// ---------------------------------------------------------------------------
// The full disk.

/// The size of the filesystem the disk-full test's database lies on.
const FILESYSTEM_MIB: u64 = 64;
/// What is left free when the filesystem is filled: a few writes fit, the
/// one after fails part of the way through its commit.
const LEFT_FREE: u64 = 256 * 1024;
/// When the disk fills up, into the stories.
const FILL_AFTER: Duration = Duration::from_secs(6);
/// How long the disk stays full once health has turned NOT_SERVING.
const FULL_FOR: Duration = Duration::from_secs(5);

/// A tmpfs with a size limit, mounted for the test and unmounted after it.
struct SmallFilesystem {
    path: std::path::PathBuf,
}

impl SmallFilesystem {
    fn mount(path: std::path::PathBuf, mib: u64) -> Result<SmallFilesystem, String> {
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(SmallFilesystem { path })
    }

    /// Fills the filesystem but for `LEFT_FREE` bytes with one file.
    fn fill(&self) -> u64 {
        use std::io::Write;
        let path = self.path.join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let block = vec![0xA5u8; 64 * 1024];
        let mut written = 0u64;
        for size in [block.len(), 4096, 512, 1] {
            loop {
                match file.write(&block[..size]) {
                    Ok(n) => written += n as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                    Err(e) => panic!("writing the filler: {e}"),
                }
            }
        }
        // tmpfs frees the pages a truncation gives back.
        let kept = written.saturating_sub(LEFT_FREE);
        file.set_len(kept).expect("truncate the filler");
        kept
    }

    fn free(&self) {
        std::fs::remove_file(self.path.join("filler")).expect("remove the filler");
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        // Lazy: a server killed by a failing test may still hold files.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// The server's overall gRPC health, or None when it does not answer.
async fn health(channel: &Channel) -> Option<i32> {
    health_of(channel, "").await
}

/// The gRPC health of one health service name.
async fn health_of(channel: &Channel, service: &str) -> Option<i32> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;
    let mut request = Request::new(HealthCheckRequest {
        service: service.to_string(),
    });
    request.set_timeout(Duration::from_secs(1));
    let response = HealthClient::new(channel.clone())
        .check(request)
        .await
        .ok()?;
    Some(response.into_inner().status)
}

/// GetServiceInfo's storage warning (what `fangpin status` prints).
async fn storage_warning(channel: &Channel) -> String {
    fangpin_proto::v1::service_info_service_client::ServiceInfoServiceClient::new(channel.clone())
        .get_service_info(pb::GetServiceInfoRequest {})
        .await
        .expect("GetServiceInfo")
        .into_inner()
        .storage_warning
}

const SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
const NOT_SERVING: i32 = tonic_health::pb::health_check_response::ServingStatus::NotServing as i32;

struct DiskFullReport {
    filled_with: u64,
    to_not_serving: Duration,
    full_for: Duration,
    exhausted_while_full: u64,
    reads_while_full: u32,
    to_serving: Duration,
}

impl std::fmt::Display for DiskFullReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "disk full: filled with {} KiB ({} KiB left free); health NOT_SERVING {:?} after; \
             full for {:?}, {} writes refused with RESOURCE_EXHAUSTED, {} reads answered \
             meanwhile; health SERVING {:?} after the space was freed, no restart",
            self.filled_with / 1024,
            LEFT_FREE / 1024,
            self.to_not_serving,
            self.full_for,
            self.exhausted_while_full,
            self.reads_while_full,
            self.to_serving
        )
    }
}

async fn run_disk_full_phase(
    cluster: &mut Cluster,
    plan: &Plan,
    history: &Arc<History>,
    seed: u64,
) -> DiskFullReport {
    let mut clients = spawn_stories(cluster, plan, history, seed);
    let channel = cluster.channel();
    let exhausted = || {
        history
            .codes
            .lock()
            .expect("lock")
            .get("ResourceExhausted")
            .copied()
            .unwrap_or(0)
    };
    tokio::time::sleep(FILL_AFTER).await;
    assert_eq!(
        health(&channel).await,
        Some(SERVING),
        "healthy before the disk fills"
    );

    // An empty write-ahead log, so that the next commits need new space
    // rather than reuse what the log already holds.
    let mut sql = cluster.sql().await;
    for _ in 0..100 {
        let busy: i64 = sql
            .fetch_one("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .expect("checkpoint")
            .get(0);
        if busy == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sql.close().await.expect("close");
    let fs = cluster.small_filesystem();
    let filled_with = fs.fill();
    let full_at = Instant::now();
    let exhausted_before = exhausted();

    // The writes meet the full disk; health says so.
    let to_not_serving = loop {
        assert!(
            full_at.elapsed() < Duration::from_secs(30),
            "health never turned NOT_SERVING with the disk full; codes {:?}; the server's \
             warnings: {:#?}",
            history.codes.lock().expect("lock"),
            cluster.troubles()
        );
        if health(&channel).await == Some(NOT_SERVING) {
            break full_at.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Every service says so; liveness does not (a restart would not help).
    assert_eq!(
        health_of(&channel, "fangpin.v1.ClaimService").await,
        Some(NOT_SERVING)
    );
    assert_eq!(
        health_of(&channel, fangpin_server::LIVENESS_SERVICE).await,
        Some(SERVING),
        "liveness stays SERVING with the disk full"
    );
    assert_eq!(
        storage_warning(&channel).await,
        fangpin_server::services::service_info::STORAGE_WARNING,
        "`fangpin status` says so"
    );
    // Reads go on meanwhile.
    let mut reads_while_full = 0;
    let held = Instant::now();
    let mut claims = ClaimServiceClient::new(channel.clone());
    while held.elapsed() < FULL_FOR {
        claims
            .get_claim(pb::GetClaimRequest {
                claim_id: plan.paid[0].clone(),
            })
            .await
            .expect("a read with the disk full");
        reads_while_full += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let exhausted_while_full = exhausted() - exhausted_before;
    assert!(exhausted_while_full > 0, "no write met the full disk");
    let full_for = full_at.elapsed();

    // Space freed: the same server takes writes again.
    fs.free();
    let freed_at = Instant::now();
    let to_serving = loop {
        if freed_at.elapsed() > Duration::from_secs(30) {
            panic!(
                "health never turned SERVING again after the space was freed; the server's \
                 warnings: {:#?}",
                cluster.troubles()
            );
        }
        if health(&channel).await == Some(SERVING) {
            break freed_at.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        storage_warning(&channel).await,
        "",
        "no warning once space is freed"
    );
    while let Some(result) = clients.join_next().await {
        result.expect("a client's story");
    }
    DiskFullReport {
        filled_with,
        to_not_serving,
        full_for,
        exhausted_while_full,
        reads_while_full,
        to_serving,
    }
}

/// Ends every session of the servers on the test's database, as an
/// administrator or a failover would.
async fn terminate_sessions(cluster: &Cluster) {
    let Backend::Postgres { admin_url, name } = &cluster.backend else {
        return;
    };
    let mut admin = AnyConnection::connect(admin_url).await.expect("admin");
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )))
        .await
        .expect("pg_terminate_backend");
    admin.close().await.expect("close");
}

/// Restarts the machine's PostgreSQL cluster (fast shutdown: every session
/// cut) with Debian's pg_ctlcluster, or says why it cannot.
async fn restart_postgres() -> Result<(), String> {
    let clusters = std::fs::read_dir("/etc/postgresql")
        .map_err(|e| format!("no /etc/postgresql ({e}): not a Debian cluster on this machine"))?;
    let version = clusters
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .max()
        .ok_or("no cluster under /etc/postgresql")?;
    let status = tokio::task::spawn_blocking(move || {
        Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                &version,
                "main",
                "restart",
                "-m",
                "fast",
            ])
            .status()
    })
    .await
    .expect("join")
    .map_err(|e| format!("cannot run pg_ctlcluster: {e}"))?;
    if !status.success() {
        return Err(format!("pg_ctlcluster restart exited with {status}"));
    }
    Ok(())
}

#[derive(Debug)]
enum Story {
    /// PayClaim, raced by a second PayClaim under another request id.
    PayRacing(String),
    /// The transfer fails before PayClaim, the county retries, then pays.
    FailThenPay(String),
    /// Paid, returned by the bank, retried and paid again.
    PayReturnPay(String),
    /// PayEmergencyAdvance, raced by a second one under another request id.
    AdvanceRacing(String),
    /// A household enrolled and its claim taken in.
    TakeIn(u32),
    Premium,
    TopUp,
    /// Sent once with a deadline too short to finish, never retried.
    AbandonedTopUp,
    /// A medical feed of its own, imported.
    Import(u32),
    /// One medical feed imported twice at once under two request ids:
    /// counted once, the other answer names the same import.
    ImportRacing(u32),
}

impl Story {
    async fn run(self, channels: &[Channel], history: &History, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut seeds = move || rng.random::<u64>();
        let pay = |claim: &str, attempt: u32| {
            Op::Pay(pb::PayClaimRequest {
                request_id: request_id(),
                claim_id: claim.into(),
                paid_by: "insurer".into(),
                bank_reference: format!("TX-{claim}-{attempt}"),
            })
        };
        match self {
            Story::PayRacing(claim) => {
                let (a, b) = (pay(&claim, 0), pay(&claim, 1));
                let (sa, sb) = (seeds(), seeds());
                let (a, b) = tokio::join!(
                    perform(channels, history, &a, sa),
                    perform(channels, history, &b, sb)
                );
                let won = [&a, &b].iter().filter(|x| x.is_ok()).count();
                assert_eq!(
                    won, 1,
                    "exactly one of two racing payments of {claim} succeeds: {a:?} {b:?}"
                );
                let lost = if a.is_ok() { b } else { a };
                assert_eq!(lost.expect_err("lost").0, Code::FailedPrecondition);
            }
            Story::FailThenPay(claim) => {
                let fail = Op::Fail(pb::RecordPayoutFailureRequest {
                    request_id: request_id(),
                    claim_id: claim.clone(),
                    recorded_by: "insurer".into(),
                    bank_reference: format!("RJ-{claim}"),
                    reason: "account closed".into(),
                });
                perform(channels, history, &fail, seeds())
                    .await
                    .expect("failure recorded");
                perform(channels, history, &retry(&claim), seeds())
                    .await
                    .expect("retried");
                perform(channels, history, &pay(&claim, 1), seeds())
                    .await
                    .expect("paid");
            }
            Story::PayReturnPay(claim) => {
                perform(channels, history, &pay(&claim, 0), seeds())
                    .await
                    .expect("paid");
                let returned = Op::Fail(pb::RecordPayoutFailureRequest {
                    request_id: request_id(),
                    claim_id: claim.clone(),
                    recorded_by: "insurer".into(),
                    bank_reference: format!("RT-{claim}"),
                    reason: "returned: name does not match".into(),
                });
                perform(channels, history, &returned, seeds())
                    .await
                    .expect("return recorded");
                perform(channels, history, &retry(&claim), seeds())
                    .await
                    .expect("retried");
                perform(channels, history, &pay(&claim, 1), seeds())
                    .await
                    .expect("paid again");
            }
            Story::AdvanceRacing(claim) => {
                let advance = |amount: &str| {
                    Op::Advance(pb::PayEmergencyAdvanceRequest {
                        request_id: request_id(),
                        claim_id: claim.clone(),
                        amount_yuan: amount.into(),
                        approved_by: "township head".into(),
                        reason: "hospital deposit".into(),
                    })
                };
                let amount = format!("{}.{:02}", 1000 + seeds() % 9000, seeds() % 100);
                let (a, b) = (advance(&amount), advance(&amount));
                let (sa, sb) = (seeds(), seeds());
                let (a, b) = tokio::join!(
                    perform(channels, history, &a, sa),
                    perform(channels, history, &b, sb)
                );
                let won = [&a, &b].iter().filter(|x| x.is_ok()).count();
                assert_eq!(
                    won, 1,
                    "exactly one of two racing advances on {claim} succeeds: {a:?} {b:?}"
                );
            }
            Story::TakeIn(sequence) => {
                let enrolled = perform(
                    channels,
                    history,
                    &Op::Enroll(enroll_request(sequence)),
                    seeds(),
                )
                .await
                .expect("enrolled");
                let household = pb::HouseholdResponse::decode(enrolled.as_slice())
                    .expect("a HouseholdResponse")
                    .household_id;
                let submit = Op::Submit(submit_request(
                    &household,
                    sequence,
                    pb::Channel::VillageApplication,
                ));
                perform(channels, history, &submit, seeds())
                    .await
                    .expect("taken in");
            }
            Story::Premium => {
                let op = Op::Premium(pb::RecordPremiumRequest {
                    request_id: request_id(),
                    county_code: COUNTY.into(),
                    policy_year: YEAR,
                    amount_yuan: format!("{}.{:02}", 100 + seeds() % 90_000, seeds() % 100),
                    reference: "premium instalment".into(),
                });
                perform(channels, history, &op, seeds())
                    .await
                    .expect("premium posted");
            }
            Story::TopUp => {
                perform(channels, history, &top_up(seeds()), seeds())
                    .await
                    .expect("top-up posted");
            }
            Story::Import(n) => {
                let answer = perform(channels, history, &import(n), seeds())
                    .await
                    .expect("imported");
                let import = pb::FeedImport::decode(answer.as_slice()).expect("a FeedImport");
                assert!(!import.duplicate, "a file of its own is no duplicate");
            }
            Story::ImportRacing(n) => {
                let (a, b) = (import(n), import(n));
                let (sa, sb) = (seeds(), seeds());
                let (a, b) = tokio::join!(
                    perform(channels, history, &a, sa),
                    perform(channels, history, &b, sb)
                );
                let decode = |answer: Answer| {
                    pb::FeedImport::decode(answer.expect("imported").as_slice())
                        .expect("a FeedImport")
                };
                let (a, b) = (decode(a), decode(b));
                assert_eq!(a.import_id, b.import_id, "one file, one import");
                assert!(
                    a.duplicate != b.duplicate,
                    "exactly one of two racing imports of one file counts it"
                );
            }
            Story::AbandonedTopUp => {
                let op = top_up(seeds());
                let deadline = Duration::from_millis(1 + seeds() % 30);
                let server = (seeds() % channels.len() as u64) as usize;
                let outcome = op.send(channels[server].clone(), deadline).await;
                history.saw(outcome.as_ref().map_or_else(|s| s.code(), |_| Code::Ok));
                history.abandoned.lock().expect("lock").push(op);
            }
        }
    }
}

/// Feed `n`: a medical settlement file of the setup's households (and
/// some persons never enrolled, rejected row by row), different for every
/// `n`, under a new request id.
fn import(n: u32) -> Op {
    let mut file =
        String::from("id_number,settlement_date,inpatient,total_cost,reimbursed,out_of_pocket\n");
    for sequence in 1..=IMPORT_ROWS {
        let cost = 1000 + n * 100 + sequence;
        file.push_str(&format!(
            "{},2026-01-{:02},1,{cost}.00,{}.00,{}.00\n",
            resident_id("19650101", sequence),
            1 + sequence % 28,
            cost / 2,
            cost - cost / 2
        ));
    }
    let file = file.into_bytes();
    Op::Import(
        pb::FeedHeader {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: YEAR,
            kind: pb::FeedKind::Medical.into(),
            encoding: pb::FeedEncoding::Utf8.into(),
            file_name: format!("医保结算-{n}.csv"),
            sha256: hex::encode(sha2::Sha256::digest(&file)),
            size_bytes: file.len() as u64,
        },
        Arc::new(file),
    )
}

fn retry(claim: &str) -> Op {
    Op::Retry(pb::RetryPayoutRequest {
        request_id: request_id(),
        claim_id: claim.into(),
        retried_by: "county office".into(),
        reason: "the bank confirmed the account".into(),
    })
}

fn top_up(seed: u64) -> Op {
    Op::TopUp(pb::RecordTopUpRequest {
        request_id: request_id(),
        county_code: COUNTY.into(),
        policy_year: YEAR,
        amount_yuan: format!("{}.{:02}", 100 + seed % 50_000, (seed >> 20) % 100),
        reference: "county finance".into(),
    })
}

// ---------------------------------------------------------------------------
// The checks, once every server is up again and every client is done.

async fn check(cluster: &Cluster, plan: &Plan, history: &History) {
    let channel = cluster.channel();
    let acknowledged = history.acknowledged.lock().expect("lock").clone();
    let abandoned = history.abandoned.lock().expect("lock").clone();

    // The claims' states, through the RPCs.
    let mut claims = ClaimServiceClient::new(channel.clone());
    let mut state_of = HashMap::new();
    let all_claims = plan
        .paid
        .iter()
        .chain(&plan.failed_before_paying)
        .chain(&plan.returned_after_paying)
        .chain(&plan.advanced);
    for claim_id in all_claims {
        let claim = claims
            .get_claim(pb::GetClaimRequest {
                claim_id: claim_id.clone(),
            })
            .await
            .expect("get claim")
            .into_inner()
            .claim
            .expect("a claim");
        state_of.insert(claim_id.clone(), claim);
    }
    let paid: Vec<&String> = plan
        .paid
        .iter()
        .chain(&plan.failed_before_paying)
        .chain(&plan.returned_after_paying)
        .collect();
    for claim_id in &paid {
        let claim = &state_of[*claim_id];
        assert_eq!(claim.state(), pb::ClaimState::Paid, "{claim_id}");
        assert_eq!(claim.payout_yuan, RELIEF, "{claim_id}");
        assert_eq!(claim.reserved_yuan, "0.00", "{claim_id}");
    }
    for claim_id in &plan.returned_after_paying {
        assert_eq!(state_of[claim_id].payout_returns, 1, "{claim_id}");
    }

    let mut sql = cluster.sql().await;
    // At most one unreversed payout per claim and attempt, and exactly one
    // net payout per paid claim.
    let rows = sql
        .fetch_all(
            "SELECT claim_id, kind, payout_attempt, \
                    CAST(CASE WHEN reverses_entry_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS reversal, \
                    COUNT(*) AS n \
             FROM ledger_entries WHERE claim_id IS NOT NULL \
             GROUP BY claim_id, kind, payout_attempt, CASE WHEN reverses_entry_id IS NULL THEN 0 ELSE 1 END",
        )
        .await
        .expect("entries per claim");
    let mut net_payouts: HashMap<String, i64> = HashMap::new();
    let mut advances: HashMap<String, i64> = HashMap::new();
    for row in &rows {
        let (claim, kind): (String, String) = (row.get("claim_id"), row.get("kind"));
        let (reversal, n): (i64, i64) = (row.get("reversal"), row.get("n"));
        let attempt: i64 = row.get("payout_attempt");
        if reversal == 0 {
            assert_eq!(n, 1, "{claim} has {n} {kind} entries for attempt {attempt}");
        }
        match kind.as_str() {
            "relief_payout" => {
                *net_payouts.entry(claim).or_default() += if reversal == 0 { n } else { -n }
            }
            "emergency_advance" => *advances.entry(claim).or_default() += n,
            other => panic!("a claim entry of kind {other}"),
        }
    }
    for claim_id in &paid {
        assert_eq!(net_payouts.get(*claim_id), Some(&1), "{claim_id} paid once");
    }
    assert_eq!(
        net_payouts.len(),
        paid.len(),
        "only the paid claims were paid"
    );
    for claim_id in &plan.advanced {
        assert_eq!(advances.get(claim_id), Some(&1), "{claim_id} advanced once");
        assert_ne!(state_of[claim_id].advance_paid_yuan, "0.00");
    }
    let pending_for_paid: i64 = sql
        .fetch_one(
            "SELECT COUNT(*) AS n FROM reservations r JOIN claims c ON c.claim_id = r.claim_id \
             WHERE r.state = 'pending' AND c.state = 'paid'",
        )
        .await
        .expect("reservations")
        .get("n");
    assert_eq!(
        pending_for_paid, 0,
        "no pending reservation for a paid claim"
    );

    // Cached balances equal the summed entries.
    let cached = balances(
        &mut sql,
        "SELECT account, debits_fen, credits_fen FROM account_balances \
         WHERE county_code = '130426' AND policy_year = 2026",
    )
    .await;
    let summed = balances(
        &mut sql,
        "SELECT account, CAST(SUM(d) AS BIGINT) AS debits_fen, CAST(SUM(c) AS BIGINT) AS credits_fen FROM ( \
           SELECT debit_account AS account, amount_fen AS d, 0 AS c FROM ledger_entries \
             WHERE county_code = '130426' AND policy_year = 2026 \
           UNION ALL \
           SELECT credit_account AS account, 0 AS d, amount_fen AS c FROM ledger_entries \
             WHERE county_code = '130426' AND policy_year = 2026) t GROUP BY account",
    )
    .await;
    assert_eq!(cached, summed, "cached balances equal the summed entries");

    // Every acknowledged write is there once, and nothing else is: the
    // ledger's and the audit log's request ids against the clients'.
    let ledger_ids = counts(
        &mut sql,
        "SELECT request_id, COUNT(*) AS n FROM ledger_entries GROUP BY request_id",
    )
    .await;
    let audit_ids = counts(
        &mut sql,
        "SELECT request_id, COUNT(*) AS n FROM audit_log GROUP BY request_id",
    )
    .await;
    let stored = stored_answers(&mut sql).await;
    let setup_ids = &plan.setup_requests;
    let mut expected_premiums = plan.opening_premium;
    let mut expected_top_ups = Decimal::ZERO;
    let mut expected_advances = Decimal::ZERO;
    let sent: BTreeSet<&str> = acknowledged
        .iter()
        .map(|(op, _)| op.request_id())
        .chain(abandoned.iter().map(Op::request_id))
        .collect();
    for (op, answer) in &acknowledged {
        let id = op.request_id();
        let key = (op.rpc().to_string(), id.to_string());
        match answer {
            Ok(bytes) => {
                assert_eq!(
                    stored.get(&key),
                    Some(&(0, bytes.clone())),
                    "{key:?}: the stored first answer is the one the client got"
                );
                assert_eq!(audit_ids.get(id), Some(&1), "{key:?}: one audit entry");
                let posts = match op {
                    Op::Premium(r) => {
                        expected_premiums += yuan(&r.amount_yuan);
                        1
                    }
                    Op::TopUp(r) => {
                        expected_top_ups += yuan(&r.amount_yuan);
                        1
                    }
                    Op::Advance(r) => {
                        expected_advances += yuan(&r.amount_yuan);
                        1
                    }
                    Op::Pay(_) => 1,
                    // A return after payout reverses the payout.
                    Op::Fail(r) if r.bank_reference.starts_with("RT-") => 1,
                    Op::Fail(_) | Op::Retry(_) | Op::Enroll(_) | Op::Submit(_) | Op::Import(..) => {
                        0
                    }
                };
                assert_eq!(
                    ledger_ids.get(id).copied().unwrap_or(0),
                    posts,
                    "{key:?}: ledger entries"
                );
            }
            Err((code, message)) => {
                assert!(
                    matches!(stored.get(&key), Some((c, _)) if *c == *code as i64),
                    "{key:?}: the rejection {code:?} {message} is stored"
                );
                assert_eq!(
                    audit_ids.get(id),
                    None,
                    "{key:?}: a rejection leaves no audit entry"
                );
                assert_eq!(
                    ledger_ids.get(id),
                    None,
                    "{key:?}: a rejection posts nothing"
                );
            }
        }
    }
    // An abandoned write is whole or absent.
    let mut abandoned_landed = 0;
    for op in &abandoned {
        let id = op.request_id();
        let key = (op.rpc().to_string(), id.to_string());
        let whole = stored.contains_key(&key);
        assert_eq!(ledger_ids.contains_key(id), whole, "{key:?}: half written");
        assert_eq!(audit_ids.contains_key(id), whole, "{key:?}: half written");
        if whole {
            abandoned_landed += 1;
            if let Op::TopUp(r) = op {
                expected_top_ups += yuan(&r.amount_yuan);
            }
        }
    }
    // Every feed counted once: one import per file, whatever the retries.
    let imports = counts(
        &mut sql,
        "SELECT sha256 AS request_id, COUNT(*) AS n FROM feed_imports GROUP BY sha256",
    )
    .await;
    assert_eq!(
        imports.len(),
        (IMPORTS + RACING_IMPORTS) as usize,
        "one import per file sent"
    );
    assert!(
        imports.values().all(|&n| n == 1),
        "a file imported twice: {imports:?}"
    );
    // Nothing that no client of the fault phase or the setup sent.
    for id in ledger_ids.keys().chain(audit_ids.keys()) {
        assert!(
            sent.contains(id.as_str()) || setup_ids.contains(id),
            "an effect of request {id}, which no client sent"
        );
    }
    eprintln!(
        "{} acknowledged writes checked ({} rejections), {} of {} abandoned writes landed whole, \
         {} attempts, {} hedged, {} replays compared",
        acknowledged.len(),
        acknowledged.iter().filter(|(_, a)| a.is_err()).count(),
        abandoned_landed,
        abandoned.len(),
        history.attempts.load(Ordering::Relaxed),
        history.hedged.load(Ordering::Relaxed),
        history.replays_compared.load(Ordering::Relaxed),
    );

    // The reconciliation ties, with the clients' own arithmetic.
    let reconciliation = LedgerServiceClient::new(channel.clone())
        .get_reconciliation(pb::PoolRequest {
            county_code: COUNTY.into(),
            policy_year: YEAR,
        })
        .await
        .expect("reconciliation")
        .into_inner();
    assert!(reconciliation.ties, "{reconciliation:?}");
    let relief = yuan(RELIEF) * Decimal::from(paid.len());
    assert_eq!(yuan(&reconciliation.premiums_yuan), expected_premiums);
    assert_eq!(yuan(&reconciliation.top_ups_yuan), expected_top_ups);
    assert_eq!(yuan(&reconciliation.relief_yuan), relief);
    assert_eq!(yuan(&reconciliation.advances_yuan), expected_advances);
    assert_eq!(
        yuan(&reconciliation.closing_yuan),
        expected_premiums + expected_top_ups - relief - expected_advances
    );
    assert_eq!(yuan(&reconciliation.pending_yuan), Decimal::ZERO);

    // The audit chain verifies, one entry per write that changed something.
    let reports = fangpin_server::admin::verify_audit(&cluster.database_url, Some(COUNTY))
        .await
        .expect("verify the audit chain");
    let (entries, _) = reports[0].verdict.expect("the audit chain is intact");
    let rows: u64 = audit_ids.values().map(|&n| n as u64).sum();
    assert_eq!(entries, rows);
    sql.close().await.expect("close");
}

fn yuan(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_else(|_| panic!("an amount: {text}"))
}

async fn balances(sql: &mut AnyConnection, query: &'static str) -> BTreeMap<String, (i64, i64)> {
    sql.fetch_all(query)
        .await
        .expect("balances")
        .iter()
        .map(|r| {
            (
                r.get::<String, _>("account"),
                (
                    r.get::<i64, _>("debits_fen"),
                    r.get::<i64, _>("credits_fen"),
                ),
            )
        })
        .collect()
}

async fn counts(sql: &mut AnyConnection, query: &'static str) -> HashMap<String, i64> {
    sql.fetch_all(query)
        .await
        .expect("counts")
        .iter()
        .map(|r| (r.get::<String, _>("request_id"), r.get::<i64, _>("n")))
        .collect()
}

/// The idempotency records: (rpc, request id) to (status code, response).
async fn stored_answers(sql: &mut AnyConnection) -> HashMap<(String, String), (i64, Vec<u8>)> {
    sql.fetch_all("SELECT rpc, request_id, status_code, response FROM idempotency")
        .await
        .expect("idempotency")
        .iter()
        .map(|r| {
            (
                (r.get::<String, _>("rpc"), r.get::<String, _>("request_id")),
                (
                    r.get::<i64, _>("status_code"),
                    r.get::<Vec<u8>, _>("response"),
                ),
            )
        })
        .collect()
}
