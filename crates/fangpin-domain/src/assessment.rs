//! Eligibility and the banded relief amount (防贫救助金额测算).
//!
//! A household qualifies when BOTH its verified per-capita income is below the
//! income line AND its verified cost of one relief kind crosses that kind's
//! threshold. The relief is a share of the cost above the threshold, paid band
//! by band, then capped. Every step is written out as a line of explanation so
//! a county auditor can follow the arithmetic.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Fen;
use crate::policy::{
    Band, Comparison, GapBasis, HouseholdType, IncomeBaseline, IncomeDropTerms, Policy, ReliefKind,
    ReliefRule, ReliefStatus,
};

/// What the surveyor verified in the home (入户查勘结果).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Findings {
    pub household_type: HouseholdType,
    pub relief_kind: ReliefKind,
    /// The verified per-capita income now (for income drop: after the drop).
    pub income_per_capita: Fen,
    /// The verified cost; zero for income drop, which has none.
    pub cost: Fen,
    /// Income drop only: the earlier verified per-capita incomes the
    /// baseline is taken from, the most recent first (one for the last
    /// verified income, one per year for an average of years).
    pub prior_incomes: Vec<Fen>,
    /// The household's members, for a household-wide income gap.
    pub members: u32,
    /// The household's civil-affairs status as of the event date, when civil
    /// affairs has verified one.
    pub status: Option<StatusEvidence>,
}

/// The civil-affairs record that decided a household's status (救助身份).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusEvidence {
    /// None when civil affairs verified the household as having none.
    pub status: Option<ReliefStatus>,
    pub verified_on: NaiveDate,
    /// The feed import the record came from.
    pub import_id: String,
}

/// The status as the computation used it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusApplied {
    pub evidence: StatusEvidence,
    /// A status term of the policy changed the rule.
    pub term_applied: bool,
    /// The threshold the term set, when it set one.
    pub threshold: Option<Fen>,
    pub bands_replaced: bool,
    pub income_condition_waived: bool,
}

/// How an income drop was measured and what the bands were applied to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomeDropComputation {
    pub baseline: IncomeBaseline,
    /// The earlier incomes, the most recent first.
    pub prior_incomes: Vec<Fen>,
    /// The baseline: the last verified income, or the average of
    /// `prior_incomes` rounded once to the fen, half away from zero.
    pub baseline_income: Fen,
    pub new_income: Fen,
    /// max(baseline − new, 0).
    pub drop: Fen,
    /// drop / baseline to four decimals, for reading; the qualifying test
    /// compares exactly (drop ≥ min share × baseline).
    pub drop_share: Decimal,
    pub min_drop_share: Option<Decimal>,
    pub min_drop_amount: Option<Fen>,
    pub qualified: bool,
    /// max(income line − new income, 0), per capita.
    pub gap_per_capita: Fen,
    pub gap_basis: GapBasis,
    pub members: u32,
    /// What the bands were applied to: the per-capita gap, or it × members.
    pub relief_base: Fen,
    /// The evidence of both incomes, as the survey recorded it.
    #[serde(default)]
    pub income_evidence_refs: Vec<String>,
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
    /// The civil-affairs status the assessment looked at, if any was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusApplied>,
    /// Income drop only: how the drop was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub income_drop: Option<IncomeDropComputation>,
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
    #[error(
        "the income-drop rule's baseline needs {expected} earlier per-capita income(s), {got} given"
    )]
    PriorIncomes { expected: u32, got: usize },
    #[error("earlier incomes are recorded for income-drop claims only")]
    PriorIncomesNotUsed,
    #[error("an income-drop claim has no cost: its relief is the gap below the income line")]
    CostOnIncomeDrop,
    #[error("a household has at least one member")]
    NoMembers,
}

impl AssessError {
    /// The findings field at fault, for the errors that are the caller's input.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            AssessError::NoRule { .. } | AssessError::NoMembers => None,
            AssessError::PriorIncomes { .. } | AssessError::PriorIncomesNotUsed => {
                Some("prior_incomes_per_capita_yuan")
            }
            AssessError::CostOnIncomeDrop => Some("verified_cost_yuan"),
        }
    }
}

fn comparison_words(c: Comparison) -> &'static str {
    match c {
        Comparison::AtLeast => "at least",
        Comparison::Above => "above",
    }
}

/// Applies the policy to the findings.
pub fn assess(policy: &Policy, findings: &Findings) -> Result<Assessment, AssessError> {
    let status = findings.status.as_ref().and_then(|s| s.status);
    let effective = policy
        .effective_rule(findings.household_type, findings.relief_kind, status)
        .ok_or(AssessError::NoRule {
            household_type: findings.household_type,
            relief_kind: findings.relief_kind,
        })?;
    if findings.members == 0 {
        return Err(AssessError::NoMembers);
    }
    match &effective.rule.income_drop {
        Some(terms) => {
            if findings.cost != Fen::ZERO {
                return Err(AssessError::CostOnIncomeDrop);
            }
            if findings.prior_incomes.len() != terms.baseline_years as usize {
                return Err(AssessError::PriorIncomes {
                    expected: terms.baseline_years,
                    got: findings.prior_incomes.len(),
                });
            }
        }
        None if !findings.prior_incomes.is_empty() => {
            return Err(AssessError::PriorIncomesNotUsed);
        }
        None => {}
    }
    let rule = effective.rule;
    let income_limit = policy.income_limit(findings.household_type);
    let income_met = findings.income_per_capita < income_limit;
    let mut explanation = Vec::new();
    if let Some(evidence) = &findings.status {
        explanation.push(match (evidence.status, effective.status_term) {
            (Some(s), Some(_)) => format!(
                "civil-affairs status {} ({}), verified {} (import {}): the policy's terms for {} households apply",
                s.as_str(),
                s.chinese(),
                evidence.verified_on,
                evidence.import_id,
                s.as_str()
            ),
            (Some(s), None) => format!(
                "civil-affairs status {} ({}), verified {} (import {}): no terms of its own for {}",
                s.as_str(),
                s.chinese(),
                evidence.verified_on,
                evidence.import_id,
                findings.relief_kind.as_str()
            ),
            (None, _) => format!(
                "civil-affairs status none, verified {} (import {})",
                evidence.verified_on, evidence.import_id
            ),
        });
    }
    explanation.push(format!(
        "income condition: verified per-capita income {} {} income line {} -> {}",
        findings.income_per_capita,
        if income_met { "<" } else { ">=" },
        income_limit,
        match (income_met, effective.income_waived) {
            (true, _) => "met",
            (false, true) => "not met, waived by the status term",
            (false, false) => "not met",
        },
    ));
    let (base, expenditure_met, income_drop) = match &rule.income_drop {
        Some(terms) => {
            let drop = measure_drop(terms, findings, income_limit);
            explanation.extend(drop_lines(&drop));
            (drop.relief_base, drop.qualified, Some(drop))
        }
        None => {
            let met = match rule.comparison {
                Comparison::AtLeast => findings.cost >= effective.threshold,
                Comparison::Above => findings.cost > effective.threshold,
            };
            explanation.push(format!(
                "expenditure condition ({}): verified cost {} against threshold {} ({}) -> {}",
                findings.relief_kind.as_str(),
                findings.cost,
                effective.threshold,
                comparison_words(rule.comparison),
                if met { "met" } else { "not met" },
            ));
            (findings.cost, met, None)
        }
    };
    let eligible = (income_met || effective.income_waived) && expenditure_met;
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
        status: findings.status.clone().map(|evidence| StatusApplied {
            evidence,
            term_applied: effective.status_term.is_some(),
            threshold: effective.status_term.and_then(|t| t.threshold),
            bands_replaced: effective.status_term.is_some_and(|t| !t.bands.is_empty()),
            income_condition_waived: effective.income_waived,
        }),
        income_drop,
    };
    let amount = if eligible {
        let cap = rule.cap.min(policy.case_cap);
        let banded = banded(effective.threshold, effective.bands, base, cap);
        let mut lines = banded.lines;
        if computation.income_drop.is_some() {
            // The bands of an income drop apply to the gap, not to a cost.
            lines[0] = format!("relief base (the gap) banded from 0.00: {}", banded.excess);
        }
        explanation.extend(lines);
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
        threshold: effective.threshold,
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

/// How much an income fell and whether the fall qualifies, per the rule's
/// terms; the relief base is the gap below the income line.
pub fn measure_drop(
    terms: &IncomeDropTerms,
    findings: &Findings,
    income_line: Fen,
) -> IncomeDropComputation {
    let baseline_income = match terms.baseline {
        IncomeBaseline::LastVerified => findings.prior_incomes[0],
        IncomeBaseline::AverageOfYears => {
            let sum: Decimal = findings
                .prior_incomes
                .iter()
                .map(|f| f.to_decimal_fen())
                .sum();
            Fen::round_from_decimal_fen(sum / Decimal::from(findings.prior_incomes.len()))
                .expect("the average of bounded incomes is bounded")
        }
    };
    let new_income = findings.income_per_capita;
    let drop = baseline_income
        .checked_sub(new_income)
        .unwrap_or(Fen::ZERO)
        .max(Fen::ZERO);
    let drop_share = if baseline_income > Fen::ZERO {
        (drop.to_decimal_fen() / baseline_income.to_decimal_fen())
            .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    } else {
        Decimal::ZERO
    };
    let share_ok = terms
        .min_drop_share
        .is_none_or(|min| drop.to_decimal_fen() >= min * baseline_income.to_decimal_fen());
    let amount_ok = terms.min_drop_amount.is_none_or(|min| drop >= min);
    let qualified = drop > Fen::ZERO && share_ok && amount_ok;
    let gap_per_capita = income_line
        .checked_sub(new_income)
        .unwrap_or(Fen::ZERO)
        .max(Fen::ZERO);
    let relief_base = match terms.gap_basis {
        GapBasis::PerCapita => gap_per_capita,
        GapBasis::Household => gap_per_capita
            .get()
            .checked_mul(i64::from(findings.members))
            .map(Fen::new)
            .filter(|f| *f <= crate::money::MAX_AMOUNT)
            .unwrap_or(crate::money::MAX_AMOUNT),
    };
    IncomeDropComputation {
        baseline: terms.baseline,
        prior_incomes: findings.prior_incomes.clone(),
        baseline_income,
        new_income,
        drop,
        drop_share,
        min_drop_share: terms.min_drop_share,
        min_drop_amount: terms.min_drop_amount,
        qualified,
        gap_per_capita,
        gap_basis: terms.gap_basis,
        members: findings.members,
        relief_base,
        income_evidence_refs: Vec::new(),
    }
}

fn drop_lines(d: &IncomeDropComputation) -> Vec<String> {
    let prior: Vec<String> = d.prior_incomes.iter().map(Fen::to_string).collect();
    let mut lines = vec![match d.baseline {
        IncomeBaseline::LastVerified => {
            format!(
                "baseline: last verified per-capita income {}",
                d.baseline_income
            )
        }
        IncomeBaseline::AverageOfYears => format!(
            "baseline: average of the {} earlier years ({}) = {}",
            d.prior_incomes.len(),
            prior.join(", "),
            d.baseline_income
        ),
    }];
    let mut conditions = Vec::new();
    if let Some(share) = d.min_drop_share {
        conditions.push(format!(
            "at least {}% of the baseline",
            (share * Decimal::ONE_HUNDRED).normalize()
        ));
    }
    if let Some(amount) = d.min_drop_amount {
        conditions.push(format!("at least {amount}"));
    }
    lines.push(format!(
        "income drop: {} - {} = {} ({}% of the baseline), qualifying drop {} -> {}",
        d.baseline_income,
        d.new_income,
        d.drop,
        (d.drop_share * Decimal::ONE_HUNDRED).normalize(),
        conditions.join(" and "),
        if d.qualified { "met" } else { "not met" },
    ));
    lines.push(match d.gap_basis {
        GapBasis::PerCapita => format!(
            "gap below the income line, per capita: {} (the relief base)",
            d.gap_per_capita
        ),
        GapBasis::Household => format!(
            "gap below the income line: {} per capita x {} members = {} (the relief base)",
            d.gap_per_capita, d.members, d.relief_base
        ),
    });
    lines
}

/// The relief for `cost` under `rule`, capped at `cap`: `banded` with the
/// rule's own threshold and bands.
pub fn banded_amount(rule: &ReliefRule, cost: Fen, cap: Fen) -> Banded {
    banded(rule.threshold, &rule.bands, cost, cap)
}

/// The relief for `cost` above `threshold`, in `bands`, capped at `cap`, with
/// one explanation line per band. Each band's share is kept exact and the sum
/// is rounded once, half away from zero, so no band loses or gains a fen to
/// rounding.
pub fn banded(threshold: Fen, rule_bands: &[Band], cost: Fen, cap: Fen) -> Banded {
    let excess = cost
        .checked_sub(threshold)
        .unwrap_or(Fen::ZERO)
        .max(Fen::ZERO);
    let mut lines = vec![format!(
        "cost above threshold: {} - {} = {}",
        cost, threshold, excess
    )];
    let mut total = Decimal::ZERO;
    let mut bands = Vec::new();
    for (i, band) in rule_bands.iter().enumerate() {
        if excess <= band.from {
            break;
        }
        let upper = rule_bands
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
            prior_incomes: Vec::new(),
            members: 3,
            status: None,
        }
    }

    fn six_kinds() -> Policy {
        Policy::example_six_kinds(CountyCode::parse("410602").expect("valid"), 2024)
    }

    fn income_drop(prior_yuan: i64, new_yuan: i64, members: u32) -> Findings {
        Findings {
            household_type: HouseholdType::Marginal,
            relief_kind: ReliefKind::IncomeDrop,
            income_per_capita: Fen::from_yuan(new_yuan),
            cost: Fen::ZERO,
            prior_incomes: vec![Fen::from_yuan(prior_yuan)],
            members,
            status: None,
        }
    }

    #[test]
    fn income_drop_pays_bands_on_the_household_gap() {
        // Line 6,000; income fell from 9,000 to 3,000 (66.67%, over 30%).
        // Gap 3,000 per capita x 3 members = 9,000: 2,000 x 50% + 7,000 x 80%.
        let a = assess(&six_kinds(), &income_drop(9_000, 3_000, 3)).expect("rule");
        assert!(a.eligible, "{:?}", a.explanation);
        assert_eq!(a.amount, Fen::from_yuan(1_000 + 5_600));
        let d = a.computation.income_drop.as_ref().expect("the drop");
        assert_eq!(d.drop, Fen::from_yuan(6_000));
        assert_eq!(d.drop_share, Decimal::new(6667, 4));
        assert_eq!(d.relief_base, Fen::from_yuan(9_000));
        assert!(
            a.explanation
                .iter()
                .any(|l| l.contains("3000.00 per capita x 3 members = 9000.00"))
        );
    }

    #[test]
    fn income_drop_under_the_share_or_above_the_line_pays_nothing() {
        let p = six_kinds();
        // 5,000 -> 3,600 is a 28% drop: under 30%.
        let small = assess(&p, &income_drop(5_000, 3_600, 2)).expect("rule");
        assert!(!small.expenditure_met && small.amount == Fen::ZERO);
        // A 50% drop that leaves the income above the line: no gap to fill.
        let rich = assess(&p, &income_drop(20_000, 10_000, 2)).expect("rule");
        assert!(rich.expenditure_met && !rich.income_met && rich.amount == Fen::ZERO);
    }

    #[test]
    fn income_drop_findings_are_checked() {
        let p = six_kinds();
        let mut none = income_drop(9_000, 3_000, 3);
        none.prior_incomes.clear();
        assert_eq!(
            assess(&p, &none).unwrap_err(),
            AssessError::PriorIncomes {
                expected: 1,
                got: 0
            }
        );
        let mut cost = income_drop(9_000, 3_000, 3);
        cost.cost = Fen::new(1);
        assert_eq!(
            assess(&p, &cost).unwrap_err(),
            AssessError::CostOnIncomeDrop
        );
        let mut illness = findings(ReliefKind::Illness, 3_000, 10_000);
        illness.prior_incomes.push(Fen::new(1));
        assert_eq!(
            assess(&p, &illness).unwrap_err(),
            AssessError::PriorIncomesNotUsed
        );
    }

    #[test]
    fn the_average_baseline_is_rounded_once() {
        let mut p = six_kinds();
        for rule in p
            .rules
            .iter_mut()
            .filter(|r| r.relief_kind == ReliefKind::IncomeDrop)
        {
            let terms = rule.income_drop.as_mut().expect("terms");
            terms.baseline = IncomeBaseline::AverageOfYears;
            terms.baseline_years = 3;
        }
        let mut f = income_drop(0, 3_000, 1);
        f.prior_incomes = vec![Fen::new(700_000), Fen::new(800_000), Fen::new(800_001)];
        let a = assess(&p, &f).expect("rule");
        let d = a.computation.income_drop.expect("the drop");
        // 2,300,001 / 3 = 766,667.0 fen.
        assert_eq!(d.baseline_income, Fen::new(766_667));
        assert_eq!(d.drop, Fen::new(466_667));
    }

    #[test]
    fn a_dibao_household_is_relieved_on_its_own_terms() {
        let p = six_kinds();
        // A marginal household: 20,000 threshold and an income of 7,000
        // above the 6,000 line would refuse 10,000 of illness costs.
        let mut f = findings(ReliefKind::Illness, 7_000, 10_000);
        f.household_type = HouseholdType::Marginal;
        let plain = assess(&p, &f).expect("rule");
        assert!(!plain.eligible);
        f.status = Some(StatusEvidence {
            status: Some(ReliefStatus::Dibao),
            verified_on: chrono::NaiveDate::from_ymd_opt(2024, 3, 1).expect("date"),
            import_id: "import-1".into(),
        });
        let dibao = assess(&p, &f).expect("rule");
        assert!(dibao.eligible, "{:?}", dibao.explanation);
        // Threshold 3,000, income waived: 7,000 x 70% = 4,900.
        assert_eq!(dibao.threshold, Fen::from_yuan(3_000));
        assert_eq!(dibao.amount, Fen::from_yuan(4_900));
        let applied = dibao.computation.status.as_ref().expect("status");
        assert!(applied.term_applied && applied.income_condition_waived && applied.bands_replaced);
        assert_eq!(applied.evidence.import_id, "import-1");
        assert!(
            dibao.explanation[0].contains("dibao"),
            "{:?}",
            dibao.explanation
        );
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
                prior_incomes: Vec::new(),
                members: 1,
                status: None,
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

        /// Income-drop relief: never above the cap, never falling as the
        /// drop grows, and nothing when the drop is under the qualifying
        /// share.
        #[test]
        fn income_drop_relief_is_capped_monotonic_and_needs_the_share(
            (rule, cap) in arb_rule(),
            share_pct in 1i64..=100,
            prior in 1i64..5_000_000,
            new_income in 0i64..5_000_000,
            deeper in 0i64..5_000_000,
            members in 1u32..12,
            line in 1i64..5_000_000,
        ) {
            let mut policy = six_kinds();
            policy.case_cap = cap;
            policy.status_terms.clear();
            policy.absolute_income_lines = vec![crate::policy::IncomeLine {
                household_type: HouseholdType::Marginal,
                limit: Fen::new(line),
            }];
            let terms = crate::policy::IncomeDropTerms {
                baseline: IncomeBaseline::LastVerified,
                baseline_years: 1,
                min_drop_share: Some(Decimal::new(share_pct, 2)),
                min_drop_amount: None,
                gap_basis: GapBasis::Household,
            };
            policy.rules = vec![ReliefRule {
                household_type: HouseholdType::Marginal,
                relief_kind: ReliefKind::IncomeDrop,
                threshold: Fen::ZERO,
                income_drop: Some(terms),
                ..rule
            }];
            prop_assert_eq!(policy.validate(), Ok(()));
            let f = |new: i64| Findings {
                household_type: HouseholdType::Marginal,
                relief_kind: ReliefKind::IncomeDrop,
                income_per_capita: Fen::new(new),
                cost: Fen::ZERO,
                prior_incomes: vec![Fen::new(prior)],
                members,
                status: None,
            };
            let a = assess(&policy, &f(new_income)).expect("the rule");
            let lower = new_income.saturating_sub(deeper);
            let b = assess(&policy, &f(lower)).expect("the rule");
            prop_assert!(a.amount >= Fen::ZERO && a.amount <= cap);
            prop_assert!(b.amount >= a.amount, "a deeper drop never pays less");
            let drop = (prior - new_income).max(0);
            if Decimal::from(drop) < Decimal::new(share_pct, 2) * Decimal::from(prior) {
                prop_assert_eq!(a.amount, Fen::ZERO);
                prop_assert!(!a.eligible);
            }
        }
    }
}
