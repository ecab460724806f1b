//! Group commit: the writes that wait for the same lock are committed
//! together, in one transaction, each in a savepoint of its own.
//!
//! Every write of a county is serialised by the county's lock anyway (on
//! SQLite by the one database lock), so sixteen calls in flight used to be
//! sixteen transactions in a row, each waiting for the last one's durable
//! commit. Here one task per lock (`committer`) takes the writes as they
//! queue: it begins a transaction, runs the first write, then every write
//! that arrived meanwhile (up to `MAX_BATCH`), and commits them with one
//! durable commit. Nothing waits to fill a batch: a lone write commits at
//! once, and batches grow only while writes queue behind one another, as
//! TigerBeetle batches.
//!
//! Each write keeps its own outcome. It runs in a savepoint: a business
//! rejection rolls back to it, undoing that write's effects only, and its
//! stored outcome is recorded in the same transaction; a neighbour's
//! refusal never rolls back another write. Answers are released only once
//! the batch's commit is durable; if the commit fails, every write of the
//! batch gets that failure (a conflict runs each again, from the top).
//!
//! The key of a queue is the county on PostgreSQL, where counties write in
//! parallel, and one key for all on SQLite, where the database has one
//! writer.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fangpin_store::{Backend, Conn, Store, StoreError};
use futures_util::FutureExt;
use tokio::sync::{mpsc, watch};

use crate::write_path::app::BoxFuture;

/// Most writes committed together. Bounds how long the first write of a
/// batch waits for its commit behind the others.
pub const MAX_BATCH: usize = 128;
/// Writes queued for one lock before callers wait to queue.
pub const QUEUE_WRITES: usize = 1024;

/// How a batch ended: `Ok` once it is durable.
pub type Committed = Result<(), Arc<StoreError>>;

/// Answers the caller, given how the batch ended.
pub type Deliver = Box<dyn FnOnce(Committed) + Send>;

/// Runs one write on the batch's connection.
pub type RunWrite = Box<dyn for<'c> FnOnce(&'c mut Conn) -> BoxFuture<'c, Ran> + Send>;

/// One write, ready to run inside a batch's transaction.
pub struct Job {
    /// The county whose lock the write needs.
    pub county: String,
    /// The call's span: a batch's transaction begins under its first
    /// write's, so the store's spans stay under the RPC that caused them.
    pub span: tracing::Span,
    /// Runs the write on the batch's connection, in a savepoint it opens
    /// and closes itself.
    pub run: RunWrite,
    /// Answers the caller when the batch fails before this write ran.
    pub fail: Box<dyn FnOnce(StoreError) + Send>,
}

/// What a write left after it ran.
pub struct Ran {
    pub deliver: Deliver,
    /// The write could not open, release or roll back its savepoint: the
    /// transaction cannot go on, and the whole batch is rolled back.
    pub broken: Option<StoreError>,
}

/// The queues, one committer task each, made on first use.
pub struct GroupCommit {
    store: Store,
    queues: std::sync::Mutex<HashMap<String, mpsc::Sender<Job>>>,
    /// Held by a committer while it runs a batch; a test holds it to let
    /// writes queue up into one batch.
    gate: Arc<tokio::sync::Mutex<()>>,
    pub stats: Arc<BatchStats>,
    /// Set once when the server cuts the calls still running.
    cut: watch::Sender<bool>,
}

/// Counts since start: batches committed or rolled back, and writes in them.
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Writes queued.
    pub submitted: AtomicU64,
    pub batches: AtomicU64,
    pub writes: AtomicU64,
    /// The largest batch so far.
    pub largest: AtomicU64,
}

impl GroupCommit {
    pub fn new(store: Store) -> GroupCommit {
        GroupCommit {
            store,
            queues: std::sync::Mutex::new(HashMap::new()),
            gate: Arc::new(tokio::sync::Mutex::new(())),
            stats: Arc::new(BatchStats::default()),
            cut: watch::channel(false).0,
        }
    }

    /// Abandons every batch still running (its transaction rolls back) and
    /// refuses the writes still queued: the server's shutdown after its
    /// grace period, when the calls waiting for them are cut.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Queues `job` behind the writes already waiting for its lock.
    pub async fn submit(&self, job: Job) {
        let key = match self.store.backend() {
            Backend::Sqlite => String::new(),
            Backend::Postgres => job.county.clone(),
        };
        let mut job = job;
        // A queue whose committer is gone (it never ends on its own; only a
        // runtime shutting down ends it) is made again, once.
        for _ in 0..2 {
            let sender = {
                let mut queues = self.queues.lock().expect("queue map poisoned");
                queues
                    .entry(key.clone())
                    .or_insert_with(|| {
                        let (tx, rx) = mpsc::channel(QUEUE_WRITES);
                        tokio::spawn(committer(
                            self.store.clone(),
                            rx,
                            Arc::clone(&self.gate),
                            Arc::clone(&self.stats),
                            self.cut.subscribe(),
                        ));
                        tx
                    })
                    .clone()
            };
            match sender.send(job).await {
                Ok(()) => {
                    self.stats.submitted.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(mpsc::error::SendError(back)) => {
                    job = back;
                    self.queues.lock().expect("queue map poisoned").remove(&key);
                }
            }
        }
        (job.fail)(StoreError::Database(sqlx::Error::PoolClosed));
    }

    /// Holds every committer before its next batch until the guard drops.
    pub async fn hold(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.gate.lock().await
    }
}

/// Runs the batches of one queue until the queue is dropped or the
/// server cuts the writes still running (`GroupCommit::cut`).
async fn committer(
    store: Store,
    mut queue: mpsc::Receiver<Job>,
    gate: Arc<tokio::sync::Mutex<()>>,
    stats: Arc<BatchStats>,
    mut cut: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            biased;
            _ = cut.wait_for(|cut| *cut) => break,
            job = queue.recv() => match job {
                Some(job) => job,
                None => return,
            },
        };
        let _running = gate.lock().await;
        tokio::select! {
            biased;
            // Cut: the batch's transaction is dropped, so it rolls back, as
            // a cut call's own transaction did before batching.
            _ = cut.wait_for(|cut| *cut) => break,
            () = run_batch(&store, &mut queue, first, &stats) => {}
        }
    }
    while let Ok(job) = queue.try_recv() {
        (job.fail)(StoreError::Database(sqlx::Error::PoolClosed));
    }
}

/// One batch: `first` and whatever queues behind it while it runs.
async fn run_batch(store: &Store, queue: &mut mpsc::Receiver<Job>, first: Job, stats: &BatchStats) {
    let begin =
        tracing::Instrument::instrument(store.begin_write(&first.county), first.span.clone());
    let mut tx = match begin.await {
        Ok(tx) => tx,
        Err(e) => {
            (first.fail)(e);
            return;
        }
    };
    let mut ran: Vec<Deliver> = Vec::new();
    let mut broken = None;
    let mut next = Some(first);
    while let Some(job) = next.take() {
        match AssertUnwindSafe((job.run)(&mut tx)).catch_unwind().await {
            Ok(done) => {
                ran.push(done.deliver);
                if let Some(e) = done.broken {
                    broken = Some(e);
                    break;
                }
            }
            // The write's own answer went with it (its caller sees the
            // channel closed); the transaction is in an unknown state.
            Err(_) => {
                tracing::error!("a write panicked; its batch is rolled back");
                broken = Some(StoreError::Corrupt("a write of the batch panicked".into()));
                break;
            }
        }
        if ran.len() < MAX_BATCH {
            next = queue.try_recv().ok();
        }
    }
    let writes = ran.len() as u64;
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.writes.fetch_add(writes, Ordering::Relaxed);
    stats.largest.fetch_max(writes, Ordering::Relaxed);
    let committed: Committed = match broken {
        Some(e) => {
            if let Err(rollback) = tx.rollback().await {
                tracing::warn!(error = %rollback, "rolling back a broken batch");
            }
            Err(Arc::new(e))
        }
        None => tx.commit().await.map_err(|e| Arc::new(StoreError::from(e))),
    };
    if let Err(e) = &committed {
        tracing::warn!(error = %e, writes, "a batch of writes did not commit");
    }
    for deliver in ran {
        deliver(committed.clone());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::write_path::app::App;
    use crate::write_path::clock::ManualClock;
    use crate::write_path::error::AppError;
    use fangpin_proto::tonic::{Code, Status};
    use fangpin_proto::v1 as pb;
    use fangpin_store::counties::{self, CountyRecord};

    async fn app(dir: &tempfile::TempDir) -> App {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url).await.unwrap();
        App::new(
            store,
            Arc::new(ManualClock::at_date(
                chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            )),
            crate::write_path::personal_data::random_key(),
            Arc::new(fangpin_domain::calendar::WorkCalendar::official().clone()),
        )
    }

    /// RegisterCounty's write, as its handler makes it.
    async fn register(
        app: App,
        code: &'static str,
        request_id: &'static str,
    ) -> Result<pb::CountyResponse, Status> {
        let request = pb::RegisterCountyRequest {
            request_id: request_id.into(),
            county_code: code.into(),
            name: "县".into(),
            rural_population: 1_000,
            insurer: "保险公司".into(),
        };
        let county = CountyRecord {
            county_code: code.into(),
            name: "县".into(),
            rural_population: 1_000,
            insurer: "保险公司".into(),
        };
        app.write(
            "RegisterCounty",
            &request,
            request_id,
            code,
            move |conn, ctx| {
                Box::pin(async move {
                    if counties::get_county(conn, &county.county_code)
                        .await?
                        .is_some()
                    {
                        return Err(AppError::AlreadyExists(format!(
                            "county {} is already registered",
                            county.county_code
                        )));
                    }
                    counties::insert_county(conn, &county, ctx.now).await?;
                    Ok(pb::CountyResponse {
                        county_code: county.county_code.clone(),
                        ..Default::default()
                    })
                })
            },
        )
        .await
    }

    /// Starts `write` and waits until it is queued.
    async fn queued<T: Send + 'static>(
        app: &App,
        write: impl std::future::Future<Output = T> + Send + 'static,
    ) -> tokio::task::JoinHandle<T> {
        let before = app.commits.stats.submitted.load(Ordering::SeqCst);
        let handle = tokio::spawn(write);
        while app.commits.stats.submitted.load(Ordering::SeqCst) == before {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        handle
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_keeps_each_writes_own_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(&dir).await;
        let held = app.commits.hold().await;
        // Four writes queue behind the held gate and run as one batch: a
        // county, the same county again under another request id (refused),
        // another county, and the first request retried.
        let first = queued(&app, register(app.clone(), "130426", "req-a")).await;
        let refused = queued(&app, register(app.clone(), "130426", "req-b")).await;
        let other = queued(&app, register(app.clone(), "130427", "req-c")).await;
        let retried = queued(&app, register(app.clone(), "130426", "req-a")).await;
        drop(held);
        let first = first.await.unwrap().expect("the first write commits");
        let refused = refused.await.unwrap().expect_err("the same county twice");
        let other = other.await.unwrap().expect("its neighbour commits");
        let retried = retried.await.unwrap().expect("the retry answers");
        assert_eq!(first.county_code, "130426");
        assert_eq!(refused.code(), Code::AlreadyExists);
        assert_eq!(other.county_code, "130427");
        assert_eq!(
            retried, first,
            "a retry in the same batch gets the first answer"
        );
        let stats = &app.commits.stats;
        assert_eq!(stats.batches.load(Ordering::SeqCst), 1);
        assert_eq!(stats.writes.load(Ordering::SeqCst), 4);

        // All of it is durable: both counties, and the refusal is stored,
        // so its retry gets the same answer without running again.
        let again = register(app.clone(), "130426", "req-b")
            .await
            .expect_err("stored");
        assert_eq!(
            (again.code(), again.message()),
            (refused.code(), refused.message())
        );
        let mut conn = app.store.read().await.unwrap();
        for code in ["130426", "130427"] {
            assert!(
                counties::get_county(&mut conn, code)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(audited, 2, "one audit entry per committed write");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lone_write_commits_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(&dir).await;
        for (i, code) in ["130426", "130427", "130428"].into_iter().enumerate() {
            let ids = ["a", "b", "c"];
            register(app.clone(), code, ids[i]).await.unwrap();
        }
        assert_eq!(app.commits.stats.batches.load(Ordering::SeqCst), 3);
    }
}
