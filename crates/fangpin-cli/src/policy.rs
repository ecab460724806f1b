//! `fangpin policy`: a county's policy for a year, kept as a JSON file the
//! county office edits and puts. The file mirrors the proto `Policy`, with
//! enum names in lower snake case and every figure as a decimal string.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use fangpin_proto::v1 as pb;
use fangpin_proto::v1::policy_service_client::PolicyServiceClient;

use crate::ctx::Ctx;
use crate::names;
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

/// Reads a policy file: the proto `Policy` in the canonical proto-JSON
/// mapping (lowerCamelCase or the proto's own snake_case names, enum values
/// by their full names such as `HOUSEHOLD_TYPE_MARGINAL`, every figure a
/// decimal string). Unknown fields and values are refused, so a misspelt
/// name never silently drops a rule. Python's `json_format.ParseDict`, or any
/// other protobuf library, reads the same file.
pub fn parse_policy(text: &str) -> Result<pb::Policy> {
    Ok(serde_json::from_str::<pb::Policy>(text)?)
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
        let policy =
            fangpin_server::write_path::convert::policy_from_pb(&p).expect("the server accepts it");
        let county = fangpin_domain::identity::CountyCode::parse("130426").expect("county");
        assert_eq!(
            policy,
            fangpin_domain::policy::Policy::example_six_kinds(county, 2026)
        );
    }

    /// Money is a decimal string, as the proto says: a JSON number (read as
    /// a binary float, 0.65 becoming 0.6500000000000001) is refused.
    #[test]
    fn numbers_for_money_are_refused() {
        let text = EXAMPLE.replace("\"4000.00\"", "4000.00");
        let err = parse_policy(&text).expect_err("a number is refused");
        assert!(err.to_string().contains("expected a string"), "{err}");
    }

    #[test]
    fn misspelt_fields_and_names_are_refused() {
        let typo = EXAMPLE.replace("\"publicityDays\"", "\"publictyDays\"");
        let err = parse_policy(&typo).expect_err("unknown field");
        assert!(err.to_string().contains("publictyDays"), "{err}");
        let kind = EXAMPLE.replacen("\"RELIEF_KIND_ILLNESS\"", "\"RELIEF_KIND_SICKNESS\"", 1);
        let err = parse_policy(&kind).expect_err("unknown kind");
        assert!(err.to_string().contains("RELIEF_KIND_SICKNESS"), "{err}");
    }

    /// The proto's own field names are read as well as the lowerCamelCase
    /// ones, as every proto-JSON parser does.
    #[test]
    fn absolute_income_lines_convert() {
        let text = EXAMPLE.replacen(
            "\"rules\": [",
            "\"absolute_income_lines\": [{\"household_type\": \"HOUSEHOLD_TYPE_MARGINAL\", \"limitYuan\": \"6000.00\"}], \"rules\": [",
            1,
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

    /// A client author's protobuf library reads the sample as it is: Python's
    /// `json_format.ParseDict` over the server's own descriptors. Skipped
    /// where Python has no protobuf, unless FANGPIN_REQUIRE_PYTHON_PROTOBUF
    /// is set (CI installs it).
    #[test]
    fn python_protobuf_parses_the_sample_policy() {
        let have = std::process::Command::new("python3")
            .args(["-c", "import google.protobuf"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !have {
            assert!(
                std::env::var("FANGPIN_REQUIRE_PYTHON_PROTOBUF").is_err(),
                "FANGPIN_REQUIRE_PYTHON_PROTOBUF is set but Python has no protobuf"
            );
            eprintln!("skipped: no Python protobuf here (pip install protobuf)");
            return;
        }
        let dir = std::env::temp_dir().join(format!("fangpin-pyproto-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a folder");
        let descriptors = dir.join("fangpin.bin");
        std::fs::write(&descriptors, fangpin_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        let script = r#"
import json, sys
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
fds = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], "rb").read())
pool = descriptor_pool.DescriptorPool()
for f in fds.file:
    pool.Add(f)
Policy = message_factory.GetMessageClass(pool.FindMessageTypeByName("fangpin.v1.Policy"))
p = json_format.ParseDict(json.loads(sys.stdin.read()), Policy())
print(p.county_code, len(p.rules), ",".join(str(s) for s in p.review_steps))
"#;
        let mut child = std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(&descriptors)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("python3 runs");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(EXAMPLE.as_bytes())
            .expect("the sample");
        let out = child.wait_with_output().expect("python3 ends");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "130426 18 3,4");
    }
}
