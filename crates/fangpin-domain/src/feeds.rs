//! Department data feeds (部门数据): the monthly files the county office
//! receives from medical insurance (医保), education (教育), traffic police
//! and fire (交警/消防), agriculture (产业) and civil affairs (民政), and how
//! one row of each becomes a cost of one relief kind for one person.
//!
//! The formats are documented for departments in `docs/feeds.md`; this module
//! is that document as code. It works on raw CSV fields (`&[u8]`) because the
//! files are large and mostly ASCII: ID numbers, dates and amounts read the
//! same in UTF-8 and GBK, and only the header and a few text fields (是/否,
//! 低保) need decoding.

use chrono::{Datelike, NaiveDate};
use encoding_rs::Encoding;

use crate::identity::{IdError, PersonKey};
use crate::money::{Fen, MoneyError};
use crate::policy::ReliefKind;

/// Which department's file this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeedKind {
    /// 医保结算: medical insurance settlements.
    Medical,
    /// 教育费用: tuition, accommodation and textbooks per student.
    Education,
    /// 意外与火灾损失: losses from traffic accidents and fires.
    Accident,
    /// 产业损失: losses from natural disaster or failed business.
    Industry,
    /// 民政: dibao / tekun / disability status and verified income.
    CivilAffairs,
    /// 人社: unemployment registrations and the loss of a wage earner, with
    /// the yearly income the household lost.
    Employment,
}

impl FeedKind {
    pub const ALL: [FeedKind; 6] = [
        FeedKind::Medical,
        FeedKind::Education,
        FeedKind::Accident,
        FeedKind::Industry,
        FeedKind::CivilAffairs,
        FeedKind::Employment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Medical => "medical",
            FeedKind::Education => "education",
            FeedKind::Accident => "accident",
            FeedKind::Industry => "industry",
            FeedKind::CivilAffairs => "civil_affairs",
            FeedKind::Employment => "employment",
        }
    }

    pub fn parse(text: &str) -> Option<FeedKind> {
        FeedKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// The columns this feed must have, in canonical order, with the names
    /// departments use for them. Matching ignores case and surrounding spaces.
    pub fn columns(self) -> &'static [Column] {
        match self {
            FeedKind::Medical => &MEDICAL,
            FeedKind::Education => &EDUCATION,
            FeedKind::Accident | FeedKind::Industry => &LOSS,
            FeedKind::CivilAffairs => &CIVIL_AFFAIRS,
            FeedKind::Employment => &EMPLOYMENT,
        }
    }

    /// Columns a file of this feed may carry; rows read them when present.
    pub fn optional_columns(self) -> &'static [Column] {
        match self {
            FeedKind::Education => &EDUCATION_OPTIONAL,
            _ => &[],
        }
    }
}

/// One required column: its canonical English name and accepted aliases.
#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
}

const ID: Column = Column {
    name: "id_number",
    aliases: &[
        "身份证号",
        "身份证号码",
        "公民身份号码",
        "证件号码",
        "学生身份证号",
    ],
};

static MEDICAL: [Column; 6] = [
    ID,
    Column {
        name: "settlement_date",
        aliases: &["结算日期"],
    },
    Column {
        name: "inpatient",
        aliases: &["是否住院", "住院标志"],
    },
    Column {
        name: "total_cost",
        aliases: &["医疗总费用", "总费用"],
    },
    Column {
        name: "reimbursed",
        aliases: &["报销金额", "统筹支付"],
    },
    Column {
        name: "out_of_pocket",
        aliases: &["个人自付", "自付金额"],
    },
];

static EDUCATION: [Column; 5] = [
    ID,
    Column {
        name: "school_year",
        aliases: &["学年"],
    },
    Column {
        name: "tuition",
        aliases: &["学费"],
    },
    Column {
        name: "accommodation",
        aliases: &["住宿费"],
    },
    Column {
        name: "textbooks",
        aliases: &["教材费", "书本费"],
    },
];

/// 入学学段: set on a student's first school year of a stage (升学).
static EDUCATION_OPTIONAL: [Column; 1] = [Column {
    name: "entry_stage",
    aliases: &["入学学段", "新生学段"],
}];

static EMPLOYMENT: [Column; 4] = [
    ID,
    Column {
        name: "event_date",
        aliases: &["登记日期", "发生日期"],
    },
    Column {
        name: "event",
        aliases: &["事由", "登记类型"],
    },
    Column {
        name: "annual_income_lost",
        aliases: &["减少年收入", "年收入减少额"],
    },
];

static LOSS: [Column; 5] = [
    ID,
    Column {
        name: "loss_date",
        aliases: &["发生日期", "损失日期"],
    },
    Column {
        name: "loss",
        aliases: &["损失金额"],
    },
    Column {
        name: "insurance_paid",
        aliases: &["保险赔付", "商业保险赔付"],
    },
    Column {
        name: "assistance_paid",
        aliases: &["救助金额", "社会救助"],
    },
];

static CIVIL_AFFAIRS: [Column; 4] = [
    ID,
    Column {
        name: "status",
        aliases: &["救助类别", "救助身份"],
    },
    Column {
        name: "per_capita_income",
        aliases: &["家庭人均可支配收入", "人均收入"],
    },
    Column {
        name: "verified_on",
        aliases: &["核对日期"],
    },
];

/// Most columns a feed row may have; more means the file is not what it says.
pub const MAX_COLUMNS: usize = 64;

/// Where each required column sits in this file's rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedLayout {
    pub kind: FeedKind,
    positions: Vec<usize>,
    /// Where each of `kind.optional_columns()` sits, when the file has it.
    optional: Vec<Option<usize>>,
    width: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the header has {0} columns; at most {MAX_COLUMNS} are allowed")]
    TooWide(usize),
    #[error("the header lacks column {name} (also accepted: {aliases})")]
    Missing { name: &'static str, aliases: String },
    #[error("column {0} appears twice in the header")]
    Duplicate(&'static str),
}

impl FeedLayout {
    /// Finds the required columns in a decoded header. Extra columns are
    /// allowed (departments add their own) and ignored.
    pub fn from_header(kind: FeedKind, header: &[String]) -> Result<FeedLayout, HeaderError> {
        if header.len() > MAX_COLUMNS {
            return Err(HeaderError::TooWide(header.len()));
        }
        let normal: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                // The first cell may carry a UTF-8 byte-order mark.
                let h = if i == 0 {
                    h.trim_start_matches('\u{feff}')
                } else {
                    h
                };
                h.trim().to_lowercase()
            })
            .collect();
        let find = |column: &Column| -> Result<Option<usize>, HeaderError> {
            let matches: Vec<usize> = normal
                .iter()
                .enumerate()
                .filter(|(_, h)| *h == column.name || column.aliases.contains(&h.as_str()))
                .map(|(i, _)| i)
                .collect();
            match matches.as_slice() {
                [one] => Ok(Some(*one)),
                [] => Ok(None),
                _ => Err(HeaderError::Duplicate(column.name)),
            }
        };
        let mut positions = Vec::with_capacity(kind.columns().len());
        for column in kind.columns() {
            positions.push(find(column)?.ok_or_else(|| HeaderError::Missing {
                name: column.name,
                aliases: column.aliases.join(", "),
            })?);
        }
        let optional = kind
            .optional_columns()
            .iter()
            .map(find)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FeedLayout {
            kind,
            positions,
            optional,
            width: header.len(),
        })
    }

    pub fn width(&self) -> usize {
        self.width
    }
}

/// A calendar month, the unit in which costs are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct YearMonth {
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
}

impl YearMonth {
    pub fn of(date: NaiveDate) -> YearMonth {
        YearMonth {
            year: date.year(),
            month: date.month(),
        }
    }

    /// Months since year 0, so that windows are integer ranges.
    pub fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    pub fn from_index(index: i64) -> YearMonth {
        YearMonth {
            year: i32::try_from(index.div_euclid(12)).expect("month index within i32 years"),
            month: u32::try_from(index.rem_euclid(12)).expect("0..12") + 1,
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid year and month")
    }
}

impl std::fmt::Display for YearMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Civil-affairs status of a person (救助身份).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CivilStatus {
    /// 低保: minimum living allowance.
    Dibao,
    /// 特困: extreme poverty support.
    Tekun,
    /// 残疾: registered disability.
    Disability,
    /// 无: none of these.
    None,
}

impl CivilStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CivilStatus::Dibao => "dibao",
            CivilStatus::Tekun => "tekun",
            CivilStatus::Disability => "disability",
            CivilStatus::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<CivilStatus> {
        match text {
            "dibao" | "低保" => Some(CivilStatus::Dibao),
            "tekun" | "特困" => Some(CivilStatus::Tekun),
            "disability" | "残疾" => Some(CivilStatus::Disability),
            "none" | "无" => Some(CivilStatus::None),
            _ => None,
        }
    }
}

/// A school stage whose first year is school entry (升学).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchoolStage {
    /// 高中: senior high school.
    SeniorHigh,
    /// 中职/高职: vocational school.
    Vocational,
    /// 大学: university or college (本科, 专科).
    University,
}

impl SchoolStage {
    /// The `entry_stage` cell: empty (or 无) for a year that is not a first
    /// year, else the stage entered.
    pub fn parse_entry(text: &str) -> Option<Option<SchoolStage>> {
        match text.to_lowercase().as_str() {
            "" | "none" | "无" | "否" => Some(None),
            "senior_high" | "高中" | "普通高中" => Some(Some(SchoolStage::SeniorHigh)),
            "vocational" | "中职" | "高职" | "职业学校" => {
                Some(Some(SchoolStage::Vocational))
            }
            "university" | "大学" | "本科" | "专科" | "高校" => {
                Some(Some(SchoolStage::University))
            }
            _ => None,
        }
    }
}

/// What the human-resources feed reports (人社).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmploymentEvent {
    /// 失业登记: a member registered as unemployed.
    Unemployed,
    /// 主要劳动力丧失: the main wage earner died or can no longer work.
    EarnerLost,
}

impl EmploymentEvent {
    pub fn parse(text: &str) -> Option<EmploymentEvent> {
        match text {
            "unemployed" | "失业" | "失业登记" => Some(EmploymentEvent::Unemployed),
            "earner_lost" | "主要劳动力丧失" | "丧失劳动能力" | "死亡" => {
                Some(EmploymentEvent::EarnerLost)
            }
            _ => None,
        }
    }
}

impl CivilStatus {
    /// The status as a policy's status terms name it; None for 无.
    pub fn relief_status(self) -> Option<crate::policy::ReliefStatus> {
        use crate::policy::ReliefStatus;
        match self {
            CivilStatus::Dibao => Some(ReliefStatus::Dibao),
            CivilStatus::Tekun => Some(ReliefStatus::Tekun),
            CivilStatus::Disability => Some(ReliefStatus::Disability),
            CivilStatus::None => None,
        }
    }
}

/// What one valid row says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedRow {
    /// A cost of one relief kind, dated to a month.
    Cost {
        person: PersonKey,
        kind: ReliefKind,
        date: NaiveDate,
        amount: Fen,
    },
    /// A valid row that counts toward no relief kind (an out-patient
    /// settlement; a loss fully covered by insurance and assistance).
    NotCounted { person: PersonKey, date: NaiveDate },
    /// A civil-affairs record: status and the verified per-capita income.
    Status {
        person: PersonKey,
        status: CivilStatus,
        income_per_capita: Fen,
        verified_on: NaiveDate,
    },
}

impl FeedRow {
    pub fn person(&self) -> PersonKey {
        match self {
            FeedRow::Cost { person, .. }
            | FeedRow::NotCounted { person, .. }
            | FeedRow::Status { person, .. } => *person,
        }
    }

    pub fn date(&self) -> NaiveDate {
        match self {
            FeedRow::Cost { date, .. } | FeedRow::NotCounted { date, .. } => *date,
            FeedRow::Status { verified_on, .. } => *verified_on,
        }
    }
}

/// Why a row was refused. `code` groups them in the import's summary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowProblem {
    #[error("the row has {got} fields, the header has {expected}")]
    FieldCount { expected: usize, got: usize },
    #[error("{0}")]
    BadId(IdError),
    #[error("not an amount in yuan: {0}")]
    BadAmount(MoneyError),
    #[error("not a date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)")]
    BadDate,
    #[error("not a school year (YYYY-YYYY or YYYY)")]
    BadSchoolYear,
    #[error("not a yes/no flag (1/0, Y/N, true/false, 是/否)")]
    BadFlag,
    #[error("not a status (dibao/低保, tekun/特困, disability/残疾, none/无)")]
    BadStatus,
    #[error("not a school stage (senior_high/高中, vocational/中职, university/大学, or empty)")]
    BadStage,
    #[error("not an employment event (unemployed/失业, earner_lost/主要劳动力丧失)")]
    BadEvent,
    #[error("the text is not valid in the file's encoding")]
    BadEncoding,
    #[error("{0}")]
    Inconsistent(&'static str),
    #[error("the person is not enrolled in this county's policy year")]
    UnknownPerson,
    #[error("the date {0} is outside the range this import accepts ({1})")]
    OutOfRange(NaiveDate, String),
}

impl RowProblem {
    /// A stable code for counting and for clients to switch on.
    pub fn code(&self) -> &'static str {
        match self {
            RowProblem::FieldCount { .. } => "field_count",
            RowProblem::BadId(_) => "bad_id",
            RowProblem::BadAmount(_) => "bad_amount",
            RowProblem::BadDate => "bad_date",
            RowProblem::BadSchoolYear => "bad_school_year",
            RowProblem::BadFlag => "bad_flag",
            RowProblem::BadStatus => "bad_status",
            RowProblem::BadStage => "bad_stage",
            RowProblem::BadEvent => "bad_event",
            RowProblem::BadEncoding => "bad_encoding",
            RowProblem::Inconsistent(_) => "inconsistent",
            RowProblem::UnknownPerson => "unknown_person",
            RowProblem::OutOfRange(..) => "out_of_range",
        }
    }
}

/// A refused row: which column (canonical name, or "" for the whole row) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub field: &'static str,
    pub problem: RowProblem,
}

impl RowError {
    fn at(field: &'static str, problem: RowProblem) -> RowError {
        RowError { field, problem }
    }
}

/// Reads one data row. `field(i)` is the raw bytes of the i-th record field.
pub fn parse_row<'r>(
    layout: &FeedLayout,
    encoding: &'static Encoding,
    fields: usize,
    field: impl Fn(usize) -> &'r [u8],
) -> Result<FeedRow, RowError> {
    if fields != layout.width {
        return Err(RowError::at(
            "",
            RowProblem::FieldCount {
                expected: layout.width,
                got: fields,
            },
        ));
    }
    let columns = layout.kind.columns();
    let get = |i: usize| trim(field(layout.positions[i]));
    let person = PersonKey::parse_bytes(get(0))
        .map_err(|e| RowError::at(columns[0].name, RowProblem::BadId(e)))?;
    let amount = |i: usize| {
        let text = std::str::from_utf8(get(i))
            .map_err(|_| RowError::at(columns[i].name, RowProblem::BadEncoding))?;
        Fen::parse_yuan(text).map_err(|e| RowError::at(columns[i].name, RowProblem::BadAmount(e)))
    };
    let date = |i: usize| {
        parse_date(get(i)).ok_or_else(|| RowError::at(columns[i].name, RowProblem::BadDate))
    };
    match layout.kind {
        FeedKind::Medical => {
            let date = date(1)?;
            let inpatient = parse_flag(get(2), encoding)
                .ok_or_else(|| RowError::at(columns[2].name, RowProblem::BadFlag))?;
            let total = amount(3)?;
            let reimbursed = amount(4)?;
            let own = amount(5)?;
            if reimbursed > total {
                return Err(RowError::at(
                    columns[4].name,
                    RowProblem::Inconsistent("reimbursed exceeds the total cost"),
                ));
            }
            if own > total {
                return Err(RowError::at(
                    columns[5].name,
                    RowProblem::Inconsistent("out-of-pocket exceeds the total cost"),
                ));
            }
            // 因病 counts in-patient out-of-pocket costs only.
            if inpatient && own > Fen::ZERO {
                Ok(FeedRow::Cost {
                    person,
                    kind: ReliefKind::Illness,
                    date,
                    amount: own,
                })
            } else {
                Ok(FeedRow::NotCounted { person, date })
            }
        }
        FeedKind::Education => {
            let date = parse_school_year(get(1))
                .ok_or_else(|| RowError::at(columns[1].name, RowProblem::BadSchoolYear))?;
            let sum = [amount(2)?, amount(3)?, amount(4)?]
                .into_iter()
                .try_fold(Fen::ZERO, |acc, x| acc.checked_add(x))
                .ok_or_else(|| {
                    RowError::at(
                        columns[2].name,
                        RowProblem::Inconsistent("the sum overflows"),
                    )
                })?;
            let entry = match layout.optional[0] {
                Some(at) => {
                    let text = decode(trim(field(at)), encoding)
                        .ok_or_else(|| RowError::at("entry_stage", RowProblem::BadEncoding))?;
                    SchoolStage::parse_entry(text.trim())
                        .ok_or_else(|| RowError::at("entry_stage", RowProblem::BadStage))?
                }
                None => None,
            };
            // A first year of senior high school, vocational school or
            // university is school entry (升学); the policy decides at
            // screening whether it counts there or under schooling.
            let kind = if entry.is_some() {
                ReliefKind::SchoolEntry
            } else {
                ReliefKind::Schooling
            };
            if sum > Fen::ZERO {
                Ok(FeedRow::Cost {
                    person,
                    kind,
                    date,
                    amount: sum,
                })
            } else {
                Ok(FeedRow::NotCounted { person, date })
            }
        }
        FeedKind::Accident | FeedKind::Industry => {
            let date = date(1)?;
            let loss = amount(2)?;
            let covered = amount(3)?.checked_add(amount(4)?).ok_or_else(|| {
                RowError::at(
                    columns[3].name,
                    RowProblem::Inconsistent("the sum overflows"),
                )
            })?;
            let kind = if layout.kind == FeedKind::Accident {
                ReliefKind::Accident
            } else {
                ReliefKind::Industry
            };
            // The loss after commercial insurance and social assistance
            // (扣除商业保险及社会救助后); a covered loss costs the family nothing.
            if loss > covered {
                Ok(FeedRow::Cost {
                    person,
                    kind,
                    date,
                    amount: loss.checked_sub(covered).expect("loss > covered"),
                })
            } else {
                Ok(FeedRow::NotCounted { person, date })
            }
        }
        FeedKind::Employment => {
            let date = date(1)?;
            let text = decode(get(2), encoding)
                .ok_or_else(|| RowError::at(columns[2].name, RowProblem::BadEncoding))?;
            EmploymentEvent::parse(text.trim().to_lowercase().as_str())
                .ok_or_else(|| RowError::at(columns[2].name, RowProblem::BadEvent))?;
            let lost = amount(3)?;
            // 收入下降: the income the household lost counts toward the
            // income-drop screening, dated to the event.
            if lost > Fen::ZERO {
                Ok(FeedRow::Cost {
                    person,
                    kind: ReliefKind::IncomeDrop,
                    date,
                    amount: lost,
                })
            } else {
                Ok(FeedRow::NotCounted { person, date })
            }
        }
        FeedKind::CivilAffairs => {
            let text = decode(get(1), encoding)
                .ok_or_else(|| RowError::at(columns[1].name, RowProblem::BadEncoding))?;
            let status = CivilStatus::parse(text.trim().to_lowercase().as_str())
                .ok_or_else(|| RowError::at(columns[1].name, RowProblem::BadStatus))?;
            let income_per_capita = amount(2)?;
            let verified_on = date(3)?;
            Ok(FeedRow::Status {
                person,
                status,
                income_per_capita,
                verified_on,
            })
        }
    }
}

/// Decodes a header row in the file's encoding.
pub fn decode_header<'r>(
    encoding: &'static Encoding,
    fields: impl Iterator<Item = &'r [u8]>,
) -> Option<Vec<String>> {
    fields
        .map(|f| decode(f, encoding).map(|s| s.into_owned()))
        .collect()
}

fn decode<'a>(bytes: &'a [u8], encoding: &'static Encoding) -> Option<std::borrow::Cow<'a, str>> {
    encoding.decode_without_bom_handling_and_without_replacement(bytes)
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

fn parse_flag(bytes: &[u8], encoding: &'static Encoding) -> Option<bool> {
    match bytes {
        b"1" | b"Y" | b"y" | b"true" | b"TRUE" => return Some(true),
        b"0" | b"N" | b"n" | b"false" | b"FALSE" => return Some(false),
        _ => {}
    }
    match decode(bytes, encoding)?.as_ref() {
        "是" => Some(true),
        "否" => Some(false),
        _ => None,
    }
}

/// YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD: the three forms government exports use.
pub fn parse_date(bytes: &[u8]) -> Option<NaiveDate> {
    let digits = |s: &[u8]| -> Option<u32> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            s.iter()
                .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0')),
        )
    };
    let (y, m, d) = match bytes.len() {
        10 if (bytes[4] == b'-' && bytes[7] == b'-') || (bytes[4] == b'/' && bytes[7] == b'/') => {
            (&bytes[0..4], &bytes[5..7], &bytes[8..10])
        }
        8 => (&bytes[0..4], &bytes[4..6], &bytes[6..8]),
        _ => return None,
    };
    let year = i32::try_from(digits(y)?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(m)?, digits(d)?)
}

/// "2024-2025" or "2024": the school year starting in September 2024, to
/// which its fees are dated.
pub fn parse_school_year(bytes: &[u8]) -> Option<NaiveDate> {
    let year = |s: &[u8]| -> Option<i32> {
        if s.len() != 4 || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    let first = match bytes.len() {
        4 => year(bytes)?,
        9 if bytes[4] == b'-' => {
            let (a, b) = (year(&bytes[0..4])?, year(&bytes[5..9])?);
            if b != a + 1 {
                return None;
            }
            a
        }
        _ => return None,
    };
    NaiveDate::from_ymd_opt(first, 9, 1)
}

/// Enrolled persons → household index. Fx hashing: the keys are ID numbers
/// from government files, not attacker-chosen, and the lookup runs once per
/// feed row.
pub type PersonMap = rustc_hash::FxHashMap<PersonKey, u32>;

/// Row errors kept with their line numbers; every error is counted.
pub const MAX_KEPT_ROW_ERRORS: usize = 1_000;

/// What one household's accepted civil-affairs rows say; the latest wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRecord {
    pub status: CivilStatus,
    pub income_per_capita: Fen,
    pub verified_on: NaiveDate,
}

/// Folds a feed's rows into per-household monthly costs, counting and
/// keeping the first errors. Its memory is bounded by the enrolled
/// households (× relief kinds × the years in `accepted_dates`), never by the
/// number of rows: that is what lets a ten-million-row file stream through.
pub struct FeedAggregator<'a> {
    layout: FeedLayout,
    encoding: &'static Encoding,
    persons: &'a PersonMap,
    accepted_dates: (NaiveDate, NaiveDate),
    pub rows_total: u64,
    pub rows_accepted: u64,
    pub rows_not_counted: u64,
    pub rejected: std::collections::BTreeMap<&'static str, u64>,
    /// (line, error) of the first `MAX_KEPT_ROW_ERRORS` rejected rows.
    pub errors: Vec<(u64, RowError)>,
    /// (household index, kind, year) → twelve months of fen.
    pub costs: rustc_hash::FxHashMap<(u32, ReliefKind, i32), [Fen; 12]>,
    /// (household index, calendar year) → the year's latest verification:
    /// income drop compares a year's income with earlier years'.
    pub statuses: rustc_hash::FxHashMap<(u32, i32), StatusRecord>,
    /// Per relief kind, in `ReliefKind::ALL` order (a map lookup per row
    /// would cost more than the addition).
    totals: [Fen; ReliefKind::ALL.len()],
    touched: Vec<bool>,
}

impl<'a> FeedAggregator<'a> {
    /// `persons` maps every enrolled person to a household index below
    /// `households`; rows dated outside `accepted_dates` (inclusive) are
    /// refused, which also bounds how many years a household's costs span.
    pub fn new(
        layout: FeedLayout,
        encoding: &'static Encoding,
        persons: &'a PersonMap,
        households: usize,
        accepted_dates: (NaiveDate, NaiveDate),
    ) -> FeedAggregator<'a> {
        assert!(
            accepted_dates.0 <= accepted_dates.1,
            "an empty date range accepts nothing"
        );
        FeedAggregator {
            layout,
            encoding,
            persons,
            accepted_dates,
            rows_total: 0,
            rows_accepted: 0,
            rows_not_counted: 0,
            rejected: std::collections::BTreeMap::new(),
            errors: Vec::new(),
            costs: rustc_hash::FxHashMap::default(),
            statuses: rustc_hash::FxHashMap::default(),
            totals: [Fen::ZERO; ReliefKind::ALL.len()],
            touched: vec![false; households],
        }
    }

    /// Takes one data row. `line` gives its 1-based line in the file and is
    /// called only when the row is rejected: counting lines costs a pass over
    /// the bytes, which only bad rows need.
    pub fn row<'r>(
        &mut self,
        line: impl FnOnce() -> u64,
        fields: usize,
        field: impl Fn(usize) -> &'r [u8],
    ) {
        self.rows_total += 1;
        match self.accept(fields, field) {
            Ok(()) => self.rows_accepted += 1,
            Err(error) => self.reject(line(), error),
        }
    }

    /// Counts a row the CSV reader itself could not read.
    pub fn reject(&mut self, line: u64, error: RowError) {
        *self.rejected.entry(error.problem.code()).or_insert(0) += 1;
        if self.errors.len() < MAX_KEPT_ROW_ERRORS {
            self.errors.push((line, error));
        }
    }

    /// A row the CSV reader could not split into fields.
    pub fn unreadable(&mut self, line: u64) {
        self.rows_total += 1;
        self.reject(
            line,
            RowError::at("", RowProblem::Inconsistent("the CSV row cannot be read")),
        );
    }

    fn accept<'r>(
        &mut self,
        fields: usize,
        field: impl Fn(usize) -> &'r [u8],
    ) -> Result<(), RowError> {
        let row = parse_row(&self.layout, self.encoding, fields, field)?;
        let household = *self
            .persons
            .get(&row.person())
            .ok_or_else(|| RowError::at("id_number", RowProblem::UnknownPerson))?;
        let date = row.date();
        let (first, last) = self.accepted_dates;
        if date < first || date > last {
            let field = self.layout.kind.columns()[1].name;
            return Err(RowError::at(
                if self.layout.kind == FeedKind::CivilAffairs {
                    "verified_on"
                } else {
                    field
                },
                RowProblem::OutOfRange(date, format!("{first} to {last}")),
            ));
        }
        match row {
            FeedRow::Cost { kind, amount, .. } => {
                let month = YearMonth::of(date);
                let cell = self
                    .costs
                    .entry((household, kind, month.year))
                    .or_insert([Fen::ZERO; 12]);
                let slot = &mut cell[usize::try_from(month.month - 1).expect("1..=12")];
                let total = &mut self.totals[kind.index()];
                match (slot.checked_add(amount), total.checked_add(amount)) {
                    (Some(s), Some(t)) => {
                        *slot = s;
                        *total = t;
                    }
                    _ => {
                        return Err(RowError::at(
                            "",
                            RowProblem::Inconsistent("the household's monthly total overflows"),
                        ));
                    }
                }
            }
            FeedRow::NotCounted { .. } => self.rows_not_counted += 1,
            FeedRow::Status {
                status,
                income_per_capita,
                verified_on,
                ..
            } => {
                let record = StatusRecord {
                    status,
                    income_per_capita,
                    verified_on,
                };
                // The year's latest verification wins; on the same day, the
                // later row.
                let slot = self
                    .statuses
                    .entry((household, verified_on.year()))
                    .or_insert(record);
                if record.verified_on >= slot.verified_on {
                    *slot = record;
                }
            }
        }
        self.touched[usize::try_from(household).expect("u32 fits usize")] = true;
        Ok(())
    }

    pub fn households_touched(&self) -> u64 {
        self.touched.iter().filter(|t| **t).count() as u64
    }

    pub fn rows_rejected(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// The accepted costs per relief kind, for kinds that had any.
    pub fn totals(&self) -> Vec<(ReliefKind, Fen)> {
        ReliefKind::ALL
            .into_iter()
            .zip(self.totals)
            .filter(|(_, fen)| *fen != Fen::ZERO)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ResidentId;

    fn id(n: u32) -> String {
        ResidentId::from_first17(&format!("13042319800101{n:03}"))
            .unwrap()
            .as_str()
            .to_string()
    }

    fn layout(kind: FeedKind, header: &str) -> FeedLayout {
        let header: Vec<String> = header.split(',').map(String::from).collect();
        FeedLayout::from_header(kind, &header).unwrap()
    }

    fn row(layout: &FeedLayout, line: &str) -> Result<FeedRow, RowError> {
        let fields: Vec<&[u8]> = line.split(',').map(str::as_bytes).collect();
        parse_row(layout, encoding_rs::UTF_8, fields.len(), |i| fields[i])
    }

    #[test]
    fn medical_counts_inpatient_out_of_pocket_only() {
        let l = layout(
            FeedKind::Medical,
            "身份证号,结算日期,是否住院,医疗总费用,报销金额,个人自付,医院",
        );
        let a = id(1);
        match row(
            &l,
            &format!("{a},2024-03-05,是,1000.00,600.00,400.50,某医院"),
        )
        .unwrap()
        {
            FeedRow::Cost { kind, amount, .. } => {
                assert_eq!(kind, ReliefKind::Illness);
                assert_eq!(amount, Fen::new(40_050));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            row(&l, &format!("{a},20240305,0,1000,600,400,x")).unwrap(),
            FeedRow::NotCounted { .. }
        ));
        let e = row(&l, &format!("{a},2024-03-05,1,100,10,200,x")).unwrap_err();
        assert_eq!(
            (e.field, e.problem.code()),
            ("out_of_pocket", "inconsistent")
        );
        let e = row(&l, &format!("{a},2024-03-05,1,abc,10,20,x")).unwrap_err();
        assert_eq!((e.field, e.problem.code()), ("total_cost", "bad_amount"));
        let e = row(&l, &format!("{a},2024-02-30,1,100,10,20,x")).unwrap_err();
        assert_eq!((e.field, e.problem.code()), ("settlement_date", "bad_date"));
        let mut bad = a.clone();
        bad.replace_range(17..18, if a.ends_with('0') { "1" } else { "0" });
        let e = row(&l, &format!("{bad},2024-03-05,1,100,10,20,x")).unwrap_err();
        assert_eq!((e.field, e.problem.code()), ("id_number", "bad_id"));
        let e = row(&l, &format!("{a},2024-03-05,1,100,10")).unwrap_err();
        assert_eq!(e.problem.code(), "field_count");
    }

    #[test]
    fn header_names_missing_and_duplicate_columns() {
        let header: Vec<String> = ["id_number", "loss_date", "loss"]
            .map(String::from)
            .to_vec();
        let e = FeedLayout::from_header(FeedKind::Accident, &header).unwrap_err();
        assert!(matches!(
            e,
            HeaderError::Missing {
                name: "insurance_paid",
                ..
            }
        ));
        let header: Vec<String> = [
            "\u{feff}ID_Number ",
            "身份证号",
            "学年",
            "学费",
            "住宿费",
            "教材费",
        ]
        .map(String::from)
        .to_vec();
        let e = FeedLayout::from_header(FeedKind::Education, &header).unwrap_err();
        assert_eq!(e, HeaderError::Duplicate("id_number"));
    }

    #[test]
    fn losses_count_after_insurance_and_assistance() {
        let l = layout(
            FeedKind::Industry,
            "id_number,loss_date,loss,insurance_paid,assistance_paid",
        );
        let a = id(2);
        match row(&l, &format!("{a},2024/07/01,30000,12000,3000")).unwrap() {
            FeedRow::Cost { kind, amount, .. } => {
                assert_eq!(kind, ReliefKind::Industry);
                assert_eq!(amount, Fen::from_yuan(15_000));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            row(&l, &format!("{a},2024/07/01,30000,30000,3000")).unwrap(),
            FeedRow::NotCounted { .. }
        ));
    }

    #[test]
    fn education_is_dated_to_september_of_the_school_year() {
        let l = layout(FeedKind::Education, "学生身份证号,学年,学费,住宿费,教材费");
        match row(&l, &format!("{},2024-2025,5000,2000,1000.5", id(3))).unwrap() {
            FeedRow::Cost { date, amount, .. } => {
                assert_eq!(date, NaiveDate::from_ymd_opt(2024, 9, 1).unwrap());
                assert_eq!(amount, Fen::new(800_050));
            }
            other => panic!("{other:?}"),
        }
        let e = row(&l, &format!("{},2024-2026,1,1,1", id(3))).unwrap_err();
        assert_eq!(e.problem.code(), "bad_school_year");
    }

    #[test]
    fn education_entry_stage_marks_school_entry() {
        let l = layout(
            FeedKind::Education,
            "学生身份证号,学年,学费,住宿费,教材费,入学学段",
        );
        let kind = |line: String| match row(&l, &line).unwrap() {
            FeedRow::Cost { kind, .. } => kind,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            kind(format!("{},2024,5000,0,0,高中", id(3))),
            ReliefKind::SchoolEntry
        );
        assert_eq!(
            kind(format!("{},2024,5000,0,0,university", id(3))),
            ReliefKind::SchoolEntry
        );
        assert_eq!(
            kind(format!("{},2024,5000,0,0,", id(3))),
            ReliefKind::Schooling
        );
        let e = row(&l, &format!("{},2024,5000,0,0,kindergarten", id(3))).unwrap_err();
        assert_eq!((e.field, e.problem.code()), ("entry_stage", "bad_stage"));
        // Files without the column read as before: schooling.
        let old = layout(FeedKind::Education, "学生身份证号,学年,学费,住宿费,教材费");
        assert!(matches!(
            row(&old, &format!("{},2024,5000,0,0", id(3))).unwrap(),
            FeedRow::Cost {
                kind: ReliefKind::Schooling,
                ..
            }
        ));
    }

    #[test]
    fn employment_reports_income_lost() {
        let l = layout(FeedKind::Employment, "身份证号,登记日期,事由,减少年收入");
        match row(&l, &format!("{},2024-04-02,失业登记,36000", id(3))).unwrap() {
            FeedRow::Cost {
                kind, amount, date, ..
            } => {
                assert_eq!(kind, ReliefKind::IncomeDrop);
                assert_eq!(amount, Fen::from_yuan(36_000));
                assert_eq!(date, NaiveDate::from_ymd_opt(2024, 4, 2).unwrap());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            row(&l, &format!("{},2024-04-02,earner_lost,0", id(3))).unwrap(),
            FeedRow::NotCounted { .. }
        ));
        let e = row(&l, &format!("{},2024-04-02,retired,100", id(3))).unwrap_err();
        assert_eq!(e.problem.code(), "bad_event");
    }

    #[test]
    fn civil_affairs_reads_gbk_status() {
        let l = layout(
            FeedKind::CivilAffairs,
            "id_number,status,per_capita_income,verified_on",
        );
        let a = id(4);
        let (status, _, _) = encoding_rs::GBK.encode("低保");
        let fields: Vec<Vec<u8>> = vec![
            a.into_bytes(),
            status.into_owned(),
            b"5200.00".to_vec(),
            b"2024-06-30".to_vec(),
        ];
        let r = parse_row(&l, encoding_rs::GBK, 4, |i| &fields[i]).unwrap();
        assert!(matches!(
            r,
            FeedRow::Status {
                status: CivilStatus::Dibao,
                ..
            }
        ));
    }

    #[test]
    fn aggregator_sums_months_counts_every_error_and_keeps_the_first() {
        let l = layout(
            FeedKind::Medical,
            "id_number,settlement_date,inpatient,total_cost,reimbursed,out_of_pocket",
        );
        let mut persons = PersonMap::default();
        persons.insert(PersonKey::parse_bytes(id(1).as_bytes()).unwrap(), 0u32);
        persons.insert(PersonKey::parse_bytes(id(2).as_bytes()).unwrap(), 0u32);
        let range = (
            NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
        );
        let mut agg = FeedAggregator::new(l, encoding_rs::UTF_8, &persons, 1, range);
        let lines = [
            format!("{},2024-03-05,1,1000,600,400", id(1)),
            format!("{},2024-03-20,1,1000,900,100.5", id(2)),
            format!("{},2024-03-20,0,1000,900,100", id(2)),
            format!("{},2024-03-20,1,1000,900,100", id(3)),
            format!("{},2022-12-31,1,1000,900,100", id(1)),
            "garbage".to_string(),
        ];
        for (i, line) in lines.iter().enumerate() {
            let fields: Vec<&[u8]> = line.split(',').map(str::as_bytes).collect();
            agg.row(|| i as u64 + 2, fields.len(), |f| fields[f]);
        }
        assert_eq!(
            (agg.rows_total, agg.rows_accepted, agg.rows_not_counted),
            (6, 3, 1)
        );
        assert_eq!(agg.rows_rejected(), 3);
        let codes: Vec<(u64, &str)> = agg
            .errors
            .iter()
            .map(|(l, e)| (*l, e.problem.code()))
            .collect();
        assert_eq!(
            codes,
            vec![
                (5, "unknown_person"),
                (6, "out_of_range"),
                (7, "field_count")
            ]
        );
        let march = agg.costs[&(0, ReliefKind::Illness, 2024)][2];
        assert_eq!(march, Fen::new(50_050));
        assert_eq!(agg.households_touched(), 1);
    }

    proptest::proptest! {
        /// The allocation-free key agrees with the careful parser on every input.
        #[test]
        fn person_key_agrees_with_resident_id(first in "[0-9]{17}", last in "[0-9Xx]") {
            let text = format!("{first}{last}");
            let careful = ResidentId::parse(&text).map(|id| PersonKey::of(&id));
            proptest::prop_assert_eq!(PersonKey::parse_bytes(text.as_bytes()), careful);
        }
    }

    #[test]
    fn year_month_index_round_trips() {
        for index in [0i64, 11, 12, 24_287, 24_300] {
            assert_eq!(YearMonth::from_index(index).index(), index);
        }
        let m = YearMonth::of(NaiveDate::from_ymd_opt(2024, 12, 31).unwrap());
        assert_eq!(YearMonth::from_index(m.index() + 1).to_string(), "2025-01");
    }
}
