//! The edge between wire and domain: request fields are parsed into domain
//! types here, collecting every bad field into one InvalidArgument, and domain
//! records are turned back into messages.

use chrono::NaiveDate;
use fangpin_domain::Fen;
use fangpin_domain::assessment::net_payout;
use fangpin_domain::claim::{Channel, ClaimState, ReviewStep};
use fangpin_domain::identity::{CountyCode, ResidentId, VillageCode};
use fangpin_domain::policy::{
    Band, Comparison, CrossCheckKind, EntryYearCosts, GapBasis, HouseholdType, IncomeBaseline,
    IncomeDropTerms, IncomeLine, Policy, ReliefKind, ReliefRule, ReliefStatus, StatusTerm,
    TimeLimits,
};
use fangpin_domain::year::YearTotals;
use fangpin_proto::v1 as pb;
use fangpin_store::claims::ClaimRecord;
use fangpin_store::ledger::{EntryRecord, TopUpFlagRecord, YearState};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::write_path::error::{AppError, Violation};

/// Longest free text accepted (names, reasons, notes), in characters.
pub const MAX_TEXT_CHARS: usize = 2_000;
/// Longest short label (names, references, actors), in characters.
pub const MAX_LABEL_CHARS: usize = 200;
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// Collects field violations while parsing a request. Each parser returns None
/// for a bad field; `finish` fails if any field was bad, so callers only
/// unwrap values after it succeeded.
#[derive(Default)]
pub struct Check {
    violations: Vec<Violation>,
}

impl Check {
    pub fn new() -> Check {
        Check::default()
    }

    pub fn bad(&mut self, field: &str, description: impl Into<String>) {
        self.violations.push(Violation {
            field: field.to_string(),
            description: description.into(),
        });
    }

    pub fn finish(self) -> Result<(), AppError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(AppError::InvalidArgument(self.violations))
        }
    }

    pub fn request_id(&mut self, text: &str) -> Option<Uuid> {
        self.uuid("request_id", text)
    }

    pub fn uuid(&mut self, field: &str, text: &str) -> Option<Uuid> {
        if text.is_empty() {
            self.bad(field, "is required");
            return None;
        }
        match Uuid::parse_str(text) {
            Ok(id) => Some(id),
            Err(_) => {
                self.bad(field, "must be a UUID");
                None
            }
        }
    }

    /// Required text of at most `max` characters, with surrounding spaces removed.
    pub fn text(&mut self, field: &str, text: &str, max: usize) -> Option<String> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            self.bad(field, "is required");
            None
        } else {
            self.optional_text(field, trimmed, max)
        }
    }

    pub fn optional_text(&mut self, field: &str, text: &str, max: usize) -> Option<String> {
        let trimmed = text.trim();
        if trimmed.chars().count() > max {
            self.bad(field, format!("must be at most {max} characters"));
            return None;
        }
        if let Some(problem) = fangpin_domain::text::display_text_problem(trimmed) {
            self.bad(field, problem);
            return None;
        }
        Some(trimmed.to_string())
    }

    pub fn money(&mut self, field: &str, text: &str) -> Option<Fen> {
        match Fen::parse_yuan(text) {
            Ok(fen) => Some(fen),
            Err(e) => {
                self.bad(field, e.to_string());
                None
            }
        }
    }

    pub fn positive_money(&mut self, field: &str, text: &str) -> Option<Fen> {
        let fen = self.money(field, text)?;
        if fen == Fen::ZERO {
            self.bad(field, "must be more than zero");
            return None;
        }
        Some(fen)
    }

    pub fn decimal(&mut self, field: &str, text: &str) -> Option<Decimal> {
        match text.parse::<Decimal>() {
            Ok(d) if !text.contains(['e', 'E']) => Some(d),
            _ => {
                self.bad(field, "must be a decimal number like 0.60");
                None
            }
        }
    }

    pub fn date(&mut self, field: &str, text: &str) -> Option<NaiveDate> {
        match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) if text.len() == 10 => Some(d),
            _ => {
                self.bad(field, "must be a date like 2024-02-01");
                None
            }
        }
    }

    pub fn year(&mut self, field: &str, year: i32) -> Option<i32> {
        if (2000..=2100).contains(&year) {
            Some(year)
        } else {
            self.bad(field, "must be a policy year between 2000 and 2100");
            None
        }
    }

    pub fn county(&mut self, field: &str, text: &str) -> Option<CountyCode> {
        match CountyCode::parse(text) {
            Ok(c) => Some(c),
            Err(e) => {
                self.bad(field, e.to_string());
                None
            }
        }
    }

    pub fn village(&mut self, field: &str, text: &str) -> Option<VillageCode> {
        match VillageCode::parse(text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.bad(field, e.to_string());
                None
            }
        }
    }

    pub fn resident_id(&mut self, field: &str, text: &str) -> Option<ResidentId> {
        match ResidentId::parse(text) {
            Ok(id) => Some(id),
            Err(e) => {
                self.bad(field, e.to_string());
                None
            }
        }
    }

    pub fn household_type(&mut self, field: &str, value: i32) -> Option<HouseholdType> {
        match pb::HouseholdType::try_from(value) {
            Ok(pb::HouseholdType::UnstableEscaped) => Some(HouseholdType::UnstableEscaped),
            Ok(pb::HouseholdType::Marginal) => Some(HouseholdType::Marginal),
            Ok(pb::HouseholdType::SuddenSevereDifficulty) => {
                Some(HouseholdType::SuddenSevereDifficulty)
            }
            _ => {
                self.bad(field, "must be a known household type");
                None
            }
        }
    }

    pub fn relief_kind(&mut self, field: &str, value: i32) -> Option<ReliefKind> {
        let kind = pb::ReliefKind::try_from(value)
            .ok()
            .and_then(relief_kind_from_pb);
        if kind.is_none() {
            self.bad(field, "must be a known relief kind");
        }
        kind
    }

    pub fn channel(&mut self, field: &str, value: i32) -> Option<Channel> {
        match pb::Channel::try_from(value) {
            Ok(pb::Channel::VillageApplication) => Some(Channel::VillageApplication),
            Ok(pb::Channel::DepartmentReferral) => Some(Channel::DepartmentReferral),
            Ok(pb::Channel::Emergency) => Some(Channel::Emergency),
            _ => {
                self.bad(field, "must be a known channel");
                None
            }
        }
    }

    /// An optional state filter: UNSPECIFIED means any state.
    pub fn state_filter(&mut self, field: &str, value: i32) -> Option<Option<ClaimState>> {
        match pb::ClaimState::try_from(value) {
            Ok(pb::ClaimState::Unspecified) => Some(None),
            Ok(s) => Some(Some(
                state_from_pb(s).expect("every specified proto state maps"),
            )),
            Err(_) => {
                self.bad(field, "must be a known claim state");
                None
            }
        }
    }

    pub fn page_size(&mut self, field: &str, size: u32, max: u32) -> Option<u32> {
        match size {
            0 => Some(DEFAULT_PAGE_SIZE.min(max)),
            n if n <= max => Some(n),
            _ => {
                self.bad(field, format!("must be at most {max}"));
                None
            }
        }
    }

    /// A page token is the last id of the previous page.
    pub fn uuid_token(&mut self, field: &str, text: &str) -> Option<Option<Uuid>> {
        if text.is_empty() {
            Some(None)
        } else {
            self.uuid(field, text).map(Some)
        }
    }
}

/// The token for the page after `items`: the key of the last item when the
/// page is full, empty when this was the last page.
pub fn next_page_token<T>(items: &[T], page_size: u32, key: impl Fn(&T) -> String) -> String {
    match items.last() {
        Some(last) if items.len() == page_size as usize => key(last),
        _ => String::new(),
    }
}

pub fn relief_kind_from_pb(kind: pb::ReliefKind) -> Option<ReliefKind> {
    Some(match kind {
        pb::ReliefKind::Unspecified => return None,
        pb::ReliefKind::Illness => ReliefKind::Illness,
        pb::ReliefKind::Schooling => ReliefKind::Schooling,
        pb::ReliefKind::Accident => ReliefKind::Accident,
        pb::ReliefKind::Industry => ReliefKind::Industry,
        pb::ReliefKind::SchoolEntry => ReliefKind::SchoolEntry,
        pb::ReliefKind::IncomeDrop => ReliefKind::IncomeDrop,
    })
}

pub fn relief_kind_to_pb(kind: ReliefKind) -> pb::ReliefKind {
    match kind {
        ReliefKind::Illness => pb::ReliefKind::Illness,
        ReliefKind::Schooling => pb::ReliefKind::Schooling,
        ReliefKind::Accident => pb::ReliefKind::Accident,
        ReliefKind::Industry => pb::ReliefKind::Industry,
        ReliefKind::SchoolEntry => pb::ReliefKind::SchoolEntry,
        ReliefKind::IncomeDrop => pb::ReliefKind::IncomeDrop,
    }
}

pub fn household_type_to_pb(t: HouseholdType) -> pb::HouseholdType {
    match t {
        HouseholdType::UnstableEscaped => pb::HouseholdType::UnstableEscaped,
        HouseholdType::Marginal => pb::HouseholdType::Marginal,
        HouseholdType::SuddenSevereDifficulty => pb::HouseholdType::SuddenSevereDifficulty,
    }
}

fn channel_to_pb(c: Channel) -> pb::Channel {
    match c {
        Channel::VillageApplication => pb::Channel::VillageApplication,
        Channel::DepartmentReferral => pb::Channel::DepartmentReferral,
        Channel::Emergency => pb::Channel::Emergency,
    }
}

fn state_from_pb(s: pb::ClaimState) -> Option<ClaimState> {
    ClaimState::ALL.into_iter().find(|&d| state_to_pb(d) == s)
}

pub fn state_to_pb(s: ClaimState) -> pb::ClaimState {
    match s {
        ClaimState::Received => pb::ClaimState::Received,
        ClaimState::UnderSurvey => pb::ClaimState::UnderSurvey,
        ClaimState::Recommended => pb::ClaimState::Recommended,
        ClaimState::Rejected => pb::ClaimState::Rejected,
        ClaimState::InPublicity => pb::ClaimState::InPublicity,
        ClaimState::PublicityPassed => pb::ClaimState::PublicityPassed,
        ClaimState::Filed => pb::ClaimState::Filed,
        ClaimState::Paid => pb::ClaimState::Paid,
        ClaimState::PayoutFailed => pb::ClaimState::PayoutFailed,
        ClaimState::Disqualified => pb::ClaimState::Disqualified,
        ClaimState::Deliberated => pb::ClaimState::Deliberated,
        ClaimState::TownshipApproved => pb::ClaimState::TownshipApproved,
    }
}

pub fn review_step_to_pb(step: ReviewStep) -> pb::ReviewStep {
    match step {
        ReviewStep::VillageDeliberation => pb::ReviewStep::VillageDeliberation,
        ReviewStep::TownshipReview => pb::ReviewStep::TownshipReview,
        ReviewStep::Publicity => pb::ReviewStep::Publicity,
        ReviewStep::Filing => pb::ReviewStep::Filing,
    }
}

pub fn review_step_from_pb(step: pb::ReviewStep) -> Option<ReviewStep> {
    ReviewStep::ALL
        .into_iter()
        .find(|&s| review_step_to_pb(s) == step)
}

/// What the pool holds for a claim: its net relief while filed and unpaid
/// (a county that files before publicity holds it through the publicity).
pub fn reserved(c: &ClaimRecord) -> Fen {
    match (&c.assessment, c.state) {
        (Some(a), ClaimState::Filed | ClaimState::InPublicity | ClaimState::PublicityPassed)
            if c.filed =>
        {
            net_payout(a.amount, c.advance)
        }
        _ => Fen::ZERO,
    }
}

pub fn claim_to_pb(c: &ClaimRecord) -> pb::Claim {
    pb::Claim {
        claim_id: c.claim_id.to_string(),
        county_code: c.county_code.clone(),
        policy_year: c.policy_year,
        policy_version: c.policy_version,
        household_id: c.household_id.to_string(),
        village_code: c.village_code.clone(),
        relief_kind: relief_kind_to_pb(c.relief_kind).into(),
        channel: channel_to_pb(c.channel).into(),
        state: state_to_pb(c.state).into(),
        event_date: c.event_date.to_string(),
        event_reference: c.event_reference.clone(),
        claimed_cost_yuan: c.claimed_cost.to_string(),
        intake_date: c.intake_date.to_string(),
        survey_deadline: c.survey_deadline.to_string(),
        survey_deadline_provisional: c.survey_deadline_provisional,
        paid_account_masked: c.paid_account_masked.clone().unwrap_or_default(),
        paid_bank_reference: c.paid_bank_reference.clone().unwrap_or_default(),
        payout_returns: c.payout_returns,
        surveyor: c.surveyor.clone().unwrap_or_default(),
        assessment: c
            .assessment
            .as_ref()
            .map(|a| assessment_to_pb(a, c.policy_version)),
        advance_paid_yuan: c.advance.to_string(),
        payout_yuan: c.payout.map(|p| p.to_string()).unwrap_or_default(),
        publicity_opens_on: c
            .publicity
            .map(|p| p.opens_on.to_string())
            .unwrap_or_default(),
        publicity_last_objection_day: c
            .publicity
            .map(|p| p.last_objection_day.to_string())
            .unwrap_or_default(),
        recommendation_reason: c.recommendation_reason.clone().unwrap_or_default(),
        description: c.description.clone(),
        objections: c.objections,
        reserved_yuan: reserved(c).to_string(),
    }
}

/// The stored assessment on the wire, with its computation step by step.
fn assessment_to_pb(
    a: &fangpin_store::claims::StoredAssessment,
    policy_version: u32,
) -> pb::Assessment {
    let mut out = pb::Assessment {
        verified_income_per_capita_yuan: a.verified_income_per_capita.to_string(),
        verified_cost_yuan: a.verified_cost.to_string(),
        income_limit_yuan: a.income_limit.to_string(),
        threshold_yuan: a.threshold.to_string(),
        eligible: a.eligible,
        amount_yuan: a.amount.to_string(),
        explanation: a.explanation.clone(),
        notes: a.notes.clone(),
        evidence_refs: a.evidence_refs.clone(),
        surveyed_by: a.surveyed_by.clone(),
        policy_version,
        findings_seq: a.findings_seq,
        ..Default::default()
    };
    if let Some(c) = &a.computation {
        out.household_type = household_type_to_pb(c.household_type).into();
        out.relief_kind = relief_kind_to_pb(c.relief_kind).into();
        out.income_comparison = c.income_comparison.clone();
        out.income_met = a.verified_income_per_capita < a.income_limit;
        out.comparison = match c.comparison {
            Comparison::AtLeast => "at_least",
            Comparison::Above => "above",
        }
        .to_string();
        out.expenditure_met = match (&c.income_drop, c.comparison) {
            (Some(d), _) => d.qualified,
            (None, Comparison::AtLeast) => a.verified_cost >= a.threshold,
            (None, Comparison::Above) => a.verified_cost > a.threshold,
        };
        out.income_drop = c.income_drop.as_ref().map(|d| pb::IncomeDropDerivation {
            baseline: match d.baseline {
                IncomeBaseline::LastVerified => "last_verified",
                IncomeBaseline::AverageOfYears => "average_of_years",
            }
            .to_string(),
            prior_incomes_per_capita_yuan: d.prior_incomes.iter().map(Fen::to_string).collect(),
            baseline_income_yuan: d.baseline_income.to_string(),
            new_income_yuan: d.new_income.to_string(),
            drop_yuan: d.drop.to_string(),
            drop_share: d.drop_share.to_string(),
            min_drop_share: d.min_drop_share.map(|s| s.to_string()).unwrap_or_default(),
            min_drop_amount_yuan: d.min_drop_amount.map(|f| f.to_string()).unwrap_or_default(),
            qualified: d.qualified,
            gap_per_capita_yuan: d.gap_per_capita.to_string(),
            gap_basis: match d.gap_basis {
                GapBasis::PerCapita => "per_capita",
                GapBasis::Household => "household",
            }
            .to_string(),
            members: d.members,
            relief_base_yuan: d.relief_base.to_string(),
            income_evidence_refs: d.income_evidence_refs.clone(),
        });
        out.status = c.status.as_ref().map(|s| pb::StatusDerivation {
            status: relief_status_to_pb(s.evidence.status).into(),
            verified_on: s.evidence.verified_on.to_string(),
            import_id: s.evidence.import_id.clone(),
            term_applied: s.term_applied,
            threshold_yuan: s.threshold.map(|f| f.to_string()).unwrap_or_default(),
            bands_replaced: s.bands_replaced,
            income_condition_waived: s.income_condition_waived,
        });
        out.cost_above_threshold_yuan = c.cost_above_threshold.to_string();
        out.bands = c
            .bands
            .iter()
            .map(|b| pb::AssessedBand {
                from_yuan: b.from.to_string(),
                to_yuan: b.to.to_string(),
                rate: b.rate.normalize().to_string(),
                share_fen: b.share_fen.normalize().to_string(),
            })
            .collect();
        out.banded_exact_fen = c.banded_exact_fen.normalize().to_string();
        out.banded_yuan = c.banded.to_string();
        out.rule_cap_yuan = c.rule_cap.to_string();
        out.case_cap_yuan = c.case_cap.to_string();
        out.capped_at_yuan = c.capped_at.map(|f| f.to_string()).unwrap_or_default();
        out.rounding = c.rounding.clone();
    }
    out
}

pub fn entry_to_pb(e: &EntryRecord) -> pb::LedgerEntry {
    pb::LedgerEntry {
        entry_id: e.entry_id.to_string(),
        sequence: e.sequence,
        county_code: e.county_code.clone(),
        policy_year: e.policy_year,
        kind: e.posting.kind.as_str().to_string(),
        debit_account: e.posting.debit.as_str().to_string(),
        credit_account: e.posting.credit.as_str().to_string(),
        amount_yuan: e.posting.amount.to_string(),
        claim_id: e.claim_id.map(|c| c.to_string()).unwrap_or_default(),
        reference: e.reference.clone(),
        posted_at: e.posted_at.clone(),
        reverses_entry_id: e.reverses.map(|r| r.to_string()).unwrap_or_default(),
    }
}

pub fn flag_to_pb(f: &TopUpFlagRecord) -> pb::TopUpFlag {
    pb::TopUpFlag {
        flag_id: f.flag_id.to_string(),
        county_code: f.county_code.clone(),
        policy_year: f.policy_year,
        claim_id: f.claim_id.to_string(),
        shortfall_yuan: f.shortfall.to_string(),
        raised_at: f.raised_at.clone(),
        cleared_at: f.cleared_at.clone().unwrap_or_default(),
        cleared_by_entry: f
            .cleared_by_entry
            .map(|e| e.to_string())
            .unwrap_or_default(),
    }
}

pub fn pool_to_pb(
    county_code: &str,
    policy_year: i32,
    totals: &YearTotals,
    entries: u64,
    state: YearState,
) -> pb::PoolBalance {
    pb::PoolBalance {
        county_code: county_code.to_string(),
        policy_year,
        pool_yuan: totals.pool.to_string(),
        premiums_yuan: totals.premiums.to_string(),
        top_ups_yuan: totals.top_ups.to_string(),
        relief_paid_yuan: totals.relief.to_string(),
        advances_yuan: totals.advances.to_string(),
        shortfall_yuan: totals.shortfall().to_string(),
        entries,
        pending_yuan: totals.pending.to_string(),
        available_yuan: totals.available().to_string(),
        opening_yuan: totals.opening.to_string(),
        service_fee_yuan: totals.service_fee.to_string(),
        rolled_over_yuan: totals.rolled_over.to_string(),
        year_state: state.as_str().to_string(),
    }
}

fn comparison_to_pb(c: Comparison) -> pb::Comparison {
    match c {
        Comparison::AtLeast => pb::Comparison::AtLeast,
        Comparison::Above => pb::Comparison::Above,
    }
}

/// A civil-affairs status on the wire; None is 无 (NONE).
pub fn relief_status_to_pb(s: Option<ReliefStatus>) -> pb::CivilStatus {
    match s {
        None => pb::CivilStatus::None,
        Some(ReliefStatus::Dibao) => pb::CivilStatus::Dibao,
        Some(ReliefStatus::Tekun) => pb::CivilStatus::Tekun,
        Some(ReliefStatus::Disability) => pb::CivilStatus::Disability,
    }
}

pub fn policy_to_pb(policy: &Policy, version: u32, frozen: bool) -> pb::Policy {
    pb::Policy {
        county_code: policy.county.as_str().to_string(),
        policy_year: policy.policy_year,
        version,
        starts_on: policy.starts_on.to_string(),
        ends_on: policy.ends_on.to_string(),
        poverty_line_yuan: policy.poverty_line.to_string(),
        income_multiplier: policy.income_multiplier.to_string(),
        absolute_income_lines: policy
            .absolute_income_lines
            .iter()
            .map(|l| pb::IncomeLine {
                household_type: household_type_to_pb(l.household_type).into(),
                limit_yuan: l.limit.to_string(),
            })
            .collect(),
        rules: policy
            .rules
            .iter()
            .map(|r| pb::ReliefRule {
                household_type: household_type_to_pb(r.household_type).into(),
                relief_kind: relief_kind_to_pb(r.relief_kind).into(),
                threshold_yuan: r.threshold.to_string(),
                comparison: comparison_to_pb(r.comparison).into(),
                screening_window_months: r.screening_window_months,
                bands: r
                    .bands
                    .iter()
                    .map(|b| pb::Band {
                        from_yuan: b.from.to_string(),
                        rate: b.rate.to_string(),
                    })
                    .collect(),
                cap_yuan: r.cap.to_string(),
                income_drop: r.income_drop.as_ref().map(|t| pb::IncomeDropTerms {
                    baseline: match t.baseline {
                        IncomeBaseline::LastVerified => pb::IncomeBaseline::LastVerified,
                        IncomeBaseline::AverageOfYears => pb::IncomeBaseline::AverageOfYears,
                    }
                    .into(),
                    baseline_years: t.baseline_years,
                    min_drop_share: t.min_drop_share.map(|d| d.to_string()).unwrap_or_default(),
                    min_drop_amount_yuan: t
                        .min_drop_amount
                        .map(|f| f.to_string())
                        .unwrap_or_default(),
                    gap_basis: match t.gap_basis {
                        GapBasis::PerCapita => pb::GapBasis::PerCapita,
                        GapBasis::Household => pb::GapBasis::Household,
                    }
                    .into(),
                }),
            })
            .collect(),
        entry_year_costs: match policy.entry_year_costs {
            EntryYearCosts::EntryFirst => pb::EntryYearCosts::EntryFirst,
            EntryYearCosts::SchoolEntryOnly => pb::EntryYearCosts::SchoolEntryOnly,
            EntryYearCosts::SchoolingOnly => pb::EntryYearCosts::SchoolingOnly,
        }
        .into(),
        status_terms: policy
            .status_terms
            .iter()
            .map(|t| pb::StatusTerm {
                status: relief_status_to_pb(Some(t.status)).into(),
                relief_kind: relief_kind_to_pb(t.relief_kind).into(),
                threshold_yuan: t.threshold.map(|f| f.to_string()).unwrap_or_default(),
                bands: t
                    .bands
                    .iter()
                    .map(|b| pb::Band {
                        from_yuan: b.from.to_string(),
                        rate: b.rate.to_string(),
                    })
                    .collect(),
                waive_income_condition: t.waive_income_condition,
            })
            .collect(),
        time_limits: policy.time_limits.as_ref().map(|t| pb::TimeLimits {
            filing_working_days: t.filing_working_days,
            payout_working_days: t.payout_working_days,
            follow_up_visit_working_days: t.follow_up_visit_working_days,
            monitoring_list_due_day: t.monitoring_list_due_day,
        }),
        cross_checks: policy
            .cross_checks
            .iter()
            .map(|k| pb::CrossCheckKind {
                code: k.code.clone(),
                name: k.name.clone(),
            })
            .collect(),
        emergency_advance_limit_yuan: policy
            .emergency_advance_limit
            .map(|f| f.to_string())
            .unwrap_or_default(),
        review_steps: policy
            .review_steps
            .iter()
            .map(|s| i32::from(review_step_to_pb(*s)))
            .collect(),
        case_cap_yuan: policy.case_cap.to_string(),
        premium_per_person_yuan: policy.premium_per_person.to_string(),
        pool_ratio: policy.pool_ratio.to_string(),
        service_fee_rate: policy.service_fee_rate.to_string(),
        publicity_days: policy.publicity_days,
        survey_deadline_working_days: policy.survey_deadline_working_days,
        frozen,
    }
}

/// Parses a policy message: first every field's syntax, then the domain's own
/// validation of the figures, both reported as field violations.
pub fn policy_from_pb(p: &pb::Policy) -> Result<Policy, AppError> {
    const MAX_ITEMS: usize = 64;
    if p.absolute_income_lines.len() > MAX_ITEMS || p.rules.len() > MAX_ITEMS {
        return Err(AppError::invalid(
            "policy.rules",
            format!("at most {MAX_ITEMS} rules and income lines"),
        ));
    }
    let mut c = Check::new();
    let county = c.county("policy.county_code", &p.county_code);
    let year = c.year("policy.policy_year", p.policy_year);
    let starts_on = c.date("policy.starts_on", &p.starts_on);
    let ends_on = c.date("policy.ends_on", &p.ends_on);
    let poverty_line = c.money("policy.poverty_line_yuan", &p.poverty_line_yuan);
    let income_multiplier = c.decimal("policy.income_multiplier", &p.income_multiplier);
    let lines: Vec<Option<IncomeLine>> = p
        .absolute_income_lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let at = |f: &str| format!("policy.absolute_income_lines[{i}].{f}");
            Some(IncomeLine {
                household_type: c.household_type(&at("household_type"), l.household_type)?,
                limit: c.money(&at("limit_yuan"), &l.limit_yuan)?,
            })
        })
        .collect();
    let rules: Vec<Option<ReliefRule>> = p
        .rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at = |f: &str| format!("policy.rules[{i}].{f}");
            let household_type = c.household_type(&at("household_type"), r.household_type);
            let relief_kind = c.relief_kind(&at("relief_kind"), r.relief_kind);
            let threshold = c.money(&at("threshold_yuan"), &r.threshold_yuan);
            let comparison = match pb::Comparison::try_from(r.comparison) {
                Ok(pb::Comparison::AtLeast) => Some(Comparison::AtLeast),
                Ok(pb::Comparison::Above) => Some(Comparison::Above),
                _ => {
                    c.bad(&at("comparison"), "must be AT_LEAST or ABOVE");
                    None
                }
            };
            let bands: Vec<Option<Band>> = r
                .bands
                .iter()
                .take(MAX_ITEMS)
                .enumerate()
                .map(|(j, b)| {
                    let from = c.money(&at(&format!("bands[{j}].from_yuan")), &b.from_yuan);
                    let rate = c.decimal(&at(&format!("bands[{j}].rate")), &b.rate);
                    Some(Band {
                        from: from?,
                        rate: rate?,
                    })
                })
                .collect();
            let cap = c.money(&at("cap_yuan"), &r.cap_yuan);
            let income_drop = match &r.income_drop {
                None => Some(None),
                Some(t) => {
                    let baseline = match pb::IncomeBaseline::try_from(t.baseline) {
                        Ok(pb::IncomeBaseline::LastVerified) => Some(IncomeBaseline::LastVerified),
                        Ok(pb::IncomeBaseline::AverageOfYears) => {
                            Some(IncomeBaseline::AverageOfYears)
                        }
                        _ => {
                            c.bad(
                                &at("income_drop.baseline"),
                                "must be LAST_VERIFIED or AVERAGE_OF_YEARS",
                            );
                            None
                        }
                    };
                    let gap_basis = match pb::GapBasis::try_from(t.gap_basis) {
                        Ok(pb::GapBasis::PerCapita) => Some(GapBasis::PerCapita),
                        Ok(pb::GapBasis::Household) => Some(GapBasis::Household),
                        _ => {
                            c.bad(
                                &at("income_drop.gap_basis"),
                                "must be PER_CAPITA or HOUSEHOLD",
                            );
                            None
                        }
                    };
                    let share = if t.min_drop_share.is_empty() {
                        Some(None)
                    } else {
                        c.decimal(&at("income_drop.min_drop_share"), &t.min_drop_share)
                            .map(Some)
                    };
                    let amount = if t.min_drop_amount_yuan.is_empty() {
                        Some(None)
                    } else {
                        c.money(
                            &at("income_drop.min_drop_amount_yuan"),
                            &t.min_drop_amount_yuan,
                        )
                        .map(Some)
                    };
                    Some(Some(IncomeDropTerms {
                        baseline: baseline?,
                        baseline_years: t.baseline_years,
                        min_drop_share: share?,
                        min_drop_amount: amount?,
                        gap_basis: gap_basis?,
                    }))
                }
            };
            Some(ReliefRule {
                household_type: household_type?,
                relief_kind: relief_kind?,
                threshold: threshold?,
                comparison: comparison?,
                bands: bands.into_iter().collect::<Option<Vec<_>>>()?,
                cap: cap?,
                screening_window_months: r.screening_window_months,
                income_drop: income_drop?,
            })
        })
        .collect();
    let entry_year_costs = match pb::EntryYearCosts::try_from(p.entry_year_costs) {
        Ok(pb::EntryYearCosts::Unspecified | pb::EntryYearCosts::EntryFirst) => {
            Some(EntryYearCosts::EntryFirst)
        }
        Ok(pb::EntryYearCosts::SchoolEntryOnly) => Some(EntryYearCosts::SchoolEntryOnly),
        Ok(pb::EntryYearCosts::SchoolingOnly) => Some(EntryYearCosts::SchoolingOnly),
        Err(_) => {
            c.bad("policy.entry_year_costs", "must be a known rule");
            None
        }
    };
    if p.status_terms.len() > MAX_ITEMS {
        c.bad(
            "policy.status_terms",
            format!("at most {MAX_ITEMS} status terms"),
        );
    }
    let status_terms: Vec<Option<StatusTerm>> = p
        .status_terms
        .iter()
        .take(MAX_ITEMS)
        .enumerate()
        .map(|(i, t)| {
            let at = |f: &str| format!("policy.status_terms[{i}].{f}");
            let status = match pb::CivilStatus::try_from(t.status) {
                Ok(pb::CivilStatus::Dibao) => Some(ReliefStatus::Dibao),
                Ok(pb::CivilStatus::Tekun) => Some(ReliefStatus::Tekun),
                Ok(pb::CivilStatus::Disability) => Some(ReliefStatus::Disability),
                _ => {
                    c.bad(&at("status"), "must be DIBAO, TEKUN or DISABILITY");
                    None
                }
            };
            let relief_kind = c.relief_kind(&at("relief_kind"), t.relief_kind);
            let threshold = if t.threshold_yuan.is_empty() {
                Some(None)
            } else {
                c.money(&at("threshold_yuan"), &t.threshold_yuan).map(Some)
            };
            let bands: Vec<Option<Band>> = t
                .bands
                .iter()
                .take(MAX_ITEMS)
                .enumerate()
                .map(|(j, b)| {
                    let from = c.money(&at(&format!("bands[{j}].from_yuan")), &b.from_yuan);
                    let rate = c.decimal(&at(&format!("bands[{j}].rate")), &b.rate);
                    Some(Band {
                        from: from?,
                        rate: rate?,
                    })
                })
                .collect();
            Some(StatusTerm {
                status: status?,
                relief_kind: relief_kind?,
                threshold: threshold?,
                bands: bands.into_iter().collect::<Option<Vec<_>>>()?,
                waive_income_condition: t.waive_income_condition,
            })
        })
        .collect();
    let case_cap = c.money("policy.case_cap_yuan", &p.case_cap_yuan);
    let premium = c.money("policy.premium_per_person_yuan", &p.premium_per_person_yuan);
    let pool_ratio = c.decimal("policy.pool_ratio", &p.pool_ratio);
    let service_fee_rate = c.decimal("policy.service_fee_rate", &p.service_fee_rate);
    let emergency_limit = if p.emergency_advance_limit_yuan.is_empty() {
        Some(None)
    } else {
        c.money(
            "policy.emergency_advance_limit_yuan",
            &p.emergency_advance_limit_yuan,
        )
        .map(Some)
    };
    if p.cross_checks.len() > MAX_ITEMS {
        c.bad("policy.cross_checks", format!("at most {MAX_ITEMS} items"));
    }
    let mut review_steps = Vec::new();
    if p.review_steps.is_empty() {
        c.bad(
            "policy.review_steps",
            "must list the county's steps after the survey, for example PUBLICITY, FILING",
        );
    }
    for (i, raw) in p
        .review_steps
        .iter()
        .take(ReviewStep::ALL.len() + 1)
        .enumerate()
    {
        match pb::ReviewStep::try_from(*raw)
            .ok()
            .and_then(review_step_from_pb)
        {
            Some(step) => review_steps.push(step),
            None => c.bad(
                &format!("policy.review_steps[{i}]"),
                "must be VILLAGE_DELIBERATION, TOWNSHIP_REVIEW, PUBLICITY or FILING",
            ),
        }
    }
    c.finish()?;
    let policy = Policy {
        county: county.expect("checked"),
        policy_year: year.expect("checked"),
        starts_on: starts_on.expect("checked"),
        ends_on: ends_on.expect("checked"),
        poverty_line: poverty_line.expect("checked"),
        income_multiplier: income_multiplier.expect("checked"),
        absolute_income_lines: lines.into_iter().map(|l| l.expect("checked")).collect(),
        rules: rules.into_iter().map(|r| r.expect("checked")).collect(),
        case_cap: case_cap.expect("checked"),
        premium_per_person: premium.expect("checked"),
        pool_ratio: pool_ratio.expect("checked"),
        service_fee_rate: service_fee_rate.expect("checked"),
        publicity_days: p.publicity_days,
        survey_deadline_working_days: p.survey_deadline_working_days,
        entry_year_costs: entry_year_costs.expect("checked"),
        status_terms: status_terms
            .into_iter()
            .map(|t| t.expect("checked"))
            .collect(),
        time_limits: p.time_limits.as_ref().map(|t| TimeLimits {
            filing_working_days: t.filing_working_days,
            payout_working_days: t.payout_working_days,
            follow_up_visit_working_days: t.follow_up_visit_working_days,
            monitoring_list_due_day: t.monitoring_list_due_day,
        }),
        cross_checks: p
            .cross_checks
            .iter()
            .map(|k| CrossCheckKind {
                code: k.code.clone(),
                name: k.name.clone(),
            })
            .collect(),
        emergency_advance_limit: emergency_limit.expect("checked"),
        review_steps,
    };
    policy.validate().map_err(|violations| {
        AppError::InvalidArgument(
            violations
                .into_iter()
                .map(|v| Violation {
                    field: format!("policy.{}", v.field),
                    description: v.description,
                })
                .collect(),
        )
    })?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_round_trips_through_the_wire() {
        let county = CountyCode::parse("130426").expect("valid");
        let policy = Policy::example(county, 2024);
        let wire = policy_to_pb(&policy, 1, false);
        assert_eq!(policy_from_pb(&wire).expect("valid"), policy);
    }

    #[test]
    fn bad_policy_fields_are_all_named() {
        let county = CountyCode::parse("130426").expect("valid");
        let mut wire = policy_to_pb(&Policy::example(county, 2024), 1, false);
        wire.poverty_line_yuan = "4000.001".into();
        wire.rules[2].bands[1].rate = "sixty".into();
        wire.publicity_days = 0;
        let Err(AppError::InvalidArgument(v)) = policy_from_pb(&wire) else {
            panic!("expected InvalidArgument")
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["policy.poverty_line_yuan", "policy.rules[2].bands[1].rate"]
        );
        wire.poverty_line_yuan = "4000".into();
        wire.rules[2].bands[1].rate = "0.6".into();
        let Err(AppError::InvalidArgument(v)) = policy_from_pb(&wire) else {
            panic!("expected InvalidArgument")
        };
        assert_eq!(v[0].field, "policy.publicity_days");
    }

    #[test]
    fn checks_collect_every_violation() {
        let mut c = Check::new();
        assert_eq!(c.money("a", "1.234"), None);
        assert_eq!(c.date("b", "2024-2-1"), None);
        assert_eq!(c.text("c", "   ", 10), None);
        assert_eq!(c.text("d", "héllo", 3), None);
        assert!(c.uuid("e", "not-a-uuid").is_none());
        let Err(AppError::InvalidArgument(v)) = c.finish() else {
            panic!("expected violations")
        };
        assert_eq!(
            v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c", "d", "e"]
        );
    }
}
