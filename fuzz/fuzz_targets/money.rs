//! Money strings ("5000", "5000.5", "5000.50") as every RPC reads them.
//! Checked, beyond "no panic":
//! - an accepted amount equals the decimal the text spells (rust_decimal,
//!   an independent parser), to the fen, and is within the limit;
//! - it round-trips: its display is canonical (two decimals) and parses back
//!   to the same amount;
//! - a text rust_decimal reads as a plain non-negative number with at most
//!   two decimals and no sign or exponent is accepted, unless over the limit.
#![no_main]

use std::str::FromStr;

use fangpin_domain::money::{Fen, MAX_AMOUNT};
use libfuzzer_sys::fuzz_target;
use rust_decimal::Decimal;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let plain = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && text.bytes().filter(|&b| b == b'.').count() <= 1
        && !text.starts_with('.')
        && !text.ends_with('.')
        && text.split_once('.').is_none_or(|(_, f)| f.len() <= 2);
    match Fen::parse_yuan(text) {
        Ok(fen) => {
            assert!(plain, "{text:?} is not a plain amount, yet it was accepted");
            assert!(fen >= Fen::ZERO && fen <= MAX_AMOUNT);
            let decimal = Decimal::from_str(text).expect("rust_decimal reads it too");
            assert_eq!(Decimal::new(fen.get(), 2), decimal, "{text:?}");
            let shown = fen.to_string();
            let (_, cents) = shown.split_once('.').expect("two decimals");
            assert_eq!(cents.len(), 2, "{shown}");
            assert_eq!(Fen::parse_yuan(&shown), Ok(fen), "{shown}");
        }
        Err(_) => {
            if plain {
                // Only the limit refuses a plain amount.
                let decimal = Decimal::from_str(text);
                if let Ok(d) = decimal {
                    assert!(
                        d > Decimal::new(MAX_AMOUNT.get(), 2),
                        "{text:?} is plain and within the limit, yet refused"
                    );
                }
            }
        }
    }
});
