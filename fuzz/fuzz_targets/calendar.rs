//! The working-day calendar file (README: "The working-day calendar"), as fangpind and
//! `fangpin admin calendar check` read it. Checked, beyond "no panic":
//! - an accepted calendar covers the years it declares and no other;
//! - a deadline is never before its start, and counting the working days
//!   back from it gives the count asked for;
//! - parsing is deterministic.
#![no_main]

use fangpin_domain::calendar::WorkCalendar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(calendar) = WorkCalendar::parse(text) else {
        return;
    };
    let (first, last) = calendar.years();
    assert!(first <= last);
    assert_eq!(
        WorkCalendar::parse(text).map(|c| c.years()).ok(),
        Some((first, last))
    );
    let start = chrono::NaiveDate::from_ymd_opt(first, 1, 1).expect("a date");
    let end = chrono::NaiveDate::from_ymd_opt(last, 12, 1).expect("a date");
    for start in [start, end] {
        for days in [0u32, 1, 5, 15] {
            let deadline = calendar.deadline(start, days);
            assert!(deadline.date >= start, "{deadline:?} before {start}");
            let counted = calendar.working_days_provisional(start, deadline.date);
            assert_eq!(
                counted.days, days,
                "{start} + {days} working days = {deadline:?}"
            );
            assert_eq!(counted.provisional, deadline.provisional);
        }
    }
});
