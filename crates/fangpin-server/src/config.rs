//! fangpind's configuration. Four layers, each overriding the one before:
//! built-in defaults, a TOML file (`--config PATH` or `FANGPIN_CONFIG`; no
//! file if neither), environment variables, command-line flags.
//!
//! ```toml
//! # /etc/fangpin/fangpind.toml
//! listen = "0.0.0.0:50051"
//! database_url = "sqlite:///var/lib/fangpin/fangpin.db"   # or postgres://...
//! [server]
//! request_timeout_secs = 30      # 1..=600
//! shutdown_grace_secs = 20       # 1..=300
//! max_connections = 32           # database pool size, 1..=512
//! health_listen = "0.0.0.0:50052" # plaintext gRPC health only (probes); default: none
//! [log]
//! filter = "info"                # tracing EnvFilter syntax
//! format = "text"                # text | json
//! [tls]                          # required unless dev
//! cert_file = "/etc/fangpin/tls/server.crt"       # PEM chain, leaf first
//! key_file = "/etc/fangpin/tls/server.key"        # PEM PKCS#8 private key
//! client_ca_file = "/etc/fangpin/tls/clients.crt" # set: mTLS required
//! [auth]                         # required unless dev
//! jwks_file = "/etc/fangpin/jwks.json"            # token verification keys
//! issuer = "https://sso.example.gov.cn"           # the tokens' `iss`
//! audience = "fangpin"                            # the tokens' `aud`
//! leeway_secs = 60               # clock skew allowed on exp/nbf, 0..=300
//! [personal_data]                # required unless dev
//! key_file = "/etc/fangpin/personal-data.key"     # 32 bytes, 64 hex digits
//!
//! [calendar]                     # optional: years after the built-in ones
//! file = "/etc/fangpin/cn-workdays-2027.txt"    # format of data/cn-workdays.txt
//! ```
//!
//! `dev = true` (or `--dev`, `FANGPIN_DEV=1`) is the one switch that lets
//! fangpind run without TLS, without token keys (every call is then the
//! development principal) and with a personal-data key it creates beside a
//! SQLite database. It is for a developer's machine and the test suites;
//! without it, a missing `[tls]`, `[auth]` or `[personal_data]` is an error
//! naming the key, never a quiet downgrade.
//!
//! Loading never stops at the first mistake: every problem is collected and
//! reported naming the key, variable or flag that set the value, so an
//! operator fixes a file in one round. Unknown keys are an error, because a
//! misspelt key silently falling back to a default is worse than refusing.
//!
//! The environment is read through a lookup function, so the tests pass a map
//! instead of changing the process environment (which tests running in
//! parallel share).

use std::fmt;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use fangpin_store::Backend;
use serde::Deserialize;

/// Loopback only: a server reachable from the network is a decision for the
/// operator to write down, not a default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// A SQLite file in the working directory, so `cargo run` needs nothing else.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://fangpin.db";
const DEFAULT_LOG_FILTER: &str = "info";

/// Up to ten minutes: the longest call (a year's reconciliation of 10^6
/// entries) takes about a second, so more only hides a stuck database.
const REQUEST_TIMEOUT_SECS: RangeInclusive<i64> = 1..=600;
/// Up to five minutes: orchestrators kill a process that takes longer.
const SHUTDOWN_GRACE_SECS: RangeInclusive<i64> = 1..=300;
/// A PostgreSQL server's default `max_connections` is 100; 512 is already
/// more than one replica should ever hold.
const MAX_CONNECTIONS: RangeInclusive<i64> = 1..=512;

/// The environment variables, by the key they set.
pub const ENV_CONFIG: &str = "FANGPIN_CONFIG";
const ENV_LISTEN: &str = "FANGPIN_LISTEN";
const ENV_HEALTH_LISTEN: &str = "FANGPIN_HEALTH_LISTEN";
const ENV_DATABASE_URL: &str = "FANGPIN_DATABASE_URL";
/// The older name, still honoured below `FANGPIN_DATABASE_URL`.
const ENV_DATABASE_URL_LEGACY: &str = "DATABASE_URL";
const ENV_REQUEST_TIMEOUT_SECS: &str = "FANGPIN_REQUEST_TIMEOUT_SECS";
const ENV_SHUTDOWN_GRACE_SECS: &str = "FANGPIN_SHUTDOWN_GRACE_SECS";
const ENV_MAX_CONNECTIONS: &str = "FANGPIN_MAX_CONNECTIONS";
const ENV_LOG_FILTER: &str = "FANGPIN_LOG_FILTER";
/// tracing's usual variable, still honoured below `FANGPIN_LOG_FILTER`.
const ENV_LOG_FILTER_LEGACY: &str = "RUST_LOG";
const ENV_LOG_FORMAT: &str = "FANGPIN_LOG_FORMAT";
const ENV_DEV: &str = "FANGPIN_DEV";
const ENV_TLS_CERT_FILE: &str = "FANGPIN_TLS_CERT_FILE";
const ENV_TLS_KEY_FILE: &str = "FANGPIN_TLS_KEY_FILE";
const ENV_TLS_CLIENT_CA_FILE: &str = "FANGPIN_TLS_CLIENT_CA_FILE";
const ENV_AUTH_JWKS_FILE: &str = "FANGPIN_AUTH_JWKS_FILE";
const ENV_AUTH_ISSUER: &str = "FANGPIN_AUTH_ISSUER";
const ENV_AUTH_AUDIENCE: &str = "FANGPIN_AUTH_AUDIENCE";
const ENV_AUTH_LEEWAY_SECS: &str = "FANGPIN_AUTH_LEEWAY_SECS";
const ENV_PERSONAL_DATA_KEY_FILE: &str = "FANGPIN_PERSONAL_DATA_KEY_FILE";
const ENV_CALENDAR_FILE: &str = "FANGPIN_CALENDAR_FILE";
const ENV_EVIDENCE_DIR: &str = "FANGPIN_EVIDENCE_DIR";
const ENV_NOTICE_FONT: &str = "FANGPIN_NOTICE_FONT";
const ENV_CONSOLE_OIDC_CLIENT_ID: &str = "FANGPIN_CONSOLE_OIDC_CLIENT_ID";
const ENV_CONSOLE_OIDC_SCOPE: &str = "FANGPIN_CONSOLE_OIDC_SCOPE";
/// What the console asks the provider for when `[console] oidc_scope` is
/// not set: an OpenID Connect sign-in; the role and scope claims come with
/// the access token for `[auth] audience`.
const DEFAULT_CONSOLE_SCOPE: &str = "openid";
use fangpin_server::services::notice_pdf::DEBIAN_CJK_FONT;

/// The file's keys, as they appear in messages.
const KEY_LISTEN: &str = "listen";
const KEY_DATABASE_URL: &str = "database_url";
const KEY_REQUEST_TIMEOUT_SECS: &str = "server.request_timeout_secs";
const KEY_SHUTDOWN_GRACE_SECS: &str = "server.shutdown_grace_secs";
const KEY_MAX_CONNECTIONS: &str = "server.max_connections";
const KEY_HEALTH_LISTEN: &str = "server.health_listen";
const KEY_LOG_FILTER: &str = "log.filter";
const KEY_LOG_FORMAT: &str = "log.format";
const KEY_TLS_CERT_FILE: &str = "tls.cert_file";
const KEY_TLS_KEY_FILE: &str = "tls.key_file";
const KEY_TLS_CLIENT_CA_FILE: &str = "tls.client_ca_file";
const KEY_AUTH_JWKS_FILE: &str = "auth.jwks_file";
const KEY_AUTH_ISSUER: &str = "auth.issuer";
const KEY_AUTH_AUDIENCE: &str = "auth.audience";
const KEY_AUTH_LEEWAY_SECS: &str = "auth.leeway_secs";
const KEY_PERSONAL_DATA_KEY_FILE: &str = "personal_data.key_file";

/// Clock skew tolerated on a token's `exp` and `nbf`. Five minutes is what
/// Kerberos allows; more would stretch every token's life.
const AUTH_LEEWAY_SECS: RangeInclusive<i64> = 0..=300;
const DEFAULT_AUTH_LEEWAY_SECS: i64 = 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Where the effective value of a key came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    Env(&'static str),
    Flag(&'static str),
}

impl Origin {
    /// What a message about the value names: the variable or flag that set
    /// it, or else the file's key.
    fn label(&self, key: &'static str) -> &'static str {
        match self {
            Origin::Default | Origin::File => key,
            Origin::Env(name) | Origin::Flag(name) => name,
        }
    }
}

/// The command-line flags that override everything else.
#[derive(Clone, Debug, Default)]
pub struct Flags {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
    /// `--dev`: set only, never cleared (a flag cannot undo the file's `dev`).
    pub dev: bool,
}

/// `[tls]`: the server's certificate, and the CA of client certificates
/// when every client must present one (mTLS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
}

/// `[auth]`: how bearer tokens are verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSettings {
    pub jwks_file: PathBuf,
    pub issuer: String,
    pub audience: String,
    pub leeway_secs: u64,
}

/// `[console]`: the web console's sign-in through the county's OpenID
/// Connect provider, which is `[auth] issuer` (the provider whose tokens
/// the server verifies), asking for the resource `[auth] audience`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// The console's client at the provider: public, with PKCE, redirect
    /// URI `<the server's origin>/console/`.
    pub oidc_client_id: String,
    pub oidc_scope: String,
}

/// The validated configuration fangpind runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    pub listen: SocketAddr,
    /// A second, plaintext listener serving only gRPC health, for probes
    /// that cannot speak TLS (Kubernetes' `grpc:` probes). None: no such
    /// listener, health is on `listen` with everything else.
    pub health_listen: Option<SocketAddr>,
    pub database_url: String,
    pub request_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    /// Resolved: the backend's default when no layer names one.
    pub max_connections: u32,
    pub log_filter: String,
    pub log_format: LogFormat,
    /// Development mode: plaintext, optional token keys, a generated
    /// personal-data key. Never in production.
    pub dev: bool,
    pub tls: Option<TlsFiles>,
    pub auth: Option<AuthSettings>,
    pub personal_data_key_file: Option<PathBuf>,
    /// The operator's working-day calendar for the years after the built-in
    /// ones (`[calendar] file`), read and checked by `fangpind` at start-up
    /// and by `--check-config`.
    pub calendar_file: Option<PathBuf>,
    /// Where evidence files are kept (`[evidence] dir`): by default the
    /// folder `evidence` beside a SQLite file; none for PostgreSQL unless
    /// set, and then the evidence RPCs answer FAILED_PRECONDITION.
    pub evidence_dir: Option<PathBuf>,
    /// The CJK font printed notices use (`[notice] font`): when not set,
    /// Debian's WenQuanYi Micro Hei if it is installed, else none (and
    /// PrintNotice answers FAILED_PRECONDITION). A font that is set must
    /// load, or the server does not start.
    pub notice_font: Option<PathBuf>,
    /// None: no console sign-in (the console works in development mode
    /// without `[auth]` and says it is not configured otherwise).
    pub console: Option<ConsoleSettings>,
    origins: Origins,
}

/// The folder beside a SQLite database file: `sqlite:///var/lib/f/f.db`
/// keeps its evidence in `/var/lib/f/evidence`.
fn evidence_beside(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next()?;
    if path.is_empty() || path.starts_with(':') {
        return None;
    }
    Some(
        std::path::Path::new(path)
            .parent()
            .map_or_else(|| PathBuf::from("evidence"), |p| p.join("evidence")),
    )
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Origins {
    listen: Origin,
    health_listen: Origin,
    database_url: Origin,
    request_timeout_secs: Origin,
    shutdown_grace_secs: Origin,
    max_connections: Origin,
    log_filter: Origin,
    log_format: Origin,
    dev: Origin,
}

/// Everything wrong with a configuration, one line each.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration")?;
        for problem in &self.problems {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The file as written. Numbers are read as `i64` so that `0` or `-1` gets
/// the same range message as any other out-of-range value, not a type error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
    #[serde(default)]
    server: FileServer,
    #[serde(default)]
    log: FileLog,
    dev: Option<bool>,
    #[serde(default)]
    tls: FileTls,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    personal_data: FilePersonalData,
    #[serde(default)]
    calendar: FileCalendar,
    #[serde(default)]
    evidence: FileEvidence,
    #[serde(default)]
    notice: FileNotice,
    #[serde(default)]
    console: FileConsole,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConsole {
    oidc_client_id: Option<String>,
    oidc_scope: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNotice {
    font: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCalendar {
    file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEvidence {
    dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    client_ca_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    jwks_file: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_secs: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePersonalData {
    key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileServer {
    request_timeout_secs: Option<i64>,
    shutdown_grace_secs: Option<i64>,
    max_connections: Option<i64>,
    health_listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLog {
    filter: Option<String>,
    format: Option<String>,
}

/// Loads the configuration: reads the file the flags or `env` name, then
/// layers `env` and the flags over it and validates the result.
pub fn load(flags: &Flags, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());
    let path = flags
        .config
        .clone()
        .or_else(|| env(ENV_CONFIG).map(PathBuf::from));
    let file = match &path {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                problems: vec![format!("{}: cannot read: {e}", path.display())],
            })?;
            Some((path.as_path(), text))
        }
    };
    resolve(
        file.as_ref().map(|(path, text)| (*path, text.as_str())),
        &env,
        flags,
    )
}

/// Layers the file's text (already read), `env` and the flags over the
/// defaults and validates the result.
fn resolve(
    file: Option<(&Path, &str)>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &Flags,
) -> Result<Config, ConfigError> {
    let parsed = match file {
        None => FileConfig::default(),
        Some((path, text)) => toml::from_str::<FileConfig>(text).map_err(|e| ConfigError {
            // toml's message names the key and shows the line.
            problems: vec![format!("{}: {}", path.display(), e.to_string().trim_end())],
        })?,
    };
    let mut problems = Vec::new();

    let listen = layer(
        (DEFAULT_LISTEN.to_string(), Origin::Default),
        parsed.listen,
        env,
        &[ENV_LISTEN],
        flags.listen.clone().map(|v| (v, "--listen")),
    );
    let health_listen = layer(
        (String::new(), Origin::Default),
        parsed.server.health_listen,
        env,
        &[ENV_HEALTH_LISTEN],
        None,
    );
    let database_url = layer(
        (DEFAULT_DATABASE_URL.to_string(), Origin::Default),
        parsed.database_url,
        env,
        // Later names win: FANGPIN_DATABASE_URL over DATABASE_URL.
        &[ENV_DATABASE_URL_LEGACY, ENV_DATABASE_URL],
        flags.database_url.clone().map(|v| (v, "--database-url")),
    );
    let log_filter = layer(
        (DEFAULT_LOG_FILTER.to_string(), Origin::Default),
        parsed.log.filter,
        env,
        &[ENV_LOG_FILTER_LEGACY, ENV_LOG_FILTER],
        None,
    );
    let log_format = layer(
        (LogFormat::Text.name().to_string(), Origin::Default),
        parsed.log.format,
        env,
        &[ENV_LOG_FORMAT],
        None,
    );
    let mut number = |default: Option<i64>, from_file: Option<i64>, var: &'static str| {
        let mut value = default.map(|v| (v, Origin::Default));
        if let Some(v) = from_file {
            value = Some((v, Origin::File));
        }
        if let Some(text) = env(var) {
            match text.trim().parse::<i64>() {
                Ok(v) => value = Some((v, Origin::Env(var))),
                Err(_) => problems.push(format!("{var}: not a number: {text:?}")),
            }
        }
        value
    };
    let request_timeout_secs = number(
        Some(fangpin_server::DEFAULT_REQUEST_TIMEOUT.as_secs() as i64),
        parsed.server.request_timeout_secs,
        ENV_REQUEST_TIMEOUT_SECS,
    );
    let shutdown_grace_secs = number(
        Some(fangpin_server::DEFAULT_SHUTDOWN_GRACE.as_secs() as i64),
        parsed.server.shutdown_grace_secs,
        ENV_SHUTDOWN_GRACE_SECS,
    );
    let max_connections = number(None, parsed.server.max_connections, ENV_MAX_CONNECTIONS);
    let leeway_secs = number(
        Some(DEFAULT_AUTH_LEEWAY_SECS),
        parsed.auth.leeway_secs,
        ENV_AUTH_LEEWAY_SECS,
    );
    let (dev, dev_origin) = {
        let mut value = (
            parsed.dev.unwrap_or(false),
            if parsed.dev.is_some() {
                Origin::File
            } else {
                Origin::Default
            },
        );
        if let Some(text) = env(ENV_DEV) {
            match text.trim() {
                "1" | "true" => value = (true, Origin::Env(ENV_DEV)),
                "0" | "false" => value = (false, Origin::Env(ENV_DEV)),
                other => problems.push(format!(
                    "{ENV_DEV}: must be 1, 0, true or false, got {other:?}"
                )),
            }
        }
        if flags.dev {
            value = (true, Origin::Flag("--dev"));
        }
        value
    };
    let path_setting = |from_file: Option<String>, var: &'static str| {
        layer(
            (String::new(), Origin::Default),
            from_file,
            env,
            &[var],
            None,
        )
    };
    let tls_cert = path_setting(parsed.tls.cert_file, ENV_TLS_CERT_FILE);
    let tls_key = path_setting(parsed.tls.key_file, ENV_TLS_KEY_FILE);
    let tls_client_ca = path_setting(parsed.tls.client_ca_file, ENV_TLS_CLIENT_CA_FILE);
    let jwks_file = path_setting(parsed.auth.jwks_file, ENV_AUTH_JWKS_FILE);
    let issuer = path_setting(parsed.auth.issuer, ENV_AUTH_ISSUER);
    let audience = path_setting(parsed.auth.audience, ENV_AUTH_AUDIENCE);
    let personal_key = path_setting(parsed.personal_data.key_file, ENV_PERSONAL_DATA_KEY_FILE);
    let calendar_file = path_setting(parsed.calendar.file, ENV_CALENDAR_FILE);
    let evidence_dir = path_setting(parsed.evidence.dir, ENV_EVIDENCE_DIR);
    let evidence_dir = if evidence_dir.0.is_empty() {
        evidence_beside(&database_url.0)
    } else {
        Some(PathBuf::from(&evidence_dir.0))
    };
    let notice_font = path_setting(parsed.notice.font, ENV_NOTICE_FONT);
    let notice_font = if notice_font.0.is_empty() {
        Some(PathBuf::from(DEBIAN_CJK_FONT)).filter(|p| p.is_file())
    } else {
        Some(PathBuf::from(&notice_font.0))
    };

    let listen_addr = match listen.0.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            problems.push(format!(
                "{}: not an address of the form IP:PORT: {:?}",
                listen.1.label(KEY_LISTEN),
                listen.0
            ));
            None
        }
    };
    // Empty: not configured. Set: an address, on another port than
    // `listen` (one port cannot be both the TLS API and plaintext health).
    let health_listen_addr = match health_listen.0.as_str() {
        "" => Ok(None),
        text => match text.parse::<SocketAddr>() {
            Ok(addr)
                if listen_addr.is_some_and(|l| l.port() == addr.port() && addr.port() != 0) =>
            {
                problems.push(format!(
                    "{}: must use another port than listen ({}), got {:?}",
                    health_listen.1.label(KEY_HEALTH_LISTEN),
                    listen.0,
                    text
                ));
                Err(())
            }
            Ok(addr) => Ok(Some(addr)),
            Err(_) => {
                problems.push(format!(
                    "{}: not an address of the form IP:PORT: {:?}",
                    health_listen.1.label(KEY_HEALTH_LISTEN),
                    text
                ));
                Err(())
            }
        },
    };
    let backend = match Backend::of_url(&database_url.0) {
        Ok(backend) => Some(backend),
        Err(_) => {
            problems.push(format!(
                "{}: expected sqlite://PATH or postgres://USER@HOST/DB, got {:?}",
                database_url.1.label(KEY_DATABASE_URL),
                crate::redact(&database_url.0)
            ));
            None
        }
    };
    let mut in_range = |setting: &Option<(i64, Origin)>, key, range: RangeInclusive<i64>| {
        let (value, origin) = setting.as_ref()?;
        if range.contains(value) {
            Some(*value)
        } else {
            problems.push(format!(
                "{}: must be between {} and {}, got {value}",
                origin.label(key),
                range.start(),
                range.end()
            ));
            None
        }
    };
    let request_timeout = in_range(
        &request_timeout_secs,
        KEY_REQUEST_TIMEOUT_SECS,
        REQUEST_TIMEOUT_SECS,
    );
    let shutdown_grace = in_range(
        &shutdown_grace_secs,
        KEY_SHUTDOWN_GRACE_SECS,
        SHUTDOWN_GRACE_SECS,
    );
    let pool_size = in_range(&max_connections, KEY_MAX_CONNECTIONS, MAX_CONNECTIONS);
    let leeway = in_range(&leeway_secs, KEY_AUTH_LEEWAY_SECS, AUTH_LEEWAY_SECS);
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&log_filter.0) {
        problems.push(format!(
            "{}: not a log filter ({e}): {:?}",
            log_filter.1.label(KEY_LOG_FILTER),
            log_filter.0
        ));
    }
    let tls = security_section(
        &mut problems,
        dev,
        "tls",
        &[(KEY_TLS_CERT_FILE, &tls_cert), (KEY_TLS_KEY_FILE, &tls_key)],
        &[(KEY_TLS_CLIENT_CA_FILE, &tls_client_ca)],
    )
    .map(|_| TlsFiles {
        cert_file: PathBuf::from(&tls_cert.0),
        key_file: PathBuf::from(&tls_key.0),
        client_ca_file: (!tls_client_ca.0.is_empty()).then(|| PathBuf::from(&tls_client_ca.0)),
    });
    let auth = security_section(
        &mut problems,
        dev,
        "auth",
        &[
            (KEY_AUTH_JWKS_FILE, &jwks_file),
            (KEY_AUTH_ISSUER, &issuer),
            (KEY_AUTH_AUDIENCE, &audience),
        ],
        &[],
    )
    .map(|_| AuthSettings {
        jwks_file: PathBuf::from(&jwks_file.0),
        issuer: issuer.0.clone(),
        audience: audience.0.clone(),
        leeway_secs: leeway.unwrap_or(DEFAULT_AUTH_LEEWAY_SECS).unsigned_abs(),
    });
    let console_client = path_setting(parsed.console.oidc_client_id, ENV_CONSOLE_OIDC_CLIENT_ID);
    let console_scope = path_setting(parsed.console.oidc_scope, ENV_CONSOLE_OIDC_SCOPE);
    let console = match (console_client.0.trim(), &auth) {
        ("", _) => {
            if !console_scope.0.is_empty() {
                problems.push(format!(
                    "{}: needs [console] oidc_client_id",
                    console_scope.1.label("console.oidc_scope")
                ));
            }
            None
        }
        (_, None) => {
            problems.push(format!(
                "{}: the console signs in at [auth] issuer, so it needs [auth]",
                console_client.1.label("console.oidc_client_id")
            ));
            None
        }
        (client_id, Some(auth)) => {
            if !(auth.issuer.starts_with("https://") || auth.issuer.starts_with("http://"))
                || !auth.issuer.is_ascii()
            {
                problems.push(format!(
                    "auth.issuer: the console signs in there, so it must be the provider's \
                     http(s) URL, got {:?}",
                    auth.issuer
                ));
            }
            let scope = match console_scope.0.trim() {
                "" => DEFAULT_CONSOLE_SCOPE.to_string(),
                scope => scope.to_string(),
            };
            if !scope.split(' ').any(|s| s == "openid") || !scope.is_ascii() {
                problems.push(format!(
                    "{}: must include openid, got {scope:?}",
                    console_scope.1.label("console.oidc_scope")
                ));
            }
            Some(ConsoleSettings {
                oidc_client_id: client_id.to_string(),
                oidc_scope: scope,
            })
        }
    };
    let personal_data_key_file = security_section(
        &mut problems,
        dev,
        "personal_data",
        &[(KEY_PERSONAL_DATA_KEY_FILE, &personal_key)],
        &[],
    )
    .map(|_| PathBuf::from(&personal_key.0));
    let format = match log_format.0.as_str() {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        other => {
            problems.push(format!(
                "{}: must be \"text\" or \"json\", got {other:?}",
                log_format.1.label(KEY_LOG_FORMAT)
            ));
            None
        }
    };

    match (
        listen_addr,
        health_listen_addr,
        backend,
        request_timeout,
        shutdown_grace,
        format,
        problems.is_empty(),
    ) {
        (
            Some(listen_addr),
            Ok(health_listen_addr),
            Some(backend),
            Some(timeout),
            Some(grace),
            Some(format),
            true,
        ) => {
            let (max_connections, max_connections_origin) = match (pool_size, max_connections) {
                (Some(size), Some((_, origin))) => (size, origin),
                _ => (
                    i64::from(backend.default_max_connections()),
                    Origin::Default,
                ),
            };
            Ok(Config {
                file: file.map(|(path, _)| path.to_path_buf()),
                listen: listen_addr,
                health_listen: health_listen_addr,
                database_url: database_url.0,
                // The ranges above are positive and small, so these hold.
                request_timeout_secs: timeout.unsigned_abs(),
                shutdown_grace_secs: grace.unsigned_abs(),
                max_connections: u32::try_from(max_connections)
                    .unwrap_or(backend.default_max_connections()),
                log_filter: log_filter.0,
                log_format: format,
                dev,
                tls,
                auth,
                personal_data_key_file,
                calendar_file: (!calendar_file.0.is_empty())
                    .then(|| PathBuf::from(&calendar_file.0)),
                evidence_dir,
                notice_font,
                console,
                origins: Origins {
                    listen: listen.1,
                    health_listen: health_listen.1,
                    database_url: database_url.1,
                    request_timeout_secs: origin_of(request_timeout_secs),
                    shutdown_grace_secs: origin_of(shutdown_grace_secs),
                    max_connections: max_connections_origin,
                    log_filter: log_filter.1,
                    log_format: log_format.1,
                    dev: dev_origin,
                },
            })
        }
        _ => Err(ConfigError { problems }),
    }
}

/// A section whose `required` keys come together: all set, or (in
/// development mode only) none. `optional` keys need the required ones.
/// Some(()) when the section is configured; a problem per missing key.
fn security_section(
    problems: &mut Vec<String>,
    dev: bool,
    section: &str,
    required: &[(&'static str, &(String, Origin))],
    optional: &[(&'static str, &(String, Origin))],
) -> Option<()> {
    let set = |(_, (value, _)): &&(&'static str, &(String, Origin))| !value.is_empty();
    let given = required.iter().filter(set).count() + optional.iter().filter(set).count();
    if given == 0 {
        if !dev {
            for (key, _) in required {
                problems.push(format!(
                    "{key}: required (the [{section}] section), unless dev = true"
                ));
            }
        }
        return None;
    }
    let mut complete = true;
    for (key, (value, _)) in required {
        if value.is_empty() {
            problems.push(format!("{key}: required with the rest of [{section}]"));
            complete = false;
        }
    }
    complete.then_some(())
}

fn origin_of(setting: Option<(i64, Origin)>) -> Origin {
    setting.map_or(Origin::Default, |(_, origin)| origin)
}

/// One text setting through the layers: default, file, the variables in
/// `vars` (later ones win), the flag.
fn layer(
    default: (String, Origin),
    from_file: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
    vars: &[&'static str],
    flag: Option<(String, &'static str)>,
) -> (String, Origin) {
    let mut value = default;
    if let Some(v) = from_file {
        value = (v, Origin::File);
    }
    for &var in vars {
        if let Some(v) = env(var) {
            value = (v, Origin::Env(var));
        }
    }
    if let Some((v, name)) = flag {
        value = (v, Origin::Flag(name));
    }
    value
}

impl Config {
    /// The settings for `fangpin_server::run_with`: the limits, the token
    /// verification, the TLS identity and the personal-data key, each loaded
    /// by the caller from the files `self` names (configuration itself never
    /// reads them).
    pub fn server_options(
        &self,
        authenticator: fangpin_server::transport::auth::Authenticator,
        tls: Option<fangpin_server::transport::tls::TlsIdentity>,
        personal_data: fangpin_domain::personal_data::PersonalDataKey,
        calendar: std::sync::Arc<fangpin_domain::calendar::WorkCalendar>,
    ) -> fangpin_server::ServerOptions {
        fangpin_server::ServerOptions {
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs),
            shutdown_grace: std::time::Duration::from_secs(self.shutdown_grace_secs),
            authenticator: std::sync::Arc::new(authenticator),
            tls,
            personal_data,
            calendar,
            evidence_dir: self.evidence_dir.clone(),
            notice_font: self.notice_font.clone(),
            console: self.console_sign_in(),
        }
    }

    /// How the console signs in: from `[console]` and `[auth]`.
    pub fn console_sign_in(&self) -> fangpin_server::transport::console::SignIn {
        use fangpin_server::transport::console::SignIn;
        match (&self.auth, &self.console) {
            (None, _) => SignIn::Development,
            (Some(_), None) => SignIn::NotConfigured,
            (Some(auth), Some(console)) => SignIn::Oidc {
                issuer: auth.issuer.clone(),
                client_id: console.oidc_client_id.clone(),
                scope: console.oidc_scope.clone(),
                resource: auth.audience.clone(),
            },
        }
    }

    /// The effective configuration as a TOML file that would reproduce it,
    /// each line commented with where its value came from. The database
    /// password is hidden.
    pub fn render(&self) -> String {
        let file = self
            .file
            .as_ref()
            .map_or_else(|| "(none)".to_string(), |p| p.display().to_string());
        let from = |origin: &Origin| match origin {
            Origin::Default => "default".to_string(),
            Origin::File => format!("from {file}"),
            Origin::Env(name) => format!("from environment {name}"),
            Origin::Flag(name) => format!("from flag {name}"),
        };
        let quoted = |text: &str| toml::Value::String(text.to_string()).to_string();
        let o = &self.origins;
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# fangpind effective configuration; file: {file}");
        let _ = writeln!(
            out,
            "listen = {}  # {}",
            quoted(&self.listen.to_string()),
            from(&o.listen)
        );
        let _ = writeln!(
            out,
            "database_url = {}  # {}",
            quoted(&crate::redact(&self.database_url)),
            from(&o.database_url)
        );
        if self.dev {
            let _ = writeln!(out, "dev = true  # {}", from(&o.dev));
        }
        let _ = writeln!(out, "\n[server]");
        let _ = writeln!(
            out,
            "request_timeout_secs = {}  # {}",
            self.request_timeout_secs,
            from(&o.request_timeout_secs)
        );
        let _ = writeln!(
            out,
            "shutdown_grace_secs = {}  # {}",
            self.shutdown_grace_secs,
            from(&o.shutdown_grace_secs)
        );
        let max_from = match o.max_connections {
            Origin::Default => "default for this database".to_string(),
            ref origin => from(origin),
        };
        let _ = writeln!(
            out,
            "max_connections = {}  # {max_from}",
            self.max_connections
        );
        if let Some(addr) = self.health_listen {
            let _ = writeln!(
                out,
                "health_listen = {}  # {}; plaintext, gRPC health only",
                quoted(&addr.to_string()),
                from(&o.health_listen)
            );
        }
        let _ = writeln!(out, "\n[log]");
        let _ = writeln!(
            out,
            "filter = {}  # {}",
            quoted(&self.log_filter),
            from(&o.log_filter)
        );
        let _ = writeln!(
            out,
            "format = {}  # {}",
            quoted(self.log_format.name()),
            from(&o.log_format)
        );
        // Paths and names only: the files' contents (keys) are never printed.
        if let Some(tls) = &self.tls {
            let _ = writeln!(out, "\n[tls]");
            let _ = writeln!(
                out,
                "cert_file = {}",
                quoted(&tls.cert_file.display().to_string())
            );
            let _ = writeln!(
                out,
                "key_file = {}",
                quoted(&tls.key_file.display().to_string())
            );
            match &tls.client_ca_file {
                Some(ca) => {
                    let _ = writeln!(
                        out,
                        "client_ca_file = {}  # mTLS: every client presents a certificate",
                        quoted(&ca.display().to_string())
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "# no client_ca_file: client certificates not asked for"
                    );
                }
            }
        }
        if let Some(auth) = &self.auth {
            let _ = writeln!(out, "\n[auth]");
            let _ = writeln!(
                out,
                "jwks_file = {}",
                quoted(&auth.jwks_file.display().to_string())
            );
            let _ = writeln!(out, "issuer = {}", quoted(&auth.issuer));
            let _ = writeln!(out, "audience = {}", quoted(&auth.audience));
            let _ = writeln!(out, "leeway_secs = {}", auth.leeway_secs);
        }
        if let Some(file) = &self.calendar_file {
            let _ = writeln!(out, "\n[calendar]");
            let _ = writeln!(out, "file = {}", quoted(&file.display().to_string()));
        }
        if let Some(dir) = &self.evidence_dir {
            let _ = writeln!(out, "\n[evidence]");
            let _ = writeln!(out, "dir = {}", quoted(&dir.display().to_string()));
        }
        if let Some(font) = &self.notice_font {
            let _ = writeln!(out, "\n[notice]");
            let _ = writeln!(out, "font = {}", quoted(&font.display().to_string()));
        }
        if let Some(console) = &self.console {
            let _ = writeln!(out, "\n[console]");
            let _ = writeln!(out, "oidc_client_id = {}", quoted(&console.oidc_client_id));
            let _ = writeln!(out, "oidc_scope = {}", quoted(&console.oidc_scope));
        }
        if let Some(key_file) = &self.personal_data_key_file {
            let _ = writeln!(out, "\n[personal_data]");
            let _ = writeln!(
                out,
                "key_file = {}",
                quoted(&key_file.display().to_string())
            );
        }
        if self.dev {
            let _ = writeln!(
                out,
                "\n# DEVELOPMENT MODE: {}{}{}",
                if self.tls.is_none() {
                    "plaintext; "
                } else {
                    ""
                },
                if self.auth.is_none() {
                    "no authentication; "
                } else {
                    ""
                },
                if self.personal_data_key_file.is_none() {
                    "personal-data key generated beside the database"
                } else {
                    ""
                }
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resolve_with(
        file: Option<&str>,
        env: &[(&str, &str)],
        flags: &Flags,
    ) -> Result<Config, ConfigError> {
        let env = env_of(env);
        resolve(
            file.map(|text| (Path::new("/etc/fangpin/fangpind.toml"), text)),
            &|name| env.get(name).cloned(),
            flags,
        )
    }

    fn problems(file: Option<&str>, env: &[(&str, &str)]) -> Vec<String> {
        resolve_with(file, env, &Flags::default())
            .expect_err("the configuration is refused")
            .problems
    }

    const FULL: &str = r#"
listen = "0.0.0.0:50051"
database_url = "postgres://fangpin:s3cret@db.example/fangpin"
[server]
request_timeout_secs = 45
shutdown_grace_secs = 25
max_connections = 32
[log]
filter = "info,fangpin_server=debug"
format = "json"
[tls]
cert_file = "/etc/fangpin/tls/server.crt"
key_file = "/etc/fangpin/tls/server.key"
[auth]
jwks_file = "/etc/fangpin/jwks.json"
issuer = "https://sso.example.gov.cn"
audience = "fangpin"
[personal_data]
key_file = "/etc/fangpin/personal-data.key"
"#;

    #[test]
    fn evidence_lives_beside_a_sqlite_file_unless_named() {
        assert_eq!(
            evidence_beside("sqlite:///var/lib/fangpin/fangpin.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/fangpin/evidence"))
        );
        assert_eq!(
            evidence_beside("sqlite://fangpin.db"),
            Some(PathBuf::from("evidence"))
        );
        assert_eq!(evidence_beside("sqlite::memory:"), None);
        assert_eq!(evidence_beside("postgres://db/fangpin"), None);
        let named = resolve_with(
            None,
            &[
                ("FANGPIN_DEV", "1"),
                ("FANGPIN_EVIDENCE_DIR", "/srv/evidence"),
            ],
            &Flags::default(),
        )
        .expect("valid");
        assert_eq!(named.evidence_dir, Some(PathBuf::from("/srv/evidence")));
        assert!(
            named
                .render()
                .contains("[evidence]\ndir = \"/srv/evidence\"")
        );
    }

    #[test]
    fn nothing_given_keeps_the_defaults_cargo_run_needs() {
        let config = resolve_with(None, &[("FANGPIN_DEV", "1")], &Flags::default()).expect("valid");
        assert!(config.dev);
        assert_eq!(
            (&config.tls, &config.auth, &config.personal_data_key_file),
            (&None, &None, &None)
        );
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(config.request_timeout_secs, 30);
        assert_eq!(config.shutdown_grace_secs, 20);
        assert_eq!(
            config.max_connections,
            fangpin_store::DEFAULT_SQLITE_MAX_CONNECTIONS
        );
        assert_eq!(config.log_filter, "info");
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.origins.listen, Origin::Default);
    }

    #[test]
    fn the_file_overrides_the_defaults() {
        let config = resolve_with(Some(FULL), &[], &Flags::default()).expect("valid");
        assert_eq!(config.listen.to_string(), "0.0.0.0:50051");
        assert_eq!(config.request_timeout_secs, 45);
        assert_eq!(config.shutdown_grace_secs, 25);
        assert_eq!(config.max_connections, 32);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.origins.max_connections, Origin::File);
    }

    #[test]
    fn the_environment_overrides_the_file_and_flags_override_both() {
        let env = [
            ("FANGPIN_LISTEN", "127.0.0.1:6000"),
            ("FANGPIN_SHUTDOWN_GRACE_SECS", "5"),
            ("FANGPIN_MAX_CONNECTIONS", "8"),
            ("FANGPIN_LOG_FORMAT", "text"),
            ("DATABASE_URL", "sqlite://legacy.db"),
        ];
        let config = resolve_with(Some(FULL), &env, &Flags::default()).expect("valid");
        assert_eq!(config.listen.to_string(), "127.0.0.1:6000");
        assert_eq!(config.origins.listen, Origin::Env("FANGPIN_LISTEN"));
        assert_eq!(config.shutdown_grace_secs, 5);
        assert_eq!(config.request_timeout_secs, 45, "still from the file");
        assert_eq!(config.max_connections, 8);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.database_url, "sqlite://legacy.db");

        let flags = Flags {
            config: None,
            listen: Some("127.0.0.1:7000".into()),
            database_url: Some("sqlite://flag.db".into()),
            dev: false,
        };
        let config = resolve_with(Some(FULL), &env, &flags).expect("valid");
        assert_eq!(config.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(config.origins.listen, Origin::Flag("--listen"));
        assert_eq!(config.database_url, "sqlite://flag.db");
    }

    #[test]
    fn the_new_variable_names_win_over_the_old_ones() {
        let env = [
            ("DATABASE_URL", "sqlite://old.db"),
            ("FANGPIN_DATABASE_URL", "sqlite://new.db"),
            ("RUST_LOG", "warn"),
            ("FANGPIN_LOG_FILTER", "debug"),
            ("FANGPIN_DEV", "1"),
        ];
        let config = resolve_with(None, &env, &Flags::default()).expect("valid");
        assert_eq!(config.database_url, "sqlite://new.db");
        assert_eq!(config.log_filter, "debug");
        let config = resolve_with(
            None,
            &[("RUST_LOG", "warn"), ("FANGPIN_DEV", "1")],
            &Flags::default(),
        )
        .expect("valid");
        assert_eq!(config.log_filter, "warn");
    }

    #[test]
    fn every_problem_is_reported_naming_its_key() {
        let file = r#"
dev = true
listen = "everywhere"
database_url = "mysql://root:hunter2@db/fangpin"
[server]
request_timeout_secs = 0
shutdown_grace_secs = 0
max_connections = 513
[log]
format = "xml"
"#;
        assert_eq!(
            problems(Some(file), &[]),
            vec![
                r#"listen: not an address of the form IP:PORT: "everywhere""#,
                r#"database_url: expected sqlite://PATH or postgres://USER@HOST/DB, got "mysql://root:***@db/fangpin""#,
                "server.request_timeout_secs: must be between 1 and 600, got 0",
                "server.shutdown_grace_secs: must be between 1 and 300, got 0",
                "server.max_connections: must be between 1 and 512, got 513",
                r#"log.format: must be "text" or "json", got "xml""#,
            ]
        );
    }

    #[test]
    fn problems_from_the_environment_name_the_variable() {
        let env = [
            ("FANGPIN_MAX_CONNECTIONS", "x"),
            ("FANGPIN_SHUTDOWN_GRACE_SECS", "301"),
            ("FANGPIN_REQUEST_TIMEOUT_SECS", "-1"),
        ];
        assert_eq!(
            problems(Some(FULL), &env),
            vec![
                r#"FANGPIN_MAX_CONNECTIONS: not a number: "x""#,
                "FANGPIN_REQUEST_TIMEOUT_SECS: must be between 1 and 600, got -1",
                "FANGPIN_SHUTDOWN_GRACE_SECS: must be between 1 and 300, got 301",
            ]
        );
    }

    #[test]
    fn a_bad_flag_is_named_as_the_flag() {
        let flags = Flags {
            listen: Some("nowhere".into()),
            dev: true,
            ..Flags::default()
        };
        let error = resolve_with(None, &[], &flags).expect_err("refused");
        assert_eq!(
            error.problems,
            vec![r#"--listen: not an address of the form IP:PORT: "nowhere""#]
        );
    }

    #[test]
    fn the_health_listener_is_optional_and_named_when_wrong() {
        let dev = [("FANGPIN_DEV", "1")];
        let config = resolve_with(None, &dev, &Flags::default()).expect("valid");
        assert_eq!(config.health_listen, None);

        let file =
            "dev = true\nlisten = \"0.0.0.0:50051\"\n[server]\nhealth_listen = \"0.0.0.0:50052\"\n";
        let config = resolve_with(Some(file), &[], &Flags::default()).expect("valid");
        assert_eq!(
            config.health_listen.map(|a| a.to_string()).as_deref(),
            Some("0.0.0.0:50052")
        );
        assert_eq!(config.origins.health_listen, Origin::File);
        let again = resolve_with(Some(&config.render()), &[], &Flags::default())
            .expect("the rendered file reads back");
        assert_eq!(again.health_listen, config.health_listen);

        let env = [
            ("FANGPIN_DEV", "1"),
            ("FANGPIN_HEALTH_LISTEN", "127.0.0.1:6001"),
        ];
        let config = resolve_with(Some(file), &env, &Flags::default()).expect("valid");
        assert_eq!(
            config.health_listen.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:6001")
        );
        assert_eq!(
            config.origins.health_listen,
            Origin::Env("FANGPIN_HEALTH_LISTEN")
        );

        assert_eq!(
            problems(
                Some("dev = true\n[server]\nhealth_listen = \"probes\"\n"),
                &[]
            ),
            vec![r#"server.health_listen: not an address of the form IP:PORT: "probes""#]
        );
        assert_eq!(
            problems(
                Some("dev = true\n[server]\nhealth_listen = \"0.0.0.0:50051\"\n"),
                &[("FANGPIN_LISTEN", "127.0.0.1:50051")]
            ),
            vec![
                r#"server.health_listen: must use another port than listen (127.0.0.1:50051), got "0.0.0.0:50051""#
            ]
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let file = "[server]\nshutdown_grace = 20\n";
        let problems = problems(Some(file), &[]);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("/etc/fangpin/fangpind.toml: ")
                && problems[0].contains("unknown field `shutdown_grace`"),
            "{problems:?}"
        );
        let problems = self::problems(Some("colour = \"red\"\n"), &[]);
        assert!(
            problems[0].contains("unknown field `colour`"),
            "{problems:?}"
        );
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let env = env_of(&[
            ("FANGPIN_LISTEN", ""),
            ("FANGPIN_CONFIG", ""),
            ("FANGPIN_DEV", "1"),
        ]);
        let config = load(&Flags::default(), &|name| env.get(name).cloned()).expect("valid");
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.file, None);
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let flags = Flags {
            config: Some(PathBuf::from("/nonexistent/fangpind.toml")),
            ..Flags::default()
        };
        let error = load(&flags, &|_| None).expect_err("refused");
        assert!(
            error.problems[0].starts_with("/nonexistent/fangpind.toml: cannot read"),
            "{error}"
        );
    }

    #[test]
    fn the_rendered_configuration_hides_the_password_and_reads_back() {
        let config = resolve_with(
            Some(FULL),
            &[("FANGPIN_SHUTDOWN_GRACE_SECS", "7")],
            &Flags::default(),
        )
        .expect("valid");
        let text = config.render();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(
            text.contains(r#"database_url = "postgres://fangpin:***@db.example/fangpin""#),
            "{text}"
        );
        assert!(
            text.contains(
                "shutdown_grace_secs = 7  # from environment FANGPIN_SHUTDOWN_GRACE_SECS"
            ),
            "{text}"
        );
        // Apart from the password, the output is a file fangpind accepts.
        let again = resolve_with(Some(&text), &[], &Flags::default()).expect("valid again");
        assert_eq!(again.shutdown_grace_secs, 7);
        assert_eq!(again.max_connections, 32);
        assert_eq!(again.log_filter, config.log_filter);
    }

    #[test]
    fn without_dev_the_security_sections_are_required_and_named() {
        assert_eq!(
            problems(None, &[]),
            vec![
                "tls.cert_file: required (the [tls] section), unless dev = true",
                "tls.key_file: required (the [tls] section), unless dev = true",
                "auth.jwks_file: required (the [auth] section), unless dev = true",
                "auth.issuer: required (the [auth] section), unless dev = true",
                "auth.audience: required (the [auth] section), unless dev = true",
                "personal_data.key_file: required (the [personal_data] section), unless dev = true",
            ]
        );
        let config = resolve_with(Some(FULL), &[], &Flags::default()).expect("valid");
        assert!(!config.dev);
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                cert_file: "/etc/fangpin/tls/server.crt".into(),
                key_file: "/etc/fangpin/tls/server.key".into(),
                client_ca_file: None,
            })
        );
        let auth = config.auth.expect("auth");
        assert_eq!((auth.audience.as_str(), auth.leeway_secs), ("fangpin", 60));
    }

    #[test]
    fn a_half_configured_section_is_an_error_even_in_dev() {
        let file = "dev = true\n[tls]\nclient_ca_file = \"/ca.crt\"\n[auth]\nissuer = \"x\"\nleeway_secs = 301\n";
        assert_eq!(
            problems(Some(file), &[]),
            vec![
                "auth.leeway_secs: must be between 0 and 300, got 301",
                "tls.cert_file: required with the rest of [tls]",
                "tls.key_file: required with the rest of [tls]",
                "auth.jwks_file: required with the rest of [auth]",
                "auth.audience: required with the rest of [auth]",
            ]
        );
    }

    #[test]
    fn dev_comes_from_file_environment_or_flag() {
        let dev = |file: Option<&str>, env: &[(&str, &str)], flag: bool| {
            resolve_with(
                file,
                env,
                &Flags {
                    dev: flag,
                    ..Flags::default()
                },
            )
            .map(|c| c.dev)
        };
        assert_eq!(dev(Some("dev = true\n"), &[], false), Ok(true));
        assert_eq!(dev(None, &[("FANGPIN_DEV", "true")], false), Ok(true));
        assert_eq!(dev(None, &[], true), Ok(true));
        // The environment may turn off the file's dev mode; then the
        // sections are required again.
        assert!(dev(Some("dev = true\n"), &[("FANGPIN_DEV", "0")], false).is_err());
        assert_eq!(
            problems(None, &[("FANGPIN_DEV", "yes")])[0],
            r#"FANGPIN_DEV: must be 1, 0, true or false, got "yes""#
        );
    }

    #[test]
    fn the_rendered_security_sections_read_back() {
        let config = resolve_with(
            Some(FULL),
            &[("FANGPIN_TLS_CLIENT_CA_FILE", "/etc/fangpin/tls/clients.crt")],
            &Flags::default(),
        )
        .expect("valid");
        let again =
            resolve_with(Some(&config.render()), &[], &Flags::default()).expect("valid again");
        assert_eq!(again.tls, config.tls);
        assert_eq!(again.auth, config.auth);
        assert_eq!(again.personal_data_key_file, config.personal_data_key_file);
        assert_eq!(
            again.tls.and_then(|t| t.client_ca_file),
            Some(PathBuf::from("/etc/fangpin/tls/clients.crt"))
        );
    }
}
