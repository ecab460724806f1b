//! A year in the life of a county, through the real server, with the clock
//! moved day by day from January 2026 to the end of March 2027.
//!
//! A few hundred households are enrolled; claims come in through every
//! channel across the year (village applications, emergencies with an
//! advance first, department referrals from a screening run); the insurer
//! surveys them, the village posts them, some are objected to and surveyed
//! again, the county files them and the insurer pays. Late-December claims
//! have survey deadlines in a year the built-in calendar does not cover;
//! the next year's calendar is loaded in January. One transfer comes back
//! from the bank after payout, the account is corrected and the payout
//! retried; one advance is larger than its relief. CloseYear is refused
//! early and accepted once the year is settled.
//!
//! At the end: every event was paid at most once, the reconciliation ties,
//! and every payout recomputed here, with this file's own arithmetic, from
//! the assessment on the wire and the policy version it names, matches to
//! the fen. The workload is drawn from a seeded generator; the seed is
//! printed, and `FANGPIN_YEAR_SEED` replays it.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Days, NaiveDate, Weekday};
use fangpin_domain::Fen;
use fangpin_proto::tonic::{Code, Status};
use fangpin_proto::v1 as pb;
use fangpin_server::ServerOptions;
use fangpin_tests::flow::{COUNTY, INSURER, SURVEYOR, put_policy, register_county};
use fangpin_tests::{TestServer, date, request_id, resident_id};

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

const VILLAGES: [&str; 3] = ["130426100201", "130426100202", "130426203001"];
const HOUSEHOLDS_2026: u32 = 300;
const HOUSEHOLDS_2027: u32 = 40;
const OFFICE: &str = "county-office";

/// SplitMix64: small, seedable, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Amounts on the wire; a pool balance may be negative (never held back).
fn fen(yuan: &str) -> i64 {
    if let Some(positive) = yuan.strip_prefix('-') {
        return -fen(positive);
    }
    Fen::parse_yuan(yuan)
        .unwrap_or_else(|e| panic!("{yuan:?} is not an amount: {e}"))
        .get()
}

fn yuan(fen: i64) -> String {
    Fen::new(fen).to_string()
}

fn add_days(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_add_days(Days::new(n)).expect("date in range")
}

fn is_weekday(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// One enrolled household, as the test knows it.
#[derive(Clone)]
struct Household {
    id: String,
    year: i32,
    kind: pb::HouseholdType,
    head_id_number: String,
    account: String,
}

/// Where a claim is in the test's own workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Assign,
    Findings,
    Recommend,
    Open,
    Close,
    File,
    Pay,
    /// Paid, and the bank will send the transfer back.
    Returned,
    /// Paid and settled, or rejected.
    Done,
}

/// A claim the test is driving, with what it has decided for it.
struct Case {
    claim_id: String,
    household: usize,
    kind: pb::ReliefKind,
    channel: pb::Channel,
    event_reference: String,
    verified_cost_fen: i64,
    verified_income_fen: i64,
    /// Raise one objection during publicity, so the claim is surveyed again.
    object: bool,
    objected: bool,
    /// The cost the second survey finds, after an objection.
    reverified_cost_fen: i64,
    /// The bank returns this claim's first transfer.
    return_once: bool,
    step: Step,
    next: NaiveDate,
}

struct Year {
    s: TestServer,
    rng: Rng,
    households: Vec<Household>,
    cases: Vec<Case>,
    /// (household, kind, event) -> claims paid for it.
    paid_events: HashMap<(String, i32, String), u32>,
    log: BTreeMap<&'static str, u32>,
    /// Each enrolled person gets the next birth date: ID numbers never repeat.
    next_person: u32,
    /// The claim whose transfer the bank returns, once chosen.
    returned: Option<String>,
    /// The emergency claim whose advance (5,000) exceeds its relief (3,000).
    big_advance: Option<String>,
    tried_duplicate: bool,
    closed_2026: Option<(NaiveDate, pb::CloseYearResponse)>,
}

/// A valid resident ID number, different for every `n`: born `n` days after
/// the first of January of `from_year`.
fn person_id(from_year: i32, n: u32) -> String {
    let birth = add_days(date(from_year, 1, 1), u64::from(n));
    resident_id(&birth.format("%Y%m%d").to_string(), n % 1000)
}

impl Year {
    fn count(&mut self, what: &'static str) {
        *self.log.entry(what).or_default() += 1;
    }

    async fn enroll(&mut self, year: i32, n: u32) {
        for i in 0..n {
            let sequence = (year as u32 % 10) * 1000 + i;
            let kind = if self.rng.chance(60) {
                pb::HouseholdType::UnstableEscaped
            } else {
                pb::HouseholdType::Marginal
            };
            let head_id_number = person_id(1950, self.next_person);
            let members = (0..self.rng.below(3))
                .map(|m| pb::Person {
                    id_number: person_id(2005, self.next_person + 1 + m as u32),
                    name: format!("成员{sequence}-{m}"),
                    relation: "child".into(),
                })
                .collect();
            self.next_person += 3;
            let account = format!("6217{year}{sequence:08}");
            let household = self
                .s
                .enrollment()
                .enroll_household(pb::EnrollHouseholdRequest {
                    request_id: request_id(),
                    county_code: COUNTY.into(),
                    policy_year: year,
                    village_code: VILLAGES[i as usize % VILLAGES.len()].into(),
                    household_type: kind.into(),
                    head: Some(pb::Person {
                        id_number: head_id_number.clone(),
                        name: format!("户主{sequence}"),
                        relation: String::new(),
                    }),
                    members,
                    bank_account: account.clone(),
                })
                .await
                .unwrap_or_else(|e| panic!("enrol {year}/{i}: {e:?}"))
                .into_inner();
            self.households.push(Household {
                id: household.household_id,
                year,
                kind,
                head_id_number,
                account,
            });
        }
    }

    /// A claim through the village or as an emergency, costed so that most
    /// qualify and some do not.
    async fn submit(&mut self, today: NaiveDate, channel: pb::Channel) {
        self.submit_as(today, channel, None).await;
    }

    /// `submit`, or with (household, kind, cost, income, advance) fixed.
    async fn submit_as(
        &mut self,
        today: NaiveDate,
        channel: pb::Channel,
        fixed: Option<(usize, pb::ReliefKind, i64, i64, i64)>,
    ) -> String {
        let year = today.year();
        let candidates: Vec<usize> = (0..self.households.len())
            .filter(|&h| self.households[h].year == year)
            .collect();
        let household = candidates[self.rng.below(candidates.len() as u64) as usize];
        let kinds = [
            pb::ReliefKind::Illness,
            pb::ReliefKind::Schooling,
            pb::ReliefKind::Accident,
            pb::ReliefKind::Industry,
        ];
        let kind = if channel == pb::Channel::Emergency {
            pb::ReliefKind::Accident
        } else {
            kinds[self.rng.below(4) as usize]
        };
        let (household, kind) = fixed.map_or((household, kind), |f| (f.0, f.1));
        let (cost_fen, income_fen) = if let Some(f) = fixed {
            (f.2, f.3)
        } else if channel == pb::Channel::Emergency {
            // A collapse of basic living: eligible, and owed more than the advance.
            ((20_000 + self.rng.below(60_000) as i64) * 100, 250_000)
        } else {
            (
                (3_000 + self.rng.below(120_000) as i64) * 100 + self.rng.below(100) as i64,
                (2_000 + self.rng.below(5_000) as i64) * 100,
            )
        };
        let start = NaiveDate::from_ymd_opt(year, 1, 1).expect("valid");
        let event_date = today
            .checked_sub_days(Days::new(self.rng.below(20)))
            .expect("valid")
            .max(start);
        let event_reference = format!("事件-{year}-{:05}", self.cases.len());
        let claim = self
            .s
            .claims()
            .submit_claim(pb::SubmitClaimRequest {
                request_id: request_id(),
                household_id: self.households[household].id.clone(),
                relief_kind: kind.into(),
                channel: channel.into(),
                event_date: event_date.to_string(),
                event_reference: event_reference.clone(),
                claimed_cost_yuan: yuan(cost_fen),
                description: "村委会代为申请".into(),
                submitted_by: "village-committee".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("submit on {today}: {e:?}"))
            .into_inner()
            .claim
            .expect("claim");
        self.count(match channel {
            pb::Channel::Emergency => "claims: emergency",
            _ => "claims: village application",
        });
        if channel == pb::Channel::Emergency {
            // 遇困即扶: the township head approves, and help comes on the day.
            self.s
                .claims()
                .approve_emergency(pb::ApproveEmergencyRequest {
                    request_id: request_id(),
                    claim_id: claim.claim_id.clone(),
                    amount_yuan: yuan(fixed.map_or(200_000, |f| f.4)),
                    approved_by: "township-head".into(),
                    reason: "房屋失火，基本生活无着".into(),
                })
                .await
                .unwrap_or_else(|e| panic!("approval on {today}: {e:?}"));
            self.s
                .claims()
                .pay_emergency_advance(pb::PayEmergencyAdvanceRequest {
                    request_id: request_id(),
                    claim_id: claim.claim_id.clone(),
                    amount_yuan: yuan(fixed.map_or(200_000, |f| f.4)),
                    approved_by: "township-head".into(),
                    reason: "房屋失火，基本生活无着".into(),
                })
                .await
                .unwrap_or_else(|e| panic!("advance on {today}: {e:?}"));
            self.count("advances");
        }
        let object = fixed.is_none() && self.rng.chance(12);
        let reverified_cost_fen = cost_fen - self.rng.below(2_000) as i64 * 100;
        self.cases.push(Case {
            claim_id: claim.claim_id,
            household,
            kind,
            channel,
            event_reference,
            verified_cost_fen: cost_fen,
            verified_income_fen: income_fen,
            object,
            objected: false,
            reverified_cost_fen,
            return_once: false,
            step: Step::Assign,
            next: add_days(today, 1),
        });
        self.cases.last().expect("pushed").claim_id.clone()
    }

    /// Moves every claim whose next step is due today by one step.
    async fn work(&mut self, today: NaiveDate) {
        if !is_weekday(today) {
            return;
        }
        for i in 0..self.cases.len() {
            if self.cases[i].step == Step::Done || self.cases[i].next > today {
                continue;
            }
            let pause = 1 + self.rng.below(3);
            let step = self.step(i, today).await;
            let case = &mut self.cases[i];
            case.step = step.0;
            case.next = step.1.unwrap_or(add_days(today, pause));
        }
    }

    /// Does the due step of case `i`; returns its next step and, when it is
    /// fixed by the claim (the publicity period), its date.
    async fn step(&mut self, i: usize, today: NaiveDate) -> (Step, Option<NaiveDate>) {
        let claim_id = self.cases[i].claim_id.clone();
        let step = self.cases[i].step;
        match step {
            Step::Assign => {
                self.s
                    .survey()
                    .assign_survey(pb::AssignSurveyRequest {
                        request_id: request_id(),
                        claim_id,
                        surveyor: SURVEYOR.into(),
                        insurer: INSURER.into(),
                        assigned_by: OFFICE.into(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("assign {i} on {today}: {e:?}"));
                (Step::Findings, None)
            }
            Step::Findings => {
                let case = &self.cases[i];
                let cost = if case.objected {
                    case.reverified_cost_fen
                } else {
                    case.verified_cost_fen
                };
                self.s
                    .survey()
                    .record_findings(pb::RecordFindingsRequest {
                        request_id: request_id(),
                        claim_id,
                        surveyor: SURVEYOR.into(),
                        verified_income_per_capita_yuan: yuan(case.verified_income_fen),
                        verified_cost_yuan: yuan(cost),
                        notes: if case.objected {
                            "异议后复核".into()
                        } else {
                            "入户核实".into()
                        },
                        evidence_refs: vec![],
                        prior_incomes_per_capita_yuan: Vec::new(),
                        income_evidence_refs: Vec::new(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("findings {i} on {today}: {e:?}"));
                (Step::Recommend, Some(today))
            }
            Step::Recommend => {
                let claim = self.claim(&claim_id).await;
                let assessment = claim.assessment.expect("findings recorded");
                let approve = assessment.eligible && fen(&assessment.amount_yuan) > 0;
                self.s
                    .survey()
                    .recommend(pb::RecommendRequest {
                        request_id: request_id(),
                        claim_id,
                        surveyor: SURVEYOR.into(),
                        approve,
                        reason: if approve {
                            "两项条件均符合".into()
                        } else {
                            "不符合救助条件".into()
                        },
                    })
                    .await
                    .unwrap_or_else(|e| panic!("recommend {i} on {today}: {e:?}"));
                if approve {
                    (Step::Open, None)
                } else {
                    self.count("claims rejected");
                    (Step::Done, None)
                }
            }
            Step::Open => {
                let claim = self
                    .s
                    .publicity()
                    .open_publicity(pb::OpenPublicityRequest {
                        request_id: request_id(),
                        claim_id: claim_id.clone(),
                        opened_by: OFFICE.into(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("open {i} on {today}: {e:?}"))
                    .into_inner()
                    .claim
                    .expect("claim");
                let last: NaiveDate = claim
                    .publicity_last_objection_day
                    .parse()
                    .expect("a last objection day");
                let case = &self.cases[i];
                if case.object && !case.objected {
                    // Objected to on the third day of the notice.
                    return (Step::Close, Some(add_days(today, 2).min(last)));
                }
                (Step::Close, Some(add_days(last, 1)))
            }
            Step::Close => {
                let case = &self.cases[i];
                if case.object && !case.objected {
                    self.s
                        .publicity()
                        .raise_objection(pb::RaiseObjectionRequest {
                            request_id: request_id(),
                            claim_id,
                            objector: "村民代表".into(),
                            reason: "家中另有经营收入".into(),
                        })
                        .await
                        .unwrap_or_else(|e| panic!("objection {i} on {today}: {e:?}"));
                    self.cases[i].objected = true;
                    self.count("objections");
                    return (Step::Findings, None);
                }
                self.s
                    .publicity()
                    .close_publicity(pb::ClosePublicityRequest {
                        request_id: request_id(),
                        claim_id,
                        closed_by: OFFICE.into(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("close publicity {i} on {today}: {e:?}"));
                (Step::File, None)
            }
            Step::File => {
                self.s
                    .payout()
                    .file_claim(pb::FileClaimRequest {
                        request_id: request_id(),
                        claim_id,
                        filed_by: OFFICE.into(),
                        cross_check_note: "车辆、房产、工商、财政供养比对无异常".into(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("file {i} on {today}: {e:?}"));
                (Step::Pay, None)
            }
            Step::Pay => {
                self.s
                    .payout()
                    .pay_claim(pb::PayClaimRequest {
                        request_id: request_id(),
                        claim_id: claim_id.clone(),
                        paid_by: "insurer".into(),
                        bank_reference: format!("TX{today}-{i:04}"),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("pay {i} on {today}: {e:?}"));
                let (household, kind, event_reference, channel, return_once) = {
                    let case = &self.cases[i];
                    (
                        self.households[case.household].id.clone(),
                        case.kind,
                        case.event_reference.clone(),
                        case.channel,
                        case.return_once,
                    )
                };
                let key = (household, kind as i32, event_reference.clone());
                *self.paid_events.entry(key.clone()).or_default() += 1;
                self.count("claims paid");
                if !self.tried_duplicate && channel == pb::Channel::VillageApplication {
                    // The same event again, retyped in full-width capitals:
                    // one event, one payout.
                    self.tried_duplicate = true;
                    let retyped: String = event_reference
                        .chars()
                        .map(|c| match c {
                            '!'..='~' => char::from_u32(c.to_ascii_uppercase() as u32 + 0xFEE0)
                                .expect("full-width"),
                            other => other,
                        })
                        .collect();
                    let e = self
                        .s
                        .claims()
                        .submit_claim(pb::SubmitClaimRequest {
                            request_id: request_id(),
                            household_id: key.0.clone(),
                            relief_kind: kind.into(),
                            channel: pb::Channel::Emergency.into(),
                            event_date: today.to_string(),
                            event_reference: format!(" {retyped} "),
                            claimed_cost_yuan: "1000.00".into(),
                            description: String::new(),
                            submitted_by: "township".into(),
                        })
                        .await
                        .expect_err("a paid event is not claimed again");
                    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
                    assert!(e.message().contains(&claim_id), "{e:?}");
                    self.count("second claims for a paid event refused");
                }
                if return_once {
                    self.cases[i].return_once = false;
                    return (Step::Returned, Some(add_days(today, 5)));
                }
                (Step::Done, None)
            }
            Step::Returned => {
                // The account was closed: the transfer comes back days later.
                self.s
                    .payout()
                    .record_payout_failure(pb::RecordPayoutFailureRequest {
                        request_id: request_id(),
                        claim_id: claim_id.clone(),
                        recorded_by: "insurer".into(),
                        bank_reference: format!("RET{today}-{i:04}"),
                        reason: "账户已销户".into(),
                    })
                    .await
                    .unwrap_or_else(|e| panic!("return {i} on {today}: {e:?}"));
                let case = &self.cases[i];
                let key = (
                    self.households[case.household].id.clone(),
                    case.kind as i32,
                    case.event_reference.clone(),
                );
                *self.paid_events.get_mut(&key).expect("paid before") -= 1;
                let household = self.households[case.household].id.clone();
                let new_account = format!("62284800{:011}", i);
                self.s
                    .enrollment()
                    .correct_bank_account(pb::CorrectBankAccountRequest {
                        request_id: request_id(),
                        household_id: household,
                        bank_account: new_account.clone(),
                        reason: "户主新开一卡通".into(),
                        corrected_by: OFFICE.into(),
                    })
                    .await
                    .expect("correct the account");
                self.households[self.cases[i].household].account = new_account;
                self.s
                    .payout()
                    .retry_payout(pb::RetryPayoutRequest {
                        request_id: request_id(),
                        claim_id,
                        retried_by: OFFICE.into(),
                        reason: "account corrected".into(),
                    })
                    .await
                    .expect("retry");
                self.count("bank returns after payout");
                (Step::Pay, None)
            }
            Step::Done => (Step::Done, None),
        }
    }

    async fn claim(&self, claim_id: &str) -> pb::Claim {
        self.s
            .claims()
            .get_claim(pb::GetClaimRequest {
                claim_id: claim_id.into(),
            })
            .await
            .expect("get claim")
            .into_inner()
            .claim
            .expect("claim")
    }

    /// The county office screens the medical insurance data in June: an
    /// import of the month's settlements, a run, and referral claims.
    async fn screening(&mut self, today: NaiveDate) {
        let mut rows = vec![
            "id_number,settlement_date,inpatient,total_cost,reimbursed,out_of_pocket".to_string(),
        ];
        let mut screened = 0;
        for h in 0..self.households.len() {
            let household = &self.households[h];
            if household.year != 2026 || h % 23 != 5 {
                continue;
            }
            let out_of_pocket = 25_000 + (h as i64 * 37) % 40_000;
            rows.push(format!(
                "{},2026-05-{:02},1,{}.00,{}.00,{}.00",
                household.head_id_number,
                1 + h % 28,
                out_of_pocket * 2,
                out_of_pocket,
                out_of_pocket
            ));
            screened += 1;
        }
        let bytes = (rows.join("\n") + "\n").into_bytes();
        let header = pb::FeedHeader {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: 2026,
            kind: pb::FeedKind::Medical.into(),
            encoding: pb::FeedEncoding::Utf8.into(),
            file_name: "医保结算2026-05.csv".into(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            size_bytes: bytes.len() as u64,
        };
        let messages = vec![
            pb::ImportFeedRequest {
                part: Some(pb::import_feed_request::Part::Header(header)),
            },
            pb::ImportFeedRequest {
                part: Some(pb::import_feed_request::Part::Data(bytes.into())),
            },
        ];
        let import = self
            .s
            .screening()
            .import_feed(tokio_stream::iter(messages))
            .await
            .expect("import the medical feed")
            .into_inner();
        assert_eq!(import.rows_accepted, screened);
        let run = self
            .s
            .screening()
            .run_screening(pb::RunScreeningRequest {
                request_id: request_id(),
                county_code: COUNTY.into(),
                as_of: today.to_string(),
            })
            .await
            .expect("run screening")
            .into_inner();
        let made = self
            .s
            .screening()
            .create_screening_claims(pb::CreateScreeningClaimsRequest {
                request_id: request_id(),
                run_id: run.run_id,
                submitted_by: OFFICE.into(),
            })
            .await
            .expect("screening claims")
            .into_inner();
        assert!(made.created > 0, "the run finds candidates: {made:?}");
        // The household that applied through its village in May for the
        // same costs is covered by that claim, not claimed again.
        assert!(made.already_claimed >= 1, "{made:?}");
        for claim_id in made.claim_ids {
            let claim = self.claim(&claim_id).await;
            let household = self
                .households
                .iter()
                .position(|h| h.id == claim.household_id)
                .expect("an enrolled household");
            self.cases.push(Case {
                claim_id,
                household,
                kind: pb::ReliefKind::Illness,
                channel: pb::Channel::DepartmentReferral,
                event_reference: claim.event_reference.clone(),
                verified_cost_fen: fen(&claim.claimed_cost_yuan),
                verified_income_fen: 300_000,
                object: false,
                objected: false,
                reverified_cost_fen: 0,
                return_once: false,
                step: Step::Assign,
                next: add_days(today, 1),
            });
            self.count("claims: department referral");
        }
    }
}

fn precondition_kind(e: &Status) -> String {
    use tonic_types::StatusExt;
    e.get_details_precondition_failure()
        .and_then(|p| p.violations.first().map(|v| v.r#type.clone()))
        .unwrap_or_default()
}

async fn close(s: &TestServer, year: i32) -> Result<pb::CloseYearResponse, Status> {
    s.ledger()
        .close_year(pb::CloseYearRequest {
            request_id: request_id(),
            county_code: COUNTY.into(),
            policy_year: year,
            closed_by: "finance bureau".into(),
        })
        .await
        .map(|r| r.into_inner())
}

/// Made-up 2027 days (tests/data/calendar-2027-TEST-ONLY.txt, see its header).
fn test_calendar_2027() -> std::sync::Arc<fangpin_domain::calendar::WorkCalendar> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/calendar-2027-TEST-ONLY.txt");
    std::sync::Arc::new(
        fangpin_server::write_path::calendar::load_file(&path).expect("the test calendar"),
    )
}

fn seed() -> u64 {
    std::env::var("FANGPIN_YEAR_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x2026_1202)
}

/// The relief this file computes for a claim from its assessment's verified
/// figures and the rules of the policy version it names: the income
/// condition, the expenditure condition, the bands summed exactly and
/// rounded once, half away from zero, then the caps.
fn recompute(policy: &pb::Policy, kind: pb::HouseholdType, claim: &pb::Claim) -> i64 {
    let a = claim.assessment.as_ref().expect("assessment");
    let rule = policy
        .rules
        .iter()
        .find(|r| r.household_type == kind as i32 && r.relief_kind == claim.relief_kind)
        .expect("the policy has the claim's rule");
    let multiplier: Decimal = policy.income_multiplier.parse().expect("decimal");
    let line = Decimal::from(fen(&policy.poverty_line_yuan)) * multiplier;
    let income = Decimal::from(fen(&a.verified_income_per_capita_yuan));
    let cost = fen(&a.verified_cost_yuan);
    let threshold = fen(&rule.threshold_yuan);
    let expenditure_met = if rule.comparison == pb::Comparison::AtLeast as i32 {
        cost >= threshold
    } else {
        cost > threshold
    };
    if income >= line || !expenditure_met {
        return 0;
    }
    let excess = (cost - threshold).max(0);
    let mut total = Decimal::ZERO;
    for (b, band) in rule.bands.iter().enumerate() {
        let from = fen(&band.from_yuan);
        if excess <= from {
            break;
        }
        let to = rule
            .bands
            .get(b + 1)
            .map_or(excess, |next| fen(&next.from_yuan).min(excess));
        let rate: Decimal = band.rate.parse().expect("rate");
        total += Decimal::from(to - from) * rate;
    }
    let rounded = total
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .try_into()
        .map(|v: i64| v)
        .expect("fits");
    rounded
        .min(fen(&rule.cap_yuan))
        .min(fen(&policy.case_cap_yuan))
}

/// The amount from the assessment message alone, as an auditor without the
/// policy would check it: each band's share is its width times its rate,
/// their exact sum is rounded once half away from zero, and the caps bound
/// it. Every intermediate figure the message states is checked on the way.
fn from_the_wire_alone(a: &pb::Assessment) -> i64 {
    assert_eq!(
        a.rounding,
        "half_away_from_zero_once_on_the_sum_of_exact_band_shares"
    );
    assert_eq!(a.income_comparison, "below");
    let income_met = fen(&a.verified_income_per_capita_yuan) < fen(&a.income_limit_yuan);
    let cost = fen(&a.verified_cost_yuan);
    let threshold = fen(&a.threshold_yuan);
    let expenditure_met = match a.comparison.as_str() {
        "at_least" => cost >= threshold,
        "above" => cost > threshold,
        other => panic!("unknown comparison {other:?}"),
    };
    assert_eq!(
        (a.income_met, a.expenditure_met),
        (income_met, expenditure_met)
    );
    assert_eq!(a.eligible, income_met && expenditure_met);
    if !a.eligible {
        return 0;
    }
    let excess = (cost - threshold).max(0);
    assert_eq!(fen(&a.cost_above_threshold_yuan), excess);
    let mut sum = Decimal::ZERO;
    let mut covered = 0;
    for band in &a.bands {
        let (from, to) = (fen(&band.from_yuan), fen(&band.to_yuan));
        assert_eq!(from, covered, "bands follow each other from zero");
        let rate: Decimal = band.rate.parse().expect("rate");
        let share = Decimal::from(to - from) * rate;
        assert_eq!(share, band.share_fen.parse::<Decimal>().expect("share"));
        sum += share;
        covered = to;
    }
    assert_eq!(
        covered, excess,
        "the bands cover the cost above the threshold"
    );
    assert_eq!(
        sum,
        a.banded_exact_fen.parse::<Decimal>().expect("exact sum")
    );
    let banded: i64 = sum
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .try_into()
        .expect("fits");
    assert_eq!(fen(&a.banded_yuan), banded);
    let amount = banded.min(fen(&a.rule_cap_yuan)).min(fen(&a.case_cap_yuan));
    assert_eq!(a.capped_at_yuan.is_empty(), amount == banded);
    amount
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_in_the_life_of_a_county() {
    let seed = seed();
    eprintln!("a year in the life of a county: seed {seed} (FANGPIN_YEAR_SEED={seed} replays it)");
    let s = TestServer::start(date(2026, 1, 2)).await;
    register_county(&s).await;
    put_policy(&s, 2026).await;
    let mut y = Year {
        s,
        rng: Rng(seed),
        households: Vec::new(),
        cases: Vec::new(),
        paid_events: HashMap::new(),
        log: BTreeMap::new(),
        next_person: 0,
        returned: None,
        big_advance: None,
        tried_duplicate: false,
        closed_2026: None,
    };
    y.enroll(2026, HOUSEHOLDS_2026).await;
    let premium = fangpin_tests::flow::premium(&y.s, 2026, "1000000.00")
        .await
        .expect("premium 2026");
    assert!(premium.entry.is_some());

    let mut today = date(2026, 1, 5);
    let end = date(2027, 3, 31);
    while today <= end {
        y.s.set_date(today);
        let in_intake = today.year() == 2026 || today <= date(2027, 2, 5);
        if is_weekday(today) && in_intake {
            // About three claims a week, more in late December.
            let late_december = today.month() == 12 && today.day() >= 20;
            if y.rng.chance(if late_december { 90 } else { 45 }) {
                y.submit(today, pb::Channel::VillageApplication).await;
            }
            if y.rng.chance(4) {
                y.submit(today, pb::Channel::Emergency).await;
            }
        }
        if today == date(2026, 3, 2) {
            let e = close(&y.s, 2026).await.expect_err("March is no year end");
            assert_eq!(precondition_kind(&e), "YEAR_NOT_ENDED", "{e:?}");
            y.count("closes refused: the year runs");
        }
        if today == date(2026, 5, 6) {
            // A village application for the costs the June screening will
            // find in the medical data: the screening must not claim again.
            let h = (0..y.households.len())
                .find(|&h| y.households[h].year == 2026 && h % 23 == 5)
                .expect("a screened household");
            y.submit_as(
                today,
                pb::Channel::VillageApplication,
                Some((h, pb::ReliefKind::Illness, 4_000_000, 300_000, 0)),
            )
            .await;
        }
        if today == date(2026, 6, 15) {
            y.screening(today).await;
        }
        if today == date(2026, 4, 1) {
            // The next claim paid from April on comes back from the bank.
            if let Some(case) = y.cases.iter_mut().find(|c| {
                c.step != Step::Done && c.channel == pb::Channel::VillageApplication && !c.object
            }) {
                case.return_once = true;
                y.returned = Some(case.claim_id.clone());
            }
        }
        if today == date(2026, 9, 7) {
            // 遇困即扶: 5,000 given on the day; the survey finds 10,000 of
            // illness cost, relief 60% of 5,000 = 3,000: 2,000 is owed back.
            let h = (0..y.households.len())
                .find(|&h| {
                    y.households[h].year == 2026
                        && y.households[h].kind == pb::HouseholdType::UnstableEscaped
                })
                .expect("an unstable household");
            let id = y
                .submit_as(
                    today,
                    pb::Channel::Emergency,
                    Some((h, pb::ReliefKind::Illness, 1_000_000, 250_000, 500_000)),
                )
                .await;
            y.big_advance = Some(id);
        }
        if today == date(2026, 11, 2) {
            let id = y.big_advance.clone().expect("the big advance");
            let claim = y.claim(&id).await;
            assert_eq!(claim.state, pb::ClaimState::Paid as i32, "{claim:?}");
            assert_eq!(
                (claim.payout_yuan.as_str(), claim.advance_paid_yuan.as_str()),
                ("0.00", "5000.00")
            );
            let r = fangpin_tests::flow::reconciliation(&y.s, 2026).await;
            assert_eq!(
                (r.receivables_open, r.receivables_open_yuan.as_str()),
                (1, "2000.00")
            );
            let recovered =
                y.s.ledger()
                    .resolve_advance_receivable(pb::ResolveAdvanceReceivableRequest {
                        request_id: request_id(),
                        claim_id: id,
                        resolution: pb::ReceivableResolution::Recovered.into(),
                        note: "村委会收回多垫付款 收据2026-118".into(),
                        resolved_by: OFFICE.into(),
                    })
                    .await
                    .expect("recover the excess")
                    .into_inner();
            assert_eq!(recovered.entry.expect("entry").amount_yuan, "2000.00");
            let r = fangpin_tests::flow::reconciliation(&y.s, 2026).await;
            assert_eq!(
                (r.receivables_open, r.receivables_recovered_yuan.as_str()),
                (0, "2000.00")
            );
            assert!(r.ties);
            y.count("advance excess recovered");
        }
        if today == date(2026, 12, 1) {
            // Next year's policy and pool, before the year turns.
            put_policy(&y.s, 2027).await;
            y.enroll(2027, HOUSEHOLDS_2027).await;
            fangpin_tests::flow::premium(&y.s, 2027, "200000.00")
                .await
                .expect("premium 2027");
        }
        if today == date(2027, 1, 4) {
            // The year has ended; the late-December claims are still open.
            let e = close(&y.s, 2026).await.expect_err("claims are open");
            assert_eq!(precondition_kind(&e), "CLAIMS_OPEN", "{e:?}");
            y.count("closes refused: claims open");
            // Their deadlines ran into 2027, which no calendar covers yet.
            let mut provisional = 0;
            for case in &y.cases {
                let claim = y.claim(&case.claim_id).await;
                if claim.survey_deadline.as_str() > "2026-12-31" {
                    assert!(claim.survey_deadline_provisional, "{claim:?}");
                    let is_final = [pb::ClaimState::Paid as i32, pb::ClaimState::Rejected as i32]
                        .contains(&claim.state);
                    assert_eq!(
                        e.message().contains(&claim.claim_id),
                        !is_final && claim.policy_year == 2026,
                        "the refusal lists exactly the unfinished claims of 2026: {e:?}"
                    );
                    provisional += 1;
                }
            }
            assert!(provisional > 0, "late-December claims cross into 2027");
            y.log.insert("provisional deadlines", provisional);
        }
        if today == date(2027, 1, 15) {
            // The operator loads 2027 and restarts the service.
            let options = ServerOptions {
                calendar: test_calendar_2027(),
                ..y.s.restart_options()
            };
            y.s.restart(options).await;
            let mut recounted = 0;
            for case in &y.cases {
                let claim = y.claim(&case.claim_id).await;
                assert!(!claim.survey_deadline_provisional, "{claim:?}");
                let history =
                    y.s.claims()
                        .get_claim_history(pb::GetClaimRequest {
                            claim_id: claim.claim_id.clone(),
                        })
                        .await
                        .expect("history")
                        .into_inner()
                        .transitions;
                if history.iter().any(|t| t.event == "provisional_deadline") {
                    assert!(
                        history.iter().any(|t| t.event == "recompute_deadline"),
                        "{history:#?}"
                    );
                    recounted += 1;
                }
            }
            assert!(recounted > 0);
            y.log.insert("deadlines recounted", recounted);
        }
        y.work(today).await;
        if today >= date(2027, 1, 4) && y.closed_2026.is_none() && is_weekday(today) {
            let settled = y
                .cases
                .iter()
                .all(|c| c.step == Step::Done || y.households[c.household].year != 2026);
            if settled {
                // County finance covers what the pool is short of, and the
                // insurer's fee (15% of the relief borne), then closes.
                let pool = fangpin_tests::flow::pool(&y.s, 2026).await;
                let r = fangpin_tests::flow::reconciliation(&y.s, 2026).await;
                let fee = (fen(&r.relief_yuan) + fen(&r.advances_yuan)) * 15 / 100 + 1;
                let cover =
                    fen(&pool.shortfall_yuan) + (fee - fen(&pool.available_yuan).max(0)).max(0);
                if cover > 0 {
                    fangpin_tests::flow::top_up(&y.s, 2026, &yuan(cover)).await;
                    y.count("year-end top-ups");
                }
                let closed = close(&y.s, 2026)
                    .await
                    .expect("settled after the year: close");
                y.closed_2026 = Some((today, closed));
            }
        }
        today = add_days(today, 1);
    }
    let (closed_on, closed) = y
        .closed_2026
        .clone()
        .expect("2026 closed before the end of March 2027");
    eprintln!("2026 closed on {closed_on}");
    // The service fee is 15% of the relief the pool bore: payouts and
    // advances, net of reversed payouts and the recovered excess.
    let r = closed.reconciliation.expect("report");
    let base = fen(&r.relief_yuan) + fen(&r.advances_yuan);
    let fee = (Decimal::from(base) * Decimal::new(15, 2))
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    assert_eq!(Decimal::from(fen(&r.service_fee_yuan)), fee, "{r:?}");
    assert_eq!(r.receivables_recovered_yuan, "2000.00");
    let opening_2027 = fangpin_tests::flow::reconciliation(&y.s, 2027).await;
    assert_eq!(
        opening_2027.opening_yuan, r.closing_yuan,
        "closing of 2026 = opening of 2027"
    );

    // Every claim has reached its end.
    let open: Vec<_> = y
        .cases
        .iter()
        .filter(|c| c.step != Step::Done)
        .map(|c| (&c.claim_id, c.step))
        .collect();
    assert!(open.is_empty(), "claims still open at the end: {open:?}");

    // Every event paid at most once.
    for (event, paid) in &y.paid_events {
        assert_eq!(*paid, 1, "event {event:?} paid {paid} times");
    }

    // Every payout recomputed from the wire and the policy version.
    let mut policies: HashMap<(i32, u32), pb::Policy> = HashMap::new();
    let mut recomputed = 0;
    for case in &y.cases {
        let claim = y.claim(&case.claim_id).await;
        if claim.state != pb::ClaimState::Paid as i32 {
            continue;
        }
        let key = (claim.policy_year, claim.policy_version);
        if let std::collections::hash_map::Entry::Vacant(slot) = policies.entry(key) {
            let policy =
                y.s.policy()
                    .get_policy(pb::GetPolicyRequest {
                        county_code: COUNTY.into(),
                        policy_year: key.0,
                        version: key.1,
                    })
                    .await
                    .expect("policy version")
                    .into_inner()
                    .policy
                    .expect("policy");
            slot.insert(policy);
        }
        let household = &y.households[case.household];
        let relief = recompute(&policies[&key], household.kind, &claim);
        let assessment = claim.assessment.as_ref().expect("assessment");
        assert_eq!(
            from_the_wire_alone(assessment),
            relief,
            "claim {}: the assessment's own computation",
            claim.claim_id
        );
        assert_eq!(assessment.policy_version, claim.policy_version);
        assert_eq!(assessment.household_type, household.kind as i32);
        assert_eq!(
            fen(&assessment.amount_yuan),
            relief,
            "claim {}: assessed {} against {} recomputed",
            claim.claim_id,
            assessment.amount_yuan,
            yuan(relief)
        );
        let advance = fen(&claim.advance_paid_yuan);
        assert_eq!(
            fen(&claim.payout_yuan),
            (relief - advance).max(0),
            "claim {}: payout is the relief less the advance",
            claim.claim_id
        );
        recomputed += 1;
    }
    assert!(recomputed > 50, "only {recomputed} payouts recomputed");

    for year in [2026, 2027] {
        let r = fangpin_tests::flow::reconciliation(&y.s, year).await;
        assert!(r.ties, "{year}: the reconciliation does not tie: {r:?}");
    }
    eprintln!("{:#?}", y.log);
    y.s.stop().await;
}
