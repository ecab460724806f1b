//! fangpind as a child process: the real binary, built once per test run,
//! started in development mode, its address read from its JSON log.
//!
//! The tests crate cannot name another package's binary, so the first test
//! to need fangpind builds it with the cargo that runs the tests, into the
//! same target directory and profile (a no-op when it is up to date).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fangpin_proto::tonic::transport::Channel;
use serde_json::Value;
use tokio::sync::mpsc;

/// How long any one step may take before the test gives up on it: far above
/// what each takes, so only a hang trips it.
pub const STEP_LIMIT: Duration = Duration::from_secs(60);

/// Variables the child must not inherit from the developer's shell.
pub const CONFIG_VARS: [&str; 25] = [
    "FANGPIN_CONFIG",
    "FANGPIN_LISTEN",
    "FANGPIN_DATABASE_URL",
    "DATABASE_URL",
    "FANGPIN_REQUEST_TIMEOUT_SECS",
    "FANGPIN_SHUTDOWN_GRACE_SECS",
    "FANGPIN_MAX_CONNECTIONS",
    "FANGPIN_LOG_FILTER",
    "RUST_LOG",
    "FANGPIN_LOG_FORMAT",
    "NO_COLOR",
    "FANGPIN_DEV",
    "FANGPIN_TLS_CERT_FILE",
    "FANGPIN_TLS_KEY_FILE",
    "FANGPIN_TLS_CLIENT_CA_FILE",
    "FANGPIN_AUTH_JWKS_FILE",
    "FANGPIN_AUTH_ISSUER",
    "FANGPIN_AUTH_AUDIENCE",
    "FANGPIN_AUTH_LEEWAY_SECS",
    "FANGPIN_PERSONAL_DATA_KEY_FILE",
    "FANGPIN_CALENDAR_FILE",
    "FANGPIN_EVIDENCE_DIR",
    "FANGPIN_NOTICE_FONT",
    "FANGPIN_CONSOLE_OIDC_CLIENT_ID",
    "FANGPIN_CONSOLE_OIDC_SCOPE",
];

/// fangpind, as built for this test run (tests/Cargo.toml's
/// `fangpind-under-test`: fangpin-server's own main.rs).
pub fn fangpind() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| built_binary("fangpind-under-test"))
}

/// The `fangpin` command line, as built for this test run
/// (`fangpin-under-test`: fangpin-cli's own main.rs).
pub fn fangpin_cli() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| built_binary("fangpin-under-test"))
}

/// A binary of this package: Cargo builds them before the integration
/// tests and benchmarks that run, into the same profile directory as the
/// test executable's `deps/` (CARGO_BIN_EXE_* names the same path, but is
/// set only while an integration test itself compiles, not this library).
fn built_binary(bin: &str) -> PathBuf {
    // …/target/<profile>/deps/ops-<hash>
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let binary = profile_dir.join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "no {} (Cargo builds it with the tests of fangpin-tests)",
        binary.display()
    );
    binary
}

pub fn fangpind_command() -> Command {
    let mut command = Command::new(fangpind());
    for var in CONFIG_VARS {
        command.env_remove(var);
    }
    command
}

/// A fangpind child process, its address and its JSON log lines.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    logs: mpsc::UnboundedReceiver<Value>,
    seen: Vec<Value>,
}

impl Daemon {
    /// Starts fangpind on `database` (a SQLite file, created if missing) on a
    /// free port, with the service date pinned, and waits until it serves.
    pub async fn start(database: &Path, shutdown_grace_secs: u64) -> Daemon {
        let mut command = fangpind_command();
        command
            .arg("--database-url")
            .arg(format!("sqlite://{}", database.display()))
            .args(["--today", "2024-03-01", "--listen", "127.0.0.1:0"]);
        Daemon::spawn(command, shutdown_grace_secs).await
    }

    /// Starts `command` (fangpind with its database named, and its date
    /// pinned with `--today` or not) in development mode on a free port, or
    /// the one `command` names with `--listen`, and waits until it serves.
    pub async fn spawn(mut command: Command, shutdown_grace_secs: u64) -> Daemon {
        // `call started` (debug) tells a test a call reached the server;
        // a caller may set its own filter.
        // `fangpind_command` removes the variable, which `get_envs` lists
        // with no value: only a value set by the caller counts.
        if !command
            .get_envs()
            .any(|(name, value)| name == "FANGPIN_LOG_FILTER" && value.is_some())
        {
            command.env("FANGPIN_LOG_FILTER", "info,fangpin_server=debug");
        }
        let mut child = command
            // Plaintext and no tokens: these tests are about the process,
            // not about access (tests/access.rs, tests/tls.rs).
            .arg("--dev")
            .env("FANGPIN_LOG_FORMAT", "json")
            .env(
                "FANGPIN_SHUTDOWN_GRACE_SECS",
                shutdown_grace_secs.to_string(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fangpind");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, logs) = mpsc::unbounded_channel();
        // A thread, not a task: reading a pipe blocks. It ends with the child.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        let _ = tx.send(value);
                    }
                    Err(_) => eprintln!("fangpind (not JSON): {line}"),
                }
            }
        });
        let mut daemon = Daemon {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            logs,
            seen: Vec::new(),
        };
        let serving = daemon.wait_for_log("fangpind serving").await;
        daemon.addr = serving["local"]
            .as_str()
            .expect("the serving line names the address")
            .parse()
            .expect("a socket address");
        daemon
    }

    /// Waits for the first log line with this message that was not yet
    /// waited for, and returns it.
    pub async fn wait_for_log(&mut self, message: &str) -> Value {
        self.wait_for(|line| line["message"] == message).await
    }

    pub async fn wait_for(&mut self, mut wanted: impl FnMut(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + STEP_LIMIT;
        loop {
            let line = tokio::time::timeout_at(deadline, self.logs.recv())
                .await
                .unwrap_or_else(|_| panic!("no such log line; seen: {:#?}", self.seen))
                .unwrap_or_else(|| panic!("fangpind exited; its log: {:#?}", self.seen));
            self.seen.push(line.clone());
            if wanted(&line) {
                return line;
            }
        }
    }

    /// Every line logged so far, including those not waited for.
    pub fn drain_logs(&mut self) -> &[Value] {
        while let Ok(line) = self.logs.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .expect("valid URI")
            .connect()
            .await
            .expect("connect to fangpind")
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, polling (std's `wait` would block the
    /// runtime that the test's own calls run on).
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + STEP_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for fangpind") {
                return status;
            }
            assert!(Instant::now() < deadline, "fangpind did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, as a crash or the kernel's OOM killer ends a process: no
    /// drain, no flush. Waits until it is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub async fn stop(mut self) {
        self.terminate();
        let status = self.wait_exit().await;
        assert!(status.success(), "fangpind exited with {status}");
    }
}

impl Drop for Daemon {
    /// A failed test must not leave a server behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
