//! Client request ids. The first outcome of every (rpc, request_id) is kept:
//! a success in the same transaction as its effect, a business rejection in a
//! transaction of its own (TigerBeetle's "id already failed"), so a retry can
//! never turn a refusal into a success or apply an effect twice.

use chrono::{DateTime, Utc};

use crate::{Conn, Result, col, timestamp};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// SHA-256 of the canonical request, hex: tells a retry from a reused id.
    pub request_hash: String,
    /// gRPC status code; 0 for success.
    pub status_code: i32,
    pub status_message: String,
    /// The encoded response on success, the encoded status details otherwise.
    pub body: Vec<u8>,
}

#[tracing::instrument(name = "store.idempotency.find", level = "info", skip_all, fields(fangpin.rpc = rpc))]
pub async fn find(conn: &mut Conn, rpc: &str, request_id: &str) -> Result<Option<Outcome>> {
    let row = sqlx::query(
        "SELECT request_hash, status_code, status_message, response FROM idempotency WHERE rpc = $1 AND request_id = $2",
    )
    .bind(rpc)
    .bind(request_id)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        let code: i64 = col(&row, "status_code")?;
        Ok(Outcome {
            request_hash: col(&row, "request_hash")?,
            status_code: i32::try_from(code).unwrap_or(2),
            status_message: col(&row, "status_message")?,
            body: col(&row, "response")?,
        })
    })
    .transpose()
}

/// Records an outcome. For rejections stored outside the effect's transaction a
/// concurrent first writer may have won; `ON CONFLICT DO NOTHING` keeps theirs.
#[tracing::instrument(name = "store.idempotency.record", level = "info", skip_all, fields(fangpin.rpc = rpc))]
pub async fn record(
    conn: &mut Conn,
    rpc: &str,
    request_id: &str,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO idempotency (rpc, request_id, request_hash, status_code, status_message, response, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (rpc, request_id) DO NOTHING",
    )
    .bind(rpc)
    .bind(request_id)
    .bind(&outcome.request_hash)
    .bind(i64::from(outcome.status_code))
    .bind(&outcome.status_message)
    .bind(outcome.body.clone())
    .bind(timestamp(now))
    .execute(conn)
    .await?;
    Ok(())
}
