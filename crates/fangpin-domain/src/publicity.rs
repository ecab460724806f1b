//! Village publicity (乡村评议公示): the proposed relief is posted for a number of
//! calendar days; anyone may object while it is up.

use chrono::{Days, NaiveDate};

/// A publicity period. Day one is the day it opens; objections are accepted
/// through `last_objection_day` inclusive, and the period has passed from the
/// day after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicityPeriod {
    pub opens_on: NaiveDate,
    pub last_objection_day: NaiveDate,
}

impl PublicityPeriod {
    /// Opens a period of `days` calendar days (10 in Hebi). `days` is validated
    /// by the policy to be at least one.
    pub fn open(opens_on: NaiveDate, days: u32) -> PublicityPeriod {
        assert!(days >= 1, "a publicity period lasts at least one day");
        let last_objection_day = opens_on
            .checked_add_days(Days::new(u64::from(days - 1)))
            .expect("publicity end within chrono's date range");
        PublicityPeriod {
            opens_on,
            last_objection_day,
        }
    }

    pub fn accepts_objection(&self, today: NaiveDate) -> bool {
        self.opens_on <= today && today <= self.last_objection_day
    }

    pub fn has_ended(&self, today: NaiveDate) -> bool {
        today > self.last_objection_day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
    }

    #[test]
    fn ten_days_include_the_first() {
        let p = PublicityPeriod::open(d(2024, 3, 1), 10);
        assert_eq!(p.last_objection_day, d(2024, 3, 10));
        assert!(p.accepts_objection(d(2024, 3, 1)));
        assert!(p.accepts_objection(d(2024, 3, 10)));
        assert!(!p.accepts_objection(d(2024, 3, 11)));
        assert!(!p.has_ended(d(2024, 3, 10)));
        assert!(p.has_ended(d(2024, 3, 11)));
    }
}

/// What became of an objection (异议处理结果), read from the claim's history
/// after it was raised: the objection sends the claim back to survey, and the
/// first decision after that answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectionOutcome {
    /// Not answered yet: the claim is being surveyed again.
    Pending,
    /// 异议成立: the survey then recommended no relief, or the county
    /// disqualified the household.
    Upheld,
    /// 异议不成立: the claim passed a later publicity.
    NotUpheld,
}

impl ObjectionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectionOutcome::Pending => "pending",
            ObjectionOutcome::Upheld => "upheld",
            ObjectionOutcome::NotUpheld => "not_upheld",
        }
    }
}

/// The outcome of each objection of a claim from its history (the events
/// in order): the n-th `raise_objection` is the n-th objection, and the
/// first decision after it answers it.
pub fn objection_outcomes(events: &[&str]) -> Vec<ObjectionOutcome> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| **e == "raise_objection")
        .map(|(i, _)| {
            events[i + 1..]
                .iter()
                .find_map(|e| match *e {
                    "recommend_rejection" | "disqualify_on_cross_check" => {
                        Some(ObjectionOutcome::Upheld)
                    }
                    "pass_publicity" => Some(ObjectionOutcome::NotUpheld),
                    _ => None,
                })
                .unwrap_or(ObjectionOutcome::Pending)
        })
        .collect()
}

#[cfg(test)]
mod objection_tests {
    use super::*;

    #[test]
    fn the_first_decision_after_each_objection_answers_it() {
        use ObjectionOutcome::*;
        let open = ["recommend_approval", "open_publicity"];
        let mut events = vec!["submit", "assign_survey"];
        events.extend(open);
        assert!(objection_outcomes(&events).is_empty());
        events.push("raise_objection");
        assert_eq!(objection_outcomes(&events), [Pending]);
        // Surveyed again and posted again: a second objection, then passed.
        events.extend(open);
        events.push("raise_objection");
        events.extend(open);
        events.push("pass_publicity");
        assert_eq!(objection_outcomes(&events), [NotUpheld, NotUpheld]);
        let upheld = ["open_publicity", "raise_objection", "recommend_rejection"];
        assert_eq!(objection_outcomes(&upheld), [Upheld]);
    }
}
