//! Benchmark: one load of the web console's dashboard (总览,
//! console/src/pages/Dashboard.tsx) for a county with 10,000 claims,
//! against the issue's target of under 1 s per load.
//!
//! It starts the real server (`TestServer`, in this process, on port 0; on
//! SQLite, or PostgreSQL when `FANGPIN_TEST_DATABASE_URL` is set) and seeds
//! it through the API only, 16 calls in flight: the county and its policy,
//! then one household of one person and one claim per household, over eight
//! villages of county 130426, the clock moved through the policy year so
//! that on the day of the dashboard (28 November) the claims stand as a
//! real year leaves them: most received or under survey, some rejected or
//! recommended, some in publicity, past it or filed (the last filings short
//! of funds, so a few top-up flags are open), and the oldest paid, each with
//! a contact person for its follow-up visits.
//!
//! One load is what the page calls: GetServiceInfo (the year comes from its
//! date), then GetPoolBalance, ListTopUpFlags, CountClaims and ListDeadlines
//! (within 5 working days) at once, with the page's arguments, timed end to
//! end. The page itself starts CountClaims and ListDeadlines without
//! waiting for GetServiceInfo, so the figure is high by at most one
//! GetServiceInfo. One untimed load warms up first. It prints the median
//! and the max against the target, and each RPC's median.
//!
//! Its anchors, from the same run on the same database: GetServiceInfo
//! alone (a round trip that reads no database) and a bare SQL count of the
//! same rows (`SELECT state, COUNT(*) FROM claims WHERE county_code = $1
//! GROUP BY state` through sqlx on one connection).
//!
//! ```text
//! cargo bench -p fangpin-tests --bench dashboard [-- --claims N --runs N]
//! FANGPIN_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p fangpin-tests --bench dashboard
//! ```

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use fangpin_proto::tonic::transport::Channel;
use fangpin_proto::v1::{
    self as pb, claim_service_client::ClaimServiceClient,
    deadline_service_client::DeadlineServiceClient,
    enrollment_service_client::EnrollmentServiceClient,
    follow_up_service_client::FollowUpServiceClient, ledger_service_client::LedgerServiceClient,
    payout_service_client::PayoutServiceClient, publicity_service_client::PublicityServiceClient,
    service_info_service_client::ServiceInfoServiceClient,
    survey_service_client::SurveyServiceClient,
};
use fangpin_tests::flow::{
    COUNTY, INSURER, OTHER_VILLAGE, SURVEYOR, VILLAGE, premium, put_policy, register_county_of,
};
use fangpin_tests::{TestServer, date, request_id, resident_id};
use sqlx::{AnyConnection, Connection};
use tokio::task::JoinSet;

const YEAR: i32 = 2025;
/// Calls in flight while seeding.
const IN_FLIGHT: usize = 16;
/// The issue's target for one dashboard load.
const TARGET: Duration = Duration::from_secs(1);
/// Villages of the county, in four townships (100, 101, 203, 204).
const VILLAGES: [&str; 8] = [
    VILLAGE,
    "130426100202",
    "130426100305",
    "130426101001",
    OTHER_VILLAGE,
    "130426203002",
    "130426204001",
    "130426204010",
];

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// 10000 as "10,000".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The day the dashboard is opened.
fn today() -> NaiveDate {
    date(YEAR, 11, 28)
}

/// Where a claim stands on `today()`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Received,
    UnderSurvey,
    Rejected,
    Recommended,
    InPublicity,
    PublicityPassed,
    Filed,
    Paid,
}

/// Of every 20 claims: 6 received, 5 under survey, 1 rejected, 2
/// recommended, 1 in publicity, 1 past it, 1 filed, 3 paid.
fn target(i: usize) -> Target {
    match i % 20 {
        0..=5 => Target::Received,
        6..=10 => Target::UnderSurvey,
        11 => Target::Rejected,
        12 | 13 => Target::Recommended,
        14 => Target::InPublicity,
        15 => Target::PublicityPassed,
        16 => Target::Filed,
        _ => Target::Paid,
    }
}

#[derive(Clone, Copy, Debug)]
enum Step {
    /// EnrollHousehold and SubmitClaim.
    Intake,
    Assign,
    /// RecordFindings and Recommend, eligible and approved or not.
    Survey {
        approve: bool,
    },
    Open,
    Close,
    File,
    Pay,
    Contacts,
}

impl Step {
    fn calls(self) -> usize {
        match self {
            Step::Intake | Step::Survey { .. } => 2,
            _ => 1,
        }
    }
}

/// The claimed (and verified) illness cost of claim `i`: 10,000 to 50,000 yuan.
fn cost_yuan(i: usize) -> i64 {
    10_000 + (i as i64 * 7 % 41) * 1_000
}

/// The example policy's relief for an unstable-escaped household's illness
/// of `cost_yuan`, in fen: 60% of the cost above 5,000 yuan up to 30,000
/// more, 65% of the next 50,000.
fn relief_fen(cost_yuan: i64) -> i64 {
    let above = cost_yuan - 5_000;
    above.min(30_000) * 60 + (above - 30_000).max(0) * 65
}

/// Claim `i`'s steps, each on its day; several on one day run in order.
fn plan(i: usize) -> Vec<(NaiveDate, Step)> {
    let j = (i / 20) as u64;
    let t = today();
    let back = |days: u64| t - Days::new(days);
    // Old claims (paid, rejected) came in over the year, one batch a week.
    let weekly = date(YEAR, 1, 6) + Days::new(7 * (j % 40));
    let from = |submit: NaiveDate, steps: &[(u64, Step)]| {
        steps
            .iter()
            .map(|&(after, step)| (submit + Days::new(after), step))
            .collect::<Vec<_>>()
    };
    let surveyed = |approve| {
        vec![
            (0, Step::Intake),
            (2, Step::Assign),
            (10, Step::Survey { approve }),
        ]
    };
    let through_publicity = || {
        let mut steps = surveyed(true);
        steps.extend([(14, Step::Open), (24, Step::Close)]);
        steps
    };
    match target(i) {
        Target::Received => from(back(j % 15), &[(0, Step::Intake)]),
        Target::UnderSurvey => from(back(3 + j % 38), &[(0, Step::Intake), (2, Step::Assign)]),
        Target::Rejected => from(weekly, &surveyed(false)),
        Target::Recommended => from(back(12 + j % 30), &surveyed(true)),
        Target::InPublicity => {
            let mut steps = surveyed(true);
            steps.push((14, Step::Open));
            from(back(14 + j % 10), &steps)
        }
        Target::PublicityPassed => from(back(24 + j % 10), &through_publicity()),
        Target::Filed => {
            let mut steps = through_publicity();
            steps.push((24, Step::File));
            from(back(24 + j % 10), &steps)
        }
        Target::Paid => {
            let mut steps = through_publicity();
            steps.extend([(24, Step::File), (30, Step::Pay), (32, Step::Contacts)]);
            from(weekly, &steps)
        }
    }
}

/// Runs claim `i`'s `steps` of one day; returns its claim id.
async fn run_steps(
    channel: Channel,
    i: usize,
    mut claim_id: String,
    day: NaiveDate,
    steps: Vec<Step>,
) -> String {
    for step in steps {
        let id = claim_id.clone();
        match step {
            Step::Intake => claim_id = intake(&channel, i, day).await,
            Step::Assign => {
                SurveyServiceClient::new(channel.clone())
                    .assign_survey(pb::AssignSurveyRequest {
                        request_id: request_id(),
                        claim_id: id,
                        surveyor: SURVEYOR.into(),
                        insurer: INSURER.into(),
                        assigned_by: "county".into(),
                    })
                    .await
                    .expect("AssignSurvey");
            }
            Step::Survey { approve } => {
                // Above 1.5 x the poverty line the household is not eligible.
                let (income, reason) = if approve {
                    ("3000.00", "eligible")
                } else {
                    ("9000.00", "income above the line")
                };
                let mut survey = SurveyServiceClient::new(channel.clone());
                survey
                    .record_findings(pb::RecordFindingsRequest {
                        request_id: request_id(),
                        claim_id: id.clone(),
                        surveyor: SURVEYOR.into(),
                        verified_income_per_capita_yuan: income.into(),
                        verified_cost_yuan: format!("{}.00", cost_yuan(i)),
                        notes: String::new(),
                        evidence_refs: vec![],
                        prior_incomes_per_capita_yuan: Vec::new(),
                        income_evidence_refs: Vec::new(),
                    })
                    .await
                    .expect("RecordFindings");
                survey
                    .recommend(pb::RecommendRequest {
                        request_id: request_id(),
                        claim_id: id,
                        surveyor: SURVEYOR.into(),
                        approve,
                        reason: reason.into(),
                    })
                    .await
                    .expect("Recommend");
            }
            Step::Open => {
                PublicityServiceClient::new(channel.clone())
                    .open_publicity(pb::OpenPublicityRequest {
                        request_id: request_id(),
                        claim_id: id,
                        opened_by: "village".into(),
                    })
                    .await
                    .expect("OpenPublicity");
            }
            Step::Close => {
                PublicityServiceClient::new(channel.clone())
                    .close_publicity(pb::ClosePublicityRequest {
                        request_id: request_id(),
                        claim_id: id,
                        closed_by: "township".into(),
                    })
                    .await
                    .expect("ClosePublicity");
            }
            Step::File => {
                PayoutServiceClient::new(channel.clone())
                    .file_claim(pb::FileClaimRequest {
                        request_id: request_id(),
                        claim_id: id,
                        filed_by: "county".into(),
                        cross_check_note: "ok".into(),
                    })
                    .await
                    .expect("FileClaim");
            }
            Step::Pay => {
                PayoutServiceClient::new(channel.clone())
                    .pay_claim(pb::PayClaimRequest {
                        request_id: request_id(),
                        bank_reference: format!("TX-{id}"),
                        claim_id: id,
                        paid_by: "insurer".into(),
                    })
                    .await
                    .expect("PayClaim");
            }
            Step::Contacts => {
                FollowUpServiceClient::new(channel.clone())
                    .assign_contacts(pb::AssignContactsRequest {
                        request_id: request_id(),
                        claim_id: id,
                        contacts: vec![pb::ContactPerson {
                            name: format!("干部{}", i % 97),
                            work_unit: "乡政府".into(),
                            phone: format!("138{:08}", i),
                            phone_masked: String::new(),
                        }],
                        assigned_by: "county office".into(),
                    })
                    .await
                    .expect("AssignContacts");
            }
        }
    }
    claim_id
}

/// Household `i` (one person, the `i`th ID number: 999 a birth date) and
/// its illness claim; returns the claim id.
async fn intake(channel: &Channel, i: usize, day: NaiveDate) -> String {
    let birth = date(1950, 1, 1) + Days::new((i / 999) as u64);
    let household = EnrollmentServiceClient::new(channel.clone())
        .enroll_household(pb::EnrollHouseholdRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: YEAR,
            village_code: VILLAGES[i % VILLAGES.len()].into(),
            household_type: pb::HouseholdType::UnstableEscaped.into(),
            head: Some(pb::Person {
                id_number: resident_id(&birth.format("%Y%m%d").to_string(), (i % 999) as u32 + 1),
                name: format!("户主{i}"),
                relation: String::new(),
            }),
            members: vec![],
            bank_account: format!("62170001{i:08}"),
        })
        .await
        .expect("EnrollHousehold")
        .into_inner()
        .household_id;
    let event = (day - Days::new(10)).max(date(YEAR, 1, 1));
    ClaimServiceClient::new(channel.clone())
        .submit_claim(pb::SubmitClaimRequest {
            request_id: request_id(),
            household_id: household,
            relief_kind: pb::ReliefKind::Illness.into(),
            channel: pb::Channel::DepartmentReferral.into(),
            event_date: event.to_string(),
            event_reference: format!("admission-{i}"),
            claimed_cost_yuan: format!("{}.00", cost_yuan(i)),
            description: String::new(),
            submitted_by: "county office".into(),
        })
        .await
        .expect("SubmitClaim")
        .into_inner()
        .claim
        .expect("claim")
        .claim_id
}

/// Seeds `claims` claims day by day, the server's clock on each day, up to
/// `IN_FLIGHT` claims' steps at once; returns the number of calls.
async fn seed(s: &TestServer, claims: usize) -> usize {
    s.set_date(date(YEAR, 1, 2));
    // Every household is one person; the pool holds twice as many.
    register_county_of(s, (claims as u64 * 20).max(20_000)).await;
    put_policy(s, YEAR).await;
    let plans: Vec<_> = (0..claims).map(plan).collect();
    // The premium covers every payout and nine tenths of the filed claims'
    // reservations: the last filings raise top-up flags.
    let paid: i64 = (0..claims)
        .filter(|&i| target(i) == Target::Paid)
        .map(|i| relief_fen(cost_yuan(i)))
        .sum();
    let filed: i64 = (0..claims)
        .filter(|&i| target(i) == Target::Filed)
        .map(|i| relief_fen(cost_yuan(i)))
        .sum();
    let premium_yuan = (paid + filed * 9 / 10) / 100 + 1_000;
    premium(s, YEAR, &format!("{premium_yuan}.00"))
        .await
        .expect("RecordPremium");
    let mut calls = 4;

    let mut days: BTreeMap<NaiveDate, BTreeMap<usize, Vec<Step>>> = BTreeMap::new();
    for (i, plan) in plans.iter().enumerate() {
        for &(day, step) in plan {
            assert!(day <= today(), "claim {i}: {step:?} on {day}");
            days.entry(day)
                .or_default()
                .entry(i)
                .or_default()
                .push(step);
            calls += step.calls();
        }
    }
    let mut ids = vec![String::new(); claims];
    for (day, jobs) in days {
        s.set_date(day);
        let mut tasks = JoinSet::new();
        for (i, steps) in jobs {
            if tasks.len() >= IN_FLIGHT {
                let (i, id) = tasks.join_next().await.expect("a task").expect("seeding");
                ids[i] = id;
            }
            let (channel, id) = (s.channel.clone(), ids[i].clone());
            tasks.spawn(async move { (i, run_steps(channel, i, id, day, steps).await) });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, id) = done.expect("seeding");
            ids[i] = id;
        }
    }
    s.set_date(today());
    calls
}

/// What one load of the dashboard took: end to end, then each RPC.
struct Load {
    total: Duration,
    info: Duration,
    pool: Duration,
    flags: Duration,
    counts: Duration,
    deadlines: Duration,
}

async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = call.await;
    (out, started.elapsed())
}

/// What the dashboard shows, to print once.
struct Shown {
    counts: pb::ClaimCounts,
    deadlines: pb::ListDeadlinesResponse,
    flags: usize,
    pool: pb::PoolBalance,
}

/// One load of the dashboard of `COUNTY`, as Dashboard.tsx makes it.
async fn load(channel: &Channel) -> (Load, Shown) {
    let started = Instant::now();
    let (info, info_time) = timed(
        ServiceInfoServiceClient::new(channel.clone())
            .get_service_info(pb::GetServiceInfoRequest {}),
    )
    .await;
    let info = info.expect("GetServiceInfo").into_inner();
    let year: i32 = info.today[..4].parse().expect("a year");
    let mut pool_client = LedgerServiceClient::new(channel.clone());
    let mut flags_client = LedgerServiceClient::new(channel.clone());
    let mut claims_client = ClaimServiceClient::new(channel.clone());
    let mut deadlines_client = DeadlineServiceClient::new(channel.clone());
    let (pool, flags, counts, deadlines) = tokio::join!(
        timed(pool_client.get_pool_balance(pb::PoolRequest {
            county_code: COUNTY.into(),
            policy_year: year,
        })),
        timed(flags_client.list_top_up_flags(pb::ListTopUpFlagsRequest {
            county_code: COUNTY.into(),
            policy_year: year,
            include_cleared: false,
        })),
        timed(claims_client.count_claims(pb::CountClaimsRequest {
            county_code: COUNTY.into(),
        })),
        timed(deadlines_client.list_deadlines(pb::ListDeadlinesRequest {
            county_code: COUNTY.into(),
            within_working_days: 5,
            ..Default::default()
        })),
    );
    let total = started.elapsed();
    let shown = Shown {
        pool: pool.0.expect("GetPoolBalance").into_inner(),
        flags: flags.0.expect("ListTopUpFlags").into_inner().flags.len(),
        counts: counts.0.expect("CountClaims").into_inner(),
        deadlines: deadlines.0.expect("ListDeadlines").into_inner(),
    };
    let load = Load {
        total,
        info: info_time,
        pool: pool.1,
        flags: flags.1,
        counts: counts.1,
        deadlines: deadlines.1,
    };
    (load, shown)
}

fn main() {
    let claims = arg("--claims", 10_000).max(20);
    let runs = arg("--runs", 20).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(bench(claims, runs));
}

async fn bench(claims: usize, runs: usize) {
    let s = TestServer::start(date(YEAR, 1, 2)).await;
    let backend = if s.database_url().starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    let started = Instant::now();
    let calls = seed(&s, claims).await;
    let seeding = started.elapsed();
    println!(
        "{backend}: seeded {} households and claims in {:.1} s ({} calls, {IN_FLIGHT} in flight, {:.0} calls/s)",
        thousands(claims),
        seeding.as_secs_f64(),
        thousands(calls),
        calls as f64 / seeding.as_secs_f64()
    );

    let (_, shown) = load(&s.channel).await;
    let by_state: Vec<String> = shown
        .counts
        .counts
        .iter()
        .map(|c| {
            let state = pb::ClaimState::try_from(c.state).map_or("?", |st| st.as_str_name());
            let state = state.trim_start_matches("CLAIM_STATE_").to_lowercase();
            format!("{state} {}", c.claims)
        })
        .collect();
    assert_eq!(shown.counts.total, claims as u64, "every claim counted");
    let truncated = if shown.deadlines.truncated {
        " (truncated)"
    } else {
        ""
    };
    println!(
        "  shown: {} claims ({}); deadlines {} listed, {} overdue, {} due within 5 working days{}; \
         {} open top-up flags; pool {} yuan, available {} yuan",
        shown.counts.total,
        by_state.join(", "),
        shown.deadlines.deadlines.len(),
        shown.deadlines.overdue,
        shown.deadlines.due_soon,
        truncated,
        shown.flags,
        shown.pool.pool_yuan,
        shown.pool.available_yuan,
    );

    let mut loads = Vec::with_capacity(runs);
    for _ in 0..runs {
        loads.push(load(&s.channel).await.0);
    }
    let of = |f: fn(&Load) -> Duration| median(loads.iter().map(f).collect());
    let total = of(|l| l.total);
    let max = loads.iter().map(|l| l.total).max().expect("a load");

    let mut alone = Vec::with_capacity(runs);
    let mut info = ServiceInfoServiceClient::new(s.channel.clone());
    for _ in 0..runs {
        let (r, t) = timed(info.get_service_info(pb::GetServiceInfoRequest {})).await;
        r.expect("GetServiceInfo");
        alone.push(t);
    }
    let alone = median(alone);

    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(s.database_url())
        .await
        .expect("connect for the anchor");
    let mut bare = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (rows, t) = timed(
            sqlx::query("SELECT state, COUNT(*) FROM claims WHERE county_code = $1 GROUP BY state")
                .bind(COUNTY)
                .fetch_all(&mut conn),
        )
        .await;
        assert_eq!(
            rows.expect("the bare count").len(),
            shown.counts.counts.len()
        );
        bare.push(t);
    }
    conn.close().await.expect("close");
    let bare = median(bare);

    println!(
        "  per RPC, median of {runs} loads: GetServiceInfo {:.1} ms, then at once GetPoolBalance {:.1} ms, \
         ListTopUpFlags {:.1} ms, CountClaims {:.1} ms, ListDeadlines {:.1} ms",
        ms(of(|l| l.info)),
        ms(of(|l| l.pool)),
        ms(of(|l| l.flags)),
        ms(of(|l| l.counts)),
        ms(of(|l| l.deadlines)),
    );
    println!(
        "{backend}: dashboard {} claims: median {:.0} ms, max {:.0} ms over {runs} loads \
         (target {:.0} ms, {:.2}); anchors: GetServiceInfo {:.1} ms, bare SQL count {:.1} ms",
        thousands(claims),
        ms(total),
        ms(max),
        ms(TARGET),
        total.as_secs_f64() / TARGET.as_secs_f64(),
        ms(alone),
        ms(bare),
    );
    s.stop().await;
}
