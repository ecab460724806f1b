//! The personal-data key's check value (docs/personal-data.md). The store
//! holds sealed bytes and never a key; this table records which key sealed
//! them, so a server started with another key is refused at start-up.
//!
//! Unlike the other store calls, these carry no span: they run once, at
//! start-up, outside any RPC, and every store span is a child of the RPC
//! that made it (tests/telemetry.rs holds the server to that).

use chrono::{DateTime, Utc};

use crate::{Conn, Result, col, timestamp};

/// The check value recorded for this database, if a server has started on it.
pub async fn key_check(conn: &mut Conn) -> Result<Option<Vec<u8>>> {
    let row = sqlx::query("SELECT key_check FROM personal_data_key WHERE id = 1")
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(|r| col(r, "key_check")).transpose()
}

/// Records `check` unless a check value is already there (another replica
/// may have started at the same moment), and returns the one recorded.
pub async fn record_key_check(
    conn: &mut Conn,
    check: &[u8],
    now: DateTime<Utc>,
) -> Result<Vec<u8>> {
    sqlx::query(
        "INSERT INTO personal_data_key (id, key_check, created_at) VALUES (1, $1, $2) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(check.to_vec())
    .bind(timestamp(now))
    .execute(&mut *conn)
    .await?;
    key_check(conn).await?.ok_or_else(|| {
        crate::StoreError::Corrupt("the personal-data key check vanished after its insert".into())
    })
}

#[cfg(test)]
mod tests {
    use sqlx::{Connection, Executor};

    use crate::Store;

    /// A database enrolled before migration 0006 holds plaintext numbers the
    /// migration cannot seal (it has no key): it must refuse, name why, and
    /// leave the rows as they were rather than drop them.
    #[tokio::test]
    async fn migration_0006_refuses_a_database_with_plaintext_households() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open");
        let mut before = sqlx::migrate!("./migrations/sqlite");
        before.migrations = before
            .migrations
            .iter()
            .filter(|m| m.version < 6)
            .cloned()
            .collect::<Vec<_>>()
            .into();
        before.run(&mut conn).await.expect("migrations 0001-0005");
        conn.execute(
            "INSERT INTO counties VALUES ('130426', '涉县', 1000, 'insurer', '2024-01-01T00:00:00Z');
             INSERT INTO households (household_id, county_code, policy_year, village_code, household_type,
                 head_name, head_id_number, bank_account, persons, created_at)
             VALUES ('h1', '130426', 2024, '130426100201', 'ordinary', '户主', '13042619700101001X',
                 '6228480012345678', 1, '2024-01-01T00:00:00Z');",
        )
        .await
        .expect("an enrolled household in the old schema");
        conn.close().await.expect("close");

        let Err(refused) =
            Store::connect(&format!("sqlite://{}", dir.path().join("old.db").display())).await
        else {
            panic!("migration 0006 must refuse");
        };
        let message = refused.to_string();
        assert!(
            message.contains("migration 0006 (personal data) refuses to run"),
            "{message}"
        );

        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("reopen");
        let kept: (String,) = sqlx::query_as("SELECT head_id_number FROM households")
            .fetch_one(&mut conn)
            .await
            .expect("the old row is still there");
        assert_eq!(kept.0, "13042619700101001X");
    }

    /// On an empty database the migration runs, and the key check is
    /// recorded once: a second, different value does not replace it.
    #[tokio::test]
    async fn the_first_key_check_recorded_stays() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("new.db").display()))
            .await
            .expect("migrations on an empty database");
        let mut conn = store.read().await.expect("connection");
        assert_eq!(super::key_check(&mut conn).await.expect("read"), None);
        let now = chrono::Utc::now();
        let first = super::record_key_check(&mut conn, &[1; 32], now)
            .await
            .expect("record");
        assert_eq!(first, vec![1; 32]);
        let second = super::record_key_check(&mut conn, &[2; 32], now)
            .await
            .expect("record");
        assert_eq!(second, vec![1; 32]);
    }
}
