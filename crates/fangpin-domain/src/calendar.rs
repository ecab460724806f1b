//! The official Chinese working-day calendar (中国法定工作日历).
//!
//! Legal deadlines in the relief process are counted in working days (工作日),
//! and in China a working day is not simply Monday to Friday: each year the
//! General Office of the State Council announces holiday blocks (放假) and
//! make-up working days (调休上班) on weekends. This module embeds those
//! announcements from `data/cn-workdays.txt` and answers deadline arithmetic
//! against them.
//!
//! The calendar refuses to guess. A date in a year that the data file does not
//! declare as covered is an error, never "probably Monday to Friday", because a
//! deadline computed from a guess could expire a household's claim on a day the
//! county office was legally closed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate, Weekday};

/// The embedded arrangement data; see the header of the file for its format.
const OFFICIAL_DATA: &str = include_str!("../data/cn-workdays.txt");

/// One year's official working-day arrangement (中国法定工作日历).
///
/// A calendar covers a contiguous range of whole years. Inside that range every
/// date is classified: a listed day off or make-up working day follows the
/// list, any other date follows the ordinary Monday-to-Friday week. Outside
/// that range every query fails with [`CalendarError::OutOfRange`].
#[derive(Clone, PartialEq, Eq)]
pub struct WorkCalendar {
    first_year: i32,
    last_year: i32,
    /// Only the dates that differ from, or restate, the ordinary week; kept
    /// sparse because the data file is the single source of truth and this
    /// mirrors it one to one.
    overrides: BTreeMap<NaiveDate, DayKind>,
}

/// How the arrangement classifies a listed date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayKind {
    /// A day of a holiday block (放假).
    Off,
    /// A weekend day that is worked to make up for a holiday block (调休上班).
    Work,
}

/// Why a calendar could not be built or could not answer a query.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    /// The query needed a date in a year the calendar does not cover.
    #[error("date {0} is outside the working-day calendar (covered years {1}..={2})")]
    OutOfRange(chrono::NaiveDate, i32, i32),
    /// A covered year's weekdays off less its make-up working days differ
    /// from the statutory holiday days: a date was dropped or mistyped.
    #[error(
        "year {year}: {weekdays_off} weekdays off less {make_up} make-up working days = {net}, \
         but the statutory holidays are {expected} days (全国年节及纪念日放假办法): \
         a day off or a make-up day is missing or wrong"
    )]
    Statutory {
        year: i32,
        weekdays_off: u32,
        make_up: u32,
        net: i64,
        expected: u32,
    },
    /// A year before the statutory rule this module knows (2008).
    #[error("year {0}: no statutory holiday count is known before 2008")]
    UnknownStatutoryYear(i32),
    /// An operator's calendar that does not continue the built-in one.
    #[error("{0}")]
    Merge(String),
    /// The calendar text is malformed; `line` is 1-based.
    #[error("calendar line {line}: {reason}")]
    Parse {
        /// The 1-based line number of the offending line.
        line: usize,
        /// A human-readable description of the problem.
        reason: String,
    },
}

/// A deadline counted in working days, and whether it is provisional: a
/// date in a year the calendar does not cover was counted as a plain Monday
/// to Friday, because intake must never stop for want of a calendar. A
/// provisional deadline is recomputed once that year's arrangement is
/// loaded (the State Council publishes it in November of the year before).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    pub date: NaiveDate,
    pub provisional: bool,
}

/// Working days counted over an interval, and whether any day of it lay in
/// an uncovered year (counted Monday to Friday, provisionally).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkingDays {
    pub days: u32,
    pub provisional: bool,
}

/// The statutory holiday days of a year (《全国年节及纪念日放假办法》): 11
/// from the 2007 revision (first applied in 2008), 13 from the 2024-11
/// revision (除夕 and 5-02 added, from 2025). None before 2008.
pub fn statutory_holiday_days(year: i32) -> Option<u32> {
    match year {
        ..=2007 => None,
        2008..=2024 => Some(11),
        _ => Some(13),
    }
}

/// Extra days off a State Council notice added to a year beyond the
/// statutory ones. The only one: 国办发明电〔2020〕1号 extended the 2020 Spring
/// Festival by two weekdays off for COVID-19 control (01-31 off, the
/// Saturday 02-01 make-up day cancelled).
pub fn extra_days_off(year: i32) -> u32 {
    if year == 2020 { 2 } else { 0 }
}

/// How many days before the calendar's last covered day the service starts
/// warning that next year's arrangement must be loaded.
pub const COVERAGE_WARNING_DAYS: i64 = 60;

/// The years a calendar may declare: the policy years (2000-2100) and the
/// year after the last, where its deadlines can fall.
pub const CALENDAR_YEARS: std::ops::RangeInclusive<i32> = 2000..=2101;

impl fmt::Debug for WorkCalendar {
    // The override table runs to hundreds of entries, which would drown any
    // assertion message that happens to print a calendar.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkCalendar")
            .field("years", &(self.first_year..=self.last_year))
            .field("listed_dates", &self.overrides.len())
            .finish()
    }
}

impl WorkCalendar {
    /// Returns the calendar embedded from `data/cn-workdays.txt`, parsed on first use.
    ///
    /// # Panics
    ///
    /// Panics only if the embedded file is malformed, which the unit test
    /// `official_calendar_parses_and_covers_2020_to_2026` rules out at build time.
    pub fn official() -> &'static WorkCalendar {
        static OFFICIAL: OnceLock<WorkCalendar> = OnceLock::new();
        OFFICIAL.get_or_init(|| {
            WorkCalendar::parse(OFFICIAL_DATA)
                .expect("the embedded data/cn-workdays.txt must be a valid calendar")
        })
    }

    /// Parses a calendar in the format of `data/cn-workdays.txt`.
    ///
    /// Each non-blank line, after removing a `#` comment, is either
    /// `year YYYY`, declaring that year covered, or `YYYY-MM-DD off|work [label]`.
    /// Years must be declared in ascending order without gaps, and a year must
    /// be declared before any of its dates appear.
    ///
    /// # Errors
    ///
    /// Returns [`CalendarError::Parse`] with the 1-based line number for a
    /// malformed line or date, an unknown kind, a date whose year has not been
    /// declared, a date listed twice, a `work` entry on a Monday to Friday, a
    /// year declared out of order or twice, or a text that declares no year.
    pub fn parse(text: &str) -> Result<WorkCalendar, CalendarError> {
        let mut years: Option<(i32, i32)> = None;
        let mut overrides = BTreeMap::new();
        let mut line_count = 0;

        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            line_count = line;
            let content = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
            if content.is_empty() {
                continue;
            }
            let err = |reason: String| CalendarError::Parse { line, reason };
            let mut fields = content.split_whitespace();
            let (Some(head), Some(kind)) = (fields.next(), fields.next()) else {
                return Err(err(format!(
                    "expected `year YYYY` or `YYYY-MM-DD off|work [label]`, found {content:?}"
                )));
            };

            if head == "year" {
                if let Some(extra) = fields.next() {
                    return Err(err(format!("unexpected {extra:?} after the year")));
                }
                let year: i32 = kind
                    .parse()
                    .map_err(|_| err(format!("{kind:?} is not a year")))?;
                // Business dates lie in policy years; a year far outside
                // them is a typo, and one past chrono's range would make
                // every date of the year unrepresentable.
                if !CALENDAR_YEARS.contains(&year) {
                    return Err(err(format!(
                        "year {year} is outside {}..={}",
                        CALENDAR_YEARS.start(),
                        CALENDAR_YEARS.end()
                    )));
                }
                // Requiring each year to follow the previous one keeps the
                // covered range gap-free, which the range check on queries
                // relies on, and lets the error point at the offending line.
                years = match years {
                    None => Some((year, year)),
                    Some((first, last)) if last.checked_add(1) == Some(year) => Some((first, year)),
                    Some((_, last)) => {
                        return Err(err(format!(
                            "year {year} does not follow {last}: covered years must be \
                             declared once each, ascending and contiguous"
                        )));
                    }
                };
                continue;
            }

            let date = NaiveDate::parse_from_str(head, "%Y-%m-%d")
                .map_err(|e| err(format!("{head:?} is not a YYYY-MM-DD date: {e}")))?;
            let kind = match kind {
                "off" => DayKind::Off,
                "work" => DayKind::Work,
                other => {
                    return Err(err(format!(
                        "unknown kind {other:?}, expected `off` or `work`"
                    )));
                }
            };
            match years {
                Some((first, last)) if (first..=last).contains(&date.year()) => {}
                _ => {
                    return Err(err(format!(
                        "{date} lies in year {}, which has not been declared with `year {}`",
                        date.year(),
                        date.year()
                    )));
                }
            }
            // A make-up working day exists only to fill a weekend; `work` on a
            // weekday would change nothing and is almost certainly a typo for
            // a neighbouring date.
            if kind == DayKind::Work && !is_weekend(date) {
                return Err(err(format!(
                    "{date} is a {:?}; a make-up working day must be a Saturday or Sunday",
                    date.weekday()
                )));
            }
            if overrides.insert(date, kind).is_some() {
                return Err(err(format!("{date} is listed twice")));
            }
        }

        let Some((first_year, last_year)) = years else {
            return Err(CalendarError::Parse {
                line: line_count.max(1),
                reason: "no `year YYYY` declaration: the calendar covers nothing".to_owned(),
            });
        };
        Ok(WorkCalendar {
            first_year,
            last_year,
            overrides,
        })
    }

    /// Checks every covered year against the statutory holidays: weekdays off
    /// less make-up working days must equal the statutory holiday days (plus
    /// the one documented extension of 2020). Every make-up day repays one
    /// weekday of a holiday block, so a dropped or mistyped date that single
    /// line checks cannot see shows here.
    ///
    /// # Errors
    ///
    /// [`CalendarError::Statutory`] for the first year that does not add up,
    /// [`CalendarError::UnknownStatutoryYear`] for a year before 2008.
    pub fn check_statutory(&self) -> Result<(), CalendarError> {
        for year in self.first_year..=self.last_year {
            let expected = statutory_holiday_days(year)
                .ok_or(CalendarError::UnknownStatutoryYear(year))?
                + extra_days_off(year);
            let (weekdays_off, make_up) = self.year_counts(year)?;
            let net = i64::from(weekdays_off) - i64::from(make_up);
            if net != i64::from(expected) {
                return Err(CalendarError::Statutory {
                    year,
                    weekdays_off,
                    make_up,
                    net,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// A covered year's weekdays off and make-up working days.
    ///
    /// # Errors
    ///
    /// [`CalendarError::OutOfRange`] for a year the calendar does not cover.
    pub fn year_counts(&self, year: i32) -> Result<(u32, u32), CalendarError> {
        let (mut weekdays_off, mut make_up) = (0u32, 0u32);
        let mut date =
            NaiveDate::from_ymd_opt(year, 1, 1).ok_or(CalendarError::UnknownStatutoryYear(year))?;
        while date.year() == year {
            match (is_weekend(date), self.is_working_day(date)?) {
                (false, false) => weekdays_off += 1,
                (true, true) => make_up += 1,
                _ => {}
            }
            date = self.next_day(date)?;
        }
        Ok((weekdays_off, make_up))
    }

    /// Parses an operator's calendar file and checks it as the built-in data
    /// is checked: the format, then the statutory holidays of every year.
    ///
    /// # Errors
    ///
    /// The first [`CalendarError`] found.
    pub fn parse_checked(text: &str) -> Result<WorkCalendar, CalendarError> {
        let calendar = WorkCalendar::parse(text)?;
        calendar.check_statutory()?;
        Ok(calendar)
    }

    /// The built-in calendar extended by an operator's: the operator's years
    /// must continue the built-in ones without a gap, and a year in both
    /// must be listed identically (the State Council's notice does not
    /// change once published, so a difference is a mistake in one of them).
    ///
    /// # Errors
    ///
    /// [`CalendarError::Merge`] naming the gap or the first differing date.
    pub fn extended_by(&self, other: &WorkCalendar) -> Result<WorkCalendar, CalendarError> {
        if other.first_year > self.last_year.saturating_add(1) {
            return Err(CalendarError::Merge(format!(
                "the calendar file starts with {}, leaving a gap after the built-in years {}..={}: \
                 list every year from {} on",
                other.first_year,
                self.first_year,
                self.last_year,
                self.last_year + 1
            )));
        }
        if other.first_year < self.first_year {
            return Err(CalendarError::Merge(format!(
                "the calendar file starts with {}, before the built-in years {}..={}",
                other.first_year, self.first_year, self.last_year
            )));
        }
        let shared = other.first_year..=self.last_year.min(other.last_year);
        let in_shared = |d: &&NaiveDate| shared.contains(&d.year());
        let mine: BTreeMap<_, _> = self
            .overrides
            .iter()
            .filter(|(d, _)| in_shared(d))
            .collect();
        let theirs: BTreeMap<_, _> = other
            .overrides
            .iter()
            .filter(|(d, _)| in_shared(d))
            .collect();
        if mine != theirs {
            let differing = mine
                .keys()
                .chain(theirs.keys())
                .find(|d| mine.get(*d) != theirs.get(*d))
                .expect("the maps differ");
            return Err(CalendarError::Merge(format!(
                "the calendar file lists {differing} differently from the built-in calendar \
                 (built-in: {:?}, file: {:?}); a published year must be copied exactly",
                mine.get(differing),
                theirs.get(differing)
            )));
        }
        let mut overrides = self.overrides.clone();
        overrides.extend(other.overrides.iter().map(|(d, k)| (*d, *k)));
        Ok(WorkCalendar {
            first_year: self.first_year,
            last_year: self.last_year.max(other.last_year),
            overrides,
        })
    }

    /// The last day the calendar covers (31 December of its last year).
    #[must_use]
    pub fn last_covered_day(&self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.last_year, 12, 31).expect("covered year is valid")
    }

    /// Days from `today` to the last covered day (negative once past it).
    #[must_use]
    pub fn days_of_coverage_left(&self, today: NaiveDate) -> i64 {
        (self.last_covered_day() - today).num_days()
    }

    /// The warning to give when the calendar's coverage ends within
    /// [`COVERAGE_WARNING_DAYS`] of `today`, or has ended.
    #[must_use]
    pub fn coverage_warning(&self, today: NaiveDate) -> Option<String> {
        let left = self.days_of_coverage_left(today);
        let next = self.last_year + 1;
        if left < 0 {
            Some(format!(
                "the working-day calendar ended on {}: deadlines in {} and later are provisional \
                 (counted Monday to Friday) until the State Council's {next} arrangement is \
                 loaded with [calendar] file",
                self.last_covered_day(),
                self.last_covered_day().year() + 1
            ))
        } else if left <= COVERAGE_WARNING_DAYS {
            Some(format!(
                "the working-day calendar ends on {} ({left} days): load the State Council's \
                 {next} holiday arrangement with [calendar] file before then, or deadlines in \
                 {next} will be provisional",
                self.last_covered_day()
            ))
        } else {
            None
        }
    }

    /// Whether `date` is a working day, and whether that answer is
    /// provisional: outside the covered years, Monday to Friday.
    fn working_or_weekday(&self, date: NaiveDate) -> (bool, bool) {
        match self.is_working_day(date) {
            Ok(working) => (working, false),
            Err(_) => (!is_weekend(date), true),
        }
    }

    /// The `days`-th working day strictly after `start`, as
    /// [`WorkCalendar::add_working_days`], except that a date in an uncovered
    /// year counts Monday to Friday and makes the deadline provisional. No
    /// holiday is ever invented for an uncovered year.
    #[must_use]
    pub fn deadline(&self, start: NaiveDate, days: u32) -> Deadline {
        let mut date = start;
        let mut remaining = days;
        let mut provisional = false;
        while remaining > 0 {
            date = date
                .succ_opt()
                .expect("deadlines stay far inside chrono's range");
            let (working, guessed) = self.working_or_weekday(date);
            provisional |= guessed;
            if working {
                remaining -= 1;
            }
        }
        Deadline { date, provisional }
    }

    /// The working days in (`start`, `end`], as
    /// [`WorkCalendar::working_days_between`], provisional where a day lay
    /// in an uncovered year.
    #[must_use]
    pub fn working_days_provisional(&self, start: NaiveDate, end: NaiveDate) -> WorkingDays {
        let mut days = 0;
        let mut provisional = false;
        let mut date = start;
        while date < end {
            date = date
                .succ_opt()
                .expect("dates stay far inside chrono's range");
            let (working, guessed) = self.working_or_weekday(date);
            provisional |= guessed;
            if working {
                days += 1;
            }
        }
        WorkingDays { days, provisional }
    }

    /// Returns the first and last covered year, both inclusive.
    #[must_use]
    pub fn years(&self) -> (i32, i32) {
        (self.first_year, self.last_year)
    }

    /// Tells whether `date` is an official working day.
    ///
    /// # Errors
    ///
    /// Returns [`CalendarError::OutOfRange`] if `date` lies outside the covered years.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        if !(self.first_year..=self.last_year).contains(&date.year()) {
            return Err(self.out_of_range(date));
        }
        Ok(match self.overrides.get(&date) {
            Some(DayKind::Off) => false,
            Some(DayKind::Work) => true,
            None => !is_weekend(date),
        })
    }

    /// Returns the `days`-th working day strictly after `start`.
    ///
    /// `start` itself never counts, so a deadline of one working day from a
    /// Friday is the following Monday unless that is a holiday. For `days == 0`
    /// the result is `start` unchanged and no date is looked up.
    ///
    /// # Errors
    ///
    /// Returns [`CalendarError::OutOfRange`] for the first date examined that
    /// lies outside the covered years; uncovered years are never treated as
    /// plain Monday-to-Friday weeks.
    pub fn add_working_days(
        &self,
        start: NaiveDate,
        days: u32,
    ) -> Result<NaiveDate, CalendarError> {
        let mut date = start;
        let mut remaining = days;
        while remaining > 0 {
            date = self.next_day(date)?;
            if self.is_working_day(date)? {
                remaining -= 1;
            }
        }
        Ok(date)
    }

    /// Counts the working days in the half-open interval (`start`, `end`].
    ///
    /// The interval matches [`WorkCalendar::add_working_days`], so that
    /// `working_days_between(s, add_working_days(s, n)?)` is `n`. If `end` is
    /// not after `start` the count is 0 and no date is looked up.
    ///
    /// # Errors
    ///
    /// Returns [`CalendarError::OutOfRange`] for the first date of the interval
    /// that lies outside the covered years.
    pub fn working_days_between(
        &self,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<u32, CalendarError> {
        let mut count = 0;
        let mut date = start;
        while date < end {
            date = self.next_day(date)?;
            if self.is_working_day(date)? {
                count += 1;
            }
        }
        Ok(count)
    }

    fn next_day(&self, date: NaiveDate) -> Result<NaiveDate, CalendarError> {
        // Only reachable at chrono's maximum date, far outside any coverage;
        // reporting it as out of range keeps the API free of a second error kind.
        date.succ_opt().ok_or_else(|| self.out_of_range(date))
    }

    fn out_of_range(&self, date: NaiveDate) -> CalendarError {
        CalendarError::OutOfRange(date, self.first_year, self.last_year)
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    /// Found by fuzz/calendar: `year 2027689` was accepted, a year whose
    /// dates chrono cannot represent.
    #[test]
    fn refuses_years_outside_the_policy_years() {
        for year in ["2027689", "-5", "0", "1999", "2102"] {
            let text = format!("year {year}\n");
            match WorkCalendar::parse(&text) {
                Err(CalendarError::Parse { line: 1, reason }) => {
                    assert!(reason.contains("outside 2000..=2101"), "{reason}")
                }
                other => panic!("{year}: {other:?}"),
            }
        }
        assert!(WorkCalendar::parse("year 2101\n").is_ok());
        assert!(WorkCalendar::parse("year 2000\n").is_ok());
    }

    use super::*;
    use proptest::prelude::*;

    fn d(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).expect("valid test date")
    }

    fn cal() -> &'static WorkCalendar {
        WorkCalendar::official()
    }

    fn working(date: NaiveDate) -> bool {
        cal()
            .is_working_day(date)
            .expect("date inside the covered years")
    }

    fn parse_error_line(text: &str) -> usize {
        match WorkCalendar::parse(text) {
            Err(CalendarError::Parse { line, .. }) => line,
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn official_calendar_parses_and_covers_2020_to_2026() {
        let parsed = WorkCalendar::parse(OFFICIAL_DATA).expect("embedded calendar parses");
        assert_eq!(parsed.years(), (2020, 2026));
        assert_eq!(WorkCalendar::official().years(), (2020, 2026));
    }

    /// The built-in data passes the statutory check that operators' files
    /// must pass (weekdays off less make-up days = statutory holidays).
    #[test]
    fn net_days_off_match_statutory_holidays() {
        assert_eq!(cal().check_statutory(), Ok(()));
    }

    /// A test calendar for 2027, NOT the State Council's arrangement: its
    /// days are chosen only to pass the statutory check (13 days) so the
    /// merging and deadline rules can be tested.
    const TEST_2027: &str = "year 2027\n\
        2027-01-01 off test\n2027-02-08 off test\n2027-02-09 off test\n\
        2027-02-10 off test\n2027-02-11 off test\n2027-02-12 off test\n\
        2027-02-06 work test\n2027-04-05 off test\n2027-05-03 off test\n\
        2027-05-04 off test\n2027-06-09 off test\n2027-09-15 off test\n\
        2027-10-01 off test\n2027-10-04 off test\n2027-10-05 off test\n";

    #[test]
    fn an_operator_file_extends_the_built_in_years() {
        let file = WorkCalendar::parse_checked(TEST_2027).expect("test 2027 passes the check");
        let merged = cal().extended_by(&file).expect("2027 continues 2026");
        assert_eq!(merged.years(), (2020, 2027));
        assert_eq!(merged.is_working_day(d(2027, 2, 8)), Ok(false));
        assert_eq!(merged.is_working_day(d(2027, 2, 6)), Ok(true));
        assert_eq!(
            merged.is_working_day(d(2026, 10, 1)),
            cal().is_working_day(d(2026, 10, 1))
        );
        assert_eq!(merged.last_covered_day(), d(2027, 12, 31));
    }

    #[test]
    fn a_dropped_holiday_fails_the_statutory_check() {
        let dropped = TEST_2027.replace("2027-06-09 off test\n", "");
        assert!(matches!(
            WorkCalendar::parse_checked(&dropped),
            Err(CalendarError::Statutory {
                year: 2027,
                net: 12,
                expected: 13,
                ..
            })
        ));
        let extra_make_up = format!("{TEST_2027}2027-09-18 work test\n");
        assert!(matches!(
            WorkCalendar::parse_checked(&extra_make_up),
            Err(CalendarError::Statutory {
                year: 2027,
                net: 12,
                ..
            })
        ));
    }

    #[test]
    fn a_gap_or_a_disagreeing_year_is_refused() {
        let gap = TEST_2027.replace("2027", "2028");
        let file = WorkCalendar::parse(&gap).expect("parses");
        assert!(
            matches!(cal().extended_by(&file), Err(CalendarError::Merge(m)) if m.contains("gap"))
        );
        let both = WorkCalendar::parse(&format!("year 2026\n2026-01-01 off x\n{TEST_2027}"))
            .expect("parses");
        assert!(matches!(
            cal().extended_by(&both),
            Err(CalendarError::Merge(m)) if m.contains("differently")
        ));
        // 2026 copied exactly is accepted.
        let copied = format!(
            "{}\n{TEST_2027}",
            OFFICIAL_DATA
                .split("year 2026")
                .nth(1)
                .map(|rest| format!("year 2026{rest}"))
                .expect("the built-in data has 2026")
        );
        let file = WorkCalendar::parse(&copied).expect("parses");
        assert_eq!(
            cal().extended_by(&file).map(|c| c.years()),
            Ok((2020, 2027))
        );
    }

    #[test]
    fn deadlines_past_the_coverage_are_provisional_weekdays() {
        // From Monday 2026-12-21: 12-22..12-25 (4), 12-28..12-31 (8) covered;
        // 2027-01-01 Friday (9, guessed a working day: no holiday invented),
        // 01-04..01-08 (14), 01-11 (15).
        let late = cal().deadline(d(2026, 12, 21), 15);
        assert_eq!(
            late,
            Deadline {
                date: d(2027, 1, 11),
                provisional: true
            }
        );
        // Inside coverage the deadline is exact and equals add_working_days.
        let inside = cal().deadline(d(2024, 2, 1), 15);
        assert_eq!(
            inside,
            Deadline {
                date: d(2024, 2, 27),
                provisional: false
            }
        );
        // Once 2027 is loaded the same deadline is exact: 01-01 is off there.
        let file = WorkCalendar::parse_checked(TEST_2027).expect("test 2027");
        let merged = cal().extended_by(&file).expect("merge");
        assert_eq!(
            merged.deadline(d(2026, 12, 21), 15),
            Deadline {
                date: d(2027, 1, 12),
                provisional: false
            }
        );
        assert_eq!(
            cal().working_days_provisional(d(2026, 12, 21), d(2027, 1, 11)),
            WorkingDays {
                days: 15,
                provisional: true
            }
        );
    }

    #[test]
    fn the_coverage_warning_starts_sixty_days_before_the_end() {
        assert_eq!(cal().coverage_warning(d(2026, 10, 31)), None);
        let warning = cal()
            .coverage_warning(d(2026, 11, 1))
            .expect("60 days left");
        assert!(warning.contains("2026-12-31 (60 days)"), "{warning}");
        assert!(
            cal()
                .coverage_warning(d(2027, 1, 3))
                .expect("ended")
                .contains("ended")
        );
    }

    proptest! {
        /// Inside the covered years `deadline` is `add_working_days`, exactly.
        #[test]
        fn deadline_agrees_with_the_calendar_inside_coverage(offset in 0u64..2200, days in 0u32..40) {
            let start = d(2020, 1, 1).checked_add_days(chrono::Days::new(offset)).expect("valid");
            if let Ok(exact) = cal().add_working_days(start, days) {
                prop_assert_eq!(cal().deadline(start, days), Deadline { date: exact, provisional: false });
            }
        }
    }

    #[test]
    fn working_days_in_2024() {
        // 2024 has 366 days starting on a Monday: 262 weekdays. Weekdays off:
        // 01-01, 02-12..16 (5), 04-04..05 (2), 05-01..03 (3), 06-10,
        // 09-16..17 (2), 10-01..04 and 10-07 (5) = 19. Make-up days: 02-04,
        // 02-18, 04-07, 04-28, 05-11, 09-14, 09-29, 10-12 = 8. 262 - 19 + 8 = 251.
        assert_eq!(
            cal().working_days_between(d(2023, 12, 31), d(2024, 12, 31)),
            Ok(251)
        );
    }

    #[test]
    fn spring_festival_2024() {
        assert!(
            working(d(2024, 2, 4)),
            "Sunday 02-04 is a make-up working day"
        );
        assert!(
            working(d(2024, 2, 18)),
            "Sunday 02-18 is a make-up working day"
        );
        let mut date = d(2024, 2, 10);
        while date <= d(2024, 2, 17) {
            assert!(!working(date), "{date} is in the Spring Festival block");
            date = date.succ_opt().expect("valid date");
        }
        // 除夕 was only recommended as leave in 2024, not declared off.
        assert!(working(d(2024, 2, 9)));
    }

    #[test]
    fn fifteen_working_days_across_spring_festival_2024() {
        // Counting from Thursday 2024-02-01 (not itself counted):
        //  1 Fri 02-02, 2 Sun 02-04 (make-up), 3-6 Mon 02-05..Thu 02-08,
        //  7 Fri 02-09 (除夕, a working day in 2024), 02-10..02-17 off,
        //  8 Sun 02-18 (make-up), 9-13 Mon 02-19..Fri 02-23,
        //  14 Mon 02-26, 15 Tue 02-27.
        assert_eq!(
            cal().add_working_days(d(2024, 2, 1), 15),
            Ok(d(2024, 2, 27))
        );
        assert_eq!(
            cal().working_days_between(d(2024, 2, 1), d(2024, 2, 27)),
            Ok(15)
        );
    }

    #[test]
    fn one_working_day_into_the_2024_spring_festival() {
        // 02-09 (除夕) is still a working day in 2024, so the holiday block
        // only starts to bite from there.
        assert_eq!(cal().add_working_days(d(2024, 2, 8), 1), Ok(d(2024, 2, 9)));
        assert_eq!(cal().add_working_days(d(2024, 2, 9), 1), Ok(d(2024, 2, 18)));
        assert_eq!(cal().add_working_days(d(2024, 2, 8), 2), Ok(d(2024, 2, 18)));
    }

    #[test]
    fn national_day_2024() {
        for day in 1..=7 {
            assert!(!working(d(2024, 10, day)), "2024-10-{day:02} is off");
        }
        assert!(
            working(d(2024, 9, 29)),
            "Sunday 09-29 is a make-up working day"
        );
        assert!(
            working(d(2024, 10, 12)),
            "Saturday 10-12 is a make-up working day"
        );
        assert!(working(d(2024, 10, 8)));
        assert_eq!(
            cal().add_working_days(d(2024, 9, 29), 1),
            Ok(d(2024, 9, 30))
        );
        assert_eq!(
            cal().add_working_days(d(2024, 9, 30), 1),
            Ok(d(2024, 10, 8))
        );
    }

    #[test]
    fn spring_festival_2025_under_the_revised_rules() {
        assert!(
            !working(d(2025, 1, 28)),
            "除夕 is a statutory holiday from 2025"
        );
        assert!(
            working(d(2025, 1, 26)),
            "Sunday 01-26 is a make-up working day"
        );
        assert!(
            working(d(2025, 2, 8)),
            "Saturday 02-08 is a make-up working day"
        );
        assert!(!working(d(2025, 2, 4)));
        assert!(!working(d(2025, 5, 5)));
        assert!(working(d(2025, 1, 27)));
    }

    #[test]
    fn covid_extension_2020() {
        assert!(!working(d(2020, 1, 31)));
        assert!(
            !working(d(2020, 2, 1)),
            "the 02-01 make-up day was cancelled"
        );
        assert!(working(d(2020, 2, 3)));
        assert!(working(d(2020, 1, 19)));
    }

    #[test]
    fn new_year_2023_block_starts_in_2022() {
        assert!(!working(d(2022, 12, 31)));
        assert!(!working(d(2023, 1, 2)));
        assert!(working(d(2023, 1, 3)));
    }

    #[test]
    fn out_of_range_dates_are_errors() {
        let before = d(2019, 12, 31);
        let after = d(2027, 1, 1);
        assert_eq!(
            cal().is_working_day(before),
            Err(CalendarError::OutOfRange(before, 2020, 2026))
        );
        assert_eq!(
            cal().is_working_day(after),
            Err(CalendarError::OutOfRange(after, 2020, 2026))
        );
        // 2026-12-31 is a Thursday, so one day fits and the second needs 2027.
        assert_eq!(
            cal().add_working_days(d(2026, 12, 30), 1),
            Ok(d(2026, 12, 31))
        );
        assert_eq!(
            cal().add_working_days(d(2026, 12, 30), 2),
            Err(CalendarError::OutOfRange(after, 2020, 2026))
        );
        assert_eq!(
            cal().working_days_between(d(2026, 12, 30), d(2027, 1, 5)),
            Err(CalendarError::OutOfRange(after, 2020, 2026))
        );
        assert_eq!(
            cal().working_days_between(d(2019, 12, 30), d(2020, 1, 5)),
            Err(CalendarError::OutOfRange(before, 2020, 2026))
        );
        assert_eq!(
            cal().add_working_days(NaiveDate::MAX, 1),
            Err(CalendarError::OutOfRange(NaiveDate::MAX, 2020, 2026))
        );
        let message = CalendarError::OutOfRange(after, 2020, 2026).to_string();
        assert_eq!(
            message,
            "date 2027-01-01 is outside the working-day calendar (covered years 2020..=2026)"
        );
    }

    #[test]
    fn trivial_intervals_need_no_lookup() {
        let far = d(1999, 6, 1);
        assert_eq!(cal().add_working_days(far, 0), Ok(far));
        assert_eq!(cal().working_days_between(far, far), Ok(0));
        assert_eq!(
            cal().working_days_between(d(2024, 5, 1), d(2024, 4, 1)),
            Ok(0)
        );
    }

    #[test]
    fn parse_accepts_a_minimal_calendar() {
        let text = "# demo\n\nyear 2024\n2024-02-04 work 春节调休  # trailing comment\n2024-02-10 off\nyear 2025\n";
        let parsed = WorkCalendar::parse(text).expect("valid calendar");
        assert_eq!(parsed.years(), (2024, 2025));
        assert_eq!(parsed.is_working_day(d(2024, 2, 4)), Ok(true));
        assert_eq!(parsed.is_working_day(d(2024, 2, 10)), Ok(false));
        assert_eq!(parsed.is_working_day(d(2025, 3, 3)), Ok(true));
    }

    #[test]
    fn parse_errors_carry_the_line_number() {
        // Malformed date.
        assert_eq!(parse_error_line("year 2024\n2024-02-30 off\n"), 2);
        assert_eq!(parse_error_line("year 2024\n\n24-2-3 off\n"), 3);
        // Unknown kind.
        assert_eq!(parse_error_line("year 2024\n# c\n2024-02-10 holiday\n"), 3);
        // Missing kind.
        assert_eq!(parse_error_line("year 2024\n2024-02-10\n"), 2);
        // Date in an undeclared year, before or after any declaration.
        assert_eq!(parse_error_line("2024-02-10 off\nyear 2024\n"), 1);
        assert_eq!(
            parse_error_line("year 2024\n2025-01-01 off\nyear 2025\n"),
            2
        );
        // Date listed twice, even with another kind.
        assert_eq!(
            parse_error_line("year 2024\n2024-02-10 off\n2024-02-10 work\n"),
            3
        );
        // `work` on a weekday (2024-02-05 is a Monday).
        assert_eq!(parse_error_line("year 2024\n2024-02-05 work\n"), 2);
        // Non-contiguous, repeated or descending years.
        assert_eq!(parse_error_line("year 2020\nyear 2022\n"), 2);
        assert_eq!(parse_error_line("year 2020\nyear 2020\n"), 2);
        assert_eq!(parse_error_line("year 2021\nyear 2020\n"), 2);
        // Malformed year lines.
        assert_eq!(parse_error_line("year twenty\n"), 1);
        assert_eq!(parse_error_line("year 2020 2021\n"), 1);
        // Nothing declared at all.
        assert_eq!(parse_error_line("# empty\n\n"), 2);
        assert_eq!(parse_error_line(""), 1);
    }

    #[test]
    fn parse_error_message_names_line_and_reason() {
        let err =
            WorkCalendar::parse("year 2024\n2024-02-05 work\n").expect_err("weekday make-up day");
        assert_eq!(
            err.to_string(),
            "calendar line 2: 2024-02-05 is a Mon; a make-up working day must be a Saturday or Sunday"
        );
    }

    fn covered_date() -> impl Strategy<Value = NaiveDate> {
        let first = d(2020, 1, 1);
        let span = (d(2026, 12, 31) - first).num_days();
        (0..=span).prop_map(move |offset| first + chrono::Duration::days(offset))
    }

    proptest! {
        #[test]
        fn add_working_days_is_strictly_increasing_and_inverts_counting(
            start in covered_date(),
            n in 0u32..80,
        ) {
            let this = cal().add_working_days(start, n);
            let next = cal().add_working_days(start, n + 1);
            // Near the end of 2026 the deadline leaves the covered years; that
            // is the documented error, not a property failure.
            let (Ok(this), Ok(next)) = (this, next) else {
                prop_assert!(matches!(
                    cal().add_working_days(start, n + 1),
                    Err(CalendarError::OutOfRange(date, 2020, 2026)) if date.year() == 2027
                ));
                return Ok(());
            };
            prop_assert!(next > this);
            prop_assert!(cal().is_working_day(next)?);
            prop_assert_eq!(cal().working_days_between(start, this)?, n);
            prop_assert_eq!(cal().working_days_between(start, next)?, n + 1);
            // Every day strictly between two consecutive deadlines is a day off.
            let mut gap = this.succ_opt().expect("inside chrono's range");
            while gap < next {
                prop_assert!(!cal().is_working_day(gap)?);
                gap = gap.succ_opt().expect("inside chrono's range");
            }
        }
    }
}
