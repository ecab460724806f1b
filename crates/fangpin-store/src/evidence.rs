//! Evidence rows (migration 0020): a claim's files by hash. The bytes are
//! in the object store, never here.

use fangpin_domain::evidence::MediaType;
use uuid::Uuid;

use crate::{Conn, Result, StoreError, col, parse_uuid};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceRecord {
    pub evidence_id: Uuid,
    pub claim_id: Uuid,
    pub county_code: String,
    pub sha256: String,
    pub media_type: MediaType,
    pub size_bytes: u64,
    pub file_name: String,
    pub description: String,
    pub uploaded_by: String,
    pub uploaded_at: String,
}

const COLUMNS: &str = "evidence_id, claim_id, county_code, sha256, media_type, size_bytes, file_name, \
    description, uploaded_by, uploaded_at";

fn decode(r: &sqlx::any::AnyRow) -> Result<EvidenceRecord> {
    let media: String = col(r, "media_type")?;
    let size: i64 = col(r, "size_bytes")?;
    Ok(EvidenceRecord {
        evidence_id: parse_uuid(&col::<String>(r, "evidence_id")?)?,
        claim_id: parse_uuid(&col::<String>(r, "claim_id")?)?,
        county_code: col(r, "county_code")?,
        sha256: col(r, "sha256")?,
        media_type: MediaType::parse(&media)
            .ok_or_else(|| StoreError::Corrupt(format!("media type {media:?}")))?,
        size_bytes: u64::try_from(size).map_err(|_| StoreError::Corrupt(format!("size {size}")))?,
        file_name: col(r, "file_name")?,
        description: col(r, "description")?,
        uploaded_by: col(r, "uploaded_by")?,
        uploaded_at: col(r, "uploaded_at")?,
    })
}

#[tracing::instrument(name = "store.evidence.insert", level = "info", skip_all, fields(fangpin.claim_id = %e.claim_id))]
pub async fn insert(conn: &mut Conn, e: &EvidenceRecord, request_id: &str) -> Result<()> {
    let size = i64::try_from(e.size_bytes)
        .map_err(|_| StoreError::Corrupt(format!("size {}", e.size_bytes)))?;
    sqlx::query(
        "INSERT INTO evidence (evidence_id, claim_id, county_code, sha256, media_type, size_bytes, file_name, \
         description, uploaded_by, uploaded_at, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(e.evidence_id.to_string())
    .bind(e.claim_id.to_string())
    .bind(&e.county_code)
    .bind(&e.sha256)
    .bind(e.media_type.as_str())
    .bind(size)
    .bind(&e.file_name)
    .bind(&e.description)
    .bind(&e.uploaded_by)
    .bind(&e.uploaded_at)
    .bind(request_id)
    .execute(conn)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "store.evidence.get", level = "info", skip_all)]
pub async fn get(conn: &mut Conn, evidence_id: Uuid) -> Result<Option<EvidenceRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM evidence WHERE evidence_id = $1"
    )))
    .bind(evidence_id.to_string())
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(decode)
    .transpose()
}

/// The claim's file with this hash, if it has one.
#[tracing::instrument(name = "store.evidence.by_hash", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn by_hash(
    conn: &mut Conn,
    claim_id: Uuid,
    sha256: &str,
) -> Result<Option<EvidenceRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM evidence WHERE claim_id = $1 AND sha256 = $2"
    )))
    .bind(claim_id.to_string())
    .bind(sha256)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(decode)
    .transpose()
}

/// A claim's files in upload order, at most `limit`.
#[tracing::instrument(name = "store.evidence.of_claim", level = "info", skip_all, fields(fangpin.claim_id = %claim_id))]
pub async fn of_claim(conn: &mut Conn, claim_id: Uuid, limit: u64) -> Result<Vec<EvidenceRecord>> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM evidence WHERE claim_id = $1 ORDER BY uploaded_at, evidence_id LIMIT $2"
    )))
    .bind(claim_id.to_string())
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?
    .iter()
    .map(decode)
    .collect()
}
