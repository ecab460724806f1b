//! The fund's outlook (资金池年末预测): where a county's pool is likely to stand
//! at the end of the policy year, and how likely a county top-up (财政补足) is.
//!
//! A seeded Monte Carlo over the claims not yet filed and the new claims the
//! remaining months brought in earlier years (docs/outlook.md). Money stays in
//! integer fen, summed in i128; only the reported rates and probability are
//! decimals. The generator is written here and seeded by the caller, so the same
//! input always gives the same answer and an auditor can rerun it.

use rust_decimal::Decimal;

use crate::money::{Fen, MAX_AMOUNT};

/// Enough runs to read a probability to about ±0.3%, few enough to answer a
/// request in well under a second.
pub const MAX_RUNS: u32 = 100_000;
/// A county has a few thousand open claims at most; more is a data error.
pub const MAX_PIPELINE: usize = 1_000_000;
pub const MAX_MONTHS: usize = 12;
pub const MAX_YEARS: usize = 20;
/// Random trials one outlook may make (runs × (uncertain claims + months)), so
/// one request cannot tie up the server.
pub const MAX_TRIALS: u64 = 100_000_000;

/// Where a claim not yet filed (未备案) stands. Filed claims are reserved and
/// already subtracted from `available`; rejected ones cost nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PipelineStage {
    /// Taken in (已受理), not yet with a surveyor.
    Received,
    /// With an insurer's surveyor (入户查勘).
    UnderSurvey,
    /// The surveyor recommends relief (拟救助).
    Recommended,
    /// On the village notice board (公示中).
    InPublicity,
    /// Publicity ended with no objection (公示无异议), not yet filed (备案).
    PublicityPassed,
}

impl PipelineStage {
    /// Every stage, in the order `OutlookInput::stage_history` is indexed.
    pub const ALL: [PipelineStage; 5] = [
        PipelineStage::Received,
        PipelineStage::UnderSurvey,
        PipelineStage::Recommended,
        PipelineStage::InPublicity,
        PipelineStage::PublicityPassed,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// A claim in the pipeline (在途案件).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineClaim {
    pub stage: PipelineStage,
    /// What it costs the pool if paid. The caller decides: the assessed relief
    /// net of any emergency advance (先行垫付) once the surveyor has assessed it,
    /// else the claimed cost capped by the policy's case cap (单案封顶). Either
    /// way it errs high, never low.
    pub amount: Fen,
}

/// Of the county's claims that ever reached a stage, how many were later paid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageHistory {
    pub reached: u64,
    pub paid: u64,
}

/// One remaining month of the year: the relief paid, in each earlier year, for
/// claims arising in that month (历年同月新增赔付).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonthHistory {
    /// 1..=12; months must be given in increasing order.
    pub month: u32,
    /// One total per earlier year; empty when there is no earlier year.
    pub earlier_years: Vec<Fen>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlookInput {
    /// The pool now: posted balance less reservations of filed relief (可用余额).
    pub available: Fen,
    /// In a stable order (say by claim id) so that a new claim comes last:
    /// each claim's draw depends only on its position.
    pub pipeline: Vec<PipelineClaim>,
    /// Indexed in the order of `PipelineStage::ALL`.
    pub stage_history: [StageHistory; 5],
    /// The remaining months of the year, chosen by the caller.
    pub new_claims: Vec<MonthHistory>,
    pub runs: u32,
    pub seed: u64,
}

/// What the outlook assumed about one stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageFigure {
    pub stage: PipelineStage,
    pub claims: u64,
    pub amount: Fen,
    pub history: StageHistory,
    /// paid / reached to 4 decimals, or 1 when `prior`.
    pub rate: Decimal,
    /// No claim ever reached this stage, so every claim in it is assumed paid
    /// (the cautious prior), not a rate learnt from history.
    pub prior: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MonthFigure {
    pub month: u32,
    /// Earlier years drawn from; zero means the month projects nothing.
    pub years: u32,
    /// The largest earlier year's total, used in `worst_case`.
    pub largest: Fen,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outlook {
    pub runs: u32,
    pub seed: u64,
    /// Mean year-end balance, rounded half away from zero once.
    pub expected: Fen,
    /// Year-end balances by nearest rank: 5% of runs end at or below `p5`.
    pub p5: Fen,
    pub p50: Fen,
    pub p95: Fen,
    /// Runs ending below zero, so a rounded-to-zero probability still shows.
    pub top_up_runs: u32,
    /// top_up_runs / runs, rounded half away from zero to 4 decimals.
    pub top_up_probability: Decimal,
    /// Every pipeline claim paid and every month at its largest earlier year:
    /// the lowest balance any run can reach.
    pub worst_case: Fen,
    /// One per stage, in the order of `PipelineStage::ALL`.
    pub stages: Vec<StageFigure>,
    pub months: Vec<MonthFigure>,
    /// Months with at least one earlier year; zero means no new claims projected.
    pub months_projected: u32,
    /// The most earlier years any month draws from.
    pub years_of_history: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutlookError {
    #[error("runs must be 1 to {MAX_RUNS}, not {runs}")]
    RunsOutOfRange { runs: u32 },
    #[error("the available balance {available} yuan is beyond ±{MAX_AMOUNT} yuan")]
    AvailableOutOfRange { available: Fen },
    #[error("the pipeline has {len} claims, more than {MAX_PIPELINE}")]
    PipelineTooLong { len: usize },
    #[error("pipeline claim {index} has amount {amount} yuan, outside 0 to {MAX_AMOUNT}")]
    ClaimAmountOutOfRange { index: usize, amount: Fen },
    #[error("the pipeline totals more than {MAX_AMOUNT} yuan")]
    PipelineTooLarge,
    #[error("stage {stage:?}: {paid} paid of {reached} reached")]
    PaidExceedsReached {
        stage: PipelineStage,
        paid: u64,
        reached: u64,
    },
    #[error("{count} months given, more than {MAX_MONTHS}")]
    TooManyMonths { count: usize },
    #[error("month {month} is not 1 to 12 or not after the month before it")]
    MonthOutOfOrder { month: u32 },
    #[error("month {month} has {years} earlier years, more than {MAX_YEARS}")]
    TooManyYears { month: u32, years: usize },
    #[error("month {month} has a total of {amount} yuan, outside 0 to {MAX_AMOUNT}")]
    MonthAmountOutOfRange { month: u32, amount: Fen },
    #[error("{runs} runs × {per_run} trials exceed {MAX_TRIALS}: ask for fewer runs")]
    TooManyTrials { runs: u32, per_run: u64 },
}

/// SplitMix64 (Steele, Lea & Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014), constants as in Vigna's reference
/// https://prng.di.unimi.it/splitmix64.c. Small, well known, and reproducible
/// by an auditor in any language.
struct SplitMix64(u64);

impl SplitMix64 {
    const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(Self::GAMMA);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The generator of one run of one stream: the `run`-th output of a
    /// generator keyed by (seed, stream). Each run starts afresh, so a claim
    /// appended to the pipeline draws after every earlier claim of its run and
    /// changes none of their outcomes: that is what makes the top-up
    /// probability exactly monotone in the pipeline for a fixed seed.
    fn run(seed: u64, stream: u64, run: u32) -> SplitMix64 {
        let key = SplitMix64(seed ^ stream).next();
        SplitMix64(SplitMix64(key.wrapping_add(Self::GAMMA.wrapping_mul(u64::from(run)))).next())
    }

    /// Uniform in 0..n without modulo bias: values in the last, partial block
    /// of 2^64 are redrawn, so paid/reached is the exact probability.
    fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        let reject = (u64::MAX % n + 1) % n; // 2^64 mod n
        loop {
            let x = self.next();
            if x <= u64::MAX - reject {
                return x % n;
            }
        }
    }
}

const CLAIMS_STREAM: u64 = 0x636C_6169_6D73; // "claims"
const MONTHS_STREAM: u64 = 0x6D6F_6E74_6873; // "months"

/// n / d rounded half away from zero (四舍五入).
fn div_round(n: i128, d: i128) -> i128 {
    assert!(d > 0, "positive divisor");
    let q = (n.abs() * 2 + d) / (d * 2);
    if n < 0 { -q } else { q }
}

/// num / den (num ≤ den) rounded half away from zero to 4 decimals; 0 / 0 is
/// the cautious prior of a stage without history, 1.
fn ratio(num: u64, den: u64) -> Decimal {
    if den == 0 {
        return Decimal::ONE;
    }
    let r = div_round(i128::from(num) * 10_000, i128::from(den));
    Decimal::new(i64::try_from(r).expect("at most 10000"), 4)
}

fn fen(value: i128) -> Fen {
    Fen::new(i64::try_from(value).expect("bounded inputs keep balances within i64"))
}

/// Projects the year-end balance. Pure: the same input gives the same outlook.
pub fn project(input: &OutlookInput) -> Result<Outlook, OutlookError> {
    let (runs, available) = (input.runs, input.available);
    if !(1..=MAX_RUNS).contains(&runs) {
        return Err(OutlookError::RunsOutOfRange { runs });
    }
    if available.get().unsigned_abs() > MAX_AMOUNT.get().unsigned_abs() {
        return Err(OutlookError::AvailableOutOfRange { available });
    }
    let len = input.pipeline.len();
    if len > MAX_PIPELINE {
        return Err(OutlookError::PipelineTooLong { len });
    }
    let mut stages = Vec::with_capacity(PipelineStage::ALL.len());
    for (stage, history) in PipelineStage::ALL.into_iter().zip(input.stage_history) {
        let StageHistory { reached, paid } = history;
        if paid > reached {
            return Err(OutlookError::PaidExceedsReached {
                stage,
                paid,
                reached,
            });
        }
        let (prior, rate) = (reached == 0, ratio(paid, reached));
        let (claims, amount) = (0, Fen::ZERO);
        stages.push(StageFigure {
            stage,
            claims,
            amount,
            history,
            rate,
            prior,
        });
    }
    // Claims paid in every run are summed once; only uncertain ones are drawn.
    let (mut certain, mut total) = (0i128, 0i128);
    let mut uncertain: Vec<(StageHistory, i128)> = Vec::new();
    for (index, claim) in input.pipeline.iter().enumerate() {
        let amount = claim.amount;
        if !(Fen::ZERO..=MAX_AMOUNT).contains(&amount) {
            return Err(OutlookError::ClaimAmountOutOfRange { index, amount });
        }
        let a = i128::from(amount.get());
        total += a;
        if total > i128::from(MAX_AMOUNT.get()) {
            return Err(OutlookError::PipelineTooLarge);
        }
        let figure = &mut stages[claim.stage.index()];
        figure.claims += 1;
        figure.amount = fen(i128::from(figure.amount.get()) + a);
        let h = figure.history;
        if figure.prior || h.paid == h.reached {
            certain += a;
        } else if h.paid > 0 {
            uncertain.push((h, a));
        }
    }
    let count = input.new_claims.len();
    if count > MAX_MONTHS {
        return Err(OutlookError::TooManyMonths { count });
    }
    let (mut months, mut drawn) = (Vec::with_capacity(count), Vec::new());
    let mut largest_sum = 0i128;
    for m in &input.new_claims {
        let (month, years) = (m.month, m.earlier_years.len());
        let after = months.last().map_or(0, |f: &MonthFigure| f.month);
        if month <= after || month > 12 {
            return Err(OutlookError::MonthOutOfOrder { month });
        }
        if years > MAX_YEARS {
            return Err(OutlookError::TooManyYears { month, years });
        }
        let bad = |a: &&Fen| !(Fen::ZERO..=MAX_AMOUNT).contains(*a);
        if let Some(&amount) = m.earlier_years.iter().find(bad) {
            return Err(OutlookError::MonthAmountOutOfRange { month, amount });
        }
        let largest = m.earlier_years.iter().copied().max().unwrap_or(Fen::ZERO);
        largest_sum += i128::from(largest.get());
        if years > 0 {
            drawn.push(m.earlier_years.as_slice());
        }
        let years = u32::try_from(years).expect("at most MAX_YEARS");
        months.push(MonthFigure {
            month,
            years,
            largest,
        });
    }
    let per_run = (uncertain.len() + drawn.len()) as u64;
    if u64::from(runs).saturating_mul(per_run) > MAX_TRIALS {
        return Err(OutlookError::TooManyTrials { runs, per_run });
    }

    let start = i128::from(available.get());
    let mut balances: Vec<i64> = (0..runs)
        .map(|run| {
            let mut claims = SplitMix64::run(input.seed, CLAIMS_STREAM, run);
            let mut month_draws = SplitMix64::run(input.seed, MONTHS_STREAM, run);
            let mut out = certain;
            for &(h, amount) in &uncertain {
                if claims.below(h.reached) < h.paid {
                    out += amount;
                }
            }
            for years in &drawn {
                let year = month_draws.below(years.len() as u64) as usize;
                out += i128::from(years[year].get());
            }
            fen(start - out).get()
        })
        .collect();
    balances.sort_unstable();
    let sum: i128 = balances.iter().map(|&b| i128::from(b)).sum();
    // Nearest rank: the smallest balance with at least p% of runs at or below it.
    let rank = |p: usize| Fen::new(balances[(p * balances.len()).div_ceil(100).max(1) - 1]);
    let top_up_runs = balances.partition_point(|&b| b < 0);
    let top_up_runs = u32::try_from(top_up_runs).expect("at most runs");
    let outlook = Outlook {
        runs,
        seed: input.seed,
        expected: fen(div_round(sum, i128::from(runs))),
        p5: rank(5),
        p50: rank(50),
        p95: rank(95),
        top_up_runs,
        top_up_probability: ratio(top_up_runs.into(), runs.into()),
        worst_case: fen(start - total - largest_sum),
        months_projected: u32::try_from(drawn.len()).expect("at most 12"),
        years_of_history: months.iter().map(|m| m.years).max().unwrap_or(0),
        stages,
        months,
    };
    assert!(outlook.worst_case <= outlook.p5 && outlook.p5 <= outlook.p50);
    assert!(outlook.p50 <= outlook.p95 && outlook.top_up_runs <= runs);
    assert!((Decimal::ZERO..=Decimal::ONE).contains(&outlook.top_up_probability));
    Ok(outlook)
}

#[cfg(test)]
mod tests {
    use super::PipelineStage::*;
    use super::*;
    use proptest::prelude::*;

    type Months = Vec<(u32, Vec<i64>)>;

    /// Amounts in yuan; 1,000 runs, seed 7, no history for any stage.
    fn input(available: i64, pipeline: &[(PipelineStage, i64)], months: Months) -> OutlookInput {
        let claim = |&(stage, y): &(PipelineStage, i64)| (stage, Fen::from_yuan(y));
        let month = |(month, y): (u32, Vec<i64>)| (month, y.into_iter().map(Fen::from_yuan));
        OutlookInput {
            available: Fen::from_yuan(available),
            pipeline: pipeline
                .iter()
                .map(claim)
                .map(|(stage, amount)| PipelineClaim { stage, amount })
                .collect(),
            stage_history: [StageHistory::default(); 5],
            new_claims: months
                .into_iter()
                .map(month)
                .map(|(month, y)| MonthHistory {
                    month,
                    earlier_years: y.collect(),
                })
                .collect(),
            runs: 1_000,
            seed: 7,
        }
    }

    fn set(i: &mut OutlookInput, stage: PipelineStage, reached: u64, paid: u64) {
        i.stage_history[stage.index()] = StageHistory { reached, paid };
    }

    #[test]
    fn splitmix64_matches_the_reference() {
        // The first outputs of splitmix64.c seeded with 1234567.
        let mut g = SplitMix64(1_234_567);
        let want = [6_457_827_717_110_365_317, 3_203_168_211_198_807_973];
        assert_eq!([g.next(), g.next()], want);
    }

    #[test]
    fn without_randomness_the_balance_is_exact() {
        // The prior (no history) and a rate of 5/5 both pay in full, a rate of
        // 0/4 never pays, and a month with one earlier year draws it every run.
        let pipeline = [
            (Received, 3_000),
            (Recommended, 2_000),
            (InPublicity, 1_500),
        ];
        let mut i = input(10_000, &pipeline, vec![(11, vec![1_000]), (12, vec![500])]);
        set(&mut i, Recommended, 5, 5);
        set(&mut i, InPublicity, 4, 0);
        let o = project(&i).expect("valid");
        // 10,000 − 3,000 − 2,000 − 1,000 − 500 = 3,500 yuan in every run.
        let b = Fen::from_yuan(3_500);
        assert_eq!([o.expected, o.p5, o.p50, o.p95], [b; 4]);
        assert_eq!((o.top_up_runs, o.top_up_probability), (0, Decimal::ZERO));
        // The worst case also pays the 1,500 yuan the 0/4 stage never pays.
        assert_eq!(o.worst_case, Fen::from_yuan(2_000));
        assert_eq!((o.months_projected, o.years_of_history), (2, 1));
        let s = &o.stages;
        assert!(
            PipelineStage::ALL
                .iter()
                .enumerate()
                .all(|(n, s)| s.index() == n)
        );
        assert!(s[0].prior && s[0].rate == Decimal::ONE && s[0].claims == 1);
        assert!(!s[2].prior && s[2].rate == Decimal::ONE && s[1].claims == 0);
        assert_eq!((s[3].rate, s[3].amount.get()), (Decimal::ZERO, 150_000));
        // With no earlier year, no new claims are projected, and it says so.
        i.new_claims = input(0, &[], vec![(12, vec![])]).new_claims;
        let o = project(&i).expect("valid");
        let p50 = Fen::from_yuan(5_000);
        assert_eq!((o.months_projected, o.years_of_history, o.p50), (0, 0, p50));
    }

    #[test]
    fn a_seeded_outlook_is_reproducible() {
        let pipeline = [(UnderSurvey, 900); 3];
        let mut i = input(1_000, &pipeline, vec![(12, vec![0, 200])]);
        set(&mut i, UnderSurvey, 10, 4);
        let o = project(&i).expect("valid");
        assert_eq!(project(&i), Ok(o.clone()));
        // Exactly: P(balance < 0) = 1 − 0.6³ − 3·0.4·0.6²/2 = 0.568, mean −180
        // yuan, p5 −1,700, p50 −100, p95 1,000. Seed 7's figures are pinned so
        // that a change to the generator or the draw order cannot go unseen.
        let got = [o.expected, o.p5, o.p50, o.p95, o.worst_case].map(Fen::get);
        assert_eq!(got, [-19_640, -170_000, -10_000, 100_000, -190_000]);
        assert_eq!(
            (o.top_up_runs, o.top_up_probability),
            (570, Decimal::new(57, 2))
        );
        assert_eq!(
            (o.stages[1].rate, o.stages[1].prior),
            (Decimal::new(4, 1), false)
        );
        i.seed = 8;
        assert_ne!(project(&i).expect("valid").expected, o.expected);
    }

    #[test]
    fn bounds_are_refused() {
        use OutlookError as E;
        let mut i = input(0, &[], Vec::new());
        for runs in [0, MAX_RUNS + 1] {
            i.runs = runs;
            assert_eq!(project(&i), Err(E::RunsOutOfRange { runs }));
        }
        i.runs = MAX_RUNS;
        assert!(project(&i).is_ok());
        let refused = |i: &OutlookInput| project(i).expect_err("refused");
        set(&mut i, PublicityPassed, 1, 2);
        assert!(matches!(refused(&i), E::PaidExceedsReached { paid: 2, .. }));
        set(&mut i, PublicityPassed, 3, 1);
        i.pipeline = input(0, &[(PublicityPassed, 1); 1_001], Vec::new()).pipeline;
        assert!(matches!(
            refused(&i),
            E::TooManyTrials { per_run: 1_001, .. }
        ));
        i.pipeline = input(0, &[(Received, 0), (Received, -1)], Vec::new()).pipeline;
        assert!(matches!(
            refused(&i),
            E::ClaimAmountOutOfRange { index: 1, .. }
        ));
        let max = MAX_AMOUNT.get() / 100;
        i.pipeline = input(0, &[(Received, max), (Received, 1)], Vec::new()).pipeline;
        assert_eq!(refused(&i), E::PipelineTooLarge);
        let months = |m: Months| input(0, &[], m).new_claims;
        (i.pipeline, i.new_claims) = (Vec::new(), months(vec![(1, vec![0; 21])]));
        assert!(matches!(refused(&i), E::TooManyYears { years: 21, .. }));
        i.new_claims = months((1..=13).map(|m| (m, vec![])).collect());
        assert!(matches!(refused(&i), E::TooManyMonths { count: 13 }));
        i.new_claims = months(vec![(12, vec![-1])]);
        assert!(matches!(
            refused(&i),
            E::MonthAmountOutOfRange { month: 12, .. }
        ));
        for order in [
            vec![(11, vec![]), (10, vec![])],
            vec![(0, vec![])],
            vec![(13, vec![])],
        ] {
            i.new_claims = months(order);
            assert!(matches!(refused(&i), E::MonthOutOfOrder { .. }));
        }
        (i.new_claims, i.available) = (Vec::new(), Fen::new(-MAX_AMOUNT.get() - 1));
        assert!(matches!(refused(&i), E::AvailableOutOfRange { .. }));
    }

    fn stage() -> impl Strategy<Value = PipelineStage> {
        (0usize..5).prop_map(|i| PipelineStage::ALL[i])
    }

    prop_compose! {
        /// Amounts in yuan, up to 30 claims, any history, up to 12 months.
        fn scenario()(
            available in -10_000i64..100_000,
            pipeline in prop::collection::vec((stage(), 0i64..10_000), 0..30),
            history in prop::collection::vec((0u64..12).prop_flat_map(|r| (Just(r), 0..=r)), 5),
            months in prop::collection::vec(prop::collection::vec(0i64..20_000, 0..5), 0..=12),
            runs in 1u32..300, seed in any::<u64>(),
        ) -> OutlookInput {
            let first = 13 - months.len() as u32;
            let mut i = input(available, &pipeline, (first..).zip(months).collect());
            for (stage, (reached, paid)) in PipelineStage::ALL.into_iter().zip(history) {
                set(&mut i, stage, reached, paid);
            }
            (i.runs, i.seed) = (runs, seed);
            i
        }
    }

    proptest! {
        #[test]
        fn the_probability_is_a_probability(i in scenario()) {
            let o = project(&i).expect("valid");
            prop_assert!((Decimal::ZERO..=Decimal::ONE).contains(&o.top_up_probability));
            prop_assert!(o.top_up_runs == 0 || o.worst_case < Fen::ZERO);
            let exact = Decimal::from(o.top_up_runs) / Decimal::from(o.runs);
            prop_assert!((exact - o.top_up_probability).abs() <= Decimal::new(5, 5));
        }

        #[test]
        fn a_longer_pipeline_never_lowers_it(i in scenario(), stage in stage(), amount in 0i64..10_000_000) {
            let before = project(&i).expect("valid");
            let mut more = i.clone();
            more.pipeline.push(PipelineClaim { stage, amount: Fen::new(amount) });
            let after = project(&more).expect("valid");
            prop_assert!(after.top_up_runs >= before.top_up_runs);
            prop_assert!(after.top_up_probability >= before.top_up_probability);
            prop_assert!(after.p50 <= before.p50 && after.worst_case <= before.worst_case);
        }

        #[test]
        fn it_is_zero_when_the_pool_covers_the_worst_case(mut i in scenario(), spare in 0i64..1_000) {
            let all: i64 = i.pipeline.iter().map(|c| c.amount.get()).sum();
            let largest = |m: &MonthHistory| m.earlier_years.iter().map(|a| a.get()).max().unwrap_or(0);
            let worst: i64 = i.new_claims.iter().map(largest).sum();
            i.available = Fen::new(all + worst + spare);
            let o = project(&i).expect("valid");
            prop_assert_eq!((o.top_up_runs, o.top_up_probability), (0, Decimal::ZERO));
            prop_assert_eq!(o.worst_case, Fen::new(spare));
        }
    }
}
