//! Bank statements (银行流水) and their reconciliation against the ledger.
//!
//! A county finance bureau pays relief out of the fund pool by bank transfer
//! and later exports the pool account's statement as CSV. This module reads
//! that export, in UTF-8 or in GBK as most Chinese banks write it, and pairs
//! its outgoing lines with the ledger's payouts, so the bureau sees which
//! transfers the bank made that the ledger does not know and which payouts the
//! bank never carried out.
//!
//! Parsing is lenient per line and strict per value: a line the module cannot
//! read becomes a [`BadLine`] with a reason, and the rest of the file still
//! counts, but no value is ever guessed at. A statement only aborts as a whole
//! when the file itself is unusable (too large, undecodable, no header, a
//! required column missing). The format is described for users in
//! `docs/bank-statement.md`.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDate;

use crate::money::{Fen, MAX_AMOUNT, MoneyError};

/// The largest statement accepted, in bytes. A county pool's yearly statement
/// of 10^5 transfers fits in well under this; the limit keeps one upload from
/// holding the server's memory.
pub const MAX_STATEMENT_BYTES: usize = 4 * 1024 * 1024;

/// The largest number of data lines (blank lines and the header excluded)
/// accepted in one statement.
pub const MAX_STATEMENT_LINES: usize = 100_000;

/// The logical columns the parser needs and the header names each may carry,
/// in order of preference: when a header holds several names of one logical
/// column, the name listed first here wins, wherever it stands in the header.
/// Names are compared case-insensitively after trimming.
pub const HEADER_NAMES: [(&str, &[&str]); 4] = [
    ("date", &["交易日期", "日期", "记账日期", "date"]),
    (
        "amount",
        &["交易金额", "金额", "支出金额", "借方发生额", "amount"],
    ),
    (
        "account",
        &["对方账号", "收款账号", "收款人账号", "对方账户", "account"],
    ),
    (
        "reference",
        &["摘要", "附言", "用途", "交易流水号", "备注", "reference"],
    ),
];

// Positions of the logical columns in `HEADER_NAMES`.
const DATE: usize = 0;
const AMOUNT: usize = 1;
const ACCOUNT: usize = 2;
const REFERENCE: usize = 3;

/// One line of a bank statement, as the bank exported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankLine {
    /// The 1-based line in the file where this row starts; the header of a
    /// file without leading blank lines is line 1.
    pub line: usize,
    /// The transaction date (交易日期).
    pub date: NaiveDate,
    /// The outgoing amount, always positive: banks print outgoing transfers
    /// with a minus sign, which the parser drops.
    pub amount: Fen,
    /// The payee account, digits only.
    pub account: String,
    /// The free text of the transfer (摘要, 附言 or 交易流水号), trimmed.
    pub reference: String,
}

/// A data line the parser could not read, with the reason in plain words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// The 1-based line in the file where the row starts.
    pub line: usize,
    /// Every problem found on the line, separated by "; ".
    pub reason: String,
}

/// A parsed bank statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The lines that parsed, in file order.
    pub lines: Vec<BankLine>,
    /// The lines that did not parse, in file order.
    pub bad_lines: Vec<BadLine>,
    /// The encoding the file was read in: "UTF-8" or "GBK".
    pub encoding: &'static str,
}

/// Why a statement could not be read at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StatementError {
    /// The file is larger than [`MAX_STATEMENT_BYTES`].
    #[error("the statement is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    /// The file starts with a UTF-8 byte order mark but is not UTF-8.
    #[error("the statement starts with a UTF-8 byte order mark but line {line} is not valid UTF-8")]
    InvalidUtf8 { line: usize },
    /// The file is not valid UTF-8 and has bytes GBK (GB18030) cannot decode.
    #[error(
        "the statement is neither UTF-8 nor GBK: line {line} holds bytes that decode as neither"
    )]
    UnknownEncoding { line: usize },
    /// The file has no non-empty row to serve as the header.
    #[error("the statement is empty: it has no header row")]
    NoHeader,
    /// The header names none of the accepted names of this logical column.
    #[error("the header has no {0} column (accepted names: {names})", names = accepted_names(.0))]
    MissingColumn(&'static str),
    /// The file has more than [`MAX_STATEMENT_LINES`] data rows.
    #[error("the statement has more than {limit} lines")]
    TooManyLines { limit: usize },
    /// The CSV reader gave up on the file.
    #[error("the statement is not readable CSV near line {line}: {message}")]
    Csv { line: usize, message: String },
}

/// The accepted header names of a logical column, for error messages.
fn accepted_names(column: &str) -> String {
    HEADER_NAMES
        .iter()
        .find(|(name, _)| *name == column)
        .map(|(_, names)| names.join(", "))
        .unwrap_or_default()
}

/// Parses a bank statement exported as CSV.
///
/// The first non-empty row is the header; see [`HEADER_NAMES`] for the
/// columns it must name. Each later row becomes a [`BankLine`] or, when one of
/// its values cannot be read, a [`BadLine`]; rows whose cells are all empty are
/// skipped. Errors are returned only when the file as a whole is unusable.
pub fn parse_statement(bytes: &[u8]) -> Result<Statement, StatementError> {
    if bytes.len() > MAX_STATEMENT_BYTES {
        return Err(StatementError::TooLarge {
            size: bytes.len(),
            limit: MAX_STATEMENT_BYTES,
        });
    }
    let (text, encoding) = decode(bytes)?;

    let mut lines_of = LineCounter::new(text.as_bytes());
    // Flexible: bank exports often end rows early or add a trailing comma, and
    // a short row is better reported per line than refused per file.
    let mut records = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .into_records();

    let header = loop {
        match records.next() {
            None => return Err(StatementError::NoHeader),
            Some(record) => {
                let record = record.map_err(|err| csv_error(&err, &mut lines_of))?;
                if !is_blank(&record) {
                    break record;
                }
            }
        }
    };
    let columns = locate_columns(&header)?;

    let mut lines = Vec::new();
    let mut bad_lines = Vec::new();
    let mut count = 0usize;
    for record in records {
        let record = record.map_err(|err| csv_error(&err, &mut lines_of))?;
        if is_blank(&record) {
            continue;
        }
        count += 1;
        if count > MAX_STATEMENT_LINES {
            return Err(StatementError::TooManyLines {
                limit: MAX_STATEMENT_LINES,
            });
        }
        // The reader sets a position on every record it returns; without one
        // the line would stay at the previous record's, never panic.
        let line = lines_of.record_start(record.position().map_or(0, |p| p.byte()));
        match parse_row(&record, &columns, line) {
            Ok(bank_line) => lines.push(bank_line),
            Err(reason) => bad_lines.push(BadLine { line, reason }),
        }
    }
    Ok(Statement {
        lines,
        bad_lines,
        encoding,
    })
}

/// Decodes the file to text and names the encoding used.
///
/// A byte order mark declares UTF-8, so a file with one is never reread as GBK.
/// Without one, valid UTF-8 is taken as UTF-8 (this includes pure ASCII, which
/// reads the same in both) and anything else is decoded as GBK. The GB18030
/// decoder that `encoding_rs` uses for GBK is a superset of GBK, so files from
/// banks that really write GB18030 read correctly too.
fn decode(bytes: &[u8]) -> Result<(Cow<'_, str>, &'static str), StatementError> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let (bytes, has_bom) = match bytes.strip_prefix(BOM) {
        Some(rest) => (rest, true),
        None => (bytes, false),
    };
    match std::str::from_utf8(bytes) {
        Ok(text) => return Ok((Cow::Borrowed(text), "UTF-8")),
        Err(err) if has_bom => {
            return Err(StatementError::InvalidUtf8 {
                line: line_at(&bytes[..err.valid_up_to()]),
            });
        }
        Err(_) => {}
    }

    let mut decoder = encoding_rs::GBK.new_decoder_without_bom_handling();
    let mut text = String::new();
    let mut rest = bytes;
    loop {
        // GBK never needs more than 3 UTF-8 bytes per input byte, and the
        // input is at most MAX_STATEMENT_BYTES, so the estimate cannot fail.
        let needed = decoder
            .max_utf8_buffer_length_without_replacement(rest.len())
            .unwrap_or(rest.len().saturating_mul(3));
        text.reserve(needed);
        let (result, read) = decoder.decode_to_string_without_replacement(rest, &mut text, true);
        rest = &rest[read..];
        match result {
            encoding_rs::DecoderResult::InputEmpty => return Ok((Cow::Owned(text), "GBK")),
            // Only possible if the estimate above was short; reserve again.
            encoding_rs::DecoderResult::OutputFull => {}
            encoding_rs::DecoderResult::Malformed(_, _) => {
                return Err(StatementError::UnknownEncoding {
                    line: text.matches('\n').count() + 1,
                });
            }
        }
    }
}

/// The 1-based line number just after `prefix`.
fn line_at(prefix: &[u8]) -> usize {
    prefix.iter().filter(|&&b| b == b'\n').count() + 1
}

fn csv_error(err: &csv::Error, lines_of: &mut LineCounter<'_>) -> StatementError {
    StatementError::Csv {
        line: lines_of.record_start(err.position().map_or(0, |p| p.byte())),
        message: err.to_string(),
    }
}

/// Turns the byte offsets the CSV reader reports into line numbers.
///
/// The reader's own line numbers are wrong after blank lines (and for CRLF
/// files it counts a blank line as none), and its byte offset points at the
/// end of the previous record rather than at the record itself. So the line
/// breaks after that offset are skipped here and lines are counted from the
/// text: "\n", "\r\n" and a lone "\r" each end a line.
struct LineCounter<'t> {
    text: &'t [u8],
    /// Bytes before this offset have been counted.
    pos: usize,
    /// The line `pos` is on.
    line: usize,
}

impl<'t> LineCounter<'t> {
    fn new(text: &'t [u8]) -> Self {
        LineCounter {
            text,
            pos: 0,
            line: 1,
        }
    }

    /// The line of the first byte at or after `byte` that is not a line
    /// break. Records come in file order, so the count only moves forward.
    fn record_start(&mut self, byte: u64) -> usize {
        let mut start = usize::try_from(byte).map_or(self.text.len(), |b| b.min(self.text.len()));
        while self
            .text
            .get(start)
            .is_some_and(|&b| b == b'\r' || b == b'\n')
        {
            start += 1;
        }
        while self.pos < start {
            let ends_line = match self.text[self.pos] {
                b'\n' => true,
                b'\r' => self.text.get(self.pos + 1) != Some(&b'\n'),
                _ => false,
            };
            if ends_line {
                self.line += 1;
            }
            self.pos += 1;
        }
        self.line
    }
}

fn is_blank(record: &csv::StringRecord) -> bool {
    record.iter().all(|cell| cell.trim().is_empty())
}

/// Finds the cell index of each logical column in the header.
fn locate_columns(header: &csv::StringRecord) -> Result<[usize; 4], StatementError> {
    let cells: Vec<String> = header
        .iter()
        .map(|cell| cell.trim().to_lowercase())
        .collect();
    let mut columns = [0usize; 4];
    for (slot, (logical, names)) in columns.iter_mut().zip(HEADER_NAMES) {
        // Preference follows the table, not the header: "交易日期" beats "日期"
        // even when "日期" stands further left.
        *slot = names
            .iter()
            .find_map(|name| {
                let name = name.to_lowercase();
                cells.iter().position(|cell| *cell == name)
            })
            .ok_or(StatementError::MissingColumn(logical))?;
    }
    Ok(columns)
}

/// Reads one data row, collecting every problem so the user can fix a line in
/// one go rather than one complaint at a time.
fn parse_row(
    record: &csv::StringRecord,
    columns: &[usize; 4],
    line: usize,
) -> Result<BankLine, String> {
    let cell = |column: usize| record.get(columns[column]).unwrap_or("").trim();
    let date = parse_date(cell(DATE));
    let amount = parse_amount(cell(AMOUNT));
    let account = parse_account(cell(ACCOUNT));
    match (date, amount, account) {
        (Ok(date), Ok(amount), Ok(account)) => Ok(BankLine {
            line,
            date,
            amount,
            account,
            reference: cell(REFERENCE).to_string(),
        }),
        (date, amount, account) => {
            let reasons: Vec<String> = [date.err(), amount.err(), account.err()]
                .into_iter()
                .flatten()
                .collect();
            Err(reasons.join("; "))
        }
    }
}

/// Parses 2024-03-20, 2024/03/20, 20240320 or 2024年3月20日. Month and day may
/// have one or two digits where a separator delimits them. A time of day after
/// the date ("2024-03-20 10:15:30", as many banks print 交易时间) is ignored.
fn parse_date(text: &str) -> Result<NaiveDate, String> {
    if text.is_empty() {
        return Err("date is empty".to_string());
    }
    let malformed = || {
        format!(
            "date {text:?} is not a date like 2024-03-20, 2024/03/20, 20240320 or 2024年3月20日"
        )
    };
    let date = match text.split_once(char::is_whitespace) {
        Some((date, time)) if is_time_of_day(time.trim()) => date,
        Some(_) => return Err(malformed()),
        None => text,
    };
    let parts = if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) {
        Some((&date[..4], &date[4..6], &date[6..]))
    } else if let Some(rest) = date.strip_suffix('日') {
        rest.split_once('年')
            .and_then(|(year, rest)| rest.split_once('月').map(|(month, day)| (year, month, day)))
    } else {
        let separator = if date.contains('-') { '-' } else { '/' };
        let mut split = date.split(separator);
        match (split.next(), split.next(), split.next(), split.next()) {
            (Some(year), Some(month), Some(day), None) => Some((year, month, day)),
            _ => None,
        }
    };
    let (year, month, day) = parts.ok_or_else(malformed)?;
    let number = |s: &str, min_len: usize, max_len: usize| -> Option<u32> {
        if (min_len..=max_len).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (Some(year), Some(month), Some(day)) =
        (number(year, 4, 4), number(month, 1, 2), number(day, 1, 2))
    else {
        return Err(malformed());
    };
    let year = i32::try_from(year).map_err(|_| malformed())?;
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| format!("date {text:?} does not exist"))
}

fn is_time_of_day(text: &str) -> bool {
    text.contains(':')
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || c == ':' || c == '.')
}

/// Parses an amount as banks print it: optional minus or plus sign and ¥/￥ in
/// either order, thousands separators, at most two decimals. The sign is
/// dropped because banks show outgoing transfers as negative; a zero amount is
/// refused because no payout is zero and such rows are balance or notice lines.
fn parse_amount(text: &str) -> Result<Fen, String> {
    if text.is_empty() {
        return Err("amount is empty".to_string());
    }
    let mut rest = text;
    let mut signed = false;
    let mut currency = false;
    // Two rounds accept both "-¥12.00" and "¥-12.00".
    for _ in 0..2 {
        if !signed && let Some(r) = rest.strip_prefix(['-', '+']) {
            rest = r.trim_start();
            signed = true;
        }
        if !currency && let Some(r) = rest.strip_prefix(['¥', '￥']) {
            rest = r.trim_start();
            currency = true;
        }
    }
    let malformed = || format!("amount {text:?} is not a number of yuan like 1,234.50");
    let plain = strip_thousands_separators(rest).ok_or_else(malformed)?;
    let fen = Fen::parse_yuan(&plain).map_err(|err| match err {
        MoneyError::TooManyDecimals => format!("amount {text:?} has more than 2 decimal places"),
        MoneyError::TooLarge => format!("amount {text:?} exceeds the limit of {MAX_AMOUNT} yuan"),
        MoneyError::Empty | MoneyError::Malformed | MoneyError::Negative => malformed(),
    })?;
    if fen == Fen::ZERO {
        return Err(format!("amount {text:?} is zero"));
    }
    Ok(fen)
}

/// Removes thousands separators from the whole-yuan part, checking they stand
/// every three digits: "1,234.50" is fine, "12,34.50" is a typing error and
/// must not silently become 1234.50. Returns None on a misplaced separator.
fn strip_thousands_separators(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains(',') {
        return Some(Cow::Borrowed(text));
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let mut groups = whole.split(',');
    let first = groups.next()?;
    if first.is_empty() || first.len() > 3 || groups.clone().any(|g| g.len() != 3) {
        return None;
    }
    let mut plain: String = whole.chars().filter(|&c| c != ',').collect();
    if let Some(fraction) = fraction {
        // A comma in the fraction stays and makes parse_yuan refuse it.
        plain.push('.');
        plain.push_str(fraction);
    }
    Some(Cow::Owned(plain))
}

/// Keeps the digits of an account number; banks print them in groups with
/// spaces or dashes. Full-width digits (０-９) count as digits.
fn parse_account(text: &str) -> Result<String, String> {
    // A masked number (6222****1234) would otherwise shrink to a shorter,
    // wrong number that silently never matches.
    if text.contains(['*', '＊']) {
        return Err(format!(
            "payee account {text:?} is masked; export the statement with full account numbers"
        ));
    }
    let digits = account_digits(text).into_owned();
    if digits.is_empty() {
        return Err(if text.is_empty() {
            "payee account is empty".to_string()
        } else {
            format!("payee account {text:?} has no digits")
        });
    }
    Ok(digits)
}

/// The digits of an account number, borrowed when there is nothing to drop.
fn account_digits(text: &str) -> Cow<'_, str> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .filter_map(|c| match c {
                '0'..='9' => Some(c),
                '０'..='９' => char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')),
                _ => None,
            })
            .collect(),
    )
}

/// A payout from the ledger, as the matcher needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutLine {
    /// The ledger entry that paid the money.
    pub entry_id: String,
    /// The claim the payout settles.
    pub claim_id: String,
    /// The amount paid.
    pub amount: Fen,
    /// The payee account; only its digits are compared.
    pub account: String,
    /// The text the bureau put on the transfer, looked for in the bank line.
    pub reference: String,
}

/// A bank line paired with the payout it carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The line of the statement.
    pub bank: BankLine,
    /// The ledger payout that line carried out.
    pub payout: PayoutLine,
}

/// The outcome of reconciling a statement against the ledger's payouts.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MatchReport {
    /// Pairs, in the order of their bank lines.
    pub matched: Vec<Match>,
    /// Bank lines no payout explains, in the order given (file order).
    pub unmatched_in_bank: Vec<BankLine>,
    /// Payouts the statement does not show, in the order given.
    pub unmatched_in_ledger: Vec<PayoutLine>,
}

/// Whether a bank line's reference shows a payout's reference: banks prepend
/// and append their own text to the 附言, so containment is enough, and some
/// break long text with spaces, so equality ignoring whitespace is too.
///
/// An empty payout reference is contained in every bank reference, so such a
/// payout matches on amount and account alone.
fn references_match(bank: &str, payout: &str) -> bool {
    let not_space = |c: &char| !c.is_whitespace();
    bank.contains(payout)
        || bank
            .chars()
            .filter(not_space)
            .eq(payout.chars().filter(not_space))
}

/// Pairs bank lines with ledger payouts.
///
/// A bank line matches a payout when the amounts are equal, the account
/// digits are equal, and the payout's reference appears in the bank line's
/// reference (or the two are equal ignoring whitespace). Each bank line and
/// each payout is used at most once. Bank lines are taken in the order given,
/// and each takes the first still-unmatched payout, in the order given, that
/// it matches; the result is therefore deterministic.
///
/// Payouts are bucketed by amount and account, so each bank line only looks at
/// payouts it could match, and a run of identical payouts costs O(1) per line.
pub fn match_payouts(bank: &[BankLine], payouts: &[PayoutLine]) -> MatchReport {
    struct Bucket {
        /// Indices into `payouts`, ascending.
        members: Vec<usize>,
        /// Every member before this one is already matched.
        first_open: usize,
    }

    let payout_accounts: Vec<Cow<'_, str>> =
        payouts.iter().map(|p| account_digits(&p.account)).collect();
    let mut bucket_of: HashMap<(Fen, &str), usize> = HashMap::new();
    let mut buckets: Vec<Bucket> = Vec::new();
    for (index, (payout, account)) in payouts.iter().zip(&payout_accounts).enumerate() {
        let bucket = *bucket_of
            .entry((payout.amount, account.as_ref()))
            .or_insert_with(|| {
                buckets.push(Bucket {
                    members: Vec::new(),
                    first_open: 0,
                });
                buckets.len() - 1
            });
        buckets[bucket].members.push(index);
    }

    let mut taken = vec![false; payouts.len()];
    let mut report = MatchReport::default();
    for line in bank {
        let account = account_digits(&line.account);
        let found = bucket_of
            .get(&(line.amount, account.as_ref()))
            .and_then(|&bucket| {
                let bucket = &mut buckets[bucket];
                while bucket
                    .members
                    .get(bucket.first_open)
                    .is_some_and(|&p| taken[p])
                {
                    bucket.first_open += 1;
                }
                bucket.members[bucket.first_open..]
                    .iter()
                    .copied()
                    .find(|&p| {
                        !taken[p] && references_match(&line.reference, &payouts[p].reference)
                    })
            });
        match found {
            Some(p) => {
                taken[p] = true;
                report.matched.push(Match {
                    bank: line.clone(),
                    payout: payouts[p].clone(),
                });
            }
            None => report.unmatched_in_bank.push(line.clone()),
        }
    }
    report.unmatched_in_ledger = payouts
        .iter()
        .zip(&taken)
        .filter(|&(_, &taken)| !taken)
        .map(|(payout, _)| payout.clone())
        .collect();
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn bank_line(line: usize, yuan: &str, account: &str, reference: &str) -> BankLine {
        BankLine {
            line,
            date: date(2024, 3, 20),
            amount: Fen::parse_yuan(yuan).unwrap(),
            account: account.to_string(),
            reference: reference.to_string(),
        }
    }

    fn payout(entry: &str, yuan: &str, account: &str, reference: &str) -> PayoutLine {
        PayoutLine {
            entry_id: entry.to_string(),
            claim_id: format!("claim-{entry}"),
            amount: Fen::parse_yuan(yuan).unwrap(),
            account: account.to_string(),
            reference: reference.to_string(),
        }
    }

    /// A statement as a Chinese bank exports it, with only characters GBK has
    /// (the full-width ￥; the half-width ¥ is not in GBK).
    const CHINESE: &str = "交易日期,交易金额,对方账号,对方户名,摘要\n\
        2024-03-20,-5000.00,6222 0210 0100 1234 567,张建国,防贫救助 FP-2024-0001\n\
        2024/03/21,\"-1,234.50\",6222021001007654321,李秀英,\"附言：FP-2024-0002,医疗\"\n\
        20240322,￥800,6217000010001234,王五,FP-2024-0003\n";

    fn chinese_lines() -> Vec<BankLine> {
        vec![
            BankLine {
                line: 2,
                date: date(2024, 3, 20),
                amount: Fen::new(500_000),
                account: "6222021001001234567".to_string(),
                reference: "防贫救助 FP-2024-0001".to_string(),
            },
            BankLine {
                line: 3,
                date: date(2024, 3, 21),
                amount: Fen::new(123_450),
                account: "6222021001007654321".to_string(),
                reference: "附言：FP-2024-0002,医疗".to_string(),
            },
            BankLine {
                line: 4,
                date: date(2024, 3, 22),
                amount: Fen::new(80_000),
                account: "6217000010001234".to_string(),
                reference: "FP-2024-0003".to_string(),
            },
        ]
    }

    #[test]
    fn reads_utf8_with_bom_and_chinese_headers() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(CHINESE.as_bytes());
        let statement = parse_statement(&bytes).unwrap();
        assert_eq!(statement.encoding, "UTF-8");
        assert_eq!(statement.bad_lines, vec![]);
        assert_eq!(statement.lines, chinese_lines());
    }

    #[test]
    fn reads_the_same_file_in_gbk() {
        let (bytes, _, unmappable) = encoding_rs::GBK.encode(CHINESE);
        assert!(!unmappable, "the fixture must be expressible in GBK");
        assert!(std::str::from_utf8(&bytes).is_err());
        let statement = parse_statement(&bytes).unwrap();
        assert_eq!(statement.encoding, "GBK");
        assert_eq!(statement.bad_lines, vec![]);
        assert_eq!(statement.lines, chinese_lines());
    }

    #[test]
    fn refuses_bytes_that_are_neither_utf8_nor_gbk() {
        let mut bytes = "日期,金额,对方账号,摘要\n2024-03-20,1,1,x\n"
            .as_bytes()
            .to_vec();
        bytes.extend_from_slice(b"2024-03-21,2,2,\xFF\n");
        assert_eq!(
            parse_statement(&bytes),
            Err(StatementError::UnknownEncoding { line: 3 })
        );
        let message = StatementError::UnknownEncoding { line: 3 }.to_string();
        assert!(message.contains("neither UTF-8 nor GBK"), "{message}");
    }

    #[test]
    fn a_bom_means_utf8_even_when_the_rest_is_not() {
        let (gbk, _, _) = encoding_rs::GBK.encode("日期,金额,对方账号,摘要\n");
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(&gbk);
        assert_eq!(
            parse_statement(&bytes),
            Err(StatementError::InvalidUtf8 { line: 1 })
        );
    }

    #[test]
    fn reads_english_headers_in_any_case_and_order() {
        let text = " Reference ,ACCOUNT,Amount,date\n\
                    FP-1,6222000011112222,12.30,2024-03-20\n";
        let statement = parse_statement(text.as_bytes()).unwrap();
        assert_eq!(
            statement.lines,
            vec![BankLine {
                line: 2,
                date: date(2024, 3, 20),
                amount: Fen::new(1_230),
                account: "6222000011112222".to_string(),
                reference: "FP-1".to_string(),
            }]
        );
    }

    #[test]
    fn ignores_extra_columns_and_prefers_names_in_table_order() {
        // "日期" stands left of "交易日期" and "交易流水号" left of "摘要", but
        // the table prefers 交易日期 and 摘要.
        let text = "序号,日期,交易流水号,交易日期,借方发生额,贷方发生额,余额,对方账户,摘要,备注\n\
                    1,2024-01-01,SN001,2024-03-20,100.00,,9900.00,6222 1111,FP-9,note\n";
        let statement = parse_statement(text.as_bytes()).unwrap();
        assert_eq!(statement.bad_lines, vec![]);
        assert_eq!(
            statement.lines,
            vec![BankLine {
                line: 2,
                date: date(2024, 3, 20),
                amount: Fen::new(10_000),
                account: "62221111".to_string(),
                reference: "FP-9".to_string(),
            }]
        );
    }

    #[test]
    fn reads_quoted_cells_with_commas_quotes_and_newlines() {
        let text = "date,amount,account,reference\n\
                    \"2024-03-20\",\"1,000.00\",\" 6222 \",\"a, \"\"quoted\"\" b\"\n\
                    2024-03-21,1.00,6222,\"two\nlines\"\n\
                    2024-03-22,2.00,6222,after\n";
        let statement = parse_statement(text.as_bytes()).unwrap();
        assert_eq!(statement.bad_lines, vec![]);
        let got: Vec<(usize, i64, &str)> = statement
            .lines
            .iter()
            .map(|l| (l.line, l.amount.get(), l.reference.as_str()))
            .collect();
        // A row spanning two physical lines is numbered by its first line, and
        // the next row keeps its physical line number.
        assert_eq!(
            got,
            vec![
                (2, 100_000, "a, \"quoted\" b"),
                (3, 100, "two\nlines"),
                (5, 200, "after"),
            ]
        );
    }

    #[test]
    fn reads_amounts_as_banks_print_them() {
        for (text, fen) in [
            ("1234.5", 123_450),
            ("1,234.50", 123_450),
            ("1,234,567", 123_456_700),
            ("-1,234.50", 123_450),
            ("+7", 700),
            ("¥1,234.50", 123_450),
            ("￥0.05", 5),
            ("-¥12.00", 1_200),
            ("¥-12.00", 1_200),
            ("￥ 12", 1_200),
        ] {
            assert_eq!(parse_amount(text), Ok(Fen::new(fen)), "{text}");
        }
        for (text, reason) in [
            ("", "amount is empty"),
            ("1.234", "more than 2 decimal places"),
            ("12,34.50", "not a number"),
            ("1,2345", "not a number"),
            (",123", "not a number"),
            ("1.000,00", "not a number"),
            ("abc", "not a number"),
            ("--5", "not a number"),
            ("1e3", "not a number"),
            ("0", "is zero"),
            ("-0.00", "is zero"),
            ("200000000000", "exceeds the limit"),
        ] {
            let err = parse_amount(text).unwrap_err();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn reads_each_date_format() {
        for text in [
            "2024-03-20",
            "2024/03/20",
            "20240320",
            "2024年3月20日",
            "2024年03月20日",
            "2024-3-20",
            "2024/3/20",
            "2024-03-20 10:15:30",
            "2024/03/20 10:15",
        ] {
            assert_eq!(parse_date(text), Ok(date(2024, 3, 20)), "{text}");
        }
        for (text, reason) in [
            ("", "date is empty"),
            ("2024-02-30", "does not exist"),
            ("20241320", "does not exist"),
            ("2024.03.20", "is not a date"),
            ("20-03-2024", "is not a date"),
            ("2024-03/20", "is not a date"),
            ("2024-03-20-1", "is not a date"),
            ("2024年3月20", "is not a date"),
            ("2024-03-20 morning", "is not a date"),
            ("2024032", "is not a date"),
        ] {
            let err = parse_date(text).unwrap_err();
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn reports_bad_lines_and_keeps_the_good_ones() {
        let text = "交易日期,交易金额,对方账号,摘要\n\
                    2024-03-20,-100.00,6222 0001,FP-1\n\
                    2024-02-30,-100.00,6222 0002,FP-2\n\
                    \n\
                    2024-03-20,-1.005,6222 0003,FP-3\n\
                    2024-03-20,-100.00,,FP-4\n\
                    ,,,\n\
                    2024-03-20,0.00,6222 0005,FP-5\n\
                    2024-03-20,-100.00,6222****0006,FP-6\n\
                    2024-03-20\n\
                    合计,-300.00,,\n\
                    2024-03-21,-200.00,6222 0007,FP-7\n";
        let statement = parse_statement(text.as_bytes()).unwrap();
        let good: Vec<(usize, &str)> = statement
            .lines
            .iter()
            .map(|l| (l.line, l.account.as_str()))
            .collect();
        assert_eq!(good, vec![(2, "62220001"), (12, "62220007")]);
        let bad: Vec<(usize, &str)> = statement
            .bad_lines
            .iter()
            .map(|b| (b.line, b.reason.as_str()))
            .collect();
        assert_eq!(
            bad,
            vec![
                (3, "date \"2024-02-30\" does not exist"),
                (5, "amount \"-1.005\" has more than 2 decimal places"),
                (6, "payee account is empty"),
                (8, "amount \"0.00\" is zero"),
                (
                    9,
                    "payee account \"6222****0006\" is masked; export the statement with full account numbers"
                ),
                (10, "amount is empty; payee account is empty"),
                (
                    11,
                    "date \"合计\" is not a date like 2024-03-20, 2024/03/20, 20240320 or 2024年3月20日; payee account is empty"
                ),
            ]
        );
    }

    #[test]
    fn numbers_lines_as_an_editor_shows_them() {
        // Blank lines before the header and between rows, in every line ending.
        for text in [
            "\n\n日期,金额,对方账号,摘要\n2024-03-20,1,1,a\n\n\n2024-03-20,2,1,b\nx,3,1,c\n",
            "\r\n\r\n日期,金额,对方账号,摘要\r\n2024-03-20,1,1,a\r\n\r\n\r\n2024-03-20,2,1,b\r\nx,3,1,c\r\n",
            "\r\r日期,金额,对方账号,摘要\r2024-03-20,1,1,a\r\r\r2024-03-20,2,1,b\rx,3,1,c",
        ] {
            let statement = parse_statement(text.as_bytes()).unwrap();
            let lines: Vec<usize> = statement.lines.iter().map(|l| l.line).collect();
            assert_eq!(lines, vec![4, 7], "{text:?}");
            assert_eq!(statement.bad_lines[0].line, 8, "{text:?}");
        }
    }

    #[test]
    fn needs_every_logical_column() {
        let missing_amount = "交易日期,对方账号,摘要,余额\n2024-03-20,6222,x,1\n";
        assert_eq!(
            parse_statement(missing_amount.as_bytes()),
            Err(StatementError::MissingColumn("amount"))
        );
        let message = StatementError::MissingColumn("amount").to_string();
        assert!(message.contains("交易金额, 金额, 支出金额"), "{message}");
        assert_eq!(
            parse_statement(b"date,amount,account\n"),
            Err(StatementError::MissingColumn("reference"))
        );
    }

    #[test]
    fn needs_a_header() {
        assert_eq!(parse_statement(b""), Err(StatementError::NoHeader));
        assert_eq!(
            parse_statement(b"\xEF\xBB\xBF\r\n\r\n , \n"),
            Err(StatementError::NoHeader)
        );
    }

    #[test]
    fn reads_crlf_files() {
        let text = "日期,金额,对方账号,摘要\r\n2024-03-20,1,1,x\r\n";
        let statement = parse_statement(text.as_bytes()).unwrap();
        assert_eq!(statement.lines.len(), 1);
        assert_eq!(statement.lines[0].reference, "x");
    }

    #[test]
    fn refuses_too_large_input() {
        let bytes = vec![b'a'; MAX_STATEMENT_BYTES + 1];
        assert_eq!(
            parse_statement(&bytes),
            Err(StatementError::TooLarge {
                size: MAX_STATEMENT_BYTES + 1,
                limit: MAX_STATEMENT_BYTES
            })
        );
    }

    #[test]
    fn accepts_the_line_limit_and_refuses_one_more() {
        let mut text = String::from("date,amount,account,reference\n");
        for _ in 0..MAX_STATEMENT_LINES {
            text.push_str("20240320,1,62,x\n");
        }
        let statement = parse_statement(text.as_bytes()).unwrap();
        assert_eq!(statement.lines.len(), MAX_STATEMENT_LINES);
        text.push_str("20240320,1,62,x\n");
        assert_eq!(
            parse_statement(text.as_bytes()),
            Err(StatementError::TooManyLines {
                limit: MAX_STATEMENT_LINES
            })
        );
    }

    #[test]
    fn matches_exactly() {
        let bank = [bank_line(2, "100", "6222", "FP-1")];
        let payouts = [payout("e1", "100", "6222", "FP-1")];
        let report = match_payouts(&bank, &payouts);
        assert_eq!(
            report.matched,
            vec![Match {
                bank: bank[0].clone(),
                payout: payouts[0].clone()
            }]
        );
        assert!(report.unmatched_in_bank.is_empty());
        assert!(report.unmatched_in_ledger.is_empty());
    }

    #[test]
    fn matches_a_reference_inside_the_bank_text() {
        let bank = [
            bank_line(2, "100", "6222", "跨行转账 附言:FP-1 防贫救助"),
            bank_line(3, "200", "6222", "FP - 2"),
        ];
        let payouts = [
            payout("e1", "100", "6222 ", "FP-1"),
            payout("e2", "200", "6222", "FP-2"),
        ];
        let report = match_payouts(&bank, &payouts);
        assert_eq!(report.matched.len(), 2);
        assert!(report.unmatched_in_bank.is_empty());
        assert!(report.unmatched_in_ledger.is_empty());
    }

    #[test]
    fn does_not_match_another_account_amount_or_reference() {
        let bank = [
            bank_line(2, "100", "6222", "FP-1"),
            bank_line(3, "100.01", "6333", "FP-1"),
            bank_line(4, "100", "6333", "FP-2"),
        ];
        let payouts = [payout("e1", "100", "6333", "FP-1")];
        let report = match_payouts(&bank, &payouts);
        assert!(report.matched.is_empty());
        assert_eq!(report.unmatched_in_bank, bank.to_vec());
        assert_eq!(report.unmatched_in_ledger, payouts.to_vec());
    }

    #[test]
    fn matches_identical_lines_one_to_one() {
        let bank = [
            bank_line(2, "100", "6222", "FP-1"),
            bank_line(3, "100", "6222", "FP-1"),
        ];
        let payouts = [
            payout("e1", "100", "6222", "FP-1"),
            payout("e2", "100", "6222", "FP-1"),
        ];
        let report = match_payouts(&bank, &payouts);
        let pairs: Vec<(usize, &str)> = report
            .matched
            .iter()
            .map(|m| (m.bank.line, m.payout.entry_id.as_str()))
            .collect();
        assert_eq!(pairs, vec![(2, "e1"), (3, "e2")]);

        // A third identical bank line has nothing left to match.
        let mut three = bank.to_vec();
        three.push(bank_line(4, "100", "6222", "FP-1"));
        let report = match_payouts(&three, &payouts);
        assert_eq!(report.matched.len(), 2);
        assert_eq!(report.unmatched_in_bank, vec![three[2].clone()]);
    }

    #[test]
    fn reports_unmatched_on_both_sides_in_order() {
        let bank = [
            bank_line(2, "300", "6222", "unknown transfer"),
            bank_line(3, "100", "6222", "FP-1"),
            bank_line(4, "50", "6222", "bank fee"),
        ];
        let payouts = [
            payout("e0", "999", "6222", "FP-0"),
            payout("e1", "100", "6222", "FP-1"),
            payout("e2", "200", "6222", "FP-2"),
        ];
        let report = match_payouts(&bank, &payouts);
        assert_eq!(report.matched.len(), 1);
        assert_eq!(report.matched[0].payout.entry_id, "e1");
        assert_eq!(
            report.unmatched_in_bank,
            vec![bank[0].clone(), bank[2].clone()]
        );
        assert_eq!(
            report.unmatched_in_ledger,
            vec![payouts[0].clone(), payouts[2].clone()]
        );
    }

    #[test]
    fn takes_the_first_matching_payout_skipping_taken_ones() {
        // Same bucket, different references: the scan must skip the payout the
        // first bank line took and the one that does not match.
        let bank = [
            bank_line(2, "100", "6222", "FP-2"),
            bank_line(3, "100", "6222", "FP-1 FP-3"),
            bank_line(4, "100", "6222", "FP-3"),
        ];
        let payouts = [
            payout("e1", "100", "6222", "FP-1"),
            payout("e2", "100", "6222", "FP-2"),
            payout("e3", "100", "6222", "FP-3"),
        ];
        let report = match_payouts(&bank, &payouts);
        let pairs: Vec<(usize, &str)> = report
            .matched
            .iter()
            .map(|m| (m.bank.line, m.payout.entry_id.as_str()))
            .collect();
        assert_eq!(pairs, vec![(2, "e2"), (3, "e1"), (4, "e3")]);
    }

    #[test]
    fn matches_a_hundred_thousand_lines_quickly() {
        let n = 100_000;
        let payouts: Vec<PayoutLine> = (0..n)
            .map(|i| PayoutLine {
                entry_id: format!("e{i}"),
                claim_id: format!("c{i}"),
                amount: Fen::new(100 + i64::from(i % 7)),
                account: format!("6222{:06}", i % 1000),
                reference: format!("FP-{i:06}"),
            })
            .collect();
        let bank: Vec<BankLine> = payouts
            .iter()
            .rev()
            .enumerate()
            .map(|(i, p)| BankLine {
                line: i + 2,
                date: date(2024, 3, 20),
                amount: p.amount,
                account: p.account.clone(),
                reference: format!("转账 {}", p.reference),
            })
            .collect();
        let start = std::time::Instant::now();
        let report = match_payouts(&bank, &payouts);
        assert_eq!(report.matched.len(), 100_000);
        // A quadratic scan would take minutes; generous for slow CI machines.
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }

    /// The rule spelled out the slow way, to check the bucketed matcher against.
    fn naive_match(bank: &[BankLine], payouts: &[PayoutLine]) -> MatchReport {
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let mut taken = vec![false; payouts.len()];
        let mut report = MatchReport::default();
        for line in bank {
            let found = (0..payouts.len()).find(|&p| {
                !taken[p]
                    && payouts[p].amount == line.amount
                    && digits(&payouts[p].account) == digits(&line.account)
                    && references_match(&line.reference, &payouts[p].reference)
            });
            match found {
                Some(p) => {
                    taken[p] = true;
                    report.matched.push(Match {
                        bank: line.clone(),
                        payout: payouts[p].clone(),
                    });
                }
                None => report.unmatched_in_bank.push(line.clone()),
            }
        }
        for (p, payout) in payouts.iter().enumerate() {
            if !taken[p] {
                report.unmatched_in_ledger.push(payout.clone());
            }
        }
        report
    }

    /// Payouts drawn from small pools so amounts, accounts and references
    /// collide often. References are fixed-width ids, so none is contained in
    /// another and a bank line carrying one can only stand for that id.
    fn payouts_strategy() -> impl Strategy<Value = Vec<PayoutLine>> {
        prop::collection::vec((1i64..4, 0u8..3, 0u8..4), 0..40).prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(i, (amount, account, reference))| PayoutLine {
                    entry_id: format!("e{i}"),
                    claim_id: format!("c{i}"),
                    amount: Fen::new(amount * 100),
                    account: format!("6222 {account}"),
                    reference: format!("FP-{reference:03}"),
                })
                .collect()
        })
    }

    fn key(p: &PayoutLine) -> (Fen, String, String) {
        (
            p.amount,
            account_digits(&p.account).into_owned(),
            p.reference.clone(),
        )
    }

    proptest! {
        #[test]
        fn matches_every_chosen_payout_once(
            payouts in payouts_strategy(),
            choose in prop::collection::vec(any::<bool>(), 40),
            decorate in prop::collection::vec(0u8..3, 40),
            extra in prop::collection::vec((1i64..4, 0u8..3, 0u8..4), 0..10),
            order in any::<prop::sample::Index>(),
        ) {
            let chosen: Vec<&PayoutLine> = payouts
                .iter()
                .zip(&choose)
                .filter(|&(_, &c)| c)
                .map(|(p, _)| p)
                .collect();
            let mut bank: Vec<BankLine> = chosen
                .iter()
                .zip(&decorate)
                .map(|(p, &d)| BankLine {
                    line: 0,
                    date: NaiveDate::from_ymd_opt(2024, 3, 20).unwrap(),
                    amount: p.amount,
                    account: account_digits(&p.account).into_owned(),
                    reference: match d {
                        0 => p.reference.clone(),
                        1 => format!("跨行转账 {} 防贫救助", p.reference),
                        _ => p.reference.replace('-', " - "),
                    },
                })
                .collect();
            // Extra lines look like payouts but carry no id, so they can never match.
            bank.extend(extra.iter().map(|&(amount, account, n)| BankLine {
                line: 0,
                date: NaiveDate::from_ymd_opt(2024, 3, 21).unwrap(),
                amount: Fen::new(amount * 100),
                account: format!("6222{account}"),
                reference: format!("手续费 {n}"),
            }));
            if !bank.is_empty() {
                let len = bank.len();
                bank.rotate_left(order.index(len));
            }
            for (i, line) in bank.iter_mut().enumerate() {
                line.line = i + 2;
            }

            let report = match_payouts(&bank, &payouts);

            // Every chosen payout is matched: payouts with the same amount,
            // account and reference are interchangeable, so count per key.
            let mut wanted: HashMap<(Fen, String, String), usize> = HashMap::new();
            for p in &chosen {
                *wanted.entry(key(p)).or_default() += 1;
            }
            let mut got: HashMap<(Fen, String, String), usize> = HashMap::new();
            for m in &report.matched {
                *got.entry(key(&m.payout)).or_default() += 1;
            }
            prop_assert_eq!(wanted, got);

            // Every pair obeys the rule.
            for m in &report.matched {
                prop_assert_eq!(m.bank.amount, m.payout.amount);
                prop_assert_eq!(&m.bank.account, &account_digits(&m.payout.account));
                prop_assert!(references_match(&m.bank.reference, &m.payout.reference));
            }

            // Nothing is used twice, and both sides partition exactly, in order.
            let mut lines: Vec<usize> = report.matched.iter().map(|m| m.bank.line).collect();
            lines.extend(report.unmatched_in_bank.iter().map(|l| l.line));
            lines.sort_unstable();
            let all_lines: Vec<usize> = bank.iter().map(|l| l.line).collect();
            prop_assert_eq!(lines, all_lines);
            let mut entries: Vec<&str> = report.matched.iter().map(|m| m.payout.entry_id.as_str()).collect();
            entries.extend(report.unmatched_in_ledger.iter().map(|p| p.entry_id.as_str()));
            entries.sort_unstable();
            let mut all_entries: Vec<&str> = payouts.iter().map(|p| p.entry_id.as_str()).collect();
            all_entries.sort_unstable();
            prop_assert_eq!(entries, all_entries);
            prop_assert!(report.matched.windows(2).all(|w| w[0].bank.line < w[1].bank.line));
        }

        #[test]
        fn agrees_with_the_naive_rule(
            payouts in prop::collection::vec((1i64..3, 0u8..2, "[AB ]{0,3}"), 0..20),
            bank in prop::collection::vec((1i64..3, 0u8..2, "[AB ]{0,4}"), 0..20),
        ) {
            // Short references over a tiny alphabet make containment between
            // references, empty references and whitespace variants common.
            let payouts: Vec<PayoutLine> = payouts
                .into_iter()
                .enumerate()
                .map(|(i, (amount, account, reference))| PayoutLine {
                    entry_id: format!("e{i}"),
                    claim_id: format!("c{i}"),
                    amount: Fen::new(amount),
                    account: format!("62 {account}"),
                    reference,
                })
                .collect();
            let bank: Vec<BankLine> = bank
                .into_iter()
                .enumerate()
                .map(|(i, (amount, account, reference))| BankLine {
                    line: i + 2,
                    date: NaiveDate::from_ymd_opt(2024, 3, 20).unwrap(),
                    amount: Fen::new(amount),
                    account: format!("62{account}"),
                    reference,
                })
                .collect();
            prop_assert_eq!(match_payouts(&bank, &payouts), naive_match(&bank, &payouts));
        }

        #[test]
        fn reads_back_amounts_printed_like_a_bank(fen in 1..=MAX_AMOUNT.get(), negative: bool, sign: u8) {
            let plain = Fen::new(fen).to_string();
            let (whole, fraction) = plain.split_once('.').unwrap();
            let mut grouped = String::new();
            for (i, c) in whole.chars().enumerate() {
                if i > 0 && (whole.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            let currency = ["", "¥", "￥"][usize::from(sign % 3)];
            let minus = if negative { "-" } else { "" };
            let text = format!("{minus}{currency}{grouped}.{fraction}");
            prop_assert_eq!(parse_amount(&text), Ok(Fen::new(fen)), "{}", text);
        }
    }
}
