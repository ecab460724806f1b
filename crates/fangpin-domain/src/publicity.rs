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
