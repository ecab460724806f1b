//! Eligibility and the banded relief amount (防贫救助金额测算).
//!
//! A household qualifies when BOTH its verified per-capita income is below the
//! income line AND its verified cost of one relief kind crosses that kind's
//! threshold. The relief is a share of the cost above the threshold, paid band
//! by band, then capped. Every step is written out as a line of explanation so
//! a county auditor can follow the arithmetic.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Fen;
use crate::policy::{Comparison, HouseholdType, Policy, ReliefKind, ReliefRule};

/// What the surveyor verified in the home (入户查勘结果).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Findings {
    pub household_type: HouseholdType,
    pub relief_kind: ReliefKind,
    pub income_per_capita: Fen,
    pub cost: Fen,
}

/// One band of the relief as computed: the part of the cost above the
/// threshold that falls in `from..to`, at `rate`, and its exact share in
/// fen (fractions of a fen kept; the sum is rounded once).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandShare {
    pub from: Fen,
    pub to: Fen,
    pub rate: Decimal,
    pub share_fen: Decimal,
}

/// How the amount was computed, in numbers an auditor can recompute from
/// alone (防贫救助金额测算明细): the rule applied, both conditions with their
/// comparisons, each band, the exact sum, its one rounding, and the caps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Computation {
    pub household_type: HouseholdType,
    pub relief_kind: ReliefKind,
    /// The income condition is always strict: income below the line.
    pub income_comparison: String,
    pub comparison: Comparison,
    pub cost_above_threshold: Fen,
    pub bands: Vec<BandShare>,
    /// The sum of the exact band shares, in fen.
    pub banded_exact_fen: Decimal,
    /// `banded_exact_fen` rounded once, half away from zero.
    pub banded: Fen,
    pub rule_cap: Fen,
    pub case_cap: Fen,
    /// The cap that bounded the amount, when one did.
    pub capped_at: Option<Fen>,
    pub rounding: String,
}

/// The rounding every assessment uses, as the wire names it.
pub const ROUNDING: &str = "half_away_from_zero_once_on_the_sum_of_exact_band_shares";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub income_limit: Fen,
    pub income_met: bool,
    pub threshold: Fen,
    pub expenditure_met: bool,
    pub eligible: bool,
    /// The relief before any emergency advance is deducted; zero when not eligible.
    pub amount: Fen,
    pub explanation: Vec<String>,
    pub computation: Computation,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssessError {
    #[error("the policy has no rule for {relief_kind:?} relief for {household_type:?} households")]
    NoRule {
        household_type: HouseholdType,
        relief_kind: ReliefKind,
    },
}

/// Applies the policy to the findings.
pub fn assess(policy: &Policy, findings: &Findings) -> Result<Assessment, AssessError> {
    let rule = policy
        .rule(findings.household_type, findings.relief_kind)
        .ok_or(AssessError::NoRule {
            household_type: findings.household_type,
            relief_kind: findings.relief_kind,
        })?;
    let income_limit = policy.income_limit(findings.household_type);
    let income_met = findings.income_per_capita < income_limit;
    let expenditure_met = match rule.comparison {
        Comparison::AtLeast => findings.cost >= rule.threshold,
        Comparison::Above => findings.cost > rule.threshold,
    };
    let mut explanation = vec![format!(
        "income condition: verified per-capita income {} {} income line {} -> {}",
        findings.income_per_capita,
        if income_met { "<" } else { ">=" },
        income_limit,
        if income_met { "met" } else { "not met" },
    )];
    explanation.push(format!(
        "expenditure condition ({}): verified cost {} against threshold {} ({}) -> {}",
        findings.relief_kind.as_str(),
        findings.cost,
        rule.threshold,
        match rule.comparison {
            Comparison::AtLeast => "at least",
            Comparison::Above => "above",
        },
        if expenditure_met { "met" } else { "not met" },
    ));
    let eligible = income_met && expenditure_met;
    let mut computation = Computation {
        household_type: findings.household_type,
        relief_kind: findings.relief_kind,
        income_comparison: "below".to_string(),
        comparison: rule.comparison,
        cost_above_threshold: Fen::ZERO,
        bands: Vec::new(),
        banded_exact_fen: Decimal::ZERO,
        banded: Fen::ZERO,
        rule_cap: rule.cap,
        case_cap: policy.case_cap,
        capped_at: None,
        rounding: ROUNDING.to_string(),
    };
    let amount = if eligible {
        let cap = rule.cap.min(policy.case_cap);
        let banded = banded_amount(rule, findings.cost, cap);
        explanation.extend(banded.lines);
        computation.cost_above_threshold = banded.excess;
        computation.bands = banded.bands;
        computation.banded_exact_fen = banded.exact_fen;
        computation.banded = banded.banded;
        computation.capped_at = (banded.amount < banded.banded).then_some(cap);
        banded.amount
    } else {
        explanation.push("not eligible: relief 0.00".to_string());
        Fen::ZERO
    };
    Ok(Assessment {
        income_limit,
        income_met,
        threshold: rule.threshold,
        expenditure_met,
        eligible,
        amount,
        explanation,
        computation,
    })
}

/// The banded relief of one cost, step by step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Banded {
    pub excess: Fen,
    pub bands: Vec<BandShare>,
    pub exact_fen: Decimal,
    pub banded: Fen,
    /// `banded`, capped.
    pub amount: Fen,
    pub lines: Vec<String>,
}

/// The relief for `cost` under `rule`, capped at `cap`, with one explanation
/// line per band. Each band's share is kept exact and the sum is rounded once,
/// half away from zero, so no band loses or gains a fen to rounding.
pub fn banded_amount(rule: &ReliefRule, cost: Fen, cap: Fen) -> Banded {
    let excess = cost
        .checked_sub(rule.threshold)
        .unwrap_or(Fen::ZERO)
        .max(Fen::ZERO);
    let mut lines = vec![format!(
        "cost above threshold: {} - {} = {}",
        cost, rule.threshold, excess
    )];
    let mut total = Decimal::ZERO;
    let mut bands = Vec::new();
    for (i, band) in rule.bands.iter().enumerate() {
        if excess <= band.from {
            break;
        }
        let upper = rule
            .bands
            .get(i + 1)
            .map_or(excess, |next| next.from.min(excess));
        let portion = Fen::new(upper.get() - band.from.get());
        let share = portion.to_decimal_fen() * band.rate;
        total += share;
        bands.push(BandShare {
            from: band.from,
            to: upper,
            rate: band.rate,
            share_fen: share,
        });
        lines.push(format!(
            "band {}: {} x {}% = {}",
            i + 1,
            portion,
            (band.rate * Decimal::ONE_HUNDRED).normalize(),
            share_display(share),
        ));
    }
    let banded =
        Fen::round_from_decimal_fen(total).expect("banded share of a bounded cost fits in i64 fen");
    lines.push(format!("banded relief (rounded to the fen): {banded}"));
    let amount = banded.min(cap);
    if amount < banded {
        lines.push(format!("capped at {cap}: relief {amount}"));
    }
    debug_assert!(amount >= Fen::ZERO && amount <= cap);
    Banded {
        excess,
        bands,
        exact_fen: total,
        banded,
        amount,
        lines,
    }
}

/// Formats an exact fen share as yuan: at least two decimals, more only when
/// the share has fractions of a fen (which the single final rounding settles).
fn share_display(share_fen: Decimal) -> String {
    let mut yuan = (share_fen / Decimal::ONE_HUNDRED).normalize();
    if yuan.scale() < 2 {
        yuan.rescale(2);
    }
    yuan.to_string()
}

/// What the payout pays once an emergency advance was given first (先救助后认定):
/// the advance is deducted, and an advance larger than the final relief is not
/// clawed back from a family in crisis, so the payout floors at zero.
pub fn net_payout(assessed: Fen, advance: Fen) -> Fen {
    assessed
        .checked_sub(advance)
        .unwrap_or(Fen::ZERO)
        .max(Fen::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::CountyCode;
    use crate::policy::Band;
    use proptest::prelude::*;

    fn policy() -> Policy {
        Policy::example(CountyCode::parse("130426").expect("valid"), 2024)
    }

    fn findings(kind: ReliefKind, income_yuan: i64, cost_yuan: i64) -> Findings {
        Findings {
            household_type: HouseholdType::UnstableEscaped,
            relief_kind: kind,
            income_per_capita: Fen::from_yuan(income_yuan),
            cost: Fen::from_yuan(cost_yuan),
        }
    }

    #[test]
    fn pays_bands_above_threshold() {
        // 100,000 of illness cost, threshold 5,000: 95,000 above it.
        // 30,000 x 60% + 50,000 x 65% + 15,000 x 75% = 18,000 + 32,500 + 11,250.
        let a = assess(&policy(), &findings(ReliefKind::Illness, 3_000, 100_000)).expect("rule");
        assert!(a.eligible);
        assert_eq!(a.amount, Fen::from_yuan(61_750));
        assert_eq!(a.explanation.len(), 2 + 1 + 3 + 1);
        assert_eq!(a.explanation[3], "band 1: 30000.00 x 60% = 18000.00");
        assert_eq!(a.explanation[5], "band 3: 15000.00 x 75% = 11250.00");
    }

    #[test]
    fn both_conditions_are_needed() {
        let p = policy();
        let rich = assess(&p, &findings(ReliefKind::Illness, 6_000, 100_000)).expect("rule");
        assert!(!rich.income_met && !rich.eligible && rich.amount == Fen::ZERO);
        let cheap = assess(&p, &findings(ReliefKind::Illness, 3_000, 4_999)).expect("rule");
        assert!(!cheap.expenditure_met && cheap.amount == Fen::ZERO);
    }

    #[test]
    fn at_least_and_above_differ_at_the_threshold() {
        let p = policy();
        let illness = assess(&p, &findings(ReliefKind::Illness, 3_000, 5_000)).expect("rule");
        assert!(illness.eligible, "illness: cost >= 5,000 qualifies");
        assert_eq!(illness.amount, Fen::ZERO);
        let schooling = assess(&p, &findings(ReliefKind::Schooling, 3_000, 8_000)).expect("rule");
        assert!(!schooling.eligible, "schooling: cost must exceed 8,000");
    }

    #[test]
    fn caps_the_case() {
        let b = banded_amount(
            &policy().rules[0],
            Fen::from_yuan(1_000_000),
            Fen::from_yuan(200_000),
        );
        assert_eq!(b.amount, Fen::from_yuan(200_000));
        assert!(b.lines.last().expect("lines").starts_with("capped"));
    }

    #[test]
    fn rounds_once_half_away_from_zero() {
        let rule = ReliefRule {
            bands: vec![
                Band {
                    from: Fen::ZERO,
                    rate: Decimal::new(333, 3),
                },
                Band {
                    from: Fen::new(1),
                    rate: Decimal::new(333, 3),
                },
            ],
            ..policy().rules[0].clone()
        };
        // 0.333 + 0.333 = 0.666 fen -> 1 fen, where rounding each band would give 0.
        let b = banded_amount(
            &rule,
            rule.threshold.checked_add(Fen::new(2)).expect("small"),
            crate::money::MAX_AMOUNT,
        );
        assert_eq!(b.amount, Fen::new(1));
        assert_eq!(b.exact_fen, Decimal::new(666, 3));
        assert_eq!(share_display(Decimal::new(333, 3)), "0.00333");
    }

    #[test]
    fn unknown_kind_is_an_error() {
        let e = assess(&policy(), &findings(ReliefKind::IncomeDrop, 1, 1)).unwrap_err();
        assert!(matches!(e, AssessError::NoRule { .. }));
    }

    #[test]
    fn advance_is_deducted_and_floors_at_zero() {
        assert_eq!(net_payout(Fen::new(1_000), Fen::new(300)), Fen::new(700));
        assert_eq!(net_payout(Fen::new(1_000), Fen::new(3_000)), Fen::ZERO);
    }

    fn arb_rule() -> impl Strategy<Value = (ReliefRule, Fen)> {
        let bands =
            proptest::collection::vec((1i64..10_000_000, 0u32..=100), 1..8).prop_map(|raw| {
                let mut from = 0i64;
                let mut bands = Vec::new();
                for (i, (step, pct)) in raw.into_iter().enumerate() {
                    if i > 0 {
                        from += step;
                    }
                    bands.push(Band {
                        from: Fen::new(from),
                        rate: Decimal::new(pct.into(), 2),
                    });
                }
                bands
            });
        (bands, 0i64..5_000_000, 1i64..50_000_000).prop_map(|(bands, threshold, cap)| {
            let rule = ReliefRule {
                bands,
                threshold: Fen::new(threshold),
                cap: Fen::new(cap),
                ..policy().rules[0].clone()
            };
            (rule, Fen::new(cap))
        })
    }

    proptest! {
        #[test]
        fn banded_amount_is_bounded_and_monotonic(
            (rule, cap) in arb_rule(),
            cost in 0i64..100_000_000,
            more in 0i64..10_000_000,
        ) {
            let a = banded_amount(&rule, Fen::new(cost), cap).amount;
            let b = banded_amount(&rule, Fen::new(cost + more), cap).amount;
            prop_assert!(a >= Fen::ZERO, "never negative");
            prop_assert!(a <= cap && b <= cap, "never above the cap");
            prop_assert!(b >= a, "never decreasing as cost rises");
            prop_assert!(a <= Fen::new(cost), "never more than the cost itself");
        }

        /// The computation alone gives the amount back: each band's share is
        /// its width times its rate, the sum is rounded once half away from
        /// zero, and the tighter cap bounds it.
        #[test]
        fn the_computation_recomputes_the_amount(
            (rule, cap) in arb_rule(),
            cost in 0i64..100_000_000,
        ) {
            let mut policy = policy();
            policy.case_cap = cap;
            policy.rules = vec![rule.clone()];
            let f = Findings {
                household_type: rule.household_type,
                relief_kind: rule.relief_kind,
                income_per_capita: Fen::ZERO,
                cost: Fen::new(cost),
            };
            let a = assess(&policy, &f).expect("the rule");
            let c = &a.computation;
            let mut sum = Decimal::ZERO;
            for band in &c.bands {
                let share = Decimal::from(band.to.get() - band.from.get()) * band.rate;
                prop_assert_eq!(share, band.share_fen);
                sum += share;
            }
            prop_assert_eq!(sum, c.banded_exact_fen);
            let rounded = sum.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
            prop_assert_eq!(Decimal::from(c.banded.get()), rounded);
            let expected = if a.eligible { c.banded.min(c.rule_cap).min(c.case_cap) } else { Fen::ZERO };
            prop_assert_eq!(a.amount, expected);
            prop_assert_eq!(c.capped_at.is_some(), a.eligible && a.amount < c.banded);
        }
    }
}
