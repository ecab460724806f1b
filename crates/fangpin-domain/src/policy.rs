//! The county policy (防贫保险方案): every figure a county sets for one policy
//! year. Nothing here is a constant of the code; `Policy::example` only seeds
//! fixtures and the CLI's template with the figures published by Handan.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::claim::{Procedure, ReviewStep};
use crate::identity::CountyCode;
use crate::money::{Fen, MAX_AMOUNT};

/// The kind of household, which decides the income line and the thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HouseholdType {
    /// 脱贫不稳定户 (非高标准脱贫户): escaped poverty, but not securely.
    UnstableEscaped,
    /// 边缘易致贫户 (非贫低收入户): never registered poor, at risk of becoming so.
    Marginal,
    /// 突发严重困难户: a household suddenly in severe difficulty (national
    /// monitoring since 2021), the usual type of the emergency path.
    SuddenSevereDifficulty,
}

impl HouseholdType {
    pub const ALL: [HouseholdType; 3] = [
        HouseholdType::UnstableEscaped,
        HouseholdType::Marginal,
        HouseholdType::SuddenSevereDifficulty,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HouseholdType::UnstableEscaped => "unstable_escaped",
            HouseholdType::Marginal => "marginal",
            HouseholdType::SuddenSevereDifficulty => "sudden_severe_difficulty",
        }
    }

    pub fn parse(text: &str) -> Option<HouseholdType> {
        HouseholdType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// Why a household needs relief. Handan uses the first four; Hebi splits
/// schooling in two and adds income drop, so a county picks its kinds by giving
/// them thresholds in its policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReliefKind {
    /// 因病: in-patient out-of-pocket medical costs.
    Illness,
    /// 因学 / 在校: tuition, accommodation and textbooks while in school.
    Schooling,
    /// 因意外 / 因灾: loss after commercial insurance and social assistance.
    Accident,
    /// 因产业风险: loss from natural disaster or failed business.
    Industry,
    /// 升学: costs of entering school (Hebi).
    SchoolEntry,
    /// 收入下降: a sharp fall in income (Hebi).
    IncomeDrop,
}

impl ReliefKind {
    pub const ALL: [ReliefKind; 6] = [
        ReliefKind::Illness,
        ReliefKind::Schooling,
        ReliefKind::Accident,
        ReliefKind::Industry,
        ReliefKind::SchoolEntry,
        ReliefKind::IncomeDrop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReliefKind::Illness => "illness",
            ReliefKind::Schooling => "schooling",
            ReliefKind::Accident => "accident",
            ReliefKind::Industry => "industry",
            ReliefKind::SchoolEntry => "school_entry",
            ReliefKind::IncomeDrop => "income_drop",
        }
    }

    pub fn parse(text: &str) -> Option<ReliefKind> {
        ReliefKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The kind's position in `ReliefKind::ALL`, for per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The Chinese name printed on publicity notices.
    pub fn chinese(self) -> &'static str {
        match self {
            ReliefKind::Illness => "因病",
            ReliefKind::Schooling => "因学",
            ReliefKind::Accident => "因意外",
            ReliefKind::Industry => "因产业风险",
            ReliefKind::SchoolEntry => "升学",
            ReliefKind::IncomeDrop => "收入下降",
        }
    }
}

/// Whether the expenditure condition is met at the threshold itself (Handan's
/// illness rule, "≥ 5,000") or only above it (schooling, "> 8,000").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    AtLeast,
    Above,
}

/// One payout band (分段): cost above the threshold from `from` upwards (until
/// the next band starts) is paid at `rate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Band {
    pub from: Fen,
    pub rate: Decimal,
}

/// The expenditure rule for one household type and relief kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReliefRule {
    pub household_type: HouseholdType,
    pub relief_kind: ReliefKind,
    pub threshold: Fen,
    pub comparison: Comparison,
    pub bands: Vec<Band>,
    /// The cap for this kind (Baihe: 20,000 for schooling); the policy's case
    /// cap applies as well.
    pub cap: Fen,
    /// How many calendar months of department data a screening run adds up
    /// for this kind, ending with the month of the run ("一年内": 12 for
    /// illness in Handan). Policies stored before screening existed had no
    /// such field; they were all written with the yearly rule in mind.
    #[serde(default = "ReliefRule::yearly_window")]
    pub screening_window_months: u32,
    /// How an income drop (收入下降) is measured and qualifies; present on
    /// `IncomeDrop` rules only, whose bands apply to the gap between the new
    /// income and the income line instead of to a cost above a threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub income_drop: Option<IncomeDropTerms>,
}

/// What the new per-capita income is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncomeBaseline {
    /// The last verified per-capita income before the drop.
    LastVerified,
    /// The average of the per-capita incomes of the `baseline_years`
    /// calendar years before the drop.
    AverageOfYears,
}

/// What the bands of an income-drop rule are applied to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapBasis {
    /// The per-capita gap: income line − new per-capita income.
    PerCapita,
    /// The household's gap: the per-capita gap × the household's members.
    Household,
}

/// The income-drop rule's own terms (Hebi: "家庭有贫困风险导致收入下降").
/// A drop qualifies when it reaches every condition the policy sets: a
/// share of the baseline, an amount, or both.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomeDropTerms {
    pub baseline: IncomeBaseline,
    /// Years averaged for `AverageOfYears`; 1 for `LastVerified`.
    pub baseline_years: u32,
    /// The drop must be at least this share of the baseline (0.30 = 30%).
    pub min_drop_share: Option<Decimal>,
    /// The drop must be at least this per-capita amount.
    pub min_drop_amount: Option<Fen>,
    pub gap_basis: GapBasis,
}

/// The longest baseline an income-drop rule may average.
pub const MAX_BASELINE_YEARS: u32 = 5;

/// How first-year school costs (the education feed's `entry_stage`) count
/// when a household type has both a school-entry (升学) and a schooling (在校)
/// rule. A cost is counted under one kind only, never both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryYearCosts {
    /// Under school entry when they reach its threshold, otherwise under
    /// schooling together with the other years' costs.
    #[default]
    EntryFirst,
    /// Under school entry only.
    SchoolEntryOnly,
    /// Under schooling only; school entry is then claimed by application.
    SchoolingOnly,
}

/// A civil-affairs status a county relieves on its own terms (Hebi covers
/// 低保户, 残疾人 and 特殊家庭).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReliefStatus {
    /// 低保: minimum living allowance.
    Dibao,
    /// 特困: extreme poverty support.
    Tekun,
    /// 残疾: registered disability.
    Disability,
}

impl ReliefStatus {
    pub const ALL: [ReliefStatus; 3] = [
        ReliefStatus::Dibao,
        ReliefStatus::Tekun,
        ReliefStatus::Disability,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReliefStatus::Dibao => "dibao",
            ReliefStatus::Tekun => "tekun",
            ReliefStatus::Disability => "disability",
        }
    }

    pub fn parse(text: &str) -> Option<ReliefStatus> {
        ReliefStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    pub fn chinese(self) -> &'static str {
        match self {
            ReliefStatus::Dibao => "低保",
            ReliefStatus::Tekun => "特困",
            ReliefStatus::Disability => "残疾",
        }
    }
}

/// Easier terms for households with a civil-affairs status, for one relief
/// kind (all household types). What is not set is taken from the
/// household type's own rule, which must exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusTerm {
    pub status: ReliefStatus,
    pub relief_kind: ReliefKind,
    /// Replaces the rule's threshold (cost kinds only).
    pub threshold: Option<Fen>,
    /// Replaces the rule's bands when not empty.
    #[serde(default)]
    pub bands: Vec<Band>,
    /// The income condition does not apply (cost kinds only).
    #[serde(default)]
    pub waive_income_condition: bool,
}

/// The rule that applies to one household for one relief kind: the
/// household type's rule with any status term laid over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectiveRule<'p> {
    pub rule: &'p ReliefRule,
    pub threshold: Fen,
    pub bands: &'p [Band],
    pub income_waived: bool,
    /// The term that changed the rule, when one did.
    pub status_term: Option<&'p StatusTerm>,
}

/// The longest screening window a rule may ask for: two years of monthly data.
pub const MAX_SCREENING_WINDOW_MONTHS: u32 = 24;

impl ReliefRule {
    fn yearly_window() -> u32 {
        12
    }
}

/// An absolute income line that replaces "multiplier × poverty line" for one
/// household type (Anju: 5,000 yuan for unstable, 6,000 for others).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomeLine {
    pub household_type: HouseholdType,
    pub limit: Fen,
}

/// A county's policy for one policy year, in one version. A version used by any
/// claim is frozen: the storage layer refuses to replace it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub county: CountyCode,
    pub policy_year: i32,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// Per-capita annual disposable income that defines poverty (国家扶贫标准).
    pub poverty_line: Fen,
    /// Income below `poverty_line × income_multiplier` meets the income condition.
    pub income_multiplier: Decimal,
    pub absolute_income_lines: Vec<IncomeLine>,
    pub rules: Vec<ReliefRule>,
    /// The most any single case can be paid (Handan: 200,000 yuan).
    pub case_cap: Fen,
    pub premium_per_person: Fen,
    /// Share of the rural population insured (about 10%).
    pub pool_ratio: Decimal,
    /// The insurer's fee as a share of the year's relief paid (Wuyang: 15%).
    pub service_fee_rate: Decimal,
    /// Calendar days a proposed relief stays on the village notice board.
    pub publicity_days: u32,
    /// Chinese working days from intake to the survey decision.
    pub survey_deadline_working_days: u32,
    /// How first-year school costs count (升学 against 在校).
    #[serde(default)]
    pub entry_year_costs: EntryYearCosts,
    /// Easier terms for households with a civil-affairs status.
    #[serde(default)]
    pub status_terms: Vec<StatusTerm>,
    /// The time limits after the survey (限时办结) and the follow-up
    /// cadence. Policies stored before them have none: only the survey
    /// deadline is watched, and follow-up cases owe no visit on a cadence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limits: Option<TimeLimits>,
    /// The departments' checks filing requires (县级相关部门信息比对), in
    /// order. None listed: filing needs no structured check (policies
    /// stored before them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross_checks: Vec<CrossCheckKind>,
    /// The most the township head may approve as an emergency advance
    /// (遇困即扶); None: the case cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_advance_limit: Option<Fen>,
    /// The county's own steps after the survey's recommendation, in order
    /// (办理程序; `claim::Procedure` says which orders are allowed).
    /// Policies stored before counties chose them ran publicity then
    /// filing, and are read so.
    #[serde(default = "publicity_then_filing")]
    pub review_steps: Vec<ReviewStep>,
}

fn publicity_then_filing() -> Vec<ReviewStep> {
    Procedure::publicity_then_filing().steps().to_vec()
}

/// One check a county department makes before filing: vehicles (车辆),
/// real estate (房产), business registration (工商登记), public employment
/// (财政供养人员), and whatever else the county adds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossCheckKind {
    /// `[a-z][a-z0-9_]*`, at most 40 characters: how results name the check.
    pub code: String,
    /// What the notice and the history show (车辆信息比对).
    pub name: String,
}

/// The most checks a policy lists.
pub const MAX_CROSS_CHECKS: usize = 20;

/// Working days each stage may take, and the monitoring list's due day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeLimits {
    /// From publicity passed to the county's filing (备案).
    pub filing_working_days: u32,
    /// From filing to payment.
    pub payout_working_days: u32,
    /// Between follow-up visits (Handan: at least once a quarter, 每季度至少入户走访1次).
    pub follow_up_visit_working_days: u32,
    /// The day of the month a monthly monitoring list is due back from the
    /// townships (Hebi: the 10th).
    pub monitoring_list_due_day: u32,
}

/// The longest follow-up cadence: half a year of working days.
pub const MAX_VISIT_WORKING_DAYS: u32 = 130;

/// One reason a policy is not acceptable, naming the field as a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

/// Limits that keep one policy small enough to check and print whole.
pub const MAX_RULES: usize = 64;
pub const MAX_BANDS: usize = 16;
pub const MAX_PUBLICITY_DAYS: u32 = 60;
pub const MAX_SURVEY_WORKING_DAYS: u32 = 120;
pub const MAX_STATUS_TERMS: usize = 32;

impl Policy {
    /// Checks every figure. All violations are returned at once so a county
    /// office can fix its policy in one round.
    pub fn validate(&self) -> Result<(), Vec<Violation>> {
        let mut out = Vec::new();
        let mut bad = |field: String, description: &str| {
            out.push(Violation {
                field,
                description: description.to_string(),
            });
        };
        let one = Decimal::ONE;
        if !(2000..=2100).contains(&self.policy_year) {
            bad("policy_year".into(), "must be between 2000 and 2100");
        }
        // The policy year is the year its dates lie in: a 2027 policy dated
        // in 2026 would take 2026's events into 2027's pool.
        if chrono::Datelike::year(&self.starts_on) != self.policy_year {
            bad("starts_on".into(), "must lie in the policy year");
        }
        if chrono::Datelike::year(&self.ends_on) != self.policy_year {
            bad("ends_on".into(), "must lie in the policy year");
        }
        if self.ends_on < self.starts_on {
            bad("ends_on".into(), "must not be before starts_on");
        } else if (self.ends_on - self.starts_on).num_days() > 366 {
            bad("ends_on".into(), "a policy year lasts at most 366 days");
        }
        if self.poverty_line <= Fen::ZERO || self.poverty_line > MAX_AMOUNT {
            bad("poverty_line".into(), "must be positive");
        }
        if self.income_multiplier <= Decimal::ZERO || self.income_multiplier > Decimal::TEN {
            bad("income_multiplier".into(), "must be above 0 and at most 10");
        }
        for (i, line) in self.absolute_income_lines.iter().enumerate() {
            if line.limit <= Fen::ZERO || line.limit > MAX_AMOUNT {
                bad(
                    format!("absolute_income_lines[{i}].limit"),
                    "must be positive",
                );
            }
            if self.absolute_income_lines[..i]
                .iter()
                .any(|l| l.household_type == line.household_type)
            {
                bad(
                    format!("absolute_income_lines[{i}].household_type"),
                    "is listed twice",
                );
            }
        }
        if self.rules.is_empty() {
            bad("rules".into(), "at least one relief rule is needed");
        }
        if self.rules.len() > MAX_RULES {
            bad("rules".into(), "too many relief rules");
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |f: &str| format!("rules[{i}].{f}");
            if self.rules[..i].iter().any(|r| {
                r.household_type == rule.household_type && r.relief_kind == rule.relief_kind
            }) {
                bad(
                    at("relief_kind"),
                    "a rule for this household type and relief kind already exists",
                );
            }
            if rule.threshold < Fen::ZERO || rule.threshold > MAX_AMOUNT {
                bad(at("threshold"), "must be between 0 and the amount limit");
            }
            if rule.cap <= Fen::ZERO || rule.cap > MAX_AMOUNT {
                bad(at("cap"), "must be positive");
            }
            if !(1..=MAX_SCREENING_WINDOW_MONTHS).contains(&rule.screening_window_months) {
                bad(at("screening_window_months"), "must be between 1 and 24");
            }
            if rule.bands.is_empty() || rule.bands.len() > MAX_BANDS {
                bad(at("bands"), "between 1 and 16 bands are needed");
            }
            if rule.bands.first().is_some_and(|b| b.from != Fen::ZERO) {
                bad(
                    at("bands[0].from"),
                    "the first band must start at 0 above the threshold",
                );
            }
            for (j, band) in rule.bands.iter().enumerate() {
                if band.rate < Decimal::ZERO || band.rate > one {
                    bad(at(&format!("bands[{j}].rate")), "must be between 0 and 1");
                }
                if band.from > MAX_AMOUNT {
                    bad(at(&format!("bands[{j}].from")), "exceeds the amount limit");
                }
                if j > 0 && band.from <= rule.bands[j - 1].from {
                    bad(
                        at(&format!("bands[{j}].from")),
                        "bands must start at strictly increasing amounts",
                    );
                }
            }
            match (&rule.income_drop, rule.relief_kind) {
                (None, ReliefKind::IncomeDrop) => bad(
                    at("income_drop"),
                    "an income-drop rule needs its terms: baseline, qualifying drop, gap basis",
                ),
                (Some(_), kind) if kind != ReliefKind::IncomeDrop => bad(
                    at("income_drop"),
                    "only an income-drop rule has income-drop terms",
                ),
                (Some(terms), _) => {
                    if rule.threshold != Fen::ZERO {
                        bad(
                            at("threshold"),
                            "an income-drop rule bands the gap below the income line: the threshold must be 0",
                        );
                    }
                    let years_ok = match terms.baseline {
                        IncomeBaseline::LastVerified => terms.baseline_years == 1,
                        IncomeBaseline::AverageOfYears => {
                            (1..=MAX_BASELINE_YEARS).contains(&terms.baseline_years)
                        }
                    };
                    if !years_ok {
                        bad(
                            at("income_drop.baseline_years"),
                            "1 for the last verified income, 1 to 5 for an average of years",
                        );
                    }
                    if terms.min_drop_share.is_none() && terms.min_drop_amount.is_none() {
                        bad(
                            at("income_drop.min_drop_share"),
                            "set the qualifying drop: a share, an amount, or both",
                        );
                    }
                    if terms
                        .min_drop_share
                        .is_some_and(|s| s <= Decimal::ZERO || s > one)
                    {
                        bad(
                            at("income_drop.min_drop_share"),
                            "must be above 0 and at most 1",
                        );
                    }
                    if terms
                        .min_drop_amount
                        .is_some_and(|a| a <= Fen::ZERO || a > MAX_AMOUNT)
                    {
                        bad(at("income_drop.min_drop_amount"), "must be positive");
                    }
                }
                (None, _) => {}
            }
        }
        if self.status_terms.len() > MAX_STATUS_TERMS {
            bad("status_terms".into(), "too many status terms");
        }
        for (i, term) in self.status_terms.iter().enumerate() {
            let at = |f: &str| format!("status_terms[{i}].{f}");
            if self.status_terms[..i]
                .iter()
                .any(|t| t.status == term.status && t.relief_kind == term.relief_kind)
            {
                bad(
                    at("relief_kind"),
                    "a term for this status and relief kind already exists",
                );
            }
            if !self.rules.iter().any(|r| r.relief_kind == term.relief_kind) {
                bad(
                    at("relief_kind"),
                    "no household type has a rule for this relief kind",
                );
            }
            let income_drop = term.relief_kind == ReliefKind::IncomeDrop;
            if income_drop && term.threshold.is_some() {
                bad(
                    at("threshold"),
                    "an income-drop rule has no threshold to replace",
                );
            }
            if income_drop && term.waive_income_condition {
                bad(
                    at("waive_income_condition"),
                    "income-drop relief is the gap below the income line: the line cannot be waived",
                );
            }
            if term
                .threshold
                .is_some_and(|t| t < Fen::ZERO || t > MAX_AMOUNT)
            {
                bad(at("threshold"), "must be between 0 and the amount limit");
            }
            if term.threshold.is_none() && term.bands.is_empty() && !term.waive_income_condition {
                bad(
                    at("status"),
                    "the term changes nothing: set a threshold, bands or the income waiver",
                );
            }
            if term.bands.len() > MAX_BANDS {
                bad(at("bands"), "at most 16 bands");
            }
            if term.bands.first().is_some_and(|b| b.from != Fen::ZERO) {
                bad(
                    at("bands[0].from"),
                    "the first band must start at 0 above the threshold",
                );
            }
            for (j, band) in term.bands.iter().enumerate() {
                if band.rate < Decimal::ZERO || band.rate > one {
                    bad(at(&format!("bands[{j}].rate")), "must be between 0 and 1");
                }
                if band.from > MAX_AMOUNT {
                    bad(at(&format!("bands[{j}].from")), "exceeds the amount limit");
                }
                if j > 0 && band.from <= term.bands[j - 1].from {
                    bad(
                        at(&format!("bands[{j}].from")),
                        "bands must start at strictly increasing amounts",
                    );
                }
            }
        }
        if self.case_cap <= Fen::ZERO || self.case_cap > MAX_AMOUNT {
            bad("case_cap".into(), "must be positive");
        }
        if self.premium_per_person <= Fen::ZERO || self.premium_per_person > MAX_AMOUNT {
            bad("premium_per_person".into(), "must be positive");
        }
        if self.pool_ratio <= Decimal::ZERO || self.pool_ratio > one {
            bad("pool_ratio".into(), "must be above 0 and at most 1");
        }
        if self.service_fee_rate < Decimal::ZERO || self.service_fee_rate >= one {
            bad("service_fee_rate".into(), "must be at least 0 and below 1");
        }
        if !(1..=MAX_PUBLICITY_DAYS).contains(&self.publicity_days) {
            bad("publicity_days".into(), "must be between 1 and 60");
        }
        if !(1..=MAX_SURVEY_WORKING_DAYS).contains(&self.survey_deadline_working_days) {
            bad(
                "survey_deadline_working_days".into(),
                "must be between 1 and 120",
            );
        }
        if let Some(limits) = &self.time_limits {
            for (field, days, max) in [
                (
                    "time_limits.filing_working_days",
                    limits.filing_working_days,
                    MAX_SURVEY_WORKING_DAYS,
                ),
                (
                    "time_limits.payout_working_days",
                    limits.payout_working_days,
                    MAX_SURVEY_WORKING_DAYS,
                ),
                (
                    "time_limits.follow_up_visit_working_days",
                    limits.follow_up_visit_working_days,
                    MAX_VISIT_WORKING_DAYS,
                ),
            ] {
                if !(1..=max).contains(&days) {
                    out.push(Violation {
                        field: field.to_string(),
                        description: format!("must be between 1 and {max}"),
                    });
                }
            }
            if !(1..=28).contains(&limits.monitoring_list_due_day) {
                out.push(Violation {
                    field: "time_limits.monitoring_list_due_day".into(),
                    description: "must be a day every month has: 1 to 28".into(),
                });
            }
        }
        if self.cross_checks.len() > MAX_CROSS_CHECKS {
            out.push(Violation {
                field: "cross_checks".into(),
                description: format!("at most {MAX_CROSS_CHECKS} checks"),
            });
        }
        for (i, check) in self.cross_checks.iter().enumerate() {
            let code_ok = check.code.len() <= 40
                && check.code.starts_with(|c: char| c.is_ascii_lowercase())
                && check
                    .code
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !code_ok {
                out.push(Violation {
                    field: format!("cross_checks[{i}].code"),
                    description: "must be a-z, 0-9 and _, starting with a letter, at most 40"
                        .into(),
                });
            }
            if self.cross_checks[..i].iter().any(|c| c.code == check.code) {
                out.push(Violation {
                    field: format!("cross_checks[{i}].code"),
                    description: "is listed twice".into(),
                });
            }
            let name = check.name.trim();
            if name.is_empty()
                || name.chars().count() > 40
                || crate::text::display_text_problem(name).is_some()
            {
                out.push(Violation {
                    field: format!("cross_checks[{i}].name"),
                    description: "must be 1 to 40 characters of display text".into(),
                });
            }
        }
        if let Some(limit) = self.emergency_advance_limit
            && (limit <= Fen::ZERO || limit > self.case_cap)
        {
            out.push(Violation {
                field: "emergency_advance_limit".into(),
                description: "must be above zero and at most the case cap".into(),
            });
        }
        if let Err(e) = Procedure::new(&self.review_steps) {
            out.push(Violation {
                field: "review_steps".into(),
                description: e.to_string(),
            });
        }
        if out.is_empty() { Ok(()) } else { Err(out) }
    }

    /// The county's steps after the recommendation, in order.
    ///
    /// # Panics
    /// On a policy that did not pass `validate`.
    pub fn procedure(&self) -> Procedure {
        Procedure::new(&self.review_steps).expect("a validated policy has a valid procedure")
    }

    /// The most the township head may approve for an emergency advance.
    pub fn emergency_limit(&self) -> Fen {
        self.emergency_advance_limit.unwrap_or(self.case_cap)
    }

    /// The income line for a household type: the absolute line if the county
    /// set one, else poverty line × multiplier rounded to the fen.
    pub fn income_limit(&self, household_type: HouseholdType) -> Fen {
        if let Some(line) = self
            .absolute_income_lines
            .iter()
            .find(|l| l.household_type == household_type)
        {
            return line.limit;
        }
        Fen::round_from_decimal_fen(self.poverty_line.to_decimal_fen() * self.income_multiplier)
            .expect("validated policy: poverty line x multiplier fits in i64 fen")
    }

    pub fn rule(
        &self,
        household_type: HouseholdType,
        relief_kind: ReliefKind,
    ) -> Option<&ReliefRule> {
        self.rules
            .iter()
            .find(|r| r.household_type == household_type && r.relief_kind == relief_kind)
    }

    /// The rule for a household of this type and, when civil affairs has
    /// verified one, this status: the type's rule with the status term for
    /// the kind laid over it. None when the type has no rule for the kind.
    pub fn effective_rule(
        &self,
        household_type: HouseholdType,
        relief_kind: ReliefKind,
        status: Option<ReliefStatus>,
    ) -> Option<EffectiveRule<'_>> {
        let rule = self.rule(household_type, relief_kind)?;
        let term = status.and_then(|s| {
            self.status_terms
                .iter()
                .find(|t| t.status == s && t.relief_kind == relief_kind)
        });
        Some(EffectiveRule {
            rule,
            threshold: term.and_then(|t| t.threshold).unwrap_or(rule.threshold),
            bands: match term {
                Some(t) if !t.bands.is_empty() => &t.bands,
                _ => &rule.bands,
            },
            income_waived: term.is_some_and(|t| t.waive_income_condition),
            status_term: term,
        })
    }

    pub fn covers(&self, date: NaiveDate) -> bool {
        self.starts_on <= date && date <= self.ends_on
    }

    /// The number of people insured: rural population × pool ratio, rounded half
    /// up to a whole person (a county buys cover for people, not fractions).
    pub fn pool_size(&self, rural_population: u64) -> u64 {
        let exact = Decimal::from(rural_population) * self.pool_ratio;
        let rounded =
            exact.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        u64::try_from(rounded)
            .expect("validated pool ratio <= 1 keeps the pool within the population")
    }

    /// Premium the county owes for a pool of this size.
    pub fn premium_due(&self, pool_size: u64) -> Option<Fen> {
        i64::try_from(pool_size)
            .ok()?
            .checked_mul(self.premium_per_person.get())
            .map(Fen::new)
    }

    /// Handan's order (seed 004, with the township review of Ji'an's 乡级审核):
    /// village deliberation, township review, publicity, then filing after
    /// the departments' cross-check. A template for `Policy::review_steps`.
    pub fn handan_review_steps() -> Vec<ReviewStep> {
        vec![
            ReviewStep::VillageDeliberation,
            ReviewStep::TownshipReview,
            ReviewStep::Publicity,
            ReviewStep::Filing,
        ]
    }

    /// Hebi's order (seed 001): the township and village review (乡镇、村
    /// "两委"审核), the district office's filing, then publicity, then payment.
    pub fn hebi_review_steps() -> Vec<ReviewStep> {
        vec![
            ReviewStep::VillageDeliberation,
            ReviewStep::TownshipReview,
            ReviewStep::Filing,
            ReviewStep::Publicity,
        ]
    }

    /// The four checks Handan's departments make before filing (车辆, 不动产,
    /// 工商, 财政供养): a template for `Policy::cross_checks`.
    pub fn cross_check_example() -> Vec<CrossCheckKind> {
        [
            ("vehicles", "车辆信息比对"),
            ("real_estate", "不动产登记比对"),
            ("business_registration", "工商登记比对"),
            ("public_employment", "财政供养人员比对"),
        ]
        .into_iter()
        .map(|(code, name)| CrossCheckKind {
            code: code.into(),
            name: name.into(),
        })
        .collect()
    }

    /// Handan's published figures with the 大病保险-style bands from DOMAIN.md:
    /// a fixture and a template, never a fallback.
    pub fn example(county: CountyCode, policy_year: i32) -> Policy {
        let bands = || {
            vec![
                Band {
                    from: Fen::ZERO,
                    rate: Decimal::new(60, 2),
                },
                Band {
                    from: Fen::from_yuan(30_000),
                    rate: Decimal::new(65, 2),
                },
                Band {
                    from: Fen::from_yuan(80_000),
                    rate: Decimal::new(75, 2),
                },
                Band {
                    from: Fen::from_yuan(150_000),
                    rate: Decimal::new(85, 2),
                },
            ]
        };
        let rule = |household_type, relief_kind, threshold_yuan, comparison| ReliefRule {
            household_type,
            relief_kind,
            threshold: Fen::from_yuan(threshold_yuan),
            comparison,
            bands: bands(),
            cap: Fen::from_yuan(200_000),
            screening_window_months: 12,
            income_drop: None,
        };
        use Comparison::*;
        use HouseholdType::*;
        use ReliefKind::*;
        let mut rules = Vec::new();
        for household_type in HouseholdType::ALL {
            let illness = match household_type {
                UnstableEscaped | SuddenSevereDifficulty => 5_000,
                Marginal => 20_000,
            };
            // A sudden severe difficulty is most often an accident or a
            // disaster: its own, lower accident threshold.
            let accident = match household_type {
                SuddenSevereDifficulty => 5_000,
                UnstableEscaped | Marginal => 10_000,
            };
            rules.push(rule(household_type, Illness, illness, AtLeast));
            rules.push(rule(household_type, Schooling, 8_000, Above));
            rules.push(rule(household_type, Accident, accident, Above));
            rules.push(rule(household_type, Industry, 5_000, Above));
        }
        Policy {
            county,
            policy_year,
            starts_on: NaiveDate::from_ymd_opt(policy_year, 1, 1).expect("valid year"),
            ends_on: NaiveDate::from_ymd_opt(policy_year, 12, 31).expect("valid year"),
            poverty_line: Fen::from_yuan(4_000),
            income_multiplier: Decimal::new(15, 1),
            absolute_income_lines: Vec::new(),
            rules,
            case_cap: Fen::from_yuan(200_000),
            premium_per_person: Fen::from_yuan(50),
            pool_ratio: Decimal::new(10, 2),
            service_fee_rate: Decimal::new(15, 2),
            publicity_days: 10,
            survey_deadline_working_days: 15,
            entry_year_costs: EntryYearCosts::EntryFirst,
            status_terms: Vec::new(),
            time_limits: Some(TimeLimits {
                filing_working_days: 5,
                payout_working_days: 5,
                follow_up_visit_working_days: 60,
                monitoring_list_due_day: 10,
            }),
            // A county lists its departments' checks and its emergency
            // limit itself (`cross_check_example` is a template).
            cross_checks: Vec::new(),
            emergency_advance_limit: None,
            // The two steps every county has. Handan puts the village's
            // deliberation and the township's review first
            // (`handan_review_steps`); Hebi files before publicity.
            review_steps: publicity_then_filing(),
        }
    }

    /// Handan's figures with Hebi's six relief kinds (seed 001) added: school
    /// entry (升学) with its own threshold and bands, income drop (收入下降)
    /// measured against the last verified income, and dibao households
    /// relieved on easier terms. A fixture and the template of
    /// deploy/policy-example.json, never a fallback.
    pub fn example_six_kinds(county: CountyCode, policy_year: i32) -> Policy {
        let mut policy = Policy::example(county, policy_year);
        let band = |from_yuan: i64, pct: i64| Band {
            from: Fen::from_yuan(from_yuan),
            rate: Decimal::new(pct, 2),
        };
        for household_type in HouseholdType::ALL {
            policy.rules.push(ReliefRule {
                household_type,
                relief_kind: ReliefKind::SchoolEntry,
                threshold: Fen::from_yuan(5_000),
                comparison: Comparison::Above,
                bands: vec![band(0, 50), band(10_000, 60)],
                cap: Fen::from_yuan(10_000),
                screening_window_months: 12,
                income_drop: None,
            });
            policy.rules.push(ReliefRule {
                household_type,
                relief_kind: ReliefKind::IncomeDrop,
                threshold: Fen::ZERO,
                comparison: Comparison::Above,
                bands: vec![band(0, 50), band(2_000, 80)],
                cap: Fen::from_yuan(20_000),
                screening_window_months: 12,
                income_drop: Some(IncomeDropTerms {
                    baseline: IncomeBaseline::LastVerified,
                    baseline_years: 1,
                    min_drop_share: Some(Decimal::new(30, 2)),
                    min_drop_amount: None,
                    gap_basis: GapBasis::Household,
                }),
            });
        }
        policy.status_terms = vec![StatusTerm {
            status: ReliefStatus::Dibao,
            relief_kind: ReliefKind::Illness,
            threshold: Some(Fen::from_yuan(3_000)),
            bands: vec![band(0, 70), band(30_000, 75)],
            waive_income_condition: true,
        }];
        policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn county() -> CountyCode {
        CountyCode::parse("130426").expect("valid county")
    }

    #[test]
    fn example_policy_is_valid() {
        assert_eq!(Policy::example(county(), 2024).validate(), Ok(()));
        assert_eq!(Policy::example_six_kinds(county(), 2024).validate(), Ok(()));
    }

    #[test]
    fn income_drop_rules_need_their_terms_and_no_threshold() {
        let mut policy = Policy::example_six_kinds(county(), 2024);
        let i = policy
            .rules
            .iter()
            .position(|r| r.relief_kind == ReliefKind::IncomeDrop)
            .expect("an income-drop rule");
        policy.rules[i].threshold = Fen::from_yuan(1);
        let terms = policy.rules[i].income_drop.as_mut().expect("terms");
        terms.min_drop_share = None;
        terms.baseline_years = 2;
        policy.rules[0].income_drop = policy.rules[i].income_drop.clone();
        let fields: Vec<String> = policy
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "rules[0].income_drop".to_string(),
                format!("rules[{i}].threshold"),
                format!("rules[{i}].income_drop.baseline_years"),
                format!("rules[{i}].income_drop.min_drop_share"),
            ]
        );
        let mut policy = Policy::example_six_kinds(county(), 2024);
        policy.rules[i].income_drop = None;
        assert!(
            policy
                .validate()
                .unwrap_err()
                .iter()
                .any(|v| v.field == format!("rules[{i}].income_drop"))
        );
    }

    #[test]
    fn status_terms_lay_over_the_type_rule() {
        let policy = Policy::example_six_kinds(county(), 2024);
        let plain = policy
            .effective_rule(HouseholdType::Marginal, ReliefKind::Illness, None)
            .expect("rule");
        assert_eq!(plain.threshold, Fen::from_yuan(20_000));
        assert!(!plain.income_waived && plain.status_term.is_none());
        let dibao = policy
            .effective_rule(
                HouseholdType::Marginal,
                ReliefKind::Illness,
                Some(ReliefStatus::Dibao),
            )
            .expect("rule");
        assert_eq!(dibao.threshold, Fen::from_yuan(3_000));
        assert_eq!(dibao.bands[0].rate, Decimal::new(70, 2));
        assert!(dibao.income_waived);
        // Disability has no term here: the type's rule applies unchanged.
        let disabled = policy
            .effective_rule(
                HouseholdType::Marginal,
                ReliefKind::Illness,
                Some(ReliefStatus::Disability),
            )
            .expect("rule");
        assert_eq!(disabled, plain);
    }

    #[test]
    fn status_terms_are_checked() {
        let mut policy = Policy::example_six_kinds(county(), 2024);
        policy.status_terms.push(policy.status_terms[0].clone());
        policy.status_terms.push(StatusTerm {
            status: ReliefStatus::Tekun,
            relief_kind: ReliefKind::IncomeDrop,
            threshold: Some(Fen::ZERO),
            bands: Vec::new(),
            waive_income_condition: true,
        });
        policy.status_terms.push(StatusTerm {
            status: ReliefStatus::Disability,
            relief_kind: ReliefKind::Accident,
            threshold: None,
            bands: Vec::new(),
            waive_income_condition: false,
        });
        let fields: Vec<String> = policy
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "status_terms[1].relief_kind",
                "status_terms[2].threshold",
                "status_terms[2].waive_income_condition",
                "status_terms[3].status",
            ]
        );
    }

    #[test]
    fn policies_stored_before_the_six_kinds_still_read() {
        let mut json: serde_json::Value =
            serde_json::to_value(Policy::example(county(), 2024)).expect("serializes");
        let object = json.as_object_mut().expect("an object");
        object.remove("entry_year_costs");
        object.remove("status_terms");
        let policy: Policy = serde_json::from_value(json).expect("reads");
        assert_eq!(policy, Policy::example(county(), 2024));
    }

    #[test]
    fn income_limit_is_multiplier_or_absolute_line() {
        let mut policy = Policy::example(county(), 2024);
        assert_eq!(
            policy.income_limit(HouseholdType::Marginal),
            Fen::from_yuan(6_000)
        );
        policy.absolute_income_lines.push(IncomeLine {
            household_type: HouseholdType::UnstableEscaped,
            limit: Fen::from_yuan(5_000),
        });
        assert_eq!(
            policy.income_limit(HouseholdType::UnstableEscaped),
            Fen::from_yuan(5_000)
        );
        assert_eq!(
            policy.income_limit(HouseholdType::Marginal),
            Fen::from_yuan(6_000)
        );
    }

    #[test]
    fn pool_size_rounds_half_up() {
        let policy = Policy::example(county(), 2024);
        assert_eq!(policy.pool_size(123_455), 12_346);
        assert_eq!(policy.pool_size(123_454), 12_345);
        assert_eq!(policy.premium_due(12_346), Some(Fen::from_yuan(617_300)));
    }

    #[test]
    fn validation_names_every_bad_field() {
        let mut policy = Policy::example(county(), 2024);
        policy.publicity_days = 0;
        policy.pool_ratio = Decimal::new(2, 0);
        policy.rules[0].bands[1].from = Fen::ZERO;
        policy.rules[1].bands[0].rate = Decimal::new(11, 1);
        let fields: Vec<String> = policy
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "rules[0].bands[1].from",
                "rules[1].bands[0].rate",
                "pool_ratio",
                "publicity_days"
            ]
        );
    }

    #[test]
    fn duplicate_rules_are_refused() {
        let mut policy = Policy::example(county(), 2024);
        let copy = policy.rules[0].clone();
        policy.rules.push(copy);
        assert!(
            policy
                .validate()
                .unwrap_err()
                .iter()
                .any(|v| v.field.ends_with(".relief_kind"))
        );
    }
}
