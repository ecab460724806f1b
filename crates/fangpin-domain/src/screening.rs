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

use crate::feeds::YearMonth;
use crate::money::Fen;
use crate::policy::{Comparison, HouseholdType, Policy, ReliefKind};

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
pub fn screen_household(
    policy: &Policy,
    household_type: HouseholdType,
    income: Option<VerifiedIncome>,
    costs: &MonthlyCosts,
    as_of: NaiveDate,
) -> Outcome {
    let mut out = Outcome::default();
    let income_limit = policy.income_limit(household_type);
    for kind in ReliefKind::ALL {
        let Some(rule) = policy.rule(household_type, kind) else {
            continue;
        };
        let window = Window::ending(as_of, rule.screening_window_months);
        let cost = costs.total(kind, &window);
        let crossed = match rule.comparison {
            Comparison::AtLeast => cost >= rule.threshold,
            Comparison::Above => cost > rule.threshold,
        };
        if !crossed || cost == Fen::ZERO {
            continue;
        }
        if income.is_some_and(|i| i.per_capita >= income_limit) {
            out.excluded_by_income.push(kind);
            continue;
        }
        let over_by = cost
            .checked_sub(rule.threshold)
            .expect("cost crossed the threshold, both within limits");
        let income_text = match income {
            Some(i) => format!(
                "verified per-capita income {} < line {} (civil affairs, {})",
                i.per_capita, income_limit, i.verified_on
            ),
            None => format!(
                "income not yet verified: the survey checks it against the line {income_limit}"
            ),
        };
        let reason = format!(
            "{} ({}): {} in {} {} threshold {} for {} households, {} over; {}",
            kind.as_str(),
            kind.chinese(),
            cost,
            window,
            match rule.comparison {
                Comparison::AtLeast => ">=",
                Comparison::Above => ">",
            },
            rule.threshold,
            household_type.as_str(),
            over_by,
            income_text,
        );
        out.candidates.push(Candidate {
            relief_kind: kind,
            window,
            cost,
            threshold: rule.threshold,
            comparison: rule.comparison,
            over_by,
            income_limit,
            income,
            reason,
        });
    }
    out
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
            HouseholdType::UnstableEscaped,
            None,
            &costs,
            date(2024, 11, 5),
        );
        assert_eq!(out.candidates.len(), 1);
        let c = &out.candidates[0];
        assert_eq!((c.cost, c.over_by), (Fen::from_yuan(5_000), Fen::ZERO));
        assert!(c.reason.contains("2023-12..2024-11"), "{}", c.reason);
        // A marginal household's threshold is 20,000.
        let out = screen_household(&p, HouseholdType::Marginal, None, &costs, date(2024, 11, 5));
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
        };
        let out = screen_household(
            &p,
            HouseholdType::Marginal,
            Some(rich),
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
            HouseholdType::Marginal,
            Some(poor),
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
        let out = screen_household(&p, HouseholdType::Marginal, None, &exact, date(2024, 10, 1));
        assert!(out.candidates.is_empty());
    }

    proptest! {
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
