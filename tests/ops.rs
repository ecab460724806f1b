//! fangpind as an operator runs it: the real binary as a child process, its
//! configuration check, graceful shutdown on SIGTERM, and SQLite backup and
//! restore with `fangpin admin` beside a live server. SQLite only: the
//! shutdown tests hold SQLite's write lock to make a call slow, and the
//! backup is SQLite's (PostgreSQL uses pg_dump, docs/backup.md).
//!
//! The binary and its process: `fangpin_tests::daemon`.

use std::path::Path;
use std::time::{Duration, Instant};

use fangpin_proto::tonic::Code;
use fangpin_proto::tonic::transport::Channel;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::{
    enrollment_service_client::EnrollmentServiceClient, ledger_service_client::LedgerServiceClient,
    policy_service_client::PolicyServiceClient,
};
use fangpin_server::write_path::convert::policy_to_pb;
use fangpin_tests::daemon::{Daemon, fangpind_command};
use fangpin_tests::{request_id, resident_id};
use sqlx::{Connection, Executor};

const COUNTY: &str = "130426";
const VILLAGE: &str = "130426100201";
const YEAR: i32 = 2024;

fn register_county_request() -> pb::RegisterCountyRequest {
    pb::RegisterCountyRequest {
        request_id: request_id(),
        county_code: COUNTY.into(),
        name: "涉县".into(),
        rural_population: 300_000,
        insurer: "中国人寿涉县支公司".into(),
    }
}

/// Holds SQLite's write lock from a second connection, as a long
/// transaction of another process would: the server's next write waits on
/// its busy timeout until `release`.
struct WriteLock(sqlx::SqliteConnection);

impl WriteLock {
    async fn take(database: &Path) -> WriteLock {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display()))
            .await
            .expect("open the database beside the server");
        conn.execute("BEGIN IMMEDIATE")
            .await
            .expect("take the write lock");
        WriteLock(conn)
    }

    async fn release(mut self) {
        self.0.execute("ROLLBACK").await.expect("release the lock");
        self.0.close().await.expect("close");
    }
}

async fn counties_in(database: &Path) -> i64 {
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", database.display()))
        .await
        .expect("open the database");
    let count = sqlx::query_scalar("SELECT COUNT(*) FROM counties")
        .fetch_one(&mut conn)
        .await
        .expect("count counties");
    conn.close().await.expect("close");
    count
}

#[test]
fn check_config_prints_the_effective_configuration_and_starts_nothing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("fangpind.toml");
    // Nothing listens on port 1 here: had fangpind tried to open this
    // database, it would have failed.
    std::fs::write(
        &file,
        r#"
listen = "0.0.0.0:50051"
database_url = "postgres://fangpin:s3cret@127.0.0.1:1/fangpin"
dev = true
[server]
shutdown_grace_secs = 25
max_connections = 32
[log]
format = "json"
"#,
    )
    .expect("write the file");
    let output = fangpind_command()
        .arg("--check-config")
        .env("FANGPIN_CONFIG", &file)
        .env("FANGPIN_SHUTDOWN_GRACE_SECS", "7")
        .output()
        .expect("run fangpind --check-config");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(!stdout.contains("s3cret"), "{stdout}");
    for line in [
        r#"listen = "0.0.0.0:50051""#,
        r#"database_url = "postgres://fangpin:***@127.0.0.1:1/fangpin""#,
        "shutdown_grace_secs = 7  # from environment FANGPIN_SHUTDOWN_GRACE_SECS",
        "max_connections = 32",
        "request_timeout_secs = 30  # default",
        r#"format = "json""#,
        "# DEVELOPMENT MODE: plaintext; no authentication;",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }

    std::fs::write(&file, "[server]\nshutdown_grace_secs = 0\nretries = 3\n").expect("write");
    let output = fangpind_command()
        .args(["--check-config", "--config"])
        .arg(&file)
        .output()
        .expect("run fangpind --check-config");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("unknown field `retries`"), "{stderr}");

    std::fs::write(&file, "[server]\nshutdown_grace_secs = 0\n").expect("write");
    let output = fangpind_command()
        .args(["--check-config", "--config"])
        .arg(&file)
        .env("FANGPIN_MAX_CONNECTIONS", "x")
        .output()
        .expect("run fangpind --check-config");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("server.shutdown_grace_secs: must be between 1 and 300, got 0")
            && stderr.contains(r#"FANGPIN_MAX_CONNECTIONS: not a number: "x""#),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_lets_the_call_in_flight_finish_and_refuses_new_ones() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = dir.path().join("fangpin.db");
    let grace = Duration::from_secs(20);
    let mut daemon = Daemon::start(&database, grace.as_secs()).await;
    let mut enrollment = EnrollmentServiceClient::new(daemon.channel().await);

    let lock = WriteLock::take(&database).await;
    let in_flight = tokio::spawn(async move {
        enrollment
            .register_county(register_county_request())
            .await
            .map(|r| r.into_inner())
    });
    daemon
        .wait_for(|line| {
            line["message"] == "call started"
                && line["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/RegisterCounty"))
        })
        .await;

    daemon.terminate();
    let signalled = Instant::now();
    daemon
        .wait_for_log("shutting down: no new calls, finishing in-flight calls")
        .await;
    daemon
        .wait_for_log("listener closed: no new connections")
        .await;
    // A new client cannot connect.
    let refused = Channel::from_shared(format!("http://{}", daemon.addr))
        .expect("valid URI")
        .connect()
        .await;
    assert!(refused.is_err(), "a new connection after SIGTERM succeeded");

    lock.release().await;
    let county = in_flight
        .await
        .expect("the call's task")
        .expect("the call in flight completes");
    assert_eq!(county.county_code, COUNTY);

    let status = daemon.wait_exit().await;
    assert!(status.success(), "fangpind exited with {status}");
    assert!(signalled.elapsed() < grace, "shutdown took the whole grace");
    let logs = daemon.drain_logs();
    assert!(logs.iter().any(|l| l["message"] == "fangpind stopped"));
    assert!(
        !logs
            .iter()
            .any(|l| l["message"] == "grace period over: cutting the calls still in flight"),
        "{logs:#?}"
    );
    assert_eq!(counties_in(&database).await, 1, "the call's effect is kept");
}

#[tokio::test]
async fn calls_still_running_after_the_grace_period_are_cut() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = dir.path().join("fangpin.db");
    let mut daemon = Daemon::start(&database, 1).await;
    let mut enrollment = EnrollmentServiceClient::new(daemon.channel().await);

    let lock = WriteLock::take(&database).await;
    let in_flight = tokio::spawn(async move {
        enrollment
            .register_county(register_county_request())
            .await
            .map(|r| r.into_inner())
    });
    daemon
        .wait_for(|line| {
            line["message"] == "call started"
                && line["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/RegisterCounty"))
        })
        .await;
    daemon.terminate();

    let cut = daemon
        .wait_for_log("grace period over: cutting the calls still in flight")
        .await;
    assert_eq!(cut["cut"], 1, "{cut}");
    let status = in_flight
        .await
        .expect("the call's task")
        .expect_err("the call is cut");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    // Let the cut transaction's BEGIN go through, so it can roll back.
    lock.release().await;
    let exit = daemon.wait_exit().await;
    assert!(exit.success(), "fangpind exited with {exit}");
    assert_eq!(counties_in(&database).await, 0, "the cut call rolled back");
}

/// What a finance bureau would compare after a restore.
#[derive(Debug, PartialEq)]
struct Books {
    balance: pb::PoolBalance,
    reconciliation: pb::Reconciliation,
    entries: Vec<pb::LedgerEntry>,
}

async fn books(channel: Channel) -> Books {
    let mut ledger = LedgerServiceClient::new(channel);
    let pool = || pb::PoolRequest {
        county_code: COUNTY.into(),
        policy_year: YEAR,
    };
    let balance = ledger
        .get_pool_balance(pool())
        .await
        .expect("balance")
        .into_inner();
    let reconciliation = ledger
        .get_reconciliation(pool())
        .await
        .expect("reconciliation")
        .into_inner();
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = ledger
            .list_entries(pb::ListEntriesRequest {
                county_code: COUNTY.into(),
                policy_year: YEAR,
                page_size: 1000,
                page_token,
            })
            .await
            .expect("entries")
            .into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Books {
        balance,
        reconciliation,
        entries,
    }
}

/// A county with a policy, two households and two premiums.
async fn ledger_activity(channel: Channel) {
    let mut enrollment = EnrollmentServiceClient::new(channel.clone());
    enrollment
        .register_county(register_county_request())
        .await
        .expect("register county");
    let county = fangpin_domain::identity::CountyCode::parse(COUNTY).expect("valid");
    let policy = policy_to_pb(
        &fangpin_domain::policy::Policy::example(county, YEAR),
        0,
        false,
    );
    PolicyServiceClient::new(channel)
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(policy),
        })
        .await
        .expect("put policy");
    for sequence in 1..=2 {
        enrollment
            .enroll_household(pb::EnrollHouseholdRequest {
                request_id: request_id(),
                county_code: COUNTY.into(),
                policy_year: YEAR,
                village_code: VILLAGE.into(),
                household_type: pb::HouseholdType::UnstableEscaped.into(),
                head: Some(pb::Person {
                    id_number: resident_id("19700101", sequence),
                    name: format!("户主{sequence}"),
                    relation: String::new(),
                }),
                members: vec![],
                bank_account: format!("62284800{sequence:08}"),
            })
            .await
            .expect("enroll household");
    }
    for (amount, reference) in [("1000000.00", "voucher 1"), ("500000.00", "voucher 2")] {
        enrollment
            .record_premium(pb::RecordPremiumRequest {
                request_id: request_id(),
                county_code: COUNTY.into(),
                policy_year: YEAR,
                amount_yuan: amount.into(),
                reference: reference.into(),
            })
            .await
            .expect("record premium");
    }
}

#[tokio::test]
async fn a_backup_of_a_live_server_restores_the_same_books() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let live = dir.path().join("live.db");
    let live_url = format!("sqlite://{}", live.display());
    let backup = dir.path().join("backup.db");
    let restored = dir.path().join("restored").join("fangpin.db");
    std::fs::create_dir(restored.parent().expect("parent")).expect("mkdir");
    let restored_url = format!("sqlite://{}", restored.display());

    let daemon = Daemon::start(&live, 20).await;
    ledger_activity(daemon.channel().await).await;

    // The server keeps running, with its pool open, during the backup.
    let backed_up = fangpin_server::admin::backup(&live_url, &backup)
        .await
        .expect("backup of a live database");
    let count = |name: &str| {
        backed_up
            .tables
            .iter()
            .find(|(table, _)| table == name)
            .map(|(_, rows)| *rows)
    };
    assert_eq!(count("counties"), Some(1));
    assert_eq!(count("households"), Some(2));
    assert!(count("ledger_entries") >= Some(2), "{backed_up:?}");
    let again = fangpin_server::admin::backup(&live_url, &backup)
        .await
        .expect_err("an existing file is not overwritten");
    assert!(again.to_string().contains("already exists"), "{again}");
    // Nor is a database a server has open replaced.
    let in_use = fangpin_server::admin::restore(&backup, &live_url, true)
        .await
        .expect_err("the live database is in use");
    assert!(format!("{in_use:#}").contains("in use"), "{in_use:#}");

    let before = books(daemon.channel().await).await;
    assert!(!before.entries.is_empty());
    daemon.stop().await;

    let report = fangpin_server::admin::restore(&backup, &restored_url, false)
        .await
        .expect("restore to a new path");
    assert_eq!(report.tables, backed_up.tables);
    let twice = fangpin_server::admin::restore(&backup, &restored_url, false)
        .await
        .expect_err("an existing database needs --force");
    assert!(twice.to_string().contains("--force"), "{twice}");

    // Sealed ID numbers and bank accounts open only with the key they were
    // sealed with: a restore brings the key along (here development mode's,
    // beside the database file; docs/personal-data.md).
    std::fs::copy(
        dir.path().join("live.db.personal-data.key"),
        restored.with_file_name("fangpin.db.personal-data.key"),
    )
    .expect("copy the personal-data key beside the restored database");
    let daemon = Daemon::start(&restored, 20).await;
    let after = books(daemon.channel().await).await;
    assert_eq!(after, before);
    daemon.stop().await;

    // --force replaces a stopped server's database.
    fangpin_server::admin::restore(&backup, &restored_url, true)
        .await
        .expect("restore over a stopped server's database");
}

/// The README's PostgreSQL command, `DATABASE_URL=postgres://… fangpind
/// --dev`, on a fresh database: development mode generates the
/// personal-data key in the current directory, and the next start finds it
/// and opens what the first one sealed. PostgreSQL only (CI runs it there).
#[tokio::test]
async fn the_readme_postgres_command_starts_on_a_fresh_database_and_restarts() {
    let Some(admin_url) = std::env::var(fangpin_tests::PG_ENV)
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("PostgreSQL only: set {}", fangpin_tests::PG_ENV);
        return;
    };
    sqlx::any::install_default_drivers();
    let name = format!("fangpin_readme_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::AnyConnection::connect(&admin_url)
        .await
        .expect("admin");
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("createdb");
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url.as_str(), |(b, _)| b);
    let url = format!("{base}/{name}");
    let cwd = tempfile::tempdir().expect("a working directory");
    let start = || {
        let mut command = fangpind_command();
        command
            .current_dir(cwd.path())
            .env("DATABASE_URL", &url)
            .args(["--today", "2024-03-01", "--listen", "127.0.0.1:0"]);
        Daemon::spawn(command, 5)
    };

    let daemon = start().await;
    let mut enrollment = EnrollmentServiceClient::new(daemon.channel().await);
    enrollment
        .register_county(register_county_request())
        .await
        .expect("the fresh database takes a county");
    let county = fangpin_domain::identity::CountyCode::parse(COUNTY).expect("valid");
    PolicyServiceClient::new(daemon.channel().await)
        .put_policy(pb::PutPolicyRequest {
            request_id: request_id(),
            policy: Some(policy_to_pb(
                &fangpin_domain::policy::Policy::example(county, YEAR),
                0,
                false,
            )),
        })
        .await
        .expect("put policy");
    let household = enrollment
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: YEAR,
            village_code: VILLAGE.into(),
            household_type: pb::HouseholdType::UnstableEscaped.into(),
            head: Some(pb::Person {
                id_number: resident_id("19650101", 1),
                name: "户主".into(),
                relation: String::new(),
            }),
            members: vec![],
            bank_account: "6217000130426001234".into(),
        })
        .await
        .expect("enrol: sealed with the generated key")
        .into_inner();
    daemon.stop().await;

    let keys: Vec<_> = std::fs::read_dir(cwd.path())
        .expect("list the working directory")
        .map(|e| e.expect("entry").file_name().into_string().expect("UTF-8"))
        .collect();
    let expected = format!("fangpin-dev.127.0.0.1_5432_{name}.personal-data.key");
    assert_eq!(
        keys,
        vec![expected.clone()],
        "one key, named after the database"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cwd.path().join(&expected))
            .expect("key metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The second start checks the key against the database and opens it.
    let daemon = start().await;
    let mut enrollment = EnrollmentServiceClient::new(daemon.channel().await);
    let again = enrollment
        .get_household(pb::GetHouseholdRequest {
            household_id: household.household_id.clone(),
        })
        .await
        .expect("the restarted server reads the household")
        .into_inner();
    assert_eq!(again.bank_account_masked, household.bank_account_masked);
    daemon.stop().await;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .expect("drop the database");
}
