//! Time enters the service here and nowhere else: handlers read the clock once
//! per request and pass dates down to the domain, which never reads it.

use std::sync::Mutex;

use chrono::{DateTime, Days, FixedOffset, NaiveDate, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The date in Beijing time (UTC+8, no daylight saving), which is the date
/// every deadline and publicity period of a Chinese county is counted in.
pub fn china_date(at: DateTime<Utc>) -> NaiveDate {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    at.with_timezone(&beijing).date_naive()
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move: for tests, and for training
/// and demonstration servers started with `--today`.
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// Starts at 09:00 Beijing time on `date`, office hours.
    pub fn at_date(date: NaiveDate) -> ManualClock {
        let at = date
            .and_hms_opt(1, 0, 0)
            .expect("01:00 UTC exists")
            .and_utc();
        ManualClock {
            now: Mutex::new(at),
        }
    }

    pub fn advance_days(&self, days: u64) {
        let mut now = self.now.lock().expect("clock mutex poisoned");
        *now = now
            .checked_add_days(Days::new(days))
            .expect("date within range");
    }

    pub fn set_date(&self, date: NaiveDate) {
        *self.now.lock().expect("clock mutex poisoned") = ManualClock::at_date(date).now();
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock mutex poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_date_turns_at_16_utc() {
        let before = "2024-02-09T15:59:59Z"
            .parse::<DateTime<Utc>>()
            .expect("valid");
        let after = "2024-02-09T16:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("valid");
        assert_eq!(china_date(before).to_string(), "2024-02-09");
        assert_eq!(china_date(after).to_string(), "2024-02-10");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let date = NaiveDate::from_ymd_opt(2024, 3, 1).expect("valid");
        let clock = ManualClock::at_date(date);
        assert_eq!(china_date(clock.now()), date);
        clock.advance_days(10);
        assert_eq!(china_date(clock.now()).to_string(), "2024-03-11");
    }
}
