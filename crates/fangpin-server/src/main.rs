//! fangpind: the fangpin server. Loads the configuration (defaults, file,
//! environment, flags: see `config`), opens the store, binds the socket and
//! hands both to `fangpin_server::run_with`.

mod config;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Parser;
use fangpin_server::transport::auth::{Authenticator, TokenVerifier};
use fangpin_server::transport::telemetry::{self, OtelSettings, Telemetry};
use fangpin_server::transport::tls::TlsIdentity;
use fangpin_server::{Clock, ManualClock, SystemClock};
use fangpin_store::Store;

use crate::config::{Config, LogFormat};

#[derive(Parser, Debug)]
#[command(
    name = "fangpind",
    version,
    about = "Poverty-prevention insurance (防贫保) service for a county",
    after_help = "Settings come from built-in defaults, then the file (--config or \
FANGPIN_CONFIG), then the environment (FANGPIN_LISTEN, FANGPIN_DATABASE_URL or \
DATABASE_URL, FANGPIN_REQUEST_TIMEOUT_SECS, FANGPIN_SHUTDOWN_GRACE_SECS, \
FANGPIN_MAX_CONNECTIONS, FANGPIN_HEALTH_LISTEN, FANGPIN_TLS_CERT_FILE, \
FANGPIN_TLS_KEY_FILE, FANGPIN_TLS_CLIENT_CA_FILE, FANGPIN_LOG_FILTER or RUST_LOG, FANGPIN_LOG_FORMAT), \
then these flags; each overrides the one before. Traces and metrics go over \
OTLP/gRPC when OTEL_EXPORTER_OTLP_ENDPOINT is set (OTEL_SERVICE_NAME, \
OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, OTEL_SDK_DISABLED...: see \
docs/observability.md)."
)]
struct Args {
    /// TOML configuration file [env: FANGPIN_CONFIG] (default: none).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Address to listen on for gRPC, IP:PORT (default 127.0.0.1:50051).
    /// Port 0 picks a free port; the log line "fangpind serving" names it.
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<String>,
    /// sqlite://PATH (embedded, the default sqlite://fangpin.db) or
    /// postgres://USER@HOST/DB (production).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Pin the service's date (YYYY-MM-DD), for training and demonstrations
    /// only: deadlines and publicity periods are counted from this date.
    #[arg(long)]
    today: Option<NaiveDate>,
    /// Development mode [env: FANGPIN_DEV]: allows plaintext, no token keys
    /// (every call is the development principal) and a personal-data key
    /// generated beside a SQLite database. Never in production.
    #[arg(long)]
    dev: bool,
    /// Load and validate the configuration, print it (password hidden) and
    /// exit, without binding or opening the database.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Backup and restore of a SQLite database, verification and export of
    /// the audit log (SQLite or PostgreSQL), and the check of a calendar
    /// file. These open the database or the file themselves, beside a live
    /// server or without one, and read no configuration. For PostgreSQL
    /// backups, see docs/backup.md.
    #[command(subcommand)]
    Admin(fangpin_server::admin::Cmd),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Admin(cmd)) = args.command {
        return match fangpin_server::admin::run(cmd).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("error: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let flags = config::Flags {
        config: args.config.clone(),
        listen: args.listen.clone(),
        database_url: args.database_url.clone(),
        dev: args.dev,
    };
    let config = match config::load(&flags, &|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("fangpind: {e}");
            return ExitCode::from(2);
        }
    };
    // Checked with the configuration, so `--check-config` catches it too.
    if let Err(e) = OtelSettings::from_env(&|name| std::env::var(name).ok()) {
        eprintln!("fangpind: OpenTelemetry environment: {e}");
        return ExitCode::from(2);
    }
    // The calendar file is read and checked here, so `--check-config`
    // refuses a bad one before it is deployed.
    let calendar = match &config.calendar_file {
        Some(path) => match fangpin_server::write_path::calendar::load_file(path) {
            Ok(calendar) => calendar,
            Err(e) => {
                eprintln!("fangpind: {e}");
                return ExitCode::from(2);
            }
        },
        None => fangpin_domain::calendar::WorkCalendar::official().clone(),
    };
    if args.check_config {
        print!("{}", config.render());
        let (first, last) = calendar.years();
        println!("# working-day calendar: {first}..={last}");
        return ExitCode::SUCCESS;
    }
    let telemetry = match init_logging(&config) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("fangpind: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = serve(&config, args.today, Arc::new(calendar)).await;
    if let Err(e) = &result {
        tracing::error!(error = format!("{e:#}"), "fangpind failed");
    }
    flush_logs(telemetry);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fangpind: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    config: &Config,
    today: Option<NaiveDate>,
    calendar: Arc<fangpin_domain::calendar::WorkCalendar>,
) -> anyhow::Result<()> {
    // First, so that a signal at any later moment shuts down gracefully.
    let shutdown = shutdown_signal()?;
    // Before the database: a wrong certificate should stop the server at
    // once, naming the file, not after a migration.
    let tls = match &config.tls {
        Some(files) => Some(
            TlsIdentity::load(
                &files.cert_file,
                &files.key_file,
                files.client_ca_file.as_deref(),
            )
            .context("loading [tls]")?,
        ),
        None => {
            // `config::load` refuses a configuration without [tls] unless
            // it is development mode; plaintext is never reached otherwise.
            anyhow::ensure!(
                config.dev,
                "no [tls] outside development mode (a configuration bug)"
            );
            None
        }
    };
    let authenticator = match &config.auth {
        Some(auth) => {
            let verifier = TokenVerifier::load(
                &auth.jwks_file,
                &auth.issuer,
                &auth.audience,
                auth.leeway_secs,
            )
            .with_context(|| format!("auth.jwks_file {}", auth.jwks_file.display()))?;
            tracing::info!(issuer = %auth.issuer, audience = %auth.audience, "bearer tokens required");
            Authenticator::Tokens(verifier)
        }
        None => {
            // `config::load` refuses this unless it is development mode.
            anyhow::ensure!(
                config.dev,
                "no [auth] outside development mode (a configuration bug)"
            );
            tracing::warn!("DEVELOPMENT MODE: no authentication; every caller may call everything");
            Authenticator::Development
        }
    };
    // Read before the database is opened, so a bad key file fails fast;
    // checked against the database's key check value by `run_with`.
    let personal_data = match &config.personal_data_key_file {
        Some(path) => fangpin_server::write_path::personal_data::load_key_file(path)?,
        // `config` allows no key file only in development mode.
        None if config.dev => {
            fangpin_server::write_path::personal_data::dev_key(&config.database_url)?
        }
        None => anyhow::bail!("[personal_data] key_file is required outside development mode"),
    };
    let store = Store::connect_with(&config.database_url, config.max_connections)
        .await
        .with_context(|| format!("opening the database at {}", redact(&config.database_url)))?;
    let clock: Arc<dyn Clock> = match today {
        Some(date) => {
            tracing::warn!(%date, "the service's date is pinned (--today): for training and demonstrations only");
            Arc::new(ManualClock::at_date(date))
        }
        None => Arc::new(SystemClock),
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let health_listener = match config.health_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding server.health_listen {addr}"))?,
        ),
        None => None,
    };
    fangpin_server::run_with_health_listener(
        listener,
        health_listener,
        store,
        clock,
        config.server_options(authenticator, tls, personal_data, calendar),
        shutdown,
    )
    .await
}

/// Logs as `log.filter` and `log.format` say; traces and metrics over OTLP
/// when the `OTEL_*` environment asks for them (see `fangpin_server::transport::telemetry`).
fn init_logging(config: &Config) -> anyhow::Result<Telemetry> {
    let otel = OtelSettings::from_env(&|name| std::env::var(name).ok())
        .map_err(|e| anyhow::anyhow!("OpenTelemetry environment: {e}"))?;
    let format = match config.log_format {
        LogFormat::Text => telemetry::LogFormat::Text,
        LogFormat::Json => telemetry::LogFormat::Json,
    };
    // The filter was validated with the configuration, so it fails only on a bug.
    let telemetry = telemetry::init(&config.log_filter, format, &otel)?;
    if otel.exports_anything() {
        tracing::info!(
            traces = ?otel.traces_endpoint,
            metrics = ?otel.metrics_endpoint,
            "exporting OpenTelemetry over OTLP/gRPC"
        );
    }
    Ok(telemetry)
}

/// The one place where buffered telemetry is flushed before the process
/// exits: the last spans and a final collection of the metrics are
/// exported, each within `telemetry::SHUTDOWN_TIMEOUT`. The fmt logs are
/// written line by line and need nothing.
fn flush_logs(telemetry: Telemetry) {
    // The exporters' calls run on this runtime: block a thread taken out of
    // it, not one of its workers.
    tokio::task::block_in_place(|| telemetry.shutdown());
}

/// Completes on Ctrl-C or SIGTERM (what systemd and Kubernetes send).
/// The shutdown trigger: SIGTERM or SIGINT (Ctrl-C). The handlers are
/// registered here, when this is called, not when the future is first
/// polled: a SIGTERM arriving between "fangpind serving" and the server's
/// first poll of its shutdown future would otherwise meet the default
/// action and kill the process without the graceful drain.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
        let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
        Ok(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The database commands that left the `fangpin` command line parse
    /// here, and still want their required arguments.
    #[test]
    fn admin_commands_parse() {
        let ok: [&[&str]; 5] = [
            &[
                "fangpind",
                "admin",
                "backup",
                "--database",
                "sqlite:///var/lib/fangpin/fangpin.db",
                "--to",
                "b.db",
            ],
            &[
                "fangpind",
                "admin",
                "restore",
                "--from",
                "b.db",
                "--database",
                "sqlite://fangpin.db",
                "--force",
            ],
            &[
                "fangpind",
                "admin",
                "audit",
                "verify",
                "--database",
                "postgres://fangpin@db/fangpin",
            ],
            &[
                "fangpind",
                "admin",
                "audit",
                "verify",
                "--database",
                "sqlite://fangpin.db",
                "--county",
                "130426",
            ],
            &[
                "fangpind",
                "admin",
                "calendar",
                "check",
                "calendar-2027.txt",
            ],
        ];
        for args in ok {
            let parsed = Args::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(
                matches!(parsed.command, Some(Command::Admin(_))),
                "{args:?}"
            );
        }
        let missing: [&[&str]; 3] = [
            &[
                "fangpind",
                "admin",
                "backup",
                "--database",
                "sqlite://fangpin.db",
            ],
            &["fangpind", "admin", "restore", "--from", "b.db"],
            &["fangpind", "admin", "audit", "verify", "--county", "130426"],
        ];
        for args in missing {
            assert!(Args::try_parse_from(args).is_err(), "{args:?}");
        }
        // Serving takes no subcommand.
        let serve = Args::try_parse_from(["fangpind", "--dev"]).expect("flags");
        assert!(serve.command.is_none());
    }
}
