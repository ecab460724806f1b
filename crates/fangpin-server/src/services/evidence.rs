//! EvidenceService: receipts, hospital bills and photos of the home,
//! streamed in, checked, stored once by SHA-256 in the object store
//! (`App::evidence`), and attached to a claim by a row in the database.
//!
//! The bytes are read whole (at most `MAX_EVIDENCE_BYTES`) and checked
//! before anything is written: size, hash and type. Only then, inside the
//! county's write transaction, the object is put under its hash and the
//! row inserted. A stream that breaks midway therefore writes nothing; a
//! transaction that fails after the put leaves an unreferenced object,
//! which is content-addressed and harmless. Downloads check the hash again.

use std::pin::Pin;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use fangpin_domain::evidence::{
    self as rules, MAX_EVIDENCE_BYTES, MAX_EVIDENCE_PER_CLAIM, is_sha256_hex,
};
use fangpin_proto::tonic::{self, Request, Response, Status, Streaming};
use fangpin_proto::v1::{self as pb, evidence_service_server::EvidenceService};
use fangpin_store::evidence::{self as store, EvidenceRecord};
use fangpin_store::timestamp;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::services::load_claim;
use crate::write_path::app::App;
use crate::write_path::convert::{Check, MAX_LABEL_CHARS, MAX_TEXT_CHARS};
use crate::write_path::error::AppError;

/// Uploads held in memory at once: each may be 32 MiB.
pub const CONCURRENT_UPLOADS: usize = 4;
/// The size of each downloaded chunk.
pub const DOWNLOAD_CHUNK: usize = 1024 * 1024;

pub struct EvidenceApi {
    app: App,
    uploads: Arc<Semaphore>,
}

impl EvidenceApi {
    pub fn new(app: App) -> EvidenceApi {
        EvidenceApi {
            app,
            uploads: Arc::new(Semaphore::new(CONCURRENT_UPLOADS)),
        }
    }

    fn objects(&self) -> Result<Arc<dyn ObjectStore>, AppError> {
        self.app.evidence.clone().ok_or_else(|| {
            AppError::precondition(
                "EVIDENCE_STORE",
                "server.evidence",
                "this server keeps no evidence store ([evidence] dir)",
            )
        })
    }
}

/// Where a file's bytes live: under their hash, fanned out by its first
/// two digits.
fn object_path(sha256: &str) -> object_store::path::Path {
    object_store::path::Path::from(format!("sha256/{}/{sha256}", &sha256[..2]))
}

fn storage_error(e: object_store::Error) -> AppError {
    tracing::error!(error = %e, "the evidence store failed");
    AppError::Internal(format!("evidence store: {e}"))
}

fn evidence_to_pb(e: &EvidenceRecord, duplicate: bool) -> pb::Evidence {
    pb::Evidence {
        evidence_id: e.evidence_id.to_string(),
        claim_id: e.claim_id.to_string(),
        sha256: e.sha256.clone(),
        media_type: e.media_type.as_str().to_string(),
        content_type: e.media_type.content_type().to_string(),
        size_bytes: e.size_bytes,
        file_name: e.file_name.clone(),
        description: e.description.clone(),
        uploaded_by: e.uploaded_by.clone(),
        uploaded_at: e.uploaded_at.clone(),
        duplicate,
    }
}

/// Checks that every reference of a set of findings names evidence of
/// `claim_id`: findings cite only what the claim has.
pub async fn check_citations(
    conn: &mut fangpin_store::Conn,
    claim_id: Uuid,
    refs: &[String],
) -> Result<(), AppError> {
    for (i, r) in refs.iter().enumerate() {
        let field = format!("evidence_refs[{i}]");
        let Ok(id) = r.parse::<Uuid>() else {
            return Err(AppError::invalid(
                &field,
                "must be the evidence_id of a file uploaded to this claim",
            ));
        };
        match store::get(conn, id).await? {
            Some(e) if e.claim_id == claim_id => {}
            _ => {
                return Err(AppError::invalid(
                    &field,
                    "is not evidence of this claim: upload it first (UploadEvidence)",
                ));
            }
        }
    }
    Ok(())
}

type DownloadStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::DownloadEvidenceResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EvidenceService for EvidenceApi {
    async fn upload_evidence(
        &self,
        request: Request<Streaming<pb::UploadEvidenceRequest>>,
    ) -> Result<Response<pb::Evidence>, Status> {
        use pb::upload_evidence_request::Part;
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::UploadEvidenceRequest {
                part: Some(Part::Header(h)),
            }) => h,
            _ => {
                return Err(
                    AppError::invalid("header", "the first message must be the header").into(),
                );
            }
        };
        let mut c = Check::new();
        let request_id = c.request_id(&header.request_id);
        let claim_id = c.uuid("claim_id", &header.claim_id);
        let file_name = c.text("file_name", &header.file_name, MAX_LABEL_CHARS);
        let description = c.optional_text("description", &header.description, MAX_TEXT_CHARS);
        let uploaded_by = c.text("uploaded_by", &header.uploaded_by, MAX_LABEL_CHARS);
        if !is_sha256_hex(&header.sha256) {
            c.bad(
                "sha256",
                "must be the file's SHA-256 in 64 lowercase hex digits",
            );
        }
        if header.size_bytes == 0 || header.size_bytes > MAX_EVIDENCE_BYTES {
            c.bad(
                "size_bytes",
                format!("must be 1 to {MAX_EVIDENCE_BYTES} bytes"),
            );
        }
        c.finish()?;
        let request_id = request_id.expect("checked").to_string();
        let claim_id = claim_id.expect("checked");
        let (file_name, description) = (file_name.expect("checked"), description.expect("checked"));
        let uploaded_by = uploaded_by.expect("checked");
        crate::write_path::scope::check_acting_person("uploaded_by", &uploaded_by)?;
        let objects = self.objects()?;
        let place = self.app.authorize_claim(claim_id).await?;
        // A retry after a lost answer is answered from the record; the
        // header (with the hash) is what identifies the request.
        if let Some(first) = self
            .app
            .recorded::<_, pb::Evidence>("UploadEvidence", &header, &request_id)
            .await?
        {
            return Ok(Response::new(first));
        }

        let _permit = self
            .uploads
            .acquire()
            .await
            .map_err(|_| Status::unavailable("the server is shutting down"))?;
        let declared = header.size_bytes;
        let mut bytes = BytesMut::with_capacity(declared as usize);
        let mut hasher = Sha256::new();
        // A broken stream ends here with its error: nothing was written.
        while let Some(message) = stream.message().await? {
            match message.part {
                Some(Part::Data(chunk)) => {
                    if bytes.len() as u64 + chunk.len() as u64 > declared {
                        return Err(AppError::invalid(
                            "size_bytes",
                            format!("the file is longer than the {declared} bytes declared"),
                        )
                        .into());
                    }
                    hasher.update(&chunk);
                    bytes.extend_from_slice(&chunk);
                }
                _ => {
                    return Err(AppError::invalid(
                        "header",
                        "only the first message is a header; the others carry data",
                    )
                    .into());
                }
            }
        }
        if bytes.len() as u64 != declared {
            return Err(AppError::invalid(
                "size_bytes",
                format!("{} bytes arrived of the {declared} declared", bytes.len()),
            )
            .into());
        }
        let digest = hex::encode(hasher.finalize());
        if digest != header.sha256 {
            return Err(AppError::invalid(
                "sha256",
                format!("does not match the bytes received (their SHA-256 is {digest})"),
            )
            .into());
        }
        let media = rules::media_type(&file_name, &bytes)
            .map_err(|e| AppError::invalid("file_name", e.to_string()))?;
        let bytes: Bytes = bytes.freeze();
        let county = place.county_code.clone();
        let response = self
            .app
            .write_object(
                "UploadEvidence",
                &header,
                &request_id,
                &county,
                move |conn, ctx| {
                    Box::pin(async move {
                        let claim = load_claim(conn, claim_id).await?;
                        let mut after = serde_json::Map::new();
                        after.insert("sha256".into(), digest.clone().into());
                        after.insert("media_type".into(), media.as_str().into());
                        after.insert("size_bytes".into(), bytes.len().into());
                        if let Some(existing) = store::by_hash(conn, claim_id, &digest).await? {
                            let object =
                                format!("{}/evidence/{}", claim.county_code, existing.evidence_id);
                            return Ok((evidence_to_pb(&existing, true), object, after));
                        }
                        let count = store::of_claim(conn, claim_id, MAX_EVIDENCE_PER_CLAIM)
                            .await?
                            .len();
                        if count as u64 >= MAX_EVIDENCE_PER_CLAIM {
                            return Err(AppError::precondition(
                                "TOO_MANY",
                                format!("claim/{claim_id}"),
                                format!("a claim keeps at most {MAX_EVIDENCE_PER_CLAIM} files"),
                            ));
                        }
                        // Content-addressed: a file some claim already has
                        // is there under the same name with the same bytes.
                        let path = object_path(&digest);
                        match objects.head(&path).await {
                            Ok(_) => {}
                            Err(object_store::Error::NotFound { .. }) => {
                                objects
                                    .put(&path, bytes.clone().into())
                                    .await
                                    .map_err(storage_error)?;
                            }
                            Err(e) => return Err(storage_error(e)),
                        }
                        let record = EvidenceRecord {
                            evidence_id: Uuid::now_v7(),
                            claim_id,
                            county_code: claim.county_code.clone(),
                            sha256: digest,
                            media_type: media,
                            size_bytes: bytes.len() as u64,
                            file_name,
                            description,
                            uploaded_by,
                            uploaded_at: timestamp(ctx.now),
                        };
                        store::insert(conn, &record, &ctx.request_id).await?;
                        let object =
                            format!("{}/evidence/{}", claim.county_code, record.evidence_id);
                        Ok((evidence_to_pb(&record, false), object, after))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn list_evidence(
        &self,
        request: Request<pb::ListEvidenceRequest>,
    ) -> Result<Response<pb::ListEvidenceResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let claim_id = c.uuid("claim_id", &req.claim_id);
        c.finish()?;
        let claim_id = claim_id.expect("checked");
        self.app.authorize_claim(claim_id).await?;
        let mut conn = self.app.store.read().await.map_err(AppError::from)?;
        let files = store::of_claim(&mut conn, claim_id, MAX_EVIDENCE_PER_CLAIM)
            .await
            .map_err(AppError::from)?;
        Ok(Response::new(pb::ListEvidenceResponse {
            evidence: files.iter().map(|e| evidence_to_pb(e, false)).collect(),
        }))
    }

    type DownloadEvidenceStream = DownloadStream;

    async fn download_evidence(
        &self,
        request: Request<pb::DownloadEvidenceRequest>,
    ) -> Result<Response<DownloadStream>, Status> {
        use pb::download_evidence_response::Part;
        let req = request.into_inner();
        let mut c = Check::new();
        let evidence_id = c.uuid("evidence_id", &req.evidence_id);
        c.finish()?;
        let evidence_id = evidence_id.expect("checked");
        let record = {
            let mut conn = self.app.store.read().await.map_err(AppError::from)?;
            store::get(&mut conn, evidence_id)
                .await
                .map_err(AppError::from)?
        };
        // Out of scope reads as not there, like a missing file.
        let Some(record) = record else {
            return Err(AppError::not_found("evidence", evidence_id).into());
        };
        if self.app.authorize_claim(record.claim_id).await.is_err() {
            return Err(AppError::not_found("evidence", evidence_id).into());
        }
        let objects = self.objects()?;
        let bytes = objects
            .get(&object_path(&record.sha256))
            .await
            .map_err(storage_error)?
            .bytes()
            .await
            .map_err(storage_error)?;
        let digest = hex::encode(Sha256::digest(&bytes));
        if digest != record.sha256 {
            tracing::error!(%evidence_id, "stored evidence does not match its hash");
            return Err(AppError::Internal(format!(
                "evidence {evidence_id} is damaged in the store"
            ))
            .into());
        }
        let mut parts = vec![Ok(pb::DownloadEvidenceResponse {
            part: Some(Part::Evidence(evidence_to_pb(&record, false))),
        })];
        let mut offset = 0;
        while offset < bytes.len() {
            let end = (offset + DOWNLOAD_CHUNK).min(bytes.len());
            parts.push(Ok(pb::DownloadEvidenceResponse {
                part: Some(Part::Data(bytes.slice(offset..end))),
            }));
            offset = end;
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(parts))))
    }
}
