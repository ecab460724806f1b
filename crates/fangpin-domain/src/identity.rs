//! Who and where: resident identity numbers and administrative division codes.
//!
//! A resident ID is personal data under PIPL (个人信息保护法), so `ResidentId`
//! shows only its masked form through `Debug` and `Display`, and no error in this
//! module ever quotes the number it rejected. Code that truly needs the full number
//! (matching against the civil-affairs roster, say) must ask for it with
//! `as_str()`, which makes every such use easy to find in review.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The 34 province-level codes of GB/T 2260 (the first two digits of any division
/// code). Kept as a list rather than ranges so a reader can check it against the
/// standard line by line.
#[rustfmt::skip]
const PROVINCE_CODES: [&str; 34] = [
    "11", "12", "13", "14", "15",             // 北京 天津 河北 山西 内蒙古
    "21", "22", "23",                         // 辽宁 吉林 黑龙江
    "31", "32", "33", "34", "35", "36", "37", // 上海 江苏 浙江 安徽 福建 江西 山东
    "41", "42", "43", "44", "45", "46",       // 河南 湖北 湖南 广东 广西 海南
    "50", "51", "52", "53", "54",             // 重庆 四川 贵州 云南 西藏
    "61", "62", "63", "64", "65",             // 陕西 甘肃 青海 宁夏 新疆
    "71", "81", "82",                         // 台湾 香港 澳门
];

fn is_province_code(code: &str) -> bool {
    PROVINCE_CODES.contains(&code)
}

/// The ISO 7064 MOD 11-2 weights, 2^(17-i) mod 11 for positions i = 0..17. Every
/// weight is non-zero modulo the prime 11, which is why any single wrong digit
/// changes the check digit.
const CHECK_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// The check character for each value of the weighted sum modulo 11.
const CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Computes the check character for 17 ASCII digits. Callers must have checked
/// that the input is exactly 17 ASCII digits.
fn check_char(first17: &[u8]) -> char {
    let sum: u32 = first17
        .iter()
        .zip(CHECK_WEIGHTS)
        .map(|(&digit, weight)| u32::from(digit - b'0') * weight)
        .sum();
    // The index is below 11 by construction, so the cast cannot truncate.
    CHECK_CHARS[(sum % 11) as usize]
}

fn is_leap_year(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parses a run of ASCII digits that the caller has already validated.
fn digits_value(digits: &str) -> u32 {
    digits
        .bytes()
        .fold(0, |acc, digit| acc * 10 + u32::from(digit - b'0'))
}

/// Checks an eight-digit YYYYMMDD field that is already known to be ASCII digits.
fn check_birth_date(yyyymmdd: &str) -> Result<(), IdError> {
    let year = digits_value(&yyyymmdd[0..4]);
    let month = digits_value(&yyyymmdd[4..6]);
    let day = digits_value(&yyyymmdd[6..8]);
    if !(1900..=2100).contains(&year) {
        return Err(IdError::BadBirthDate {
            reason: "the year is outside 1900-2100",
        });
    }
    if !(1..=12).contains(&month) {
        return Err(IdError::BadBirthDate {
            reason: "the month is not 01-12",
        });
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(IdError::BadBirthDate {
            reason: "that day does not exist in that month",
        });
    }
    Ok(())
}

/// Why a string is not a resident identity number.
///
/// The messages name positions and at most the two province digits or the check
/// character, never the number itself, because errors end up in logs and API
/// responses where a full ID would be a personal-data leak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The input does not have the expected number of characters.
    #[error("resident ID must be {expected} characters long, got {got}")]
    WrongLength { expected: usize, got: usize },
    /// One of the first 17 characters is not an ASCII digit.
    #[error("resident ID has a non-digit at position {position} (counting from 1)")]
    NonDigit { position: usize },
    /// The 18th character is neither a digit nor 'X'.
    #[error("resident ID check character (position 18) must be a digit or 'X'")]
    BadCheckCharacter,
    /// The issuing division does not start with a GB/T 2260 province code.
    #[error(
        "resident ID issuing division starts with {province}, which is not a GB/T 2260 province code"
    )]
    UnknownProvince { province: String },
    /// Positions 7-14 are not a real calendar date in 1900-2100.
    #[error("resident ID birth date (positions 7-14) is not a valid date: {reason}")]
    BadBirthDate { reason: &'static str },
    /// The check character does not match the first 17 digits.
    #[error("resident ID check digit mismatch: expected {expected}, got {got}")]
    CheckDigitMismatch { expected: char, got: char },
}

/// A resident identity number (公民身份号码, GB 11643-1999): 17 digits and a
/// check digit (ISO 7064 MOD 11-2, where 'X' stands for 10).
///
/// The value is always 18 ASCII characters with an upper-case 'X', so two values
/// are equal exactly when they hold the same number, whichever case it was typed
/// in. It serializes as the plain string, and deserializing validates it like
/// `parse`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResidentId(String);

impl ResidentId {
    /// The date of birth in positions 7-14 (checked real by `parse`).
    pub fn birth_date(&self) -> chrono::NaiveDate {
        chrono::NaiveDate::parse_from_str(&self.as_str()[6..14], "%Y%m%d")
            .expect("a parsed ID number has a real birth date")
    }
}

/// A person's relation to the head of the household (与户主关系), a closed set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// 户主
    Head,
    /// 配偶
    Spouse,
    /// 子女
    Child,
    /// 父母
    Parent,
    /// 祖父母、外祖父母
    Grandparent,
    /// 孙子女、外孙子女
    Grandchild,
    /// 兄弟姐妹
    Sibling,
    /// 儿媳、女婿
    ChildInLaw,
    /// 其他
    Other,
}

impl Relation {
    pub const ALL: [Relation; 9] = [
        Relation::Head,
        Relation::Spouse,
        Relation::Child,
        Relation::Parent,
        Relation::Grandparent,
        Relation::Grandchild,
        Relation::Sibling,
        Relation::ChildInLaw,
        Relation::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Head => "head",
            Relation::Spouse => "spouse",
            Relation::Child => "child",
            Relation::Parent => "parent",
            Relation::Grandparent => "grandparent",
            Relation::Grandchild => "grandchild",
            Relation::Sibling => "sibling",
            Relation::ChildInLaw => "child_in_law",
            Relation::Other => "other",
        }
    }

    /// The register's own words too: 户主, 配偶, 子女 (儿子, 女儿), 父母 (父亲,
    /// 母亲), 祖父母, 外祖父母, 孙子女, 外孙子女, 兄弟姐妹, 儿媳, 女婿, 其他.
    pub fn parse(text: &str) -> Option<Relation> {
        let text = text.trim();
        if let Some(r) = Relation::ALL.into_iter().find(|r| r.as_str() == text) {
            return Some(r);
        }
        Some(match text {
            "户主" => Relation::Head,
            "配偶" | "妻" | "夫" => Relation::Spouse,
            "子女" | "儿子" | "女儿" | "子" | "女" => Relation::Child,
            "父母" | "父亲" | "母亲" => Relation::Parent,
            "祖父母" | "外祖父母" | "祖父" | "祖母" | "外祖父" | "外祖母" => {
                Relation::Grandparent
            }
            "孙子女" | "外孙子女" | "孙子" | "孙女" | "外孙子" | "外孙女" => {
                Relation::Grandchild
            }
            "兄弟姐妹" | "兄" | "弟" | "姐" | "妹" => Relation::Sibling,
            "儿媳" | "女婿" => Relation::ChildInLaw,
            "其他" => Relation::Other,
            _ => return None,
        })
    }
}

impl ResidentId {
    /// Parses and validates a resident ID. Nothing is trimmed, so stray whitespace
    /// is reported rather than silently accepted. A lower-case 'x' is accepted and
    /// stored upper-case, because hand-typed rosters use both.
    ///
    /// The issuing division is checked only for its province: county codes are
    /// retired when counties merge or are renamed, but a number keeps the code it
    /// was issued under for life, so a full county check would reject real people.
    pub fn parse(s: &str) -> Result<ResidentId, IdError> {
        let got = s.chars().count();
        if got != 18 {
            return Err(IdError::WrongLength { expected: 18, got });
        }
        for (index, c) in s.chars().enumerate() {
            if index < 17 && !c.is_ascii_digit() {
                return Err(IdError::NonDigit {
                    position: index + 1,
                });
            }
            if index == 17 && !(c.is_ascii_digit() || c == 'X' || c == 'x') {
                return Err(IdError::BadCheckCharacter);
            }
        }
        // Every character is ASCII from here on, so byte slicing is safe.
        let province = &s[0..2];
        if !is_province_code(province) {
            return Err(IdError::UnknownProvince {
                province: province.to_owned(),
            });
        }
        check_birth_date(&s[6..14])?;
        let expected = check_char(&s.as_bytes()[..17]);
        let got = char::from(s.as_bytes()[17]).to_ascii_uppercase();
        if expected != got {
            return Err(IdError::CheckDigitMismatch { expected, got });
        }
        Ok(ResidentId(s.to_ascii_uppercase()))
    }

    /// Appends the correct check digit to 17 digits, for fixtures and data
    /// generators. The result is validated like `parse`, so a bad province or birth
    /// date is still rejected.
    pub fn from_first17(first17: &str) -> Result<ResidentId, IdError> {
        let got = first17.chars().count();
        if got != 17 {
            return Err(IdError::WrongLength { expected: 17, got });
        }
        if let Some(index) = first17.chars().position(|c| !c.is_ascii_digit()) {
            return Err(IdError::NonDigit {
                position: index + 1,
            });
        }
        let mut full = String::with_capacity(18);
        full.push_str(first17);
        full.push(check_char(first17.as_bytes()));
        ResidentId::parse(&full)
    }

    /// Returns the full number. Use it only where the full number is truly needed;
    /// `Display` and `Debug` deliberately show the masked form instead.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the ID with the birth date and sequence hidden, as published on
    /// notices under PIPL minimal disclosure: the first 6 and last 4 characters are
    /// kept, as in "410621********123X".
    pub fn masked(&self) -> String {
        let mut masked = String::with_capacity(18);
        masked.push_str(&self.0[..6]);
        masked.push_str("********");
        masked.push_str(&self.0[14..]);
        masked
    }

    /// Returns the six-digit division code where the number was issued (its first
    /// 6 digits). It may be a retired code, so it is a `&str` and not a
    /// `CountyCode`.
    pub fn issuing_division(&self) -> &str {
        &self.0[..6]
    }
}

/// A resident ID reduced to a number for lookups in bulk data: the first 17
/// digits as an integer (the 18th is a function of them). Department feeds
/// carry millions of ID numbers; keying them as `u64` instead of `String`
/// keeps the enrolled-person index small and allocation-free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonKey(pub u64);

impl PersonKey {
    pub fn of(id: &ResidentId) -> PersonKey {
        PersonKey(first17_value(&id.0.as_bytes()[..17]))
    }

    /// Validates raw bytes exactly as `ResidentId::parse` does, without
    /// allocating: the hot path of a feed import.
    pub fn parse_bytes(bytes: &[u8]) -> Result<PersonKey, IdError> {
        if bytes.len() != 18 || !bytes.is_ascii() {
            // Not ASCII: fall back to the careful path for the right message.
            return ResidentId::parse(&String::from_utf8_lossy(bytes)).map(|id| PersonKey::of(&id));
        }
        if let Some(position) = bytes[..17].iter().position(|b| !b.is_ascii_digit()) {
            return Err(IdError::NonDigit {
                position: position + 1,
            });
        }
        let last = bytes[17];
        if !(last.is_ascii_digit() || last == b'X' || last == b'x') {
            return Err(IdError::BadCheckCharacter);
        }
        // All ASCII, checked above.
        let text = std::str::from_utf8(bytes).map_err(|_| IdError::BadCheckCharacter)?;
        if !is_province_code(&text[0..2]) {
            return Err(IdError::UnknownProvince {
                province: text[0..2].to_owned(),
            });
        }
        check_birth_date(&text[6..14])?;
        let expected = check_char(&bytes[..17]);
        let got = char::from(last).to_ascii_uppercase();
        if expected != got {
            return Err(IdError::CheckDigitMismatch { expected, got });
        }
        Ok(PersonKey(first17_value(&bytes[..17])))
    }
}

fn first17_value(digits: &[u8]) -> u64 {
    digits
        .iter()
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'))
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Debug output lands in logs and panic messages, so it gets the masked form.
        f.debug_tuple("ResidentId").field(&self.masked()).finish()
    }
}

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Masked too, so that a stray `format!` in a notice or log cannot leak the
        // full number; callers that need it must say so with `as_str()`.
        f.write_str(&self.masked())
    }
}

impl FromStr for ResidentId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResidentId::parse(s)
    }
}

impl TryFrom<String> for ResidentId {
    type Error = IdError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        ResidentId::parse(&s)
    }
}

impl From<ResidentId> for String {
    fn from(id: ResidentId) -> String {
        id.0
    }
}

/// Why a string is not a county or village division code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DivisionError {
    /// The input does not have the expected number of characters.
    #[error("{kind} must be {expected} digits, got {got} characters")]
    WrongLength {
        kind: &'static str,
        expected: usize,
        got: usize,
    },
    /// A character is not an ASCII digit.
    #[error("division code has a non-digit at position {position} (counting from 1)")]
    NonDigit { position: usize },
    /// The first two digits are not a GB/T 2260 province code.
    #[error("division code starts with {province}, which is not a GB/T 2260 province code")]
    UnknownProvince { province: String },
    /// The county part is "00", so the code names a province or prefecture.
    #[error("{code} ends in 00, so it names a province or prefecture, not a county")]
    NotCounty { code: String },
    /// The township part is "000", so the code names the county itself.
    #[error("village code {code} has township part 000, which names the county, not a township")]
    NoTownship { code: String },
    /// The village part is "000", so the code names a township.
    #[error("village code {code} ends in 000, so it names a township, not a village")]
    NoVillage { code: String },
}

/// Checks the length and digits of a division code. Division codes are public
/// data, so unlike resident IDs they may be quoted in errors.
fn check_digits(s: &str, kind: &'static str, expected: usize) -> Result<(), DivisionError> {
    let got = s.chars().count();
    if got != expected {
        return Err(DivisionError::WrongLength {
            kind,
            expected,
            got,
        });
    }
    if let Some(index) = s.chars().position(|c| !c.is_ascii_digit()) {
        return Err(DivisionError::NonDigit {
            position: index + 1,
        });
    }
    Ok(())
}

/// Checks the province and county parts of six ASCII digits.
fn check_county(code: &str) -> Result<(), DivisionError> {
    let province = &code[0..2];
    if !is_province_code(province) {
        return Err(DivisionError::UnknownProvince {
            province: province.to_owned(),
        });
    }
    if &code[4..6] == "00" {
        return Err(DivisionError::NotCounty {
            code: code.to_owned(),
        });
    }
    Ok(())
}

/// A county-level administrative division code (县级行政区划代码, GB/T 2260):
/// 2 digits of province, 2 of prefecture and 2 of county. The county part is not
/// "00" and the province part is one of the 34 GB/T 2260 province codes.
///
/// The county is the unit that buys the insurance and sets its rules, so a
/// prefecture or province code here is always a mistake.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountyCode(String);

impl CountyCode {
    /// Parses and validates a six-digit county code; nothing is trimmed.
    pub fn parse(s: &str) -> Result<CountyCode, DivisionError> {
        check_digits(s, "county code", 6)?;
        check_county(s)?;
        Ok(CountyCode(s.to_owned()))
    }

    /// Returns the six-digit code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CountyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CountyCode {
    type Err = DivisionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CountyCode::parse(s)
    }
}

impl TryFrom<String> for CountyCode {
    type Error = DivisionError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        CountyCode::parse(&s)
    }
}

impl From<CountyCode> for String {
    fn from(code: CountyCode) -> String {
        code.0
    }
}

/// A village-level statistical division code (统计用区划代码): 12 digits, the
/// first 6 being the county code, then 3 township digits and 3 village digits.
///
/// Neither the township part nor the village part is "000": those codes name the
/// county or the township itself, and a household always lives in a village or
/// residents' committee.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VillageCode(String);

impl VillageCode {
    /// Parses and validates a twelve-digit village code; nothing is trimmed.
    pub fn parse(s: &str) -> Result<VillageCode, DivisionError> {
        check_digits(s, "village code", 12)?;
        check_county(&s[..6])?;
        if &s[6..9] == "000" {
            return Err(DivisionError::NoTownship { code: s.to_owned() });
        }
        if &s[9..12] == "000" {
            return Err(DivisionError::NoVillage { code: s.to_owned() });
        }
        Ok(VillageCode(s.to_owned()))
    }

    /// Returns the twelve-digit code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the county the village belongs to (the first 6 digits).
    pub fn county(&self) -> CountyCode {
        // `parse` validated these digits as a county code, so no second check.
        CountyCode(self.0[..6].to_owned())
    }

    /// Returns the nine-digit township code (乡级, the first 9 digits).
    pub fn township_code(&self) -> &str {
        &self.0[..9]
    }
}

impl fmt::Display for VillageCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for VillageCode {
    type Err = DivisionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VillageCode::parse(s)
    }
}

impl TryFrom<String> for VillageCode {
    type Error = DivisionError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        VillageCode::parse(&s)
    }
}

impl From<VillageCode> for String {
    fn from(code: VillageCode) -> String {
        code.0
    }
}

#[cfg(test)]
mod relation_tests {
    use super::*;

    #[test]
    fn relations_are_a_closed_set_in_either_language() {
        for r in Relation::ALL {
            assert_eq!(Relation::parse(r.as_str()), Some(r));
        }
        assert_eq!(Relation::parse("配偶"), Some(Relation::Spouse));
        assert_eq!(Relation::parse("外孙女"), Some(Relation::Grandchild));
        assert_eq!(Relation::parse("boss"), None);
        assert_eq!(Relation::parse(""), None);
    }

    #[test]
    fn the_birth_date_is_read_from_the_number() {
        let id = ResidentId::from_first17("13042619650512123").expect("valid");
        assert_eq!(
            id.birth_date(),
            chrono::NaiveDate::from_ymd_opt(1965, 5, 12).expect("date")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The worked example in GB 11643-1999 itself.
    const STANDARD_EXAMPLE: &str = "11010519491231002X";
    /// A valid ID whose check character is a digit.
    const DIGIT_CHECK: &str = "410621198001011236";

    /// Appends the right check character without any other validation, so tests
    /// can build numbers whose only fault is somewhere else (the birth date, say).
    fn with_check(first17: &str) -> String {
        format!("{first17}{}", check_char(first17.as_bytes()))
    }

    #[test]
    fn known_valid_ids_parse() {
        for s in [
            STANDARD_EXAMPLE,
            DIGIT_CHECK,
            "130426199003071230",
            "440304200002290014",
        ] {
            let id = ResidentId::parse(s).expect("valid ID");
            assert_eq!(id.as_str(), s);
        }
    }

    #[test]
    fn from_first17_appends_the_check_digit() {
        let id = ResidentId::from_first17(&STANDARD_EXAMPLE[..17]).expect("valid");
        assert_eq!(id.as_str(), STANDARD_EXAMPLE);
        let id = ResidentId::from_first17(&DIGIT_CHECK[..17]).expect("valid");
        assert_eq!(id.as_str(), DIGIT_CHECK);
    }

    #[test]
    fn from_first17_rejects_bad_input() {
        assert_eq!(
            ResidentId::from_first17("1101051949123100"),
            Err(IdError::WrongLength {
                expected: 17,
                got: 16
            })
        );
        assert_eq!(
            ResidentId::from_first17("1101051949123100X"),
            Err(IdError::NonDigit { position: 17 })
        );
        assert!(matches!(
            ResidentId::from_first17("11010519490231002"),
            Err(IdError::BadBirthDate { .. })
        ));
    }

    #[test]
    fn wrong_check_digit_names_the_expected_one() {
        assert_eq!(
            ResidentId::parse("110105194912310021"),
            Err(IdError::CheckDigitMismatch {
                expected: 'X',
                got: '1'
            })
        );
        assert_eq!(
            ResidentId::parse("41062119800101123X"),
            Err(IdError::CheckDigitMismatch {
                expected: '6',
                got: 'X'
            })
        );
    }

    #[test]
    fn lower_case_x_is_stored_upper_case() {
        let id = ResidentId::parse("11010519491231002x").expect("valid");
        assert_eq!(id.as_str(), STANDARD_EXAMPLE);
        assert_eq!(id, ResidentId::parse(STANDARD_EXAMPLE).expect("valid"));
    }

    #[test]
    fn wrong_length_is_rejected() {
        assert_eq!(
            ResidentId::parse("11010519491231002"),
            Err(IdError::WrongLength {
                expected: 18,
                got: 17
            })
        );
        assert_eq!(
            ResidentId::parse(""),
            Err(IdError::WrongLength {
                expected: 18,
                got: 0
            })
        );
        // Nothing is trimmed: surrounding whitespace is an error, not noise.
        assert_eq!(
            ResidentId::parse(" 11010519491231002X"),
            Err(IdError::WrongLength {
                expected: 18,
                got: 19
            })
        );
        // Length is counted in characters, so a multi-byte character is one.
        assert_eq!(
            ResidentId::parse("11010519491231002号"),
            Err(IdError::BadCheckCharacter)
        );
    }

    #[test]
    fn letters_are_rejected() {
        assert_eq!(
            ResidentId::parse("1101A519491231002X"),
            Err(IdError::NonDigit { position: 5 })
        );
        assert_eq!(
            ResidentId::parse("X10105194912310020"),
            Err(IdError::NonDigit { position: 1 })
        );
        assert_eq!(
            ResidentId::parse("11010519491231002Y"),
            Err(IdError::BadCheckCharacter)
        );
    }

    #[test]
    fn unknown_province_is_rejected() {
        let s = with_check("99010519491231002");
        assert_eq!(
            ResidentId::parse(&s),
            Err(IdError::UnknownProvince {
                province: "99".to_owned()
            })
        );
    }

    #[test]
    fn birth_date_must_be_a_real_date() {
        let bad = |first17: &str| {
            matches!(
                ResidentId::parse(&with_check(first17)),
                Err(IdError::BadBirthDate { .. })
            )
        };
        assert!(bad("13042620230230005"), "February 30th");
        assert!(bad("13042620230229004"), "Feb 29 in a non-leap year");
        assert!(bad("13042619000229003"), "1900 is not a leap year");
        assert!(bad("13042620231301001"), "month 13");
        assert!(bad("13042620230000001"), "month 00");
        assert!(bad("13042620230100001"), "day 00");
        assert!(bad("13042620230431001"), "April 31st");
        assert!(bad("13042618991231001"), "year before 1900");
        assert!(bad("13042621010101001"), "year after 2100");

        let good = |first17: &str| ResidentId::parse(&with_check(first17)).is_ok();
        assert!(good("13042620240229002"), "Feb 29 in a leap year");
        assert!(good("44030420000229001"), "2000 is a leap year");
        assert!(good("13042619000101001"), "first year allowed");
        assert!(good("13042621001231001"), "last year allowed");
    }

    #[test]
    fn masked_keeps_first_six_and_last_four() {
        let id = ResidentId::parse(STANDARD_EXAMPLE).expect("valid");
        assert_eq!(id.masked(), "110105********002X");
        let id = ResidentId::parse(DIGIT_CHECK).expect("valid");
        assert_eq!(id.masked(), "410621********1236");
        assert_eq!(id.issuing_division(), "410621");
    }

    #[test]
    fn debug_and_display_show_only_the_masked_form() {
        let id = ResidentId::parse(STANDARD_EXAMPLE).expect("valid");
        let display = id.to_string();
        let debug = format!("{:?}", id);
        let pretty = format!("{id:#?}");
        assert_eq!(display, "110105********002X");
        assert!(debug.contains("110105********002X"), "{debug}");
        for shown in [&display, &debug, &pretty] {
            assert!(!shown.contains(STANDARD_EXAMPLE), "{shown}");
            assert!(!shown.contains("19491231"), "{shown}");
        }
        // Inside a larger structure too, as when a record is logged whole.
        let nested = format!("{:?}", Some(vec![id]));
        assert!(!nested.contains(STANDARD_EXAMPLE), "{nested}");
    }

    #[test]
    fn error_messages_never_contain_the_number() {
        let inputs = [
            "110105194912310021".to_owned(),
            "11010519491231002Y".to_owned(),
            with_check("11010519490230002"),
            with_check("99010519491231002"),
            "1101051949123100".to_owned(),
            "110105194912310021 ".to_owned(),
        ];
        for input in &inputs {
            let err = ResidentId::parse(input).expect_err("invalid");
            let message = err.to_string();
            let debug = format!("{:?}", err);
            let trimmed = input.trim();
            assert!(!message.contains(trimmed), "{message}");
            assert!(!debug.contains(trimmed), "{debug}");
        }
    }

    #[test]
    fn serde_round_trip_uses_the_plain_string() {
        let id = ResidentId::parse(STANDARD_EXAMPLE).expect("valid");
        let json = serde_json::to_string(&id).expect("serializes");
        assert_eq!(json, format!("\"{STANDARD_EXAMPLE}\""));
        let back: ResidentId = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, id);
        let lower: ResidentId =
            serde_json::from_str("\"11010519491231002x\"").expect("lower-case x");
        assert_eq!(lower.as_str(), STANDARD_EXAMPLE);
    }

    #[test]
    fn serde_rejects_an_invalid_id() {
        let err = serde_json::from_str::<ResidentId>("\"110105194912310021\"")
            .expect_err("bad check digit");
        let message = err.to_string();
        assert!(message.contains("check digit mismatch"), "{message}");
        assert!(!message.contains("110105194912310021"), "{message}");
        assert!(serde_json::from_str::<ResidentId>("12345").is_err());
    }

    #[test]
    fn county_code_accepts_a_county() {
        let code = CountyCode::parse("130426").expect("涉县 is a county");
        assert_eq!(code.as_str(), "130426");
        assert_eq!(code.to_string(), "130426");
        assert_eq!("130426".parse::<CountyCode>(), Ok(code));
    }

    #[test]
    fn county_code_rejects_prefecture_and_province_codes() {
        assert_eq!(
            CountyCode::parse("130400"),
            Err(DivisionError::NotCounty {
                code: "130400".to_owned()
            })
        );
        assert!(matches!(
            CountyCode::parse("130000"),
            Err(DivisionError::NotCounty { .. })
        ));
    }

    #[test]
    fn county_code_rejects_bad_province_and_shape() {
        assert_eq!(
            CountyCode::parse("990101"),
            Err(DivisionError::UnknownProvince {
                province: "99".to_owned()
            })
        );
        assert_eq!(
            CountyCode::parse("13042"),
            Err(DivisionError::WrongLength {
                kind: "county code",
                expected: 6,
                got: 5
            })
        );
        assert_eq!(
            CountyCode::parse("13042a"),
            Err(DivisionError::NonDigit { position: 6 })
        );
        assert!(CountyCode::parse(" 130426").is_err());
    }

    #[test]
    fn every_listed_province_is_accepted() {
        for province in PROVINCE_CODES {
            let code = format!("{province}0101");
            assert!(CountyCode::parse(&code).is_ok(), "{code}");
        }
        assert_eq!(PROVINCE_CODES.len(), 34);
    }

    #[test]
    fn county_code_serde_is_validated() {
        let code = CountyCode::parse("130426").expect("valid");
        let json = serde_json::to_string(&code).expect("serializes");
        assert_eq!(json, "\"130426\"");
        assert_eq!(
            serde_json::from_str::<CountyCode>(&json).expect("deserializes"),
            code
        );
        assert!(serde_json::from_str::<CountyCode>("\"130400\"").is_err());
    }

    #[test]
    fn village_code_parts() {
        let village = VillageCode::parse("130426100201").expect("valid");
        assert_eq!(village.as_str(), "130426100201");
        assert_eq!(village.to_string(), "130426100201");
        assert_eq!(
            village.county(),
            CountyCode::parse("130426").expect("valid")
        );
        assert_eq!(village.township_code(), "130426100");
        assert_eq!("130426100201".parse::<VillageCode>(), Ok(village.clone()));
        let json = serde_json::to_string(&village).expect("serializes");
        assert_eq!(json, "\"130426100201\"");
        assert_eq!(
            serde_json::from_str::<VillageCode>(&json).expect("deserializes"),
            village
        );
        assert!(serde_json::from_str::<VillageCode>("\"130426100000\"").is_err());
    }

    #[test]
    fn village_code_rejects_bad_codes() {
        assert_eq!(
            VillageCode::parse("13042610020"),
            Err(DivisionError::WrongLength {
                kind: "village code",
                expected: 12,
                got: 11
            })
        );
        assert!(matches!(
            VillageCode::parse("1304261002011"),
            Err(DivisionError::WrongLength { got: 13, .. })
        ));
        assert_eq!(
            VillageCode::parse("13042610020x"),
            Err(DivisionError::NonDigit { position: 12 })
        );
        assert!(matches!(
            VillageCode::parse("130400100201"),
            Err(DivisionError::NotCounty { .. })
        ));
        assert!(matches!(
            VillageCode::parse("990101100201"),
            Err(DivisionError::UnknownProvince { .. })
        ));
        assert!(matches!(
            VillageCode::parse("130426000201"),
            Err(DivisionError::NoTownship { .. })
        ));
        assert!(matches!(
            VillageCode::parse("130426100000"),
            Err(DivisionError::NoVillage { .. })
        ));
    }

    /// The first 17 digits of a plausible ID: a listed province, any other four
    /// division digits, a real birth date in range and any sequence number.
    fn first17() -> impl Strategy<Value = String> {
        (
            prop::sample::select(PROVINCE_CODES.to_vec()),
            0u32..10_000,
            1900u32..=2100,
            1u32..=12,
        )
            .prop_flat_map(|(province, rest, year, month)| {
                (
                    Just(province),
                    Just(rest),
                    Just(year),
                    Just(month),
                    1..=days_in_month(year, month),
                    0u32..1_000,
                )
            })
            .prop_map(|(province, rest, year, month, day, sequence)| {
                format!("{province}{rest:04}{year:04}{month:02}{day:02}{sequence:03}")
            })
    }

    #[test]
    fn every_single_substitution_of_the_standard_example_is_caught() {
        let original: Vec<char> = STANDARD_EXAMPLE.chars().collect();
        for position in 0..18 {
            let alphabet: &[char] = if position < 17 {
                &['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']
            } else {
                &CHECK_CHARS
            };
            for &replacement in alphabet.iter().filter(|&&c| c != original[position]) {
                let mut changed = original.clone();
                changed[position] = replacement;
                let changed: String = changed.into_iter().collect();
                assert!(ResidentId::parse(&changed).is_err(), "{changed} accepted");
            }
        }
    }

    proptest! {
        // The single-substitution property is the core promise of the check digit,
        // so it gets more cases than proptest's default; each case is microseconds.
        #![proptest_config(ProptestConfig::with_cases(2_048))]

        #[test]
        fn generated_ids_parse_and_any_single_change_is_caught(
            first17 in first17(),
            position in 0usize..18,
            shift_seed in 0usize..1_000,
        ) {
            let id = ResidentId::from_first17(&first17).expect("valid first 17");
            prop_assert_eq!(ResidentId::parse(id.as_str()), Ok(id.clone()));
            prop_assert_eq!(&id.as_str()[..17], first17.as_str());

            // Replace one character by a different one: among the ten digits in
            // positions 1-17, among the eleven check characters in position 18.
            let mut chars: Vec<char> = id.as_str().chars().collect();
            let alphabet: &[char] = if position < 17 {
                &['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']
            } else {
                &CHECK_CHARS
            };
            let current = alphabet
                .iter()
                .position(|&c| c == chars[position])
                .expect("character from its alphabet");
            // A shift in 1..len never wraps back to the original character.
            let shift = 1 + shift_seed % (alphabet.len() - 1);
            chars[position] = alphabet[(current + shift) % alphabet.len()];
            let changed: String = chars.into_iter().collect();
            prop_assert_ne!(&changed, id.as_str());
            prop_assert!(ResidentId::parse(&changed).is_err(), "{} accepted", changed);
        }

        #[test]
        fn masked_and_errors_never_reveal_the_number(s in "[0-9]{17}[0-9Xx]") {
            match ResidentId::parse(&s) {
                Ok(id) => {
                    let display = id.to_string();
                    let debug = format!("{id:?}");
                    prop_assert!(!display.contains(id.as_str()));
                    prop_assert!(!debug.contains(id.as_str()));
                    prop_assert_eq!(id.masked().chars().count(), 18);
                    prop_assert_eq!(&id.masked()[..6], &s[..6]);
                    prop_assert_eq!(&id.masked()[14..], &s[14..].to_ascii_uppercase());
                }
                Err(err) => {
                    let message = err.to_string();
                    let debug = format!("{err:?}");
                    prop_assert!(!message.contains(&s));
                    prop_assert!(!debug.contains(&s));
                }
            }
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = ResidentId::parse(&s);
            let _ = CountyCode::parse(&s);
            let _ = VillageCode::parse(&s);
        }
    }
}
