//! A department's feed file (CSV in UTF-8 or GBK), as the import reads it.
//!
//! The first three bytes choose the feed kind, the encoding and where the
//! file is cut into chunks; the rest is the file. Checked, beyond "no panic":
//! - the result does not depend on where the chunks split the file: the
//!   same counts, the same rejected rows with the same line numbers, the
//!   same sums (the gRPC stream cuts a file anywhere);
//! - every row is accepted or rejected, never both or neither;
//! - rejected rows come in file order, after the header, within the file;
//! - for a file without quotes or carriage returns, where each line is one
//!   record, every rejected row's line is the line it is on, and every
//!   non-blank line after the header was taken as a row;
//! - the per-kind totals are the sums of the monthly cells.
#![no_main]

use bytes::Bytes;
use chrono::NaiveDate;
use fangpin_domain::feed_reader::parse_feed;
use fangpin_domain::feeds::{FeedKind, PersonMap};
use fangpin_domain::identity::{PersonKey, ResidentId};
use libfuzzer_sys::fuzz_target;

/// What one parse produced, in a comparable form.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    rows_total: u64,
    rows_accepted: u64,
    rows_not_counted: u64,
    rows_rejected: u64,
    errors: Vec<(u64, String)>,
    totals: Vec<(String, i64)>,
    cells: Vec<((u32, String, i32), Vec<i64>)>,
    statuses: Vec<((u32, i32), String)>,
    touched: u64,
}

fn persons() -> PersonMap {
    // The seed corpus's ID numbers: three households.
    let mut persons = PersonMap::default();
    for (i, first17) in [
        "13042619650101001",
        "13042619700202002",
        "13042619800303003",
    ]
    .iter()
    .enumerate()
    {
        let id = ResidentId::from_first17(first17).expect("valid");
        persons.insert(PersonKey::of(&id), i as u32);
    }
    persons
}

fn parse(
    kind: FeedKind,
    encoding: &'static encoding_rs::Encoding,
    chunks: Vec<Bytes>,
) -> Result<Outcome, String> {
    let persons = persons();
    let mut chunks = chunks.into_iter();
    let dates = (
        NaiveDate::from_ymd_opt(2020, 1, 1).expect("date"),
        NaiveDate::from_ymd_opt(2027, 12, 31).expect("date"),
    );
    parse_feed(
        move || chunks.next(),
        kind,
        encoding,
        &persons,
        3,
        dates,
        |agg| {
            let mut cells: Vec<_> = agg
                .costs
                .iter()
                .map(|((h, k, y), months)| {
                    (
                        (*h, format!("{k:?}"), *y),
                        months.iter().map(|f| f.get()).collect::<Vec<_>>(),
                    )
                })
                .collect();
            cells.sort();
            let mut statuses: Vec<_> = agg
                .statuses
                .iter()
                .map(|(h, s)| (*h, format!("{s:?}")))
                .collect();
            statuses.sort();
            Outcome {
                rows_total: agg.rows_total,
                rows_accepted: agg.rows_accepted,
                rows_not_counted: agg.rows_not_counted,
                rows_rejected: agg.rows_rejected(),
                errors: agg
                    .errors
                    .iter()
                    .map(|(line, e)| (*line, format!("{e:?}")))
                    .collect(),
                totals: agg
                    .totals()
                    .into_iter()
                    .map(|(k, f)| (format!("{k:?}"), f.get()))
                    .collect(),
                cells,
                statuses,
                touched: agg.households_touched(),
            }
        },
    )
    .map_err(|e| e.to_string())
}

fuzz_target!(|data: &[u8]| {
    let [kind, encoding, cut, file @ ..] = data else {
        return;
    };
    let kind = FeedKind::ALL[usize::from(*kind) % FeedKind::ALL.len()];
    let encoding = if encoding & 1 == 0 {
        encoding_rs::UTF_8
    } else {
        encoding_rs::GBK
    };
    let whole = parse(kind, encoding, vec![Bytes::copy_from_slice(file)]);
    // Cut into chunks of 1 to 8 bytes, sizes taken from `cut`'s bits in turn.
    let mut chunks = Vec::new();
    let (mut at, mut bits) = (0, u32::from(*cut) | 0x100);
    while at < file.len() {
        let size = 1 + (bits & 7) as usize;
        bits = bits.rotate_right(3) ^ u32::from(*cut);
        let end = (at + size).min(file.len());
        chunks.push(Bytes::copy_from_slice(&file[at..end]));
        at = end;
    }
    let split = parse(kind, encoding, chunks);
    assert_eq!(whole, split, "the chunks changed the result");

    let Ok(outcome) = whole else {
        return;
    };
    assert_eq!(
        outcome.rows_total,
        outcome.rows_accepted + outcome.rows_rejected,
        "every row is accepted or rejected"
    );
    assert!(outcome.rows_not_counted <= outcome.rows_accepted);
    assert!(outcome.touched <= 3);
    // Lines end at \n, \r\n or a lone \r, as records do.
    let lines = 1 + file
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\r' || (b == b'\n' && (i == 0 || file[i - 1] != b'\r')))
        .count() as u64;
    let mut previous = 1;
    for (line, _) in &outcome.errors {
        assert!(
            *line > previous,
            "rejected rows in file order, after the header: {outcome:?}"
        );
        assert!(*line <= lines, "line {line} of a file of {lines} lines");
        previous = *line;
    }
    // The per-kind totals are the cells' sums.
    let mut sums = std::collections::BTreeMap::<String, i64>::new();
    for ((_, kind, _), months) in &outcome.cells {
        *sums.entry(kind.clone()).or_default() += months.iter().sum::<i64>();
    }
    sums.retain(|_, v| *v != 0);
    let totals: std::collections::BTreeMap<String, i64> = outcome.totals.iter().cloned().collect();
    assert_eq!(sums, totals);
    assert!(
        totals.values().all(|&v| v > 0),
        "accepted costs are positive"
    );

    // One record per line: the line numbers can be worked out by hand.
    if !file.contains(&b'"') && !file.contains(&b'\r') {
        let mut data_lines = Vec::new();
        let mut header_seen = false;
        for (i, line) in file.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            if !header_seen {
                header_seen = true;
                continue;
            }
            // A line of spaces is no row.
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            data_lines.push(i as u64 + 1);
        }
        assert_eq!(outcome.rows_total, data_lines.len() as u64, "{outcome:?}");
        for (line, _) in &outcome.errors {
            assert!(
                data_lines.binary_search(line).is_ok(),
                "a rejected row on line {line}, which holds no row: {outcome:?}"
            );
        }
    }
});
