//! ScreeningService: department feeds in, candidate households out, and
//! department-referral claims made from them.
//!
//! The two expensive RPCs do their heavy reading before they take the
//! county's write lock, so a ten-million-row import or a screening of a
//! million persons never holds up claims in the county: the import parses
//! and aggregates the stream on a blocking thread, the run streams stored
//! costs on a read connection, and only the final, compact result is
//! written under the lock.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{Datelike, NaiveDate};
use fangpin_domain::Fen;
use fangpin_domain::claim::{Channel, ClaimState};
use fangpin_domain::feeds::{FeedAggregator, FeedKind, StatusRecord, YearMonth};
use fangpin_domain::policy::{HouseholdType, MAX_SCREENING_WINDOW_MONTHS, ReliefKind};
use fangpin_domain::screening::{self, MonthlyCosts, VerifiedIncome};
use fangpin_proto::tonic::{self, Request, Response, Status, Streaming};
use fangpin_proto::v1::{
    self as pb, import_feed_request::Part, screening_service_server::ScreeningService,
};
use fangpin_store::claims::ClaimRecord;
use fangpin_store::screening::{
    self as store, CandidateRecord, CostRow, ImportRecord, IncomeRow, RowErrorRecord, RunRecord,
};
use fangpin_store::{counties, timestamp};
use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::services::feed_import::{
    self, FeedError, MAX_CHUNK_BYTES, MAX_FEED_BYTES, QUEUE_CHUNKS,
};
use crate::write_path::app::App;
use crate::write_path::convert::{self, Check, MAX_LABEL_CHARS, next_page_token};
use crate::write_path::error::AppError;

/// Row errors returned with an import's summary; GetFeedImport returns all
/// that are kept.
pub const ERRORS_IN_SUMMARY: usize = 100;
pub const MAX_CANDIDATES_PAGE: u32 = 1_000;
/// Claims made by one CreateScreeningClaims call; the response says how
/// many candidates remain, and the next call (with a new request id) goes on.
pub const MAX_CLAIMS_PER_CALL: usize = 5_000;

/// Longest wait for the next message of an import before it is abandoned:
/// a client that stalls must not pin a parser thread and its memory.
pub const IMPORT_IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);
/// County-years whose person index is kept between imports. A county imports
/// five feeds a month, each needing the same index (about 40 MB for a
/// million persons), so keeping the last few saves a reload per file.
pub const CACHED_INDEXES: usize = 4;

pub struct ScreeningApi {
    app: App,
    indexes: std::sync::Mutex<Vec<CachedIndex>>,
}

/// A person index with the enrolment version it was read at.
struct CachedIndex {
    county: String,
    year: i32,
    version: u64,
    index: Arc<store::PersonIndex>,
}

impl ScreeningApi {
    pub fn new(app: App) -> ScreeningApi {
        ScreeningApi {
            app,
            indexes: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The county-year's person index, from the cache when no one has been
    /// enrolled since it was read (the version check is one COUNT).
    async fn person_index(
        &self,
        conn: &mut fangpin_store::Conn,
        county: &str,
        year: i32,
    ) -> Result<Arc<store::PersonIndex>, AppError> {
        let version = store::enrolment_version(conn, county, year).await?;
        {
            let cache = self
                .indexes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(hit) = cache
                .iter()
                .find(|c| c.county == county && c.year == year && c.version == version)
            {
                return Ok(hit.index.clone());
            }
        }
        // Every enrolled ID number is opened once here, not per feed row:
        // the index maps plain digits, and is cached until the next
        // enrolment. The opening runs on a blocking thread, fed households
        // in batches while the next ones stream from the database, so the
        // cryptography neither holds an async worker nor waits for the rows.
        let key = self.app.personal_data.clone();
        let (tx, mut rx) = mpsc::channel::<Vec<store::SealedHousehold>>(INDEX_QUEUE_BATCHES);
        let builder = tokio::task::spawn_blocking(move || {
            let mut builder = store::PersonIndexBuilder::default();
            let mut open = |household: &str, sealed: &[u8]| {
                crate::write_path::personal_data::open_person_key(&key, year, household, sealed)
            };
            while let Some(batch) = rx.blocking_recv() {
                for (household, ids) in &batch {
                    builder.add(household, ids, &mut open)?;
                }
            }
            Ok::<_, fangpin_store::StoreError>(builder.finish())
        });
        // The sender moves into the reading, so the builder's queue ends
        // with it.
        let streamed = async move {
            let mut rows = std::pin::pin!(store::sealed_persons(conn, county, year));
            let mut batch = Vec::with_capacity(INDEX_BATCH_HOUSEHOLDS);
            while let Some(row) = rows.try_next().await? {
                batch.push(row);
                if batch.len() == INDEX_BATCH_HOUSEHOLDS {
                    let full =
                        std::mem::replace(&mut batch, Vec::with_capacity(INDEX_BATCH_HOUSEHOLDS));
                    // The builder stopped (a row that does not open): its
                    // error is the answer.
                    if tx.send(full).await.is_err() {
                        return Ok(());
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch).await;
            }
            Ok::<(), fangpin_store::StoreError>(())
        };
        let streamed = streamed.await;
        let built = builder
            .await
            .map_err(|e| AppError::Internal(format!("the person index builder stopped: {e}")))?;
        streamed?;
        let index = Arc::new(built?);
        let mut cache = self
            .indexes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.retain(|c| !(c.county == county && c.year == year));
        if cache.len() >= CACHED_INDEXES {
            cache.remove(0);
        }
        cache.push(CachedIndex {
            county: county.to_string(),
            year,
            version,
            index: index.clone(),
        });
        Ok(index)
    }
}

/// Households per batch handed to the person index's builder, and batches
/// queued for it: memory holds a few thousand households' sealed numbers.
const INDEX_BATCH_HOUSEHOLDS: usize = 2_048;
const INDEX_QUEUE_BATCHES: usize = 4;

/// An import's aggregates, owned, ready to be written.
struct Aggregated {
    rows_total: u64,
    rows_accepted: u64,
    rows_rejected: u64,
    rows_not_counted: u64,
    households_touched: u64,
    rejected: Vec<(String, u64)>,
    errors: Vec<RowErrorRecord>,
    totals: Vec<(ReliefKind, Fen)>,
    costs: Vec<CostRow>,
    incomes: Vec<IncomeRow>,
}

fn aggregated(agg: FeedAggregator<'_>, households: &[Uuid]) -> Aggregated {
    let mut costs: Vec<CostRow> = agg
        .costs
        .iter()
        .map(|(&(h, kind, year), months)| CostRow {
            household_id: households[h as usize],
            relief_kind: kind,
            year,
            months: *months,
        })
        .collect();
    // Inserting in key order keeps the B-tree appends cheap.
    costs.sort_by(|a, b| {
        (a.household_id, a.relief_kind.as_str(), a.year).cmp(&(
            b.household_id,
            b.relief_kind.as_str(),
            b.year,
        ))
    });
    let incomes = agg
        .statuses
        .iter()
        .map(|(&(h, _), s): (&(u32, i32), &StatusRecord)| IncomeRow {
            household_id: households[h as usize],
            per_capita: s.income_per_capita,
            status: s.status,
            verified_on: s.verified_on,
        })
        .collect();
    Aggregated {
        rows_total: agg.rows_total,
        rows_accepted: agg.rows_accepted,
        rows_rejected: agg.rows_rejected(),
        rows_not_counted: agg.rows_not_counted,
        households_touched: agg.households_touched(),
        rejected: agg
            .rejected
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect(),
        errors: agg
            .errors
            .iter()
            .map(|(line, e)| RowErrorRecord {
                line: *line,
                field: e.field.to_string(),
                code: e.problem.code().to_string(),
                reason: e.problem.to_string(),
            })
            .collect(),
        totals: agg.totals(),
        costs,
        incomes,
    }
}

fn feed_kind(c: &mut Check, value: i32) -> Option<FeedKind> {
    let kind = match pb::FeedKind::try_from(value) {
        Ok(pb::FeedKind::Medical) => Some(FeedKind::Medical),
        Ok(pb::FeedKind::Education) => Some(FeedKind::Education),
        Ok(pb::FeedKind::Accident) => Some(FeedKind::Accident),
        Ok(pb::FeedKind::Industry) => Some(FeedKind::Industry),
        Ok(pb::FeedKind::CivilAffairs) => Some(FeedKind::CivilAffairs),
        Ok(pb::FeedKind::Employment) => Some(FeedKind::Employment),
        _ => None,
    };
    if kind.is_none() {
        c.bad("header.kind", "must be a known feed kind");
    }
    kind
}

fn feed_kind_to_pb(kind: FeedKind) -> pb::FeedKind {
    match kind {
        FeedKind::Medical => pb::FeedKind::Medical,
        FeedKind::Education => pb::FeedKind::Education,
        FeedKind::Accident => pb::FeedKind::Accident,
        FeedKind::Industry => pb::FeedKind::Industry,
        FeedKind::CivilAffairs => pb::FeedKind::CivilAffairs,
        FeedKind::Employment => pb::FeedKind::Employment,
    }
}

fn import_response(
    record: &ImportRecord,
    errors: &[RowErrorRecord],
    duplicate: bool,
) -> pb::FeedImport {
    pb::FeedImport {
        import_id: record.import_id.to_string(),
        county_code: record.county_code.clone(),
        policy_year: record.policy_year,
        kind: feed_kind_to_pb(record.kind).into(),
        file_name: record.file_name.clone(),
        sha256: record.sha256.clone(),
        size_bytes: record.size_bytes,
        rows_total: record.rows_total,
        rows_accepted: record.rows_accepted,
        rows_rejected: record.rows_rejected,
        rows_not_counted: record.rows_not_counted,
        households_touched: record.households_touched,
        rejected_by_reason: record
            .rejected_by_reason
            .iter()
            .map(|(code, rows)| pb::ReasonCount {
                code: code.clone(),
                rows: *rows,
            })
            .collect(),
        errors: errors
            .iter()
            .map(|e| pb::RowError {
                line: e.line,
                field: e.field.clone(),
                code: e.code.clone(),
                reason: e.reason.clone(),
            })
            .collect(),
        errors_truncated: (errors.len() as u64) < record.rows_rejected,
        totals: record
            .totals
            .iter()
            .map(|(kind, fen)| pb::KindTotal {
                relief_kind: convert::relief_kind_to_pb(*kind).into(),
                amount_yuan: fen.to_string(),
            })
            .collect(),
        duplicate,
        imported_at: record.imported_at.clone(),
    }
}

fn feed_error(e: FeedError) -> AppError {
    AppError::invalid("data", e.to_string())
}

/// The dates an import accepts for a policy year: from the earliest month
/// any screening window of the year could reach, to the service's today.
fn accepted_dates(
    starts_on: NaiveDate,
    ends_on: NaiveDate,
    today: NaiveDate,
) -> (NaiveDate, NaiveDate) {
    let first = YearMonth::from_index(
        YearMonth::of(starts_on).index() - i64::from(MAX_SCREENING_WINDOW_MONTHS) + 1,
    )
    .first_day();
    (first, ends_on.min(today))
}

#[tonic::async_trait]
impl ScreeningService for ScreeningApi {
    async fn import_feed(
        &self,
        request: Request<Streaming<pb::ImportFeedRequest>>,
    ) -> Result<Response<pb::FeedImport>, Status> {
        let mut stream = request.into_inner();
        let header = match stream.message().await? {
            Some(pb::ImportFeedRequest {
                part: Some(Part::Header(header)),
            }) => header,
            _ => {
                return Err(
                    AppError::invalid("header", "the first message must carry the header").into(),
                );
            }
        };
        let mut c = Check::new();
        let request_id = c.request_id(&header.request_id);
        let county = c.county("header.county_code", &header.county_code);
        let year = c.year("header.policy_year", header.policy_year);
        let kind = feed_kind(&mut c, header.kind);
        let encoding = match pb::FeedEncoding::try_from(header.encoding) {
            Ok(pb::FeedEncoding::Utf8) => Some(encoding_rs::UTF_8),
            Ok(pb::FeedEncoding::Gbk) => Some(encoding_rs::GBK),
            _ => {
                c.bad("header.encoding", "must be UTF8 or GBK");
                None
            }
        };
        let file_name = c.text("header.file_name", &header.file_name, MAX_LABEL_CHARS);
        if header.sha256.len() != 64
            || !header
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            c.bad("header.sha256", "must be 64 lower-case hex digits");
        }
        if header.size_bytes > MAX_FEED_BYTES {
            c.bad(
                "header.size_bytes",
                format!("a feed may have at most {MAX_FEED_BYTES} bytes"),
            );
        }
        c.finish()?;
        let request_id = request_id.expect("checked").to_string();
        let county = county.expect("checked");
        let year = year.expect("checked");
        let kind = kind.expect("checked");
        let encoding = encoding.expect("checked");
        let file_name = file_name.expect("checked");
        self.app.authorize_county(county.as_str()).await?;

        // A retry of a finished import: answer from the record, read nothing.
        if let Some(done) = self
            .app
            .recorded("ImportFeed", &header, &request_id)
            .await?
        {
            return Ok(Response::new(done));
        }
        // Phase times go to the log: an operator sizing a county's box needs
        // to know whether the index, the parse or the write dominates.
        let started = std::time::Instant::now();
        let (policy, index, earlier) = {
            let mut conn = self.app.store.read().await.map_err(AppError::from)?;
            let earlier =
                store::find_import_by_hash(&mut conn, county.as_str(), year, kind, &header.sha256)
                    .await
                    .map_err(AppError::from)?;
            let policy = counties::get_policy(&mut conn, county.as_str(), year, None)
                .await
                .map_err(AppError::from)?
                .ok_or_else(|| {
                    AppError::precondition(
                        "POLICY",
                        format!("policy/{}/{}", county.as_str(), year),
                        "the county has no policy for this policy year",
                    )
                })?;
            let index = match earlier {
                Some(_) => None,
                None => Some(self.person_index(&mut conn, county.as_str(), year).await?),
            };
            (policy, index, earlier)
        };
        let Some(index) = index else {
            // The same file again: counted once, whatever the request id.
            let earlier = earlier.expect("no index only for a known file");
            let header_for_write = header.clone();
            let response = self
                .app
                .write(
                    "ImportFeed",
                    &header_for_write,
                    &request_id,
                    county.as_str(),
                    move |conn, _ctx| {
                        Box::pin(async move {
                            let errors =
                                store::row_errors(conn, earlier.import_id, ERRORS_IN_SUMMARY)
                                    .await?;
                            Ok(import_response(&earlier, &errors, true))
                        })
                    },
                )
                .await?;
            return Ok(Response::new(response));
        };

        let index_ms = started.elapsed().as_millis() as u64;
        let dates = accepted_dates(
            policy.policy.starts_on,
            policy.policy.ends_on,
            self.app.today(),
        );
        let (tx, rx) = mpsc::channel::<Bytes>(QUEUE_CHUNKS);
        let worker = tokio::task::spawn_blocking(move || {
            let households = &index.households;
            feed_import::parse_feed(
                rx,
                kind,
                encoding,
                &index.persons,
                households.len(),
                dates,
                |agg| aggregated(agg, households),
            )
        });
        let mut received: u64 = 0;
        let mut hasher = Sha256::new();
        let mut stream_error = None;
        loop {
            let Ok(next) = tokio::time::timeout(IMPORT_IDLE_LIMIT, stream.message()).await else {
                stream_error = Some(AppError::invalid(
                    "data",
                    format!(
                        "no data for {} s; nothing was imported",
                        IMPORT_IDLE_LIMIT.as_secs()
                    ),
                ));
                break;
            };
            match next {
                Ok(Some(pb::ImportFeedRequest {
                    part: Some(Part::Data(data)),
                })) => {
                    if data.len() > MAX_CHUNK_BYTES {
                        stream_error = Some(AppError::invalid(
                            "data",
                            format!("a message may carry at most {MAX_CHUNK_BYTES} bytes"),
                        ));
                        break;
                    }
                    received += data.len() as u64;
                    if received > header.size_bytes {
                        stream_error = Some(AppError::invalid(
                            "header.size_bytes",
                            "more bytes arrived than the header announced",
                        ));
                        break;
                    }
                    hasher.update(&data);
                    // The parser stopped early (a bad header): its error says why.
                    if tx.send(data).await.is_err() {
                        break;
                    }
                }
                Ok(Some(_)) => {
                    stream_error = Some(AppError::invalid(
                        "header",
                        "only the first message may carry the header",
                    ));
                    break;
                }
                Ok(None) => break,
                Err(status) => {
                    drop(tx);
                    let _ = worker.await;
                    return Err(status);
                }
            }
        }
        drop(tx);
        let parsed = worker.await.map_err(|e| {
            tracing::error!(error = %e, "the feed parser failed");
            Status::internal("internal error")
        })?;
        if let Some(error) = stream_error {
            return Err(error.into());
        }
        let parsed = parsed.map_err(feed_error)?;
        if received != header.size_bytes {
            return Err(AppError::invalid(
                "header.size_bytes",
                format!(
                    "the header announced {} bytes but {received} arrived; nothing was imported",
                    header.size_bytes
                ),
            )
            .into());
        }
        if hex::encode(hasher.finalize()) != header.sha256 {
            return Err(AppError::invalid(
                "header.sha256",
                "the bytes received do not have this SHA-256; nothing was imported",
            )
            .into());
        }
        let data = parsed;
        let parse_ms = started.elapsed().as_millis() as u64 - index_ms;
        let writing = std::time::Instant::now();
        let sha256 = header.sha256.clone();
        let size_bytes = header.size_bytes;
        let lock = county.as_str().to_string();
        let response = self
            .app
            .write(
                "ImportFeed",
                &header,
                &request_id,
                &lock,
                move |conn, ctx| {
                    Box::pin(async move {
                        // Another import of the same file may have won the race.
                        if let Some(earlier) =
                            store::find_import_by_hash(conn, county.as_str(), year, kind, &sha256)
                                .await?
                        {
                            let errors =
                                store::row_errors(conn, earlier.import_id, ERRORS_IN_SUMMARY)
                                    .await?;
                            return Ok(import_response(&earlier, &errors, true));
                        }
                        let record = ImportRecord {
                            import_id: Uuid::now_v7(),
                            county_code: county.as_str().to_string(),
                            policy_year: year,
                            kind,
                            file_name,
                            sha256,
                            size_bytes,
                            rows_total: data.rows_total,
                            rows_accepted: data.rows_accepted,
                            rows_rejected: data.rows_rejected,
                            rows_not_counted: data.rows_not_counted,
                            households_touched: data.households_touched,
                            rejected_by_reason: data.rejected,
                            totals: data.totals,
                            imported_at: timestamp(ctx.now),
                        };
                        store::insert_import(conn, &record, &ctx.request_id).await?;
                        store::insert_row_errors(conn, record.import_id, &data.errors).await?;
                        store::insert_costs(
                            conn,
                            county.as_str(),
                            year,
                            record.import_id,
                            &data.costs,
                        )
                        .await?;
                        store::upsert_incomes(
                            conn,
                            county.as_str(),
                            year,
                            record.import_id,
                            &data.incomes,
                        )
                        .await?;
                        let shown = &data.errors[..data.errors.len().min(ERRORS_IN_SUMMARY)];
                        tracing::info!(
                            import_id = %record.import_id,
                            county = county.as_str(),
                            kind = kind.as_str(),
                            rows = record.rows_total,
                            rejected = record.rows_rejected,
                            index_ms,
                            parse_ms,
                            write_ms = writing.elapsed().as_millis() as u64,
                            "feed imported"
                        );
                        Ok(import_response(&record, shown, false))
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn get_feed_import(
        &self,
        request: Request<pb::GetFeedImportRequest>,
    ) -> Result<Response<pb::FeedImport>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let id = c.uuid("import_id", &req.import_id);
        c.finish()?;
        let id = id.expect("checked");
        let mut conn = self.app.store.read().await.map_err(AppError::from)?;
        let record = store::get_import(&mut conn, id)
            .await
            .map_err(AppError::from)?
            .ok_or_else(|| AppError::not_found("feed import", id))?;
        if !self.app.sees_county(&record.county_code).await? {
            return Err(AppError::not_found("feed import", id).into());
        }
        let errors = store::row_errors(&mut conn, id, store::MAX_STORED_ROW_ERRORS)
            .await
            .map_err(AppError::from)?;
        Ok(Response::new(import_response(&record, &errors, false)))
    }

    async fn run_screening(
        &self,
        request: Request<pb::RunScreeningRequest>,
    ) -> Result<Response<pb::ScreeningRun>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let county = c.county("county_code", &req.county_code);
        let as_of = c.date("as_of", &req.as_of);
        c.finish()?;
        let request_id = request_id.expect("checked").to_string();
        let county = county.expect("checked");
        self.app.authorize_county(county.as_str()).await?;
        let as_of = as_of.expect("checked");
        if as_of > self.app.today() {
            return Err(AppError::invalid("as_of", "must not lie in the future").into());
        }
        if let Some(done) = self.app.recorded("RunScreening", &req, &request_id).await? {
            return Ok(Response::new(done));
        }
        // Read everything first, without the county's lock.
        let mut conn = self.app.store.read().await.map_err(AppError::from)?;
        let year = as_of.year();
        let policy = counties::get_policy(&mut conn, county.as_str(), year, None)
            .await
            .map_err(AppError::from)?
            .filter(|p| p.policy.covers(as_of))
            .ok_or_else(|| {
                AppError::precondition(
                    "POLICY",
                    format!("policy/{}/{}", county.as_str(), year),
                    "no policy of the county covers as_of",
                )
            })?;
        let imports = store::import_ids(&mut conn, county.as_str(), year)
            .await
            .map_err(AppError::from)?;
        if imports.len() > store::MAX_IMPORTS_PER_YEAR {
            return Err(AppError::precondition(
                "IMPORTS",
                format!("imports/{}/{}", county.as_str(), year),
                format!(
                    "more than {} imports in one policy year",
                    store::MAX_IMPORTS_PER_YEAR
                ),
            )
            .into());
        }
        let households_screened = store::count_households(&mut conn, county.as_str(), year)
            .await
            .map_err(AppError::from)?;
        let longest = policy
            .policy
            .rules
            .iter()
            .map(|r| r.screening_window_months)
            .max()
            .unwrap_or(1);
        let first_year = screening::Window::ending(as_of, longest).first.year;

        // Civil affairs' verifications of every household, bounded by the
        // pool: income drop compares them, and they give the status.
        let mut verified = store::verifications(&mut conn, county.as_str(), year)
            .await
            .map_err(AppError::from)?;
        let as_verified = |records: &[store::VerificationRecord]| -> Vec<VerifiedIncome> {
            records
                .iter()
                .map(|v| VerifiedIncome {
                    per_capita: v.per_capita,
                    verified_on: v.verified_on,
                    status: v.status.relief_status(),
                })
                .collect()
        };

        // Rows arrive ordered by household: screen each household when the
        // next one starts, so only one household's costs are ever held.
        struct Current {
            household_id: Uuid,
            village_code: String,
            household_type: HouseholdType,
            persons: u32,
            verifications: Vec<VerifiedIncome>,
            costs: MonthlyCosts,
        }
        let mut current: Option<Current> = None;
        let mut candidates: Vec<CandidateRecord> = Vec::new();
        let mut with_costs = 0u64;
        let mut excluded = 0u64;
        let mut flush = |h: Current, candidates: &mut Vec<CandidateRecord>| {
            let facts = screening::HouseholdFacts {
                household_type: h.household_type,
                members: h.persons,
                verifications: &h.verifications,
            };
            let outcome = screening::screen_household(&policy.policy, &facts, &h.costs, as_of);
            excluded += outcome.excluded_by_income.len() as u64;
            candidates.extend(outcome.candidates.into_iter().map(|c| CandidateRecord {
                household_id: h.household_id,
                relief_kind: c.relief_kind,
                village_code: h.village_code.clone(),
                household_type: h.household_type,
                window_first: c.window.first.to_string(),
                window_last: c.window.last.to_string(),
                cost: c.cost,
                threshold: c.threshold,
                over_by: c.over_by,
                income_limit: c.income_limit,
                income: c.income.map(|i| i.per_capita),
                reason: c.reason,
                claim_id: None,
            }));
        };
        store::for_each_cost_row(
            &mut conn,
            county.as_str(),
            year,
            &imports,
            first_year,
            as_of.year(),
            |row| {
                if current
                    .as_ref()
                    .is_none_or(|c| c.household_id != row.household_id)
                {
                    if let Some(done) = current.take() {
                        flush(done, &mut candidates);
                    }
                    with_costs += 1;
                    let verifications = verified
                        .remove(&row.household_id)
                        .map(|v| as_verified(&v.verifications))
                        .unwrap_or_default();
                    current = Some(Current {
                        household_id: row.household_id,
                        village_code: row.village_code.clone(),
                        household_type: row.household_type,
                        persons: row.persons,
                        verifications,
                        costs: MonthlyCosts::default(),
                    });
                }
                let h = current.as_mut().expect("set above");
                h.costs
                    .add_year(row.relief_kind, row.year, &row.months)
                    .ok_or_else(|| {
                        fangpin_store::StoreError::Corrupt("a household's costs overflow".into())
                    })
            },
        )
        .await
        .map_err(AppError::from)?;
        if let Some(done) = current.take() {
            flush(done, &mut candidates);
        }
        // Verified households without costs: only an income drop can make
        // them candidates.
        for (household_id, v) in std::mem::take(&mut verified) {
            flush(
                Current {
                    household_id,
                    village_code: v.village_code,
                    household_type: v.household_type,
                    persons: v.persons,
                    verifications: as_verified(&v.verifications),
                    costs: MonthlyCosts::default(),
                },
                &mut candidates,
            );
        }
        candidates.sort_by(|a, b| {
            (a.household_id, a.relief_kind.index()).cmp(&(b.household_id, b.relief_kind.index()))
        });
        drop(conn);

        let run = RunRecord {
            run_id: Uuid::now_v7(),
            county_code: county.as_str().to_string(),
            policy_year: year,
            policy_version: policy.version,
            as_of,
            households_screened,
            households_with_costs: with_costs,
            candidates: candidates.len() as u64,
            excluded_by_income: excluded,
            import_ids: imports,
            created_at: String::new(),
        };
        let response = self
            .app
            .write("RunScreening", &req, &request_id, county.as_str(), move |conn, ctx| {
                Box::pin(async move {
                    let run = RunRecord {
                        created_at: timestamp(ctx.now),
                        ..run
                    };
                    store::insert_run(conn, &run, &ctx.request_id).await?;
                    store::insert_candidates(conn, run.run_id, &candidates).await?;
                    tracing::info!(run_id = %run.run_id, county = %run.county_code, candidates = run.candidates, "screening run");
                    Ok(run_response(&run))
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn get_screening_run(
        &self,
        request: Request<pb::GetScreeningRunRequest>,
    ) -> Result<Response<pb::ScreeningRun>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let id = c.uuid("run_id", &req.run_id);
        c.finish()?;
        let id = id.expect("checked");
        let mut conn = self.app.store.read().await.map_err(AppError::from)?;
        let run = store::get_run(&mut conn, id)
            .await
            .map_err(AppError::from)?
            .ok_or_else(|| AppError::not_found("screening run", id))?;
        drop(conn);
        if !self.app.sees_county(&run.county_code).await? {
            return Err(AppError::not_found("screening run", id).into());
        }
        Ok(Response::new(run_response(&run)))
    }

    async fn list_screening_candidates(
        &self,
        request: Request<pb::ListScreeningCandidatesRequest>,
    ) -> Result<Response<pb::ListScreeningCandidatesResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let id = c.uuid("run_id", &req.run_id);
        let size = c.page_size("page_size", req.page_size, MAX_CANDIDATES_PAGE);
        let after = parse_candidate_token(&mut c, &req.page_token);
        c.finish()?;
        let (id, size) = (id.expect("checked"), size.expect("checked"));
        let mut conn = self.app.store.read().await.map_err(AppError::from)?;
        let visible = match store::get_run(&mut conn, id)
            .await
            .map_err(AppError::from)?
        {
            Some(run) => self.app.sees_county(&run.county_code).await?,
            None => false,
        };
        if !visible {
            return Err(AppError::not_found("screening run", id).into());
        }
        let page = store::list_candidates(&mut conn, id, after.expect("checked"), size)
            .await
            .map_err(AppError::from)?;
        let next_page_token = next_page_token(&page, size, |c| {
            format!("{}/{}", c.household_id, c.relief_kind.as_str())
        });
        Ok(Response::new(pb::ListScreeningCandidatesResponse {
            candidates: page.iter().map(candidate_response).collect(),
            next_page_token,
        }))
    }

    async fn create_screening_claims(
        &self,
        request: Request<pb::CreateScreeningClaimsRequest>,
    ) -> Result<Response<pb::CreateScreeningClaimsResponse>, Status> {
        let req = request.into_inner();
        let mut c = Check::new();
        let request_id = c.request_id(&req.request_id);
        let run_id = c.uuid("run_id", &req.run_id);
        let submitted_by = c.text("submitted_by", &req.submitted_by, MAX_LABEL_CHARS);
        c.finish()?;
        let run_id = run_id.expect("checked");
        let submitted_by = submitted_by.expect("checked");
        crate::write_path::scope::check_acting_person("submitted_by", &submitted_by)?;
        let run = {
            let mut conn = self.app.store.read().await.map_err(AppError::from)?;
            store::get_run(&mut conn, run_id)
                .await
                .map_err(AppError::from)?
                .ok_or_else(|| AppError::not_found("screening run", run_id))?
        };
        if !self.app.sees_county(&run.county_code).await? {
            return Err(AppError::not_found("screening run", run_id).into());
        }
        let calendar = self.app.calendar.clone();
        let lock = run.county_code.clone();
        let response = self
            .app
            .write(
                "CreateScreeningClaims",
                &req,
                &request_id.expect("checked").to_string(),
                &lock,
                move |conn, ctx| {
                    Box::pin(async move {
                        // A run sent to the townships as the monthly list is
                        // theirs to confirm household by household after the
                        // home check; claims in bulk would skip that check.
                        if !fangpin_store::monitoring::lists_of_run(conn, run.run_id, None)
                            .await?
                            .is_empty()
                        {
                            return Err(AppError::precondition(
                                "MONITORING_LIST",
                                format!("screening_run/{}", run.run_id),
                                "this run was issued as a monitoring list; the townships confirm \
                                 its households one by one (ConfirmListEntry)",
                            ));
                        }
                        let mut out = pb::CreateScreeningClaimsResponse::default();
                        let mut after = None;
                        loop {
                            let page = store::list_candidates(conn, run.run_id, after, 500).await?;
                            let Some(last) = page.last() else { break };
                            after = Some((last.household_id, last.relief_kind));
                            for candidate in &page {
                                if candidate.claim_id.is_some() {
                                    out.already_claimed += 1;
                                    continue;
                                }
                                if out.claim_ids.len() >= MAX_CLAIMS_PER_CALL {
                                    // Only a candidate that would get a new
                                    // claim waits for the next call.
                                    if store::overlapping_screening_claim(
                                        conn,
                                        candidate.household_id,
                                        candidate.relief_kind,
                                        &candidate.window_first,
                                        &candidate.window_last,
                                    )
                                    .await?
                                    .is_none()
                                    {
                                        out.remaining += 1;
                                        continue;
                                    }
                                }
                                let (claim_id, created) = claim_candidate(
                                    conn,
                                    &ctx,
                                    &calendar,
                                    &run,
                                    candidate,
                                    &submitted_by,
                                )
                                .await?;
                                if !created {
                                    out.already_claimed += 1;
                                    continue;
                                }
                                out.created += 1;
                                out.claim_ids.push(claim_id.to_string());
                            }
                        }
                        Ok(out)
                    })
                },
            )
            .await?;
        Ok(Response::new(response))
    }

    async fn issue_monitoring_list(
        &self,
        request: Request<pb::IssueMonitoringListRequest>,
    ) -> Result<Response<pb::IssueMonitoringListResponse>, Status> {
        super::monitoring::issue(&self.app, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_monitoring_list(
        &self,
        request: Request<pb::GetMonitoringListRequest>,
    ) -> Result<Response<pb::GetMonitoringListResponse>, Status> {
        super::monitoring::get(&self.app, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn confirm_list_entry(
        &self,
        request: Request<pb::ConfirmListEntryRequest>,
    ) -> Result<Response<pb::MonitoringListEntry>, Status> {
        let req = request.into_inner();
        let decide = super::monitoring::DecideRequest {
            request_id: &req.request_id,
            run_id: &req.run_id,
            household_id: &req.household_id,
            relief_kind: req.relief_kind,
            checked_on: &req.checked_on,
            note: &req.note,
            checked_by: &req.checked_by,
        };
        super::monitoring::decide(
            &self.app,
            "ConfirmListEntry",
            &req,
            decide,
            super::monitoring::Decision::Confirm,
        )
        .await
        .map(Response::new)
    }

    async fn dismiss_list_entry(
        &self,
        request: Request<pb::DismissListEntryRequest>,
    ) -> Result<Response<pb::MonitoringListEntry>, Status> {
        let req = request.into_inner();
        let decide = super::monitoring::DecideRequest {
            request_id: &req.request_id,
            run_id: &req.run_id,
            household_id: &req.household_id,
            relief_kind: req.relief_kind,
            checked_on: &req.checked_on,
            note: &req.reason,
            checked_by: &req.checked_by,
        };
        super::monitoring::decide(
            &self.app,
            "DismissListEntry",
            &req,
            decide,
            super::monitoring::Decision::Dismiss,
        )
        .await
        .map(Response::new)
    }
}

/// The claim for one screening candidate: the claim that already covers
/// its window (an earlier screening claim, or a claim through another
/// channel for an event in it), or a new department-referral claim. The
/// candidate names the claim either way. The second value says whether the
/// claim is new.
pub(super) async fn claim_candidate(
    conn: &mut fangpin_store::Conn,
    ctx: &crate::write_path::app::WriteContext,
    calendar: &fangpin_domain::calendar::WorkCalendar,
    run: &RunRecord,
    candidate: &CandidateRecord,
    submitted_by: &str,
) -> Result<(Uuid, bool), AppError> {
    if let Some(existing) = candidate.claim_id {
        return Ok((existing, false));
    }
    if let Some(existing) = store::overlapping_screening_claim(
        conn,
        candidate.household_id,
        candidate.relief_kind,
        &candidate.window_first,
        &candidate.window_last,
    )
    .await?
    {
        store::set_candidate_claim(
            conn,
            run.run_id,
            candidate.household_id,
            candidate.relief_kind,
            existing,
        )
        .await?;
        return Ok((existing, false));
    }
    let mut claim = ClaimRecord {
        claim_id: Uuid::now_v7(),
        county_code: run.county_code.clone(),
        policy_year: run.policy_year,
        policy_version: 0,
        household_id: candidate.household_id,
        village_code: candidate.village_code.clone(),
        relief_kind: candidate.relief_kind,
        channel: Channel::DepartmentReferral,
        state: ClaimState::Received,
        event_date: run.as_of,
        event_reference: format!(
            "screening:{}:{}..{}",
            candidate.relief_kind.as_str(),
            candidate.window_first,
            candidate.window_last
        ),
        claimed_cost: candidate.cost,
        description: candidate.reason.clone(),
        submitted_by: submitted_by.to_string(),
        intake_date: ctx.today,
        survey_deadline: ctx.today,
        survey_deadline_provisional: false,
        surveyor: None,
        assessment: None,
        advance: Fen::ZERO,
        payout: None,
        publicity: None,
        recommendation_reason: None,
        objections: 0,
        payout_returns: 0,
        paid_account_masked: None,
        paid_bank_reference: None,
        filed: false,
    };
    super::claims::open_claim(conn, ctx, calendar, &mut claim, candidate.household_type).await?;
    store::insert_screening_claim(conn, candidate, claim.claim_id, run.run_id).await?;
    store::set_candidate_claim(
        conn,
        run.run_id,
        candidate.household_id,
        candidate.relief_kind,
        claim.claim_id,
    )
    .await?;
    Ok((claim.claim_id, true))
}

fn parse_candidate_token(c: &mut Check, token: &str) -> Option<Option<(Uuid, ReliefKind)>> {
    if token.is_empty() {
        return Some(None);
    }
    let parsed = token
        .split_once('/')
        .and_then(|(h, k)| Some((h.parse::<Uuid>().ok()?, ReliefKind::parse(k)?)));
    if parsed.is_none() {
        c.bad("page_token", "is not a token this service returned");
        return None;
    }
    Some(parsed)
}

fn run_response(run: &RunRecord) -> pb::ScreeningRun {
    pb::ScreeningRun {
        run_id: run.run_id.to_string(),
        county_code: run.county_code.clone(),
        policy_year: run.policy_year,
        policy_version: run.policy_version,
        as_of: run.as_of.to_string(),
        households_screened: run.households_screened,
        households_with_costs: run.households_with_costs,
        candidates: run.candidates,
        excluded_by_income: run.excluded_by_income,
        created_at: run.created_at.clone(),
        import_ids: run.import_ids.iter().map(Uuid::to_string).collect(),
    }
}

fn candidate_response(c: &CandidateRecord) -> pb::ScreeningCandidate {
    pb::ScreeningCandidate {
        household_id: c.household_id.to_string(),
        village_code: c.village_code.clone(),
        household_type: convert::household_type_to_pb(c.household_type).into(),
        relief_kind: convert::relief_kind_to_pb(c.relief_kind).into(),
        window_first_month: c.window_first.clone(),
        window_last_month: c.window_last.clone(),
        cost_yuan: c.cost.to_string(),
        threshold_yuan: c.threshold.to_string(),
        over_by_yuan: c.over_by.to_string(),
        income_limit_yuan: c.income_limit.to_string(),
        verified_income_yuan: c.income.map(|f| f.to_string()).unwrap_or_default(),
        reason: c.reason.clone(),
        claim_id: c.claim_id.map(|id| id.to_string()).unwrap_or_default(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn imports_accept_two_years_before_the_policy_year_up_to_today() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        let (first, last) = accepted_dates(d(2024, 1, 1), d(2024, 12, 31), d(2024, 6, 15));
        assert_eq!((first, last), (d(2022, 2, 1), d(2024, 6, 15)));
        let (_, last) = accepted_dates(d(2024, 1, 1), d(2024, 12, 31), d(2025, 3, 1));
        assert_eq!(last, d(2024, 12, 31));
    }

    #[test]
    fn candidate_tokens_round_trip_and_reject_garbage() {
        let mut c = Check::new();
        let id = Uuid::now_v7();
        let token = format!("{id}/illness");
        assert_eq!(
            parse_candidate_token(&mut c, &token),
            Some(Some((id, ReliefKind::Illness)))
        );
        assert_eq!(parse_candidate_token(&mut c, "nope"), None);
        assert!(c.finish().is_err());
    }
}
