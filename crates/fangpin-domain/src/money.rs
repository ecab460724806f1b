//! Exact money. Amounts are whole fen (分, 1/100 yuan) in an `i64`; rates are
//! `rust_decimal::Decimal`. Floating point never touches money.

use std::fmt;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// An amount of money in fen. Negative values are allowed only where a balance
/// can legitimately go below zero (the fund pool before a county top-up).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(i64);

/// The largest amount any single input may carry: 10^11 yuan. A county's whole
/// annual fund is a few hundred million yuan, so anything near this is a typing
/// error, and the limit keeps every sum of a year's postings far from overflow.
pub const MAX_AMOUNT: Fen = Fen(10_000_000_000_000);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is empty")]
    Empty,
    #[error("amount must be a plain decimal number of yuan like 1234.56")]
    Malformed,
    #[error("amount must not be negative")]
    Negative,
    #[error("amount has more than 2 decimal places (fen is the smallest unit)")]
    TooManyDecimals,
    #[error("amount exceeds the limit of {MAX_AMOUNT} yuan")]
    TooLarge,
}

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub const fn new(fen: i64) -> Fen {
        Fen(fen)
    }

    /// Whole yuan, for policy constants and fixtures.
    pub const fn from_yuan(yuan: i64) -> Fen {
        Fen(yuan * 100)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    /// Parses a non-negative yuan amount with at most two decimals ("5000",
    /// "5000.5", "5000.50"). Signs, exponents, separators and spaces are refused:
    /// money typed by people is checked strictly, never guessed at.
    pub fn parse_yuan(text: &str) -> Result<Fen, MoneyError> {
        if text.is_empty() {
            return Err(MoneyError::Empty);
        }
        if text.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        let (whole, frac) = match text.split_once('.') {
            Some((w, f)) => (w, f),
            None => (text, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(frac)
            || (text.contains('.') && frac.is_empty())
        {
            return Err(MoneyError::Malformed);
        }
        if frac.len() > 2 {
            return Err(MoneyError::TooManyDecimals);
        }
        // 14 whole digits already exceed MAX_AMOUNT; refusing early keeps the
        // arithmetic below from overflowing.
        if whole.trim_start_matches('0').len() > 12 {
            return Err(MoneyError::TooLarge);
        }
        let whole: i64 = whole.parse().map_err(|_| MoneyError::Malformed)?;
        let mut frac_fen: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| MoneyError::Malformed)?
        };
        if frac.len() == 1 {
            frac_fen *= 10;
        }
        let fen = Fen(whole * 100 + frac_fen);
        if fen > MAX_AMOUNT {
            return Err(MoneyError::TooLarge);
        }
        Ok(fen)
    }

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The amount as an exact decimal number of fen, for rate arithmetic.
    pub fn to_decimal_fen(self) -> Decimal {
        Decimal::from(self.0)
    }

    /// Rounds an exact decimal number of fen to whole fen, half away from zero
    /// (四舍五入, the rounding Chinese finance uses). Returns None when the value
    /// does not fit.
    pub fn round_from_decimal_fen(value: Decimal) -> Option<Fen> {
        let rounded = value.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
        i64::try_from(rounded).ok().map(Fen)
    }
}

/// Prints yuan with exactly two decimals: `1234.50`, `-0.05`.
impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl std::iter::Sum for Fen {
    /// Sums amounts; panics on overflow, which `MAX_AMOUNT` on every input rules
    /// out for any realistic count of postings.
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        iter.fold(Fen::ZERO, |acc, x| {
            acc.checked_add(x)
                .expect("sum of amounts overflowed i64 fen")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_yuan_strictly() {
        assert_eq!(Fen::parse_yuan("5000"), Ok(Fen(500_000)));
        assert_eq!(Fen::parse_yuan("5000.5"), Ok(Fen(500_050)));
        assert_eq!(Fen::parse_yuan("0.07"), Ok(Fen(7)));
        assert_eq!(Fen::parse_yuan("007.10"), Ok(Fen(710)));
        assert_eq!(Fen::parse_yuan(""), Err(MoneyError::Empty));
        assert_eq!(Fen::parse_yuan("-1"), Err(MoneyError::Negative));
        assert_eq!(Fen::parse_yuan("1.234"), Err(MoneyError::TooManyDecimals));
        for bad in ["1.", ".5", "1e3", " 1", "1,000", "+1", "1.2.3", "¥1"] {
            assert_eq!(Fen::parse_yuan(bad), Err(MoneyError::Malformed), "{bad}");
        }
        assert_eq!(
            Fen::parse_yuan("100000000000.01"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(
            Fen::parse_yuan("99999999999999999999"),
            Err(MoneyError::TooLarge)
        );
        assert_eq!(Fen::parse_yuan("100000000000"), Ok(MAX_AMOUNT));
    }

    #[test]
    fn displays_two_decimals() {
        assert_eq!(Fen(0).to_string(), "0.00");
        assert_eq!(Fen(5).to_string(), "0.05");
        assert_eq!(Fen(-5).to_string(), "-0.05");
        assert_eq!(Fen(123_450).to_string(), "1234.50");
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(
            Fen::round_from_decimal_fen(Decimal::new(25, 1)),
            Some(Fen(3))
        );
        assert_eq!(
            Fen::round_from_decimal_fen(Decimal::new(24, 1)),
            Some(Fen(2))
        );
        assert_eq!(
            Fen::round_from_decimal_fen(Decimal::new(-25, 1)),
            Some(Fen(-3))
        );
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(fen in 0..=MAX_AMOUNT.0) {
            prop_assert_eq!(Fen::parse_yuan(&Fen(fen).to_string()), Ok(Fen(fen)));
        }
    }
}
