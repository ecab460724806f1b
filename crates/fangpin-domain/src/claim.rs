//! The claim state machine (防贫救助案件流程). Every change of state goes through
//! `ClaimState::apply`, which is the only place the allowed transitions are
//! written down. After the surveyor recommends relief, the county's own
//! steps follow in the order its policy names (`Procedure`): Handan posts
//! publicity before filing, Hebi files before publicity.

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
    /// The village deliberated and agreed (村级评议通过).
    Deliberated,
    /// The township reviewed and approved (乡级审核通过).
    TownshipApproved,
    /// The surveyor recommends no relief; the case ends.
    Rejected,
    /// On the village notice board (公示).
    InPublicity,
    /// Publicity ended with no objection.
    PublicityPassed,
    /// Cross-checked and recorded by the county office (备案); its relief is
    /// reserved in the pool from here until it is paid.
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
    pub const ALL: [ClaimState; 12] = [
        ClaimState::Received,
        ClaimState::UnderSurvey,
        ClaimState::Recommended,
        ClaimState::Deliberated,
        ClaimState::TownshipApproved,
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
            ClaimState::Deliberated => "deliberated",
            ClaimState::TownshipApproved => "township_approved",
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

    /// On the county's review path, the step this state says is done:
    /// `Some(None)` for a fresh recommendation, `Some(Some(step))` after a
    /// step; `None` off the path (a publicity under way is not a step done).
    fn step_done(self) -> Option<Option<ReviewStep>> {
        match self {
            ClaimState::Recommended => Some(None),
            ClaimState::Deliberated => Some(Some(ReviewStep::VillageDeliberation)),
            ClaimState::TownshipApproved => Some(Some(ReviewStep::TownshipReview)),
            ClaimState::PublicityPassed => Some(Some(ReviewStep::Publicity)),
            ClaimState::Filed => Some(Some(ReviewStep::Filing)),
            _ => None,
        }
    }

    /// The state a claim is in once `step` is done.
    fn after_step(step: ReviewStep) -> ClaimState {
        match step {
            ReviewStep::VillageDeliberation => ClaimState::Deliberated,
            ReviewStep::TownshipReview => ClaimState::TownshipApproved,
            ReviewStep::Publicity => ClaimState::PublicityPassed,
            ReviewStep::Filing => ClaimState::Filed,
        }
    }

    /// Whether the county office has filed the claim, so that its relief is
    /// reserved: from filing until it is paid, and again while a payout the
    /// bank returned waits to be retried.
    pub fn is_filed(self, procedure: &Procedure) -> bool {
        match self {
            ClaimState::Paid | ClaimState::PayoutFailed => true,
            ClaimState::InPublicity => {
                procedure.comes_before(ReviewStep::Filing, ReviewStep::Publicity)
            }
            state => match state.done_on(procedure) {
                Some(Some(done)) => !procedure.comes_before(done, ReviewStep::Filing),
                _ => false,
            },
        }
    }

    /// The one table of allowed transitions. The county's own steps after a
    /// recommendation are taken in the order of the claim's `procedure`; a
    /// step's event is allowed only when that step is the next one, and the
    /// payout only when every step is done.
    pub fn apply(
        self,
        event: ClaimEvent,
        procedure: &Procedure,
    ) -> Result<ClaimState, TransitionError> {
        use ClaimEvent as E;
        use ClaimState as S;
        let refused = Err(TransitionError { from: self, event });
        let next = self.step_due(procedure);
        let is_next = |step: ReviewStep| next == Some(Some(step));
        let next = match (self, event) {
            (S::Received, E::AssignSurvey) | (S::UnderSurvey, E::AssignSurvey) => S::UnderSurvey,
            (S::UnderSurvey, E::RecommendApproval) => S::Recommended,
            (S::UnderSurvey, E::RecommendRejection) => S::Rejected,
            // 村级评议: agreed, or not, which sends the case back for
            // re-verification (the surveyor may then recommend rejection).
            (_, E::PassDeliberation) if is_next(ReviewStep::VillageDeliberation) => S::Deliberated,
            (_, E::FailDeliberation) if is_next(ReviewStep::VillageDeliberation) => S::UnderSurvey,
            // 乡级审核: approved, or sent back to survey with a reason.
            (_, E::ApproveTownshipReview) if is_next(ReviewStep::TownshipReview) => {
                S::TownshipApproved
            }
            (_, E::SendBackFromTownship) if is_next(ReviewStep::TownshipReview) => S::UnderSurvey,
            (_, E::OpenPublicity) if is_next(ReviewStep::Publicity) => S::InPublicity,
            // An objection sends the case back for re-verification (a filed
            // case's reservation is released with it).
            (S::InPublicity, E::RaiseObjection) => S::UnderSurvey,
            (S::InPublicity, E::PassPublicity) => S::PublicityPassed,
            (_, E::File) if is_next(ReviewStep::Filing) => S::Filed,
            (_, E::Pay) if next == Some(None) => S::Paid,
            (_, E::FailPayout) if next == Some(None) => S::PayoutFailed,
            // The bank returned a transfer already posted (a closed account,
            // a wrong name): the payout is reversed and owed again.
            (S::Paid, E::ReturnPayout) => S::PayoutFailed,
            (S::PayoutFailed, E::RetryPayout) => S::after_step(procedure.last()),
            // A cross-check hit (信息比对) before filing: the county office
            // rejects the claim, or sends it back to survey (a publicity
            // under way ends with it).
            (from, E::DisqualifyOnCrossCheck) if from.awaits_filing(procedure) => S::Disqualified,
            (from, E::ResurveyOnCrossCheck) if from.awaits_filing(procedure) => S::UnderSurvey,
            _ => return refused,
        };
        Ok(next)
    }

    /// On the county's review path, the step due next: `Some(Some(step))`,
    /// or `Some(None)` once every step is done and the payout is due; `None`
    /// off the path (under survey, in publicity, paid, ...).
    pub fn step_due(self, procedure: &Procedure) -> Option<Option<ReviewStep>> {
        self.done_on(procedure)
            .map(|done| procedure.next_after(done))
    }

    /// `step_done` under this procedure. A step the procedure does not have
    /// is off the path: a claim keeps the policy version it was taken in
    /// under, so this is never met, and nothing follows from it.
    fn done_on(self, procedure: &Procedure) -> Option<Option<ReviewStep>> {
        self.step_done()
            .filter(|done| done.is_none_or(|step| procedure.includes(step)))
    }

    /// Recommended and on the county's steps, not yet filed: where the
    /// departments' cross-check and its decisions belong.
    pub fn awaits_filing(self, procedure: &Procedure) -> bool {
        self.is_under_review(procedure) && !self.is_filed(procedure)
    }

    /// Recommended and on the county's steps, not yet paid.
    fn is_under_review(self, procedure: &Procedure) -> bool {
        self == ClaimState::InPublicity || self.done_on(procedure).is_some()
    }
}

/// A step of the county's own procedure after the surveyor recommends relief
/// (办理程序): which apply, and in which order, is the county's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStep {
    /// 村级评议: the village representatives deliberate on the case.
    VillageDeliberation,
    /// 乡级审核: the township reviews it.
    TownshipReview,
    /// 公示: the notice on the village board for the policy's days.
    Publicity,
    /// 备案: the county office files it and its relief is reserved.
    Filing,
}

impl ReviewStep {
    pub const ALL: [ReviewStep; 4] = [
        ReviewStep::VillageDeliberation,
        ReviewStep::TownshipReview,
        ReviewStep::Publicity,
        ReviewStep::Filing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStep::VillageDeliberation => "village_deliberation",
            ReviewStep::TownshipReview => "township_review",
            ReviewStep::Publicity => "publicity",
            ReviewStep::Filing => "filing",
        }
    }
}

/// Why a list of steps is not a procedure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProcedureError {
    #[error("lists {} twice", .0.as_str())]
    Repeated(ReviewStep),
    #[error("must include {}: every county posts the case and files it", .0.as_str())]
    Missing(ReviewStep),
    #[error("puts the township review before the village deliberation it reviews")]
    ReviewBeforeDeliberation,
    #[error("puts {} after filing: only publicity may follow filing", .0.as_str())]
    ReviewAfterFiling(ReviewStep),
}

/// The county's steps from recommendation to payout, in order (Handan:
/// deliberation, publicity, filing; Hebi: township and village review,
/// filing, publicity). Always holds publicity and filing once each; a
/// village deliberation comes before the township review that looks at it;
/// both reviews come before filing, because a filed case's relief is
/// reserved and a review may still send it back. Publicity may follow
/// filing: an objection then releases the reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Procedure {
    steps: Vec<ReviewStep>,
}

impl Procedure {
    pub fn new(steps: &[ReviewStep]) -> Result<Procedure, ProcedureError> {
        for (i, step) in steps.iter().enumerate() {
            if steps[..i].contains(step) {
                return Err(ProcedureError::Repeated(*step));
            }
        }
        for required in [ReviewStep::Publicity, ReviewStep::Filing] {
            if !steps.contains(&required) {
                return Err(ProcedureError::Missing(required));
            }
        }
        let at = |step| steps.iter().position(|s| *s == step);
        if let (Some(d), Some(t)) = (
            at(ReviewStep::VillageDeliberation),
            at(ReviewStep::TownshipReview),
        ) && t < d
        {
            return Err(ProcedureError::ReviewBeforeDeliberation);
        }
        let filing = at(ReviewStep::Filing).expect("checked above");
        if let Some(late) = steps[filing..].iter().find(|s| {
            matches!(
                s,
                ReviewStep::VillageDeliberation | ReviewStep::TownshipReview
            )
        }) {
            return Err(ProcedureError::ReviewAfterFiling(*late));
        }
        assert!(steps.len() <= ReviewStep::ALL.len());
        Ok(Procedure {
            steps: steps.to_vec(),
        })
    }

    /// Publicity then filing: the steps every county has.
    pub fn publicity_then_filing() -> Procedure {
        Procedure::new(&[ReviewStep::Publicity, ReviewStep::Filing]).expect("valid")
    }

    pub fn steps(&self) -> &[ReviewStep] {
        &self.steps
    }

    /// The step after `done` (None: the first), or None when it was the last.
    pub fn next_after(&self, done: Option<ReviewStep>) -> Option<ReviewStep> {
        match done {
            None => self.steps.first().copied(),
            Some(step) => {
                let i = self.position(step)?;
                self.steps.get(i + 1).copied()
            }
        }
    }

    /// The last step: when it is done, the claim is paid.
    pub fn last(&self) -> ReviewStep {
        *self
            .steps
            .last()
            .expect("a procedure has publicity and filing")
    }

    pub fn includes(&self, step: ReviewStep) -> bool {
        self.steps.contains(&step)
    }

    /// Whether `a` is a step of the procedure that comes before `b`.
    pub fn comes_before(&self, a: ReviewStep, b: ReviewStep) -> bool {
        matches!((self.position(a), self.position(b)), (Some(i), Some(j)) if i < j)
    }

    fn position(&self, step: ReviewStep) -> Option<usize> {
        self.steps.iter().position(|s| *s == step)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClaimEvent {
    AssignSurvey,
    RecommendApproval,
    RecommendRejection,
    PassDeliberation,
    FailDeliberation,
    ApproveTownshipReview,
    SendBackFromTownship,
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
    pub const ALL: [ClaimEvent; 17] = [
        ClaimEvent::AssignSurvey,
        ClaimEvent::RecommendApproval,
        ClaimEvent::RecommendRejection,
        ClaimEvent::PassDeliberation,
        ClaimEvent::FailDeliberation,
        ClaimEvent::ApproveTownshipReview,
        ClaimEvent::SendBackFromTownship,
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
            ClaimEvent::PassDeliberation => "pass_deliberation",
            ClaimEvent::FailDeliberation => "fail_deliberation",
            ClaimEvent::ApproveTownshipReview => "approve_township_review",
            ClaimEvent::SendBackFromTownship => "send_back_from_township",
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

    use ReviewStep as R;

    /// Publicity then filing, the steps every county has (and the order of
    /// policies stored before the county chose its own).
    const PUBLICITY_THEN_FILING: [(ClaimState, ClaimEvent, ClaimState); 18] = [
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

    /// Handan (seed 004): village deliberation, township review, publicity,
    /// the departments' cross-check, filing.
    const HANDAN: [(ClaimState, ClaimEvent, ClaimState); 26] = [
        (S::Received, E::AssignSurvey, S::UnderSurvey),
        (S::UnderSurvey, E::AssignSurvey, S::UnderSurvey),
        (S::UnderSurvey, E::RecommendApproval, S::Recommended),
        (S::UnderSurvey, E::RecommendRejection, S::Rejected),
        (S::Recommended, E::PassDeliberation, S::Deliberated),
        (S::Recommended, E::FailDeliberation, S::UnderSurvey),
        (
            S::Deliberated,
            E::ApproveTownshipReview,
            S::TownshipApproved,
        ),
        (S::Deliberated, E::SendBackFromTownship, S::UnderSurvey),
        (S::TownshipApproved, E::OpenPublicity, S::InPublicity),
        (S::InPublicity, E::RaiseObjection, S::UnderSurvey),
        (S::InPublicity, E::PassPublicity, S::PublicityPassed),
        (S::PublicityPassed, E::File, S::Filed),
        (S::Filed, E::Pay, S::Paid),
        (S::Filed, E::FailPayout, S::PayoutFailed),
        (S::PayoutFailed, E::RetryPayout, S::Filed),
        (S::Paid, E::ReturnPayout, S::PayoutFailed),
        (S::Recommended, E::DisqualifyOnCrossCheck, S::Disqualified),
        (S::Deliberated, E::DisqualifyOnCrossCheck, S::Disqualified),
        (
            S::TownshipApproved,
            E::DisqualifyOnCrossCheck,
            S::Disqualified,
        ),
        (S::InPublicity, E::DisqualifyOnCrossCheck, S::Disqualified),
        (
            S::PublicityPassed,
            E::DisqualifyOnCrossCheck,
            S::Disqualified,
        ),
        (S::Recommended, E::ResurveyOnCrossCheck, S::UnderSurvey),
        (S::Deliberated, E::ResurveyOnCrossCheck, S::UnderSurvey),
        (S::TownshipApproved, E::ResurveyOnCrossCheck, S::UnderSurvey),
        (S::InPublicity, E::ResurveyOnCrossCheck, S::UnderSurvey),
        (S::PublicityPassed, E::ResurveyOnCrossCheck, S::UnderSurvey),
    ];

    /// Hebi (seed 001): the township and village review, filing, then the
    /// 10 days' publicity, then payment.
    const HEBI: [(ClaimState, ClaimEvent, ClaimState); 22] = [
        (S::Received, E::AssignSurvey, S::UnderSurvey),
        (S::UnderSurvey, E::AssignSurvey, S::UnderSurvey),
        (S::UnderSurvey, E::RecommendApproval, S::Recommended),
        (S::UnderSurvey, E::RecommendRejection, S::Rejected),
        (S::Recommended, E::PassDeliberation, S::Deliberated),
        (S::Recommended, E::FailDeliberation, S::UnderSurvey),
        (
            S::Deliberated,
            E::ApproveTownshipReview,
            S::TownshipApproved,
        ),
        (S::Deliberated, E::SendBackFromTownship, S::UnderSurvey),
        (S::TownshipApproved, E::File, S::Filed),
        (S::Filed, E::OpenPublicity, S::InPublicity),
        // An objection after filing still sends the case back.
        (S::InPublicity, E::RaiseObjection, S::UnderSurvey),
        (S::InPublicity, E::PassPublicity, S::PublicityPassed),
        (S::PublicityPassed, E::Pay, S::Paid),
        (S::PublicityPassed, E::FailPayout, S::PayoutFailed),
        (S::PayoutFailed, E::RetryPayout, S::PublicityPassed),
        (S::Paid, E::ReturnPayout, S::PayoutFailed),
        (S::Recommended, E::DisqualifyOnCrossCheck, S::Disqualified),
        (S::Deliberated, E::DisqualifyOnCrossCheck, S::Disqualified),
        (
            S::TownshipApproved,
            E::DisqualifyOnCrossCheck,
            S::Disqualified,
        ),
        (S::Recommended, E::ResurveyOnCrossCheck, S::UnderSurvey),
        (S::Deliberated, E::ResurveyOnCrossCheck, S::UnderSurvey),
        (S::TownshipApproved, E::ResurveyOnCrossCheck, S::UnderSurvey),
    ];

    fn handan() -> Procedure {
        Procedure::new(&[
            R::VillageDeliberation,
            R::TownshipReview,
            R::Publicity,
            R::Filing,
        ])
        .unwrap()
    }

    fn hebi() -> Procedure {
        Procedure::new(&[
            R::VillageDeliberation,
            R::TownshipReview,
            R::Filing,
            R::Publicity,
        ])
        .unwrap()
    }

    /// Every allowed transition of the table is allowed, and every other
    /// (state, event) pair is refused.
    fn check_table(procedure: &Procedure, table: &[(ClaimState, ClaimEvent, ClaimState)]) {
        for &(from, event, to) in table {
            assert_eq!(
                from.apply(event, procedure),
                Ok(to),
                "{from:?} --{event:?}--> under {procedure:?}"
            );
        }
        for from in ClaimState::ALL {
            for event in ClaimEvent::ALL {
                if table.iter().any(|&(f, e, _)| f == from && e == event) {
                    continue;
                }
                assert_eq!(
                    from.apply(event, procedure),
                    Err(TransitionError { from, event }),
                    "{from:?} --{event:?}--> under {procedure:?}"
                );
            }
        }
    }

    #[test]
    fn transitions_under_publicity_then_filing() {
        check_table(&Procedure::publicity_then_filing(), &PUBLICITY_THEN_FILING);
    }

    #[test]
    fn transitions_under_handan_order() {
        check_table(&handan(), &HANDAN);
    }

    #[test]
    fn transitions_under_hebi_order() {
        check_table(&hebi(), &HEBI);
    }

    /// Every list of distinct steps, in every order.
    fn every_step_list() -> Vec<Vec<ReviewStep>> {
        let mut out = vec![Vec::new()];
        let mut frontier = vec![Vec::new()];
        while let Some(list) = frontier.pop() {
            for step in ReviewStep::ALL {
                if !list.contains(&step) {
                    let mut longer: Vec<ReviewStep> = list.clone();
                    longer.push(step);
                    out.push(longer.clone());
                    frontier.push(longer);
                }
            }
        }
        out
    }

    #[test]
    fn procedures_are_validated() {
        let lists = every_step_list();
        assert_eq!(lists.len(), 1 + 4 + 12 + 24 + 24);
        let valid: Vec<_> = lists.iter().filter(|l| Procedure::new(l).is_ok()).collect();
        // P F, F P; with D: D P F, P D F, D F P; with T: the same three;
        // with both: D T P F, D P T F, P D T F, D T F P.
        assert_eq!(valid.len(), 2 + 3 + 3 + 4, "{valid:?}");
        assert_eq!(
            Procedure::new(&[R::Publicity, R::Publicity, R::Filing]),
            Err(ProcedureError::Repeated(R::Publicity))
        );
        assert_eq!(
            Procedure::new(&[R::Filing]),
            Err(ProcedureError::Missing(R::Publicity))
        );
        assert_eq!(
            Procedure::new(&[
                R::TownshipReview,
                R::VillageDeliberation,
                R::Publicity,
                R::Filing
            ]),
            Err(ProcedureError::ReviewBeforeDeliberation)
        );
        assert_eq!(
            Procedure::new(&[R::Publicity, R::Filing, R::TownshipReview]),
            Err(ProcedureError::ReviewAfterFiling(R::TownshipReview))
        );
    }

    /// The event that completes a step on the happy path.
    fn passes(step: ReviewStep) -> Vec<ClaimEvent> {
        match step {
            R::VillageDeliberation => vec![E::PassDeliberation],
            R::TownshipReview => vec![E::ApproveTownshipReview],
            R::Publicity => vec![E::OpenPublicity, E::PassPublicity],
            R::Filing => vec![E::File],
        }
    }

    /// Under every valid procedure, the steps are taken in its order and no
    /// other, the payout waits for the last, the claim counts as filed from
    /// filing on, and a cross-check decision is possible exactly until then.
    #[test]
    fn every_procedure_runs_its_steps_in_order() {
        for list in every_step_list() {
            let Ok(procedure) = Procedure::new(&list) else {
                continue;
            };
            let mut state = S::Recommended;
            let mut filed = false;
            for (i, step) in list.iter().enumerate() {
                for event in passes(*step) {
                    if event == passes(*step)[0] {
                        assert_eq!(state.step_due(&procedure), Some(Some(*step)), "{list:?}");
                    }
                    assert!(state.apply(E::Pay, &procedure).is_err(), "{list:?}");
                    assert_eq!(state.is_filed(&procedure), filed, "{state:?} in {list:?}");
                    assert_eq!(
                        state.apply(E::DisqualifyOnCrossCheck, &procedure).is_ok(),
                        !filed,
                        "{state:?} in {list:?}"
                    );
                    // No later step may be taken first.
                    for later in &list[i + 1..] {
                        let first = passes(*later)[0];
                        if first != event {
                            assert!(state.apply(first, &procedure).is_err(), "{list:?}");
                        }
                    }
                    state = state.apply(event, &procedure).unwrap();
                }
                filed |= *step == R::Filing;
            }
            assert!(state.is_filed(&procedure));
            assert_eq!(state.step_due(&procedure), Some(None), "{list:?}");
            assert_eq!(state.apply(E::Pay, &procedure), Ok(S::Paid), "{list:?}");
            assert_eq!(
                S::PayoutFailed.apply(E::RetryPayout, &procedure),
                Ok(state),
                "a retried payout waits where the last step left it"
            );
        }
    }

    #[test]
    fn final_states_accept_only_a_bank_return() {
        for procedure in [Procedure::publicity_then_filing(), handan(), hebi()] {
            for state in ClaimState::ALL.into_iter().filter(|s| s.is_final()) {
                for event in ClaimEvent::ALL {
                    let allowed = state == S::Paid && event == E::ReturnPayout;
                    assert_eq!(
                        state.apply(event, &procedure).is_ok(),
                        allowed,
                        "{state:?} --{event:?}-->"
                    );
                }
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
