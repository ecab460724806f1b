//! State shared by every handler, and the one write path all mutating RPCs take.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use fangpin_domain::audit::{AuditFields, format_at};
use fangpin_domain::calendar::WorkCalendar;
use fangpin_domain::personal_data::PersonalDataKey;
use fangpin_proto::prost::Message;
use fangpin_proto::tonic::{Code, Status};
use fangpin_store::audit as audit_store;
use fangpin_store::claims::{self as claim_store, ClaimRecord};
use fangpin_store::idempotency::{self, Outcome};
use fangpin_store::{Conn, Store, StoreError};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::transport::storage_watch::StorageWatch;
use crate::write_path::clock::{Clock, china_date};
use crate::write_path::error::AppError;
use crate::write_path::group_commit::{GroupCommit, Job, Ran, RunWrite};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a write body gets besides its connection: the request's time, read
/// once, and its request id, recorded beside every effect.
#[derive(Clone, Debug)]
pub struct WriteContext {
    pub now: DateTime<Utc>,
    pub today: NaiveDate,
    pub request_id: String,
}

#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    /// The built-in working-day calendar, extended by the operator's
    /// `[calendar] file` (`ServerOptions::calendar`).
    pub calendar: Arc<WorkCalendar>,
    /// Seals and opens ID numbers and bank accounts; handlers open a value
    /// only where a call needs its digits (docs/personal-data.md).
    pub personal_data: Arc<PersonalDataKey>,
    /// Whether the database ran out of space; health follows it.
    pub storage: Arc<StorageWatch>,
    /// Where evidence files are kept (`ServerOptions::evidence_dir`); None:
    /// evidence RPCs answer FAILED_PRECONDITION.
    pub evidence: Option<Arc<dyn object_store::ObjectStore>>,
    /// The CJK font village notices are printed in
    /// (`ServerOptions::notice_font`); None: PrintNotice answers
    /// FAILED_PRECONDITION.
    pub notice_font: Option<crate::services::notice_pdf::NoticeFont>,
    /// The queues every write waits in for its county's lock, committed
    /// together (`group_commit`).
    pub commits: Arc<GroupCommit>,
}

impl App {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        personal_data: PersonalDataKey,
        calendar: Arc<WorkCalendar>,
    ) -> App {
        App {
            commits: Arc::new(GroupCommit::new(store.clone())),
            store,
            clock,
            calendar,
            personal_data: Arc::new(personal_data),
            storage: Arc::new(StorageWatch::default()),
            evidence: None,
            notice_font: None,
        }
    }

    pub fn today(&self) -> NaiveDate {
        china_date(self.clock.now())
    }

    /// Runs `body` as one idempotent write under the county's lock.
    ///
    /// The outcome is stored under (rpc, request_id) in the same transaction
    /// as the effect, so a retry after a lost response returns the first
    /// response and changes nothing. A business rejection is stored too,
    /// after its own effects were rolled back. The write is committed
    /// together with the writes queued beside it for the same lock
    /// (`group_commit`), each in its own savepoint; it is answered once that
    /// commit is durable. If the client's deadline cancels this future, the
    /// write still finishes and its outcome is stored, so the retry gets it.
    ///
    /// A success also appends one entry to the county's audit chain, in the
    /// same transaction (see `Audited`): object `<county>/<rpc>`, after the
    /// SHA-256 of the response. Replays and rejections append nothing.
    pub async fn write<Req, Resp, F>(
        &self,
        rpc: &'static str,
        request: &Req,
        request_id: &str,
        county_code: &str,
        body: F,
    ) -> Result<Resp, Status>
    where
        Req: Message,
        // Every response is an owned prost message.
        Resp: Message + Default + Send + 'static,
        // Clone: a write the database refused for a concurrent transaction
        // runs again on a fresh copy of its body.
        F: for<'c> FnOnce(&'c mut Conn, WriteContext) -> BoxFuture<'c, Result<Resp, AppError>>
            + Clone
            + Send
            + 'static,
    {
        self.write_audited(rpc, request, request_id, county_code, move |conn, ctx| {
            let response = body(conn, ctx);
            Box::pin(async move { Ok((response.await?, None)) })
        })
        .await
    }

    /// `write`, for a body that names the object it created or changed
    /// (`<county>/<kind>/<id>`) and what the audit entry records of it
    /// after the write (codes, ids and hashes only).
    pub async fn write_object<Req, Resp, F>(
        &self,
        rpc: &'static str,
        request: &Req,
        request_id: &str,
        county_code: &str,
        body: F,
    ) -> Result<Resp, Status>
    where
        Req: Message,
        Resp: Message + Default + Send + 'static,
        F: for<'c> FnOnce(
                &'c mut Conn,
                WriteContext,
            ) -> BoxFuture<
                'c,
                Result<(Resp, String, serde_json::Map<String, serde_json::Value>), AppError>,
            > + Clone
            + Send
            + 'static,
    {
        self.write_audited(rpc, request, request_id, county_code, move |conn, ctx| {
            let response = body(conn, ctx);
            Box::pin(async move {
                let (response, object, after) = response.await?;
                Ok((
                    response,
                    Some(Audited {
                        object,
                        before: String::new(),
                        after,
                    }),
                ))
            })
        })
        .await
    }

    /// `write`, for a body that names the object it changed and its state
    /// before and after, for the audit entry; `None` audits the call as
    /// `write` does.
    async fn write_audited<Req, Resp, F>(
        &self,
        rpc: &'static str,
        request: &Req,
        request_id: &str,
        county_code: &str,
        body: F,
    ) -> Result<Resp, Status>
    where
        Req: Message,
        Resp: Message + Default + Send + 'static,
        F: for<'c> FnOnce(
                &'c mut Conn,
                WriteContext,
            ) -> BoxFuture<'c, Result<(Resp, Option<Audited>), AppError>>
            + Clone
            + Send
            + 'static,
    {
        // Every mutating RPC passes here: its span (telemetry::RpcLayer) gets
        // the ids that find it again. Codes and UUIDs only, never personal data.
        let span = tracing::Span::current();
        span.record(crate::transport::telemetry::FIELD_REQUEST_ID, request_id);
        span.record(crate::transport::telemetry::FIELD_COUNTY_CODE, county_code);
        let request_hash = hex::encode(Sha256::digest(request.encode_to_vec()));
        let now = self.clock.now();
        let ctx = WriteContext {
            now,
            today: china_date(now),
            request_id: request_id.to_string(),
        };
        // A write the database refused because of a concurrent transaction
        // (40001, 40P01) rolled back whole, so it is run again from the top:
        // the idempotency lookup, the body on a fresh clone, the commit. The
        // bound keeps a hot county from holding a caller forever; the jitter
        // keeps two retrying writers from meeting again.
        let mut attempt = 1;
        loop {
            match self
                .write_attempt(
                    rpc,
                    request_id,
                    county_code,
                    &request_hash,
                    &ctx,
                    body.clone(),
                )
                .await
            {
                Ok(answer) => return answer,
                Err(conflict) if attempt < MAX_WRITE_ATTEMPTS => {
                    let pause = retry_backoff(attempt);
                    tracing::warn!(
                        error = %conflict,
                        attempt,
                        pause_ms = pause.as_millis() as u64,
                        "write refused by a concurrent transaction; running it again"
                    );
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(conflict) => {
                    tracing::warn!(error = %conflict, attempt, "write still refused; giving up");
                    return Err(Status::aborted(format!(
                        "the write conflicted with concurrent writes {MAX_WRITE_ATTEMPTS} times; \
                         retry with the same request_id"
                    )));
                }
            }
        }
    }

    /// One attempt at a write. `Err` is a retryable conflict only (the
    /// transaction rolled back); every other outcome is the answer.
    ///
    /// The write is queued for its county's lock and run by the group
    /// commit (`group_commit`) in a savepoint of a batch's transaction;
    /// the answer comes back once the batch's commit is durable. A caller
    /// that stops waiting (its deadline passed) leaves the write to finish:
    /// its outcome is stored, and a retry gets it.
    async fn write_attempt<Resp, F>(
        &self,
        rpc: &'static str,
        request_id: &str,
        county_code: &str,
        request_hash: &str,
        ctx: &WriteContext,
        body: F,
    ) -> Result<Result<Resp, Status>, StoreError>
    where
        Resp: Message + Default + Send + 'static,
        F: for<'c> FnOnce(
                &'c mut Conn,
                WriteContext,
            ) -> BoxFuture<'c, Result<(Resp, Option<Audited>), AppError>>
            + Send
            + 'static,
    {
        type Answer<R> = Result<Result<R, Status>, StoreError>;
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel::<Answer<Resp>>();
        let answer = Arc::new(std::sync::Mutex::new(Some(answer_tx)));
        let send = {
            let answer = Arc::clone(&answer);
            move |value: Answer<Resp>| {
                if let Some(tx) = answer.lock().expect("answer slot poisoned").take() {
                    // The caller may have stopped waiting: its outcome is stored.
                    let _ = tx.send(value);
                }
            }
        };
        let fail = {
            let send = send.clone();
            Box::new(move |e: StoreError| send(Err(e))) as Box<dyn FnOnce(StoreError) + Send>
        };
        // The job runs on the committer's task: it carries the call's span
        // and caller with it, for its store spans and its audit entry.
        let span = tracing::Span::current();
        let job_span = span.clone();
        let caller = crate::transport::caller::current();
        let (rpc, request_id, county, request_hash, ctx) = (
            rpc,
            request_id.to_string(),
            county_code.to_string(),
            request_hash.to_string(),
            ctx.clone(),
        );
        let county_for_job = county.clone();
        let run: RunWrite = Box::new(move |conn| {
            let work = async move {
                let ran = run_in_savepoint(
                    conn,
                    rpc,
                    &request_id,
                    &county_for_job,
                    &request_hash,
                    ctx,
                    body,
                )
                .await;
                match ran {
                    Step::Broken(e) => Ran {
                        deliver: Box::new(move |committed| {
                            send(Err(StoreError::Shared(committed.err().unwrap_or_else(
                                || Arc::new(StoreError::Corrupt("a broken batch committed".into())),
                            ))))
                        }),
                        broken: Some(e),
                    },
                    Step::Done(answer) => Ran {
                        deliver: Box::new(move |committed| match committed {
                            Ok(()) => send(answer),
                            Err(e) => send(Err(StoreError::Shared(e))),
                        }),
                        broken: None,
                    },
                }
            };
            let work = tracing::Instrument::instrument(work, span);
            match caller {
                Some(caller) => Box::pin(crate::transport::caller::scope(caller, work)),
                None => Box::pin(work),
            }
        });
        self.commits
            .submit(Job {
                county,
                span: job_span,
                run,
                fail,
            })
            .await;
        let answer = answer_rx.await.unwrap_or_else(|_| {
            // The committer dropped the write without an answer: it
            // panicked, and its batch was rolled back.
            Ok(Err(Status::internal("internal error")))
        });
        match answer {
            Ok(answer) => Ok(answer),
            Err(e) if e.is_retryable() => Err(e),
            Err(e) => {
                if e.is_storage_full() {
                    self.storage.report_full();
                }
                Ok(Err(AppError::from(e).into()))
            }
        }
    }
}

/// How a write went in its savepoint.
enum Step<R> {
    /// The answer, to be given once the batch commits.
    Done(Result<Result<R, Status>, StoreError>),
    /// The savepoint could not be opened, released or rolled back.
    Broken(StoreError),
}

/// One write inside a batch's transaction, as one transaction of its own
/// used to run it: the idempotency lookup, the body, the stored outcome and
/// the audit entry, all in a savepoint. A business rejection rolls the
/// savepoint back and stores the rejection in a savepoint of its own; any
/// other failure rolls it back and is the answer.
async fn run_in_savepoint<Resp, F>(
    conn: &mut Conn,
    rpc: &'static str,
    request_id: &str,
    county_code: &str,
    request_hash: &str,
    ctx: WriteContext,
    body: F,
) -> Step<Resp>
where
    Resp: Message + Default,
    F: for<'c> FnOnce(
        &'c mut Conn,
        WriteContext,
    ) -> BoxFuture<'c, Result<(Resp, Option<Audited>), AppError>>,
{
    use sqlx::Connection;
    let now = ctx.now;
    let mut sp = match conn.begin().await {
        Ok(sp) => sp,
        Err(e) => return Step::Broken(e.into()),
    };
    // Undoes the savepoint, then answers with `answer`.
    macro_rules! undo {
        ($answer:expr) => {{
            let answer = $answer;
            match sp.rollback().await {
                Ok(()) => return Step::Done(answer),
                Err(e) => return Step::Broken(e.into()),
            }
        }};
    }
    match idempotency::find(&mut sp, rpc, request_id).await {
        // A retry, or the same request twice in one batch: the first answer.
        Ok(Some(first)) => undo!(Ok(replay(first, request_hash))),
        Ok(None) => {}
        Err(e) => undo!(Err(e)),
    }
    match body(&mut sp, ctx).await {
        Ok((response, audited)) => {
            let outcome = Outcome {
                request_hash: request_hash.to_string(),
                status_code: 0,
                status_message: String::new(),
                body: response.encode_to_vec(),
            };
            if let Err(e) = idempotency::record(&mut sp, rpc, request_id, &outcome, now).await {
                undo!(Err(e));
            }
            let audited = audited.unwrap_or_else(|| Audited {
                object: format!("{county_code}/{rpc}"),
                before: String::new(),
                after: serde_json::Map::new(),
            });
            match append_audit(
                &mut sp,
                rpc,
                request_id,
                county_code,
                now,
                &outcome.body,
                audited,
            )
            .await
            {
                Err(AppError::Store(e)) => undo!(Err(e)),
                Err(other) => undo!(Ok(Err(other.into()))),
                Ok(()) => {}
            }
            match sp.commit().await {
                Ok(()) => Step::Done(Ok(Ok(response))),
                Err(e) => Step::Broken(e.into()),
            }
        }
        Err(error) if error.is_business_rejection() => {
            if let Err(e) = sp.rollback().await {
                return Step::Broken(e.into());
            }
            let status = Status::from(error);
            let outcome = Outcome {
                request_hash: request_hash.to_string(),
                status_code: status.code() as i32,
                status_message: status.message().to_string(),
                body: status.details().to_vec(),
            };
            // Its own savepoint: a failure to store the rejection must not
            // spoil the batch's transaction for the writes after it.
            let mut sp = match conn.begin().await {
                Ok(sp) => sp,
                Err(e) => return Step::Broken(e.into()),
            };
            match idempotency::record(&mut sp, rpc, request_id, &outcome, now).await {
                Ok(()) => match sp.commit().await {
                    Ok(()) => Step::Done(Ok(Err(status))),
                    Err(e) => Step::Broken(e.into()),
                },
                Err(e) => match sp.rollback().await {
                    Ok(()) => Step::Done(Err(e)),
                    Err(broken) => Step::Broken(broken.into()),
                },
            }
        }
        // Any other store error is the answer (a conflict runs the write
        // again; a full disk is reported to health).
        Err(AppError::Store(e)) => undo!(Err(e)),
        Err(error) => undo!(Ok(Err(error.into()))),
    }
}

/// How many times one write is tried when the database refuses it for a
/// concurrent transaction, before the caller gets ABORTED.
pub const MAX_WRITE_ATTEMPTS: u32 = 5;

/// The pause before attempt `attempt + 1`: 10 ms doubling per attempt, at
/// most 200 ms, with full jitter (uniform in [0, cap]) from the OS's random
/// source, so that two writers that collided once do not collide again.
fn retry_backoff(attempt: u32) -> std::time::Duration {
    let cap_ms = (10u64 << attempt.min(5)).min(200);
    let mut bytes = [0u8; 8];
    // Without randomness the pause is the cap: slower, never wrong.
    let jitter = match getrandom::fill(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes) % (cap_ms + 1),
        Err(_) => cap_ms,
    };
    std::time::Duration::from_millis(jitter)
}

impl App {
    /// A write to one claim: under the lock of the claim's county, the claim is
    /// loaded, `body` changes it, and it is saved in the same transaction.
    pub async fn write_claim<Req, Resp, F>(
        &self,
        rpc: &'static str,
        request: &Req,
        request_id: &str,
        claim_id: Uuid,
        body: F,
    ) -> Result<Resp, Status>
    where
        Req: Message,
        Resp: Message + Default + 'static,
        F: for<'c> FnOnce(
                &'c mut Conn,
                &'c mut ClaimRecord,
                WriteContext,
            ) -> BoxFuture<'c, Result<Resp, AppError>>
            + Clone
            + Send
            + 'static,
    {
        tracing::Span::current().record(
            crate::transport::telemetry::FIELD_CLAIM_ID,
            tracing::field::display(claim_id),
        );
        // Scope before anything else, a replay included: a guessed request
        // id must not show someone else's outcome.
        // A claim never changes county, so the county read here, before the
        // lock, is the one to lock.
        let place = self.authorize_claim(claim_id).await.map_err(Status::from)?;
        self.write_audited(
            rpc,
            request,
            request_id,
            &place.county_code,
            move |conn, ctx| {
                Box::pin(async move {
                    let mut claim = claim_store::get_claim(conn, claim_id)
                        .await?
                        .ok_or_else(|| AppError::not_found("claim", claim_id))?;
                    let before = claim.state;
                    let now = ctx.now;
                    let response = body(conn, &mut claim, ctx).await?;
                    claim_store::update_claim(conn, &claim, now).await?;
                    let audited = Audited {
                        object: format!("{}/claim/{claim_id}", claim.county_code),
                        before: serde_json::Value::Object(state_json(before.as_str())).to_string(),
                        after: state_json(claim.state.as_str()),
                    };
                    Ok((response, Some(audited)))
                })
            },
        )
        .await
    }
}

impl App {
    /// The outcome of a request that was already done, if any. Expensive
    /// requests (a feed import, a screening run) check this first, so that a
    /// client's retry is answered from the record without redoing the work.
    /// `write` checks again under the lock, which is what makes it exact.
    pub async fn recorded<Req, Resp>(
        &self,
        rpc: &'static str,
        request: &Req,
        request_id: &str,
    ) -> Result<Option<Resp>, Status>
    where
        Req: Message,
        Resp: Message + Default,
    {
        let request_hash = hex::encode(Sha256::digest(request.encode_to_vec()));
        let mut conn = self.store.read().await.map_err(AppError::from)?;
        match idempotency::find(&mut conn, rpc, request_id)
            .await
            .map_err(AppError::from)?
        {
            // Only a replay ends here; otherwise `write` records the id.
            Some(first) => {
                tracing::Span::current()
                    .record(crate::transport::telemetry::FIELD_REQUEST_ID, request_id);
                replay(first, &request_hash).map(Some)
            }
            None => Ok(None),
        }
    }
}

/// What a write changed, for its audit entry (docs/audit-log.md). Codes,
/// UUIDs and states only: never a name, an ID number or a bank account.
struct Audited {
    /// `<county>/<kind>/<id>`, or `<county>/<rpc>` for a write that does not
    /// name its object yet.
    object: String,
    /// The object's state before, as JSON; empty when unknown or created.
    before: String,
    /// The object's state after, as a JSON object, without the response
    /// digest, which `append_audit` adds.
    after: serde_json::Map<String, serde_json::Value>,
}

/// `{"state":"filed"}`: a claim's state as the audit log records it.
fn state_json(state: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::Map::new();
    map.insert("state".to_string(), serde_json::Value::from(state));
    map
}

/// Appends the audit entry of a successful write to the county's chain, in
/// the write's transaction and under its county lock. `after` gains
/// `response_sha256`, the digest of the response stored for idempotency,
/// which ties the entry to exactly what the caller was told.
async fn append_audit(
    conn: &mut Conn,
    rpc: &'static str,
    request_id: &str,
    county_code: &str,
    now: DateTime<Utc>,
    response: &[u8],
    audited: Audited,
) -> Result<(), AppError> {
    let caller =
        crate::transport::caller::current().unwrap_or_else(|| crate::transport::caller::Caller {
            actor: crate::transport::caller::UNAUTHENTICATED.to_string(),
            role: String::new(),
            rpc: rpc.to_string(),
            principal: None,
        });
    let mut after = audited.after;
    after.insert(
        "response_sha256".to_string(),
        serde_json::Value::String(hex::encode(Sha256::digest(response))),
    );
    let after = serde_json::Value::Object(after).to_string();
    let at = format_at(now);
    let fields = AuditFields {
        at: &at,
        actor: &caller.actor,
        role: &caller.role,
        rpc: &caller.rpc,
        object: &audited.object,
        before: &audited.before,
        after: &after,
        request_id,
    };
    audit_store::append(conn, county_code, &fields).await?;
    Ok(())
}

fn replay<Resp: Message + Default>(first: Outcome, request_hash: &str) -> Result<Resp, Status> {
    if first.request_hash != request_hash {
        return Err(AppError::RequestIdReused.into());
    }
    if first.status_code == 0 {
        return Resp::decode(first.body.as_slice()).map_err(|e| {
            tracing::error!(error = %e, "stored response does not decode");
            Status::internal("internal error")
        });
    }
    Err(Status::with_details(
        Code::from_i32(first.status_code),
        first.status_message,
        first.body.into(),
    ))
}
