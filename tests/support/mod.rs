//! Starts the real fangpin server on an ephemeral port, over a fresh database,
//! with a clock the test controls, and hands out generated gRPC clients.
//!
//! The backend is SQLite in a temporary directory unless
//! `FANGPIN_TEST_DATABASE_URL` names a PostgreSQL server, in which case every
//! test gets its own freshly created database there, dropped at the end.

pub mod daemon;
pub mod flow;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::NaiveDate;
use fangpin_proto::tonic::transport::Channel;
use fangpin_proto::v1::{
    claim_service_client::ClaimServiceClient, deadline_service_client::DeadlineServiceClient,
    enrollment_service_client::EnrollmentServiceClient,
    follow_up_service_client::FollowUpServiceClient, ledger_service_client::LedgerServiceClient,
    payout_service_client::PayoutServiceClient, policy_service_client::PolicyServiceClient,
    publicity_service_client::PublicityServiceClient,
    screening_service_client::ScreeningServiceClient, survey_service_client::SurveyServiceClient,
};
use fangpin_server::{ManualClock, ServerOptions};
use fangpin_store::Store;
use sqlx::{Connection, Executor};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PG_ENV: &str = "FANGPIN_TEST_DATABASE_URL";

enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres {
        admin_url: String,
        name: String,
    },
    /// Handed on to the restarted server, which drops it.
    Moved,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub clock: Arc<ManualClock>,
    pub channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<Result<(), String>>>,
    db: TestDb,
    database_url: String,
    /// The key the database was sealed with, for a restart.
    personal_data: fangpin_domain::personal_data::PersonalDataKey,
    /// The evidence folder, unless the options named one.
    evidence: Option<tempfile::TempDir>,
}

/// The database URL of a fresh, empty database for one test: a new database on
/// the PostgreSQL server of `postgres_admin_url`, or SQLite when it is None.
async fn fresh_database(postgres_admin_url: Option<String>) -> (String, TestDb) {
    match postgres_admin_url {
        Some(admin_url) if !admin_url.is_empty() => {
            sqlx::any::install_default_drivers();
            let name = format!("fangpin_test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::AnyConnection::connect(&admin_url)
                .await
                .expect("connect to the PostgreSQL admin URL");
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .expect("create a test database");
            admin.close().await.expect("close admin connection");
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(base, _)| base);
            (
                format!("{base}/{name}"),
                TestDb::Postgres { admin_url, name },
            )
        }
        _ => {
            let dir = tempfile::tempdir().expect("temporary directory");
            let url = format!("sqlite://{}", dir.path().join("fangpin.db").display());
            (url, TestDb::Sqlite(dir))
        }
    }
}

impl TestServer {
    /// Starts a server whose date is `today` (Beijing time) until the test moves it.
    pub async fn start(today: NaiveDate) -> TestServer {
        TestServer::start_on(today, std::env::var(PG_ENV).ok()).await
    }

    /// As `start`, on a new database of the PostgreSQL server `postgres_admin_url`
    /// names, or on SQLite when it is None, whatever `FANGPIN_TEST_DATABASE_URL` says.
    pub async fn start_on(today: NaiveDate, postgres_admin_url: Option<String>) -> TestServer {
        TestServer::start_full(today, postgres_admin_url, ServerOptions::default()).await
    }

    /// As `start`, with the given options (tokens, limits).
    pub async fn start_with(today: NaiveDate, options: ServerOptions) -> TestServer {
        TestServer::start_full(today, std::env::var(PG_ENV).ok(), options).await
    }

    async fn start_full(
        today: NaiveDate,
        postgres_admin_url: Option<String>,
        options: ServerOptions,
    ) -> TestServer {
        let (url, db) = fresh_database(postgres_admin_url).await;
        let clock = Arc::new(ManualClock::at_date(today));
        TestServer::serve(url, db, clock, options).await
    }

    /// Stops the server and starts a new one on the same database, with
    /// the same clock and `options` (which must carry the database's
    /// personal-data key: `restart_options` starts from the first server's), as
    /// an operator restarts fangpind with a new configuration.
    pub async fn restart_with(mut self, options: ServerOptions) -> TestServer {
        self.restart(options).await;
        self
    }

    /// `restart_with`, in place.
    pub async fn restart(&mut self, options: ServerOptions) {
        self.restart_on(None, options).await;
    }

    /// `restart`, serving on `listener` (bound before the restart, so that
    /// another process could be told the address first) or on a new
    /// ephemeral port when it is None.
    pub async fn restart_on(
        &mut self,
        listener: Option<tokio::net::TcpListener>,
        options: ServerOptions,
    ) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("server task")
                .expect("server ran cleanly");
        }
        let db = std::mem::replace(&mut self.db, TestDb::Moved);
        let (url, clock) = (self.database_url.clone(), self.clock.clone());
        *self = TestServer::serve_on(listener, url, db, clock, options).await;
    }

    /// Default options with this server's personal-data key, for `restart_with`.
    pub fn restart_options(&self) -> ServerOptions {
        ServerOptions {
            personal_data: self.personal_data.clone(),
            ..ServerOptions::default()
        }
    }

    async fn serve(
        url: String,
        db: TestDb,
        clock: Arc<ManualClock>,
        options: ServerOptions,
    ) -> TestServer {
        TestServer::serve_on(None, url, db, clock, options).await
    }

    async fn serve_on(
        listener: Option<tokio::net::TcpListener>,
        url: String,
        db: TestDb,
        clock: Arc<ManualClock>,
        mut options: ServerOptions,
    ) -> TestServer {
        let evidence = if options.evidence_dir.is_none() {
            let dir = tempfile::tempdir().expect("an evidence folder");
            options.evidence_dir = Some(dir.path().to_path_buf());
            Some(dir)
        } else {
            None
        };
        // Printed notices use Debian's CJK font when the machine has it
        // (.ci/run installs it); without it PrintNotice answers
        // FAILED_PRECONDITION and the notice tests say so.
        if options.notice_font.is_none() {
            options.notice_font = notice_font();
        }
        let store = Store::connect(&url)
            .await
            .expect("open and migrate the test database");
        let listener = match listener {
            Some(listener) => listener,
            None => tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind an ephemeral port"),
        };
        let addr = listener.local_addr().expect("local address");
        let personal_data = options.personal_data.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server_clock: Arc<dyn fangpin_server::Clock> = clock.clone();
        let handle = tokio::spawn(async move {
            fangpin_server::run_with(listener, store, server_clock, options, async {
                let _ = rx.await;
            })
            .await
            .map_err(|e| e.to_string())
        });
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("valid URI")
            .connect()
            .await
            .expect("connect to the test server");
        TestServer {
            addr,
            clock,
            channel,
            shutdown: Some(tx),
            handle: Some(handle),
            db,
            database_url: url,
            personal_data,
            evidence,
        }
    }

    /// The folder the server keeps evidence files in, when the test did not
    /// name one.
    pub fn evidence_dir(&self) -> Option<&std::path::Path> {
        self.evidence.as_ref().map(tempfile::TempDir::path)
    }

    /// The URL of the server's database, for a benchmark that bulk-loads it.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    pub fn set_date(&self, date: NaiveDate) {
        self.clock.set_date(date);
    }

    pub fn policy(&self) -> PolicyServiceClient<Channel> {
        PolicyServiceClient::new(self.channel.clone())
    }
    pub fn enrollment(&self) -> EnrollmentServiceClient<Channel> {
        EnrollmentServiceClient::new(self.channel.clone())
    }
    pub fn claims(&self) -> ClaimServiceClient<Channel> {
        ClaimServiceClient::new(self.channel.clone())
    }
    pub fn survey(&self) -> SurveyServiceClient<Channel> {
        SurveyServiceClient::new(self.channel.clone())
    }
    pub fn publicity(&self) -> PublicityServiceClient<Channel> {
        PublicityServiceClient::new(self.channel.clone())
    }
    pub fn payout(&self) -> PayoutServiceClient<Channel> {
        PayoutServiceClient::new(self.channel.clone())
    }
    pub fn ledger(&self) -> LedgerServiceClient<Channel> {
        LedgerServiceClient::new(self.channel.clone())
    }
    pub fn follow_up(&self) -> FollowUpServiceClient<Channel> {
        FollowUpServiceClient::new(self.channel.clone())
    }
    pub fn deadlines(&self) -> DeadlineServiceClient<Channel> {
        DeadlineServiceClient::new(self.channel.clone())
    }
    pub fn audit(&self) -> fangpin_proto::v1::audit_service_client::AuditServiceClient<Channel> {
        fangpin_proto::v1::audit_service_client::AuditServiceClient::new(self.channel.clone())
    }
    pub fn screening(&self) -> ScreeningServiceClient<Channel> {
        ScreeningServiceClient::new(self.channel.clone())
    }

    /// Shuts the server down and drops a PostgreSQL test database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("server task")
                .expect("server ran cleanly");
        }
        if let TestDb::Postgres { admin_url, name } = &self.db {
            let mut admin = sqlx::AnyConnection::connect(admin_url)
                .await
                .expect("connect to drop the test database");
            admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await
                .expect("drop the test database");
        }
    }
}

/// Runs the real `fangpin` command line against the test server and
/// returns what it printed; it must succeed.
/// The command runs on a blocking thread, so that the server, on this
/// test's runtime, answers it meanwhile.
pub async fn fangpin(s: &TestServer, args: &[&str]) -> String {
    let server = format!("http://{}", s.addr);
    let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(daemon::fangpin_cli())
            .arg("--server")
            .arg(server)
            .args(owned)
            .env_remove("FANGPIN_TOKEN")
            .output()
    })
    .await
    .expect("the command's thread")
    .expect("run fangpin");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "fangpin {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The CJK font the test servers print notices in, when installed.
pub fn notice_font() -> Option<std::path::PathBuf> {
    Some(std::path::PathBuf::from(
        fangpin_server::services::notice_pdf::DEBIAN_CJK_FONT,
    ))
    .filter(|p| p.is_file())
}

pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Builds a valid resident ID number from a birth date and a sequence.
pub fn resident_id(birth: &str, sequence: u32) -> String {
    let first17 = format!("130426{birth}{sequence:03}");
    fangpin_domain::identity::ResidentId::from_first17(&first17)
        .expect("valid first 17 digits")
        .as_str()
        .to_string()
}

/// Where a benchmark measures its anchor beside the test server's
/// database: for SQLite a file in the same directory, so the same
/// filesystem; for PostgreSQL the server's own database.
pub fn anchor_database_url(server_url: &str) -> String {
    match server_url.strip_prefix("sqlite://") {
        Some(path) => {
            let dir = std::path::Path::new(path)
                .parent()
                .expect("the database's directory");
            format!("sqlite://{}?mode=rwc", dir.join("anchor.db").display())
        }
        None => server_url.to_string(),
    }
}
