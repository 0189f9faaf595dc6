//! A phrase of Russian text, as every service accepts it.
//!
//! The rules, one place for all services:
//! - Letters must be Russian (`а`–`я`, `ё`, either case). Any other letter — Latin, Ukrainian
//!   `і`, Greek — makes the phrase non-Russian, as the original service judged it.
//! - Besides letters: digits, spaces and the punctuation of Russian text
//!   (`, . ! ? : ; - – — … « » „ “ ” " ( )`). Control characters (tabs, newlines, NUL) and
//!   anything else are refused.
//! - «й» and «ё» typed as a letter and a combining mark (as some systems store them) count as
//!   the single letters.
//! - At least one Russian letter; leading and trailing spaces are dropped and runs of spaces
//!   (including no-break spaces) become one space.
//! - At most [`MAX_CHARS`] characters after that (the page's limit).

use std::fmt;

/// Longest phrase accepted, in characters.
pub const MAX_CHARS: usize = 256;

/// The original service's answer to text that is not Russian.
pub const NOT_RUSSIAN: &str = "По-русски, пожалуйста, у нас тут культурное заведение";

/// Why a phrase was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhraseError {
    /// Nothing but spaces.
    #[error("Напишите слово или фразу")]
    Empty,
    /// Longer than the limit.
    #[error("Слишком длинно: не больше {max} символов")]
    TooLong {
        /// The limit, in characters.
        max: usize,
    },
    /// A character that Russian text does not have, or no Russian letter at all.
    #[error("{NOT_RUSSIAN}")]
    NotRussian,
}

impl PhraseError {
    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Empty => "empty_phrase",
            Self::TooLong { .. } => "phrase_too_long",
            Self::NotRussian => "not_russian",
        }
    }
}

/// A validated, normalised phrase: words separated by single spaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phrase(String);

impl Phrase {
    /// Validates and normalises `raw`, at most [`MAX_CHARS`] characters.
    pub fn parse(raw: &str) -> Result<Self, PhraseError> {
        Self::parse_with_limit(raw, MAX_CHARS)
    }

    /// Validates and normalises `raw`, at most `max_chars` characters (a transformed phrase
    /// is longer than the phrase it came from).
    pub fn parse_with_limit(raw: &str, max_chars: usize) -> Result<Self, PhraseError> {
        let mut normalised = String::with_capacity(raw.len());
        let mut chars = 0usize;
        let mut has_letter = false;
        let mut pending_space = false;
        for c in raw.chars() {
            if is_space(c) {
                pending_space = !normalised.is_empty();
                continue;
            }
            if let Some(composed) = compose(normalised.chars().next_back(), c) {
                normalised.pop();
                normalised.push(composed);
                continue;
            }
            if is_russian_letter(c) {
                has_letter = true;
            } else if !(c.is_ascii_digit() || is_punctuation(c)) {
                return Err(PhraseError::NotRussian);
            }
            if pending_space {
                normalised.push(' ');
                chars += 1;
                pending_space = false;
            }
            normalised.push(c);
            chars += 1;
            if chars > max_chars {
                return Err(PhraseError::TooLong { max: max_chars });
            }
        }
        match (normalised.is_empty(), has_letter) {
            (true, _) => Err(PhraseError::Empty),
            (false, false) => Err(PhraseError::NotRussian),
            (false, true) => Ok(Self(normalised)),
        }
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The words, in order: the phrase split on its single spaces.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ')
    }

    /// The normalised text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Phrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Phrase {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// `а`–`я`, `ё` and their capitals.
pub fn is_russian_letter(c: char) -> bool {
    matches!(c, 'а'..='я' | 'А'..='Я' | 'ё' | 'Ё')
}

/// «й» and «ё» from a base letter followed by a combining breve or diaeresis.
fn compose(previous: Option<char>, mark: char) -> Option<char> {
    match (previous?, mark) {
        ('и', '\u{306}') => Some('й'),
        ('И', '\u{306}') => Some('Й'),
        ('е', '\u{308}') => Some('ё'),
        ('Е', '\u{308}') => Some('Ё'),
        _ => None,
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}')
}

fn is_punctuation(c: char) -> bool {
    matches!(
        c,
        ',' | '.'
            | '!'
            | '?'
            | ':'
            | ';'
            | '-'
            | '–'
            | '—'
            | '…'
            | '«'
            | '»'
            | '„'
            | '“'
            | '”'
            | '"'
            | '('
            | ')'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn russian_text_with_punctuation_digits_and_capitals_is_accepted() {
        for ok in [
            "велосипед",
            "Ёлка, ЁЖ!",
            "«Кое-что» — 3 раза?",
            "т.е. (почти)…",
        ] {
            assert_eq!(Phrase::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn decomposed_short_i_and_yo_become_single_letters() {
        let phrase = Phrase::parse("и\u{306}од, е\u{308}ж, Е\u{308}").unwrap();
        assert_eq!(phrase.as_str(), "йод, ёж, Ё");
        assert_eq!(Phrase::parse("\u{306}"), Err(PhraseError::NotRussian));
        assert_eq!(Phrase::parse("а\u{308}"), Err(PhraseError::NotRussian));
    }

    #[test]
    fn spaces_are_trimmed_and_collapsed() {
        let phrase = Phrase::parse("  тихий \u{a0}  дон  ").unwrap();
        assert_eq!(phrase.as_str(), "тихий дон");
        assert_eq!(phrase.words().collect::<Vec<_>>(), ["тихий", "дон"]);
    }

    #[test]
    fn empty_or_blank_phrases_are_refused_as_empty() {
        for blank in ["", " ", "\u{a0}  "] {
            assert_eq!(Phrase::parse(blank), Err(PhraseError::Empty));
        }
    }

    #[test]
    fn latin_mixed_control_and_letterless_text_is_not_russian() {
        for bad in [
            "bicycle",
            "привет world",
            "тест\tтаб",
            "строка\n",
            "нуль\0",
            "і",
            "123",
            "—",
            "эмодзи 🙂",
        ] {
            assert_eq!(Phrase::parse(bad), Err(PhraseError::NotRussian), "{bad:?}");
        }
    }

    #[test]
    fn the_limit_counts_characters_after_normalising() {
        let at_limit = "я".repeat(MAX_CHARS);
        assert!(Phrase::parse(&format!("  {at_limit}  ")).is_ok());
        assert_eq!(
            Phrase::parse(&format!("{at_limit}я")),
            Err(PhraseError::TooLong { max: MAX_CHARS })
        );
    }
}
