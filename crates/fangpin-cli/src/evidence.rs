//! `fangpin evidence`: receipts, hospital bills and photos of the home,
//! uploaded to a claim, listed, and fetched back, with a progress bar.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::evidence_service_client::EvidenceServiceClient;
use sha2::{Digest, Sha256};

use crate::ctx::Ctx;
use crate::feed::bar;
use crate::output::{record, table};

/// The server takes files of at most this size.
const MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Bytes per message.
const CHUNK: usize = 256 * 1024;

#[derive(Subcommand)]
pub enum Cmd {
    /// Upload a JPEG, PNG or PDF to a claim
    Upload {
        claim_id: String,
        file: PathBuf,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long)]
        by: String,
        /// No progress bar
        #[arg(long)]
        quiet: bool,
    },
    /// A claim's evidence files
    List { claim_id: String },
    /// Fetch one file (checked against its hash) into a file
    Get {
        evidence_id: String,
        #[arg(long, short)]
        output: PathBuf,
        #[arg(long)]
        quiet: bool,
    },
}

fn file_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .with_context(|| format!("{} has no file name in UTF-8", path.display()))
}

fn print(e: &pb::Evidence) {
    println!(
        "{}",
        record(vec![
            ("evidence", e.evidence_id.clone()),
            ("claim", e.claim_id.clone()),
            ("file", e.file_name.clone()),
            ("type", e.content_type.clone()),
            ("size", e.size_bytes.to_string()),
            ("sha256", e.sha256.clone()),
            ("uploaded by", e.uploaded_by.clone()),
            ("at", e.uploaded_at.clone()),
            (
                "duplicate",
                if e.duplicate {
                    "yes: the claim already had this file".into()
                } else {
                    "no".into()
                },
            ),
        ])
    );
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = EvidenceServiceClient::new(ctx.channel.clone());
    match cmd {
        Cmd::Upload {
            claim_id,
            file,
            description,
            by,
            quiet,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            if bytes.len() as u64 > MAX_BYTES {
                bail!(
                    "{} is {} bytes; the server takes at most {MAX_BYTES}",
                    file.display(),
                    bytes.len()
                );
            }
            let header = pb::EvidenceHeader {
                request_id: ctx.request_id(),
                claim_id,
                file_name: file_name(&file)?,
                sha256: hex::encode(Sha256::digest(&bytes)),
                size_bytes: bytes.len() as u64,
                description,
                uploaded_by: by,
            };
            let progress = bar(quiet, bytes.len() as u64, "uploading");
            let sending = progress.clone();
            let bytes = bytes::Bytes::from(bytes);
            let chunks: Vec<bytes::Bytes> = (0..bytes.len())
                .step_by(CHUNK)
                .map(|i| bytes.slice(i..(i + CHUNK).min(bytes.len())))
                .collect();
            let messages = std::iter::once(pb::UploadEvidenceRequest {
                part: Some(pb::upload_evidence_request::Part::Header(header)),
            })
            .chain(chunks.into_iter().map(move |chunk| {
                sending.inc(chunk.len() as u64);
                pb::UploadEvidenceRequest {
                    part: Some(pb::upload_evidence_request::Part::Data(chunk)),
                }
            }));
            let evidence = client
                .upload_evidence(tokio_stream::iter(messages))
                .await?
                .into_inner();
            progress.finish_and_clear();
            print(&evidence);
        }
        Cmd::List { claim_id } => {
            let files = client
                .list_evidence(pb::ListEvidenceRequest { claim_id })
                .await?
                .into_inner()
                .evidence;
            let mut t = table(["evidence", "file", "type", "size", "sha256", "by", "at"]);
            for e in &files {
                t.add_row([
                    e.evidence_id.clone(),
                    e.file_name.clone(),
                    e.media_type.clone(),
                    e.size_bytes.to_string(),
                    e.sha256.clone(),
                    e.uploaded_by.clone(),
                    e.uploaded_at.clone(),
                ]);
            }
            println!("{t}");
        }
        Cmd::Get {
            evidence_id,
            output,
            quiet,
        } => {
            let mut stream = client
                .download_evidence(pb::DownloadEvidenceRequest { evidence_id })
                .await?
                .into_inner();
            let mut meta = None;
            let mut bytes = Vec::new();
            let mut progress = None;
            while let Some(part) = stream.message().await? {
                match part.part {
                    Some(pb::download_evidence_response::Part::Evidence(e)) => {
                        progress = Some(bar(quiet, e.size_bytes, "fetching"));
                        meta = Some(e);
                    }
                    Some(pb::download_evidence_response::Part::Data(d)) => {
                        if let Some(p) = &progress {
                            p.inc(d.len() as u64);
                        }
                        bytes.extend_from_slice(&d);
                    }
                    None => bail!("the server sent an empty part"),
                }
            }
            if let Some(p) = progress {
                p.finish_and_clear();
            }
            let meta = meta.context("the server sent no metadata")?;
            let digest = hex::encode(Sha256::digest(&bytes));
            if digest != meta.sha256 {
                bail!(
                    "the file received does not match its SHA-256 ({digest} against {})",
                    meta.sha256
                );
            }
            std::fs::write(&output, &bytes)
                .with_context(|| format!("writing {}", output.display()))?;
            print(&meta);
            println!("written to {}", output.display());
        }
    }
    Ok(())
}
