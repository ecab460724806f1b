//! The audit log's storage (docs/audit-log.md): one hash chain per county in
//! `audit_log`, keyed by (county_code, seq).
//!
//! `append` reads the chain's head and inserts the next entry in the caller's
//! transaction. The caller holds the county's write lock (`Store::begin_write`),
//! so a county's chain has one writer at a time and an entry is committed if
//! and only if the effect it records is. The hashing and the verification are
//! the domain's (`fangpin_domain::audit`); this module only moves rows.

use std::ops::ControlFlow;

use fangpin_domain::audit::{AuditEntry, AuditFields, ChainHead};
use futures_util::TryStreamExt;
use sqlx::Row;

use crate::{Conn, Result, StoreError, col};

/// The newest entry of `county_code`'s chain, or `ChainHead::GENESIS` when
/// it has none.
#[tracing::instrument(name = "store.audit.head", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn head(conn: &mut Conn, county_code: &str) -> Result<ChainHead> {
    let row = sqlx::query(
        "SELECT seq, hash FROM audit_log WHERE county_code = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(county_code)
    .fetch_optional(conn)
    .await?;
    match row {
        None => Ok(ChainHead::GENESIS),
        Some(row) => {
            let seq = seq_of(county_code, col(&row, "seq")?)?;
            let hash = hash_of(county_code, seq, "hash", col(&row, "hash")?)?;
            Ok(ChainHead { seq, hash })
        }
    }
}

/// Appends the entry that follows the head of `county_code`'s chain and
/// returns it. Must run in a write transaction of that county (which holds its
/// lock); the primary key refuses a second entry at the same seq regardless.
#[tracing::instrument(name = "store.audit.append", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn append(
    conn: &mut Conn,
    county_code: &str,
    fields: &AuditFields<'_>,
) -> Result<AuditEntry> {
    let head = head(conn, county_code).await?;
    let entry = AuditEntry::append(&head, fields);
    let seq = i64::try_from(entry.seq)
        .map_err(|_| StoreError::Corrupt(format!("audit chain of {county_code} is full")))?;
    sqlx::query(
        "INSERT INTO audit_log (county_code, seq, at, actor, role, rpc, object, before, after, \
         request_id, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(county_code)
    .bind(seq)
    .bind(&entry.at)
    .bind(&entry.actor)
    .bind(&entry.role)
    .bind(&entry.rpc)
    .bind(&entry.object)
    .bind(&entry.before)
    .bind(&entry.after)
    .bind(&entry.request_id)
    .bind(entry.prev_hash.to_vec())
    .bind(entry.hash.to_vec())
    .execute(conn)
    .await?;
    Ok(entry)
}

/// Hands `each` the entries of `county_code`'s chain in seq order, one row at
/// a time (memory stays constant however long the chain), until the rows end
/// or `each` breaks. The rows are returned as stored, unchecked: verifying
/// them is the caller's (`fangpin_domain::audit::Verifier`).
#[tracing::instrument(name = "store.audit.stream", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn stream(
    conn: &mut Conn,
    county_code: &str,
    each: impl FnMut(AuditEntry) -> ControlFlow<()>,
) -> Result<()> {
    stream_after(conn, county_code, 0, u32::MAX, each).await
}

/// At most `limit` entries of `county_code`'s chain after `after_seq`, in
/// seq order: a page of the chain (AuditService.ListAuditEntries).
#[tracing::instrument(name = "store.audit.page", level = "info", skip_all, fields(fangpin.county_code = %county_code))]
pub async fn page(
    conn: &mut Conn,
    county_code: &str,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let mut entries = Vec::new();
    stream_after(conn, county_code, after_seq, limit, |entry| {
        entries.push(entry);
        ControlFlow::Continue(())
    })
    .await?;
    Ok(entries)
}

async fn stream_after(
    conn: &mut Conn,
    county_code: &str,
    after_seq: u64,
    limit: u32,
    mut each: impl FnMut(AuditEntry) -> ControlFlow<()>,
) -> Result<()> {
    // A seq past i64 was never stored (`append` refuses it), so nothing
    // follows it.
    let Ok(after_seq) = i64::try_from(after_seq) else {
        return Ok(());
    };
    let mut rows = sqlx::query(
        "SELECT seq, at, actor, role, rpc, object, before, after, request_id, prev_hash, hash \
         FROM audit_log WHERE county_code = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(county_code)
    .bind(after_seq)
    .bind(i64::from(limit))
    .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let seq = seq_of(county_code, row.try_get("seq")?)?;
        let entry = AuditEntry {
            seq,
            at: row.try_get("at")?,
            actor: row.try_get("actor")?,
            role: row.try_get("role")?,
            rpc: row.try_get("rpc")?,
            object: row.try_get("object")?,
            before: row.try_get("before")?,
            after: row.try_get("after")?,
            request_id: row.try_get("request_id")?,
            prev_hash: hash_of(county_code, seq, "prev_hash", row.try_get("prev_hash")?)?,
            hash: hash_of(county_code, seq, "hash", row.try_get("hash")?)?,
        };
        if each(entry).is_break() {
            break;
        }
    }
    Ok(())
}

/// The counties that have at least one audit entry, in code order.
#[tracing::instrument(name = "store.audit.counties", level = "info", skip_all)]
pub async fn counties_with_entries(conn: &mut Conn) -> Result<Vec<String>> {
    let rows = sqlx::query("SELECT DISTINCT county_code FROM audit_log ORDER BY county_code")
        .fetch_all(conn)
        .await?;
    rows.iter().map(|row| col(row, "county_code")).collect()
}

/// A stored seq, which the schema keeps at 1 or more; anything else was
/// written past the CHECK, so it is reported with the row it came from.
fn seq_of(county_code: &str, seq: i64) -> Result<u64> {
    u64::try_from(seq).map_err(|_| {
        StoreError::Corrupt(format!(
            "audit entry of county {county_code} has seq {seq}, which is below 1"
        ))
    })
}

/// A stored hash, which the schema keeps at 32 bytes.
fn hash_of(county_code: &str, seq: u64, column: &str, bytes: Vec<u8>) -> Result<[u8; 32]> {
    let len = bytes.len();
    bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!(
            "audit entry {seq} of county {county_code}: {column} is {len} bytes, not 32"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn fields<'a>(request_id: &'a str, after: &'a str) -> AuditFields<'a> {
        AuditFields {
            at: "2026-03-20T01:15:00.000000Z",
            actor: "unauthenticated",
            role: "",
            rpc: "/fangpin.v1.PayoutService/PayClaim",
            object: "130426/claim/0195b8d2-7c1e-7000-8000-000000000001",
            before: r#"{"state":"filed"}"#,
            after,
            request_id,
        }
    }

    #[tokio::test]
    async fn chains_are_per_county_and_stream_back_as_written() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("audit.db").display());
        let store = Store::connect(&url).await.expect("store");

        let mut written = Vec::new();
        for (county, request_id) in [("130426", "r1"), ("410102", "r2"), ("130426", "r3")] {
            let mut tx = store.begin_write(county).await.expect("begin");
            let entry = append(&mut tx, county, &fields(request_id, r#"{"state":"paid"}"#))
                .await
                .expect("append");
            tx.commit().await.expect("commit");
            written.push(entry);
        }
        assert_eq!(written.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 1, 2]);
        assert_eq!(written[2].prev_hash, written[0].hash);

        let mut conn = store.read().await.expect("read");
        assert_eq!(
            counties_with_entries(&mut conn).await.expect("counties"),
            ["130426", "410102"]
        );
        assert_eq!(
            head(&mut conn, "130426").await.expect("head"),
            written[2].head()
        );
        assert_eq!(
            head(&mut conn, "999999").await.expect("head"),
            ChainHead::GENESIS
        );
        let mut read = Vec::new();
        stream(&mut conn, "130426", |e| {
            read.push(e);
            ControlFlow::Continue(())
        })
        .await
        .expect("stream");
        assert_eq!(read, [written[0].clone(), written[2].clone()]);
        assert_eq!(fangpin_domain::audit::verify(&read), Ok(2));

        // The table refuses changes.
        let refused = sqlx::query("UPDATE audit_log SET after = '' WHERE seq = 1")
            .execute(&mut *conn)
            .await;
        assert!(refused.is_err(), "an update went through");
        let refused = sqlx::query("DELETE FROM audit_log")
            .execute(&mut *conn)
            .await;
        assert!(refused.is_err(), "a delete went through");
    }
}
