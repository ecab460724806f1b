//! Follow-up after payment (专人帮扶, 动态管理, 解困销号): the contact
//! persons a relieved household is given, their visits, and clearing and
//! reopening the case, as pure rules.
//!
//! Handan gives every relieved household a named contact person, who visits
//! at least once a quarter and tracks the case until the risk is cleared; Ji'an
//! assigns one or two cadres (帮扶干部) per household. The visit cadence is the
//! policy's `time_limits.follow_up_visit_working_days`, counted from the day
//! the case was opened, its last visit, or its reopening, whichever is latest.

use chrono::NaiveDate;
use thiserror::Error;

use crate::calendar::WorkCalendar;
use crate::time_limits::{DueStatus, due_status, status_after};

/// At most two contact persons per household (Ji'an: 一户一至两名帮扶干部).
pub const MAX_CONTACTS: usize = 2;

/// The most visits one case keeps: two a month for fifty years, far beyond a
/// case's life, so a runaway client cannot grow a case without bound.
pub const MAX_VISITS: usize = 1_200;

/// A case's monitoring status (监测状态).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MonitoringStatus {
    /// 帮扶中: contact persons assigned, visits due on the cadence.
    Monitoring,
    /// 解困销号: the risk is cleared; no visit is due.
    Cleared,
}

impl MonitoringStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MonitoringStatus::Monitoring => "monitoring",
            MonitoringStatus::Cleared => "cleared",
        }
    }

    pub fn parse(text: &str) -> Option<MonitoringStatus> {
        [MonitoringStatus::Monitoring, MonitoringStatus::Cleared]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// How a contact person reached the household.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VisitMode {
    /// 入户走访
    HomeVisit,
    /// 电话回访
    Call,
}

impl VisitMode {
    pub fn as_str(self) -> &'static str {
        match self {
            VisitMode::HomeVisit => "home_visit",
            VisitMode::Call => "call",
        }
    }

    pub fn parse(text: &str) -> Option<VisitMode> {
        [VisitMode::HomeVisit, VisitMode::Call]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// A contact person (帮扶责任人) as the county names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    pub name: String,
    /// 工作单位
    pub work_unit: String,
    /// Mainland digits, as `identity`-style parsing left them.
    pub phone: String,
}

/// A contact person's phone: an 11-digit mobile number beginning with 1,
/// or a landline as area code (0 and 2 to 3 digits), a hyphen and 7 or 8
/// digits. Spaces are not removed: a number is stored as it is dialled.
pub fn parse_phone(text: &str) -> Option<&str> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if text.len() == 11 && text.starts_with('1') && digits(text) {
        return Some(text);
    }
    let (area, number) = text.split_once('-')?;
    let area_ok = (3..=4).contains(&area.len()) && area.starts_with('0') && digits(area);
    let number_ok = (7..=8).contains(&number.len()) && digits(number);
    (area_ok && number_ok).then_some(text)
}

/// A phone as listings show it: the first three and the last four
/// characters, the rest starred (138****8000).
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// Why a follow-up step is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FollowUpError {
    #[error("a household gets one or two contact persons, not {0}")]
    ContactCount(usize),
    #[error("contact person {0:?} is named twice")]
    DuplicateContact(String),
    #[error("the case is cleared; reopen it before recording a visit")]
    Cleared,
    #[error("the case is already cleared")]
    AlreadyCleared,
    #[error("the case is under monitoring; only a cleared case reopens")]
    NotCleared,
    #[error("{0:?} is not a contact person of this household")]
    NotAContact(String),
    #[error("the visit on {visited} is before the case's cadence began on {from}")]
    VisitTooEarly { visited: NaiveDate, from: NaiveDate },
    #[error("the visit on {visited} is after today ({today})")]
    VisitInFuture {
        visited: NaiveDate,
        today: NaiveDate,
    },
    #[error("no visit found the risk gone; the last visit must find it cleared first")]
    RiskRemains,
    #[error("the case has {0} visits, the most it keeps")]
    TooManyVisits(usize),
}

/// Checks the contacts the county names: one or two, distinct by name.
pub fn check_contacts(contacts: &[Contact]) -> Result<(), FollowUpError> {
    if contacts.is_empty() || contacts.len() > MAX_CONTACTS {
        return Err(FollowUpError::ContactCount(contacts.len()));
    }
    if contacts.len() == 2 && contacts[0].name == contacts[1].name {
        return Err(FollowUpError::DuplicateContact(contacts[0].name.clone()));
    }
    Ok(())
}

/// What the rules need to know of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseFacts<'a> {
    pub status: MonitoringStatus,
    pub contacts: &'a [Contact],
    /// The day the visit cadence runs from: the case's opening, its last
    /// visit or its reopening.
    pub cadence_from: NaiveDate,
    pub visits: usize,
    /// Whether the latest visit found the risk remaining; None before any.
    pub last_visit_risk_remains: Option<bool>,
}

/// Checks a visit: by one of the case's contacts, on a day from the
/// cadence's start up to today, on a case under monitoring.
pub fn check_visit(
    case: &CaseFacts<'_>,
    contact_name: &str,
    visited: NaiveDate,
    today: NaiveDate,
) -> Result<(), FollowUpError> {
    if case.status == MonitoringStatus::Cleared {
        return Err(FollowUpError::Cleared);
    }
    if !case.contacts.iter().any(|c| c.name == contact_name) {
        return Err(FollowUpError::NotAContact(contact_name.to_string()));
    }
    if visited > today {
        return Err(FollowUpError::VisitInFuture { visited, today });
    }
    if visited < case.cadence_from {
        return Err(FollowUpError::VisitTooEarly {
            visited,
            from: case.cadence_from,
        });
    }
    if case.visits >= MAX_VISITS {
        return Err(FollowUpError::TooManyVisits(case.visits));
    }
    Ok(())
}

/// Checks clearing (解困销号): only a case under monitoring whose latest
/// visit found the risk gone; a household nobody visited is not cleared on
/// paper.
pub fn check_clear(case: &CaseFacts<'_>) -> Result<(), FollowUpError> {
    match (case.status, case.last_visit_risk_remains) {
        (MonitoringStatus::Cleared, _) => Err(FollowUpError::AlreadyCleared),
        (MonitoringStatus::Monitoring, Some(false)) => Ok(()),
        (MonitoringStatus::Monitoring, _) => Err(FollowUpError::RiskRemains),
    }
}

/// Checks reopening: only a cleared case reopens (the risk returned).
pub fn check_reopen(case: &CaseFacts<'_>) -> Result<(), FollowUpError> {
    match case.status {
        MonitoringStatus::Cleared => Ok(()),
        MonitoringStatus::Monitoring => Err(FollowUpError::NotCleared),
    }
}

/// When the next visit is due: `working_days` after the cadence's start.
/// The second value says a day counted lay in a year the calendar does not
/// cover.
pub fn next_visit_due(
    calendar: &WorkCalendar,
    cadence_from: NaiveDate,
    working_days: u32,
) -> (NaiveDate, bool) {
    let d = calendar.deadline(cadence_from, working_days);
    (d.date, d.provisional)
}

/// Where a case under monitoring stands against its next visit on `today`;
/// None for a cleared case, which owes no visit.
pub fn visit_status(
    calendar: &WorkCalendar,
    status: MonitoringStatus,
    cadence_from: NaiveDate,
    working_days: u32,
    today: NaiveDate,
) -> Option<DueStatus> {
    if status == MonitoringStatus::Cleared {
        return None;
    }
    Some(status_after(calendar, cadence_from, working_days, today))
}

/// How many working days late a visit on `visited` was against `due` (0
/// when on time).
pub fn working_days_late(calendar: &WorkCalendar, due: NaiveDate, visited: NaiveDate) -> u32 {
    let s = due_status(calendar, due, visited);
    if s.overdue {
        u32::try_from(s.working_days_over).expect("a visit is late by far fewer than 2^32 days")
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn contact(name: &str) -> Contact {
        Contact {
            name: name.into(),
            work_unit: "乡政府".into(),
            phone: "13800138000".into(),
        }
    }

    fn facts(contacts: &[Contact], status: MonitoringStatus, last: Option<bool>) -> CaseFacts<'_> {
        CaseFacts {
            status,
            contacts,
            cadence_from: date(2026, 3, 2),
            visits: 0,
            last_visit_risk_remains: last,
        }
    }

    #[test]
    fn phones_are_mobile_or_landline_and_mask_to_their_ends() {
        assert_eq!(parse_phone("13800138000"), Some("13800138000"));
        assert_eq!(parse_phone("0310-1234567"), Some("0310-1234567"));
        assert_eq!(parse_phone("010-12345678"), Some("010-12345678"));
        for bad in [
            "",
            "1380013800",
            "23800138000",
            "138 0013 8000",
            "0310-12",
            "310-1234567",
        ] {
            assert_eq!(parse_phone(bad), None, "{bad:?}");
        }
        assert_eq!(mask_phone("13800138000"), "138****8000");
        assert_eq!(mask_phone("0310-1234567"), "031*****4567");
    }

    #[test]
    fn one_or_two_distinct_contacts() {
        assert_eq!(check_contacts(&[]), Err(FollowUpError::ContactCount(0)));
        assert!(check_contacts(&[contact("王")]).is_ok());
        assert!(check_contacts(&[contact("王"), contact("李")]).is_ok());
        assert!(matches!(
            check_contacts(&[contact("王"), contact("王")]),
            Err(FollowUpError::DuplicateContact(_))
        ));
        assert_eq!(
            check_contacts(&[contact("a"), contact("b"), contact("c")]),
            Err(FollowUpError::ContactCount(3))
        );
    }

    #[test]
    fn visits_by_a_contact_within_the_cadence_on_an_open_case() {
        let contacts = [contact("王")];
        let open = facts(&contacts, MonitoringStatus::Monitoring, None);
        let today = date(2026, 4, 1);
        assert!(check_visit(&open, "王", date(2026, 3, 2), today).is_ok());
        assert!(matches!(
            check_visit(&open, "李", today, today),
            Err(FollowUpError::NotAContact(_))
        ));
        assert!(matches!(
            check_visit(&open, "王", date(2026, 3, 1), today),
            Err(FollowUpError::VisitTooEarly { .. })
        ));
        assert!(matches!(
            check_visit(&open, "王", date(2026, 4, 2), today),
            Err(FollowUpError::VisitInFuture { .. })
        ));
        let cleared = facts(&contacts, MonitoringStatus::Cleared, Some(false));
        assert_eq!(
            check_visit(&cleared, "王", today, today),
            Err(FollowUpError::Cleared)
        );
    }

    #[test]
    fn clearing_needs_a_visit_that_found_the_risk_gone() {
        let contacts = [contact("王")];
        let m = MonitoringStatus::Monitoring;
        assert_eq!(
            check_clear(&facts(&contacts, m, None)),
            Err(FollowUpError::RiskRemains)
        );
        assert_eq!(
            check_clear(&facts(&contacts, m, Some(true))),
            Err(FollowUpError::RiskRemains)
        );
        assert!(check_clear(&facts(&contacts, m, Some(false))).is_ok());
        let cleared = facts(&contacts, MonitoringStatus::Cleared, Some(false));
        assert_eq!(check_clear(&cleared), Err(FollowUpError::AlreadyCleared));
        assert!(check_reopen(&cleared).is_ok());
        assert_eq!(
            check_reopen(&facts(&contacts, m, None)),
            Err(FollowUpError::NotCleared)
        );
    }

    #[test]
    fn the_next_visit_falls_due_in_working_days_and_a_cleared_case_owes_none() {
        let calendar = WorkCalendar::official();
        // From Friday 13 February 2026 (before the Spring Festival holiday
        // of 15-23 February): the 14th (make-up Saturday) is the 1st
        // working day, the 24th the 2nd.
        let (due, provisional) = next_visit_due(calendar, date(2026, 2, 13), 2);
        assert_eq!(due, date(2026, 2, 24));
        assert!(!provisional);
        let s = visit_status(
            calendar,
            MonitoringStatus::Monitoring,
            date(2026, 2, 13),
            2,
            date(2026, 2, 25),
        )
        .unwrap();
        assert!(s.overdue);
        assert_eq!(s.working_days_over, 1);
        assert_eq!(working_days_late(calendar, due, date(2026, 2, 25)), 1);
        assert_eq!(working_days_late(calendar, due, date(2026, 2, 24)), 0);
        assert!(
            visit_status(
                calendar,
                MonitoringStatus::Cleared,
                date(2026, 2, 13),
                2,
                date(2026, 3, 30)
            )
            .is_none()
        );
    }
}
