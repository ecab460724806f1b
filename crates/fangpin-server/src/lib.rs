//! fangpin's gRPC server. `run` takes a bound listener, a store, a clock and a
//! shutdown future, so the binary and the integration tests start the very
//! same server (the tests on port 0, with a clock they control).
//! `run_with` takes the operator's limits as well (`ServerOptions`).
//!
//! The crate has three parts: `transport` (TLS, tokens, deadlines, drain,
//! telemetry), `write_path` (App, scope, conversion, errors, personal
//! data) and `services` (one module per proto service). `admin` is
//! `fangpind admin`, the commands that open the database themselves.

pub mod admin;
pub mod services;
pub mod transport;
pub mod write_path;

use services::notice_pdf;
use transport::{auth, caller, deadline, drain, metrics, storage_watch, telemetry, tls};
use write_path::{app, calendar, clock, personal_data};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use fangpin_proto::tonic::server::NamedService;
use fangpin_proto::tonic::transport::Server;
use fangpin_proto::tonic::transport::server::TcpIncoming;
use fangpin_proto::v1::{
    audit_service_server::AuditServiceServer, claim_service_server::ClaimServiceServer,
    deadline_service_server::DeadlineServiceServer,
    enrollment_service_server::EnrollmentServiceServer,
    evidence_service_server::EvidenceServiceServer,
    follow_up_service_server::FollowUpServiceServer, ledger_service_server::LedgerServiceServer,
    payout_service_server::PayoutServiceServer, policy_service_server::PolicyServiceServer,
    publicity_service_server::PublicityServiceServer,
    screening_service_server::ScreeningServiceServer,
    service_info_service_server::ServiceInfoServiceServer,
    survey_service_server::SurveyServiceServer,
};
use fangpin_store::Store;
use tokio::net::TcpListener;

pub use app::App;
pub use clock::{Clock, ManualClock, SystemClock};

/// Largest request or response accepted: a bank statement of up to 4 MiB
/// (`bank::MAX_STATEMENT_BYTES`) plus its envelope. Every other message is
/// small; a large one is a mistake or an attack and must not exhaust memory.
pub const MAX_MESSAGE_BYTES: usize = fangpin_domain::bank::MAX_STATEMENT_BYTES + 64 * 1024;
/// A request still running after this is cancelled; its transaction rolls back.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long in-flight calls may run after the shutdown signal. Below the 30 s
/// Kubernetes and systemd wait before SIGKILL, so the cut is ours and clean.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(20);
/// After the grace period, how long the cut calls and the database pool get
/// to wind down before `run` returns regardless.
const SHUTDOWN_WIND_DOWN: Duration = Duration::from_secs(5);
/// Concurrent requests per client connection; the store's pool is the real
/// limit, this keeps one client from queueing without bound.
pub const MAX_CONCURRENT_REQUESTS_PER_CONNECTION: usize = 64;

/// The operator's settings for one server (`server.*`, `[auth]`, `[tls]`
/// and `[personal_data]` in fangpind.toml).
#[derive(Clone)]
pub struct ServerOptions {
    /// A call still running after this is cancelled.
    pub request_timeout: Duration,
    /// How long in-flight calls may run after the shutdown signal.
    pub shutdown_grace: Duration,
    /// Who may call what (`auth::Authenticator`).
    pub authenticator: Arc<auth::Authenticator>,
    /// TLS, and mutual TLS when the identity has a client CA. None serves
    /// plaintext, which fangpind allows only in development mode (the
    /// configuration refuses a production one without `[tls]`); the default
    /// is None so the tests' in-process servers need no certificates.
    pub tls: Option<tls::TlsIdentity>,
    /// Seals ID numbers and bank accounts (docs/personal-data.md). `run_with`
    /// refuses a key other than the one the database was sealed with.
    pub personal_data: fangpin_domain::personal_data::PersonalDataKey,
    /// The working-day calendar: the built-in years, extended by the
    /// operator's `[calendar] file` (`calendar::load_file`).
    pub calendar: Arc<fangpin_domain::calendar::WorkCalendar>,
    /// The folder evidence files are kept in (`[evidence] dir`; fangpind's
    /// default is `evidence/` beside a SQLite file). None: no evidence
    /// store, and the evidence RPCs answer FAILED_PRECONDITION.
    pub evidence_dir: Option<std::path::PathBuf>,
    /// The CJK font (TrueType, OpenType or a collection's first face) the
    /// printed village notices use (`[notice] font`). Read and checked at
    /// start-up: a wrong file stops the server. None: PrintNotice answers
    /// FAILED_PRECONDITION and everything else works.
    pub notice_font: Option<std::path::PathBuf>,
    /// How the web console signs its users in (`[console]`, with `[auth]`).
    pub console: transport::console::SignIn,
}

impl Default for ServerOptions {
    /// Authentication off and plaintext, as in development mode, and a
    /// fresh random personal-data key, which suits only a server over a new
    /// database nothing else will open: the integration tests. `fangpind`
    /// always sets all three from its configuration.
    fn default() -> Self {
        ServerOptions {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            authenticator: Arc::new(auth::Authenticator::Development),
            tls: None,
            personal_data: personal_data::random_key(),
            calendar: Arc::new(fangpin_domain::calendar::WorkCalendar::official().clone()),
            evidence_dir: None,
            notice_font: None,
            console: transport::console::SignIn::Development,
        }
    }
}

/// `run_with` and the default `ServerOptions`.
pub async fn run(
    listener: TcpListener,
    store: Store,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(listener, store, clock, ServerOptions::default(), shutdown).await
}

/// Serves every fangpin service, gRPC health and reflection on `listener`
/// until `shutdown` completes. Then: health turns NOT_SERVING, the listener
/// closes, calls in flight get `options.shutdown_grace` to finish (those still
/// running after it are cut with UNAVAILABLE and counted in the log), and the
/// database pool is closed.
pub async fn run_with(
    listener: TcpListener,
    store: Store,
    clock: Arc<dyn Clock>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_health_listener(listener, None, store, clock, options, shutdown).await
}

/// Calls on the plaintext health listener are single health checks.
const HEALTH_CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// A probe opens a connection, checks, and closes it; a handful at once is
/// already more than kubelet sends.
const HEALTH_CONCURRENT_REQUESTS_PER_CONNECTION: usize = 4;

/// As `run_with`, and when `health_listener` is given, serves gRPC health
/// (`grpc.health.v1.Health` only, nothing else) in plaintext on it: for
/// probes that cannot speak TLS, such as Kubernetes' native `grpc:` probes.
/// It reports the same statuses as the main listener (NOT_SERVING from the
/// shutdown signal on) and closes after the main listener's calls are done.
pub async fn run_with_health_listener(
    listener: TcpListener,
    health_listener: Option<TcpListener>,
    store: Store,
    clock: Arc<dyn Clock>,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Before anything is served: a wrong key would fail every lookup and
    // seal new rows the database's own key cannot open.
    personal_data::verify_key(&store, &options.personal_data, clock.now()).await?;
    // Before anything is served: deadlines counted provisionally, Monday to
    // Friday, are recounted now that the calendar may cover their year.
    let recomputed =
        calendar::recompute_provisional_deadlines(&store, &options.calendar, clock.now()).await?;
    let (first_year, last_year) = options.calendar.years();
    tracing::info!(
        first_year,
        last_year,
        recomputed_deadlines = recomputed,
        "working-day calendar"
    );
    calendar::warn_if_running_out(&options.calendar, clock.as_ref());
    let _coverage_watch = calendar::spawn_coverage_watch(options.calendar.clone(), clock.clone());
    let mut app = App::new(
        store,
        clock,
        options.personal_data.clone(),
        options.calendar.clone(),
    );
    if let Some(dir) = &options.evidence_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the evidence folder {}", dir.display()))?;
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir)
            .with_context(|| format!("opening the evidence folder {}", dir.display()))?;
        app.evidence = Some(Arc::new(local));
    }
    match &options.notice_font {
        Some(path) => {
            let font = notice_pdf::NoticeFont::load(path)?;
            tracing::info!(font = font.path(), "village notices print in this font");
            app.notice_font = Some(font);
        }
        None => tracing::warn!(
            "no CJK font for printed notices ([notice] font): PrintNotice answers \
             FAILED_PRECONDITION until one is set (Debian: apt install fonts-wqy-microhei)"
        ),
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    // Reflection in both versions: v1, and v1alpha for the clients that
    // speak only it (grpcio's reflection client, Postman, older grpcurl).
    // Each lists both, so a client sees the same services whichever it asks.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(fangpin_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
    };
    let reflection = reflection_builder().build_v1()?;
    let reflection_v1alpha = reflection_builder().build_v1alpha()?;

    macro_rules! limited {
        ($server:ident, $api:expr) => {
            $server::new($api)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
        };
    }
    let policy = limited!(
        PolicyServiceServer,
        services::policy::PolicyApi(app.clone())
    );
    let enrollment = limited!(
        EnrollmentServiceServer,
        services::enrollment::EnrollmentApi(app.clone())
    );
    let claims = limited!(ClaimServiceServer, services::claims::ClaimApi(app.clone()));
    let survey = limited!(
        SurveyServiceServer,
        services::survey::SurveyApi(app.clone())
    );
    let publicity = limited!(
        PublicityServiceServer,
        services::publicity::PublicityApi(app.clone())
    );
    let payout = limited!(
        PayoutServiceServer,
        services::payout::PayoutApi(app.clone())
    );
    let ledger = limited!(
        LedgerServiceServer,
        services::ledger::LedgerApi(app.clone())
    );
    // Feed files arrive as a stream of chunks of at most 1 MiB each, so the
    // per-message limit holds for them too.
    let screening = limited!(
        ScreeningServiceServer,
        services::screening::ScreeningApi::new(app.clone())
    );

    let service_info = limited!(
        ServiceInfoServiceServer,
        services::service_info::ServiceInfoApi(app.clone())
    );
    let follow_up = limited!(
        FollowUpServiceServer,
        services::follow_up::FollowUpApi(app.clone())
    );
    let deadlines = limited!(
        DeadlineServiceServer,
        services::deadlines::DeadlineApi(app.clone())
    );
    // Evidence streams in chunks of at most 1 MiB each, like feeds.
    let evidence = limited!(
        EvidenceServiceServer,
        services::evidence::EvidenceApi::new(app.clone())
    );
    let audit = limited!(AuditServiceServer, services::audit::AuditApi(app.clone()));
    // The gRPC services and, beside them on the same port, the web
    // console's files (`transport::console`).
    let mut grpc = fangpin_proto::tonic::service::RoutesBuilder::default();
    grpc.add_service(health_service.clone())
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(policy)
        .add_service(enrollment)
        .add_service(claims)
        .add_service(survey)
        .add_service(publicity)
        .add_service(payout)
        .add_service(ledger)
        .add_service(screening)
        .add_service(service_info)
        .add_service(follow_up)
        .add_service(deadlines)
        .add_service(evidence)
        .add_service(audit);
    let routes = fangpin_proto::tonic::service::Routes::from(
        grpc.routes()
            .into_axum_router()
            .merge(transport::console::router(options.console.clone())),
    );
    health
        .set_serving::<PolicyServiceServer<services::policy::PolicyApi>>()
        .await;
    health
        .set_serving::<AuditServiceServer<services::audit::AuditApi>>()
        .await;
    health
        .set_serving::<FollowUpServiceServer<services::follow_up::FollowUpApi>>()
        .await;
    health
        .set_serving::<DeadlineServiceServer<services::deadlines::DeadlineApi>>()
        .await;
    health
        .set_serving::<EvidenceServiceServer<services::evidence::EvidenceApi>>()
        .await;
    health
        .set_serving::<EnrollmentServiceServer<services::enrollment::EnrollmentApi>>()
        .await;
    health
        .set_serving::<ClaimServiceServer<services::claims::ClaimApi>>()
        .await;
    health
        .set_serving::<SurveyServiceServer<services::survey::SurveyApi>>()
        .await;
    health
        .set_serving::<PublicityServiceServer<services::publicity::PublicityApi>>()
        .await;
    health
        .set_serving::<PayoutServiceServer<services::payout::PayoutApi>>()
        .await;
    health
        .set_serving::<LedgerServiceServer<services::ledger::LedgerApi>>()
        .await;
    health
        .set_serving::<ScreeningServiceServer<services::screening::ScreeningApi>>()
        .await;
    health
        .set_serving::<ServiceInfoServiceServer<services::service_info::ServiceInfoApi>>()
        .await;

    // Liveness (LIVENESS_SERVICE) is its own health service: the process
    // answers. It stays SERVING while the database is out of space or the
    // server drains, so a liveness probe does not restart a server that a
    // restart would not help; readiness probes use "".
    health
        .set_service_status(LIVENESS_SERVICE, tonic_health::ServingStatus::Serving)
        .await;
    // From here on a write that finds the database out of space turns
    // health NOT_SERVING until a probe write commits again.
    let storage_watcher = storage_watch::spawn(
        app.storage.clone(),
        app.store.clone(),
        app.clock.clone(),
        health.clone(),
        &SERVICE_NAMES,
    );

    let local = listener.local_addr()?;
    // `local` is the bound address, which is how a caller that asked for
    // port 0 learns the port (the ops tests read it from this line).
    tracing::info!(%local, backend = ?app.store.backend(), "fangpind serving");
    let mut builder = Server::builder();
    match &options.tls {
        Some(identity) => {
            // The identity was checked when it was loaded (`TlsIdentity::load`
            // builds this very configuration), so this fails only on a bug.
            builder = builder
                .tls_config(identity.server_tls_config())
                .context("applying the TLS identity")?;
            if identity.requires_client_certificates() {
                tracing::info!("transport: TLS, client certificates required (mutual TLS)");
            } else {
                tracing::info!("transport: TLS, no client certificates asked for");
            }
        }
        None => tracing::warn!(
            "transport: PLAINTEXT, no TLS: every call, token and personal datum \
             crosses the network readable; development mode only"
        ),
    }
    let (health_stop_tx, health_stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Started once every service is marked SERVING, so a probe never sees
    // a server that is up before its services are.
    let health_only = match health_listener {
        Some(health_listener) => {
            let addr = health_listener.local_addr()?;
            tracing::info!(
                %addr,
                "plaintext health listener: grpc.health.v1 only, for probes"
            );
            let serve = Server::builder()
                .timeout(HEALTH_CALL_TIMEOUT)
                .concurrency_limit_per_connection(HEALTH_CONCURRENT_REQUESTS_PER_CONNECTION)
                .add_service(health_service.clone())
                .serve_with_incoming_shutdown(
                    TcpIncoming::from(health_listener).with_nodelay(Some(true)),
                    async {
                        let _ = health_stop_rx.await;
                    },
                );
            Some(tokio::spawn(serve))
        }
        None => None,
    };
    let drain = drain::Drain::new();
    let drain_health = health.clone();
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = async move {
        shutdown.await;
        // Health turns NOT_SERVING first, so load balancers watching it stop
        // sending before the listener closes; the storage watcher may no
        // longer turn it back.
        storage_watcher.abort();
        storage_watch::set_all(
            &drain_health,
            &SERVICE_NAMES,
            tonic_health::ServingStatus::NotServing,
        )
        .await;
        tracing::info!(
            grace_secs = options.shutdown_grace.as_secs(),
            "shutting down: no new calls, finishing in-flight calls"
        );
        let _ = stopping_tx.send(());
    };
    // Without TCP_NODELAY, Nagle's algorithm holds back the tail of every
    // larger response for tens of milliseconds.
    let incoming = drain::Listening::new(TcpIncoming::from(listener).with_nodelay(Some(true)));
    // Read from the database at each metric collection; no-ops unless an
    // exporter is installed (`telemetry::init`).
    let _gauges = metrics::register(app.store.clone(), app.clock.clone(), app.calendar.clone());
    let serve = builder
        // Outermost, so each call's span and latency include every other
        // layer's answer (a deadline, a cut by `drain`).
        .layer(telemetry::RpcLayer::new())
        // Per call, not server-wide: a feed import streams for minutes.
        .layer(deadline::CallDeadline {
            request: options.request_timeout,
        })
        .concurrency_limit_per_connection(MAX_CONCURRENT_REQUESTS_PER_CONNECTION)
        // HTTP/2's default 64 KiB window makes a streamed feed wait for a
        // window update every 64 KiB; adaptive windows grow with the link.
        .http2_adaptive_window(Some(true))
        .layer(drain.clone())
        // Innermost, so the handler runs inside it: who is calling and
        // through which method, for `App::write`'s audit entry.
        .layer(caller::CallerLayer {
            authenticator: options.authenticator.clone(),
        })
        // Browsers speak gRPC-Web over HTTP/1.1: translated here into gRPC
        // for every layer below, so the console's calls are checked,
        // limited, traced and drained as any other client's.
        .accept_http1(true)
        .layer(transport::console::GrpcWebOrConsoleLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, stop);
    tokio::pin!(serve);

    // Serve until the signal; from then on, the grace period runs.
    tokio::select! {
        biased;
        served = &mut serve => {
            served?;
        }
        // Err only when `serve` ended and dropped the sender: the arm above.
        Ok(()) = stopping_rx => {
            match tokio::time::timeout(options.shutdown_grace, &mut serve).await {
                Ok(served) => served?,
                Err(_) => {
                    let cut = drain.in_flight();
                    tracing::warn!(
                        cut,
                        grace_secs = options.shutdown_grace.as_secs(),
                        "grace period over: cutting the calls still in flight"
                    );
                    drain.cut();
                    app.commits.cut();
                    // Cut calls answer at once and their connections close;
                    // a client that keeps a health watch open would hold
                    // `serve` forever, so this wait is bounded too.
                    if tokio::time::timeout(SHUTDOWN_WIND_DOWN, &mut serve).await.is_err() {
                        tracing::warn!("connections still open after the cut; leaving them");
                    }
                }
            }
        }
    }
    // Probes saw NOT_SERVING through the grace period; now the health
    // listener goes too, within the same bound.
    let _ = health_stop_tx.send(());
    if let Some(handle) = health_only {
        match tokio::time::timeout(SHUTDOWN_WIND_DOWN, handle).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the health listener failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the health listener's task failed"),
            Err(_) => tracing::warn!("health listener still open after shutdown; leaving it"),
        }
    }
    // Connections handed back by cut calls close as they return; one still
    // held by a stuck task must not keep the process alive.
    if tokio::time::timeout(SHUTDOWN_WIND_DOWN, app.store.close())
        .await
        .is_err()
    {
        tracing::warn!("database pool still busy after shutdown; closing anyway");
    }
    tracing::info!("fangpind stopped");
    Ok(())
}

/// The gRPC health service name that reports only that the process is up
/// (deploy/k8s/deployment.yaml's liveness probe).
pub const LIVENESS_SERVICE: &str = "liveness";

/// Every fangpin service, as gRPC health names them.
const SERVICE_NAMES: [&str; 13] = [
    <PolicyServiceServer<services::policy::PolicyApi> as NamedService>::NAME,
    <EnrollmentServiceServer<services::enrollment::EnrollmentApi> as NamedService>::NAME,
    <ClaimServiceServer<services::claims::ClaimApi> as NamedService>::NAME,
    <SurveyServiceServer<services::survey::SurveyApi> as NamedService>::NAME,
    <PublicityServiceServer<services::publicity::PublicityApi> as NamedService>::NAME,
    <PayoutServiceServer<services::payout::PayoutApi> as NamedService>::NAME,
    <LedgerServiceServer<services::ledger::LedgerApi> as NamedService>::NAME,
    <ScreeningServiceServer<services::screening::ScreeningApi> as NamedService>::NAME,
    <ServiceInfoServiceServer<services::service_info::ServiceInfoApi> as NamedService>::NAME,
    <FollowUpServiceServer<services::follow_up::FollowUpApi> as NamedService>::NAME,
    <DeadlineServiceServer<services::deadlines::DeadlineApi> as NamedService>::NAME,
    <EvidenceServiceServer<services::evidence::EvidenceApi> as NamedService>::NAME,
    <AuditServiceServer<services::audit::AuditApi> as NamedService>::NAME,
];
