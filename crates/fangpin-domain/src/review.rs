//! The county's own steps around the survey (issue 13), as pure rules: the
//! township head's decision on an emergency (遇困即扶: 乡镇主要负责同志批准),
//! the village's deliberation (村级评议) and the township's review (乡级审核)
//! of a recommended case, and the departments' structured cross-check
//! before filing (县级相关部门信息比对).

use chrono::NaiveDate;
use thiserror::Error;

use crate::Fen;
use crate::claim::{Channel, ClaimState, Procedure};

/// The most members a villagers' representative meeting has: the law asks
/// for one representative per five to fifteen households, so even a large
/// administrative village stays well below this.
pub const MAX_MEETING_MEMBERS: u32 = 500;

/// A village deliberation's attendance and vote (村民代表会议评议).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attendance {
    /// Members of the meeting (应到人数).
    pub members: u32,
    /// Members present (实到人数).
    pub present: u32,
    /// Present members who agreed to the relief (同意人数).
    pub in_favour: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DeliberationError {
    #[error("members must be 1 to {MAX_MEETING_MEMBERS}")]
    Members,
    #[error("present ({present}) exceeds the members ({members})")]
    PresentAboveMembers { present: u32, members: u32 },
    #[error("in favour ({in_favour}) exceeds those present ({present})")]
    InFavourAbovePresent { in_favour: u32, present: u32 },
    #[error(
        "{present} of {members} present: a representative meeting sits only with two thirds \
         of its members (村民委员会组织法 art. 26)"
    )]
    NoQuorum { present: u32, members: u32 },
    #[error("the meeting is dated {held_on}, after today ({today})")]
    InFuture {
        held_on: NaiveDate,
        today: NaiveDate,
    },
    #[error("the meeting is dated {held_on}, before the claim was taken in ({intake})")]
    BeforeIntake {
        held_on: NaiveDate,
        intake: NaiveDate,
    },
}

/// What a village deliberation decided: agreed when more than half of
/// those present agreed (到会人员的过半数同意, Organic Law of the Villagers'
/// Committees art. 26), after checking the meeting could sit at all (two
/// thirds of its members present) and that it is dated between the claim's
/// intake and today.
pub fn deliberation_agrees(
    attendance: Attendance,
    held_on: NaiveDate,
    intake: NaiveDate,
    today: NaiveDate,
) -> Result<bool, DeliberationError> {
    let Attendance {
        members,
        present,
        in_favour,
    } = attendance;
    if !(1..=MAX_MEETING_MEMBERS).contains(&members) {
        return Err(DeliberationError::Members);
    }
    if present > members {
        return Err(DeliberationError::PresentAboveMembers { present, members });
    }
    if in_favour > present {
        return Err(DeliberationError::InFavourAbovePresent { in_favour, present });
    }
    // Two thirds, in integers: 3 × present ≥ 2 × members.
    if u64::from(present) * 3 < u64::from(members) * 2 {
        return Err(DeliberationError::NoQuorum { present, members });
    }
    if held_on > today {
        return Err(DeliberationError::InFuture { held_on, today });
    }
    if held_on < intake {
        return Err(DeliberationError::BeforeIntake { held_on, intake });
    }
    Ok(u64::from(in_favour) * 2 > u64::from(present))
}

/// The township's review of a case (乡级审核).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TownshipDecision {
    /// The case goes on to the county's next step.
    Approved,
    /// Back to the insurer's survey, with the reason on record.
    SentBack,
}

impl TownshipDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            TownshipDecision::Approved => "approved",
            TownshipDecision::SentBack => "sent_back",
        }
    }

    pub fn parse(text: &str) -> Option<TownshipDecision> {
        [TownshipDecision::Approved, TownshipDecision::SentBack]
            .into_iter()
            .find(|d| d.as_str() == text)
    }
}

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
/// surveyor's recommendation and before filing, wherever filing comes in
/// the county's procedure.
pub fn accepts_cross_check(state: ClaimState, procedure: &Procedure) -> bool {
    state.awaits_filing(procedure)
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

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, d).unwrap()
    }

    fn meeting(members: u32, present: u32, in_favour: u32) -> Attendance {
        Attendance {
            members,
            present,
            in_favour,
        }
    }

    #[test]
    fn a_deliberation_agrees_by_more_than_half_of_a_quorate_meeting() {
        let ok = |a| deliberation_agrees(a, day(10), day(1), day(12));
        assert_eq!(ok(meeting(30, 20, 11)), Ok(true));
        // Exactly half is not more than half.
        assert_eq!(ok(meeting(30, 20, 10)), Ok(false));
        assert_eq!(ok(meeting(30, 30, 0)), Ok(false));
        // Two thirds exactly sits; one fewer does not.
        assert_eq!(ok(meeting(30, 20, 20)), Ok(true));
        assert_eq!(
            ok(meeting(30, 19, 19)),
            Err(DeliberationError::NoQuorum {
                present: 19,
                members: 30
            })
        );
        assert_eq!(ok(meeting(0, 0, 0)), Err(DeliberationError::Members));
        assert_eq!(
            ok(meeting(MAX_MEETING_MEMBERS + 1, 400, 300)),
            Err(DeliberationError::Members)
        );
        assert_eq!(
            ok(meeting(10, 11, 5)),
            Err(DeliberationError::PresentAboveMembers {
                present: 11,
                members: 10
            })
        );
        assert_eq!(
            ok(meeting(10, 9, 10)),
            Err(DeliberationError::InFavourAbovePresent {
                in_favour: 10,
                present: 9
            })
        );
        assert!(matches!(
            deliberation_agrees(meeting(9, 9, 9), day(13), day(1), day(12)),
            Err(DeliberationError::InFuture { .. })
        ));
        assert!(matches!(
            deliberation_agrees(meeting(9, 9, 9), day(1), day(2), day(12)),
            Err(DeliberationError::BeforeIntake { .. })
        ));
    }

    proptest::proptest! {
        /// Agreement is exactly "more than half of those present", whenever
        /// the meeting could sit.
        #[test]
        fn agreement_is_a_strict_majority(members in 1u32..=MAX_MEETING_MEMBERS, p in 0u32..=500, f in 0u32..=500) {
            let present = p.min(members);
            let in_favour = f.min(present);
            let result = deliberation_agrees(meeting(members, present, in_favour), day(5), day(5), day(5));
            if 3 * present < 2 * members {
                proptest::prop_assert!(result.is_err());
            } else {
                proptest::prop_assert_eq!(result, Ok(2 * in_favour > present));
            }
        }
    }

    #[test]
    fn cross_checks_are_taken_until_filing_wherever_it_comes() {
        use crate::claim::ReviewStep as R;
        let hebi = Procedure::new(&[
            R::VillageDeliberation,
            R::TownshipReview,
            R::Filing,
            R::Publicity,
        ])
        .unwrap();
        assert!(accepts_cross_check(ClaimState::TownshipApproved, &hebi));
        assert!(!accepts_cross_check(ClaimState::InPublicity, &hebi));
        assert!(!accepts_cross_check(ClaimState::PublicityPassed, &hebi));
        let plain = Procedure::publicity_then_filing();
        assert!(accepts_cross_check(ClaimState::InPublicity, &plain));
        assert!(accepts_cross_check(ClaimState::PublicityPassed, &plain));
        assert!(!accepts_cross_check(ClaimState::Filed, &plain));
        assert!(!accepts_cross_check(ClaimState::UnderSurvey, &plain));
    }
}
