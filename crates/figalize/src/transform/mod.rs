//! The transformation: a pure function from a phrase and a scheme to the «офигаченная» phrase.
//!
//! # The original rule, for one word
//! Count the word's letters that are keys of the scheme (its vowels). The *step* is 1 if the word
//! ends in «ая», or if it has at most two key letters; otherwise 2. At the step-th key letter,
//! the answer is that letter's substitution value followed by the rest of the word after the
//! letter: «велосипед» → «Фиго» + «сипед». A phrase is transformed word by word.
//!
//! # Where this goes beyond the original
//! Each decision below has a test of its own in this module.
//! - **No vowel**: a word with no key letter («брр», «мгм», «2024») stays as it is. The original
//!   answered 500.
//! - **Spaces**: the phrase is trimmed and runs of spaces are one space (see
//!   [`common::phrase::Phrase`]), so every word is a real word.
//! - **Capitals and «Ё»**: letters match whatever their case; «Велосипед» → «Фигосипед». A word
//!   written in capitals (two letters or more, none lower-case) gets the prefix in capitals:
//!   «ВЕЛОСИПЕД» → «ФИГОСИПЕД». The rest of a word keeps its own case.
//! - **Punctuation**: marks before and after a word («, . ! ? : ; … « » " ( ) —» and the like)
//!   are set aside, the word in between is transformed, and the marks go back around it:
//!   «"велосипед"!» → «"Фигосипед"!». The «ая» rule looks at the word, not at the marks after
//!   it: «красная!» → «Фигасная!» (the original only knew «ая,» and «ая.»). A dash standing
//!   alone stays as it is.
//! - **Hyphenated words**: the joke lands on the first part that has a vowel; what follows its
//!   hyphen stays as written: «что-то» → «Фиго-то», «по-русски» → «Фиго-русски»,
//!   «бизнес-план» → «Фигизнес-план». The step is counted within that part.

use common::phrase::Phrase;

use crate::scheme::Scheme;

/// Transforms every word of `phrase` with `scheme`; words stay separated by single spaces.
pub fn figalize(phrase: &Phrase, scheme: &Scheme) -> String {
    let text = phrase.as_str();
    // Each prefix is a few letters longer than what it replaces: room for most phrases at once.
    let mut out = String::with_capacity(text.len() + text.len() / 2 + 16);
    for (index, word) in phrase.words().enumerate() {
        if index > 0 {
            out.push(' ');
        }
        figalize_word(word, scheme, &mut out);
    }
    out
}

/// Appends the transformed `word` (a token without spaces, punctuation allowed) to `out`.
pub fn figalize_word(word: &str, scheme: &Scheme, out: &mut String) {
    let Some((lead, core, trail)) = split_marks(word) else {
        out.push_str(word);
        return;
    };
    let shouted = is_shouted(core);
    let mut part_start = 0;
    for part in core.split('-') {
        if let Some((letter, after)) = pick_letter(part, scheme) {
            let substitution = scheme
                .substitution_for(letter)
                .expect("a picked letter is a key");
            out.push_str(lead);
            out.push_str(if shouted {
                substitution.value_upper()
            } else {
                substitution.value()
            });
            out.push_str(&core[part_start + after..]);
            out.push_str(trail);
            return;
        }
        part_start += part.len() + 1;
    }
    out.push_str(word);
}

/// Splits a token into leading marks, the word proper (from its first to its last letter or
/// digit) and trailing marks. `None` if the token has no letter or digit at all.
fn split_marks(token: &str) -> Option<(&str, &str, &str)> {
    let start = token.find(char::is_alphanumeric)?;
    let (last_at, last) = token
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_alphanumeric())
        .expect("a token with a first letter has a last one");
    let end = last_at + last.len_utf8();
    Some((&token[..start], &token[start..end], &token[end..]))
}

/// The letter where the substitution happens and the byte offset just after it, following the
/// original's step rule; `None` if `part` has no key letter.
fn pick_letter(part: &str, scheme: &Scheme) -> Option<(char, usize)> {
    let keys = part.chars().filter(|&c| scheme.is_key(c)).count();
    if keys == 0 {
        return None;
    }
    let step = if keys <= 2 || ends_in_aya(part) { 1 } else { 2 };
    part.char_indices()
        .filter(|&(_, c)| scheme.is_key(c))
        .nth(step - 1)
        .map(|(at, c)| (c, at + c.len_utf8()))
}

/// Whether the word ends in «ая», in any case.
fn ends_in_aya(word: &str) -> bool {
    let mut tail = word.chars().rev();
    matches!(
        (tail.next(), tail.next()),
        (Some('я' | 'Я'), Some('а' | 'А'))
    )
}

/// Two letters or more and none of them lower-case: a word written in capitals.
fn is_shouted(word: &str) -> bool {
    let mut letters = 0;
    for c in word.chars().filter(|c| c.is_alphabetic()) {
        if c.is_lowercase() {
            return false;
        }
        letters += 1;
    }
    letters >= 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::Schemes;

    fn fig(phrase: &str) -> String {
        let schemes = Schemes::builtin();
        figalize(&Phrase::parse(phrase).unwrap(), schemes.get(0).unwrap())
    }

    #[test]
    fn the_original_rule_holds() {
        assert_eq!(fig("велосипед"), "Фигосипед");
        assert_eq!(fig("каюк"), "Фигаюк"); // two vowels: the first
        assert_eq!(fig("красная"), "Фигасная"); // «ая»: the first
        assert_eq!(fig("пересортица, атаксия."), "Фигесортица, Фигаксия.");
    }

    #[test]
    fn a_word_without_vowels_stays_as_it_is() {
        assert_eq!(fig("брр мгм 2024 велосипед"), "брр мгм 2024 Фигосипед");
        assert_eq!(fig("ВКП"), "ВКП");
    }

    #[test]
    fn spaces_are_normalised_before_the_transformation() {
        assert_eq!(fig("  тихий   дон "), "Фигихий Фигон");
    }

    #[test]
    fn capitals_match_and_shouted_words_stay_shouted() {
        assert_eq!(fig("Велосипед"), "Фигосипед");
        assert_eq!(fig("ВЕЛОСИПЕД"), "ФИГОСИПЕД");
        assert_eq!(fig("ВелоСИПЕД"), "ФигоСИПЕД");
        assert_eq!(fig("Ёлка"), "Фигёлка");
        assert_eq!(fig("ЁЛКА"), "ФИГЁЛКА");
        assert_eq!(fig("Я"), "Фига"); // one capital letter is not shouting
    }

    #[test]
    fn punctuation_stays_around_the_word() {
        assert_eq!(fig("«велосипед»!"), "«Фигосипед»!");
        assert_eq!(fig("(велосипед?)"), "(Фигосипед?)");
        assert_eq!(fig("красная!"), "Фигасная!");
        assert_eq!(fig("красная…"), "Фигасная…");
        assert_eq!(fig("мама — велосипед"), "Фигама — Фигосипед");
        assert_eq!(fig("т.е."), "Фиге.");
    }

    #[test]
    fn hyphenated_words_change_their_first_part_with_a_vowel() {
        assert_eq!(fig("что-то"), "Фиго-то");
        assert_eq!(fig("по-русски"), "Фиго-русски");
        assert_eq!(fig("бизнес-план"), "Фигизнес-план");
        assert_eq!(fig("северо-западная"), "Фигеро-западная");
        assert_eq!(fig("-то"), "-Фиго");
    }

    #[test]
    fn the_second_scheme_uses_its_own_values() {
        let schemes = Schemes::builtin();
        let phrase = Phrase::parse("велосипед проседавший").unwrap();
        assert_eq!(
            figalize(&phrase, schemes.get(1).unwrap()),
            "Хреносипед Хренёдавший"
        );
    }
}

#[cfg(test)]
mod golden;
#[cfg(test)]
mod properties;
