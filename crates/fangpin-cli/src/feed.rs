//! `fangpin feed`: department data files (docs/feeds.md) streamed to the
//! server for screening.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Subcommand, ValueEnum};
use fangpin_proto::tonic;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::screening_service_client::ScreeningServiceClient;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::ctx::Ctx;
use crate::output::{record, table};

/// Bytes per message: the server takes at most 1 MiB.
const CHUNK_BYTES: usize = 1 << 20;
/// An import of a province's monthly file takes minutes, not seconds.
pub(crate) const IMPORT_TIMEOUT: Duration = Duration::from_secs(3600);
/// Row errors printed; the rest are a `fangpin feed show` away.
const ERRORS_SHOWN: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum FeedKindArg {
    /// 医保结算: medical insurance settlements
    Medical,
    /// 教育: tuition, accommodation and textbooks
    Education,
    /// 交警/消防: accident and fire losses
    Accident,
    /// 产业: industry losses
    Industry,
    /// 民政: dibao/tekun/disability status and verified income
    CivilAffairs,
    /// 人社: unemployment and the loss of a wage earner, with the income lost
    Employment,
}

impl From<FeedKindArg> for pb::FeedKind {
    fn from(arg: FeedKindArg) -> Self {
        match arg {
            FeedKindArg::Medical => pb::FeedKind::Medical,
            FeedKindArg::Education => pb::FeedKind::Education,
            FeedKindArg::Accident => pb::FeedKind::Accident,
            FeedKindArg::Industry => pb::FeedKind::Industry,
            FeedKindArg::CivilAffairs => pb::FeedKind::CivilAffairs,
            FeedKindArg::Employment => pb::FeedKind::Employment,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    /// UTF-8 if the whole file is valid UTF-8, otherwise GBK
    Auto,
    Utf8,
    Gbk,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Stream a department's CSV file to the server, with a progress bar
    Import {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        #[arg(long, value_enum)]
        kind: FeedKindArg,
        #[arg(long, value_enum, default_value = "auto")]
        encoding: EncodingArg,
        /// No progress bar (for scripts and logs)
        #[arg(long)]
        quiet: bool,
        file: PathBuf,
    },
    /// An import's summary and every row error kept (up to 1,000)
    Show { import_id: String },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Import {
            county,
            year,
            kind,
            encoding,
            quiet,
            file,
        } => import(ctx, county, year, kind, encoding, quiet, &file).await,
        Cmd::Show { import_id } => {
            let mut client = ScreeningServiceClient::new(ctx.channel.clone());
            let summary = client
                .get_feed_import(pb::GetFeedImportRequest { import_id })
                .await?
                .into_inner();
            print_summary(&summary, usize::MAX);
            Ok(())
        }
    }
}

/// What one pass over the file learns before anything is sent.
pub(crate) struct Scan {
    pub(crate) size: u64,
    pub(crate) sha256: String,
    pub(crate) utf8: bool,
}

/// Hashes the file and checks whether it is UTF-8, in one pass of bounded
/// memory. A multi-byte character split across two reads is carried over.
pub(crate) fn scan(path: &Path, bar: &ProgressBar) -> Result<Scan> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut carry: Vec<u8> = Vec::new();
    let mut utf8 = true;
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        bar.set_position(size);
        if utf8 {
            carry.extend_from_slice(&buf[..n]);
            match std::str::from_utf8(&carry) {
                Ok(_) => carry.clear(),
                // An incomplete character at the end: keep it for the next read.
                Err(e) if e.error_len().is_none() => {
                    carry.drain(..e.valid_up_to());
                }
                Err(_) => {
                    utf8 = false;
                    carry.clear();
                }
            }
        }
    }
    Ok(Scan {
        size,
        sha256: hex::encode(hasher.finalize()),
        utf8: utf8 && carry.is_empty(),
    })
}

/// Hashes the file, and checks whether it is UTF-8, behind a progress bar.
pub(crate) async fn scan_with_bar(path: &Path, quiet: bool) -> Result<Scan> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    let checking = bar(quiet, len, "checking");
    let scanned = {
        let path = path.to_path_buf();
        let checking = checking.clone();
        tokio::task::spawn_blocking(move || scan(&path, &checking)).await??
    };
    checking.finish_and_clear();
    Ok(scanned)
}

/// Whether a text file goes as UTF-8 (otherwise GBK): as asked, or for
/// `auto` as the scan found it.
pub(crate) fn sends_utf8(encoding: EncodingArg, scanned: &Scan, path: &Path) -> Result<bool> {
    match encoding {
        EncodingArg::Utf8 if !scanned.utf8 => {
            bail!("{} is not valid UTF-8: try --encoding gbk", path.display())
        }
        EncodingArg::Utf8 => Ok(true),
        EncodingArg::Gbk => Ok(false),
        EncodingArg::Auto => Ok(scanned.utf8),
    }
}

/// The file's name as the server records it.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(crate) fn bar(quiet: bool, len: u64, message: &'static str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>9} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("constant template")
        .progress_chars("=> "),
    );
    bar.set_message(message);
    bar
}

/// The messages of a file upload: `first` (the header), then the file in
/// 1 MiB chunks, each wrapped by `data`, read as they are sent. A small
/// queue between the file and the network keeps memory at a few chunks
/// whatever the file's size. The task stops reading when the server
/// answers early (a duplicate file, a bad header): its answer says why.
pub(crate) fn send_file<M: Send + 'static>(
    path: &Path,
    sending: &ProgressBar,
    first: M,
    data: fn(bytes::Bytes) -> M,
) -> (
    tokio_stream::wrappers::ReceiverStream<M>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<M>(4);
    let path = path.to_path_buf();
    let sending = sending.clone();
    let reader = tokio::spawn(async move {
        if tx.send(first).await.is_err() {
            return Ok(());
        }
        let mut file = tokio::fs::File::open(&path).await?;
        loop {
            let mut chunk = bytes::BytesMut::with_capacity(CHUNK_BYTES);
            while chunk.len() < CHUNK_BYTES {
                if file.read_buf(&mut chunk).await? == 0 {
                    break;
                }
            }
            if chunk.is_empty() {
                return Ok(());
            }
            sending.inc(chunk.len() as u64);
            if tx.send(data(chunk.freeze())).await.is_err() {
                return Ok(());
            }
        }
    });
    (tokio_stream::wrappers::ReceiverStream::new(rx), reader)
}

async fn import(
    ctx: &Ctx,
    county: String,
    year: i32,
    kind: FeedKindArg,
    encoding: EncodingArg,
    quiet: bool,
    path: &Path,
) -> Result<()> {
    let scanned = scan_with_bar(path, quiet).await?;
    let encoding = if sends_utf8(encoding, &scanned, path)? {
        pb::FeedEncoding::Utf8
    } else {
        pb::FeedEncoding::Gbk
    };
    let file_name = file_name(path);
    let header = pb::FeedHeader {
        request_id: ctx.request_id(),
        county_code: county,
        policy_year: year,
        kind: pb::FeedKind::from(kind).into(),
        encoding: encoding.into(),
        file_name,
        sha256: scanned.sha256.clone(),
        size_bytes: scanned.size,
    };

    let sending = bar(quiet, scanned.size, "sending");
    let (messages, reader) = send_file(
        path,
        &sending,
        pb::ImportFeedRequest {
            part: Some(pb::import_feed_request::Part::Header(header)),
        },
        |chunk| pb::ImportFeedRequest {
            part: Some(pb::import_feed_request::Part::Data(chunk)),
        },
    );
    let mut client = ScreeningServiceClient::new(ctx.long_channel(IMPORT_TIMEOUT)?);
    let mut request = tonic::Request::new(messages);
    request.set_timeout(IMPORT_TIMEOUT);
    let result = client.import_feed(request).await;
    sending.finish_and_clear();
    reader.abort();
    let summary = result?.into_inner();
    if !quiet && scanned.utf8 != (encoding == pb::FeedEncoding::Utf8) {
        eprintln!("note: the file was sent as {}", encoding.as_str_name());
    }
    print_summary(&summary, ERRORS_SHOWN);
    Ok(())
}

fn print_summary(s: &pb::FeedImport, errors_shown: usize) {
    let kind = pb::FeedKind::try_from(s.kind)
        .map(|k| {
            k.as_str_name()
                .trim_start_matches("FEED_KIND_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| format!("unknown({})", s.kind));
    let mut rows = vec![
        ("import", s.import_id.clone()),
        ("county", s.county_code.clone()),
        ("policy year", s.policy_year.to_string()),
        ("feed", kind),
        ("file", s.file_name.clone()),
        ("sha256", s.sha256.clone()),
        ("bytes", s.size_bytes.to_string()),
        ("rows", s.rows_total.to_string()),
        ("accepted", s.rows_accepted.to_string()),
        ("  of which not counted", s.rows_not_counted.to_string()),
        ("rejected", s.rows_rejected.to_string()),
        ("households touched", s.households_touched.to_string()),
        ("imported at", s.imported_at.clone()),
    ];
    for total in &s.totals {
        rows.push((
            "total",
            format!(
                "{} {}",
                crate::names::relief_kind(total.relief_kind),
                total.amount_yuan
            ),
        ));
    }
    if s.duplicate {
        rows.push((
            "duplicate",
            "yes: this file was imported before and was not counted again".into(),
        ));
    }
    println!("{}", record(rows));
    if !s.rejected_by_reason.is_empty() {
        let mut t = table(["rejected because", "rows"]);
        for r in &s.rejected_by_reason {
            t.add_row(vec![r.code.clone(), r.rows.to_string()]);
        }
        println!("{t}");
    }
    if !s.errors.is_empty() {
        let mut t = table(["line", "field", "code", "reason"]);
        for e in s.errors.iter().take(errors_shown) {
            t.add_row(vec![
                e.line.to_string(),
                e.field.clone(),
                e.code.clone(),
                e.reason.clone(),
            ]);
        }
        println!("{t}");
        let shown = s.errors.len().min(errors_shown) as u64;
        if shown < s.rows_rejected {
            println!(
                "{} more rejected rows; `fangpin feed show {}` lists up to 1,000",
                s.rows_rejected - shown,
                s.import_id
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn scan_tells_utf8_from_gbk_across_read_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let utf8 = dir.path().join("u.csv");
        // A multi-byte character straddling the 1 MiB read boundary.
        let mut text = "a".repeat(CHUNK_BYTES - 1);
        text.push_str("身份证号\n");
        std::fs::File::create(&utf8)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let s = scan(&utf8, &ProgressBar::hidden()).unwrap();
        assert!(s.utf8);
        assert_eq!(s.size, text.len() as u64);
        assert_eq!(s.sha256, hex::encode(Sha256::digest(text.as_bytes())));
        let gbk = dir.path().join("g.csv");
        let (bytes, _, _) = encoding_rs::GBK.encode("身份证号,结算日期\n");
        std::fs::write(&gbk, &bytes).unwrap();
        assert!(!scan(&gbk, &ProgressBar::hidden()).unwrap().utf8);
    }
}
