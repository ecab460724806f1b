//! Resident ID numbers (居民身份证号码) as every RPC and feed reads them.
//! Checked, beyond "no panic":
//! - an accepted number is 18 characters, its check character is the one
//!   the first 17 digits give (GB 11643), and its birth date is a real date;
//! - it round-trips: parsing its own text gives the same number;
//! - the allocation-free key of the feed parser agrees with the full parse;
//! - the masked form never shows the birth date or the sequence.
#![no_main]

use fangpin_domain::identity::{PersonKey, ResidentId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let by_bytes = PersonKey::parse_bytes(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(by_bytes.is_err(), "the key took bytes that are not text");
        return;
    };
    let parsed = ResidentId::parse(text);
    match (&parsed, &by_bytes) {
        (Ok(id), Ok(key)) => assert_eq!(PersonKey::of(id), *key, "{text:?}"),
        (Err(_), Err(_)) => {}
        _ => panic!("the key and the parse disagree on {text:?}: {parsed:?} {by_bytes:?}"),
    }
    let Ok(id) = parsed else {
        return;
    };
    let s = id.as_str();
    assert_eq!(s.len(), 18);
    let again = ResidentId::from_first17(&s[..17]).expect("the first 17 digits of a valid number");
    assert_eq!(again, id, "the check character is the one the digits give");
    assert_eq!(ResidentId::parse(s).expect("its own text parses"), id);
    let birth = id.birth_date().format("%Y%m%d").to_string();
    assert_eq!(birth, s[6..14], "the birth date is the one written");
    let masked = id.masked();
    assert!(!masked.contains(&s[6..17]), "{masked} shows too much");
});
