//! Schemes: the data that says which vowel turns into which prefix.
//!
//! A scheme file is JSON in the original's format:
//! `{"schemas": [{"name": "…", "substitutions": [{"keys": "ая", "value": "Фига"}, …]}, …]}`.
//! Files are validated at start-up, so a bad ConfigMap stops the service with a clear message
//! instead of answering nonsense.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use common::phrase::is_russian_letter;

/// The two schemes of the original service, used when no file is configured.
const BUILTIN: &str = include_str!("../schemes/default.json");

/// Marks a letter that is no key of the scheme.
const NO_KEY: u8 = u8::MAX;

/// One substitution: a set of key vowels and the prefix that replaces the word up to them.
#[derive(Debug, Clone)]
pub struct Substitution {
    value: String,
    value_upper: String,
}

impl Substitution {
    /// The prefix as written in the scheme, e.g. `Фиго`.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The prefix in capitals, for words written in capitals.
    pub fn value_upper(&self) -> &str {
        &self.value_upper
    }
}

/// A named, validated scheme.
#[derive(Debug, Clone)]
pub struct Scheme {
    name: String,
    substitutions: Vec<Substitution>,
    /// For `а`..`я` (0..32) and `ё` (32): the index of the substitution whose key it is.
    keys: [u8; 33],
}

impl Scheme {
    /// The scheme's display name, e.g. «Фигачечная».
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The substitution whose keys hold `letter` (either case), if any.
    #[inline]
    pub fn substitution_for(&self, letter: char) -> Option<&Substitution> {
        let slot = letter_slot(letter)?;
        let index = self.keys[slot];
        (index != NO_KEY).then(|| &self.substitutions[usize::from(index)])
    }

    /// Whether `letter` (either case) is a key of this scheme.
    #[inline]
    pub fn is_key(&self, letter: char) -> bool {
        letter_slot(letter).is_some_and(|slot| self.keys[slot] != NO_KEY)
    }
}

/// The slot of a Russian letter in a key table, capitals folded to lower case.
#[inline]
fn letter_slot(letter: char) -> Option<usize> {
    let code = u32::from(letter);
    let slot = match letter {
        'а'..='я' => code - u32::from('а'),
        'А'..='Я' => code - u32::from('А'),
        'ё' | 'Ё' => 32,
        _ => return None,
    };
    Some(slot as usize)
}

/// The schemes a service offers, indexed from 0 as `schema_id`.
#[derive(Debug, Clone)]
pub struct Schemes(Vec<Scheme>);

/// A scheme file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SchemeError {
    /// Not JSON of the expected shape.
    #[error("not a scheme file: {0}")]
    Json(#[from] serde_json::Error),
    /// Well-formed but unusable.
    #[error("scheme {index}: {reason}")]
    Invalid {
        /// Which scheme (0-based).
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// No scheme at all.
    #[error("the file defines no scheme")]
    Empty,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSchemes {
    schemas: Vec<FileScheme>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileScheme {
    name: String,
    substitutions: Vec<FileSubstitution>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSubstitution {
    keys: String,
    value: String,
}

impl Schemes {
    /// The original service's two schemes.
    pub fn builtin() -> Self {
        Self::from_json(BUILTIN).expect("the built-in schemes are valid")
    }

    /// Reads and validates a scheme file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scheme file {}", path.display()))?;
        Self::from_json(&text).with_context(|| format!("scheme file {}", path.display()))
    }

    /// Parses and validates schemes from JSON text.
    pub fn from_json(text: &str) -> Result<Self, SchemeError> {
        let file: FileSchemes = serde_json::from_str(text)?;
        if file.schemas.is_empty() {
            return Err(SchemeError::Empty);
        }
        file.schemas
            .into_iter()
            .enumerate()
            .map(|(index, scheme)| {
                validate(scheme).map_err(|reason| SchemeError::Invalid { index, reason })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// The scheme with this `schema_id`.
    pub fn get(&self, id: usize) -> Option<&Scheme> {
        self.0.get(id)
    }

    /// All schemes in `schema_id` order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Scheme> {
        self.0.iter()
    }
}

fn validate(scheme: FileScheme) -> Result<Scheme, String> {
    let name = scheme.name.trim().to_owned();
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if scheme.substitutions.is_empty() {
        return Err(format!("{name:?} has no substitutions"));
    }
    let mut keys = [NO_KEY; 33];
    let mut substitutions = Vec::with_capacity(scheme.substitutions.len());
    for (index, substitution) in scheme.substitutions.into_iter().enumerate() {
        let at = || format!("{name:?}, substitution {index}");
        if substitution.keys.is_empty() {
            return Err(format!("{}: no keys", at()));
        }
        for key in substitution.keys.chars() {
            if !(is_russian_letter(key) && key.is_lowercase()) {
                return Err(format!(
                    "{}: key {key:?} is not a lower-case Russian letter",
                    at()
                ));
            }
            let slot = letter_slot(key).expect("a Russian letter has a slot");
            if keys[slot] != NO_KEY {
                return Err(format!("{}: key {key:?} is already used", at()));
            }
            keys[slot] = u8::try_from(index).expect("at most 33 substitutions have keys");
        }
        let value = substitution.value;
        if value.is_empty() || !value.chars().all(|c| is_russian_letter(c) || c == '-') {
            return Err(format!(
                "{}: value {value:?} must be Russian letters (a hyphen allowed)",
                at()
            ));
        }
        substitutions.push(Substitution {
            value_upper: value.to_uppercase(),
            value,
        });
    }
    Ok(Scheme {
        name,
        substitutions,
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_schemes_are_the_originals() {
        let schemes = Schemes::builtin();
        let names: Vec<_> = schemes.iter().map(Scheme::name).collect();
        assert_eq!(names, ["Фигачечная", "Хреначечная"]);
        let first = schemes.get(0).unwrap();
        assert_eq!(first.substitution_for('о').unwrap().value(), "Фиго");
        assert_eq!(first.substitution_for('Я').unwrap().value(), "Фига");
        assert_eq!(first.substitution_for('Ё').unwrap().value_upper(), "ФИГЁ");
        assert!(!first.is_key('й'));
        assert!(!first.is_key('a'));
    }

    fn error_of(json: &str) -> String {
        Schemes::from_json(json).unwrap_err().to_string()
    }

    #[test]
    fn unusable_scheme_files_are_refused_with_the_reason() {
        assert!(error_of("{").starts_with("not a scheme file"));
        assert_eq!(error_of(r#"{"schemas": []}"#), "the file defines no scheme");
        let one =
            |subs: &str| format!(r#"{{"schemas": [{{"name": "Т", "substitutions": {subs}}}]}}"#);
        assert!(error_of(&one("[]")).contains("no substitutions"));
        assert!(error_of(&one(r#"[{"keys": "", "value": "Фи"}]"#)).contains("no keys"));
        assert!(error_of(&one(r#"[{"keys": "a", "value": "Фи"}]"#)).contains("not a lower-case"));
        assert!(error_of(&one(r#"[{"keys": "А", "value": "Фи"}]"#)).contains("not a lower-case"));
        assert!(
            error_of(&one(
                r#"[{"keys": "а", "value": "Фи"}, {"keys": "оа", "value": "Фо"}]"#
            ))
            .contains("already used")
        );
        assert!(error_of(&one(r#"[{"keys": "а", "value": "Ф и"}]"#)).contains("must be Russian"));
        assert!(error_of(&one(r#"[{"keys": "а", "value": ""}]"#)).contains("must be Russian"));
        assert!(
            error_of(r#"{"schemas": [{"name": " ", "substitutions": []}]}"#)
                .contains("name is empty")
        );
    }

    #[test]
    fn a_missing_file_is_reported_with_its_path() {
        let err = Schemes::load(Path::new("/nonexistent/schemes.json")).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/schemes.json"));
    }
}
