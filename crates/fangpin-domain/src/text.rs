//! Display text (names, references, reasons) as it is printed on village
//! notices and in county records (公示文本).
//!
//! Text refuses control characters and Unicode format characters (general
//! category Cf): bidi overrides and isolates (U+202A..U+202E,
//! U+2066..U+2069), zero-width spaces and joiners, the byte-order mark. A
//! U+202E in a name reverses what a notice board shows, and zero-width
//! characters make two names that print alike compare different. Every
//! other character passes, rare ones (生僻字, CJK Extensions B and beyond)
//! included, since real registers hold them.

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Why a text is refused, naming the first offending character.
pub fn display_text_problem(text: &str) -> Option<String> {
    text.chars().find_map(|c| {
        if c.is_control() {
            Some(format!(
                "must not contain control characters (U+{:04X})",
                c as u32
            ))
        } else if c.general_category() == GeneralCategory::Format {
            Some(format!(
                "must not contain invisible format characters such as bidi overrides or \
                 zero-width spaces (U+{:04X})",
                c as u32
            ))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bidi_overrides_and_zero_width_characters_are_refused() {
        for bad in [
            "张\u{202E}三",
            "\u{2066}李四\u{2069}",
            "王\u{200B}五",
            "\u{FEFF}赵六",
            "a\u{00AD}b",
            "x\u{0007}",
        ] {
            assert!(display_text_problem(bad).is_some(), "{bad:?}");
        }
        assert!(
            display_text_problem("张\u{202E}三")
                .expect("refused")
                .contains("U+202E")
        );
    }

    #[test]
    fn rare_characters_pass() {
        // 𠀀 (U+20000, Extension A/B), 𪚥 (U+2A6A5), 龘, 䶮 (U+4DAE), 𰻞 (U+30EDE).
        for good in [
            "𠀀",
            "𪚥",
            "龘",
            "䶮",
            "𰻞𰻞面",
            "住院号2026-00815",
            "Zhang San",
        ] {
            assert_eq!(display_text_problem(good), None, "{good:?}");
        }
    }

    proptest! {
        /// Any CJK text of the unified ideograph blocks passes.
        #[test]
        fn cjk_ideographs_pass(text in "[\u{4E00}-\u{9FFF}\u{20000}-\u{2A6DF}\u{30000}-\u{3134F}]{1,20}") {
            prop_assert_eq!(display_text_problem(&text), None);
        }
    }
}
