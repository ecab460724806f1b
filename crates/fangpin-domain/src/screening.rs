//! Screening (数据比对筛查): which enrolled households' costs in department
//! data crossed the policy's thresholds, and why.
//!
//! Costs are kept per household, relief kind and calendar month
//! (`MonthlyCosts`); a run sums each kind over its rule's window, ending
//! with the month of the run, applies the income condition where civil
//! affairs has verified an income, and returns one `Candidate` per kind
//! over its threshold, with the arithmetic spelled out for the office.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::assessment::{Findings, measure_drop};
use crate::feeds::YearMonth;
use crate::money::Fen;
use crate::policy::{
    Comparison, EntryYearCosts, HouseholdType, IncomeBaseline, IncomeDropTerms, Policy, ReliefKind,
    ReliefStatus,
};

/// A run of whole calendar months, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    pub first: YearMonth,
    pub last: YearMonth,
}

impl Window {
    /// The `months` calendar months ending with the month of `as_of`
    /// (a rolling year for 12).
    pub fn ending(as_of: NaiveDate, months: u32) -> Window {
        assert!(months >= 1, "a window has at least one month");
        let last = YearMonth::of(as_of);
        Window {
            first: YearMonth::from_index(last.index() - i64::from(months) + 1),
            last,
        }
    }

    pub fn contains(&self, month: YearMonth) -> bool {
        (self.first.index()..=self.last.index()).contains(&month.index())
    }

    pub fn overlaps(&self, other: &Window) -> bool {
        self.first.index() <= other.last.index() && other.first.index() <= self.last.index()
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..{}", self.first, self.last)
    }
}

/// One household's costs per relief kind and month, from every feed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonthlyCosts {
    by_kind_year: BTreeMap<(ReliefKind, i32), [Fen; 12]>,
}

impl MonthlyCosts {
    /// Adds a whole year's row of twelve months (as stored).
    pub fn add_year(&mut self, kind: ReliefKind, year: i32, months: &[Fen; 12]) -> Option<()> {
        let slot = self
            .by_kind_year
            .entry((kind, year))
            .or_insert([Fen::ZERO; 12]);
        for (total, add) in slot.iter_mut().zip(months) {
            *total = total.checked_add(*add)?;
        }
        Some(())
    }

    pub fn add(&mut self, kind: ReliefKind, month: YearMonth, amount: Fen) -> Option<()> {
        let mut months = [Fen::ZERO; 12];
        months[usize::try_from(month.month - 1).expect("month 1..=12")] = amount;
        self.add_year(kind, month.year, &months)
    }

    /// The kind's total over the window.
    pub fn total(&self, kind: ReliefKind, window: &Window) -> Fen {
        self.by_kind_year
            .range((kind, window.first.year)..=(kind, window.last.year))
            .flat_map(|(&(_, year), months)| {
                months.iter().enumerate().filter_map(move |(m, amount)| {
                    let month = YearMonth {
                        year,
                        month: u32::try_from(m).expect("< 12") + 1,
                    };
                    window.contains(month).then_some(*amount)
                })
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.by_kind_year.is_empty()
    }

    pub fn clear(&mut self) {
        self.by_kind_year.clear();
    }
}

/// What civil affairs verified about the household's income (民政核对).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedIncome {
    pub per_capita: Fen,
    pub verified_on: NaiveDate,
    /// The status verified with it; None for 无.
    pub status: Option<ReliefStatus>,
}

/// What screening knows of one household besides its costs: its type, its
/// members, and civil affairs' verifications, oldest first, at most one per
/// calendar year (the year's latest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HouseholdFacts<'a> {
    pub household_type: HouseholdType,
    pub members: u32,
    pub verifications: &'a [VerifiedIncome],
}

impl HouseholdFacts<'_> {
    /// The latest verification on or before `as_of`.
    pub fn income_as_of(&self, as_of: NaiveDate) -> Option<VerifiedIncome> {
        self.verifications
            .iter()
            .rev()
            .find(|v| v.verified_on <= as_of)
            .copied()
    }
}

/// A household whose costs crossed a threshold: hand it to the insurer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub relief_kind: ReliefKind,
    pub window: Window,
    pub cost: Fen,
    pub threshold: Fen,
    pub comparison: Comparison,
    pub over_by: Fen,
    pub income_limit: Fen,
    /// None when no income has been verified yet: the survey will.
    pub income: Option<VerifiedIncome>,
    pub reason: String,
}

/// What a run concluded about one household.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub candidates: Vec<Candidate>,
    /// Kinds whose threshold was crossed but the verified income is above
    /// the line: not candidates, counted so the office sees them.
    pub excluded_by_income: Vec<ReliefKind>,
}

/// Screens one household: every relief kind the policy has a rule for, over
/// that rule's window ending with the month of `as_of`.
///
/// The latest verification as of `as_of` gives the income and the status;
/// a status term of the policy lays its threshold, bands or income waiver
/// over the household type's rule. First-year school costs (recorded as
/// `SchoolEntry`) count under school entry or schooling as
/// `policy.entry_year_costs` says, never under both. Income drop compares
/// the verifications with each other, or estimates the new income from the
/// income the human-resources feed reports lost.
pub fn screen_household(
    policy: &Policy,
    facts: &HouseholdFacts<'_>,
    costs: &MonthlyCosts,
    as_of: NaiveDate,
) -> Outcome {
    let mut out = Outcome::default();
    let household_type = facts.household_type;
    let income = facts.income_as_of(as_of);
    let status = income.and_then(|i| i.status);
    let income_limit = policy.income_limit(household_type);
    let entry_rule = policy.effective_rule(household_type, ReliefKind::SchoolEntry, status);
    let mut entry_counted = false;
    // School entry is screened before schooling, which may take the costs
    // school entry did not.
    const ORDER: [ReliefKind; 6] = [
        ReliefKind::Illness,
        ReliefKind::SchoolEntry,
        ReliefKind::Schooling,
        ReliefKind::Accident,
        ReliefKind::Industry,
        ReliefKind::IncomeDrop,
    ];
    const { assert!(ORDER.len() == ReliefKind::ALL.len()) };
    for kind in ORDER {
        let Some(rule) = policy.effective_rule(household_type, kind, status) else {
            continue;
        };
        let window = Window::ending(as_of, rule.rule.screening_window_months);
        let entry_into_schooling = match (&entry_rule, policy.entry_year_costs) {
            (None, _) | (Some(_), EntryYearCosts::SchoolingOnly) => true,
            (Some(_), EntryYearCosts::SchoolEntryOnly) => false,
            (Some(_), EntryYearCosts::EntryFirst) => !entry_counted,
        };
        let cost = match kind {
            ReliefKind::IncomeDrop => {
                if let Some(c) = screen_income_drop(policy, facts, costs, as_of, income_limit) {
                    out.candidates.push(c);
                }
                continue;
            }
            ReliefKind::SchoolEntry if policy.entry_year_costs == EntryYearCosts::SchoolingOnly => {
                continue;
            }
            ReliefKind::Schooling if entry_into_schooling => costs
                .total(ReliefKind::Schooling, &window)
                .checked_add(costs.total(ReliefKind::SchoolEntry, &window))
                .expect("bounded monthly sums"),
            _ => costs.total(kind, &window),
        };
        let crossed = match rule.rule.comparison {
            Comparison::AtLeast => cost >= rule.threshold,
            Comparison::Above => cost > rule.threshold,
        };
        if !crossed || cost == Fen::ZERO {
            continue;
        }
        if kind == ReliefKind::SchoolEntry {
            // Counted here: schooling must not count them again.
            entry_counted = true;
        }
        if !rule.income_waived && income.is_some_and(|i| i.per_capita >= income_limit) {
            out.excluded_by_income.push(kind);
            continue;
        }
        let over_by = cost
            .checked_sub(rule.threshold)
            .expect("cost crossed the threshold, both within limits");
        let income_text = match (income, rule.income_waived) {
            (Some(i), true) => format!(
                "income condition waived for {} households (verified {}, civil affairs, {})",
                status.map_or("", ReliefStatus::as_str),
                i.per_capita,
                i.verified_on
            ),
            (Some(i), false) => format!(
                "verified per-capita income {} < line {} (civil affairs, {})",
                i.per_capita, income_limit, i.verified_on
            ),
            (None, _) => format!(
                "income not yet verified: the survey checks it against the line {income_limit}"
            ),
        };
        let terms_text = match rule.status_term {
            Some(t) => format!(" ({} terms)", t.status.as_str()),
            None => String::new(),
        };
        let reason = format!(
            "{} ({}): {} in {} {} threshold {}{} for {} households, {} over; {}",
            kind.as_str(),
            kind.chinese(),
            cost,
            window,
            match rule.rule.comparison {
                Comparison::AtLeast => ">=",
                Comparison::Above => ">",
            },
            rule.threshold,
            terms_text,
            household_type.as_str(),
            over_by,
            income_text,
        );
        out.candidates.push(Candidate {
            relief_kind: kind,
            window,
            cost,
            threshold: rule.threshold,
            comparison: rule.rule.comparison,
            over_by,
            income_limit,
            income,
            reason,
        });
    }
    out.candidates.sort_by_key(|c| c.relief_kind.index());
    out
}

/// The earlier incomes a baseline takes, most recent first: the verification
/// before `current` (last verified), or one per calendar year for the
/// `baseline_years` years before `current`'s year (an average of years).
/// None when civil affairs has not verified enough of them.
fn baseline_incomes(
    terms: &IncomeDropTerms,
    earlier: &[VerifiedIncome],
    current_year: i32,
) -> Option<Vec<Fen>> {
    match terms.baseline {
        IncomeBaseline::LastVerified => earlier.last().map(|v| vec![v.per_capita]),
        IncomeBaseline::AverageOfYears => {
            let years = i32::try_from(terms.baseline_years).expect("validated: at most 5");
            let wanted: Vec<Fen> = (1..=years)
                .map(|back| {
                    earlier
                        .iter()
                        .rev()
                        .find(|v| chrono::Datelike::year(&v.verified_on) == current_year - back)
                        .map(|v| v.per_capita)
                })
                .collect::<Option<Vec<Fen>>>()?;
            Some(wanted)
        }
    }
}

/// The income-drop candidate of one household, if there is one:
/// - a verification inside the rule's window, measured against the
///   baseline of the earlier ones (a verified drop);
/// - otherwise, income lost as the human-resources feed reports it within
///   the window, spread over the members and taken off the latest
///   verification (an estimated drop), or, with no verification at all, a
///   candidate for the survey to measure.
fn screen_income_drop(
    policy: &Policy,
    facts: &HouseholdFacts<'_>,
    costs: &MonthlyCosts,
    as_of: NaiveDate,
    income_limit: Fen,
) -> Option<Candidate> {
    let status = facts.income_as_of(as_of).and_then(|i| i.status);
    let rule = policy.effective_rule(facts.household_type, ReliefKind::IncomeDrop, status)?;
    let terms = rule.rule.income_drop.as_ref()?;
    let window = Window::ending(as_of, rule.rule.screening_window_months);
    let known: Vec<VerifiedIncome> = facts
        .verifications
        .iter()
        .filter(|v| v.verified_on <= as_of)
        .copied()
        .collect();
    let reported = costs.total(ReliefKind::IncomeDrop, &window);
    // A verification inside the window that has a baseline to compare with.
    let measured = known.split_last().and_then(|(latest, earlier)| {
        if !window.contains(YearMonth::of(latest.verified_on)) {
            return None;
        }
        let year = chrono::Datelike::year(&latest.verified_on);
        baseline_incomes(terms, earlier, year).map(|prior| (*latest, prior))
    });
    let (current, prior, how) = match (measured, known.last()) {
        (Some((latest, prior)), _) => (
            latest,
            prior,
            format!("verified {} (civil affairs)", latest.verified_on),
        ),
        _ if reported == Fen::ZERO => return None,
        (None, Some(latest)) => {
            let year = chrono::Datelike::year(&latest.verified_on) + 1;
            let prior = baseline_incomes(terms, &known, year)?;
            let per_member = Fen::round_from_decimal_fen(
                reported.to_decimal_fen() / rust_decimal::Decimal::from(facts.members.max(1)),
            )
            .expect("bounded");
            let estimate = latest
                .per_capita
                .checked_sub(per_member)
                .unwrap_or(Fen::ZERO)
                .max(Fen::ZERO);
            (
                VerifiedIncome {
                    per_capita: estimate,
                    ..*latest
                },
                prior,
                format!(
                    "estimated: {} - income lost {} in {} / {} members",
                    latest.per_capita, reported, window, facts.members
                ),
            )
        }
        (None, None) => {
            let reason = format!(
                "{} ({}): income lost {} in {} (human resources); income not yet verified: the survey measures the drop against the line {}",
                ReliefKind::IncomeDrop.as_str(),
                ReliefKind::IncomeDrop.chinese(),
                reported,
                window,
                income_limit
            );
            return Some(Candidate {
                relief_kind: ReliefKind::IncomeDrop,
                window,
                cost: reported,
                threshold: Fen::ZERO,
                comparison: Comparison::Above,
                over_by: reported,
                income_limit,
                income: None,
                reason,
            });
        }
    };
    let findings = Findings {
        household_type: facts.household_type,
        relief_kind: ReliefKind::IncomeDrop,
        income_per_capita: current.per_capita,
        cost: Fen::ZERO,
        prior_incomes: prior,
        members: facts.members.max(1),
        status: None,
    };
    let drop = measure_drop(terms, &findings, income_limit);
    if !drop.qualified || current.per_capita >= income_limit {
        return None;
    }
    // The smallest drop that qualifies, to show how far this one is over.
    let by_share = terms.min_drop_share.map_or(Fen::ZERO, |share| {
        Fen::round_from_decimal_fen(
            (share * drop.baseline_income.to_decimal_fen())
                .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::ToPositiveInfinity),
        )
        .expect("bounded")
    });
    let qualifying = by_share.max(terms.min_drop_amount.unwrap_or(Fen::ZERO));
    let reason = format!(
        "{} ({}): per-capita income {} ({how}) against baseline {}: drop {} ({}%) >= qualifying {}; {} < line {}, gap {} per capita",
        ReliefKind::IncomeDrop.as_str(),
        ReliefKind::IncomeDrop.chinese(),
        current.per_capita,
        drop.baseline_income,
        drop.drop,
        (drop.drop_share * rust_decimal::Decimal::ONE_HUNDRED).normalize(),
        qualifying,
        current.per_capita,
        income_limit,
        drop.gap_per_capita,
    );
    Some(Candidate {
        relief_kind: ReliefKind::IncomeDrop,
        window,
        cost: drop.drop,
        threshold: qualifying,
        comparison: Comparison::AtLeast,
        over_by: drop
            .drop
            .checked_sub(qualifying)
            .unwrap_or(Fen::ZERO)
            .max(Fen::ZERO),
        income_limit,
        income: Some(current),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::CountyCode;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn policy() -> Policy {
        Policy::example(CountyCode::parse("130423").unwrap(), 2024)
    }

    fn six_kinds() -> Policy {
        Policy::example_six_kinds(CountyCode::parse("410602").unwrap(), 2024)
    }

    fn facts(
        household_type: HouseholdType,
        verifications: &[VerifiedIncome],
    ) -> HouseholdFacts<'_> {
        HouseholdFacts {
            household_type,
            members: 3,
            verifications,
        }
    }

    fn verified(yuan: i64, on: NaiveDate) -> VerifiedIncome {
        VerifiedIncome {
            per_capita: Fen::from_yuan(yuan),
            verified_on: on,
            status: None,
        }
    }

    fn month(year: i32, month: u32) -> YearMonth {
        YearMonth { year, month }
    }

    #[test]
    fn a_verified_income_drop_is_a_candidate() {
        let p = six_kinds();
        // 9,000 verified in 2023, 3,000 in 2024: a 66.67% drop, under the line 6,000.
        let history = [
            verified(9_000, date(2023, 6, 30)),
            verified(3_000, date(2024, 3, 31)),
        ];
        let out = screen_household(
            &p,
            &facts(HouseholdType::Marginal, &history),
            &MonthlyCosts::default(),
            date(2024, 11, 5),
        );
        assert_eq!(out.candidates.len(), 1, "{out:?}");
        let c = &out.candidates[0];
        assert_eq!(c.relief_kind, ReliefKind::IncomeDrop);
        assert_eq!(c.cost, Fen::from_yuan(6_000));
        // 30% of 9,000.
        assert_eq!(c.threshold, Fen::from_yuan(2_700));
        assert!(c.reason.contains("66.67%"), "{}", c.reason);
        // A 28% drop is not enough.
        let small = [
            verified(5_000, date(2023, 6, 30)),
            verified(3_600, date(2024, 3, 31)),
        ];
        let out = screen_household(
            &p,
            &facts(HouseholdType::Marginal, &small),
            &MonthlyCosts::default(),
            date(2024, 11, 5),
        );
        assert!(out.candidates.is_empty(), "{out:?}");
        // The verification of 2024 lies outside a window ending in 2025-06.
        let out = screen_household(
            &p,
            &facts(HouseholdType::Marginal, &history),
            &MonthlyCosts::default(),
            date(2025, 6, 5),
        );
        assert!(out.candidates.is_empty(), "{out:?}");
    }

    #[test]
    fn reported_lost_income_estimates_the_drop() {
        let p = six_kinds();
        let history = [verified(5_000, date(2023, 12, 1))];
        let mut costs = MonthlyCosts::default();
        // 9,000 a year lost over 3 members: 3,000 per capita, 5,000 -> 2,000 (60%).
        costs.add(
            ReliefKind::IncomeDrop,
            month(2024, 4),
            Fen::from_yuan(9_000),
        );
        let out = screen_household(
            &p,
            &facts(HouseholdType::Marginal, &history),
            &costs,
            date(2024, 11, 5),
        );
        assert_eq!(out.candidates.len(), 1, "{out:?}");
        let c = &out.candidates[0];
        assert_eq!(c.cost, Fen::from_yuan(3_000));
        assert_eq!(c.income.map(|i| i.per_capita), Some(Fen::from_yuan(2_000)));
        assert!(c.reason.contains("estimated"), "{}", c.reason);
        // No verification at all: the survey measures the drop.
        let out = screen_household(
            &p,
            &facts(HouseholdType::Marginal, &[]),
            &costs,
            date(2024, 11, 5),
        );
        assert_eq!(out.candidates.len(), 1);
        assert_eq!(out.candidates[0].income, None);
    }

    #[test]
    fn first_year_costs_count_once() {
        let mut p = six_kinds();
        let mut costs = MonthlyCosts::default();
        costs.add(
            ReliefKind::SchoolEntry,
            month(2024, 9),
            Fen::from_yuan(6_000),
        );
        costs.add(ReliefKind::Schooling, month(2024, 9), Fen::from_yuan(4_000));
        let kinds = |p: &Policy| -> Vec<(ReliefKind, Fen)> {
            screen_household(
                p,
                &facts(HouseholdType::Marginal, &[]),
                &costs,
                date(2024, 10, 1),
            )
            .candidates
            .iter()
            .map(|c| (c.relief_kind, c.cost))
            .collect()
        };
        // Entry first: 6,000 > 5,000 makes school entry; schooling keeps 4,000 (< 8,000).
        assert_eq!(
            kinds(&p),
            [(ReliefKind::SchoolEntry, Fen::from_yuan(6_000))]
        );
        p.entry_year_costs = EntryYearCosts::SchoolingOnly;
        assert_eq!(kinds(&p), [(ReliefKind::Schooling, Fen::from_yuan(10_000))]);
        p.entry_year_costs = EntryYearCosts::SchoolEntryOnly;
        assert_eq!(
            kinds(&p),
            [(ReliefKind::SchoolEntry, Fen::from_yuan(6_000))]
        );
        // Entry first, under the entry threshold: the costs go to schooling.
        p.entry_year_costs = EntryYearCosts::EntryFirst;
        for rule in p
            .rules
            .iter_mut()
            .filter(|r| r.relief_kind == ReliefKind::SchoolEntry)
        {
            rule.threshold = Fen::from_yuan(7_000);
        }
        assert_eq!(kinds(&p), [(ReliefKind::Schooling, Fen::from_yuan(10_000))]);
        // Without a school-entry rule, first-year costs are schooling costs.
        let q = policy();
        assert_eq!(kinds(&q), [(ReliefKind::Schooling, Fen::from_yuan(10_000))]);
    }

    #[test]
    fn a_dibao_household_is_screened_on_its_own_terms() {
        let p = six_kinds();
        let mut costs = MonthlyCosts::default();
        costs.add(ReliefKind::Illness, month(2024, 5), Fen::from_yuan(4_000));
        let mut history = [verified(7_000, date(2024, 2, 1))];
        let plain = screen_household(
            &p,
            &facts(HouseholdType::Marginal, &history),
            &costs,
            date(2024, 11, 5),
        );
        assert!(plain.candidates.is_empty());
        history[0].status = Some(ReliefStatus::Dibao);
        let dibao = screen_household(
            &p,
            &facts(HouseholdType::Marginal, &history),
            &costs,
            date(2024, 11, 5),
        );
        assert_eq!(dibao.candidates.len(), 1, "{dibao:?}");
        assert_eq!(dibao.candidates[0].threshold, Fen::from_yuan(3_000));
        assert!(
            dibao.candidates[0].reason.contains("waived"),
            "{}",
            dibao.candidates[0].reason
        );
    }

    #[test]
    fn rolling_year_ends_with_the_run_month() {
        let w = Window::ending(date(2024, 11, 5), 12);
        assert_eq!(w.to_string(), "2023-12..2024-11");
        assert!(w.contains(YearMonth {
            year: 2023,
            month: 12
        }));
        assert!(!w.contains(YearMonth {
            year: 2023,
            month: 11
        }));
        assert!(!w.contains(YearMonth {
            year: 2024,
            month: 12
        }));
    }

    #[test]
    fn illness_at_the_threshold_is_a_candidate_for_unstable_households() {
        let mut costs = MonthlyCosts::default();
        costs.add(
            ReliefKind::Illness,
            YearMonth {
                year: 2023,
                month: 12,
            },
            Fen::from_yuan(2_000),
        );
        costs.add(
            ReliefKind::Illness,
            YearMonth {
                year: 2024,
                month: 3,
            },
            Fen::from_yuan(3_000),
        );
        // Outside the rolling year: does not count.
        costs.add(
            ReliefKind::Illness,
            YearMonth {
                year: 2023,
                month: 11,
            },
            Fen::from_yuan(9_000),
        );
        let p = policy();
        let out = screen_household(
            &p,
            &facts(HouseholdType::UnstableEscaped, &[]),
            &costs,
            date(2024, 11, 5),
        );
        assert_eq!(out.candidates.len(), 1);
        let c = &out.candidates[0];
        assert_eq!((c.cost, c.over_by), (Fen::from_yuan(5_000), Fen::ZERO));
        assert!(c.reason.contains("2023-12..2024-11"), "{}", c.reason);
        // A marginal household's threshold is 20,000.
        let out = screen_household(
            &p,
            &facts(HouseholdType::Marginal, &[]),
            &costs,
            date(2024, 11, 5),
        );
        assert!(out.candidates.is_empty());
    }

    #[test]
    fn verified_income_above_the_line_excludes() {
        let mut costs = MonthlyCosts::default();
        costs.add(
            ReliefKind::Schooling,
            YearMonth {
                year: 2024,
                month: 9,
            },
            Fen::from_yuan(9_000),
        );
        let p = policy();
        let limit = p.income_limit(HouseholdType::Marginal);
        let rich = VerifiedIncome {
            per_capita: limit,
            verified_on: date(2024, 6, 30),
            status: None,
        };
        let out = screen_household(
            &p,
            &facts(HouseholdType::Marginal, &[rich]),
            &costs,
            date(2024, 10, 1),
        );
        assert_eq!(out.excluded_by_income, vec![ReliefKind::Schooling]);
        let poor = VerifiedIncome {
            per_capita: limit.checked_sub(Fen::new(1)).unwrap(),
            ..rich
        };
        let out = screen_household(
            &p,
            &facts(HouseholdType::Marginal, &[poor]),
            &costs,
            date(2024, 10, 1),
        );
        assert_eq!(out.candidates.len(), 1);
        // Schooling is "above": exactly 8,000 is not enough.
        let mut exact = MonthlyCosts::default();
        exact.add(
            ReliefKind::Schooling,
            YearMonth {
                year: 2024,
                month: 9,
            },
            Fen::from_yuan(8_000),
        );
        let out = screen_household(
            &p,
            &facts(HouseholdType::Marginal, &[]),
            &exact,
            date(2024, 10, 1),
        );
        assert!(out.candidates.is_empty());
    }

    proptest! {
        /// A student's first-year costs are counted under school entry or
        /// schooling, never both: whatever the figures and the policy's
        /// choice, the candidates' costs never add up to more than the
        /// costs there are.
        #[test]
        fn first_year_costs_are_never_counted_twice(
            entry in 0i64..3_000_000,
            other in 0i64..3_000_000,
            entry_threshold in 0i64..2_000_000,
            schooling_threshold in 0i64..2_000_000,
            mode in 0usize..3,
        ) {
            let mut p = six_kinds();
            p.entry_year_costs = [EntryYearCosts::EntryFirst, EntryYearCosts::SchoolEntryOnly, EntryYearCosts::SchoolingOnly][mode];
            for rule in &mut p.rules {
                match rule.relief_kind {
                    ReliefKind::SchoolEntry => rule.threshold = Fen::new(entry_threshold),
                    ReliefKind::Schooling => rule.threshold = Fen::new(schooling_threshold),
                    _ => {}
                }
            }
            let mut costs = MonthlyCosts::default();
            costs.add(ReliefKind::SchoolEntry, month(2024, 9), Fen::new(entry)).unwrap();
            costs.add(ReliefKind::Schooling, month(2024, 9), Fen::new(other)).unwrap();
            let out = screen_household(&p, &facts(HouseholdType::Marginal, &[]), &costs, date(2024, 10, 1));
            let counted: i64 = out
                .candidates
                .iter()
                .filter(|c| matches!(c.relief_kind, ReliefKind::SchoolEntry | ReliefKind::Schooling))
                .map(|c| c.cost.get())
                .sum();
            prop_assert!(counted <= entry + other, "{out:?}");
            let schooling = out.candidates.iter().find(|c| c.relief_kind == ReliefKind::Schooling);
            let school_entry = out.candidates.iter().find(|c| c.relief_kind == ReliefKind::SchoolEntry);
            if let (Some(s), Some(_)) = (schooling, school_entry) {
                prop_assert_eq!(s.cost, Fen::new(other), "schooling took first-year costs school entry had");
            }
        }

        /// The window total equals the sum of the months inside it, whatever
        /// the order and years the months were added in.
        #[test]
        fn window_total_is_the_sum_of_months_inside(
            entries in proptest::collection::vec((2020i32..2026, 1u32..=12, 0i64..10_000_000), 0..60),
            as_of_month in 0i64..72,
            months in 1u32..=24,
        ) {
            let mut costs = MonthlyCosts::default();
            for &(year, month, fen) in &entries {
                costs.add(ReliefKind::Illness, YearMonth { year, month }, Fen::new(fen)).unwrap();
            }
            let as_of = YearMonth::from_index(YearMonth { year: 2020, month: 1 }.index() + as_of_month).first_day();
            let w = Window::ending(as_of, months);
            let expected: i64 = entries
                .iter()
                .filter(|&&(year, month, _)| w.contains(YearMonth { year, month }))
                .map(|&(_, _, fen)| fen)
                .sum();
            prop_assert_eq!(costs.total(ReliefKind::Illness, &w), Fen::new(expected));
            prop_assert_eq!(costs.total(ReliefKind::Schooling, &w), Fen::ZERO);
        }
    }
}
