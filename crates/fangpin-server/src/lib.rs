//! fangpin's gRPC server. `run` takes a bound listener, a store, a clock and a
//! shutdown future, so the binary and the integration tests start the very
//! same server (the tests on port 0, with a clock they control).

pub mod app;
pub mod clock;
pub mod convert;
pub mod error;
pub mod services;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use fangpin_proto::tonic::transport::Server;
use fangpin_proto::tonic::transport::server::TcpIncoming;
use fangpin_proto::v1::{
    claim_service_server::ClaimServiceServer, enrollment_service_server::EnrollmentServiceServer,
    ledger_service_server::LedgerServiceServer, payout_service_server::PayoutServiceServer,
    policy_service_server::PolicyServiceServer, publicity_service_server::PublicityServiceServer,
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
/// Concurrent requests per client connection; the store's pool is the real
/// limit, this keeps one client from queueing without bound.
pub const MAX_CONCURRENT_REQUESTS_PER_CONNECTION: usize = 64;

/// Serves every fangpin service, gRPC health and reflection on `listener`
/// until `shutdown` completes, then stops accepting and lets in-flight calls
/// finish.
pub async fn run(
    listener: TcpListener,
    store: Store,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let app = App::new(store, clock);
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(fangpin_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

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

    health
        .set_serving::<PolicyServiceServer<services::policy::PolicyApi>>()
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

    let local = listener.local_addr()?;
    tracing::info!(%local, backend = ?app.store.backend(), "fangpind serving");
    let drain_health = health.clone();
    let stop = async move {
        shutdown.await;
        // Load balancers watching health stop sending before the listener closes.
        drain_health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        tracing::info!("shutting down: finishing in-flight calls");
    };
    // Without TCP_NODELAY, Nagle's algorithm holds back the tail of every
    // larger response for tens of milliseconds.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .timeout(DEFAULT_REQUEST_TIMEOUT)
        .concurrency_limit_per_connection(MAX_CONCURRENT_REQUESTS_PER_CONNECTION)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(policy)
        .add_service(enrollment)
        .add_service(claims)
        .add_service(survey)
        .add_service(publicity)
        .add_service(payout)
        .add_service(ledger)
        .serve_with_incoming_shutdown(incoming, stop)
        .await?;
    app.store.close().await;
    Ok(())
}
