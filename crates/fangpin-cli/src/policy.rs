//! `fangpin policy`: a county's policy for a year, kept as a JSON file the
//! county office edits and puts. The file mirrors the proto `Policy`, with
//! enum names in lower snake case and every figure as a decimal string.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::policy_service_client::PolicyServiceClient;
use serde::{Deserialize, Deserializer};

use crate::ctx::Ctx;
use crate::names::{self, ComparisonArg, HouseholdTypeArg, ReliefKindArg};
use crate::output::{self, record, required, table};

#[derive(Subcommand)]
pub enum Cmd {
    /// Create a new policy version from a JSON file, or replace an unused one
    Put {
        /// The policy as JSON (see deploy/policy-example.json)
        #[arg(long)]
        file: PathBuf,
        /// Replace this version instead of creating a new one; a version any
        /// claim has used is frozen and cannot be replaced
        #[arg(long)]
        version: Option<u32>,
        /// Use this county instead of the file's county_code
        #[arg(long)]
        county: Option<String>,
        /// Use this policy year instead of the file's policy_year
        #[arg(long)]
        year: Option<i32>,
    },
    /// Show a policy version (the latest by default)
    Show {
        #[arg(long)]
        county: String,
        #[arg(long)]
        year: i32,
        #[arg(long)]
        version: Option<u32>,
    },
}

pub async fn run(ctx: &Ctx, cmd: Cmd) -> Result<()> {
    let mut client = PolicyServiceClient::new(ctx.channel.clone());
    let response = match cmd {
        Cmd::Put {
            file,
            version,
            county,
            year,
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let mut policy = parse_policy(&text)
                .with_context(|| format!("{} is not a valid policy", file.display()))?;
            if let Some(county) = county {
                policy.county_code = county;
            }
            if let Some(year) = year {
                policy.policy_year = year;
            }
            if let Some(version) = version {
                policy.version = version;
            }
            let request = pb::PutPolicyRequest {
                request_id: ctx.request_id(),
                policy: Some(policy),
            };
            client.put_policy(request).await?
        }
        Cmd::Show {
            county,
            year,
            version,
        } => {
            let request = pb::GetPolicyRequest {
                county_code: county,
                policy_year: year,
                version: version.unwrap_or(0),
            };
            client.get_policy(request).await?
        }
    };
    print_policy(&required(response.into_inner().policy, "policy")?);
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    county_code: String,
    policy_year: i32,
    #[serde(default)]
    version: u32,
    starts_on: String,
    ends_on: String,
    #[serde(deserialize_with = "decimal")]
    poverty_line_yuan: String,
    #[serde(deserialize_with = "decimal")]
    income_multiplier: String,
    #[serde(default)]
    absolute_income_lines: Vec<IncomeLineFile>,
    rules: Vec<RuleFile>,
    #[serde(deserialize_with = "decimal")]
    case_cap_yuan: String,
    #[serde(deserialize_with = "decimal")]
    premium_per_person_yuan: String,
    #[serde(deserialize_with = "decimal")]
    pool_ratio: String,
    #[serde(deserialize_with = "decimal")]
    service_fee_rate: String,
    publicity_days: u32,
    survey_deadline_working_days: u32,
    #[serde(default)]
    entry_year_costs: Option<EntryYearCostsArg>,
    #[serde(default)]
    status_terms: Vec<StatusTermFile>,
    #[serde(default)]
    time_limits: Option<TimeLimitsFile>,
    #[serde(default)]
    cross_checks: Vec<CrossCheckFile>,
    #[serde(default, deserialize_with = "optional_decimal")]
    emergency_advance_limit_yuan: Option<String>,
    /// The county's steps after the survey, in order (办理程序).
    review_steps: Vec<ReviewStepArg>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrossCheckFile {
    code: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeLimitsFile {
    filing_working_days: u32,
    payout_working_days: u32,
    follow_up_visit_working_days: u32,
    monitoring_list_due_day: u32,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum EntryYearCostsArg {
    EntryFirst,
    SchoolEntryOnly,
    SchoolingOnly,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum StatusArg {
    Dibao,
    Tekun,
    Disability,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusTermFile {
    status: StatusArg,
    relief_kind: ReliefKindArg,
    #[serde(default, deserialize_with = "decimal")]
    threshold_yuan: String,
    #[serde(default)]
    bands: Vec<BandFile>,
    #[serde(default)]
    waive_income_condition: bool,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum BaselineArg {
    LastVerified,
    AverageOfYears,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum ReviewStepArg {
    VillageDeliberation,
    TownshipReview,
    Publicity,
    Filing,
}

impl From<ReviewStepArg> for pb::ReviewStep {
    fn from(arg: ReviewStepArg) -> Self {
        match arg {
            ReviewStepArg::VillageDeliberation => Self::VillageDeliberation,
            ReviewStepArg::TownshipReview => Self::TownshipReview,
            ReviewStepArg::Publicity => Self::Publicity,
            ReviewStepArg::Filing => Self::Filing,
        }
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum GapBasisArg {
    PerCapita,
    Household,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncomeDropFile {
    baseline: BaselineArg,
    baseline_years: u32,
    #[serde(default, deserialize_with = "decimal")]
    min_drop_share: String,
    #[serde(default, deserialize_with = "decimal")]
    min_drop_amount_yuan: String,
    gap_basis: GapBasisArg,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncomeLineFile {
    household_type: HouseholdTypeArg,
    #[serde(deserialize_with = "decimal")]
    limit_yuan: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    household_type: HouseholdTypeArg,
    relief_kind: ReliefKindArg,
    #[serde(deserialize_with = "decimal")]
    threshold_yuan: String,
    comparison: ComparisonArg,
    bands: Vec<BandFile>,
    #[serde(deserialize_with = "decimal")]
    cap_yuan: String,
    screening_window_months: u32,
    #[serde(default)]
    income_drop: Option<IncomeDropFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BandFile {
    #[serde(deserialize_with = "decimal")]
    from_yuan: String,
    #[serde(deserialize_with = "decimal")]
    rate: String,
}

/// Money and rates must be JSON strings: a JSON number is read as a binary
/// float, which can silently turn 0.65 into 0.6500000000000001 and also
/// drops the "5000.00" spelling the API expects. The server validates the
/// decimal itself; here we only insist on a string.
fn decimal<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a decimal string such as \"5000.00\" or \"0.60\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
    }
    deserializer.deserialize_str(Visitor)
}

/// `decimal`, for an optional field.
fn optional_decimal<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    decimal(deserializer).map(Some)
}

pub fn parse_policy(text: &str) -> Result<pb::Policy> {
    let file: PolicyFile = serde_json::from_str(text)?;
    Ok(file.into())
}

impl From<PolicyFile> for pb::Policy {
    fn from(f: PolicyFile) -> Self {
        pb::Policy {
            county_code: f.county_code,
            policy_year: f.policy_year,
            version: f.version,
            starts_on: f.starts_on,
            ends_on: f.ends_on,
            poverty_line_yuan: f.poverty_line_yuan,
            income_multiplier: f.income_multiplier,
            absolute_income_lines: f
                .absolute_income_lines
                .into_iter()
                .map(|l| pb::IncomeLine {
                    household_type: pb::HouseholdType::from(l.household_type).into(),
                    limit_yuan: l.limit_yuan,
                })
                .collect(),
            rules: f.rules.into_iter().map(Into::into).collect(),
            case_cap_yuan: f.case_cap_yuan,
            premium_per_person_yuan: f.premium_per_person_yuan,
            pool_ratio: f.pool_ratio,
            service_fee_rate: f.service_fee_rate,
            publicity_days: f.publicity_days,
            survey_deadline_working_days: f.survey_deadline_working_days,
            frozen: false,
            time_limits: f.time_limits.map(|t| pb::TimeLimits {
                filing_working_days: t.filing_working_days,
                payout_working_days: t.payout_working_days,
                follow_up_visit_working_days: t.follow_up_visit_working_days,
                monitoring_list_due_day: t.monitoring_list_due_day,
            }),
            cross_checks: f
                .cross_checks
                .into_iter()
                .map(|k| pb::CrossCheckKind {
                    code: k.code,
                    name: k.name,
                })
                .collect(),
            emergency_advance_limit_yuan: f.emergency_advance_limit_yuan.unwrap_or_default(),
            review_steps: f
                .review_steps
                .into_iter()
                .map(|s| pb::ReviewStep::from(s).into())
                .collect(),
            entry_year_costs: match f.entry_year_costs {
                None => pb::EntryYearCosts::Unspecified,
                Some(EntryYearCostsArg::EntryFirst) => pb::EntryYearCosts::EntryFirst,
                Some(EntryYearCostsArg::SchoolEntryOnly) => pb::EntryYearCosts::SchoolEntryOnly,
                Some(EntryYearCostsArg::SchoolingOnly) => pb::EntryYearCosts::SchoolingOnly,
            }
            .into(),
            status_terms: f
                .status_terms
                .into_iter()
                .map(|t| pb::StatusTerm {
                    status: match t.status {
                        StatusArg::Dibao => pb::CivilStatus::Dibao,
                        StatusArg::Tekun => pb::CivilStatus::Tekun,
                        StatusArg::Disability => pb::CivilStatus::Disability,
                    }
                    .into(),
                    relief_kind: pb::ReliefKind::from(t.relief_kind).into(),
                    threshold_yuan: t.threshold_yuan,
                    bands: t.bands.into_iter().map(Into::into).collect(),
                    waive_income_condition: t.waive_income_condition,
                })
                .collect(),
        }
    }
}

impl From<RuleFile> for pb::ReliefRule {
    fn from(r: RuleFile) -> Self {
        pb::ReliefRule {
            household_type: pb::HouseholdType::from(r.household_type).into(),
            relief_kind: pb::ReliefKind::from(r.relief_kind).into(),
            threshold_yuan: r.threshold_yuan,
            comparison: pb::Comparison::from(r.comparison).into(),
            screening_window_months: r.screening_window_months,
            bands: r.bands.into_iter().map(Into::into).collect(),
            cap_yuan: r.cap_yuan,
            income_drop: r.income_drop.map(|d| pb::IncomeDropTerms {
                baseline: match d.baseline {
                    BaselineArg::LastVerified => pb::IncomeBaseline::LastVerified,
                    BaselineArg::AverageOfYears => pb::IncomeBaseline::AverageOfYears,
                }
                .into(),
                baseline_years: d.baseline_years,
                min_drop_share: d.min_drop_share,
                min_drop_amount_yuan: d.min_drop_amount_yuan,
                gap_basis: match d.gap_basis {
                    GapBasisArg::PerCapita => pb::GapBasis::PerCapita,
                    GapBasisArg::Household => pb::GapBasis::Household,
                }
                .into(),
            }),
        }
    }
}

impl From<BandFile> for pb::Band {
    fn from(b: BandFile) -> Self {
        pb::Band {
            from_yuan: b.from_yuan,
            rate: b.rate,
        }
    }
}

fn print_policy(p: &pb::Policy) {
    println!(
        "{}",
        record(vec![
            ("county", p.county_code.clone()),
            ("policy year", output::year(p.policy_year)),
            ("version", p.version.to_string()),
            ("frozen", output::yes_no(p.frozen)),
            ("period", format!("{} .. {}", p.starts_on, p.ends_on)),
            ("poverty line", p.poverty_line_yuan.clone()),
            ("income multiplier", p.income_multiplier.clone()),
            ("case cap", p.case_cap_yuan.clone()),
            ("premium per person", p.premium_per_person_yuan.clone()),
            ("pool ratio", p.pool_ratio.clone()),
            ("service fee rate", p.service_fee_rate.clone()),
            ("publicity days", p.publicity_days.to_string()),
            (
                "survey deadline (working days)",
                p.survey_deadline_working_days.to_string()
            ),
        ])
    );
    if !p.absolute_income_lines.is_empty() {
        let mut lines = table(["household type", "income limit"]);
        for l in &p.absolute_income_lines {
            lines.add_row([
                names::household_type(l.household_type),
                l.limit_yuan.clone(),
            ]);
        }
        println!("Absolute income lines\n{lines}");
    }
    let mut rules = table([
        "household type",
        "kind",
        "threshold",
        "comparison",
        "bands (from: rate)",
        "cap",
    ]);
    for r in &p.rules {
        let bands: Vec<String> = r
            .bands
            .iter()
            .map(|b| format!("{}: {}", b.from_yuan, b.rate))
            .collect();
        // An income-drop rule has no threshold: show how the drop is
        // measured and what qualifies in its place.
        let (threshold, comparison) = match &r.income_drop {
            Some(d) => (
                income_drop_terms(d),
                "bands on the gap below the line".to_string(),
            ),
            None => (r.threshold_yuan.clone(), names::comparison(r.comparison)),
        };
        rules.add_row([
            names::household_type(r.household_type),
            names::relief_kind(r.relief_kind),
            threshold,
            comparison,
            bands.join("\n"),
            r.cap_yuan.clone(),
        ]);
    }
    println!("Relief rules\n{rules}");
    let entry = match pb::EntryYearCosts::try_from(p.entry_year_costs) {
        Ok(pb::EntryYearCosts::SchoolEntryOnly) => "school entry only",
        Ok(pb::EntryYearCosts::SchoolingOnly) => "schooling only",
        _ => "school entry when over its threshold, else schooling",
    };
    println!("First-year school costs count under: {entry}");
    match &p.time_limits {
        Some(t) => println!(
            "Time limits (working days): filing {}, payout {}, follow-up visit {}; monitoring lists due on day {}",
            t.filing_working_days,
            t.payout_working_days,
            t.follow_up_visit_working_days,
            t.monitoring_list_due_day
        ),
        None => println!("Time limits: none set (only the survey deadline is watched)"),
    }
    if p.cross_checks.is_empty() {
        println!("Cross-checks before filing: none required");
    } else {
        let checks: Vec<String> = p
            .cross_checks
            .iter()
            .map(|k| format!("{} ({})", k.name, k.code))
            .collect();
        println!("Cross-checks before filing: {}", checks.join(", "));
    }
    println!(
        "Emergency advance limit: {}",
        if p.emergency_advance_limit_yuan.is_empty() {
            "the case cap".to_string()
        } else {
            p.emergency_advance_limit_yuan.clone()
        }
    );
    if !p.status_terms.is_empty() {
        let mut terms = table([
            "status",
            "kind",
            "threshold",
            "bands (from: rate)",
            "income condition",
        ]);
        for t in &p.status_terms {
            let bands: Vec<String> = t
                .bands
                .iter()
                .map(|b| format!("{}: {}", b.from_yuan, b.rate))
                .collect();
            terms.add_row([
                pb::CivilStatus::try_from(t.status)
                    .map(|s| {
                        s.as_str_name()
                            .trim_start_matches("CIVIL_STATUS_")
                            .to_lowercase()
                    })
                    .unwrap_or_else(|_| t.status.to_string()),
                names::relief_kind(t.relief_kind),
                if t.threshold_yuan.is_empty() {
                    "the rule's".into()
                } else {
                    t.threshold_yuan.clone()
                },
                if bands.is_empty() {
                    "the rule's".into()
                } else {
                    bands.join("\n")
                },
                if t.waive_income_condition {
                    "waived".into()
                } else {
                    "applies".into()
                },
            ]);
        }
        println!("Status terms\n{terms}");
    }
}

fn income_drop_terms(d: &pb::IncomeDropTerms) -> String {
    let baseline = match pb::IncomeBaseline::try_from(d.baseline) {
        Ok(pb::IncomeBaseline::AverageOfYears) => {
            format!("average of {} years", d.baseline_years)
        }
        _ => "last verified".to_string(),
    };
    let mut qualifying = Vec::new();
    if !d.min_drop_share.is_empty() {
        qualifying.push(format!("drop >= {} of it", d.min_drop_share));
    }
    if !d.min_drop_amount_yuan.is_empty() {
        qualifying.push(format!("drop >= {}", d.min_drop_amount_yuan));
    }
    let basis = match pb::GapBasis::try_from(d.gap_basis) {
        Ok(pb::GapBasis::Household) => "gap x members",
        _ => "gap per capita",
    };
    format!("baseline {baseline}; {}; {basis}", qualifying.join(" and "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../deploy/policy-example.json");

    #[test]
    fn example_policy_converts() {
        let p = parse_policy(EXAMPLE).expect("example parses");
        assert_eq!(p.county_code, "130426");
        assert_eq!(p.policy_year, 2026);
        assert_eq!(p.version, 0);
        assert_eq!(
            (p.starts_on.as_str(), p.ends_on.as_str()),
            ("2026-01-01", "2026-12-31")
        );
        assert_eq!(p.poverty_line_yuan, "4000.00");
        assert_eq!(p.income_multiplier, "1.5");
        assert!(p.absolute_income_lines.is_empty());
        assert_eq!(p.case_cap_yuan, "200000.00");
        assert_eq!(p.premium_per_person_yuan, "50.00");
        assert_eq!(p.pool_ratio, "0.10");
        assert_eq!(p.service_fee_rate, "0.15");
        assert_eq!(p.publicity_days, 10);
        assert_eq!(p.survey_deadline_working_days, 15);
        assert!(!p.frozen);

        // Hebi's six kinds for each of the three household types.
        assert_eq!(p.rules.len(), 18);
        let rule = |ht: pb::HouseholdType, kind: pb::ReliefKind| {
            p.rules
                .iter()
                .find(|r| r.household_type == ht as i32 && r.relief_kind == kind as i32)
                .unwrap_or_else(|| panic!("no rule for {ht:?} {kind:?}"))
        };
        use pb::{Comparison as C, HouseholdType as H, ReliefKind as K};
        let expected = [
            (K::Illness, "5000.00", "20000.00", "5000.00", C::AtLeast),
            (K::Schooling, "8000.00", "8000.00", "8000.00", C::Above),
            (K::Accident, "10000.00", "10000.00", "5000.00", C::Above),
            (K::Industry, "5000.00", "5000.00", "5000.00", C::Above),
        ];
        for (kind, unstable, marginal, sudden, cmp) in expected {
            for (ht, threshold) in [
                (H::UnstableEscaped, unstable),
                (H::Marginal, marginal),
                (H::SuddenSevereDifficulty, sudden),
            ] {
                let r = rule(ht, kind);
                assert_eq!(r.threshold_yuan, threshold, "{ht:?} {kind:?}");
                assert_eq!(r.comparison, cmp as i32, "{ht:?} {kind:?}");
                assert_eq!(r.cap_yuan, "200000.00");
                let bands: Vec<(&str, &str)> = r
                    .bands
                    .iter()
                    .map(|b| (b.from_yuan.as_str(), b.rate.as_str()))
                    .collect();
                assert_eq!(
                    bands,
                    [
                        ("0.00", "0.60"),
                        ("30000.00", "0.65"),
                        ("80000.00", "0.75"),
                        ("150000.00", "0.85")
                    ]
                );
            }
        }
    }

    /// The sample file is `Policy::example_six_kinds` written out: the
    /// server reads it to exactly that policy, income-drop terms, school
    /// entry and the dibao terms included.
    #[test]
    fn example_policy_is_the_six_kinds_fixture() {
        let p = parse_policy(EXAMPLE).expect("example parses");
        let policy = fangpin_server::convert::policy_from_pb(&p).expect("the server accepts it");
        let county = fangpin_domain::identity::CountyCode::parse("130426").expect("county");
        assert_eq!(
            policy,
            fangpin_domain::policy::Policy::example_six_kinds(county, 2026)
        );
    }

    #[test]
    fn numbers_for_money_are_refused() {
        let text = EXAMPLE.replace("\"4000.00\"", "4000.00");
        let err = parse_policy(&text).expect_err("a number is refused");
        assert!(err.to_string().contains("decimal string"), "{err}");
    }

    #[test]
    fn misspelt_fields_and_names_are_refused() {
        let typo = EXAMPLE.replace("\"publicity_days\"", "\"publicty_days\"");
        assert!(parse_policy(&typo).is_err());
        let kind = EXAMPLE.replacen("\"illness\"", "\"sickness\"", 1);
        let err = parse_policy(&kind).expect_err("unknown kind");
        assert!(err.to_string().contains("sickness"), "{err}");
    }

    #[test]
    fn absolute_income_lines_convert() {
        let text = EXAMPLE.replace(
            "\"absolute_income_lines\": []",
            "\"absolute_income_lines\": [{\"household_type\": \"marginal\", \"limit_yuan\": \"6000.00\"}]",
        );
        let p = parse_policy(&text).expect("parses");
        assert_eq!(
            p.absolute_income_lines,
            [pb::IncomeLine {
                household_type: pb::HouseholdType::Marginal as i32,
                limit_yuan: "6000.00".into()
            }]
        );
    }
}
