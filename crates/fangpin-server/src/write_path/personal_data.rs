//! The imperative half of sealing personal data (docs/personal-data.md):
//! reading the key file, drawing nonces from the operating system, creating
//! a development key, and checking at start-up that the key is the one the
//! database was sealed with. The algorithms are in
//! `fangpin_domain::personal_data`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use fangpin_domain::identity::ResidentId;
use fangpin_domain::personal_data::{
    Column, KEY_BYTES, NONCE_BYTES, OpenError, PersonalDataKey, person_row,
};
use fangpin_store::Store;

use crate::write_path::error::AppError;

/// A key file is 64 hex digits and a newline; anything much larger is not one.
const MAX_KEY_FILE_BYTES: u64 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("personal-data key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("personal-data key file {path}: larger than {MAX_KEY_FILE_BYTES} bytes, not a key")]
    TooLarge { path: PathBuf },
    #[error("personal-data key file {path}: {source}")]
    Format {
        path: PathBuf,
        source: fangpin_domain::personal_data::KeyError,
    },
    #[error(
        "personal-data key file {path}: other users can access it (mode {mode:o}); \
         `chmod 600` it (Kubernetes: defaultMode 0400)"
    )]
    OpenToOthers { path: PathBuf, mode: u32 },
    #[error(
        "the personal-data key does not match the one this database was sealed with \
         (its check value differs): start with the database's own key file; \
         a new key cannot open the stored ID numbers and bank accounts"
    )]
    WrongKey,
    #[error("checking the personal-data key against the database: {0}")]
    Store(#[from] fangpin_store::StoreError),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error(
        "development mode has no place for a generated personal-data key for this database \
         (an in-memory SQLite database, or a URL without a database name): set \
         [personal_data] key_file (FANGPIN_PERSONAL_DATA_KEY_FILE)"
    )]
    DevNoKeyPlace,
}

/// Fresh random bytes from the operating system.
fn random<const N: usize>() -> Result<[u8; N], KeyFileError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| KeyFileError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A fresh nonce for one seal. The OS random source failing is not something
/// to work around: the write fails as Internal.
pub fn nonce() -> Result<[u8; NONCE_BYTES], AppError> {
    random().map_err(|e| AppError::Internal(e.to_string()))
}

/// Fresh random bytes for a key that lives only in memory (a roster's
/// spool); the random source failing fails the call as Internal.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    random().map_err(|e| AppError::Internal(e.to_string()))
}

/// A key nobody else has: `ServerOptions::default()`'s, for tests and
/// embedded uses that start over an empty database each time.
pub fn random_key() -> PersonalDataKey {
    let bytes: [u8; KEY_BYTES] = random().expect("the operating system's random source");
    PersonalDataKey::from_bytes(&bytes)
}

/// Reads a key file: 64 hex digits, whitespace around them ignored. On unix,
/// a file other users can read or write is refused, and one the group can is
/// allowed with a warning (a dedicated service group is a common setup).
pub fn load_key_file(path: &Path) -> Result<PersonalDataKey, KeyFileError> {
    let read = |source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(KeyFileError::TooLarge {
            path: path.to_owned(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o007 != 0 {
            return Err(KeyFileError::OpenToOthers {
                path: path.to_owned(),
                mode,
            });
        }
        if mode & 0o070 != 0 {
            tracing::warn!(path = %path.display(), mode = format!("{mode:o}"), "the personal-data key file is accessible to its group");
        }
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    PersonalDataKey::parse_hex(&text).map_err(|source| KeyFileError::Format {
        path: path.to_owned(),
        source,
    })
}

/// Where development mode keeps the key of a database: beside a SQLite
/// file, as `<file>.personal-data.key`; for PostgreSQL, in the current
/// directory, named after the server and database
/// (`fangpin-dev.<host>_<port>_<database>.personal-data.key`), so that the
/// README's `DATABASE_URL=postgres://… cargo run -- --dev` starts on a fresh
/// database and finds its key again on the next start. None for an
/// in-memory SQLite database or a URL that names no database.
pub fn dev_key_path(database_url: &str) -> Option<PathBuf> {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() || path.contains(":memory:") {
            return None;
        }
        let mut name = PathBuf::from(path).into_os_string();
        name.push(".personal-data.key");
        return Some(PathBuf::from(name));
    }
    let rest = database_url
        .strip_prefix("postgres://")
        .or_else(|| database_url.strip_prefix("postgresql://"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    // user:password@ never reaches a file name.
    let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
    let (authority, database) = rest.split_once('/')?;
    if database.is_empty() {
        return None;
    }
    let (host, port) = authority.rsplit_once(':').unwrap_or((authority, "5432"));
    let host = if host.is_empty() { "localhost" } else { host };
    let safe = |part: &str| -> String {
        part.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    Some(PathBuf::from(format!(
        "fangpin-dev.{}_{}_{}.personal-data.key",
        safe(host),
        safe(port),
        safe(database)
    )))
}

/// Development mode without a key file: the key at `dev_key_path`, created
/// (mode 0600, never overwritten) on first start and checked against the
/// database on every start, so a key file lost or taken from another
/// database stops the server instead of sealing with a second key.
pub fn dev_key(database_url: &str) -> Result<PersonalDataKey, KeyFileError> {
    let path = dev_key_path(database_url).ok_or(KeyFileError::DevNoKeyPlace)?;
    if !path.exists() {
        let bytes: [u8; KEY_BYTES] = random()?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let write = |source| KeyFileError::Read {
            path: path.clone(),
            source,
        };
        let mut file = options.open(&path).map_err(write)?;
        use std::io::Write;
        writeln!(file, "{}", hex::encode(bytes)).map_err(write)?;
        file.sync_all().map_err(write)?;
        tracing::warn!(path = %path.display(), "development mode: created a personal-data key for the database; keep it with the database, it cannot be opened without it");
    } else {
        tracing::warn!(path = %path.display(), "development mode: personal-data key of the database");
    }
    load_key_file(&path)
}

/// Refuses a key other than the one the database was sealed with; the first
/// server on a new database records its key's check value.
pub async fn verify_key(
    store: &Store,
    key: &PersonalDataKey,
    now: DateTime<Utc>,
) -> Result<(), KeyFileError> {
    // The pool's own connection, not `Store::read`: no store span outside
    // an RPC (see fangpin_store::personal_data).
    let mut conn = store
        .pool()
        .acquire()
        .await
        .map_err(fangpin_store::StoreError::from)?;
    let recorded =
        fangpin_store::personal_data::record_key_check(&mut conn, &key.check_value(), now).await?;
    if recorded != key.check_value() {
        return Err(KeyFileError::WrongKey);
    }
    Ok(())
}

/// A stored value that does not open is a wrong key or tampering: Internal,
/// with the cause (never the value) logged.
fn corrupt(what: &str, e: OpenError) -> AppError {
    AppError::Internal(format!("stored {what} does not open: {e}"))
}

/// Opens a household's bank account (bank matching needs the digits).
pub fn open_bank_account(
    key: &PersonalDataKey,
    household_id: &str,
    sealed: &[u8],
) -> Result<String, AppError> {
    key.open(Column::HouseholdBankAccount, household_id, sealed)
        .map_err(|e| corrupt("bank account", e))
}

/// Opens an enrolled person's ID number into the feed index's key.
pub fn open_person_key(
    key: &PersonalDataKey,
    policy_year: i32,
    household_id: &str,
    sealed: &[u8],
) -> Result<fangpin_domain::identity::PersonKey, String> {
    let text = key
        .open(
            Column::PersonId,
            &person_row(policy_year, household_id),
            sealed,
        )
        .map_err(|e| e.to_string())?;
    fangpin_domain::identity::PersonKey::parse_bytes(text.as_bytes()).map_err(|e| e.to_string())
}

/// Seals a person's ID number for the `persons` row of `household_id` in
/// `policy_year`, with its lookup hash.
pub fn seal_person(
    key: &PersonalDataKey,
    policy_year: i32,
    household_id: &str,
    id: &ResidentId,
) -> Result<([u8; 32], Vec<u8>), AppError> {
    let sealed = key.seal(
        Column::PersonId,
        &person_row(policy_year, household_id),
        id.as_str(),
        nonce()?,
    );
    Ok((key.lookup_hash(id), sealed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dev_keys_live_beside_sqlite_files_and_are_named_after_postgres_databases() {
        assert_eq!(
            dev_key_path("sqlite:///var/lib/fangpin/fangpin.db?mode=rwc"),
            Some(PathBuf::from(
                "/var/lib/fangpin/fangpin.db.personal-data.key"
            ))
        );
        assert_eq!(
            dev_key_path("sqlite://fangpin.db"),
            Some(PathBuf::from("fangpin.db.personal-data.key"))
        );
        assert_eq!(dev_key_path("sqlite://:memory:"), None);
        assert_eq!(
            dev_key_path("postgres://postgres@127.0.0.1:5432/fangpin"),
            Some(PathBuf::from(
                "fangpin-dev.127.0.0.1_5432_fangpin.personal-data.key"
            ))
        );
        // The password never reaches the file name; the port defaults.
        assert_eq!(
            dev_key_path("postgresql://u:s3cr@t@db.example/prod?sslmode=require"),
            Some(PathBuf::from(
                "fangpin-dev.db.example_5432_prod.personal-data.key"
            ))
        );
        assert_eq!(dev_key_path("postgres://u@h"), None);
        assert!(matches!(
            dev_key("sqlite://:memory:"),
            Err(KeyFileError::DevNoKeyPlace)
        ));
    }

    #[test]
    fn a_dev_key_is_created_once_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("f.db").display());
        let first = dev_key(&url).unwrap();
        let path = dir.path().join("f.db.personal-data.key");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.trim().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(dev_key(&url).unwrap(), first);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }

    #[test]
    fn key_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "abc\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let short = load_key_file(&path).unwrap_err().to_string();
        assert!(short.contains("64 hex digits"), "{short}");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        assert!(load_key_file(&path).is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let open = load_key_file(&path).unwrap_err().to_string();
            assert!(open.contains("chmod 600"), "{open}");
        }
        let missing = load_key_file(&dir.path().join("none")).unwrap_err();
        assert!(matches!(missing, KeyFileError::Read { .. }));
    }

    #[tokio::test]
    async fn a_database_refuses_a_second_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("f.db").display()))
            .await
            .unwrap();
        let key = random_key();
        let now = Utc::now();
        verify_key(&store, &key, now).await.unwrap();
        verify_key(&store, &key, now).await.unwrap();
        let refused = verify_key(&store, &random_key(), now).await.unwrap_err();
        assert!(matches!(refused, KeyFileError::WrongKey));
        assert!(refused.to_string().contains("does not match"));
    }
}
