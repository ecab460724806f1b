//! `fangpind admin`: backup and restore of a SQLite database, the
//! verification and export of the audit log's hash chains on either
//! database, and the check of a working-day calendar file. These open the
//! database (or the file) themselves, so they live with the server binary:
//! a backup must not depend on the server being up (and a restore needs it
//! down), and an audit of the log must not trust the server that wrote it.
//! The `fangpin` command line speaks gRPC only. PostgreSQL has its own
//! backup tools: see docs/backup.md.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use fangpin_domain::audit::{BreakKind, ChainBreak, ChainHead, Verifier};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};

/// How long a backup waits on a database locked by a checkpoint or by
/// another process's exclusive lock; the same as the server's busy timeout.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Copy a live SQLite database to a new file: a consistent snapshot,
    /// taken while the server keeps reading and writing (SQLite's VACUUM
    /// INTO). The copy is then checked and its tables counted.
    Backup {
        /// The database to copy, as the server's --database-url (sqlite://PATH)
        #[arg(long, value_name = "URL")]
        database: String,
        /// The new file; an existing file is never overwritten
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Put a backup in place of a database. Stop the server first: it must
    /// not have the old file open while it is replaced.
    Restore {
        /// A file written by `fangpind admin backup`
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Where the server will find it, as its --database-url (sqlite://PATH)
        #[arg(long, value_name = "URL")]
        database: String,
        /// Replace an existing database at that path
        #[arg(long)]
        force: bool,
    },
    /// The tamper-evident audit log (docs/audit-log.md)
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Working-day calendar files for `[calendar] file`
    #[command(subcommand)]
    Calendar(CalendarCmd),
}

#[derive(Subcommand, Debug)]
pub enum CalendarCmd {
    /// Check a calendar file before it is deployed, with the rules fangpind
    /// applies at start-up: the format, each year's statutory holidays, and
    /// that it continues the built-in years (a year in both must agree).
    Check {
        /// The file, in the format of data/cn-workdays.txt
        file: PathBuf,
    },
}

/// Prints what a calendar file adds; an error names the file and the line.
fn check_calendar(file: &Path) -> Result<()> {
    let merged = crate::write_path::calendar::load_file(file)?;
    let (built_in_first, built_in_last) =
        fangpin_domain::calendar::WorkCalendar::official().years();
    let (first, last) = merged.years();
    println!(
        "{}: valid; covered years {first}..={last} (built in {built_in_first}..={built_in_last})",
        file.display()
    );
    for year in first..=last {
        let (off, make_up) = merged.year_counts(year)?;
        let statutory = fangpin_domain::calendar::statutory_holiday_days(year).unwrap_or(0)
            + fangpin_domain::calendar::extra_days_off(year);
        println!(
            "  {year}: {off} weekdays off, {make_up} make-up working days, net {} (statutory {statutory}){}",
            i64::from(off) - i64::from(make_up),
            if year > built_in_last {
                "  <- from the file"
            } else {
                ""
            }
        );
    }
    println!("last covered day: {}", merged.last_covered_day());
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Verify each county's hash chain, reading the database directly (the
    /// server may be running). Prints the count and head of each chain, or
    /// the first broken link, and fails if any chain is broken.
    Verify {
        /// The database, as the server's --database-url (sqlite://PATH or
        /// postgres://...)
        #[arg(long, value_name = "URL")]
        database: String,
        /// Only this county's chain (default: every county with entries)
        #[arg(long, value_name = "CODE")]
        county: Option<String>,
        /// Heads recorded by an earlier run (`--write-heads`), kept away
        /// from the database: each chain must still pass through its
        /// recorded head, so deleting the newest entries is detected too
        #[arg(long, value_name = "FILE")]
        heads: Option<PathBuf>,
        /// After a clean run, write each chain's head to FILE (one line
        /// `county seq hash`), to keep somewhere the database's
        /// administrators cannot change (another host, a WORM store, print)
        #[arg(long, value_name = "FILE")]
        write_heads: Option<PathBuf>,
    },
    /// Write one county's chain as JSON lines (every stored field, hashes
    /// in hex), for verification by an outside script (docs/audit-log.md)
    Export {
        #[arg(long, value_name = "URL")]
        database: String,
        #[arg(long, value_name = "CODE")]
        county: String,
        /// The file to write; an existing file is never overwritten
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
}

/// Chain heads recorded outside the database, by county.
pub type RecordedHeads = std::collections::BTreeMap<String, ChainHead>;

/// Reads a heads file: lines `county seq hash` (64 hex digits); blank lines
/// and lines starting with `#` are skipped.
pub fn parse_heads(text: &str) -> Result<RecordedHeads> {
    let mut heads = RecordedHeads::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || anyhow::anyhow!("heads line {}: expected `county seq hash`", i + 1);
        let mut parts = line.split_whitespace();
        let (Some(county), Some(seq), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        let bytes = hex::decode(hash).map_err(|_| bad())?;
        let hash: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        if heads
            .insert(county.to_string(), ChainHead { seq, hash })
            .is_some()
        {
            bail!("heads line {}: county {county} listed twice", i + 1);
        }
    }
    Ok(heads)
}

/// The heads file of `reports` (clean chains only).
pub fn render_heads(reports: &[ChainReport]) -> String {
    let mut out = String::from("# fangpin audit heads: county seq hash\n");
    for report in reports {
        if let Ok((_, head)) = &report.verdict {
            out.push_str(&format!(
                "{} {} {}\n",
                report.county,
                head.seq,
                fangpin_domain::audit::hex(&head.hash)
            ));
        }
    }
    out
}

/// One county's chain, verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainReport {
    pub county: String,
    /// How many entries verified and the chain's head, or the first break.
    pub verdict: Result<(u64, ChainHead), ChainBreak>,
}

impl std::fmt::Display for ChainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.verdict {
            Ok((entries, head)) => write!(
                f,
                "county {}: ok: {entries} entries, head {}",
                self.county,
                fangpin_domain::audit::hex(&head.hash)
            ),
            Err(broken) => write!(f, "county {}: {broken}", self.county),
        }
    }
}

/// What a check of a database file found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub file: PathBuf,
    /// Every table but SQLite's own, with its row count, by name.
    pub tables: Vec<(String, i64)>,
}

pub async fn run(cmd: Cmd) -> Result<()> {
    let report = match cmd {
        Cmd::Calendar(CalendarCmd::Check { file }) => return check_calendar(&file),
        Cmd::Audit(AuditCmd::Verify {
            database,
            county,
            heads,
            write_heads,
        }) => {
            return run_verify(&database, county.as_deref(), heads, write_heads).await;
        }
        Cmd::Audit(AuditCmd::Export {
            database,
            county,
            to,
        }) => {
            let written = export_audit(&database, &county, &to).await?;
            println!(
                "{written} entries of county {county} written to {}",
                to.display()
            );
            return Ok(());
        }
        Cmd::Backup { database, to } => {
            let report = backup(&database, &to).await?;
            println!("backup written to {}", report.file.display());
            report
        }
        Cmd::Restore {
            from,
            database,
            force,
        } => {
            let report = restore(&from, &database, force).await?;
            println!(
                "restored {} to {}; start the server on it",
                from.display(),
                report.file.display()
            );
            report
        }
    };
    print_report(&report);
    Ok(())
}

async fn run_verify(
    database_url: &str,
    county: Option<&str>,
    heads: Option<PathBuf>,
    write_heads: Option<PathBuf>,
) -> Result<()> {
    let recorded = match &heads {
        Some(path) => parse_heads(
            &std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("in {}", path.display()))?,
        None => RecordedHeads::new(),
    };
    let reports = verify_audit_against(database_url, county, &recorded).await?;
    if reports.is_empty() {
        println!("no audit entries");
    }
    let mut broken = Vec::new();
    for report in &reports {
        println!("{report}");
        if let Err(at) = &report.verdict {
            broken.push(format!("{} at entry {}", report.county, at.seq));
        }
    }
    if !broken.is_empty() {
        bail!("audit chain broken: {}", broken.join(", "));
    }
    if let Some(path) = write_heads {
        std::fs::write(&path, render_heads(&reports))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("heads written to {}", path.display());
    }
    Ok(())
}

/// Verifies the audit chain of `county`, or of every county with entries,
/// in the database `database_url` names (SQLite or PostgreSQL), streaming
/// each chain in seq order through the domain's `Verifier`: memory stays
/// constant however long the log. Reads only; applies no migration.
pub async fn verify_audit(database_url: &str, county: Option<&str>) -> Result<Vec<ChainReport>> {
    verify_audit_against(database_url, county, &RecordedHeads::new()).await
}

/// `verify_audit`, also requiring each chain to pass through its head in
/// `recorded` (a chain may have grown since; it may not have lost or
/// changed the recorded entry). A county with a recorded head but no
/// entries left is checked too.
pub async fn verify_audit_against(
    database_url: &str,
    county: Option<&str>,
    recorded: &RecordedHeads,
) -> Result<Vec<ChainReport>> {
    let mut conn = open_for_audit(database_url).await?;
    let mut counties = match county {
        Some(code) => vec![code.to_string()],
        None => fangpin_store::audit::counties_with_entries(&mut conn)
            .await
            .context(
                "listing the audit log's counties (is this a fangpin database, migrated to 0005?)",
            )?,
    };
    if county.is_none() {
        for code in recorded.keys() {
            if !counties.contains(code) {
                counties.push(code.clone());
            }
        }
    }
    let mut reports = Vec::with_capacity(counties.len());
    for county in counties {
        let mut verifier = Verifier::new(ChainHead::GENESIS);
        let mut broken = None;
        let expected = recorded.get(&county).copied();
        fangpin_store::audit::stream(&mut conn, &county, |entry| {
            if let Err(at) = verifier.check(&entry) {
                broken = Some(at);
                return ControlFlow::Break(());
            }
            match expected {
                Some(head) if head.seq == entry.seq && head.hash != entry.hash => {
                    broken = Some(ChainBreak {
                        seq: head.seq,
                        last_good: head.seq - 1,
                        kind: BreakKind::HeadMismatch,
                    });
                    ControlFlow::Break(())
                }
                _ => ControlFlow::Continue(()),
            }
        })
        .await
        .with_context(|| format!("reading the audit log of county {county}"))?;
        if broken.is_none()
            && let Some(head) = expected
            && verifier.head().seq < head.seq
        {
            // The chain ends before the recorded head: its newest entries
            // were deleted.
            broken = Some(ChainBreak {
                seq: head.seq,
                last_good: verifier.head().seq,
                kind: BreakKind::HeadMismatch,
            });
        }
        let verdict = match broken {
            Some(at) => Err(at),
            None => Ok((verifier.checked(), verifier.head())),
        };
        reports.push(ChainReport { county, verdict });
    }
    conn.close().await.ok();
    Ok(reports)
}

/// Writes `county`'s chain to `to` as JSON lines; returns how many entries.
pub async fn export_audit(database_url: &str, county: &str, to: &Path) -> Result<u64> {
    use std::io::Write as _;
    let mut conn = open_for_audit(database_url).await?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .with_context(|| format!("creating {}", to.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut written = 0u64;
    let mut failed = None;
    fangpin_store::audit::stream(&mut conn, county, |entry| {
        let line = serde_json::json!({
            "county_code": county,
            "seq": entry.seq,
            "at": entry.at,
            "actor": entry.actor,
            "role": entry.role,
            "rpc": entry.rpc,
            "object": entry.object,
            "before": entry.before,
            "after": entry.after,
            "request_id": entry.request_id,
            "prev_hash": fangpin_domain::audit::hex(&entry.prev_hash),
            "hash": fangpin_domain::audit::hex(&entry.hash),
        });
        match writeln!(out, "{line}") {
            Ok(()) => {
                written += 1;
                ControlFlow::Continue(())
            }
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })
    .await
    .with_context(|| format!("reading the audit log of county {county}"))?;
    if let Some(e) = failed {
        return Err(e).with_context(|| format!("writing {}", to.display()));
    }
    out.flush()
        .with_context(|| format!("writing {}", to.display()))?;
    conn.close().await.ok();
    Ok(written)
}

async fn open_for_audit(database_url: &str) -> Result<sqlx::AnyConnection> {
    fangpin_store::Backend::of_url(database_url)
        .with_context(|| format!("cannot verify {database_url:?}"))?;
    if database_url.starts_with("sqlite:") {
        // Opening a missing file would report only "unable to open".
        let path = sqlite_path(database_url)?;
        if !path.is_file() {
            bail!("no database at {}", path.display());
        }
    }
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(database_url)
        .await
        .context("opening the database")
}

fn print_report(report: &Report) {
    println!("integrity check: ok");
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
    table.set_header(["table", "rows"]);
    for (name, rows) in &report.tables {
        table.add_row([name.clone(), rows.to_string()]);
    }
    println!("{table}");
}

/// Writes a consistent copy of the SQLite database `database_url` names to
/// the new file `to`, checks the copy's integrity and counts its rows.
pub async fn backup(database_url: &str, to: &Path) -> Result<Report> {
    let source = sqlite_path(database_url)?;
    if !source.exists() {
        bail!("no database at {}", source.display());
    }
    if to.exists() {
        bail!(
            "{} already exists; a backup never overwrites a file (choose a new name)",
            to.display()
        );
    }
    let target = to
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", to.display()))?;
    let options = SqliteConnectOptions::new()
        .filename(&source)
        .create_if_missing(false)
        .busy_timeout(BUSY_TIMEOUT);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", source.display()))?;
    // VACUUM INTO reads the database in one read transaction, so the copy is
    // the database as of one commit, while the server's writer goes on in
    // the WAL. It refuses to write over a file that exists by now.
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await
        .with_context(|| format!("copying {} to {}", source.display(), to.display()))?;
    conn.close().await.ok();
    // SQLite does not sync the file VACUUM INTO writes; a backup that a
    // power cut can lose is not one.
    sync_file(to)?;
    check(to).await
}

/// Replaces (with `force`) or creates the SQLite database `database_url`
/// names with a copy of `from`, after checking `from`'s integrity. The copy
/// is written beside the target and renamed over it, so the target is either
/// the old database or the whole backup, never half of it.
pub async fn restore(from: &Path, database_url: &str, force: bool) -> Result<Report> {
    let target = sqlite_path(database_url)?;
    check(from)
        .await
        .with_context(|| format!("{} is not a sound backup; nothing restored", from.display()))?;
    if target.exists() {
        if !force {
            bail!(
                "{} already exists; stop the server and pass --force to replace it",
                target.display()
            );
        }
        ensure_unused(&target).await?;
    }
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .with_context(|| format!("{} names no file", target.display()))?
        .to_string_lossy()
        .into_owned();
    let temporary = dir.join(format!(".{name}.restore-{}", uuid::Uuid::new_v4().simple()));
    let copied = std::fs::copy(from, &temporary)
        .with_context(|| format!("copying {} to {}", from.display(), temporary.display()))
        .and_then(|_| sync_file(&temporary));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&temporary);
        return Err(e);
    }
    // A write-ahead log left by the old database would be replayed into the
    // new one on first open and corrupt it, so it goes with the old file.
    for suffix in ["-wal", "-shm", "-journal"] {
        let side = dir.join(format!("{name}{suffix}"));
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let _ = std::fs::remove_file(&temporary);
                return Err(e).with_context(|| format!("removing {}", side.display()));
            }
        }
    }
    std::fs::rename(&temporary, &target)
        .with_context(|| format!("renaming {} to {}", temporary.display(), target.display()))?;
    // The rename is durable only once the directory is synced.
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))?;
    check(&target).await
}

/// The file of a sqlite:// URL; any other database is refused.
fn sqlite_path(database_url: &str) -> Result<PathBuf> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        bail!(
            "fangpind admin backs up SQLite only; for PostgreSQL use pg_dump -Fc and pg_restore (see docs/backup.md)"
        );
    }
    if !database_url.starts_with("sqlite:") {
        bail!("expected a sqlite://PATH database URL, got {database_url:?}");
    }
    if database_url.contains(":memory:") {
        bail!("{database_url:?} is an in-memory database; there is no file to back up");
    }
    let options = SqliteConnectOptions::from_str(database_url)
        .with_context(|| format!("invalid database URL {database_url:?}"))?;
    let path = options.get_filename();
    if path.as_os_str().is_empty() {
        bail!("{database_url:?} names no database file");
    }
    Ok(path.to_path_buf())
}

/// Opens `file` read-only as an immutable database (no locks, no WAL files
/// beside it), runs `PRAGMA integrity_check` and counts every table's rows.
async fn check(file: &Path) -> Result<Report> {
    if !file.is_file() {
        bail!("no file at {}", file.display());
    }
    let options = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .immutable(true);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    let findings: Vec<String> = sqlx::query("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .with_context(|| format!("checking {}", file.display()))?
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    if findings != ["ok"] {
        bail!(
            "{} fails SQLite's integrity check:\n  {}",
            file.display(),
            findings.join("\n  ")
        );
    }
    let names: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await?
    .iter()
    .map(|row| row.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    if names.is_empty() {
        bail!("{} holds no tables: not a fangpin database", file.display());
    }
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        // The names come from the file's own schema; quoting keeps any of
        // them one identifier.
        let sql = format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""));
        let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(&mut conn)
            .await
            .with_context(|| format!("counting {name}"))?;
        tables.push((name, rows));
    }
    conn.close().await.ok();
    Ok(Report {
        file: file.to_path_buf(),
        tables,
    })
}

/// Refuses to replace a database another process has open: a server still
/// running would go on writing to the old file, and the restore would be lost.
async fn ensure_unused(target: &Path) -> Result<()> {
    let options = SqliteConnectOptions::new()
        .filename(target)
        .create_if_missing(false)
        .busy_timeout(Duration::ZERO)
        .locking_mode(sqlx::sqlite::SqliteLockingMode::Exclusive);
    let in_use = || {
        format!(
            "{} is in use (is fangpind still running?); stop the server before restoring",
            target.display()
        )
    };
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(in_use)?;
    // In exclusive locking mode the first write lock is kept until the
    // connection closes, and it cannot be had while anyone else has the file open.
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut conn)
        .await
        .with_context(in_use)?;
    sqlx::query("ROLLBACK").execute(&mut conn).await?;
    conn.close().await.ok();
    Ok(())
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("syncing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sqlite_file_urls_are_accepted() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/fangpin/fangpin.db").expect("valid"),
            PathBuf::from("/var/lib/fangpin/fangpin.db")
        );
        assert_eq!(
            sqlite_path("sqlite://fangpin.db").expect("valid"),
            PathBuf::from("fangpin.db")
        );
        let pg = sqlite_path("postgres://fangpin@db/fangpin").expect_err("refused");
        assert!(pg.to_string().contains("pg_dump"), "{pg}");
        assert!(sqlite_path("mysql://db/x").is_err());
        assert!(sqlite_path("sqlite::memory:").is_err());
    }
}
