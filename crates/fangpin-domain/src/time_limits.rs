//! Time limits (限时办结): how long each stage of a case may take, in
//! Chinese working days, and how far a case is from its limit.
//!
//! Anju works with time limits and online warnings; Handan's limit is 15
//! working days from discovery to decision. A stage's deadline is the day
//! it began plus the policy's working days; a case is overdue the working
//! day after its deadline, and "due soon" within N working days of it.

use chrono::NaiveDate;

use crate::calendar::WorkCalendar;

/// A stage that has a time limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// 入户查勘: intake to the surveyor's recommendation.
    Survey,
    /// 备案: publicity passed to the county's filing.
    Filing,
    /// 支付: filing to payment.
    Payout,
    /// 入户走访: one follow-up visit to the next.
    FollowUpVisit,
    /// 月度监测名单: the township's home check of a listed household.
    MonitoringList,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Survey,
        Stage::Filing,
        Stage::Payout,
        Stage::FollowUpVisit,
        Stage::MonitoringList,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Survey => "survey",
            Stage::Filing => "filing",
            Stage::Payout => "payout",
            Stage::FollowUpVisit => "follow_up_visit",
            Stage::MonitoringList => "monitoring_list",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Where one case stands against its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueStatus {
    pub due: NaiveDate,
    /// Working days past the deadline (positive once overdue), or left
    /// before it (negative or zero).
    pub working_days_over: i64,
    pub overdue: bool,
    /// A day counted lay in a year the calendar does not cover.
    pub provisional: bool,
}

/// How `today` stands against `due`: overdue from the day after it, with
/// the working days over (in (due, today]) or left (in (today, due]).
pub fn due_status(calendar: &WorkCalendar, due: NaiveDate, today: NaiveDate) -> DueStatus {
    if today > due {
        let over = calendar.working_days_provisional(due, today);
        DueStatus {
            due,
            working_days_over: i64::from(over.days),
            overdue: true,
            provisional: over.provisional,
        }
    } else {
        let left = calendar.working_days_provisional(today, due);
        DueStatus {
            due,
            working_days_over: -i64::from(left.days),
            overdue: false,
            provisional: left.provisional,
        }
    }
}

/// How `today` stands against a limit of `working_days` counted from
/// `began`: the deadline is the `working_days`-th working day after it,
/// provisional when a day counted lay in an uncovered year.
pub fn status_after(
    calendar: &WorkCalendar,
    began: NaiveDate,
    working_days: u32,
    today: NaiveDate,
) -> DueStatus {
    let deadline = calendar.deadline(began, working_days);
    let mut status = due_status(calendar, deadline.date, today);
    status.provisional |= deadline.provisional;
    status
}

/// Whether a status belongs in a listing of what is overdue or due within
/// `within` working days.
pub fn is_listed(status: &DueStatus, within: u32) -> bool {
    status.overdue || -status.working_days_over <= i64::from(within)
}

/// The monitoring list's due date: the policy's day of the month on or
/// after the issue date (Hebi: lists go down before the 10th, 每月10日前).
pub fn list_due_date(issued_on: NaiveDate, due_day: u32) -> NaiveDate {
    assert!(
        (1..=28).contains(&due_day),
        "validated: a day every month has"
    );
    let this_month = issued_on.with_day_checked(due_day);
    if this_month >= issued_on {
        this_month
    } else {
        let next = issued_on
            .checked_add_months(chrono::Months::new(1))
            .expect("dates stay far inside chrono's range");
        next.with_day_checked(due_day)
    }
}

trait WithDay {
    fn with_day_checked(self, day: u32) -> NaiveDate;
}

impl WithDay for NaiveDate {
    fn with_day_checked(self, day: u32) -> NaiveDate {
        chrono::Datelike::with_day(&self, day).expect("days 1 to 28 exist in every month")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn overdue_counts_working_days_across_the_spring_festival() {
        let calendar = WorkCalendar::official();
        // 2026: the Spring Festival holiday runs 15-23 February; the 14th
        // (Saturday) and the 28th (Saturday) are make-up working days.
        let due = date(2026, 2, 13);
        let s = due_status(calendar, due, date(2026, 2, 24));
        assert!(s.overdue);
        // The 14th (make-up), then the 24th: two working days over.
        assert_eq!(s.working_days_over, 2);
        let s = due_status(calendar, date(2026, 2, 25), date(2026, 2, 12));
        assert!(!s.overdue);
        // 13th, 14th (make-up), 24th, 25th.
        assert_eq!(s.working_days_over, -4);
        assert!(is_listed(&s, 4) && !is_listed(&s, 3));
    }

    #[test]
    fn the_list_is_due_on_the_policy_day() {
        assert_eq!(list_due_date(date(2024, 3, 2), 10), date(2024, 3, 10));
        assert_eq!(list_due_date(date(2024, 3, 10), 10), date(2024, 3, 10));
        assert_eq!(list_due_date(date(2024, 3, 11), 10), date(2024, 4, 10));
        assert_eq!(list_due_date(date(2024, 12, 20), 10), date(2025, 1, 10));
    }
}
