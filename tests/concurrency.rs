//! The write path and the read path under concurrency, through the real server:
//! reads that combine several queries see one moment while writers run, and a
//! write the database refuses for a concurrent transaction (SQLSTATE 40001,
//! 40P01) is run again, a bounded number of times, and applied once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fangpin_domain::Fen;
use fangpin_proto::tonic::Code;
use fangpin_proto::v1 as pb;
use fangpin_server::write_path::app::MAX_WRITE_ATTEMPTS;
use fangpin_tests::flow::{self, COUNTY, OTHER_VILLAGE, VILLAGE};
use fangpin_tests::{PG_ENV, TestServer, date, request_id};
use sqlx::{Connection, Executor, Row};

const YEAR: i32 = 2026;
/// Each of the test's illness claims of 100,000.00 is owed 61,750.00.
const RELIEF_FEN: i64 = 6_175_000;
const CLAIMS: u32 = 40;
/// The reader's calls are bounded, whatever the writers do.
const MAX_READS: usize = 2_000;
/// The premium writers go on until the reader has read this often.
const MIN_READS: usize = 300;

fn fen(yuan: &str) -> i64 {
    Fen::parse_yuan(yuan)
        .unwrap_or_else(|e| panic!("{yuan:?} is not an amount: {e}"))
        .get()
}

/// Pays `CLAIMS` filed claims and records premiums and top-ups from several
/// tasks at once, while one reader calls GetReconciliation and GetPoolBalance
/// as fast as it can. Every reconciliation must tie, and every balance must
/// hold what is owed exactly once: each claim's relief is either pending or
/// paid, never neither or both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconciliation_and_pool_read_one_moment_while_writers_run() {
    let s = TestServer::start(date(YEAR, 3, 1)).await;
    flow::funded_county(&s, YEAR, "50000000.00").await;
    let mut claims = Vec::new();
    for i in 0..CLAIMS {
        let village = if i % 2 == 0 { VILLAGE } else { OTHER_VILLAGE };
        claims.push(flow::filed_claim(&s, YEAR, village, i + 1).await.0);
    }
    let owed = RELIEF_FEN * i64::from(CLAIMS);

    let done = Arc::new(AtomicBool::new(false));
    let reads_done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = {
        let (ledger, done, reads_done) = (s.ledger(), done.clone(), reads_done.clone());
        tokio::spawn(async move {
            let mut ledger = ledger;
            let request = pb::PoolRequest {
                county_code: COUNTY.into(),
                policy_year: YEAR,
            };
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) && reads < MAX_READS {
                let r = ledger
                    .get_reconciliation(request.clone())
                    .await
                    .expect("reconciliation")
                    .into_inner();
                assert!(
                    r.ties,
                    "read {reads}: the reconciliation does not tie: {r:?}"
                );
                let p = ledger
                    .get_pool_balance(request.clone())
                    .await
                    .expect("pool")
                    .into_inner();
                let (paid, pending) = (fen(&p.relief_paid_yuan), fen(&p.pending_yuan));
                assert_eq!(
                    paid + pending,
                    owed,
                    "read {reads}: paid {paid} + pending {pending} fen is not what is owed"
                );
                assert_eq!(
                    fen(&p.available_yuan),
                    fen(&p.pool_yuan) - pending,
                    "read {reads}: available is not pool - pending: {p:?}"
                );
                reads += 2;
                reads_done.store(reads, Ordering::Relaxed);
            }
            reads
        })
    };

    let mut writers = Vec::new();
    for claim in claims {
        let s_payout = s.payout();
        writers.push(tokio::spawn(async move {
            let mut payout = s_payout;
            payout
                .pay_claim(pb::PayClaimRequest {
                    request_id: request_id(),
                    claim_id: claim.clone(),
                    paid_by: "insurer".into(),
                    bank_reference: format!("TX-{claim}"),
                })
                .await
                .expect("pay");
        }));
    }
    for i in 0..4 {
        let mut ledger = s.ledger();
        let mut enrollment = s.enrollment();
        let reads_done = reads_done.clone();
        writers.push(tokio::spawn(async move {
            // Bounded: the reader stops at MAX_READS, and so do these.
            for round in 0..MAX_READS {
                if reads_done.load(Ordering::Relaxed) >= MIN_READS {
                    break;
                }
                let i = i * 10_000 + round;
                ledger
                    .record_top_up(pb::RecordTopUpRequest {
                        request_id: request_id(),
                        county_code: COUNTY.into(),
                        policy_year: YEAR,
                        amount_yuan: format!("{}.00", 1000 + i),
                        reference: format!("county finance {i}"),
                    })
                    .await
                    .expect("top-up");
                enrollment
                    .record_premium(pb::RecordPremiumRequest {
                        request_id: request_id(),
                        county_code: COUNTY.into(),
                        policy_year: YEAR,
                        amount_yuan: format!("{}.50", 200 + i),
                        reference: format!("late premium {i}"),
                    })
                    .await
                    .expect("premium");
            }
        }));
    }
    for w in writers {
        w.await.expect("writer");
    }
    done.store(true, Ordering::Relaxed);
    let reads = reader.await.expect("reader");
    assert!(reads > 0, "the reader never ran");
    eprintln!("{reads} consistent reads while writers ran");

    let end = flow::pool(&s, YEAR).await;
    assert_eq!(fen(&end.relief_paid_yuan), owed);
    assert_eq!(fen(&end.pending_yuan), 0);
    assert!(flow::reconciliation(&s, YEAR).await.ties);
    s.stop().await;
}

/// Installs, in the test's PostgreSQL database, a trigger that refuses the
/// next `budget` audit-log inserts with SQLSTATE `code`, as a concurrent
/// transaction would. Every successful write appends to the audit log in its
/// own transaction, so each refusal rolls a whole write back. The count of
/// refusals is kept in a sequence, which a rollback does not undo.
async fn refuse_writes(url: &str, code: &str, budget: i64) -> sqlx::AnyConnection {
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    conn.execute(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE test_fault_budget (budget BIGINT NOT NULL, code TEXT NOT NULL);
         INSERT INTO test_fault_budget VALUES ({budget}, '{code}');
         CREATE SEQUENCE test_fault_refusals;
         CREATE FUNCTION test_fault_refuse() RETURNS trigger AS $$
         DECLARE b BIGINT; c TEXT;
         BEGIN
           SELECT budget, code INTO b, c FROM test_fault_budget;
           IF b > 0 AND nextval('test_fault_refusals') <= b THEN
             RAISE EXCEPTION 'forced conflict for a test' USING ERRCODE = c;
           END IF;
           RETURN NEW;
         END $$ LANGUAGE plpgsql;
         CREATE TRIGGER test_fault_refuse BEFORE INSERT ON audit_log
           FOR EACH ROW EXECUTE FUNCTION test_fault_refuse();"
    )))
    .await
    .expect("install the fault trigger");
    conn
}

async fn refusals(conn: &mut sqlx::AnyConnection) -> i64 {
    // last_value is 1 with is_called false before the first nextval.
    let row = sqlx::query("SELECT last_value, is_called FROM test_fault_refusals")
        .fetch_one(&mut *conn)
        .await
        .expect("read the refusal count");
    if row.get::<bool, _>(1) {
        row.get::<i64, _>(0)
    } else {
        0
    }
}

async fn premium_entries(conn: &mut sqlx::AnyConnection, reference: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM ledger_entries WHERE reference = $1")
        .bind(reference)
        .fetch_one(&mut *conn)
        .await
        .expect("count entries")
        .get::<i64, _>(0)
}

fn premium_request(request_id: &str, reference: &str) -> pb::RecordPremiumRequest {
    pb::RecordPremiumRequest {
        request_id: request_id.into(),
        county_code: COUNTY.into(),
        policy_year: YEAR,
        amount_yuan: "1234.56".into(),
        reference: reference.into(),
    }
}

/// The refusals are the database's own errors, raised by PostgreSQL; SQLite
/// serializes writers with `BEGIN IMMEDIATE` and never raises them.
fn postgres_only(test: &str) -> bool {
    let on_pg = std::env::var(PG_ENV).is_ok_and(|u| !u.is_empty());
    if !on_pg {
        eprintln!("{test}: serialization failures are PostgreSQL's; run with {PG_ENV}");
    }
    on_pg
}

#[tokio::test]
async fn a_write_refused_for_a_concurrent_transaction_is_run_again_and_applied_once() {
    if !postgres_only("retry") {
        return;
    }
    for code in ["40001", "40P01"] {
        let s = TestServer::start(date(YEAR, 3, 1)).await;
        flow::funded_county(&s, YEAR, "100000.00").await;
        let before = flow::pool(&s, YEAR).await;
        let mut db = refuse_writes(s.database_url(), code, 2).await;

        let id = request_id();
        let reference = format!("retried premium {code}");
        let first = flow::premium_with(&s, premium_request(&id, &reference))
            .await
            .unwrap_or_else(|e| panic!("{code}: refused twice, then applied: {e}"));
        assert_eq!(
            refusals(&mut db).await,
            3,
            "{code}: two refusals, then the insert"
        );
        assert_eq!(premium_entries(&mut db, &reference).await, 1);
        let after = flow::pool(&s, YEAR).await;
        assert_eq!(
            fen(&after.pool_yuan) - fen(&before.pool_yuan),
            123_456,
            "{code}: the premium is in the pool once"
        );
        // The client's own retry of the same request is a replay.
        let again = flow::premium_with(&s, premium_request(&id, &reference))
            .await
            .expect("replay");
        assert_eq!(again, first);
        assert_eq!(premium_entries(&mut db, &reference).await, 1);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_write_refused_every_time_is_aborted_with_nothing_recorded_and_can_be_retried() {
    if !postgres_only("abort") {
        return;
    }
    let s = TestServer::start(date(YEAR, 3, 1)).await;
    flow::funded_county(&s, YEAR, "100000.00").await;
    let before = flow::pool(&s, YEAR).await;
    let mut db = refuse_writes(s.database_url(), "40001", 1_000).await;

    let id = request_id();
    let reference = "premium refused until the conflict ends";
    let error = flow::premium_with(&s, premium_request(&id, reference))
        .await
        .expect_err("every attempt refused");
    assert_eq!(error.code(), Code::Aborted, "{error:?}");
    assert!(error.message().contains("same request_id"), "{error:?}");
    assert_eq!(
        refusals(&mut db).await,
        i64::from(MAX_WRITE_ATTEMPTS),
        "bounded: exactly MAX_WRITE_ATTEMPTS attempts"
    );
    assert_eq!(premium_entries(&mut db, reference).await, 0);
    assert_eq!(flow::pool(&s, YEAR).await, before, "nothing recorded");

    // The conflict ends; the client retries with the same request id.
    db.execute("UPDATE test_fault_budget SET budget = 0")
        .await
        .expect("end the conflict");
    flow::premium_with(&s, premium_request(&id, reference))
        .await
        .expect("the retry is applied");
    assert_eq!(premium_entries(&mut db, reference).await, 1);
    let after = flow::pool(&s, YEAR).await;
    assert_eq!(
        Fen::new(fen(&after.pool_yuan) - fen(&before.pool_yuan)),
        Fen::new(123_456)
    );
    s.stop().await;
}

/// Many writes of one county at once, as the group commit batches them:
/// among 24 enrolments, each of 8 persons is enrolled twice under two
/// request ids (one of each pair is refused ALREADY_EXISTS, which must not
/// undo its neighbours), and every request is sent twice at once, as a
/// client retrying a lost answer would (both get the first answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_keep_their_own_outcomes_refusals_and_retries_included() {
    let s = TestServer::start(date(YEAR, 3, 2)).await;
    flow::register_county(&s).await;
    flow::put_policy(&s, YEAR).await;
    let person = |n: u32| fangpin_tests::resident_id("19800101", n);
    // Request i enrols person i, except every third, which enrols the
    // person of the request before it.
    let requests: Vec<pb::EnrollHouseholdRequest> = (0..24u32)
        .map(|i| {
            let who = if i % 3 == 2 { i - 1 } else { i };
            pb::EnrollHouseholdRequest {
                request_id: request_id(),
                county_code: COUNTY.into(),
                policy_year: YEAR,
                village_code: VILLAGE.into(),
                household_type: pb::HouseholdType::Marginal.into(),
                head: Some(pb::Person {
                    id_number: person(who + 1),
                    name: format!("户主{i}"),
                    relation: String::new(),
                }),
                members: vec![],
                bank_account: format!("621700020{i:08}"),
            }
        })
        .collect();
    let mut calls = tokio::task::JoinSet::new();
    for (i, request) in requests.iter().enumerate() {
        for _ in 0..2 {
            let (mut client, request) = (s.enrollment(), request.clone());
            calls.spawn(async move {
                let answer = client
                    .enroll_household(request)
                    .await
                    .map(|r| r.into_inner().household_id)
                    .map_err(|e| (e.code(), e.message().to_string()));
                (i, answer)
            });
        }
    }
    let mut answers: Vec<Vec<Result<String, (Code, String)>>> = vec![Vec::new(); requests.len()];
    while let Some(done) = calls.join_next().await {
        let (i, answer) = done.expect("a call");
        answers[i].push(answer);
    }
    for (i, pair) in answers.iter().enumerate() {
        assert_eq!(
            pair[0], pair[1],
            "request {i}: both sends get the first answer"
        );
    }
    for i in (0..24).step_by(3) {
        // i enrols alone; i + 1 and i + 2 enrol the same person.
        assert!(answers[i][0].is_ok(), "request {i}: {:?}", answers[i][0]);
        let pair = [&answers[i + 1][0], &answers[i + 2][0]];
        let refused: Vec<_> = pair.iter().filter_map(|a| a.as_ref().err()).collect();
        assert_eq!(
            refused.len(),
            1,
            "requests {} and {}: {pair:?}",
            i + 1,
            i + 2
        );
        assert_eq!(refused[0].0, Code::AlreadyExists);
    }
    let county = s
        .enrollment()
        .get_county(pb::GetCountyRequest {
            county_code: COUNTY.into(),
            policy_year: YEAR,
        })
        .await
        .expect("county")
        .into_inner();
    assert_eq!(county.persons_enrolled, 16);
    // Later retries still get the same answers: each outcome was stored.
    for (i, request) in requests.iter().enumerate() {
        let again = s
            .enrollment()
            .enroll_household(request.clone())
            .await
            .map(|r| r.into_inner().household_id)
            .map_err(|e| (e.code(), e.message().to_string()));
        assert_eq!(again, answers[i][0], "request {i} retried later");
    }
}
