//! A bank statement export (CSV in UTF-8 or GBK), as MatchBankStatement
//! reads it. Checked, beyond "no panic":
//! - parsing is deterministic, and the encoding named is UTF-8 or GBK;
//! - every line, good or bad, is numbered within the file, in file order,
//!   and no line is both;
//! - every amount is positive and within the money limit, every account is
//!   digits only, and every reference is trimmed.
#![no_main]

use fangpin_domain::bank::parse_statement;
use fangpin_domain::money::{Fen, MAX_AMOUNT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let first = parse_statement(data);
    assert_eq!(first, parse_statement(data), "deterministic");
    let Ok(statement) = first else {
        return;
    };
    assert!(matches!(statement.encoding, "UTF-8" | "GBK"));
    // Lines can be counted in any of \n, \r\n and \r; none can be past the
    // count of all three terminators.
    let terminators = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
    let limit = terminators + 1;
    let mut numbered: Vec<usize> = statement
        .lines
        .iter()
        .map(|l| l.line)
        .chain(statement.bad_lines.iter().map(|l| l.line))
        .collect();
    for window in statement.lines.windows(2) {
        assert!(window[0].line < window[1].line, "good lines in file order");
    }
    for window in statement.bad_lines.windows(2) {
        assert!(window[0].line < window[1].line, "bad lines in file order");
    }
    numbered.sort_unstable();
    let before = numbered.len();
    numbered.dedup();
    assert_eq!(before, numbered.len(), "no line is both good and bad");
    for &line in &numbered {
        assert!(line >= 2 && line <= limit, "line {line} of at most {limit}");
    }
    for line in &statement.lines {
        assert!(
            line.amount > Fen::ZERO && line.amount <= MAX_AMOUNT,
            "{line:?}"
        );
        assert!(line.account.bytes().all(|b| b.is_ascii_digit()), "{line:?}");
        assert_eq!(line.reference.trim(), line.reference, "{line:?}");
    }
    for bad in &statement.bad_lines {
        assert!(!bad.reason.is_empty());
    }
});
