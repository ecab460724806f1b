//! fangpind: the fangpin server. Parses flags, opens the store, binds the
//! socket and hands both to `fangpin_server::run`.

use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Parser;
use fangpin_server::{Clock, ManualClock, SystemClock};
use fangpin_store::Store;
use tracing_subscriber::EnvFilter;

/// The default database: a SQLite file in the working directory, so that
/// `cargo run` needs nothing else installed.
const DEFAULT_DATABASE_URL: &str = "sqlite://fangpin.db";

#[derive(Parser, Debug)]
#[command(
    name = "fangpind",
    version,
    about = "Poverty-prevention insurance (防贫保) service for a county"
)]
struct Args {
    /// Address to listen on for gRPC.
    #[arg(long, env = "FANGPIN_LISTEN", default_value = "127.0.0.1:50051")]
    listen: String,
    /// sqlite://PATH (embedded, the default) or postgres://USER@HOST/DB (production).
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Pin the service's date (YYYY-MM-DD), for training and demonstrations
    /// only: deadlines and publicity periods are counted from this date.
    #[arg(long)]
    today: Option<NaiveDate>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let store = Store::connect(&args.database_url)
        .await
        .with_context(|| format!("opening the database at {}", redact(&args.database_url)))?;
    let clock: Arc<dyn Clock> = match args.today {
        Some(date) => {
            tracing::warn!(%date, "the service's date is pinned (--today): for training and demonstrations only");
            Arc::new(ManualClock::at_date(date))
        }
        None => Arc::new(SystemClock),
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    fangpin_server::run(listener, store, clock, shutdown_signal()).await
}

/// Completes on Ctrl-C or SIGTERM (what systemd and Kubernetes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Hides a password in a database URL before it reaches a log.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}
