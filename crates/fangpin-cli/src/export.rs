//! The year's reconciliation (对账) as rows, and those rows as a CSV or an
//! XLSX file for county finance. Nothing here talks to the server: every
//! function takes the `Reconciliation` message (or the rows made from it),
//! so the files can be tested without one.
//!
//! Money stays in integer fen from the server's yuan strings to the last
//! step. The CSV writes the fen back as an exact decimal string; only the
//! XLSX number cell needs an `f64` (see [`fen_to_f64`]).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use fangpin_proto::v1 as pb;
use rust_xlsxwriter::{ColNum, Format, RowNum, Workbook, Worksheet};

/// What Excel needs to read a CSV as UTF-8 rather than the local code page
/// (GBK on a Chinese Windows), which would garble every Chinese header.
pub const UTF8_BOM: &[u8] = "\u{FEFF}".as_bytes();

/// The number format of every amount cell: thousands separators, two decimals.
pub const AMOUNT_FORMAT: &str = "#,##0.00";
const COUNT_FORMAT: &str = "#,##0";

pub const SUMMARY_SHEET: &str = "汇总";
pub const BY_RELIEF_KIND_SHEET: &str = "按救助类型";
pub const BY_TOWNSHIP_SHEET: &str = "按乡镇";

pub const SUMMARY_HEADER: [&str; 3] = ["项目", "Item", "金额（元） Amount (yuan)"];
pub const BY_RELIEF_KIND_HEADER: [&str; 4] = [
    "救助类型 Relief kind",
    "件数 Claims",
    "防贫救助（元） Relief (yuan)",
    "先行救助（元） Advances (yuan)",
];
pub const BY_TOWNSHIP_HEADER: [&str; 4] = [
    "乡镇代码 Township",
    "件数 Claims",
    "防贫救助（元） Relief (yuan)",
    "先行救助（元） Advances (yuan)",
];
/// The key of the last row of each breakdown.
pub const TOTAL_KEY: &str = "合计 Total";

/// Parses a yuan string ("5000.00", "-12.5", "7") into fen, exactly: no
/// float on the way, at most two decimals, and an error rather than a
/// rounding for anything else.
pub fn parse_fen(yuan: &str) -> Result<i64> {
    let bad = || anyhow!("{yuan:?} is not an amount in yuan");
    let (negative, digits) = match yuan.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, yuan),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !all_digits(whole)
        || !all_digits(fraction)
        || fraction.len() > 2
        || (digits.contains('.') && fraction.is_empty())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let fraction: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().map_err(|_| bad())? * 10,
        _ => fraction.parse().map_err(|_| bad())?,
    };
    let fen = whole
        .checked_mul(100)
        .and_then(|f| f.checked_add(fraction))
        .ok_or_else(bad)?;
    Ok(if negative { -fen } else { fen })
}

/// Fen as a yuan string with exactly two decimals, as the server writes them.
pub fn format_fen(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// An XLSX number cell is an IEEE double, so this is the one place fen
/// become a float, at the very last step. It is exact enough to show the
/// same cents: below 2^53 fen (about 90 trillion yuan) the integer converts
/// exactly, and one correctly rounded division gives the double nearest to
/// the true yuan value, the same double as parsing "1234.56" would. Sums
/// are done in fen before this, never on the floats.
pub fn fen_to_f64(fen: i64) -> f64 {
    // The cast is exact below 2^53, far above any county's pool.
    #[allow(clippy::cast_precision_loss)]
    let fen = fen as f64;
    fen / 100.0
}

/// One cell of the summary's value column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Fen(i64),
    Count(u64),
    Text(String),
}

impl Value {
    pub fn display(&self) -> String {
        match self {
            Value::Fen(fen) => format_fen(*fen),
            Value::Count(n) => n.to_string(),
            Value::Text(text) => text.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryLine {
    pub zh: &'static str,
    pub en: &'static str,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakdownLine {
    pub key: String,
    pub claims: u64,
    pub relief_fen: i64,
    pub advances_fen: i64,
}

/// The reconciliation, checked and in fen, ready to print or write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconciliationRows {
    pub summary: Vec<SummaryLine>,
    /// Each ends with its [`TOTAL_KEY`] line.
    pub by_relief_kind: Vec<BreakdownLine>,
    pub by_township: Vec<BreakdownLine>,
    pub ties: bool,
}

/// Reconciliation message -> rows. Fails, naming the field, if the server
/// sent an amount that is not a yuan string: a report for finance must not
/// guess.
pub fn rows(rec: &pb::Reconciliation) -> Result<ReconciliationRows> {
    let fen = |field: &str, yuan: &str| {
        parse_fen(yuan).with_context(|| format!("reconciliation field {field}"))
    };
    let amount = |zh, en, field: &str, yuan: &str| -> Result<SummaryLine> {
        Ok(SummaryLine {
            zh,
            en,
            value: Value::Fen(fen(field, yuan)?),
        })
    };
    let text = |zh, en, value: String| SummaryLine {
        zh,
        en,
        value: Value::Text(value),
    };
    let year = if rec.policy_year == 0 {
        String::new()
    } else {
        rec.policy_year.to_string()
    };
    let summary = vec![
        text("县", "County", rec.county_code.clone()),
        text("年度", "Policy year", year),
        text("年度状态", "Year state", rec.year_state.clone()),
        amount("上年结转", "Opening", "opening_yuan", &rec.opening_yuan)?,
        amount("保费收入", "Premiums", "premiums_yuan", &rec.premiums_yuan)?,
        amount("财政补齐", "Top-ups", "top_ups_yuan", &rec.top_ups_yuan)?,
        amount("防贫救助", "Relief", "relief_yuan", &rec.relief_yuan)?,
        amount("先行救助", "Advances", "advances_yuan", &rec.advances_yuan)?,
        amount(
            "服务费",
            "Service fee",
            "service_fee_yuan",
            &rec.service_fee_yuan,
        )?,
        amount("期末余额", "Closing", "closing_yuan", &rec.closing_yuan)?,
        amount(
            "结转下年",
            "Rolled over",
            "rolled_over_yuan",
            &rec.rolled_over_yuan,
        )?,
        amount("资金池余额", "Pool balance", "pool_yuan", &rec.pool_yuan)?,
        amount("已预留待付", "Pending", "pending_yuan", &rec.pending_yuan)?,
        SummaryLine {
            zh: "分录数",
            en: "Entries",
            value: Value::Count(rec.entries),
        },
        text(
            "账实相符",
            "Ties",
            if rec.ties { "是 yes" } else { "否 no" }.to_owned(),
        ),
    ];
    Ok(ReconciliationRows {
        summary,
        by_relief_kind: breakdown("by_relief_kind", &rec.by_relief_kind)?,
        by_township: breakdown("by_township", &rec.by_township)?,
        ties: rec.ties,
    })
}

fn breakdown(field: &str, lines: &[pb::ReconciliationLine]) -> Result<Vec<BreakdownLine>> {
    let mut rows = Vec::with_capacity(lines.len() + 1);
    let mut total = BreakdownLine {
        key: TOTAL_KEY.to_owned(),
        claims: 0,
        relief_fen: 0,
        advances_fen: 0,
    };
    let overflow = || anyhow!("{field}: the total overflows");
    for (i, line) in lines.iter().enumerate() {
        let at = |what: &str| format!("reconciliation {field}[{i}] ({}) {what}", line.key);
        let row = BreakdownLine {
            key: line.key.clone(),
            claims: line.claims,
            relief_fen: parse_fen(&line.relief_yuan).with_context(|| at("relief_yuan"))?,
            advances_fen: parse_fen(&line.advances_yuan).with_context(|| at("advances_yuan"))?,
        };
        total.claims = total.claims.checked_add(row.claims).ok_or_else(overflow)?;
        total.relief_fen = total
            .relief_fen
            .checked_add(row.relief_fen)
            .ok_or_else(overflow)?;
        total.advances_fen = total
            .advances_fen
            .checked_add(row.advances_fen)
            .ok_or_else(overflow)?;
        rows.push(row);
    }
    rows.push(total);
    Ok(rows)
}

/// One CSV field, quoted when it holds a separator, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn csv_line<S: AsRef<str>>(out: &mut String, fields: impl IntoIterator<Item = S>) {
    let fields: Vec<String> = fields.into_iter().map(|f| csv_field(f.as_ref())).collect();
    out.push_str(&fields.join(","));
    // CRLF, as RFC 4180 and Excel have it.
    out.push_str("\r\n");
}

fn csv_breakdown(out: &mut String, title: &str, header: [&str; 4], lines: &[BreakdownLine]) {
    csv_line(out, [title]);
    csv_line(out, header);
    for l in lines {
        csv_line(
            out,
            [
                l.key.clone(),
                l.claims.to_string(),
                format_fen(l.relief_fen),
                format_fen(l.advances_fen),
            ],
        );
    }
}

/// Rows -> CSV: a UTF-8 BOM, the summary section, then the two breakdowns,
/// each under a title line and separated by a blank line. Amounts are exact
/// decimal strings without separators, so Excel reads them as numbers.
pub fn csv_bytes(rows: &ReconciliationRows) -> Vec<u8> {
    let mut out = String::new();
    csv_line(&mut out, ["汇总 Summary"]);
    csv_line(&mut out, SUMMARY_HEADER);
    for line in &rows.summary {
        csv_line(
            &mut out,
            [line.zh.to_owned(), line.en.to_owned(), line.value.display()],
        );
    }
    out.push_str("\r\n");
    csv_breakdown(
        &mut out,
        "按救助类型 By relief kind",
        BY_RELIEF_KIND_HEADER,
        &rows.by_relief_kind,
    );
    out.push_str("\r\n");
    csv_breakdown(
        &mut out,
        "按乡镇 By township",
        BY_TOWNSHIP_HEADER,
        &rows.by_township,
    );
    let mut bytes = UTF8_BOM.to_vec();
    bytes.extend_from_slice(out.as_bytes());
    bytes
}

/// Reconciliation message -> CSV bytes.
pub fn reconciliation_csv(rec: &pb::Reconciliation) -> Result<Vec<u8>> {
    Ok(csv_bytes(&rows(rec)?))
}

/// Columns as wide as their longest text, a CJK character counting double
/// (as it shows in Excel's default fonts), within sensible bounds.
struct Widths(Vec<usize>);

impl Widths {
    fn new(columns: usize) -> Self {
        Self(vec![0; columns])
    }

    fn fit(&mut self, col: usize, text: &str) {
        let width = text
            .chars()
            .map(|c| if c.is_ascii() { 1 } else { 2 })
            .sum::<usize>();
        if let Some(w) = self.0.get_mut(col) {
            *w = (*w).max(width);
        }
    }

    fn apply(&self, sheet: &mut Worksheet) -> Result<()> {
        for (col, &width) in self.0.iter().enumerate() {
            let width = (width + 2).clamp(10, 60);
            sheet.set_column_width(col_num(col)?, u32::try_from(width)?)?;
        }
        Ok(())
    }
}

fn col_num(col: usize) -> Result<ColNum> {
    Ok(ColNum::try_from(col)?)
}

fn row_num(row: usize) -> Result<RowNum> {
    Ok(RowNum::try_from(row)?)
}

/// Thousands separators, as the amount format shows them, for column widths.
fn grouped(fen: i64) -> String {
    let plain = format_fen(fen);
    let (whole, cents) = plain.split_once('.').unwrap_or((&plain, ""));
    let (sign, digits) = match whole.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", whole),
    };
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}.{cents}")
}

struct Formats {
    header: Format,
    amount: Format,
    count: Format,
    total_text: Format,
    total_amount: Format,
    total_count: Format,
}

impl Formats {
    fn new() -> Self {
        Self {
            header: Format::new().set_bold(),
            amount: Format::new().set_num_format(AMOUNT_FORMAT),
            count: Format::new().set_num_format(COUNT_FORMAT),
            total_text: Format::new().set_bold(),
            total_amount: Format::new().set_bold().set_num_format(AMOUNT_FORMAT),
            total_count: Format::new().set_bold().set_num_format(COUNT_FORMAT),
        }
    }
}

fn header_row(sheet: &mut Worksheet, header: &[&str], f: &Formats, w: &mut Widths) -> Result<()> {
    for (col, title) in header.iter().enumerate() {
        sheet.write_string_with_format(0, col_num(col)?, *title, &f.header)?;
        w.fit(col, title);
    }
    // The header stays in view while scrolling a long township list.
    sheet.set_freeze_panes(1, 0)?;
    Ok(())
}

fn summary_sheet(sheet: &mut Worksheet, rows: &ReconciliationRows, f: &Formats) -> Result<()> {
    sheet.set_name(SUMMARY_SHEET)?;
    let mut w = Widths::new(SUMMARY_HEADER.len());
    header_row(sheet, &SUMMARY_HEADER, f, &mut w)?;
    for (i, line) in rows.summary.iter().enumerate() {
        let row = row_num(i + 1)?;
        sheet.write_string(row, 0, line.zh)?;
        sheet.write_string(row, 1, line.en)?;
        w.fit(0, line.zh);
        w.fit(1, line.en);
        match &line.value {
            Value::Fen(fen) => {
                sheet.write_number_with_format(row, 2, fen_to_f64(*fen), &f.amount)?;
                w.fit(2, &grouped(*fen));
            }
            Value::Count(n) => {
                sheet.write_number_with_format(row, 2, count_to_f64(*n)?, &f.count)?;
                w.fit(2, &n.to_string());
            }
            Value::Text(text) => {
                sheet.write_string(row, 2, text)?;
                w.fit(2, text);
            }
        }
    }
    w.apply(sheet)
}

fn count_to_f64(n: u64) -> Result<f64> {
    // Exact: a claim or entry count is far below 2^32.
    Ok(f64::from(u32::try_from(n).context("count too large")?))
}

fn breakdown_sheet(
    sheet: &mut Worksheet,
    name: &str,
    header: [&str; 4],
    lines: &[BreakdownLine],
    f: &Formats,
) -> Result<()> {
    sheet.set_name(name)?;
    let mut w = Widths::new(header.len());
    header_row(sheet, &header, f, &mut w)?;
    for (i, line) in lines.iter().enumerate() {
        let row = row_num(i + 1)?;
        let total = i + 1 == lines.len() && line.key == TOTAL_KEY;
        let (text, amount, count) = if total {
            (&f.total_text, &f.total_amount, &f.total_count)
        } else {
            (&Format::new(), &f.amount, &f.count)
        };
        // Township codes are text: as numbers Excel would show 4.1E+08.
        sheet.write_string_with_format(row, 0, &line.key, text)?;
        sheet.write_number_with_format(row, 1, count_to_f64(line.claims)?, count)?;
        sheet.write_number_with_format(row, 2, fen_to_f64(line.relief_fen), amount)?;
        sheet.write_number_with_format(row, 3, fen_to_f64(line.advances_fen), amount)?;
        w.fit(0, &line.key);
        w.fit(1, &line.claims.to_string());
        w.fit(2, &grouped(line.relief_fen));
        w.fit(3, &grouped(line.advances_fen));
    }
    w.apply(sheet)
}

/// Rows -> an XLSX workbook at `path`: sheets 汇总, 按救助类型 and 按乡镇,
/// each with a bold, frozen header row; amounts are number cells formatted
/// `#,##0.00`, so finance can sum and check them in Excel.
pub fn write_xlsx(rows: &ReconciliationRows, path: &Path) -> Result<()> {
    let f = Formats::new();
    let mut book = Workbook::new();
    summary_sheet(book.add_worksheet(), rows, &f)?;
    breakdown_sheet(
        book.add_worksheet(),
        BY_RELIEF_KIND_SHEET,
        BY_RELIEF_KIND_HEADER,
        &rows.by_relief_kind,
        &f,
    )?;
    breakdown_sheet(
        book.add_worksheet(),
        BY_TOWNSHIP_SHEET,
        BY_TOWNSHIP_HEADER,
        &rows.by_township,
        &f,
    )?;
    book.save(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reconciliation message -> XLSX file.
pub fn write_reconciliation_xlsx(rec: &pb::Reconciliation, path: &Path) -> Result<()> {
    write_xlsx(&rows(rec)?, path)
}

/// Reconciliation message -> CSV file.
pub fn write_reconciliation_csv(rec: &pb::Reconciliation, path: &Path) -> Result<()> {
    let bytes = reconciliation_csv(rec)?;
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// A reconciliation for the tests here and in `pool`.
#[cfg(test)]
pub mod test_data {
    use fangpin_proto::v1 as pb;

    fn line(key: &str, claims: u64, relief: &str, advances: &str) -> pb::ReconciliationLine {
        pb::ReconciliationLine {
            key: key.to_owned(),
            claims,
            relief_yuan: relief.to_owned(),
            advances_yuan: advances.to_owned(),
        }
    }

    /// A closed year: 1,000.00 carried in, 250,000.00 of premiums, a
    /// 3,000.50 top-up, 180,400.25 relief, 6,000.00 advances and a
    /// 12,500.00 fee leave 55,100.25, all carried to next year.
    pub fn sample() -> pb::Reconciliation {
        pb::Reconciliation {
            county_code: "410102".to_owned(),
            policy_year: 2024,
            year_state: "closed".to_owned(),
            opening_yuan: "1000.00".to_owned(),
            premiums_yuan: "250000.00".to_owned(),
            top_ups_yuan: "3000.50".to_owned(),
            relief_yuan: "180400.25".to_owned(),
            advances_yuan: "6000.00".to_owned(),
            service_fee_yuan: "12500.00".to_owned(),
            closing_yuan: "55100.25".to_owned(),
            rolled_over_yuan: "55100.25".to_owned(),
            pool_yuan: "0.00".to_owned(),
            pending_yuan: "0.00".to_owned(),
            ties: true,
            receivables_open_yuan: "0.00".to_owned(),
            receivables_recovered_yuan: "0.00".to_owned(),
            receivables_written_off_yuan: "0.00".to_owned(),
            receivables_open: 0,
            by_relief_kind: vec![
                line("illness", 5, "150000.25", "6000.00"),
                line("schooling", 3, "30400.00", "0.00"),
            ],
            by_township: vec![
                line("410102001", 6, "120000.00", "6000.00"),
                line("410102002", 2, "60400.25", "0.00"),
            ],
            entries: 42,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_data::sample;
    use super::*;
    use calamine::{Data, Reader, Xlsx, open_workbook};

    #[test]
    fn parses_yuan_exactly() {
        assert_eq!(parse_fen("5000.00").expect("ok"), 500_000);
        assert_eq!(parse_fen("12.5").expect("ok"), 1_250);
        assert_eq!(parse_fen("7").expect("ok"), 700);
        assert_eq!(parse_fen("0.07").expect("ok"), 7);
        assert_eq!(parse_fen("-0.01").expect("ok"), -1);
        assert_eq!(parse_fen("-1234.56").expect("ok"), -123_456);
        assert_eq!(
            parse_fen("92233720368547758.07").expect("ok"),
            i64::MAX,
            "the largest amount still parses"
        );
        for bad in [
            "",
            "-",
            ".",
            "1.",
            ".5",
            "1.234",
            "1,000.00",
            " 1.00",
            "1.00 ",
            "+1.00",
            "1e3",
            "¥1.00",
            "--1",
            "92233720368547758.08",
        ] {
            assert!(parse_fen(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn formats_fen_with_two_decimals() {
        assert_eq!(format_fen(0), "0.00");
        assert_eq!(format_fen(7), "0.07");
        assert_eq!(format_fen(-1), "-0.01");
        assert_eq!(format_fen(123_456), "1234.56");
        assert_eq!(format_fen(-500_000), "-5000.00");
        assert_eq!(format_fen(i64::MIN), "-92233720368547758.08");
        assert_eq!(grouped(123_456_789), "1,234,567.89");
        assert_eq!(grouped(-100_000), "-1,000.00");
        assert_eq!(grouped(5), "0.05");
    }

    /// The float is the double nearest the decimal: the one Excel itself
    /// would store for the typed amount.
    #[test]
    fn fen_to_f64_is_the_nearest_double() {
        let mut fen: i64 = 1;
        while fen < 1 << 52 {
            for f in [fen, fen + 1, fen + 99, -fen - 37] {
                let decimal: f64 = format_fen(f).parse().expect("parses");
                assert_eq!(fen_to_f64(f).to_bits(), decimal.to_bits(), "{f}");
            }
            fen = fen * 7 + 3;
        }
        assert_eq!(fen_to_f64(18_040_025), 180_400.25);
    }

    #[test]
    fn rows_carry_every_identity_line_and_totals() {
        let rows = rows(&sample()).expect("rows");
        let find = |en: &str| {
            rows.summary
                .iter()
                .find(|l| l.en == en)
                .unwrap_or_else(|| panic!("no {en} line"))
        };
        for (zh, en, fen) in [
            ("上年结转", "Opening", 100_000),
            ("保费收入", "Premiums", 25_000_000),
            ("财政补齐", "Top-ups", 300_050),
            ("防贫救助", "Relief", 18_040_025),
            ("先行救助", "Advances", 600_000),
            ("服务费", "Service fee", 1_250_000),
            ("期末余额", "Closing", 5_510_025),
            ("结转下年", "Rolled over", 5_510_025),
        ] {
            let line = find(en);
            assert_eq!(line.zh, zh);
            assert_eq!(line.value, Value::Fen(fen), "{en}");
        }
        assert_eq!(find("Ties").value, Value::Text("是 yes".to_owned()));
        assert_eq!(find("Entries").value, Value::Count(42));
        let total = rows.by_relief_kind.last().expect("total");
        assert_eq!(
            (
                total.key.as_str(),
                total.claims,
                total.relief_fen,
                total.advances_fen
            ),
            (TOTAL_KEY, 8, 18_040_025, 600_000)
        );
        let total = rows.by_township.last().expect("total");
        assert_eq!((total.claims, total.relief_fen), (8, 18_040_025));
        assert_eq!(rows.by_township.len(), 3);
    }

    #[test]
    fn a_bad_amount_is_an_error_naming_the_field() {
        let mut rec = sample();
        rec.service_fee_yuan = "12500.005".to_owned();
        let err = format!("{:#}", rows(&rec).expect_err("rejected"));
        assert!(err.contains("service_fee_yuan"), "{err}");

        let mut rec = sample();
        rec.by_township[1].relief_yuan = "n/a".to_owned();
        let err = format!("{:#}", rows(&rec).expect_err("rejected"));
        assert!(
            err.contains("by_township[1] (410102002) relief_yuan"),
            "{err}"
        );
    }

    #[test]
    fn csv_has_bom_summary_and_both_breakdowns() {
        let bytes = reconciliation_csv(&sample()).expect("csv");
        assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "no BOM");
        let text = std::str::from_utf8(&bytes[3..]).expect("utf-8");
        assert!(!text.starts_with('\u{FEFF}'), "one BOM only");
        let lines: Vec<&str> = text.split("\r\n").collect();
        let expected = [
            "汇总 Summary",
            "项目,Item,金额（元） Amount (yuan)",
            "县,County,410102",
            "年度,Policy year,2024",
            "年度状态,Year state,closed",
            "上年结转,Opening,1000.00",
            "保费收入,Premiums,250000.00",
            "财政补齐,Top-ups,3000.50",
            "防贫救助,Relief,180400.25",
            "先行救助,Advances,6000.00",
            "服务费,Service fee,12500.00",
            "期末余额,Closing,55100.25",
            "结转下年,Rolled over,55100.25",
            "资金池余额,Pool balance,0.00",
            "已预留待付,Pending,0.00",
            "分录数,Entries,42",
            "账实相符,Ties,是 yes",
            "",
            "按救助类型 By relief kind",
            "救助类型 Relief kind,件数 Claims,防贫救助（元） Relief (yuan),先行救助（元） Advances (yuan)",
            "illness,5,150000.25,6000.00",
            "schooling,3,30400.00,0.00",
            "合计 Total,8,180400.25,6000.00",
            "",
            "按乡镇 By township",
            "乡镇代码 Township,件数 Claims,防贫救助（元） Relief (yuan),先行救助（元） Advances (yuan)",
            "410102001,6,120000.00,6000.00",
            "410102002,2,60400.25,0.00",
            "合计 Total,8,180400.25,6000.00",
            "",
        ];
        assert_eq!(lines, expected);
    }

    #[test]
    fn csv_quotes_fields_that_need_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn csv_marks_a_reconciliation_that_does_not_tie() {
        let mut rec = sample();
        rec.ties = false;
        let bytes = reconciliation_csv(&rec).expect("csv");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains("\r\n账实相符,Ties,否 no\r\n"), "{text}");
    }

    fn cell(range: &calamine::Range<Data>, row: u32, col: u32) -> &Data {
        range
            .get_value((row, col))
            .unwrap_or_else(|| panic!("no cell at ({row}, {col})"))
    }

    fn text(range: &calamine::Range<Data>, row: u32, col: u32) -> String {
        match cell(range, row, col) {
            Data::String(s) => s.clone(),
            other => panic!("({row}, {col}) is {other:?}, not text"),
        }
    }

    /// Exact comparison on purpose: the cell must hold the very double the
    /// decimal amount rounds to, not something close to it.
    #[allow(clippy::float_cmp)]
    fn assert_number(range: &calamine::Range<Data>, row: u32, col: u32, expected: f64) {
        match cell(range, row, col) {
            Data::Float(n) => assert_eq!(*n, expected, "({row}, {col})"),
            other => panic!("({row}, {col}) is {other:?}, not a number"),
        }
    }

    #[test]
    fn xlsx_reads_back_with_chinese_sheets_headers_and_number_cells() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("对账.xlsx");
        write_reconciliation_xlsx(&sample(), &path).expect("xlsx");

        let mut book: Xlsx<_> = open_workbook(&path).expect("opens");
        assert_eq!(
            book.sheet_names(),
            [SUMMARY_SHEET, BY_RELIEF_KIND_SHEET, BY_TOWNSHIP_SHEET]
        );
        assert_eq!(book.sheet_names(), ["汇总", "按救助类型", "按乡镇"]);

        let summary = book.worksheet_range("汇总").expect("summary");
        assert_eq!(text(&summary, 0, 0), "项目");
        assert_eq!(text(&summary, 0, 1), "Item");
        assert_eq!(text(&summary, 0, 2), "金额（元） Amount (yuan)");
        assert_eq!(text(&summary, 1, 2), "410102");
        let amounts = [
            (4, "上年结转", "Opening", 1000.00),
            (5, "保费收入", "Premiums", 250_000.00),
            (6, "财政补齐", "Top-ups", 3000.50),
            (7, "防贫救助", "Relief", 180_400.25),
            (8, "先行救助", "Advances", 6000.00),
            (9, "服务费", "Service fee", 12_500.00),
            (10, "期末余额", "Closing", 55_100.25),
            (11, "结转下年", "Rolled over", 55_100.25),
            (12, "资金池余额", "Pool balance", 0.0),
            (13, "已预留待付", "Pending", 0.0),
        ];
        for (row, zh, en, yuan) in amounts {
            assert_eq!(text(&summary, row, 0), zh);
            assert_eq!(text(&summary, row, 1), en);
            assert_number(&summary, row, 2, yuan);
        }
        assert_number(&summary, 14, 2, 42.0);
        assert_eq!(text(&summary, 15, 0), "账实相符");
        assert_eq!(text(&summary, 15, 2), "是 yes");

        let styles = book.worksheet_style("汇总").expect("styles");
        let header = styles.get((0, 0)).expect("header style");
        assert!(
            header.font.as_ref().is_some_and(|f| f.is_bold()),
            "bold header"
        );
        let amount = styles.get((7, 2)).expect("amount style");
        assert_eq!(
            amount
                .number_format
                .as_ref()
                .map(|f| f.format_code.as_str()),
            Some(AMOUNT_FORMAT)
        );

        let kinds = book.worksheet_range("按救助类型").expect("by kind");
        for (col, title) in BY_RELIEF_KIND_HEADER.iter().enumerate() {
            assert_eq!(text(&kinds, 0, u32::try_from(col).expect("col")), *title);
        }
        assert_eq!(text(&kinds, 0, 0), "救助类型 Relief kind");
        assert_eq!(text(&kinds, 1, 0), "illness");
        assert_number(&kinds, 1, 1, 5.0);
        assert_number(&kinds, 1, 2, 150_000.25);
        assert_number(&kinds, 1, 3, 6000.00);
        assert_eq!(text(&kinds, 3, 0), TOTAL_KEY);
        assert_number(&kinds, 3, 1, 8.0);
        assert_number(&kinds, 3, 2, 180_400.25);

        let townships = book.worksheet_range("按乡镇").expect("by township");
        assert_eq!(text(&townships, 0, 0), "乡镇代码 Township");
        assert_eq!(text(&townships, 0, 2), "防贫救助（元） Relief (yuan)");
        // A code, kept as text so Excel does not show 4.10102E+08.
        assert_eq!(text(&townships, 2, 0), "410102002");
        assert_number(&townships, 2, 2, 60_400.25);
        assert_number(&townships, 3, 3, 6000.00);
        assert_eq!(townships.height(), 4);
    }

    #[test]
    fn xlsx_of_a_year_without_claims_has_only_totals() {
        let mut rec = sample();
        rec.by_relief_kind.clear();
        rec.by_township.clear();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("empty.xlsx");
        write_reconciliation_xlsx(&rec, &path).expect("xlsx");
        let mut book: Xlsx<_> = open_workbook(&path).expect("opens");
        let kinds = book.worksheet_range("按救助类型").expect("by kind");
        assert_eq!(kinds.height(), 2);
        assert_eq!(text(&kinds, 1, 0), TOTAL_KEY);
        assert_number(&kinds, 1, 2, 0.0);
    }
}
