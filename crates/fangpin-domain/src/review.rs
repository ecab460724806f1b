//! The county's own steps around the survey (issue 13), as pure rules: the
//! township head's decision on an emergency (遇困即扶: 乡镇主要负责同志批准)
//! and the departments' structured cross-check before filing
//! (县级相关部门信息比对).

use thiserror::Error;

use crate::Fen;
use crate::claim::{Channel, ClaimState};

/// The township head's decision on an emergency report. Approval and
/// refusal are separate decisions, each made once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmergencyDecision {
    /// Help may be advanced, up to `amount`.
    Approved { amount: Fen },
    /// No advance; the claim may still go the normal way (the survey).
    Refused,
}

impl EmergencyDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            EmergencyDecision::Approved { .. } => "approved",
            EmergencyDecision::Refused => "refused",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum EmergencyError {
    #[error("only an emergency claim (channel emergency) is approved or refused by the township")]
    NotAnEmergency,
    #[error("the emergency was already {0}; a decision is made once")]
    AlreadyDecided(&'static str),
    #[error("the survey has decided (state {0}); an emergency decision comes before it")]
    TooLate(&'static str),
    #[error("the approved amount {amount} exceeds the policy's emergency limit {limit}")]
    OverLimit { amount: Fen, limit: Fen },
    #[error("no approval on record: an advance is paid only after the township head approves it")]
    NotApproved,
    #[error(
        "the township refused this emergency: no advance is paid (the survey may still relieve it)"
    )]
    Refused,
    #[error("the advance {amount} exceeds the approved amount {approved}")]
    OverApproved { amount: Fen, approved: Fen },
}

/// Checks a township decision on `channel`/`state` given the one on record.
/// `limit` is the policy's emergency limit (the case cap when it sets
/// none); `amount` is the approved amount, None for a refusal.
pub fn check_decision(
    channel: Channel,
    state: ClaimState,
    existing: Option<EmergencyDecision>,
    amount: Option<Fen>,
    limit: Fen,
) -> Result<(), EmergencyError> {
    if channel != Channel::Emergency {
        return Err(EmergencyError::NotAnEmergency);
    }
    if let Some(d) = existing {
        return Err(EmergencyError::AlreadyDecided(d.as_str()));
    }
    if !matches!(state, ClaimState::Received | ClaimState::UnderSurvey) {
        return Err(EmergencyError::TooLate(state.as_str()));
    }
    if let Some(amount) = amount
        && amount > limit
    {
        return Err(EmergencyError::OverLimit { amount, limit });
    }
    Ok(())
}

/// Checks an advance of `amount` against the decision on record: only
/// after an approval, never above the approved amount.
pub fn check_advance(
    decision: Option<EmergencyDecision>,
    amount: Fen,
) -> Result<(), EmergencyError> {
    match decision {
        None => Err(EmergencyError::NotApproved),
        Some(EmergencyDecision::Refused) => Err(EmergencyError::Refused),
        Some(EmergencyDecision::Approved { amount: approved }) if amount > approved => {
            Err(EmergencyError::OverApproved { amount, approved })
        }
        Some(EmergencyDecision::Approved { .. }) => Ok(()),
    }
}

/// What a department's check found (比对结果).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckResult {
    /// 无异常
    Clear,
    /// 比对发现: the department found something (details say what).
    Hit,
    /// 无法比对: the department could not check (no data, system down);
    /// recorded with the reason, and it does not stop the filing.
    NotPossible,
}

impl CheckResult {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckResult::Clear => "clear",
            CheckResult::Hit => "hit",
            CheckResult::NotPossible => "not_possible",
        }
    }

    pub fn parse(text: &str) -> Option<CheckResult> {
        [
            CheckResult::Clear,
            CheckResult::Hit,
            CheckResult::NotPossible,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// Where a claim's cross-check stands: the required checks with no result
/// yet, and those whose latest result is a hit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrossCheckStatus {
    pub missing: Vec<String>,
    pub hits: Vec<String>,
}

impl CrossCheckStatus {
    /// Filing may go ahead: every required check has a result and none is a hit.
    pub fn allows_filing(&self) -> bool {
        self.missing.is_empty() && self.hits.is_empty()
    }
}

/// The status of `required` checks (by code, in the policy's order) from
/// `recorded` results (code, result) in the order they were recorded: the
/// latest result of a check counts.
pub fn cross_check_status(
    required: &[&str],
    recorded: &[(String, CheckResult)],
) -> CrossCheckStatus {
    let mut out = CrossCheckStatus::default();
    for code in required {
        match recorded.iter().rev().find(|(c, _)| c == code) {
            None => out.missing.push((*code).to_string()),
            Some((_, CheckResult::Hit)) => out.hits.push((*code).to_string()),
            Some(_) => {}
        }
    }
    out
}

/// The states in which departments' results are recorded: after the
/// surveyor's recommendation and before filing.
pub fn accepts_cross_check(state: ClaimState) -> bool {
    matches!(
        state,
        ClaimState::Recommended | ClaimState::InPublicity | ClaimState::PublicityPassed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y: fn(i64) -> Fen = Fen::from_yuan;

    #[test]
    fn a_decision_is_made_once_on_an_emergency_before_the_survey_decides() {
        let e = Channel::Emergency;
        let r = ClaimState::Received;
        assert!(check_decision(e, r, None, Some(Y(2_000)), Y(2_000)).is_ok());
        assert!(check_decision(e, ClaimState::UnderSurvey, None, None, Y(2_000)).is_ok());
        assert_eq!(
            check_decision(e, r, None, Some(Y(2_001)), Y(2_000)),
            Err(EmergencyError::OverLimit {
                amount: Y(2_001),
                limit: Y(2_000)
            })
        );
        assert_eq!(
            check_decision(Channel::VillageApplication, r, None, None, Y(1)),
            Err(EmergencyError::NotAnEmergency)
        );
        assert_eq!(
            check_decision(e, r, Some(EmergencyDecision::Refused), Some(Y(1)), Y(9)),
            Err(EmergencyError::AlreadyDecided("refused"))
        );
        assert_eq!(
            check_decision(e, ClaimState::Recommended, None, None, Y(9)),
            Err(EmergencyError::TooLate("recommended"))
        );
    }

    #[test]
    fn an_advance_needs_an_approval_and_stays_within_it() {
        let approved = Some(EmergencyDecision::Approved { amount: Y(2_000) });
        assert!(check_advance(approved, Y(2_000)).is_ok());
        assert!(check_advance(approved, Y(1_500)).is_ok());
        assert!(matches!(
            check_advance(approved, Fen::new(200_001)),
            Err(EmergencyError::OverApproved { .. })
        ));
        assert_eq!(check_advance(None, Y(1)), Err(EmergencyError::NotApproved));
        assert_eq!(
            check_advance(Some(EmergencyDecision::Refused), Y(1)),
            Err(EmergencyError::Refused)
        );
    }

    #[test]
    fn the_latest_result_of_each_required_check_counts() {
        let rec = |c: &str, r| (c.to_string(), r);
        let required = ["vehicles", "real_estate", "business"];
        let s = cross_check_status(&required, &[]);
        assert_eq!(s.missing, required);
        assert!(!s.allows_filing());
        let recorded = [
            rec("vehicles", CheckResult::Hit),
            rec("real_estate", CheckResult::NotPossible),
            rec("vehicles", CheckResult::Clear),
            rec("business", CheckResult::Hit),
            rec("unrequired", CheckResult::Hit),
        ];
        let s = cross_check_status(&required, &recorded);
        assert!(s.missing.is_empty());
        assert_eq!(s.hits, ["business"]);
        let s = cross_check_status(&required[..2], &recorded);
        assert!(
            s.allows_filing(),
            "a later clear replaces a hit; not possible does not stop it"
        );
    }
}
