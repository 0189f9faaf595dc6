//! Properties that hold for any input.

use common::phrase::{Phrase, PhraseError};
use proptest::prelude::*;

use super::{figalize, figalize_word};
use crate::scheme::Schemes;

/// Words in the shape users type: Russian letters of either case, sometimes a hyphen inside,
/// sometimes punctuation around.
fn russian_phrase() -> impl Strategy<Value = String> {
    let word = "[«(\"„]?[а-яёА-ЯЁ]{1,12}(-[а-яё]{1,6})?[,.!?:;»)…“”]?";
    prop::collection::vec(word, 1..8).prop_map(|words| words.join(" "))
}

/// Anything the phrase rules accept, in any order: digits, dashes, marks and spaces anywhere.
fn accepted_text() -> impl Strategy<Value = String> {
    "[а-яёА-ЯЁ0-9 \u{a0},.!?:;\\-–—…«»„“”\"()]{1,80}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn no_input_makes_it_panic(raw in any::<String>(), token in "\\PC{0,40}") {
        let schemes = Schemes::builtin();
        for scheme in schemes.iter() {
            if let Ok(phrase) = Phrase::parse(&raw) {
                figalize(&phrase, scheme);
            }
            let mut out = String::new();
            figalize_word(&token, scheme, &mut out);
            figalize_word(&raw, scheme, &mut out);
        }
    }

    #[test]
    fn any_accepted_text_transforms_without_panic_keeping_its_words(raw in accepted_text()) {
        let schemes = Schemes::builtin();
        if let Ok(phrase) = Phrase::parse(&raw) {
            for scheme in schemes.iter() {
                let out = figalize(&phrase, scheme);
                prop_assert_eq!(out.split(' ').count(), phrase.words().count());
            }
        }
    }

    #[test]
    fn a_valid_phrase_keeps_its_word_count(raw in russian_phrase(), spaces in "[ \u{a0}]{0,3}") {
        let schemes = Schemes::builtin();
        let phrase = Phrase::parse(&format!("{spaces}{raw}{spaces}")).unwrap();
        for scheme in schemes.iter() {
            let out = figalize(&phrase, scheme);
            prop_assert_eq!(out.split(' ').count(), phrase.words().count());
            prop_assert!(out.split(' ').all(|word| !word.is_empty()));
        }
    }

    #[test]
    fn the_answer_is_deterministic_and_russian(raw in russian_phrase()) {
        let schemes = Schemes::builtin();
        let phrase = Phrase::parse(&raw).unwrap();
        for scheme in schemes.iter() {
            let first = figalize(&phrase, scheme);
            prop_assert_eq!(&first, &figalize(&phrase, scheme));
            // Prefixes lengthen words, so a long phrase may outgrow the input limit; its
            // characters must still be Russian text.
            let reparsed = Phrase::parse(&first);
            prop_assert!(
                matches!(reparsed, Ok(_) | Err(PhraseError::TooLong { .. })),
                "{:?} is not Russian text", first
            );
        }
    }
}
