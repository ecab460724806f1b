//! The claim state machine (防贫救助案件流程). Every change of state goes through
//! `ClaimState::apply`, which is the only place the allowed transitions are
//! written down.

use serde::{Deserialize, Serialize};

/// How a case was found (两种筛查方式, plus 遇困即扶).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Bottom-up: the household applied through its village committee.
    VillageApplication,
    /// Top-down: the county office found it in department data.
    DepartmentReferral,
    /// 遇困即扶: relief first, recognition afterwards (先救助后认定).
    Emergency,
}

impl Channel {
    pub const ALL: [Channel; 3] = [
        Channel::VillageApplication,
        Channel::DepartmentReferral,
        Channel::Emergency,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::VillageApplication => "village_application",
            Channel::DepartmentReferral => "department_referral",
            Channel::Emergency => "emergency",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimState {
    /// Taken in, waiting for the county office to hand it to the insurer.
    Received,
    /// With an insurer's surveyor (入户查勘).
    UnderSurvey,
    /// The surveyor recommends relief of the assessed amount.
    Recommended,
    /// The surveyor recommends no relief; the case ends.
    Rejected,
    /// On the village notice board (公示).
    InPublicity,
    /// Publicity ended with no objection.
    PublicityPassed,
    /// Cross-checked and recorded by the county office (备案).
    Filed,
    /// The insurer paid the relief.
    Paid,
    /// The bank returned the transfer; the reservation was voided. Retryable.
    PayoutFailed,
    /// The county's departments found what rules the household out (比对不符:
    /// a car, a house, a business, a public salary) and the county office
    /// rejected the claim on it; the case ends. It still holds its event.
    Disqualified,
}

impl ClaimState {
    pub const ALL: [ClaimState; 10] = [
        ClaimState::Received,
        ClaimState::UnderSurvey,
        ClaimState::Recommended,
        ClaimState::Rejected,
        ClaimState::InPublicity,
        ClaimState::PublicityPassed,
        ClaimState::Filed,
        ClaimState::Paid,
        ClaimState::PayoutFailed,
        ClaimState::Disqualified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClaimState::Disqualified => "disqualified",
            ClaimState::Received => "received",
            ClaimState::UnderSurvey => "under_survey",
            ClaimState::Recommended => "recommended",
            ClaimState::Rejected => "rejected",
            ClaimState::InPublicity => "in_publicity",
            ClaimState::PublicityPassed => "publicity_passed",
            ClaimState::Filed => "filed",
            ClaimState::Paid => "paid",
            ClaimState::PayoutFailed => "payout_failed",
        }
    }

    pub fn parse(text: &str) -> Option<ClaimState> {
        ClaimState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A final claim (paid, rejected or disqualified) needs nothing more
    /// before its year closes; a paid one can still come back from the bank.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ClaimState::Rejected | ClaimState::Paid | ClaimState::Disqualified
        )
    }

    /// The one table of allowed transitions.
    pub fn apply(self, event: ClaimEvent) -> Result<ClaimState, TransitionError> {
        use ClaimEvent as E;
        use ClaimState as S;
        let next = match (self, event) {
            (S::Received, E::AssignSurvey) | (S::UnderSurvey, E::AssignSurvey) => S::UnderSurvey,
            (S::UnderSurvey, E::RecommendApproval) => S::Recommended,
            (S::UnderSurvey, E::RecommendRejection) => S::Rejected,
            (S::Recommended, E::OpenPublicity) => S::InPublicity,
            // An objection sends the case back for re-verification.
            (S::InPublicity, E::RaiseObjection) => S::UnderSurvey,
            (S::InPublicity, E::PassPublicity) => S::PublicityPassed,
            (S::PublicityPassed, E::File) => S::Filed,
            (S::Filed, E::Pay) => S::Paid,
            (S::Filed, E::FailPayout) => S::PayoutFailed,
            // The bank returned a transfer already posted (a closed account,
            // a wrong name): the payout is reversed and owed again.
            (S::Paid, E::ReturnPayout) => S::PayoutFailed,
            (S::PayoutFailed, E::RetryPayout) => S::Filed,
            // A cross-check hit (信息比对) before filing: the county office
            // rejects the claim, or sends it back to survey (a publicity
            // under way ends with it).
            (S::Recommended | S::InPublicity | S::PublicityPassed, E::DisqualifyOnCrossCheck) => {
                S::Disqualified
            }
            (S::Recommended | S::InPublicity | S::PublicityPassed, E::ResurveyOnCrossCheck) => {
                S::UnderSurvey
            }
            (from, event) => return Err(TransitionError { from, event }),
        };
        Ok(next)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClaimEvent {
    AssignSurvey,
    RecommendApproval,
    RecommendRejection,
    OpenPublicity,
    RaiseObjection,
    PassPublicity,
    File,
    Pay,
    FailPayout,
    RetryPayout,
    ReturnPayout,
    DisqualifyOnCrossCheck,
    ResurveyOnCrossCheck,
}

impl ClaimEvent {
    pub const ALL: [ClaimEvent; 13] = [
        ClaimEvent::AssignSurvey,
        ClaimEvent::RecommendApproval,
        ClaimEvent::RecommendRejection,
        ClaimEvent::OpenPublicity,
        ClaimEvent::RaiseObjection,
        ClaimEvent::PassPublicity,
        ClaimEvent::File,
        ClaimEvent::Pay,
        ClaimEvent::FailPayout,
        ClaimEvent::RetryPayout,
        ClaimEvent::ReturnPayout,
        ClaimEvent::DisqualifyOnCrossCheck,
        ClaimEvent::ResurveyOnCrossCheck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClaimEvent::AssignSurvey => "assign_survey",
            ClaimEvent::RecommendApproval => "recommend_approval",
            ClaimEvent::RecommendRejection => "recommend_rejection",
            ClaimEvent::OpenPublicity => "open_publicity",
            ClaimEvent::RaiseObjection => "raise_objection",
            ClaimEvent::PassPublicity => "pass_publicity",
            ClaimEvent::File => "file",
            ClaimEvent::Pay => "pay",
            ClaimEvent::FailPayout => "fail_payout",
            ClaimEvent::RetryPayout => "retry_payout",
            ClaimEvent::ReturnPayout => "return_payout",
            ClaimEvent::DisqualifyOnCrossCheck => "disqualify_on_cross_check",
            ClaimEvent::ResurveyOnCrossCheck => "resurvey_on_cross_check",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a claim in state {} cannot {}", from.as_str(), event.as_str())]
pub struct TransitionError {
    pub from: ClaimState,
    pub event: ClaimEvent,
}

/// The natural key of a claim's event reference (事件编号): one event is
/// paid once, however the reference was typed. Trims, folds full-width
/// forms (U+FF01..U+FF5E, the ideographic space U+3000) to their ASCII
/// counterparts, case-folds, and collapses runs of whitespace to one space.
/// Chinese characters are kept as they are.
pub fn event_key(reference: &str) -> String {
    let folded = reference.chars().map(|c| match c {
        '\u{3000}' => ' ',
        '\u{FF01}'..='\u{FF5E}' => {
            char::from_u32(c as u32 - 0xFEE0).expect("U+FF01..U+FF5E map to ASCII")
        }
        other => other,
    });
    let lower: String = folded.flat_map(char::to_lowercase).collect();
    lower.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An emergency advance may be paid once, before the survey decides anything.
pub fn may_pay_emergency_advance(
    channel: Channel,
    state: ClaimState,
    advance_already_paid: bool,
) -> bool {
    channel == Channel::Emergency
        && !advance_already_paid
        && matches!(state, ClaimState::Received | ClaimState::UnderSurvey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ClaimEvent as E;
    use ClaimState as S;

    const ALLOWED: [(ClaimState, ClaimEvent, ClaimState); 18] = [
        (S::Received, E::AssignSurvey, S::UnderSurvey),
        (S::UnderSurvey, E::AssignSurvey, S::UnderSurvey),
        (S::UnderSurvey, E::RecommendApproval, S::Recommended),
        (S::UnderSurvey, E::RecommendRejection, S::Rejected),
        (S::Recommended, E::OpenPublicity, S::InPublicity),
        (S::InPublicity, E::RaiseObjection, S::UnderSurvey),
        (S::InPublicity, E::PassPublicity, S::PublicityPassed),
        (S::PublicityPassed, E::File, S::Filed),
        (S::Filed, E::Pay, S::Paid),
        (S::Filed, E::FailPayout, S::PayoutFailed),
        (S::PayoutFailed, E::RetryPayout, S::Filed),
        (S::Paid, E::ReturnPayout, S::PayoutFailed),
        (S::Recommended, E::DisqualifyOnCrossCheck, S::Disqualified),
        (S::InPublicity, E::DisqualifyOnCrossCheck, S::Disqualified),
        (
            S::PublicityPassed,
            E::DisqualifyOnCrossCheck,
            S::Disqualified,
        ),
        (S::Recommended, E::ResurveyOnCrossCheck, S::UnderSurvey),
        (S::InPublicity, E::ResurveyOnCrossCheck, S::UnderSurvey),
        (S::PublicityPassed, E::ResurveyOnCrossCheck, S::UnderSurvey),
    ];

    #[test]
    fn allowed_transitions() {
        for (from, event, to) in ALLOWED {
            assert_eq!(from.apply(event), Ok(to), "{from:?} --{event:?}-->");
        }
    }

    #[test]
    fn every_other_transition_is_refused() {
        let mut refused = 0;
        for from in ClaimState::ALL {
            for event in ClaimEvent::ALL {
                if ALLOWED.iter().any(|&(f, e, _)| f == from && e == event) {
                    continue;
                }
                assert_eq!(
                    from.apply(event),
                    Err(TransitionError { from, event }),
                    "{from:?} --{event:?}-->"
                );
                refused += 1;
            }
        }
        assert_eq!(
            refused,
            ClaimState::ALL.len() * ClaimEvent::ALL.len() - ALLOWED.len()
        );
    }

    #[test]
    fn final_states_accept_only_a_bank_return() {
        for state in ClaimState::ALL.into_iter().filter(|s| s.is_final()) {
            for event in ClaimEvent::ALL {
                let allowed = state == S::Paid && event == E::ReturnPayout;
                assert_eq!(
                    state.apply(event).is_ok(),
                    allowed,
                    "{state:?} --{event:?}-->"
                );
            }
        }
    }

    #[test]
    fn event_keys_fold_width_case_and_spaces() {
        assert_eq!(event_key("  住院号2026-00815 "), "住院号2026-00815");
        assert_eq!(event_key("住院号２０２６－００８１５"), "住院号2026-00815");
        assert_eq!(event_key("ＡＤＭ　 Ab\t1"), "adm ab 1");
        assert_ne!(event_key("住院号2026-00815"), event_key("住院号2026-00816"));
    }

    proptest::proptest! {
        /// The key is idempotent, and a reference typed in full-width ASCII
        /// or in another case has the same key.
        #[test]
        fn event_key_is_idempotent_and_width_and_case_blind(text in "[ -~]{0,30}") {
            let key = event_key(&text);
            proptest::prop_assert_eq!(event_key(&key), key.clone());
            let full_width: String = text
                .chars()
                .map(|c| if c == ' ' { '\u{3000}' } else { char::from_u32(c as u32 + 0xFEE0).unwrap() })
                .collect();
            proptest::prop_assert_eq!(event_key(&full_width), key.clone());
            proptest::prop_assert_eq!(event_key(&text.to_uppercase()), key);
        }
    }

    #[test]
    fn names_round_trip() {
        for s in ClaimState::ALL {
            assert_eq!(ClaimState::parse(s.as_str()), Some(s));
        }
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
    }

    #[test]
    fn advance_only_for_emergencies_before_the_decision() {
        assert!(may_pay_emergency_advance(
            Channel::Emergency,
            S::Received,
            false
        ));
        assert!(may_pay_emergency_advance(
            Channel::Emergency,
            S::UnderSurvey,
            false
        ));
        assert!(!may_pay_emergency_advance(
            Channel::Emergency,
            S::UnderSurvey,
            true
        ));
        assert!(!may_pay_emergency_advance(
            Channel::Emergency,
            S::Recommended,
            false
        ));
        assert!(!may_pay_emergency_advance(
            Channel::VillageApplication,
            S::Received,
            false
        ));
    }
}
