//! Enum names as users read and type them: the proto name in lower snake case
//! without its type prefix (`CLAIM_STATE_IN_PUBLICITY` -> `in_publicity`).
//!
//! The argument enums below derive both clap's `ValueEnum` (for flags) and
//! serde's `Deserialize` (for policy JSON), so a flag and a policy file accept
//! exactly the same spellings.

use clap::ValueEnum;
use fangpin_proto::v1 as pb;
use serde::Deserialize;

fn display(value: i32, proto_name: Option<&'static str>, prefix: &str) -> String {
    match proto_name {
        Some(name) => name
            .strip_prefix(prefix)
            .unwrap_or(name)
            .to_ascii_lowercase(),
        // A newer server may send a value this build does not know; show it
        // rather than fail, the rest of the record is still worth reading.
        None => format!("unknown({value})"),
    }
}

pub fn household_type(value: i32) -> String {
    let name = pb::HouseholdType::try_from(value)
        .ok()
        .map(|e| e.as_str_name());
    display(value, name, "HOUSEHOLD_TYPE_")
}

pub fn relief_kind(value: i32) -> String {
    let name = pb::ReliefKind::try_from(value)
        .ok()
        .map(|e| e.as_str_name());
    display(value, name, "RELIEF_KIND_")
}

pub fn channel(value: i32) -> String {
    let name = pb::Channel::try_from(value).ok().map(|e| e.as_str_name());
    display(value, name, "CHANNEL_")
}

pub fn claim_state(value: i32) -> String {
    let name = pb::ClaimState::try_from(value)
        .ok()
        .map(|e| e.as_str_name());
    display(value, name, "CLAIM_STATE_")
}

pub fn comparison(value: i32) -> String {
    let name = pb::Comparison::try_from(value)
        .ok()
        .map(|e| e.as_str_name());
    display(value, name, "COMPARISON_")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[value(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum HouseholdTypeArg {
    /// 脱贫不稳定户
    UnstableEscaped,
    /// 边缘易致贫户
    Marginal,
    /// 突发严重困难户
    SuddenSevereDifficulty,
}

impl From<HouseholdTypeArg> for pb::HouseholdType {
    fn from(arg: HouseholdTypeArg) -> Self {
        match arg {
            HouseholdTypeArg::UnstableEscaped => Self::UnstableEscaped,
            HouseholdTypeArg::Marginal => Self::Marginal,
            HouseholdTypeArg::SuddenSevereDifficulty => Self::SuddenSevereDifficulty,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[value(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ReliefKindArg {
    Illness,
    Schooling,
    Accident,
    Industry,
    SchoolEntry,
    IncomeDrop,
}

impl From<ReliefKindArg> for pb::ReliefKind {
    fn from(arg: ReliefKindArg) -> Self {
        match arg {
            ReliefKindArg::Illness => Self::Illness,
            ReliefKindArg::Schooling => Self::Schooling,
            ReliefKindArg::Accident => Self::Accident,
            ReliefKindArg::Industry => Self::Industry,
            ReliefKindArg::SchoolEntry => Self::SchoolEntry,
            ReliefKindArg::IncomeDrop => Self::IncomeDrop,
        }
    }
}

/// Short names for typing; the full names (as displayed) are accepted too, so
/// a value copied from `claim show` can be pasted back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ChannelArg {
    /// The household applied through its village committee
    #[value(alias = "village_application")]
    Village,
    /// The county office found it in department data
    #[value(alias = "department_referral")]
    Referral,
    /// 遇困即扶: relief first, recognition afterwards
    Emergency,
}

impl From<ChannelArg> for pb::Channel {
    fn from(arg: ChannelArg) -> Self {
        match arg {
            ChannelArg::Village => Self::VillageApplication,
            ChannelArg::Referral => Self::DepartmentReferral,
            ChannelArg::Emergency => Self::Emergency,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ClaimStateArg {
    Received,
    UnderSurvey,
    Recommended,
    Deliberated,
    TownshipApproved,
    Rejected,
    InPublicity,
    PublicityPassed,
    Filed,
    Paid,
    PayoutFailed,
    Disqualified,
}

impl From<ClaimStateArg> for pb::ClaimState {
    fn from(arg: ClaimStateArg) -> Self {
        match arg {
            ClaimStateArg::Received => Self::Received,
            ClaimStateArg::UnderSurvey => Self::UnderSurvey,
            ClaimStateArg::Recommended => Self::Recommended,
            ClaimStateArg::Deliberated => Self::Deliberated,
            ClaimStateArg::TownshipApproved => Self::TownshipApproved,
            ClaimStateArg::Disqualified => Self::Disqualified,
            ClaimStateArg::Rejected => Self::Rejected,
            ClaimStateArg::InPublicity => Self::InPublicity,
            ClaimStateArg::PublicityPassed => Self::PublicityPassed,
            ClaimStateArg::Filed => Self::Filed,
            ClaimStateArg::Paid => Self::Paid,
            ClaimStateArg::PayoutFailed => Self::PayoutFailed,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComparisonArg {
    AtLeast,
    Above,
}

impl From<ComparisonArg> for pb::Comparison {
    fn from(arg: ComparisonArg) -> Self {
        match arg {
            ComparisonArg::AtLeast => Self::AtLeast,
            ComparisonArg::Above => Self::Above,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every displayed name must parse back to the same proto value, so what
    /// the CLI prints can always be typed back in.
    fn round_trips<A, P>(values: &[P], show: fn(i32) -> String)
    where
        A: ValueEnum + Into<P>,
        P: Copy + PartialEq + std::fmt::Debug + Into<i32>,
    {
        for &value in values {
            let name = show(value.into());
            let arg = A::from_str(&name, false)
                .unwrap_or_else(|e| panic!("{name:?} does not parse: {e}"));
            assert_eq!(arg.into(), value, "{name}");
        }
    }

    #[test]
    fn display_strips_prefix_and_lowercases() {
        assert_eq!(
            claim_state(pb::ClaimState::InPublicity as i32),
            "in_publicity"
        );
        assert_eq!(
            household_type(pb::HouseholdType::UnstableEscaped as i32),
            "unstable_escaped"
        );
        assert_eq!(
            relief_kind(pb::ReliefKind::SchoolEntry as i32),
            "school_entry"
        );
        assert_eq!(
            channel(pb::Channel::VillageApplication as i32),
            "village_application"
        );
        assert_eq!(comparison(pb::Comparison::AtLeast as i32), "at_least");
        assert_eq!(
            claim_state(pb::ClaimState::PayoutFailed as i32),
            "payout_failed"
        );
        assert_eq!(claim_state(0), "unspecified");
    }

    #[test]
    fn unknown_values_are_shown_not_rejected() {
        assert_eq!(claim_state(42), "unknown(42)");
        assert_eq!(relief_kind(-1), "unknown(-1)");
    }

    #[test]
    fn displayed_names_parse_back() {
        use pb::{Channel as C, ClaimState as S, HouseholdType as H, ReliefKind as K};
        round_trips::<HouseholdTypeArg, H>(&[H::UnstableEscaped, H::Marginal], household_type);
        round_trips::<ReliefKindArg, K>(
            &[
                K::Illness,
                K::Schooling,
                K::Accident,
                K::Industry,
                K::SchoolEntry,
                K::IncomeDrop,
            ],
            relief_kind,
        );
        round_trips::<ChannelArg, C>(
            &[C::VillageApplication, C::DepartmentReferral, C::Emergency],
            channel,
        );
        round_trips::<ClaimStateArg, S>(
            &[
                S::Received,
                S::UnderSurvey,
                S::Recommended,
                S::Deliberated,
                S::TownshipApproved,
                S::Rejected,
                S::InPublicity,
                S::PublicityPassed,
                S::Filed,
                S::Paid,
                S::PayoutFailed,
                S::Disqualified,
            ],
            claim_state,
        );
    }

    #[test]
    fn channel_short_names() {
        let parse = |s| ChannelArg::from_str(s, false).map(pb::Channel::from);
        assert_eq!(parse("village"), Ok(pb::Channel::VillageApplication));
        assert_eq!(parse("referral"), Ok(pb::Channel::DepartmentReferral));
        assert_eq!(parse("emergency"), Ok(pb::Channel::Emergency));
        assert!(parse("walk_in").is_err());
    }

    #[test]
    fn json_names_match_flag_names() {
        let kind: ReliefKindArg = serde_json::from_str("\"income_drop\"").expect("parses");
        assert_eq!(kind, ReliefKindArg::IncomeDrop);
        let cmp: ComparisonArg = serde_json::from_str("\"at_least\"").expect("parses");
        assert_eq!(cmp, ComparisonArg::AtLeast);
        assert!(serde_json::from_str::<HouseholdTypeArg>("\"poor\"").is_err());
    }
}

pub fn deadline_stage(value: i32) -> String {
    let name = pb::DeadlineStage::try_from(value)
        .ok()
        .map(|e| e.as_str_name());
    display(value, name, "DEADLINE_STAGE_")
}

pub fn monitoring_status(value: i32) -> String {
    let name = pb::MonitoringStatus::try_from(value)
        .ok()
        .map(|e| e.as_str_name());
    display(value, name, "MONITORING_STATUS_")
}

pub fn visit_mode(value: i32) -> String {
    let name = pb::VisitMode::try_from(value).ok().map(|e| e.as_str_name());
    display(value, name, "VISIT_MODE_")
}

pub fn list_entry_status(value: i32) -> String {
    let name = pb::ListEntryStatus::try_from(value)
        .ok()
        .map(|e| e.as_str_name());
    display(value, name, "LIST_ENTRY_STATUS_")
}

/// A stage with a time limit (限时办结).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum DeadlineStageArg {
    Survey,
    Filing,
    Payout,
    FollowUpVisit,
    MonitoringList,
}

impl From<DeadlineStageArg> for pb::DeadlineStage {
    fn from(s: DeadlineStageArg) -> pb::DeadlineStage {
        match s {
            DeadlineStageArg::Survey => pb::DeadlineStage::Survey,
            DeadlineStageArg::Filing => pb::DeadlineStage::Filing,
            DeadlineStageArg::Payout => pb::DeadlineStage::Payout,
            DeadlineStageArg::FollowUpVisit => pb::DeadlineStage::FollowUpVisit,
            DeadlineStageArg::MonitoringList => pb::DeadlineStage::MonitoringList,
        }
    }
}

/// How a contact person reached the household.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum VisitModeArg {
    HomeVisit,
    Call,
}

impl From<VisitModeArg> for pb::VisitMode {
    fn from(m: VisitModeArg) -> pb::VisitMode {
        match m {
            VisitModeArg::HomeVisit => pb::VisitMode::HomeVisit,
            VisitModeArg::Call => pb::VisitMode::Call,
        }
    }
}
