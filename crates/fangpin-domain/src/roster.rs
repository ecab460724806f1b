//! A county's roster (花名册): the insured pool as the national monitoring
//! system exports it, one row per person, the rows of a household together.
//!
//! This module checks rows and puts households together; reading the file
//! (CSV in UTF-8 or GBK, or XLSX) and enrolling what it accepts are the
//! server's. The same rows in the same order always give the same
//! households and the same errors, which is what lets the server check the
//! whole file before it takes the county's lock and read it again under
//! the lock to enrol, without keeping the households in memory between.

use std::collections::{HashMap, HashSet};

use crate::feeds::HeaderError;
use crate::identity::{CountyCode, IdError, PersonKey, Relation, ResidentId, VillageCode};
use crate::policy::HouseholdType;

/// Most persons one household may enrol; larger families are split by the
/// village (the same bound as one EnrollHousehold call).
pub const MAX_HOUSEHOLD_PERSONS: usize = 30;
/// Longest household number (户编号) kept; the national system's are 16 to
/// 20 digits.
pub const MAX_HOUSEHOLD_NO_CHARS: usize = 40;
/// Longest name (display text).
pub const MAX_NAME_CHARS: usize = 200;
/// Most columns a roster's header may have; exports carry 20 to 40.
pub const MAX_COLUMNS: usize = 256;
/// Most data rows in one roster: a province's pool fits with room to spare.
pub const MAX_ROWS: u64 = 5_000_000;

/// A roster column this module reads. Other columns are allowed and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// 户编号: the same for every person of a household.
    HouseholdNo,
    /// 村代码: the twelve-digit village code.
    VillageCode,
    /// 户类型 / 监测对象类别.
    HouseholdType,
    /// 姓名.
    Name,
    /// 证件号码.
    IdNumber,
    /// 与户主关系.
    Relation,
    /// 一卡通账号: the household's subsidy card, on the head's row.
    BankAccount,
}

impl Column {
    pub const ALL: [Column; 7] = [
        Column::HouseholdNo,
        Column::VillageCode,
        Column::HouseholdType,
        Column::Name,
        Column::IdNumber,
        Column::Relation,
        Column::BankAccount,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Column::HouseholdNo => "household_no",
            Column::VillageCode => "village_code",
            Column::HouseholdType => "household_type",
            Column::Name => "name",
            Column::IdNumber => "id_number",
            Column::Relation => "relation",
            Column::BankAccount => "bank_account",
        }
    }

    /// The headers the monitoring system's exports use for the column.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Column::HouseholdNo => &["户编号", "户号"],
            Column::VillageCode => &["村代码", "村(社区)代码", "行政区划代码"],
            Column::HouseholdType => &["户类型", "监测对象类别", "监测对象类型"],
            Column::Name => &["姓名"],
            Column::IdNumber => &["证件号码", "身份证号", "身份证号码"],
            Column::Relation => &["与户主关系"],
            Column::BankAccount => &["一卡通账号", "银行账号", "银行卡号"],
        }
    }
}

/// Where each column is in the file's rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterLayout {
    at: [usize; 7],
}

impl RosterLayout {
    /// Finds the columns in a decoded header by canonical name or alias,
    /// ignoring spaces around and a UTF-8 byte-order mark.
    pub fn from_header(header: &[String]) -> Result<RosterLayout, HeaderError> {
        if header.len() > MAX_COLUMNS {
            return Err(HeaderError::TooWide(header.len()));
        }
        let mut at = [usize::MAX; 7];
        for (i, name) in header.iter().enumerate() {
            let name = name.trim_start_matches('\u{feff}').trim();
            let Some(column) = Column::ALL
                .into_iter()
                .find(|c| c.as_str() == name || c.aliases().contains(&name))
            else {
                continue;
            };
            let slot = &mut at[column as usize];
            if *slot != usize::MAX {
                return Err(HeaderError::Duplicate(column.as_str()));
            }
            *slot = i;
        }
        for column in Column::ALL {
            if at[column as usize] == usize::MAX {
                return Err(HeaderError::Missing {
                    name: column.as_str(),
                    aliases: column.aliases().join(", "),
                });
            }
        }
        Ok(RosterLayout { at })
    }

    pub fn index(&self, column: Column) -> usize {
        self.at[column as usize]
    }
}

/// Rows an export may put above its header (a title such as
/// "涉县2026年防贫保花名册", the date it was printed) before the header row.
pub const MAX_TITLE_ROWS: u32 = 5;

/// Finds the header among a file's first rows: exports put a title or two
/// above it. The first row that names every column is the header; the
/// rows before it are titles, not data.
#[derive(Debug, Default)]
pub struct HeaderSearch {
    tried: u32,
    first_error: Option<HeaderError>,
}

impl HeaderSearch {
    /// Offers the next row. `Ok(None)`: not the header, go on; `Err`: no
    /// header within [`MAX_TITLE_ROWS`] + 1 rows, with the first row's
    /// problem.
    pub fn offer(&mut self, names: &[String]) -> Result<Option<RosterLayout>, HeaderError> {
        self.tried += 1;
        match RosterLayout::from_header(names) {
            Ok(layout) => Ok(Some(layout)),
            Err(e) => {
                let first = self.first_error.get_or_insert(e).clone();
                if self.tried > MAX_TITLE_ROWS {
                    Err(first)
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// The file ended before a header: the first row's problem.
    pub fn give_up(self) -> Option<HeaderError> {
        self.first_error
    }
}

/// One cell as the file holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Text(&'a str),
    /// A spreadsheet number (XLSX). Exact only up to 2^53: an ID number or
    /// a bank account stored as a number has lost its last digits.
    Number(f64),
    /// Bytes not valid in the declared encoding, or a spreadsheet value of
    /// another type (a date, an error).
    Unreadable,
}

/// Why a row or a household was not enrolled. `code` is the stable name
/// clients count by; the message is for people.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the row has {got} fields; the header has at least {expected}")]
    FieldCount { expected: usize, got: usize },
    #[error("the cell is not valid in the file's encoding, or not text")]
    BadEncoding,
    #[error("this cell must not be empty")]
    Missing,
    #[error("{0}")]
    BadId(IdError),
    #[error("stored as a number, which keeps 15 digits: format the column as text")]
    NumberLosesDigits,
    #[error("the birth date {0} lies after the day of the import")]
    BornLater(chrono::NaiveDate),
    #[error("not a village code: {0}")]
    BadVillage(String),
    #[error("the village is not in county {0}")]
    VillageOutsideCounty(String),
    #[error(
        "not a household type (unstable_escaped/脱贫不稳定户, marginal/边缘易致贫户, \
         sudden_severe_difficulty/突发严重困难户)"
    )]
    BadHouseholdType,
    #[error("not a relation (户主, 配偶, 子女, 父母, 祖父母, 孙子女, 兄弟姐妹, 儿媳, 女婿, 其他)")]
    BadRelation,
    #[error("{0}")]
    BadText(String),
    #[error("the bank account must be 8 to 32 digits")]
    BadAccount,
    #[error("the household has no row whose relation is 户主 (head)")]
    NoHead,
    #[error("the household has more than one head (户主)")]
    TwoHeads,
    #[error("the head's row has no bank account (一卡通账号)")]
    NoAccount,
    #[error("a household enrols at most {MAX_HOUSEHOLD_PERSONS} persons")]
    TooLarge,
    #[error("{0} differs from the household's first row")]
    Inconsistent(&'static str),
    #[error("the rows of household {0} are not together: it also appears from line {1}")]
    SplitHousehold(String, u64),
    #[error("the same person appears on line {0}")]
    DuplicatePerson(u64),
    #[error("the person is already insured for this policy year")]
    AlreadyInsured,
}

impl Problem {
    pub fn code(&self) -> &'static str {
        match self {
            Problem::FieldCount { .. } => "field_count",
            Problem::BadEncoding => "bad_encoding",
            Problem::Missing => "missing",
            Problem::BadId(_) | Problem::BornLater(_) => "bad_id",
            Problem::NumberLosesDigits => "number_not_text",
            Problem::BadVillage(_) | Problem::VillageOutsideCounty(_) => "bad_village",
            Problem::BadHouseholdType => "bad_household_type",
            Problem::BadRelation => "bad_relation",
            Problem::BadText(_) => "bad_text",
            Problem::BadAccount => "bad_account",
            Problem::NoHead => "no_head",
            Problem::TwoHeads => "two_heads",
            Problem::NoAccount => "no_account",
            Problem::TooLarge => "too_large",
            Problem::Inconsistent(_) => "inconsistent",
            Problem::SplitHousehold(..) => "split_household",
            Problem::DuplicatePerson(_) => "duplicate_person",
            Problem::AlreadyInsured => "already_insured",
        }
    }
}

/// A problem at a line of the file, in a column (empty: the whole row or
/// household), of a household (its number as written, when readable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub field: &'static str,
    pub household_no: String,
    pub problem: Problem,
}

/// A person of a household, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterPerson {
    pub line: u64,
    pub id: ResidentId,
    pub name: String,
    pub relation: Relation,
}

/// A household put together from its rows, the head first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterHousehold {
    pub household_no: String,
    /// The line of its first row.
    pub line: u64,
    pub village: VillageCode,
    pub household_type: HouseholdType,
    pub bank_account: String,
    pub persons: Vec<RosterPerson>,
}

/// What a household's rows came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assembled {
    Accepted(RosterHousehold),
    /// Not enrolled; `rows` of its rows were read, `errors` say why.
    Rejected {
        household_no: String,
        rows: u64,
        errors: Vec<RowError>,
    },
}

/// A row that passed its own checks, waiting for the rest of its household.
struct CheckedRow {
    line: u64,
    village: VillageCode,
    household_type: HouseholdType,
    person: RosterPerson,
    bank_account: Option<String>,
}

/// The household being read: every row with its number until another
/// number starts.
struct OpenHousehold {
    household_no: String,
    line: u64,
    rows: u64,
    checked: Vec<CheckedRow>,
    errors: Vec<RowError>,
}

/// Puts a roster's rows together into households, in file order.
///
/// A household is accepted only whole: a bad row rejects its household, so
/// nobody is enrolled without the rest of their family. `insured` answers
/// whether a person is already insured for the year (in any county: a
/// person is insured once); the server backs it with the keyed hashes of
/// the year's persons.
pub struct RosterAssembler<'a> {
    layout: RosterLayout,
    county: CountyCode,
    today: chrono::NaiveDate,
    insured: &'a (dyn Fn(&ResidentId) -> bool + Sync),
    open: Option<OpenHousehold>,
    /// Every household number met, with the line its rows started on:
    /// bounded by the households of the file, which the pool bounds.
    seen_households: HashMap<String, u64>,
    /// Every person of an accepted household, with their line.
    seen_persons: HashMap<PersonKey, u64>,
    /// Households whose rows turned up again after another household: they
    /// are rejected whole, so the caller sets aside the part it was given.
    split: HashSet<String>,
    pub rows: u64,
}

impl<'a> RosterAssembler<'a> {
    pub fn new(
        layout: RosterLayout,
        county: CountyCode,
        today: chrono::NaiveDate,
        insured: &'a (dyn Fn(&ResidentId) -> bool + Sync),
    ) -> RosterAssembler<'a> {
        RosterAssembler {
            layout,
            county,
            today,
            insured,
            open: None,
            seen_households: HashMap::new(),
            seen_persons: HashMap::new(),
            split: HashSet::new(),
            rows: 0,
        }
    }

    /// Reads one data row at `line`. Returns the household that ended
    /// before it, if this row starts another.
    pub fn row(&mut self, line: u64, cells: &[Cell<'_>]) -> Option<Assembled> {
        self.rows += 1;
        let cell = |c: Column| cells.get(self.layout.index(c)).copied();
        let household_no = match cell(Column::HouseholdNo) {
            Some(Cell::Text(t)) => t.trim().to_string(),
            Some(Cell::Number(n)) => integer(n).unwrap_or_default(),
            _ => String::new(),
        };
        let ended = match &self.open {
            Some(open) if open.household_no == household_no => None,
            _ => self.close(),
        };
        if self.open.is_none() {
            let mut open = OpenHousehold {
                household_no: household_no.clone(),
                line,
                rows: 0,
                checked: Vec::new(),
                errors: Vec::new(),
            };
            if let Some(&first) = self.seen_households.get(&household_no)
                && !household_no.is_empty()
            {
                self.split.insert(household_no.clone());
                open.errors.push(RowError {
                    line,
                    field: Column::HouseholdNo.as_str(),
                    household_no: household_no.clone(),
                    problem: Problem::SplitHousehold(household_no.clone(), first),
                });
            } else {
                self.seen_households.insert(household_no.clone(), line);
            }
            self.open = Some(open);
        }
        let checked = self.check_row(line, &household_no, cells);
        let open = self.open.as_mut().expect("opened above");
        open.rows += 1;
        match checked {
            Ok(row) if open.checked.len() < MAX_HOUSEHOLD_PERSONS => open.checked.push(row),
            Ok(_) => {
                if !open.errors.iter().any(|e| e.problem == Problem::TooLarge) {
                    open.errors.push(RowError {
                        line,
                        field: "",
                        household_no,
                        problem: Problem::TooLarge,
                    });
                }
            }
            Err(mut errors) => open.errors.append(&mut errors),
        }
        ended
    }

    /// Ends the file: the last household.
    pub fn finish(&mut self) -> Option<Assembled> {
        self.close()
    }

    /// Households met in more than one run of rows. Their runs before the
    /// one that showed it were handed out as they ended; the caller must
    /// not enrol those.
    pub fn split_households(&self) -> &HashSet<String> {
        &self.split
    }

    fn check_row(
        &self,
        line: u64,
        household_no: &str,
        cells: &[Cell<'_>],
    ) -> Result<CheckedRow, Vec<RowError>> {
        let mut errors = Vec::new();
        let mut bad = |column: Column, problem: Problem| {
            errors.push(RowError {
                line,
                field: column.as_str(),
                household_no: household_no.to_string(),
                problem,
            })
        };
        let needed = Column::ALL
            .into_iter()
            .map(|c| self.layout.index(c) + 1)
            .max()
            .expect("seven columns");
        if cells.len() < needed {
            return Err(vec![RowError {
                line,
                field: "",
                household_no: household_no.to_string(),
                problem: Problem::FieldCount {
                    expected: needed,
                    got: cells.len(),
                },
            }]);
        }
        let at = |c: Column| cells[self.layout.index(c)];
        if household_no.is_empty() {
            bad(Column::HouseholdNo, Problem::Missing);
        } else if household_no.chars().count() > MAX_HOUSEHOLD_NO_CHARS {
            bad(
                Column::HouseholdNo,
                Problem::BadText(format!("at most {MAX_HOUSEHOLD_NO_CHARS} characters")),
            );
        }
        let village = match text_or_integer(at(Column::VillageCode)) {
            Err(p) => {
                bad(Column::VillageCode, p);
                None
            }
            Ok(code) => match VillageCode::parse(&code) {
                Err(e) => {
                    bad(Column::VillageCode, Problem::BadVillage(e.to_string()));
                    None
                }
                Ok(v) if v.county() != self.county => {
                    bad(
                        Column::VillageCode,
                        Problem::VillageOutsideCounty(self.county.as_str().to_string()),
                    );
                    None
                }
                Ok(v) => Some(v),
            },
        };
        let household_type = match text(at(Column::HouseholdType)) {
            Err(p) => {
                bad(Column::HouseholdType, p);
                None
            }
            Ok(t) => {
                let parsed = household_type(t);
                if parsed.is_none() {
                    bad(Column::HouseholdType, Problem::BadHouseholdType);
                }
                parsed
            }
        };
        let name = match text(at(Column::Name)) {
            Err(p) => {
                bad(Column::Name, p);
                None
            }
            Ok(name) => {
                if let Some(problem) = crate::text::display_text_problem(name) {
                    bad(Column::Name, Problem::BadText(problem));
                    None
                } else if name.chars().count() > MAX_NAME_CHARS {
                    bad(
                        Column::Name,
                        Problem::BadText(format!("at most {MAX_NAME_CHARS} characters")),
                    );
                    None
                } else {
                    Some(name.to_string())
                }
            }
        };
        let id = match at(Column::IdNumber) {
            Cell::Number(_) => {
                bad(Column::IdNumber, Problem::NumberLosesDigits);
                None
            }
            cell => match text(cell) {
                Err(p) => {
                    bad(Column::IdNumber, p);
                    None
                }
                Ok(t) => match ResidentId::parse(t) {
                    Err(e) => {
                        bad(Column::IdNumber, Problem::BadId(e));
                        None
                    }
                    Ok(id) if id.birth_date() > self.today => {
                        bad(Column::IdNumber, Problem::BornLater(id.birth_date()));
                        None
                    }
                    Ok(id) => Some(id),
                },
            },
        };
        let relation = match text(at(Column::Relation)) {
            Err(p) => {
                bad(Column::Relation, p);
                None
            }
            Ok(t) => {
                let parsed = Relation::parse(t);
                if parsed.is_none() {
                    bad(Column::Relation, Problem::BadRelation);
                }
                parsed
            }
        };
        let bank_account = match at(Column::BankAccount) {
            Cell::Empty => None,
            Cell::Text(t) if t.trim().is_empty() => None,
            Cell::Number(_) => {
                bad(Column::BankAccount, Problem::NumberLosesDigits);
                None
            }
            Cell::Unreadable => {
                bad(Column::BankAccount, Problem::BadEncoding);
                None
            }
            Cell::Text(t) => {
                let account = t.trim();
                if (8..=32).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_digit())
                {
                    Some(account.to_string())
                } else {
                    bad(Column::BankAccount, Problem::BadAccount);
                    None
                }
            }
        };
        match (village, household_type, name, id, relation) {
            (Some(village), Some(household_type), Some(name), Some(id), Some(relation))
                if errors.is_empty() =>
            {
                Ok(CheckedRow {
                    line,
                    village,
                    household_type,
                    person: RosterPerson {
                        line,
                        id,
                        name,
                        relation,
                    },
                    bank_account,
                })
            }
            _ => Err(errors),
        }
    }

    /// Ends the open household: checks it as a whole and hands it out.
    fn close(&mut self) -> Option<Assembled> {
        let open = self.open.take()?;
        let mut errors = open.errors;
        let household_no = open.household_no;
        let whole = |problem: Problem| RowError {
            line: open.line,
            field: "",
            household_no: household_no.clone(),
            problem,
        };
        // Household-wide checks only mean something when every row read.
        if errors.is_empty() {
            let heads: Vec<&CheckedRow> = open
                .checked
                .iter()
                .filter(|r| r.person.relation == Relation::Head)
                .collect();
            match heads.as_slice() {
                [] => errors.push(whole(Problem::NoHead)),
                [head] if head.bank_account.is_none() => errors.push(RowError {
                    line: head.line,
                    field: Column::BankAccount.as_str(),
                    household_no: household_no.clone(),
                    problem: Problem::NoAccount,
                }),
                [_] => {}
                [_, second, ..] => errors.push(RowError {
                    line: second.line,
                    field: Column::Relation.as_str(),
                    household_no: household_no.clone(),
                    problem: Problem::TwoHeads,
                }),
            }
            let first = &open.checked[0];
            for row in &open.checked[1..] {
                let differs = if row.village != first.village {
                    Some(Column::VillageCode)
                } else if row.household_type != first.household_type {
                    Some(Column::HouseholdType)
                } else {
                    None
                };
                if let Some(column) = differs {
                    errors.push(RowError {
                        line: row.line,
                        field: column.as_str(),
                        household_no: household_no.clone(),
                        problem: Problem::Inconsistent(column.as_str()),
                    });
                }
            }
            let mut here: HashMap<PersonKey, u64> = HashMap::new();
            for row in &open.checked {
                let key = PersonKey::of(&row.person.id);
                let earlier = here
                    .get(&key)
                    .or_else(|| self.seen_persons.get(&key))
                    .copied();
                if let Some(earlier) = earlier {
                    errors.push(RowError {
                        line: row.line,
                        field: Column::IdNumber.as_str(),
                        household_no: household_no.clone(),
                        problem: Problem::DuplicatePerson(earlier),
                    });
                } else if (self.insured)(&row.person.id) {
                    errors.push(RowError {
                        line: row.line,
                        field: Column::IdNumber.as_str(),
                        household_no: household_no.clone(),
                        problem: Problem::AlreadyInsured,
                    });
                }
                here.insert(key, row.line);
            }
        }
        if !errors.is_empty() {
            return Some(Assembled::Rejected {
                household_no,
                rows: open.rows,
                errors,
            });
        }
        let mut rows = open.checked;
        // The head first, the others in file order.
        let head = rows
            .iter()
            .position(|r| r.person.relation == Relation::Head)
            .expect("one head, checked");
        let head = rows.remove(head);
        for row in &rows {
            self.seen_persons
                .insert(PersonKey::of(&row.person.id), row.line);
        }
        self.seen_persons
            .insert(PersonKey::of(&head.person.id), head.line);
        let mut persons = Vec::with_capacity(rows.len() + 1);
        let (village, household_type) = (head.village.clone(), head.household_type);
        let bank_account = head.bank_account.clone().expect("checked");
        persons.push(head.person);
        persons.extend(rows.into_iter().map(|r| r.person));
        Some(Assembled::Accepted(RosterHousehold {
            household_no,
            line: open.line,
            village,
            household_type,
            bank_account,
            persons,
        }))
    }
}

/// What reading a whole roster learnt besides its households.
#[derive(Debug, Default)]
pub struct RosterRead {
    /// Data rows read (blank lines are none).
    pub rows: u64,
    /// Households whose rows were not together; see
    /// [`RosterAssembler::split_households`].
    pub split: HashSet<String>,
    /// The file has more than [`MAX_ROWS`] rows; those after were not read.
    pub too_many_rows: bool,
}

/// Reads a roster CSV (its chunks from `next`, in `encoding`) and hands
/// every household to `each` as its rows end, then a rejection of its own
/// for each record the CSV reader could not read.
pub fn read_csv(
    next: impl FnMut() -> Option<bytes::Bytes>,
    encoding: &'static encoding_rs::Encoding,
    county: CountyCode,
    today: chrono::NaiveDate,
    insured: &(dyn Fn(&ResidentId) -> bool + Sync),
    each: impl FnMut(Assembled),
) -> Result<RosterRead, crate::feed_reader::FeedError> {
    use crate::feed_reader::{FeedError, RecordSink, read_records};

    struct Sink<'i, E> {
        encoding: &'static encoding_rs::Encoding,
        county: CountyCode,
        today: chrono::NaiveDate,
        insured: &'i (dyn Fn(&ResidentId) -> bool + Sync),
        assembler: Option<RosterAssembler<'i>>,
        search: HeaderSearch,
        /// No header within the first rows: the file is not a roster.
        no_header: Option<HeaderError>,
        each: E,
        too_many_rows: bool,
    }
    impl<E> Sink<'_, E> {
        fn look_for_header(&mut self, names: &[String]) {
            match self.search.offer(names) {
                Ok(Some(layout)) => {
                    self.assembler = Some(RosterAssembler::new(
                        layout,
                        self.county.clone(),
                        self.today,
                        self.insured,
                    ))
                }
                Ok(None) => {}
                Err(e) => self.no_header = Some(e),
            }
        }
    }
    impl<E: FnMut(Assembled)> RecordSink for Sink<'_, E> {
        fn header(&mut self, header: &csv::ByteRecord) -> Result<(), FeedError> {
            let names = crate::feeds::decode_header(self.encoding, header.iter())
                .ok_or(FeedError::HeaderEncoding)?;
            self.look_for_header(&names);
            match self.no_header.take() {
                Some(e) => Err(FeedError::Header(e)),
                None => Ok(()),
            }
        }
        fn row(&mut self, line: &mut dyn FnMut() -> u64, record: &csv::ByteRecord) {
            if self.no_header.is_some() {
                return;
            }
            if self.assembler.is_none() {
                // Still above the header: a title row, or the header.
                let names =
                    crate::feeds::decode_header(self.encoding, record.iter()).unwrap_or_default();
                self.look_for_header(&names);
                return;
            }
            let assembler = self.assembler.as_mut().expect("the header was found");
            if assembler.rows >= MAX_ROWS {
                self.too_many_rows = true;
                return;
            }
            // Decoded first, then borrowed: GBK decodes into new strings.
            let owned: Vec<Option<std::borrow::Cow<'_, str>>> = record
                .iter()
                .map(|field| {
                    self.encoding
                        .decode_without_bom_handling_and_without_replacement(field)
                })
                .collect();
            let cells: Vec<Cell<'_>> = owned
                .iter()
                .map(|text| match text {
                    None => Cell::Unreadable,
                    Some(text) if text.trim().is_empty() => Cell::Empty,
                    Some(text) => Cell::Text(text),
                })
                .collect();
            if let Some(done) = assembler.row(line(), &cells) {
                (self.each)(done);
            }
        }
        fn unreadable(&mut self, line: u64) {
            if self.no_header.is_some() {
                return;
            }
            let Some(assembler) = self.assembler.as_mut() else {
                self.look_for_header(&[]);
                return;
            };
            assembler.rows += 1;
            (self.each)(Assembled::Rejected {
                household_no: String::new(),
                rows: 1,
                errors: vec![RowError {
                    line,
                    field: "",
                    household_no: String::new(),
                    problem: Problem::BadEncoding,
                }],
            });
        }
    }
    let mut sink = Sink {
        encoding,
        county,
        today,
        insured,
        assembler: None,
        search: HeaderSearch::default(),
        no_header: None,
        each,
        too_many_rows: false,
    };
    read_records(next, &mut sink)?;
    if let Some(e) = sink.no_header.take() {
        return Err(FeedError::Header(e));
    }
    let Some(mut assembler) = sink.assembler.take() else {
        return Err(match std::mem::take(&mut sink.search).give_up() {
            Some(e) => FeedError::Header(e),
            None => FeedError::NoHeader,
        });
    };
    if let Some(last) = assembler.finish() {
        (sink.each)(last);
    }
    Ok(RosterRead {
        rows: assembler.rows,
        split: std::mem::take(&mut assembler.split),
        too_many_rows: sink.too_many_rows,
    })
}

/// A household type as the register writes it, or its canonical name.
pub fn household_type(text: &str) -> Option<HouseholdType> {
    let text = text.trim();
    HouseholdType::parse(text).or(match text {
        "脱贫不稳定户" | "非高标准脱贫户" => Some(HouseholdType::UnstableEscaped),
        "边缘易致贫户" | "非贫低收入户" => Some(HouseholdType::Marginal),
        "突发严重困难户" => Some(HouseholdType::SuddenSevereDifficulty),
        _ => None,
    })
}

fn text<'c>(cell: Cell<'c>) -> Result<&'c str, Problem> {
    match cell {
        Cell::Text(t) if !t.trim().is_empty() => Ok(t.trim()),
        Cell::Empty | Cell::Text(_) => Err(Problem::Missing),
        Cell::Number(n) => Err(match integer(n) {
            Some(_) => Problem::BadText("a number where text is expected".into()),
            None => Problem::BadEncoding,
        }),
        Cell::Unreadable => Err(Problem::BadEncoding),
    }
}

/// A code cell: text, or a spreadsheet number that is a whole number held
/// exactly (a village code has twelve digits, well inside 2^53).
fn text_or_integer(cell: Cell<'_>) -> Result<String, Problem> {
    match cell {
        Cell::Number(n) => integer(n).ok_or(Problem::NumberLosesDigits),
        other => text(other).map(str::to_string),
    }
}

fn integer(n: f64) -> Option<String> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    (n.fract() == 0.0 && (0.0..EXACT).contains(&n)).then(|| format!("{}", n as u64))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const COUNTY: &str = "130426";
    const VILLAGE: &str = "130426100201";

    fn id(n: u32, year: u32) -> String {
        ResidentId::from_first17(&format!("130426{year}0101{n:03}"))
            .unwrap()
            .as_str()
            .to_string()
    }

    fn header() -> Vec<String> {
        [
            "户编号",
            "村代码",
            "户类型",
            "姓名",
            "证件号码",
            "与户主关系",
            "一卡通账号",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn assemble(
        rows: &[[&str; 7]],
        insured: &(dyn Fn(&ResidentId) -> bool + Sync),
    ) -> Vec<Assembled> {
        let layout = RosterLayout::from_header(&header()).unwrap();
        let mut a = RosterAssembler::new(
            layout,
            CountyCode::parse(COUNTY).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            insured,
        );
        let mut out = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<Cell> = row
                .iter()
                .map(|s| {
                    if s.is_empty() {
                        Cell::Empty
                    } else {
                        Cell::Text(s)
                    }
                })
                .collect();
            out.extend(a.row(i as u64 + 2, &cells));
        }
        out.extend(a.finish());
        out
    }

    fn codes(a: &Assembled) -> Vec<(u64, &'static str)> {
        match a {
            Assembled::Accepted(_) => vec![],
            Assembled::Rejected { errors, .. } => {
                errors.iter().map(|e| (e.line, e.problem.code())).collect()
            }
        }
    }

    #[test]
    fn puts_households_together_head_first() {
        let (a, b, c) = (id(1, 1970), id(2, 1972), id(3, 2000));
        let out = assemble(
            &[
                ["H1", VILLAGE, "边缘易致贫户", "李四", &b, "配偶", ""],
                [
                    "H1",
                    VILLAGE,
                    "边缘易致贫户",
                    "张三",
                    &a,
                    "户主",
                    "6217000011112222",
                ],
                [
                    "H2",
                    VILLAGE,
                    "unstable_escaped",
                    "王五",
                    &c,
                    "户主",
                    "6217000011113333",
                ],
            ],
            &|_| false,
        );
        assert_eq!(out.len(), 2);
        let Assembled::Accepted(h1) = &out[0] else {
            panic!("{:?}", out[0])
        };
        assert_eq!(h1.persons[0].name, "张三");
        assert_eq!(h1.persons[1].relation, Relation::Spouse);
        assert_eq!(h1.household_type, HouseholdType::Marginal);
        assert_eq!(h1.line, 2);
        assert!(matches!(&out[1], Assembled::Accepted(h) if h.persons.len() == 1));
    }

    #[test]
    fn a_bad_row_rejects_its_household_only() {
        let (a, b, c) = (id(1, 1970), id(2, 1972), id(3, 2000));
        let out = assemble(
            &[
                [
                    "H1",
                    VILLAGE,
                    "marginal",
                    "张三",
                    &a,
                    "户主",
                    "6217000011112222",
                ],
                [
                    "H1",
                    VILLAGE,
                    "marginal",
                    "李四",
                    "1304261972010100",
                    "配偶",
                    "",
                ],
                [
                    "H2",
                    VILLAGE,
                    "marginal",
                    "王五",
                    &c,
                    "户主",
                    "6217000011113333",
                ],
                ["H3", "130427100201", "marginal", "赵六", &b, "户主", "12"],
            ],
            &|_| false,
        );
        assert_eq!(codes(&out[0]), vec![(3, "bad_id")]);
        assert!(matches!(out[1], Assembled::Accepted(_)));
        assert_eq!(codes(&out[2]), vec![(5, "bad_village"), (5, "bad_account")]);
    }

    #[test]
    fn household_checks() {
        let ids: Vec<String> = (1..=8).map(|n| id(n, 1980)).collect();
        let out = assemble(
            &[
                ["H1", VILLAGE, "marginal", "甲", &ids[0], "子女", ""],
                [
                    "H2",
                    VILLAGE,
                    "marginal",
                    "乙",
                    &ids[1],
                    "户主",
                    "6217000011112222",
                ],
                [
                    "H2",
                    VILLAGE,
                    "marginal",
                    "丙",
                    &ids[2],
                    "户主",
                    "6217000011112223",
                ],
                ["H3", VILLAGE, "marginal", "丁", &ids[3], "户主", ""],
                [
                    "H4",
                    VILLAGE,
                    "marginal",
                    "戊",
                    &ids[4],
                    "户主",
                    "6217000011112224",
                ],
                ["H4", VILLAGE, "unstable_escaped", "己", &ids[5], "子女", ""],
                [
                    "H5",
                    VILLAGE,
                    "marginal",
                    "庚",
                    &ids[6],
                    "户主",
                    "6217000011112225",
                ],
                [
                    "H6",
                    VILLAGE,
                    "marginal",
                    "辛",
                    &ids[6],
                    "户主",
                    "6217000011112226",
                ],
                [
                    "H7",
                    VILLAGE,
                    "marginal",
                    "壬",
                    &ids[7],
                    "户主",
                    "6217000011112227",
                ],
            ],
            &|id| id.as_str() == ids[7],
        );
        assert_eq!(codes(&out[0]), vec![(2, "no_head")]);
        assert_eq!(codes(&out[1]), vec![(4, "two_heads")]);
        assert_eq!(codes(&out[2]), vec![(5, "no_account")]);
        assert_eq!(codes(&out[3]), vec![(7, "inconsistent")]);
        assert!(matches!(out[4], Assembled::Accepted(_)));
        assert_eq!(codes(&out[5]), vec![(9, "duplicate_person")]);
        assert_eq!(codes(&out[6]), vec![(10, "already_insured")]);
    }

    #[test]
    fn a_household_split_across_the_file_is_found() {
        let (a, b, c) = (id(1, 1970), id(2, 1972), id(3, 2000));
        let layout = RosterLayout::from_header(&header()).unwrap();
        let insured = |_: &ResidentId| false;
        let mut asm = RosterAssembler::new(
            layout,
            CountyCode::parse(COUNTY).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            &insured,
        );
        let rows = [
            [
                "H1",
                VILLAGE,
                "marginal",
                "张三",
                &a,
                "户主",
                "6217000011112222",
            ],
            [
                "H2",
                VILLAGE,
                "marginal",
                "王五",
                &c,
                "户主",
                "6217000011113333",
            ],
            ["H1", VILLAGE, "marginal", "李四", &b, "配偶", ""],
        ];
        let mut out = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<Cell> = row.iter().map(|s| Cell::Text(s)).collect();
            out.extend(asm.row(i as u64 + 2, &cells));
        }
        out.extend(asm.finish());
        assert!(matches!(out[0], Assembled::Accepted(_)));
        assert_eq!(codes(&out[2]), vec![(4, "split_household")]);
        assert!(asm.split_households().contains("H1"));
    }

    #[test]
    fn spreadsheet_numbers() {
        let layout = RosterLayout::from_header(&header()).unwrap();
        let insured = |_: &ResidentId| false;
        let mut asm = RosterAssembler::new(
            layout,
            CountyCode::parse(COUNTY).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            &insured,
        );
        let a = id(1, 1970);
        let good = [
            Cell::Number(12.0),
            Cell::Number(130426100201.0),
            Cell::Text("marginal"),
            Cell::Text("张三"),
            Cell::Text(&a),
            Cell::Text("户主"),
            Cell::Text("6217000011112222"),
        ];
        assert!(asm.row(2, &good).is_none());
        let mut bad = good;
        bad[0] = Cell::Number(13.0);
        bad[4] = Cell::Number(130426197001010010.0);
        bad[6] = Cell::Number(6217000011112222.0);
        let Some(Assembled::Accepted(h)) = asm.row(3, &bad) else {
            panic!("household 12 ends")
        };
        assert_eq!(
            (h.household_no.as_str(), h.village.as_str()),
            ("12", VILLAGE)
        );
        let last = asm.finish().unwrap();
        assert_eq!(
            codes(&last),
            vec![(3, "number_not_text"), (3, "number_not_text")]
        );
        let Assembled::Rejected { errors, .. } = last else {
            unreachable!()
        };
        assert_eq!(errors[1].field, "bank_account");
    }

    fn read(file: &str) -> Result<Vec<Assembled>, crate::feed_reader::FeedError> {
        let mut chunk = Some(bytes::Bytes::from(file.as_bytes().to_vec()));
        let insured = |_: &ResidentId| false;
        let mut out = Vec::new();
        read_csv(
            move || chunk.take(),
            encoding_rs::UTF_8,
            CountyCode::parse(COUNTY).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            &insured,
            |a| out.push(a),
        )?;
        Ok(out)
    }

    #[test]
    fn titles_above_the_header_are_skipped_and_a_file_without_a_header_is_refused() {
        let a = id(1, 1970);
        let file = format!(
            "涉县2026年防贫保花名册\n导出日期,2026-01-05\n{}\nH1,{VILLAGE},marginal,张三,{a},户主,6217000011112222\n",
            header().join(",")
        );
        let out = read(&file).unwrap();
        let [Assembled::Accepted(h)] = out.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!(h.line, 4, "the line counts the titles");
        let junk = "a,b\n".repeat(usize::try_from(MAX_TITLE_ROWS).unwrap() + 2);
        assert!(matches!(
            read(&junk),
            Err(crate::feed_reader::FeedError::Header(
                HeaderError::Missing { .. }
            ))
        ));
    }

    #[test]
    fn header_needs_every_column_once() {
        let mut h = header();
        h.pop();
        assert!(matches!(
            RosterLayout::from_header(&h),
            Err(HeaderError::Missing {
                name: "bank_account",
                ..
            })
        ));
        let mut h = header();
        h.push("姓名".into());
        assert_eq!(
            RosterLayout::from_header(&h),
            Err(HeaderError::Duplicate("name"))
        );
        let mut h = header();
        h.insert(0, "\u{feff}序号".into());
        h.push("联系电话".into());
        assert_eq!(
            RosterLayout::from_header(&h)
                .unwrap()
                .index(Column::HouseholdNo),
            1
        );
    }
}
